//! Fixed, read-only `information_schema` queries for MySQL/MariaDB. Agent input only ever reaches them
//! as bound parameters.
//!
//! Every text column is read without sqlx's type check: the two servers (and their versions) disagree on
//! whether `information_schema` strings are `VARCHAR` or binary-collated, and the text is the same.

use sqlx::mysql::MySqlRow;
use sqlx::{MySqlConnection, Row as _};

use crate::{ColumnInfo, ForeignKey, TableDetail, TableKind, TableRef, TableSummary};

/// The connection's database, or every user schema when the DSN names none.
const SCOPE: &str = "((DATABASE() IS NULL AND t.TABLE_SCHEMA NOT IN ('mysql', 'information_schema', \
                     'performance_schema', 'sys')) OR t.TABLE_SCHEMA = DATABASE())";

fn text(row: &MySqlRow, i: usize) -> Result<Option<String>, sqlx::Error> {
    let bytes: Option<&[u8]> = row.try_get_unchecked(i)?;
    Ok(bytes.map(|b| String::from_utf8_lossy(b).into_owned()))
}

fn number(row: &MySqlRow, i: usize) -> Result<Option<i64>, sqlx::Error> {
    row.try_get_unchecked(i)
}

fn kind(table_type: &str) -> TableKind {
    if table_type.contains("VIEW") {
        TableKind::View
    } else {
        TableKind::Table
    }
}

fn comment(kind: TableKind, text: Option<String>) -> Option<String> {
    // MariaDB reports the word `VIEW` as every view's comment.
    text.filter(|c| !c.is_empty() && (kind != TableKind::View || c != "VIEW"))
}

pub(super) async fn list_tables(conn: &mut MySqlConnection) -> Result<Vec<TableSummary>, sqlx::Error> {
    let sql = format!(
        "SELECT t.TABLE_SCHEMA, t.TABLE_NAME, t.TABLE_TYPE, CAST(t.TABLE_ROWS AS SIGNED),
                (SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.COLUMNS c
                  WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME),
                t.TABLE_COMMENT
         FROM information_schema.TABLES t WHERE {SCOPE} ORDER BY 1, 2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let kind = kind(&text(row, 2)?.unwrap_or_default());
            Ok(TableSummary {
                schema: text(row, 0)?.unwrap_or_default(),
                name: text(row, 1)?.unwrap_or_default(),
                kind,
                row_estimate: if kind == TableKind::View {
                    None
                } else {
                    number(row, 3)?.and_then(|v| u64::try_from(v).ok())
                },
                column_count: number(row, 4)?.and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
                comment: comment(kind, text(row, 5)?),
            })
        })
        .collect()
}

