//! The gateway's side of the DuckDB workers: where the worker program is, starting and ending workers,
//! one call on one worker, and the pool of at most `workers` processes per connection.
//!
//! The I/O with a worker is plain blocking pipe I/O, run on tokio's blocking pool by the async callers
//! (and directly by `query_blocking`); the async side only waits, interrupts and kills through a
//! [`Control`] it shares with the blocking call.

use std::ffi::OsString;
use std::io::{BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::DuckDbOptions;
use super::protocol::{self, Answer, Call, DatabaseSpec, Failure, FromWorker, PROTOCOL, Start, ToWorker};
use super::worker::WORKER_ARG;
use crate::{ConnectorError, PoolUsage};

/// How a worker process is started: a program and the arguments that make it serve the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerProgram {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

static HOST: OnceLock<WorkerProgram> = OnceLock::new();

impl WorkerProgram {
    /// `program __duckdb-worker`: the `sluice` binary, or the connectors crate's worker binary.
    pub fn new(program: impl Into<PathBuf>) -> WorkerProgram {
        WorkerProgram {
            program: program.into(),
            args: vec![WORKER_ARG.into()],
        }
    }

    /// Makes this process's own executable the worker program of every DuckDB connection it opens
    /// afterwards: the `sluice` binary calls it at start (its `main` serves `sluice __duckdb-worker`).
    /// The path is read now, so that a binary replaced on disk later still starts workers of this build.
    pub fn use_current_exe() -> std::io::Result<()> {
        let exe = std::env::current_exe()?;
        let _ = HOST.set(WorkerProgram::new(exe));
        Ok(())
    }

    /// The worker program when none is given: `$SLUICE_DUCKDB_WORKER`; else the executable registered
    /// by [`WorkerProgram::use_current_exe`]; else, for tests and benchmarks (whose executables live in
    /// `<target>/<profile>/deps`), `sluice-duckdb-worker` or `sluice` beside this executable or one level
    /// up.
    pub fn locate() -> Result<WorkerProgram, String> {
        if let Some(program) = std::env::var_os("SLUICE_DUCKDB_WORKER").filter(|p| !p.is_empty()) {
            return Ok(WorkerProgram::new(program));
        }
        if let Some(host) = HOST.get() {
            return Ok(host.clone());
        }
        let exe = std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))?;
        let dirs = exe
            .parent()
            .into_iter()
            .chain(exe.parent().and_then(Path::parent));
        for dir in dirs {
            for name in ["sluice-duckdb-worker", "sluice"] {
                let candidate = dir.join(name);
                if candidate.is_file() {
                    return Ok(WorkerProgram::new(candidate));
                }
            }
        }
        Err(format!(
            "no DuckDB worker program: set SLUICE_DUCKDB_WORKER to the `sluice` binary (it serves `sluice \
             {WORKER_ARG}`), or put it beside {}",
            exe.display()
        ))
    }
}

/// How the worker stopped, and whether running out of memory is the likely reason.
fn describe_exit(status: Option<ExitStatus>) -> (String, bool) {
    use std::os::unix::process::ExitStatusExt as _;
    let Some(status) = status else {
        return ("its exit status is unknown".to_owned(), false);
    };
    if let Some(signal) = status.signal() {
        let name = match signal {
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGBUS => " (SIGBUS)",
            _ => "",
        };
        // The kernel's OOM killer and a cgroup limit send SIGKILL; a failed allocation that DuckDB does
        // not catch, or Rust's, aborts; one that is not checked faults.
        let memory = matches!(
            signal,
            libc::SIGKILL | libc::SIGABRT | libc::SIGSEGV | libc::SIGBUS
        );
        return (format!("killed by signal {signal}{name}"), memory);
    }
    match status.code() {
        Some(code) => (format!("exited with status {code}"), false),
        None => ("stopped".to_owned(), false),
    }
}

