//! One table in each format: its DDL block, its compact line and its JSON object, and how a compact line
//! or a JSON object is cut to fit a budget.

use serde::Serialize;
use serde_json::json;

use crate::catalog::Catalog;
use crate::graph::EdgeOrigin;
use crate::snapshot::{Table, TableKind};

use super::{DdlOptions, one_line, relative, rows};

/// The DDL block of one table.
pub(super) fn table_ddl(catalog: &Catalog, table: &Table, options: &DdlOptions) -> String {
    let q = options.quoting;
    let keyword = match table.kind {
        TableKind::Table => "TABLE",
        TableKind::View => "VIEW",
        TableKind::MaterializedView => "MATERIALIZED VIEW",
    };
    let mut parts: Vec<(String, Option<String>)> = table
        .columns
        .iter()
        .map(|c| {
            let mut line = format!(
                "{} {}",
                q.ident(&c.name),
                if c.data_type.is_empty() {
                    "ANY"
                } else {
                    &c.data_type
                }
            );
            if !c.nullable {
                line.push_str(" NOT NULL");
            }
            if let (Some(default), false) = (&c.default, options.compress) {
                line.push_str(&format!(" DEFAULT {}", one_line(default)));
            }
            let comment = if options.compress {
                None
            } else {
                c.comment.as_deref().map(one_line)
            };
            (line, comment)
        })
        .collect();
    if !table.primary_key.is_empty() {
        parts.push((format!("PRIMARY KEY ({})", q.list(&table.primary_key)), None));
    }
    for u in &table.unique_constraints {
        parts.push((format!("UNIQUE ({})", q.list(&u.columns)), None));
    }
    for fk in &table.foreign_keys {
        parts.push((
            format!(
                "FOREIGN KEY ({}) REFERENCES {} ({})",
                q.list(&fk.columns),
                fk.references.sql(q),
                q.list(&fk.referenced_columns)
            ),
            None,
        ));
    }
    if options.compress {
        let body: Vec<String> = parts.into_iter().map(|(l, _)| l).collect();
        return format!("CREATE {keyword} {} ({});", table.id.sql(q), body.join(", "));
    }
    let mut out = String::new();
    let mut about: Vec<String> = Vec::new();
    if table.kind != TableKind::Table {
        about.push(format!(
            "{} columns (definition not captured)",
            table.kind.label()
        ));
    }
    about.extend(table.comment.as_deref().map(one_line));
    about.extend(rows(table));
    if !about.is_empty() {
        out.push_str(&format!("-- {}\n", about.join("; ")));
    }
    out.push_str(&format!("CREATE {keyword} {} (\n", table.id.sql(q)));
    let last = parts.len().saturating_sub(1);
    for (i, (line, comment)) in parts.iter().enumerate() {
        let comma = if i < last { "," } else { "" };
        match comment {
            Some(c) => out.push_str(&format!("  {line}{comma} -- {c}\n")),
            None => out.push_str(&format!("  {line}{comma}\n")),
        }
    }
    out.push_str(");");
    for index in &table.indexes {
        out.push_str(&format!(
            "\nCREATE {}INDEX {} ON {} ({});",
            if index.unique { "UNIQUE " } else { "" },
            q.ident(&index.name),
            table.id.sql(q),
            q.list(&index.columns)
        ));
    }
    for edge in catalog.edges_of(&table.id) {
        if edge.from == table.id && !edge.is_declared() {
            out.push_str(&format!(
                "\n-- inferred join ({:.2}): ({}) -> {} ({}); {}",
                edge.confidence,
                q.list(&edge.from_columns),
                edge.to.sql(q),
                q.list(&edge.to_columns),
                edge.reason
            ));
        }
    }
    out
}

