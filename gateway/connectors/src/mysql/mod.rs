//! The MySQL/MariaDB connector: a bounded sqlx pool, every statement in `START TRANSACTION READ ONLY`
//! under the server's own statement time limit, and `KILL QUERY` from a second connection as a fallback.
//!
//! The two servers spell the limit differently (MySQL `max_execution_time` in milliseconds, MariaDB
//! `max_statement_time` in seconds); the flavour is read once from `SELECT VERSION()`. Sessions also
//! start with `SET SESSION TRANSACTION READ ONLY`, so a statement that ended the transaction (DDL's
//! implicit commit) still runs read-only. Agent SQL goes through prepared statements, which MySQL runs
//! one at a time, and the server's answer to the prepare decides whether it runs at all: a statement
//! without result columns is refused unexecuted. MySQL allows `CREATE TEMPORARY TABLE` even in a read-only
//! transaction, and `SET @v`, `SET SESSION …`, `DO …` and `SELECT … INTO @v` would all outlive the call on
//! the pooled session (sqlx has no COM_RESET_CONNECTION); none of them returns columns.

mod convert;
mod introspect;

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlDatabaseError, MySqlRow, MySqlSslMode};
use sqlx::pool::PoolConnection;
use sqlx::{Column as _, ConnectOptions as _, Connection as _, Executor as _, Row as _, TypeInfo as _};
use tokio::sync::OnceCell;

use crate::hosts::HostPolicy;
use crate::pool::{Pooled, Refusal, Running, Target, describe, finish, take_rows};
use crate::route::{Pinning, Route};
use crate::{
    Cell, Column, ConnectorError, ConnectorKind, Dsn, PoolOptions, QueryOptions, QueryResult, TableDetail,
    TableRef, TableSummary, Warehouse,
};

/// Prepared statements kept per pooled connection (MySQL's default global cap is 16,382).
const STATEMENT_CACHE: usize = 128;

/// When a session holds more cached statements than this at the start of a call, they are all closed at
/// once. A full cache would otherwise close one statement per new statement, and each COM_STMT_CLOSE
/// stalls the next command (see the connect options): 40 ms on every call instead of once per hundred.
const STATEMENT_CACHE_CLEAR_AT: usize = STATEMENT_CACHE - 8;

/// The client waits this long past the server-side limit before it kills the query itself.
const CLIENT_GRACE: Duration = Duration::from_secs(2);

/// How the engine names itself in refusals.
const ENGINE: &str = "MySQL/MariaDB";

/// Introspection statements are fixed and small; they get a generous fixed budget.
const INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Which server answered: they differ in how a statement's time limit is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    MySql,
    MariaDb,
}

impl Flavor {
    fn from_version(version: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        }
    }

    /// The session statement that makes the server abort statements past `timeout`.
    fn limit_statement(self, timeout: Duration) -> String {
        match self {
            Flavor::MySql => format!("SET SESSION max_execution_time = {}", timeout.as_millis().max(1)),
            Flavor::MariaDb => format!(
                "SET SESSION max_statement_time = {:.3}",
                timeout.as_secs_f64().max(0.001)
            ),
        }
    }
}

/// A MySQL or MariaDB database reached through a pool.
pub struct MySqlWarehouse {
    pool: Pooled<MySql>,
    flavor: OnceCell<Flavor>,
}

impl std::fmt::Debug for MySqlWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlWarehouse")
            .field("dsn", self.pool.dsn())
            .finish_non_exhaustive()
    }
}

