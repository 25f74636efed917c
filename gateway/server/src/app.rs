//! Start-up: data directory, store, keys, the demo warehouse, and the server's run loop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use sluice_connectors::{ConnectorKind, Dsn};
use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticator, Scopes, generate_key};
use crate::config::Settings;
use crate::error::GatewayError;
use crate::mcp::SluiceMcp;
use crate::pipeline::Pipeline;
use crate::registry::{Registry, validate_name};
use crate::secrets::{MasterKey, Secret, write_private};
use crate::service::Services;
use crate::store::{ConnectionRecord, LOCAL_ORG, Store, now};
use crate::tools::Catalogue;
use crate::tools::info::ConnectorInfo;

/// The opened data directory: settings, master key and store.
pub struct Context {
    pub settings: Arc<Settings>,
    pub master: Arc<MasterKey>,
    pub store: Store,
}

impl Context {
    /// Creates the data directory (mode 0700) if needed and opens the master key and the store.
    pub async fn open(settings: Settings) -> Result<Context, GatewayError> {
        let dir = &settings.data_dir;
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| GatewayError::io(dir, e))?;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| GatewayError::io(dir, e))?;
        }
        let master = MasterKey::load_or_create(settings.master_key.as_ref(), dir)?;
        let store = Store::open(&settings.store_path()).await?;
        store.ensure_org(LOCAL_ORG).await?;
        Ok(Context {
            settings: Arc::new(settings),
            master: Arc::new(master),
            store,
        })
    }

    /// Creates an API key; the secret is returned once and never stored.
    pub async fn create_key(&self, name: &str, scopes: &Scopes) -> Result<Secret<String>, GatewayError> {
        if name.trim().is_empty() {
            return Err(GatewayError::Invalid("a key needs a name (--name)".to_owned()));
        }
        let key = generate_key(&self.master.api_key_hasher());
        self.store
            .insert_key(LOCAL_ORG, name, &key.prefix, &key.hash, scopes)
            .await?;
        Ok(key.secret)
    }

    /// Seals and stores a connection. The DSN's plaintext is exposed only to be sealed (and, for a file
    /// path, to be made absolute).
    pub async fn add_connection(
        &self,
        name: &str,
        kind: &str,
        dsn: &Dsn,
        description: Option<String>,
        settings: serde_json::Value,
    ) -> Result<(), GatewayError> {
        validate_name(name)?;
        let kind = ConnectorKind::parse(kind).ok_or_else(|| {
            GatewayError::Invalid(format!(
                "unsupported connection kind '{kind}' (supported: {})",
                crate::registry::supported_kinds()
            ))
        })?;
        if self.settings.connections.iter().any(|c| c.name == name) {
            return Err(GatewayError::Conflict(format!(
                "'{name}' is defined in the config file; config connections cannot be shadowed"
            )));
        }
        let dsn = match kind {
            // Store an absolute path, so the connection works whatever directory the gateway starts in.
            ConnectorKind::DuckDb => Dsn::new(absolute(Path::new(dsn.expose()))?.display().to_string()),
            // A bare SQLite path is made absolute like a DuckDB one; URLs pass through unchanged.
            ConnectorKind::Sqlite if !dsn.expose().starts_with("sqlite:") => {
                Dsn::new(absolute(Path::new(dsn.expose()))?.display().to_string())
            }
            ConnectorKind::Sqlite | ConnectorKind::Postgres | ConnectorKind::MySql => dsn.clone(),
        };
        let id = uuid::Uuid::new_v4().to_string();
        let sealed = self.master.seal(&id, dsn.expose().as_bytes())?;
        self.store
            .insert_connection(&ConnectionRecord {
                id,
                org_id: LOCAL_ORG.to_owned(),
                name: name.to_owned(),
                kind: kind.as_str().to_owned(),
                dsn_sealed: sealed,
                description,
                settings,
                created_at: now(),
            })
            .await
    }
}

fn absolute(path: &Path) -> Result<PathBuf, GatewayError> {
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    let cwd = std::env::current_dir().map_err(|e| GatewayError::io(path, e))?;
    Ok(cwd.join(path))
}

/// What `sluice up` prepared on this run.
pub struct Bootstrap {
    /// The admin key, only on the run that created it.
    pub new_admin_key: Option<Secret<String>>,
    pub demo_created: bool,
}