/// What other threads need of a worker: its stdin (for interrupts) and the process (to kill it).
struct Link {
    stdin: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing guarded here is left half-changed by a panic: at worst a counter is off until the next call.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Link {
    fn send(&self, message: &ToWorker) -> std::io::Result<()> {
        match lock(&self.stdin).as_mut() {
            Some(stdin) => protocol::write_frame(stdin, message),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn kill(&self) {
        // An error means the process has already exited (and is waiting to be reaped): nothing to do.
        let _ = lock(&self.child).kill();
    }
}

/// One worker process, held by the caller running a call on it or by the pool while idle.
pub(super) struct Worker {
    link: Arc<Link>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Worker {
    /// Starts a worker and waits until it has put its memory limit in place.
    fn spawn(program: &WorkerProgram, start: Start) -> Result<Worker, ConnectorError> {
        let mut child = Command::new(&program.program)
            .args(&program.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                ConnectorError::Internal(format!(
                    "could not start the DuckDB worker {}: {e}",
                    program.program.display()
                ))
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ConnectorError::Internal(
                "the DuckDB worker's pipes were not set up".to_owned(),
            ));
        };
        let mut worker = Worker {
            link: Arc::new(Link {
                stdin: Mutex::new(Some(stdin)),
                child: Mutex::new(child),
            }),
            stdout: BufReader::new(stdout),
            next_id: 0,
        };
        // A program that exits at once may close its input before the Start reaches it: then what it wrote,
        // or how it ended, is the reason, not the broken pipe.
        let ready = match worker.link.send(&ToWorker::Start(start)) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
            Ok(()) | Err(_) => protocol::read_frame::<FromWorker>(&mut worker.stdout),
        };
        match ready {
            Ok(Some(FromWorker::Ready { protocol })) if protocol == PROTOCOL => Ok(worker),
            other => {
                let detail = match other {
                    Ok(Some(FromWorker::Ready { protocol })) => {
                        format!("it speaks protocol {protocol}, this gateway {PROTOCOL}")
                    }
                    Ok(Some(FromWorker::Reply { .. })) => "it answered before it was asked".to_owned(),
                    Ok(None) => {
                        let (how, _) = describe_exit(worker.end(Duration::from_secs(1)));
                        format!("it {how} before it was ready (its reason is in the log)")
                    }
                    Err(e) => format!("{e}"),
                };
                let program = program.program.display();
                Err(ConnectorError::Internal(format!(
                    "the DuckDB worker {program} could not start: {detail}"
                )))
            }
        }
    }

    fn pid(&self) -> u32 {
        lock(&self.link.child).id()
    }

    /// Sends one call and reads its answer. An I/O error means the worker is gone (or broke the protocol).
    fn call(&mut self, id: u64, call: &Call) -> Result<Result<Answer, Failure>, CallError> {
        // A copy goes out: the call is kept for a retry on a fresh worker.
        let message = ToWorker::Call {
            id,
            call: call.clone(),
        };
        self.link.send(&message).map_err(CallError::Send)?;
        loop {
            match protocol::read_frame::<FromWorker>(&mut self.stdout) {
                Ok(Some(FromWorker::Reply { id: got, outcome })) if got == id => return Ok(outcome),
                // An answer to an earlier call cannot come (one call at a time); skip anything stale.
                Ok(Some(_)) => {}
                Ok(None) => return Err(CallError::Stopped(None)),
                Err(e) => return Err(CallError::Stopped(Some(e))),
            }
        }
    }

    /// Ends the worker: closes its stdin (it exits after its current call), waits up to `grace`, then
    /// kills it. Returns how it ended.
    fn end(mut self, grace: Duration) -> Option<ExitStatus> {
        lock(&self.link.stdin).take();
        // Drain what it may still write, so that it never blocks on a full pipe while exiting.
        let mut sink = Vec::new();
        let _ = (&mut self.stdout).take(1 << 20).read_to_end(&mut sink);
        let deadline = Instant::now() + grace;
        let mut child = lock(&self.link.child);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                Ok(None) => {
                    let _ = child.kill();
                    return child.wait().ok();
                }
                Err(_) => return None,
            }
        }
    }
}

