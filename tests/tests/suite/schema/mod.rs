//! Schema exploration end to end: the schema tools on the DuckDB demo warehouse and on real PostgreSQL,
//! MariaDB and SQLite fixtures with and without declared foreign keys. Join paths are found and their SQL
//! runs through query_database, date boundaries equal a direct min/max, same-named tables in two schemas
//! stay apart, every schema text fits its budget, and bad names get clear errors.

mod fixtures;
mod snapshots;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use pretty_assertions::assert_eq;
use rmcp::RoleClient;
use rmcp::model::{CallToolResult, ClientConfig};
use rmcp::service::RunningService;
use serde_json::{Value, json};
use sluice_e2e::{Gateway, Launch, call, text};

type Client = RunningService<RoleClient, ClientConfig>;

/// The schema tools' shared budget: 4,000 estimated tokens of four characters.
const BUDGET_CHARS: usize = 16_000;

/// Calls a tool that must succeed and returns its structured result.
async fn ok(client: &Client, tool: &str, args: Value) -> Result<(Value, String)> {
    let r = call(client, tool, args.clone()).await?;
    let t = text(&r);
    if r.is_error == Some(true) {
        bail!("{tool} {args} failed: {t}");
    }
    Ok((r.structured_content.clone().unwrap_or(Value::Null), t))
}

/// Calls a tool that must fail and returns its message.
async fn fails(client: &Client, tool: &str, args: Value) -> Result<String> {
    let r: CallToolResult = call(client, tool, args.clone()).await?;
    let t = text(&r);
    if r.is_error != Some(true) {
        bail!("{tool} {args} succeeded: {t}");
    }
    Ok(t)
}

/// Runs SQL through query_database and returns its rows.
async fn rows(client: &Client, connection: &str, sql: &str) -> Result<Vec<Value>> {
    let (out, _) = ok(
        client,
        "query_database",
        json!({"connection_name": connection, "sql": sql}),
    )
    .await?;
    Ok(out["rows"].as_array().cloned().unwrap_or_default())
}

/// A gateway with extra connections from a config file, beside the demo warehouse.
async fn gateway_with(dir: &Path, connections: &[(&str, &str, String)]) -> Result<Gateway> {
    gateway_with_ttl(dir, connections, 600_000).await
}

async fn gateway_with_ttl(dir: &Path, connections: &[(&str, &str, String)], ttl_ms: u64) -> Result<Gateway> {
    let mut config = format!("[limits]\nschema_cache_ttl_ms = {ttl_ms}\n");
    for (name, kind, dsn) in connections {
        config.push_str(&format!(
            "\n[[connections]]\nname = \"{name}\"\nkind = \"{kind}\"\ndsn = \"{dsn}\"\n"
        ));
    }
    let path = dir.join("sluice.toml");
    std::fs::write(&path, config)?;
    Gateway::launch(Launch {
        data_dir: Some(dir.join("data")),
        args: vec!["--config".into(), path.display().to_string()],
        ..Default::default()
    })
    .await
}

/// Every date column get_date_boundaries reports equals what a direct MIN/MAX query returns.
async fn check_date_boundaries(client: &Client, connection: &str, quote: char) -> Result<Value> {
    let (out, t) = ok(
        client,
        "get_date_boundaries",
        json!({"connection_name": connection}),
    )
    .await?;
    assert!(t.len() <= BUDGET_CHARS, "{} chars", t.len());
    let tables = out["tables"].as_array().context("tables")?;
    assert!(!tables.is_empty(), "{t}");
    let today = out["today"].as_str().context("today")?.to_owned();
    // One statement for every table, and one more for the views when there are views with dates.
    let views = tables.iter().any(|t| t["view"] == json!(true));
    assert_eq!(out["queries"].as_u64(), Some(1 + u64::from(views)), "{t}");
    let mut global: Option<String> = None;
    for table in tables {
        let name = table["table"].as_str().context("table")?;
        let (schema, bare) = name.split_once('.').context("qualified")?;
        let from = format!("{quote}{schema}{quote}.{quote}{bare}{quote}");
        for c in table["columns"].as_array().context("columns")? {
            let col = c["column"].as_str().context("column")?;
            let direct = rows(
                client,
                connection,
                &format!("SELECT MIN({quote}{col}{quote}), MAX({quote}{col}{quote}) FROM {from}"),
            )
            .await?;
            let expected = &direct[0];
            assert_eq!(
                (c["min"].clone(), c["max"].clone()),
                (expected[0].clone(), expected[1].clone()),
                "{name}.{col}"
            );
            if let Some(max) = expected[1].as_str() {
                let max = max.replacen('T', " ", 1);
                // Future dates are flagged, not taken as the global maximum.
                let future = max.get(..10).is_some_and(|d| d > today.as_str());
                if !future && global.as_ref().is_none_or(|g| max > *g) {
                    global = Some(max);
                }
            }
        }
        let count = rows(client, connection, &format!("SELECT COUNT(*) FROM {from}")).await?;
        assert_eq!(
            table["row_count"].as_u64(),
            count[0][0]
                .as_u64()
                .or_else(|| count[0][0].as_str().and_then(|s| s.parse().ok())),
            "{name} row count"
        );
    }
    assert_eq!(
        out["global_max"].as_str().map(|m| m.replacen('T', " ", 1)),
        global,
        "{t}"
    );
    assert!(t.contains("GLOBAL MAX DATE: "), "{t}");
    Ok(out)
}

