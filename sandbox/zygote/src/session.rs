//! A session's processes: the session child (its namespaces and workspace), the launcher (PID 1 of the
//! session's PID namespace, forking one jail per `Prepare`) and a jail's PID 1 until it runs the code.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns, unshare};
use pyo3::prelude::*;
use sluice_sandbox_jail::apply::{self, write_status};
use sluice_sandbox_jail::{
    End, Prepare, Protection, RunHeader, Status, Step, StepReport, ZygoteConfig, codec, fdpass,
};

use crate::python;

pub fn exit(code: i32) -> ! {
    // SAFETY: _exit ends this process at once, without running the zygote's (inherited) exit handlers.
    unsafe { libc::_exit(code) }
}

pub fn report_error(status: BorrowedFd<'_>, step: Step, message: String) {
    write_status(status, &Status::Error { step, message });
}

/// The session child: creates the session's namespaces and workspace, forks its launcher (native backend:
/// `ctl` is its control socket), reports its pid and stays until the daemon has opened the namespaces and
/// the launcher has ended.
#[allow(clippy::too_many_arguments)]
pub fn session_child(
    py: Python<'_>,
    cfg: &ZygoteConfig,
    run: &Py<PyAny>,
    workspace_bytes: u64,
    workspace_inodes: u64,
    status: OwnedFd,
    hold: OwnedFd,
    ctl: Option<OwnedFd>,
) -> ! {
    let fail = |message: String| -> ! {
        report_error(status.as_fd(), Step::Session, message);
        exit(1)
    };
    if let Err(e) = apply::open_session(cfg, workspace_bytes, workspace_inodes) {
        fail(e.to_string());
    }
    let launcher_pid = ctl.map(|ctl| fork_launcher(py, cfg, run, &status, &hold, ctl));
    write_status(
        status.as_fd(),
        &Status::SessionReady {
            pid: std::process::id() as i32,
        },
    );
    drop(status);
    // Until the daemon has opened our namespaces (it closes `hold` when done).
    let _ = nix::unistd::read(&hold, &mut [0u8; 1]);
    // The launcher dies with this process (its parent-death signal), so this one stays until the launcher
    // is done: the daemon closed the session's control socket, or went away.
    if let Some(pid) = launcher_pid {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    }
    exit(0)
}

/// Forks the session's launcher (native backend) into a PID namespace of the session's own.
fn fork_launcher(
    py: Python<'_>,
    cfg: &ZygoteConfig,
    run: &Py<PyAny>,
    status: &OwnedFd,
    hold: &OwnedFd,
    ctl: OwnedFd,
) -> libc::pid_t {
    let fail = |message: String| -> ! {
        report_error(status.as_fd(), Step::Session, message);
        exit(1)
    };
    // The launcher is PID 1 of a PID namespace the session's user namespace owns: only there may it move
    // its children's PID namespace back to its own after each jail (setns needs CAP_SYS_ADMIN over the
    // target namespace's owner).
    if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
        fail(format!("unshare session PID namespace: {e}"));
    }
    // SAFETY: restoring the default disposition installs no handler code.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    match python::raw_fork() {
        Ok(0) => {
            // SAFETY: the child's copies of the status and hold pipes are not used again; their owners
            // in this (forked) stack frame are never dropped, as the launcher never returns.
            unsafe {
                libc::close(status.as_raw_fd());
                libc::close(hold.as_raw_fd());
            }
            launcher(py, cfg, run, ctl)
        }
        Ok(pid) => pid,
        Err(e) => fail(format!("fork launcher: {e}")),
    }
}

struct Running {
    pidfd: OwnedFd,
    pid: libc::pid_t,
    status: OwnedFd,
}

