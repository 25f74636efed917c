//! The sandbox engine the backends share: sessions as user + mount namespaces holding a size-limited
//! tmpfs workspace, and runs in per-run namespaces.
//!
//! Every backend forks from one zygote, `sluice-sandbox-zygote` (Rust, embedding CPython), and every
//! message to it, to a session's launcher and to a jail, and every status back, is a typed
//! `sluice_sandbox_jail` value.
//!
//! Life of a run, native backend: the session's launcher (forked from the zygote with the session; PID 1
//! of the session's own PID namespace, trusted, never running user code) forks the jail's PID 1 into a
//! fresh PID namespace and hands the daemon a pidfd on it; PID 1 unshares the run's other namespaces,
//! builds the minimal root, drops every privilege, sets its rlimits, installs landlock and seccomp, says
//! `Ready` and waits for its code. That prepared jail is kept per session ("warm"), so a run only has to
//! hand over the code; the next jail is prepared in the background while the current one runs.
//!
//! gVisor backend: one container per session, started at the session's first run (or by `warm_up`): the
//! zygote forks a trusted intermediate child, which joins the session's namespaces, unshares its own and
//! starts `runsc run`, whose process is the session server (`sluice-sandbox-zygote gvisor-server`). Each
//! run is a `Run` request to it ([`gvisor::wire`]); the server clones the run into a PID namespace and a
//! root of its own inside the container and streams its output back ([`gvisor::session`]). The container
//! stops when the session closes or idles out, and is started again by the next run after it stopped for
//! any reason.
//!
//! Inside a gVisor container ([`Mode::InsideGvisor`]) a session is a tmpfs owned by a uid of its own, and
//! a run's PID 1 comes from a trusted intermediate child of the zygote, builds a root of its own
//! (`sluice_sandbox_jail::inside`), drops to the session's uid and then waits for its code as a native
//! jail does.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::unistd::pipe2;
use sluice_sandbox_protocol::{
    Backend, Change, ErrorKind, ExitStatus, Limit, OUTPUT_DIR, Output, ProducedFile, RunPython, RunResult,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::watch;

use crate::cgroup::{Cgroups, RunCgroup};
use crate::error::OpError;
use crate::gvisor;
use crate::gvisor::session::Container;
use crate::gvisor::wire::{Ended, Event, RunSetup};
use crate::images::{self, ImageCaps};
use crate::pidfd::{PidFd, RunHandle};
use crate::policy::{self, HostPath, Limits, Project, ProjectMount, SANDBOX_ID};
use crate::workspace::{Snapshot, Workspace};
use crate::zygote::{
    PythonFacts, Zygote, ZygoteExe, python_facts, recv_queued_fd, send_with_fds, seqpacket_pair,
};

/// Namespaces each run gets of its own (the session contributes the user and the outer mount namespace).
pub const RUN_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

/// Protection steps the jail's PID 1 applies; in degraded mode missing ones are skipped by name.
pub const JAIL_STEPS: &[&str] = &[
    "minimal_root",
    "uts_namespace",
    "rlimits",
    "no_new_privs",
    "capabilities_dropped",
    "landlock",
    "seccomp",
];

const SETUP_TIMEOUT: Duration = Duration::from_secs(20);
/// After a kill, how long to wait for the last output and the exit status.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Namespaces of the process tree that runs `runsc` (gVisor then makes its own inside). A cgroup
/// namespace is left out: runsc reads its cgroup even with `--ignore-cgroups`.
pub const GVISOR_NAMESPACES: u64 =
    (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS)
        as u64;

/// Starting python and importing the preloads under gVisor's ptrace platform is slow (pandas: seconds).
const GVISOR_SETUP_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub root: PathBuf,
    pub python: PathBuf,
    pub preload: Vec<String>,
    pub limits: Limits,
    /// Project directories mounted into every run at `/projects/NAME`.
    pub projects: Vec<Project>,
    /// `runsc` for the gVisor backend; `None` runs the native backend.
    pub runsc: Option<PathBuf>,
    /// The daemon's cgroup subtree for per-run limits (native backend), or why there is none.
    pub cgroups: Result<Arc<Cgroups>, String>,
    /// The daemon runs as root inside a gVisor container (`--backend gvisor-container`): sessions are
    /// tmpfs workspaces owned by a uid of their own, runs are built by [`Mode::InsideGvisor`]'s rules.
    pub inside_gvisor: bool,
    /// The zygote's executable, opened ahead (or why it could not be).
    pub zygote: Result<Arc<ZygoteExe>, String>,
    /// gVisor backend: a session's container is stopped after this long without a run.
    pub gvisor_idle: Duration,
}

/// How this engine builds sessions and runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Namespaces, minimal root, landlock, seccomp on the host's kernel.
    Native,
    /// `runsc run` once per session, on the host; each run is forked inside that container.
    Runsc,
    /// Inside a gVisor container (the container is the outer wall): per-run PID, network and IPC
    /// namespaces, a root of the run's own entered with chroot, the session's uid, seccomp, rlimits.
    InsideGvisor,
}

pub struct Engine {
    cfg: EngineConfig,
    plan: policy::RootPlan,
    seq: std::sync::atomic::AtomicU64,
    /// The zygote's executable and its typed configuration.
    zygote_exe: Arc<ZygoteExe>,
    zygote_config: sluice_sandbox_jail::ZygoteConfig,
    zygote: Mutex<Option<Arc<Zygote>>>,
    /// Preload modules the zygote could not import, as it last reported them.
    preload_failed: Mutex<Vec<sluice_sandbox_jail::PreloadFailure>>,
    /// The pid of the zygote a thread watches (restarting it when it dies), 0 before the first.
    watched: std::sync::atomic::AtomicU32,
    pub facts: PythonFacts,
    /// Why seccomp could not be compiled, if it could not.
    pub seccomp_error: Option<String>,
    skip: Mutex<Vec<String>>,
    /// Inside gVisor: the uids of the open sessions.
    uids: Arc<policy::UidPool>,
    /// Read-only files linked into every run's fresh `/tmp` (matplotlib's font cache), as (link, target).
    tmp_links: Vec<(String, String)>,
}

/// One session's namespaces and workspace.
pub struct SessionNs {
    /// The session's user and mount namespaces (native and runsc; inside gVisor there are none).
    userns: Option<OwnedFd>,
    mntns: Option<OwnedFd>,
    pub workspace: Workspace,
    /// Inside gVisor: the session's uid and workspace mount, released when the session is dropped.
    inside: Option<InsideSession>,
    pub workspace_bytes: u64,
    /// The prepared jail. The background preparer holds this lock while it works, so a run arriving
    /// meanwhile waits for that jail instead of building a second one from scratch.
    warm: tokio::sync::Mutex<Option<Jail>>,
    preparing: AtomicBool,
    closed: watch::Sender<bool>,
    /// Bumped to kill the session's running code (a caller gave its run up); every run watches it.
    cancels: watch::Sender<u64>,
    /// Native backend: the control socket of the session's launcher. Closing it ends the launcher and,
    /// with it (PID 1 of the session's PID namespace), every jail of the session.
    launcher: Mutex<Option<OwnedFd>>,
    /// gVisor backend: the session's container, started at its first run (or by `warm_up`). The lock is
    /// held while one starts, so that concurrent first runs share it.
    gvisor: tokio::sync::Mutex<Option<Arc<Container>>>,
}

/// A session's own uid and its workspace tmpfs, when the daemon runs inside gVisor.
struct InsideSession {
    uid: policy::UidLease,
    dir: PathBuf,
}

