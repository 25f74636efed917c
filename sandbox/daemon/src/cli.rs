//! Command line: `serve` and `doctor`, privilege dropping, and the start-up decision (refuse to start
//! when a required protection is missing, unless `--allow-degraded`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use nix::unistd::{Gid, Uid};
use sluice_sandbox_protocol::{Protection, ProtectionState};

use crate::cgroup::Cgroups;
use crate::engine::{Engine, EngineConfig, JAIL_STEPS};
use crate::host;
use crate::policy::{Limits, Project};
use crate::server::{Daemon, ServerConfig};
use crate::{gvisor, policy};

#[derive(Parser, Debug)]
#[command(
    name = "sluice-sandbox",
    version,
    about = "Sluice sandbox daemon: isolated Python for AI agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the sandbox protocol on a Unix socket.
    Serve(ServeArgs),
    /// Probe this host and print which backend and protections would be used.
    Doctor(CommonArgs),
}

/// Which backend runs code: `auto` picks gVisor when `runsc` is installed and a self-test run works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Auto,
    Gvisor,
    Native,
}

#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// The backend: gVisor (`runsc`), native (namespaces, landlock, seccomp), or auto.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// A project directory mounted into every run at /projects/NAME, read-only unless `:rw`
    /// (repeatable): `--project dbt=/srv/dbt:ro`.
    #[arg(long = "project", value_name = "NAME=PATH[:ro|rw]", value_parser = policy::parse_project)]
    pub projects: Vec<Project>,
    /// Directory for the daemon's state (workspace and jail mount points).
    #[arg(long)]
    pub root: PathBuf,
    /// The sandbox's Python interpreter (a dedicated virtual environment in production).
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// Modules the zygote imports before forking (comma-separated), e.g. `pandas,numpy,pyarrow,duckdb`.
    #[arg(long, value_delimiter = ',')]
    pub preload: Vec<String>,
    /// When started as root: the unprivileged uid to switch to before anything runs.
    #[arg(long)]
    pub uid: Option<u32>,
    /// Group to switch to with --uid (defaults to the same number).
    #[arg(long)]
    pub gid: Option<u32>,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Path of the Unix socket (created with mode 0600).
    #[arg(long)]
    pub socket: PathBuf,
    /// Exit (SIGTERM) when the process that started the daemon dies, also after switching to --uid (the
    /// kernel drops a parent-death signal set before a uid change). For supervisors such as `sluice up`.
    #[arg(long)]
    pub exit_with_parent: bool,
    /// Start even when a required protection is missing (every status then says so).
    #[arg(long)]
    pub allow_degraded: bool,
    /// Runs executing at once; more wait up to --queue-timeout-ms, then get "busy".
    #[arg(long, default_value_t = 2)]
    pub max_concurrency: u32,
    #[arg(long, default_value_t = 5000)]
    pub queue_timeout_ms: u64,
    #[arg(long, default_value_t = 64)]
    pub max_sessions: u32,
    /// Idle sessions are closed (workspace removed) after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub session_ttl_secs: u64,
    /// Additional uids allowed to connect (the daemon's starting uid always is).
    #[arg(long = "allow-uid")]
    pub allow_uids: Vec<u32>,
    #[arg(long, default_value_t = 30_000)]
    pub default_timeout_ms: u64,
    #[arg(long, default_value_t = 300_000)]
    pub max_timeout_ms: u64,
    #[arg(long, default_value_t = 1024)]
    pub default_memory_mb: u64,
    #[arg(long, default_value_t = 4096)]
    pub max_memory_mb: u64,
    /// Size of each session's workspace (tmpfs) in MiB.
    #[arg(long, default_value_t = 512)]
    pub workspace_mb: u64,
    /// Size of each run's /tmp (tmpfs) in MiB.
    #[arg(long, default_value_t = 64)]
    pub tmp_mb: u64,
    /// Largest single file a run may write, in MiB.
    #[arg(long, default_value_t = 256)]
    pub max_file_mb: u64,
    #[arg(long, default_value_t = 64)]
    pub max_processes: u64,
    /// Bytes of stdout and of stderr kept per run.
    #[arg(long, default_value_t = 1 << 20)]
    pub output_bytes: u64,
}

