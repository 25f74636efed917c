//! The SQL dialects the gateway governs, and the `sqlparser` dialect that parses each.

use sqlparser::dialect::{
    BigQueryDialect, DatabricksDialect, DuckDbDialect, GenericDialect, MsSqlDialect, MySqlDialect,
    PostgreSqlDialect, RedshiftSqlDialect, SQLiteDialect, SnowflakeDialect,
};

/// The SQL dialect of a connection; it decides the parser, the deny lists and the limit syntax.
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

    /// The `sqlparser` dialect that parses this dialect's SQL. Each dialect has its own parser and none
    /// falls back to another; only `Unknown` uses the generic parser (and then every deny list applies).
    pub(crate) fn parser(&self) -> &'static dyn sqlparser::dialect::Dialect {
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

    /// A readable name for messages.
    pub(crate) fn title(&self) -> &'static str {
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

    /// Whether the engine reads files through table names (DuckDB replacement scans), so that quoted
    /// paths and file-like names used as tables must be refused.
    pub(crate) fn reads_files_through_table_names(&self) -> bool {
        matches!(self, Dialect::DuckDb | Dialect::Unknown)
    }

    /// Whether the engine runs MySQL executable comments `/*! … */` as code.
    pub(crate) fn runs_executable_comments(&self) -> bool {
        matches!(self, Dialect::MySql | Dialect::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

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
}
