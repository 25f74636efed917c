//! `schema_link` results: the question's joins, then the tables by relevance with why each is there, as
//! DDL, compact lines or JSON.

use serde_json::json;

use crate::budget::{Layout, Rendered, Style, Window, pack, shrink_lines};
use crate::catalog::Catalog;
use crate::link::{LinkRole, SchemaLink};
use crate::snapshot::Table;

use super::table::{shrink_compact, shrink_json, table_compact, table_ddl, table_json};
use super::{DdlOptions, LinkFormat, Quoting, one_line};

/// A `schema_link` result in the requested format: the joins first (they are small and what agents most
/// often get wrong), then the tables by relevance.
pub fn schema_link(
    catalog: &Catalog,
    link: &SchemaLink,
    format: LinkFormat,
    quoting: Quoting,
    window: &Window,
) -> Rendered {
    let tables: Vec<&Table> = link
        .tables
        .iter()
        .filter_map(|t| catalog.table(&t.table))
        .collect();
    let why = |i: usize| -> String {
        let lt = &link.tables[i];
        match lt.role {
            LinkRole::Bridge => format!(
                "bridge joining {}",
                lt.connects
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            LinkRole::Matched => {
                let mut terms: Vec<String> = lt
                    .matches
                    .iter()
                    .map(|m| match &m.column {
                        Some(c) => format!("{}@{c}", m.term),
                        None => m.term.clone(),
                    })
                    .collect();
                terms.dedup();
                format!("matched {}", terms.join(", "))
            }
        }
    };
    match format {
        LinkFormat::Json => {
            let items: Vec<String> = link
                .tables
                .iter()
                .enumerate()
                .filter_map(|(i, lt)| {
                    let table = catalog.table(&lt.table)?;
                    let body = table_json(catalog, table, None);
                    let extra = json!({"relevance": lt.score, "role": lt.role, "why": why(i)}).to_string();
                    // Merge the relevance fields into the table object (both are objects by construction).
                    Some(format!("{},{}", &extra[..extra.len() - 1], &body[1..]))
                })
                .collect();
            let joins: Vec<serde_json::Value> = link
                .edges
                .iter()
                .map(|e| {
                    json!({"from": e.from.to_string(), "from_columns": e.from_columns, "to": e.to.to_string(),
                           "to_columns": e.to_columns, "origin": e.origin, "confidence": e.confidence})
                })
                .collect();
            let header = format!(
                "{{\"question\":{},\"terms\":{},\"joins\":{},\"tables\":[",
                json!(link.question),
                json!(link.terms),
                json!(joins)
            );
            let shrink = |i: usize, n: usize| shrink_json(catalog, tables[i], n);
            pack(
                Layout {
                    header,
                    items,
                    sep: ",",
                    noun: "tables",
                    style: Style::Json,
                    shrink: &shrink,
                },
                window,
            )
        }
        LinkFormat::Ddl | LinkFormat::Compact => {
            let prefix = if format == LinkFormat::Ddl { "-- " } else { "" };
            let mut header = format!("{prefix}Tables for: {}\n", one_line(&link.question));
            if link.edges.is_empty() {
                header.push_str(&format!("{prefix}Joins: none among these tables\n"));
            } else {
                header.push_str(&format!("{prefix}Joins:\n"));
                for e in &link.edges {
                    let pairs: Vec<String> = e
                        .from_columns
                        .iter()
                        .zip(&e.to_columns)
                        .map(|(f, t)| format!("{}.{f} = {}.{t}", e.from, e.to))
                        .collect();
                    let label = if e.is_declared() {
                        "declared".to_string()
                    } else {
                        format!("inferred {:.2}", e.confidence)
                    };
                    header.push_str(&format!("{prefix}  {} [{label}]\n", pairs.join(" AND ")));
                }
            }
            if format == LinkFormat::Ddl {
                header.push('\n');
            }
            let options = DdlOptions {
                quoting,
                compress: false,
            };
            let items: Vec<String> = tables
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let score = link.tables[i].score;
                    if format == LinkFormat::Ddl {
                        format!(
                            "-- relevance {score:.2}: {}\n{}",
                            why(i),
                            table_ddl(catalog, t, &options)
                        )
                    } else {
                        format!("{}  -- {score:.2} {}", table_compact(catalog, t), why(i))
                    }
                })
                .collect();
            let sep = if format == LinkFormat::Ddl { "\n\n" } else { "\n" };
            let shrink = |i: usize, n: usize| {
                if format == LinkFormat::Ddl {
                    shrink_lines(&items[i], n, "-- ")
                } else {
                    shrink_compact(&items[i], n)
                }
            };
            let style = Style::Text { prefix };
            pack(
                Layout {
                    header,
                    items: items.clone(),
                    sep,
                    noun: "tables",
                    style,
                    shrink: &shrink,
                },
                window,
            )
        }
    }
}
