//! The PostgreSQL connector: a bounded sqlx pool, every statement in its own read-only transaction with a
//! server-side statement timeout.
//!
//! The second wall is set twice: the session starts with `default_transaction_read_only=on` (a startup
//! parameter, so even a statement that escaped its transaction could not write) and each call runs inside
//! `BEGIN READ ONLY` with `SET LOCAL statement_timeout`, which makes the server itself cancel a statement
//! past its budget. Agent SQL goes through the extended protocol, which runs exactly one statement.

mod convert;
mod introspect;

use std::str::FromStr as _;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgRow, PgTypeKind, Postgres};
use sqlx::{Column as _, Executor as _, Row as _, TypeInfo as _, ValueRef as _};

use crate::pool::{Pooled, Refusal, Target, finish};
use crate::{
    Column, ConnectorError, ConnectorKind, Dsn, PoolOptions, QueryOptions, QueryResult, TableDetail,
    TableRef, TableSummary, Warehouse,
};

/// The client gives the server this long past the statement timeout before it gives up on the
/// connection itself (a network stall, a server that ignores the cancel).
const CLIENT_GRACE: Duration = Duration::from_secs(2);

/// Introspection statements are fixed and small; they get a generous fixed budget.
const INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// A PostgreSQL database reached through a pool.
pub struct PostgresWarehouse {
    pool: Pooled<Postgres>,
}

impl std::fmt::Debug for PostgresWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresWarehouse")
            .field("dsn", self.pool.dsn())
            .finish_non_exhaustive()
    }
}

impl PostgresWarehouse {
    /// A warehouse for `dsn` (`postgres://user:pass@host:port/db?sslmode=…`). Nothing is connected until
    /// the first call; must be called inside a tokio runtime (the pool runs a reaper task).
    pub fn new(dsn: impl Into<Dsn>, pool: PoolOptions) -> Result<Self, ConnectorError> {
        let dsn = dsn.into();
        // Reject a malformed URL with a message that shows only the redacted form.
        dsn.url()?;
        let connect = PgConnectOptions::from_str(dsn.expose())
            .map_err(|e| ConnectorError::InvalidDsn {
                dsn: dsn.to_string(),
                message: dsn.scrub(&e.to_string()),
            })?
            .application_name("sluice")
            .options([("default_transaction_read_only", "on")])
            // Agent statements are never cached (they run unnamed); this bounds the fixed catalog ones.
            .statement_cache_capacity(32);
        let target = Target::Server {
            user: connect.get_username().to_owned(),
            database: connect
                .get_database()
                .unwrap_or(connect.get_username())
                .to_owned(),
            classify,
        };
        Ok(PostgresWarehouse {
            pool: Pooled::new(dsn, connect, &pool, target, |options| options),
        })
    }

    /// The DSN this warehouse connects with (redacted when printed).
    pub fn dsn(&self) -> &Dsn {
        self.pool.dsn()
    }

    /// Takes a pooled connection and opens a read-only transaction on it whose statements the server
    /// cancels after `timeout`.
    async fn begin(&self, timeout: Duration) -> Result<PoolConnection<Postgres>, ConnectorError> {
        let mut conn = self.pool.acquire().await?;
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
        // The timeout is a literal formatted from an integer: SET takes no bind parameters.
        // The trailing SELECT takes the transaction's snapshot, after which no statement can switch it
        // back with `SET TRANSACTION READ WRITE`.
        let begin = format!("BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = {ms}; SELECT 1");
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(begin))
            .execute(&mut *conn)
            .await
        {
            conn.close_on_drop();
            return Err(query_error(e, timeout));
        }
        Ok(conn)
    }
}

fn classify(error: &dyn sqlx::error::DatabaseError) -> Refusal {
    match error.code().as_deref() {
        // invalid_password, invalid_authorization_specification
        Some("28P01" | "28000") => Refusal::Auth,
        // invalid_catalog_name
        Some("3D000") => Refusal::UnknownDatabase,
        _ => Refusal::Other,
    }
}

fn query_error(error: sqlx::Error, timeout: Duration) -> ConnectorError {
    match &error {
        // query_canceled: statement_timeout fired on the server.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("57014") => {
            ConnectorError::Timeout { timeout }
        }
        sqlx::Error::Database(db) => ConnectorError::Query {
            message: db.message().to_owned(),
        },
        _ => ConnectorError::Query {
            message: error.to_string(),
        },
    }
}

/// How to read one result column.
#[derive(Clone, Copy)]
enum Reader {
    Scalar(u32),
    Array,
}

