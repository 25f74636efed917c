//! `get_date_boundaries`: MIN and MAX of every date and timestamp column of a connection, in as few
//! statements as the engines allow, with the latest date per table and overall.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_catalog::{Table, TableKind};

use super::sql::{Slots, boundaries_sql, chunks};
use super::text::{cell, one_line, value_text};
use super::types::is_date_type;
use super::{Ran, Snapshot, as_u64, snapshot, system_audit};
use crate::auth::AuthContext;
use crate::service::{ErrorKind, Outcome, Services, ToolError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DateBoundariesArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DateColumn {
    pub column: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub min: Option<serde_json::Value>,
    pub max: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TableDates {
    pub table: String,
    /// A view: its dates are computed from the relations it reads, on every read.
    pub view: bool,
    pub row_count: Option<u64>,
    pub columns: Vec<DateColumn>,
    /// The latest value over the table's date columns.
    pub max: Option<String>,
    /// Why this table could not be read, when it could not.
    pub error: Option<String>,
    /// Future dates, columns without values, tables ending long before the others.
    pub flags: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DateBoundaries {
    pub connection: String,
    pub tables: Vec<TableDates>,
    /// The latest date or timestamp in the connection.
    pub global_max: Option<String>,
    /// The table holding it.
    pub global_max_table: Option<String>,
    /// The table with the most rows among those with dates.
    pub largest_table: Option<String>,
    /// Today's date (UTC) as the gateway saw it, for the future-date check.
    pub today: String,
    /// Statements run: one per 200 tables (one for most warehouses), more only where a statement had to
    /// be retried table by table.
    pub queries: usize,
    pub text: String,
}

/// Timestamps from different engines use `T` or a space; comparing on one spelling orders them right.
fn order_key(value: &str) -> String {
    value.replacen('T', " ", 1)
}

fn date_of(value: &str) -> Option<chrono::NaiveDate> {
    value
        .get(..10)
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

/// A table ending this many days before the connection's latest date is flagged as a gap.
const STALE_DAYS: i64 = 30;

/// The rendered text stays within the tools' shared budget; the structured result lists every table.
const TEXT_BUDGET_CHARS: usize = super::BUDGET_TOKENS * 4;

pub async fn get_date_boundaries(
    s: &Services,
    auth: &AuthContext,
    connection: &str,
) -> Outcome<DateBoundaries> {
    let mut audit = system_audit(connection);
    let snap = match snapshot(s, auth, connection, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let mut ran = Ran::new(audit);
    let result = date_boundaries_in(s, auth, &snap, &mut ran).await;
    ran.outcome(result)
}

/// One table's date columns, as read by a boundaries statement.
pub(super) struct DatePlan<'a> {
    pub(super) table: &'a Table,
    pub(super) columns: Vec<&'a sluice_catalog::Column>,
}

impl<'a> DatePlan<'a> {
    /// The table's date and timestamp columns.
    pub(super) fn of(table: &'a Table) -> DatePlan<'a> {
        DatePlan {
            table,
            columns: table
                .columns
                .iter()
                .filter(|c| is_date_type(&c.data_type))
                .collect(),
        }
    }
}

pub(super) fn column_types(plan: &DatePlan) -> Vec<String> {
    plan.columns.iter().map(|c| c.data_type.clone()).collect()
}

/// Whether a failed multi-table statement is worth retrying table by table. Governance refusing one
/// table or column (`denied_tables`, `denied_columns`) or the engine refusing one table (a missing
/// privilege, a broken table) fails the whole statement; one statement per table then confines the error
/// to that table and the others still answer. An exhausted budget or a statement that ran into its
/// timeout would only fail again, many times over, so those are not retried.
fn retry_per_table(e: &ToolError, elapsed: std::time::Duration, timeout: std::time::Duration) -> bool {
    match e.kind {
        ErrorKind::Denied => e.rule.as_deref() != Some(crate::budgets::BUDGET_EXHAUSTED),
        ErrorKind::Failed => elapsed < timeout,
        ErrorKind::Invalid | ErrorKind::Cancelled => false,
    }
}

/// Fills one table's result from its row of a boundaries statement (`positions`: where each column's
/// min is; its max follows).
fn read_table(
    plan: &DatePlan,
    row: &[serde_json::Value],
    positions: &[usize],
    today: chrono::NaiveDate,
) -> TableDates {
    let mut out = TableDates {
        table: plan.table.id.to_string(),
        view: plan.table.kind == TableKind::View,
        row_count: as_u64(row.get(1)),
        columns: Vec::new(),
        max: None,
        error: None,
        flags: Vec::new(),
    };
    for (c, &at) in plan.columns.iter().zip(positions) {
        let min = row.get(at).cloned().filter(|v| !v.is_null());
        let max = row.get(at + 1).cloned().filter(|v| !v.is_null());
        if max.is_none() && out.row_count.unwrap_or(0) > 0 {
            out.flags.push(format!("{} has no values", c.name));
        }
        if let Some(m) = max.as_ref().and_then(value_text) {
            if date_of(&m).is_some_and(|d| d > today) {
                out.flags.push(format!("{} has future dates (up to {m})", c.name));
            }
            if out.max.as_ref().is_none_or(|cur| order_key(&m) > order_key(cur)) {
                out.max = Some(m);
            }
        }
        out.columns.push(DateColumn {
            column: c.name.clone(),
            data_type: c.data_type.clone(),
            min,
            max,
        });
    }
    out
}

fn unread(plan: &DatePlan, error: String) -> TableDates {
    TableDates {
        table: plan.table.id.to_string(),
        view: plan.table.kind == TableKind::View,
        row_count: None,
        columns: Vec::new(),
        max: None,
        error: Some(error),
        flags: Vec::new(),
    }
}

/// Reads the boundaries of `plans` in as few statements as the engines allow (one for most warehouses).
async fn read_boundaries(
    s: &Services,
    auth: &AuthContext,
    snap: &Snapshot,
    ran: &mut Ran,
    plans: &[DatePlan<'_>],
    today: chrono::NaiveDate,
    progress: (usize, usize),
) -> (Vec<TableDates>, usize) {
    let dialect = snap.conn.dialect;
    let timeout = s.timeout(&snap.conn);
    let types: Vec<Vec<String>> = plans.iter().map(column_types).collect();
    let mut tables = Vec::new();
    let mut statements = 0;
    // Progress over every call of this tool: `progress.0` relations were read before, of `progress.1`.
    let (before, total) = (progress.0, progress.1 as f64);
    for range in chunks(&types) {
        let chunk = &plans[range.clone()];
        let slots = Slots::of(types[range].iter().map(Vec::as_slice));
        let started = std::time::Instant::now();
        statements += 1;
        let sql = boundaries_sql(dialect, chunk);
        match ran.query(s, auth, snap, &sql, chunk.len() as u64).await {
            Ok(result) => {
                // Rows of a UNION ALL come in any order; each says which table it is.
                let mut rows: Vec<Option<Vec<serde_json::Value>>> = vec![None; chunk.len()];
                for row in result.rows {
                    if let Some(slot) = as_u64(row.first())
                        .and_then(|k| usize::try_from(k).ok())
                        .and_then(|k| rows.get_mut(k))
                    {
                        *slot = Some(row);
                    }
                }
                for (plan, row) in chunk.iter().zip(rows) {
                    tables.push(match row {
                        Some(row) => read_table(plan, &row, &slots.positions(&column_types(plan)), today),
                        None => unread(plan, "the boundaries statement returned no row for it".to_owned()),
                    });
                }
            }
            Err(e) if chunk.len() > 1 && retry_per_table(&e, started.elapsed(), timeout) => {
                for plan in chunk {
                    statements += 1;
                    let single = std::slice::from_ref(plan);
                    let types = column_types(plan);
                    let positions = Slots::of([types.as_slice()]).positions(&types);
                    tables.push(
                        match ran
                            .query(s, auth, snap, &boundaries_sql(dialect, single), 1)
                            .await
                        {
                            Ok(result) => {
                                let row = result.rows.into_iter().next().unwrap_or_default();
                                read_table(plan, &row, &positions, today)
                            }
                            // A denied or failing table is reported, not fatal: the others still answer.
                            Err(e) => unread(plan, e.message),
                        },
                    );
                }
            }
            Err(e) => tables.extend(chunk.iter().map(|plan| unread(plan, e.message.clone()))),
        }
        let done = before + tables.len();
        crate::progress::report(
            done as f64,
            Some(total),
            format!("read the date columns of {done} of {total} relations"),
        );
    }
    (tables, statements)
}

async fn date_boundaries_in(
    s: &Services,
    auth: &AuthContext,
    snap: &Snapshot,
    ran: &mut Ran,
) -> Result<DateBoundaries, ToolError> {
    let today = chrono::Utc::now().date_naive();
    // Stored relations are read first, views in statements of their own: a view recomputes on every read,
    // so a slow or failing view never holds back the tables' answer (dbt builds most relations an agent
    // uses as views, so they are reported too, marked as views).
    let (views, stored): (Vec<DatePlan>, Vec<DatePlan>) = snap
        .catalog()
        .tables()
        .iter()
        .map(DatePlan::of)
        .filter(|p| !p.columns.is_empty())
        .partition(|p| p.table.kind == TableKind::View);
    let all = stored.len() + views.len();
    let (mut tables, mut queries) = read_boundaries(s, auth, snap, ran, &stored, today, (0, all)).await;
    if !views.is_empty() {
        let (read, more) = read_boundaries(s, auth, snap, ran, &views, today, (stored.len(), all)).await;
        tables.extend(read);
        queries += more;
        // Back in the catalog's order, as the tables were listed before views were read.
        tables.sort_by(|a, b| a.table.cmp(&b.table));
    }
    // The global maximum ignores future dates, which are almost always placeholders (9999-12-31).
    let candidates = || {
        tables
            .iter()
            .filter_map(|t| t.max.as_ref().map(|m| (m, t)))
            .filter(|(m, _)| date_of(m).is_none_or(|d| d <= today))
    };
    let global = candidates()
        .max_by(|a, b| order_key(a.0).cmp(&order_key(b.0)))
        .map(|(m, t)| (m.clone(), t.table.clone()));
    if let Some(global_day) = global.as_ref().and_then(|(m, _)| date_of(m)) {
        for t in &mut tables {
            if let Some(day) = t.max.as_deref().and_then(date_of) {
                let behind = (global_day - day).num_days();
                if behind > STALE_DAYS {
                    t.flags.push(format!(
                        "ends {behind} days before the latest date ({global_day})"
                    ));
                }
            }
        }
    }
    let largest = tables
        .iter()
        .filter(|t| t.row_count.is_some())
        .max_by_key(|t| t.row_count)
        .map(|t| t.table.clone());

    let mut text = format!(
        "Date boundaries for '{}' ({} tables with dates)\n",
        snap.conn.name,
        tables.len()
    );
    let mut omitted = 0;
    for t in &tables {
        let mut block = format!("\n{}", t.table);
        if t.view {
            block.push_str(" (view)");
        }
        if let Some(rows) = t.row_count {
            let _ = write!(block, " ({rows} rows)");
        }
        if let Some(e) = &t.error {
            let _ = write!(block, ": could not be read: {}", one_line(e, 200));
        }
        for c in &t.columns {
            match (&c.min, &c.max) {
                (Some(min), Some(max)) => {
                    let _ = write!(
                        block,
                        "\n  {} ({}): {} → {}",
                        c.column,
                        c.data_type,
                        cell(min),
                        cell(max)
                    );
                }
                _ => {
                    let _ = write!(block, "\n  {} ({}): (no data)", c.column, c.data_type);
                }
            }
        }
        for f in &t.flags {
            let _ = write!(block, "\n  ! {f}");
        }
        if text.len() + block.len() > TEXT_BUDGET_CHARS - 1_200 {
            omitted += 1;
            continue;
        }
        text.push_str(&block);
        text.push('\n');
    }
    if omitted > 0 {
        let _ = writeln!(
            text,
            "\n… {omitted} more tables omitted to stay within the size budget (all are in the structured result)"
        );
    }
    match &global {
        Some((max, table)) => {
            let _ = writeln!(text, "\nGLOBAL MAX DATE: {max} (in {table})");
        }
        None => text.push_str("\nGLOBAL MAX DATE: (no date values found)\n"),
    }
    let mut maxima: Vec<&TableDates> = tables.iter().filter(|t| t.max.is_some()).collect();
    maxima.sort_by_key(|t| std::cmp::Reverse(t.max.as_deref().map(order_key)));
    if !maxima.is_empty() {
        text.push_str(
            "TABLE MAX DATES (use your fact table's max as the date spine end, not the current date):\n",
        );
        for t in maxima.iter().take(25) {
            let _ = writeln!(
                text,
                "  {} → {} ({} rows){}",
                t.table,
                t.max.as_deref().unwrap_or_default(),
                t.row_count
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "?".to_owned()),
                if largest.as_ref() == Some(&t.table) {
                    " (largest table)"
                } else {
                    ""
                }
            );
        }
        if maxima.len() > 25 {
            let _ = writeln!(text, "  … {} more", maxima.len() - 25);
        }
    }
    Ok(DateBoundaries {
        connection: snap.conn.name.clone(),
        tables,
        global_max: global.as_ref().map(|(m, _)| m.clone()),
        global_max_table: global.map(|(_, t)| t),
        largest_table: largest,
        today: today.to_string(),
        queries,
        text: text.trim_end().to_owned(),
    })
}
