//! The store: orgs, API keys, sealed connections, projects, budgets and the audit log, in SQLite (the
//! embedded default) or PostgreSQL (for teams and several gateway instances sharing one store), via sqlx.
//!
//! Every statement is written once, in the SQL both engines share, with `$N` placeholders (sqlx binds
//! them by number on SQLite too); [`on_pool!`] runs it on whichever engine the store opened. The two
//! engines have the same tables and columns, each in its own migration directory with the same versions.
//!
//! Every query is org-scoped. The store never sees plaintext DSNs: callers seal them with the master key
//! first, and nothing here can open them.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};

use crate::auth::{ConnectionGrants, Grant, Role, Scopes, ToolList};
use crate::config::StoreLocation;
use crate::error::GatewayError;

pub mod audit_stream;
mod audit_writer;
pub mod budgets;
#[cfg(test)]
pub(crate) mod engines;
pub mod keyring;
pub mod orgs;
pub mod projects;
#[cfg(test)]
mod tests;

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How often every gateway instance reads the store's change counters (keys, connections): a key revoked
/// through any instance or the CLI is refused everywhere within this plus one store round trip.
pub const REVISION_POLL: Duration = Duration::from_millis(250);

/// The org every single-tenant install starts with.
pub const LOCAL_ORG: &str = "local";

