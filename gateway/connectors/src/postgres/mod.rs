//! The PostgreSQL connector: a bounded sqlx pool, every statement in its own read-only transaction with a
//! server-side statement timeout.
//!
//! The second wall is set twice: the session starts with `default_transaction_read_only=on` (a startup
//! parameter, so even a statement that escaped its transaction could not write) and each call runs inside
//! `BEGIN READ ONLY` with `SET LOCAL statement_timeout`, which makes the server itself cancel a statement
//! past its budget. Agent SQL goes through the extended protocol, which runs exactly one statement, and
//! is described by the server (Parse + Describe) before it is executed: a statement without result columns
//! is refused unexecuted. Most session state a statement could set is transactional and undone by the
//! ROLLBACK that ends every call (`SET`, `LISTEN`, cursors); `PREPARE` is not, and would stay on the pooled
//! session for the next caller. It returns no columns, like `SET`, `RESET`, `DECLARE`, `LOAD` and `DISCARD`.

mod convert;
mod introspect;

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgRow, PgSslMode, PgTypeKind, Postgres};
use sqlx::{Column as _, Row as _, TypeInfo as _, ValueRef as _};

use crate::hosts::HostPolicy;
use crate::pool::{Pooled, Refusal, Running, Target, describe, finish, take_rows};
use crate::route::{Pinning, Route};
use crate::{
    Column, ConnectorError, ConnectorKind, Dsn, PoolOptions, QueryOptions, QueryResult, TableDetail,
    TableRef, TableSummary, Warehouse,
};

/// The client gives the server this long past the statement timeout before it gives up on the
/// connection itself (a network stall, a server that ignores the cancel).
const CLIENT_GRACE: Duration = Duration::from_secs(2);

/// Introspection statements are fixed and small; they get a generous fixed budget.
const INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Named statements kept per session: agent statements too, since describing a statement before running
/// it prepares it, and the run then reuses that preparation.
const STATEMENT_CACHE: usize = 64;

/// When a session holds more cached statements than this at the start of a call, they are all closed in
/// one round trip. Left alone, a full cache closes its least recently used statement on every new one,
/// each a round trip of its own; the headroom covers the few statements one call prepares.
const STATEMENT_CACHE_CLEAR_AT: usize = STATEMENT_CACHE - 8;

/// How the engine names itself in refusals.
const ENGINE: &str = "PostgreSQL";

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
        let connect = connect_options(&dsn)?
            .application_name("sluice")
            .options([("default_transaction_read_only", "on")])
            .statement_cache_capacity(STATEMENT_CACHE);
        let target = Target::Server {
            user: connect.get_username().to_owned(),
            database: connect
                .get_database()
                .unwrap_or(connect.get_username())
                .to_owned(),
            classify,
        };
        let route = route(&connect, &pool.hosts);
        Ok(PostgresWarehouse {
            pool: Pooled::new(dsn, connect, &pool, target, route, |options| options),
        })
    }

    /// The DSN this warehouse connects with (redacted when printed).
    pub fn dsn(&self) -> &Dsn {
        self.pool.dsn()
    }

    /// Takes a pooled connection and opens a read-only transaction on it whose statements the server
    /// cancels after `timeout`.
    async fn begin(&self, timeout: Duration) -> Result<PoolConnection<Postgres>, ConnectorError> {
        self.begin_session(timeout).await.map(|(conn, _)| conn)
    }

    /// [`Self::begin`], also returning the session's backend process id (for `pg_cancel_backend`).
    async fn begin_session(
        &self,
        timeout: Duration,
    ) -> Result<(PoolConnection<Postgres>, i32), ConnectorError> {
        let mut conn = self.pool.acquire().await?;
        let full = sqlx::Connection::cached_statements_size(&*conn) > STATEMENT_CACHE_CLEAR_AT;
        match open_transaction(&mut conn, timeout, full).await {
            Ok(pid) => Ok((conn, pid)),
            Err(e) => {
                conn.close_on_drop();
                Err(query_error(e, timeout))
            }
        }
    }

    /// What stops this session's statement from a second session, for a call dropped mid-statement.
    fn stop(&self, pid: i32) -> impl Future<Output = ()> + Send + 'static {
        let options = self.pool.connect_options();
        let target = self.pool.dsn().target();
        async move {
            let Some(options) = options else { return };
            let cancelled = async {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(&options).await?;
                // The pid is an integer formatted into our own statement.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SELECT pg_cancel_backend({pid})")))
                    .execute(&mut conn)
                    .await?;
                sqlx::Connection::close(conn).await
            };
            match tokio::time::timeout(Duration::from_secs(5), cancelled).await {
                Ok(Ok(())) => tracing::debug!(%target, pid, "cancelled the statement of a dropped call"),
                Ok(Err(error)) => {
                    tracing::warn!(%target, %error, "could not cancel the statement of a dropped call")
                }
                Err(_) => tracing::warn!(%target, "cancelling the statement of a dropped call timed out"),
            }
        }
    }
}

/// The DSN's connect options as sqlx reads them. A malformed URL is refused with a message that shows
/// only the redacted form.
pub(crate) fn connect_options(dsn: &Dsn) -> Result<PgConnectOptions, ConnectorError> {
    dsn.url()?;
    PgConnectOptions::from_str(dsn.expose()).map_err(|e| ConnectorError::InvalidDsn {
        dsn: dsn.to_string(),
        message: dsn.scrub(&e.to_string()),
    })
}

