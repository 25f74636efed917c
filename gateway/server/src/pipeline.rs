//! The request pipeline, in one place: auth → scope → (rate limit) → governance → execution → audit.
//!
//! Authentication happens at the HTTP edge (no request without a valid key reaches MCP); everything after
//! it happens here, for every tool, in this order. Tools are thin adapters that decode arguments into a
//! [`ToolCall`] and render the [`ToolOutput`].

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use crate::auth::{AuthContext, Scope};
use crate::service::{
    AuditFacts, ConnectionList, ErrorKind, Outcome, QueryOutput, SandboxInfo, ServerInfo, Services,
    TableDescription, TableList, ToolError, ValidationOutput,
};
use crate::store::{AuditRecord, Store};

fn default_row_limit() -> u64 {
    crate::config::DEFAULT_ROW_LIMIT
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryDatabaseArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// One read-only SQL statement in the connection's dialect.
    pub sql: String,
    /// Most rows to return (default 1000); clamped to the server's maximum.
    #[serde(default = "default_row_limit")]
    #[schemars(range(min = 1))]
    pub row_limit: u64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateSqlArgs {
    /// Name of the connection whose dialect and policy apply.
    pub connection_name: String,
    /// The SQL to check; it is not run.
    pub sql: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeTableArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// `table` or `schema.table`.
    pub table_name: String,
}

/// A decoded tool call.
#[derive(Debug)]
pub enum ToolCall {
    ListDatabaseConnections,
    QueryDatabase(QueryDatabaseArgs),
    ValidateSql(ValidateSqlArgs),
    ListTables(ConnectionArgs),
    DescribeTable(DescribeTableArgs),
    ServerInfo,
}

impl ToolCall {
    pub fn name(&self) -> &'static str {
        match self {
            ToolCall::ListDatabaseConnections => "list_database_connections",
            ToolCall::QueryDatabase(_) => "query_database",
            ToolCall::ValidateSql(_) => "validate_sql",
            ToolCall::ListTables(_) => "list_tables",
            ToolCall::DescribeTable(_) => "describe_table",
            ToolCall::ServerInfo => "server_info",
        }
    }

    /// The scope a key needs for this tool; `None` = any valid key.
    pub fn scope(&self) -> Option<Scope> {
        match self {
            ToolCall::QueryDatabase(_) | ToolCall::ValidateSql(_) => Some(Scope::Query),
            ToolCall::ListDatabaseConnections | ToolCall::ListTables(_) | ToolCall::DescribeTable(_) => {
                Some(Scope::Schema)
            }
            ToolCall::ServerInfo => None,
        }
    }
}

/// A successful tool result.
#[derive(Debug)]
pub enum ToolOutput {
    Connections(ConnectionList),
    Query(QueryOutput),
    Validation(ValidationOutput),
    Tables(TableList),
    Table(TableDescription),
    ServerInfo(ServerInfo),
}

/// Who is calling, from where.
#[derive(Clone, Debug)]
pub struct CallContext {
    pub auth: AuthContext,
    pub session_id: Option<String>,
}

pub struct Pipeline {
    pub services: Services,
    pub store: Store,
    pub audit_strict: bool,
}

fn map<T>(outcome: Outcome<T>, wrap: fn(T) -> ToolOutput) -> Outcome<ToolOutput> {
    Outcome {
        result: outcome.result.map(wrap),
        audit: outcome.audit,
    }
}

impl Pipeline {
    pub fn new(services: Services, store: Store, audit_strict: bool) -> Arc<Self> {
        Arc::new(Pipeline {
            services,
            store,
            audit_strict,
        })
    }

