//! `dbt parse` before validation, with the operator's dbt binary (`[dbt] binary`): the manifest refreshed,
//! its failures reported, a hanging dbt killed, a missing binary named, progress reported.

use pretty_assertions::assert_eq;

use super::*;

/// The real dbt-core + dbt-duckdb that generated the fixtures (tests/fixtures/dbt/install-dbt.sh, run by
/// scripts/setup-test-deps.sh), or `None` when that venv was never created.
fn real_dbt() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let dbt = Path::new(&home).join(".cache/sluice/dbt-venv/bin/dbt");
    if dbt.is_file() {
        Some(dbt)
    } else {
        eprintln!(
            "SKIPPED: {} does not exist; run tests/fixtures/dbt/install-dbt.sh (scripts/setup-test-deps.sh \
             does) to test dbt parse with real dbt",
            dbt.display()
        );
        None
    }
}

/// A gateway whose config registers `projects` (name, directory) and names `binary` as the dbt executable.
async fn gateway_with_dbt(
    tmp: &Path,
    binary: &Path,
    timeout_secs: u64,
    projects: &[(&str, &Path)],
) -> anyhow::Result<Gateway> {
    let mut config = String::new();
    for (name, dir) in projects {
        config.push_str(&format!(
            "[[projects]]\nname = '{name}'\ndir = '{}'\n\n",
            dir.display()
        ));
    }
    config.push_str(&format!(
        "[dbt]\nbinary = '{}'\nparse_timeout_secs = {timeout_secs}\n",
        binary.display()
    ));
    let path = tmp.join("sluice.toml");
    std::fs::write(&path, config)?;
    Gateway::launch(Launch {
        args: vec!["--config".into(), path.display().to_string()],
        data_dir: Some(tmp.join("data")),
        ..Launch::default()
    })
    .await
}

fn finding_ids(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn dbt_parse_refreshes_the_manifest_and_reports_its_failures() -> anyhow::Result<()> {
    let Some(dbt) = real_dbt() else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    // An edit made after the last build: a new model the committed manifest knows nothing of.
    let edited = project_copy(tmp.path(), "jaffle")?;
    std::fs::write(
        edited.join("models/marts/big_orders.sql"),
        "select order_id, amount from {{ ref('orders') }} where amount > 10\n",
    )?;
    let manifest = std::fs::read_to_string(edited.join("target/manifest.json"))?;
    assert!(!manifest.contains("model.jaffle.big_orders"));
    // A dbt_project.yml dbt cannot read.
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken)?;
    let broken = project_copy(&broken, "jaffle")?;
    std::fs::write(
        broken.join("dbt_project.yml"),
        "name: jaffle\nversion: \"1.0.0\"\nconfig-version: 2\nprofile: jaffle\nmodels: [unclosed\n",
    )?;
    let gw = gateway_with_dbt(tmp.path(), &dbt, 300, &[("edited", &edited), ("broken", &broken)]).await?;
    let client = gw.client().await?;

    let v = ok(&call(&client, "dbt_project_validate", json!({"project_dir": "edited"})).await?);
    let parse = &v["dbt_parse"];
    assert_eq!(
        (&parse["status"], &parse["ran"], &parse["exit_code"]),
        (&json!("succeeded"), &json!(true), &Value::Null),
        "{v}"
    );
    assert!(parse["duration_ms"].as_u64().is_some_and(|ms| ms > 0), "{parse}");
    // dbt itself wrote the new model into the manifest the analysis read.
    let manifest = std::fs::read_to_string(edited.join("target/manifest.json"))?;
    assert!(manifest.contains("\"model.jaffle.big_orders\""));
    let map = ok(&call(
        &client,
        "dbt_project_map",
        json!({"project_dir": "edited", "focus": "model:big_orders"}),
    )
    .await?);
    let map = map["map"].as_str().unwrap_or("");
    assert!(map.contains("big_orders") && map.contains("orders"), "{map}");
    let lineage = ok(&call(
        &client,
        "dbt_lineage",
        json!({"project": "edited", "node": "big_orders", "direction": "upstream", "depth": 1}),
    )
    .await?);
    assert_eq!(lineage["unique_id"], "model.jaffle.big_orders");
    assert_eq!(lineage["upstream"][0]["name"], "orders");

    // A failing parse is reported with dbt's own message; the call succeeds on the artifacts as found.
    let r = call(&client, "dbt_project_validate", json!({"project_dir": "broken"})).await?;
    let v = ok(&r);
    let parse = &v["dbt_parse"];
    assert_eq!(
        (&parse["status"], &parse["ran"], &parse["exit_code"]),
        (&json!("failed"), &json!(true), &json!(2)),
        "{v}"
    );
    let tail: Vec<&str> = parse["output_tail"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        tail.iter().any(|l| l.contains("Syntax error near line 6")),
        "{tail:?}"
    );
    assert!(tail.iter().all(|l| !l.contains('\u{1b}')), "{tail:?}");
    let text = text(&r);
    assert!(text.starts_with("dbt parse FAILED (exit code 2)"), "{text}");
    assert!(
        text.contains("may be stale") && text.contains("Syntax error near line 6"),
        "{text}"
    );
    // The analysis still ran, and found the broken YAML itself.
    assert!(finding_ids(&v).contains(&"DBT004".to_owned()), "{v}");
    Ok(())
}

