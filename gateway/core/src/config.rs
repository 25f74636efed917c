//! Configuration: defaults < TOML file < `SLUICE_*` environment < command-line flags.
//!
//! The CLI (clap, with `env` fallbacks) produces [`Overrides`]; [`Settings::resolve`] lays them over the
//! file. Everything the gateway reads at run time is in [`Settings`], whose `Display` (`sluice config
//! show`) is in `show.rs`.
//!
//! Secrets are typed from the moment they are read: a DSN is a [`Dsn`] as soon as the TOML is parsed and
//! the master key a [`Secret`] as soon as the environment is read, so `Debug` and `Display` of any of these
//! structs cannot print them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sluice_connectors::Dsn;

use crate::error::GatewayError;
use crate::secrets::Secret;

mod connection_hosts;
pub mod oauth;
mod rate_limits;
mod sandbox;
mod show;

pub use connection_hosts::ConnectionHostsSection;
pub use rate_limits::{LockoutPolicy, Rate, RateLimitSettings, RateLimitsSection};
pub use sandbox::{
    DEFAULT_SANDBOX_IMAGE_BYTES, DEFAULT_SANDBOX_IMAGES_TOTAL_BYTES, DEFAULT_SANDBOX_MAX_TIMEOUT_SECS,
    DEFAULT_SANDBOX_OUTPUT_BYTES, SandboxSection, SandboxSettings,
};

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
    pub budgets: BudgetsSection,
    pub rate_limits: RateLimitsSection,
    pub connection_hosts: ConnectionHostsSection,
    pub oauth: oauth::OAuthSection,
    pub sandbox: SandboxSection,
    pub connections: Vec<ConnectionConfig>,
    pub projects: Vec<ProjectConfig>,
    pub dbt: DbtSection,
    pub store: StoreSection,
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
    /// An MCP session with no request for this long ends: its sandbox workspaces and cursors go with it.
    pub session_idle_secs: Option<u64>,
    /// Only these tools are offered (every tool when absent).
    pub tools: Option<Vec<String>>,
    /// These tools are not offered.
    pub disabled_tools: Option<Vec<String>>,
    /// `serve`: when the store holds no usable API key, create the admin key and write it to this file
    /// (mode 0600); only the path is logged. For deployments (`SLUICE_FIRST_KEY_FILE`).
    pub first_key_file: Option<PathBuf>,
    /// Serve Prometheus metrics (`GET /metrics`, no key) on this address, e.g. `127.0.0.1:9300`; keep it
    /// private. Not set: no metrics listener.
    pub metrics_listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// The most rows any query may return, whatever `row_limit` asks for.
    pub max_rows: Option<u64>,
    /// Server-side statement timeout.
    pub query_timeout_ms: Option<u64>,
    /// The most bytes of row data (as JSON) one `query_database` page carries; the rest is paged.
    pub max_result_bytes: Option<u64>,
    /// How long an unused result cursor is kept, in seconds.
    pub cursor_ttl_secs: Option<u64>,
    /// The most result cursors kept at once (all sessions).
    pub max_cursors: Option<usize>,
    /// The most bytes of row data kept for cursors at once (all sessions).
    pub max_cursor_bytes: Option<u64>,
    /// How long a connection's schema snapshot is reused before the schema tools introspect again
    /// (default 5 minutes; 0 = introspect on every call).
    pub schema_cache_ttl_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Fail a call whose audit record cannot be written (default true).
    pub strict: Option<bool>,
    /// Also append every audit record, as one JSON line, to this file (for a SIEM); relative to the config
    /// file.
    pub stream_file: Option<PathBuf>,
    /// Rotate the stream file at about this size (default 100 MiB).
    pub stream_rotate_bytes: Option<u64>,
    /// Rotated stream files kept (default 5).
    pub stream_keep: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DuckDbSection {
    /// Release a DuckDB file this long after its last call (0 = after every call): its worker processes
    /// are ended then.
    pub release_after_idle_ms: Option<u64>,
    /// DuckDB threads per worker process (default: the machine's cores shared among the workers, 1 to 8).
    pub threads: Option<u16>,
    /// DuckDB's buffer-manager cap per worker, in DuckDB's syntax (default: half of `worker_memory`).
    pub max_memory: Option<String>,
    /// Worker processes per DuckDB connection, each running one statement at a time (default 2).
    pub workers: Option<u16>,
    /// The address space one worker process may use, e.g. `"2GiB"` (default 2 GiB, at least 256 MiB): a
    /// statement that needs more fails with a memory-limit error. Per connection at most `workers` times
    /// this.
    pub worker_memory: Option<String>,
}

