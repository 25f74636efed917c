//! Benchmark: `query_database` round trips through the real gateway versus the same query run in-process
//! on DuckDB, sequentially and with 4 concurrent clients, with the DuckDB instance kept open between
//! calls and released after every call.
//!
//! Run: `cargo build --release -p sluice-gateway --bin sluice && cargo bench -p sluice-e2e --bench gateway_roundtrip`.
//! Results and method are recorded in BENCHMARKS.md.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use sluice_e2e::{Gateway, Launch, call};

const SQL: &str = "SELECT * FROM orders ORDER BY order_id LIMIT 10";
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

/// The baseline: the same statement on the duckdb crate in this process, rows read into JSON values.
fn in_process(path: &std::path::Path, clients: usize, per_client: usize) -> Result<Stats> {
    let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly)?;
    let root = duckdb::Connection::open_with_flags(path, config)?;
    let run = |conn: &duckdb::Connection| -> Result<Duration> {
        let t = Instant::now();
        let mut stmt = conn.prepare(SQL)?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            out.push(json!(id));
        }
        std::hint::black_box(out);
        Ok(t.elapsed())
    };
    for _ in 0..WARMUP {
        run(&root)?;
    }
    let wall = Instant::now();
    let samples = std::thread::scope(|scope| -> Result<Vec<Duration>> {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let conn = root.try_clone();
                scope.spawn(move || -> Result<Vec<Duration>> {
                    let conn = conn?;
                    (0..per_client).map(|_| run(&conn)).collect()
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

async fn through_gateway(gw: &Gateway, clients: usize, per_client: usize) -> Result<Stats> {
    let args = json!({"connection_name": "demo", "sql": SQL, "row_limit": 10});
    let warm = gw.client().await?;
    for _ in 0..WARMUP {
        call(&warm, "query_database", args.clone()).await?;
    }
    let mut sessions = Vec::new();
    for _ in 0..clients {
        sessions.push(gw.client().await?);
    }
    let wall = Instant::now();
    let mut tasks = Vec::new();
    for client in sessions {
        let args = args.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                let r = call(&client, "query_database", args.clone()).await?;
                anyhow::ensure!(r.is_error == Some(false), "query failed");
                samples.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(samples)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(stats(all, wall.elapsed()))
}

#[tokio::main]
async fn main() -> Result<()> {
    let keep_open = Gateway::up().await?;
    let demo = keep_open.data_dir.join("demo.duckdb");

    println!(
        "query: `{SQL}` (10 rows); {SEQUENTIAL} sequential calls, {CLIENTS} clients × {CONCURRENT_PER_CLIENT} calls\n"
    );
    println!("| setup | p50 ms | p95 ms | p99 ms | calls/s |");
    println!("|---|---|---|---|---|");
    let base_seq = in_process(&demo, 1, SEQUENTIAL)?;
    row("in-process DuckDB, 1 thread", &base_seq);
    let base_conc = in_process(&demo, CLIENTS, CONCURRENT_PER_CLIENT)?;
    row("in-process DuckDB, 4 threads", &base_conc);

    let gw_seq = through_gateway(&keep_open, 1, SEQUENTIAL).await?;
    row("gateway, instance kept open, 1 client", &gw_seq);
    let gw_conc = through_gateway(&keep_open, CLIENTS, CONCURRENT_PER_CLIENT).await?;
    row("gateway, instance kept open, 4 clients", &gw_conc);
    drop(keep_open);

    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[duckdb]\nrelease_after_idle_ms = 0\n")?;
    let per_call = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await?;
    let pc_seq = through_gateway(&per_call, 1, SEQUENTIAL / 4).await?;
    row("gateway, instance opened per call, 1 client", &pc_seq);
    let pc_conc = through_gateway(&per_call, CLIENTS, CONCURRENT_PER_CLIENT / 4).await?;
    row("gateway, instance opened per call, 4 clients", &pc_conc);

    println!(
        "\ngateway overhead at p50 (kept open, sequential): {} ms",
        ms(gw_seq.p50.saturating_sub(base_seq.p50))
    );
    Ok(())
}
