//! What this host provides: the probe through the real jail, per-run cgroup limits, and the resulting
//! list of protections that `doctor` prints and `status` returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_sandbox_protocol::{Backend, ErrorKind, Protection, ProtectionState, RunPython, SessionKey};

use crate::engine::{Engine, JAIL_STEPS, Mode};
use crate::gvisor;

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
    out.push(p(
        "environment_scrubbed",
        true,
        true,
        "fixed environment; nothing inherited from the daemon",
    ));
    out.push(match &probe.cgroup {
        Ok(d) => p("cgroup_limits", true, false, d.clone()),
        Err(e) => p("cgroup_limits", false, false, e.clone()),
    });
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
    out.push(p(
        "environment_scrubbed",
        true,
        true,
        "fixed environment; nothing inherited from the daemon",
    ));
    // Optional: without it each process is still bounded by its rlimits, but not the run as a whole.
    out.push(match &probe.cgroup {
        Ok(d) => p("cgroup_limits", true, false, d.clone()),
        Err(e) => p("cgroup_limits", false, false, e.clone()),
    });
    out
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

/// Runs the probe: a session and a jail built exactly as for real runs, with every step reported. For
/// gVisor the probe is a real run (the self-test the `auto` backend choice depends on).
pub async fn probe(engine: &Arc<Engine>) -> ProbeOutcome {
    let uid = nix::unistd::geteuid().as_raw();
    let cgroup = engine.cgroup_limits();
    let backend = engine.backend();
    let inside_gvisor = engine.mode() == Mode::InsideGvisor;
    let session = match engine.open_session(16 << 20).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            return ProbeOutcome {
                backend,
                inside_gvisor,
                uid,
                session: Err(e.message),
                jail: Err("no session".to_string()),
                cgroup,
            };
        }
    };
    let jail = match engine.mode() {
        Mode::Native => match engine.prepare(&session, true).await {
            Ok(j) => j
                .probe
                .clone()
                .ok_or_else(|| "the jail sent no probe report".to_string()),
            Err(e) => Err(e.message),
        },
        Mode::InsideGvisor => probe_inside(engine, &session).await.map(JailSteps::Text),
        Mode::Runsc => probe_gvisor(engine, &session).await.map(JailSteps::Text),
    };
    session.close();
    ProbeOutcome {
        backend,
        inside_gvisor,
        uid,
        session: Ok(()),
        jail,
        cgroup,
    }
}

/// Inside gVisor: a jail prepared with every step reported, a run through it (the code's own view of
/// its kernel and uid), and whether the jail's mounts show outside it (then gVisor gives no mount
/// namespace of its own, and the run's root is what keeps it apart).
async fn probe_inside(
    engine: &Arc<Engine>,
    session: &Arc<crate::engine::SessionNs>,
) -> Result<BTreeMap<String, String>, String> {
    let mut steps = match crate::container::detect_here() {
        Some(g) => BTreeMap::from([(
            "gvisor_container".to_string(),
            format!(
                "ok: the daemon and every run are inside a gVisor container ({}); gVisor's kernel answers their \
                 system calls, the host kernel never sees them",
                g.evidence
            ),
        )]),
        None => BTreeMap::from([(
            "gvisor_container".to_string(),
            "failed: the daemon's kernel is not gVisor's".to_string(),
        )]),
    };
    let jail = engine.prepare(session, true).await.map_err(|e| e.message)?;
    match jail.probe.clone() {
        Some(JailSteps::Text(reported)) => steps.extend(reported),
        Some(JailSteps::Typed(reported)) => steps.extend(reported.iter().map(|r| {
            use sluice_sandbox_jail::State;
            let result = match &r.state {
                State::Ok(None) => "ok".to_string(),
                State::Ok(Some(detail)) => format!("ok: {detail}"),
                State::Skipped => "skipped".to_string(),
                State::Failed(why) => format!("failed: {why}"),
            };
            (r.protection.name().to_string(), result)
        })),
        None => return Err("the jail sent no probe report".to_string()),
    }
    let leaked = mounts_below(&engine.jail_dir());
    steps.insert(
        "mount_namespace".into(),
        if leaked.is_empty() {
            "ok: the run's mounts are its own (not visible to the daemon)".into()
        } else {
            format!(
                "failed: gVisor accepts unshare(CLONE_NEWNS) but the run's mounts show outside it ({} mount \
                 points under {}); each run gets a root of its own instead, taken down when it ends",
                leaked.len(),
                engine.jail_dir().display()
            )
        },
    );
    drop(jail);
    let req = RunPython {
        session: SessionKey {
            org: String::new(),
            key: String::new(),
            session: "probe".into(),
        },
        code: INSIDE_PROBE_CODE.into(),
        inputs: vec![],
        timeout_ms: Some(60_000),
        memory_mb: None,
    };
    let r = engine
        .run(session, req)
        .await
        .map_err(|e| format!("the self-test run failed: {}", e.message))?;
    let seen = r.stdout.text.trim();
    if !inside_run_ok(seen) {
        steps.insert(
            "session_uid".into(),
            format!(
                "failed: the self-test run printed {seen:?} (exit {:?}, stderr {:?})",
                r.exit, r.stderr.text
            ),
        );
    }
    Ok(steps)
}

