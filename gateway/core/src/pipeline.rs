//! The request pipeline, in one place: auth → scope → rate limit → governance → execution → audit.
//!
//! Authentication happens at the HTTP edge (no request without a valid key reaches MCP); everything after
//! it happens here, for every tool and every front door, in this order. A front door decodes a call's
//! arguments into a pending operation (a future that does nothing until polled); this module checks the
//! key's scope before the operation does any work, runs it, and writes exactly one audit record for it.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::auth::{AuthContext, Scope};
use crate::service::{AuditFacts, CodeDigest, ErrorKind, Outcome, ToolError};
use crate::store::{AuditRecord, Store};

/// Who is calling, from where.
#[derive(Clone, Debug)]
pub struct CallContext {
    pub auth: AuthContext,
    pub session_id: Option<String>,
    /// This call's id in the gateway's logs (see [`request_id`]).
    pub request_id: String,
    /// Cancelled when the client gives the call up (`notifications/cancelled`, a closed connection or
    /// stdin): the pipeline stops the work, which interrupts the engine statement or kills the sandbox run.
    pub cancel: CancellationToken,
    /// Where the call's progress goes, when the client asked for it (see [`crate::progress`]).
    pub progress: Option<crate::progress::Reporter>,
    /// The W3C `traceparent` the client sent (HTTP header or the MCP request's `_meta`): the call's span
    /// continues that trace (see [`crate::telemetry`]).
    pub traceparent: Option<String>,
}

/// A fresh id for one call: 64 random bits in hex, to find a call's log lines among concurrent ones.
pub fn request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub struct Pipeline {
    pub store: Store,
    pub audit_strict: bool,
    /// Tool calls per key and per org (`[rate_limits]`); see [`crate::rate_limit`].
    limits: crate::rate_limit::CallLimits,
    /// Calls between their start and their audit record, so that a front door that is ending can wait for
    /// their records before it closes the store.
    in_flight: std::sync::atomic::AtomicUsize,
    settled: tokio::sync::Notify,
}

/// Counts a call as in flight while it lives.
struct InFlight<'a>(&'a Pipeline);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

impl Pipeline {
    /// A pipeline without rate limits.
    pub fn new(store: Store, audit_strict: bool) -> Arc<Self> {
        Pipeline::with_limits(store, audit_strict, &crate::config::RateLimitSettings::off())
    }

    /// A pipeline that holds every key and org to `limits`.
    pub fn with_limits(
        store: Store,
        audit_strict: bool,
        limits: &crate::config::RateLimitSettings,
    ) -> Arc<Self> {
        Arc::new(Pipeline {
            store,
            audit_strict,
            limits: crate::rate_limit::CallLimits::new(limits),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            settled: tokio::sync::Notify::new(),
        })
    }

