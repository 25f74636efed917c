//! The pre-forked zygote: starting it, handing it the policy, and asking it for forks.
//!
//! The zygote is `sluice-sandbox-zygote` (Rust, embedding CPython), for every backend: it gets a typed
//! `sluice_sandbox_jail::ZygoteConfig` and answers with a typed `Hello`; every request is a typed
//! `sluice_sandbox_jail::Request`, every message `postcard`-encoded. It starts with an empty environment
//! (thread counts pinned to one) and a `SOCK_SEQPACKET` control socket as stdin; each request carries the
//! descriptors the forked child needs.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, sendmsg,
    socketpair,
};

use crate::error::OpError;

/// The zygote's file name, looked for next to the daemon's executable.
pub const ZYGOTE_BIN: &str = "sluice-sandbox-zygote";

/// Environment of the zygote itself: nothing from the daemon's, and one thread for numeric libraries
/// imported at preload (a forking process must not have threads).
const ZYGOTE_ENV: &[(&str, &str)] = &[
    ("LANG", "C.UTF-8"),
    ("PATH", "/usr/bin:/bin"),
    ("OPENBLAS_NUM_THREADS", "1"),
    ("OMP_NUM_THREADS", "1"),
    ("MKL_NUM_THREADS", "1"),
    ("NUMEXPR_NUM_THREADS", "1"),
    ("VECLIB_MAXIMUM_THREADS", "1"),
    ("POLARS_MAX_THREADS", "1"),
    ("ARROW_IO_THREADS", "1"),
    // pyarrow's bundled jemalloc starts a background purging thread at import (measured with pandas 3.1
    // and pyarrow 26); without it the allocator purges inline.
    ("JE_ARROW_MALLOC_CONF", "background_thread:false"),
    // Resolve every symbol when a library is loaded (in the zygote, once) instead of on first call: a lazy
    // resolution writes the library's GOT, so each forked child would copy those pages again.
    ("LD_BIND_NOW", "1"),
];

/// A running zygote.
pub struct Zygote {
    ctl: Mutex<OwnedFd>,
    child: Mutex<Child>,
    pub python_version: String,
    /// Preload modules that failed to import (the zygote reports them and serves without them).
    pub preload_failed: Vec<sluice_sandbox_jail::PreloadFailure>,
}

/// Creates a `SOCK_SEQPACKET` pair with close-on-exec set on both ends.
pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), OpError> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| OpError::internal(format!("socketpair: {e}")))
}

/// Sends one message with descriptors on a seqpacket socket.
pub fn send_with_fds(sock: &impl AsFd, json: &[u8], fds: &[RawFd]) -> Result<(), OpError> {
    let iov = [IoSlice::new(json)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &iov,
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| {
        OpError::new(
            sluice_sandbox_protocol::ErrorKind::Unavailable,
            format!("sandbox worker unreachable: {e}"),
        )
    })?;
    Ok(())
}

/// Takes one descriptor that is already queued on a seqpacket socket (without waiting for one): the
/// message must carry exactly one descriptor, which arrives close-on-exec.
#[allow(unsafe_code)]
pub fn recv_queued_fd(sock: &impl AsFd) -> Result<OwnedFd, OpError> {
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| OpError::internal(format!("no descriptor from the sandbox worker: {e}")))?;
    let mut fds = Vec::new();
    for cmsg in msg
        .cmsgs()
        .map_err(|e| OpError::internal(format!("control message: {e}")))?
    {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel installed these descriptors in this process for this message; nothing
            // else owns them, so each is wrapped exactly once (and closed if it is not the one expected).
            fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    match (fds.pop(), fds.is_empty()) {
        (Some(fd), true) => Ok(fd),
        _ => Err(OpError::internal(
            "the sandbox worker sent a message without exactly one descriptor",
        )),
    }
}

