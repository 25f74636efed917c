//! What this host provides: the probe through the real jail, per-run cgroup limits, and the resulting
//! list of protections that `doctor` prints and `status` returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_sandbox_protocol::{Backend, ErrorKind, Protection, ProtectionState, RunPython, SessionKey};

use crate::engine::{Engine, JAIL_STEPS};
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

/// What the probe through the real pipeline found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub backend: Backend,
    /// The daemon's effective uid.
    pub uid: u32,
    /// Creating a session (user + mount namespace, tmpfs workspace).
    pub session: Result<(), String>,
    /// Preparing a jail: each step's result as the jail itself reported it.
    pub jail: Result<BTreeMap<String, String>, String>,
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

/// Turns a probe into the protection list (pure, so it is tested table-wise).
pub fn protections(probe: &ProbeOutcome) -> Vec<Protection> {
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
        // runsc and its gofer run in fresh namespaces too; gVisor's kernel gives the code its own.
        Backend::Gvisor => &[(
            "launcher_namespaces",
            "runsc, its gofer and sandbox run in fresh PID, network, IPC, UTS and mount namespaces",
        )],
    };
    for (name, what) in run_namespaces.iter().copied() {
        let detail = match &probe.jail {
            Ok(_) => what.to_string(),
            Err(e) => format!("could not create the run's namespaces: {e}"),
        };
        out.push(p(name, jail_ok && session_ok, true, detail));
    }
    for step in steps {
        let result = match &probe.jail {
            Ok(steps) => steps
                .get(*step)
                .cloned()
                .unwrap_or_else(|| "not reported".to_string()),
            Err(e) => format!("failed: {e}"),
        };
        let active = result.starts_with("ok");
        let detail = result
            .strip_prefix("ok: ")
            .or(result.strip_prefix("ok"))
            .unwrap_or(&result)
            .to_string();
        let detail = if detail.is_empty() {
            "applied".to_string()
        } else {
            detail
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

/// Runs the probe: a session and a jail built exactly as for real runs, with every step reported. For
/// gVisor the probe is a real run (the self-test the `auto` backend choice depends on).
pub async fn probe(engine: &Arc<Engine>) -> ProbeOutcome {
    let uid = nix::unistd::geteuid().as_raw();
    let cgroup = engine.cgroup_limits();
    let backend = engine.backend();
    let session = match engine.open_session(16 << 20).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            return ProbeOutcome {
                backend,
                uid,
                session: Err(e.message),
                jail: Err("no session".to_string()),
                cgroup,
            };
        }
    };
    let jail = match backend {
        Backend::Native => match engine.prepare(&session, true).await {
            Ok(j) => j
                .probe
                .clone()
                .ok_or_else(|| "the jail sent no probe report".to_string()),
            Err(e) => Err(e.message),
        },
        Backend::Gvisor => probe_gvisor(engine, &session).await,
    };
    session.close();
    ProbeOutcome {
        backend,
        uid,
        session: Ok(()),
        jail,
        cgroup,
    }
}

async fn probe_gvisor(
    engine: &Arc<Engine>,
    session: &Arc<crate::engine::SessionNs>,
) -> Result<BTreeMap<String, String>, String> {
    // A prepared container: its runsc processes are there to be inspected before the run.
    let seccomp = match engine.prepare(session, false).await {
        Ok(jail) => gvisor_seccomp(jail.pid()),
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
    fn probe_to_protections() {
        let all_ok: BTreeMap<String, String> = JAIL_STEPS
            .iter()
            .map(|s| (s.to_string(), "ok".to_string()))
            .collect();
        let mut landlock_missing = all_ok.clone();
        landlock_missing.insert(
            "landlock".into(),
            "failed: landlock not available: Function not implemented".into(),
        );
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
                    uid: 65534,
                    session: Ok(()),
                    jail: Ok(gvisor_ok),
                    cgroup: Err("v1".into()),
                },
                vec!["cgroup_limits"],
            ),
            (
                ProbeOutcome {
                    backend: Backend::Gvisor,
                    uid: 65534,
                    session: Ok(()),
                    jail: Ok(gvisor_open),
                    cgroup: Err("v1".into()),
                },
                vec!["network_none", "cgroup_limits"],
            ),
            (
                ProbeOutcome {
                    backend: Backend::Gvisor,
                    uid: 65534,
                    session: Ok(()),
                    jail: Err("runsc exited".into()),
                    cgroup: Err("v1".into()),
                },
                vec![
                    "launcher_namespaces",
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
