//! A compact text form for writing snapshots by hand — tests, examples, bug reports — instead of pages of
//! struct literals. Introspection builds [`SchemaSnapshot`] values directly; this is only a convenience.
//!
//! ```text
//! schema empty_schema
//! table sales.orders ~1200 -- customer orders
//!   id int pk
//!   customer_id int not null -> sales.customers.id
//!   status text default='new' samples=[shipped|on hold] -- order status
//!   pk (a, b)                  (multi-column keys and constraints on their own lines)
//!   unique (a, b)
//!   fk (a, b) -> sales.t (x, y)
//!   index idx_status (status) unique
//! view sales.v_orders
//! ```
//! Lines starting with `#` are ignored; a column type of `-` means "no declared type".

use crate::error::CatalogError;
use crate::snapshot::{
    Column, ForeignKey, Index, SchemaSnapshot, Table, TableId, TableKind, UniqueConstraint,
};

fn err(line: usize, message: impl Into<String>) -> CatalogError {
    CatalogError::Outline {
        line,
        message: message.into(),
    }
}

fn table_id(text: &str, home: Option<&TableId>, line: usize) -> Result<TableId, CatalogError> {
    match text.split_once('.') {
        Some((s, t)) => Ok(TableId::new(s, t)),
        None => match home {
            Some(h) => Ok(TableId::new(h.schema.clone(), text)),
            None => Err(err(line, format!("table `{text}` needs a schema"))),
        },
    }
}

/// `(a, b)` → `["a", "b"]`, returning the rest of the text after the closing parenthesis.
fn column_list(text: &str, line: usize) -> Result<(Vec<String>, &str), CatalogError> {
    let text = text.trim_start();
    let inner = text.strip_prefix('(').ok_or_else(|| err(line, "expected `(`"))?;
    let close = inner.find(')').ok_or_else(|| err(line, "expected `)`"))?;
    let cols = inner[..close]
        .split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    Ok((cols, &inner[close + 1..]))
}

