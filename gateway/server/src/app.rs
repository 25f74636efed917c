//! The HTTP server: wiring the core's services to the MCP front door, and the run loop with its drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use sluice_core::auth::Authenticator;
use sluice_core::error::GatewayError;
use sluice_core::pipeline::Pipeline;
use sluice_core::registry::Registry;
use sluice_core::service::{ConnectorInfo, Services};
use sluice_core::setup::Context;
use sluice_core::store::Store;
use tokio_util::sync::CancellationToken;

use crate::mcp::SluiceMcp;
use crate::tools::Catalogue;

/// A running gateway's parts.
pub struct Server {
    pub router: axum::Router,
    pub shutdown: CancellationToken,
    registry: Arc<Registry>,
    store: Store,
    /// The sandbox daemon `sluice up` runs beside the gateway; stopped after the HTTP drain.
    sandbox_daemon: Option<sluice_core::sandbox::daemon::Supervisor>,
    sandbox: Arc<sluice_core::sandbox::Sandbox>,
}

/// Wires everything the server needs. With `launch_sandbox` (`sluice up`) the sandbox daemon is started
/// as a child process and awaited; otherwise the configured daemon socket is used.
pub async fn build(ctx: &Context, launch_sandbox: bool) -> Result<Server, GatewayError> {
    let settings = Arc::clone(&ctx.settings);
    let (sandbox, sandbox_plan) = sluice_core::sandbox::daemon::configure(&settings, launch_sandbox);
    let sandbox_daemon = match sandbox_plan {
        Some(plan) => Some(sluice_core::sandbox::daemon::Supervisor::start(plan, Arc::clone(&sandbox)).await),
        None => None,
    };
    let registry = Arc::new(Registry::new(Arc::clone(&settings)));
    registry.reload(&ctx.store, &ctx.master).await?;

    let engines = ConnectorInfo::all();
    let services = Arc::new(Services {
        settings: Arc::clone(&settings),
        registry: Arc::clone(&registry),
        engines,
        store: ctx.store.clone(),
        sandbox: Arc::clone(&sandbox),
        schema_cache: Arc::new(sluice_core::schema_cache::SchemaCache::new(
            settings.schema_cache_ttl,
        )),
        cursors: Arc::new(sluice_core::cursors::Cursors::new(
            settings.cursor_ttl,
            settings.max_cursors,
            settings.max_cursor_bytes,
        )),
        budgets: Arc::new(sluice_core::budgets::Budgets::new(
            settings.budgets.clone(),
            ctx.store.clone(),
        )),
        health: Arc::new(sluice_core::health::Health::default()),
    });
    let pipeline = Pipeline::new(ctx.store.clone(), settings.audit_strict);
    let catalogue = Arc::new(Catalogue::new(&services));

    let shutdown = CancellationToken::new();
    let auth = Authenticator::new(ctx.store.clone(), ctx.master.api_key_hasher()).await?;
    auth.watch_revisions(shutdown.clone());
    sluice_core::registry::watch(
        Arc::clone(&registry),
        ctx.store.clone(),
        Arc::clone(&ctx.master),
        shutdown.clone(),
    );

    let sessions = crate::sessions::Sessions::new(
        crate::sessions::SessionState::new(Arc::clone(&sandbox), Arc::clone(&services.cursors)),
        settings.session_idle,
    );
    let router = crate::http::router(
        &settings,
        ctx.store.clone(),
        auth,
        move || SluiceMcp::new(Arc::clone(&pipeline), Arc::clone(&catalogue)),
        sessions,
        shutdown.clone(),
    );
    Ok(Server {
        router,
        shutdown,
        registry,
        store: ctx.store.clone(),
        sandbox_daemon,
        sandbox,
    })
}

impl Server {
    /// One line on the sandbox for `sluice up` to print: its state, and why when it is not available.
    pub async fn sandbox_summary(&self) -> String {
        let state = self.sandbox.state().await;
        format!("sandbox {}: {}", state.name(), state.detail())
    }

    /// Serves until `shutdown` is cancelled or SIGINT/SIGTERM arrives, then drains for up to 10 s.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> Result<(), GatewayError> {
        let shutdown = self.shutdown.clone();
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                wait_for_signal().await;
                tracing::info!("shutting down");
                shutdown.cancel();
            }
        });
        let app = self.router.into_make_service_with_connect_info::<SocketAddr>();
        // Responses go out in several small writes (headers, SSE event, end of stream); with Nagle on,
        // the last one waits for the client's delayed ACK, ~40 ms per call.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let graceful = axum::serve(listener, app).with_graceful_shutdown({
            let shutdown = shutdown.clone();
            async move { shutdown.cancelled().await }
        });
        let server = tokio::spawn(async move { graceful.await });
        shutdown.cancelled().await;
        // Open SSE streams end when their sessions are cancelled; anything still open after the grace
        // period is cut so that shutdown always completes.
        match tokio::time::timeout(Duration::from_secs(10), server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "server error"),
            Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
            Err(_) => tracing::warn!("connections still open after 10 s; closing them"),
        }
        if let Some(daemon) = self.sandbox_daemon {
            daemon.stop().await;
        }
        drop(self.registry);
        self.store.close().await;
        Ok(())
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