/// First-run set-up for `sluice up`: the local admin key and the demo warehouse.
pub async fn bootstrap_local(ctx: &Context) -> Result<Bootstrap, GatewayError> {
    let key_file = ctx.settings.key_file();
    let mut new_admin_key = None;
    if !key_file.exists() {
        let keys = ctx.store.list_keys(LOCAL_ORG).await?;
        let name = if keys.iter().any(|k| k.name == "local-admin") {
            format!("local-admin-{}", keys.len() + 1)
        } else {
            "local-admin".to_owned()
        };
        let secret = ctx.create_key(&name, &Scopes::all()).await?;
        write_private(&key_file, format!("{}\n", secret.expose()).as_bytes())?;
        new_admin_key = Some(secret);
    }

    let demo = ctx.settings.demo_path();
    let mut demo_created = false;
    if !demo.exists() {
        tracing::info!(path = %demo.display(), "generating the demo warehouse");
        sluice_connectors::duckdb::demo::create(&demo)?;
        demo_created = true;
    }
    let registered = ctx
        .store
        .list_connections(LOCAL_ORG)
        .await?
        .iter()
        .any(|c| c.name == "demo")
        || ctx.settings.connections.iter().any(|c| c.name == "demo");
    if !registered {
        ctx.add_connection(
            "demo",
            "duckdb",
            &Dsn::new(demo.display().to_string()),
            Some("Demo retail warehouse (generated by Sluice)".to_owned()),
            serde_json::json!({}),
        )
        .await?;
    }
    Ok(Bootstrap {
        new_admin_key,
        demo_created,
    })
}

/// A running gateway's parts.
pub struct Server {
    pub router: axum::Router,
    pub shutdown: CancellationToken,
    registry: Arc<Registry>,
    store: Store,
    /// The sandbox daemon `sluice up` runs beside the gateway; stopped after the HTTP drain.
    sandbox_daemon: Option<crate::sandbox::daemon::Supervisor>,
    sandbox: Arc<crate::sandbox::Sandbox>,
}

/// Wires everything the server needs. With `launch_sandbox` (`sluice up`) the sandbox daemon is started
/// as a child process and awaited; otherwise the configured daemon socket is used.
pub async fn build(ctx: &Context, launch_sandbox: bool) -> Result<Server, GatewayError> {
    let settings = Arc::clone(&ctx.settings);
    let (sandbox, sandbox_plan) = crate::sandbox::daemon::configure(&settings, launch_sandbox);
    let sandbox_daemon = match sandbox_plan {
        Some(plan) => Some(crate::sandbox::daemon::Supervisor::start(plan, Arc::clone(&sandbox)).await),
        None => None,
    };
    let registry = Arc::new(Registry::new(Arc::clone(&settings)));
    registry.reload(&ctx.store, &ctx.master).await?;

    let engines = ConnectorKind::ALL
        .iter()
        .map(|&kind| ConnectorInfo {
            kind: kind.as_str().to_owned(),
            dialect: kind.dialect().name().to_owned(),
            engine: match kind {
                ConnectorKind::DuckDb => sluice_connectors::duckdb::engine_version(),
                ConnectorKind::Postgres => "PostgreSQL via sqlx".to_owned(),
                ConnectorKind::MySql => "MySQL/MariaDB via sqlx".to_owned(),
                ConnectorKind::Sqlite => "SQLite via sqlx".to_owned(),
            },
            read_only: true,
        })
        .collect();
    let services = Arc::new(Services {
        settings: Arc::clone(&settings),
        registry: Arc::clone(&registry),
        engines,
        store: ctx.store.clone(),
        sandbox: Arc::clone(&sandbox),
        schema_cache: Arc::new(crate::schema_cache::SchemaCache::new(settings.schema_cache_ttl)),
        cursors: Arc::new(crate::cursors::Cursors::new(
            settings.cursor_ttl,
            settings.max_cursors,
            settings.max_cursor_bytes,
        )),
        budgets: Arc::new(crate::budgets::Budgets::new(
            settings.budgets.clone(),
            ctx.store.clone(),
        )),
        health: Arc::new(crate::health::Health::default()),
    });
    let pipeline = Pipeline::new(ctx.store.clone(), settings.audit_strict);
    let catalogue = Arc::new(Catalogue::new(&services));

    let shutdown = CancellationToken::new();
    let auth = Authenticator::new(ctx.store.clone(), ctx.master.api_key_hasher()).await?;
    auth.watch_revisions(shutdown.clone());
    watch_connections(
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

/// Reloads connections when the store's connection revision changes (e.g. `sluice connection add`).
fn watch_connections(
    registry: Arc<Registry>,
    store: Store,
    master: Arc<MasterKey>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut seen = store.connection_revision().await.ok();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let Ok(revision) = store.connection_revision().await else {
                continue;
            };
            if seen != Some(revision) {
                seen = Some(revision);
                match registry.reload(&store, &master).await {
                    Ok(()) => tracing::info!("connections reloaded"),
                    Err(e) => tracing::error!(error = %e, "connection reload failed"),
                }
            }
        }
    });
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
