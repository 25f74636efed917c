//! The query-side tools over MCP on DuckDB and on real PostgreSQL, MariaDB and SQLite: pages and cursors,
//! byte caps, explain and cost estimates, CTE debugging, budgets, history, health, capabilities, pool
//! settings and clear connection errors.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use pretty_assertions::assert_eq;
use rmcp::RoleClient;
use rmcp::model::{CallToolResult, ClientConfig};
use rmcp::service::RunningService;
use serde_json::{Value, json};
use sluice_e2e::{Gateway, Launch, call, text};

type Client = RunningService<RoleClient, ClientConfig>;

/// Rows of 100 characters plus an id, in every engine's syntax for padding.
fn numbered_sql(pad: &str) -> String {
    format!(
        "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 300) \
         SELECT n, {pad} AS pad FROM s ORDER BY n"
    )
}

const PAD_STANDARD: &str = "repeat('x', 100)";
const PAD_SQLITE: &str = "substr(hex(zeroblob(50)), 1, 100)";
const PAGE_BYTES: u64 = 2_048;

// ---------------------------------------------------------------------------------------------------
// Servers: the same run-wide instances the connector tests use (tests/servers/start.sh).
// ---------------------------------------------------------------------------------------------------

fn servers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("servers")
}

fn listening(port: &str) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap_or(0))).is_ok()
}

fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The fixture owner's DSN of the run-wide `engine` server (`postgres` or `mariadb`), started on first use.
fn server_dsn(engine: &'static str) -> String {
    static STARTED: OnceLock<Mutex<HashMap<&'static str, String>>> = OnceLock::new();
    let started = STARTED.get_or_init(|| Mutex::new(HashMap::new()));
    let mut started = started.lock().unwrap();
    if let Some(dsn) = started.get(engine) {
        return dsn.clone();
    }
    let parent = std::os::unix::process::parent_id();
    let root = std::env::temp_dir().join(format!("sluice-servers-{parent}"));
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::File::create(root.join(format!("{engine}.lock"))).unwrap();
    lock.lock().unwrap();
    let dir = root.join(engine);
    let env = match std::fs::read_to_string(dir.join("env")).map(|t| parse_env(&t)) {
        Ok(env) if env.get("PORT").is_some_and(|p| listening(p)) => env,
        _ => {
            let out = std::process::Command::new("bash")
                .arg(servers_dir().join("start.sh"))
                .arg(engine)
                .arg(&dir)
                .arg("--watch")
                .arg(parent.to_string())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "start.sh {engine}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            parse_env(&String::from_utf8_lossy(&out.stdout))
        }
    };
    lock.unlock().unwrap();
    let dsn = env["DSN"].clone();
    started.insert(engine, dsn.clone());
    dsn
}

/// A SQLite file loaded with the fixture.
fn sqlite_file(dir: &Path) -> PathBuf {
    let path = dir.join("fixture.sqlite");
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(open(sys.argv[2]).read()); c.commit()")
        .arg(&path)
        .arg(servers_dir().join("fixtures/sqlite.sql"))
        .status()
        .unwrap();
    assert!(status.success());
    path
}

fn port_of(dsn: &str) -> String {
    dsn.rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

/// A gateway whose config holds `config` (TOML), in a fresh data directory.
async fn gateway(config: &str, extra: &[&str]) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, config).unwrap();
    let mut args = vec!["--config".to_owned(), path.display().to_string()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let gw = Gateway::launch(Launch {
        args,
        ..Default::default()
    })
    .await
    .unwrap();
    (gw, dir)
}

/// A gateway with the demo DuckDB plus PostgreSQL, MariaDB and SQLite connections, and small pages.
async fn engines() -> (Gateway, (tempfile::TempDir, tempfile::TempDir)) {
    let pg = server_dsn("postgres");
    let maria = server_dsn("mariadb");
    let files = tempfile::tempdir().unwrap();
    let sqlite = sqlite_file(files.path());
    let config = format!(
        "[limits]\nmax_result_bytes = {PAGE_BYTES}\n\n\
         [[connections]]\nname = \"pg\"\nkind = \"postgres\"\ndsn = \"{pg}\"\npool_size = 3\n\n\
         [[connections]]\nname = \"maria\"\nkind = \"mysql\"\ndsn = \"{maria}\"\n\n\
         [[connections]]\nname = \"lite\"\nkind = \"sqlite\"\ndsn = \"{}\"\n",
        sqlite.display()
    );
    let (gw, dir) = gateway(&config, &[]).await;
    (gw, (dir, files))
}

