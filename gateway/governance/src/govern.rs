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
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// What a test expects: the SQL that runs, or the rule that refuses.
    #[derive(Debug, PartialEq)]
    enum Want {
        Allow(&'static str),
        Deny(&'static str),
    }
    use Want::{Allow, Deny};

    fn check_with(sql: &str, dialect: Dialect, policy: &Policy, expected: Want) {
        let verdict = govern(sql, dialect, policy, 100);
        let got = match (&verdict.decision, verdict.denial()) {
            (Decision::Allow { sql, .. }, _) => format!("allow {sql}"),
            (Decision::Deny, Some(f)) => format!("deny {}", f.rule),
            (Decision::Deny, None) => "deny without finding".to_owned(),
        };
        let want = match expected {
            Allow(s) => format!("allow {s}"),
            Deny(r) => format!("deny {r}"),
        };
        assert_eq!(got, want, "{sql} ({dialect:?}): {:?}", verdict.findings);
    }

    fn check(sql: &str, dialect: Dialect, expected: Want) {
        check_with(sql, dialect, &Policy::default(), expected);
    }

    /// The SQL of every case in the repository's governance corpora (`tests/fixtures/sql/<dialect>/*.txt`)
    /// and the benchmark corpus, with its dialect.
    fn every_corpus_case() -> Vec<(Dialect, String)> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/sql");
        let mut cases = Vec::new();
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let dir = entry.file_name().to_string_lossy().into_owned();
            let dialect = match dir.as_str() {
                "generic" => Dialect::Unknown,
                kind => match Dialect::from_kind(kind) {
                    Some(d) => d,
                    None => continue,
                },
            };
            for file in ["allowed.txt", "refused.txt", "rewritten.txt"] {
                let text = std::fs::read_to_string(entry.path().join(file)).unwrap_or_default();
                for case in text.split("\n====").skip(1) {
                    let body = case.split_once('\n').map_or("", |(_, body)| body);
                    let sql = body.split_once("\n----\n").map_or(body, |(sql, _)| sql);
                    cases.push((dialect, sql.trim().to_owned()));
                }
            }
        }
        let bench = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/corpus");
        for entry in std::fs::read_dir(bench).into_iter().flatten().flatten() {
            let sql = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.contains(".postgres.") {
                cases.push((Dialect::DuckDb, sql.clone()));
            }
            if !name.contains(".duckdb.") {
                cases.push((Dialect::PostgreSql, sql));
            }
        }
        cases
    }

    #[test]
    fn the_pass_without_positions_decides_as_the_pass_with_them() {
        let cases = every_corpus_case();
        assert!(cases.len() > 400, "only {} corpus cases found", cases.len());
        let strict = Policy {
            denied_tables: vec!["secrets".into(), "hr.salaries".into(), "orders".into()],
            denied_schemas: vec!["vault".into()],
            denied_columns: vec!["users.ssn".into(), "customers.email".into()],
            deny_functions: vec!["md5".into()],
            ..Policy::default()
        };
        let mut allowed = [0usize; 2];
        for (dialect, sql) in &cases {
            for (i, policy) in [Policy::default(), strict.clone()].iter().enumerate() {
                let kept = govern_pass(sql, *dialect, policy, 1000, Positions::Keep);
                let dropped = govern_pass(sql, *dialect, policy, 1000, Positions::Drop);
                assert_eq!(kept.is_allowed(), dropped.is_allowed(), "{dialect:?}: {sql}");
                if dropped.is_allowed() {
                    assert_eq!(dropped, kept, "{dialect:?}: {sql}");
                    allowed[i] += 1;
                }
                assert_eq!(govern(sql, *dialect, policy, 1000), kept, "{dialect:?}: {sql}");
            }
        }
        // Both policies allow some cases and refuse others, so both branches were compared.
        assert!(
            allowed.iter().all(|&n| n > 100 && n < cases.len()),
            "{allowed:?} of {}",
            cases.len()
        );
    }

    /// The benchmark measures `govern`'s steps one by one through `bench_support`; they must add up to the
    /// very verdict `govern` gives, so that the parts measured are the parts that run.
    #[test]
    fn the_bench_steps_give_the_verdict_of_govern() {
        use crate::bench_support::{decide, parsed_statement, render_verified};
        let strict = Policy {
            denied_tables: vec!["secrets".into(), "orders".into()],
            denied_columns: vec!["users.ssn".into()],
            deny_functions: vec!["md5".into()],
            ..Policy::default()
        };
        let mut compared = 0usize;
        for (dialect, sql) in every_corpus_case() {
            for policy in [Policy::default(), strict.clone()] {
                let verdict = govern(&sql, dialect, &policy, 1000);
                let Some(statement) = parsed_statement(&sql, dialect) else {
                    continue;
                };
                // DuckDB `ASOF` joins are marked before parsing and restored after rendering.
                if sql.to_ascii_uppercase().contains("ASOF") {
                    continue;
                }
                let stepped = decide(statement, dialect, &policy, 1000)
                    .and_then(|limited| render_verified(&limited, dialect));
                match (&verdict.decision, stepped) {
                    (Decision::Allow { sql: governed, .. }, Some(rendered)) => {
                        assert_eq!(governed, &rendered, "{dialect:?}: {sql}")
                    }
                    (Decision::Deny, None) => {}
                    (decision, stepped) => panic!("{dialect:?}: {sql}: {decision:?} vs {stepped:?}"),
                }
                compared += 1;
            }
        }
        assert!(compared > 500, "only {compared} cases compared");
    }

    /// `govern_and_redact` gives `govern`'s verdict and, for what it allows, exactly what the audit's
    /// `redact` of the allowed SQL gives; for plain statements that redaction is made from the checked tree.
    #[test]
    fn the_redaction_from_the_tree_is_the_redaction_of_the_allowed_sql() {
        let strict = Policy {
            denied_tables: vec!["secrets".into(), "orders".into()],
            denied_columns: vec!["users.ssn".into()],
            deny_functions: vec!["md5".into()],
            ..Policy::default()
        };
        let (mut from_tree, mut refused) = (0usize, 0usize);
        for (dialect, sql) in every_corpus_case() {
            for policy in [Policy::default(), strict.clone()] {
                let (verdict, redacted) = crate::govern_and_redact(&sql, dialect, &policy, 1000);
                assert_eq!(
                    verdict,
                    govern(&sql, dialect, &policy, 1000),
                    "{dialect:?}: {sql}"
                );
                match &verdict.decision {
                    Decision::Allow { sql: allowed, .. } => {
                        assert_eq!(
                            redacted.as_ref(),
                            Some(&crate::redact(allowed, dialect)),
                            "{dialect:?}: {sql}"
                        );
                        if govern_redacting(&sql, dialect, &policy, 1000, true).1.is_some() {
                            from_tree += 1;
                        }
                    }
                    Decision::Deny => {
                        assert_eq!(redacted, None, "{dialect:?}: {sql}");
                        refused += 1;
                    }
                }
            }
        }
        assert!(
            from_tree > 500 && refused > 100,
            "{from_tree} from the tree, {refused} refused"
        );
    }

    /// Governance's own output governed again comes back unchanged. That second run takes the shortcut of
    /// `render_checked` (nothing to rewrite, the rendering is the text parsed), so this also shows that the
    /// shortcut agrees with the full re-parse check on every corpus case.
    #[test]
    fn governing_the_output_again_gives_it_back() {
        use crate::bench_support::{parsed_statement, render_verified};
        let mut shortcut = 0usize;
        for (dialect, sql) in every_corpus_case() {
            let Decision::Allow { sql: out, .. } = govern(&sql, dialect, &Policy::default(), 1000).decision
            else {
                continue;
            };
            match govern(&out, dialect, &Policy::default(), 1000).decision {
                Decision::Allow {
                    sql: again,
                    rewritten,
                    ..
                } => {
                    assert_eq!(
                        (again.as_str(), rewritten),
                        (out.as_str(), false),
                        "{dialect:?}: {sql}"
                    )
                }
                Decision::Deny => panic!("{dialect:?}: {sql}: its output {out} is refused"),
            }
            if let Some(statement) = parsed_statement(&out, dialect)
                && statement.to_string() == out
            {
                assert_eq!(
                    render_verified(&statement, dialect).as_deref(),
                    Some(out.as_str())
                );
                shortcut += 1;
            }
        }
        assert!(shortcut > 400, "only {shortcut} outputs took the shortcut");
    }

    /// The shortcut needs the rendering to be exactly the text that was parsed and the tree unchanged.
    #[test]
    fn the_reparse_check_is_skipped_only_for_the_text_that_was_parsed() {
        let parsed = |sql: &str| match lex::parse_sql(sql, Dialect::PostgreSql, 50) {
            Ok(mut statements) => statements.pop().unwrap(),
            Err(f) => panic!("{sql}: {f:?}"),
        };
        let statement = parsed("SELECT a FROM t LIMIT 10");
        // The text it was parsed from: no second parse is needed, and the result is the same.
        assert_eq!(
            render_checked(
                &statement,
                Dialect::PostgreSql,
                50,
                Some("SELECT a FROM t LIMIT 10")
            ),
            Ok("SELECT a FROM t LIMIT 10".to_owned())
        );
        // Any other text (here: lower case) means a full check, which passes for a stable rendering.
        assert_eq!(
            render_checked(
                &statement,
                Dialect::PostgreSql,
                50,
                Some("select a from t limit 10")
            ),
            Ok("SELECT a FROM t LIMIT 10".to_owned())
        );
        // A limit rewrite changes the tree: `govern` offers no text, so the rendering is checked.
        check(
            "SELECT a FROM t LIMIT 5000",
            Dialect::PostgreSql,
            Allow("SELECT a FROM t LIMIT 100"),
        );
        check(
            "SELECT a FROM t LIMIT 10",
            Dialect::PostgreSql,
            Allow("SELECT a FROM t LIMIT 10"),
        );
        // A tree that no longer is the parse of the text renders differently, so it gets the full check,
        // which refuses a rendering that does not parse back (a select list emptied).
        let mut changed = parsed("SELECT 'a'");
        if let Statement::Query(q) = &mut changed
            && let sqlparser::ast::SetExpr::Select(select) = q.body.as_mut()
        {
            select.projection.clear();
        }
        assert_eq!(
            render_checked(&changed, Dialect::PostgreSql, 50, Some("SELECT 'a'")),
            Err(unstable())
        );
    }

    #[test]
    fn statements() {
        use Dialect::*;
        check("SELECT 1", PostgreSql, Allow("SELECT 1 LIMIT 100"));
        check("select a from t;", PostgreSql, Allow("SELECT a FROM t LIMIT 100"));
        check("", PostgreSql, Deny(rules::EMPTY_STATEMENT));
        check(" ; ", PostgreSql, Deny(rules::EMPTY_STATEMENT));
        check("SELECT 1; SELECT 2", PostgreSql, Deny(rules::MULTIPLE_STATEMENTS));
        check("SELECT 1; DROP TABLE t", DuckDb, Deny(rules::MULTIPLE_STATEMENTS));
        check("DELETE FROM t", PostgreSql, Deny(rules::STATEMENT_NOT_ALLOWED));
        check(
            "SET search_path = x",
            PostgreSql,
            Deny(rules::STATEMENT_NOT_ALLOWED),
        );
        check("EXPLAIN SELECT 1", PostgreSql, Allow("EXPLAIN SELECT 1"));
        check(
            "EXPLAIN ANALYZE SELECT 1",
            PostgreSql,
            Deny(rules::EXPLAIN_ANALYZE),
        );
        check(
            "EXPLAIN (ANALYZE) SELECT 1",
            PostgreSql,
            Deny(rules::EXPLAIN_ANALYZE),
        );
        check(
            "EXPLAIN (ANALYZE false) SELECT 1",
            PostgreSql,
            Allow("EXPLAIN (ANALYZE false) SELECT 1"),
        );
        check(
            "EXPLAIN DELETE FROM t",
            PostgreSql,
            Deny(rules::STATEMENT_NOT_ALLOWED),
        );
        check("SHOW TABLES", DuckDb, Allow("SHOW TABLES"));
        check("DESCRIBE t", DuckDb, Allow("DESCRIBE t"));
        check("SELECT 1 FROM", PostgreSql, Deny(rules::PARSE_ERROR));
    }

    #[test]
    fn duckdb_special_statements() {
        use Dialect::*;
        check("SUMMARIZE t", DuckDb, Allow("SUMMARIZE t"));
        check(
            "SUMMARIZE SELECT a FROM t;",
            DuckDb,
            Allow("SUMMARIZE SELECT a FROM t"),
        );
        check(
            "SUMMARIZE read_csv('/etc/passwd')",
            DuckDb,
            Deny(rules::FILE_ACCESS_FUNCTION),
        );
        check("SUMMARIZE t WHERE 1 = 1", DuckDb, Deny(rules::UNSTABLE_RENDERING));
        check(
            "SUMMARIZE t; DROP TABLE t",
            DuckDb,
            Deny(rules::MULTIPLE_STATEMENTS),
        );
        check(
            "PIVOT cities ON year USING sum(population) GROUP BY country",
            DuckDb,
            Allow(
                "SELECT * FROM (PIVOT cities ON year USING sum(population) GROUP BY country) AS sluice_limited LIMIT 100",
            ),
        );
        check(
            "pivot cities on year",
            DuckDb,
            Allow("SELECT * FROM (PIVOT cities ON year) AS sluice_limited LIMIT 100"),
        );
        check(
            "PIVOT cities ON year USING pg_sleep(1)",
            DuckDb,
            Allow("SELECT * FROM (PIVOT cities ON year USING pg_sleep(1)) AS sluice_limited LIMIT 100"),
        );
        check(
            "PIVOT cities ON year USING sum(x) GROUP BY query('x')",
            DuckDb,
            Deny(rules::DENIED_FUNCTION),
        );
        check(
            "PIVOT read_csv('x') ON year",
            DuckDb,
            Deny(rules::FILE_ACCESS_FUNCTION),
        );
        check("PIVOT cities", DuckDb, Deny(rules::PARSE_ERROR));
        check(
            "UNPIVOT t ON a, b INTO NAME n VALUE v",
            DuckDb,
            Deny(rules::STATEMENT_NOT_ALLOWED),
        );
        check(
            "SELECT * FROM trades t ASOF JOIN quotes q ON t.sym = q.sym AND t.ts >= q.ts",
            DuckDb,
            Allow("SELECT * FROM trades t ASOF JOIN quotes q ON t.sym = q.sym AND t.ts >= q.ts LIMIT 100"),
        );
        check(
            "SELECT * FROM trades t ASOF LEFT JOIN quotes q USING (sym, ts)",
            DuckDb,
            Allow("SELECT * FROM trades t ASOF LEFT JOIN quotes q USING(sym, ts) LIMIT 100"),
        );
    }
}
