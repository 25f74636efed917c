//! Third-party MCP clients against `sluice up`: the official Python SDK and the Claude Code CLI.
//!
//! rmcp's client (the other suites) shares its protocol code with the gateway, so it cannot catch a
//! misreading of the spec that both sides make; these clients were written by others. Each test installs
//! its pinned client with the script beside it (tests/clients/*/install.sh: idempotent, cached under
//! `~/.cache/sluice`), and an install that fails fails the test with the installer's reason: nothing is
//! skipped.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use sluice_e2e::Gateway;
use tokio::process::Command;

/// A client run longer than this has hung (each takes a few seconds); the test fails instead of waiting.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
/// Installs download from a registry on the first run only.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients")
}

fn show(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn run(mut cmd: Command, limit: Duration, what: &str) -> Output {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(limit, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("{what}: could not start: {e}"),
        Err(_) => panic!("{what}: still running after {limit:?}"),
    }
}

/// Runs `tests/clients/<client>/install.sh` and returns the executable path it prints last.
async fn install(client: &str) -> PathBuf {
    let script = clients_dir().join(client).join("install.sh");
    let out = run(
        Command::new(&script),
        INSTALL_TIMEOUT,
        &script.display().to_string(),
    )
    .await;
    assert!(
        out.status.success(),
        "installing the {client} client failed: {}",
        show(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    assert!(
        path.is_file(),
        "{} printed no executable path: {}",
        script.display(),
        show(&out)
    );
    path
}

#[tokio::test]
async fn python_sdk_client_passes_its_scenario() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let python = install("python").await;
    let mut cmd = Command::new(&python);
    cmd.arg(clients_dir().join("python").join("client.py"))
        .arg(&gw.url)
        .arg(&gw.key);
    let out = run(cmd, CLIENT_TIMEOUT, "the Python MCP SDK client").await;
    assert!(
        out.status.success(),
        "the Python MCP SDK client failed: {}\n--- gateway log ---\n{}",
        show(&out),
        gw.log()
    );
    // The script exits 0 only after its last check; the line proves it got there rather than stopping early.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok: all checks passed"),
        "{}",
        show(&out)
    );
    Ok(())
}

#[tokio::test]
async fn python_sdk_client_passes_its_scenario_over_stdio() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let python = install("python").await;
    let mut cmd = Command::new(&python);
    cmd.arg(clients_dir().join("python").join("client.py"))
        .arg("--stdio")
        .arg(sluice_e2e::sluice_bin())
        .arg(data.path().join("sluice"));
    let out = run(cmd, CLIENT_TIMEOUT, "the Python MCP SDK client over stdio").await;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok: all checks passed"),
        "the Python MCP SDK client over stdio failed: {}",
        show(&out)
    );
    Ok(())
}

/// A Claude Code CLI confined to a throw-away home: its config (`~/.claude.json`) and caches land there,
/// never in the real user's, and its telemetry, error reports and auto-updates are switched off.
struct Claude {
    bin: PathBuf,
    home: tempfile::TempDir,
}

impl Claude {
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        // A clean environment, so variables of whoever runs the tests (their Claude Code config dir, API
        // keys) cannot reach the CLI; the project directory of the `local` scope is this home too.
        cmd.env_clear()
            .env("HOME", self.home.path())
            .env("PATH", path_with(self.bin.parent().unwrap_or(Path::new("/"))))
            .env("LANG", "C.UTF-8")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("DISABLE_TELEMETRY", "1")
            .env("DISABLE_ERROR_REPORTING", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .current_dir(self.home.path());
        cmd
    }

    /// Runs a shell line as a user pasting it would, with this CLI first on `PATH`.
    async fn shell(&self, line: &str) -> Output {
        let mut cmd = self.command(Path::new("bash"));
        cmd.arg("-c").arg(line);
        run(cmd, CLIENT_TIMEOUT, line).await
    }

    async fn claude(&self, args: &[&str]) -> Output {
        self.claude_with(args, &[]).await
    }

    /// `claude` with some environment variables on top of the clean environment.
    async fn claude_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(&self.bin);
        cmd.args(args).envs(env.iter().copied());
        run(cmd, CLIENT_TIMEOUT, &format!("claude {}", args.join(" "))).await
    }

    /// The server entry named `name` in the CLI's config, whichever scope holds it.
    fn configured(&self, name: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.home.path().join(".claude.json")).ok()?;
        find_server(&serde_json::from_str(&text).ok()?, name)
    }
}

