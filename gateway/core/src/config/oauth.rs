//! `[oauth]`: Sluice as an OAuth 2.1 resource server — which issuer's JWT access tokens it accepts, the
//! resource URL they must be issued for, and how their claims and scopes become an org, a user and Sluice
//! scopes. Absent, the gateway takes API keys only and serves no protected resource metadata.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::auth::{Scope, Scopes};
use crate::error::GatewayError;

pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// More skew than this hides a broken clock rather than tolerating drift.
pub const MAX_LEEWAY_SECS: u64 = 300;
pub const DEFAULT_JWKS_REFRESH_MIN_SECS: u64 = 30;
pub const DEFAULT_JWKS_CACHE_SECS: u64 = 3_600;
/// The OAuth scopes the default `[oauth.scopes]` maps, one per Sluice scope: `sluice:query` → `query`.
pub const SCOPE_PREFIX: &str = "sluice:";

/// The section as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthSection {
    /// The authorization server's issuer identifier; tokens' `iss` must equal it exactly.
    pub issuer: Option<String>,
    /// This server's MCP endpoint as clients name it (`https://sluice.example.com/mcp`): the RFC 8707
    /// resource clients ask tokens for, published in the metadata. Tokens' `aud` must contain it.
    pub resource: Option<String>,
    /// The issuer's JWKS; discovered from its metadata when absent.
    pub jwks_uri: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: Option<u64>,
    /// Every token's org (default `local` when `org_claim` is not set).
    pub org: Option<String>,
    /// The claim naming the caller's org; a token without it is refused.
    pub org_claim: Option<String>,
    /// The claim naming the caller (default `sub`); it is what the audit log shows.
    pub subject_claim: Option<String>,
    /// A claim holding Sluice role names (`viewer`, `analyst`, `engineer`, `admin`), a string or a list.
    pub role_claim: Option<String>,
    /// OAuth scope → the Sluice scopes it grants. Default: `sluice:query` → `query`, and so on for
    /// `schema`, `sandbox`, `fs_write` and `admin`.
    pub scopes: Option<BTreeMap<String, Vec<String>>>,
    /// After an unknown `kid`, the JWKS is fetched again at most this often, in seconds.
    pub jwks_refresh_min_secs: Option<u64>,
    /// The JWKS is fetched again after this long, in seconds.
    pub jwks_cache_secs: Option<u64>,
}

/// Where a token's org comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrgSource {
    Fixed(String),
    Claim(String),
}

/// The resolved section.
#[derive(Clone, Debug, PartialEq)]
pub struct OAuthSettings {
    pub issuer: String,
    pub resource: String,
    pub jwks_uri: Option<String>,
    pub leeway: Duration,
    pub org: OrgSource,
    pub subject_claim: String,
    pub role_claim: Option<String>,
    /// OAuth scope → Sluice scopes.
    pub scopes: BTreeMap<String, Scopes>,
    pub jwks_refresh_min: Duration,
    pub jwks_cache: Duration,
}

fn invalid(key: &str, why: impl std::fmt::Display) -> GatewayError {
    GatewayError::Config(format!("[oauth] {key}: {why}"))
}

/// An `https` URL, or `http` on a loopback host (a provider on the test machine): OAuth 2.1 requires TLS
/// for everything else. No fragment; `what` names the key in the message.
fn endpoint(key: &str, text: &str, query_allowed: bool) -> Result<Url, GatewayError> {
    let url = Url::parse(text.trim()).map_err(|e| invalid(key, format!("'{text}' is not a URL ({e})")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(invalid(
                key,
                format!("'{text}' must use https (http only on a loopback host)"),
            ));
        }
        other => return Err(invalid(key, format!("'{text}' has scheme {other}; use https"))),
    }
    if url.fragment().is_some() {
        return Err(invalid(key, format!("'{text}' must not have a #fragment")));
    }
    if !query_allowed && url.query().is_some() {
        return Err(invalid(key, format!("'{text}' must not have a ?query")));
    }
    Ok(url)
}

/// Checks a URL the gateway fetches (a discovered `jwks_uri`) by the rules of [`endpoint`].
pub fn check_endpoint(key: &str, text: &str) -> Result<(), GatewayError> {
    endpoint(key, text, true).map(drop)
}

fn claim_name(key: &str, name: &str) -> Result<String, GatewayError> {
    if name.trim().is_empty() {
        return Err(invalid(key, "a claim name must not be empty"));
    }
    Ok(name.trim().to_owned())
}

