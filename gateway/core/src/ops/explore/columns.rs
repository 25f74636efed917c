//! `explore_column` and `explore_columns`: value counts, statistics and samples of a table's columns, read
//! with SQL the gateway builds from introspected names.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::sql;
use super::types::Aggregates;
use super::{Ran, Snapshot, as_u64, column, snapshot, system_audit};
use crate::auth::AuthContext;
use crate::service::{Outcome, Services, ToolError};

fn default_limit() -> u64 {
    20
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExploreColumnArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// `table` or `schema.table`.
    pub table: String,
    /// The column to explore.
    pub column: String,
    /// Most distinct values to return, 1 to 1000 (default 20).
    #[serde(default = "default_limit")]
    pub limit: u64,
    /// Only values containing this text (case-insensitive; `%` and `_` are wildcards).
    #[serde(default)]
    pub filter_pattern: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ValueCount {
    pub value: serde_json::Value,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ColumnValues {
    pub connection: String,
    pub table: String,
    pub column: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub row_count: Option<u64>,
    pub null_count: Option<u64>,
    pub distinct_count: Option<u64>,
    pub filter_pattern: String,
    /// The most frequent values (matching the pattern), most frequent first.
    pub values: Vec<ValueCount>,
    /// True when more distinct values matched than `limit`.
    pub truncated: bool,
}

pub async fn explore_column(s: &Services, auth: &AuthContext, a: ExploreColumnArgs) -> Outcome<ColumnValues> {
    let mut audit = system_audit(&a.connection_name);
    if !(1..=1000).contains(&a.limit) {
        return Outcome::fail(
            ToolError::invalid(format!("limit must be between 1 and 1000, not {}", a.limit)),
            audit,
        );
    }
    let snap = match snapshot(s, auth, &a.connection_name, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let mut ran = Ran::new(audit);
    let result = explore_column_in(s, auth, &snap, &a, &mut ran).await;
    ran.outcome(result)
}

async fn explore_column_in(
    s: &Services,
    auth: &AuthContext,
    snap: &Snapshot,
    a: &ExploreColumnArgs,
    ran: &mut Ran,
) -> Result<ColumnValues, ToolError> {
    let table = snap.table(&a.table)?;
    let col = column(table, &a.column)?;
    let dialect = snap.conn.dialect;
    let stats = ran
        .query(s, auth, snap, &sql::column_counts(dialect, table, col), 1)
        .await?;
    let row = stats.rows.first();
    let row_count = as_u64(row.and_then(|r| r.first()));
    let non_null = as_u64(row.and_then(|r| r.get(1)));
    let distinct_count = as_u64(row.and_then(|r| r.get(2)));

    let values_sql = sql::column_values(dialect, table, col, &a.filter_pattern, a.limit + 1)?;
    let values = ran.query(s, auth, snap, &values_sql, a.limit + 1).await?;
    let truncated = values.rows.len() as u64 > a.limit || values.truncated;
    Ok(ColumnValues {
        connection: snap.conn.name.clone(),
        table: table.id.to_string(),
        column: col.name.clone(),
        data_type: col.data_type.clone(),
        row_count,
        null_count: row_count.zip(non_null).map(|(r, n)| r.saturating_sub(n)),
        distinct_count,
        filter_pattern: a.filter_pattern.clone(),
        values: values
            .rows
            .iter()
            .take(usize::try_from(a.limit).unwrap_or(usize::MAX))
            .map(|r| ValueCount {
                value: r.first().cloned().unwrap_or_default(),
                count: as_u64(r.get(1)).unwrap_or(0),
            })
            .collect(),
        truncated,
    })
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExploreColumnsArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// `table` or `schema.table`.
    pub table: String,
    /// Columns to explore; all when omitted (at most 100 per call).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Include a few distinct sample values per column (default true).
    #[serde(default = "yes")]
    pub include_samples: bool,
    /// Include counts, distinct counts and min/max per column (default true).
    #[serde(default = "yes")]
    pub include_stats: bool,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ColumnStats {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    pub primary_key: bool,
    pub comment: Option<String>,
    pub null_count: Option<u64>,
    pub distinct_count: Option<u64>,
    pub min: Option<serde_json::Value>,
    pub max: Option<serde_json::Value>,
    pub samples: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ColumnsExploration {
    pub connection: String,
    pub table: String,
    pub kind: String,
    pub row_count: Option<u64>,
    pub columns: Vec<ColumnStats>,
    /// Columns of the table not explored in this call (only when `columns` was omitted).
    pub columns_omitted: usize,
}

const MAX_COLUMNS_PER_CALL: usize = 100;

const SAMPLE_ROWS: u64 = 50;

const SAMPLES_PER_COLUMN: usize = 10;

pub async fn explore_columns(
    s: &Services,
    auth: &AuthContext,
    a: ExploreColumnsArgs,
) -> Outcome<ColumnsExploration> {
    let mut audit = system_audit(&a.connection_name);
    let snap = match snapshot(s, auth, &a.connection_name, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let mut ran = Ran::new(audit);
    let result = explore_columns_in(s, auth, &snap, &a, &mut ran).await;
    ran.outcome(result)
}

async fn explore_columns_in(
    s: &Services,
    auth: &AuthContext,
    snap: &Snapshot,
    a: &ExploreColumnsArgs,
    ran: &mut Ran,
) -> Result<ColumnsExploration, ToolError> {
    let table = snap.table(&a.table)?;
    let (chosen, omitted): (Vec<&sluice_catalog::Column>, usize) = match &a.columns {
        Some(names) if names.is_empty() => {
            return Err(ToolError::invalid(
                "columns is empty; omit it to explore every column",
            ));
        }
        Some(names) if names.len() > MAX_COLUMNS_PER_CALL => {
            return Err(ToolError::invalid(format!(
                "at most {MAX_COLUMNS_PER_CALL} columns per call, not {}",
                names.len()
            )));
        }
        Some(names) => (
            names
                .iter()
                .map(|n| column(table, n))
                .collect::<Result<Vec<_>, _>>()?,
            0,
        ),
        None => (
            table.columns.iter().take(MAX_COLUMNS_PER_CALL).collect(),
            table.columns.len().saturating_sub(MAX_COLUMNS_PER_CALL),
        ),
    };
    let dialect = snap.conn.dialect;
    let mut out: Vec<ColumnStats> = chosen
        .iter()
        .map(|c| ColumnStats {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            nullable: c.nullable,
            primary_key: table.primary_key.contains(&c.name),
            comment: c.comment.clone(),
            null_count: None,
            distinct_count: None,
            min: None,
            max: None,
            samples: Vec::new(),
        })
        .collect();

    let mut row_count = None;
    if a.include_stats && !chosen.is_empty() {
        let (sql, layout) = sql::columns_stats(dialect, table, &chosen);
        let result = ran.query(s, auth, snap, &sql, 1).await?;
        if let Some(row) = result.rows.first() {
            row_count = as_u64(row.first());
            let mut i = 1;
            for (stats, kind) in out.iter_mut().zip(layout) {
                let non_null = as_u64(row.get(i));
                stats.null_count = row_count.zip(non_null).map(|(r, n)| r.saturating_sub(n));
                i += 1;
                if kind != Aggregates::CountOnly {
                    stats.distinct_count = as_u64(row.get(i));
                    i += 1;
                }
                if kind == Aggregates::Ordered {
                    stats.min = row.get(i).cloned().filter(|v| !v.is_null());
                    stats.max = row.get(i + 1).cloned().filter(|v| !v.is_null());
                    i += 2;
                }
            }
        }
    }
    if a.include_samples && !chosen.is_empty() {
        let sql = sql::first_rows(dialect, table, &chosen, SAMPLE_ROWS);
        let result = ran.query(s, auth, snap, &sql, SAMPLE_ROWS).await?;
        for row in &result.rows {
            for (stats, value) in out.iter_mut().zip(row) {
                if !value.is_null()
                    && stats.samples.len() < SAMPLES_PER_COLUMN
                    && !stats.samples.contains(value)
                {
                    stats.samples.push(value.clone());
                }
            }
        }
    }
    Ok(ColumnsExploration {
        connection: snap.conn.name.clone(),
        table: table.id.to_string(),
        kind: table.kind.label().to_owned(),
        row_count: row_count.or(table.row_estimate),
        columns: out,
        columns_omitted: omitted,
    })
}
