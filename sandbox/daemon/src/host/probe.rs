//! The probe through the real pipeline: a session and a jail built as for real runs (gVisor: a real run in
//! the session's container), each step's result as the jail reported it, and the daemon's own checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_sandbox_protocol::{ErrorKind, RunPython, SessionKey};

use super::{JailSteps, ProbeOutcome};
use crate::engine::{Engine, Mode};
use crate::gvisor;

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
pub(super) fn inside_run_ok(printed: &str) -> bool {
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