fn structured(r: &CallToolResult) -> Value {
    assert_eq!(r.is_error, Some(false), "{}", text(r));
    r.structured_content.clone().expect("structured content")
}

async fn ok(client: &Client, tool: &str, args: Value) -> (Value, String) {
    let r = call(client, tool, args.clone()).await.unwrap();
    assert_eq!(r.is_error, Some(false), "{tool} {args}: {}", text(&r));
    (structured(&r), text(&r))
}

async fn error(client: &Client, tool: &str, args: Value) -> String {
    let r = call(client, tool, args.clone()).await.unwrap();
    assert_eq!(r.is_error, Some(true), "{tool} {args} succeeded: {}", text(&r));
    assert!(r.structured_content.is_none());
    text(&r)
}

/// Walks a result page by page; returns every `n` in order and the number of pages.
async fn walk(client: &Client, connection: &str, sql: &str) -> (Vec<i64>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut args = json!({"connection_name": connection, "sql": sql});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let (s, t) = ok(client, "query_database", args).await;
        pages += 1;
        assert_eq!(s["offset"], json!(ids.len()), "{connection}: {t}");
        let rows = s["rows"].as_array().unwrap();
        assert!(!rows.is_empty(), "{connection}: empty page");
        let bytes: usize = rows.iter().map(|r| r.to_string().len() + 1).sum();
        assert!(bytes as u64 <= PAGE_BYTES, "{connection}: page of {bytes} bytes");
        for row in rows {
            let n = &row[0];
            ids.push(
                n.as_i64()
                    .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
                    .unwrap(),
            );
        }
        assert_eq!(s["total_rows"], json!(300), "{connection}");
        match s["cursor"].as_str() {
            Some(c) => {
                assert!(t.contains(&format!("cursor=\"{c}\"")), "{t}");
                assert!(
                    t.contains(&format!("[PAGE: rows {}-", ids.len() - rows.len() + 1)),
                    "{t}"
                );
                assert_eq!(s["has_more"], json!(true));
                cursor = Some(c.to_owned());
            }
            None => {
                assert_eq!(s["has_more"], json!(false), "{connection}: {t}");
                assert_eq!(s["truncated"], json!(false));
                break;
            }
        }
        assert!(pages < 100, "{connection}: paging does not stop");
    }
    // A used-up cursor is gone.
    if let Some(c) = cursor {
        let t = error(
            client,
            "query_database",
            json!({"connection_name": connection, "sql": sql, "cursor": c}),
        )
        .await;
        assert!(t.contains("is unknown, used up or expired"), "{t}");
    }
    (ids, pages)
}

#[tokio::test]
async fn pages_walk_every_row_exactly_once_and_stop_on_every_engine() {
    let (gw, _dir) = engines().await;
    let client = gw.client().await.unwrap();
    for (connection, pad) in [
        ("demo", PAD_STANDARD),
        ("pg", PAD_STANDARD),
        ("maria", PAD_STANDARD),
        ("lite", PAD_SQLITE),
    ] {
        let (ids, pages) = walk(&client, connection, &numbered_sql(pad)).await;
        assert_eq!(ids, (1..=300).collect::<Vec<i64>>(), "{connection}");
        assert!(
            pages >= 10,
            "{connection}: only {pages} pages of {PAGE_BYTES} bytes"
        );
    }
}

