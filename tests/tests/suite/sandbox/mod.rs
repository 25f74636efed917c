//! The sandbox through the gateway: `sluice up` runs the real `sluice-sandbox` daemon beside itself (on
//! every backend this machine has), `sluice serve` reconnects to a daemon started by hand after it
//! restarts, query results reach pandas as CSV and Parquet, governance and scopes hold, sessions are
//! isolated, a session's workspace ends with its MCP session, `up` stops a daemon left on its socket, and
//! the audit log keeps a hash of the code, never the code.
//!
//! This file: runs, their inputs and results, files, scopes, progress and cancellation; [`lifecycle`]: the
//! daemon's life beside the gateway; [`sessions`]: sandbox sessions as MCP sessions start and end.

mod lifecycle;
mod sessions;

use pretty_assertions::assert_eq;
use rmcp::RoleClient;
use rmcp::model::{CallToolResult, ClientConfig};
use rmcp::service::RunningService;
use serde_json::{Value, json};
use sluice_e2e::{
    Gateway, Launch, SandboxDaemon, call, cli, sandbox_backends, sandbox_python, sandbox_section, text,
};

type Client = RunningService<RoleClient, ClientConfig>;

/// The harness starts gateways without a sandbox unless asked.
fn sandbox_on() -> Vec<(String, String)> {
    vec![("SLUICE_SANDBOX".to_owned(), "true".to_owned())]
}

/// `sluice serve` connected to `daemon`'s socket, with a key that may use the sandbox and write files.
/// The temporary directory holds the gateway's data; keep it alive as long as the gateway.
async fn serve_with(daemon: &SandboxDaemon) -> anyhow::Result<(Gateway, String, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!("[sandbox]\nsocket = \"{}\"\n", daemon.socket.display()),
    )?;
    let out = cli(
        &data,
        &[
            "key", "create", "--name", "svc", "--scope", "sandbox", "--scope", "fs_write",
        ],
    )
    .await?;
    let key = String::from_utf8(out.stdout)?.trim().to_owned();
    let gw = Gateway::launch(Launch {
        command: Some("serve"),
        args: vec!["--config".to_owned(), config.display().to_string()],
        data_dir: Some(data.clone()),
        env: sandbox_on(),
    })
    .await?;
    Ok((gw, key, dir))
}

/// Writes `config` into `dir` with the daemon's state directory inside `dir` (removed with it), which the
/// daemon's unprivileged uid must be able to traverse. `up_restarts_its_daemon_and_stops_it_on_shutdown`
/// covers the default root.
fn config_in(dir: &std::path::Path, config: &str) -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
    let path = dir.join("sluice.toml");
    std::fs::write(
        &path,
        format!("{config}root = \"{}\"\n", dir.join("root").display()),
    )?;
    Ok(path)
}

/// `sluice up` with a config file holding `config`; the returned temp dir keeps the file alive.
async fn up_with(config: &str) -> anyhow::Result<(Gateway, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let path = config_in(dir.path(), config)?;
    Ok((up_with_file(&path).await?, dir))
}

/// `sluice up` with the config file at `path`, sandbox on.
async fn up_with_file(path: &std::path::Path) -> anyhow::Result<Gateway> {
    Gateway::launch(Launch {
        args: vec!["--config".to_owned(), path.display().to_string()],
        env: sandbox_on(),
        ..Default::default()
    })
    .await
}

/// The native sandbox section with the daemon's socket at `socket`.
fn native_on_socket(socket: &std::path::Path) -> String {
    format!("{}socket = \"{}\"\n", sandbox_section("native"), socket.display())
}

fn structured(r: &CallToolResult) -> Value {
    r.structured_content.clone().unwrap_or(Value::Null)
}

/// Calls a tool that must succeed and returns its structured result.
async fn ok(client: &Client, tool: &str, args: Value) -> anyhow::Result<Value> {
    let r = call(client, tool, args.clone()).await?;
    assert_eq!(r.is_error, Some(false), "{tool} {args}: {}", text(&r));
    Ok(structured(&r))
}

/// Calls a tool that must fail and returns its text.
async fn refused(client: &Client, tool: &str, args: Value) -> anyhow::Result<String> {
    let r = call(client, tool, args.clone()).await?;
    assert_eq!(r.is_error, Some(true), "{tool} {args} succeeded: {}", text(&r));
    Ok(text(&r))
}