fn path_with(dir: &Path) -> String {
    let rest = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned());
    format!("{}:{rest}", dir.display())
}

fn find_server(value: &Value, name: &str) -> Option<Value> {
    match value {
        Value::Object(map) => map
            .get("mcpServers")
            .and_then(|servers| servers.get(name))
            .cloned()
            .or_else(|| map.values().find_map(|v| find_server(v, name))),
        Value::Array(items) => items.iter().find_map(|v| find_server(v, name)),
        _ => None,
    }
}

/// Whether a client's output carries a warning about the server (schema formats it does not know, a
/// failed clean disconnect).
fn complains(out: &Output) -> bool {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .to_lowercase();
    ["unknown format", "warning", "ignored in schema"]
        .iter()
        .any(|w| all.contains(w))
}

/// The line of `claude mcp list` output about server `name` (`name: URL (HTTP) - STATUS`).
fn status_line<'a>(listing: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    listing.lines().find(|l| l.starts_with(&prefix))
}

#[tokio::test]
async fn claude_code_connects_with_the_printed_line() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let claude = Claude {
        bin: install("claude").await,
        home: tempfile::tempdir()?,
    };

    // The exact line `sluice up` printed, run as a user pasting it would: it is the product under test.
    let printed = gw.printed();
    let line = printed
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("claude mcp add"))
        .unwrap_or_else(|| panic!("`sluice up` printed no `claude mcp add` line:\n{printed}"))
        .to_owned();
    let out = claude.shell(&line).await;
    assert!(out.status.success(), "`{line}` failed: {}", show(&out));
    // What the CLI stored from the line: transport, URL and the header with the real key.
    let server = claude.configured("sluice").unwrap_or_else(|| {
        panic!(
            "`{line}` left no `sluice` server in ~/.claude.json: {}",
            show(&out)
        )
    });
    assert_eq!(server["type"], "http", "{server}");
    assert_eq!(server["url"], gw.url.as_str(), "{server}");
    assert_eq!(
        server["headers"]["Authorization"],
        format!("Bearer {}", gw.key),
        "{server}"
    );

    // `claude mcp list` connects to every configured server (initialize over streamable HTTP) and reports
    // each one's health; it exits 0 either way, so the status text is what counts.
    let out = claude.claude(&["mcp", "list"]).await;
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "claude mcp list failed: {}", show(&out));
    // The CLI marks a healthy server with U+2714 (✔), not U+2713.
    let expected = format!("sluice: {} (HTTP) - ✔ Connected", gw.url);
    assert_eq!(
        status_line(&listing, "sluice"),
        Some(expected.as_str()),
        "{}\n--- gateway log ---\n{}",
        show(&out),
        gw.log()
    );
    // Connecting prints nothing else about the server: no schema warnings ("unknown format …").
    assert!(!complains(&out), "claude mcp list complained: {}", show(&out));

    // The same server with a wrong key must not be reported as connected.
    let out = claude
        .claude(&[
            "mcp",
            "add",
            "--transport",
            "http",
            "sluice-wrong-key",
            &gw.url,
            "--header",
            "Authorization: Bearer sk-not-a-sluice-key",
        ])
        .await;
    assert!(
        out.status.success(),
        "claude mcp add (wrong key) failed: {}",
        show(&out)
    );
    let out = claude.claude(&["mcp", "list"]).await;
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let wrong = status_line(&listing, "sluice-wrong-key")
        .unwrap_or_else(|| panic!("claude mcp list does not list sluice-wrong-key: {}", show(&out)));
    assert!(
        !wrong.contains("Connected"),
        "a wrong key was reported as connected: {}",
        show(&out)
    );
    // The gateway's 401 reaches the user as such, naming the header, rather than as a vague failure.
    let refused = format!("sluice-wrong-key: {} (HTTP) - ✘ Failed to connect", gw.url);
    assert!(
        wrong.starts_with(&refused) && wrong.contains("HTTP 401"),
        "a wrong key is not reported as a 401 failure: {}",
        show(&out)
    );
    // The good entry is unaffected by the bad one beside it.
    assert_eq!(
        status_line(&listing, "sluice"),
        Some(expected.as_str()),
        "{}",
        show(&out)
    );
    Ok(())
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The plugin in `skills/` as a user gets it: Claude Code's own validator passes it and the marketplace at
/// the repository's root, it installs from that marketplace with every skill and agent, and its MCP
/// server, configured from `SLUICE_URL` and `SLUICE_API_KEY`, connects to a running gateway.
#[tokio::test]
async fn the_plugin_validates_installs_and_connects() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let claude = Claude {
        bin: install("claude").await,
        home: tempfile::tempdir()?,
    };
    let repo = repository();
    let plugin = repo.join("skills");
    for dir in [&plugin, &repo] {
        let dir = dir.display().to_string();
        let out = claude.claude(&["plugin", "validate", "--strict", &dir]).await;
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Validation passed"),
            "claude plugin validate {dir}: {}",
            show(&out)
        );
    }

    let out = claude
        .claude(&["plugin", "marketplace", "add", &repo.display().to_string()])
        .await;
    assert!(out.status.success(), "marketplace add: {}", show(&out));
    let out = claude.claude(&["plugin", "install", "sluice@sluice"]).await;
    assert!(out.status.success(), "plugin install: {}", show(&out));

    // Every skill folder and agent file of the checkout is found by the installed plugin.
    let out = claude.claude(&["plugin", "details", "sluice@sluice"]).await;
    let details = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "plugin details: {}", show(&out));
    let mut expected = Vec::new();
    for entry in std::fs::read_dir(&plugin)? {
        let path = entry?.path();
        if path.join("SKILL.md").is_file() {
            expected.push(
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    for entry in std::fs::read_dir(plugin.join("agents"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "md") {
            expected.push(
                path.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    assert!(
        expected.len() >= 9,
        "skills and agents in the checkout: {expected:?}"
    );
    let skills = expected.len() - 1;
    assert!(
        details.contains(&format!("Skills ({skills})")) && details.contains("Agents (1)"),
        "{details}"
    );
    for name in &expected {
        assert!(
            details.contains(name.as_str()),
            "the installed plugin lacks {name}: {details}"
        );
    }

    // The plugin's server reads the gateway's address and key from the environment.
    let env = [
        ("SLUICE_URL", gw.url.as_str()),
        ("SLUICE_API_KEY", gw.key.as_str()),
    ];
    let out = claude.claude_with(&["mcp", "list"], &env).await;
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let expected = format!("plugin:sluice:sluice: {} (HTTP) - ✔ Connected", gw.url);
    assert_eq!(
        status_line(&listing, "plugin:sluice:sluice"),
        Some(expected.as_str()),
        "{}\n--- gateway log ---\n{}",
        show(&out),
        gw.log()
    );
    assert!(!complains(&out), "claude mcp list complained: {}", show(&out));
    // Without a key the server is not reported as connected.
    let out = claude
        .claude_with(&["mcp", "list"], &[("SLUICE_URL", gw.url.as_str())])
        .await;
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = status_line(&listing, "plugin:sluice:sluice").unwrap_or_default();
    assert!(
        line.contains("Failed to connect") && !line.contains("Connected"),
        "{}",
        show(&out)
    );
    Ok(())
}

/// `claude mcp add sluice -- <path>/sluice stdio --data-dir D`: Claude Code starts the gateway itself and
/// reports it Connected (the first start sets the data directory up, as `up` does).
#[tokio::test]
async fn claude_code_connects_over_stdio() -> anyhow::Result<()> {
    let claude = Claude {
        bin: install("claude").await,
        home: tempfile::tempdir()?,
    };
    let data = claude.home.path().join("sluice-data");
    let bin = sluice_e2e::sluice_bin();
    let (bin, data) = (bin.display().to_string(), data.display().to_string());
    let out = claude
        .claude(&["mcp", "add", "sluice", "--", &bin, "stdio", "--data-dir", &data])
        .await;
    assert!(
        out.status.success(),
        "claude mcp add (stdio) failed: {}",
        show(&out)
    );
    let out = claude.claude(&["mcp", "list"]).await;
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let expected = format!("sluice: {bin} stdio --data-dir {data} - ✔ Connected");
    assert_eq!(
        status_line(&listing, "sluice"),
        Some(expected.as_str()),
        "{}",
        show(&out)
    );
    assert!(!complains(&out), "claude mcp list complained: {}", show(&out));
    Ok(())
}
