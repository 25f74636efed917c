//! Rendering for agents: overview, DDL, compact and JSON schema views, relationships, schema-link results,
//! join paths and diffs, each packed into a budget and paged (see [`crate::budget`]).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use crate::budget::{Layout, Rendered, Style, Window, pack, shrink_lines, thousands};
use crate::catalog::Catalog;
use crate::graph::{EdgeOrigin, JoinEdge};
use crate::link::{LinkRole, SchemaLink};
use crate::path::PathSearch;
use crate::snapshot::{Table, TableId, TableKind};
pub use sluice_dialect::Quoting;

/// Options for DDL rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdlOptions {
    pub quoting: Quoting,
    /// One line per table, no comments, defaults, indexes, statistics or inferred-join notes.
    pub compress: bool,
}

/// Formats of `get_relationships`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationshipFormat {
    /// One line per join: `a(col) -> b(col) [declared]`.
    Compact,
    /// One line per table: what it references and what references it.
    Graph,
}

/// Formats of `schema_link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFormat {
    Ddl,
    Compact,
    Json,
}

/// One line, for comments and notes embedded in single-line positions.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `1 column`, `2 columns`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", thousands(n))
    }
}

fn rows(table: &Table) -> Option<String> {
    table
        .row_estimate
        .map(|r| format!("~{} rows", thousands(r as usize)))
}

/// A table name relative to `home`: unqualified in the same schema, qualified otherwise.
fn relative(id: &TableId, home: &TableId) -> String {
    if id.schema == home.schema {
        id.name.clone()
    } else {
        id.to_string()
    }
}

fn origin_label(edge: &JoinEdge) -> String {
    match &edge.origin {
        EdgeOrigin::Declared {
            constraint: Some(name),
        } => format!("declared {name}"),
        EdgeOrigin::Declared { constraint: None } => "declared".to_string(),
        EdgeOrigin::Inferred { .. } => format!("inferred {:.2}: {}", edge.confidence, edge.reason),
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
    pack(
        Layout {
            header,
            items: items.clone(),
            sep: "\n",
            noun: "tables",
            style: Style::Text { prefix: "" },
            shrink: &shrink,
        },
        window,
    )
}

/// The DDL block of one table.
fn table_ddl(catalog: &Catalog, table: &Table, options: &DdlOptions) -> String {
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

/// The compact line of one table: `schema.table(col type PK, col type -> other.col, …) ~rows`.
fn table_compact(catalog: &Catalog, table: &Table) -> String {
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
    pack(
        Layout {
            header,
            items: items.clone(),
            sep: "\n",
            noun: "tables",
            style: Style::Text { prefix: "" },
            shrink: &shrink,
        },
        window,
    )
}

/// A compact line is one line: cut it at a column boundary.
fn shrink_compact(line: &str, max: usize) -> String {
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
fn table_json(catalog: &Catalog, table: &Table, columns: Option<usize>) -> String {
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
fn shrink_json(catalog: &Catalog, table: &Table, max: usize) -> String {
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
    pack(
        Layout {
            header,
            items: items.clone(),
            sep: "\n",
            noun,
            style: Style::Text { prefix: "" },
            shrink: &shrink,
        },
        window,
    )
}

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
    pack(
        Layout {
            header,
            items: items.clone(),
            sep: "\n",
            noun: "paths",
            style: Style::Text { prefix: "" },
            shrink: &shrink,
        },
        window,
    )
}

#[cfg(test)]
mod tests {
    use insta::assert_snapshot;

    use super::*;
    use crate::budget::Budget;
    use crate::fixtures::shop;
    use crate::link::LinkOptions;
    use crate::path::PathOptions;

    fn all() -> Window {
        Window::new(Budget::chars(100_000))
    }

    #[test]
    fn overview() {
        assert_snapshot!(super::overview(&shop(), &all()).text);
    }

    #[test]
    fn ddl_full_and_compressed() {
        let catalog = shop();
        let ids = [
            TableId::new("sales", "orders"),
            TableId::new("sales", "order_items"),
            TableId::new("sales", "big_orders"),
        ];
        let full = DdlOptions {
            quoting: Quoting::Double,
            compress: false,
        };
        assert_snapshot!("ddl_full", super::ddl(&catalog, Some(&ids), &full, &all()).text);
        let compressed = DdlOptions {
            quoting: Quoting::Backtick,
            compress: true,
        };
        assert_snapshot!(
            "ddl_compressed_backticks",
            super::ddl(&catalog, Some(&ids), &compressed, &all()).text
        );
    }

    #[test]
    fn compact_and_json() {
        let catalog = shop();
        assert_snapshot!("compact", super::compact(&catalog, None, &all()).text);
        let ids = [TableId::new("sales", "orders")];
        let rendered = super::json(&catalog, Some(&ids), &all());
        let value: serde_json::Value = serde_json::from_str(&rendered.text).expect("valid JSON");
        insta::assert_json_snapshot!("json", value);
    }

    #[test]
    fn relationships() {
        let catalog = shop();
        assert_snapshot!(
            "relationships_compact",
            super::relationships(&catalog, RelationshipFormat::Compact, true, &all()).text
        );
        assert_snapshot!(
            "relationships_graph",
            super::relationships(&catalog, RelationshipFormat::Graph, true, &all()).text
        );
    }

    #[test]
    fn schema_link_formats() {
        let catalog = shop();
        let link = catalog.schema_link(
            "products ordered by customers in Germany",
            &LinkOptions::default(),
        );
        assert_snapshot!(
            "link_compact",
            super::schema_link(&catalog, &link, LinkFormat::Compact, Quoting::Double, &all()).text
        );
        assert_snapshot!(
            "link_ddl",
            super::schema_link(&catalog, &link, LinkFormat::Ddl, Quoting::Double, &all()).text
        );
        let json = super::schema_link(&catalog, &link, LinkFormat::Json, Quoting::Double, &all());
        let value: serde_json::Value = serde_json::from_str(&json.text).expect("valid JSON");
        insta::assert_json_snapshot!("link_json", value);
    }

    #[test]
    fn join_paths() {
        let catalog = shop();
        let search = catalog
            .find_join_paths(
                &TableId::new("sales", "customers"),
                &TableId::new("sales", "products"),
                &PathOptions::default(),
            )
            .expect("tables exist");
        assert_snapshot!(super::join_paths(&search, &all()).text);
    }

    #[test]
    fn paged_overview_says_what_it_left_out() {
        let window = Window::new(Budget::chars(400));
        assert_snapshot!("overview_page_1", super::overview(&shop(), &window).text);
        assert_snapshot!("overview_page_2", super::overview(&shop(), &window.page(2)).text);
    }
}
