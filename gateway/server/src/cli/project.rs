//! `sluice project`: register, list and remove the dbt project directories the dbt tools may read.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use sluice_core::setup::Context;

use super::settings::settings;
use super::{Common, OrgArg};

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Register a dbt project directory (the one holding dbt_project.yml).
    Add {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        name: String,
        /// The project directory; stored canonical (absolute, symlinks resolved).
        #[arg(long)]
        dir: PathBuf,
        /// The connection holding the warehouse this project builds (for the verification tools).
        #[arg(long)]
        connection: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List dbt projects (config and store).
    List {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
    },
    /// Remove a stored dbt project (its files are not touched).
    Remove {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        name: String,
    },
}

pub(super) async fn run(cmd: ProjectCommand) -> Result<()> {
    match cmd {
        ProjectCommand::Add {
            common,
            org,
            name,
            dir,
            connection,
            description,
        } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let record = sluice_core::projects::add(
                &ctx,
                &org,
                &name,
                &dir,
                connection.as_deref(),
                description.as_deref(),
            )
            .await?;
            println!("added project '{}' ({})", record.name, record.dir);
            Ok(())
        }
        ProjectCommand::List { common, org } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let mut out = std::io::stdout().lock();
            for p in sluice_core::projects::list(&ctx.settings, &ctx.store, &org).await? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    p.name,
                    p.dir.display(),
                    p.connection.as_deref().unwrap_or("-"),
                    p.source.as_str(),
                    p.description.as_deref().unwrap_or("")
                )?;
            }
            Ok(())
        }
        ProjectCommand::Remove { common, org, name } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            sluice_core::projects::remove(&ctx, &org, &name).await?;
            println!("removed project '{name}'");
            Ok(())
        }
    }
}
