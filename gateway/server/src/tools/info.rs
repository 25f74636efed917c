//! `server_info`: version, protocol revisions, connectors, sandbox status, limits and the caller.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::tools::{Effect, Meta, NoArgs, Render, ToolSpec, spec};
use sluice_core::ops::info::{ServerInfo, server_info};
use sluice_core::service::Services;

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
                let protocols = crate::mcp::SUPPORTED_PROTOCOLS
                    .iter()
                    .map(|v| v.as_str().to_owned())
                    .collect();
                server_info(&s, &ctx.auth, protocols).await
            }
        },
    )]
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
