//! The embedded DuckDB connector: read-only, interruptible, and never holding the file lock longer than needed.
//!
//! DuckDB allows one writer *or* any number of readers per file across processes. Users' warehouses are
//! written by dbt, so Sluice must let go of the file between an agent's bursts of calls: an opened
//! read-only instance is reused while calls keep coming and closed once it has been idle for
//! `release_after_idle` (zero closes it after every call). BENCHMARKS.md measures both choices.
//!
//! Every statement runs on a connection cloned from the open instance just for it and dropped right after
//! (a clone costs microseconds). DuckDB keeps temporary tables, views, macros, sequences, variables and
//! prepared statements per connection, and even a read-only instance lets a statement create them; a fresh
//! connection per statement means none of that reaches the next statement, which may be another agent's
//! (a temporary table named like a real one would otherwise shadow it).

mod convert;
pub mod demo;
mod export;
mod introspect;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use duckdb::{AccessMode, Config, Connection};

pub use export::csv_to_parquet;

use crate::{
    Column, ConnectorError, ConnectorKind, QueryOptions, QueryResult, TableDetail, TableRef, TableSummary,
    Warehouse,
};

/// How a DuckDB connection behaves.
#[derive(Clone, Debug)]
pub struct DuckDbOptions {
    /// Close the instance (and release the file lock) after this much idle time; zero = after every call.
    pub release_after_idle: Duration,
    /// DuckDB worker threads per instance; `None` lets DuckDB decide.
    pub threads: Option<u16>,
    /// Memory cap per instance, in DuckDB's syntax (`"1GB"`); `None` leaves DuckDB's default.
    pub max_memory: Option<String>,
}

impl Default for DuckDbOptions {
    fn default() -> Self {
        DuckDbOptions {
            release_after_idle: Duration::from_millis(1_000),
            threads: None,
            max_memory: None,
        }
    }
}

/// One DuckDB file, opened read-only on demand.
pub struct DuckDbWarehouse {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    options: DuckDbOptions,
    holder: Mutex<Holder>,
}

/// The open instance, if any, and who is using it.
#[derive(Default)]
struct Holder {
    /// The instance's first connection; never handed out, only cloned (one clone per statement).
    /// Dropping it together with every clone closes the database and releases the file lock.
    root: Option<Connection>,
    /// Clones currently running a statement.
    in_use: usize,
    last_release: Option<Instant>,
}

impl Holder {
    fn close(&mut self) {
        self.root = None;
    }
}

fn lock(holder: &Mutex<Holder>) -> MutexGuard<'_, Holder> {
    // A panic while holding the lock cannot leave the holder inconsistent in a way that matters: the
    // worst case is an instance closed one idle period late.
    holder.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl DuckDbWarehouse {
    /// A warehouse over `path`. Nothing is opened until the first call. When called inside a tokio
    /// runtime with a non-zero idle period, a background task releases the file when idle.
    pub fn new(path: impl Into<PathBuf>, options: DuckDbOptions) -> Self {
        let inner = Arc::new(Inner {
            path: path.into(),
            options,
            holder: Mutex::new(Holder::default()),
        });
        spawn_reaper(&inner);
        DuckDbWarehouse { inner }
    }

    /// The database file this warehouse reads.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether an instance (and therefore the file lock) is currently held. For tests and diagnostics.
    pub fn is_open(&self) -> bool {
        lock(&self.inner.holder).root.is_some()
    }

    /// Runs `work` on a fresh connection on the blocking pool, interrupting it at the timeout.
    async fn with_connection<T, F>(&self, timeout: Duration, work: F) -> Result<T, ConnectorError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ConnectorError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::task::spawn_blocking(move || {
            let conn = inner.checkout()?;
            // Hand the interrupt handle out before running, so a timeout can stop this very statement.
            let _ = tx.send(conn.interrupt_handle());
            let result = work(&conn);
            inner.release(conn);
            result
        });
        tokio::pin!(task);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        tokio::select! {
            joined = &mut task => joined.map_err(|e| ConnectorError::Internal(e.to_string()))?,
            () = &mut deadline => {
                if let Ok(handle) = rx.await {
                    handle.interrupt();
                }
                // Wait for the interrupted statement so its connection is released before we answer.
                let _ = task.await;
                Err(ConnectorError::Timeout { timeout })
            }
        }
    }
}

fn spawn_reaper(inner: &Arc<Inner>) {
    let idle = inner.options.release_after_idle;
    if idle.is_zero() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let tick = (idle / 4).max(Duration::from_millis(10));
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            let mut guard = lock(&inner.holder);
            let expired = guard.last_release.is_some_and(|t| t.elapsed() >= idle);
            if guard.root.is_some() && guard.in_use == 0 && expired {
                guard.close();
                tracing::debug!(path = %inner.path.display(), "released idle DuckDB instance");
            }
        }
    });
}

impl Inner {
    fn config(&self) -> Result<Config, duckdb::Error> {
        // Read-only at the engine, no file or network access from SQL, and the settings locked so that a
        // statement cannot turn them back on: the second wall behind governance.
        let mut config = Config::default()
            .access_mode(AccessMode::ReadOnly)?
            .enable_external_access(false)?
            .enable_autoload_extension(false)?;
        if let Some(threads) = self.options.threads {
            config = config.threads(i64::from(threads))?;
        }
        if let Some(memory) = &self.options.max_memory {
            config = config.max_memory(memory)?;
        }
        config.with("lock_configuration", "true")
    }

