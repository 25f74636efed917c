//! Fixed, read-only catalog queries for SQLite: `sqlite_schema` and the table-valued pragma functions,
//! with the table name always a bound parameter.

use sqlx::{Row as _, SqliteConnection};

use crate::{ColumnInfo, ForeignKey, TableDetail, TableKind, TableRef, TableSummary};

const LIST_TABLES: &str = "
    SELECT m.name, m.type, (SELECT count(*) FROM pragma_table_info(m.name))
    FROM sqlite_master m
    WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%'
    ORDER BY m.name";

fn kind(text: &str) -> TableKind {
    if text == "view" {
        TableKind::View
    } else {
        TableKind::Table
    }
}

/// SQLite keeps no row estimate outside `sqlite_stat1`, which exists only after ANALYZE; when it does,
/// its first number is the table's row count at that time.
async fn estimate(conn: &mut SqliteConnection, table: &str) -> Result<Option<u64>, sqlx::Error> {
    let has_stats: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
            .fetch_optional(&mut *conn)
            .await?;
    if has_stats.is_none() {
        return Ok(None);
    }
    let stat: Option<String> = sqlx::query_scalar("SELECT stat FROM sqlite_stat1 WHERE tbl = ?1 LIMIT 1")
        .bind(table)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(stat.and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok())))
}

pub(super) async fn list_tables(conn: &mut SqliteConnection) -> Result<Vec<TableSummary>, sqlx::Error> {
    let rows = sqlx::query(LIST_TABLES).fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get(0)?;
        let kind = kind(row.try_get::<&str, _>(1)?);
        let row_estimate = if kind == TableKind::Table {
            estimate(conn, &name).await?
        } else {
            None
        };
        out.push(TableSummary {
            schema: "main".to_owned(),
            name,
            kind,
            row_estimate,
            column_count: u64::try_from(row.try_get::<i64, _>(2)?).unwrap_or(0),
            comment: None,
        });
    }
    Ok(out)
}

pub(super) async fn describe_table(
    conn: &mut SqliteConnection,
    table: &TableRef,
) -> Result<Option<TableDetail>, sqlx::Error> {
    // Only the main database: attached schemas are not part of a read-only connection's surface.
    if table
        .schema
        .as_deref()
        .is_some_and(|s| !s.eq_ignore_ascii_case("main"))
    {
        return Ok(None);
    }
    let Some(found) = sqlx::query(
        "SELECT name, type FROM sqlite_master
         WHERE type IN ('table', 'view') AND name = ?1 COLLATE NOCASE
         ORDER BY name = ?1 DESC LIMIT 1",
    )
    .bind(&table.name)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let name: String = found.try_get(0)?;
    let kind = kind(found.try_get::<&str, _>(1)?);

    let mut columns = Vec::new();
    let mut keyed: Vec<(i64, String)> = Vec::new();
    let rows =
        sqlx::query("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid")
            .bind(&name)
            .fetch_all(&mut *conn)
            .await?;
    let key_columns = rows
        .iter()
        .filter(|r| r.try_get::<i64, _>(4).is_ok_and(|pk| pk > 0))
        .count();
    for row in rows {
        let column: String = row.try_get(0)?;
        let data_type: String = row.try_get(1)?;
        let pk: i64 = row.try_get(4)?;
        // A single-column INTEGER PRIMARY KEY is the rowid, never NULL, though SQLite does not mark it so.
        let rowid = pk > 0 && key_columns == 1 && data_type.eq_ignore_ascii_case("INTEGER");
        if pk > 0 {
            keyed.push((pk, column.clone()));
        }
        columns.push(ColumnInfo {
            name: column,
            data_type,
            nullable: row.try_get::<i64, _>(2)? == 0 && !rowid,
            default: row.try_get(3)?,
            comment: None,
            primary_key: pk > 0,
        });
    }
    keyed.sort();
    let primary_key: Vec<String> = keyed.into_iter().map(|(_, c)| c).collect();

    let mut foreign_keys: Vec<(i64, ForeignKey)> = Vec::new();
    for row in sqlx::query(
        "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
    )
    .bind(&name)
    .fetch_all(&mut *conn)
    .await?
    {
        let id: i64 = row.try_get(0)?;
        let from: String = row.try_get(2)?;
        // `to` is NULL when the key references the parent's primary key implicitly.
        let to: Option<String> = row.try_get(3)?;
        match foreign_keys.last_mut() {
            Some((last, fk)) if *last == id => {
                fk.columns.push(from);
                fk.referenced_columns.extend(to);
            }
            _ => foreign_keys.push((
                id,
                ForeignKey {
                    columns: vec![from],
                    referenced_schema: "main".to_owned(),
                    referenced_table: row.try_get(1)?,
                    referenced_columns: to.into_iter().collect(),
                },
            )),
        }
    }

    let row_estimate = if kind == TableKind::Table {
        estimate(conn, &name).await?
    } else {
        None
    };
    Ok(Some(TableDetail {
        schema: "main".to_owned(),
        name,
        kind,
        columns,
        primary_key,
        foreign_keys: foreign_keys.into_iter().map(|(_, fk)| fk).collect(),
        row_estimate,
        comment: None,
    }))
}

/// The relations of the main database (SQLite's own tables excluded); the pragma functions below are
/// joined to it so that each kind of fact is one statement for the whole file.
const RELATIONS: &str = "m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%'";

