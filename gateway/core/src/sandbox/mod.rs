//! The sandbox daemon as the gateway's tools see it: session workspaces keyed by org + key + MCP session
//! (closed when the MCP session ends, see the front door's `sessions`), calls that reconnect by themselves, live
//! status, and "sandbox unavailable" errors that say why and what to do.
//!
//! `sluice up` starts the daemon as a child process ([`daemon::Supervisor`]); `sluice serve` connects to
//! a configured socket. Either way the tools only talk to [`Sandbox`].

pub mod client;
pub mod csv;
pub mod daemon;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_sandbox_protocol::{
    ErrorKind as WireKind, OpenSession, ProtectionState, Request, Response, SessionArgs, SessionKey,
    StatusInfo,
};

use crate::pipeline::CallContext;
use crate::service::ToolError;
use client::{CallError, Client};

/// How long a file operation or a status probe may take before the gateway gives up on it.
pub const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Added to a run's own timeout: the daemon's queue wait and building a jail come on top.
const RUN_MARGIN: Duration = Duration::from_secs(30);
/// How long closing an ended session's workspace may take; the daemon's idle expiry is the backstop.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an ended MCP session is remembered, so that a call that was already running when its session
/// ended cannot open a workspace nobody would close. Longer than any call takes to reach its workspace.
const ENDED_MEMORY: Duration = Duration::from_secs(600);

/// Which daemon sessions each MCP session opened (whatever org or key), so that all of them are closed
/// when it ends, and the MCP sessions that ended recently.
#[derive(Debug, Default)]
struct SessionBook {
    open: HashMap<String, HashSet<SessionKey>>,
    ended: HashMap<String, Instant>,
}

impl SessionBook {
    fn has_ended(&self, session: &str) -> bool {
        self.ended
            .get(session)
            .is_some_and(|at| at.elapsed() < ENDED_MEMORY)
    }
}

/// What the gateway knows about its sandbox right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// No daemon is configured; the text says how to configure one.
    NotConfigured(String),
    /// The daemon answered.
    Available(StatusInfo),
    /// A daemon is configured but does not answer; the text says why and what to do.
    Unavailable(String),
}

/// Why the daemon is down, as the supervisor knows it.
#[derive(Clone, Debug)]
struct Down {
    reason: String,
    /// Whether the operator has something to do (a failed start), so the message carries the hint.
    operator: bool,
}

/// The gateway's handle on the sandbox daemon.
#[derive(Debug)]
pub struct Sandbox {
    client: Option<Arc<Client>>,
    /// Why the sandbox is not configured, when `client` is `None`.
    not_configured: String,
    /// What the operator should do when the daemon is unreachable ("start it with …").
    hint: String,
    /// Set by the supervisor while it knows the daemon is down (failed start, exit, restart) and why.
    down: Mutex<Option<Down>>,
    /// Sessions opened on the current connection's daemon: (connection generation, keys).
    opened: Mutex<(u64, HashSet<SessionKey>)>,
    /// Workspaces by MCP session id, for closing them when the session ends.
    book: Mutex<SessionBook>,
    /// The largest execute_code timeout, in seconds.
    pub max_timeout_secs: u64,
}

impl Sandbox {
    /// A gateway without a sandbox: every sandbox tool says so, and how to add one.
    pub fn not_configured(reason: impl Into<String>, max_timeout_secs: u64) -> Self {
        Sandbox {
            client: None,
            not_configured: reason.into(),
            hint: String::new(),
            down: Mutex::new(None),
            opened: Mutex::new((0, HashSet::new())),
            book: Mutex::new(SessionBook::default()),
            max_timeout_secs,
        }
    }

    /// A sandbox reached through the daemon socket at `socket`.
    pub fn connect(
        socket: impl Into<std::path::PathBuf>,
        hint: impl Into<String>,
        max_timeout_secs: u64,
    ) -> Self {
        Sandbox {
            client: Some(Arc::new(Client::new(socket))),
            not_configured: String::new(),
            hint: hint.into(),
            down: Mutex::new(None),
            opened: Mutex::new((0, HashSet::new())),
            book: Mutex::new(SessionBook::default()),
            max_timeout_secs,
        }
    }

