//! The embedded DuckDB connector: every call runs in a worker process under a memory limit, and the file
//! is never held longer than needed.
//!
//! DuckDB's `max_memory` bounds its buffer manager only: strings, lists and aggregate states are allocated
//! outside it, so one statement could take the whole gateway with every session in it. Every DuckDB call
//! on a warehouse file therefore runs in a worker process (`worker`) that limits its own address space
//! (`[duckdb] worker_memory`) before opening the file; the gateway never opens a warehouse itself. Each
//! connection has a pool (`pool`) of at most `[duckdb] workers` processes, each running one call at a
//! time; further callers wait within their timeout. A statement that needs more memory fails with a
//! "memory limit" error, or at worst its worker dies and the next call gets a new one.
//!
//! DuckDB allows one writer *or* any number of readers per file across processes. Users' warehouses are
//! written by dbt, so Sluice must let go of the file between an agent's bursts of calls: workers are kept
//! while calls keep coming and ended once idle for `release_after_idle` (zero ends each after its call),
//! and a worker holds the file only while it lives. BENCHMARKS.md measures both choices.
//!
//! Inside a worker every statement runs on a connection made just for it and dropped right after (a
//! connection costs microseconds). DuckDB keeps temporary tables, views, macros, sequences, variables and
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
mod pool;
mod protocol;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use duckdb::Connection;

use pool::{Control, Pool};
use protocol::{Answer, Call};

pub use export::csv_to_parquet;
pub use pool::{WorkerProgram, human_bytes, parse_memory};

use crate::{
    ConnectorError, ConnectorKind, PoolUsage, QueryOptions, QueryResult, TableDetail, TableRef, TableSummary,
    Warehouse,
};

/// The default `[duckdb] workers`: worker processes per DuckDB connection.
pub const DEFAULT_WORKERS: usize = 2;
/// The default `[duckdb] worker_memory`: the address space one worker may use.
pub const DEFAULT_WORKER_MEMORY: u64 = 2 << 30;
/// The smallest `worker_memory` accepted: below this a worker cannot even map the binary, its threads and
/// DuckDB's catalog.
pub const MIN_WORKER_MEMORY: u64 = 256 << 20;

/// How a DuckDB connection behaves.
#[derive(Clone, Debug)]
pub struct DuckDbOptions {
    /// End the workers (and so release the file lock) after this much idle time; zero = after every call.
    pub release_after_idle: Duration,
    /// DuckDB threads per worker; `None`: the machine's cores shared among the workers, 1 to 8.
    pub threads: Option<u16>,
    /// DuckDB's buffer-manager cap per worker, in DuckDB's syntax (`"1GB"`); `None`: half of
    /// `worker_memory`, leaving the other half for what DuckDB allocates outside its buffer manager.
    pub max_memory: Option<String>,
    /// Worker processes per connection, each running one call at a time.
    pub workers: usize,
    /// The address space (`RLIMIT_AS`) one worker may use, in bytes.
    pub worker_memory: u64,
    /// The program a worker runs; `None`: [`WorkerProgram::locate`].
    pub worker_program: Option<WorkerProgram>,
}

impl Default for DuckDbOptions {
    fn default() -> Self {
        DuckDbOptions {
            release_after_idle: Duration::from_millis(1_000),
            threads: None,
            max_memory: None,
            workers: DEFAULT_WORKERS,
            worker_memory: DEFAULT_WORKER_MEMORY,
            worker_program: None,
        }
    }
}

/// A worker's DuckDB settings, applied in this order when it opens the file. Read-only at the engine, no
/// file or network access from SQL, no extension autoloading, and the settings locked last so that a
/// statement cannot turn them back on: the second wall behind governance.
fn settings(options: &DuckDbOptions) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = [
        // What the `duckdb` crate reports when it opens a database; kept so that nothing an agent can
        // read (`current_setting('duckdb_api')`) changed when the connector began opening it itself.
        ("duckdb_api", "rust"),
        ("access_mode", "READ_ONLY"),
        ("enable_external_access", "false"),
        ("autoinstall_known_extensions", "0"),
        ("autoload_known_extensions", "0"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    let threads = options
        .threads
        .unwrap_or_else(|| default_threads(options.workers));
    settings.push(("threads".to_owned(), threads.to_string()));
    let max_memory = match &options.max_memory {
        Some(memory) => memory.clone(),
        None => format!("{}MiB", (options.worker_memory / 2) >> 20),
    };
    settings.push(("max_memory".to_owned(), max_memory));
    settings.push(("lock_configuration".to_owned(), "true".to_owned()));
    settings
}

/// The most DuckDB threads a worker gets when `threads` is not set.
const MAX_DEFAULT_THREADS: usize = 8;

/// DuckDB threads per worker when `threads` is not set: the machine's cores shared among the connection's
/// workers (which run at once), at least 1 and at most [`MAX_DEFAULT_THREADS`]. DuckDB's own default, a
/// thread per core in every worker, oversubscribes the cores as soon as two workers run, and each thread
/// reserves its stack (about 8.6 MiB each, measured) inside the worker's address-space limit: 64 cores
/// would take some 550 MiB of a 2 GiB worker before a statement allocates anything. On 2 cores with 2
/// workers this is 1 thread, which was also the faster choice there for short reads and top-N joins (the
/// `duckdb_engine` bench).
fn default_threads(workers: usize) -> u16 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let share = (cores / workers.max(1)).clamp(1, MAX_DEFAULT_THREADS);
    u16::try_from(share).unwrap_or(1)
}

