//! Per-connection schema snapshots for the schema tools: introspected once, reused for a TTL, refreshed on
//! demand, and the previous snapshot kept so that `schema_diff` can say what changed.
//!
//! Introspection is the connector's fixed catalog SQL (a handful of statements for the whole schema); the
//! catalog (join graph, search index) is built from it once per snapshot, off the async threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_catalog::{Catalog, DocumentedKeys, Finding, SchemaSnapshot};
use sluice_connectors::ConnectorError;

use crate::registry::Connection;

/// One introspection of a connection and the catalog built from it.
pub struct Cached {
    pub catalog: Catalog,
    /// What building the catalog noticed (dangling keys, duplicates).
    pub findings: Vec<Finding>,
    /// Values sampled from the text columns for `schema_link`: read on its first call and kept as long as
    /// this snapshot, so they share its TTL and refresh; one sampling at a time.
    pub samples: tokio::sync::OnceCell<Arc<Sampled>>,
    /// What sampled values said about inferred joins (`find_join_path`), by join, for this snapshot's life:
    /// each join is checked once.
    pub join_values: Mutex<HashMap<String, JoinValues>>,
    fetched: Instant,
}

/// The snapshot's catalog with sampled column values in its search index, and what sampling left out.
pub struct Sampled {
    pub catalog: Catalog,
    /// Columns whose values are in the index.
    pub columns: usize,
    /// Text columns that were candidates for sampling.
    pub candidates: usize,
    /// What was skipped and why (budget, refusals, errors), phrased for the agent.
    pub notes: Vec<String>,
}

impl Cached {
    pub fn snapshot(&self) -> &SchemaSnapshot {
        self.catalog.snapshot()
    }

    /// Seconds since the snapshot was taken.
    pub fn age_secs(&self) -> u64 {
        self.fetched.elapsed().as_secs()
    }
}

/// How many of a sample of a join's referencing values were found on its key side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinValues {
    pub sampled: u64,
    pub found: u64,
}

/// What a lookup returns.
pub struct Lookup {
    pub current: Arc<Cached>,
    /// The snapshot this one replaced, if any (for `schema_diff`).
    pub previous: Option<Arc<Cached>>,
    /// True when this lookup introspected the connection (a miss, an expired entry or a refresh).
    pub introspected: bool,
}

struct Entry {
    /// The warehouse the snapshot came from: a connection redefined under the same name is a new one.
    warehouse: usize,
    current: Arc<Cached>,
    previous: Option<Arc<Cached>>,
}

/// A connection whose schema changed between two snapshots (MCP clients are told their resource list
/// changed: the overview and table resources read differently now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    pub org_id: String,
    pub connection: String,
}

/// Snapshots keyed by org and connection name.
pub struct SchemaCache {
    ttl: Duration,
    changes: tokio::sync::broadcast::Sender<Changed>,
    entries: Mutex<HashMap<Key, Entry>>,
    /// One introspection at a time per connection, so a burst of calls after expiry introspects once.
    fills: tokio::sync::Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// Org id and connection name.
type Key = (String, String);

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn warehouse_id(conn: &Connection) -> usize {
    conn.engine.id()
}

impl SchemaCache {
    pub fn new(ttl: Duration) -> SchemaCache {
        SchemaCache {
            ttl,
            // Receivers that fall this far behind miss changes, and are told so (`Lagged`).
            changes: tokio::sync::broadcast::channel(64).0,
            entries: Mutex::new(HashMap::new()),
            fills: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Every later schema change, as it is noticed (when a snapshot replaces one that differs from it).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Changed> {
        self.changes.subscribe()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // The map only holds Arcs; a panic elsewhere cannot leave it half-updated.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fresh entry for `conn`, if there is one.
    fn fresh(&self, key: &Key, conn: &Connection) -> Option<Lookup> {
        let entries = self.entries();
        let entry = entries.get(key)?;
        (entry.warehouse == warehouse_id(conn) && entry.current.fetched.elapsed() < self.ttl).then(|| {
            Lookup {
                current: Arc::clone(&entry.current),
                previous: entry.previous.clone(),
                introspected: false,
            }
        })
    }

    /// The connection's snapshot: the cached one while it is younger than the TTL, else (or when `refresh`
    /// is set) a new introspection, which becomes current while the old one is kept as `previous`.
    /// `documented` (the keys the connection's dbt projects test) is awaited only when introspecting, so
    /// documented keys refresh with the snapshot.
    pub async fn get(
        &self,
        conn: &Connection,
        refresh: bool,
        documented: impl std::future::Future<Output = Vec<DocumentedKeys>>,
    ) -> Result<Lookup, ConnectorError> {
        let key = (conn.org_id.clone(), conn.name.clone());
        if !refresh && let Some(hit) = self.fresh(&key, conn) {
            return Ok(hit);
        }
        let gate = {
            let mut fills = self.fills.lock().await;
            Arc::clone(fills.entry(key.clone()).or_default())
        };
        let _filling = gate.lock().await;
        // Another call may have introspected while this one waited.
        if !refresh && let Some(hit) = self.fresh(&key, conn) {
            return Ok(hit);
        }
        let started = Instant::now();
        let snapshot = conn.engine.snapshot().await?;
        crate::metrics::metrics()
            .introspection_seconds
            .observe(started.elapsed().as_secs_f64());
        let documented = documented.await;
        let (catalog, findings) =
            tokio::task::spawn_blocking(move || Catalog::build_documented(snapshot, &documented))
                .await
                .map_err(|e| ConnectorError::Internal(format!("building the schema catalog failed: {e}")))?;
        let current = Arc::new(Cached {
            catalog,
            findings,
            samples: tokio::sync::OnceCell::new(),
            join_values: Mutex::new(HashMap::new()),
            fetched: Instant::now(),
        });
        let warehouse = warehouse_id(conn);
        let previous = {
            let mut entries = self.entries();
            let previous = entries
                .remove(&key)
                .filter(|old| old.warehouse == warehouse)
                .map(|old| old.current);
            entries.insert(
                key.clone(),
                Entry {
                    warehouse,
                    current: Arc::clone(&current),
                    previous: previous.clone(),
                },
            );
            previous
        };
        if let Some(old) = &previous
            && !sluice_catalog::diff(old.snapshot(), current.snapshot()).is_empty()
        {
            // Nobody listening is not an error: no MCP session is open.
            let _ = self.changes.send(Changed {
                org_id: key.0,
                connection: key.1,
            });
        }
        Ok(Lookup {
            current,
            previous,
            introspected: true,
        })
    }
}