/// Forks the session's jails, one PID 1 per `Prepare`, each in a fresh PID namespace. Trusted code that
/// never runs user code; it reports each jail's exit on that jail's status pipe and hands the daemon a
/// pidfd of each jail's PID 1. When the daemon closes the control socket the launcher exits and, as PID 1
/// of the session's PID namespace, takes every jail of the session with it.
fn launcher(py: Python<'_>, cfg: &ZygoteConfig, run: &Py<PyAny>, ctl: OwnedFd) -> ! {
    if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_err() {
        exit(1);
    }
    let Ok(own_pidns) = std::fs::File::open("/proc/self/ns/pid") else {
        exit(1)
    };
    let mut jails: Vec<Running> = Vec::new();
    // Children would still be born in the launcher's own PID namespace.
    let mut fresh = true;
    // The session's jail root, built on the first jail that needs it (a degraded daemon that skips the
    // minimal root never mounts it): its detail, or why it could not be built.
    let mut root: Option<Result<String, String>> = None;
    loop {
        let mut polled: Vec<PollFd> = std::iter::once(PollFd::new(ctl.as_fd(), PollFlags::POLLIN))
            .chain(
                jails
                    .iter()
                    .map(|j| PollFd::new(j.pidfd.as_fd(), PollFlags::POLLIN)),
            )
            .collect();
        match poll(&mut polled, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => exit(1),
        }
        let ready: Vec<bool> = polled
            .iter()
            .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(polled);
        for i in (0..jails.len()).rev() {
            if ready[i + 1] {
                let j = jails.swap_remove(i);
                reap(&j);
            }
        }
        if !ready[0] {
            continue;
        }
        let (body, fds) = match fdpass::recv(ctl.as_fd(), 1 << 16, 4) {
            Ok((body, _)) if body.is_empty() => exit(0),
            Ok(m) => m,
            Err(_) => exit(0),
        };
        let [status, go]: [OwnedFd; 2] = match fds.try_into() {
            Ok(f) => f,
            Err(_) => continue,
        };
        let prepare: Prepare = match codec::decode(&body) {
            Ok(p) => p,
            Err(e) => {
                report_error(status.as_fd(), Step::Setup, e.to_string());
                continue;
            }
        };
        if root.is_none() && (prepare.probe || !prepare.skip.contains(&Protection::MinimalRoot)) {
            root = Some(apply::build_session_root(cfg).map_err(|e| e.to_string()));
        }
        let into_fresh_ns = || -> nix::Result<()> {
            if !fresh {
                setns(&own_pidns, CloneFlags::CLONE_NEWPID)?;
            }
            unshare(CloneFlags::CLONE_NEWPID)
        };
        let forked = into_fresh_ns().and_then(|()| {
            fresh = false;
            python::fork_for_python()
        });
        let pid = match forked {
            Ok(0) => {
                drop(ctl);
                drop(own_pidns);
                let root = root.unwrap_or_else(|| Err("not built".into()));
                jail(py, cfg, run, &prepare, &root, status, go)
            }
            Ok(pid) => pid,
            Err(e) => {
                report_error(status.as_fd(), Step::Fork, format!("jail: {e}"));
                continue;
            }
        };
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let sent = if fd < 0 {
            Err(nix::errno::Errno::last().to_string())
        } else {
            // SAFETY: the kernel just returned this descriptor and nothing else owns it.
            let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
            fdpass::send(go.as_fd(), b"pidfd", &[pidfd.as_raw_fd()])
                .map(|()| pidfd)
                .map_err(|e| e.to_string())
        };
        drop(go);
        match sent {
            Ok(pidfd) => {
                write_status(status.as_fd(), &Status::Child);
                jails.push(Running { pidfd, pid, status });
            }
            Err(e) => {
                report_error(status.as_fd(), Step::Pidfd, format!("pidfd: {e}"));
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            }
        }
    }
}

/// Reaps an ended jail and reports how it ended and its peak memory.
fn reap(j: &Running) {
    let mut wstatus = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, writing into the two locals.
    let r = unsafe { libc::wait4(j.pid, &mut wstatus, 0, &mut usage) };
    if r < 0 {
        return;
    }
    let end = end_of(wstatus);
    write_status(
        j.status.as_fd(),
        &Status::Exit {
            end,
            maxrss_kb: usage.ru_maxrss,
        },
    );
}

/// How a process ended, from its wait status.
pub fn end_of(wstatus: libc::c_int) -> End {
    if libc::WIFSIGNALED(wstatus) {
        End::Signal(libc::WTERMSIG(wstatus))
    } else {
        End::Code(libc::WEXITSTATUS(wstatus))
    }
}

