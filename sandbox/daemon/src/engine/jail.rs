//! A run in a prepared jail (native, and inside a gVisor container): the code handed over, its output,
//! report and exit read until it ends, is killed at its deadline, or is cancelled.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::memfd::{MFdFlags, memfd_create};
use sluice_sandbox_protocol::{ErrorKind, ExitStatus};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::unix::pipe;

use crate::cgroup::RunCgroup;
use crate::error::OpError;
use crate::policy;
use crate::zygote::send_with_fds;

use super::output::exit_status;
use super::*;

impl Engine {
    /// Gives a prepared jail its run; returns the output pipes and the report pipe to read, or `None`
    /// when the jail died while it waited.
    fn hand_over(
        &self,
        jail: &mut Jail,
        code: &str,
        rlimits: &[policy::Rlimit],
        memory_bytes: u64,
    ) -> Result<Option<(pipe::Receiver, pipe::Receiver, pipe::Receiver)>, OpError> {
        if let Some(group) = &jail.cgroup {
            group
                .set_memory(memory_bytes)
                .map_err(|e| OpError::internal(format!("cgroup memory limit: {e}")))?;
        }
        let header = sluice_sandbox_jail::codec::encode(&sluice_sandbox_jail::RunHeader {
            rlimits: rlimits.to_vec(),
            tmp_links: self.tmp_links.clone(),
        })
        .map_err(|e| OpError::internal(e.to_string()))?;
        match jail.go.take() {
            None => Ok(None),
            Some(go) => {
                let code_fd = memfd_create("sluice-code", MFdFlags::MFD_CLOEXEC)
                    .map_err(|e| OpError::internal(format!("memfd: {e}")))?;
                std::fs::File::from(
                    code_fd
                        .try_clone()
                        .map_err(|e| OpError::internal(e.to_string()))?,
                )
                .write_all_at(code.as_bytes(), 0)
                .map_err(|e| OpError::internal(format!("memfd write: {e}")))?;
                let (out_r, out_w) = pipe_pair()?;
                let (err_r, err_w) = pipe_pair()?;
                let (rep_r, rep_w) = pipe_pair()?;
                let fds = [
                    code_fd.as_raw_fd(),
                    out_w.as_raw_fd(),
                    err_w.as_raw_fd(),
                    rep_w.as_raw_fd(),
                ];
                if send_with_fds(&go, &header, &fds).is_err() {
                    return Ok(None);
                }
                Ok(Some((receiver(out_r)?, receiver(err_r)?, receiver(rep_r)?)))
            }
        }
    }

