//! Warehouse connectors: one `Warehouse` trait and the engines behind it (DuckDB embedded today).
//!
//! The gateway talks to every engine through [`Warehouse`], so it never cares which engine answers.
//! DuckDB's C++ build is confined to this crate.

pub mod duckdb;
mod error;
mod result;
mod schema;

use std::time::Duration;

pub use error::ConnectorError;
pub use result::{Cell, Column, QueryResult};
pub use schema::{ColumnInfo, ForeignKey, TableDetail, TableKind, TableRef, TableSummary};

/// The engines Sluice can talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// DuckDB files opened read-only in-process.
    DuckDb,
}

impl ConnectorKind {
    /// Every kind this build supports, for `server_info` and the CLI.
    pub const ALL: &'static [ConnectorKind] = &[ConnectorKind::DuckDb];

    /// The kind's stable name, as used in config files, the CLI and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::DuckDb => "duckdb",
        }
    }

    /// Parses a kind name; `None` for kinds this build does not support.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "duckdb" => Some(ConnectorKind::DuckDb),
            _ => None,
        }
    }
}

impl std::fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-query limits the caller has already decided (the smallest of tool, policy and connection limits).
#[derive(Clone, Copy, Debug)]
pub struct QueryOptions {
    /// The most rows to read; reading stops there and the result is marked truncated.
    pub max_rows: usize,
    /// Wall-clock budget; the engine is interrupted when it runs out.
    pub timeout: Duration,
}

/// A warehouse the gateway can query. Implementations run every statement read-only at the engine
/// (the second wall behind governance) and enforce the timeout on the engine side.
#[async_trait::async_trait]
pub trait Warehouse: Send + Sync + 'static {
    /// Which engine this is.
    fn kind(&self) -> ConnectorKind;

    /// Runs one governed statement.
    async fn query(&self, sql: &str, options: QueryOptions) -> Result<QueryResult, ConnectorError>;

    /// Tables and views visible on this connection.
    async fn list_tables(&self) -> Result<Vec<TableSummary>, ConnectorError>;

    /// Columns, keys and size of one table; `Ok(None)` when no table has that name.
    async fn describe_table(&self, table: &TableRef) -> Result<Option<TableDetail>, ConnectorError>;

    /// Checks that the warehouse can be reached and opened.
    async fn ping(&self) -> Result<(), ConnectorError>;
}
