//! `sluice connection`: add, list and remove an organization's database connections; a DSN is sealed
//! with the master key before it is stored.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use sluice_connectors::Dsn;
use sluice_core::setup::Context;
use sluice_core::store::LOCAL_ORG;

use super::settings::settings;
use super::{Common, OrgArg};

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a connection; its DSN is sealed with the master key before it is stored.
    Add {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        name: String,
        /// Engine: duckdb, postgres, mysql or sqlite.
        #[arg(long)]
        kind: String,
        /// For duckdb and sqlite: the database file's path; for postgres and mysql: the server's URL.
        // Parsed straight into a `Dsn`, so that this struct's `Debug` hides the password.
        #[arg(long)]
        dsn: Dsn,
        #[arg(long)]
        description: Option<String>,
        /// Row cap for this connection (the smaller of this and the server's applies).
        #[arg(long, value_parser = at_least_one::<u64>)]
        max_rows: Option<u64>,
        /// Statement timeout for this connection, in milliseconds.
        #[arg(long, value_parser = at_least_one::<u64>)]
        timeout_ms: Option<u64>,
        /// Governance policy for this connection: a TOML file with any of deny_functions, allow_functions,
        /// allowed_schemas, denied_schemas, allowed_tables, denied_tables, denied_columns, max_rows.
        #[arg(long)]
        policy_file: Option<PathBuf>,
        /// Most pooled sessions to the server (postgres, mysql, sqlite) [default: 5].
        #[arg(long, value_parser = at_least_one::<u32>)]
        pool_size: Option<u32>,
        /// Idle pooled sessions are closed after this many milliseconds [default: 300000].
        #[arg(long, value_parser = at_least_one::<u64>)]
        pool_idle_timeout_ms: Option<u64>,
        /// How long a call waits for a pooled session before failing, in milliseconds [default: 10000].
        #[arg(long, value_parser = at_least_one::<u64>)]
        pool_acquire_timeout_ms: Option<u64>,
    },
    /// List connections (DSNs are not shown).
    List {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
    },
    /// Remove a stored connection.
    Remove {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        name: String,
    },
}

/// Parses a count or duration flag that must be at least 1: zero rows, a zero timeout or an empty pool
/// would make every call fail, so it is refused when the connection is added rather than at the first call.
fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(text: &str) -> Result<T, String> {
    match text.trim().parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err("expected a whole number of at least 1".to_owned()),
    }
}

pub(super) async fn run(cmd: ConnectionCommand) -> Result<()> {
    match cmd {
        ConnectionCommand::Add {
            common,
            org,
            name,
            kind,
            dsn,
            description,
            max_rows,
            timeout_ms,
            policy_file,
            pool_size,
            pool_idle_timeout_ms,
            pool_acquire_timeout_ms,
        } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let mut extra = serde_json::Map::new();
            if let Some(path) = policy_file {
                let text =
                    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                let policy: sluice_governance::Policy = toml::from_str(&text)
                    .with_context(|| format!("{} is not a valid policy", path.display()))?;
                extra.insert("policy".into(), serde_json::to_value(policy)?);
            }
            if let Some(v) = max_rows {
                extra.insert("max_rows".into(), v.into());
            }
            if let Some(v) = timeout_ms {
                extra.insert("timeout_ms".into(), v.into());
            }
            // The keys the registry reads back, the same names as in a config file's [[connections]].
            if let Some(v) = pool_size {
                extra.insert("pool_size".into(), v.into());
            }
            if let Some(v) = pool_idle_timeout_ms {
                extra.insert("pool_idle_timeout_ms".into(), v.into());
            }
            if let Some(v) = pool_acquire_timeout_ms {
                extra.insert("pool_acquire_timeout_ms".into(), v.into());
            }
            ctx.add_connection(
                &org,
                &name,
                &kind,
                &dsn,
                description,
                serde_json::Value::Object(extra),
            )
            .await?;
            println!("added connection '{name}' ({kind}) to organization '{org}'");
            Ok(())
        }
        ConnectionCommand::List { common, org } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let mut out = std::io::stdout().lock();
            // The config file's connections belong to `local`.
            let configured: &[_] = if org == LOCAL_ORG {
                &ctx.settings.connections
            } else {
                &[]
            };
            for c in configured {
                writeln!(
                    out,
                    "{}\t{}\tconfig\t{}",
                    c.name,
                    c.kind,
                    c.description.as_deref().unwrap_or("")
                )?;
            }
            for c in ctx.store.list_connections(&org).await? {
                writeln!(
                    out,
                    "{}\t{}\tstore\t{}",
                    c.name,
                    c.kind,
                    c.description.as_deref().unwrap_or("")
                )?;
            }
            Ok(())
        }
        ConnectionCommand::Remove { common, org, name } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            ctx.store.remove_connection(&org, &name).await?;
            println!("removed connection '{name}'");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use pretty_assertions::assert_eq;

    use super::ConnectionCommand;
    use crate::cli::{Cli, Command};

    /// The parsed command line derives `Debug`; a DSN given with `--dsn` must not show its password there.
    #[test]
    fn parsed_arguments_do_not_print_a_dsn_password() {
        let cli = Cli::try_parse_from([
            "sluice",
            "connection",
            "add",
            "--name",
            "sales",
            "--kind",
            "postgres",
            "--dsn",
            "postgres://app:hunter2@pg.internal/sales",
        ])
        .unwrap();
        let printed = format!("{cli:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("postgres://app:***@pg.internal/sales"),
            "{printed}"
        );
        let Command::Connection(ConnectionCommand::Add { dsn, .. }) = cli.command else {
            panic!("parsed as {printed}");
        };
        assert_eq!(dsn.expose(), "postgres://app:hunter2@pg.internal/sales");
    }
}
