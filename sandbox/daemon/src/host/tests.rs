//! Table-driven tests of the protection list and the probe's pure checks.

use super::probe::inside_run_ok;
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
    let probe = |session: Result<(), String>, jail: Result<BTreeMap<String, String>, String>| ProbeOutcome {
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
        !landlock.required && landlock.detail.contains("no landlock") && landlock.detail.contains("chroot")
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
