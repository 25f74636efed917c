//! The schema snapshot: everything introspection learned about one connection, as plain serialisable values.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;
use crate::finding::Finding;

/// A schema-qualified table name. Every table is addressed this way so that `sales.orders` and
/// `archive.orders` never collide; engines without schemas use their default (`main` for SQLite and
/// DuckDB, the database name for MySQL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableId {
    pub schema: String,
    pub name: String,
}

impl TableId {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> TableId {
        TableId {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// `schema.name`, each part quoted.
    pub fn sql(&self, quoting: sluice_dialect::Quoting) -> String {
        quoting.path(&[&self.schema, &self.name])
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// What kind of relation a table entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    Table,
    View,
    MaterializedView,
}

impl TableKind {
    pub fn label(self) -> &'static str {
        match self {
            TableKind::Table => "table",
            TableKind::View => "view",
            TableKind::MaterializedView => "materialized view",
        }
    }
}

/// One column as the engine reports it; `data_type` is the engine's own spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// 1-based position in the table; columns are kept sorted by it.
    pub ordinal: u32,
    /// A few distinct values sampled from the column, used only to match questions to columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<String>,
}

impl Column {
    /// A nullable column without default, comment or samples; the ordinal is assigned by [`Table::with_column`].
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Column {
        Column {
            name: name.into(),
            data_type: data_type.into(),
            nullable: true,
            default: None,
            comment: None,
            ordinal: 0,
            samples: Vec::new(),
        }
    }
}

/// A declared foreign key, possibly over several columns (paired by position).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ForeignKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub references: TableId,
    pub referenced_columns: Vec<String>,
}

/// A declared unique constraint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UniqueConstraint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub columns: Vec<String>,
}

/// An index; a unique index counts as a key for join inference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
}

/// A table or view with its columns, keys, indexes and statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub id: TableId,
    pub kind: TableKind,
    pub columns: Vec<Column>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unique_constraints: Vec<UniqueConstraint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<Index>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_estimate: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Table {
    /// An empty table of `kind`; add columns and keys with the `with_*` methods or by pushing to the fields.
    pub fn new(id: TableId, kind: TableKind) -> Table {
        Table {
            id,
            kind,
            columns: Vec::new(),
            primary_key: Vec::new(),
            unique_constraints: Vec::new(),
            foreign_keys: Vec::new(),
            indexes: Vec::new(),
            row_estimate: None,
            comment: None,
        }
    }

    /// Appends a column, numbering it after the last one when its ordinal is 0.
    pub fn with_column(mut self, mut column: Column) -> Table {
        if column.ordinal == 0 {
            column.ordinal = self.columns.iter().map(|c| c.ordinal).max().unwrap_or(0) + 1;
        }
        self.columns.push(column);
        self
    }

    pub fn with_primary_key<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Table {
        self.primary_key = columns.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_foreign_key(mut self, fk: ForeignKey) -> Table {
        self.foreign_keys.push(fk);
        self
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// True when `columns` (in any order) are exactly the primary key, a unique constraint or a unique index.
    pub fn is_key(&self, columns: &[String]) -> bool {
        self.key_kind(columns).is_some()
    }

    /// Which declared key, if any, consists of exactly `columns`.
    pub fn key_kind(&self, columns: &[String]) -> Option<DeclaredKey> {
        let same = |key: &[String]| {
            key.len() == columns.len() && !key.is_empty() && key.iter().all(|k| columns.contains(k))
        };
        if same(&self.primary_key) {
            Some(DeclaredKey::Primary)
        } else if self.unique_constraints.iter().any(|u| same(&u.columns))
            || self.indexes.iter().any(|i| i.unique && same(&i.columns))
        {
            Some(DeclaredKey::Unique)
        } else {
            None
        }
    }
}

/// The kind of declared key a column set forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredKey {
    Primary,
    Unique,
}

/// Everything known about one connection's schemas at `captured_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaSnapshot {
    /// Every schema, including empty ones (tables name their schema too; [`SchemaSnapshot::normalize`] merges both).
    pub schemas: Vec<String>,
    pub tables: Vec<Table>,
    /// Capture time in milliseconds since the Unix epoch, supplied by the caller (this crate reads no clock).
    pub captured_at: u64,
}

