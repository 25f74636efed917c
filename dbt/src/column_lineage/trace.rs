//! Column lineage inside one SQL query: which columns of which relations each output column is computed from,
//! through CTEs, subqueries, joins, aliases, set operations and `SELECT *`.
//!
//! The tracer is given the SQL, the dialect's parser and a resolver that says what a table name is (a key and,
//! when known, its columns); it never guesses. A column it cannot attribute, a relation the resolver does not
//! know, or a `SELECT *` over a relation whose columns are unknown is listed in [`Traced::unresolved`].

use std::collections::HashSet;
use std::ops::ControlFlow;

use serde::Serialize;
use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, JoinConstraint, JoinOperator, ObjectName,
    Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias, TableFactor,
    TableWithJoins, Visit, Visitor, WildcardAdditionalOptions,
};
use sqlparser::parser::Parser;

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

#[derive(Debug, Clone)]
enum SourceKind {
    Relation {
        key: String,
        columns: Option<Vec<String>>,
    },
    Derived(Vec<Col>),
    Opaque,
}

/// A relation in a FROM clause, under the name the query uses for it.
#[derive(Debug, Clone)]
struct Source {
    /// The alias, or the table's last name part; lowercase.
    alias: String,
    /// The full name's parts, lowercase (empty for subqueries).
    full: Vec<String>,
    /// For messages.
    display: String,
    kind: SourceKind,
}

enum Lookup {
    Found(Vec<Origin>),
    /// The column is certainly not there.
    Absent,
    /// The relation's columns are unknown: it may be there.
    Maybe(Vec<Origin>),
}

