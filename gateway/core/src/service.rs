//! What every tool shares, independent of MCP: errors phrased for agents, audit facts, connection lookup,
//! row caps, and the typed entry points to the one governed path ([`crate::governed`]) that every
//! SQL-running tool goes through.
//!
//! Each operation returns an [`Outcome`]: its result plus the facts the audit log records about it.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;
use sluice_connectors::{Column, ConnectorError};
use sluice_governance::{Decision, Finding, Verdict};

use crate::auth::AuthContext;
use crate::config::Settings;
use crate::governed::{self, Mode};
use crate::registry::{Connection, Registry};
use crate::store::Store;

/// A failed call, phrased for the agent.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ToolError {
    /// `denied` (governance refused), `invalid` (bad input), `failed` (the engine or gateway failed).
    pub kind: ErrorKind,
    /// Stable rule id when governance refused.
    pub rule: Option<String>,
    pub message: String,
    /// 1-based line and column of the offending SQL, where known.
    pub line: Option<u64>,
    pub column: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Denied,
    Invalid,
    Failed,
    /// The client gave the call up before it finished.
    Cancelled,
}

impl ToolError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ToolError {
            kind: ErrorKind::Invalid,
            rule: None,
            message: message.into(),
            line: None,
            column: None,
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        ToolError {
            kind: ErrorKind::Failed,
            rule: None,
            message: message.into(),
            line: None,
            column: None,
        }
    }
    pub fn cancelled() -> Self {
        ToolError {
            kind: ErrorKind::Cancelled,
            rule: None,
            message: "the client cancelled the call; its work was stopped".to_owned(),
            line: None,
            column: None,
        }
    }
    /// Refused by an access rule of the gateway's own (not governance's), audited `denied` with `rule`.
    pub fn refused(rule: &str, message: impl Into<String>) -> Self {
        ToolError {
            kind: ErrorKind::Denied,
            rule: Some(rule.to_owned()),
            message: message.into(),
            line: None,
            column: None,
        }
    }
    pub fn denied(finding: &Finding) -> Self {
        ToolError {
            kind: ErrorKind::Denied,
            rule: Some(finding.rule.to_owned()),
            message: finding.message.clone(),
            line: finding.span.as_ref().map(|s| s.line),
            column: finding.span.as_ref().map(|s| s.column),
        }
    }
}

impl From<ConnectorError> for ToolError {
    fn from(e: ConnectorError) -> Self {
        ToolError::failed(e.to_string())
    }
}

/// What the audit log records about a call, beyond who made it and when.
#[derive(Clone, Debug, Default)]
pub struct AuditFacts {
    pub connection: Option<String>,
    /// The SQL that ran (after rewriting) or was refused; redacted before it is stored.
    pub sql: Option<String>,
    /// `sql` already redacted by governance from the tree it checked (`sluice_governance::govern_and_redact`),
    /// so the audit need not parse it again; used only while its hash and length match `sql`.
    pub sql_redacted: Option<sluice_governance::Redacted>,
    pub dialect: Option<sluice_governance::Dialect>,
    /// The gateway's own fixed introspection, not agent SQL.
    pub system_query: bool,
    pub rule: Option<String>,
    pub rows: Option<u64>,
    /// Code run in the sandbox: only its SHA-256 (hex) and length reach the audit log.
    pub code: Option<CodeDigest>,
}

/// What the audit log keeps of sandboxed code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeDigest {
    pub sha256: String,
    pub len: u64,
}

impl CodeDigest {
    pub fn of(code: &str) -> Self {
        use sha2::Digest as _;
        CodeDigest {
            sha256: hex::encode(sha2::Sha256::digest(code.as_bytes())),
            len: code.len() as u64,
        }
    }
}

/// A result plus its audit facts.
pub struct Outcome<T> {
    pub result: Result<T, ToolError>,
    pub audit: AuditFacts,
}