#[tokio::test]
async fn cursors_belong_to_their_query_and_session() {
    let (gw, _dir) = gateway(&format!("[limits]\nmax_result_bytes = {PAGE_BYTES}\n"), &[]).await;
    let client = gw.client().await.unwrap();
    let sql = numbered_sql(PAD_STANDARD);
    let (s, _) = ok(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": sql}),
    )
    .await;
    let cursor = s["cursor"].as_str().unwrap().to_owned();
    let t = error(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 1", "cursor": cursor}),
    )
    .await;
    assert!(t.contains("this cursor belongs to another query"), "{t}");
    // Another MCP session of the same key cannot read it.
    let other = gw.client().await.unwrap();
    let t = error(
        &other,
        "query_database",
        json!({"connection_name": "demo", "sql": sql, "cursor": cursor}),
    )
    .await;
    assert!(t.contains("is unknown, used up or expired"), "{t}");
    // The owner still can, after the refused attempts.
    let (s, _) = ok(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": sql, "cursor": cursor}),
    )
    .await;
    assert!(s["offset"].as_u64().unwrap() > 0);
    let t = error(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": sql, "cursor": "cur_bogus"}),
    )
    .await;
    assert!(t.contains("cursor 'cur_bogus' is unknown"), "{t}");
}

#[tokio::test]
async fn the_byte_cap_cuts_wide_rows_with_a_notice() {
    // Stateless: no session to keep the rest in, so one page and a notice that says what to do.
    let (gw, _dir) = gateway(
        &format!("[limits]\nmax_result_bytes = {PAGE_BYTES}\n"),
        &["--stateless", "true"],
    )
    .await;
    let client = gw.client().await.unwrap();
    let sql =
        "SELECT customer_id, repeat(CAST(customer_id AS VARCHAR), 500) AS wide FROM customers ORDER BY 1";
    let (s, t) = ok(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": sql, "row_limit": 50}),
    )
    .await;
    let rows = s["rows"].as_array().unwrap();
    assert!(rows.len() < 50 && !rows.is_empty(), "{} rows", rows.len());
    assert_eq!(
        (s["has_more"].clone(), s["cursor"].clone()),
        (json!(true), Value::Null)
    );
    assert_eq!(s["total_rows"], json!(50));
    assert!(
        t.contains(&format!(
            "[CUT: rows 1-{} of 50 shown; the rest did not fit in {PAGE_BYTES} bytes",
            rows.len()
        )),
        "{t}"
    );
    // A single row wider than the cap still comes back whole: pages always progress.
    let (s, _) = ok(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT repeat('y', 5000) AS w", "row_limit": 5}),
    )
    .await;
    assert_eq!(s["rows"][0][0].as_str().unwrap().len(), 5000);
    assert_eq!(s["has_more"], json!(false));
}

#[tokio::test]
async fn explain_and_cost_say_what_each_engine_can_tell() {
    let (gw, _dir) = engines().await;
    let client = gw.client().await.unwrap();
    let join = "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id";
    let cases = [
        (
            "demo",
            "SELECT * FROM orders WHERE customer_id = 7",
            true,
            false,
            "orders",
        ),
        ("pg", join, true, true, "orders"),
        // MariaDB and SQLite name tables by their alias in the query.
        ("maria", join, true, false, "o"),
        ("lite", join, false, false, "o"),
    ];
    for (connection, sql, rows_known, bytes_known, table) in cases {
        let (s, t) = ok(
            &client,
            "explain_query",
            json!({"connection_name": connection, "sql": sql}),
        )
        .await;
        assert_eq!(s["is_expensive"], json!(false), "{connection}: {t}");
        assert_eq!(s["estimated_rows"].is_u64(), rows_known, "{connection}: {s}");
        assert!(!s["plan"].as_str().unwrap().is_empty(), "{connection}");
        assert!(
            s["tables"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v.as_str().unwrap().ends_with(table)),
            "{connection}: {s}"
        );
        assert!(
            s["sql_explained"].as_str().unwrap().contains("LIMIT"),
            "{connection}"
        );
        assert!(t.starts_with(&format!("-- EXPLAIN on {connection}")), "{t}");
        let (c, t) = ok(
            &client,
            "estimate_query_cost",
            json!({"connection_name": connection, "sql": sql}),
        )
        .await;
        assert_eq!(c["estimated_bytes"].is_u64(), bytes_known, "{connection}: {c}");
        assert!(c.get("plan").is_none());
        assert!(!c["notes"].as_array().unwrap().is_empty(), "{connection}");
        assert!(t.contains("Estimated rows: "), "{t}");
    }
    let (c, _) = ok(
        &client,
        "estimate_query_cost",
        json!({"connection_name": "lite", "sql": join}),
    )
    .await;
    assert!(
        c["notes"][0]
            .as_str()
            .unwrap()
            .contains("no row or byte estimates"),
        "{c}"
    );

    // A plan over a huge input is flagged, from the plan alone (nothing runs).
    for (connection, sql) in [
        ("demo", "SELECT count(*) FROM range(1000000000) a"),
        (
            "pg",
            "SELECT count(*) FROM generate_series(1, 100000000) a, generate_series(1, 1000) b",
        ),
    ] {
        let started = std::time::Instant::now();
        let (s, t) = ok(
            &client,
            "explain_query",
            json!({"connection_name": connection, "sql": sql}),
        )
        .await;
        assert_eq!(s["is_expensive"], json!(true), "{connection}: {t}");
        assert!(t.contains("⚠"), "{t}");
        assert!(
            started.elapsed().as_secs() < 10,
            "{connection}: explain ran the query?"
        );
    }
    // The SQL is governed first, and EXPLAIN is the gateway's to build.
    let t = error(
        &client,
        "explain_query",
        json!({"connection_name": "pg", "sql": "DELETE FROM orders"}),
    )
    .await;
    assert!(
        t.starts_with("Refused by governance [statement_not_allowed]"),
        "{t}"
    );
    let t = error(
        &client,
        "explain_query",
        json!({"connection_name": "pg", "sql": "EXPLAIN SELECT 1"}),
    )
    .await;
    assert!(t.contains("send the query itself"), "{t}");
}

