//! Benchmark: `query_database` round trips through the real gateway versus the same query run in-process
//! through the gateway's own DuckDB connector, sequentially and with 4 concurrent clients, with the DuckDB
//! instance kept open between calls and released after every call.
//!
//! Run: `cargo build --release -p sluice-gateway --bin sluice && cargo bench -p sluice-e2e --bench gateway_roundtrip`.
//! Results and method are recorded in BENCHMARKS.md.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use sluice_connectors::duckdb::DuckDbOptions;
use sluice_connectors::duckdb::worker::InProcess;
use sluice_e2e::raw::RawSession;
use sluice_e2e::{Gateway, Launch, call};

/// The allocator the `sluice` binary uses, so the in-process baseline runs DuckDB the same way.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The statement measured: a 10-row top-N by default (DuckDB plans a late-materialised top-N, a few ms of
/// engine work); `SLUICE_BENCH_SQL` measures another, e.g. `SELECT * FROM orders LIMIT 10` (a cheap scan).
fn sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        std::env::var("SLUICE_BENCH_SQL")
            .unwrap_or_else(|_| "SELECT * FROM orders ORDER BY order_id LIMIT 10".to_owned())
    })
}
const WARMUP: usize = 50;
const SEQUENTIAL: usize = 1_000;
const CONCURRENT_PER_CLIENT: usize = 500;
const CLIENTS: usize = 4;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct Stats {
    p50: Duration,
    p95: Duration,
    p99: Duration,
    per_sec: f64,
}

