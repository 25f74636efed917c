//! The issuer's signing keys, fetched over HTTP and cached: discovered from the issuer's metadata (RFC 8414,
//! then OpenID Connect discovery) unless `[oauth] jwks_uri` names them, refreshed after `jwks_cache_secs`,
//! and fetched again for a token whose `kid` is unknown (a key rotation) — but at most once per
//! `jwks_refresh_min_secs`, so that a stream of tokens with made-up `kid`s cannot make the gateway hammer
//! the issuer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use super::jwt::JwkSet;
use crate::config::oauth::OAuthSettings;

/// The largest metadata or JWKS document read; real ones are a few KiB.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    keys: Option<Arc<JwkSet>>,
    fetched: Option<Instant>,
    /// The last fetch tried, successful or not: the refresh rate limit counts attempts.
    attempted: Option<Instant>,
    /// Discovered from the issuer's metadata (or configured).
    jwks_uri: Option<String>,
}

/// The cache. One fetch runs at a time; callers arriving meanwhile wait for it and use its result.
pub struct KeyCache {
    client: reqwest::Client,
    issuer: String,
    min_refresh: Duration,
    ttl: Duration,
    state: tokio::sync::Mutex<State>,
    /// The keys while fresh, for the common case: a read lock, no wait behind a fetch in progress.
    fresh: std::sync::RwLock<Option<(Arc<JwkSet>, Instant)>>,
}

/// Why no keys could be had; logged, never shown to the caller.
#[derive(Debug)]
pub struct FetchError(pub String);

impl KeyCache {
    pub fn new(settings: &OAuthSettings) -> Result<KeyCache, FetchError> {
        // reqwest is built without a bundled crypto provider; ring is the one the workspace already links
        // (rustls through sqlx). Installing it again is harmless, so the result is ignored.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError(format!("could not build the HTTP client: {e}")))?;
        Ok(KeyCache {
            client,
            issuer: settings.issuer.clone(),
            min_refresh: settings.jwks_refresh_min,
            ttl: settings.jwks_cache,
            fresh: std::sync::RwLock::new(None),
            state: tokio::sync::Mutex::new(State {
                jwks_uri: settings.jwks_uri.clone(),
                ..State::default()
            }),
        })
    }

    /// The keys to check a token with: the cached ones while fresh, else fetched (or, if the fetch fails,
    /// the stale ones).
    pub async fn current(&self) -> Result<Arc<JwkSet>, FetchError> {
        if let Some((keys, at)) = &*self.fresh.read().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(keys));
        }
        let mut state = self.state.lock().await;
        if let (Some(keys), Some(at)) = (&state.keys, state.fetched)
            && at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(keys));
        }
        self.refresh(&mut state).await
    }

    /// After an unknown `kid`: fetches again unless the last attempt was within the refresh interval.
    /// `None` = not refreshed (rate limited), the caller keeps its refusal.
    pub async fn after_unknown_kid(&self) -> Option<Arc<JwkSet>> {
        let mut state = self.state.lock().await;
        if state.attempted.is_some_and(|at| at.elapsed() < self.min_refresh) {
            return None;
        }
        self.refresh(&mut state).await.ok()
    }

    async fn refresh(&self, state: &mut State) -> Result<Arc<JwkSet>, FetchError> {
        if state.keys.is_none()
            && let Some(at) = state.attempted
            && at.elapsed() < self.min_refresh
        {
            return Err(FetchError(
                "the last attempt to fetch the issuer's keys failed moments ago".into(),
            ));
        }
        state.attempted = Some(Instant::now());
        match self.fetch(state).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                state.keys = Some(Arc::clone(&keys));
                state.fetched = Some(Instant::now());
                *self.fresh.write().unwrap_or_else(|p| p.into_inner()) =
                    Some((Arc::clone(&keys), Instant::now()));
                Ok(keys)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e.0, "could not fetch the issuer's signing keys");
                state.keys.clone().ok_or(e)
            }
        }
    }

    async fn fetch(&self, state: &mut State) -> Result<JwkSet, FetchError> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let document = self.get_json(&jwks_uri).await?;
        let (keys, skipped) = JwkSet::parse(&document).map_err(|e| FetchError(format!("{jwks_uri}: {e}")))?;
        if !skipped.is_empty() {
            tracing::debug!(
                jwks_uri,
                ?skipped,
                "keys of the issuer not used for access tokens"
            );
        }
        if keys.keys.is_empty() {
            return Err(FetchError(format!(
                "{jwks_uri} holds no signing key this server can use"
            )));
        }
        tracing::info!(
            jwks_uri,
            keys = keys.keys.len(),
            "fetched the issuer's signing keys"
        );
        Ok(keys)
    }

    /// The metadata locations for the issuer: RFC 8414's (the well-known segment before the issuer's
    /// path), then OpenID Connect's (appended to it).
    fn metadata_urls(&self) -> Vec<String> {
        let Ok(issuer) = Url::parse(&self.issuer) else {
            return Vec::new();
        };
        let path = issuer.path().trim_end_matches('/');
        let origin = issuer.origin().ascii_serialization();
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    }

    async fn discover(&self) -> Result<String, FetchError> {
        let mut errors = Vec::new();
        for url in self.metadata_urls() {
            let metadata = match self.get_json(&url).await {
                Ok(m) => m,
                Err(e) => {
                    errors.push(e.0);
                    continue;
                }
            };
            // RFC 8414 §3.3: metadata naming another issuer must not be used.
            if metadata.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
                errors.push(format!("{url} names another issuer than {}", self.issuer));
                continue;
            }
            let Some(jwks_uri) = metadata.get("jwks_uri").and_then(Value::as_str) else {
                errors.push(format!("{url} has no jwks_uri"));
                continue;
            };
            crate::config::oauth::check_endpoint("jwks_uri", jwks_uri)
                .map_err(|e| FetchError(e.to_string()))?;
            return Ok(jwks_uri.to_owned());
        }
        Err(FetchError(format!(
            "no usable issuer metadata: {}",
            errors.join("; ")
        )))
    }

    async fn get_json(&self, url: &str) -> Result<Value, FetchError> {
        let fail = |e: &dyn std::fmt::Display| FetchError(format!("{url}: {e}"));
        let mut response = self.client.get(url).send().await.map_err(|e| fail(&e))?;
        if !response.status().is_success() {
            return Err(fail(&format!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(&e))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(fail(&"the document is larger than 1 MiB"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| fail(&e))
    }
}