#[tokio::test]
async fn a_hanging_dbt_is_killed_at_the_timeout() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let jaffle = project_copy(tmp.path(), "jaffle")?;
    let hanging = tmp.path().join("hanging-dbt");
    std::fs::write(&hanging, "#!/bin/sh\necho \"parsing $*\"\nsleep 300\n")?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&hanging, std::fs::Permissions::from_mode(0o755))?;
    }
    let gw = gateway_with_dbt(tmp.path(), &hanging, 1, &[("jaffle", &jaffle)]).await?;
    let client = gw.client().await?;
    let started = std::time::Instant::now();
    let r = call(&client, "dbt_project_validate", json!({"project_dir": "jaffle"})).await?;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let v = ok(&r);
    let parse = &v["dbt_parse"];
    assert_eq!(
        (&parse["status"], &parse["ran"], &parse["exit_code"]),
        (&json!("timed_out"), &json!(true), &Value::Null),
        "{v}"
    );
    assert!(
        parse["duration_ms"]
            .as_u64()
            .is_some_and(|ms| (1_000..10_000).contains(&ms)),
        "{parse}"
    );
    assert_eq!(
        parse["output_tail"],
        json!([format!(
            "parsing parse --project-dir {} --profiles-dir {} --target-path {} --log-path {}",
            jaffle.canonicalize()?.display(),
            jaffle.canonicalize()?.display(),
            jaffle.canonicalize()?.join("target").display(),
            jaffle.canonicalize()?.join("logs").display()
        )])
    );
    assert!(
        text(&r).starts_with("dbt parse timed out after 1 s and was killed"),
        "{}",
        text(&r)
    );
    // The committed artifacts were validated as found.
    assert_eq!(v["summary"], json!({"errors": 0, "warnings": 0, "infos": 0}));
    Ok(())
}

#[tokio::test]
async fn a_missing_dbt_binary_is_a_clear_error_and_no_binary_means_no_parse() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let jaffle = project_copy(tmp.path(), "jaffle")?;
    let missing = tmp.path().join("venv/bin/dbt");
    let gw = gateway_with_dbt(tmp.path(), &missing, 5, &[("jaffle", &jaffle)]).await?;
    let client = gw.client().await?;
    refused(
        &call(&client, "dbt_project_validate", json!({"project_dir": "jaffle"})).await?,
        &format!(
            "dbt parse could not run: the configured dbt binary {} does not exist",
            missing.display()
        ),
    );
    drop(client);
    drop(gw);

    let s = setup().await?;
    let client = s.gw.client().await?;
    let r = call(&client, "dbt_project_validate", json!({"project_dir": "jaffle"})).await?;
    let v = ok(&r);
    assert_eq!(
        (&v["dbt_parse"]["status"], &v["dbt_parse"]["ran"]),
        (&json!("not_configured"), &json!(false))
    );
    assert!(
        text(&r).starts_with("dbt parse was not run (no dbt binary is configured"),
        "{}",
        text(&r)
    );
    Ok(())
}

/// `dbt_project_validate` called with a `progressToken` reports its steps (the manifest refresh, then the
/// artifacts) on its own response stream, ending at its total.
#[tokio::test]
async fn validation_reports_progress_when_asked() -> anyhow::Result<()> {
    let s = setup().await?;
    let session = sluice_e2e::raw_session(&s.gw).await?;
    let validate = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "dbt_project_validate", "arguments": {"project_dir": "jaffle"},
        "_meta": {"progressToken": "validate"}}});
    let body = sluice_e2e::raw_post(&s.gw, Some(&session), validate.to_string())
        .send()
        .await?
        .text()
        .await?;
    let messages = sluice_e2e::sse_messages(&body);
    let progress: Vec<&serde_json::Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress" && m["params"]["progressToken"] == "validate")
        .map(|m| &m["params"])
        .collect();
    assert!(
        progress
            .first()
            .is_some_and(|p| p["progress"] == 0.0 && p["total"] == 2.0),
        "{body}"
    );
    assert!(progress.last().is_some_and(|p| p["progress"] == 2.0), "{body}");
    assert!(
        messages.iter().any(|m| m["id"] == 2 && m["result"].is_object()),
        "{body}"
    );
    Ok(())
}
