//! The SQLite connector: files opened `mode=ro` with `PRAGMA query_only=ON`, a small pool, and a progress
//! handler that aborts a statement at its deadline (SQLite has no server to cancel on; the engine stops
//! itself).
//!
//! What a statement could leave on a pooled connection for the next caller is closed at the engine too
//! (`wall`): an authorizer refuses, while SQLite compiles a statement, anything but reads (pragmas that
//! set something, temporary objects, `ATTACH`); every connection's limit on attached databases is zero
//! (`ATTACH` would otherwise persist and read another file of the host); agent SQL must be exactly one
//! statement (sqlx runs every statement of a string in turn); and a statement SQLite prepares without
//! result columns is refused before it runs.

mod introspect;
mod wall;

use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteRow};
use sqlx::{Column as _, Executor as _, Row as _, TypeInfo as _, ValueRef as _};

use crate::pool::{Pooled, Target, require_columns, take_rows};
use crate::{
    Cell, Column, ConnectorError, ConnectorKind, Dsn, PoolOptions, QueryOptions, QueryResult, TableDetail,
    TableRef, TableSummary, Warehouse,
};

/// Introspection statements are fixed and small; they get a generous fixed budget.
const INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The progress handler runs every this many virtual-machine instructions: often enough to stop within
/// a millisecond or so, rarely enough to cost nothing measurable.
const PROGRESS_STEPS: i32 = 1_000;

/// How the engine names itself in refusals.
const ENGINE: &str = "SQLite";

/// A SQLite database file, read-only.
pub struct SqliteWarehouse {
    path: PathBuf,
    pool: Pooled<Sqlite>,
}

impl std::fmt::Debug for SqliteWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWarehouse")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteWarehouse {
    /// A warehouse over `dsn`: a file path or a `sqlite://path` URL. The file is opened read-only and never
    /// created. Must be called inside a tokio runtime (the pool runs a reaper task).
    pub fn new(dsn: impl Into<Dsn>, pool: PoolOptions) -> Result<Self, ConnectorError> {
        let dsn = dsn.into();
        let text = dsn.expose();
        let url = if text.starts_with("sqlite:") {
            text.to_owned()
        } else {
            format!("sqlite://{text}")
        };
        let connect = SqliteConnectOptions::from_str(&url)
            .map_err(|e| ConnectorError::InvalidDsn {
                dsn: dsn.to_string(),
                message: e.to_string(),
            })?
            // The second wall: the file is opened read-only by the OS-level open flags, and the
            // connection refuses any change on top, whatever the statement.
            .read_only(true)
            .create_if_missing(false)
            .pragma("query_only", "ON")
            .statement_cache_capacity(32);
        let path = connect.get_filename().to_path_buf();
        let target = Target::File { path: path.clone() };
        Ok(SqliteWarehouse {
            path,
            pool: Pooled::new(dsn, connect, &pool, target, None, |options| {
                options.after_connect(|conn: &mut sqlx::SqliteConnection, _| {
                    Box::pin(async move {
                        let mut handle = conn.lock_handle().await?;
                        wall::install(&mut handle)
                    })
                })
            }),
        })
    }

    /// Takes a pooled connection whose statements the engine aborts at `timeout` from now.
    async fn begin(&self, timeout: Duration) -> Result<(PoolConnection<Sqlite>, Instant), ConnectorError> {
        self.begin_stoppable(timeout, Arc::new(AtomicBool::new(false)))
            .await
    }

    /// [`Self::begin`], whose statements the engine also aborts once `stop` is set.
    async fn begin_stoppable(
        &self,
        timeout: Duration,
        stop: Arc<AtomicBool>,
    ) -> Result<(PoolConnection<Sqlite>, Instant), ConnectorError> {
        let mut conn = self.pool.acquire().await?;
        // A previous statement may have turned query_only off on this pooled connection; the file is
        // read-only anyway, but each call starts from the full wall.
        if let Err(e) = conn.execute("PRAGMA query_only = ON").await {
            conn.close_on_drop();
            return Err(query_error(e));
        }
        let deadline = Instant::now() + timeout;
        let mut handle = conn.lock_handle().await.map_err(query_error)?;
        handle.set_progress_handler(PROGRESS_STEPS, move || {
            Instant::now() < deadline && !stop.load(Ordering::Relaxed)
        });
        drop(handle);
        Ok((conn, deadline))
    }

    async fn finish<T>(
        &self,
        (mut conn, deadline): (PoolConnection<Sqlite>, Instant),
        outcome: Result<T, sqlx::Error>,
        timeout: Duration,
    ) -> Result<T, ConnectorError> {
        let removed = match conn.lock_handle().await {
            Ok(mut handle) => {
                handle.remove_progress_handler();
                true
            }
            Err(_) => false,
        };
        if !removed {
            // A handler left behind would abort the next call at this call's deadline.
            conn.close_on_drop();
        }
        outcome.map_err(|e| {
            let interrupted = matches!(&e, sqlx::Error::Database(db) if db.message().contains("interrupt"));
            if interrupted || Instant::now() >= deadline {
                ConnectorError::Timeout { timeout }
            } else {
                query_error(e)
            }
        })
    }

    /// The database file this warehouse reads.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Sets its flag when dropped before [`StopOnDrop::disarm`]: the statement of a call given up stops at the
