//! Schema exploration: the operations behind the tools that read the connection's cached schema snapshot
//! (`list_schemas`, `explore_table`, `schema_overview`, `schema_statistics`, `schema_ddl`, `schema_link`,
//! `schema_diff`, `get_relationships`, `find_join_path`) and those that read data (`explore_column`,
//! `explore_columns`, `compare_join_types`, `get_date_boundaries`).
//!
//! The snapshot comes from the connector's fixed catalog SQL and is audited as a system query. Anything
//! that reads data for an agent's request is SQL the gateway builds from introspected names, quoted for
//! the dialect, and run through [`Services::query`] (governance, budget, execution, audit). Agent text
//! reaches that SQL only as a string literal or after being parsed into an expression and checked.

pub mod columns;
pub mod dates;
pub mod joins;
pub mod link;
pub mod outline;
pub mod paths;
mod sql;
pub mod table;
pub mod text;
mod types;

use std::sync::Arc;
use std::time::Duration;

use sluice_catalog::{Budget, Catalog, Quoting, Table, Window};

use crate::auth::AuthContext;
use crate::registry::Connection;
use crate::schema_cache::Lookup;
use crate::service::{AuditFacts, Outcome, QueryOutput, Services, ToolError};

pub use crate::ops::schema::ConnectionArgs;

/// Every schema text these tools return fits this many estimated tokens (four characters each); what does
/// not fit is named in a footer and reachable with `page`.
pub const BUDGET_TOKENS: usize = 4_000;

fn window(page: Option<usize>) -> Window {
    Window::new(Budget::tokens(BUDGET_TOKENS)).page(page.unwrap_or(1).max(1))
}

/// The connection and its schema snapshot, with the audit facts of a system (introspection) call.
struct Snapshot {
    pub conn: Arc<Connection>,
    pub lookup: Lookup,
}

impl Snapshot {
    pub fn catalog(&self) -> &Catalog {
        &self.lookup.current.catalog
    }

    pub fn quoting(&self) -> Quoting {
        self.conn.dialect.quoting()
    }

    /// Resolves an agent's table name to one table of the snapshot, or says which names exist.
    pub fn table(&self, name: &str) -> Result<&Table, ToolError> {
        let id = self
            .catalog()
            .resolve_table(name)
            .map_err(|e| ToolError::invalid(format!("{e} (connection '{}')", self.conn.name)))?;
        self.catalog()
            .table(&id)
            .ok_or_else(|| ToolError::failed(format!("table {id} vanished from the snapshot")))
    }
}

fn system_audit(connection: &str) -> AuditFacts {
    AuditFacts {
        connection: Some(connection.to_owned()),
        system_query: true,
        ..Default::default()
    }
}

/// Looks the connection up and takes its snapshot (from the cache unless `refresh`).
async fn snapshot(
    s: &Services,
    auth: &AuthContext,
    connection: &str,
    refresh: bool,
    audit: &mut AuditFacts,
) -> Result<Snapshot, ToolError> {
    let conn = s.connection(auth, connection)?;
    audit.dialect = Some(conn.dialect);
    let lookup = {
        let get = s.schema_cache.get(
            &conn,
            refresh,
            crate::ops::dbt::documented_keys(s, auth, &conn.name),
        );
        tokio::pin!(get);
        // A snapshot taken from the cache is immediate; a large warehouse's introspection is not, and a
        // client that asked for progress is told what the wait is.
        tokio::select! {
            lookup = &mut get => lookup?,
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                crate::progress::report(0.0, None, format!("reading the schema of '{}'", conn.name));
                let lookup = get.await?;
                crate::progress::report(
                    1.0,
                    None,
                    format!("read {} tables of '{}'", lookup.current.catalog.tables().len(), conn.name),
                );
                lookup
            }
        }
    };
    audit.rows = Some(lookup.current.catalog.tables().len() as u64);
    Ok(Snapshot { conn, lookup })
}

/// `name`'s table from the connection's cached snapshot (taking one if none is cached), or `None` when the
/// snapshot cannot be had, does not hold the table or the name is ambiguous there: the caller then asks
/// the engine itself, which also sees a table created since the snapshot was taken.
pub(crate) async fn cached_table(
    s: &Services,
    auth: &AuthContext,
    connection: &str,
    name: &str,
    audit: &mut AuditFacts,
) -> Option<(Table, String)> {
    let snap = snapshot(s, auth, connection, false, audit).await.ok()?;
    let id = snap.catalog().resolve_table(name).ok()?;
    let table = snap.catalog().table(&id)?.clone();
    Some((table, snap.conn.name.clone()))
}

/// Finds a column of `table` by exact, then case-insensitive, name.
fn column<'a>(table: &'a Table, name: &str) -> Result<&'a sluice_catalog::Column, ToolError> {
    table
        .column(name)
        .or_else(|| table.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
        .ok_or_else(|| {
            let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
            ToolError::invalid(format!(
                "table {} has no column '{name}'; its columns: {}",
                table.id,
                names.join(", ")
            ))
        })
}

/// The statements one call ran, for its single audit record.
struct Ran {
    audit: AuditFacts,
    statements: Vec<String>,
    /// Governance's redaction of the last statement, kept for a call that runs only that one.
    redacted: Option<sluice_governance::Redacted>,
    rows: u64,
}

impl Ran {
    fn new(audit: AuditFacts) -> Ran {
        Ran {
            audit,
            statements: Vec::new(),
            redacted: None,
            rows: 0,
        }
    }

    /// Runs one statement through governance and execution.
    async fn query(
        &mut self,
        s: &Services,
        auth: &AuthContext,
        snap: &Snapshot,
        sql: &str,
        cap: u64,
    ) -> Result<QueryOutput, ToolError> {
        let outcome = s.query(auth, &snap.conn.name, sql, cap).await;
        self.audit.system_query = false;
        self.audit.dialect = outcome.audit.dialect.or(self.audit.dialect);
        if outcome.audit.rule.is_some() {
            self.audit.rule = outcome.audit.rule.clone();
        }
        if let Some(sql) = outcome.audit.sql {
            self.statements.push(sql);
            self.redacted = outcome.audit.sql_redacted;
        }
        self.rows += outcome.audit.rows.unwrap_or(0);
        outcome.result
    }

    fn finish(mut self) -> AuditFacts {
        if !self.statements.is_empty() {
            self.audit.sql = Some(self.statements.join(";\n"));
            self.audit.rows = Some(self.rows);
        }
        // One statement is audited as it ran, so governance's redaction of it applies.
        if self.statements.len() == 1 {
            self.audit.sql_redacted = self.redacted;
        }
        self.audit
    }

    fn outcome<T>(self, result: Result<T, ToolError>) -> Outcome<T> {
        Outcome {
            result,
            audit: self.finish(),
        }
    }
}

fn as_u64(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
