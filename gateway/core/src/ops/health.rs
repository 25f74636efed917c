//! `connection_health` (latency percentiles and error rate measured from real calls, plus a live ping)
//! and `connector_capabilities` (what each connector supports, and a connection's configuration).

use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_connectors::ConnectorKind;
use sluice_dialect::Capabilities;

use crate::health::LatencyStats;
use crate::pipeline::CallContext;
use crate::registry::Connection;
use crate::service::{AuditFacts, Outcome, Services};

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
) -> Result<Vec<Arc<Connection>>, crate::service::ToolError> {
    if name.trim().is_empty() {
        Ok(s.connections(&ctx.auth))
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
        Ok(Err(e)) => Some(crate::pipeline::redact_message(&e.to_string())),
        Err(_) => Some(format!("no answer within {} s", PING_TIMEOUT.as_secs())),
    };
    PingResult {
        ok: error.is_none(),
        latency_ms: (latency_ms * 100.0).round() / 100.0,
        error,
    }
}

/// `connection_health`: each selected connection's recent latency and errors, and a live ping (all
/// pinged at once, so that one unreachable server does not delay the others).
pub async fn connection_health(s: &Services, ctx: &CallContext, a: ConnectionArg) -> Outcome<HealthReport> {
    let audit = AuditFacts {
        connection: (!a.connection_name.is_empty()).then(|| a.connection_name.clone()),
        ..Default::default()
    };
    let connections = match selected(s, ctx, &a.connection_name) {
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

/// `connector_capabilities`: what each connector kind supports, and the selected connections' settings.
pub fn connector_capabilities(
    s: &Services,
    ctx: &CallContext,
    a: ConnectionArg,
) -> Outcome<CapabilitiesReport> {
    let audit = AuditFacts {
        connection: (!a.connection_name.is_empty()).then(|| a.connection_name.clone()),
        ..Default::default()
    };
    let named = !a.connection_name.trim().is_empty();
    let connections = match selected(s, ctx, &a.connection_name) {
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
                .map(|c| connection_capabilities(s, c))
                .collect(),
        }),
        audit,
    }
}