impl Zygote {
    /// Starts the zygote from `exe` (through its descriptor, opened before the daemon dropped its
    /// privileges, so that a binary in a directory the daemon's uid cannot reach still starts; or, with
    /// `by_path`, through its path), sends it the typed
    /// configuration and waits until it has preloaded its modules. `tag` (the daemon's root directory) is
    /// passed as `argv[1]`: every process forked from the zygote keeps it in its command line, which is how
    /// an operator (and the tests) find a daemon's sandbox processes in the process table.
    pub fn start(
        exe: &ZygoteExe,
        by_path: bool,
        tag: &Path,
        config: &sluice_sandbox_jail::ZygoteConfig,
        ready_timeout: Duration,
    ) -> Result<Zygote, OpError> {
        use std::os::unix::process::CommandExt;
        let unavailable = |m: String| OpError::new(sluice_sandbox_protocol::ErrorKind::Unavailable, m);
        let (ours, theirs) = seqpacket_pair()?;
        let mut cmd = if by_path {
            Command::new(&exe.path)
        } else {
            Command::new(format!("/proc/self/fd/{}", exe.fd.as_raw_fd()))
        };
        cmd.arg0(ZYGOTE_BIN).arg(tag).env_clear().current_dir("/");
        for (k, v) in ZYGOTE_ENV {
            cmd.env(k, v);
        }
        let spawned = cmd
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        // The command holds our copy of the zygote's end: dropped, a zygote that dies during start-up
        // hangs the socket up at once instead of leaving the wait below to time out.
        drop(cmd);
        let mut child = spawned.map_err(|e| unavailable(format!("cannot start {ZYGOTE_BIN}: {e}")))?;
        let body =
            sluice_sandbox_jail::codec::encode(config).map_err(|e| OpError::internal(e.to_string()))?;
        send_with_fds(&ours, &body, &[])?;
        let mut fds = [PollFd::new(ours.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(ready_timeout).unwrap_or(PollTimeout::MAX);
        let n = poll(&mut fds, timeout).map_err(|e| OpError::internal(format!("poll: {e}")))?;
        if n == 0 {
            return Err(unavailable(format!(
                "{ZYGOTE_BIN} not ready after {ready_timeout:?}"
            )));
        }
        let body = match sluice_sandbox_jail::fdpass::recv(ours.as_fd(), 1 << 20, 0) {
            Ok((body, _)) if !body.is_empty() => body,
            // It hung up (an empty read), or reset the connection (it exited with our configuration
            // unread): it has exited, or is about to.
            received => {
                let deadline = Instant::now() + Duration::from_secs(1);
                let status = loop {
                    match child.try_wait() {
                        Ok(Some(status)) => break Some(status),
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        Ok(None) | Err(_) => break None,
                    }
                };
                let how = match (status, received) {
                    (Some(status), _) => format!("exited ({status})"),
                    (None, Err(e)) => format!("stopped answering ({e})"),
                    (None, Ok(_)) => "hung up".to_string(),
                };
                return Err(unavailable(format!(
                    "{ZYGOTE_BIN} ({}) {how} during start-up (see the daemon's stderr for its message)",
                    exe.path.display()
                )));
            }
        };
        match sluice_sandbox_jail::codec::decode(&body) {
            Ok(sluice_sandbox_jail::Hello::Ready {
                python_version,
                preload,
                ..
            }) => Ok(Zygote {
                ctl: Mutex::new(ours),
                child: Mutex::new(child),
                python_version,
                preload_failed: preload.failed,
            }),
            Ok(sluice_sandbox_jail::Hello::Refused { reason }) => Err(unavailable(reason)),
            Err(e) => Err(unavailable(format!("{ZYGOTE_BIN} said: {e}"))),
        }
    }

    /// Asks for a fork. The descriptors are duplicated into the zygote by the kernel; the caller keeps
    /// (and should close) its own copies.
    pub fn send(&self, req: &sluice_sandbox_jail::Request, fds: &[RawFd]) -> Result<(), OpError> {
        let body = sluice_sandbox_jail::codec::encode(req).map_err(|e| OpError::internal(e.to_string()))?;
        let ctl = self
            .ctl
            .lock()
            .map_err(|_| OpError::internal("zygote lock poisoned"))?;
        send_with_fds(&*ctl, &body, fds)
    }

    /// How the zygote ended, once it has.
    pub fn exit_status(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().ok()?.try_wait().ok().flatten()
    }

    /// True while the zygote process runs.
    pub fn alive(&self) -> bool {
        match self.child.lock() {
            Ok(mut c) => matches!(c.try_wait(), Ok(None)),
            Err(_) => false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().map(|c| c.id()).unwrap_or(0)
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Where the interpreter lives and what it needs in the jail, as the interpreter itself reports it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct PythonFacts {
    pub version: String,
    pub executable: PathBuf,
    pub real_executable: PathBuf,
    pub prefixes: Vec<PathBuf>,
}

/// Asks the interpreter for its prefixes (a venv has its own plus its base installation's).
pub fn python_facts(python: &Path) -> Result<PythonFacts, OpError> {
    const PROBE: &str = "import json, os, sys; print(json.dumps({'version': sys.version.split()[0], \
        'executable': sys.executable, 'real_executable': os.path.realpath(sys.executable), \
        'prefixes': sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, \
        sys.base_exec_prefix)})}))";
    let out = Command::new(python)
        .args(["-I", "-c", PROBE])
        .env_clear()
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            OpError::new(
                sluice_sandbox_protocol::ErrorKind::Unavailable,
                format!("cannot run {}: {e}", python.display()),
            )
        })?;
    if !out.status.success() {
        return Err(OpError::new(
            sluice_sandbox_protocol::ErrorKind::Unavailable,
            format!(
                "{} failed: {}",
                python.display(),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| OpError::internal(format!("python facts: {e}")))
}

/// The zygote's executable: a descriptor opened ahead, and the path it was opened at.
#[derive(Debug)]
pub struct ZygoteExe {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

/// Opens the zygote's executable: `explicit` (`--zygote-bin`), or `sluice-sandbox-zygote` next to
/// this executable. Opened (not just found) while the daemon may still be root: it is started later, after
/// the switch to the unprivileged uid, through `/proc/self/fd`.
pub fn open_zygote_bin(explicit: Option<&Path>) -> Result<ZygoteExe, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this executable's directory: {e}"))?
            .with_file_name(ZYGOTE_BIN),
    };
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map(|f| ZygoteExe {
            fd: OwnedFd::from(f),
            path: path.clone(),
        })
        .map_err(|e| {
            format!(
                "the sandbox's zygote {} cannot be opened: {e} (build it with `cargo build -p {ZYGOTE_BIN}`, \
                 or name it with --zygote-bin)",
                path.display()
            )
        })
}
