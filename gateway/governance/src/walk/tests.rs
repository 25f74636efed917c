//! The walk's verdicts on statements, table-driven: denied tables and schemas, functions, CTE scopes,
//! wildcards and the findings each one gives.

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
