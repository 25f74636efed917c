//! The daemon's life beside the gateway: `serve` reconnects when it comes back, `up` serves data without
//! it, restarts it, stops it on shutdown and stops one left behind on its socket (but not a foreign
//! process), and the daemon exits when its gateway is killed.

use pretty_assertions::assert_eq;

use super::*;

#[tokio::test]
async fn serve_reconnects_when_its_daemon_comes_back() -> anyhow::Result<()> {
    let mut daemon = SandboxDaemon::start().await?;
    let (gw, key, _dir) = serve_with(&daemon).await?;
    let client = gw.client_with_key(&key).await?;
    let out = run(&client, "print(1)", json!([])).await?;
    assert_eq!(out["stdout"], "1\n");

    daemon.kill().await?;
    let t = refused(&client, "execute_code", json!({"code": "print(1)"})).await?;
    assert!(t.contains("sandbox unavailable: "), "{t}");
    assert!(
        t.contains(&format!(
            "start it with `sluice-sandbox serve --socket {}",
            daemon.socket.display()
        )),
        "{t}"
    );
    let status = ok(&client, "sandbox_status", json!({})).await?;
    assert_eq!(status["status"], "unavailable", "{status}");
    let info = ok(&client, "server_info", json!({})).await?;
    assert_eq!(info["sandbox"]["status"], "unavailable", "{info}");

    // The same gateway, without a restart, uses the daemon again once it is back (a new workspace).
    daemon.restart().await?;
    let out = run(&client, "print(2)", json!([])).await?;
    assert_eq!(out["stdout"], "2\n");
    ok(
        &client,
        "fs_write_file",
        json!({"path": "again.txt", "content": "x"}),
    )
    .await?;
    gw.stop().await?;
    Ok(())
}

#[tokio::test]
async fn up_serves_data_when_the_daemon_cannot_start() -> anyhow::Result<()> {
    let (gw, _cfg) = up_with("[sandbox]\ndaemon = \"/nonexistent/sluice-sandbox\"\n").await?;
    let client = gw.client().await?;
    let q = ok(
        &client,
        "query_database",
        json!({"connection_name": "demo", "sql": "SELECT count(*) FROM regions"}),
    )
    .await?;
    assert_eq!(q["row_count"], 1);
    let why = "the sandbox daemon binary /nonexistent/sluice-sandbox does not exist";
    let info = ok(&client, "server_info", json!({})).await?;
    assert_eq!(info["sandbox"]["status"], "unavailable");
    assert!(
        info["sandbox"]["detail"].as_str().unwrap_or("").contains(why),
        "{info}"
    );
    let status = ok(&client, "sandbox_status", json!({})).await?;
    assert!(status["detail"].as_str().unwrap_or("").contains(why), "{status}");
    let t = refused(&client, "fs_list_directory", json!({"path": "."})).await?;
    assert!(t.contains(&format!("sandbox unavailable: {why}")), "{t}");

    // A daemon that starts but refuses (here: an interpreter that does not exist) is reported the same way.
    let (gw, _cfg) = up_with("[sandbox]\nbackend = \"native\"\npython = \"/nonexistent/python3\"\n").await?;
    let client = gw.client().await?;
    let status = ok(&client, "sandbox_status", json!({})).await?;
    let detail = status["detail"].as_str().unwrap_or("").to_owned();
    assert_eq!(status["status"], "unavailable");
    assert!(
        detail.contains("sandbox unavailable: the sandbox daemon exited during start-up"),
        "{detail}"
    );
    assert!(detail.contains("/nonexistent/python3"), "{detail}");

    // Switched off (the harness's default), the sandbox is not configured and the tools say how to enable it.
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let status = ok(&client, "sandbox_status", json!({})).await?;
    assert_eq!(status["status"], "not_configured");
    let t = refused(&client, "execute_code", json!({"code": "print(1)"})).await?;
    assert!(
        t.contains("sandbox unavailable: the sandbox is disabled on this gateway ([sandbox] enabled = false"),
        "{t}"
    );
    Ok(())
}

