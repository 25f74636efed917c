//! Query tools: `query_database` (governed, row-capped execution) and `validate_sql` (governance only).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_governance::{Decision, Finding};

use crate::auth::{AuthContext, Scope};
use crate::mcp::render;
use crate::service::{AuditFacts, Outcome, QueryOutput, Services, ToolError};
use crate::tools::{Effect, Meta, Render, ToolSpec, spec};

fn default_row_limit() -> u64 {
    crate::config::DEFAULT_ROW_LIMIT
}

#[derive(Debug, Deserialize, JsonSchema)]
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateSqlArgs {
    /// Name of the connection whose dialect and policy apply.
    pub connection_name: String,
    /// The SQL to check; it is not run.
    pub sql: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ValidationOutput {
    pub connection: String,
    pub dialect: String,
    pub valid: bool,
    /// The SQL as it would run (rewritten with the row limit), when valid.
    pub rewritten_sql: Option<String>,
    pub findings: Vec<FindingOut>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FindingOut {
    pub rule: String,
    pub severity: String,
    pub message: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl Render for QueryOutput {
    fn render(&self) -> String {
        render::query(self)
    }
}

impl Render for ValidationOutput {
    fn render(&self) -> String {
        let mut text = String::new();
        if self.valid {
            text.push_str(&format!("VALID ✓ ({} dialect)\n", self.dialect));
            if let Some(sql) = &self.rewritten_sql {
                text.push_str(&format!("Runs as: {sql}\n"));
            }
        } else {
            text.push_str(&format!("INVALID ✗ ({} dialect)\n", self.dialect));
        }
        for f in &self.findings {
            text.push_str(&format!("- [{}] {}", f.rule, f.message));
            if let (Some(line), Some(column)) = (f.line, f.column) {
                text.push_str(&format!(" (line {line}, column {column})"));
            }
            text.push('\n');
        }
        text.trim_end().to_owned()
    }
}

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let s = Arc::clone(services);
    let query = spec(
        Meta {
            name: "query_database",
            title: "Run a governed read-only SQL query",
            description: "Run one read-only SQL statement (SELECT/WITH/VALUES, EXPLAIN, SHOW, DESCRIBE) on a \
                connection, in that connection's SQL dialect. Governance refuses writes, DDL, several statements, \
                and file or network functions, and injects or clamps a row limit (default 1000, server maximum \
                applies). Returns a table and `[N rows, X ms]`; a notice says when rows were cut. Refusals name \
                the rule and how to fix the query.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: QueryDatabaseArgs| {
            let s = Arc::clone(&s);
            async move {
                if a.row_limit == 0 {
                    return Outcome::fail(
                        ToolError::invalid("row_limit must be at least 1"),
                        AuditFacts::default(),
                    );
                }
                s.query(&ctx.auth, &a.connection_name, &a.sql, a.row_limit).await
            }
        },
    );
    let s = Arc::clone(services);
    let validate_sql = spec(
        Meta {
            name: "validate_sql",
            title: "Check SQL against governance without running it",
            description: "Check whether a SQL statement would be allowed on a connection, without running it. \
                Returns VALID with the SQL exactly as it would run (row limit applied), or INVALID with the rule \
                id, the position and how to fix it.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: ValidateSqlArgs| {
            let out = validate(&s, &ctx.auth, &a.connection_name, &a.sql);
            async move { out }
        },
    );
    vec![query, validate_sql]
}

pub fn validate(s: &Services, auth: &AuthContext, connection: &str, sql: &str) -> Outcome<ValidationOutput> {
    let mut audit = AuditFacts {
        connection: Some(connection.to_owned()),
        sql: Some(sql.to_owned()),
        ..Default::default()
    };
    let conn = match s.connection(auth, connection) {
        Ok(c) => c,
        Err(e) => return Outcome::fail(e, audit),
    };
    audit.dialect = Some(conn.dialect);
    let cap = s.row_cap(&conn, s.settings.max_rows);
    let verdict = sluice_governance::govern(sql, conn.dialect, &s.policy(&conn), cap.saturating_add(1));
    let rewritten_sql = match &verdict.decision {
        Decision::Allow { sql, .. } => Some(sql.clone()),
        Decision::Deny => None,
    };
    audit.rule = verdict.denial().map(|f| f.rule.to_owned());
    Outcome {
        result: Ok(ValidationOutput {
            connection: conn.name.clone(),
            dialect: conn.dialect.name().to_owned(),
            valid: verdict.is_allowed(),
            rewritten_sql,
            findings: verdict.findings.iter().map(finding_out).collect(),
        }),
        audit,
    }
}

fn finding_out(f: &Finding) -> FindingOut {
    let severity = serde_json::to_value(f.severity)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    FindingOut {
        rule: f.rule.to_owned(),
        severity,
        message: f.message.clone(),
        line: f.span.as_ref().map(|s| s.line),
        column: f.span.as_ref().map(|s| s.column),
    }
}
