//! Query results as Parquet, for the sandbox: the gateway writes a result as CSV, and an in-memory DuckDB
//! (not any user's warehouse) reads it with type detection and `COPY`s it to Parquet. That DuckDB runs in
//! a worker process of its own under the default worker memory limit, like every other DuckDB work: the
//! CSV holds what an agent's statement returned, and its detection and conversion allocate outside any
//! DuckDB memory cap.
//!
//! The CSV and Parquet files live in a fresh private directory under the system temp dir, created with
//! `create_dir` (so never an existing one an attacker prepared) and removed afterwards.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use duckdb::Connection;

use super::protocol::{Answer, Call};
use crate::ConnectorError;

/// A private temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, ConnectorError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "sluice-export-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| ConnectorError::Internal(format!("creating {}: {e}", dir.display())))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sql_path(path: &Path) -> String {
    path.display().to_string().replace('\'', "''")
}

/// Converts CSV with a header line (NULL as an empty unquoted field, `""` for an empty string) into a
/// Parquet file's bytes. Column types are detected from every row, as DuckDB's `read_csv` does. Blocking:
/// starts a DuckDB worker for the conversion and ends it afterwards.
pub fn csv_to_parquet(csv: &[u8]) -> Result<Vec<u8>, ConnectorError> {
    let call = Call::Export {
        csv: base64::engine::general_purpose::STANDARD.encode(csv),
    };
    match super::pool::run_once(&call, super::DEFAULT_WORKER_MEMORY)? {
        Answer::Parquet(bytes) => base64::engine::general_purpose::STANDARD
            .decode(bytes)
            .map_err(|e| ConnectorError::Internal(format!("the worker's Parquet is not base64: {e}"))),
        _ => Err(ConnectorError::Internal(
            "the DuckDB worker answered an export with something else".to_owned(),
        )),
    }
}

/// The conversion itself, in the worker.
pub(super) fn convert(csv: &[u8]) -> Result<Vec<u8>, ConnectorError> {
    let scratch = Scratch::new()?;
    let input = scratch.0.join("input.csv");
    let output = scratch.0.join("output.parquet");
    std::fs::write(&input, csv)
        .map_err(|e| ConnectorError::Internal(format!("writing {}: {e}", input.display())))?;
    let conn = Connection::open_in_memory().map_err(|e| ConnectorError::Internal(e.to_string()))?;
    let sql = format!(
        "COPY (SELECT * FROM read_csv('{}', header = true, auto_detect = true, sample_size = -1, \
         allow_quoted_nulls = false)) TO '{}' (FORMAT parquet)",
        sql_path(&input),
        sql_path(&output)
    );
    conn.execute_batch(&sql).map_err(|e| ConnectorError::Query {
        message: format!("converting the result to Parquet failed: {e}"),
    })?;
    drop(conn);
    std::fs::read(&output).map_err(|e| ConnectorError::Internal(format!("reading {}: {e}", output.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn types_nulls_and_empty_strings_survive() {
        let csv = "id,name,amount,day\n1,Ann,12.50,2024-01-02\n2,\"\",,2024-03-04\n3,,7,\n";
        // The conversion as the worker runs it (so that its scratch directory can be checked below) is
        // the same as through a worker (which needs the worker binary built beside this test).
        let bytes = convert(csv.as_bytes()).unwrap();
        if let Ok(through_worker) = csv_to_parquet(csv.as_bytes()) {
            assert_eq!(&through_worker[..4], b"PAR1");
        }
        assert_eq!(&bytes[..4], b"PAR1");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        std::fs::write(&path, &bytes).unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let types: Vec<String> = conn
            .prepare(&format!(
                "SELECT column_type FROM (DESCRIBE SELECT * FROM '{}')",
                path.display()
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(types, ["BIGINT", "VARCHAR", "DOUBLE", "DATE"]);
        let rows: Vec<(i64, Option<String>, Option<f64>)> = conn
            .prepare(&format!(
                "SELECT id, name, amount FROM '{}' ORDER BY id",
                path.display()
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rows,
            vec![
                (1, Some("Ann".to_owned()), Some(12.5)),
                (2, Some(String::new()), None),
                (3, None, Some(7.0)),
            ]
        );
        // The scratch directory is gone.
        let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("sluice-export-{}-", std::process::id()))
            })
            .collect();
        assert!(left.is_empty());
    }

    #[test]
    fn a_malformed_csv_says_so() {
        // Invalid UTF-8 is one thing DuckDB's lenient CSV reader refuses outright.
        let err = convert(b"\xff\xfe\x00bad,\n\x00\x01").unwrap_err().to_string();
        assert!(
            err.starts_with("converting the result to Parquet failed"),
            "{err}"
        );
    }
}
