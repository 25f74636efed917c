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

    /// The engine rejected or failed the statement.
    #[error("{message}")]
    Query { message: String },

    /// The statement ran past its timeout and was interrupted on the engine.
    #[error("the query ran longer than {} ms and was cancelled; add filters or aggregate to make it cheaper", timeout.as_millis())]
    Timeout { timeout: Duration },

    /// The worker running the statement stopped unexpectedly.
    #[error("internal connector error: {0}")]
    Internal(String),
}
