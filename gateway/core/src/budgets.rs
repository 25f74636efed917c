//! Per-key daily budgets for governed queries: queries, rows, bytes and engine seconds per UTC day,
//! configured in `[budgets]`, checked before a query reaches the engine and spent after it ran.
//!
//! A query is admitted while every limit still has room; its spend is known only afterwards, so the last
//! admitted query may overshoot the row, byte or second limit, and the next one is refused. The query count
//! is reserved at admission, so concurrent calls cannot overshoot it by more than the calls in flight.

use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::AuthContext;
use crate::config::{BudgetLimits, BudgetsSection};
use crate::service::{ErrorKind, ToolError};
use crate::store::Store;
use crate::store::budgets::Usage;

/// The rule id of a refusal for an exhausted budget.
pub const BUDGET_EXHAUSTED: &str = "budget_exhausted";

/// How often usage of keys without a budget is written to the store; between writes it adds up in memory.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Usage not yet in the store, per (org, key id, session, day).
type PendingUsage = std::collections::HashMap<(String, String, String, String), Usage>;

/// Budgets over the store's usage table.
///
/// A key under a budget has its usage written at once (admission reads it back). A key without one only
/// needs its usage for `check_budget`, so it adds up in memory and is written at most once a second (and
/// before any read), which keeps a store write off the path of almost every query.
pub struct Budgets {
    section: BudgetsSection,
    store: Store,
    pending: std::sync::Mutex<(PendingUsage, std::time::Instant)>,
}

/// One dimension of a budget.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Dimension {
    /// `queries`, `rows`, `bytes` or `seconds`.
    pub name: String,
    /// The daily limit; `null` = unlimited.
    pub limit: Option<u64>,
    pub used: f64,
    /// `null` when unlimited.
    pub remaining: Option<f64>,
}

/// A key's budget today.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct BudgetStatus {
    pub key_name: String,
    /// The UTC day the numbers are for (YYYY-MM-DD); budgets reset at 00:00 UTC.
    pub day: String,
    pub dimensions: Vec<Dimension>,
    /// True when a limit is reached: governed queries are refused until the day ends.
    pub exhausted: bool,
    /// The session whose share is shown in `session_usage`.
    pub session_id: String,
    pub session_usage: Usage,
}

/// Today's date in UTC, the budget period.
pub fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

fn dimensions(limits: &BudgetLimits, used: &Usage) -> Vec<Dimension> {
    let rows = [
        ("queries", limits.queries_per_day, used.queries as f64),
        ("rows", limits.rows_per_day, used.rows as f64),
        ("bytes", limits.bytes_per_day, used.bytes as f64),
        ("seconds", limits.seconds_per_day, used.seconds),
    ];
    rows.into_iter()
        .map(|(name, limit, used)| Dimension {
            name: name.to_owned(),
            limit,
            used,
            remaining: limit.map(|l| (l as f64 - used).max(0.0)),
        })
        .collect()
}

/// The refusal of a query whose key has spent a daily limit.
fn exhausted(auth: &AuthContext, day: &str, dimension: &str, used: f64, limit: u64) -> ToolError {
    ToolError {
        kind: ErrorKind::Denied,
        rule: Some(BUDGET_EXHAUSTED.to_owned()),
        message: format!(
            "the daily budget of API key '{}' is exhausted: {} of {limit} {dimension} used today ({day} UTC). The \
             query was not run. Budgets reset at 00:00 UTC; check_budget shows every limit, and the operator \
             can raise them in [budgets].",
            auth.key_name,
            trim(used),
        ),
        line: None,
        column: None,
    }
}

impl Budgets {
    pub fn new(section: BudgetsSection, store: Store) -> Budgets {
        Budgets {
            section,
            store,
            pending: std::sync::Mutex::new((PendingUsage::new(), std::time::Instant::now())),
        }
    }

