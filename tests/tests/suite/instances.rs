//! Several gateway instances on one PostgreSQL store: the first admin key is created once, keys,
//! connections, projects and the audit log written through one instance or the CLI are seen by all, a
//! revoked key is refused everywhere within a second, and a query budget holds across instances.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_e2e::{Gateway, Launch, call, sluice_bin, text};
use sluice_test_servers::{Engine, Server};
use sqlx::Connection as _;

/// One master key for every instance: it seals DSNs and keys the API-key hash.
const MASTER_KEY: &str = "4f1c6a0e9b3d2f5a7c8e1b0d3f6a9c2e5b8d1f4a7c0e3b6d9f2a5c8e1b4d7f0a";

/// A fresh schema on the run's PostgreSQL server, and the store URL that selects it.
async fn store_url() -> String {
    store_url_named("several").await
}

/// A fresh schema `gw_<name>_<pid>` on the run's PostgreSQL server, and the store URL that selects it (also
/// used by the key-rotation suite).
pub(super) async fn store_url_named(name: &str) -> String {
    let server = tokio::task::spawn_blocking(|| Server::shared(Engine::Postgres))
        .await
        .unwrap();
    let schema = format!("gw_{name}_{}", std::process::id());
    let options = sqlx::postgres::PgConnectOptions::from_str(&server.dsn).unwrap();
    let mut admin = sqlx::PgConnection::connect_with(&options).await.unwrap();
    for sql in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    format!("{}?options=-c%20search_path%3D{schema}", server.dsn)
}

fn store_env(url: &str) -> Vec<(String, String)> {
    vec![
        ("SLUICE_STORE_URL".to_owned(), url.to_owned()),
        ("SLUICE_MASTER_KEY".to_owned(), MASTER_KEY.to_owned()),
    ]
}

async fn instance(dir: &Path, name: &str, url: &str, config: &Path) -> Gateway {
    let data = dir.join(name);
    let mut env = store_env(url);
    // Each instance would write the first key to its own data directory; only one creates it.
    env.push((
        "SLUICE_FIRST_KEY_FILE".to_owned(),
        data.join("local_api_key").display().to_string(),
    ));
    Gateway::launch(Launch {
        command: Some("serve"),
        args: vec!["--config".to_owned(), config.display().to_string()],
        env,
        data_dir: Some(data),
    })
    .await
    .unwrap()
}

/// `sluice ARGS` against the shared store, as an operator runs it from any host with the store's URL.
async fn cli(dir: &Path, url: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(sluice_bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("cli"))
        .env("SLUICE_STORE_URL", url)
        .env("SLUICE_MASTER_KEY", MASTER_KEY)
        .env("SLUICE_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sluice {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Whether `key` is accepted by `gw` (an MCP initialize answered rather than refused with 401).
async fn accepted(gw: &Gateway, key: &str) -> bool {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}});
    let status = reqwest::Client::new()
        .post(&gw.url)
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(init.to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success() || status == 401, "{status}");
    status.is_success()
}

fn warehouse(dir: &Path) -> PathBuf {
    let path = dir.join("wh.duckdb");
    let db = duckdb::Connection::open(&path).unwrap();
    db.execute_batch("CREATE TABLE t AS SELECT range AS n FROM range(1000);")
        .unwrap();
    path
}