/// Per-key daily budgets for governed queries; an absent limit is unlimited. `keys` overrides the limits
/// for keys by name (`[budgets.keys.ci-bot]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetsSection {
    pub queries_per_day: Option<u64>,
    pub rows_per_day: Option<u64>,
    pub bytes_per_day: Option<u64>,
    pub seconds_per_day: Option<u64>,
    pub keys: std::collections::BTreeMap<String, BudgetLimits>,
}

/// What one key may spend per UTC day; `None` = unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetLimits {
    pub queries_per_day: Option<u64>,
    pub rows_per_day: Option<u64>,
    pub bytes_per_day: Option<u64>,
    pub seconds_per_day: Option<u64>,
}

impl BudgetsSection {
    /// The limits that apply to the key named `key_name`: its own entry, else the section's.
    pub fn limits_for(&self, key_name: &str) -> BudgetLimits {
        self.keys.get(key_name).copied().unwrap_or(BudgetLimits {
            queries_per_day: self.queries_per_day,
            rows_per_day: self.rows_per_day,
            bytes_per_day: self.bytes_per_day,
            seconds_per_day: self.seconds_per_day,
        })
    }
}

/// A connection defined in the config file. These are loaded at start and cannot be shadowed by stored
/// connections of the same name.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    pub name: String,
    pub kind: String,
    /// Redacted in `Debug` and `Display`; only the registry exposes it, to open the warehouse.
    pub dsn: Dsn,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub max_rows: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Governance policy for this connection: denied/allowed tables, schemas, columns and functions.
    #[serde(default)]
    pub policy: sluice_governance::Policy,
    /// Most pooled sessions to the server (PostgreSQL, MySQL/MariaDB, SQLite).
    #[serde(default)]
    pub pool_size: Option<u32>,
    /// Idle pooled sessions are closed after this long.
    #[serde(default)]
    pub pool_idle_timeout_ms: Option<u64>,
    /// How long a call waits for a pooled session before failing.
    #[serde(default)]
    pub pool_acquire_timeout_ms: Option<u64>,
}

/// A dbt project defined in the config file. Like connections, these win over stored projects of the
/// same name. A relative `dir` is relative to the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub name: String,
    /// The directory holding `dbt_project.yml`.
    pub dir: PathBuf,
    /// The connection holding the warehouse this project builds (for the verification tools).
    #[serde(default)]
    pub connection: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// dbt settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbtSection {
    /// Directories under which any dbt project may be named by its path (`project_dir`), besides the
    /// registered projects. A relative path is relative to the config file.
    pub project_roots: Vec<PathBuf>,
    /// The dbt executable `dbt_project_validate` runs `dbt parse` with before reading the artifacts. Unset:
    /// dbt is never run and the artifacts are read as found. A bare name is looked up on `PATH`; a
    /// relative path is relative to the config file.
    pub binary: Option<PathBuf>,
    /// How long `dbt parse` may run before its process group is killed.
    pub parse_timeout_secs: Option<u64>,
}

pub const DEFAULT_DBT_PARSE_TIMEOUT_SECS: u64 = 120;

/// Where the store lives.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `postgres://user@host:5432/database` keeps the store in PostgreSQL (for teams, and for several
    /// gateway instances sharing one store); absent, the store is SQLite at `<data_dir>/sluice.db`.
    /// `SLUICE_STORE_URL` overrides it.
    pub url: Option<String>,
    /// A file holding the PostgreSQL password (e.g. a compose or Kubernetes secret), so that the URL
    /// carries none. `SLUICE_STORE_PASSWORD_FILE` overrides it. Relative to the config file.
    pub password_file: Option<PathBuf>,
    /// Connections to PostgreSQL this gateway keeps at most (default 10).
    pub max_connections: Option<u32>,
}

