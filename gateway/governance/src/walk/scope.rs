//! What a FROM clause, a set operation or a wildcard makes visible: the relations column references
//! resolve against, and the columns a wildcard leaves out.

use super::*;

/// Column names a wildcard's options leave out (`EXCLUDE`, `EXCEPT`) or replace (`REPLACE`).
pub(super) fn excluded(opts: &WildcardAdditionalOptions) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(exclude) = &opts.opt_exclude {
        out.extend(exclude_names(exclude));
    }
    if let Some(except) = &opts.opt_except {
        out.push(except.first_element.value.to_lowercase());
        out.extend(except.additional_elements.iter().map(|i| i.value.to_lowercase()));
    }
    if let Some(replace) = &opts.opt_replace {
        out.extend(replace.items.iter().map(|r| r.column_name.value.to_lowercase()));
    }
    out
}

pub(super) fn exclude_names(exclude: &sqlparser::ast::ExcludeSelectItem) -> Vec<String> {
    use sqlparser::ast::ExcludeSelectItem;
    let last = |n: &ObjectName| names::parts(n).and_then(|p| p.last().cloned());
    match exclude {
        ExcludeSelectItem::Single(n) => last(n).into_iter().collect(),
        ExcludeSelectItem::Multiple(ns) => ns.iter().filter_map(last).collect(),
    }
}

/// The relations a FROM clause makes visible to column references.
pub(super) fn from_tables(from: &[TableWithJoins]) -> Vec<ScopeTable> {
    let mut out = Vec::new();
    for twj in from {
        factor_tables(&twj.relation, &mut out);
        for join in &twj.joins {
            factor_tables(&join.relation, &mut out);
        }
    }
    out
}

pub(super) fn factor_tables(factor: &TableFactor, out: &mut Vec<ScopeTable>) {
    let alias_of = |a: &Option<sqlparser::ast::TableAlias>| a.as_ref().map(|a| a.name.value.to_lowercase());
    match factor {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            out.push(ScopeTable {
                alias: alias_of(alias),
                parts: names::parts(name),
            });
        }
        TableFactor::NestedJoin {
            table_with_joins,
            alias,
        } => {
            out.extend(from_tables(std::slice::from_ref(table_with_joins)));
            if let Some(alias) = alias_of(alias) {
                out.push(ScopeTable {
                    alias: Some(alias),
                    parts: None,
                });
            }
        }
        TableFactor::Pivot { table, alias, .. } | TableFactor::Unpivot { table, alias, .. } => {
            // The pivoted relation passes the source's other columns through, so it answers for the source.
            let mut inner = Vec::new();
            factor_tables(table, &mut inner);
            if let Some(alias) = alias_of(alias) {
                for t in &inner {
                    out.push(ScopeTable {
                        alias: Some(alias.clone()),
                        parts: t.parts.clone(),
                    });
                }
            }
            out.extend(inner);
        }
        TableFactor::Table { alias, .. }
        | TableFactor::Derived { alias, .. }
        | TableFactor::TableFunction { alias, .. }
        | TableFactor::Function { alias, .. }
        | TableFactor::UNNEST { alias, .. }
        | TableFactor::JsonTable { alias, .. }
        | TableFactor::OpenJsonTable { alias, .. }
        | TableFactor::MatchRecognize { alias, .. }
        | TableFactor::XmlTable { alias, .. }
        | TableFactor::SemanticView { alias, .. } => {
            out.push(ScopeTable {
                alias: alias_of(alias),
                parts: None,
            });
        }
        TableFactor::UnpivotExpr { .. } => {}
    }
}

/// The relations the top selects of a query body make visible, for the query-level clauses (ORDER BY).
pub(super) fn body_tables(body: &SetExpr, out: &mut Vec<ScopeTable>) {
    match body {
        SetExpr::Select(select) => out.extend(from_tables(&select.from)),
        SetExpr::SetOperation { left, right, .. } => {
            body_tables(left, out);
            body_tables(right, out);
        }
        _ => {}
    }
}

pub(super) fn join_constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::CrossJoin(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c)
        | JoinOperator::StraightJoin(c)
        | JoinOperator::AsOf { constraint: c, .. } => Some(c),
        _ => None,
    }
}
