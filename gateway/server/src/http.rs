//! The HTTP edge: MCP at `/mcp` and `/`, health endpoints, body limits, address rate limits and
//! authentication.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use sluice_core::auth::Authenticator;

use crate::bearer::{Edge, require_key};
use crate::mcp::SluiceMcp;
use crate::sessions::Sessions;
use sluice_core::config::Settings;
use sluice_core::store::Store;

/// Builds the router. Everything except the health endpoints requires an API key. `sessions` holds the MCP
/// sessions and removes a session's workspaces and cursors when it ends.
pub fn router(
    settings: &Settings,
    store: Store,
    auth: Arc<Authenticator>,
    make_mcp: impl Fn() -> SluiceMcp + Send + Sync + 'static,
    sessions: Sessions,
    shutdown: CancellationToken,
    oauth: Option<Arc<crate::oauth::Resource>>,
) -> Router {
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(settings.allowed_hosts.clone())
        .with_allowed_origins(settings.allowed_origins.clone())
        .with_max_request_body_bytes(settings.max_request_bytes)
        .with_cancellation_token(shutdown.child_token());
    if settings.stateless {
        config = config.with_legacy_session_mode(false).with_json_response(true);
    }
    let mcp: StreamableHttpService<SluiceMcp, Sessions> =
        StreamableHttpService::new(move || Ok(make_mcp()), Arc::new(sessions), config);

    // Address limits and the lockout guard the MCP routes only; health checks are never limited.
    let limits = Arc::new(sluice_core::rate_limit::EdgeLimits::new(&settings.rate_limits));
    limits.sweep_every(shutdown.clone());
    let edge = Edge {
        auth,
        limits,
        oauth: oauth.clone(),
    };
    let max_body = settings.max_request_bytes;
    Router::new()
        .nest_service("/mcp", mcp.clone())
        .route_service("/", mcp)
        .layer(axum::middleware::from_fn(move |req, next| {
            check_json_rpc(max_body, req, next)
        }))
        .layer(axum::middleware::from_fn(end_session))
        .layer(axum::middleware::from_fn_with_state(
            oauth.clone(),
            crate::oauth::require_tool_scope,
        ))
        .layer(axum::middleware::from_fn_with_state(edge, require_key))
        .merge(crate::oauth::metadata_routes(Router::new(), oauth.as_ref()))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(store)
        .layer(axum::middleware::from_fn(move |req, next| {
            limit_body(max_body, req, next)
        }))
}

/// Bodies beyond this are not drained before answering 413; the connection is simply closed.
const DRAIN_CAP: u64 = 16 * 1024 * 1024;

fn too_large(max_body: usize) -> Response {
    let body = serde_json::json!({
        "error": "payload_too_large",
        "message": format!("the request body exceeds the {max_body}-byte limit; send less data per call"),
    });
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
}

/// Reads and discards what the client is still sending (up to [`DRAIN_CAP`]), so that it receives the
/// 413 instead of a connection reset.
async fn drain(mut body: axum::body::Body) {
    use http_body_util::BodyExt as _;
    let mut seen: u64 = 0;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            seen += data.len() as u64;
        }
        if seen > DRAIN_CAP {
            break;
        }
    }
}

/// Refuses bodies whose declared length is over the limit before anything parses them (streamed bodies
/// are bounded where they are read, in [`check_json_rpc`]).
async fn limit_body(max_body: usize, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > max_body as u64 => {
            if len <= DRAIN_CAP {
                drain(request.into_body()).await;
            }
            too_large(max_body)
        }
        _ => next.run(request).await,
    }
}

/// A session ended with `DELETE` answers 204 No Content, not rmcp's 202 Accepted: the session is gone
/// when the response leaves (its cursors dropped, its workspaces closing), and clients expect 200 or 204
/// (the Python SDK logs "Session termination failed: 202" otherwise).
async fn end_session(request: Request, next: Next) -> Response {
    let delete = request.method() == axum::http::Method::DELETE;
    let response = next.run(request).await;
    if delete && response.status() == StatusCode::ACCEPTED {
        return StatusCode::NO_CONTENT.into_response();
    }
    response
}

/// JSON-RPC error bodies for messages rmcp would reject with a bare HTTP status: clients (and agents) get
/// the standard error codes and a message saying what was wrong.
fn json_rpc_error(code: i64, message: String) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code, "message": message },
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// Whether a parsed body is shaped like a JSON-RPC message (or a batch of them).
fn is_json_rpc(value: &serde_json::Value) -> bool {
    let one = |v: &serde_json::Value| {
        v.get("jsonrpc").and_then(serde_json::Value::as_str) == Some("2.0")
            && (v.get("method").is_some() || v.get("result").is_some() || v.get("error").is_some())
    };
    match value {
        serde_json::Value::Array(items) => !items.is_empty() && items.iter().all(one),
        other => one(other),
    }
}

/// Turns rmcp's bare 415 for a body it cannot decode into a JSON-RPC error saying what was wrong:
/// unparsable JSON is a -32700 parse error, and JSON that is not a JSON-RPC message a -32600 invalid
/// request. The body is collected here (bounded, so that an oversized stream gets a 413) and handed to
/// rmcp, which parses it once; only when rmcp refuses it is it parsed again, to find the reason.
async fn check_json_rpc(max_body: usize, request: Request, next: Next) -> Response {
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let mut body = body;
    let mut bytes = Vec::new();
    loop {
        use http_body_util::BodyExt as _;
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if bytes.len() + data.len() > max_body {
                        drain(body).await;
                        return too_large(max_body);
                    }
                    bytes.extend_from_slice(data);
                }
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "client body error");
                return (StatusCode::BAD_REQUEST, "could not read the request body").into_response();
            }
        }
    }
    let bytes = axum::body::Bytes::from(bytes);
    let response = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes.clone())))
        .await;
    // rmcp answers 415 for a body it cannot decode as an MCP message (and for a wrong Content-Type).
    if response.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response;
    }
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Err(e) => json_rpc_error(-32700, format!("Parse error: the body is not valid JSON ({e})")),
        Ok(value) if !is_json_rpc(&value) => json_rpc_error(
            -32600,
            "Invalid Request: expected a JSON-RPC 2.0 message with \"jsonrpc\": \"2.0\" and a method"
                .to_owned(),
        ),
        Ok(_) => response,
    }
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// The store answers; load balancers should route here.
async fn readyz(State(store): State<Store>) -> impl IntoResponse {
    match store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
        }
    }
}
