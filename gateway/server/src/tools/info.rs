//! `server_info`: version, protocol revisions, connectors, sandbox status, limits and the caller.

use std::fmt::Write as _;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;

use crate::tools::{Effect, Meta, NoArgs, Render, ToolSpec, spec};
use sluice_core::auth::AuthContext;
use sluice_core::service::ConnectorInfo;
use sluice_core::service::{AuditFacts, Outcome, Services};

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

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let s = Arc::clone(services);
    vec![spec(
        Meta {
            name: "server_info",
            title: "Gateway information",
            description: "Report the gateway's version, supported MCP protocol versions, connectors, sandbox \
                status, limits (max rows, timeout, request size) and the calling key's org and scopes.",
            scope: None,
            effect: Effect::ReadOnly,
        },
        move |ctx, _: NoArgs| {
            let s = Arc::clone(&s);
            async move {
                let state = s.sandbox.state().await;
                let sandbox = SandboxInfo {
                    status: state.name().to_owned(),
                    detail: state.detail(),
                };
                server_info(&s, &ctx.auth, sandbox)
            }
        },
    )]
}

pub fn server_info(s: &Services, auth: &AuthContext, sandbox: SandboxInfo) -> Outcome<ServerInfo> {
    let info = ServerInfo {
        name: "sluice".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_versions: crate::mcp::SUPPORTED_PROTOCOLS
            .iter()
            .map(|v| v.as_str().to_owned())
            .collect(),
        connectors: s.engines.clone(),
        sandbox,
        limits: LimitsInfo {
            max_rows: s.settings.max_rows,
            default_row_limit: sluice_core::config::DEFAULT_ROW_LIMIT.min(s.settings.max_rows),
            query_timeout_ms: u64::try_from(s.settings.query_timeout.as_millis()).unwrap_or(u64::MAX),
            max_request_bytes: s.settings.max_request_bytes as u64,
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

impl Render for ServerInfo {
    fn render(&self) -> String {
        let info = self;

        let mut text = String::new();
        let _ = writeln!(text, "{} {}", info.name, info.version);
        let _ = writeln!(
            text,
            "MCP protocol versions: {}",
            info.protocol_versions.join(", ")
        );
        let engines: Vec<String> = info
            .connectors
            .iter()
            .map(|c| format!("{} ({})", c.kind, c.engine))
            .collect();
        let _ = writeln!(text, "Connectors: {}", engines.join(", "));
        let _ = writeln!(text, "Sandbox: {} — {}", info.sandbox.status, info.sandbox.detail);
        let _ = writeln!(
            text,
            "Limits: max_rows {}, default row_limit {}, query timeout {} ms, max request {} bytes",
            info.limits.max_rows,
            info.limits.default_row_limit,
            info.limits.query_timeout_ms,
            info.limits.max_request_bytes
        );
        let _ = write!(
            text,
            "Caller: org {}, key {}…, scopes {}",
            info.caller.org,
            info.caller.key_prefix,
            info.caller.scopes.join(" ")
        );
        text
    }
}