#[tokio::test]
async fn debug_cte_runs_each_cte_in_dependency_order_and_reports_a_refused_one() {
    let (gw, _dir) = engines().await;
    let client = gw.client().await.unwrap();
    let cases = [
        (
            "demo",
            "WITH per_customer AS (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id), \
             leak AS (SELECT * FROM read_csv('/etc/passwd')), \
             top AS (SELECT * FROM per_customer ORDER BY n DESC, customer_id LIMIT 3) \
             SELECT * FROM top",
        ),
        (
            "pg",
            "WITH per_customer AS (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id), \
             leak AS (SELECT pg_read_file('/etc/passwd') AS f), \
             top AS (SELECT * FROM per_customer ORDER BY n DESC, customer_id LIMIT 3) \
             SELECT * FROM top",
        ),
    ];
    for (connection, sql) in cases {
        let (s, t) = ok(
            &client,
            "debug_cte_query",
            json!({"connection_name": connection, "sql": sql, "row_limit": 2}),
        )
        .await;
        let ctes = s["ctes"].as_array().unwrap();
        let names: Vec<&str> = ctes.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["per_customer", "leak", "top"], "{connection}");
        assert_eq!(ctes[0]["status"], json!("ok"), "{connection}: {t}");
        assert!(ctes[0]["row_count"].as_u64().unwrap() >= 2, "{connection}: {t}");
        assert_eq!(ctes[0]["sample"].as_array().unwrap().len(), 2, "{connection}");
        assert_eq!(ctes[1]["status"], json!("refused"), "{connection}: {t}");
        assert!(ctes[1]["rule"].as_str().is_some(), "{connection}");
        // `top` reads only `per_customer`, so the refused CTE does not stop it.
        assert_eq!(ctes[2]["status"], json!("ok"), "{connection}: {t}");
        assert_eq!(ctes[2]["depends_on"], json!(["per_customer"]));
        assert!(!ctes[2]["sql"].as_str().unwrap().contains("leak"), "{connection}");
        // The whole query carries the refused CTE, so it is refused too.
        assert_eq!(s["query"]["status"], json!("refused"), "{connection}");
        assert!(t.contains("--- CTE 2: leak ---\nREFUSED ✗ ["), "{t}");
        assert!(t.contains("--- CTE 3: top (reads per_customer) ---\nOK ✓"), "{t}");
        assert!(!t.contains("root:"), "{connection} leaked a file: {t}");
    }
    // An engine error in one CTE is reported there; a clean query runs whole.
    let (s, t) = ok(
        &client,
        "debug_cte_query",
        json!({"connection_name": "maria",
               "sql": "WITH a AS (SELECT id FROM customers), b AS (SELECT no_such_column FROM a) SELECT * FROM a"}),
    )
    .await;
    assert_eq!(s["ctes"][0]["row_count"], json!(3), "{t}");
    assert_eq!(s["ctes"][1]["status"], json!("failed"), "{t}");
    assert!(t.contains("ERROR ✗"), "{t}");
    let t = error(
        &client,
        "debug_cte_query",
        json!({"connection_name": "lite", "sql": "WITH a AS (SELECT 1 SELECT * FROM a"}),
    )
    .await;
    assert!(t.contains("[parse_error]"), "{t}");
}