impl ServeArgs {
    fn limits(&self) -> Limits {
        Limits {
            default_timeout_ms: self.default_timeout_ms,
            max_timeout_ms: self.max_timeout_ms.max(1),
            default_memory_mb: self.default_memory_mb,
            max_memory_mb: self.max_memory_mb.max(16),
            max_processes: self.max_processes,
            max_open_files: 256,
            max_file_bytes: self.max_file_mb << 20,
            workspace_bytes: self.workspace_mb << 20,
            tmp_bytes: self.tmp_mb << 20,
            output_bytes: self.output_bytes,
        }
    }
}

/// Runs the command; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Doctor(args) => doctor(args),
    }
}

/// Creates the root directory owned by `owner`, readable by nobody else.
fn prepare_root(root: &Path, owner: Option<(u32, u32)>) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    if let Some((uid, gid)) = owner {
        nix::unistd::chown(root, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .with_context(|| format!("chown {}", root.display()))?;
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
    root.canonicalize()
        .with_context(|| format!("resolving {}", root.display()))
}

/// The daemon's cgroup subtree for per-run limits, or why there is none (then runs have rlimits only).
fn claim_cgroups(owner: Option<(u32, u32)>) -> Result<Arc<Cgroups>, String> {
    let claimed = Cgroups::claim(owner).map(Arc::new);
    match &claimed {
        Ok(c) => tracing::info!("{}", c.describe()),
        Err(e) => tracing::info!("no per-run cgroups: {e}"),
    }
    claimed
}

/// When root: switch to the unprivileged uid for good (all three uids, groups cleared).
fn drop_privileges(common: &CommonArgs) -> anyhow::Result<()> {
    if !Uid::effective().is_root() {
        return Ok(());
    }
    let Some(uid) = common.uid else {
        bail!(
            "refusing to run sandboxes as root: pass --uid UID (an unprivileged user) so that sandboxed code \
             never runs as root on the host"
        );
    };
    if uid == 0 {
        bail!("--uid 0 is root; pass an unprivileged uid");
    }
    let gid = Gid::from_raw(common.gid.unwrap_or(uid));
    nix::unistd::setgroups(&[]).context("setgroups")?;
    nix::unistd::setresgid(gid, gid, gid).context("setresgid")?;
    let u = Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u).context("setresuid")?;
    let r = nix::unistd::getresuid().context("getresuid")?;
    if r.real.is_root() || r.effective.is_root() || r.saved.is_root() {
        bail!("could not drop root privileges");
    }
    tracing::info!(uid, gid = gid.as_raw(), "dropped root privileges");
    Ok(())
}

