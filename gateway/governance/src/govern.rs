//! The governance pipeline: read the text, check the tree, apply the row limit, render, and verify that
//! the rendering parses back to the very tree that was checked.

use sqlparser::ast::{Query, Spanned, Statement, Visit};
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::Dialect;
use crate::duckdb::{self, Pivot, Special, Summarize};
use crate::lex::{self, Positions};
use crate::limit::{self, WRAP_ALIAS};
use crate::policy::Policy;
use crate::rules;
use crate::statement::{classify, introspected};
use crate::verdict::{Decision, Finding, Severity, StatementKind, Verdict};
use crate::walk::{Walker, span};

/// Extra nesting allowed when re-parsing a rendering: wrapping for the row limit adds two levels.
const REPARSE_SLACK: usize = 4;

/// What the text holds once read.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Parsed {
    Statements(Vec<Statement>),
    Summarize(Box<Summarize>),
    /// A PIVOT statement, and the limit of the wrapper around it when the text is governance's own output.
    Pivot(Box<Pivot>, Option<u64>),
}

/// The read text, plus whether DuckDB `ASOF` joins were marked and must be restored after rendering.
pub(crate) struct Front {
    pub(crate) parsed: Parsed,
    pub(crate) asof: bool,
}

/// How strictly the token pre-scan applies: governance refuses on any of its findings, redaction only on
/// those that make the text unsafe to parse.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prescan {
    All,
    SafetyOnly,
}

fn trim_end(tokens: &[TokenWithSpan]) -> &[TokenWithSpan] {
    let end = tokens
        .iter()
        .rposition(|t| !matches!(t.token, Token::Whitespace(_) | Token::SemiColon))
        .map_or(0, |i| i + 1);
    tokens.get(..end).unwrap_or(tokens)
}

/// Reads the text in the dialect: tokens, pre-scan, then the parser (or DuckDB's special statements).
pub(crate) fn front(
    sql: &str,
    dialect: Dialect,
    policy: &Policy,
    prescan: Prescan,
    positions: Positions,
) -> Result<Front, Vec<Finding>> {
    let max_depth = policy.max_depth;
    let mut tokens = lex::tokenize(sql, dialect).map_err(|f| vec![f])?;
    let mut pre = lex::prescan(sql, &tokens, dialect, max_depth);
    if prescan == Prescan::SafetyOnly {
        pre.retain(|f| matches!(f.rule, rules::TOO_COMPLEX | rules::TOO_DEEP | rules::TOO_LARGE));
    }
    if !pre.is_empty() {
        return Err(pre);
    }
    let first = tokens.iter().find(|t| !matches!(t.token, Token::Whitespace(_)));
    if prescan == Prescan::All
        && let Some(TokenWithSpan {
            token: Token::Word(w),
            span,
        }) = first
        && w.quote_style.is_none()
        && let Some(refusal) = crate::statement::refuse_leading_word(&w.value, crate::walk::span(*span))
    {
        return Err(vec![refusal]);
    }
    let asof = dialect == Dialect::DuckDb && duckdb::mark_asof(&mut tokens);
    if dialect == Dialect::DuckDb
        && let Some(found) = duckdb::special(&tokens)
    {
        let rest = trim_end(tokens.get(found.rest).unwrap_or(&[]));
        let parsed = match found.kind {
            Special::Summarize => Parsed::Summarize(Box::new(
                duckdb::parse_summarize(rest, dialect, max_depth).map_err(|f| vec![f])?,
            )),
            Special::Pivot => Parsed::Pivot(
                Box::new(duckdb::parse_pivot(rest, dialect, max_depth).map_err(|f| vec![f])?),
                found.wrapped_limit,
            ),
            Special::Unpivot => {
                return Err(vec![Finding::deny(
                    rules::STATEMENT_NOT_ALLOWED,
                    "The UNPIVOT statement is not supported. Write it as a query: \
                     `SELECT * FROM t UNPIVOT (value FOR name IN (col_a, col_b))`."
                        .to_owned(),
                    None,
                )]);
            }
        };
        return Ok(Front { parsed, asof });
    }
    let tokens = match positions {
        Positions::Keep => tokens,
        Positions::Drop => lex::drop_positions(tokens),
    };
    let statements = lex::parse(tokens, dialect, max_depth).map_err(|f| {
        // A refusal that names a dangerous function helps more than a syntax error near it; the text is
        // tokenized again only on this error path.
        let mut findings = match (prescan, lex::tokenize(sql, dialect)) {
            (Prescan::All, Ok(tokens)) => crate::functions::calls_in_tokens(&tokens, dialect, policy),
            _ => Vec::new(),
        };
        findings.push(f);
        findings
    })?;
    Ok(Front {
        parsed: Parsed::Statements(statements),
        asof,
    })
}

