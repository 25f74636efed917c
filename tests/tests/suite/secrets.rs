//! Master key rotation against the real binary: `sluice secrets rotate` re-seals every stored secret in
//! another process while a gateway holding both keys serves queries on stored connections with API keys;
//! afterwards the new key alone opens everything and the old key alone is refused by name.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use sluice_e2e::{Gateway, Launch, call, sluice_bin, text};

const OLD_KEY: &str = "6b1d0f3a9c2e5b8d1f4a7c0e3b6d9f2a5c8e1b4d7f0a3c6e9b2d5f8a1c4e7b0d";
const NEW_KEY: &str = "0e9b2d5f8a1c4e7b0d3f6a9c2e5b8d1f4a7c0e3b6d9f2a5c8e1b4d7f0a3c6e9b";

/// The master key variables for `current` and, while rotating, `previous`.
fn keys(current: &str, previous: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![("SLUICE_MASTER_KEY".to_owned(), current.to_owned())];
    if let Some(previous) = previous {
        env.push(("SLUICE_MASTER_KEY_PREVIOUS".to_owned(), previous.to_owned()));
    }
    env
}

/// Where the store lives and how its gateway starts: `sluice up` on SQLite in the data directory, or
/// `sluice serve` on a PostgreSQL store, as a team runs it.
struct Deployment {
    _dir: tempfile::TempDir,
    data: PathBuf,
    command: &'static str,
    /// The store's variables (none for SQLite).
    store: Vec<(String, String)>,
    /// A DuckDB file the stored connections point at.
    warehouse: String,
}

