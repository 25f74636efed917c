//! `find_join_path`: the best join paths between two tables, each with ready-to-run SQL that this
//! connection's governance has checked, and the inferred joins on them checked against the data: a sample
//! of each join's referencing values is looked up on its key side (governed SQL, once per join and
//! snapshot), and a join the values contradict ranks its paths down.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_catalog::{JoinEdge, JoinStep, PathOptions, PathSearch, Quoting, TableId, render};

use super::table::JoinOut;
use super::{Ran, Snapshot, as_u64, snapshot, system_audit, window};
use crate::auth::AuthContext;
use crate::schema_cache::JoinValues;
use crate::service::{Outcome, Services, ToolError};

/// Inferred joins checked against the data per call (the best paths' first); the rest keep their
/// naming evidence only.
const VALUE_CHECKS: usize = 6;

/// Referencing values sampled per check, so that a check costs the same on any table size.
const VALUE_SAMPLE: u64 = 200;

/// No check starts after this much time in one call.
const VALUE_BUDGET: Duration = Duration::from_secs(2);

/// At or above this share of sampled values found on the key side, the values agree with the join.
const AGREE: f64 = 0.9;

/// Below this share the values contradict the join: paths through it are ranked down by the share.
const DISAGREE: f64 = 0.5;

fn default_max_hops() -> usize {
    4
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinPathArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// Source table, `table` or `schema.table`.
    pub from_table: String,
    /// Target table, `table` or `schema.table`.
    pub to_table: String,
    /// Most joins in a path, 1 to 6 (default 4).
    #[serde(default = "default_max_hops")]
    pub max_hops: usize,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PathOut {
    pub tables: Vec<String>,
    pub hops: usize,
    pub score: f32,
    pub joins: Vec<JoinOut>,
    /// Ready-to-run SQL joining the path's tables; checked by governance before it was returned.
    pub sql: String,
    /// `allowed`, or why governance would refuse the SQL on this connection.
    pub governance: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct JoinPaths {
    pub connection: String,
    pub from_table: String,
    pub to_table: String,
    pub max_hops: usize,
    pub paths: Vec<PathOut>,
    pub text: String,
    pub notes: Vec<String>,
}

pub async fn find_join_path(s: &Services, auth: &AuthContext, a: JoinPathArgs) -> Outcome<JoinPaths> {
    let mut audit = system_audit(&a.connection_name);
    if !(1..=6).contains(&a.max_hops) {
        return Outcome::fail(
            ToolError::invalid(format!("max_hops must be between 1 and 6, not {}", a.max_hops)),
            audit,
        );
    }
    let snap = match snapshot(s, auth, &a.connection_name, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let (from, to) = match (snap.table(&a.from_table), snap.table(&a.to_table)) {
        (Ok(f), Ok(t)) => (f.id.clone(), t.id.clone()),
        (Err(e), _) | (_, Err(e)) => return Outcome::fail(e, audit),
    };
    let options = PathOptions {
        max_hops: a.max_hops,
        quoting: snap.quoting(),
        ..PathOptions::default()
    };
    let mut search = match snap.catalog().find_join_paths(&from, &to, &options) {
        Ok(search) => search,
        Err(e) => return Outcome::fail(ToolError::invalid(e.to_string()), audit),
    };
    let mut ran = Ran::new(audit);
    let value_notes = check_values(s, auth, &snap, &mut search, &mut ran).await;
    // Every path's SQL must pass this connection's governance, so an agent can run it as returned.
    let policy = &snap.conn.policy;
    let cap = s.row_cap(&snap.conn, crate::config::DEFAULT_ROW_LIMIT);
    let paths: Vec<PathOut> = search
        .paths
        .iter()
        .map(|p| {
            let verdict = sluice_governance::govern(&p.sql, snap.conn.dialect, policy, cap);
            let governance = match crate::service::allowed_sql(&verdict) {
                Ok(_) => "allowed".to_owned(),
                Err(e) => format!("refused: {}", e.message),
            };
            PathOut {
                tables: p.tables.iter().map(TableId::to_string).collect(),
                hops: p.hops,
                score: p.score,
                joins: p
                    .steps
                    .iter()
                    .map(|step| JoinOut {
                        from: step.left.to_string(),
                        from_columns: step.left_columns.clone(),
                        to: step.right.to_string(),
                        to_columns: step.right_columns.clone(),
                        origin: match step.origin {
                            sluice_catalog::EdgeOrigin::Declared { .. } => "declared",
                            sluice_catalog::EdgeOrigin::Inferred { .. } => "inferred",
                        }
                        .to_owned(),
                        confidence: step.confidence,
                        reason: step.reason.clone(),
                    })
                    .collect(),
                sql: p.sql.clone(),
                governance,
            }
        })
        .collect();
    let mut rendered = render::join_paths(&search, &window(None));
    let refused: Vec<String> = paths
        .iter()
        .enumerate()
        .filter(|(_, p)| p.governance != "allowed")
        .map(|(i, p)| format!("path {}: governance {}", i + 1, p.governance))
        .collect();
    if !refused.is_empty() {
        rendered.text = format!("{}\n{}", refused.join("\n"), rendered.text);
    }
    let mut notes: Vec<String> = search.findings.iter().map(|f| f.message.clone()).collect();
    notes.extend(refused);
    notes.extend(value_notes);
    if paths.is_empty() {
        rendered.text = format!(
            "No join path found between {from} and {to} within {} hops.\n{}",
            a.max_hops, rendered.text
        );
    }
    ran.outcome(Ok(JoinPaths {
        connection: snap.conn.name.clone(),
        from_table: from.to_string(),
        to_table: to.to_string(),
        max_hops: a.max_hops,
        paths,
        text: rendered.text,
        notes,
    }))
}

/// The catalog's inferred edge a step crosses, in either direction.
fn inferred_edge<'a>(snap: &'a Snapshot, step: &JoinStep) -> Option<&'a JoinEdge> {
    snap.catalog().edges_of(&step.left).into_iter().find(|e| {
        !e.is_declared()
            && ((e.from == step.left
                && e.from_columns == step.left_columns
                && e.to == step.right
                && e.to_columns == step.right_columns)
                || (e.to == step.left
                    && e.to_columns == step.left_columns
                    && e.from == step.right
                    && e.from_columns == step.right_columns))
    })
}

fn edge_key(e: &JoinEdge) -> String {
    format!(
        "{}({})->{}({})",
        e.from,
        e.from_columns.join(","),
        e.to,
        e.to_columns.join(",")
    )
}

/// How many of up to [`VALUE_SAMPLE`] non-null referencing values of `edge` exist on its key side.
fn values_sql(q: Quoting, edge: &JoinEdge) -> String {
    let sampled: Vec<String> = edge
        .from_columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} AS v{i}", q.ident(c)))
        .collect();
    let not_null: Vec<String> = edge
        .from_columns
        .iter()
        .map(|c| format!("{} IS NOT NULL", q.ident(c)))
        .collect();
    let on: Vec<String> = edge
        .to_columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("k.{} = s.v{i}", q.ident(c)))
        .collect();
    format!(
        "SELECT count(*) AS sampled, sum(CASE WHEN EXISTS (SELECT 1 FROM {} AS k WHERE {}) THEN 1 ELSE 0 END) \
         AS found FROM (SELECT {} FROM {} WHERE {} LIMIT {VALUE_SAMPLE}) AS s",
        edge.to.sql(q),
        on.join(" AND "),
        sampled.join(", "),
        edge.from.sql(q),
        not_null.join(" AND ")
    )
}

