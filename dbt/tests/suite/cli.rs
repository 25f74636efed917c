//! The `sluice-dbt` binary: exit codes, formats and errors, run as CI would run it.

use std::process::Command;

use pretty_assertions::assert_eq;

use super::{Fixture, fixtures};

fn sluice_dbt(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice-dbt"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        String::from_utf8(output.stderr).expect("utf-8 stderr"),
    )
}

/// A parent directory holding the two fixtures, so `--project-dir` is a relative path as in a repository.
fn workspace() -> (tempfile::TempDir, Fixture, Fixture) {
    let jaffle = Fixture::new("jaffle");
    let defects = Fixture::new("defects");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::rename(jaffle.path(), dir.path().join("jaffle")).expect("move");
    std::fs::rename(defects.path(), dir.path().join("defects")).expect("move");
    std::fs::create_dir(jaffle.path()).expect("placeholder for the tempdir guard");
    std::fs::create_dir(defects.path()).expect("placeholder for the tempdir guard");
    (dir, jaffle, defects)
}

#[test]
fn validate_exit_codes_follow_fail_on() {
    let (dir, _j, _d) = workspace();
    let cases = [
        (
            vec!["validate", "--project-dir", "jaffle", "--fail-on", "warning"],
            0,
        ),
        (vec!["validate", "--project-dir", "jaffle"], 0),
        (vec!["validate", "--project-dir", "defects"], 1),
        (
            vec!["validate", "--project-dir", "defects", "--fail-on", "warning"],
            1,
        ),
    ];
    for (args, expected) in cases {
        let (code, stdout, stderr) = sluice_dbt(dir.path(), &args);
        assert_eq!(code, expected, "{args:?}\n{stdout}\n{stderr}");
    }
    // A project with warnings but no errors passes by default and fails on warning.
    let dir2 = Fixture::new("jaffle");
    std::fs::write(dir2.path().join("models/marts/extra.sql"), "select 1 as id").expect("write");
    assert_eq!(sluice_dbt(dir2.path(), &["validate"]).0, 0);
    assert_eq!(
        sluice_dbt(dir2.path(), &["validate", "--fail-on", "warning"]).0,
        1
    );
}

#[test]
fn github_annotations_point_at_repository_paths() {
    let (dir, _j, _d) = workspace();
    let (code, stdout, _) = sluice_dbt(
        dir.path(),
        &["validate", "--project-dir", "defects", "--format", "github"],
    );
    assert_eq!(code, 1);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.contains(&"::error file=defects/models/after_build/finance_summary.sql,line=3,title=DBT101 unresolved-ref::`ref('revenue_daily')` in model `finance_summary`: no model, seed or snapshot has this name"),
        "{stdout}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with("::error ")
            || l.starts_with("::warning ")
            || l.starts_with("::notice ")
            || l.starts_with("sluice-dbt validate defects:")),
        "{stdout}"
    );
    assert!(stdout.ends_with("failed (fail on error)\n"), "{stdout}");
}

