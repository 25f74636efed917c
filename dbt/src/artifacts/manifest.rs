//! `manifest.json` (schema v10-v12, dbt-core 1.6-1.10): nodes, sources, exposures, macros, disabled nodes.

use std::fmt;
use std::io::Read;

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};

use super::{ArtifactMetadata, map_values, nullable, string_or_list};
use crate::error::DbtError;

/// The manifest schema versions this crate is written against.
pub const SUPPORTED_SCHEMA_VERSIONS: std::ops::RangeInclusive<u32> = 10..=12;

/// The parts of `manifest.json` the analyses use.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Manifest {
    /// Versions and the root project's name.
    #[serde(default)]
    pub metadata: ArtifactMetadata,
    /// Models, seeds, snapshots, tests, analyses and operations.
    #[serde(default, deserialize_with = "map_values")]
    pub nodes: Vec<ManifestNode>,
    /// Declared source tables.
    #[serde(default, deserialize_with = "map_values")]
    pub sources: Vec<ManifestSource>,
    /// Exposures (dashboards, applications) and what they depend on.
    #[serde(default, deserialize_with = "map_values")]
    pub exposures: Vec<ManifestExposure>,
    /// Every macro, including dbt's own and the adapter's.
    #[serde(default, deserialize_with = "map_values")]
    pub macros: Vec<ManifestMacro>,
    /// Nodes switched off with `enabled: false`, grouped by unique id.
    #[serde(default, deserialize_with = "map_values")]
    pub disabled: Vec<Vec<DisabledNode>>,
}

impl Manifest {
    /// Reads a manifest from a reader; `file` names it in errors.
    pub fn from_reader(reader: impl Read, file: &str) -> Result<Self, DbtError> {
        super::from_reader(reader, file, "manifest.json")
    }

    /// Reads a manifest from bytes; `file` names it in errors.
    pub fn from_slice(bytes: &[u8], file: &str) -> Result<Self, DbtError> {
        super::from_slice(bytes, file, "manifest.json")
    }
}

/// A model, seed, snapshot, test, analysis or operation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ManifestNode {
    /// `model.<package>.<name>`, `test.<package>.<name>.<hash>`...
    pub unique_id: String,
    /// `model`, `seed`, `snapshot`, `test`, `analysis`, `operation`, `sql_operation`...
    #[serde(default, deserialize_with = "nullable")]
    pub resource_type: String,
    /// The node's name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// The package (project) that defines it.
    #[serde(default, deserialize_with = "nullable")]
    pub package_name: String,
    /// The file, relative to its project root, such as `models/marts/orders.sql`.
    #[serde(default, deserialize_with = "nullable")]
    pub original_file_path: String,
    /// `package://models/schema.yml` when a YAML entry describes the node.
    #[serde(default, deserialize_with = "nullable")]
    pub patch_path: Option<String>,
    /// Target database.
    #[serde(default, deserialize_with = "nullable")]
    pub database: Option<String>,
    /// Target schema.
    #[serde(default, deserialize_with = "nullable")]
    pub schema: Option<String>,
    /// Relation name in the warehouse, when it differs from `name`.
    #[serde(default, deserialize_with = "nullable")]
    pub alias: Option<String>,
    /// The fully quoted relation, such as `"db"."main"."orders"`.
    #[serde(default, deserialize_with = "nullable")]
    pub relation_name: Option<String>,
    /// From the YAML entry.
    #[serde(default, deserialize_with = "nullable")]
    pub description: String,
    /// Documented columns, in YAML order.
    #[serde(default, deserialize_with = "map_values")]
    pub columns: Vec<ManifestColumn>,
    /// The resolved configuration.
    #[serde(default, deserialize_with = "nullable")]
    pub config: NodeConfig,
    /// Resolved upstream nodes.
    #[serde(default, deserialize_with = "nullable")]
    pub depends_on: DependsOn,
    /// The Jinja SQL as written (`raw_sql` before dbt 1.3).
    #[serde(default, alias = "raw_sql", deserialize_with = "nullable")]
    pub raw_code: String,
    /// The SQL dbt compiled from `raw_code` (`compiled_sql` before dbt 1.3): present after `dbt compile`,
    /// `run` or `build`, absent after `dbt parse`. Column lineage parses it.
    #[serde(default, alias = "compiled_sql", deserialize_with = "nullable")]
    pub compiled_code: Option<String>,
    /// Which generic test this is, for test nodes.
    #[serde(default, deserialize_with = "nullable")]
    pub test_metadata: Option<TestMetadata>,
    /// The tested column, for column-level generic tests.
    #[serde(default, deserialize_with = "nullable")]
    pub column_name: Option<String>,
    /// The node a test belongs to.
    #[serde(default, deserialize_with = "nullable")]
    pub attached_node: Option<String>,
    /// Model-level constraints (contracts).
    #[serde(default, deserialize_with = "nullable")]
    pub constraints: Vec<Constraint>,
    /// Tags.
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
}

