//! Row limits: inject one when absent, lower one above the maximum, in the dialect's own syntax (`LIMIT`,
//! `TOP`, `FETCH FIRST`, `|> LIMIT`), and wrap the query whenever its own limit cannot be proven small enough.

use sqlparser::ast::{
    Expr, Fetch, LimitClause, Offset, OffsetRows, PipeOperator, Query, SetExpr, Statement, TableFactor, Top,
    TopQuantity, Value,
};

use crate::Dialect;
use crate::rules;
use crate::verdict::Finding;

/// The alias of the derived table a wrapped query becomes.
pub(crate) const WRAP_ALIAS: &str = "sluice_limited";

/// What the limit pass did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limited {
    pub(crate) rewritten: bool,
    /// The most rows the statement can now return.
    pub(crate) applied: u64,
}

/// The value of a plain non-negative integer literal; anything else (expressions, parameters, `ALL`,
/// negative numbers, decimals) is unprovable.
fn literal(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse::<u64>().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn number(n: u64) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

/// How an existing bound compares with the maximum.
enum Bound {
    /// At most the maximum: keep it.
    Within(u64),
    /// A literal above the maximum: lower it.
    Above,
    /// Not provable: wrap.
    Unprovable,
}

fn bound(expr: &Expr, max: u64) -> Bound {
    match literal(expr) {
        Some(k) if k <= max => Bound::Within(k),
        Some(_) => Bound::Above,
        None => Bound::Unprovable,
    }
}

fn kept(applied: u64) -> Limited {
    Limited {
        rewritten: false,
        applied,
    }
}

fn set(max: u64) -> Limited {
    Limited {
        rewritten: true,
        applied: max,
    }
}

/// Applies the row limit `max` to a query statement; other statements pass unchanged.
pub(crate) fn apply(
    statement: Statement,
    dialect: Dialect,
    max: u64,
) -> Result<(Statement, Limited), Finding> {
    // Engines store limits as signed 64-bit integers; a larger literal would fail rather than limit.
    let max = max.min(i64::MAX as u64);
    let Statement::Query(mut query) = statement else {
        return Ok((statement, kept(max)));
    };
    match limit_in_place(&mut query, dialect, max) {
        Some(done) => Ok((Statement::Query(query), done)),
        None => Ok((Statement::Query(Box::new(wrap(*query, dialect, max)?)), set(max))),
    }
}

/// Limits the query without changing its shape, or returns `None` when only wrapping is safe.
fn limit_in_place(query: &mut Query, dialect: Dialect, max: u64) -> Option<Limited> {
    if !query.pipe_operators.is_empty() {
        return Some(limit_pipe(&mut query.pipe_operators, max));
    }
    let top = match query.body.as_mut() {
        SetExpr::Select(select) => Some(&mut select.top),
        _ => None,
    };
    let has_top = top.as_ref().is_some_and(|t| t.is_some());
    let has_limit_clause = query.limit_clause.is_some();

    if has_top {
        if has_limit_clause || query.fetch.is_some() {
            return None;
        }
        let top = top?.as_mut()?;
        if top.percent || top.with_ties {
            return None;
        }
        let quantity = match &top.quantity {
            Some(TopQuantity::Constant(k)) => Some(*k),
            Some(TopQuantity::Expr(e)) => literal(e),
            None => None,
        };
        return match quantity {
            Some(k) if k <= max => Some(kept(k)),
            Some(_) => {
                top.quantity = Some(TopQuantity::Constant(max));
                Some(set(max))
            }
            None => None,
        };
    }

    if let Some(fetch) = &mut query.fetch {
        if fetch.percent || fetch.with_ties {
            return None;
        }
        if matches!(
            query.limit_clause,
            Some(LimitClause::LimitOffset { limit: Some(_), .. })
        ) {
            return None;
        }
        return match &fetch.quantity {
            // `FETCH FIRST ROW ONLY` returns one row.
            None => Some(kept(1)),
            Some(q) => match bound(q, max) {
                Bound::Within(k) => Some(kept(k)),
                Bound::Above => {
                    fetch.quantity = Some(number(max));
                    Some(set(max))
                }
                Bound::Unprovable => None,
            },
        };
    }

    if dialect == Dialect::MsSql {
        return limit_mssql(query, max);
    }

    match &mut query.limit_clause {
        None => {
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(number(max)),
                offset: None,
                limit_by: Vec::new(),
            });
            Some(set(max))
        }
        Some(LimitClause::LimitOffset { limit_by, .. }) if !limit_by.is_empty() => None,
        Some(LimitClause::LimitOffset { limit, .. }) => match limit {
            // `LIMIT ALL`, `LIMIT NULL` and a bare `OFFSET` all leave the rows unbounded.
            None => {
                *limit = Some(number(max));
                Some(set(max))
            }
            Some(e) => match bound(e, max) {
                Bound::Within(k) => Some(kept(k)),
                Bound::Above => {
                    *e = number(max);
                    Some(set(max))
                }
                Bound::Unprovable => None,
            },
        },
        Some(LimitClause::OffsetCommaLimit { limit, .. }) => match bound(limit, max) {
            Bound::Within(k) => Some(kept(k)),
            Bound::Above => {
                *limit = number(max);
                Some(set(max))
            }
            Bound::Unprovable => None,
        },
    }
}