#[test]
fn junit_and_json_outputs() {
    let (dir, _j, _d) = workspace();
    let (code, stdout, _) = sluice_dbt(
        dir.path(),
        &["validate", "--project-dir", "defects", "--format", "junit"],
    );
    assert_eq!(code, 1);
    let mut reader = quick_xml::Reader::from_str(&stdout);
    let mut failures = 0;
    loop {
        match reader.read_event().expect("well-formed JUnit XML") {
            quick_xml::events::Event::Start(e) if e.name().as_ref() == b"failure" => failures += 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    let (_, json, _) = sluice_dbt(
        dir.path(),
        &["validate", "--project-dir", "defects", "--format", "json"],
    );
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON report");
    assert_eq!(report["failed"], serde_json::json!(true));
    assert_eq!(report["summary"]["errors"].as_u64(), Some(failures));
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(34));
}

#[test]
fn map_and_lineage_commands() {
    let (dir, _j, _d) = workspace();
    let (code, stdout, _) = sluice_dbt(
        dir.path(),
        &["map", "--project-dir", "defects", "--focus", "work_order"],
    );
    assert_eq!(code, 0);
    assert!(stdout.starts_with("# Work order for defects\n"), "{stdout}");
    let (code, stdout, _) = sluice_dbt(
        dir.path(),
        &[
            "lineage",
            "--project-dir",
            "jaffle",
            "stg_orders",
            "--direction",
            "downstream",
        ],
    );
    assert_eq!(code, 0);
    insta::assert_snapshot!("cli_lineage_stg_orders", stdout);
    let (code, stdout, _) = sluice_dbt(
        dir.path(),
        &[
            "lineage",
            "--project-dir",
            "jaffle",
            "--column",
            "stg_orders.order_id",
            "--direction",
            "down",
            "--depth",
            "1",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "# Column lineage of stg_orders.order_id (model.jaffle.stg_orders)\n\nDownstream (2):\n   1  \
         stg_orders.order_id -> orders.order_id  passthrough\n   1  stg_orders.order_id -> orders.customer_order_seq  \
         transformed (window): row_number() OVER (PARTITION BY o.customer_id ORDER BY o.order_date, o.order_id)\n"
    );
}

#[test]
fn unreadable_input_exits_2_with_a_clear_message() {
    let (dir, _j, _d) = workspace();
    let (code, _, stderr) = sluice_dbt(
        dir.path(),
        &["map", "--project-dir", "jaffle", "--focus", "everything"],
    );
    assert_eq!(
        (code, stderr.starts_with("error: unknown focus `everything`")),
        (2, true),
        "{stderr}"
    );
    let (code, _, stderr) = sluice_dbt(dir.path(), &["validate", "--project-dir", "nowhere"]);
    assert_eq!(
        (code, stderr.contains("not a dbt project")),
        (2, true),
        "{stderr}"
    );
    std::fs::write(
        dir.path().join("jaffle/target/run_results.json"),
        "{\"results\": [{\"status\": 3}]}",
    )
    .expect("write");
    let (code, _, stderr) = sluice_dbt(dir.path(), &["validate", "--project-dir", "jaffle"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "jaffle/target/run_results.json: invalid run_results.json at JSON path `results[0].status`"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = sluice_dbt(
        &fixtures(),
        &["lineage", "--project-dir", "jaffle", "no_such_model"],
    );
    assert_eq!(
        (code, stderr.contains("no node named `no_such_model`")),
        (2, true),
        "{stderr}"
    );
}

/// Checks what SARIF 2.1.0 requires and code scanning reads: version, `$schema`, the driver's name and
/// rules, and on each result its rule id (with a matching `ruleIndex`), level, message and a location with an
/// artifact URI and a start line.
fn assert_sarif(text: &str) -> serde_json::Value {
    let log: serde_json::Value = serde_json::from_str(text).expect("SARIF is JSON");
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().is_some_and(|s| s.contains("sarif-2.1.0")));
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "sluice-dbt");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert!(
        rules
            .iter()
            .all(|r| r["id"].is_string() && r["shortDescription"]["text"].is_string())
    );
    for result in run["results"].as_array().expect("results") {
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        assert!(["error", "warning", "note"].contains(&result["level"].as_str().expect("level")));
        assert!(result["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        let physical = &result["locations"][0]["physicalLocation"];
        assert!(
            physical["artifactLocation"]["uri"]
                .as_str()
                .is_some_and(|u| !u.is_empty())
        );
        assert!(physical["region"]["startLine"].as_u64().is_some_and(|l| l >= 1));
    }
    log
}

#[test]
fn validate_writes_sarif() {
    let (dir, _j, _d) = workspace();
    let (code, stdout, _) = sluice_dbt(
        dir.path(),
        &["validate", "--project-dir", "defects", "--format", "sarif"],
    );
    assert_eq!(code, 1);
    let log = assert_sarif(&stdout);
    let results = log["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 34);
    assert!(results.iter().all(|r| {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("defects/"))
    }));
}

#[test]
fn coverage_thresholds_and_formats() {
    let (dir, _j, _d) = workspace();
    let cases: &[(&[&str], i32)] = &[
        (&["coverage", "--project-dir", "jaffle"], 0),
        (
            &[
                "coverage",
                "--project-dir",
                "jaffle",
                "--min-models",
                "80",
                "--min-columns",
                "30",
            ],
            0,
        ),
        (
            &[
                "coverage",
                "--project-dir",
                "jaffle",
                "--min-models",
                "80",
                "--min-columns",
                "50",
            ],
            1,
        ),
        (
            &["coverage", "--project-dir", "jaffle", "--min-models", "100.1"],
            1,
        ),
        (&["coverage", "--project-dir", "missing"], 2),
    ];
    for (args, expected) in cases {
        let (code, _, stderr) = sluice_dbt(dir.path(), args);
        assert_eq!(code, *expected, "{args:?}: {stderr}");
    }
    let (_, stdout, _) = sluice_dbt(
        dir.path(),
        &["coverage", "--project-dir", "jaffle", "--format", "json"],
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["coverage"]["models"]["tested"], 6);
    assert_eq!(report["coverage"]["columns"]["total"], 29);
    let (code, stdout, _) = sluice_dbt(
        dir.path(),
        &[
            "coverage",
            "--project-dir",
            "jaffle",
            "--min-columns",
            "50",
            "--format",
            "sarif",
        ],
    );
    assert_eq!(code, 1);
    let log = assert_sarif(&stdout);
    let below: Vec<&str> = log["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["ruleId"] == "DBT703")
        .filter_map(|r| r["message"]["text"].as_str())
        .collect();
    assert_eq!(
        below,
        vec!["31.0% of model columns are tested (9 of 29), below --min-columns 50"]
    );
    let (_, stdout, _) = sluice_dbt(
        dir.path(),
        &[
            "coverage",
            "--project-dir",
            "jaffle",
            "--min-columns",
            "50",
            "--format",
            "github",
        ],
    );
    assert!(
        stdout.contains("::error file=jaffle/dbt_project.yml,title=DBT703 coverage-below-threshold::"),
        "{stdout}"
    );
}

#[test]
fn impact_exit_codes_and_baselines() {
    let (dir, _j, _d) = workspace();
    let jaffle = dir.path().join("jaffle");
    let baseline = jaffle.join("prod-manifest.json");
    std::fs::copy(jaffle.join("target/manifest.json"), &baseline).expect("copy");
    std::fs::write(jaffle.join("empty.json"), b"").expect("write");
    let mut other: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&baseline).expect("read")).expect("json");
    other["metadata"]["project_name"] = "shop".into();
    std::fs::write(
        jaffle.join("other.json"),
        serde_json::to_vec(&other).expect("json"),
    )
    .expect("write");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &[
                "impact",
                "--project-dir",
                "jaffle",
                "--model",
                "stg_payments",
                "--column",
                "order_id",
                "--change",
                "rename",
            ],
            1,
            "# rename of `stg_payments.order_id`: 2 break, 2 change\n",
        ),
        (
            &[
                "impact",
                "--project-dir",
                "jaffle",
                "--model",
                "stg_payments",
                "--column",
                "amount",
                "--change",
                "type",
            ],
            0,
            "# type of `stg_payments.amount`: 0 break, 6 change\n",
        ),
        (
            &[
                "impact",
                "--project-dir",
                "jaffle",
                "--model",
                "stg_payments",
                "--column",
                "amount",
                "--change",
                "type",
                "--fail-on",
                "warning",
            ],
            1,
            "# type of `stg_payments.amount`",
        ),
        (
            &[
                "impact",
                "--project-dir",
                "jaffle",
                "--state",
                "jaffle/prod-manifest.json",
            ],
            0,
            "No column changes.\n",
        ),
        (
            &[
                "impact",
                "--project-dir",
                "jaffle",
                "--state",
                "jaffle/other.json",
            ],
            2,
            "",
        ),
        (
            &[
                "impact",
                "--project-dir",
                "jaffle",
                "--state",
                "jaffle/empty.json",
            ],
            2,
            "",
        ),
        (
            &[
                "impact",
                "--project-dir",
                "jaffle",
                "--model",
                "nope",
                "--column",
                "x",
            ],
            2,
            "",
        ),
    ];
    for (args, expected, prefix) in cases {
        let (code, stdout, stderr) = sluice_dbt(dir.path(), args);
        assert_eq!(code, *expected, "{args:?}: {stdout}{stderr}");
        assert!(stdout.starts_with(prefix), "{args:?}: {stdout}");
        if *expected == 2 {
            assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        }
    }
    let (_, _, stderr) = sluice_dbt(
        dir.path(),
        &[
            "impact",
            "--project-dir",
            "jaffle",
            "--state",
            "jaffle/empty.json",
        ],
    );
    assert_eq!(
        stderr,
        "error: jaffle/empty.json: the file is empty (0 bytes of JSON), so it is not a usable manifest.json; \
         rerun `dbt compile` or `dbt build`\n"
    );
    let (_, _, stderr) = sluice_dbt(
        dir.path(),
        &[
            "impact",
            "--project-dir",
            "jaffle",
            "--state",
            "jaffle/other.json",
        ],
    );
    assert!(
        stderr.contains("from dbt project `shop`, not `jaffle`"),
        "{stderr}"
    );
    let (code, stdout, _) = sluice_dbt(
        dir.path(),
        &[
            "impact",
            "--project-dir",
            "jaffle",
            "--model",
            "stg_orders",
            "--column",
            "status",
            "--format",
            "sarif",
        ],
    );
    assert_eq!(code, 1);
    let log = assert_sarif(&stdout);
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "DBT801");
}

