//! `dbt_impact`: what a column rename, drop or type change (or a dropped model) breaks or changes downstream,
//! or every column change since a baseline manifest, from `sluice_dbt::impact`.

use std::path::Path;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dbt::Project;
use sluice_dbt::column_lineage::Lineage;
use sluice_dbt::impact::{self, ChangeKind, Impact};

use super::{blocking, load, ok, projects};
use crate::auth::AuthContext;
use crate::projects::resolve_dir;
use crate::service::{Outcome, Services, ToolError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpactArgs {
    /// A registered project's name, or an absolute path inside a registered project.
    pub project_dir: String,
    /// The changed model, seed, snapshot or source (omit with `state`).
    #[serde(default)]
    pub model: Option<String>,
    /// The changed column of `model`; omit for the whole model.
    #[serde(default)]
    pub column: Option<String>,
    /// rename, drop, type or values [default: drop with a column, values without].
    #[serde(default)]
    pub change: Option<String>,
    /// A baseline manifest.json inside the project (relative to it, e.g. `prod-artifacts/manifest.json`):
    /// report every column change since it and its impact.
    #[serde(default)]
    pub state: Option<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ImpactReport {
    pub project: String,
    /// How many dependents break.
    pub breaking: usize,
    /// The compact text report.
    pub text: String,
    #[serde(flatten)]
    pub impact: Impact,
}

/// `dbt_impact`.
pub async fn dbt_impact(s: &Services, auth: &AuthContext, args: ImpactArgs) -> Outcome<ImpactReport> {
    ok(assess(s, auth, args).await)
}

fn change_kind(text: Option<&str>, column: bool) -> Result<ChangeKind, ToolError> {
    Ok(match text.map(str::trim) {
        Some("rename") => ChangeKind::Rename,
        Some("drop") => ChangeKind::Drop,
        Some("type") => ChangeKind::Type,
        Some("values") => ChangeKind::Values,
        None | Some("") if column => ChangeKind::Drop,
        None | Some("") => ChangeKind::Values,
        Some(other) => {
            return Err(ToolError::invalid(format!(
                "unknown change '{other}': expected rename, drop, type or values"
            )));
        }
    })
}

async fn assess(s: &Services, auth: &AuthContext, args: ImpactArgs) -> Result<ImpactReport, ToolError> {
    let kind = change_kind(args.change.as_deref(), args.column.is_some())?;
    if args.model.is_none() && args.state.is_none() {
        return Err(ToolError::invalid(
            "give a model (and optionally a column), or a baseline manifest as state",
        ));
    }
    let projects = projects(s, auth).await?;
    let roots = s.settings.dbt_project_roots.clone();
    blocking(move || {
        let resolved = resolve_dir(&projects, &roots, &args.project_dir).map_err(ToolError::invalid)?;
        let loaded = load(resolved.dir.clone(), &resolved.fence)?;
        let project = &loaded.analysis.project;
        let mut lineage = Lineage::with_traces(project, Arc::clone(&loaded.traces));
        let result = match &args.state {
            Some(state) => {
                let baseline = baseline(&resolved.dir, &resolved.fence, state)?;
                impact::diff_with(&baseline, &mut lineage)
            }
            None => {
                let model = args.model.as_deref().unwrap_or_default();
                impact::impact_with(&mut lineage, model, args.column.as_deref(), kind)
            }
        };
        let impact = result.map_err(|e| ToolError::invalid(e.to_string()))?;
        Ok(ImpactReport {
            project: project.name.clone(),
            breaking: impact.breaking(),
            text: impact::render(&impact),
            impact,
        })
    })
    .await
}

/// Reads the baseline manifest, only from inside the project's fence.
fn baseline(dir: &Path, fence: &Path, state: &str) -> Result<Project, ToolError> {
    let path = dir.join(state);
    let real = std::fs::canonicalize(&path)
        .map_err(|e| ToolError::invalid(format!("state {state}: cannot be opened: {e}")))?;
    if !real.starts_with(fence) {
        return Err(ToolError::invalid(format!(
            "state {state} resolves outside the project; only files inside the registered project are read"
        )));
    }
    let manifest = sluice_dbt::fs::load_manifest(&real).map_err(|e| ToolError::invalid(e.to_string()))?;
    Ok(Project::build(Some(manifest), None).0)
}
