//! What only the gVisor backend has: the host side of runsc (its processes' seccomp filters, uid and
//! namespaces), checked from outside while a prepared container waits.

use pretty_assertions::assert_eq;
use sluice_sandbox_protocol::*;

use super::harness::*;

/// `Name:\tvalue` lines of `/proc/PID/status`.
fn status_field(pid: i32, field: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
}

fn argv0(pid: i32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(cmdline.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
}

#[test]
fn gvisor_host_side_is_confined() {
    if !backends().contains(&Kind::Gvisor) {
        return;
    }
    let d = Daemon::start_backend(Kind::Gvisor, &[]);
    let mut c = d.client();
    let s = session("host-side");
    open(&mut c, &s);
    // A run makes sure the session's warm container exists; then its host processes are inspected.
    assert_eq!(run(&mut c, &s, "print('up')", None).stdout.text, "up\n");
    d.wait_idle();
    let procs = d.sandbox_processes();
    let runsc: Vec<(i32, String)> = procs
        .iter()
        .map(|p| (*p, argv0(*p)))
        .filter(|(_, a)| a == "runsc-sandbox" || a == "runsc-gofer")
        .collect();
    let roles: std::collections::BTreeSet<&str> = runsc.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(
        roles.into_iter().collect::<Vec<_>>(),
        vec!["runsc-gofer", "runsc-sandbox"],
        "{procs:?}"
    );
    let own_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    for pid in &procs {
        // Every process of the sandbox, runsc's included, runs as the daemon's unprivileged uid on the
        // host, and none of them shares the host's network namespace.
        let uids = status_field(*pid, "Uid").unwrap_or_default();
        if is_root() {
            assert!(
                uids.split_whitespace().all(|u| u == SANDBOX_UID.to_string()),
                "pid {pid} ({}) has uids {uids}",
                argv0(*pid)
            );
        }
        if std::fs::read_link(format!("/proc/{pid}/ns/net")).ok() == Some(own_net.clone()) {
            // Only the zygote (and the daemon) live in the host's network namespace.
            assert!(
                !argv0(*pid).starts_with("runsc") && !argv0(*pid).starts_with("/proc/self/exe"),
                "pid {pid} ({}) is in the host network namespace",
                argv0(*pid)
            );
        }
    }
    for (pid, role) in &runsc {
        assert_eq!(
            status_field(*pid, "Seccomp").as_deref(),
            Some("2"),
            "{role} (pid {pid}) runs without a seccomp filter"
        );
        // The gofer keeps file capabilities, but only inside a user namespace of its own (runsc's
        // rootless mapping of uid 65534): they grant nothing over host files.
        assert_ne!(
            std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap(),
            std::fs::read_link("/proc/self/ns/user").unwrap(),
            "{role} (pid {pid}) is in the host's user namespace"
        );
    }
    // The daemon reports the same.
    let Response::Status(st) = c.call(Request::Status).unwrap() else {
        panic!()
    };
    let seccomp = st
        .protections
        .iter()
        .find(|p| p.name == "gvisor_seccomp")
        .unwrap();
    assert_eq!(seccomp.state, ProtectionState::Active, "{seccomp:?}");
    assert!(!st.degraded);
    d.assert_serving();
}
