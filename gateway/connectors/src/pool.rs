//! The pool scaffolding the sqlx engines share: pool settings, the pool itself with its connect options
//! (pinned to the server's checked address, `route.rs`), acquiring a session with clear connect errors,
//! the health check, and ending a call's transaction. Each engine keeps only what differs: how it opens a
//! session and reads results.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::pool::PoolConnection;

use crate::hosts::HostPolicy;
use crate::route::Route;
use crate::{Cell, ConnectorError, Dsn};

/// How a connection's pool behaves. One pool per connection; connections are checked with a ping before
/// they are handed out, so a pool whose server restarted heals on the next call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// The most connections this gateway opens to the server.
    pub max_connections: u32,
    /// Idle connections beyond zero are closed after this long, so that a quiet gateway holds no sessions.
    pub idle_timeout: Duration,
    /// How long a call waits for a free connection (or for the server to accept one) before failing.
    pub acquire_timeout: Duration,
    /// Connections are replaced after this age, which bounds the life of any session-level state.
    pub max_lifetime: Duration,
    /// The hosts a server connection may reach; by default every host but the forbidden addresses.
    pub hosts: HostPolicy,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: 5,
            idle_timeout: Duration::from_secs(300),
            acquire_timeout: Duration::from_secs(10),
            max_lifetime: Duration::from_secs(1_800),
            hosts: HostPolicy::default(),
        }
    }
}

impl PoolOptions {
    /// The defaults with a connection's own settings laid over them (`None` keeps the default).
    pub fn with_overrides(
        size: Option<u32>,
        idle_timeout: Option<Duration>,
        acquire_timeout: Option<Duration>,
    ) -> PoolOptions {
        let defaults = PoolOptions::default();
        PoolOptions {
            max_connections: size.unwrap_or(defaults.max_connections).max(1),
            idle_timeout: idle_timeout.unwrap_or(defaults.idle_timeout),
            acquire_timeout: acquire_timeout.unwrap_or(defaults.acquire_timeout),
            max_lifetime: defaults.max_lifetime,
            hosts: defaults.hosts,
        }
    }

    fn apply<DB: sqlx::Database>(&self) -> sqlx::pool::PoolOptions<DB> {
        sqlx::pool::PoolOptions::new()
            .max_connections(self.max_connections.max(1))
            .min_connections(0)
            .idle_timeout(self.idle_timeout)
            .acquire_timeout(self.acquire_timeout)
            .max_lifetime(self.max_lifetime)
            .test_before_acquire(true)
    }
}

/// What a server said when it refused a session, reduced to the engine-neutral cases.
pub(crate) enum Refusal {
    Auth,
    UnknownDatabase,
    Other,
}

/// The options a sqlx engine connects with.
pub(crate) type ConnectOptions<DB> = <<DB as sqlx::Database>::Connection as sqlx::Connection>::Options;

/// Who a failed connect was for, so that its error says what went wrong in the engine's terms.
pub(crate) enum Target {
    /// A database server: the user and database named in the DSN, and how to read the server's refusals.
    Server {
        user: String,
        database: String,
        classify: fn(&dyn sqlx::error::DatabaseError) -> Refusal,
    },
    /// A database file opened by the engine itself.
    File { path: PathBuf },
}

/// One connection's bounded sqlx pool, built lazily from `PoolOptions`: nothing connects until the first
/// call. Must be created inside a tokio runtime (the pool runs a reaper task).
///
/// A server's sqlx pool exists only once its host has been resolved and checked ([`Route::pin`]): it is
/// built then, with connect options pinned to the checked address, so every connection it opens or
/// reopens goes there. When connecting fails, the pin is dropped and the next call resolves and checks
/// the host again (a database that failed over to a new address is followed, and checked).
pub(crate) struct Pooled<DB: sqlx::Database> {
    dsn: Dsn,
    /// The connect options as the DSN names the server, before pinning.
    connect: ConnectOptions<DB>,
    options: sqlx::pool::PoolOptions<DB>,
    size: u32,
    target: Target,
    /// `None` for a file or a Unix socket, whose pool is built at once.
    route: Option<Route<DB>>,
    pinned: RwLock<Option<Arc<Pinned<DB>>>>,
    /// Held while the host is resolved, so that concurrent first calls resolve once.
    pinning: tokio::sync::Mutex<()>,
}