/// A documented column.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ManifestColumn {
    /// As written in YAML.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// From YAML.
    #[serde(default, deserialize_with = "nullable")]
    pub description: String,
    /// Declared type, if any.
    #[serde(default, deserialize_with = "nullable")]
    pub data_type: Option<String>,
    /// Column-level constraints.
    #[serde(default, deserialize_with = "nullable")]
    pub constraints: Vec<Constraint>,
}

/// A contract constraint.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Constraint {
    /// `primary_key`, `not_null`, `unique`, `check`, `foreign_key`, `custom`.
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub kind: String,
    /// The constrained columns, for model-level constraints.
    #[serde(default, deserialize_with = "nullable")]
    pub columns: Vec<String>,
}

/// The configuration fields the map and the checks read.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeConfig {
    /// `false` for disabled nodes.
    #[serde(default = "yes", deserialize_with = "nullable_bool_true")]
    pub enabled: bool,
    /// `view`, `table`, `incremental`, `ephemeral`, `seed`, `snapshot`, `test`...
    #[serde(default, deserialize_with = "nullable")]
    pub materialized: Option<String>,
    /// `append`, `merge`, `delete+insert`, `insert_overwrite`, `microbatch`.
    #[serde(default, deserialize_with = "nullable")]
    pub incremental_strategy: Option<String>,
    /// One column, several, or none.
    #[serde(default, deserialize_with = "string_or_list")]
    pub unique_key: Vec<String>,
    /// `ignore`, `append_new_columns`, `sync_all_columns`, `fail`.
    #[serde(default, deserialize_with = "nullable")]
    pub on_schema_change: Option<String>,
    /// For tests: `ERROR` or `warn`.
    #[serde(default, deserialize_with = "nullable")]
    pub severity: Option<String>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            enabled: true,
            materialized: None,
            incremental_strategy: None,
            unique_key: Vec::new(),
            on_schema_change: None,
            severity: None,
        }
    }
}

fn yes() -> bool {
    true
}

fn nullable_bool_true<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(de)?.unwrap_or(true))
}

/// Resolved upstream nodes.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DependsOn {
    /// Unique ids of upstream nodes and sources.
    #[serde(default, deserialize_with = "nullable")]
    pub nodes: Vec<String>,
}

/// Which generic test a test node runs.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TestMetadata {
    /// `unique`, `not_null`, `unique_combination_of_columns`...
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// `dbt_utils` for package tests.
    #[serde(default, deserialize_with = "nullable")]
    pub namespace: Option<String>,
    /// The arguments the checks look at.
    #[serde(default, deserialize_with = "nullable")]
    pub kwargs: TestKwargs,
}

/// The generic-test arguments that identify a key.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TestKwargs {
    /// The tested column.
    #[serde(default, deserialize_with = "lenient_string")]
    pub column_name: Option<String>,
    /// For `unique_combination_of_columns`.
    #[serde(default, deserialize_with = "lenient_strings")]
    pub combination_of_columns: Vec<String>,
    /// For `relationships`: the referenced column (the referenced relation is the test's other dependency).
    #[serde(default, deserialize_with = "lenient_string")]
    pub field: Option<String>,
}

/// Test arguments are free-form: a value of an unexpected shape is ignored rather than rejected.
fn lenient_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(de)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

fn lenient_strings<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(de)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// A declared source table.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ManifestSource {
    /// `source.<package>.<source_name>.<table>`.
    pub unique_id: String,
    /// The table's name in `source('<source_name>', '<name>')`.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// The source's name.
    #[serde(default, deserialize_with = "nullable")]
    pub source_name: String,
    /// The package that declares it.
    #[serde(default, deserialize_with = "nullable")]
    pub package_name: String,
    /// The YAML file that declares it.
    #[serde(default, deserialize_with = "nullable")]
    pub original_file_path: String,
    /// Database.
    #[serde(default, deserialize_with = "nullable")]
    pub database: Option<String>,
    /// Schema.
    #[serde(default, deserialize_with = "nullable")]
    pub schema: Option<String>,
    /// The table's name in the warehouse.
    #[serde(default, deserialize_with = "nullable")]
    pub identifier: Option<String>,
    /// The fully quoted relation.
    #[serde(default, deserialize_with = "nullable")]
    pub relation_name: Option<String>,
    /// The table's description.
    #[serde(default, deserialize_with = "nullable")]
    pub description: String,
    /// The source's description.
    #[serde(default, deserialize_with = "nullable")]
    pub source_description: String,
    /// Documented columns.
    #[serde(default, deserialize_with = "map_values")]
    pub columns: Vec<ManifestColumn>,
}

/// An exposure.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ManifestExposure {
    /// `exposure.<package>.<name>`.
    pub unique_id: String,
    /// The exposure's name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// The package that declares it.
    #[serde(default, deserialize_with = "nullable")]
    pub package_name: String,
    /// The YAML file that declares it.
    #[serde(default, deserialize_with = "nullable")]
    pub original_file_path: String,
    /// `dashboard`, `notebook`, `analysis`, `ml`, `application`.
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub kind: String,
    /// Description.
    #[serde(default, deserialize_with = "nullable")]
    pub description: String,
    /// What it reads.
    #[serde(default, deserialize_with = "nullable")]
    pub depends_on: DependsOn,
}

