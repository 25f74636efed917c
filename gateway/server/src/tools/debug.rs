//! `debug_cte_query`: runs each CTE of a query on its own, in dependency order, with a sample and a row
//! count per CTE, then the whole query — every part governed and budgeted like any agent query.
//!
//! The split is done by `sluice_governance::split_ctes` on the parsed tree (not by pattern matching), and
//! each CTE runs with only the CTEs it reads, so a refused or broken CTE shows exactly where the problem is
//! while the CTEs that do not depend on it still run.

use std::fmt::Write as _;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::mcp::render;
use crate::tools::{Effect, Meta, Render, ToolSpec, spec};
use sluice_core::auth::Scope;
use sluice_core::pipeline::CallContext;
use sluice_core::service::{AuditFacts, ErrorKind, Outcome, Services, ToolError};

fn default_sample_rows() -> u64 {
    5
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DebugCteArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// One read-only query with a WITH clause, in the connection's dialect.
    pub sql: String,
    /// Sample rows shown per CTE and for the whole query (default 5, at most 100).
    #[serde(default = "default_sample_rows")]
    #[schemars(range(min = 1, max = 100))]
    pub row_limit: u64,
}

/// One step: a CTE on its own, or the whole query.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CteStep {
    /// The CTE's name; `(query)` for the whole query.
    pub name: String,
    /// CTEs this one reads directly.
    pub depends_on: Vec<String>,
    /// `ok`, `refused` (governance) or `failed` (the engine).
    pub status: String,
    pub rule: Option<String>,
    pub error: Option<String>,
    /// All rows of the CTE (counted by the engine); null when it did not run.
    pub row_count: Option<u64>,
    pub columns: Vec<String>,
    pub sample: Vec<Vec<Value>>,
    /// The standalone SQL that was governed for this step.
    pub sql: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DebugCteOutput {
    pub connection: String,
    /// The CTEs in the order they ran (dependencies first).
    pub ctes: Vec<CteStep>,
    pub query: CteStep,
}

fn step_text(text: &mut String, step: &CteStep) {
    match step.status.as_str() {
        "ok" => {
            let count = step.row_count.map_or_else(|| "?".to_owned(), |n| n.to_string());
            let _ = writeln!(text, "OK ✓ — {count} rows, {} columns", step.columns.len());
            if !step.sample.is_empty() {
                let rows: Vec<Vec<String>> = step
                    .sample
                    .iter()
                    .map(|r| r.iter().map(render::cell_text).collect())
                    .collect();
                let _ = writeln!(text, "{}", render::table(&step.columns, &rows));
            }
        }
        "refused" => {
            let _ = writeln!(
                text,
                "REFUSED ✗ [{}]: {}",
                step.rule.as_deref().unwrap_or("policy"),
                step.error.as_deref().unwrap_or_default()
            );
        }
        _ => {
            let _ = writeln!(text, "ERROR ✗: {}", step.error.as_deref().unwrap_or_default());
        }
    }
}

impl Render for DebugCteOutput {
    fn render(&self) -> String {
        let mut text = if self.ctes.is_empty() {
            "No CTEs found (the query has no WITH clause); the whole query was run.\n".to_owned()
        } else {
            let names: Vec<&str> = self.ctes.iter().map(|c| c.name.as_str()).collect();
            format!(
                "Found {} CTEs, run in dependency order: {}\n",
                self.ctes.len(),
                names.join(", ")
            )
        };
        for (i, step) in self.ctes.iter().enumerate() {
            let reads = if step.depends_on.is_empty() {
                String::new()
            } else {
                format!(" (reads {})", step.depends_on.join(", "))
            };
            let _ = writeln!(text, "\n--- CTE {}: {}{reads} ---", i + 1, step.name);
            step_text(&mut text, step);
        }
        let _ = writeln!(text, "\n--- Full query ---");
        step_text(&mut text, &self.query);
        text.trim_end().to_owned()
    }
}

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let s = Arc::clone(services);
    vec![spec(
        Meta {
            name: "debug_cte_query",
            title: "Debug a WITH query CTE by CTE",
            description: "Break a query with WITH clauses into its CTEs and run each on its own (with only the \
                CTEs it reads), in dependency order: row count, columns and a sample per CTE, then the whole \
                query. Every part is governed like query_database; a refused or failing CTE is reported and the \
                others still run. Use it to find which step of a complex query is wrong.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx: CallContext, a: DebugCteArgs| {
            let s = Arc::clone(&s);
            async move { debug_cte(&s, &ctx, a).await }
        },
    )]
}