/// Splits a line into words, keeping `[...]` groups whole.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for ch in text.chars() {
        match ch {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if ch.is_whitespace() && depth == 0 {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            current.push(ch);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Parses the outline format described in the module documentation; `captured_at` is 0.
pub fn parse(text: &str) -> Result<SchemaSnapshot, CatalogError> {
    let mut snapshot = SchemaSnapshot::new(Vec::new(), 0);
    let mut current: Option<Table> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (body, comment) = match trimmed.split_once(" -- ") {
            Some((b, c)) => (b.trim(), Some(c.trim().to_string())),
            None => (trimmed, None),
        };
        let indented = raw.starts_with(char::is_whitespace);
        let words = tokens(body);
        let first = words.first().map(String::as_str).unwrap_or("");
        if !indented {
            let kind = match first {
                "schema" => {
                    let name = words.get(1).ok_or_else(|| err(line, "schema needs a name"))?;
                    snapshot.schemas.push(name.clone());
                    continue;
                }
                "table" => TableKind::Table,
                "view" => TableKind::View,
                "mview" => TableKind::MaterializedView,
                other => {
                    return Err(err(
                        line,
                        format!("expected table, view, mview or schema, found `{other}`"),
                    ));
                }
            };
            snapshot.tables.extend(current.take());
            let name = words.get(1).ok_or_else(|| err(line, "table needs a name"))?;
            let mut table = Table::new(table_id(name, None, line)?, kind);
            table.comment = comment;
            if let Some(rows) = words.get(2) {
                let digits = rows.trim_start_matches('~').replace(['_', ','], "");
                table.row_estimate = Some(
                    digits
                        .parse()
                        .map_err(|_| err(line, format!("bad row count `{rows}`")))?,
                );
            }
            current = Some(table);
            continue;
        }
        let table = current
            .as_mut()
            .ok_or_else(|| err(line, "column before any table"))?;
        let rest = body[first.len()..].trim_start();
        match first {
            "pk" if rest.starts_with('(') => table.primary_key = column_list(rest, line)?.0,
            "unique" if rest.starts_with('(') => {
                table.unique_constraints.push(UniqueConstraint {
                    name: None,
                    columns: column_list(rest, line)?.0,
                });
            }
            "fk" if rest.starts_with('(') => {
                let (columns, after) = column_list(rest, line)?;
                let after = after
                    .trim_start()
                    .strip_prefix("->")
                    .ok_or_else(|| err(line, "expected `->`"))?;
                let after = after.trim_start();
                let end = after
                    .find('(')
                    .ok_or_else(|| err(line, "expected referenced columns"))?;
                let references = table_id(after[..end].trim(), Some(&table.id), line)?;
                let (referenced_columns, _) = column_list(&after[end..], line)?;
                table.foreign_keys.push(ForeignKey {
                    name: None,
                    columns,
                    references,
                    referenced_columns,
                });
            }
            "index" => {
                let name = words.get(1).ok_or_else(|| err(line, "index needs a name"))?;
                let after = body[body.find('(').ok_or_else(|| err(line, "expected `(`"))?..].to_string();
                let (columns, tail) = column_list(&after, line)?;
                table.indexes.push(Index {
                    name: name.clone(),
                    columns,
                    unique: tail.trim() == "unique",
                });
            }
            _ => column(table, &words, comment, line)?,
        }
    }
    snapshot.tables.extend(current);
    Ok(snapshot)
}

fn column(
    table: &mut Table,
    words: &[String],
    comment: Option<String>,
    line: usize,
) -> Result<(), CatalogError> {
    let name = &words[0];
    let data_type = words
        .get(1)
        .ok_or_else(|| err(line, format!("column `{name}` needs a type")))?;
    let mut col = Column::new(
        name.clone(),
        if data_type == "-" { "" } else { data_type.as_str() },
    );
    col.comment = comment;
    let mut i = 2;
    while i < words.len() {
        let w = words[i].as_str();
        match w {
            "pk" => {
                table.primary_key.push(name.clone());
                col.nullable = false;
            }
            "unique" => table.unique_constraints.push(UniqueConstraint {
                name: None,
                columns: vec![name.clone()],
            }),
            "not" if words.get(i + 1).map(String::as_str) == Some("null") => {
                col.nullable = false;
                i += 1;
            }
            "null" => col.nullable = true,
            "->" => {
                let target = words
                    .get(i + 1)
                    .ok_or_else(|| err(line, "`->` needs table.column"))?;
                let (t, c) = target
                    .rsplit_once('.')
                    .ok_or_else(|| err(line, "`->` needs table.column"))?;
                table.foreign_keys.push(ForeignKey {
                    name: None,
                    columns: vec![name.clone()],
                    references: table_id(t, Some(&table.id), line)?,
                    referenced_columns: vec![c.to_string()],
                });
                i += 1;
            }
            _ if w.starts_with("default=") => col.default = Some(w["default=".len()..].to_string()),
            _ if w.starts_with("samples=") => {
                let list = w["samples=".len()..]
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                col.samples = list
                    .split('|')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            other => return Err(err(line, format!("unknown column attribute `{other}`"))),
        }
        i += 1;
    }
    *table = std::mem::replace(table, Table::new(TableId::new("", ""), TableKind::Table)).with_column(col);
    Ok(())
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::parse;
    use crate::snapshot::{Column, ForeignKey, Index, SchemaSnapshot, Table, TableId, TableKind};

    #[test]
    fn parses_tables_columns_and_constraints() {
        let text = "schema empty\ntable s.t ~1_200 -- things\n  id int pk\n  name - not null default=0 samples=[a b|c] -- label\n\
                    \x20 other_id int -> o.x\n  fk (id, name) -> s.u (a, b)\n  index ix (name) unique\nview s.v\n  id int\n";
        let mut name = Column::new("name", "");
        name.nullable = false;
        name.default = Some("0".into());
        name.comment = Some("label".into());
        name.samples = vec!["a b".into(), "c".into()];
        let mut t = Table::new(TableId::new("s", "t"), TableKind::Table)
            .with_column(Column {
                nullable: false,
                ..Column::new("id", "int")
            })
            .with_column(name)
            .with_column(Column::new("other_id", "int"))
            .with_primary_key(["id"]);
        t.row_estimate = Some(1200);
        t.comment = Some("things".into());
        t.foreign_keys = vec![
            ForeignKey {
                name: None,
                columns: vec!["other_id".into()],
                references: TableId::new("s", "o"),
                referenced_columns: vec!["x".into()],
            },
            ForeignKey {
                name: None,
                columns: vec!["id".into(), "name".into()],
                references: TableId::new("s", "u"),
                referenced_columns: vec!["a".into(), "b".into()],
            },
        ];
        t.indexes = vec![Index {
            name: "ix".into(),
            columns: vec!["name".into()],
            unique: true,
        }];
        let v = Table::new(TableId::new("s", "v"), TableKind::View).with_column(Column::new("id", "int"));
        let expected = SchemaSnapshot {
            schemas: vec!["empty".into()],
            tables: vec![t, v],
            captured_at: 0,
        };
        assert_eq!(parse(text).expect("parses"), expected);
    }

    #[test]
    fn reports_the_failing_line() {
        let cases = [
            ("  id int\n", "outline line 1: column before any table"),
            ("table t\n", "outline line 1: table `t` needs a schema"),
            ("table s.t\n  id\n", "outline line 2: column `id` needs a type"),
            (
                "table s.t\n  id int bogus\n",
                "outline line 2: unknown column attribute `bogus`",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse(text).map(|_| ()).map_err(|e| e.to_string()),
                Err(expected.to_string()),
                "{text}"
            );
        }
    }
}
