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

/// What every front door shares: the core's services behind the pipeline and the tool catalogue, the
/// key check, and what must be stopped at the end.
pub struct Core {
    pub pipeline: Arc<Pipeline>,
    pub catalogue: Arc<Catalogue>,
    pub prompts: Arc<crate::mcp::prompts::Prompts>,
    pub services: Arc<Services>,
    pub auth: Arc<Authenticator>,
    pub settings: Arc<sluice_core::config::Settings>,
    pub shutdown: CancellationToken,
    /// What goes when an MCP session ends (its cursors and sandbox workspaces).
    pub sessions: crate::sessions::SessionState,
    registry: Arc<Registry>,
    store: Store,
    /// The sandbox daemon `sluice up` (and `sluice stdio`) runs beside the gateway.
    sandbox_daemon: Option<sluice_core::sandbox::daemon::Supervisor>,
    sandbox: Arc<sluice_core::sandbox::Sandbox>,
}

/// Wires the core. With `launch_sandbox` (`sluice up`, `sluice stdio`) the sandbox daemon is started as a
/// child process and awaited; otherwise the configured daemon socket is used.
pub async fn assemble(ctx: &Context, launch_sandbox: bool) -> Result<Core, GatewayError> {
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
    let pipeline = Pipeline::with_limits(ctx.store.clone(), settings.audit_strict, &settings.rate_limits);
    let catalogue = Arc::new(Catalogue::offered(&services).map_err(GatewayError::Invalid)?);

    let shutdown = CancellationToken::new();
    let auth = Authenticator::new(ctx.store.clone(), ctx.master.api_key_hasher()).await?;
    auth.watch_revisions(shutdown.clone());
    sluice_core::registry::watch(
        Arc::clone(&registry),
        ctx.store.clone(),
        Arc::clone(&ctx.master),
        shutdown.clone(),
    );
    let sessions = crate::sessions::SessionState::new(Arc::clone(&sandbox), Arc::clone(&services.cursors));
    Ok(Core {
        pipeline,
        catalogue,
        prompts: Arc::new(crate::mcp::prompts::Prompts::embedded()),
        services: Arc::clone(&services),
        auth,
        settings,
        shutdown,
        sessions,
        registry,
        store: ctx.store.clone(),
        sandbox_daemon,
        sandbox,
    })
}

impl Core {
    /// The MCP service for one session (HTTP: one per session; stdio: the one).
    pub fn mcp(&self) -> SluiceMcp {
        SluiceMcp::new(
            Arc::clone(&self.pipeline),
            Arc::clone(&self.catalogue),
            Arc::clone(&self.prompts),
            Arc::clone(&self.services),
        )
    }

    /// One line on the sandbox: its state, and why when it is not available.
    pub async fn sandbox_summary(&self) -> String {
        let state = self.sandbox.state().await;
        format!("sandbox {}: {}", state.name(), state.detail())
    }

    /// Stops what the core started: the sandbox daemon, the registry's engines, the store.
    pub async fn stop(self) {
        self.shutdown.cancel();
        if let Some(daemon) = self.sandbox_daemon {
            daemon.stop().await;
        }
        drop(self.registry);
        self.store.close().await;
    }
}

/// A running HTTP gateway's parts.
pub struct Server {
    pub router: axum::Router,
    core: Core,
}

/// Wires everything the HTTP server needs.
pub async fn build(ctx: &Context, launch_sandbox: bool) -> Result<Server, GatewayError> {
    let core = assemble(ctx, launch_sandbox).await?;
    let sessions = crate::sessions::Sessions::new(core.sessions.clone(), core.settings.session_idle);
    let (pipeline, catalogue, prompts, services) = (
        Arc::clone(&core.pipeline),
        Arc::clone(&core.catalogue),
        Arc::clone(&core.prompts),
        Arc::clone(&core.services),
    );
    let oauth = crate::oauth::Resource::new(&core.settings, &core.catalogue)?;
    let router = crate::http::router(
        &core.settings,
        ctx.store.clone(),
        Arc::clone(&core.auth),
        move || {
            SluiceMcp::new(
                Arc::clone(&pipeline),
                Arc::clone(&catalogue),
                Arc::clone(&prompts),
                Arc::clone(&services),
            )
        },
        sessions,
        core.shutdown.clone(),
        oauth,
    );
    Ok(Server { router, core })
}

impl Server {
    /// Serves `GET /metrics` (Prometheus text exposition, no key: bind it privately) on `listener` until
    /// the gateway shuts down.
    pub fn serve_metrics(&self, listener: tokio::net::TcpListener) {
        let registry = Arc::clone(&self.core.registry);
        let router = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let registry = Arc::clone(&registry);
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        sluice_core::metrics::render(&registry),
                    )
                }
            }),
        );
        let shutdown = self.core.shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }

    /// One line on the sandbox for `sluice up` to print: its state, and why when it is not available.
    pub async fn sandbox_summary(&self) -> String {
        self.core.sandbox_summary().await
    }

    /// Serves until `shutdown` is cancelled or SIGINT/SIGTERM arrives, then drains for up to 10 s.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> Result<(), GatewayError> {
        let shutdown = self.core.shutdown.clone();
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
        self.core.stop().await;
        Ok(())
    }
}

pub async fn wait_for_signal() {
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
