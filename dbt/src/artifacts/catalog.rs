//! `catalog.json` (written by `dbt docs generate`): the columns each built relation really has.

use std::collections::HashMap;
use std::io::Read;

use serde::Deserialize;

use super::{ArtifactMetadata, map_values, nullable};
use crate::error::DbtError;

/// The relations dbt found in the warehouse, by node unique id.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Catalog {
    /// Versions.
    #[serde(default)]
    pub metadata: ArtifactMetadata,
    /// Models, seeds and snapshots.
    #[serde(default, deserialize_with = "nullable")]
    pub nodes: HashMap<String, CatalogTable>,
    /// Sources.
    #[serde(default, deserialize_with = "nullable")]
    pub sources: HashMap<String, CatalogTable>,
}

impl Catalog {
    /// Reads a catalog from a reader; `file` names it in errors.
    pub fn from_reader(reader: impl Read, file: &str) -> Result<Self, DbtError> {
        super::from_reader(reader, file, "catalog.json")
    }

    /// Reads a catalog from bytes; `file` names it in errors.
    pub fn from_slice(bytes: &[u8], file: &str) -> Result<Self, DbtError> {
        super::from_slice(bytes, file, "catalog.json")
    }

    /// The relation of a node or source.
    pub fn table(&self, unique_id: &str) -> Option<&CatalogTable> {
        self.nodes.get(unique_id).or_else(|| self.sources.get(unique_id))
    }
}

/// One relation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CatalogTable {
    /// Where it lives.
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: CatalogTableMetadata,
    /// Its columns, in the order the warehouse lists them (dbt keys them by name).
    #[serde(default, deserialize_with = "map_values")]
    pub columns: Vec<CatalogColumn>,
}

/// Where a relation lives.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CatalogTableMetadata {
    /// `BASE TABLE`, `VIEW`...
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub kind: String,
    /// Database.
    #[serde(default, deserialize_with = "nullable")]
    pub database: Option<String>,
    /// Schema.
    #[serde(default, deserialize_with = "nullable")]
    pub schema: String,
    /// Relation name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

/// A column as the warehouse reports it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CatalogColumn {
    /// Name, in the warehouse's case.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Type, such as `INTEGER`.
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub data_type: String,
    /// 1-based position.
    #[serde(default, deserialize_with = "nullable")]
    pub index: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn reads_tables_and_columns() {
        let json = r#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json"},
          "nodes": {"model.p.a": {"metadata": {"type": "BASE TABLE", "schema": "main", "name": "a", "database": "db"},
            "columns": {"ID": {"type": "INTEGER", "index": 1, "name": "ID", "comment": null}}, "stats": {}}},
          "sources": {}, "errors": null}"#;
        let catalog = Catalog::from_slice(json.as_bytes(), "catalog.json").expect("valid");
        let table = catalog.table("model.p.a").expect("present");
        assert_eq!(table.metadata.kind, "BASE TABLE");
        assert_eq!(table.columns[0].name, "ID");
        assert_eq!(table.columns[0].data_type, "INTEGER");
        assert!(catalog.table("model.p.b").is_none());
    }
}
