//! `sluice up` runs the sandbox daemon as a child process: it settles the daemon's command line from the
//! `[sandbox]` settings and the host, starts it, waits until it answers `status`, restarts it when it
//! exits, and stops it when the gateway shuts down.
//!
//! A daemon that cannot start (no `sluice-sandbox` binary, no Python, a required protection missing on
//! this host) never stops the gateway: the data tools keep working and the sandbox tools say why.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::Sandbox;
use crate::config::Settings;

/// The uid sandboxed code runs as when the gateway runs as root: `nobody`.
pub const DEFAULT_SANDBOX_UID: u32 = 65534;
/// Where `sandbox/daemon/scripts/setup-python.sh` puts the venv when run as root.
const ROOT_VENV: &str = "/opt/sluice/sandbox-venv";
/// Lines of the daemon's stderr kept to explain a failed start.
const KEPT_LINES: usize = 40;

/// How to start the daemon, settled from the settings and the host.
#[derive(Clone, Debug)]
pub struct Plan {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub socket: PathBuf,
    pub root: PathBuf,
    /// The root was created for this run (under the system temp dir) and is removed at shutdown.
    pub temporary_root: bool,
    pub start_timeout: Duration,
}

/// Whether this process runs as root (then the daemon must switch sandboxed code to another uid).
pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The setup script's venv for this user, if it was built.
fn default_venv() -> Option<PathBuf> {
    let dir = if running_as_root() {
        PathBuf::from(ROOT_VENV)
    } else {
        PathBuf::from(std::env::var_os("HOME")?).join(".cache/sluice/sandbox-venv")
    };
    let python = dir.join("bin/python");
    python.exists().then_some(python)
}

/// True for an interpreter of a venv built by the setup script, which holds the pinned data stack.
fn is_setup_venv(python: &Path) -> bool {
    python
        .parent()
        .and_then(Path::parent)
        .is_some_and(|venv| venv.join(".sluice-stamp").exists())
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_owned())
}

/// Settles the daemon's command line. Errors say what is missing and how to fix it.
pub fn plan(settings: &Settings) -> Result<Plan, String> {
    let sb = &settings.sandbox;
    let program = match &sb.daemon {
        Some(p) => absolute(p),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate the running sluice binary: {e}"))?
            .with_file_name("sluice-sandbox"),
    };
    if !program.is_file() {
        return Err(format!(
            "the sandbox daemon binary {} does not exist; build it with `cargo build --release -p sluice-sandbox` \
             (scripts/run.sh does) or set [sandbox] daemon = PATH",
            program.display()
        ));
    }
    let root_user = running_as_root();
    let socket = absolute(&settings.sandbox_socket());
    // Unix socket paths are limited to 107 bytes; say so instead of failing obscurely in bind().
    if socket.as_os_str().len() > 100 {
        return Err(format!(
            "the sandbox socket path {} is too long for a Unix socket; set [sandbox] socket to a shorter path",
            socket.display()
        ));
    }
    let (root, temporary_root) = match &sb.root {
        Some(r) => (absolute(r), false),
        // The daemon drops to an unprivileged uid that cannot enter the private data directory.
        None if root_user => (
            std::env::temp_dir().join(format!("sluice-sandbox-{}", uuid::Uuid::new_v4().simple())),
            true,
        ),
        None => (absolute(&settings.data_dir.join("sandbox")), false),
    };
    let python = sb
        .python
        .clone()
        .or_else(default_venv)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"));
    let preload = match &sb.preload {
        Some(list) => list.clone(),
        None if is_setup_venv(&python) => ["numpy", "pandas", "pyarrow"].map(str::to_owned).to_vec(),
        None => Vec::new(),
    };
    let mut args: Vec<OsString> = vec![
        "serve".into(),
        "--exit-with-parent".into(),
        "--socket".into(),
        socket.clone().into(),
        "--root".into(),
        root.clone().into(),
        "--backend".into(),
        sb.backend.clone().into(),
        "--python".into(),
        python.into(),
        "--output-bytes".into(),
        sb.output_bytes.to_string().into(),
        "--image-bytes".into(),
        sb.image_bytes.to_string().into(),
        "--images-total-bytes".into(),
        sb.images_total_bytes.to_string().into(),
        "--max-timeout-ms".into(),
        (sb.max_timeout_secs.saturating_mul(1000)).to_string().into(),
    ];
    if !preload.is_empty() {
        args.push("--preload".into());
        args.push(preload.join(",").into());
    }
    if root_user {
        args.push("--uid".into());
        args.push(sb.uid.unwrap_or(DEFAULT_SANDBOX_UID).to_string().into());
    }
    if sb.allow_degraded {
        args.push("--allow-degraded".into());
    }
    for p in &sb.projects {
        args.push("--project".into());
        args.push(p.into());
    }
    let mut number = |flag: &str, value: Option<u64>| {
        if let Some(v) = value {
            args.push(flag.into());
            args.push(v.to_string().into());
        }
    };
    number("--max-concurrency", sb.max_concurrency.map(u64::from));
    number("--max-sessions", sb.max_sessions.map(u64::from));
    number("--session-ttl-secs", sb.session_ttl_secs);
    number("--gvisor-idle-secs", sb.gvisor_idle_secs);
    number("--workspace-mb", sb.workspace_mb);
    number("--default-memory-mb", sb.memory_mb);
    number("--max-memory-mb", sb.memory_mb.map(|m| m.max(16)));
    Ok(Plan {
        program,
        args,
        socket,
        root,
        temporary_root,
        start_timeout: sb.start_timeout,
    })
}

