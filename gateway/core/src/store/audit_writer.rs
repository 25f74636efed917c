//! The audit writer: one task owns every audit insert and commits whatever is queued in one transaction
//! (group commit), so concurrent tool calls neither fight over SQLite's single write lock (whose busy
//! handler sleeps in milliseconds) nor pay one commit each (on PostgreSQL: one fsync per batch).
//!
//! The task keeps one connection of its own (detached from the pool), so SQLite's page cache stays warm
//! between commits instead of being re-read by whichever pooled connection comes next.
//!
//! Strictness is unchanged: every caller waits for the commit that holds its record and gets that
//! commit's result, so a call never answers before its audit record is durable in the store.

use std::sync::{Arc, Mutex};

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
}

/// The JSON-lines copy of committed records, once configured.
type Stream = Arc<Mutex<Option<AuditStream>>>;

impl AuditWriter {
    /// Starts the writer on the current tokio runtime.
    pub(super) fn spawn(pool: Pool) -> AuditWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stream = Stream::default();
        tokio::spawn(run(pool, rx, Arc::clone(&stream)));
        AuditWriter { tx, stream }
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

async fn run(pool: Pool, mut rx: mpsc::Receiver<Pending>, stream: Stream) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut own: Option<Own> = None;
    let metrics = crate::metrics::metrics();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        metrics.audit_queue.set(rx.len() as i64);
        if pool.is_closed() {
            // The store was closed: so is the writer's connection, and the acquire below says why.
            own = None;
        }
        let conn = match &mut own {
            Some(conn) => conn,
            None => match pool.own_connection().await {
                Ok(conn) => own.insert(conn),
                Err(e) => {
                    // No connection now: these records fail, the next batch tries again.
                    let message = e.to_string();
                    for p in batch.drain(..) {
                        let _ = p.done.send(Err(message.clone()));
                    }
                    continue;
                }
            },
        };
        let started = std::time::Instant::now();
        let inserted = insert_all(conn, &batch).await;
        metrics
            .audit_write_seconds
            .observe(started.elapsed().as_secs_f64());
        if inserted.is_err() {
            metrics.audit_failures.inc();
        }
        match inserted {
            Ok(()) => {
                stream_committed(&stream, batch.iter().map(|p| &p.record));
                for p in batch.drain(..) {
                    let _ = p.done.send(Ok(()));
                }
            }
            // A lost connection (a PostgreSQL restart, say) is dropped, so the next batch opens another.
            Err(e) if is_connection_error(&e) => {
                own = None;
                let message = e.to_string();
                for p in batch.drain(..) {
                    let _ = p.done.send(Err(message.clone()));
                }
            }
            // One record the store refuses must not fail the others queued with it: retry one by one,
            // so each caller gets the answer for its own record.
            Err(_) if batch.len() > 1 => {
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
            Err(e) => {
                let message = e.to_string();
                for p in batch.drain(..) {
                    let _ = p.done.send(Err(message.clone()));
                }
            }
        }
    }
}

fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed
    )
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
