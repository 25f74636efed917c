//! Which hosts a database connection may reach: the operator's `allow` and `deny` lists and the addresses
//! no connection may ever reach (link-local, cloud metadata, unspecified, multicast, broadcast). Pure: a
//! host and the addresses it resolved to in, a verdict out; resolving and pinning are `route.rs`'s.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Where the operator configures the lists, named in every refusal so that the fix is findable.
const SECTION: &str = "[connection_hosts]";

/// Cloud metadata services: AWS, GCP and Azure (169.254.169.254, also AWS over IPv6) and Alibaba Cloud.
/// Any of them hands out the gateway host's cloud credentials to whoever can make it send a request.
const METADATA_ADDRESSES: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
];

/// Names of metadata services, refused before they are resolved (GCP's, and the short name its
/// instances resolve through their search domain).
const METADATA_NAMES: &[&str] = &["metadata.google.internal", "metadata"];

/// The operator's host policy for connection DSNs. The addresses in [`Forbidden`] are refused whatever
/// the lists say; `deny` beats `allow`; an empty `allow` lets every other address through (loopback and
/// private networks are where self-hosted databases live).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostPolicy {
    allow: Vec<HostRule>,
    deny: Vec<HostRule>,
}

/// One entry of `allow` or `deny`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostRule {
    /// An address or a network in CIDR form (`10.0.0.0/8`, `192.168.1.20`, `fd12::/16`).
    Network(Network),
    /// Exactly this host name (lowercase, without a trailing dot).
    Name(String),
    /// Every name under this domain (`*.db.internal` matches `a.db.internal`, not `db.internal`); held
    /// with its leading dot.
    Suffix(String),
}

/// An IP network: the address with its host bits zero, and the prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

/// The kinds of address no connection may reach, whatever `allow` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forbidden {
    Metadata,
    LinkLocal,
    Unspecified,
    Multicast,
    Broadcast,
}

/// Why a host was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The host is the name of a cloud metadata service.
    MetadataName,
    /// The address is of a kind no connection may reach.
    Forbidden(Forbidden),
    /// The host name matches this `deny` entry.
    DeniedName(HostRule),
    /// The address is in this `deny` entry.
    DeniedAddress(HostRule),
    /// `allow` is set and neither the name nor the address is in it.
    NotAllowed(Vec<HostRule>),
}

/// A refused host: what the DSN named, the address that was refused (none when the name alone was), and
/// why. Its `Display` is the message an operator reads, with the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct HostRefusal {
    pub host: String,
    pub address: Option<IpAddr>,
    pub reason: Reason,
}

/// An `allow` or `deny` entry that is neither a network nor a host name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{entry}' is not a network or host name ({why}); write an address, a network such as 10.0.0.0/8, a name such as db.internal or a wildcard such as *.db.internal"
)]
pub struct BadHostRule {
    pub entry: String,
    pub why: String,
}

impl HostPolicy {
    pub fn new(allow: Vec<HostRule>, deny: Vec<HostRule>) -> HostPolicy {
        HostPolicy { allow, deny }
    }

    pub fn allow(&self) -> &[HostRule] {
        &self.allow
    }

    pub fn deny(&self) -> &[HostRule] {
        &self.deny
    }

    /// Checks a DSN's host (a name or an address literal, IPv6 with or without brackets) and every address
    /// it resolved to; the first refusal found, in the order of `addresses`. With no addresses (a name that
    /// could not be resolved yet) only the name is checked.
    pub fn check(&self, host: &str, addresses: &[IpAddr]) -> Result<(), HostRefusal> {
        let literal = strip_brackets(host).parse::<IpAddr>().ok();
        let name = match literal {
            Some(_) => None,
            None => Some(normalize_name(host)),
        };
        let refuse = |address: Option<IpAddr>, reason: Reason| HostRefusal {
            host: host.to_owned(),
            address,
            reason,
        };
        if let Some(name) = &name {
            if METADATA_NAMES.contains(&name.as_str()) {
                return Err(refuse(None, Reason::MetadataName));
            }
            if let Some(rule) = self.deny.iter().find(|r| r.matches_name(name)) {
                return Err(refuse(None, Reason::DeniedName(rule.clone())));
            }
        }
        let name_allowed = name
            .as_ref()
            .is_some_and(|name| self.allow.iter().any(|r| r.matches_name(name)));
        for &address in literal.as_slice().iter().chain(addresses) {
            let address = address.to_canonical();
            if let Some(kind) = Forbidden::of(address) {
                return Err(refuse(Some(address), Reason::Forbidden(kind)));
            }
            if let Some(rule) = self.deny.iter().find(|r| r.matches_address(address)) {
                return Err(refuse(Some(address), Reason::DeniedAddress(rule.clone())));
            }
            let allowed = self.allow.is_empty()
                || name_allowed
                || self.allow.iter().any(|r| r.matches_address(address));
            if !allowed {
                return Err(refuse(Some(address), Reason::NotAllowed(self.allow.clone())));
            }
        }
        Ok(())
    }
}

