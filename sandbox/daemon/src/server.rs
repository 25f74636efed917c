//! The Unix-socket server: peer credentials, framing, per-request dispatch, bounded concurrency with a
//! queue timeout, sessions and their expiry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_sandbox_protocol::{
    Capacity, DEFAULT_MAX_FRAME, ErrorInfo, ErrorKind, FrameError, PROTOCOL_VERSION, Protection, Request,
    Response, ResponseBody, ResponseFrame, RunsCancelled, SessionClosed, SessionInfo, SessionKey, StatusInfo,
    decode_request, read_frame_async, write_frame_async,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::engine::{Engine, SessionNs};
use crate::error::OpError;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub max_concurrency: u32,
    pub queue_timeout: Duration,
    pub max_sessions: u32,
    pub session_ttl: Duration,
    /// Peers (by uid from SO_PEERCRED) allowed to connect.
    pub allowed_uids: Vec<u32>,
    pub max_frame: usize,
    pub max_read_bytes: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_concurrency: 2,
            queue_timeout: Duration::from_secs(5),
            max_sessions: 64,
            session_ttl: Duration::from_secs(3600),
            allowed_uids: vec![],
            max_frame: DEFAULT_MAX_FRAME,
            max_read_bytes: 16 << 20,
        }
    }
}

struct Session {
    ns: Arc<SessionNs>,
    last_used: Mutex<Instant>,
    active: AtomicU32,
}

impl Session {
    fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
    }
}