/// The engine behind a store.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the store's pool, whichever engine it is; the body is compiled once
/// per engine, so row types and results stay concrete.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Typed column reads, the same on both engines' rows.
pub(crate) trait Fields {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn text_opt(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error>;
    fn int_opt(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn real(&self, column: &str) -> Result<f64, sqlx::Error>;
    fn real_opt(&self, column: &str) -> Result<Option<f64>, sqlx::Error>;
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error>;
}

macro_rules! fields {
    ($row:ty) => {
        impl Fields for $row {
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn text_opt(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn int_opt(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn real(&self, column: &str) -> Result<f64, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn real_opt(&self, column: &str) -> Result<Option<f64>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn flag(&self, column: &str) -> Result<bool, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
        }
    };
}
fields!(SqliteRow);
fields!(PgRow);

/// `$first, $first+1, …` for `count` values bound after `first - 1` others.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A handle to the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    audit: audit_writer::AuditWriter,
}

/// An API key row, without anything secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Scopes,
    /// The role the scopes came from, if any.
    pub role: Option<Role>,
    pub tools: ToolList,
    pub connections: ConnectionGrants,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A stored connection; the DSN stays sealed.
#[derive(Clone, Debug)]
pub struct ConnectionRecord {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub kind: String,
    pub dsn_sealed: Vec<u8>,
    /// The version of the master key that sealed the DSN (see [`keyring`]).
    pub key_version: i64,
    pub description: Option<String>,
    pub settings: serde_json::Value,
    pub created_at: String,
}

/// One audit record, written once per tool call.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct AuditRecord {
    pub ts: String,
    pub org_id: String,
    pub key_prefix: String,
    pub session_id: Option<String>,
    pub tool: String,
    pub connection: Option<String>,
    pub sql_redacted: Option<String>,
    pub sql_sha256: Option<String>,
    pub sql_len: Option<i64>,
    pub system_query: bool,
    pub decision: String,
    pub rule: Option<String>,
    pub rows: Option<i64>,
    pub duration_ms: f64,
    pub error: Option<String>,
    /// SHA-256 (hex) and length in bytes of code run in the sandbox; the code itself is never stored.
    pub code_sha256: Option<String>,
    pub code_len: Option<i64>,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl Store {
    /// Opens the store the settings name: a SQLite file (created if needed) or a PostgreSQL database
    /// (which must exist); runs pending migrations either way.
    pub async fn connect(location: &StoreLocation) -> Result<Store, GatewayError> {
        match location {
            StoreLocation::Sqlite(path) => Store::open(path).await,
            StoreLocation::Postgres {
                url,
                password,
                max_connections,
                ..
            } => {
                let mut options = PgConnectOptions::from_str(url.expose()).map_err(|e| {
                    GatewayError::Config(format!("[store] url '{url}' is not a PostgreSQL URL: {e}"))
                })?;
                if let Some(password) = password {
                    options = options.password(password.expose());
                }
                Store::open_postgres(options, *max_connections)
                    .await
                    .map_err(|e| {
                        GatewayError::Config(format!(
                            "the PostgreSQL store at {url} could not be opened: {e}"
                        ))
                    })
            }
        }
    }

    /// Opens (creating if needed) the SQLite store at `path` and runs pending migrations.
    pub async fn open(path: &Path) -> Result<Store, GatewayError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable against process crashes; an OS crash may lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A local file has no connection to lose: skip sqlx's ping before every acquire (a round trip
            // to the connection's worker thread on every store access).
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        SQLITE_MIGRATOR.run(&pool).await?;
        restrict_permissions(path);
        Ok(Store::with_pool(Pool::Sqlite(pool)))
    }

    /// Opens a PostgreSQL store and runs pending migrations. sqlx's migrator holds an advisory lock while
    /// it works, so gateway instances starting together migrate once.
    pub async fn open_postgres(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Store, GatewayError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.application_name("sluice"))
            .await?;
        POSTGRES_MIGRATOR.run(&pool).await?;
        Ok(Store::with_pool(Pool::Postgres(pool)))
    }

    /// Also appends every committed audit record to a JSON-lines file (see [`audit_stream`]); the store
    /// stays the record of truth.
    pub fn stream_audit(&self, settings: audit_stream::StreamSettings) {
        self.audit.stream(settings);
    }

    /// How long audit records are retried while the store is out of reach before their calls fail (30 s
    /// unless set).
    pub fn audit_retry_for(&self, limit: Duration) {
        self.audit.retry_for(limit);
    }

    fn with_pool(pool: Pool) -> Store {
        let audit = audit_writer::AuditWriter::spawn(pool.clone());
        Store { pool, audit }
    }

    /// Which engine holds the store, for status lines: `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Checks the store answers; backs `/readyz`.
    pub async fn ping(&self) -> Result<(), GatewayError> {
        on_pool!(&self.pool, p => sqlx::query("SELECT 1").execute(p).await.map(drop))?;
        Ok(())
    }

    /// Creates the org if it does not exist; returns its id (the name doubles as id for `local`). The
    /// upsert names no conflict target, so that every unique index arbitrates: with only `name` named,
    /// two instances inserting at once could collide on the primary key instead, which PostgreSQL
    /// reports as an error (seen when two gateways started together on an empty store).
    pub async fn ensure_org(&self, name: &str) -> Result<String, GatewayError> {
        let created_at = now();
        on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO orgs (id, name, created_at) VALUES ($1, $1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(&created_at)
        .execute(p)
        .await
        .map(drop))?;
        let id: String = on_pool!(&self.pool, p => sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1")
            .bind(name)
            .fetch_one(p)
            .await)?;
        Ok(id)
    }

    async fn bump(&self, name: &str) -> Result<(), GatewayError> {
        on_pool!(&self.pool, p => sqlx::query("UPDATE revisions SET revision = revision + 1 WHERE name = $1")
            .bind(name)
            .execute(p)
            .await
            .map(drop))?;
        Ok(())
    }

    async fn revision(&self, name: &str) -> Result<i64, GatewayError> {
        Ok(
            on_pool!(&self.pool, p => sqlx::query_scalar("SELECT revision FROM revisions WHERE name = $1")
            .bind(name)
            .fetch_one(p)
            .await)?,
        )
    }

    /// The change counter for keys; gateways poll it to drop cached keys after a revocation.
    pub async fn key_revision(&self) -> Result<i64, GatewayError> {
        self.revision("api_keys").await
    }

    /// The change counter for connections; gateways poll it to reload.
    pub async fn connection_revision(&self) -> Result<i64, GatewayError> {
        self.revision("connections").await
    }

    pub async fn insert_key(
        &self,
        org_id: &str,
        name: &str,
        prefix: &str,
        key_hash: &[u8],
        grant: &Grant,
    ) -> Result<KeyRecord, GatewayError> {
        let id = uuid::Uuid::new_v4().to_string();
        let created_at = now();
        let result = on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO api_keys (id, org_id, name, prefix, key_hash, scopes, role, tools, connections, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(org_id)
        .bind(name)
        .bind(prefix)
        .bind(key_hash)
        .bind(grant.scopes.to_string())
        .bind(grant.role.map(Role::as_str))
        .bind(grant.tools.stored())
        .bind(grant.connections.stored())
        .bind(&created_at)
        .execute(p)
        .await
        .map(|d| d.rows_affected()));
        unique(result, || format!("an API key named '{name}' already exists"))?;
        self.bump("api_keys").await?;
        Ok(KeyRecord {
            id,
            org_id: org_id.to_owned(),
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            scopes: grant.scopes.clone(),
            role: grant.role,
            tools: grant.tools.clone(),
            connections: grant.connections.clone(),
            created_at,
            revoked_at: None,
        })
    }

    /// Looks a key up by its hash; revoked keys are returned too, so callers can say "revoked".
    pub async fn key_by_hash(&self, key_hash: &[u8]) -> Result<Option<KeyRecord>, GatewayError> {
        on_pool!(&self.pool, p => sqlx::query(
            "SELECT id, org_id, name, prefix, scopes, role, tools, connections, created_at, revoked_at FROM api_keys \
             WHERE key_hash = $1",
        )
        .bind(key_hash)
        .fetch_optional(p)
        .await?
        .map(|r| key_record(&r))
        .transpose())
    }

    pub async fn list_keys(&self, org_id: &str) -> Result<Vec<KeyRecord>, GatewayError> {
        on_pool!(&self.pool, p => sqlx::query(
            "SELECT id, org_id, name, prefix, scopes, role, tools, connections, created_at, revoked_at FROM api_keys
             WHERE org_id = $1 ORDER BY created_at",
        )
        .bind(org_id)
        .fetch_all(p)
        .await?
        .iter()
        .map(key_record)
        .collect())
    }

    /// Revokes by name or prefix; returns the revoked record.
    pub async fn revoke_key(&self, org_id: &str, name_or_prefix: &str) -> Result<KeyRecord, GatewayError> {
        let keys = self.list_keys(org_id).await?;
        let matches: Vec<&KeyRecord> = keys
            .iter()
            .filter(|k| k.name == name_or_prefix || k.prefix == name_or_prefix)
            .collect();
        let key = match matches.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(GatewayError::NotFound(format!(
                    "no API key named or prefixed '{name_or_prefix}'"
                )));
            }
            _ => {
                return Err(GatewayError::Conflict(format!(
                    "'{name_or_prefix}' matches several keys; use the name"
                )));
            }
        };
        if key.revoked_at.is_some() {
            return Err(GatewayError::Conflict(format!(
                "the key '{}' is already revoked",
                key.name
            )));
        }
        let revoked_at = now();
        on_pool!(&self.pool, p => sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
            .bind(&revoked_at)
            .bind(&key.id)
            .execute(p)
            .await
            .map(drop))?;
        self.bump("api_keys").await?;
        Ok(KeyRecord {
            revoked_at: Some(revoked_at),
            ..key
        })
    }

    /// Inserts a connection whose DSN the caller sealed under `id`.
    pub async fn insert_connection(&self, record: &ConnectionRecord) -> Result<(), GatewayError> {
        let settings = record.settings.to_string();
        let result = on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO connections (id, org_id, name, kind, dsn_sealed, description, settings, created_at, key_version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(&record.id)
        .bind(&record.org_id)
        .bind(&record.name)
        .bind(&record.kind)
        .bind(&record.dsn_sealed)
        .bind(&record.description)
        .bind(&settings)
        .bind(&record.created_at)
        .bind(record.key_version)
        .execute(p)
        .await
        .map(|d| d.rows_affected()));
        unique(result, || {
            format!("a connection named '{}' already exists", record.name)
        })?;
        self.bump("connections").await
    }

    pub async fn list_connections(&self, org_id: &str) -> Result<Vec<ConnectionRecord>, GatewayError> {
        on_pool!(&self.pool, p => sqlx::query(
            "SELECT id, org_id, name, kind, dsn_sealed, key_version, description, settings, created_at
             FROM connections WHERE org_id = $1 ORDER BY name",
        )
        .bind(org_id)
        .fetch_all(p)
        .await?
        .iter()
        .map(connection_record)
        .collect())
    }

    pub async fn remove_connection(&self, org_id: &str, name: &str) -> Result<(), GatewayError> {
        let removed = on_pool!(&self.pool, p => sqlx::query("DELETE FROM connections WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .execute(p)
            .await
            .map(|d| d.rows_affected()))?;
        if removed == 0 {
            return Err(GatewayError::NotFound(format!(
                "no stored connection named '{name}'"
            )));
        }
        self.bump("connections").await
    }

    /// Appends one audit record; returns once the transaction holding it has committed.
    pub async fn append_audit(&self, r: &AuditRecord) -> Result<(), GatewayError> {
        self.audit.append(r).await
    }

    /// The newest audit records of an org, newest first (for operators and tests).
    pub async fn recent_audit(&self, org_id: &str, limit: i64) -> Result<Vec<AuditRecord>, GatewayError> {
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE org_id = $1 ORDER BY id DESC LIMIT $2");
        on_pool!(&self.pool, p => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(limit)
            .fetch_all(p)
            .await?
            .iter()
            .map(audit_record)
            .collect())
    }

    /// An org's audit records at or after `since` (RFC 3339, UTC), of `tool` when given, newest first.
    pub async fn audit_since(
        &self,
        org_id: &str,
        since: Option<&str>,
        tool: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, GatewayError> {
        // Timestamps are stored as fixed-width RFC 3339 UTC text, so text order is time order.
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE org_id = $1 AND ($2 IS NULL OR ts >= $2) \
             AND ($3 IS NULL OR tool = $3) ORDER BY id DESC LIMIT $4"
        );
        on_pool!(&self.pool, p => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(since)
            .bind(tool)
            .bind(limit)
            .fetch_all(p)
            .await?
            .iter()
            .map(audit_record)
            .collect())
    }

    /// Closes the pool (on SQLite, flushing the WAL).
    pub async fn close(&self) {
        on_pool!(&self.pool, p => p.close().await);
    }
}

