//! PostgreSQL: the conformance checks, connection failures, TLS pass-through and pool recovery.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;
use sluice_connectors::postgres::PostgresWarehouse;
use sluice_connectors::{ConnectorError, PoolOptions, Warehouse};

use super::conformance::{Fixture, SessionCase, conformance, options};
use sluice_test_servers::{Engine, Server, closed_port};

const SLOW: &str = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 2000000000) \
                    SELECT count(*) FROM r";

fn quick_pool() -> PoolOptions {
    PoolOptions {
        max_connections: 3,
        acquire_timeout: Duration::from_secs(3),
        ..PoolOptions::default()
    }
}

async fn open() -> Fixture {
    let server = Server::shared(Engine::Postgres);
    Fixture {
        warehouse: Box::new(PostgresWarehouse::new(server.dsn.as_str(), PoolOptions::default()).unwrap()),
        slow_sql: SLOW,
        activity_sql: Some(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE state = 'active' AND query LIKE '%RECURSIVE r(n)%' AND pid <> pg_backend_pid()",
        ),
        dropped_sql: "WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 2000000000) \
                      SELECT count(*) FROM d",
        dropped_activity_sql: Some(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE state = 'active' AND query LIKE '%RECURSIVE d(n)%' AND pid <> pg_backend_pid()",
        ),
        session: SessionCase {
            one_session: Some(Box::new(
                PostgresWarehouse::new(server.dsn.as_str(), one_session()).unwrap(),
            )),
            // Temporary tables are refused by READ ONLY anyway; the others all succeed in a read-only
            // transaction and would stay on the session after it.
            leave_state: [
                "CREATE TEMP TABLE orders AS SELECT 42 AS x",
                "SET search_path TO pg_catalog",
                "SET work_mem = '64kB'",
                "SET SESSION statement_timeout = 1",
                "RESET ALL",
                "PREPARE planted AS SELECT 42",
                "DECLARE planted CURSOR WITH HOLD FOR SELECT 42",
                "LISTEN planted",
                "DISCARD ALL",
            ]
            .map(String::from)
            .to_vec(),
            refusal: Some(
                "the PostgreSQL engine itself reports that this statement returns no rows, so it was not run",
            ),
            state_probes: vec![
                "SHOW search_path",
                "SHOW work_mem",
                "SELECT count(*) FROM pg_prepared_statements WHERE name = 'planted'",
                "SELECT count(*) FROM pg_cursors",
                "SELECT count(*) FROM pg_listening_channels()",
            ],
            reads: vec![
                "SHOW statement_timeout",
                "EXPLAIN SELECT * FROM orders",
                "EXPLAIN (FORMAT JSON) SELECT * FROM orders",
                "VALUES (1, 'a')",
                "TABLE customers",
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
    let server = Server::shared(Engine::Postgres);
    let w =
        PostgresWarehouse::new(server.dsn_with("app", "not-the-password", "sluice"), quick_pool()).unwrap();
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
    let server = Server::shared(Engine::Postgres);
    let w = PostgresWarehouse::new(server.dsn_with("app", "app-secret", "nowhere"), quick_pool()).unwrap();
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
    let w = PostgresWarehouse::new(
        format!("postgres://app:app-secret@127.0.0.1:{port}/sluice"),
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
async fn sslmode_passes_through_to_the_driver() {
    // The test server has no TLS: `require` must fail the handshake, `disable` must connect.
    let server = Server::shared(Engine::Postgres);
    let require = PostgresWarehouse::new(format!("{}?sslmode=require", server.dsn), quick_pool()).unwrap();
    let error = error_of(require.ping().await);
    assert!(matches!(error, ConnectorError::Unreachable { .. }), "{error:?}");
    let disable = PostgresWarehouse::new(format!("{}?sslmode=disable", server.dsn), quick_pool()).unwrap();
    disable.ping().await.unwrap();
}

#[tokio::test]
async fn only_one_statement_runs() {
    let server = Server::shared(Engine::Postgres);
    let w = PostgresWarehouse::new(server.dsn.as_str(), quick_pool()).unwrap();
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
    let server = Server::private(Engine::Postgres);
    let w = PostgresWarehouse::new(server.dsn.as_str(), quick_pool()).unwrap();
    assert_eq!(customers(&w).await.unwrap(), json!(3));
    server.stop();
    assert!(customers(&w).await.is_err());
    server.start();
    assert_eq!(customers(&w).await.unwrap(), json!(3));
}

/// A server that goes down under a running statement: the agent reads that the connection was lost (or the
/// server shut down) while the statement ran, and to run it again, not the driver's bare I/O error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_cut_by_a_server_restart_says_so() {
    let server = std::sync::Arc::new(Server::private(Engine::Postgres));
    let w = std::sync::Arc::new(PostgresWarehouse::new(server.dsn.as_str(), quick_pool()).unwrap());
    assert_eq!(customers(&*w).await.unwrap(), json!(3));
    let running = {
        let w = std::sync::Arc::clone(&w);
        tokio::spawn(async move {
            w.query("SELECT pg_sleep(20)", options(10, Duration::from_secs(30)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = std::sync::Arc::clone(&server);
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    let err = running.await.unwrap().unwrap_err().to_string();
    assert!(
        err.contains("while the statement ran") && err.contains("run the statement again in a few seconds"),
        "{err}"
    );
    let starting = std::sync::Arc::clone(&server);
    tokio::task::spawn_blocking(move || starting.start())
        .await
        .unwrap();
    assert_eq!(customers(&*w).await.unwrap(), json!(3));
}

/// A server going down or coming up may accept a connection and drop it before the session is set up (the
/// soak test met "Connection reset by peer" during a PostgreSQL restart). In front of the real server, a
/// proxy resets the first two connections it accepts: the call still succeeds, on the third connection. When every connection is dropped, the call says it could
/// not reach the server, after three attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_dropped_mid_handshake_is_tried_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = Server::shared(Engine::Postgres);
    let front = |drops: usize| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&accepted);
        let backend = server.port;
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                if n < drops {
                    // The client asks for TLS first (8 bytes) and is told "N"; closed with its startup
                    // message unread, the socket is reset (RST), as by a server killed mid-handshake.
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut ssl_request = [0u8; 8];
                    if client.read_exact(&mut ssl_request).await.is_ok()
                        && client.write_all(b"N").await.is_ok()
                    {
                        let _ = client.readable().await;
                    }
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    let mut upstream = tokio::net::TcpStream::connect(("127.0.0.1", backend))
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        (port, accepted)
    };
    let through = |port: u16| {
        server
            .dsn
            .replace(&format!(":{}/", server.port), &format!(":{port}/"))
    };

    let (port, accepted) = front(2).await;
    let w = PostgresWarehouse::new(through(port), quick_pool()).unwrap();
    assert_eq!(customers(&w).await.unwrap(), json!(3));
    assert_eq!(accepted.load(Ordering::SeqCst), 3);

    let (port, accepted) = front(usize::MAX).await;
    let w = PostgresWarehouse::new(through(port), quick_pool()).unwrap();
    let err = customers(&w).await.unwrap_err().to_string();
    assert!(err.starts_with("could not reach 127.0.0.1:"), "{err}");
    assert!(err.contains("check that the server is running"), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

/// The shared pool scaffolding tells a pool whose every session is taken apart from a server that is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_says_every_session_is_busy() {
    const HOLD: &str = "WITH RECURSIVE busy(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM busy WHERE n < 2000000000) \
                        SELECT count(*) FROM busy";
    let server = Server::shared(Engine::Postgres);
    let one = PoolOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_millis(500),
        ..PoolOptions::default()
    };
    let w = std::sync::Arc::new(PostgresWarehouse::new(server.dsn.as_str(), one).unwrap());
    super::conformance::a_full_pool_says_every_session_is_busy(w, HOLD).await;
}

/// Agent statements stay prepared on the session (describing one before running it prepares it). When a
/// table under a cached statement changes shape — a dbt run rebuilt it with another column — the same
/// text is described and run afresh rather than failing with "cached plan must not change result type".
#[tokio::test]
async fn a_rebuilt_table_is_described_afresh() {
    use sqlx::Connection as _;
    let server = Server::private(Engine::Postgres);
    let mut writer = sqlx::PgConnection::connect(&server.dsn).await.unwrap();
    sqlx::raw_sql("CREATE TABLE reshaped (a integer); INSERT INTO reshaped VALUES (1)")
        .execute(&mut writer)
        .await
        .unwrap();
    let w = PostgresWarehouse::new(server.dsn.as_str(), one_session()).unwrap();
    let sql = "SELECT * FROM reshaped";
    let before = w.query(sql, options(10, Duration::from_secs(5))).await.unwrap();
    assert_eq!(before.columns.len(), 1);
    sqlx::raw_sql("ALTER TABLE reshaped ADD COLUMN b text DEFAULT 'x'")
        .execute(&mut writer)
        .await
        .unwrap();
    let after = w.query(sql, options(10, Duration::from_secs(5))).await.unwrap();
    let names: Vec<&str> = after.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(after.rows, vec![vec![json!(1), json!("x")]]);
}
