//! `connection_health` (latency percentiles and error rate measured from real calls, plus a live ping)
//! and `connector_capabilities` (what each connector supports, and a connection's configuration).

use std::fmt::Write as _;
use std::sync::Arc;

use sluice_core::ops::health::{
    CapabilitiesReport, ConnectionArg, HealthReport, connection_health, connector_capabilities,
};
use sluice_dialect::Capabilities;

use crate::tools::{Effect, Meta, Render, ToolSpec, spec};
use sluice_core::pipeline::CallContext;
use sluice_core::service::Services;

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"))
}

impl Render for HealthReport {
    fn render(&self) -> String {
        if self.connections.is_empty() {
            return "No connections are configured (add one with `sluice connection add`).".to_owned();
        }
        let mut text = format!("Connection health ({} connections):\n", self.connections.len());
        for c in &self.connections {
            let ping = if c.ping.ok {
                format!("ok in {:.1} ms", c.ping.latency_ms)
            } else {
                format!("FAILED: {}", c.ping.error.as_deref().unwrap_or_default())
            };
            let r = &c.recent;
            let _ = writeln!(
                text,
                "\n{} ({}): {}\n  ping: {ping}\n  last {} min: {} calls, {} errors ({:.1} %), p50 {}, p95 {}, p99 {}",
                c.connection,
                c.kind,
                c.status.to_uppercase(),
                r.window_secs / 60,
                r.calls,
                r.errors,
                r.error_rate * 100.0,
                ms(r.p50_ms),
                ms(r.p95_ms),
                ms(r.p99_ms)
            );
        }
        text.trim_end().to_owned()
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn capabilities_text(text: &mut String, c: &Capabilities) {
    let _ = writeln!(
        text,
        "  explain: {} ({}); estimates rows: {}, bytes: {}, cost: {}",
        yes(c.explain),
        c.explain_format,
        yes(c.estimates_rows),
        yes(c.estimates_bytes),
        yes(c.estimates_cost)
    );
    let _ = writeln!(
        text,
        "  cancellation: {} ({}); read-only: {}",
        yes(c.server_side_cancel),
        c.cancel_mechanism,
        c.read_only_mechanism
    );
    let _ = writeln!(
        text,
        "  TLS: {}; pooled: {}; foreign keys: {}; result paging: {}",
        yes(c.tls),
        yes(c.pooled),
        yes(c.foreign_keys),
        yes(c.result_paging)
    );
}

impl Render for CapabilitiesReport {
    fn render(&self) -> String {
        let mut text = String::from("Connector capabilities:\n");
        for c in &self.connectors {
            let _ = writeln!(text, "\n{} ({} dialect)", c.kind, c.dialect);
            capabilities_text(&mut text, c);
        }
        for c in &self.connections {
            let _ = writeln!(
                text,
                "\n{} ({}, {} dialect)",
                c.connection, c.capabilities.kind, c.capabilities.dialect
            );
            capabilities_text(&mut text, &c.capabilities);
            let pool = match c.pool_size {
                Some(size) => format!(
                    "pool {size} sessions, idle timeout {} ms, acquire timeout {} ms",
                    c.pool_idle_timeout_ms.unwrap_or_default(),
                    c.pool_acquire_timeout_ms.unwrap_or_default()
                ),
                None => "no pool (file opened per burst of calls)".to_owned(),
            };
            let _ = writeln!(
                text,
                "  configured: timeout {} ms, max rows {}, {pool}",
                c.timeout_ms, c.max_rows
            );
        }
        text.trim_end().to_owned()
    }
}

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let s = Arc::clone(services);
    let health = spec(
        Meta {
            name: "connection_health",
            title: "Connection latency, errors and reachability",
            description: "Check database connections: latency percentiles (p50/p95/p99) and error rate of the \
                queries this gateway ran on them in the last 15 minutes, plus a live ping. Without \
                connection_name, every connection.",
            scope: None,
            effect: Effect::ReadOnly,
        },
        move |ctx: CallContext, a: ConnectionArg| {
            let s = Arc::clone(&s);
            async move { connection_health(&s, &ctx, a).await }
        },
    );
    let s = Arc::clone(services);
    let caps = spec(
        Meta {
            name: "connector_capabilities",
            title: "What each connector supports",
            description: "List what each connector supports (EXPLAIN and which estimates, server-side \
                cancellation, read-only mechanism, TLS, pooling, foreign keys, result paging). With \
                connection_name, that connection's capabilities and settings (timeout, max rows, pool).",
            scope: None,
            effect: Effect::ReadOnly,
        },
        move |ctx: CallContext, a: ConnectionArg| {
            let s = Arc::clone(&s);
            async move { connector_capabilities(&s, &ctx, a) }
        },
    );
    vec![health, caps]
}
