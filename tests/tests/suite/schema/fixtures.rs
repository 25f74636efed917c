//! The schema tools on real PostgreSQL, MariaDB and SQLite fixtures, with and without declared foreign keys:
//! paths, date boundaries, schemas kept apart and bad names.

use pretty_assertions::assert_eq;

use super::*;

/// The checks shared by the server engines' fixture: the connector fixture (declared keys) plus
/// `shipments` and `archive.orders`, which declare none.
async fn check_fixture(client: &Client, connection: &str, schema: &str, quote: char) -> Result<()> {
    let tb = |name: &str| format!("{schema}.{name}");
    // Declared: order_items → orders → customers.
    let best = check_path_runs(client, connection, &tb("order_items"), &tb("customers")).await?;
    assert_eq!(best["hops"], 2, "{best}");
    assert!(
        best["joins"]
            .as_array()
            .context("joins")?
            .iter()
            .all(|j| j["origin"] == "declared")
    );
    // Not declared: shipments.order_id → orders.id is inferred from the name and the key.
    let inferred = check_path_runs(client, connection, &tb("shipments"), &tb("orders")).await?;
    assert_eq!(inferred["hops"], 1, "{inferred}");
    assert_eq!(inferred["joins"][0]["origin"], "inferred", "{inferred}");
    assert_eq!(inferred["joins"][0]["from_columns"], json!(["order_id"]));
    assert_eq!(inferred["joins"][0]["to_columns"], json!(["id"]));

    check_date_boundaries(client, connection, quote).await?;

    let (out, t) = ok(
        client,
        "compare_join_types",
        json!({"connection_name": connection, "left_table": tb("orders"), "right_table": tb("customers"),
               "join_keys": "a.customer_id = b.id"}),
    )
    .await?;
    assert_eq!(
        (
            out["left_rows"].as_u64(),
            out["right_rows"].as_u64(),
            out["inner_join_rows"].as_u64(),
            out["left_unmatched"].as_u64(),
            out["right_unmatched"].as_u64(),
            out["full_outer_join_rows"].as_u64()
        ),
        (Some(3), Some(3), Some(3), Some(0), Some(1), Some(4)),
        "{t}"
    );
    let (out, t) = ok(
        client,
        "compare_join_types",
        json!({"connection_name": connection, "left_table": tb("orders"), "right_table": tb("customers"),
               "join_keys": "a.customer_id = b.id", "where_clause": "a.amount > 100 AND b.name <> 'Ada'"}),
    )
    .await?;
    // Orders over 100: 10 (Ada) and 12 (Grace); customers but Ada: Grace and Linus.
    assert_eq!(
        (
            out["left_rows"].as_u64(),
            out["right_rows"].as_u64(),
            out["inner_join_rows"].as_u64()
        ),
        (Some(2), Some(2), Some(1)),
        "{t}"
    );

    let (out, t) = ok(
        client,
        "explore_column",
        json!({"connection_name": connection, "table": tb("customers"), "column": "name", "filter_pattern": "a"}),
    )
    .await?;
    let values: Vec<&str> = out["values"]
        .as_array()
        .context("values")?
        .iter()
        .filter_map(|v| v["value"].as_str())
        .collect();
    assert_eq!(values, ["Ada", "Grace"], "{t}");
    assert_eq!(out["row_count"].as_u64(), Some(3));

    let (out, t) = ok(
        client,
        "explore_columns",
        json!({"connection_name": connection, "table": tb("orders"), "columns": ["id", "amount"]}),
    )
    .await?;
    assert_eq!(out["columns"][0]["distinct_count"].as_u64(), Some(3), "{t}");
    assert_eq!(out["columns"][0]["primary_key"], true, "{t}");
    assert_eq!(out["columns"][1]["null_count"].as_u64(), Some(0), "{t}");

    let (out, text) = ok(
        client,
        "explore_table",
        json!({"connection_name": connection, "table_name": tb("orders")}),
    )
    .await?;
    assert!(text.contains("Referenced by"), "{text}");
    let referenced: Vec<&str> = out["referenced_by"]
        .as_array()
        .context("referenced_by")?
        .iter()
        .filter_map(|j| j["from"].as_str())
        .collect();
    assert!(referenced.iter().any(|r| r.ends_with(".order_items")), "{text}");
    assert!(referenced.iter().any(|r| r.ends_with(".shipments")), "{text}");

    check_bad_names(client, connection, schema).await?;
    for tool in [
        "schema_overview",
        "schema_ddl",
        "get_relationships",
        "schema_statistics",
    ] {
        let (_, text) = ok(client, tool, json!({"connection_name": connection})).await?;
        assert!(text.len() <= BUDGET_CHARS, "{tool}: {} chars", text.len());
        assert!(text.contains("orders"), "{tool}: {text}");
    }
    let (_, text) = ok(
        client,
        "schema_link",
        json!({"connection_name": connection, "question": "which customers placed orders", "format": "compact"}),
    )
    .await?;
    assert!(text.contains("customers") && text.contains("orders"), "{text}");
    check_sampled_link(
        client,
        connection,
        &tb("shipments"),
        "parcels sent by UPS",
        "ups@carrier",
    )
    .await
}