    fn open(&self) -> Result<Connection, ConnectorError> {
        if !self.path.exists() {
            return Err(ConnectorError::NotFound {
                path: self.path.clone(),
            });
        }
        let config = self.config().map_err(|e| ConnectorError::Open {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        Connection::open_with_flags(&self.path, config).map_err(|e| {
            let message = e.to_string();
            if message.contains("Could not set lock") || message.contains("Conflicting lock") {
                ConnectorError::Locked {
                    path: self.path.clone(),
                }
            } else {
                ConnectorError::Open {
                    path: self.path.clone(),
                    message,
                }
            }
        })
    }

    /// A new connection to the open instance, opening it first when needed. Blocking. Never a reused
    /// one: whatever session state a statement created dies with its connection.
    fn checkout(&self) -> Result<Connection, ConnectorError> {
        let mut guard = lock(&self.holder);
        if guard.root.is_none() {
            guard.root = Some(self.open()?);
        }
        let conn = match &guard.root {
            Some(root) => root
                .try_clone()
                .map_err(|e| ConnectorError::Internal(e.to_string()))?,
            None => {
                return Err(ConnectorError::Internal(
                    "instance vanished while opening".to_owned(),
                ));
            }
        };
        guard.in_use += 1;
        Ok(conn)
    }

    /// Drops a statement's connection; closes the instance right away when the idle period is zero.
    fn release(&self, conn: Connection) {
        // Dropped before the lock is taken: closing a connection may take a moment, and nothing of it
        // is kept.
        drop(conn);
        let mut guard = lock(&self.holder);
        guard.in_use = guard.in_use.saturating_sub(1);
        guard.last_release = Some(Instant::now());
        if self.options.release_after_idle.is_zero() && guard.in_use == 0 {
            guard.close();
        }
    }
}

fn query_error(e: duckdb::Error) -> ConnectorError {
    let message = e.to_string();
    if message.contains("INTERRUPT") || message.contains("Interrupted") {
        return ConnectorError::Query {
            message: "the query was interrupted".to_owned(),
        };
    }
    ConnectorError::Query { message }
}

/// Runs one statement and reads at most `max_rows` rows (one more is peeked to know about truncation).
pub(crate) fn run_query(
    conn: &Connection,
    sql: &str,
    max_rows: usize,
) -> Result<QueryResult, ConnectorError> {
    let mut stmt = conn.prepare(sql).map_err(query_error)?;
    let mut rows = stmt.query([]).map_err(query_error)?;
    let columns: Vec<Column> = match rows.as_ref() {
        Some(stmt) => (0..stmt.column_count())
            .map(|i| Column {
                name: stmt
                    .column_name(i)
                    .cloned()
                    .unwrap_or_else(|_| format!("column{i}")),
                type_name: convert::type_name(&stmt.column_logical_type(i)),
            })
            .collect(),
        None => Vec::new(),
    };
    let with_zone: Vec<bool> = columns
        .iter()
        .map(|c| c.type_name == "TIMESTAMP WITH TIME ZONE")
        .collect();
    let is_json: Vec<bool> = columns.iter().map(|c| c.type_name == "JSON").collect();
    let mut out = Vec::new();
    let mut truncated = false;
    while let Some(row) = rows.next().map_err(query_error)? {
        if out.len() == max_rows {
            truncated = true;
            break;
        }
        let mut cells = Vec::with_capacity(columns.len());
        for (i, zoned) in with_zone.iter().enumerate() {
            let value = row.get_ref(i).map_err(query_error)?;
            cells.push(match value {
                // An instant, not a wall-clock reading: mark it UTC as the server engines do.
                duckdb::types::ValueRef::Timestamp(unit, v) if *zoned => convert::instant(unit, v),
                // DuckDB's JSON is VARCHAR underneath; agents get the parsed value, as from PostgreSQL.
                duckdb::types::ValueRef::Text(text) if is_json[i] => crate::cell::json(text),
                value => convert::cell(value),
            });
        }
        out.push(cells);
    }
    Ok(QueryResult {
        columns,
        rows: out,
        truncated,
    })
}

/// Introspection statements are fixed and small; they get a generous fixed budget.
const INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(30);

#[async_trait::async_trait]
impl Warehouse for DuckDbWarehouse {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::DuckDb
    }

    async fn query(&self, sql: &str, options: QueryOptions) -> Result<QueryResult, ConnectorError> {
        let sql = sql.to_owned();
        let max_rows = options.max_rows;
        self.with_connection(options.timeout, move |conn| run_query(conn, &sql, max_rows))
            .await
    }

    async fn list_tables(&self) -> Result<Vec<TableSummary>, ConnectorError> {
        self.with_connection(INTROSPECTION_TIMEOUT, introspect::list_tables)
            .await
    }

    async fn describe_table(&self, table: &TableRef) -> Result<Option<TableDetail>, ConnectorError> {
        let table = table.clone();
        self.with_connection(INTROSPECTION_TIMEOUT, move |conn| {
            introspect::describe_table(conn, &table)
        })
        .await
    }

    async fn snapshot(&self) -> Result<sluice_catalog::SchemaSnapshot, ConnectorError> {
        self.with_connection(INTROSPECTION_TIMEOUT, introspect::snapshot)
            .await
    }

    async fn ping(&self) -> Result<(), ConnectorError> {
        self.with_connection(INTROSPECTION_TIMEOUT, |conn| {
            conn.execute_batch("SELECT 1").map_err(query_error)
        })
        .await
    }
}

/// The linked DuckDB engine's version, e.g. `DuckDB v2.0.0`.
pub fn engine_version() -> String {
    let version = Connection::open_in_memory().and_then(|c| {
        c.query_row("SELECT library_version FROM pragma_version()", [], |row| {
            row.get::<_, String>(0)
        })
    });
    match version {
        Ok(v) => format!("DuckDB {v}"),
        Err(_) => "DuckDB (version unknown)".to_owned(),
    }
}
