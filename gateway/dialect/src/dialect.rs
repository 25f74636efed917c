//! The SQL dialects Sluice knows, and for each: its parser, identifier quoting, string literals and casts.

use sqlparser::dialect::{
    BigQueryDialect, DatabricksDialect, DuckDbDialect, GenericDialect, MsSqlDialect, MySqlDialect,
    PostgreSqlDialect, RedshiftSqlDialect, SQLiteDialect, SnowflakeDialect,
};

use crate::Quoting;

/// The SQL dialect of a connection; it decides the parser, the deny lists, the limit syntax and how
/// generated SQL is spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// DuckDB, parsed as DuckDB; also the only dialect with `SUMMARIZE` and the `PIVOT` statement.
    DuckDb,
    PostgreSql,
    MySql,
    Sqlite,
    Snowflake,
    BigQuery,
    MsSql,
    Databricks,
    Redshift,
    /// A kind governance does not know: the generic parser, and every dialect's deny list at once.
    Unknown,
}

/// A string literal cannot carry a NUL character: engines cut the text there or refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NulInLiteral;

impl std::fmt::Display for NulInLiteral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("text for a SQL literal must not contain NUL characters")
    }
}

impl std::error::Error for NulInLiteral {}

/// How a dialect reads the inside of a single-quoted string.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backslash {
    /// A backslash is an ordinary character; `''` is a quote (the SQL standard).
    Literal,
    /// A backslash escapes the next character, and `''` is a quote too (MySQL, Snowflake, Redshift).
    EscapesAndDoubledQuote,
    /// A backslash escapes the next character and `''` is not a quote but two adjacent literals
    /// (BigQuery, Databricks): a quote must be written `\'`.
    EscapesOnly,
}

impl Dialect {
    /// Every dialect, in a fixed order (useful for tests and for listing).
    pub const ALL: [Dialect; 10] = [
        Dialect::DuckDb,
        Dialect::PostgreSql,
        Dialect::MySql,
        Dialect::Sqlite,
        Dialect::Snowflake,
        Dialect::BigQuery,
        Dialect::MsSql,
        Dialect::Databricks,
        Dialect::Redshift,
        Dialect::Unknown,
    ];

    /// Maps a connection kind (as written in config) to its dialect; `None` for a kind we do not know.
    pub fn from_kind(kind: &str) -> Option<Dialect> {
        let kind = kind.trim().to_ascii_lowercase();
        Some(match kind.as_str() {
            "duckdb" => Dialect::DuckDb,
            "postgres" | "postgresql" => Dialect::PostgreSql,
            "mysql" | "mariadb" => Dialect::MySql,
            "sqlite" => Dialect::Sqlite,
            "snowflake" => Dialect::Snowflake,
            "bigquery" => Dialect::BigQuery,
            "mssql" | "sqlserver" => Dialect::MsSql,
            "databricks" => Dialect::Databricks,
            "redshift" => Dialect::Redshift,
            _ => return None,
        })
    }

