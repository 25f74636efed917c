//! The checks every engine must pass, written once. Each engine module builds a [`Fixture`] and runs
//! them through the `conformance!` macro, so a failure names the engine and the check.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use sluice_connectors::{ConnectorError, QueryOptions, TableKind, TableRef, Warehouse};

/// An engine loaded with the fixture schema, plus the engine-specific SQL the checks need.
pub struct Fixture {
    pub warehouse: Box<dyn Warehouse>,
    /// A read-only statement that runs for minutes.
    pub slow_sql: &'static str,
    /// Counts the server's running copies of `slow_sql` (its own activity view); `None` for embedded
    /// engines, where the statement runs inside this process.
    pub activity_sql: Option<&'static str>,
    /// Another statement that runs for minutes, and its activity count: the dropped-call check runs it, so
    /// that the timeout check counting `slow_sql` on the same server never sees it.
    pub dropped_sql: &'static str,
    pub dropped_activity_sql: Option<&'static str>,
    /// Statements that slipped past governance and would leave state behind on a session.
    pub session: SessionCase,
    /// Keeps temporary files (SQLite/DuckDB) alive.
    pub _keep: Option<tempfile::TempDir>,
}

/// What an engine must not let one statement leave behind for the next, and the reads it must still run.
pub struct SessionCase {
    /// The same database through a pool of one session, so that a later statement lands on the session an
    /// earlier one used; `None` when `warehouse` pools nothing (DuckDB: a connection per statement).
    pub one_session: Option<Box<dyn Warehouse>>,
    /// Statements that would leave state on the session: temporary objects named like the real `orders`
    /// table, session variables and settings, prepared statements, attached files.
    pub leave_state: Vec<String>,
    /// `Some(start)`: each is refused unexecuted by the engine's own account of it, with a message that
    /// starts so. `None`: each runs, on a connection of its own that nothing else uses.
    pub refusal: Option<&'static str>,
    /// Reads whose first cell shows the session's state (a variable, a setting); it must be the same after
    /// the attempts as before them.
    pub state_probes: Vec<&'static str>,
    /// Reads other than plain SELECT (SHOW, DESCRIBE, EXPLAIN, VALUES, PRAGMA …) that keep working.
    pub reads: Vec<&'static str>,
}

pub fn options(max_rows: usize, timeout: Duration) -> QueryOptions {
    QueryOptions { max_rows, timeout }
}

fn normal() -> QueryOptions {
    options(1_000, Duration::from_secs(30))
}

