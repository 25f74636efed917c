//! `compare_join_types`: row counts of every join type between two tables on the agent's keys. The keys
//! and the filter are agent text: parsed into expressions and checked, never pasted.

use std::ops::ControlFlow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dialect::Dialect;

use super::sql;
use super::{Ran, Snapshot, as_u64, column, snapshot, system_audit};
use crate::auth::AuthContext;
use crate::service::{Outcome, Services, ToolError};

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

pub async fn compare_join_types(
    s: &Services,
    auth: &AuthContext,
    a: CompareJoinArgs,
) -> Outcome<JoinComparison> {
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
    let sql = sql::join_counts(dialect, (left, &left_filter), (right, &right_filter), &on);
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
}
