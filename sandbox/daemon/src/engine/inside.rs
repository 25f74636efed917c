//! Inside a gVisor container: a session is a tmpfs owned by a uid of its own, and a run's PID 1 comes
//! from a trusted intermediate child of the zygote.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::BufReader;
use tokio::sync::watch;

use crate::error::OpError;
use crate::pidfd::RunHandle;
use crate::policy;
use crate::workspace::Workspace;
use crate::zygote::seqpacket_pair;

use super::*;

/// A session's own uid and its workspace tmpfs, when the daemon runs inside gVisor.
pub(super) struct InsideSession {
    uid: policy::UidLease,
    dir: PathBuf,
}

impl Drop for InsideSession {
    fn drop(&mut self) {
        // Every run of the session is gone by now (their handles were dropped first); a lazy unmount
        // frees the tmpfs once the last descriptor on it closes.
        if let Err(e) = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(dir = %self.dir.display(), "unmounting a session's workspace: {e}");
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), uid = self.uid.uid(), "removing a session's workspace: {e}");
        }
    }
}

impl Engine {
    /// Inside gVisor: a session is a size-limited tmpfs, mode 0700, owned by a uid no other open
    /// session has, mounted by the daemon (root of gVisor's kernel) under `<root>/ws`.
    pub(super) fn open_session_inside(&self, workspace_bytes: u64) -> Result<SessionNs, OpError> {
        let uid = self
            .uids
            .lease()
            .ok_or_else(|| unavailable("no free session uid (too many open sessions)"))?;
        let id = uid.uid();
        let dir = self.cfg.root.join("ws").join(format!("u{id}"));
        // A directory left by a daemon that was killed is reused (it is empty once its mount is gone).
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(OpError::internal(format!("{}: {e}", dir.display()))),
        }
        let opts = policy::inside_workspace_options(workspace_bytes, id);
        nix::mount::mount(
            Some("tmpfs"),
            &dir,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(opts.as_str()),
        )
        .map_err(|e| unavailable(format!("cannot mount the session's workspace tmpfs: {e}")))?;
        let inside = InsideSession { uid, dir };
        let ws = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&inside.dir)
            .map(OwnedFd::from)
            .map_err(|e| OpError::internal(format!("{}: {e}", inside.dir.display())))?;
        Ok(SessionNs {
            userns: None,
            mntns: None,
            workspace: Workspace::with_owner(ws, id, id),
            inside: Some(inside),
            workspace_bytes,
            warm: tokio::sync::Mutex::new(None),
            preparing: AtomicBool::new(false),
            closed: watch::channel(false).0,
            cancels: watch::channel(0).0,
            launcher: Mutex::new(None),
            gvisor: tokio::sync::Mutex::new(None),
        })
    }

    /// Inside gVisor: the zygote forks a trusted intermediate child, which forks the run's PID 1 into a
    /// fresh PID namespace and reports its pid; PID 1 builds its root, drops to the session's uid and
    /// waits for its code on `go`, as a native jail does.
    pub(super) async fn prepare_inside(
        self: &Arc<Self>,
        s: &SessionNs,
        probe: bool,
    ) -> Result<Jail, OpError> {
        use sluice_sandbox_jail::{Prepare, Protection, Request, Status};
        let Some(inside) = &s.inside else {
            return Err(OpError::internal("not a session of a daemon inside gVisor"));
        };
        let z = self.zygote().await?;
        let (status_r, status_w) = pipe_pair()?;
        let (go, go_theirs) = seqpacket_pair()?;
        let (hold_r, hold_w) = pipe_pair()?;
        let skip = self.skip.lock().map(|s| s.clone()).unwrap_or_default();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let uid = inside.uid.uid();
        let req = Request::InsideJail {
            seq,
            prepare: Prepare {
                probe,
                skip: skip.iter().filter_map(|n| Protection::from_name(n)).collect(),
                unshare_flags: RUN_NAMESPACES,
            },
            uid,
            gid: uid,
            workspace: inside.dir.display().to_string(),
        };
        if let Err(e) = z.send(
            &req,
            &[status_w.as_raw_fd(), go_theirs.as_raw_fd(), hold_r.as_raw_fd()],
        ) {
            return Err(self.worker_stopped(&z, "preparing a jail").unwrap_or(e));
        }
        drop((status_w, go_theirs, hold_r));
        let mut status = BufReader::new(receiver(status_r)?);
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let (mut handle, mut ready, mut report) = (None, false, None);
        let mut hold = Some(hold_w);
        while !(ready && handle.is_some()) {
            match read_status_by(&mut status, deadline).await? {
                None => return Err(unavailable("the sandbox worker exited while preparing a jail")),
                Some(Status::Forked { pid }) => {
                    let hold = hold.take().ok_or_else(|| OpError::internal("two jail pids"))?;
                    handle = Some(RunHandle::Held { pid, hold });
                }
                Some(Status::Probe(steps)) => report = Some(crate::host::JailSteps::Typed(steps)),
                Some(Status::Ready) => ready = true,
                Some(Status::Error { message, .. }) => {
                    if let Some(h) = &handle {
                        let _ = h.kill();
                    }
                    return Err(unavailable(format!("sandbox set-up failed: {message}")));
                }
                Some(other) => return Err(OpError::internal(format!("unexpected status {other:?}"))),
            }
        }
        let pidfd = handle.ok_or_else(|| OpError::internal("no jail pid"))?;
        Ok(Jail {
            go: Some(go),
            status,
            pidfd,
            probe: report,
            cgroup: None,
        })
    }
}
