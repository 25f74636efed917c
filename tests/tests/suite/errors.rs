//! Bad input gets a clear answer and loses nothing.

use pretty_assertions::assert_eq;
use serde_json::json;
use sluice_e2e::{Gateway, call, text};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

fn post(gw: &Gateway) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(&gw.url)
        .header("authorization", format!("Bearer {}", gw.key))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
}

#[tokio::test]
async fn malformed_json_rpc_is_a_parse_error() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let resp = post(&gw).body("{not json").send().await?;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["error"]["code"], json!(-32700), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Parse error: the body is not valid JSON"),
        "{body}"
    );
    let resp = post(&gw).body(r#"{"hello": "world"}"#).send().await?;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["error"]["code"], json!(-32600), "{body}");
    // Nothing was lost: the gateway keeps serving.
    assert_eq!(post(&gw).body(INIT).send().await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn unknown_tool_and_bad_arguments_are_protocol_errors() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let err = call(&client, "drop_everything", json!({}))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown tool 'drop_everything'"), "{err}");
    let err = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": 5}),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("invalid arguments for query_database: invalid type: integer `5`, expected a string"),
        "{err}"
    );
    let err = call(&client, "query_database", json!({"connection_name": "demo"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing field `sql`"), "{err}");
    // The session still works afterwards.
    let ok = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 1"}),
    )
    .await?;
    assert_eq!(ok.is_error, Some(false));
    Ok(())
}

#[tokio::test]
async fn unknown_connection_lists_the_available_ones() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "prod", "sql": "SELECT 1"}),
    )
    .await?;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(
        text(&r),
        "Error in query_database: unknown connection 'prod'; available connections: demo"
    );
    Ok(())
}

#[tokio::test]
async fn syntax_errors_give_the_position() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT *\nFROM orders WHERE"}),
    )
    .await?;
    assert_eq!(r.is_error, Some(true));
    let t = text(&r);
    assert!(t.contains("[parse_error]") && t.contains("line 2"), "{t}");
    Ok(())
}

#[tokio::test]
async fn engine_errors_are_tool_errors() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT no_such_column FROM orders"}),
    )
    .await?;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("no_such_column"), "{}", text(&r));
    let r = call(
        &client,
        "describe_table",
        json!({"connection_name": "demo", "table_name": "nope"}),
    )
    .await?;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).contains("no table or view 'nope' in connection 'demo'; tables: main."),
        "{}",
        text(&r)
    );
    Ok(())
}

#[tokio::test]
async fn oversized_bodies_get_413() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"query_database","arguments":{{"connection_name":"demo","sql":"SELECT '{}'"}}}}}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let resp = post(&gw).body(big.clone()).send().await?;
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await?;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("exceeds the 2097152-byte limit"),
        "{body}"
    );
    // The same body streamed without a Content-Length is refused where it is read.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = post(&gw).body(stream).send().await?;
    assert_eq!(resp.status(), 413);
    // The gateway keeps serving.
    assert_eq!(post(&gw).body(INIT).send().await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn missing_and_locked_duckdb_files_are_explained() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("missing.duckdb");
    let locked = dir.path().join("locked.duckdb");
    {
        let c = duckdb::Connection::open(&locked)?;
        c.execute_batch("CREATE TABLE t AS SELECT 1 AS x")?;
    }
    for (name, path) in [("gone", &missing), ("busy", &locked)] {
        let out = gw
            .cli(&[
                "connection",
                "add",
                "--name",
                name,
                "--kind",
                "duckdb",
                "--dsn",
                path.to_str().unwrap(),
            ])
            .await?;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // A writer (like a dbt run) holds the file.
    let writer = duckdb::Connection::open(&locked)?;
    let client = gw.client().await?;
    let mut gone = None;
    for _ in 0..50 {
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": "gone", "sql": "SELECT 1"}),
        )
        .await?;
        if !text(&r).contains("unknown connection") {
            gone = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let gone = gone.expect("connection registered within 5 s");
    assert_eq!(gone.is_error, Some(true));
    assert!(
        text(&gone).contains("missing.duckdb does not exist"),
        "{}",
        text(&gone)
    );
    let busy = call(
        &client,
        "query_database",
        json!({"connection_name": "busy", "sql": "SELECT * FROM t"}),
    )
    .await?;
    assert_eq!(busy.is_error, Some(true));
    assert!(
        text(&busy).contains("is locked by another process"),
        "{}",
        text(&busy)
    );
    drop(writer);
    let ok = call(
        &client,
        "query_database",
        json!({"connection_name": "busy", "sql": "SELECT * FROM t"}),
    )
    .await?;
    assert_eq!(ok.is_error, Some(false), "{}", text(&ok));
    Ok(())
}

/// Makes the gateway's own store refuse every new audit record, as a full disk or a broken store would.
async fn break_the_audit_log(gw: &Gateway) -> anyhow::Result<()> {
    use sqlx::ConnectOptions as _;
    let mut store = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(gw.data_dir.join("sluice.db"))
        .connect()
        .await?;
    sqlx::query(
        "CREATE TRIGGER audit_broken BEFORE INSERT ON audit_log \
         BEGIN SELECT RAISE(ABORT, 'disk I/O error (simulated)'); END",
    )
    .execute(&mut store)
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_failed_audit_write_withholds_the_result() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let args = json!({"connection_name": "demo", "sql": "SELECT count(*) AS n FROM customers"});
    let ok = call(&client, "query_database", args.clone()).await?;
    assert_eq!(ok.is_error, Some(false), "{}", text(&ok));

    break_the_audit_log(&gw).await?;
    let refused = call(&client, "query_database", args).await?;
    assert_eq!(refused.is_error, Some(true));
    let message = text(&refused);
    assert!(
        message.contains("the audit log could not be written, so this call's result is withheld"),
        "{message}"
    );
    // No row of the result leaks through the error.
    assert!(refused.structured_content.is_none(), "{refused:?}");
    Ok(())
}

#[tokio::test]
async fn with_strict_audit_off_a_failed_audit_write_is_logged_not_fatal() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[audit]\nstrict = false\n")?;
    let gw = Gateway::launch(sluice_e2e::Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await?;
    let client = gw.client().await?;
    break_the_audit_log(&gw).await?;
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 42 AS answer"}),
    )
    .await?;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert!(text(&r).contains("42"), "{}", text(&r));
    Ok(())
}