    /// The daemon's socket, when one is configured.
    pub fn socket(&self) -> Option<&std::path::Path> {
        self.client.as_deref().map(Client::socket)
    }

    /// Records why the daemon is down (`None`: it is up again). Only improves error messages: calls are
    /// always attempted, so a daemon that came back is used at once.
    pub fn set_down(&self, reason: Option<String>) {
        if let Ok(mut d) = self.down.lock() {
            *d = reason.map(|reason| Down {
                reason,
                operator: true,
            });
        }
    }

    /// Records that a daemon which was serving stopped and is being restarted: a passing outage that
    /// needs no operator, so its message says to retry instead of how to fix the host.
    pub fn set_restarting(&self, reason: String) {
        if let Ok(mut d) = self.down.lock() {
            *d = Some(Down {
                reason,
                operator: false,
            });
        }
    }

    /// Records that the daemon is starting, unless a more telling reason (why it exited) is known.
    pub fn mark_starting(&self) {
        if let Ok(mut d) = self.down.lock()
            && d.is_none()
        {
            *d = Some(Down {
                reason: "the sandbox daemon is starting".to_owned(),
                operator: true,
            });
        }
    }

    fn unavailable(&self, why: &str) -> String {
        match self.down.lock().ok().and_then(|d| d.clone()) {
            Some(Down {
                reason,
                operator: false,
            }) => format!("sandbox unavailable: {reason}"),
            Some(Down { reason, .. }) => format!("sandbox unavailable: {reason}; {}", self.hint),
            None => format!("sandbox unavailable: {why}; {}", self.hint),
        }
    }

    fn not_configured_message(&self) -> String {
        format!("sandbox unavailable: {}", self.not_configured)
    }

    /// One request without a session, for status probes.
    async fn raw(&self, request: Request, timeout: Duration) -> Result<(Response, u64), CallError> {
        match &self.client {
            Some(c) => c.call(request, timeout).await,
            None => Err(CallError::Unavailable(self.not_configured.clone())),
        }
    }

    /// Asks the daemon for its status.
    pub async fn probe(&self, timeout: Duration) -> Result<StatusInfo, CallError> {
        match self.raw(Request::Status, timeout).await? {
            (Response::Status(s), _) => Ok(s),
            (other, _) => Err(CallError::Request(format!(
                "the sandbox answered status with {other:?}"
            ))),
        }
    }

    /// The live state, for `sandbox_status` and `server_info`.
    pub async fn state(&self) -> State {
        if self.client.is_none() {
            return State::NotConfigured(self.not_configured_message());
        }
        match self.probe(Duration::from_secs(5)).await {
            Ok(s) => State::Available(s),
            Err(e) => State::Unavailable(self.unavailable(&e.to_string())),
        }
    }

    /// The workspace key of a call: the MCP session's, or a fresh one for a call without a session.
    pub fn session_key(ctx: &CallContext) -> (SessionKey, bool) {
        let (session, ephemeral) = match &ctx.session_id {
            Some(id) => (id.clone(), false),
            None => (format!("call-{}", uuid::Uuid::new_v4()), true),
        };
        (
            SessionKey {
                org: ctx.auth.org_id.clone(),
                key: ctx.auth.key_id.clone(),
                session,
            },
            ephemeral,
        )
    }

