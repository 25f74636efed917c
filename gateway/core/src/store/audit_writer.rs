//! The audit writer: one task owns every audit insert and commits whatever is queued in one transaction
//! (group commit), so concurrent tool calls neither fight over SQLite's single write lock (whose busy
//! handler sleeps in milliseconds) nor pay one commit each (on PostgreSQL: one fsync per batch).
//!
//! The task keeps one connection of its own (detached from the pool), so SQLite's page cache stays warm
//! between commits instead of being re-read by whichever pooled connection comes next.
//!
//! Strictness is unchanged: every caller waits for the commit that holds its record and gets that
//! commit's result, so a call never answers before its audit record is durable in the store.
//!
//! A store out of reach (a PostgreSQL restart or failover) holds the batch rather than failing it: the
//! writer reconnects and commits the same records for up to [`RETRY_FOR`], and the calls waiting on them
//! answer once they are stored. A commit whose acknowledgement was lost with the connection may so be
//! written twice; an audit log may hold a duplicate, never miss a record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{Connection as _, PgConnection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::audit_stream::{AuditStream, StreamSettings};
use super::{AuditRecord, Pool};
use crate::error::GatewayError;

/// Records committed together at most; a larger queue is split over several commits.
const MAX_BATCH: usize = 256;

/// Records waiting for the writer at most; beyond that, callers wait for room (back-pressure).
const QUEUE: usize = 4096;

struct Pending {
    record: AuditRecord,
    done: oneshot::Sender<Result<(), String>>,
}

/// A handle to the writer task; cheap to clone. The task ends when the last handle is dropped.
#[derive(Clone, Debug)]
pub(super) struct AuditWriter {
    tx: mpsc::Sender<Pending>,
    stream: Stream,
    /// How long a batch is retried while the store is out of reach, in milliseconds.
    retry_ms: Arc<AtomicU64>,
}

/// The JSON-lines copy of committed records, once configured.
type Stream = Arc<Mutex<Option<AuditStream>>>;

impl AuditWriter {
    /// Starts the writer on the current tokio runtime.
    pub(super) fn spawn(pool: Pool) -> AuditWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stream = Stream::default();
        let retry_ms = Arc::new(AtomicU64::new(RETRY_FOR.as_millis() as u64));
        tokio::spawn(run(pool, rx, Arc::clone(&stream), Arc::clone(&retry_ms)));
        AuditWriter { tx, stream, retry_ms }
    }

    /// How long a batch is retried while the store is out of reach (default [`RETRY_FOR`]).
    pub(super) fn retry_for(&self, limit: Duration) {
        self.retry_ms.store(limit.as_millis() as u64, Ordering::Relaxed);
    }

    /// Streams every record committed from now on to `settings`' file.
    pub(super) fn stream(&self, settings: StreamSettings) {
        *self.stream.lock().unwrap_or_else(|p| p.into_inner()) = Some(AuditStream::new(settings));
    }

    /// Queues one record and waits until the transaction holding it has committed (or failed).
    pub(super) async fn append(&self, record: &AuditRecord) -> Result<(), GatewayError> {
        let (done, committed) = oneshot::channel();
        let pending = Pending {
            record: record.clone(),
            done,
        };
        let stopped = || GatewayError::Invalid("the audit writer has stopped".to_owned());
        self.tx.send(pending).await.map_err(|_| stopped())?;
        committed
            .await
            .map_err(|_| stopped())?
            .map_err(|e| GatewayError::Invalid(format!("audit write failed: {e}")))
    }
}

/// The writer's own connection, on the store's engine.
enum Own {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Pool {
    fn is_closed(&self) -> bool {
        super::on_pool!(self, p => p.is_closed())
    }

    async fn own_connection(&self) -> Result<Own, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => Own::Sqlite(p.acquire().await?.detach()),
            Pool::Postgres(p) => Own::Postgres(p.acquire().await?.detach()),
        })
    }
}