/// What the values say about a join, for its reason, and the factor its paths' scores take.
fn judge(edge: &JoinEdge, v: JoinValues) -> (String, f32) {
    let columns = format!("{}.{}", edge.from.name, edge.from_columns.join(", "));
    if v.sampled == 0 {
        return (format!("values: {columns} holds no values to compare"), 1.0);
    }
    let share = v.found as f64 / v.sampled as f64;
    let counts = format!(
        "{} of {} sampled {columns} values found in {}",
        v.found, v.sampled, edge.to.name
    );
    if share >= AGREE {
        (format!("values agree: {counts}"), 1.0)
    } else if share < DISAGREE {
        (
            format!("values disagree: only {counts}; probably not this join"),
            share.max(0.05) as f32,
        )
    } else {
        (format!("values partly agree: {counts}"), 1.0)
    }
}

/// Checks the inferred joins of the best paths against the data (each once per snapshot), adds what the
/// values say to each step's reason, ranks down the paths through joins the values contradict, and
/// returns notes for what could not be checked.
async fn check_values(
    s: &Services,
    auth: &AuthContext,
    snap: &Snapshot,
    search: &mut PathSearch,
    ran: &mut Ran,
) -> Vec<String> {
    let cache = &snap.lookup.current.join_values;
    let cached = |key: &str| cache.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied();
    let mut notes = Vec::new();
    let mut wanted: Vec<&JoinEdge> = Vec::new();
    for step in search.paths.iter().flat_map(|p| &p.steps) {
        if let Some(edge) = inferred_edge(snap, step)
            && cached(&edge_key(edge)).is_none()
            && !wanted.contains(&edge)
        {
            wanted.push(edge);
        }
    }
    let started = Instant::now();
    let quoting = snap.quoting();
    let mut skipped = 0;
    for (i, edge) in wanted.into_iter().enumerate() {
        if i >= VALUE_CHECKS || started.elapsed() >= VALUE_BUDGET {
            skipped += 1;
            continue;
        }
        match ran.query(s, auth, snap, &values_sql(quoting, edge), 1).await {
            Ok(out) => {
                let row = out.rows.first();
                let v = JoinValues {
                    sampled: as_u64(row.and_then(|r| r.first())).unwrap_or(0),
                    found: as_u64(row.and_then(|r| r.get(1))).unwrap_or(0),
                };
                cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(edge_key(edge), v);
            }
            Err(e) => notes.push(format!(
                "values of {} -> {} not checked: {}",
                edge.from, edge.to, e.message
            )),
        }
    }
    if skipped > 0 {
        notes.push(format!(
            "{skipped} inferred join(s) not checked against the data in this call (at most {VALUE_CHECKS} \
             per call, {} s); they are checked on a later call",
            VALUE_BUDGET.as_secs()
        ));
    }
    for path in &mut search.paths {
        for step in &mut path.steps {
            let Some(edge) = inferred_edge(snap, step) else {
                continue;
            };
            if let Some(v) = cached(&edge_key(edge)) {
                let (said, factor) = judge(edge, v);
                step.reason = format!("{}; {said}", step.reason);
                path.score *= factor;
            }
        }
    }
    search.paths.sort_by(|a, b| b.score.total_cmp(&a.score));
    notes
}
