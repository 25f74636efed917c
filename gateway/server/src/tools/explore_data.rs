//! Schema tools that read data: `explore_column`, `explore_columns`, `compare_join_types` and
//! `get_date_boundaries`.
//!
//! Their SQL is built by the gateway from introspected table and column names, quoted for the dialect;
//! agent text reaches it only as a string literal (`filter_pattern`) or after being parsed into an
//! expression and checked (`join_keys`, `where_clause` of `compare_join_types`). Every statement then goes
//! through [`Services::query`]: governance, execution and the call's audit record.

use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_catalog::{Table, TableKind};
use sluice_governance::Dialect;

use super::{Snapshot, cell, column, one_line, snapshot, system_audit};
use crate::tools::{Effect, Meta, Render, ToolSpec, spec};
use sluice_core::auth::{AuthContext, Scope};
use sluice_core::service::{AuditFacts, ErrorKind, Outcome, QueryOutput, Services, ToolError};

/// The statements one call ran, for its single audit record.
struct Ran {
    audit: AuditFacts,
    statements: Vec<String>,
    /// Governance's redaction of the last statement, kept for a call that runs only that one.
    redacted: Option<sluice_governance::Redacted>,
    rows: u64,
}

impl Ran {
    fn new(audit: AuditFacts) -> Ran {
        Ran {
            audit,
            statements: Vec::new(),
            redacted: None,
            rows: 0,
        }
    }

    /// Runs one statement through governance and execution.
    async fn query(
        &mut self,
        s: &Services,
        auth: &AuthContext,
        snap: &Snapshot,
        sql: &str,
        cap: u64,
    ) -> Result<QueryOutput, ToolError> {
        let outcome = s.query(auth, &snap.conn.name, sql, cap).await;
        self.audit.system_query = false;
        self.audit.dialect = outcome.audit.dialect.or(self.audit.dialect);
        if outcome.audit.rule.is_some() {
            self.audit.rule = outcome.audit.rule.clone();
        }
        if let Some(sql) = outcome.audit.sql {
            self.statements.push(sql);
            self.redacted = outcome.audit.sql_redacted;
        }
        self.rows += outcome.audit.rows.unwrap_or(0);
        outcome.result
    }

    fn finish(mut self) -> AuditFacts {
        if !self.statements.is_empty() {
            self.audit.sql = Some(self.statements.join(";\n"));
            self.audit.rows = Some(self.rows);
        }
        // One statement is audited as it ran, so governance's redaction of it applies.
        if self.statements.len() == 1 {
            self.audit.sql_redacted = self.redacted;
        }
        self.audit
    }

    fn outcome<T>(self, result: Result<T, ToolError>) -> Outcome<T> {
        Outcome {
            result,
            audit: self.finish(),
        }
    }
}

/// The agent's pattern as a string literal for the dialect (escaping is the dialect's, see
/// `sluice_dialect::Dialect::string_literal`).
fn literal(dialect: Dialect, text: &str) -> Result<String, ToolError> {
    dialect
        .string_literal(text)
        .map_err(|_| ToolError::invalid("the pattern must not contain NUL characters"))
}

/// What aggregates a column's type allows everywhere: PostgreSQL has no MIN of booleans and no equality
/// on `json`, so those only get counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregates {
    Ordered,
    Distinct,
    CountOnly,
}

fn aggregates(data_type: &str) -> Aggregates {
    let t = data_type.to_ascii_lowercase();
    if t.contains("json")
        || t.contains("blob")
        || t.contains("bytea")
        || t.contains("binary")
        || t.contains("[]")
        || t.contains("struct")
        || t.contains("map(")
        || t.contains("xml")
        || t.contains("geometry")
        || t.contains("union")
    {
        Aggregates::CountOnly
    } else if t.contains("bool") || t.contains("uuid") {
        Aggregates::Distinct
    } else {
        Aggregates::Ordered
    }
}

fn is_date_type(data_type: &str) -> bool {
    let t = data_type.to_ascii_lowercase();
    t.contains("date") || t.contains("timestamp")
}