/// The server's TCP host under `policy`; `None` for a Unix socket (a `host` that is a directory, or a
/// `socket` parameter). With `sslmode=verify-full` the name is kept for TLS to verify (`route.rs`).
pub(crate) fn route(connect: &PgConnectOptions, policy: &HostPolicy) -> Option<Route<Postgres>> {
    if connect.get_socket().is_some() || connect.get_host().starts_with('/') {
        return None;
    }
    let pinning = match connect.get_ssl_mode() {
        PgSslMode::VerifyFull => Pinning::Name,
        _ => Pinning::Address,
    };
    Some(Route {
        host: connect.get_host().to_owned(),
        port: connect.get_port(),
        policy: policy.clone(),
        pinning,
        with_address: |options, address| options.host(&address.to_string()),
    })
}

/// Opens the read-only transaction on `conn`, first closing every cached statement when `clear`; the
/// session's backend process id.
async fn open_transaction(
    conn: &mut sqlx::PgConnection,
    timeout: Duration,
    clear: bool,
) -> Result<i32, sqlx::Error> {
    if clear {
        sqlx::Connection::clear_cached_statements(&mut *conn).await?;
    }
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
    // The timeout is a literal formatted from an integer: SET takes no bind parameters.
    // The trailing SELECT takes the transaction's snapshot, after which no statement can switch it
    // back with `SET TRANSACTION READ WRITE`; it also says which backend serves the session.
    let begin =
        format!("BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = {ms}; SELECT pg_backend_pid()");
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(begin))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .first()
        .and_then(|row| sqlx::Row::try_get::<i32, _>(row, 0).ok())
        .unwrap_or(0))
}

/// Whether the server refused to run a cached statement because a table under it changed shape since it
/// was described (a dbt run rebuilt it with other columns): `feature_not_supported`, "cached plan must not
/// change result type".
fn stale_plan<T>(outcome: &Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>) -> bool {
    matches!(outcome, Ok(Err(sqlx::Error::Database(db)))
        if db.code().as_deref() == Some("0A000") && db.message().contains("cached plan"))
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
        // admin_shutdown, crash_shutdown: the server is going down under the statement.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("57P01" | "57P02")) => {
            ConnectorError::Query {
                message: format!(
                    "the PostgreSQL server shut down while the statement ran ({}); it may be restarting: run the statement again in a few seconds",
                    db.message()
                ),
            }
        }
        sqlx::Error::Database(db) => ConnectorError::Query {
            message: db.message().to_owned(),
        },
        sqlx::Error::Io(e) => ConnectorError::Query {
            message: format!(
                "the connection to the PostgreSQL server was lost while the statement ran ({e}); the server may be restarting: run the statement again in a few seconds"
            ),
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

/// Runs one agent statement, reading at most `max_rows` rows and one more to know about truncation. The
/// server describes it first; one that returns no columns is refused (the inner error) without running.
///
/// No extra round trip: sqlx's `prepare` sends Parse + Describe in one exchange and stores the statement
/// in the session's statement cache under its SQL text; the `fetch` that follows finds it there and sends
/// only Bind + Execute. An unnamed run (what this did before) makes the same Parse exchange first.
async fn fetch(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    max_rows: usize,
) -> Result<Result<QueryResult, ConnectorError>, sqlx::Error> {
    let statement = match describe::<Postgres>(conn, ENGINE, sql).await? {
        Ok(statement) => statement,
        Err(refused) => return Ok(Err(refused)),
    };
    let described = sqlx::Statement::columns(&statement);
    let (columns, readers) = columns_of(described);
    let stream = sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(true)
        .fetch(&mut *conn);
    let (rows, truncated) = take_rows(stream, max_rows, |row| row_cells(row, &readers)).await?;
    Ok(Ok(QueryResult {
        columns,
        rows,
        truncated,
    }))
}

#[async_trait::async_trait]
impl Warehouse for PostgresWarehouse {
    fn pool_usage(&self) -> Option<crate::PoolUsage> {
        self.pool.usage()
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Postgres
    }

    async fn query(&self, sql: &str, options: QueryOptions) -> Result<QueryResult, ConnectorError> {
        let (conn, pid) = self.begin_session(options.timeout).await?;
        // From here until the statement is over, a dropped call cancels the statement on the server.
        let mut running = Running::new(conn, self.stop(pid));
        let budget = options.timeout + CLIENT_GRACE;
        let mut outcome = tokio::time::timeout(budget, fetch(running.conn()?, sql, options.max_rows)).await;
        if stale_plan(&outcome) {
            // Agent statements stay prepared on the session, so the same text can meet a table that was
            // rebuilt since: drop the failed transaction and every cached statement, then describe and run
            // it afresh, once.
            let conn = running.conn()?;
            let reopened = async {
                sqlx::raw_sql("ROLLBACK").execute(&mut **conn).await?;
                open_transaction(conn, options.timeout, true).await
            };
            if let Err(e) = reopened.await {
                let mut conn = running.done()?;
                conn.close_on_drop();
                return Err(query_error(e, options.timeout));
            }
            outcome = tokio::time::timeout(budget, fetch(running.conn()?, sql, options.max_rows)).await;
        }
        let conn = running.done()?;
        finish(conn, outcome, options.timeout, query_error, async {})
            .await
            .and_then(|refused_or_rows| refused_or_rows)
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
