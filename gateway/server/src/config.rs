//! Configuration: defaults < TOML file < `SLUICE_*` environment < command-line flags.
//!
//! The CLI (clap, with `env` fallbacks) produces [`Overrides`]; [`Settings::resolve`] lays them over the
//! file. Everything the gateway reads at run time is in [`Settings`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::GatewayError;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3300";
pub const DEFAULT_DATA_DIR: &str = ".sluice";

/// The TOML file's shape. Unknown keys are errors, so a typo never silently falls back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub server: ServerSection,
    pub limits: LimitsSection,
    pub audit: AuditSection,
    pub duckdb: DuckDbSection,
    pub connections: Vec<ConnectionConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Host names accepted in the `Host` header (DNS-rebinding protection). Default: loopback names.
    pub allowed_hosts: Option<Vec<String>>,
    /// Browser origins accepted in the `Origin` header. Default: loopback origins.
    pub allowed_origins: Option<Vec<String>>,
    /// Serve without MCP sessions (every request stands alone, JSON responses).
    pub stateless: Option<bool>,
    pub max_request_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// The most rows any query may return, whatever `row_limit` asks for.
    pub max_rows: Option<u64>,
    /// Server-side statement timeout.
    pub query_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Fail a call whose audit record cannot be written (default true).
    pub strict: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DuckDbSection {
    /// Release a DuckDB file this long after its last call (0 = after every call).
    pub release_after_idle_ms: Option<u64>,
    pub threads: Option<u16>,
    pub max_memory: Option<String>,
}

/// A connection defined in the config file. These are loaded at start and cannot be shadowed by stored
/// connections of the same name.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    pub name: String,
    pub kind: String,
    pub dsn: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub max_rows: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Governance policy for this connection: denied/allowed tables, schemas, columns and functions.
    #[serde(default)]
    pub policy: sluice_governance::Policy,
}

/// Values from flags and `SLUICE_*` variables (clap resolves flag > env); `None` = not given.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_rows: Option<u64>,
    pub query_timeout_ms: Option<u64>,
    pub stateless: Option<bool>,
    pub allowed_hosts: Option<Vec<String>>,
    pub master_key: Option<String>,
}

/// Everything resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: String,
    pub data_dir: PathBuf,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub stateless: bool,
    pub max_request_bytes: usize,
    pub max_rows: u64,
    pub query_timeout: Duration,
    pub audit_strict: bool,
    pub duckdb_release_after_idle: Duration,
    pub duckdb_threads: Option<u16>,
    pub duckdb_max_memory: Option<String>,
    pub connections: Vec<ConnectionConfig>,
    /// Never printed: `Settings` derives Debug, so the key is wrapped.
    pub master_key: Option<crate::secrets::Secret<String>>,
}

pub const DEFAULT_MAX_ROWS: u64 = 10_000;
pub const DEFAULT_ROW_LIMIT: u64 = 1_000;
pub const DEFAULT_QUERY_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;

fn loopback_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "::1", "[::1]"]
        .map(str::to_owned)
        .to_vec()
}

fn loopback_origins() -> Vec<String> {
    [
        "http://localhost:*",
        "http://127.0.0.1:*",
        "http://[::1]:*",
        "https://localhost:*",
        "https://127.0.0.1:*",
    ]
    .map(str::to_owned)
    .to_vec()
}