    /// Waits until no call is in flight (each has written its audit record), for at most `limit`; whether
    /// that happened.
    pub async fn settle(&self, limit: std::time::Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.settled.notified();
                if self.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Runs one tool call through every stage and writes its audit record, in the call's span (`run`: tool,
    /// org, key prefix, request id), which continues the client's trace when it sent one.
    pub async fn run<T>(
        &self,
        ctx: &CallContext,
        tool: &str,
        scope: Option<Scope>,
        call: impl Future<Output = Outcome<T>>,
    ) -> Result<T, ToolError> {
        use tracing::Instrument as _;
        let span = tracing::info_span!(
            "run",
            tool = %tool,
            org = %ctx.auth.org_id,
            key = %ctx.auth.key_prefix,
            request = %ctx.request_id
        );
        // Before the span is first entered: OpenTelemetry fixes a span's parent when it starts.
        if let Some(traceparent) = &ctx.traceparent {
            crate::telemetry::continue_trace(&span, traceparent);
        }
        self.run_in_span(ctx, tool, scope, call).instrument(span).await
    }

    async fn run_in_span<T>(
        &self,
        ctx: &CallContext,
        tool: &str,
        scope: Option<Scope>,
        call: impl Future<Output = Outcome<T>>,
    ) -> Result<T, ToolError> {
        self.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _in_flight = InFlight(self);
        let started = Instant::now();
        let outcome = self.execute(ctx, tool, scope, call).await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;

        let record = audit_record(ctx, tool, &outcome, duration_ms);
        observe(&record, &outcome.result);
        if let Err(e) = self.store.append_audit(&record).await {
            tracing::error!(error = %e, "audit write failed");
            if self.audit_strict {
                return Err(ToolError::failed(
                    "the audit log could not be written, so this call's result is withheld; the operator must check the store",
                ));
            }
        }
        match &outcome.result {
            Ok(_) => tracing::info!(duration_ms, "tool call ok"),
            Err(e) => {
                tracing::info!(duration_ms, kind = ?e.kind, rule = ?e.rule, "tool call refused or failed")
            }
        }
        outcome.result
    }

    async fn execute<T>(
        &self,
        ctx: &CallContext,
        tool: &str,
        scope: Option<Scope>,
        call: impl Future<Output = Outcome<T>>,
    ) -> Outcome<T> {
        if let Some(scope) = scope
            && !ctx.auth.scopes.contains(scope)
        {
            let error = ToolError::invalid(format!(
                "this API key lacks the '{}' scope needed by {tool}; create a key with `sluice key create --scope {}`",
                scope.as_str(),
                scope.as_str()
            ));
            return Outcome {
                result: Err(error),
                audit: AuditFacts {
                    rule: Some("missing_scope".to_owned()),
                    ..Default::default()
                },
            };
        }
        if !ctx.auth.tools.allows(tool) {
            let error = ToolError::invalid(format!(
                "this API key may not use {tool}: it was created for {} only; create a key with `sluice key \
                 create --tool {tool}` (or without --tool for every tool its scopes allow)",
                ctx.auth.tools
            ));
            return Outcome {
                result: Err(error),
                audit: AuditFacts {
                    rule: Some("tool_not_allowed".to_owned()),
                    ..Default::default()
                },
            };
        }
        // After the scope check (a call refused for its scope costs no token), before any work. Refused like
        // an exhausted budget: audited `denied` with its rule, and the agent reads when to retry.
        if let Err(refusal) = self.limits.check(&ctx.auth) {
            return Outcome {
                result: Err(refusal.tool_error()),
                audit: AuditFacts {
                    rule: Some(crate::rate_limit::RATE_LIMITED.to_owned()),
                    ..Default::default()
                },
            };
        }
        // A cancelled call's work is dropped where it stands: each connector stops its statement when the
        // future running it goes (DuckDB interrupt, PostgreSQL cancel, MariaDB KILL QUERY, SQLite
        // interrupt), and a sandbox run is killed.
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => Outcome {
                result: Err(ToolError::cancelled()),
                audit: AuditFacts::default(),
            },
            outcome = crate::progress::scope(ctx.progress.clone(), call) => outcome,
        }
    }
}

/// Records the call in the metrics, from what its audit record says.
fn observe<T>(record: &AuditRecord, result: &Result<T, ToolError>) {
    use crate::metrics::{CallLabels, ConnectionLabels, RuleLabels, ToolLabels, metrics};
    let m = metrics();
    m.calls
        .get_or_create(&CallLabels {
            tool: record.tool.clone(),
            outcome: record.decision.clone(),
        })
        .inc();
    m.call_seconds
        .get_or_create(&ToolLabels {
            tool: record.tool.clone(),
        })
        .observe(record.duration_ms / 1000.0);
    if record.decision == "denied"
        && let Some(rule) = &record.rule
    {
        m.refusals.get_or_create(&RuleLabels { rule: rule.clone() }).inc();
    }
    if let (Err(e), Some(connection)) = (result, &record.connection)
        && e.kind == ErrorKind::Failed
    {
        m.engine_errors
            .get_or_create(&ConnectionLabels {
                org: record.org_id.clone(),
                connection: connection.clone(),
            })
            .inc();
    }
}

fn audit_record<T>(ctx: &CallContext, tool: &str, outcome: &Outcome<T>, duration_ms: f64) -> AuditRecord {
    let facts = &outcome.audit;
    let (sql_redacted, sql_sha256, sql_len) = match (&facts.sql, facts.dialect) {
        (Some(sql), dialect) => {
            let redacted = match &facts.sql_redacted {
                // Governance's redaction of this very text (same length and hash) spares parsing it again.
                Some(r) if r.len == sql.len() && r.sha256 == CodeDigest::of(sql).sha256 => r.clone(),
                _ => sluice_governance::redact(sql, dialect.unwrap_or(sluice_governance::Dialect::Unknown)),
            };
            (
                redacted.text,
                Some(redacted.sha256),
                i64::try_from(redacted.len).ok(),
            )
        }
        (None, _) => (None, None, None),
    };
    let (decision, error, rule) = match &outcome.result {
        Ok(_) => ("ok", None, facts.rule.clone()),
        Err(e) if e.kind == ErrorKind::Cancelled => ("cancelled", Some(e.message.clone()), None),
        Err(e) if e.kind == ErrorKind::Denied => ("denied", Some(redact_message(&e.message)), e.rule.clone()),
        Err(e) => (
            "error",
            Some(redact_message(&e.message)),
            facts.rule.clone().or(e.rule.clone()),
        ),
    };
    AuditRecord {
        ts: crate::store::now(),
        org_id: ctx.auth.org_id.clone(),
        key_prefix: ctx.auth.key_prefix.clone(),
        session_id: ctx.session_id.clone(),
        tool: tool.to_owned(),
        connection: facts.connection.clone(),
        sql_redacted,
        sql_sha256,
        sql_len,
        system_query: facts.system_query,
        decision: decision.to_owned(),
        rule,
        rows: facts.rows.and_then(|r| i64::try_from(r).ok()),
        duration_ms,
        error,
        code_sha256: facts.code.as_ref().map(|c| c.sha256.clone()),
        code_len: facts.code.as_ref().and_then(|c| i64::try_from(c.len).ok()),
    }
}