/// A join path's SQL, run through query_database, must succeed.
async fn check_path_runs(client: &Client, connection: &str, from: &str, to: &str) -> Result<Value> {
    let (out, t) = ok(
        client,
        "find_join_path",
        json!({"connection_name": connection, "from_table": from, "to_table": to}),
    )
    .await?;
    let paths = out["paths"].as_array().context("paths")?;
    assert!(!paths.is_empty(), "no path {from} → {to}: {t}");
    for p in paths {
        assert_eq!(p["governance"], "allowed", "{t}");
        let sql = p["sql"].as_str().context("sql")?;
        rows(client, connection, &format!("{sql} LIMIT 5"))
            .await
            .with_context(|| format!("path SQL {sql}"))?;
    }
    Ok(paths[0].clone())
}

/// A question whose only match is a value in the data (no table or column is named for it) ranks the
/// table holding that value first: values sampled from text columns reach the ranking on every engine.
async fn check_sampled_link(
    client: &Client,
    connection: &str,
    table: &str,
    question: &str,
    why: &str,
) -> Result<()> {
    let (out, _) = ok(
        client,
        "schema_link",
        json!({"connection_name": connection, "question": question, "format": "json"}),
    )
    .await?;
    let text = out["text"].as_str().context("text")?;
    let link: Value = serde_json::from_str(text)?;
    let first = &link["tables"][0];
    assert_eq!(
        format!(
            "{}.{}",
            first["schema"].as_str().unwrap_or_default(),
            first["name"].as_str().unwrap_or_default()
        ),
        table,
        "{question}: {text}"
    );
    assert!(
        first["why"].as_str().is_some_and(|w| w.contains(why)),
        "{question}: {text}"
    );
    let notes = out["notes"].as_array().context("notes")?;
    assert!(
        notes
            .iter()
            .all(|n| !n.as_str().unwrap_or_default().contains("could not be read")),
        "sampling failed: {notes:?}"
    );
    Ok(())
}

