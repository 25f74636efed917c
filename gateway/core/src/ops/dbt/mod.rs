//! dbt operations: registered projects, the project map, validation and lineage from dbt's own artifacts, dbt
//! error reading and model skeletons, and the checks of a built model against the warehouse.
//!
//! The analysis and every piece of SQL come from the pure `sluice-dbt` crate; this module resolves the
//! project (only directories inside registered projects or configured roots), runs the crate's work off
//! the async threads, and sends each statement through [`Services::query_in`], so verification SQL is
//! governed and audited like an agent's query. A model's relation is read from the manifest of the project
//! bound to the connection, never guessed from its name.

pub mod authoring;
pub mod column_lineage;
pub mod coverage;
pub mod impact;
pub mod lineage;
pub mod project;
pub mod validate;
pub mod warehouse;

use std::path::PathBuf;

use sluice_catalog::{DocumentedKeys, DocumentedReference, RelationName};
use sluice_dbt::{Analysis, Finding, analyze};

use crate::auth::AuthContext;
use crate::projects::{ProjectEntry, resolve_dir};
use crate::service::{AuditFacts, Outcome, Services, ToolError};

/// Runs filesystem and analysis work on the blocking pool: a large manifest takes most of a second.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolError::failed(format!("the dbt analysis task failed: {e}")))?
}

async fn projects(s: &Services, auth: &AuthContext) -> Result<Vec<ProjectEntry>, ToolError> {
    crate::projects::list(&s.settings, &s.store, &auth.org_id)
        .await
        .map_err(|e| ToolError::failed(format!("could not read the registered projects: {e}")))
}

/// A project read from disk and analysed.
struct Loaded {
    dir: PathBuf,
    analysis: Analysis,
    findings: Vec<Finding>,
}

/// Reads a project, never outside `fence` (its registered directory or root), whatever its dbt_project.yml
/// or symbolic links say.
fn load(dir: PathBuf, fence: &std::path::Path) -> Result<Loaded, ToolError> {
    let input = sluice_dbt::fs::load_project_within(&dir, None, fence)
        .map_err(|e| ToolError::invalid(e.to_string()))?;
    let (analysis, findings) = analyze(input);
    Ok(Loaded {
        dir,
        analysis,
        findings,
    })
}

/// Resolves `project_dir` (a registered name or a path inside a registered project or root) and loads it.
async fn load_dir(s: &Services, auth: &AuthContext, project_dir: String) -> Result<Loaded, ToolError> {
    let projects = projects(s, auth).await?;
    let roots = s.settings.dbt_project_roots.clone();
    blocking(move || {
        let resolved = resolve_dir(&projects, &roots, &project_dir).map_err(ToolError::invalid)?;
        load(resolved.dir, &resolved.fence)
    })
    .await
}

/// The projects bound to a connection, analysed.
async fn bound(
    s: &Services,
    auth: &AuthContext,
    connection: &str,
) -> Result<Vec<(String, Loaded)>, ToolError> {
    let bound: Vec<ProjectEntry> = projects(s, auth)
        .await?
        .into_iter()
        .filter(|p| p.connection.as_deref() == Some(connection))
        .collect();
    blocking(move || {
        bound
            .into_iter()
            .map(|p| {
                let dir = std::fs::canonicalize(&p.dir).map_err(|e| {
                    ToolError::failed(format!(
                        "project '{}' at {} cannot be opened: {e}",
                        p.name,
                        p.dir.display()
                    ))
                })?;
                Ok((p.name, load(dir.clone(), &dir)?))
            })
            .collect()
    })
    .await
}

/// The keys the tests of the projects bound to `connection` document (primary keys, unique columns,
/// `relationships`), for join inference on relations that declare none. A project that cannot be read
/// documents nothing; why is logged, and its own tools say it to the agent.
pub(crate) async fn documented_keys(
    s: &Services,
    auth: &AuthContext,
    connection: &str,
) -> Vec<DocumentedKeys> {
    let loaded = match bound(s, auth, connection).await {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::warn!(connection, error = %e.message, "dbt keys not read for join inference");
            return Vec::new();
        }
    };
    loaded
        .iter()
        .flat_map(|(project, loaded)| {
            sluice_dbt::keys::relation_keys(&loaded.analysis.project)
                .into_iter()
                .map(move |keys| documented(project, keys))
        })
        .collect()
}

fn documented(project: &str, keys: sluice_dbt::keys::RelationKeys) -> DocumentedKeys {
    let name = |r: &sluice_dbt::project::Relation| RelationName {
        schema: r.schema.clone(),
        name: r.identifier.clone(),
    };
    DocumentedKeys {
        relation: name(&keys.relation),
        source: format!("dbt project '{project}' ({})", keys.node),
        primary_key: keys.primary_key,
        unique: keys.unique,
        references: keys
            .references
            .iter()
            .map(|r| DocumentedReference {
                column: r.column.clone(),
                to: name(&r.to),
                to_column: r.to_column.clone(),
                source: format!(
                    "dbt relationships test {}.{} -> {}.{}",
                    keys.node, r.column, r.to_node, r.to_column
                ),
            })
            .collect(),
    }
}

fn ok<T>(result: Result<T, ToolError>) -> Outcome<T> {
    Outcome {
        result,
        audit: AuditFacts::default(),
    }
}
