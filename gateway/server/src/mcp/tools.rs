//! The tool catalogue: names, descriptions, input and output schemas, and argument decoding.
//!
//! Names and parameters follow SignalPilot's gateway so that its users' skills keep working.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::handler::server::tool::{schema_for_input, schema_for_output};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::pipeline::{
    ConnectionArgs, DescribeTableArgs, NoArgs, QueryDatabaseArgs, ToolCall, ValidateSqlArgs,
};
use crate::service::{
    ConnectionList, QueryOutput, ServerInfo, TableDescription, TableList, ValidationOutput,
};

fn input<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    // The argument types are plain structs; a schema failure here is a programming error caught by the
    // tools/list snapshot test, so fall back to an empty object schema rather than panicking.
    schema_for_input::<T>().unwrap_or_else(|_| Arc::new(JsonObject::new()))
}

fn read_only(title: &str) -> ToolAnnotations {
    let mut a = ToolAnnotations::new();
    a.title = Some(title.to_owned());
    a.read_only_hint = Some(true);
    a.destructive_hint = Some(false);
    a.idempotent_hint = Some(true);
    a.open_world_hint = Some(false);
    a
}

fn tool<I: JsonSchema + 'static, O: JsonSchema + 'static>(
    name: &'static str,
    title: &str,
    description: &'static str,
) -> Tool {
    Tool::new(name, description, input::<I>())
        .with_title(title)
        .with_raw_output_schema(schema_for_output::<O>())
        .with_annotations(read_only(title))
}

/// Every tool this gateway offers, in a stable order.
pub fn catalogue() -> Vec<Tool> {
    vec![
        tool::<NoArgs, ConnectionList>(
            "list_database_connections",
            "List database connections",
            "List the database connections this API key can use: name, kind (engine) and SQL dialect. \
             Use a connection's name as `connection_name` in the other tools.",
        ),
        tool::<QueryDatabaseArgs, QueryOutput>(
            "query_database",
            "Run a governed read-only SQL query",
            "Run one read-only SQL statement (SELECT/WITH/VALUES, EXPLAIN, SHOW, DESCRIBE) on a connection, \
             in that connection's SQL dialect. Governance refuses writes, DDL, several statements, and file or \
             network functions, and injects or clamps a row limit (default 1000, server maximum applies). \
             Returns a table and `[N rows, X ms]`; a notice says when rows were cut. Refusals name the rule \
             and how to fix the query.",
        ),
        tool::<ValidateSqlArgs, ValidationOutput>(
            "validate_sql",
            "Check SQL against governance without running it",
            "Check whether a SQL statement would be allowed on a connection, without running it. Returns \
             VALID with the SQL exactly as it would run (row limit applied), or INVALID with the rule id, \
             the position and how to fix it.",
        ),
        tool::<ConnectionArgs, TableList>(
            "list_tables",
            "List tables and views",
            "List the tables and views of a connection with their schema, kind, estimated row count and \
             column count.",
        ),
        tool::<DescribeTableArgs, TableDescription>(
            "describe_table",
            "Describe a table",
            "Describe one table or view: columns with types, nullability, defaults and comments, the primary \
             key and foreign keys. `table_name` may be `table` or `schema.table`.",
        ),
        tool::<NoArgs, ServerInfo>(
            "server_info",
            "Gateway information",
            "Report the gateway's version, supported MCP protocol versions, connectors, sandbox status, \
             limits (max rows, timeout, request size) and the calling key's org and scopes.",
        ),
    ]
}

fn decode_args<T: DeserializeOwned>(tool: &str, arguments: Option<JsonObject>) -> Result<T, ErrorData> {
    let value = serde_json::Value::Object(arguments.unwrap_or_default());
    serde_json::from_value(value)
        .map_err(|e| ErrorData::invalid_params(format!("invalid arguments for {tool}: {e}"), None))
}

/// Turns a `tools/call` request into a [`ToolCall`]; unknown tools and bad arguments are protocol
/// errors (JSON-RPC -32602), as the MCP specification asks.
pub fn decode(name: &str, arguments: Option<JsonObject>) -> Result<ToolCall, ErrorData> {
    Ok(match name {
        "list_database_connections" => {
            decode_args::<NoArgs>(name, arguments)?;
            ToolCall::ListDatabaseConnections
        }
        "query_database" => ToolCall::QueryDatabase(decode_args(name, arguments)?),
        "validate_sql" => ToolCall::ValidateSql(decode_args(name, arguments)?),
        "list_tables" => ToolCall::ListTables(decode_args(name, arguments)?),
        "describe_table" => ToolCall::DescribeTable(decode_args(name, arguments)?),
        "server_info" => {
            decode_args::<NoArgs>(name, arguments)?;
            ToolCall::ServerInfo
        }
        other => {
            let names: Vec<String> = catalogue().iter().map(|t| t.name.to_string()).collect();
            return Err(ErrorData::invalid_params(
                format!("unknown tool '{other}'; available tools: {}", names.join(", ")),
                None,
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn args(v: serde_json::Value) -> Option<JsonObject> {
        v.as_object().cloned()
    }

    #[test]
    fn decoding_errors_name_the_problem() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "nope",
                serde_json::json!({}),
                "unknown tool 'nope'; available tools: list_database_connections, query_database",
            ),
            (
                "query_database",
                serde_json::json!({"connection_name": "demo"}),
                "invalid arguments for query_database: missing field `sql`",
            ),
            (
                "query_database",
                serde_json::json!({"connection_name": "demo", "sql": "select 1", "row_limit": "ten"}),
                "invalid type: string \"ten\", expected u64",
            ),
            (
                "query_database",
                serde_json::json!({"connection_name": "demo", "sql": "select 1", "row_limit": -1}),
                "invalid value: integer `-1`, expected u64",
            ),
            (
                "list_tables",
                serde_json::json!({"connection_name": 5}),
                "invalid type: integer `5`, expected a string",
            ),
            ("server_info", serde_json::json!({"x": 1}), "unknown field `x`"),
        ];
        for (name, a, expected) in cases {
            let err = decode(name, args(a)).unwrap_err();
            assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{name}");
            assert!(err.message.contains(expected), "{name}: {}", err.message);
        }
    }

    #[test]
    fn defaults_apply() {
        let call = decode(
            "query_database",
            args(serde_json::json!({"connection_name": "demo", "sql": "select 1"})),
        )
        .unwrap();
        match call {
            ToolCall::QueryDatabase(a) => assert_eq!(a.row_limit, 1000),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            decode("list_database_connections", None).unwrap(),
            ToolCall::ListDatabaseConnections
        ));
    }

    #[test]
    fn every_tool_has_schemas() {
        for t in catalogue() {
            assert!(t.output_schema.is_some(), "{}", t.name);
            assert_eq!(
                t.input_schema.get("type").and_then(|v| v.as_str()),
                Some("object"),
                "{}",
                t.name
            );
        }
    }
}
