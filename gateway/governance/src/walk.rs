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

mod scope;

use scope::{body_tables, exclude_names, excluded, from_tables, join_constraint};

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
mod tests;
