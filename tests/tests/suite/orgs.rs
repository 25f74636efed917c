//! Organizations, roles and connection grants end to end: what a key of one org can reach of another (nothing,
//! on every path: connections, queries, schema snapshots, history, audit, cursors, projects), roles as scope
//! sets, keys limited to some connections, and an org removed while the gateway runs.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use pretty_assertions::assert_eq;
use rmcp::RoleClient;
use rmcp::model::ClientConfig;
use rmcp::service::RunningService;
use serde_json::{Value, json};
use sluice_e2e::{Gateway, call, text};

type Client = RunningService<RoleClient, ClientConfig>;

async fn cli(gw: &Gateway, args: &[&str]) -> Result<String> {
    let out = gw.cli(args).await?;
    if !out.status.success() {
        bail!(
            "sluice {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

async fn cli_fails(gw: &Gateway, args: &[&str]) -> Result<String> {
    let out = gw.cli(args).await?;
    if out.status.success() {
        bail!("sluice {} succeeded", args.join(" "));
    }
    Ok(String::from_utf8(out.stderr)?)
}

async fn ok(client: &Client, tool: &str, args: Value) -> Result<Value> {
    let r = call(client, tool, args.clone()).await?;
    if r.is_error == Some(true) {
        bail!("{tool} {args} failed: {}", text(&r));
    }
    Ok(r.structured_content.clone().unwrap_or(Value::Null))
}

async fn refused(client: &Client, tool: &str, args: Value) -> Result<String> {
    let r = call(client, tool, args.clone()).await?;
    if r.is_error != Some(true) {
        bail!("{tool} {args} succeeded: {}", text(&r));
    }
    Ok(text(&r))
}

fn names(list: &Value, field: &str, key: &str) -> Vec<String> {
    list[field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c[key].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A DuckDB warehouse holding one table, `table`.
fn warehouse(path: &Path, table: &str) -> Result<()> {
    let conn = duckdb::Connection::open(path)?;
    conn.execute_batch(&format!(
        "CREATE TABLE {table} (id INTEGER, secret VARCHAR);
         INSERT INTO {table} SELECT i, 'acme-' || repeat('x', 30) || i FROM range(3000) t(i);"
    ))?;
    Ok(())
}

/// Waits until `key` lists `expected` connections (the gateway reloads stored connections on a revision
/// change, within a poll interval).
async fn wait_for_connections(client: &Client, expected: &[&str]) -> Result<()> {
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = names(
            &ok(client, "list_database_connections", json!({})).await?,
            "connections",
            "name",
        );
        if seen == expected {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("connections {seen:?}, expected {expected:?}")
}

#[tokio::test]
async fn a_key_of_one_org_reaches_nothing_of_another() -> Result<()> {
    let gw = Gateway::up().await?;
    let dir = tempfile::tempdir()?;
    let acme_db = dir.path().join("acme.duckdb");
    warehouse(&acme_db, "acme_only")?;
    let extra_db = dir.path().join("extra.duckdb");
    warehouse(&extra_db, "extra_only")?;
    let acme_db = acme_db.display().to_string();
    let extra_db = extra_db.display().to_string();

    let out = cli(&gw, &["org", "create", "--name", "acme"]).await?;
    assert!(out.contains("created organization 'acme'"), "{out}");
    let err = cli_fails(&gw, &["org", "create", "--name", "acme"]).await?;
    assert!(
        err.contains("an organization named 'acme' already exists"),
        "{err}"
    );
    // acme has a connection named like local's `demo`, on its own file, and one more.
    cli(
        &gw,
        &[
            "connection",
            "add",
            "--org",
            "acme",
            "--name",
            "demo",
            "--kind",
            "duckdb",
            "--dsn",
            &acme_db,
        ],
    )
    .await?;
    cli(
        &gw,
        &[
            "connection",
            "add",
            "--org",
            "acme",
            "--name",
            "extra",
            "--kind",
            "duckdb",
            "--dsn",
            &extra_db,
        ],
    )
    .await?;
    let jaffle = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dbt/jaffle");
    cli(
        &gw,
        &[
            "project",
            "add",
            "--org",
            "acme",
            "--name",
            "shop",
            "--dir",
            jaffle.to_str().context("path")?,
            "--connection",
            "demo",
        ],
    )
    .await?;
    let err = cli_fails(
        &gw,
        &[
            "project",
            "add",
            "--org",
            "acme",
            "--name",
            "p2",
            "--dir",
            jaffle.to_str().context("path")?,
            "--connection",
            "nope",
        ],
    )
    .await?;
    assert!(
        err.contains("unknown connection 'nope' in organization 'acme'"),
        "{err}"
    );
    let admin = cli(
        &gw,
        &[
            "key", "create", "--org", "acme", "--name", "admin", "--role", "admin",
        ],
    )
    .await?;
    let err = cli_fails(&gw, &["key", "create", "--org", "nowhere", "--name", "x"]).await?;
    assert!(
        err.contains("no organization named 'nowhere'; organizations: acme, local"),
        "{err}"
    );
    let orgs = cli(&gw, &["org", "list"]).await?;
    assert!(orgs.contains("acme\t1 active keys\t2 connections"), "{orgs}");

    let local = gw.client().await?;
    let acme = gw.client_with_key(&admin).await?;
    wait_for_connections(&acme, &["demo", "extra"]).await?;
    // Local sees only its own connection, under the same name: its own warehouse.
    assert_eq!(
        names(
            &ok(&local, "list_database_connections", json!({})).await?,
            "connections",
            "name"
        ),
        ["demo"]
    );
    let tables = |v: &Value| names(v, "tables", "name");
    let acme_tables = tables(&ok(&acme, "list_tables", json!({"connection_name": "demo"})).await?);
    assert_eq!(acme_tables, ["acme_only"]);
    let local_tables = tables(&ok(&local, "list_tables", json!({"connection_name": "demo"})).await?);
    assert!(
        !local_tables.contains(&"acme_only".to_owned()),
        "{local_tables:?}"
    );
    // A name only acme has is unknown to local: nothing says it exists elsewhere.
    let t = refused(
        &local,
        "describe_table",
        json!({"connection_name": "extra", "table_name": "extra_only"}),
    )
    .await?;
    assert!(
        t.contains("unknown connection 'extra'; available connections: demo"),
        "{t}"
    );
    let t = refused(
        &local,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT * FROM acme_only"}),
    )
    .await?;
    assert!(t.contains("acme_only"), "{t}");
    // Schema snapshots are per org: local's snapshot of `demo` never shows acme's table.
    let t = refused(
        &local,
        "describe_table",
        json!({"connection_name": "demo", "table_name": "acme_only"}),
    )
    .await?;
    assert!(t.contains("acme_only"), "{t}");
    let d = ok(
        &acme,
        "describe_table",
        json!({"connection_name": "demo", "table_name": "acme_only"}),
    )
    .await?;
    assert_eq!(d["name"], "acme_only", "{d}");

    // History: acme's statement is in acme's history only.
    ok(
        &acme,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT count(*) AS acme_rows FROM acme_only"}),
    )
    .await?;
    let h = ok(&local, "query_history", json!({"connection_name": "demo"})).await?;
    assert!(!h.to_string().contains("acme_rows"), "{h}");
    let h = ok(&acme, "query_history", json!({"connection_name": "demo"})).await?;
    assert!(h.to_string().contains("acme_rows"), "{h}");

    // Cursors: an acme cursor (the result is larger than a page) is nothing to local.
    let page = ok(
        &acme,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT * FROM acme_only", "row_limit": 3000}),
    )
    .await?;
    let cursor = page["cursor"]
        .as_str()
        .context("a result larger than one page has a cursor")?;
    let t = refused(
        &local,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT * FROM acme_only", "cursor": cursor}),
    )
    .await?;
    assert!(
        t.contains(&format!("cursor '{cursor}' is unknown, used up or expired")),
        "{t}"
    );

    // Projects: acme's project is acme's.
    let p = ok(&acme, "list_projects", json!({})).await?;
    assert_eq!(names(&p, "projects", "name"), ["shop"]);
    let p = ok(&local, "list_projects", json!({})).await?;
    assert!(names(&p, "projects", "name").is_empty(), "{p}");
    let t = refused(&local, "get_project", json!({"name": "shop"})).await?;
    assert!(t.contains("shop"), "{t}");

    // Audit: each org's log holds only its own calls.
    let audit = |text: String| -> Vec<Value> {
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let acme_audit = audit(cli(&gw, &["audit", "--org", "acme", "--limit", "500"]).await?);
    assert!(!acme_audit.is_empty());
    assert!(acme_audit.iter().all(|r| r["org_id"] == "acme"), "{acme_audit:?}");
    let local_audit = audit(cli(&gw, &["audit", "--limit", "500"]).await?);
    assert!(
        local_audit.iter().all(|r| r["org_id"] == "local"),
        "{local_audit:?}"
    );
    assert!(
        !local_audit.iter().any(|r| r.to_string().contains("acme_rows")),
        "local's audit shows none of acme's statements"
    );

    // The org removed while the gateway runs: its key stops working within a second or so.
    let out = cli(&gw, &["org", "remove", "--name", "acme"]).await?;
    assert!(
        out.contains("removed organization 'acme': 1 keys, 2 connections, 1 projects"),
        "{out}"
    );
    let err = cli_fails(&gw, &["org", "remove", "--name", "local"]).await?;
    assert!(err.contains("'local' organization cannot be removed"), "{err}");
    let mut refused_after = None;
    for i in 0..50 {
        if gw.client_with_key(&admin).await.is_err() {
            refused_after = Some(i);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused_after.is_some(),
        "a removed org's key still works after 5 s"
    );
    Ok(())
}

#[tokio::test]
async fn roles_are_scope_sets_and_grants_limit_connections() -> Result<()> {
    let gw = Gateway::up().await?;
    let dir = tempfile::tempdir()?;
    let extra_db = dir.path().join("extra.duckdb");
    warehouse(&extra_db, "extra_only")?;
    cli(
        &gw,
        &[
            "connection",
            "add",
            "--name",
            "extra",
            "--kind",
            "duckdb",
            "--dsn",
            &extra_db.display().to_string(),
        ],
    )
    .await?;

    let viewer = cli(&gw, &["key", "create", "--name", "v", "--role", "viewer"]).await?;
    let err = cli_fails(&gw, &["key", "create", "--name", "x", "--role", "boss"]).await?;
    assert!(
        err.contains("unknown role 'boss'; roles are: viewer, analyst, engineer, admin"),
        "{err}"
    );
    let err = cli_fails(
        &gw,
        &[
            "key", "create", "--name", "x", "--role", "viewer", "--scope", "query",
        ],
    )
    .await?;
    assert!(err.contains("cannot be used with"), "{err}");
    let err = cli_fails(&gw, &["key", "create", "--name", "x", "--connection", "ghost"]).await?;
    assert!(
        err.contains(
            "--connection ghost: no such connection in organization 'local'; its connections: demo, extra"
        ),
        "{err}"
    );
    let limited = cli(
        &gw,
        &[
            "key",
            "create",
            "--name",
            "only-extra",
            "--role",
            "analyst",
            "--connection",
            "extra",
        ],
    )
    .await?;
    let keys = cli(&gw, &["key", "list"]).await?;
    assert!(
        keys.lines()
            .any(|l| l.starts_with("v\t") && l.contains("\tviewer\tall connections")),
        "{keys}"
    );
    assert!(
        keys.lines().any(|l| l.starts_with("only-extra\t")
            && l.contains("query schema sandbox")
            && l.ends_with("\tanalyst\textra")),
        "{keys}"
    );

    // A viewer reads schemas and may not query.
    let v = gw.client_with_key(&viewer).await?;
    ok(&v, "list_tables", json!({"connection_name": "demo"})).await?;
    let t = refused(
        &v,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 1"}),
    )
    .await?;
    assert!(t.contains("query"), "{t}");

    // A key limited to `extra` sees only it; `demo` is refused and says why.
    let l = gw.client_with_key(&limited).await?;
    wait_for_connections(&l, &["extra"]).await?;
    ok(
        &l,
        "query_database",
        json!({"connection_name": "extra", "sql": "SELECT count(*) FROM extra_only"}),
    )
    .await?;
    for (tool, args) in [
        (
            "query_database",
            json!({"connection_name": "demo", "sql": "SELECT 1"}),
        ),
        ("list_tables", json!({"connection_name": "demo"})),
        (
            "find_join_path",
            json!({"connection_name": "demo", "from_table": "orders", "to_table": "customers"}),
        ),
    ] {
        let t = refused(&l, tool, args).await?;
        assert!(
            t.contains("this API key ('only-extra') is not granted the connection 'demo'; it may use: extra"),
            "{tool}: {t}"
        );
    }
    let last: Value = serde_json::from_str(&cli(&gw, &["audit", "--limit", "1"]).await?)?;
    assert_eq!(
        (last["decision"].as_str(), last["rule"].as_str()),
        (Some("denied"), Some("connection_not_granted"))
    );
    Ok(())
}