/// A host name as it is compared: lowercase, without a trailing dot.
fn normalize_name(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

impl Forbidden {
    /// The kind of forbidden address `address` is, if it is one (IPv4-mapped IPv6 addresses as their
    /// IPv4 address, so that `::ffff:169.254.169.254` is no way around the rule).
    pub fn of(address: IpAddr) -> Option<Forbidden> {
        let address = address.to_canonical();
        if METADATA_ADDRESSES.contains(&address) {
            return Some(Forbidden::Metadata);
        }
        if address.is_unspecified() {
            return Some(Forbidden::Unspecified);
        }
        if address.is_multicast() {
            return Some(Forbidden::Multicast);
        }
        match address {
            IpAddr::V4(v4) if v4.is_link_local() => Some(Forbidden::LinkLocal),
            IpAddr::V4(v4) if v4.is_broadcast() => Some(Forbidden::Broadcast),
            // fe80::/10; `Ipv6Addr::is_unicast_link_local` is the same test.
            IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Some(Forbidden::LinkLocal),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Forbidden::Metadata => "a cloud metadata address",
            Forbidden::LinkLocal => "a link-local address",
            Forbidden::Unspecified => "an unspecified address",
            Forbidden::Multicast => "a multicast address",
            Forbidden::Broadcast => "a broadcast address",
        }
    }
}

impl Network {
    /// The network of `address` with `prefix` bits; refused when the prefix is too long for the address
    /// family or the address has bits set past it (`10.0.0.1/8` is a typo more often than a network).
    pub fn new(address: IpAddr, prefix: u8) -> Result<Network, String> {
        let bits = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return Err(format!("the prefix /{prefix} is longer than {bits} bits"));
        }
        let network = Network { address, prefix };
        if network.masked(address) != address {
            let base = network.masked(address);
            return Err(format!(
                "{address} has bits set past /{prefix}; the network is {base}/{prefix}"
            ));
        }
        Ok(network)
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let same_family = matches!(
            (self.address, address),
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
        );
        same_family && self.masked(address) == self.address
    }

    /// `address` with the bits past this network's prefix cleared.
    fn masked(&self, address: IpAddr) -> IpAddr {
        match address {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }

    fn is_single_address(&self) -> bool {
        match self.address {
            IpAddr::V4(_) => self.prefix == 32,
            IpAddr::V6(_) => self.prefix == 128,
        }
    }
}

impl HostRule {
    fn matches_name(&self, name: &str) -> bool {
        match self {
            HostRule::Name(rule) => rule == name,
            HostRule::Suffix(suffix) => name.len() > suffix.len() && name.ends_with(suffix.as_str()),
            HostRule::Network(_) => false,
        }
    }

    fn matches_address(&self, address: IpAddr) -> bool {
        match self {
            HostRule::Network(network) => network.contains(address),
            HostRule::Name(_) | HostRule::Suffix(_) => false,
        }
    }
}

impl FromStr for HostRule {
    type Err = BadHostRule;

    fn from_str(entry: &str) -> Result<HostRule, BadHostRule> {
        let bad = |why: &str| BadHostRule {
            entry: entry.to_owned(),
            why: why.to_owned(),
        };
        let text = entry.trim();
        if let Some((address, prefix)) = text.split_once('/') {
            let address = strip_brackets(address)
                .parse::<IpAddr>()
                .map_err(|_| bad(&format!("'{address}' is not an IP address")))?;
            let prefix = prefix
                .parse::<u8>()
                .map_err(|_| bad(&format!("'/{prefix}' is not a prefix length")))?;
            return Network::new(address, prefix)
                .map(HostRule::Network)
                .map_err(|why| bad(&why));
        }
        if let Ok(address) = strip_brackets(text).parse::<IpAddr>() {
            let prefix = if address.is_ipv4() { 32 } else { 128 };
            return Network::new(address, prefix)
                .map(HostRule::Network)
                .map_err(|why| bad(&why));
        }
        let (wildcard, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let name = normalize_name(name);
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if name.is_empty() || !name.split('.').all(valid_label) {
            return Err(bad(
                "a host name is letters, digits, '-' and '_' in dot-separated labels, optionally after '*.'",
            ));
        }
        Ok(if wildcard {
            HostRule::Suffix(format!(".{name}"))
        } else {
            HostRule::Name(name)
        })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single_address() {
            write!(f, "{}", self.address)
        } else {
            write!(f, "{}/{}", self.address, self.prefix)
        }
    }
}

/// The entry as it is written in the config file.
impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostRule::Network(network) => network.fmt(f),
            HostRule::Name(name) => f.write_str(name),
            HostRule::Suffix(suffix) => write!(f, "*{suffix}"),
        }
    }
}

