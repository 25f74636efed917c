//! The effective configuration as text (`sluice config show`): [`Settings`] printed in the config file's own
//! sections and keys, so that an operator can check what a gateway will run with, and every secret redacted.
//!
//! The output is itself a valid config file: unset options are comments, a DSN is its redacted form and the
//! master key is never written.

use std::fmt;
use std::path::{Path, PathBuf};

use sluice_connectors::{ConnectorKind, PoolOptions};

use super::{BudgetLimits, ConnectionConfig, ProjectConfig, Settings};

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Lines { f };
        out.comment("The effective configuration: defaults < config file < SLUICE_* environment < flags.")?;
        // The key's text is never formatted here, not even through its redacting wrapper: only its source.
        match &self.master_key {
            Some(_) => {
                out.comment("master key: from SLUICE_MASTER_KEY or SLUICE_MASTER_KEY_FILE (not shown)")?
            }
            None => out.comment(&format!(
                "master key: {} (created on first use)",
                self.data_dir.join("master.key").display()
            ))?,
        }
        if self.master_key_previous.is_some() {
            out.comment(
                "previous master key: from SLUICE_MASTER_KEY_PREVIOUS or SLUICE_MASTER_KEY_PREVIOUS_FILE (not shown)",
            )?;
        }

        out.section("server")?;
        out.set("listen", text(&self.listen))?;
        out.set("data_dir", path(&self.data_dir))?;
        out.set("allowed_hosts", texts(&self.allowed_hosts))?;
        out.set("allowed_origins", texts(&self.allowed_origins))?;
        out.set("stateless", self.stateless)?;
        out.set("max_request_bytes", self.max_request_bytes)?;
        out.set("session_idle_secs", self.session_idle.as_secs())?;
        if let Some(tools) = &self.tools {
            out.set("tools", texts(tools))?;
        }
        out.set("disabled_tools", texts(&self.disabled_tools))?;
        if let Some(file) = &self.first_key_file {
            out.set("first_key_file", path(file))?;
        }
        if let Some(addr) = &self.metrics_listen {
            out.set("metrics_listen", text(&addr.to_string()))?;
        }

        out.section("store")?;
        match &self.store {
            super::StoreLocation::Sqlite(file) => {
                out.set("url", text(&format!("sqlite://{}", file.display())))?;
            }
            super::StoreLocation::Postgres {
                url,
                password_file,
                max_connections,
                ..
            } => {
                // The URL through its redacting Display; a password file is named, never read out.
                out.set("url", text(&url.to_string()))?;
                if let Some(file) = password_file {
                    out.set("password_file", path(file))?;
                }
                out.set("max_connections", max_connections)?;
            }
        }

        out.section("limits")?;
        out.set("max_rows", self.max_rows)?;
        out.set("query_timeout_ms", self.query_timeout.as_millis())?;
        out.set("max_result_bytes", self.max_result_bytes)?;
        out.set("cursor_ttl_secs", self.cursor_ttl.as_secs())?;
        out.set("max_cursors", self.max_cursors)?;
        out.set("max_cursor_bytes", self.max_cursor_bytes)?;
        out.set("schema_cache_ttl_ms", self.schema_cache_ttl.as_millis())?;

        out.section("audit")?;
        out.set("strict", self.audit_strict)?;
        match &self.audit_stream {
            Some(stream) => {
                out.set("stream_file", path(&stream.path))?;
                out.set("stream_rotate_bytes", stream.rotate_bytes)?;
                out.set("stream_keep", stream.keep)?;
            }
            None => out.comment("stream_file = not set (the audit log is in the store only)")?,
        }

        out.section("duckdb")?;
        out.set(
            "release_after_idle_ms",
            self.duckdb_release_after_idle.as_millis(),
        )?;
        out.maybe(
            "threads",
            self.duckdb_threads,
            "the cores shared among the workers, 1 to 8",
        )?;
        out.maybe(
            "max_memory",
            self.duckdb_max_memory.as_deref().map(text),
            "half of worker_memory",
        )?;
        out.set("workers", self.duckdb_workers)?;
        out.set(
            "worker_memory",
            text(&sluice_connectors::duckdb::human_bytes(self.duckdb_worker_memory).replace(' ', "")),
        )?;

        out.section("budgets")?;
        let budgets = &self.budgets;
        out.budget(&BudgetLimits {
            queries_per_day: budgets.queries_per_day,
            rows_per_day: budgets.rows_per_day,
            bytes_per_day: budgets.bytes_per_day,
            seconds_per_day: budgets.seconds_per_day,
        })?;
        for (name, limits) in &budgets.keys {
            out.section(&format!("budgets.keys.{}", key(name)))?;
            out.budget(limits)?;
        }

        self.fmt_rate_limits(&mut out)?;
        self.fmt_connection_hosts(&mut out)?;
        match &self.oauth {
            Some(oauth) => out.f.write_str(&oauth.to_toml())?,
            None => out.comment("[oauth] not set: API keys only, no protected resource metadata")?,
        }
        self.fmt_sandbox(&mut out)?;

        out.section("dbt")?;
        out.set("project_roots", paths(&self.dbt_project_roots))?;
        out.maybe("binary", self.dbt_binary.as_deref().map(path), "dbt is never run")?;
        out.set("parse_timeout_secs", self.dbt_parse_timeout.as_secs())?;

        for c in &self.connections {
            out.connection(c)?;
        }
        for p in &self.projects {
            out.project(p)?;
        }
        Ok(())
    }
}

