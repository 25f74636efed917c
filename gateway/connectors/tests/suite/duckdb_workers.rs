//! DuckDB's worker processes through the real worker binary: the memory limit, a worker that dies, timeouts,
//! the pool's bound, and the file released when idle.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sluice_connectors::duckdb::{DuckDbOptions, DuckDbWarehouse, WorkerProgram};
use sluice_connectors::{ConnectorError, PoolUsage, QueryOptions, Warehouse};

/// The connector's defaults, on this crate's worker binary.
pub fn options() -> DuckDbOptions {
    DuckDbOptions {
        worker_program: Some(WorkerProgram::new(env!("CARGO_BIN_EXE_sluice-duckdb-worker"))),
        ..DuckDbOptions::default()
    }
}

fn file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.duckdb");
    duckdb::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t AS SELECT 1 AS x")
        .unwrap();
    (dir, path)
}

fn query_options(max_rows: usize, timeout: Duration) -> QueryOptions {
    QueryOptions { max_rows, timeout }
}

const SLOW: &str = "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b";

/// Statements whose memory lives outside DuckDB's buffer manager, each with a tenth-or-smaller version of
/// itself and that version's answer: the small one passes under the same limit, so the big one fails for
/// its size alone. The big ones need about 3 GB (30 strings of 100 MB joined), 1 GB and more (a
/// thousand lists of a million BIGINTs, then all of it as one string of about 7 GB) and tens of GB (100,000 distinct 100 KB-to-500 KB strings).
pub const HEAVY: [(&str, &str, i64); 3] = [
    (
        "SELECT length(string_agg(repeat('x', 100000000), '')) FROM range(30)",
        "SELECT length(string_agg(repeat('x', 1000000), '')) FROM range(30)",
        30_000_000,
    ),
    (
        "SELECT length(list(range(1000000))::VARCHAR) FROM range(1000)",
        "SELECT length(list(range(1000))::VARCHAR) FROM range(10)",
        // Ten times "[0, 1, …, 999]" (2,890 digits, 999 two-character separators, brackets: 4,890
        // characters), nine separators and the outer brackets.
        48_920,
    ),
    (
        "SELECT count(DISTINCT repeat(i::VARCHAR, 100000)) FROM range(100000) t(i)",
        "SELECT count(DISTINCT repeat(i::VARCHAR, 1000)) FROM range(1000) t(i)",
        1_000,
    ),
];

/// Each heavy statement fails with the memory-limit error, all at once on one connection's workers, and
/// the connection answers right after; the small versions pass under the same limit.
#[tokio::test]
async fn statements_past_the_worker_memory_fail_with_the_memory_limit() {
    let (_dir, path) = file();
    let warehouse = std::sync::Arc::new(DuckDbWarehouse::new(
        &path,
        DuckDbOptions {
            worker_memory: 512 << 20,
            workers: 3,
            ..options()
        },
    ));
    let long = query_options(10, Duration::from_secs(120));
    for (_, small, expected) in HEAVY {
        let result = warehouse.query(small, long).await.unwrap();
        assert_eq!(result.rows, vec![vec![serde_json::json!(expected)]], "{small}");
    }
    let calls: Vec<_> = HEAVY
        .iter()
        .map(|(heavy, _, _)| {
            let warehouse = std::sync::Arc::clone(&warehouse);
            tokio::spawn(async move { (heavy, warehouse.query(heavy, long).await) })
        })
        .collect();
    for call in calls {
        let (sql, result) = call.await.unwrap();
        let error = result.expect_err(sql);
        assert!(
            matches!(error, ConnectorError::MemoryLimit { .. }),
            "{sql}: {error:?}"
        );
        let message = error.to_string();
        assert!(
            message.starts_with(
                "memory limit: this statement needed more than the 512 MiB a DuckDB worker may use \
                 ([duckdb] worker_memory)"
            ),
            "{sql}: {message}"
        );
    }
    let plain = warehouse.query("SELECT x FROM t", long).await.unwrap();
    assert_eq!(plain.rows, vec![vec![serde_json::json!(1)]]);
}

