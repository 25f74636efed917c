//! Schema metadata returned by introspection: tables, columns and keys.

use serde::{Deserialize, Serialize};

/// Whether a relation is a base table or a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Table,
    View,
}

/// A table name as an agent gives it: optionally schema-qualified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRef {
    pub schema: Option<String>,
    pub name: String,
}

impl TableRef {
    /// Splits `schema.table` (or a bare `table`); double quotes around either part are removed.
    pub fn parse(input: &str) -> Option<TableRef> {
        let input = input.trim();
        if input.is_empty() {
            return None;
        }
        let parts = split_qualified(input)?;
        match parts.as_slice() {
            [name] => Some(TableRef {
                schema: None,
                name: name.clone(),
            }),
            [schema, name] => Some(TableRef {
                schema: Some(schema.clone()),
                name: name.clone(),
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Splits on dots outside double quotes; `None` when a quote is left open or a part is empty.
fn split_qualified(input: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => {
                if current.is_empty() {
                    return None;
                }
                parts.push(std::mem::take(&mut current));
            }
            c => current.push(c),
        }
    }
    if quoted || current.is_empty() {
        return None;
    }
    parts.push(current);
    Some(parts)
}

/// One table or view in a listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableSummary {
    pub schema: String,
    pub name: String,
    pub kind: TableKind,
    /// The engine's row estimate, where it keeps one (views have none).
    pub row_estimate: Option<u64>,
    pub column_count: u64,
    pub comment: Option<String>,
}

/// A column of a described table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    pub default: Option<String>,
    pub comment: Option<String>,
    pub primary_key: bool,
}

/// A declared foreign key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub referenced_schema: String,
    pub referenced_table: String,
    pub referenced_columns: Vec<String>,
}

/// Everything `describe_table` reports about one table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableDetail {
    pub schema: String,
    pub name: String,
    pub kind: TableKind,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
    pub foreign_keys: Vec<ForeignKey>,
    pub row_estimate: Option<u64>,
    pub comment: Option<String>,
}

/// Collects what the fixed catalog queries of one engine return, row by row, into a catalog snapshot.
///
/// Each engine reads tables, columns, keys and indexes in a few set-wide queries (never one per table);
/// rows arrive in any order and rows for relations the listing did not show (no privilege, system
/// objects) are dropped, so a snapshot never names a table it cannot describe.
#[derive(Default)]
pub(crate) struct SnapshotBuilder {
    schemas: std::collections::BTreeSet<String>,
    tables: std::collections::BTreeMap<(String, String), sluice_catalog::Table>,
}

impl SnapshotBuilder {
    pub(crate) fn schema(&mut self, schema: impl Into<String>) {
        self.schemas.insert(schema.into());
    }

    pub(crate) fn table(
        &mut self,
        schema: &str,
        name: &str,
        kind: sluice_catalog::TableKind,
        row_estimate: Option<u64>,
        comment: Option<String>,
    ) {
        let mut table = sluice_catalog::Table::new(sluice_catalog::TableId::new(schema, name), kind);
        table.row_estimate = row_estimate;
        table.comment = comment.filter(|c| !c.is_empty());
        self.schemas.insert(schema.to_owned());
        self.tables.insert((schema.to_owned(), name.to_owned()), table);
    }

    fn get(&mut self, schema: &str, name: &str) -> Option<&mut sluice_catalog::Table> {
        self.tables.get_mut(&(schema.to_owned(), name.to_owned()))
    }

    pub(crate) fn column(&mut self, schema: &str, table: &str, column: sluice_catalog::Column) {
        if let Some(t) = self.get(schema, table) {
            t.columns.push(column);
        }
    }

    pub(crate) fn primary_key(&mut self, schema: &str, table: &str, columns: Vec<String>) {
        if let Some(t) = self.get(schema, table) {
            t.primary_key = columns;
        }
    }

    pub(crate) fn unique(&mut self, schema: &str, table: &str, name: Option<String>, columns: Vec<String>) {
        if let Some(t) = self.get(schema, table) {
            t.unique_constraints
                .push(sluice_catalog::UniqueConstraint { name, columns });
        }
    }

    pub(crate) fn foreign_key(&mut self, schema: &str, table: &str, fk: sluice_catalog::ForeignKey) {
        if let Some(t) = self.get(schema, table) {
            t.foreign_keys.push(fk);
        }
    }

    pub(crate) fn index(&mut self, schema: &str, table: &str, index: sluice_catalog::Index) {
        if let Some(t) = self.get(schema, table) {
            t.indexes.push(index);
        }
    }

    /// The primary key of a collected table, to complete foreign keys that reference it implicitly.
    pub(crate) fn primary_key_of(&self, schema: &str, table: &str) -> Vec<String> {
        self.tables
            .get(&(schema.to_owned(), table.to_owned()))
            .map(|t| t.primary_key.clone())
            .unwrap_or_default()
    }

    /// The snapshot, stamped with the time it was taken.
    pub(crate) fn finish(self) -> sluice_catalog::SchemaSnapshot {
        let captured_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut snapshot =
            sluice_catalog::SchemaSnapshot::new(self.tables.into_values().collect(), captured_at);
        snapshot.schemas = self.schemas.into_iter().collect();
        snapshot
    }
}

/// A column as the catalog stores it; `ordinal` is 1-based.
pub(crate) fn catalog_column(
    name: String,
    data_type: String,
    nullable: bool,
    default: Option<String>,
    comment: Option<String>,
    ordinal: i64,
) -> sluice_catalog::Column {
    sluice_catalog::Column {
        name,
        data_type,
        nullable,
        default,
        comment: comment.filter(|c| !c.is_empty()),
        ordinal: u32::try_from(ordinal).unwrap_or(0),
        samples: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn check(input: &str, expected: Option<(Option<&str>, &str)>) {
        let got = TableRef::parse(input);
        let expected = expected.map(|(schema, name)| TableRef {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        });
        assert_eq!(got, expected, "input: {input:?}");
    }

    #[test]
    fn table_refs() {
        check("orders", Some((None, "orders")));
        check("main.orders", Some((Some("main"), "orders")));
        check(
            "\"My Schema\".\"Order.Items\"",
            Some((Some("My Schema"), "Order.Items")),
        );
        check("\"a\"\"b\"", Some((None, "a\"b")));
        check("  orders  ", Some((None, "orders")));
        check("", None);
        check("a.b.c", None);
        check("a..b", None);
        check(".a", None);
        check("a.", None);
        check("\"open", None);
    }
}
