//! API keys at the HTTP edge: the presented key is read from the request and verified by the core's
//! [`Authenticator`]; a request without a valid key gets a 401 with `WWW-Authenticate` and never reaches MCP.
//!
//! Before the key is looked at, the client's address must be within its rate and not locked out (the core's
//! [`EdgeLimits`]); otherwise the answer is a 429 with `Retry-After`. Every failed authentication counts
//! against the address, so one that keeps presenting bad keys is locked out with a growing backoff.
//!
//! With `[oauth]`, a bearer value that is not an API key (`sluice_…`) is an OAuth access token, checked by
//! [`crate::oauth`]; its failures count against the address the same way.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_core::auth::{AuthFailure, Authenticator};
use sluice_core::rate_limit::{EdgeLimits, Refusal};

/// The JSON-RPC error code of a request refused by a rate limit or lockout (in the range JSON-RPC leaves to
/// servers; 429 in its last digits).
pub const RATE_LIMITED_CODE: i64 = -32029;

/// What the edge checks a request with: the key and the address's limits.
#[derive(Clone)]
pub struct Edge {
    pub auth: Arc<Authenticator>,
    pub limits: Arc<EdgeLimits>,
    /// With `[oauth]`: bearer values that are not API keys are access tokens, checked here.
    pub oauth: Option<Arc<crate::oauth::Resource>>,
}

/// The 429 for a request over its address's rate or from a locked-out address: `Retry-After` in whole
/// seconds, and a JSON-RPC error body whose message says which limit, the numbers and when to retry.
fn too_many_requests(refusal: &Refusal) -> Response {
    let retry_after = refusal.retry_after_secs();
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": RATE_LIMITED_CODE,
            "message": refusal.message(),
            "data": { "limit": refusal.limit.as_str(), "retry_after_secs": retry_after },
        },
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// The client's address: the connection's peer, or what trusted proxies say in `X-Forwarded-For`.
fn client_address(limits: &EdgeLimits, request: &Request) -> IpAddr {
    // Without connection info (a router driven in-process) every request is one unknown client.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let forwarded: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    limits.client(peer, &forwarded)
}

/// The 401 for a failed authentication, with the `WWW-Authenticate` challenge RFC 6750 describes.
fn unauthorized(failure: AuthFailure) -> Response {
    sluice_core::metrics::auth_failed(failure.reason());
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

/// The axum middleware: refuses an address over its limits (429), then authenticates or answers 401; on
/// success the [`AuthContext`] rides along in the request extensions, where the MCP handler reads it.
pub async fn require_key(State(edge): State<Edge>, mut request: Request, next: Next) -> Response {
    let client = client_address(&edge.limits, &request);
    if let Err(refusal) = edge.limits.admit(client) {
        tracing::info!(client = %client, limit = refusal.limit.as_str(), retry_after = refusal.retry_after_secs(), "refused a request over its limit");
        return too_many_requests(&refusal);
    }
    let presented = presented_key(&request);
    if let (Some(oauth), Ok(token)) = (&edge.oauth, &presented)
        && sluice_core::oauth::is_token(token)
    {
        // A token whose org this gateway does not have is refused, not let in to see nothing.
        let verified = match oauth.verify(token).await {
            Ok((ctx, _)) if !edge.auth.org_exists(&ctx.org_id).await => {
                Err(sluice_core::oauth::Refusal::Claim(format!(
                    "the token's organization '{}' does not exist on this gateway; an operator creates it with \
                     `sluice org create --name {}`",
                    ctx.org_id, ctx.org_id
                )))
            }
            other => other,
        };
        return match verified {
            Ok((ctx, principal)) => {
                edge.limits.auth_succeeded(client);
                request.extensions_mut().insert(ctx);
                request.extensions_mut().insert(principal);
                next.run(request).await
            }
            Err(refusal) => {
                tracing::info!(reason = ?refusal, client = %client, path = %request.uri().path(), "rejected an access token");
                // An issuer that cannot be reached is not the client's failure.
                if refusal != sluice_core::oauth::Refusal::Unavailable
                    && let Some(lockout) = edge.limits.auth_failed(client)
                {
                    tracing::warn!(client = %client, lockout_secs = lockout.as_secs(), "address locked out after failed authentications");
                }
                oauth.refused_token(&refusal)
            }
        };
    }
    let ctx = match presented {
        Ok(key) => edge.auth.verify(&key).await,
        Err(failure) => Err(failure),
    };
    match ctx {
        Ok(ctx) => {
            edge.limits.auth_succeeded(client);
            request.extensions_mut().insert(ctx);
            next.run(request).await
        }
        Err(failure) => {
            tracing::info!(reason = ?failure, client = %client, path = %request.uri().path(), "rejected unauthenticated request");
            if let Some(lockout) = edge.limits.auth_failed(client) {
                tracing::warn!(client = %client, lockout_secs = lockout.as_secs(), "address locked out after failed authentications");
            }
            match &edge.oauth {
                Some(oauth) => oauth.refused_key(failure),
                None => unauthorized(failure),
            }
        }
    }
}
