//! SQLite: the conformance checks on a file built from the fixture, plus file-level guarantees.

use std::str::FromStr as _;
use std::time::Duration;

use pretty_assertions::assert_eq;
use sluice_connectors::sqlite::SqliteWarehouse;
use sluice_connectors::{ConnectorError, PoolOptions, Warehouse};
use sqlx::Connection as _;

use super::conformance::{Fixture, SessionCase, conformance, options};
use sluice_test_servers::fixture_sql;

const SLOW: &str = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 2000000000) \
                    SELECT count(*) FROM r";

/// A fresh database file loaded with the fixture, written through a separate read-write connection.
async fn fixture_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixture.db");
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(fixture_sql("sqlite.sql")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    (dir, path)
}

async fn open() -> Fixture {
    let (dir, path) = fixture_file().await;
    let one = PoolOptions {
        max_connections: 1,
        ..PoolOptions::default()
    };
    let other = dir.path().join("planted.db");
    std::fs::copy(&path, &other).unwrap();
    Fixture {
        warehouse: Box::new(
            SqliteWarehouse::new(path.display().to_string(), PoolOptions::default()).unwrap(),
        ),
        slow_sql: SLOW,
        activity_sql: None,
        dropped_sql: "WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 2000000000) \
                      SELECT count(*) FROM d",
        dropped_activity_sql: None,
        session: SessionCase {
            one_session: Some(Box::new(
                SqliteWarehouse::new(path.display().to_string(), one).unwrap(),
            )),
            // An attached copy of the database would put a second `orders` (and any file of the host)
            // in reach for the rest of the connection's life; pragmas change later queries' results.
            leave_state: vec![
                format!("ATTACH DATABASE '{}' AS planted", other.display()),
                format!("ATTACH '{}' AS main2", other.display()),
                "PRAGMA case_sensitive_like = 1".to_owned(),
                "PRAGMA reverse_unordered_selects = 1".to_owned(),
                "PRAGMA cache_size = 7".to_owned(),
                "CREATE TEMP TABLE orders AS SELECT 42 AS x".to_owned(),
            ],
            refusal: Some("the SQLite engine refused to prepare this statement (not authorized)"),
            state_probes: vec![
                "SELECT count(*) FROM pragma_database_list",
                "PRAGMA cache_size",
                "PRAGMA reverse_unordered_selects",
                "SELECT 'A' LIKE 'a'",
            ],
            reads: vec![
                "VALUES (1, 'a')",
                "EXPLAIN QUERY PLAN SELECT * FROM orders",
                "PRAGMA table_info(orders)",
                "SELECT * FROM pragma_table_info('orders')",
                "WITH t AS (SELECT 1 AS n) SELECT n FROM t",
            ],
        },
        _keep: Some(dir),
    }
}

conformance!(super::open);

#[tokio::test]
async fn the_file_is_untouched_by_write_attempts() {
    let (_dir, path) = fixture_file().await;
    let before = std::fs::read(&path).unwrap();
    let w = SqliteWarehouse::new(format!("sqlite://{}", path.display()), PoolOptions::default()).unwrap();
    for sql in [
        "INSERT INTO customers (id, name) VALUES (9, 'x')",
        "PRAGMA query_only = OFF",
        "VACUUM",
    ] {
        let _ = w.query(sql, options(10, Duration::from_secs(5))).await;
    }
    // query_only could be switched off by a statement, but the file itself is opened read-only.
    let result = w
        .query("DELETE FROM customers", options(10, Duration::from_secs(5)))
        .await;
    assert!(matches!(result, Err(ConnectorError::Query { .. })), "{result:?}");
    drop(w);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(!path.with_extension("db-wal").exists());
}

#[tokio::test]
async fn attaching_another_file_cannot_create_it() {
    let (dir, path) = fixture_file().await;
    let w = SqliteWarehouse::new(path.display().to_string(), PoolOptions::default()).unwrap();
    let target = dir.path().join("planted.db");
    let sql = format!("ATTACH DATABASE '{}' AS planted", target.display());
    let _ = w.query(&sql, options(10, Duration::from_secs(5))).await;
    assert!(!target.exists());
}

#[tokio::test]
async fn a_missing_file_is_not_found_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    let w = SqliteWarehouse::new(path.display().to_string(), PoolOptions::default()).unwrap();
    let error = w.ping().await.expect_err("no file");
    assert!(matches!(error, ConnectorError::NotFound { .. }), "{error:?}");
    assert!(!path.exists());
}

/// sqlx would run every statement of a string in turn; the connector runs text of exactly one statement,
/// and a setting hidden after a read is refused while SQLite compiles it, before it takes effect.
#[tokio::test]
async fn only_one_statement_runs_and_hidden_settings_never_apply() {
    let (_dir, path) = fixture_file().await;
    let one = PoolOptions {
        max_connections: 1,
        ..PoolOptions::default()
    };
    let w = SqliteWarehouse::new(path.display().to_string(), one).unwrap();
    let error = w
        .query("SELECT 1; SELECT 2", options(10, Duration::from_secs(5)))
        .await
        .expect_err("two statements");
    assert_eq!(
        error.to_string(),
        "this text holds 2 SQLite statements; only one statement runs per call"
    );
    let error = w
        .query(
            "SELECT 'A' LIKE 'a'; PRAGMA case_sensitive_like = 1",
            options(10, Duration::from_secs(5)),
        )
        .await
        .expect_err("a setting after a read");
    assert!(
        error
            .to_string()
            .starts_with("the SQLite engine refused to prepare this statement (not authorized)"),
        "{error}"
    );
    let result = w
        .query("SELECT 'A' LIKE 'a' AS ci; ", options(10, Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(result.rows, vec![vec![serde_json::json!(1)]]);
}
