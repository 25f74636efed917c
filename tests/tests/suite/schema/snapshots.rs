//! The schema snapshot over time: an expired one is introspected again, changes are reported by
//! schema_diff and announced to resource subscribers, and describe_table still finds new tables.

use pretty_assertions::assert_eq;

use super::*;

#[tokio::test]
async fn schema_diff_reports_what_changed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("two.duckdb");
    two_schema_warehouse(&file)?;
    let gw = gateway_with(dir.path(), &[("two", "duckdb", file.display().to_string())]).await?;
    let client = gw.client().await?;
    let (_, t) = ok(&client, "schema_diff", json!({"connection_name": "two"})).await?;
    assert!(t.contains("now the baseline"), "{t}");
    // The gateway releases the file after a second idle; then the schema can change underneath it.
    alter(
        &file,
        "CREATE TABLE sales.refunds (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES sales.orders (id));
         ALTER TABLE sales.customers ADD COLUMN country VARCHAR;
         DROP TABLE archive.orders;",
    )
    .await?;
    // The cached snapshot is still served until it expires or is refreshed…
    let (out, _) = ok(&client, "list_schemas", json!({"connection_name": "two"})).await?;
    assert_eq!(out["schemas"][0]["tables"], 2);
    // …and schema_diff refreshes it and names every change.
    let (_, t) = ok(&client, "schema_diff", json!({"connection_name": "two"})).await?;
    assert!(t.contains("sales.refunds"), "{t}");
    assert!(t.contains("archive.orders"), "{t}");
    assert!(t.contains("country"), "{t}");
    let (out, _) = ok(&client, "list_schemas", json!({"connection_name": "two"})).await?;
    assert_eq!(out["schemas"][0]["tables"], 1, "archive lost a table: {out}");
    let (_, t) = ok(&client, "schema_diff", json!({"connection_name": "two"})).await?;
    assert!(!t.contains("sales.refunds"), "nothing changed since: {t}");
    Ok(())
}

/// Waits for the gateway to release the DuckDB file, then changes its schema.
async fn alter(file: &Path, sql: &str) -> Result<()> {
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if let Ok(conn) = duckdb::Connection::open(file) {
            conn.execute_batch(sql)?;
            return Ok(());
        }
    }
    bail!("the gateway never released {}", file.display())
}

#[tokio::test]
async fn an_expired_snapshot_is_introspected_again() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("two.duckdb");
    two_schema_warehouse(&file)?;
    let gw = gateway_with_ttl(dir.path(), &[("two", "duckdb", file.display().to_string())], 300).await?;
    let client = gw.client().await?;
    let (out, _) = ok(&client, "list_schemas", json!({"connection_name": "two"})).await?;
    assert_eq!(
        out["schemas"][2],
        json!({"name": "sales", "tables": 2, "views": 0})
    );
    alter(
        &file,
        "CREATE VIEW sales.big_orders AS SELECT * FROM sales.orders WHERE id > 10;",
    )
    .await?;
    let (out, _) = ok(&client, "list_schemas", json!({"connection_name": "two"})).await?;
    assert_eq!(
        out["schemas"][2],
        json!({"name": "sales", "tables": 2, "views": 1})
    );
    Ok(())
}

