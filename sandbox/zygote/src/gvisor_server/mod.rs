//! `sluice-sandbox-zygote gvisor-server CONFIG`: the process of a session's long-lived gVisor container
//! (Mode::Runsc), bound read-only into the container by the daemon.
//!
//! CONFIG is a [`ServerConfig`] as JSON. The server embeds the installation's interpreter, imports the
//! preloads once, says `Ready` and then serves the typed frames of [`sluice_sandbox_jail::wire`]: requests
//! on stdin, events on stdout (stderr is diagnostics the daemon logs).
//!
//! It keeps [`READY_PID1S`] runs' PID 1s cloned ahead (one `clone(2)` each straight into fresh PID, IPC and
//! UTS namespaces). Each such PID 1
//! - builds a root of its own under [`RUNS`] (a read-only bind of the container's skeleton root, the
//!   installation's binds, `/dev` and `/sys` as the container has them, the session's `/workspace`, a
//!   fresh size-limited `/tmp`, a `/proc` of the run's PID namespace) and enters it with chroot (this
//!   gVisor does not separate mount namespaces and has no pivot_root),
//! - empties every capability set, sets no_new_privs, prepares the runner (`runner.py`: the environment
//!   and the interpreter's common path) and waits for its run on a pipe;
//! - given a run, lowers the rlimits to the run's and runs the code in the already-initialised interpreter.
//!
//! The run is uid 0 of gVisor's kernel with no capabilities. When its PID 1 exits (or on Kill) the whole
//! PID namespace dies: nothing a run started survives it. The server reaps PID 1, drains the run's output,
//! sends Exit and takes the run's mounts down.
//!
//! The server runs as root of gVisor's kernel with the capabilities the bundle grants it (mount, chroot,
//! setpcap): gVisor-kernel capabilities that never reach the host, and that every run drops. Nothing a
//! run can reach holds the server's stdin or stdout: a run cannot forge frames for another run.
//!
//! This file is the server's loop; [`pid1`] is a run's PID 1.
#![allow(unsafe_code)]

mod pid1;

use std::io::Write;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::process::ExitCode;

use pyo3::prelude::*;
use sluice_sandbox_jail::wire::{self, Ended, Event, Request, ServerConfig};

use crate::python;
use crate::session::exit;
use pid1::{run_init, take_down};

/// Where each run's root is mounted (inside the container's own `/tmp`).
const RUNS: &str = "/tmp/.runs";
/// PID 1s kept cloned ahead: two, so that back-to-back runs find one whose set-up is done (a clone and its
/// set-up take longer than a short run under the ptrace platform).
const READY_PID1S: usize = 2;
const RUN_CLONE_FLAGS: libc::c_int =
    libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::SIGCHLD;

pub(super) fn log(text: &str) {
    eprintln!("sluice gvisor server: {text}");
}

/// Writes a whole buffer to a descriptor, unbuffered.
pub(super) fn write_all(fd: RawFd, bytes: &[u8]) -> std::io::Result<()> {
    // SAFETY: `fd` is open for the duration of the call; ManuallyDrop keeps it open afterwards.
    let mut f = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    f.write_all(bytes)
}

fn send(event: &Event) {
    if let Err(e) = write_all(1, &event.encode()) {
        // The daemon is gone: the container ends with it.
        log(&format!("writing an event: {e}"));
        exit(1);
    }
}

/// The server's entry point; `arg` is the configuration.
pub fn main(arg: Option<String>) -> ExitCode {
    let cfg: ServerConfig = match arg.as_deref().map(serde_json::from_str) {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            log(&format!("bad configuration: {e}"));
            return ExitCode::FAILURE;
        }
        None => {
            log("no configuration");
            return ExitCode::FAILURE;
        }
    };
    if let Some(reason) = python::version_mismatch(&cfg.python, &cfg.python_version) {
        log(&reason);
        return ExitCode::FAILURE;
    }
    if let Err(e) = python::initialize(&cfg.python) {
        log(&e);
        return ExitCode::FAILURE;
    }
    Python::attach(|py| {
        let runner = match python::runner(py) {
            Ok(r) => r,
            Err(e) => {
                log(&format!("the runner did not compile: {e}"));
                return ExitCode::FAILURE;
            }
        };
        let report = python::preload(py, &cfg.preload);
        for f in &report.failed {
            log(&format!("preloading {} failed: {}", f.module, f.error));
        }
        // Objects that exist now are never collected in a run: without this its first collection touches
        // (and so copies, one page fault through the ptrace platform at a time) every page of the heap.
        if let Err(e) = python::freeze(py) {
            log(&format!("gc.freeze: {e}"));
        }
        match Server::new(py, &cfg, &runner) {
            Ok(mut server) => server.serve(),
            Err(e) => {
                log(&e);
                ExitCode::FAILURE
            }
        }
    })
}