/// Marks a session busy for the duration of a request, so expiry never closes it mid-run.
struct ActiveGuard(Arc<Session>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

pub struct Daemon {
    engine: Arc<Engine>,
    cfg: ServerConfig,
    sessions: Mutex<HashMap<SessionKey, Arc<Session>>>,
    slots: Arc<Semaphore>,
    running: AtomicU32,
    protections: Vec<Protection>,
    degraded: bool,
}

impl Daemon {
    pub fn new(
        engine: Arc<Engine>,
        cfg: ServerConfig,
        protections: Vec<Protection>,
        degraded: bool,
    ) -> Arc<Self> {
        Arc::new(Daemon {
            slots: Arc::new(Semaphore::new(cfg.max_concurrency as usize)),
            engine,
            cfg,
            sessions: Mutex::new(HashMap::new()),
            running: AtomicU32::new(0),
            protections,
            degraded,
        })
    }

    fn status(&self) -> StatusInfo {
        StatusInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol: PROTOCOL_VERSION,
            backend: self.engine.backend(),
            degraded: self.degraded,
            protections: self.protections.clone(),
            capacity: Capacity {
                max_concurrency: self.cfg.max_concurrency,
                running: self.running.load(Ordering::SeqCst),
                sessions: self.sessions.lock().map(|s| s.len() as u32).unwrap_or(0),
                max_sessions: self.cfg.max_sessions,
            },
            python: self.engine.facts.version.clone(),
        }
    }

    fn session(&self, key: &SessionKey) -> Result<ActiveGuard, OpError> {
        let sessions = self
            .sessions
            .lock()
            .map_err(|_| OpError::internal("sessions lock poisoned"))?;
        let s = sessions.get(key).cloned().ok_or_else(|| {
            OpError::new(
                ErrorKind::UnknownSession,
                "no open session for this org, key and session id; open one first",
            )
        })?;
        s.active.fetch_add(1, Ordering::SeqCst);
        s.touch();
        Ok(ActiveGuard(s))
    }

    async fn open_session(&self, key: SessionKey, bytes: Option<u64>) -> Result<SessionInfo, OpError> {
        {
            let sessions = self
                .sessions
                .lock()
                .map_err(|_| OpError::internal("sessions lock poisoned"))?;
            if let Some(s) = sessions.get(&key) {
                s.touch();
                return Ok(SessionInfo {
                    created: false,
                    workspace_bytes: s.ns.workspace_bytes,
                });
            }
            if sessions.len() >= self.cfg.max_sessions as usize {
                return Err(OpError::new(
                    ErrorKind::SessionLimit,
                    format!(
                        "the sandbox holds its maximum of {} sessions; close one first",
                        self.cfg.max_sessions
                    ),
                ));
            }
        }
        let max = self.engine.limits().workspace_bytes;
        let bytes = bytes.unwrap_or(max).clamp(1 << 20, max);
        let ns = Arc::new(self.engine.open_session(bytes).await?);
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| OpError::internal("sessions lock poisoned"))?;
        if let Some(s) = sessions.get(&key) {
            // Another connection opened the same session meanwhile: keep theirs.
            ns.close();
            return Ok(SessionInfo {
                created: false,
                workspace_bytes: s.ns.workspace_bytes,
            });
        }
        self.engine.warm_up(&ns);
        sessions.insert(
            key,
            Arc::new(Session {
                ns,
                last_used: Mutex::new(Instant::now()),
                active: AtomicU32::new(0),
            }),
        );
        Ok(SessionInfo {
            created: true,
            workspace_bytes: bytes,
        })
    }

    fn close_session(&self, key: &SessionKey) -> Result<SessionClosed, OpError> {
        let removed = self
            .sessions
            .lock()
            .map_err(|_| OpError::internal("sessions lock poisoned"))?
            .remove(key);
        if let Some(s) = &removed {
            s.ns.close();
        }
        Ok(SessionClosed {
            existed: removed.is_some(),
        })
    }

    /// Kills the session's running code; its workspace and warm jail stay.
    fn cancel_runs(&self, key: &SessionKey) -> Result<RunsCancelled, OpError> {
        let sessions = self
            .sessions
            .lock()
            .map_err(|_| OpError::internal("sessions lock poisoned"))?;
        let session = sessions.get(key);
        if let Some(s) = session {
            s.ns.cancel_runs();
        }
        Ok(RunsCancelled {
            existed: session.is_some(),
        })
    }

    /// Closes sessions idle for longer than the TTL.
    fn expire(&self) {
        let Ok(mut sessions) = self.sessions.lock() else {
            return;
        };
        let ttl = self.cfg.session_ttl;
        sessions.retain(|_, s| {
            let idle = s.last_used.lock().map(|t| t.elapsed()).unwrap_or_default();
            let keep = s.active.load(Ordering::SeqCst) > 0 || idle < ttl;
            if !keep {
                tracing::info!("session expired after {idle:?} idle");
                s.ns.close();
            }
            keep
        });
    }

    #[tracing::instrument(skip_all, fields(op = request.op()))]
    async fn handle(self: Arc<Self>, request: Request) -> Result<Response, OpError> {
        let ws_read_max = self.cfg.max_read_bytes;
        Ok(match request {
            Request::Status => Response::Status(self.status()),
            Request::OpenSession(a) => {
                Response::OpenSession(self.open_session(a.session, a.workspace_bytes).await?)
            }
            Request::CloseSession(a) => Response::CloseSession(self.close_session(&a.session)?),
            Request::CancelRuns(a) => Response::CancelRuns(self.cancel_runs(&a.session)?),
            Request::RunPython(a) => {
                let guard = self.session(&a.session)?;
                let slot =
                    match tokio::time::timeout(self.cfg.queue_timeout, self.slots.clone().acquire_owned())
                        .await
                    {
                        Ok(Ok(p)) => p,
                        Ok(Err(_)) => return Err(OpError::internal("execution slots closed")),
                        Err(_) => {
                            return Err(OpError::new(
                                ErrorKind::Busy,
                                format!(
                                    "sandbox busy: all {} execution slots stayed taken for {:?}; retry later",
                                    self.cfg.max_concurrency, self.cfg.queue_timeout
                                ),
                            ));
                        }
                    };
                self.running.fetch_add(1, Ordering::SeqCst);
                let result = self.engine.run(&guard.0.ns, a).await;
                self.running.fetch_sub(1, Ordering::SeqCst);
                drop(slot);
                Response::RunPython(result?)
            }
            Request::ListDirectory(a) => {
                Response::ListDirectory(self.session(&a.session)?.0.ns.workspace.list(&a.path)?)
            }
            Request::DirectoryTree(a) => Response::DirectoryTree(
                self.session(&a.session)?
                    .0
                    .ns
                    .workspace
                    .tree(&a.path, a.max_depth)?,
            ),
            Request::ReadFile(a) => {
                let max = a.max_bytes.unwrap_or(ws_read_max).min(ws_read_max);
                Response::ReadFile(self.session(&a.session)?.0.ns.workspace.read(&a.path, max)?)
            }
            Request::WriteFile(a) => Response::WriteFile(self.session(&a.session)?.0.ns.workspace.write(
                &a.path,
                &a.content.0,
                a.create_parents,
            )?),
            Request::SearchFiles(a) => {
                Response::SearchFiles(self.session(&a.session)?.0.ns.workspace.search(
                    &a.path,
                    &a.pattern,
                    a.max_results,
                )?)
            }
            Request::GetFileInfo(a) => {
                Response::GetFileInfo(self.session(&a.session)?.0.ns.workspace.stat(&a.path)?)
            }
            Request::CreateDirectory(a) => {
                Response::CreateDirectory(self.session(&a.session)?.0.ns.workspace.mkdir(&a.path)?)
            }
            Request::MoveFile(a) => Response::MoveFile(
                self.session(&a.session)?
                    .0
                    .ns
                    .workspace
                    .rename(&a.source, &a.destination)?,
            ),
        })
    }

    /// Accepts connections until the listener fails.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) -> std::io::Result<()> {
        let reaper = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10).min(reaper.cfg.session_ttl));
            loop {
                tick.tick().await;
                reaper.expire();
            }
        });
        loop {
            let (stream, _) = listener.accept().await?;
            let peer = stream.peer_cred().map(|c| c.uid());
            match peer {
                Ok(uid) if self.cfg.allowed_uids.contains(&uid) => {
                    let this = self.clone();
                    tokio::spawn(async move { this.connection(stream).await });
                }
                Ok(uid) => tracing::warn!(uid, "refused a connection from a uid that is not allowed"),
                Err(e) => tracing::warn!("refused a connection without peer credentials: {e}"),
            }
        }
    }

    async fn connection(self: Arc<Self>, stream: UnixStream) {
        let (mut rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<ResponseFrame>(64);
        let max = self.cfg.max_frame;
        let writer = tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                let frame = match write_frame_async(&mut wr, &frame, max).await {
                    Err(FrameError::TooLarge { len, max }) => ResponseFrame {
                        v: PROTOCOL_VERSION,
                        id: frame.id,
                        body: ResponseBody::Error(ErrorInfo {
                            kind: ErrorKind::TooLarge,
                            message: format!(
                                "the response ({len} bytes) exceeds the frame limit of {max} bytes"
                            ),
                        }),
                    },
                    Err(_) => return,
                    Ok(()) => continue,
                };
                if write_frame_async(&mut wr, &frame, max).await.is_err() {
                    return;
                }
            }
        });
        let mut tasks = JoinSet::new();
        let error = |id: u64, kind: ErrorKind, message: String| ResponseFrame {
            v: PROTOCOL_VERSION,
            id,
            body: ResponseBody::Error(ErrorInfo { kind, message }),
        };
        loop {
            let body = match read_frame_async(&mut rd, max).await {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(FrameError::TooLarge { len, max }) => {
                    // The rest of the stream cannot be re-synchronised: answer, then hang up.
                    let msg = format!("request frame of {len} bytes exceeds the limit of {max} bytes");
                    let _ = tx.send(error(0, ErrorKind::TooLarge, msg)).await;
                    break;
                }
                Err(e) => {
                    tracing::debug!("connection ended: {e}");
                    break;
                }
            };
            let frame = match decode_request(&body) {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.send(error(e.id.unwrap_or(0), e.kind, e.message)).await;
                    continue;
                }
            };
            let (this, tx) = (self.clone(), tx.clone());
            tasks.spawn(async move {
                let id = frame.id;
                let body = match this.handle(frame.request).await {
                    Ok(r) => ResponseBody::Ok(r),
                    Err(e) => ResponseBody::Error(e.to_info()),
                };
                let _ = tx
                    .send(ResponseFrame {
                        v: PROTOCOL_VERSION,
                        id,
                        body,
                    })
                    .await;
            });
            while tasks.try_join_next().is_some() {}
        }
        // The client is gone (or broke the framing): abandon its in-flight requests. Dropping a run's
        // future kills its jail.
        tasks.shutdown().await;
        drop(tx);
        let _ = writer.await;
    }
}
