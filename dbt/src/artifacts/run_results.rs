//! `run_results.json`: the outcome of the last `dbt build`, `run`, `test`, `seed` or `snapshot`.

use std::io::Read;

use serde::Deserialize;

use super::{ArtifactMetadata, nullable};
use crate::error::DbtError;

/// The results of one dbt invocation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunResults {
    /// Versions and time.
    #[serde(default)]
    pub metadata: ArtifactMetadata,
    /// One result per executed (or skipped) node.
    #[serde(default, deserialize_with = "nullable")]
    pub results: Vec<RunResult>,
    /// Seconds.
    #[serde(default, deserialize_with = "nullable")]
    pub elapsed_time: f64,
}

impl RunResults {
    /// Reads run results from a reader; `file` names it in errors.
    pub fn from_reader(reader: impl Read, file: &str) -> Result<Self, DbtError> {
        super::from_reader(reader, file, "run_results.json")
    }

    /// Reads run results from bytes; `file` names it in errors.
    pub fn from_slice(bytes: &[u8], file: &str) -> Result<Self, DbtError> {
        super::from_slice(bytes, file, "run_results.json")
    }
}

/// One node's outcome.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunResult {
    /// The node.
    #[serde(default, deserialize_with = "nullable")]
    pub unique_id: String,
    /// The raw status text.
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
    /// dbt's message: the error text, or `Got 3 results, configured to fail if != 0`.
    #[serde(default, deserialize_with = "nullable")]
    pub message: Option<String>,
    /// Failing rows, for tests.
    #[serde(default, deserialize_with = "nullable")]
    pub failures: Option<i64>,
    /// Seconds.
    #[serde(default, deserialize_with = "nullable")]
    pub execution_time: f64,
}

/// What a status means for the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `success`, `pass`, `no-op`.
    Ok,
    /// A test found rows with severity error.
    Failed,
    /// A test found rows with severity warn.
    Warned,
    /// A node raised an error (compile, database, runtime).
    Errored,
    /// Not run because something upstream failed.
    Skipped,
    /// A status this crate does not know.
    Other,
}

impl RunResult {
    /// The outcome, from dbt's status text (which differs between node types and versions).
    pub fn outcome(&self) -> Outcome {
        match self.status.to_ascii_lowercase().as_str() {
            "success" | "pass" | "no-op" | "partial success" => Outcome::Ok,
            "fail" => Outcome::Failed,
            "warn" => Outcome::Warned,
            "error" | "runtime error" => Outcome::Errored,
            "skipped" | "skip" => Outcome::Skipped,
            _ => Outcome::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn outcomes() {
        let cases = [
            ("success", Outcome::Ok),
            ("pass", Outcome::Ok),
            ("fail", Outcome::Failed),
            ("warn", Outcome::Warned),
            ("error", Outcome::Errored),
            ("runtime error", Outcome::Errored),
            ("skipped", Outcome::Skipped),
            ("weird", Outcome::Other),
        ];
        for (status, expected) in cases {
            let r = RunResult {
                status: status.into(),
                ..Default::default()
            };
            assert_eq!(r.outcome(), expected, "{status}");
        }
    }

    #[test]
    fn reads_results() {
        let json = r#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
          "results": [{"status": "fail", "unique_id": "test.p.t", "message": "Got 1 result", "failures": 1,
            "timing": [], "adapter_response": {}, "compiled_code": "select 1"}], "elapsed_time": 1.5, "args": {}}"#;
        let rr = RunResults::from_slice(json.as_bytes(), "run_results.json").expect("valid");
        assert_eq!(rr.results.len(), 1);
        assert_eq!(rr.results[0].outcome(), Outcome::Failed);
        assert_eq!(rr.results[0].failures, Some(1));
    }
}