/// Rewrites a fixture's manifest: `edit` gets each node by unique id.
fn edit_manifest(fixture: &Fixture, edit: impl Fn(&str, &mut serde_json::Value)) {
    let path = fixture.path().join("target/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    if let Some(nodes) = manifest["nodes"].as_object_mut() {
        for (id, node) in nodes.iter_mut() {
            edit(id, node);
        }
    }
    std::fs::write(&path, serde_json::to_vec(&manifest).expect("json")).expect("write");
    fixture.touch("target/manifest.json", 60);
}

/// Input the tools cannot fully use, each with a message that says what is wrong and what to do: a manifest
/// from `dbt parse` (no compiled SQL: model-level lineage instead), compiled SQL that does not parse in the
/// project's dialect (the model is listed with the parser's reason), and empty artifacts (an error naming
/// the file and the dbt command that writes it).
#[test]
fn bad_input_is_said_plainly() {
    let lineage = ["lineage", "--column", "orders.amount", "--direction", "up"];

    let parsed_only = Fixture::new("jaffle");
    edit_manifest(&parsed_only, |_, node| {
        if let Some(n) = node.as_object_mut() {
            n.remove("compiled_code");
        }
    });
    let (code, stdout, stderr) = sluice_dbt(parsed_only.path(), &lineage);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "# Column lineage of orders.amount (model.jaffle.orders)\n\nUpstream (0):\n\nModel-level only (1):\n  \
         - orders: column lineage unavailable, the manifest has no compiled SQL for it, only raw Jinja (run \
         `dbt compile` or `dbt build`); model-level parents: stg_orders, stg_payments\n"
    );

    let unparsable = Fixture::new("jaffle");
    edit_manifest(&unparsable, |id, node| {
        if id == "model.jaffle.stg_payments" {
            node["compiled_code"] = "select p.id as payment_id from (((".into();
        }
    });
    let (code, stdout, stderr) = sluice_dbt(unparsable.path(), &lineage);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "Model-level only (1):\n  - stg_payments: column lineage unavailable, its compiled SQL does not parse \
             as DuckDB: sql parser error: "
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("stg_payments.amount -> orders.amount"),
        "the model that parses is still traced: {stdout}"
    );

    for (artifact, command, rerun) in [
        ("manifest.json", "validate", "`dbt compile` or `dbt build`"),
        ("catalog.json", "coverage", "`dbt docs generate`"),
        (
            "run_results.json",
            "validate",
            "`dbt build` (or the run, test or seed that wrote it)",
        ),
    ] {
        let (dir, _j, _d) = workspace();
        std::fs::write(dir.path().join("jaffle/target").join(artifact), b"").expect("truncate");
        let (code, stdout, stderr) = sluice_dbt(dir.path(), &[command, "--project-dir", "jaffle"]);
        assert_eq!((code, stdout.as_str()), (2, ""), "{artifact}");
        assert_eq!(
            stderr,
            format!(
                "error: jaffle/target/{artifact}: the file is empty (0 bytes of JSON), so it is not a usable \
                 {artifact}; rerun {rerun}\n"
            ),
            "{artifact}"
        );
    }
}
