//! The gVisor backends' trusted intermediate children, forked from the zygote per request.
//!
//! On the host ([`start_gvisor`]): the child joins the session's user and mount namespaces, unshares its
//! own, and forks `runsc run` as PID 1 of a fresh PID namespace with the container's stdio; the container's
//! process is the session server (this binary's `gvisor-server` mode, [`crate::gvisor_server`]). Inside a
//! gVisor container ([`inside_jail`]): the child forks a run's PID 1 into a fresh PID namespace, where it
//! builds a root of its own, drops to the session's uid and waits for its code as a native jail does.
//! Either child reports the pid the daemon kills ([`Status::Forked`]) and how that process ended, and
//! never runs user code.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;

use nix::mount::MsFlags;
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use pyo3::prelude::*;
use sluice_sandbox_jail::apply::{self, write_status};
use sluice_sandbox_jail::{End, Prepare, RunscConfig, Status, Step, ZygoteConfig, inside};

use crate::python;
use crate::session::{after_ready, end_of, exit, report_error};

/// The intermediate child of a session's gVisor container. Descriptors: the session's user and mount
/// namespaces, status pipe, the container's stdin, stdout and stderr. Killing the `runsc run` it reports
/// takes runsc's sandbox, gofer and every stub process with it: they all live in its PID namespace.
pub fn start_gvisor(cfg: &ZygoteConfig, unshare_flags: u64, seq: u64, fds: [OwnedFd; 6]) -> ! {
    let [userns, mntns, status, stdin_r, out_w, err_w] = fds;
    // SAFETY: restoring the default disposition installs no handler code.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let Some(g) = &cfg.runsc else {
        report_error(
            status.as_fd(),
            Step::Setup,
            "the zygote has no runsc configuration".into(),
        );
        exit(1)
    };
    let joined = (|| -> Result<(), String> {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .map_err(|e| format!("pdeathsig: {e}"))?;
        setns(&userns, CloneFlags::CLONE_NEWUSER).map_err(|e| format!("setns user namespace: {e}"))?;
        setns(&mntns, CloneFlags::CLONE_NEWNS).map_err(|e| format!("setns mount namespace: {e}"))?;
        unshare(CloneFlags::from_bits_retain(unshare_flags as i32))
            .map_err(|e| format!("unshare run namespaces: {e}"))
    })();
    drop((userns, mntns));
    if let Err(e) = joined {
        report_error(status.as_fd(), Step::Setup, e);
        exit(1);
    }
    let gpid = match python::raw_fork() {
        Ok(0) => {
            let (status, stdio) = (
                status.into_raw_fd(),
                [stdin_r.into_raw_fd(), out_w.into_raw_fd(), err_w.into_raw_fd()],
            );
            let why = exec_runsc(g, seq, status, stdio);
            // SAFETY: `status` is still open: `exec_runsc` keeps it (close-on-exec) for this report.
            let status = unsafe { std::os::fd::BorrowedFd::borrow_raw(status) };
            report_error(status, Step::Runsc, format!("runsc: {why}"));
            exit(70)
        }
        Ok(pid) => pid,
        Err(e) => {
            report_error(status.as_fd(), Step::Fork, format!("fork runsc: {e}"));
            exit(1)
        }
    };
    write_status(status.as_fd(), &Status::Forked { pid: gpid });
    drop((stdin_r, out_w, err_w));
    let mut wstatus = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, writing into the two locals.
    if unsafe { libc::wait4(gpid, &mut wstatus, 0, &mut usage) } >= 0 {
        write_status(
            status.as_fd(),
            &Status::Exit {
                end: end_of(wstatus),
                maxrss_kb: usage.ru_maxrss,
            },
        );
    }
    exit(0)
}

