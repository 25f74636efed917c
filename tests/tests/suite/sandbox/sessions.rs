//! Sandbox sessions follow MCP sessions: a stateless call gets a workspace of its own, ending or idling
//! out an MCP session removes its workspace and cursors (also while the daemon is down).

use pretty_assertions::assert_eq;

use super::*;

#[tokio::test]
async fn stateless_calls_get_a_workspace_of_their_own() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = config_in(dir.path(), &sandbox_section("native"))?;
    let gw = Gateway::launch(Launch {
        args: vec![
            "--config".to_owned(),
            path.display().to_string(),
            "--stateless".to_owned(),
            "true".to_owned(),
        ],
        env: sandbox_on(),
        ..Default::default()
    })
    .await?;
    let client = gw.client().await?;
    let r = call(
        &client,
        "execute_code",
        json!({"code": "open('kept.txt', 'w').write('x')"}),
    )
    .await?;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_eq!(structured(&r)["workspace_kept"], false);
    assert!(
        text(&r).contains("no MCP session, so its workspace was removed"),
        "{}",
        text(&r)
    );
    // The next call starts from an empty workspace, and no workspace stays open in the daemon.
    let listing = ok(&client, "fs_list_directory", json!({"path": "."})).await?;
    assert_eq!(entry_names(&listing), vec!["outputs"]);
    let t = refused(
        &client,
        "execute_code",
        json!({"code": "pass", "inputs": ["kept.txt"]}),
    )
    .await?;
    assert!(t.contains("this call has no MCP session"), "{t}");
    let status = ok(&client, "sandbox_status", json!({})).await?;
    assert_eq!(status["capacity"]["sessions"], 0, "{status}");
    Ok(())
}