/// A pool whose connect options go to a checked address.
struct Pinned<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    connect: ConnectOptions<DB>,
}

impl<DB: sqlx::Database> Pooled<DB> {
    /// `session` adds what an engine does to every new session (e.g. MySQL's `after_connect`) to the pool
    /// options built from `options`. `route` is the server's host, `None` for a file or a Unix socket.
    pub(crate) fn new(
        dsn: Dsn,
        connect: ConnectOptions<DB>,
        options: &PoolOptions,
        target: Target,
        route: Option<Route<DB>>,
        session: impl FnOnce(sqlx::pool::PoolOptions<DB>) -> sqlx::pool::PoolOptions<DB>,
    ) -> Self {
        let options = session(options.apply());
        let pinned = match route {
            Some(_) => None,
            None => Some(Arc::new(Pinned {
                pool: options.clone().connect_lazy_with(connect.clone()),
                connect: connect.clone(),
            })),
        };
        Pooled {
            dsn,
            connect,
            size: options.get_max_connections().max(1),
            options,
            target,
            route,
            pinned: RwLock::new(pinned),
            pinning: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn dsn(&self) -> &Dsn {
        &self.dsn
    }

    /// The pool's sessions now; `None` before the host has been resolved and the pool built.
    pub(crate) fn usage(&self) -> Option<crate::PoolUsage> {
        self.current().map(|p| {
            let open = p.pool.size();
            let idle = u32::try_from(p.pool.num_idle()).unwrap_or(u32::MAX).min(open);
            crate::PoolUsage {
                in_use: open - idle,
                idle,
                max: self.size,
            }
        })
    }

    /// The connect options sessions are opened with (pinned to the checked address), once there are any:
    /// for a second session that stops a running statement.
    pub(crate) fn connect_options(&self) -> Option<ConnectOptions<DB>> {
        self.current().map(|p| p.connect.clone())
    }

    fn current(&self) -> Option<Arc<Pinned<DB>>> {
        self.pinned.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The pinned pool, resolving and checking the host first when there is none.
    async fn pinned(&self) -> Result<Arc<Pinned<DB>>, ConnectorError> {
        if let Some(pinned) = self.current() {
            return Ok(pinned);
        }
        let _resolving = self.pinning.lock().await;
        if let Some(pinned) = self.current() {
            return Ok(pinned);
        }
        let Some(route) = &self.route else {
            return Err(ConnectorError::Internal(
                "a local pool without its pool".to_owned(),
            ));
        };
        let (connect, address) = route.pin(&self.connect, &self.dsn.target()).await?;
        tracing::debug!(target = %self.dsn.target(), %address, pinning = ?route.pinning, "host checked and pinned");
        let pinned = Arc::new(Pinned {
            pool: self.options.clone().connect_lazy_with(connect.clone()),
            connect,
        });
        *self.pinned.write().unwrap_or_else(|p| p.into_inner()) = Some(pinned.clone());
        Ok(pinned)
    }

    /// Drops `stale` as the pinned pool (if it still is), so that the next call resolves the host again.
    fn unpin(&self, stale: &Arc<Pinned<DB>>) {
        if self.route.is_none() {
            return;
        }
        let mut pinned = self.pinned.write().unwrap_or_else(|p| p.into_inner());
        if pinned.as_ref().is_some_and(|p| Arc::ptr_eq(p, stale)) {
            *pinned = None;
            let pool = stale.pool.clone();
            tokio::spawn(async move { pool.close().await });
        }
    }

    /// Turns a failure to get a session into the engine-neutral error the agent reads.
    pub(crate) fn connect_error(&self, error: sqlx::Error) -> ConnectorError {
        match &self.target {
            Target::Server {
                user,
                database,
                classify,
            } => connect_error(&self.dsn, user, database, self.size, error, *classify),
            Target::File { path } if !path.exists() => ConnectorError::NotFound { path: path.clone() },
            Target::File { .. } if matches!(error, sqlx::Error::PoolTimedOut) => ConnectorError::Busy {
                target: self.dsn.target(),
                size: self.size,
            },
            Target::File { path } => ConnectorError::Open {
                path: path.clone(),
                message: error.to_string(),
            },
        }
    }

    /// A session from the pool, checked with a ping before it is handed out.
    pub(crate) async fn acquire(&self) -> Result<PoolConnection<DB>, ConnectorError> {
        let pinned = self.pinned().await?;
        let acquired = acquire(&pinned.pool, &pinned.connect, |e| self.connect_error(e)).await;
        if let Err(ConnectorError::Unreachable { .. }) = &acquired {
            self.unpin(&pinned);
        }
        acquired
    }

    /// The health check: a pooled session answers `SELECT 1`.
    pub(crate) async fn ping(
        &self,
        query_error: impl FnOnce(sqlx::Error) -> ConnectorError,
    ) -> Result<(), ConnectorError>
    where
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    {
        use sqlx::Executor as _;
        let mut conn = self.acquire().await?;
        (&mut *conn)
            .execute("SELECT 1")
            .await
            .map(|_| ())
            .map_err(query_error)
    }
}

/// A pooled session running one call's statement. Dropped before [`Running::done`] (the caller gave the call
/// up: a cancelled MCP call drops its future mid-statement), it closes the session rather than return it to
/// the pool in the middle of a result, and runs `stop` in the background, which asks the server to stop the
/// statement from a second session (PostgreSQL `pg_cancel_backend`, MySQL `KILL QUERY`): closing a socket
/// alone is noticed by the server only when it next writes.
pub(crate) struct Running<DB: sqlx::Database> {
    conn: Option<PoolConnection<DB>>,
    stop: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<DB: sqlx::Database> Running<DB> {
    pub(crate) fn new(conn: PoolConnection<DB>, stop: impl Future<Output = ()> + Send + 'static) -> Self {
        Running {
            conn: Some(conn),
            stop: Some(Box::pin(stop)),
        }
    }

    /// The session, for the statement.
    pub(crate) fn conn(&mut self) -> Result<&mut PoolConnection<DB>, ConnectorError> {
        self.conn
            .as_mut()
            .ok_or_else(|| ConnectorError::Internal("the session was already handed back".to_owned()))
    }

    /// The statement is over: the session is the caller's again, and nothing is stopped.
    pub(crate) fn done(mut self) -> Result<PoolConnection<DB>, ConnectorError> {
        self.stop = None;
        self.conn
            .take()
            .ok_or_else(|| ConnectorError::Internal("the session was already handed back".to_owned()))
    }
}

impl<DB: sqlx::Database> Drop for Running<DB> {
    fn drop(&mut self) {
        let Some(stop) = self.stop.take() else {
            return;
        };
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(stop);
            }
            Err(_) => {
                tracing::warn!("a dropped statement could not be stopped: no runtime to run the stop on")
            }
        }
    }
}

/// Ends a call's read-only transaction and turns the outcome of its work, bounded by the client-side
/// grace timer, into the caller's result. `on_timeout` runs when the server did not answer in time, before
/// the session is closed (MySQL kills the query from a second session there).
pub(crate) async fn finish<DB, T>(
    mut conn: PoolConnection<DB>,
    outcome: Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>,
    timeout: Duration,
    query_error: fn(sqlx::Error, Duration) -> ConnectorError,
    on_timeout: impl Future<Output = ()>,
) -> Result<T, ConnectorError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(_) => {
            // The server did not stop the statement in time even with the grace period: never reuse a
            // connection left in the middle of a result.
            conn.close_on_drop();
            on_timeout.await;
            return Err(ConnectorError::Timeout { timeout });
        }
    };
    let outcome = match outcome {
        // A broken socket or protocol error: do not give this connection to the next call.
        Err(e) if !matches!(e, sqlx::Error::Database(_)) => {
            conn.close_on_drop();
            return Err(query_error(e, timeout));
        }
        outcome => outcome,
    };
    if sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.is_err() {
        conn.close_on_drop();
    }
    outcome.map_err(|e| query_error(e, timeout))
}

