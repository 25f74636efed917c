//! `sluice config show`: the configuration a gateway would run with, resolved but never opened.

use std::io::Write as _;

use anyhow::Result;
use clap::Subcommand;

use super::settings::settings;
use super::{Common, ServeArgs};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, config file, SLUICE_* variables and flags, resolved as
    /// `serve` resolves them), one `key = value` per line, secrets redacted.
    Show {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

pub(super) fn run(cmd: ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Show { common, serve } => {
            // Only resolved, never opened: showing the configuration creates no data directory or key.
            let settings = settings(&common, Some(&serve))?;
            let mut out = std::io::stdout().lock();
            write!(out, "{settings}")?;
            out.flush()?;
            Ok(())
        }
    }
}
