//! The column-level dbt tools over MCP: lineage, impact and coverage on the jaffle project, and what they
//! say about input they cannot fully use.

use pretty_assertions::assert_eq;

use super::*;

/// The column-level tools over MCP on the jaffle project: lineage of one column, the impact of renaming a
/// column, and test coverage with a threshold; an unknown column is refused with the reason.
#[tokio::test]
async fn column_lineage_impact_and_coverage_over_mcp() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let jaffle = project_copy(tmp.path(), "jaffle")?;
    let config = tmp.path().join("sluice.toml");
    std::fs::write(&config, "[[projects]]\nname = 'jaffle'\ndir = 'jaffle'\n")?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Launch::default()
    })
    .await?;
    let client = gw.client().await?;

    let lineage = call(
        &client,
        "dbt_column_lineage",
        json!({"project_dir": "jaffle", "model": "orders", "column": "amount", "direction": "up"}),
    )
    .await?;
    let t = text(&lineage);
    assert_eq!(lineage.is_error, Some(false), "{t}");
    assert!(
        t.contains("stg_payments"),
        "orders.amount comes from the payments: {t}"
    );

    let impact = ok(&call(
        &client,
        "dbt_impact",
        json!({"project_dir": "jaffle", "model": "stg_payments", "column": "order_id", "change": "rename"}),
    )
    .await?);
    assert_eq!(impact["breaking"], 2, "{impact}");
    let impact_text = impact["text"].as_str().unwrap_or("");
    assert!(
        impact_text.contains("fct_payments") && impact_text.contains("orders"),
        "{impact_text}"
    );

    let all = ok(&call(
        &client,
        "dbt_test_coverage",
        json!({"project_dir": "jaffle", "min_models": 0.0, "min_columns": 0.0}),
    )
    .await?);
    assert_eq!(all["passed"], true, "{all}");
    let strict = ok(&call(
        &client,
        "dbt_test_coverage",
        json!({"project_dir": "jaffle", "min_models": 100.0, "min_columns": 100.0}),
    )
    .await?);
    assert_eq!(
        strict["passed"], false,
        "jaffle does not test every column: {strict}"
    );

    refused(
        &call(
            &client,
            "dbt_column_lineage",
            json!({"project_dir": "jaffle", "model": "orders", "column": "no_such_column"}),
        )
        .await?,
        "no_such_column",
    );
    refused(
        &call(
            &client,
            "dbt_impact",
            json!({"project_dir": tmp.path().display().to_string(), "model": "orders"}),
        )
        .await?,
        "is outside every registered dbt project",
    );
    drop(jaffle);
    Ok(())
}

/// Rewrites the manifest of a project copy: `edit` gets each node by unique id. The manifest stays dated
/// after the project files, as after a build.
fn edit_manifest(dir: &Path, edit: impl Fn(&str, &mut Value)) -> anyhow::Result<()> {
    let path = dir.join("target/manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    if let Some(nodes) = manifest["nodes"].as_object_mut() {
        for (id, node) in nodes.iter_mut() {
            edit(id, node);
        }
    }
    std::fs::write(&path, serde_json::to_vec(&manifest)?)?;
    std::fs::File::options()
        .write(true)
        .open(&path)?
        .set_modified(SystemTime::now() + Duration::from_secs(60))?;
    Ok(())
}