impl Drop for InsideSession {
    fn drop(&mut self) {
        // Every run of the session is gone by now (their handles were dropped first); a lazy unmount
        // frees the tmpfs once the last descriptor on it closes.
        if let Err(e) = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(dir = %self.dir.display(), "unmounting a session's workspace: {e}");
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), uid = self.uid.uid(), "removing a session's workspace: {e}");
        }
    }
}

impl SessionNs {
    /// Kills the warm jail and every running one; the namespaces and the workspace tmpfs go away when
    /// the last reference to this session is dropped.
    pub fn close(&self) {
        let _ = self.closed.send(true);
        // If the preparer holds the lock, it sees `closed` when done and drops its jail itself.
        if let Ok(mut w) = self.warm.try_lock() {
            w.take();
        }
        if let Ok(mut l) = self.launcher.lock() {
            l.take();
        }
        // If a run is starting the container right now, it sees `closed` when done and stops it itself.
        if let Ok(mut g) = self.gvisor.try_lock()
            && let Some(c) = g.take()
        {
            c.stop();
        }
    }

    /// Kills every run of the session that is under way now; the workspace and the warm jail stay.
    pub fn cancel_runs(&self) {
        self.cancels.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}

/// A prepared jail: PID 1 of a locked-down PID namespace, waiting for its code.
pub struct Jail {
    /// Where the run is handed over: a seqpacket socket on which a typed
    /// [`sluice_sandbox_jail::RunHeader`], the code memfd and the output pipes are sent. Taken then.
    go: Option<OwnedFd>,
    status: BufReader<pipe::Receiver>,
    pidfd: RunHandle,
    pub probe: Option<crate::host::JailSteps>,
    /// Native backend with cgroups: the run's group, which PID 1 entered before its set-up finished.
    /// Dropped after the kill in `drop`; the group is removed later, once the run's processes are gone.
    cgroup: Option<RunCgroup>,
}

impl Jail {
    /// The host pid of the jail's PID 1.
    pub fn pid(&self) -> i32 {
        self.pidfd.pid()
    }
}

impl Drop for Jail {
    fn drop(&mut self) {
        // PID 1 of the run's namespace: killing it takes every process of the run with it.
        if let Err(e) = self.pidfd.kill() {
            tracing::warn!(pid = self.pidfd.pid(), "could not kill jail: {e}");
        }
    }
}

fn unavailable(m: impl Into<String>) -> OpError {
    OpError::new(ErrorKind::Unavailable, m)
}

fn pipe_pair() -> Result<(OwnedFd, OwnedFd), OpError> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| OpError::internal(format!("pipe: {e}")))
}

fn receiver(fd: OwnedFd) -> Result<pipe::Receiver, OpError> {
    pipe::Receiver::from_owned_fd(fd).map_err(|e| OpError::internal(format!("pipe: {e}")))
}

fn host_path(p: &Path) -> Option<HostPath> {
    let md = std::fs::metadata(p).ok()?;
    let flags = nix::sys::statvfs::statvfs(p).ok()?.flags().bits();
    Some(HostPath {
        path: p.to_path_buf(),
        is_dir: md.is_dir(),
        statvfs_flags: flags,
    })
}

