//! `query_history`: its description and rendering; the operation is `sluice_core::ops::history`.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::tools::{Effect, Meta, Render, ToolSpec, spec};
use sluice_core::auth::Scope;
use sluice_core::ops::history::{QueryHistory, QueryHistoryArgs, history};
use sluice_core::pipeline::CallContext;
use sluice_core::service::Services;

impl Render for QueryHistory {
    fn render(&self) -> String {
        if self.entries.is_empty() {
            return format!("No recent queries by this API key on {}.", self.connection);
        }
        let mut text = format!(
            "-- Recent queries by this API key on {} ({} shown, newest first, literals redacted)\n",
            self.connection,
            self.entries.len()
        );
        for e in &self.entries {
            let time = e.ts.get(11..19).unwrap_or(&e.ts);
            let outcome = match (e.decision.as_str(), &e.rule) {
                ("ok", _) => format!("{} rows", e.rows.unwrap_or(0)),
                ("denied", rule) => format!("REFUSED [{}]", rule.as_deref().unwrap_or("policy")),
                _ => format!("ERROR: {}", e.error.as_deref().unwrap_or_default()),
            };
            let _ = writeln!(
                text,
                "\n-- [{time}] {} · {outcome} · {:.0} ms",
                e.tool, e.duration_ms
            );
            let _ = writeln!(
                text,
                "{}",
                e.sql
                    .as_deref()
                    .unwrap_or("(SQL could not be parsed; only its hash is logged)")
            );
        }
        text.trim_end().to_owned()
    }
}

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let s = Arc::clone(services);
    vec![spec(
        Meta {
            name: "query_history",
            title: "Recent queries on a connection",
            description: "List this API key's recent governed queries on a connection (newest first, default \
                10, at most 50) from the audit log: when, outcome, rows, time and the SQL as it ran with every \
                literal redacted. Useful to reuse working query patterns and avoid repeating refused ones.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx: CallContext, a: QueryHistoryArgs| {
            let s = Arc::clone(&s);
            async move { history(&s, &ctx, a).await }
        },
    )]
}
