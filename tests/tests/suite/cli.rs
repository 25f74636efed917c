//! The `sluice` command line and what it leaves on disk: first run, keys, connections, config layering,
//! sealed DSNs, redacted audit records and the DuckDB lock hand-back.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;
use sluice_e2e::{Gateway, Launch, call, cli, text};

#[tokio::test]
async fn first_run_prints_the_key_once_and_later_runs_reuse_it() -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let gw = Gateway::launch(Launch {
        data_dir: Some(temp.path().join("data")),
        ..Default::default()
    })
    .await?;
    let printed = gw.printed();
    assert!(gw.key.starts_with("sluice_") && gw.key.len() == 50, "{}", gw.key);
    assert!(printed.contains(&format!("    {}", gw.key)), "{printed}");
    assert!(
        printed.contains(&format!(
            "claude mcp add --transport http sluice {} --header \"Authorization: Bearer {}\"",
            gw.url, gw.key
        )),
        "{printed}"
    );
    let mode = std::fs::metadata(gw.data_dir.join("local_api_key"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(gw.data_dir.join("sluice.db").exists() && gw.data_dir.join("demo.duckdb").exists());
    let dir = gw.data_dir.clone();
    gw.stop().await?;

    let again = Gateway::launch(Launch {
        data_dir: Some(dir.clone()),
        ..Default::default()
    })
    .await?;
    let printed = again.printed();
    assert!(
        !printed.contains(&again.key),
        "the key was printed again:\n{printed}"
    );
    let canonical = std::fs::canonicalize(&dir)?;
    assert!(
        printed.contains(&format!(
            "claude mcp add --transport http sluice {} --header \"Authorization: Bearer $(cat {}/local_api_key)\"",
            again.url,
            canonical.display()
        )),
        "{printed}"
    );
    let client = again.client().await?;
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 1"}),
    )
    .await?;
    assert_eq!(r.is_error, Some(false));
    Ok(())
}

#[tokio::test]
async fn key_create_prints_only_the_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = cli(dir.path(), &["key", "create", "--name", "ci"]).await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout)?;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let key = lines[0];
    assert!(key.starts_with("sluice_") && key.len() == 50, "{key}");
    assert!(
        key[7..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{key}"
    );
    // Duplicate names and unknown scopes are clear errors.
    let dup = cli(dir.path(), &["key", "create", "--name", "ci"]).await?;
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("an API key named 'ci' already exists"));
    let bad = cli(dir.path(), &["key", "create", "--name", "x", "--scope", "root"]).await?;
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope 'root'"));
    let list = String::from_utf8(cli(dir.path(), &["key", "list"]).await?.stdout)?;
    assert!(
        list.starts_with("ci\t") && list.contains("query schema sandbox\tactive"),
        "{list}"
    );
    assert!(!list.contains(key), "key list shows the secret");
    Ok(())
}

#[tokio::test]
async fn stored_dsns_are_sealed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let marker = "very-secret-warehouse-path-7f3a9c";
    let out = cli(
        dir.path(),
        &[
            "connection",
            "add",
            "--name",
            "wh",
            "--kind",
            "duckdb",
            "--dsn",
            &format!("/data/{marker}.duckdb"),
        ],
    )
    .await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = String::from_utf8(cli(dir.path(), &["connection", "list"]).await?.stdout)?;
    assert_eq!(list, "wh\tduckdb\tstore\t\n");
    for entry in std::fs::read_dir(dir.path())? {
        let path = entry?.path();
        let bytes = std::fs::read(&path)?;
        let found = bytes.windows(marker.len()).any(|w| w == marker.as_bytes());
        assert!(!found, "{} contains the DSN in plaintext", path.display());
    }
    let bad = cli(
        dir.path(),
        &[
            "connection",
            "add",
            "--name",
            "x",
            "--kind",
            "oracle",
            "--dsn",
            "y",
        ],
    )
    .await?;
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("unsupported connection kind 'oracle' (supported: duckdb, postgres, mysql, sqlite)")
    );
    Ok(())
}

/// `config show` prints the settings `serve` would run with (file, environment and flags layered), and never a
/// secret: a DSN shows `***` for its password, the master key is not printed, and nothing is created on disk.
#[tokio::test]
async fn config_show_prints_the_settings_without_secrets() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_rows = 50\n\n[[connections]]\nname = \"sales\"\nkind = \"postgres\"\n\
         dsn = \"postgres://app:hunter2@pg.internal:5432/sales?sslmode=require\"\n",
    )?;
    let master_key = "ab".repeat(32);
    let out = tokio::process::Command::new(sluice_e2e::sluice_bin())
        .args(["config", "show", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["--query-timeout-ms", "1234"])
        .env("SLUICE_MASTER_KEY", &master_key)
        .env("SLUICE_MAX_ROWS", "20")
        .env("SLUICE_LOG", "warn")
        .output()
        .await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout)?;
    for secret in ["hunter2", master_key.as_str()] {
        assert!(
            !stdout.contains(secret),
            "config show printed {secret}:\n{stdout}"
        );
    }
    for line in [
        "dsn = \"postgres://app:***@pg.internal:5432/sales?sslmode=require\"",
        "name = \"sales\"",
        "max_rows = 20",
        "query_timeout_ms = 1234",
        "# master key: from SLUICE_MASTER_KEY or SLUICE_MASTER_KEY_FILE (not shown)",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{stdout}"
        );
    }
    assert!(!data.exists(), "config show created the data directory");
    Ok(())
}