    /// The short stable name of the dialect.
    pub fn name(&self) -> &'static str {
        match self {
            Dialect::DuckDb => "duckdb",
            Dialect::PostgreSql => "postgres",
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
            Dialect::Snowflake => "snowflake",
            Dialect::BigQuery => "bigquery",
            Dialect::MsSql => "mssql",
            Dialect::Databricks => "databricks",
            Dialect::Redshift => "redshift",
            Dialect::Unknown => "unknown",
        }
    }

    /// A readable name for messages.
    pub fn title(&self) -> &'static str {
        match self {
            Dialect::DuckDb => "DuckDB",
            Dialect::PostgreSql => "PostgreSQL",
            Dialect::MySql => "MySQL",
            Dialect::Sqlite => "SQLite",
            Dialect::Snowflake => "Snowflake",
            Dialect::BigQuery => "BigQuery",
            Dialect::MsSql => "SQL Server",
            Dialect::Databricks => "Databricks",
            Dialect::Redshift => "Redshift",
            Dialect::Unknown => "generic SQL",
        }
    }

    /// The `sqlparser` dialect that parses this dialect's SQL. Each dialect has its own parser and none
    /// falls back to another; only `Unknown` uses the generic parser (and then every deny list applies).
    /// Everything that parses SQL for a connection (governance, the expressions tools accept) uses this.
    pub fn parser(&self) -> &'static dyn sqlparser::dialect::Dialect {
        match self {
            Dialect::DuckDb => &DuckDbDialect,
            Dialect::PostgreSql => &PostgreSqlDialect {},
            Dialect::MySql => &MySqlDialect {},
            Dialect::Sqlite => &SQLiteDialect {},
            Dialect::Snowflake => &SnowflakeDialect,
            Dialect::BigQuery => &BigQueryDialect,
            Dialect::MsSql => &MsSqlDialect {},
            Dialect::Databricks => &DatabricksDialect,
            Dialect::Redshift => &RedshiftSqlDialect {},
            Dialect::Unknown => &GenericDialect,
        }
    }

    /// How generated SQL quotes identifiers on this dialect.
    pub fn quoting(&self) -> Quoting {
        match self {
            Dialect::MySql | Dialect::BigQuery | Dialect::Databricks => Quoting::Backtick,
            // SQL Server reads `"name"` as an identifier under QUOTED_IDENTIFIER ON, its default.
            Dialect::DuckDb
            | Dialect::PostgreSql
            | Dialect::Sqlite
            | Dialect::Snowflake
            | Dialect::MsSql
            | Dialect::Redshift
            | Dialect::Unknown => Quoting::Double,
        }
    }

    fn backslash(&self) -> Backslash {
        match self {
            Dialect::MySql | Dialect::Snowflake | Dialect::Redshift => Backslash::EscapesAndDoubledQuote,
            Dialect::BigQuery | Dialect::Databricks => Backslash::EscapesOnly,
            Dialect::DuckDb | Dialect::PostgreSql | Dialect::Sqlite | Dialect::MsSql | Dialect::Unknown => {
                Backslash::Literal
            }
        }
    }

    /// A single-quoted string literal holding exactly `text` on this dialect. Where a backslash is an
    /// escape (MySQL and MariaDB by default, Snowflake, Redshift, BigQuery, Databricks) it is doubled too,
    /// so text ending in a backslash cannot escape the closing quote.
    pub fn string_literal(&self, text: &str) -> Result<String, NulInLiteral> {
        if text.contains('\0') {
            return Err(NulInLiteral);
        }
        let mut out = String::with_capacity(text.len() + 2);
        out.push('\'');
        for c in text.chars() {
            match (c, self.backslash()) {
                ('\'', Backslash::EscapesOnly) => out.push_str("\\'"),
                ('\'', _) => out.push_str("''"),
                ('\\', Backslash::EscapesAndDoubledQuote | Backslash::EscapesOnly) => out.push_str("\\\\"),
                (c, _) => out.push(c),
            }
        }
        out.push('\'');
        Ok(out)
    }

    /// The type an expression is cast to for its text form (`CAST(x AS …)`), wide enough for any value.
    pub fn text_type(&self) -> &'static str {
        match self {
            Dialect::DuckDb | Dialect::Snowflake => "VARCHAR",
            Dialect::MySql => "CHAR",
            Dialect::BigQuery | Dialect::Databricks => "STRING",
            Dialect::MsSql => "NVARCHAR(MAX)",
            // Redshift's TEXT is VARCHAR(256), which would cut longer values.
            Dialect::Redshift => "VARCHAR(MAX)",
            Dialect::PostgreSql | Dialect::Sqlite | Dialect::Unknown => "TEXT",
        }
    }

    /// `CAST(expr AS <text type>)`.
    pub fn cast_to_text(&self, expr: &str) -> String {
        format!("CAST({expr} AS {})", self.text_type())
    }

    /// A NULL standing for a value of `data_type` in a column of a `UNION`, typed where the engine needs
    /// it: PostgreSQL resolves `UNION` types pairwise and would make a column that starts with untyped
    /// `NULL`s text; DuckDB is given the type too. Elsewhere a bare NULL takes the other branches' type.
    pub fn null_of(&self, data_type: &str) -> String {
        match self {
            Dialect::PostgreSql | Dialect::DuckDb => format!("CAST(NULL AS {data_type})"),
            _ => "NULL".to_owned(),
        }
    }

    /// Whether the engine reads files through table names (DuckDB replacement scans), so that quoted
    /// paths and file-like names used as tables must be refused.
    pub fn reads_files_through_table_names(&self) -> bool {
        matches!(self, Dialect::DuckDb | Dialect::Unknown)
    }

    /// Whether the engine runs MySQL executable comments `/*! … */` as code.
    pub fn runs_executable_comments(&self) -> bool {
        matches!(self, Dialect::MySql | Dialect::Unknown)
    }
}