/// The default `[oauth.scopes]`: `sluice:<scope>` for each Sluice scope.
pub fn default_scope_map() -> BTreeMap<String, Scopes> {
    Scope::ALL
        .into_iter()
        .map(|s| (format!("{SCOPE_PREFIX}{}", s.as_str()), [s].into_iter().collect()))
        .collect()
}

impl OAuthSection {
    /// `None` when the section sets nothing at all (OAuth off).
    pub fn resolve(self) -> Result<Option<OAuthSettings>, GatewayError> {
        let OAuthSection {
            issuer,
            resource,
            jwks_uri,
            leeway_secs,
            org,
            org_claim,
            subject_claim,
            role_claim,
            scopes,
            jwks_refresh_min_secs,
            jwks_cache_secs,
        } = self;
        let anything = issuer.is_some()
            || resource.is_some()
            || jwks_uri.is_some()
            || leeway_secs.is_some()
            || org.is_some()
            || org_claim.is_some()
            || subject_claim.is_some()
            || role_claim.is_some()
            || scopes.is_some()
            || jwks_refresh_min_secs.is_some()
            || jwks_cache_secs.is_some();
        if !anything {
            return Ok(None);
        }
        let issuer = issuer.ok_or_else(|| {
            invalid(
                "issuer",
                "missing: name the authorization server whose tokens are accepted",
            )
        })?;
        endpoint("issuer", &issuer, false)?;
        let resource = resource.ok_or_else(|| {
            invalid(
                "resource",
                "missing: give this server's MCP URL as clients reach it (e.g. https://sluice.example.com/mcp)",
            )
        })?;
        endpoint("resource", &resource, false)?;
        let jwks_uri = jwks_uri
            .map(|u| endpoint("jwks_uri", &u, true).map(|_| u.trim().to_owned()))
            .transpose()?;
        let leeway_secs = leeway_secs.unwrap_or(DEFAULT_LEEWAY_SECS);
        if leeway_secs > MAX_LEEWAY_SECS {
            return Err(invalid(
                "leeway_secs",
                format!("{leeway_secs} is more than {MAX_LEEWAY_SECS} seconds of clock skew"),
            ));
        }
        let org = match (org, org_claim) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "org_claim",
                    "set either org (one org for every token) or org_claim (the org from each token), not both",
                ));
            }
            (Some(org), None) => {
                crate::config::check_name("org", &org).map_err(|e| invalid("org", e))?;
                OrgSource::Fixed(org)
            }
            (None, Some(claim)) => OrgSource::Claim(claim_name("org_claim", &claim)?),
            (None, None) => OrgSource::Fixed(crate::store::LOCAL_ORG.to_owned()),
        };
        let subject_claim = claim_name("subject_claim", subject_claim.as_deref().unwrap_or("sub"))?;
        let role_claim = role_claim.map(|c| claim_name("role_claim", &c)).transpose()?;
        let scopes = match scopes {
            None => default_scope_map(),
            Some(map) => {
                let mut out = BTreeMap::new();
                for (oauth, granted) in map {
                    if oauth.is_empty() || oauth.contains(char::is_whitespace) || oauth.contains('"') {
                        return Err(invalid(
                            "scopes",
                            format!("'{oauth}' is not an OAuth scope (no spaces or quotes)"),
                        ));
                    }
                    let granted = Scopes::parse_list(&granted.join(" "))
                        .map_err(|e| invalid(&format!("scopes.\"{oauth}\""), e))?;
                    out.insert(oauth, granted);
                }
                if out.is_empty() {
                    return Err(invalid(
                        "scopes",
                        "maps no OAuth scope; leave it out for the default",
                    ));
                }
                out
            }
        };
        let jwks_refresh_min_secs = jwks_refresh_min_secs.unwrap_or(DEFAULT_JWKS_REFRESH_MIN_SECS);
        if jwks_refresh_min_secs == 0 {
            return Err(invalid(
                "jwks_refresh_min_secs",
                "must be at least 1, so that bad tokens cannot make the gateway hammer the issuer",
            ));
        }
        let jwks_cache_secs = jwks_cache_secs.unwrap_or(DEFAULT_JWKS_CACHE_SECS);
        if jwks_cache_secs < jwks_refresh_min_secs {
            return Err(invalid(
                "jwks_cache_secs",
                format!("{jwks_cache_secs} must be at least jwks_refresh_min_secs ({jwks_refresh_min_secs})"),
            ));
        }
        Ok(Some(OAuthSettings {
            issuer: issuer.trim().to_owned(),
            resource: resource.trim().to_owned(),
            jwks_uri,
            leeway: Duration::from_secs(leeway_secs),
            org,
            subject_claim,
            role_claim,
            scopes,
            jwks_refresh_min: Duration::from_secs(jwks_refresh_min_secs),
            jwks_cache: Duration::from_secs(jwks_cache_secs),
        }))
    }
}

