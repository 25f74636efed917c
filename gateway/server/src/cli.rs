//! The `sluice` command line: run the gateway, show its configuration, manage connections and API keys.
//!
//! Every argument struct derives `Debug`, so a secret is typed where it is parsed: clap parses `--dsn` into
//! a redacting [`Dsn`], and `SLUICE_MASTER_KEY` is wrapped in a [`Secret`] as it is read.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use sluice_connectors::Dsn;

use sluice_core::setup::{self, Context};

use crate::app;
use sluice_core::auth::{ConnectionGrants, Grant, Role, Scope, ToolList};
use sluice_core::config::{Overrides, Settings};
use sluice_core::secrets::Secret;
use sluice_core::store::LOCAL_ORG;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a governed MCP gateway between AI agents and your data"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Common {
    /// TOML config file (settings there are overridden by SLUICE_* variables, then by flags).
    #[arg(long, env = "SLUICE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory holding the store, keys and the demo warehouse [default: ./.sluice].
    #[arg(long, env = "SLUICE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:3300]; port 0 picks a free port (the bound address is printed).
    #[arg(long, env = "SLUICE_LISTEN")]
    pub listen: Option<String>,
    /// The most rows any query may return [default: 10000].
    #[arg(long, env = "SLUICE_MAX_ROWS")]
    pub max_rows: Option<u64>,
    /// Statement timeout in milliseconds [default: 30000].
    #[arg(long, env = "SLUICE_QUERY_TIMEOUT_MS")]
    pub query_timeout_ms: Option<u64>,
    /// Serve MCP without sessions (every request stands alone; JSON responses).
    #[arg(long, env = "SLUICE_STATELESS")]
    pub stateless: Option<bool>,
    /// Host names accepted in the Host header (repeatable) [default: loopback names].
    #[arg(long = "allowed-host", env = "SLUICE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Option<Vec<String>>,
    /// Offer the Python sandbox [default: true]: `up` starts the sandbox daemon beside the gateway,
    /// `serve` connects to the daemon at [sandbox] socket.
    #[arg(long, env = "SLUICE_SANDBOX")]
    pub sandbox: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up a local install on first run (store, admin key, demo warehouse) and serve it.
    Up {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Serve an existing install (production): no demo data, keys come from `sluice key create`.
    Serve {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Serve MCP on stdin/stdout for one local user (Claude Code: `claude mcp add sluice -- sluice stdio`).
    /// Sets the data directory up on first run like `up`, starts the sandbox daemon, logs to stderr only.
    Stdio {
        #[command(flatten)]
        common: Common,
        /// File holding the API key to run as [default: <data dir>/local_api_key].
        #[arg(long, env = "SLUICE_KEY_FILE")]
        key_file: Option<PathBuf>,
    },
    /// Show the configuration a gateway would run with.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage database connections.
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage organizations: each owns its keys, connections, dbt projects, budgets and audit records.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage dbt projects (the directories the dbt tools may read).
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Rotate the master key and show which master key versions seal the stored secrets.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Validate, map or trace a dbt project from its artifacts, e.g. in CI (no gateway or data directory needed).
    #[command(subcommand)]
    Dbt(sluice_dbt::cli::Command),
    /// Show the newest audit records.
    Audit {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        /// How many records.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Only records at or after this time: RFC 3339 (`2026-12-07T09:00:00Z`) or an age (`90s`, `15m`,
        /// `2h`, `7d`).
        #[arg(long, value_parser = since_time)]
        since: Option<String>,
        /// Only records of this tool.
        #[arg(long)]
        tool: Option<String>,
    },
}

/// The organization a command acts in.
#[derive(Debug, Args)]
pub struct OrgArg {
    /// The organization [default: local, the org every install starts with].
    #[arg(long = "org", id = "org", env = "SLUICE_ORG", default_value = sluice_core::store::LOCAL_ORG)]
    pub value: String,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization; then give it keys with `sluice key create --org NAME`.
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        name: String,
    },
    /// List organizations with how many keys and stored connections each has.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Remove an organization with its keys, stored connections and projects (its audit records stay).
    Remove {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every stored secret still under an older master key with the current one.
    ///
    /// Run it with the new key as the master key and the old one as SLUICE_MASTER_KEY_PREVIOUS (or
    /// <data dir>/master.key.previous). It works record by record, so it is safe to interrupt and run
    /// again, and gateways holding both keys keep serving meanwhile.
    Rotate {
        #[command(flatten)]
        common: Common,
    },
    /// Show the master key versions this store knows and what each still seals (needs no key).
    Status {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, config file, SLUICE_* variables and flags, resolved as
    /// `serve` resolves them), one `key = value` per line, secrets redacted.
    Show {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a connection; its DSN is sealed with the master key before it is stored.
    Add {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        name: String,
        /// Engine: duckdb, postgres, mysql or sqlite.
        #[arg(long)]
        kind: String,
        /// For duckdb and sqlite: the database file's path; for postgres and mysql: the server's URL.
        // Parsed straight into a `Dsn`, so that this struct's `Debug` hides the password.
        #[arg(long)]
        dsn: Dsn,
        #[arg(long)]
        description: Option<String>,
        /// Row cap for this connection (the smaller of this and the server's applies).
        #[arg(long, value_parser = at_least_one::<u64>)]
        max_rows: Option<u64>,
        /// Statement timeout for this connection, in milliseconds.
        #[arg(long, value_parser = at_least_one::<u64>)]
        timeout_ms: Option<u64>,
        /// Governance policy for this connection: a TOML file with any of deny_functions, allow_functions,
        /// allowed_schemas, denied_schemas, allowed_tables, denied_tables, denied_columns, max_rows.
        #[arg(long)]
        policy_file: Option<PathBuf>,
        /// Most pooled sessions to the server (postgres, mysql, sqlite) [default: 5].
        #[arg(long, value_parser = at_least_one::<u32>)]
        pool_size: Option<u32>,
        /// Idle pooled sessions are closed after this many milliseconds [default: 300000].
        #[arg(long, value_parser = at_least_one::<u64>)]
        pool_idle_timeout_ms: Option<u64>,
        /// How long a call waits for a pooled session before failing, in milliseconds [default: 10000].
        #[arg(long, value_parser = at_least_one::<u64>)]
        pool_acquire_timeout_ms: Option<u64>,
    },
    /// List connections (DSNs are not shown).
    List {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
    },
    /// Remove a stored connection.
    Remove {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Register a dbt project directory (the one holding dbt_project.yml).
    Add {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        name: String,
        /// The project directory; stored canonical (absolute, symlinks resolved).
        #[arg(long)]
        dir: PathBuf,
        /// The connection holding the warehouse this project builds (for the verification tools).
        #[arg(long)]
        connection: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List dbt projects (config and store).
    List {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
    },
    /// Remove a stored dbt project (its files are not touched).
    Remove {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key and print it alone on stdout (it is shown only this once).
    Create {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        name: String,
        /// Role: viewer (schema), analyst (query schema sandbox), engineer (adds fs_write: workspace writes
        /// and dbt parse) or admin (everything) [default: analyst].
        #[arg(long, conflicts_with = "scopes")]
        role: Option<String>,
        /// Scope to grant instead of a role (repeatable): query, schema, sandbox, fs_write, admin.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Limit the key to this connection of its organization (repeatable); others are refused and not
        /// listed [default: every connection of the organization].
        #[arg(long = "connection")]
        connections: Vec<String>,
        /// Limit the key to this tool (repeatable); the agent sees and may call only these [default: every
        /// tool its scopes allow].
        #[arg(long = "tool")]
        tools: Vec<String>,
    },
    /// List API keys (prefixes only).
    List {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
    },
    /// Revoke an API key by name or prefix; running gateways stop accepting it within a second.
    Revoke {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        /// The key's name or prefix.
        key: String,
    },
}

/// `--since`: an RFC 3339 time or an age (`90s`, `15m`, `2h`, `7d`), as the store's timestamps are written
/// (UTC, microseconds), so that text order is time order.
fn since_time(text: &str) -> Result<String, String> {
    let text = text.trim();
    let at = match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => t.with_timezone(&chrono::Utc),
        Err(_) => {
            let split = text.len().saturating_sub(1);
            let (n, unit) = text.split_at(split);
            let n: i64 = n.parse().map_err(|_| {
                format!("'{text}' is neither an RFC 3339 time (2026-12-07T09:00:00Z) nor an age (90s, 15m, 2h, 7d)")
            })?;
            let age = match unit {
                "s" => chrono::Duration::seconds(n),
                "m" => chrono::Duration::minutes(n),
                "h" => chrono::Duration::hours(n),
                "d" => chrono::Duration::days(n),
                _ => return Err(format!("'{text}': an age ends in s, m, h or d (e.g. 15m)")),
            };
            chrono::Utc::now() - age
        }
    };
    Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// Parses a count or duration flag that must be at least 1: zero rows, a zero timeout or an empty pool
/// would make every call fail, so it is refused when the connection is added rather than at the first call.
fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(text: &str) -> Result<T, String> {
    match text.trim().parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err("expected a whole number of at least 1".to_owned()),
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `SLUICE_MASTER_KEY`, or the contents of the file `SLUICE_MASTER_KEY_FILE` names (a compose secret);
/// both at once is refused rather than one silently winning.
fn master_key_from_env() -> Result<Option<Secret<String>>> {
    key_from_env("SLUICE_MASTER_KEY", "the master key")
}

/// `SLUICE_MASTER_KEY_PREVIOUS` or `SLUICE_MASTER_KEY_PREVIOUS_FILE`: the key being rotated away from.
fn previous_master_key_from_env() -> Result<Option<Secret<String>>> {
    key_from_env("SLUICE_MASTER_KEY_PREVIOUS", "the previous master key")
}

/// `$VAR` inline or `$VAR_FILE` naming a file, not both.
fn key_from_env(var: &str, what: &str) -> Result<Option<Secret<String>>> {
    let file_var = format!("{var}_FILE");
    let inline = env_nonempty(var);
    let file = env_nonempty(&file_var);
    match (inline, file) {
        (Some(_), Some(_)) => {
            anyhow::bail!("set {var} or {file_var}, not both")
        }
        (Some(key), None) => Ok(Some(Secret::new(key))),
        (None, Some(path)) => Ok(Some(sluice_core::config::read_secret_file(
            std::path::Path::new(&path),
            &format!("{what} ({file_var})"),
        )?)),
        (None, None) => Ok(None),
    }
}

fn settings(common: &Common, serve: Option<&ServeArgs>) -> Result<Settings> {
    let mut overrides = Overrides {
        config: common.config.clone(),
        data_dir: common.data_dir.clone(),
        master_key: master_key_from_env()?,
        master_key_previous: previous_master_key_from_env()?,
        store_url: env_nonempty("SLUICE_STORE_URL").map(Dsn::new),
        store_password_file: env_nonempty("SLUICE_STORE_PASSWORD_FILE").map(PathBuf::from),
        first_key_file: env_nonempty("SLUICE_FIRST_KEY_FILE").map(PathBuf::from),
        ..Overrides::default()
    };
    if let Some(s) = serve {
        overrides.listen = s.listen.clone();
        overrides.max_rows = s.max_rows;
        overrides.query_timeout_ms = s.query_timeout_ms;
        overrides.stateless = s.stateless;
        overrides.allowed_hosts = s.allowed_hosts.clone();
        overrides.sandbox = s.sandbox;
    }
    Ok(Settings::resolve(overrides)?)
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up { common, serve } => up(settings(&common, Some(&serve))?, true).await,
        Command::Serve { common, serve } => up(settings(&common, Some(&serve))?, false).await,
        Command::Stdio { common, key_file } => stdio(settings(&common, None)?, key_file).await,
        Command::Config(ConfigCommand::Show { common, serve }) => {
            // Only resolved, never opened: showing the configuration creates no data directory or key.
            let settings = settings(&common, Some(&serve))?;
            let mut out = std::io::stdout().lock();
            write!(out, "{settings}")?;
            out.flush()?;
            Ok(())
        }
        Command::Connection(cmd) => connection(cmd).await,
        Command::Key(cmd) => key(cmd).await,
        Command::Org(cmd) => org(cmd).await,
        Command::Project(cmd) => project(cmd).await,
        Command::Secrets(cmd) => secrets(cmd).await,
        Command::Dbt(cmd) => dbt(&cmd),
        Command::Audit {
            common,
            org,
            limit,
            since,
            tool,
        } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let mut out = std::io::stdout().lock();
            for r in ctx
                .store
                .audit_since(&org, since.as_deref(), tool.as_deref(), limit)
                .await?
            {
                writeln!(out, "{}", serde_json::to_string(&r)?)?;
            }
            Ok(())
        }
    }
}

async fn up(settings: Settings, local: bool) -> Result<()> {
    let ctx = Context::open(settings)
        .await
        .context("opening the data directory")?;
    let data_dir =
        std::fs::canonicalize(&ctx.settings.data_dir).unwrap_or_else(|_| ctx.settings.data_dir.clone());
    let bootstrap = if local {
        Some(setup::bootstrap_local(&ctx).await?)
    } else {
        None
    };
    if !local {
        match &ctx.settings.first_key_file {
            Some(path) => match setup::first_key(&ctx, path).await? {
                setup::FirstKey::Created => tracing::warn!(
                    file = %path.display(),
                    "created the first admin API key (named admin); read it from the file, then delete the file"
                ),
                setup::FirstKey::CreatedElsewhere => tracing::info!(
                    "another gateway instance created the first admin API key at the same moment"
                ),
                setup::FirstKey::Exists => {}
            },
            None => {
                if ctx
                    .store
                    .list_keys(LOCAL_ORG)
                    .await?
                    .iter()
                    .all(|k| k.revoked_at.is_some())
                {
                    tracing::warn!(
                        "no usable API key exists; create one with `sluice key create --name NAME`"
                    );
                }
            }
        }
    }

    // `up` runs the sandbox daemon beside the gateway; `serve` connects to the configured one.
    let server = app::build(&ctx, local).await?;
    let sandbox = server.sandbox_summary().await;
    let listener = tokio::net::TcpListener::bind(&ctx.settings.listen)
        .await
        .with_context(|| format!("could not listen on {}", ctx.settings.listen))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}/mcp");
    let metrics = match ctx.settings.metrics_listen {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("could not listen on {at} ([server] metrics_listen)"))?;
            let bound = listener.local_addr()?;
            server.serve_metrics(listener);
            Some(bound)
        }
        None => None,
    };

    let mut out = std::io::stdout().lock();
    writeln!(out, "sluice: listening on {url}")?;
    if let Some(at) = metrics {
        writeln!(out, "sluice: metrics on http://{at}/metrics")?;
    }
    writeln!(out, "sluice: {sandbox}")?;
    if bootstrap.as_ref().is_some_and(|b| b.demo_created) {
        writeln!(out, "sluice: created the demo warehouse as connection 'demo'")?;
    }
    // `serve` with a first-key file points there; otherwise at the key `up` keeps in the data directory.
    let key_file = match (&ctx.settings.first_key_file, local) {
        (Some(path), false) => path.clone(),
        _ => data_dir.join("local_api_key"),
    };
    match bootstrap.as_ref().and_then(|b| b.new_admin_key.as_ref()) {
        Some(key) => {
            writeln!(
                out,
                "sluice: created the admin API key (shown once; also saved to {}):",
                key_file.display()
            )?;
            writeln!(out, "    {}", key.expose())?;
            writeln!(out, "sluice: connect Claude Code with:")?;
            writeln!(
                out,
                "    claude mcp add --transport http sluice {url} --header \"Authorization: Bearer {}\"",
                key.expose()
            )?;
        }
        None if key_file.exists() => {
            writeln!(out, "sluice: connect Claude Code with:")?;
            writeln!(
                out,
                "    claude mcp add --transport http sluice {url} --header \"Authorization: Bearer $(cat {})\"",
                key_file.display()
            )?;
        }
        None => {
            writeln!(
                out,
                "sluice: connect Claude Code with (use a key from `sluice key create`):"
            )?;
            writeln!(
                out,
                "    claude mcp add --transport http sluice {url} --header \"Authorization: Bearer <key>\""
            )?;
        }
    }
    out.flush()?;
    drop(out);
    server.serve(listener).await?;
    Ok(())
}

/// `sluice stdio`: never a byte on stdout but protocol messages, so the first run's set-up (key, demo
/// warehouse) is reported on stderr, and the new key only written to its file.
async fn stdio(settings: Settings, key_file: Option<PathBuf>) -> Result<()> {
    let ctx = Context::open(settings)
        .await
        .context("opening the data directory")?;
    let key_file = match key_file {
        Some(path) => path,
        None => {
            let bootstrap = setup::bootstrap_local(&ctx).await?;
            if bootstrap.new_admin_key.is_some() {
                tracing::info!(
                    path = %ctx.settings.key_file().display(),
                    "created the admin API key (saved to the file, not printed)"
                );
            }
            ctx.settings.key_file()
        }
    };
    let key = crate::stdio::read_key(&key_file)?;
    crate::stdio::serve(&ctx, &key).await
}

async fn connection(cmd: ConnectionCommand) -> Result<()> {
    match cmd {
        ConnectionCommand::Add {
            common,
            org,
            name,
            kind,
            dsn,
            description,
            max_rows,
            timeout_ms,
            policy_file,
            pool_size,
            pool_idle_timeout_ms,
            pool_acquire_timeout_ms,
        } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let mut extra = serde_json::Map::new();
            if let Some(path) = policy_file {
                let text =
                    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                let policy: sluice_governance::Policy = toml::from_str(&text)
                    .with_context(|| format!("{} is not a valid policy", path.display()))?;
                extra.insert("policy".into(), serde_json::to_value(policy)?);
            }
            if let Some(v) = max_rows {
                extra.insert("max_rows".into(), v.into());
            }
            if let Some(v) = timeout_ms {
                extra.insert("timeout_ms".into(), v.into());
            }
            // The keys the registry reads back, the same names as in a config file's [[connections]].
            if let Some(v) = pool_size {
                extra.insert("pool_size".into(), v.into());
            }
            if let Some(v) = pool_idle_timeout_ms {
                extra.insert("pool_idle_timeout_ms".into(), v.into());
            }
            if let Some(v) = pool_acquire_timeout_ms {
                extra.insert("pool_acquire_timeout_ms".into(), v.into());
            }
            ctx.add_connection(
                &org,
                &name,
                &kind,
                &dsn,
                description,
                serde_json::Value::Object(extra),
            )
            .await?;
            println!("added connection '{name}' ({kind}) to organization '{org}'");
            Ok(())
        }
        ConnectionCommand::List { common, org } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let mut out = std::io::stdout().lock();
            // The config file's connections belong to `local`.
            let configured: &[_] = if org == LOCAL_ORG {
                &ctx.settings.connections
            } else {
                &[]
            };
            for c in configured {
                writeln!(
                    out,
                    "{}\t{}\tconfig\t{}",
                    c.name,
                    c.kind,
                    c.description.as_deref().unwrap_or("")
                )?;
            }
            for c in ctx.store.list_connections(&org).await? {
                writeln!(
                    out,
                    "{}\t{}\tstore\t{}",
                    c.name,
                    c.kind,
                    c.description.as_deref().unwrap_or("")
                )?;
            }
            Ok(())
        }
        ConnectionCommand::Remove { common, org, name } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            ctx.store.remove_connection(&org, &name).await?;
            println!("removed connection '{name}'");
            Ok(())
        }
    }
}

