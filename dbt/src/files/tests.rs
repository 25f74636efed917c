//! Tests of reading the project's own files: `dbt_project.yml`, property YAML, and SQL files by their role.

use super::*;
use pretty_assertions::assert_eq;

fn file(path: &str, contents: &str) -> ProjectFile {
    ProjectFile {
        path: path.into(),
        contents: contents.into(),
        modified: None,
    }
}

#[test]
fn project_config_paths_and_directory_config() {
    let yml = "name: shop\nmodel-paths: ['transform']\ntarget-path: ./build/\nmodels:\n  shop:\n    +materialized: view\n    marts:\n      +materialized: table\n      legacy:\n        +enabled: false\n";
    let (config, findings) = ProjectConfig::parse(&file("dbt_project.yml", yml));
    assert_eq!(findings, vec![]);
    assert_eq!(config.name.as_deref(), Some("shop"));
    assert_eq!(config.model_paths, vec!["transform".to_owned()]);
    assert_eq!(config.target_path, "build");
    let cases = [
        ("transform/stg.sql", FileRole::Model, (Some("view"), None)),
        (
            "transform/marts/orders.sql",
            FileRole::Model,
            (Some("table"), None),
        ),
        (
            "transform/marts/legacy/old.sql",
            FileRole::Model,
            (Some("table"), Some(false)),
        ),
        ("macros/m.sql", FileRole::Macro, (Some("view"), None)),
        ("seeds/s.csv", FileRole::Seed, (Some("view"), None)),
        ("README.md", FileRole::Other, (Some("view"), None)),
    ];
    for (path, role, (materialized, enabled)) in cases {
        assert_eq!(config.role(path), role, "{path}");
        let (m, e) = config.dir_config(path);
        assert_eq!((m.as_deref(), e), (materialized, enabled), "{path}");
    }
}

#[test]
fn broken_dbt_project_yml_is_a_finding() {
    let (config, findings) = ProjectConfig::parse(&file("dbt_project.yml", "name: [unclosed\n"));
    assert_eq!(config, ProjectConfig::default());
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].rule, Rule::YamlInvalid);
}

#[test]
fn scans_property_files() {
    let yml = r#"version: 2
models:
  - name: orders
    description: One row per order.
    config:
      materialized: incremental
      unique_key: [order_id, line]
    data_tests:
      - dbt_utils.unique_combination_of_columns:
          arguments:
            combination_of_columns: [order_id, line]
    columns:
      - name: order_id
        description: Key.
        data_tests: [unique, not_null]
      - name: status
        tests:
          - accepted_values:
              values: [a, b]
          - name: status_is_known
            test_name: not_null
sources:
  - name: shop
    schema: raw
    tables:
      - name: orders
        identifier: raw_orders
exposures:
  - name: dash
    type: dashboard
    depends_on: ["ref('orders')", "source('shop', 'orders')"]
"#;
    let files = ProjectFiles {
        dbt_project: None,
        files: vec![file("models/schema.yml", yml)],
    };
    let (scan, findings) = scan(&files);
    assert_eq!(findings, vec![]);
    let orders = &scan.yml_nodes[0];
    assert_eq!((orders.name.as_str(), orders.line), ("orders", 3));
    assert_eq!(
        orders.unique_key,
        Some(vec!["order_id".to_owned(), "line".to_owned()])
    );
    assert_eq!(
        orders.tests,
        vec![(
            "dbt_utils.unique_combination_of_columns".to_owned(),
            vec!["order_id".to_owned(), "line".to_owned()]
        )]
    );
    let cols: Vec<_> = orders
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.tests.clone(), c.line))
        .collect();
    assert_eq!(
        cols,
        vec![
            ("order_id", vec!["unique".to_owned(), "not_null".to_owned()], 13),
            (
                "status",
                vec!["accepted_values".to_owned(), "not_null".to_owned()],
                16
            ),
        ]
    );
    assert_eq!(
        scan.sources[0].tables[0].identifier.as_deref(),
        Some("raw_orders")
    );
    assert_eq!(scan.exposures[0].refs[0].name, "orders");
    assert_eq!(scan.exposures[0].refs[0].line, 31);
    assert_eq!(scan.exposures[0].sources[0].table, "orders");
}

#[test]
fn scans_sql_files_by_role() {
    let files = ProjectFiles {
        dbt_project: None,
        files: vec![
            file("models/a.sql", "select * from {{ ref('b') }}"),
            file(
                "models/py_model.py",
                "def model(dbt, session): return dbt.ref('a')",
            ),
            file("snapshots/s.sql", "{% snapshot snap %}select 1{% endsnapshot %}"),
            file("macros/m.sql", "{% macro m(x) %}{{ x }}{% endmacro %}"),
            file("tests/t.sql", "select * from {{ ref('missing') }}"),
            file("seeds/raw.csv", ""),
            file("models/broken.yml", "models: [\n"),
            file("docs/notes.yml", "not: [scanned"),
        ],
    };
    let (scan, findings) = scan(&files);
    let models: Vec<_> = scan.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(models, vec!["a", "py_model"]);
    assert_eq!(scan.models[0].facts.refs[0].name, "b");
    assert_eq!(scan.snapshots[0].name, "snap");
    assert_eq!(scan.macros[0].def.name, "m");
    assert_eq!(scan.other_sql[0].refs[0].name, "missing");
    assert_eq!(scan.seeds[0].path, "seeds/raw.csv");
    let rules: Vec<_> = findings
        .iter()
        .map(|f| (f.rule, f.location.clone().map(|l| l.path)))
        .collect();
    assert_eq!(
        rules,
        vec![(Rule::YamlInvalid, Some("models/broken.yml".to_owned()))]
    );
}