impl MySqlWarehouse {
    /// A warehouse for `dsn` (`mysql://user:pass@host:port/db?ssl-mode=…`). Nothing is connected until the
    /// first call; must be called inside a tokio runtime (the pool runs a reaper task).
    pub fn new(dsn: impl Into<Dsn>, pool: PoolOptions) -> Result<Self, ConnectorError> {
        let dsn = dsn.into();
        let connect = connect_options(&dsn)?
            // TIMESTAMP values are then UTC instants, which is how they are rendered (`…Z`).
            .timezone(Some("+00:00".to_owned()))
            // Statements stay prepared on the connection (least recently used closed first). A one-off
            // statement would be closed with COM_STMT_CLOSE, which has no reply: the server delays its ACK
            // and, without TCP_NODELAY (sqlx does not set it), Nagle holds the next command (COMMIT) until
            // that ACK — a 40 ms stall on every query.
            .statement_cache_capacity(STATEMENT_CACHE);
        let target = Target::Server {
            user: connect.get_username().to_owned(),
            database: connect.get_database().unwrap_or_default().to_owned(),
            classify,
        };
        let route = route(&connect, &pool.hosts);
        let pool = Pooled::new(dsn, connect, &pool, target, route, |options| {
            options.after_connect(|conn: &mut sqlx::MySqlConnection, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                    Ok(())
                })
            })
        });
        Ok(MySqlWarehouse {
            pool,
            flavor: OnceCell::new(),
        })
    }

    /// The server flavour, once a connection has told it.
    pub fn flavor(&self) -> Option<Flavor> {
        self.flavor.get().copied()
    }

    /// Asks a fresh connection to kill whatever `connection_id` is running.
    async fn kill_query(&self, connection_id: u64) {
        self.killer(connection_id).await;
    }

    /// What kills `connection_id`'s statement from a second session (after a timeout, or for a call
    /// dropped mid-statement).
    fn killer(&self, connection_id: u64) -> impl std::future::Future<Output = ()> + Send + 'static {
        let options = self.pool.connect_options();
        let target = self.pool.dsn().target();
        async move {
            let Some(options) = options.filter(|_| connection_id != 0) else {
                return;
            };
            let killed = async {
                let mut conn = options.connect().await?;
                conn.execute(sqlx::AssertSqlSafe(format!("KILL QUERY {connection_id}")))
                    .await?;
                conn.close().await
            };
            if let Err(error) = tokio::time::timeout(Duration::from_secs(5), killed)
                .await
                .unwrap_or(Err(sqlx::Error::PoolTimedOut))
            {
                tracing::warn!(%target, %error, "could not kill a query");
            }
        }
    }

    /// Takes a pooled connection and opens a read-only transaction on it under the server's time limit.
    /// Also returns the session's connection id, for `KILL QUERY`.
    async fn begin(&self, timeout: Duration) -> Result<(PoolConnection<MySql>, u64), ConnectorError> {
        let mut conn = self.pool.acquire().await?;
        if conn.cached_statements_size() > STATEMENT_CACHE_CLEAR_AT
            && let Err(e) = conn.clear_cached_statements().await
        {
            conn.close_on_drop();
            return Err(query_error(e, timeout));
        }
        let flavor = match self.flavor.get() {
            Some(flavor) => *flavor,
            None => {
                let version: String = sqlx::query_scalar("SELECT VERSION()")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(|e| query_error(e, timeout))?;
                let flavor = Flavor::from_version(&version);
                let _ = self.flavor.set(flavor);
                flavor
            }
        };
        // Our own statements, formatted from integers: several per round trip over the text protocol.
        let setup = format!(
            "{}; START TRANSACTION READ ONLY; SELECT CONNECTION_ID()",
            flavor.limit_statement(timeout)
        );
        match sqlx::raw_sql(sqlx::AssertSqlSafe(setup))
            .fetch_all(&mut *conn)
            .await
        {
            Ok(rows) => {
                let id = rows
                    .first()
                    .and_then(|r| r.try_get::<u64, _>(0).ok())
                    .unwrap_or(0);
                Ok((conn, id))
            }
            Err(e) => {
                conn.close_on_drop();
                Err(query_error(e, timeout))
            }
        }
    }

    /// Ends the transaction (see [`finish`]); a query the server did not stop in time is killed from a
    /// second session.
    async fn finish<T>(
        &self,
        (conn, connection_id): (PoolConnection<MySql>, u64),
        outcome: Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>,
        timeout: Duration,
    ) -> Result<T, ConnectorError> {
        // MySQL's own limit covers only SELECTs.
        let kill = async {
            if connection_id != 0 {
                self.kill_query(connection_id).await;
            }
        };
        finish(conn, outcome, timeout, query_error, kill).await
    }
}

