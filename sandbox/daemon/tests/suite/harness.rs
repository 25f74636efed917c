//! Starts the real daemon binary (as an unprivileged uid when the tests run as root) and talks to it.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_sandbox_protocol::*;

/// The uid the daemon runs as when the tests run as root (CI does): `nobody`.
pub const SANDBOX_UID: u32 = 65534;
/// Processes of one session's gVisor container plus the zygote: the zygote, the intermediate child,
/// `runsc run` (PID 1 of its namespace), runsc re-executed in its rootless user namespace, the gofer, the
/// sandbox, its stub master, and the stubs of the session server's address space and of the two PID 1s
/// it keeps ready for the next runs.
pub const GVISOR_IDLE: usize = 10;
/// Put into the daemon's environment; sandboxed code must never see it.
pub const SECRET: &str = "hunter2-sluice-test-secret";

pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_TEST_PYTHON") {
        return p.into();
    }
    // The system interpreter is readable by an unprivileged uid; a pyenv shim under /root is not.
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3".into()
    } else {
        "python3".into()
    }
}

/// A backend the daemon can be started with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Native,
    Gvisor,
}

impl Kind {
    pub fn flag(self) -> &'static str {
        match self {
            Kind::Native => "native",
            Kind::Gvisor => "gvisor",
        }
    }

    pub fn backend(self) -> Backend {
        match self {
            Kind::Native => Backend::Native,
            Kind::Gvisor => Backend::Gvisor,
        }
    }
}

/// The sandbox venv (`scripts/setup-python.sh` prints its path) from `SLUICE_SANDBOX_PYTHON`, for the tests
/// of its data stack. Without it those tests are skipped with a line saying so, except under the test
/// command (`SLUICE_TEST_REQUIRE_GVISOR=1`), which always sets it: there a missing venv fails the test.
pub fn sandbox_venv_python() -> Option<String> {
    match std::env::var_os("SLUICE_SANDBOX_PYTHON") {
        Some(python) => Some(python.to_string_lossy().into_owned()),
        None => {
            assert!(
                std::env::var_os("SLUICE_TEST_REQUIRE_GVISOR").is_none(),
                "SLUICE_SANDBOX_PYTHON is not set under the test command (scripts/test.sh sets it)"
            );
            eprintln!(
                "skipped: SLUICE_SANDBOX_PYTHON is not set (point it at the venv that \
                 sandbox/daemon/scripts/setup-python.sh prints)"
            );
            None
        }
    }
}

fn runsc_installed() -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/bin".into(), "/usr/sbin".into(), "/usr/local/bin".into()])
        .any(|d: PathBuf| d.join("runsc").is_file())
}

/// Every backend available on this machine: native always, gVisor when `runsc` is installed. With
/// `SLUICE_TEST_REQUIRE_GVISOR=1` (the test command sets it after installing runsc) a missing runsc
/// fails the tests instead of skipping the gVisor half.
pub fn backends() -> Vec<Kind> {
    if runsc_installed() {
        return vec![Kind::Native, Kind::Gvisor];
    }
    assert!(
        std::env::var_os("SLUICE_TEST_REQUIRE_GVISOR").is_none(),
        "SLUICE_TEST_REQUIRE_GVISOR is set but runsc is not installed (sandbox/daemon/scripts/install-runsc.sh)"
    );
    eprintln!(
        "note: runsc is not installed, so only the native backend is tested \
         (sandbox/daemon/scripts/install-runsc.sh installs it)"
    );
    vec![Kind::Native]
}

/// The sandbox's zygote is another package's binary, which `cargo nextest run -p sluice-sandbox`
/// does not build: say so instead of failing every test with a start-up error.
pub fn assert_zygote_built() {
    let daemon = Path::new(env!("CARGO_BIN_EXE_sluice-sandbox"));
    let zygote = daemon.with_file_name("sluice-sandbox-zygote");
    assert!(
        zygote.is_file(),
        "{} is missing: build it first (`cargo build -p sluice-sandbox-zygote`, with the same profile and \
         CARGO_TARGET_DIR), or run the whole workspace's tests",
        zygote.display()
    );
}

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

pub struct Daemon {
    pub kind: Kind,
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub root: PathBuf,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Daemon {
        Self::start_backend(Kind::Native, extra)
    }

    pub fn start_backend(kind: Kind, extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        // The unprivileged daemon must traverse the temp dir to reach its root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let socket = dir.path().join("sandbox.sock");
        let root = dir.path().join("root");
        assert_zygote_built();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice-sandbox"));
        cmd.arg("serve")
            .arg("--socket")
            .arg(&socket)
            .arg("--root")
            .arg(&root)
            .args(if extra.contains(&"--python") {
                Vec::<std::ffi::OsString>::new()
            } else {
                vec!["--python".into(), python().into_os_string()]
            })
            .args([
                "--workspace-mb",
                "32",
                "--tmp-mb",
                "16",
                "--max-file-mb",
                "8",
                "--max-processes",
                "32",
            ])
            .args([
                "--output-bytes",
                "65536",
                "--max-memory-mb",
                "1024",
                "--default-memory-mb",
                "512",
            ])
            .args(["--backend", kind.flag()])
            .args(extra)
            .env("SLUICE_TEST_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if is_root() {
            cmd.arg("--uid").arg(SANDBOX_UID.to_string());
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
                log2.lock().unwrap().push(line);
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!("daemon did not start:\n{}", log.lock().unwrap().join("\n"));
        }
        let root = root.canonicalize().unwrap();
        Daemon {
            kind,
            child,
            dir,
            socket,
            root,
            log,
        }
    }

