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