#[tokio::test]
async fn demo_warehouse_paths_run_and_outputs_fit_their_budget() -> Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;

    let (out, t) = ok(&client, "list_schemas", json!({"connection_name": "demo"})).await?;
    assert_eq!(out["schemas"][0]["name"], "main", "{t}");

    // Declared keys: order_items → products → suppliers, and a longer one across the graph.
    let best = check_path_runs(&client, "demo", "order_items", "suppliers").await?;
    assert_eq!(best["hops"], 2, "{best}");
    check_path_runs(&client, "demo", "payments", "regions").await?;
    // web_sessions declares no keys: its joins are inferred from column names.
    let inferred = check_path_runs(&client, "demo", "web_sessions", "customers").await?;
    assert_eq!(inferred["joins"][0]["origin"], "inferred", "{inferred}");
    let t = fails(
        &client,
        "find_join_path",
        json!({"connection_name": "demo", "from_table": "orders", "to_table": "regions", "max_hops": 9}),
    )
    .await?;
    assert!(t.contains("max_hops must be between 1 and 6, not 9"), "{t}");

    // Budgets: DDL pages by max_tables and says what it left out; every page stays within the budget.
    let (out, t) = ok(
        &client,
        "schema_ddl",
        json!({"connection_name": "demo", "max_tables": 3}),
    )
    .await?;
    assert!(t.len() <= BUDGET_CHARS);
    assert_eq!(out["page"], 1);
    assert!(out["pages"].as_u64().unwrap_or(0) > 1, "{out}");
    assert!(out["omitted"].as_u64().unwrap_or(0) > 0, "{out}");
    assert!(t.contains("page=2"), "the footer says how to continue: {t}");
    assert_eq!(
        t.matches("CREATE TABLE").count() + t.matches("CREATE VIEW").count(),
        3,
        "{t}"
    );
    let (page2, t2) = ok(
        &client,
        "schema_ddl",
        json!({"connection_name": "demo", "max_tables": 3, "page": 2}),
    )
    .await?;
    assert_eq!(page2["page"], 2);
    assert_ne!(t, t2);
    let (_, compressed) = ok(
        &client,
        "schema_ddl",
        json!({"connection_name": "demo", "compress": true}),
    )
    .await?;
    assert!(compressed.len() < BUDGET_CHARS, "{}", compressed.len());
    assert!(!compressed.contains("--  "), "{compressed}");
    for (tool, args) in [
        ("schema_overview", json!({"connection_name": "demo"})),
        ("schema_statistics", json!({"connection_name": "demo"})),
        ("get_relationships", json!({"connection_name": "demo"})),
        (
            "get_relationships",
            json!({"connection_name": "demo", "format": "graph"}),
        ),
        (
            "schema_link",
            json!({"connection_name": "demo", "question": "revenue by product category and region"}),
        ),
        (
            "schema_link",
            json!({"connection_name": "demo", "question": "late shipments per carrier", "format": "json"}),
        ),
        (
            "explore_table",
            json!({"connection_name": "demo", "table_name": "orders"}),
        ),
        (
            "explore_columns",
            json!({"connection_name": "demo", "table": "customers"}),
        ),
        ("get_date_boundaries", json!({"connection_name": "demo"})),
    ] {
        let (_, t) = ok(&client, tool, args.clone()).await?;
        assert!(t.len() <= BUDGET_CHARS, "{tool} {args}: {} chars", t.len());
    }
    let (link, t) = ok(
        &client,
        "schema_link",
        json!({"connection_name": "demo", "question": "revenue by product category", "format": "compact",
               "max_tables": 4}),
    )
    .await?;
    assert!(t.contains("main.products"), "{t}");
    assert!(link["text"].as_str().is_some());
    let (rels, t) = ok(
        &client,
        "get_relationships",
        json!({"connection_name": "demo", "format": "compact"}),
    )
    .await?;
    assert!(t.contains("declared") && t.contains("inferred"), "{t}");
    assert!(rels["total"].as_u64().unwrap_or(0) > 10);
    let t = fails(
        &client,
        "get_relationships",
        json!({"connection_name": "demo", "format": "dot"}),
    )
    .await?;
    assert!(
        t.contains("unknown format 'dot'; use `compact` or `graph`"),
        "{t}"
    );

    // Samples in explore_table come from a governed query, recorded in the audit log like any other.
    let (out, _) = ok(
        &client,
        "explore_table",
        json!({"connection_name": "demo", "table_name": "regions"}),
    )
    .await?;
    assert_eq!(out["primary_key"], json!(["region_id"]));
    assert!(
        out["columns"][1]["samples"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{out}"
    );
    let (vals, t) = ok(
        &client,
        "explore_column",
        json!({"connection_name": "demo", "table": "regions", "column": "country_code", "limit": 2}),
    )
    .await?;
    assert_eq!(vals["values"][0]["value"], "US", "{t}");
    assert_eq!(vals["values"][0]["count"], 2, "{t}");
    assert_eq!(vals["truncated"], true, "{t}");
    assert_eq!(vals["distinct_count"], 7, "{t}");
    Ok(())
}

