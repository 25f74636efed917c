//! Fixed, read-only catalog queries for PostgreSQL. Agent input only ever reaches them as bound parameters.

use sqlx::{PgConnection, Row as _};

use crate::{ColumnInfo, ForeignKey, TableDetail, TableKind, TableRef, TableSummary};

/// Ordinary, partitioned and foreign tables, views and materialized views outside the system schemas.
/// `reltuples` is the planner's estimate (-1 before the first ANALYZE on PostgreSQL 14+).
const LIST_TABLES: &str = "
    SELECT n.nspname::text, c.relname::text,
           CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END,
           CASE WHEN c.relkind IN ('v', 'm') OR c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END,
           (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
           obj_description(c.oid, 'pg_class')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
      AND n.nspname NOT LIKE 'pg_temp%'
      AND has_table_privilege(c.oid, 'SELECT')
    ORDER BY 1, 2";

fn kind(text: &str) -> TableKind {
    if text == "view" {
        TableKind::View
    } else {
        TableKind::Table
    }
}

pub(super) async fn list_tables(conn: &mut PgConnection) -> Result<Vec<TableSummary>, sqlx::Error> {
    let rows = sqlx::query(LIST_TABLES).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            Ok(TableSummary {
                schema: row.try_get(0)?,
                name: row.try_get(1)?,
                kind: kind(row.try_get::<&str, _>(2)?),
                row_estimate: row
                    .try_get::<Option<i64>, _>(3)?
                    .and_then(|v| u64::try_from(v).ok()),
                column_count: u64::try_from(row.try_get::<i64, _>(4)?).unwrap_or(0),
                comment: row.try_get(5)?,
            })
        })
        .collect()
}

/// Finds the relation: in the given schema, or the first schema on the search path that has it
/// (what the server's own name resolution would pick), else any schema.
const RESOLVE: &str = "
    SELECT c.oid::int8, n.nspname::text, c.relname::text,
           CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END,
           CASE WHEN c.relkind IN ('v', 'm') OR c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END,
           obj_description(c.oid, 'pg_class')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND (c.relname = $1 OR lower(c.relname) = lower($1))
      AND ($2::text IS NULL OR n.nspname = $2 OR lower(n.nspname) = lower($2))
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    ORDER BY (c.relname = $1) DESC,
             coalesce(array_position(current_schemas(false), n.nspname), 1000), n.nspname
    LIMIT 1";

const COLUMNS: &str = "
    SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum)
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = $1::int8::oid AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum";

/// Primary and foreign keys with their columns in key order.
const KEYS: &str = "
    SELECT con.contype::text,
           ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord),
           rn.nspname::text, rc.relname::text,
           ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)
    FROM pg_constraint con
    LEFT JOIN pg_class rc ON rc.oid = con.confrelid
    LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
    WHERE con.conrelid = $1::int8::oid AND con.contype IN ('p', 'f')
    ORDER BY con.contype DESC, con.conname";

pub(super) async fn describe_table(
    conn: &mut PgConnection,
    table: &TableRef,
) -> Result<Option<TableDetail>, sqlx::Error> {
    let Some(found) = sqlx::query(RESOLVE)
        .bind(&table.name)
        .bind(table.schema.as_deref())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let oid: i64 = found.try_get(0)?;

    let mut primary_key = Vec::new();
    let mut foreign_keys = Vec::new();
    for row in sqlx::query(KEYS).bind(oid).fetch_all(&mut *conn).await? {
        let contype: &str = row.try_get(0)?;
        let columns: Vec<String> = row.try_get(1)?;
        if contype == "p" {
            primary_key = columns;
        } else {
            foreign_keys.push(ForeignKey {
                columns,
                referenced_schema: row.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
                referenced_table: row.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
                referenced_columns: row.try_get(4)?,
            });
        }
    }

    let mut columns = Vec::new();
    for row in sqlx::query(COLUMNS).bind(oid).fetch_all(&mut *conn).await? {
        let name: String = row.try_get(0)?;
        columns.push(ColumnInfo {
            primary_key: primary_key.contains(&name),
            name,
            data_type: row.try_get(1)?,
            nullable: row.try_get(2)?,
            default: row.try_get(3)?,
            comment: row.try_get(4)?,
        });
    }

    Ok(Some(TableDetail {
        schema: found.try_get(1)?,
        name: found.try_get(2)?,
        kind: kind(found.try_get::<&str, _>(3)?),
        columns,
        primary_key,
        foreign_keys,
        row_estimate: found
            .try_get::<Option<i64>, _>(4)?
            .and_then(|v| u64::try_from(v).ok()),
        comment: found.try_get(5)?,
    }))
}

