//! Harness for the end-to-end suites: starts the real `sluice` binary on a free port in a temporary data
//! directory and connects real MCP clients to it.

pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt as _};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// The `sluice` binary under test: `$SLUICE_BIN`, else the one beside this test executable's build dir.
pub fn sluice_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(path);
    }
    // Test executables live in <target>/<profile>/deps; binaries one level up.
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    profile_dir.join("sluice")
}

/// A running gateway; killed when dropped.
pub struct Gateway {
    child: Child,
    pub addr: std::net::SocketAddr,
    /// `http://addr/mcp`.
    pub url: String,
    /// The admin key of the `local` org.
    pub key: String,
    pub data_dir: PathBuf,
    /// Keeps a temporary data directory alive for the gateway's lifetime.
    _temp: Option<tempfile::TempDir>,
    /// Everything the gateway printed on stdout.
    pub stdout: Arc<Mutex<Vec<String>>>,
}

/// How to start a gateway.
#[derive(Default)]
pub struct Launch<'a> {
    /// `up` (default) or `serve`.
    pub command: Option<&'a str>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Reuse this data directory instead of a fresh temporary one.
    pub data_dir: Option<PathBuf>,
}

impl Gateway {
    /// `sluice up` in a fresh data directory on a free port.
    pub async fn up() -> Result<Gateway> {
        Gateway::launch(Launch::default()).await
    }

    pub async fn launch(launch: Launch<'_>) -> Result<Gateway> {
        let (temp, data_dir) = match launch.data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir()?;
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
        };
        std::fs::create_dir_all(&data_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("gateway.log"))?;
        let mut cmd = Command::new(sluice_bin());
        cmd.arg(launch.command.unwrap_or("up"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(&launch.args)
            .env_remove("SLUICE_MASTER_KEY")
            .env("SLUICE_LOG", "info,sluice_gateway=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for (k, v) in &launch.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", sluice_bin().display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        {
            let lines = Arc::clone(&lines);
            tokio::spawn(async move {
                let mut reader = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if let Ok(mut l) = lines.lock() {
                        l.push(line.clone());
                    }
                    let _ = tx.send(line);
                }
            });
        }
        let mut url = None;
        let wait = async {
            while let Some(line) = rx.recv().await {
                if let Some(u) = line.strip_prefix("sluice: listening on ") {
                    url = Some(u.trim().to_owned());
                }
                // The `claude mcp add` line is always printed last.
                if line.trim_start().starts_with("claude mcp add") {
                    return Ok(());
                }
            }
            Err(anyhow!("the gateway exited before it was ready"))
        };
        if let Err(e) = tokio::time::timeout(Duration::from_secs(120), wait)
            .await
            .unwrap_or_else(|_| Err(anyhow!("timed out")))
        {
            let log = std::fs::read_to_string(data_dir.join("gateway.log")).unwrap_or_default();
            bail!("gateway did not start: {e}\n--- gateway.log ---\n{log}");
        }
        let url = url.ok_or_else(|| anyhow!("no listening line"))?;
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .parse()
            .with_context(|| format!("parsing {url}"))?;
        let key = std::fs::read_to_string(data_dir.join("local_api_key"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        Ok(Gateway {
            child,
            addr,
            url,
            key,
            data_dir,
            _temp: temp,
            stdout: lines,
        })
    }

    /// Everything printed on stdout so far.
    pub fn printed(&self) -> String {
        self.stdout.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// The gateway's log (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("gateway.log")).unwrap_or_default()
    }

    /// Runs a `sluice` CLI command against this gateway's data directory.
    pub async fn cli(&self, args: &[&str]) -> Result<std::process::Output> {
        cli(&self.data_dir, args).await
    }

    /// An rmcp client session authenticated with the admin key.
    pub async fn client(&self) -> Result<RunningService<RoleClient, ClientConfig>> {
        self.client_with_key(&self.key).await
    }

    pub async fn client_with_key(&self, key: &str) -> Result<RunningService<RoleClient, ClientConfig>> {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(self.url.clone()).auth_header(key.to_owned()),
        );
        Ok(ClientConfig::default().serve(transport).await?)
    }

    /// Stops the gateway with SIGTERM and waits for it to exit; returns its exit status.
    pub async fn stop(mut self) -> Result<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        Ok(tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await??)
    }
}

/// Runs `sluice <args> --data-dir <dir>`.
pub async fn cli(data_dir: &Path, args: &[&str]) -> Result<std::process::Output> {
    let out = Command::new(sluice_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("SLUICE_MASTER_KEY")
        .env("SLUICE_LOG", "warn")
        .output()
        .await?;
    Ok(out)
}

/// Calls a tool with JSON arguments.
pub async fn call(
    client: &RunningService<RoleClient, ClientConfig>,
    tool: &str,
    args: serde_json::Value,
) -> Result<CallToolResult> {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    if let serde_json::Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    Ok(client.call_tool(params).await?)
}

/// The text of a tool result's first content block.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}
