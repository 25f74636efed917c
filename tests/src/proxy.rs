//! A loopback HTTP proxy that adds the gateway's API key to every request, so that clients which cannot
//! send credentials (the MCP conformance suite) can test the real gateway with its auth switched on.
//!
//! The proxy is deliberately transparent: method, path, query, body and every header other than
//! `Authorization` reach the gateway unchanged. In particular `Host` and `Origin` are not rewritten, so
//! the gateway's DNS-rebinding check still judges what the client really sent. Responses are streamed
//! back frame by frame, so server-sent events arrive as the gateway emits them.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The body type the proxy answers with: the upstream's body as it streams in, or a short error text.
type ProxyBody = BoxBody<Bytes, hyper::Error>;

type UpstreamClient = Client<HttpConnector, Incoming>;

/// A running key-adding proxy. Dropping the handle stops it: the listener closes and every open
/// connection, including long-lived SSE streams, is cut.
#[derive(Debug)]
pub struct ProxyHandle {
    /// Where the proxy listens, always on 127.0.0.1.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ProxyHandle {
    /// The proxy's base URL, for example `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task with it.
        self.task.abort();
    }
}

/// Starts a proxy on a free port of 127.0.0.1 that forwards every request to `upstream` with
/// `Authorization: Bearer <api_key>` set, replacing any `Authorization` header the client sent.
pub async fn spawn_key_proxy(upstream: SocketAddr, api_key: String) -> anyhow::Result<ProxyHandle> {
    let mut bearer = HeaderValue::from_str(&format!("Bearer {api_key}"))
        .context("the API key cannot be sent as an HTTP header value")?;
    // Marked sensitive so that hyper never shows it in debug output or compresses it into HPACK tables.
    bearer.set_sensitive(true);

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("binding the key proxy to 127.0.0.1")?;
    let addr = listener.local_addr().context("reading the key proxy's address")?;

    let mut client = Client::builder(TokioExecutor::new());
    // The client would otherwise add a Host header derived from the upstream address when the request
    // has none; a transparent proxy forwards exactly what it received.
    client.set_host(false);
    let client: UpstreamClient = client.build_http();

    let target = Target {
        upstream,
        bearer,
        client,
    };
    let task = tokio::spawn(accept_loop(listener, target));
    Ok(ProxyHandle { addr, task })
}

/// Everything a connection needs to forward its requests.
#[derive(Clone)]
struct Target {
    upstream: SocketAddr,
    bearer: HeaderValue,
    client: UpstreamClient,
}

async fn accept_loop(listener: TcpListener, target: Target) {
    // The connection tasks live in this set so that they end when the loop is aborted.
    let mut connections = JoinSet::new();
    loop {
        // Finished connections are reaped here so that the set does not grow for the proxy's lifetime.
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                // Accept fails transiently, for example when file descriptors run out; back off and retry
                // rather than taking the whole proxy down under a test.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        // Small writes such as SSE events must leave immediately rather than wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let target = target.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| forward(target.clone(), request));
            // A connection error means the client went away, possibly mid-stream; there is nobody left
            // to tell, and the upstream side is released when the response body is dropped.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(target: Target, request: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = match Uri::builder()
        .scheme("http")
        .authority(target.upstream.to_string())
        .path_and_query(path_and_query)
        .build()
    {
        Ok(uri) => uri,
        Err(error) => {
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                &format!("bad request target: {error}"),
            ));
        }
    };
    parts.headers.insert(AUTHORIZATION, target.bearer);

    match target.client.request(Request::from_parts(parts, body)).await {
        // The upstream body is handed on as it is, so every frame is passed along as soon as it arrives.
        Ok(response) => Ok(response.map(|body| body.boxed())),
        Err(error) => Ok(error_response(
            StatusCode::BAD_GATEWAY,
            &format!("key proxy: upstream {} failed: {error}", target.upstream),
        )),
    }
}