/// Why a call got no answer.
enum CallError {
    /// The call could not be sent: the worker had already gone; the statement never reached it.
    Send(std::io::Error),
    /// The worker stopped (or broke the protocol) before answering.
    Stopped(Option<std::io::Error>),
}

/// What the async side of a call shares with its blocking side: the worker and call id once the call
/// is on a worker, so that a timeout can interrupt it and a cancelled call can kill it.
#[derive(Default)]
pub(super) struct Control(Mutex<ControlState>);

#[derive(Default)]
struct ControlState {
    running: Option<(Arc<Link>, u64)>,
    killed: bool,
}

impl Control {
    /// Records the worker running the call; `false` (and the worker killed) when the call was given up
    /// before it got there.
    fn arm(&self, link: &Arc<Link>, id: u64) -> bool {
        let mut state = lock(&self.0);
        if state.killed {
            link.kill();
            return false;
        }
        state.running = Some((Arc::clone(link), id));
        true
    }

    /// The call has its answer; `true` when the worker was killed meanwhile (it must not be reused).
    fn disarm(&self) -> bool {
        let mut state = lock(&self.0);
        state.running = None;
        state.killed
    }

    /// Asks the worker to interrupt the call's statement (a no-op before and after it runs).
    pub(super) fn interrupt(&self) {
        let state = lock(&self.0);
        if let Some((link, id)) = &state.running {
            let _ = link.send(&ToWorker::Interrupt { id: *id });
        }
    }

    /// Kills the worker running the call, now or as soon as the call reaches one.
    pub(super) fn kill(&self) {
        let mut state = lock(&self.0);
        state.killed = true;
        if let Some((link, _)) = &state.running {
            link.kill();
        }
    }
}

/// How long a worker whose stdin was closed gets to exit before it is killed. An idle worker exits at
/// once; this only matters for one still finishing a statement.
const END_GRACE: Duration = Duration::from_secs(2);

/// The workers of one DuckDB connection.
pub(super) struct Pool {
    pub(super) path: PathBuf,
    program: Result<WorkerProgram, String>,
    settings: Vec<(String, String)>,
    pub(super) options: DuckDbOptions,
    /// One permit per worker: a call holds one from before it takes a worker until it has given it back.
    pub(super) permits: Arc<tokio::sync::Semaphore>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    idle: Vec<(Worker, Instant)>,
    busy: usize,
    /// Worker processes not yet reaped: busy, idle, or being ended. Zero means the file is released.
    alive: usize,
    /// Their process ids, for tests and diagnostics.
    pids: Vec<u32>,
}

impl State {
    fn forget(&mut self, pid: u32) {
        self.alive = self.alive.saturating_sub(1);
        self.pids.retain(|&p| p != pid);
    }
}

impl Pool {
    pub(super) fn new(path: PathBuf, options: DuckDbOptions) -> Pool {
        let program = match &options.worker_program {
            Some(program) => Ok(program.clone()),
            None => WorkerProgram::locate(),
        };
        let settings = super::settings(&options);
        let size = options.workers.max(1);
        Pool {
            path,
            program,
            settings,
            options,
            permits: Arc::new(tokio::sync::Semaphore::new(size)),
            state: Mutex::new(State::default()),
        }
    }

    pub(super) fn size(&self) -> usize {
        self.options.workers.max(1)
    }

    pub(super) fn is_open(&self) -> bool {
        lock(&self.state).alive > 0
    }

    pub(super) fn usage(&self) -> PoolUsage {
        let state = lock(&self.state);
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        PoolUsage {
            in_use: count(state.busy),
            idle: count(state.idle.len()),
            max: count(self.size()),
        }
    }

    pub(super) fn pids(&self) -> Vec<u32> {
        lock(&self.state).pids.clone()
    }

