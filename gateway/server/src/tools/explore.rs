//! Schema exploration tools answered from the connection's cached schema snapshot: `list_schemas`,
//! `explore_table`, `schema_overview`, `schema_statistics`, `schema_ddl`, `schema_link`, `schema_diff`,
//! `get_relationships` and `find_join_path`. The data-reading ones (`explore_column`, `explore_columns`,
//! `compare_join_types`, `get_date_boundaries`) live in `explore_data.rs`.
//!
//! The snapshot comes from the connector's fixed catalog SQL and is audited as a system query. Anything
//! that reads data for an agent's request is SQL the gateway builds from introspected names, quoted for
//! the dialect, and run through [`Services::query`] (governance, then execution, then audit).

#[path = "explore_data.rs"]
mod data;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_catalog::{
    Budget, Catalog, DdlOptions, LinkFormat, LinkOptions, PathOptions, Quoting, RelationshipFormat, Rendered,
    Table, TableId, TableKind, Window, render,
};

use crate::tools::{Effect, Meta, Render, ToolSpec, spec};
use sluice_core::auth::{AuthContext, Scope};
use sluice_core::registry::Connection;
use sluice_core::schema_cache::Lookup;
use sluice_core::service::{AuditFacts, Outcome, Services, ToolError};

/// Every schema text these tools return fits this many estimated tokens (four characters each); what does
/// not fit is named in a footer and reachable with `page`.
pub const BUDGET_TOKENS: usize = 4_000;

fn window(page: Option<usize>) -> Window {
    Window::new(Budget::tokens(BUDGET_TOKENS)).page(page.unwrap_or(1).max(1))
}

/// The connection and its schema snapshot, with the audit facts of a system (introspection) call.
pub(crate) struct Snapshot {
    pub conn: Arc<Connection>,
    pub lookup: Lookup,
}

impl Snapshot {
    pub fn catalog(&self) -> &Catalog {
        &self.lookup.current.catalog
    }

    pub fn quoting(&self) -> Quoting {
        self.conn.dialect.quoting()
    }

    /// Resolves an agent's table name to one table of the snapshot, or says which names exist.
    pub fn table(&self, name: &str) -> Result<&Table, ToolError> {
        let id = self
            .catalog()
            .resolve_table(name)
            .map_err(|e| ToolError::invalid(format!("{e} (connection '{}')", self.conn.name)))?;
        self.catalog()
            .table(&id)
            .ok_or_else(|| ToolError::failed(format!("table {id} vanished from the snapshot")))
    }
}

pub(crate) fn system_audit(connection: &str) -> AuditFacts {
    AuditFacts {
        connection: Some(connection.to_owned()),
        system_query: true,
        ..Default::default()
    }
}

/// Looks the connection up and takes its snapshot (from the cache unless `refresh`).
pub(crate) async fn snapshot(
    s: &Services,
    auth: &AuthContext,
    connection: &str,
    refresh: bool,
    audit: &mut AuditFacts,
) -> Result<Snapshot, ToolError> {
    let conn = s.connection(auth, connection)?;
    audit.dialect = Some(conn.dialect);
    let lookup = s.schema_cache.get(&conn, refresh).await?;
    audit.rows = Some(lookup.current.catalog.tables().len() as u64);
    Ok(Snapshot { conn, lookup })
}

/// Finds a column of `table` by exact, then case-insensitive, name.
pub(crate) fn column<'a>(table: &'a Table, name: &str) -> Result<&'a sluice_catalog::Column, ToolError> {
    table
        .column(name)
        .or_else(|| table.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
        .ok_or_else(|| {
            let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
            ToolError::invalid(format!(
                "table {} has no column '{name}'; its columns: {}",
                table.id,
                names.join(", ")
            ))
        })
}

// ---------------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagedArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// Page of the output (1-based) when the first one says more was left out.
    #[serde(default)]
    pub page: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExploreTableArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// `table` or `schema.table` (e.g. `public.customers`).
    pub table_name: String,
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

fn default_link_format() -> String {
    "ddl".to_owned()
}

