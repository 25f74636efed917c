//! Query operations: `query_database` (governed execution, capped by rows and bytes, paged with cursors)
//! and `validate_sql` (governance only).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_governance::{Decision, Finding};

use crate::auth::AuthContext;
use crate::cursors::{CursorError, Owner, Remainder, page_len};
use crate::pipeline::CallContext;
use crate::service::{AuditFacts, Outcome, QueryOutput, Services, ToolError};

fn default_row_limit() -> u64 {
    crate::config::DEFAULT_ROW_LIMIT
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryDatabaseArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// One read-only SQL statement in the connection's dialect.
    pub sql: String,
    /// Most rows in the whole result (default 1000); clamped to the server's maximum. A result larger than
    /// one answer's byte cap comes in pages (see `cursor`).
    #[serde(default = "default_row_limit")]
    #[schemars(range(min = 1))]
    pub row_limit: u64,
    /// The `cursor` of a previous page of this same call (same connection_name and sql): returns the next
    /// page of that result without running the query again.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One page of a query result.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct QueryPage {
    /// `rows`/`row_count` are this page's; `truncated` is said on the last page.
    #[serde(flatten)]
    pub result: QueryOutput,
    /// The position of this page's first row in the whole result (0-based).
    pub offset: u64,
    /// Rows in the whole result (at most `row_limit`).
    pub total_rows: u64,
    /// The byte cap of one page's rows (as JSON), `[limits] max_result_bytes`.
    pub page_bytes: u64,
    /// Rows after this page exist.
    pub has_more: bool,
    /// Pass back as `cursor` (with the same connection_name and sql) for the next page; null when this is
    /// the last page or the rest cannot be kept (stateless sessions).
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateSqlArgs {
    /// Name of the connection whose dialect and policy apply.
    pub connection_name: String,
    /// The SQL to check; it is not run.
    pub sql: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ValidationOutput {
    pub connection: String,
    pub dialect: String,
    pub valid: bool,
    /// The SQL as it would run (rewritten with the row limit), when valid.
    pub rewritten_sql: Option<String>,
    pub findings: Vec<FindingOut>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FindingOut {
    pub rule: String,
    pub severity: String,
    pub message: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

pub fn validate(s: &Services, auth: &AuthContext, connection: &str, sql: &str) -> Outcome<ValidationOutput> {
    let (mut audit, conn) = s.sql_target(auth, connection, sql);
    let conn = match conn {
        Ok(c) => c,
        Err(e) => return Outcome::fail(e, audit),
    };
    // As query_database would run it with its default row_limit: the cap it would fetch, plus the one row
    // that tells whether the result was cut.
    let cap = s.row_cap(&conn, crate::config::DEFAULT_ROW_LIMIT);
    let (verdict, _) = crate::governing::govern(sql, conn.dialect, &conn.policy, cap.saturating_add(1));
    let rewritten_sql = match &verdict.decision {
        Decision::Allow { sql, .. } => Some(sql.clone()),
        Decision::Deny => None,
    };
    audit.rule = verdict.denial().map(|f| f.rule.to_owned());
    Outcome {
        result: Ok(ValidationOutput {
            connection: conn.name.clone(),
            dialect: conn.dialect.name().to_owned(),
            valid: verdict.is_allowed(),
            rewritten_sql,
            findings: verdict.findings.iter().map(finding_out).collect(),
        }),
        audit,
    }
}

fn finding_out(f: &Finding) -> FindingOut {
    let severity = serde_json::to_value(f.severity)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    FindingOut {
        rule: f.rule.to_owned(),
        severity,
        message: f.message.clone(),
        line: f.span.as_ref().map(|s| s.line),
        column: f.span.as_ref().map(|s| s.column),
    }
}

fn owner(ctx: &CallContext) -> Option<Owner> {
    ctx.session_id.as_ref().map(|session| Owner {
        org_id: ctx.auth.org_id.clone(),
        key_id: ctx.auth.key_id.clone(),
        session_id: session.clone(),
    })
}

/// `query_database`: runs the query (or continues a cursor) and cuts the rows into a page that fits the
/// byte cap, keeping the rest for the session.
pub async fn query_page(s: &Services, ctx: &CallContext, a: QueryDatabaseArgs) -> Outcome<QueryPage> {
    if a.row_limit == 0 {
        return Outcome::fail(
            ToolError::invalid("row_limit must be at least 1"),
            AuditFacts::default(),
        );
    }
    let page_bytes = s.settings.max_result_bytes;
    let remainder = match &a.cursor {
        Some(cursor) => {
            let audit = AuditFacts {
                connection: Some(a.connection_name.clone()),
                sql: Some(a.sql.clone()),
                ..Default::default()
            };
            let taken = match owner(ctx) {
                Some(owner) => s
                    .cursors
                    .take(&owner, cursor, &a.connection_name, &a.sql)
                    .map(|r| (r, owner)),
                None => Err(CursorError::Unknown),
            };
            match taken {
                Ok((r, owner)) => {
                    let mut audit = audit;
                    audit.sql = Some(r.sql_executed.clone());
                    audit.dialect = s
                        .connection(&ctx.auth, &a.connection_name)
                        .ok()
                        .map(|c| c.dialect);
                    return next_page(s, r, owner, Some(cursor.clone()), page_bytes, 0.0, audit);
                }
                Err(CursorError::Unknown) => {
                    return Outcome::fail(
                        ToolError::invalid(format!(
                            "cursor '{cursor}' is unknown, used up or expired (cursors last {} s unused and \
                             belong to the MCP session that ran the query); run the query again without cursor",
                            s.settings.cursor_ttl.as_secs()
                        )),
                        audit,
                    );
                }
                Err(CursorError::Mismatch) => {
                    return Outcome::fail(
                        ToolError::invalid(
                            "this cursor belongs to another query: send the same connection_name and sql as the \
                             call that returned it",
                        ),
                        audit,
                    );
                }
            }
        }
        None => {
            let outcome = s
                .query_sized_in(
                    &ctx.auth,
                    ctx.session_id.as_deref(),
                    &a.connection_name,
                    &a.sql,
                    a.row_limit,
                )
                .await;
            let audit = outcome.audit;
            let (q, sizes) = match outcome.result {
                Ok(q) => q,
                Err(e) => return Outcome::fail(e, audit),
            };
            let elapsed_ms = q.elapsed_ms;
            let remainder = Remainder {
                connection: a.connection_name.clone(),
                sql: a.sql.clone(),
                sql_executed: q.sql_executed,
                columns: q.columns,
                total_rows: q.rows.len() as u64,
                // The sizes the governed path measured for the budget: no row is encoded twice.
                rows: q.rows.into_iter().zip(sizes).collect(),
                offset: 0,
                truncated: q.truncated,
                row_limit: q.row_limit,
            };
            (remainder, elapsed_ms, audit)
        }
    };
    let (remainder, elapsed_ms, audit) = remainder;
    match owner(ctx) {
        Some(owner) => next_page(s, remainder, owner, None, page_bytes, elapsed_ms, audit),
        None => single_page(remainder, page_bytes, elapsed_ms, audit),
    }
}

/// Splits the first page off `r`.
fn split(mut r: Remainder, page_bytes: u64) -> (Vec<Vec<serde_json::Value>>, Remainder) {
    let n = page_len(r.rows.iter().map(|(_, size)| *size), page_bytes);
    let rest = r.rows.split_off(n);
    let page = std::mem::replace(&mut r.rows, rest);
    let page: Vec<Vec<serde_json::Value>> = page.into_iter().map(|(row, _)| row).collect();
    (page, r)
}

fn page_of(
    page: Vec<Vec<serde_json::Value>>,
    r: &Remainder,
    offset: u64,
    page_bytes: u64,
    elapsed_ms: f64,
    cursor: Option<String>,
) -> QueryPage {
    let has_more = !r.rows.is_empty();
    QueryPage {
        result: QueryOutput {
            connection: r.connection.clone(),
            columns: r.columns.clone(),
            row_count: page.len() as u64,
            rows: page,
            // The row limit cut the end of the result: said where the result ends.
            truncated: r.truncated && !has_more,
            row_limit: r.row_limit,
            elapsed_ms,
            sql_executed: r.sql_executed.clone(),
        },
        offset,
        total_rows: r.total_rows,
        page_bytes,
        has_more,
        cursor,
    }
}

fn next_page(
    s: &Services,
    r: Remainder,
    owner: Owner,
    id: Option<String>,
    page_bytes: u64,
    elapsed_ms: f64,
    mut audit: AuditFacts,
) -> Outcome<QueryPage> {
    let offset = r.offset;
    let (page, mut rest) = split(r, page_bytes);
    rest.offset = offset + page.len() as u64;
    audit.rows = Some(page.len() as u64);
    let cursor = if rest.rows.is_empty() {
        None
    } else {
        s.cursors.keep(owner, id, rest.clone())
    };
    Outcome {
        result: Ok(page_of(page, &rest, offset, page_bytes, elapsed_ms, cursor)),
        audit,
    }
}

/// Without a session there is nowhere to keep the rest: one page and a notice.
fn single_page(r: Remainder, page_bytes: u64, elapsed_ms: f64, mut audit: AuditFacts) -> Outcome<QueryPage> {
    let (page, rest) = split(r, page_bytes);
    audit.rows = Some(page.len() as u64);
    Outcome {
        result: Ok(page_of(page, &rest, 0, page_bytes, elapsed_ms, None)),
        audit,
    }
}
