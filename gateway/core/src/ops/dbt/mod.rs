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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

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

/// Projects kept loaded, by directory and fence, with the stamp of the files they were read from.
type Kept = HashMap<(PathBuf, PathBuf), (Stamp, Arc<Loaded>)>;

/// Every file under a project (but version control, packages, logs and node modules): its path, size and
/// modification time. A project is read again only when this changes (an artifact rebuilt, a model edited).
type Stamp = Vec<(PathBuf, u64, Option<std::time::SystemTime>)>;

/// Most projects kept loaded at once (a 10,000-model project takes about 150 MB).
const KEPT_PROJECTS: usize = 8;

const UNSTAMPED_DIRS: &[&str] = &[
    ".git",
    "dbt_packages",
    "dbt_modules",
    "logs",
    "node_modules",
    "__pycache__",
];

fn kept() -> &'static Mutex<Kept> {
    static KEPT: OnceLock<Mutex<Kept>> = OnceLock::new();
    KEPT.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The stamp of `dir`'s files; symbolic links are stamped as links, not followed.
fn stamp(dir: &Path) -> Stamp {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                let skip = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| UNSTAMPED_DIRS.contains(&n));
                if !skip {
                    pending.push(path);
                }
            } else {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

/// Reads a project, never outside `fence` (its registered directory or root), whatever its dbt_project.yml
/// or symbolic links say. A project whose files have not changed since it was last read is not read again:
/// the gateway keeps the last [`KEPT_PROJECTS`] loaded (a large manifest takes a second to read).
fn load(dir: PathBuf, fence: &Path) -> Result<Arc<Loaded>, ToolError> {
    let key = (dir.clone(), fence.to_path_buf());
    let now = stamp(&dir);
    if let Some((seen, loaded)) = kept().lock().unwrap_or_else(|p| p.into_inner()).get(&key)
        && *seen == now
    {
        return Ok(Arc::clone(loaded));
    }
    let input = sluice_dbt::fs::load_project_within(&dir, None, fence)
        .map_err(|e| ToolError::invalid(e.to_string()))?;
    let (analysis, findings) = analyze(input);
    let loaded = Arc::new(Loaded {
        dir,
        analysis,
        findings,
    });
    let mut kept = kept().lock().unwrap_or_else(|p| p.into_inner());
    if kept.len() >= KEPT_PROJECTS && !kept.contains_key(&key) {
        // Any one goes: the set is small, and a project read again costs only its load.
        if let Some(evicted) = kept.keys().next().cloned() {
            kept.remove(&evicted);
        }
    }
    kept.insert(key, (now, Arc::clone(&loaded)));
    Ok(loaded)
}

/// Resolves `project_dir` (a registered name or a path inside a registered project or root) and loads it.
async fn load_dir(s: &Services, auth: &AuthContext, project_dir: String) -> Result<Arc<Loaded>, ToolError> {
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
) -> Result<Vec<(String, Arc<Loaded>)>, ToolError> {
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

#[cfg(test)]
mod kept_tests {
    use super::*;

    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }

    /// A project is read once and kept while its files stay as they were; an edited model or a rebuilt
    /// artifact makes the next call read it again.
    #[test]
    fn a_project_is_kept_until_its_files_change() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("jaffle");
        copy(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dbt/jaffle"),
            &dir,
        );
        let dir = std::fs::canonicalize(&dir).unwrap();
        let first = load(dir.clone(), &dir).unwrap();
        let again = load(dir.clone(), &dir).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "unchanged files: the kept project");
        // A model edited (its length changes, whatever the clock's resolution).
        let model = dir.join("models/staging/stg_orders.sql");
        let text = std::fs::read_to_string(&model).unwrap();
        std::fs::write(&model, format!("{text}\n-- edited\n")).unwrap();
        let edited = load(dir.clone(), &dir).unwrap();
        assert!(!Arc::ptr_eq(&first, &edited), "an edited model: read again");
        assert!(Arc::ptr_eq(&edited, &load(dir.clone(), &dir).unwrap()));
        // A rebuilt artifact.
        let manifest = dir.join("target/manifest.json");
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&manifest)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let rebuilt = load(dir.clone(), &dir).unwrap();
        assert!(!Arc::ptr_eq(&edited, &rebuilt), "a rebuilt manifest: read again");
    }
}
