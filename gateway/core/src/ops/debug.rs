//! `debug_cte_query`: runs each CTE of a query on its own, in dependency order, with a sample and a row
//! count per CTE, then the whole query — every part governed and budgeted like any agent query.
//!
//! The split is done by `sluice_governance::split_ctes` on the parsed tree (not by pattern matching), and
//! each CTE runs with only the CTEs it reads, so a refused or broken CTE shows exactly where the problem is
//! while the CTEs that do not depend on it still run.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pipeline::CallContext;
use crate::service::{AuditFacts, ErrorKind, Outcome, Services, ToolError};

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

pub async fn debug_cte(s: &Services, ctx: &CallContext, a: DebugCteArgs) -> Outcome<DebugCteOutput> {
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
