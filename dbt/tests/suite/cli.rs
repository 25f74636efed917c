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
