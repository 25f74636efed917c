//! Warehouse connectors: one `Warehouse` trait and the engines behind it (DuckDB embedded; PostgreSQL,
//! MySQL/MariaDB and SQLite through `sqlx`).
//!
//! The gateway talks to every engine through [`Warehouse`], so it never cares which engine answers.
//! DuckDB's C++ build is confined to this crate.

mod cell;
mod dsn;
pub mod duckdb;
mod error;
pub mod mysql;
mod open;
mod pool;
pub mod postgres;
mod result;
mod schema;
pub mod sqlite;

use std::time::Duration;

pub use dsn::Dsn;
pub use error::ConnectorError;
pub use open::{open_pooled, open_pooled_or_report};
pub use pool::PoolOptions;
pub use result::{Cell, Column, QueryResult};
pub use schema::{ColumnInfo, ForeignKey, TableDetail, TableKind, TableRef, TableSummary};

/// The engines Sluice can talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// DuckDB files opened read-only in-process.
    DuckDb,
    /// PostgreSQL servers (and wire-compatible ones), over a pool.
    Postgres,
    /// MySQL and MariaDB servers, over a pool; the flavour is detected from the server's version.
    MySql,
    /// SQLite files opened read-only.
    Sqlite,
}

impl ConnectorKind {
    /// Every kind this build supports, for `server_info` and the CLI.
    pub const ALL: &'static [ConnectorKind] = &[
        ConnectorKind::DuckDb,
        ConnectorKind::Postgres,
        ConnectorKind::MySql,
        ConnectorKind::Sqlite,
    ];

    /// The kind's stable name, as used in config files, the CLI and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::DuckDb => "duckdb",
            ConnectorKind::Postgres => "postgres",
            ConnectorKind::MySql => "mysql",
            ConnectorKind::Sqlite => "sqlite",
        }
    }

    /// Parses a kind name; `None` for kinds this build does not support.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "duckdb" => Some(ConnectorKind::DuckDb),
            "postgres" | "postgresql" => Some(ConnectorKind::Postgres),
            // MariaDB speaks the MySQL protocol; one connector serves both and tells them apart at run time.
            "mysql" | "mariadb" => Some(ConnectorKind::MySql),
            "sqlite" => Some(ConnectorKind::Sqlite),
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

    /// Everything about the connection's schemas the schema tools need (tables, views, columns, keys,
    /// foreign keys, indexes, row estimates), read with a few fixed catalog queries, never one per table.
    async fn snapshot(&self) -> Result<sluice_catalog::SchemaSnapshot, ConnectorError>;

    /// Checks that the warehouse can be reached and opened.
    async fn ping(&self) -> Result<(), ConnectorError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn kinds_parse_their_names_and_aliases() {
        for kind in ConnectorKind::ALL {
            assert_eq!(ConnectorKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(
            ConnectorKind::parse(" PostgreSQL "),
            Some(ConnectorKind::Postgres)
        );
        assert_eq!(ConnectorKind::parse("mariadb"), Some(ConnectorKind::MySql));
        assert_eq!(ConnectorKind::parse("sqlite3"), None);
        assert_eq!(ConnectorKind::parse("oracle"), None);
    }
}
