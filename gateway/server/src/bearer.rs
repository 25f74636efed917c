//! API keys at the HTTP edge: the presented key is read from the request and verified by the core's
//! [`Authenticator`]; a request without a valid key gets a 401 with `WWW-Authenticate` and never reaches MCP.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_core::auth::{AuthFailure, Authenticator};

/// The 401 for a failed authentication, with the `WWW-Authenticate` challenge RFC 6750 describes.
fn unauthorized(failure: AuthFailure) -> Response {
    let (error, description) = match failure {
        AuthFailure::Missing => (None, failure.message()),
        _ => (Some("invalid_token"), failure.message()),
    };
    let challenge = match error {
        Some(error) => {
            format!("Bearer realm=\"sluice\", error=\"{error}\", error_description=\"{description}\"")
        }
        None => "Bearer realm=\"sluice\"".to_owned(),
    };
    let body = serde_json::json!({ "error": error.unwrap_or("unauthorized"), "message": description });
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge.replace('`', "'")) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Pulls the presented key from `Authorization: Bearer …` or `X-API-Key`.
fn presented_key(request: &Request) -> Result<String, AuthFailure> {
    let headers = request.headers();
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| AuthFailure::Malformed)?;
        let (scheme, rest) = text.trim().split_once(' ').ok_or(AuthFailure::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") || rest.trim().is_empty() {
            return Err(AuthFailure::Malformed);
        }
        return Ok(rest.trim().to_owned());
    }
    if let Some(value) = headers.get("x-api-key") {
        return value
            .to_str()
            .map(|s| s.trim().to_owned())
            .map_err(|_| AuthFailure::Malformed);
    }
    Err(AuthFailure::Missing)
}

/// The axum middleware: authenticates or answers 401; on success the [`AuthContext`] rides along in the
/// request extensions, where the MCP handler reads it.
pub async fn require_key(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let ctx = match presented_key(&request) {
        Ok(key) => auth.verify(&key).await,
        Err(failure) => Err(failure),
    };
    match ctx {
        Ok(ctx) => {
            request.extensions_mut().insert(ctx);
            next.run(request).await
        }
        Err(failure) => {
            tracing::info!(reason = ?failure, path = %request.uri().path(), "rejected unauthenticated request");
            unauthorized(failure)
        }
    }
}