/// Has the engine describe agent SQL before it runs: sqlx's `prepare`, which keeps the statement in the
/// session's statement cache under its text, so the persistent run that follows costs no extra round
/// trip. A statement without result columns is refused ([`require_columns`]), the inner error.
pub(crate) async fn describe<DB>(
    conn: &mut DB::Connection,
    engine: &'static str,
    sql: &str,
) -> Result<Result<DB::Statement, ConnectorError>, sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let statement = sqlx::Executor::prepare(
        &mut *conn,
        sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql)),
    )
    .await?;
    let columns = sqlx::Statement::columns(&statement).len();
    Ok(require_columns(engine, columns).map(|()| statement))
}

/// Reads at most `max_rows` rows of a result stream, and one more to know whether the result was cut:
/// the rows as cells (made by `cells`), and whether there were more.
pub(crate) async fn take_rows<R>(
    mut rows: impl futures_util::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    max_rows: usize,
    mut cells: impl FnMut(&R) -> Result<Vec<Cell>, sqlx::Error>,
) -> Result<(Vec<Vec<Cell>>, bool), sqlx::Error> {
    use futures_util::TryStreamExt as _;
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        if out.len() == max_rows {
            return Ok((out, true));
        }
        out.push(cells(&row)?);
    }
    Ok((out, false))
}

