//! Findings: what an analysis noticed along the way (bad references, truncated searches, ambiguity).

use serde::Serialize;

use crate::snapshot::TableId;

/// How much a finding matters to the reader of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Context worth knowing (for example, that a search was cut short).
    Info,
    /// The result is usable but something in the input looked wrong or was skipped.
    Warning,
}

/// One observation with a stable code, so that callers and tests can match on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<TableId>,
}

impl Finding {
    pub(crate) fn warning(code: &'static str, table: Option<&TableId>, message: String) -> Finding {
        Finding {
            code,
            severity: Severity::Warning,
            message,
            table: table.cloned(),
        }
    }

    pub(crate) fn info(code: &'static str, table: Option<&TableId>, message: String) -> Finding {
        Finding {
            code,
            severity: Severity::Info,
            message,
            table: table.cloned(),
        }
    }
}
