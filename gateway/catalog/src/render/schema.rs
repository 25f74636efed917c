//! The schema views: the overview (counts, then one line per table), and the selected tables as DDL, as
//! compact lines or as JSON.

use std::collections::BTreeMap;

use crate::budget::{Layout, Rendered, Style, Window, pack, shrink_lines, thousands};
use crate::catalog::Catalog;
use crate::snapshot::{Table, TableId, TableKind};

use super::table::{shrink_compact, shrink_json, table_compact, table_ddl, table_json};
use super::{DdlOptions, one_line, relative, rows};

/// `1 column`, `2 columns`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", thousands(n))
    }
}

/// The tables to render: a selection in its given order (unknown ids skipped), or all tables sorted.
fn select<'a>(catalog: &'a Catalog, selection: Option<&[TableId]>) -> Vec<&'a Table> {
    match selection {
        Some(ids) => ids.iter().filter_map(|id| catalog.table(id)).collect(),
        None => catalog.tables().iter().collect(),
    }
}

/// `schema_overview`: counts per schema, then one line per table.
pub fn overview(catalog: &Catalog, window: &Window) -> Rendered {
    let tables = catalog.tables();
    let declared = catalog.edges().iter().filter(|e| e.is_declared()).count();
    let inferred = catalog.edges().len() - declared;
    let views = tables.iter().filter(|t| t.kind != TableKind::Table).count();
    let columns: usize = tables.iter().map(|t| t.columns.len()).sum();
    let mut header = format!(
        "Schema overview: {}, {}, {}, {}, {}, {}\n",
        count(catalog.snapshot().schemas.len(), "schema"),
        count(tables.len() - views, "table"),
        count(views, "view"),
        count(columns, "column"),
        count(declared, "declared foreign key"),
        count(inferred, "inferred join"),
    );
    let mut per_schema: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for s in &catalog.snapshot().schemas {
        per_schema.entry(s.as_str()).or_default();
    }
    for t in tables {
        let e = per_schema.entry(t.id.schema.as_str()).or_default();
        e.0 += 1;
        e.1 += t.row_estimate.unwrap_or(0);
    }
    const MAX_SCHEMAS: usize = 20;
    for (schema, (n, rows)) in per_schema.iter().take(MAX_SCHEMAS) {
        header.push_str(&format!(
            "  {schema}: {}, ~{} rows\n",
            count(*n, "relation"),
            thousands(*rows as usize)
        ));
    }
    if per_schema.len() > MAX_SCHEMAS {
        header.push_str(&format!(
            "  … {} more schemas (list_schemas lists them all)\n",
            per_schema.len() - MAX_SCHEMAS
        ));
    }
    let items: Vec<String> = tables
        .iter()
        .map(|t| {
            let mut facts = vec![count(t.columns.len(), "column")];
            if t.kind != TableKind::Table {
                facts.insert(0, t.kind.label().to_string());
            }
            facts.extend(rows(t));
            let mut neighbours: Vec<String> = catalog
                .edges_of(&t.id)
                .iter()
                .map(|e| {
                    if e.from == t.id {
                        relative(&e.to, &t.id)
                    } else {
                        relative(&e.from, &t.id)
                    }
                })
                .filter(|n| *n != t.id.name)
                .collect();
            neighbours.sort();
            neighbours.dedup();
            if !neighbours.is_empty() {
                const MAX_NEIGHBOURS: usize = 6;
                let more = neighbours.len().saturating_sub(MAX_NEIGHBOURS);
                neighbours.truncate(MAX_NEIGHBOURS);
                let mut joins = neighbours.join(", ");
                if more > 0 {
                    joins.push_str(&format!(" +{more}"));
                }
                facts.push(format!("joins {joins}"));
            }
            let comment = t
                .comment
                .as_deref()
                .map(|c| format!(" — {}", one_line(c)))
                .unwrap_or_default();
            format!("{} ({}){comment}", t.id, facts.join("; "))
        })
        .collect();
    let shrink = |i: usize, n: usize| shrink_lines(&items[i], n, "");
    pack(Layout::text(header, items.clone(), "tables", &shrink), window)
}

/// `schema_ddl` / `describe_table`: CREATE statements for the selected tables (all when `None`).
pub fn ddl(
    catalog: &Catalog,
    selection: Option<&[TableId]>,
    options: &DdlOptions,
    window: &Window,
) -> Rendered {
    let tables = select(catalog, selection);
    let items: Vec<String> = tables.iter().map(|t| table_ddl(catalog, t, options)).collect();
    let header = format!(
        "-- {} tables and views{}\n",
        thousands(items.len()),
        if options.compress {
            " (compressed: no comments, defaults or indexes)"
        } else {
            ""
        }
    );
    let sep = if options.compress { "\n" } else { "\n\n" };
    let shrink = |i: usize, n: usize| shrink_lines(&items[i], n, "-- ");
    pack(
        Layout {
            header,
            items: items.clone(),
            sep,
            noun: "tables",
            style: Style::Text { prefix: "-- " },
            shrink: &shrink,
        },
        window,
    )
}

/// Compact schema: one line per table; `->` marks declared foreign keys, `~>` inferred joins.
pub fn compact(catalog: &Catalog, selection: Option<&[TableId]>, window: &Window) -> Rendered {
    let items: Vec<String> = select(catalog, selection)
        .iter()
        .map(|t| table_compact(catalog, t))
        .collect();
    let header = format!(
        "{} tables (-> foreign key, ~> inferred join)\n",
        thousands(items.len())
    );
    let shrink = |i: usize, n: usize| shrink_compact(&items[i], n);
    pack(Layout::text(header, items.clone(), "tables", &shrink), window)
}

/// JSON schema: `{"tables":[…],"paging":{…}}`, one object per table with columns, keys and joins.
pub fn json(catalog: &Catalog, selection: Option<&[TableId]>, window: &Window) -> Rendered {
    let tables = select(catalog, selection);
    let items: Vec<String> = tables.iter().map(|t| table_json(catalog, t, None)).collect();
    let shrink = |i: usize, n: usize| shrink_json(catalog, tables[i], n);
    pack(
        Layout {
            header: "{\"tables\":[".to_string(),
            items,
            sep: ",",
            noun: "tables",
            style: Style::Json,
            shrink: &shrink,
        },
        window,
    )
}
