//! `sluice up`, `serve` and `stdio`: set up and run the gateway over HTTP, or over stdin/stdout for one
//! local user.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use sluice_core::config::Settings;
use sluice_core::setup::{self, Context};
use sluice_core::store::LOCAL_ORG;

use crate::app;

pub(super) async fn up(settings: Settings, local: bool) -> Result<()> {
    let ctx = Context::open(settings)
        .await
        .context("opening the data directory")?;
    let data_dir =
        std::fs::canonicalize(&ctx.settings.data_dir).unwrap_or_else(|_| ctx.settings.data_dir.clone());
    let bootstrap = if local {
        Some(setup::bootstrap_local(&ctx).await?)
    } else {
        None
    };
    if !local {
        match &ctx.settings.first_key_file {
            Some(path) => match setup::first_key(&ctx, path).await? {
                setup::FirstKey::Created => tracing::warn!(
                    file = %path.display(),
                    "created the first admin API key (named admin); read it from the file, then delete the file"
                ),
                setup::FirstKey::CreatedElsewhere => tracing::info!(
                    "another gateway instance created the first admin API key at the same moment"
                ),
                setup::FirstKey::Exists => {}
            },
            None => {
                if ctx
                    .store
                    .list_keys(LOCAL_ORG)
                    .await?
                    .iter()
                    .all(|k| k.revoked_at.is_some())
                {
                    tracing::warn!(
                        "no usable API key exists; create one with `sluice key create --name NAME`"
                    );
                }
            }
        }
    }

    // `up` runs the sandbox daemon beside the gateway; `serve` connects to the configured one.
    let server = app::build(&ctx, local).await?;
    let sandbox = server.sandbox_summary().await;
    let listener = tokio::net::TcpListener::bind(&ctx.settings.listen)
        .await
        .with_context(|| format!("could not listen on {}", ctx.settings.listen))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}/mcp");
    let metrics = match ctx.settings.metrics_listen {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("could not listen on {at} ([server] metrics_listen)"))?;
            let bound = listener.local_addr()?;
            server.serve_metrics(listener);
            Some(bound)
        }
        None => None,
    };

    let mut out = std::io::stdout().lock();
    writeln!(out, "sluice: listening on {url}")?;
    if let Some(at) = metrics {
        writeln!(out, "sluice: metrics on http://{at}/metrics")?;
    }
    writeln!(out, "sluice: {sandbox}")?;
    if bootstrap.as_ref().is_some_and(|b| b.demo_created) {
        writeln!(out, "sluice: created the demo warehouse as connection 'demo'")?;
    }
    // `serve` with a first-key file points there; otherwise at the key `up` keeps in the data directory.
    let key_file = match (&ctx.settings.first_key_file, local) {
        (Some(path), false) => path.clone(),
        _ => data_dir.join("local_api_key"),
    };
    match bootstrap.as_ref().and_then(|b| b.new_admin_key.as_ref()) {
        Some(key) => {
            writeln!(
                out,
                "sluice: created the admin API key (shown once; also saved to {}):",
                key_file.display()
            )?;
            writeln!(out, "    {}", key.expose())?;
            writeln!(out, "sluice: connect Claude Code with:")?;
            writeln!(
                out,
                "    claude mcp add --transport http sluice {url} --header \"Authorization: Bearer {}\"",
                key.expose()
            )?;
        }
        None if key_file.exists() => {
            writeln!(out, "sluice: connect Claude Code with:")?;
            writeln!(
                out,
                "    claude mcp add --transport http sluice {url} --header \"Authorization: Bearer $(cat {})\"",
                key_file.display()
            )?;
        }
        None => {
            writeln!(
                out,
                "sluice: connect Claude Code with (use a key from `sluice key create`):"
            )?;
            writeln!(
                out,
                "    claude mcp add --transport http sluice {url} --header \"Authorization: Bearer <key>\""
            )?;
        }
    }
    out.flush()?;
    drop(out);
    server.serve(listener).await?;
    Ok(())
}

/// `sluice stdio`: never a byte on stdout but protocol messages, so the first run's set-up (key, demo
/// warehouse) is reported on stderr, and the new key only written to its file.
pub(super) async fn stdio(settings: Settings, key_file: Option<PathBuf>) -> Result<()> {
    let ctx = Context::open(settings)
        .await
        .context("opening the data directory")?;
    let key_file = match key_file {
        Some(path) => path,
        None => {
            let bootstrap = setup::bootstrap_local(&ctx).await?;
            if bootstrap.new_admin_key.is_some() {
                tracing::info!(
                    path = %ctx.settings.key_file().display(),
                    "created the admin API key (saved to the file, not printed)"
                );
            }
            ctx.settings.key_file()
        }
    };
    let key = crate::stdio::read_key(&key_file)?;
    crate::stdio::serve(&ctx, &key).await
}
