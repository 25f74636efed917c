//! Column lineage inside one SQL query: which columns of which relations each output column is computed from,
//! through CTEs, subqueries, joins, aliases, set operations and `SELECT *`.
//!
//! The tracer is given the SQL, the dialect's parser and a resolver that says what a table name is (a key and,
//! when known, its columns); it never guesses. A column it cannot attribute, a relation the resolver does not
//! know, or a `SELECT *` over a relation whose columns are unknown is listed in [`Traced::unresolved`].

mod refs;
mod sources;

use std::collections::HashSet;

use serde::Serialize;
use sqlparser::ast::{
    Ident, ObjectName, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, Visit,
    WildcardAdditionalOptions,
};
use sqlparser::parser::Parser;

use refs::{Refs, output_name};
use sources::{Source, SourceKind};

/// How an output column's value is derived from an origin column, beyond passing it through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// A row-wise expression: a cast, arithmetic, `coalesce`, `case`...
    Expression,
    /// An aggregate (`sum`, `count`, `min`...): one value from many rows.
    Aggregate,
    /// A window function (`row_number() over (...)`, `sum(x) over (...)`).
    Window,
}

impl Transform {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Transform::Expression => "expression",
            Transform::Aggregate => "aggregate",
            Transform::Window => "window",
        }
    }
}

/// One column an output column is computed from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// The resolver's key of the relation.
    pub relation: String,
    /// The column, as the relation names it; `*` stands for the relation's rows (`count(*)`).
    pub column: String,
    /// The strongest transformation on the way (window > aggregate > expression); `None` when the value
    /// passes through unchanged (possibly under another name).
    pub transform: Option<Transform>,
    /// The expressions applied on the way, outermost first, as sqlparser prints them.
    pub expressions: Vec<String>,
}

/// One output column of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedColumn {
    /// The output name.
    pub name: String,
    /// What it is computed from; empty for constants.
    pub origins: Vec<Origin>,
    /// Whether the name comes from a `SELECT *` (or `t.*`) expansion rather than from the SQL's text: the
    /// column then takes whatever name its origin has, so a rename upstream renames it too.
    pub star: bool,
}

/// What a query's output columns come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traced {
    /// The output columns in order.
    pub columns: Vec<TracedColumn>,
    /// What could not be attributed, one sentence each.
    pub unresolved: Vec<String>,
    /// Every relation column the query reads anywhere (select list, joins, WHERE, GROUP BY, HAVING, QUALIFY,
    /// subqueries), as `(relation key, column)`, sorted: renaming or dropping any of them breaks the query.
    pub reads: Vec<(String, String)>,
}

/// What the resolver knows about a relation the query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationInfo {
    /// A stable key for the relation (a node's unique id).
    pub key: String,
    /// Its columns, when the catalog or the YAML says; `None` when unknown.
    pub columns: Option<Vec<String>>,
}

/// Traces a single query. `resolve` receives a table name's parts, unquoted (`["db", "main", "orders"]`).
/// Errors are SQL that does not parse in the dialect, or text that is not one query.
pub fn trace(
    sql: &str,
    dialect: &dyn sqlparser::dialect::Dialect,
    resolve: &dyn Fn(&[String]) -> Option<RelationInfo>,
) -> Result<Traced, String> {
    let statements = Parser::parse_sql(dialect, sql).map_err(|e| e.to_string())?;
    let query = statements
        .iter()
        .rev()
        .find_map(|s| match s {
            Statement::Query(q) => Some(q),
            _ => None,
        })
        .ok_or_else(|| "the SQL is not a SELECT query".to_owned())?;
    let mut tracer = Tracer {
        resolve,
        ctes: Vec::new(),
        outer: Vec::new(),
        unresolved: Vec::new(),
        reads: Vec::new(),
    };
    let columns = tracer
        .query(query)
        .into_iter()
        .map(|c| TracedColumn {
            name: c.name,
            origins: c.origins,
            star: c.star,
        })
        .collect();
    let mut seen = HashSet::new();
    let unresolved = tracer
        .unresolved
        .into_iter()
        .filter(|u| seen.insert(u.clone()))
        .collect();
    let mut reads = tracer.reads;
    reads.sort();
    reads.dedup();
    Ok(Traced {
        columns,
        unresolved,
        reads,
    })
}