/// A worker killed mid-statement (as the kernel's OOM killer would) is reported as such, and the next
/// call gets a new worker.
#[tokio::test]
async fn a_worker_killed_mid_statement_is_reported_and_replaced() {
    let (_dir, path) = file();
    let warehouse = std::sync::Arc::new(DuckDbWarehouse::new(&path, options()));
    let running = {
        let warehouse = std::sync::Arc::clone(&warehouse);
        tokio::spawn(async move {
            warehouse
                .query(SLOW, query_options(10, Duration::from_secs(60)))
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Some(&pid) = warehouse.worker_pids().first()
            && warehouse.pool_usage().is_some_and(|u| u.in_use == 1)
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "no worker started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Let the statement begin.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SAFETY-free: kill(1) from the test, as an operator or the OOM killer would.
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let error = running.await.unwrap().unwrap_err();
    assert!(matches!(error, ConnectorError::WorkerStopped { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the DuckDB worker stopped while running this statement (killed by signal 9 (SIGKILL)); it most \
         likely exceeded its memory limit of 2 GiB ([duckdb] worker_memory); nothing else was affected, and \
         the next call gets a new worker"
    );
    let result = warehouse
        .query("SELECT x FROM t", query_options(10, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(result.rows, vec![vec![serde_json::json!(1)]]);
    assert!(!warehouse.worker_pids().contains(&pid));
}

/// However early the timeout fires (before the worker has even started), the statement stops, and the
/// worker is ready for the next call.
#[tokio::test]
async fn a_timeout_stops_the_statement_however_early_it_fires() {
    let (_dir, path) = file();
    let w = DuckDbWarehouse::new(&path, options());
    for micros in [1, 50, 200, 1_000, 5_000, 100_000, 500_000] {
        let started = Instant::now();
        let error = w
            .query(SLOW, query_options(10, Duration::from_micros(micros)))
            .await
            .unwrap_err();
        assert!(matches!(error, ConnectorError::Timeout { .. }), "{error:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{micros} us: {:?}",
            started.elapsed()
        );
    }
    let ok = w
        .query("SELECT x FROM t", query_options(10, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(ok.rows.len(), 1);
}

/// A connection runs at most `workers` calls at once; the pool reports them, and a caller that cannot get
/// a worker within its timeout is told the workers are busy.
#[tokio::test]
async fn callers_beyond_the_pool_wait_within_their_timeout() {
    let (_dir, path) = file();
    let warehouse = std::sync::Arc::new(DuckDbWarehouse::new(
        &path,
        DuckDbOptions {
            workers: 1,
            ..options()
        },
    ));
    assert_eq!(
        warehouse.pool_usage(),
        Some(PoolUsage {
            in_use: 0,
            idle: 0,
            max: 1
        })
    );
    let slow = {
        let warehouse = std::sync::Arc::clone(&warehouse);
        tokio::spawn(async move {
            warehouse
                .query(SLOW, query_options(10, Duration::from_millis(1_500)))
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while warehouse.pool_usage().is_none_or(|u| u.in_use == 0) {
        assert!(Instant::now() < deadline, "the slow call never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let error = warehouse
        .query("SELECT x FROM t", query_options(10, Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Busy { size: 1, .. }), "{error:?}");
    // A caller with time to spare gets the worker once the slow statement has timed out.
    let waited = warehouse
        .query("SELECT x FROM t", query_options(10, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(waited.rows.len(), 1);
    assert!(matches!(slow.await.unwrap(), Err(ConnectorError::Timeout { .. })));
    assert_eq!(
        warehouse.pool_usage(),
        Some(PoolUsage {
            in_use: 0,
            idle: 1,
            max: 1
        })
    );
}

/// The workers are ended as before the instance was: after every call with a zero idle period, and by the
/// reaper after the idle period otherwise, whichever call ran; a writer can then take the file.
#[tokio::test]
async fn the_instance_is_closed_when_idle() {
    let (_dir, path) = file();
    let now = DuckDbWarehouse::new(
        &path,
        DuckDbOptions {
            release_after_idle: Duration::ZERO,
            ..options()
        },
    );
    let result = now.query_blocking("SELECT x FROM t", 10).unwrap();
    assert_eq!(result.rows, vec![vec![serde_json::json!(1)]]);
    assert!(!now.is_open());
    let options10 = query_options(10, Duration::from_secs(5));
    now.query("SELECT x FROM t", options10).await.unwrap();
    assert!(!now.is_open());
    assert_eq!(now.list_tables().await.unwrap().len(), 1);
    assert!(!now.is_open());

    let later = DuckDbWarehouse::new(
        &path,
        DuckDbOptions {
            release_after_idle: Duration::from_millis(100),
            ..options()
        },
    );
    later.query("SELECT x FROM t", options10).await.unwrap();
    assert!(later.is_open());
    let deadline = Instant::now() + Duration::from_secs(5);
    while later.is_open() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!later.is_open(), "the idle worker was never ended");
    // Released for real: a writer can take the file.
    let writer = duckdb::Connection::open(&path).unwrap();
    writer.execute_batch("INSERT INTO t VALUES (2)").unwrap();
    // While the writer holds it, a call says the file is locked; afterwards it reads the new row.
    let error = later.query("SELECT x FROM t", options10).await.unwrap_err();
    assert!(matches!(error, ConnectorError::Locked { .. }), "{error:?}");
    drop(writer);
    let result = later
        .query("SELECT count(*) AS n FROM t", options10)
        .await
        .unwrap();
    assert_eq!(result.rows, vec![vec![serde_json::json!(2)]]);
}

#[tokio::test]
async fn a_missing_or_unreadable_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let o = query_options(1, Duration::from_secs(30));
    let missing = DuckDbWarehouse::new(dir.path().join("nope.duckdb"), options());
    let error = missing.query("SELECT 1", o).await.unwrap_err();
    assert!(matches!(error, ConnectorError::NotFound { .. }), "{error:?}");
    let garbage = dir.path().join("garbage.duckdb");
    std::fs::write(&garbage, b"not a database").unwrap();
    let error = DuckDbWarehouse::new(&garbage, options())
        .query("SELECT 1", o)
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Open { .. }), "{error:?}");
}

/// Exactly one statement per text, in the worker as before.
#[tokio::test]
async fn one_statement_per_text() {
    let (_dir, path) = file();
    let w = DuckDbWarehouse::new(&path, options());
    let error = w
        .query(
            "CREATE TEMP TABLE planted AS SELECT 42 AS x; SELECT * FROM planted",
            query_options(10, Duration::from_secs(30)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "this text holds 2 DuckDB statements; only one statement runs per call"
    );
}

/// A worker program that is not one fails the call with a clear reason, and the gateway goes on. A program
/// that exits at once may do so before or after the gateway writes to it: the reason is the same.
#[tokio::test]
async fn a_wrong_worker_program_says_so() {
    let (dir, path) = file();
    use std::os::unix::fs::PermissionsExt as _;
    let closes_its_input = dir.path().join("closes-its-input");
    std::fs::write(&closes_its_input, "#!/bin/sh\nexec 0<&-\nexit 3\n").unwrap();
    std::fs::set_permissions(&closes_its_input, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cases = [
        (PathBuf::from("/bin/true"), "exited with status 0"),
        (closes_its_input, "exited with status 3"),
    ];
    for (program, how) in cases {
        for _ in 0..5 {
            let w = DuckDbWarehouse::new(
                &path,
                DuckDbOptions {
                    worker_program: Some(WorkerProgram::new(&program)),
                    ..DuckDbOptions::default()
                },
            );
            let error = w
                .query("SELECT 1", query_options(1, Duration::from_secs(30)))
                .await
                .unwrap_err()
                .to_string();
            let expected = format!(
                "the DuckDB worker {} could not start: it {how} before it was ready",
                program.display()
            );
            assert!(error.contains(&expected), "{error}");
        }
    }
}
