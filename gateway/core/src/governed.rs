//! The one governed path: the only code that hands SQL carrying agent input to an engine.
//!
//! [`Engine`] wraps a connection's warehouse and keeps its `query` private to this module, so that
//! nothing else in the gateway can run a statement on it: every tool that runs agent SQL (queries,
//! EXPLAIN and cost estimates, per-CTE debugging, exploration, join comparison, dbt verification, the
//! sandbox's query inputs) goes through [`run`], which governs, admits the budget, runs, records health
//! and hands back the audit facts. The gateway's fixed catalog SQL (introspection) is reached through
//! the engine's other methods, audited as system queries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_connectors::{ConnectorError, ConnectorKind, QueryOptions, QueryResult, Warehouse};
use sluice_governance::{Decision, StatementKind};

use crate::auth::AuthContext;
use crate::registry::Connection;
use crate::service::{Outcome, Services, ToolError, allowed_sql};
use crate::store::budgets::Usage;

/// The most plan rows an EXPLAIN may return (plans are a few rows; this bounds a pathological one).
const PLAN_MAX_ROWS: usize = 10_000;

/// A connection's engine. Introspection is open to every caller; running a statement is not (see
/// [`run`]).
#[derive(Clone)]
pub struct Engine(Arc<dyn Warehouse>);

impl Engine {
    pub fn new(warehouse: Arc<dyn Warehouse>) -> Engine {
        Engine(warehouse)
    }

    pub fn kind(&self) -> ConnectorKind {
        self.0.kind()
    }

    /// The pool's sessions now (for the metrics), for engines that pool.
    pub fn pool_usage(&self) -> Option<sluice_connectors::PoolUsage> {
        self.0.pool_usage()
    }

    /// An identity for caches keyed by the engine (an engine survives registry reloads that do not
    /// change its connection).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as *const () as usize
    }

    /// The gateway's fixed catalog queries (system queries, no agent SQL).
    pub async fn list_tables(&self) -> Result<Vec<sluice_connectors::TableSummary>, ConnectorError> {
        self.0.list_tables().await
    }

    pub async fn describe_table(
        &self,
        table: &sluice_connectors::TableRef,
    ) -> Result<Option<sluice_connectors::TableDetail>, ConnectorError> {
        self.0.describe_table(table).await
    }

    pub async fn snapshot(&self) -> Result<sluice_catalog::SchemaSnapshot, ConnectorError> {
        self.0.snapshot().await
    }

    pub async fn ping(&self) -> Result<(), ConnectorError> {
        self.0.ping().await
    }

    /// Private to this module: only [`run`] executes statements.
    async fn query(&self, sql: &str, options: QueryOptions) -> Result<QueryResult, ConnectorError> {
        self.0.query(sql, options).await
    }
}

/// What a governed call does with the statement governance allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Run it and read at most `row_limit` rows (capped by the connection and the server).
    Run { row_limit: u64 },
    /// Have the engine plan it with its own EXPLAIN (never `ANALYZE`: nothing runs), as `Run` would run
    /// it with the server's row cap.
    Explain,
}

/// A statement governance allowed and the engine answered.
pub struct Ran {
    pub conn: Arc<Connection>,
    /// The SQL governance allowed (with the row limit injected); for `Explain`, the SQL that was planned.
    pub governed: String,
    /// The effective row cap.
    pub cap: u64,
    pub result: QueryResult,
    /// Each row's size as JSON (what it costs in a structured result), measured once here for the
    /// budget and reused for paging. Empty for `Explain`.
    pub row_bytes: Vec<u64>,
    pub elapsed: Duration,
}

/// Governs and runs one statement: connection → governance → (EXPLAIN form) → budget admission →
/// execution (timed, for health) → budget spend. `session` is the MCP session the spend is booked to.
pub async fn run(
    s: &Services,
    auth: &AuthContext,
    session: Option<&str>,
    connection: &str,
    sql: &str,
    mode: Mode,
) -> Outcome<Ran> {
    let (mut audit, conn) = s.sql_target(auth, connection, sql);
    let conn = match conn {
        Ok(c) => c,
        Err(e) => return Outcome::fail(e, audit),
    };
    let cap = match mode {
        Mode::Run { row_limit } => s.row_cap(&conn, row_limit),
        Mode::Explain => s.row_cap(&conn, s.settings.max_rows),
    };
    // One row beyond the cap tells us whether the result was cut. Governance reads the policy's rules;
    // its row maximum is already folded into the connection's cap.
    let (verdict, redacted) =
        crate::governing::govern(sql, conn.dialect, &conn.policy, cap.saturating_add(1));
    let governed = match allowed_sql(&verdict) {
        Ok(sql) => sql,
        Err(e) => {
            audit.rule = e.rule.clone();
            return Outcome::fail(e, audit);
        }
    };
    let (statement, max_rows) = match mode {
        Mode::Run { .. } => {
            audit.sql = Some(governed.clone());
            audit.sql_redacted = redacted;
            (None, usize::try_from(cap).unwrap_or(usize::MAX))
        }
        Mode::Explain => {
            if let Decision::Allow {
                statement: kind @ (StatementKind::Explain | StatementKind::Show | StatementKind::Describe),
                ..
            } = verdict.decision
            {
                let what = match kind {
                    StatementKind::Explain => "EXPLAIN",
                    StatementKind::Show => "SHOW",
                    _ => "DESCRIBE",
                };
                return Outcome::fail(
                    ToolError::invalid(format!(
                        "send the query itself: the gateway builds the EXPLAIN, and a {what} statement has no plan to show"
                    )),
                    audit,
                );
            }
            // The audit records the EXPLAIN that ran; it is redacted from its own text.
            let explain = conn.kind.explain_sql(&governed);
            audit.sql = Some(explain.clone());
            (Some(explain), PLAN_MAX_ROWS)
        }
    };
    let session = session.unwrap_or_default();
    // The budget is checked before the engine sees anything. A query the budget already counted at
    // admission is not counted again with its spend.
    let to_count = match s.budgets.admit(auth, session).await {
        Ok(reserved) => u64::from(!reserved),
        Err(e) => {
            audit.rule = e.rule.clone();
            return Outcome::fail(e, audit);
        }
    };
    let options = QueryOptions {
        max_rows,
        timeout: s.timeout(&conn),
    };
    let started = Instant::now();
    let result = conn
        .engine
        .query(statement.as_deref().unwrap_or(&governed), options)
        .await;
    let elapsed = started.elapsed();
    s.health.record(&auth.org_id, &conn.name, elapsed, result.is_ok());
    let mut usage = Usage {
        queries: to_count,
        seconds: elapsed.as_secs_f64(),
        ..Default::default()
    };
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            s.budgets.spend(auth, session, usage).await;
            return Outcome::fail(e.into(), audit);
        }
    };
    // A plan is not data: an EXPLAIN spends a query and its time, no rows or bytes.
    let row_bytes: Vec<u64> = match mode {
        Mode::Run { .. } => result.rows.iter().map(|r| crate::cursors::row_bytes(r)).collect(),
        Mode::Explain => Vec::new(),
    };
    if let Mode::Run { .. } = mode {
        usage.rows = result.rows.len() as u64;
        usage.bytes = row_bytes.iter().sum();
        audit.rows = Some(usage.rows);
    }
    s.budgets.spend(auth, session, usage).await;
    Outcome {
        result: Ok(Ran {
            conn,
            governed,
            cap,
            result,
            row_bytes,
            elapsed,
        }),
        audit,
    }
}