#[derive(Debug, Clone)]
struct Col {
    name: String,
    origins: Vec<Origin>,
    /// Named by a `*` expansion (see [`TracedColumn::star`]).
    star: bool,
}

struct Tracer<'r> {
    resolve: &'r dyn Fn(&[String]) -> Option<RelationInfo>,
    /// CTEs in scope, innermost last.
    ctes: Vec<(String, Vec<Col>)>,
    /// The FROM clauses of enclosing queries, for correlated subqueries; innermost last.
    outer: Vec<Vec<Source>>,
    unresolved: Vec<String>,
    reads: Vec<(String, String)>,
}

fn lower(ident: &Ident) -> String {
    ident.value.to_lowercase()
}

fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| p.as_ident().map_or_else(|| p.to_string(), |i| i.value.clone()))
        .collect()
}

impl Tracer<'_> {
    fn query(&mut self, q: &Query) -> Vec<Col> {
        let mark = self.ctes.len();
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let cols = self.query(&cte.query);
                let cols = self.rename(cols, &cte.alias);
                self.ctes.push((lower(&cte.alias.name), cols));
            }
        }
        let cols = self.set_expr(&q.body);
        self.ctes.truncate(mark);
        cols
    }

    fn set_expr(&mut self, body: &SetExpr) -> Vec<Col> {
        match body {
            SetExpr::Select(select) => self.select(select),
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation { left, right, op, .. } => {
                let mut left = self.set_expr(left);
                let right = self.set_expr(right);
                if left.len() != right.len() {
                    self.unresolved.push(format!(
                        "the branches of a {op} have {} and {} known columns; columns were matched by position as far as they go",
                        left.len(),
                        right.len()
                    ));
                }
                for (l, r) in left.iter_mut().zip(right) {
                    merge(&mut l.origins, r.origins);
                }
                left
            }
            SetExpr::Values(values) => {
                let width = values.rows.first().map_or(0, |row| row.content.len());
                (1..=width)
                    .map(|i| Col {
                        name: format!("column{i}"),
                        origins: Vec::new(),
                        star: false,
                    })
                    .collect()
            }
            other => {
                let text = other.to_string();
                self.unresolved
                    .push(format!("`{}` is not traced", shorten(&text, 60)));
                Vec::new()
            }
        }
    }

    fn select(&mut self, select: &Select) -> Vec<Col> {
        let sources = self.from(&select.from);
        let mut out: Vec<Col> = Vec::new();
        for item in &select.projection {
            match item {
                SelectItem::UnnamedExpr(expr) => {
                    let origins = self.expr(expr, &sources, &out);
                    out.push(Col {
                        name: output_name(expr),
                        origins,
                        star: false,
                    });
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    let origins = self.expr(expr, &sources, &out);
                    out.push(Col {
                        name: alias.value.clone(),
                        origins,
                        star: false,
                    });
                }
                SelectItem::ExprWithAliases { expr, aliases } => {
                    let origins = self.expr(expr, &sources, &out);
                    for alias in aliases {
                        out.push(Col {
                            name: alias.value.clone(),
                            origins: origins.clone(),
                            star: false,
                        });
                    }
                }
                SelectItem::Wildcard(options) => {
                    for source in &sources {
                        out.extend(self.expand(source, options));
                    }
                }
                SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), options) => {
                    let qualifier: Vec<String> = name_parts(name).iter().map(|p| p.to_lowercase()).collect();
                    match sources.iter().find(|s| s.matches(&qualifier)) {
                        Some(source) => out.extend(self.expand(source, options)),
                        None => self
                            .unresolved
                            .push(format!("`{name}.*` names no table of its FROM clause")),
                    }
                }
                SelectItem::QualifiedWildcard(kind, _) => {
                    self.unresolved
                        .push(format!("`{kind}` is not expanded: its columns are unknown"));
                }
            }
        }
        // The columns that filter, join and group feed no output value but are read all the same.
        let mut refs = Refs::default();
        for twj in &select.from {
            for join in &twj.joins {
                let _ = join.join_operator.visit(&mut refs);
            }
        }
        let _ = select.selection.visit(&mut refs);
        let _ = select.group_by.visit(&mut refs);
        let _ = select.having.visit(&mut refs);
        let _ = select.qualify.visit(&mut refs);
        self.read(&refs, &sources, &out);
        out
    }

    /// Resolves what an expression reads, for [`Traced::reads`], without computing an output.
    fn read(&mut self, refs: &Refs, sources: &[Source], earlier: &[Col]) {
        for parts in &refs.columns {
            self.column(parts, sources, earlier);
        }
        for subquery in &refs.subqueries {
            self.outer.push(sources.to_vec());
            self.query(subquery);
            self.outer.pop();
        }
    }

    /// The columns `*` (or `t.*`) stands for, less any `EXCLUDE` / `EXCEPT` columns.
    fn expand(&mut self, source: &Source, options: &WildcardAdditionalOptions) -> Vec<Col> {
        let mut excluded: Vec<String> = Vec::new();
        if let Some(exclude) = &options.opt_exclude {
            match exclude {
                sqlparser::ast::ExcludeSelectItem::Single(name) => {
                    excluded.extend(name_parts(name).last().cloned());
                }
                sqlparser::ast::ExcludeSelectItem::Multiple(names) => {
                    excluded.extend(names.iter().filter_map(|n| name_parts(n).last().cloned()));
                }
            }
        }
        if let Some(except) = &options.opt_except {
            excluded.push(except.first_element.value.clone());
            excluded.extend(except.additional_elements.iter().map(|i| i.value.clone()));
        }
        if options.opt_replace.is_some() || options.opt_rename.is_some() {
            self.unresolved.push(format!(
                "`* REPLACE/RENAME` over `{}`: the replaced or renamed columns are traced as passing through",
                source.display
            ));
        }
        let kept = |name: &str| !excluded.iter().any(|e| e.eq_ignore_ascii_case(name));
        match &source.kind {
            SourceKind::Relation {
                key,
                columns: Some(cols),
            } => cols
                .iter()
                .filter(|c| kept(c))
                .inspect(|c| self.reads.push((key.clone(), (*c).clone())))
                .map(|c| Col {
                    name: c.clone(),
                    origins: vec![Origin {
                        relation: key.clone(),
                        column: c.clone(),
                        transform: None,
                        expressions: Vec::new(),
                    }],
                    star: true,
                })
                .collect(),
            SourceKind::Derived(cols) => cols.iter().filter(|c| kept(&c.name)).cloned().collect(),
            SourceKind::Relation { columns: None, .. } | SourceKind::Opaque => {
                self.unresolved.push(format!(
                    "`SELECT *` from `{}`: its columns are unknown (not in catalog.json or the YAML), so the columns it adds are not listed",
                    source.display
                ));
                Vec::new()
            }
        }
    }
}

/// Adds origins not yet present (same relation and column); a repeated one keeps the stronger transform.
fn merge(into: &mut Vec<Origin>, more: Vec<Origin>) {
    for origin in more {
        match into
            .iter_mut()
            .find(|o| o.relation == origin.relation && o.column.eq_ignore_ascii_case(&origin.column))
        {
            Some(existing) => {
                if origin.transform > existing.transform {
                    *existing = origin;
                }
            }
            None => into.push(origin),
        }
    }
}

fn shorten(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}