    /// Opens the session's workspace unless this daemon already has it open.
    async fn ensure_open(&self, key: &SessionKey) -> Result<(), CallError> {
        let Some(client) = &self.client else {
            return Err(CallError::Unavailable(self.not_configured.clone()));
        };
        let known = self
            .opened
            .lock()
            .map(|o| o.0 == client.generation() && o.0 != 0 && o.1.contains(key))
            .unwrap_or(false);
        if known {
            return Ok(());
        }
        if self.book().has_ended(&key.session) {
            return Err(ended_error());
        }
        let request = Request::OpenSession(OpenSession {
            session: key.clone(),
            workspace_bytes: None,
        });
        let (_, generation) = client.call(request, OP_TIMEOUT).await?;
        let ended = {
            let mut book = self.book();
            let ended = book.has_ended(&key.session);
            if !ended {
                book.open
                    .entry(key.session.clone())
                    .or_default()
                    .insert(key.clone());
            }
            ended
        };
        if ended {
            // The MCP session ended while this workspace was being opened, after its workspaces were
            // closed: close this one too rather than leave it to the daemon's idle expiry.
            self.close_key(key).await;
            return Err(ended_error());
        }
        if let Ok(mut o) = self.opened.lock() {
            if o.0 != generation {
                // A new connection may be a new daemon, which knows none of the old sessions.
                *o = (generation, HashSet::new());
            }
            o.1.insert(key.clone());
        }
        Ok(())
    }

    fn book(&self) -> std::sync::MutexGuard<'_, SessionBook> {
        // The book holds plain sets; a panic elsewhere cannot leave it half-updated.
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, key: &SessionKey) {
        if let Ok(mut o) = self.opened.lock() {
            o.1.remove(key);
        }
        let mut book = self.book();
        if let Some(keys) = book.open.get_mut(&key.session) {
            keys.remove(key);
            if keys.is_empty() {
                book.open.remove(&key.session);
            }
        }
    }

    /// Asks the daemon to close one workspace; true when it had it open. Failures are logged only:
    /// the daemon's idle expiry removes what this could not.
    async fn close_key(&self, key: &SessionKey) -> bool {
        let close = Request::CloseSession(SessionArgs { session: key.clone() });
        match self.raw(close, CLOSE_TIMEOUT).await {
            Ok((Response::CloseSession(c), _)) => c.existed,
            Ok((other, _)) => {
                tracing::warn!("the sandbox answered close_session with {other:?}");
                false
            }
            Err(e) => {
                tracing::warn!(
                    "closing the workspace of an ended MCP session failed ({e}); the daemon's idle expiry \
                     will remove it"
                );
                false
            }
        }
    }

    /// Closes every workspace opened for the MCP session `session_id` (under any org or key), because
    /// that session ended; later calls in it cannot open a new one. Returns how many workspaces the
    /// daemon removed. Never fails: a daemon that is down is logged, and its idle expiry is the backstop.
    pub async fn close_session_workspaces(&self, session_id: &str) -> usize {
        let keys = {
            let mut book = self.book();
            book.ended.retain(|_, at| at.elapsed() < ENDED_MEMORY);
            book.ended.insert(session_id.to_owned(), Instant::now());
            book.open.remove(session_id).unwrap_or_default()
        };
        if let Ok(mut o) = self.opened.lock() {
            o.1.retain(|k| k.session != session_id);
        }
        if self.client.is_none() {
            return 0;
        }
        let mut closed = 0;
        for key in &keys {
            if self.close_key(key).await {
                closed += 1;
            }
        }
        closed
    }

    /// The caller's workspace: the MCP session's, or, for a call without a session, one of its own that
    /// [`Workspace::finish`] closes.
    pub fn workspace(&self, ctx: &CallContext) -> Workspace<'_> {
        let (key, ephemeral) = Self::session_key(ctx);
        Workspace {
            sandbox: self,
            key,
            ephemeral,
        }
    }

    /// One request in the caller's workspace (opened, and for a sessionless call closed, around it).
    pub async fn call<F>(&self, ctx: &CallContext, make: F, timeout: Duration) -> Result<Response, ToolError>
    where
        F: Fn(SessionKey) -> Request,
    {
        let ws = self.workspace(ctx);
        let result = ws.call(make, timeout).await;
        ws.finish().await;
        result
    }

    async fn call_in<F>(&self, key: &SessionKey, make: &F, timeout: Duration) -> Result<Response, CallError>
    where
        F: Fn(SessionKey) -> Request,
    {
        self.ensure_open(key).await?;
        match self.raw(make(key.clone()), timeout).await {
            // The daemon expired the idle session, or restarted between our open and this call.
            Err(CallError::Remote(info)) if info.kind == WireKind::UnknownSession => {
                self.forget(key);
                self.ensure_open(key).await?;
                self.raw(make(key.clone()), timeout).await.map(|(r, _)| r)
            }
            other => other.map(|(r, _)| r),
        }
    }

    /// The deadline for a run whose own timeout is `run`.
    pub fn run_deadline(run: Duration) -> Duration {
        run + RUN_MARGIN
    }

    /// Phrases a failed sandbox call for the agent.
    pub fn tool_error(&self, e: CallError) -> ToolError {
        if self.client.is_none() {
            return ToolError::failed(self.not_configured_message());
        }
        match e {
            CallError::Unavailable(why) => ToolError::failed(self.unavailable(&why)),
            CallError::Request(m) => ToolError::invalid(m),
            CallError::Timeout(d) => ToolError::failed(format!(
                "the sandbox did not answer within {} s; the daemon may be overloaded",
                d.as_secs()
            )),
            CallError::Remote(info) => match info.kind {
                WireKind::PathOutsideWorkspace
                | WireKind::NotFound
                | WireKind::AlreadyExists
                | WireKind::NotADirectory
                | WireKind::IsADirectory
                | WireKind::InvalidArgument
                | WireKind::TooLarge
                | WireKind::NoSpace => ToolError::invalid(info.message),
                WireKind::Busy | WireKind::SessionLimit | WireKind::Timeout => {
                    ToolError::failed(info.message)
                }
                WireKind::Unavailable => ToolError::failed(self.unavailable(&info.message)),
                kind => ToolError::failed(format!("the sandbox failed ({kind}): {}", info.message)),
            },
        }
    }
}