/// progress handler's next check.
struct StopOnDrop {
    flag: Arc<AtomicBool>,
    armed: bool,
}

impl StopOnDrop {
    fn new() -> Self {
        StopOnDrop {
            flag: Arc::new(AtomicBool::new(false)),
            armed: true,
        }
    }

    /// The statement is over: nothing to stop.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
}

fn query_error(error: sqlx::Error) -> ConnectorError {
    match &error {
        sqlx::Error::Database(db) => ConnectorError::Query {
            message: db.message().to_owned(),
        },
        _ => ConnectorError::Query {
            message: error.to_string(),
        },
    }
}

/// How a column's values are read: by the declared type where it says more than the storage class.
#[derive(Clone, Copy, PartialEq)]
enum Declared {
    Bool,
    Decimal,
    Timestamp,
    Other,
}

fn declared(type_name: &str) -> Declared {
    match type_name {
        "BOOLEAN" => Declared::Bool,
        "NUMERIC" => Declared::Decimal,
        "DATETIME" => Declared::Timestamp,
        _ => Declared::Other,
    }
}

fn columns_of(columns: &[sqlx::sqlite::SqliteColumn]) -> (Vec<Column>, Vec<Declared>) {
    columns
        .iter()
        .map(|c| {
            let type_name = c.type_info().name().to_owned();
            let reader = declared(&type_name);
            (
                Column {
                    name: c.name().to_owned(),
                    type_name,
                },
                reader,
            )
        })
        .unzip()
}

fn row_cells(row: &SqliteRow, declared: &[Declared]) -> Result<Vec<Cell>, sqlx::Error> {
    let mut cells = Vec::with_capacity(declared.len());
    for (i, decl) in declared.iter().enumerate() {
        let value = row.try_get_raw(i)?;
        if value.is_null() {
            cells.push(Cell::Null);
            continue;
        }
        // The storage class of this very value: SQLite columns are not bound to one type.
        let storage = value.type_info().name().to_owned();
        let cell = match storage.as_str() {
            "INTEGER" | "BOOLEAN" => {
                let v: i64 = row.try_get_unchecked(i)?;
                match decl {
                    Declared::Bool => Cell::Bool(v != 0),
                    Declared::Decimal => Cell::String(v.to_string()),
                    _ => crate::cell::int(i128::from(v)),
                }
            }
            "REAL" => {
                let v: f64 = row.try_get_unchecked(i)?;
                match decl {
                    Declared::Decimal => Cell::String(v.to_string()),
                    _ => crate::cell::float(v),
                }
            }
            "BLOB" => crate::cell::blob(row.try_get_unchecked::<&[u8], _>(i)?),
            _ => {
                let v: &str = row.try_get_unchecked(i)?;
                match decl {
                    // SQLite's own datetime() writes `YYYY-MM-DD HH:MM:SS`; ISO-8601 puts a `T` there.
                    Declared::Timestamp if v.len() >= 19 && v.as_bytes().get(10) == Some(&b' ') => {
                        Cell::String(format!("{}T{}", &v[..10], &v[11..]))
                    }
                    _ => Cell::String(v.to_owned()),
                }
            }
        };
        cells.push(cell);
    }
    Ok(cells)
}

