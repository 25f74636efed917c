//! A minimal MCP client for the benches: plain HTTP/1.1 POSTs with the session header, reading the one
//! SSE event that carries the answer. Beside rmcp's client it shows what the gateway itself adds, without
//! a full client's own per-call work (its session worker, stream parsing and channel hops).

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use crate::Gateway;

/// One MCP session opened by hand, calling one tool with fixed arguments.
pub struct RawSession {
    http: reqwest::Client,
    url: String,
    key: String,
    session: String,
    body: String,
}

impl RawSession {
    /// Initializes a session on `gw` whose [`RawSession::call`] calls `tool` with `arguments`.
    pub async fn open(gw: &Gateway, tool: &str, arguments: Value) -> Result<RawSession> {
        let http = reqwest::Client::new();
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
        let resp = http
            .post(&gw.url)
            .bearer_auth(&gw.key)
            .header("accept", "application/json, text/event-stream")
            .json(&init)
            .send()
            .await?;
        let session = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("no session id"))?
            .to_owned();
        resp.bytes().await?;
        let raw = RawSession {
            http,
            url: gw.url.clone(),
            key: gw.key.clone(),
            session,
            body: json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": tool, "arguments": arguments}})
            .to_string(),
        };
        raw.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
            .await?;
        Ok(raw)
    }

    async fn post(&self, body: String) -> Result<bytes::Bytes> {
        Ok(self
            .http
            .post(&self.url)
            .bearer_auth(&self.key)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", "2025-06-18")
            .body(body)
            .send()
            .await?
            .bytes()
            .await?)
    }

    /// One call of a tool that reports no engine time (the schema tools): its round trip. Fails unless
    /// the tool succeeded.
    pub async fn call_plain(&self) -> Result<Duration> {
        Ok(self.answered().await?.0)
    }

    /// Posts the call and reads its answer: (round trip, the JSON-RPC answer). Fails unless the tool succeeded.
    async fn answered(&self) -> Result<(Duration, Value)> {
        let t = Instant::now();
        let body = self.post(self.body.clone()).await?;
        let round_trip = t.elapsed();
        let text = std::str::from_utf8(&body)?;
        let event = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .find(|l| l.starts_with('{'))
            .ok_or_else(|| anyhow!("no answer in: {text}"))?;
        let answer: Value = serde_json::from_str(event)?;
        anyhow::ensure!(answer["result"]["isError"] == false, "the call failed: {event}");
        Ok((round_trip, answer))
    }

    /// One call: (round trip, round trip minus the engine time the gateway measured, `elapsed_ms`).
    /// Fails unless the tool succeeded and reported that time.
    pub async fn call(&self) -> Result<(Duration, Duration)> {
        let (round_trip, answer) = self.answered().await?;
        let engine_ms = answer["result"]["structuredContent"]["elapsed_ms"]
            .as_f64()
            .ok_or_else(|| anyhow!("no elapsed_ms in: {answer}"))?;
        Ok((
            round_trip,
            round_trip.saturating_sub(Duration::from_secs_f64(engine_ms / 1000.0)),
        ))
    }
}
