//! The MCP adapter: the only module that knows rmcp. It decodes tool calls, hands them to the
//! [`Pipeline`], and turns results into `CallToolResult`s with text and structured content.

// MCP logging (`logging/setLevel`) is deprecated from protocol 2026-07-28 on (SEP-2577), but the revisions
// clients speak today (2025-06-18, 2025-11-25) define it and the conformance suite tests it.
#![allow(deprecated)]

pub mod prompts;
pub mod render;
pub mod resources;

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, LoggingLevel, PaginatedRequestParams, ProgressNotificationParam, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::tools::{Catalogue, ToolOutput};
use sluice_core::auth::AuthContext;
use sluice_core::pipeline::{CallContext, Pipeline};
use sluice_core::service::Services;

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
    prompts: Arc<prompts::Prompts>,
    services: Arc<Services>,
    log_level: Arc<RwLock<LoggingLevel>>,
    /// The caller and session of a transport without requests of its own (stdio): one key, one session.
    fixed: Option<Arc<(AuthContext, String)>>,
}

impl SluiceMcp {
    pub fn new(
        pipeline: Arc<Pipeline>,
        catalogue: Arc<Catalogue>,
        prompts: Arc<prompts::Prompts>,
        services: Arc<Services>,
    ) -> Self {
        SluiceMcp {
            pipeline,
            catalogue,
            prompts,
            services,
            log_level: Arc::new(RwLock::new(LoggingLevel::Info)),
            fixed: None,
        }
    }

    /// Every call of this service is made by `auth` in session `session` (stdio, where the process is the
    /// session and its key was checked at start).
    #[must_use]
    pub fn for_one_caller(mut self, auth: AuthContext, session: String) -> Self {
        self.fixed = Some(Arc::new((auth, session)));
        self
    }

    /// The authenticated caller and session: from the HTTP request rmcp hands along, or the fixed ones.
    fn call_context(&self, context: &RequestContext<RoleServer>) -> Result<CallContext, ErrorData> {
        match (&self.fixed, context.extensions.get::<http::request::Parts>()) {
            (_, Some(parts)) => http_call_context(parts, context),
            (Some(fixed), None) => Ok(CallContext {
                auth: fixed.0.clone(),
                session_id: Some(fixed.1.clone()),
                request_id: sluice_core::pipeline::request_id(),
                cancel: context.ct.clone(),
                progress: progress_reporter(context),
                traceparent: meta_traceparent(context),
            }),
            (None, None) => Err(ErrorData::internal_error("request without HTTP context", None)),
        }
    }
}

/// The authenticated caller and session, from the HTTP request.
fn http_call_context(
    parts: &http::request::Parts,
    context: &RequestContext<RoleServer>,
) -> Result<CallContext, ErrorData> {
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
    // The MCP request's own `_meta.traceparent` names the call more precisely than the HTTP request's.
    let traceparent = meta_traceparent(context).or_else(|| {
        parts
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    Ok(CallContext {
        auth,
        session_id,
        request_id: sluice_core::pipeline::request_id(),
        cancel: context.ct.clone(),
        progress: progress_reporter(context),
        traceparent,
    })
}

/// `_meta.traceparent` of the MCP request, when it carries one.
fn meta_traceparent(context: &RequestContext<RoleServer>) -> Option<String> {
    context
        .meta
        .get("traceparent")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// A reporter sending `notifications/progress` for the request's `progressToken`, when it carries one.
fn progress_reporter(context: &RequestContext<RoleServer>) -> Option<sluice_core::progress::Reporter> {
    let token = context.meta.get_progress_token()?;
    let peer = context.peer.clone();
    Some(sluice_core::progress::Reporter::new(Arc::new(
        move |update: sluice_core::progress::Update| {
            let mut param = ProgressNotificationParam::new(token.clone(), update.progress);
            param.total = update.total;
            param.message = Some(update.message);
            let peer = peer.clone();
            // Sent beside the call, never holding it up; a client that left is not an error here.
            tokio::spawn(async move {
                let _ = peer.notify_progress(param).await;
            });
        },
    )))
}

/// The text first, then one image content item per image (base64, as MCP carries binary data).
fn success(out: ToolOutput) -> CallToolResult {
    use base64::Engine as _;
    let mut result = CallToolResult::structured(out.structured);
    result.content = std::iter::once(ContentBlock::text(out.text))
        .chain(out.images.into_iter().map(|i| {
            ContentBlock::image(
                base64::engine::general_purpose::STANDARD.encode(&i.data),
                i.mime_type,
            )
        }))
        .collect();
    result
}

impl ServerHandler for SluiceMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_logging()
                .enable_completions()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_resources_list_changed()
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
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let ctx = self.call_context(&context)?;
        let all = self.catalogue.tools();
        // A key created for some tools sees only those.
        let tools = match ctx.auth.tools.names() {
            None => all.as_ref().clone(),
            Some(_) => all
                .iter()
                .filter(|t| ctx.auth.tools.allows(&t.name))
                .cloned()
                .collect(),
        };
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(self.prompts.list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.prompts.get(&request.name, request.arguments).map(Into::into)
    }

    /// Tells this session when a schema it can read changes (`notifications/resources/list_changed`), from
    /// the schema cache's change feed, until the session's transport closes.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let org = match (&self.fixed, context.extensions.get::<http::request::Parts>()) {
            (_, Some(parts)) => parts.extensions.get::<AuthContext>().map(|a| a.org_id.clone()),
            (Some(fixed), None) => Some(fixed.0.org_id.clone()),
            (None, None) => None,
        };
        let Some(org) = org else {
            return;
        };
        let mut changes = self.services.schema_cache.subscribe();
        let peer = context.peer;
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            let mut check = tokio::time::interval(std::time::Duration::from_secs(30));
            loop {
                let notify = tokio::select! {
                    change = changes.recv() => match change {
                        Ok(changed) => changed.org_id == org,
                        // Changes were missed: one of them may have been this org's.
                        Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => return,
                    },
                    _ = check.tick() => false,
                };
                if peer.is_transport_closed() {
                    return;
                }
                if notify && peer.notify_resource_list_changed().await.is_err() {
                    return;
                }
            }
        });
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let ctx = self.call_context(&context)?;
        Ok(ListResourcesResult::with_all_items(
            resources::list(&self.services, &ctx).await?,
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let ctx = self.call_context(&context)?;
        resources::read(&self.services, &self.pipeline, &ctx, &request.uri)
            .await
            .map(Into::into)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.catalogue.get(name).map(|s| s.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let ctx = self.call_context(&context)?;
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
