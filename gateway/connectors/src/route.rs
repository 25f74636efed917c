//! Where a network connection goes: the DSN's host resolved once, every address it resolves to checked
//! against the [`HostPolicy`], and the pool's connect options pinned to the checked address, so that
//! nothing resolves the name again between the check and the connect.
//!
//! One exception, chosen so that certificate checks keep working: when TLS verifies the server's name
//! (PostgreSQL `sslmode=verify-full`, MySQL `ssl-mode=VERIFY_IDENTITY`), sqlx takes the name it verifies
//! from the same `host` it connects to, so an address in its place would fail every handshake. Such a
//! connection keeps its name: the addresses are checked as above, sqlx resolves the name again when it
//! connects, and a name that moved to another address meanwhile reaches a server that must still prove,
//! with a certificate for that name, that it is the database before any credential or query is sent.

use std::net::IpAddr;
use std::time::Duration;

use crate::hosts::{HostPolicy, strip_brackets};
use crate::pool::ConnectOptions;
use crate::{ConnectorError, ConnectorKind, Dsn};

/// What the connection keeps after its host passed the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pinning {
    /// The checked address replaces the host name in the connect options.
    Address,
    /// The host name stays, because TLS verifies the server's certificate against it.
    Name,
}

/// A server connection's TCP host and port, the policy it must pass and how the engine puts an address in
/// its connect options. Unix sockets and files have no route: no network host is reached.
pub(crate) struct Route<DB: sqlx::Database> {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) policy: HostPolicy,
    pub(crate) pinning: Pinning,
    pub(crate) with_address: fn(ConnectOptions<DB>, IpAddr) -> ConnectOptions<DB>,
}

impl<DB: sqlx::Database> Route<DB> {
    /// Resolves the host once, checks every address, and returns the options to connect with: `template`
    /// pinned to the address chosen by [`choose`], or unchanged under [`Pinning::Name`]. `target` names
    /// the server in an error.
    pub(crate) async fn pin(
        &self,
        template: &ConnectOptions<DB>,
        target: &str,
    ) -> Result<(ConnectOptions<DB>, IpAddr), ConnectorError> {
        let addresses = self.resolve(target).await?;
        self.policy.check(&self.host, &addresses)?;
        let Some(address) = choose(&addresses, self.port).await else {
            return Err(ConnectorError::Unreachable {
                target: target.to_owned(),
                message: format!("host '{}' resolves to no address", self.host),
            });
        };
        let options = match self.pinning {
            Pinning::Address => (self.with_address)(template.clone(), address),
            Pinning::Name => template.clone(),
        };
        Ok((options, address))
    }

    /// The policy's verdict on this host without connecting. A name that does not resolve from here is
    /// checked by name alone: the pool checks its addresses again before it connects.
    pub(crate) async fn check(&self, target: &str) -> Result<(), ConnectorError> {
        self.policy.check(&self.host, &[])?;
        match self.resolve(target).await {
            Ok(addresses) => Ok(self.policy.check(&self.host, &addresses)?),
            Err(error) => {
                tracing::debug!(host = %self.host, %error, "host not resolved; checked by name only");
                Ok(())
            }
        }
    }

    /// Every address the host resolves to, each once, in the resolver's order. An address literal is
    /// its own answer, without a lookup.
    async fn resolve(&self, target: &str) -> Result<Vec<IpAddr>, ConnectorError> {
        let host = strip_brackets(&self.host);
        if let Ok(address) = host.parse::<IpAddr>() {
            return Ok(vec![address]);
        }
        // The name is refused before it is looked up when the policy refuses it by name.
        self.policy.check(&self.host, &[])?;
        let found =
            tokio::net::lookup_host((host, self.port))
                .await
                .map_err(|e| ConnectorError::Unreachable {
                    target: target.to_owned(),
                    message: format!("could not resolve host '{}': {e}", self.host),
                })?;
        let mut addresses: Vec<IpAddr> = Vec::new();
        for address in found.map(|a| a.ip()) {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        Ok(addresses)
    }
}

/// How long a pinning probe waits for one address to accept before it tries the next.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The address to pin among checked ones: the first that accepts a TCP connection, in the resolver's
/// order, as connecting by name would have picked (`localhost` resolving to `::1` first for a server
/// that listens on 127.0.0.1 only). The probe is closed at once. When none accepts, the first, whose
/// connect error the pool reports.
async fn choose(addresses: &[IpAddr], port: u16) -> Option<IpAddr> {
    let first = *addresses.first()?;
    if addresses.len() == 1 {
        return Some(first);
    }
    for &address in addresses {
        let probe = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect((address, port)));
        if let Ok(Ok(_stream)) = probe.await {
            return Some(address);
        }
    }
    Some(first)
}

