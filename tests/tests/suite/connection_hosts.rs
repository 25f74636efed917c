//! `[connection_hosts]` end to end: the real gateway reaching the run's loopback PostgreSQL when its
//! network is allowed, and refusing, with the message and the fix, a name that resolves outside `allow`,
//! link-local and metadata hosts, a bad network in the file, and `sluice connection add` of a refused
//! host (nothing stored).

use std::path::Path;

use pretty_assertions::assert_eq;
use serde_json::json;
use sluice_e2e::{Gateway, Launch, call, cli, text};
use sluice_test_servers::{Engine, Server};

/// `sluice up` with `config` as its config file, in a temporary data directory of its own.
async fn launch(config: &str) -> anyhow::Result<(Gateway, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("sluice.toml");
    std::fs::write(&file, config)?;
    let gw = Gateway::launch(Launch {
        data_dir: Some(dir.path().join("data")),
        args: vec!["--config".into(), file.display().to_string()],
        ..Default::default()
    })
    .await?;
    Ok((gw, dir))
}

fn connection(name: &str, kind: &str, dsn: &str) -> String {
    format!("\n[[connections]]\nname = \"{name}\"\nkind = \"{kind}\"\ndsn = \"{dsn}\"\n")
}

/// What the resolver gives first for `localhost` here (127.0.0.1 on the test machines).
async fn localhost() -> anyhow::Result<std::net::IpAddr> {
    let first = tokio::net::lookup_host(("localhost", 0)).await?.next();
    first
        .map(|a| a.ip())
        .ok_or_else(|| anyhow::anyhow!("localhost does not resolve"))
}

#[tokio::test]
async fn an_allowed_network_is_reached_and_everything_else_refused_with_the_fix() -> anyhow::Result<()> {
    let server = Server::shared(Engine::Postgres);
    let by_name = server.dsn.replace("@127.0.0.1:", "@localhost:");

    // Allowed: the run's PostgreSQL on 127.0.0.1, named by address and by name.
    let (gw, _dir) = launch(&format!(
        "[connection_hosts]\nallow = [\"127.0.0.0/8\"]\n{}{}",
        connection("pg", "postgres", &server.dsn),
        connection("pg_by_name", "postgres", &by_name),
    ))
    .await?;
    let client = gw.client().await?;
    for name in ["pg", "pg_by_name"] {
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": name, "sql": "SELECT 41 + 1 AS answer"}),
        )
        .await?;
        assert_eq!(r.is_error, Some(false), "{name}: {}", text(&r));
        assert!(text(&r).contains("42"), "{name}: {}", text(&r));
    }
    client.cancel().await?;
    gw.stop().await?;

    // Refused: the same server by a name that resolves outside `allow`, and the hosts no `allow` opens.
    let first = localhost().await?;
    let (gw, dir) = launch(&format!(
        "[connection_hosts]\nallow = [\"10.0.0.0/8\"]\n{}{}{}{}",
        connection("wh", "postgres", &by_name),
        connection(
            "metadata_ip",
            "postgres",
            "postgres://app:s3cret@169.254.169.254:5432/db"
        ),
        connection(
            "link_local",
            "postgres",
            "postgres://app:s3cret@[fe80::1]:5432/db"
        ),
        connection("gce", "mysql", "mysql://app:s3cret@metadata.google.internal/db"),
    ))
    .await?;
    let client = gw.client().await?;
    let cases = [
        (
            "wh",
            format!(
                "host 'localhost' resolves to {first}, which is not in [connection_hosts] allow (10.0.0.0/8); add it there to allow it"
            ),
        ),
        (
            "metadata_ip",
            "host 169.254.169.254 is a cloud metadata address, which connections may never reach".to_owned(),
        ),
        (
            "link_local",
            "host fe80::1 is a link-local address, which connections may never reach".to_owned(),
        ),
        (
            "gce",
            "host 'metadata.google.internal' is the name of a cloud metadata service, which connections may never reach"
                .to_owned(),
        ),
    ];
    for (name, expected) in &cases {
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": name, "sql": "SELECT 1"}),
        )
        .await?;
        assert_eq!(r.is_error, Some(true), "{name}: {}", text(&r));
        assert!(text(&r).contains(expected.as_str()), "{name}: {}", text(&r));
        assert!(!text(&r).contains("s3cret"), "{name}: {}", text(&r));
    }
    client.cancel().await?;

    // `sluice connection add` refuses the same hosts before storing anything.
    let config = dir.path().join("sluice.toml");
    let add = |name: &'static str, kind: &'static str, dsn: String| {
        let config = config.clone();
        let data = gw.data_dir.clone();
        async move {
            let config = config.display().to_string();
            cli(
                &data,
                &[
                    "connection",
                    "add",
                    "--config",
                    &config,
                    "--name",
                    name,
                    "--kind",
                    kind,
                    "--dsn",
                    &dsn,
                ],
            )
            .await
        }
    };
    let refused = [
        ("added_wh", "postgres", by_name.clone(), &cases[0].1),
        (
            "added_meta",
            "postgres",
            "postgres://app:s3cret@169.254.169.254/db".to_owned(),
            &cases[1].1,
        ),
        (
            "added_gce",
            "mysql",
            "mysql://app:s3cret@metadata.google.internal/db".to_owned(),
            &cases[3].1,
        ),
    ];
    for (name, kind, dsn, expected) in refused {
        let out = add(name, kind, dsn).await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was added");
        assert!(
            stderr.contains(&format!("connection '{name}': {expected}")),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
    let listed = list_stored(&gw.data_dir, &config).await?;
    // `sluice up`'s own demo warehouse is the only stored connection.
    assert_eq!(listed, ["demo"], "a refused connection was stored");
    gw.stop().await?;
    Ok(())
}

/// The names of the stored connections (`sluice connection list` marks them `store`).
async fn list_stored(data: &Path, config: &Path) -> anyhow::Result<Vec<String>> {
    let config = config.display().to_string();
    let out = cli(data, &["connection", "list", "--config", &config]).await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter(|l| l.split('\t').nth(2) == Some("store"))
        .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
        .collect())
}

#[tokio::test]
async fn a_bad_network_stops_the_start_naming_its_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        "[connection_hosts]\nallow = [\"127.0.0.0/8\"]\ndeny = [\"10.0.0/8\"]\n",
    )?;
    let config = config.display().to_string();
    let out = cli(&dir.path().join("data"), &["config", "show", "--config", &config]).await?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "[connection_hosts] deny: '10.0.0/8' is not a network or host name ('10.0.0' is not an IP address)"
        ),
        "{stderr}"
    );

    // A valid section is shown as it is read.
    std::fs::write(
        dir.path().join("sluice.toml"),
        "[connection_hosts]\nallow = [\"127.0.0.0/8\", \"*.DB.Internal\"]\n",
    )?;
    let out = cli(&dir.path().join("data"), &["config", "show", "--config", &config]).await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout)?;
    assert!(
        stdout.contains("\n[connection_hosts]\n# link-local, cloud metadata, unspecified, multicast and broadcast addresses: always refused\nallow = [\"127.0.0.0/8\", \"*.db.internal\"]\ndeny = []\n"),
        "{stdout}"
    );
    Ok(())
}