/// What the in-gVisor self-test run prints: its kernel release and its uid.
const INSIDE_PROBE_CODE: &str = "import os, platform\nprint(platform.release(), os.getuid(), os.geteuid())\n";

/// The self-test run saw gVisor's kernel and a uid that is not root (pure).
fn inside_run_ok(printed: &str) -> bool {
    let parts: Vec<&str> = printed.split_whitespace().collect();
    matches!(parts.as_slice(), [release, uid, euid]
        if *release == crate::container::GVISOR_RELEASE && *uid != "0" && uid == euid && uid.parse::<u32>().is_ok())
}

/// Mount points below `dir` as this process sees them (`/proc/self/mountinfo`).
fn mounts_below(dir: &std::path::Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(String::from)
        .collect()
}

async fn probe_gvisor(
    engine: &Arc<Engine>,
    session: &Arc<crate::engine::SessionNs>,
) -> Result<BTreeMap<String, String>, String> {
    // The session's container: its runsc processes are there to be inspected before the run, which is
    // then forked inside it as every run is.
    let seccomp = match engine.gvisor_container(session).await {
        Ok(c) => gvisor_seccomp(c.pid()),
        Err(e) => return Err(e.message),
    };
    let req = RunPython {
        session: SessionKey {
            org: String::new(),
            key: String::new(),
            session: "probe".into(),
        },
        code: gvisor::PROBE_CODE.into(),
        inputs: vec![],
        timeout_ms: Some(60_000),
        memory_mb: None,
    };
    let r = engine.run(session, req).await.map_err(|e| match e.kind {
        ErrorKind::Unavailable => e.message,
        _ => format!("the self-test run failed: {}", e.message),
    })?;
    let report: serde_json::Value = serde_json::from_str(r.stdout.text.trim()).map_err(|_| {
        format!(
            "the self-test run printed {:?} (exit {:?}, stderr {:?})",
            r.stdout.text, r.exit, r.stderr.text
        )
    })?;
    let host_version = std::fs::read_to_string("/proc/version").unwrap_or_default();
    let runsc = engine
        .runsc()
        .map(|p| gvisor::runsc_version(p).unwrap_or_else(|e| e))
        .unwrap_or_default();
    let mut steps = gvisor::judge_probe(
        &report,
        host_version.trim(),
        engine.plan(),
        engine.limits().max_processes,
        &runsc,
    );
    steps.insert(
        "gvisor_seccomp".into(),
        match seccomp {
            Ok(d) => format!("ok: {d}"),
            Err(e) => format!("failed: {e}"),
        },
    );
    Ok(steps)
}

