//! Whole-schema views answered from the snapshot: `list_schemas`, `schema_overview`, `schema_statistics`,
//! `schema_ddl`, `get_relationships` and `schema_diff`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_catalog::{DdlOptions, RelationshipFormat, Rendered, Table, TableKind, render};

use super::types::type_family;
use super::{Snapshot, snapshot, system_audit, window};
use crate::auth::AuthContext;
use crate::service::{Outcome, Services, ToolError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagedArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// Page of the output (1-based) when the first one says more was left out.
    #[serde(default)]
    pub page: Option<usize>,
}

fn default_max_tables_ddl() -> usize {
    50
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaDdlArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// Most tables per page (default 50).
    #[serde(default = "default_max_tables_ddl")]
    pub max_tables: usize,
    /// One line per table, without comments, defaults and indexes.
    #[serde(default)]
    pub compress: bool,
    /// Page of the output (1-based) when the first one says more was left out.
    #[serde(default)]
    pub page: Option<usize>,
}

fn default_relationship_format() -> String {
    "compact".to_owned()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationshipsArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// `compact` (one line per join, default) or `graph` (one line per table).
    #[serde(default = "default_relationship_format")]
    pub format: String,
    /// Page of the output (1-based) when the first one says more was left out.
    #[serde(default)]
    pub page: Option<usize>,
}

/// A schema text packed into the size budget, with what was left out.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SchemaText {
    pub connection: String,
    pub text: String,
    pub page: usize,
    pub pages: usize,
    /// Items (tables, joins, paths, changes) in the whole output.
    pub total: usize,
    /// Items not on this page.
    pub omitted: usize,
    pub next_page: Option<usize>,
    pub estimated_tokens: usize,
    /// Notes from the analysis (ambiguous inferences, dangling keys, searches cut short).
    pub notes: Vec<String>,
}

