//! Fixed, read-only catalog queries for DuckDB. Agent input only ever reaches them as bound parameters.

use duckdb::{Connection, params};

use super::query_error;
use crate::{ColumnInfo, ConnectorError, ForeignKey, TableDetail, TableKind, TableRef, TableSummary};

const LIST_TABLES: &str = "
    SELECT schema_name, table_name, 'table' AS kind, estimated_size, column_count, comment
    FROM duckdb_tables()
    WHERE database_name = current_database() AND NOT internal AND NOT temporary
    UNION ALL
    SELECT schema_name, view_name, 'view', NULL, column_count, comment
    FROM duckdb_views()
    WHERE database_name = current_database() AND NOT internal AND NOT temporary
    ORDER BY 1, 2";

fn to_u64(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.is_empty())
}

pub(super) fn list_tables(conn: &Connection) -> Result<Vec<TableSummary>, ConnectorError> {
    let mut stmt = conn.prepare(LIST_TABLES).map_err(query_error)?;
    let rows = stmt
        .query_map([], |row| {
            let kind: String = row.get(2)?;
            Ok(TableSummary {
                schema: row.get(0)?,
                name: row.get(1)?,
                kind: if kind == "view" {
                    TableKind::View
                } else {
                    TableKind::Table
                },
                row_estimate: to_u64(row.get(3)?),
                column_count: to_u64(row.get(4)?).unwrap_or(0),
                comment: non_empty(row.get(5)?),
            })
        })
        .map_err(query_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(query_error)
}

/// Finds the table's schema: the given one, or the single schema holding a table of that name
/// (`main` wins when several do, as DuckDB's own resolution would).
fn resolve(
    conn: &Connection,
    table: &TableRef,
) -> Result<Option<(String, String, TableKind)>, ConnectorError> {
    let mut stmt = conn
        .prepare(
            "SELECT schema_name, table_name, kind FROM (
                 SELECT schema_name, table_name, 'table' AS kind FROM duckdb_tables()
                 WHERE database_name = current_database() AND NOT internal
                 UNION ALL
                 SELECT schema_name, view_name, 'view' FROM duckdb_views()
                 WHERE database_name = current_database() AND NOT internal
             )
             WHERE lower(table_name) = lower(?) AND (? IS NULL OR lower(schema_name) = lower(?))
             ORDER BY (schema_name = 'main') DESC, schema_name",
        )
        .map_err(query_error)?;
    let schema = table.schema.as_deref();
    let found = stmt
        .query_map(params![table.name, schema, schema], |row| {
            let kind: String = row.get(2)?;
            Ok((
                row.get(0)?,
                row.get(1)?,
                if kind == "view" {
                    TableKind::View
                } else {
                    TableKind::Table
                },
            ))
        })
        .map_err(query_error)?
        .collect::<Result<Vec<(String, String, TableKind)>, _>>()
        .map_err(query_error)?;
    Ok(found.into_iter().next())
}