fn as_u64(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------------
// explore_column
// ---------------------------------------------------------------------------------------------------

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

impl Render for ColumnValues {
    fn render(&self) -> String {
        let mut text = format!("Column {}.{} ({})", self.table, self.column, self.data_type);
        if let (Some(rows), Some(nulls), Some(distinct)) =
            (self.row_count, self.null_count, self.distinct_count)
        {
            let _ = write!(text, ": {rows} rows, {nulls} NULL, {distinct} distinct");
        }
        if !self.filter_pattern.is_empty() {
            let _ = write!(text, "\nValues matching '{}':", self.filter_pattern);
        } else {
            text.push_str("\nMost frequent values:");
        }
        if self.values.is_empty() {
            text.push_str("\n  (none)");
        }
        for v in &self.values {
            let _ = write!(text, "\n  {} ({})", one_line(&cell(&v.value), 200), v.count);
        }
        if self.truncated {
            let _ = write!(text, "\n… more values exist beyond limit={}", self.values.len());
        }
        text
    }
}

async fn explore_column(s: &Services, auth: &AuthContext, a: ExploreColumnArgs) -> Outcome<ColumnValues> {
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
    let q = snap.quoting();
    let dialect = snap.conn.dialect;
    let name = q.ident(&col.name);
    let from = table.id.sql(q);

    let distinct = if aggregates(&col.data_type) == Aggregates::CountOnly {
        "NULL".to_owned()
    } else {
        format!("COUNT(DISTINCT {name})")
    };
    let stats_sql = format!("SELECT COUNT(*), COUNT({name}), {distinct} FROM {from}");
    let stats = ran.query(s, auth, snap, &stats_sql, 1).await?;
    let row = stats.rows.first();
    let row_count = as_u64(row.and_then(|r| r.first()));
    let non_null = as_u64(row.and_then(|r| r.get(1)));
    let distinct_count = as_u64(row.and_then(|r| r.get(2)));

    let mut filter = String::new();
    if !a.filter_pattern.is_empty() {
        let pattern = literal(dialect, &format!("%{}%", a.filter_pattern.to_lowercase()))?;
        filter = format!(" AND LOWER({}) LIKE {pattern}", dialect.cast_to_text(&name));
    }
    let values_sql = format!(
        "SELECT {name}, COUNT(*) FROM {from} WHERE {name} IS NOT NULL{filter} \
         GROUP BY {name} ORDER BY COUNT(*) DESC, {name} LIMIT {}",
        a.limit + 1
    );
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

// ---------------------------------------------------------------------------------------------------
// explore_columns
// ---------------------------------------------------------------------------------------------------

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

impl Render for ColumnsExploration {
    fn render(&self) -> String {
        let mut text = format!(
            "{} {}",
            if self.kind == "view" { "View" } else { "Table" },
            self.table
        );
        if let Some(rows) = self.row_count {
            let _ = write!(text, " ({rows} rows)");
        }
        for c in &self.columns {
            let mut flags = Vec::new();
            if c.primary_key {
                flags.push("PK");
            }
            if !c.nullable {
                flags.push("NOT NULL");
            }
            let _ = write!(text, "\n  {}: {}", c.name, c.data_type);
            if !flags.is_empty() {
                let _ = write!(text, " [{}]", flags.join(", "));
            }
            if let Some(comment) = &c.comment {
                let _ = write!(text, " -- {}", one_line(comment, 120));
            }
            let mut stats = Vec::new();
            if let Some(d) = c.distinct_count {
                stats.push(format!("distinct={d}"));
            }
            if let Some(n) = c.null_count {
                stats.push(format!("nulls={n}"));
            }
            if let Some(min) = &c.min {
                stats.push(format!("min={}", one_line(&cell(min), 60)));
            }
            if let Some(max) = &c.max {
                stats.push(format!("max={}", one_line(&cell(max), 60)));
            }
            if !stats.is_empty() {
                let _ = write!(text, "\n    stats: {}", stats.join(", "));
            }
            if !c.samples.is_empty() {
                let samples: Vec<String> = c.samples.iter().map(|v| one_line(&cell(v), 40)).collect();
                let _ = write!(text, "\n    values: {}", samples.join(", "));
            }
        }
        if self.columns_omitted > 0 {
            let _ = write!(
                text,
                "\n… {} more columns omitted; name them in `columns` to explore them",
                self.columns_omitted
            );
        }
        text
    }
}

const MAX_COLUMNS_PER_CALL: usize = 100;
const SAMPLE_ROWS: u64 = 50;
const SAMPLES_PER_COLUMN: usize = 10;

async fn explore_columns(
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
    let q = snap.quoting();
    let from = table.id.sql(q);
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
        // One statement for every column: COUNT, COUNT(DISTINCT), MIN and MAX as the type allows.
        let mut exprs = vec!["COUNT(*)".to_owned()];
        let mut layout = Vec::new();
        for c in &chosen {
            let name = q.ident(&c.name);
            let kind = aggregates(&c.data_type);
            exprs.push(format!("COUNT({name})"));
            if kind != Aggregates::CountOnly {
                exprs.push(format!("COUNT(DISTINCT {name})"));
            }
            if kind == Aggregates::Ordered {
                exprs.push(format!("MIN({name})"));
                exprs.push(format!("MAX({name})"));
            }
            layout.push(kind);
        }
        let sql = format!("SELECT {} FROM {from}", exprs.join(", "));
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
        let names: Vec<String> = chosen.iter().map(|c| q.ident(&c.name)).collect();
        let sql = format!("SELECT {} FROM {from} LIMIT {SAMPLE_ROWS}", names.join(", "));
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

// ---------------------------------------------------------------------------------------------------
// compare_join_types
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareJoinArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// Left table, `table` or `schema.table`; alias `a` in `join_keys` and `where_clause`.
    pub left_table: String,
    /// Right table, `table` or `schema.table`; alias `b` in `join_keys` and `where_clause`.
    pub right_table: String,
    /// Comma-separated key pairs, e.g. `a.id = b.customer_id, a.day = b.day`; a bare `id` means `a.id = b.id`.
    pub join_keys: String,
    /// Optional filter without the WHERE keyword, e.g. `a.status = 'paid' AND b.amount > 0`. Each
    /// AND-ed condition must use one side only (`a.` or `b.`) and is applied to that table before the join,
    /// so the match counts stay truthful.
    #[serde(default)]
    pub where_clause: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct JoinComparison {
    pub connection: String,
    pub left_table: String,
    pub right_table: String,
    /// The join condition as run, with identifiers quoted.
    pub on: String,
    pub left_rows: u64,
    pub right_rows: u64,
    pub inner_join_rows: u64,
    pub left_join_rows: u64,
    pub right_join_rows: u64,
    pub full_outer_join_rows: u64,
    /// Left rows without a match on the right.
    pub left_unmatched: u64,
    /// Right rows without a match on the left.
    pub right_unmatched: u64,
    pub notes: Vec<String>,
}

impl Render for JoinComparison {
    fn render(&self) -> String {
        let mut text = format!(
            "Join {} (a) with {} (b) ON {}\n  left rows:  {}\n  right rows: {}\n  INNER JOIN:      {}\n  LEFT JOIN:       {}\n  RIGHT JOIN:      {}\n  FULL OUTER JOIN: {}\n  left rows without a match:  {}\n  right rows without a match: {}",
            self.left_table,
            self.right_table,
            self.on,
            self.left_rows,
            self.right_rows,
            self.inner_join_rows,
            self.left_join_rows,
            self.right_join_rows,
            self.full_outer_join_rows,
            self.left_unmatched,
            self.right_unmatched
        );
        for note in &self.notes {
            let _ = write!(text, "\n{note}");
        }
        text
    }
}

/// Agent text this long is refused before parsing; real keys and filters are far shorter.
const MAX_CLAUSE_CHARS: usize = 4_000;

fn parse_expr(dialect: Dialect, text: &str, what: &str) -> Result<sqlparser::ast::Expr, ToolError> {
    if text.len() > MAX_CLAUSE_CHARS {
        return Err(ToolError::invalid(format!(
            "{what} is longer than {MAX_CLAUSE_CHARS} characters"
        )));
    }
    let mut parser = sqlparser::parser::Parser::new(dialect.parser())
        .try_with_sql(text)
        .map_err(|e| ToolError::invalid(format!("cannot read {what} '{text}': {e}")))?;
    let expr = parser
        .parse_expr()
        .map_err(|e| ToolError::invalid(format!("cannot read {what} '{text}': {e}")))?;
    if parser.peek_token().token != sqlparser::tokenizer::Token::EOF {
        return Err(ToolError::invalid(format!(
            "{what} '{text}' has text after the expression; use one expression"
        )));
    }
    Ok(expr)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Left,
    Right,
}

/// Which side an identifier names: `a.col` / `b.col`; anything else is refused with the rule.
fn side_of(parts: &[sqlparser::ast::Ident]) -> Result<(Side, String), ToolError> {
    match parts {
        [alias, col] if alias.value.eq_ignore_ascii_case("a") => Ok((Side::Left, col.value.clone())),
        [alias, col] if alias.value.eq_ignore_ascii_case("b") => Ok((Side::Right, col.value.clone())),
        _ => Err(ToolError::invalid(format!(
            "'{}' does not say which table it belongs to; write columns as a.<column> (left table) or b.<column> (right table)",
            parts
                .iter()
                .map(|p| p.value.as_str())
                .collect::<Vec<_>>()
                .join(".")
        ))),
    }
}

/// Parses `a.x = b.y, c` into column pairs (left column, right column).
fn join_pairs(dialect: Dialect, join_keys: &str) -> Result<Vec<(String, String)>, ToolError> {
    use sqlparser::ast::{BinaryOperator, Expr};
    let mut pairs = Vec::new();
    for part in join_keys.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let expr = parse_expr(dialect, part, "join key")?;
        let pair = match expr {
            Expr::Identifier(ident) => (ident.value.clone(), ident.value),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => {
                let side = |e: &Expr| match e {
                    Expr::CompoundIdentifier(parts) => side_of(parts),
                    other => Err(ToolError::invalid(format!(
                        "join key side '{other}' must be a column, a.<column> or b.<column>"
                    ))),
                };
                match (side(&left)?, side(&right)?) {
                    ((Side::Left, l), (Side::Right, r)) | ((Side::Right, r), (Side::Left, l)) => (l, r),
                    _ => {
                        return Err(ToolError::invalid(format!(
                            "join key '{part}' must compare a column of a (left) with one of b (right)"
                        )));
                    }
                }
            }
            _ => {
                return Err(ToolError::invalid(format!(
                    "join key '{part}' is not of the form a.<column> = b.<column>"
                )));
            }
        };
        pairs.push(pair);
    }
    if pairs.is_empty() {
        return Err(ToolError::invalid(
            "join_keys is empty; give pairs like `a.id = b.customer_id`",
        ));
    }
    Ok(pairs)
}

/// Splits the filter into its AND-ed conditions and assigns each to the one side it uses.
fn side_filters(dialect: Dialect, where_clause: &str) -> Result<(Vec<String>, Vec<String>), ToolError> {
    use sqlparser::ast::{BinaryOperator, Expr, visit_expressions};
    let (mut left, mut right) = (Vec::new(), Vec::new());
    if where_clause.trim().is_empty() {
        return Ok((left, right));
    }
    let expr = parse_expr(dialect, where_clause, "where_clause")?;
    let mut conjuncts = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                stack.push(*right);
                stack.push(*left);
            }
            Expr::Nested(inner)
                if matches!(
                    *inner,
                    Expr::BinaryOp {
                        op: BinaryOperator::And,
                        ..
                    }
                ) =>
            {
                stack.push(*inner);
            }
            other => conjuncts.push(other),
        }
    }
    for conjunct in conjuncts {
        let mut sides = Vec::new();
        let mut problem: Option<ToolError> = None;
        let _ = visit_expressions(&conjunct, |e: &Expr| {
            let found = match e {
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => Err(ToolError::invalid(
                    "where_clause may not contain subqueries; filter on the two tables' own columns",
                )),
                Expr::Identifier(ident) => side_of(std::slice::from_ref(ident)),
                Expr::CompoundIdentifier(parts) => side_of(parts),
                _ => return ControlFlow::Continue(()),
            };
            match found {
                Ok((side, _)) => {
                    sides.push(side);
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    problem = Some(e);
                    ControlFlow::Break(())
                }
            }
        });
        if let Some(e) = problem {
            return Err(e);
        }
        sides.dedup();
        match sides.as_slice() {
            [Side::Left] => left.push(conjunct.to_string()),
            [Side::Right] => right.push(conjunct.to_string()),
            [] => {
                return Err(ToolError::invalid(format!(
                    "the condition '{conjunct}' uses no column of a or b"
                )));
            }
            _ => {
                return Err(ToolError::invalid(format!(
                    "the condition '{conjunct}' uses both tables; each AND-ed condition must use only a. or only b."
                )));
            }
        }
    }
    Ok((left, right))
}