/// The answer to a call that would open a workspace for an MCP session that has already ended.
fn ended_error() -> CallError {
    CallError::Request(
        "this MCP session has ended and its sandbox workspace was removed; start a new session".to_owned(),
    )
}

/// Kills a workspace's running code when dropped armed (see [`Workspace::cancel_on_drop`]).
pub struct CancelRunsOnDrop {
    client: Option<Arc<Client>>,
    key: Option<SessionKey>,
}

impl CancelRunsOnDrop {
    /// The run is over: nothing to cancel.
    pub fn disarm(mut self) {
        self.key = None;
    }
}

impl Drop for CancelRunsOnDrop {
    fn drop(&mut self) {
        let (Some(client), Some(key)) = (self.client.take(), self.key.take()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let cancel = Request::CancelRuns(SessionArgs { session: key });
            if let Err(e) = client.call(cancel, CLOSE_TIMEOUT).await {
                tracing::warn!("could not stop a cancelled sandbox run ({e}); its time limit still ends it");
            }
        });
    }
}

/// One caller's workspace for the duration of a tool call.
pub struct Workspace<'a> {
    sandbox: &'a Sandbox,
    key: SessionKey,
    ephemeral: bool,
}

impl Workspace<'_> {
    /// True when the call has no MCP session, so the workspace is new and is removed after the call.
    pub fn ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// A guard for a run in this workspace: dropped before [`CancelRunsOnDrop::disarm`] (the call was
    /// given up), it asks the daemon to kill the workspace's running code, in the background.
    pub fn cancel_on_drop(&self) -> CancelRunsOnDrop {
        CancelRunsOnDrop {
            client: self.sandbox.client.clone(),
            key: Some(self.key.clone()),
        }
    }

    /// Sends one request built for this workspace's session.
    pub async fn call<F>(&self, make: F, timeout: Duration) -> Result<Response, ToolError>
    where
        F: Fn(SessionKey) -> Request,
    {
        self.sandbox
            .call_in(&self.key, &make, timeout)
            .await
            .map_err(|e| self.sandbox.tool_error(e))
    }

    /// Closes a per-call workspace; a session's workspace stays for the session's next calls (and is
    /// closed when the session ends, [`Sandbox::close_session_workspaces`]).
    pub async fn finish(self) {
        if !self.ephemeral || self.sandbox.client.is_none() {
            return;
        }
        let close = Request::CloseSession(SessionArgs {
            session: self.key.clone(),
        });
        if let Err(e) = self.sandbox.raw(close, OP_TIMEOUT).await {
            tracing::warn!("closing a per-call sandbox workspace failed: {e}");
        }
        self.sandbox.forget(&self.key);
    }
}

