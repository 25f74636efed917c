//! `[connection_hosts]`: the hosts and networks PostgreSQL and MySQL connections may reach. Link-local and
//! cloud metadata addresses (and unspecified, multicast and broadcast ones) are refused whatever it says;
//! see `sluice_connectors::hosts` for the rules and `sluice_connectors`'s `route.rs` for resolving and
//! pinning. Not to be confused with `[server] allowed_hosts`, the HTTP `Host` header check.

use serde::Deserialize;
use sluice_connectors::hosts::{HostPolicy, HostRule};

use crate::error::GatewayError;

/// The section as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionHostsSection {
    /// When set, connections may reach only these networks (`10.0.0.0/8`), addresses and host names
    /// (`db.internal`, `*.db.internal`). Unset or empty: every address but the forbidden ones.
    pub allow: Option<Vec<String>>,
    /// Never these, even when `allow` has them.
    pub deny: Option<Vec<String>>,
}

impl ConnectionHostsSection {
    /// The policy, or an error naming the key and the entry that is neither a network nor a name.
    pub fn resolve(self) -> Result<HostPolicy, GatewayError> {
        let rules = |key: &str, entries: Option<Vec<String>>| {
            entries
                .unwrap_or_default()
                .iter()
                .map(|entry| {
                    entry
                        .parse::<HostRule>()
                        .map_err(|e| GatewayError::Config(format!("[connection_hosts] {key}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(HostPolicy::new(
            rules("allow", self.allow)?,
            rules("deny", self.deny)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn resolve(toml: &str) -> Result<HostPolicy, String> {
        toml::from_str::<ConnectionHostsSection>(toml)
            .map_err(|e| e.to_string())?
            .resolve()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn entries_are_read_and_bad_ones_named_with_their_key() {
        let policy =
            resolve("allow = ['10.0.0.0/8', 'db.internal', '*.corp.example']\ndeny = ['10.9.0.0/16']")
                .unwrap();
        let printed = |rules: &[HostRule]| rules.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            printed(policy.allow()),
            ["10.0.0.0/8", "db.internal", "*.corp.example"]
        );
        assert_eq!(printed(policy.deny()), ["10.9.0.0/16"]);
        assert_eq!(resolve("").unwrap(), HostPolicy::default());

        let cases = [
            (
                "allow = ['10.0.0/8']",
                "[connection_hosts] allow: '10.0.0/8' is not a network or host name ('10.0.0' is not an IP address); write an address, a network such as 10.0.0.0/8, a name such as db.internal or a wildcard such as *.db.internal",
            ),
            (
                "deny = ['192.168.1.1/16']",
                "[connection_hosts] deny: '192.168.1.1/16' is not a network or host name (192.168.1.1 has bits set past /16; the network is 192.168.0.0/16); write an address, a network such as 10.0.0.0/8, a name such as db.internal or a wildcard such as *.db.internal",
            ),
            (
                "allow = ['10.0.0.0/40']",
                "[connection_hosts] allow: '10.0.0.0/40' is not a network or host name (the prefix /40 is longer than 32 bits); write an address, a network such as 10.0.0.0/8, a name such as db.internal or a wildcard such as *.db.internal",
            ),
        ];
        for (toml, expected) in cases {
            let message = resolve(toml).unwrap_err();
            assert!(message.ends_with(expected), "{toml}: {message}");
        }
        assert!(
            resolve("allowed = []")
                .unwrap_err()
                .contains("unknown field `allowed`")
        );
    }
}
