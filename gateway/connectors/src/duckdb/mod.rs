//! The embedded DuckDB connector: read-only, interruptible, and never holding the file lock longer than needed.
//!
//! DuckDB allows one writer *or* any number of readers per file across processes. Users' warehouses are
//! written by dbt, so Sluice must let go of the file between an agent's bursts of calls: an opened
//! read-only instance is reused while calls keep coming and closed once it has been idle for
//! `release_after_idle` (zero closes it after every call). BENCHMARKS.md measures both choices.
//!
//! Every statement runs on a connection made on the open instance just for it and dropped right after
//! (a connection costs microseconds). DuckDB keeps temporary tables, views, macros, sequences, variables and
//! prepared statements per connection, and even a read-only instance lets a statement create them; a fresh
//! connection per statement means none of that reaches the next statement, which may be another agent's
//! (a temporary table named like a real one would otherwise shadow it).
//!
//! Agent statements go through DuckDB's C API (`oneshot`), which plans them once and refuses text of more
//! than one statement; the gateway's fixed introspection SQL uses the `duckdb` crate's `Connection`.

mod convert;
pub mod demo;
mod export;
mod introspect;
mod oneshot;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use duckdb::Connection;

use oneshot::{Database, Interrupter};

pub use export::csv_to_parquet;

use crate::{
    ConnectorError, ConnectorKind, QueryOptions, QueryResult, TableDetail, TableRef, TableSummary, Warehouse,
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
    /// The open instance; every statement's connection is made on it and holds it while it lives.
    /// Dropping this together with every such holder closes the database and releases the file lock.
    root: Option<Arc<Database>>,
    /// Connections currently running a statement.
    in_use: usize,
    last_release: Option<Instant>,
}