impl SchemaSnapshot {
    pub fn new(tables: Vec<Table>, captured_at: u64) -> SchemaSnapshot {
        SchemaSnapshot {
            schemas: Vec::new(),
            tables,
            captured_at,
        }
    }

    /// Decodes a snapshot stored as JSON (the gateway keeps the previous one for `schema_diff`).
    pub fn from_json(json: &str) -> Result<SchemaSnapshot, CatalogError> {
        serde_json::from_str(json).map_err(|e| CatalogError::Decode(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        // Serialising plain strings, numbers and vectors cannot fail; an empty string would only hide a bug.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn table(&self, id: &TableId) -> Option<&Table> {
        self.tables
            .binary_search_by(|t| t.id.cmp(id))
            .ok()
            .and_then(|i| self.tables.get(i))
    }

    /// Puts the snapshot in canonical order (tables by id, columns by ordinal, schemas sorted and complete)
    /// and reports what cannot be right: duplicate tables or columns, keys naming missing columns, foreign
    /// keys whose column lists differ in length. Duplicates keep their first occurrence.
    pub fn normalize(&mut self) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut seen: HashMap<TableId, ()> = HashMap::new();
        let mut tables = Vec::with_capacity(self.tables.len());
        for table in std::mem::take(&mut self.tables) {
            if seen.insert(table.id.clone(), ()).is_some() {
                findings.push(Finding::warning(
                    "duplicate_table",
                    Some(&table.id),
                    format!(
                        "table {} appears more than once; the first definition is kept",
                        table.id
                    ),
                ));
                continue;
            }
            tables.push(table);
        }
        tables.sort_by(|a, b| a.id.cmp(&b.id));
        let mut schemas: BTreeSet<String> = std::mem::take(&mut self.schemas).into_iter().collect();
        for table in &mut tables {
            schemas.insert(table.id.schema.clone());
            table.columns.sort_by_key(|c| c.ordinal);
            let mut names = BTreeSet::new();
            table.columns.retain(|c| {
                let fresh = names.insert(c.name.clone());
                if !fresh {
                    findings.push(Finding::warning(
                        "duplicate_column",
                        Some(&table.id),
                        format!(
                            "column {} appears twice in {}; the first is kept",
                            c.name, table.id
                        ),
                    ));
                }
                fresh
            });
            check_columns(table, &table.primary_key, "primary key", &mut findings);
            for unique in &table.unique_constraints {
                check_columns(table, &unique.columns, "unique constraint", &mut findings);
            }
            for fk in &table.foreign_keys {
                check_columns(table, &fk.columns, "foreign key", &mut findings);
                if fk.columns.len() != fk.referenced_columns.len() || fk.columns.is_empty() {
                    findings.push(Finding::warning(
                        "foreign_key_arity",
                        Some(&table.id),
                        format!(
                            "foreign key ({}) -> {} ({}) pairs {} columns with {}; it is ignored for joins",
                            fk.columns.join(", "),
                            fk.references,
                            fk.referenced_columns.join(", "),
                            fk.columns.len(),
                            fk.referenced_columns.len()
                        ),
                    ));
                }
            }
        }
        self.tables = tables;
        self.schemas = schemas.into_iter().collect();
        findings
    }
}

fn check_columns(table: &Table, columns: &[String], what: &str, findings: &mut Vec<Finding>) {
    for name in columns {
        if table.column(name).is_none() {
            findings.push(Finding::warning(
                "unknown_column",
                Some(&table.id),
                format!(
                    "{what} of {} names column {name}, which the table does not have",
                    table.id
                ),
            ));
        }
    }
}
