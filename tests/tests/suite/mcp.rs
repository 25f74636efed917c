//! MCP behaviour through rmcp's real client: initialize, tools/list, the tools, sessions and stateless use.

use pretty_assertions::assert_eq;
use serde_json::json;
use sluice_e2e::{Gateway, Launch, call, raw_post, raw_session, sse_messages, text};

#[tokio::test]
async fn initialize_reports_sluice() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let info = client.peer_info().expect("server info after initialize");
    assert_eq!(info.server_info.as_ref().map(|i| i.name.as_str()), Some("sluice"));
    assert!(info.capabilities.tools.is_some());
    assert!(
        info.instructions
            .as_deref()
            .unwrap_or_default()
            .contains("list_database_connections")
    );
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn tools_list_snapshot() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let tools = client.list_all_tools().await?;
    let value = serde_json::to_value(&tools)?;
    insta::assert_json_snapshot!("tools_list", value);
    client.cancel().await?;
    Ok(())
}

/// Every skill of the plugin is an MCP prompt, rendered from the same SKILL.md the plugin ships.
#[tokio::test]
async fn skills_are_served_as_prompts() -> anyhow::Result<()> {
    use rmcp::model::GetPromptRequestParams;
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let info = client.peer_info().expect("server info after initialize");
    assert!(info.capabilities.prompts.is_some(), "prompts capability");
    let prompts = client.list_all_prompts().await?;
    let skills = std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../skills"))?
        .filter_map(Result::ok)
        .filter(|e| e.path().join("SKILL.md").is_file())
        .count();
    assert_eq!(prompts.len(), skills, "{prompts:?}");
    let explore = prompts
        .iter()
        .find(|p| p.name == "explore-warehouse")
        .expect("explore-warehouse");
    let args: Vec<&str> = explore
        .arguments
        .iter()
        .flatten()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(args, ["connection_name", "question"]);

    let mut arguments = serde_json::Map::new();
    arguments.insert("connection_name".into(), json!("demo"));
    arguments.insert("question".into(), json!("revenue by category"));
    let got = client
        .get_prompt(GetPromptRequestParams::new("explore-warehouse").with_arguments(arguments))
        .await?;
    let text = got.messages[0]
        .content
        .as_text()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    let skill = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../skills/explore-warehouse/SKILL.md"),
    )?;
    let body = skill.splitn(3, "---\n").nth(2).unwrap_or_default().trim_start();
    assert!(
        text.starts_with("Apply this guide to:\n- connection_name: demo\n- question: revenue by category"),
        "{text}"
    );
    assert!(text.ends_with(body), "the prompt is not the SKILL.md body");

    let err = client
        .get_prompt(GetPromptRequestParams::new("no-such-prompt"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown prompt 'no-such-prompt'"), "{err}");
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn query_database_returns_text_and_structured_rows() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let result = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 1 AS one, 'x' AS letter UNION ALL SELECT 2, NULL ORDER BY one"}),
    )
    .await?;
    assert_eq!(result.is_error, Some(false), "{}", text(&result));
    let s = result.structured_content.clone().expect("structured content");
    assert_eq!(s["rows"], json!([[1, "x"], [2, null]]));
    assert_eq!(
        s["columns"],
        json!([{"name": "one", "type": "INTEGER"}, {"name": "letter", "type": "VARCHAR"}])
    );
    assert_eq!(s["truncated"], json!(false));
    assert_eq!(s["row_limit"], json!(1000));
    let t = text(&result);
    assert!(
        t.starts_with("one | letter\n----+-------\n1   | x\n2   | NULL\n[2 rows, "),
        "{t}"
    );
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn types_are_exact() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let sql = "SELECT 42::BIGINT AS i, 9007199254740993::BIGINT AS big, 12.50::DECIMAL(10,2) AS d, 1.5::DOUBLE AS f,
                      true AS b, DATE '2024-02-29' AS day, TIMESTAMP '2024-02-29 13:45:00.123456' AS ts,
                      TIME '08:30:00' AS t, INTERVAL 1 DAY AS iv, NULL::INTEGER AS n, [1, 2] AS l, {'k': 'v'} AS s,
                      '\\x41'::BLOB AS bl";
    let result = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": sql}),
    )
    .await?;
    assert_eq!(result.is_error, Some(false), "{}", text(&result));
    let s = result.structured_content.expect("structured");
    assert_eq!(
        s["rows"][0],
        json!([42, "9007199254740993", "12.50", 1.5, true, "2024-02-29", "2024-02-29T13:45:00.123456", "08:30:00", "P1D", null, [1, 2], {"k": "v"}, "QQ=="])
    );
    let types: Vec<String> = s["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "BIGINT",
            "BIGINT",
            "DECIMAL(10,2)",
            "DOUBLE",
            "BOOLEAN",
            "DATE",
            "TIMESTAMP",
            "TIME",
            "INTERVAL",
            "INTEGER",
            "INTEGER[]",
            "STRUCT(k VARCHAR)",
            "BLOB"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn refused_sql_is_a_tool_error_with_rule() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let result = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "DROP TABLE customers"}),
    )
    .await?;
    assert_eq!(result.is_error, Some(true));
    let t = text(&result);
    assert!(t.starts_with("Refused by governance ["), "{t}");
    // Nothing was dropped.
    let result = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT count(*) AS n FROM customers"}),
    )
    .await?;
    assert_eq!(result.is_error, Some(false), "{}", text(&result));
    Ok(())
}

