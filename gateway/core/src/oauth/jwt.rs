//! JWT access tokens checked against a JWK set: the signature (asymmetric algorithms only, each bound to
//! the key type that can make it), then issuer, audience and the time claims. Pure: the key set, the rules
//! and the clock come in, the claims or a [`Refusal`] go out.
//!
//! The header's `alg` is never trusted on its own: it must be one of the asymmetric algorithms below, the
//! key named by `kid` must be of the matching type (RSA for RS*/PS*, the right EC curve for ES*, Ed25519
//! for EdDSA) and, when the key names an `alg`, that one. So `alg: none` and "HS256 keyed with the
//! public key" are refused before any signature arithmetic, and symmetric (`oct`) keys are never loaded.

use base64::Engine as _;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::Refusal;

/// The signature algorithms accepted (RFC 7518 names). ES512 is missing because ring has no P-521.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Alg {
    pub const NAMES: &'static str = "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";

    pub fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
        }
    }
}

/// A public key's material, as a JWK gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMaterial {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed SEC1 point (`04 || x || y`).
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// One verification key of the issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The one algorithm this key may verify, when the JWK says.
    pub alg: Option<String>,
    pub material: KeyMaterial,
}

/// The issuer's verification keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

fn b64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
}

impl JwkSet {
    /// Reads a JWKS document. Keys that cannot verify signatures here — symmetric (`oct`), encryption
    /// (`use: enc`), unknown types or curves, broken material — are skipped, with the reason returned
    /// beside the set for the log.
    pub fn parse(document: &Value) -> Result<(JwkSet, Vec<String>), String> {
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the JWKS has no \"keys\" array")?;
        let mut set = JwkSet::default();
        let mut skipped = Vec::new();
        for key in keys {
            let field = |name: &str| key.get(name).and_then(Value::as_str);
            let kid = field("kid").map(str::to_owned);
            let label = kid.clone().unwrap_or_else(|| "(no kid)".to_owned());
            if field("use").is_some_and(|u| u != "sig") {
                skipped.push(format!("{label}: not a signing key"));
                continue;
            }
            let bytes = |name: &str| field(name).and_then(b64);
            let material = match (field("kty"), field("crv")) {
                (Some("RSA"), _) => match (bytes("n"), bytes("e")) {
                    (Some(n), Some(e)) => Some(KeyMaterial::Rsa { n, e }),
                    _ => None,
                },
                (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
                    let size = if crv == "P-256" { 32 } else { 48 };
                    match (bytes("x"), bytes("y")) {
                        (Some(x), Some(y)) if x.len() == size && y.len() == size => {
                            let point = [&[4u8][..], &x, &y].concat();
                            Some(if size == 32 {
                                KeyMaterial::P256(point)
                            } else {
                                KeyMaterial::P384(point)
                            })
                        }
                        _ => None,
                    }
                }
                (Some("OKP"), Some("Ed25519")) => {
                    bytes("x").filter(|x| x.len() == 32).map(KeyMaterial::Ed25519)
                }
                (kty, crv) => {
                    skipped.push(format!(
                        "{label}: key type {} {} is not used for access tokens",
                        kty.unwrap_or("?"),
                        crv.unwrap_or("")
                    ));
                    continue;
                }
            };
            match material {
                Some(material) => set.keys.push(Jwk {
                    kid,
                    alg: field("alg").map(str::to_owned),
                    material,
                }),
                None => skipped.push(format!("{label}: its key material cannot be read")),
            }
        }
        Ok((set, skipped))
    }
}

/// What a token must say besides carrying a valid signature.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway: u64,
}

/// Keeps what a token says short and printable before it is quoted back in an error.
pub fn shown(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .take(80)
        .collect();
    if text.chars().count() > 80 {
        format!("{clean}…")
    } else {
        clean
    }
}