fn error_number(error: &dyn sqlx::error::DatabaseError) -> Option<u16> {
    error
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number)
}

fn classify(error: &dyn sqlx::error::DatabaseError) -> Refusal {
    match error_number(error) {
        // ER_ACCESS_DENIED_ERROR: wrong user or password.
        Some(1045) => Refusal::Auth,
        // ER_BAD_DB_ERROR, and ER_DBACCESS_DENIED_ERROR, which is what a user without rights on a
        // database gets whether or not it exists.
        Some(1049 | 1044) => Refusal::UnknownDatabase,
        _ => Refusal::Other,
    }
}

fn query_error(error: sqlx::Error, timeout: Duration) -> ConnectorError {
    match &error {
        sqlx::Error::Database(db) => match error_number(db.as_ref()) {
            // MySQL ER_QUERY_TIMEOUT, MariaDB ER_STATEMENT_TIMEOUT, ER_QUERY_INTERRUPTED (KILL QUERY).
            Some(3024 | 1969 | 1317) => ConnectorError::Timeout { timeout },
            _ => ConnectorError::Query {
                message: db.message().to_owned(),
            },
        },
        sqlx::Error::Io(e) => ConnectorError::Query {
            message: format!(
                "the connection to the MySQL/MariaDB server was lost while the statement ran ({e}); the server may be restarting: run the statement again in a few seconds"
            ),
        },
        _ => ConnectorError::Query {
            message: error.to_string(),
        },
    }
}

fn columns_of(columns: &[sqlx::mysql::MySqlColumn]) -> Vec<Column> {
    columns
        .iter()
        .map(|c| Column {
            name: c.name().to_owned(),
            type_name: c.type_info().name().to_owned(),
        })
        .collect()
}

fn row_cells(row: &MySqlRow, columns: &[Column]) -> Result<Vec<Cell>, sqlx::Error> {
    let mut cells = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let bytes: Option<&[u8]> = row.try_get_unchecked(i)?;
        cells.push(match bytes {
            None => Cell::Null,
            Some(bytes) => convert::cell(&column.type_name, bytes),
        });
    }
    Ok(cells)
}

/// Runs one agent statement, reading at most `max_rows` rows and one more to know about truncation. The
/// server describes it first; one that returns no columns is refused (the inner error) without running.
///
/// No extra round trip: sqlx's `prepare` sends COM_STMT_PREPARE and keeps the statement in the session's
/// statement cache under its SQL text; the persistent `fetch` that follows finds it there and sends only
/// COM_STMT_EXECUTE — the same two exchanges a persistent run makes on its own.
async fn fetch(
    conn: &mut sqlx::MySqlConnection,
    sql: &str,
    max_rows: usize,
) -> Result<Result<QueryResult, ConnectorError>, sqlx::Error> {
    let statement = match describe::<MySql>(conn, ENGINE, sql).await? {
        Ok(statement) => statement,
        Err(refused) => return Ok(Err(refused)),
    };
    let described = sqlx::Statement::columns(&statement);
    let mut columns = None;
    let stream = sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(true)
        .fetch(&mut *conn);
    let (rows, truncated) = take_rows(stream, max_rows, |row| {
        row_cells(row, columns.get_or_insert_with(|| columns_of(row.columns())))
    })
    .await?;
    // The execution's own column definitions when a row came; else the prepare's, which may lack the
    // precise types the execution reports.
    let columns = columns.unwrap_or_else(|| columns_of(described));
    Ok(Ok(QueryResult {
        columns,
        rows,
        truncated,
    }))
}

