//! `find_join_path`: the best join paths between two tables, each with ready-to-run SQL that this
//! connection's governance has checked.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_catalog::{PathOptions, TableId, render};

use super::table::JoinOut;
use super::{snapshot, system_audit, window};
use crate::auth::AuthContext;
use crate::service::{Outcome, Services, ToolError};

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
    let search = match snap.catalog().find_join_paths(&from, &to, &options) {
        Ok(search) => search,
        Err(e) => return Outcome::fail(ToolError::invalid(e.to_string()), audit),
    };
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
    if paths.is_empty() {
        rendered.text = format!(
            "No join path found between {from} and {to} within {} hops.\n{}",
            a.max_hops, rendered.text
        );
    }
    Outcome {
        result: Ok(JoinPaths {
            connection: snap.conn.name.clone(),
            from_table: from.to_string(),
            to_table: to.to_string(),
            max_hops: a.max_hops,
            paths,
            text: rendered.text,
            notes,
        }),
        audit,
    }
}
