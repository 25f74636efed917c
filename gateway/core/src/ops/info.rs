//! `server_info`: the gateway's version, protocol revisions, connectors, sandbox status, limits and the
//! caller's org and scopes.

use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::AuthContext;
use crate::service::{AuditFacts, ConnectorInfo, Outcome, Services};

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

/// What `server_info` reports; `protocol_versions` are the front door's (the MCP revisions it speaks).
pub async fn server_info(
    s: &Services,
    auth: &AuthContext,
    protocol_versions: Vec<String>,
) -> Outcome<ServerInfo> {
    let state = s.sandbox.state().await;
    let sandbox = SandboxInfo {
        status: state.name().to_owned(),
        detail: state.detail(),
    };
    let info = ServerInfo {
        name: "sluice".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_versions,
        connectors: s.engines.clone(),
        sandbox,
        limits: LimitsInfo {
            max_rows: s.settings.max_rows,
            default_row_limit: crate::config::DEFAULT_ROW_LIMIT.min(s.settings.max_rows),
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