async fn check_bad_names(client: &Client, connection: &str, schema: &str) -> Result<()> {
    let orders = format!("{schema}.orders");
    let customers = format!("{schema}.customers");
    let join = |join_keys: &str, where_clause: &str| {
        json!({"connection_name": connection, "left_table": orders, "right_table": customers,
               "join_keys": join_keys, "where_clause": where_clause})
    };
    // (tool, arguments, what the error must say)
    let cases = [
        (
            "explore_table",
            json!({"connection_name": connection, "table_name": "ordres"}),
            vec!["unknown table `ordres`", "orders"],
        ),
        (
            "explore_column",
            json!({"connection_name": connection, "table": orders, "column": "amout"}),
            vec!["has no column 'amout'", "amount"],
        ),
        (
            "find_join_path",
            json!({"connection_name": connection, "from_table": orders, "to_table": "nope"}),
            vec!["unknown table `nope`"],
        ),
        (
            "compare_join_types",
            join("a.customer_id = b.id; DROP TABLE customers", ""),
            vec!["has text after the expression"],
        ),
        (
            "compare_join_types",
            join("a.customer_id = b.id", "1 = 1) OR (1 = 1"),
            vec!["has text after the expression"],
        ),
        (
            "compare_join_types",
            join("a.customer_id = b.id", "a.id IN (SELECT id FROM customers)"),
            vec!["may not contain subqueries"],
        ),
        (
            "explore_column",
            json!({"connection_name": connection, "table": orders, "column": "id", "limit": 0}),
            vec!["limit must be between 1 and 1000"],
        ),
        (
            "schema_link",
            json!({"connection_name": connection, "question": "orders", "format": "yaml"}),
            vec!["unknown format 'yaml'; use `ddl`, `compact` or `json`"],
        ),
    ];
    for (tool, args, expected) in cases {
        let t = fails(client, tool, args).await?;
        for e in expected {
            assert!(t.contains(e), "{tool}: expected {e:?} in {t}");
        }
    }
    Ok(())
}

/// SQL for the tables every server fixture adds to the connector fixture: no declared keys on purpose.
fn extra_fixture(engine: &str) -> String {
    let text = if engine == "sqlite" { "TEXT" } else { "varchar(20)" };
    let mut sql = format!(
        "CREATE TABLE shipments (shipment_id integer PRIMARY KEY, order_id bigint NOT NULL, shipped_on date,
                                 carrier {text});
         INSERT INTO shipments VALUES (1, 10, '2024-02-02', 'UPS'), (2, 12, '2024-02-05', NULL);\n"
    );
    if engine == "postgres" {
        sql.push_str(
            "CREATE SCHEMA archive;
             CREATE TABLE archive.orders (id bigint PRIMARY KEY, customer_id integer, placed_on date);
             INSERT INTO archive.orders VALUES (1, 1, '2019-01-01');
             ANALYZE;\n",
        );
    }
    sql
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("servers/fixtures")
        .join(name)
}