    /// Admits one governed query for the key, or refuses it with a message that says which limit is
    /// reached and when it resets. Under a limit the query is counted at once (the answer is `true`);
    /// without one, the caller counts it with the rest of the spend, saving a store write.
    pub async fn admit(&self, auth: &AuthContext, session: &str) -> Result<bool, ToolError> {
        let limits = self.section.limits_for(&auth.key_name);
        if limits == BudgetLimits::default() {
            return Ok(false);
        }
        let day = today();
        let used = self
            .store
            .usage(&auth.org_id, &auth.key_id, &day, None)
            .await
            .map_err(|e| ToolError::failed(format!("the budget could not be read: {e}")))?;
        if let Some(d) = dimensions(&limits, &used)
            .into_iter()
            .find(|d| d.limit.is_some_and(|l| d.used >= l as f64))
        {
            return Err(exhausted(auth, &day, &d.name, d.used, d.limit.unwrap_or(0)));
        }
        // The read above is a fast refusal; the query count is decided by one atomic admission in the
        // store, so concurrent calls (on this instance or others sharing the store) admit exactly the limit.
        if let Some(limit) = limits.queries_per_day {
            let admitted = self
                .store
                .admit_query(&auth.org_id, &auth.key_id, &day, limit)
                .await
                .map_err(|e| ToolError::failed(format!("the budget could not be read: {e}")))?;
            if !admitted {
                return Err(exhausted(auth, &day, "queries", limit as f64, limit));
            }
        }
        self.spend(
            auth,
            session,
            Usage {
                queries: 1,
                ..Usage::default()
            },
        )
        .await;
        Ok(true)
    }

    /// Adds what a query spent. A failure is logged, not raised: the query already ran.
    pub async fn spend(&self, auth: &AuthContext, session: &str, usage: Usage) {
        if self.section.limits_for(&auth.key_name) != BudgetLimits::default() {
            self.write(&auth.org_id, &auth.key_id, session, &today(), usage)
                .await;
            return;
        }
        let due = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let entry = pending
                .0
                .entry((
                    auth.org_id.clone(),
                    auth.key_id.clone(),
                    session.to_owned(),
                    today(),
                ))
                .or_default();
            entry.queries += usage.queries;
            entry.rows += usage.rows;
            entry.bytes += usage.bytes;
            entry.seconds += usage.seconds;
            pending.1.elapsed() >= FLUSH_EVERY
        };
        if due {
            self.flush().await;
        }
    }

    /// Writes the usage gathered in memory.
    pub async fn flush(&self) {
        let batch = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.1 = std::time::Instant::now();
            std::mem::take(&mut pending.0)
        };
        for ((org, key, session, day), usage) in batch {
            self.write(&org, &key, &session, &day, usage).await;
        }
    }

    async fn write(&self, org: &str, key: &str, session: &str, day: &str, usage: Usage) {
        if let Err(e) = self.store.add_usage(org, key, session, day, usage).await {
            tracing::error!(error = %e, "budget usage could not be recorded");
        }
    }

    /// The key's budget today, with `session`'s share.
    pub async fn status(&self, auth: &AuthContext, session: &str) -> Result<BudgetStatus, ToolError> {
        self.flush().await;
        let limits = self.section.limits_for(&auth.key_name);
        let day = today();
        let read =
            |e: crate::error::GatewayError| ToolError::failed(format!("the budget could not be read: {e}"));
        let used = self
            .store
            .usage(&auth.org_id, &auth.key_id, &day, None)
            .await
            .map_err(read)?;
        let session_usage = self
            .store
            .usage(&auth.org_id, &auth.key_id, &day, Some(session))
            .await
            .map_err(read)?;
        let dimensions = dimensions(&limits, &used);
        let exhausted = dimensions
            .iter()
            .any(|d| d.limit.is_some_and(|l| d.used >= l as f64));
        Ok(BudgetStatus {
            key_name: auth.key_name.clone(),
            day,
            dimensions,
            exhausted,
            session_id: session.to_owned(),
            session_usage,
        })
    }
}

