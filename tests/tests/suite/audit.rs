//! The audit log for operators: streamed as JSON lines to a rotated file (every committed record, literals
//! redacted, nothing missing against the store) and read back with `sluice audit --since --tool --org`.

use anyhow::{Context as _, Result};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use sluice_e2e::{Gateway, Launch, call};

fn records(text: &str) -> Result<Vec<Value>> {
    text.lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("not a JSON line: {l}")))
        .collect()
}

#[tokio::test]
async fn the_audit_log_streams_to_a_rotated_file_and_reads_back_filtered() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        "[audit]\nstream_file = \"audit/audit.jsonl\"\nstream_rotate_bytes = 4096\nstream_keep = 50\n",
    )?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Launch::default()
    })
    .await?;
    let client = gw.client().await?;
    for i in 0..20 {
        let sql = format!("SELECT count(*) FROM orders WHERE status = 'secret-literal-{i}'");
        call(
            &client,
            "query_database",
            json!({"connection_name": "demo", "sql": sql}),
        )
        .await?;
        call(&client, "list_tables", json!({"connection_name": "demo"})).await?;
    }
    // A call returns after its record is committed, and the stream is written right after the commit.
    let stream_dir = dir.path().join("audit");
    let mut files: Vec<_> = std::fs::read_dir(&stream_dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    assert!(files.len() >= 3, "rotated at 4 KiB: {files:?}");
    let mut streamed = Vec::new();
    for f in &files {
        let meta = std::fs::metadata(f)?;
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", f.display());
        assert!(
            meta.len() <= 4_096 + 2_048,
            "{} is {} bytes",
            f.display(),
            meta.len()
        );
        streamed.extend(records(&std::fs::read_to_string(f)?)?);
    }
    let out = gw.cli(&["audit", "--limit", "1000"]).await?;
    let stored = records(&String::from_utf8(out.stdout)?)?;
    assert_eq!(
        streamed.len(),
        stored.len(),
        "every committed record is streamed once"
    );
    assert_eq!(stored.len(), 40);
    let text = streamed.iter().map(Value::to_string).collect::<String>();
    assert!(
        !text.contains("secret-literal"),
        "literals are redacted in the stream"
    );
    assert!(
        streamed
            .iter()
            .all(|r| r["org_id"] == "local" && r["ts"].is_string())
    );

    // Filters: by tool, by time (an age or RFC 3339), and a clear error for a bad time.
    let out = gw
        .cli(&["audit", "--limit", "1000", "--tool", "list_tables"])
        .await?;
    let tables = records(&String::from_utf8(out.stdout)?)?;
    assert_eq!(tables.len(), 20);
    assert!(tables.iter().all(|r| r["tool"] == "list_tables"));
    let out = gw.cli(&["audit", "--limit", "1000", "--since", "1h"]).await?;
    assert_eq!(records(&String::from_utf8(out.stdout)?)?.len(), 40);
    let out = gw.cli(&["audit", "--since", "2999-01-01T00:00:00Z"]).await?;
    assert!(records(&String::from_utf8(out.stdout)?)?.is_empty());
    let out = gw.cli(&["audit", "--since", "yesterday"]).await?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains(
            "'yesterday' is neither an RFC 3339 time (2026-12-07T09:00:00Z) nor an age (90s, 15m, 2h, 7d)"
        ),
        "{err}"
    );
    Ok(())
}

/// `SLUICE_LOG_FORMAT=json`: every line the gateway logs is a JSON object, and the lines of a tool call carry
/// its span: tool, org and a request id of its own.
#[tokio::test]
async fn json_logs_carry_each_calls_request_id() -> Result<()> {
    let gw = Gateway::launch(Launch {
        env: vec![("SLUICE_LOG_FORMAT".into(), "json".into())],
        ..Launch::default()
    })
    .await?;
    let client = gw.client().await?;
    for _ in 0..2 {
        call(&client, "list_tables", json!({"connection_name": "demo"})).await?;
    }
    let log = std::fs::read_to_string(gw.data_dir.join("gateway.log"))?;
    let lines = records(&log)?;
    assert!(!lines.is_empty());
    let calls: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "tool call ok" && l["span"]["tool"] == "list_tables")
        .collect();
    assert_eq!(calls.len(), 2, "{log}");
    let ids: Vec<&str> = calls
        .iter()
        .filter_map(|l| l["span"]["request"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{calls:?}");
    assert!(
        ids.iter()
            .all(|id| id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit())),
        "{ids:?}"
    );
    assert_ne!(ids[0], ids[1], "each call has its own request id");
    assert!(
        calls
            .iter()
            .all(|l| l["span"]["org"] == "local" && l["level"] == "INFO")
    );

    let out = tokio::process::Command::new(sluice_e2e::sluice_bin())
        .args(["config", "show"])
        .env("SLUICE_LOG_FORMAT", "xml")
        .output()
        .await?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)?.contains("SLUICE_LOG_FORMAT is 'xml'; use json or text"),
        "a bad format is refused with the fix"
    );
    Ok(())
}

/// `[server] metrics_listen`: Prometheus metrics on their own address, without a key, counting what the
/// gateway did: tool calls by outcome, refusals by rule, authentication failures by reason, audit commits,
/// introspection, and the pools' sessions.
#[tokio::test]
async fn metrics_count_calls_refusals_auth_failures_and_pools() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sluice.toml");
    let sqlite = dir.path().join("small.sqlite");
    std::fs::File::create(&sqlite)?;
    std::fs::write(
        &config,
        format!(
            "[server]\nmetrics_listen = \"127.0.0.1:0\"\n\n[[connections]]\nname = \"lite\"\nkind = \"sqlite\"\ndsn = \"{}\"\n",
            sqlite.display()
        ),
    )?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Launch::default()
    })
    .await?;
    let printed = gw.printed();
    let url = printed
        .lines()
        .find_map(|l| l.strip_prefix("sluice: metrics on "))
        .context("the metrics address is printed")?
        .trim()
        .to_owned();
    let client = gw.client().await?;
    call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 1"}),
    )
    .await?;
    call(
        &client,
        "query_database",
        json!({"connection_name": "lite", "sql": "SELECT 1"}),
    )
    .await?;
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT * FROM read_csv('/etc/passwd')"}),
    )
    .await?;
    assert_eq!(r.is_error, Some(true));
    call(&client, "list_tables", json!({"connection_name": "demo"})).await?;
    call(&client, "schema_overview", json!({"connection_name": "demo"})).await?;
    let bad = reqwest::Client::new()
        .post(&gw.url)
        .bearer_auth("sluice_not_a_key")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await?;
    assert_eq!(bad.status(), 401);

    let scrape = reqwest::get(&url).await?;
    assert_eq!(scrape.status(), 200);
    let text = scrape.text().await?;
    for line in [
        "sluice_tool_calls_total{tool=\"query_database\",outcome=\"ok\"} 2",
        "sluice_tool_calls_total{tool=\"query_database\",outcome=\"denied\"} 1",
        "sluice_refusals_total{rule=\"file_access_function\"} 1",
        "sluice_tool_calls_total{tool=\"list_tables\",outcome=\"ok\"} 1",
        "sluice_auth_failures_total{reason=\"unknown\"} 1",
        "sluice_pool_sessions{org=\"local\",connection=\"lite\",state=\"max\"} 5",
        "sluice_tool_call_seconds_count{tool=\"query_database\"} 3",
        "# EOF",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(text.contains("sluice_audit_write_seconds_count"), "{text}");
    assert!(text.contains("sluice_introspection_seconds_count 1"), "{text}");
    Ok(())
}