/// Which namespaces belong to the warehouse rather than to the server.
const USER_SCHEMA: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
                           AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/// The whole schema in five fixed statements (schemas, relations, columns, constraints, indexes).
pub(super) async fn snapshot(conn: &mut PgConnection) -> Result<sluice_catalog::SchemaSnapshot, sqlx::Error> {
    use std::collections::HashMap;

    use sluice_catalog::TableKind as Kind;

    let mut builder = crate::schema::SnapshotBuilder::default();
    let sql = format!(
        "SELECT n.nspname::text FROM pg_namespace n WHERE {USER_SCHEMA} AND has_schema_privilege(n.oid, 'USAGE')"
    );
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        builder.schema(row.try_get::<String, _>(0)?);
    }

    let sql = format!(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text,
                CASE WHEN c.relkind IN ('v', 'm') OR c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END,
                obj_description(c.oid, 'pg_class')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_SCHEMA}
           AND has_table_privilege(c.oid, 'SELECT')
           -- Partitions are read through their parent; listing each would bury the schema.
           AND NOT c.relispartition"
    );
    let mut names: HashMap<i64, (String, String)> = HashMap::new();
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let oid: i64 = row.try_get(0)?;
        let schema: String = row.try_get(1)?;
        let name: String = row.try_get(2)?;
        let kind = match row.try_get::<&str, _>(3)? {
            "v" => Kind::View,
            "m" => Kind::MaterializedView,
            _ => Kind::Table,
        };
        let rows = row
            .try_get::<Option<i64>, _>(4)?
            .and_then(|v| u64::try_from(v).ok());
        builder.table(&schema, &name, kind, rows, row.try_get(5)?);
        names.insert(oid, (schema, name));
    }

    let sql = format!(
        "SELECT a.attrelid::int8, a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
                pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum), a.attnum::int8
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_SCHEMA} AND a.attnum > 0 AND NOT a.attisdropped"
    );
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let Some((schema, table)) = names.get(&row.try_get::<i64, _>(0)?) else {
            continue;
        };
        let column = crate::schema::catalog_column(
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            row.try_get(6)?,
        );
        builder.column(schema, table, column);
    }

    let sql = format!(
        "SELECT con.conrelid::int8, con.contype::text, con.conname::text,
                ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord),
                rn.nspname::text, rc.relname::text,
                ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
                      JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)
         FROM pg_constraint con
         JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_class rc ON rc.oid = con.confrelid
         LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
         WHERE con.contype IN ('p', 'u', 'f') AND {USER_SCHEMA}
         ORDER BY con.conrelid, con.conname"
    );
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let Some((schema, table)) = names.get(&row.try_get::<i64, _>(0)?) else {
            continue;
        };
        let name: String = row.try_get(2)?;
        let columns: Vec<String> = row.try_get(3)?;
        match row.try_get::<&str, _>(1)? {
            "p" => builder.primary_key(schema, table, columns),
            "u" => builder.unique(schema, table, Some(name), columns),
            _ => {
                let fk = sluice_catalog::ForeignKey {
                    name: Some(name),
                    columns,
                    references: sluice_catalog::TableId::new(
                        row.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
                        row.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
                    ),
                    referenced_columns: row.try_get(6)?,
                };
                builder.foreign_key(schema, table, fk);
            }
        }
    }

    // Expression columns (attnum 0) drop out of the join; an index left without columns is skipped.
    let sql = format!(
        "SELECT i.indrelid::int8, ic.relname::text, i.indisunique,
                ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, ord)
                      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.ord)
         FROM pg_index i
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT i.indisprimary AND {USER_SCHEMA}
         ORDER BY i.indrelid, ic.relname"
    );
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let Some((schema, table)) = names.get(&row.try_get::<i64, _>(0)?) else {
            continue;
        };
        let columns: Vec<String> = row.try_get(3)?;
        if !columns.is_empty() {
            let index = sluice_catalog::Index {
                name: row.try_get(1)?,
                columns,
                unique: row.try_get(2)?,
            };
            builder.index(schema, table, index);
        }
    }
    Ok(builder.finish())
}
