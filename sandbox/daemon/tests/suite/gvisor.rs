//! What only the gVisor backend has: the host side of runsc (its processes' seccomp filters, uid and
//! namespaces), checked from outside while a session's container waits, and the session's one container
//! itself: reused by every run, with nothing of a run surviving it, shared by concurrent runs, kept after
//! a timeout, gone with its session or when idle, and replaced after it dies.

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

/// Host pids of the `runsc-sandbox` processes (one per running container) of this daemon.
fn containers(d: &Daemon) -> Vec<i32> {
    let mut pids: Vec<i32> = d
        .sandbox_processes()
        .into_iter()
        .filter(|p| argv0(*p) == "runsc-sandbox")
        .collect();
    pids.sort();
    pids
}

/// The pipes a process holds open, as `pipe:[inode]`, sorted.
fn pipes_of(pid: u32) -> Vec<String> {
    let mut pipes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.starts_with("pipe:"))
        .collect();
    pipes.sort();
    pipes
}

fn gvisor_daemon(extra: &[&str]) -> Option<Daemon> {
    backends()
        .contains(&Kind::Gvisor)
        .then(|| Daemon::start_backend(Kind::Gvisor, extra))
}

/// Lists the run's PIDs as its own /proc shows them.
const PIDS: &str = "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))";

#[test]
fn a_session_reuses_its_container_and_nothing_of_a_run_survives_it() {
    let Some(d) = gvisor_daemon(&[]) else { return };
    let mut c = d.client();
    let s = session("reuse");
    open(&mut c, &s);
    // Run 1 leaves a process behind that keeps writing to the workspace, and a file in /tmp and one in
    // /workspace.
    let r = run(
        &mut c,
        &s,
        "import subprocess, sys\n\
         subprocess.Popen([sys.executable, '-c', \"import time\\nwhile True:\\n    open('/workspace/beat', 'a').write('.')\\n    time.sleep(0.05)\"])\n\
         open('/tmp/mark', 'w').write('x')\nopen('/workspace/keep', 'w').write('kept')\nprint('left')",
        Some(10_000),
    );
    assert_eq!(r.stdout.text, "left\n", "{r:?}");
    let first = containers(&d);
    assert_eq!(first.len(), 1, "{first:?}");
    // Run 2, in the same container: only its own processes, its own /tmp, the session's workspace, and
    // the process run 1 started is gone (the heartbeat file stops growing).
    let r = run(
        &mut c,
        &s,
        &format!(
            "{PIDS}\nimport os, time\nprint(os.path.exists('/tmp/mark'), open('/workspace/keep').read())\n\
             n = os.path.getsize('/workspace/beat') if os.path.exists('/workspace/beat') else 0\n\
             time.sleep(0.5)\nm = os.path.getsize('/workspace/beat') if os.path.exists('/workspace/beat') else 0\n\
             print('beat stopped' if n == m else f'beat went on {{n}} -> {{m}}')"
        ),
        Some(10_000),
    );
    assert_eq!(r.stdout.text, "[1]\nFalse kept\nbeat stopped\n", "{r:?}");
    assert_eq!(
        containers(&d),
        first,
        "the second run did not reuse the container"
    );
    d.assert_serving();
}