    /// A run in a prepared jail (native, and inside a gVisor container): the session's warm jail, or a
    /// fresh one when it died; the next one is prepared while this one runs.
    pub(super) async fn run_jail(
        self: &Arc<Self>,
        s: &Arc<SessionNs>,
        code: &str,
        rlimits: &[policy::Rlimit],
        limits: policy::RunLimits,
    ) -> Result<Ran, OpError> {
        let warm = s.warm.lock().await.take();
        // A warm jail may have died since it was prepared (session closing, host trouble): then build one.
        let mut handed = None;
        if let Some(mut j) = warm {
            handed = self
                .hand_over(&mut j, code, rlimits, limits.memory_mb << 20)?
                .map(|pipes| (j, pipes));
        }
        let (mut jail, (out_r, err_r, rep)) = match handed {
            Some(h) => h,
            None => {
                let mut j = self.prepare(s, false).await?;
                let pipes = self
                    .hand_over(&mut j, code, rlimits, limits.memory_mb << 20)?
                    .ok_or_else(|| unavailable("a freshly prepared sandbox died before its run"))?;
                (j, pipes)
            }
        };
        let start = Instant::now();
        self.prepare_next(s);

        let cap = self.cfg.limits.output_bytes as usize;
        let (mut out, mut err) = (Capture::new(cap), Capture::new(cap));
        let (mut out_r, mut err_r) = (out_r, err_r);
        let mut rep_eof = false;
        let mut rep = BufReader::new(rep);
        let (mut out_eof, mut err_eof, mut status_eof) = (false, false, false);
        let (mut done, mut exit, mut memory, mut timed_out, mut killed) = (None, None, false, false, false);
        let mut closed = s.closed.subscribe();
        let mut cancels = s.cancels.subscribe();
        cancels.borrow_and_update();
        let mut deadline = tokio::time::Instant::from_std(start + Duration::from_millis(limits.timeout_ms));
        let (mut ob, mut eb) = (vec![0u8; 65536], vec![0u8; 65536]);
        let mut rl = String::new();
        // The status pipe carries typed frames: read as they come, decoded when whole.
        let (mut frames, mut fb) = (Vec::new(), vec![0u8; 4096]);
        loop {
            // Without the runner's `done` line, the report pipe is read to its end too: a `limit memory`
            // line written just before the jail exited may still be in it when the exit status arrives.
            if out_eof && err_eof && (done.is_some() || ((exit.is_some() || status_eof) && rep_eof)) {
                break;
            }
            tokio::select! {
                r = out_r.read(&mut ob), if !out_eof => match r {
                    Ok(0) | Err(_) => out_eof = true,
                    Ok(n) => out.push(&ob[..n]),
                },
                r = err_r.read(&mut eb), if !err_eof => match r {
                    Ok(0) | Err(_) => err_eof = true,
                    Ok(n) => err.push(&eb[..n]),
                },
                r = rep.read_line(&mut rl), if !rep_eof => {
                    match r {
                        Ok(0) | Err(_) => rep_eof = true,
                        Ok(_) => {
                            // Self-reported by the (untrusted) run: it can only misreport its own result.
                            let line = rl.trim_end();
                            if line == "limit memory" {
                                memory = true;
                            } else if let Some(rc) = line.strip_prefix("done ").and_then(|c| c.parse::<i32>().ok()) {
                                done = Some(rc);
                                // The code has finished; leftover background processes die with PID 1.
                                let _ = jail.pidfd.kill();
                            }
                        }
                    }
                    rl.clear();
                },
                r = jail.status.read(&mut fb), if !status_eof => {
                    match r {
                        Ok(0) | Err(_) => status_eof = true,
                        Ok(n) => {
                            frames.extend_from_slice(&fb[..n]);
                            while let Some(st) = sluice_sandbox_jail::codec::take_status(&mut frames) {
                                if let Ok(sluice_sandbox_jail::Status::Exit { end, .. }) = st {
                                    exit = Some(exit_status(end));
                                }
                            }
                        }
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if killed {
                        tracing::warn!(pid = jail.pidfd.pid(), "run did not finish after its kill");
                        break;
                    }
                    timed_out = done.is_none() && exit.is_none();
                    killed = true;
                    let _ = jail.pidfd.kill();
                    deadline = tokio::time::Instant::now() + KILL_GRACE;
                },
                _ = closed.changed() => {
                    let _ = jail.pidfd.kill();
                    return Err(OpError::new(ErrorKind::Cancelled, "the session was closed during the run"));
                },
                Ok(()) = cancels.changed() => {
                    let _ = jail.pidfd.kill();
                    return Err(OpError::new(ErrorKind::Cancelled, "the run was cancelled by its caller"));
                },
            }
        }
        // The kernel's own count: the run's group hit its memory limit (trusted, unlike the report line).
        memory |= jail.cgroup.as_ref().is_some_and(RunCgroup::oom_killed);
        drop(jail);
        let duration_ms = start.elapsed().as_secs_f64() * 1000.0;
        let exit = match (done, exit) {
            (Some(rc), _) => ExitStatus {
                code: Some(rc),
                signal: None,
            },
            (None, Some(e)) => e,
            (None, None) => ExitStatus {
                code: None,
                signal: Some(libc::SIGKILL),
            },
        };
        Ok(Ran {
            exit,
            out,
            err,
            memory,
            timed_out,
            duration_ms,
        })
    }
}
