//! The one-shot reader against the crate's prepare + query path, type by type, and statement counting.

use super::*;
use crate::duckdb::{convert, query_error};
use duckdb::Connection;
use pretty_assertions::assert_eq;

/// The crate's prepare + query reader that agent statements used before this module: the reference
/// the one-shot reader is compared with.
fn crate_path(conn: &Connection, sql: &str, max_rows: usize) -> Result<QueryResult, ConnectorError> {
    let mut stmt = conn.prepare(sql).map_err(query_error)?;
    let mut rows = stmt.query([]).map_err(query_error)?;
    let columns: Vec<Column> = match rows.as_ref() {
        Some(stmt) => (0..stmt.column_count())
            .map(|i| Column {
                name: stmt
                    .column_name(i)
                    .cloned()
                    .unwrap_or_else(|_| format!("column{i}")),
                type_name: convert::type_name(&stmt.column_logical_type(i)),
            })
            .collect(),
        None => Vec::new(),
    };
    let zoned: Vec<bool> = columns
        .iter()
        .map(|c| c.type_name == "TIMESTAMP WITH TIME ZONE")
        .collect();
    let json: Vec<bool> = columns.iter().map(|c| c.type_name == "JSON").collect();
    let mut out = Vec::new();
    let mut truncated = false;
    while let Some(row) = rows.next().map_err(query_error)? {
        if out.len() == max_rows {
            truncated = true;
            break;
        }
        let mut cells = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let value = row.get_ref(i).map_err(query_error)?;
            cells.push(convert::column_cell(value, zoned[i], json[i]));
        }
        out.push(cells);
    }
    Ok(QueryResult {
        columns,
        rows: out,
        truncated,
    })
}

/// A file with a table of ordinary and awkward columns, opened read-only with the connector's own
/// settings.
fn fixture() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oneshot.duckdb");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
             CREATE TABLE orders (
                 id INTEGER PRIMARY KEY, amount DECIMAL(10,2), big DECIMAL(38,0), huge HUGEINT,
                 uhuge UHUGEINT, note VARCHAR, placed DATE, seen TIMESTAMP, seen_tz TIMESTAMPTZ,
                 doc JSON, feeling mood, tags VARCHAR[], pair STRUCT(a INTEGER, b VARCHAR),
                 attrs MAP(VARCHAR, INTEGER), fixed INTEGER[2], choice UNION(n INTEGER, s VARCHAR),
                 raw BLOB, id_uuid UUID, span INTERVAL, ratio DOUBLE, small FLOAT);
             INSERT INTO orders VALUES
                 (1, 12.50, 99999999999999999999999999999999999999, -170141183460469231731687303715884105728,
                  340282366920938463463374607431768211455, 'café', DATE '2024-02-29',
                  TIMESTAMP '2024-02-29 12:34:56.789', TIMESTAMPTZ '2024-02-29 12:34:56+02',
                  '{\"k\": [1, 2.5, null]}', 'happy', ['a', NULL], {'a': 1, 'b': 'x'},
                  MAP {'k': 1}, [1, 2], union_value(s := 'text'), '\\xAA\\x00'::BLOB,
                  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', INTERVAL 14 MONTH + INTERVAL 3 DAY,
                  'NaN'::DOUBLE, 1.5),
                 (2, NULL, -1, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                  NULL, NULL, NULL, -0.0, 'inf'::FLOAT),
                 (3, -0.01, 0, 1, 1, '', DATE '1970-01-01', TIMESTAMP '1970-01-01',
                  TIMESTAMPTZ '1970-01-01 00:00:00+00', '\"s\"', 'sad', [], {'a': NULL, 'b': NULL},
                  MAP {}, [NULL, 3], union_value(n := 7), ''::BLOB, NULL, INTERVAL 0 DAY, 1e308, 0);",
        )
        .unwrap();
    }
    let settings = crate::duckdb::settings(&crate::duckdb::DuckDbOptions::default());
    let settings: Vec<(&str, String)> = settings.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let db = Database::open(&path, &settings).unwrap();
    (dir, db)
}

fn one_shot(db: &Database, sql: &str, max_rows: usize) -> Result<QueryResult, ConnectorError> {
    run(&db.session().unwrap(), sql, max_rows)
}

fn both(
    db: &Database,
    sql: &str,
    max_rows: usize,
) -> (Result<QueryResult, String>, Result<QueryResult, String>) {
    let old = crate_path(&db.connection().unwrap(), sql, max_rows).map_err(|e| e.to_string());
    let new = one_shot(db, sql, max_rows).map_err(|e| e.to_string());
    (old, new)
}

