//! The tool catalogue: every tool's name, description, schemas and scope, and the handler behind it.
//!
//! Tools come in families, one module each (`query`, `schema`, `info`, …). A family builds [`ToolSpec`]s
//! with [`spec`], capturing the state it needs; the MCP adapter looks a spec up by name, decodes the
//! arguments (bad arguments are protocol errors, JSON-RPC -32602) and hands the pending call to the
//! [`Pipeline`](sluice_core::pipeline::Pipeline), which checks the scope before the handler does any work and
//! audits the outcome. Names and parameters follow SignalPilot's gateway so that its users' skills keep
//! working.

pub mod budget;
pub mod dbt;
pub mod debug;
pub mod explain;
pub mod explore;
pub mod explore_data;
pub mod health;
pub mod history;
pub mod info;
pub mod query;
pub mod sandbox;
pub mod schema;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::handler::server::tool::{schema_for_input, schema_for_output};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use sluice_core::auth::Scope;
use sluice_core::pipeline::CallContext;
use sluice_core::service::{Outcome, Services, ToolError};

/// A successful tool result: the structured value (matching the tool's output schema), its text, and any
/// images shown beside them.
#[derive(Debug)]
pub struct ToolOutput {
    pub structured: serde_json::Value,
    pub text: String,
    pub images: Vec<ImageBlock>,
}

/// An image a tool returns as MCP image content.
pub struct ImageBlock {
    /// `image/png`, `image/jpeg`, `image/svg+xml`.
    pub mime_type: String,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for ImageBlock {
    // Images can be megabytes; their type and length say enough in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageBlock({}, {} bytes)", self.mime_type, self.data.len())
    }
}

/// The compact text an agent reads beside the structured result.
pub trait Render {
    fn render(&self) -> String;

    /// Images to send beside the text, moved out of the result before it is encoded (most tools have none).
    fn take_images(&mut self) -> Vec<ImageBlock> {
        Vec::new()
    }
}

/// A decoded call, ready to run; nothing happens until the pipeline polls it.
pub type Pending = Pin<Box<dyn Future<Output = Outcome<ToolOutput>> + Send>>;

type Handler = dyn Fn(CallContext, serde_json::Value) -> Result<Pending, ErrorData> + Send + Sync;

/// What a tool does to the world, for the MCP annotations clients use to decide on confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Reads only; the same call gives the same answer.
    ReadOnly,
    /// Adds to the caller's own sandbox workspace and changes nothing there (a new directory); repeating
    /// it changes nothing more.
    Adds,
    /// May replace what is in the caller's workspace (a file written over); repeating it with the same
    /// arguments leaves the same state.
    Overwrites,
    /// May change or remove anything in the caller's workspace (code runs, moves); repeating it is not the
    /// same as doing it once. Never data in a warehouse: every warehouse tool reads.
    Changes,
}

/// A tool's fixed description.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// The scope a key needs; `None` = any valid key.
    pub scope: Option<Scope>,
    pub effect: Effect,
}

/// One tool: its MCP description and the handler behind it.
pub struct ToolSpec {
    pub tool: Tool,
    pub scope: Option<Scope>,
    handler: Arc<Handler>,
}

