//! The sandbox's Rust zygote: what happens when it dies, when a preload module does not import, and when
//! its executable is missing.

use std::process::Command;
use std::time::{Duration, Instant};

use sluice_sandbox_protocol::*;

use super::harness::*;

/// The daemon's Rust zygote: its child whose `argv[0]` is the zygote's name.
fn zygote_pid(d: &Daemon) -> i32 {
    find_zygote(d).unwrap_or_else(|| panic!("no zygote below daemon {}:\n{}", d.pid(), d.log()))
}

fn find_zygote(d: &Daemon) -> Option<i32> {
    let daemon = d.pid() as i32;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid: i32 = stat
            .rsplit_once(") ")
            .and_then(|(_, r)| r.split(' ').nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if ppid == daemon && cmdline.split(|b| *b == 0).next() == Some(b"sluice-sandbox-zygote".as_slice()) {
            return Some(pid);
        }
    }
    None
}

fn kill_zygote(d: &Daemon) -> i32 {
    let pid = zygote_pid(d);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Gone once the daemon has reaped it or it is a zombie waiting for that.
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
    {
        assert!(Instant::now() < deadline, "zygote {pid} still alive");
        std::thread::sleep(Duration::from_millis(10));
    }
    pid
}

fn wait_for_log(d: &Daemon, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_zygote_killed_between_runs_is_restarted_and_sessions_keep_working() {
    let d = Daemon::start();
    let mut c = d.client();
    let a = session("before-the-kill");
    open(&mut c, &a);
    assert_eq!(run(&mut c, &a, "print(1)", None).stdout.text, "1\n");
    let old = kill_zygote(&d);
    // The daemon starts a new zygote at once, without waiting for a session to need it, and says so.
    wait_for_log(
        &d,
        &format!("the sandbox's Python worker (zygote pid {old}) stopped"),
    );
    // A session opened before: its launcher does not depend on the zygote, so its runs go on.
    let r = run(&mut c, &a, "print(2)", None);
    assert_eq!((r.stdout.text.as_str(), r.exit.code), ("2\n", Some(0)), "{r:?}");
    // A new session needs the zygote: the daemon starts a new one and says so.
    let b = session("after-the-kill");
    open(&mut c, &b);
    let r = run(&mut c, &b, "print(3)", None);
    assert_eq!(r.stdout.text, "3\n", "{r:?}\n{}", d.log());
    wait_for_log(
        &d,
        &format!("the sandbox's Python worker (zygote pid {old}) stopped"),
    );
    assert_ne!(zygote_pid(&d), old);
    d.assert_serving();
}

#[test]
fn a_run_in_flight_completes_when_the_zygote_is_killed() {
    let d = Daemon::start();
    let mut c = d.client();
    let s = session("in-flight");
    open(&mut c, &s);
    assert_eq!(run(&mut c, &s, "print(0)", None).stdout.text, "0\n");
    let socket = d.socket.clone();
    let s2 = s.clone();
    let running = std::thread::spawn(move || {
        let mut c = BlockingClient::connect(&socket).unwrap();
        run(
            &mut c,
            &s2,
            "import time\nprint('started', flush=True)\ntime.sleep(1.5)\nprint('finished')",
            Some(30_000),
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    kill_zygote(&d);
    // The jail belongs to the session's launcher, not to the zygote: the run finishes as if nothing
    // happened.
    let r = running.join().unwrap();
    assert_eq!(
        (r.stdout.text.as_str(), r.exit.code),
        ("started\nfinished\n", Some(0)),
        "{r:?}"
    );
    assert_eq!(run(&mut c, &s, "print(4)", None).stdout.text, "4\n");
    d.assert_serving();
}

#[test]
fn a_preload_module_that_does_not_import_is_named_with_its_error() {
    let d = Daemon::start_with(&["--preload", "json,sluice_no_such_module"]);
    let Response::Status(st) = d.client().call(Request::Status).unwrap() else {
        panic!()
    };
    let preload = st
        .protections
        .iter()
        .find(|p| p.name == "preload")
        .expect("preload reported");
    assert_eq!(
        (preload.state, preload.required),
        (ProtectionState::Missing, false),
        "{preload:?}"
    );
    let error = "ModuleNotFoundError: No module named 'sluice_no_such_module'";
    assert!(
        preload
            .detail
            .contains(&format!("sluice_no_such_module ({error})"))
            && !preload.detail.contains("json"),
        "{preload:?}"
    );
    assert!(d.log().contains(error), "{}", d.log());
    // The daemon serves on; a run that needs the module gets Python's own error.
    let mut c = d.client();
    let s = session("preload");
    open(&mut c, &s);
    let r = run(&mut c, &s, "import sluice_no_such_module", None);
    assert!(r.stderr.text.contains(error), "{r:?}");
    d.assert_serving();
}

#[test]
fn the_embedded_interpreter_is_configured_as_python_minus_i() {
    let d = Daemon::start_with(&[
        "--python",
        &sandbox_venv_python().unwrap_or_else(|| python().display().to_string()),
    ]);
    let mut c = d.client();
    let s = session("interpreter");
    open(&mut c, &s);
    // UTF-8 stdio under C.UTF-8 (the locale is configured, as `python -I` does), isolated mode, no
    // bytecode written, and the venv as sys.prefix when the daemon runs a venv.
    let r = run(
        &mut c,
        &s,
        "import sys\nprint(sys.stdout.encoding, sys.getfilesystemencoding(), sys.flags.isolated, \
         sys.flags.dont_write_bytecode, sys.prefix == sys.base_prefix or 'venv' in sys.prefix, 'é ✓')",
        None,
    );
    assert_eq!(r.stdout.text, "utf-8 utf-8 1 1 True é ✓\n", "{r:?}");
}

/// `sluice-sandbox doctor` on the native backend with `zygote` as the zygote executable, in a fresh root.
fn doctor_with_zygote(zygote: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_sluice-sandbox"))
        .args(["doctor", "--backend", "native", "--zygote-bin", zygote])
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--python")
        .arg(python())
        .args(if is_root() {
            vec!["--uid".to_string(), SANDBOX_UID.to_string()]
        } else {
            vec![]
        })
        .output()
        .unwrap()
}

#[test]
fn a_missing_zygote_executable_is_a_clear_start_up_error() {
    let out = doctor_with_zygote("/nonexistent/sluice-sandbox-zygote");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the sandbox's zygote /nonexistent/sluice-sandbox-zygote cannot be opened")
            && stderr.contains("cargo build -p sluice-sandbox-zygote"),
        "{stderr}"
    );
}

/// A zygote that dies while it starts is named, with how it ended, as soon as it has died: not after the
/// readiness timeout (which, before, also waited out the daemon's own copy of the zygote's socket).
#[test]
fn a_zygote_that_dies_at_start_up_is_named_at_once() {
    let started = std::time::Instant::now();
    let out = doctor_with_zygote("/bin/false");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let died = "sluice-sandbox-zygote (/bin/false) exited (exit status: 1) during start-up";
    assert!(
        stdout.contains(&format!(
            "verdict: serve cannot start without user_namespace (--allow-degraded does not stand in for it): \
             {died}"
        )),
        "{stdout}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_venv_of_another_python_version_is_refused_with_both_versions_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    // An "interpreter" that answers the daemon's probe as a Python the zygote was not built against.
    let fake = dir.path().join("python");
    let prefix = dir.path().display().to_string();
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho '{{\"version\": \"3.99.0\", \"executable\": \"{0}/python\", \
             \"real_executable\": \"{0}/python\", \"prefixes\": [\"{0}\"]}}'\n",
            prefix
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-sandbox"))
        .args(["doctor", "--backend", "native"])
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--python")
        .arg(&fake)
        .args(if is_root() {
            vec!["--uid".to_string(), SANDBOX_UID.to_string()]
        } else {
            vec![]
        })
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("sluice-sandbox-zygote was built against Python 3.")
            && all.contains(&format!(
                "the sandbox interpreter {prefix}/python is Python 3.99.0"
            ))
            && all.contains("PYO3_PYTHON"),
        "{all}"
    );
}
