//! `dbt_lineage`: what a node reads from and what reads from it, from the project's manifest and files.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dbt::{Direction, NodeKind};

use super::{load_dir, ok};
use crate::auth::AuthContext;
use crate::service::{Outcome, Services, ToolError};

fn default_direction() -> String {
    "both".to_owned()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineageArgs {
    /// A registered project's name (or an absolute path inside one).
    pub project: String,
    /// A model, seed or snapshot name, `source_name.table`, or a unique id.
    pub node: String,
    /// upstream, downstream or both.
    #[serde(default = "default_direction")]
    pub direction: String,
    /// How many edges to follow; 0 = all.
    #[serde(default)]
    pub depth: u32,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct LineageNode {
    /// Edges from the start node.
    pub depth: usize,
    #[schemars(with = "String")]
    pub kind: NodeKind,
    pub name: String,
    pub unique_id: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Lineage {
    pub project: String,
    pub node: String,
    pub unique_id: String,
    #[schemars(with = "String")]
    pub kind: NodeKind,
    #[schemars(with = "String")]
    pub direction: Direction,
    /// Edges followed; null = all.
    pub depth: Option<u32>,
    pub upstream: Vec<LineageNode>,
    pub downstream: Vec<LineageNode>,
}

/// `dbt_lineage`: a node's upstream and downstream to the requested depth.
pub async fn lineage(s: &Services, auth: &AuthContext, args: LineageArgs) -> Outcome<Lineage> {
    ok(walk(s, auth, args).await)
}

async fn walk(s: &Services, auth: &AuthContext, args: LineageArgs) -> Result<Lineage, ToolError> {
    let direction = match args.direction.trim() {
        "upstream" => Direction::Upstream,
        "downstream" => Direction::Downstream,
        "both" | "" => Direction::Both,
        other => {
            return Err(ToolError::invalid(format!(
                "unknown direction '{other}': expected upstream, downstream or both"
            )));
        }
    };
    let loaded = load_dir(s, auth, args.project).await?;
    let project = &loaded.analysis.project;
    let Some(start) = project.find(&args.node) else {
        return Err(ToolError::invalid(format!(
            "no node named '{}' in project {}: give a model, seed or snapshot name, source_name.table, or a \
             unique id (dbt_project_map lists them)",
            args.node, project.name
        )));
    };
    let depth = (args.depth > 0).then_some(args.depth);
    let steps = project.lineage(start, direction, depth.map(|d| d as usize), false);
    let side = |upstream: bool| -> Vec<LineageNode> {
        steps
            .iter()
            .filter(|st| st.upstream == upstream)
            .map(|st| {
                let n = project.node(st.node);
                LineageNode {
                    depth: st.depth,
                    kind: n.kind,
                    name: n.display_name(),
                    unique_id: n.unique_id.clone(),
                }
            })
            .collect()
    };
    let node = project.node(start);
    Ok(Lineage {
        project: project.name.clone(),
        node: node.display_name(),
        unique_id: node.unique_id.clone(),
        kind: node.kind,
        direction,
        depth,
        upstream: side(true),
        downstream: side(false),
    })
}
