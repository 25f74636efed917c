//! MariaDB (the MySQL-family server Debian ships): the conformance checks, flavour detection, connection
//! failures, TLS pass-through and pool recovery.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;
use sluice_connectors::mysql::{Flavor, MySqlWarehouse};
use sluice_connectors::{ConnectorError, PoolOptions, Warehouse};

use super::conformance::{Fixture, SessionCase, conformance, options};
use sluice_test_servers::{Engine, Server, closed_port};

/// MariaDB caps recursive CTEs at 1000 iterations by default; a cross join of its built-in sequence
/// tables runs for hours instead.
const SLOW: &str = "SELECT SUM(a.seq * b.seq) FROM seq_1_to_1000000 a, seq_1_to_1000000 b";

fn quick_pool() -> PoolOptions {
    PoolOptions {
        max_connections: 3,
        acquire_timeout: Duration::from_secs(3),
        ..PoolOptions::default()
    }
}

async fn open() -> Fixture {
    let server = Server::shared(Engine::MariaDb);
    Fixture {
        warehouse: Box::new(MySqlWarehouse::new(server.dsn.as_str(), PoolOptions::default()).unwrap()),
        slow_sql: SLOW,
        activity_sql: Some(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE COMMAND IN ('Query', 'Execute') AND INFO LIKE '%seq_1_to_1000000 a%' AND ID <> CONNECTION_ID()",
        ),
        dropped_sql: "SELECT SUM(a.seq * b.seq) FROM seq_1_to_1000001 a, seq_1_to_1000001 b",
        dropped_activity_sql: Some(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE COMMAND IN ('Query', 'Execute') AND INFO LIKE '%seq_1_to_1000001 a%' AND ID <> CONNECTION_ID()",
        ),
        session: SessionCase {
            one_session: Some(Box::new(
                MySqlWarehouse::new(server.dsn.as_str(), one_session()).unwrap(),
            )),
            // MySQL and MariaDB allow a temporary table inside START TRANSACTION READ ONLY; it would shadow
            // the real `orders` for the rest of the pooled session, as variables and settings would stay.
            leave_state: [
                "CREATE TEMPORARY TABLE orders AS SELECT 42 AS x",
                "CREATE TEMPORARY TABLE orders (x int)",
                "SET @planted = 42",
                "SET SESSION sql_mode = 'ANSI_QUOTES'",
                "SET NAMES latin1",
                "DO @planted := 42",
                "SELECT 42 INTO @planted",
            ]
            .map(String::from)
            .to_vec(),
            refusal: Some(
                "the MySQL/MariaDB engine itself reports that this statement returns no rows, so it was not run",
            ),
            state_probes: vec![
                "SELECT @planted IS NULL",
                "SELECT @@SESSION.sql_mode",
                "SELECT @@SESSION.character_set_client",
            ],
            reads: vec![
                "SHOW TABLES",
                "SHOW COLUMNS FROM orders",
                "SHOW VARIABLES LIKE 'sql_mode'",
                "DESCRIBE orders",
                "EXPLAIN SELECT * FROM orders",
                "EXPLAIN FORMAT=JSON SELECT * FROM orders",
                "VALUES (1, 'a')",
                "WITH t AS (SELECT 1 AS n) SELECT n FROM t",
            ],
        },
        _keep: None,
    }
}

conformance!(super::open);

/// One session, so that a statement lands where the previous one ran.
fn one_session() -> PoolOptions {
    PoolOptions {
        max_connections: 1,
        ..PoolOptions::default()
    }
}

fn error_of(result: Result<impl std::fmt::Debug, ConnectorError>) -> ConnectorError {
    result.expect_err("expected an error")
}