/// Engine error messages can quote the statement and its literals (DuckDB appends `LINE 1: …`). The audit
/// log keeps only the first line, with every quoted string replaced.
pub fn redact_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(first.len());
    let mut quote: Option<char> = None;
    for c in first.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('?');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None if c == '\'' || c == '"' => {
                out.push(c);
                quote = Some(c);
            }
            None => out.push(c),
        }
    }
    if quote.is_some() {
        out.push('?');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_message;
    use pretty_assertions::assert_eq;

    #[test]
    fn error_messages_lose_literals() {
        let cases = [
            (
                "Conversion Error: Could not convert string 'hunter2' to INT32\nLINE 1: SELECT 'hunter2'::INT",
                "Conversion Error: Could not convert string '?' to INT32",
            ),
            (
                "Binder Error: column \"secret\" not found",
                "Binder Error: column \"?\" not found",
            ),
            ("unterminated 'abc", "unterminated '?"),
            ("plain", "plain"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_message(input), expected);
        }
    }

    /// The audit takes governance's redaction only for the very text it describes (same hash and length);
    /// any other SQL (e.g. several statements a tool joined) is redacted from its text.
    #[test]
    fn governance_redaction_is_used_only_for_its_own_text() {
        use super::{AuditFacts, CodeDigest, Outcome, ToolError, audit_record};
        use sluice_governance::{Dialect, Redacted};
        let record = |sql: &str, redacted: Redacted| {
            let outcome = Outcome::<()> {
                result: Err(ToolError::failed("x")),
                audit: AuditFacts {
                    sql: Some(sql.to_owned()),
                    sql_redacted: Some(redacted),
                    dialect: Some(Dialect::DuckDb),
                    ..Default::default()
                },
            };
            audit_record(&crate::testing::ctx(), "query_database", &outcome, 1.0)
        };
        let sql = "SELECT a FROM t WHERE b = 'secret' LIMIT 11";
        let digest = CodeDigest::of(sql);
        // A marker text shows which redaction the record got.
        let governed = Redacted {
            text: Some("redacted by governance".to_owned()),
            sha256: digest.sha256.clone(),
            len: sql.len(),
        };
        let kept = record(sql, governed.clone());
        assert_eq!(kept.sql_redacted, governed.text);
        assert_eq!(kept.sql_sha256, Some(digest.sha256));
        let joined = format!("{sql};\nSELECT 42");
        let anew = record(&joined, governed);
        assert_eq!(
            anew.sql_redacted.as_deref(),
            Some("SELECT a FROM t WHERE b = ? LIMIT ?; SELECT ?")
        );
        assert_eq!(anew.sql_sha256, Some(CodeDigest::of(&joined).sha256));
        assert_eq!(anew.sql_len, i64::try_from(joined.len()).ok());
    }
}

#[cfg(test)]
mod strict_audit {
    use std::sync::Arc;

    use super::*;
    use crate::service::Services;
    use crate::testing;

    /// An operation that succeeds and records nothing beyond the call itself.
    async fn nothing() -> Outcome<()> {
        Outcome {
            result: Ok(()),
            audit: AuditFacts::default(),
        }
    }

    async fn setup(strict: bool) -> (Arc<Pipeline>, Arc<Services>, Store, tempfile::TempDir) {
        let (services, store, dir) = testing::services().await;
        (Pipeline::new(store.clone(), strict), services, store, dir)
    }

