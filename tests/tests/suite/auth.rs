//! Authentication is never off: every failure mode answers 401 with a challenge, and scopes are enforced.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;
use sluice_e2e::{Gateway, Launch, call, text};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

async fn init_with(gw: &Gateway, header: Option<(&str, String)>) -> anyhow::Result<reqwest::Response> {
    let mut req = reqwest::Client::new()
        .post(&gw.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(INIT);
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    Ok(req.send().await?)
}

async fn assert_401(resp: reqwest::Response, message: &str) -> anyhow::Result<()> {
    assert_eq!(resp.status(), 401);
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .expect("WWW-Authenticate")
        .to_str()?
        .to_owned();
    assert!(challenge.starts_with("Bearer realm=\"sluice\""), "{challenge}");
    let body: serde_json::Value = resp.json().await?;
    assert!(
        body["message"].as_str().unwrap_or_default().contains(message),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn missing_wrong_and_malformed_keys_get_401() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    assert_401(init_with(&gw, None).await?, "missing API key").await?;
    assert_401(
        init_with(&gw, Some(("authorization", "Bearer sluice_notakey".into()))).await?,
        "invalid API key",
    )
    .await?;
    assert_401(
        init_with(&gw, Some(("x-api-key", "sluice_wrong".into()))).await?,
        "invalid API key",
    )
    .await?;
    assert_401(
        init_with(&gw, Some(("authorization", format!("Basic {}", gw.key)))).await?,
        "malformed Authorization",
    )
    .await?;
    // The same key is accepted in either header, and on `/` too.
    assert_eq!(
        init_with(&gw, Some(("authorization", format!("Bearer {}", gw.key))))
            .await?
            .status(),
        200
    );
    assert_eq!(
        init_with(&gw, Some(("x-api-key", gw.key.clone())))
            .await?
            .status(),
        200
    );
    let root = reqwest::Client::new()
        .post(format!("http://{}/", gw.addr))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(INIT)
        .send()
        .await?;
    assert_eq!(root.status(), 401);
    // rmcp's client fails to connect with a wrong key.
    assert!(gw.client_with_key("sluice_wrong").await.is_err());
    Ok(())
}

#[tokio::test]
async fn health_endpoints_need_no_key() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let http = reqwest::Client::new();
    let health = http.get(format!("http://{}/healthz", gw.addr)).send().await?;
    assert_eq!(health.status(), 200);
    let ready = http.get(format!("http://{}/readyz", gw.addr)).send().await?;
    assert_eq!(
        (ready.status().as_u16(), ready.text().await?),
        (200, "ready\n".to_owned())
    );
    Ok(())
}

#[tokio::test]
async fn revoked_keys_stop_working_while_the_gateway_runs() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let out = gw.cli(&["key", "create", "--name", "agent"]).await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout)?.trim().to_owned();
    // Used once so it sits in the gateway's cache.
    assert_eq!(
        init_with(&gw, Some(("authorization", format!("Bearer {key}"))))
            .await?
            .status(),
        200
    );
    let out = gw.cli(&["key", "revoke", "agent"]).await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut last = 0;
    for _ in 0..50 {
        last = init_with(&gw, Some(("authorization", format!("Bearer {key}"))))
            .await?
            .status()
            .as_u16();
        if last == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, 401, "revoked key still accepted after 5 s");
    assert_401(
        init_with(&gw, Some(("authorization", format!("Bearer {key}")))).await?,
        "revoked",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn scopes_are_checked_per_tool() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let out = gw
        .cli(&["key", "create", "--name", "schema-only", "--scope", "schema"])
        .await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout)?.trim().to_owned();
    let client = gw.client_with_key(&key).await?;
    let tables = call(&client, "list_tables", json!({"connection_name": "demo"})).await?;
    assert_eq!(tables.is_error, Some(false));
    let q = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 1"}),
    )
    .await?;
    assert_eq!(q.is_error, Some(true));
    assert!(text(&q).contains("lacks the 'query' scope"), "{}", text(&q));
    Ok(())
}

/// A key created for some tools sees only those in tools/list and is refused the others with the reason;
/// its scopes still apply on top. Unknown names are refused when the key is created.
#[tokio::test]
async fn a_key_limited_to_some_tools_sees_and_calls_only_those() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let out = gw
        .cli(&[
            "key",
            "create",
            "--name",
            "analyst",
            "--tool",
            "query_database",
            "--tool",
            "list_tables",
        ])
        .await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout)?.trim().to_owned();
    let client = gw.client_with_key(&key).await?;
    let names = tool_names(&client).await?;
    assert_eq!(names, ["list_tables", "query_database"]);
    let ok = call(&client, "list_tables", json!({"connection_name": "demo"})).await?;
    assert_eq!(ok.is_error, Some(false), "{}", text(&ok));
    let refused = call(
        &client,
        "describe_table",
        json!({"connection_name": "demo", "table_name": "orders"}),
    )
    .await?;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains(
            "this API key may not use describe_table: it was created for list_tables, query_database only"
        ),
        "{}",
        text(&refused)
    );
    client.cancel().await?;
    // The key list shows what each key may use.
    let list = String::from_utf8(gw.cli(&["key", "list"]).await?.stdout)?;
    assert!(
        list.lines()
            .any(|l| l.starts_with("analyst\t") && l.contains("\tlist_tables,query_database\t")),
        "{list}"
    );
    let out = gw
        .cli(&["key", "create", "--name", "typo", "--tool", "query_databse"])
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--tool names no tool called query_databse"),
        "{stderr}"
    );
    Ok(())
}

/// `[server] tools` and `disabled_tools` decide what the whole deployment offers: tools/list shows only
/// those, a call to another says it is not offered, and a misspelt name stops the gateway at start.
#[tokio::test]
async fn a_deployment_offers_only_its_configured_tools() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        "[server]\ntools = [\"list_database_connections\", \"query_database\", \"execute_code\"]\n\
         disabled_tools = [\"execute_code\"]\n",
    )?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await?;
    let client = gw.client().await?;
    let names = tool_names(&client).await?;
    assert_eq!(names, ["list_database_connections", "query_database"]);
    let err = call(&client, "execute_code", json!({"code": "print(1)"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tool 'execute_code' is not offered by this gateway"),
        "{err}"
    );
    client.cancel().await?;
    gw.stop().await?;

    // A list that leaves nothing to offer is refused at start too, rather than serving no tools.
    std::fs::write(&config, "[server]\ntools = []\n")?;
    let out = tokio::process::Command::new(sluice_e2e::sluice_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("SLUICE_LOG", "warn")
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("leave no tool to offer"),
        "{stderr}"
    );

    std::fs::write(&config, "[server]\ndisabled_tools = [\"execute_cod\"]\n")?;
    let out = tokio::process::Command::new(sluice_e2e::sluice_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("SLUICE_LOG", "warn")
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("[server] disabled_tools names no tool called execute_cod"),
        "{stderr}"
    );
    Ok(())
}

/// The names of the tools a client sees, sorted.
async fn tool_names(
    client: &rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>,
) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await?
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    Ok(names)
}
