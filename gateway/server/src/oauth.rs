//! The gateway as an OAuth 2.1 resource server at the HTTP edge (MCP authorization, revisions 2025-06-18 and
//! 2025-11-25): the protected resource metadata (RFC 9728), the `WWW-Authenticate` challenges that point
//! clients to it, access tokens checked by the core's [`Verifier`], and the 403 `insufficient_scope` for a
//! `tools/call` or `resources/read` a token's scopes do not cover.
//!
//! Without `[oauth]` none of this exists: no metadata routes (404, so clients know there is no
//! authorization server to find) and the API-key challenges are unchanged.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sluice_core::auth::{AuthContext, AuthFailure, Scope};
use sluice_core::config::Settings;
use sluice_core::error::GatewayError;
use sluice_core::oauth::{Principal, Refusal, Verifier};

use crate::tools::Catalogue;

/// RFC 9728's well-known path; the form for a resource with a path appends that path.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// What the edge needs to act as a resource server.
#[derive(Debug)]
pub struct Resource {
    verifier: Arc<Verifier>,
    /// The metadata document, built once.
    metadata: serde_json::Value,
    /// Where the metadata is served for this resource (what the challenges name).
    metadata_url: String,
    /// The paths the metadata is served at on this server.
    metadata_paths: Vec<String>,
    /// The scope each tool needs, from the catalogue.
    tool_scopes: HashMap<String, Scope>,
    max_body: usize,
}

impl Resource {
    /// The resource server, when `[oauth]` is configured.
    pub fn new(settings: &Settings, catalogue: &Catalogue) -> Result<Option<Arc<Resource>>, GatewayError> {
        let Some(oauth) = &settings.oauth else {
            return Ok(None);
        };
        let resource = url::Url::parse(&oauth.resource)
            .map_err(|e| GatewayError::Config(format!("[oauth] resource: {e}")))?;
        let path = resource.path().trim_end_matches('/');
        let metadata_url = format!("{}{WELL_KNOWN}{path}", resource.origin().ascii_serialization());
        let mut metadata_paths = vec![WELL_KNOWN.to_owned()];
        if !path.is_empty() {
            metadata_paths.push(format!("{WELL_KNOWN}{path}"));
        }
        let metadata = serde_json::json!({
            "resource": oauth.resource,
            "authorization_servers": [oauth.issuer],
            "scopes_supported": oauth.scopes.keys().collect::<Vec<_>>(),
            "bearer_methods_supported": ["header"],
            "resource_name": "Sluice",
        });
        let tool_scopes = catalogue
            .tools()
            .iter()
            .filter_map(|t| {
                let spec = catalogue.get(&t.name)?;
                Some((t.name.to_string(), spec.scope?))
            })
            .collect();
        let verifier = Verifier::new(oauth.clone())?;
        tokio::spawn({
            let verifier = Arc::clone(&verifier);
            async move { verifier.prefetch().await }
        });
        Ok(Some(Arc::new(Resource {
            verifier,
            metadata,
            metadata_url,
            metadata_paths,
            tool_scopes,
            max_body: settings.max_request_bytes,
        })))
    }

    /// Checks an access token; on success the caller as the pipeline sees it, and the principal.
    pub async fn verify(&self, token: &str) -> Result<(AuthContext, Principal), Refusal> {
        let principal = self.verifier.verify(token).await?;
        tracing::debug!(subject = %principal.subject, org = %principal.org_id, client = ?principal.client_id,
            scopes = %principal.scopes, "access token accepted");
        Ok((principal.auth_context(), principal))
    }

    /// `resource_metadata="…"` plus the given parameters, as one `Bearer` challenge.
    fn challenge(&self, params: &[(&str, &str)]) -> Option<HeaderValue> {
        let mut text = format!("Bearer resource_metadata=\"{}\"", self.metadata_url);
        for (name, value) in params {
            // A quoted-string carries no quotes or backslashes, and a header no control characters.
            let value: String = value
                .chars()
                .map(|c| {
                    if c == '"' || c == '\\' || c == '`' {
                        '\''
                    } else {
                        c
                    }
                })
                .filter(|c| !c.is_control())
                .collect();
            text.push_str(&format!(", {name}=\"{value}\""));
        }
        HeaderValue::from_str(&text).ok()
    }