    #[tokio::test]
    async fn a_failed_audit_write_fails_the_call_when_strict() {
        let (strict, _s, store, _dir) = setup(true).await;
        let ctx = testing::ctx();
        assert!(strict.run(&ctx, "server_info", None, nothing()).await.is_ok());
        store.close().await;
        let err = strict
            .run(&ctx, "server_info", None, nothing())
            .await
            .unwrap_err();
        assert!(
            err.message.starts_with("the audit log could not be written"),
            "{}",
            err.message
        );

        let (lenient, _s, store, _dir) = setup(false).await;
        store.close().await;
        assert!(lenient.run(&ctx, "server_info", None, nothing()).await.is_ok());
    }

    /// The call's span names the tool, org, key prefix and request id, so every line logged inside the
    /// call (here, the closing "tool call ok") carries them.
    #[tokio::test]
    async fn the_call_span_records_who_and_what() {
        #[derive(Clone, Default)]
        struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let (p, _s, _store, _dir) = setup(true).await;
        let ctx = testing::ctx();
        p.run(&ctx, "server_info", None, nothing()).await.unwrap();
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("tool call ok"))
            .unwrap_or_default();
        for field in [
            "tool=server_info".to_owned(),
            "org=local".to_owned(),
            "key=sluice_test".to_owned(),
            format!("request={}", ctx.request_id),
        ] {
            assert!(line.contains(&field), "{field} missing from: {text}");
        }
    }

    #[tokio::test]
    async fn every_call_writes_one_record() {
        let (p, s, store, _dir) = setup(true).await;
        let ctx = testing::ctx();
        p.run(&ctx, "server_info", None, nothing()).await.unwrap();
        let denied = p
            .run(
                &ctx,
                "query_database",
                Some(Scope::Query),
                s.query(&ctx.auth, "nope", "SELECT 'secret'", 5),
            )
            .await
            .unwrap_err();
        assert!(
            denied.message.contains("unknown connection 'nope'"),
            "{}",
            denied.message
        );
        let records = store.recent_audit("local", 10).await.unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].tool, "query_database");
        assert_eq!(records[0].decision, "error");
        assert_eq!(records[0].sql_redacted.as_deref(), Some("SELECT ?"));
        assert_eq!(records[1].tool, "server_info");
    }

    /// A key over its rate is refused before the operation runs, with a message saying which limit and when
    /// to retry, and the refusal is audited like an exhausted budget; another key is unaffected.
    #[tokio::test]
    async fn a_call_over_the_key_rate_is_refused_audited_and_does_no_work() {
        let (_s, _services, store, _dir) = setup(true).await;
        let limits = crate::config::RateLimitSettings {
            key: Some(crate::config::Rate {
                per_minute: 60,
                burst: 2,
            }),
            ..crate::config::RateLimitSettings::off()
        };
        let p = Pipeline::with_limits(store.clone(), true, &limits);
        let ctx = testing::ctx();
        let ran = std::sync::atomic::AtomicUsize::new(0);
        let counted = || async {
            ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            nothing().await
        };
        for _ in 0..2 {
            p.run(&ctx, "server_info", None, counted()).await.unwrap();
        }
        let err = p.run(&ctx, "server_info", None, counted()).await.unwrap_err();
        assert_eq!(
            err.message,
            "rate limit: key 'test' (sluice_test…) made more than 60 calls per minute (bursts up to 2); retry \
             after 1 s. The call was not run; the operator can raise [rate_limits] key_per_minute."
        );
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 2);
        let mut other = testing::ctx();
        other.auth.key_id = "other".into();
        p.run(&other, "server_info", None, counted()).await.unwrap();
        let records = store.recent_audit("local", 10).await.unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(
            (records[1].decision.as_str(), records[1].rule.as_deref()),
            ("denied", Some("rate_limited"))
        );
        assert!(
            records[1]
                .error
                .as_deref()
                .unwrap_or_default()
                .starts_with("rate limit: key '?' (sluice_test…) made more than 60"),
            "{:?}",
            records[1].error
        );
    }

    /// A key without the tool's scope is refused before the operation runs, and the refusal is audited.
    #[tokio::test]
    async fn a_missing_scope_refuses_before_the_operation_runs() {
        let (p, _s, store, _dir) = setup(true).await;
        let mut ctx = testing::ctx();
        ctx.auth.scopes = crate::auth::Scopes::parse_list("schema").unwrap();
        let ran = std::sync::atomic::AtomicBool::new(false);
        let err = p
            .run(&ctx, "query_database", Some(Scope::Query), async {
                ran.store(true, std::sync::atomic::Ordering::SeqCst);
                nothing().await
            })
            .await
            .unwrap_err();
        assert!(err.message.contains("lacks the 'query' scope"), "{}", err.message);
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
        let records = store.recent_audit("local", 10).await.unwrap();
        assert_eq!(records[0].rule.as_deref(), Some("missing_scope"));
    }
}
