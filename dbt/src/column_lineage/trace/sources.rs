//! The FROM clause: the relations a query reads, under the names it uses for them (tables, CTEs, subqueries,
//! joins, `AS t(a, b)` column aliases), and what a column name finds in each.

use sqlparser::ast::{JoinConstraint, JoinOperator, ObjectName, TableAlias, TableFactor, TableWithJoins};

use super::{Col, Origin, Tracer, lower, name_parts, shorten};

#[derive(Debug, Clone)]
pub(super) enum SourceKind {
    Relation {
        key: String,
        columns: Option<Vec<String>>,
    },
    Derived(Vec<Col>),
    Opaque,
}

/// A relation in a FROM clause, under the name the query uses for it.
#[derive(Debug, Clone)]
pub(super) struct Source {
    /// The alias, or the table's last name part; lowercase.
    alias: String,
    /// The full name's parts, lowercase (empty for subqueries).
    full: Vec<String>,
    /// For messages.
    pub(super) display: String,
    pub(super) kind: SourceKind,
}

pub(super) enum Lookup {
    Found(Vec<Origin>),
    /// The column is certainly not there.
    Absent,
    /// The relation's columns are unknown: it may be there.
    Maybe(Vec<Origin>),
}

impl Source {
    pub(super) fn lookup(&self, column: &str) -> Lookup {
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
    pub(super) fn row_origins(&self) -> Vec<Origin> {
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

    pub(super) fn matches(&self, qualifier: &[String]) -> bool {
        match qualifier {
            [one] => self.alias == *one,
            parts => self.full.len() >= parts.len() && self.full.ends_with(parts),
        }
    }
}

impl Tracer<'_> {
    pub(super) fn from(&mut self, from: &[TableWithJoins]) -> Vec<Source> {
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

    pub(super) fn rename(&mut self, mut cols: Vec<Col>, alias: &TableAlias) -> Vec<Col> {
        for (col, name) in cols.iter_mut().zip(&alias.columns) {
            col.name = name.name.value.clone();
            col.star = false;
        }
        cols
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
