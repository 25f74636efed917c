//! DuckDB engine time on the jaffle warehouse, three ways in one run: the raw engine on a kept-open
//! connection (C API `duckdb_query`, every cell of the result read: the fair baseline), the statement as a
//! worker runs it (a fresh connection, the one-statement check, `duckdb_query`, the conversion to cells:
//! the statement time inside a worker), and the full connector call (the blocking-pool hop, the IPC round
//! trip to a worker process and back, the JSON both ways). `raw_fresh_connection` is the raw engine on a
//! connection made per statement, to separate that choice's cost from the reading into cells.
//!
//! Run: `cargo bench -p sluice-connectors --bench duckdb_engine` (release; set `CARGO_TARGET_DIR` as the
//! README says). Two queries: a 10-row read and a top-10 join with GROUP BY; each with one DuckDB thread
//! and with one per core, the same for all three ways.

#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use duckdb::ffi;
use sluice_connectors::duckdb::worker::InProcess;
use sluice_connectors::duckdb::{DuckDbOptions, DuckDbWarehouse, WorkerProgram};
use sluice_connectors::{QueryOptions, Warehouse as _};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const QUERIES: [(&str, &str); 2] = [
    ("read10", "SELECT * FROM orders LIMIT 10"),
    (
        "join_top10",
        "SELECT o.customer_id, count(*) AS n, sum(o.amount) AS total FROM orders o \
         JOIN customers c ON c.customer_id = o.customer_id GROUP BY o.customer_id ORDER BY total DESC LIMIT 10",
    ),
];

/// A private copy of the jaffle warehouse dbt built for the test fixtures.
fn jaffle() -> (tempfile::TempDir, PathBuf) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dbt/jaffle/jaffle.duckdb");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jaffle.duckdb");
    std::fs::copy(&source, &path).unwrap();
    (dir, path)
}

/// A kept-open read-only connection on DuckDB's C API, as a program using DuckDB directly would hold one.
struct Raw {
    db: ffi::duckdb_database,
    con: ffi::duckdb_connection,
}

impl Raw {
    fn open(path: &Path, threads: Option<u16>) -> Raw {
        let mut config: ffi::duckdb_config = std::ptr::null_mut();
        let mut db: ffi::duckdb_database = std::ptr::null_mut();
        let mut con: ffi::duckdb_connection = std::ptr::null_mut();
        let c_path = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: valid out pointers and NUL-terminated strings that outlive each call; the config is
        // destroyed after the open (DuckDB copies it).
        unsafe {
            assert_eq!(ffi::duckdb_create_config(&mut config), ffi::DuckDBSuccess);
            let set = |name: &str, value: &str| {
                let (n, v) = (CString::new(name).unwrap(), CString::new(value).unwrap());
                assert_eq!(
                    ffi::duckdb_set_config(config, n.as_ptr(), v.as_ptr()),
                    ffi::DuckDBSuccess
                );
            };
            set("access_mode", "READ_ONLY");
            if let Some(t) = threads {
                set("threads", &t.to_string());
            }
            let mut error = std::ptr::null_mut();
            assert_eq!(
                ffi::duckdb_open_ext(c_path.as_ptr(), &mut db, config, &mut error),
                ffi::DuckDBSuccess
            );
            ffi::duckdb_destroy_config(&mut config);
            assert_eq!(ffi::duckdb_connect(db, &mut con), ffi::DuckDBSuccess);
        }
        Raw { db, con }
    }

    /// [`Raw::query`] on a connection made for it and dropped after it, as a worker makes one per
    /// statement: what that choice costs, apart from reading the result into cells.
    fn query_fresh(&self, sql: &CString) -> u64 {
        let mut con: ffi::duckdb_connection = std::ptr::null_mut();
        // SAFETY: a live database and a valid out pointer; the connection is disconnected once, below.
        unsafe { assert_eq!(ffi::duckdb_connect(self.db, &mut con), ffi::DuckDBSuccess) };
        let sum = Raw::read(con, sql);
        // SAFETY: connected above, disconnected once.
        unsafe { ffi::duckdb_disconnect(&mut con) };
        sum
    }

    /// Runs `sql` and reads every cell of every chunk at its physical width (strings: length and first
    /// byte); returns a checksum so that nothing is optimised away.
    fn query(&self, sql: &CString) -> u64 {
        Raw::read(self.con, sql)
    }