#[tokio::test]
async fn sqlite_fixture_paths_dates_and_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("fixture.sqlite");
    let sql = format!(
        "{}\n{}",
        std::fs::read_to_string(fixture_path("sqlite.sql"))?,
        extra_fixture("sqlite")
    );
    let out = Command::new("sqlite3")
        .arg(&file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .map(|mut stdin| stdin.write_all(sql.as_bytes()))
                .transpose()?;
            child.wait_with_output()
        })
        .context("running sqlite3")?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let gw = gateway_with(dir.path(), &[("lite", "sqlite", file.display().to_string())]).await?;
    let client = gw.client().await?;
    check_fixture(&client, "lite", "main", '"').await
}

/// A private PostgreSQL or MariaDB from `tests/servers/start.sh`, stopped and removed on drop.
struct Server {
    dir: tempfile::TempDir,
    env: std::collections::HashMap<String, String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/stop.sh"))
            .arg(self.dir.path().join("server"))
            .arg("--remove")
            .output();
    }
}

impl Server {
    fn start(engine: &str) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let out = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/start.sh"))
            .arg(engine)
            .arg(dir.path().join("server"))
            .arg("--watch")
            .arg(std::process::id().to_string())
            .output()?;
        if !out.status.success() {
            bail!("start.sh {engine}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Server { dir, env })
    }

    fn dsn(&self) -> String {
        self.env.get("DSN").cloned().unwrap_or_default()
    }

    fn port(&self) -> String {
        self.env.get("PORT").cloned().unwrap_or_default()
    }
}

/// Runs SQL as the fixture owner with the engine's own client.
fn run_as_owner(server: &Server, engine: &str, sql: &str) -> Result<()> {
    let out = if engine == "postgres" {
        Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &server.port(),
                "-U",
                "app",
                "-d",
                "sluice",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
            .env("PGPASSWORD", "app-secret")
            .output()?
    } else {
        Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-P",
                &server.port(),
                "-uapp",
                "-papp-secret",
            ])
            .args(["sluice", "-e", sql])
            .output()?
    };
    if !out.status.success() {
        bail!("{engine} fixture: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

#[tokio::test]
async fn postgres_fixture_paths_dates_schemas_and_errors() -> Result<()> {
    let server = Server::start("postgres")?;
    run_as_owner(&server, "postgres", &extra_fixture("postgres"))?;
    let dir = tempfile::tempdir()?;
    let gw = gateway_with(dir.path(), &[("pg", "postgres", server.dsn())]).await?;
    let client = gw.client().await?;
    check_fixture(&client, "pg", "public", '"').await?;
    // Two schemas with an `orders` each: the bare name is ambiguous, the qualified ones are distinct.
    let t = fails(
        &client,
        "explore_columns",
        json!({"connection_name": "pg", "table": "orders"}),
    )
    .await?;
    assert!(t.contains("archive.orders") && t.contains("public.orders"), "{t}");
    let (out, t) = ok(
        &client,
        "explore_columns",
        json!({"connection_name": "pg", "table": "archive.orders"}),
    )
    .await?;
    assert_eq!(out["row_count"], 1, "{t}");
    // archive.orders declares no keys: its customer_id is inferred to join public.customers (other schema).
    let (out, t) = ok(
        &client,
        "find_join_path",
        json!({"connection_name": "pg", "from_table": "archive.orders", "to_table": "public.customers"}),
    )
    .await?;
    assert_eq!(out["paths"][0]["hops"], 1, "{t}");
    let (out, _) = ok(&client, "list_schemas", json!({"connection_name": "pg"})).await?;
    assert_eq!(
        out["schemas"],
        json!([{"name": "archive", "tables": 1, "views": 0},
                                      {"name": "public", "tables": 5, "views": 1}])
    );
    Ok(())
}

#[tokio::test]
async fn mariadb_fixture_paths_dates_and_errors() -> Result<()> {
    let server = Server::start("mariadb")?;
    run_as_owner(&server, "mariadb", &extra_fixture("mariadb"))?;
    let dir = tempfile::tempdir()?;
    let gw = gateway_with(dir.path(), &[("maria", "mysql", server.dsn())]).await?;
    let client = gw.client().await?;
    check_fixture(&client, "maria", "sluice", '`').await
}
