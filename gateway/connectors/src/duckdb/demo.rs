//! The demo warehouse: a deterministic small retail dataset generated on first run.

use std::path::Path;

use duckdb::Connection;

use crate::ConnectorError;

/// The generator script; deterministic, so every install gets the same data.
pub const DEMO_SQL: &str = include_str!("demo.sql");

/// Creates the demo warehouse at `path`. Fails if the file already exists, so a user's data is never
/// overwritten. The file is written to a temporary name first and renamed, so a crash leaves no
/// half-built warehouse behind.
pub fn create(path: &Path) -> Result<(), ConnectorError> {
    if path.exists() {
        return Err(ConnectorError::Open {
            path: path.to_owned(),
            message: "refusing to overwrite an existing file with the demo warehouse".to_owned(),
        });
    }
    let tmp = path.with_extension("duckdb.partial");
    let _ = std::fs::remove_file(&tmp);
    let build = || -> Result<(), duckdb::Error> {
        let conn = Connection::open(&tmp)?;
        conn.execute_batch(DEMO_SQL)?;
        conn.execute_batch("CHECKPOINT")?;
        Ok(())
    };
    if let Err(e) = build() {
        let _ = std::fs::remove_file(&tmp);
        return Err(ConnectorError::Open {
            path: path.to_owned(),
            message: e.to_string(),
        });
    }
    let _ = std::fs::remove_file(tmp.with_extension("partial.wal"));
    std::fs::rename(&tmp, path).map_err(|e| ConnectorError::Open {
        path: path.to_owned(),
        message: e.to_string(),
    })
}
