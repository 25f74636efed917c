//! A verified token's claims → who is calling: subject, org and Sluice scopes, by the `[oauth]` mapping.
//! Pure and table-tested.
//!
//! Scopes are the union of what the token's OAuth scopes grant (`scope`, space-separated as RFC 9068
//! writes it, or `scp` as a list or string) through `[oauth.scopes]`, and what its roles grant (the
//! `role_claim`, the roles of `sluice key create --role`: `viewer` → schema; `analyst` → query, schema,
//! sandbox; `engineer` → those and fs_write; `admin` → everything). Unknown OAuth scopes and role names are ignored: identity providers
//! put many unrelated ones in tokens.

use serde_json::{Map, Value};

use super::{Principal, Refusal};
use crate::auth::{Role, Scopes};
use crate::config::oauth::{OAuthSettings, OrgSource};

/// A claim as a list of strings: a space-separated string or an array of strings.
fn words(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// A string claim that names someone or something: present, non-empty, at most 255 characters, no
/// control characters.
fn name_claim<'a>(claims: &'a Map<String, Value>, claim: &str, what: &str) -> Result<&'a str, Refusal> {
    let value = claims.get(claim).ok_or_else(|| {
        Refusal::Claim(format!(
            "the token has no '{}' claim naming the {what}",
            super::jwt::shown(claim)
        ))
    })?;
    match value.as_str() {
        Some(s) if !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control) => Ok(s),
        _ => Err(Refusal::Claim(format!(
            "the token's '{}' claim is not a usable {what} (a string of 1-255 printable characters)",
            super::jwt::shown(claim)
        ))),
    }
}

/// Maps verified claims to a [`Principal`].
pub fn principal(claims: &Map<String, Value>, settings: &OAuthSettings) -> Result<Principal, Refusal> {
    let subject = name_claim(claims, &settings.subject_claim, "caller")?.to_owned();
    let org_id = match &settings.org {
        OrgSource::Fixed(org) => org.clone(),
        OrgSource::Claim(claim) => {
            let org = name_claim(claims, claim, "org")?;
            crate::config::check_name("org", org).map_err(|_| {
                Refusal::Claim(format!(
                    "the token's '{}' claim '{}' is not an org name (1-64 letters, digits, '_' or '-')",
                    super::jwt::shown(claim),
                    super::jwt::shown(org)
                ))
            })?;
            org.to_owned()
        }
    };
    let mut oauth_scopes = words(claims.get("scope"));
    if oauth_scopes.is_empty() {
        oauth_scopes = words(claims.get("scp"));
    }
    let roles: Vec<String> = settings
        .role_claim
        .as_deref()
        .map(|claim| words(claims.get(claim)))
        .unwrap_or_default();
    let scopes: Scopes = oauth_scopes
        .iter()
        .filter_map(|s| settings.scopes.get(s))
        .flat_map(|granted| granted.iter().collect::<Vec<_>>())
        .chain(
            roles
                .iter()
                .filter_map(|r| Role::parse(r).ok())
                .flat_map(|r| r.scopes().iter().collect::<Vec<_>>()),
        )
        .collect();
    let client_id = claims
        .get("client_id")
        .or_else(|| claims.get("azp"))
        .and_then(Value::as_str)
        .map(super::jwt::shown);
    Ok(Principal {
        subject,
        org_id,
        scopes,
        oauth_scopes,
        roles,
        client_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use std::time::Duration;

    fn settings(org: OrgSource, role_claim: Option<&str>) -> OAuthSettings {
        OAuthSettings {
            issuer: "https://id".into(),
            resource: "https://s/mcp".into(),
            jwks_uri: None,
            leeway: Duration::from_secs(30),
            org,
            subject_claim: "sub".into(),
            role_claim: role_claim.map(str::to_owned),
            scopes: crate::config::oauth::default_scope_map(),
            jwks_refresh_min: Duration::from_secs(30),
            jwks_cache: Duration::from_secs(3600),
        }
    }

    fn check(settings: &OAuthSettings, claims: Value, expected: Result<(&str, &str, &str), Refusal>) {
        let Value::Object(claims) = claims else {
            unreachable!()
        };
        let got = principal(&claims, settings).map(|p| (p.subject, p.org_id, p.scopes.to_string()));
        let expected = expected.map(|(s, o, sc)| (s.to_owned(), o.to_owned(), sc.to_owned()));
        assert_eq!(got, expected);
    }

    #[test]
    fn scopes_roles_and_org() {
        use serde_json::json;
        let fixed = settings(OrgSource::Fixed("local".into()), Some("roles"));
        let by_claim = settings(OrgSource::Claim("org".into()), None);
        for (s, claims, expected) in [
            (
                &fixed,
                json!({"sub": "ada", "scope": "openid sluice:query sluice:schema"}),
                Ok(("ada", "local", "query schema")),
            ),
            (
                &fixed,
                json!({"sub": "ada", "scp": ["sluice:sandbox", "offline_access"]}),
                Ok(("ada", "local", "sandbox")),
            ),
            (
                &fixed,
                json!({"sub": "ada", "scope": "profile"}),
                Ok(("ada", "local", "")),
            ),
            (
                &fixed,
                json!({"sub": "ada", "roles": "analyst"}),
                Ok(("ada", "local", "query schema sandbox")),
            ),
            (
                &fixed,
                json!({"sub": "ada", "roles": ["viewer", "Global Reader"], "scope": "sluice:fs_write"}),
                Ok(("ada", "local", "schema fs_write")),
            ),
            (
                &fixed,
                json!({"sub": "ada", "roles": ["engineer"]}),
                Ok(("ada", "local", "query schema sandbox fs_write")),
            ),
            (
                &fixed,
                json!({"sub": "root", "roles": "admin"}),
                Ok(("root", "local", "query schema sandbox fs_write admin")),
            ),
            (
                &fixed,
                json!({"scope": "sluice:query"}),
                Err(Refusal::Claim(
                    "the token has no 'sub' claim naming the caller".into(),
                )),
            ),
            (
                &fixed,
                json!({"sub": ""}),
                Err(Refusal::Claim(
                    "the token's 'sub' claim is not a usable caller (a string of 1-255 printable characters)"
                        .into(),
                )),
            ),
            (
                &fixed,
                json!({"sub": 7}),
                Err(Refusal::Claim(
                    "the token's 'sub' claim is not a usable caller (a string of 1-255 printable characters)"
                        .into(),
                )),
            ),
            // Without a role claim configured, a token's roles grant nothing.
            (
                &by_claim,
                json!({"sub": "bo", "org": "acme", "roles": "admin", "scope": "sluice:schema"}),
                Ok(("bo", "acme", "schema")),
            ),
            (
                &by_claim,
                json!({"sub": "bo"}),
                Err(Refusal::Claim(
                    "the token has no 'org' claim naming the org".into(),
                )),
            ),
            (
                &by_claim,
                json!({"sub": "bo", "org": "../acme"}),
                Err(Refusal::Claim(
                    "the token's 'org' claim '../acme' is not an org name (1-64 letters, digits, '_' or '-')"
                        .into(),
                )),
            ),
        ] {
            check(s, claims, expected);
        }
    }
}