pub(super) fn describe_table(
    conn: &Connection,
    table: &TableRef,
) -> Result<Option<TableDetail>, ConnectorError> {
    let Some((schema, name, kind)) = resolve(conn, table)? else {
        return Ok(None);
    };

    let mut constraints = conn
        .prepare(
            "SELECT constraint_type, constraint_column_names, referenced_table, referenced_column_names
             FROM duckdb_constraints()
             WHERE database_name = current_database() AND schema_name = ? AND table_name = ?
               AND constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')
             ORDER BY constraint_index",
        )
        .map_err(query_error)?;
    let mut primary_key = Vec::new();
    let mut foreign_keys = Vec::new();
    let rows = constraints
        .query_map(params![schema, name], |row| {
            let kind: String = row.get(0)?;
            let columns = string_list(row.get_ref(1)?);
            let referenced_table: Option<String> = row.get(2)?;
            let referenced_columns = string_list(row.get_ref(3)?);
            Ok((kind, columns, referenced_table, referenced_columns))
        })
        .map_err(query_error)?;
    for row in rows {
        let (kind, columns, referenced_table, referenced_columns) = row.map_err(query_error)?;
        if kind == "PRIMARY KEY" {
            primary_key = columns;
        } else if let Some(referenced_table) = referenced_table {
            foreign_keys.push(ForeignKey {
                columns,
                // DuckDB only allows foreign keys within one schema.
                referenced_schema: schema.clone(),
                referenced_table,
                referenced_columns,
            });
        }
    }

    let mut stmt = conn
        .prepare(
            "SELECT column_name, data_type, is_nullable, column_default, comment
             FROM duckdb_columns()
             WHERE database_name = current_database() AND schema_name = ? AND table_name = ?
             ORDER BY column_index",
        )
        .map_err(query_error)?;
    let columns = stmt
        .query_map(params![schema, name], |row| {
            let name: String = row.get(0)?;
            Ok(ColumnInfo {
                primary_key: primary_key.contains(&name),
                name,
                data_type: row.get(1)?,
                nullable: row.get(2)?,
                default: row.get(3)?,
                comment: non_empty(row.get(4)?),
            })
        })
        .map_err(query_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(query_error)?;

    let (row_estimate, comment) = match kind {
        TableKind::Table => conn
            .query_row(
                "SELECT estimated_size, comment FROM duckdb_tables()
                 WHERE database_name = current_database() AND schema_name = ? AND table_name = ?",
                params![schema, name],
                |row| Ok((to_u64(row.get(0)?), non_empty(row.get(1)?))),
            )
            .map_err(query_error)?,
        TableKind::View => conn
            .query_row(
                "SELECT comment FROM duckdb_views()
                 WHERE database_name = current_database() AND schema_name = ? AND view_name = ?",
                params![schema, name],
                |row| Ok((None, non_empty(row.get(0)?))),
            )
            .map_err(query_error)?,
    };

    Ok(Some(TableDetail {
        schema,
        name,
        kind,
        columns,
        primary_key,
        foreign_keys,
        row_estimate,
        comment,
    }))
}

fn string_list(value: duckdb::types::ValueRef<'_>) -> Vec<String> {
    match value.to_owned() {
        duckdb::types::Value::List(items) | duckdb::types::Value::Array(items) => items
            .into_iter()
            .filter_map(|item| match item {
                duckdb::types::Value::Text(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Every relation of the current database with its size and comment; internal and temporary ones are not
/// part of the warehouse.
const SNAPSHOT_TABLES: &str = "
    SELECT schema_name, table_name, 'table', estimated_size, comment
    FROM duckdb_tables()
    WHERE database_name = current_database() AND NOT internal AND NOT temporary
    UNION ALL
    SELECT schema_name, view_name, 'view', NULL, comment
    FROM duckdb_views()
    WHERE database_name = current_database() AND NOT internal AND NOT temporary";

const SNAPSHOT_SCHEMAS: &str = "
    SELECT schema_name FROM duckdb_schemas()
    WHERE database_name = current_database() AND schema_name NOT IN ('information_schema', 'pg_catalog')";

const SNAPSHOT_COLUMNS: &str = "
    SELECT schema_name, table_name, column_name, data_type, is_nullable, column_default, comment, column_index
    FROM duckdb_columns()
    WHERE database_name = current_database() AND NOT internal";

const SNAPSHOT_CONSTRAINTS: &str = "
    SELECT schema_name, table_name, constraint_type, constraint_column_names, referenced_table,
           referenced_column_names, constraint_name
    FROM duckdb_constraints()
    WHERE database_name = current_database()
      AND constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')
    ORDER BY schema_name, table_name, constraint_index";

const SNAPSHOT_INDEXES: &str = "
    SELECT schema_name, table_name, index_name, is_unique, expressions
    FROM duckdb_indexes()
    WHERE database_name = current_database()";

/// The whole schema in five fixed statements.
pub(super) fn snapshot(conn: &Connection) -> Result<sluice_catalog::SchemaSnapshot, ConnectorError> {
    use sluice_catalog::TableKind as Kind;

    let mut builder = crate::schema::SnapshotBuilder::default();
    let mut stmt = conn.prepare(SNAPSHOT_SCHEMAS).map_err(query_error)?;
    for schema in stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(query_error)?
    {
        builder.schema(schema.map_err(query_error)?);
    }

    let mut stmt = conn.prepare(SNAPSHOT_TABLES).map_err(query_error)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                to_u64(row.get(3)?),
                non_empty(row.get(4)?),
            ))
        })
        .map_err(query_error)?;
    for row in rows {
        let (schema, name, kind, rows, comment) = row.map_err(query_error)?;
        let kind = if kind == "view" { Kind::View } else { Kind::Table };
        builder.table(&schema, &name, kind, rows, comment);
    }

    let mut stmt = conn.prepare(SNAPSHOT_COLUMNS).map_err(query_error)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                crate::schema::catalog_column(
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    non_empty(row.get(6)?),
                    row.get(7)?,
                ),
            ))
        })
        .map_err(query_error)?;
    for row in rows {
        let (schema, table, column) = row.map_err(query_error)?;
        builder.column(&schema, &table, column);
    }

    let mut stmt = conn.prepare(SNAPSHOT_CONSTRAINTS).map_err(query_error)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                string_list(row.get_ref(3)?),
                row.get::<_, Option<String>>(4)?,
                string_list(row.get_ref(5)?),
                row.get::<_, Option<String>>(6)?,
            ))
        })
        .map_err(query_error)?;
    for row in rows {
        let (schema, table, kind, columns, referenced, referenced_columns, name) =
            row.map_err(query_error)?;
        match (kind.as_str(), referenced) {
            ("PRIMARY KEY", _) => builder.primary_key(&schema, &table, columns),
            ("UNIQUE", _) => builder.unique(&schema, &table, name, columns),
            (_, Some(referenced)) => {
                let fk = sluice_catalog::ForeignKey {
                    name,
                    columns,
                    // DuckDB only allows foreign keys within one schema.
                    references: sluice_catalog::TableId::new(schema.clone(), referenced),
                    referenced_columns,
                };
                builder.foreign_key(&schema, &table, fk);
            }
            _ => {}
        }
    }

    let mut stmt = conn.prepare(SNAPSHOT_INDEXES).map_err(query_error)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, bool>(3)?,
                index_columns(row.get_ref(4)?),
            ))
        })
        .map_err(query_error)?;
    for row in rows {
        let (schema, table, name, unique, columns) = row.map_err(query_error)?;
        // An index over expressions has no column list to join on.
        if !columns.is_empty() {
            builder.index(
                &schema,
                &table,
                sluice_catalog::Index {
                    name,
                    columns,
                    unique,
                },
            );
        }
    }
    Ok(builder.finish())
}