/// Checks that gVisor's sandbox process (the sentry) and its gofer below the jail's PID 1 filter their
/// own host system calls with seccomp, as runsc does unless told not to.
pub fn gvisor_seccomp(jail_pid: i32) -> Result<String, String> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .map_err(|e| format!("/proc: {e}"))?
        .flatten()
    {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold spaces; the fields after it are plain.
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        parents.push((pid, ppid));
    }
    let mut tree = vec![jail_pid];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    let mut found = Vec::new();
    for role in ["runsc-sandbox", "runsc-gofer"] {
        // runsc re-executes itself as /proc/self/exe with the role as argv[0].
        let pid = tree.iter().copied().find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|b| *b == 0).next() == Some(role.as_bytes()))
                .unwrap_or(false)
        });
        let Some(pid) = pid else {
            return Err(format!("no {role} process below pid {jail_pid}"));
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("{e}"))?;
        match status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .map(str::trim)
        {
            Some("2") => found.push(role),
            other => return Err(format!("{role} (pid {pid}) has seccomp mode {other:?}")),
        }
    }
    Ok(format!(
        "{} filter their host system calls (seccomp mode 2)",
        found.join(" and ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn states(ps: &[Protection]) -> Vec<(String, bool)> {
        ps.iter()
            .map(|p| (p.name.clone(), p.state == ProtectionState::Active))
            .collect()
    }

    #[test]
    fn inside_gvisor_probe_to_protections() {
        let all_ok: BTreeMap<String, String> = INSIDE_STEPS
            .iter()
            .map(|(s, _)| (s.to_string(), "ok: fine".to_string()))
            .collect();
        let with = |name: &str, result: &str| {
            let mut m = all_ok.clone();
            m.insert(name.into(), result.into());
            m
        };
        let probe =
            |session: Result<(), String>, jail: Result<BTreeMap<String, String>, String>| ProbeOutcome {
                backend: Backend::Gvisor,
                inside_gvisor: true,
                uid: 0,
                session,
                jail: jail.map(JailSteps::Text),
                cgroup: Err("none inside gVisor".into()),
            };
        let every_step: Vec<&str> = vec![
            "unprivileged_uid",
            "gvisor_container",
            "pid_namespace",
            "network_namespace",
            "minimal_root",
            "uts_namespace",
            "rlimits",
            "capabilities_dropped",
            "no_new_privs",
            "seccomp",
            "mount_namespace",
            "ipc_namespace",
        ];
        // (probe, names expected missing, names of those that are required)
        let cases: Vec<(ProbeOutcome, Vec<&str>, Vec<&str>)> = vec![
            // What Debian's 2022 runsc gives: no mount namespace of its own, no landlock, no cgroups.
            (
                probe(
                    Ok(()),
                    Ok(with(
                        "mount_namespace",
                        "failed: the run's mounts show outside it",
                    )),
                ),
                vec!["mount_namespace", "landlock", "cgroup_limits"],
                vec![],
            ),
            (
                probe(Ok(()), Ok(all_ok.clone())),
                vec!["landlock", "cgroup_limits"],
                vec![],
            ),
            // A kernel that is not gVisor's, a uid change or a seccomp filter that failed: fail closed.
            (
                probe(Ok(()), Ok(with("gvisor_container", "failed: not gVisor"))),
                vec!["gvisor_container", "landlock", "cgroup_limits"],
                vec!["gvisor_container"],
            ),
            (
                probe(
                    Ok(()),
                    Ok(with(
                        "session_uid",
                        "failed: the self-test run printed \"4.4.0 0 0\"",
                    )),
                ),
                vec!["unprivileged_uid", "landlock", "cgroup_limits"],
                vec!["unprivileged_uid"],
            ),
            (
                probe(Ok(()), Ok(with("seccomp", "failed: EINVAL"))),
                vec!["seccomp", "landlock", "cgroup_limits"],
                vec!["seccomp"],
            ),
            (
                probe(
                    Ok(()),
                    Ok(with("network_namespace", "failed: interfaces [\"eth0\", \"lo\"]")),
                ),
                vec!["network_namespace", "landlock", "cgroup_limits"],
                vec!["network_namespace"],
            ),
            // A step the jail did not report counts as missing.
            (
                probe(
                    Ok(()),
                    Ok(all_ok
                        .iter()
                        .filter(|(k, _)| *k != "pid_namespace")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()),
                ),
                vec!["pid_namespace", "landlock", "cgroup_limits"],
                vec!["pid_namespace"],
            ),
            (
                probe(Ok(()), Err("sandbox set-up failed: chroot: EPERM".into())),
                [every_step.clone(), vec!["landlock", "cgroup_limits"]].concat(),
                every_step
                    .iter()
                    .copied()
                    .filter(|n| *n != "mount_namespace")
                    .collect(),
            ),
            (
                probe(Err("mount: EPERM".into()), Err("no session".into())),
                [
                    vec!["unprivileged_uid", "workspace_tmpfs"],
                    every_step[1..].to_vec(),
                    vec!["landlock", "cgroup_limits"],
                ]
                .concat(),
                [
                    vec!["unprivileged_uid", "workspace_tmpfs"],
                    every_step[1..]
                        .iter()
                        .copied()
                        .filter(|n| *n != "mount_namespace")
                        .collect(),
                ]
                .concat(),
            ),
        ];
        for (probe, missing, required) in cases {
            let got = protections(&probe);
            let mut got_missing: Vec<&str> = got
                .iter()
                .filter(|p| p.state == ProtectionState::Missing)
                .map(|p| p.name.as_str())
                .collect();
            let mut want = missing.clone();
            got_missing.sort();
            want.sort();
            assert_eq!(got_missing, want, "{probe:?}");
            let mut got_required: Vec<&str> = got
                .iter()
                .filter(|p| p.state == ProtectionState::Missing && p.required)
                .map(|p| p.name.as_str())
                .collect();
            let mut want_required = required.clone();
            got_required.sort();
            want_required.sort();
            assert_eq!(got_required, want_required, "{probe:?}");
        }
        // Landlock is never claimed, and says what stands in for it.
        let l = protections(&probe(Ok(()), Ok(all_ok)));
        let landlock = l.iter().find(|p| p.name == "landlock").unwrap();
        assert!(
            !landlock.required
                && landlock.detail.contains("no landlock")
                && landlock.detail.contains("chroot")
        );
        assert!(l.iter().any(|p| p.name == "gvisor_container" && p.required));
    }

    #[test]
    fn inside_self_test_output() {
        // (printed by the self-test run, accepted)
        let cases = [
            ("4.4.0 30000 30000", true),
            ("4.4.0 0 0", false),
            ("4.4.0 30000 0", false),
            ("6.1.0 30000 30000", false),
            ("", false),
            ("4.4.0 x x", false),
        ];
        for (printed, ok) in cases {
            assert_eq!(inside_run_ok(printed), ok, "{printed:?}");
        }
    }

    #[test]
    fn probe_to_protections() {
        use sluice_sandbox_jail::{Protection, State, StepReport};
        // The native jail's report is typed: every step in force, or landlock failed.
        let report = |failed: Option<Protection>| {
            JailSteps::Typed(
                Protection::ALL
                    .iter()
                    .map(|&protection| StepReport {
                        protection,
                        state: if Some(protection) == failed {
                            State::Failed("landlock not available: ENOSYS".into())
                        } else {
                            State::Ok(None)
                        },
                    })
                    .collect(),
            )
        };
        let all_ok = report(None);
        let landlock_missing = report(Some(Protection::Landlock));
        let gvisor_ok: BTreeMap<String, String> = GVISOR_STEPS
            .iter()
            .map(|s| (s.to_string(), "ok: fine".to_string()))
            .collect();
        let mut gvisor_open = gvisor_ok.clone();
        gvisor_open.insert("network_none".into(), "failed: interfaces [\"eth0\"]".into());
        // (probe, names expected missing)
        let cases: Vec<(ProbeOutcome, Vec<&str>)> = vec![
            (
                ProbeOutcome {
                    backend: Backend::Gvisor,
                    inside_gvisor: false,
                    uid: 65534,
                    session: Ok(()),
                    jail: Ok(JailSteps::Text(gvisor_ok)),
                    cgroup: Err("v1".into()),
                },
                vec!["cgroup_limits"],
            ),
            (
                ProbeOutcome {
                    backend: Backend::Gvisor,
                    inside_gvisor: false,
                    uid: 65534,
                    session: Ok(()),
                    jail: Ok(JailSteps::Text(gvisor_open)),
                    cgroup: Err("v1".into()),
                },
                vec!["network_none", "cgroup_limits"],
            ),
            (
                ProbeOutcome {
                    backend: Backend::Gvisor,
                    inside_gvisor: false,
                    uid: 65534,
                    session: Ok(()),
                    jail: Err("runsc exited".into()),
                    cgroup: Err("v1".into()),
                },
                vec![
                    "launcher_namespaces",
                    "per_run_namespaces",
                    "gvisor_kernel",
                    "minimal_root",
                    "network_none",
                    "capabilities_dropped",
                    "pid_namespace",
                    "rlimits",
                    "gvisor_seccomp",
                    "cgroup_limits",
                ],
            ),
            (
                ProbeOutcome {
                    backend: Backend::Native,
                    inside_gvisor: false,
                    uid: 1000,
                    session: Ok(()),
                    jail: Ok(all_ok.clone()),
                    cgroup: Err("v1".into()),
                },
                vec!["cgroup_limits"],
            ),
            (
                ProbeOutcome {
                    backend: Backend::Native,
                    inside_gvisor: false,
                    uid: 1000,
                    session: Ok(()),
                    jail: Ok(all_ok.clone()),
                    cgroup: Ok("cgroup v1 memory and pids limits per run".into()),
                },
                vec![],
            ),
            (
                ProbeOutcome {
                    backend: Backend::Native,
                    inside_gvisor: false,
                    uid: 0,
                    session: Ok(()),
                    jail: Ok(landlock_missing),
                    cgroup: Err("v1".into()),
                },
                vec!["unprivileged_uid", "landlock", "cgroup_limits"],
            ),
            (
                ProbeOutcome {
                    backend: Backend::Native,
                    inside_gvisor: false,
                    uid: 5,
                    session: Err("EPERM".into()),
                    jail: Err("no session".into()),
                    cgroup: Err("v1".into()),
                },
                vec![
                    "user_namespace",
                    "mount_namespace",
                    "workspace_tmpfs",
                    "pid_namespace",
                    "network_namespace",
                    "ipc_namespace",
                    "cgroup_namespace",
                    "minimal_root",
                    "uts_namespace",
                    "rlimits",
                    "no_new_privs",
                    "capabilities_dropped",
                    "landlock",
                    "seccomp",
                    "cgroup_limits",
                ],
            ),
        ];
        for (probe, missing) in cases {
            let got = protections(&probe);
            let got_missing: Vec<String> = states(&got)
                .into_iter()
                .filter(|(_, a)| !a)
                .map(|(n, _)| n)
                .collect();
            assert_eq!(got_missing, missing, "{probe:?}");
            assert!(got.iter().all(|p| p.required || p.name == "cgroup_limits"));
        }
    }
}
