//! `explore_table`: one table in depth, from the snapshot, with a few sample values per column read through
//! the governed path.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::sql;
use super::{snapshot, system_audit};
use crate::auth::AuthContext;
use crate::service::{AuditFacts, Outcome, Services};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExploreTableArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// `table` or `schema.table` (e.g. `public.customers`).
    pub table_name: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ExploredColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    pub primary_key: bool,
    pub default: Option<String>,
    pub comment: Option<String>,
    /// `schema.table.column` this column joins to (declared or inferred).
    pub references: Option<String>,
    /// A few distinct values from the first rows.
    pub samples: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct JoinOut {
    pub from: String,
    pub from_columns: Vec<String>,
    pub to: String,
    pub to_columns: Vec<String>,
    /// `declared` or `inferred`.
    pub origin: String,
    pub confidence: f32,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TableExploration {
    pub connection: String,
    pub schema: String,
    pub name: String,
    pub kind: String,
    pub row_estimate: Option<u64>,
    pub comment: Option<String>,
    pub columns: Vec<ExploredColumn>,
    pub primary_key: Vec<String>,
    /// Joins from this table to others.
    pub references: Vec<JoinOut>,
    /// Joins from other tables to this one.
    pub referenced_by: Vec<JoinOut>,
    pub indexes: Vec<String>,
    /// Why samples are missing, when they are.
    pub samples_note: Option<String>,
    /// Columns not listed, to stay within the size budget.
    pub columns_omitted: usize,
}

/// Most columns `explore_table` lists; wider tables say how many were left out.
const MAX_EXPLORED_COLUMNS: usize = 150;

fn join_out(edge: &sluice_catalog::JoinEdge) -> JoinOut {
    JoinOut {
        from: edge.from.to_string(),
        from_columns: edge.from_columns.clone(),
        to: edge.to.to_string(),
        to_columns: edge.to_columns.clone(),
        origin: if edge.is_declared() {
            "declared"
        } else {
            "inferred"
        }
        .to_owned(),
        confidence: edge.confidence,
        reason: edge.reason.clone(),
    }
}

/// How many rows `explore_table` reads to pick sample values from.
const SAMPLE_ROWS: u64 = 20;

/// Distinct sample values shown per column.
const SAMPLES_PER_COLUMN: usize = 5;

pub async fn explore_table(
    s: &Services,
    auth: &AuthContext,
    connection: &str,
    table_name: &str,
) -> Outcome<TableExploration> {
    let mut audit = system_audit(connection);
    let snap = match snapshot(s, auth, connection, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let table = match snap.table(table_name) {
        Ok(t) => t,
        Err(e) => return Outcome::fail(e, audit),
    };
    let edges = snap.catalog().edges_of(&table.id);
    let references: Vec<JoinOut> = edges
        .iter()
        .filter(|e| e.from == table.id)
        .map(|e| join_out(e))
        .collect();
    let referenced_by: Vec<JoinOut> = edges
        .iter()
        .filter(|e| e.to == table.id && e.from != table.id)
        .map(|e| join_out(e))
        .collect();

    // Samples: the first rows of the table through the governed path, like any agent query.
    let shown: Vec<&sluice_catalog::Column> = table.columns.iter().take(MAX_EXPLORED_COLUMNS).collect();
    let mut samples: Vec<Vec<serde_json::Value>> = vec![Vec::new(); shown.len()];
    let mut samples_note = None;
    if !shown.is_empty() {
        let sql = sql::first_rows(snap.conn.dialect, table, &shown, SAMPLE_ROWS);
        let outcome = s.query(auth, &snap.conn.name, &sql, SAMPLE_ROWS).await;
        audit = AuditFacts {
            system_query: false,
            ..outcome.audit
        };
        match outcome.result {
            Ok(result) => {
                for row in &result.rows {
                    for (i, value) in row.iter().enumerate() {
                        let Some(column) = samples.get_mut(i) else {
                            continue;
                        };
                        if !value.is_null() && column.len() < SAMPLES_PER_COLUMN && !column.contains(value) {
                            column.push(value.clone());
                        }
                    }
                }
                if result.rows.is_empty() {
                    samples_note = Some("the table has no rows".to_owned());
                }
            }
            Err(e) => samples_note = Some(format!("not available: {}", e.message)),
        }
    }

    let references_of = |name: &str| {
        edges
            .iter()
            .filter(|e| e.from == table.id && e.from_columns.len() == 1 && e.from_columns[0] == name)
            .max_by(|a, b| a.weight().total_cmp(&b.weight()))
            .map(|e| format!("{}.{}", e.to, e.to_columns.join(",")))
    };
    let columns = shown
        .iter()
        .zip(samples)
        .map(|(c, samples)| ExploredColumn {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            nullable: c.nullable,
            primary_key: table.primary_key.contains(&c.name),
            default: c.default.clone(),
            comment: c.comment.clone(),
            references: references_of(&c.name),
            samples,
        })
        .collect();
    let mut indexes: Vec<String> = table
        .unique_constraints
        .iter()
        .map(|u| format!("UNIQUE ({})", u.columns.join(", ")))
        .collect();
    indexes.extend(table.indexes.iter().map(|i| {
        format!(
            "{}{} ({})",
            if i.unique { "UNIQUE " } else { "" },
            i.name,
            i.columns.join(", ")
        )
    }));
    Outcome {
        result: Ok(TableExploration {
            connection: snap.conn.name.clone(),
            schema: table.id.schema.clone(),
            name: table.id.name.clone(),
            kind: table.kind.label().to_owned(),
            row_estimate: table.row_estimate,
            comment: table.comment.clone(),
            columns,
            primary_key: table.primary_key.clone(),
            references,
            referenced_by,
            indexes,
            samples_note,
            columns_omitted: table.columns.len().saturating_sub(MAX_EXPLORED_COLUMNS),
        }),
        audit,
    }
}
