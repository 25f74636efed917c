//! Connector errors, phrased so that an agent or an operator knows what to do next.

use std::path::PathBuf;
use std::time::Duration;

/// Why a connector call failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The database file does not exist.
    #[error("the DuckDB file {} does not exist; check the connection's dsn", path.display())]
    NotFound { path: PathBuf },

    /// Another process holds a conflicting lock (typically a dbt run writing the file).
    #[error(
        "the DuckDB file {} is locked by another process (a dbt run or another writer); retry when it finishes",
        path.display()
    )]
    Locked { path: PathBuf },

    /// The engine could not open the database.
    #[error("could not open {}: {message}", path.display())]
    Open { path: PathBuf, message: String },

    /// The DSN could not be read. The message never quotes the password.
    #[error("invalid dsn {dsn}: {message}")]
    InvalidDsn { dsn: String, message: String },

    /// The server could not be reached (refused, unknown host, no route, TLS failure, timed out).
    #[error(
        "could not reach {target}: {message}; check that the server is running and the host, port and TLS settings"
    )]
    Unreachable { target: String, message: String },

    /// The connection's host, or an address it resolved to, is one the host policy refuses.
    #[error("{0}")]
    HostRefused(#[from] crate::hosts::HostRefusal),

    /// The server refused the credentials.
    #[error("authentication failed for user '{user}' on {target}; check the connection's user and password")]
    Auth { target: String, user: String },

    /// The server has no database of that name (MySQL also says so when the user may not use it).
    #[error(
        "database '{database}' does not exist on {target} or this user may not use it; check the database name in the connection's dsn"
    )]
    UnknownDatabase { target: String, database: String },

    /// Every pooled connection stayed busy for the whole acquire timeout.
    #[error("all {size} connections to {target} are busy; retry shortly")]
    Busy { target: String, size: u32 },

    /// The engine rejected or failed the statement.
    #[error("{message}")]
    Query { message: String },

    /// The engine itself described the statement as one that returns no result columns (`SET`, `DO`,
    /// `CREATE TEMPORARY TABLE`, `ATTACH`, `SELECT … INTO @var`, …): not a read query, so it never runs.
    /// Such statements are what leave state behind on a pooled session for the next caller.
    #[error(
        "the {engine} engine itself reports that this statement returns no rows, so it was not run: only read \
         queries run here (SELECT, WITH, VALUES, and the engine's SHOW/DESCRIBE/EXPLAIN); send a query that returns rows"
    )]
    NotAQuery { engine: &'static str },

    /// The statement ran past its timeout and was interrupted on the engine.
    #[error("the query ran longer than {} ms and was cancelled; add filters or aggregate to make it cheaper", timeout.as_millis())]
    Timeout { timeout: Duration },

    /// The statement needed more memory than a DuckDB worker may use (its address-space limit, or DuckDB's
    /// own `max_memory` inside it).
    #[error(
        "memory limit: this statement needed more than the {limit} a DuckDB worker may use ([duckdb] \
         worker_memory); make it hold less at once (filter or aggregate earlier, avoid building huge strings, \
         lists or DISTINCT sets) or ask an operator to raise worker_memory. DuckDB said: {detail}"
    )]
    MemoryLimit { limit: String, detail: String },

    /// The DuckDB worker process running the call stopped before answering (killed, aborted, crashed).
    #[error(
        "the DuckDB worker stopped while running this statement ({how}){likely}; nothing else was affected, \
         and the next call gets a new worker"
    )]
    WorkerStopped { how: String, likely: String },

    /// The worker running the statement stopped unexpectedly.
    #[error("internal connector error: {0}")]
    Internal(String),
}