fn error_response(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(message.to_owned()))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use hyper::body::{Body, Frame};
    use hyper::header::HOST;
    use serde_json::{Value, json};
    use tokio::sync::{Notify, mpsc};

    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    /// A response body fed from a channel, so a test decides when each chunk leaves the upstream.
    struct ChannelBody(mpsc::Receiver<Bytes>);

    impl Body for ChannelBody {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.get_mut()
                .0
                .poll_recv(cx)
                .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
        }
    }

    /// A tiny upstream: `/stream` sends one SSE event, waits for `release`, sends a second and ends;
    /// every other path echoes the request it saw as JSON.
    async fn spawn_upstream(release: Arc<Notify>) -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream address");
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let release = release.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let release = release.clone();
                        async move { Ok::<_, Infallible>(upstream_answer(request, release).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (addr, task)
    }

    async fn upstream_answer(
        request: Request<Incoming>,
        release: Arc<Notify>,
    ) -> Response<BoxBody<Bytes, Infallible>> {
        if request.uri().path() == "/stream" {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from_static(b"id: 1\ndata: first\n\n")).await;
                release.notified().await;
                let _ = tx.send(Bytes::from_static(b"id: 2\ndata: second\n\n")).await;
            });
            return Response::builder()
                .header(CONTENT_TYPE, "text/event-stream")
                .body(ChannelBody(rx).boxed())
                .expect("stream response");
        }
        let method = request.method().to_string();
        let uri = request.uri().to_string();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("<binary>").to_owned()))
            .collect();
        let body = request
            .into_body()
            .collect()
            .await
            .expect("request body")
            .to_bytes();
        let echo = json!({
            "method": method,
            "uri": uri,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        Response::builder()
            .status(StatusCode::ACCEPTED)
            .header(CONTENT_TYPE, "application/json")
            .header("mcp-session-id", "session-42")
            .body(Full::new(Bytes::from(echo.to_string())).boxed())
            .expect("echo response")
    }

    fn test_client() -> Client<HttpConnector, Full<Bytes>> {
        let mut builder = Client::builder(TokioExecutor::new());
        // The tests choose their own Host headers.
        builder.set_host(false);
        builder.build_http()
    }

    fn header_values<'a>(echo: &'a Value, name: &str) -> Vec<&'a str> {
        echo["headers"]
            .as_array()
            .expect("headers array")
            .iter()
            .filter(|pair| pair[0] == name)
            .map(|pair| pair[1].as_str().expect("header value"))
            .collect()
    }

    #[tokio::test]
    async fn adds_the_key_and_passes_everything_else_through() {
        let (upstream, _server) = spawn_upstream(Arc::new(Notify::new())).await;
        let proxy = spawn_key_proxy(upstream, "sk-test-key".to_owned())
            .await
            .expect("proxy");

        let request = Request::builder()
            .method("POST")
            .uri(format!("{}/mcp/sub?cursor=abc&x=1", proxy.url()))
            .header(HOST, "evil.example.com")
            .header("origin", "http://evil.example.com")
            .header("authorization", "Bearer client-supplied")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("x-multi", "one")
            .header("x-multi", "two")
            .body(Full::new(Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            )))
            .expect("request");
        let response = tokio::time::timeout(WAIT, test_client().request(request))
            .await
            .expect("in time")
            .expect("response");

        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()["mcp-session-id"], "session-42");
        let body = response.into_body().collect().await.expect("body").to_bytes();
        let echo: Value = serde_json::from_slice(&body).expect("echo JSON");

        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["uri"], "/mcp/sub?cursor=abc&x=1");
        assert_eq!(header_values(&echo, "authorization"), ["Bearer sk-test-key"]);
        assert_eq!(header_values(&echo, "host"), ["evil.example.com"]);
        assert_eq!(header_values(&echo, "origin"), ["http://evil.example.com"]);
        assert_eq!(
            header_values(&echo, "accept"),
            ["application/json, text/event-stream"]
        );
        assert_eq!(header_values(&echo, "mcp-protocol-version"), ["2025-11-25"]);
        assert_eq!(header_values(&echo, "x-multi"), ["one", "two"]);
        assert_eq!(echo["body"], r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    }

    #[tokio::test]
    async fn keeps_the_clients_host_for_other_methods_too() {
        let (upstream, _server) = spawn_upstream(Arc::new(Notify::new())).await;
        let proxy = spawn_key_proxy(upstream, "k".to_owned()).await.expect("proxy");
        let host = proxy.addr.to_string();
        for method in ["GET", "DELETE"] {
            let request = Request::builder()
                .method(method)
                .uri(format!("{}/mcp", proxy.url()))
                .header(HOST, host.as_str())
                .body(Full::new(Bytes::new()))
                .expect("request");
            let response = test_client().request(request).await.expect("response");
            let body = response.into_body().collect().await.expect("body").to_bytes();
            let echo: Value = serde_json::from_slice(&body).expect("echo JSON");
            assert_eq!(echo["method"], method);
            assert_eq!(header_values(&echo, "host"), [host.as_str()]);
            assert_eq!(header_values(&echo, "authorization"), ["Bearer k"]);
        }
    }

    #[tokio::test]
    async fn streams_events_as_they_arrive() {
        let release = Arc::new(Notify::new());
        let (upstream, _server) = spawn_upstream(release.clone()).await;
        let proxy = spawn_key_proxy(upstream, "k".to_owned()).await.expect("proxy");

        let request = Request::builder()
            .uri(format!("{}/stream", proxy.url()))
            .header(HOST, proxy.addr.to_string())
            .body(Full::new(Bytes::new()))
            .expect("request");
        let response = test_client().request(request).await.expect("response");
        assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
        let mut body = response.into_body();

        // The upstream holds the second event back until released, so the first one can only arrive if
        // the proxy passes frames on without waiting for the end of the body.
        let first = tokio::time::timeout(WAIT, body.frame())
            .await
            .expect("first event in time");
        let first = first
            .expect("a frame")
            .expect("no error")
            .into_data()
            .expect("data");
        assert_eq!(first, "id: 1\ndata: first\n\n");

        release.notify_one();
        let second = tokio::time::timeout(WAIT, body.frame())
            .await
            .expect("second event in time");
        let second = second
            .expect("a frame")
            .expect("no error")
            .into_data()
            .expect("data");
        assert_eq!(second, "id: 2\ndata: second\n\n");

        let end = tokio::time::timeout(WAIT, body.frame())
            .await
            .expect("end in time");
        assert!(end.is_none(), "the stream ends when the upstream's does");
    }

    #[tokio::test]
    async fn dropping_the_handle_closes_the_port_and_open_streams() {
        let (upstream, _server) = spawn_upstream(Arc::new(Notify::new())).await;
        let proxy = spawn_key_proxy(upstream, "k".to_owned()).await.expect("proxy");
        let addr = proxy.addr;

        let request = Request::builder()
            .uri(format!("{}/stream", proxy.url()))
            .header(HOST, addr.to_string())
            .body(Full::new(Bytes::new()))
            .expect("request");
        let mut body = test_client()
            .request(request)
            .await
            .expect("response")
            .into_body();
        let first = tokio::time::timeout(WAIT, body.frame())
            .await
            .expect("first event in time");
        assert!(first.is_some());

        drop(proxy);

        // The open stream is cut rather than left hanging on the never-released upstream.
        let after = tokio::time::timeout(WAIT, body.frame())
            .await
            .expect("stream cut in time");
        assert!(
            !matches!(after, Some(Ok(_))),
            "no more data after the proxy stopped"
        );
        let refused = tokio::time::timeout(WAIT, async {
            loop {
                if tokio::net::TcpStream::connect(addr).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(refused.is_ok(), "the port is closed after the handle is dropped");
    }

    #[tokio::test]
    async fn unreachable_upstream_is_a_bad_gateway() {
        let closed = sluice_test_servers::closed_port();
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, closed.port()));
        let proxy = spawn_key_proxy(upstream, "k".to_owned()).await.expect("proxy");
        let request = Request::builder()
            .uri(format!("{}/mcp", proxy.url()))
            .header(HOST, proxy.addr.to_string())
            .body(Full::new(Bytes::new()))
            .expect("request");
        let response = test_client().request(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    }

    #[tokio::test]
    async fn rejects_a_key_that_cannot_be_a_header() {
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
        let error = spawn_key_proxy(upstream, "line\nbreak".to_owned())
            .await
            .expect_err("invalid key");
        assert!(error.to_string().contains("header value"), "{error}");
    }
}
