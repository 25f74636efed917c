//! Tests of `govern`: the fast and the full pass decide every corpus case alike, the bench steps give its
//! verdict, redaction and the reparse check hold, and statements of each kind are judged per dialect.

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
