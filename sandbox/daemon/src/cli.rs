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
    /// Ask a running daemon for its status over its socket (a health check): prints the backend and
    /// protections, exits 1 when it does not answer.
    Status(StatusArgs),
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// The daemon's socket.
    #[arg(long)]
    pub socket: PathBuf,
    /// How long to wait for the answer, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
    /// Print the status as JSON (the protocol's `status` result).
    #[arg(long)]
    pub json: bool,
}

/// Which backend runs code: `auto` picks the in-gVisor mode when the daemon is root inside a gVisor
/// container, else gVisor when `runsc` is installed and a self-test run works, else native.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Auto,
    Gvisor,
    Native,
    /// The daemon runs as root inside a gVisor container (Docker's `runsc` runtime), which is the outer
    /// wall; each run gets PID, network and IPC namespaces, a root of its own, the session's uid, seccomp.
    GvisorContainer,
}

impl BackendChoice {
    fn asked(self) -> policy::inside::Asked {
        match self {
            BackendChoice::Auto => policy::inside::Asked::Auto,
            BackendChoice::GvisorContainer => policy::inside::Asked::InsideGvisor,
            BackendChoice::Gvisor | BackendChoice::Native => policy::inside::Asked::Other,
        }
    }
}

/// Whether this daemon uses the in-gVisor mode (see [`policy::inside::use_inside_mode`]).
fn inside_mode(common: &CommonArgs, outer: Option<&crate::container::OuterGvisor>) -> anyhow::Result<bool> {
    policy::inside::use_inside_mode(common.backend.asked(), outer.is_some(), Uid::effective().as_raw())
        .map_err(|e| anyhow::anyhow!(e))
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
    /// gVisor backend: a session's container (started at its first run, reused by the later ones) is
    /// stopped after this many seconds without a run; the next run starts a new one.
    #[arg(long, default_value_t = 300)]
    pub gvisor_idle_secs: u64,
    /// When started as root: the unprivileged uid to switch to before anything runs.
    #[arg(long)]
    pub uid: Option<u32>,
    /// Group to switch to with --uid (defaults to the same number).
    #[arg(long)]
    pub gid: Option<u32>,
    /// The sandbox's zygote executable (default: `sluice-sandbox-zygote` next to this one).
    #[arg(long)]
    pub zygote_bin: Option<PathBuf>,
    /// The zygote executable, opened before the switch to --uid (see [`open_zygote`]).
    #[arg(skip)]
    pub zygote_exe: Option<Result<Arc<crate::zygote::ZygoteExe>, String>>,
}

/// Opens the zygote's executable while the daemon may still be root: started later as the unprivileged
/// uid, from a directory that uid may not reach (a build tree under /root).
fn open_zygote(common: &mut CommonArgs) {
    common.zygote_exe = Some(crate::zygote::open_zygote_bin(common.zygote_bin.as_deref()).map(Arc::new));
}

fn zygote_exe(common: &CommonArgs) -> Result<Arc<crate::zygote::ZygoteExe>, String> {
    match &common.zygote_exe {
        Some(exe) => exe.clone(),
        None => crate::zygote::open_zygote_bin(common.zygote_bin.as_deref()).map(Arc::new),
    }
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
    /// Largest image (PNG, JPEG, GIF, WebP, SVG) of the workspace's `outputs/` folder a run's result
    /// carries, in bytes; a larger one stays in the workspace and the result names it. Only an SVG within
    /// it is parsed, and the PNG it is rendered to must fit it too. At most 16 MiB.
    #[arg(long, default_value_t = 1 << 20)]
    pub image_bytes: u64,
    /// Most image bytes one run's result carries in all. At most 16 MiB.
    #[arg(long, default_value_t = 4 << 20)]
    pub images_total_bytes: u64,
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
            image_bytes: self.image_bytes.min(policy::MAX_IMAGES_BYTES),
            images_bytes: self.images_total_bytes.min(policy::MAX_IMAGES_BYTES),
        }
    }
}

/// Runs the command; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Doctor(args) => doctor(args),
        Command::Status(args) => status(args),
    }
}

