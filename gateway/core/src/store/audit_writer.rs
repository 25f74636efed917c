//! The audit writer: one task owns every audit insert and commits whatever is queued in one transaction
//! (group commit), so concurrent tool calls neither fight over SQLite's single write lock (whose busy
//! handler sleeps in milliseconds) nor pay one commit each.
//!
//! The task keeps one connection of its own (detached from the pool), so SQLite's page cache stays warm
//! between commits instead of being re-read by whichever pooled connection comes next.
//!
//! Strictness is unchanged: every caller waits for the commit that holds its record and gets that
//! commit's result, so a call never answers before its audit record is durable in the store.

use sqlx::{Connection as _, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::AuditRecord;
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
}

impl AuditWriter {
    /// Starts the writer on the current tokio runtime.
    pub(super) fn spawn(pool: SqlitePool) -> AuditWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        AuditWriter { tx }
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

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut own: Option<SqliteConnection> = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if pool.is_closed() {
            // The store was closed: so is the writer's connection, and the acquire below says why.
            own = None;
        }
        let conn = match &mut own {
            Some(conn) => conn,
            None => match pool.acquire().await {
                Ok(conn) => own.insert(conn.detach()),
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
        match insert_all(conn, &batch).await {
            Ok(()) => {
                for p in batch.drain(..) {
                    let _ = p.done.send(Ok(()));
                }
            }
            // One record the store refuses must not fail the others queued with it: retry one by one,
            // so each caller gets the answer for its own record.
            Err(_) if batch.len() > 1 => {
                for p in batch.drain(..) {
                    let result = insert_all(conn, std::slice::from_ref(&p))
                        .await
                        .map_err(|e| e.to_string());
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

/// Inserts the records in one transaction (a lone record in its own implicit one: one round trip to the
/// store's connection instead of three).
async fn insert_all(conn: &mut SqliteConnection, batch: &[Pending]) -> Result<(), sqlx::Error> {
    if let [only] = batch {
        return insert(conn, &only.record).await;
    }
    let mut tx = conn.begin().await?;
    for p in batch {
        insert(&mut tx, &p.record).await?;
    }
    tx.commit().await
}

async fn insert(conn: &mut sqlx::SqliteConnection, r: &AuditRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
            "INSERT INTO audit_log (ts, org_id, key_prefix, session_id, tool, connection, sql_redacted, sql_sha256,
                                    sql_len, system_query, decision, rule, rows, duration_ms, error,
                                    code_sha256, code_len)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{AuditRecord, Store};

    fn record(tool: &str) -> AuditRecord {
        AuditRecord {
            ts: super::super::now(),
            org_id: "local".to_owned(),
            key_prefix: "sluice_test".to_owned(),
            tool: tool.to_owned(),
            decision: "ok".to_owned(),
            ..Default::default()
        }
    }

    async fn count(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM audit_log")
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn concurrent_appends_all_land_before_they_return() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sluice.db")).await.unwrap();
        store.ensure_org("local").await.unwrap();
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.append_audit(&record(&format!("tool_{i}"))).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(count(&store).await, 300);
    }

    #[tokio::test]
    async fn a_refused_record_fails_its_own_call_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sluice.db")).await.unwrap();
        store.ensure_org("local").await.unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log WHEN NEW.tool = 'poison'
             BEGIN SELECT RAISE(ABORT, 'the store refused this record'); END",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                let tool = if i == 25 {
                    "poison".to_owned()
                } else {
                    format!("tool_{i}")
                };
                tokio::spawn(async move { (tool.clone(), store.append_audit(&record(&tool)).await) })
            })
            .collect();
        for t in tasks {
            let (tool, result) = t.await.unwrap();
            if tool == "poison" {
                let message = result.unwrap_err().to_string();
                assert!(message.contains("the store refused this record"), "{message}");
            } else {
                result.unwrap();
            }
        }
        assert_eq!(count(&store).await, 49);
    }
}
