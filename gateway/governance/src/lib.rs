//! Pure SQL governance: SQL text + dialect + policy in, a verdict (allow, rewrite or deny) with findings out.
//!
//! The engine parses with the connection's own `sqlparser` dialect, refuses everything but one read-only
//! statement, walks the whole tree against per-dialect deny lists and the policy, applies the row limit in
//! the dialect's syntax, and hands back SQL rendered from the checked tree (verified to parse back to it).
//! It does no I/O and never panics; see README.md for the rules and how they are tested.

mod cte;
mod duckdb;
mod duckdb_tree;
mod functions;
mod govern;
mod lex;
mod limit;
mod names;
mod policy;
mod redact;
pub mod rules;
mod statement;
mod verdict;
mod walk;

pub use cte::{CtePart, split_ctes};
pub use duckdb_tree::{govern_duckdb_tree, wrap_with_limit, wraps_the_same_query};
// The dialect enum lives with the rest of the dialect knowledge; governance takes it as an input.
pub use policy::Policy;
pub use sluice_dialect::Dialect;
pub use verdict::{Decision, Finding, Redacted, Severity, Span, StatementKind, Verdict};

/// Checking, rendering, comparing and dropping a statement recurse as deep as the statement nests. The
/// nesting and operator limits bound that depth; these constants guarantee the stack it needs, moving to a
/// fresh segment when the calling thread has less left (tokio's workers have 2 MiB).
const STACK_RED_ZONE: usize = 4 << 20;
const STACK_SIZE: usize = 16 << 20;

/// Governs one SQL text for a connection of `dialect` under `policy`.
///
/// `limit` is the most rows the statement may return (the gateway passes its cap + 1 to detect
/// truncation); queries get a row limit of at most `limit`, introspection statements none.
pub fn govern(sql: &str, dialect: Dialect, policy: &Policy, limit: u64) -> Verdict {
    // A panic inside the parser must neither take the caller down nor let the text through: it is a refusal.
    let governed = std::panic::catch_unwind(|| {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SIZE, || {
            govern::govern(sql, dialect, policy, limit)
        })
    });
    governed.unwrap_or_else(|_| internal_error())
}

fn internal_error() -> Verdict {
    Verdict {
        decision: Decision::Deny,
        findings: vec![Finding {
            rule: rules::INTERNAL_ERROR,
            severity: Severity::Deny,
            message: "Governance failed on this SQL, so it is refused. Rephrase or simplify the query."
                .to_owned(),
            span: None,
        }],
    }
}

/// [`govern`], plus the audit log's redaction of the SQL it allows (`None` when it refuses): what
/// `redact(allowed_sql, dialect)` gives, without reading that SQL again. Governance has verified that the
/// allowed SQL parses back to the very tree it checked, so the redaction is made from that tree: every
/// string and number literal becomes `?`, and `sha256` and `len` describe the allowed SQL. DuckDB's
/// SUMMARIZE and PIVOT statements are redacted from the allowed text. Where [`redact`] would refuse to read
/// the rendering again (nesting or size beyond the default limits), no reading is needed and the redacted
/// text is kept all the same.
pub fn govern_and_redact(
    sql: &str,
    dialect: Dialect,
    policy: &Policy,
    limit: u64,
) -> (Verdict, Option<Redacted>) {
    let governed = std::panic::catch_unwind(|| {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SIZE, || {
            govern::govern_redacting(sql, dialect, policy, limit, true)
        })
    });
    let Ok((verdict, text)) = governed else {
        return (internal_error(), None);
    };
    let redacted = match (&verdict.decision, text) {
        (Decision::Allow { sql: allowed, .. }, Some(text)) => Some(Redacted {
            text: Some(text),
            ..Redacted::failed(allowed)
        }),
        (Decision::Allow { sql: allowed, .. }, None) => Some(redact(allowed, dialect)),
        (Decision::Deny, _) => None,
    };
    (verdict, redacted)
}