/// One run's PID 1, from its clone until its mounts are taken down.
struct Run {
    /// The run it was given (`None` while it waits, cloned ahead).
    id: Option<u64>,
    pid: libc::pid_t,
    root: String,
    /// Where the run's request is written; closed once it is.
    go: Option<OwnedFd>,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    status: Option<OwnedFd>,
    status_buf: Vec<u8>,
    /// Why the set-up failed.
    error: Option<String>,
    /// How PID 1 ended, and its peak RSS in KiB.
    ended: Option<(Ended, u64)>,
}

impl Run {
    fn drained(&self) -> bool {
        self.out.is_none() && self.err.is_none() && self.status.is_none()
    }
}

/// Keeps [`READY_PID1S`] PID 1s cloned and locked down ahead of the next runs (a clone costs the most under
/// the ptrace platform); gives each Run request to the oldest and clones the next while that run runs. The
/// clone blocks this loop for its duration (milliseconds): the run it overlaps relays its Exit after it.
struct Server<'a> {
    py: Python<'a>,
    cfg: &'a ServerConfig,
    runner: &'a Py<PyAny>,
    seq: u64,
    /// Cloned-ahead PID 1s (in clone order, `id` unset) and runs under way.
    runs: Vec<Run>,
    /// Roots whose mounts are still to be taken down.
    finished: Vec<String>,
    sigchld: OwnedFd,
}

