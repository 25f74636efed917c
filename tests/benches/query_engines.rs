//! Benchmark: `query_database` round trips through the real gateway versus the same query on the same
//! connector in-process (sqlx for PostgreSQL, MariaDB and SQLite; the duckdb crate for DuckDB, each with
//! the connector's read-only transaction and timeout), per engine, in one run. The difference is what the
//! gateway adds: HTTP, MCP, auth, governance, budget check, audit write and rendering.
//!
//! Run (release, as BENCHMARKS.md reports): `cargo build --release -p sluice-gateway --bin sluice &&
//! cargo bench -p sluice-e2e --bench query_engines`.
//! PostgreSQL and MariaDB come from `tests/servers/start.sh`, stopped when the run ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::json;
use sluice_connectors::duckdb::{DuckDbOptions, DuckDbWarehouse};
use sluice_connectors::{ConnectorKind, PoolOptions, QueryOptions, Warehouse};
use sluice_e2e::raw::RawSession;
use sluice_e2e::{Gateway, Launch, call};

/// The allocator the `sluice` binary uses, so the in-process baseline runs DuckDB the same way.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const WARMUP: usize = 50;
const CALLS: usize = 500;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// Starts a throwaway server of `engine` for this run; returns its fixture DSN.
fn start_server(engine: &str, root: &Path) -> Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/start.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(engine)
        .arg(root.join(engine))
        .arg("--watch")
        .arg(std::process::id().to_string())
        .output()
        .context("running tests/servers/start.sh")?;
    anyhow::ensure!(
        out.status.success(),
        "start.sh {engine}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    env.get("DSN").cloned().context("no DSN from start.sh")
}

fn sqlite_file(dir: &Path) -> Result<std::path::PathBuf> {
    let path = dir.join("bench.sqlite");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/fixtures/sqlite.sql");
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(open(sys.argv[2]).read()); c.commit()")
        .arg(&path)
        .arg(fixture)
        .status()?;
    anyhow::ensure!(status.success(), "could not build the SQLite fixture");
    Ok(path)
}

async fn in_process(warehouse: &dyn Warehouse, sql: &str) -> Result<Vec<Duration>> {
    let options = QueryOptions {
        max_rows: 10,
        timeout: Duration::from_secs(30),
    };
    for _ in 0..WARMUP {
        warehouse.query(sql, options).await?;
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        std::hint::black_box(warehouse.query(sql, options).await?);
        samples.push(t.elapsed());
    }
    Ok(samples)
}

/// Round trips through the gateway, and for each the round trip minus the engine time the gateway
/// measured around its connector call (the time the gateway itself added).
async fn through_gateway(
    gw: &Gateway,
    connection: &str,
    sql: &str,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let client = gw.client().await?;
    let args = json!({"connection_name": connection, "sql": sql, "row_limit": 10});
    for _ in 0..WARMUP {
        call(&client, "query_database", args.clone()).await?;
    }
    let mut samples = Vec::with_capacity(CALLS);
    let mut added = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        let r = call(&client, "query_database", args.clone()).await?;
        let round_trip = t.elapsed();
        anyhow::ensure!(r.is_error == Some(false), "query failed: {:?}", r.content);
        let engine_ms = r
            .structured_content
            .as_ref()
            .and_then(|s| s["elapsed_ms"].as_f64())
            .ok_or_else(|| anyhow::anyhow!("no elapsed_ms in the result"))?;
        samples.push(round_trip);
        added.push(round_trip.saturating_sub(Duration::from_secs_f64(engine_ms / 1000.0)));
    }
    Ok((samples, added))
}

