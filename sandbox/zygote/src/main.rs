//! `sluice-sandbox-zygote`: the sandbox's pre-forked worker, for every backend. The daemon starts it with a
//! `SOCK_SEQPACKET` control socket as stdin and its root directory as `argv[1]` (every process forked from
//! here keeps it in its command line, which is how operators and tests find a daemon's sandbox processes).
//!
//! It embeds CPython (the only process of the sandbox that links `libpython`), imports the preload modules
//! while single-threaded, then forks per request: a session (user + mount namespace, workspace tmpfs) and,
//! natively, its launcher, PID 1 of the session's own PID namespace, which forks one jail per `Prepare`; a
//! session's gVisor container (an intermediate child that starts `runsc run`, [`gvisor`]); or, inside a
//! gVisor container, a run's jail (an intermediate child and the run's PID 1). A jail locks itself down
//! (`sluice_sandbox_jail::apply::lock_down`, or `inside::lock_down`), says `Ready`, waits for its code and
//! only then runs it in the interpreter it inherited. The zygote never reads user code: only a jail reads
//! its memfd. Messages are the typed values of `sluice_sandbox_jail::msg`.
//!
//! `sluice-sandbox-zygote gvisor-server CONFIG` is the other mode: the process of a session's gVisor
//! container, which embeds the interpreter the same way and serves the session's runs ([`gvisor_server`]).
#![allow(unsafe_code)]

mod gvisor;
mod gvisor_server;
mod python;
mod session;

use std::convert::Infallible;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::ExitCode;

use pyo3::prelude::*;
use sluice_sandbox_jail::{Hello, Request, Step, ZygoteConfig, codec, fdpass};

/// The largest configuration message (the seccomp programs and the root plan: a few tens of KiB).
const MAX_CONFIG: usize = 4 << 20;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("gvisor-server") {
        return gvisor_server::main(args.next());
    }
    // SAFETY: descriptor 0 is the control socket the daemon passed; it stays open for the process's life.
    let ctl = unsafe { BorrowedFd::borrow_raw(0) };
    let cfg: ZygoteConfig = match fdpass::recv(ctl, MAX_CONFIG, 0).and_then(|(body, _)| codec::decode(&body))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice-sandbox-zygote: no configuration from the daemon: {e}");
            return ExitCode::FAILURE;
        }
    };
    let refuse = |reason: String| {
        eprintln!("sluice-sandbox-zygote: {reason}");
        if let Ok(body) = codec::encode(&Hello::Refused { reason }) {
            let _ = fdpass::send(ctl, &body, &[]);
        }
        ExitCode::FAILURE
    };
    if let Some(reason) = python::version_mismatch(&cfg.python, &cfg.python_version) {
        return refuse(reason);
    }
    if let Err(e) = python::initialize(&cfg.python) {
        return refuse(e);
    }
    Python::attach(|py| {
        let run = match python::runner(py) {
            Ok(r) => r,
            Err(e) => return refuse(format!("the runner did not compile: {e}")),
        };
        let preload = python::preload(py, &cfg.preload);
        let threads = std::fs::read_dir("/proc/self/task")
            .map(|d| d.count())
            .unwrap_or(0);
        if threads != 1 {
            return refuse(format!(
                "{threads} threads after preloading {:?}; a forking zygote must be single-threaded (set the \
                 module's thread count to one or import it lazily)",
                cfg.preload
            ));
        }
        if let Err(e) = python::freeze(py) {
            return refuse(format!("gc.freeze: {e}"));
        }
        // Children are reaped by the kernel; the daemon learns exit statuses from the launchers.
        // SAFETY: setting a signal disposition to SIG_IGN installs no handler code.
        unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
        let hello = Hello::Ready {
            pid: std::process::id() as i32,
            python_version: Python::version_str()
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
            preload,
        };
        match codec::encode(&hello).and_then(|b| fdpass::send(ctl, &b, &[])) {
            Ok(()) => serve(py, ctl, &cfg, &run),
            Err(e) => {
                eprintln!("sluice-sandbox-zygote: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Forks one child per request until the daemon closes the socket.
fn serve(py: Python<'_>, ctl: BorrowedFd<'_>, cfg: &ZygoteConfig, run: &Py<PyAny>) -> ExitCode {
    loop {
        let (body, fds) = match fdpass::recv(ctl, 1 << 16, 16) {
            Ok((body, _)) if body.is_empty() => return ExitCode::SUCCESS,
            Ok(m) => m,
            Err(e) => {
                // The daemon is gone or sent something unreadable; children die by their parent-death signal.
                eprintln!("sluice-sandbox-zygote: control socket: {e}");
                return ExitCode::FAILURE;
            }
        };
        let req: Request = match codec::decode(&body) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("sluice-sandbox-zygote: ignoring a request: {e}");
                continue;
            }
        };
        match req {
            Request::OpenSession {
                workspace_bytes,
                workspace_inodes,
                launcher,
            } => {
                let mut fds = fds.into_iter();
                let (Some(status), Some(hold)) = (fds.next(), fds.next()) else {
                    eprintln!("sluice-sandbox-zygote: a session request without its descriptors");
                    continue;
                };
                let ctl = if launcher { fds.next() } else { None };
                if launcher && ctl.is_none() {
                    eprintln!("sluice-sandbox-zygote: a session request without its launcher's socket");
                    continue;
                }
                fork_child(status.as_raw_fd(), move || {
                    session::session_child(py, cfg, run, workspace_bytes, workspace_inodes, status, hold, ctl)
                });
            }
            Request::StartGvisor { unshare_flags, seq } => {
                let fds: [OwnedFd; 6] = match fds.try_into() {
                    Ok(f) => f,
                    Err(_) => {
                        eprintln!("sluice-sandbox-zygote: a gVisor request without its six descriptors");
                        continue;
                    }
                };
                fork_child(fds[2].as_raw_fd(), move || {
                    gvisor::start_gvisor(cfg, unshare_flags, seq, fds)
                });
            }
            Request::InsideJail {
                seq,
                prepare,
                uid,
                gid,
                workspace,
            } => {
                let fds: [OwnedFd; 3] = match fds.try_into() {
                    Ok(f) => f,
                    Err(_) => {
                        eprintln!("sluice-sandbox-zygote: a jail request without its three descriptors");
                        continue;
                    }
                };
                fork_child(fds[0].as_raw_fd(), move || {
                    gvisor::inside_jail(py, cfg, run, seq, &prepare, uid, gid, &workspace, fds)
                });
            }
        }
    }
}

/// Forks the child that serves one request, without the interpreter's fork hooks (it runs Rust code only,
/// until it forks a jail); the child never returns. The parent's copies of the request's descriptors are
/// closed when `child` is dropped; a failed fork is reported on `status` first.
fn fork_child(status: RawFd, child: impl FnOnce() -> Infallible) {
    match python::raw_fork() {
        Ok(0) => {
            // SAFETY: the child's copy of the control socket is not used again.
            unsafe { libc::close(0) };
            child();
        }
        Ok(_) => {}
        Err(e) => {
            // SAFETY: `status` belongs to the request's descriptors, which `child` still owns here.
            let status = unsafe { BorrowedFd::borrow_raw(status) };
            session::report_error(status, Step::Fork, format!("fork: {e}"));
        }
    }
}
