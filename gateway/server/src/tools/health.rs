//! `connection_health` (latency percentiles and error rate measured from real calls, plus a live ping)
//! and `connector_capabilities` (what each connector supports, and a connection's configuration).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_connectors::ConnectorKind;
use sluice_dialect::Capabilities;

use crate::tools::{Effect, Meta, Render, ToolSpec, spec};
use sluice_core::health::LatencyStats;
use sluice_core::pipeline::CallContext;
use sluice_core::registry::Connection;
use sluice_core::service::{AuditFacts, Outcome, Services};

/// A ping that takes longer than this is reported as failed.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionArg {
    /// A connection name; empty = every connection.
    #[serde(default)]
    pub connection_name: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PingResult {
    pub ok: bool,
    pub latency_ms: f64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ConnectionHealth {
    pub connection: String,
    pub kind: String,
    /// `healthy` (ping ok, error rate under 10 %), `degraded` (ping ok, more errors) or `down` (ping failed).
    pub status: String,
    pub ping: PingResult,
    /// Measured from the governed queries this gateway ran on the connection.
    pub recent: LatencyStats,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct HealthReport {
    pub connections: Vec<ConnectionHealth>,
}

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

/// One connection's capabilities and settings.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ConnectionCapabilities {
    pub connection: String,
    #[serde(flatten)]
    pub capabilities: Capabilities,
    pub timeout_ms: u64,
    pub max_rows: u64,
    /// Pool settings (server engines and SQLite); null for DuckDB, which opens its file per burst of calls.
    pub pool_size: Option<u32>,
    pub pool_idle_timeout_ms: Option<u64>,
    pub pool_acquire_timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CapabilitiesReport {
    /// Every connector kind (when no connection was named).
    pub connectors: Vec<Capabilities>,
    /// The named connection, or every connection.
    pub connections: Vec<ConnectionCapabilities>,
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

fn connection_capabilities(s: &Services, c: &Connection) -> ConnectionCapabilities {
    let pooled = c.kind != ConnectorKind::DuckDb;
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    ConnectionCapabilities {
        connection: c.name.clone(),
        capabilities: c.kind.capabilities(),
        timeout_ms: millis(s.timeout(c)),
        max_rows: s.row_cap(c, s.settings.max_rows),
        pool_size: pooled.then_some(c.pool.max_connections),
        pool_idle_timeout_ms: pooled.then(|| millis(c.pool.idle_timeout)),
        pool_acquire_timeout_ms: pooled.then(|| millis(c.pool.acquire_timeout)),
    }
}

/// The named connection, or all of the org's.
fn selected(
    s: &Services,
    ctx: &CallContext,
    name: &str,
) -> Result<Vec<Arc<Connection>>, sluice_core::service::ToolError> {
    if name.trim().is_empty() {
        Ok(s.registry.list(&ctx.auth.org_id))
    } else {
        s.connection(&ctx.auth, name.trim()).map(|c| vec![c])
    }
}

async fn ping(c: Arc<Connection>) -> PingResult {
    let started = Instant::now();
    let outcome = tokio::time::timeout(PING_TIMEOUT, c.engine.ping()).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(sluice_core::pipeline::redact_message(&e.to_string())),
        Err(_) => Some(format!("no answer within {} s", PING_TIMEOUT.as_secs())),
    };
    PingResult {
        ok: error.is_none(),
        latency_ms: (latency_ms * 100.0).round() / 100.0,
        error,
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
            async move {
                let audit = AuditFacts {
                    connection: (!a.connection_name.is_empty()).then(|| a.connection_name.clone()),
                    ..Default::default()
                };
                let connections = match selected(&s, &ctx, &a.connection_name) {
                    Ok(c) => c,
                    Err(e) => return Outcome::fail(e, audit),
                };
                // Pings run at once, so that one unreachable server does not delay the others.
                let pings: Vec<_> = connections
                    .iter()
                    .map(|c| tokio::spawn(ping(Arc::clone(c))))
                    .collect();
                let mut report = Vec::with_capacity(connections.len());
                for (c, handle) in connections.iter().zip(pings) {
                    let ping = handle.await.unwrap_or_else(|e| PingResult {
                        ok: false,
                        latency_ms: 0.0,
                        error: Some(format!("ping task failed: {e}")),
                    });
                    let recent = s.health.stats(&ctx.auth.org_id, &c.name);
                    let status = if !ping.ok {
                        "down"
                    } else if recent.calls > 0 && recent.error_rate > 0.1 {
                        "degraded"
                    } else {
                        "healthy"
                    };
                    report.push(ConnectionHealth {
                        connection: c.name.clone(),
                        kind: c.kind.as_str().to_owned(),
                        status: status.to_owned(),
                        ping,
                        recent,
                    });
                }
                Outcome {
                    result: Ok(HealthReport { connections: report }),
                    audit,
                }
            }
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
            async move {
                let audit = AuditFacts {
                    connection: (!a.connection_name.is_empty()).then(|| a.connection_name.clone()),
                    ..Default::default()
                };
                let named = !a.connection_name.trim().is_empty();
                let connections = match selected(&s, &ctx, &a.connection_name) {
                    Ok(c) => c,
                    Err(e) => return Outcome::fail(e, audit),
                };
                Outcome {
                    result: Ok(CapabilitiesReport {
                        connectors: if named {
                            Vec::new()
                        } else {
                            ConnectorKind::ALL.iter().map(|k| k.capabilities()).collect()
                        },
                        connections: connections
                            .iter()
                            .map(|c| connection_capabilities(&s, c))
                            .collect(),
                    }),
                    audit,
                }
            }
        },
    );
    vec![health, caps]
}
