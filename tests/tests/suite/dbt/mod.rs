//! dbt in MCP and in CI: projects registered by CLI and by config, every dbt tool over MCP against the
//! fixture projects and the DuckDB warehouses real dbt built, the project_dir fence, verification SQL in
//! the audit log, and `sluice dbt validate`'s exit codes and formats.

mod ci;
mod columns;
mod parse;
mod verify;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pretty_assertions::assert_eq;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use sluice_e2e::{Gateway, Launch, call, cli, sluice_bin, text};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/dbt")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A scratch copy of a fixture project (fixtures are never modified). Copying gives every file a new
/// modification time, so the artifacts are dated after the project files again, as after a real build.
fn project_copy(base: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = base.join(name);
    copy_dir(&fixture(name), &dir)?;
    let later = SystemTime::now() + Duration::from_secs(60);
    for artifact in ["manifest.json", "catalog.json", "run_results.json"] {
        std::fs::File::options()
            .write(true)
            .open(dir.join("target").join(artifact))?
            .set_modified(later)?;
    }
    Ok(dir)
}

fn structured(r: &CallToolResult) -> Value {
    r.structured_content.clone().unwrap_or(Value::Null)
}

fn ok(r: &CallToolResult) -> Value {
    assert_eq!(r.is_error, Some(false), "{}", text(r));
    structured(r)
}

fn refused(r: &CallToolResult, message: &str) {
    assert_eq!(r.is_error, Some(true), "expected a refusal: {}", text(r));
    assert!(text(r).contains(message), "expected `{message}` in: {}", text(r));
}

async fn run_cli(data_dir: &Path, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let out = cli(data_dir, args).await?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

/// Both fixture projects and their warehouses registered through the CLI, then a gateway on them.
struct Setup {
    gw: Gateway,
    defects: PathBuf,
    jaffle: PathBuf,
    outside: PathBuf,
    _tmp: tempfile::TempDir,
}

async fn setup() -> anyhow::Result<Setup> {
    let tmp = tempfile::tempdir()?;
    let defects = project_copy(tmp.path(), "defects")?;
    let jaffle = project_copy(tmp.path(), "jaffle")?;
    let outside = tmp.path().join("outside");
    copy_dir(&fixture("jaffle"), &outside)?;
    let data = tmp.path().join("data");
    for (name, dir) in [("defects_wh", &defects), ("jaffle_wh", &jaffle)] {
        let file = dir.join(format!("{}.duckdb", name.trim_end_matches("_wh")));
        let (code, _, err) = run_cli(
            &data,
            &[
                "connection",
                "add",
                "--name",
                name,
                "--kind",
                "duckdb",
                "--dsn",
                file.to_str().unwrap_or(""),
            ],
        )
        .await?;
        assert_eq!(code, 0, "{err}");
    }
    for (name, dir, conn) in [
        ("defects", &defects, "defects_wh"),
        ("jaffle", &jaffle, "jaffle_wh"),
    ] {
        let (code, out, err) = run_cli(
            &data,
            &[
                "project",
                "add",
                "--name",
                name,
                "--dir",
                dir.to_str().unwrap_or(""),
                "--connection",
                conn,
            ],
        )
        .await?;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("added project '{name}'")), "{out}");
    }
    let gw = Gateway::launch(Launch {
        data_dir: Some(data),
        ..Launch::default()
    })
    .await?;
    Ok(Setup {
        gw,
        defects: std::fs::canonicalize(defects)?,
        jaffle: std::fs::canonicalize(jaffle)?,
        outside,
        _tmp: tmp,
    })
}

