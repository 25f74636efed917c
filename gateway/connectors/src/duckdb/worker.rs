//! The DuckDB worker process: the only place where a warehouse file is opened and a statement runs.
//!
//! DuckDB's `max_memory` bounds its buffer manager only; string heaps, list and aggregate states are
//! allocated outside it, and nothing inside a process can stop one huge allocation. So every DuckDB
//! call on a warehouse runs in a worker process that has put an address-space limit (`RLIMIT_AS`) on
//! itself before opening anything: a statement that needs more fails its allocation there (DuckDB turns
//! that into an "Out of Memory Error"), or at worst the worker dies, and the gateway keeps serving.
//!
//! A worker is the `sluice` binary started as `sluice __duckdb-worker` (or the connectors crate's test
//! binary). It reads typed frames ([`super::protocol`]) on stdin and answers on a private copy of its
//! stdout (fd 1 itself is pointed at stderr, so that nothing DuckDB might print can corrupt a frame). It
//! runs one call at a time on its main thread; a reader thread takes the next frames meanwhile, so an
//! `Interrupt` reaches the running statement. Each statement gets a fresh connection, as before, so no
//! session state survives it; the file stays open for the worker's life, which the gateway ends when the
//! connection has been idle for `release_after_idle`.

#![allow(unsafe_code)]

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::os::fd::FromRawFd as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};

use base64::Engine as _;

use super::oneshot::{Database, Interrupter};
use super::protocol::{
    self, Answer, Call, DatabaseSpec, Failure, FromWorker, MAX_FRAME, PROTOCOL, Start, ToWorker,
};
use super::{export, introspect};
use crate::{ConnectorError, QueryResult};

/// The first argument that makes the `sluice` binary a worker.
pub const WORKER_ARG: &str = "__duckdb-worker";

/// Serves the gateway that started this process until it closes stdin. Returns the process's exit code:
/// 0 after a clean end, 2 when the worker could not set itself up (the reason is on stderr).
pub fn serve() -> i32 {
    match serve_inner() {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("sluice DuckDB worker: {message}");
            2
        }
    }
}

fn serve_inner() -> Result<(), String> {
    let mut output = BufWriter::new(private_stdout()?);
    let mut input = BufReader::new(std::io::stdin());
    let start: Start = match protocol::read_frame::<ToWorker>(&mut input) {
        Ok(Some(ToWorker::Start(start))) => start,
        Ok(None) => return Ok(()),
        Ok(Some(other)) => return Err(format!("expected Start, got {other:?}")),
        Err(e) => return Err(format!("reading Start: {e}")),
    };
    if start.protocol != PROTOCOL {
        return Err(format!(
            "the gateway speaks worker protocol {}, this binary {PROTOCOL}",
            start.protocol
        ));
    }
    die_with_parent();
    limit_address_space(start.memory_limit)?;
    protocol::write_frame(&mut output, &FromWorker::Ready { protocol: PROTOCOL })
        .map_err(|e| format!("answering Start: {e}"))?;

    let current = Arc::new(Current::default());
    let (calls, next) = mpsc::channel::<(u64, Call)>();
    let reader_current = Arc::clone(&current);
    std::thread::Builder::new()
        .name("duckdb-worker-input".to_owned())
        .spawn(move || read_input(input, calls, &reader_current))
        .map_err(|e| format!("starting the input thread: {e}"))?;

    let mut engine = Engine::new(start.database);
    while let Ok((id, call)) = next.recv() {
        current.begin(id);
        let outcome = engine.handle(call, &current);
        current.end();
        let retire = matches!(outcome, Err(Failure::MemoryLimit { .. }));
        let reply = FromWorker::Reply { id, outcome };
        let body = match serde_json::to_vec(&reply) {
            Ok(body) if body.len() <= MAX_FRAME => body,
            Ok(body) => too_large(id, body.len())?,
            Err(e) => serde_json::to_vec(&FromWorker::Reply {
                id,
                outcome: Err(Failure::Internal {
                    message: format!("encoding the answer failed: {e}"),
                }),
            })
            .map_err(|e| e.to_string())?,
        };
        protocol::write_bytes(&mut output, &body).map_err(|e| format!("answering: {e}"))?;
        // A worker that ran out of memory may hold on to what it reached; the gateway replaces it, and
        // it stops reading so that nothing else lands on it meanwhile.
        if retire {
            break;
        }
    }
    Ok(())
}