impl std::fmt::Debug for ToolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolSpec")
            .field("name", &self.tool.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ToolSpec {
    pub fn name(&self) -> &str {
        &self.tool.name
    }

    /// Decodes the arguments; a decoding failure is the caller's protocol error and runs nothing.
    pub fn prepare(&self, ctx: CallContext, arguments: Option<JsonObject>) -> Result<Pending, ErrorData> {
        (self.handler)(ctx, serde_json::Value::Object(arguments.unwrap_or_default()))
    }
}

fn annotations(meta: &Meta) -> ToolAnnotations {
    let mut a = ToolAnnotations::new();
    a.title = Some(meta.title.to_owned());
    a.read_only_hint = Some(meta.effect == Effect::ReadOnly);
    a.destructive_hint = Some(matches!(meta.effect, Effect::Overwrites | Effect::Changes));
    a.idempotent_hint = Some(meta.effect != Effect::Changes);
    // Every tool works on the gateway's configured warehouses, projects and the caller's own sandbox (whose
    // code has no network): a closed set of things, not the open world.
    a.open_world_hint = Some(false);
    a
}

/// The `format` values JSON Schema itself defines (2020-12, "Defined Formats").
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// The schema without the integer and number formats schemars adds (`uint64`, `uint`, `int32`, `double`,
/// …): they are not JSON Schema's, so strict validators such as the one in Claude Code warn about each
/// ("unknown format \"uint64\" ignored"). The bounds stay (`minimum: 0` for unsigned types).
fn standard_formats(schema: Arc<JsonObject>) -> Arc<JsonObject> {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                // A property named `format` is an object here, not a string, so it is never removed.
                if map
                    .get("format")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|f| !STANDARD_FORMATS.contains(&f))
                {
                    map.remove("format");
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::Value::Object(Arc::unwrap_or_clone(schema));
    walk(&mut value);
    match value {
        serde_json::Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

/// Builds a tool from its description and an async handler taking the decoded arguments.
pub fn spec<I, O, F, Fut>(meta: Meta, handler: F) -> ToolSpec
where
    I: DeserializeOwned + JsonSchema + Send + 'static,
    O: Serialize + JsonSchema + Render + 'static,
    F: Fn(CallContext, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome<O>> + Send + 'static,
{
    // The argument types are plain structs; a schema failure is a programming error caught by the
    // tools/list snapshot test, so fall back to an empty object schema rather than panicking.
    let input = schema_for_input::<I>().unwrap_or_else(|_| Arc::new(JsonObject::new()));
    let tool = Tool::new(meta.name, meta.description, standard_formats(input))
        .with_title(meta.title)
        .with_raw_output_schema(standard_formats(schema_for_output::<O>()))
        .with_annotations(annotations(&meta));
    let name = meta.name;
    let handler = move |ctx: CallContext, args: serde_json::Value| -> Result<Pending, ErrorData> {
        let args: I = serde_json::from_value(args)
            .map_err(|e| ErrorData::invalid_params(format!("invalid arguments for {name}: {e}"), None))?;
        let fut = handler(ctx, args);
        Ok(Box::pin(async move {
            let outcome = fut.await;
            let result = outcome.result.and_then(|mut o| {
                let images = o.take_images();
                let text = o.render();
                serde_json::to_value(&o)
                    .map(|structured| ToolOutput {
                        structured,
                        text,
                        images,
                    })
                    .map_err(|e| ToolError::failed(format!("could not encode the result: {e}")))
            });
            Outcome {
                result,
                audit: outcome.audit,
            }
        }) as Pending)
    };
    ToolSpec {
        tool,
        scope: meta.scope,
        handler: Arc::new(handler),
    }
}

/// Arguments of tools that take none; unknown keys are refused so that typos do not pass silently.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// Every tool name, in the catalogue's order: what `sluice key create --tool` and `[server] tools` are
/// checked against without building the catalogue (`tool_names_match_the_catalogue` keeps it true).
pub const TOOL_NAMES: &[&str] = &[
    "list_database_connections",
    "list_tables",
    "describe_table",
    "list_schemas",
    "explore_table",
    "schema_overview",
    "schema_statistics",
    "schema_ddl",
    "schema_link",
    "schema_diff",
    "get_relationships",
    "find_join_path",
    "explore_column",
    "explore_columns",
    "compare_join_types",
    "get_date_boundaries",
    "query_database",
    "validate_sql",
    "explain_query",
    "estimate_query_cost",
    "debug_cte_query",
    "query_history",
    "check_budget",
    "connection_health",
    "connector_capabilities",
    "server_info",
    "execute_code",
    "sandbox_status",
    "fs_read_file",
    "fs_write_file",
    "fs_list_directory",
    "fs_directory_tree",
    "fs_search_files",
    "fs_get_file_info",
    "fs_create_directory",
    "fs_move_file",
    "list_projects",
    "get_project",
    "dbt_project_map",
    "dbt_project_validate",
    "dbt_lineage",
    "dbt_column_lineage",
    "dbt_test_coverage",
    "dbt_impact",
    "dbt_error_parser",
    "generate_sql_skeleton",
    "check_model_schema",
    "validate_model_output",
    "audit_model_sources",
    "analyze_grain",
];

/// Unknown names in a list of tool names, as one message; `None` when every name is a tool.
pub fn unknown_tools<'a>(names: impl IntoIterator<Item = &'a String>, what: &str) -> Option<String> {
    let unknown: Vec<&str> = names
        .into_iter()
        .map(String::as_str)
        .filter(|n| !TOOL_NAMES.contains(n))
        .collect();
    (!unknown.is_empty()).then(|| {
        format!(
            "{what} names no tool called {}; the tools are: {}",
            unknown.join(", "),
            TOOL_NAMES.join(", ")
        )
    })
}

/// Every tool this gateway offers, in a stable order.
#[derive(Debug)]
pub struct Catalogue {
    specs: Vec<ToolSpec>,
    tools: Arc<Vec<Tool>>,
    /// Tools this deployment does not offer (`[server] tools` / `disabled_tools`), to say so when called.
    disabled: Vec<&'static str>,
}

impl Catalogue {
    /// The catalogue this deployment offers: every tool, or those `[server] tools` names, less
    /// `[server] disabled_tools`; a name that is no tool is an error naming the tools.
    pub fn offered(services: &Arc<Services>) -> Result<Self, String> {
        let settings = &services.settings;
        if let Some(tools) = &settings.tools
            && let Some(e) = unknown_tools(tools, "[server] tools")
        {
            return Err(e);
        }
        if let Some(e) = unknown_tools(&settings.disabled_tools, "[server] disabled_tools") {
            return Err(e);
        }
        let mut catalogue = Catalogue::new(services);
        let offered = |name: &str| {
            settings
                .tools
                .as_ref()
                .is_none_or(|t| t.iter().any(|n| n == name))
                && !settings.disabled_tools.iter().any(|n| n == name)
        };
        catalogue.disabled = TOOL_NAMES.iter().copied().filter(|n| !offered(n)).collect();
        catalogue.specs.retain(|s| offered(s.name()));
        if catalogue.specs.is_empty() {
            return Err(
                "[server] tools and disabled_tools leave no tool to offer: list at least one tool in \
                 `tools`, or remove it to offer every tool"
                    .to_owned(),
            );
        }
        catalogue.tools = Arc::new(catalogue.specs.iter().map(|s| s.tool.clone()).collect());
        Ok(catalogue)
    }

    pub fn new(services: &Arc<Services>) -> Self {
        let mut specs = Vec::new();
        specs.extend(schema::tools(services));
        specs.extend(explore::tools(services));
        specs.extend(explore_data::tools(services));
        specs.extend(query::tools(services));
        specs.extend(explain::tools(services));
        specs.extend(debug::tools(services));
        specs.extend(history::tools(services));
        specs.extend(budget::tools(services));
        specs.extend(health::tools(services));
        specs.extend(info::tools(services));
        specs.extend(sandbox::tools(services));
        specs.extend(dbt::tools(services));
        let tools = Arc::new(specs.iter().map(|s| s.tool.clone()).collect());
        Catalogue {
            specs,
            tools,
            disabled: Vec::new(),
        }
    }

    pub fn tools(&self) -> &Arc<Vec<Tool>> {
        &self.tools
    }

    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.specs.iter().find(|s| s.name() == name)
    }

    /// Looks the tool up and decodes its arguments; unknown tools and bad arguments are protocol errors
    /// (JSON-RPC -32602), as the MCP specification asks.
    pub fn prepare(
        &self,
        name: &str,
        ctx: CallContext,
        arguments: Option<JsonObject>,
    ) -> Result<(&ToolSpec, Pending), ErrorData> {
        let Some(spec) = self.get(name) else {
            if self.disabled.contains(&name) {
                return Err(ErrorData::invalid_params(
                    format!(
                        "tool '{name}' is not offered by this gateway (its [server] tools / disabled_tools settings)"
                    ),
                    None,
                ));
            }
            let names: Vec<&str> = self.specs.iter().map(ToolSpec::name).collect();
            return Err(ErrorData::invalid_params(
                format!("unknown tool '{name}'; available tools: {}", names.join(", ")),
                None,
            ));
        };
        Ok((spec, spec.prepare(ctx, arguments)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use sluice_core::testing;

    #[test]
    fn schemas_keep_only_json_schema_formats() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "rows": {"type": "integer", "format": "uint64", "minimum": 0},
                "ratio": {"type": ["number", "null"], "format": "double"},
                "at": {"type": "string", "format": "date-time"},
                "format": {"type": "string", "description": "a parameter named format"},
                "items": {"type": "array", "items": {"type": "integer", "format": "int32"}}
            },
            "$defs": {"D": {"anyOf": [{"type": "integer", "format": "uint"}, {"type": "null"}]}}
        });
        let serde_json::Value::Object(map) = schema else {
            unreachable!()
        };
        let out = serde_json::Value::Object((*standard_formats(Arc::new(map))).clone());
        assert_eq!(
            out,
            serde_json::json!({
                "type": "object",
                "properties": {
                    "rows": {"type": "integer", "minimum": 0},
                    "ratio": {"type": ["number", "null"]},
                    "at": {"type": "string", "format": "date-time"},
                    "format": {"type": "string", "description": "a parameter named format"},
                    "items": {"type": "array", "items": {"type": "integer"}}
                },
                "$defs": {"D": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}
            })
        );
    }

    #[tokio::test]
    async fn tool_names_match_the_catalogue() {
        let (services, _store, _dir) = testing::services().await;
        let catalogue = Catalogue::new(&services);
        let names: Vec<&str> = catalogue.specs.iter().map(ToolSpec::name).collect();
        assert_eq!(names, TOOL_NAMES);
        assert_eq!(
            unknown_tools(&["query_database".to_owned(), "nope".to_owned()], "--tool")
                .map(|e| e[..33].to_owned()),
            Some("--tool names no tool called nope;".to_owned())
        );
    }

    fn args(v: serde_json::Value) -> Option<JsonObject> {
        v.as_object().cloned()
    }

    #[tokio::test]
    async fn decoding_errors_name_the_problem() {
        let (services, _store, _dir) = testing::services().await;
        let catalogue = Catalogue::new(&services);
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "nope",
                serde_json::json!({}),
                "unknown tool 'nope'; available tools: list_database_connections, list_tables",
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
            let err = match catalogue.prepare(name, testing::ctx(), args(a)) {
                Err(e) => e,
                Ok(_) => panic!("{name}: decoded"),
            };
            assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{name}");
            assert!(err.message.contains(expected), "{name}: {}", err.message);
        }
    }

    #[tokio::test]
    async fn every_tool_has_schemas_and_a_unique_name() {
        let (services, _store, _dir) = testing::services().await;
        let catalogue = Catalogue::new(&services);
        let mut names = std::collections::BTreeSet::new();
        for t in catalogue.tools().iter() {
            assert!(names.insert(t.name.to_string()), "duplicate tool {}", t.name);
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