fn deny(findings: Vec<Finding>) -> Verdict {
    Verdict {
        decision: Decision::Deny,
        findings,
    }
}

/// Governs one SQL text; see [`crate::govern`].
///
/// Source positions (of the parsed tree and so of findings) cost time at every step and only a refusal shows
/// them, so a first pass goes without: an allowed statement is done. Anything else is governed again with
/// positions, and that verdict is returned. Positions decide nothing (see [`Positions`] and
/// [`Walker::new`]), so the verdict is the same as if every statement were governed with them.
pub(crate) fn govern(sql: &str, dialect: Dialect, policy: &Policy, limit: u64) -> Verdict {
    govern_redacting(sql, dialect, policy, limit, false).0
}

/// [`govern`], and with `redaction` the audit redaction of the allowed SQL, made from the checked tree
/// (see [`crate::govern_and_redact`]). `None` for refusals and for DuckDB's special statements, whose
/// redaction the caller makes from the text.
pub(crate) fn govern_redacting(
    sql: &str,
    dialect: Dialect,
    policy: &Policy,
    limit: u64,
    redaction: bool,
) -> (Verdict, Option<String>) {
    let (verdict, redacted) = pass(sql, dialect, policy, limit, Positions::Drop, redaction);
    if verdict.is_allowed() {
        return (verdict, redacted);
    }
    (govern_pass(sql, dialect, policy, limit, Positions::Keep), None)
}

fn govern_pass(sql: &str, dialect: Dialect, policy: &Policy, limit: u64, positions: Positions) -> Verdict {
    pass(sql, dialect, policy, limit, positions, false).0
}

fn pass(
    sql: &str,
    dialect: Dialect,
    policy: &Policy,
    limit: u64,
    positions: Positions,
    redaction: bool,
) -> (Verdict, Option<String>) {
    let front = match front(sql, dialect, policy, Prescan::All, positions) {
        Ok(front) => front,
        Err(findings) => return (deny(findings), None),
    };
    let result = match front.parsed {
        Parsed::Statements(mut statements) => match (statements.pop(), statements.is_empty()) {
            (None, _) => Err(vec![Finding::deny(
                rules::EMPTY_STATEMENT,
                "The SQL holds no statement. Send one read-only query.".to_owned(),
                None,
            )]),
            (Some(_), false) => Err(vec![duckdb::multiple()]),
            (Some(statement), true) => {
                govern_statement(sql, statement, dialect, policy, limit, front.asof, positions).map(
                    |(verdict, checked)| {
                        // The allowed SQL parses to `checked` (verified, or it is the text parsed), so
                        // redacting the tree gives what redacting that SQL would, without parsing it again.
                        let redacted = if redaction {
                            crate::redact::redacted_statement(checked, dialect, front.asof)
                        } else {
                            None
                        };
                        (verdict, redacted)
                    },
                )
            }
        },
        Parsed::Summarize(s) => {
            govern_summarize(*s, dialect, policy, front.asof, positions).map(|verdict| (verdict, None))
        }
        Parsed::Pivot(p, wrapped) => govern_pivot(*p, dialect, policy, limit, wrapped, front.asof, positions)
            .map(|verdict| (verdict, None)),
    };
    match result {
        Ok(governed) => governed,
        Err(findings) => (deny(findings), None),
    }
}

