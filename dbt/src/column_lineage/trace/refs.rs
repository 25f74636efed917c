//! Expressions and column references: what a select item or a filter reads, how a column name resolves
//! against the FROM clause, the enclosing queries and earlier aliases, and whether the value is aggregated or
//! windowed on the way.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, Visit, Visitor};

use super::sources::{Lookup, Source, SourceKind};
use super::{Col, Origin, Tracer, Transform, merge, shorten};

impl Tracer<'_> {
    /// The origins of an expression in a select list: a bare column keeps its origins; anything else adds
    /// its own text and transformation to each.
    pub(super) fn expr(&mut self, expr: &Expr, sources: &[Source], earlier: &[Col]) -> Vec<Origin> {
        if let Some(parts) = column_ref(expr) {
            return self.column(&parts, sources, earlier);
        }
        let mut refs = Refs::default();
        let _ = expr.visit(&mut refs);
        let transform = if refs.window {
            Transform::Window
        } else if refs.aggregate {
            Transform::Aggregate
        } else {
            Transform::Expression
        };
        let mut origins = Vec::new();
        for parts in &refs.columns {
            let found = self.column(parts, sources, earlier);
            merge(&mut origins, found);
        }
        if refs.star {
            for source in sources {
                merge(&mut origins, source.row_origins());
            }
        }
        for subquery in &refs.subqueries {
            self.outer.push(sources.to_vec());
            let cols = self.query(subquery);
            self.outer.pop();
            if let Some(first) = cols.into_iter().next() {
                merge(&mut origins, first.origins);
            }
        }
        let text = shorten(&expr.to_string(), 160);
        for origin in &mut origins {
            origin.transform = Some(origin.transform.map_or(transform, |t| t.max(transform)));
            origin.expressions.insert(0, text.clone());
        }
        origins
    }

    /// Resolves a column reference (`c`, `t.c`, `schema.t.c`) against the FROM clause, then the enclosing
    /// queries' (correlation), then the select list's earlier aliases (which DuckDB and Snowflake allow).
    pub(super) fn column(&mut self, parts: &[String], sources: &[Source], earlier: &[Col]) -> Vec<Origin> {
        let origins = self.resolve_column(parts, sources, earlier);
        self.reads.extend(
            origins
                .iter()
                .filter(|o| o.column != "*")
                .map(|o| (o.relation.clone(), o.column.clone())),
        );
        origins
    }

    fn resolve_column(&mut self, parts: &[String], sources: &[Source], earlier: &[Col]) -> Vec<Origin> {
        let display = parts.join(".");
        let lowered: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
        let Some((name, qualifier)) = lowered.split_last() else {
            return Vec::new();
        };
        let frames: Vec<&[Source]> = std::iter::once(sources)
            .chain(self.outer.iter().rev().map(Vec::as_slice))
            .collect();
        if !qualifier.is_empty() {
            for frame in &frames {
                if let Some(source) = frame.iter().find(|s| s.matches(qualifier)) {
                    return match source.lookup(name) {
                        Lookup::Found(o) | Lookup::Maybe(o) => o,
                        Lookup::Absent => {
                            // The query names a column its table lacks (the table changed after this
                            // model was compiled): a read all the same, which impact analysis needs.
                            if let SourceKind::Relation { key, .. } = &source.kind {
                                self.reads
                                    .push((key.clone(), parts.last().cloned().unwrap_or_default()));
                            }
                            self.unresolved.push(format!(
                                "`{display}`: `{}` has no column `{}`",
                                source.display,
                                parts.last().map_or("", String::as_str)
                            ));
                            Vec::new()
                        }
                    };
                }
            }
            // `a.b` where `a` is a column: a struct field.
            if qualifier.len() == 1 {
                let found = self.unqualified(&qualifier[0], &frames, earlier);
                if let Some(origins) = found {
                    return origins;
                }
            }
            self.unresolved.push(format!(
                "`{display}`: no table `{}` in scope",
                qualifier.join(".")
            ));
            return Vec::new();
        }
        match self.unqualified(name, &frames, earlier) {
            Some(origins) => origins,
            None => {
                let opaque: Vec<&str> = frames
                    .iter()
                    .flat_map(|f| f.iter())
                    .filter(|s| matches!(s.lookup(name), Lookup::Maybe(_)))
                    .map(|s| s.display.as_str())
                    .collect();
                // With a single table in the FROM clause the missing column can only be meant for it.
                if let [only] = sources
                    && let SourceKind::Relation { key, .. } = &only.kind
                {
                    self.reads
                        .push((key.clone(), parts.last().cloned().unwrap_or_default()));
                }
                self.unresolved.push(if opaque.is_empty() {
                    format!("`{display}`: no table in scope has this column")
                } else {
                    format!(
                        "`{display}`: could come from any of {} (their columns are unknown)",
                        opaque.join(", ")
                    )
                });
                Vec::new()
            }
        }
    }

    fn unqualified(&self, name: &str, frames: &[&[Source]], earlier: &[Col]) -> Option<Vec<Origin>> {
        for frame in frames {
            let mut found = Vec::new();
            let mut maybe = Vec::new();
            for source in frame.iter() {
                match source.lookup(name) {
                    Lookup::Found(o) => found.push(o),
                    Lookup::Maybe(o) => maybe.push(o),
                    Lookup::Absent => {}
                }
            }
            // The warehouse ran this SQL, so a name in two tables is a `USING` / `NATURAL` join column:
            // both sides feed it.
            if !found.is_empty() {
                let mut origins = Vec::new();
                for o in found {
                    merge(&mut origins, o);
                }
                return Some(origins);
            }
            if maybe.len() == 1 && !maybe[0].is_empty() {
                return maybe.pop();
            }
            if !maybe.is_empty() {
                return None;
            }
        }
        earlier
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .map(|c| c.origins.clone())
    }
}

