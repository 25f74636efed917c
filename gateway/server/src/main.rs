//! The `sluice` binary: parses arguments, starts tracing to stderr, and runs the command.

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

/// jemalloc for Rust and, through its unprefixed `malloc`, for the DuckDB engine linked into this binary
/// (DuckDB's own releases use jemalloc; the bundled build does not). BENCHMARKS.md has the measurement.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // PostgreSQL's notices (e.g. "relation _sqlx_migrations already exists, skipping" on every start with a
    // PostgreSQL store) are not the operator's concern unless the filter asks for sqlx by name.
    let directives = std::env::var("SLUICE_LOG").unwrap_or_else(|_| "info".to_owned());
    let directives = if directives.contains("sqlx") {
        directives
    } else {
        format!("{directives},sqlx::postgres::notice=warn")
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: a stdio client's log, a file or journald gets plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = sluice_gateway::cli::Cli::parse();
    match sluice_gateway::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