impl Settings {
    fn fmt_rate_limits(&self, out: &mut Lines<'_, '_>) -> fmt::Result {
        let r = &self.rate_limits;
        out.section("rate_limits")?;
        for (name, rate) in [("key", r.key), ("org", r.org), ("ip", r.ip)] {
            match rate {
                Some(rate) => {
                    out.set(&format!("{name}_per_minute"), rate.per_minute)?;
                    out.set(&format!("{name}_burst"), rate.burst)?;
                }
                None => out.set(&format!("{name}_per_minute"), "0 # unlimited")?,
            }
        }
        match r.lockout {
            Some(l) => {
                out.set("auth_failures", l.failures)?;
                out.set("lockout_secs", l.first.as_secs())?;
                out.set("max_lockout_secs", l.max.as_secs())?;
            }
            None => out.set("auth_failures", "0 # no lockout")?,
        }
        let proxies: Vec<String> = r.trusted_proxies.iter().map(ToString::to_string).collect();
        out.set("trusted_proxies", texts(&proxies))
    }

    fn fmt_connection_hosts(&self, out: &mut Lines<'_, '_>) -> fmt::Result {
        let printed = |rules: &[sluice_connectors::hosts::HostRule]| {
            rules.iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        out.section("connection_hosts")?;
        out.comment(
            "link-local, cloud metadata, unspecified, multicast and broadcast addresses: always refused",
        )?;
        let allow = self.connection_hosts.allow();
        if allow.is_empty() {
            out.comment("allow = not set (every other address)")?;
        } else {
            out.set("allow", texts(&printed(allow)))?;
        }
        out.set("deny", texts(&printed(self.connection_hosts.deny())))
    }

    fn fmt_sandbox(&self, out: &mut Lines<'_, '_>) -> fmt::Result {
        let s = &self.sandbox;
        out.section("sandbox")?;
        out.set("enabled", s.enabled)?;
        let socket = format!(
            "up: {}; serve: no sandbox",
            self.data_dir.join("sandbox.sock").display()
        );
        out.maybe("socket", s.socket.as_deref().map(path), &socket)?;
        out.maybe(
            "daemon",
            s.daemon.as_deref().map(path),
            "up: sluice-sandbox beside sluice",
        )?;
        let root = format!(
            "up: {}, or a temporary directory as root",
            self.data_dir.join("sandbox").display()
        );
        out.maybe("root", s.root.as_deref().map(path), &root)?;
        out.set("backend", text(&s.backend))?;
        out.set("allow_degraded", s.allow_degraded)?;
        out.maybe(
            "python",
            s.python.as_deref().map(path),
            "up: the setup script's venv",
        )?;
        out.maybe(
            "preload",
            s.preload.as_deref().map(texts),
            "up: numpy, pandas, pyarrow with the setup script's venv",
        )?;
        out.maybe("uid", s.uid, "up: 65534 when run as root")?;
        out.set("projects", texts(&s.projects))?;
        out.maybe("max_concurrency", s.max_concurrency, "the daemon's default")?;
        out.maybe("max_sessions", s.max_sessions, "the daemon's default")?;
        out.maybe("session_ttl_secs", s.session_ttl_secs, "the daemon's default")?;
        out.maybe("gvisor_idle_secs", s.gvisor_idle_secs, "the daemon's default")?;
        out.set("max_timeout_secs", s.max_timeout_secs)?;
        out.maybe("memory_mb", s.memory_mb, "the daemon's default")?;
        out.maybe("workspace_mb", s.workspace_mb, "the daemon's default")?;
        out.set("output_bytes", s.output_bytes)?;
        out.set("image_bytes", s.image_bytes)?;
        out.set("images_total_bytes", s.images_total_bytes)?;
        out.set("start_timeout_ms", s.start_timeout.as_millis())
    }
}

/// Writes `key = value` lines; an unset option becomes a comment saying what applies instead.
struct Lines<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
}

