//! A session's long-lived gVisor container, as the daemon holds it: the `runsc run` process (a pidfd), a
//! writer task feeding requests to the container's session server (`sluice-sandbox-zygote gvisor-server`), a demux
//! task routing its events by run id to the waiting runs, and an idle watcher that stops the container
//! when no run has used it for a while.
//!
//! A container that stops (runsc exited, killed, idled out) fails the runs still waiting on it with the
//! reason; the engine starts a fresh one at the session's next run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};

use super::wire::{self, Event, Request, RunSetup};
use crate::error::OpError;
use crate::pidfd::PidFd;

/// A run's events, in the order the server sent them.
type EventSender = mpsc::UnboundedSender<Event>;

pub struct Container {
    /// `runsc run`, PID 1 of the namespace the zygote's intermediate child made: killing it takes the
    /// sandbox, the gofer and every process inside with it.
    runsc: PidFd,
    requests: mpsc::UnboundedSender<Vec<u8>>,
    runs: Mutex<HashMap<u64, EventSender>>,
    /// Why the container stopped, once it has.
    stopped: watch::Receiver<Option<String>>,
    /// Set by [`Container::stop`] before the kill lands, so that no new run is given to it meanwhile.
    retired: AtomicBool,
    next_id: AtomicU64,
    active: AtomicUsize,
    last_used: Mutex<Instant>,
    /// The interpreter's version, as the server reported it.
    pub python: String,
}

/// The pipes of a freshly started container and what its intermediate child reports.
pub struct Started {
    pub runsc: PidFd,
    pub stdin: pipe::Sender,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
    pub status: BufReader<pipe::Receiver>,
}

async fn read_event(r: &mut pipe::Receiver) -> Result<Option<Event>, String> {
    let mut header = [0u8; wire::HEADER_LEN];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(format!("reading its events: {e}")),
    }
    let (len, kind, id) = wire::parse_header(&header).map_err(|e| e.to_string())?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)
        .await
        .map_err(|e| format!("reading its events: {e}"))?;
    Event::decode(kind, id, payload)
        .map(Some)
        .map_err(|e| e.to_string())
}

impl Container {
    /// Waits for the server's Ready event (the preloads imported), then starts the tasks that serve it.
    pub async fn serve(
        started: Started,
        deadline: Duration,
        idle: Duration,
    ) -> Result<Arc<Container>, OpError> {
        let Started {
            runsc,
            stdin,
            mut stdout,
            stderr,
            mut status,
        } = started;
        let python = match tokio::time::timeout(deadline, read_event(&mut stdout)).await {
            Ok(Ok(Some(Event::Ready { python }))) => python,
            outcome => {
                // runsc failed (or the server did): its reason is on the container's stderr.
                let _ = runsc.kill();
                let mut why = Vec::new();
                let mut err = stderr;
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    (&mut err).take(4096).read_to_end(&mut why),
                )
                .await;
                let what = match outcome {
                    Err(_) => format!("not ready after {deadline:?}"),
                    Ok(Ok(Some(other))) => format!("it said {other:?} first"),
                    Ok(Err(e)) => e,
                    Ok(Ok(None)) => "runsc exited".to_string(),
                };
                return Err(OpError::new(
                    sluice_sandbox_protocol::ErrorKind::Unavailable,
                    format!(
                        "the gVisor sandbox could not start ({what}): {}",
                        String::from_utf8_lossy(&why).trim()
                    ),
                ));
            }
        };
        let (requests, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        let (stopped_tx, stopped) = watch::channel(None);
        let mut writer_stop = stopped.clone();
        let c = Arc::new(Container {
            runsc,
            requests,
            runs: Mutex::new(HashMap::new()),
            stopped,
            retired: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            active: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
            python,
        });
        let pid = c.runsc.pid();
        // Requests are written by one task, in order; a failed write means the container is gone, which
        // the demux task notices on its side. Once the container has stopped (idled out, say) the task
        // ends and closes its end of the pipe, though the session may keep the stopped container a while.
        tokio::spawn(async move {
            let mut stdin = stdin;
            loop {
                let frame = tokio::select! {
                    frame = queue.recv() => frame,
                    _ = writer_stop.wait_for(Option::is_some) => None,
                };
                let Some(frame) = frame else { break };
                if stdin.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(runsc = pid, "gVisor session server: {line}");
            }
        });
        let weak = Arc::downgrade(&c);
        tokio::spawn(async move {
            let why = loop {
                let event = match read_event(&mut stdout).await {
                    Ok(Some(e)) => e,
                    Ok(None) => break "runsc exited".to_string(),
                    Err(e) => break e,
                };
                let Some(c) = weak.upgrade() else { return };
                let Some(id) = event.run_id() else { continue };
                let sender = c.runs.lock().ok().and_then(|m| m.get(&id).cloned());
                if let Some(tx) = sender {
                    let _ = tx.send(event);
                }
            };
            // runsc's exit status, as the intermediate child reports it, says how it ended.
            let mut exit = String::new();
            let soon = || Instant::now() + Duration::from_secs(1);
            while let Ok(Some(st)) = crate::engine::read_status_by(&mut status, soon()).await {
                if let sluice_sandbox_jail::Status::Exit { end, .. } = st {
                    exit = match end {
                        sluice_sandbox_jail::End::Code(c) => format!("code {c}"),
                        sluice_sandbox_jail::End::Signal(s) => format!("signal {s}"),
                    };
                }
            }
            let why = if exit.is_empty() {
                why
            } else {
                format!("{why}, {exit}")
            };
            if let Some(c) = weak.upgrade() {
                let retired = c.retired.swap(true, Ordering::SeqCst);
                if !retired {
                    tracing::warn!(runsc = pid, "the session's gVisor sandbox stopped: {why}");
                }
                // Dropping the senders ends every waiting run's stream.
                if let Ok(mut m) = c.runs.lock() {
                    m.clear();
                }
            }
            let _ = stopped_tx.send(Some(why));
        });
        let weak = Arc::downgrade(&c);
        tokio::spawn(Self::idle_watch(weak, idle));
        Ok(c)
    }