impl fmt::Display for HostRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = &self.host;
        let literal = strip_brackets(host).parse::<IpAddr>().is_ok();
        // "host 'db.example' resolves to 10.1.2.3, which is …" for a name, "host 10.1.2.3 is …" for an
        // address literal, "host 'db.example' is …" when the name alone was refused.
        let (subject, is) = match self.address {
            Some(address) if literal => (format!("host {address}"), " is"),
            Some(address) => (format!("host '{host}' resolves to {address}"), ", which is"),
            None => (format!("host '{host}'"), " is"),
        };
        match &self.reason {
            Reason::MetadataName => write!(
                f,
                "{subject} is the name of a cloud metadata service, which connections may never reach"
            ),
            // "resolves to 169.254.169.254, a cloud metadata address" reads better than "which is a".
            Reason::Forbidden(kind) if !literal && self.address.is_some() => {
                write!(
                    f,
                    "{subject}, {}, which connections may never reach",
                    kind.describe()
                )
            }
            Reason::Forbidden(kind) => {
                write!(
                    f,
                    "{subject} is {}, which connections may never reach",
                    kind.describe()
                )
            }
            Reason::DeniedName(rule) => write!(
                f,
                "{subject} matches '{rule}' in {SECTION} deny; remove that entry to allow it"
            ),
            Reason::DeniedAddress(rule) => write!(
                f,
                "{subject}{is} in '{rule}' in {SECTION} deny; remove that entry to allow it"
            ),
            Reason::NotAllowed(allow) => {
                let allow = allow
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                write!(
                    f,
                    "{subject}{is} not in {SECTION} allow ({allow}); add it there to allow it"
                )
            }
        }
    }
}