#[tokio::test]
async fn project_cli_checks_what_it_registers() -> anyhow::Result<()> {
    let s = setup().await?;
    let data = &s.gw.data_dir;
    let (code, out, _) = run_cli(data, &["project", "list"]).await?;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("defects\t{}\tdefects_wh\tstore\t", s.defects.display()),
            format!("jaffle\t{}\tjaffle_wh\tstore\t", s.jaffle.display()),
        ]
    );
    let empty = tempfile::tempdir()?;
    let empty_dir = empty.path().to_str().unwrap_or("");
    let jaffle = s.jaffle.to_str().unwrap_or("");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--name", "again", "--dir", "/does/not/exist"],
            "cannot be opened",
        ),
        (
            vec!["--name", "again", "--dir", empty_dir],
            "is not a dbt project: it has no dbt_project.yml",
        ),
        (
            vec!["--name", "jaffle", "--dir", jaffle],
            "a project named 'jaffle' already exists",
        ),
        (
            vec!["--name", "again", "--dir", jaffle, "--connection", "nope"],
            "unknown connection 'nope'",
        ),
        (
            vec!["--name", "bad name", "--dir", jaffle],
            "invalid project name 'bad name'",
        ),
    ];
    for (args, message) in cases {
        let mut full = vec!["project", "add"];
        full.extend(&args);
        let (code, _, err) = run_cli(data, &full).await?;
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let (code, out, _) = run_cli(data, &["project", "remove", "--name", "jaffle"]).await?;
    assert_eq!((code, out.trim()), (0, "removed project 'jaffle'"));
    let (code, _, err) = run_cli(data, &["project", "remove", "--name", "jaffle"]).await?;
    assert_ne!(code, 0);
    assert!(err.contains("no stored project named 'jaffle'"), "{err}");

    // The tools read the store on every call: the removed project is gone at once.
    let client = s.gw.client().await?;
    let list = ok(&call(&client, "list_projects", json!({})).await?);
    let names: Vec<&str> = list["projects"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["defects"]);
    Ok(())
}