#[test]
fn every_type_reads_as_the_crate_reads_it() {
    let (_dir, db) = fixture();
    // TIME_NS is the one column of test_all_types() the crate's reader cannot read (it panics on
    // its Arrow form); see `a_column_the_crate_cannot_read_is_refused_clearly`.
    let queries = [
        "SELECT * EXCLUDE (time_ns) FROM test_all_types()",
        "SELECT * FROM orders ORDER BY id",
        "SELECT id, amount * 2 AS doubled, note || '!' AS shout FROM orders ORDER BY id",
        "SELECT * FROM orders WHERE false",
        "SELECT count(*) AS n, sum(amount) AS total, max(seen_tz) AS latest FROM orders",
        "SELECT range AS i, range::VARCHAR AS s FROM range(5000)",
        "SELECT 1",
        "VALUES (1, 'a'), (2, NULL)",
        "FROM orders SELECT id, feeling, tags, pair, attrs, fixed, choice ORDER BY id DESC",
        "SELECT 'POINT (1 2)'::GEOMETRY AS g",
        "SHOW TABLES",
        "DESCRIBE orders",
        "SUMMARIZE orders",
        "EXPLAIN SELECT * FROM orders",
        "PIVOT orders ON feeling USING sum(amount) GROUP BY id ORDER BY id",
        "SELECT current_setting('access_mode') AS a, current_setting('enable_external_access') AS e, \
         current_setting('lock_configuration') AS l, current_setting('duckdb_api') AS api",
    ];
    for sql in queries {
        let (old, _) = both(&db, sql, usize::MAX);
        let total = old.as_ref().map(|r| r.rows.len()).unwrap_or(0);
        for cap in [0, 1, total.saturating_sub(1), total, total + 1, usize::MAX] {
            let (old, new) = both(&db, sql, cap);
            assert!(old.is_ok(), "{sql}: {old:?}");
            assert_eq!(new, old, "{sql} (cap {cap})");
        }
    }
}

#[test]
fn truncation_matches_at_every_edge() {
    let (_dir, db) = fixture();
    let sql = "SELECT * FROM orders ORDER BY id";
    for (cap, rows, truncated) in [
        (0, 0, true),
        (1, 1, true),
        (2, 2, true),
        (3, 3, false),
        (4, 3, false),
    ] {
        let result = one_shot(&db, sql, cap).unwrap();
        assert_eq!(
            (result.rows.len(), result.truncated),
            (rows, truncated),
            "cap {cap}"
        );
    }
    // Across DuckDB's 2048-row chunks: the extra row may sit in the next chunk.
    for (cap, truncated) in [
        (2047, true),
        (2048, true),
        (2049, true),
        (4095, true),
        (4096, false),
    ] {
        let result = one_shot(&db, "SELECT * FROM range(4096)", cap).unwrap();
        assert_eq!(
            (result.rows.len(), result.truncated),
            (cap.min(4096), truncated),
            "cap {cap}"
        );
        assert_eq!(
            result.rows.last().cloned(),
            Some(vec![serde_json::json!(cap.min(4096) - 1)])
        );
    }
    let empty = one_shot(&db, "SELECT * FROM orders WHERE false", 0).unwrap();
    assert_eq!(
        (empty.rows.len(), empty.truncated, empty.columns.len()),
        (0, false, 21)
    );
}

#[test]
fn a_column_the_crate_cannot_read_is_refused_clearly() {
    let (_dir, db) = fixture();
    let error = one_shot(&db, "SELECT 1 AS n, time_ns FROM test_all_types()", 10).expect_err("TIME_NS");
    assert_eq!(
        error.to_string(),
        "column \"time_ns\" has DuckDB type TIMENS, which Sluice cannot read yet; cast it, for example to VARCHAR"
    );
    let cast = one_shot(&db, "SELECT time_ns::VARCHAR AS t FROM test_all_types()", 10).unwrap();
    assert_eq!(cast.rows[0], vec![serde_json::json!("00:00:00")]);
}

#[test]
fn exactly_one_statement_runs() {
    let (_dir, db) = fixture();
    let error = one_shot(&db, "SELECT 1; SELECT 2", 10).expect_err("two statements");
    assert_eq!(
        error.to_string(),
        "this text holds 2 DuckDB statements; only one statement runs per call"
    );
    // The crate's prepare would run the first statement and answer the second; here nothing runs, so
    // the temporary table never exists, even on the same connection.
    let session = db.session().unwrap();
    let error = run(
        &session,
        "CREATE TEMP TABLE planted AS SELECT 42 AS x; SELECT * FROM planted",
        10,
    )
    .expect_err("a write hidden before a read");
    assert_eq!(
        error.to_string(),
        "this text holds 2 DuckDB statements; only one statement runs per call"
    );
    let error = run(&session, "SELECT * FROM planted", 10).expect_err("nothing ran");
    assert!(
        error
            .to_string()
            .contains("Table with name planted does not exist"),
        "{error}"
    );
    // A trailing semicolon, comments and blank space are still one statement.
    let result = run(&session, "  -- why\n SELECT 7 AS x; /* done */ ", 10).unwrap();
    assert_eq!(result.rows, vec![vec![serde_json::json!(7)]]);
    for empty in ["", "  ", "-- nothing", ";"] {
        let error = run(&session, empty, 10).expect_err(empty);
        assert_eq!(
            error.to_string(),
            "this text holds no DuckDB statement; send one query",
            "{empty:?}"
        );
    }
    let error = run(&session, "SELECT 1\0", 10).expect_err("NUL byte");
    assert_eq!(error.to_string(), "the SQL text holds a NUL byte");
}

