//! Times an agent statement on DuckDB through the `duckdb` crate's prepare + query + read (which plans a
//! statement that reads a table twice) against the connector's one-shot reader (`duckdb_query`, planned
//! once), in one run on one file. The record behind BENCHMARKS.md's DuckDB query-path numbers.
//!
//! `cargo build --release -p sluice-connectors --examples`, then
//! `target/release/examples/duckdb_query_paths /tmp/prof/demo.duckdb` (any file with an `orders` table
//! that has an `order_id` column). Optional: `ROUNDS` (3) and `CALLS` (2000) in the environment.
//!
//! Both paths make a fresh connection per statement and read every row and cell, as the connector does.
//! The crate path only borrows each cell and makes it an owned value; the one-shot path also builds the
//! JSON cells agents get, so the comparison leans against it.

use std::time::Instant;

use duckdb::{AccessMode, Config, Connection};
use sluice_connectors::duckdb::DuckDbOptions;
use sluice_connectors::duckdb::worker::InProcess;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const QUERIES: [&str; 2] = [
    "SELECT * FROM orders LIMIT 10",
    "SELECT * FROM orders ORDER BY order_id LIMIT 10",
];

fn env_or(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(value) => Ok(value
            .parse()
            .map_err(|_| format!("{name}={value} is not a count"))?),
        Err(_) => Ok(default),
    }
}

/// The `duckdb` crate's path: prepare, query, then every cell of every row.
fn crate_path(root: &Connection, sql: &str) -> Result<usize> {
    let conn = root.try_clone()?;
    let mut stmt = conn.prepare(sql)?;
    let width = stmt.column_count();
    let mut rows = stmt.query([])?;
    let mut count = 0;
    while let Some(row) = rows.next()? {
        for i in 0..width {
            std::hint::black_box(row.get_ref(i)?.to_owned());
        }
        count += 1;
    }
    Ok(count)
}

fn micros_per_call(calls: usize, mut call: impl FnMut() -> Result<usize>) -> Result<f64> {
    let started = Instant::now();
    for _ in 0..calls {
        if call()? == 0 {
            return Err("the statement returned no rows".into());
        }
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / calls as f64)
}

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: duckdb_query_paths <file.duckdb>")?;
    let rounds = env_or("ROUNDS", 3)?;
    let calls = env_or("CALLS", 2000)?;
    let config = Config::default()
        .access_mode(AccessMode::ReadOnly)?
        .enable_external_access(false)?
        .enable_autoload_extension(false)?;
    let root = Connection::open_with_flags(&path, config).map_err(|e| format!("opening {path}: {e}"))?;
    // The statement path as a worker runs it, in this process (a worker keeps its instance open between
    // calls while an agent is busy).
    let warehouse = InProcess::open(&path, &DuckDbOptions::default())?;
    for sql in QUERIES {
        // Warm both instances' caches before timing.
        crate_path(&root, sql)?;
        warehouse.query(sql, 1000)?;
    }
    println!("{calls} calls per round; microseconds per statement (fresh connection, all rows read)");
    for sql in QUERIES {
        println!("{sql}");
        for round in 1..=rounds {
            let prepared = micros_per_call(calls, || crate_path(&root, sql))?;
            let one_shot = micros_per_call(calls, || Ok(warehouse.query(sql, 1000)?.rows.len()))?;
            println!(
                "  round {round}: prepare+query+read (crate) {prepared:7.0} us | one-shot reader {one_shot:7.0} us | {:.2}x",
                prepared / one_shot
            );
        }
    }
    Ok(())
}
