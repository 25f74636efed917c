//! The MCP adapter: the only module that knows rmcp. It decodes tool calls, hands them to the
//! [`Pipeline`], and turns results into `CallToolResult`s with text and structured content.

// MCP logging (`logging/setLevel`) is deprecated from protocol 2026-07-28 on (SEP-2577), but the revisions
// clients speak today (2025-06-18, 2025-11-25) define it and the conformance suite tests it.
#![allow(deprecated)]

pub mod render;

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    LoggingLevel, PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
    SetLevelRequestParams, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::tools::{Catalogue, ToolOutput};
use sluice_core::auth::AuthContext;
use sluice_core::pipeline::{CallContext, Pipeline};

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
    catalogue: Arc<Catalogue>,
    log_level: Arc<RwLock<LoggingLevel>>,
}

impl SluiceMcp {
    pub fn new(pipeline: Arc<Pipeline>, catalogue: Arc<Catalogue>) -> Self {
        SluiceMcp {
            pipeline,
            catalogue,
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
    Ok(CallContext {
        auth,
        session_id,
        request_id: sluice_core::pipeline::request_id(),
    })
}

fn success(out: ToolOutput) -> CallToolResult {
    let mut result = CallToolResult::structured(out.structured);
    result.content = vec![ContentBlock::text(out.text)];
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
        Ok(ListToolsResult::with_all_items(
            self.catalogue.tools().as_ref().clone(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.catalogue.get(name).map(|s| s.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let ctx = call_context(&context)?;
        let (spec, call) = self
            .catalogue
            .prepare(&request.name, ctx.clone(), request.arguments)?;
        let tool = spec.name();
        let result = match self.pipeline.run(&ctx, tool, spec.scope, call).await {
            Ok(out) => success(out),
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