#[tokio::test]
async fn row_limit_caps_and_announces_truncation() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let result = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT * FROM orders", "row_limit": 5}),
    )
    .await?;
    let s = result.structured_content.clone().expect("structured");
    assert_eq!(s["row_count"], json!(5));
    assert_eq!(s["truncated"], json!(true));
    assert!(
        text(&result).contains("[TRUNCATED: the query returned more than 5 rows"),
        "{}",
        text(&result)
    );
    // A row_limit above the server maximum is clamped to it.
    let result = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 1", "row_limit": 10_000_000}),
    )
    .await?;
    assert_eq!(
        result.structured_content.expect("structured")["row_limit"],
        json!(10_000)
    );
    Ok(())
}

#[tokio::test]
async fn schema_tools_describe_the_demo() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let conns = call(&client, "list_database_connections", json!({})).await?;
    let s = conns.structured_content.clone().expect("structured");
    assert_eq!(s["connections"][0]["name"], json!("demo"));
    assert_eq!(s["connections"][0]["dialect"], json!("duckdb"));

    let tables = call(&client, "list_tables", json!({"connection_name": "demo"})).await?;
    let s = tables.structured_content.clone().expect("structured");
    let list = s["tables"].as_array().expect("tables");
    let base_tables = list.iter().filter(|t| t["kind"] == "table").count();
    assert!(base_tables >= 6, "{}", text(&tables));

    let orders = call(
        &client,
        "describe_table",
        json!({"connection_name": "demo", "table_name": "orders"}),
    )
    .await?;
    assert_eq!(orders.is_error, Some(false), "{}", text(&orders));
    let s = orders.structured_content.clone().expect("structured");
    assert!(!s["primary_key"].as_array().expect("pk").is_empty(), "{s}");
    assert!(!s["foreign_keys"].as_array().expect("fks").is_empty(), "{s}");
    assert!(text(&orders).contains("FK → main."), "{}", text(&orders));

    let qualified = call(
        &client,
        "describe_table",
        json!({"connection_name": "demo", "table_name": "main.orders"}),
    )
    .await?;
    assert_eq!(qualified.structured_content, orders.structured_content);
    Ok(())
}

