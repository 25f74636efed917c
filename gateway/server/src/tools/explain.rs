//! `explain_query` and `estimate_query_cost`: the engine's own plan for a governed query, and what it
//! tells about rows, bytes and cost.
//!
//! The agent's SQL is governed first (exactly as `query_database` would run it, row limit included); the
//! gateway then wraps the governed SQL in the dialect's EXPLAIN itself, so the agent never sends EXPLAIN
//! text of its own and nothing runs (no `ANALYZE`). The EXPLAIN form and the reading of each engine's
//! plan live with the engines (`sluice_dialect::ConnectorKind::explain_sql`, `read_plan`).

use std::fmt::Write as _;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dialect::PlanFacts;

use crate::tools::{Effect, Meta, Render, ToolSpec, spec};
use sluice_core::auth::Scope;
use sluice_core::pipeline::CallContext;
use sluice_core::service::{Explained, Outcome, Services};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// One read-only query in the connection's dialect; it is planned, not run.
    pub sql: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ExplainOutput {
    pub connection: String,
    pub engine: String,
    /// The governed SQL that was planned (as query_database would run it).
    pub sql_explained: String,
    #[serde(flatten)]
    pub facts: PlanFacts,
    /// The engine's plan (JSON or text as the engine gives it, shortened when long).
    pub plan: String,
}

/// `estimate_query_cost`: the plan's numbers without the plan.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CostEstimate {
    pub connection: String,
    pub engine: String,
    pub sql_explained: String,
    #[serde(flatten)]
    pub facts: PlanFacts,
}

fn number(v: Option<u64>) -> String {
    v.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
}

fn facts_text(text: &mut String, f: &PlanFacts) {
    let _ = writeln!(text, "Estimated rows: {}", number(f.estimated_rows));
    let _ = writeln!(text, "Estimated bytes: {}", number(f.estimated_bytes));
    let _ = writeln!(text, "Scanned rows: {}", number(f.scanned_rows));
    if let Some(cost) = f.estimated_cost {
        let _ = writeln!(text, "Optimizer cost: {cost:.2}");
    }
    let _ = writeln!(text, "Is expensive: {}", f.is_expensive);
    for r in &f.expensive_reasons {
        let _ = writeln!(text, "  ⚠ {r}");
    }
    if !f.tables.is_empty() {
        let _ = writeln!(text, "Tables: {}", f.tables.join(", "));
    }
    for n in &f.notes {
        let _ = writeln!(text, "Note: {n}");
    }
}

impl Render for ExplainOutput {
    fn render(&self) -> String {
        let mut text = format!("-- EXPLAIN on {} ({})\n", self.connection, self.engine);
        facts_text(&mut text, &self.facts);
        let _ = write!(text, "\n{}", self.plan);
        text.trim_end().to_owned()
    }
}

impl Render for CostEstimate {
    fn render(&self) -> String {
        let mut text = format!("Cost estimate on {} ({})\n", self.connection, self.engine);
        facts_text(&mut text, &self.facts);
        text.trim_end().to_owned()
    }
}

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let s = Arc::clone(services);
    let explain_query = spec(
        Meta {
            name: "explain_query",
            title: "Show the engine's plan for a query",
            description: "Get the execution plan of a read-only query without running it: the engine's plan, \
                estimated rows and an is_expensive flag derived from the plan. The SQL is governed first, as \
                query_database would run it (row limit included); send the query itself, not EXPLAIN.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx: CallContext, a: ExplainArgs| {
            let s = Arc::clone(&s);
            async move {
                let out = plan(&s, &ctx, &a).await;
                Outcome {
                    result: out.result.map(|e| ExplainOutput {
                        connection: e.connection,
                        engine: e.engine,
                        sql_explained: e.sql_explained,
                        facts: e.facts,
                        plan: e.plan,
                    }),
                    audit: out.audit,
                }
            }
        },
    );
    let s = Arc::clone(services);
    let cost = spec(
        Meta {
            name: "estimate_query_cost",
            title: "Estimate a query's rows, bytes and cost",
            description: "Dry run: estimate the rows and bytes a read-only query returns or reads, from the \
                engine's EXPLAIN, before running it. Says what the engine cannot estimate (SQLite gives no row \
                counts; DuckDB and MariaDB no widths) rather than guessing.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx: CallContext, a: ExplainArgs| {
            let s = Arc::clone(&s);
            async move {
                let out = plan(&s, &ctx, &a).await;
                Outcome {
                    result: out.result.map(|e| CostEstimate {
                        connection: e.connection,
                        engine: e.engine,
                        sql_explained: e.sql_explained,
                        facts: e.facts,
                    }),
                    audit: out.audit,
                }
            }
        },
    );
    vec![explain_query, cost]
}

/// Both tools plan on the one governed path, budget included (a budget counts explain and cost calls).
async fn plan(s: &Services, ctx: &CallContext, a: &ExplainArgs) -> Outcome<Explained> {
    s.explain_in(&ctx.auth, ctx.session_id.as_deref(), &a.connection_name, &a.sql)
        .await
}
