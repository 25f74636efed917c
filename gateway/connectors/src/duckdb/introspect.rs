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