/// The result of an `INSERT … ON CONFLICT DO NOTHING`: no row inserted is the conflict the caller names.
/// (Doing nothing on conflict, rather than catching the violation, keeps expected races — instances
/// creating the first key together — out of PostgreSQL's error log.)
pub(crate) fn unique(
    inserted: Result<u64, sqlx::Error>,
    conflict: impl FnOnce() -> String,
) -> Result<(), GatewayError> {
    match inserted? {
        0 => Err(GatewayError::Conflict(conflict())),
        _ => Ok(()),
    }
}

fn key_record(r: &impl Fields) -> Result<KeyRecord, GatewayError> {
    Ok(KeyRecord {
        id: r.text("id")?,
        org_id: r.text("org_id")?,
        name: r.text("name")?,
        prefix: r.text("prefix")?,
        scopes: Scopes::parse_list(&r.text("scopes")?).map_err(GatewayError::Invalid)?,
        role: r
            .text_opt("role")?
            .map(|role| Role::parse(&role))
            .transpose()
            .map_err(GatewayError::Invalid)?,
        tools: ToolList::from_stored(r.text_opt("tools")?.as_deref()),
        connections: ConnectionGrants::from_stored(r.text_opt("connections")?.as_deref()),
        created_at: r.text("created_at")?,
        revoked_at: r.text_opt("revoked_at")?,
    })
}