pub const DEFAULT_STORE_MAX_CONNECTIONS: u32 = 10;

/// The store the settings name.
#[derive(Clone, Debug)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Postgres {
        /// Redacted whenever shown.
        url: Dsn,
        /// From `password_file`, when given.
        password: Option<Secret<String>>,
        password_file: Option<PathBuf>,
        max_connections: u32,
    },
}

impl StoreLocation {
    /// How the store is named in logs and `config show`, without secrets.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Sqlite(path) => format!("sqlite {}", path.display()),
            StoreLocation::Postgres { url, .. } => format!("postgres {url}"),
        }
    }
}

/// Reads a secret from a file (a compose secret, say): trailing newlines are not part of it.
pub fn read_secret_file(path: &Path, what: &str) -> Result<Secret<String>, GatewayError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        GatewayError::Config(format!("{what} file {} could not be read: {e}", path.display()))
    })?;
    let value = text.trim_end_matches(['\n', '\r']).to_owned();
    if value.is_empty() {
        return Err(GatewayError::Config(format!(
            "{what} file {} is empty",
            path.display()
        )));
    }
    Ok(Secret::new(value))
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
    /// `SLUICE_MASTER_KEY`, wrapped where the environment is read.
    pub master_key: Option<Secret<String>>,
    /// `SLUICE_MASTER_KEY_PREVIOUS`: the key being rotated away from (`sluice secrets rotate`).
    pub master_key_previous: Option<Secret<String>>,
    /// Overrides `[sandbox] enabled`.
    pub sandbox: Option<bool>,
    /// `SLUICE_STORE_URL`, overriding `[store] url`.
    pub store_url: Option<Dsn>,
    /// `SLUICE_STORE_PASSWORD_FILE`, overriding `[store] password_file`.
    pub store_password_file: Option<PathBuf>,
    /// `SLUICE_FIRST_KEY_FILE`, overriding `[server] first_key_file`.
    pub first_key_file: Option<PathBuf>,
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
    /// How long an MCP session may stay idle before it ends.
    pub session_idle: Duration,
    /// The tools this gateway offers (`[server] tools`; `None`: all), less `disabled_tools`. The names are
    /// checked against the catalogue when the gateway starts.
    pub tools: Option<Vec<String>>,
    pub disabled_tools: Vec<String>,
    pub max_rows: u64,
    pub query_timeout: Duration,
    pub audit_strict: bool,
    /// `[audit] stream_file`: the JSON-lines copy of the audit log.
    pub audit_stream: Option<crate::store::audit_stream::StreamSettings>,
    pub duckdb_release_after_idle: Duration,
    pub duckdb_threads: Option<u16>,
    pub duckdb_max_memory: Option<String>,
    /// `[duckdb] workers`: worker processes per DuckDB connection.
    pub duckdb_workers: usize,
    /// `[duckdb] worker_memory` in bytes: the address-space limit of each worker process.
    pub duckdb_worker_memory: u64,
    /// How long the schema tools reuse a connection's schema snapshot.
    pub schema_cache_ttl: Duration,
    pub connections: Vec<ConnectionConfig>,
    /// dbt projects from the config file, directories made absolute.
    pub projects: Vec<ProjectConfig>,
    /// Where any dbt project may be named by path (see [`DbtSection`]).
    pub dbt_project_roots: Vec<PathBuf>,
    /// The dbt executable for `dbt parse` (see [`DbtSection::binary`]); `None` = never run dbt.
    pub dbt_binary: Option<PathBuf>,
    pub dbt_parse_timeout: Duration,
    pub sandbox: SandboxSettings,
    pub max_result_bytes: u64,
    pub cursor_ttl: Duration,
    pub max_cursors: usize,
    pub max_cursor_bytes: u64,
    pub budgets: BudgetsSection,
    /// `[rate_limits]`: per key, org and client address, and the auth-failure lockout.
    pub rate_limits: RateLimitSettings,
    /// `[connection_hosts]`: the hosts PostgreSQL and MySQL connections may reach.
    pub connection_hosts: sluice_connectors::hosts::HostPolicy,
    /// `[oauth]`: JWT access tokens from an OAuth 2.1 issuer beside API keys; `None` = API keys only.
    pub oauth: Option<oauth::OAuthSettings>,
    /// Never printed: `Settings` derives Debug, so the key is wrapped.
    pub master_key: Option<Secret<String>>,
    /// The previous master key while rotating; else `<data>/master.key.previous` if present.
    pub master_key_previous: Option<Secret<String>>,
    pub store: StoreLocation,
    /// See [`ServerSection::first_key_file`].
    pub first_key_file: Option<PathBuf>,
    /// See [`ServerSection::metrics_listen`].
    pub metrics_listen: Option<SocketAddr>,
}

