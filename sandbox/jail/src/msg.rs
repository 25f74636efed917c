//! The messages between the daemon and the Rust zygote (and the zygote's session launchers and jails).
//!
//! Daemon -> zygote, on its control socket: one [`ZygoteConfig`], answered by one [`Hello`]; then a
//! [`Request`] per fork. Daemon -> a session's launcher: a [`Prepare`] per jail. Daemon -> a prepared
//! jail: one [`RunHeader`] with the code memfd and the output pipes. Zygote, launcher and jail -> daemon,
//! on a status pipe: [`Status`] events, each one length-prefixed frame written with a single `write`.

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
    /// namespaces), the launcher's control socket.
    OpenSession {
        workspace_bytes: u64,
        workspace_inodes: u64,
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

/// The protections a native jail applies to itself, in the order it applies them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protection {
    MinimalRoot,
    UtsNamespace,
    NoNewPrivs,
    CapabilitiesDropped,
    Rlimits,
    Landlock,
    Seccomp,
}

impl Protection {
    /// Every step, in the order the jail applies them.
    pub const ALL: [Protection; 7] = [
        Protection::MinimalRoot,
        Protection::UtsNamespace,
        Protection::NoNewPrivs,
        Protection::CapabilitiesDropped,
        Protection::Rlimits,
        Protection::Landlock,
        Protection::Seccomp,
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
    /// A probe's per-step results (sent just before [`Status::Ready`]).
    Probe(Vec<StepReport>),
    /// The jail is locked down and waits for its code.
    Ready,
    Error {
        step: Step,
        message: String,
    },
    /// The jail's PID 1 ended (reported by its launcher, which reaped it), with its peak RSS in KiB.
    Exit {
        end: End,
        maxrss_kb: i64,
    },
}