    fn read(con: ffi::duckdb_connection, sql: &CString) -> u64 {
        let mut sum = 0u64;
        // SAFETY: a live connection; the result and every chunk are destroyed after use; vector data is
        // read within the chunk's size at the width of the column's type.
        unsafe {
            let mut result: ffi::duckdb_result = std::mem::zeroed();
            assert_eq!(
                ffi::duckdb_query(con, sql.as_ptr(), &mut result),
                ffi::DuckDBSuccess
            );
            let columns = ffi::duckdb_column_count(&mut result);
            let widths: Vec<usize> = (0..columns)
                .map(|i| {
                    let mut t = ffi::duckdb_column_logical_type(&mut result, i);
                    let width = physical_width(t);
                    ffi::duckdb_destroy_logical_type(&mut t);
                    width
                })
                .collect();
            loop {
                let mut chunk = ffi::duckdb_fetch_chunk(result);
                if chunk.is_null() {
                    break;
                }
                let rows = ffi::duckdb_data_chunk_get_size(chunk) as usize;
                for (i, &width) in widths.iter().enumerate() {
                    let vector = ffi::duckdb_data_chunk_get_vector(chunk, i as u64);
                    let data = ffi::duckdb_vector_get_data(vector) as *const u8;
                    let validity = ffi::duckdb_vector_get_validity(vector);
                    for row in 0..rows {
                        if !validity.is_null() && !ffi::duckdb_validity_row_is_valid(validity, row as u64) {
                            continue;
                        }
                        let cell = data.add(row * width);
                        if width == 0 {
                            // A string: its length, and its first byte, inline or behind the pointer.
                            let s = cell as *const ffi::duckdb_string_t;
                            let len = ffi::duckdb_string_t_length(*s);
                            let bytes = ffi::duckdb_string_t_data(s as *mut _);
                            sum = sum.wrapping_add(u64::from(len));
                            if len > 0 {
                                sum = sum.wrapping_add(*bytes as u64);
                            }
                        } else {
                            for b in 0..width {
                                sum = sum.wrapping_add(u64::from(*cell.add(b)));
                            }
                        }
                    }
                }
                ffi::duckdb_destroy_data_chunk(&mut chunk);
            }
            ffi::duckdb_destroy_result(&mut result);
        }
        sum
    }
}

/// The byte width of a column's values in a vector; 0 for strings (`duckdb_string_t`).
///
/// # Safety
/// `t` must be a live logical type.
unsafe fn physical_width(t: ffi::duckdb_logical_type) -> usize {
    // SAFETY: a live logical type per the caller.
    let id = unsafe { ffi::duckdb_get_type_id(t) };
    match id {
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN
        | ffi::DUCKDB_TYPE_DUCKDB_TYPE_TINYINT
        | ffi::DUCKDB_TYPE_DUCKDB_TYPE_UTINYINT => 1,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT | ffi::DUCKDB_TYPE_DUCKDB_TYPE_USMALLINT => 2,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTEGER
        | ffi::DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER
        | ffi::DUCKDB_TYPE_DUCKDB_TYPE_FLOAT
        | ffi::DUCKDB_TYPE_DUCKDB_TYPE_DATE => 4,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_HUGEINT
        | ffi::DUCKDB_TYPE_DUCKDB_TYPE_UHUGEINT
        | ffi::DUCKDB_TYPE_DUCKDB_TYPE_UUID
        | ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTERVAL => 16,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR | ffi::DUCKDB_TYPE_DUCKDB_TYPE_BLOB => 0,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_DECIMAL => {
            // SAFETY: a live decimal type.
            match unsafe { ffi::duckdb_decimal_width(t) } {
                0..=4 => 2,
                5..=9 => 4,
                10..=18 => 8,
                _ => 16,
            }
        }
        _ => 8,
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: opened in `open`, closed once here.
        unsafe {
            ffi::duckdb_disconnect(&mut self.con);
            ffi::duckdb_close(&mut self.db);
        }
    }
}

fn options(threads: Option<u16>) -> DuckDbOptions {
    DuckDbOptions {
        threads,
        release_after_idle: Duration::from_secs(60),
        worker_program: Some(WorkerProgram::new(env!("CARGO_BIN_EXE_sluice-duckdb-worker"))),
        ..DuckDbOptions::default()
    }
}

fn engine(c: &mut Criterion) {
    let (_dir, path) = jaffle();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // One DuckDB thread (what a worker gets by default on 2 cores with 2 workers), and one per core
    // (DuckDB's own default, and what a kept-open Python connection uses).
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let cores = u16::try_from(cores).unwrap_or(u16::MAX);
    let threads: [(&str, Option<u16>); 2] = [("threads1", Some(1)), ("threads_per_core", Some(cores))];
    for (name, sql) in QUERIES {
        let mut group = c.benchmark_group(name);
        group.measurement_time(Duration::from_secs(4));
        group.warm_up_time(Duration::from_secs(1));
        let c_sql = CString::new(sql).unwrap();
        for (label, t) in threads {
            let raw = Raw::open(&path, t);
            raw.query(&c_sql);
            group.bench_function(format!("raw_kept_open/{label}"), |b| {
                b.iter(|| std::hint::black_box(raw.query(&c_sql)))
            });
            group.bench_function(format!("raw_fresh_connection/{label}"), |b| {
                b.iter(|| std::hint::black_box(raw.query_fresh(&c_sql)))
            });
            drop(raw);
            let worker = InProcess::open(&path, &options(t)).unwrap();
            worker.query(sql, 1000).unwrap();
            group.bench_function(format!("worker_statement/{label}"), |b| {
                b.iter(|| std::hint::black_box(worker.query(sql, 1000).unwrap()))
            });
            drop(worker);
            let warehouse = runtime.block_on(async { DuckDbWarehouse::new(&path, options(t)) });
            let q = QueryOptions {
                max_rows: 1000,
                timeout: Duration::from_secs(30),
            };
            runtime.block_on(warehouse.query(sql, q)).unwrap();
            group.bench_function(format!("connector_call/{label}"), |b| {
                b.iter(|| std::hint::black_box(runtime.block_on(warehouse.query(sql, q)).unwrap()))
            });
            drop(warehouse);
        }
        group.finish();
    }
}

criterion_group!(benches, engine);
criterion_main!(benches);