#[tokio::test]
async fn demo_warehouse_is_realistic() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let tables = call(&client, "list_tables", json!({"connection_name": "demo"})).await?;
    let s = tables.structured_content.expect("structured");
    let (mut rows, mut fks, mut nullable_with_nulls) = (0, 0, 0);
    for t in s["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter(|t| t["kind"] == "table")
    {
        let name = t["name"].as_str().expect("name");
        let count = call(
            &client,
            "query_database",
            json!({"connection_name": "demo", "sql": format!("SELECT count(*) FROM {name}")}),
        )
        .await?;
        rows += count.structured_content.expect("structured")["rows"][0][0]
            .as_i64()
            .unwrap_or(0);
        let d = call(
            &client,
            "describe_table",
            json!({"connection_name": "demo", "table_name": name}),
        )
        .await?;
        let d = d.structured_content.expect("structured");
        fks += d["foreign_keys"].as_array().map(Vec::len).unwrap_or(0);
        for c in d["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter(|c| c["nullable"] == true)
        {
            let col = c["name"].as_str().expect("column");
            let sql = format!("SELECT count(*) FROM {name} WHERE {col} IS NULL");
            let n = call(
                &client,
                "query_database",
                json!({"connection_name": "demo", "sql": sql}),
            )
            .await?;
            if n.structured_content.expect("structured")["rows"][0][0]
                .as_i64()
                .unwrap_or(0)
                > 0
            {
                nullable_with_nulls += 1;
            }
        }
    }
    assert!(rows >= 10_000, "{rows} rows");
    assert!(fks >= 5, "{fks} foreign keys");
    assert!(
        nullable_with_nulls >= 2,
        "{nullable_with_nulls} columns hold NULLs"
    );
    let span = "SELECT date_diff('day', min(ordered_at), max(ordered_at)) AS days FROM orders";
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": span}),
    )
    .await?;
    let days = r.structured_content.expect("structured")["rows"][0][0]
        .as_i64()
        .unwrap_or(0);
    assert!(days >= 730, "dates span {days} days");
    Ok(())
}

#[tokio::test]
async fn validate_sql_shows_the_rewrite_without_running() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let ok = call(
        &client,
        "validate_sql",
        json!({"connection_name": "demo", "sql": "SELECT * FROM customers"}),
    )
    .await?;
    let s = ok.structured_content.clone().expect("structured");
    assert_eq!(s["valid"], json!(true));
    assert!(
        s["rewritten_sql"].as_str().unwrap_or_default().contains("LIMIT"),
        "{s}"
    );
    // Exactly as query_database runs it by default: 1,000 rows, and one more to tell whether it was cut.
    assert!(
        s["rewritten_sql"]
            .as_str()
            .unwrap_or_default()
            .ends_with("LIMIT 1001"),
        "{s}"
    );
    assert!(text(&ok).starts_with("VALID ✓"), "{}", text(&ok));
    let bad = call(
        &client,
        "validate_sql",
        json!({"connection_name": "demo", "sql": "DELETE FROM customers"}),
    )
    .await?;
    let s = bad.structured_content.clone().expect("structured");
    assert_eq!(s["valid"], json!(false));
    assert!(text(&bad).starts_with("INVALID ✗"), "{}", text(&bad));
    Ok(())
}