/// The names in a `fs_list_directory` result (a new workspace holds only the empty `outputs/` folder).
fn entry_names(listing: &Value) -> Vec<&str> {
    listing["entries"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default()
}

async fn run(client: &Client, code: &str, inputs: Value) -> anyhow::Result<Value> {
    ok(client, "execute_code", json!({"code": code, "inputs": inputs})).await
}

#[tokio::test]
async fn up_runs_code_on_every_backend_with_governed_inputs() -> anyhow::Result<()> {
    for backend in sandbox_backends()? {
        let (gw, _cfg) = up_with(&sandbox_section(backend)).await?;
        let client = gw.client().await?;

        let status = ok(&client, "sandbox_status", json!({})).await?;
        assert_eq!(status["status"], "available", "{backend}: {status}");
        assert_eq!(status["backend"], backend);
        let info = ok(&client, "server_info", json!({})).await?;
        assert_eq!(info["sandbox"]["status"], "available", "{info}");

        let r = call(&client, "execute_code", json!({"code": "print(1)"})).await?;
        assert_eq!(r.is_error, Some(false), "{}", text(&r));
        let out = structured(&r);
        assert_eq!(
            (&out["exit_code"], &out["stdout"], &out["backend"]),
            (&json!(0), &json!("1\n"), &json!(backend))
        );
        assert!(text(&r).starts_with("exit 0 · "), "{}", text(&r));

        let Some(_) = sandbox_python() else {
            eprintln!("skipped the pandas half: SLUICE_SANDBOX_PYTHON is not set");
            continue;
        };
        // A governed query's result as CSV, read by pandas; the same data as Parquet, with its types.
        let sql = "SELECT region_id, name, tax_rate, opened_on FROM regions ORDER BY region_id";
        let out = run(
            &client,
            "import pandas as pd\n\
             df = pd.read_csv('regions.csv')\n\
             pq = pd.read_parquet('data/regions.parquet')\n\
             print(len(df), df['name'][0], round(df['tax_rate'].sum(), 4))\n\
             print(len(pq), str(pq['region_id'].dtype), str(pq['opened_on'].dtype), pq['name'].equals(df['name']))\n\
             df.head(2).to_csv('top2.csv', index=False)",
            json!([
                {"connection_name": "demo", "sql": sql, "file": "regions.csv"},
                {"connection_name": "demo", "sql": sql, "file": "data/regions.parquet"},
            ]),
        )
        .await?;
        let direct = ok(
            &client,
            "query_database",
            json!({"connection_name": "demo", "sql": "SELECT count(*), round(sum(tax_rate), 4) FROM regions"}),
        )
        .await?;
        let n = direct["rows"][0][0].as_i64().unwrap_or_default();
        let tax = direct["rows"][0][1].clone();
        let tax = tax.as_f64().or_else(|| tax.as_str().and_then(|t| t.parse().ok()));
        assert_eq!(
            out["stdout"],
            json!(format!(
                "{n} US East {}\n{n} int64 object True\n",
                tax.unwrap_or_default()
            )),
            "{backend}: {out}"
        );
        assert_eq!(out["inputs"][0]["format"], "csv");
        assert_eq!(out["inputs"][1]["format"], "parquet");
        assert_eq!(out["inputs"][0]["rows"], json!(n));
        let produced: Vec<&str> = out["files"]
            .as_array()
            .map(|f| f.iter().filter_map(|f| f["path"].as_str()).collect())
            .unwrap_or_default();
        assert!(produced.contains(&"top2.csv"), "{out}");
        gw.stop().await?;
    }
    Ok(())
}

/// A real matplotlib plot of a governed query's result, through `sluice up` and the real daemon on every
/// backend: the PNG and the SVG come back as MCP image content beside the text, and an image over the cap
/// is named in the text instead, still in the workspace.
#[tokio::test]
async fn execute_code_returns_saved_plots_as_image_content() -> anyhow::Result<()> {
    use base64::Engine as _;
    let Some(_) = sandbox_python() else {
        eprintln!(
            "skipped: SLUICE_SANDBOX_PYTHON is not set (matplotlib is in the venv setup-python.sh makes)"
        );
        return Ok(());
    };
    for backend in sandbox_backends()? {
        // A per-image cap other than the daemon's default: the notice below shows it reached the daemon.
        let config = format!("{}image_bytes = 1572864\n", sandbox_section(backend));
        let (gw, _cfg) = up_with(&config).await?;
        let client = gw.client().await?;
        let r = call(
            &client,
            "execute_code",
            json!({
                "code": "import pandas as pd\n\
                         import matplotlib.pyplot as plt\n\
                         df = pd.read_csv('regions.csv')\n\
                         fig, ax = plt.subplots(figsize=(4, 3))\n\
                         ax.bar(df['name'], df['tax_rate'])\n\
                         ax.set_title('tax rate by region')\n\
                         fig.savefig('outputs/tax.png', dpi=72)\n\
                         fig.savefig('outputs/tax.svg')\n\
                         open('outputs/huge.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + bytes(2 << 20))\n\
                         print('plotted', len(df))",
                "inputs": [{"connection_name": "demo", "sql": "SELECT name, tax_rate FROM regions ORDER BY region_id", "file": "regions.csv"}],
                "timeout": 120
            }),
        )
        .await?;
        assert_eq!(r.is_error, Some(false), "{backend}: {}", text(&r));
        let t = text(&r);
        let out = structured(&r);
        assert_eq!(out["stderr"], "", "{backend}: {t}");
        assert!(t.contains("--- stdout ---\nplotted "), "{backend}: {t}");
        assert!(
            t.contains("files: outputs/huge.png (2.0 MiB, created), outputs/tax.png ("),
            "{backend}: {t}"
        );
        assert!(
            t.contains("images (attached below): outputs/tax.png (image/png, "),
            "{backend}: {t}"
        );
        // The SVG goes out as a PNG rendering of it (Claude refuses SVG image content), at its own size:
        // figsize (4, 3) in is 288 x 216 pt, 384 x 288 CSS px.
        assert!(
            t.contains("outputs/tax.svg (image/png rendered from the SVG, 384x288 px, "),
            "{backend}: {t}"
        );
        assert!(
            t.contains(
                "note: image outputs/huge.png (image/png, 2.0 MiB) was not sent: it is over the 1.5 MiB limit per \
                 image. It is in the workspace: save it smaller (a lower dpi"
            ),
            "{backend}: {t}"
        );
        // One text item, then one image item per image, in path order.
        let images: Vec<(String, Vec<u8>)> = r
            .content
            .iter()
            .filter_map(|c| c.as_image())
            .map(|i| {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(&i.data)
                    .unwrap_or_default();
                (i.mime_type.clone(), data)
            })
            .collect();
        assert_eq!(r.content.len(), 3, "{backend}: {:?}", r.content.len());
        assert!(r.content[0].as_text().is_some());
        assert_eq!(images[0].0, "image/png", "{backend}");
        assert!(images[0].1.starts_with(b"\x89PNG\r\n\x1a\n"), "{backend}");
        assert_eq!(images[1].0, "image/png", "{backend}");
        assert!(images[1].1.starts_with(b"\x89PNG\r\n\x1a\n"), "{backend}");
        assert!(
            r.content
                .iter()
                .filter_map(|c| c.as_image())
                .all(|i| i.mime_type != "image/svg+xml"),
            "{backend}"
        );
        // The structured result describes the images without carrying their bytes a second time.
        assert_eq!(
            out["images"],
            json!([
                {"path": "outputs/tax.png", "mime_type": "image/png", "bytes": images[0].1.len()},
                {"path": "outputs/tax.svg", "mime_type": "image/png", "bytes": images[1].1.len(), "rendered_from_svg": [384, 288]}
            ]),
            "{backend}"
        );
        assert_eq!(out["notices"].as_array().map(Vec::len), Some(1), "{out}");
        // Nothing is lost: the image left out is whole in the workspace.
        let info = ok(&client, "fs_get_file_info", json!({"path": "outputs/huge.png"})).await?;
        assert_eq!(info["size"], (2 << 20) + 8);
        gw.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_refused_query_input_runs_no_code() -> anyhow::Result<()> {
    let (gw, _cfg) = up_with(&sandbox_section("native")).await?;
    let client = gw.client().await?;
    let sql = "DELETE FROM orders";
    let verdict = ok(
        &client,
        "validate_sql",
        json!({"connection_name": "demo", "sql": sql}),
    )
    .await?;
    let message = verdict["findings"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!message.is_empty(), "{verdict}");
    let t = refused(
        &client,
        "execute_code",
        json!({
            "code": "open('ran.txt', 'w').write('yes')",
            "inputs": [{"connection_name": "demo", "sql": sql, "file": "orders.csv"}]
        }),
    )
    .await?;
    assert!(t.contains("input 'orders.csv': "), "{t}");
    assert!(t.contains(&message), "{t} lacks {message}");
    let listing = ok(&client, "fs_list_directory", json!({"path": "."})).await?;
    assert_eq!(entry_names(&listing), vec!["outputs"], "code ran: {listing}");
    let t = refused(&client, "fs_get_file_info", json!({"path": "ran.txt"})).await?;
    assert!(t.contains("\"ran.txt\" does not exist"), "{t}");
    Ok(())
}

#[tokio::test]
async fn file_tools_round_trip_and_stay_in_the_workspace() -> anyhow::Result<()> {
    let (gw, _cfg) = up_with(&sandbox_section("native")).await?;
    let client = gw.client().await?;
    let made = ok(&client, "fs_create_directory", json!({"path": "data/raw"})).await?;
    assert_eq!(made["file"]["type"], "directory");
    let wrote = ok(
        &client,
        "fs_write_file",
        json!({"path": "data/raw/notes.txt", "content": "alpha\nbeta\n"}),
    )
    .await?;
    assert_eq!(wrote["file"]["size"], 11);
    let read = ok(&client, "fs_read_file", json!({"path": "data/raw/notes.txt"})).await?;
    assert_eq!(
        (&read["content"], &read["encoding"]),
        (&json!("alpha\nbeta\n"), &json!("utf-8"))
    );
    // Code sees the file (named as an input) and writes another.
    let out = run(
        &client,
        "lines = open('data/raw/notes.txt').read().split()\nopen('data/count.txt', 'w').write(str(len(lines)))",
        json!(["data/raw/notes.txt"]),
    )
    .await?;
    assert_eq!(out["inputs"][0]["format"], "workspace");
    assert_eq!(out["exit_code"], 0, "{out}");
    let moved = ok(
        &client,
        "fs_move_file",
        json!({"source": "data/count.txt", "destination": "count.txt"}),
    )
    .await?;
    assert_eq!(moved["file"]["path"], "count.txt");
    let read = ok(&client, "fs_read_file", json!({"path": "count.txt"})).await?;
    assert_eq!(read["content"], "2");
    let listing = ok(&client, "fs_list_directory", json!({"path": "."})).await?;
    let names: Vec<(&str, &str)> = listing["entries"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| (e["name"].as_str().unwrap_or(""), e["type"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        names,
        vec![
            ("count.txt", "file"),
            ("data", "directory"),
            ("outputs", "directory")
        ]
    );
    let tree = call(&client, "fs_directory_tree", json!({"path": "."})).await?;
    assert_eq!(
        text(&tree),
        "./\n  count.txt\n  data/\n    raw/\n      notes.txt\n  outputs/",
        "{}",
        text(&tree)
    );
    let found = ok(
        &client,
        "fs_search_files",
        json!({"path": ".", "pattern": "*.txt"}),
    )
    .await?;
    assert_eq!(found["matches"], json!(["count.txt", "data/raw/notes.txt"]));
    let info = ok(&client, "fs_get_file_info", json!({"path": "data/raw/notes.txt"})).await?;
    assert_eq!((&info["type"], &info["size"]), (&json!("file"), &json!(11)));

    // Paths that leave the workspace are refused with the daemon's own message.
    for (tool, args, expected) in [
        (
            "fs_read_file",
            json!({"path": "../../etc/passwd"}),
            "contains \"..\", which could leave the workspace",
        ),
        (
            "fs_read_file",
            json!({"path": "/etc/passwd"}),
            "is absolute; workspace paths are relative to the workspace root",
        ),
        (
            "fs_write_file",
            json!({"path": "../escape.txt", "content": "x"}),
            "contains \"..\", which could leave the workspace",
        ),
        (
            "fs_move_file",
            json!({"source": "count.txt", "destination": "/tmp/count.txt"}),
            "is absolute",
        ),
        (
            "fs_list_directory",
            json!({"path": "data/../.."}),
            "contains \"..\"",
        ),
    ] {
        let t = refused(&client, tool, args.clone()).await?;
        assert!(t.contains(expected), "{tool} {args}: {t}");
    }
    // A query result is placed under the same confinement.
    let t = refused(
        &client,
        "execute_code",
        json!({"code": "pass", "inputs": [{"connection_name": "demo", "sql": "SELECT 1", "file": "../up.csv"}]}),
    )
    .await?;
    assert!(
        t.contains("contains \"..\", which could leave the workspace"),
        "{t}"
    );
    let t = refused(
        &client,
        "execute_code",
        json!({"code": "pass", "inputs": ["missing.csv"]}),
    )
    .await?;
    assert!(
        t.contains("input 'missing.csv': \"missing.csv\" does not exist"),
        "{t}"
    );
    let t = refused(&client, "execute_code", json!({"code": "pass", "timeout": 301})).await?;
    assert!(
        t.contains("timeout must be between 1 and 300 seconds (got 301)"),
        "{t}"
    );
    Ok(())
}

#[tokio::test]
async fn scopes_guard_writes_and_query_inputs() -> anyhow::Result<()> {
    let (gw, _cfg) = up_with(&sandbox_section("native")).await?;
    let out = gw
        .cli(&["key", "create", "--name", "sandbox-only", "--scope", "sandbox"])
        .await?;
    let key = String::from_utf8(out.stdout)?.trim().to_owned();
    let client = gw.client_with_key(&key).await?;
    for (tool, args) in [
        ("fs_write_file", json!({"path": "a.txt", "content": "x"})),
        ("fs_create_directory", json!({"path": "d"})),
        ("fs_move_file", json!({"source": "a", "destination": "b"})),
    ] {
        let t = refused(&client, tool, args).await?;
        assert!(
            t.contains(&format!(
                "this API key lacks the 'fs_write' scope needed by {tool}"
            )),
            "{tool}: {t}"
        );
    }
    // Reading and running are what the sandbox scope is for.
    let out = run(&client, "print(6 * 7)", json!([])).await?;
    assert_eq!(out["stdout"], "42\n");
    // A query input would read the warehouse: it needs the query scope as well.
    let t = refused(
        &client,
        "execute_code",
        json!({"code": "pass", "inputs": [{"connection_name": "demo", "sql": "SELECT 1", "file": "x.csv"}]}),
    )
    .await?;
    assert!(
        t.contains("lacks the 'query' scope needed by execute_code inputs that run SQL"),
        "{t}"
    );
    // And a key without the sandbox scope reaches none of the sandbox tools.
    let out = gw
        .cli(&["key", "create", "--name", "query-only", "--scope", "query"])
        .await?;
    let key = String::from_utf8(out.stdout)?.trim().to_owned();
    let client = gw.client_with_key(&key).await?;
    let t = refused(&client, "execute_code", json!({"code": "print(1)"})).await?;
    assert!(
        t.contains("lacks the 'sandbox' scope needed by execute_code"),
        "{t}"
    );
    Ok(())
}

#[tokio::test]
async fn two_sessions_do_not_see_each_others_files() -> anyhow::Result<()> {
    let (gw, _cfg) = up_with(&sandbox_section("native")).await?;
    let a = gw.client().await?;
    let b = gw.client().await?;
    ok(
        &a,
        "fs_write_file",
        json!({"path": "secret.txt", "content": "a's"}),
    )
    .await?;
    run(&a, "open('made_by_a.txt', 'w').write('1')", json!([])).await?;
    // Files persist across a session's calls...
    let seen = run(&a, "import os\nprint(sorted(os.listdir('.')))", json!([])).await?;
    assert_eq!(seen["stdout"], "['made_by_a.txt', 'outputs', 'secret.txt']\n");
    // ...and are invisible to another session, through the file tools and through code.
    let listing = ok(&b, "fs_list_directory", json!({"path": "."})).await?;
    assert_eq!(entry_names(&listing), vec!["outputs"]);
    let t = refused(&b, "fs_read_file", json!({"path": "secret.txt"})).await?;
    assert!(t.contains("\"secret.txt\" does not exist"), "{t}");
    let seen = run(&b, "import os\nprint(sorted(os.listdir('.')))", json!([])).await?;
    assert_eq!(seen["stdout"], "['outputs']\n");
    Ok(())
}

#[tokio::test]
async fn audit_keeps_the_code_hash_not_the_code() -> anyhow::Result<()> {
    let (gw, _cfg) = up_with(&sandbox_section("native")).await?;
    let client = gw.client().await?;
    let code = "secret = 'hunter2-audit-canary'\nprint(len(secret))";
    let out = run(&client, code, json!([])).await?;
    assert_eq!(out["stdout"], "20\n");
    let audit = gw.cli(&["audit", "--limit", "5"]).await?;
    let lines = String::from_utf8(audit.stdout)?;
    assert!(!lines.contains("hunter2-audit-canary"), "{lines}");
    let record: Value = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["tool"] == "execute_code")
        .unwrap_or(Value::Null);
    let sha = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().map(|mut s| s.write_all(code.as_bytes()));
            child.wait_with_output()
        })?;
    let sha = String::from_utf8(sha.stdout)?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        (&record["code_sha256"], &record["code_len"], &record["decision"]),
        (&json!(sha), &json!(code.len()), &json!("ok")),
        "{record}"
    );
    // Neither the store nor the gateway's log holds the code.
    let store = std::fs::read(gw.data_dir.join("sluice.db"))?;
    let canary = b"hunter2-audit-canary";
    assert!(!store.windows(canary.len()).any(|w| w == canary));
    assert!(!gw.log().contains("hunter2-audit-canary"));
    Ok(())
}

/// A sandbox run whose call carries a `progressToken` reports every second against its time limit, on the
/// call's own response stream, and still returns its result.
#[tokio::test]
async fn a_long_run_reports_progress_when_asked() -> anyhow::Result<()> {
    let (gw, _dir) = up_with(&sandbox_section("native")).await?;
    let session = sluice_e2e::raw_session(&gw).await?;
    let run = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "execute_code", "arguments": {"code": "import time\ntime.sleep(2.6)\nprint('done')", "timeout": 30},
        "_meta": {"progressToken": 7}}});
    let body = sluice_e2e::raw_post(&gw, Some(&session), run.to_string())
        .send()
        .await?
        .text()
        .await?;
    let events = sluice_e2e::sse_messages(&body);
    let progress: Vec<Value> = events
        .iter()
        .filter(|e| e["method"] == "notifications/progress" && e["params"]["progressToken"] == 7)
        .map(|e| e["params"].clone())
        .collect();
    assert!(
        progress.len() >= 2,
        "expected a progress update per second: {body}"
    );
    assert_eq!(progress[0]["total"], 30.0, "{progress:?}");
    assert!(
        progress
            .windows(2)
            .all(|w| w[0]["progress"].as_f64() < w[1]["progress"].as_f64()),
        "{progress:?}"
    );
    let result = events.iter().find(|e| e["id"] == 3).cloned().unwrap_or_default();
    assert!(
        result["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("done"),
        "{result}"
    );
    Ok(())
}

