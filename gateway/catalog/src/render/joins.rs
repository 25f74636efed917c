//! The join graph and join paths: `get_relationships` as one line per join or per table, and
//! `find_join_path`'s paths with their joins, reasons and SQL.

use std::collections::BTreeMap;

use crate::budget::{Layout, Rendered, Window, pack, shrink_lines, thousands};
use crate::catalog::Catalog;
use crate::graph::{EdgeOrigin, JoinEdge};
use crate::path::PathSearch;
use crate::snapshot::TableId;

use super::RelationshipFormat;
use super::table::shrink_compact;

fn origin_label(edge: &JoinEdge) -> String {
    match &edge.origin {
        EdgeOrigin::Declared {
            constraint: Some(name),
        } => format!("declared {name}"),
        EdgeOrigin::Declared { constraint: None } => "declared".to_string(),
        EdgeOrigin::Inferred { .. } => format!("inferred {:.2}: {}", edge.confidence, edge.reason),
    }
}

/// `get_relationships`: every join edge (declared and, if asked, inferred) as lines or as an adjacency list.
pub fn relationships(
    catalog: &Catalog,
    format: RelationshipFormat,
    include_inferred: bool,
    window: &Window,
) -> Rendered {
    let edges: Vec<&JoinEdge> = catalog
        .edges()
        .iter()
        .filter(|e| include_inferred || e.is_declared())
        .collect();
    let declared = edges.iter().filter(|e| e.is_declared()).count();
    let header = format!(
        "Relationships: {} declared foreign keys, {} inferred joins\n",
        thousands(declared),
        thousands(edges.len() - declared)
    );
    let (items, noun): (Vec<String>, &'static str) = match format {
        RelationshipFormat::Compact => (
            edges
                .iter()
                .map(|e| {
                    format!(
                        "{}({}) -> {}({}) [{}]",
                        e.from,
                        e.from_columns.join(", "),
                        e.to,
                        e.to_columns.join(", "),
                        origin_label(e)
                    )
                })
                .collect(),
            "joins",
        ),
        RelationshipFormat::Graph => {
            let mut out: BTreeMap<&TableId, (Vec<String>, Vec<String>)> = BTreeMap::new();
            for e in &edges {
                let mark = if e.is_declared() { "" } else { "~" };
                out.entry(&e.from).or_default().0.push(format!("{mark}{}", e.to));
                out.entry(&e.to).or_default().1.push(format!("{mark}{}", e.from));
            }
            (
                out.into_iter()
                    .map(|(t, (mut refs, mut by))| {
                        refs.sort();
                        refs.dedup();
                        by.sort();
                        by.dedup();
                        let mut line = t.to_string();
                        if !refs.is_empty() {
                            line.push_str(&format!(" -> {}", refs.join(", ")));
                        }
                        if !by.is_empty() {
                            line.push_str(&format!(" <- {}", by.join(", ")));
                        }
                        line
                    })
                    .collect(),
                "tables",
            )
        }
    };
    let header = match format {
        RelationshipFormat::Compact => header,
        RelationshipFormat::Graph => format!("{header}(-> references, <- referenced by, ~ inferred)\n"),
    };
    let shrink = |i: usize, n: usize| shrink_compact(&items[i], n);
    pack(Layout::text(header, items.clone(), noun, &shrink), window)
}

/// `find_join_path`: each path with its joins, their reasons and its SQL.
pub fn join_paths(search: &PathSearch, window: &Window) -> Rendered {
    let mut header = format!(
        "Join paths {} → {} (max {} hops): {} found\n",
        search.from,
        search.to,
        search.max_hops,
        search.paths.len()
    );
    for f in &search.findings {
        header.push_str(&format!("note: {}\n", f.message));
    }
    let items: Vec<String> = search
        .paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut s = format!(
                "\nPath {} ({} hop{}, score {:.3}): {}\n",
                i + 1,
                p.hops,
                if p.hops == 1 { "" } else { "s" },
                p.score,
                p.tables
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" → ")
            );
            for (j, step) in p.steps.iter().enumerate() {
                let on: Vec<String> = step
                    .left_columns
                    .iter()
                    .zip(&step.right_columns)
                    .map(|(l, r)| format!("t{}.{r} = t{j}.{l}", j + 1))
                    .collect();
                let label = match &step.origin {
                    EdgeOrigin::Declared {
                        constraint: Some(name),
                    } => format!("declared {name}"),
                    EdgeOrigin::Declared { constraint: None } => "declared".to_string(),
                    EdgeOrigin::Inferred { .. } => {
                        format!("inferred {:.2}: {}", step.confidence, step.reason)
                    }
                };
                s.push_str(&format!(
                    "  JOIN {} ON {} [{label}]\n",
                    step.right,
                    on.join(" AND ")
                ));
            }
            s.push_str(&p.sql);
            s
        })
        .collect();
    let shrink = |i: usize, n: usize| shrink_lines(&items[i], n, "");
    pack(Layout::text(header, items.clone(), "paths", &shrink), window)
}
