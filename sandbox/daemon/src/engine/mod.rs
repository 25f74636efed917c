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
//!
//! Code map: this file holds the types and the backend-independent half (the engine's set-up, the
//! zygote, opening a session, dispatching a run, turning what a run did into a [`RunResult`]);
//! [`native`] the host's namespaced sessions and native jails, [`jail`] a run in a prepared jail
//! (native, and inside gVisor), [`runsc`] the gVisor backend's bundle and per-session container,
//! [`inside`] sessions and jails inside a gVisor container, [`output`] what a run's output becomes.

mod inside;
mod jail;
mod native;
mod output;
mod runsc;
#[cfg(test)]
mod tests;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use sluice_sandbox_protocol::{Backend, ErrorKind, Limit, OUTPUT_DIR, RunPython, RunResult};
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::watch;

use crate::cgroup::{Cgroups, RunCgroup};
use crate::error::OpError;
use crate::gvisor::session::Container;
use crate::images::{self, ImageCaps};
use crate::pidfd::{PidFd, RunHandle};
use crate::policy::{self, HostPath, Limits, Project, ProjectMount, SANDBOX_ID};
use crate::workspace::Workspace;
use crate::zygote::{PythonFacts, Zygote, ZygoteExe, python_facts};

use inside::InsideSession;
use output::Ran;
pub use output::{Capture, produced};

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