/// One DuckDB file, read by worker processes started on demand.
pub struct DuckDbWarehouse {
    pool: Arc<Pool>,
}

impl DuckDbWarehouse {
    /// A warehouse over `path`. Nothing is started until the first call. When called inside a tokio
    /// runtime with a non-zero idle period, a background task ends idle workers (releasing the file).
    pub fn new(path: impl Into<PathBuf>, options: DuckDbOptions) -> Self {
        let pool = Arc::new(Pool::new(path.into(), options));
        spawn_reaper(&pool);
        DuckDbWarehouse { pool }
    }

    /// The database file this warehouse reads.
    pub fn path(&self) -> &Path {
        &self.pool.path
    }

    /// Whether a worker (and therefore the file lock) is currently alive. For tests and diagnostics.
    pub fn is_open(&self) -> bool {
        self.pool.is_open()
    }

    /// The process ids of the live workers. For tests and diagnostics.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.pool.pids()
    }

    /// Runs one agent statement from the calling thread, without a timeout, on a worker exactly as
    /// `query` runs it: for benchmarks and tools that run outside tokio (`examples/duckdb_query_paths.rs`).
    pub fn query_blocking(&self, sql: &str, max_rows: usize) -> Result<QueryResult, ConnectorError> {
        let permit = loop {
            match Arc::clone(&self.pool.permits).try_acquire_owned() {
                Ok(permit) => break permit,
                Err(tokio::sync::TryAcquireError::NoPermits) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(tokio::sync::TryAcquireError::Closed) => {
                    return Err(ConnectorError::Internal("the worker pool is closed".to_owned()));
                }
            }
        };
        let call = Call::Query {
            sql: sql.to_owned(),
            max_rows,
        };
        let answer = self.pool.run(&call, &Control::default());
        drop(permit);
        rows(answer?)
    }

    /// Runs `call` on a worker: waits for a free one within `timeout`, interrupts the statement at the
    /// timeout (and kills the worker if it does not stop within [`INTERRUPT_GRACE`]), and kills it when
    /// the caller stops waiting (its call was cancelled: the future is dropped).
    async fn call(&self, call: Call, timeout: Duration) -> Result<Answer, ConnectorError> {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        let permit =
            match tokio::time::timeout_at(deadline, Arc::clone(&self.pool.permits).acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(ConnectorError::Internal("the worker pool is closed".to_owned())),
                Err(_) => {
                    return Err(ConnectorError::Busy {
                        target: self.pool.path.display().to_string(),
                        size: u32::try_from(self.pool.size()).unwrap_or(u32::MAX),
                    });
                }
            };
        let control = Arc::new(Control::default());
        let pool = Arc::clone(&self.pool);
        let task_control = Arc::clone(&control);
        let task = tokio::task::spawn_blocking(move || {
            let answer = pool.run(&call, &task_control);
            drop(permit);
            answer
        });
        // From here on, a dropped future kills the worker instead of leaving its statement running.
        let guard = KillOnDrop(Some(Arc::clone(&control)));
        tokio::pin!(task);
        let result = tokio::select! {
            joined = &mut task => joined.map_err(|e| ConnectorError::Internal(e.to_string()))?,
            () = tokio::time::sleep_until(deadline) => {
                // Wait for the interrupted statement so that its worker is free again before we answer.
                // DuckDB clears a connection's interrupt when a statement begins, so one that lands just
                // before the statement starts would be lost; the interrupt is repeated until the call is
                // over, and the worker is killed if it has not stopped within the grace.
                let kill_at = tokio::time::Instant::now() + INTERRUPT_GRACE;
                loop {
                    if tokio::time::Instant::now() >= kill_at {
                        control.kill();
                    } else {
                        control.interrupt();
                    }
                    tokio::select! {
                        _ = &mut task => break,
                        () = tokio::time::sleep(REINTERRUPT) => {}
                    }
                }
                Err(ConnectorError::Timeout { timeout })
            }
        };
        let mut guard = guard;
        guard.0 = None;
        result
    }
}

