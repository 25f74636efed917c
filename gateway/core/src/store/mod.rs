//! The store: orgs, API keys, sealed connections and the audit log, in SQLite via sqlx.
//!
//! Every query is org-scoped. The store never sees plaintext DSNs: callers seal them with the master key
//! first, and nothing here can open them.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row as _, migrate::Migrator};

use crate::auth::{Scopes, ToolList};
use crate::error::GatewayError;

mod audit_writer;
pub mod budgets;
pub mod projects;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The org every single-tenant install starts with.
pub const LOCAL_ORG: &str = "local";

/// A handle to the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
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
    pub tools: ToolList,
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
        MIGRATOR.run(&pool).await?;
        restrict_permissions(path);
        let audit = audit_writer::AuditWriter::spawn(pool.clone());
        Ok(Store { pool, audit })
    }

    /// Checks the store answers; backs `/readyz`.
    pub async fn ping(&self) -> Result<(), GatewayError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Creates the org if it does not exist; returns its id (the name doubles as id for `local`).
    pub async fn ensure_org(&self, name: &str) -> Result<String, GatewayError> {
        sqlx::query(
            "INSERT INTO orgs (id, name, created_at) VALUES (?1, ?1, ?2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now())
        .execute(&self.pool)
        .await?;
        let id: String = sqlx::query_scalar("SELECT id FROM orgs WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    async fn bump(&self, name: &str) -> Result<(), GatewayError> {
        sqlx::query("UPDATE revisions SET revision = revision + 1 WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The change counter for keys; gateways poll it to drop cached keys after a revocation.
    pub async fn key_revision(&self) -> Result<i64, GatewayError> {
        Ok(
            sqlx::query_scalar("SELECT revision FROM revisions WHERE name = 'api_keys'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn insert_key(
        &self,
        org_id: &str,
        name: &str,
        prefix: &str,
        key_hash: &[u8],
        scopes: &Scopes,
        tools: &ToolList,
    ) -> Result<KeyRecord, GatewayError> {
        let id = uuid::Uuid::new_v4().to_string();
        let created_at = now();
        let result = sqlx::query(
            "INSERT INTO api_keys (id, org_id, name, prefix, key_hash, scopes, tools, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(name)
        .bind(prefix)
        .bind(key_hash)
        .bind(scopes.to_string())
        .bind(tools.stored())
        .bind(&created_at)
        .execute(&self.pool)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(GatewayError::Conflict(format!(
                    "an API key named '{name}' already exists"
                )));
            }
            other => {
                other?;
            }
        }
        self.bump("api_keys").await?;
        Ok(KeyRecord {
            id,
            org_id: org_id.to_owned(),
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            scopes: scopes.clone(),
            tools: tools.clone(),
            created_at,
            revoked_at: None,
        })
    }

    /// Looks a key up by its hash; revoked keys are returned too, so callers can say "revoked".
    pub async fn key_by_hash(&self, key_hash: &[u8]) -> Result<Option<KeyRecord>, GatewayError> {
        let row = sqlx::query(
            "SELECT id, org_id, name, prefix, scopes, tools, created_at, revoked_at FROM api_keys WHERE key_hash = ?",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| key_record(&r)).transpose()
    }

    pub async fn list_keys(&self, org_id: &str) -> Result<Vec<KeyRecord>, GatewayError> {
        let rows = sqlx::query(
            "SELECT id, org_id, name, prefix, scopes, tools, created_at, revoked_at FROM api_keys WHERE org_id = ? ORDER BY created_at",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_record).collect()
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
        sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ?")
            .bind(&revoked_at)
            .bind(&key.id)
            .execute(&self.pool)
            .await?;
        self.bump("api_keys").await?;
        Ok(KeyRecord {
            revoked_at: Some(revoked_at),
            ..key
        })
    }

    /// Inserts a connection whose DSN the caller sealed under `id`.
    pub async fn insert_connection(&self, record: &ConnectionRecord) -> Result<(), GatewayError> {
        let result = sqlx::query(
            "INSERT INTO connections (id, org_id, name, kind, dsn_sealed, description, settings, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&record.id)
        .bind(&record.org_id)
        .bind(&record.name)
        .bind(&record.kind)
        .bind(&record.dsn_sealed)
        .bind(&record.description)
        .bind(record.settings.to_string())
        .bind(&record.created_at)
        .execute(&self.pool)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(GatewayError::Conflict(format!(
                "a connection named '{}' already exists",
                record.name
            ))),
            other => {
                other?;
                self.bump("connections").await
            }
        }
    }

    pub async fn list_connections(&self, org_id: &str) -> Result<Vec<ConnectionRecord>, GatewayError> {
        let rows = sqlx::query(
            "SELECT id, org_id, name, kind, dsn_sealed, description, settings, created_at
             FROM connections WHERE org_id = ? ORDER BY name",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let settings: String = r.try_get("settings")?;
                Ok(ConnectionRecord {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    dsn_sealed: r.try_get("dsn_sealed")?,
                    description: r.try_get("description")?,
                    settings: serde_json::from_str(&settings).unwrap_or(serde_json::Value::Null),
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn remove_connection(&self, org_id: &str, name: &str) -> Result<(), GatewayError> {
        let done = sqlx::query("DELETE FROM connections WHERE org_id = ? AND name = ?")
            .bind(org_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
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
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE org_id = ? ORDER BY id DESC LIMIT ?");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_record).collect()
    }

    /// Closes the pool, flushing SQLite's WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn key_record(r: &sqlx::sqlite::SqliteRow) -> Result<KeyRecord, GatewayError> {
    let scopes: String = r.try_get("scopes")?;
    Ok(KeyRecord {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        scopes: Scopes::parse_list(&scopes).map_err(GatewayError::Invalid)?,
        tools: ToolList::from_stored(r.try_get::<Option<String>, _>("tools")?.as_deref()),
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
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

impl Store {
    /// The change counter for connections; gateways poll it to reload.
    pub async fn connection_revision(&self) -> Result<i64, GatewayError> {
        Ok(
            sqlx::query_scalar("SELECT revision FROM revisions WHERE name = 'connections'")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

/// The audit columns every reader selects, in [`audit_record`]'s terms.
pub(crate) const AUDIT_COLUMNS: &str = "ts, org_id, key_prefix, session_id, tool, connection, sql_redacted, \
     sql_sha256, sql_len, system_query, decision, rule, rows, duration_ms, error, code_sha256, code_len";

/// One `audit_log` row selected with [`AUDIT_COLUMNS`].
pub(crate) fn audit_record(r: &sqlx::sqlite::SqliteRow) -> Result<AuditRecord, GatewayError> {
    Ok(AuditRecord {
        ts: r.try_get("ts")?,
        org_id: r.try_get("org_id")?,
        key_prefix: r.try_get("key_prefix")?,
        session_id: r.try_get("session_id")?,
        tool: r.try_get("tool")?,
        connection: r.try_get("connection")?,
        sql_redacted: r.try_get("sql_redacted")?,
        sql_sha256: r.try_get("sql_sha256")?,
        sql_len: r.try_get("sql_len")?,
        system_query: r.try_get("system_query")?,
        decision: r.try_get("decision")?,
        rule: r.try_get("rule")?,
        rows: r.try_get("rows")?,
        duration_ms: r.try_get("duration_ms")?,
        error: r.try_get("error")?,
        code_sha256: r.try_get("code_sha256")?,
        code_len: r.try_get("code_len")?,
    })
}