async fn compare_join_types(s: &Services, auth: &AuthContext, a: CompareJoinArgs) -> Outcome<JoinComparison> {
    let mut audit = system_audit(&a.connection_name);
    let snap = match snapshot(s, auth, &a.connection_name, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let mut ran = Ran::new(audit);
    let result = compare_join_types_in(s, auth, &snap, &a, &mut ran).await;
    ran.outcome(result)
}

async fn compare_join_types_in(
    s: &Services,
    auth: &AuthContext,
    snap: &Snapshot,
    a: &CompareJoinArgs,
    ran: &mut Ran,
) -> Result<JoinComparison, ToolError> {
    let left = snap.table(&a.left_table)?;
    let right = snap.table(&a.right_table)?;
    let dialect = snap.conn.dialect;
    let q = snap.quoting();
    let pairs = join_pairs(dialect, &a.join_keys)?;
    let mut on = Vec::new();
    for (l, r) in &pairs {
        let l = column(left, l)?;
        let r = column(right, r)?;
        on.push(format!("a.{} = b.{}", q.ident(&l.name), q.ident(&r.name)));
    }
    let on = on.join(" AND ");
    let (left_filter, right_filter) = side_filters(dialect, &a.where_clause)?;
    let source = |table: &Table, alias: &str, filters: &[String]| {
        let mut sql = format!("SELECT * FROM {} AS {alias}", table.id.sql(q));
        if !filters.is_empty() {
            let _ = write!(sql, " WHERE {}", filters.join(" AND "));
        }
        sql
    };
    let sql = format!(
        "WITH lhs AS ({}), rhs AS ({}) SELECT \
         (SELECT COUNT(*) FROM lhs), \
         (SELECT COUNT(*) FROM rhs), \
         (SELECT COUNT(*) FROM lhs AS a JOIN rhs AS b ON {on}), \
         (SELECT COUNT(*) FROM lhs AS a WHERE NOT EXISTS (SELECT 1 FROM rhs AS b WHERE {on})), \
         (SELECT COUNT(*) FROM rhs AS b WHERE NOT EXISTS (SELECT 1 FROM lhs AS a WHERE {on}))",
        source(left, "a", &left_filter),
        source(right, "b", &right_filter),
    );
    let result = ran.query(s, auth, snap, &sql, 1).await?;
    let row = result
        .rows
        .first()
        .ok_or_else(|| ToolError::failed("the comparison returned no row"))?;
    let n = |i: usize| as_u64(row.get(i)).unwrap_or(0);
    let (left_rows, right_rows, inner, left_only, right_only) = (n(0), n(1), n(2), n(3), n(4));
    let mut notes = Vec::new();
    if inner > left_rows.saturating_sub(left_only) {
        notes.push(format!(
            "note: {} matched left rows become {inner} joined rows: the keys repeat on the right side, so an \
             INNER or LEFT JOIN multiplies left rows (fan-out).",
            left_rows - left_only
        ));
    }
    if inner > right_rows.saturating_sub(right_only) {
        notes.push(format!(
            "note: {} matched right rows become {inner} joined rows: the keys repeat on the left side.",
            right_rows - right_only
        ));
    }
    if left_only > 0 {
        notes.push(format!(
            "note: {left_only} left rows have no match; an INNER JOIN drops them, a LEFT JOIN keeps them with NULLs."
        ));
    }
    Ok(JoinComparison {
        connection: snap.conn.name.clone(),
        left_table: left.id.to_string(),
        right_table: right.id.to_string(),
        on,
        left_rows,
        right_rows,
        inner_join_rows: inner,
        left_join_rows: inner + left_only,
        right_join_rows: inner + right_only,
        full_outer_join_rows: inner + left_only + right_only,
        left_unmatched: left_only,
        right_unmatched: right_only,
        notes,
    })
}

// ---------------------------------------------------------------------------------------------------
// get_date_boundaries
// ---------------------------------------------------------------------------------------------------

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

impl Render for DateBoundaries {
    fn render(&self) -> String {
        self.text.clone()
    }
}

/// A date value as text, exactly as the engine returned it.
fn value_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        other => Some(cell(other)),
    }
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