/// The schema as MCP resources: listed per caller, read through the same operations (and audit) as the
/// tools, a table template, clear errors for what does not exist, and `notifications/resources/list_changed`
/// when a snapshot of the schema changes.
#[tokio::test]
async fn the_schema_is_readable_as_resources_and_changes_are_announced() -> Result<()> {
    use rmcp::model::ReadResourceRequestParams;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    /// A client that counts `notifications/resources/list_changed`.
    #[derive(Clone)]
    struct Watcher(Arc<tokio::sync::Notify>);
    impl rmcp::ClientHandler for Watcher {
        async fn on_resource_list_changed(
            &self,
            _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
        ) {
            self.0.notify_one();
        }
    }

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("two.duckdb");
    two_schema_warehouse(&file)?;
    let gw = gateway_with(dir.path(), &[("two", "duckdb", file.display().to_string())]).await?;
    let changed = Arc::new(tokio::sync::Notify::new());
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(gw.url.clone()).auth_header(gw.key.clone()),
    );
    let client = rmcp::ServiceExt::serve(Watcher(Arc::clone(&changed)), transport).await?;

    let resources = client.list_all_resources().await?;
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(
        uris.contains(&"sluice://connections") && uris.contains(&"sluice://two/overview"),
        "{uris:?}"
    );
    let templates = client.list_all_resource_templates().await?;
    assert_eq!(templates[0].uri_template, "sluice://{connection}/tables/{table}");

    let read = |uri: &str| client.read_resource(ReadResourceRequestParams::new(uri));
    let body = |r: &rmcp::model::ReadResourceResult| match &r.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => format!("{other:?}"),
    };
    let connections = read("sluice://connections").await?;
    assert!(
        body(&connections).contains("two (duckdb"),
        "{}",
        body(&connections)
    );
    let table = read("sluice://two/tables/sales.customers").await?;
    assert!(
        body(&table).contains("customer_id") || body(&table).contains("id"),
        "{}",
        body(&table)
    );
    let overview = read("sluice://two/overview").await?;
    assert!(body(&overview).contains("sales"), "{}", body(&overview));
    // Reads are audited like tool calls.
    let audit = gw.cli(&["audit", "--limit", "5"]).await?;
    assert!(
        String::from_utf8_lossy(&audit.stdout).contains(r#""tool":"resources/read""#),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
    for (uri, reason) in [
        ("sluice://nowhere/overview", "nowhere"),
        ("sluice://two/tables/sales.nothing", "nothing"),
        ("file:///etc/passwd", "Sluice serves sluice://connections"),
    ] {
        let err = read(uri).await.unwrap_err().to_string();
        assert!(err.contains(reason), "{uri}: {err}");
    }

    // The schema changes underneath; the next refresh announces it.
    alter(&file, "CREATE TABLE sales.refunds (id INTEGER PRIMARY KEY);").await?;
    let mut args = serde_json::Map::new();
    args.insert("connection_name".into(), json!("two"));
    let diff = client
        .call_tool(rmcp::model::CallToolRequestParams::new("schema_diff").with_arguments(args))
        .await?;
    assert!(text(&diff).contains("sales.refunds"), "{}", text(&diff));
    tokio::time::timeout(std::time::Duration::from_secs(10), changed.notified())
        .await
        .context("no notifications/resources/list_changed within 10 s of the schema change")?;
    client.cancel().await?;
    Ok(())
}

/// `describe_table` answers from the connection's cached schema snapshot, like the other schema tools;
/// a table created after the snapshot was taken is still found, by asking the engine.
#[tokio::test]
async fn describe_table_uses_the_snapshot_and_still_finds_new_tables() -> Result<()> {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("lite.db");
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", file.display())).await?;
    sqlx::query(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers (id), total REAL)",
    )
    .execute(&mut db)
    .await?;
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[[connections]]\nname = \"lite\"\nkind = \"sqlite\"\ndsn = \"{}\"\n",
            file.display()
        ),
    )?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await?;
    let client = gw.client().await?;
    let describe = |table: &'static str| {
        let client = &client;
        async move {
            ok(
                client,
                "describe_table",
                json!({"connection_name": "lite", "table_name": table}),
            )
            .await
            .map(|(s, _)| s)
        }
    };
    let orders = describe("orders").await?;
    assert_eq!(orders["primary_key"], json!(["id"]), "{orders}");
    assert_eq!(
        orders["foreign_keys"][0]["references"],
        json!("main.customers"),
        "{orders}"
    );
    assert_eq!(orders["columns"][1]["name"], json!("customer_id"), "{orders}");
    // The snapshot is cached now (schema_overview would reuse it); a table created afterwards is found.
    sqlx::query("CREATE TABLE refunds (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders (id))")
        .execute(&mut db)
        .await?;
    let refunds = describe("refunds").await?;
    assert_eq!(
        refunds["foreign_keys"][0]["references"],
        json!("main.orders"),
        "{refunds}"
    );
    // The answer is the snapshot's: a column dropped since shows until the snapshot is taken again
    // (schema_diff takes a fresh one), as in every other schema tool.
    sqlx::query("ALTER TABLE orders DROP COLUMN total")
        .execute(&mut db)
        .await?;
    let names = |t: &Value| -> Vec<String> {
        t["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(names(&describe("orders").await?), ["id", "customer_id", "total"]);
    ok(&client, "schema_diff", json!({"connection_name": "lite"})).await?;
    assert_eq!(names(&describe("orders").await?), ["id", "customer_id"]);
    // Every answer is audited as the gateway's own introspection.
    let out = gw.cli(&["audit", "--limit", "20"]).await?;
    let records: Vec<Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let describes: Vec<&Value> = records.iter().filter(|r| r["tool"] == "describe_table").collect();
    let tools: Vec<&Value> = records.iter().map(|r| &r["tool"]).collect();
    assert_eq!(describes.len(), 4, "{tools:?}");
    assert!(
        describes
            .iter()
            .all(|r| r["system_query"] == json!(true) && r["decision"] == json!("ok"))
    );
    Ok(())
}