fn pending(name: String, depends_on: Vec<String>, sql: String) -> CteStep {
    CteStep {
        name,
        depends_on,
        status: "ok".to_owned(),
        rule: None,
        error: None,
        row_count: None,
        columns: Vec::new(),
        sample: Vec::new(),
        sql,
    }
}

/// Runs one step's sample and, when the sample does not hold every row, its count.
async fn run_step(
    s: &Services,
    ctx: &CallContext,
    connection: &str,
    mut step: CteStep,
    count_sql: String,
    row_limit: u64,
) -> CteStep {
    let sample_sql = step.sql.clone();
    let session = ctx.session_id.as_deref();
    let sample = s
        .query_in(&ctx.auth, session, connection, &sample_sql, row_limit)
        .await;
    let fail = |step: &mut CteStep, e: ToolError| {
        step.status = if e.kind == ErrorKind::Denied {
            "refused"
        } else {
            "failed"
        }
        .to_owned();
        step.rule = e.rule;
        step.error = Some(e.message);
    };
    match sample.result {
        Ok(q) => {
            step.columns = q.columns.into_iter().map(|c| c.name).collect();
            if !q.truncated {
                step.row_count = Some(q.row_count);
            }
            step.sample = q.rows;
        }
        Err(e) => {
            fail(&mut step, e);
            return step;
        }
    }
    if step.row_count.is_none() {
        let counted = s.query_in(&ctx.auth, session, connection, &count_sql, 1).await;
        match counted.result {
            Ok(q) => {
                step.row_count = q
                    .rows
                    .first()
                    .and_then(|r| r.first())
                    .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|t| t.parse().ok())));
            }
            Err(e) => fail(&mut step, e),
        }
    }
    step
}

async fn debug_cte(s: &Services, ctx: &CallContext, a: DebugCteArgs) -> Outcome<DebugCteOutput> {
    let mut audit = AuditFacts {
        connection: Some(a.connection_name.clone()),
        sql: Some(a.sql.clone()),
        ..Default::default()
    };
    if a.row_limit == 0 || a.row_limit > 100 {
        return Outcome::fail(
            ToolError::invalid("row_limit must be between 1 and 100 sample rows"),
            audit,
        );
    }
    let conn = match s.connection(&ctx.auth, &a.connection_name) {
        Ok(c) => c,
        Err(e) => return Outcome::fail(e, audit),
    };
    audit.dialect = Some(conn.dialect);
    let parts = match sluice_governance::split_ctes(&a.sql, conn.dialect) {
        Ok(parts) => parts,
        Err(finding) => {
            audit.rule = Some(finding.rule.to_owned());
            return Outcome::fail(ToolError::denied(&finding), audit);
        }
    };
    let mut ctes = Vec::with_capacity(parts.len());
    for part in parts {
        ctes.push(
            run_step(
                s,
                ctx,
                &a.connection_name,
                pending(part.name, part.depends_on, part.sample_sql),
                part.count_sql,
                a.row_limit,
            )
            .await,
        );
    }
    let query = run_step(
        s,
        ctx,
        &a.connection_name,
        pending("(query)".to_owned(), Vec::new(), a.sql.clone()),
        format!(
            "SELECT count(*) AS row_count FROM ({}) AS sluice_debug",
            a.sql.trim().trim_end_matches(';')
        ),
        a.row_limit,
    )
    .await;
    audit.rows = query.row_count;
    audit.rule = query.rule.clone();
    Outcome {
        result: Ok(DebugCteOutput {
            connection: conn.name.clone(),
            ctes,
            query,
        }),
        audit,
    }
}
