//! The gateway's operations, independent of MCP: list connections, govern and run queries, introspect.
//!
//! Each operation returns an [`Outcome`]: its result plus the facts the audit log records about it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;
use sluice_connectors::{Column, ConnectorError, QueryOptions, TableDetail, TableRef, TableSummary};
use sluice_governance::{Decision, Finding, Policy, Verdict};

use crate::auth::AuthContext;
use crate::config::Settings;
use crate::registry::{Connection, Registry, Source};

/// A failed call, phrased for the agent.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ToolError {
    /// `denied` (governance refused), `invalid` (bad input), `failed` (the engine or gateway failed).
    pub kind: ErrorKind,
    /// Stable rule id when governance refused.
    pub rule: Option<String>,
    pub message: String,
    /// 1-based line and column of the offending SQL, where known.
    pub line: Option<u64>,
    pub column: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Denied,
    Invalid,
    Failed,
}

impl ToolError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ToolError {
            kind: ErrorKind::Invalid,
            rule: None,
            message: message.into(),
            line: None,
            column: None,
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        ToolError {
            kind: ErrorKind::Failed,
            rule: None,
            message: message.into(),
            line: None,
            column: None,
        }
    }
    fn denied(finding: &Finding) -> Self {
        ToolError {
            kind: ErrorKind::Denied,
            rule: Some(finding.rule.to_owned()),
            message: finding.message.clone(),
            line: finding.span.as_ref().map(|s| s.line),
            column: finding.span.as_ref().map(|s| s.column),
        }
    }
}

impl From<ConnectorError> for ToolError {
    fn from(e: ConnectorError) -> Self {
        ToolError::failed(e.to_string())
    }
}

/// What the audit log records about a call, beyond who made it and when.
#[derive(Clone, Debug, Default)]
pub struct AuditFacts {
    pub connection: Option<String>,
    /// The SQL that ran (after rewriting) or was refused; redacted before it is stored.
    pub sql: Option<String>,
    pub dialect: Option<sluice_governance::Dialect>,
    /// The gateway's own fixed introspection, not agent SQL.
    pub system_query: bool,
    pub rule: Option<String>,
    pub rows: Option<u64>,
}

/// A result plus its audit facts.
pub struct Outcome<T> {
    pub result: Result<T, ToolError>,
    pub audit: AuditFacts,
}

