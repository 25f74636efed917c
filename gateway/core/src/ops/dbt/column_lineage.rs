//! `dbt_column_lineage`: where a column's values come from and which columns read it, traced through each
//! model's compiled SQL by `sluice_dbt::column_lineage`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dbt::Direction;
use sluice_dbt::column_lineage::{ColumnLineage, Lineage};

use super::{blocking, load_dir, ok};
use crate::auth::AuthContext;
use crate::service::{Outcome, Services, ToolError};

/// Edges kept per side, nearest first: enough for any real question, small enough for an agent's context.
const MAX_EDGES: usize = 150;

fn default_direction() -> String {
    "both".to_owned()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnLineageArgs {
    /// A registered project's name, or an absolute path inside a registered project.
    pub project_dir: String,
    /// A model, seed or snapshot name, `source_name.table`, or a unique id.
    pub model: String,
    /// The column.
    pub column: String,
    /// upstream (up), downstream (down) or both.
    #[serde(default = "default_direction")]
    pub direction: String,
    /// How many models to walk away from the start; 0 = all.
    #[serde(default)]
    pub depth: u32,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ColumnLineageReport {
    pub project: String,
    #[schemars(with = "String")]
    pub direction: Direction,
    /// Models walked; null = all.
    pub depth: Option<u32>,
    #[serde(flatten)]
    pub lineage: ColumnLineage,
}

/// `dbt_column_lineage`.
pub async fn column_lineage(
    s: &Services,
    auth: &AuthContext,
    args: ColumnLineageArgs,
) -> Outcome<ColumnLineageReport> {
    ok(walk(s, auth, args).await)
}

/// `upstream`, `downstream`, `both` (and `up` / `down`).
pub(crate) fn parse_direction(text: &str) -> Result<Direction, ToolError> {
    match text.trim() {
        "upstream" | "up" => Ok(Direction::Upstream),
        "downstream" | "down" => Ok(Direction::Downstream),
        "both" | "" => Ok(Direction::Both),
        other => Err(ToolError::invalid(format!(
            "unknown direction '{other}': expected upstream, downstream or both"
        ))),
    }
}

async fn walk(
    s: &Services,
    auth: &AuthContext,
    args: ColumnLineageArgs,
) -> Result<ColumnLineageReport, ToolError> {
    let direction = parse_direction(&args.direction)?;
    let loaded = load_dir(s, auth, args.project_dir).await?;
    let depth = (args.depth > 0).then_some(args.depth);
    // Tracing parses every model on the way: on a large project that is real work, kept off the async threads.
    blocking(move || {
        let project = &loaded.analysis.project;
        let lineage = Lineage::with_traces(project, Arc::clone(&loaded.traces))
            .max_edges(MAX_EDGES)
            .walk(&args.model, &args.column, direction, depth.map(|d| d as usize))
            .map_err(|e| ToolError::invalid(format!("{e} (dbt_project_map lists models and columns)")))?;
        Ok(ColumnLineageReport {
            project: project.name.clone(),
            direction,
            depth,
            lineage,
        })
    })
    .await
}
