//! On the host's kernel: a session's own user and mount namespaces (native and runsc backends), and a
//! native jail from the session's launcher, entered into its cgroup before its set-up ends.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::BufReader;
use tokio::sync::watch;

use crate::cgroup::RunCgroup;
use crate::error::OpError;
use crate::pidfd::{PidFd, RunHandle};
use crate::workspace::Workspace;
use crate::zygote::{recv_queued_fd, send_with_fds, seqpacket_pair};

use super::*;

impl Engine {
    pub(super) async fn open_session_ns(
        self: &Arc<Self>,
        workspace_bytes: u64,
    ) -> Result<SessionNs, OpError> {
        let z = self.zygote().await?;
        let (status_r, status_w) = pipe_pair()?;
        let (hold_r, hold_w) = pipe_pair()?;
        let inodes = (workspace_bytes / 4096).clamp(1024, 1 << 20);
        let mut fds = vec![status_w.as_raw_fd(), hold_r.as_raw_fd()];
        // Native jails come from the session's own launcher; gVisor containers from the zygote.
        let launcher = match self.mode() {
            Mode::Native => {
                let (ours, theirs) = seqpacket_pair()?;
                fds.push(theirs.as_raw_fd());
                Some((ours, theirs))
            }
            Mode::Runsc | Mode::InsideGvisor => None,
        };
        let req = sluice_sandbox_jail::Request::OpenSession {
            workspace_bytes,
            workspace_inodes: inodes,
            launcher: launcher.is_some(),
        };
        let sent = z.send(&req, &fds);
        if let Err(e) = sent {
            return Err(self.worker_stopped(&z, "creating the session").unwrap_or(e));
        }
        drop((status_w, hold_r));
        let launcher = launcher.map(|(ours, _theirs)| ours);
        let mut status = BufReader::new(receiver(status_r)?);
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let pid = match read_status_by(&mut status, deadline).await? {
            Some(sluice_sandbox_jail::Status::SessionReady { pid }) => pid as u32,
            Some(sluice_sandbox_jail::Status::Error { message, .. }) => {
                return Err(unavailable(format!(
                    "cannot create the session's namespaces: {message}"
                )));
            }
            Some(other) => return Err(OpError::internal(format!("unexpected status {other:?}"))),
            None => {
                return Err(self
                    .worker_stopped(&z, "creating the session")
                    .unwrap_or_else(|| unavailable("cannot create the session's namespaces")));
            }
        };
        let open = |p: PathBuf, flags: i32| {
            OpenOptions::new()
                .read(true)
                .custom_flags(flags | libc::O_CLOEXEC)
                .open(&p)
                .map(OwnedFd::from)
                .map_err(|e| OpError::internal(format!("{}: {e}", p.display())))
        };
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let userns = open(proc.join("ns/user"), 0)?;
        let mntns = open(proc.join("ns/mnt"), 0)?;
        let ws_in_ns = self.cfg.root.join("ws");
        let ws = open(
            proc.join("root")
                .join(ws_in_ns.strip_prefix("/").unwrap_or(&ws_in_ns)),
            libc::O_PATH | libc::O_DIRECTORY,
        )?;
        // The session child exits once we hold its namespaces.
        drop(hold_w);
        Ok(SessionNs {
            userns: Some(userns),
            mntns: Some(mntns),
            workspace: Workspace::new(ws),
            inside: None,
            workspace_bytes,
            warm: tokio::sync::Mutex::new(None),
            preparing: AtomicBool::new(false),
            closed: watch::channel(false).0,
            cancels: watch::channel(0).0,
            launcher: Mutex::new(launcher),
            gvisor: tokio::sync::Mutex::new(None),
        })
    }