#[tokio::test]
async fn schema_link_matches_values_sampled_from_the_demo_data() -> Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    // Neither word names a table or column of the demo: only payments.method holds 'paypal', only
    // web_sessions.browser 'Firefox', only product_categories.name 'Camping'.
    check_sampled_link(&client, "demo", "main.payments", "paypal", "paypal@method").await?;
    check_sampled_link(
        &client,
        "demo",
        "main.web_sessions",
        "Firefox visitors",
        "firefox@browser",
    )
    .await?;
    check_sampled_link(
        &client,
        "demo",
        "main.product_categories",
        "Camping and Cycling",
        "camping@name",
    )
    .await?;
    // Values of many-valued columns (emails, names) are not sampled: no match, said as such.
    let (out, _) = ok(
        &client,
        "schema_link",
        json!({"connection_name": "demo", "question": "zebra@example.com", "format": "compact"}),
    )
    .await?;
    let notes = out["notes"].to_string();
    assert!(notes.contains("no table or column matches"), "{notes}");
    assert!(notes.contains("sampled values: "), "{notes}");

    // The values were read once, by the first call, through governance (audited with its SQL, never the
    // values); the later calls used the cache (system queries only).
    let out = gw.cli(&["audit", "--limit", "10"]).await?;
    let records: Vec<Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let links: Vec<&Value> = records.iter().filter(|r| r["tool"] == "schema_link").collect();
    assert_eq!(links.len(), 4, "{records:?}");
    let reads: Vec<&&Value> = links.iter().filter(|r| r["system_query"] == false).collect();
    assert_eq!(reads.len(), 1, "{links:?}");
    let sql = reads[0]["sql_redacted"].as_str().context("sql")?;
    assert!(sql.contains("UNION ALL") && sql.contains("\"method\""), "{sql}");
    let all = serde_json::to_string(&records)?.to_lowercase();
    assert!(!all.contains("paypal") && !all.contains("firefox"), "{all}");
    Ok(())
}

#[tokio::test]
async fn demo_date_boundaries_equal_a_direct_min_max() -> Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let out = check_date_boundaries(&client, "demo", '"').await?;
    // The demo runs from 2023-01-01 to 2025-06-30; reference tables (employees, products) end earlier.
    assert!(
        out["global_max"].as_str().is_some_and(|m| m.starts_with("2025-")),
        "{out}"
    );
    let tables: Vec<&str> = out["tables"]
        .as_array()
        .context("tables")?
        .iter()
        .filter_map(|t| t["table"].as_str())
        .collect();
    assert!(
        tables.contains(&"main.orders") && tables.contains(&"main.web_sessions"),
        "{tables:?}"
    );
    // Views are reported too, marked as views (dbt builds most relations as views), read in a statement
    // of their own after the tables.
    for t in out["tables"].as_array().context("tables")? {
        let is_view =
            ["main.order_totals", "main.monthly_revenue"].contains(&t["table"].as_str().unwrap_or(""));
        assert_eq!(t["view"], json!(is_view), "{t}");
    }
    assert!(
        tables.contains(&"main.order_totals") && tables.contains(&"main.monthly_revenue"),
        "{tables:?}"
    );
    assert_eq!(out["queries"], json!(2), "{out}");
    // The tool's one statement is audited as it ran, every literal redacted (its branch numbers and its
    // own LIMIT), with the hash and length of the statement itself.
    let out = gw.cli(&["audit", "--limit", "500"]).await?;
    let records: Vec<Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let record = records
        .iter()
        .find(|r| r["tool"] == "get_date_boundaries")
        .context("get_date_boundaries audited")?;
    assert_eq!(record["system_query"], false, "{record}");
    let sql = record["sql_redacted"].as_str().context("sql")?;
    assert!(sql.contains("UNION ALL") && sql.ends_with("LIMIT ?"), "{sql}");
    assert!(sql.starts_with("SELECT ? AS k, COUNT(*) AS n, MIN("), "{sql}");
    assert!(!sql.contains(" 0 AS k") && !sql.contains(" 1 AS k"), "{sql}");
    assert_eq!(record["sql_sha256"].as_str().map(str::len), Some(64), "{record}");
    assert!(
        record["sql_len"]
            .as_u64()
            .is_some_and(|n| n > sql.len() as u64 - 20),
        "{record}"
    );
    Ok(())
}

