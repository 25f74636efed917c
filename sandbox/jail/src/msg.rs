//! The messages between the daemon and the zygote (and the zygote's launchers, intermediate children and
//! jails).
//!
//! Daemon -> zygote, on its control socket: one [`ZygoteConfig`], answered by one [`Hello`]; then a
//! [`Request`] per fork. Daemon -> a session's launcher: a [`Prepare`] per jail. Daemon -> a prepared
//! jail: one [`RunHeader`] with the code memfd and the output pipes. Zygote, launcher, intermediate child
//! and jail -> daemon, on a status pipe: [`Status`] events, each one length-prefixed frame written with a
//! single `write`. The gVisor backends ask the zygote directly: [`Request::StartGvisor`] (a session's
//! container, on the host) and [`Request::InsideJail`] (a run's jail when the daemon is inside gVisor).

use serde::{Deserialize, Serialize};

use crate::plan::{BpfInstruction, LandlockPolicy, Rlimit, RootPlan};

/// The ids inside a session's user namespace and the daemon's own ids they map to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub uid_inside: u32,
    pub gid_inside: u32,
    pub uid_outside: u32,
    pub gid_outside: u32,
}

/// Everything the zygote needs, computed once by the daemon's policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZygoteConfig {
    /// The venv's interpreter: the embedded Python takes it as its executable, so `sys.prefix` is the venv.
    pub python: String,
    /// The venv interpreter's version as it reports it (`3.11.2`), compared with the one the zygote links.
    pub python_version: String,
    /// Modules imported before the first fork.
    pub preload: Vec<String>,
    pub ids: IdMap,
    /// Where each session mounts its workspace tmpfs (in its own mount namespace).
    pub workspace_mountpoint: String,
    /// Where each session builds its jails' root.
    pub jail_dir: String,
    pub root: RootPlan,
    pub landlock: LandlockPolicy,
    /// Installed in order; empty when the allowlist could not be compiled for this architecture.
    pub seccomp: Vec<Vec<BpfInstruction>>,
    pub cap_last_cap: u32,
    /// The hard limits a jail starts with; each run lowers them to its own.
    pub rlimits_max: Vec<Rlimit>,
    /// The environment user code sees.
    pub env: Vec<(String, String)>,
    /// Resources whose limit the kernel refuses to change at all (gVisor's RLIMIT_MSGQUEUE: EPERM even
    /// when lowering). Setting them is left out, and said so, instead of failing the jail.
    pub unsettable_rlimits: Vec<u32>,
    /// gVisor on the host: how a session's container is started ([`Request::StartGvisor`]).
    pub runsc: Option<RunscConfig>,
}

/// What the zygote's intermediate child needs to start a session's gVisor container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunscConfig {
    /// The `runsc` executable.
    pub runsc: String,
    /// Its state directory: a private tmpfs is mounted on it in each container's mount namespace.
    pub state: String,
    /// `runsc`'s arguments (`argv[0]` included) up to the container's name, which the child appends.
    pub argv: Vec<String>,
}

/// The zygote's answer to its configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hello {
    Ready {
        pid: i32,
        /// The version of the interpreter the zygote embeds.
        python_version: String,
        preload: PreloadReport,
    },
    /// The zygote cannot serve (wrong Python version, interpreter start failed, threads after preload).
    Refused { reason: String },
}

/// Which preload modules imported, and why the others did not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreloadReport {
    pub imported: Vec<String>,
    pub failed: Vec<PreloadFailure>,
}

/// A preload module that failed to import, with the last line of its error (`ModuleNotFoundError: ...`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreloadFailure {
    pub module: String,
    pub error: String,
}

/// A fork the daemon asks of the zygote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Descriptors: status pipe, hold pipe (closed by the daemon once it has opened the session's
    /// namespaces), and with `launcher` the launcher's control socket (the native backend's; a gVisor
    /// session has its runs forked inside its container instead).
    OpenSession {
        workspace_bytes: u64,
        workspace_inodes: u64,
        launcher: bool,
    },
    /// gVisor on the host: the session's container. A trusted intermediate child joins the session's user
    /// and mount namespaces, unshares `unshare_flags` and forks `runsc run` as PID 1 of the new PID
    /// namespace, named `sluice-{seq}`. Descriptors: the session's user and mount namespaces, status pipe,
    /// the container's stdin, stdout and stderr.
    StartGvisor { unshare_flags: u64, seq: u64 },
    /// Inside a gVisor container: one run's jail. A trusted intermediate child forks its PID 1 into a fresh
    /// PID namespace; PID 1 builds a root of its own under the jail directory, drops to the session's
    /// `uid`, locks itself down and waits for its code. Descriptors: status pipe, go socket, hold pipe
    /// (closed by the daemon once it has let go of the pid).
    InsideJail {
        seq: u64,
        prepare: Prepare,
        uid: u32,
        gid: u32,
        /// The session's workspace tmpfs, bound at the run's `/workspace`.
        workspace: String,
    },
}

