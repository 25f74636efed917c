//! OAuth 2.1 access tokens (the MCP authorization specification): JWTs from the `[oauth]` issuer, checked
//! against its keys ([`jwks`], [`jwt`]) and mapped to who is calling ([`claims`]). The front door decides
//! which bearer values are tokens ([`is_token`]) and answers refusals with its own status codes.
//!
//! A token becomes an [`AuthContext`] like an API key does, so the pipeline, budgets, cursors and the audit
//! log treat both alike; the token itself is never stored or logged, only its subject (as the audit log's
//! `key_prefix`, `oauth:<subject>`).

pub mod claims;
pub mod jwks;
pub mod jwt;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::{AuthContext, ConnectionGrants, KEY_MARKER, Scopes, ToolList};
use crate::config::oauth::OAuthSettings;
use crate::error::GatewayError;

/// What marks a token's caller where an API key's prefix would be (audit log, spans).
pub const CALLER_MARKER: &str = "oauth:";

/// Whether a presented bearer value is to be checked as an access token: anything that is not a Sluice API
/// key (those start with `sluice_`).
pub fn is_token(bearer: &str) -> bool {
    !bearer.starts_with(KEY_MARKER)
}

/// Why a token was refused; each becomes a 401 with `error="invalid_token"` and this description, except
/// [`Refusal::Unavailable`], which is the gateway's problem, not the token's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed(String),
    Unsigned,
    Algorithm(String),
    UnknownKey(Option<String>),
    KeyMismatch {
        kid: Option<String>,
        alg: &'static str,
    },
    BadSignature,
    Issuer(String),
    Audience(String),
    Expired {
        ago: u64,
    },
    NotYetValid {
        within: u64,
    },
    MissingClaim(&'static str),
    Claim(String),
    /// The issuer's keys could not be fetched.
    Unavailable,
}

impl Refusal {
    /// The `error_description`: what is wrong with the token, without echoing it.
    pub fn description(&self, settings: &OAuthSettings) -> String {
        match self {
            Refusal::Malformed(why) => format!("the access token is not a valid JWT: {why}"),
            Refusal::Unsigned => {
                "the access token is unsigned (alg none); tokens must be signed by the issuer".to_owned()
            }
            Refusal::Algorithm(alg) => format!(
                "the access token's algorithm {alg} is not accepted; tokens must be signed with one of the issuer's asymmetric keys ({})",
                jwt::Alg::NAMES
            ),
            Refusal::UnknownKey(Some(kid)) => {
                format!("the access token is signed with key '{kid}', which is not among the issuer's keys")
            }
            Refusal::UnknownKey(None) => {
                "the access token names no key (kid) and no single issuer key fits it".to_owned()
            }
            Refusal::KeyMismatch { kid, alg } => format!(
                "the issuer's key '{}' does not sign with {alg}",
                kid.as_deref().unwrap_or("(no kid)")
            ),
            Refusal::BadSignature => {
                "the access token's signature does not verify: it was altered or not signed by the issuer"
                    .to_owned()
            }
            Refusal::Issuer(iss) => format!(
                "the access token was issued by '{iss}', not by this server's issuer '{}'",
                settings.issuer
            ),
            Refusal::Audience(aud) => format!(
                "the access token is for audience '{aud}', not for this server ('{}'); request it with resource={}",
                settings.resource, settings.resource
            ),
            Refusal::Expired { ago } => format!("the access token expired {ago} s ago"),
            Refusal::NotYetValid { within } => {
                format!("the access token is not valid for another {within} s")
            }
            Refusal::MissingClaim(claim) => format!("the access token has no '{claim}' claim"),
            Refusal::Claim(why) => why.clone(),
            Refusal::Unavailable => {
                "the authorization server's signing keys are unavailable; try again shortly".to_owned()
            }
        }
    }
}

/// Who a valid token says is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub org_id: String,
    /// What the token's OAuth scopes and roles grant, by the `[oauth]` mapping.
    pub scopes: Scopes,
    /// The OAuth scopes the token carries.
    pub oauth_scopes: Vec<String>,
    pub roles: Vec<String>,
    /// The OAuth client the token was issued to (`client_id` or `azp`), for the log.
    pub client_id: Option<String>,
}

impl Principal {
    /// The caller as every front door and the pipeline see callers. The "key" is the subject: budgets,
    /// cursors and workspaces are per subject, and the audit log shows `oauth:<subject>`.
    pub fn auth_context(&self) -> AuthContext {
        let caller: String = format!("{CALLER_MARKER}{}", self.subject)
            .chars()
            .take(128)
            .collect();
        AuthContext {
            org_id: self.org_id.clone(),
            key_id: caller.clone(),
            key_name: self.subject.clone(),
            key_prefix: caller,
            scopes: self.scopes.clone(),
            tools: ToolList::all(),
            // Every connection of the token's org; per-connection grants for tokens would come from a
            // claim, which no issuer is asked for yet.
            connections: ConnectionGrants::all(),
        }
    }
}