impl Lines<'_, '_> {
    fn comment(&mut self, text: &str) -> fmt::Result {
        writeln!(self.f, "# {text}")
    }

    fn section(&mut self, name: &str) -> fmt::Result {
        writeln!(self.f, "\n[{name}]")
    }

    fn set(&mut self, key: &str, value: impl fmt::Display) -> fmt::Result {
        writeln!(self.f, "{key} = {value}")
    }

    fn maybe(&mut self, key: &str, value: Option<impl fmt::Display>, unset: &str) -> fmt::Result {
        match value {
            Some(value) => self.set(key, value),
            None if unset.is_empty() => writeln!(self.f, "# {key} = not set"),
            None => writeln!(self.f, "# {key} = not set ({unset})"),
        }
    }

    fn budget(&mut self, limits: &BudgetLimits) -> fmt::Result {
        self.maybe("queries_per_day", limits.queries_per_day, "unlimited")?;
        self.maybe("rows_per_day", limits.rows_per_day, "unlimited")?;
        self.maybe("bytes_per_day", limits.bytes_per_day, "unlimited")?;
        self.maybe("seconds_per_day", limits.seconds_per_day, "unlimited")
    }

    fn connection(&mut self, c: &ConnectionConfig) -> fmt::Result {
        writeln!(self.f, "\n[[connections]]")?;
        self.set("name", text(&c.name))?;
        self.set("kind", text(&c.kind))?;
        // `Dsn`'s Display is its redacted form: the password and secret parameters are `***`.
        self.set("dsn", text(&c.dsn.to_string()))?;
        self.maybe("description", c.description.as_deref().map(text), "")?;
        self.maybe("max_rows", c.max_rows, "[limits] max_rows applies")?;
        self.maybe("timeout_ms", c.timeout_ms, "[limits] query_timeout_ms applies")?;
        // DuckDB has no pool; for the others, the pool the registry builds from these settings.
        if ConnectorKind::parse(&c.kind) != Some(ConnectorKind::DuckDb) {
            let pool = PoolOptions::with_overrides(
                c.pool_size,
                c.pool_idle_timeout_ms.map(std::time::Duration::from_millis),
                c.pool_acquire_timeout_ms.map(std::time::Duration::from_millis),
            );
            self.set("pool_size", pool.max_connections)?;
            self.set("pool_idle_timeout_ms", pool.idle_timeout.as_millis())?;
            self.set("pool_acquire_timeout_ms", pool.acquire_timeout.as_millis())?;
        }
        // The policy is printed through its own serialization, so that a new policy field shows up here
        // without a second list of field names to keep in step.
        let policy = toml::Table::try_from(&c.policy).map_err(|_| fmt::Error)?;
        let mut fields: Vec<_> = policy.iter().collect();
        fields.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in fields {
            self.set(&format!("policy.{}", key(name)), value)?;
        }
        Ok(())
    }