/// What the operator can do when the daemon that `up` manages is down.
pub fn up_hint(plan: Option<&Plan>) -> String {
    match plan {
        Some(p) => format!(
            "`sluice up` runs the daemon beside the gateway and restarts it when it exits: run the code again in \
             a few seconds; if this keeps failing, the daemon's output is in the gateway's log, and `{} doctor \
             --root {}` shows what this host lacks ([sandbox] allow_degraded = true starts it anyway)",
            p.program.display(),
            p.root.display()
        ),
        None => "fix the [sandbox] settings and restart `sluice up`".to_owned(),
    }
}

/// What the operator can do when the daemon `serve` connects to is down.
pub fn serve_hint(socket: &Path) -> String {
    format!(
        "start it with `sluice-sandbox serve --socket {} --root DIR` (as root add `--uid UID`, an unprivileged \
         uid); the gateway reconnects by itself",
        socket.display()
    )
}

/// The running supervisor; [`Supervisor::stop`] ends the daemon.
pub struct Supervisor {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").finish_non_exhaustive()
    }
}

enum Ended {
    /// The gateway is shutting down.
    Stopped,
    /// The daemon exited (or never became ready); `ready` says whether it had served.
    Exited { ready: bool },
}

impl Supervisor {
    /// Starts the daemon and waits until it answers `status` or its start failed (the reason is then
    /// on `sandbox`). Either way the gateway goes on serving.
    pub async fn start(plan: Plan, sandbox: Arc<Sandbox>) -> Supervisor {
        let stop = CancellationToken::new();
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut first = Some(first_tx);
                let mut backoff = Duration::from_secs(1);
                loop {
                    match run_once(&plan, &sandbox, &stop, &mut first).await {
                        Ended::Stopped => break,
                        Ended::Exited { ready } => {
                            if ready {
                                backoff = Duration::from_secs(1);
                            }
                            tracing::info!("restarting the sandbox daemon in {backoff:?}");
                            tokio::select! {
                                () = tokio::time::sleep(backoff) => {}
                                () = stop.cancelled() => break,
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(60));
                        }
                    }
                }
                std::fs::remove_file(&plan.socket).ok();
                if plan.temporary_root {
                    // The daemon's files there belong to its unprivileged uid; the gateway (root) may
                    // remove them.
                    std::fs::remove_dir_all(&plan.root).ok();
                }
            }
        });
        let _ = first_rx.await;
        Supervisor { stop, task }
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after 5 s) and waits for it.
    pub async fn stop(self) {
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .is_err()
        {
            tracing::warn!("the sandbox daemon did not stop in time");
        }
    }
}

fn spawn(plan: &Plan) -> std::io::Result<Child> {
    let mut cmd = Command::new(&plan.program);
    cmd.args(&plan.args)
        // The daemon gets none of the gateway's environment (the master key may be there); it needs only
        // a PATH to find runsc.
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    die_with_gateway(&mut cmd);
    cmd.spawn()
}