/// SQL Server has no `LIMIT`: a plain select gets `TOP (n)`, an ordered set operation
/// `OFFSET 0 ROWS FETCH NEXT n ROWS ONLY`; anything else is wrapped.
fn limit_mssql(query: &mut Query, max: u64) -> Option<Limited> {
    let offset_only = matches!(
        &query.limit_clause,
        Some(LimitClause::LimitOffset { limit: None, offset: Some(_), limit_by }) if limit_by.is_empty()
    );
    if offset_only {
        query.fetch = Some(Fetch {
            with_ties: false,
            percent: false,
            quantity: Some(number(max)),
        });
        return Some(set(max));
    }
    if query.limit_clause.is_some() {
        return None;
    }
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.top = Some(Top {
            with_ties: false,
            percent: false,
            quantity: Some(TopQuantity::Constant(max)),
        });
        return Some(set(max));
    }
    if query.order_by.is_some() {
        query.limit_clause = Some(LimitClause::LimitOffset {
            limit: None,
            offset: Some(Offset {
                value: number(0),
                rows: OffsetRows::Rows,
            }),
            limit_by: Vec::new(),
        });
        query.fetch = Some(Fetch {
            with_ties: false,
            percent: false,
            quantity: Some(number(max)),
        });
        return Some(set(max));
    }
    None
}

fn limit_pipe(ops: &mut Vec<PipeOperator>, max: u64) -> Limited {
    if let Some(PipeOperator::Limit { expr, .. }) = ops.last_mut() {
        match bound(expr, max) {
            Bound::Within(k) => return kept(k),
            Bound::Above => {
                *expr = number(max);
                return set(max);
            }
            Bound::Unprovable => {}
        }
    }
    ops.push(PipeOperator::Limit {
        expr: number(max),
        offset: None,
    });
    set(max)
}

fn broken() -> Finding {
    Finding::deny(
        rules::UNSTABLE_RENDERING,
        "The row limit could not be added to this query. Add a plain `LIMIT n` (or `TOP n`) yourself."
            .to_owned(),
        None,
    )
}

/// The skeleton of a wrapped query, parsed in the dialect so that every field has the parser's defaults.
fn template(dialect: Dialect) -> Result<Query, Finding> {
    let sql = match dialect {
        Dialect::MsSql => format!("SELECT TOP 1 * FROM (SELECT 1) AS {WRAP_ALIAS}"),
        _ => format!("SELECT * FROM (SELECT 1) AS {WRAP_ALIAS} LIMIT 1"),
    };
    let mut statements = crate::lex::parse_sql(&sql, dialect, 16).map_err(|_| broken())?;
    match statements.pop() {
        Some(Statement::Query(q)) => Ok(*q),
        _ => Err(broken()),
    }
}

/// `SELECT * FROM (<query>) AS sluice_limited LIMIT n` (or `SELECT TOP n *` on SQL Server). The query's
/// `WITH` moves to the outer query, since some engines refuse a CTE inside a derived table.
fn wrap(mut inner: Query, dialect: Dialect, max: u64) -> Result<Query, Finding> {
    let mut outer = template(dialect)?;
    outer.with = inner.with.take();
    let SetExpr::Select(select) = outer.body.as_mut() else {
        return Err(broken());
    };
    if dialect == Dialect::MsSql {
        select.top = Some(Top {
            with_ties: false,
            percent: false,
            quantity: Some(TopQuantity::Constant(max)),
        });
    }
    let Some(TableFactor::Derived { subquery, .. }) = select.from.first_mut().map(|t| &mut t.relation) else {
        return Err(broken());
    };
    **subquery = inner;
    if let Some(LimitClause::LimitOffset { limit, .. }) = &mut outer.limit_clause {
        *limit = Some(number(max));
    }
    Ok(outer)
}