    fn project(&mut self, p: &ProjectConfig) -> fmt::Result {
        writeln!(self.f, "\n[[projects]]")?;
        self.set("name", text(&p.name))?;
        self.set("dir", path(&p.dir))?;
        self.maybe("connection", p.connection.as_deref().map(text), "")?;
        self.maybe("description", p.description.as_deref().map(text), "")
    }
}

/// A TOML string, quoted and escaped.
fn text(value: &str) -> toml::Value {
    toml::Value::String(value.to_owned())
}

/// A path as a TOML string; a path that is not UTF-8 is shown lossily (this output is for reading).
fn path(value: &Path) -> toml::Value {
    text(&value.to_string_lossy())
}

fn texts(values: &[String]) -> toml::Value {
    toml::Value::Array(values.iter().map(|v| text(v)).collect())
}

fn paths(values: &[PathBuf]) -> toml::Value {
    toml::Value::Array(values.iter().map(|v| path(v)).collect())
}

/// A table or key name: bare when TOML allows it, quoted otherwise.
fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        text(name).to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use pretty_assertions::assert_eq;

    use crate::config::{Overrides, Settings};
    use crate::secrets::Secret;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn resolve(path: PathBuf, master_key: Option<&str>) -> Settings {
        Settings::resolve(Overrides {
            config: Some(path),
            master_key: master_key.map(|k| Secret::new(k.to_owned())),
            ..Default::default()
        })
        .unwrap()
    }

    const SECRET_CONFIG: &str = r#"
[[connections]]
name = "sales"
kind = "postgres"
dsn = "postgres://u:hunter2@pg.internal/db"

[[connections]]
name = "shop"
kind = "mysql"
dsn = "mysql://app@mysql.internal:3306/shop?password=hunter3&ssl-mode=REQUIRED"