/// `[::1]` as `::1`: URLs bracket IPv6 hosts.
pub(crate) fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn rules(entries: &[&str]) -> Vec<HostRule> {
        entries.iter().map(|e| e.parse().unwrap()).collect()
    }

    fn ips(addresses: &[&str]) -> Vec<IpAddr> {
        addresses.iter().map(|a| a.parse().unwrap()).collect()
    }

    /// Checks `host` resolving to `addresses` under `policy`: `Ok` or the refusal's message.
    fn check(policy: &HostPolicy, host: &str, addresses: &[&str], expected: Result<(), &str>) {
        let got = policy.check(host, &ips(addresses)).map_err(|r| r.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "{host} -> {addresses:?}");
    }

    #[test]
    fn forbidden_addresses_are_refused_whatever_allow_says() {
        let open = HostPolicy::default();
        let everything = HostPolicy::new(rules(&["0.0.0.0/0", "::/0", "metadata", "*.internal"]), vec![]);
        let cases: &[(&str, &[&str], &str)] = &[
            (
                "169.254.169.254",
                &[],
                "host 169.254.169.254 is a cloud metadata address, which connections may never reach",
            ),
            (
                "db.example",
                &["10.0.0.5", "169.254.169.254"],
                "host 'db.example' resolves to 169.254.169.254, a cloud metadata address, which connections may never reach",
            ),
            (
                "[fd00:ec2::254]",
                &[],
                "host fd00:ec2::254 is a cloud metadata address, which connections may never reach",
            ),
            (
                "100.100.100.200",
                &[],
                "host 100.100.100.200 is a cloud metadata address, which connections may never reach",
            ),
            (
                "169.254.10.1",
                &[],
                "host 169.254.10.1 is a link-local address, which connections may never reach",
            ),
            (
                "[fe80::1]",
                &[],
                "host fe80::1 is a link-local address, which connections may never reach",
            ),
            (
                "febf::1",
                &[],
                "host febf::1 is a link-local address, which connections may never reach",
            ),
            (
                "0.0.0.0",
                &[],
                "host 0.0.0.0 is an unspecified address, which connections may never reach",
            ),
            (
                "::",
                &[],
                "host :: is an unspecified address, which connections may never reach",
            ),
            (
                "224.0.0.1",
                &[],
                "host 224.0.0.1 is a multicast address, which connections may never reach",
            ),
            (
                "ff02::1",
                &[],
                "host ff02::1 is a multicast address, which connections may never reach",
            ),
            (
                "255.255.255.255",
                &[],
                "host 255.255.255.255 is a broadcast address, which connections may never reach",
            ),
            // An IPv4-mapped IPv6 address is its IPv4 address.
            (
                "::ffff:169.254.169.254",
                &[],
                "host 169.254.169.254 is a cloud metadata address, which connections may never reach",
            ),
            (
                "metadata.google.internal",
                &[],
                "host 'metadata.google.internal' is the name of a cloud metadata service, which connections may never reach",
            ),
            (
                "Metadata.",
                &["10.0.0.1"],
                "host 'Metadata.' is the name of a cloud metadata service, which connections may never reach",
            ),
        ];
        for (host, addresses, message) in cases {
            for policy in [&open, &everything] {
                check(policy, host, addresses, Err(message));
            }
        }
    }

    #[test]
    fn the_mapped_form_is_named_as_its_ipv4_address() {
        let refusal = HostPolicy::default()
            .check("db", &ips(&["::ffff:169.254.1.1"]))
            .unwrap_err();
        assert_eq!(refusal.address, Some("169.254.1.1".parse().unwrap()));
        assert_eq!(refusal.reason, Reason::Forbidden(Forbidden::LinkLocal));
    }

    #[test]
    fn without_allow_every_other_address_passes() {
        let policy = HostPolicy::default();
        let cases: &[(&str, &[&str])] = &[
            ("127.0.0.1", &[]),
            ("localhost", &["127.0.0.1", "::1"]),
            ("db.internal", &["10.1.2.3"]),
            ("[::1]", &[]),
            ("warehouse.example.com", &["203.0.113.9"]),
            // A name not resolved yet passes on its name alone.
            ("db.internal", &[]),
            // 169.254.169.254's neighbour outside link-local, and a name merely containing "metadata".
            ("metadata-db.internal", &["169.255.169.254"]),
        ];
        for (host, addresses) in cases {
            check(&policy, host, addresses, Ok(()));
        }
    }

    #[test]
    fn allow_admits_its_networks_and_names_only() {
        let policy = HostPolicy::new(
            rules(&["10.0.0.0/8", "192.168.1.20", "db.example", "*.corp.example"]),
            vec![],
        );
        let cases: &[(&str, &[&str], Result<(), &str>)] = &[
            ("10.20.30.40", &[], Ok(())),
            ("192.168.1.20", &[], Ok(())),
            ("warehouse", &["10.0.0.7"], Ok(())),
            // An allowed name is allowed wherever it resolves, except to a forbidden address.
            ("DB.Example", &["203.0.113.1"], Ok(())),
            ("a.b.corp.example", &["203.0.113.2"], Ok(())),
            (
                "127.0.0.1",
                &[],
                Err(
                    "host 127.0.0.1 is not in [connection_hosts] allow (10.0.0.0/8, 192.168.1.20, db.example, *.corp.example); add it there to allow it",
                ),
            ),
            (
                "localhost",
                &["127.0.0.1"],
                Err(
                    "host 'localhost' resolves to 127.0.0.1, which is not in [connection_hosts] allow (10.0.0.0/8, 192.168.1.20, db.example, *.corp.example); add it there to allow it",
                ),
            ),
            // The wildcard does not match the bare domain.
            (
                "corp.example",
                &["203.0.113.3"],
                Err(
                    "host 'corp.example' resolves to 203.0.113.3, which is not in [connection_hosts] allow (10.0.0.0/8, 192.168.1.20, db.example, *.corp.example); add it there to allow it",
                ),
            ),
            // Every address must be allowed, not just the first.
            (
                "split",
                &["10.0.0.1", "192.168.1.21"],
                Err(
                    "host 'split' resolves to 192.168.1.21, which is not in [connection_hosts] allow (10.0.0.0/8, 192.168.1.20, db.example, *.corp.example); add it there to allow it",
                ),
            ),
            (
                "db.example",
                &["169.254.169.254"],
                Err(
                    "host 'db.example' resolves to 169.254.169.254, a cloud metadata address, which connections may never reach",
                ),
            ),
        ];
        for (host, addresses, expected) in cases {
            check(&policy, host, addresses, *expected);
        }
    }

    #[test]
    fn deny_beats_allow() {
        let policy = HostPolicy::new(
            rules(&["10.0.0.0/8", "*.example"]),
            rules(&["10.9.0.0/16", "secret.example", "*.legacy.example"]),
        );
        let cases: &[(&str, &[&str], Result<(), &str>)] = &[
            ("10.1.0.1", &[], Ok(())),
            ("open.example", &["203.0.113.1"], Ok(())),
            (
                "10.9.0.1",
                &[],
                Err(
                    "host 10.9.0.1 is in '10.9.0.0/16' in [connection_hosts] deny; remove that entry to allow it",
                ),
            ),
            (
                "open.example",
                &["10.9.8.7"],
                Err(
                    "host 'open.example' resolves to 10.9.8.7, which is in '10.9.0.0/16' in [connection_hosts] deny; remove that entry to allow it",
                ),
            ),
            (
                "Secret.Example.",
                &["10.0.0.1"],
                Err(
                    "host 'Secret.Example.' matches 'secret.example' in [connection_hosts] deny; remove that entry to allow it",
                ),
            ),
            (
                "db.legacy.example",
                &[],
                Err(
                    "host 'db.legacy.example' matches '*.legacy.example' in [connection_hosts] deny; remove that entry to allow it",
                ),
            ),
        ];
        for (host, addresses, expected) in cases {
            check(&policy, host, addresses, *expected);
        }
        // `deny` alone leaves everything else open.
        let deny_only = HostPolicy::new(vec![], rules(&["127.0.0.0/8"]));
        check(&deny_only, "10.0.0.1", &[], Ok(()));
        check(
            &deny_only,
            "localhost",
            &["127.0.0.1"],
            Err(
                "host 'localhost' resolves to 127.0.0.1, which is in '127.0.0.0/8' in [connection_hosts] deny; remove that entry to allow it",
            ),
        );
    }

    #[test]
    fn rules_parse_and_print_as_written() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("10.0.0.0/8", Ok("10.0.0.0/8")),
            ("192.168.1.20", Ok("192.168.1.20")),
            ("192.168.1.20/32", Ok("192.168.1.20")),
            ("fd12::/16", Ok("fd12::/16")),
            ("[::1]", Ok("::1")),
            ("0.0.0.0/0", Ok("0.0.0.0/0")),
            ("DB.Internal.", Ok("db.internal")),
            ("*.Corp.Example", Ok("*.corp.example")),
            ("pg_primary", Ok("pg_primary")),
            (
                "10.0.0.1/8",
                Err(
                    "'10.0.0.1/8' is not a network or host name (10.0.0.1 has bits set past /8; the network is 10.0.0.0/8); write an address, a network such as 10.0.0.0/8, a name such as db.internal or a wildcard such as *.db.internal",
                ),
            ),
            (
                "10.0.0.0/33",
                Err(
                    "'10.0.0.0/33' is not a network or host name (the prefix /33 is longer than 32 bits); write an address, a network such as 10.0.0.0/8, a name such as db.internal or a wildcard such as *.db.internal",
                ),
            ),
            (
                "10.0.0/8",
                Err(
                    "'10.0.0/8' is not a network or host name ('10.0.0' is not an IP address); write an address, a network such as 10.0.0.0/8, a name such as db.internal or a wildcard such as *.db.internal",
                ),
            ),
            (
                "10.0.0.0/x",
                Err(
                    "'10.0.0.0/x' is not a network or host name ('/x' is not a prefix length); write an address, a network such as 10.0.0.0/8, a name such as db.internal or a wildcard such as *.db.internal",
                ),
            ),
        ];
        for (entry, expected) in cases {
            let got = entry
                .parse::<HostRule>()
                .map(|r| r.to_string())
                .map_err(|e| e.to_string());
            assert_eq!(got, expected.map(str::to_owned).map_err(str::to_owned), "{entry}");
        }
        for bad in ["", "*", "*.", "db..internal", "db internal", "http://db", "a@b"] {
            assert!(bad.parse::<HostRule>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let net = |s: &str| match s.parse::<HostRule>().unwrap() {
            HostRule::Network(n) => n,
            other => panic!("{other:?}"),
        };
        let cases = [
            ("10.0.0.0/8", "10.255.255.255", true),
            ("10.0.0.0/8", "11.0.0.0", false),
            ("0.0.0.0/0", "203.0.113.1", true),
            ("0.0.0.0/0", "::1", false),
            ("fd12::/16", "fd12:1::1", true),
            ("fd12::/16", "fd13::1", false),
            ("::/0", "2001:db8::1", true),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
        ];
        for (network, address, expected) in cases {
            assert_eq!(
                net(network).contains(address.parse().unwrap()),
                expected,
                "{network} ∋ {address}"
            );
        }
    }
}
