//! Schema metadata returned by introspection: tables, columns and keys.

use serde::Serialize;

/// Whether a relation is a base table or a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Table,
    View,
}

/// A table name as an agent gives it: optionally schema-qualified.
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub referenced_schema: String,
    pub referenced_table: String,
    pub referenced_columns: Vec<String>,
}

/// Everything `describe_table` reports about one table.
#[derive(Clone, Debug, PartialEq, Serialize)]
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
