//! dbt's verification tools against the DuckDB warehouses real dbt built: check_model_schema,
//! validate_model_output, analyze_grain and audit_model_sources.

use pretty_assertions::assert_eq;

use super::*;

#[tokio::test]
async fn verification_tools_read_the_warehouse_dbt_built() -> anyhow::Result<()> {
    let s = setup().await?;
    let client = s.gw.client().await?;

    // customers documents loyalty_tier, which the SQL never selects, and selects debug_flag, undocumented.
    let r = call(
        &client,
        "check_model_schema",
        json!({"connection_name": "defects_wh", "model_name": "customers",
               "yml_columns": "customer_id, first_name, number_of_orders, loyalty_tier"}),
    )
    .await?;
    let c = ok(&r);
    assert_eq!(c["relation"], "main.customers");
    assert_eq!(c["missing"], json!(["loyalty_tier"]));
    assert_eq!(c["extra"], json!(["debug_flag"]));
    assert_eq!(
        c["matching"],
        json!(["customer_id", "first_name", "number_of_orders"])
    );
    assert_eq!(c["matches"], false);
    assert!(text(&r).contains("[X] Missing: loyalty_tier"), "{}", text(&r));
    // Empty yml_columns: the columns documented in the YAML.
    let c = ok(&call(
        &client,
        "check_model_schema",
        json!({"connection_name": "defects_wh", "model_name": "customers", "yml_columns": ""}),
    )
    .await?);
    assert_eq!(
        c["expected"],
        json!(["customer_id", "first_name", "number_of_orders", "loyalty_tier"])
    );
    let c = ok(&call(
        &client,
        "check_model_schema",
        json!({"connection_name": "jaffle_wh", "model_name": "stg_payments", "yml_columns": "PAYMENT_ID"}),
    )
    .await?);
    assert_eq!(
        c["case_mismatches"],
        json!([{"expected": "PAYMENT_ID", "actual": "payment_id"}])
    );

    // Models the manifest knows but dbt never built, models it does not know, and unbound connections.
    refused(
        &call(
            &client,
            "check_model_schema",
            json!({"connection_name": "defects_wh", "model_name": "payment_summary", "yml_columns": "order_id"}),
        )
        .await?,
        "could not read model 'payment_summary' (has it been built? run `dbt build --select payment_summary`)",
    );
    refused(
        &call(
            &client,
            "check_model_schema",
            json!({"connection_name": "defects_wh", "model_name": "nope", "yml_columns": "a"}),
        )
        .await?,
        "model 'nope' is not in the manifest of project defects (bound to connection 'defects_wh'); models: ",
    );
    refused(
        &call(
            &client,
            "validate_model_output",
            json!({"connection_name": "defects_wh", "model_name": "shop.customers"}),
        )
        .await?,
        "'shop.customers' is a source in project defects, not a model, seed or snapshot",
    );
    refused(
        &call(
            &client,
            "validate_model_output",
            json!({"connection_name": "demo", "model_name": "customers"}),
        )
        .await?,
        "no dbt project is bound to connection 'demo'",
    );
    refused(
        &call(
            &client,
            "check_model_schema",
            json!({"connection_name": "nope", "model_name": "customers", "yml_columns": "a"}),
        )
        .await?,
        "unknown connection 'nope'",
    );

    // Row counts against a source (named as dbt names it) and an expected count.
    let raw_customers = count_rows(&s.defects.join("defects.duckdb"), "raw.raw_customers")?;
    let v = ok(&call(
        &client,
        "validate_model_output",
        json!({"connection_name": "defects_wh", "model_name": "customers", "source_table": "shop.customers",
               "expected_row_count": raw_customers}),
    )
    .await?);
    assert_eq!(v["row_count"], raw_customers);
    assert_eq!(v["source_relation"], "raw.raw_customers");
    assert_eq!(v["source_row_count"], raw_customers);
    assert_eq!(
        (v["ratio"].as_f64(), v["verdict"].as_str()),
        (Some(1.0), Some("ok"))
    );
    assert_eq!(v["expected_matches"], true);
    // top_customers keeps five rows: against the twelve payments that reads as over-filtering.
    let v = ok(&call(
        &client,
        "validate_model_output",
        json!({"connection_name": "defects_wh", "model_name": "top_customers", "source_table": "stg_payments",
               "expected_row_count": 6}),
    )
    .await?);
    assert_eq!(
        (v["row_count"].as_u64(), v["source_row_count"].as_u64()),
        (Some(5), Some(12))
    );
    assert_eq!(v["verdict"], "over_filtered");
    assert_eq!(v["expected_matches"], false);

    // stg_payments repeats a payment_id (the failing unique test): not the grain.
    let g = ok(&call(
        &client,
        "analyze_grain",
        json!({"connection_name": "defects_wh", "table_name": "stg_payments", "candidate_keys": "payment_id"}),
    )
    .await?);
    assert_eq!(g["relation"], "main.stg_payments");
    assert_eq!(g["candidates"][0]["unique"], false);
    assert_eq!(g["grain"], Value::Null);
    let total = g["total_rows"].as_u64().unwrap_or(0);
    assert_eq!(g["candidates"][0]["distinct"].as_u64(), Some(total - 1));
    // Without candidates, id-like columns are tried; a plain table name works without a project.
    let g = ok(&call(
        &client,
        "analyze_grain",
        json!({"connection_name": "jaffle_wh", "table_name": "main.orders"}),
    )
    .await?);
    assert_eq!(g["grain"], "order_id");
    refused(
        &call(
            &client,
            "analyze_grain",
            json!({"connection_name": "jaffle_wh", "table_name": "a.b.c.d"}),
        )
        .await?,
        "more than three dot-separated parts",
    );

    let a = ok(&call(
        &client,
        "audit_model_sources",
        json!({"connection_name": "defects_wh", "model_name": "customers", "source_tables": "stg_customers, stg_orders"}),
    )
    .await?);
    assert_eq!(a["sources"][0]["relation"], "main.stg_customers");
    assert_eq!(a["sources"][0]["ratio"], 1.0);
    let columns: Vec<&str> = a["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        columns.contains(&"debug_flag") && columns.contains(&"customer_id"),
        "{columns:?}"
    );
    refused(
        &call(
            &client,
            "audit_model_sources",
            json!({"connection_name": "defects_wh", "model_name": "customers", "source_tables": " , "}),
        )
        .await?,
        "source_tables is empty",
    );

    // What the agent reads, in one snapshot (no temporary paths in these texts).
    let mut texts = Vec::new();
    for (tool, args) in [
        (
            "check_model_schema",
            json!({"connection_name": "defects_wh", "model_name": "customers", "yml_columns": ""}),
        ),
        (
            "validate_model_output",
            json!({"connection_name": "defects_wh", "model_name": "customers", "source_table": "shop.customers",
                   "expected_row_count": 9}),
        ),
        (
            "audit_model_sources",
            json!({"connection_name": "defects_wh", "model_name": "customers", "source_tables": "stg_customers,stg_orders"}),
        ),
        (
            "analyze_grain",
            json!({"connection_name": "defects_wh", "table_name": "stg_payments"}),
        ),
    ] {
        let r = call(&client, tool, args).await?;
        ok(&r);
        texts.push(format!("## {tool}\n{}", text(&r)));
    }
    insta::assert_snapshot!("dbt_verification_texts", texts.join("\n\n"));

    // Every statement went through governance and into the audit log, literals redacted.
    let (code, out, _) = run_cli(&s.gw.data_dir, &["audit", "--limit", "100"]).await?;
    assert_eq!(code, 0);
    let records: Vec<Value> = out.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let find = |tool: &str| {
        records
            .iter()
            .filter(|r| r["tool"] == tool && r["decision"] == "ok")
            .map(|r| r["sql_redacted"].as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    let schema = find("check_model_schema");
    assert!(
        schema
            .iter()
            .any(|sql| sql == "SELECT * FROM \"main\".\"customers\" LIMIT ?"),
        "{schema:?}"
    );
    let output = find("validate_model_output");
    assert!(
        output.iter().any(
            |sql| sql.contains("(SELECT count(*) FROM \"main\".\"customers\") AS row_count_0")
                && sql.contains("FROM \"raw\".\"raw_customers\")")
        ),
        "{output:?}"
    );
    let audit = find("audit_model_sources");
    assert!(
        audit
            .iter()
            .any(|sql| sql.contains("count(DISTINCT \"debug_flag\")")),
        "{audit:?}"
    );
    let failed: Vec<&Value> = records
        .iter()
        .filter(|r| r["tool"] == "check_model_schema" && r["decision"] == "error")
        .collect();
    assert!(
        failed.iter().any(|r| r["sql_redacted"]
            .as_str()
            .unwrap_or("")
            .contains("\"payment_summary\"")),
        "{failed:?}"
    );
    Ok(())
}

fn count_rows(db: &Path, table: &str) -> anyhow::Result<u64> {
    let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly)?;
    let conn = duckdb::Connection::open_with_flags(db, config)?;
    let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
    Ok(u64::try_from(n)?)
}
