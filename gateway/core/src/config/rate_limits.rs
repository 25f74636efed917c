//! `[rate_limits]`: token buckets per API key, per org and per client address, the lockout of an address
//! that keeps failing authentication, and the proxies whose `X-Forwarded-For` is believed.
//!
//! The defaults are far above what an agent does (an agent makes a call every few seconds; the round-trip
//! benchmark makes a few thousand in seconds from one key and stays under them), so that only a client
//! stuck in a loop meets them. `0` turns one limit off, `enabled = false` all of them.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::GatewayError;

pub const DEFAULT_KEY_PER_MINUTE: u32 = 6_000;
pub const DEFAULT_ORG_PER_MINUTE: u32 = 30_000;
pub const DEFAULT_IP_PER_MINUTE: u32 = 30_000;
pub const DEFAULT_AUTH_FAILURES: u32 = 20;
pub const DEFAULT_LOCKOUT_SECS: u64 = 1;
pub const DEFAULT_MAX_LOCKOUT_SECS: u64 = 300;

/// The section as written in the file; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsSection {
    /// `false` turns every limit and the lockout off (default true).
    pub enabled: Option<bool>,
    /// Tool calls per minute per API key, on average (0 = unlimited).
    pub key_per_minute: Option<u32>,
    /// Tool calls one API key may make at once before the per-minute rate applies (default: the rate).
    pub key_burst: Option<u32>,
    /// Tool calls per minute per org, all its keys together (0 = unlimited).
    pub org_per_minute: Option<u32>,
    pub org_burst: Option<u32>,
    /// HTTP requests per minute per client address (an IPv6 client's /64), before authentication
    /// (0 = unlimited).
    pub ip_per_minute: Option<u32>,
    pub ip_burst: Option<u32>,
    /// Failed authentications (missing, malformed, unknown or revoked key) from one address before it is
    /// locked out (0 = never).
    pub auth_failures: Option<u32>,
    /// The first lockout, in seconds; each further failure after a lockout doubles it.
    pub lockout_secs: Option<u64>,
    /// The longest lockout, in seconds.
    pub max_lockout_secs: Option<u64>,
    /// Addresses or networks (`10.0.0.0/8`) of proxies whose `X-Forwarded-For` names the client; from
    /// anywhere else the connection's peer address is the client.
    pub trusted_proxies: Option<Vec<String>>,
}

/// A token bucket: `per_minute` calls a minute on average, at most `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

/// When an address that fails authentication is locked out, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures before the first lockout; after a lockout, each failure locks the address again.
    pub failures: u32,
    pub first: Duration,
    pub max: Duration,
}