/// A macro. Its body is not kept: only the argument list is cut out of it while reading.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ManifestMacro {
    /// `macro.<package>.<name>`.
    pub unique_id: String,
    /// The macro's name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// The package that defines it (`dbt` and the adapter's for built-ins).
    #[serde(default, deserialize_with = "nullable")]
    pub package_name: String,
    /// The file that defines it.
    #[serde(default, deserialize_with = "nullable")]
    pub original_file_path: String,
    /// The argument list as written, such as `column_name, scale=2`.
    #[serde(default, rename = "macro_sql", deserialize_with = "macro_signature")]
    pub signature: Option<String>,
    /// From YAML.
    #[serde(default, deserialize_with = "nullable")]
    pub description: String,
}

/// The identity of a disabled node, so that its file is not mistaken for a live model.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DisabledNode {
    /// Unique id.
    #[serde(default, deserialize_with = "nullable")]
    pub unique_id: String,
    /// Name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// `model`, `seed`...
    #[serde(default, deserialize_with = "nullable")]
    pub resource_type: String,
    /// The file.
    #[serde(default, deserialize_with = "nullable")]
    pub original_file_path: String,
}

/// Cuts the argument list out of a macro body while it is being read, so the body itself is never stored:
/// dbt's own macros make up most of a small project's manifest.
fn macro_signature<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    struct Signature;
    impl Visitor<'_> for Signature {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("macro SQL")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: serde::de::Error>(self, sql: &str) -> Result<Self::Value, E> {
            Ok(crate::jinja::macro_definitions(sql)
                .into_iter()
                .next()
                .map(|m| m.signature))
        }
    }
    de.deserialize_any(Signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn reads_a_minimal_v10_style_manifest() {
        let json = r#"{
          "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v10.json", "project_name": "p"},
          "nodes": {
            "model.p.a": {"unique_id": "model.p.a", "resource_type": "model", "name": "a", "package_name": "p",
              "original_file_path": "models/a.sql", "raw_sql": "select 1", "config": {"materialized": "incremental",
              "unique_key": ["x", "y"], "enabled": null}, "columns": {"x": {"name": "x", "description": null}},
              "depends_on": {"nodes": ["source.p.s.t"], "macros": []}, "some_future_field": {"deep": [1, 2]}},
            "test.p.unique_a_x.1": {"unique_id": "test.p.unique_a_x.1", "resource_type": "test", "name": "unique_a_x",
              "test_metadata": {"name": "unique", "kwargs": {"column_name": "x", "model": "{{ ref('a') }}"}},
              "column_name": "x", "attached_node": "model.p.a", "config": {"severity": "ERROR"}}
          },
          "sources": {"source.p.s.t": {"unique_id": "source.p.s.t", "name": "t", "source_name": "s", "columns": {}}},
          "macros": {"macro.p.m": {"unique_id": "macro.p.m", "name": "m", "package_name": "p",
            "macro_sql": "{% macro m(a, b=2) %}{{ a }}{% endmacro %}"}},
          "disabled": {"model.p.off": [{"unique_id": "model.p.off", "name": "off", "resource_type": "model"}]},
          "exposures": {}, "child_map": {"model.p.a": []}
        }"#;
        let m = Manifest::from_slice(json.as_bytes(), "manifest.json").expect("valid");
        assert_eq!(m.metadata.schema_version(), Some(10));
        assert_eq!(m.nodes.len(), 2);
        let a = &m.nodes[0];
        assert_eq!(a.raw_code, "select 1");
        assert!(a.config.enabled);
        assert_eq!(a.config.unique_key, vec!["x".to_owned(), "y".to_owned()]);
        assert_eq!(a.columns[0].description, "");
        assert_eq!(a.depends_on.nodes, vec!["source.p.s.t".to_owned()]);
        let t = &m.nodes[1];
        assert_eq!(
            t.test_metadata.as_ref().map(|t| t.kwargs.column_name.clone()),
            Some(Some("x".into()))
        );
        assert_eq!(m.macros[0].signature.as_deref(), Some("a, b=2"));
        assert_eq!(m.disabled[0][0].name, "off");
        assert_eq!(m.sources[0].source_name, "s");
    }

    #[test]
    fn wrong_shapes_name_the_json_path() {
        let json = r#"{"nodes": {"model.p.a": {"unique_id": "model.p.a", "columns": {"x": {"name": 7}}}}}"#;
        let err =
            Manifest::from_slice(json.as_bytes(), "target/manifest.json").expect_err("name is a number");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "target/manifest.json: invalid manifest.json at JSON path `nodes.model.p.a.columns.x.name`"
            ),
            "{text}"
        );
    }
}
