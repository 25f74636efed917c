//! The whole-tree walk: every query, select, relation and expression of a statement is checked against the
//! built-in rules and the policy, wherever it sits (select list, FROM, joins, WHERE, subqueries, CTEs).

use std::ops::ControlFlow;
use std::ptr;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, JoinConstraint, JoinOperator, ObjectName,
    PipeOperator, Query, Select, SelectFlavor, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Spanned,
    Statement, TableFactor, TableWithJoins, Visit, Visitor, WildcardAdditionalOptions,
};

use crate::Dialect;
use crate::functions::{self, FunctionVerdict, Why};
use crate::lex::Positions;
use crate::names::{self, Entries, entry_matches};
use crate::policy::Policy;
use crate::rules;
use crate::verdict::{Finding, Span};

/// Findings beyond this many are dropped: one is enough to refuse, a few help the agent fix everything at once.
const MAX_FINDINGS: usize = 16;

/// File extensions that make DuckDB read a table name as a file (replacement scans).
const FILE_EXTENSIONS: &[&str] = &[
    ".csv", ".tsv", ".txt", ".parquet", ".json", ".jsonl", ".ndjson", ".gz", ".zst", ".xlsx", ".arrow",
    ".ipc", ".feather", ".avro", ".db", ".duckdb", ".sqlite", ".sqlite3",
];

pub(crate) fn span(s: sqlparser::tokenizer::Span) -> Option<Span> {
    (s.start.line > 0).then_some(Span {
        line: s.start.line,
        column: s.start.column,
    })
}

/// The CTE names one query level defines, and the names of the enclosing level that a CTE body may not
/// see (itself and later CTEs of a non-recursive `WITH`).
#[derive(Default)]
struct CteFrame {
    names: Vec<Ident>,
    hidden: Vec<Ident>,
}

/// A relation visible to column references: a base table (with its name parts) or an opaque source
/// (derived table, table function) known only by its alias.
#[derive(Clone, Debug)]
struct ScopeTable {
    alias: Option<String>,
    parts: Option<Vec<String>>,
}

impl ScopeTable {
    /// Whether `name` (one lowercased part) refers to this relation.
    fn answers_to(&self, name: &str) -> bool {
        match (&self.alias, &self.parts) {
            (Some(alias), _) => alias == name,
            (None, Some(parts)) => parts.last().is_some_and(|p| p == name),
            (None, None) => false,
        }
    }
}

/// Whether two identifiers name the same CTE: unquoted names compare case-insensitively, quoted names
/// exactly. When in doubt they differ, so a relation is judged as a table rather than skipped as a CTE.
fn same_name(a: &Ident, b: &Ident) -> bool {
    match (a.quote_style, b.quote_style) {
        (None, None) => a.value.eq_ignore_ascii_case(&b.value),
        _ => a.value == b.value,
    }
}

/// The walker. Build it with [`Walker::new`], run it with [`Walker::run`], read `findings`.
pub(crate) struct Walker<'a> {
    dialect: Dialect,
    policy: &'a Policy,
    entries: Entries,
    pub(crate) findings: Vec<Finding>,
    ctes: Vec<CteFrame>,
    cte_bodies: Vec<(*const Query, Vec<Ident>)>,
    scopes: Vec<Vec<ScopeTable>>,
    denied_columns: Vec<(Vec<String>, String)>,
    query_depth: usize,
    expr_depth: usize,
    statement_depth: usize,
    too_deep: bool,
    /// Spans of the enclosing selects, for findings on nodes the parser gives no position.
    context: Vec<Option<Span>>,
    /// Whether findings get source positions; see [`Walker::new`].
    positions: bool,
}

impl<'a> Walker<'a> {
    /// A walker for `dialect` under `policy`. With [`Positions::Drop`] its findings carry no source
    /// positions and it computes none (a node's position costs a walk over its subtree): the pass that
    /// only needs to know whether a statement is allowed. The findings are the same either way: they are
    /// told apart by rule and message, never by position.
    pub(crate) fn new(dialect: Dialect, policy: &'a Policy, positions: Positions) -> Self {
        let denied_columns = names::denied_columns(policy);
        Walker {
            dialect,
            policy,
            entries: Entries::new(policy),
            findings: Vec::new(),
            ctes: Vec::new(),
            cte_bodies: Vec::new(),
            scopes: Vec::new(),
            denied_columns,
            query_depth: 0,
            expr_depth: 0,
            statement_depth: 0,
            too_deep: false,
            context: Vec::new(),
            positions: positions == Positions::Keep,
        }
    }

    /// The position of a node for a finding, computed only when the walk records positions.
    fn at(&self, node: impl FnOnce() -> sqlparser::tokenizer::Span) -> Option<Span> {
        if self.positions { span(node()) } else { None }
    }

    /// Marks the walk as inside a top-level statement, for walks that start at a query: a statement nested
    /// in it (a data-modifying CTE) is then seen as nested.
    pub(crate) fn enter_statement(&mut self) {
        self.statement_depth = 1;
    }

    /// Walks a whole statement.
    pub(crate) fn run(&mut self, statement: &Statement) {
        let _ = statement.visit(self);
    }