pub(super) async fn describe_table(
    conn: &mut MySqlConnection,
    table: &TableRef,
) -> Result<Option<TableDetail>, sqlx::Error> {
    let sql = format!(
        "SELECT t.TABLE_SCHEMA, t.TABLE_NAME, t.TABLE_TYPE, CAST(t.TABLE_ROWS AS SIGNED), t.TABLE_COMMENT
         FROM information_schema.TABLES t
         WHERE LOWER(t.TABLE_NAME) = LOWER(?)
           AND ((? IS NULL AND {SCOPE}) OR LOWER(t.TABLE_SCHEMA) = LOWER(?))
         ORDER BY t.TABLE_NAME = ? DESC, t.TABLE_SCHEMA = DATABASE() DESC, t.TABLE_SCHEMA
         LIMIT 1"
    );
    let schema = table.schema.as_deref();
    let Some(found) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&table.name)
        .bind(schema)
        .bind(schema)
        .bind(&table.name)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let schema = text(&found, 0)?.unwrap_or_default();
    let name = text(&found, 1)?.unwrap_or_default();
    let kind = kind(&text(&found, 2)?.unwrap_or_default());

    let mut primary_key = Vec::new();
    let mut foreign_keys: Vec<(String, ForeignKey)> = Vec::new();
    let keys = sqlx::query(
        "SELECT CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
         FROM information_schema.KEY_COLUMN_USAGE
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
           AND (CONSTRAINT_NAME = 'PRIMARY' OR REFERENCED_TABLE_NAME IS NOT NULL)
         ORDER BY CONSTRAINT_NAME = 'PRIMARY' DESC, CONSTRAINT_NAME, ORDINAL_POSITION",
    )
    .bind(&schema)
    .bind(&name)
    .fetch_all(&mut *conn)
    .await?;
    for row in &keys {
        let constraint = text(row, 0)?.unwrap_or_default();
        let column = text(row, 1)?.unwrap_or_default();
        if constraint == "PRIMARY" {
            primary_key.push(column);
            continue;
        }
        let referenced_column = text(row, 4)?.unwrap_or_default();
        match foreign_keys.last_mut() {
            Some((last, fk)) if *last == constraint => {
                fk.columns.push(column);
                fk.referenced_columns.push(referenced_column);
            }
            _ => foreign_keys.push((
                constraint,
                ForeignKey {
                    columns: vec![column],
                    referenced_schema: text(row, 2)?.unwrap_or_default(),
                    referenced_table: text(row, 3)?.unwrap_or_default(),
                    referenced_columns: vec![referenced_column],
                },
            )),
        }
    }

    let mut columns = Vec::new();
    for row in sqlx::query(
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, COLUMN_COMMENT
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
         ORDER BY ORDINAL_POSITION",
    )
    .bind(&schema)
    .bind(&name)
    .fetch_all(&mut *conn)
    .await?
    {
        let column = text(&row, 0)?.unwrap_or_default();
        columns.push(ColumnInfo {
            primary_key: primary_key.contains(&column),
            name: column,
            data_type: text(&row, 1)?.unwrap_or_default(),
            nullable: text(&row, 2)?.as_deref() == Some("YES"),
            // MariaDB spells "no default" as the text NULL.
            default: text(&row, 3)?.filter(|d| d != "NULL"),
            comment: text(&row, 4)?.filter(|c| !c.is_empty()),
        });
    }

    Ok(Some(TableDetail {
        row_estimate: if kind == TableKind::View {
            None
        } else {
            number(&found, 3)?.and_then(|v| u64::try_from(v).ok())
        },
        comment: comment(kind, text(&found, 4)?),
        schema,
        name,
        kind,
        columns,
        primary_key,
        foreign_keys: foreign_keys.into_iter().map(|(_, fk)| fk).collect(),
    }))
}

/// [`SCOPE`] for any `information_schema` view, by the name of its schema column.
fn scope(column: &str) -> String {
    SCOPE.replace("t.TABLE_SCHEMA", column)
}

