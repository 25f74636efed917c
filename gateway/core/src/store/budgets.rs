//! Per-key usage in the store: daily budget spend (`budget_usage`) and a key's recent governed queries
//! from the audit log (for `query_history`).

use super::{AuditRecord, Fields, Store, on_pool, placeholders};
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

fn usage(row: &impl Fields) -> Result<Usage, GatewayError> {
    let get = |name: &str| -> Result<u64, GatewayError> {
        Ok(u64::try_from(row.int_opt(name)?.unwrap_or(0)).unwrap_or(0))
    };
    Ok(Usage {
        queries: get("queries")?,
        rows: get("rows")?,
        bytes: get("bytes")?,
        seconds: row.real_opt("seconds")?.unwrap_or(0.0),
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
        on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO budget_usage (org_id, key_id, session_id, day, queries, rows, bytes, seconds)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (org_id, key_id, day, session_id) DO UPDATE SET
                queries = budget_usage.queries + excluded.queries, rows = budget_usage.rows + excluded.rows,
                bytes = budget_usage.bytes + excluded.bytes, seconds = budget_usage.seconds + excluded.seconds",
        )
        .bind(org_id)
        .bind(key_id)
        .bind(session_id)
        .bind(day)
        .bind(to_i64(delta.queries))
        .bind(to_i64(delta.rows))
        .bind(to_i64(delta.bytes))
        .bind(delta.seconds)
        .execute(p)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Admits one more governed query for the key on `day` if fewer than `limit` were admitted: one
    /// conditional upsert, so every gateway instance on this store counts against the same row and
    /// together they admit exactly `limit`. Returns whether the query was admitted.
    pub async fn admit_query(
        &self,
        org_id: &str,
        key_id: &str,
        day: &str,
        limit: u64,
    ) -> Result<bool, GatewayError> {
        if limit == 0 {
            return Ok(false);
        }
        let admitted: Option<i64> = on_pool!(&self.pool, p => sqlx::query_scalar(
            "INSERT INTO budget_admissions (org_id, key_id, day, queries) VALUES ($1, $2, $3, 1)
             ON CONFLICT (org_id, key_id, day) DO UPDATE SET queries = budget_admissions.queries + 1
             WHERE budget_admissions.queries < $4
             RETURNING queries",
        )
        .bind(org_id)
        .bind(key_id)
        .bind(day)
        .bind(to_i64(limit))
        .fetch_optional(p)
        .await)?;
        Ok(admitted.is_some())
    }

    /// A key's usage on `day`, over all its sessions, or only `session_id`'s when given.
    pub async fn usage(
        &self,
        org_id: &str,
        key_id: &str,
        day: &str,
        session_id: Option<&str>,
    ) -> Result<Usage, GatewayError> {
        // Sums are cast back to BIGINT: PostgreSQL sums BIGINT as NUMERIC.
        on_pool!(&self.pool, p => usage(&sqlx::query(
            "SELECT CAST(sum(queries) AS BIGINT) AS queries, CAST(sum(rows) AS BIGINT) AS rows,
                    CAST(sum(bytes) AS BIGINT) AS bytes, sum(seconds) AS seconds
             FROM budget_usage
             WHERE org_id = $1 AND key_id = $2 AND day = $3 AND session_id = COALESCE($4, session_id)",
        )
        .bind(org_id)
        .bind(key_id)
        .bind(day)
        .bind(session_id)
        .fetch_one(p)
        .await?))
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
        if tools.is_empty() {
            return Ok(Vec::new());
        }
        // Only the number of placeholders is formatted in; the tool names are bound.
        let sql = format!(
            "SELECT {} FROM audit_log
             WHERE org_id = $1 AND key_prefix = $2 AND connection = $3 AND system_query = $4 AND tool IN ({})
             ORDER BY id DESC LIMIT ${}",
            super::AUDIT_COLUMNS,
            placeholders(5, tools.len()),
            5 + tools.len()
        );
        on_pool!(&self.pool, p => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(org_id)
                .bind(key_prefix)
                .bind(connection)
                .bind(false);
            for tool in tools {
                query = query.bind(*tool);
            }
            query
                .bind(limit)
                .fetch_all(p)
                .await?
                .iter()
                .map(super::audit_record)
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[tokio::test]
    async fn usage_adds_up_per_key_and_session() {
        for t in crate::store::engines::each_engine().await {
            usage_adds_up(&t.store).await;
        }
    }

    async fn usage_adds_up(store: &Store) {
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