/// A DuckDB file with `sales` (declared keys) and `archive` (same table names, no keys) side by side.
fn two_schema_warehouse(path: &Path) -> Result<()> {
    let conn = duckdb::Connection::open(path)?;
    conn.execute_batch(
        "CREATE SCHEMA sales;
         CREATE TABLE sales.customers (id INTEGER PRIMARY KEY, name VARCHAR);
         CREATE TABLE sales.orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES sales.customers (id),
                                    ordered_on DATE);
         INSERT INTO sales.customers VALUES (1, 'Ada'), (2, 'Grace');
         INSERT INTO sales.orders VALUES (10, 1, DATE '2024-03-01'), (11, 2, DATE '2024-03-09');
         CREATE SCHEMA archive;
         CREATE TABLE archive.customers (id INTEGER PRIMARY KEY, name VARCHAR);
         CREATE TABLE archive.orders (id INTEGER PRIMARY KEY, customer_id INTEGER, ordered_on DATE);
         INSERT INTO archive.customers VALUES (1, 'Old Ada');
         INSERT INTO archive.orders VALUES (1, 1, DATE '2019-05-01'), (2, 1, DATE '2099-01-01');",
    )?;
    Ok(())
}

#[tokio::test]
async fn same_named_tables_in_two_schemas_stay_apart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("two.duckdb");
    two_schema_warehouse(&file)?;
    let gw = gateway_with(dir.path(), &[("two", "duckdb", file.display().to_string())]).await?;
    let client = gw.client().await?;

    let (out, t) = ok(&client, "list_schemas", json!({"connection_name": "two"})).await?;
    let names: Vec<&str> = out["schemas"]
        .as_array()
        .context("schemas")?
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["archive", "main", "sales"], "{t}");

    let t = fails(
        &client,
        "explore_table",
        json!({"connection_name": "two", "table_name": "orders"}),
    )
    .await?;
    assert!(
        t.contains("ambiguous") && t.contains("archive.orders") && t.contains("sales.orders"),
        "{t}"
    );

    // Declared in sales; inferred in archive; never across the two.
    for (schema, origin) in [("sales", "declared"), ("archive", "inferred")] {
        let path = check_path_runs(
            &client,
            "two",
            &format!("{schema}.orders"),
            &format!("{schema}.customers"),
        )
        .await?;
        assert_eq!(path["hops"], 1, "{path}");
        assert_eq!(path["joins"][0]["origin"], origin, "{path}");
        assert_eq!(
            path["tables"],
            json!([format!("{schema}.orders"), format!("{schema}.customers")])
        );
    }
    let (rels, t) = ok(&client, "get_relationships", json!({"connection_name": "two"})).await?;
    assert_eq!(rels["total"], 2, "one join per schema: {t}");
    assert!(!t.contains("archive.orders(customer_id) -> sales"), "{t}");

    let out = check_date_boundaries(&client, "two", '"').await?;
    // archive.orders holds a placeholder far in the future: flagged, and not the global maximum.
    let archive = out["tables"]
        .as_array()
        .context("tables")?
        .iter()
        .find(|t| t["table"] == "archive.orders")
        .context("archive.orders")?
        .clone();
    assert!(
        archive["flags"][0]
            .as_str()
            .is_some_and(|f| f.contains("future dates")),
        "{archive}"
    );
    Ok(())
}