async fn key(cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Create {
            common,
            org,
            name,
            role,
            scopes,
            connections,
            tools,
        } => {
            let mut grant = if scopes.is_empty() {
                let role = match role.as_deref().map(Role::parse).transpose() {
                    Ok(role) => role.unwrap_or(Role::Analyst),
                    Err(e) => bail!(e),
                };
                Grant::role(role)
            } else {
                let parsed: std::result::Result<Vec<Scope>, String> =
                    scopes.iter().map(|s| Scope::parse(s)).collect();
                match parsed {
                    Ok(list) => Grant::scopes(list.into_iter().collect()),
                    Err(e) => bail!(e),
                }
            };
            if let Some(e) = crate::tools::unknown_tools(&tools, "--tool") {
                bail!(e);
            }
            if !tools.is_empty() {
                grant.tools = ToolList::only(tools);
            }
            if !connections.is_empty() {
                grant.connections = ConnectionGrants::only(connections);
            }
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let secret = ctx.create_key(&org, &name, &grant).await?;
            // The key alone on stdout, so scripts can capture it.
            println!("{}", secret.expose());
            let role = grant.role.map_or_else(|| "custom".to_owned(), |r| r.to_string());
            eprintln!(
                "created key '{name}' in organization '{org}': role {role}, scopes: {}; tools: {}; connections: {} \
                 (store it now; it is not shown again)",
                grant.scopes, grant.tools, grant.connections
            );
            Ok(())
        }
        KeyCommand::List { common, org } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let mut out = std::io::stdout().lock();
            for k in ctx.store.list_keys(&org).await? {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                writeln!(
                    out,
                    "{}\t{}…\t{}\t{}\t{}\t{}\t{}\t{}",
                    k.name,
                    k.prefix,
                    k.scopes,
                    state,
                    k.created_at,
                    k.tools.stored().unwrap_or_else(|| "all tools".to_owned()),
                    k.role.map_or("custom", Role::as_str),
                    k.connections
                        .stored()
                        .unwrap_or_else(|| "all connections".to_owned())
                )?;
            }
            Ok(())
        }
        KeyCommand::Revoke { common, org, key } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let record = ctx.store.revoke_key(&org, &key).await?;
            println!("revoked key '{}' ({}…)", record.name, record.prefix);
            Ok(())
        }
    }
}