fn unstable() -> Vec<Finding> {
    vec![Finding::deny(
        rules::UNSTABLE_RENDERING,
        "The statement could not be rendered back to SQL that means exactly what was checked (often a string \
         literal with backslash escapes). Simplify the literals, e.g. avoid backslashes in strings."
            .to_owned(),
        None,
    )]
}

fn restore_asof(rendered: String, dialect: Dialect, asof: bool) -> Result<String, Vec<Finding>> {
    if asof {
        duckdb::unmark_asof(&rendered, dialect).ok_or_else(unstable)
    } else {
        Ok(rendered)
    }
}

fn limit_info(limited: limit::Limited) -> Vec<Finding> {
    if !limited.rewritten {
        return Vec::new();
    }
    vec![Finding {
        rule: rules::ROW_LIMIT,
        severity: Severity::Info,
        message: format!(
            "At most {} rows are returned. Aggregate, filter or page (ORDER BY … LIMIT/OFFSET) to see the rest.",
            limited.applied
        ),
        span: None,
    }]
}

fn walk_query(query: &Query, walker: &mut Walker<'_>) {
    walker.enter_statement();
    let _ = query.visit(walker);
}

/// A parsed statement governance allows, with its row limit applied, before it is rendered.
pub(crate) struct Decided {
    pub(crate) statement: Statement,
    pub(crate) kind: StatementKind,
    /// What the row limit did; `None` for statements that take none (introspection, EXPLAIN).
    pub(crate) limited: Option<limit::Limited>,
}

/// The decision on one parsed statement: its kind, the walk of the whole tree against the deny lists and
/// the policy, and the row limit. Rendering and the re-parse check follow in [`govern_statement`].
pub(crate) fn decide(
    statement: Statement,
    dialect: Dialect,
    policy: &Policy,
    limit: u64,
    positions: Positions,
) -> Result<Decided, Vec<Finding>> {
    let kind = classify(&statement).map_err(|f| vec![f])?;
    let mut walker = Walker::new(dialect, policy, positions);
    walker.run(&statement);
    if let Some(name) = introspected(&statement, dialect) {
        let _ = walker.check_relation(&name, span(name.span()));
    }
    if !walker.findings.is_empty() {
        return Err(walker.findings);
    }
    let (statement, limited) = if kind == StatementKind::Query {
        let (statement, limited) = limit::apply(statement, dialect, limit).map_err(|f| vec![f])?;
        (statement, Some(limited))
    } else {
        (statement, None)
    };
    Ok(Decided {
        statement,
        kind,
        limited,
    })
}

/// `sql` is the text `statement` was parsed from. The verdict, and the checked tree the allowed SQL
/// parses to (for the audit's redaction, see [`crate::govern_and_redact`]).
fn govern_statement(
    sql: &str,
    statement: Statement,
    dialect: Dialect,
    policy: &Policy,
    limit: u64,
    asof: bool,
    positions: Positions,
) -> Result<(Verdict, Statement), Vec<Finding>> {
    let Decided {
        statement,
        kind,
        limited,
    } = decide(statement, dialect, policy, limit, positions)?;
    // The decision changes the tree only when it rewrites the limit (it walks without modifying), and
    // DuckDB's `ASOF` marking changes the tokens that were parsed: otherwise the tree is the parse of `sql`.
    let parsed_from = (!asof && !limited.is_some_and(|l| l.rewritten)).then_some(sql);
    let rendered = render_checked(&statement, dialect, policy.max_depth, parsed_from)?;
    let sql = restore_asof(rendered, dialect, asof)?;
    let verdict = Verdict {
        decision: Decision::Allow {
            sql,
            rewritten: limited.is_some_and(|l| l.rewritten),
            statement: kind,
            limit_applied: limited.map(|l| l.applied),
        },
        findings: limited.map(limit_info).unwrap_or_default(),
    };
    Ok((verdict, statement))
}

/// Renders a checked statement and parses the rendering again: it must yield the very same tree, so that
/// what runs is what was checked.
pub(crate) fn render_verified(
    statement: &Statement,
    dialect: Dialect,
    max_depth: usize,
) -> Result<String, Vec<Finding>> {
    render_checked(statement, dialect, max_depth, None)
}

