//! Which statement kinds may run: queries, `EXPLAIN` without `ANALYZE`, `SHOW` and `DESCRIBE`. Everything
//! else is refused with a message that says what to send instead.

use sqlparser::ast::{DescribeAlias, Expr, ObjectName, ShowCreateObject, Statement, UtilityOption, Value};

use crate::Dialect;
use crate::rules;
use crate::verdict::{Finding, StatementKind};
use crate::walk::span;
use sqlparser::ast::Spanned;

/// Classifies a top-level statement, refusing every kind that is not read-only.
pub(crate) fn classify(statement: &Statement) -> Result<StatementKind, Finding> {
    match statement {
        Statement::Query(_) => Ok(StatementKind::Query),
        Statement::Explain { describe_alias, analyze, statement: inner, options, .. } => {
            let analyze_option = options.as_deref().unwrap_or(&[]).iter().any(is_analyze);
            if *analyze || analyze_option {
                return Err(Finding::deny(
                    rules::EXPLAIN_ANALYZE,
                    "`EXPLAIN ANALYZE` runs the statement it explains and is not allowed. Use plain `EXPLAIN`, \
                     or run the query itself."
                        .to_owned(),
                    span(statement.span()),
                ));
            }
            match inner.as_ref() {
                Statement::Query(_) => Ok(match describe_alias {
                    DescribeAlias::Describe | DescribeAlias::Desc => StatementKind::Describe,
                    DescribeAlias::Explain => StatementKind::Explain,
                }),
                other => Err(refuse(other, "EXPLAIN is allowed only for read-only queries. ")),
            }
        }
        Statement::ExplainTable { .. } => Ok(StatementKind::Describe),
        Statement::ShowProcessList { .. } => Err(Finding::deny(
            rules::STATEMENT_NOT_ALLOWED,
            "`SHOW PROCESSLIST` reveals other sessions' SQL and is not allowed. Query the data you need directly."
                .to_owned(),
            span(statement.span()),
        )),
        Statement::ShowFunctions { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowCharset(_)
        | Statement::ShowObjects(_)
        | Statement::ShowTables { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowCollation { .. } => Ok(StatementKind::Show),
        other => Err(refuse(other, "")),
    }
}

/// The table an introspection statement looks at, so the table policy applies to it too.
pub(crate) fn introspected(statement: &Statement, dialect: Dialect) -> Option<ObjectName> {
    match statement {
        Statement::ExplainTable { table_name, .. } => Some(table_name.clone()),
        Statement::ShowCreate {
            obj_type: ShowCreateObject::Table | ShowCreateObject::View,
            obj_name,
        } => Some(obj_name.clone()),
        Statement::ShowColumns { show_options, .. } => {
            show_options.show_in.as_ref().and_then(|i| i.parent_name.clone())
        }
        // DuckDB's `SHOW t` describes table `t`.
        Statement::ShowVariable { variable } if dialect == Dialect::DuckDb => {
            Some(ObjectName::from(variable.clone()))
        }
        _ => None,
    }
}

/// `ANALYZE`, `ANALYZE true` and `ANALYZE on` run the statement; `ANALYZE false`, `off` or `0` do not.
fn is_analyze(option: &UtilityOption) -> bool {
    if !option.name.value.eq_ignore_ascii_case("analyze") {
        return false;
    }
    match &option.arg {
        None => true,
        Some(Expr::Value(v)) => match &v.value {
            Value::Boolean(b) => *b,
            Value::Number(n, _) => n != "0",
            Value::SingleQuotedString(s) => !matches!(s.to_ascii_lowercase().as_str(), "off" | "false" | "0"),
            _ => true,
        },
        Some(Expr::Identifier(i)) => !matches!(i.value.to_ascii_lowercase().as_str(), "off" | "false"),
        Some(_) => true,
    }
}

/// The leading keywords of a statement, for messages (`INSERT`, `CREATE TABLE`, `SET`).
fn kind_name(statement: &Statement) -> String {
    let text = statement.to_string();
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("").to_ascii_uppercase();
    let two_word = [
        "CREATE", "DROP", "ALTER", "TRUNCATE", "START", "BEGIN", "SHOW", "COMMENT",
    ];
    match words.next() {
        Some(second)
            if two_word.contains(&first.as_str()) && second.chars().all(|c| c.is_ascii_alphabetic()) =>
        {
            format!("{first} {}", second.to_ascii_uppercase())
        }
        _ => first,
    }
}

/// Words that start a statement which is never a read-only query. Texts starting with one are refused
/// before parsing, so that statements the parser does not know (`LOAD DATA INFILE`, `HANDLER`) are refused
/// as what they are rather than as syntax errors.
const NOT_QUERIES: &[&str] = &[
    "ABORT",
    "ALTER",
    "ANALYZE",
    "ATTACH",
    "BACKUP",
    "BEGIN",
    "BULK",
    "CACHE",
    "CALL",
    "CHECKPOINT",
    "CLUSTER",
    "COMMENT",
    "COMMIT",
    "COPY",
    "CREATE",
    "DBCC",
    "DEALLOCATE",
    "DELETE",
    "DETACH",
    "DISCARD",
    "DO",
    "DROP",
    "END",
    "EXEC",
    "EXECUTE",
    "EXPORT",
    "FLUSH",
    "FORCE",
    "GET",
    "GRANT",
    "HANDLER",
    "IMPORT",
    "INSERT",
    "INSTALL",
    "KILL",
    "LIST",
    "LISTEN",
    "LOAD",
    "LOCK",
    "MERGE",
    "MSCK",
    "NOTIFY",
    "OPTIMIZE",
    "PRAGMA",
    "PREPARE",
    "PURGE",
    "PUT",
    "REFRESH",
    "REINDEX",
    "RELEASE",
    "REMOVE",
    "RENAME",
    "REPAIR",
    "REPLACE",
    "RESET",
    "RESTORE",
    "REVOKE",
    "ROLLBACK",
    "SAVEPOINT",
    "SET",
    "SHUTDOWN",
    "START",
    "TRUNCATE",
    "UNCACHE",
    "UNDROP",
    "UNLISTEN",
    "UNLOCK",
    "UPDATE",
    "UPSERT",
    "USE",
    "VACUUM",
    "WAITFOR",
];

/// Refuses a text whose first word starts a statement that is never a read-only query.
pub(crate) fn refuse_leading_word(word: &str, at: Option<crate::verdict::Span>) -> Option<Finding> {
    let upper = word.to_ascii_uppercase();
    NOT_QUERIES.contains(&upper.as_str()).then(|| {
        Finding::deny(
            rules::STATEMENT_NOT_ALLOWED,
            format!("`{upper}` statements are not allowed. {}", hint(&upper)),
            at,
        )
    })
}

fn hint(first_word: &str) -> &'static str {
    match first_word {
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "REPLACE" | "UPSERT" | "TRUNCATE" | "COPY" | "LOAD" => {
            "Only read-only queries run here; use SELECT to read data."
        }
        "SET" | "RESET" | "USE" => "Session settings are fixed by the gateway; send the query without them.",
        "BEGIN" | "START" | "COMMIT" | "ROLLBACK" | "ABORT" | "END" | "SAVEPOINT" | "RELEASE" => {
            "Each query runs in its own read-only transaction; send the SELECT alone."
        }
        "PRAGMA" => {
            "PRAGMA can change settings; for table information query `pragma_table_info('t')` or use DESCRIBE."
        }
        _ => {
            "Allowed are read-only queries (SELECT, WITH, VALUES, TABLE), EXPLAIN without ANALYZE, SHOW and \
             DESCRIBE."
        }
    }
}

fn refuse(statement: &Statement, prefix: &str) -> Finding {
    let name = kind_name(statement);
    let first = name.split_whitespace().next().unwrap_or("").to_owned();
    Finding::deny(
        rules::STATEMENT_NOT_ALLOWED,
        format!("{prefix}`{name}` statements are not allowed. {}", hint(&first)),
        span(statement.span()),
    )
}