    fn start(&self) -> Start {
        Start {
            protocol: PROTOCOL,
            memory_limit: self.options.worker_memory,
            database: Some(DatabaseSpec {
                path: self.path.clone(),
                settings: self.settings.clone(),
            }),
        }
    }

    /// An idle worker, or a new one; counted busy either way.
    fn checkout(&self, fresh: bool) -> Result<Worker, ConnectorError> {
        if !fresh {
            let mut state = lock(&self.state);
            if let Some((worker, _)) = state.idle.pop() {
                state.busy += 1;
                return Ok(worker);
            }
        }
        let program = self.program.clone().map_err(ConnectorError::Internal)?;
        let worker = Worker::spawn(&program, self.start())?;
        let mut state = lock(&self.state);
        state.alive += 1;
        state.pids.push(worker.pid());
        state.busy += 1;
        Ok(worker)
    }

    /// Gives a worker back: idle for the next call, or ended at once when the idle period is zero.
    fn check_in(&self, worker: Worker) {
        if self.options.release_after_idle.is_zero() {
            self.discard(worker);
            return;
        }
        let mut state = lock(&self.state);
        state.busy = state.busy.saturating_sub(1);
        state.idle.push((worker, Instant::now()));
    }

    /// Ends a busy worker and forgets it; returns how it ended.
    fn discard(&self, worker: Worker) -> Option<ExitStatus> {
        let pid = worker.pid();
        let status = worker.end(END_GRACE);
        let mut state = lock(&self.state);
        state.busy = state.busy.saturating_sub(1);
        state.forget(pid);
        status
    }

    /// Ends the workers idle for `idle` or longer (blocking: waits until they have exited, so that the
    /// file is released when this returns).
    pub(super) fn end_idle(&self, idle: Duration) {
        let expired: Vec<Worker> = {
            let mut state = lock(&self.state);
            let (old, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut state.idle)
                .into_iter()
                .partition(|(_, since)| since.elapsed() >= idle);
            state.idle = keep;
            old.into_iter().map(|(w, _)| w).collect()
        };
        for worker in expired {
            let pid = worker.pid();
            worker.end(END_GRACE);
            lock(&self.state).forget(pid);
        }
    }

    pub(super) fn has_idle(&self) -> bool {
        !lock(&self.state).idle.is_empty()
    }

    /// Runs one call on a worker (blocking). The caller holds a permit.
    pub(super) fn run(&self, call: &Call, control: &Control) -> Result<Answer, ConnectorError> {
        let mut fresh = false;
        loop {
            let mut worker = self.checkout(fresh)?;
            worker.next_id += 1;
            let id = worker.next_id;
            if !control.arm(&worker.link, id) {
                self.discard(worker);
                return Err(ConnectorError::Internal("the call was cancelled".to_owned()));
            }
            let outcome = worker.call(id, call);
            let killed = control.disarm();
            return match outcome {
                Ok(outcome) => {
                    let spent = matches!(outcome, Err(Failure::MemoryLimit { .. }));
                    if killed || spent {
                        self.discard(worker);
                    } else {
                        self.check_in(worker);
                    }
                    outcome.map_err(|f| connector_error(f, &self.path, &self.options))
                }
                // An idle worker that had gone (killed from outside while idle) never saw the call: the
                // call goes to a fresh worker instead, once.
                Err(CallError::Send(_)) if !fresh && !killed => {
                    self.discard(worker);
                    fresh = true;
                    continue;
                }
                Err(CallError::Send(e) | CallError::Stopped(Some(e))) => {
                    let status = self.discard(worker);
                    Err(self.stopped(status, Some(e)))
                }
                Err(CallError::Stopped(None)) => {
                    let status = self.discard(worker);
                    Err(self.stopped(status, None))
                }
            };
        }
    }