impl OAuthSettings {
    /// The OAuth scopes that grant `scope` (directly or through `admin`), for an `insufficient_scope`
    /// challenge.
    pub fn granting(&self, scope: Scope) -> Vec<&str> {
        let granting = |admin: bool| -> Vec<&str> {
            self.scopes
                .iter()
                .filter(|(_, granted)| {
                    granted.contains(scope) && granted.iter().any(|s| s == Scope::Admin) == admin
                })
                .map(|(oauth, _)| oauth.as_str())
                .collect()
        };
        // The narrowest scopes: a client should ask for `sluice:query`, not `sluice:admin`.
        let narrow = granting(false);
        if narrow.is_empty() { granting(true) } else { narrow }
    }

    /// The OAuth scopes a client should ask for by default (the 401 challenge's `scope`): those granting
    /// no more than a new API key gets (`query schema sandbox`).
    pub fn default_request(&self) -> Vec<&str> {
        let default = Scopes::default_for_new_keys();
        self.scopes
            .iter()
            .filter(|(_, granted)| granted.iter().all(|s| default.iter().any(|d| d == s)))
            .map(|(oauth, _)| oauth.as_str())
            .collect()
    }
}

impl OAuthSettings {
    /// The `[oauth]` section as `sluice config show` prints it (a valid config section).
    pub fn to_toml(&self) -> String {
        let text = |v: &str| toml::Value::String(v.to_owned()).to_string();
        let mut out = format!(
            "\n[oauth]\nissuer = {}\nresource = {}\n",
            text(&self.issuer),
            text(&self.resource)
        );
        match &self.jwks_uri {
            Some(uri) => out.push_str(&format!("jwks_uri = {}\n", text(uri))),
            None => out.push_str("# jwks_uri = not set (discovered from the issuer's metadata)\n"),
        }
        out.push_str(&format!("leeway_secs = {}\n", self.leeway.as_secs()));
        match &self.org {
            OrgSource::Fixed(org) => out.push_str(&format!("org = {}\n", text(org))),
            OrgSource::Claim(claim) => out.push_str(&format!("org_claim = {}\n", text(claim))),
        }
        out.push_str(&format!("subject_claim = {}\n", text(&self.subject_claim)));
        match &self.role_claim {
            Some(claim) => out.push_str(&format!("role_claim = {}\n", text(claim))),
            None => out.push_str("# role_claim = not set (roles come from no claim)\n"),
        }
        out.push_str(&format!(
            "jwks_refresh_min_secs = {}\njwks_cache_secs = {}\n\n[oauth.scopes]\n",
            self.jwks_refresh_min.as_secs(),
            self.jwks_cache.as_secs()
        ));
        for (oauth, granted) in &self.scopes {
            let granted: Vec<String> = granted.iter().map(|s| text(s.as_str())).collect();
            out.push_str(&format!("{} = [{}]\n", text(oauth), granted.join(", ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn resolve(text: &str) -> Result<Option<OAuthSettings>, String> {
        #[derive(Deserialize)]
        struct File {
            oauth: OAuthSection,
        }
        let file: File = toml::from_str(&format!("[oauth]\n{text}")).map_err(|e| e.to_string())?;
        file.oauth.resolve().map_err(|e| e.to_string())
    }

    const BASE: &str = "issuer = 'https://id.example.com'\nresource = 'https://sluice.example.com/mcp'\n";

    #[test]
    fn absent_is_off_and_defaults_are_filled_in() {
        assert_eq!(resolve("").unwrap(), None);
        let s = resolve(BASE).unwrap().unwrap();
        assert_eq!(
            s,
            OAuthSettings {
                issuer: "https://id.example.com".into(),
                resource: "https://sluice.example.com/mcp".into(),
                jwks_uri: None,
                leeway: Duration::from_secs(30),
                org: OrgSource::Fixed("local".into()),
                subject_claim: "sub".into(),
                role_claim: None,
                scopes: default_scope_map(),
                jwks_refresh_min: Duration::from_secs(30),
                jwks_cache: Duration::from_secs(3_600),
            }
        );
        assert_eq!(
            s.default_request(),
            ["sluice:query", "sluice:sandbox", "sluice:schema"]
        );
        assert_eq!(s.granting(Scope::Query), ["sluice:query"]);
        assert_eq!(s.granting(Scope::Admin), ["sluice:admin"]);
    }

    #[test]
    fn every_mistake_names_its_key() {
        for (text, expected) in [
            ("resource = 'https://s/mcp'\n", "[oauth] issuer: missing"),
            ("issuer = 'https://id'\n", "[oauth] resource: missing"),
            (
                "issuer = 'http://id.example.com'\nresource = 'https://s/mcp'\n",
                "[oauth] issuer: 'http://id.example.com' must use https (http only on a loopback host)",
            ),
            (
                "issuer = 'id.example.com'\nresource = 'https://s/mcp'\n",
                "[oauth] issuer: 'id.example.com' is not a URL",
            ),
            (
                "issuer = 'https://id'\nresource = 'https://s/mcp#x'\n",
                "[oauth] resource: 'https://s/mcp#x' must not have a #fragment",
            ),
            (
                "issuer = 'https://id'\nresource = 'https://s/mcp'\njwks_uri = 'ftp://id/keys'\n",
                "[oauth] jwks_uri: 'ftp://id/keys' has scheme ftp; use https",
            ),
            (
                "issuer = 'https://id'\nresource = 'https://s/mcp'\nleeway_secs = 3600\n",
                "[oauth] leeway_secs: 3600 is more than 300 seconds of clock skew",
            ),
            (
                "issuer = 'https://id'\nresource = 'https://s/mcp'\norg = 'a'\norg_claim = 'org'\n",
                "[oauth] org_claim: set either org",
            ),
            (
                "issuer = 'https://id'\nresource = 'https://s/mcp'\norg = '1 x'\n",
                "[oauth] org: invalid org name",
            ),
            (
                "issuer = 'https://id'\nresource = 'https://s/mcp'\nrole_claim = ' '\n",
                "[oauth] role_claim: a claim name",
            ),
            (
                "issuer = 'https://id'\nresource = 'https://s/mcp'\n[oauth.scopes]\n'read' = ['query', 'write']\n",
                "[oauth] scopes.\"read\": unknown scope 'write'",
            ),
            (
                "issuer = 'https://id'\nresource = 'https://s/mcp'\n[oauth.scopes]\n'a b' = ['query']\n",
                "[oauth] scopes: 'a b' is not an OAuth scope",
            ),
            (
                "issuer = 'https://id'\nresource = 'https://s/mcp'\njwks_refresh_min_secs = 0\n",
                "[oauth] jwks_refresh_min_secs: must be at least 1",
            ),
            (
                "issuer = 'https://id'\nresource = 'https://s/mcp'\naudience = 'x'\n",
                "unknown field `audience`",
            ),
        ] {
            let err = resolve(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn shown_as_a_section_that_reads_back_the_same() {
        let s = resolve(&format!("{BASE}org_claim = 'tenant'\nrole_claim = 'roles'\n"))
            .unwrap()
            .unwrap();
        let shown = s.to_toml();
        assert!(
            shown.contains("\n[oauth]\nissuer = \"https://id.example.com\"\n"),
            "{shown}"
        );
        assert!(
            shown.contains("\"sluice:fs_write\" = [\"fs_write\"]\n"),
            "{shown}"
        );
        let again = resolve(shown.trim_start().trim_start_matches("[oauth]\n"))
            .unwrap()
            .unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn loopback_http_claims_and_a_custom_scope_map() {
        let s = resolve(
            "issuer = 'http://127.0.0.1:4000'\nresource = 'http://localhost:3300/mcp'\norg_claim = 'tenant'\n\
             role_claim = 'roles'\n[oauth.scopes]\n'data.read' = ['query', 'schema']\n'data.admin' = ['admin']\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.org, OrgSource::Claim("tenant".into()));
        assert_eq!(s.role_claim.as_deref(), Some("roles"));
        assert_eq!(s.default_request(), ["data.read"]);
        assert_eq!(s.granting(Scope::Schema), ["data.read"]);
        assert_eq!(s.granting(Scope::FsWrite), ["data.admin"]);
    }
}