#[tokio::test]
async fn data_reads_are_governed_and_audited() -> Result<()> {
    let gw = Gateway::with_policed_demo("denied_tables = [\"customers\"]\n").await?;
    let client = gw.client().await?;

    // The schema is visible, but reading a denied table's data is refused by governance.
    let t = fails(
        &client,
        "explore_column",
        json!({"connection_name": "policed", "table": "customers", "column": "segment"}),
    )
    .await?;
    assert!(t.contains("customers"), "{t}");
    let t = fails(
        &client,
        "compare_join_types",
        json!({"connection_name": "policed", "left_table": "orders", "right_table": "customers",
               "join_keys": "customer_id"}),
    )
    .await?;
    assert!(t.contains("customers"), "{t}");
    let (out, _) = ok(
        &client,
        "explore_table",
        json!({"connection_name": "policed", "table_name": "customers"}),
    )
    .await?;
    assert!(
        out["samples_note"]
            .as_str()
            .is_some_and(|n| n.starts_with("not available")),
        "{out}"
    );
    // A path through the denied table is returned with governance's verdict, never as runnable.
    let (out, t) = ok(
        &client,
        "find_join_path",
        json!({"connection_name": "policed", "from_table": "orders", "to_table": "customers"}),
    )
    .await?;
    assert!(
        out["paths"][0]["governance"]
            .as_str()
            .is_some_and(|g| g.starts_with("refused")),
        "{t}"
    );
    let (out, _) = ok(
        &client,
        "get_date_boundaries",
        json!({"connection_name": "policed"}),
    )
    .await?;
    let customers = out["tables"]
        .as_array()
        .context("tables")?
        .iter()
        .find(|t| t["table"] == "main.customers")
        .context("customers")?
        .clone();
    assert!(customers["error"].as_str().is_some(), "{customers}");
    // The one statement for all tables was refused for customers; retried table by table, only customers
    // fails and every other table still answers.
    // The views (which read no customers) answer in their own one statement.
    let tables = out["tables"].as_array().context("tables")?;
    let stored = tables.iter().filter(|t| t["view"] == json!(false)).count() as u64;
    assert_eq!(out["queries"].as_u64(), Some(1 + stored + 1), "{out}");
    assert!(
        tables
            .iter()
            .filter(|t| t["table"] != "main.customers")
            .all(|t| t["error"].is_null() && t["row_count"].as_u64().is_some_and(|n| n > 0)),
        "{out}"
    );

    // One audit record per call: introspection as a system query, data reads with their redacted SQL.
    ok(&client, "schema_overview", json!({"connection_name": "policed"})).await?;
    ok(
        &client,
        "explore_column",
        json!({"connection_name": "policed", "table": "orders", "column": "status", "filter_pattern": "o'clock"}),
    )
    .await?;
    let out = gw.cli(&["audit", "--limit", "2"]).await?;
    let records: Vec<Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let by_tool = |tool: &str| records.iter().find(|r| r["tool"] == tool).cloned();
    let overview = by_tool("schema_overview").context("schema_overview audited")?;
    assert_eq!(overview["system_query"], true, "{overview}");
    assert_eq!(overview["sql_redacted"], Value::Null, "{overview}");
    let column = by_tool("explore_column").context("explore_column audited")?;
    assert_eq!(column["system_query"], false, "{column}");
    let sql = column["sql_redacted"].as_str().context("sql")?;
    assert!(sql.contains("GROUP BY"), "{sql}");
    assert!(!sql.contains("clock"), "the literal is redacted: {sql}");
    Ok(())
}

#[tokio::test]
async fn awkward_identifiers_are_quoted_everywhere() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("odd.duckdb");
    {
        let conn = duckdb::Connection::open(&file)?;
        conn.execute_batch(
            r#"CREATE SCHEMA "Sales Data";
               CREATE TABLE "Sales Data"."Customer" ("Customer Id" INTEGER PRIMARY KEY, "Name" VARCHAR);
               CREATE TABLE "Sales Data"."Order Lines" (
                   "Line" INTEGER PRIMARY KEY,
                   "Customer Id" INTEGER,
                   "Shipped On" DATE,
                   "Unit ""Price""" DECIMAL(8, 2));
               INSERT INTO "Sales Data"."Customer" VALUES (1, 'O''Brien'), (2, 'Select * From x');
               INSERT INTO "Sales Data"."Order Lines" VALUES (1, 1, DATE '2024-05-01', 9.5),
                                                            (2, 2, DATE '2024-06-01', 3.25);"#,
        )?;
    }
    let gw = gateway_with(dir.path(), &[("odd", "duckdb", file.display().to_string())]).await?;
    let client = gw.client().await?;
    let (out, t) = ok(
        &client,
        "explore_columns",
        json!({"connection_name": "odd", "table": "\"Sales Data\".\"Order Lines\""}),
    )
    .await?;
    assert_eq!(out["columns"][3]["name"], "Unit \"Price\"", "{t}");
    assert_eq!(out["columns"][3]["max"], "9.50", "{t}");
    let (out, t) = ok(
        &client,
        "explore_column",
        json!({"connection_name": "odd", "table": "Customer", "column": "Name", "filter_pattern": "o'b"}),
    )
    .await?;
    assert_eq!(out["values"][0]["value"], "O'Brien", "{t}");
    let path = check_path_runs(&client, "odd", "Order Lines", "Customer").await?;
    assert_eq!(path["joins"][0]["from_columns"], json!(["Customer Id"]));
    let (out, t) = ok(&client, "get_date_boundaries", json!({"connection_name": "odd"})).await?;
    assert_eq!(out["global_max"], "2024-06-01", "{t}");
    let (out, t) = ok(
        &client,
        "compare_join_types",
        json!({"connection_name": "odd", "left_table": "Order Lines", "right_table": "Customer",
               "join_keys": "a.\"Customer Id\" = b.\"Customer Id\"", "where_clause": "b.\"Name\" LIKE 'O%'"}),
    )
    .await?;
    assert_eq!(out["inner_join_rows"], 1, "{t}");
    Ok(())
}

