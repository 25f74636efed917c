//! Process file descriptors: a handle on one exact process, so that a kill can never hit a recycled pid.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A pidfd for a process the daemon may have to kill.
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
    pid: i32,
}

impl PidFd {
    /// Opens a pidfd. Call it only while the process is known to be alive and unreaped.
    pub fn open(pid: i32) -> std::io::Result<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory is shared.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(PidFd { fd, pid })
    }

    /// Adopts a pidfd another process opened and passed over a socket. The pid (for logs only; signals
    /// go through the descriptor) is the kernel's view from this process's PID namespace, or -1 once the
    /// process has been reaped.
    pub fn adopt(fd: OwnedFd) -> std::io::Result<Self> {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .and_then(|v| v.trim().parse::<i32>().ok())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not a pidfd"))?;
        Ok(PidFd { fd, pid })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// True until the process has exited (a pidfd becomes readable when its process terminates).
    pub fn alive(&self) -> bool {
        use std::os::fd::AsFd;
        let mut fds = [nix::poll::PollFd::new(
            self.fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(0))
    }

    /// Blocks until the process has exited.
    pub fn wait_exit(&self) {
        use std::os::fd::AsFd;
        loop {
            let mut fds = [nix::poll::PollFd::new(
                self.fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                _ => return,
            }
        }
    }

    /// Sends SIGKILL. Killing PID 1 of a PID namespace kills every process in it.
    pub fn kill(&self) -> std::io::Result<()> {
        // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, no siginfo and no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<u8>(),
                0,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            // Already gone is what we wanted.
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Ok(());
            }
            return Err(e);
        }
        Ok(())
    }
}

/// How the daemon kills a run's PID 1: through a pidfd, or (inside gVisor, which has no `pidfd_open`)
/// by pid, while holding the pipe whose closing lets the run's trusted parent reap it. Until that pipe
/// closes the pid stays the run's (alive or a zombie), so a kill by pid never reaches another process.
#[derive(Debug)]
pub enum RunHandle {
    Fd(PidFd),
    Held { pid: i32, hold: OwnedFd },
}

impl RunHandle {
    pub fn pid(&self) -> i32 {
        match self {
            RunHandle::Fd(p) => p.pid(),
            RunHandle::Held { pid, .. } => *pid,
        }
    }

    /// True until the process has exited (a held pid also counts as gone once it is a zombie).
    pub fn alive(&self) -> bool {
        match self {
            RunHandle::Fd(p) => p.alive(),
            RunHandle::Held { pid, .. } => std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
                .unwrap_or(false),
        }
    }

    /// Sends SIGKILL. Killing PID 1 of a PID namespace kills every process in it.
    pub fn kill(&self) -> std::io::Result<()> {
        match self {
            RunHandle::Fd(p) => p.kill(),
            RunHandle::Held { pid, .. } => {
                match nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid),
                    nix::sys::signal::Signal::SIGKILL,
                ) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}