    /// Runs one tool call through every stage and writes its audit record.
    #[tracing::instrument(skip_all, fields(tool = call.name(), org = %ctx.auth.org_id, key = %ctx.auth.key_prefix))]
    pub async fn run(&self, ctx: &CallContext, call: ToolCall) -> Result<ToolOutput, ToolError> {
        let started = Instant::now();
        let tool = call.name();
        let outcome = self.execute(ctx, call).await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;

        let record = audit_record(ctx, tool, &outcome, duration_ms);
        if let Err(e) = self.store.append_audit(&record).await {
            tracing::error!(error = %e, "audit write failed");
            if self.audit_strict {
                return Err(ToolError::failed(
                    "the audit log could not be written, so this call's result is withheld; the operator must check the store",
                ));
            }
        }
        match &outcome.result {
            Ok(_) => tracing::info!(duration_ms, "tool call ok"),
            Err(e) => {
                tracing::info!(duration_ms, kind = ?e.kind, rule = ?e.rule, "tool call refused or failed")
            }
        }
        outcome.result
    }

    async fn execute(&self, ctx: &CallContext, call: ToolCall) -> Outcome<ToolOutput> {
        let auth = &ctx.auth;
        if let Some(scope) = call.scope()
            && !auth.scopes.contains(scope)
        {
            let error = ToolError::invalid(format!(
                "this API key lacks the '{}' scope needed by {}; create a key with `sluice key create --scope {}`",
                scope.as_str(),
                call.name(),
                scope.as_str()
            ));
            return Outcome {
                result: Err(error),
                audit: AuditFacts {
                    rule: Some("missing_scope".to_owned()),
                    ..Default::default()
                },
            };
        }
        // Rate limiting slots in here (a later issue): after the scope check, before any work.
        let s = &self.services;
        match call {
            ToolCall::ListDatabaseConnections => map(s.list_connections(auth), ToolOutput::Connections),
            ToolCall::QueryDatabase(a) => {
                if a.row_limit == 0 {
                    return Outcome {
                        result: Err(ToolError::invalid("row_limit must be at least 1")),
                        audit: AuditFacts::default(),
                    };
                }
                map(
                    s.query(auth, &a.connection_name, &a.sql, a.row_limit).await,
                    ToolOutput::Query,
                )
            }
            ToolCall::ValidateSql(a) => map(
                s.validate(auth, &a.connection_name, &a.sql),
                ToolOutput::Validation,
            ),
            ToolCall::ListTables(a) => map(s.list_tables(auth, &a.connection_name).await, ToolOutput::Tables),
            ToolCall::DescribeTable(a) => map(
                s.describe_table(auth, &a.connection_name, &a.table_name).await,
                ToolOutput::Table,
            ),
            ToolCall::ServerInfo => map(s.server_info(auth, sandbox_status()), ToolOutput::ServerInfo),
        }
    }
}

/// The sandbox daemon is wired in its own issue; until then the gateway says so plainly.
fn sandbox_status() -> SandboxInfo {
    SandboxInfo {
        status: "not_configured".to_owned(),
        detail: "no sandbox daemon is configured for this gateway; code execution tools are not offered"
            .to_owned(),
    }
}

fn audit_record(
    ctx: &CallContext,
    tool: &str,
    outcome: &Outcome<ToolOutput>,
    duration_ms: f64,
) -> AuditRecord {
    let facts = &outcome.audit;
    let (sql_redacted, sql_sha256, sql_len) = match (&facts.sql, facts.dialect) {
        (Some(sql), dialect) => {
            let redacted =
                sluice_governance::redact(sql, dialect.unwrap_or(sluice_governance::Dialect::Unknown));
            (
                redacted.text,
                Some(redacted.sha256),
                i64::try_from(redacted.len).ok(),
            )
        }
        (None, _) => (None, None, None),
    };
    let (decision, error, rule) = match &outcome.result {
        Ok(_) => ("ok", None, facts.rule.clone()),
        Err(e) if e.kind == ErrorKind::Denied => ("denied", Some(redact_message(&e.message)), e.rule.clone()),
        Err(e) => (
            "error",
            Some(redact_message(&e.message)),
            facts.rule.clone().or(e.rule.clone()),
        ),
    };
    AuditRecord {
        ts: crate::store::now(),
        org_id: ctx.auth.org_id.clone(),
        key_prefix: ctx.auth.key_prefix.clone(),
        session_id: ctx.session_id.clone(),
        tool: tool.to_owned(),
        connection: facts.connection.clone(),
        sql_redacted,
        sql_sha256,
        sql_len,
        system_query: facts.system_query,
        decision: decision.to_owned(),
        rule,
        rows: facts.rows.and_then(|r| i64::try_from(r).ok()),
        duration_ms,
        error,
    }
}