impl Source {
    fn lookup(&self, column: &str) -> Lookup {
        match &self.kind {
            SourceKind::Relation { key, columns } => {
                let origin = |name: &str| {
                    vec![Origin {
                        relation: key.clone(),
                        column: name.to_owned(),
                        transform: None,
                        expressions: Vec::new(),
                    }]
                };
                match columns {
                    Some(cols) => cols
                        .iter()
                        .find(|c| c.eq_ignore_ascii_case(column))
                        .map_or(Lookup::Absent, |c| Lookup::Found(origin(c))),
                    None => Lookup::Maybe(origin(column)),
                }
            }
            SourceKind::Derived(cols) => cols
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(column))
                .map_or(Lookup::Absent, |c| Lookup::Found(c.origins.clone())),
            SourceKind::Opaque => Lookup::Maybe(Vec::new()),
        }
    }

    /// The relations whose rows this source's rows come from, for `count(*)`.
    fn row_origins(&self) -> Vec<Origin> {
        let row = |relation: &str| Origin {
            relation: relation.to_owned(),
            column: "*".to_owned(),
            transform: None,
            expressions: Vec::new(),
        };
        match &self.kind {
            SourceKind::Relation { key, .. } => vec![row(key)],
            SourceKind::Derived(cols) => {
                let mut keys: Vec<&str> = cols
                    .iter()
                    .flat_map(|c| c.origins.iter().map(|o| o.relation.as_str()))
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                keys.into_iter().map(row).collect()
            }
            SourceKind::Opaque => Vec::new(),
        }
    }

    fn matches(&self, qualifier: &[String]) -> bool {
        match qualifier {
            [one] => self.alias == *one,
            parts => self.full.len() >= parts.len() && self.full.ends_with(parts),
        }
    }
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

    fn from(&mut self, from: &[TableWithJoins]) -> Vec<Source> {
        let mut out = Vec::new();
        for twj in from {
            self.factor(&twj.relation, &mut out);
            for join in &twj.joins {
                let left = out.len();
                self.factor(&join.relation, &mut out);
                self.using(using_columns(&join.join_operator), &out, left);
            }
        }
        out
    }

    /// `JOIN … USING (c)` reads `c` from the joined relation (`sources[left..]`) and from the side it is joined
    /// to (`sources[..left]`), though no expression names it: renaming or dropping it breaks the query.
    fn using(&mut self, columns: &[ObjectName], sources: &[Source], left: usize) {
        for name in columns {
            let Some(column) = name_parts(name).pop() else {
                continue;
            };
            for (i, source) in sources.iter().enumerate() {
                let origins = match source.lookup(&column) {
                    Lookup::Found(origins) => origins,
                    // Columns unknown: the joined relation has the column all the same, or the SQL would
                    // not have run; which of the earlier relations has it cannot be told.
                    Lookup::Maybe(origins) if i >= left => origins,
                    Lookup::Maybe(_) | Lookup::Absent => continue,
                };
                self.reads.extend(
                    origins
                        .into_iter()
                        .filter(|o| o.column != "*")
                        .map(|o| (o.relation, o.column)),
                );
            }
        }
    }

    fn factor(&mut self, factor: &TableFactor, out: &mut Vec<Source>) {
        match factor {
            TableFactor::Table {
                name, alias, args, ..
            } if args.is_none() => {
                let parts = name_parts(name);
                let lowered: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
                let last = lowered.last().cloned().unwrap_or_default();
                let cte = (lowered.len() == 1)
                    .then(|| self.ctes.iter().rev().find(|(n, _)| *n == last))
                    .flatten();
                let kind = if let Some((_, cols)) = cte {
                    SourceKind::Derived(cols.clone())
                } else if let Some(info) = (self.resolve)(&parts) {
                    SourceKind::Relation {
                        key: info.key,
                        columns: info.columns,
                    }
                } else {
                    self.unresolved.push(format!(
                        "relation `{name}` is not a node of the project; its columns are not traced further"
                    ));
                    SourceKind::Opaque
                };
                let source = Source {
                    alias: alias.as_ref().map_or(last, |a| lower(&a.name)),
                    full: lowered,
                    display: name.to_string(),
                    kind,
                };
                out.push(self.aliased(source, alias.as_ref()));
            }
            TableFactor::Derived { subquery, alias, .. } => {
                let cols = self.query(subquery);
                let source = Source {
                    alias: alias.as_ref().map(|a| lower(&a.name)).unwrap_or_default(),
                    full: Vec::new(),
                    display: alias
                        .as_ref()
                        .map_or_else(|| "a subquery".to_owned(), |a| a.name.value.clone()),
                    kind: SourceKind::Derived(cols),
                };
                out.push(self.aliased(source, alias.as_ref()));
            }
            TableFactor::NestedJoin { table_with_joins, .. } => {
                out.extend(self.from(std::slice::from_ref(table_with_joins.as_ref())));
            }
            other => {
                let text = other.to_string();
                self.unresolved
                    .push(format!("table expression `{}` is not traced", shorten(&text, 60)));
                let alias = match other {
                    TableFactor::Function { alias, .. }
                    | TableFactor::TableFunction { alias, .. }
                    | TableFactor::UNNEST { alias, .. }
                    | TableFactor::Table { alias, .. } => alias.as_ref().map(|a| lower(&a.name)),
                    _ => None,
                };
                out.push(Source {
                    alias: alias.unwrap_or_default(),
                    full: Vec::new(),
                    display: shorten(&text, 60),
                    kind: SourceKind::Opaque,
                });
            }
        }
    }

    /// Applies `AS t(a, b)` column aliases, which rename the columns by position.
    fn aliased(&mut self, mut source: Source, alias: Option<&TableAlias>) -> Source {
        let Some(alias) = alias.filter(|a| !a.columns.is_empty()) else {
            return source;
        };
        let cols = match source.kind {
            SourceKind::Derived(cols) => cols,
            SourceKind::Relation {
                key,
                columns: Some(cols),
            } => cols
                .into_iter()
                .map(|c| Col {
                    origins: vec![Origin {
                        relation: key.clone(),
                        column: c.clone(),
                        transform: None,
                        expressions: Vec::new(),
                    }],
                    name: c,
                    star: false,
                })
                .collect(),
            kind => {
                source.kind = kind;
                return source;
            }
        };
        source.kind = SourceKind::Derived(self.rename(cols, alias));
        source
    }

    fn rename(&mut self, mut cols: Vec<Col>, alias: &TableAlias) -> Vec<Col> {
        for (col, name) in cols.iter_mut().zip(&alias.columns) {
            col.name = name.name.value.clone();
            col.star = false;
        }
        cols
    }

    /// The origins of an expression in a select list: a bare column keeps its origins; anything else adds
    /// its own text and transformation to each.
    fn expr(&mut self, expr: &Expr, sources: &[Source], earlier: &[Col]) -> Vec<Origin> {
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
    fn column(&mut self, parts: &[String], sources: &[Source], earlier: &[Col]) -> Vec<Origin> {
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
fn output_name(expr: &Expr) -> String {
    match column_ref(expr) {
        Some(parts) => parts.last().cloned().unwrap_or_default(),
        None => expr.to_string(),
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
struct Refs {
    columns: Vec<Vec<String>>,
    subqueries: Vec<Query>,
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

/// The columns of a `USING (…)` join constraint; none for other joins.
fn using_columns(op: &JoinOperator) -> &[ObjectName] {
    use JoinOperator as J;
    let constraint = match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::CrossJoin(c)
        | J::Semi(c)
        | J::LeftSemi(c)
        | J::RightSemi(c)
        | J::Anti(c)
        | J::LeftAnti(c)
        | J::RightAnti(c)
        | J::StraightJoin(c)
        | J::AsOf { constraint: c, .. } => c,
        J::CrossApply | J::OuterApply | J::ArrayJoin | J::LeftArrayJoin | J::InnerArrayJoin => return &[],
    };
    match constraint {
        JoinConstraint::Using(names) => names,
        _ => &[],
    }
}