impl<T> Outcome<T> {
    pub fn fail(error: ToolError, audit: AuditFacts) -> Self {
        Outcome {
            result: Err(error),
            audit,
        }
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ColumnOut {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

impl From<Column> for ColumnOut {
    fn from(c: Column) -> Self {
        ColumnOut {
            name: c.name,
            type_name: c.type_name,
        }
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct QueryOutput {
    pub connection: String,
    pub columns: Vec<ColumnOut>,
    /// Rows as arrays in column order. Integers beyond 2^53, decimals and temporal values are strings.
    pub rows: Vec<Vec<serde_json::Value>>,
    pub row_count: u64,
    /// True when the query had more rows than `row_limit` allowed.
    pub truncated: bool,
    /// The effective row cap: the smallest of the requested `row_limit`, the connection's and the server's.
    pub row_limit: u64,
    pub elapsed_ms: f64,
    /// The SQL that actually ran, after governance (e.g. with the row limit injected).
    pub sql_executed: String,
}

// A connector kind this build supports, as `server_info` reports it. (A plain comment: a doc comment would
// become part of the tool's published output schema.)
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ConnectorInfo {
    pub kind: String,
    pub dialect: String,
    pub engine: String,
    pub read_only: bool,
}

impl ConnectorInfo {
    /// Every kind this build supports.
    pub fn all() -> Vec<ConnectorInfo> {
        sluice_connectors::ConnectorKind::ALL
            .iter()
            .map(|&kind| ConnectorInfo {
                kind: kind.as_str().to_owned(),
                dialect: kind.dialect().name().to_owned(),
                engine: match kind {
                    sluice_connectors::ConnectorKind::DuckDb => sluice_connectors::duckdb::engine_version(),
                    sluice_connectors::ConnectorKind::Postgres => "PostgreSQL via sqlx".to_owned(),
                    sluice_connectors::ConnectorKind::MySql => "MySQL/MariaDB via sqlx".to_owned(),
                    sluice_connectors::ConnectorKind::Sqlite => "SQLite via sqlx".to_owned(),
                },
                read_only: true,
            })
            .collect()
    }
}

/// The services behind the tools.
pub struct Services {
    pub settings: Arc<Settings>,
    pub registry: Arc<Registry>,
    /// The connector kinds this build supports, as `server_info` reports them.
    pub engines: Vec<ConnectorInfo>,
    pub store: Store,
    /// The sandbox daemon (possibly not configured or down; its tools say so).
    pub sandbox: Arc<crate::sandbox::Sandbox>,
    /// Schema snapshots per connection for the schema tools (TTL, refresh, previous kept for diffs).
    pub schema_cache: Arc<crate::schema_cache::SchemaCache>,
    /// Result pages not yet handed out, per session (`query_database(cursor=…)`).
    pub cursors: Arc<crate::cursors::Cursors>,
    /// Per-key daily budgets, checked before every governed query.
    pub budgets: Arc<crate::budgets::Budgets>,
    /// Latency and errors of real calls, per connection.
    pub health: Arc<crate::health::Health>,
}

impl Services {
    pub fn connection(&self, auth: &AuthContext, name: &str) -> Result<Arc<Connection>, ToolError> {
        let granted = || {
            let names: Vec<String> = self.connections(auth).iter().map(|c| c.name.clone()).collect();
            if names.is_empty() {
                "none are configured (add one with `sluice connection add`)".to_owned()
            } else {
                names.join(", ")
            }
        };
        // A name of another org is unknown here, whatever it is called there: nothing of another org is
        // ever confirmed to exist.
        let conn = self.registry.get(&auth.org_id, name).ok_or_else(|| {
            ToolError::invalid(format!(
                "unknown connection '{name}'; available connections: {}",
                granted()
            ))
        })?;
        if !auth.connections.allows(name) {
            return Err(ToolError::refused(
                "connection_not_granted",
                format!(
                    "this API key ('{}') is not granted the connection '{name}'; it may use: {}. An admin \
                     grants it with `sluice key create --connection {name}`",
                    auth.key_name,
                    granted()
                ),
            ));
        }
        Ok(conn)
    }

    /// The org's connections this caller is granted, sorted by name.
    pub fn connections(&self, auth: &AuthContext) -> Vec<Arc<Connection>> {
        self.registry
            .list(&auth.org_id)
            .into_iter()
            .filter(|c| auth.connections.allows(&c.name))
            .collect()
    }

    /// The connection a statement of agent SQL names, with the audit facts every such call starts from
    /// (connection, SQL and, once the connection is known, its dialect): the governed path and
    /// `validate_sql` begin the same way.
    pub fn sql_target(
        &self,
        auth: &AuthContext,
        connection: &str,
        sql: &str,
    ) -> (AuditFacts, Result<Arc<Connection>, ToolError>) {
        let mut audit = AuditFacts {
            connection: Some(connection.to_owned()),
            sql: Some(sql.to_owned()),
            ..Default::default()
        };
        let conn = self.connection(auth, connection);
        if let Ok(c) = &conn {
            audit.dialect = Some(c.dialect);
        }
        (audit, conn)
    }

    /// The row cap that applies: the smallest of the caller's, the connection's and the server's.
    pub fn row_cap(&self, conn: &Connection, requested: u64) -> u64 {
        let mut cap = requested.min(self.settings.max_rows);
        if let Some(max) = conn.max_rows {
            cap = cap.min(max);
        }
        cap.max(1)
    }

    pub fn timeout(&self, conn: &Connection) -> Duration {
        conn.timeout.unwrap_or(self.settings.query_timeout)
    }

    /// Governs and runs one agent statement (outside any MCP session).
    pub async fn query(
        &self,
        auth: &AuthContext,
        connection: &str,
        sql: &str,
        row_limit: u64,
    ) -> Outcome<QueryOutput> {
        self.query_in(auth, None, connection, sql, row_limit).await
    }

    /// Governs and runs one agent statement on the one governed path ([`crate::governed::run`]).
    /// `session` is the MCP session the budget spend is booked to.
    pub async fn query_in(
        &self,
        auth: &AuthContext,
        session: Option<&str>,
        connection: &str,
        sql: &str,
        row_limit: u64,
    ) -> Outcome<QueryOutput> {
        let outcome = self
            .query_sized_in(auth, session, connection, sql, row_limit)
            .await;
        Outcome {
            result: outcome.result.map(|(output, _)| output),
            audit: outcome.audit,
        }
    }

    /// As [`Services::query_in`], with each row's size as JSON (measured once, for the budget), which
    /// paging reuses.
    pub async fn query_sized_in(
        &self,
        auth: &AuthContext,
        session: Option<&str>,
        connection: &str,
        sql: &str,
        row_limit: u64,
    ) -> Outcome<(QueryOutput, Vec<u64>)> {
        let outcome = governed::run(self, auth, session, connection, sql, Mode::Run { row_limit }).await;
        let result = outcome.result.map(|ran| {
            let output = QueryOutput {
                connection: ran.conn.name.clone(),
                columns: ran.result.columns.into_iter().map(ColumnOut::from).collect(),
                row_count: ran.result.rows.len() as u64,
                rows: ran.result.rows,
                truncated: ran.result.truncated,
                row_limit: ran.cap,
                elapsed_ms: ran.elapsed.as_secs_f64() * 1000.0,
                sql_executed: ran.governed,
            };
            (output, ran.row_bytes)
        });
        Outcome {
            result,
            audit: outcome.audit,
        }
    }

    /// Governs one agent statement as [`Services::query_in`] would run it and has the engine plan it
    /// (its own EXPLAIN, never `ANALYZE`): the same path, budget included.
    pub async fn explain_in(
        &self,
        auth: &AuthContext,
        session: Option<&str>,
        connection: &str,
        sql: &str,
    ) -> Outcome<Explained> {
        let outcome = governed::run(self, auth, session, connection, sql, Mode::Explain).await;
        let result = outcome.result.map(|ran| {
            let (facts, plan) = ran.conn.kind.read_plan(&ran.result.rows);
            Explained {
                connection: ran.conn.name.clone(),
                engine: ran.conn.kind.as_str().to_owned(),
                sql_explained: ran.governed,
                facts,
                plan,
            }
        });
        Outcome {
            result,
            audit: outcome.audit,
        }
    }
}

/// What the engine's planner said about a governed statement.
#[derive(Clone, Debug)]
pub struct Explained {
    pub connection: String,
    pub engine: String,
    /// The governed SQL that was planned (as `query_database` would run it).
    pub sql_explained: String,
    pub facts: sluice_dialect::PlanFacts,
    /// The engine's plan (JSON or text as the engine gives it, shortened when long).
    pub plan: String,
}

pub fn allowed_sql(verdict: &Verdict) -> Result<String, ToolError> {
    match &verdict.decision {
        Decision::Allow { sql, .. } => Ok(sql.clone()),
        Decision::Deny => Err(match verdict.denial() {
            Some(finding) => ToolError::denied(finding),
            None => ToolError {
                kind: ErrorKind::Denied,
                rule: None,
                message: "the statement was refused by governance".to_owned(),
                line: None,
                column: None,
            },
        }),
    }
}
