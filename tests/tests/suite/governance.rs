//! Governance end to end on DuckDB: file reads are refused without leaking a byte, `LIMIT ALL` cannot
//! beat the cap, side effects leave nothing behind, per-connection policies hold, and slow statements are
//! interrupted at the timeout.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::json;
use sluice_e2e::{Gateway, Launch, call, text};

#[tokio::test]
async fn file_reads_are_refused_and_leak_nothing() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let attempts = [
        "SELECT * FROM read_csv_auto('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd', sep = ':')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM \"/etc/passwd\"",
        "SELECT content FROM read_blob('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        "SELECT * FROM (SELECT 1) t, LATERAL (SELECT * FROM read_text('/etc/passwd')) x",
        "WITH f AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM f",
        "SELECT * FROM orders WHERE order_id IN (SELECT length(content) FROM read_text('/etc/passwd'))",
        "SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')",
        "SELECT * FROM duckdb_secrets()",
        "SELECT * FROM main.read_text('/etc/passwd')",
        "SELECT * FROM READ_TEXT('/etc/passwd')",
    ];
    for sql in attempts {
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": "demo", "sql": sql}),
        )
        .await?;
        let t = text(&r);
        assert_eq!(r.is_error, Some(true), "{sql} was not refused: {t}");
        assert!(t.starts_with("Refused by governance ["), "{sql}: {t}");
        assert!(!t.contains("root:"), "{sql} leaked file contents: {t}");
        assert!(r.structured_content.is_none(), "{sql}");
    }
    Ok(())
}

#[tokio::test]
async fn limit_all_and_large_limits_return_at_most_the_cap() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    for sql in [
        "SELECT * FROM order_items LIMIT ALL",
        "SELECT * FROM order_items LIMIT 100000",
        "SELECT * FROM order_items LIMIT NULL",
        "SELECT * FROM order_items LIMIT 10 * 10000",
        "(SELECT * FROM order_items) UNION ALL (SELECT * FROM order_items) LIMIT ALL",
        "WITH x AS (SELECT * FROM order_items) SELECT * FROM x LIMIT ALL",
        "FROM order_items",
    ] {
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": "demo", "sql": sql, "row_limit": 25}),
        )
        .await?;
        assert_eq!(r.is_error, Some(false), "{sql}: {}", text(&r));
        let s = r.structured_content.expect("structured");
        assert_eq!(s["row_count"], json!(25), "{sql}");
        assert_eq!(s["truncated"], json!(true), "{sql}");
    }
    Ok(())
}

#[tokio::test]
async fn side_effects_leave_nothing_behind() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("stolen.csv");
    let attached = dir.path().join("attached.duckdb");
    let attempts = [
        "CREATE TABLE evil AS SELECT 1 AS x".to_owned(),
        "INSERT INTO regions VALUES (99, 'Nowhere', 'XX', 0.1)".to_owned(),
        "DROP TABLE orders".to_owned(),
        "UPDATE orders SET status = 'cancelled'".to_owned(),
        "WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d".to_owned(),
        format!("COPY orders TO '{}'", out.display()),
        format!(
            "COPY (SELECT * FROM customers) TO '{}' (FORMAT csv)",
            out.display()
        ),
        format!("EXPORT DATABASE '{}'", dir.path().display()),
        format!("ATTACH '{}' AS other", attached.display()),
        "INSTALL httpfs".to_owned(),
        "LOAD httpfs".to_owned(),
        "SET enable_external_access = true".to_owned(),
        "PRAGMA enable_profiling".to_owned(),
        "CHECKPOINT".to_owned(),
        "SELECT 1; CREATE TABLE evil AS SELECT 1".to_owned(),
        "CREATE MACRO m() AS 1".to_owned(),
        "CALL pragma_version()".to_owned(),
    ];
    for sql in &attempts {
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": "demo", "sql": sql}),
        )
        .await?;
        assert_eq!(r.is_error, Some(true), "{sql} was not refused: {}", text(&r));
        assert!(
            text(&r).starts_with("Refused by governance ["),
            "{sql}: {}",
            text(&r)
        );
    }
    assert!(!out.exists() && !attached.exists(), "a file was written");
    assert_eq!(
        std::fs::read_dir(dir.path())?.count(),
        0,
        "something was written into {}",
        dir.path().display()
    );
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT (SELECT count(*) FROM information_schema.tables WHERE table_name = 'evil') AS evil, (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM regions) AS regions"}),
    )
    .await?;
    assert_eq!(
        r.structured_content.expect("structured")["rows"],
        json!([[0, 8000, 8]])
    );
    Ok(())
}