impl SchemaText {
    pub(super) fn new(connection: &str, rendered: Rendered, extra_notes: Vec<String>) -> SchemaText {
        let mut notes: Vec<String> = rendered.findings.iter().map(|f| f.message.clone()).collect();
        notes.extend(extra_notes);
        SchemaText {
            connection: connection.to_owned(),
            text: rendered.text,
            page: rendered.page,
            pages: rendered.pages,
            total: rendered.total,
            omitted: rendered.omitted,
            next_page: rendered.next_page,
            estimated_tokens: rendered.estimated_tokens,
            notes,
        }
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SchemaOut {
    pub name: String,
    pub tables: usize,
    pub views: usize,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SchemaList {
    pub connection: String,
    pub schemas: Vec<SchemaOut>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SchemaStatistics {
    pub connection: String,
    pub schemas: usize,
    pub tables: usize,
    pub views: usize,
    pub columns: usize,
    pub declared_joins: usize,
    pub inferred_joins: usize,
    /// Sum of the engines' row estimates over tables that have one.
    pub estimated_rows: u64,
    pub tables_without_primary_key: Vec<String>,
    /// Largest tables by row estimate (at most 15).
    pub largest_tables: Vec<TableSize>,
    /// Widest tables by column count (at most 10).
    pub widest_tables: Vec<TableSize>,
    /// Columns per type family (integer, decimal, text, temporal, boolean, other).
    pub column_types: BTreeMap<String, usize>,
    /// Tables that join to nothing, declared or inferred.
    pub isolated_tables: Vec<String>,
    pub text: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TableSize {
    pub table: String,
    pub value: u64,
}

/// Runs a renderer over the connection's snapshot.
async fn rendered(
    s: &Services,
    auth: &AuthContext,
    connection: &str,
    render: impl FnOnce(&Snapshot) -> Rendered,
) -> Outcome<SchemaText> {
    let mut audit = system_audit(connection);
    let snap = match snapshot(s, auth, connection, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let out = render(&snap);
    Outcome {
        result: Ok(SchemaText::new(&snap.conn.name, out, Vec::new())),
        audit,
    }
}

/// `schema_overview`: counts per schema, then one line per table with its size, key and joins.
pub async fn schema_overview(s: &Services, auth: &AuthContext, a: PagedArgs) -> Outcome<SchemaText> {
    rendered(s, auth, &a.connection_name, |snap| {
        render::overview(snap.catalog(), &window(a.page))
    })
    .await
}

/// `schema_ddl`: the schema as CREATE TABLE statements, at most `max_tables` per page.
pub async fn schema_ddl(s: &Services, auth: &AuthContext, a: SchemaDdlArgs) -> Outcome<SchemaText> {
    if a.max_tables == 0 {
        return Outcome::fail(
            ToolError::invalid("max_tables must be at least 1"),
            system_audit(&a.connection_name),
        );
    }
    rendered(s, auth, &a.connection_name, |snap| {
        let options = DdlOptions {
            quoting: snap.quoting(),
            compress: a.compress,
        };
        render::ddl(
            snap.catalog(),
            None,
            &options,
            &window(a.page).max_items(a.max_tables),
        )
    })
    .await
}

/// `get_relationships`: every declared and inferred join, one line per join or per table.
pub async fn get_relationships(
    s: &Services,
    auth: &AuthContext,
    a: RelationshipsArgs,
) -> Outcome<SchemaText> {
    let format = match a.format.as_str() {
        "compact" => RelationshipFormat::Compact,
        "graph" => RelationshipFormat::Graph,
        other => {
            return Outcome::fail(
                ToolError::invalid(format!("unknown format '{other}'; use `compact` or `graph`")),
                system_audit(&a.connection_name),
            );
        }
    };
    rendered(s, auth, &a.connection_name, |snap| {
        render::relationships(snap.catalog(), format, true, &window(a.page))
    })
    .await
}

pub async fn list_schemas(s: &Services, auth: &AuthContext, connection: &str) -> Outcome<SchemaList> {
    let mut audit = system_audit(connection);
    let snap = match snapshot(s, auth, connection, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let catalog = snap.catalog();
    let schemas = catalog
        .snapshot()
        .schemas
        .iter()
        .map(|name| {
            let of_schema = catalog.tables().iter().filter(|t| &t.id.schema == name);
            let (views, tables): (Vec<&Table>, Vec<&Table>) =
                of_schema.partition(|t| t.kind == TableKind::View);
            SchemaOut {
                name: name.clone(),
                tables: tables.len(),
                views: views.len(),
            }
        })
        .collect();
    Outcome {
        result: Ok(SchemaList {
            connection: snap.conn.name.clone(),
            schemas,
        }),
        audit,
    }
}

pub async fn schema_statistics(
    s: &Services,
    auth: &AuthContext,
    connection: &str,
) -> Outcome<SchemaStatistics> {
    let mut audit = system_audit(connection);
    let snap = match snapshot(s, auth, connection, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let catalog = snap.catalog();
    let tables = catalog.tables();
    let base: Vec<&Table> = tables.iter().filter(|t| t.kind != TableKind::View).collect();
    let declared = catalog.edges().iter().filter(|e| e.is_declared()).count();
    let mut largest: Vec<TableSize> = base
        .iter()
        .filter_map(|t| {
            t.row_estimate.map(|r| TableSize {
                table: t.id.to_string(),
                value: r,
            })
        })
        .collect();
    largest.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.table.cmp(&b.table)));
    let estimated_rows = largest.iter().map(|t| t.value).sum();
    largest.truncate(15);
    let mut widest: Vec<TableSize> = tables
        .iter()
        .map(|t| TableSize {
            table: t.id.to_string(),
            value: t.columns.len() as u64,
        })
        .collect();
    widest.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.table.cmp(&b.table)));
    widest.truncate(10);
    let mut column_types = BTreeMap::new();
    for c in tables.iter().flat_map(|t| &t.columns) {
        *column_types
            .entry(type_family(&c.data_type).to_owned())
            .or_insert(0) += 1;
    }
    let no_pk: Vec<String> = base
        .iter()
        .filter(|t| t.primary_key.is_empty())
        .map(|t| t.id.to_string())
        .collect();
    let isolated: Vec<String> = tables
        .iter()
        .filter(|t| catalog.edges_of(&t.id).is_empty())
        .map(|t| t.id.to_string())
        .collect();
    let views = tables.len() - base.len();
    let columns: usize = tables.iter().map(|t| t.columns.len()).sum();

    let mut text = format!(
        "Schema statistics for '{}': {} schemas, {} tables, {} views, {} columns, {} declared and {} inferred joins, ~{} rows in all\n",
        snap.conn.name,
        catalog.snapshot().schemas.len(),
        base.len(),
        views,
        columns,
        declared,
        catalog.edges().len() - declared,
        estimated_rows
    );
    let list = |items: &[String]| {
        let shown: Vec<&str> = items.iter().take(30).map(String::as_str).collect();
        let more = items.len().saturating_sub(30);
        if more > 0 {
            format!("{} … and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    };
    if !largest.is_empty() {
        let _ = writeln!(
            text,
            "Largest tables: {}",
            largest
                .iter()
                .map(|t| format!("{} (~{} rows)", t.table, t.value))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        text,
        "Widest tables: {}",
        widest
            .iter()
            .map(|t| format!("{} ({} columns)", t.table, t.value))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        text,
        "Column types: {}",
        column_types
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !no_pk.is_empty() {
        let _ = writeln!(
            text,
            "Tables without a primary key ({}): {}",
            no_pk.len(),
            list(&no_pk)
        );
    }
    if !isolated.is_empty() {
        let _ = writeln!(
            text,
            "Tables that join to nothing ({}): {}",
            isolated.len(),
            list(&isolated)
        );
    }
    Outcome {
        result: Ok(SchemaStatistics {
            connection: snap.conn.name.clone(),
            schemas: catalog.snapshot().schemas.len(),
            tables: base.len(),
            views,
            columns,
            declared_joins: declared,
            inferred_joins: catalog.edges().len() - declared,
            estimated_rows,
            tables_without_primary_key: no_pk,
            largest_tables: largest,
            widest_tables: widest,
            column_types,
            isolated_tables: isolated,
            text: text.trim_end().to_owned(),
        }),
        audit,
    }
}

pub async fn schema_diff(
    s: &Services,
    auth: &AuthContext,
    connection: &str,
    page: Option<usize>,
) -> Outcome<SchemaText> {
    let mut audit = system_audit(connection);
    let snap = match snapshot(s, auth, connection, true, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let result = match &snap.lookup.previous {
        Some(previous) => {
            let diff = sluice_catalog::diff(previous.snapshot(), snap.lookup.current.snapshot());
            let out = sluice_catalog::render_diff(&diff, &window(page));
            SchemaText::new(&snap.conn.name, out, Vec::new())
        }
        None => {
            let tables = snap.catalog().tables().len();
            let text = format!(
                "No earlier snapshot of '{}' to compare with: this one ({tables} tables) is now the baseline. \
                 Call schema_diff again later to see what changed.",
                snap.conn.name
            );
            SchemaText {
                connection: snap.conn.name.clone(),
                estimated_tokens: sluice_catalog::estimate_tokens(&text),
                text,
                page: 1,
                pages: 1,
                total: 0,
                omitted: 0,
                next_page: None,
                notes: Vec::new(),
            }
        }
    };
    Outcome {
        result: Ok(result),
        audit,
    }
}