/// Checks a connection's DSN against the host policy before it is stored, as its pool will before it
/// connects: resolved once, every address checked. DuckDB and SQLite files, and Unix sockets, reach no
/// network host and always pass. A DSN the engine cannot read is an error too.
pub async fn check_dsn(kind: ConnectorKind, dsn: &Dsn, policy: &HostPolicy) -> Result<(), ConnectorError> {
    let target = dsn.target();
    match kind {
        ConnectorKind::Postgres => {
            let connect = crate::postgres::connect_options(dsn)?;
            match crate::postgres::route(&connect, policy) {
                Some(route) => route.check(&target).await,
                None => Ok(()),
            }
        }
        ConnectorKind::MySql => {
            let connect = crate::mysql::connect_options(dsn)?;
            match crate::mysql::route(&connect, policy) {
                Some(route) => route.check(&target).await,
                None => Ok(()),
            }
        }
        ConnectorKind::DuckDb | ConnectorKind::Sqlite => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// The host the pool would connect to for `dsn`, after `localhost` passed the policy.
    async fn pinned_host(dsn: &str) -> (String, IpAddr) {
        let connect = crate::postgres::connect_options(&Dsn::new(dsn)).unwrap();
        let route = crate::postgres::route(&connect, &HostPolicy::default()).unwrap();
        let (options, address) = route.pin(&connect, "test").await.unwrap();
        (options.get_host().to_owned(), address)
    }

    #[tokio::test]
    async fn the_checked_address_replaces_the_name_unless_tls_verifies_the_name() {
        let localhost = tokio::net::lookup_host(("localhost", 0))
            .await
            .unwrap()
            .next()
            .unwrap()
            .ip();
        let cases = [
            ("postgres://app@localhost/db", localhost.to_string()),
            (
                "postgres://app@localhost/db?sslmode=require",
                localhost.to_string(),
            ),
            (
                "postgres://app@localhost/db?sslmode=verify-ca",
                localhost.to_string(),
            ),
            // sqlx verifies the certificate against the host it connects to: the name must stay.
            (
                "postgres://app@localhost/db?sslmode=verify-full",
                "localhost".to_owned(),
            ),
            ("postgres://app@127.0.0.1/db", "127.0.0.1".to_owned()),
            // An IPv6 literal is pinned without its URL brackets, as the socket address needs it.
            ("postgres://app@[::1]/db", "::1".to_owned()),
        ];
        for (dsn, expected) in cases {
            let (host, _) = pinned_host(dsn).await;
            assert_eq!(host, expected, "{dsn}");
        }
        let connect =
            crate::mysql::connect_options(&Dsn::new("mysql://app@localhost/db?ssl-mode=VERIFY_IDENTITY"))
                .unwrap();
        let route = crate::mysql::route(&connect, &HostPolicy::default()).unwrap();
        assert_eq!(route.pinning, Pinning::Name);
        let connect =
            crate::mysql::connect_options(&Dsn::new("mysql://app@localhost/db?ssl-mode=REQUIRED")).unwrap();
        let route = crate::mysql::route(&connect, &HostPolicy::default()).unwrap();
        let (options, _) = route.pin(&connect, "test").await.unwrap();
        assert_eq!(options.get_host(), localhost.to_string());
    }

    #[tokio::test]
    async fn the_address_that_accepts_is_pinned() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Nothing listens on 127.0.0.2's port; the resolver's first answer is passed over for 127.0.0.1.
        let closed: IpAddr = "127.0.0.2".parse().unwrap();
        let open: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(choose(&[closed, open], port).await, Some(open));
        assert_eq!(choose(&[open], port).await, Some(open));
        drop(listener);
        assert_eq!(choose(&[closed, open], port).await, Some(closed));
        assert_eq!(choose(&[], port).await, None);
    }
}