async fn org(cmd: OrgCommand) -> Result<()> {
    match cmd {
        OrgCommand::Create { common, name } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            ctx.store.create_org(&name).await?;
            println!(
                "created organization '{name}'; give it an admin key with `sluice key create --org {name} --name admin --role admin`"
            );
            Ok(())
        }
        OrgCommand::List { common } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let mut out = std::io::stdout().lock();
            for o in ctx.store.list_orgs().await? {
                let keys = ctx.store.list_keys(&o.id).await?;
                let active = keys.iter().filter(|k| k.revoked_at.is_none()).count();
                let connections = ctx.connection_names(&o.id).await?.len();
                writeln!(
                    out,
                    "{}\t{active} active keys\t{connections} connections\t{}",
                    o.name, o.created_at
                )?;
            }
            Ok(())
        }
        OrgCommand::Remove { common, name } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let removed = ctx.store.remove_org(&name).await?;
            println!(
                "removed organization '{name}': {} keys, {} connections, {} projects (its audit records stay)",
                removed.keys, removed.connections, removed.projects
            );
            Ok(())
        }
    }
}

async fn project(cmd: ProjectCommand) -> Result<()> {
    match cmd {
        ProjectCommand::Add {
            common,
            org,
            name,
            dir,
            connection,
            description,
        } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let record = sluice_core::projects::add(
                &ctx,
                &org,
                &name,
                &dir,
                connection.as_deref(),
                description.as_deref(),
            )
            .await?;
            println!("added project '{}' ({})", record.name, record.dir);
            Ok(())
        }
        ProjectCommand::List { common, org } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let mut out = std::io::stdout().lock();
            for p in sluice_core::projects::list(&ctx.settings, &ctx.store, &org).await? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    p.name,
                    p.dir.display(),
                    p.connection.as_deref().unwrap_or("-"),
                    p.source.as_str(),
                    p.description.as_deref().unwrap_or("")
                )?;
            }
            Ok(())
        }
        ProjectCommand::Remove { common, org, name } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            sluice_core::projects::remove(&ctx, &org, &name).await?;
            println!("removed project '{name}'");
            Ok(())
        }
    }
}