/// PID 1 of the container's PID namespace: its own `/proc` and runsc state, the container's stdio, then
/// `runsc run`. Returns only why it could not exec.
fn exec_runsc(g: &RunscConfig, seq: u64, status: RawFd, stdio: [RawFd; 3]) -> String {
    let prepared = (|| -> Result<(CString, Vec<CString>), String> {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .map_err(|e| format!("pdeathsig: {e}"))?;
        let mount = |src: Option<&str>, target: &str, fstype: Option<&str>, flags, data: Option<&str>| {
            nix::mount::mount(src, target, fstype, flags, data).map_err(|e| format!("mount {target}: {e}"))
        };
        mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
        // runsc reads /proc/<pid> of the processes it starts: it needs a /proc of this PID namespace.
        mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        )?;
        // A private state directory per container: nothing of it outlives the run's mount namespace.
        mount(
            Some("tmpfs"),
            &g.state,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("size=4m,mode=0700"),
        )?;
        let path = apply::cstring(&g.runsc).map_err(|e| e.to_string())?;
        let mut argv = g
            .argv
            .iter()
            .map(|a| apply::cstring(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        argv.push(apply::cstring(&format!("sluice-{seq}")).map_err(|e| e.to_string())?);
        Ok((path, argv))
    })();
    let (path, argv) = match prepared {
        Ok(p) => p,
        Err(e) => return e,
    };
    for (fd, target) in stdio.into_iter().zip(0..) {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return format!("dup2: {}", nix::errno::Errno::last());
        }
    }
    // Nothing else of the zygote's reaches runsc; the status pipe is close-on-exec (received so) and stays
    // only to report a failed exec.
    apply::close_all_but(&[status]);
    match nix::unistd::execv(&path, &argv) {
        Err(e) => format!("execv {}: {e}", g.runsc),
    }
}

/// One run's jail inside a gVisor container (`--backend gvisor-container`). Descriptors: status pipe, go
/// socket, hold pipe.
///
/// This trusted intermediate child unshares a PID namespace and forks the run's PID 1 into it, reports
/// that pid (the daemon's PID namespace is this one: there is no `pidfd_open` in gVisor, so the daemon
/// kills by pid) and its exit status, and does not reap it until the daemon closes `hold`: until then the
/// pid stays the run's, alive or a zombie, so a kill by pid can never hit another process. Then it takes
/// the run's mounts down: gVisor (the 2022 release at least) accepts `unshare(CLONE_NEWNS)` but does not
/// separate mounts, so a run's mounts are visible to the whole container and must not outlive it.
#[allow(clippy::too_many_arguments)]
pub fn inside_jail(
    py: Python<'_>,
    cfg: &ZygoteConfig,
    run: &Py<PyAny>,
    seq: u64,
    prepare: &Prepare,
    uid: u32,
    gid: u32,
    workspace: &str,
    fds: [OwnedFd; 3],
) -> ! {
    let [status, go, hold] = fds;
    // SAFETY: restoring the default disposition installs no handler code.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let root = format!("{}/{seq}-{}", cfg.jail_dir, std::process::id());
    let forked = (|| -> Result<libc::pid_t, String> {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .map_err(|e| format!("pdeathsig: {e}"))?;
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&root)
            .map_err(|e| format!("mkdir {root}: {e}"))?;
        unshare(CloneFlags::CLONE_NEWPID).map_err(|e| format!("unshare run PID namespace: {e}"))?;
        // The run's PID 1 runs Python: the interpreter's fork hooks run in it.
        python::fork_for_python().map_err(|e| format!("fork: {e}"))
    })();
    let pid = match forked {
        Ok(0) => {
            drop(hold);
            apply::close_all_but(&[status.as_raw_fd(), go.as_raw_fd()]);
            let flags =
                CloneFlags::from_bits_retain((prepare.unshare_flags & !(libc::CLONE_NEWPID as u64)) as i32);
            if let Err(e) = unshare(flags) {
                report_error(
                    status.as_fd(),
                    Step::Setup,
                    format!("unshare run namespaces: {e}"),
                );
                exit(1);
            }
            crate::session::report_lock_down(
                status.as_fd(),
                prepare.probe,
                inside::lock_down(cfg, prepare, uid, gid, workspace, &root),
            );
            after_ready(py, cfg, run, status, go)
        }
        Ok(pid) => pid,
        Err(e) => {
            report_error(status.as_fd(), Step::Setup, e);
            exit(1)
        }
    };
    drop(go);
    write_status(status.as_fd(), &Status::Forked { pid });
    let pid = nix::unistd::Pid::from_raw(pid);
    match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
        Ok(ws) => {
            let end = match ws {
                WaitStatus::Signaled(_, sig, _) => End::Signal(sig as i32),
                WaitStatus::Exited(_, code) => End::Code(code),
                // WEXITED asks only for ended children: nothing else is reported.
                _ => End::Code(1),
            };
            write_status(status.as_fd(), &Status::Exit { end, maxrss_kb: 0 });
        }
        Err(e) => report_error(status.as_fd(), Step::Wait, format!("wait: {e}")),
    }
    drop(status);
    // Returns when the daemon has let go of the pid (closed its end).
    let _ = nix::unistd::read(&hold, &mut [0u8; 1]);
    let _ = nix::sys::wait::waitpid(pid, None);
    inside::unmount_run_root(&root);
    exit(0)
}
