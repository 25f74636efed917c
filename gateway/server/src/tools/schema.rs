//! Schema tools: `list_database_connections`, `list_tables` and `describe_table`: their descriptions and
//! rendering; the operations are `sluice_core::ops::schema`.

use std::fmt::Write as _;
use std::sync::Arc;

use sluice_core::auth::Scope;
use sluice_core::ops::schema::{
    ConnectionArgs, ConnectionList, DescribeTableArgs, TableDescription, TableList, describe_table,
    list_connections, list_tables,
};
use sluice_core::service::Services;

use crate::mcp::render;
use crate::tools::{Effect, Meta, NoArgs, Render, ToolSpec, spec};

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let s = Arc::clone(services);
    let connections = spec(
        Meta {
            name: "list_database_connections",
            title: "List database connections",
            description: "List the database connections this API key can use: name, kind (engine) and SQL \
                dialect. Use a connection's name as `connection_name` in the other tools.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, _: NoArgs| {
            let out = list_connections(&s, &ctx.auth);
            async move { out }
        },
    );
    let s = Arc::clone(services);
    let tables = spec(
        Meta {
            name: "list_tables",
            title: "List tables and views",
            description: "List the tables and views of a connection with their schema, kind, estimated row \
                count and column count.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: ConnectionArgs| {
            let s = Arc::clone(&s);
            async move { list_tables(&s, &ctx.auth, &a.connection_name).await }
        },
    );
    let s = Arc::clone(services);
    let describe = spec(
        Meta {
            name: "describe_table",
            title: "Describe a table",
            description: "Describe one table or view: columns with types, nullability, defaults and comments, \
                the primary key and foreign keys. `table_name` may be `table` or `schema.table`.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: DescribeTableArgs| {
            let s = Arc::clone(&s);
            async move { describe_table(&s, &ctx.auth, &a.connection_name, &a.table_name).await }
        },
    );
    vec![connections, tables, describe]
}

impl Render for ConnectionList {
    fn render(&self) -> String {
        if self.connections.is_empty() {
            return "No database connections are configured. Add one with `sluice connection add`."
                .to_owned();
        }
        let mut text = String::new();
        for c in &self.connections {
            let _ = write!(text, "- {} ({}, dialect {})", c.name, c.kind, c.dialect);
            if let Some(d) = &c.description {
                let _ = write!(text, " — {d}");
            }
            text.push('\n');
        }
        let _ = write!(text, "[{} connections]", self.connections.len());
        text
    }
}

impl Render for TableList {
    fn render(&self) -> String {
        if self.tables.is_empty() {
            return format!("Connection '{}' has no tables or views.", self.connection);
        }
        let header = ["table", "kind", "rows (est.)", "columns"]
            .map(str::to_owned)
            .to_vec();
        let rows: Vec<Vec<String>> = self
            .tables
            .iter()
            .map(|tb| {
                vec![
                    format!("{}.{}", tb.schema, tb.name),
                    tb.kind.clone(),
                    tb.row_estimate
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "-".to_owned()),
                    tb.column_count.to_string(),
                ]
            })
            .collect();
        let mut text = render::table(&header, &rows);
        let _ = write!(
            text,
            "\n[{} tables and views in '{}']",
            self.tables.len(),
            self.connection
        );
        text
    }
}

impl Render for TableDescription {
    fn render(&self) -> String {
        render::describe(self)
    }
}