/// Replaces every string and number literal of `sql` with `?` for the audit log; on parse failure only the
/// hash and length are kept.
pub fn redact(sql: &str, dialect: Dialect) -> Redacted {
    std::panic::catch_unwind(|| {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SIZE, || redact::redact(sql, dialect))
    })
    .unwrap_or_else(|_| verdict::Redacted::failed(sql))
}

/// Parts of [`govern`] exposed for the benchmark (`benches/governance.rs`) so that it can report their
/// share of the time. Not part of the API and without stability promise. Nothing here skips or loosens a
/// check: each function runs one step exactly as `govern` does.
#[doc(hidden)]
pub mod bench_support {
    use sqlparser::ast::Statement;

    use crate::govern::{Parsed, Prescan, front};
    use crate::lex::Positions;
    use crate::{Dialect, Policy};

    /// The date and timestamp columns of every table of [`boundaries_sql`], as in the date-boundaries
    /// bench's synthetic warehouse (`tests/benches/date_boundaries.rs`): three DATE, three TIMESTAMP.
    pub const BOUNDARY_COLUMNS: [&str; 6] = [
        "created_on",
        "due_on",
        "closed_on",
        "created_at",
        "updated_at",
        "synced_at",
    ];

    /// The statement `get_date_boundaries` sends for `tables` tables of [`BOUNDARY_COLUMNS`] (the shape of
    /// `boundaries_sql` in `gateway/server/src/tools/explore_data.rs`, without its `LIMIT`): a `UNION ALL`
    /// of one aggregate row per table. 40 tables make about 11 KB.
    pub fn boundaries_sql(schema: &str, tables: usize) -> String {
        (0..tables)
            .map(|k| {
                let mut exprs = vec![format!("{k} AS k"), "COUNT(*) AS n".to_owned()];
                for column in BOUNDARY_COLUMNS {
                    exprs.push(format!("MIN(\"{column}\")"));
                    exprs.push(format!("MAX(\"{column}\")"));
                }
                format!("SELECT {} FROM \"{schema}\".\"events_{k:03}\"", exprs.join(", "))
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    /// Step 1, reading: tokenize, pre-scan and parse under the default policy, as the first pass of `govern`
    /// does (without positions). `true` when the text reads.
    pub fn read(sql: &str, dialect: Dialect) -> bool {
        front(sql, dialect, &Policy::default(), Prescan::All, Positions::Drop).is_ok()
    }

    /// The single statement `govern` reads from `sql` (its first pass, without positions), before any
    /// check; `None` for anything else (unreadable text, several statements, DuckDB's special statements).
    pub fn parsed_statement(sql: &str, dialect: Dialect) -> Option<Statement> {
        let Parsed::Statements(mut statements) =
            front(sql, dialect, &Policy::default(), Prescan::All, Positions::Drop)
                .ok()?
                .parsed
        else {
            return None;
        };
        let statement = statements.pop()?;
        statements.is_empty().then_some(statement)
    }

    /// Steps 2–4, the decision on an already parsed statement, exactly as `govern`'s first pass makes it:
    /// statement kind, the walk against the deny lists and `policy`, the row limit. The limited statement
    /// when allowed, `None` when refused.
    pub fn decide(statement: Statement, dialect: Dialect, policy: &Policy, limit: u64) -> Option<Statement> {
        crate::govern::decide(statement, dialect, policy, limit, Positions::Drop)
            .ok()
            .map(|decided| decided.statement)
    }

    /// The statement `govern` renders for `sql` under the default policy: the parsed statement after the
    /// decision, or `None` for anything else (refusals, DuckDB's special statements).
    pub fn limited_statement(sql: &str, dialect: Dialect, limit: u64) -> Option<Statement> {
        decide(
            parsed_statement(sql, dialect)?,
            dialect,
            &Policy::default(),
            limit,
        )
    }

    /// Step 5, verification: render the statement and parse the rendering back to the same tree, as `govern`
    /// does under the default policy. The rendering when it is stable.
    pub fn render_verified(statement: &Statement, dialect: Dialect) -> Option<String> {
        crate::govern::render_verified(statement, dialect, Policy::default().max_depth).ok()
    }
}