#[tokio::test]
async fn project_tools_map_validate_and_trace() -> anyhow::Result<()> {
    let s = setup().await?;
    let client = s.gw.client().await?;

    let list = ok(&call(&client, "list_projects", json!({})).await?);
    assert_eq!(
        list["projects"][0],
        json!({"name": "defects", "project_dir": s.defects.display().to_string(), "connection": "defects_wh",
               "description": null, "source": "store"})
    );

    let detail = ok(&call(&client, "get_project", json!({"name": "jaffle"})).await?);
    assert_eq!(detail["dbt_project_name"], "jaffle");
    assert_eq!(detail["dbt_version"], "1.10.23");
    assert_eq!(detail["adapter"], "duckdb");
    assert_eq!(detail["counts"]["models"], 6);
    assert_eq!(detail["counts"]["seeds"], 4);
    assert_eq!(detail["counts"]["snapshots"], 1);
    assert_eq!(
        detail["findings"],
        json!({"errors": 0, "warnings": 0, "infos": 0})
    );
    refused(
        &call(&client, "get_project", json!({"name": "nope"})).await?,
        "unknown project 'nope'; registered projects: defects, jaffle",
    );

    // Validation by name and by path; each seeded defect is reported with its id and node.
    for project_dir in [
        json!("defects"),
        json!(s.defects.join("models").display().to_string()),
    ] {
        let v = ok(&call(
            &client,
            "dbt_project_validate",
            json!({"project_dir": project_dir}),
        )
        .await?);
        assert_eq!(v["summary"], json!({"errors": 7, "warnings": 15, "infos": 9}));
        let found: Vec<(String, String)> = v["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        (
                            f["id"].as_str().unwrap_or("").to_owned(),
                            f["node"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (id, node) in [
            ("DBT301", "model.defects.customers"),
            ("DBT302", "model.defects.customers"),
            ("DBT401", "test.defects.unique_stg_payments_payment_id.3744510712"),
            ("DBT403", "model.defects.broken_model"),
            ("DBT201", "model.defects.orders_no_pk"),
            ("DBT105", "model.defects.customer_ltv"),
            ("DBT503", "model.defects.top_customers"),
            ("DBT601", "model.defects.orders_incremental"),
        ] {
            assert!(
                found.contains(&(id.to_owned(), node.to_owned())),
                "{id} on {node} missing from {found:?}"
            );
        }
    }
    let r = call(&client, "dbt_project_validate", json!({"project_dir": "defects"})).await?;
    let report = text(&r);
    assert!(
        report.contains(
            "models/marts/_marts.yml:14: error DBT301 documented-column-missing: column `customers.loyalty_tier`"
        ),
        "{report}"
    );
    assert!(
        report.ends_with(
            "sluice-dbt validate defects: 7 error(s), 15 warning(s), 9 info; failed (fail on error)"
        )
    );

    // The fence: only registered projects (by name or a path inside one).
    let outside = s.outside.display().to_string();
    let escape = format!("{}/../outside", s.jaffle.display());
    for bad in [outside.as_str(), escape.as_str(), "/etc", "jaffle/models"] {
        let r = call(&client, "dbt_project_map", json!({"project_dir": bad})).await?;
        refused(&r, "registered projects: defects (");
        assert!(
            text(&r).contains(&format!("jaffle ({})", s.jaffle.display())),
            "{}",
            text(&r)
        );
    }
    refused(
        &call(&client, "dbt_project_validate", json!({"project_dir": outside})).await?,
        "is outside every registered dbt project",
    );

    let map = call(
        &client,
        "dbt_project_map",
        json!({"project_dir": "defects", "focus": "work_order"}),
    )
    .await?;
    let body = text(&map);
    assert!(body.contains("broken_model"), "{body}");
    assert!(body.contains("customer_ltv"), "{body}");
    let map = call(
        &client,
        "dbt_project_map",
        json!({"project_dir": s.jaffle.display().to_string(), "focus": "model:customers", "include_columns": true}),
    )
    .await?;
    assert_eq!(ok(&map)["project"], "jaffle");
    assert!(text(&map).contains("customer_id"), "{}", text(&map));
    refused(
        &call(
            &client,
            "dbt_project_map",
            json!({"project_dir": "jaffle", "focus": "everything"}),
        )
        .await?,
        "unknown focus `everything`",
    );

    let up = ok(&call(
        &client,
        "dbt_lineage",
        json!({"project": "jaffle", "node": "customers", "direction": "upstream"}),
    )
    .await?);
    let names: Vec<(u64, &str)> = up["upstream"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| (n["depth"].as_u64().unwrap_or(0), n["name"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    assert!(names.contains(&(1, "stg_customers")), "{names:?}");
    assert!(names.contains(&(2, "jaffle_raw.customers")), "{names:?}");
    assert_eq!(up["downstream"], json!([]));
    let one = ok(&call(
        &client,
        "dbt_lineage",
        json!({"project": "jaffle", "node": "stg_orders", "direction": "downstream", "depth": 1}),
    )
    .await?);
    assert!(
        one["downstream"]
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|n| n["depth"] == 1)),
        "{one}"
    );
    refused(
        &call(
            &client,
            "dbt_lineage",
            json!({"project": "jaffle", "node": "nope"}),
        )
        .await?,
        "no node named 'nope' in project jaffle",
    );
    refused(
        &call(
            &client,
            "dbt_lineage",
            json!({"project": "jaffle", "node": "customers", "direction": "sideways"}),
        )
        .await?,
        "unknown direction 'sideways'",
    );

    // A project's own dbt_project.yml cannot lead the tools to files outside it.
    let config = s.jaffle.join("dbt_project.yml");
    let original = std::fs::read_to_string(&config)?;
    std::fs::write(&config, format!("{original}\ntarget-path: ../outside/target\n"))?;
    refused(
        &call(&client, "dbt_project_validate", json!({"project_dir": "jaffle"})).await?,
        &format!(
            "the target directory (target-path or --target-dir) resolves to {}, outside {}",
            std::fs::canonicalize(s.outside.join("target"))?.display(),
            s.jaffle.display()
        ),
    );
    std::fs::write(
        &config,
        format!("{original}\nmodel-paths: ['../outside/models']\n"),
    )?;
    refused(
        &call(
            &client,
            "dbt_lineage",
            json!({"project": "jaffle", "node": "customers"}),
        )
        .await?,
        "the project path `../outside/models` in dbt_project.yml resolves to",
    );
    Ok(())
}

#[tokio::test]
async fn error_parser_and_skeleton() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    // The message dbt 1.10 wrote to the defects fixture's run_results.json for its broken model.
    let run_results: Value =
        serde_json::from_slice(&std::fs::read(fixture("defects/target/run_results.json"))?)?;
    let message = run_results["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["status"] == "error"))
        .and_then(|r| r["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    let output = format!(
        "12:00:00  Failure in model broken_model (models/marts/broken_model.sql)\n12:00:00    {message}\n"
    );
    let parsed = ok(&call(&client, "dbt_error_parser", json!({"error_output": output})).await?);
    let e = &parsed["errors"][0];
    assert_eq!(e["node"], "broken_model");
    assert_eq!(e["path"], "models/marts/broken_model.sql");
    assert_eq!(e["category"], "missing_column");
    assert!(
        e["suggested_fix"]
            .as_str()
            .unwrap_or("")
            .contains("shipping_address"),
        "{e}"
    );
    assert_eq!(parsed["errors"].as_array().map(Vec::len), Some(1));
    insta::assert_snapshot!(
        "dbt_error_parser_text",
        text(&call(&client, "dbt_error_parser", json!({"error_output": output})).await?)
    );
    refused(
        &call(&client, "dbt_error_parser", json!({"error_output": "  "})).await?,
        "error_output is empty",
    );

    let sk = call(
        &client,
        "generate_sql_skeleton",
        json!({"model_name": "customer_ltv", "yml_columns": "customer_id, lifetime_value", "ref_tables": "customers,shop.payments"}),
    )
    .await?;
    let sql = ok(&sk)["sql"].as_str().unwrap_or("").to_owned();
    assert!(sql.contains("select * from {{ ref('customers') }}"), "{sql}");
    assert!(
        sql.contains("select * from {{ source('shop', 'payments') }}"),
        "{sql}"
    );
    assert!(sql.contains("null as lifetime_value"), "{sql}");
    assert_eq!(text(&sk), sql);
    refused(
        &call(
            &client,
            "generate_sql_skeleton",
            json!({"model_name": "x'); drop", "yml_columns": "a"}),
        )
        .await?,
        "invalid model name",
    );
    Ok(())
}

#[tokio::test]
async fn projects_from_the_config_file_win_and_roots_widen_the_fence() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let jaffle = project_copy(tmp.path(), "jaffle")?;
    let roots = tmp.path().join("roots");
    project_copy(&roots, "defects")?;
    let config = tmp.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[[connections]]\nname = 'jaffle_wh'\nkind = 'duckdb'\ndsn = '{}'\n\
             [connections.policy]\ndenied_tables = ['customers']\n\n\
             [[projects]]\nname = 'jaffle'\ndir = 'jaffle'\nconnection = 'jaffle_wh'\ndescription = 'from config'\n\n\
             [dbt]\nproject_roots = ['roots']\n",
            jaffle.join("jaffle.duckdb").display()
        ),
    )?;
    let config_arg = config.display().to_string();
    let data = tmp.path().join("data");
    let (code, _, err) = run_cli(
        &data,
        &[
            "project",
            "add",
            "--config",
            &config_arg,
            "--name",
            "jaffle",
            "--dir",
            jaffle.to_str().unwrap_or(""),
        ],
    )
    .await?;
    assert_ne!(code, 0);
    assert!(err.contains("'jaffle' is defined in the config file"), "{err}");
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config_arg],
        data_dir: Some(data),
        ..Launch::default()
    })
    .await?;
    let client = gw.client().await?;
    let list = ok(&call(&client, "list_projects", json!({})).await?);
    assert_eq!(
        list["projects"],
        json!([{"name": "jaffle", "project_dir": jaffle.display().to_string(), "connection": "jaffle_wh",
                "description": "from config", "source": "config"}])
    );
    let c = ok(&call(
        &client,
        "check_model_schema",
        json!({"connection_name": "jaffle_wh", "model_name": "orders", "yml_columns": ""}),
    )
    .await?);
    assert_eq!(c["matches"], true, "{c}");
    // Verification SQL is governed like an agent's: the connection's policy refuses the denied table.
    let r = call(
        &client,
        "check_model_schema",
        json!({"connection_name": "jaffle_wh", "model_name": "customers", "yml_columns": ""}),
    )
    .await?;
    refused(&r, "customers");
    let (_, out, _) = run_cli(&gw.data_dir, &["audit", "--limit", "1"]).await?;
    let last: Value = serde_json::from_str(out.trim())?;
    assert_eq!(
        (last["tool"].as_str(), last["decision"].as_str()),
        (Some("check_model_schema"), Some("denied"))
    );
    assert_eq!(last["rule"], "denied_table");
    // A project under a configured root may be named by path without being registered.
    let under_root = std::fs::canonicalize(roots.join("defects"))?;
    let v = ok(&call(
        &client,
        "dbt_project_validate",
        json!({"project_dir": under_root.display().to_string()}),
    )
    .await?);
    assert_eq!(v["project"], "defects");
    refused(
        &call(
            &client,
            "dbt_project_validate",
            json!({"project_dir": tmp.path().display().to_string()}),
        )
        .await?,
        &format!("project roots: {}", roots.display()),
    );
    Ok(())
}

