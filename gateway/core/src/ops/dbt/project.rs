//! Registered dbt projects: the list, one project's facts (`get_project`) and the project map.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dbt::render::map::{Focus, MapOptions, render_map};
use sluice_dbt::render::report::Summary;
use sluice_dbt::{NodeKind, Rule};

use super::{blocking, load, load_dir, ok, projects};
use crate::auth::AuthContext;
use crate::projects::ProjectEntry;
use crate::service::{Outcome, Services, ToolError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetProjectArgs {
    /// The project's registered name (see list_projects).
    pub name: String,
}

fn default_focus() -> String {
    "all".to_owned()
}

fn default_max_models() -> usize {
    40
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectMapArgs {
    /// A registered project's name, or an absolute path inside a registered project.
    pub project_dir: String,
    /// all, work_order, missing, stubs, sources, macros, or model:<name> for one model in depth.
    #[serde(default = "default_focus")]
    pub focus: String,
    /// Models listed per directory before the rest are summarised.
    #[serde(default = "default_max_models")]
    pub max_models_per_section: usize,
    /// List each model's columns.
    #[serde(default)]
    pub include_columns: bool,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ProjectOut {
    pub name: String,
    pub project_dir: String,
    /// The connection holding the warehouse this project builds.
    pub connection: Option<String>,
    pub description: Option<String>,
    /// `config` or `store`.
    pub source: String,
}

impl From<&ProjectEntry> for ProjectOut {
    fn from(p: &ProjectEntry) -> Self {
        ProjectOut {
            name: p.name.clone(),
            project_dir: p.dir.display().to_string(),
            connection: p.connection.clone(),
            description: p.description.clone(),
            source: p.source.as_str().to_owned(),
        }
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ProjectList {
    pub projects: Vec<ProjectOut>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct NodeCounts {
    pub models: usize,
    pub sources: usize,
    pub seeds: usize,
    pub snapshots: usize,
    pub tests: usize,
    pub exposures: usize,
    pub macros: usize,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ProjectDetail {
    pub project: ProjectOut,
    /// The name in dbt_project.yml (or the manifest).
    pub dbt_project_name: String,
    pub dbt_version: Option<String>,
    pub manifest_schema_version: Option<u32>,
    pub adapter: Option<String>,
    /// Artifacts missing from the target directory.
    pub missing_artifacts: Vec<String>,
    pub counts: NodeCounts,
    /// Validation findings by severity (details: dbt_project_validate).
    pub findings: Summary,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ProjectMap {
    pub project: String,
    pub project_dir: String,
    pub focus: String,
    /// The rendered map.
    pub map: String,
}

/// `list_projects`: the dbt projects this key's organisation registered or the config names.
pub async fn list_projects(s: &Services, auth: &AuthContext) -> Outcome<ProjectList> {
    ok(projects(s, auth).await.map(|p| ProjectList {
        projects: p.iter().map(ProjectOut::from).collect(),
    }))
}

/// `get_project`: one registered project's facts from its artifacts.
pub async fn get_project(s: &Services, auth: &AuthContext, name: String) -> Outcome<ProjectDetail> {
    ok(project_detail(s, auth, name).await)
}

async fn project_detail(s: &Services, auth: &AuthContext, name: String) -> Result<ProjectDetail, ToolError> {
    let all = projects(s, auth).await?;
    let Some(entry) = all.iter().find(|p| p.name == name).cloned() else {
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        return Err(ToolError::invalid(format!(
            "unknown project '{name}'; registered projects: {}",
            if names.is_empty() {
                "none (add one with `sluice project add --name N --dir D`)".to_owned()
            } else {
                names.join(", ")
            }
        )));
    };
    let dir = entry.dir.clone();
    let loaded = blocking(move || {
        let dir = std::fs::canonicalize(&dir)
            .map_err(|e| ToolError::failed(format!("{} cannot be opened: {e}", dir.display())))?;
        load(dir.clone(), &dir)
    })
    .await?;
    let project = &loaded.analysis.project;
    let count = |k| project.of_kind(k).len();
    let missing_artifacts = loaded
        .findings
        .iter()
        .filter(|f| f.rule == Rule::ArtifactMissing)
        .map(|f| f.message.clone())
        .collect();
    Ok(ProjectDetail {
        project: ProjectOut::from(&entry),
        dbt_project_name: project.name.clone(),
        dbt_version: project.provenance.dbt_version.clone(),
        manifest_schema_version: project.provenance.manifest_schema,
        adapter: project.provenance.adapter.clone(),
        missing_artifacts,
        counts: NodeCounts {
            models: count(NodeKind::Model),
            sources: count(NodeKind::Source),
            seeds: count(NodeKind::Seed),
            snapshots: count(NodeKind::Snapshot),
            tests: count(NodeKind::Test),
            exposures: count(NodeKind::Exposure),
            macros: project.macros.len(),
        },
        findings: Summary::of(&loaded.findings),
    })
}

/// `dbt_project_map`: the project's models, sources and macros, or one model in depth.
pub async fn project_map(s: &Services, auth: &AuthContext, args: ProjectMapArgs) -> Outcome<ProjectMap> {
    ok(map(s, auth, args).await)
}

async fn map(s: &Services, auth: &AuthContext, args: ProjectMapArgs) -> Result<ProjectMap, ToolError> {
    let focus: Focus = args
        .focus
        .parse()
        .map_err(|e: sluice_dbt::DbtError| ToolError::invalid(e.to_string()))?;
    let loaded = load_dir(s, auth, args.project_dir).await?;
    let options = MapOptions {
        focus,
        max_models_per_section: args.max_models_per_section.max(1),
        include_columns: args.include_columns,
    };
    Ok(ProjectMap {
        project: loaded.analysis.project.name.clone(),
        project_dir: loaded.dir.display().to_string(),
        focus: args.focus,
        map: render_map(&loaded.analysis, &loaded.findings, &options),
    })
}
