//! Prometheus metrics: what an operator watches. Tool calls by tool and outcome with their latency,
//! refusals by rule (governance, grants, budgets, rate limits), engine errors per connection, pool use per
//! connection, authentication failures by reason, audit writes (latency, queue depth) and the time to
//! introspect a schema. One process-wide registry, recorded where each event happens and rendered in the
//! text exposition format for `[server] metrics_listen` (`GET /metrics`).

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub tool: String,
    /// `ok`, `denied`, `error` or `cancelled`, as audited.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    pub tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    pub org: String,
    pub connection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub org: String,
    pub connection: String,
    /// `in_use`, `idle` or `max`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Latency buckets from 0.5 ms to about 65 s.
#[derive(Clone)]
pub struct Seconds;

impl MetricConstructor<Histogram> for Seconds {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.0005, 2.0, 18))
    }
}

/// Every metric the gateway records.
pub struct Metrics {
    registry: Registry,
    pub calls: Family<CallLabels, Counter>,
    pub call_seconds: Family<ToolLabels, Histogram, Seconds>,
    pub refusals: Family<RuleLabels, Counter>,
    pub engine_errors: Family<ConnectionLabels, Counter>,
    pub pool_sessions: Family<PoolLabels, Gauge>,
    pub auth_failures: Family<ReasonLabels, Counter>,
    pub audit_write_seconds: Histogram,
    pub audit_queue: Gauge,
    pub audit_failures: Counter,
    pub introspection_seconds: Histogram,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sluice");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls by tool and audited outcome",
            calls.clone(),
        );
        let call_seconds = Family::<ToolLabels, Histogram, Seconds>::new_with_constructor(Seconds);
        registry.register("tool_call_seconds", "Tool call latency", call_seconds.clone());
        let refusals = Family::<RuleLabels, Counter>::default();
        registry.register(
            "refusals",
            "Calls refused, by rule (governance rules, connection_not_granted, budgets, rate_limited)",
            refusals.clone(),
        );
        let engine_errors = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            "engine_errors",
            "Calls the engine or connection failed, per connection",
            engine_errors.clone(),
        );
        let pool_sessions = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "pool_sessions",
            "Pooled sessions per connection (in_use, idle, max), at the time of the scrape",
            pool_sessions.clone(),
        );
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Failed authentications by reason",
            auth_failures.clone(),
        );
        let audit_write_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "audit_write_seconds",
            "Time to commit a batch of audit records",
            audit_write_seconds.clone(),
        );
        let audit_queue = Gauge::default();
        registry.register(
            "audit_queue",
            "Audit records waiting for the writer",
            audit_queue.clone(),
        );
        let audit_failures = Counter::default();
        registry.register(
            "audit_commit_failures",
            "Audit commits the store refused (their records are then retried one by one or failed)",
            audit_failures.clone(),
        );
        let introspection_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "introspection_seconds",
            "Time to read a connection's schema snapshot",
            introspection_seconds.clone(),
        );
        Metrics {
            registry,
            calls,
            call_seconds,
            refusals,
            engine_errors,
            pool_sessions,
            auth_failures,
            audit_write_seconds,
            audit_queue,
            audit_failures,
            introspection_seconds,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The text exposition, with the pools' gauges read now from `registry`'s connections.
pub fn render(registry: &crate::registry::Registry) -> String {
    let m = metrics();
    for conn in registry.all() {
        let Some(usage) = conn.engine.pool_usage() else {
            continue;
        };
        for (state, value) in [("in_use", usage.in_use), ("idle", usage.idle), ("max", usage.max)] {
            m.pool_sessions
                .get_or_create(&PoolLabels {
                    org: conn.org_id.clone(),
                    connection: conn.name.clone(),
                    state: state.to_owned(),
                })
                .set(i64::from(value));
        }
    }
    m.render()
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Counts one failed authentication (`missing`, `malformed`, `unknown`, `revoked`, `token`).
pub fn auth_failed(reason: &str) {
    metrics()
        .auth_failures
        .get_or_create(&ReasonLabels {
            reason: reason.to_owned(),
        })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_family_with_its_labels() {
        let m = Metrics::new();
        m.calls
            .get_or_create(&CallLabels {
                tool: "query_database".into(),
                outcome: "ok".into(),
            })
            .inc();
        m.call_seconds
            .get_or_create(&ToolLabels {
                tool: "query_database".into(),
            })
            .observe(0.002);
        m.refusals
            .get_or_create(&RuleLabels {
                rule: "function_denied".into(),
            })
            .inc();
        let text = m.render();
        for line in [
            "sluice_tool_calls_total{tool=\"query_database\",outcome=\"ok\"} 1",
            "sluice_refusals_total{rule=\"function_denied\"} 1",
            "sluice_tool_call_seconds_count{tool=\"query_database\"} 1",
            "# TYPE sluice_audit_queue gauge",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
