//! MCP resources: what an agent may want in its context without calling a tool, read through the same
//! operations, scope check and audit as the tools (scope `schema`, one audit record per read).
//!
//! - `sluice://connections`: the connections this key can use;
//! - `sluice://{connection}/overview`: the connection's schema overview, within the tools' size budget;
//! - `sluice://{connection}/tables/{table}` (a template): one table described;
//! - `sluice://projects/{project}/map`: a registered dbt project's map.
//!
//! Names are percent-encoded in URIs where they need it (`sluice://demo/tables/main.order%20items`).

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use sluice_core::auth::Scope;
use sluice_core::ops::dbt::project::{ProjectMapArgs, list_projects, project_map};
use sluice_core::ops::explore::outline::{PagedArgs, schema_overview};
use sluice_core::ops::schema::{describe_table, list_connections};
use sluice_core::pipeline::{CallContext, Pipeline};
use sluice_core::service::{Outcome, Services, ToolError};

use crate::tools::Render;

const SCHEME: &str = "sluice://";
/// What a resource read is audited as (the `tool` of its record).
const AUDITED_AS: &str = "resources/read";

/// What a resource URI names.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Connections,
    Overview { connection: String },
    Table { connection: String, table: String },
    ProjectMap { project: String },
}

/// Reads a `sluice://` URI; `None` for anything that is not one of ours.
pub fn parse(uri: &str) -> Option<Target> {
    let path = uri.strip_prefix(SCHEME)?;
    let parts: Vec<String> = path.split('/').map(decode).collect::<Option<_>>()?;
    if parts.iter().any(String::is_empty) {
        return None;
    }
    match parts.as_slice() {
        [one] if one == "connections" => Some(Target::Connections),
        [connection, overview] if overview == "overview" => Some(Target::Overview {
            connection: connection.clone(),
        }),
        [connection, tables, table] if tables == "tables" => Some(Target::Table {
            connection: connection.clone(),
            table: table.clone(),
        }),
        [projects, project, map] if projects == "projects" && map == "map" => Some(Target::ProjectMap {
            project: project.clone(),
        }),
        _ => None,
    }
}

/// Percent-decoding of one path segment; `None` when it is not valid UTF-8 or a `%` is malformed.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encoding of a name for a URI path segment.
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn resource(uri: String, name: String, description: String) -> Resource {
    Resource::new(uri, name)
        .with_description(description)
        .with_mime_type("text/plain")
}

/// The resources this caller can read: the connection list, each connection's overview, each project's
/// map. What the key cannot see is not listed (connections and projects are per organisation).
pub async fn list(s: &Services, ctx: &CallContext) -> Result<Vec<Resource>, ErrorData> {
    let mut out = vec![resource(
        format!("{SCHEME}connections"),
        "connections".to_owned(),
        "The database connections this API key can use".to_owned(),
    )];
    if !ctx.auth.scopes.contains(Scope::Schema) {
        return Ok(out);
    }
    if let Ok(list) = list_connections(s, &ctx.auth).result {
        for c in list.connections {
            out.push(resource(
                format!("{SCHEME}{}/overview", encode(&c.name)),
                format!("{} overview", c.name),
                format!("Schema overview of connection '{}' ({})", c.name, c.kind),
            ));
        }
    }
    if let Ok(list) = list_projects(s, &ctx.auth).await.result {
        for p in list.projects {
            out.push(resource(
                format!("{SCHEME}projects/{}/map", encode(&p.name)),
                format!("{} dbt map", p.name),
                format!("Map of the dbt project '{}'", p.name),
            ));
        }
    }
    Ok(out)
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{SCHEME}{{connection}}/tables/{{table}}"), "table")
            .with_description(
                "One table or view described: columns, keys, comments (`table` or `schema.table`)",
            )
            .with_mime_type("text/plain"),
    ]
}

/// Reads one resource through the pipeline (scope, then the operation, then the audit record).
pub async fn read(
    s: &Arc<Services>,
    pipeline: &Pipeline,
    ctx: &CallContext,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let Some(target) = parse(uri) else {
        return Err(ErrorData::resource_not_found(
            format!(
                "no resource '{uri}': Sluice serves sluice://connections, sluice://{{connection}}/overview, \
                 sluice://{{connection}}/tables/{{table}} and sluice://projects/{{project}}/map"
            ),
            None,
        ));
    };
    let text = match target {
        Target::Connections => run(pipeline, ctx, async { list_connections(s, &ctx.auth) }).await,
        Target::Overview { connection } => {
            let args = PagedArgs {
                connection_name: connection,
                page: None,
            };
            run(pipeline, ctx, schema_overview(s, &ctx.auth, args)).await
        }
        Target::Table { connection, table } => {
            run(pipeline, ctx, describe_table(s, &ctx.auth, &connection, &table)).await
        }
        Target::ProjectMap { project } => {
            let args: ProjectMapArgs = serde_json::from_value(serde_json::json!({ "project_dir": project }))
                .map_err(|e| ErrorData::internal_error(format!("project map arguments: {e}"), None))?;
            run(pipeline, ctx, project_map(s, &ctx.auth, args)).await
        }
    };
    match text {
        Ok(text) => Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, uri).with_mime_type("text/plain"),
        ])),
        // What the tools would answer as a tool error (unknown connection or table, missing scope) is the
        // resource's absence here, with the same reason.
        Err(e) => Err(ErrorData::resource_not_found(
            format!("{uri}: {}", e.message),
            None,
        )),
    }
}

async fn run<T: Render>(
    pipeline: &Pipeline,
    ctx: &CallContext,
    op: impl Future<Output = Outcome<T>>,
) -> Result<String, ToolError> {
    pipeline
        .run(ctx, AUDITED_AS, Some(Scope::Schema), op)
        .await
        .map(|out| out.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn uris_name_their_targets() {
        let t = |c: &str, table: &str| Target::Table {
            connection: c.into(),
            table: table.into(),
        };
        let cases = [
            ("sluice://connections", Some(Target::Connections)),
            (
                "sluice://demo/overview",
                Some(Target::Overview {
                    connection: "demo".into(),
                }),
            ),
            ("sluice://demo/tables/main.orders", Some(t("demo", "main.orders"))),
            (
                "sluice://my%20wh/tables/order%20items",
                Some(t("my wh", "order items")),
            ),
            // A connection named like a keyword is still a connection where the shape says so.
            ("sluice://projects/tables/map", Some(t("projects", "map"))),
            (
                "sluice://projects/shop/map",
                Some(Target::ProjectMap {
                    project: "shop".into(),
                }),
            ),
            ("sluice://demo", None),
            ("sluice://demo/tables/", None),
            ("sluice://demo/tables/a/b", None),
            ("sluice://demo/tables/%zz", None),
            ("sluice://demo/tables/%ff", None),
            ("file:///etc/passwd", None),
            ("sluice://", None),
        ];
        for (uri, expected) in cases {
            assert_eq!(parse(uri), expected, "{uri}");
        }
        assert_eq!(encode("order items/ä"), "order%20items%2F%C3%A4");
        assert_eq!(decode(&encode("order items/ä")).as_deref(), Some("order items/ä"));
    }
}