/// Checks tokens for one issuer.
pub struct Verifier {
    settings: OAuthSettings,
    keys: jwks::KeyCache,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Verifier {
    pub fn new(settings: OAuthSettings) -> Result<Arc<Verifier>, GatewayError> {
        let keys =
            jwks::KeyCache::new(&settings).map_err(|e| GatewayError::Config(format!("[oauth]: {}", e.0)))?;
        Ok(Arc::new(Verifier { settings, keys }))
    }

    /// Fetches the issuer's keys ahead of the first token (a failure is logged and retried on demand).
    pub async fn prefetch(&self) {
        if let Err(e) = self.keys.current().await {
            tracing::warn!(error = %e.0, "could not fetch the issuer's signing keys at start");
        }
    }

    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// Checks a token: signature against the issuer's keys (fetched again once for an unknown `kid`,
    /// within the refresh limit), issuer, audience, time, then the claim mapping.
    pub async fn verify(&self, token: &str) -> Result<Principal, Refusal> {
        let keys = self.keys.current().await.map_err(|e| {
            tracing::warn!(error = %e.0, "no signing keys to check an access token with");
            Refusal::Unavailable
        })?;
        let rules = jwt::Rules {
            issuer: &self.settings.issuer,
            audience: &self.settings.resource,
            leeway: self.settings.leeway.as_secs(),
        };
        let claims = match jwt::verify(token, &keys, &rules, now()) {
            Err(Refusal::UnknownKey(kid)) => match self.keys.after_unknown_kid().await {
                Some(fresh) => jwt::verify(token, &fresh, &rules, now())?,
                None => return Err(Refusal::UnknownKey(kid)),
            },
            other => other?,
        };
        claims::principal(&claims, &self.settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::oauth::{OrgSource, default_scope_map};
    use base64::Engine as _;
    use pretty_assertions::assert_eq;
    use ring::signature::{Ed25519KeyPair, KeyPair as _};
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn enc(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A loopback HTTP server answering JSON documents by path (404 otherwise) and counting requests.
    struct Issuer {
        url: String,
        documents: Arc<Mutex<HashMap<String, serde_json::Value>>>,
        hits: Arc<Mutex<HashMap<String, usize>>>,
        total: Arc<AtomicUsize>,
    }

    impl Issuer {
        async fn start() -> Issuer {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let documents: Arc<Mutex<HashMap<String, serde_json::Value>>> = Arc::default();
            let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
            let total = Arc::new(AtomicUsize::new(0));
            let (d, h, t) = (Arc::clone(&documents), Arc::clone(&hits), Arc::clone(&total));
            tokio::spawn(async move {
                loop {
                    let Ok((mut socket, _)) = listener.accept().await else {
                        return;
                    };
                    let (d, h, t) = (Arc::clone(&d), Arc::clone(&h), Arc::clone(&t));
                    tokio::spawn(async move {
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            let Ok(n) = socket.read(&mut buf).await else {
                                return;
                            };
                            if n == 0 {
                                return;
                            }
                            request.extend_from_slice(&buf[..n]);
                        }
                        let text = String::from_utf8_lossy(&request);
                        let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                        t.fetch_add(1, Ordering::SeqCst);
                        *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                        let document = d.lock().unwrap().get(&path).cloned();
                        let (status, body) = match document {
                            Some(doc) => ("200 OK", doc.to_string()),
                            None => ("404 Not Found", "{}".to_owned()),
                        };
                        let response = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(response.as_bytes()).await;
                    });
                }
            });
            Issuer {
                url,
                documents,
                hits,
                total,
            }
        }

        fn serve(&self, path: &str, document: serde_json::Value) {
            self.documents.lock().unwrap().insert(path.to_owned(), document);
        }

        fn hits(&self, path: &str) -> usize {
            self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
        }
    }

    struct Key {
        pair: Ed25519KeyPair,
        kid: String,
    }

    impl Key {
        fn new(kid: &str) -> Key {
            let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
            Key {
                pair: Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap(),
                kid: kid.to_owned(),
            }
        }

        fn jwk(&self) -> serde_json::Value {
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": enc(self.pair.public_key().as_ref())})
        }

        fn token(&self, kid: &str, claims: &serde_json::Value) -> String {
            let header = serde_json::json!({"alg": "EdDSA", "kid": kid});
            let input = format!(
                "{}.{}",
                enc(header.to_string().as_bytes()),
                enc(claims.to_string().as_bytes())
            );
            let sig = self.pair.sign(input.as_bytes());
            format!("{input}.{}", enc(sig.as_ref()))
        }
    }

    fn settings(issuer: &Issuer, jwks_uri: Option<String>) -> OAuthSettings {
        OAuthSettings {
            issuer: issuer.url.clone(),
            resource: "http://127.0.0.1:1/mcp".into(),
            jwks_uri,
            leeway: Duration::from_secs(30),
            org: OrgSource::Fixed("local".into()),
            subject_claim: "sub".into(),
            role_claim: None,
            scopes: default_scope_map(),
            jwks_refresh_min: Duration::from_millis(300),
            jwks_cache: Duration::from_secs(3600),
        }
    }

    fn claims(issuer: &Issuer) -> serde_json::Value {
        serde_json::json!({"iss": issuer.url, "aud": "http://127.0.0.1:1/mcp", "sub": "ada",
            "exp": now() + 300, "scope": "sluice:query"})
    }

    #[tokio::test]
    async fn keys_are_discovered_cached_and_refreshed_for_a_new_kid_at_most_once_per_interval() {
        let issuer = Issuer::start().await;
        let (old, new) = (Key::new("old"), Key::new("new"));
        // RFC 8414's location is missing: OpenID Connect discovery is used.
        issuer.serve(
            "/.well-known/openid-configuration",
            serde_json::json!({"issuer": issuer.url, "jwks_uri": format!("{}/keys", issuer.url)}),
        );
        issuer.serve("/keys", serde_json::json!({"keys": [old.jwk()]}));
        let verifier = Verifier::new(settings(&issuer, None)).unwrap();
        let c = claims(&issuer);
        for _ in 0..3 {
            assert_eq!(
                verifier.verify(&old.token("old", &c)).await.map(|p| p.subject),
                Ok("ada".to_owned())
            );
        }
        assert_eq!(
            (
                issuer.hits("/.well-known/oauth-authorization-server"),
                issuer.hits("/keys")
            ),
            (1, 1)
        );

        // The issuer rotates; a token under the new key arrives within the refresh interval of the last
        // fetch: refused, and nothing is fetched.
        issuer.serve("/keys", serde_json::json!({"keys": [old.jwk(), new.jwk()]}));
        let rotated = new.token("new", &c);
        assert_eq!(
            verifier.verify(&rotated).await,
            Err(Refusal::UnknownKey(Some("new".into())))
        );
        assert_eq!(issuer.hits("/keys"), 1);
        // After the interval the unknown kid fetches the keys once, and the token is accepted.
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            verifier.verify(&rotated).await.map(|p| p.subject),
            Ok("ada".to_owned())
        );
        assert_eq!(issuer.hits("/keys"), 2);

        // A flood of made-up kids costs at most one fetch per interval.
        tokio::time::sleep(Duration::from_millis(350)).await;
        let mut flood = tokio::task::JoinSet::new();
        for i in 0..50 {
            let (verifier, token) = (Arc::clone(&verifier), new.token(&format!("bogus-{i}"), &c));
            flood.spawn(async move { verifier.verify(&token).await });
        }
        while let Some(result) = flood.join_next().await {
            assert!(matches!(result.unwrap(), Err(Refusal::UnknownKey(Some(_)))));
        }
        assert_eq!(issuer.hits("/keys"), 3);
        assert_eq!(issuer.total.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn metadata_naming_another_issuer_is_not_used_and_no_keys_is_unavailable() {
        let issuer = Issuer::start().await;
        issuer.serve(
            "/.well-known/oauth-authorization-server",
            serde_json::json!({"issuer": "https://impostor.example", "jwks_uri": format!("{}/keys", issuer.url)}),
        );
        issuer.serve("/keys", serde_json::json!({"keys": [Key::new("k").jwk()]}));
        let verifier = Verifier::new(settings(&issuer, None)).unwrap();
        let token = Key::new("k").token("k", &claims(&issuer));
        assert_eq!(verifier.verify(&token).await, Err(Refusal::Unavailable));
        assert_eq!(issuer.hits("/keys"), 0);
        // A failed fetch is not retried on the next request within the interval.
        assert_eq!(verifier.verify(&token).await, Err(Refusal::Unavailable));
        assert_eq!(issuer.hits("/.well-known/oauth-authorization-server"), 1);

        // A configured jwks_uri needs no metadata at all.
        let verifier = Verifier::new(settings(&issuer, Some(format!("{}/keys", issuer.url)))).unwrap();
        assert_eq!(verifier.verify(&token).await, Err(Refusal::BadSignature));
    }
}
