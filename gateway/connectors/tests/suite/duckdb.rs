//! DuckDB: the conformance checks on a file built from the fixture, and the external-access wall.

use std::time::Duration;

use sluice_connectors::ConnectorError;
use sluice_connectors::duckdb::DuckDbWarehouse;

use super::conformance::{Fixture, SessionCase, conformance, options};
use sluice_test_servers::fixture_sql;

async fn open() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixture.duckdb");
    {
        let conn = duckdb::Connection::open(&path).unwrap();
        conn.execute_batch(&fixture_sql("duckdb.sql")).unwrap();
    }
    Fixture {
        warehouse: Box::new(DuckDbWarehouse::new(&path, super::duckdb_workers::options())),
        slow_sql: "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b",
        activity_sql: None,
        dropped_sql: "SELECT sum(a.range * b.range) FROM range(100000001) a, range(100000001) b",
        dropped_activity_sql: None,
        session: SessionCase {
            one_session: None,
            // The read-only instance accepts every one of these; each runs on a connection of its own,
            // dropped with whatever it created.
            leave_state: [
                "CREATE TEMP TABLE orders AS SELECT 42 AS x",
                "CREATE TEMP VIEW orders AS SELECT 42 AS x",
                "CREATE TEMP MACRO planted() AS 42",
                "CREATE TEMP SEQUENCE planted_seq",
                "SET VARIABLE planted = 42",
                "PREPARE planted AS SELECT 42",
                "SET search_path = 'temp'",
                "CREATE TEMP TABLE customers AS SELECT 42 AS x",
            ]
            .map(String::from)
            .to_vec(),
            refusal: None,
            state_probes: vec![
                "SELECT getvariable('planted') IS NULL",
                "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'planted'",
                "SELECT count(*) FROM duckdb_sequences()",
                "SELECT count(*) FROM duckdb_prepared_statements()",
                "SELECT current_setting('search_path')",
                "SELECT current_schema()",
            ],
            reads: vec![
                "SHOW TABLES",
                "DESCRIBE orders",
                "SUMMARIZE orders",
                "EXPLAIN SELECT * FROM orders",
                "VALUES (1, 'a')",
                "FROM orders SELECT id",
                "PIVOT orders ON customer_id USING sum(amount)",
            ],
        },
        _keep: Some(dir),
    }
}

conformance!(super::open);

#[tokio::test]
async fn files_and_other_databases_are_out_of_reach() {
    let fixture = open().await;
    let w = fixture.warehouse.as_ref();
    let out = tempfile::tempdir().unwrap();
    let copy_target = out.path().join("leak.csv");
    let attach_target = out.path().join("planted.duckdb");
    for sql in [
        format!("COPY customers TO '{}'", copy_target.display()),
        "SELECT * FROM read_csv('/etc/passwd')".to_owned(),
        "SELECT * FROM '/etc/passwd'".to_owned(),
        format!("ATTACH '{}' AS planted", attach_target.display()),
        "SET enable_external_access = true".to_owned(),
        "INSTALL httpfs".to_owned(),
    ] {
        let result = w.query(&sql, options(10, Duration::from_secs(10))).await;
        assert!(
            matches!(result, Err(ConnectorError::Query { .. })),
            "{sql}: {result:?}"
        );
    }
    assert!(!copy_target.exists());
    assert!(!attach_target.exists());
}
