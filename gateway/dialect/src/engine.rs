//! The engines Sluice connects to: each one's dialect, how its plan is asked for, and what it can do.

use crate::Dialect;

/// The engines Sluice can talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// DuckDB files opened read-only in-process.
    DuckDb,
    /// PostgreSQL servers (and wire-compatible ones), over a pool.
    Postgres,
    /// MySQL and MariaDB servers, over a pool; the flavour is detected from the server's version.
    MySql,
    /// SQLite files opened read-only.
    Sqlite,
}

impl ConnectorKind {
    /// Every kind this build supports, for `server_info` and the CLI.
    pub const ALL: &'static [ConnectorKind] = &[
        ConnectorKind::DuckDb,
        ConnectorKind::Postgres,
        ConnectorKind::MySql,
        ConnectorKind::Sqlite,
    ];

    /// The kind's stable name, as used in config files, the CLI and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::DuckDb => "duckdb",
            ConnectorKind::Postgres => "postgres",
            ConnectorKind::MySql => "mysql",
            ConnectorKind::Sqlite => "sqlite",
        }
    }

    /// Parses a kind name; `None` for kinds this build does not support.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "duckdb" => Some(ConnectorKind::DuckDb),
            "postgres" | "postgresql" => Some(ConnectorKind::Postgres),
            // MariaDB speaks the MySQL protocol; one connector serves both and tells them apart at run time.
            "mysql" | "mariadb" => Some(ConnectorKind::MySql),
            "sqlite" => Some(ConnectorKind::Sqlite),
            _ => None,
        }
    }

    /// The dialect this engine's SQL is governed and generated in.
    pub fn dialect(self) -> Dialect {
        match self {
            ConnectorKind::DuckDb => Dialect::DuckDb,
            ConnectorKind::Postgres => Dialect::PostgreSql,
            ConnectorKind::MySql => Dialect::MySql,
            ConnectorKind::Sqlite => Dialect::Sqlite,
        }
    }

    /// The engine's EXPLAIN around governed SQL. Never `ANALYZE`: nothing runs.
    pub fn explain_sql(self, governed: &str) -> String {
        match self {
            ConnectorKind::Postgres | ConnectorKind::DuckDb => format!("EXPLAIN (FORMAT JSON) {governed}"),
            ConnectorKind::MySql => format!("EXPLAIN FORMAT=JSON {governed}"),
            ConnectorKind::Sqlite => format!("EXPLAIN QUERY PLAN {governed}"),
        }
    }

    /// What this engine can do, as `get_connector_capabilities` reports it.
    pub fn capabilities(self) -> Capabilities {
        let base = Capabilities {
            kind: self.as_str().to_owned(),
            dialect: self.dialect().name().to_owned(),
            explain: true,
            explain_format: String::new(),
            estimates_rows: true,
            estimates_bytes: false,
            estimates_cost: false,
            server_side_cancel: true,
            cancel_mechanism: String::new(),
            read_only_mechanism: String::new(),
            tls: false,
            pooled: true,
            foreign_keys: true,
            result_paging: true,
        };
        match self {
            ConnectorKind::DuckDb => Capabilities {
                explain_format: "EXPLAIN (FORMAT JSON): estimated cardinalities".to_owned(),
                cancel_mechanism: "the statement is interrupted in the engine".to_owned(),
                read_only_mechanism: "file opened read-only, external access off, configuration locked"
                    .to_owned(),
                pooled: false,
                ..base
            },
            ConnectorKind::Postgres => Capabilities {
                explain_format: "EXPLAIN (FORMAT JSON): rows, width, cost".to_owned(),
                estimates_bytes: true,
                estimates_cost: true,
                cancel_mechanism: "SET LOCAL statement_timeout (the server cancels)".to_owned(),
                read_only_mechanism: "default_transaction_read_only + BEGIN READ ONLY".to_owned(),
                tls: true,
                ..base
            },
            ConnectorKind::MySql => Capabilities {
                explain_format: "EXPLAIN FORMAT=JSON: rows, cost; bytes read on MySQL only".to_owned(),
                estimates_bytes: true,
                estimates_cost: true,
                cancel_mechanism:
                    "max_execution_time (MySQL) / max_statement_time (MariaDB), then KILL QUERY".to_owned(),
                read_only_mechanism: "SET SESSION TRANSACTION READ ONLY + START TRANSACTION READ ONLY"
                    .to_owned(),
                tls: true,
                ..base
            },
            ConnectorKind::Sqlite => Capabilities {
                explain_format: "EXPLAIN QUERY PLAN: access paths only".to_owned(),
                estimates_rows: false,
                cancel_mechanism: "a progress handler aborts the statement at its deadline".to_owned(),
                read_only_mechanism: "file opened mode=ro + PRAGMA query_only".to_owned(),
                ..base
            },
        }
    }
}

impl std::fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a connector can do.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Capabilities {
    pub kind: String,
    pub dialect: String,
    pub explain: bool,
    /// How the gateway asks for the plan.
    pub explain_format: String,
    pub estimates_rows: bool,
    pub estimates_bytes: bool,
    pub estimates_cost: bool,
    /// A query past its timeout is stopped by the engine, not just abandoned.
    pub server_side_cancel: bool,
    pub cancel_mechanism: String,
    pub read_only_mechanism: String,
    pub tls: bool,
    pub pooled: bool,
    pub foreign_keys: bool,
    pub result_paging: bool,
}