fn too_large(id: u64, bytes: usize) -> Result<Vec<u8>, String> {
    serde_json::to_vec(&FromWorker::Reply {
        id,
        outcome: Err(Failure::Query {
            message: format!(
                "the result is {} MiB, more than the {} MiB a DuckDB result may take; select fewer or \
                 narrower rows or columns",
                bytes >> 20,
                MAX_FRAME >> 20
            ),
        }),
    })
    .map_err(|e| e.to_string())
}

/// Takes the frames after `Start`: calls go to the main thread, interrupts straight to the running
/// statement. Ends (dropping `calls`, which ends the main loop) when the gateway closes stdin.
fn read_input(mut input: BufReader<std::io::Stdin>, calls: mpsc::Sender<(u64, Call)>, current: &Current) {
    loop {
        match protocol::read_frame::<ToWorker>(&mut input) {
            Ok(Some(ToWorker::Call { id, call })) => {
                if calls.send((id, call)).is_err() {
                    return;
                }
            }
            Ok(Some(ToWorker::Interrupt { id })) => current.interrupt(id),
            Ok(Some(ToWorker::Start(_))) => eprintln!("sluice DuckDB worker: a second Start was ignored"),
            Ok(None) => return,
            Err(e) => {
                eprintln!("sluice DuckDB worker: reading a request: {e}");
                return;
            }
        }
    }
}

/// A duplicate of fd 1 for the frames, with fd 1 itself pointed at stderr.
fn private_stdout() -> Result<File, String> {
    // SAFETY: dup and dup2 on the process's own standard descriptors; no Rust object owns fd 1 or 2 (the
    // std handles write to the raw descriptors), and the duplicate is owned by the `File` made from it.
    unsafe {
        let fd = libc::dup(1);
        if fd < 0 {
            return Err(format!("dup(1): {}", std::io::Error::last_os_error()));
        }
        if libc::dup2(2, 1) < 0 {
            return Err(format!("dup2(2, 1): {}", std::io::Error::last_os_error()));
        }
        Ok(File::from_raw_fd(fd))
    }
}

/// Ends this worker when the gateway dies, whatever the worker is doing (a closed stdin is only noticed
/// between calls).
fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
    }
}

