//! The `sluice` command line: run the gateway, show its configuration, manage connections and API keys.
//!
//! Every argument struct derives `Debug`, so a secret is typed where it is parsed: clap parses `--dsn` into
//! a redacting [`Dsn`], and `SLUICE_MASTER_KEY` is wrapped in a [`Secret`] as it is read.
//!
//! One file per command family, its clap types beside its handler; the types every command shares, the
//! top-level [`Command`] and the dispatch live here.
//!
//! [`Dsn`]: sluice_connectors::Dsn
//! [`Secret`]: sluice_core::secrets::Secret

mod audit;
mod config;
mod connection;
mod dbt;
mod key;
mod org;
mod project;
mod secrets;
mod serve;
mod settings;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use audit::since_time;
use settings::settings;

pub use config::ConfigCommand;
pub use connection::ConnectionCommand;
pub use key::KeyCommand;
pub use org::OrgCommand;
pub use project::ProjectCommand;
pub use secrets::SecretsCommand;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a governed MCP gateway between AI agents and your data"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Common {
    /// TOML config file (settings there are overridden by SLUICE_* variables, then by flags).
    #[arg(long, env = "SLUICE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory holding the store, keys and the demo warehouse [default: ./.sluice].
    #[arg(long, env = "SLUICE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:3300]; port 0 picks a free port (the bound address is printed).
    #[arg(long, env = "SLUICE_LISTEN")]
    pub listen: Option<String>,
    /// The most rows any query may return [default: 10000].
    #[arg(long, env = "SLUICE_MAX_ROWS")]
    pub max_rows: Option<u64>,
    /// Statement timeout in milliseconds [default: 30000].
    #[arg(long, env = "SLUICE_QUERY_TIMEOUT_MS")]
    pub query_timeout_ms: Option<u64>,
    /// Serve MCP without sessions (every request stands alone; JSON responses).
    #[arg(long, env = "SLUICE_STATELESS")]
    pub stateless: Option<bool>,
    /// Host names accepted in the Host header (repeatable) [default: loopback names].
    #[arg(long = "allowed-host", env = "SLUICE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Option<Vec<String>>,
    /// Offer the Python sandbox [default: true]: `up` starts the sandbox daemon beside the gateway,
    /// `serve` connects to the daemon at [sandbox] socket.
    #[arg(long, env = "SLUICE_SANDBOX")]
    pub sandbox: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up a local install on first run (store, admin key, demo warehouse) and serve it.
    Up {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Serve an existing install (production): no demo data, keys come from `sluice key create`.
    Serve {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Serve MCP on stdin/stdout for one local user (Claude Code: `claude mcp add sluice -- sluice stdio`).
    /// Sets the data directory up on first run like `up`, starts the sandbox daemon, logs to stderr only.
    Stdio {
        #[command(flatten)]
        common: Common,
        /// File holding the API key to run as [default: <data dir>/local_api_key].
        #[arg(long, env = "SLUICE_KEY_FILE")]
        key_file: Option<PathBuf>,
    },
    /// Show the configuration a gateway would run with.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage database connections.
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage organizations: each owns its keys, connections, dbt projects, budgets and audit records.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage dbt projects (the directories the dbt tools may read).
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Rotate the master key and show which master key versions seal the stored secrets.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Validate, map or trace a dbt project from its artifacts, e.g. in CI (no gateway or data directory needed).
    #[command(subcommand)]
    Dbt(sluice_dbt::cli::Command),
    /// Show the newest audit records.
    Audit {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        /// How many records.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Only records at or after this time: RFC 3339 (`2026-12-07T09:00:00Z`) or an age (`90s`, `15m`,
        /// `2h`, `7d`).
        #[arg(long, value_parser = since_time)]
        since: Option<String>,
        /// Only records of this tool.
        #[arg(long)]
        tool: Option<String>,
    },
}

/// The organization a command acts in.
#[derive(Debug, Args)]
pub struct OrgArg {
    /// The organization [default: local, the org every install starts with].
    #[arg(long = "org", id = "org", env = "SLUICE_ORG", default_value = sluice_core::store::LOCAL_ORG)]
    pub value: String,
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up { common, serve } => serve::up(settings(&common, Some(&serve))?, true).await,
        Command::Serve { common, serve } => serve::up(settings(&common, Some(&serve))?, false).await,
        Command::Stdio { common, key_file } => serve::stdio(settings(&common, None)?, key_file).await,
        Command::Config(cmd) => config::run(cmd),
        Command::Connection(cmd) => connection::run(cmd).await,
        Command::Key(cmd) => key::run(cmd).await,
        Command::Org(cmd) => org::run(cmd).await,
        Command::Project(cmd) => project::run(cmd).await,
        Command::Secrets(cmd) => secrets::run(cmd).await,
        Command::Dbt(cmd) => dbt::run(&cmd),
        Command::Audit {
            common,
            org,
            limit,
            since,
            tool,
        } => audit::run(common, org, limit, since, tool).await,
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;

    /// Every subcommand's arguments are consistent (unique names, valid conflicts): clap checks this only
    /// when a subcommand is parsed, so a mistake would otherwise surface as a panic in a user's hands.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
