//! Bounded property tests: governance and redaction never panic, on arbitrary text, on token soups and on
//! mutated corpus queries, whatever governance allows is allowed again unchanged, and the audit redaction
//! governance makes of what it allows is what `redact` makes of it.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use sluice_governance::{Decision, Dialect, StatementKind, govern, govern_and_redact, redact};

use super::corpus::{LIMIT, all_cases, corpus_policy};

/// A fixed case count keeps the suite's run time bounded (see DECISIONS.md, Tests and CI).
const CASES: u32 = 512;

fn config() -> Config {
    Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    }
}

fn dialect() -> impl Strategy<Value = Dialect> {
    prop::sample::select(Dialect::ALL.to_vec())
}

/// The invariants every verdict keeps.
fn holds(sql: &str, dialect: Dialect) -> Result<(), TestCaseError> {
    let policy = corpus_policy();
    let verdict = govern(sql, dialect, &policy, LIMIT);
    let redacted = redact(sql, dialect);
    prop_assert_eq!(redacted.len, sql.len());
    prop_assert_eq!(redacted.sha256.len(), 64);
    match &verdict.decision {
        Decision::Deny => prop_assert!(verdict.denial().is_some(), "a denial without a deny finding"),
        Decision::Allow {
            sql: out,
            statement,
            limit_applied,
            ..
        } => {
            prop_assert!(verdict.denial().is_none());
            if *statement == StatementKind::Query || *statement == StatementKind::Pivot {
                prop_assert!(limit_applied.is_some_and(|l| l <= LIMIT), "unlimited query {out}");
            }
            let again = govern(out, dialect, &policy, LIMIT);
            match &again.decision {
                Decision::Allow {
                    sql: twice,
                    rewritten: false,
                    ..
                } => prop_assert_eq!(twice, out),
                other => prop_assert!(false, "{sql:?} -> {out:?} -> {other:?}"),
            }
        }
    }
    Ok(())
}

#[test]
fn arbitrary_text_never_panics() {
    let mut runner = TestRunner::new(config());
    let result = runner.run(&("\\PC{0,160}", dialect()), |(sql, dialect)| holds(&sql, dialect));
    if let Err(e) = result {
        panic!("{e}");
    }
}

const VOCABULARY: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "WITH",
    "AS",
    "JOIN",
    "ON",
    "UNION",
    "ALL",
    "LIMIT",
    "OFFSET",
    "ORDER",
    "BY",
    "GROUP",
    "INTO",
    "OUTFILE",
    "FOR",
    "UPDATE",
    "DELETE",
    "INSERT",
    "VALUES",
    "TABLE",
    "EXPLAIN",
    "ANALYZE",
    "SHOW",
    "PIVOT",
    "SUMMARIZE",
    "ASOF",
    "GLOBAL",
    "LATERAL",
    "FETCH",
    "FIRST",
    "ROWS",
    "ONLY",
    "TOP",
    "(",
    ")",
    ",",
    ";",
    "*",
    "+",
    "-",
    "=",
    "<",
    "||",
    "::",
    "->",
    "'x'",
    "'/etc/passwd'",
    "\"q\"",
    "`b`",
    "[1]",
    "1",
    "0",
    "-1",
    "1e3",
    "$1",
    "?",
    "t",
    "u.a",
    "secrets",
    "users",
    "ssn",
    "read_csv",
    "pg_read_file",
    "sleep",
    "query",
    "count",
    "/*!",
    "*/",
    "/*+",
    "--",
    "#",
    "\n",
    "'",
    "\\",
    "$$",
    "@stage",
    "ALL",
    "NULL",
    "CASE",
    "WHEN",
    "THEN",
    "END",
    "EXISTS",
    "IN",
];

#[test]
fn token_soups_never_panic() {
    let mut runner = TestRunner::new(config());
    let soup =
        prop::collection::vec(prop::sample::select(VOCABULARY.to_vec()), 0..40).prop_map(|t| t.join(" "));
    let result = runner.run(&(soup, dialect()), |(sql, dialect)| holds(&sql, dialect));
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// One edit of a corpus query: delete a range, insert a vocabulary token, or duplicate a range.
#[derive(Clone, Debug)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, &'static str),
    Duplicate(usize, usize),
}

fn apply(sql: &str, edit: &Edit) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let at = |i: usize| i % (chars.len() + 1);
    let (mut a, mut b) = match edit {
        Edit::Delete(a, b) | Edit::Duplicate(a, b) => (at(*a), at(*b)),
        Edit::Insert(a, _) => (at(*a), at(*a)),
    };
    if a > b {
        std::mem::swap(&mut a, &mut b);
    }
    let head: String = chars[..a].iter().collect();
    let mid: String = chars[a..b].iter().collect();
    let tail: String = chars[b..].iter().collect();
    match edit {
        Edit::Delete(..) => format!("{head}{tail}"),
        Edit::Insert(_, token) => format!("{head} {token} {tail}"),
        Edit::Duplicate(..) => format!("{head}{mid}{mid}{tail}"),
    }
}

/// Runs `check` on corpus queries, each mutated by a number of edits in `edits`.
fn on_mutated_corpus(
    edits: std::ops::Range<usize>,
    check: impl Fn(&str, Dialect) -> Result<(), TestCaseError>,
) {
    let corpus: Vec<(Dialect, String)> = all_cases().into_iter().map(|(d, _, c)| (d, c.sql)).collect();
    assert!(!corpus.is_empty());
    let edit = prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Delete(a, b)),
        (any::<usize>(), prop::sample::select(VOCABULARY.to_vec())).prop_map(|(a, t)| Edit::Insert(a, t)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Duplicate(a, b)),
    ];
    let mut runner = TestRunner::new(config());
    let result = runner.run(
        &(prop::sample::select(corpus), prop::collection::vec(edit, edits)),
        |((dialect, sql), edits)| {
            let mutated = edits.iter().fold(sql, |s, e| apply(&s, e));
            check(&mutated, dialect)
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn mutated_corpus_queries_never_panic() {
    on_mutated_corpus(1..4, holds);
}

/// `govern_and_redact` gives `govern`'s verdict, and for what it allows the redaction `redact` makes of
/// the allowed SQL (it makes it from the checked tree instead of parsing that SQL again).
fn redaction_agrees(sql: &str, dialect: Dialect) -> Result<(), TestCaseError> {
    let policy = corpus_policy();
    let (verdict, redacted) = govern_and_redact(sql, dialect, &policy, LIMIT);
    prop_assert_eq!(&verdict, &govern(sql, dialect, &policy, LIMIT));
    match &verdict.decision {
        Decision::Allow { sql: out, .. } => prop_assert_eq!(redacted, Some(redact(out, dialect))),
        Decision::Deny => prop_assert_eq!(redacted, None),
    }
    Ok(())
}

#[test]
fn governance_redacts_what_it_allows_as_redact_does() {
    on_mutated_corpus(0..3, redaction_agrees);
}