#[tokio::test]
async fn budget_exhaustion_refuses_before_execution() {
    let (gw, _dir) = gateway("[budgets]\nqueries_per_day = 2\nrows_per_day = 1000000\n", &[]).await;
    let client = gw.client().await.unwrap();
    for _ in 0..2 {
        ok(
            &client,
            "query_database",
            json!({"connection_name": "demo", "sql": "SELECT * FROM orders", "row_limit": 10}),
        )
        .await;
    }
    // Were it run, this would fail in the engine; the budget refuses it first.
    let t = error(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT * FROM no_such_table"}),
    )
    .await;
    assert!(
        t.contains("the daily budget of API key 'local-admin' is exhausted: 2 of 2 queries used today"),
        "{t}"
    );
    assert!(t.contains("The query was not run"), "{t}");
    assert!(!t.contains("no_such_table"), "{t}");
    let (s, t) = ok(&client, "check_budget", json!({})).await;
    assert_eq!(s["exhausted"], json!(true));
    let queries = &s["dimensions"][0];
    assert_eq!(
        (queries["name"].clone(), queries["used"].clone()),
        (json!("queries"), json!(2.0))
    );
    assert_eq!(s["dimensions"][1]["used"], json!(20.0));
    assert_eq!(s["session_usage"]["queries"], json!(2));
    assert!(t.contains("queries: 2 of 2 used, 0 remaining"), "{t}");
    assert!(t.contains("Status: EXHAUSTED"), "{t}");
    // Another session's share is its own; the key's budget is shared by all its sessions.
    let (s, _) = ok(&client, "check_budget", json!({"session_id": "someone-else"})).await;
    assert_eq!(s["session_usage"]["queries"], json!(0));
}

/// explain_query and estimate_query_cost run on the governed path, so a budget counts them: each spends a
/// query (and no rows: a plan is not data), and an exhausted budget refuses them before the engine.
#[tokio::test]
async fn explain_and_cost_calls_count_against_the_budget() {
    let (gw, _dir) = gateway("[budgets]\nqueries_per_day = 2\nrows_per_day = 1000000\n", &[]).await;
    let client = gw.client().await.unwrap();
    let sql = json!({"connection_name": "demo", "sql": "SELECT * FROM orders"});
    ok(&client, "explain_query", sql.clone()).await;
    ok(&client, "estimate_query_cost", sql.clone()).await;
    let (s, _) = ok(&client, "check_budget", json!({})).await;
    assert_eq!(s["dimensions"][0]["used"], json!(2.0), "{s}");
    assert_eq!(s["dimensions"][1]["used"], json!(0.0), "{s}");
    for tool in ["explain_query", "estimate_query_cost", "query_database"] {
        let t = error(&client, tool, sql.clone()).await;
        assert!(
            t.contains("the daily budget of API key 'local-admin' is exhausted: 2 of 2 queries used today"),
            "{tool}: {t}"
        );
    }
}

#[tokio::test]
async fn a_keys_own_budget_applies_to_that_key_only() {
    let (gw, _dir) = gateway("[budgets.keys.ci-bot]\nrows_per_day = 5\n", &[]).await;
    let out = gw
        .cli(&["key", "create", "--name", "ci-bot", "--scope", "query"])
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let bot = gw.client_with_key(&key).await.unwrap();
    let args = json!({"connection_name": "demo", "sql": "SELECT * FROM orders", "row_limit": 10});
    // Admitted with room left; its spend is known only afterwards, so it may overshoot once.
    let (s, _) = ok(&bot, "query_database", args.clone()).await;
    assert_eq!(s["row_count"], json!(10));
    let t = error(&bot, "query_database", args.clone()).await;
    assert!(
        t.contains("the daily budget of API key 'ci-bot' is exhausted: 10 of 5 rows used today"),
        "{t}"
    );
    // The admin key has no budget of its own and is unaffected.
    let admin = gw.client().await.unwrap();
    ok(&admin, "query_database", args).await;
    let (s, _) = ok(&bot, "check_budget", json!({})).await;
    assert_eq!(s["key_name"], json!("ci-bot"));
    assert_eq!(s["dimensions"][1]["remaining"], json!(0.0));
}