/// The first join of `find_join_path`'s best path: (origin, reason).
async fn first_join(
    client: &rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>,
    connection: &str,
    from: &str,
    to: &str,
) -> anyhow::Result<(String, String)> {
    let paths = ok(&call(
        client,
        "find_join_path",
        json!({"connection_name": connection, "from_table": from, "to_table": to}),
    )
    .await?);
    let join = &paths["paths"][0]["joins"][0];
    Ok((
        join["origin"].as_str().unwrap_or("").to_owned(),
        join["reason"].as_str().unwrap_or("").to_owned(),
    ))
}

#[tokio::test]
async fn a_bound_projects_tests_document_the_keys_of_its_views() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let jaffle = project_copy(tmp.path(), "jaffle")?;
    let config = tmp.path().join("sluice.toml");
    let db = jaffle.join("jaffle.duckdb");
    std::fs::write(
        &config,
        format!(
            "[[connections]]\nname = 'bound'\nkind = 'duckdb'\ndsn = '{db}'\n\n\
             [[connections]]\nname = 'unbound'\nkind = 'duckdb'\ndsn = '{db}'\n\n\
             [[projects]]\nname = 'jaffle'\ndir = 'jaffle'\nconnection = 'bound'\n",
            db = db.display()
        ),
    )?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Launch::default()
    })
    .await?;
    let client = gw.client().await?;
    // stg_orders and stg_customers are views: the engine declares no keys for them. The project's
    // relationships test says how they join; without the project, only naming conventions do.
    let (origin, reason) = first_join(&client, "bound", "stg_orders", "stg_customers").await?;
    assert_eq!(origin, "declared", "{reason}");
    assert!(
        reason.contains("dbt relationships test stg_orders.customer_id -> stg_customers.customer_id"),
        "{reason}"
    );
    let (origin, reason) = first_join(&client, "unbound", "stg_orders", "stg_customers").await?;
    assert_eq!(origin, "inferred", "{reason}");
    assert!(!reason.contains("dbt"), "{reason}");
    Ok(())
}

#[tokio::test]
async fn a_key_without_the_scope_is_refused() -> anyhow::Result<()> {
    let s = setup().await?;
    let (code, key, err) = run_cli(
        &s.gw.data_dir,
        &["key", "create", "--name", "q", "--scope", "query"],
    )
    .await?;
    assert_eq!(code, 0, "{err}");
    let client = s.gw.client_with_key(key.trim()).await?;
    refused(
        &call(&client, "dbt_project_validate", json!({"project_dir": "jaffle"})).await?,
        "lacks the 'schema' scope needed by dbt_project_validate",
    );
    ok(&call(
        &client,
        "validate_model_output",
        json!({"connection_name": "jaffle_wh", "model_name": "orders"}),
    )
    .await?);
    Ok(())
}