/// The whole schema in four or five fixed statements (relations, columns, foreign keys, indexes, and
/// `sqlite_stat1` when ANALYZE has run).
pub(super) async fn snapshot(
    conn: &mut SqliteConnection,
) -> Result<sluice_catalog::SchemaSnapshot, sqlx::Error> {
    use std::collections::HashMap;

    use sluice_catalog::TableKind as Kind;

    const MAIN: &str = "main";
    let has_stats: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
            .fetch_optional(&mut *conn)
            .await?;
    let mut estimates: HashMap<String, u64> = HashMap::new();
    if has_stats.is_some() {
        for row in sqlx::query("SELECT tbl, stat FROM sqlite_stat1")
            .fetch_all(&mut *conn)
            .await?
        {
            let table: String = row.try_get(0)?;
            let stat: Option<String> = row.try_get(1)?;
            if let Some(rows) = stat.and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok())) {
                estimates.entry(table).or_insert(rows);
            }
        }
    }

    let mut builder = crate::schema::SnapshotBuilder::default();
    builder.schema(MAIN);
    let sql = format!("SELECT m.name, m.type FROM sqlite_master m WHERE {RELATIONS}");
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let name: String = row.try_get(0)?;
        let kind = if row.try_get::<&str, _>(1)? == "view" {
            Kind::View
        } else {
            Kind::Table
        };
        let rows = estimates.get(&name).copied();
        builder.table(MAIN, &name, kind, rows, None);
    }

    let sql = format!(
        "SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk,
                (SELECT count(*) FROM pragma_table_info(m.name) k WHERE k.pk > 0)
         FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE {RELATIONS} ORDER BY m.name, p.cid"
    );
    let mut keys: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let table: String = row.try_get(0)?;
        let name: String = row.try_get(2)?;
        let data_type: String = row.try_get(3)?;
        let pk: i64 = row.try_get(6)?;
        let key_columns: i64 = row.try_get(7)?;
        // A single-column INTEGER PRIMARY KEY is the rowid, never NULL, though SQLite does not mark it so.
        let rowid = pk > 0 && key_columns == 1 && data_type.eq_ignore_ascii_case("INTEGER");
        if pk > 0 {
            keys.entry(table.clone()).or_default().push((pk, name.clone()));
        }
        let column = crate::schema::catalog_column(
            name,
            data_type,
            row.try_get::<i64, _>(4)? == 0 && !rowid,
            row.try_get(5)?,
            None,
            row.try_get::<i64, _>(1)? + 1,
        );
        builder.column(MAIN, &table, column);
    }
    for (table, mut columns) in keys {
        columns.sort();
        builder.primary_key(MAIN, &table, columns.into_iter().map(|(_, c)| c).collect());
    }

    let sql = format!(
        "SELECT m.name, f.id, f.\"table\", f.\"from\", f.\"to\"
         FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE {RELATIONS}
         ORDER BY m.name, f.id, f.seq"
    );
    let mut fks: Vec<(String, i64, sluice_catalog::ForeignKey)> = Vec::new();
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let table: String = row.try_get(0)?;
        let id: i64 = row.try_get(1)?;
        let from: String = row.try_get(3)?;
        // `to` is NULL when the key references the parent's primary key implicitly.
        let to: Option<String> = row.try_get(4)?;
        match fks.last_mut() {
            Some((t, i, fk)) if *t == table && *i == id => {
                fk.columns.push(from);
                fk.referenced_columns.extend(to);
            }
            _ => {
                let fk = sluice_catalog::ForeignKey {
                    name: None,
                    columns: vec![from],
                    references: sluice_catalog::TableId::new(MAIN, row.try_get::<String, _>(2)?),
                    referenced_columns: to.into_iter().collect(),
                };
                fks.push((table, id, fk));
            }
        }
    }
    for (table, _, mut fk) in fks {
        if fk.referenced_columns.is_empty() {
            fk.referenced_columns = builder.primary_key_of(MAIN, &fk.references.name);
        }
        builder.foreign_key(MAIN, &table, fk);
    }

    // origin: `pk` is the primary key (already known), `u` a UNIQUE constraint, `c` CREATE INDEX.
    let sql = format!(
        "SELECT m.name, il.name, il.\"unique\", il.origin, ii.name
         FROM sqlite_master m JOIN pragma_index_list(m.name) il JOIN pragma_index_info(il.name) ii
         WHERE {RELATIONS} ORDER BY m.name, il.name, ii.seqno"
    );
    let mut indexes: Vec<(String, String, bool, String, Vec<String>)> = Vec::new();
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let table: String = row.try_get(0)?;
        let name: String = row.try_get(1)?;
        // An expression key part has no name.
        let column: Option<String> = row.try_get(4)?;
        match indexes.last_mut() {
            Some((t, n, _, _, columns)) if *t == table && *n == name => columns.extend(column),
            _ => indexes.push((
                table,
                name,
                row.try_get::<i64, _>(2)? != 0,
                row.try_get(3)?,
                column.into_iter().collect(),
            )),
        }
    }
    for (table, name, unique, origin, columns) in indexes {
        if columns.is_empty() || origin == "pk" {
            continue;
        }
        if origin == "u" {
            builder.unique(MAIN, &table, None, columns);
        } else {
            builder.index(
                MAIN,
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