/// Appends committed records to the stream, if there is one; a failure is logged, not the call's.
fn stream_committed<'a>(stream: &Stream, records: impl IntoIterator<Item = &'a AuditRecord>) {
    let mut guard = stream.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = guard.as_mut()
        && let Err(e) = s.write(records)
    {
        tracing::error!(error = %e, "could not append to the audit stream file; the store has the records");
    }
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<Pending>, stream: Stream, retry_ms: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut own: Option<Own> = None;
    let metrics = crate::metrics::metrics();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        metrics.audit_queue.set(rx.len() as i64);
        let deadline = Instant::now() + Duration::from_millis(retry_ms.load(Ordering::Relaxed));
        let mut backoff = FIRST_BACKOFF;
        loop {
            if pool.is_closed() {
                // The store was closed (the gateway is ending): so is the writer's connection, and the
                // acquire below says why; nothing to wait for.
                own = None;
            }
            let attempt = match &mut own {
                Some(conn) => Attempt::Inserted(insert_timed(conn, &batch).await),
                None => match pool.own_connection().await {
                    Ok(conn) => Attempt::Inserted(insert_timed(own.insert(conn), &batch).await),
                    Err(e) => Attempt::NoConnection(e),
                },
            };
            let error = match attempt {
                Attempt::Inserted(Ok(())) => {
                    stream_committed(&stream, batch.iter().map(|p| &p.record));
                    for p in batch.drain(..) {
                        let _ = p.done.send(Ok(()));
                    }
                    break;
                }
                Attempt::Inserted(Err(e)) => {
                    metrics.audit_failures.inc();
                    e
                }
                Attempt::NoConnection(e) => e,
            };
            // A lost store (a PostgreSQL restart, say): drop the connection and try the same records again
            // on a new one until the deadline; the callers wait, since none may answer unaudited.
            if is_connection_error(&error) && !pool.is_closed() {
                own = None;
                if Instant::now() + backoff < deadline {
                    if backoff == FIRST_BACKOFF {
                        tracing::warn!(error = %error, records = batch.len(), "the audit store is unreachable; retrying the records until it is back");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                fail_all(&mut batch, &error.to_string());
                break;
            }
            match own.as_mut() {
                // One record the store refuses must not fail the others queued with it: retry one by
                // one, so each caller gets the answer for its own record.
                Some(conn) if batch.len() > 1 => {
                    for p in batch.drain(..) {
                        let result = insert_all(conn, std::slice::from_ref(&p))
                            .await
                            .map_err(|e| e.to_string());
                        if result.is_ok() {
                            stream_committed(&stream, [&p.record]);
                        }
                        let _ = p.done.send(result);
                    }
                }
                _ => fail_all(&mut batch, &error.to_string()),
            }
            break;
        }
    }
}

/// How long the writer keeps trying to commit records while the store is unreachable before the calls
/// waiting on them fail: long enough for a database restart or failover, short enough that an agent is
/// not left waiting on a store that is gone.
const RETRY_FOR: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// One try at committing a batch.
enum Attempt {
    Inserted(Result<(), sqlx::Error>),
    NoConnection(sqlx::Error),
}

/// Inserts the batch, recording how long the write took.
async fn insert_timed(conn: &mut Own, batch: &[Pending]) -> Result<(), sqlx::Error> {
    let started = Instant::now();
    let inserted = insert_all(conn, batch).await;
    crate::metrics::metrics()
        .audit_write_seconds
        .observe(started.elapsed().as_secs_f64());
    inserted
}

fn fail_all(batch: &mut Vec<Pending>, message: &str) {
    for p in batch.drain(..) {
        let _ = p.done.send(Err(message.to_owned()));
    }
}

/// Whether the store itself is out of reach (as opposed to refusing a record): the connection broke, none
/// could be made, or the server is shutting down or starting up (SQLSTATE classes 08 and 57P).
fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Inserts the records in one transaction (a lone record in its own implicit one: one round trip to the
/// store's connection instead of three).
async fn insert_all(conn: &mut Own, batch: &[Pending]) -> Result<(), sqlx::Error> {
    macro_rules! insert {
        ($conn:expr, $r:expr) => {{
            let r: &AuditRecord = $r;
            sqlx::query(
                "INSERT INTO audit_log (ts, org_id, key_prefix, session_id, tool, connection, sql_redacted,
                                        sql_sha256, sql_len, system_query, decision, rule, rows, duration_ms,
                                        error, code_sha256, code_len)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            )
            .bind(&r.ts)
            .bind(&r.org_id)
            .bind(&r.key_prefix)
            .bind(&r.session_id)
            .bind(&r.tool)
            .bind(&r.connection)
            .bind(&r.sql_redacted)
            .bind(&r.sql_sha256)
            .bind(r.sql_len)
            .bind(r.system_query)
            .bind(&r.decision)
            .bind(&r.rule)
            .bind(r.rows)
            .bind(r.duration_ms)
            .bind(&r.error)
            .bind(&r.code_sha256)
            .bind(r.code_len)
            .execute($conn)
            .await
            .map(drop)
        }};
    }
    macro_rules! all {
        ($conn:expr) => {{
            if let [only] = batch {
                return insert!(&mut *$conn, &only.record);
            }
            let mut tx = $conn.begin().await?;
            for p in batch {
                insert!(&mut *tx, &p.record)?;
            }
            tx.commit().await
        }};
    }
    match conn {
        Own::Sqlite(c) => all!(c),
        Own::Postgres(c) => all!(c),
    }
}