/// Inferred joins are checked against a sample of the data: a join whose referencing values exist on
/// the key side is said to agree; one whose values are nowhere there is said to disagree, and its paths
/// rank below a longer path whose joins agree. Each join is checked once per snapshot, through the
/// governed path (so the check is in the audit log).
#[tokio::test]
async fn inferred_joins_are_checked_against_sampled_values() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("values.duckdb");
    {
        let conn = duckdb::Connection::open(&file)?;
        conn.execute_batch(
            "CREATE TABLE accounts (id INTEGER, name VARCHAR);
             CREATE TABLE invoices (id INTEGER, account_id INTEGER, total DECIMAL(10, 2));
             CREATE TABLE payments (id INTEGER, invoice_id INTEGER, account_id INTEGER, amount DECIMAL(10, 2));
             INSERT INTO accounts VALUES (1, 'a'), (2, 'b'), (3, 'c');
             INSERT INTO invoices VALUES (10, 1, 5), (11, 2, 7), (12, 3, 9);
             -- payments.account_id holds legacy numbers that are no account's id.
             INSERT INTO payments VALUES (100, 10, 9001, 5), (101, 11, 9002, 7), (102, 12, 9003, 9),
                                         (103, 10, 9004, 1);",
        )?;
    }
    let gw = gateway_with(dir.path(), &[("vals", "duckdb", file.display().to_string())]).await?;
    let client = gw.client().await?;
    let args = json!({"connection_name": "vals", "from_table": "payments", "to_table": "accounts"});
    let (out, t) = ok(&client, "find_join_path", args.clone()).await?;
    let paths = out["paths"].as_array().context("paths")?;
    let direct = paths
        .iter()
        .find(|p| p["hops"] == 1)
        .context("the direct path is still offered")?;
    assert!(
        direct["joins"][0]["reason"].as_str().is_some_and(|r| r.contains(
            "values disagree: only 0 of 4 sampled payments.account_id values found in accounts; probably not this join"
        )),
        "{t}"
    );
    assert_eq!(
        paths[0]["tables"],
        json!(["main.payments", "main.invoices", "main.accounts"]),
        "the path whose joins the values confirm comes first: {t}"
    );
    let reasons: Vec<&str> = paths[0]["joins"]
        .as_array()
        .context("joins")?
        .iter()
        .filter_map(|j| j["reason"].as_str())
        .collect();
    assert!(
        reasons[0].contains("values agree: 4 of 4 sampled payments.invoice_id values found in invoices")
            && reasons[1]
                .contains("values agree: 3 of 3 sampled invoices.account_id values found in accounts"),
        "{reasons:?}"
    );
    assert!(t.contains("values disagree"), "the text says it too: {t}");
    let audit = |out: std::process::Output| -> Result<Value> {
        Ok(serde_json::from_str(String::from_utf8(out.stdout)?.trim())?)
    };
    let first = audit(gw.cli(&["audit", "--limit", "1"]).await?)?;
    assert_eq!(first["tool"], "find_join_path", "{first}");
    assert!(
        first["sql_redacted"]
            .as_str()
            .is_some_and(|s| s.contains("EXISTS")),
        "the checks ran through the governed path: {first}"
    );
    // The second call reuses what the values said: no statement runs.
    let (again, _) = ok(&client, "find_join_path", args).await?;
    assert_eq!(again["paths"], out["paths"]);
    let second = audit(gw.cli(&["audit", "--limit", "1"]).await?)?;
    assert_eq!(second["sql_redacted"], Value::Null, "{second}");
    Ok(())
}
