//! Soak: 200 MCP sessions x 50 calls (queries on DuckDB and PostgreSQL, schema tools, sandbox runs) against
//! one real gateway on a PostgreSQL store, with the sandbox daemon killed once (30 % in) and PostgreSQL,
//! store and warehouse, restarted once (60 % in). Reports calls served, errors by kind with a message the
//! agent saw, p50/p99 per tool, the gateway's peak memory, and audit records against answered calls.
//!
//! Run: `cargo build --release -p sluice-gateway --bin sluice -p sluice-sandbox --bin sluice-sandbox &&
//! SLUICE_BIN=$CARGO_TARGET_DIR/release/sluice cargo bench -p sluice-e2e --bench soak`. Sizes from
//! `SOAK_SESSIONS` (200), `SOAK_CALLS` (50) and `SOAK_CONCURRENCY` (32). Needs the sandbox venv in
//! `SLUICE_SANDBOX_PYTHON` (`sandbox/daemon/scripts/setup-python.sh` prints it). Loopback only. Results in
//! BENCHMARKS.md.

use anyhow::{Result, bail};
use sluice_e2e::soak::{SoakConfig, run};

fn env_or(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) => Ok(v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v} is not a count"))?),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    sluice_e2e::install_crypto_provider();
    let config = SoakConfig {
        sessions: env_or("SOAK_SESSIONS", 200)?,
        calls_per_session: env_or("SOAK_CALLS", 50)?,
        concurrency: env_or("SOAK_CONCURRENCY", 32)?,
        kill_sandbox_at: 0.3,
        restart_postgres_at: 0.6,
    };
    println!("soak: {config:?}");
    let report = run(config).await?;
    println!("{report}");
    if report.audit_rows < report.answered {
        bail!(
            "{} answered calls have no audit record",
            report.answered - report.audit_rows
        );
    }
    if !report.serving_after {
        bail!("the gateway did not serve a plain query after the run");
    }
    Ok(())
}
