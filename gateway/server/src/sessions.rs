//! MCP sessions and what they leave behind: rmcp's in-memory session manager, plus the clean-up of a
//! session's sandbox workspaces and result cursors as soon as the session ends.
//!
//! rmcp ends a session in one place, [`SessionManager::close_session`]: for a client's `DELETE /mcp`, and
//! also when the session's worker stops — its keep-alive expired (no request for
//! `[server] session_idle_secs`, 5 minutes by default), the client vanished, or the gateway shuts down —
//! because the service that ran the session calls `close_session` after it. Wrapping that one method
//! therefore sees every end of a session, expiry included, without polling. The sandbox daemon's own idle
//! expiry (`session_ttl_secs`) stays the backstop for a gateway that dies or a daemon that is down.

use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::WorkerTransport;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker,
};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};

use sluice_core::cursors::Cursors;
use sluice_core::sandbox::Sandbox;

/// The session-scoped state that goes when a session ends.
#[derive(Clone)]
pub struct SessionState {
    sandbox: Arc<Sandbox>,
    cursors: Arc<Cursors>,
}

impl SessionState {
    pub fn new(sandbox: Arc<Sandbox>, cursors: Arc<Cursors>) -> Self {
        SessionState { sandbox, cursors }
    }

    /// Drops the session's cursors now and closes its workspaces in the background, so that the DELETE
    /// (or the expiry) never waits on the daemon, and a daemon that is down fails nothing.
    fn ended(&self, id: &str) {
        let cursors = self.cursors.drop_session(id);
        let state = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move { state.close_workspaces(&id, cursors).await });
    }

    /// Drops the session's cursors and closes its sandbox workspaces, waiting for the daemon (a stdio
    /// session ends with the process, so nothing may be left to a background task).
    pub async fn end(&self, id: &str) {
        let cursors = self.cursors.drop_session(id);
        self.close_workspaces(id, cursors).await;
    }

    async fn close_workspaces(&self, id: &str, cursors: usize) {
        let workspaces = self.sandbox.close_session_workspaces(id).await;
        // Session ids are bearer-like: the log gets a prefix, enough to follow one session.
        let short: String = id.chars().take(8).collect();
        tracing::info!(
            session = %short,
            "MCP session ended: dropped {cursors} result cursors, closed {workspaces} sandbox workspaces"
        );
    }
}

/// rmcp's [`LocalSessionManager`], plus clean-up of the session-scoped state when a session ends.
pub struct Sessions {
    inner: LocalSessionManager,
    state: SessionState,
}

impl Sessions {
    /// Sessions that end after `idle` without a request (`[server] session_idle_secs`).
    pub fn new(state: SessionState, idle: Duration) -> Self {
        let mut inner = LocalSessionManager::default();
        // rmcp's `SessionConfig` is non-exhaustive: set the one field on its defaults.
        inner.session_config.keep_alive = Some(idle);
        Sessions { inner, state }
    }
}

impl SessionManager for Sessions {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.inner.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        // rmcp calls this twice for a deleted session (the DELETE, then the worker's end), and a DELETE
        // may name a session that never existed: clean up only for a session that was live. (Two DELETEs
        // racing may both see it live; the clean-up is idempotent, so the second finds nothing.)
        let live = self.inner.has_session(id).await.unwrap_or(false);
        let result = self.inner.close_session(id).await;
        if live {
            self.state.ended(id);
        }
        result
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(&self, id: SessionId) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.inner.restore_session(id).await
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::body::Body;
    use http_body_util::BodyExt as _;
    use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
    use serde_json::Value;
    use tower::ServiceExt as _;

    use super::*;
    use sluice_core::cursors::{Owner, Remainder};

    /// The session lifecycle does not depend on what the server does with calls; this handler answers
    /// `initialize` with rmcp's defaults and nothing else.
    #[derive(Clone)]
    struct Bare;
    impl rmcp::ServerHandler for Bare {}

    type Service = StreamableHttpService<Bare, Sessions>;

    const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