/// The resolved section; `None` = that limit is off.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitSettings {
    pub key: Option<Rate>,
    pub org: Option<Rate>,
    pub ip: Option<Rate>,
    pub lockout: Option<LockoutPolicy>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl RateLimitSettings {
    /// Every limit off (unit tests, and `enabled = false`).
    pub fn off() -> RateLimitSettings {
        RateLimitSettings {
            key: None,
            org: None,
            ip: None,
            lockout: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// One bucket from its two keys: `0` per minute turns it off; a burst defaults to the rate and must be at
/// least 1 while the limit is on.
fn rate(
    name: &str,
    per_minute: Option<u32>,
    burst: Option<u32>,
    default: u32,
) -> Result<Option<Rate>, GatewayError> {
    let per_minute = per_minute.unwrap_or(default);
    if per_minute == 0 {
        return Ok(None);
    }
    let burst = burst.unwrap_or(per_minute);
    if burst == 0 {
        return Err(GatewayError::Config(format!(
            "[rate_limits] {name}_burst must be at least 1 (set {name}_per_minute = 0 to turn the limit off)"
        )));
    }
    Ok(Some(Rate { per_minute, burst }))
}

/// An address (`192.0.2.7`) or network (`10.0.0.0/8`, `fd00::/8`).
fn network(text: &str) -> Result<ipnet::IpNet, GatewayError> {
    let text = text.trim();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>().map(ipnet::IpNet::from).map_err(|_| {
        GatewayError::Config(format!(
            "[rate_limits] trusted_proxies: '{text}' is not an address or network (e.g. 10.0.0.0/8 or 192.0.2.7)"
        ))
    })
}

impl RateLimitsSection {
    pub fn resolve(self) -> Result<RateLimitSettings, GatewayError> {
        let trusted_proxies = self
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .map(|t| network(t))
            .collect::<Result<Vec<_>, _>>()?;
        let key = rate("key", self.key_per_minute, self.key_burst, DEFAULT_KEY_PER_MINUTE)?;
        let org = rate("org", self.org_per_minute, self.org_burst, DEFAULT_ORG_PER_MINUTE)?;
        let ip = rate("ip", self.ip_per_minute, self.ip_burst, DEFAULT_IP_PER_MINUTE)?;
        let failures = self.auth_failures.unwrap_or(DEFAULT_AUTH_FAILURES);
        let first = self.lockout_secs.unwrap_or(DEFAULT_LOCKOUT_SECS);
        let max = self.max_lockout_secs.unwrap_or(DEFAULT_MAX_LOCKOUT_SECS);
        if first == 0 {
            return Err(GatewayError::Config(
                "[rate_limits] lockout_secs must be at least 1 (set auth_failures = 0 to turn the lockout off)"
                    .to_owned(),
            ));
        }
        if max < first {
            return Err(GatewayError::Config(format!(
                "[rate_limits] max_lockout_secs ({max}) must be at least lockout_secs ({first})"
            )));
        }
        let lockout = (failures > 0).then(|| LockoutPolicy {
            failures,
            first: Duration::from_secs(first),
            max: Duration::from_secs(max),
        });
        if self.enabled == Some(false) {
            return Ok(RateLimitSettings {
                trusted_proxies,
                ..RateLimitSettings::off()
            });
        }
        Ok(RateLimitSettings {
            key,
            org,
            ip,
            lockout,
            trusted_proxies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn resolve(text: &str) -> Result<RateLimitSettings, String> {
        #[derive(Deserialize)]
        struct File {
            rate_limits: RateLimitsSection,
        }
        let file: File = toml::from_str(&format!("[rate_limits]\n{text}")).map_err(|e| e.to_string())?;
        file.rate_limits.resolve().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_on_and_generous() {
        let s = resolve("").unwrap();
        assert_eq!(
            s,
            RateLimitSettings {
                key: Some(Rate {
                    per_minute: 6_000,
                    burst: 6_000
                }),
                org: Some(Rate {
                    per_minute: 30_000,
                    burst: 30_000
                }),
                ip: Some(Rate {
                    per_minute: 30_000,
                    burst: 30_000
                }),
                lockout: Some(LockoutPolicy {
                    failures: 20,
                    first: Duration::from_secs(1),
                    max: Duration::from_secs(300)
                }),
                trusted_proxies: vec![],
            }
        );
    }

    #[test]
    fn limits_are_read_turned_off_and_checked() {
        let s = resolve(
            "key_per_minute = 60\nkey_burst = 5\norg_per_minute = 0\nauth_failures = 0\n\
             trusted_proxies = ['10.0.0.0/8', '192.0.2.7', 'fd00::1/8']\n",
        )
        .unwrap();
        assert_eq!(
            s.key,
            Some(Rate {
                per_minute: 60,
                burst: 5
            })
        );
        assert_eq!((s.org, s.lockout), (None, None));
        let nets: Vec<String> = s.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"]);
        assert_eq!(resolve("enabled = false\n").unwrap(), RateLimitSettings::off());

        for (text, expected) in [
            (
                "key_burst = 0\n",
                "[rate_limits] key_burst must be at least 1 (set key_per_minute = 0 to turn the limit off)",
            ),
            (
                "ip_per_minute = 10\nip_burst = 0\n",
                "[rate_limits] ip_burst must be at least 1",
            ),
            (
                "lockout_secs = 0\n",
                "[rate_limits] lockout_secs must be at least 1",
            ),
            (
                "lockout_secs = 10\nmax_lockout_secs = 5\n",
                "[rate_limits] max_lockout_secs (5) must be at least lockout_secs (10)",
            ),
            (
                "trusted_proxies = ['10.0.0/8']\n",
                "[rate_limits] trusted_proxies: '10.0.0/8' is not an address or network",
            ),
            ("key_per_minut = 1\n", "unknown field `key_per_minut`"),
            ("key_per_minute = -1\n", "invalid value"),
        ] {
            let err = resolve(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