    fn stopped(&self, status: Option<ExitStatus>, error: Option<std::io::Error>) -> ConnectorError {
        let (mut how, memory) = describe_exit(status);
        if let Some(e) = error
            && e.kind() != std::io::ErrorKind::UnexpectedEof
        {
            how = format!("{how}; {e}");
        }
        let likely = if memory {
            format!(
                "; it most likely exceeded its memory limit of {} ([duckdb] worker_memory)",
                human_bytes(self.options.worker_memory)
            )
        } else {
            String::new()
        };
        ConnectorError::WorkerStopped { how, likely }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Idle workers exit as soon as their stdin closes; they are reaped off this thread, which may be
        // an async one.
        let idle: Vec<Worker> = std::mem::take(&mut lock(&self.state).idle)
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        if idle.is_empty() {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("duckdb-worker-reaper".to_owned())
            .spawn(move || {
                for worker in idle {
                    worker.end(END_GRACE);
                }
            });
    }
}

/// A worker's failure as the connector reports it.
pub(super) fn connector_error(failure: Failure, path: &Path, options: &DuckDbOptions) -> ConnectorError {
    match failure {
        Failure::NotFound => ConnectorError::NotFound {
            path: path.to_owned(),
        },
        Failure::Locked => ConnectorError::Locked {
            path: path.to_owned(),
        },
        Failure::Open { message } => ConnectorError::Open {
            path: path.to_owned(),
            message,
        },
        Failure::Query { message } => ConnectorError::Query { message },
        Failure::MemoryLimit { message } => ConnectorError::MemoryLimit {
            limit: human_bytes(options.worker_memory),
            detail: message,
        },
        Failure::Interrupted => ConnectorError::Query {
            message: super::INTERRUPTED.to_owned(),
        },
        Failure::Internal { message } => ConnectorError::Internal(message),
    }
}

/// Runs one call on a worker of its own, started for it and ended after it (blocking): the export path.
pub(super) fn run_once(call: &Call, memory_limit: u64) -> Result<Answer, ConnectorError> {
    let program = WorkerProgram::locate().map_err(ConnectorError::Internal)?;
    let start = Start {
        protocol: PROTOCOL,
        memory_limit,
        database: None,
    };
    let mut worker = Worker::spawn(&program, start)?;
    let outcome = worker.call(1, call);
    let status = worker.end(END_GRACE);
    match outcome {
        Ok(outcome) => outcome.map_err(|failure| match failure {
            Failure::MemoryLimit { message } => ConnectorError::MemoryLimit {
                limit: human_bytes(memory_limit),
                detail: message,
            },
            Failure::Query { message } | Failure::Internal { message } | Failure::Open { message } => {
                ConnectorError::Query { message }
            }
            other => ConnectorError::Internal(format!("{other:?}")),
        }),
        Err(_) => {
            let (how, memory) = describe_exit(status);
            let likely = if memory {
                format!(
                    "; it most likely exceeded its memory limit of {}",
                    human_bytes(memory_limit)
                )
            } else {
                String::new()
            };
            Err(ConnectorError::WorkerStopped { how, likely })
        }
    }
}

/// `2 GiB`, `512 MiB`, or a byte count when it is not a whole number of either.
pub fn human_bytes(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads a memory size: a number and an optional unit, `B`, `KB`/`MB`/`GB`/`TB` (powers of 1000) or
/// `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024), case-insensitive: `2GiB`, `512 MiB`, `1.5GB`.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a memory size; write it like 2GiB or 512MiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => {
            return Err(format!(
                "'{other}' is not a memory unit; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ));
        }
    };
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_read_and_print() {
        for (text, bytes) in [
            ("2GiB", 2u64 << 30),
            ("512 MiB", 512 << 20),
            ("1.5GB", 1_500_000_000),
            ("1048576", 1 << 20),
            ("4kb", 4000),
        ] {
            assert_eq!(parse_memory(text), Ok(bytes), "{text}");
        }
        for bad in ["", "GB", "2 parsecs", "-1GB", "1..2GB"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert_eq!(human_bytes(2 << 30), "2 GiB");
        assert_eq!(human_bytes(512 << 20), "512 MiB");
        assert_eq!(human_bytes(1_500_000_000), "1500000000 bytes");
    }
}
