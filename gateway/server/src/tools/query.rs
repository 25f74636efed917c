//! Query tools: `query_database` and `validate_sql`: descriptions and rendering; the operations (governed
//! execution paged with cursors, governance only) are `sluice_core::ops::query`.

use std::sync::Arc;

use crate::mcp::render;
use crate::tools::{Effect, Meta, Render, ToolSpec, spec};
use sluice_core::auth::Scope;
use sluice_core::ops::query::{
    QueryDatabaseArgs, QueryPage, ValidateSqlArgs, ValidationOutput, query_page, validate,
};
use sluice_core::service::Services;

impl Render for QueryPage {
    fn render(&self) -> String {
        let mut text = render::query(&self.result);
        let first = self.offset + 1;
        let last = self.offset + self.result.row_count;
        if let Some(cursor) = &self.cursor {
            text.push_str(&format!(
                "\n[PAGE: rows {first}-{last} of {total}; the rest did not fit in {bytes} bytes. Call \
                 query_database again with the same connection_name and sql and cursor=\"{cursor}\" for the \
                 next page.]",
                total = self.total_rows,
                bytes = self.page_bytes
            ));
        } else if self.has_more {
            text.push_str(&format!(
                "\n[CUT: rows {first}-{last} of {total} shown; the rest did not fit in {bytes} bytes and cannot \
                 be paged here (no MCP session, or too large to keep). Select fewer or narrower columns, \
                 aggregate, or lower row_limit.]",
                total = self.total_rows,
                bytes = self.page_bytes
            ));
        } else if self.offset > 0 {
            text.push_str(&format!(
                "\n[LAST PAGE: rows {first}-{last} of {total}.]",
                total = self.total_rows
            ));
        }
        text
    }
}

impl Render for ValidationOutput {
    fn render(&self) -> String {
        let mut text = String::new();
        if self.valid {
            text.push_str(&format!("VALID ✓ ({} dialect)\n", self.dialect));
            if let Some(sql) = &self.rewritten_sql {
                text.push_str(&format!("Runs as: {sql}\n"));
            }
        } else {
            text.push_str(&format!("INVALID ✗ ({} dialect)\n", self.dialect));
        }
        for f in &self.findings {
            text.push_str(&format!("- [{}] {}", f.rule, f.message));
            if let (Some(line), Some(column)) = (f.line, f.column) {
                text.push_str(&format!(" (line {line}, column {column})"));
            }
            text.push('\n');
        }
        text.trim_end().to_owned()
    }
}

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let s = Arc::clone(services);
    let query = spec(
        Meta {
            name: "query_database",
            title: "Run a governed read-only SQL query",
            description: "Run one read-only SQL statement (SELECT/WITH/VALUES, EXPLAIN, SHOW, DESCRIBE) on a \
                connection, in that connection's SQL dialect. Governance refuses writes, DDL, several statements, \
                and file or network functions, and injects or clamps a row limit (default 1000, server maximum \
                applies). Returns a table and `[N rows, X ms]`; a notice says when rows were cut. Results larger \
                than one page (a byte cap keeps each answer small) come with a `cursor`: call again with the same \
                connection_name and sql plus `cursor` for the next page. Refusals name the rule and how to fix \
                the query.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: QueryDatabaseArgs| {
            let s = Arc::clone(&s);
            async move { query_page(&s, &ctx, a).await }
        },
    );
    let s = Arc::clone(services);
    let validate_sql = spec(
        Meta {
            name: "validate_sql",
            title: "Check SQL against governance without running it",
            description: "Check whether a SQL statement would be allowed on a connection, without running it. \
                Returns VALID with the SQL exactly as it would run (row limit applied), or INVALID with the rule \
                id, the position and how to fix it.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: ValidateSqlArgs| {
            let out = validate(&s, &ctx.auth, &a.connection_name, &a.sql);
            async move { out }
        },
    );
    vec![query, validate_sql]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_core::service::{ColumnOut, QueryOutput};

    fn page(offset: u64, rows: u64, total: u64, cursor: Option<&str>, has_more: bool) -> QueryPage {
        QueryPage {
            result: QueryOutput {
                connection: "demo".into(),
                columns: vec![ColumnOut {
                    name: "n".into(),
                    type_name: "INTEGER".into(),
                }],
                rows: (0..rows).map(|i| vec![json!(offset + i + 1)]).collect(),
                row_count: rows,
                truncated: false,
                row_limit: 1000,
                elapsed_ms: 1.0,
                sql_executed: "SELECT n FROM t LIMIT 1001".into(),
            },
            offset,
            total_rows: total,
            page_bytes: 2048,
            has_more,
            cursor: cursor.map(str::to_owned),
        }
    }

    #[test]
    fn pages_say_where_they_are_and_how_to_go_on() {
        let cases = [
            (
                page(0, 2, 5, Some("cur_x"), true),
                "[PAGE: rows 1-2 of 5; the rest did not fit in 2048 bytes. Call query_database again with the \
                 same connection_name and sql and cursor=\"cur_x\" for the next page.]",
            ),
            (page(4, 1, 5, None, false), "[LAST PAGE: rows 5-5 of 5.]"),
            (
                page(0, 2, 5, None, true),
                "[CUT: rows 1-2 of 5 shown; the rest did not fit in 2048 bytes and cannot be paged here",
            ),
        ];
        for (p, expected) in cases {
            let text = p.render();
            assert!(text.contains(expected), "{text}");
        }
        let whole = page(0, 5, 5, None, false).render();
        assert!(!whole.contains("PAGE") && !whole.contains("CUT"), "{whole}");
    }
}
