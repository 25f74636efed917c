//! `sluice secrets`: rotate the master key and show which master key versions seal the stored secrets.

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use sluice_core::setup::Context;

use super::Common;
use super::settings::settings;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every stored secret still under an older master key with the current one.
    ///
    /// Run it with the new key as the master key and the old one as SLUICE_MASTER_KEY_PREVIOUS (or
    /// <data dir>/master.key.previous). It works record by record, so it is safe to interrupt and run
    /// again, and gateways holding both keys keep serving meanwhile.
    Rotate {
        #[command(flatten)]
        common: Common,
    },
    /// Show the master key versions this store knows and what each still seals (needs no key).
    Status {
        #[command(flatten)]
        common: Common,
    },
}

pub(super) async fn run(cmd: SecretsCommand) -> Result<()> {
    match cmd {
        SecretsCommand::Rotate { common } => {
            let settings = settings(&common, None)?;
            let from_file = settings.master_key_previous.is_none();
            // Opening the keyring refuses keys that do not fit the store, and registers the new key as the
            // next version if no process has yet.
            let ctx = Context::open(settings)
                .await
                .context("opening the store with the master keys")?;
            if let Some(previous) = ctx.master.previous_version() {
                eprintln!(
                    "re-sealing what is under master key version {previous} with version {}",
                    ctx.master.current_version()
                );
            }
            let report = sluice_core::rotation::rotate(&ctx.store, &ctx.master).await?;
            println!("{report}");
            let file = ctx
                .settings
                .data_dir
                .join(sluice_core::secrets::PREVIOUS_KEY_FILE);
            if from_file && ctx.master.previous_version().is_some() && file.exists() {
                println!("remove {}: it is no longer needed", file.display());
            }
            Ok(())
        }
        SecretsCommand::Status { common } => {
            let settings = settings(&common, None)?;
            if let sluice_core::config::StoreLocation::Sqlite(path) = &settings.store
                && !path.exists()
            {
                bail!("there is no store at {}: nothing is sealed yet", path.display());
            }
            let store = sluice_core::store::Store::connect(&settings.store)
                .await
                .context("opening the store")?;
            let status = sluice_core::rotation::status(&store).await?;
            println!("{status}");
            store.close().await;
            Ok(())
        }
    }
}