/// The same calls from a minimal HTTP client ([`RawSession`]): round trips, and each minus the engine time
/// the gateway measured. The difference from rmcp's client is that client's own work.
async fn through_gateway_raw(
    gw: &Gateway,
    connection: &str,
    sql: &str,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let args = json!({"connection_name": connection, "sql": sql, "row_limit": 10});
    let raw = RawSession::open(gw, "query_database", args).await?;
    for _ in 0..WARMUP {
        raw.call().await?;
    }
    let mut samples = Vec::with_capacity(CALLS);
    let mut added = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let (round_trip, gateway_added) = raw.call().await?;
        samples.push(round_trip);
        added.push(gateway_added);
    }
    Ok((samples, added))
}

pub async fn run() -> Result<()> {
    let servers = tempfile::Builder::new().prefix("sluice-bench-").tempdir()?;
    // The servers run as their own users, which must reach their directories.
    std::fs::set_permissions(
        servers.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let pg = start_server("postgres", servers.path())?;
    let maria = start_server("mariadb", servers.path())?;
    let sqlite = sqlite_file(servers.path())?;
    let config = servers.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[[connections]]\nname = \"pg\"\nkind = \"postgres\"\ndsn = \"{pg}\"\n\n\
             [[connections]]\nname = \"maria\"\nkind = \"mysql\"\ndsn = \"{maria}\"\n\n\
             [[connections]]\nname = \"lite\"\nkind = \"sqlite\"\ndsn = \"{}\"\n",
            sqlite.display()
        ),
    )?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await?;

    let fixture_sql = "SELECT * FROM orders ORDER BY id";
    let demo_sql = "SELECT * FROM orders ORDER BY order_id LIMIT 10";
    let engines: Vec<(&str, &str, Arc<dyn Warehouse>)> = vec![
        (
            "demo",
            demo_sql,
            Arc::new(DuckDbWarehouse::new(
                gw.data_dir.join("demo.duckdb"),
                DuckDbOptions::default(),
            )),
        ),
        (
            "pg",
            fixture_sql,
            sluice_connectors::open_pooled(ConnectorKind::Postgres, pg.as_str(), PoolOptions::default())?,
        ),
        (
            "maria",
            fixture_sql,
            sluice_connectors::open_pooled(ConnectorKind::MySql, maria.as_str(), PoolOptions::default())?,
        ),
        (
            "lite",
            fixture_sql,
            sluice_connectors::open_pooled(
                ConnectorKind::Sqlite,
                sqlite.display().to_string(),
                PoolOptions::default(),
            )?,
        ),
    ];

    println!("{CALLS} sequential calls per setup after {WARMUP} warm-up calls; one MCP session\n");
    println!(
        "| engine | query | in-process p50 ms | gateway p50 ms | gateway p95 ms | gateway p99 ms | overhead p50 ms | added by the gateway p50 ms | minimal client: gateway p50 ms | overhead p50 ms | added p50 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (connection, sql, warehouse) in engines {
        let mut native = in_process(warehouse.as_ref(), sql).await?;
        // The in-process DuckDB instance holds the file: let it go before the gateway opens it.
        drop(warehouse);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let (mut gateway, mut added) = through_gateway(&gw, connection, sql).await?;
        let (mut raw, mut raw_added) = through_gateway_raw(&gw, connection, sql).await?;
        for samples in [&mut native, &mut gateway, &mut added, &mut raw, &mut raw_added] {
            samples.sort();
        }
        let (n50, g50, r50) = (
            percentile(&native, 0.5),
            percentile(&gateway, 0.5),
            percentile(&raw, 0.5),
        );
        println!(
            "| {connection} | `{sql}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            ms(n50),
            ms(g50),
            ms(percentile(&gateway, 0.95)),
            ms(percentile(&gateway, 0.99)),
            ms(g50.saturating_sub(n50)),
            ms(percentile(&added, 0.5)),
            ms(r50),
            ms(r50.saturating_sub(n50)),
            ms(percentile(&raw_added, 0.5))
        );
    }
    drop(gw);
    for engine in ["postgres", "mariadb"] {
        let _ = std::process::Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/stop.sh"))
            .arg(servers.path().join(engine))
            .arg("--remove")
            .status();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    sluice_e2e::install_crypto_provider();
    run().await
}
