//! Trace context: a tool call continues the W3C trace its client started (`traceparent` from the HTTP
//! request or the MCP request's `_meta`), so that its span, and everything logged or traced inside it,
//! joins the client's trace when the gateway exports traces (OTLP, configured in the binary).

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Makes `span` a child of the remote span `traceparent` names (`00-<trace id>-<span id>-<flags>`); a
/// malformed value is ignored (the span starts a trace of its own), as the W3C specification asks.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer is installed (traces are not exported): nothing to join.
        let _ = span.set_parent(context);
    }
}