/// Puts the address-space limit on this process (soft and hard, so that nothing here can raise it).
fn limit_address_space(bytes: u64) -> Result<(), String> {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass, which lives for the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0 {
        return Err(format!(
            "setting RLIMIT_AS to {bytes} bytes: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// What a timeout uses to stop the running statement: either connection kind's interrupt handle, each
/// a no-op once its connection is gone.
enum Stopper {
    Crate(Arc<duckdb::InterruptHandle>),
    Raw(Arc<Interrupter>),
}

impl Stopper {
    fn interrupt(&self) {
        match self {
            Stopper::Crate(handle) => handle.interrupt(),
            Stopper::Raw(handle) => handle.interrupt(),
        }
    }
}

/// The call running now, and how to stop its statement once it has a connection.
#[derive(Default)]
struct Current(Mutex<Option<(u64, Option<Stopper>)>>);

impl Current {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, Option<Stopper>)>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn begin(&self, id: u64) {
        *self.lock() = Some((id, None));
    }

    fn arm(&self, stopper: Stopper) {
        if let Some((_, slot)) = self.lock().as_mut() {
            *slot = Some(stopper);
        }
    }

    fn end(&self) {
        *self.lock() = None;
    }

    /// Interrupts call `id` if it is the one running and has begun its statement. DuckDB clears a
    /// connection's interrupt when a statement begins, so the gateway repeats it until the answer comes.
    fn interrupt(&self, id: u64) {
        if let Some((running, Some(stopper))) = self.lock().as_ref()
            && *running == id
        {
            stopper.interrupt();
        }
    }
}

/// The worker's database and what it does with it; also the in-process engine the benchmarks measure.
struct Engine {
    spec: Option<DatabaseSpec>,
    db: Option<Database>,
}

impl Engine {
    fn new(spec: Option<DatabaseSpec>) -> Engine {
        Engine { spec, db: None }
    }

    /// The open database, opened on first use (so that a missing or locked file is a call's answer).
    fn database(&mut self) -> Result<&Database, Failure> {
        let Some(spec) = &self.spec else {
            return Err(Failure::Internal {
                message: "this worker was started without a database".to_owned(),
            });
        };
        if self.db.is_none() {
            self.db = Some(open(&spec.path, &spec.settings)?);
        }
        self.db.as_ref().ok_or_else(|| Failure::Internal {
            message: "the database is not open".to_owned(),
        })
    }

    fn handle(&mut self, call: Call, current: &Current) -> Result<Answer, Failure> {
        match call {
            Call::Query { sql, max_rows } => {
                let db = self.database()?;
                let session = db.session().map_err(failure)?;
                current.arm(Stopper::Raw(session.interrupter()));
                super::oneshot::run(&session, &sql, max_rows)
                    .map(Answer::Rows)
                    .map_err(failure)
            }
            Call::ListTables => self
                .with_connection(current, introspect::list_tables)
                .map(Answer::Tables),
            Call::DescribeTable { table } => self
                .with_connection(current, |conn| introspect::describe_table(conn, &table))
                .map(Answer::Table),
            Call::Snapshot => self
                .with_connection(current, introspect::snapshot)
                .map(Answer::Snapshot),
            Call::Ping => self
                .with_connection(current, |conn| {
                    conn.execute_batch("SELECT 1").map_err(super::query_error)
                })
                .map(|()| Answer::Pong),
            Call::Export { csv } => {
                let csv = base64::engine::general_purpose::STANDARD
                    .decode(csv)
                    .map_err(|e| Failure::Internal {
                        message: format!("the export's CSV is not base64: {e}"),
                    })?;
                export::convert(&csv)
                    .map(|bytes| Answer::Parquet(base64::engine::general_purpose::STANDARD.encode(bytes)))
                    .map_err(failure)
            }
        }
    }

    fn with_connection<T>(
        &mut self,
        current: &Current,
        work: impl FnOnce(&duckdb::Connection) -> Result<T, ConnectorError>,
    ) -> Result<T, Failure> {
        let db = self.database()?;
        let conn = db.connection().map_err(failure)?;
        current.arm(Stopper::Crate(conn.interrupt_handle()));
        work(&conn).map_err(failure)
    }
}

/// Opens the file read-only with the connector's settings; a missing file and another process's lock
/// are named as such.
fn open(path: &std::path::Path, settings: &[(String, String)]) -> Result<Database, Failure> {
    if !path.exists() {
        return Err(Failure::NotFound);
    }
    let settings: Vec<(&str, String)> = settings
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    Database::open(path, &settings).map_err(|message| {
        if message.contains("Could not set lock") || message.contains("Conflicting lock") {
            Failure::Locked
        } else if is_memory_error(&message) {
            Failure::MemoryLimit { message }
        } else {
            Failure::Open { message }
        }
    })
}

/// Whether DuckDB's message is a failed allocation: its own "Out of Memory Error" (the buffer manager's
/// `max_memory`, or any `std::bad_alloc` it caught), or an allocation failure it reports otherwise.
pub(crate) fn is_memory_error(message: &str) -> bool {
    message.contains("Out of Memory Error")
        || message.contains("std::bad_alloc")
        || message.contains("failed to allocate")
        || message.contains("Failed to allocate")
}

/// A connector error inside the worker, as it crosses to the gateway.
fn failure(error: ConnectorError) -> Failure {
    match error {
        ConnectorError::Query { message } if message == super::INTERRUPTED => Failure::Interrupted,
        ConnectorError::Query { message } | ConnectorError::Internal(message)
            if is_memory_error(&message) =>
        {
            Failure::MemoryLimit { message }
        }
        ConnectorError::Query { message } => Failure::Query { message },
        ConnectorError::NotFound { .. } => Failure::NotFound,
        ConnectorError::Locked { .. } => Failure::Locked,
        ConnectorError::Open { message, .. } => Failure::Open { message },
        other => Failure::Internal {
            message: other.to_string(),
        },
    }
}

/// The statement path exactly as a worker runs it, in this process, for benchmarks: the file opened
/// read-only with the connector's settings, a fresh connection per statement, one statement per text.
/// Never used by the gateway, which runs every statement in a worker.
#[doc(hidden)]
pub struct InProcess {
    db: Database,
}

impl InProcess {
    pub fn open(
        path: impl Into<PathBuf>,
        options: &super::DuckDbOptions,
    ) -> Result<InProcess, ConnectorError> {
        let path = path.into();
        let settings = super::settings(options);
        let db = open(&path, &settings).map_err(|f| super::pool::connector_error(f, &path, options))?;
        Ok(InProcess { db })
    }

    pub fn query(&self, sql: &str, max_rows: usize) -> Result<QueryResult, ConnectorError> {
        let session = self.db.session()?;
        super::oneshot::run(&session, sql, max_rows)
    }
}