/// Whole numbers without a fraction, seconds with two decimals.
pub fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, Settings};
    use pretty_assertions::assert_eq;

    fn settings(text: &str) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, text).unwrap();
        Settings::resolve(Overrides {
            config: Some(path),
            ..Default::default()
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn limits_come_from_the_section_or_the_keys_own_entry() {
        let s = settings(
            "[budgets]\nqueries_per_day = 100\nbytes_per_day = 5000\n[budgets.keys.ci-bot]\nrows_per_day = 10\n",
        )
        .unwrap();
        assert_eq!(
            s.budgets.limits_for("local-admin"),
            BudgetLimits {
                queries_per_day: Some(100),
                bytes_per_day: Some(5000),
                ..Default::default()
            }
        );
        assert_eq!(
            s.budgets.limits_for("ci-bot"),
            BudgetLimits {
                rows_per_day: Some(10),
                ..Default::default()
            }
        );
        assert_eq!(
            settings("").unwrap().budgets.limits_for("x"),
            BudgetLimits::default()
        );
        let err = settings("[budgets]\nquery_per_day = 1\n").unwrap_err();
        assert!(err.contains("unknown field `query_per_day`"), "{err}");
        let err = settings("[limits]\nmax_result_bytes = 10\n").unwrap_err();
        assert!(err.contains("max_result_bytes must be at least 1024"), "{err}");
        let err = settings("[[connections]]\nname='a'\nkind='postgres'\ndsn='x'\npool_size=0\n").unwrap_err();
        assert!(
            err.contains("connection 'a': pool_size must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn dimensions_report_remaining_and_unlimited() {
        let limits = BudgetLimits {
            queries_per_day: Some(3),
            seconds_per_day: Some(1),
            ..Default::default()
        };
        let used = Usage {
            queries: 1,
            rows: 7,
            bytes: 0,
            seconds: 1.5,
        };
        let d = dimensions(&limits, &used);
        let got: Vec<(&str, Option<u64>, f64, Option<f64>)> = d
            .iter()
            .map(|d| (d.name.as_str(), d.limit, d.used, d.remaining))
            .collect();
        assert_eq!(
            got,
            vec![
                ("queries", Some(3), 1.0, Some(2.0)),
                ("rows", None, 7.0, None),
                ("bytes", None, 0.0, None),
                ("seconds", Some(1), 1.5, Some(0.0)),
            ]
        );
        assert_eq!((trim(2.0), trim(1.5)), ("2".to_owned(), "1.50".to_owned()));
    }

    #[tokio::test]
    async fn usage_without_a_budget_is_batched_and_exact_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sluice.db")).await.unwrap();
        let budgets = Budgets::new(BudgetsSection::default(), store.clone());
        let auth = crate::testing::ctx().auth;
        let one = Usage {
            queries: 1,
            rows: 10,
            bytes: 100,
            seconds: 0.5,
        };
        budgets.spend(&auth, "s1", one).await;
        budgets.spend(&auth, "s1", one).await;
        budgets.spend(&auth, "s2", one).await;
        // Within the flush interval nothing reached the store yet…
        let stored = store
            .usage(&auth.org_id, &auth.key_id, &today(), None)
            .await
            .unwrap();
        assert_eq!(stored, Usage::default());
        // …and a read flushes first, so check_budget is exact.
        let status = budgets.status(&auth, "s1").await.unwrap();
        assert_eq!(status.session_usage.queries, 2);
        assert_eq!(status.session_usage.rows, 20);
        let stored = store
            .usage(&auth.org_id, &auth.key_id, &today(), None)
            .await
            .unwrap();
        assert_eq!(stored.queries, 3);
        assert_eq!(stored.bytes, 300);
        assert!((stored.seconds - 1.5).abs() < 1e-9);
    }
}