impl Holder {
    fn close(&mut self) {
        self.root = None;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the holder inconsistent in a way that matters (the
    // worst case is an instance closed one idle period late), nor a stopper slot.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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

    /// Runs one agent statement on the calling thread, without a timeout, exactly as `query` runs it on
    /// the blocking pool: for benchmarks and tools that run outside tokio (`examples/duckdb_query_paths.rs`).
    pub fn query_blocking(&self, sql: &str, max_rows: usize) -> Result<QueryResult, ConnectorError> {
        let db = self.inner.checkout()?;
        let result = db
            .session()
            .and_then(|session| oneshot::run(&session, sql, max_rows));
        self.inner.release(db);
        result
    }

    /// Runs `work` on the open instance on the blocking pool, interrupting its statement at the timeout,
    /// or when the caller stops waiting (its call was cancelled: the future is dropped). `work` makes its
    /// connection and hands its interrupter out before running anything.
    async fn on_instance<T, F>(&self, timeout: Duration, work: F) -> Result<T, ConnectorError>
    where
        T: Send + 'static,
        F: FnOnce(&Database, Arm) -> Result<T, ConnectorError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let watch = Arc::new(Watch::default());
        let arm = Arm(Arc::clone(&watch));
        let ended = Arc::clone(&watch);
        let task = tokio::task::spawn_blocking(move || {
            let db = inner.checkout()?;
            let result = work(&db, arm);
            inner.release(db);
            ended.done.store(true, Ordering::SeqCst);
            result
        });
        // From here on, a dropped future stops the statement instead of leaving it running.
        let guard = StopOnDrop(Arc::clone(&watch));
        tokio::pin!(task);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let result = tokio::select! {
            joined = &mut task => joined.map_err(|e| ConnectorError::Internal(e.to_string()))?,
            () = &mut deadline => {
                // Wait for the interrupted statement so its connection is released before we answer.
                // DuckDB clears a connection's interrupt when a statement begins, so one that lands just
                // before the statement starts would be lost and the statement would run to its end; the
                // interrupt is repeated until the work is over (a no-op once it is).
                loop {
                    watch.interrupt();
                    tokio::select! {
                        _ = &mut task => break,
                        () = tokio::time::sleep(REINTERRUPT) => {}
                    }
                }
                Err(ConnectorError::Timeout { timeout })
            }
        };
        drop(guard);
        result
    }

    /// Runs `work` on a fresh crate `Connection` (the introspection paths), interrupting it at the timeout.
    async fn with_connection<T, F>(&self, timeout: Duration, work: F) -> Result<T, ConnectorError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ConnectorError> + Send + 'static,
    {
        self.on_instance(timeout, move |db, arm| {
            let conn = db.connection()?;
            arm.set(Stopper::Crate(conn.interrupt_handle()));
            work(&conn)
        })
        .await
    }
}

/// What a timeout uses to stop the running statement: either connection kind's interrupt handle, each
/// a no-op once its connection is gone.
enum Stopper {
    Crate(Arc<duckdb::InterruptHandle>),
    Raw(Arc<Interrupter>),
}

impl Stopper {
    fn interrupt(&self) {
        match self {
            Stopper::Crate(handle) => handle.interrupt(),
            Stopper::Raw(handle) => handle.interrupt(),
        }
    }
}

/// A statement's stopper, once its work has made its connection, and whether the work is over.
#[derive(Default)]
struct Watch {
    stopper: Mutex<Option<Stopper>>,
    done: AtomicBool,
}

impl Watch {
    /// Interrupts the statement, if it has begun (a no-op once its connection is gone).
    fn interrupt(&self) {
        if let Some(stopper) = lock(&self.stopper).as_ref() {
            stopper.interrupt();
        }
    }
}

/// Where a statement's work hands out its stopper, before it runs anything.
struct Arm(Arc<Watch>);

impl Arm {
    fn set(self, stopper: Stopper) {
        *lock(&self.0.stopper) = Some(stopper);
    }
}

/// Stops the statement when the caller stops waiting for it (a cancelled call drops its future). The
/// interrupts come from a thread of their own, repeated until the work is over (see `on_instance`) and for
/// at most [`CANCEL_GRACE`]: a process that is exiting runs no more tasks, but it waits for the blocking
/// pool, so the statement must end without help from the runtime.
struct StopOnDrop(Arc<Watch>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.0.done.load(Ordering::SeqCst) {
            return;
        }
        self.0.interrupt();
        let watch = Arc::clone(&self.0);
        let spawned = std::thread::Builder::new()
            .name("duckdb-cancel".to_owned())
            .spawn(move || {
                let started = std::time::Instant::now();
                while !watch.done.load(Ordering::SeqCst) && started.elapsed() < CANCEL_GRACE {
                    watch.interrupt();
                    std::thread::sleep(REINTERRUPT);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the thread that stops a cancelled DuckDB statement");
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
    /// The instance's settings, applied in this order. Read-only at the engine, no file or network access
    /// from SQL, no extension autoloading, and the settings locked last so that a statement cannot turn
    /// them back on: the second wall behind governance.
    fn settings(&self) -> Vec<(&'static str, String)> {
        let mut settings = vec![
            // What the `duckdb` crate reports when it opens a database; kept so that nothing an agent can
            // read (`current_setting('duckdb_api')`) changed when the connector began opening it itself.
            ("duckdb_api", "rust".to_owned()),
            ("access_mode", "READ_ONLY".to_owned()),
            ("enable_external_access", "false".to_owned()),
            ("autoinstall_known_extensions", "0".to_owned()),
            ("autoload_known_extensions", "0".to_owned()),
        ];
        if let Some(threads) = self.options.threads {
            settings.push(("threads", threads.to_string()));
        }
        if let Some(memory) = &self.options.max_memory {
            settings.push(("max_memory", memory.clone()));
        }
        settings.push(("lock_configuration", "true".to_owned()));
        settings
    }

    fn open(&self) -> Result<Database, ConnectorError> {
        if !self.path.exists() {
            return Err(ConnectorError::NotFound {
                path: self.path.clone(),
            });
        }
        Database::open(&self.path, &self.settings()).map_err(|message| {
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

    /// The open instance, opening it first when needed, for one statement. Blocking. The statement makes
    /// a connection of its own on it: whatever session state a statement created dies with it.
    fn checkout(&self) -> Result<Arc<Database>, ConnectorError> {
        let mut guard = lock(&self.holder);
        let db = match &guard.root {
            Some(db) => Arc::clone(db),
            None => {
                let db = Arc::new(self.open()?);
                guard.root = Some(Arc::clone(&db));
                db
            }
        };
        guard.in_use += 1;
        Ok(db)
    }

    /// Gives back a statement's hold on the instance (its connection is already gone); closes the
    /// instance right away when the idle period is zero.
    fn release(&self, db: Arc<Database>) {
        // Dropped before the lock is taken: when the instance was closed meanwhile, closing it may take a
        // moment, and nothing of it is kept.
        drop(db);
        let mut guard = lock(&self.holder);
        guard.in_use = guard.in_use.saturating_sub(1);
        guard.last_release = Some(Instant::now());
        if self.options.release_after_idle.is_zero() && guard.in_use == 0 {
            guard.close();
        }
    }
}

fn query_error(e: duckdb::Error) -> ConnectorError {
    query_message(e.to_string())
}

/// DuckDB's error message as the connector reports it.
fn query_message(message: String) -> ConnectorError {
    if message.contains("INTERRUPT") || message.contains("Interrupted") {
        return ConnectorError::Query {
            message: "the query was interrupted".to_owned(),
        };
    }
    ConnectorError::Query { message }
}

/// How often a timed-out statement's interrupt is repeated until it stops.
const REINTERRUPT: Duration = Duration::from_millis(25);
/// How long a cancelled statement's interrupt is repeated at most (it stops within milliseconds).
const CANCEL_GRACE: Duration = Duration::from_secs(30);

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
        self.on_instance(options.timeout, move |db, arm| {
            let session = db.session()?;
            arm.set(Stopper::Raw(session.interrupter()));
            oneshot::run(&session, &sql, max_rows)
        })
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

/// DuckDB's own parse tree of `sql`, as `json_serialize_sql` gives it (JSON text: `{"error": false,
/// "statements": [...]}`, or `{"error": true, "error_type": …, "error_message": …}`). Only parsing: the
/// statement is never bound or run, on a private in-memory database with external access off, shared by
/// the process behind a lock (a parse takes well under a millisecond).
pub fn parse_tree(sql: &str) -> Result<String, ConnectorError> {
    static PARSER: std::sync::OnceLock<Result<std::sync::Mutex<Connection>, String>> =
        std::sync::OnceLock::new();
    let parser = PARSER.get_or_init(|| {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        conn.execute_batch(
            "SET enable_external_access = false; SET autoload_known_extensions = false; \
             SET autoinstall_known_extensions = false; SET lock_configuration = true;",
        )
        .map_err(|e| e.to_string())?;
        Ok(std::sync::Mutex::new(conn))
    });
    let parser = parser
        .as_ref()
        .map_err(|e| ConnectorError::Internal(format!("DuckDB's parser could not be opened: {e}")))?;
    let conn = parser.lock().unwrap_or_else(|p| p.into_inner());
    conn.query_row("SELECT json_serialize_sql(?)", [sql], |row| {
        row.get::<_, String>(0)
    })
    .map_err(|e| ConnectorError::Internal(format!("DuckDB's parser failed: {e}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held.duckdb");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t AS SELECT 1 AS x")
            .unwrap();
        (dir, path)
    }

    /// The instance the connector opens itself is let go as before: after every statement with a zero
    /// idle period, and by the reaper after the idle period otherwise, whichever path ran.
    #[tokio::test]
    async fn the_instance_is_closed_when_idle() {
        let (_dir, path) = file();
        let now = DuckDbWarehouse::new(
            &path,
            DuckDbOptions {
                release_after_idle: Duration::ZERO,
                ..DuckDbOptions::default()
            },
        );
        let result = now.query_blocking("SELECT x FROM t", 10).unwrap();
        assert_eq!(result.rows, vec![vec![serde_json::json!(1)]]);
        assert!(!now.is_open());
        let options = QueryOptions {
            max_rows: 10,
            timeout: Duration::from_secs(5),
        };
        now.query("SELECT x FROM t", options).await.unwrap();
        assert!(!now.is_open());
        assert_eq!(now.list_tables().await.unwrap().len(), 1);
        assert!(!now.is_open());

        let later = DuckDbWarehouse::new(
            &path,
            DuckDbOptions {
                release_after_idle: Duration::from_millis(100),
                ..DuckDbOptions::default()
            },
        );
        later.query("SELECT x FROM t", options).await.unwrap();
        assert!(later.is_open());
        let deadline = Instant::now() + Duration::from_secs(5);
        while later.is_open() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!later.is_open(), "the idle instance was never closed");
        // Closed for real: a writer can take the file (DuckDB refuses a second instance of a file that
        // is still open in this process).
        let writer = Connection::open(&path).unwrap();
        writer.execute_batch("INSERT INTO t VALUES (2)").unwrap();
    }

    /// However early the timeout fires (before the statement has even begun), the statement stops.
    #[tokio::test]
    async fn a_timeout_stops_the_statement_however_early_it_fires() {
        let (_dir, path) = file();
        let w = DuckDbWarehouse::new(&path, DuckDbOptions::default());
        let slow = "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b";
        for micros in [1, 50, 200, 1_000, 5_000] {
            let options = QueryOptions {
                max_rows: 10,
                timeout: Duration::from_micros(micros),
            };
            let started = Instant::now();
            let error = w.query(slow, options).await.unwrap_err();
            assert!(matches!(error, ConnectorError::Timeout { .. }), "{error:?}");
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{micros} us: {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn a_missing_or_unreadable_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let missing = DuckDbWarehouse::new(dir.path().join("nope.duckdb"), DuckDbOptions::default());
        let error = missing.query_blocking("SELECT 1", 1).unwrap_err();
        assert!(matches!(error, ConnectorError::NotFound { .. }), "{error:?}");
        let garbage = dir.path().join("garbage.duckdb");
        std::fs::write(&garbage, b"not a database").unwrap();
        let error = DuckDbWarehouse::new(&garbage, DuckDbOptions::default())
            .query_blocking("SELECT 1", 1)
            .unwrap_err();
        assert!(matches!(error, ConnectorError::Open { .. }), "{error:?}");
    }
}