fn stats(mut samples: Vec<Duration>, wall: Duration) -> Stats {
    samples.sort();
    Stats {
        p50: percentile(&samples, 0.50),
        p95: percentile(&samples, 0.95),
        p99: percentile(&samples, 0.99),
        per_sec: samples.len() as f64 / wall.as_secs_f64(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, s: &Stats) {
    println!(
        "| {name} | {} | {} | {} | {:.0} |",
        ms(s.p50),
        ms(s.p95),
        ms(s.p99),
        s.per_sec
    );
}

/// A row for the time the gateway added: a part of each call, so it has no rate of its own.
fn row_added(s: &Stats) {
    println!(
        "| of which added by the gateway | {} | {} | {} | |",
        ms(s.p50),
        ms(s.p95),
        ms(s.p99)
    );
}

/// One in-process execution: the same statement as the gateway's DuckDB worker runs it, but in this
/// process (a fresh connection on the open instance, planned once, every cell converted to the JSON value
/// the gateway sends), so the baseline does all the engine and conversion work and the gateway's figure
/// carries everything else, the round trip to its worker process included.
fn in_process_once(warehouse: &InProcess) -> Result<Duration> {
    let t = Instant::now();
    std::hint::black_box(warehouse.query(sql(), 10_000)?);
    Ok(t.elapsed())
}

/// The statement path over `path` in this process, its instance open for the whole bench (as a worker
/// keeps it open during a burst of calls), with the connector's default settings.
fn warehouse(path: &std::path::Path) -> Result<InProcess> {
    Ok(InProcess::open(path, &DuckDbOptions::default())?)
}

/// The in-process baseline with `clients` threads.
fn in_process(path: &std::path::Path, clients: usize, per_client: usize) -> Result<Stats> {
    let warehouse = warehouse(path)?;
    for _ in 0..WARMUP {
        in_process_once(&warehouse)?;
    }
    let wall = Instant::now();
    let samples = std::thread::scope(|scope| -> Result<Vec<Duration>> {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let warehouse = &warehouse;
                scope.spawn(move || -> Result<Vec<Duration>> {
                    (0..per_client).map(|_| in_process_once(warehouse)).collect()
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().map_err(|_| anyhow::anyhow!("thread panicked"))??);
        }
        Ok(all)
    })?;
    Ok(stats(samples, wall.elapsed()))
}

type Client = rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>;

/// One call through the gateway: the round trip, and the round trip minus the engine time the gateway
/// measured around the connector call (what the gateway itself added to this call).
async fn gateway_once(client: &Client) -> Result<(Duration, Duration)> {
    let args = json!({"connection_name": "demo", "sql": sql(), "row_limit": 10});
    let t = Instant::now();
    let r = call(client, "query_database", args).await?;
    let round_trip = t.elapsed();
    anyhow::ensure!(
        r.is_error == Some(false),
        "query failed: {}",
        sluice_e2e::text(&r)
    );
    let engine_ms = r
        .structured_content
        .as_ref()
        .and_then(|s| s["elapsed_ms"].as_f64())
        .ok_or_else(|| anyhow::anyhow!("no elapsed_ms in the result"))?;
    let added = round_trip.saturating_sub(Duration::from_secs_f64(engine_ms / 1000.0));
    Ok((round_trip, added))
}

async fn raw_sequential(gw: &Gateway, n: usize) -> Result<(Stats, Stats)> {
    let args = json!({"connection_name": "demo", "sql": sql(), "row_limit": 10});
    let raw = RawSession::open(gw, "query_database", args).await?;
    for _ in 0..WARMUP {
        raw.call().await?;
    }
    let wall = Instant::now();
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(raw.call().await?);
    }
    let wall = wall.elapsed();
    let (round, added): (Vec<_>, Vec<_>) = all.into_iter().unzip();
    Ok((stats(round, wall), stats(added, wall)))
}

/// Sequential calls, each gateway call paired with an in-process run right before it, so both see the
/// same machine state. Returns (in-process, gateway round trip, gateway-added time per call).
async fn paired(gw: &Gateway, path: &std::path::Path, n: usize) -> Result<(Stats, Stats, Stats)> {
    let conn = warehouse(path)?;
    let client = gw.client().await?;
    for _ in 0..WARMUP {
        in_process_once(&conn)?;
        gateway_once(&client).await?;
    }
    let (mut base, mut round, mut added) = (Vec::new(), Vec::new(), Vec::new());
    let mut base_wall = Duration::ZERO;
    let mut gw_wall = Duration::ZERO;
    for _ in 0..n {
        let b = in_process_once(&conn)?;
        base_wall += b;
        base.push(b);
        let (r, a) = gateway_once(&client).await?;
        gw_wall += r;
        round.push(r);
        added.push(a);
    }
    Ok((
        stats(base, base_wall),
        stats(round, gw_wall),
        stats(added, gw_wall),
    ))
}

async fn through_gateway(gw: &Gateway, clients: usize, per_client: usize) -> Result<(Stats, Stats)> {
    let warm = gw.client().await?;
    for _ in 0..WARMUP {
        gateway_once(&warm).await?;
    }
    let mut sessions = Vec::new();
    for _ in 0..clients {
        sessions.push(gw.client().await?);
    }
    let wall = Instant::now();
    let mut tasks = Vec::new();
    for client in sessions {
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                samples.push(gateway_once(&client).await?);
            }
            Ok::<_, anyhow::Error>(samples)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let wall = wall.elapsed();
    let (round, added): (Vec<_>, Vec<_>) = all.into_iter().unzip();
    Ok((stats(round, wall), stats(added, wall)))
}

#[tokio::main]
async fn main() -> Result<()> {
    sluice_e2e::install_crypto_provider();
    let keep_open = Gateway::up().await?;
    let demo = keep_open.data_dir.join("demo.duckdb");

    println!(
        "query: `{}` (10 rows); {SEQUENTIAL} sequential calls, {CLIENTS} clients × {CONCURRENT_PER_CLIENT} calls\n",
        sql()
    );
    println!("| setup | p50 ms | p95 ms | p99 ms | calls/s |");
    println!("|---|---|---|---|---|");
    let (base_seq, gw_seq, added_seq) = paired(&keep_open, &demo, SEQUENTIAL).await?;
    row("in-process DuckDB, 1 thread (paired)", &base_seq);
    row("gateway, instance kept open, 1 client (paired)", &gw_seq);
    row_added(&added_seq);
    let (raw_seq, raw_added) = raw_sequential(&keep_open, SEQUENTIAL).await?;
    row("gateway, kept open, 1 minimal HTTP client", &raw_seq);
    row_added(&raw_added);
    let base_conc = in_process(&demo, CLIENTS, CONCURRENT_PER_CLIENT)?;
    row("in-process DuckDB, 4 threads", &base_conc);
    let (gw_conc, added_conc) = through_gateway(&keep_open, CLIENTS, CONCURRENT_PER_CLIENT).await?;
    row("gateway, instance kept open, 4 clients", &gw_conc);
    row_added(&added_conc);
    drop(keep_open);

    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[duckdb]\nrelease_after_idle_ms = 0\n")?;
    let per_call = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await?;
    let (pc_seq, _) = through_gateway(&per_call, 1, SEQUENTIAL / 4).await?;
    row("gateway, instance opened per call, 1 client", &pc_seq);
    let (pc_conc, _) = through_gateway(&per_call, CLIENTS, CONCURRENT_PER_CLIENT / 4).await?;
    row("gateway, instance opened per call, 4 clients", &pc_conc);

    println!(
        "\ngateway overhead at p50 (kept open, sequential): {} ms over the paired in-process run; \
         {} ms p50 round trip minus the engine time the gateway measured",
        ms(gw_seq.p50.saturating_sub(base_seq.p50)),
        ms(added_seq.p50)
    );
    println!(
        "with a minimal HTTP client instead of rmcp's: {} ms p50 round trip minus engine time",
        ms(raw_added.p50)
    );
    Ok(())
}