#[tokio::test]
async fn instances_on_one_postgres_store_share_keys_connections_projects_audit_and_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_url().await;
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[budgets.keys.metered]\nqueries_per_day = 30\n").unwrap();

    // Two instances start at once on an empty store: exactly one creates the first admin key.
    let (a, b) = tokio::join!(
        instance(dir.path(), "a", &url, &config),
        instance(dir.path(), "b", &url, &config)
    );
    let created: Vec<&Gateway> = [&a, &b].into_iter().filter(|g| !g.key.is_empty()).collect();
    assert_eq!(created.len(), 1, "the first key is created once");
    let admin = created[0].key.clone();
    let keys = cli(dir.path(), &url, &["key", "list"]).await;
    let names: Vec<&str> = keys.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(names, ["admin"], "{keys}");
    for gw in [&a, &b] {
        assert!(
            accepted(gw, &admin).await,
            "the admin key works on every instance"
        );
        assert!(!gw.log().contains(&admin), "the key never reaches a log");
    }

    // A connection and a project added through the CLI reach both instances.
    let wh = warehouse(dir.path());
    cli(
        dir.path(),
        &url,
        &[
            "connection",
            "add",
            "--name",
            "wh",
            "--kind",
            "duckdb",
            "--dsn",
            &wh.display().to_string(),
        ],
    )
    .await;
    let project = dir.path().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("dbt_project.yml"), "name: proj\nversion: '1'\n").unwrap();
    cli(
        dir.path(),
        &url,
        &[
            "project",
            "add",
            "--name",
            "proj",
            "--dir",
            &project.display().to_string(),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    for gw in [&a, &b] {
        let client = gw.client_with_key(&admin).await.unwrap();
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": "wh", "sql": "SELECT count(*) AS c FROM t"}),
        )
        .await
        .unwrap();
        assert_eq!(r.is_error, Some(false), "{}", text(&r));
        assert!(text(&r).contains("1000"), "{}", text(&r));
        let r = call(&client, "list_projects", json!({})).await.unwrap();
        assert!(text(&r).contains("proj"), "{}", text(&r));
        client.cancel().await.unwrap();
    }

    // A budget of 30 queries for one key, spent by 8 clients over both instances at once: exactly 30 run.
    let metered = cli(dir.path(), &url, &["key", "create", "--name", "metered"]).await;
    let metered = metered
        .split_whitespace()
        .find(|w| w.starts_with("sluice_"))
        .unwrap()
        .to_owned();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let gw_url = if i % 2 == 0 { a.url.clone() } else { b.url.clone() };
        let key = metered.clone();
        tasks.push(tokio::spawn(async move {
            let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
                rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                    gw_url,
                )
                .auth_header(key),
            );
            let client = rmcp::ServiceExt::serve(rmcp::model::ClientConfig::default(), transport)
                .await
                .unwrap();
            let (mut ran, mut refused) = (0, 0);
            for _ in 0..6 {
                let r = call(
                    &client,
                    "query_database",
                    json!({"connection_name": "wh", "sql": "SELECT 1 AS one"}),
                )
                .await
                .unwrap();
                if r.is_error == Some(true) {
                    let t = text(&r);
                    assert!(
                        t.contains("the daily budget of API key 'metered' is exhausted"),
                        "{t}"
                    );
                    refused += 1;
                } else {
                    ran += 1;
                }
            }
            client.cancel().await.unwrap();
            (ran, refused)
        }));
    }
    let (mut ran, mut refused) = (0, 0);
    for t in tasks {
        let (r, f) = t.await.unwrap();
        ran += r;
        refused += f;
    }
    assert_eq!((ran, refused), (30, 18), "the budget holds across instances");

    // Every call through either instance is in the one audit log.
    let audit = cli(dir.path(), &url, &["audit", "--limit", "200"]).await;
    let queries = audit.lines().filter(|l| l.contains("query_database")).count();
    assert_eq!(queries, 2 + 48, "{audit}");

    // A key revoked through the CLI is refused by every instance within a second.
    assert!(accepted(&a, &metered).await && accepted(&b, &metered).await);
    cli(dir.path(), &url, &["key", "revoke", "metered"]).await;
    let revoked_at = Instant::now();
    let mut pending = vec![&a, &b];
    while !pending.is_empty() {
        let mut still = Vec::new();
        for gw in pending {
            if accepted(gw, &metered).await {
                still.push(gw);
            }
        }
        pending = still;
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "an instance still accepted the revoked key after {:?}",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A store that cannot be reached, a missing password file and two master keys at once each stop the start
/// with a message that names the problem, and no password is ever printed.
#[tokio::test]
async fn a_bad_store_setting_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let closed = sluice_test_servers::closed_port();
    let port = closed.port();
    let run = |env: Vec<(&'static str, String)>| {
        let mut cmd = tokio::process::Command::new(sluice_bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env_remove("SLUICE_MASTER_KEY")
            .env("SLUICE_SANDBOX", "false");
        for (k, v) in env {
            cmd.env(k, v);
        }
        async move {
            let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
                .await
                .unwrap()
                .unwrap();
            assert!(!out.status.success());
            String::from_utf8_lossy(&out.stderr).into_owned()
        }
    };
    let unreachable = format!("postgres://sluice:hunter2@127.0.0.1:{port}/sluice");
    let err = run(vec![("SLUICE_STORE_URL", unreachable)]).await;
    assert!(
        err.contains(&format!(
            "the PostgreSQL store at postgres://sluice:***@127.0.0.1:{port}/sluice could not be opened"
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");

    let err = run(vec![
        ("SLUICE_STORE_URL", "postgres://sluice@db/sluice".to_owned()),
        (
            "SLUICE_STORE_PASSWORD_FILE",
            "/nonexistent/store_password".to_owned(),
        ),
    ])
    .await;
    assert!(
        err.contains("the store password file /nonexistent/store_password could not be read"),
        "{err}"
    );

    let err = run(vec![("SLUICE_STORE_URL", "mysql://db/sluice".to_owned())]).await;
    assert!(
        err.contains("is neither postgres://user@host:port/database nor sqlite://path"),
        "{err}"
    );

    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, format!("{MASTER_KEY}\n")).unwrap();
    let err = run(vec![
        ("SLUICE_MASTER_KEY", MASTER_KEY.to_owned()),
        ("SLUICE_MASTER_KEY_FILE", key_file.display().to_string()),
    ])
    .await;
    assert!(
        err.contains("set SLUICE_MASTER_KEY or SLUICE_MASTER_KEY_FILE, not both"),
        "{err}"
    );
}

/// The master key read from a file (a compose secret) opens what the same key given inline sealed.
#[tokio::test]
async fn the_master_key_file_is_the_same_key_as_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_url_named("mkf").await;
    let wh = warehouse(dir.path());
    cli(
        dir.path(),
        &url,
        &[
            "connection",
            "add",
            "--name",
            "wh",
            "--kind",
            "duckdb",
            "--dsn",
            &wh.display().to_string(),
        ],
    )
    .await;
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, format!("{MASTER_KEY}\n")).unwrap();
    let data = dir.path().join("data");
    let gw = Gateway::launch(Launch {
        command: Some("serve"),
        args: vec![],
        env: vec![
            ("SLUICE_STORE_URL".to_owned(), url.clone()),
            (
                "SLUICE_MASTER_KEY_FILE".to_owned(),
                key_file.display().to_string(),
            ),
            (
                "SLUICE_FIRST_KEY_FILE".to_owned(),
                data.join("local_api_key").display().to_string(),
            ),
        ],
        data_dir: Some(data),
    })
    .await
    .unwrap();
    let client = gw.client().await.unwrap();
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "wh", "sql": "SELECT max(n) AS m FROM t"}),
    )
    .await
    .unwrap();
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert!(text(&r).contains("999"), "{}", text(&r));
}
