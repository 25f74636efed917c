//! `query_history`: the caller's own recent governed queries on a connection, from the audit log, with
//! every literal redacted (the log never holds them).

use std::fmt::Write as _;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tools::{Effect, Meta, Render, ToolSpec, spec};
use sluice_core::auth::Scope;
use sluice_core::pipeline::CallContext;
use sluice_core::service::{AuditFacts, Outcome, Services, ToolError};

/// The tools whose calls are governed agent queries.
const QUERY_TOOLS: &[&str] = &[
    "query_database",
    "debug_cte_query",
    "explain_query",
    "estimate_query_cost",
];
const MAX_LIMIT: u64 = 50;

fn default_limit() -> u64 {
    10
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryHistoryArgs {
    /// Name of the connection.
    pub connection_name: String,
    /// Most queries to return, newest first (default 10, at most 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 50))]
    pub limit: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct HistoryEntry {
    pub ts: String,
    pub tool: String,
    /// `ok`, `denied` or `error`.
    pub decision: String,
    pub rule: Option<String>,
    /// The SQL that ran (after governance) with every literal replaced by `?`; null when it could not be
    /// parsed (then only its hash was logged).
    pub sql: Option<String>,
    pub rows: Option<i64>,
    pub duration_ms: f64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct QueryHistory {
    pub connection: String,
    pub entries: Vec<HistoryEntry>,
}

impl Render for QueryHistory {
    fn render(&self) -> String {
        if self.entries.is_empty() {
            return format!("No recent queries by this API key on {}.", self.connection);
        }
        let mut text = format!(
            "-- Recent queries by this API key on {} ({} shown, newest first, literals redacted)\n",
            self.connection,
            self.entries.len()
        );
        for e in &self.entries {
            let time = e.ts.get(11..19).unwrap_or(&e.ts);
            let outcome = match (e.decision.as_str(), &e.rule) {
                ("ok", _) => format!("{} rows", e.rows.unwrap_or(0)),
                ("denied", rule) => format!("REFUSED [{}]", rule.as_deref().unwrap_or("policy")),
                _ => format!("ERROR: {}", e.error.as_deref().unwrap_or_default()),
            };
            let _ = writeln!(
                text,
                "\n-- [{time}] {} · {outcome} · {:.0} ms",
                e.tool, e.duration_ms
            );
            let _ = writeln!(
                text,
                "{}",
                e.sql
                    .as_deref()
                    .unwrap_or("(SQL could not be parsed; only its hash is logged)")
            );
        }
        text.trim_end().to_owned()
    }
}

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let s = Arc::clone(services);
    vec![spec(
        Meta {
            name: "query_history",
            title: "Recent queries on a connection",
            description: "List this API key's recent governed queries on a connection (newest first, default \
                10, at most 50) from the audit log: when, outcome, rows, time and the SQL as it ran with every \
                literal redacted. Useful to reuse working query patterns and avoid repeating refused ones.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx: CallContext, a: QueryHistoryArgs| {
            let s = Arc::clone(&s);
            async move { history(&s, &ctx, a).await }
        },
    )]
}

async fn history(s: &Services, ctx: &CallContext, a: QueryHistoryArgs) -> Outcome<QueryHistory> {
    let audit = AuditFacts {
        connection: Some(a.connection_name.clone()),
        ..Default::default()
    };
    if a.limit == 0 || a.limit > MAX_LIMIT {
        return Outcome::fail(
            ToolError::invalid(format!("limit must be between 1 and {MAX_LIMIT}")),
            audit,
        );
    }
    let conn = match s.connection(&ctx.auth, &a.connection_name) {
        Ok(c) => c,
        Err(e) => return Outcome::fail(e, audit),
    };
    let records = s
        .store
        .recent_queries(
            &ctx.auth.org_id,
            &ctx.auth.key_prefix,
            &conn.name,
            QUERY_TOOLS,
            i64::try_from(a.limit).unwrap_or(10),
        )
        .await;
    let records = match records {
        Ok(r) => r,
        Err(e) => {
            return Outcome::fail(
                ToolError::failed(format!("the audit log could not be read: {e}")),
                audit,
            );
        }
    };
    Outcome {
        result: Ok(QueryHistory {
            connection: conn.name.clone(),
            entries: records
                .into_iter()
                .map(|r| HistoryEntry {
                    ts: r.ts,
                    tool: r.tool,
                    decision: r.decision,
                    rule: r.rule,
                    sql: r.sql_redacted,
                    rows: r.rows,
                    duration_ms: r.duration_ms,
                    error: r.error,
                })
                .collect(),
        }),
        audit,
    }
}