[store]
url = "postgres://sluice:hunter4@db.internal/sluice"
password_file = "store_password"
"#;

    const MASTER_KEY: &str = "bWFzdGVyLWtleS10ZXh0LXRoYXQtbXVzdC1uZXZlci1zaG93";

    #[test]
    fn settings_never_print_secrets() {
        let (dir, path) = write(SECRET_CONFIG);
        std::fs::write(dir.path().join("store_password"), "hunter5\n").unwrap();
        let settings = resolve(path, Some(MASTER_KEY));
        for (form, printed) in [
            ("Debug", format!("{settings:?}")),
            ("Display", settings.to_string()),
        ] {
            for secret in ["hunter2", "hunter3", "hunter4", "hunter5", MASTER_KEY] {
                assert!(!printed.contains(secret), "{form} shows {secret}:\n{printed}");
            }
            for shown in [
                "postgres://u:***@pg.internal/db",
                "password=***",
                "pg.internal",
                "mysql.internal:3306/shop",
                "postgres://sluice:***@db.internal/sluice",
                "sales",
                "shop",
            ] {
                assert!(printed.contains(shown), "{form} lacks {shown}:\n{printed}");
            }
        }
        // The plaintext is still there for the driver.
        assert_eq!(
            settings.connections[0].dsn.expose(),
            "postgres://u:hunter2@pg.internal/db"
        );
        assert_eq!(
            settings.master_key.as_ref().map(|k| k.expose().as_str()),
            Some(MASTER_KEY)
        );
    }

    /// While rotating, the previous master key is named by its source only, like the current one.
    #[test]
    fn the_previous_master_key_is_named_never_shown() {
        let (_dir, path) = write("");
        let previous = "cHJldmlvdXMta2V5LXRoYXQtbXVzdC1uZXZlci1zaG93";
        let settings = Settings::resolve(Overrides {
            config: Some(path),
            master_key: Some(Secret::new(MASTER_KEY.to_owned())),
            master_key_previous: Some(Secret::new(previous.to_owned())),
            ..Default::default()
        })
        .unwrap();
        for printed in [format!("{settings:?}"), settings.to_string()] {
            assert!(!printed.contains(previous), "{printed}");
        }
        assert!(
            settings.to_string().contains(
                "# previous master key: from SLUICE_MASTER_KEY_PREVIOUS or SLUICE_MASTER_KEY_PREVIOUS_FILE (not shown)"
            ),
            "{settings}"
        );
    }

    #[test]
    fn display_shows_the_effective_configuration() {
        let (dir, path) = write(
            r#"
[server]
listen = "0.0.0.0:8080"
allowed_hosts = ["sluice.example.com"]

[limits]
max_rows = 500

[duckdb]
threads = 2

[budgets]
queries_per_day = 100
[budgets.keys."ci bot"]
rows_per_day = 5

[rate_limits]
key_per_minute = 600
org_per_minute = 0
trusted_proxies = ["10.0.0.0/8"]

[connection_hosts]
allow = ["10.0.0.0/8", "DB.Internal.", "*.corp.example"]
deny = ["10.9.0.0/16"]

[oauth]
issuer = "https://id.example.com"
resource = "https://sluice.example.com/mcp"
org_claim = "tenant"

[sandbox]
socket = "/run/sluice/sandbox.sock"

[dbt]
binary = "dbt"

[[connections]]
name = "warehouse"
kind = "duckdb"
dsn = "/srv/warehouse.duckdb"
description = "dbt-built"
[connections.policy]
denied_tables = ["hr.salaries"]

[[connections]]
name = "sales"
kind = "postgres"
dsn = "postgres://u:hunter2@pg.internal/db"
pool_size = 2

[[projects]]
name = "analytics"
dir = "analytics"
connection = "warehouse"
"#,
        );
        let settings = resolve(path, None);
        let expected = format!(
            r#"# The effective configuration: defaults < config file < SLUICE_* environment < flags.
# master key: .sluice/master.key (created on first use)

[server]
listen = "0.0.0.0:8080"
data_dir = ".sluice"
allowed_hosts = ["sluice.example.com"]
allowed_origins = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*", "https://localhost:*", "https://127.0.0.1:*"]
stateless = false
max_request_bytes = 2097152
session_idle_secs = 300
disabled_tools = []

[store]
url = "sqlite://.sluice/sluice.db"

[limits]
max_rows = 500
query_timeout_ms = 30000
max_result_bytes = 40000
cursor_ttl_secs = 600
max_cursors = 256
max_cursor_bytes = 268435456
schema_cache_ttl_ms = 300000

[audit]
strict = true
# stream_file = not set (the audit log is in the store only)

[duckdb]
release_after_idle_ms = 1000
threads = 2
# max_memory = not set (half of worker_memory)
workers = 2
worker_memory = "2GiB"

[budgets]
queries_per_day = 100
# rows_per_day = not set (unlimited)
# bytes_per_day = not set (unlimited)
# seconds_per_day = not set (unlimited)

[budgets.keys."ci bot"]
# queries_per_day = not set (unlimited)
rows_per_day = 5
# bytes_per_day = not set (unlimited)
# seconds_per_day = not set (unlimited)

[rate_limits]
key_per_minute = 600
key_burst = 600
org_per_minute = 0 # unlimited
ip_per_minute = 30000
ip_burst = 30000
auth_failures = 20
lockout_secs = 1
max_lockout_secs = 300
trusted_proxies = ["10.0.0.0/8"]

[connection_hosts]
# link-local, cloud metadata, unspecified, multicast and broadcast addresses: always refused
allow = ["10.0.0.0/8", "db.internal", "*.corp.example"]
deny = ["10.9.0.0/16"]

[oauth]
issuer = "https://id.example.com"
resource = "https://sluice.example.com/mcp"
# jwks_uri = not set (discovered from the issuer's metadata)
leeway_secs = 30
org_claim = "tenant"
subject_claim = "sub"
# role_claim = not set (roles come from no claim)
jwks_refresh_min_secs = 30
jwks_cache_secs = 3600

[oauth.scopes]
"sluice:admin" = ["admin"]
"sluice:fs_write" = ["fs_write"]
"sluice:query" = ["query"]
"sluice:sandbox" = ["sandbox"]
"sluice:schema" = ["schema"]

[sandbox]
enabled = true
socket = "/run/sluice/sandbox.sock"
# daemon = not set (up: sluice-sandbox beside sluice)
# root = not set (up: .sluice/sandbox, or a temporary directory as root)
backend = "auto"
allow_degraded = false
# python = not set (up: the setup script's venv)
# preload = not set (up: numpy, pandas, pyarrow with the setup script's venv)
# uid = not set (up: 65534 when run as root)
projects = []
# max_concurrency = not set (the daemon's default)
# max_sessions = not set (the daemon's default)
# session_ttl_secs = not set (the daemon's default)
# gvisor_idle_secs = not set (the daemon's default)
max_timeout_secs = 300
# memory_mb = not set (the daemon's default)
# workspace_mb = not set (the daemon's default)
output_bytes = 100000
image_bytes = 1048576
images_total_bytes = 4194304
start_timeout_ms = 60000

[dbt]
project_roots = []
binary = "dbt"
parse_timeout_secs = 120

[[connections]]
name = "warehouse"
kind = "duckdb"
dsn = "/srv/warehouse.duckdb"
description = "dbt-built"
# max_rows = not set ([limits] max_rows applies)
# timeout_ms = not set ([limits] query_timeout_ms applies)
policy.allow_functions = []
policy.allowed_schemas = []
policy.allowed_tables = []
policy.denied_columns = []
policy.denied_schemas = []
policy.denied_tables = ["hr.salaries"]
policy.deny_functions = []
policy.max_depth = 64
policy.max_rows = 10000

[[connections]]
name = "sales"
kind = "postgres"
dsn = "postgres://u:***@pg.internal/db"
# description = not set
# max_rows = not set ([limits] max_rows applies)
# timeout_ms = not set ([limits] query_timeout_ms applies)
pool_size = 2
pool_idle_timeout_ms = 300000
pool_acquire_timeout_ms = 10000
policy.allow_functions = []
policy.allowed_schemas = []
policy.allowed_tables = []
policy.denied_columns = []
policy.denied_schemas = []
policy.denied_tables = []
policy.deny_functions = []
policy.max_depth = 64
policy.max_rows = 10000

[[projects]]
name = "analytics"
dir = "{}"
connection = "warehouse"
# description = not set
"#,
            dir.path().join("analytics").display()
        );
        assert_eq!(settings.to_string(), expected);
    }

    /// The output is a config file in its own right: read back, it resolves to settings that print the same
    /// (a DSN read back is its redacted form, which redacts to itself).
    #[test]
    fn display_reads_back_as_the_same_configuration() {
        let (dir, path) = write(&format!(
            "{SECRET_CONFIG}\n[sandbox]\npreload = ['pandas']\nuid = 1000\n[budgets.keys.ci]\nqueries_per_day = 3\n[rate_limits]\nip_per_minute = 0\nauth_failures = 0\ntrusted_proxies = ['::1']\n[connection_hosts]\ndeny = ['169.254.0.0/16', '*.legacy']\n"
        ));
        std::fs::write(dir.path().join("store_password"), "hunter5\n").unwrap();
        let settings = resolve(path, Some(MASTER_KEY));
        let printed = settings.to_string();
        let (_dir, again) = write(&printed);
        let again = resolve(again, Some(MASTER_KEY));
        assert_eq!(again.to_string(), printed);
    }
}
