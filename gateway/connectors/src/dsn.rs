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

    /// The string with every password replaced by `***`. A string that is not a URL (a SQLite path) has
    /// no password and is returned unchanged.
    pub fn redacted(&self) -> String {
        let Ok(mut url) = url::Url::parse(&self.0) else {
            // Unparsable text may still hold `user:secret@`; hide everything between `:` and `@` then.
            return redact_unparsed(&self.0);
        };
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
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
        url.to_string()
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

fn redact_unparsed(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &text[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &text[..scheme_end + 3],
                    &userinfo[..colon],
                    &text[at..]
                ),
                None => text.to_owned(),
            }
        }
        _ => text.to_owned(),
    }
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
    }
}
