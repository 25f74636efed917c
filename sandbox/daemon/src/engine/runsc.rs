//! The gVisor backend on the host: the OCI bundle written once, one container per session started
//! through the zygote, and runs forked inside it by the session server.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice_sandbox_protocol::{ErrorKind, ExitStatus};
use tokio::io::BufReader;
use tokio::net::unix::pipe;

use crate::error::OpError;
use crate::gvisor;
use crate::gvisor::session::Container;
use crate::gvisor::wire::{Ended, Event, RunSetup};
use crate::pidfd::PidFd;
use crate::policy;
use crate::zygote::PythonFacts;

use super::*;

/// Namespaces of the process tree that runs `runsc` (gVisor then makes its own inside). A cgroup
/// namespace is left out: runsc reads its cgroup even with `--ignore-cgroups`.
pub const GVISOR_NAMESPACES: u64 =
    (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS)
        as u64;

/// Starting python and importing the preloads under gVisor's ptrace platform is slow (pandas: seconds).
const GVISOR_SETUP_TIMEOUT: Duration = Duration::from_secs(90);

impl Engine {
    /// Writes the gVisor bundle (skeleton root and `config.json`) under `<root>/gvisor`; returns what
    /// the zygote needs to start `runsc` on it.
    pub(super) fn write_bundle(
        cfg: &EngineConfig,
        facts: &PythonFacts,
        plan: &policy::RootPlan,
        runsc: &Path,
        env: &[(String, String)],
    ) -> Result<sluice_sandbox_jail::RunscConfig, OpError> {
        let io = |what: &Path, e: std::io::Error| OpError::internal(format!("{}: {e}", what.display()));
        let dir = cfg.root.join("gvisor");
        let (rootfs, state, bundle) = (dir.join("rootfs"), dir.join("state"), dir.join("bundle"));
        for d in [&state, &bundle] {
            std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
        }
        gvisor::write_skeleton(&rootfs, plan).map_err(|e| io(&rootfs, e))?;
        let server = gvisor::wire::ServerConfig::new(
            plan,
            env,
            (&facts.executable.display().to_string(), &facts.version),
            &cfg.preload,
        );
        let args = gvisor::server_args(&server)?;
        // The session server lives as long as the session: no CPU-time limit of its own (each run sets
        // its own, which only ever lowers).
        let rlimits: Vec<policy::Rlimit> = cfg
            .limits
            .max_rlimits()
            .into_iter()
            .filter(|(res, _, _)| *res != libc::RLIMIT_CPU)
            .collect();
        let mut config = gvisor::oci_config(
            gvisor::TEMPLATE,
            &gvisor::BundleSpec {
                plan,
                rootfs: &rootfs,
                workspace: &cfg.root.join("ws"),
                args,
                env,
                rlimits: &rlimits,
            },
        )?;
        // The binary is bound from a copy beside the bundle: runsc's gofer opens a bind's source by path as
        // the daemon's (unprivileged) uid, which may not reach the binary's own directory; the daemon
        // still holds the descriptor it opened while root.
        let zygote = cfg.zygote.as_ref().map_err(|e| unavailable(e.clone()))?;
        let server_dir = dir.join("server");
        let server_bin = server_dir.join("sluice-sandbox-zygote");
        let partial = dir.join("sluice-sandbox-zygote.partial");
        std::fs::create_dir_all(&server_dir)
            .and_then(|()| std::fs::copy(format!("/proc/self/fd/{}", zygote.fd.as_raw_fd()), &partial))
            .and_then(|_| std::fs::rename(&partial, &server_bin))
            .map_err(|e| io(&server_bin, e))?;
        gvisor::bind_server(&mut config, &server_dir)?;
        let path = bundle.join("config.json");
        let text = serde_json::to_vec_pretty(&config).map_err(|e| OpError::internal(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        Ok(sluice_sandbox_jail::RunscConfig {
            runsc: runsc.display().to_string(),
            state: state.display().to_string(),
            argv: gvisor::runsc_argv(runsc, &state, &bundle),
        })
    }

    /// Reads status events until the intermediate child reports `runsc run`'s pid, and opens a pidfd on it.
    async fn runsc_pid(status: &mut BufReader<pipe::Receiver>, deadline: Instant) -> Result<PidFd, OpError> {
        use sluice_sandbox_jail::Status;
        match read_status_by(status, deadline).await? {
            // runsc is not reaped before its parent has reported how it ended, so this pid is still its.
            Some(Status::Forked { pid }) => {
                PidFd::open(pid).map_err(|e| OpError::internal(format!("pidfd_open: {e}")))
            }
            Some(Status::Error { message, .. }) => {
                Err(unavailable(format!("sandbox set-up failed: {message}")))
            }
            Some(other) => Err(OpError::internal(format!("unexpected status {other:?}"))),
            None => Err(unavailable("the sandbox worker exited while preparing a jail")),
        }
    }

    /// The session's gVisor container, starting one if there is none (or the last one stopped).
    pub async fn gvisor_container(self: &Arc<Self>, s: &SessionNs) -> Result<Arc<Container>, OpError> {
        let mut slot = s.gvisor.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_stopped()) {
            return Ok(c.clone());
        }
        if s.is_closed() {
            return Err(unavailable("the sandbox session is closed"));
        }
        let c = self.start_gvisor(s).await?;
        if s.is_closed() {
            c.stop();
            return Err(unavailable("the sandbox session is closed"));
        }
        tracing::debug!(runsc = c.pid(), python = %c.python, "the session's gVisor sandbox is up");
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Starts a gVisor container for the session and waits until its session server is ready.
    async fn start_gvisor(self: &Arc<Self>, s: &SessionNs) -> Result<Arc<Container>, OpError> {
        let z = self.zygote().await?;
        let (status_r, status_w) = pipe_pair()?;
        let (stdin_r, stdin_w) = pipe_pair()?;
        let (out_r, out_w) = pipe_pair()?;
        let (err_r, err_w) = pipe_pair()?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (Some(userns), Some(mntns)) = (&s.userns, &s.mntns) else {
            return Err(OpError::internal("a runsc session without namespaces"));
        };
        let (userns, mntns) = (userns.as_raw_fd(), mntns.as_raw_fd());
        let req = sluice_sandbox_jail::Request::StartGvisor {
            unshare_flags: GVISOR_NAMESPACES,
            seq,
        };
        let fds = [
            userns,
            mntns,
            status_w.as_raw_fd(),
            stdin_r.as_raw_fd(),
            out_w.as_raw_fd(),
            err_w.as_raw_fd(),
        ];
        if let Err(e) = z.send(&req, &fds) {
            return Err(self
                .worker_stopped(&z, "starting the session's gVisor sandbox")
                .unwrap_or(e));
        }
        drop((status_w, stdin_r, out_w, err_w));
        let mut status = BufReader::new(receiver(status_r)?);
        let deadline = Instant::now() + GVISOR_SETUP_TIMEOUT;
        let runsc = Self::runsc_pid(&mut status, deadline).await?;
        let stdin =
            pipe::Sender::from_owned_fd(stdin_w).map_err(|e| OpError::internal(format!("pipe: {e}")))?;
        Container::serve(
            gvisor::session::Started {
                runsc,
                stdin,
                stdout: receiver(out_r)?,
                stderr: receiver(err_r)?,
                status,
            },
            deadline.saturating_duration_since(Instant::now()),
            self.cfg.gvisor_idle,
        )
        .await
    }

    /// A run forked inside the session's gVisor container by its session server. A container that stops
    /// during the run fails it (the next run starts a fresh one); a run that does not end within
    /// [`KILL_GRACE`] of its kill costs the container.
    pub(super) async fn run_gvisor(
        self: &Arc<Self>,
        s: &Arc<SessionNs>,
        code: &str,
        rlimits: &[policy::Rlimit],
        timeout_ms: u64,
    ) -> Result<Ran, OpError> {
        let container = self.gvisor_container(s).await?;
        let setup = RunSetup {
            rlimits: rlimits.to_vec(),
            links: self.tmp_links.clone(),
        };
        let start = Instant::now();
        let mut run = container.start_run(setup, code)?;
        let cap = self.cfg.limits.output_bytes as usize;
        let (mut out, mut err) = (Capture::new(cap), Capture::new(cap));
        let (mut timed_out, mut killed) = (false, false);
        let mut closed = s.closed.subscribe();
        let mut cancels = s.cancels.subscribe();
        cancels.borrow_and_update();
        let mut deadline = tokio::time::Instant::from_std(start + Duration::from_millis(timeout_ms));
        let ended = loop {
            tokio::select! {
                e = run.next() => match e {
                    Some(Event::Started { .. } | Event::Ready { .. }) => {}
                    Some(Event::Stdout { bytes, .. }) => out.push(&bytes),
                    Some(Event::Stderr { bytes, .. }) => err.push(&bytes),
                    Some(Event::Exit { ended, .. }) => break Some(ended),
                    Some(Event::Failed { message, .. }) => {
                        return Err(unavailable(format!("sandbox set-up failed: {message}")));
                    }
                    None => {
                        let why = container.stopped_because().await;
                        return Err(unavailable(format!(
                            "the session's gVisor sandbox stopped ({why}); run the code again"
                        )));
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if killed {
                        // The server did not answer the kill: the container goes, the next run gets a new one.
                        tracing::warn!(runsc = container.pid(), "a run did not end after its kill; stopping the session's gVisor sandbox");
                        container.stop();
                        break None;
                    }
                    timed_out = true;
                    killed = true;
                    run.kill();
                    deadline = tokio::time::Instant::now() + KILL_GRACE;
                },
                _ = closed.changed() => {
                    run.kill();
                    return Err(OpError::new(ErrorKind::Cancelled, "the session was closed during the run"));
                },
                Ok(()) = cancels.changed() => {
                    run.kill();
                    return Err(OpError::new(ErrorKind::Cancelled, "the run was cancelled by its caller"));
                },
            }
        };
        let exit = match ended {
            Some(Ended::Code(c)) => ExitStatus {
                code: Some(c),
                signal: None,
            },
            Some(Ended::Signal(sig)) => ExitStatus {
                code: None,
                signal: Some(sig),
            },
            None => ExitStatus {
                code: None,
                signal: Some(libc::SIGKILL),
            },
        };
        Ok(Ran {
            exit,
            out,
            err,
            memory: false,
            timed_out,
            duration_ms: start.elapsed().as_secs_f64() * 1000.0,
        })
    }
}