/// Engine error messages can quote the statement and its literals (DuckDB appends `LINE 1: …`). The audit
/// log keeps only the first line, with every quoted string replaced.
pub fn redact_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(first.len());
    let mut quote: Option<char> = None;
    for c in first.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('?');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None if c == '\'' || c == '"' => {
                out.push(c);
                quote = Some(c);
            }
            None => out.push(c),
        }
    }
    if quote.is_some() {
        out.push('?');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_message;
    use pretty_assertions::assert_eq;

    #[test]
    fn error_messages_lose_literals() {
        let cases = [
            (
                "Conversion Error: Could not convert string 'hunter2' to INT32\nLINE 1: SELECT 'hunter2'::INT",
                "Conversion Error: Could not convert string '?' to INT32",
            ),
            (
                "Binder Error: column \"secret\" not found",
                "Binder Error: column \"?\" not found",
            ),
            ("unterminated 'abc", "unterminated '?"),
            ("plain", "plain"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_message(input), expected);
        }
    }
}

#[cfg(test)]
mod strict_audit {
    use std::sync::Arc;

    use super::*;
    use crate::auth::Scopes;
    use crate::config::{Overrides, Settings};
    use crate::registry::Registry;

    async fn pipeline(strict: bool) -> (Arc<Pipeline>, Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sluice.db")).await.unwrap();
        let settings = Arc::new(Settings::resolve(Overrides::default()).unwrap());
        let services = Services {
            settings: Arc::clone(&settings),
            registry: Arc::new(Registry::new(settings)),
            engines: vec![],
        };
        (Pipeline::new(services, store.clone(), strict), store, dir)
    }

    fn ctx() -> CallContext {
        CallContext {
            auth: AuthContext {
                org_id: "local".into(),
                key_id: "k".into(),
                key_name: "test".into(),
                key_prefix: "sluice_test".into(),
                scopes: Scopes::all(),
            },
            session_id: None,
        }
    }

    #[tokio::test]
    async fn a_failed_audit_write_fails_the_call_when_strict() {
        let (strict, store, _dir) = pipeline(true).await;
        assert!(strict.run(&ctx(), ToolCall::ServerInfo).await.is_ok());
        store.close().await;
        let err = strict.run(&ctx(), ToolCall::ServerInfo).await.unwrap_err();
        assert!(
            err.message.starts_with("the audit log could not be written"),
            "{}",
            err.message
        );

        let (lenient, store, _dir) = pipeline(false).await;
        store.close().await;
        assert!(lenient.run(&ctx(), ToolCall::ServerInfo).await.is_ok());
    }

    #[tokio::test]
    async fn every_call_writes_one_record() {
        let (p, store, _dir) = pipeline(true).await;
        p.run(&ctx(), ToolCall::ServerInfo).await.unwrap();
        let denied = p
            .run(
                &ctx(),
                ToolCall::QueryDatabase(QueryDatabaseArgs {
                    connection_name: "nope".into(),
                    sql: "SELECT 'secret'".into(),
                    row_limit: 5,
                }),
            )
            .await
            .unwrap_err();
        assert!(
            denied.message.contains("unknown connection 'nope'"),
            "{}",
            denied.message
        );
        let records = store.recent_audit("local", 10).await.unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].tool, "query_database");
        assert_eq!(records[0].decision, "error");
        assert_eq!(records[0].sql_redacted.as_deref(), Some("SELECT ?"));
        assert_eq!(records[1].tool, "server_info");
    }
}