async fn secrets(cmd: SecretsCommand) -> Result<()> {
    match cmd {
        SecretsCommand::Rotate { common } => {
            let settings = settings(&common, None)?;
            let from_file = settings.master_key_previous.is_none();
            // Opening the keyring refuses keys that do not fit the store, and registers the new key as the
            // next version if no process has yet.
            let ctx = Context::open(settings)
                .await
                .context("opening the store with the master keys")?;
            if let Some(previous) = ctx.master.previous_version() {
                eprintln!(
                    "re-sealing what is under master key version {previous} with version {}",
                    ctx.master.current_version()
                );
            }
            let report = sluice_core::rotation::rotate(&ctx.store, &ctx.master).await?;
            println!("{report}");
            let file = ctx
                .settings
                .data_dir
                .join(sluice_core::secrets::PREVIOUS_KEY_FILE);
            if from_file && ctx.master.previous_version().is_some() && file.exists() {
                println!("remove {}: it is no longer needed", file.display());
            }
            Ok(())
        }
        SecretsCommand::Status { common } => {
            let settings = settings(&common, None)?;
            if let sluice_core::config::StoreLocation::Sqlite(path) = &settings.store
                && !path.exists()
            {
                bail!("there is no store at {}: nothing is sealed yet", path.display());
            }
            let store = sluice_core::store::Store::connect(&settings.store)
                .await
                .context("opening the store")?;
            let status = sluice_core::rotation::status(&store).await?;
            println!("{status}");
            store.close().await;
            Ok(())
        }
    }
}

