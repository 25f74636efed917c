//! Literal redaction for the audit log: every string and number literal becomes `?`, and the statement is
//! rendered again, so comments go too. Text that cannot be parsed keeps only its hash and length.

use std::ops::ControlFlow;

use sqlparser::ast::{
    ObjectName, ObjectNamePart, ShowStatementFilter, ShowStatementFilterPosition, Statement, Value,
    ValueWithSpan, VisitMut, VisitorMut,
};

use crate::Dialect;
use crate::duckdb::{self, Summarize};
use crate::govern::{Parsed, Prescan, front};
use crate::lex::Positions;
use crate::policy::Policy;
use crate::verdict::Redacted;

const MASK: &str = "?";

struct Redactor;

fn mask_filter(filter: &mut ShowStatementFilter) {
    match filter {
        ShowStatementFilter::Like(s) | ShowStatementFilter::ILike(s) | ShowStatementFilter::NoKeyword(s) => {
            *s = MASK.to_owned();
        }
        ShowStatementFilter::Where(_) => {}
    }
}

impl VisitorMut for Redactor {
    type Break = ();

    fn pre_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
        if !matches!(
            value.value,
            Value::Boolean(_) | Value::Null | Value::Placeholder(_)
        ) {
            value.value = Value::Placeholder(MASK.to_owned());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        // A string literal used as a table (DuckDB `FROM 'file.csv'`) is a literal too.
        for part in &mut relation.0 {
            if let ObjectNamePart::Identifier(ident) = part
                && ident.quote_style == Some('\'')
            {
                ident.value = MASK.to_owned();
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &mut Statement) -> ControlFlow<()> {
        // SHOW patterns are plain strings rather than literal values, so the value hook never sees them.
        let filter = match statement {
            Statement::ShowFunctions { filter }
            | Statement::ShowStatus { filter, .. }
            | Statement::ShowVariables { filter, .. }
            | Statement::ShowCollation { filter } => filter.as_mut(),
            Statement::ShowCharset(c) => c.filter.as_mut(),
            Statement::ShowColumns { show_options, .. }
            | Statement::ShowCatalogs { show_options, .. }
            | Statement::ShowDatabases { show_options, .. }
            | Statement::ShowSchemas { show_options, .. }
            | Statement::ShowTables { show_options, .. }
            | Statement::ShowViews { show_options, .. } => match &mut show_options.filter_position {
                Some(ShowStatementFilterPosition::Infix(f) | ShowStatementFilterPosition::Suffix(f)) => {
                    Some(f)
                }
                None => None,
            },
            _ => None,
        };
        if let Some(filter) = filter {
            mask_filter(filter);
        }
        ControlFlow::Continue(())
    }
}

fn redacted_text(sql: &str, dialect: Dialect) -> Option<String> {
    // The redacted text is rendered from the tree, so positions are not needed.
    let front = front(
        sql,
        dialect,
        &Policy::default(),
        Prescan::SafetyOnly,
        Positions::Drop,
    )
    .ok()?;
    let text = match front.parsed {
        Parsed::Statements(mut statements) => {
            let _ = statements.visit(&mut Redactor);
            statements
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        }
        Parsed::Summarize(mut s) => {
            match s.as_mut() {
                Summarize::Table(q) | Summarize::Query(q) => {
                    let _ = q.visit(&mut Redactor);
                }
            }
            duckdb::render_summarize(&s)?
        }
        Parsed::Pivot(mut p, wrapped) => {
            let _ = p.on.visit(&mut Redactor);
            let _ = p.using.visit(&mut Redactor);
            let pivot = duckdb::render_pivot(&p)?;
            match wrapped {
                Some(_) => format!("SELECT * FROM ({pivot}) AS {} LIMIT ?", crate::limit::WRAP_ALIAS),
                None => pivot,
            }
        }
    };
    if front.asof {
        duckdb::unmark_asof(&text, dialect)
    } else {
        Some(text)
    }
}

/// The redacted text of one statement governance has parsed and checked (`asof`: DuckDB `ASOF` joins were
/// marked before parsing), exactly as [`redacted_text`] makes it from a text that parses to this statement.
pub(crate) fn redacted_statement(mut statement: Statement, dialect: Dialect, asof: bool) -> Option<String> {
    let _ = statement.visit(&mut Redactor);
    let text = statement.to_string();
    if asof {
        duckdb::unmark_asof(&text, dialect)
    } else {
        Some(text)
    }
}

/// Redacts `sql` for the audit log; see [`crate::redact`].
pub(crate) fn redact(sql: &str, dialect: Dialect) -> Redacted {
    let mut redacted = Redacted::failed(sql);
    redacted.text = redacted_text(sql, dialect);
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn check(sql: &str, dialect: Dialect, expected: Option<&str>) {
        let redacted = redact(sql, dialect);
        assert_eq!(redacted.text.as_deref(), expected, "{sql}");
        assert_eq!(redacted.len, sql.len());
        assert_eq!(redacted.sha256, Redacted::failed(sql).sha256);
    }

    #[test]
    fn literals_are_masked_and_the_rest_kept() {
        use Dialect::*;
        check(
            "SELECT * FROM t WHERE a = 'x' AND b = 42",
            PostgreSql,
            Some("SELECT * FROM t WHERE a = ? AND b = ?"),
        );
        check(
            "SELECT $$secret$$, E'x', 1.5e3, -4",
            PostgreSql,
            Some("SELECT ?, ?, ?, -?"),
        );
        check(
            "SELECT NULL, TRUE, DATE '2024-01-01'",
            MySql,
            Some("SELECT NULL, true, DATE ?"),
        );
        check(
            "SELECT * FROM t WHERE a = $1",
            PostgreSql,
            Some("SELECT * FROM t WHERE a = $1"),
        );
        check(
            "SELECT 1 -- card 4111 1111 1111 1111",
            PostgreSql,
            Some("SELECT ?"),
        );
        check("SELECT 1; SELECT 'a'", PostgreSql, Some("SELECT ?; SELECT ?"));
        check("SHOW TABLES LIKE 'cust%'", MySql, Some("SHOW TABLES LIKE '?'"));
        check(
            "SELECT * FROM '/home/alice/ssn.csv'",
            DuckDb,
            Some("SELECT * FROM '?'"),
        );
        check(
            "PIVOT t ON y IN (2000, 2010) USING sum(x)",
            DuckDb,
            Some("PIVOT t ON y IN (?, ?) USING sum(x)"),
        );
        check(
            "SELECT * FROM a ASOF JOIN b ON a.t >= b.t WHERE a.k = 'x'",
            DuckDb,
            Some("SELECT * FROM a ASOF JOIN b ON a.t >= b.t WHERE a.k = ?"),
        );
        check(
            "DELETE FROM t WHERE id = 7",
            PostgreSql,
            Some("DELETE FROM t WHERE id = ?"),
        );
    }

    #[test]
    fn unreadable_text_keeps_only_hash_and_length() {
        check("SELECT 'unterminated", Dialect::PostgreSql, None);
        check("SELEC secret FROM", Dialect::PostgreSql, None);
        let redacted = redact("SELECT 1", Dialect::PostgreSql);
        assert_eq!(
            redacted.sha256,
            "e004ebd5b5532a4b85984a62f8ad48a81aa3460c1ca07701f386135d72cdecf5"
        );
        assert_eq!(redacted.len, 8);
    }
}
