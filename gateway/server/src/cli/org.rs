//! `sluice org`: create, list and remove organizations.

use std::io::Write as _;

use anyhow::Result;
use clap::Subcommand;
use sluice_core::setup::Context;

use super::Common;
use super::settings::settings;

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization; then give it keys with `sluice key create --org NAME`.
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        name: String,
    },
    /// List organizations with how many keys and stored connections each has.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Remove an organization with its keys, stored connections and projects (its audit records stay).
    Remove {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        name: String,
    },
}

pub(super) async fn run(cmd: OrgCommand) -> Result<()> {
    match cmd {
        OrgCommand::Create { common, name } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            ctx.store.create_org(&name).await?;
            println!(
                "created organization '{name}'; give it an admin key with `sluice key create --org {name} --name admin --role admin`"
            );
            Ok(())
        }
        OrgCommand::List { common } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let mut out = std::io::stdout().lock();
            for o in ctx.store.list_orgs().await? {
                let keys = ctx.store.list_keys(&o.id).await?;
                let active = keys.iter().filter(|k| k.revoked_at.is_none()).count();
                let connections = ctx.connection_names(&o.id).await?.len();
                writeln!(
                    out,
                    "{}\t{active} active keys\t{connections} connections\t{}",
                    o.name, o.created_at
                )?;
            }
            Ok(())
        }
        OrgCommand::Remove { common, name } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let removed = ctx.store.remove_org(&name).await?;
            println!(
                "removed organization '{name}': {} keys, {} connections, {} projects (its audit records stay)",
                removed.keys, removed.connections, removed.projects
            );
            Ok(())
        }
    }
}