/// DuckDB reports an index's key as a list of expressions (`[customer_id]`, `['"Order Id"', lower(x)]`),
/// as a list or its text form depending on the version; only plain column names are kept.
fn index_columns(value: duckdb::types::ValueRef<'_>) -> Vec<String> {
    let items: Vec<String> = match value.to_owned() {
        duckdb::types::Value::Text(text) => text
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect(),
        other => string_list_value(other),
    };
    let mut columns = Vec::new();
    for item in items {
        let item = item.trim().trim_matches('\'');
        let name = if let Some(inner) = item.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            inner.replace("\"\"", "\"")
        } else if !item.is_empty() && item.chars().all(|c| c.is_alphanumeric() || c == '_') {
            item.to_owned()
        } else {
            return Vec::new();
        };
        columns.push(name);
    }
    columns
}

fn string_list_value(value: duckdb::types::Value) -> Vec<String> {
    match value {
        duckdb::types::Value::List(items) | duckdb::types::Value::Array(items) => items
            .into_iter()
            .filter_map(|item| match item {
                duckdb::types::Value::Text(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn snapshot_reads_keys_indexes_and_both_schemas() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR UNIQUE, name VARCHAR NOT NULL);
             COMMENT ON TABLE customers IS 'People';
             CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers (id),
                                  placed DATE DEFAULT DATE '2024-01-01');
             CREATE INDEX orders_placed ON orders (placed);
             CREATE SCHEMA archive;
             CREATE TABLE archive.orders (id INTEGER, note VARCHAR);
             CREATE VIEW big AS SELECT * FROM orders;",
        )
        .unwrap();
        let snapshot = snapshot(&conn).unwrap();
        let ids: Vec<String> = snapshot.tables.iter().map(|t| t.id.to_string()).collect();
        assert_eq!(
            ids,
            ["archive.orders", "main.big", "main.customers", "main.orders"]
        );
        assert_eq!(snapshot.schemas, ["archive", "main"]);
        let customers = &snapshot.tables[2];
        assert_eq!(customers.primary_key, ["id"]);
        assert_eq!(customers.comment.as_deref(), Some("People"));
        assert_eq!(customers.unique_constraints[0].columns, ["email"]);
        assert!(!customers.columns[2].nullable);
        let orders = &snapshot.tables[3];
        assert_eq!(orders.foreign_keys.len(), 1);
        assert_eq!(orders.foreign_keys[0].references.to_string(), "main.customers");
        assert_eq!(orders.foreign_keys[0].referenced_columns, ["id"]);
        assert_eq!(orders.indexes.len(), 1);
        assert_eq!(orders.indexes[0].columns, ["placed"]);
        assert_eq!(orders.columns[2].ordinal, 3);
        assert!(orders.columns[2].default.is_some());
        assert_eq!(snapshot.tables[1].columns.len(), 3, "view columns");
        assert_eq!(snapshot.tables[0].columns.len(), 2);
    }
}