#[tokio::test]
async fn server_info_reports_limits_and_caller() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let r = call(&client, "server_info", json!({})).await?;
    let s = r.structured_content.expect("structured");
    assert_eq!(s["name"], json!("sluice"));
    assert_eq!(s["limits"]["max_rows"], json!(10_000));
    assert_eq!(s["caller"]["org"], json!("local"));
    assert!(
        s["protocol_versions"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-06-18"))
    );
    assert!(
        s["protocol_versions"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25"))
    );
    assert!(
        s["connectors"][0]["engine"]
            .as_str()
            .unwrap_or_default()
            .starts_with("DuckDB v2."),
        "{s}"
    );
    Ok(())
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

fn post(gw: &Gateway, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("http://{}{path}", gw.addr))
        .header("authorization", format!("Bearer {}", gw.key))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
}

#[tokio::test]
async fn sessions_negotiate_versions_and_stream_sse_on_both_paths() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    for path in ["/mcp", "/"] {
        let resp = post(&gw, path).body(INIT).send().await?;
        assert_eq!(resp.status(), 200, "{path}");
        assert!(
            resp.headers().get("mcp-session-id").is_some(),
            "{path}: session id"
        );
        assert!(
            resp.headers()["content-type"]
                .to_str()?
                .starts_with("text/event-stream"),
            "{path}"
        );
        let body = resp.text().await?;
        assert!(body.contains(r#""protocolVersion":"2025-06-18""#), "{body}");
    }
    let newer = INIT.replace("2025-06-18", "2025-11-25");
    let body = post(&gw, "/mcp").body(newer).send().await?.text().await?;
    assert!(body.contains(r#""protocolVersion":"2025-11-25""#), "{body}");
    // An unknown version is answered with one the server supports.
    let unknown = INIT.replace("2025-06-18", "1999-01-01");
    let body = post(&gw, "/mcp").body(unknown).send().await?.text().await?;
    assert!(
        body.contains(r#""protocolVersion":"20"#) && !body.contains("1999-01-01"),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn ending_a_session_answers_204_and_the_session_is_gone() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    for path in ["/mcp", "/"] {
        let resp = post(&gw, path).body(INIT).send().await?;
        let session = resp.headers()["mcp-session-id"].to_str()?.to_owned();
        resp.text().await?;
        let end = || {
            reqwest::Client::new()
                .delete(format!("http://{}{path}", gw.addr))
                .header("authorization", format!("Bearer {}", gw.key))
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", "2025-06-18")
        };
        // Clients expect 200 or 204 for a clean end (the Python SDK logs a failure for 202).
        let resp = end().send().await?;
        assert_eq!(resp.status(), 204, "{path}");
        assert_eq!(resp.text().await?, "", "{path}");
        // The session no longer exists: a call on it is refused rather than served.
        let resp = post(&gw, path)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18")
            .body(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
            .send()
            .await?;
        assert_eq!(resp.status(), 404, "{path}: {}", resp.text().await?);
    }
    Ok(())
}

/// `notifications/cancelled` stops a running statement: the call ends within a second or two instead of
/// running for minutes, its audit record says `cancelled`, and the connection serves the next call.
#[tokio::test]
async fn a_cancelled_call_stops_its_statement() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let session = raw_session(&gw).await?;
    let on_session = |body: String| raw_post(&gw, Some(&session), body);
    let long = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "query_database",
        "arguments": {"connection_name": "demo",
            "sql": "SELECT count(*) FROM range(100000000000) AS a(x) WHERE x % 7 = 3"}}});
    let started = std::time::Instant::now();
    let call = tokio::spawn(on_session(long.to_string()).send());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 7, "reason": "the user changed their mind"}});
    let resp = on_session(cancel.to_string()).send().await?;
    assert_eq!(resp.status(), 202);
    // The call's stream ends once its work is stopped (rmcp sends no response for a cancelled request).
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let resp = call.await??;
        anyhow::Ok(resp.text().await?)
    })
    .await;
    assert!(ended.is_ok(), "the cancelled call was still running after 10 s");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the cancelled call took {:?}",
        started.elapsed()
    );
    // The connection serves the next call at once.
    let next = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "query_database",
        "arguments": {"connection_name": "demo", "sql": "SELECT 41 + 1 AS n"}}});
    let body = on_session(next.to_string()).send().await?.text().await?;
    assert!(body.contains(r#""rows":[[42]]"#), "{body}");
    let audit = gw.cli(&["audit", "--limit", "5"]).await?;
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit
            .lines()
            .any(|l| l.contains(r#""decision":"cancelled""#) && l.contains("query_database")),
        "{audit}"
    );
    // A cancel for a request that does not exist is ignored, as the protocol says.
    let stray = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 999}});
    assert_eq!(on_session(stray.to_string()).send().await?.status(), 202);
    Ok(())
}

/// A call that carries a `progressToken` hears `notifications/progress` on its own response stream while
/// it works (here the date boundaries, per statement; a sandbox run in `sandbox.rs`).
#[tokio::test]
async fn long_calls_report_progress_when_asked() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let session = raw_session(&gw).await?;
    let on_session = |body: String| raw_post(&gw, Some(&session), body);
    let events = |body: &str| sse_messages(body);
    let progress_of = |events: &[serde_json::Value], token: &str| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|e| e["method"] == "notifications/progress" && e["params"]["progressToken"] == token)
            .map(|e| e["params"].clone())
            .collect()
    };

    let dates = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "get_date_boundaries", "arguments": {"connection_name": "demo"},
        "_meta": {"progressToken": "dates"}}});
    let body = on_session(dates.to_string()).send().await?.text().await?;
    let all = events(&body);
    let progress = progress_of(&all, "dates");
    assert!(
        !progress.is_empty(),
        "no progress for get_date_boundaries: {body}"
    );
    let last = progress.last().cloned().unwrap_or_default();
    assert_eq!(last["progress"], last["total"], "{last}");
    assert!(
        last["message"].as_str().unwrap_or_default().contains("relations"),
        "{last}"
    );
    // Progress only ever rises, also across the tables' and the views' statements.
    let values: Vec<f64> = progress.iter().filter_map(|p| p["progress"].as_f64()).collect();
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
    // The result still comes, after the progress.
    assert!(
        all.last()
            .is_some_and(|e| e["id"] == 2 && e["result"].is_object()),
        "{body}"
    );

    // Without a token, no progress is sent.
    let quiet = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
        "name": "get_date_boundaries", "arguments": {"connection_name": "demo"}}});
    let body = on_session(quiet.to_string()).send().await?.text().await?;
    assert!(!body.contains("notifications/progress"), "{body}");
    Ok(())
}