    /// Into the run's cgroup while PID 1 still builds its jail: user code, and anything it forks, only
    /// ever runs inside the group. Kills the jail when that fails.
    async fn enter_cgroup(&self, pf: &PidFd) -> Result<Option<RunCgroup>, OpError> {
        let Ok(cgroups) = &self.cfg.cgroups else {
            return Ok(None);
        };
        // The default run's memory limit, so that most runs need no second write. On a thread of its
        // own: moving a process between cgroups may wait for an RCU grace period (≈ 10 ms after a quiet
        // spell), which must not stall a runtime worker.
        let (cgroups, pid) = (cgroups.clone(), pf.pid());
        let memory = self.cfg.limits.for_run(None, None).memory_mb << 20;
        let max_pids = self.cfg.limits.max_processes;
        let group = tokio::task::spawn_blocking(move || {
            let g = cgroups.create_run(memory, max_pids)?;
            g.enter(pid)?;
            Ok::<_, std::io::Error>(g)
        })
        .await
        .map_err(|e| OpError::internal(format!("cgroup task: {e}")))
        .and_then(|r| r.map_err(|e| unavailable(format!("sandbox set-up failed: cgroup: {e}"))));
        match group {
            Ok(g) => Ok(Some(g)),
            Err(e) => {
                let _ = pf.kill();
                Err(e)
            }
        }
    }

    /// A native jail from the session's launcher: a typed [`sluice_sandbox_jail::Prepare`], then typed
    /// status events until the jail's pidfd has arrived (and PID 1 is in its cgroup) and it is `Ready`.
    pub(super) async fn prepare_native(
        self: &Arc<Self>,
        s: &SessionNs,
        probe: bool,
    ) -> Result<Jail, OpError> {
        use sluice_sandbox_jail::{Prepare, Protection, Status};
        let (status_r, status_w) = pipe_pair()?;
        let (go, go_theirs) = seqpacket_pair()?;
        let skip = self.skip.lock().map(|s| s.clone()).unwrap_or_default();
        let prepare = Prepare {
            probe,
            // Degraded mode's names come from the protocol's protection list, which uses these names.
            skip: skip.iter().filter_map(|n| Protection::from_name(n)).collect(),
            unshare_flags: RUN_NAMESPACES,
        };
        let body =
            sluice_sandbox_jail::codec::encode(&prepare).map_err(|e| OpError::internal(e.to_string()))?;
        {
            let launcher = s
                .launcher
                .lock()
                .map_err(|_| OpError::internal("launcher lock poisoned"))?;
            let Some(launcher) = launcher.as_ref() else {
                return Err(unavailable("the sandbox session is closed"));
            };
            send_with_fds(launcher, &body, &[status_w.as_raw_fd(), go_theirs.as_raw_fd()])?;
        }
        drop((status_w, go_theirs));
        let mut status = BufReader::new(receiver(status_r)?);
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let (mut pidfd, mut ready, mut report, mut cgroup) = (None, false, None, None);
        while !(ready && pidfd.is_some()) {
            match read_status_by(&mut status, deadline).await? {
                None => return Err(unavailable("the sandbox worker exited while preparing a jail")),
                Some(Status::Child) => {
                    // The launcher queued a pidfd on the jail's PID 1 before it said `Child` (the pid it
                    // knows is in the session's PID namespace, meaningless here).
                    let fd = recv_queued_fd(&go)?;
                    let pf = PidFd::adopt(fd).map_err(|e| OpError::internal(format!("jail pidfd: {e}")))?;
                    cgroup = self.enter_cgroup(&pf).await?;
                    pidfd = Some(pf);
                }
                Some(Status::Probe(steps)) => report = Some(crate::host::JailSteps::Typed(steps)),
                Some(Status::Ready) => ready = true,
                Some(Status::Error { message, .. }) => {
                    return Err(unavailable(format!("sandbox set-up failed: {message}")));
                }
                Some(other) => return Err(OpError::internal(format!("unexpected status {other:?}"))),
            }
        }
        let pidfd = pidfd.ok_or_else(|| OpError::internal("no jail pid"))?;
        Ok(Jail {
            go: Some(go),
            status,
            pidfd: RunHandle::Fd(pidfd),
            probe: report,
            cgroup,
        })
    }
}
