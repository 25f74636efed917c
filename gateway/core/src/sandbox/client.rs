//! The gateway's connection to the sandbox daemon: one multiplexed Unix-socket connection, opened on first
//! use and opened again after it breaks (a daemon restart), so the gateway never needs restarting.
//!
//! Requests carry ids and the daemon answers them in any order, so concurrent tool calls share the one
//! connection: a writer lock serialises frames, a reader task hands each response to its waiting caller.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_sandbox_protocol::{
    DEFAULT_MAX_FRAME, ErrorInfo, FrameError, PROTOCOL_VERSION, Request, RequestFrame, Response,
    ResponseBody, decode_response, encode, read_frame_async,
};
use tokio::io::AsyncWriteExt as _;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::oneshot;

/// Why a call did not get an answer from the daemon.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The daemon cannot be reached or the connection broke: the sandbox is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// The daemon answered with a typed error.
    #[error("{}", .0.message)]
    Remote(ErrorInfo),
    /// The request cannot be sent (e.g. larger than a frame may be).
    #[error("{0}")]
    Request(String),
    /// No answer within the deadline.
    #[error("the sandbox did not answer within {0:?}")]
    Timeout(Duration),
}

type Waiters = HashMap<u64, oneshot::Sender<ResponseBody>>;

/// One open connection and the callers waiting on it.
struct Conn {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    waiters: Arc<Mutex<Option<Waiters>>>,
    /// Why the connection ended, once the reader saw it end.
    ended: Arc<Mutex<Option<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    fn is_open(&self) -> bool {
        self.ended.lock().map(|e| e.is_none()).unwrap_or(false)
    }

    fn end_reason(&self) -> String {
        self.ended
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "the connection to the sandbox daemon closed".to_owned())
    }
}

/// A client for one daemon socket.
pub struct Client {
    socket: PathBuf,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    next_id: AtomicU64,
    /// Counts connections made, so callers can tell that the daemon may have restarted.
    generation: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
            conn: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
            generation: AtomicU64::new(0),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// How many connections have been opened so far; a change means a new daemon process may answer.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The open connection, or a new one.
    async fn connection(&self) -> Result<(Arc<Conn>, u64), CallError> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref()
            && conn.is_open()
        {
            return Ok((Arc::clone(conn), self.generation()));
        }
        *slot = None;
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            CallError::Unavailable(format!(
                "cannot connect to the sandbox daemon at {}: {e}",
                self.socket.display()
            ))
        })?;
        let (mut rd, wr) = stream.into_split();
        let waiters: Arc<Mutex<Option<Waiters>>> = Arc::new(Mutex::new(Some(HashMap::new())));
        let ended: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let reader = tokio::spawn({
            let waiters = Arc::clone(&waiters);
            let ended = Arc::clone(&ended);
            async move {
                let reason = loop {
                    let body = match read_frame_async(&mut rd, DEFAULT_MAX_FRAME).await {
                        Ok(Some(body)) => body,
                        Ok(None) => break "the sandbox daemon closed the connection".to_owned(),
                        Err(e) => break format!("the connection to the sandbox daemon broke: {e}"),
                    };
                    let frame = match decode_response(&body) {
                        Ok(f) => f,
                        Err(e) => break format!("the sandbox daemon sent an unreadable response: {e}"),
                    };
                    let waiter = waiters
                        .lock()
                        .ok()
                        .and_then(|mut w| w.as_mut().and_then(|w| w.remove(&frame.id)));
                    match waiter {
                        Some(tx) => {
                            let _ = tx.send(frame.body);
                        }
                        // A caller that timed out and went away; or id 0, an answer to a frame the
                        // daemon could not read, which this client never sends.
                        None => tracing::debug!(id = frame.id, "sandbox response without a waiter"),
                    }
                };
                tracing::debug!("{reason}");
                if let Ok(mut e) = ended.lock() {
                    *e = Some(reason);
                }
                // Dropping the senders wakes every waiting caller with the end reason.
                if let Ok(mut w) = waiters.lock() {
                    w.take();
                }
            }
        });
        let conn = Arc::new(Conn {
            writer: tokio::sync::Mutex::new(wr),
            waiters,
            ended,
            reader,
        });
        *slot = Some(Arc::clone(&conn));
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(socket = %self.socket.display(), generation, "connected to the sandbox daemon");
        Ok((conn, generation))
    }

    /// Forgets `conn` if it is still the current connection.
    async fn discard(&self, conn: &Arc<Conn>) {
        let mut slot = self.conn.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *slot = None;
        }
    }

    /// Sends one request and waits for its answer. A request that could not be written on a stale
    /// connection (the daemon restarted since) is sent once more on a fresh one; a request that was
    /// written is never repeated, because the daemon may have acted on it.
    pub async fn call(&self, request: Request, timeout: Duration) -> Result<(Response, u64), CallError> {
        let op = request.op();
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let frame = encode(&RequestFrame {
            v: PROTOCOL_VERSION,
            id,
            request,
        })
        .map_err(|e| CallError::Request(format!("the {op} request cannot be encoded: {e}")))?;
        let len = frame.len() - 4;
        if len > DEFAULT_MAX_FRAME {
            return Err(CallError::Request(
                FrameError::TooLarge {
                    len,
                    max: DEFAULT_MAX_FRAME,
                }
                .to_string(),
            ));
        }
        let mut last = String::new();
        for _attempt in 0..2 {
            let (conn, generation) = self.connection().await?;
            let (tx, rx) = oneshot::channel();
            let registered = conn
                .waiters
                .lock()
                .ok()
                .and_then(|mut w| w.as_mut().map(|w| w.insert(id, tx)))
                .is_some();
            if !registered {
                last = conn.end_reason();
                self.discard(&conn).await;
                continue;
            }
            let written = {
                let mut w = conn.writer.lock().await;
                match w.write_all(&frame).await {
                    Ok(()) => w.flush().await,
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = written {
                if let Ok(mut w) = conn.waiters.lock()
                    && let Some(w) = w.as_mut()
                {
                    w.remove(&id);
                }
                last = format!("writing to the sandbox daemon failed: {e}");
                self.discard(&conn).await;
                continue;
            }
            return match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(ResponseBody::Ok(response))) => Ok((response, generation)),
                Ok(Ok(ResponseBody::Error(info))) => Err(CallError::Remote(info)),
                Ok(Err(_)) => {
                    self.discard(&conn).await;
                    Err(CallError::Unavailable(format!(
                        "{} while it handled the {op} request",
                        conn.end_reason()
                    )))
                }
                Err(_) => {
                    if let Ok(mut w) = conn.waiters.lock()
                        && let Some(w) = w.as_mut()
                    {
                        w.remove(&id);
                    }
                    Err(CallError::Timeout(timeout))
                }
            };
        }
        Err(CallError::Unavailable(last))
    }
}
