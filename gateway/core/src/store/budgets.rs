//! Per-key usage in the store: daily budget spend (`budget_usage`) and a key's recent governed queries
//! from the audit log (for `query_history`).

use sqlx::Row as _;

use super::{AuditRecord, Store};
use crate::error::GatewayError;

/// What was spent: governed queries run, rows and bytes returned, engine seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Usage {
    pub queries: u64,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn usage(row: &sqlx::sqlite::SqliteRow) -> Result<Usage, GatewayError> {
    let get = |name: &str| -> Result<u64, GatewayError> {
        let v: Option<i64> = row.try_get(name)?;
        Ok(u64::try_from(v.unwrap_or(0)).unwrap_or(0))
    };
    let seconds: Option<f64> = row.try_get("seconds")?;
    Ok(Usage {
        queries: get("queries")?,
        rows: get("rows")?,
        bytes: get("bytes")?,
        seconds: seconds.unwrap_or(0.0),
    })
}

impl Store {
    /// Adds `delta` to the usage of one key's session on `day` (YYYY-MM-DD, UTC).
    pub async fn add_usage(
        &self,
        org_id: &str,
        key_id: &str,
        session_id: &str,
        day: &str,
        delta: Usage,
    ) -> Result<(), GatewayError> {
        sqlx::query(
            "INSERT INTO budget_usage (org_id, key_id, session_id, day, queries, rows, bytes, seconds)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (org_id, key_id, day, session_id) DO UPDATE SET
                queries = queries + excluded.queries, rows = rows + excluded.rows,
                bytes = bytes + excluded.bytes, seconds = seconds + excluded.seconds",
        )
        .bind(org_id)
        .bind(key_id)
        .bind(session_id)
        .bind(day)
        .bind(to_i64(delta.queries))
        .bind(to_i64(delta.rows))
        .bind(to_i64(delta.bytes))
        .bind(delta.seconds)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A key's usage on `day`, over all its sessions, or only `session_id`'s when given.
    pub async fn usage(
        &self,
        org_id: &str,
        key_id: &str,
        day: &str,
        session_id: Option<&str>,
    ) -> Result<Usage, GatewayError> {
        let row = sqlx::query(
            "SELECT sum(queries) AS queries, sum(rows) AS rows, sum(bytes) AS bytes, sum(seconds) AS seconds
             FROM budget_usage
             WHERE org_id = ? AND key_id = ? AND day = ? AND (?5 IS NULL OR session_id = ?5)",
        )
        .bind(org_id)
        .bind(key_id)
        .bind(day)
        .bind(session_id)
        .bind(session_id)
        .fetch_one(&self.pool)
        .await?;
        usage(&row)
    }

    /// The newest audit records of one key's governed queries (not the gateway's own introspection) on a
    /// connection, newest first.
    pub async fn recent_queries(
        &self,
        org_id: &str,
        key_prefix: &str,
        connection: &str,
        tools: &[&str],
        limit: i64,
    ) -> Result<Vec<AuditRecord>, GatewayError> {
        // The tool names are ours, never the caller's; they are bound, not formatted in.
        let tools = serde_json::to_string(tools).unwrap_or_else(|_| "[]".to_owned());
        let sql = format!(
            "SELECT {} FROM audit_log
             WHERE org_id = ? AND key_prefix = ? AND connection = ? AND system_query = 0
               AND tool IN (SELECT value FROM json_each(?))
             ORDER BY id DESC LIMIT ?",
            super::AUDIT_COLUMNS
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(key_prefix)
            .bind(connection)
            .bind(tools)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(super::audit_record).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[tokio::test]
    async fn usage_adds_up_per_key_and_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).await.unwrap();
        let one = Usage {
            queries: 1,
            rows: 10,
            bytes: 100,
            seconds: 0.5,
        };
        store
            .add_usage("local", "k1", "s1", "2026-01-01", one)
            .await
            .unwrap();
        store
            .add_usage("local", "k1", "s1", "2026-01-01", one)
            .await
            .unwrap();
        store
            .add_usage("local", "k1", "s2", "2026-01-01", one)
            .await
            .unwrap();
        store
            .add_usage("local", "k1", "s1", "2026-01-02", one)
            .await
            .unwrap();
        store
            .add_usage("local", "k2", "s1", "2026-01-01", one)
            .await
            .unwrap();
        let total = store.usage("local", "k1", "2026-01-01", None).await.unwrap();
        assert_eq!(
            total,
            Usage {
                queries: 3,
                rows: 30,
                bytes: 300,
                seconds: 1.5
            }
        );
        let session = store
            .usage("local", "k1", "2026-01-01", Some("s2"))
            .await
            .unwrap();
        assert_eq!(session.queries, 1);
        let none = store.usage("local", "k3", "2026-01-01", None).await.unwrap();
        assert_eq!(none, Usage::default());
    }
}