/// Pids and command lines of `sluice-sandbox serve` processes bound to `socket`.
fn daemons_on(socket: &std::path::Path) -> Vec<(i32, Vec<String>)> {
    let want = socket.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("sluice-sandbox"))
            && args.iter().any(|a| a == "serve")
            && args.contains(&want)
        {
            found.push((pid, args));
        }
    }
    found
}

#[tokio::test]
async fn up_restarts_its_daemon_and_stops_it_on_shutdown() -> anyhow::Result<()> {
    // The default root: as root, a directory of the gateway's own under the system temp dir.
    let cfg = tempfile::tempdir()?;
    let path = cfg.path().join("sluice.toml");
    std::fs::write(&path, sandbox_section("native"))?;
    let gw = up_with_file(&path).await?;
    let socket = std::fs::canonicalize(&gw.data_dir)?.join("sandbox.sock");
    let client = gw.client().await?;
    run(&client, "print(1)", json!([])).await?;
    let before = daemons_on(&socket);
    assert_eq!(before.len(), 1, "{before:?}");
    let (pid, args) = before[0].clone();
    let root = args
        .iter()
        .position(|a| a == "--root")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    assert!(std::path::Path::new(&root).is_dir(), "{args:?}");

    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()?;
    // The gateway notices, restarts the daemon and uses the new one without being restarted itself.
    let mut last = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = call(&client, "execute_code", json!({"code": "print(3)"})).await?;
        if r.is_error == Some(false) {
            assert_eq!(structured(&r)["stdout"], "3\n");
            break;
        }
        last = text(&r);
        assert!(last.contains("sandbox unavailable: "), "{last}");
        // Once the gateway knows the daemon stopped, the agent reads that it is coming back and to
        // retry, not how to fix the host.
        if last.contains("the sandbox daemon stopped (") {
            assert!(
                last.contains("the gateway is restarting it; run the code again in a few seconds"),
                "{last}"
            );
            assert!(!last.contains("doctor"), "{last}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no restart: {last}\n{}",
            gw.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let after = daemons_on(&socket);
    assert!(
        after.len() == 1 && after[0].0 != pid,
        "{after:?} (killed {pid}; last error {last})"
    );
    assert!(gw.log().contains("the gateway is restarting it"), "{}", gw.log());

    // Stopping the gateway stops its daemon and removes what it made.
    gw.stop().await?;
    assert_eq!(daemons_on(&socket), vec![]);
    assert!(!socket.exists());
    if sluice_e2e::running_as_root() {
        // As root the daemon's root is a temporary directory of the gateway's.
        assert!(!std::path::Path::new(&root).exists(), "{root} was left behind");
    }
    Ok(())
}

#[tokio::test]
async fn the_daemon_exits_when_its_gateway_is_killed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = config_in(dir.path(), &sandbox_section("native"))?;
    let data = dir.path().join("data");
    let launch = || Launch {
        args: vec!["--config".to_owned(), config.display().to_string()],
        env: sandbox_on(),
        data_dir: Some(data.clone()),
        ..Default::default()
    };
    let gw = Gateway::launch(launch()).await?;
    let socket = std::fs::canonicalize(&data)?.join("sandbox.sock");
    assert!(
        gw.printed().contains("sluice: sandbox available: backend native"),
        "{}",
        gw.printed()
    );
    let first = daemons_on(&socket);
    assert_eq!(first.len(), 1, "{first:?}");
    // SIGKILL leaves the gateway no chance to stop its child.
    let pid = gw.pid().unwrap_or_default();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()?;
    // The daemon exits on its own: the parent-death signal is armed again after its uid switch
    // (`--exit-with-parent`), so this holds as root too.
    let first_pid = first[0].0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{first_pid}")).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon outlived its SIGKILLed gateway by 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A new gateway on the same data directory serves the socket with a daemon of its own.
    let again = Gateway::launch(launch()).await?;
    let now = daemons_on(&socket);
    assert!(
        now.len() == 1 && now[0].0 != first_pid,
        "{now:?} (first {first:?})"
    );
    let client = again.client().await?;
    assert_eq!(run(&client, "print(5)", json!([])).await?["stdout"], "5\n");
    drop(gw);
    Ok(())
}

/// Starts `sluice-sandbox serve` on `socket` by hand, as a daemon an earlier gateway left behind would
/// run (the same binary, without `--exit-with-parent`); a task reaps it, and the returned receiver
/// yields its exit status.
async fn leftover_daemon(
    socket: &std::path::Path,
    root: &std::path::Path,
) -> anyhow::Result<(u32, tokio::sync::oneshot::Receiver<std::process::ExitStatus>)> {
    use tokio::io::AsyncBufReadExt as _;
    // The gateway recognises its daemon by the exact program path, as the kernel reports it.
    let program = std::fs::canonicalize(sluice_e2e::sandbox_bin())?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("serve")
        .arg("--socket")
        .arg(socket)
        .arg("--root")
        .arg(root)
        .args(["--backend", "native"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(python) = sandbox_python() {
        cmd.arg("--python").arg(python);
    }
    if sluice_e2e::running_as_root() {
        cmd.args(["--uid", "65534"]);
    }
    let mut child = cmd.spawn()?;
    let pid = child.id().unwrap_or_default();
    let stderr = child.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("listening on") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    anyhow::ensure!(ready, "the leftover daemon did not start");
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        if let Ok(status) = child.wait().await {
            let _ = tx.send(status);
        }
    });
    Ok((pid, rx))
}

#[tokio::test]
async fn up_stops_a_daemon_left_behind_on_its_socket() -> anyhow::Result<()> {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("s.sock");
    let config = config_in(dir.path(), &native_on_socket(&socket))?;
    let leftover_root = dir.path().join("leftover");
    let (old, exited) = leftover_daemon(&socket, &leftover_root).await?;
    assert_eq!(daemons_on(&socket).len(), 1);

    let gw = up_with_file(&config).await?;
    // The leftover was asked to stop (SIGTERM, not killed after the 5 s grace) before the new one started.
    let status = tokio::time::timeout(std::time::Duration::from_secs(1), exited).await??;
    assert!(
        status.success() || status.signal() == Some(15),
        "the leftover daemon ended with {status}"
    );
    assert!(
        gw.log()
            .contains("stopping a sandbox daemon left behind by an earlier gateway"),
        "{}",
        gw.log()
    );
    let now = daemons_on(&socket);
    assert!(
        now.len() == 1 && now[0].0 != old as i32,
        "{now:?} (leftover {old})"
    );
    assert!(now[0].1.iter().any(|a| a == "--exit-with-parent"), "{now:?}");
    let client = gw.client().await?;
    assert_eq!(run(&client, "print(6)", json!([])).await?["stdout"], "6\n");
    gw.stop().await?;
    Ok(())
}

#[tokio::test]
async fn up_leaves_a_foreign_process_on_its_socket_alone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("s.sock");
    let config = config_in(dir.path(), &native_on_socket(&socket))?;
    // This test process listens on the socket: not our daemon binary, so it must not be signalled (if
    // it were, the test would die with it). The new daemon takes the path over.
    let listener = std::os::unix::net::UnixListener::bind(&socket)?;
    let gw = up_with_file(&config).await?;
    assert!(
        gw.log()
            .contains("another process serves the sandbox socket; the new daemon takes it over"),
        "{}",
        gw.log()
    );
    assert!(
        !gw.log().contains("stopping a sandbox daemon left behind"),
        "{}",
        gw.log()
    );
    let client = gw.client().await?;
    assert_eq!(run(&client, "print(7)", json!([])).await?["stdout"], "7\n");
    drop(listener);
    gw.stop().await?;
    Ok(())
}