#[tokio::test]
async fn connection_policies_from_config_hold() -> anyhow::Result<()> {
    let gw = Gateway::with_policed_demo("denied_tables = [\"customers\"]\ndenied_columns = [\"employees.annual_salary\"]\ndeny_functions = [\"md5\"]\nmax_rows = 7\n").await?;
    let client = gw.client().await?;
    let refused = [
        ("SELECT * FROM customers", "denied_table"),
        (
            "SELECT c.email FROM orders o JOIN customers AS c USING (customer_id)",
            "denied_table",
        ),
        (
            "WITH x AS (SELECT * FROM main.customers) SELECT * FROM x",
            "denied_table",
        ),
        ("SELECT annual_salary FROM employees", "denied_column"),
        ("SELECT * FROM employees", "denied_column"),
        ("SELECT md5(status) FROM orders", "denied_function"),
    ];
    for (sql, rule) in refused {
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": "policed", "sql": sql}),
        )
        .await?;
        assert_eq!(r.is_error, Some(true), "{sql}: {}", text(&r));
        assert!(text(&r).contains(&format!("[{rule}]")), "{sql}: {}", text(&r));
    }
    let ok = call(
        &client,
        "query_database",
        json!({"connection_name": "policed", "sql": "SELECT order_id FROM orders"}),
    )
    .await?;
    let s = ok.structured_content.expect("structured");
    assert_eq!(
        (s["row_count"].clone(), s["row_limit"].clone()),
        (json!(7), json!(7))
    );
    // The same file through the unpoliced demo connection is unaffected.
    let demo = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT count(*) FROM customers"}),
    )
    .await?;
    assert_eq!(demo.is_error, Some(false), "{}", text(&demo));
    Ok(())
}

#[tokio::test]
async fn slow_queries_are_interrupted_at_the_timeout() -> anyhow::Result<()> {
    let gw = Gateway::launch(Launch {
        args: vec!["--query-timeout-ms".into(), "300".into()],
        ..Default::default()
    })
    .await?;
    let client = gw.client().await?;
    let started = Instant::now();
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT sum(hash(a.range * b.range)) FROM range(100000) a, range(100000) b"}),
    )
    .await?;
    let took = started.elapsed();
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    assert!(
        text(&r).contains("ran longer than 300 ms and was cancelled"),
        "{}",
        text(&r)
    );
    assert!(took < Duration::from_secs(10), "the interrupt took {took:?}");
    // The connection is usable right away.
    let ok = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 1"}),
    )
    .await?;
    assert_eq!(ok.is_error, Some(false), "{}", text(&ok));
    Ok(())
}

/// On a PostgreSQL connection whose role is a superuser the engine's second wall is down: it would show the
/// data directory, password hashes and other sessions' SQL. Every `server_state` case of the PostgreSQL
/// corpus is first run directly as that superuser (it succeeds: the engine allows it), then through
/// `query_database` on a connection with the same superuser DSN, where governance refuses it.
#[tokio::test]
async fn server_state_reads_are_refused_on_a_superuser_connection() -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let server = tokio::task::spawn_blocking(|| {
        sluice_test_servers::Server::shared(sluice_test_servers::Engine::Postgres)
    })
    .await?;
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sql/postgres/refused.txt"
    ))?;
    let cases: Vec<String> = corpus
        .split("\n==== ")
        .filter(|c| c.starts_with("server_state "))
        .map(|c| c.lines().skip(1).collect::<Vec<_>>().join("\n").trim().to_owned())
        .collect();
    assert!(cases.len() >= 15, "{cases:?}");

    let mut superuser = sqlx::PgConnection::connect(&server.admin_dsn).await?;
    let is_super: bool = sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        .fetch_one(&mut superuser)
        .await?;
    assert!(is_super, "the test needs a superuser role");
    for sql in &cases {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(&mut superuser)
            .await
            .map_err(|e| {
                anyhow::anyhow!("{sql}: the engine itself refused it ({e}), so this case proves nothing")
            })?;
    }

    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[[connections]]\nname = \"su\"\nkind = \"postgres\"\ndsn = \"{}\"\n",
            server.admin_dsn
        ),
    )?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await?;
    let client = gw.client().await?;
    for sql in &cases {
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": "su", "sql": sql}),
        )
        .await?;
        assert_eq!(r.is_error, Some(true), "{sql} ran: {}", text(&r));
        assert!(text(&r).contains("[server_state]"), "{sql}: {}", text(&r));
    }
    // What data work needs from settings stays allowed.
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "su", "sql": "SELECT current_setting('TimeZone') AS tz"}),
    )
    .await?;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    Ok(())
}
