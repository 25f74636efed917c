//! `sluice dbt`: the standalone `sluice-dbt` command line, passed through.

use std::io::Write as _;

use anyhow::Result;

/// `sluice dbt …` runs the same code as the standalone `sluice-dbt` binary, with its exit codes (1: findings
/// at or above --fail-on, 2: unreadable project or artifact), which CI relies on.
pub(super) fn run(cmd: &sluice_dbt::cli::Command) -> Result<()> {
    let output = sluice_dbt::cli::run(cmd);
    // A closed pipe (`sluice dbt map | head`) is not worth an error.
    let _ = std::io::stdout().write_all(output.stdout.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(output.stderr.as_bytes());
    if output.code != 0 {
        std::process::exit(output.code);
    }
    Ok(())
}
