//! Connection strings that keep their password to themselves: shown redacted, exposed only to the driver.

use crate::ConnectorError;

/// A connection URL (`postgres://user:pass@host:5432/db?sslmode=require`, `mysql://…`, `sqlite://…` or a
/// SQLite file path). `Debug` and `Display` print it with the password replaced by `***`, so it can be
/// logged and put in error messages; only [`Dsn::expose`] hands out the secret form.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn(String);

/// Query parameters that carry secrets in the drivers' URL syntax.
const SECRET_PARAMS: &[&str] = &["password", "pass", "pwd", "sslpassword"];

impl Dsn {
    pub fn new(dsn: impl Into<String>) -> Dsn {
        Dsn(dsn.into())
    }

    /// The full string, password included: for the driver only, never for logs or messages.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The parsed URL, or an error that quotes only the redacted form.
    pub(crate) fn url(&self) -> Result<url::Url, ConnectorError> {
        url::Url::parse(&self.0).map_err(|e| ConnectorError::InvalidDsn {
            dsn: self.to_string(),
            message: e.to_string(),
        })
    }

    /// Removes this DSN's secrets from a driver message: the whole connection string, should the driver
    /// quote it, and the password wherever it appears on its own.
    pub(crate) fn scrub(&self, message: &str) -> String {
        let mut out = message.replace(&self.0, &self.redacted());
        if let Some(password) = url::Url::parse(&self.0)
            .ok()
            .and_then(|u| u.password().map(str::to_owned))
            && !password.is_empty()
        {
            out = out.replace(&password, "***");
        }
        out
    }

    /// The string with every password replaced by `***`: the URL's userinfo password and every secret
    /// parameter (`password=`, `pwd=`, …), also when the text is not a URL the `url` crate accepts (a
    /// broken URL or libpq's `key=value` form, which error messages quote). A SQLite path has no password
    /// and is returned unchanged.
    pub fn redacted(&self) -> String {
        let url = match url::Url::parse(&self.0) {
            // `scheme:user:secret@host` parses as an opaque path with no password; read it as text.
            Ok(url) if !url.cannot_be_a_base() => url,
            _ => {
                let url_like = scheme_end(&self.0).is_some();
                return redact_params(&redact_userinfo(&self.0), url_like);
            }
        };
        redact_params(&redact_url(url), true)
    }

    /// `host:port/database` (or the file path): what error messages name so that an operator knows which
    /// server failed, without any credential.
    pub(crate) fn target(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(url) if url.host_str().is_some() => {
                let host = url.host_str().unwrap_or_default();
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                format!("{host}{port}{}", url.path())
            }
            _ => self.redacted(),
        }
    }
}

fn is_secret(key: &str) -> bool {
    SECRET_PARAMS.iter().any(|s| key.eq_ignore_ascii_case(s))
}

/// The parsed URL with its password and secret query parameters replaced.
fn redact_url(mut url: url::Url) -> String {
    if url.password().is_some() && url.set_password(Some("***")).is_err() {
        // A URL that has a password but refuses a new one is not worth trusting: hide it as text.
        return redact_userinfo(url.as_str());
    }
    if url.query_pairs().any(|(k, _)| is_secret(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret(&k) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.into()
}

/// Where the text's `scheme:` ends (the byte after the colon), when it starts with one.
fn scheme_end(text: &str) -> Option<usize> {
    let colon = text.find(':')?;
    let scheme = &text[..colon];
    let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(colon + 1)
}

/// Text that the `url` crate refused may still hold `scheme://user:secret@host`; everything between the
/// user's `:` and the last `@` is hidden then. Hiding too much of a broken URL is harmless; too little is not.
fn redact_userinfo(text: &str) -> String {
    let Some(scheme_end) = scheme_end(text) else {
        return text.to_owned();
    };
    let start = if text[scheme_end..].starts_with("//") {
        scheme_end + 2
    } else {
        scheme_end
    };
    let Some(at) = text.rfind('@').filter(|&at| at >= start) else {
        return text.to_owned();
    };
    let userinfo = &text[start..at];
    match userinfo.find(':') {
        Some(colon) => format!("{}{}:***{}", &text[..start], &userinfo[..colon], &text[at..]),
        None => text.to_owned(),
    }
}

/// Hides the value of every secret `key=value` pair in `text`: query parameters the `url` crate does not
/// split (`;` separated, or in a URL it refused) and libpq's `key=value` words. A value ends at whitespace,
/// and in URL-like text also at `&`; a single-quoted libpq value ends at its closing quote.
fn redact_params(text: &str, url_like: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq]
            .char_indices()
            .rev()
            .find(|&(_, c)| matches!(c, '?' | '&' | ';') || c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let secret = is_secret(&rest[key_start..eq]);
        out.push_str(&rest[..=eq]);
        rest = &rest[eq + 1..];
        if secret {
            out.push_str("***");
            rest = &rest[value_end(rest, url_like)..];
        }
    }
    out.push_str(rest);
    out
}

/// The length of the parameter value at the start of `value`.
fn value_end(value: &str, url_like: bool) -> usize {
    if let Some(quoted) = value.strip_prefix('\'') {
        // libpq escapes a quote inside a quoted value with a backslash.
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '\'' if !escaped => return i + 2,
                _ => escaped = false,
            }
        }
        return value.len();
    }
    value
        .find(|c: char| c.is_whitespace() || (url_like && c == '&'))
        .unwrap_or(value.len())
}

impl std::fmt::Display for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Debug for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dsn({:?})", self.redacted())
    }
}

impl From<String> for Dsn {
    fn from(value: String) -> Self {
        Dsn(value)
    }
}