/// The parts of a bare column reference, through parentheses.
fn column_ref(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Identifier(i) => Some(vec![i.value.clone()]),
        Expr::CompoundIdentifier(parts) => Some(parts.iter().map(|i| i.value.clone()).collect()),
        Expr::Nested(inner) => column_ref(inner),
        _ => None,
    }
}

/// The name the engine gives an unaliased select item: the column's name, else the expression's text.
pub(super) fn output_name(expr: &Expr) -> String {
    match column_ref(expr) {
        Some(parts) => parts.last().cloned().unwrap_or_default(),
        None => expr.to_string(),
    }
}

/// Aggregate functions across the dialects dbt adapters speak.
const AGGREGATES: &[&str] = &[
    "any_value",
    "approx_count_distinct",
    "approx_distinct",
    "approx_quantile",
    "arbitrary",
    "arg_max",
    "arg_min",
    "argmax",
    "argmin",
    "array_agg",
    "avg",
    "bit_and",
    "bit_or",
    "bit_xor",
    "bool_and",
    "bool_or",
    "corr",
    "count",
    "count_if",
    "countif",
    "covar_pop",
    "covar_samp",
    "every",
    "first",
    "group_concat",
    "histogram",
    "last",
    "list",
    "listagg",
    "logical_and",
    "logical_or",
    "max",
    "max_by",
    "mean",
    "median",
    "min",
    "min_by",
    "mode",
    "percentile_cont",
    "percentile_disc",
    "product",
    "quantile",
    "quantile_cont",
    "quantile_disc",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "sum",
    "var_pop",
    "var_samp",
    "variance",
];

/// SQL's niladic functions, written without parentheses.
const NILADIC: &[&str] = &[
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "localtime",
    "localtimestamp",
    "session_user",
    "sysdate",
    "system_user",
    "user",
];

/// What an expression reads, outside any subquery it contains.
#[derive(Default)]
pub(super) struct Refs {
    pub(super) columns: Vec<Vec<String>>,
    pub(super) subqueries: Vec<Query>,
    aggregate: bool,
    window: bool,
    star: bool,
    depth: usize,
}

impl Visitor for Refs {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if self.depth == 0 {
            self.subqueries.push(query.clone());
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        match expr {
            // `current_date` and its kin parse as identifiers in some dialects; they read no column.
            Expr::Identifier(i)
                if i.quote_style.is_none() && NILADIC.contains(&i.value.to_lowercase().as_str()) => {}
            Expr::Identifier(i) => self.columns.push(vec![i.value.clone()]),
            Expr::CompoundIdentifier(parts) => {
                self.columns.push(parts.iter().map(|i| i.value.clone()).collect());
            }
            Expr::Function(f) => {
                if f.over.is_some() {
                    self.window = true;
                }
                let name = f
                    .name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.to_lowercase())
                    .unwrap_or_default();
                if f.filter.is_some() || !f.within_group.is_empty() || AGGREGATES.contains(&name.as_str()) {
                    self.aggregate = true;
                }
                if let FunctionArguments::List(list) = &f.args
                    && list.args.iter().any(|a| {
                        matches!(
                            a,
                            FunctionArg::Unnamed(
                                FunctionArgExpr::Wildcard | FunctionArgExpr::QualifiedWildcard(_)
                            )
                        )
                    })
                {
                    self.star = true;
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
