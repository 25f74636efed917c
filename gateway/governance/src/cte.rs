//! Splitting a `WITH` query into its common table expressions, each as a standalone query, in dependency
//! order, so that a debugger can run and inspect every step on its own (`debug_cte_query`).
//!
//! Pure: SQL text in, SQL texts out. The parts are plain queries that the caller must govern like any other
//! agent SQL; nothing here decides whether they may run.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{Cte, Ident, ObjectNamePart, Query, Statement, visit_relations};

use crate::Dialect;
use crate::policy::Policy;
use crate::rules;
use crate::verdict::Finding;

/// One common table expression as a standalone query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtePart {
    /// The CTE's name as written (without quotes).
    pub name: String,
    /// The CTEs of the same `WITH` clause this one reads directly, in their written order.
    pub depends_on: Vec<String>,
    /// `WITH <what it needs>, <it> SELECT * FROM <it>`: the CTE's rows, with only the CTEs it needs.
    pub sample_sql: String,
    /// The same, counting the CTE's rows: `… SELECT count(*) AS row_count FROM <it>`.
    pub count_sql: String,
}

/// Splits the top-level `WITH` clause of a single query into standalone queries, one per CTE, ordered so
/// that every CTE comes after those it reads (ties keep the written order). A query without a `WITH`
/// clause yields no parts. Text that is not exactly one query is refused with a finding.
pub fn split_ctes(sql: &str, dialect: Dialect) -> Result<Vec<CtePart>, Finding> {
    let mut statements = crate::lex::parse_sql(sql, dialect, Policy::default().max_depth)?;
    let statement = match (statements.pop(), statements.is_empty()) {
        (Some(s), true) => s,
        (None, _) => {
            return Err(Finding::deny(
                rules::EMPTY_STATEMENT,
                "The SQL holds no statement. Send one query with a WITH clause.".to_owned(),
                None,
            ));
        }
        (Some(_), false) => {
            return Err(Finding::deny(
                rules::MULTIPLE_STATEMENTS,
                "Send exactly one query; several statements were found.".to_owned(),
                None,
            ));
        }
    };
    let Statement::Query(query) = statement else {
        return Err(Finding::deny(
            rules::STATEMENT_NOT_ALLOWED,
            "Only a query (SELECT … or WITH … SELECT …) can be split into its CTEs.".to_owned(),
            None,
        ));
    };
    let Some(with) = &query.with else {
        return Ok(Vec::new());
    };
    let ctes = &with.cte_tables;
    let deps: Vec<BTreeSet<usize>> = ctes
        .iter()
        .enumerate()
        .map(|(i, cte)| direct_dependencies(&cte.query, ctes, i))
        .collect();
    let order = dependency_order(&deps);
    let recursive = if with.recursive { "RECURSIVE " } else { "" };
    Ok(order
        .into_iter()
        .filter_map(|i| {
            let cte = ctes.get(i)?;
            let needed = closure(i, &deps);
            let prefix: Vec<String> = needed
                .iter()
                .filter_map(|&j| ctes.get(j).map(Cte::to_string))
                .collect();
            let with_clause = format!("WITH {recursive}{}", prefix.join(", "));
            let name = &cte.alias.name;
            Some(CtePart {
                name: name.value.clone(),
                depends_on: deps
                    .get(i)
                    .map(|d| {
                        d.iter()
                            .filter(|&&j| j != i)
                            .filter_map(|&j| ctes.get(j).map(|c| c.alias.name.value.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                sample_sql: format!("{with_clause} SELECT * FROM {name}"),
                count_sql: format!("{with_clause} SELECT count(*) AS row_count FROM {name}"),
            })
        })
        .collect())
}

/// Whether a one-part relation name refers to a CTE name. Unquoted identifiers compare case-insensitively,
/// as every supported engine folds or ignores their case.
fn same_name(reference: &Ident, cte: &Ident) -> bool {
    if reference.quote_style.is_none() || cte.quote_style.is_none() {
        reference.value.eq_ignore_ascii_case(&cte.value)
    } else {
        reference.value == cte.value
    }
}

/// The CTEs (by index) that `query` reads by name. A CTE may read those written before it, and itself
/// when the clause is recursive; a name that a later CTE defines is not visible yet, so it is not a
/// dependency on that CTE.
fn direct_dependencies(query: &Query, ctes: &[Cte], own: usize) -> BTreeSet<usize> {
    let mut found = BTreeSet::new();
    let _ = visit_relations(query, |name| {
        if let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() {
            // The nearest definition wins: search backwards from this CTE.
            let hit = (0..=own)
                .rev()
                .find(|&j| ctes.get(j).is_some_and(|c| same_name(ident, &c.alias.name)));
            if let Some(j) = hit {
                found.insert(j);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// A topological order of the CTEs (dependencies first), stable in the written order. Self-references
/// (recursive CTEs) are ignored; should a cycle remain, its members follow in written order.
fn dependency_order(deps: &[BTreeSet<usize>]) -> Vec<usize> {
    let mut done = vec![false; deps.len()];
    let mut order = Vec::with_capacity(deps.len());
    while order.len() < deps.len() {
        let next = (0..deps.len()).find(|&i| {
            !done[i]
                && deps
                    .get(i)
                    .is_some_and(|d| d.iter().all(|&j| j == i || done.get(j).copied().unwrap_or(true)))
        });
        let pick = next.or_else(|| (0..deps.len()).find(|&i| !done[i]));
        let Some(i) = pick else { break };
        done[i] = true;
        order.push(i);
    }
    order
}

/// `i` and every CTE it reads, directly or not, in written order.
fn closure(i: usize, deps: &[BTreeSet<usize>]) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![i];
    while let Some(j) = stack.pop() {
        if seen.insert(j) {
            stack.extend(deps.get(j).into_iter().flatten().copied());
        }
    }
    seen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// Expected parts: (name, direct dependencies, sample SQL).
    type Want = Vec<(&'static str, Vec<&'static str>, &'static str)>;

    fn check(sql: &str, dialect: Dialect, expected: Want) {
        let parts = split_ctes(sql, dialect).unwrap_or_else(|f| panic!("{sql}: {f:?}"));
        let got: Vec<(String, Vec<String>, String)> = parts
            .iter()
            .map(|p| (p.name.clone(), p.depends_on.clone(), p.sample_sql.clone()))
            .collect();
        let want: Vec<(String, Vec<String>, String)> = expected
            .into_iter()
            .map(|(n, d, s)| {
                (
                    n.to_owned(),
                    d.into_iter().map(str::to_owned).collect(),
                    s.to_owned(),
                )
            })
            .collect();
        assert_eq!(got, want, "{sql}");
        for p in &parts {
            assert_eq!(
                p.count_sql,
                p.sample_sql
                    .replace(" SELECT * FROM ", " SELECT count(*) AS row_count FROM "),
            );
        }
    }

    #[test]
    fn splits_in_dependency_order_with_only_what_each_needs() {
        use Dialect::*;
        check("SELECT 1", PostgreSql, vec![]);
        check(
            "WITH a AS (SELECT 1 AS x) SELECT * FROM a",
            PostgreSql,
            vec![("a", vec![], "WITH a AS (SELECT 1 AS x) SELECT * FROM a")],
        );
        check(
            "WITH a AS (SELECT id FROM orders), b AS (SELECT * FROM customers), c AS (SELECT * FROM a JOIN b ON a.id = b.id) SELECT * FROM c",
            DuckDb,
            vec![
                ("a", vec![], "WITH a AS (SELECT id FROM orders) SELECT * FROM a"),
                ("b", vec![], "WITH b AS (SELECT * FROM customers) SELECT * FROM b"),
                (
                    "c",
                    vec!["a", "b"],
                    "WITH a AS (SELECT id FROM orders), b AS (SELECT * FROM customers), c AS (SELECT * FROM a JOIN b ON a.id = b.id) SELECT * FROM c",
                ),
            ],
        );
        // A chain: each step carries exactly the steps it needs, and an unrelated CTE stays out.
        check(
            "with base as (select 1 as n), other as (select 2), doubled as (select n * 2 as n from base), top as (select max(n) from doubled) select * from top",
            MySql,
            vec![
                ("base", vec![], "WITH base AS (SELECT 1 AS n) SELECT * FROM base"),
                ("other", vec![], "WITH other AS (SELECT 2) SELECT * FROM other"),
                (
                    "doubled",
                    vec!["base"],
                    "WITH base AS (SELECT 1 AS n), doubled AS (SELECT n * 2 AS n FROM base) SELECT * FROM doubled",
                ),
                (
                    "top",
                    vec!["doubled"],
                    "WITH base AS (SELECT 1 AS n), doubled AS (SELECT n * 2 AS n FROM base), top AS (SELECT max(n) FROM doubled) SELECT * FROM top",
                ),
            ],
        );
        // References inside subqueries and case differences still count; a schema-qualified name is a table.
        check(
            "WITH A AS (SELECT 1 AS x), b AS (SELECT * FROM t WHERE x IN (SELECT x FROM a)), c AS (SELECT * FROM main.a) SELECT * FROM b, c",
            Sqlite,
            vec![
                ("A", vec![], "WITH A AS (SELECT 1 AS x) SELECT * FROM A"),
                (
                    "b",
                    vec!["A"],
                    "WITH A AS (SELECT 1 AS x), b AS (SELECT * FROM t WHERE x IN (SELECT x FROM a)) SELECT * FROM b",
                ),
                ("c", vec![], "WITH c AS (SELECT * FROM main.a) SELECT * FROM c"),
            ],
        );
        // Column lists, quoting and RECURSIVE are kept; a self-reference is not a dependency.
        check(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5), \"Sq\" AS (SELECT n * n AS s FROM r) SELECT * FROM \"Sq\"",
            PostgreSql,
            vec![
                (
                    "r",
                    vec![],
                    "WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
                ),
                (
                    "Sq",
                    vec!["r"],
                    "WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5), \"Sq\" AS (SELECT n * n AS s FROM r) SELECT * FROM \"Sq\"",
                ),
            ],
        );
    }

    #[test]
    fn refuses_what_is_not_one_query() {
        use Dialect::*;
        let cases = [
            ("", rules::EMPTY_STATEMENT),
            (
                "WITH a AS (SELECT 1) SELECT * FROM a; SELECT 2",
                rules::MULTIPLE_STATEMENTS,
            ),
            ("DELETE FROM t", rules::STATEMENT_NOT_ALLOWED),
            ("WITH a AS (SELECT 1 SELECT * FROM a", rules::PARSE_ERROR),
        ];
        for (sql, rule) in cases {
            let err = split_ctes(sql, PostgreSql).expect_err(sql);
            assert_eq!(err.rule, rule, "{sql}: {}", err.message);
        }
    }

    #[test]
    fn order_is_topological_and_stable() {
        let deps = |v: &[&[usize]]| -> Vec<BTreeSet<usize>> {
            v.iter().map(|d| d.iter().copied().collect()).collect()
        };
        let cases: Vec<(Vec<BTreeSet<usize>>, Vec<usize>)> = vec![
            (deps(&[]), vec![]),
            (deps(&[&[], &[], &[]]), vec![0, 1, 2]),
            (deps(&[&[1], &[]]), vec![1, 0]),
            (deps(&[&[0], &[0]]), vec![0, 1]),
            (deps(&[&[2], &[0], &[]]), vec![2, 0, 1]),
            // A cycle cannot be ordered: its members follow in written order.
            (deps(&[&[1], &[0], &[]]), vec![2, 0, 1]),
        ];
        for (input, expected) in cases {
            assert_eq!(dependency_order(&input), expected, "{input:?}");
        }
    }
}
