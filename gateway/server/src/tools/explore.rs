//! Schema exploration tools answered from the connection's schema snapshot: `list_schemas`,
//! `explore_table`, `schema_overview`, `schema_statistics`, `schema_ddl`, `schema_link`, `schema_diff`,
//! `get_relationships` and `find_join_path`: their descriptions and rendering; the operations are
//! `sluice_core::ops::explore`.

use std::fmt::Write as _;
use std::sync::Arc;

use sluice_core::auth::Scope;
use sluice_core::ops::explore::ConnectionArgs;
use sluice_core::ops::explore::link::{SchemaLinkArgs, schema_link};
use sluice_core::ops::explore::outline::{
    PagedArgs, RelationshipsArgs, SchemaDdlArgs, SchemaList, SchemaStatistics, SchemaText, get_relationships,
    list_schemas, schema_ddl, schema_diff, schema_overview, schema_statistics,
};
use sluice_core::ops::explore::paths::{JoinPathArgs, JoinPaths, find_join_path};
use sluice_core::ops::explore::table::{ExploreTableArgs, TableExploration, explore_table};
use sluice_core::ops::explore::text::{cell, one_line};
use sluice_core::service::Services;

use crate::tools::{Effect, Meta, Render, ToolSpec, spec};

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
            async move { schema_overview(&s, &ctx.auth, a).await }
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
            async move { schema_ddl(&s, &ctx.auth, a).await }
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
            async move { get_relationships(&s, &ctx.auth, a).await }
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
    specs
}

impl Render for SchemaText {
    fn render(&self) -> String {
        self.text.clone()
    }
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

impl Render for JoinPaths {
    fn render(&self) -> String {
        self.text.clone()
    }
}

impl Render for SchemaStatistics {
    fn render(&self) -> String {
        self.text.clone()
    }
}
