//! What this host provides: the probe through the real jail, per-run cgroup limits, and the resulting
//! list of protections that `doctor` prints and `status` returns.
//!
//! This file turns a probe's outcome into that list (pure); [`probe()`] runs the probe.

mod probe;
#[cfg(test)]
mod tests;

pub use probe::{gvisor_seccomp, probe};

use std::collections::BTreeMap;

use sluice_sandbox_protocol::{Backend, Protection, ProtectionState};

use crate::engine::JAIL_STEPS;

/// The gVisor backend's protections, as `gvisor::judge_probe` and [`gvisor_seccomp`] report them.
pub const GVISOR_STEPS: &[&str] = &[
    "gvisor_kernel",
    "minimal_root",
    "network_none",
    "capabilities_dropped",
    "pid_namespace",
    "rlimits",
    "gvisor_seccomp",
];

/// Each protection step's result as a jail reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JailSteps {
    /// A jail's typed report (native, and inside gVisor).
    Typed(Vec<sluice_sandbox_jail::StepReport>),
    /// Results as text, `ok[: detail]` or `failed: why`, keyed by step name: what the gVisor backend's
    /// self-test (`gvisor::judge_probe`) and the in-gVisor probe (the jail's typed steps plus the
    /// daemon's own checks) report.
    Text(BTreeMap<String, String>),
}

impl JailSteps {
    /// Whether the step is in force, and the detail to show.
    fn step(&self, name: &str) -> (bool, String) {
        let (active, detail) = match self {
            JailSteps::Typed(steps) => {
                use sluice_sandbox_jail::State;
                match steps
                    .iter()
                    .find(|s| s.protection.name() == name)
                    .map(|s| &s.state)
                {
                    Some(State::Ok(detail)) => (true, detail.clone().unwrap_or_default()),
                    Some(State::Skipped) => (false, "skipped (degraded mode)".to_string()),
                    Some(State::Failed(why)) => (false, format!("failed: {why}")),
                    None => (false, "not reported".to_string()),
                }
            }
            JailSteps::Text(steps) => {
                let result = steps
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "not reported".to_string());
                let active = result.starts_with("ok");
                let detail = result
                    .strip_prefix("ok: ")
                    .or(result.strip_prefix("ok"))
                    .unwrap_or(&result)
                    .to_string();
                (active, detail)
            }
        };
        let detail = if detail.is_empty() {
            "applied".to_string()
        } else {
            detail
        };
        (active, detail)
    }
}

/// What the probe through the real pipeline found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub backend: Backend,
    /// The daemon runs inside a gVisor container and builds runs with [`Mode::InsideGvisor`].
    pub inside_gvisor: bool,
    /// The daemon's effective uid.
    pub uid: u32,
    /// Creating a session (user + mount namespace, tmpfs workspace).
    pub session: Result<(), String>,
    /// Preparing a jail: each step's result as the jail itself reported it.
    pub jail: Result<JailSteps, String>,
    /// Per-run cgroup limits: what is used, or why not.
    pub cgroup: Result<String, String>,
}

fn p(name: &str, active: bool, required: bool, detail: impl Into<String>) -> Protection {
    Protection {
        name: name.to_string(),
        state: if active {
            ProtectionState::Active
        } else {
            ProtectionState::Missing
        },
        required,
        detail: detail.into(),
    }
}

/// The steps a run's PID 1 inside gVisor reports (`sluice_sandbox_jail::inside::lock_down`), plus what the
/// daemon checks itself (`gvisor_container`, `mount_namespace`): (name, required).
pub const INSIDE_STEPS: &[(&str, bool)] = &[
    ("gvisor_container", true),
    ("pid_namespace", true),
    ("network_namespace", true),
    ("minimal_root", true),
    ("uts_namespace", true),
    ("rlimits", true),
    ("capabilities_dropped", true),
    ("session_uid", true),
    ("no_new_privs", true),
    ("seccomp", true),
    ("mount_namespace", false),
];

/// Turns a probe of the in-gVisor mode into its protections (pure). Required: everything the mode relies
/// on (the container being gVisor, the run's namespaces, its root, the session's uid, seccomp, rlimits);
/// landlock is reported missing, with what stands in for it.
fn inside_protections(probe: &ProbeOutcome) -> Vec<Protection> {
    let step = |name: &str| -> (bool, String) {
        match (&probe.session, &probe.jail) {
            (Err(e), _) => (false, format!("failed: no session: {e}")),
            (Ok(()), Err(e)) => (false, format!("failed: {e}")),
            (Ok(()), Ok(steps)) => steps.step(name),
        }
    };
    let mut out = Vec::new();
    let (uid_ok, uid_detail) = step("session_uid");
    out.push(p(
        "unprivileged_uid",
        uid_ok,
        true,
        if uid_ok {
            format!(
                "sandboxed code runs as its session's own uid, one per open session (the self-test's: \
                 {uid_detail}); the daemon is root of gVisor's kernel only, inside the container"
            )
        } else {
            uid_detail
        },
    ));
    out.push(p(
        "workspace_tmpfs",
        probe.session.is_ok(),
        true,
        match &probe.session {
            Ok(()) => "size-limited tmpfs workspace per session (mode 0700, owned by the session's uid); \
                       size-limited tmpfs /tmp per run"
                .to_string(),
            Err(e) => e.clone(),
        },
    ));
    for (name, required) in INSIDE_STEPS.iter().copied() {
        if name == "session_uid" {
            continue;
        }
        let (active, detail) = step(name);
        out.push(p(name, active, required, detail));
    }
    let ns_ok = probe.session.is_ok() && probe.jail.is_ok();
    out.push(p(
        "ipc_namespace",
        ns_ok,
        true,
        if ns_ok {
            "private System V IPC and POSIX queues".to_string()
        } else {
            "the run's namespaces could not be created".to_string()
        },
    ));
    out.push(p(
        "landlock",
        false,
        false,
        "gVisor's kernel has no landlock (ENOSYS); standing in for it: the run's own root holds only the \
         read-only installation, /workspace and /tmp (entered with chroot, no capability to leave it), the \
         session's uid owns nothing else, the seccomp allowlist, and no network device but loopback",
    ));
    out.push(p(
        "wall_clock_kill",
        true,
        true,
        "the run's PID 1 is killed by pid at the timeout, which takes every process of its PID namespace (no \
         pidfd in gVisor: its trusted parent does not reap it until the daemon lets go, so the pid stays its own)",
    ));
    out.extend(every_backends_last(probe));
    out
}

