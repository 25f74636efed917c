//! One table per concern pins every mapping of every dialect and every engine, so that a change to any
//! of them is a visible diff here.

use std::any::TypeId;

use pretty_assertions::assert_eq;
use sqlparser::dialect::{
    BigQueryDialect, DatabricksDialect, DuckDbDialect, GenericDialect, MsSqlDialect, MySqlDialect,
    PostgreSqlDialect, RedshiftSqlDialect, SQLiteDialect, SnowflakeDialect,
};

use crate::{ConnectorKind, Dialect, NulInLiteral, Quoting};

/// Everything a dialect decides, in one row.
#[derive(Debug, PartialEq)]
struct Row {
    name: &'static str,
    title: &'static str,
    parser: TypeId,
    quoting: Quoting,
    /// `o'brien\` as a literal.
    literal: String,
    text_cast: String,
    null_date: String,
    reads_files_through_table_names: bool,
    runs_executable_comments: bool,
}

fn row(d: Dialect) -> Row {
    Row {
        name: d.name(),
        title: d.title(),
        parser: d.parser().dialect(),
        quoting: d.quoting(),
        literal: d.string_literal("o'brien\\").unwrap_or_default(),
        text_cast: d.cast_to_text("x"),
        null_date: d.null_of("DATE"),
        reads_files_through_table_names: d.reads_files_through_table_names(),
        runs_executable_comments: d.runs_executable_comments(),
    }
}

#[test]
fn every_dialect() {
    #[rustfmt::skip]
    let expected = [
        (Dialect::DuckDb, "duckdb", "DuckDB", TypeId::of::<DuckDbDialect>(), Quoting::Double, r"'o''brien\'", "CAST(x AS VARCHAR)", "CAST(NULL AS DATE)", true, false),
        (Dialect::PostgreSql, "postgres", "PostgreSQL", TypeId::of::<PostgreSqlDialect>(), Quoting::Double, r"'o''brien\'", "CAST(x AS TEXT)", "CAST(NULL AS DATE)", false, false),
        (Dialect::MySql, "mysql", "MySQL", TypeId::of::<MySqlDialect>(), Quoting::Backtick, r"'o''brien\\'", "CAST(x AS CHAR)", "NULL", false, true),
        (Dialect::Sqlite, "sqlite", "SQLite", TypeId::of::<SQLiteDialect>(), Quoting::Double, r"'o''brien\'", "CAST(x AS TEXT)", "NULL", false, false),
        (Dialect::Snowflake, "snowflake", "Snowflake", TypeId::of::<SnowflakeDialect>(), Quoting::Double, r"'o''brien\\'", "CAST(x AS VARCHAR)", "NULL", false, false),
        (Dialect::BigQuery, "bigquery", "BigQuery", TypeId::of::<BigQueryDialect>(), Quoting::Backtick, r"'o\'brien\\'", "CAST(x AS STRING)", "NULL", false, false),
        (Dialect::MsSql, "mssql", "SQL Server", TypeId::of::<MsSqlDialect>(), Quoting::Double, r"'o''brien\'", "CAST(x AS NVARCHAR(MAX))", "NULL", false, false),
        (Dialect::Databricks, "databricks", "Databricks", TypeId::of::<DatabricksDialect>(), Quoting::Backtick, r"'o\'brien\\'", "CAST(x AS STRING)", "NULL", false, false),
        (Dialect::Redshift, "redshift", "Redshift", TypeId::of::<RedshiftSqlDialect>(), Quoting::Double, r"'o''brien\\'", "CAST(x AS VARCHAR(MAX))", "NULL", false, false),
        (Dialect::Unknown, "unknown", "generic SQL", TypeId::of::<GenericDialect>(), Quoting::Double, r"'o''brien\'", "CAST(x AS TEXT)", "NULL", true, true),
    ];
    assert_eq!(expected.len(), Dialect::ALL.len());
    for (d, name, title, parser, quoting, literal, text_cast, null_date, files, comments) in expected {
        let want = Row {
            name,
            title,
            parser,
            quoting,
            literal: literal.to_owned(),
            text_cast: text_cast.to_owned(),
            null_date: null_date.to_owned(),
            reads_files_through_table_names: files,
            runs_executable_comments: comments,
        };
        assert_eq!(row(d), want, "{d:?}");
    }
}

#[test]
fn kinds_map_to_dialects_and_back() {
    let cases = [
        ("duckdb", Some(Dialect::DuckDb)),
        ("Postgres", Some(Dialect::PostgreSql)),
        ("postgresql", Some(Dialect::PostgreSql)),
        ("mysql", Some(Dialect::MySql)),
        ("mariadb", Some(Dialect::MySql)),
        ("sqlite", Some(Dialect::Sqlite)),
        ("snowflake", Some(Dialect::Snowflake)),
        ("bigquery", Some(Dialect::BigQuery)),
        ("mssql", Some(Dialect::MsSql)),
        ("sqlserver", Some(Dialect::MsSql)),
        ("databricks", Some(Dialect::Databricks)),
        ("redshift", Some(Dialect::Redshift)),
        ("oracle", None),
        ("", None),
    ];
    for (kind, expected) in cases {
        assert_eq!(Dialect::from_kind(kind), expected, "{kind}");
    }
    for d in Dialect::ALL {
        if d != Dialect::Unknown {
            assert_eq!(Dialect::from_kind(d.name()), Some(d));
        }
    }
}