/// Has the kernel send the daemon SIGTERM when the gateway dies, so that a gateway killed without a
/// chance to stop its child (SIGKILL, a crash) leaves no daemon behind. The kernel forgets this when the
/// daemon switches to its unprivileged uid (a gateway running as root); `--exit-with-parent` makes the
/// daemon arm it again after the switch, and [`stop_stale`] still stops a leftover daemon on the next start.
#[allow(unsafe_code)]
fn die_with_gateway(cmd: &mut Command) {
    let gateway = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec. It makes only async-signal-safe system
    // calls (prctl, getppid), takes no locks and does not allocate (the error is a raw OS error).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
            // The gateway may have died between fork and prctl; then nobody would ever stop the child.
            if nix::unistd::getppid() != gateway {
                return Err(nix::errno::Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

/// Stops a daemon that still serves our socket: one left behind by an earlier gateway on this data
/// directory that died without stopping it. Only a process running our daemon binary with `serve` on this
/// very socket is stopped; its temporary root is removed with it.
async fn stop_stale(plan: &Plan) {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(stream) = tokio::net::UnixStream::connect(&plan.socket).await else {
        return;
    };
    // SO_PEERCRED of a connected socket names the process that bound the listening one.
    let Some(pid) = stream.peer_cred().ok().and_then(|c| c.pid()) else {
        return;
    };
    drop(stream);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let ours = args.first().copied() == Some(plan.program.as_os_str().as_bytes())
        && args.contains(&b"serve".as_slice())
        && args.contains(&plan.socket.as_os_str().as_bytes());
    if !ours {
        tracing::warn!(pid, socket = %plan.socket.display(), "another process serves the sandbox socket; the new daemon takes it over");
        return;
    }
    let old_root = args
        .iter()
        .position(|a| *a == b"--root")
        .and_then(|i| args.get(i + 1))
        .map(|r| PathBuf::from(std::ffi::OsStr::from_bytes(r)));
    tracing::warn!(pid, "stopping a sandbox daemon left behind by an earlier gateway");
    let target = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A root the gateway created under the temp dir for that run is the gateway's to remove.
    if let Some(root) = old_root
        && root.starts_with(std::env::temp_dir())
        && root
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("sluice-sandbox-"))
    {
        std::fs::remove_dir_all(&root).ok();
    }
}

/// Re-emits one line of the daemon's log at its own level, without its timestamp (the gateway's log
/// has one).
fn forward(line: &str) {
    let mut words = line.split_whitespace();
    let (Some(time), Some(level)) = (words.next(), words.next()) else {
        tracing::info!(target: "sluice_sandbox", "{line}");
        return;
    };
    if !time.ends_with('Z') {
        // Not a log line: the daemon's own `Error: …` on exit, or its "listening on" notice.
        if time == "Error:" {
            tracing::error!(target: "sluice_sandbox", "{line}");
        } else {
            tracing::info!(target: "sluice_sandbox", "{line}");
        }
        return;
    }
    let rest = line[time.len()..].trim_start();
    let rest = rest.get(level.len()..).unwrap_or(rest).trim_start();
    match level {
        "ERROR" => tracing::error!(target: "sluice_sandbox", "{rest}"),
        "WARN" => tracing::warn!(target: "sluice_sandbox", "{rest}"),
        "DEBUG" | "TRACE" => tracing::debug!(target: "sluice_sandbox", "{rest}"),
        _ => tracing::info!(target: "sluice_sandbox", "{rest}"),
    }
}

/// The line that best says why the daemon stopped: its `Error:` line, else its last line.
fn failure_reason(lines: &Mutex<VecDeque<String>>) -> String {
    error_line(lines)
        .or_else(|| {
            let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
            lines.iter().rev().find(|l| !l.trim().is_empty()).cloned()
        })
        .unwrap_or_else(|| "it printed nothing".to_owned())
}

/// The daemon's last `Error:` line, if it printed one.
fn error_line(lines: &Mutex<VecDeque<String>>) -> Option<String> {
    let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
    lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("Error: ").map(str::to_owned))
}

async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

async fn run_once(
    plan: &Plan,
    sandbox: &Sandbox,
    stop: &CancellationToken,
    first: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Ended {
    let notify = |first: &mut Option<tokio::sync::oneshot::Sender<()>>| {
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
    };
    sandbox.mark_starting();
    stop_stale(plan).await;
    let mut child = match spawn(plan) {
        Ok(c) => c,
        Err(e) => {
            let reason = format!(
                "the sandbox daemon {} could not be started: {e}",
                plan.program.display()
            );
            tracing::error!("{reason}");
            sandbox.set_down(Some(reason));
            notify(first);
            return Ended::Exited { ready: false };
        }
    };
    tracing::info!(program = %plan.program.display(), socket = %plan.socket.display(), "started the sandbox daemon");
    let lines = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(stderr) = child.stderr.take() {
        let lines = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                forward(&line);
                if let Ok(mut l) = lines.lock() {
                    if l.len() == KEPT_LINES {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
            }
        });
    }

    let deadline = Instant::now() + plan.start_timeout;
    loop {
        tokio::select! {
            status = child.wait() => {
                // Let the stderr reader catch the last lines before reading them.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                let reason = format!("the sandbox daemon exited during start-up ({status}): {}", failure_reason(&lines));
                tracing::error!("{reason}");
                sandbox.set_down(Some(reason));
                notify(first);
                return Ended::Exited { ready: false };
            }
            () = stop.cancelled() => {
                terminate(&mut child).await;
                notify(first);
                return Ended::Stopped;
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if sandbox.probe(Duration::from_secs(2)).await.is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    terminate(&mut child).await;
                    let reason = format!(
                        "the sandbox daemon did not answer within {:?} of starting: {}",
                        plan.start_timeout,
                        failure_reason(&lines)
                    );
                    tracing::error!("{reason}");
                    sandbox.set_down(Some(reason));
                    notify(first);
                    return Ended::Exited { ready: false };
                }
            }
        }
    }
    sandbox.set_down(None);
    tracing::info!("the sandbox daemon is ready");
    notify(first);

    tokio::select! {
        status = child.wait() => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            // A daemon that was serving and stopped (killed, crashed) is restarted at once: say so and to
            // retry; its own `Error:` line, if it printed one, says why.
            let why = error_line(&lines).map(|e| format!(": {e}")).unwrap_or_default();
            let reason = format!(
                "the sandbox daemon stopped ({status}){why} and the gateway is restarting it; run the code again in a few seconds"
            );
            tracing::warn!("{reason}");
            sandbox.set_restarting(reason);
            Ended::Exited { ready: true }
        }
        () = stop.cancelled() => {
            terminate(&mut child).await;
            Ended::Stopped
        }
    }
}

