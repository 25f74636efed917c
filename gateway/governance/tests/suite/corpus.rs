//! Runs every case of the SQL corpora in `tests/fixtures/sql/<dialect>/`: allowed queries must pass
//! unchanged but for the row limit, refused ones must be refused by the expected rule, rewritten ones must
//! come out exactly as written. Every failure is reported at once.

use std::fs;
use std::path::{Path, PathBuf};

use sluice_governance::{Decision, Dialect, Policy, govern, redact, rules};

const CORPORA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/sql");

/// The row limit the corpora are written against.
pub(crate) const LIMIT: u64 = 1000;

/// The policy the corpora are written against (also described in the fixtures' README).
pub(crate) fn corpus_policy() -> Policy {
    Policy {
        denied_tables: vec!["secrets".into(), "hr.salaries".into()],
        denied_schemas: vec!["vault".into()],
        denied_columns: vec!["users.ssn".into(), "users.password_hash".into()],
        ..Policy::default()
    }
}

pub(crate) fn dialect_of(dir: &str) -> Option<Dialect> {
    if dir == "generic" {
        Some(Dialect::Unknown)
    } else {
        Dialect::from_kind(dir)
    }
}

/// One case: its header (after `====`), its SQL and, for rewrites, the expected SQL.
#[derive(Debug)]
pub(crate) struct Case {
    pub(crate) file: PathBuf,
    pub(crate) line: usize,
    pub(crate) header: String,
    pub(crate) sql: String,
    pub(crate) expected: Option<String>,
}

/// Splits a corpus file into cases. Lines before the first `====` line are the file's own comments.
pub(crate) fn parse_cases(path: &Path) -> Vec<Case> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut cases: Vec<Case> = Vec::new();
    let mut body: Vec<&str> = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut finish = |current: Option<(usize, String)>, body: &mut Vec<&str>| {
        if let Some((line, header)) = current {
            let text = body.join("\n");
            let (sql, expected) = match text.split_once("\n----\n") {
                Some((sql, expected)) => (sql.trim().to_owned(), Some(expected.trim().to_owned())),
                None => (text.trim().to_owned(), None),
            };
            cases.push(Case {
                file: path.to_owned(),
                line,
                header,
                sql,
                expected,
            });
        }
        body.clear();
    };
    for (i, line) in text.lines().enumerate() {
        if let Some(header) = line.strip_prefix("====") {
            finish(current.take(), &mut body);
            current = Some((i + 1, header.trim().to_owned()));
        } else if current.is_some() {
            body.push(line);
        }
    }
    finish(current.take(), &mut body);
    cases
}

/// Every corpus directory with its dialect.
pub(crate) fn dialect_dirs() -> Vec<(String, Dialect, PathBuf)> {
    let mut dirs: Vec<(String, Dialect, PathBuf)> = fs::read_dir(CORPORA)
        .unwrap_or_else(|e| panic!("{CORPORA}: {e}"))
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dialect = dialect_of(&name).unwrap_or_else(|| panic!("unknown dialect directory {name}"));
            (name, dialect, e.path())
        })
        .collect();
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    dirs
}

/// Every case of every corpus, with its dialect and kind (`allowed`, `refused`, `rewritten`).
pub(crate) fn all_cases() -> Vec<(Dialect, &'static str, Case)> {
    let mut out = Vec::new();
    for (_, dialect, dir) in dialect_dirs() {
        for kind in ["allowed", "refused", "rewritten"] {
            let path = dir.join(format!("{kind}.txt"));
            // A missing file is reported by `corpora_are_complete`; the other suites run on what exists.
            if !path.exists() {
                continue;
            }
            for case in parse_cases(&path) {
                out.push((dialect, kind, case));
            }
        }
    }
    out
}

fn where_(case: &Case) -> String {
    format!("{}:{} [{}]", case.file.display(), case.line, case.header)
}

/// Checks that the SQL governance hands back is itself accepted unchanged: a second pass must not find
/// anything new to refuse or rewrite.
fn check_stable(dialect: Dialect, policy: &Policy, sql: &str, case: &Case, failures: &mut Vec<String>) {
    let again = govern(sql, dialect, policy, LIMIT);
    match &again.decision {
        Decision::Allow {
            sql: twice,
            rewritten: false,
            ..
        } if twice == sql => {}
        other => failures.push(format!(
            "{}\n  governing the output again gave {other:?}",
            where_(case)
        )),
    }
}