impl Deployment {
    async fn new(postgres: bool) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let warehouse = dir.path().join("wh.duckdb");
        duckdb::Connection::open(&warehouse)
            .unwrap()
            .execute_batch("CREATE TABLE t AS SELECT range AS n FROM range(42);")
            .unwrap();
        let store = if postgres {
            vec![
                (
                    "SLUICE_STORE_URL".to_owned(),
                    super::instances::store_url_named("secrets").await,
                ),
                (
                    "SLUICE_FIRST_KEY_FILE".to_owned(),
                    data.join("local_api_key").display().to_string(),
                ),
            ]
        } else {
            Vec::new()
        };
        Deployment {
            _dir: dir,
            data,
            command: if postgres { "serve" } else { "up" },
            store,
            warehouse: warehouse.display().to_string(),
        }
    }

    fn env(&self, keys: &[(String, String)]) -> Vec<(String, String)> {
        self.store.iter().chain(keys).cloned().collect()
    }

    async fn launch(&self, keys: &[(String, String)]) -> Gateway {
        Gateway::launch(Launch {
            command: Some(self.command),
            env: self.env(keys),
            data_dir: Some(self.data.clone()),
            ..Launch::default()
        })
        .await
        .unwrap()
    }

    /// `sluice ARGS --data-dir DATA` with the store's variables and exactly the master key variables in
    /// `keys`.
    async fn run(&self, keys: &[(String, String)], args: &[&str]) -> std::process::Output {
        let mut cmd = tokio::process::Command::new(sluice_bin());
        cmd.args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .env_remove("SLUICE_MASTER_KEY")
            .env_remove("SLUICE_MASTER_KEY_FILE")
            .env_remove("SLUICE_MASTER_KEY_PREVIOUS")
            .env_remove("SLUICE_MASTER_KEY_PREVIOUS_FILE")
            .env_remove("SLUICE_STORE_URL")
            .env("SLUICE_LOG", "warn")
            .env("SLUICE_SANDBOX", "false");
        for (k, v) in self.env(keys) {
            cmd.env(k, v);
        }
        tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("the command finished in time")
            .unwrap()
    }

    /// Like [`Deployment::run`], asserting success; returns stdout.
    async fn ok(&self, keys: &[(String, String)], args: &[&str]) -> String {
        let out = self.run(keys, args).await;
        assert!(
            out.status.success(),
            "sluice {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A gateway start that must be refused; returns what it printed on stderr.
    async fn refused_start(&self, keys: &[(String, String)]) -> String {
        let out = self.run(keys, &[self.command, "--listen", "127.0.0.1:0"]).await;
        assert!(!out.status.success(), "the gateway started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    async fn add_connection(&self, keys: &[(String, String)], name: &str) {
        self.ok(
            keys,
            &[
                "connection",
                "add",
                "--name",
                name,
                "--kind",
                "duckdb",
                "--dsn",
                &self.warehouse,
            ],
        )
        .await;
    }
}

/// Queries `connection` as `key` on a fresh session; panics unless the answer is right.
async fn query(gw: &Gateway, key: &str, connection: &str) {
    let client = gw.client_with_key(key).await.unwrap();
    let r = call(&client, "query_database", question(connection))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(false), "{connection}: {}", text(&r));
    assert!(text(&r).contains("42"), "{}", text(&r));
    let _ = client.cancel().await;
}

fn question(connection: &str) -> serde_json::Value {
    json!({"connection_name": connection, "sql": "SELECT count(*) AS n FROM t"})
}

/// `sluice up` on SQLite.
#[tokio::test]
async fn the_master_key_rotates_while_a_local_gateway_serves() {
    rotate_while_serving(Deployment::new(false).await).await;
}

/// `sluice serve` on a PostgreSQL store.
#[tokio::test]
async fn the_master_key_rotates_while_a_gateway_on_postgres_serves() {
    rotate_while_serving(Deployment::new(true).await).await;
}

async fn rotate_while_serving(d: Deployment) {
    let old = keys(OLD_KEY, None);
    let both = keys(NEW_KEY, Some(OLD_KEY));
    let new = keys(NEW_KEY, None);
    // `up` also stores the demo warehouse's connection.
    let extra = usize::from(d.command == "up");

    // An install under the old key: the admin key (and with `up` the demo connection), eight stored
    // connections and an analyst key.
    d.launch(&old).await.stop().await.unwrap();
    let mut names: Vec<String> = (1..=8).map(|i| format!("wh{i}")).collect();
    for name in &names {
        d.add_connection(&old, name).await;
    }
    let agent = d
        .ok(&old, &["key", "create", "--name", "agent", "--role", "analyst"])
        .await
        .trim()
        .to_owned();
    let admin = std::fs::read_to_string(d.data.join("local_api_key"))
        .unwrap()
        .trim()
        .to_owned();

    // The gateway runs with the new key as current and the old one as previous; the first process with
    // the new key registers it as version 2. A connection added now is sealed under version 2, and the
    // gateway opens both versions.
    let gw = d.launch(&both).await;
    d.add_connection(&both, "fresh").await;
    names.push("fresh".to_owned());
    let status = d.ok(&[], &["secrets", "status"]).await;
    assert!(
        status.contains(&format!(
            "version 1\tprevious\t{} connection DSNs\t1 store secrets",
            8 + extra
        )),
        "{status}"
    );
    assert!(
        status.contains("version 2\tcurrent\t1 connection DSNs\t0 store secrets"),
        "{status}"
    );
    assert!(
        status.contains("sealed records are under versions 1, 2: run `sluice secrets rotate`"),
        "{status}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let client = gw.client_with_key(&agent).await.unwrap();
        let r = call(&client, "query_database", question("fresh")).await.unwrap();
        let _ = client.cancel().await;
        if r.is_error == Some(false) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new connection never loaded: {}",
            text(&r)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Calls on every stored connection with both API keys, continuously, while the rotation runs in
    // another process. Each worker opens a new session every few calls, so keys are checked afresh.
    let gw = Arc::new(gw);
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (gw, stop, calls, names) = (
            Arc::clone(&gw),
            Arc::clone(&stop),
            Arc::clone(&calls),
            names.clone(),
        );
        let key = if worker % 2 == 0 {
            admin.clone()
        } else {
            agent.clone()
        };
        workers.push(tokio::spawn(async move {
            let mut n = worker;
            while !stop.load(Ordering::SeqCst) {
                let client = gw.client_with_key(&key).await.unwrap();
                for _ in 0..5 {
                    let connection = &names[n % names.len()];
                    n += 1;
                    let r = call(&client, "query_database", question(connection))
                        .await
                        .unwrap();
                    assert_eq!(r.is_error, Some(false), "{connection}: {}", text(&r));
                    assert!(text(&r).contains("42"), "{}", text(&r));
                    calls.fetch_add(1, Ordering::SeqCst);
                }
                let _ = client.cancel().await;
            }
        }));
    }
    while calls.load(Ordering::SeqCst) < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reloads_before = gw.log().matches("connections reloaded").count();
    let before = calls.load(Ordering::SeqCst);
    let rotated = d.ok(&both, &["secrets", "rotate"]).await;
    let during = calls.load(Ordering::SeqCst) - before;
    assert!(
        rotated.contains(&format!(
            "re-sealed {} connection DSNs and 1 store secrets from master key version 1 to version 2\n\
             retired master key version 1: nothing is sealed under it any more\n\
             every sealed record is under version 2; the previous master key is no longer needed",
            8 + extra
        )),
        "{rotated}"
    );
    // The serving gateway reloads the re-sealed connections (opened under version 2 now) while the calls
    // go on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while gw.log().matches("connections reloaded").count() == reloads_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reload after the rotation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = calls.load(Ordering::SeqCst);
    while calls.load(Ordering::SeqCst) < after + 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let total = calls.load(Ordering::SeqCst);
    assert!(during > 0, "no call ran during the rotation");
    assert!(!gw.log().contains("connection reload failed"), "{}", gw.log());
    eprintln!(
        "{}: {total} calls succeeded, {during} of them while `sluice secrets rotate` ran",
        d.command
    );

    let status = d.ok(&[], &["secrets", "status"]).await;
    assert!(status.contains("version 1\tretired "), "{status}");
    assert!(
        status.contains(&format!(
            "version 2\tcurrent\t{} connection DSNs\t1 store secrets",
            9 + extra
        )),
        "{status}"
    );
    assert!(
        status.contains("every sealed record is under version 2"),
        "{status}"
    );
    let again = d.ok(&both, &["secrets", "rotate"]).await;
    assert!(
        again.contains("nothing to re-seal: every sealed record is under master key version 2"),
        "{again}"
    );
    let Ok(gw) = Arc::try_unwrap(gw) else {
        panic!("a worker still holds the gateway")
    };
    gw.stop().await.unwrap();

    // The new key alone: everything opens and both API keys still work.
    let gw = d.launch(&new).await;
    for name in &names {
        query(&gw, &agent, name).await;
    }
    query(&gw, &admin, "wh1").await;
    gw.stop().await.unwrap();

    // The old key alone, or a key the store never saw, is refused at start by name.
    let err = d.refused_start(&old).await;
    assert!(
        err.contains(
            "the master key is version 1 of this store's master keys, which version 2 has replaced (nothing has \
             been sealed under it since"
        ),
        "{err}"
    );
    assert!(
        err.contains("start with the newest key (SLUICE_MASTER_KEY, SLUICE_MASTER_KEY_FILE or the data directory's master.key)"),
        "{err}"
    );
    let err = d.refused_start(&keys(&"5a".repeat(32), None)).await;
    assert!(
        err.contains("is none of this store's master keys (versions 1, 2)"),
        "{err}"
    );
}

/// A local install rotates with its key files: the old `master.key` becomes `master.key.previous`, the
/// rotation creates the new `master.key`, and the previous file can then go.
#[tokio::test]
async fn a_local_install_rotates_with_its_key_files() {
    let d = Deployment::new(false).await;
    let data = d.data.clone();
    d.launch(&[]).await.stop().await.unwrap();
    d.add_connection(&[], "wh1").await;
    let admin = std::fs::read_to_string(data.join("local_api_key"))
        .unwrap()
        .trim()
        .to_owned();
    let key_file = data.join("master.key");
    let previous: PathBuf = data.join("master.key.previous");
    std::fs::rename(&key_file, &previous).unwrap();

    let rotated = d.ok(&[], &["secrets", "rotate"]).await;
    assert!(
        rotated.contains(
            "re-sealed 2 connection DSNs and 1 store secrets from master key version 1 to version 2"
        ),
        "{rotated}"
    );
    assert!(
        rotated.contains(&format!("remove {}: it is no longer needed", previous.display())),
        "{rotated}"
    );
    let old_key = std::fs::read_to_string(&previous).unwrap();
    std::fs::remove_file(&previous).unwrap();

    let gw = d.launch(&[]).await;
    query(&gw, &admin, "wh1").await;
    gw.stop().await.unwrap();

    // The old key put back as the only key is refused.
    std::fs::rename(&key_file, d._dir.path().join("new.key")).unwrap();
    std::fs::write(&key_file, old_key).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = d.refused_start(&[]).await;
    assert!(
        err.contains("the master key is version 1 of this store's master keys, which version 2 has replaced"),
        "{err}"
    );
}