    fn deny(&mut self, rule: &'static str, message: String, span: Option<Span>) -> ControlFlow<()> {
        if !self
            .findings
            .iter()
            .any(|f| f.rule == rule && f.message == message)
        {
            let span = span.or_else(|| self.context.iter().rev().find_map(|s| *s));
            self.findings.push(Finding::deny(rule, message, span));
        }
        if self.findings.len() >= MAX_FINDINGS {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn check_depth(&mut self, depth: usize, at: Option<Span>) -> ControlFlow<()> {
        if depth > self.policy.max_depth && !self.too_deep {
            self.too_deep = true;
            self.findings
                .push(crate::lex::too_deep(self.policy.max_depth, at));
        }
        ControlFlow::Continue(())
    }

    /// Judges a called function by name.
    fn check_function(&mut self, name: &ObjectName, at: Option<Span>) -> ControlFlow<()> {
        let Some(parts) = names::parts(name) else {
            return self.dynamic_identifier(name, at);
        };
        match functions::judge(&parts, self.dialect, &self.entries) {
            FunctionVerdict::Allowed => ControlFlow::Continue(()),
            FunctionVerdict::BuiltIn(why) => self.deny(why.rule(), why.message(&name.to_string()), at),
            FunctionVerdict::Policy => self.deny(
                rules::DENIED_FUNCTION,
                format!(
                    "`{name}` is denied by this connection's policy. Rewrite the query without it, or ask an \
                     administrator to allow it."
                ),
                at,
            ),
        }
    }

    fn dynamic_identifier(&mut self, name: &ObjectName, at: Option<Span>) -> ControlFlow<()> {
        self.deny(
            rules::DYNAMIC_IDENTIFIER,
            format!(
                "`{name}` computes an object name at run time, which cannot be checked before it runs. Write \
                 the name literally."
            ),
            at,
        )
    }

    /// Whether a one-part relation name is a CTE visible at this point.
    fn is_cte(&self, name: &Ident) -> bool {
        let mut skip = false;
        for frame in self.ctes.iter().rev() {
            if !skip && frame.names.iter().any(|n| same_name(n, name)) {
                return true;
            }
            skip = frame.hidden.iter().any(|n| same_name(n, name));
        }
        false
    }

    /// Checks a relation used as a table: file paths, dynamic names, CTEs, then the policy's table and
    /// schema rules.
    pub(crate) fn check_relation(&mut self, name: &ObjectName, at: Option<Span>) -> ControlFlow<()> {
        let Some(parts) = names::parts(name) else {
            return self.dynamic_identifier(name, at);
        };
        let idents: Vec<&Ident> = name.0.iter().filter_map(|p| p.as_ident()).collect();
        if idents.iter().any(|i| i.quote_style == Some('\'')) {
            return self.deny(
                rules::STRING_LITERAL_TABLE,
                format!(
                    "A string literal used as a table (`{name}`) makes the engine read a file and is not \
                     allowed. Query a table of the connection instead."
                ),
                at,
            );
        }
        let looks_like_path = |i: &&Ident| {
            i.quote_style.is_some()
                && (i.value.contains('/') || i.value.contains('\\') || i.value.contains("://"))
        };
        // `parts` are the identifiers lowercased; an extension may span two of them (`backup.parquet`).
        let file_like = self.dialect.reads_files_through_table_names() && {
            let joined = parts.join(".");
            FILE_EXTENSIONS.iter().any(|ext| joined.ends_with(ext))
        };
        let stage = idents
            .first()
            .is_some_and(|i| i.quote_style.is_none() && i.value.starts_with('@'));
        if idents.iter().any(looks_like_path) || file_like || stage {
            return self.deny(
                rules::FILE_PATH_TABLE,
                format!(
                    "`{name}` names a file or stage, not a table; reading files is not allowed. Query a table of \
                     the connection instead."
                ),
                at,
            );
        }
        if let Some(last) = parts.last()
            && functions::is_secret_relation(last, self.dialect)
        {
            return self.deny(Why::Secrets.rule(), Why::Secrets.message(last), at);
        }
        if let Some(last) = parts.last()
            && functions::is_server_relation(last, self.dialect)
        {
            return self.deny(
                rules::SERVER_STATE,
                format!(
                    "`{last}` is a system view of the server's configuration, credentials or sessions, not data, \
                     and is not allowed. Query the connection's tables instead."
                ),
                at,
            );
        }
        // A CTE is exempt from the allow lists, but not from the deny list: a CTE may not take the name of
        // a denied table, so that no naming or scoping subtlety can make a denied table pass as a CTE.
        let cte = matches!(idents.as_slice(), [only] if self.is_cte(only));
        self.check_table_policy(&parts, cte, at)
    }

    fn check_table_policy(&mut self, parts: &[String], cte: bool, at: Option<Span>) -> ControlFlow<()> {
        match self.entries.judge_table(self.policy, parts, cte) {
            Some((rule, message)) => self.deny(rule, message, at),
            None => ControlFlow::Continue(()),
        }
    }

    /// The denied columns of a base table.
    fn denied_columns_of(&self, parts: &[String]) -> Vec<String> {
        self.denied_columns
            .iter()
            .filter(|(table, _)| table.is_empty() || entry_matches(table, parts))
            .map(|(_, column)| column.clone())
            .collect()
    }

    fn deny_column(&mut self, column: &str, table: &str, at: Option<Span>) -> ControlFlow<()> {
        self.deny(
            rules::DENIED_COLUMN,
            format!(
                "Column `{column}` of `{table}` is denied by this connection's policy. Remove it from the query \
                 (select list, filters, joins and ordering)."
            ),
            at,
        )
    }

    /// Every relation visible at this point, innermost first.
    fn visible(&self) -> impl Iterator<Item = &ScopeTable> {
        self.scopes.iter().rev().flatten()
    }

    fn resolve(&self, name: &str) -> Option<ScopeTable> {
        self.visible().find(|t| t.answers_to(name)).cloned()
    }

    /// An unqualified identifier: a column of any visible table, or a whole row (`row_to_json(u)`).
    fn check_identifier(&mut self, ident: &Ident, at: Option<Span>) -> ControlFlow<()> {
        if self.denied_columns.is_empty() {
            return ControlFlow::Continue(());
        }
        let name = ident.value.to_lowercase();
        let mut columns: Vec<(String, String)> = Vec::new();
        let mut rows: Vec<ScopeTable> = Vec::new();
        for table in self.visible() {
            if let Some(parts) = &table.parts {
                let denied = self.denied_columns_of(parts);
                if denied.contains(&name) {
                    columns.push((name.clone(), names::display(parts)));
                } else if table.answers_to(&name) && !denied.is_empty() {
                    rows.push(table.clone());
                }
            }
        }
        if self
            .denied_columns
            .iter()
            .any(|(t, c)| t.is_empty() && *c == name)
        {
            columns.push((name.clone(), "any table".to_owned()));
        }
        for (column, table) in columns {
            self.deny_column(&column, &table, at)?;
        }
        for table in rows {
            self.check_whole_table(&table, &[], at)?;
        }
        ControlFlow::Continue(())
    }

    /// A qualified identifier such as `u.salary`, `hr.users.salary` or `u.address.city`.
    fn check_compound(&mut self, idents: &[Ident], at: Option<Span>) -> ControlFlow<()> {
        let parts = names::ident_parts(idents);
        if parts.len() >= 2 && parts.last().is_some_and(|p| p == "nextval") {
            let shown = names::display(&parts);
            self.deny(Why::ChangesState.rule(), Why::ChangesState.message(&shown), at)?;
        }
        if self.denied_columns.is_empty() {
            return ControlFlow::Continue(());
        }
        let Some(first) = parts.first() else {
            return ControlFlow::Continue(());
        };
        match self.resolve(first) {
            Some(ScopeTable {
                parts: Some(table), ..
            }) => {
                if let Some(column) = parts.get(1)
                    && self.denied_columns_of(&table).contains(column)
                {
                    self.deny_column(column, &names::display(&table), at)?;
                }
            }
            Some(ScopeTable { parts: None, .. }) => {}
            None => {
                // Not a visible relation: the first part may be a column holding a struct, or the name may
                // be qualified by schema and table; judge every reading.
                if let Some(ident) = idents.first() {
                    self.check_identifier(ident, at)?;
                }
                for k in 1..parts.len() {
                    let (qualifier, rest) = parts.split_at(k);
                    if let Some(column) = rest.first() {
                        let denied = self
                            .denied_columns
                            .iter()
                            .any(|(t, c)| c == column && !t.is_empty() && entry_matches(t, qualifier));
                        if denied {
                            self.deny_column(column, &names::display(qualifier), at)?;
                        }
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// `*` over the relations of the current select, minus the columns it excludes or replaces.
    fn check_star(&mut self, excluded: &[String], at: Option<Span>) -> ControlFlow<()> {
        if self.denied_columns.is_empty() {
            return ControlFlow::Continue(());
        }
        let tables: Vec<ScopeTable> = self.scopes.last().cloned().unwrap_or_default();
        for table in tables {
            self.check_whole_table(&table, excluded, at)?;
        }
        ControlFlow::Continue(())
    }

    fn check_whole_table(
        &mut self,
        table: &ScopeTable,
        excluded: &[String],
        at: Option<Span>,
    ) -> ControlFlow<()> {
        let Some(parts) = &table.parts else {
            return ControlFlow::Continue(());
        };
        let denied: Vec<String> = self
            .denied_columns_of(parts)
            .into_iter()
            .filter(|c| !excluded.contains(c))
            .collect();
        if denied.is_empty() {
            return ControlFlow::Continue(());
        }
        let shown = names::display(parts);
        self.deny(
            rules::DENIED_COLUMN,
            format!(
                "`*` (or a whole-row reference) over `{shown}` would return the denied column(s) `{}`. List the \
                 columns you need instead, leaving those out.",
                denied.join("`, `")
            ),
            at,
        )
    }

    /// `alias.*` or a whole-row argument such as `to_json(u.*)`.
    fn check_qualified_star(
        &mut self,
        name: &ObjectName,
        excluded: &[String],
        at: Option<Span>,
    ) -> ControlFlow<()> {
        if self.denied_columns.is_empty() {
            return ControlFlow::Continue(());
        }
        let Some(parts) = names::parts(name) else {
            return ControlFlow::Continue(());
        };
        let table = match parts.as_slice() {
            [one] => self.resolve(one).unwrap_or(ScopeTable {
                alias: None,
                parts: Some(parts.clone()),
            }),
            _ => ScopeTable {
                alias: None,
                parts: Some(parts.clone()),
            },
        };
        self.check_whole_table(&table, excluded, at)
    }

    fn check_function_args(
        &mut self,
        name: &ObjectName,
        args: &FunctionArguments,
        at: Option<Span>,
    ) -> ControlFlow<()> {
        if self.denied_columns.is_empty() {
            return ControlFlow::Continue(());
        }
        let last = names::parts(name)
            .and_then(|p| p.last().cloned())
            .unwrap_or_default();
        if last == "columns" {
            // DuckDB's COLUMNS(…) selects columns by pattern, so it may reach any column.
            self.check_star(&[], at)?;
        }
        let FunctionArguments::List(list) = args else {
            return ControlFlow::Continue(());
        };
        for arg in &list.args {
            let expr = match arg {
                FunctionArg::Named { arg, .. }
                | FunctionArg::ExprNamed { arg, .. }
                | FunctionArg::Unnamed(arg) => arg,
            };
            match expr {
                FunctionArgExpr::QualifiedWildcard(q) => self.check_qualified_star(q, &[], at)?,
                FunctionArgExpr::Wildcard if last != "count" => self.check_star(&[], at)?,
                FunctionArgExpr::WildcardWithOptions(opts) => self.check_star(&excluded(opts), at)?,
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }

    /// Relations of `TABLE t` bodies, which the parser keeps as plain strings rather than object names.
    fn check_set_expr_tables(&mut self, body: &SetExpr, at: Option<Span>) -> ControlFlow<()> {
        match body {
            SetExpr::SetOperation { left, right, .. } => {
                self.check_set_expr_tables(left, at)?;
                self.check_set_expr_tables(right, at)
            }
            SetExpr::Table(table) => {
                // The parser reads `TABLE name` by taking the next three tokens whatever they are, so it
                // silently drops what follows a one-part name; what it checked may not be what was written.
                self.deny(
                    rules::UNSTABLE_RENDERING,
                    "`TABLE name` cannot be read reliably here. Write `SELECT * FROM name` instead."
                        .to_owned(),
                    at,
                )?;
                let Some(name) = &table.table_name else {
                    return ControlFlow::Continue(());
                };
                let mut idents: Vec<Ident> = Vec::new();
                if let Some(schema) = &table.schema_name {
                    idents.push(Ident::new(schema));
                }
                idents.push(Ident::new(name));
                let object = ObjectName::from(idents);
                self.check_relation(&object, at)?;
                if let Some(parts) = names::parts(&object) {
                    let table = ScopeTable {
                        alias: None,
                        parts: Some(parts),
                    };
                    self.check_whole_table(&table, &[], at)?;
                }
                ControlFlow::Continue(())
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

/// Column names a wildcard's options leave out (`EXCLUDE`, `EXCEPT`) or replace (`REPLACE`).
fn excluded(opts: &WildcardAdditionalOptions) -> Vec<String> {
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

fn exclude_names(exclude: &sqlparser::ast::ExcludeSelectItem) -> Vec<String> {
    use sqlparser::ast::ExcludeSelectItem;
    let last = |n: &ObjectName| names::parts(n).and_then(|p| p.last().cloned());
    match exclude {
        ExcludeSelectItem::Single(n) => last(n).into_iter().collect(),
        ExcludeSelectItem::Multiple(ns) => ns.iter().filter_map(last).collect(),
    }
}

/// The relations a FROM clause makes visible to column references.
fn from_tables(from: &[TableWithJoins]) -> Vec<ScopeTable> {
    let mut out = Vec::new();
    for twj in from {
        factor_tables(&twj.relation, &mut out);
        for join in &twj.joins {
            factor_tables(&join.relation, &mut out);
        }
    }
    out
}

fn factor_tables(factor: &TableFactor, out: &mut Vec<ScopeTable>) {
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
fn body_tables(body: &SetExpr, out: &mut Vec<ScopeTable>) {
    match body {
        SetExpr::Select(select) => out.extend(from_tables(&select.from)),
        SetExpr::SetOperation { left, right, .. } => {
            body_tables(left, out);
            body_tables(right, out);
        }
        _ => {}
    }
}

fn join_constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
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

impl Visitor for Walker<'_> {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        self.statement_depth += 1;
        if self.statement_depth > 1 {
            if matches!(statement, Statement::Query(_)) {
                return ControlFlow::Continue(());
            }
            let at = self.at(|| statement.span());
            return match statement {
                Statement::Query(_) => ControlFlow::Continue(()),
                Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) | Statement::Merge(_) => {
                    self.deny(
                        rules::DML_IN_CTE,
                        "A data-modifying statement (INSERT, UPDATE, DELETE, MERGE) inside a query is not \
                         allowed; only read-only queries run. Remove it, e.g. keep only the SELECT."
                            .to_owned(),
                        at,
                    )
                }
                _ => self.deny(
                    rules::STATEMENT_NOT_ALLOWED,
                    "A statement nested inside the query is not a read-only query and is not allowed. Remove it."
                        .to_owned(),
                    at,
                ),
            };
        }
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, _statement: &Statement) -> ControlFlow<()> {
        self.statement_depth = self.statement_depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.query_depth += 1;
        let at = self.at(|| query.span());
        self.check_depth(self.query_depth, at)?;

        let hidden = self
            .cte_bodies
            .iter()
            .find(|(body, _)| ptr::eq(*body, query))
            .map(|(_, hidden)| hidden.clone())
            .unwrap_or_default();
        let mut names = Vec::new();
        if let Some(with) = &query.with {
            names = with
                .cte_tables
                .iter()
                .map(|c| c.alias.name.clone())
                .collect::<Vec<_>>();
            for (i, cte) in with.cte_tables.iter().enumerate() {
                let hidden_here = if with.recursive {
                    Vec::new()
                } else {
                    names.get(i..).unwrap_or(&[]).to_vec()
                };
                self.cte_bodies.push((&*cte.query as *const Query, hidden_here));
            }
        }
        self.ctes.push(CteFrame { names, hidden });

        let mut tables = Vec::new();
        body_tables(&query.body, &mut tables);
        self.scopes.push(tables);

        if !query.locks.is_empty() {
            let f = crate::lex::locking_read(at);
            self.deny(f.rule, f.message, f.span)?;
        }
        self.check_set_expr_tables(&query.body, at)?;
        for op in &query.pipe_operators {
            if let PipeOperator::Call { function, .. } = op {
                let at = self.at(|| function.span());
                self.check_function(&function.name, at)?;
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.query_depth = self.query_depth.saturating_sub(1);
        self.ctes.pop();
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        let at = self.at(|| select.span());
        self.context.push(at);
        self.scopes.push(from_tables(&select.from));
        if let Some(into) = &select.into {
            self.deny(
                rules::SELECT_INTO,
                "`SELECT … INTO` creates a table or sets variables and is not allowed. Remove the INTO \
                 clause; results are returned to you directly."
                    .to_owned(),
                self.at(|| into.span()).or(at),
            )?;
        }
        if !select.optimizer_hints.is_empty() {
            self.deny(
                rules::OPTIMIZER_HINT,
                "Optimizer hints (`/*+ … */`) can change session limits such as the execution time and are not \
                 allowed. Remove the hint comment."
                    .to_owned(),
                at,
            )?;
        }
        let select_excluded: Vec<String> = select.exclude.as_ref().map(exclude_names).unwrap_or_default();
        if select.flavor == SelectFlavor::FromFirstNoSelect || select.projection.is_empty() {
            self.check_star(&select_excluded, at)?;
        }
        for item in &select.projection {
            match item {
                SelectItem::Wildcard(opts) => {
                    let mut ex = excluded(opts);
                    ex.extend(select_excluded.iter().cloned());
                    let at = self.at(|| opts.wildcard_token.0.span).or(at);
                    self.check_star(&ex, at)?;
                }
                SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), opts) => {
                    let mut ex = excluded(opts);
                    ex.extend(select_excluded.iter().cloned());
                    let at = self.at(|| name.span()).or(at);
                    self.check_qualified_star(name, &ex, at)?;
                }
                _ => {}
            }
        }
        if !self.denied_columns.is_empty() {
            for twj in &select.from {
                for join in &twj.joins {
                    match join_constraint(&join.join_operator) {
                        Some(JoinConstraint::Natural) => {
                            // A natural join compares every column the two sides share, denied ones included.
                            let at = self.at(|| join.relation.span()).or(at);
                            self.check_star(&[], at)?;
                        }
                        Some(JoinConstraint::Using(cols)) => {
                            for col in cols {
                                if let Some(ident) = col.0.last().and_then(|p| p.as_ident()) {
                                    let at = self.at(|| col.span()).or(at);
                                    self.check_identifier(ident, at)?;
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_select(&mut self, _select: &Select) -> ControlFlow<()> {
        self.scopes.pop();
        self.context.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let at = self.at(|| factor.span());
        match factor {
            TableFactor::Table {
                name, args: Some(_), ..
            }
            | TableFactor::Function { name, .. } => {
                let at = self.at(|| name.span()).or(at);
                self.check_function(name, at)
            }
            TableFactor::Table { name, args: None, .. } => {
                let at = self.at(|| name.span()).or(at);
                self.check_relation(name, at)
            }
            // `TABLE(<function call>)` is a table function; Snowflake's `TABLE('name')` or `TABLE($var)`
            // names a table at run time, out of the policy's sight.
            TableFactor::TableFunction { expr, .. } if !matches!(expr, Expr::Function(_)) => self.deny(
                rules::DYNAMIC_IDENTIFIER,
                format!(
                    "`TABLE({expr})` names a table at run time, which cannot be checked before it runs. Write \
                     the table name literally."
                ),
                at,
            ),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        // Operator chains are bounded by the token pre-scan; counting them here would refuse long but flat
        // filters such as `a = 1 AND b = 2 AND …`.
        if !matches!(expr, Expr::BinaryOp { .. }) {
            self.expr_depth += 1;
            if self.expr_depth > self.policy.max_depth {
                let at = self.at(|| expr.span());
                self.check_depth(self.expr_depth, at)?;
            }
        }
        match expr {
            Expr::Function(f) => {
                let at = self.at(|| f.name.span()).or_else(|| self.at(|| expr.span()));
                if !functions::reads_a_harmless_setting(&f.name, &f.args, self.dialect, &self.entries) {
                    self.check_function(&f.name, at)?;
                }
                self.check_function_args(&f.name, &f.args, at)
            }
            Expr::Identifier(ident) => self.check_identifier(ident, self.at(|| ident.span)),
            Expr::CompoundIdentifier(idents) => self.check_compound(idents, self.at(|| expr.span())),
            Expr::QualifiedWildcard(name, _) => {
                let at = self.at(|| expr.span());
                self.check_qualified_star(name, &[], at)
            }
            _ => ControlFlow::Continue(()),
        }
    }

    fn post_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if !matches!(expr, Expr::BinaryOp { .. }) {
            self.expr_depth = self.expr_depth.saturating_sub(1);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Decision;
    use pretty_assertions::assert_eq;

    fn policy() -> Policy {
        Policy {
            denied_tables: vec!["secrets".into(), "hr.salaries".into()],
            denied_schemas: vec!["vault".into()],
            denied_columns: vec!["users.ssn".into(), "hr.employees.salary".into()],
            deny_functions: vec!["md5".into()],
            allow_functions: vec!["read_parquet".into()],
            ..Policy::default()
        }
    }

    fn allow_list() -> Policy {
        Policy {
            allowed_tables: vec!["sales.orders".into(), "customers".into()],
            allowed_schemas: vec!["sales".into(), "public".into()],
            ..Policy::default()
        }
    }

    /// `None` expects the statement to be allowed, `Some(rule)` refused by that rule first.
    fn check(policy: &Policy, dialect: Dialect, sql: &str, expected: Option<&str>) {
        let verdict = crate::govern::govern(sql, dialect, policy, 50);
        let got = match verdict.decision {
            Decision::Allow { .. } => None,
            Decision::Deny => verdict.denial().map(|f| f.rule),
        };
        assert_eq!(got, expected, "{sql}: {:?}", verdict.findings);
    }

    #[test]
    fn tables_and_schemas() {
        use Dialect::{DuckDb, MySql, PostgreSql};
        let p = policy();
        let cases: &[(Dialect, &str, Option<&str>)] = &[
            (PostgreSql, "SELECT * FROM secrets", Some(rules::DENIED_TABLE)),
            (
                PostgreSql,
                "SELECT * FROM public.secrets",
                Some(rules::DENIED_TABLE),
            ),
            (PostgreSql, "SELECT * FROM \"SECRETS\"", Some(rules::DENIED_TABLE)),
            (PostgreSql, "SELECT * FROM salaries", Some(rules::DENIED_TABLE)),
            (
                PostgreSql,
                "SELECT * FROM hr.salaries AS s",
                Some(rules::DENIED_TABLE),
            ),
            (PostgreSql, "SELECT * FROM finance.salaries", None),
            (PostgreSql, "SELECT * FROM vault.keys", Some(rules::DENIED_SCHEMA)),
            (
                PostgreSql,
                "SELECT * FROM db.vault.keys",
                Some(rules::DENIED_SCHEMA),
            ),
            (
                PostgreSql,
                "WITH s AS (SELECT * FROM secrets) SELECT * FROM s",
                Some(rules::DENIED_TABLE),
            ),
            (
                PostgreSql,
                "SELECT * FROM (SELECT * FROM secrets) AS x",
                Some(rules::DENIED_TABLE),
            ),
            (
                PostgreSql,
                "SELECT * FROM t WHERE EXISTS (SELECT 1 FROM secrets)",
                Some(rules::DENIED_TABLE),
            ),
            (
                PostgreSql,
                "SELECT * FROM t, LATERAL (SELECT * FROM secrets) AS s",
                Some(rules::DENIED_TABLE),
            ),
            (
                PostgreSql,
                "SELECT (SELECT max(x) FROM secrets)",
                Some(rules::DENIED_TABLE),
            ),
            (
                PostgreSql,
                "SELECT 1 UNION TABLE secrets",
                Some(rules::UNSTABLE_RENDERING),
            ),
            (
                PostgreSql,
                "SELECT a FROM t UNION SELECT a FROM secrets",
                Some(rules::DENIED_TABLE),
            ),
            (
                PostgreSql,
                "WITH secrets AS (SELECT 1) SELECT * FROM secrets",
                Some(rules::DENIED_TABLE),
            ),
            (DuckDb, "DESCRIBE secrets", Some(rules::DENIED_TABLE)),
            (DuckDb, "SHOW secrets", Some(rules::DENIED_TABLE)),
            (DuckDb, "SUMMARIZE vault.keys", Some(rules::DENIED_SCHEMA)),
            (MySql, "SHOW COLUMNS FROM secrets", Some(rules::DENIED_TABLE)),
            (MySql, "SHOW CREATE TABLE secrets", Some(rules::DENIED_TABLE)),
            (
                PostgreSql,
                "SELECT md5(name) FROM t",
                Some(rules::DENIED_FUNCTION),
            ),
            (DuckDb, "SELECT * FROM read_parquet('x.parquet')", None),
            (
                DuckDb,
                "SELECT * FROM read_csv('x.csv')",
                Some(rules::FILE_ACCESS_FUNCTION),
            ),
        ];
        for (dialect, sql, expected) in cases {
            check(&p, *dialect, sql, *expected);
        }
    }

    #[test]
    fn allow_lists_and_cte_scoping() {
        use Dialect::PostgreSql;
        let p = allow_list();
        let cases: &[(&str, Option<&str>)] = &[
            ("SELECT * FROM sales.orders", None),
            ("SELECT * FROM orders", None),
            (
                "SELECT * FROM customers c JOIN sales.orders o ON o.customer_id = c.id",
                None,
            ),
            ("SELECT * FROM products", Some(rules::DENIED_TABLE)),
            ("SELECT * FROM hr.orders", Some(rules::DENIED_TABLE)),
            ("SELECT * FROM raw.customers", Some(rules::DENIED_SCHEMA)),
            (
                "WITH products AS (SELECT * FROM customers) SELECT * FROM products",
                None,
            ),
            (
                "WITH x AS (SELECT * FROM x) SELECT * FROM x",
                Some(rules::DENIED_TABLE),
            ),
            (
                "WITH RECURSIVE x AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM x) SELECT * FROM x",
                None,
            ),
            (
                "WITH a AS (SELECT * FROM b), b AS (SELECT * FROM customers) SELECT * FROM a",
                Some(rules::DENIED_TABLE),
            ),
            (
                "WITH a AS (SELECT * FROM customers), b AS (SELECT * FROM a) SELECT * FROM b",
                None,
            ),
            (
                "SELECT * FROM customers, (WITH products AS (SELECT 1) SELECT * FROM products) AS p",
                None,
            ),
            (
                "SELECT * FROM products, (WITH products AS (SELECT 1) SELECT * FROM products) AS p",
                Some(rules::DENIED_TABLE),
            ),
            (
                "WITH \"Products\" AS (SELECT 1) SELECT * FROM products",
                Some(rules::DENIED_TABLE),
            ),
            (
                "WITH p AS (SELECT 1) SELECT * FROM customers WHERE id IN (SELECT * FROM p)",
                None,
            ),
        ];
        for (sql, expected) in cases {
            check(&p, PostgreSql, sql, *expected);
        }
    }

    #[test]
    fn columns() {
        use Dialect::{DuckDb, PostgreSql};
        let p = policy();
        let cases: &[(Dialect, &str, Option<&str>)] = &[
            (PostgreSql, "SELECT ssn FROM users", Some(rules::DENIED_COLUMN)),
            (
                PostgreSql,
                "SELECT u.ssn FROM users u",
                Some(rules::DENIED_COLUMN),
            ),
            (
                PostgreSql,
                "SELECT name FROM users WHERE ssn = '1'",
                Some(rules::DENIED_COLUMN),
            ),
            (
                PostgreSql,
                "SELECT name FROM users ORDER BY ssn",
                Some(rules::DENIED_COLUMN),
            ),
            (PostgreSql, "SELECT ssn FROM customers", None),
            (PostgreSql, "SELECT * FROM users", Some(rules::DENIED_COLUMN)),
            (PostgreSql, "SELECT u.* FROM users u", Some(rules::DENIED_COLUMN)),
            (
                PostgreSql,
                "SELECT o.* FROM users u JOIN orders o ON u.id = o.user_id",
                None,
            ),
            (
                PostgreSql,
                "SELECT * FROM (SELECT id, name FROM users) AS x",
                None,
            ),
            (
                PostgreSql,
                "SELECT row_to_json(u) FROM users u",
                Some(rules::DENIED_COLUMN),
            ),
            (PostgreSql, "SELECT count(*) FROM users", None),
            (
                PostgreSql,
                "SELECT salary FROM hr.employees",
                Some(rules::DENIED_COLUMN),
            ),
            (
                PostgreSql,
                "SELECT salary FROM employees",
                Some(rules::DENIED_COLUMN),
            ),
            (PostgreSql, "SELECT salary FROM sales.employees", None),
            (
                PostgreSql,
                "SELECT e.salary FROM hr.employees e",
                Some(rules::DENIED_COLUMN),
            ),
            (
                PostgreSql,
                "SELECT hr.employees.salary FROM hr.employees",
                Some(rules::DENIED_COLUMN),
            ),
            (
                PostgreSql,
                "SELECT id FROM users NATURAL JOIN accounts",
                Some(rules::DENIED_COLUMN),
            ),
            (
                PostgreSql,
                "SELECT id FROM users JOIN accounts USING (ssn)",
                Some(rules::DENIED_COLUMN),
            ),
            (
                PostgreSql,
                "SELECT (SELECT max(ssn) FROM other) FROM users",
                Some(rules::DENIED_COLUMN),
            ),
            (
                PostgreSql,
                "SELECT 1 UNION TABLE users",
                Some(rules::UNSTABLE_RENDERING),
            ),
            (DuckDb, "SELECT * EXCLUDE (ssn) FROM users", None),
            (DuckDb, "SELECT * REPLACE (NULL AS ssn) FROM users", None),
            (
                DuckDb,
                "SELECT COLUMNS('s.*') FROM users",
                Some(rules::DENIED_COLUMN),
            ),
            (DuckDb, "FROM users", Some(rules::DENIED_COLUMN)),
            (DuckDb, "SUMMARIZE users", Some(rules::DENIED_COLUMN)),
            (
                DuckDb,
                "PIVOT users ON dept USING max(ssn) GROUP BY city",
                Some(rules::DENIED_COLUMN),
            ),
            (
                DuckDb,
                "PIVOT users ON dept USING count(*)",
                Some(rules::DENIED_COLUMN),
            ),
            (DuckDb, "PIVOT users ON dept USING count(*) GROUP BY city", None),
        ];
        for (dialect, sql, expected) in cases {
            check(&p, *dialect, sql, *expected);
        }
    }

    #[test]
    fn positions_decide_nothing() {
        // Governance decides on a tree parsed without positions and walked without them, and only a refusal
        // is governed again with them: both must find the same rules and messages, whatever the statement.
        use Dialect::{DuckDb, PostgreSql};
        let p = Policy {
            max_depth: 12,
            ..policy()
        };
        let cases: &[(Dialect, &str)] = &[
            (PostgreSql, "SELECT a FROM t"),
            (
                PostgreSql,
                "SELECT pg_sleep(1), * FROM secrets JOIN users u ON TRUE WHERE ssn = '1'",
            ),
            (
                PostgreSql,
                "WITH x AS (DELETE FROM t RETURNING *) SELECT md5(a), u.* FROM x, users u",
            ),
            (
                PostgreSql,
                "SELECT * FROM vault.keys, hr.employees e WHERE e.salary > (SELECT 1 FROM secrets)",
            ),
            (PostgreSql, "SELECT a FROM t FOR UPDATE"),
            (PostgreSql, "SELECT ((((((((((((((((1))))))))))))))))"),
            (
                DuckDb,
                "SELECT * FROM read_csv('/etc/passwd'), 'x.csv', backup.parquet",
            ),
            (
                DuckDb,
                "FROM users SELECT COLUMNS('s.*') UNION ALL SELECT ssn FROM users",
            ),
        ];
        for (dialect, sql) in cases {
            let tokens = match crate::lex::tokenize(sql, *dialect) {
                Ok(tokens) => tokens,
                Err(f) => panic!("{sql}: {f:?}"),
            };
            let parse = |tokens| match crate::lex::parse(tokens, *dialect, 64).map(|mut s| s.pop()) {
                Ok(Some(statement)) => statement,
                other => panic!("{sql}: {other:?}"),
            };
            let kept = parse(tokens.clone());
            let dropped = parse(crate::lex::drop_positions(tokens));
            assert_eq!(kept, dropped, "{sql}: the trees differ by more than positions");
            let mut fast = Walker::new(*dialect, &p, Positions::Drop);
            fast.run(&dropped);
            let mut precise = Walker::new(*dialect, &p, Positions::Keep);
            precise.run(&kept);
            let rules = |w: &Walker<'_>| {
                w.findings
                    .iter()
                    .map(|f| (f.rule, f.message.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(rules(&precise).is_empty(), *sql == "SELECT a FROM t", "{sql}");
            assert_eq!(rules(&fast), rules(&precise), "{sql}");
            assert!(fast.findings.iter().all(|f| f.span.is_none()), "{sql}");
            assert!(
                precise.findings.iter().any(|f| f.span.is_some()) || rules(&precise).is_empty(),
                "{sql}"
            );
        }
    }

    #[test]
    fn refusals_keep_their_positions() {
        let verdict = crate::govern::govern(
            "SELECT a\nFROM t\nWHERE pg_sleep(1) IS NULL",
            Dialect::PostgreSql,
            &Policy::default(),
            50,
        );
        let at = verdict.denial().and_then(|f| f.span);
        assert_eq!(at, Some(Span { line: 3, column: 7 }));
        let verdict = crate::govern::govern("SELECT a FROM t, secrets", Dialect::PostgreSql, &policy(), 50);
        let at = verdict.denial().and_then(|f| f.span);
        assert_eq!(at, Some(Span { line: 1, column: 18 }));
    }

    #[test]
    fn depth_follows_the_policy() {
        let p = Policy {
            max_depth: 16,
            ..Policy::default()
        };
        let mut sql = "SELECT 1".to_owned();
        for i in 0..3 {
            sql = format!("SELECT * FROM ({sql}) AS s{i}");
        }
        check(&p, Dialect::PostgreSql, &sql, None);
        for i in 3..16 {
            sql = format!("SELECT * FROM ({sql}) AS s{i}");
        }
        check(&p, Dialect::PostgreSql, &sql, Some(rules::TOO_DEEP));
    }
}