#[tokio::test]
async fn wrong_password_is_an_auth_error_that_hides_the_password() {
    let server = Server::shared(Engine::MariaDb);
    let w = MySqlWarehouse::new(server.dsn_with("app", "not-the-password", "sluice"), quick_pool()).unwrap();
    let error = error_of(w.ping().await);
    assert!(matches!(error, ConnectorError::Auth { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{}/sluice", server.port)),
        "{message}"
    );
    assert!(message.contains("'app'"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");
    assert!(!format!("{w:?}").contains("not-the-password"));
}

#[tokio::test]
async fn unknown_database_is_named() {
    let server = Server::shared(Engine::MariaDb);
    let w = MySqlWarehouse::new(server.dsn_with("app", "app-secret", "nowhere"), quick_pool()).unwrap();
    let error = error_of(w.query("SELECT 1", options(10, Duration::from_secs(5))).await);
    assert!(
        matches!(&error, ConnectorError::UnknownDatabase { database, .. } if database == "nowhere"),
        "{error:?}"
    );
    assert!(!error.to_string().contains("app-secret"));
}

#[tokio::test]
async fn unreachable_host_is_reported_after_the_acquire_timeout() {
    let closed = closed_port();
    let port = closed.port();
    let w = MySqlWarehouse::new(
        format!("mysql://app:app-secret@127.0.0.1:{port}/sluice"),
        quick_pool(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let error = error_of(w.ping().await);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(error, ConnectorError::Unreachable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("app-secret"), "{message}");
}

#[tokio::test]
async fn ssl_mode_passes_through_to_the_driver() {
    // The test server has no TLS: `require` must fail the handshake, `disable` must connect.
    let server = Server::shared(Engine::MariaDb);
    let require = MySqlWarehouse::new(format!("{}?ssl-mode=REQUIRED", server.dsn), quick_pool()).unwrap();
    let error = error_of(require.ping().await);
    assert!(matches!(error, ConnectorError::Unreachable { .. }), "{error:?}");
    let disable = MySqlWarehouse::new(format!("{}?ssl-mode=DISABLED", server.dsn), quick_pool()).unwrap();
    disable.ping().await.unwrap();
}

#[tokio::test]
async fn only_one_statement_runs() {
    let server = Server::shared(Engine::MariaDb);
    let w = MySqlWarehouse::new(server.dsn.as_str(), quick_pool()).unwrap();
    let result = w
        .query("SELECT 1; SELECT 2", options(10, Duration::from_secs(5)))
        .await;
    assert!(matches!(result, Err(ConnectorError::Query { .. })), "{result:?}");
    // Nor can a statement switch the transaction back to read-write.
    let result = w
        .query("SET TRANSACTION READ WRITE", options(10, Duration::from_secs(5)))
        .await;
    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn the_flavour_is_detected_from_the_version() {
    let server = Server::shared(Engine::MariaDb);
    let w = MySqlWarehouse::new(server.dsn.as_str(), quick_pool()).unwrap();
    assert_eq!(w.flavor(), None);
    w.query("SELECT 1", options(10, Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(w.flavor(), Some(Flavor::MariaDb));
}

#[tokio::test]
async fn unsigned_and_mysql_specific_values() {
    let server = Server::shared(Engine::MariaDb);
    let w = MySqlWarehouse::new(server.dsn.as_str(), quick_pool()).unwrap();
    let result = w
        .query(
            "SELECT CAST(18446744073709551615 AS UNSIGNED) AS big, TIME '-26:03:04' AS span, \
             DATE '2024-02-29' AS day",
            options(10, Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert_eq!(
        result.rows[0],
        vec![
            json!("18446744073709551615"),
            json!("-26:03:04"),
            json!("2024-02-29")
        ]
    );
}

async fn customers(w: &dyn Warehouse) -> Result<serde_json::Value, ConnectorError> {
    let result = w
        .query(
            "SELECT count(*) FROM customers",
            options(10, Duration::from_secs(5)),
        )
        .await?;
    Ok(result.rows[0][0].clone())
}

#[tokio::test]
async fn the_pool_recovers_after_a_server_restart() {
    let server = Server::private(Engine::MariaDb);
    let w = MySqlWarehouse::new(server.dsn.as_str(), quick_pool()).unwrap();
    assert_eq!(customers(&w).await.unwrap(), json!(3));
    server.stop();
    assert!(customers(&w).await.is_err());
    server.start();
    assert_eq!(customers(&w).await.unwrap(), json!(3));
}

/// The shared pool scaffolding tells a pool whose every session is taken apart from a server that is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_says_every_session_is_busy() {
    const HOLD: &str = "SELECT SUM(x.seq * y.seq) FROM seq_1_to_1000000 x, seq_1_to_1000000 y";
    let server = Server::shared(Engine::MariaDb);
    let one = PoolOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_millis(500),
        ..PoolOptions::default()
    };
    let w = std::sync::Arc::new(MySqlWarehouse::new(server.dsn.as_str(), one).unwrap());
    super::conformance::a_full_pool_says_every_session_is_busy(w, HOLD).await;
}