/// Polls `sandbox_status` (through `observer`, a session that never opens a workspace) until the daemon
/// holds `want` sessions, for up to `within`; returns the count it saw last.
async fn wait_for_sessions(observer: &Client, want: u64, within: std::time::Duration) -> anyhow::Result<u64> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let status = ok(observer, "sandbox_status", json!({})).await?;
        let sessions = status["capacity"]["sessions"].as_u64().unwrap_or(u64::MAX);
        if sessions == want || std::time::Instant::now() > deadline {
            return Ok(sessions);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn ending_an_mcp_session_removes_its_workspace_and_cursors() -> anyhow::Result<()> {
    // Small pages, so that a 300-row result leaves a cursor behind.
    let config = format!(
        "[limits]\nmax_result_bytes = 2048\n\n{}",
        sandbox_section("native")
    );
    let (gw, _cfg) = up_with(&config).await?;
    let observer = gw.client().await?;
    let a = gw.client().await?;
    let b = gw.client().await?;
    ok(&a, "fs_write_file", json!({"path": "a.txt", "content": "a"})).await?;
    let sql = "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 300) \
               SELECT n, repeat('x', 100) AS pad FROM s ORDER BY n";
    let page = ok(
        &a,
        "query_database",
        json!({"connection_name": "demo", "sql": sql}),
    )
    .await?;
    assert!(page["cursor"].is_string(), "{page}");
    ok(&b, "fs_write_file", json!({"path": "b.txt", "content": "b"})).await?;
    let status = ok(&observer, "sandbox_status", json!({})).await?;
    assert_eq!(status["capacity"]["sessions"], 2, "{status}");

    // rmcp's client ends its session with DELETE /mcp when it closes; the gateway closes that session's
    // workspace in the daemon at once rather than after the daemon's idle expiry (an hour by default).
    let started = std::time::Instant::now();
    a.cancel().await?;
    let left = wait_for_sessions(&observer, 1, std::time::Duration::from_secs(2)).await?;
    assert_eq!(left, 1, "a's workspace outlived its session by 2 s");
    eprintln!(
        "workspace removed {:?} after the client closed",
        started.elapsed()
    );
    // The other session's workspace and files are untouched.
    let read = ok(&b, "fs_read_file", json!({"path": "b.txt"})).await?;
    assert_eq!(read["content"], "b");
    // The gateway's log says what went (the cursor has no other outside witness: no other session
    // could read it anyway).
    let said = "MCP session ended: dropped 1 result cursors, closed 1 sandbox workspaces";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !gw.log().contains(said) {
        assert!(std::time::Instant::now() < deadline, "{}", gw.log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    b.cancel().await?;
    assert_eq!(
        wait_for_sessions(&observer, 0, std::time::Duration::from_secs(2)).await?,
        0
    );
    Ok(())
}

/// `[server] session_idle_secs`: a session nobody uses ends by itself, and takes its workspace with it;
/// a request on it afterwards is told the session is gone.
#[tokio::test]
async fn an_idle_mcp_session_expires_with_its_workspace() -> anyhow::Result<()> {
    let config = format!("[server]\nsession_idle_secs = 1\n\n{}", sandbox_section("native"));
    let (gw, _cfg) = up_with(&config).await?;
    let observer = gw.client().await?;
    let key = gw.key.as_str();
    let session = raw_session(&gw, key).await?;
    let write = raw_write(&gw, key, &session, "idle.txt").await?;
    // The observer keeps its own session alive by asking; the idle one ends after ~1 s.
    let left = wait_for_sessions(&observer, 0, std::time::Duration::from_secs(4)).await?;
    assert_eq!(
        left, 0,
        "the idle session's workspace outlived its 1 s keep-alive by 3 s"
    );
    let again = raw(&gw, key, reqwest::Method::POST, Some(&session))
        .body(write)
        .send()
        .await?;
    assert_eq!(again.status(), reqwest::StatusCode::NOT_FOUND);
    assert_eq!(again.text().await?, "Not Found: Session not found");
    Ok(())
}

/// Opens an MCP session by hand (initialize, then the initialized notification) and returns its id.
async fn raw_session(gw: &Gateway, key: &str) -> anyhow::Result<String> {
    let resp = raw(gw, key, reqwest::Method::POST, None)
        .body(RAW_INIT)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let session = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    resp.text().await?;
    let resp = raw(gw, key, reqwest::Method::POST, Some(&session))
        .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .send()
        .await?;
    assert_eq!(resp.status(), 202);
    Ok(session)
}

/// Writes `path` in `session`'s workspace with `fs_write_file`, asserts it succeeded, and returns the
/// request body (to send it again).
async fn raw_write(gw: &Gateway, key: &str, session: &str, path: &str) -> anyhow::Result<String> {
    let write = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"fs_write_file","arguments":{{"path":"{path}","content":"x"}}}}}}"#
    );
    let body = raw(gw, key, reqwest::Method::POST, Some(session))
        .body(write.clone())
        .send()
        .await?
        .text()
        .await?;
    assert!(body.contains(r#""isError":false"#), "{body}");
    Ok(write)
}

const RAW_INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

/// A request to the gateway's MCP endpoint with `key`, in session `session` when given.
fn raw(gw: &Gateway, key: &str, method: reqwest::Method, session: Option<&str>) -> reqwest::RequestBuilder {
    let mut r = reqwest::Client::new()
        .request(method, gw.url.clone())
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    if let Some(s) = session {
        r = r
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-06-18");
    }
    r
}

#[tokio::test]
async fn ending_a_session_succeeds_while_the_daemon_is_down() -> anyhow::Result<()> {
    let mut daemon = SandboxDaemon::start().await?;
    let (gw, key, _dir) = serve_with(&daemon).await?;

    // A session by hand, so that the DELETE's own status can be checked.
    let session = raw_session(&gw, &key).await?;
    raw_write(&gw, &key, &session, "kept.txt").await?;

    daemon.kill().await?;
    let started = std::time::Instant::now();
    let resp = raw(&gw, &key, reqwest::Method::DELETE, Some(&session))
        .send()
        .await?;
    assert!(
        resp.status().is_success(),
        "DELETE answered {} with the daemon down",
        resp.status()
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "DELETE took {:?}",
        started.elapsed()
    );
    // The session is over for the transport, and the failed clean-up is logged, not fatal.
    let resp = raw(&gw, &key, reqwest::Method::POST, Some(&session))
        .body(r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#)
        .send()
        .await?;
    assert_eq!(resp.status(), 404);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !gw
        .log()
        .contains("closing the workspace of an ended MCP session failed")
    {
        assert!(std::time::Instant::now() < deadline, "{}", gw.log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The gateway goes on serving, and uses the daemon again once it is back.
    daemon.restart().await?;
    let client = gw.client_with_key(&key).await?;
    let out = run(&client, "print(4)", json!([])).await?;
    assert_eq!(out["stdout"], "4\n");
    gw.stop().await?;
    Ok(())
}
