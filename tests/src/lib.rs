//! Harness for the end-to-end suites: starts the real `sluice` binary on a free port in a temporary data
//! directory and connects real MCP clients to it.

pub mod plugin;
pub mod proxy;
pub mod raw;
pub mod soak;

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

    /// `sluice up` with a second connection, `policed`, on the demo warehouse under `policy` (the body of a
    /// `[connections.policy]` table). A first run creates the demo file; the config then points at it.
    pub async fn with_policed_demo(policy: &str) -> Result<Gateway> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let first = Gateway::launch(Launch {
            data_dir: Some(data.clone()),
            ..Default::default()
        })
        .await?;
        first.stop().await?;
        let config = dir.path().join("sluice.toml");
        std::fs::write(
            &config,
            format!(
                "[[connections]]\nname = \"policed\"\nkind = \"duckdb\"\ndsn = \"{}\"\n\n[connections.policy]\n{policy}",
                data.join("demo.duckdb").display()
            ),
        )?;
        let mut gw = Gateway::launch(Launch {
            data_dir: Some(data),
            args: vec!["--config".into(), config.display().to_string()],
            ..Default::default()
        })
        .await?;
        gw._temp = Some(dir);
        Ok(gw)
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
        // A suite that must know the port before the start (an OAuth resource URL in the config) passes
        // `SLUICE_LISTEN` in `env`; it becomes the flag, which would otherwise override it.
        let listen = launch
            .env
            .iter()
            .find(|(k, _)| k == "SLUICE_LISTEN")
            .map_or("127.0.0.1:0", |(_, v)| v.as_str());
        let mut cmd = Command::new(sluice_bin());
        cmd.arg(launch.command.unwrap_or("up"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg(listen)
            .args(&launch.args)
            .env_remove("SLUICE_MASTER_KEY")
            .env("SLUICE_LOG", "info,sluice_gateway=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        // Starting the sandbox daemon (a gVisor self-test, the Python stack) costs seconds; the suites that
        // use the sandbox ask for it, the others run without it.
        if !launch.env.iter().any(|(k, _)| k == "SLUICE_SANDBOX") {
            cmd.env("SLUICE_SANDBOX", "false");
        }
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

    /// The gateway's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
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

impl Drop for Gateway {
    fn drop(&mut self) {
        // The gateway itself is killed (kill_on_drop). A sandbox daemon it started does not die with it
        // when the suites run as root: the kernel resets the daemon's parent-death signal when it switches
        // to its unprivileged uid. Stop such children here so that no test leaves a daemon behind.
        let Some(pid) = self.child.id() else { return };
        for child in children_named(pid, "sluice-sandbox") {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.to_string()])
                .status();
        }
    }
}

/// Direct children of `parent` whose command name is `name`.
pub fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces, so split at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map(|(_, c)| c).unwrap_or_default();
        let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
        if comm == name && ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
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

/// Installs ring as rustls' crypto provider (a no-op when one is installed): reqwest built together with the
/// gateway's crates has TLS without a provider. The suites do it before main (tests/all.rs); a bench calls it
/// first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
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

/// A raw MCP session on `gw` (initialize, then initialized), for what rmcp's client keeps out of reach: a
/// request's own response stream, `_meta`, `notifications/cancelled` sent by hand. Its session id.
pub async fn raw_session(gw: &Gateway) -> Result<String> {
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let resp = raw_post(gw, None, init.to_string()).send().await?;
    let session = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("initialize answered without a session id"))?;
    resp.text().await?;
    let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    raw_post(gw, Some(&session), initialized.to_string())
        .send()
        .await?;
    Ok(session)
}

/// A POST of `body` to `gw`'s MCP endpoint with the admin key, on `session` when given.
pub fn raw_post(gw: &Gateway, session: Option<&str>, body: String) -> reqwest::RequestBuilder {
    let mut req = reqwest::Client::new()
        .post(&gw.url)
        .header("authorization", format!("Bearer {}", gw.key))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body);
    if let Some(session) = session {
        req = req
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    req
}

/// The JSON-RPC messages of an SSE response body, in order.
pub fn sse_messages(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
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

/// The `sluice-sandbox` daemon binary beside `sluice` (`$SLUICE_SANDBOX_BIN` overrides).
pub fn sandbox_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SLUICE_SANDBOX_BIN") {
        return PathBuf::from(path);
    }
    sluice_bin().with_file_name("sluice-sandbox")
}

/// The sandbox's Python for the suites: `$SLUICE_SANDBOX_PYTHON` (the venv the test command builds with
/// pandas, pyarrow and duckdb), as the daemon's own suites use it.
pub fn sandbox_python() -> Option<String> {
    std::env::var("SLUICE_SANDBOX_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
}

fn runsc_installed() -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/bin".into(), "/usr/sbin".into(), "/usr/local/bin".into()])
        .any(|d: PathBuf| d.join("runsc").is_file())
}

/// Every sandbox backend available here, as the daemon's suites choose them: native always, gVisor when
/// `runsc` is installed; `SLUICE_TEST_REQUIRE_GVISOR=1` makes a missing runsc a failure.
pub fn sandbox_backends() -> Result<Vec<&'static str>> {
    if runsc_installed() {
        return Ok(vec!["native", "gvisor"]);
    }
    if std::env::var_os("SLUICE_TEST_REQUIRE_GVISOR").is_some() {
        bail!(
            "SLUICE_TEST_REQUIRE_GVISOR is set but runsc is not installed (sandbox/daemon/scripts/install-runsc.sh)"
        );
    }
    eprintln!("note: runsc is not installed, so only the native sandbox backend is tested");
    Ok(vec!["native"])
}

/// Whether the suites run as root (CI does); the daemon then needs an unprivileged `--uid`.
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A `[sandbox]` config section for `sluice up` with the given backend and the suites' Python.
pub fn sandbox_section(backend: &str) -> String {
    let mut text = format!("[sandbox]\nbackend = \"{backend}\"\nmax_concurrency = 4\n");
    if let Some(python) = sandbox_python() {
        text.push_str(&format!("python = \"{python}\"\n"));
    }
    text
}

/// A sandbox daemon started by hand (for `sluice serve`), on a socket in its own temp dir.
pub struct SandboxDaemon {
    child: Option<Child>,
    pub socket: PathBuf,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl SandboxDaemon {
    pub async fn start() -> Result<SandboxDaemon> {
        let dir = tempfile::tempdir()?;
        // The daemon's unprivileged uid must traverse the temp dir to reach its root.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
        let mut d = SandboxDaemon {
            child: None,
            socket: dir.path().join("sandbox.sock"),
            root: dir.path().join("root"),
            _dir: dir,
        };
        d.restart().await?;
        Ok(d)
    }

    /// Starts the daemon (again) on the same socket and waits until it listens.
    pub async fn restart(&mut self) -> Result<()> {
        let mut cmd = Command::new(sandbox_bin());
        cmd.arg("serve")
            .arg("--socket")
            .arg(&self.socket)
            .arg("--root")
            .arg(&self.root)
            .args(["--backend", "native"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(python) = sandbox_python() {
            cmd.arg("--python").arg(python);
        }
        if running_as_root() {
            cmd.args(["--uid", "65534"]);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", sandbox_bin().display()))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                let done = line.contains("listening on");
                seen.push(line);
                if done {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        if !ready {
            bail!("the sandbox daemon did not start:\n{}", seen.join("\n"));
        }
        // Keep draining its log so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
        Ok(())
    }

    /// Kills the daemon (SIGKILL) and waits for it.
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }
}