/// The sandbox a gateway offers: `up` (`launch`) plans a daemon of its own; `serve` connects to the
/// configured socket. A plan that cannot be made leaves the sandbox unavailable with the reason.
pub fn configure(settings: &Settings, launch: bool) -> (Arc<Sandbox>, Option<Plan>) {
    let sb = &settings.sandbox;
    if !sb.enabled {
        let sandbox = Sandbox::not_configured(
            "the sandbox is disabled on this gateway ([sandbox] enabled = false, SLUICE_SANDBOX=false or \
             --sandbox false)",
            sb.max_timeout_secs,
        );
        return (Arc::new(sandbox), None);
    }
    if launch {
        return match plan(settings) {
            Ok(p) => {
                let sandbox = Sandbox::connect(p.socket.clone(), up_hint(Some(&p)), sb.max_timeout_secs);
                (Arc::new(sandbox), Some(p))
            }
            Err(reason) => {
                tracing::error!("the sandbox daemon cannot be started: {reason}");
                let sandbox = Sandbox::connect(settings.sandbox_socket(), up_hint(None), sb.max_timeout_secs);
                sandbox.set_down(Some(reason));
                (Arc::new(sandbox), None)
            }
        };
    }
    let sandbox = match &sb.socket {
        Some(socket) => Sandbox::connect(socket.clone(), serve_hint(socket), sb.max_timeout_secs),
        None => Sandbox::not_configured(
            "no sandbox daemon is configured for this gateway; start one with `sluice-sandbox serve --socket \
             PATH --root DIR` and set [sandbox] socket = PATH in the config (`sluice up` starts one itself)",
            sb.max_timeout_secs,
        ),
    };
    (Arc::new(sandbox), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use pretty_assertions::assert_eq;

    #[test]
    fn the_plan_passes_the_image_caps_and_gvisor_idle_time_to_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = dir.path().join("sluice-sandbox");
        std::fs::write(&daemon, "").unwrap();
        let flags = |section: &str| {
            let config = dir.path().join("sluice.toml");
            let text = format!(
                "[sandbox]\ndaemon = '{}'\nroot = '{}'\n{section}",
                daemon.display(),
                dir.path().join("root").display()
            );
            std::fs::write(&config, text).unwrap();
            let settings = Settings::resolve(Overrides {
                config: Some(config),
                ..Default::default()
            })
            .unwrap();
            let args: Vec<String> = plan(&settings)
                .unwrap()
                .args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let value = |flag: &str| {
                let at = args.iter().position(|a| a == flag)?;
                Some(args[at + 1].clone())
            };
            (
                value("--image-bytes"),
                value("--images-total-bytes"),
                value("--gvisor-idle-secs"),
            )
        };
        let some = |v: &str| Some(v.to_owned());
        assert_eq!(flags(""), (some("1048576"), some("4194304"), None));
        assert_eq!(
            flags("image_bytes = 2000000\nimages_total_bytes = 3000000\ngvisor_idle_secs = 60\n"),
            (some("2000000"), some("3000000"), some("60"))
        );
    }
}