impl State {
    /// `available`, `unavailable` or `not_configured`.
    pub fn name(&self) -> &'static str {
        match self {
            State::NotConfigured(_) => "not_configured",
            State::Available(_) => "available",
            State::Unavailable(_) => "unavailable",
        }
    }

    /// One line for people and agents.
    pub fn detail(&self) -> String {
        match self {
            State::NotConfigured(m) | State::Unavailable(m) => m.clone(),
            State::Available(s) => {
                let backend = match s.backend {
                    sluice_sandbox_protocol::Backend::Native => "native",
                    sluice_sandbox_protocol::Backend::Gvisor => "gvisor",
                };
                let mut text = format!(
                    "backend {backend}, python {}, daemon {}; {}/{} runs, {}/{} sessions",
                    s.python,
                    s.version,
                    s.capacity.running,
                    s.capacity.max_concurrency,
                    s.capacity.sessions,
                    s.capacity.max_sessions
                );
                if s.degraded {
                    let missing: Vec<&str> = s
                        .protections
                        .iter()
                        .filter(|p| p.required && p.state == ProtectionState::Missing)
                        .map(|p| p.name.as_str())
                        .collect();
                    text.push_str(&format!(
                        "; DEGRADED (started with allow_degraded), missing: {}",
                        missing.join(", ")
                    ));
                }
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthContext, Scopes};

    fn ctx(session: &str) -> CallContext {
        CallContext {
            auth: AuthContext {
                org_id: "local".into(),
                key_id: "k".into(),
                key_name: "k".into(),
                key_prefix: "sluice_k".into(),
                scopes: Scopes::all(),
                tools: crate::auth::ToolList::all(),
                connections: crate::auth::ConnectionGrants::all(),
            },
            session_id: Some(session.into()),
            request_id: "test-request".into(),
            cancel: tokio_util::sync::CancellationToken::new(),
            progress: None,
            traceparent: None,
        }
    }

    fn list(session: SessionKey) -> Request {
        Request::ListDirectory(sluice_sandbox_protocol::PathArgs {
            session,
            path: ".".into(),
        })
    }

    /// A workspace belongs to an org, a key and an MCP session: the same session id and key id in another
    /// org name another workspace (the daemon keys workspaces by all three).
    #[test]
    fn workspaces_are_keyed_by_org_key_and_session() {
        let mut other_org = ctx("s1");
        other_org.auth.org_id = "acme".into();
        let (a, _) = Sandbox::session_key(&ctx("s1"));
        let (b, _) = Sandbox::session_key(&other_org);
        assert_ne!(a, b);
        assert_eq!((a.org.as_str(), b.org.as_str()), ("local", "acme"));
        let (c, ephemeral) = Sandbox::session_key(&ctx("s1"));
        assert_eq!((a, ephemeral), (c, false));
    }

    #[tokio::test]
    async fn an_ended_session_opens_no_new_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::connect(dir.path().join("no-daemon.sock"), "start one", 30);
        // Nothing was open for the session, so the daemon (absent here) is not even asked.
        assert_eq!(sandbox.close_session_workspaces("ended").await, 0);
        // A call still running in the ended session is refused before it reaches the daemon...
        let e = sandbox
            .call(&ctx("ended"), list, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            "this MCP session has ended and its sandbox workspace was removed; start a new session"
        );
        // ...while another session's call goes to the daemon, which is down.
        let e = sandbox
            .call(&ctx("live"), list, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.message.starts_with("sandbox unavailable: "), "{}", e.message);
        assert!(e.message.ends_with("; start one"), "{}", e.message);
    }
}