    pub fn client(&self) -> BlockingClient {
        let c = BlockingClient::connect(&self.socket).unwrap();
        c.stream()
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        c
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Live processes forked from this daemon's zygote, found by the root path every one of them
    /// carries in its command line (or, for runsc's processes, in a `--root` argument), plus all their
    /// descendants (gVisor's stub processes carry nothing).
    pub fn sandbox_processes(&self) -> Vec<i32> {
        let marker = self.root.display().to_string();
        let daemon = self.child.id() as i32;
        let mut tagged = Vec::new();
        let mut parents = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let mut rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("").split(' ');
            if rest.next() == Some("Z") {
                continue;
            }
            let ppid: i32 = rest.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            parents.push((pid, ppid));
            if pid == daemon {
                continue; // The daemon itself has the root in its arguments too.
            }
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            if String::from_utf8_lossy(&cmdline)
                .split('\0')
                .any(|a| a.contains(&marker))
            {
                tagged.push(pid);
            }
        }
        let mut all = tagged;
        let mut i = 0;
        while i < all.len() {
            let p = all[i];
            for (c, pp) in &parents {
                if *pp == p && !all.contains(c) {
                    all.push(*c);
                }
            }
            i += 1;
        }
        // gVisor's ptrace platform keeps the stub process of an address space that ended (every process
        // of a finished run had one) in a pool for reuse, with everything unmapped. Such a stub holds
        // nothing of any run: it is not counted. A live process's stub maps its whole address space.
        let parent = |pid: i32| parents.iter().find(|(c, _)| *c == pid).map(|(_, p)| *p);
        all.retain(|pid| !(empty_address_space(*pid) && parent(*pid).is_some_and(empty_address_space)));
        all
    }

    /// Processes of an idle daemon with one open session: the zygote and that session's warm jail
    /// (natively the session's process, its launcher and the jail's PID 1; under gVisor an intermediate
    /// child, runsc, its gofer, its sandbox and the sandbox's stub processes).
    pub fn idle_processes(&self) -> usize {
        match self.kind {
            Kind::Native => 4,
            Kind::Gvisor => GVISOR_IDLE,
        }
    }

    /// Waits until the daemon is back to [`Self::idle_processes`].
    pub fn wait_idle(&self) {
        self.wait_processes(self.idle_processes());
    }

    /// Waits until exactly `n` sandbox processes remain (kills are asynchronous).
    pub fn wait_processes(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let p = self.sandbox_processes();
            if p.len() == n {
                return;
            }
            if Instant::now() > deadline {
                let detail: Vec<String> = p
                    .iter()
                    .map(|pid| {
                        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                        format!("{pid}: {}", stat.chars().take(60).collect::<String>())
                    })
                    .collect();
                panic!(
                    "expected {n} sandbox processes, found {}:\n{}",
                    p.len(),
                    detail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon still answers: status works and a trivial run prints.
    pub fn assert_serving(&self) {
        let mut c = self.client();
        match c.call(Request::Status).unwrap() {
            // A daemon that quietly fell back to another backend would test the wrong thing.
            Response::Status(st) => assert_eq!(st.backend, self.kind.backend(), "{st:?}"),
            other => panic!("status failed: {other:?}"),
        }
        let s = session("serving-check");
        c.call(Request::OpenSession(OpenSession {
            session: s.clone(),
            workspace_bytes: None,
        }))
        .unwrap();
        let r = run(&mut c, &s, "print(6*7)", None);
        assert_eq!(
            r.stdout.text,
            "42\n",
            "daemon no longer runs code: {r:?}\n{}",
            self.log()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process with at most two mappings (gVisor's stub code and its stack): the stub master, or a pooled
/// stub of an address space that ended.
fn empty_address_space(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|m| m.lines().count() <= 2)
}

pub fn session(name: &str) -> SessionKey {
    SessionKey {
        org: "org".into(),
        key: "key".into(),
        session: name.into(),
    }
}

pub fn open(c: &mut BlockingClient, s: &SessionKey) {
    c.call(Request::OpenSession(OpenSession {
        session: s.clone(),
        workspace_bytes: None,
    }))
    .unwrap();
}

pub fn run_with(
    c: &mut BlockingClient,
    s: &SessionKey,
    code: &str,
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
) -> RunResult {
    let req = RunPython {
        session: s.clone(),
        code: code.into(),
        inputs: vec![],
        timeout_ms,
        memory_mb,
    };
    match c.call(Request::RunPython(req)) {
        Ok(Response::RunPython(r)) => r,
        other => panic!("run failed: {other:?}"),
    }
}

pub fn run(c: &mut BlockingClient, s: &SessionKey, code: &str, timeout_ms: Option<u64>) -> RunResult {
    run_with(c, s, code, timeout_ms, None)
}