/// Kills the worker running a call whose caller stopped waiting (a cancelled call drops its future): the
/// statement stops at once, the file lock goes with the process, and the next call gets a new worker.
struct KillOnDrop(Option<Arc<Control>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(control) = self.0.take() {
            control.kill();
        }
    }
}

fn spawn_reaper(pool: &Arc<Pool>) {
    let idle = pool.options.release_after_idle;
    if idle.is_zero() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<Pool> = Arc::downgrade(pool);
    let tick = (idle / 4).max(Duration::from_millis(10));
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(pool) = weak.upgrade() else { return };
            if !pool.has_idle() {
                continue;
            }
            // Ending a worker waits for it to exit (so the file is free when it is no longer counted).
            let ending = Arc::clone(&pool);
            drop(pool);
            if let Err(e) = tokio::task::spawn_blocking(move || ending.end_idle(idle)).await {
                tracing::warn!(error = %e, "ending idle DuckDB workers failed");
            }
        }
    });
}

fn rows(answer: Answer) -> Result<QueryResult, ConnectorError> {
    match answer {
        Answer::Rows(result) => Ok(result),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(answer: &Answer) -> ConnectorError {
    let kind = match answer {
        Answer::Rows(_) => "rows",
        Answer::Tables(_) => "a table list",
        Answer::Table(_) => "a table",
        Answer::Snapshot(_) => "a snapshot",
        Answer::Pong => "a pong",
        Answer::Parquet(_) => "Parquet",
    };
    ConnectorError::Internal(format!(
        "the DuckDB worker answered with {kind}, not what was asked"
    ))
}

fn query_error(e: duckdb::Error) -> ConnectorError {
    query_message(e.to_string())
}

/// How an interrupted statement is reported.
const INTERRUPTED: &str = "the query was interrupted";

/// DuckDB's error message as the connector reports it.
fn query_message(message: String) -> ConnectorError {
    if message.contains("INTERRUPT") || message.contains("Interrupted") {
        return ConnectorError::Query {
            message: INTERRUPTED.to_owned(),
        };
    }
    ConnectorError::Query { message }
}

/// How often a timed-out statement's interrupt is repeated until it stops.
const REINTERRUPT: Duration = Duration::from_millis(25);
/// How long a timed-out statement gets to stop after its first interrupt before its worker is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// Introspection statements are fixed and small; they get a generous fixed budget.
const INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(30);

#[async_trait::async_trait]
impl Warehouse for DuckDbWarehouse {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::DuckDb
    }

    async fn query(&self, sql: &str, options: QueryOptions) -> Result<QueryResult, ConnectorError> {
        let call = Call::Query {
            sql: sql.to_owned(),
            max_rows: options.max_rows,
        };
        rows(self.call(call, options.timeout).await?)
    }

    async fn list_tables(&self) -> Result<Vec<TableSummary>, ConnectorError> {
        match self.call(Call::ListTables, INTROSPECTION_TIMEOUT).await? {
            Answer::Tables(tables) => Ok(tables),
            other => Err(unexpected(&other)),
        }
    }

    async fn describe_table(&self, table: &TableRef) -> Result<Option<TableDetail>, ConnectorError> {
        let call = Call::DescribeTable { table: table.clone() };
        match self.call(call, INTROSPECTION_TIMEOUT).await? {
            Answer::Table(table) => Ok(table),
            other => Err(unexpected(&other)),
        }
    }

    async fn snapshot(&self) -> Result<sluice_catalog::SchemaSnapshot, ConnectorError> {
        match self.call(Call::Snapshot, INTROSPECTION_TIMEOUT).await? {
            Answer::Snapshot(snapshot) => Ok(snapshot),
            other => Err(unexpected(&other)),
        }
    }

    async fn ping(&self) -> Result<(), ConnectorError> {
        match self.call(Call::Ping, INTROSPECTION_TIMEOUT).await? {
            Answer::Pong => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn pool_usage(&self) -> Option<PoolUsage> {
        Some(self.pool.usage())
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