/// A jail the daemon asks of a session's launcher. Descriptors: status pipe, go socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepare {
    /// Try every step and report each ([`Status::Probe`]) instead of stopping at the first failure.
    pub probe: bool,
    /// Steps to skip (degraded mode only).
    pub skip: Vec<Protection>,
    /// The run's namespaces (`CLONE_NEW*`), PID included.
    pub unshare_flags: u64,
}

/// What a prepared jail receives with its code. Descriptors: code memfd, stdout, stderr, report pipe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunHeader {
    pub rlimits: Vec<Rlimit>,
    /// Read-only files linked into the run's fresh `/tmp`, as (link, target).
    pub tmp_links: Vec<(String, String)>,
}

/// The protections a jail applies to itself or checks. A native jail applies the first seven, in this
/// order; a jail inside gVisor applies the root, hostname, rlimits, capabilities, the session's uid,
/// `no_new_privs` and seccomp, and in a probe checks its PID and network namespaces from inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protection {
    MinimalRoot,
    UtsNamespace,
    NoNewPrivs,
    CapabilitiesDropped,
    Rlimits,
    Landlock,
    Seccomp,
    /// Inside gVisor: the run's code runs as the session's own uid, never root. Never skipped.
    SessionUid,
    /// Inside gVisor (probe): PID 1 of its own namespace, `/proc` shows only the run.
    PidNamespace,
    /// Inside gVisor (probe): no interface but loopback.
    NetworkNamespace,
}

impl Protection {
    /// Every protection, the native jail's first, in the order it applies them.
    pub const ALL: [Protection; 10] = [
        Protection::MinimalRoot,
        Protection::UtsNamespace,
        Protection::NoNewPrivs,
        Protection::CapabilitiesDropped,
        Protection::Rlimits,
        Protection::Landlock,
        Protection::Seccomp,
        Protection::SessionUid,
        Protection::PidNamespace,
        Protection::NetworkNamespace,
    ];

    /// The name `status` and `doctor` show (the protocol's `Protection.name`).
    pub fn name(self) -> &'static str {
        match self {
            Protection::MinimalRoot => "minimal_root",
            Protection::UtsNamespace => "uts_namespace",
            Protection::NoNewPrivs => "no_new_privs",
            Protection::CapabilitiesDropped => "capabilities_dropped",
            Protection::Rlimits => "rlimits",
            Protection::Landlock => "landlock",
            Protection::Seccomp => "seccomp",
            Protection::SessionUid => "session_uid",
            Protection::PidNamespace => "pid_namespace",
            Protection::NetworkNamespace => "network_namespace",
        }
    }

    pub fn from_name(name: &str) -> Option<Protection> {
        Protection::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// How one protection step went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Applied; the detail says what exactly, when there is more to say than "applied".
    Ok(Option<String>),
    /// Not tried: skipped in degraded mode.
    Skipped,
    Failed(String),
}

/// One step's result in a probe report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    pub protection: Protection,
    pub state: State,
}

/// Where a set-up failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// The zygote or launcher could not fork.
    Fork,
    /// Creating the session's namespaces and workspace.
    Session,
    /// The run's namespaces, descriptors or parent-death signal, before any protection.
    Setup,
    /// Handing the daemon a pidfd of the jail.
    Pidfd,
    /// Starting `runsc` (gVisor on the host), after the intermediate child forked it.
    Runsc,
    /// The intermediate child could not wait for the run it forked (inside gVisor).
    Wait,
    /// A protection step (not skipped) failed: no code runs.
    Protection(Protection),
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum End {
    Code(i32),
    Signal(i32),
}

/// An event on a status pipe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// The session's namespaces exist; the daemon opens them through this (host) pid.
    SessionReady {
        pid: i32,
    },
    /// The launcher forked the jail's PID 1 and queued a pidfd of it on the go socket.
    Child,
    /// An intermediate child forked the process the daemon kills to end the run or container (`runsc
    /// run`, or the run's PID 1 inside gVisor); `pid` is in the daemon's PID namespace. The child does not
    /// reap it before reporting its [`Status::Exit`], so the pid stays that process's meanwhile.
    Forked {
        pid: i32,
    },
    /// A probe's per-step results (sent just before [`Status::Ready`]).
    Probe(Vec<StepReport>),
    /// The jail is locked down and waits for its code.
    Ready,
    Error {
        step: Step,
        message: String,
    },
    /// The jail's PID 1 (or `runsc run`) ended, as its launcher or intermediate child saw it, with its
    /// peak RSS in KiB (0 where it is not measured: inside gVisor the child reports before reaping).
    Exit {
        end: End,
        maxrss_kb: i64,
    },
}