/// Runs `tests/conformance/strict-schemas.mjs` (Ajv in strict mode, the pinned tree the conformance
/// install provides) on a `tools/list` result; its status and output.
async fn strict_check(tools: &serde_json::Value) -> anyhow::Result<(bool, String)> {
    use tokio::io::AsyncWriteExt as _;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance");
    let install = tokio::process::Command::new(dir.join("install.sh"))
        .output()
        .await?;
    anyhow::ensure!(
        install.status.success(),
        "tests/conformance/install.sh failed: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let vars = String::from_utf8(install.stdout)?;
    let var = |name: &str| {
        vars.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("install.sh printed no {name}: {vars}"))
    };
    let mut child = tokio::process::Command::new(var("SLUICE_NODE")?)
        .arg(dir.join("strict-schemas.mjs"))
        .env("SLUICE_NODE_MODULES", var("SLUICE_NODE_MODULES")?)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    stdin.write_all(&serde_json::to_vec(tools)?).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[tokio::test]
async fn tool_schemas_pass_a_strict_validator() -> anyhow::Result<()> {
    // The check itself: schemars' integer formats are what Claude Code warned about on connect.
    let foreign = json!([{"name": "t", "inputSchema": {"type": "object",
        "properties": {"n": {"type": "integer", "format": "uint64", "minimum": 0}}}}]);
    let (passed, output) = strict_check(&foreign).await?;
    assert!(
        !passed && output.contains(r#"unknown format "uint64" ignored"#),
        "{output}"
    );

    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let tools = serde_json::to_value(client.list_all_tools().await?)?;
    client.cancel().await?;
    let (passed, output) = strict_check(&tools).await?;
    assert!(passed, "tool schemas a strict validator warns about:\n{output}");
    assert!(output.contains(" 0 problems"), "{output}");
    Ok(())
}

#[tokio::test]
async fn stateless_mode_answers_json_without_sessions() -> anyhow::Result<()> {
    let gw = Gateway::launch(Launch {
        args: vec!["--stateless".into(), "true".into()],
        ..Default::default()
    })
    .await?;
    let resp = post(&gw, "/mcp").body(INIT).send().await?;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("mcp-session-id").is_none());
    assert!(
        resp.headers()["content-type"]
            .to_str()?
            .starts_with("application/json")
    );
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"query_database","arguments":{"connection_name":"demo","sql":"SELECT 7 AS n"}}}"#;
    let resp = post(&gw, "/mcp")
        .header("mcp-protocol-version", "2025-06-18")
        .body(call)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await?;
    assert_eq!(v["result"]["structuredContent"]["rows"], json!([[7]]), "{v}");
    // rmcp's client works against it too.
    let client = gw.client().await?;
    let r = call_tool(&client).await?;
    assert_eq!(r.is_error, Some(false));
    Ok(())
}

async fn call_tool(
    client: &rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>,
) -> anyhow::Result<rmcp::model::CallToolResult> {
    call(client, "list_tables", json!({"connection_name": "demo"})).await
}

#[tokio::test]
async fn graceful_shutdown_on_sigterm() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    call(&client, "list_tables", json!({"connection_name": "demo"})).await?;
    let status = gw.stop().await?;
    assert!(status.success(), "exit status {status:?}");
    Ok(())
}