/// The column-level tools over MCP on input they cannot fully use, each answered with what is wrong: a
/// manifest from `dbt parse` (model-level lineage, saying why), compiled SQL that does not parse in the
/// project's dialect (the model listed with the parser's reason), a baseline manifest from another project
/// (refused, naming both), and empty artifacts (refused, naming the file and the dbt command to rerun).
#[tokio::test]
async fn column_tools_say_what_is_wrong_with_their_input() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let parsed_only = tmp.path().join("parsed_only");
    copy_dir(&fixture("jaffle"), &parsed_only)?;
    edit_manifest(&parsed_only, |_, node| {
        if let Some(n) = node.as_object_mut() {
            n.remove("compiled_code");
        }
    })?;
    let unparsable = tmp.path().join("unparsable");
    copy_dir(&fixture("jaffle"), &unparsable)?;
    edit_manifest(&unparsable, |id, node| {
        if id == "model.jaffle.stg_payments" {
            node["compiled_code"] = "select p.id as payment_id from (((".into();
        }
    })?;
    // A baseline from another project, and an empty one, inside the project the tool may read.
    let mut other: Value = serde_json::from_slice(&std::fs::read(unparsable.join("target/manifest.json"))?)?;
    other["metadata"]["project_name"] = "shop".into();
    std::fs::write(unparsable.join("shop-manifest.json"), serde_json::to_vec(&other)?)?;
    std::fs::write(unparsable.join("empty-manifest.json"), b"")?;
    let empty_catalog = tmp.path().join("empty_catalog");
    copy_dir(&fixture("jaffle"), &empty_catalog)?;
    std::fs::write(empty_catalog.join("target/catalog.json"), b"")?;
    let empty_manifest = tmp.path().join("empty_manifest");
    copy_dir(&fixture("jaffle"), &empty_manifest)?;
    std::fs::write(empty_manifest.join("target/manifest.json"), b"")?;

    let config = tmp.path().join("sluice.toml");
    let mut projects = String::new();
    for name in ["parsed_only", "unparsable", "empty_catalog", "empty_manifest"] {
        projects.push_str(&format!("[[projects]]\nname = '{name}'\ndir = '{name}'\n"));
    }
    std::fs::write(&config, projects)?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Launch::default()
    })
    .await?;
    let client = gw.client().await?;
    let lineage = |project: &str| json!({"project_dir": project, "model": "orders", "column": "amount", "direction": "up"});

    let parsed = ok(&call(&client, "dbt_column_lineage", lineage("parsed_only")).await?);
    assert_eq!(parsed["upstream"], json!([]), "{parsed}");
    assert_eq!(
        parsed["model_level"],
        json!([
            "orders: column lineage unavailable, the manifest has no compiled SQL for it, only raw Jinja (run \
             `dbt compile` or `dbt build`); model-level parents: stg_orders, stg_payments"
        ]),
        "{parsed}"
    );

    let result = call(&client, "dbt_column_lineage", lineage("unparsable")).await?;
    let unparsed = ok(&result);
    let model_level = unparsed["model_level"].as_array().cloned().unwrap_or_default();
    assert_eq!(model_level.len(), 1, "{unparsed}");
    assert!(
        model_level[0].as_str().is_some_and(|m| m.starts_with(
            "stg_payments: column lineage unavailable, its compiled SQL does not parse as DuckDB: sql parser error:"
        )),
        "{unparsed}"
    );
    assert!(
        text(&result).contains("Model-level only (1):\n  - stg_payments: column lineage unavailable"),
        "{}",
        text(&result)
    );

    refused(
        &call(
            &client,
            "dbt_impact",
            json!({"project_dir": "unparsable", "state": "shop-manifest.json"}),
        )
        .await?,
        "the baseline manifest is from dbt project `shop`, not `jaffle`: compare artifacts of the same project",
    );
    refused(
        &call(
            &client,
            "dbt_impact",
            json!({"project_dir": "unparsable", "state": "empty-manifest.json"}),
        )
        .await?,
        "empty-manifest.json: the file is empty (0 bytes of JSON), so it is not a usable manifest.json; rerun \
         `dbt compile` or `dbt build`",
    );
    refused(
        &call(
            &client,
            "dbt_test_coverage",
            json!({"project_dir": "empty_catalog"}),
        )
        .await?,
        "target/catalog.json: the file is empty (0 bytes of JSON), so it is not a usable catalog.json; rerun \
         `dbt docs generate`",
    );
    refused(
        &call(&client, "dbt_column_lineage", lineage("empty_manifest")).await?,
        "target/manifest.json: the file is empty (0 bytes of JSON), so it is not a usable manifest.json; rerun \
         `dbt compile` or `dbt build`",
    );
    Ok(())
}