/// Asks a running daemon for `status`: 0 when it answers, 1 (with the reason on stderr) when not.
fn status(args: StatusArgs) -> anyhow::Result<i32> {
    use sluice_sandbox_protocol::{Request, Response};
    let timeout = Some(Duration::from_millis(args.timeout_ms.max(1)));
    let answer = connect_status(&args.socket)
        .map_err(|e| format!("cannot connect to {}: {e}", args.socket.display()))
        .and_then(|mut client| {
            client.stream().set_read_timeout(timeout).ok();
            client.stream().set_write_timeout(timeout).ok();
            client
                .call(Request::Status)
                .map_err(|e| format!("{} did not answer status: {e}", args.socket.display()))
        });
    let info = match answer {
        Ok(Response::Status(info)) => info,
        Ok(other) => {
            eprintln!("sluice-sandbox status: unexpected answer {:?}", other);
            return Ok(1);
        }
        Err(e) => {
            eprintln!("sluice-sandbox status: {e}");
            return Ok(1);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(0);
    }
    println!(
        "backend: {:?}{} (sluice-sandbox {}, python {})",
        info.backend,
        if info.degraded { ", DEGRADED" } else { "" },
        info.version,
        info.python
    );
    println!(
        "capacity: {}/{} running, {}/{} sessions",
        info.capacity.running,
        info.capacity.max_concurrency,
        info.capacity.sessions,
        info.capacity.max_sessions
    );
    println!("protections:");
    print_protections(&info.protections);
    Ok(0)
}

/// The abstract socket a daemon inside gVisor also listens on, for `status` run in its own container:
/// gVisor (`--host-uds=create`) lets the daemon create the socket on the host volume but nothing inside
/// the container connect to it. Abstract sockets belong to a network namespace, so only processes of the
/// daemon's own (the container's, with no network) reach it; runs have network namespaces of their own.
fn health_socket_name(socket: &Path) -> String {
    format!("sluice-sandbox{}", socket.display())
}

/// Connects for `status`: the socket's path, or inside gVisor the daemon's abstract health socket.
fn connect_status(socket: &Path) -> std::io::Result<sluice_sandbox_protocol::BlockingClient> {
    use std::os::linux::net::SocketAddrExt;
    match sluice_sandbox_protocol::BlockingClient::connect(socket) {
        Ok(c) => Ok(c),
        Err(e) if crate::container::detect_here().is_some() => {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(health_socket_name(socket))?;
            std::os::unix::net::UnixStream::connect_addr(&addr)
                .map(sluice_sandbox_protocol::BlockingClient::from_stream)
                .map_err(|_| e)
        }
        Err(e) => Err(e),
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
    inside_gvisor: bool,
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
            inside_gvisor,
            zygote: zygote_exe(common),
            gvisor_idle: Duration::from_secs(common.gvisor_idle_secs.max(1)),
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

/// The first missing protection that `serve` cannot start without, even with `--allow-degraded`.
fn essential<'a>(missing: &[&'a Protection]) -> Option<&'a Protection> {
    const ESSENTIAL: &[&str] = &[
        "gvisor_container",
        "unprivileged_uid",
        "user_namespace",
        "mount_namespace",
        "workspace_tmpfs",
        "minimal_root",
        "gvisor_kernel",
    ];
    missing
        .iter()
        .copied()
        .find(|p| ESSENTIAL.contains(&p.name.as_str()) || p.name.ends_with("_namespace"))
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
    inside_gvisor: bool,
) -> anyhow::Result<Chosen> {
    if inside_gvisor {
        let (engine, outcome) = probe_engine(rt, common, root, limits, None, cgroups, true)?;
        return Ok(Chosen {
            engine,
            protections: host::protections(&outcome),
            why: format!(
                "gvisor-container (the daemon is root inside a gVisor container, {}: each run gets PID, \
                 network and IPC namespaces, a root of its own entered with chroot, its session's uid, seccomp \
                 and rlimits)",
                if common.backend == BackendChoice::GvisorContainer {
                    "asked for with --backend gvisor-container"
                } else {
                    "chosen by --backend auto"
                }
            ),
        });
    }
    let runsc = gvisor::find_runsc();
    if common.backend != BackendChoice::Native {
        match &runsc {
            Some(path) => {
                let version = gvisor::runsc_version(path).unwrap_or_else(|e| e);
                let (engine, outcome) =
                    probe_engine(rt, common, root, limits, Some(path.clone()), cgroups, false)?;
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
                let (engine, outcome) = probe_engine(rt, common, root, limits, None, cgroups, false)?;
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
    let (engine, outcome) = probe_engine(rt, common, root, limits, None, cgroups, false)?;
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

fn doctor(mut common: CommonArgs) -> anyhow::Result<i32> {
    open_zygote(&mut common);
    let outer = crate::container::detect_here();
    let inside = inside_mode(&common, outer.as_ref())?;
    let owner = common
        .uid
        .map(|u| (u, common.gid.unwrap_or(u)))
        .filter(|_| !inside);
    let root = prepare_root(&common.root, owner.filter(|_| Uid::effective().is_root()))?;
    let cgroups = if inside {
        Err("inside gVisor".to_string())
    } else {
        claim_cgroups(owner.filter(|_| Uid::effective().is_root()))
    };
    if !inside {
        drop_privileges(&common).or_else(|e| {
            // Doctor may look at a root host without dropping; the report then shows the missing uid.
            if common.uid.is_none() { Ok(()) } else { Err(e) }
        })?;
    }
    let rt = runtime()?;
    let mut chosen = choose(&rt, &common, &root, &Limits::default(), &cgroups, inside)?;
    if !chosen.protections.iter().any(|p| p.name == "gvisor_container") {
        chosen
            .protections
            .push(crate::container::protection(outer.as_ref()));
    }
    chosen.protections.extend(host::preload_protection(
        &common.preload,
        &chosen.engine.preload_failures(),
    ));
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
    } else if let (Some(g), Some(p), false) = (&outer, self::missing(&chosen.protections).first(), inside) {
        println!(
            "verdict: {}",
            crate::container::unsupported_inside(g, &p.name, &p.detail)
        );
        1
    } else if let Some(p) = essential(&self::missing(&chosen.protections)) {
        println!(
            "verdict: serve cannot start without {} (--allow-degraded does not stand in for it): {}",
            p.name, p.detail
        );
        1
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

fn serve(mut args: ServeArgs) -> anyhow::Result<i32> {
    open_zygote(&mut args.common);
    let start_uid = Uid::current().as_raw();
    let outer = crate::container::detect_here();
    let inside = inside_mode(&args.common, outer.as_ref())?;
    let owner = if inside {
        // The daemon stays root of gVisor's kernel: its state is root's.
        None
    } else if Uid::effective().is_root() {
        match args.common.uid {
            Some(u) => Some((u, args.common.gid.unwrap_or(u))),
            None => None,
        }
    } else {
        None
    };
    let root = prepare_root(&args.common.root, owner)?;
    if let Some(g) = &outer {
        tracing::info!("running inside a gVisor container: {}", g.evidence);
        // A socket on a volume shared with the host is the host's (runsc --host-uds=create): gVisor
        // refuses to stat it, so a socket left by an earlier daemon is removed without looking first.
        std::fs::remove_file(&args.socket).ok();
    }
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
    // Inside gVisor the socket on the shared volume is created on the host by gVisor's gofer, and every
    // host peer shows up as uid 0 (gVisor passes no credentials for host sockets): the daemon's peer check
    // cannot tell the gateway's uid from another, and the daemon (root) could not chown or chmod it. So it
    // is created 0666 and the volume is the gate: only the gateway's container mounts it.
    let umask = if inside { 0o111 } else { 0o177 };
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    let listener = std::os::unix::net::UnixListener::bind(&args.socket)
        .with_context(|| format!("binding {}", args.socket.display()));
    nix::sys::stat::umask(old);
    let listener = listener?;
    let health = if inside {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(health_socket_name(&args.socket))?;
        Some(
            std::os::unix::net::UnixListener::bind_addr(&addr)
                .context("binding the abstract health socket")?,
        )
    } else {
        None
    };
    let socket_mode = if inside { 0o666 } else { 0o600 };
    if let Err(e) = std::fs::set_permissions(&args.socket, std::fs::Permissions::from_mode(socket_mode)) {
        // gVisor does not let the daemon change a host-backed socket's mode; the umask above already
        // created it 0600.
        if outer.is_none() {
            return Err(e.into());
        }
        tracing::info!("socket created with mode {socket_mode:o} by the umask (gVisor refused chmod: {e})");
    }
    let parent = nix::unistd::getppid();
    // Claimed while still root (if started so): the subtree is then handed to the unprivileged uid.
    let cgroups = if inside {
        Err("inside gVisor".to_string())
    } else {
        claim_cgroups(owner)
    };
    if inside {
        tracing::info!(
            "staying root of gVisor's kernel (--backend gvisor-container): runs drop to their session's uid"
        );
    } else {
        drop_privileges(&args.common)?;
    }
    if args.exit_with_parent {
        exit_with_parent(parent)?;
    }

    let rt = runtime()?;
    let Chosen {
        engine,
        mut protections,
        why,
    } = choose(&rt, &args.common, &root, &args.limits(), &cgroups, inside)?;
    if !protections.iter().any(|p| p.name == "gvisor_container") {
        protections.push(crate::container::protection(outer.as_ref()));
    }
    protections.extend(host::preload_protection(
        &args.common.preload,
        &engine.preload_failures(),
    ));
    tracing::info!("backend: {why}");
    let missing = missing(&protections);
    for p in &missing {
        tracing::warn!(protection = %p.name, "missing: {}", p.detail);
    }
    if let Some(p) = essential(&missing) {
        if let Some(g) = outer.as_ref().filter(|_| !inside) {
            bail!("{}", crate::container::unsupported_inside(g, &p.name, &p.detail));
        }
        let what = if inside {
            "gvisor-container mode".to_string()
        } else {
            format!("{:?} backend", engine.backend())
        };
        bail!("the {what} cannot run without {}: {}", p.name, p.detail);
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
        if let Some(h) = health {
            h.set_nonblocking(true)?;
            let h = tokio::net::UnixListener::from_std(h)?;
            let d = daemon.clone();
            tokio::spawn(async move {
                if let Err(e) = d.serve(h).await {
                    tracing::warn!("health socket: {e}");
                }
            });
        }
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