impl Settings {
    /// Reads the config file (when given) and lays the overrides over it.
    pub fn resolve(overrides: Overrides) -> Result<Settings, GatewayError> {
        let file = match &overrides.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let listen = overrides
            .listen
            .or(file.server.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        listen.parse::<SocketAddr>().map_err(|_| {
            GatewayError::Config(format!(
                "listen address '{listen}' is not host:port (e.g. 127.0.0.1:3300)"
            ))
        })?;
        let max_rows = overrides
            .max_rows
            .or(file.limits.max_rows)
            .unwrap_or(DEFAULT_MAX_ROWS);
        if max_rows == 0 {
            return Err(GatewayError::Config("max_rows must be at least 1".to_owned()));
        }
        let timeout_ms = overrides
            .query_timeout_ms
            .or(file.limits.query_timeout_ms)
            .unwrap_or(DEFAULT_QUERY_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(GatewayError::Config(
                "query_timeout_ms must be at least 1".to_owned(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for c in &file.connections {
            if !names.insert(c.name.as_str()) {
                return Err(GatewayError::Config(format!(
                    "connection '{}' is defined twice in the config",
                    c.name
                )));
            }
        }
        Ok(Settings {
            listen,
            data_dir: overrides
                .data_dir
                .or(file.server.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            allowed_hosts: overrides
                .allowed_hosts
                .or(file.server.allowed_hosts)
                .unwrap_or_else(loopback_hosts),
            allowed_origins: file.server.allowed_origins.unwrap_or_else(loopback_origins),
            stateless: overrides.stateless.or(file.server.stateless).unwrap_or(false),
            max_request_bytes: file.server.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
            max_rows,
            query_timeout: Duration::from_millis(timeout_ms),
            audit_strict: file.audit.strict.unwrap_or(true),
            duckdb_release_after_idle: Duration::from_millis(
                file.duckdb.release_after_idle_ms.unwrap_or(1_000),
            ),
            duckdb_threads: file.duckdb.threads,
            duckdb_max_memory: file.duckdb.max_memory,
            connections: file.connections,
            master_key: overrides.master_key.map(crate::secrets::Secret::new),
        })
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("sluice.db")
    }

    pub fn key_file(&self) -> PathBuf {
        self.data_dir.join("local_api_key")
    }

    pub fn demo_path(&self) -> PathBuf {
        self.data_dir.join("demo.duckdb")
    }
}

fn load_file(path: &Path) -> Result<FileConfig, GatewayError> {
    let text = std::fs::read_to_string(path).map_err(|e| GatewayError::io(path, e))?;
    toml::from_str(&text).map_err(|e| GatewayError::Config(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn defaults() {
        let s = Settings::resolve(Overrides::default()).unwrap();
        assert_eq!(s.listen, "127.0.0.1:3300");
        assert_eq!(s.max_rows, 10_000);
        assert_eq!(s.data_dir, PathBuf::from(".sluice"));
        assert!(s.audit_strict && !s.stateless);
    }

    #[test]
    fn flags_beat_file() {
        let (_dir, path) = write("[server]\nlisten = \"127.0.0.1:4000\"\n[limits]\nmax_rows = 50\n");
        let s = Settings::resolve(Overrides {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((s.listen.as_str(), s.max_rows), ("127.0.0.1:4000", 50));
        let s = Settings::resolve(Overrides {
            config: Some(path),
            listen: Some("127.0.0.1:5000".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((s.listen.as_str(), s.max_rows), ("127.0.0.1:5000", 50));
    }

    #[test]
    fn connection_policies_are_read_and_typos_refused() {
        let (_dir, path) = write(
            "[[connections]]\nname='a'\nkind='duckdb'\ndsn='x'\n[connections.policy]\ndenied_tables = ['hr.salaries']\n",
        );
        let s = Settings::resolve(Overrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            s.connections[0].policy.denied_tables,
            vec!["hr.salaries".to_owned()]
        );
        // A misspelt policy key must not silently leave a table unprotected.
        let (_dir, path) = write(
            "[[connections]]\nname='a'\nkind='duckdb'\ndsn='x'\n[connections.policy]\ndenied_table = ['hr.salaries']\n",
        );
        let err = Settings::resolve(Overrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `denied_table`"), "{err}");
    }

    #[test]
    fn bad_files_say_why() {
        let (_dir, path) = write("[server]\nlisen = \"x\"\n");
        let err = Settings::resolve(Overrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `lisen`"), "{err}");
        let (_dir, path) = write(
            "[[connections]]\nname='a'\nkind='duckdb'\ndsn='x'\n[[connections]]\nname='a'\nkind='duckdb'\ndsn='y'\n",
        );
        let err = Settings::resolve(Overrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("defined twice"), "{err}");
        let err = Settings::resolve(Overrides {
            listen: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("not host:port"), "{err}");
    }
}