/// [`render_verified`], given the text `statement` is the unchanged parse of, if any. A rendering identical
/// to that text parses to this very tree (it is the text that was parsed, read the same way with a lower
/// depth limit), so the check's answer is known without parsing it again; any other rendering is parsed
/// again and compared. Agents often send such text: governance's own output from `validate_sql`, or a
/// one-line query written the way it renders (`SELECT * FROM t LIMIT 10`).
fn render_checked(
    statement: &Statement,
    dialect: Dialect,
    max_depth: usize,
    parsed_from: Option<&str>,
) -> Result<String, Vec<Finding>> {
    let rendered = statement.to_string();
    if parsed_from == Some(rendered.as_str()) {
        return Ok(rendered);
    }
    let reparsed = lex::reparse_sql(&rendered, dialect, max_depth + REPARSE_SLACK);
    if matches!(reparsed.as_deref(), Ok([again]) if again == statement) {
        Ok(rendered)
    } else {
        Err(unstable())
    }
}

/// Re-reads a rendering of a special DuckDB statement and checks that it yields the same parts.
fn reparse_special(
    rendered: &str,
    dialect: Dialect,
    policy: &Policy,
    expected: &Parsed,
) -> Result<(), Vec<Finding>> {
    let slack = Policy {
        max_depth: policy.max_depth + REPARSE_SLACK,
        ..policy.clone()
    };
    match front(rendered, dialect, &slack, Prescan::All, Positions::Drop) {
        Ok(again) => match (&again.parsed, expected) {
            (Parsed::Pivot(a, _), Parsed::Pivot(b, _)) if a == b => Ok(()),
            (a, b) if a == b => Ok(()),
            _ => Err(unstable()),
        },
        Err(_) => Err(unstable()),
    }
}

fn govern_summarize(
    s: Summarize,
    dialect: Dialect,
    policy: &Policy,
    asof: bool,
    positions: Positions,
) -> Result<Verdict, Vec<Finding>> {
    let mut walker = Walker::new(dialect, policy, positions);
    match &s {
        Summarize::Table(q) | Summarize::Query(q) => walk_query(q, &mut walker),
    }
    if !walker.findings.is_empty() {
        return Err(walker.findings);
    }
    let rendered = duckdb::render_summarize(&s).ok_or_else(unstable)?;
    reparse_special(&rendered, dialect, policy, &Parsed::Summarize(Box::new(s)))?;
    Ok(Verdict {
        decision: Decision::Allow {
            sql: restore_asof(rendered, dialect, asof)?,
            rewritten: false,
            statement: StatementKind::Summarize,
            limit_applied: None,
        },
        findings: Vec::new(),
    })
}

fn govern_pivot(
    p: Pivot,
    dialect: Dialect,
    policy: &Policy,
    limit: u64,
    wrapped: Option<u64>,
    asof: bool,
    positions: Positions,
) -> Result<Verdict, Vec<Finding>> {
    let mut walker = Walker::new(dialect, policy, positions);
    walk_query(&p.on, &mut walker);
    walk_query(&p.using, &mut walker);
    if !walker.findings.is_empty() {
        return Err(walker.findings);
    }
    let rendered = duckdb::render_pivot(&p).ok_or_else(unstable)?;
    reparse_special(&rendered, dialect, policy, &Parsed::Pivot(Box::new(p), None))?;
    // A PIVOT statement returns one row per group; DuckDB accepts it as a subquery, so it is always wrapped.
    // Text that already is such a wrapper keeps its limit when that is within the maximum.
    let cap = limit.min(i64::MAX as u64);
    let max = wrapped.map_or(cap, |w| w.min(cap));
    let rewritten = wrapped != Some(max);
    let pivot = restore_asof(rendered, dialect, asof)?;
    let limited = limit::Limited {
        rewritten,
        applied: max,
    };
    Ok(Verdict {
        decision: Decision::Allow {
            sql: format!("SELECT * FROM ({pivot}) AS {WRAP_ALIAS} LIMIT {max}"),
            rewritten,
            statement: StatementKind::Pivot,
            limit_applied: Some(max),
        },
        findings: limit_info(limited),
    })
}

#[cfg(test)]
mod tests;
