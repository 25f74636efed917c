//! `run_python` latency and throughput per backend, against a plain `python3 -c` subprocess and a
//! `runsc do` cold start measured in the same run. `cargo bench -p sluice-sandbox --bench run_python`;
//! `SLUICE_BENCH_N` sets the number of sequential runs per case (default 200); `SLUICE_BENCH_BACKENDS`
//! (e.g. `native`) limits the backends (build `sluice-sandbox-zygote` with the same profile first: the
//! daemon finds it next to itself), `SLUICE_BENCH_THROUGHPUT_ONLY=1` skips the latency cases (for
//! profiling), and `SLUICE_BENCH_DAEMON` runs another build of the daemon (to compare two builds under
//! the same load).
//!
//! Round trips are timed by the client (connect once, then request → response on the socket), so they
//! include framing, the daemon's scheduling and handing the code to a prepared jail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice_sandbox_protocol::*;

const SANDBOX_UID: u32 = 65534;

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn runsc() -> Option<PathBuf> {
    ["/usr/bin/runsc", "/usr/local/bin/runsc", "/usr/sbin/runsc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn python() -> String {
    std::env::var("SLUICE_SANDBOX_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(backend: &str, extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let socket = dir.path().join("s.sock");
        let daemon = std::env::var("SLUICE_BENCH_DAEMON")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_sluice-sandbox").into());
        let mut cmd = Command::new(daemon);
        cmd.arg("serve")
            .arg("--socket")
            .arg(&socket)
            .arg("--root")
            .arg(dir.path().join("root"))
            .args(["--python", &python(), "--backend", backend])
            .args(["--max-concurrency", "8", "--queue-timeout-ms", "60000"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if is_root() {
            cmd.args(["--uid", &SANDBOX_UID.to_string()]);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(120))
            .expect("daemon did not start");
        Daemon {
            child,
            socket,
            _dir: dir,
        }
    }

    fn session(&self, name: &str) -> (BlockingClient, SessionKey) {
        let mut c = BlockingClient::connect(&self.socket).unwrap();
        let s = SessionKey {
            org: "bench".into(),
            key: "k".into(),
            session: name.into(),
        };
        c.call(Request::OpenSession(OpenSession {
            session: s.clone(),
            workspace_bytes: None,
        }))
        .unwrap();
        (c, s)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn run(c: &mut BlockingClient, s: &SessionKey, code: &str, inputs: &[InputFile]) -> RunResult {
    let req = RunPython {
        session: s.clone(),
        code: code.into(),
        inputs: inputs.to_vec(),
        timeout_ms: Some(60_000),
        memory_mb: None,
    };
    match c.call(Request::RunPython(req)).unwrap() {
        Response::RunPython(r) if r.exit.code == Some(0) => r,
        other => panic!("run failed: {other:?}"),
    }
}

/// p50 and p95 in milliseconds.
fn pct(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95))
}

fn row(what: &str, ms: Vec<f64>) {
    let n = ms.len();
    let (p50, p95) = pct(ms);
    println!("| {what} | {n} | {p50:.1} | {p95:.1} |");
}

const CSV_CODE: &str = "import csv\nfrom collections import defaultdict\nt = defaultdict(float)\n\
for r in csv.DictReader(open('orders.csv')):\n    t[r['region']] += float(r['total'])\nprint(sorted(t.items()))";

fn csv_input() -> Vec<InputFile> {
    let mut csv = String::from("id,region,total\n");
    for i in 0..1000 {
        csv.push_str(&format!("{i},{},{}.5\n", ["eu", "us", "apac"][i % 3], i % 97));
    }
    vec![InputFile {
        path: "orders.csv".into(),
        content: csv.into_bytes().into(),
    }]
}

fn timed(n: usize, mut f: impl FnMut()) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn bench_backend(backend: &str, n: usize) {
    let d = Daemon::start(backend, &[]);
    let (mut c, s) = d.session("seq");
    // Warm-up: the first jail, the page cache.
    for _ in 0..5 {
        run(&mut c, &s, "print(1)", &[]);
    }
    if std::env::var("SLUICE_BENCH_THROUGHPUT_ONLY").is_err() {
        latency(&mut c, &s, backend, n);
    }
    throughput(&d, backend, n);
}

fn latency(c: &mut BlockingClient, s: &SessionKey, backend: &str, n: usize) {
    let mut daemon_ms = Vec::new();
    let rt = timed(n, || daemon_ms.push(run(c, s, "print(1)", &[]).duration_ms));
    row(&format!("{backend}: `print(1)` round trip, back to back"), rt);
    row(
        &format!("{backend}: `print(1)` execution as the daemon measures it"),
        daemon_ms,
    );
    // With a pause the next jail is always ready: the difference to back-to-back is the wait for it.
    let pause = if backend == "gvisor" { 800 } else { 60 };
    let mut spaced_ms = Vec::new();
    for _ in 0..n.min(60) {
        std::thread::sleep(Duration::from_millis(pause));
        let t = Instant::now();
        run(c, s, "print(1)", &[]);
        spaced_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    row(
        &format!("{backend}: `print(1)` round trip, {pause} ms apart (next jail ready)"),
        spaced_ms,
    );
    let inputs = csv_input();
    let csv = timed(n, || {
        run(c, s, CSV_CODE, &inputs);
    });
    row(&format!("{backend}: CSV aggregation (1000 rows) round trip"), csv);
}

fn throughput(d: &Daemon, backend: &str, n: usize) {
    for clients in [2usize, 8] {
        let per = (n / clients).max(5);
        let start = Instant::now();
        std::thread::scope(|scope| {
            for i in 0..clients {
                let d = &d;
                scope.spawn(move || {
                    let (mut c, s) = d.session(&format!("tp-{clients}-{i}"));
                    run(&mut c, &s, "print(1)", &[]);
                    for _ in 0..per {
                        run(&mut c, &s, "print(1)", &[]);
                    }
                });
            }
        });
        // Each client's first (warm-up) run is included in the wall time but not in the count: a
        // conservative rate.
        let rate = (clients * per) as f64 / start.elapsed().as_secs_f64();
        println!(
            "| {backend}: throughput, {clients} clients (own sessions), `print(1)` | {} | {rate:.0} runs/s | |",
            clients * per
        );
    }
}

fn plain_python(n: usize) {
    let ms = timed(n, || {
        let out = Command::new(python()).args(["-c", "print(1)"]).output().unwrap();
        assert_eq!(out.stdout, b"1\n");
    });
    row("`python3 -c 'print(1)'` subprocess (no isolation)", ms);
}

fn runsc_do(runsc: &Path, n: usize) {
    let state = tempfile::tempdir().unwrap();
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let ms = timed(n, || {
        let mut cmd = Command::new(runsc);
        cmd.args([
            "--rootless",
            "--network=none",
            "--ignore-cgroups",
            "--platform=ptrace",
            "--root",
        ])
        .arg(state.path())
        .args(["do", "/usr/bin/python3", "-c", "print(1)"])
        .current_dir("/tmp")
        .env_clear()
        .stdin(Stdio::null());
        if is_root() {
            cmd.uid(SANDBOX_UID).gid(SANDBOX_UID);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.stdout, b"1\n", "{}", String::from_utf8_lossy(&out.stderr));
    });
    row(
        "`runsc --rootless --network=none do python3 -c 'print(1)'` cold start",
        ms,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once with few iterations.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("SLUICE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 5 } else { 200 });
    let backends = std::env::var("SLUICE_BENCH_BACKENDS").unwrap_or_else(|_| "native,gvisor".into());
    let wanted = |b: &str| backends.split(',').any(|w| w.trim() == b);
    let full = std::env::var("SLUICE_BENCH_THROUGHPUT_ONLY").is_err();
    println!("python: {}, n = {n}", python());
    println!("| case | runs | p50 ms | p95 ms |");
    println!("|---|---|---|---|");
    let runsc = runsc();
    if full {
        plain_python(n);
        if let (Some(r), true) = (&runsc, wanted("gvisor")) {
            runsc_do(r, n.min(30));
        }
    }
    if wanted("native") {
        bench_backend("native", n);
    }
    match (&runsc, wanted("gvisor")) {
        (_, false) => {}
        (Some(_), true) => bench_backend("gvisor", n.min(60)),
        (None, true) => println!("gvisor: runsc not installed (sandbox/daemon/scripts/install-runsc.sh)"),
    }
}