/// The DSN's connect options as sqlx reads them. A malformed URL is refused with a message that shows
/// only the redacted form.
pub(crate) fn connect_options(dsn: &Dsn) -> Result<MySqlConnectOptions, ConnectorError> {
    dsn.url()?;
    MySqlConnectOptions::from_str(dsn.expose()).map_err(|e| ConnectorError::InvalidDsn {
        dsn: dsn.to_string(),
        message: dsn.scrub(&e.to_string()),
    })
}

/// The server's TCP host under `policy`; `None` for a Unix socket (`socket` parameter). With
/// `ssl-mode=VERIFY_IDENTITY` the name is kept for TLS to verify (`route.rs`).
pub(crate) fn route(connect: &MySqlConnectOptions, policy: &HostPolicy) -> Option<Route<MySql>> {
    if connect.get_socket().is_some() {
        return None;
    }
    let pinning = match connect.get_ssl_mode() {
        MySqlSslMode::VerifyIdentity => Pinning::Name,
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

#[async_trait::async_trait]
impl Warehouse for MySqlWarehouse {
    fn pool_usage(&self) -> Option<crate::PoolUsage> {
        self.pool.usage()
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::MySql
    }

    async fn query(&self, sql: &str, options: QueryOptions) -> Result<QueryResult, ConnectorError> {
        let (conn, connection_id) = self.begin(options.timeout).await?;
        // From here until the statement is over, a dropped call kills the statement on the server.
        let mut running = Running::new(conn, self.killer(connection_id));
        let outcome = tokio::time::timeout(
            options.timeout + CLIENT_GRACE,
            fetch(running.conn()?, sql, options.max_rows),
        )
        .await;
        let session = (running.done()?, connection_id);
        self.finish(session, outcome, options.timeout)
            .await
            .and_then(|refused_or_rows| refused_or_rows)
    }

    async fn list_tables(&self) -> Result<Vec<TableSummary>, ConnectorError> {
        let mut session = self.begin(INTROSPECTION_TIMEOUT).await?;
        let outcome =
            tokio::time::timeout(INTROSPECTION_TIMEOUT, introspect::list_tables(&mut session.0)).await;
        self.finish(session, outcome, INTROSPECTION_TIMEOUT).await
    }

    async fn describe_table(&self, table: &TableRef) -> Result<Option<TableDetail>, ConnectorError> {
        let mut session = self.begin(INTROSPECTION_TIMEOUT).await?;
        let outcome = tokio::time::timeout(
            INTROSPECTION_TIMEOUT,
            introspect::describe_table(&mut session.0, table),
        )
        .await;
        self.finish(session, outcome, INTROSPECTION_TIMEOUT).await
    }

    async fn snapshot(&self) -> Result<sluice_catalog::SchemaSnapshot, ConnectorError> {
        let mut session = self.begin(INTROSPECTION_TIMEOUT).await?;
        let outcome = tokio::time::timeout(INTROSPECTION_TIMEOUT, introspect::snapshot(&mut session.0)).await;
        self.finish(session, outcome, INTROSPECTION_TIMEOUT).await
    }

    async fn ping(&self) -> Result<(), ConnectorError> {
        self.pool.ping(|e| query_error(e, INTROSPECTION_TIMEOUT)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn flavours_and_their_limits() {
        assert_eq!(Flavor::from_version("10.11.6-MariaDB-0+deb12u1"), Flavor::MariaDb);
        assert_eq!(Flavor::from_version("8.4.3"), Flavor::MySql);
        assert_eq!(
            Flavor::MySql.limit_statement(Duration::from_millis(1500)),
            "SET SESSION max_execution_time = 1500"
        );
        assert_eq!(
            Flavor::MariaDb.limit_statement(Duration::from_millis(1500)),
            "SET SESSION max_statement_time = 1.500"
        );
    }
}