#[tokio::test]
async fn history_shows_the_callers_queries_with_literals_redacted() {
    let (gw, _dir) = gateway("", &[]).await;
    let client = gw.client().await.unwrap();
    ok(
        &client,
        "query_database",
        json!({"connection_name": "demo",
               "sql": "SELECT order_id FROM orders WHERE customer_id = 4242 AND status = 'secret-status'"}),
    )
    .await;
    error(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "DELETE FROM orders WHERE order_id = 777"}),
    )
    .await;
    let (s, t) = ok(
        &client,
        "query_history",
        json!({"connection_name": "demo", "limit": 5}),
    )
    .await;
    let entries = s["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{t}");
    assert_eq!(entries[0]["decision"], json!("denied"));
    assert_eq!(entries[1]["decision"], json!("ok"));
    let sql = entries[1]["sql"].as_str().unwrap();
    assert!(sql.contains("customer_id = ? AND status = ?"), "{sql}");
    // Literals as they appeared in the SQL (bare digits could occur in timestamps or durations).
    for secret in ["= 4242", "secret-status", "= 777"] {
        assert!(
            !t.contains(secret) && !s.to_string().contains(secret),
            "{secret} leaked: {t}"
        );
    }
    assert!(t.contains("REFUSED [statement_not_allowed]"), "{t}");
    // Without limits the spend is still counted; the refused statement never ran, so it is not.
    let (s, t) = ok(&client, "check_budget", json!({})).await;
    assert_eq!(s["dimensions"][0]["used"], json!(1.0), "{t}");
    assert_eq!(s["dimensions"][0]["limit"], Value::Null);
    assert!(t.contains("queries: 1 used (no limit)"), "{t}");
    let t = error(
        &client,
        "query_history",
        json!({"connection_name": "demo", "limit": 0}),
    )
    .await;
    assert!(t.contains("limit must be between 1 and 50"), "{t}");
    let t = error(&client, "query_history", json!({"connection_name": "nope"})).await;
    assert!(t.contains("unknown connection 'nope'"), "{t}");
}

