//! Artifact parsing at the edges: the real fixture artifacts, corrupt files and a large synthetic manifest.

use std::fmt::Write;

use pretty_assertions::assert_eq;
use sluice_dbt::analyze::{Artifact, ProjectInput, analyze};
use sluice_dbt::artifacts::catalog::Catalog;
use sluice_dbt::artifacts::manifest::Manifest;
use sluice_dbt::artifacts::run_results::{Outcome, RunResults};
use sluice_dbt::project::{Direction, NodeKind};

use super::fixtures;

#[test]
fn real_dbt_artifacts_parse() {
    let target = fixtures().join("defects/target");
    let open = |name: &str| {
        std::io::BufReader::new(std::fs::File::open(target.join(name)).expect("fixture artifact"))
    };
    let manifest = Manifest::from_reader(open("manifest.json"), "manifest.json").expect("manifest");
    assert_eq!(manifest.metadata.schema_version(), Some(12));
    assert_eq!(manifest.metadata.dbt_version, "1.10.23");
    assert_eq!(manifest.metadata.adapter_type, "duckdb");
    let models = manifest
        .nodes
        .iter()
        .filter(|n| n.resource_type == "model")
        .count();
    assert_eq!(models, 14);
    // Macro bodies are not kept, only their argument lists.
    let gsn = manifest
        .macros
        .iter()
        .find(|m| m.unique_id == "macro.defects.generate_schema_name")
        .expect("macro");
    assert_eq!(gsn.signature.as_deref(), Some("custom_schema_name, node"));
    let catalog = Catalog::from_reader(open("catalog.json"), "catalog.json").expect("catalog");
    assert!(catalog.table("model.defects.customers").is_some());
    assert!(catalog.table("source.defects.shop.orders").is_some());
    let run = RunResults::from_reader(open("run_results.json"), "run_results.json").expect("run results");
    let outcome = |id: &str| {
        run.results
            .iter()
            .find(|r| r.unique_id == id)
            .map(|r| r.outcome())
    };
    assert_eq!(outcome("model.defects.broken_model"), Some(Outcome::Errored));
    assert_eq!(outcome("model.defects.after_broken"), Some(Outcome::Skipped));
    assert_eq!(
        outcome("test.defects.unique_stg_payments_payment_id.3744510712"),
        Some(Outcome::Failed)
    );
}

#[test]
fn a_corrupt_manifest_names_file_and_json_path() {
    let bytes = std::fs::read(fixtures().join("jaffle/target/manifest.json")).expect("fixture");
    let text = String::from_utf8(bytes).expect("utf-8");
    // Break one field's type deep inside a real manifest.
    let broken = text.replacen("\"materialized\": \"incremental\"", "\"materialized\": 42", 1);
    assert_ne!(broken, text, "the fixture has an incremental model");
    let err = Manifest::from_slice(broken.as_bytes(), "jaffle/target/manifest.json").expect_err("wrong type");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "jaffle/target/manifest.json: invalid manifest.json at JSON path `nodes.model.jaffle.fct_payments.config.materialized`"
        ),
        "{message}"
    );
    let truncated = &text.as_bytes()[..text.len() / 2];
    let err = Manifest::from_slice(truncated, "m.json").expect_err("truncated");
    let message = err.to_string();
    assert!(
        message.starts_with("m.json: invalid manifest.json at JSON path `"),
        "{message}"
    );
    assert!(message.contains("EOF while parsing"), "{message}");
}

/// A manifest of `n` models in a chain of layers, each reading the previous layer, as dbt writes them.
fn synthetic_manifest(n: usize) -> String {
    let mut out = String::from(
        r#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v11.json", "dbt_version": "1.7.0", "project_name": "big"}, "nodes": {"#,
    );
    for i in 0..n {
        let parent = if i >= 10 {
            format!("\"model.big.m{}\"", i - 10)
        } else {
            String::new()
        };
        let _ = write!(
            out,
            r#"{}"model.big.m{i}": {{"unique_id": "model.big.m{i}", "resource_type": "model", "name": "m{i}", "package_name": "big",
              "original_file_path": "models/m{i}.sql", "patch_path": "big://models/schema.yml", "description": "Model {i}.",
              "raw_code": "select id, value\nfrom {{{{ ref('m{p}') }}}}\n", "compiled_code": "select id, value from x",
              "config": {{"enabled": true, "materialized": "table", "unique_key": null, "meta": {{"owner": "x"}}}},
              "columns": {{"id": {{"name": "id", "description": "Key.", "meta": {{}}, "data_type": null, "constraints": [{{"type": "primary_key"}}]}}}},
              "depends_on": {{"macros": [], "nodes": [{parent}]}}, "refs": [], "fqn": ["big", "m{i}"], "tags": []}}"#,
            if i == 0 { "" } else { "," },
            p = i.saturating_sub(10),
        );
    }
    out.push_str(r#"}, "sources": {}, "macros": {}, "exposures": {}, "disabled": {}, "parent_map": {}, "child_map": {}}"#);
    out
}

#[test]
fn a_large_manifest_streams_and_analyses() {
    let text = synthetic_manifest(3_000);
    let manifest = Manifest::from_reader(text.as_bytes(), "big.json").expect("parses");
    assert_eq!(manifest.nodes.len(), 3_000);
    let input = ProjectInput {
        manifest: Some(Artifact::new(manifest)),
        ..ProjectInput::default()
    };
    let (analysis, findings) = analyze(input);
    let project = &analysis.project;
    assert_eq!(project.of_kind(NodeKind::Model).len(), 3_000);
    // Only the missing catalog and run results are reported: every model is documented with a key.
    let codes: Vec<&str> = findings.iter().map(|f| f.rule.code()).collect();
    assert_eq!(codes, vec!["DBT001", "DBT001"]);
    let last = project.find("m2999").expect("model");
    let upstream = project.lineage(last, Direction::Upstream, None, false);
    assert_eq!(upstream.len(), 299);
    assert_eq!(upstream.last().map(|s| s.depth), Some(299));
}
