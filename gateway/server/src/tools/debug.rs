//! `debug_cte_query`: description and rendering; the operation (each CTE governed and run on its own) is
//! `sluice_core::ops::debug`.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::mcp::render;
use crate::tools::{Effect, Meta, Render, ToolSpec, spec};
use sluice_core::auth::Scope;
use sluice_core::ops::debug::{CteStep, DebugCteArgs, DebugCteOutput, debug_cte};
use sluice_core::pipeline::CallContext;
use sluice_core::service::Services;

fn step_text(text: &mut String, step: &CteStep) {
    match step.status.as_str() {
        "ok" => {
            let count = step.row_count.map_or_else(|| "?".to_owned(), |n| n.to_string());
            let _ = writeln!(text, "OK ✓ — {count} rows, {} columns", step.columns.len());
            if !step.sample.is_empty() {
                let rows: Vec<Vec<String>> = step
                    .sample
                    .iter()
                    .map(|r| r.iter().map(render::cell_text).collect())
                    .collect();
                let _ = writeln!(text, "{}", render::table(&step.columns, &rows));
            }
        }
        "refused" => {
            let _ = writeln!(
                text,
                "REFUSED ✗ [{}]: {}",
                step.rule.as_deref().unwrap_or("policy"),
                step.error.as_deref().unwrap_or_default()
            );
        }
        _ => {
            let _ = writeln!(text, "ERROR ✗: {}", step.error.as_deref().unwrap_or_default());
        }
    }
}

impl Render for DebugCteOutput {
    fn render(&self) -> String {
        let mut text = if self.ctes.is_empty() {
            "No CTEs found (the query has no WITH clause); the whole query was run.\n".to_owned()
        } else {
            let names: Vec<&str> = self.ctes.iter().map(|c| c.name.as_str()).collect();
            format!(
                "Found {} CTEs, run in dependency order: {}\n",
                self.ctes.len(),
                names.join(", ")
            )
        };
        for (i, step) in self.ctes.iter().enumerate() {
            let reads = if step.depends_on.is_empty() {
                String::new()
            } else {
                format!(" (reads {})", step.depends_on.join(", "))
            };
            let _ = writeln!(text, "\n--- CTE {}: {}{reads} ---", i + 1, step.name);
            step_text(&mut text, step);
        }
        let _ = writeln!(text, "\n--- Full query ---");
        step_text(&mut text, &self.query);
        text.trim_end().to_owned()
    }
}

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let s = Arc::clone(services);
    vec![spec(
        Meta {
            name: "debug_cte_query",
            title: "Debug a WITH query CTE by CTE",
            description: "Break a query with WITH clauses into its CTEs and run each on its own (with only the \
                CTEs it reads), in dependency order: row count, columns and a sample per CTE, then the whole \
                query. Every part is governed like query_database; a refused or failing CTE is reported and the \
                others still run. Use it to find which step of a complex query is wrong.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx: CallContext, a: DebugCteArgs| {
            let s = Arc::clone(&s);
            async move { debug_cte(&s, &ctx, a).await }
        },
    )]
}