/// Runs one agent statement, reading at most `max_rows` rows and one more to know about truncation. SQLite
/// prepares it first; text with more than one statement, or a statement without result columns, is
/// refused (the inner error) without running. The run reuses the statement sqlx prepared and cached.
async fn fetch(
    conn: &mut sqlx::SqliteConnection,
    sql: &str,
    max_rows: usize,
) -> Result<Result<QueryResult, ConnectorError>, sqlx::Error> {
    let statement = match conn
        .prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql)))
        .await
    {
        Ok(statement) => statement,
        Err(sqlx::Error::Database(db)) if db.message() == "not authorized" => {
            return Ok(Err(ConnectorError::Query {
                message: "the SQLite engine refused to prepare this statement (not authorized): only read \
                          queries run here — no pragma that sets something, no ATTACH, no temporary objects"
                    .to_owned(),
            }));
        }
        Err(e) => return Err(e),
    };
    let count = wall::statement_count(&mut conn.lock_handle().await?, sql);
    if count > 1 {
        return Ok(Err(ConnectorError::Query {
            message: format!("this text holds {count} SQLite statements; only one statement runs per call"),
        }));
    }
    let described = sqlx::Statement::columns(&statement);
    if let Err(refused) = require_columns(ENGINE, described.len()) {
        return Ok(Err(refused));
    }
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
impl Warehouse for SqliteWarehouse {
    fn pool_usage(&self) -> Option<crate::PoolUsage> {
        self.pool.usage()
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sqlite
    }

    async fn query(&self, sql: &str, options: QueryOptions) -> Result<QueryResult, ConnectorError> {
        // A call dropped mid-statement sets the flag, and the progress handler aborts the statement.
        let stop = StopOnDrop::new();
        let mut session = self
            .begin_stoppable(options.timeout, Arc::clone(&stop.flag))
            .await?;
        let outcome = fetch(&mut session.0, sql, options.max_rows).await;
        stop.disarm();
        self.finish(session, outcome, options.timeout)
            .await
            .and_then(|refused_or_rows| refused_or_rows)
    }

    async fn list_tables(&self) -> Result<Vec<TableSummary>, ConnectorError> {
        let mut session = self.begin(INTROSPECTION_TIMEOUT).await?;
        let outcome = introspect::list_tables(&mut session.0).await;
        self.finish(session, outcome, INTROSPECTION_TIMEOUT).await
    }

    async fn describe_table(&self, table: &TableRef) -> Result<Option<TableDetail>, ConnectorError> {
        let mut session = self.begin(INTROSPECTION_TIMEOUT).await?;
        let outcome = introspect::describe_table(&mut session.0, table).await;
        self.finish(session, outcome, INTROSPECTION_TIMEOUT).await
    }

    async fn snapshot(&self) -> Result<sluice_catalog::SchemaSnapshot, ConnectorError> {
        let mut session = self.begin(INTROSPECTION_TIMEOUT).await?;
        let outcome = introspect::snapshot(&mut session.0).await;
        self.finish(session, outcome, INTROSPECTION_TIMEOUT).await
    }

    async fn ping(&self) -> Result<(), ConnectorError> {
        self.pool.ping(query_error).await
    }
}