/// `sluice dbt …` runs the same code as the standalone `sluice-dbt` binary, with its exit codes (1: findings
/// at or above --fail-on, 2: unreadable project or artifact), which CI relies on.
fn dbt(cmd: &sluice_dbt::cli::Command) -> Result<()> {
    let output = sluice_dbt::cli::run(cmd);
    // A closed pipe (`sluice dbt map | head`) is not worth an error.
    let _ = std::io::stdout().write_all(output.stdout.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(output.stderr.as_bytes());
    if output.code != 0 {
        std::process::exit(output.code);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use pretty_assertions::assert_eq;

    use super::{Cli, Command, ConnectionCommand};

    /// Every subcommand's arguments are consistent (unique names, valid conflicts): clap checks this only
    /// when a subcommand is parsed, so a mistake would otherwise surface as a panic in a user's hands.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    /// The parsed command line derives `Debug`; a DSN given with `--dsn` must not show its password there.
    #[test]
    fn parsed_arguments_do_not_print_a_dsn_password() {
        let cli = Cli::try_parse_from([
            "sluice",
            "connection",
            "add",
            "--name",
            "sales",
            "--kind",
            "postgres",
            "--dsn",
            "postgres://app:hunter2@pg.internal/sales",
        ])
        .unwrap();
        let printed = format!("{cli:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("postgres://app:***@pg.internal/sales"),
            "{printed}"
        );
        let Command::Connection(ConnectionCommand::Add { dsn, .. }) = cli.command else {
            panic!("parsed as {printed}");
        };
        assert_eq!(dsn.expose(), "postgres://app:hunter2@pg.internal/sales");
    }
}
