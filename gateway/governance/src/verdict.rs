//! The result types of governance: verdicts, decisions, findings and redacted SQL.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The outcome of governing one SQL text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub decision: Decision,
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// True when the statement may run (possibly rewritten).
    pub fn is_allowed(&self) -> bool {
        matches!(self.decision, Decision::Allow { .. })
    }

    /// The first finding that denies the statement, if any.
    pub fn denial(&self) -> Option<&Finding> {
        self.findings.iter().find(|f| f.severity == Severity::Deny)
    }
}

/// Allow (with the SQL to run) or deny. Serialized as `{"kind": "allow", "sql": …}` or `{"kind": "deny"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Decision {
    Allow {
        /// The SQL to run and to audit: always rendered from the checked tree (comments and formatting
        /// are gone), and verified to parse back to that tree.
        sql: String,
        /// Whether governance changed what the statement returns: a row limit added, lowered or wrapped
        /// around it. Normalised formatting alone does not count.
        rewritten: bool,
        statement: StatementKind,
        /// The most rows the statement can return, for queries and PIVOT; `None` for EXPLAIN, SHOW,
        /// DESCRIBE and SUMMARIZE, which are not limited.
        limit_applied: Option<u64>,
    },
    Deny,
}

/// The kind of an allowed statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    Query,
    Explain,
    Show,
    Describe,
    Summarize,
    Pivot,
}

/// One observation about the statement, with a stable rule id.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    pub span: Option<Span>,
}

impl Finding {
    pub(crate) fn deny(rule: &'static str, message: String, span: Option<Span>) -> Finding {
        Finding {
            rule,
            severity: Severity::Deny,
            message,
            span,
        }
    }
}

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Deny,
    Warn,
    Info,
}

/// A 1-based source position; the column counts characters, not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Span {
    pub line: u64,
    pub column: u64,
}

/// SQL prepared for the audit log: `text` has every literal replaced by `?` (`None` when the SQL cannot be
/// parsed), `sha256` and `len` (bytes) describe the original.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Redacted {
    pub text: Option<String>,
    pub sha256: String,
    pub len: usize,
}

impl Redacted {
    /// Hash and length only: what is stored when the SQL cannot be parsed.
    pub(crate) fn failed(sql: &str) -> Redacted {
        Redacted {
            text: None,
            sha256: hex::encode(Sha256::digest(sql.as_bytes())),
            len: sql.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    #[test]
    fn verdicts_serialize_for_agents_and_audit() {
        let verdict = crate::govern("SELECT 1", crate::Dialect::DuckDb, &crate::Policy::default(), 10);
        let json = serde_json::to_value(&verdict).unwrap_or_default();
        let expected = serde_json::json!({
            "decision": {"kind": "allow", "sql": "SELECT 1 LIMIT 10", "rewritten": true, "statement": "query", "limit_applied": 10},
            "findings": [{
                "rule": "row_limit",
                "severity": "info",
                "message": "At most 10 rows are returned. Aggregate, filter or page (ORDER BY … LIMIT/OFFSET) to see the rest.",
                "span": null
            }]
        });
        assert_eq!(json, expected);

        let refused = crate::govern(
            "SELECT pg_sleep(1)",
            crate::Dialect::PostgreSql,
            &crate::Policy::default(),
            10,
        );
        let json = serde_json::to_value(&refused).unwrap_or_default();
        assert_eq!(json["decision"], serde_json::json!({"kind": "deny"}));
        assert_eq!(json["findings"][0]["rule"], "denied_function");
        assert_eq!(
            json["findings"][0]["span"],
            serde_json::json!({"line": 1, "column": 8})
        );
        assert!(refused.denial().is_some() && !refused.is_allowed());
    }
}