pub const DEFAULT_MAX_ROWS: u64 = 10_000;
pub const DEFAULT_ROW_LIMIT: u64 = 1_000;
pub const DEFAULT_QUERY_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;
/// rmcp's own default keep-alive for an idle MCP session.
pub const DEFAULT_SESSION_IDLE_SECS: u64 = 300;
/// Row data per page. Claude Code refuses tool outputs over ~25,000 tokens; a page of 40 KB of JSON rows
/// plus its text rendering (at most 24,000 characters) stays near 16,000 tokens.
pub const DEFAULT_MAX_RESULT_BYTES: u64 = 40_000;
pub const DEFAULT_CURSOR_TTL_SECS: u64 = 600;
pub const DEFAULT_MAX_CURSORS: usize = 256;
pub const DEFAULT_MAX_CURSOR_BYTES: u64 = 256 * 1024 * 1024;
pub const DEFAULT_SCHEMA_CACHE_TTL_MS: u64 = 5 * 60 * 1000;

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

/// The store from `[store]` and its overrides: PostgreSQL for a `postgres://` URL, SQLite for a
/// `sqlite://` one or none.
fn store_location(
    url: Option<Dsn>,
    password_file: Option<PathBuf>,
    max_connections: Option<u32>,
    data_dir: &Path,
) -> Result<StoreLocation, GatewayError> {
    let Some(url) = url.filter(|u| !u.expose().trim().is_empty()) else {
        if password_file.is_some() {
            return Err(GatewayError::Config(
                "[store] password_file is set but no PostgreSQL [store] url is".to_owned(),
            ));
        }
        return Ok(StoreLocation::Sqlite(data_dir.join("sluice.db")));
    };
    let text = url.expose().trim();
    if let Some(path) = text.strip_prefix("sqlite://") {
        return Ok(StoreLocation::Sqlite(PathBuf::from(path)));
    }
    if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
        return Err(GatewayError::Config(format!(
            "[store] url '{url}' is neither postgres://user@host:port/database nor sqlite://path"
        )));
    }
    let password = password_file
        .as_deref()
        .map(|p| read_secret_file(p, "the store password"))
        .transpose()?;
    let max_connections = max_connections.unwrap_or(DEFAULT_STORE_MAX_CONNECTIONS);
    if max_connections < 2 {
        return Err(GatewayError::Config(
            "[store] max_connections must be at least 2 (the audit writer keeps one)".to_owned(),
        ));
    }
    Ok(StoreLocation::Postgres {
        url,
        password,
        password_file,
        max_connections,
    })
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
        let metrics_listen = match &file.server.metrics_listen {
            None => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                GatewayError::Config(format!(
                    "[server] metrics_listen '{text}' is not host:port (e.g. 127.0.0.1:9300)"
                ))
            })?),
        };
        let audit_stream = match &file.audit.stream_file {
            None => None,
            Some(path) => {
                let rotate_bytes = file.audit.stream_rotate_bytes.unwrap_or(100 << 20);
                if rotate_bytes < 4_096 {
                    return Err(GatewayError::Config(
                        "[audit] stream_rotate_bytes must be at least 4096".to_owned(),
                    ));
                }
                let config_dir = overrides
                    .config
                    .as_deref()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                Some(crate::store::audit_stream::StreamSettings {
                    path: config_dir.join(path),
                    rotate_bytes,
                    keep: file.audit.stream_keep.unwrap_or(5),
                })
            }
        };
        let session_idle_secs = file.server.session_idle_secs.unwrap_or(DEFAULT_SESSION_IDLE_SECS);
        if session_idle_secs == 0 {
            return Err(GatewayError::Config(
                "[server] session_idle_secs must be at least 1".to_owned(),
            ));
        }
        let max_result_bytes = file.limits.max_result_bytes.unwrap_or(DEFAULT_MAX_RESULT_BYTES);
        if max_result_bytes < 1_024 {
            return Err(GatewayError::Config(
                "max_result_bytes must be at least 1024".to_owned(),
            ));
        }
        let duckdb_workers = usize::from(
            file.duckdb
                .workers
                .unwrap_or(sluice_connectors::duckdb::DEFAULT_WORKERS as u16),
        );
        if duckdb_workers == 0 {
            return Err(GatewayError::Config(
                "[duckdb] workers must be at least 1".to_owned(),
            ));
        }
        let duckdb_worker_memory = match &file.duckdb.worker_memory {
            None => sluice_connectors::duckdb::DEFAULT_WORKER_MEMORY,
            Some(text) => sluice_connectors::duckdb::parse_memory(text)
                .map_err(|e| GatewayError::Config(format!("[duckdb] worker_memory: {e}")))?,
        };
        if duckdb_worker_memory < sluice_connectors::duckdb::MIN_WORKER_MEMORY {
            return Err(GatewayError::Config(format!(
                "[duckdb] worker_memory must be at least {}: a worker needs that much address space to map \
                 its binary, threads and DuckDB itself",
                sluice_connectors::duckdb::human_bytes(sluice_connectors::duckdb::MIN_WORKER_MEMORY)
            )));
        }
        let mut names = std::collections::BTreeSet::new();
        for c in &file.connections {
            if c.pool_size == Some(0) {
                return Err(GatewayError::Config(format!(
                    "connection '{}': pool_size must be at least 1",
                    c.name
                )));
            }
            if !names.insert(c.name.as_str()) {
                return Err(GatewayError::Config(format!(
                    "connection '{}' is defined twice in the config",
                    c.name
                )));
            }
        }
        // Relative project paths are the config file's, not the gateway's working directory's.
        let config_dir = overrides
            .config
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut project_names = std::collections::BTreeSet::new();
        let mut projects = file.projects;
        for p in &mut projects {
            if !project_names.insert(p.name.clone()) {
                return Err(GatewayError::Config(format!(
                    "project '{}' is defined twice in the config",
                    p.name
                )));
            }
            p.dir = config_dir.join(&p.dir);
        }
        let dbt_project_roots = file
            .dbt
            .project_roots
            .iter()
            .map(|r| config_dir.join(r))
            .collect();
        let dbt_binary = file.dbt.binary.as_ref().map(|b| {
            // `dbt` alone means the one on PATH; anything with a directory part is a path.
            if b.components().count() == 1 && !b.as_os_str().to_string_lossy().contains('/') {
                b.clone()
            } else {
                config_dir.join(b)
            }
        });
        if file.dbt.binary.as_ref().is_some_and(|b| b.as_os_str().is_empty()) {
            return Err(GatewayError::Config(
                "[dbt] binary is empty: give the dbt executable's path, or leave it out".to_owned(),
            ));
        }
        let dbt_parse_timeout_secs = file
            .dbt
            .parse_timeout_secs
            .unwrap_or(DEFAULT_DBT_PARSE_TIMEOUT_SECS);
        if dbt_parse_timeout_secs == 0 {
            return Err(GatewayError::Config(
                "[dbt] parse_timeout_secs must be at least 1".to_owned(),
            ));
        }
        let data_dir = overrides
            .data_dir
            .or(file.server.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let store = store_location(
            overrides.store_url.or(file.store.url.map(Dsn::new)),
            overrides
                .store_password_file
                .or(file.store.password_file.map(|p| config_dir.join(p))),
            file.store.max_connections,
            &data_dir,
        )?;
        Ok(Settings {
            listen,
            data_dir,
            allowed_hosts: overrides
                .allowed_hosts
                .or(file.server.allowed_hosts)
                .unwrap_or_else(loopback_hosts),
            allowed_origins: file.server.allowed_origins.unwrap_or_else(loopback_origins),
            stateless: overrides.stateless.or(file.server.stateless).unwrap_or(false),
            max_request_bytes: file.server.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
            session_idle: Duration::from_secs(session_idle_secs),
            tools: file.server.tools,
            disabled_tools: file.server.disabled_tools.unwrap_or_default(),
            max_rows,
            query_timeout: Duration::from_millis(timeout_ms),
            audit_strict: file.audit.strict.unwrap_or(true),
            audit_stream,
            duckdb_release_after_idle: Duration::from_millis(
                file.duckdb.release_after_idle_ms.unwrap_or(1_000),
            ),
            duckdb_threads: file.duckdb.threads,
            duckdb_max_memory: file.duckdb.max_memory,
            duckdb_workers,
            duckdb_worker_memory,
            schema_cache_ttl: Duration::from_millis(
                file.limits
                    .schema_cache_ttl_ms
                    .unwrap_or(DEFAULT_SCHEMA_CACHE_TTL_MS),
            ),
            connections: file.connections,
            projects,
            dbt_project_roots,
            dbt_binary,
            dbt_parse_timeout: Duration::from_secs(dbt_parse_timeout_secs),
            sandbox: {
                let mut sandbox = file.sandbox.resolve()?;
                sandbox.enabled = overrides.sandbox.unwrap_or(sandbox.enabled);
                sandbox
            },
            max_result_bytes,
            cursor_ttl: Duration::from_secs(
                file.limits
                    .cursor_ttl_secs
                    .unwrap_or(DEFAULT_CURSOR_TTL_SECS)
                    .max(1),
            ),
            max_cursors: file.limits.max_cursors.unwrap_or(DEFAULT_MAX_CURSORS),
            max_cursor_bytes: file.limits.max_cursor_bytes.unwrap_or(DEFAULT_MAX_CURSOR_BYTES),
            budgets: file.budgets,
            rate_limits: file.rate_limits.resolve()?,
            connection_hosts: file.connection_hosts.resolve()?,
            oauth: file.oauth.resolve()?,
            master_key: overrides.master_key,
            master_key_previous: overrides.master_key_previous,
            store,
            first_key_file: overrides
                .first_key_file
                .or(file.server.first_key_file.map(|p| config_dir.join(p))),
            metrics_listen,
        })
    }

    pub fn key_file(&self) -> PathBuf {
        self.data_dir.join("local_api_key")
    }

    pub fn demo_path(&self) -> PathBuf {
        self.data_dir.join("demo.duckdb")
    }

    /// Where `sluice up` has the sandbox daemon bind its socket.
    pub fn sandbox_socket(&self) -> PathBuf {
        self.sandbox
            .socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sandbox.sock"))
    }
}

/// Names of connections and projects appear in tool calls, URIs and logs: 1-64 letters, digits, `_` or
/// `-`, starting with a letter; otherwise an error naming `what` and the rule.
pub fn check_name(what: &str, name: &str) -> Result<(), GatewayError> {
    let ok = name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(GatewayError::Invalid(format!(
            "invalid {what} name '{name}': use 1-64 letters, digits, '_' or '-', starting with a letter"
        )))
    }
}

fn load_file(path: &Path) -> Result<FileConfig, GatewayError> {
    let text = std::fs::read_to_string(path).map_err(|e| GatewayError::io(path, e))?;
    toml::from_str(&text).map_err(|e| GatewayError::Config(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests;
