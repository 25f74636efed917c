//! The connection host policy against real servers: loopback PostgreSQL and MariaDB reached when allowed,
//! names and addresses refused with their messages before anything connects.

use pretty_assertions::assert_eq;
use sluice_connectors::hosts::{HostPolicy, HostRule};
use sluice_connectors::mysql::MySqlWarehouse;
use sluice_connectors::postgres::PostgresWarehouse;
use sluice_connectors::{ConnectorError, ConnectorKind, Dsn, PoolOptions, Warehouse, check_dsn};
use sluice_test_servers::{Engine, Server};

fn policy(allow: &[&str], deny: &[&str]) -> HostPolicy {
    let rules = |entries: &[&str]| entries.iter().map(|e| e.parse::<HostRule>().unwrap()).collect();
    HostPolicy::new(rules(allow), rules(deny))
}

fn pool(hosts: HostPolicy) -> PoolOptions {
    PoolOptions {
        acquire_timeout: std::time::Duration::from_secs(3),
        hosts,
        ..PoolOptions::default()
    }
}

/// What the resolver gives first for `localhost` here (127.0.0.1 on the test machines).
async fn localhost() -> std::net::IpAddr {
    tokio::net::lookup_host(("localhost", 0))
        .await
        .unwrap()
        .next()
        .unwrap()
        .ip()
}

fn refusal(result: Result<(), ConnectorError>) -> String {
    match result {
        Err(error @ ConnectorError::HostRefused(_)) => error.to_string(),
        other => panic!("expected a host refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_servers_are_reached_when_their_network_is_allowed() {
    for engine in [Engine::Postgres, Engine::MariaDb] {
        let server = Server::shared(engine);
        let allowed = pool(policy(&["127.0.0.0/8", "::1"], &[]));
        let by_name = server.dsn.replace("@127.0.0.1:", "@localhost:");
        for dsn in [server.dsn.clone(), by_name] {
            let warehouse: Box<dyn Warehouse> = match engine {
                Engine::Postgres => Box::new(PostgresWarehouse::new(dsn.as_str(), allowed.clone()).unwrap()),
                Engine::MariaDb => Box::new(MySqlWarehouse::new(dsn.as_str(), allowed.clone()).unwrap()),
            };
            warehouse.ping().await.unwrap_or_else(|e| panic!("{dsn}: {e}"));
        }
    }
}

#[tokio::test]
async fn a_name_resolving_outside_allow_is_refused_before_connecting() {
    let first = localhost().await;
    for engine in [Engine::Postgres, Engine::MariaDb] {
        let server = Server::shared(engine);
        let dsn = server.dsn.replace("@127.0.0.1:", "@localhost:");
        let refused = pool(policy(&["10.0.0.0/8"], &[]));
        let warehouse: Box<dyn Warehouse> = match engine {
            Engine::Postgres => Box::new(PostgresWarehouse::new(dsn.as_str(), refused.clone()).unwrap()),
            Engine::MariaDb => Box::new(MySqlWarehouse::new(dsn.as_str(), refused.clone()).unwrap()),
        };
        let expected = format!(
            "host 'localhost' resolves to {first}, which is not in [connection_hosts] allow (10.0.0.0/8); add it there to allow it"
        );
        assert_eq!(refusal(warehouse.ping().await), expected);
        // Every call is refused the same way (nothing was pinned), and so is the DSN before it is stored.
        assert_eq!(refusal(warehouse.ping().await), expected);
        let kind = match engine {
            Engine::Postgres => ConnectorKind::Postgres,
            Engine::MariaDb => ConnectorKind::MySql,
        };
        assert_eq!(
            refusal(check_dsn(kind, &Dsn::new(dsn.as_str()), &refused.hosts).await),
            expected
        );
        // `deny` beats `allow` on the same server.
        let denied = pool(policy(&["127.0.0.0/8"], &["127.0.0.1"]));
        assert_eq!(
            refusal(check_dsn(kind, &Dsn::new(server.dsn.as_str()), &denied.hosts).await),
            "host 127.0.0.1 is in '127.0.0.1' in [connection_hosts] deny; remove that entry to allow it"
        );
    }
}

#[tokio::test]
async fn link_local_and_metadata_hosts_are_refused_by_default() {
    let cases = [
        (
            "postgres://app:s3cret@169.254.169.254:5432/db",
            "host 169.254.169.254 is a cloud metadata address, which connections may never reach",
        ),
        (
            "postgres://app:s3cret@[fe80::1]:5432/db",
            "host fe80::1 is a link-local address, which connections may never reach",
        ),
        (
            "postgres://app:s3cret@metadata.google.internal/db",
            "host 'metadata.google.internal' is the name of a cloud metadata service, which connections may never reach",
        ),
        (
            "postgres://app:s3cret@169.254.10.20/db?sslmode=verify-full",
            "host 169.254.10.20 is a link-local address, which connections may never reach",
        ),
        (
            "mysql://app:s3cret@169.254.169.254:3306/db",
            "host 169.254.169.254 is a cloud metadata address, which connections may never reach",
        ),
        (
            "mysql://app:s3cret@[fd00:ec2::254]/db",
            "host fd00:ec2::254 is a cloud metadata address, which connections may never reach",
        ),
        (
            "mysql://app:s3cret@0.0.0.0/db",
            "host 0.0.0.0 is an unspecified address, which connections may never reach",
        ),
    ];
    // Even an `allow` naming everything cannot open them.
    for hosts in [
        HostPolicy::default(),
        policy(&["0.0.0.0/0", "::/0", "*.internal"], &[]),
    ] {
        for (dsn, expected) in cases {
            let (kind, warehouse): (_, Box<dyn Warehouse>) = if dsn.starts_with("postgres") {
                (
                    ConnectorKind::Postgres,
                    Box::new(PostgresWarehouse::new(dsn, pool(hosts.clone())).unwrap()),
                )
            } else {
                (
                    ConnectorKind::MySql,
                    Box::new(MySqlWarehouse::new(dsn, pool(hosts.clone())).unwrap()),
                )
            };
            let message = refusal(warehouse.ping().await);
            assert_eq!(message, expected, "{dsn}");
            assert!(!message.contains("s3cret"));
            assert_eq!(
                refusal(check_dsn(kind, &Dsn::new(dsn), &hosts).await),
                expected,
                "{dsn}"
            );
        }
    }
}

#[tokio::test]
async fn files_and_unix_sockets_are_not_network_hosts() {
    let only_ten = policy(&["10.0.0.0/8"], &[]);
    let cases = [
        (
            ConnectorKind::Postgres,
            "postgres://app@%2Fvar%2Frun%2Fpostgresql/db",
        ),
        (
            ConnectorKind::Postgres,
            "postgres://app@localhost/db?host=/var/run/postgresql",
        ),
        (
            ConnectorKind::MySql,
            "mysql://app@localhost/db?socket=/run/mysqld/mysqld.sock",
        ),
        (ConnectorKind::Sqlite, "/var/data/app.db"),
        (ConnectorKind::DuckDb, "/var/data/warehouse.duckdb"),
    ];
    for (kind, dsn) in cases {
        check_dsn(kind, &Dsn::new(dsn), &only_ten)
            .await
            .unwrap_or_else(|e| panic!("{dsn}: {e}"));
    }
}
