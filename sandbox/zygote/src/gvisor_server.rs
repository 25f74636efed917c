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
#![allow(unsafe_code)]

use std::io::Write;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::process::ExitCode;

use nix::mount::{MntFlags, MsFlags};
use pyo3::prelude::*;
use sluice_sandbox_jail::apply;
use sluice_sandbox_jail::wire::{self, Ended, Event, Request, ServerConfig};

use crate::python;
use crate::session::exit;

/// Where each run's root is mounted (inside the container's own `/tmp`).
const RUNS: &str = "/tmp/.runs";
/// PID 1s kept cloned ahead: two, so that back-to-back runs find one whose set-up is done (a clone and its
/// set-up take longer than a short run under the ptrace platform).
const READY_PID1S: usize = 2;
const RUN_CLONE_FLAGS: libc::c_int =
    libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::SIGCHLD;

fn log(text: &str) {
    eprintln!("sluice gvisor server: {text}");
}

/// Writes a whole buffer to a descriptor, unbuffered.
fn write_all(fd: RawFd, bytes: &[u8]) -> std::io::Result<()> {
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

/// A run root's mounts, in mount order: (source, target, kind, writable).
fn mounts_of(cfg: &ServerConfig, root: &str) -> Vec<(String, String, Mount, bool)> {
    let mut out = vec![("/".to_string(), root.to_string(), Mount::Bind, false)];
    for b in &cfg.binds {
        out.push((b.dst.clone(), format!("{root}{}", b.dst), Mount::Bind, b.writable));
    }
    for top in ["/dev", "/sys"] {
        out.push((top.into(), format!("{root}{top}"), Mount::Bind, false));
    }
    out.push((
        "/workspace".into(),
        format!("{root}/workspace"),
        Mount::Bind,
        true,
    ));
    out.push(("tmpfs".into(), format!("{root}/tmp"), Mount::Tmpfs, true));
    out.push(("proc".into(), format!("{root}/proc"), Mount::Proc, false));
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mount {
    Bind,
    Tmpfs,
    Proc,
}

/// Detaches the run's mounts (innermost first) and removes its empty mount point.
fn take_down(cfg: &ServerConfig, root: &str) {
    if !std::path::Path::new(root).is_dir() {
        return;
    }
    for (_, target, _, _) in mounts_of(cfg, root).iter().rev() {
        let _ = nix::mount::umount2(target.as_str(), MntFlags::MNT_DETACH);
    }
    if let Err(e) = std::fs::remove_dir(root) {
        log(&format!("could not remove {root}: {e}"));
    }
}

fn build_root(cfg: &ServerConfig, root: &str) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(root)
        .map_err(|e| format!("mkdir {root}: {e}"))?;
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for (src, dst, kind, writable) in mounts_of(cfg, root) {
        let done = match kind {
            // The skeleton root and the installation are read-only mounts of the container: a bind keeps
            // that.
            Mount::Bind => {
                let ro = if writable {
                    MsFlags::empty()
                } else {
                    MsFlags::MS_RDONLY
                };
                nix::mount::mount(
                    Some(src.as_str()),
                    dst.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | base | ro,
                    None::<&str>,
                )
            }
            // This gVisor's tmpfs takes no nr_inodes: only the size bounds it.
            Mount::Tmpfs => nix::mount::mount(
                Some("tmpfs"),
                dst.as_str(),
                Some("tmpfs"),
                base,
                Some(format!("size={},mode=1777", cfg.tmp_bytes).as_str()),
            ),
            // A /proc of the run's own PID namespace (this process is its PID 1).
            Mount::Proc => nix::mount::mount(
                Some("proc"),
                dst.as_str(),
                Some("proc"),
                base | MsFlags::MS_NOEXEC,
                None::<&str>,
            ),
        };
        done.map_err(|e| format!("mount {dst}: {e}"))?;
    }
    nix::unistd::chdir(root).map_err(|e| format!("chdir {root}: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))
}

/// (CapBnd, CapEff, CapPrm, CapInh) from the run's own /proc: one file read instead of a prctl per
/// capability (each system call is a round trip through the ptrace platform).
fn cap_sets() -> Result<[u64; 4], String> {
    let status =
        std::fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    let field = |name: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(":\t"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .ok_or_else(|| format!("no {name} in /proc/self/status"))
    };
    Ok([
        field("CapBnd")?,
        field("CapEff")?,
        field("CapPrm")?,
        field("CapInh")?,
    ])
}

/// Empties the bounding, ambient, effective, permitted and inheritable sets, and checks they are empty.
fn drop_caps() -> Result<(), String> {
    let [bounding, ..] = cap_sets()?;
    for cap in (0..64).filter(|c| bounding >> c & 1 == 1) {
        // SAFETY: PR_CAPBSET_DROP takes integers; no memory is passed to the kernel.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0 {
            return Err(format!("drop bounding cap {cap}: {}", nix::errno::Errno::last()));
        }
    }
    // gVisor has no ambient set (EINVAL): nothing to clear then.
    // SAFETY: PR_CAP_AMBIENT takes integers; no memory is passed to the kernel.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    let mut hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [0u32; 6];
    // SAFETY: capset reads a version-3 header and two (effective, permitted, inheritable) triples.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) } < 0 {
        return Err(format!("capset: {}", nix::errno::Errno::last()));
    }
    let left = cap_sets()?;
    if left.iter().any(|&s| s != 0) {
        return Err(format!(
            "capabilities still present after dropping them: {left:?}"
        ));
    }
    Ok(())
}

fn write_status(fd: BorrowedFd<'_>, word: &str, text: &str) {
    let line = format!("{word} {}\n", text.replace('\n', " "));
    let _ = write_all(fd.as_raw_fd(), line.as_bytes());
}

/// Lowers each limit to the run's, never raising. A limit already at its value is left alone: gVisor
/// answers EPERM for RLIMIT_MSGQUEUE (0, 0) -> (0, 0).
fn set_rlimits(limits: &[sluice_sandbox_jail::Rlimit]) -> Result<(), String> {
    for &limit in limits {
        let res = limit.0;
        let cur = nix::sys::resource::getrlimit(res_of(res)?).map_err(|e| format!("getrlimit {res}: {e}"))?;
        let (soft, hard) = apply::lowered(limit, cur.1);
        if (soft, hard) != cur {
            nix::sys::resource::setrlimit(res_of(res)?, soft, hard)
                .map_err(|e| format!("setrlimit {res}: {e}"))?;
        }
    }
    Ok(())
}

fn res_of(res: u32) -> Result<nix::sys::resource::Resource, String> {
    use nix::sys::resource::Resource;
    Ok(match res {
        libc::RLIMIT_CPU => Resource::RLIMIT_CPU,
        libc::RLIMIT_FSIZE => Resource::RLIMIT_FSIZE,
        libc::RLIMIT_DATA => Resource::RLIMIT_DATA,
        libc::RLIMIT_STACK => Resource::RLIMIT_STACK,
        libc::RLIMIT_CORE => Resource::RLIMIT_CORE,
        libc::RLIMIT_RSS => Resource::RLIMIT_RSS,
        libc::RLIMIT_NPROC => Resource::RLIMIT_NPROC,
        libc::RLIMIT_NOFILE => Resource::RLIMIT_NOFILE,
        libc::RLIMIT_MEMLOCK => Resource::RLIMIT_MEMLOCK,
        libc::RLIMIT_AS => Resource::RLIMIT_AS,
        libc::RLIMIT_MSGQUEUE => Resource::RLIMIT_MSGQUEUE,
        other => return Err(format!("unknown rlimit resource {other}")),
    })
}

/// PID 1 of a run's PID namespace, cloned ahead of its run: builds the run's root and drops every
/// privilege, prepares the runner, then waits for the run on `go`, lowers the rlimits to the run's and
/// runs the code. Failures go to `status` as the set-up failure of the run it is given.
#[allow(clippy::too_many_arguments)]
fn run_init(
    py: Python<'_>,
    cfg: &ServerConfig,
    runner: &Py<PyAny>,
    root: &str,
    go: OwnedFd,
    out: OwnedFd,
    err: OwnedFd,
    status: OwnedFd,
) -> ! {
    let fail = |why: String| -> ! {
        write_status(status.as_fd(), "error", &why);
        exit(70)
    };
    // No parent-death signal needed: should the server die, the container (whose init it is) dies, and
    // every run with it.
    let locked = (|| -> Result<(), String> {
        // SAFETY: an empty mask and the default disposition install no handler code.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        }
        let null = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("/dev/null: {e}"))?;
        // Nothing of the server's stays open: not its stdin and stdout, nor other runs' pipes.
        for (fd, target) in [(null.as_raw_fd(), 0), (out.as_raw_fd(), 1), (err.as_raw_fd(), 2)] {
            // SAFETY: dup2 onto the standard descriptors, which this process owns.
            if unsafe { libc::dup2(fd, target) } < 0 {
                return Err(format!("dup2: {}", nix::errno::Errno::last()));
            }
        }
        Ok(())
    })();
    if let Err(e) = locked {
        fail(e);
    }
    apply::close_all_but(&[go.as_raw_fd(), status.as_raw_fd()]);
    // Closed by close_all_but already (their numbers are not kept); forgotten so they are not closed again.
    std::mem::forget((out, err));
    let locked = (|| -> Result<(), String> {
        build_root(cfg, root)?;
        drop_caps()?;
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
        python::prepare_run(py, runner, &cfg.env).map_err(|e| format!("the runner's preparation: {e}"))?;
        nix::unistd::chdir("/workspace").map_err(|e| format!("chdir /workspace: {e}"))
    })();
    if let Err(e) = locked {
        fail(e);
    }
    // Locked down; still trusted code until the run's code starts.
    let mut payload = Vec::new();
    if std::io::Read::read_to_end(&mut std::fs::File::from(go), &mut payload).is_err() || payload.is_empty() {
        // The server let this PID 1 go without a run (the container is stopping).
        exit(0);
    }
    let Some((setup, code)) = wire::split_run(&payload) else {
        fail("a malformed run request".into())
    };
    if let Err(e) = set_rlimits(&setup.rlimits) {
        fail(e);
    }
    // Read-only files the daemon names (matplotlib's prebuilt font cache), linked into the fresh /tmp.
    apply::link_into_tmp(&setup.links);
    write_status(status.as_fd(), "ok", "");
    drop(status);
    // No report channel: the run holds nothing but its standard streams.
    python::run_code(py, runner, code, -1)
}