fn connection_record(r: &impl Fields) -> Result<ConnectionRecord, GatewayError> {
    Ok(ConnectionRecord {
        id: r.text("id")?,
        org_id: r.text("org_id")?,
        name: r.text("name")?,
        kind: r.text("kind")?,
        dsn_sealed: r.bytes("dsn_sealed")?,
        key_version: r.int_opt("key_version")?.unwrap_or(1),
        description: r.text_opt("description")?,
        settings: serde_json::from_str(&r.text("settings")?).unwrap_or(serde_json::Value::Null),
        created_at: r.text("created_at")?,
    })
}

/// The store holds key hashes and sealed secrets: keep it private to the owner.
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for p in [
        path.to_owned(),
        path.with_extension("db-wal"),
        path.with_extension("db-shm"),
    ] {
        if p.exists() {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// The audit columns every reader selects, in [`audit_record`]'s terms.
pub(crate) const AUDIT_COLUMNS: &str = "ts, org_id, key_prefix, session_id, tool, connection, sql_redacted, \
     sql_sha256, sql_len, system_query, decision, rule, rows, duration_ms, error, code_sha256, code_len";

/// One `audit_log` row selected with [`AUDIT_COLUMNS`].
pub(crate) fn audit_record(r: &impl Fields) -> Result<AuditRecord, GatewayError> {
    Ok(AuditRecord {
        ts: r.text("ts")?,
        org_id: r.text("org_id")?,
        key_prefix: r.text("key_prefix")?,
        session_id: r.text_opt("session_id")?,
        tool: r.text("tool")?,
        connection: r.text_opt("connection")?,
        sql_redacted: r.text_opt("sql_redacted")?,
        sql_sha256: r.text_opt("sql_sha256")?,
        sql_len: r.int_opt("sql_len")?,
        system_query: r.flag("system_query")?,
        decision: r.text("decision")?,
        rule: r.text_opt("rule")?,
        rows: r.int_opt("rows")?,
        duration_ms: r.real("duration_ms")?,
        error: r.text_opt("error")?,
        code_sha256: r.text_opt("code_sha256")?,
        code_len: r.int_opt("code_len")?,
    })
}