async fn get_date_boundaries(s: &Services, auth: &AuthContext, connection: &str) -> Outcome<DateBoundaries> {
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
struct DatePlan<'a> {
    table: &'a Table,
    columns: Vec<&'a sluice_catalog::Column>,
}

impl<'a> DatePlan<'a> {
    /// The table's date and timestamp columns.
    fn of(table: &'a Table) -> DatePlan<'a> {
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

/// Most tables in one boundaries statement: SQLite allows 500 `SELECT`s in one compound statement.
const TABLES_PER_STATEMENT: usize = 200;
/// Most output columns in one boundaries statement: PostgreSQL allows 1,664 select-list entries, SQLite
/// 2,000 result columns.
const OUTPUTS_PER_STATEMENT: usize = 1_000;

/// The output columns of a boundaries statement over some tables: the table's position and row count,
/// then a (min, max) pair per slot. A slot holds one data type (the engine's own spelling), so that every
/// `UNION ALL` branch puts values of one type in each output column; a type gets as many slots as the
/// table with most columns of that type needs.
#[derive(Debug, Default, PartialEq)]
struct Slots {
    /// `(data type, slots)` in order of first appearance.
    types: Vec<(String, usize)>,
}

impl Slots {
    fn of<'a>(plans: impl IntoIterator<Item = &'a [String]>) -> Slots {
        let mut slots = Slots::default();
        for types in plans {
            slots.add(types);
        }
        slots
    }

    fn add(&mut self, types: &[String]) {
        let mut counts: Vec<(&String, usize)> = Vec::new();
        for t in types {
            match counts.iter_mut().find(|(seen, _)| *seen == t) {
                Some((_, n)) => *n += 1,
                None => counts.push((t, 1)),
            }
        }
        for (t, n) in counts {
            match self.types.iter_mut().find(|(seen, _)| seen == t) {
                Some((_, max)) => *max = (*max).max(n),
                None => self.types.push((t.clone(), n)),
            }
        }
    }

    fn width(&self) -> usize {
        2 + 2 * self.types.iter().map(|(_, n)| n).sum::<usize>()
    }

    /// For each of a table's columns (by type), the output position of its min; its max follows.
    fn positions(&self, types: &[String]) -> Vec<usize> {
        let mut used: Vec<usize> = vec![0; self.types.len()];
        types
            .iter()
            .map(|t| {
                let mut at = 2;
                for (i, (seen, n)) in self.types.iter().enumerate() {
                    if seen == t {
                        at += 2 * used[i];
                        used[i] += 1;
                        break;
                    }
                    at += 2 * n;
                }
                at
            })
            .collect()
    }
}

/// Splits the tables (given by their date columns' types) into consecutive runs that fit one statement
/// each. A table wider than the column limit gets a statement of its own.
fn chunks(plans: &[Vec<String>]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut slots = Slots::default();
    for (i, types) in plans.iter().enumerate() {
        let mut wider = Slots {
            types: slots.types.clone(),
        };
        wider.add(types);
        if i > start && (i - start >= TABLES_PER_STATEMENT || wider.width() > OUTPUTS_PER_STATEMENT) {
            out.push(start..i);
            start = i;
            wider = Slots::default();
            wider.add(types);
        }
        slots = wider;
    }
    if start < plans.len() {
        out.push(start..plans.len());
    }
    out
}

fn column_types(plan: &DatePlan) -> Vec<String> {
    plan.columns.iter().map(|c| c.data_type.clone()).collect()
}

/// The statement reading the row count and each date column's min and max of several tables at once: a
/// `UNION ALL` of one aggregate row per table (`SELECT k, COUNT(*), MIN(a), MAX(a), … FROM t_k`), each
/// table scanned once, and every min and max in a slot of its own type (see [`Slots`]) so that it comes
/// back exactly as a direct `MIN`/`MAX` returns it (no cast to text, whose spelling differs per engine
/// and time zone). A slot a table does not fill is `NULL`, typed where the engine needs it: PostgreSQL
/// resolves `UNION` types pairwise and would make a column that starts with untyped `NULL`s text.
///
/// The statement carries its own `LIMIT` (one row per table) and is spelled as governance renders it, so
/// governance has nothing to rewrite and knows its rendering parses back without parsing it again: for 40
/// tables that halves the time governing the statement takes.
fn boundaries_sql(dialect: Dialect, plans: &[DatePlan]) -> String {
    let q = dialect.quoting();
    let slots = Slots::of(
        plans
            .iter()
            .map(|p| column_types(p))
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice),
    );
    let null = |data_type: &str| dialect.null_of(data_type);
    plans
        .iter()
        .enumerate()
        .map(|(k, plan)| {
            let types = column_types(plan);
            let mut exprs = vec![String::new(); slots.width()];
            exprs[0] = format!("{k} AS k");
            exprs[1] = "COUNT(*) AS n".to_owned();
            for (c, at) in plan.columns.iter().zip(slots.positions(&types)) {
                let name = q.ident(&c.name);
                exprs[at] = format!("MIN({name})");
                exprs[at + 1] = format!("MAX({name})");
            }
            let mut at = 2;
            for (data_type, n) in &slots.types {
                for _ in 0..2 * n {
                    if exprs[at].is_empty() {
                        exprs[at] = null(data_type);
                    }
                    at += 1;
                }
            }
            format!("SELECT {} FROM {}", exprs.join(", "), plan.table.id.sql(q))
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
        + &format!(" LIMIT {}", plans.len())
}

/// Whether a failed multi-table statement is worth retrying table by table. Governance refusing one
/// table or column (`denied_tables`, `denied_columns`) or the engine refusing one table (a missing
/// privilege, a broken table) fails the whole statement; one statement per table then confines the error
/// to that table and the others still answer. An exhausted budget or a statement that ran into its
/// timeout would only fail again, many times over, so those are not retried.
fn retry_per_table(e: &ToolError, elapsed: std::time::Duration, timeout: std::time::Duration) -> bool {
    match e.kind {
        ErrorKind::Denied => e.rule.as_deref() != Some(sluice_core::budgets::BUDGET_EXHAUSTED),
        ErrorKind::Failed => elapsed < timeout,
        ErrorKind::Invalid => false,
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
) -> (Vec<TableDates>, usize) {
    let dialect = snap.conn.dialect;
    let timeout = s.timeout(&snap.conn);
    let types: Vec<Vec<String>> = plans.iter().map(column_types).collect();
    let mut tables = Vec::new();
    let mut statements = 0;
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
    let plans: Vec<DatePlan> = snap
        .catalog()
        .tables()
        .iter()
        // Views recompute on every read and repeat their tables' dates; only stored relations are read.
        .filter(|t| t.kind != TableKind::View)
        .map(DatePlan::of)
        .filter(|p| !p.columns.is_empty())
        .collect();
    let (mut tables, queries) = read_boundaries(s, auth, snap, ran, &plans, today).await;
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

// ---------------------------------------------------------------------------------------------------
// Sampled values for schema_link
// ---------------------------------------------------------------------------------------------------

/// Most text columns sampled per table: the ones most likely to hold category words come first.
const SAMPLE_COLUMNS_PER_TABLE: usize = 6;
/// Columns read by one sampling statement (a `UNION ALL` of one branch per column).
const SAMPLE_COLUMNS_PER_STATEMENT: usize = 40;
/// Statements one sampling may run: with the above, at most 320 columns of the warehouse.
const SAMPLE_STATEMENTS: usize = 8;
/// No new statement starts after this much time; what is left is skipped and the agent told so.
const SAMPLE_TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);
/// Each column is read from at most this many rows, so a statement costs the same on any table size.
const SAMPLE_ROWS_SCANNED: u64 = 10_000;
/// A column with more distinct values than this (in the rows read) is not a category: names, emails and
/// free text are left out, they would only add noise to the ranking.
const SAMPLE_DISTINCT: u64 = 50;
/// Longer values are free text, not categories; they are not kept.
const SAMPLE_VALUE_CHARS: usize = 40;

/// Words in column names that usually hold categories (the words a question uses to filter).
const CATEGORY_HINTS: &[&str] = &[
    "status",
    "state",
    "type",
    "kind",
    "category",
    "class",
    "segment",
    "tier",
    "level",
    "plan",
    "channel",
    "method",
    "source",
    "medium",
    "carrier",
    "device",
    "browser",
    "platform",
    "country",
    "region",
    "city",
    "currency",
    "language",
    "department",
    "role",
    "gender",
    "brand",
    "warehouse",
    "reason",
    "stage",
];
/// Words in column names whose values must not be read at all (credentials), or are unique per row
/// (contacts, free text) and so never categories: reading them would spend the budget for nothing.
const SKIP_HINTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "hash",
    "salt",
    "key",
    "ssn",
    "iban",
    "card",
    "email",
    "phone",
    "url",
    "uri",
    "address",
    "description",
    "body",
    "comment",
    "note",
    "notes",
    "message",
    "text",
    "json",
];

fn is_text_type(data_type: &str) -> bool {
    let t = data_type.to_ascii_lowercase();
    (t.contains("char") || t.contains("text") || t.contains("string") || t.starts_with("enum"))
        && !t.contains("[]")
}

/// The text columns worth sampling, as `(table, column)` positions in the catalog: stored tables only,
/// no keys or join columns (identifiers, not words), no credential-like or free-text names, at most
/// [`SAMPLE_COLUMNS_PER_TABLE`] per table. Columns named like categories come first across the whole
/// warehouse, so that a budget cut on a large schema keeps the most useful ones.
fn sample_candidates(catalog: &sluice_catalog::Catalog) -> Vec<(usize, usize)> {
    let mut join_columns = std::collections::HashSet::new();
    for edge in catalog.edges() {
        for c in &edge.from_columns {
            join_columns.insert((&edge.from, c.as_str()));
        }
        for c in &edge.to_columns {
            join_columns.insert((&edge.to, c.as_str()));
        }
    }
    let (mut hinted, mut others) = (Vec::new(), Vec::new());
    for (t, table) in catalog.tables().iter().enumerate() {
        if table.kind == TableKind::View {
            continue;
        }
        let mut taken = Vec::new();
        for (c, column) in table.columns.iter().enumerate() {
            let words = sluice_catalog::names::words(&column.name);
            if !is_text_type(&column.data_type)
                || table.primary_key.contains(&column.name)
                || join_columns.contains(&(&table.id, column.name.as_str()))
                || words.last().is_some_and(|w| w == "id")
                || words.iter().any(|w| SKIP_HINTS.contains(&w.as_str()))
            {
                continue;
            }
            let hint = words.iter().any(|w| CATEGORY_HINTS.contains(&w.as_str()));
            taken.push((!hint, c));
        }
        // Category-like names first within the table too, then by position.
        taken.sort();
        for (other, c) in taken.into_iter().take(SAMPLE_COLUMNS_PER_TABLE) {
            if other {
                others.push((t, c));
            } else {
                hinted.push((t, c));
            }
        }
    }
    hinted.extend(others);
    hinted
}

/// One statement reading up to [`SAMPLE_DISTINCT`] + 1 distinct values of each column, from the first
/// [`SAMPLE_ROWS_SCANNED`] rows of its table: branch `k` returns the values of `columns[k]`. Values are
/// cast to text so that every branch has the same types.
fn samples_sql(dialect: Dialect, catalog: &sluice_catalog::Catalog, columns: &[(usize, usize)]) -> String {
    let q = dialect.quoting();
    columns
        .iter()
        .enumerate()
        .map(|(k, &(t, c))| {
            let table = &catalog.tables()[t];
            let name = q.ident(&table.columns[c].name);
            format!(
                "SELECT {k} AS k, v FROM (SELECT DISTINCT {} AS v FROM (SELECT {name} AS v FROM {} LIMIT \
                 {SAMPLE_ROWS_SCANNED}) AS r{k} WHERE r{k}.v IS NOT NULL LIMIT {}) AS d{k}",
                dialect.cast_to_text(&format!("r{k}.v")),
                table.id.sql(q),
                SAMPLE_DISTINCT + 1
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Keeps the short values of each column that has few distinct ones; `rows` are `(branch, value)`.
fn sampled_values(rows: &[Vec<serde_json::Value>], branches: usize) -> Vec<Option<Vec<String>>> {
    let mut values: Vec<Vec<String>> = vec![Vec::new(); branches];
    let mut counts = vec![0u64; branches];
    for row in rows {
        let Some(k) = as_u64(row.first()).and_then(|k| usize::try_from(k).ok()) else {
            continue;
        };
        let (Some(count), Some(list)) = (counts.get_mut(k), values.get_mut(k)) else {
            continue;
        };
        *count += 1;
        if let Some(v) = row.get(1).and_then(value_text) {
            let v = v.trim();
            if !v.is_empty() && v.chars().count() <= SAMPLE_VALUE_CHARS {
                list.push(v.to_owned());
            }
        }
    }
    values
        .into_iter()
        .zip(counts)
        .map(|(list, count)| (count <= SAMPLE_DISTINCT).then_some(list))
        .collect()
}

/// The catalog with sampled values for `schema_link`, read on the snapshot's first `schema_link` call
/// (statements recorded in `ran`) and cached with the snapshot after that.
pub(super) async fn link_samples(
    s: &Services,
    auth: &AuthContext,
    snap: &Snapshot,
    audit: AuditFacts,
) -> (Arc<sluice_core::schema_cache::Sampled>, AuditFacts) {
    let mut ran = Ran::new(audit);
    let sampled = snap
        .lookup
        .current
        .samples
        .get_or_init(|| read_samples(s, auth, snap, &mut ran))
        .await
        .clone();
    (sampled, ran.finish())
}

async fn read_samples(
    s: &Services,
    auth: &AuthContext,
    snap: &Snapshot,
    ran: &mut Ran,
) -> Arc<sluice_core::schema_cache::Sampled> {
    let catalog = snap.catalog();
    let candidates = sample_candidates(catalog);
    let started = std::time::Instant::now();
    let mut found: Vec<(sluice_catalog::TableId, String, Vec<String>)> = Vec::new();
    let mut notes = Vec::new();
    let (mut many, mut failed, mut statements, mut cut) = (0, 0, 0, false);
    let mut refusals = Vec::new();
    let batches: Vec<&[(usize, usize)]> = candidates.chunks(SAMPLE_COLUMNS_PER_STATEMENT).collect();
    for (i, batch) in batches.iter().enumerate() {
        if statements >= SAMPLE_STATEMENTS || started.elapsed() >= SAMPLE_TIME_BUDGET {
            let left: usize = batches[i..].iter().map(|b| b.len()).sum();
            notes.push(format!(
                "sampled values: {left} of {} text columns not sampled ({}); names and comments still match",
                candidates.len(),
                if statements >= SAMPLE_STATEMENTS {
                    format!("at most {SAMPLE_STATEMENTS} sampling statements per snapshot")
                } else {
                    format!("sampling stops after {} s", SAMPLE_TIME_BUDGET.as_secs())
                }
            ));
            break;
        }
        statements += 1;
        let sql = samples_sql(snap.conn.dialect, catalog, batch);
        let cap = (SAMPLE_DISTINCT + 1) * batch.len() as u64;
        match ran.query(s, auth, snap, &sql, cap).await {
            Ok(result) => {
                // A connection row cap below the statement's rows cuts the last columns short; what
                // arrived is still real data, but the agent is told.
                if result.truncated {
                    cut = true;
                }
                for (&(t, c), values) in batch.iter().zip(sampled_values(&result.rows, batch.len())) {
                    match values {
                        Some(values) if !values.is_empty() => {
                            let table = &catalog.tables()[t];
                            found.push((table.id.clone(), table.columns[c].name.clone(), values));
                        }
                        Some(_) => {}
                        None => many += 1,
                    }
                }
            }
            Err(e) => {
                failed += batch.len();
                if refusals.len() < 3 {
                    refusals.push(one_line(&e.message, 160));
                }
            }
        }
    }
    if cut {
        notes.push("sampled values: some columns were cut short by the connection's row limit".to_owned());
    }
    if failed > 0 {
        notes.push(format!(
            "sampled values: {failed} text columns could not be read: {}",
            refusals.join("; ")
        ));
    }
    let columns = found.len();
    tracing::debug!(
        connection = %snap.conn.name,
        columns,
        candidates = candidates.len(),
        high_cardinality = many,
        statements,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sampled text columns for schema_link"
    );
    // Rebuilding the search index is CPU work proportional to the schema: off the async threads.
    let current = Arc::clone(&snap.lookup.current);
    let sampled = match tokio::task::spawn_blocking(move || current.catalog.with_samples(found)).await {
        Ok(sampled) => sampled,
        Err(e) => {
            notes.push(format!("sampled values: not used ({e})"));
            catalog.clone()
        }
    };
    Arc::new(sluice_core::schema_cache::Sampled {
        catalog: sampled,
        columns,
        candidates: candidates.len(),
        notes,
    })
}

// ---------------------------------------------------------------------------------------------------
// Specs
// ---------------------------------------------------------------------------------------------------

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let mut specs = Vec::new();
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "explore_column",
            title: "Explore a column's values",
            description: "The most frequent distinct values of one column with their counts, plus its row, \
                NULL and distinct counts. `filter_pattern` keeps values containing the text \
                (case-insensitive). Use it to learn the exact spelling of categories before filtering.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: ExploreColumnArgs| {
            let s = Arc::clone(&s);
            async move { explore_column(&s, &ctx.auth, a).await }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "explore_columns",
            title: "Explore columns",
            description: "Types, keys, comments, statistics (NULLs, distinct values, min and max) and sample \
                values for some or all columns of a table, in two statements whatever the column count.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: ExploreColumnsArgs| {
            let s = Arc::clone(&s);
            async move { explore_columns(&s, &ctx.auth, a).await }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "compare_join_types",
            title: "Compare join types",
            description: "Row counts of INNER, LEFT, RIGHT and FULL OUTER JOIN between two tables on the given \
                keys, and how many rows of each side have no match, to choose the right join and spot \
                fan-out. The left table is `a`, the right `b`: `join_keys` like `a.id = b.customer_id`, \
                `where_clause` like `a.status = 'paid'` (applied to its table before the join).",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: CompareJoinArgs| {
            let s = Arc::clone(&s);
            async move { compare_join_types(&s, &ctx.auth, a).await }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "get_date_boundaries",
            title: "Date boundaries",
            description: "MIN and MAX of every DATE and TIMESTAMP column (one statement for the whole \
                connection), each table's latest date with its row count, and the global latest date. Future dates and tables \
                that end long before the others are flagged. Use the fact table's latest date as the end of \
                a date spine, never the current date.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: DateBoundariesArgs| {
            let s = Arc::clone(&s);
            async move { get_date_boundaries(&s, &ctx.auth, &a.connection_name).await }
        },
    ));
    specs
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn join_keys_are_parsed_into_column_pairs() {
        let ok = |text: &str| join_pairs(Dialect::PostgreSql, text).unwrap();
        assert_eq!(
            ok("a.id = b.customer_id"),
            [("id".to_owned(), "customer_id".to_owned())]
        );
        assert_eq!(
            ok("b.x = a.y, day"),
            [
                ("y".to_owned(), "x".to_owned()),
                ("day".to_owned(), "day".to_owned())
            ]
        );
        let err = |text: &str| join_pairs(Dialect::PostgreSql, text).unwrap_err().message;
        assert!(
            err("a.id = a.id").contains("must compare a column of a"),
            "{}",
            err("a.id = a.id")
        );
        assert!(err("orders.id = b.id").contains("write columns as a.<column>"));
        assert!(err("a.id = b.id; DROP TABLE x").contains("has text after the expression"));
        assert!(err("a.id = = b.id").contains("cannot read join key"));
        assert!(err("a.id > b.id").contains("is not of the form"));
        assert!(err(" , ").contains("join_keys is empty"));
    }

    #[test]
    fn filters_go_to_their_side_and_mixed_ones_are_refused() {
        let (l, r) = side_filters(
            Dialect::PostgreSql,
            "a.status = 'paid' AND (b.amount > 0 AND b.x IS NULL)",
        )
        .unwrap();
        assert_eq!(l, ["a.status = 'paid'"]);
        assert_eq!(r, ["b.amount > 0", "b.x IS NULL"]);
        let err = |text: &str| side_filters(Dialect::PostgreSql, text).unwrap_err().message;
        assert!(err("a.x = b.y").contains("uses both tables"));
        assert!(err("a.x IN (SELECT 1)").contains("subqueries"));
        assert!(err("status = 'paid'").contains("write columns as a.<column>"));
        assert!(err("1 = 1").contains("uses no column"));
        assert!(err("a.x = 1) OR (1 = 1").contains("has text after the expression"));
    }

    #[test]
    fn boundary_statements_respect_the_engines_limits() {
        let types = |spec: &[usize]| -> Vec<Vec<String>> {
            spec.iter().map(|&n| vec!["DATE".to_owned(); n]).collect()
        };
        let check = |plans: Vec<Vec<String>>, expected: &[(usize, usize)]| {
            let ranges: Vec<(usize, usize)> = chunks(&plans).into_iter().map(|r| (r.start, r.end)).collect();
            assert_eq!(ranges, expected, "{plans:?}");
        };
        check(types(&[]), &[]);
        check(types(&[1, 2, 1]), &[(0, 3)]);
        // 501 tables: at most 200 SELECTs per statement (SQLite allows 500 in one compound statement).
        check(types(&[1; 501]), &[(0, 200), (200, 400), (400, 501)]);
        // Output columns: slots are shared, so width follows the widest table, not the sum.
        check(types(&[300, 300, 300]), &[(0, 3)]);
        check(types(&[300, 600]), &[(0, 1), (1, 2)]);
        // A table wider than the limit stands alone rather than being dropped.
        check(types(&[5, 600, 5]), &[(0, 1), (1, 2), (2, 3)]);
        // Different types take different slots: 300 DATE + 300 TIMESTAMP slots are too wide together.
        let mixed = vec![vec!["DATE".to_owned(); 300], vec!["TIMESTAMP".to_owned(); 300]];
        check(mixed, &[(0, 1), (1, 2)]);
    }

    #[test]
    fn slots_give_each_type_its_own_output_columns() {
        let t = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let plans = [
            t(&["date", "timestamp", "date"]),
            t(&["timestamp"]),
            t(&["timestamptz", "timestamp", "timestamp"]),
        ];
        let slots = Slots::of(plans.iter().map(Vec::as_slice));
        assert_eq!(
            slots.types,
            [
                ("date".to_owned(), 2),
                ("timestamp".to_owned(), 2),
                ("timestamptz".to_owned(), 1)
            ]
        );
        // k, n, then date (2 slots), timestamp (2), timestamptz (1): two columns per slot.
        assert_eq!(slots.width(), 12);
        assert_eq!(slots.positions(&plans[0]), [2, 6, 4]);
        assert_eq!(slots.positions(&plans[1]), [6]);
        assert_eq!(slots.positions(&plans[2]), [10, 6, 8]);
    }

    #[test]
    fn one_statement_reads_every_table_once() {
        use sluice_catalog::{Column, TableId};
        let tables = [
            Table::new(TableId::new("s", "odd name"), TableKind::Table)
                .with_column(Column::new("day\"s", "DATE")),
            Table::new(TableId::new("s", "orders"), TableKind::Table)
                .with_column(Column::new("id", "INTEGER"))
                .with_column(Column::new("ordered_at", "TIMESTAMP"))
                .with_column(Column::new("shipped_on", "DATE")),
        ];
        let plans: Vec<DatePlan> = tables.iter().map(DatePlan::of).collect();
        assert_eq!(
            boundaries_sql(Dialect::PostgreSql, &plans),
            "SELECT 0 AS k, COUNT(*) AS n, MIN(\"day\"\"s\"), MAX(\"day\"\"s\"), CAST(NULL AS TIMESTAMP), \
             CAST(NULL AS TIMESTAMP) FROM \"s\".\"odd name\" UNION ALL \
             SELECT 1 AS k, COUNT(*) AS n, MIN(\"shipped_on\"), MAX(\"shipped_on\"), MIN(\"ordered_at\"), \
             MAX(\"ordered_at\") FROM \"s\".\"orders\" LIMIT 2"
        );
        // MySQL and SQLite take untyped NULLs (their UNION types come from all branches at once).
        assert!(
            boundaries_sql(Dialect::MySql, &plans).contains("MAX(`day\"s`), NULL, NULL FROM `s`.`odd name`")
        );
        // Every dialect's governance accepts it as it is: nothing to rewrite under the cap the tool
        // passes (one row per table, plus one), and the text is its own rendering.
        for dialect in [
            Dialect::DuckDb,
            Dialect::PostgreSql,
            Dialect::MySql,
            Dialect::Sqlite,
        ] {
            let sql = boundaries_sql(dialect, &plans);
            let verdict = sluice_governance::govern(&sql, dialect, &sluice_governance::Policy::default(), 3);
            assert!(
                matches!(&verdict.decision,
                    sluice_governance::Decision::Allow { sql: allowed, rewritten: false, .. } if *allowed == sql),
                "{dialect:?}: {verdict:?}"
            );
        }
    }

    #[test]
    fn sampling_picks_category_like_text_columns_and_never_credentials() {
        let snapshot = sluice_catalog::outline::parse(
            "table s.customers\n  id varchar pk\n  name text\n  email text\n  password_hash text\n  \
             segment varchar\n  region_id int -> s.regions.id\n  notes text\n  signup_source varchar\n\
             table s.regions\n  id int pk\n  country_code varchar(2)\n  tags varchar[]\n\
             table s.orders\n  id int pk\n  customer_id varchar -> s.customers.id\n  status enum('a','b')\n\
             view s.v\n  status text\n",
        )
        .unwrap();
        let (catalog, _) = sluice_catalog::Catalog::build(snapshot);
        let names: Vec<String> = sample_candidates(&catalog)
            .into_iter()
            .map(|(t, c)| {
                let table = &catalog.tables()[t];
                format!("{}.{}", table.id.name, table.columns[c].name)
            })
            .collect();
        // Category-like names first (segment, source, status, country), then other text; keys, join columns,
        // credentials, contacts, free text, arrays and views never.
        assert_eq!(
            names,
            [
                "customers.segment",
                "customers.signup_source",
                "orders.status",
                "regions.country_code",
                "customers.name",
            ]
        );
    }

    #[test]
    fn sampling_statements_pass_governance_on_every_engine() {
        let snapshot = sluice_catalog::outline::parse(&format!(
            "table s.wide\n{}",
            (0..SAMPLE_COLUMNS_PER_STATEMENT)
                .map(|i| format!("  c{i} text\n"))
                .collect::<String>()
        ))
        .unwrap();
        let (catalog, _) = sluice_catalog::Catalog::build(snapshot);
        let columns: Vec<(usize, usize)> = (0..SAMPLE_COLUMNS_PER_STATEMENT).map(|c| (0, c)).collect();
        let one = samples_sql(Dialect::PostgreSql, &catalog, &columns[..1]);
        assert_eq!(
            one,
            "SELECT 0 AS k, v FROM (SELECT DISTINCT CAST(r0.v AS TEXT) AS v FROM (SELECT \"c0\" AS v FROM \
             \"s\".\"wide\" LIMIT 10000) AS r0 WHERE r0.v IS NOT NULL LIMIT 51) AS d0"
        );
        for dialect in [
            Dialect::DuckDb,
            Dialect::PostgreSql,
            Dialect::MySql,
            Dialect::Sqlite,
        ] {
            let sql = samples_sql(dialect, &catalog, &columns);
            let verdict =
                sluice_governance::govern(&sql, dialect, &sluice_governance::Policy::default(), 2_041);
            assert!(
                sluice_core::service::allowed_sql(&verdict).is_ok(),
                "{dialect:?}: {verdict:?}"
            );
        }
    }

    #[test]
    fn sampled_values_keep_short_values_of_low_cardinality_columns() {
        let row = |k: u64, v: &str| vec![serde_json::json!(k), serde_json::json!(v)];
        let mut rows = vec![
            row(0, "paid"),
            row(0, " shipped "),
            row(0, &"x".repeat(41)),
            row(0, ""),
        ];
        rows.extend((0..=SAMPLE_DISTINCT).map(|i| row(2, &format!("name {i}"))));
        rows.push(vec![serde_json::json!(9), serde_json::json!("out of range")]);
        assert_eq!(
            sampled_values(&rows, 3),
            [
                Some(vec!["paid".to_owned(), "shipped".to_owned()]),
                Some(vec![]),
                None
            ]
        );
    }

    #[test]
    fn a_pattern_with_nul_is_refused_with_a_reason() {
        assert_eq!(
            literal(Dialect::DuckDb, "a\0b").unwrap_err().message,
            "the pattern must not contain NUL characters"
        );
    }
}