impl<T> Outcome<T> {
    fn fail(error: ToolError, audit: AuditFacts) -> Self {
        Outcome {
            result: Err(error),
            audit,
        }
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ConnectionInfo {
    pub name: String,
    pub kind: String,
    pub dialect: String,
    pub description: Option<String>,
    pub source: Source,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ConnectionList {
    pub connections: Vec<ConnectionInfo>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ColumnOut {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

impl From<Column> for ColumnOut {
    fn from(c: Column) -> Self {
        ColumnOut {
            name: c.name,
            type_name: c.type_name,
        }
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct QueryOutput {
    pub connection: String,
    pub columns: Vec<ColumnOut>,
    /// Rows as arrays in column order. Integers beyond 2^53, decimals and temporal values are strings.
    pub rows: Vec<Vec<serde_json::Value>>,
    pub row_count: u64,
    /// True when the query had more rows than `row_limit` allowed.
    pub truncated: bool,
    /// The effective row cap: the smallest of the requested `row_limit`, the connection's and the server's.
    pub row_limit: u64,
    pub elapsed_ms: f64,
    /// The SQL that actually ran, after governance (e.g. with the row limit injected).
    pub sql_executed: String,
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

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TableList {
    pub connection: String,
    pub tables: Vec<TableOut>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TableOut {
    pub schema: String,
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    pub row_estimate: Option<u64>,
    pub column_count: u64,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TableDescription {
    pub connection: String,
    pub schema: String,
    pub name: String,
    pub kind: String,
    pub columns: Vec<ColumnDescription>,
    pub primary_key: Vec<String>,
    pub foreign_keys: Vec<ForeignKeyOut>,
    pub row_estimate: Option<u64>,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ColumnDescription {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    pub default: Option<String>,
    pub comment: Option<String>,
    pub primary_key: bool,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ForeignKeyOut {
    pub columns: Vec<String>,
    /// `schema.table` the key points to.
    pub references: String,
    pub referenced_columns: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
    pub protocol_versions: Vec<String>,
    pub connectors: Vec<ConnectorInfo>,
    pub sandbox: SandboxInfo,
    pub limits: LimitsInfo,
    pub caller: CallerInfo,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ConnectorInfo {
    pub kind: String,
    pub dialect: String,
    pub engine: String,
    pub read_only: bool,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SandboxInfo {
    /// `available`, `unavailable` or `not_configured`.
    pub status: String,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct LimitsInfo {
    pub max_rows: u64,
    pub default_row_limit: u64,
    pub query_timeout_ms: u64,
    pub max_request_bytes: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CallerInfo {
    pub org: String,
    pub key_prefix: String,
    pub scopes: Vec<String>,
}

/// The services behind the tools.
pub struct Services {
    pub settings: Arc<Settings>,
    pub registry: Arc<Registry>,
    pub engines: Vec<ConnectorInfo>,
}

impl Services {
    fn connection(&self, auth: &AuthContext, name: &str) -> Result<Arc<Connection>, ToolError> {
        self.registry.get(&auth.org_id, name).ok_or_else(|| {
            let available: Vec<String> = self
                .registry
                .list(&auth.org_id)
                .iter()
                .map(|c| c.name.clone())
                .collect();
            let list = if available.is_empty() {
                "none are configured (add one with `sluice connection add`)".to_owned()
            } else {
                available.join(", ")
            };
            ToolError::invalid(format!(
                "unknown connection '{name}'; available connections: {list}"
            ))
        })
    }

    pub fn list_connections(&self, auth: &AuthContext) -> Outcome<ConnectionList> {
        let connections = self
            .registry
            .list(&auth.org_id)
            .iter()
            .map(|c| ConnectionInfo {
                name: c.name.clone(),
                kind: c.kind.as_str().to_owned(),
                dialect: c.dialect.name().to_owned(),
                description: c.description.clone(),
                source: c.source,
            })
            .collect::<Vec<_>>();
        let audit = AuditFacts {
            rows: Some(connections.len() as u64),
            ..Default::default()
        };
        Outcome {
            result: Ok(ConnectionList { connections }),
            audit,
        }
    }

    /// The connection's policy with the effective row maximum.
    fn policy(&self, conn: &Connection) -> Policy {
        Policy {
            max_rows: self.row_cap(conn, self.settings.max_rows),
            ..conn.policy.clone()
        }
    }

    /// The row cap that applies: the smallest of the caller's, the connection's and the server's.
    fn row_cap(&self, conn: &Connection, requested: u64) -> u64 {
        let mut cap = requested.min(self.settings.max_rows);
        if let Some(max) = conn.max_rows {
            cap = cap.min(max);
        }
        cap.max(1)
    }

    fn timeout(&self, conn: &Connection) -> Duration {
        conn.timeout.unwrap_or(self.settings.query_timeout)
    }

    /// Governs and runs one agent statement.
    pub async fn query(
        &self,
        auth: &AuthContext,
        connection: &str,
        sql: &str,
        row_limit: u64,
    ) -> Outcome<QueryOutput> {
        let mut audit = AuditFacts {
            connection: Some(connection.to_owned()),
            sql: Some(sql.to_owned()),
            ..Default::default()
        };
        let conn = match self.connection(auth, connection) {
            Ok(c) => c,
            Err(e) => return Outcome::fail(e, audit),
        };
        audit.dialect = Some(conn.dialect);
        let cap = self.row_cap(&conn, row_limit);
        // One row beyond the cap tells us whether the result was cut.
        let verdict =
            sluice_governance::govern(sql, conn.dialect, &self.policy(&conn), cap.saturating_add(1));
        let executed = match allowed_sql(&verdict) {
            Ok(sql) => sql,
            Err(e) => {
                audit.rule = e.rule.clone();
                return Outcome::fail(e, audit);
            }
        };
        audit.sql = Some(executed.clone());
        let started = Instant::now();
        let options = QueryOptions {
            max_rows: usize::try_from(cap).unwrap_or(usize::MAX),
            timeout: self.timeout(&conn),
        };
        let result = match conn.warehouse.query(&executed, options).await {
            Ok(r) => r,
            Err(e) => return Outcome::fail(e.into(), audit),
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let row_count = result.rows.len() as u64;
        audit.rows = Some(row_count);
        Outcome {
            result: Ok(QueryOutput {
                connection: conn.name.clone(),
                columns: result.columns.into_iter().map(ColumnOut::from).collect(),
                rows: result.rows,
                row_count,
                truncated: result.truncated,
                row_limit: cap,
                elapsed_ms,
                sql_executed: executed,
            }),
            audit,
        }
    }

    /// Governs a statement without running it.
    pub fn validate(&self, auth: &AuthContext, connection: &str, sql: &str) -> Outcome<ValidationOutput> {
        let mut audit = AuditFacts {
            connection: Some(connection.to_owned()),
            sql: Some(sql.to_owned()),
            ..Default::default()
        };
        let conn = match self.connection(auth, connection) {
            Ok(c) => c,
            Err(e) => return Outcome::fail(e, audit),
        };
        audit.dialect = Some(conn.dialect);
        let cap = self.row_cap(&conn, self.settings.max_rows);
        let verdict =
            sluice_governance::govern(sql, conn.dialect, &self.policy(&conn), cap.saturating_add(1));
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

    pub async fn list_tables(&self, auth: &AuthContext, connection: &str) -> Outcome<TableList> {
        let mut audit = AuditFacts {
            connection: Some(connection.to_owned()),
            system_query: true,
            ..Default::default()
        };
        let conn = match self.connection(auth, connection) {
            Ok(c) => c,
            Err(e) => return Outcome::fail(e, audit),
        };
        match conn.warehouse.list_tables().await {
            Ok(tables) => {
                audit.rows = Some(tables.len() as u64);
                let tables = tables.into_iter().map(table_out).collect();
                Outcome {
                    result: Ok(TableList {
                        connection: conn.name.clone(),
                        tables,
                    }),
                    audit,
                }
            }
            Err(e) => Outcome::fail(e.into(), audit),
        }
    }

    pub async fn describe_table(
        &self,
        auth: &AuthContext,
        connection: &str,
        table: &str,
    ) -> Outcome<TableDescription> {
        let mut audit = AuditFacts {
            connection: Some(connection.to_owned()),
            system_query: true,
            ..Default::default()
        };
        let conn = match self.connection(auth, connection) {
            Ok(c) => c,
            Err(e) => return Outcome::fail(e, audit),
        };
        let Some(table_ref) = TableRef::parse(table) else {
            return Outcome::fail(
                ToolError::invalid(format!(
                    "'{table}' is not a table name; use `table` or `schema.table`"
                )),
                audit,
            );
        };
        match conn.warehouse.describe_table(&table_ref).await {
            Ok(Some(detail)) => {
                audit.rows = Some(detail.columns.len() as u64);
                Outcome {
                    result: Ok(describe_out(&conn.name, detail)),
                    audit,
                }
            }
            Ok(None) => {
                let names = match conn.warehouse.list_tables().await {
                    Ok(tables) => tables
                        .iter()
                        .take(50)
                        .map(|t| format!("{}.{}", t.schema, t.name))
                        .collect::<Vec<_>>()
                        .join(", "),
                    Err(_) => String::new(),
                };
                Outcome::fail(
                    ToolError::invalid(format!(
                        "no table or view '{table_ref}' in connection '{}'; tables: {names}",
                        conn.name
                    )),
                    audit,
                )
            }
            Err(e) => Outcome::fail(e.into(), audit),
        }
    }

    pub fn server_info(&self, auth: &AuthContext, sandbox: SandboxInfo) -> Outcome<ServerInfo> {
        let info = ServerInfo {
            name: "sluice".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_versions: crate::mcp::SUPPORTED_PROTOCOLS
                .iter()
                .map(|v| v.as_str().to_owned())
                .collect(),
            connectors: self.engines.clone(),
            sandbox,
            limits: LimitsInfo {
                max_rows: self.settings.max_rows,
                default_row_limit: crate::config::DEFAULT_ROW_LIMIT.min(self.settings.max_rows),
                query_timeout_ms: u64::try_from(self.settings.query_timeout.as_millis()).unwrap_or(u64::MAX),
                max_request_bytes: self.settings.max_request_bytes as u64,
            },
            caller: CallerInfo {
                org: auth.org_id.clone(),
                key_prefix: auth.key_prefix.clone(),
                scopes: auth.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            },
        };
        Outcome {
            result: Ok(info),
            audit: AuditFacts::default(),
        }
    }
}

fn allowed_sql(verdict: &Verdict) -> Result<String, ToolError> {
    match &verdict.decision {
        Decision::Allow { sql, .. } => Ok(sql.clone()),
        Decision::Deny => Err(match verdict.denial() {
            Some(finding) => ToolError::denied(finding),
            None => ToolError {
                kind: ErrorKind::Denied,
                rule: None,
                message: "the statement was refused by governance".to_owned(),
                line: None,
                column: None,
            },
        }),
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

fn kind_name(kind: sluice_connectors::TableKind) -> String {
    match kind {
        sluice_connectors::TableKind::Table => "table".to_owned(),
        sluice_connectors::TableKind::View => "view".to_owned(),
    }
}

fn table_out(t: TableSummary) -> TableOut {
    TableOut {
        schema: t.schema,
        name: t.name,
        kind: kind_name(t.kind),
        row_estimate: t.row_estimate,
        column_count: t.column_count,
        comment: t.comment,
    }
}

fn describe_out(connection: &str, d: TableDetail) -> TableDescription {
    TableDescription {
        connection: connection.to_owned(),
        kind: kind_name(d.kind),
        columns: d
            .columns
            .into_iter()
            .map(|c| ColumnDescription {
                name: c.name,
                data_type: c.data_type,
                nullable: c.nullable,
                default: c.default,
                comment: c.comment,
                primary_key: c.primary_key,
            })
            .collect(),
        primary_key: d.primary_key,
        foreign_keys: d
            .foreign_keys
            .into_iter()
            .map(|fk| ForeignKeyOut {
                columns: fk.columns,
                references: format!("{}.{}", fk.referenced_schema, fk.referenced_table),
                referenced_columns: fk.referenced_columns,
            })
            .collect(),
        schema: d.schema,
        name: d.name,
        row_estimate: d.row_estimate,
        comment: d.comment,
    }
}