fn part(text: &str, what: &str) -> Result<Map<String, Value>, Refusal> {
    let bytes = b64(text).ok_or_else(|| Refusal::Malformed(format!("its {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal::Malformed(format!("its {what} is not a JSON object"))),
    }
}

/// Whether `key` may verify `alg`: the key type fits and the key's own `alg`, if any, is this one.
fn fits(key: &Jwk, alg: Alg) -> bool {
    let kind = matches!(
        (&key.material, alg),
        (
            KeyMaterial::Rsa { .. },
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
        ) | (KeyMaterial::P256(_), Alg::Es256)
            | (KeyMaterial::P384(_), Alg::Es384)
            | (KeyMaterial::Ed25519(_), Alg::EdDsa)
    );
    kind && key.alg.as_deref().is_none_or(|a| a == alg.name())
}

fn signature_ok(key: &Jwk, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
    let rsa = |params: &'static signature::RsaParameters, n: &[u8], e: &[u8]| {
        signature::RsaPublicKeyComponents { n, e }
            .verify(params, message, sig)
            .is_ok()
    };
    match (&key.material, alg) {
        (KeyMaterial::Rsa { n, e }, Alg::Rs256) => rsa(&signature::RSA_PKCS1_2048_8192_SHA256, n, e),
        (KeyMaterial::Rsa { n, e }, Alg::Rs384) => rsa(&signature::RSA_PKCS1_2048_8192_SHA384, n, e),
        (KeyMaterial::Rsa { n, e }, Alg::Rs512) => rsa(&signature::RSA_PKCS1_2048_8192_SHA512, n, e),
        (KeyMaterial::Rsa { n, e }, Alg::Ps256) => rsa(&signature::RSA_PSS_2048_8192_SHA256, n, e),
        (KeyMaterial::Rsa { n, e }, Alg::Ps384) => rsa(&signature::RSA_PSS_2048_8192_SHA384, n, e),
        (KeyMaterial::Rsa { n, e }, Alg::Ps512) => rsa(&signature::RSA_PSS_2048_8192_SHA512, n, e),
        (KeyMaterial::P256(point), Alg::Es256) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }
        (KeyMaterial::P384(point), Alg::Es384) => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }
        (KeyMaterial::Ed25519(x), Alg::EdDsa) => UnparsedPublicKey::new(&signature::ED25519, x)
            .verify(message, sig)
            .is_ok(),
        _ => false,
    }
}

/// A NumericDate claim (seconds since the epoch; fractions allowed).
fn date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(|n| Some(n as u64))
            .ok_or_else(|| Refusal::Claim(format!("the token's '{name}' claim is not a number of seconds"))),
    }
}