/// Every value of `type_samples` row 1, as JSON; engines without a type lack the column.
fn expected_samples() -> serde_json::Map<String, Value> {
    let value = json!({
        "id": 1,
        "small_int": -32768,
        "int_val": 42,
        "big_int": "9007199254740993",
        "exact": "12345.678900",
        "single": 1.1,
        "double_val": 0.5,
        "flag": true,
        "label": "héllo \"world\"",
        "day": "2024-02-29",
        "clock": "13:45:30.250000",
        "stamp": "2024-02-29T13:45:30",
        "instant": "2024-02-29T13:45:30Z",
        "span": "P1Y2M3DT4H5M6S",
        "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "doc": {"a": [1, 2], "b": null},
        "nums": [1, 2, 3],
        "raw": "aGk=",
        "nothing": null,
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

pub async fn types_round_trip(f: Fixture) {
    let result = f
        .warehouse
        .query("SELECT * FROM type_samples ORDER BY id", normal())
        .await
        .unwrap();
    let expected = expected_samples();
    assert_eq!(result.rows.len(), 1);
    assert!(!result.truncated);
    let mut got = serde_json::Map::new();
    for (column, cell) in result.columns.iter().zip(&result.rows[0]) {
        assert!(
            !column.type_name.is_empty(),
            "column {} has no type name",
            column.name
        );
        assert!(
            expected.contains_key(&column.name),
            "unexpected column {}",
            column.name
        );
        got.insert(column.name.clone(), cell.clone());
    }
    let wanted: serde_json::Map<String, Value> = expected
        .into_iter()
        .filter(|(k, _)| got.contains_key(k))
        .collect();
    assert_eq!(Value::Object(got), Value::Object(wanted));
}

pub async fn reads_stop_at_the_cap(f: Fixture) {
    let sql = "SELECT id, name FROM customers ORDER BY id";
    let capped = f
        .warehouse
        .query(sql, options(2, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(
        capped.rows,
        vec![vec![json!(1), json!("Ada")], vec![json!(2), json!("Grace")]]
    );
    assert!(capped.truncated);
    let exact = f
        .warehouse
        .query(sql, options(3, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(exact.rows.len(), 3);
    assert!(!exact.truncated);
}

pub async fn empty_results_keep_their_columns(f: Fixture) {
    let result = f
        .warehouse
        .query("SELECT id, name FROM customers WHERE id < 0", normal())
        .await
        .unwrap();
    let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "name"]);
    assert!(result.rows.is_empty());
}

async fn count(w: &dyn Warehouse, table: &str) -> Value {
    let result = w
        .query(&format!("SELECT count(*) AS n FROM {table}"), normal())
        .await
        .unwrap();
    result.rows[0][0].clone()
}

/// Statements that slipped past governance (the connector called directly) fail at the engine, and
/// nothing changed afterwards.
pub async fn writes_fail_at_the_engine(f: Fixture) {
    let w = f.warehouse.as_ref();
    for sql in [
        "INSERT INTO customers (id, name) VALUES (99, 'Mallory')",
        "UPDATE customers SET name = 'Mallory'",
        "DELETE FROM order_items",
        "CREATE TABLE planted (a integer)",
        "DROP TABLE order_items",
        "ALTER TABLE customers ADD COLUMN planted integer",
    ] {
        match w.query(sql, normal()).await {
            Err(ConnectorError::Query { message }) => assert!(!message.is_empty(), "{sql}"),
            // Refused on the server's description of it, before it could run.
            Err(ConnectorError::NotAQuery { .. }) => {}
            other => panic!("{sql}: expected an engine error, got {other:?}"),
        }
    }
    assert_eq!(count(w, "customers").await, json!(3));
    assert_eq!(count(w, "order_items").await, json!(3));
    let names: Vec<String> = w
        .list_tables()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(!names.contains(&"planted".to_owned()), "{names:?}");
    let customers = w
        .describe_table(&TableRef::parse("customers").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(customers.columns.len(), 4);
}

async fn rows(w: &dyn Warehouse, sql: &str) -> (Vec<String>, Vec<Vec<Value>>) {
    let result = w
        .query(sql, normal())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let names = result.columns.into_iter().map(|c| c.name).collect();
    (names, result.rows)
}

async fn first_cell(w: &dyn Warehouse, sql: &str) -> Value {
    rows(w, sql)
        .await
        .1
        .first()
        .and_then(|row| row.first())
        .cloned()
        .unwrap_or_else(|| panic!("{sql}: no rows"))
}

/// Statements that slipped past governance (the connector called directly) and would leave state on a
/// pooled session — a temporary `orders` table shadowing the real one, variables, settings, prepared
/// statements, attached files — are refused by the engine's own description of them (or, on DuckDB, run
/// on a connection of their own). On the very same session afterwards, `orders` is the real table, every
/// probed setting is what it was, and the reads beyond SELECT that worked before still work.
pub async fn no_session_state_survives_a_statement(f: Fixture) {
    let case = f.session;
    let w: &dyn Warehouse = case.one_session.as_deref().unwrap_or(f.warehouse.as_ref());
    let orders = "SELECT * FROM orders ORDER BY id";
    let real = rows(w, orders).await;
    assert_eq!(real.0, ["id", "customer_id", "amount", "placed_at"]);
    assert_eq!(real.1.len(), 3, "{real:?}");
    let mut before = Vec::new();
    for probe in &case.state_probes {
        before.push(first_cell(w, probe).await);
    }
    for read in &case.reads {
        let (columns, _) = rows(w, read).await;
        assert!(!columns.is_empty(), "{read}");
    }

    for sql in &case.leave_state {
        let result = w.query(sql, normal()).await;
        match (case.refusal, result) {
            (Some(start), Err(e @ (ConnectorError::NotAQuery { .. } | ConnectorError::Query { .. }))) => {
                let message = e.to_string();
                assert!(message.starts_with(start), "{sql}: {message}");
                assert!(message.contains("only read queries run here"), "{sql}: {message}");
            }
            (Some(_), other) => panic!("{sql}: expected the engine's refusal, got {other:?}"),
            // It runs, on a connection of its own: the checks below then show that nothing of it stayed.
            (None, result) => assert!(result.is_ok(), "{sql}: {result:?}"),
        }
        // After every single attempt, not just the last: the real table, the real settings.
        assert_eq!(rows(w, orders).await, real, "after {sql}");
        for (probe, was) in case.state_probes.iter().zip(&before) {
            assert_eq!(&first_cell(w, probe).await, was, "{probe} after {sql}");
        }
    }
    for read in &case.reads {
        let (columns, _) = rows(w, read).await;
        assert!(!columns.is_empty(), "{read}");
    }
}

async fn running(w: &dyn Warehouse, activity_sql: &str) -> i64 {
    let result = w.query(activity_sql, normal()).await.unwrap();
    let cell = &result.rows[0][0];
    cell.as_i64()
        .or_else(|| cell.as_str().and_then(|s| s.parse().ok()))
        .unwrap()
}

/// Waits until the server runs no copy of the statement `activity_sql` counts, failing with `what` (and the
/// count) after `limit`.
async fn until_gone(w: &dyn Warehouse, activity_sql: &str, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        let n = running(w, activity_sql).await;
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{what} ({n})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A statement past its timeout fails with `Timeout` promptly, and the server is no longer running it.
pub async fn timeouts_cancel_on_the_server(f: Fixture) {
    let w: std::sync::Arc<dyn Warehouse> = std::sync::Arc::from(f.warehouse);
    let timeout = Duration::from_millis(1_500);
    let started = Instant::now();
    let slow = {
        let w = std::sync::Arc::clone(&w);
        tokio::spawn(async move { w.query(f.slow_sql, options(10, timeout)).await })
    };
    if let Some(activity_sql) = f.activity_sql {
        // The activity query must see the statement while it runs, or its later zero would prove nothing.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            running(w.as_ref(), activity_sql).await,
            1,
            "the slow statement should be running"
        );
    }
    match slow.await.unwrap() {
        Err(ConnectorError::Timeout { timeout: t }) => assert_eq!(t, timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let elapsed = started.elapsed();
    assert!(elapsed < timeout + Duration::from_secs(3), "took {elapsed:?}");
    if let Some(activity_sql) = f.activity_sql {
        until_gone(
            w.as_ref(),
            activity_sql,
            Duration::from_secs(3),
            "the server still runs the statement",
        )
        .await;
    }
    // The connection that ran it is usable again (or was replaced).
    assert_eq!(count(w.as_ref(), "customers").await, json!(3));
}

/// A call given up mid-statement (its future dropped, as a cancelled MCP call's is) stops its statement:
/// within a second the server no longer runs it, and the engine serves the next call at once, on the same
/// session where the engine pools one.
pub async fn a_dropped_call_stops_its_statement(f: Fixture) {
    let w: std::sync::Arc<dyn Warehouse> = std::sync::Arc::from(f.warehouse);
    let long = options(10, Duration::from_secs(120));
    // Runs the statement and drops the call's future mid-statement, as a cancelled MCP call's is.
    let run_and_drop = |w: std::sync::Arc<dyn Warehouse>, activity: Option<&'static str>| async move {
        let task = {
            let w = std::sync::Arc::clone(&w);
            tokio::spawn(async move { w.query(f.dropped_sql, long).await })
        };
        tokio::time::sleep(Duration::from_millis(700)).await;
        if let Some(activity_sql) = activity {
            // Seen running first, or the later zero would prove nothing.
            assert_eq!(
                running(w.as_ref(), activity_sql).await,
                1,
                "the slow statement should be running"
            );
        }
        assert!(!task.is_finished(), "the slow statement finished early");
        task.abort();
        assert!(task.await.is_err_and(|e| e.is_cancelled()));
    };
    run_and_drop(std::sync::Arc::clone(&w), f.dropped_activity_sql).await;
    if let Some(activity_sql) = f.dropped_activity_sql {
        until_gone(
            w.as_ref(),
            activity_sql,
            Duration::from_secs(1),
            "the server still runs the statement 1 s after its call was dropped",
        )
        .await;
    }
    assert_eq!(count(w.as_ref(), "customers").await, json!(3));
    if let Some(one) = f.session.one_session {
        let one: std::sync::Arc<dyn Warehouse> = std::sync::Arc::from(one);
        run_and_drop(std::sync::Arc::clone(&one), None).await;
        // The pool's only session is free again (closed and replaced, or stopped) well before the slow
        // statement would have ended.
        let next = tokio::time::timeout(Duration::from_secs(3), count(one.as_ref(), "customers")).await;
        assert_eq!(
            next.ok(),
            Some(json!(3)),
            "the one session stayed busy after its call was dropped"
        );
    }
}

pub async fn introspection(f: Fixture) {
    let w = f.warehouse.as_ref();
    let tables = w.list_tables().await.unwrap();
    let find = |name: &str| {
        tables
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} in {tables:?}"))
    };
    assert_eq!(find("customers").kind, TableKind::Table);
    assert_eq!(find("customers").column_count, 4);
    assert!(find("customers").row_estimate.is_some(), "{tables:?}");
    assert_eq!(find("big_orders").kind, TableKind::View);
    assert_eq!(find("big_orders").row_estimate, None);

    let orders = w
        .describe_table(&TableRef::parse("ORDERS").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(orders.name, "orders");
    assert_eq!(orders.primary_key, ["id"]);
    assert_eq!(orders.foreign_keys.len(), 1);
    assert_eq!(orders.foreign_keys[0].columns, ["customer_id"]);
    assert_eq!(orders.foreign_keys[0].referenced_table, "customers");
    assert_eq!(orders.foreign_keys[0].referenced_columns, ["id"]);
    let columns: Vec<(&str, bool, bool)> = orders
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.nullable, c.primary_key))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", false, true),
            ("customer_id", false, false),
            ("amount", true, false),
            ("placed_at", true, false)
        ]
    );

    let items = w
        .describe_table(&TableRef::parse("order_items").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(items.primary_key, ["order_id", "line"]);
    assert_eq!(items.foreign_keys[0].referenced_table, "orders");

    let view = w
        .describe_table(&TableRef::parse("big_orders").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.kind, TableKind::View);
    assert!(
        w.describe_table(&TableRef::parse("no_such_table").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // A name is data, never SQL.
    assert!(
        w.describe_table(&TableRef::parse("customers' OR '1'='1").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    w.ping().await.unwrap();
}

/// Runs every conformance check for one engine; `$open` is an async fn returning a [`Fixture`].
macro_rules! conformance {
    ($open:path) => {
        mod conformance {
            use crate::suite::conformance as c;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn types_round_trip() {
                c::types_round_trip($open().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reads_stop_at_the_cap() {
                c::reads_stop_at_the_cap($open().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn empty_results_keep_their_columns() {
                c::empty_results_keep_their_columns($open().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn writes_fail_at_the_engine() {
                c::writes_fail_at_the_engine($open().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn no_session_state_survives_a_statement() {
                c::no_session_state_survives_a_statement($open().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn timeouts_cancel_on_the_server() {
                c::timeouts_cancel_on_the_server($open().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_dropped_call_stops_its_statement() {
                c::a_dropped_call_stops_its_statement($open().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn introspection() {
                c::introspection($open().await).await;
            }
        }
    };
}
pub(crate) use conformance;

/// A pool of one session whose session is taken by `hold` (a statement that runs past its 3 s timeout):
/// another call is told every session is busy — not that the server is down — and the session serves
/// again once the statement ended. `hold` must not be the fixture's SLOW statement, whose running copies
/// another check counts.
pub async fn a_full_pool_says_every_session_is_busy(w: std::sync::Arc<dyn Warehouse>, hold: &'static str) {
    let slow = {
        let w = std::sync::Arc::clone(&w);
        tokio::spawn(async move { w.query(hold, options(10, Duration::from_secs(3))).await })
    };
    // Give the slow statement time to take the only session.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let error = w
        .query("SELECT 1", options(10, Duration::from_secs(5)))
        .await
        .expect_err("a full pool must refuse the call");
    assert!(matches!(error, ConnectorError::Busy { size: 1, .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("all 1 connections to 127.0.0.1:"),
        "{message}"
    );
    assert!(message.ends_with("are busy; retry shortly"), "{message}");
    assert!(matches!(slow.await.unwrap(), Err(ConnectorError::Timeout { .. })));
    let result = w
        .query("SELECT 1 AS one", options(10, Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(result.rows, vec![vec![json!(1)]]);
}