impl Engine {
    /// Works out the jail for this interpreter and host; does not start anything yet.
    pub fn new(cfg: EngineConfig) -> Result<Engine, OpError> {
        let facts = python_facts(&cfg.python)?;
        for dir in ["ws", "jail"] {
            let p = cfg.root.join(dir);
            std::fs::create_dir_all(&p).map_err(|e| OpError::internal(format!("{}: {e}", p.display())))?;
        }
        let mut exposed: Vec<HostPath> = Vec::new();
        let mut candidates: Vec<PathBuf> = vec!["/usr".into(), "/etc/ld.so.cache".into()];
        candidates.extend(facts.prefixes.iter().cloned());
        if let Some(dir) = facts.real_executable.parent() {
            candidates.push(dir.to_path_buf());
        }
        let mut top_links = Vec::new();
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::read_link(top) {
                Ok(target) => top_links.push((target.display().to_string(), top.to_string())),
                // A real directory (not merged /usr): the dynamic loader and libraries may live there.
                Err(_) if Path::new(top).is_dir() => candidates.push(top.into()),
                Err(_) => {}
            }
        }
        exposed.extend(candidates.iter().filter_map(|p| host_path(p)));
        let devices = policy::DEVICES
            .iter()
            .filter_map(|d| host_path(&Path::new("/dev").join(d)))
            .collect::<Vec<_>>();
        let mut projects = Vec::new();
        for p in &cfg.projects {
            let host = host_path(&p.path).filter(|h| h.is_dir).ok_or_else(|| {
                unavailable(format!(
                    "project {:?}: {} is not a directory this daemon can reach",
                    p.name,
                    p.path.display()
                ))
            })?;
            projects.push(ProjectMount {
                name: p.name.clone(),
                host,
                writable: p.writable,
            });
        }
        let plan = policy::plan_root(exposed, top_links, devices, &projects, &cfg.limits);
        let landlock = policy::landlock_policy(&plan);
        let (seccomp_programs, seccomp_error) = match policy::seccomp::compile() {
            Ok(progs) => (progs, None),
            Err(e) => (vec![], Some(e.to_string())),
        };
        let cap_last_cap: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(63);
        let bin_dir = facts
            .executable
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let env_list = policy::sandbox_env(&bin_dir);
        let tmp_links = policy::tmp_links(&mpl_cache_files(&facts.prefixes));
        if tmp_links.is_empty() {
            tracing::info!(
                "no matplotlib font cache under the interpreter's prefixes ({}); a run that imports \
                 matplotlib builds its own in its /tmp",
                policy::MPL_CACHE_IN_PREFIX
            );
        }
        if cfg.inside_gvisor {
            // Runs bind the installation from here; they refuse to start where it is writable.
            tracing::info!(
                "inside gVisor: per-run roots under {}",
                cfg.root.join("jail").display()
            );
        }
        let gvisor = match &cfg.runsc {
            Some(runsc) => Some(Self::write_bundle(&cfg, &facts, &plan, runsc, &env_list)?),
            None => None,
        };
        // On the host's gVisor the zygote only starts containers: the container's own python preloads.
        let zygote_preload = if cfg.runsc.is_some() {
            vec![]
        } else {
            cfg.preload.clone()
        };
        let zygote_exe = cfg.zygote.clone().map_err(unavailable)?;
        let zygote_config = sluice_sandbox_jail::ZygoteConfig {
            python: facts.executable.display().to_string(),
            python_version: facts.version.clone(),
            preload: zygote_preload,
            ids: sluice_sandbox_jail::IdMap {
                uid_inside: SANDBOX_ID,
                gid_inside: SANDBOX_ID,
                uid_outside: nix::unistd::geteuid().as_raw(),
                gid_outside: nix::unistd::getegid().as_raw(),
            },
            workspace_mountpoint: cfg.root.join("ws").display().to_string(),
            jail_dir: cfg.root.join("jail").display().to_string(),
            root: plan.clone(),
            landlock: landlock.clone(),
            seccomp: seccomp_programs
                .iter()
                .map(policy::seccomp::to_instructions)
                .collect(),
            cap_last_cap,
            rlimits_max: cfg.limits.max_rlimits(),
            env: env_list.clone(),
            unsettable_rlimits: policy::unsettable_rlimits(cfg.inside_gvisor),
            runsc: gvisor,
        };
        Ok(Engine {
            cfg,
            plan,
            seq: std::sync::atomic::AtomicU64::new(0),
            zygote_exe,
            zygote_config,
            zygote: Mutex::new(None),
            preload_failed: Mutex::new(vec![]),
            watched: std::sync::atomic::AtomicU32::new(0),
            facts,
            seccomp_error,
            skip: Mutex::new(vec![]),
            uids: Arc::new(policy::UidPool::new(policy::SESSION_UIDS)),
            tmp_links,
        })
    }

    /// Writes the gVisor bundle (skeleton root and `config.json`) under `<root>/gvisor`; returns what
    /// the zygote needs to start `runsc` on it.
    fn write_bundle(
        cfg: &EngineConfig,
        facts: &PythonFacts,
        plan: &policy::RootPlan,
        runsc: &Path,
        env: &[(String, String)],
    ) -> Result<sluice_sandbox_jail::RunscConfig, OpError> {
        let io = |what: &Path, e: std::io::Error| OpError::internal(format!("{}: {e}", what.display()));
        let dir = cfg.root.join("gvisor");
        let (rootfs, state, bundle) = (dir.join("rootfs"), dir.join("state"), dir.join("bundle"));
        for d in [&state, &bundle] {
            std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
        }
        gvisor::write_skeleton(&rootfs, plan).map_err(|e| io(&rootfs, e))?;
        let server = gvisor::wire::ServerConfig::new(
            plan,
            env,
            (&facts.executable.display().to_string(), &facts.version),
            &cfg.preload,
        );
        let args = gvisor::server_args(&server)?;
        // The session server lives as long as the session: no CPU-time limit of its own (each run sets
        // its own, which only ever lowers).
        let rlimits: Vec<policy::Rlimit> = cfg
            .limits
            .max_rlimits()
            .into_iter()
            .filter(|(res, _, _)| *res != libc::RLIMIT_CPU)
            .collect();
        let mut config = gvisor::oci_config(
            gvisor::TEMPLATE,
            &gvisor::BundleSpec {
                plan,
                rootfs: &rootfs,
                workspace: &cfg.root.join("ws"),
                args,
                env,
                rlimits: &rlimits,
            },
        )?;
        // The binary is bound from a copy beside the bundle: runsc's gofer opens a bind's source by path as
        // the daemon's (unprivileged) uid, which may not reach the binary's own directory; the daemon
        // still holds the descriptor it opened while root.
        let zygote = cfg.zygote.as_ref().map_err(|e| unavailable(e.clone()))?;
        let server_dir = dir.join("server");
        let server_bin = server_dir.join("sluice-sandbox-zygote");
        let partial = dir.join("sluice-sandbox-zygote.partial");
        std::fs::create_dir_all(&server_dir)
            .and_then(|()| std::fs::copy(format!("/proc/self/fd/{}", zygote.fd.as_raw_fd()), &partial))
            .and_then(|_| std::fs::rename(&partial, &server_bin))
            .map_err(|e| io(&server_bin, e))?;
        gvisor::bind_server(&mut config, &server_dir)?;
        let path = bundle.join("config.json");
        let text = serde_json::to_vec_pretty(&config).map_err(|e| OpError::internal(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        Ok(sluice_sandbox_jail::RunscConfig {
            runsc: runsc.display().to_string(),
            state: state.display().to_string(),
            argv: gvisor::runsc_argv(runsc, &state, &bundle),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.cfg.limits
    }

    /// The backend this engine runs code with, as the protocol names it: code inside a gVisor container
    /// runs under gVisor's kernel too.
    pub fn backend(&self) -> Backend {
        match self.mode() {
            Mode::Native => Backend::Native,
            Mode::Runsc | Mode::InsideGvisor => Backend::Gvisor,
        }
    }

    pub fn mode(&self) -> Mode {
        if self.cfg.inside_gvisor {
            Mode::InsideGvisor
        } else if self.cfg.runsc.is_some() {
            Mode::Runsc
        } else {
            Mode::Native
        }
    }

    /// The directory under which each run's root is mounted (inside gVisor).
    pub fn jail_dir(&self) -> PathBuf {
        self.cfg.root.join("jail")
    }

    /// The jail's root plan (what `doctor` and the gVisor self-test compare against).
    pub fn plan(&self) -> &policy::RootPlan {
        &self.plan
    }

    /// `runsc`'s path when this engine runs gVisor.
    pub fn runsc(&self) -> Option<&Path> {
        self.cfg.runsc.as_deref()
    }

    /// Whether runs get a cgroup of their own: what is used, or why not.
    pub fn cgroup_limits(&self) -> Result<String, String> {
        match (self.mode(), &self.cfg.cgroups) {
            (Mode::InsideGvisor, _) => Err(
                "not used inside a gVisor container (gVisor's kernel offers no delegated cgroup here); each \
                 process of the run is bounded by RLIMIT_AS and the run by RLIMIT_NPROC of the session's uid"
                    .to_string(),
            ),
            (Mode::Runsc, _) => Err(
                "not applied under gVisor (runsc runs with --ignore-cgroups); each process of the run is \
                 bounded by RLIMIT_AS and the run by RLIMIT_NPROC"
                    .to_string(),
            ),
            (Mode::Native, Ok(c)) => Ok(c.describe()),
            (Mode::Native, Err(e)) => Err(format!(
                "{e}; each process of a run is bounded by RLIMIT_AS and the run by RLIMIT_NPROC"
            )),
        }
    }

    /// Steps to skip from now on (only ever set in `--allow-degraded` mode, and reported by `status`).
    pub fn set_skip(&self, skip: Vec<String>) {
        if let Ok(mut s) = self.skip.lock() {
            *s = skip;
        }
    }

    /// The running zygote, starting (or restarting) it if needed. Blocks while python starts.
    pub fn zygote_blocking(&self) -> Result<Arc<Zygote>, OpError> {
        let mut z = self
            .zygote
            .lock()
            .map_err(|_| OpError::internal("zygote lock poisoned"))?;
        if let Some(existing) = z.as_ref().filter(|z| z.alive()) {
            return Ok(existing.clone());
        }
        let restarted = z.take().map(|dead| (dead.pid(), dead.exit_status()));
        // Inside gVisor the daemon stays root and reaches the binary by its path; starting it by path
        // there does not depend on gVisor following /proc's descriptor links in an exec.
        let started = Arc::new(Zygote::start(
            &self.zygote_exe,
            self.mode() == Mode::InsideGvisor,
            &self.cfg.root,
            &self.zygote_config,
            Duration::from_secs(120),
        )?);
        for f in &started.preload_failed {
            tracing::warn!(module = %f.module, "a preload module failed to import: {}", f.error);
        }
        if let Ok(mut p) = self.preload_failed.lock() {
            p.clone_from(&started.preload_failed);
        }
        match restarted {
            Some((old, status)) => tracing::warn!(
                pid = started.pid(),
                "the sandbox's Python worker (zygote pid {old}) stopped ({}); restarted it; runs in sessions \
                 opened before keep working (their launchers do not depend on it)",
                status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "status unknown".into())
            ),
            None => tracing::info!(
                pid = started.pid(),
                python = %started.python_version,
                "zygote started"
            ),
        }
        *z = Some(started.clone());
        Ok(started)
    }

    /// When `z` has died: the error a request it was serving gets, after a restart in the background so
    /// that the next request finds a zygote. `None` while `z` still runs.
    fn worker_stopped(self: &Arc<Self>, z: &Zygote, during: &str) -> Option<OpError> {
        if z.alive() {
            return None;
        }
        // The watcher restarts it.
        Some(unavailable(format!(
            "the sandbox's Python worker stopped while {during} and is being restarted; run the code again"
        )))
    }

    /// Preload modules the zygote could not import: (module, the last line of its import error).
    pub fn preload_failures(&self) -> Vec<(String, String)> {
        self.preload_failed
            .lock()
            .map(|p| p.iter().map(|f| (f.module.clone(), f.error.clone())).collect())
            .unwrap_or_default()
    }

    async fn zygote(self: &Arc<Self>) -> Result<Arc<Zygote>, OpError> {
        let this = self.clone();
        let z = tokio::task::spawn_blocking(move || this.zygote_blocking())
            .await
            .map_err(|e| OpError::internal(format!("zygote start: {e}")))??;
        self.watch_zygote(&z);
        Ok(z)
    }

    /// The zygote is restarted as soon as it dies, not when the next session needs it: a thread
    /// waits on its pidfd, then starts a new one (which `zygote_blocking` logs). It holds the engine
    /// weakly: once the engine is gone its zygote is killed, and the thread ends.
    fn watch_zygote(self: &Arc<Self>, z: &Zygote) {
        let pid = z.pid();
        if self.watched.swap(pid, Ordering::SeqCst) == pid {
            return;
        }
        let Ok(pidfd) = PidFd::open(pid as i32) else {
            return;
        };
        let engine = Arc::downgrade(self);
        let watcher = std::thread::Builder::new()
            .name("zygote-watch".into())
            .spawn(move || {
                pidfd.wait_exit();
                // A zygote that dies as soon as it starts would otherwise be restarted in a tight loop.
                std::thread::sleep(Duration::from_millis(200));
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                match engine.zygote_blocking() {
                    Ok(z) => engine.watch_zygote(&z),
                    Err(e) => tracing::warn!("restarting the sandbox's Python worker failed: {e}"),
                }
            });
        if let Err(e) = watcher {
            tracing::warn!("cannot watch the zygote: {e}");
        }
    }

    /// Creates a session: a user + mount namespace with a tmpfs of `workspace_bytes` as workspace,
    /// holding an empty output folder ([`OUTPUT_DIR`]) for the images runs return.
    pub async fn open_session(self: &Arc<Self>, workspace_bytes: u64) -> Result<SessionNs, OpError> {
        let s = if self.mode() == Mode::InsideGvisor {
            self.open_session_inside(workspace_bytes)?
        } else {
            self.open_session_ns(workspace_bytes).await?
        };
        s.workspace.mkdir(OUTPUT_DIR)?;
        Ok(s)
    }

    async fn open_session_ns(self: &Arc<Self>, workspace_bytes: u64) -> Result<SessionNs, OpError> {
        let z = self.zygote().await?;
        let (status_r, status_w) = pipe_pair()?;
        let (hold_r, hold_w) = pipe_pair()?;
        let inodes = (workspace_bytes / 4096).clamp(1024, 1 << 20);
        let mut fds = vec![status_w.as_raw_fd(), hold_r.as_raw_fd()];
        // Native jails come from the session's own launcher; gVisor containers from the zygote.
        let launcher = match self.mode() {
            Mode::Native => {
                let (ours, theirs) = seqpacket_pair()?;
                fds.push(theirs.as_raw_fd());
                Some((ours, theirs))
            }
            Mode::Runsc | Mode::InsideGvisor => None,
        };
        let req = sluice_sandbox_jail::Request::OpenSession {
            workspace_bytes,
            workspace_inodes: inodes,
            launcher: launcher.is_some(),
        };
        let sent = z.send(&req, &fds);
        if let Err(e) = sent {
            return Err(self.worker_stopped(&z, "creating the session").unwrap_or(e));
        }
        drop((status_w, hold_r));
        let launcher = launcher.map(|(ours, _theirs)| ours);
        let mut status = BufReader::new(receiver(status_r)?);
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let pid = match read_status_by(&mut status, deadline).await? {
            Some(sluice_sandbox_jail::Status::SessionReady { pid }) => pid as u32,
            Some(sluice_sandbox_jail::Status::Error { message, .. }) => {
                return Err(unavailable(format!(
                    "cannot create the session's namespaces: {message}"
                )));
            }
            Some(other) => return Err(OpError::internal(format!("unexpected status {other:?}"))),
            None => {
                return Err(self
                    .worker_stopped(&z, "creating the session")
                    .unwrap_or_else(|| unavailable("cannot create the session's namespaces")));
            }
        };
        let open = |p: PathBuf, flags: i32| {
            OpenOptions::new()
                .read(true)
                .custom_flags(flags | libc::O_CLOEXEC)
                .open(&p)
                .map(OwnedFd::from)
                .map_err(|e| OpError::internal(format!("{}: {e}", p.display())))
        };
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let userns = open(proc.join("ns/user"), 0)?;
        let mntns = open(proc.join("ns/mnt"), 0)?;
        let ws_in_ns = self.cfg.root.join("ws");
        let ws = open(
            proc.join("root")
                .join(ws_in_ns.strip_prefix("/").unwrap_or(&ws_in_ns)),
            libc::O_PATH | libc::O_DIRECTORY,
        )?;
        // The session child exits once we hold its namespaces.
        drop(hold_w);
        Ok(SessionNs {
            userns: Some(userns),
            mntns: Some(mntns),
            workspace: Workspace::new(ws),
            inside: None,
            workspace_bytes,
            warm: tokio::sync::Mutex::new(None),
            preparing: AtomicBool::new(false),
            closed: watch::channel(false).0,
            cancels: watch::channel(0).0,
            launcher: Mutex::new(launcher),
            gvisor: tokio::sync::Mutex::new(None),
        })
    }

    /// Inside gVisor: a session is a size-limited tmpfs, mode 0700, owned by a uid no other open
    /// session has, mounted by the daemon (root of gVisor's kernel) under `<root>/ws`.
    fn open_session_inside(&self, workspace_bytes: u64) -> Result<SessionNs, OpError> {
        let uid = self
            .uids
            .lease()
            .ok_or_else(|| unavailable("no free session uid (too many open sessions)"))?;
        let id = uid.uid();
        let dir = self.cfg.root.join("ws").join(format!("u{id}"));
        // A directory left by a daemon that was killed is reused (it is empty once its mount is gone).
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(OpError::internal(format!("{}: {e}", dir.display()))),
        }
        let opts = policy::inside_workspace_options(workspace_bytes, id);
        nix::mount::mount(
            Some("tmpfs"),
            &dir,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(opts.as_str()),
        )
        .map_err(|e| unavailable(format!("cannot mount the session's workspace tmpfs: {e}")))?;
        let inside = InsideSession { uid, dir };
        let ws = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&inside.dir)
            .map(OwnedFd::from)
            .map_err(|e| OpError::internal(format!("{}: {e}", inside.dir.display())))?;
        Ok(SessionNs {
            userns: None,
            mntns: None,
            workspace: Workspace::with_owner(ws, id, id),
            inside: Some(inside),
            workspace_bytes,
            warm: tokio::sync::Mutex::new(None),
            preparing: AtomicBool::new(false),
            closed: watch::channel(false).0,
            cancels: watch::channel(0).0,
            launcher: Mutex::new(None),
            gvisor: tokio::sync::Mutex::new(None),
        })
    }

    /// Builds a jail for the session and waits until it is locked down and waiting for code. `probe`
    /// asks a native jail to try and report every protection step (gVisor is probed with a real run).
    pub async fn prepare(self: &Arc<Self>, s: &SessionNs, probe: bool) -> Result<Jail, OpError> {
        match self.mode() {
            Mode::Runsc => Err(OpError::internal(
                "gVisor runs are forked inside the session's container, not prepared",
            )),
            Mode::Native => self.prepare_native(s, probe).await,
            Mode::InsideGvisor => self.prepare_inside(s, probe).await,
        }
    }

    /// Inside gVisor: the zygote forks a trusted intermediate child, which forks the run's PID 1 into a
    /// fresh PID namespace and reports its pid; PID 1 builds its root, drops to the session's uid and
    /// waits for its code on `go`, as a native jail does.
    async fn prepare_inside(self: &Arc<Self>, s: &SessionNs, probe: bool) -> Result<Jail, OpError> {
        use sluice_sandbox_jail::{Prepare, Protection, Request, Status};
        let Some(inside) = &s.inside else {
            return Err(OpError::internal("not a session of a daemon inside gVisor"));
        };
        let z = self.zygote().await?;
        let (status_r, status_w) = pipe_pair()?;
        let (go, go_theirs) = seqpacket_pair()?;
        let (hold_r, hold_w) = pipe_pair()?;
        let skip = self.skip.lock().map(|s| s.clone()).unwrap_or_default();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let uid = inside.uid.uid();
        let req = Request::InsideJail {
            seq,
            prepare: Prepare {
                probe,
                skip: skip.iter().filter_map(|n| Protection::from_name(n)).collect(),
                unshare_flags: RUN_NAMESPACES,
            },
            uid,
            gid: uid,
            workspace: inside.dir.display().to_string(),
        };
        if let Err(e) = z.send(
            &req,
            &[status_w.as_raw_fd(), go_theirs.as_raw_fd(), hold_r.as_raw_fd()],
        ) {
            return Err(self.worker_stopped(&z, "preparing a jail").unwrap_or(e));
        }
        drop((status_w, go_theirs, hold_r));
        let mut status = BufReader::new(receiver(status_r)?);
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let (mut handle, mut ready, mut report) = (None, false, None);
        let mut hold = Some(hold_w);
        while !(ready && handle.is_some()) {
            match read_status_by(&mut status, deadline).await? {
                None => return Err(unavailable("the sandbox worker exited while preparing a jail")),
                Some(Status::Forked { pid }) => {
                    let hold = hold.take().ok_or_else(|| OpError::internal("two jail pids"))?;
                    handle = Some(RunHandle::Held { pid, hold });
                }
                Some(Status::Probe(steps)) => report = Some(crate::host::JailSteps::Typed(steps)),
                Some(Status::Ready) => ready = true,
                Some(Status::Error { message, .. }) => {
                    if let Some(h) = &handle {
                        let _ = h.kill();
                    }
                    return Err(unavailable(format!("sandbox set-up failed: {message}")));
                }
                Some(other) => return Err(OpError::internal(format!("unexpected status {other:?}"))),
            }
        }
        let pidfd = handle.ok_or_else(|| OpError::internal("no jail pid"))?;
        Ok(Jail {
            go: Some(go),
            status,
            pidfd,
            probe: report,
            cgroup: None,
        })
    }

    /// Reads status events until the intermediate child reports `runsc run`'s pid, and opens a pidfd on it.
    async fn runsc_pid(status: &mut BufReader<pipe::Receiver>, deadline: Instant) -> Result<PidFd, OpError> {
        use sluice_sandbox_jail::Status;
        match read_status_by(status, deadline).await? {
            // runsc is not reaped before its parent has reported how it ended, so this pid is still its.
            Some(Status::Forked { pid }) => {
                PidFd::open(pid).map_err(|e| OpError::internal(format!("pidfd_open: {e}")))
            }
            Some(Status::Error { message, .. }) => {
                Err(unavailable(format!("sandbox set-up failed: {message}")))
            }
            Some(other) => Err(OpError::internal(format!("unexpected status {other:?}"))),
            None => Err(unavailable("the sandbox worker exited while preparing a jail")),
        }
    }

    /// The session's gVisor container, starting one if there is none (or the last one stopped).
    pub async fn gvisor_container(self: &Arc<Self>, s: &SessionNs) -> Result<Arc<Container>, OpError> {
        let mut slot = s.gvisor.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_stopped()) {
            return Ok(c.clone());
        }
        if s.is_closed() {
            return Err(unavailable("the sandbox session is closed"));
        }
        let c = self.start_gvisor(s).await?;
        if s.is_closed() {
            c.stop();
            return Err(unavailable("the sandbox session is closed"));
        }
        tracing::debug!(runsc = c.pid(), python = %c.python, "the session's gVisor sandbox is up");
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Starts a gVisor container for the session and waits until its session server is ready.
    async fn start_gvisor(self: &Arc<Self>, s: &SessionNs) -> Result<Arc<Container>, OpError> {
        let z = self.zygote().await?;
        let (status_r, status_w) = pipe_pair()?;
        let (stdin_r, stdin_w) = pipe_pair()?;
        let (out_r, out_w) = pipe_pair()?;
        let (err_r, err_w) = pipe_pair()?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (Some(userns), Some(mntns)) = (&s.userns, &s.mntns) else {
            return Err(OpError::internal("a runsc session without namespaces"));
        };
        let (userns, mntns) = (userns.as_raw_fd(), mntns.as_raw_fd());
        let req = sluice_sandbox_jail::Request::StartGvisor {
            unshare_flags: GVISOR_NAMESPACES,
            seq,
        };
        let fds = [
            userns,
            mntns,
            status_w.as_raw_fd(),
            stdin_r.as_raw_fd(),
            out_w.as_raw_fd(),
            err_w.as_raw_fd(),
        ];
        if let Err(e) = z.send(&req, &fds) {
            return Err(self
                .worker_stopped(&z, "starting the session's gVisor sandbox")
                .unwrap_or(e));
        }
        drop((status_w, stdin_r, out_w, err_w));
        let mut status = BufReader::new(receiver(status_r)?);
        let deadline = Instant::now() + GVISOR_SETUP_TIMEOUT;
        let runsc = Self::runsc_pid(&mut status, deadline).await?;
        let stdin =
            pipe::Sender::from_owned_fd(stdin_w).map_err(|e| OpError::internal(format!("pipe: {e}")))?;
        Container::serve(
            gvisor::session::Started {
                runsc,
                stdin,
                stdout: receiver(out_r)?,
                stderr: receiver(err_r)?,
                status,
            },
            deadline.saturating_duration_since(Instant::now()),
            self.cfg.gvisor_idle,
        )
        .await
    }

    /// Into the run's cgroup while PID 1 still builds its jail: user code, and anything it forks, only
    /// ever runs inside the group. Kills the jail when that fails.
    async fn enter_cgroup(&self, pf: &PidFd) -> Result<Option<RunCgroup>, OpError> {
        let Ok(cgroups) = &self.cfg.cgroups else {
            return Ok(None);
        };
        // The default run's memory limit, so that most runs need no second write. On a thread of its
        // own: moving a process between cgroups may wait for an RCU grace period (≈ 10 ms after a quiet
        // spell), which must not stall a runtime worker.
        let (cgroups, pid) = (cgroups.clone(), pf.pid());
        let memory = self.cfg.limits.for_run(None, None).memory_mb << 20;
        let max_pids = self.cfg.limits.max_processes;
        let group = tokio::task::spawn_blocking(move || {
            let g = cgroups.create_run(memory, max_pids)?;
            g.enter(pid)?;
            Ok::<_, std::io::Error>(g)
        })
        .await
        .map_err(|e| OpError::internal(format!("cgroup task: {e}")))
        .and_then(|r| r.map_err(|e| unavailable(format!("sandbox set-up failed: cgroup: {e}"))));
        match group {
            Ok(g) => Ok(Some(g)),
            Err(e) => {
                let _ = pf.kill();
                Err(e)
            }
        }
    }

    /// A native jail from the session's launcher: a typed [`sluice_sandbox_jail::Prepare`], then typed
    /// status events until the jail's pidfd has arrived (and PID 1 is in its cgroup) and it is `Ready`.
    async fn prepare_native(self: &Arc<Self>, s: &SessionNs, probe: bool) -> Result<Jail, OpError> {
        use sluice_sandbox_jail::{Prepare, Protection, Status};
        let (status_r, status_w) = pipe_pair()?;
        let (go, go_theirs) = seqpacket_pair()?;
        let skip = self.skip.lock().map(|s| s.clone()).unwrap_or_default();
        let prepare = Prepare {
            probe,
            // Degraded mode's names come from the protocol's protection list, which uses these names.
            skip: skip.iter().filter_map(|n| Protection::from_name(n)).collect(),
            unshare_flags: RUN_NAMESPACES,
        };
        let body =
            sluice_sandbox_jail::codec::encode(&prepare).map_err(|e| OpError::internal(e.to_string()))?;
        {
            let launcher = s
                .launcher
                .lock()
                .map_err(|_| OpError::internal("launcher lock poisoned"))?;
            let Some(launcher) = launcher.as_ref() else {
                return Err(unavailable("the sandbox session is closed"));
            };
            send_with_fds(launcher, &body, &[status_w.as_raw_fd(), go_theirs.as_raw_fd()])?;
        }
        drop((status_w, go_theirs));
        let mut status = BufReader::new(receiver(status_r)?);
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let (mut pidfd, mut ready, mut report, mut cgroup) = (None, false, None, None);
        while !(ready && pidfd.is_some()) {
            match read_status_by(&mut status, deadline).await? {
                None => return Err(unavailable("the sandbox worker exited while preparing a jail")),
                Some(Status::Child) => {
                    // The launcher queued a pidfd on the jail's PID 1 before it said `Child` (the pid it
                    // knows is in the session's PID namespace, meaningless here).
                    let fd = recv_queued_fd(&go)?;
                    let pf = PidFd::adopt(fd).map_err(|e| OpError::internal(format!("jail pidfd: {e}")))?;
                    cgroup = self.enter_cgroup(&pf).await?;
                    pidfd = Some(pf);
                }
                Some(Status::Probe(steps)) => report = Some(crate::host::JailSteps::Typed(steps)),
                Some(Status::Ready) => ready = true,
                Some(Status::Error { message, .. }) => {
                    return Err(unavailable(format!("sandbox set-up failed: {message}")));
                }
                Some(other) => return Err(OpError::internal(format!("unexpected status {other:?}"))),
            }
        }
        let pidfd = pidfd.ok_or_else(|| OpError::internal("no jail pid"))?;
        Ok(Jail {
            go: Some(go),
            status,
            pidfd: RunHandle::Fd(pidfd),
            probe: report,
            cgroup,
        })
    }

    fn prepare_next(self: &Arc<Self>, s: &Arc<SessionNs>) {
        if self.mode() == Mode::Runsc || s.is_closed() || s.preparing.swap(true, Ordering::SeqCst) {
            return;
        }
        let (this, s) = (self.clone(), s.clone());
        tokio::spawn(async move {
            let mut warm = s.warm.lock().await;
            let jail = this.prepare(&s, false).await;
            s.preparing.store(false, Ordering::SeqCst);
            match jail {
                Ok(j) if !s.is_closed() => *warm = Some(j),
                Ok(_) => {}
                Err(e) => tracing::warn!("preparing a jail failed: {e}"),
            }
        });
    }

    /// Prepares the session's first jail (gVisor: starts its container) in the background, so that its
    /// first run is fast too.
    pub fn warm_up(self: &Arc<Self>, s: &Arc<SessionNs>) {
        if self.mode() != Mode::Runsc {
            return self.prepare_next(s);
        }
        let (this, s) = (self.clone(), s.clone());
        tokio::spawn(async move {
            if let Err(e) = this.gvisor_container(&s).await {
                tracing::warn!("starting a session's gVisor sandbox failed: {}", e.message);
            }
        });
    }

    /// Gives a prepared jail its run; returns the output pipes and the report pipe to read, or `None`
    /// when the jail died while it waited.
    fn hand_over(
        &self,
        jail: &mut Jail,
        code: &str,
        rlimits: &[policy::Rlimit],
        memory_bytes: u64,
    ) -> Result<Option<(pipe::Receiver, pipe::Receiver, pipe::Receiver)>, OpError> {
        if let Some(group) = &jail.cgroup {
            group
                .set_memory(memory_bytes)
                .map_err(|e| OpError::internal(format!("cgroup memory limit: {e}")))?;
        }
        let header = sluice_sandbox_jail::codec::encode(&sluice_sandbox_jail::RunHeader {
            rlimits: rlimits.to_vec(),
            tmp_links: self.tmp_links.clone(),
        })
        .map_err(|e| OpError::internal(e.to_string()))?;
        match jail.go.take() {
            None => Ok(None),
            Some(go) => {
                let code_fd = memfd_create("sluice-code", MFdFlags::MFD_CLOEXEC)
                    .map_err(|e| OpError::internal(format!("memfd: {e}")))?;
                std::fs::File::from(
                    code_fd
                        .try_clone()
                        .map_err(|e| OpError::internal(e.to_string()))?,
                )
                .write_all_at(code.as_bytes(), 0)
                .map_err(|e| OpError::internal(format!("memfd write: {e}")))?;
                let (out_r, out_w) = pipe_pair()?;
                let (err_r, err_w) = pipe_pair()?;
                let (rep_r, rep_w) = pipe_pair()?;
                let fds = [
                    code_fd.as_raw_fd(),
                    out_w.as_raw_fd(),
                    err_w.as_raw_fd(),
                    rep_w.as_raw_fd(),
                ];
                if send_with_fds(&go, &header, &fds).is_err() {
                    return Ok(None);
                }
                Ok(Some((receiver(out_r)?, receiver(err_r)?, receiver(rep_r)?)))
            }
        }
    }

    /// A run in a prepared jail (native, and inside a gVisor container): the session's warm jail, or a
    /// fresh one when it died; the next one is prepared while this one runs.
    async fn run_jail(
        self: &Arc<Self>,
        s: &Arc<SessionNs>,
        code: &str,
        rlimits: &[policy::Rlimit],
        limits: policy::RunLimits,
    ) -> Result<Ran, OpError> {
        let warm = s.warm.lock().await.take();
        // A warm jail may have died since it was prepared (session closing, host trouble): then build one.
        let mut handed = None;
        if let Some(mut j) = warm {
            handed = self
                .hand_over(&mut j, code, rlimits, limits.memory_mb << 20)?
                .map(|pipes| (j, pipes));
        }
        let (mut jail, (out_r, err_r, rep)) = match handed {
            Some(h) => h,
            None => {
                let mut j = self.prepare(s, false).await?;
                let pipes = self
                    .hand_over(&mut j, code, rlimits, limits.memory_mb << 20)?
                    .ok_or_else(|| unavailable("a freshly prepared sandbox died before its run"))?;
                (j, pipes)
            }
        };
        let start = Instant::now();
        self.prepare_next(s);

        let cap = self.cfg.limits.output_bytes as usize;
        let (mut out, mut err) = (Capture::new(cap), Capture::new(cap));
        let (mut out_r, mut err_r) = (out_r, err_r);
        let mut rep_eof = false;
        let mut rep = BufReader::new(rep);
        let (mut out_eof, mut err_eof, mut status_eof) = (false, false, false);
        let (mut done, mut exit, mut memory, mut timed_out, mut killed) = (None, None, false, false, false);
        let mut closed = s.closed.subscribe();
        let mut cancels = s.cancels.subscribe();
        cancels.borrow_and_update();
        let mut deadline = tokio::time::Instant::from_std(start + Duration::from_millis(limits.timeout_ms));
        let (mut ob, mut eb) = (vec![0u8; 65536], vec![0u8; 65536]);
        let mut rl = String::new();
        // The status pipe carries typed frames: read as they come, decoded when whole.
        let (mut frames, mut fb) = (Vec::new(), vec![0u8; 4096]);
        loop {
            // Without the runner's `done` line, the report pipe is read to its end too: a `limit memory`
            // line written just before the jail exited may still be in it when the exit status arrives.
            if out_eof && err_eof && (done.is_some() || ((exit.is_some() || status_eof) && rep_eof)) {
                break;
            }
            tokio::select! {
                r = out_r.read(&mut ob), if !out_eof => match r {
                    Ok(0) | Err(_) => out_eof = true,
                    Ok(n) => out.push(&ob[..n]),
                },
                r = err_r.read(&mut eb), if !err_eof => match r {
                    Ok(0) | Err(_) => err_eof = true,
                    Ok(n) => err.push(&eb[..n]),
                },
                r = rep.read_line(&mut rl), if !rep_eof => {
                    match r {
                        Ok(0) | Err(_) => rep_eof = true,
                        Ok(_) => {
                            // Self-reported by the (untrusted) run: it can only misreport its own result.
                            let line = rl.trim_end();
                            if line == "limit memory" {
                                memory = true;
                            } else if let Some(rc) = line.strip_prefix("done ").and_then(|c| c.parse::<i32>().ok()) {
                                done = Some(rc);
                                // The code has finished; leftover background processes die with PID 1.
                                let _ = jail.pidfd.kill();
                            }
                        }
                    }
                    rl.clear();
                },
                r = jail.status.read(&mut fb), if !status_eof => {
                    match r {
                        Ok(0) | Err(_) => status_eof = true,
                        Ok(n) => {
                            frames.extend_from_slice(&fb[..n]);
                            while let Some(st) = sluice_sandbox_jail::codec::take_status(&mut frames) {
                                if let Ok(sluice_sandbox_jail::Status::Exit { end, .. }) = st {
                                    exit = Some(exit_status(end));
                                }
                            }
                        }
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if killed {
                        tracing::warn!(pid = jail.pidfd.pid(), "run did not finish after its kill");
                        break;
                    }
                    timed_out = done.is_none() && exit.is_none();
                    killed = true;
                    let _ = jail.pidfd.kill();
                    deadline = tokio::time::Instant::now() + KILL_GRACE;
                },
                _ = closed.changed() => {
                    let _ = jail.pidfd.kill();
                    return Err(OpError::new(ErrorKind::Cancelled, "the session was closed during the run"));
                },
                Ok(()) = cancels.changed() => {
                    let _ = jail.pidfd.kill();
                    return Err(OpError::new(ErrorKind::Cancelled, "the run was cancelled by its caller"));
                },
            }
        }
        // The kernel's own count: the run's group hit its memory limit (trusted, unlike the report line).
        memory |= jail.cgroup.as_ref().is_some_and(RunCgroup::oom_killed);
        drop(jail);
        let duration_ms = start.elapsed().as_secs_f64() * 1000.0;
        let exit = match (done, exit) {
            (Some(rc), _) => ExitStatus {
                code: Some(rc),
                signal: None,
            },
            (None, Some(e)) => e,
            (None, None) => ExitStatus {
                code: None,
                signal: Some(libc::SIGKILL),
            },
        };
        Ok(Ran {
            exit,
            out,
            err,
            memory,
            timed_out,
            duration_ms,
        })
    }

    /// A run forked inside the session's gVisor container by its session server. A container that stops
    /// during the run fails it (the next run starts a fresh one); a run that does not end within
    /// [`KILL_GRACE`] of its kill costs the container.
    async fn run_gvisor(
        self: &Arc<Self>,
        s: &Arc<SessionNs>,
        code: &str,
        rlimits: &[policy::Rlimit],
        timeout_ms: u64,
    ) -> Result<Ran, OpError> {
        let container = self.gvisor_container(s).await?;
        let setup = RunSetup {
            rlimits: rlimits.to_vec(),
            links: self.tmp_links.clone(),
        };
        let start = Instant::now();
        let mut run = container.start_run(setup, code)?;
        let cap = self.cfg.limits.output_bytes as usize;
        let (mut out, mut err) = (Capture::new(cap), Capture::new(cap));
        let (mut timed_out, mut killed) = (false, false);
        let mut closed = s.closed.subscribe();
        let mut cancels = s.cancels.subscribe();
        cancels.borrow_and_update();
        let mut deadline = tokio::time::Instant::from_std(start + Duration::from_millis(timeout_ms));
        let ended = loop {
            tokio::select! {
                e = run.next() => match e {
                    Some(Event::Started { .. } | Event::Ready { .. }) => {}
                    Some(Event::Stdout { bytes, .. }) => out.push(&bytes),
                    Some(Event::Stderr { bytes, .. }) => err.push(&bytes),
                    Some(Event::Exit { ended, .. }) => break Some(ended),
                    Some(Event::Failed { message, .. }) => {
                        return Err(unavailable(format!("sandbox set-up failed: {message}")));
                    }
                    None => {
                        let why = container.stopped_because().await;
                        return Err(unavailable(format!(
                            "the session's gVisor sandbox stopped ({why}); run the code again"
                        )));
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if killed {
                        // The server did not answer the kill: the container goes, the next run gets a new one.
                        tracing::warn!(runsc = container.pid(), "a run did not end after its kill; stopping the session's gVisor sandbox");
                        container.stop();
                        break None;
                    }
                    timed_out = true;
                    killed = true;
                    run.kill();
                    deadline = tokio::time::Instant::now() + KILL_GRACE;
                },
                _ = closed.changed() => {
                    run.kill();
                    return Err(OpError::new(ErrorKind::Cancelled, "the session was closed during the run"));
                },
                Ok(()) = cancels.changed() => {
                    run.kill();
                    return Err(OpError::new(ErrorKind::Cancelled, "the run was cancelled by its caller"));
                },
            }
        };
        let exit = match ended {
            Some(Ended::Code(c)) => ExitStatus {
                code: Some(c),
                signal: None,
            },
            Some(Ended::Signal(sig)) => ExitStatus {
                code: None,
                signal: Some(sig),
            },
            None => ExitStatus {
                code: None,
                signal: Some(libc::SIGKILL),
            },
        };
        Ok(Ran {
            exit,
            out,
            err,
            memory: false,
            timed_out,
            duration_ms: start.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// Runs code in the session. Dropping the future (client gone) kills the run.
    pub async fn run(self: &Arc<Self>, s: &Arc<SessionNs>, req: RunPython) -> Result<RunResult, OpError> {
        let limits = self.cfg.limits.for_run(req.timeout_ms, req.memory_mb);
        for f in &req.inputs {
            s.workspace.write(&f.path, &f.content.0, true)?;
        }
        // The output folder again, should an earlier run have removed it; a file or symlink that took its
        // name is the code's choice, and then no image comes back.
        if let Err(e) = s.workspace.mkdir(OUTPUT_DIR) {
            tracing::debug!("the output folder cannot be made: {e}");
        }
        let before = s.workspace.snapshot()?;
        let rlimits = self.cfg.limits.rlimits(limits);
        let ran = match self.mode() {
            Mode::Runsc => self.run_gvisor(s, &req.code, &rlimits, limits.timeout_ms).await?,
            Mode::Native | Mode::InsideGvisor => self.run_jail(s, &req.code, &rlimits, limits).await?,
        };
        let Ran {
            exit,
            out,
            err,
            memory,
            timed_out,
            duration_ms,
        } = ran;
        let mut limits_hit = Vec::new();
        if timed_out {
            limits_hit.push(Limit::Timeout);
        }
        if exit.signal == Some(libc::SIGXCPU) {
            limits_hit.push(Limit::Cpu);
        }
        let stderr_truncated = err.truncated();
        let stderr = err.finish();
        // Inside gVisor there is no report pipe; the runner's traceback (as self-reported as the native
        // report line) says whether the address-space limit stopped the code.
        let memory = memory
            || (self.mode() == Mode::Runsc
                && stderr
                    .text
                    .trim_end()
                    .lines()
                    .last()
                    .is_some_and(|l| l.starts_with("MemoryError")));
        if memory {
            limits_hit.push(Limit::Memory);
        }
        if out.truncated() || stderr_truncated {
            limits_hit.push(Limit::Output);
        }
        if stderr.text.contains("[Errno 27] File too large")
            || stderr.text.contains("[Errno 28] No space left")
        {
            limits_hit.push(Limit::FileSize);
        }
        let after = s.workspace.snapshot()?;
        let files = produced(&before, &after);
        let caps = ImageCaps {
            per_image: self.cfg.limits.image_bytes,
            per_run: self.cfg.limits.images_bytes,
        };
        // SVGs are rendered to PNG here, which can take a while: off the runtime's worker.
        let collected = tokio::task::block_in_place(|| images::collect(&s.workspace, &files, caps));
        Ok(RunResult {
            exit,
            stdout: out.finish(),
            stderr,
            files,
            duration_ms,
            backend: self.backend(),
            limits_hit,
            images: collected.images,
            images_left_out: collected.left_out,
            images_not_rendered: collected.not_rendered,
        })
    }
}

/// What a run's code did, as either kind of run reports it.
struct Ran {
    exit: ExitStatus,
    out: Capture,
    err: Capture,
    /// The run said it hit its memory limit (natively, or its cgroup did).
    memory: bool,
    timed_out: bool,
    duration_ms: f64,
}

/// The font-cache files of matplotlib that `setup-python.sh` built below one of the interpreter's
/// prefixes (none when the venv was made otherwise or has no matplotlib).
fn mpl_cache_files(prefixes: &[PathBuf]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = prefixes
        .iter()
        .filter_map(|p| std::fs::read_dir(p.join(policy::MPL_CACHE_IN_PREFIX)).ok())
        .flat_map(|dir| dir.flatten())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

fn exit_status(end: sluice_sandbox_jail::End) -> ExitStatus {
    match end {
        sluice_sandbox_jail::End::Code(c) => ExitStatus {
            code: Some(c),
            signal: None,
        },
        sluice_sandbox_jail::End::Signal(s) => ExitStatus {
            code: None,
            signal: Some(s),
        },
    }
}

/// Reads one typed status frame (exactly: whatever follows stays in the reader for the run).
pub(crate) async fn read_status_by(
    r: &mut BufReader<pipe::Receiver>,
    deadline: Instant,
) -> Result<Option<sluice_sandbox_jail::Status>, OpError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let frame = async {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len).await {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let len = u32::from_le_bytes(len) as usize;
        if len + 4 > sluice_sandbox_jail::codec::MAX_STATUS_FRAME {
            return Err(std::io::Error::other(format!("a status frame of {len} bytes")));
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await?;
        Ok(Some(body))
    };
    match tokio::time::timeout(left, frame).await {
        Err(_) => Err(OpError::new(
            ErrorKind::Timeout,
            "the sandbox did not become ready in time",
        )),
        Ok(Err(e)) => Err(OpError::internal(format!("status pipe: {e}"))),
        Ok(Ok(None)) => Ok(None),
        Ok(Ok(Some(body))) => sluice_sandbox_jail::codec::decode(&body)
            .map(Some)
            .map_err(|e| OpError::internal(format!("status pipe: {e}"))),
    }
}

/// Files created or changed between two snapshots.
pub fn produced(before: &Snapshot, after: &Snapshot) -> Vec<ProducedFile> {
    after
        .iter()
        .filter_map(|(path, (size, mtime))| {
            let change = match before.get(path) {
                None => Change::Created,
                Some((s, m)) if s != size || m != mtime => Change::Modified,
                Some(_) => return None,
            };
            Some(ProducedFile {
                path: path.clone(),
                size: *size,
                change,
            })
        })
        .collect()
}

/// Keeps the first `cap` bytes of a stream and counts the rest.
pub struct Capture {
    kept: Vec<u8>,
    total: u64,
    cap: usize,
}

impl Capture {
    pub fn new(cap: usize) -> Self {
        Capture {
            kept: Vec::new(),
            total: 0,
            cap,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let room = self.cap.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&data[..room.min(data.len())]);
    }

    pub fn truncated(&self) -> bool {
        self.total > self.kept.len() as u64
    }

    pub fn finish(self) -> Output {
        Output {
            truncated: self.truncated(),
            total_bytes: self.total,
            text: String::from_utf8_lossy(&self.kept).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn capture_caps_and_counts() {
        // (chunks, cap, expected text, truncated, total)
        let cases: Vec<(Vec<&str>, usize, &str, bool, u64)> = vec![
            (vec!["ab", "cd"], 10, "abcd", false, 4),
            (vec!["abc", "def"], 4, "abcd", true, 6),
            (vec!["abcd"], 4, "abcd", false, 4),
            (vec![], 4, "", false, 0),
        ];
        for (chunks, cap, text, truncated, total) in cases {
            let mut c = Capture::new(cap);
            for ch in &chunks {
                c.push(ch.as_bytes());
            }
            assert_eq!(
                c.finish(),
                Output {
                    text: text.into(),
                    truncated,
                    total_bytes: total
                },
                "{chunks:?}"
            );
        }
    }

    #[test]
    fn exits_as_the_protocol_says_them() {
        use sluice_sandbox_jail::End;
        // (how PID 1 ended, the protocol's exit status)
        let cases = [
            (End::Code(3), (Some(3), None)),
            (End::Code(0), (Some(0), None)),
            (End::Signal(9), (None, Some(9))),
        ];
        for (end, (code, signal)) in cases {
            assert_eq!(exit_status(end), ExitStatus { code, signal }, "{end:?}");
        }
    }

    #[test]
    fn produced_files() {
        let before: Snapshot = [("a".to_string(), (1, 10)), ("b".to_string(), (2, 20))].into();
        let after: Snapshot = [
            ("a".to_string(), (1, 10)),
            ("b".to_string(), (3, 21)),
            ("c".to_string(), (5, 30)),
        ]
        .into();
        assert_eq!(
            produced(&before, &after),
            vec![
                ProducedFile {
                    path: "b".into(),
                    size: 3,
                    change: Change::Modified
                },
                ProducedFile {
                    path: "c".into(),
                    size: 5,
                    change: Change::Created
                },
            ]
        );
    }
}