/// Checks `token` and returns its claims. `now` is seconds since the epoch.
pub fn verify(
    token: &str,
    keys: &JwkSet,
    rules: &Rules<'_>,
    now: u64,
) -> Result<Map<String, Value>, Refusal> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed(
            "expected three base64url parts separated by dots".into(),
        ));
    };
    let header = part(header_b64, "header")?;
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::Malformed("its header names no algorithm".into()))?;
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(Refusal::Unsigned);
    }
    let alg = Alg::parse(alg_name).ok_or_else(|| Refusal::Algorithm(shown(alg_name)))?;
    // RFC 9068 types access tokens `at+jwt`; many issuers still write `JWT` or nothing. Any other type is
    // another kind of JWT (a logout token, a DPoP proof, a security event) and never an access token.
    if let Some(typ) = header.get("typ").and_then(Value::as_str)
        && !["at+jwt", "application/at+jwt", "jwt"].contains(&typ.to_ascii_lowercase().as_str())
    {
        return Err(Refusal::Malformed(format!(
            "its type '{}' is not an access token's",
            shown(typ)
        )));
    }
    if header.contains_key("crit") {
        return Err(Refusal::Malformed(
            "its header has critical extensions this server does not understand".into(),
        ));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let key = match kid {
        Some(kid) => keys.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        // Without a kid, only an unambiguous key will do.
        None => {
            let mut fitting = keys.keys.iter().filter(|k| fits(k, alg));
            match (fitting.next(), fitting.next()) {
                (Some(k), None) => Some(k),
                _ => None,
            }
        }
    }
    .ok_or_else(|| Refusal::UnknownKey(kid.map(shown)))?;
    if !fits(key, alg) {
        return Err(Refusal::KeyMismatch {
            kid: kid.map(shown),
            alg: alg.name(),
        });
    }
    let sig = b64(sig_b64).ok_or_else(|| Refusal::Malformed("its signature is not base64url".into()))?;
    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    if !signature_ok(key, alg, signed.as_bytes(), &sig) {
        return Err(Refusal::BadSignature);
    }
    // Only now are the claims worth reading.
    let claims = part(payload_b64, "payload")?;
    match claims.get("iss").and_then(Value::as_str) {
        Some(iss) if iss == rules.issuer => {}
        Some(iss) => return Err(Refusal::Issuer(shown(iss))),
        None => return Err(Refusal::MissingClaim("iss")),
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(Refusal::MissingClaim("aud")),
    };
    if !audiences.contains(&rules.audience) {
        return Err(Refusal::Audience(shown(&audiences.join(", "))));
    }
    let exp = date(&claims, "exp")?.ok_or(Refusal::MissingClaim("exp"))?;
    if now >= exp.saturating_add(rules.leeway) {
        return Err(Refusal::Expired { ago: now - exp });
    }
    if let Some(nbf) = date(&claims, "nbf")?
        && now.saturating_add(rules.leeway) < nbf
    {
        return Err(Refusal::NotYetValid { within: nbf - now });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

    fn enc(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    struct Keys {
        ec: EcdsaKeyPair,
        ed: Ed25519KeyPair,
        set: JwkSet,
    }

    fn keys() -> Keys {
        let rng = SystemRandom::new();
        let ec_doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, ec_doc.as_ref(), &rng)
            .unwrap();
        let ed_doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed = Ed25519KeyPair::from_pkcs8(ed_doc.as_ref()).unwrap();
        let point = ec.public_key().as_ref();
        let document = serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES256", "use": "sig",
             "x": enc(&point[1..33]), "y": enc(&point[33..])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": enc(ed.public_key().as_ref())},
            {"kty": "oct", "kid": "secret", "k": enc(b"0123456789abcdef0123456789abcdef")},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        ]});
        let (set, skipped) = JwkSet::parse(&document).unwrap();
        assert_eq!(
            skipped,
            [
                "secret: key type oct  is not used for access tokens",
                "enc: not a signing key"
            ]
        );
        Keys { ec, ed, set }
    }

    const NOW: u64 = 1_800_000_000;
    const RULES: Rules<'static> = Rules {
        issuer: "https://id.example.com",
        audience: "https://sluice.example.com/mcp",
        leeway: 30,
    };

    fn claims() -> Value {
        serde_json::json!({
            "iss": RULES.issuer, "aud": RULES.audience, "sub": "ada",
            "exp": NOW + 300, "iat": NOW, "scope": "sluice:query",
        })
    }

    fn signed(keys: &Keys, header: Value, claims: &Value, signer: &str) -> String {
        let input = format!(
            "{}.{}",
            enc(header.to_string().as_bytes()),
            enc(claims.to_string().as_bytes())
        );
        let sig = match signer {
            "ec" => keys
                .ec
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            "ed" => keys.ed.sign(input.as_bytes()).as_ref().to_vec(),
            "hs-public" => {
                // HMAC keyed with the EC public key's bytes: the classic algorithm-confusion forgery.
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, keys.ec.public_key().as_ref());
                ring::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
            }
            _ => Vec::new(),
        };
        format!("{input}.{}", enc(&sig))
    }

    fn check(token: &str, keys: &Keys, expected: Result<&str, Refusal>) {
        let got = verify(token, &keys.set, &RULES, NOW);
        match expected {
            Ok(sub) => assert_eq!(got.map(|c| c["sub"].clone()), Ok(Value::from(sub))),
            Err(refusal) => assert_eq!(got, Err(refusal)),
        }
    }

    #[test]
    fn signatures_algorithms_and_keys() {
        let k = keys();
        let es = serde_json::json!({"alg": "ES256", "kid": "ec", "typ": "at+jwt"});
        let ed = serde_json::json!({"alg": "EdDSA", "kid": "ed"});
        let c = claims();
        let good = signed(&k, es.clone(), &c, "ec");
        let mut tampered_claims = c.clone();
        tampered_claims["scope"] = "sluice:admin".into();
        let tampered = {
            let forged = signed(&k, es.clone(), &tampered_claims, "none");
            let (head, _) = forged.rsplit_once('.').unwrap();
            format!("{head}.{}", good.rsplit_once('.').unwrap().1)
        };
        for (token, expected) in [
            (good.clone(), Ok("ada")),
            (signed(&k, ed.clone(), &c, "ed"), Ok("ada")),
            // A key without a kid is used when it is the only one that fits.
            (
                signed(&k, serde_json::json!({"alg": "EdDSA"}), &c, "ed"),
                Ok("ada"),
            ),
            (tampered, Err(Refusal::BadSignature)),
            (
                signed(&k, serde_json::json!({"alg": "none"}), &c, "none"),
                Err(Refusal::Unsigned),
            ),
            (
                signed(&k, serde_json::json!({"alg": "None", "kid": "ec"}), &c, "none"),
                Err(Refusal::Unsigned),
            ),
            (
                signed(
                    &k,
                    serde_json::json!({"alg": "HS256", "kid": "ec"}),
                    &c,
                    "hs-public",
                ),
                Err(Refusal::Algorithm("HS256".into())),
            ),
            (
                signed(
                    &k,
                    serde_json::json!({"alg": "HS256", "kid": "secret"}),
                    &c,
                    "hs-public",
                ),
                Err(Refusal::Algorithm("HS256".into())),
            ),
            (
                signed(
                    &k,
                    serde_json::json!({"alg": "ES256", "kid": "rotated"}),
                    &c,
                    "ec",
                ),
                Err(Refusal::UnknownKey(Some("rotated".into()))),
            ),
            // An EdDSA header on the EC key, and the EC key's own `alg` pinned to ES256.
            (
                signed(&k, serde_json::json!({"alg": "EdDSA", "kid": "ec"}), &c, "ed"),
                Err(Refusal::KeyMismatch {
                    kid: Some("ec".into()),
                    alg: "EdDSA",
                }),
            ),
            (
                signed(&k, serde_json::json!({"alg": "ES256", "kid": "ed"}), &c, "ec"),
                Err(Refusal::KeyMismatch {
                    kid: Some("ed".into()),
                    alg: "ES256",
                }),
            ),
            (
                signed(
                    &k,
                    serde_json::json!({"alg": "ES256", "kid": "ec", "crit": ["b64"]}),
                    &c,
                    "ec",
                ),
                Err(Refusal::Malformed(
                    "its header has critical extensions this server does not understand".into(),
                )),
            ),
            (
                signed(
                    &k,
                    serde_json::json!({"alg": "ES256", "kid": "ec", "typ": "logout+jwt"}),
                    &c,
                    "ec",
                ),
                Err(Refusal::Malformed(
                    "its type 'logout+jwt' is not an access token's".into(),
                )),
            ),
            (
                signed(
                    &k,
                    serde_json::json!({"alg": "ES256", "kid": "ec", "typ": "JWT"}),
                    &c,
                    "ec",
                ),
                Ok("ada"),
            ),
            (
                "abc.def".to_owned(),
                Err(Refusal::Malformed(
                    "expected three base64url parts separated by dots".into(),
                )),
            ),
            (
                "!!.e30.AA".to_owned(),
                Err(Refusal::Malformed("its header is not base64url".into())),
            ),
        ] {
            check(&token, &k, expected);
        }
    }

    #[test]
    fn issuer_audience_and_time_with_a_fixed_clock() {
        let k = keys();
        let es = serde_json::json!({"alg": "ES256", "kid": "ec"});
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut c = claims();
            edit(&mut c);
            signed(&k, es.clone(), &c, "ec")
        };
        for (token, expected) in [
            (
                with(&|c| c["iss"] = "https://evil.example.com".into()),
                Err(Refusal::Issuer("https://evil.example.com".into())),
            ),
            (
                with(&|c| c["iss"] = "https://id.example.com/".into()),
                Err(Refusal::Issuer("https://id.example.com/".into())),
            ),
            (
                with(&|c| c.as_object_mut().unwrap().remove("iss").map(drop).unwrap_or(())),
                Err(Refusal::MissingClaim("iss")),
            ),
            (
                with(&|c| c["aud"] = "https://other.example.com/mcp".into()),
                Err(Refusal::Audience("https://other.example.com/mcp".into())),
            ),
            (
                with(&|c| c["aud"] = serde_json::json!(["a", RULES.audience])),
                Ok("ada"),
            ),
            (
                with(&|c| c["aud"] = serde_json::json!(["a", "b"])),
                Err(Refusal::Audience("a, b".into())),
            ),
            (
                with(&|c| c.as_object_mut().unwrap().remove("aud").map(drop).unwrap_or(())),
                Err(Refusal::MissingClaim("aud")),
            ),
            // exp within the leeway still passes; at exp + leeway it does not.
            (with(&|c| c["exp"] = (NOW - 29).into()), Ok("ada")),
            (
                with(&|c| c["exp"] = (NOW - 30).into()),
                Err(Refusal::Expired { ago: 30 }),
            ),
            (
                with(&|c| c["exp"] = (NOW - 3600).into()),
                Err(Refusal::Expired { ago: 3600 }),
            ),
            (
                with(&|c| c.as_object_mut().unwrap().remove("exp").map(drop).unwrap_or(())),
                Err(Refusal::MissingClaim("exp")),
            ),
            (
                with(&|c| c["exp"] = "tomorrow".into()),
                Err(Refusal::Claim(
                    "the token's 'exp' claim is not a number of seconds".into(),
                )),
            ),
            (with(&|c| c["nbf"] = (NOW + 30).into()), Ok("ada")),
            (
                with(&|c| c["nbf"] = (NOW + 31).into()),
                Err(Refusal::NotYetValid { within: 31 }),
            ),
        ] {
            check(&token, &k, expected);
        }
    }
}