fn default_max_tables_link() -> usize {
    20
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaLinkArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// The question in plain words, e.g. "revenue by customer country last quarter".
    pub question: String,
    /// `ddl` (default), `compact` or `json`.
    #[serde(default = "default_link_format")]
    pub format: String,
    /// Most tables returned, joining tables included (default 20).
    #[serde(default = "default_max_tables_link")]
    pub max_tables: usize,
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

fn default_max_hops() -> usize {
    4
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinPathArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// Source table, `table` or `schema.table`.
    pub from_table: String,
    /// Target table, `table` or `schema.table`.
    pub to_table: String,
    /// Most joins in a path, 1 to 6 (default 4).
    #[serde(default = "default_max_hops")]
    pub max_hops: usize,
}

// ---------------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------------

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
    fn new(connection: &str, rendered: Rendered, extra_notes: Vec<String>) -> SchemaText {
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

impl Render for SchemaText {
    fn render(&self) -> String {
        self.text.clone()
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

impl Render for SchemaList {
    fn render(&self) -> String {
        let mut text = format!("Schemas in '{}':\n", self.connection);
        for s in &self.schemas {
            let _ = writeln!(text, "  {}: {} tables, {} views", s.name, s.tables, s.views);
        }
        let _ = write!(text, "[{} schemas]", self.schemas.len());
        text
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ExploredColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    pub primary_key: bool,
    pub default: Option<String>,
    pub comment: Option<String>,
    /// `schema.table.column` this column joins to (declared or inferred).
    pub references: Option<String>,
    /// A few distinct values from the first rows.
    pub samples: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct JoinOut {
    pub from: String,
    pub from_columns: Vec<String>,
    pub to: String,
    pub to_columns: Vec<String>,
    /// `declared` or `inferred`.
    pub origin: String,
    pub confidence: f32,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TableExploration {
    pub connection: String,
    pub schema: String,
    pub name: String,
    pub kind: String,
    pub row_estimate: Option<u64>,
    pub comment: Option<String>,
    pub columns: Vec<ExploredColumn>,
    pub primary_key: Vec<String>,
    /// Joins from this table to others.
    pub references: Vec<JoinOut>,
    /// Joins from other tables to this one.
    pub referenced_by: Vec<JoinOut>,
    pub indexes: Vec<String>,
    /// Why samples are missing, when they are.
    pub samples_note: Option<String>,
    /// Columns not listed, to stay within the size budget.
    pub columns_omitted: usize,
}

/// Most columns `explore_table` lists; wider tables say how many were left out.
const MAX_EXPLORED_COLUMNS: usize = 150;

impl Render for TableExploration {
    fn render(&self) -> String {
        let mut text = format!("Table: {}.{} ({})", self.schema, self.name, self.kind);
        if let Some(rows) = self.row_estimate {
            let _ = write!(text, ", ~{rows} rows");
        }
        if let Some(c) = &self.comment {
            let _ = write!(text, "\nComment: {c}");
        }
        let _ = write!(
            text,
            "\n\nColumns ({}):",
            self.columns.len() + self.columns_omitted
        );
        for c in &self.columns {
            let mut flags = Vec::new();
            if c.primary_key {
                flags.push("PK".to_owned());
            }
            if !c.nullable {
                flags.push("NOT NULL".to_owned());
            }
            if let Some(r) = &c.references {
                flags.push(format!("→ {r}"));
            }
            let _ = write!(text, "\n  {} {}", c.name, c.data_type);
            if !flags.is_empty() {
                let _ = write!(text, " [{}]", flags.join(", "));
            }
            if let Some(comment) = &c.comment {
                let _ = write!(text, " -- {}", one_line(comment, 120));
            }
            if !c.samples.is_empty() {
                let samples: Vec<String> = c.samples.iter().map(|v| one_line(&cell(v), 40)).collect();
                let _ = write!(text, "\n      e.g. {}", samples.join(", "));
            }
        }
        if self.columns_omitted > 0 {
            let _ = write!(text, "\n  … {} more columns omitted", self.columns_omitted);
        }
        for (title, joins) in [
            ("Joins to", &self.references),
            ("Referenced by", &self.referenced_by),
        ] {
            if joins.is_empty() {
                continue;
            }
            let _ = write!(text, "\n\n{title} ({}):", joins.len());
            for j in joins.iter().take(40) {
                let _ = write!(
                    text,
                    "\n  {}({}) → {}({}) [{}]",
                    j.from,
                    j.from_columns.join(", "),
                    j.to,
                    j.to_columns.join(", "),
                    if j.origin == "declared" {
                        "declared".to_owned()
                    } else {
                        format!("inferred {:.2}: {}", j.confidence, j.reason)
                    }
                );
            }
            if joins.len() > 40 {
                let _ = write!(text, "\n  … {} more omitted", joins.len() - 40);
            }
        }
        if !self.indexes.is_empty() {
            let _ = write!(text, "\n\nIndexes: {}", self.indexes.join("; "));
        }
        if let Some(note) = &self.samples_note {
            let _ = write!(text, "\n\nSamples: {note}");
        }
        text
    }
}

/// A JSON cell as an agent would type it: strings bare, everything else as JSON.
pub(crate) fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One line, at most `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > max {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        line
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PathOut {
    pub tables: Vec<String>,
    pub hops: usize,
    pub score: f32,
    pub joins: Vec<JoinOut>,
    /// Ready-to-run SQL joining the path's tables; checked by governance before it was returned.
    pub sql: String,
    /// `allowed`, or why governance would refuse the SQL on this connection.
    pub governance: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct JoinPaths {
    pub connection: String,
    pub from_table: String,
    pub to_table: String,
    pub max_hops: usize,
    pub paths: Vec<PathOut>,
    pub text: String,
    pub notes: Vec<String>,
}

impl Render for JoinPaths {
    fn render(&self) -> String {
        self.text.clone()
    }
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

impl Render for SchemaStatistics {
    fn render(&self) -> String {
        self.text.clone()
    }
}

// ---------------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------------

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let mut specs = Vec::new();
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "list_schemas",
            title: "List schemas",
            description: "List the schemas (namespaces) of a connection with how many tables and views each \
                holds. Tables are always addressed as `schema.table`, so same-named tables in two schemas \
                never mix.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: ConnectionArgs| {
            let s = Arc::clone(&s);
            async move { list_schemas(&s, &ctx.auth, &a.connection_name).await }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "explore_table",
            title: "Explore a table",
            description: "Deep-dive one table: columns with types, keys, comments, what it joins to and what \
                joins to it (declared and inferred), indexes, and a few sample values per column. Use it \
                after list_tables or schema_link on the tables a question needs.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: ExploreTableArgs| {
            let s = Arc::clone(&s);
            async move { explore_table(&s, &ctx.auth, &a.connection_name, &a.table_name).await }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "schema_overview",
            title: "Schema overview",
            description: "A compact overview of a whole connection: counts per schema, then one line per table \
                with its size, key and joins. Fits a fixed size budget; `page` continues where it stopped.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: PagedArgs| {
            let s = Arc::clone(&s);
            async move {
                rendered(&s, &ctx.auth, &a.connection_name, |snap| {
                    render::overview(snap.catalog(), &window(a.page))
                })
                .await
            }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "schema_statistics",
            title: "Schema statistics",
            description: "Statistics about a connection's schema: counts of schemas, tables, views, columns \
                and joins, the largest and widest tables, tables without a primary key, column type mix \
                and tables that join to nothing.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: ConnectionArgs| {
            let s = Arc::clone(&s);
            async move { schema_statistics(&s, &ctx.auth, &a.connection_name).await }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "schema_ddl",
            title: "Schema as DDL",
            description: "The schema as CREATE TABLE statements with keys, foreign keys, comments and inferred \
                joins as comments; `compress` gives one line per table. At most `max_tables` tables per \
                page, within a fixed size budget; the last line says what was left out and which `page` \
                continues.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: SchemaDdlArgs| {
            let s = Arc::clone(&s);
            async move {
                if a.max_tables == 0 {
                    return Outcome::fail(
                        ToolError::invalid("max_tables must be at least 1"),
                        system_audit(&a.connection_name),
                    );
                }
                rendered(&s, &ctx.auth, &a.connection_name, |snap| {
                    let options = DdlOptions {
                        quoting: snap.quoting(),
                        compress: a.compress,
                    };
                    render::ddl(snap.catalog(), None, &options, &window(a.page).max_items(a.max_tables))
                })
                .await
            }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "schema_link",
            title: "Find the tables for a question",
            description: "Given a question in plain words, return the smallest useful set of tables (ranked \
                by matches on table and column names, comments and values sampled from text columns, plus \
                the tables that join them) with the joins among them. `format`: `ddl` (default), \
                `compact` or `json`.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: SchemaLinkArgs| {
            let s = Arc::clone(&s);
            async move { schema_link(&s, &ctx.auth, a).await }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "schema_diff",
            title: "What changed in the schema",
            description: "Introspect the connection again and list what changed since the previous snapshot \
                the gateway took: schemas and tables added or removed, columns added, removed or retyped, \
                keys and indexes changed. The first call takes the baseline.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: PagedArgs| {
            let s = Arc::clone(&s);
            async move { schema_diff(&s, &ctx.auth, &a.connection_name, a.page).await }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "get_relationships",
            title: "Table relationships",
            description: "Every join between tables: declared foreign keys and joins inferred from column \
                names and keys (with a confidence and the reason). `format`: `compact` (one line per join, \
                default) or `graph` (one line per table).",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: RelationshipsArgs| {
            let s = Arc::clone(&s);
            async move {
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
                rendered(&s, &ctx.auth, &a.connection_name, |snap| {
                    render::relationships(snap.catalog(), format, true, &window(a.page))
                })
                .await
            }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "find_join_path",
            title: "Find how two tables join",
            description: "The best join paths between two tables (declared foreign keys first, then joins \
                inferred from names and keys; fewer hops and joins onto keys win), each with the exact join \
                columns and ready-to-run SQL that governance has checked. `max_hops` 1 to 6 (default 4).",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: JoinPathArgs| {
            let s = Arc::clone(&s);
            async move { find_join_path(&s, &ctx.auth, a).await }
        },
    ));
    specs.extend(data::tools(services));
    specs
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

fn join_out(edge: &sluice_catalog::JoinEdge) -> JoinOut {
    JoinOut {
        from: edge.from.to_string(),
        from_columns: edge.from_columns.clone(),
        to: edge.to.to_string(),
        to_columns: edge.to_columns.clone(),
        origin: if edge.is_declared() {
            "declared"
        } else {
            "inferred"
        }
        .to_owned(),
        confidence: edge.confidence,
        reason: edge.reason.clone(),
    }
}

/// How many rows `explore_table` reads to pick sample values from.
const SAMPLE_ROWS: u64 = 20;
/// Distinct sample values shown per column.
const SAMPLES_PER_COLUMN: usize = 5;

pub async fn explore_table(
    s: &Services,
    auth: &AuthContext,
    connection: &str,
    table_name: &str,
) -> Outcome<TableExploration> {
    let mut audit = system_audit(connection);
    let snap = match snapshot(s, auth, connection, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let table = match snap.table(table_name) {
        Ok(t) => t,
        Err(e) => return Outcome::fail(e, audit),
    };
    let edges = snap.catalog().edges_of(&table.id);
    let references: Vec<JoinOut> = edges
        .iter()
        .filter(|e| e.from == table.id)
        .map(|e| join_out(e))
        .collect();
    let referenced_by: Vec<JoinOut> = edges
        .iter()
        .filter(|e| e.to == table.id && e.from != table.id)
        .map(|e| join_out(e))
        .collect();

    // Samples: the first rows of the table through the governed path, like any agent query.
    let quoting = snap.quoting();
    let shown: Vec<&sluice_catalog::Column> = table.columns.iter().take(MAX_EXPLORED_COLUMNS).collect();
    let select: Vec<String> = shown.iter().map(|c| quoting.ident(&c.name)).collect();
    let mut samples: Vec<Vec<serde_json::Value>> = vec![Vec::new(); shown.len()];
    let mut samples_note = None;
    if !select.is_empty() {
        let sql = format!(
            "SELECT {} FROM {} LIMIT {SAMPLE_ROWS}",
            select.join(", "),
            table.id.sql(quoting)
        );
        let outcome = s.query(auth, &snap.conn.name, &sql, SAMPLE_ROWS).await;
        audit = AuditFacts {
            system_query: false,
            ..outcome.audit
        };
        match outcome.result {
            Ok(result) => {
                for row in &result.rows {
                    for (i, value) in row.iter().enumerate() {
                        let Some(column) = samples.get_mut(i) else {
                            continue;
                        };
                        if !value.is_null() && column.len() < SAMPLES_PER_COLUMN && !column.contains(value) {
                            column.push(value.clone());
                        }
                    }
                }
                if result.rows.is_empty() {
                    samples_note = Some("the table has no rows".to_owned());
                }
            }
            Err(e) => samples_note = Some(format!("not available: {}", e.message)),
        }
    }

    let references_of = |name: &str| {
        edges
            .iter()
            .filter(|e| e.from == table.id && e.from_columns.len() == 1 && e.from_columns[0] == name)
            .max_by(|a, b| a.weight().total_cmp(&b.weight()))
            .map(|e| format!("{}.{}", e.to, e.to_columns.join(",")))
    };
    let columns = shown
        .iter()
        .zip(samples)
        .map(|(c, samples)| ExploredColumn {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            nullable: c.nullable,
            primary_key: table.primary_key.contains(&c.name),
            default: c.default.clone(),
            comment: c.comment.clone(),
            references: references_of(&c.name),
            samples,
        })
        .collect();
    let mut indexes: Vec<String> = table
        .unique_constraints
        .iter()
        .map(|u| format!("UNIQUE ({})", u.columns.join(", ")))
        .collect();
    indexes.extend(table.indexes.iter().map(|i| {
        format!(
            "{}{} ({})",
            if i.unique { "UNIQUE " } else { "" },
            i.name,
            i.columns.join(", ")
        )
    }));
    Outcome {
        result: Ok(TableExploration {
            connection: snap.conn.name.clone(),
            schema: table.id.schema.clone(),
            name: table.id.name.clone(),
            kind: table.kind.label().to_owned(),
            row_estimate: table.row_estimate,
            comment: table.comment.clone(),
            columns,
            primary_key: table.primary_key.clone(),
            references,
            referenced_by,
            indexes,
            samples_note,
            columns_omitted: table.columns.len().saturating_sub(MAX_EXPLORED_COLUMNS),
        }),
        audit,
    }
}

fn type_family(data_type: &str) -> &'static str {
    let t = data_type.to_ascii_lowercase();
    if t.contains("bool") || t == "bit" || t == "tinyint(1)" {
        "boolean"
    } else if t.contains("int") && !t.contains("interval") || t.contains("serial") {
        "integer"
    } else if t.contains("dec")
        || t.contains("num")
        || t.contains("real")
        || t.contains("double")
        || t.contains("float")
        || t.contains("money")
    {
        "decimal"
    } else if t.contains("date") || t.contains("time") {
        "temporal"
    } else if t.contains("char")
        || t.contains("text")
        || t.contains("string")
        || t.contains("clob")
        || t.contains("uuid")
        || t.contains("enum")
    {
        "text"
    } else {
        "other"
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

pub async fn schema_link(s: &Services, auth: &AuthContext, a: SchemaLinkArgs) -> Outcome<SchemaText> {
    let mut audit = system_audit(&a.connection_name);
    let format = match a.format.as_str() {
        "ddl" => LinkFormat::Ddl,
        "compact" => LinkFormat::Compact,
        "json" => LinkFormat::Json,
        other => {
            return Outcome::fail(
                ToolError::invalid(format!(
                    "unknown format '{other}'; use `ddl`, `compact` or `json`"
                )),
                audit,
            );
        }
    };
    if a.question.trim().is_empty() {
        return Outcome::fail(ToolError::invalid("question must not be empty"), audit);
    }
    if a.max_tables == 0 {
        return Outcome::fail(ToolError::invalid("max_tables must be at least 1"), audit);
    }
    let snap = match snapshot(s, auth, &a.connection_name, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    // Values sampled from the text columns let a question match data words (`paypal`, `Canada`) that no
    // table or column name contains; they are read once per snapshot, within a budget.
    let (sampled, audit) = data::link_samples(s, auth, &snap, audit).await;
    let catalog = &sampled.catalog;
    let link = catalog.schema_link(
        &a.question,
        &LinkOptions {
            max_tables: a.max_tables,
            ..LinkOptions::default()
        },
    );
    let mut out = render::schema_link(catalog, &link, format, snap.quoting(), &window(None));
    let mut notes: Vec<String> = link.findings.iter().map(|f| f.message.clone()).collect();
    notes.push(format!(
        "sampled values: {} of {} text columns have few enough distinct values to match on",
        sampled.columns, sampled.candidates
    ));
    notes.extend(sampled.notes.iter().cloned());
    // The agent reads the text: a sampling cut short is said there too (JSON stays parseable, so only in
    // the notes for that format).
    if format != LinkFormat::Json {
        let prefix = if format == LinkFormat::Ddl { "-- " } else { "" };
        for note in &sampled.notes {
            let _ = write!(out.text, "\n{prefix}{note}");
        }
    }
    Outcome {
        result: Ok(SchemaText::new(&snap.conn.name, out, notes)),
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

pub async fn find_join_path(s: &Services, auth: &AuthContext, a: JoinPathArgs) -> Outcome<JoinPaths> {
    let mut audit = system_audit(&a.connection_name);
    if !(1..=6).contains(&a.max_hops) {
        return Outcome::fail(
            ToolError::invalid(format!("max_hops must be between 1 and 6, not {}", a.max_hops)),
            audit,
        );
    }
    let snap = match snapshot(s, auth, &a.connection_name, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    let (from, to) = match (snap.table(&a.from_table), snap.table(&a.to_table)) {
        (Ok(f), Ok(t)) => (f.id.clone(), t.id.clone()),
        (Err(e), _) | (_, Err(e)) => return Outcome::fail(e, audit),
    };
    let options = PathOptions {
        max_hops: a.max_hops,
        quoting: snap.quoting(),
        ..PathOptions::default()
    };
    let search = match snap.catalog().find_join_paths(&from, &to, &options) {
        Ok(search) => search,
        Err(e) => return Outcome::fail(ToolError::invalid(e.to_string()), audit),
    };
    // Every path's SQL must pass this connection's governance, so an agent can run it as returned.
    let policy = &snap.conn.policy;
    let cap = s.row_cap(&snap.conn, sluice_core::config::DEFAULT_ROW_LIMIT);
    let paths: Vec<PathOut> = search
        .paths
        .iter()
        .map(|p| {
            let verdict = sluice_governance::govern(&p.sql, snap.conn.dialect, policy, cap);
            let governance = match sluice_core::service::allowed_sql(&verdict) {
                Ok(_) => "allowed".to_owned(),
                Err(e) => format!("refused: {}", e.message),
            };
            PathOut {
                tables: p.tables.iter().map(TableId::to_string).collect(),
                hops: p.hops,
                score: p.score,
                joins: p
                    .steps
                    .iter()
                    .map(|step| JoinOut {
                        from: step.left.to_string(),
                        from_columns: step.left_columns.clone(),
                        to: step.right.to_string(),
                        to_columns: step.right_columns.clone(),
                        origin: match step.origin {
                            sluice_catalog::EdgeOrigin::Declared { .. } => "declared",
                            sluice_catalog::EdgeOrigin::Inferred { .. } => "inferred",
                        }
                        .to_owned(),
                        confidence: step.confidence,
                        reason: step.reason.clone(),
                    })
                    .collect(),
                sql: p.sql.clone(),
                governance,
            }
        })
        .collect();
    let mut rendered = render::join_paths(&search, &window(None));
    let refused: Vec<String> = paths
        .iter()
        .enumerate()
        .filter(|(_, p)| p.governance != "allowed")
        .map(|(i, p)| format!("path {}: governance {}", i + 1, p.governance))
        .collect();
    if !refused.is_empty() {
        rendered.text = format!("{}\n{}", refused.join("\n"), rendered.text);
    }
    let mut notes: Vec<String> = search.findings.iter().map(|f| f.message.clone()).collect();
    notes.extend(refused);
    if paths.is_empty() {
        rendered.text = format!(
            "No join path found between {from} and {to} within {} hops.\n{}",
            a.max_hops, rendered.text
        );
    }
    Outcome {
        result: Ok(JoinPaths {
            connection: snap.conn.name.clone(),
            from_table: from.to_string(),
            to_table: to.to_string(),
            max_hops: a.max_hops,
            paths,
            text: rendered.text,
            notes,
        }),
        audit,
    }
}