impl From<&str> for Dsn {
    fn from(value: &str) -> Self {
        Dsn(value.to_owned())
    }
}

/// A DSN is read from a plain string (a config file's `dsn = "…"`), so it is a `Dsn`, and redacted, from
/// the moment it is parsed. There is deliberately no `Serialize`: writing one out would expose it.
impl<'de> serde::Deserialize<'de> for Dsn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Dsn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn scrub_removes_the_url_and_the_bare_password() {
        let dsn = Dsn::new("postgres://app:s3cret@db:5432/sluice");
        let cases = [
            (
                "bad url postgres://app:s3cret@db:5432/sluice",
                "bad url postgres://app:***@db:5432/sluice",
            ),
            ("password s3cret rejected", "password *** rejected"),
            ("nothing secret", "nothing secret"),
        ];
        for (message, expected) in cases {
            assert_eq!(dsn.scrub(message), expected);
        }
        assert_eq!(
            Dsn::new("/data/x.sqlite").scrub("no such file /data/x.sqlite"),
            "no such file /data/x.sqlite"
        );
    }

    fn check(input: &str, redacted: &str, target: &str) {
        let dsn = Dsn::new(input);
        assert_eq!(dsn.to_string(), redacted, "display of {input}");
        assert_eq!(format!("{dsn:?}"), format!("Dsn({redacted:?})"));
        assert_eq!(dsn.target(), target, "target of {input}");
        assert!(!format!("{dsn} {dsn:?} {}", dsn.target()).contains("s3cret"));
    }

    #[test]
    fn passwords_never_show() {
        check(
            "postgres://app:s3cret@db.internal:5433/sales?sslmode=require",
            "postgres://app:***@db.internal:5433/sales?sslmode=require",
            "db.internal:5433/sales",
        );
        check(
            "mysql://app@127.0.0.1/shop?password=s3cret&ssl-mode=REQUIRED",
            "mysql://app@127.0.0.1/shop?password=***&ssl-mode=REQUIRED",
            "127.0.0.1/shop",
        );
        check(
            "sqlite:///var/data/app.db?mode=ro",
            "sqlite:///var/data/app.db?mode=ro",
            "sqlite:///var/data/app.db?mode=ro",
        );
        check("/var/data/app.db", "/var/data/app.db", "/var/data/app.db");
        check(
            "postgres://app:s3cret@[bad host/db",
            "postgres://app:***@[bad host/db",
            "postgres://app:***@[bad host/db",
        );
        // Parameter names are matched whatever their case, and every secret one is hidden.
        check(
            "postgres://app@db/sales?PassWord=s3cret&sslpassword=s3cret&sslmode=require",
            "postgres://app@db/sales?PassWord=***&sslpassword=***&sslmode=require",
            "db/sales",
        );
        // A password holding `@` or percent-escapes is still the password.
        check(
            "postgres://app:s3cret@x@db/sales",
            "postgres://app:***@db/sales",
            "db/sales",
        );
        check(
            "postgres://app:s3cret%2F1@db/sales",
            "postgres://app:***@db/sales",
            "db/sales",
        );
        // The `url` crate splits parameters on `&` only; `;` separated ones are hidden too.
        check(
            "mysql://app@db/shop?ssl-mode=REQUIRED;password=s3cret",
            "mysql://app@db/shop?ssl-mode=REQUIRED;password=***",
            "db/shop",
        );
        // A URL the `url` crate refuses keeps neither its userinfo password nor its secret parameters.
        check(
            "mysql://app@[bad host/shop?pwd=s3cret&ssl-mode=REQUIRED",
            "mysql://app@[bad host/shop?pwd=***&ssl-mode=REQUIRED",
            "mysql://app@[bad host/shop?pwd=***&ssl-mode=REQUIRED",
        );
        check(
            "postgres://app:s3cret@[bad host/db?password=s3cret",
            "postgres://app:***@[bad host/db?password=***",
            "postgres://app:***@[bad host/db?password=***",
        );
        // Without `//` the URL is opaque to the `url` crate: the userinfo is found in the text.
        check(
            "postgres:app:s3cret@db/sales",
            "postgres:app:***@db/sales",
            "postgres:app:***@db/sales",
        );
        // libpq's `key=value` form, which the connectors refuse with an error quoting the DSN.
        check(
            "host=db user=app password=s3cret dbname=sales",
            "host=db user=app password=*** dbname=sales",
            "host=db user=app password=*** dbname=sales",
        );
        check(
            r"host=db password='s3cret \' s3cret' dbname=sales",
            "host=db password=*** dbname=sales",
            "host=db password=*** dbname=sales",
        );
        // A path that merely contains `=` or `@` is not a credential.
        check(
            "sqlite:///data/a=b@c.db",
            "sqlite:///data/a=b@c.db",
            "sqlite:///data/a=b@c.db",
        );
    }

    #[test]
    fn deserializes_from_a_string() {
        let dsn: Dsn = serde_json::from_str(r#""postgres://app:s3cret@db/sales""#).unwrap();
        assert_eq!(dsn.expose(), "postgres://app:s3cret@db/sales");
        assert_eq!(dsn.to_string(), "postgres://app:***@db/sales");
        #[derive(Debug, serde::Deserialize)]
        struct Connection {
            dsn: Dsn,
        }
        let c: Connection = serde_json::from_str(r#"{"dsn": "/var/data/app.db"}"#).unwrap();
        assert_eq!(c.dsn, Dsn::new("/var/data/app.db"));
        let err = serde_json::from_str::<Dsn>("3").unwrap_err().to_string();
        assert!(err.contains("expected a string"), "{err}");
    }
}
