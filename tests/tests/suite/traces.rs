//! OpenTelemetry traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the gateway exports its spans over
//! OTLP/HTTP, and a tool call continues the trace its client started, from the HTTP request's
//! `traceparent` header or from the MCP request's `_meta.traceparent`.
//!
//! The collector here is a loopback OTLP/HTTP endpoint that decodes the protobuf the gateway sends with
//! the OpenTelemetry project's own message definitions (`opentelemetry-proto`).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};
use sluice_e2e::{Gateway, Launch};

/// Every span the collector received, with its service name.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

async fn collector() -> Result<(SocketAddr, Received)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let received = Received::default();
    let store = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let store = Arc::clone(&store);
                    async move {
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        if let Ok(export) = ExportTraceServiceRequest::decode(body) {
                            let mut spans = store.lock().unwrap_or_else(|p| p.into_inner());
                            for resource in export.resource_spans {
                                let service = resource
                                    .resource
                                    .iter()
                                    .flat_map(|r| &r.attributes)
                                    .find(|a| a.key == "service.name")
                                    .and_then(|a| a.value.as_ref())
                                    .map(|v| format!("{:?}", v.value))
                                    .unwrap_or_default();
                                for scope in resource.scope_spans {
                                    spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
                                }
                            }
                        }
                        let reply = ExportTraceServiceResponse::default().encode_to_vec();
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/x-protobuf")
                                .body(Full::new(Bytes::from(reply)))
                                .unwrap_or_default(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, received))
}

/// Posts one MCP request on `session`, with extra headers.
async fn post(
    gw: &Gateway,
    session: Option<&str>,
    headers: &[(&str, &str)],
    body: Value,
) -> Result<reqwest::Response> {
    let mut request = reqwest::Client::new()
        .post(&gw.url)
        .bearer_auth(&gw.key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body);
    if let Some(s) = session {
        request = request.header("mcp-session-id", s);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    Ok(request.send().await?)
}

const TRACE_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_A: &str = "00f067aa0ba902b7";
const TRACE_B: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_B: &str = "b7ad6b7169203331";

#[tokio::test]
async fn tool_calls_continue_the_clients_trace_and_are_exported_over_otlp() -> Result<()> {
    let (addr, received) = collector().await?;
    let gw = Gateway::launch(Launch {
        env: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), format!("http://{addr}")),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
            ("OTEL_SERVICE_NAME".into(), "sluice-under-test".into()),
        ],
        ..Launch::default()
    })
    .await?;
    let init = post(
        &gw,
        None,
        &[],
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
    )
    .await?;
    let session = init
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .context("session id")?
        .to_owned();
    init.bytes().await?;
    post(
        &gw,
        Some(&session),
        &[],
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await?
    .bytes()
    .await?;
    // The trace context in the HTTP header...
    let header = format!("00-{TRACE_A}-{PARENT_A}-01");
    post(
        &gw,
        Some(&session),
        &[("traceparent", &header)],
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "list_tables", "arguments": {"connection_name": "demo"}}}),
    )
    .await?
    .bytes()
    .await?;
    // ...and in the MCP request's _meta, which wins over a header for the same call.
    post(
        &gw,
        Some(&session),
        &[("traceparent", &header)],
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "query_database", "arguments": {"connection_name": "demo", "sql": "SELECT 1"},
                          "_meta": {"traceparent": format!("00-{TRACE_B}-{PARENT_B}-01")}}}),
    )
    .await?
    .bytes()
    .await?;

    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let tool = |span: &Span| {
        span.attributes
            .iter()
            .find(|a| a.key == "tool")
            .and_then(|a| a.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default()
    };
    let mut found = (None, None);
    for _ in 0..100 {
        {
            let spans = received.lock().unwrap_or_else(|p| p.into_inner());
            for (service, span) in spans.iter() {
                let ids = (hex(&span.trace_id), hex(&span.parent_span_id), service.clone());
                if span.name == "run" && tool(span).contains("list_tables") {
                    found.0 = Some(ids);
                } else if span.name == "run" && tool(span).contains("query_database") {
                    found.1 = Some(ids);
                }
            }
        }
        if found.0.is_some() && found.1.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (Some(a), Some(b)) = found else {
        bail!("the tool calls' spans never reached the collector: {found:?}");
    };
    assert_eq!(
        (a.0.as_str(), a.1.as_str()),
        (TRACE_A, PARENT_A),
        "header traceparent"
    );
    assert_eq!(
        (b.0.as_str(), b.1.as_str()),
        (TRACE_B, PARENT_B),
        "_meta traceparent"
    );
    assert!(a.2.contains("sluice-under-test"), "service name: {}", a.2);
    Ok(())
}