impl<'a> Server<'a> {
    fn new(py: Python<'a>, cfg: &'a ServerConfig, runner: &'a Py<PyAny>) -> Result<Server<'a>, String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(RUNS)
            .map_err(|e| format!("mkdir {RUNS}: {e}"))?;
        // SIGCHLD is blocked and read from a signalfd, so that the loop waits for requests, output and
        // ended runs in one poll. Each run's PID 1 unblocks it again.
        // SAFETY: sigset operations on a local set; sigprocmask on this single-threaded process.
        let fd = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) < 0 {
                return Err(format!("sigprocmask: {}", nix::errno::Errno::last()));
            }
            libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)
        };
        if fd < 0 {
            return Err(format!("signalfd: {}", nix::errno::Errno::last()));
        }
        Ok(Server {
            py,
            cfg,
            runner,
            seq: 0,
            runs: Vec::new(),
            finished: Vec::new(),
            // SAFETY: signalfd returned a new descriptor that nothing else owns.
            sigchld: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn ready(&self) -> usize {
        self.runs.iter().filter(|r| r.id.is_none()).count()
    }

    fn serve(&mut self) -> ExitCode {
        self.refill();
        send(&Event::Ready {
            python: Python::version_str()
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        });
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let active = self.runs.iter().any(|r| r.id.is_some());
            let idle_work = !self.finished.is_empty() || (self.ready() < READY_PID1S && !active);
            let mut fds = vec![
                libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.sigchld.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            for r in &self.runs {
                for fd in [&r.out, &r.err, &r.status].into_iter().flatten() {
                    fds.push(libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                }
            }
            let timeout = if idle_work { 0 } else { -1 };
            // SAFETY: poll writes only the `revents` of the array it is given, which lives across the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                let e = nix::errno::Errno::last();
                if e == nix::errno::Errno::EINTR {
                    continue;
                }
                log(&format!("poll: {e}"));
                return ExitCode::FAILURE;
            }
            if n == 0 {
                if let Some(root) = self.finished.pop() {
                    take_down(self.cfg, &root);
                } else if idle_work {
                    self.refill();
                }
                continue;
            }
            for p in fds.iter().filter(|p| p.revents != 0) {
                if p.fd == 0 {
                    let got = match nix::unistd::read(std::io::stdin(), &mut chunk) {
                        Ok(n) => n,
                        Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                        Err(_) => 0,
                    };
                    if got == 0 {
                        // The daemon let go of the session: end every run, then the container.
                        self.stop();
                        exit(0);
                    }
                    buf.extend_from_slice(&chunk[..got]);
                    if let Err(e) = self.requests(&mut buf) {
                        log(&format!("unreadable request: {e}"));
                        self.stop();
                        exit(1);
                    }
                } else if p.fd == self.sigchld.as_raw_fd() {
                    let mut info = [0u8; 128 * 8];
                    while matches!(nix::unistd::read(&self.sigchld, &mut info), Ok(n) if n > 0) {}
                    self.reap();
                } else {
                    self.readable(p.fd);
                }
            }
            self.reap();
        }
    }

    /// Handles every whole frame in `buf`, leaving a partial one.
    fn requests(&mut self, buf: &mut Vec<u8>) -> Result<(), wire::WireError> {
        let mut at = 0;
        while let Some(h) = buf.get(at..at + wire::HEADER_LEN) {
            let h: &[u8; wire::HEADER_LEN] =
                h.try_into().map_err(|_| wire::WireError::Malformed("header"))?;
            let (len, kind, id) = wire::parse_header(h)?;
            let Some(payload) = buf.get(at + wire::HEADER_LEN..at + wire::HEADER_LEN + len) else {
                break;
            };
            match Request::decode(kind, id, payload) {
                Ok(Request::Run { id, .. }) => self.start(id, payload),
                Ok(Request::Kill { id }) => self.kill(id),
                Err(e) => {
                    // A run the daemon waits for fails at once (the daemon ignores ids it does not know).
                    log(&format!("ignoring a request: {e}"));
                    send(&Event::Failed {
                        id,
                        message: format!("the sandbox could not read the request: {e}"),
                    });
                }
            }
            at += wire::HEADER_LEN + len;
        }
        buf.drain(..at);
        Ok(())
    }

    fn refill(&mut self) {
        while self.ready() < READY_PID1S {
            match self.prepare() {
                Some(run) => self.runs.push(run),
                None => return,
            }
        }
    }

    /// Clones the next run's PID 1 (see the module header).
    fn prepare(&mut self) -> Option<Run> {
        self.seq += 1;
        let root = format!("{RUNS}/{}", self.seq);
        let pipes = (|| -> nix::Result<[(OwnedFd, OwnedFd); 4]> {
            let p = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC);
            Ok([p()?, p()?, p()?, p()?])
        })();
        let [(go_r, go_w), (out_r, out_w), (err_r, err_w), (status_r, status_w)] = match pipes {
            // The server's ends are read only when poll says so, but a descriptor number of a run that
            // just ended may already be another run's: a read must never block the loop.
            Ok(p)
                if [&p[1].0, &p[2].0, &p[3].0]
                    .into_iter()
                    .all(|f| set_nonblocking(f).is_ok()) =>
            {
                p
            }
            Ok(_) => {
                log("pipe: cannot make it non-blocking");
                return None;
            }
            Err(e) => {
                log(&format!("pipe: {e}"));
                return None;
            }
        };
        match python::clone_for_python(RUN_CLONE_FLAGS) {
            Ok(0) => {
                drop((go_w, out_r, err_r, status_r));
                run_init(
                    self.py,
                    self.cfg,
                    self.runner,
                    &root,
                    go_r,
                    out_w,
                    err_w,
                    status_w,
                )
            }
            Ok(pid) => Some(Run {
                id: None,
                pid,
                root,
                go: Some(go_w),
                out: Some(out_r),
                err: Some(err_r),
                status: Some(status_r),
                status_buf: Vec::new(),
                error: None,
                ended: None,
            }),
            Err(e) => {
                log(&format!("clone: {e}"));
                None
            }
        }
    }

    fn start(&mut self, id: u64, payload: &[u8]) {
        let at = match self.runs.iter().position(|r| r.id.is_none()) {
            Some(at) => at,
            None => match self.prepare() {
                Some(run) => {
                    self.runs.push(run);
                    self.runs.len() - 1
                }
                None => {
                    send(&Event::Failed {
                        id,
                        message: "the run's process could not be cloned (see the sandbox log)".into(),
                    });
                    return;
                }
            },
        };
        // The run keeps its place: later runs are cloned after it.
        let run = &mut self.runs[at];
        run.id = Some(id);
        if let Some(message) = &run.error {
            send(&Event::Failed {
                id,
                message: message.clone(),
            });
        }
        if let Some(go) = run.go.take() {
            // PID 1 died before its run: its exit is reported as the run's.
            let _ = write_all(go.as_raw_fd(), payload);
        }
        // The server blocks while it clones (10-25 ms here), and a run's Exit waits for it: with another
        // PID 1 still ready, the next is cloned once no run is under way; with none, now, while this run
        // runs.
        if self.ready() == 0 {
            self.refill();
        }
        self.maybe_done(id_of(&self.runs, Some(id)));
    }

    fn kill(&mut self, id: u64) {
        // PID 1 is not reaped before its Exit is sent, so this pid is still the run's.
        if let Some(r) = self.runs.iter().find(|r| r.id == Some(id) && r.ended.is_none()) {
            // SAFETY: kill takes no pointers.
            unsafe { libc::kill(r.pid, libc::SIGKILL) };
        }
    }

    fn readable(&mut self, fd: RawFd) {
        let Some(at) = self.runs.iter().position(|r| {
            [&r.out, &r.err, &r.status]
                .into_iter()
                .flatten()
                .any(|f| f.as_raw_fd() == fd)
        }) else {
            return;
        };
        let run = &mut self.runs[at];
        let mut chunk = vec![0u8; 1 << 16];
        // SAFETY: `fd` is one of the run's open pipes, found above.
        let n = match nix::unistd::read(unsafe { BorrowedFd::borrow_raw(fd) }, &mut chunk) {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return,
            Err(_) => 0,
        };
        chunk.truncate(n);
        let is = |f: &Option<OwnedFd>| f.as_ref().is_some_and(|f| f.as_raw_fd() == fd);
        if is(&run.status) {
            if n == 0 {
                run.status = None;
            }
            run.status_buf.extend_from_slice(&chunk);
            while let Some(end) = run.status_buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = run.status_buf.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..end]).into_owned();
                let (word, rest) = line.split_once(' ').unwrap_or((&line, ""));
                match (word, run.id) {
                    ("ok", Some(id)) => send(&Event::Started { id }),
                    ("error", id) if run.error.is_none() => {
                        run.error = Some(rest.to_string());
                        if let Some(id) = id {
                            send(&Event::Failed {
                                id,
                                message: rest.to_string(),
                            });
                        }
                    }
                    _ => {}
                }
            }
        } else if n == 0 {
            if is(&run.out) {
                run.out = None;
            } else {
                run.err = None;
            }
        } else if let Some(id) = run.id {
            let event = if is(&run.out) {
                Event::Stdout { id, bytes: chunk }
            } else {
                Event::Stderr { id, bytes: chunk }
            };
            send(&event);
        }
        self.maybe_done(Some(at));
    }

    fn reap(&mut self) {
        loop {
            let mut wstatus = 0;
            // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: wait4 on this process's children, writing into the two locals.
            let pid = unsafe { libc::wait4(-1, &mut wstatus, libc::WNOHANG, &mut usage) };
            if pid <= 0 {
                return;
            }
            let Some(at) = self.runs.iter().position(|r| r.pid == pid) else {
                continue;
            };
            let ended = if libc::WIFSIGNALED(wstatus) {
                Ended::Signal(libc::WTERMSIG(wstatus))
            } else {
                Ended::Code(libc::WEXITSTATUS(wstatus))
            };
            self.runs[at].ended = Some((ended, usage.ru_maxrss.max(0) as u64));
            self.maybe_done(Some(at));
        }
    }

    /// Every process of the run is gone once PID 1 is reaped, so its pipes reach their end too: then the
    /// run's Exit goes out and its root is taken down once nothing else waits.
    fn maybe_done(&mut self, at: Option<usize>) {
        let Some(at) = at else { return };
        let run = &self.runs[at];
        let Some((ended, maxrss_kb)) = run.ended else {
            return;
        };
        if !run.drained() {
            return;
        }
        let run = self.runs.remove(at);
        match run.id {
            // A PID 1 that died before it was given a run; the next run gets a new one.
            None => log(&format!(
                "a prepared run process ended before its run: {}",
                run.error.clone().unwrap_or_else(|| format!("{ended:?}"))
            )),
            Some(id) if run.error.is_none() => send(&Event::Exit { id, ended, maxrss_kb }),
            Some(_) => {}
        }
        self.finished.push(run.root);
    }

    fn stop(&self) {
        for r in self.runs.iter().filter(|r| r.ended.is_none()) {
            // SAFETY: kill takes no pointers.
            unsafe { libc::kill(r.pid, libc::SIGKILL) };
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

fn id_of(runs: &[Run], id: Option<u64>) -> Option<usize> {
    runs.iter().position(|r| r.id == id)
}