/// Every text the shortcut lets through without counting is one statement or a parse error by the
/// parser's own count, and the parse errors read as before.
#[test]
fn the_shortcut_agrees_with_the_parser() {
    let (_dir, db) = fixture();
    let session = db.session().unwrap();
    let corpus = [
        "SELECT 1",
        "  select * from orders",
        "WITH a AS (SELECT 1) SELECT * FROM a",
        "SELECT 1 SELECT 2",
        "SELECT 'a;b'",
        "SELECT 1 -- trailing comment",
        "SELECT /* inner */ 1",
        "SELEC 1",
        "x",
        ")",
        "FROM orders",
        "VALUES (1)",
        "PIVOT orders ON feeling USING sum(amount)",
        "DESCRIBE orders",
        "EXPLAIN SELECT 1",
        "SHOW TABLES",
        "SUMMARIZE orders",
        "'just a string'",
        "\u{feff}SELECT 1",
        "-- only a comment",
        "/* only a comment */",
        "",
        "   ",
        "SELECT 1; SELECT 2",
        "\nSELECT\n1\n",
    ];
    for sql in corpus {
        let c_sql = CString::new(sql).unwrap();
        let counted = count_statements(&session, &c_sql);
        if at_most_one_statement(sql) {
            match &counted {
                Ok(count) => assert_eq!(*count, 1, "{sql:?}"),
                Err(_) => {
                    // The same parse error through the shortcut as through the count.
                    let direct = run(&session, sql, 10).expect_err(sql);
                    assert_eq!(
                        direct.to_string(),
                        counted.as_ref().unwrap_err().to_string(),
                        "{sql:?}"
                    );
                }
            }
        }
    }
    assert!(!at_most_one_statement("SELECT 'a;b'"));
    assert!(!at_most_one_statement("-- c\nSELECT 1"));
    assert!(!at_most_one_statement("  "));
    assert!(at_most_one_statement("SELECT 1"));
}

#[test]
fn errors_read_as_the_crate_path_reads_them() {
    let (_dir, db) = fixture();
    for sql in [
        "SELEC 1",
        "SELECT * FROM orders WHERE",
        "SELECT nope FROM orders",
        "SELECT * FROM missing",
        "SELECT 1/0::INTEGER, 'x'::INTEGER",
        "COPY orders TO '/tmp/leak.csv'",
        "SET enable_external_access = true",
        "SELECT 1::VARIANT AS v",
    ] {
        let (old, new) = both(&db, sql, 10);
        assert!(old.is_err(), "{sql}: {old:?}");
        assert_eq!(new, old, "{sql}");
    }
    // The one difference: a write refused by the read-only instance is named for what it is. Through
    // prepare + execute DuckDB saw (and named) the EXECUTE of a prepared statement.
    let (old, new) = both(&db, "CREATE TABLE t (x INTEGER)", 10);
    let refused = |kind: &str| {
        format!(
            "Invalid Input Error: Cannot execute statement of type \"{kind}\" on database \"oneshot\" \
             which is attached in read-only mode!"
        )
    };
    assert_eq!((old, new), (Err(refused("EXECUTE")), Err(refused("CREATE"))));
    let error = one_shot(&db, "SELEC 1", 10).unwrap_err().to_string();
    assert_eq!(
        error,
        "Parser Error: syntax error at or near \"SELEC\"\n\nLINE 1: SELEC 1\n        ^^^^^"
    );
}

#[test]
fn an_interrupt_stops_the_statement_and_is_harmless_afterwards() {
    let (_dir, db) = fixture();
    let session = db.session().unwrap();
    let stopper = session.interrupter();
    let interrupting = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        stopper.interrupt();
        stopper
    });
    let started = std::time::Instant::now();
    let error = run(
        &session,
        "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b",
        10,
    )
    .expect_err("interrupted");
    assert_eq!(error.to_string(), "the query was interrupted");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let stopper = interrupting.join().unwrap();
    drop(session);
    // The connection is gone: the handle must not reach it.
    stopper.interrupt();
    assert!(stopper.con.lock().unwrap().is_null());
}
