//! Benchmark: the schema tools' round trips through the real gateway, `describe_table` (answered from the
//! cached schema snapshot) beside `schema_overview` and `list_tables`, and the baseline `describe_table`
//! replaced: the connector's live catalog read for one table, run in-process on the same DuckDB file.
//!
//! Run: `cargo build --release -p sluice-gateway --bin sluice && cargo bench -p sluice-e2e --bench schema_tools`.
//! Results and method are recorded in BENCHMARKS.md.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};
use sluice_connectors::duckdb::{DuckDbOptions, DuckDbWarehouse};
use sluice_connectors::{TableRef, Warehouse as _};
use sluice_e2e::Gateway;
use sluice_e2e::raw::RawSession;

/// The allocator the `sluice` binary uses, so the in-process baseline runs DuckDB the same way.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const WARMUP: usize = 30;
const CALLS: usize = 500;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn row(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
    println!(
        "| {name} | {} | {} | {} |",
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.95)),
        ms(percentile(&samples, 0.99))
    );
}

async fn tool(gw: &Gateway, name: &str, arguments: Value) -> Result<Vec<Duration>> {
    let raw = RawSession::open(gw, name, arguments).await?;
    for _ in 0..WARMUP {
        raw.call_plain().await?;
    }
    let mut out = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        out.push(raw.call_plain().await?);
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<()> {
    sluice_e2e::install_crypto_provider();
    let gw = Gateway::up().await?;
    let demo = gw.data_dir.join("demo.duckdb");
    println!("demo warehouse; {CALLS} sequential calls each after {WARMUP} warm-up calls\n");
    println!("| call | p50 ms | p95 ms | p99 ms |");
    println!("|---|---|---|---|");
    let describe = json!({"connection_name": "demo", "table_name": "orders"});
    row(
        "describe_table orders (gateway, from the snapshot)",
        tool(&gw, "describe_table", describe).await?,
    );
    row(
        "schema_overview (gateway)",
        tool(&gw, "schema_overview", json!({"connection_name": "demo"})).await?,
    );
    row(
        "list_tables (gateway)",
        tool(&gw, "list_tables", json!({"connection_name": "demo"})).await?,
    );
    // The baseline: what describe_table did before, the connector's live catalog read for the table.
    let warehouse = DuckDbWarehouse::new(
        &demo,
        DuckDbOptions {
            release_after_idle: Duration::from_secs(3_600),
            ..DuckDbOptions::default()
        },
    );
    let table = TableRef::parse("orders").ok_or_else(|| anyhow::anyhow!("table name"))?;
    let mut live = Vec::with_capacity(CALLS);
    for i in 0..WARMUP + CALLS {
        let t = Instant::now();
        std::hint::black_box(warehouse.describe_table(&table).await?);
        if i >= WARMUP {
            live.push(t.elapsed());
        }
    }
    row(
        "baseline: live catalog read of orders (in-process connector, no HTTP)",
        live,
    );
    Ok(())
}
