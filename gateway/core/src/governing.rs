//! How the gateway governs agent SQL: sqlparser in the connection's dialect first and, for DuckDB
//! connections, DuckDB's own parser when sqlparser cannot parse the statement (DuckDB-only syntax such as
//! list comprehensions, `USING SAMPLE n ROWS`, `UNPIVOT … INTO NAME … VALUE …`).
//!
//! On that second path governance judges DuckDB's parse tree (`sluice_governance::govern_duckdb_tree`), the
//! statement runs wrapped in the row limit, and DuckDB parses the wrapped text once more to prove that its
//! subquery is the tree that was judged. Anything else that goes wrong keeps the refusal.

use sluice_governance::{Decision, Dialect, Policy, Redacted, Verdict, rules};

/// The verdict on `sql` for a connection of `dialect` under `policy` with at most `limit` rows, and its
/// redaction for the audit log (`None` when sqlparser could not parse it: then the log keeps its hash).
pub fn govern(sql: &str, dialect: Dialect, policy: &Policy, limit: u64) -> (Verdict, Option<Redacted>) {
    let (verdict, redacted) = sluice_governance::govern_and_redact(sql, dialect, policy, limit);
    // Only what sqlparser could not read (a parse error, or a statement its DuckDB pre-scan could not place,
    // such as `UNPIVOT … INTO NAME … VALUE …`) is worth DuckDB's own reading.
    let unread = matches!(
        verdict.denial().map(|f| f.rule),
        Some(rules::PARSE_ERROR | rules::STATEMENT_NOT_ALLOWED)
    );
    if dialect != Dialect::DuckDb || !unread {
        return (verdict, redacted);
    }
    let tree = match sluice_connectors::duckdb::parse_tree(sql) {
        Ok(tree) => tree,
        Err(e) => {
            tracing::warn!(error = %e, "DuckDB's parser was not available; the statement stays refused");
            return (verdict, redacted);
        }
    };
    let judged = sluice_governance::govern_duckdb_tree(sql, &tree, policy, limit);
    // Where DuckDB cannot parse it either, sqlparser's message (with its position) says more.
    if judged.denial().map(|f| f.rule) == Some(rules::PARSE_ERROR) {
        return (verdict, redacted);
    }
    if let Decision::Allow { sql: wrapped, .. } = &judged.decision {
        let same = sluice_connectors::duckdb::parse_tree(wrapped)
            .is_ok_and(|again| sluice_governance::wraps_the_same_query(&tree, &again));
        if !same {
            return (
                Verdict {
                    decision: Decision::Deny,
                    findings: vec![sluice_governance::Finding {
                        rule: rules::UNSTABLE_RENDERING,
                        severity: sluice_governance::Severity::Deny,
                        message: "This statement cannot be limited without changing what it means (DuckDB \
                                  reads the limited form differently). Simplify it, e.g. remove comments."
                            .to_owned(),
                        span: None,
                    }],
                },
                None,
            );
        }
    }
    (judged, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn rule(sql: &str, policy: &Policy) -> Result<String, &'static str> {
        let (verdict, _) = govern(sql, Dialect::DuckDb, policy, 11);
        match verdict.decision {
            Decision::Allow { sql, .. } => Ok(sql),
            Decision::Deny => Err(verdict.denial().map(|f| f.rule).unwrap_or("none")),
        }
    }

    #[test]
    fn duckdb_only_syntax_is_governed_on_duckdbs_own_tree() {
        let open = Policy::default();
        let policed = Policy {
            denied_tables: vec!["secrets".into()],
            denied_columns: vec!["customers.email".into()],
            ..Policy::default()
        };
        let cases: &[(&str, &Policy, Result<&str, &str>)] = &[
            (
                "SELECT [x * 2 FOR x IN [1, 2, 3]] AS l",
                &open,
                Ok("SELECT * FROM (\nSELECT [x * 2 FOR x IN [1, 2, 3]] AS l\n) AS sluice_limited LIMIT 11"),
            ),
            (
                "SELECT * FROM range(100) USING SAMPLE 10 ROWS;",
                &open,
                Ok(
                    "SELECT * FROM (\nSELECT * FROM range(100) USING SAMPLE 10 ROWS\n) AS sluice_limited LIMIT 11",
                ),
            ),
            (
                "SELECT [read_csv('/etc/passwd') FOR x IN [1]]",
                &open,
                Err(rules::FILE_ACCESS_FUNCTION),
            ),
            (
                "SELECT [getenv('HOME') FOR x IN [1]]",
                &open,
                Err(rules::DENIED_FUNCTION),
            ),
            (
                "SELECT [x FOR x IN [1]] FROM '/etc/passwd'",
                &open,
                Err(rules::STRING_LITERAL_TABLE),
            ),
            (
                "SELECT [x FOR x IN [1]] FROM \"/etc/passwd\"",
                &open,
                Err(rules::FILE_PATH_TABLE),
            ),
            (
                "FROM backup.parquet USING SAMPLE 1 ROWS",
                &open,
                Err(rules::FILE_PATH_TABLE),
            ),
            (
                "FROM orders USING SAMPLE 1 ROWS",
                &policed,
                Ok("SELECT * FROM (\nFROM orders USING SAMPLE 1 ROWS\n) AS sluice_limited LIMIT 11"),
            ),
            (
                "FROM customers USING SAMPLE 1 ROWS",
                &policed,
                Err(rules::DENIED_COLUMN),
            ),
            (
                "SELECT * EXCLUDE (email) FROM customers USING SAMPLE 1 ROWS",
                &policed,
                Ok(
                    "SELECT * FROM (\nSELECT * EXCLUDE (email) FROM customers USING SAMPLE 1 ROWS\n) AS sluice_limited LIMIT 11",
                ),
            ),
            (
                "SELECT c FROM customers AS c USING SAMPLE 1 ROWS",
                &policed,
                Err(rules::DENIED_COLUMN),
            ),
            (
                "SELECT customers.email.upper() FROM customers USING SAMPLE 1 ROWS",
                &policed,
                Err(rules::DENIED_COLUMN),
            ),
            (
                "SELECT e FROM customers AS c(i, n, co, s, e) USING SAMPLE 1 ROWS",
                &policed,
                Err(rules::DENIED_COLUMN),
            ),
            (
                "SELECT #5 FROM customers USING SAMPLE 1 ROWS",
                &policed,
                Err(rules::DENIED_COLUMN),
            ),
            (
                "SELECT [x FOR x IN [1]] FROM duckdb_secrets()",
                &open,
                Err(rules::DENIED_FUNCTION),
            ),
            (
                "SELECT [v FOR v IN (SELECT list(v) FROM secrets)]",
                &policed,
                Err(rules::DENIED_TABLE),
            ),
            (
                "SELECT [email FOR x IN [1]] FROM customers",
                &policed,
                Err(rules::DENIED_COLUMN),
            ),
            (
                "SELECT [x FOR x IN [1]], * FROM customers",
                &policed,
                Err(rules::DENIED_COLUMN),
            ),
            (
                "SELECT [x FOR x IN [1]]; SELECT 2",
                &open,
                Err(rules::MULTIPLE_STATEMENTS),
            ),
            // sqlparser reads these as something it refuses before DuckDB is asked, or DuckDB refuses them.
            (
                "COPY (SELECT [x FOR x IN [1]]) TO '/tmp/x'",
                &open,
                Err(rules::STATEMENT_NOT_ALLOWED),
            ),
            // Not SQL in any dialect: sqlparser's parse error stands.
            ("SELECT [x FOR x IN", &open, Err(rules::PARSE_ERROR)),
        ];
        for (sql, policy, expected) in cases {
            let got = rule(sql, policy);
            let got = got.as_ref().map(String::as_str).map_err(|r| *r);
            assert_eq!(&got, expected, "{sql}");
        }
    }

    #[test]
    fn a_trailing_comment_cannot_swallow_the_limit() {
        let sql = "SELECT [x FOR x IN range(100)] AS l -- a note";
        let wrapped = rule(sql, &Policy::default()).unwrap();
        assert!(wrapped.ends_with("\n) AS sluice_limited LIMIT 11"), "{wrapped}");
        // What DuckDB reads back is the wrapper around the governed tree.
        let tree = sluice_connectors::duckdb::parse_tree(sql).unwrap();
        let again = sluice_connectors::duckdb::parse_tree(&wrapped).unwrap();
        assert!(sluice_governance::wraps_the_same_query(&tree, &again));
        // A text that would close the wrapper early is not the same query once wrapped.
        let escape = "SELECT [x FOR x IN [1]] AS l) AS a, (SELECT 1";
        assert!(rule(escape, &Policy::default()).is_err(), "{escape}");
    }
}
