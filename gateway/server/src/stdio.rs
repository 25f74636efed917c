//! MCP over stdin/stdout for one local user: the same tools (and everything else the HTTP front door
//! serves) for a client that starts `sluice stdio` as its child process.
//!
//! The process is one caller and one session: the API key is checked once at start (the data directory's
//! `local_api_key` unless `--key-file` names another), and every call runs with that key's org and scopes
//! under a session id of its own, so cursors and sandbox workspaces are scoped exactly as over HTTP. Stdout
//! carries only protocol messages; logs go to stderr. When the client closes stdin (or a signal arrives),
//! the session's state is cleaned up, the sandbox daemon stopped and the store closed.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use rmcp::ServiceExt as _;
use sluice_core::setup::Context;

use crate::app;

/// Reads the API key the stdio session runs as: the first non-empty line of `path`.
pub fn read_key(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the API key file {}", path.display()))?;
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(key) => Ok(key.to_owned()),
        None => bail!("the API key file {} is empty", path.display()),
    }
}

/// Serves MCP on stdin/stdout with `key` until the client closes stdin or a signal arrives.
pub async fn serve(ctx: &Context, key: &str) -> Result<()> {
    let core = app::assemble(ctx, true).await?;
    let auth = match core.auth.verify(key).await {
        Ok(auth) => auth,
        Err(failure) => {
            core.stop().await;
            bail!("the API key was refused: {}", failure.message());
        }
    };
    // Session ids are bearer-like elsewhere; this one never leaves the process, but is as unguessable.
    let session = format!(
        "stdio-{}{}",
        sluice_core::pipeline::request_id(),
        sluice_core::pipeline::request_id()
    );
    tracing::info!(
        org = %auth.org_id,
        sandbox = %core.sandbox_summary().await,
        "serving MCP on stdin/stdout"
    );
    let mcp = core.mcp().for_one_caller(auth, session.clone());
    let outcome = match mcp.serve(rmcp::transport::io::stdio_pipes()).await {
        Ok(service) => {
            let cancel = service.cancellation_token();
            tokio::select! {
                ended = service.waiting() => ended.map(|reason| tracing::info!(?reason, "the stdio client closed the session")).map_err(anyhow::Error::from),
                () = app::wait_for_signal() => {
                    tracing::info!("shutting down");
                    cancel.cancel();
                    Ok(())
                }
            }
        }
        Err(e) => Err(anyhow::Error::from(e).context("the MCP handshake on stdin/stdout failed")),
    };
    // rmcp has cancelled the calls still running (their statements interrupted, their sandbox runs
    // killed); their audit records are written before the store closes.
    if !core.pipeline.settle(std::time::Duration::from_secs(5)).await {
        tracing::warn!("calls still running 5 s after the session ended; closing anyway");
    }
    core.sessions.end(&session).await;
    core.stop().await;
    outcome
}