/// Turns a probe into the protection list (pure, so it is tested table-wise).
pub fn protections(probe: &ProbeOutcome) -> Vec<Protection> {
    if probe.inside_gvisor {
        return inside_protections(probe);
    }
    let mut out = vec![p(
        "unprivileged_uid",
        probe.uid != 0,
        true,
        if probe.uid != 0 {
            format!(
                "sandboxed code runs as host uid {} ({})",
                probe.uid,
                match probe.backend {
                    Backend::Native => "uid 1000 inside its user namespace",
                    Backend::Gvisor => "uid 0 of gVisor's kernel, without capabilities",
                }
            )
        } else {
            "the daemon runs as root; start it with --uid UID".to_string()
        },
    )];
    let ns_detail = |ok: &Result<(), String>, what: &str| match ok {
        Ok(()) => what.to_string(),
        Err(e) => e.clone(),
    };
    let session_ok = probe.session.is_ok();
    out.push(p(
        "user_namespace",
        session_ok,
        true,
        ns_detail(&probe.session, "one per session, mapped to one unprivileged uid"),
    ));
    out.push(p(
        "mount_namespace",
        session_ok,
        true,
        ns_detail(&probe.session, "per session and per run"),
    ));
    out.push(p(
        "workspace_tmpfs",
        session_ok,
        true,
        ns_detail(
            &probe.session,
            "size-limited tmpfs workspace per session; size-limited tmpfs /tmp per run",
        ),
    ));
    let jail_ok = probe.jail.is_ok();
    let steps: &[&str] = match probe.backend {
        Backend::Native => JAIL_STEPS,
        Backend::Gvisor => GVISOR_STEPS,
    };
    let run_namespaces: &[(&str, &str)] = match probe.backend {
        Backend::Native => &[
            ("pid_namespace", "fresh /proc showing only the run's processes"),
            ("network_namespace", "no interfaces but a down loopback"),
            ("ipc_namespace", "private System V IPC and POSIX queues"),
            ("cgroup_namespace", "own cgroup root view"),
        ],
        // runsc and its gofer run in fresh namespaces too; gVisor's kernel gives each run its own.
        Backend::Gvisor => &[
            (
                "launcher_namespaces",
                "one gVisor container per session: runsc, its gofer and sandbox run in fresh PID, \
                 network, IPC, UTS and mount namespaces",
            ),
            (
                "per_run_namespaces",
                "runs are warm per session: each run is forked inside the session's container into a PID, \
                 IPC and UTS namespace and a root of its own (chroot; fresh /tmp, /proc of the run), without \
                 any capability; everything it started dies with it",
            ),
        ],
    };
    for (name, what) in run_namespaces.iter().copied() {
        let detail = match &probe.jail {
            Ok(_) => what.to_string(),
            Err(e) => format!("could not create the run's namespaces: {e}"),
        };
        out.push(p(name, jail_ok && session_ok, true, detail));
    }
    for step in steps {
        let (active, detail) = match &probe.jail {
            Ok(steps) => steps.step(step),
            Err(e) => (false, format!("failed: {e}")),
        };
        out.push(p(step, active, true, detail));
    }
    out.push(p(
        "wall_clock_kill",
        true,
        true,
        "the run's PID namespace is killed at the timeout",
    ));
    out.extend(every_backends_last(probe));
    out
}

/// The last two rows of every backend's list: the scrubbed environment, and the optional per-run cgroup
/// (without it each process is still bounded by its rlimits, but not the run as a whole).
fn every_backends_last(probe: &ProbeOutcome) -> [Protection; 2] {
    [
        p(
            "environment_scrubbed",
            true,
            true,
            "fixed environment; nothing inherited from the daemon",
        ),
        match &probe.cgroup {
            Ok(d) => p("cgroup_limits", true, false, d.clone()),
            Err(e) => p("cgroup_limits", false, false, e.clone()),
        },
    ]
}

/// What became of the preload list (`--preload`): not a protection, but `status` and `doctor` carry it
/// there. Optional: a module that did not import is imported by each run that needs it (slower, never
/// wrong), so the daemon serves on and says which one failed and why.
pub fn preload_protection(preload: &[String], failed: &[(String, String)]) -> Option<Protection> {
    if preload.is_empty() {
        return None;
    }
    Some(if failed.is_empty() {
        p(
            "preload",
            true,
            false,
            format!("imported before the first fork: {}", preload.join(", ")),
        )
    } else {
        let why: Vec<String> = failed.iter().map(|(m, e)| format!("{m} ({e})")).collect();
        p(
            "preload",
            false,
            false,
            format!(
                "failed to import: {}; each run imports what it needs itself",
                why.join("; ")
            ),
        )
    })
}