#[tokio::test]
async fn health_is_measured_from_calls_and_pings_live() {
    let (gw, _dir) = engines().await;
    let client = gw.client().await.unwrap();
    for _ in 0..3 {
        ok(
            &client,
            "query_database",
            json!({"connection_name": "pg", "sql": "SELECT count(*) FROM orders"}),
        )
        .await;
    }
    error(
        &client,
        "query_database",
        json!({"connection_name": "pg", "sql": "SELECT * FROM no_such_table"}),
    )
    .await;
    let (s, t) = ok(&client, "connection_health", json!({"connection_name": "pg"})).await;
    let pg = &s["connections"][0];
    assert_eq!(pg["recent"]["calls"], json!(4), "{t}");
    assert_eq!(pg["recent"]["errors"], json!(1), "{t}");
    assert_eq!(pg["recent"]["error_rate"], json!(0.25));
    assert!(pg["recent"]["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(pg["recent"]["p99_ms"].as_f64() >= pg["recent"]["p50_ms"].as_f64());
    assert_eq!(pg["ping"]["ok"], json!(true));
    assert_eq!(
        pg["status"],
        json!("degraded"),
        "an error rate of 25 % is not healthy"
    );
    assert!(t.contains("pg (postgres): DEGRADED"), "{t}");
    let (s, _) = ok(&client, "connection_health", json!({})).await;
    let names: BTreeSet<&str> = s["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connection"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["demo", "lite", "maria", "pg"]));
    assert!(
        s["connections"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ping"]["ok"] == json!(true)),
        "{s}"
    );
}

#[tokio::test]
async fn connection_errors_are_clear_and_pool_settings_apply() {
    let pg = server_dsn("postgres");
    let maria = server_dsn("mariadb");
    let pg_port = port_of(&pg);
    let maria_port = port_of(&maria);
    let closed_port = sluice_test_servers::closed_port();
    let closed = closed_port.port();
    let config = format!(
        "[[connections]]\nname = \"pg_bad_password\"\nkind = \"postgres\"\n\
         dsn = \"postgres://app:wrong-secret-1@127.0.0.1:{pg_port}/sluice\"\n\n\
         [[connections]]\nname = \"pg_no_db\"\nkind = \"postgres\"\n\
         dsn = \"postgres://app:app-secret@127.0.0.1:{pg_port}/no_such_db\"\n\n\
         [[connections]]\nname = \"pg_down\"\nkind = \"postgres\"\n\
         dsn = \"postgres://app:app-secret@127.0.0.1:{closed}/sluice\"\n\
         pool_size = 2\npool_idle_timeout_ms = 60000\npool_acquire_timeout_ms = 1500\n\n\
         [[connections]]\nname = \"maria_bad_password\"\nkind = \"mysql\"\n\
         dsn = \"mysql://app:wrong-secret-2@127.0.0.1:{maria_port}/sluice\"\n\n\
         [[connections]]\nname = \"maria_no_db\"\nkind = \"mysql\"\n\
         dsn = \"mysql://app:app-secret@127.0.0.1:{maria_port}/no_such_db\"\n"
    );
    let (gw, _dir) = gateway(&config, &[]).await;
    let client = gw.client().await.unwrap();
    let cases = [
        ("pg_bad_password", "authentication failed for user 'app'"),
        ("maria_bad_password", "authentication failed for user 'app'"),
        ("pg_no_db", "database 'no_such_db' does not exist"),
        ("maria_no_db", "database 'no_such_db' does not exist"),
        ("pg_down", "could not reach 127.0.0.1:"),
    ];
    for (connection, expected) in cases {
        let started = std::time::Instant::now();
        let t = error(
            &client,
            "query_database",
            json!({"connection_name": connection, "sql": "SELECT 1"}),
        )
        .await;
        assert!(t.starts_with("query_database failed: "), "{connection}: {t}");
        assert!(t.contains(expected), "{connection}: {t}");
        assert!(
            !t.contains("wrong-secret") && !t.contains("app-secret"),
            "{connection}: {t}"
        );
        assert!(started.elapsed().as_secs() < 15, "{connection} took too long");
    }
    let (s, t) = ok(
        &client,
        "connection_health",
        json!({"connection_name": "pg_down"}),
    )
    .await;
    assert_eq!(s["connections"][0]["status"], json!("down"), "{t}");
    assert_eq!(s["connections"][0]["recent"]["errors"], json!(1));
    // The pool settings from the config reach the connection.
    let (s, t) = ok(
        &client,
        "connector_capabilities",
        json!({"connection_name": "pg_down"}),
    )
    .await;
    let c = &s["connections"][0];
    assert_eq!(
        (
            c["pool_size"].clone(),
            c["pool_idle_timeout_ms"].clone(),
            c["pool_acquire_timeout_ms"].clone()
        ),
        (json!(2), json!(60000), json!(1500)),
        "{t}"
    );
    assert_eq!(c["server_side_cancel"], json!(true));
    assert!(
        t.contains("pool 2 sessions, idle timeout 60000 ms, acquire timeout 1500 ms"),
        "{t}"
    );
    let (s, t) = ok(&client, "connector_capabilities", json!({})).await;
    let kinds: Vec<&str> = s["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["duckdb", "postgres", "mysql", "sqlite"]);
    assert_eq!(s["connectors"][3]["estimates_rows"], json!(false), "{t}");
    assert_eq!(s["connections"][0]["connection"], json!("demo"));
    assert_eq!(s["connections"][0]["pool_size"], Value::Null);
    let t = error(
        &client,
        "connector_capabilities",
        json!({"connection_name": "nope"}),
    )
    .await;
    assert!(t.contains("unknown connection 'nope'"), "{t}");
}
