//! The MCP adapter: the only module that knows rmcp. It decodes tool calls, hands them to the
//! [`Pipeline`], and turns results into `CallToolResult`s with text and structured content.

// MCP logging (`logging/setLevel`) is deprecated from protocol 2026-07-28 on (SEP-2577), but the revisions
// clients speak today (2025-06-18, 2025-11-25) define it and the conformance suite tests it.
#![allow(deprecated)]

mod render;
pub mod tools;

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    LoggingLevel, PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
    SetLevelRequestParams, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::auth::AuthContext;
use crate::pipeline::{CallContext, Pipeline, ToolOutput};

/// Protocol revisions this server negotiates, oldest first.
pub const SUPPORTED_PROTOCOLS: &[ProtocolVersion] = ProtocolVersion::KNOWN_VERSIONS;

const INSTRUCTIONS: &str = "Sluice is a governed gateway to the user's databases. Start with \
list_database_connections, then list_tables and describe_table to learn the schema, then query_database \
with one read-only statement in the connection's dialect. Queries are row-limited; a notice says when rows \
were cut. When a query is refused, the message names the rule and how to fix it; validate_sql checks a \
statement without running it.";

/// One MCP service instance per session (or per request when stateless); all share the pipeline.
#[derive(Clone)]
pub struct SluiceMcp {
    pipeline: Arc<Pipeline>,
    tools: Arc<Vec<Tool>>,
    log_level: Arc<RwLock<LoggingLevel>>,
}

impl SluiceMcp {
    pub fn new(pipeline: Arc<Pipeline>, tools: Arc<Vec<Tool>>) -> Self {
        SluiceMcp {
            pipeline,
            tools,
            log_level: Arc::new(RwLock::new(LoggingLevel::Info)),
        }
    }
}

/// The authenticated caller and session, from the HTTP request rmcp hands along.
fn call_context(context: &RequestContext<RoleServer>) -> Result<CallContext, ErrorData> {
    let parts = context
        .extensions
        .get::<http::request::Parts>()
        .ok_or_else(|| ErrorData::internal_error("request without HTTP context", None))?;
    let auth = parts
        .extensions
        .get::<AuthContext>()
        .cloned()
        // The HTTP layer authenticates every request before MCP sees it; reaching here without a
        // context means the router was wired wrongly, and failing closed is the only safe answer.
        .ok_or_else(|| ErrorData::internal_error("unauthenticated request reached the MCP handler", None))?;
    let session_id = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(CallContext { auth, session_id })
}

fn success(out: &ToolOutput) -> CallToolResult {
    let structured = match out {
        ToolOutput::Connections(v) => serde_json::to_value(v),
        ToolOutput::Query(v) => serde_json::to_value(v),
        ToolOutput::Validation(v) => serde_json::to_value(v),
        ToolOutput::Tables(v) => serde_json::to_value(v),
        ToolOutput::Table(v) => serde_json::to_value(v),
        ToolOutput::ServerInfo(v) => serde_json::to_value(v),
    };
    let mut result = match structured {
        Ok(value) => CallToolResult::structured(value),
        Err(e) => {
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "could not encode the result: {e}"
            ))]);
        }
    };
    result.content = vec![ContentBlock::text(render::output(out))];
    result
}

impl ServerHandler for SluiceMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_logging()
                .enable_completions()
                .enable_tools()
                .build(),
        )
        .with_server_info(
            Implementation::new("sluice", env!("CARGO_PKG_VERSION"))
                .with_title("Sluice data gateway")
                .with_description("Governed, audited access to databases for AI agents"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(SUPPORTED_PROTOCOLS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let ctx = call_context(&context)?;
        let call = tools::decode(&request.name, request.arguments)?;
        let tool = call.name();
        let result = match self.pipeline.run(&ctx, call).await {
            Ok(out) => success(&out),
            // Error results carry text only: structured content must match the tool's output schema,
            // which describes success.
            Err(e) => CallToolResult::error(vec![ContentBlock::text(render::error(tool, &e))]),
        };
        Ok(result.into())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Sluice does not stream log messages to clients yet; the level is kept so that when it does, the
        // client's choice is honoured from the first message.
        *self.log_level.write().unwrap_or_else(|p| p.into_inner()) = request.level;
        Ok(())
    }
}
