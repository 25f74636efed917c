//! The soak run: many MCP sessions mixing queries on two engines, schema tools and sandbox runs against one
//! real gateway on a PostgreSQL store, while the sandbox daemon is killed once and PostgreSQL (store and
//! warehouse) is restarted once. `benches/soak.rs` runs it at full size and prints the report; the suite
//! runs a small edition and asserts what must hold (every answered call audited, the gateway serving after).
//!
//! Loopback only and bounded: the servers are private to the run and stopped when it ends.

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use sluice_test_servers::{Engine, Server};
use sqlx::Connection as _;
use tokio::sync::Semaphore;

use crate::{Gateway, Launch, call, children_named, sandbox_section, text};

/// How big the run is and when the faults come (as shares of all calls made).
#[derive(Clone, Debug)]
pub struct SoakConfig {
    pub sessions: usize,
    pub calls_per_session: usize,
    /// Sessions open at once.
    pub concurrency: usize,
    pub kill_sandbox_at: f64,
    pub restart_postgres_at: f64,
}

/// What one call did.
#[derive(Clone, Debug)]
struct Outcome {
    tool: &'static str,
    latency: Duration,
    /// `None`: served; `Some((kind, message))`: an error the agent saw.
    error: Option<(String, String)>,
    /// The call got an MCP answer (a result, error or not), so the gateway ran it and owes an audit record.
    answered: bool,
}

/// The run's report.
#[derive(Debug)]
pub struct SoakReport {
    pub sessions: usize,
    pub calls: usize,
    pub served: usize,
    /// Error kind -> (count, one message the agent saw).
    pub errors: BTreeMap<String, (usize, String)>,
    /// Tool -> (calls, p50 ms, p99 ms).
    pub per_tool: BTreeMap<&'static str, (usize, f64, f64)>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub elapsed: Duration,
    /// The gateway process's peak resident set (VmHWM), KiB.
    pub gateway_peak_kib: u64,
    /// The largest peak of the gateway's child processes named `sluice` (DuckDB workers), KiB, if any.
    pub worker_peak_kib: Option<u64>,
    /// Calls the gateway answered (each owes exactly one audit record).
    pub answered: usize,
    /// Audit records in the store after the run.
    pub audit_rows: usize,
    /// Audit records per tool, and answered calls per tool.
    pub audit_by_tool: BTreeMap<String, (usize, usize)>,
    /// When the faults happened (seconds into the run) and how long each took to clear.
    pub faults: Vec<String>,
    /// A plain query after the run: served.
    pub serving_after: bool,
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} sessions, {} calls in {:.1} s ({:.0} calls/s): {} served, {} errors; p50 {:.2} ms, p99 {:.2} ms",
            self.sessions,
            self.calls,
            self.elapsed.as_secs_f64(),
            self.calls as f64 / self.elapsed.as_secs_f64(),
            self.served,
            self.calls - self.served,
            self.p50_ms,
            self.p99_ms
        )?;
        for (tool, (n, p50, p99)) in &self.per_tool {
            writeln!(
                f,
                "  {tool:<16} {n:>6} calls  p50 {p50:>7.2} ms  p99 {p99:>8.2} ms"
            )?;
        }
        writeln!(f, "faults:")?;
        for fault in &self.faults {
            writeln!(f, "  {fault}")?;
        }
        writeln!(f, "errors by kind (count: one message the agent saw):")?;
        if self.errors.is_empty() {
            writeln!(f, "  none")?;
        }
        for (kind, (n, message)) in &self.errors {
            writeln!(f, "  [{kind}] {n}: {message}")?;
        }
        writeln!(
            f,
            "gateway peak RSS {:.1} MiB{}",
            self.gateway_peak_kib as f64 / 1024.0,
            self.worker_peak_kib
                .map(|k| format!("; largest DuckDB worker {:.1} MiB", k as f64 / 1024.0))
                .unwrap_or_default()
        )?;
        writeln!(
            f,
            "audit: {} records for {} answered calls ({} missing)",
            self.audit_rows,
            self.answered,
            self.answered.saturating_sub(self.audit_rows)
        )?;
        for (tool, (rows, answered)) in &self.audit_by_tool {
            writeln!(f, "  {tool:<16} {rows:>6} records / {answered:>6} answered")?;
        }
        write!(f, "serving after the run: {}", self.serving_after)
    }
}

