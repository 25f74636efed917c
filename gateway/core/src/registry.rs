//! The live connection registry: config and store connections, opened lazily, keyed by org and name.
//!
//! Config-file connections are loaded at start and win over stored ones of the same name (a stored
//! duplicate is skipped with a warning), so an operator's file cannot be shadowed from the CLI.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sluice_connectors::duckdb::{DuckDbOptions, DuckDbWarehouse};
use sluice_connectors::{ConnectorKind, Dsn};
use sluice_governance::{Dialect, Policy};

use crate::config::{ConnectionConfig, Settings};
use crate::error::GatewayError;
use crate::governed::Engine;
use crate::keyring::Keyring;
use crate::store::{LOCAL_ORG, Store};

/// Where a connection was defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Config,
    Store,
}

/// A connection ready to serve calls.
pub struct Connection {
    pub org_id: String,
    pub name: String,
    pub kind: ConnectorKind,
    pub dialect: Dialect,
    pub description: Option<String>,
    pub source: Source,
    pub max_rows: Option<u64>,
    pub timeout: Option<Duration>,
    /// The connection's governance policy (its row maximum is folded into `max_rows`).
    pub policy: Policy,
    /// Pool settings (server engines and SQLite; DuckDB has its own instance handling).
    pub pool: sluice_connectors::PoolOptions,
    /// The engine; only the governed path can run statements on it (see [`crate::governed`]).
    pub engine: Engine,
    /// What the warehouse was built from, to reuse it across reloads.
    fingerprint: [u8; 32],
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("org_id", &self.org_id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A connection definition before it is opened.
struct Definition {
    org_id: String,
    name: String,
    kind: ConnectorKind,
    dsn: Dsn,
    description: Option<String>,
    source: Source,
    max_rows: Option<u64>,
    timeout: Option<Duration>,
    policy: Policy,
    pool: sluice_connectors::PoolOptions,
}

impl Definition {
    fn fingerprint(&self) -> [u8; 32] {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(self.kind.as_str());
        h.update([0]);
        h.update(self.dsn.expose());
        // A changed pool setting needs a new pool.
        h.update([0]);
        h.update(format!("{:?}", self.pool));
        h.finalize().into()
    }
}

/// All live connections.
pub struct Registry {
    settings: Arc<Settings>,
    entries: RwLock<BTreeMap<(String, String), Arc<Connection>>>,
}

impl Registry {
    pub fn new(settings: Arc<Settings>) -> Registry {
        Registry {
            settings,
            entries: RwLock::new(BTreeMap::new()),
        }
    }

    /// Loads (or reloads) every connection from the config and the store. Warehouses whose definition did
    /// not change are kept, so an open DuckDB instance survives a reload.
    pub async fn reload(&self, store: &Store, master: &Keyring) -> Result<(), GatewayError> {
        let mut definitions = Vec::new();
        for c in &self.settings.connections {
            definitions.push(config_definition(c)?);
        }
        for record in store.list_all_connections().await? {
            let shadowed = definitions
                .iter()
                .any(|d| d.org_id == record.org_id && d.name == record.name);
            if shadowed {
                tracing::warn!(connection = %record.name, "stored connection ignored: the config file defines one with the same name");
                continue;
            }
            let Some(kind) = ConnectorKind::parse(&record.kind) else {
                tracing::warn!(connection = %record.name, kind = %record.kind, "stored connection of an unsupported kind ignored");
                continue;
            };
            // The opened plaintext becomes a `Dsn` at once, so that nothing after this line can print it.
            let dsn = master.unseal(&record.id, record.key_version, &record.dsn_sealed)?;
            let dsn = Dsn::new(String::from_utf8(dsn).map_err(|_| GatewayError::Crypto)?);
            let setting = |key: &str| record.settings.get(key).and_then(serde_json::Value::as_u64);
            let policy = match record.settings.get("policy") {
                Some(p) => serde_json::from_value::<Policy>(p.clone()).map_err(|e| {
                    GatewayError::Config(format!(
                        "stored connection '{}': invalid policy: {e}",
                        record.name
                    ))
                })?,
                None => Policy::default(),
            };
            definitions.push(Definition {
                org_id: record.org_id.clone(),
                name: record.name.clone(),
                kind,
                dsn,
                description: record.description.clone(),
                source: Source::Store,
                max_rows: fold_policy_rows(setting("max_rows"), &policy),
                timeout: setting("timeout_ms").map(Duration::from_millis),
                pool: sluice_connectors::PoolOptions::with_overrides(
                    setting("pool_size").and_then(|v| u32::try_from(v).ok()),
                    setting("pool_idle_timeout_ms").map(Duration::from_millis),
                    setting("pool_acquire_timeout_ms").map(Duration::from_millis),
                ),
                policy,
            });
        }

        let previous = self.entries.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut next = BTreeMap::new();
        for d in definitions {
            let key = (d.org_id.clone(), d.name.clone());
            let fingerprint = d.fingerprint();
            let engine = match previous.get(&key) {
                Some(old) if old.fingerprint == fingerprint => old.engine.clone(),
                _ => {
                    self.warn_if_refused(&d);
                    self.open(&d)
                }
            };
            next.insert(
                key,
                Arc::new(Connection {
                    org_id: d.org_id,
                    name: d.name,
                    kind: d.kind,
                    dialect: d.kind.dialect(),
                    description: d.description,
                    source: d.source,
                    max_rows: d.max_rows,
                    timeout: d.timeout,
                    policy: d.policy,
                    pool: d.pool,
                    engine,
                    fingerprint,
                }),
            );
        }
        *self.entries.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    fn open(&self, d: &Definition) -> Engine {
        Engine::new(match d.kind {
            // A DuckDB DSN is the file's path, which the engine needs as such.
            ConnectorKind::DuckDb => Arc::new(DuckDbWarehouse::new(
                d.dsn.expose(),
                DuckDbOptions {
                    release_after_idle: self.settings.duckdb_release_after_idle,
                    threads: self.settings.duckdb_threads,
                    max_memory: self.settings.duckdb_max_memory.clone(),
                    workers: self.settings.duckdb_workers,
                    worker_memory: self.settings.duckdb_worker_memory,
                    // The worker program: the `sluice` binary itself, as its `main` registers it.
                    worker_program: None,
                },
            )),
            // Every session the pool opens goes to an address `[connection_hosts]` allows.
            ConnectorKind::Postgres | ConnectorKind::MySql | ConnectorKind::Sqlite => {
                let pool = sluice_connectors::PoolOptions {
                    hosts: self.settings.connection_hosts.clone(),
                    ..d.pool.clone()
                };
                sluice_connectors::open_pooled_or_report(d.kind, d.dsn.clone(), pool)
            }
        })
    }

    /// Says in the log, as soon as a connection is loaded, when its host is one `[connection_hosts]`
    /// refuses: the pool refuses every call then, and an operator should not learn it from an agent. In
    /// the background, so that a slow resolver never holds up a start or a reload.
    fn warn_if_refused(&self, d: &Definition) {
        if !matches!(d.kind, ConnectorKind::Postgres | ConnectorKind::MySql) {
            return;
        }
        let (kind, dsn, name) = (d.kind, d.dsn.clone(), d.name.clone());
        let policy = self.settings.connection_hosts.clone();
        tokio::spawn(async move {
            if let Err(error @ sluice_connectors::ConnectorError::HostRefused(_)) =
                sluice_connectors::check_dsn(kind, &dsn, &policy).await
            {
                tracing::warn!(connection = %name, %error, "connection refused by [connection_hosts]");
            }
        });
    }

    pub fn get(&self, org_id: &str, name: &str) -> Option<Arc<Connection>> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(org_id.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every org's connections, by org and name (for the metrics).
    pub fn all(&self) -> Vec<Arc<Connection>> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The org's connections, sorted by name.
    pub fn list(&self, org_id: &str) -> Vec<Arc<Connection>> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|c| c.org_id == org_id)
            .cloned()
            .collect()
    }
}

/// Reloads connections when the store's connection revision changes (e.g. `sluice connection add`).
pub fn watch(
    registry: Arc<Registry>,
    store: Store,
    master: Arc<Keyring>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let mut seen = store.connection_revision().await.ok();
        let mut tick = tokio::time::interval(crate::store::REVISION_POLL);
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

fn config_definition(c: &ConnectionConfig) -> Result<Definition, GatewayError> {
    let kind = ConnectorKind::parse(&c.kind).ok_or_else(|| {
        GatewayError::Config(format!(
            "connection '{}': unsupported kind '{}' (supported: {})",
            c.name,
            c.kind,
            supported_kinds()
        ))
    })?;
    validate_name(&c.name)?;
    Ok(Definition {
        org_id: LOCAL_ORG.to_owned(),
        name: c.name.clone(),
        kind,
        dsn: c.dsn.clone(),
        description: c.description.clone(),
        source: Source::Config,
        max_rows: fold_policy_rows(c.max_rows, &c.policy),
        timeout: c.timeout_ms.map(Duration::from_millis),
        policy: c.policy.clone(),
        pool: sluice_connectors::PoolOptions::with_overrides(
            c.pool_size,
            c.pool_idle_timeout_ms.map(Duration::from_millis),
            c.pool_acquire_timeout_ms.map(Duration::from_millis),
        ),
    })
}

/// A policy may carry its own row maximum; it tightens the connection's (the smallest limit wins).
fn fold_policy_rows(max_rows: Option<u64>, policy: &Policy) -> Option<u64> {
    if policy.max_rows == Policy::default().max_rows {
        return max_rows;
    }
    Some(max_rows.map_or(policy.max_rows, |m| m.min(policy.max_rows)))
}

pub fn supported_kinds() -> String {
    ConnectorKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Connection names appear in tool calls and logs: keep them simple identifiers.
pub fn validate_name(name: &str) -> Result<(), GatewayError> {
    crate::config::check_name("connection", name)
}