/// The whole schema in four fixed statements (tables, columns, indexes with keys, foreign keys).
pub(super) async fn snapshot(
    conn: &mut MySqlConnection,
) -> Result<sluice_catalog::SchemaSnapshot, sqlx::Error> {
    use sluice_catalog::TableKind as Kind;

    let mut builder = crate::schema::SnapshotBuilder::default();
    let database = sqlx::query("SELECT DATABASE()").fetch_one(&mut *conn).await?;
    if let Some(db) = text(&database, 0)? {
        builder.schema(db);
    }
    let sql = format!(
        "SELECT t.TABLE_SCHEMA, t.TABLE_NAME, t.TABLE_TYPE, CAST(t.TABLE_ROWS AS SIGNED), t.TABLE_COMMENT
         FROM information_schema.TABLES t WHERE {SCOPE}"
    );
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let kind = kind(&text(&row, 2)?.unwrap_or_default());
        let rows = if kind == TableKind::View {
            None
        } else {
            number(&row, 3)?.and_then(|v| u64::try_from(v).ok())
        };
        builder.table(
            &text(&row, 0)?.unwrap_or_default(),
            &text(&row, 1)?.unwrap_or_default(),
            if kind == TableKind::View {
                Kind::View
            } else {
                Kind::Table
            },
            rows,
            comment(kind, text(&row, 4)?),
        );
    }

    let sql = format!(
        "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_DEFAULT,
                c.COLUMN_COMMENT, CAST(c.ORDINAL_POSITION AS SIGNED)
         FROM information_schema.COLUMNS c WHERE {}",
        scope("c.TABLE_SCHEMA")
    );
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let column = crate::schema::catalog_column(
            text(&row, 2)?.unwrap_or_default(),
            text(&row, 3)?.unwrap_or_default(),
            text(&row, 4)?.as_deref() == Some("YES"),
            // MariaDB spells "no default" as the text NULL.
            text(&row, 5)?.filter(|d| d != "NULL"),
            text(&row, 6)?,
            number(&row, 7)?.unwrap_or(0),
        );
        builder.column(
            &text(&row, 0)?.unwrap_or_default(),
            &text(&row, 1)?.unwrap_or_default(),
            column,
        );
    }

    // Keys and indexes are one listing in MySQL: PRIMARY is the primary key, a unique index is a key.
    let sql = format!(
        "SELECT s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME, CAST(s.NON_UNIQUE AS SIGNED), s.COLUMN_NAME
         FROM information_schema.STATISTICS s WHERE {}
         ORDER BY s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME, s.SEQ_IN_INDEX",
        scope("s.TABLE_SCHEMA")
    );
    let mut current: Option<(String, String, String, bool, Vec<String>)> = None;
    let mut indexes = Vec::new();
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let key = (
            text(&row, 0)?.unwrap_or_default(),
            text(&row, 1)?.unwrap_or_default(),
            text(&row, 2)?.unwrap_or_default(),
        );
        let unique = number(&row, 3)? == Some(0);
        // A functional key part has no column name.
        let column = text(&row, 4)?;
        match &mut current {
            Some((s, t, i, _, columns)) if *s == key.0 && *t == key.1 && *i == key.2 => {
                columns.extend(column)
            }
            _ => {
                indexes.extend(current.take());
                current = Some((key.0, key.1, key.2, unique, column.into_iter().collect()));
            }
        }
    }
    indexes.extend(current);
    for (schema, table, name, unique, columns) in indexes {
        if columns.is_empty() {
            continue;
        }
        if name == "PRIMARY" {
            builder.primary_key(&schema, &table, columns);
        } else {
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

    let sql = format!(
        "SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA,
                k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME
         FROM information_schema.KEY_COLUMN_USAGE k
         WHERE {} AND k.REFERENCED_TABLE_NAME IS NOT NULL
         ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        scope("k.TABLE_SCHEMA")
    );
    let mut fks: Vec<(String, String, sluice_catalog::ForeignKey)> = Vec::new();
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
    {
        let schema = text(&row, 0)?.unwrap_or_default();
        let table = text(&row, 1)?.unwrap_or_default();
        let name = text(&row, 2)?;
        let column = text(&row, 3)?.unwrap_or_default();
        let referenced_column = text(&row, 6)?.unwrap_or_default();
        match fks.last_mut() {
            Some((s, t, fk)) if *s == schema && *t == table && fk.name == name => {
                fk.columns.push(column);
                fk.referenced_columns.push(referenced_column);
            }
            _ => {
                let references = sluice_catalog::TableId::new(
                    text(&row, 4)?.unwrap_or_default(),
                    text(&row, 5)?.unwrap_or_default(),
                );
                fks.push((
                    schema,
                    table,
                    sluice_catalog::ForeignKey {
                        name,
                        columns: vec![column],
                        references,
                        referenced_columns: vec![referenced_column],
                    },
                ));
            }
        }
    }
    for (schema, table, fk) in fks {
        builder.foreign_key(&schema, &table, fk);
    }
    Ok(builder.finish())
}