#[test]
fn quoting_doubles_the_quote_inside_names() {
    let cases = [
        (Quoting::Double, "orders", "\"orders\""),
        (Quoting::Double, "a\"b", "\"a\"\"b\""),
        (Quoting::Double, "a`b", "\"a`b\""),
        (Quoting::Backtick, "orders", "`orders`"),
        (Quoting::Backtick, "a`b", "`a``b`"),
        (Quoting::Backtick, "a\"b", "`a\"b`"),
        (Quoting::Double, "", "\"\""),
        (
            Quoting::Double,
            "x\"; drop table t; --",
            "\"x\"\"; drop table t; --\"",
        ),
    ];
    for (q, name, expected) in cases {
        assert_eq!(q.ident(name), expected, "{q:?} {name}");
    }
    assert_eq!(
        Quoting::Double.path(&["main", "odd name"]),
        "\"main\".\"odd name\""
    );
    assert_eq!(Quoting::Backtick.list(&["a", "b"]), "`a`, `b`");
}

#[test]
fn literals_refuse_nul_and_keep_every_other_character() {
    for d in Dialect::ALL {
        assert_eq!(d.string_literal("a\0b"), Err(NulInLiteral), "{d:?}");
        assert_eq!(d.string_literal("").as_deref(), Ok("''"), "{d:?}");
        assert_eq!(d.string_literal("naïve ✓").as_deref(), Ok("'naïve ✓'"), "{d:?}");
    }
}

/// A literal built for a dialect parses, in that dialect's own parser, back to exactly the text it was
/// built from, for text made to break out of the quotes.
#[test]
fn literals_parse_back_to_their_text() {
    use sqlparser::ast::{Expr, Value};
    use sqlparser::parser::Parser;
    let texts = [
        "o'brien",
        "ends\\",
        "\\'; DROP TABLE t; --",
        "''",
        "a\\\\'b",
        "tab\there",
    ];
    for d in Dialect::ALL {
        for text in texts {
            let literal = d.string_literal(text).unwrap_or_default();
            let expr = Parser::new(d.parser())
                .try_with_sql(&literal)
                .and_then(|mut p| p.parse_expr());
            let parsed = match expr {
                Ok(Expr::Value(v)) => match v.value {
                    Value::SingleQuotedString(s) => s,
                    other => panic!("{d:?} {text:?}: parsed as {other:?}"),
                },
                other => panic!("{d:?} {text:?}: {literal} parsed as {other:?}"),
            };
            assert_eq!(parsed, text, "{d:?}: {literal}");
        }
    }
}

#[test]
fn every_engine() {
    #[rustfmt::skip]
    let expected = [
        (ConnectorKind::DuckDb, "duckdb", Dialect::DuckDb, "EXPLAIN (FORMAT JSON) SELECT 1", "EXPLAIN (FORMAT JSON): estimated cardinalities", (true, false, false), false, false),
        (ConnectorKind::Postgres, "postgres", Dialect::PostgreSql, "EXPLAIN (FORMAT JSON) SELECT 1", "EXPLAIN (FORMAT JSON): rows, width, cost", (true, true, true), true, true),
        (ConnectorKind::MySql, "mysql", Dialect::MySql, "EXPLAIN FORMAT=JSON SELECT 1", "EXPLAIN FORMAT=JSON: rows, cost; bytes read on MySQL only", (true, true, true), true, true),
        (ConnectorKind::Sqlite, "sqlite", Dialect::Sqlite, "EXPLAIN QUERY PLAN SELECT 1", "EXPLAIN QUERY PLAN: access paths only", (false, false, false), true, false),
    ];
    assert_eq!(expected.len(), ConnectorKind::ALL.len());
    for (kind, name, dialect, explain, format, estimates, pooled, tls) in expected {
        let c = kind.capabilities();
        assert_eq!(
            (
                kind.as_str(),
                ConnectorKind::parse(name),
                kind.dialect(),
                kind.explain_sql("SELECT 1"),
                c.kind.as_str(),
                c.dialect.as_str(),
                c.explain_format.as_str(),
                (c.estimates_rows, c.estimates_bytes, c.estimates_cost),
                c.pooled,
                c.tls,
            ),
            (
                name,
                Some(kind),
                dialect,
                explain.to_owned(),
                name,
                dialect.name(),
                format,
                estimates,
                pooled,
                tls
            ),
            "{kind:?}"
        );
        assert!(
            c.explain && c.server_side_cancel && c.foreign_keys && c.result_paging,
            "{kind:?}"
        );
        assert!(
            !c.cancel_mechanism.is_empty() && !c.read_only_mechanism.is_empty(),
            "{kind:?}"
        );
    }
}

#[test]
fn kinds_parse_their_names_and_aliases() {
    for kind in ConnectorKind::ALL {
        assert_eq!(ConnectorKind::parse(kind.as_str()), Some(*kind));
    }
    assert_eq!(
        ConnectorKind::parse(" PostgreSQL "),
        Some(ConnectorKind::Postgres)
    );
    assert_eq!(ConnectorKind::parse("mariadb"), Some(ConnectorKind::MySql));
    assert_eq!(ConnectorKind::parse("sqlite3"), None);
    assert_eq!(ConnectorKind::parse("oracle"), None);
}