/// The call mix: (tool, arguments), by call number. Queries on both engines, schema tools on both, and
/// one sandbox run in ten.
fn mix(n: usize) -> (&'static str, Value) {
    match n % 10 {
        0..=2 => (
            "query_database",
            json!({"connection_name": "demo", "sql": "SELECT * FROM orders LIMIT 10"}),
        ),
        3 | 4 => (
            "query_database",
            json!({"connection_name": "pg", "sql": "SELECT id, customer_id, amount FROM orders ORDER BY id LIMIT 10"}),
        ),
        5 => ("list_tables", json!({"connection_name": "demo"})),
        6 => (
            "describe_table",
            json!({"connection_name": "pg", "table_name": "orders"}),
        ),
        7 => ("schema_overview", json!({"connection_name": "demo"})),
        8 => (
            "query_database",
            json!({"connection_name": "demo", "sql": "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY n DESC"}),
        ),
        _ => (
            "execute_code",
            json!({"code": "import sys\nprint(sum(range(1000)))"}),
        ),
    }
}

/// An error's kind: its first words with numbers and quoted names taken out, so that the same failure
/// groups together whatever it names.
fn kind(tool: &str, message: &str) -> String {
    let head: String = message
        .chars()
        .take(72)
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    format!("{tool}: {}", head.split('\n').next().unwrap_or_default())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs the soak and reports; fails only when the set-up does (what the calls saw is in the report).
pub async fn run(config: SoakConfig) -> Result<SoakReport> {
    let pg = Arc::new(
        tokio::task::spawn_blocking(|| Server::private(Engine::Postgres))
            .await
            .context("starting PostgreSQL")?,
    );
    // The store gets a database of its own on the same server: one restart hits store and warehouse.
    let mut admin = sqlx::PgConnection::connect_with(
        &sqlx::postgres::PgConnectOptions::from_str(&pg.admin_dsn).context("the admin DSN")?,
    )
    .await
    .context("connecting as PostgreSQL's superuser")?;
    sqlx::query("CREATE DATABASE soak_store OWNER app")
        .execute(&mut admin)
        .await?;
    drop(admin);
    let store_url = pg.dsn_with("app", "app-secret", "soak_store");

    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config_path = dir.path().join("sluice.toml");
    std::fs::write(
        &config_path,
        format!(
            "[[connections]]\nname = \"pg\"\nkind = \"postgres\"\ndsn = \"{}\"\n\n\
             [rate_limits]\nkey_per_minute = 10000000\norg_per_minute = 10000000\nip_per_minute = 10000000\n\n{}",
            pg.dsn,
            sandbox_section("native")
        ),
    )?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config_path.display().to_string()],
        env: vec![
            ("SLUICE_SANDBOX".into(), "true".into()),
            ("SLUICE_STORE_URL".into(), store_url.clone()),
            (
                "SLUICE_FIRST_KEY_FILE".into(),
                data.join("local_api_key").display().to_string(),
            ),
            ("SLUICE_LOG".into(), "info".into()),
        ],
        data_dir: Some(data),
        ..Launch::default()
    })
    .await?;
    let gw = Arc::new(gw);
    let gateway_pid = gw.pid().context("the gateway has no pid")?;

    // Wait until the sandbox answers, so that the run starts from a healthy deployment. These calls are
    // audited too, and counted.
    let mut readiness_calls = 0;
    {
        let client = gw.client().await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = call(&client, "execute_code", json!({"code": "print(1)"})).await?;
            readiness_calls += 1;
            if !r.is_error.unwrap_or(false) {
                break;
            }
            if Instant::now() > deadline {
                bail!("the sandbox never became ready: {}", text(&r));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        client.cancel().await?;
    }

    let total = config.sessions * config.calls_per_session;
    let done = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    // The faults, each once, when their share of calls has been made.
    let faults = {
        let (done, finished, pg) = (Arc::clone(&done), Arc::clone(&finished), Arc::clone(&pg));
        let config = config.clone();
        tokio::spawn(async move {
            let mut log = Vec::new();
            let mut killed = false;
            let mut restarted = false;
            while !(finished.load(Ordering::Relaxed) || killed && restarted) {
                let share = done.load(Ordering::Relaxed) as f64 / total as f64;
                if !killed && share >= config.kill_sandbox_at {
                    killed = true;
                    let at = started.elapsed().as_secs_f64();
                    let daemons = children_named(gateway_pid, "sluice-sandbox");
                    for pid in &daemons {
                        let _ = std::process::Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .status();
                    }
                    log.push(format!(
                        "{at:.1} s: sandbox daemon killed with SIGKILL (pid {daemons:?}) after {} calls",
                        done.load(Ordering::Relaxed)
                    ));
                }
                if !restarted && share >= config.restart_postgres_at {
                    restarted = true;
                    let at = started.elapsed().as_secs_f64();
                    let calls = done.load(Ordering::Relaxed);
                    let pg = Arc::clone(&pg);
                    let took = tokio::task::spawn_blocking(move || {
                        let t = Instant::now();
                        pg.stop();
                        pg.start();
                        t.elapsed()
                    })
                    .await
                    .unwrap_or_default();
                    log.push(format!(
                        "{at:.1} s: PostgreSQL (store and warehouse) stopped with -m immediate and started again after {calls} calls; down for {:.1} s",
                        took.as_secs_f64()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            log
        })
    };

    let gate = Arc::new(Semaphore::new(config.concurrency));
    let mut tasks = Vec::with_capacity(config.sessions);
    for session in 0..config.sessions {
        let (gw, gate, done) = (Arc::clone(&gw), Arc::clone(&gate), Arc::clone(&done));
        let calls = config.calls_per_session;
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let mut outcomes = Vec::with_capacity(calls);
            let client = match gw.client().await {
                Ok(c) => c,
                Err(e) => {
                    let message = format!("the MCP session could not be opened: {e}");
                    for _ in 0..calls {
                        outcomes.push(Outcome {
                            tool: "initialize",
                            latency: Duration::ZERO,
                            error: Some((kind("initialize", &message), message.clone())),
                            answered: false,
                        });
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    return outcomes;
                }
            };
            for n in 0..calls {
                let (tool, args) = mix(session * 7 + n);
                let t = Instant::now();
                let result = call(&client, tool, args).await;
                let latency = t.elapsed();
                let outcome = match result {
                    Ok(r) if r.is_error.unwrap_or(false) => {
                        let message = text(&r);
                        Outcome {
                            tool,
                            latency,
                            error: Some((kind(tool, &message), message)),
                            answered: true,
                        }
                    }
                    Ok(_) => Outcome {
                        tool,
                        latency,
                        error: None,
                        answered: true,
                    },
                    Err(e) => {
                        let message = format!("{e:#}");
                        Outcome {
                            tool,
                            latency,
                            error: Some((kind(tool, &message), message)),
                            answered: false,
                        }
                    }
                };
                outcomes.push(outcome);
                done.fetch_add(1, Ordering::Relaxed);
            }
            let _ = client.cancel().await;
            outcomes
        }));
    }
    let mut outcomes = Vec::with_capacity(total);
    for task in tasks {
        outcomes.extend(task.await.context("a session task panicked")?);
    }
    let elapsed = started.elapsed();
    finished.store(true, Ordering::Relaxed);
    let fault_log = faults.await.unwrap_or_default();

    // The gateway still serves a plain query (PostgreSQL is back).
    let serving_after = {
        let client = gw.client().await?;
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": "pg", "sql": "SELECT count(*) AS n FROM orders"}),
        )
        .await?;
        let ok = !r.is_error.unwrap_or(false);
        client.cancel().await?;
        ok
    };

    let gateway_peak_kib = peak_kib(gateway_pid).unwrap_or(0);
    let worker_peak_kib = children_named(gateway_pid, "sluice")
        .into_iter()
        .filter_map(peak_kib)
        .max();

    // Audit records, counted in the store itself.
    let mut store = sqlx::PgConnection::connect(&store_url).await?;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT tool, count(*) FROM audit_log GROUP BY tool ORDER BY tool")
            .fetch_all(&mut store)
            .await?;
    drop(store);

    let mut answered_by_tool: BTreeMap<String, usize> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.answered) {
        *answered_by_tool.entry(o.tool.to_owned()).or_default() += 1;
    }
    let mut audit_by_tool: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (tool, n) in rows {
        audit_by_tool.entry(tool).or_default().0 = n as usize;
    }
    for (tool, n) in &answered_by_tool {
        audit_by_tool.entry(tool.clone()).or_default().1 = *n;
    }
    // Calls made outside the measured sessions are audited too: the readiness loop's execute_code calls
    // and the query after the run.
    audit_by_tool.entry("execute_code".to_owned()).or_default().1 += readiness_calls;
    audit_by_tool.entry("query_database".to_owned()).or_default().1 += 1;
    let audit_rows: usize = audit_by_tool.values().map(|(rows, _)| rows).sum();
    let answered: usize = audit_by_tool.values().map(|(_, answered)| answered).sum();

    let mut errors: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (kind, message) in outcomes.iter().filter_map(|o| o.error.clone()) {
        errors.entry(kind).or_insert((0, message)).0 += 1;
    }
    let mut all: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    all.sort();
    let mut by_tool: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    for o in &outcomes {
        by_tool.entry(o.tool).or_default().push(o.latency);
    }
    let per_tool = by_tool
        .into_iter()
        .map(|(tool, mut l)| {
            l.sort();
            (tool, (l.len(), percentile(&l, 0.5), percentile(&l, 0.99)))
        })
        .collect();

    let report = SoakReport {
        sessions: config.sessions,
        calls: outcomes.len(),
        served: outcomes.iter().filter(|o| o.error.is_none()).count(),
        errors,
        per_tool,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        elapsed,
        gateway_peak_kib,
        worker_peak_kib,
        answered,
        audit_rows,
        audit_by_tool,
        faults: fault_log,
        serving_after,
    };
    drop(gw);
    Ok(report)
}
