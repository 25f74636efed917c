//! `query_history`: the caller's own recent governed queries on a connection, from the audit log, with
//! every literal redacted (the log never holds them).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::pipeline::CallContext;
use crate::service::{AuditFacts, Outcome, Services, ToolError};

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

pub async fn history(s: &Services, ctx: &CallContext, a: QueryHistoryArgs) -> Outcome<QueryHistory> {
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