/// Asks the kernel for SIGTERM when `parent` dies. Armed after the uid switch, which clears it; if the
/// parent already died in between, nobody would stop the daemon, so it refuses to go on.
fn exit_with_parent(parent: nix::unistd::Pid) -> anyhow::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).context("prctl(PR_SET_PDEATHSIG)")?;
    if nix::unistd::getppid() != parent {
        bail!("the process that started the daemon has exited (--exit-with-parent)");
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

fn probe_engine(
    rt: &tokio::runtime::Runtime,
    common: &CommonArgs,
    root: &Path,
    limits: &Limits,
    runsc: Option<PathBuf>,
    cgroups: &Result<Arc<Cgroups>, String>,
) -> anyhow::Result<(Arc<Engine>, host::ProbeOutcome)> {
    let engine = Arc::new(
        Engine::new(EngineConfig {
            root: root.to_path_buf(),
            python: common.python.clone(),
            preload: common.preload.clone(),
            limits: limits.clone(),
            projects: common.projects.clone(),
            runsc,
            cgroups: cgroups.clone(),
        })
        .map_err(|e| anyhow::anyhow!("{}", e.message))?,
    );
    let e = engine.clone();
    let outcome = rt.block_on(async move { host::probe(&e).await });
    Ok((engine, outcome))
}

/// Names of the required protections a probe found missing.
fn missing(protections: &[Protection]) -> Vec<&Protection> {
    protections
        .iter()
        .filter(|p| p.required && p.state == ProtectionState::Missing)
        .collect()
}

/// The chosen engine, its protections, and a line saying why this backend (for `doctor` and the log).
struct Chosen {
    engine: Arc<Engine>,
    protections: Vec<Protection>,
    why: String,
}

/// Picks the backend: `gvisor` and `native` as asked; `auto` tries gVisor's self-test first and falls
/// back to native, saying why.
fn choose(
    rt: &tokio::runtime::Runtime,
    common: &CommonArgs,
    root: &Path,
    limits: &Limits,
    cgroups: &Result<Arc<Cgroups>, String>,
) -> anyhow::Result<Chosen> {
    let runsc = gvisor::find_runsc();
    if common.backend != BackendChoice::Native {
        match &runsc {
            Some(path) => {
                let version = gvisor::runsc_version(path).unwrap_or_else(|e| e);
                let (engine, outcome) = probe_engine(rt, common, root, limits, Some(path.clone()), cgroups)?;
                let protections = host::protections(&outcome);
                let failed: Vec<String> = missing(&protections)
                    .iter()
                    .map(|p| format!("{}: {}", p.name, p.detail))
                    .collect();
                if common.backend == BackendChoice::Gvisor || failed.is_empty() {
                    return Ok(Chosen {
                        engine,
                        protections,
                        why: format!(
                            "gvisor ({version} at {}; self-test run passed: {})",
                            path.display(),
                            failed.is_empty()
                        ),
                    });
                }
                // A self-test that could not run at all fails every check the same way: say it once.
                let reason = match &outcome.jail {
                    Err(e) => e.clone(),
                    Ok(_) => failed.join("; "),
                };
                let why = format!("native (gVisor's self-test failed: {reason})");
                tracing::warn!("{why}");
                let (engine, outcome) = probe_engine(rt, common, root, limits, None, cgroups)?;
                return Ok(Chosen {
                    engine,
                    protections: host::protections(&outcome),
                    why,
                });
            }
            None if common.backend == BackendChoice::Gvisor => {
                bail!(
                    "--backend gvisor: runsc is not installed (sandbox/daemon/scripts/install-runsc.sh installs it)"
                )
            }
            None => {}
        }
    }
    let (engine, outcome) = probe_engine(rt, common, root, limits, None, cgroups)?;
    let why = match (common.backend, runsc) {
        (BackendChoice::Native, _) => "native (asked for with --backend native)".to_string(),
        (_, None) => "native (runsc is not installed)".to_string(),
        (_, Some(_)) => "native".to_string(),
    };
    Ok(Chosen {
        engine,
        protections: host::protections(&outcome),
        why,
    })
}

fn print_protections(protections: &[Protection]) {
    for p in protections {
        let state = match p.state {
            ProtectionState::Active => "active ",
            ProtectionState::Missing if p.required => "MISSING",
            ProtectionState::Missing => "absent ",
        };
        let opt = if p.required { "" } else { " (optional)" };
        println!("  [{state}] {:<22}{opt} {}", p.name, p.detail);
    }
}

fn doctor(common: CommonArgs) -> anyhow::Result<i32> {
    let owner = common.uid.map(|u| (u, common.gid.unwrap_or(u)));
    let root = prepare_root(&common.root, owner.filter(|_| Uid::effective().is_root()))?;
    let cgroups = claim_cgroups(owner.filter(|_| Uid::effective().is_root()));
    drop_privileges(&common).or_else(|e| {
        // Doctor may look at a root host without dropping; the report then shows the missing uid.
        if common.uid.is_none() { Ok(()) } else { Err(e) }
    })?;
    let rt = runtime()?;
    let chosen = choose(&rt, &common, &root, &Limits::default(), &cgroups)?;
    println!("backend: {}", chosen.why);
    println!(
        "python: {} ({})",
        chosen.engine.facts.version,
        chosen.engine.facts.executable.display()
    );
    for p in &common.projects {
        println!(
            "project: /projects/{} <- {} ({})",
            p.name,
            p.path.display(),
            if p.writable { "read-write" } else { "read-only" }
        );
    }
    println!("protections:");
    print_protections(&chosen.protections);
    let missing: Vec<&str> = missing(&chosen.protections)
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let code = if missing.is_empty() {
        println!("verdict: all required protections are active");
        0
    } else {
        println!(
            "verdict: missing required protections: {} (serve needs --allow-degraded)",
            missing.join(", ")
        );
        1
    };
    drop(chosen);
    drop(rt);
    if let Ok(c) = &cgroups {
        c.close();
    }
    Ok(code)
}

fn serve(args: ServeArgs) -> anyhow::Result<i32> {
    let start_uid = Uid::current().as_raw();
    let owner = if Uid::effective().is_root() {
        match args.common.uid {
            Some(u) => Some((u, args.common.gid.unwrap_or(u))),
            None => None,
        }
    } else {
        None
    };
    let root = prepare_root(&args.common.root, owner)?;
    // The socket is bound before privileges are dropped (its directory may be root's), with a umask
    // that makes it 0600 from the first moment.
    if let Ok(md) = std::fs::symlink_metadata(&args.socket) {
        use std::os::unix::fs::FileTypeExt;
        if md.file_type().is_socket() {
            std::fs::remove_file(&args.socket).ok();
        } else {
            bail!("{} exists and is not a socket", args.socket.display());
        }
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = std::os::unix::net::UnixListener::bind(&args.socket)
        .with_context(|| format!("binding {}", args.socket.display()));
    nix::sys::stat::umask(old);
    let listener = listener?;
    std::fs::set_permissions(&args.socket, std::fs::Permissions::from_mode(0o600))?;
    let parent = nix::unistd::getppid();
    // Claimed while still root (if started so): the subtree is then handed to the unprivileged uid.
    let cgroups = claim_cgroups(owner);
    drop_privileges(&args.common)?;
    if args.exit_with_parent {
        exit_with_parent(parent)?;
    }

    let rt = runtime()?;
    let Chosen {
        engine,
        protections,
        why,
    } = choose(&rt, &args.common, &root, &args.limits(), &cgroups)?;
    tracing::info!("backend: {why}");
    let missing = missing(&protections);
    for p in &missing {
        tracing::warn!(protection = %p.name, "missing: {}", p.detail);
    }
    let essential = [
        "unprivileged_uid",
        "user_namespace",
        "mount_namespace",
        "workspace_tmpfs",
        "minimal_root",
        "gvisor_kernel",
    ];
    if let Some(p) = missing
        .iter()
        .find(|p| essential.contains(&p.name.as_str()) || p.name.ends_with("_namespace"))
    {
        bail!(
            "the {:?} backend cannot run without {}: {}",
            engine.backend(),
            p.name,
            p.detail
        );
    }
    let degraded = !missing.is_empty();
    if degraded && !args.allow_degraded {
        let names: Vec<&str> = missing.iter().map(|p| p.name.as_str()).collect();
        bail!(
            "refusing to start: missing required protections: {} (see `sluice-sandbox doctor`; --allow-degraded starts anyway)",
            names.join(", ")
        );
    }
    engine.set_skip(
        missing
            .iter()
            .filter(|p| JAIL_STEPS.contains(&p.name.as_str()))
            .map(|p| p.name.clone())
            .collect(),
    );
    let mut allowed = vec![start_uid, Uid::effective().as_raw()];
    allowed.extend(&args.allow_uids);
    let cfg = ServerConfig {
        max_concurrency: args.max_concurrency.max(1),
        queue_timeout: Duration::from_millis(args.queue_timeout_ms),
        max_sessions: args.max_sessions.max(1),
        session_ttl: Duration::from_secs(args.session_ttl_secs.max(1)),
        allowed_uids: allowed,
        ..ServerConfig::default()
    };
    let daemon = Daemon::new(engine, cfg, protections, degraded);
    let socket = args.socket.clone();
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(listener)?;
        // Tests and supervisors wait for this line before connecting.
        tracing::info!(socket = %socket.display(), degraded, "sluice-sandbox listening");
        eprintln!("sluice-sandbox listening on {}", socket.display());
        tokio::select! {
            r = daemon.serve(listener) => r.context("accept"),
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = terminate() => Ok(()),
        }
    })?;
    std::fs::remove_file(&args.socket).ok();
    // Every session's runs end with the runtime; then the daemon's cgroups can go.
    drop(rt);
    if let Ok(c) = &cgroups {
        c.close();
    }
    Ok(0)
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}