/// The engine's own answer to "is this a query?", asked before agent SQL runs: a statement the server
/// describes (when preparing it, before anything executes) as returning no result columns is refused.
/// That covers every statement that can leave state on a pooled session for the next caller whatever
/// its text looks like — `SET`, `DO`, `CREATE TEMPORARY TABLE`, `SELECT … INTO @var`, `PREPARE`, `ATTACH`
/// — while every read (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN) returns columns.
pub(crate) fn require_columns(engine: &'static str, columns: usize) -> Result<(), ConnectorError> {
    if columns == 0 {
        return Err(ConnectorError::NotAQuery { engine });
    }
    Ok(())
}

/// Maps a failure to get a connection. `classify` recognises the engine's own error codes.
fn connect_error(
    dsn: &Dsn,
    user: &str,
    database: &str,
    size: u32,
    error: sqlx::Error,
    classify: fn(&dyn sqlx::error::DatabaseError) -> Refusal,
) -> ConnectorError {
    let target = dsn.target();
    match error {
        sqlx::Error::Database(db) => match classify(db.as_ref()) {
            Refusal::Auth => ConnectorError::Auth {
                target,
                user: user.to_owned(),
            },
            Refusal::UnknownDatabase => ConnectorError::UnknownDatabase {
                target,
                database: database.to_owned(),
            },
            Refusal::Other => ConnectorError::Unreachable {
                target,
                message: db.message().to_owned(),
            },
        },
        sqlx::Error::PoolTimedOut => ConnectorError::Busy { target, size },
        sqlx::Error::Io(e) => ConnectorError::Unreachable {
            target,
            message: e.to_string(),
        },
        sqlx::Error::Tls(e) => ConnectorError::Unreachable {
            target,
            message: format!("TLS: {e}"),
        },
        other => ConnectorError::Unreachable {
            target,
            message: other.to_string(),
        },
    }
}

/// Acquires a pooled connection. When the pool times out, one direct attempt tells "server down" (the
/// pool retries refused connections silently until its deadline) apart from "every connection busy".
/// Pauses before each new attempt at a session whose socket the server dropped during the handshake.
const HANDSHAKE_RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

/// A connection the server accepted and then dropped before the session was set up.
fn dropped_mid_handshake(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
    )
}

async fn acquire<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    options: &<DB::Connection as sqlx::Connection>::Options,
    map: impl Fn(sqlx::Error) -> ConnectorError,
) -> Result<sqlx::pool::PoolConnection<DB>, ConnectorError> {
    use sqlx::ConnectOptions as _;
    let mut acquired = pool.acquire().await;
    // sqlx retries a refused connection until the acquire timeout; a server that is going down (or coming
    // up) may instead accept and then drop the socket mid-handshake. Such a session is tried again, twice,
    // before the call is answered "could not reach".
    for pause in HANDSHAKE_RETRY_PAUSES {
        match &acquired {
            Err(sqlx::Error::Io(e)) if dropped_mid_handshake(e.kind()) => {
                tracing::debug!("a new session was dropped during its handshake ({e}); trying again");
                tokio::time::sleep(pause).await;
                acquired = pool.acquire().await;
            }
            _ => break,
        }
    }
    match acquired {
        Ok(conn) => Ok(conn),
        Err(sqlx::Error::PoolTimedOut) => {
            match tokio::time::timeout(Duration::from_secs(5), options.connect()).await {
                Ok(Ok(conn)) => {
                    let _ = sqlx::Connection::close(conn).await;
                    Err(map(sqlx::Error::PoolTimedOut))
                }
                Ok(Err(e)) => Err(map(e)),
                Err(_) => Err(map(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connection attempt timed out",
                )))),
            }
        }
        Err(e) => Err(map(e)),
    }
}
