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
use sluice_catalog::{Quoting, Table, TableKind};
use sluice_governance::Dialect;

use super::{Snapshot, cell, column, one_line, snapshot, system_audit};
use crate::auth::{AuthContext, Scope};
use crate::service::{AuditFacts, Outcome, QueryOutput, Services, ToolError};
use crate::tools::{Effect, Meta, Render, ToolSpec, spec};

/// The statements one call ran, for its single audit record.
struct Ran {
    audit: AuditFacts,
    statements: Vec<String>,
    rows: u64,
}

impl Ran {
    fn new(audit: AuditFacts) -> Ran {
        Ran {
            audit,
            statements: Vec::new(),
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
        }
        self.rows += outcome.audit.rows.unwrap_or(0);
        outcome.result
    }

    fn finish(mut self) -> AuditFacts {
        if !self.statements.is_empty() {
            self.audit.sql = Some(self.statements.join(";\n"));
            self.audit.rows = Some(self.rows);
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

/// A string literal for the dialect. MySQL and MariaDB treat a backslash as an escape in literals by
/// default, so it is doubled there as well as the quote.
fn literal(dialect: Dialect, text: &str) -> Result<String, ToolError> {
    if text.contains('\0') {
        return Err(ToolError::invalid("the pattern must not contain NUL characters"));
    }
    let mut escaped = text.replace('\'', "''");
    if dialect == Dialect::MySql {
        escaped = escaped.replace('\\', "\\\\");
    }
    Ok(format!("'{escaped}'"))
}

/// `CAST(expr AS <text>)` in the dialect.
fn as_text(dialect: Dialect, expr: &str) -> String {
    let target = match dialect {
        Dialect::DuckDb => "VARCHAR",
        Dialect::MySql => "CHAR",
        _ => "TEXT",
    };
    format!("CAST({expr} AS {target})")
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
    let from = q.table(&table.id);

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
        filter = format!(" AND LOWER({}) LIKE {pattern}", as_text(dialect, &name));
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
    let from = q.table(&table.id);
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

fn parser_dialect(dialect: Dialect) -> Box<dyn sqlparser::dialect::Dialect> {
    use sqlparser::dialect as d;
    match dialect {
        Dialect::DuckDb => Box::new(d::DuckDbDialect {}),
        Dialect::PostgreSql | Dialect::Redshift => Box::new(d::PostgreSqlDialect {}),
        Dialect::MySql => Box::new(d::MySqlDialect {}),
        Dialect::Sqlite => Box::new(d::SQLiteDialect {}),
        _ => Box::new(d::GenericDialect {}),
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
    let d = parser_dialect(dialect);
    let mut parser = sqlparser::parser::Parser::new(d.as_ref())
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
        let mut sql = format!("SELECT * FROM {} AS {alias}", q.table(&table.id));
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
    /// Statements run: one per table with date columns.
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

/// The statement that reads one table's row count and the min and max of each of its date columns.
pub fn boundaries_sql(q: Quoting, table: &Table, columns: &[&sluice_catalog::Column]) -> String {
    let mut exprs = vec!["COUNT(*)".to_owned()];
    for c in columns {
        let name = q.ident(&c.name);
        exprs.push(format!("MIN({name})"));
        exprs.push(format!("MAX({name})"));
    }
    format!("SELECT {} FROM {}", exprs.join(", "), q.table(&table.id))
}

async fn date_boundaries_in(
    s: &Services,
    auth: &AuthContext,
    snap: &Snapshot,
    ran: &mut Ran,
) -> Result<DateBoundaries, ToolError> {
    let q = snap.quoting();
    let today = chrono::Utc::now().date_naive();
    let mut tables = Vec::new();
    let mut queries = 0;
    for table in snap.catalog().tables() {
        // Views recompute on every read and repeat their tables' dates; only stored relations are read.
        if table.kind == TableKind::View {
            continue;
        }
        let columns: Vec<&sluice_catalog::Column> = table
            .columns
            .iter()
            .filter(|c| is_date_type(&c.data_type))
            .collect();
        if columns.is_empty() {
            continue;
        }
        let sql = boundaries_sql(q, table, &columns);
        queries += 1;
        let mut out = TableDates {
            table: table.id.to_string(),
            row_count: None,
            columns: Vec::new(),
            max: None,
            error: None,
            flags: Vec::new(),
        };
        match ran.query(s, auth, snap, &sql, 1).await {
            Ok(result) => {
                let row = result.rows.first().cloned().unwrap_or_default();
                out.row_count = as_u64(row.first());
                for (i, c) in columns.iter().enumerate() {
                    let min = row.get(1 + 2 * i).cloned().filter(|v| !v.is_null());
                    let max = row.get(2 + 2 * i).cloned().filter(|v| !v.is_null());
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
            }
            // A denied or failing table is reported, not fatal: the others still answer.
            Err(e) => out.error = Some(e.message),
        }
        tables.push(out);
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
            description: "MIN and MAX of every DATE and TIMESTAMP column (one statement per table), each \
                table's latest date with its row count, and the global latest date. Future dates and tables \
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
    fn literals_escape_quotes_for_each_dialect() {
        assert_eq!(literal(Dialect::PostgreSql, "o'brien\\").unwrap(), "'o''brien\\'");
        assert_eq!(literal(Dialect::MySql, "o'brien\\").unwrap(), "'o''brien\\\\'");
        assert!(literal(Dialect::DuckDb, "a\0b").is_err());
    }
}