    fn service(cursors: &Arc<Cursors>, keep_alive: Duration) -> Service {
        let sandbox = Arc::new(Sandbox::not_configured("not in this test", 30));
        let sessions = Sessions::new(SessionState::new(sandbox, Arc::clone(cursors)), keep_alive);
        StreamableHttpService::new(
            || Ok(Bare),
            Arc::new(sessions),
            StreamableHttpServerConfig::default(),
        )
    }

    fn request(method: &str, session: Option<&str>, body: &str) -> http::Request<Body> {
        let mut r = http::Request::builder()
            .method(method)
            .uri("http://localhost/mcp")
            .header("host", "localhost")
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r.body(Body::from(body.to_owned())).unwrap()
    }

    /// Opens a session and returns its id.
    async fn open(svc: &Service) -> String {
        let resp = svc.clone().oneshot(request("POST", None, INIT)).await.unwrap();
        assert_eq!(resp.status(), 200);
        let id = resp.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let body = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect())
            .await
            .unwrap()
            .unwrap()
            .to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("protocolVersion"));
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let resp = svc
            .clone()
            .oneshot(request("POST", Some(&id), initialized))
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        id
    }

    fn keep_cursor(cursors: &Cursors, session: &str) -> String {
        let owner = Owner {
            org_id: "local".into(),
            key_id: "k".into(),
            session_id: session.into(),
        };
        let remainder = Remainder {
            connection: "demo".into(),
            sql: "SELECT 1".into(),
            sql_executed: "SELECT 1".into(),
            columns: vec![],
            rows: vec![(vec![Value::from(1)], 2)],
            offset: 0,
            total_rows: 1,
            truncated: false,
            row_limit: 10,
        };
        cursors.keep(owner, None, remainder).unwrap()
    }

    /// Pings `session`; the response's status (the body read to its end).
    async fn ping(svc: &Service, session: &str) -> http::StatusCode {
        let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
        let resp = svc
            .clone()
            .oneshot(request("POST", Some(session), ping))
            .await
            .unwrap();
        let status = resp.status();
        resp.into_body().collect().await.unwrap();
        status
    }

    /// Ends `session` as a client does (`DELETE /mcp`); the response's status.
    async fn delete(svc: &Service, session: &str) -> http::StatusCode {
        svc.clone()
            .oneshot(request("DELETE", Some(session), ""))
            .await
            .unwrap()
            .status()
    }

    async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "{what} did not happen within 5 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_deleted_session_loses_its_cursors_and_only_its_own() {
        let cursors = Arc::new(Cursors::new(Duration::from_secs(600), 10, 1 << 20));
        let svc = service(&cursors, Duration::from_secs(600));
        let a = open(&svc).await;
        let b = open(&svc).await;
        keep_cursor(&cursors, &a);
        keep_cursor(&cursors, &a);
        keep_cursor(&cursors, &b);
        assert_eq!(cursors.usage().0, 3);

        assert_eq!(delete(&svc, &a).await, 202);
        // Cursors go before the DELETE is answered; the session is gone for the transport too.
        assert_eq!(cursors.usage().0, 1);
        assert_eq!(ping(&svc, &a).await, 404);
        // A DELETE of a session that does not exist (again, or never) touches nothing.
        for id in [a.as_str(), "no-such-session"] {
            assert_eq!(delete(&svc, id).await, 202);
        }
        assert_eq!(cursors.usage().0, 1);
    }

    #[tokio::test]
    async fn an_expired_session_loses_its_cursors() {
        let cursors = Arc::new(Cursors::new(Duration::from_secs(600), 10, 1 << 20));
        // Long enough that a loaded machine still pings within it; short enough to keep the test quick.
        let keep_alive = Duration::from_millis(1000);
        let svc = service(&cursors, keep_alive);
        let id = open(&svc).await;
        keep_cursor(&cursors, &id);
        // A session in use is not expired...
        for _ in 0..3 {
            tokio::time::sleep(keep_alive / 4).await;
            assert_eq!(ping(&svc, &id).await, 200);
        }
        assert_eq!(cursors.usage().0, 1);
        // ...an idle one is, through rmcp's keep-alive, and its state goes with it.
        wait_until("expiry", || cursors.usage().0 == 0).await;
        assert_eq!(ping(&svc, &id).await, 404);
    }
}