#[tokio::test]
async fn serve_layers_config_env_and_flags() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let warehouse = dir.path().join("wh.duckdb");
    {
        let c = duckdb::Connection::open(&warehouse)?;
        c.execute_batch("CREATE TABLE items AS SELECT range AS id FROM range(100)")?;
    }
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[limits]\nmax_rows = 50\n\n[[connections]]\nname = \"warehouse\"\nkind = \"duckdb\"\ndsn = \"{}\"\ndescription = \"from the file\"\n",
            warehouse.display()
        ),
    )?;
    let out = cli(&data, &["key", "create", "--name", "svc"]).await?;
    let key = String::from_utf8(out.stdout)?.trim().to_owned();
    let launch = |max: Option<&str>, env: Option<&str>| Launch {
        command: Some("serve"),
        args: {
            let mut a = vec!["--config".to_owned(), config.display().to_string()];
            if let Some(m) = max {
                a.extend(["--max-rows".to_owned(), m.to_owned()]);
            }
            a
        },
        env: env
            .map(|e| vec![("SLUICE_MAX_ROWS".to_owned(), e.to_owned())])
            .unwrap_or_default(),
        data_dir: Some(data.clone()),
    };
    for (flag, env, expected) in [
        (None, None, 50),
        (None, Some("20"), 20),
        (Some("10"), Some("20"), 10),
    ] {
        let gw = Gateway::launch(launch(flag, env)).await?;
        assert!(
            !gw.data_dir.join("demo.duckdb").exists(),
            "serve must not create demo data"
        );
        let client = gw.client_with_key(&key).await?;
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": "warehouse", "sql": "SELECT * FROM items"}),
        )
        .await?;
        assert_eq!(r.is_error, Some(false), "{}", text(&r));
        assert_eq!(
            r.structured_content.expect("structured")["row_count"],
            json!(expected),
            "flag {flag:?} env {env:?}"
        );
        client.cancel().await?;
        gw.stop().await?;
    }
    // A config connection cannot be shadowed from the CLI.
    let out = cli(
        &data,
        &[
            "connection",
            "add",
            "--config",
            config.to_str().unwrap(),
            "--name",
            "warehouse",
            "--kind",
            "duckdb",
            "--dsn",
            "/x",
        ],
    )
    .await?;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("defined in the config file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn audit_records_every_call_with_literals_redacted() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let secret = "alice-secret@example.com";
    call(&client, "query_database", json!({"connection_name": "demo", "sql": format!("SELECT count(*) AS n FROM customers WHERE email = '{secret}'")})).await?;
    call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": format!("DELETE FROM customers WHERE email = '{secret}'")}),
    )
    .await?;
    call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": format!("SELEC '{secret}'")}),
    )
    .await?;
    call(&client, "list_tables", json!({"connection_name": "demo"})).await?;
    let out = gw.cli(&["audit", "--limit", "10"]).await?;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(
        !stdout.contains(secret),
        "a literal reached the audit log:\n{stdout}"
    );
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let tools: Vec<&str> = records
        .iter()
        .map(|r| r["tool"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        tools,
        [
            "list_tables",
            "query_database",
            "query_database",
            "query_database"
        ]
    );
    let decisions: Vec<&str> = records
        .iter()
        .map(|r| r["decision"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(decisions, ["ok", "denied", "denied", "ok"]);
    let ok = &records[3];
    assert!(
        ok["sql_redacted"]
            .as_str()
            .unwrap_or_default()
            .contains("customers"),
        "{ok}"
    );
    assert_eq!(ok["rows"], json!(1));
    assert!(
        ok["key_prefix"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sluice_")
    );
    // Unparsable SQL keeps only its hash and length.
    let unparsable = &records[1];
    assert_eq!(unparsable["sql_redacted"], serde_json::Value::Null);
    assert!(
        unparsable["sql_sha256"].as_str().unwrap_or_default().len() == 64,
        "{unparsable}"
    );
    assert_eq!(records[0]["system_query"], json!(true));
    Ok(())
}

#[tokio::test]
async fn duckdb_file_is_released_between_bursts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[duckdb]\nrelease_after_idle_ms = 3000\n")?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await?;
    let client = gw.client().await?;
    let demo = gw.data_dir.join("demo.duckdb");
    call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT 1"}),
    )
    .await?;
    // Right after a call the gateway holds the file, so a writer cannot open it…
    let held = duckdb::Connection::open(&demo).is_err();
    // …and shortly after, it has let go, so a dbt run could write.
    let mut released = false;
    for _ in 0..100 {
        if let Ok(writer) = duckdb::Connection::open(&demo) {
            writer.execute_batch("CREATE TABLE dbt_was_here AS SELECT 1 AS x")?;
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(held, "the gateway did not hold the instance during the burst");
    assert!(released, "the gateway kept the DuckDB file locked");
    // The gateway reopens it for the next call and sees the writer's table.
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT x FROM dbt_was_here"}),
    )
    .await?;
    assert_eq!(r.structured_content.expect("structured")["rows"], json!([[1]]));
    Ok(())
}

/// `connection add` takes the per-connection limits and pool settings a config file's `[[connections]]`
/// has; they are stored with the connection and the running gateway applies them.
#[tokio::test]
async fn connection_add_flags_tune_the_connection() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let dir = tempfile::tempdir()?;
    let warehouse = dir.path().join("wh.duckdb");
    {
        let c = duckdb::Connection::open(&warehouse)?;
        c.execute_batch("CREATE TABLE items AS SELECT range AS id FROM range(100)")?;
    }
    let added = |out: std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    added(
        gw.cli(&[
            "connection",
            "add",
            "--name",
            "small",
            "--kind",
            "duckdb",
            "--dsn",
            warehouse.to_str().unwrap(),
            "--max-rows",
            "7",
            "--timeout-ms",
            "4000",
        ])
        .await?,
    );
    // Nothing listens on port 9: the pool is built lazily, so its settings can be read without a server.
    added(
        gw.cli(&[
            "connection",
            "add",
            "--name",
            "pg_tuned",
            "--kind",
            "postgres",
            "--dsn",
            "postgres://sluice:pw@127.0.0.1:9/nowhere",
            "--pool-size",
            "3",
            "--pool-idle-timeout-ms",
            "45000",
            "--pool-acquire-timeout-ms",
            "1200",
        ])
        .await?,
    );

    let client = gw.client().await?;
    let mut result = None;
    // The gateway picks up store changes on its next call after the store's revision moved.
    for _ in 0..50 {
        let r = call(
            &client,
            "query_database",
            json!({"connection_name": "small", "sql": "SELECT * FROM items ORDER BY id"}),
        )
        .await?;
        if !text(&r).contains("unknown connection") {
            result = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = result.expect("connection registered within 5 s");
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let s = r.structured_content.clone().expect("structured");
    assert_eq!(
        (s["row_count"].clone(), s["truncated"].clone()),
        (json!(7), json!(true)),
        "{}",
        text(&r)
    );
    // A smaller row_limit from the agent still wins over the connection's maximum.
    let r = call(
        &client,
        "query_database",
        json!({"connection_name": "small", "sql": "SELECT * FROM items", "row_limit": 3}),
    )
    .await?;
    assert_eq!(r.structured_content.expect("structured")["row_count"], json!(3));

    let caps = call(
        &client,
        "connector_capabilities",
        json!({"connection_name": "small"}),
    )
    .await?;
    assert!(
        text(&caps).contains("configured: timeout 4000 ms, max rows 7"),
        "{}",
        text(&caps)
    );
    let caps = call(
        &client,
        "connector_capabilities",
        json!({"connection_name": "pg_tuned"}),
    )
    .await?;
    let c = &caps.structured_content.clone().expect("structured")["connections"][0];
    assert_eq!(
        (
            c["pool_size"].clone(),
            c["pool_idle_timeout_ms"].clone(),
            c["pool_acquire_timeout_ms"].clone()
        ),
        (json!(3), json!(45000), json!(1200)),
        "{}",
        text(&caps)
    );

    // Bad values are refused before anything is stored, naming the flag.
    for (flag, value) in [
        ("--max-rows", "0"),
        ("--pool-size", "0"),
        ("--pool-size", "lots"),
        ("--pool-idle-timeout-ms", "1.5"),
        ("--pool-acquire-timeout-ms", "0"),
        ("--timeout-ms", "0"),
    ] {
        let out = gw
            .cli(&[
                "connection",
                "add",
                "--name",
                "bad",
                "--kind",
                "duckdb",
                "--dsn",
                warehouse.to_str().unwrap(),
                flag,
                value,
            ])
            .await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} was accepted");
        assert!(
            stderr.contains(&format!("invalid value '{value}' for '{flag}"))
                && stderr.contains("expected a whole number of at least 1"),
            "{flag} {value}: {stderr}"
        );
    }
    let list = String::from_utf8(gw.cli(&["connection", "list"]).await?.stdout)?;
    assert!(!list.contains("bad\t"), "{list}");
    Ok(())
}