/// PID 1 of a run: leaves the launcher's descriptors, unshares the run's other namespaces, locks itself
/// down, prepares the runner (environment, and the interpreter's common path once, so that copying the
/// zygote's pages happens now rather than in the run's time), says `Ready`, waits for its code and runs it.
fn jail(
    py: Python<'_>,
    cfg: &ZygoteConfig,
    run: &Py<PyAny>,
    prepare: &Prepare,
    root: &Result<String, String>,
    status: OwnedFd,
    go: OwnedFd,
) -> ! {
    // Nothing of the launcher's stays open here: not its control socket, nor other jails' pipes and pidfds.
    apply::close_all_but(&[status.as_raw_fd(), go.as_raw_fd()]);
    let flags = CloneFlags::from_bits_retain((prepare.unshare_flags & !(libc::CLONE_NEWPID as u64)) as i32);
    if let Err(e) = unshare(flags) {
        report_error(
            status.as_fd(),
            Step::Setup,
            format!("unshare run namespaces: {e}"),
        );
        exit(1);
    }
    report_lock_down(
        status.as_fd(),
        prepare.probe,
        apply::lock_down(cfg, prepare, root),
    );
    after_ready(py, cfg, run, status, go)
}

/// Tells the daemon how a jail's lock-down went: the probe's steps when asked, then `Ready`; or the step
/// that failed, and the jail ends.
pub fn report_lock_down(
    status: BorrowedFd<'_>,
    probe: bool,
    locked: Result<Vec<StepReport>, (Step, String)>,
) {
    match locked {
        Ok(results) => {
            if probe {
                write_status(status, &Status::Probe(results));
            }
            write_status(status, &Status::Ready);
        }
        Err((step, message)) => {
            report_error(status, step, message);
            exit(70);
        }
    }
}

/// A locked-down jail that has said `Ready` (native, or inside gVisor): prepares the runner, waits for its
/// code and runs it. The runner's preparation overlaps the daemon's answer; code sent meanwhile waits in
/// the go socket until it is done. The daemon has stopped reading set-up errors by now, so a failure here
/// is told to the run that comes, on its stderr.
pub fn after_ready(py: Python<'_>, cfg: &ZygoteConfig, run: &Py<PyAny>, status: OwnedFd, go: OwnedFd) -> ! {
    let unprepared = python::prepare_run(py, run, &cfg.env)
        .err()
        .map(|e| format!("the sandbox could not prepare this run: {e}"));
    drop(status);
    wait_and_run(py, cfg, run, go, unprepared)
}

/// Says why a run cannot start on its stderr (already the run's pipe), and ends the jail.
fn fail_run(why: &str) -> ! {
    let line = format!("sluice sandbox: {why}\n");
    // SAFETY: writes a live buffer to this process's own stderr.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    exit(70)
}

/// The locked-down jail's last trusted step: waits for the run, then becomes the user's code.
fn wait_and_run(
    py: Python<'_>,
    cfg: &ZygoteConfig,
    run: &Py<PyAny>,
    go: OwnedFd,
    unprepared: Option<String>,
) -> ! {
    let Ok((body, fds)) = fdpass::recv(go.as_fd(), 1 << 16, 8) else {
        exit(0)
    };
    let Ok(header) = codec::decode::<RunHeader>(&body) else {
        exit(0)
    };
    let [code_fd, out, err, report]: [OwnedFd; 4] = match fds.try_into() {
        Ok(f) => f,
        Err(_) => exit(0),
    };
    // SAFETY: dup2 onto the standard descriptors, which this process owns.
    unsafe {
        libc::dup2(out.as_raw_fd(), 1);
        libc::dup2(err.as_raw_fd(), 2);
    }
    drop((out, err, go));
    if let Some(why) = unprepared {
        fail_run(&why);
    }
    // The daemon wrote the memfd with pwrite: its offset is still 0.
    let mut code = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut std::fs::File::from(code_fd), &mut code) {
        fail_run(&format!("the run's code could not be read: {e}"));
    }
    if let Err(e) = apply::set_rlimits(&header.rlimits, &cfg.unsettable_rlimits) {
        fail_run(&format!("the run's limits could not be set: {e}"));
    }
    // From here on only the user's code runs; nothing below may trust it. Every descriptor but the
    // standard ones and the report pipe is closed (the go socket, the code memfd, anything inherited).
    // Close-on-exec (received so): a program the code execs does not inherit it.
    let report = std::os::fd::IntoRawFd::into_raw_fd(report);
    apply::close_all_but(&[report]);
    apply::link_into_tmp(&header.tmp_links);
    let _ = nix::unistd::chdir("/workspace");
    // SAFETY: restoring the default disposition installs no handler code.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    python::run_code(py, run, &code, report)
}