#[test]
fn concurrent_runs_of_a_session_see_only_their_own_processes() {
    let Some(d) = gvisor_daemon(&[]) else { return };
    let s = session("concurrent");
    open(&mut d.client(), &s);
    // Each run starts a child and lists what it sees while the other one runs too.
    let code = format!(
        "import subprocess, time\np = subprocess.Popen(['sleep', '5'])\ntime.sleep(1.5)\n{PIDS}\np.kill()"
    );
    let started = std::time::Instant::now();
    let outputs: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let (d, s, code) = (&d, &s, &code);
                scope.spawn(move || run(&mut d.client(), s, code, Some(20_000)).stdout.text)
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(outputs, vec!["[1, 2]\n", "[1, 2]\n"]);
    // They ran side by side, in the one container.
    assert!(
        started.elapsed() < std::time::Duration::from_millis(2900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(containers(&d).len(), 1);
}

#[test]
fn a_timed_out_run_is_killed_and_the_container_stays() {
    let Some(d) = gvisor_daemon(&[]) else { return };
    let mut c = d.client();
    let s = session("timeout");
    open(&mut c, &s);
    assert_eq!(run(&mut c, &s, "print('up')", None).stdout.text, "up\n");
    let before = containers(&d);
    let r = run(&mut c, &s, "while True: pass", Some(1000));
    assert_eq!(
        (r.exit.signal, r.limits_hit.clone()),
        (Some(9), vec![Limit::Timeout]),
        "{r:?}"
    );
    let started = std::time::Instant::now();
    let r = run(&mut c, &s, "print('next')", None);
    assert_eq!(r.stdout.text, "next\n", "{r:?}");
    // No new container to start (that takes most of a second under the ptrace platform).
    assert!(
        started.elapsed() < std::time::Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(containers(&d), before);
}

#[test]
fn the_container_goes_with_its_session_and_when_idle() {
    let Some(d) = gvisor_daemon(&["--gvisor-idle-secs", "1"]) else {
        return;
    };
    let mut c = d.client();
    let s = session("closing");
    open(&mut c, &s);
    assert_eq!(run(&mut c, &s, "print(1)", None).stdout.text, "1\n");
    assert_eq!(containers(&d).len(), 1);
    c.call(Request::CloseSession(SessionArgs { session: s })).unwrap();
    // Only the zygote is left.
    d.wait_processes(1);
    let pipes = pipes_of(d.pid());

    let s = session("idle");
    open(&mut c, &s);
    assert_eq!(run(&mut c, &s, "print(2)", None).stdout.text, "2\n");
    let first = containers(&d);
    assert_eq!(first.len(), 1);
    assert_ne!(
        pipes_of(d.pid()),
        pipes,
        "a running container is served through pipes"
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    d.wait_processes(1);
    // The stopped container stays with its session until the next run, but none of its pipes does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while pipes_of(d.pid()) != pipes && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(pipes_of(d.pid()), pipes);
    // The session is still open: its next run starts a new container, with the workspace as it was.
    let r = run(&mut c, &s, "import os\nprint(sorted(os.listdir('.')))", None);
    assert_eq!(r.stdout.text, "['outputs']\n", "{r:?}");
    assert_ne!(containers(&d), first);
}

#[test]
fn a_killed_container_fails_its_run_clearly_and_the_next_run_gets_a_new_one() {
    let Some(d) = gvisor_daemon(&[]) else { return };
    let mut c = d.client();
    let s = session("killed");
    open(&mut c, &s);
    assert_eq!(run(&mut c, &s, "print(1)", None).stdout.text, "1\n");
    let sandbox = containers(&d);
    assert_eq!(sandbox.len(), 1);
    let failed = std::thread::scope(|scope| {
        let t = scope.spawn(|| {
            let req = RunPython {
                session: s.clone(),
                code: "import time\ntime.sleep(10)".into(),
                inputs: vec![],
                timeout_ms: Some(20_000),
                memory_mb: None,
            };
            d.client().call(Request::RunPython(req))
        });
        std::thread::sleep(std::time::Duration::from_millis(1000));
        // gVisor's kernel (the sentry) dies under the run.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(sandbox[0]), nix::sys::signal::SIGKILL).unwrap();
        t.join().unwrap()
    });
    match failed {
        Err(ClientError::Remote(e)) => {
            assert_eq!(e.kind, ErrorKind::Unavailable, "{e:?}");
            assert!(
                e.message.starts_with("the session's gVisor sandbox stopped (")
                    && e.message.ends_with("); run the code again"),
                "{e:?}"
            );
        }
        other => panic!("the run did not fail: {other:?}"),
    }
    let r = run(&mut c, &s, "print('again')", None);
    assert_eq!(r.stdout.text, "again\n", "{r:?}");
    assert_ne!(containers(&d), sandbox);
}
