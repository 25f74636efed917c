//! Pool settings shared by the server engines, and the mapping of connect failures to clear errors.

use std::time::Duration;

use crate::{ConnectorError, Dsn};

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
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: 5,
            idle_timeout: Duration::from_secs(300),
            acquire_timeout: Duration::from_secs(10),
            max_lifetime: Duration::from_secs(1_800),
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
        }
    }

    pub(crate) fn apply<DB: sqlx::Database>(&self) -> sqlx::pool::PoolOptions<DB> {
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

/// Maps a failure to get a connection. `classify` recognises the engine's own error codes.
pub(crate) fn connect_error(
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
pub(crate) async fn acquire<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    options: &<DB::Connection as sqlx::Connection>::Options,
    map: impl Fn(sqlx::Error) -> ConnectorError,
) -> Result<sqlx::pool::PoolConnection<DB>, ConnectorError> {
    use sqlx::ConnectOptions as _;
    match pool.acquire().await {
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
