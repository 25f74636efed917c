//! Warehouse connectors: one `Warehouse` trait and the engines behind it (DuckDB embedded; PostgreSQL,
//! MySQL/MariaDB and SQLite through `sqlx`).
//!
//! The gateway talks to every engine through [`Warehouse`], so it never cares which engine answers.
//! DuckDB's C++ build is confined to this crate.

mod cell;
mod dsn;
pub mod duckdb;
mod error;
pub mod hosts;
pub mod mysql;
mod open;
mod pool;
pub mod postgres;
mod result;
mod route;
mod schema;
pub mod sqlite;

use std::time::Duration;

pub use dsn::Dsn;
pub use error::ConnectorError;
pub use open::{open_pooled, open_pooled_or_report};
pub use pool::PoolOptions;
pub use result::{Cell, Column, QueryResult};
pub use route::check_dsn;
pub use schema::{ColumnInfo, ForeignKey, TableDetail, TableKind, TableRef, TableSummary};

// The engine kinds live with the rest of the dialect and engine knowledge (EXPLAIN form, capabilities).
pub use sluice_dialect::ConnectorKind;

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

    /// Everything about the connection's schemas the schema tools need (tables, views, columns, keys,
    /// foreign keys, indexes, row estimates), read with a few fixed catalog queries, never one per table.
    async fn snapshot(&self) -> Result<sluice_catalog::SchemaSnapshot, ConnectorError>;

    /// Checks that the warehouse can be reached and opened.
    async fn ping(&self) -> Result<(), ConnectorError>;

    /// The pool's sessions now, for engines that pool sessions to a server or file (for DuckDB, its
    /// worker processes), or `None` before a pool exists.
    fn pool_usage(&self) -> Option<PoolUsage> {
        None
    }
}

/// Pooled sessions of a connection at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    /// Sessions running a statement.
    pub in_use: u32,
    /// Open sessions waiting for one.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}
