//! Schema operations: `list_database_connections`, `list_tables` and `describe_table`.
//!
//! Introspection is the gateway's own fixed, read-only SQL on the connection's read-only session; it is
//! audited as a system query and never mixed with agent SQL.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_connectors::{TableDetail, TableRef, TableSummary};

use crate::auth::AuthContext;
use crate::registry::Source;
use crate::service::{AuditFacts, Outcome, Services, ToolError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeTableArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// `table` or `schema.table`.
    pub table_name: String,
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

pub fn list_connections(s: &Services, auth: &AuthContext) -> Outcome<ConnectionList> {
    let connections = s
        .connections(auth)
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

pub async fn list_tables(s: &Services, auth: &AuthContext, connection: &str) -> Outcome<TableList> {
    let mut audit = AuditFacts {
        connection: Some(connection.to_owned()),
        system_query: true,
        ..Default::default()
    };
    let conn = match s.connection(auth, connection) {
        Ok(c) => c,
        Err(e) => return Outcome::fail(e, audit),
    };
    match conn.engine.list_tables().await {
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
    s: &Services,
    auth: &AuthContext,
    connection: &str,
    table: &str,
) -> Outcome<TableDescription> {
    let mut audit = AuditFacts {
        connection: Some(connection.to_owned()),
        system_query: true,
        ..Default::default()
    };
    let conn = match s.connection(auth, connection) {
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
    // From the cached schema snapshot, as the other schema tools answer; the engine is asked only for a
    // table the snapshot does not hold (created since it was taken) or cannot name unambiguously.
    if let Some((found, connection_name)) =
        super::explore::cached_table(s, auth, connection, table, &mut audit).await
    {
        audit.rows = Some(found.columns.len() as u64);
        return Outcome {
            result: Ok(describe_cached(&connection_name, found)),
            audit,
        };
    }
    audit.rows = None;
    match conn.engine.describe_table(&table_ref).await {
        Ok(Some(detail)) => {
            audit.rows = Some(detail.columns.len() as u64);
            Outcome {
                result: Ok(describe_out(&conn.name, detail)),
                audit,
            }
        }
        Ok(None) => {
            let names = match conn.engine.list_tables().await {
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

fn describe_cached(connection: &str, t: sluice_catalog::Table) -> TableDescription {
    let primary_key = t.primary_key;
    TableDescription {
        connection: connection.to_owned(),
        kind: t.kind.label().to_owned(),
        columns: t
            .columns
            .into_iter()
            .map(|c| ColumnDescription {
                primary_key: primary_key.contains(&c.name),
                name: c.name,
                data_type: c.data_type,
                nullable: c.nullable,
                default: c.default,
                comment: c.comment,
            })
            .collect(),
        primary_key,
        foreign_keys: t
            .foreign_keys
            .into_iter()
            .map(|fk| ForeignKeyOut {
                columns: fk.columns,
                references: fk.references.to_string(),
                referenced_columns: fk.referenced_columns,
            })
            .collect(),
        schema: t.id.schema,
        name: t.id.name,
        row_estimate: t.row_estimate,
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