/// `notifications/cancelled` for a running `execute_code` kills the code in the daemon: the call ends at
/// once instead of at its time limit, the audit says `cancelled`, and the session's workspace (its files)
/// stays for the next run.
#[tokio::test]
async fn a_cancelled_run_is_killed_and_the_workspace_stays() -> anyhow::Result<()> {
    let (gw, _dir) = up_with(&sandbox_section("native")).await?;
    let session = sluice_e2e::raw_session(&gw).await?;
    let send = |body: Value| sluice_e2e::raw_post(&gw, Some(&session), body.to_string());
    let write = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "fs_write_file", "arguments": {"path": "keep.txt", "content": "still here"}}});
    let body = send(write).send().await?.text().await?;
    assert!(!body.contains(r#""isError":true"#), "{body}");

    let long = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "execute_code", "arguments": {"code": "import time\ntime.sleep(60)", "timeout": 90}}});
    let started = std::time::Instant::now();
    let call = tokio::spawn(send(long).send());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}});
    assert_eq!(send(cancel).send().await?.status(), 202);
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        anyhow::Ok(call.await??.text().await?)
    })
    .await
    .map_err(|_| anyhow::anyhow!("the cancelled run was still going after 10 s"))??;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "the cancelled run took {:?}",
        started.elapsed()
    );

    // The daemon itself runs nothing any more (the gateway's call ending proves only the gateway stopped).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let status = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
            "name": "sandbox_status", "arguments": {}}});
        let body = send(status).send().await?.text().await?;
        let result = sluice_e2e::sse_messages(&body)
            .into_iter()
            .find(|m| m["id"] == 9)
            .unwrap_or_default();
        let running = &result["result"]["structuredContent"]["capacity"]["running"];
        if running == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon still runs the cancelled code: {result}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let next = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {
        "name": "execute_code", "arguments": {"code": "print(open('keep.txt').read())"}}});
    let body = send(next).send().await?.text().await?;
    assert!(body.contains("still here"), "{body}");
    let audit = String::from_utf8(gw.cli(&["audit", "--limit", "5"]).await?.stdout)?;
    assert!(
        audit
            .lines()
            .any(|l| l.contains(r#""tool":"execute_code""#) && l.contains(r#""decision":"cancelled""#)),
        "{audit}"
    );
    Ok(())
}
