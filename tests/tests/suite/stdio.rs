//! `sluice stdio` driven by hand over its pipes: what a client that misbehaves gets (the SDK and Claude
//! Code runs are in `clients.rs`).

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_e2e::sluice_bin;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

struct StdioClient {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl StdioClient {
    async fn start(data: &std::path::Path, extra: &[&str]) -> anyhow::Result<StdioClient> {
        let mut child = Command::new(sluice_bin())
            .arg("stdio")
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?).lines();
        Ok(StdioClient { child, stdin, stdout })
    }

    async fn send(&mut self, message: Value) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("stdin closed"))?;
        stdin.write_all(format!("{message}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// The next message from the server (within 30 s).
    async fn next(&mut self) -> anyhow::Result<Value> {
        let line = tokio::time::timeout(Duration::from_secs(30), self.stdout.next_line())
            .await??
            .ok_or_else(|| anyhow::anyhow!("stdout closed"))?;
        Ok(serde_json::from_str(&line)?)
    }

    async fn initialize(&mut self) -> anyhow::Result<()> {
        self.send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
            .await?;
        let init = self.next().await?;
        anyhow::ensure!(init["result"]["serverInfo"]["name"] == "sluice", "{init}");
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
    }

    async fn call(&mut self, id: u64, tool: &str, arguments: Value) -> anyhow::Result<Value> {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}))
            .await?;
        self.next().await
    }
}

#[tokio::test]
async fn a_client_closing_mid_call_ends_the_process_cleanly_and_loses_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut first = StdioClient::start(&data, &[]).await?;
    first.initialize().await?;
    let done = first
        .call(
            1,
            "query_database",
            json!({"connection_name": "demo", "sql": "SELECT count(*) AS n FROM orders"}),
        )
        .await?;
    assert_eq!(
        done["result"]["structuredContent"]["rows"],
        json!([[8000]]),
        "{done}"
    );
    // A statement that runs for seconds, then the client goes away in the middle of it.
    first
        .send(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "query_database",
            "arguments": {"connection_name": "demo",
                "sql": "SELECT count(*) FROM range(100000000000) AS a(x) WHERE x % 7 = 3"}}}),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(first.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(15), first.child.wait()).await??;
    assert!(
        status.success(),
        "sluice stdio exited with {status} after its client left"
    );
    // The abandoned call was stopped, and its audit record says so.
    let audit = sluice_e2e::cli(&data, &["audit", "--limit", "10"]).await?;
    let records: Vec<Value> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        records
            .iter()
            .any(|r| r["tool"] == "query_database" && r["decision"] == "cancelled"),
        "no cancelled record: {records:?}"
    );

    // The data directory is intact: a new process opens the same store and warehouse (no stale lock) and
    // the first session's finished call is in the audit log.
    let mut second = StdioClient::start(&data, &[]).await?;
    second.initialize().await?;
    let again = second
        .call(
            1,
            "query_history",
            json!({"connection_name": "demo", "limit": 10}),
        )
        .await?;
    assert!(
        again["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("orders"),
        "{again}"
    );
    let listed = second.call(2, "no_such_tool", json!({})).await?;
    assert!(
        listed["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown tool 'no_such_tool'"),
        "{listed}"
    );
    drop(second.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(15), second.child.wait()).await??;
    assert!(status.success(), "{status}");
    Ok(())
}

#[tokio::test]
async fn a_refused_key_file_stops_before_serving_with_a_reason() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    // Set the directory up first (the default key file), then point at a key the store does not know.
    let mut setup = StdioClient::start(&data, &[]).await?;
    setup.initialize().await?;
    drop(setup.stdin.take());
    setup.child.wait().await?;
    let wrong = dir.path().join("wrong_key");
    std::fs::write(&wrong, "sluice_not-a-real-key\n")?;
    let missing = dir.path().join("missing_key");
    for (file, reason) in [
        (&wrong, "the API key was refused"),
        (&missing, "cannot read the API key file"),
    ] {
        let out = Command::new(sluice_bin())
            .arg("stdio")
            .arg("--data-dir")
            .arg(&data)
            .arg("--key-file")
            .arg(file)
            .stdin(Stdio::null())
            .output()
            .await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(reason),
            "{reason}: {stderr}"
        );
        // Nothing but protocol on stdout, and here no protocol at all.
        assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}