/// The compact line of one table: `schema.table(col type PK, col type -> other.col, …) ~rows`.
pub(super) fn table_compact(catalog: &Catalog, table: &Table) -> String {
    let edges = catalog.edges_of(&table.id);
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let mut s = format!(
                "{} {}",
                c.name,
                if c.data_type.is_empty() {
                    "any"
                } else {
                    &c.data_type
                }
            );
            if table.primary_key.len() == 1 && table.primary_key[0] == c.name {
                s.push_str(" PK");
            }
            for e in &edges {
                if e.from == table.id && e.from_columns.len() == 1 && e.from_columns[0] == c.name {
                    let arrow = if e.is_declared() { "->" } else { "~>" };
                    s.push_str(&format!(
                        " {arrow}{}.{}",
                        relative(&e.to, &table.id),
                        e.to_columns[0]
                    ));
                }
            }
            s
        })
        .collect();
    let mut line = format!("{}({})", table.id, columns.join(", "));
    if table.primary_key.len() > 1 {
        line.push_str(&format!(" PK({})", table.primary_key.join(",")));
    }
    for e in &edges {
        if e.from == table.id && e.from_columns.len() > 1 {
            let arrow = if e.is_declared() { "->" } else { "~>" };
            line.push_str(&format!(
                " ({}){arrow}{}({})",
                e.from_columns.join(","),
                relative(&e.to, &table.id),
                e.to_columns.join(",")
            ));
        }
    }
    if table.kind != TableKind::Table {
        line.push_str(&format!(" [{}]", table.kind.label()));
    }
    if let Some(r) = rows(table) {
        line.push_str(&format!(" {r}"));
    }
    line
}

/// A compact line is one line: cut it at a column boundary.
pub(super) fn shrink_compact(line: &str, max: usize) -> String {
    let mut out = String::new();
    for part in line.split(", ") {
        let next = if out.is_empty() {
            part.to_string()
        } else {
            format!("{out}, {part}")
        };
        if next.chars().count() + 24 > max {
            break;
        }
        out = next;
    }
    format!("{out}, … columns cut)")
}

#[derive(Serialize)]
struct ColumnJson<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    data_type: &'a str,
    nullable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
}

#[derive(Serialize)]
struct JoinJson<'a> {
    columns: &'a [String],
    references: String,
    referenced_columns: &'a [String],
    #[serde(flatten)]
    origin: &'a EdgeOrigin,
    confidence: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// The JSON object of one table with its first `columns` columns (all when `None`).
pub(super) fn table_json(catalog: &Catalog, table: &Table, columns: Option<usize>) -> String {
    let shown = columns.unwrap_or(table.columns.len()).min(table.columns.len());
    let cols: Vec<ColumnJson<'_>> = table.columns[..shown]
        .iter()
        .map(|c| ColumnJson {
            name: &c.name,
            data_type: &c.data_type,
            nullable: c.nullable,
            default: c.default.as_deref(),
            comment: c.comment.as_deref(),
        })
        .collect();
    let joins: Vec<JoinJson<'_>> = catalog
        .edges_of(&table.id)
        .into_iter()
        .filter(|e| e.from == table.id)
        .map(|e| JoinJson {
            columns: &e.from_columns,
            references: e.to.to_string(),
            referenced_columns: &e.to_columns,
            origin: &e.origin,
            confidence: e.confidence,
            reason: (!e.is_declared()).then_some(e.reason.as_str()),
        })
        .collect();
    let mut value = json!({
        "schema": table.id.schema,
        "name": table.id.name,
        "kind": table.kind,
        "columns": cols,
    });
    if let Some(map) = value.as_object_mut() {
        if shown < table.columns.len() {
            map.insert("columns_cut".into(), json!(table.columns.len() - shown));
        }
        if !table.primary_key.is_empty() {
            map.insert("primary_key".into(), json!(table.primary_key));
        }
        if !table.unique_constraints.is_empty() {
            map.insert(
                "unique".into(),
                json!(
                    table
                        .unique_constraints
                        .iter()
                        .map(|u| &u.columns)
                        .collect::<Vec<_>>()
                ),
            );
        }
        if !joins.is_empty() {
            map.insert("joins".into(), json!(joins));
        }
        if let Some(r) = table.row_estimate {
            map.insert("row_estimate".into(), json!(r));
        }
        if let Some(c) = &table.comment {
            map.insert("comment".into(), json!(c));
        }
    }
    value.to_string()
}

/// Cuts a table's JSON by dropping trailing columns until it fits (binary search over the column count).
pub(super) fn shrink_json(catalog: &Catalog, table: &Table, max: usize) -> String {
    let (mut lo, mut hi) = (0usize, table.columns.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if table_json(catalog, table, Some(mid)).chars().count() <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let text = table_json(catalog, table, Some(lo));
    if text.chars().count() <= max {
        text
    } else {
        json!({"schema": table.id.schema, "name": table.id.name, "cut": true}).to_string()
    }
}
