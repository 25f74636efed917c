//! `check_budget`: its description and rendering; the operation is `sluice_core::ops::budget`.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::tools::{Effect, Meta, Render, ToolSpec, spec};
use sluice_core::budgets::{BudgetStatus, trim};
use sluice_core::ops::budget::{CheckBudgetArgs, check_budget};
use sluice_core::pipeline::CallContext;
use sluice_core::service::Services;

impl Render for BudgetStatus {
    fn render(&self) -> String {
        let mut text = format!("Budget of API key '{}' for {} (UTC):\n", self.key_name, self.day);
        for d in &self.dimensions {
            match (d.limit, d.remaining) {
                (Some(limit), Some(remaining)) => {
                    let _ = writeln!(
                        text,
                        "  {}: {} of {limit} used, {} remaining",
                        d.name,
                        trim(d.used),
                        trim(remaining)
                    );
                }
                _ => {
                    let _ = writeln!(text, "  {}: {} used (no limit)", d.name, trim(d.used));
                }
            }
        }
        let u = &self.session_usage;
        let session = if self.session_id.is_empty() {
            "(no session)"
        } else {
            self.session_id.as_str()
        };
        let _ = writeln!(
            text,
            "This session ({session}): {} queries, {} rows, {} bytes, {:.2} s",
            u.queries, u.rows, u.bytes, u.seconds
        );
        let status = if self.exhausted {
            "EXHAUSTED — governed queries are refused until 00:00 UTC"
        } else {
            "Active"
        };
        let _ = write!(text, "Status: {status}");
        text
    }
}

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let s = Arc::clone(services);
    vec![spec(
        Meta {
            name: "check_budget",
            title: "Check the remaining query budget",
            description: "Show the calling API key's daily query budget: queries, rows, bytes and engine seconds \
                allowed per UTC day, used and remaining, plus this session's share. When a limit is reached, \
                governed queries are refused before they run until the day ends.",
            scope: None,
            effect: Effect::ReadOnly,
        },
        move |ctx: CallContext, a: CheckBudgetArgs| {
            let s = Arc::clone(&s);
            async move { check_budget(&s, &ctx, a).await }
        },
    )]
}
