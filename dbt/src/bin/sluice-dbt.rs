//! `sluice-dbt`: validate a dbt project in CI, and map it, from dbt's own artifacts, without dbt.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

// See the `jemalloc` feature in Cargo.toml: the allocator is a measurable part of loading a large project.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use sluice_dbt::cli::{Command, run};

/// dbt project intelligence from dbt's artifacts: no dbt, no warehouse, no account needed.
#[derive(Debug, Parser)]
#[command(name = "sluice-dbt", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr so that stdout stays the report CI parses; RUST_LOG=debug shows load timings.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let output = run(&cli.command);
    // A closed pipe (`sluice-dbt map | head`) is not worth a panic.
    let _ = std::io::stdout().write_all(output.stdout.as_bytes());
    let _ = std::io::stderr().write_all(output.stderr.as_bytes());
    ExitCode::from(u8::try_from(output.code).unwrap_or(u8::MAX))
}
