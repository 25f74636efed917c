//! Building a pooled warehouse from a kind and a DSN, for callers that hold connections by kind.

use std::sync::Arc;

use crate::mysql::MySqlWarehouse;
use crate::postgres::PostgresWarehouse;
use crate::sqlite::SqliteWarehouse;
use crate::{
    ConnectorError, ConnectorKind, Dsn, PoolOptions, QueryOptions, QueryResult, TableDetail, TableRef,
    TableSummary, Warehouse,
};

/// Opens a PostgreSQL, MySQL/MariaDB or SQLite warehouse (lazily: nothing connects until the first call).
/// DuckDB has its own options and constructor, [`crate::duckdb::DuckDbWarehouse::new`]. Must be called
/// inside a tokio runtime.
pub fn open_pooled(
    kind: ConnectorKind,
    dsn: impl Into<Dsn>,
    pool: PoolOptions,
) -> Result<Arc<dyn Warehouse>, ConnectorError> {
    let dsn = dsn.into();
    Ok(match kind {
        ConnectorKind::Postgres => Arc::new(PostgresWarehouse::new(dsn, pool)?),
        ConnectorKind::MySql => Arc::new(MySqlWarehouse::new(dsn, pool)?),
        ConnectorKind::Sqlite => Arc::new(SqliteWarehouse::new(dsn, pool)?),
        ConnectorKind::DuckDb => {
            return Err(ConnectorError::Internal(
                "DuckDB connections are opened with DuckDbWarehouse::new".to_owned(),
            ));
        }
    })
}

/// Like [`open_pooled`], but a DSN that cannot be read yields a warehouse that reports the problem on
/// every call, so that one bad connection neither stops the others from loading nor disappears silently.
pub fn open_pooled_or_report(
    kind: ConnectorKind,
    dsn: impl Into<Dsn>,
    pool: PoolOptions,
) -> Arc<dyn Warehouse> {
    let dsn = dsn.into();
    match open_pooled(kind, dsn.clone(), pool) {
        Ok(warehouse) => warehouse,
        Err(error) => {
            tracing::warn!(%kind, %dsn, %error, "connection cannot be opened");
            Arc::new(Misconfigured {
                kind,
                message: error.to_string(),
            })
        }
    }
}

/// A connection whose definition is unusable; every call says why.
struct Misconfigured {
    kind: ConnectorKind,
    message: String,
}

impl Misconfigured {
    fn error(&self) -> ConnectorError {
        ConnectorError::Internal(self.message.clone())
    }
}

#[async_trait::async_trait]
impl Warehouse for Misconfigured {
    fn kind(&self) -> ConnectorKind {
        self.kind
    }

    async fn query(&self, _sql: &str, _options: QueryOptions) -> Result<QueryResult, ConnectorError> {
        Err(self.error())
    }

    async fn list_tables(&self) -> Result<Vec<TableSummary>, ConnectorError> {
        Err(self.error())
    }

    async fn describe_table(&self, _table: &TableRef) -> Result<Option<TableDetail>, ConnectorError> {
        Err(self.error())
    }

    async fn snapshot(&self) -> Result<sluice_catalog::SchemaSnapshot, ConnectorError> {
        Err(self.error())
    }

    async fn ping(&self) -> Result<(), ConnectorError> {
        Err(self.error())
    }
}
