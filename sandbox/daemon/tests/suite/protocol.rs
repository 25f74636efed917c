//! The daemon's side of the protocol: bad frames, versions, sizes, busy, disconnects, peer checks.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use sluice_sandbox_protocol::*;

use super::harness::*;

fn raw(d: &Daemon) -> UnixStream {
    let s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn send_raw(s: &mut UnixStream, body: &[u8]) {
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
}

fn recv(s: &mut UnixStream) -> Option<ResponseFrame> {
    read_frame(s, DEFAULT_MAX_FRAME)
        .unwrap()
        .map(|b| decode_response(&b).unwrap())
}

fn error_of(f: ResponseFrame) -> (u64, ErrorKind) {
    match f.body {
        ResponseBody::Error(e) => (f.id, e.kind),
        ResponseBody::Ok(r) => panic!("expected an error, got {r:?}"),
    }
}

#[test]
fn bad_frames_get_clear_errors_and_the_connection_survives() {
    let d = Daemon::start();
    let mut s = raw(&d);
    // (body, expected id and kind)
    let cases: Vec<(&[u8], (u64, ErrorKind))> = vec![
        (b"this is not json", (0, ErrorKind::Malformed)),
        (br#"{"v":1,"id":5,"op":"format_disk"}"#, (5, ErrorKind::Malformed)),
        (
            br#"{"v":99,"id":6,"op":"status"}"#,
            (6, ErrorKind::UnsupportedVersion),
        ),
        (br#"{"id":7,"op":"status"}"#, (7, ErrorKind::Malformed)),
        (
            br#"{"v":1,"id":8,"op":"run_python","args":{"code":"print(1)"}}"#,
            (8, ErrorKind::Malformed),
        ),
        (b"", (0, ErrorKind::Malformed)),
    ];
    for (body, expected) in cases {
        send_raw(&mut s, body);
        assert_eq!(
            error_of(recv(&mut s).unwrap()),
            expected,
            "body {:?}",
            String::from_utf8_lossy(body)
        );
    }
    send_raw(&mut s, br#"{"v":1,"id":9,"op":"status"}"#);
    let f = recv(&mut s).unwrap();
    assert!(
        matches!(f.body, ResponseBody::Ok(Response::Status(_))) && f.id == 9,
        "{f:?}"
    );
}

#[test]
fn oversized_and_truncated_frames() {
    let d = Daemon::start();
    let mut s = raw(&d);
    s.write_all(&(64u32 << 20).to_be_bytes()).unwrap();
    assert_eq!(error_of(recv(&mut s).unwrap()), (0, ErrorKind::TooLarge));
    // The stream cannot be re-synchronised, so the daemon hangs up.
    assert!(recv(&mut s).is_none());
    // A frame cut short by a disconnect leaves the daemon serving.
    let mut t = raw(&d);
    t.write_all(&[0, 0, 1, 0, b'{']).unwrap();
    drop(t);
    d.assert_serving();
}

#[test]
fn status_reports_backend_protections_and_capacity() {
    let d = Daemon::start_with(&["--max-concurrency", "3"]);
    let Response::Status(st) = d.client().call(Request::Status).unwrap() else {
        panic!()
    };
    assert_eq!(
        (st.backend, st.protocol, st.degraded),
        (Backend::Native, PROTOCOL_VERSION, false)
    );
    assert_eq!(st.capacity.max_concurrency, 3);
    let missing: Vec<&str> = st
        .protections
        .iter()
        .filter(|p| p.state == ProtectionState::Missing && p.required)
        .map(|p| p.name.as_str())
        .collect();
    assert!(missing.is_empty(), "required protections missing: {missing:?}");
    for name in [
        "landlock",
        "seccomp",
        "network_namespace",
        "pid_namespace",
        "no_new_privs",
        "capabilities_dropped",
        "rlimits",
        "unprivileged_uid",
    ] {
        assert!(
            st.protections
                .iter()
                .any(|p| p.name == name && p.state == ProtectionState::Active),
            "{name} not active"
        );
    }
    // Optional, and on this kind of machine (tests run as root, cgroup v1 memory and pids writable)
    // active: each run gets its own group.
    let cgroup = st
        .protections
        .iter()
        .find(|p| p.name == "cgroup_limits")
        .expect("cgroup_limits reported");
    assert!(!cgroup.required, "{cgroup:?}");
    if is_root() {
        assert_eq!(cgroup.state, ProtectionState::Active, "{cgroup:?}");
    }
}

/// Jails are in groups of their own, which go with the runs; the daemon's own groups go when it
/// stops (as root, as CI runs, the daemon claims cgroup v1 groups before switching to `--uid`).
#[test]
fn a_stopped_daemon_leaves_no_cgroups_behind() {
    if !is_root() {
        eprintln!("note: not root, so the daemon claims no cgroups here; nothing to check");
        return;
    }
    let d = Daemon::start();
    let mut c = d.client();
    let s = session("cgroups");
    open(&mut c, &s);
    let r = run(&mut c, &s, "print(1)", Some(5000));
    assert_eq!(r.stdout.text, "1\n", "{r:?}");
    let Response::Status(st) = c.call(Request::Status).unwrap() else {
        panic!()
    };
    let detail = &st
        .protections
        .iter()
        .find(|p| p.name == "cgroup_limits")
        .expect("cgroup_limits reported")
        .detail;
    let dirs: Vec<std::path::PathBuf> = detail
        .split_once(" under ")
        .map(|(_, at)| at.split(" and ").map(Into::into).collect())
        .unwrap_or_default();
    assert!(!dirs.is_empty() && dirs.iter().all(|d| d.is_dir()), "{detail}");
    // The session's next jail, prepared after the run, waits with its PID 1 already in a run group of
    // each controller (seen from the host: the jail's own view depends on when its cgroup namespace was
    // made relative to the move).
    let in_run_group = |dir: &std::path::Path| {
        std::fs::read_dir(dir).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with("run-")
                && std::fs::read_to_string(e.path().join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dirs.iter().all(|d| in_run_group(d)) {
        assert!(Instant::now() < deadline, "no jail in a run group under {dirs:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(c);
    drop(d);
    for dir in &dirs {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn busy_when_every_slot_stays_taken() {
    let d = Daemon::start_with(&["--max-concurrency", "1", "--queue-timeout-ms", "300"]);
    let mut a = d.client();
    let s = session("busy");
    open(&mut a, &s);
    let t = std::thread::spawn(move || {
        run(
            &mut a,
            &s,
            "import time; time.sleep(3); print('slow')",
            Some(20_000),
        )
    });
    std::thread::sleep(Duration::from_millis(800));
    let mut b = d.client();
    let s2 = session("busy-2");
    open(&mut b, &s2);
    let started = Instant::now();
    let err = b
        .call(Request::RunPython(RunPython {
            session: s2,
            code: "print(1)".into(),
            inputs: vec![],
            timeout_ms: None,
            memory_mb: None,
        }))
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Busy), "{err}");
    assert!(err.to_string().contains("sandbox busy"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(t.join().unwrap().stdout.text, "slow\n");
}

#[test]
fn client_disconnecting_mid_run_kills_the_run() {
    let d = Daemon::start();
    let mut c = d.client();
    let s = session("gone");
    open(&mut c, &s);
    run(&mut c, &s, "print(1)", None);
    // The zygote, the "gone" session's process and launcher, and its warm jail.
    d.wait_idle();
    let mut raw = raw(&d);
    let frame = RequestFrame {
        v: PROTOCOL_VERSION,
        id: 1,
        request: Request::RunPython(RunPython {
            session: s.clone(),
            code: "import os, time\nfor _ in range(4): os.fork()\ntime.sleep(60)".into(),
            inputs: vec![],
            timeout_ms: Some(60_000),
            memory_mb: None,
        }),
    };
    write_frame(&mut raw, &frame, DEFAULT_MAX_FRAME).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        d.sandbox_processes().len() >= d.idle_processes() + 16,
        "the run did not start: {:?}",
        d.sandbox_processes()
    );
    drop(raw);
    // All 16 sleepers are gone; what remains is the zygote, the session's processes and the next warm jail.
    d.wait_idle();
    d.assert_serving();
}

#[test]
fn socket_is_private_and_peers_are_checked() {
    let d = Daemon::start();
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    if !is_root() {
        return;
    }
    // Open the file mode up so that only SO_PEERCRED stands between another uid and the daemon.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let script = "import socket, struct, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n\
                  b = b'{\"v\":1,\"id\":1,\"op\":\"status\"}'\ns.settimeout(10)\ntry:\n\
                  \x20   s.sendall(struct.pack('>I', len(b)) + b)\n    got = s.recv(4)\nexcept OSError:\n    got = b''\n\
                  print('answered' if got else 'refused')";
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .arg(&d.socket)
        .uid(12345)
        .gid(12345)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "refused\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Refused by the SO_PEERCRED check (the file mode allowed the connect).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !d
        .log()
        .contains("refused a connection from a uid that is not allowed")
    {
        assert!(Instant::now() < deadline, "no refusal logged:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    d.assert_serving();
}

use std::os::unix::process::CommandExt;

#[test]
fn many_runs_leave_nothing_behind() {
    let d = Daemon::start();
    let mut c = d.client();
    let s = session("loop");
    open(&mut c, &s);
    let mut times = Vec::new();
    for i in 0..30 {
        let r = run(&mut c, &s, &format!("print({i})"), None);
        assert_eq!(r.stdout.text, format!("{i}\n"));
        times.push(r.duration_ms);
    }
    d.wait_idle();
    c.call(Request::CloseSession(SessionArgs { session: s })).unwrap();
    // Closing the session ends its launcher, and with it every process of the session.
    d.wait_processes(1);
}