fn reader(info: &sqlx::postgres::PgTypeInfo) -> Reader {
    let mut info = info.clone();
    // Domains travel in their base type's binary form.
    while let PgTypeKind::Domain(base) = info.kind() {
        info = base.clone();
    }
    if matches!(info.kind(), PgTypeKind::Array(_)) || info.name().ends_with("[]") {
        return Reader::Array;
    }
    Reader::Scalar(info.oid().map(|o| o.0).unwrap_or(convert::oid::UNKNOWN))
}

fn columns_of(columns: &[sqlx::postgres::PgColumn]) -> (Vec<Column>, Vec<Reader>) {
    columns
        .iter()
        .map(|c| {
            (
                Column {
                    name: c.name().to_owned(),
                    type_name: convert::type_name(c.type_info().name()),
                },
                reader(c.type_info()),
            )
        })
        .unzip()
}

fn row_cells(row: &PgRow, readers: &[Reader]) -> Result<Vec<crate::Cell>, sqlx::Error> {
    let mut cells = Vec::with_capacity(readers.len());
    for (i, reader) in readers.iter().enumerate() {
        let value = row.try_get_raw(i)?;
        if value.is_null() {
            cells.push(serde_json::Value::Null);
            continue;
        }
        let bytes = value.as_bytes().map_err(sqlx::Error::Decode)?;
        cells.push(match reader {
            Reader::Scalar(oid) => convert::cell(*oid, bytes),
            Reader::Array => convert::array(bytes).unwrap_or_else(|| crate::cell::blob(bytes)),
        });
    }
    Ok(cells)
}

/// Runs one statement, reading at most `max_rows` rows and one more to know about truncation.
async fn fetch(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    max_rows: usize,
) -> Result<QueryResult, sqlx::Error> {
    let mut columns = None;
    let mut rows = Vec::new();
    let mut truncated = false;
    {
        let mut stream = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .fetch(&mut *conn);
        while let Some(row) = stream.try_next().await? {
            let (_, readers) = columns.get_or_insert_with(|| columns_of(row.columns()));
            if rows.len() == max_rows {
                truncated = true;
                break;
            }
            rows.push(row_cells(&row, readers)?);
        }
    }
    let columns = match columns {
        Some((cols, _)) => cols,
        // No row came back, so no row description either: ask the server to describe the statement.
        None => {
            let statement = conn
                .prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql)))
                .await?;
            columns_of(sqlx::Statement::columns(&statement)).0
        }
    };
    Ok(QueryResult {
        columns,
        rows,
        truncated,
    })
}

#[async_trait::async_trait]
impl Warehouse for PostgresWarehouse {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Postgres
    }

    async fn query(&self, sql: &str, options: QueryOptions) -> Result<QueryResult, ConnectorError> {
        let mut conn = self.begin(options.timeout).await?;
        let outcome = tokio::time::timeout(
            options.timeout + CLIENT_GRACE,
            fetch(&mut conn, sql, options.max_rows),
        )
        .await;
        finish(conn, outcome, options.timeout, query_error, async {}).await
    }

    async fn list_tables(&self) -> Result<Vec<TableSummary>, ConnectorError> {
        let mut conn = self.begin(INTROSPECTION_TIMEOUT).await?;
        let outcome = tokio::time::timeout(INTROSPECTION_TIMEOUT, introspect::list_tables(&mut conn)).await;
        finish(conn, outcome, INTROSPECTION_TIMEOUT, query_error, async {}).await
    }

    async fn describe_table(&self, table: &TableRef) -> Result<Option<TableDetail>, ConnectorError> {
        let mut conn = self.begin(INTROSPECTION_TIMEOUT).await?;
        let outcome = tokio::time::timeout(
            INTROSPECTION_TIMEOUT,
            introspect::describe_table(&mut conn, table),
        )
        .await;
        finish(conn, outcome, INTROSPECTION_TIMEOUT, query_error, async {}).await
    }

    async fn snapshot(&self) -> Result<sluice_catalog::SchemaSnapshot, ConnectorError> {
        let mut conn = self.begin(INTROSPECTION_TIMEOUT).await?;
        let outcome = tokio::time::timeout(INTROSPECTION_TIMEOUT, introspect::snapshot(&mut conn)).await;
        finish(conn, outcome, INTROSPECTION_TIMEOUT, query_error, async {}).await
    }

    async fn ping(&self) -> Result<(), ConnectorError> {
        self.pool.ping(|e| query_error(e, INTROSPECTION_TIMEOUT)).await
    }
}