    fn answer(
        &self,
        status: StatusCode,
        error: &str,
        message: &str,
        challenge: Option<HeaderValue>,
    ) -> Response {
        let body = serde_json::json!({ "error": error, "message": message });
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(value) = challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }

    /// The 401 for a refused token (503 when the issuer's keys cannot be had: not the client's fault).
    pub fn refused_token(&self, refusal: &Refusal) -> Response {
        let description = refusal.description(self.verifier.settings());
        if *refusal == Refusal::Unavailable {
            return self.answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                &description,
                None,
            );
        }
        let challenge = self.challenge(&[("error", "invalid_token"), ("error_description", &description)]);
        self.answer(StatusCode::UNAUTHORIZED, "invalid_token", &description, challenge)
    }

    /// The 401 for a missing or bad API key, naming the metadata so that an OAuth client can start the
    /// flow. Without credentials it carries the scopes a client should ask for (MCP 2025-11-25).
    pub fn refused_key(&self, failure: AuthFailure) -> Response {
        let settings = self.verifier.settings();
        if failure == AuthFailure::Missing {
            let scopes = settings.default_request().join(" ");
            let message = "missing credentials: send an OAuth access token for this server, or an API key, as \
                           `Authorization: Bearer …`";
            let challenge = self.challenge(&[("scope", &scopes)]);
            return self.answer(StatusCode::UNAUTHORIZED, "unauthorized", message, challenge);
        }
        let challenge = self.challenge(&[
            ("error", "invalid_token"),
            ("error_description", failure.message()),
        ]);
        self.answer(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            failure.message(),
            challenge,
        )
    }

    /// The 403 for a call whose scope the token lacks: which scope, and the OAuth scopes to ask for — the
    /// token's own (those the mapping knows) plus one that grants it, as MCP 2025-11-25 recommends, so that
    /// a client that replaces its scopes with the challenge's (the TypeScript SDK does) loses none.
    fn insufficient_scope(
        &self,
        what: &str,
        needed: Scope,
        ctx: &AuthContext,
        principal: &Principal,
    ) -> Response {
        let settings = self.verifier.settings();
        let granting = settings.granting(needed).join(" ");
        let mut requested: Vec<&str> = principal
            .oauth_scopes
            .iter()
            .map(String::as_str)
            .filter(|s| settings.scopes.contains_key(*s))
            .collect();
        for scope in settings.granting(needed) {
            if !requested.contains(&scope) {
                requested.push(scope);
            }
        }
        let requested = requested.join(" ");
        let held = if ctx.scopes.iter().next().is_none() {
            "none".to_owned()
        } else {
            ctx.scopes.to_string()
        };
        let description = format!(
            "{what} needs the Sluice scope '{}' (OAuth scope {granting}); this token grants: {held}",
            needed.as_str()
        );
        let challenge = self.challenge(&[
            ("error", "insufficient_scope"),
            ("scope", &requested),
            ("error_description", &description),
        ]);
        self.answer(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            &description,
            challenge,
        )
    }

    /// The scope a JSON-RPC message needs, and what to call it in a refusal.
    fn needs(&self, message: &serde_json::Value) -> Option<(String, Scope)> {
        match message.get("method")?.as_str()? {
            "tools/call" => {
                let name = message.get("params")?.get("name")?.as_str()?;
                let scope = *self.tool_scopes.get(name)?;
                Some((format!("the tool {name}"), scope))
            }
            "resources/read" => Some(("reading a resource".to_owned(), Scope::Schema)),
            _ => None,
        }
    }
}

/// Adds the metadata routes (outside authentication; the document is public) when OAuth is configured.
pub fn metadata_routes<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    resource: Option<&Arc<Resource>>,
) -> Router<S> {
    let Some(resource) = resource else {
        return router;
    };
    resource.metadata_paths.iter().fold(router, |router, path| {
        let document = resource.metadata.clone();
        router.route(
            path,
            get(move || {
                let document = document.clone();
                async move {
                    // Public and the same for everyone: browser-based clients may read it from any origin.
                    let mut response = axum::Json(document).into_response();
                    response
                        .headers_mut()
                        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                    response
                }
            }),
        )
    })
}