    /// Stops the container once it has had no run for `idle`.
    async fn idle_watch(weak: Weak<Container>, idle: Duration) {
        let mut wait = idle;
        loop {
            tokio::time::sleep(wait).await;
            let Some(c) = weak.upgrade() else { return };
            if c.is_stopped() {
                return;
            }
            let quiet = c.last_used.lock().map(|t| t.elapsed()).unwrap_or_default();
            if c.active.load(Ordering::SeqCst) == 0 && quiet >= idle {
                tracing::info!(
                    runsc = c.pid(),
                    "stopping the session's gVisor sandbox after {quiet:?} without a run"
                );
                c.stop();
                return;
            }
            wait = idle.saturating_sub(quiet).max(Duration::from_millis(100));
        }
    }

    /// The host pid of `runsc run`.
    pub fn pid(&self) -> i32 {
        self.runsc.pid()
    }

    /// Stopped, or on its way out: the next run needs a new container.
    pub fn is_stopped(&self) -> bool {
        self.retired.load(Ordering::SeqCst) || self.stopped.borrow().is_some() || !self.runsc.alive()
    }

    /// Kills the whole container; waiting runs fail with the reason.
    pub fn stop(&self) {
        self.retired.store(true, Ordering::SeqCst);
        if let Err(e) = self.runsc.kill() {
            tracing::debug!(runsc = self.runsc.pid(), "killing the gVisor sandbox: {e}");
        }
    }

    /// Why the container stopped; waits (briefly) for the demux task to say.
    pub async fn stopped_because(&self) -> String {
        let mut rx = self.stopped.clone();
        let _ = tokio::time::timeout(Duration::from_secs(2), rx.wait_for(Option::is_some)).await;
        let why = rx.borrow().clone();
        why.unwrap_or_else(|| "it was stopped".to_string())
    }

    /// Hands the server a run; its events arrive on the returned stream.
    pub fn start_run(self: &Arc<Self>, setup: RunSetup, code: &str) -> Result<RunStream, OpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = Request::Run {
            id,
            setup,
            code: code.as_bytes().to_vec(),
        }
        .encode()
        .map_err(|e| OpError::internal(format!("run request: {e}")))?;
        let (tx, events) = mpsc::unbounded_channel();
        self.runs
            .lock()
            .map_err(|_| OpError::internal("gVisor run table poisoned"))?
            .insert(id, tx);
        self.active.fetch_add(1, Ordering::SeqCst);
        // A closed queue means the container is gone: the stream then ends at once (its sender is dropped
        // by the demux task, or right here).
        if self.requests.send(frame).is_err()
            && let Ok(mut m) = self.runs.lock()
        {
            m.remove(&id);
        }
        Ok(RunStream {
            container: self.clone(),
            id,
            events,
            finished: false,
        })
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.runsc.kill();
    }
}

/// One run's events. Dropping it before the run's Exit kills the run.
pub struct RunStream {
    container: Arc<Container>,
    id: u64,
    events: mpsc::UnboundedReceiver<Event>,
    finished: bool,
}

impl RunStream {
    /// The next event; `None` when the container stopped.
    pub async fn next(&mut self) -> Option<Event> {
        let e = self.events.recv().await;
        if matches!(e, None | Some(Event::Exit { .. }) | Some(Event::Failed { .. })) {
            self.finished = true;
        }
        e
    }

    /// Asks the server to kill the run (its whole PID namespace).
    pub fn kill(&self) {
        let _ = self
            .container
            .requests
            .send(Request::Kill { id: self.id }.encode().unwrap_or_default());
    }

    pub fn container(&self) -> &Arc<Container> {
        &self.container
    }
}

impl Drop for RunStream {
    fn drop(&mut self) {
        if !self.finished {
            self.kill();
        }
        if let Ok(mut m) = self.container.runs.lock() {
            m.remove(&self.id);
        }
        if let Ok(mut t) = self.container.last_used.lock() {
            *t = Instant::now();
        }
        self.container.active.fetch_sub(1, Ordering::SeqCst);
    }
}