fn check_case(dialect: Dialect, kind: &str, case: &Case, failures: &mut Vec<String>) {
    let policy = corpus_policy();
    let verdict = govern(&case.sql, dialect, &policy, LIMIT);
    let redacted = redact(&case.sql, dialect);
    match kind {
        "allowed" | "rewritten" => {
            let Decision::Allow { sql, .. } = &verdict.decision else {
                failures.push(format!(
                    "{}\n  expected allow, got {:?}",
                    where_(case),
                    verdict.findings
                ));
                return;
            };
            if let Some(expected) = &case.expected
                && sql != expected
            {
                failures.push(format!(
                    "{}\n  expected: {expected}\n  got:      {sql}",
                    where_(case)
                ));
            }
            if kind == "rewritten" && case.expected.is_none() {
                failures.push(format!(
                    "{}\n  a rewritten case needs `----` and the expected SQL",
                    where_(case)
                ));
            }
            if redacted.text.is_none() {
                failures.push(format!(
                    "{}\n  an allowed query must have a redacted text",
                    where_(case)
                ));
            }
            check_stable(dialect, &policy, sql, case, failures);
        }
        "refused" => {
            let expected = case.header.split_whitespace().next().unwrap_or("");
            if !rules::ALL.contains(&expected) {
                failures.push(format!("{}\n  `{expected}` is not a rule id", where_(case)));
            }
            match verdict.denial() {
                Some(f) if f.rule == expected && verdict.decision == Decision::Deny => {
                    if f.message.len() < 40 || !f.message.ends_with('.') {
                        failures.push(format!("{}\n  message too terse: {}", where_(case), f.message));
                    }
                    if f.rule == rules::PARSE_ERROR && f.span.is_none() {
                        failures.push(format!("{}\n  a parse error needs a position", where_(case)));
                    }
                }
                _ => failures.push(format!(
                    "{}\n  expected refusal by {expected}, got {:?} {:?}",
                    where_(case),
                    verdict.decision,
                    verdict.findings
                )),
            }
        }
        other => failures.push(format!("unknown corpus kind {other}")),
    }
}

#[test]
fn corpora_hold() {
    let cases = all_cases();
    let mut failures = Vec::new();
    for (dialect, kind, case) in &cases {
        check_case(*dialect, kind, case, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn corpora_are_complete() {
    let dirs = dialect_dirs();
    let names: Vec<&str> = dirs.iter().map(|d| d.0.as_str()).collect();
    for expected in [
        "bigquery",
        "databricks",
        "duckdb",
        "generic",
        "mssql",
        "mysql",
        "postgres",
        "redshift",
        "snowflake",
        "sqlite",
    ] {
        assert!(names.contains(&expected), "missing corpus directory {expected}");
    }
    let cases = all_cases();
    assert!(cases.len() >= 400, "only {} corpus cases", cases.len());
    for (name, dialect, _) in &dirs {
        for kind in ["allowed", "refused", "rewritten"] {
            let n = cases
                .iter()
                .filter(|(d, k, _)| d == dialect && *k == kind)
                .count();
            assert!(n > 0, "{name}/{kind}.txt has no cases");
        }
    }
}

#[test]
fn every_rule_that_refuses_has_a_corpus_case() {
    let cases = all_cases();
    let exercised: Vec<&str> = cases
        .iter()
        .filter(|(_, kind, _)| *kind == "refused")
        .filter_map(|(_, _, c)| c.header.split_whitespace().next())
        .collect();
    // Too large and too complex need megabytes of SQL (`stack.rs` and the unit tests cover them); an
    // internal error has no known trigger.
    let untestable = [
        rules::TOO_LARGE,
        rules::TOO_COMPLEX,
        rules::INTERNAL_ERROR,
        rules::ROW_LIMIT,
    ];
    for rule in rules::ALL {
        if !untestable.contains(rule) {
            assert!(
                exercised.contains(rule),
                "no refused corpus case exercises `{rule}`"
            );
        }
    }
}