/// For a request authenticated by an access token: a `tools/call` (or `resources/read`) that needs a scope
/// the token does not grant is answered 403 `insufficient_scope` here, before MCP, so that the client can
/// ask the authorization server for more (the MCP specification's step-up). API-key calls pass untouched;
/// for them the pipeline's scope check answers with a tool error, as it always has.
pub async fn require_tool_scope(
    State(resource): State<Option<Arc<Resource>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(resource) = resource else {
        return next.run(request).await;
    };
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let (Some(ctx), Some(principal)) = (
        request.extensions().get::<AuthContext>().cloned(),
        request.extensions().get::<Principal>().cloned(),
    ) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, resource.max_body).await else {
        let body = serde_json::json!({
            "error": "payload_too_large",
            "message": format!("the request body exceeds the {}-byte limit; send less data per call", resource.max_body),
        });
        return (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response();
    };
    // rmcp parses the body and answers anything malformed; only a well-formed call is judged here.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        let messages = match &value {
            serde_json::Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for message in messages {
            if let Some((what, scope)) = resource.needs(message)
                && !ctx.scopes.contains(scope)
            {
                tracing::info!(caller = %ctx.key_prefix, scope = scope.as_str(), "refused a call outside the token's scopes");
                return resource.insufficient_scope(&what, scope, &ctx, &principal);
            }
        }
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use sluice_core::config::oauth::OAuthSection;
    use sluice_core::testing;

    async fn resource(resource_url: &str) -> Arc<Resource> {
        let (services, _store, _dir) = testing::services().await;
        let catalogue = Catalogue::new(&services);
        let mut settings = (*services.settings).clone();
        settings.oauth = OAuthSection {
            issuer: Some("https://id.example.com".into()),
            resource: Some(resource_url.into()),
            ..OAuthSection::default()
        }
        .resolve()
        .unwrap();
        Resource::new(&settings, &catalogue).unwrap().unwrap()
    }

    #[tokio::test]
    async fn metadata_locations_follow_the_resource_path() {
        for (url, metadata_url, paths) in [
            (
                "https://sluice.example.com/mcp",
                "https://sluice.example.com/.well-known/oauth-protected-resource/mcp",
                vec![WELL_KNOWN.to_owned(), format!("{WELL_KNOWN}/mcp")],
            ),
            (
                "https://sluice.example.com",
                "https://sluice.example.com/.well-known/oauth-protected-resource",
                vec![WELL_KNOWN.to_owned()],
            ),
            (
                "https://example.com:8443/tools/sluice/mcp/",
                "https://example.com:8443/.well-known/oauth-protected-resource/tools/sluice/mcp",
                vec![WELL_KNOWN.to_owned(), format!("{WELL_KNOWN}/tools/sluice/mcp")],
            ),
        ] {
            let r = resource(url).await;
            assert_eq!(
                (r.metadata_url.as_str(), &r.metadata_paths),
                (metadata_url, &paths),
                "{url}"
            );
            assert_eq!(r.metadata["resource"], url);
        }
    }

    #[tokio::test]
    async fn calls_are_judged_by_the_catalogues_scope_and_challenges_stay_quoted() {
        let r = resource("https://sluice.example.com/mcp").await;
        let call = |method: &str, name: &str| serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"name": name, "uri": "x"}});
        let needs = |m: serde_json::Value| r.needs(&m).map(|(what, scope)| (what, scope.as_str()));
        assert_eq!(
            needs(call("tools/call", "query_database")),
            Some(("the tool query_database".into(), "query"))
        );
        assert_eq!(
            needs(call("tools/call", "list_tables")),
            Some(("the tool list_tables".into(), "schema"))
        );
        assert_eq!(
            needs(call("tools/call", "fs_write_file")),
            Some(("the tool fs_write_file".into(), "fs_write"))
        );
        assert_eq!(
            needs(call("resources/read", "")),
            Some(("reading a resource".into(), "schema"))
        );
        // Unknown tools and other methods are rmcp's to answer.
        assert_eq!(needs(call("tools/call", "no_such_tool")), None);
        assert_eq!(needs(call("tools/list", "")), None);

        let challenge = r
            .challenge(&[("error_description", "a \"quoted\" \\ value\n`x`")])
            .unwrap();
        assert_eq!(
            challenge.to_str().unwrap(),
            "Bearer resource_metadata=\"https://sluice.example.com/.well-known/oauth-protected-resource/mcp\", \
             error_description=\"a 'quoted' ' value'x'\""
        );
    }
}
