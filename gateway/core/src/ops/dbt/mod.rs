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
use std::time::{Duration, Instant};

use sluice_catalog::{DocumentedKeys, DocumentedReference, RelationName};
use sluice_dbt::column_lineage::Traces;
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
    /// Its models' column-level traces, filled in the background after the load (see [`pretrace`]) and by
    /// the lineage and impact tools as they walk; dropped with the project when it is read again.
    traces: Arc<Traces>,
}

/// Projects kept loaded, by directory and fence.
type Kept = HashMap<(PathBuf, PathBuf), KeptProject>;

/// A loaded project with the stamp of the files it was read from, and when and how fast that was checked.
struct KeptProject {
    stamp: Stamp,
    /// When the stamp was last found unchanged (or taken).
    checked: Instant,
    /// How long taking the stamp took then.
    cost: Duration,
    loaded: Arc<Loaded>,
}

/// Every file under a project (but version control, packages, logs, node modules and dbt's compiled SQL):
/// its path, size and modification time. A project is read again only when this changes (an artifact
/// rebuilt, a model edited).
type Stamp = Vec<(PathBuf, u64, Option<std::time::SystemTime>)>;

/// Most projects kept loaded at once (a 10,000-model project takes about 150 MB).
const KEPT_PROJECTS: usize = 8;

/// A stamp that took less than this to take is taken again on every call: small projects are always current.
const CHEAP_STAMP: Duration = Duration::from_millis(5);

/// A costlier stamp (about 30 ms for the 20,000 files of a 10,000-model project) is trusted for this many
/// times its cost, up to [`MAX_TRUST`], so that an agent's burst of calls pays for one check, not one each,
/// and checking never takes more than a twentieth of the time.
const TRUST_FACTOR: u32 = 20;

/// The longest a change to a large project can go unseen.
const MAX_TRUST: Duration = Duration::from_secs(1);

const UNSTAMPED_DIRS: &[&str] = &[
    ".git",
    "dbt_packages",
    "dbt_modules",
    "logs",
    "node_modules",
    "__pycache__",
];

/// Directories of dbt's own output beside `manifest.json` (one file per model each): dbt rewrites them
/// together with the manifest, whose stamp already says when they changed, and nothing reads them.
const DBT_OUTPUT_DIRS: &[&str] = &["compiled", "run"];

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
            // The entry's metadata is read relative to the open directory and does not follow links.
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let path = entry.path();
            if meta.is_dir() {
                let name = entry.file_name();
                let name = name.to_str().unwrap_or_default();
                let skip = UNSTAMPED_DIRS.contains(&name)
                    || (DBT_OUTPUT_DIRS.contains(&name) && current.join("manifest.json").is_file());
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

/// How long a stamp that took `cost` to take is trusted without taking it again.
fn trust(cost: Duration) -> Duration {
    if cost < CHEAP_STAMP {
        Duration::ZERO
    } else {
        (cost * TRUST_FACTOR).min(MAX_TRUST)
    }
}

/// Makes the next read of the projects kept for `dir` check their files, whatever the trust window says:
/// the gateway itself has just changed them (`dbt parse`).
fn recheck(dir: &Path) {
    for (key, kept) in kept().lock().unwrap_or_else(|p| p.into_inner()).iter_mut() {
        if key.0 == dir {
            kept.cost = Duration::ZERO;
        }
    }
}

/// Reads a project, never outside `fence` (its registered directory or root), whatever its dbt_project.yml
/// or symbolic links say. A project whose files have not changed since it was last read is not read again:
/// the gateway keeps the last [`KEPT_PROJECTS`] loaded (a large manifest takes a second to read). Whether
/// they changed is checked on every call for small projects, and at most once per [`trust`] window for
/// large ones.
fn load(dir: PathBuf, fence: &Path) -> Result<Arc<Loaded>, ToolError> {
    let key = (dir.clone(), fence.to_path_buf());
    if let Some(kept) = kept().lock().unwrap_or_else(|p| p.into_inner()).get(&key)
        && kept.checked.elapsed() < trust(kept.cost)
    {
        return Ok(Arc::clone(&kept.loaded));
    }
    let started = Instant::now();
    let now = stamp(&dir);
    let cost = started.elapsed();
    if let Some(kept) = kept().lock().unwrap_or_else(|p| p.into_inner()).get_mut(&key)
        && kept.stamp == now
    {
        kept.checked = Instant::now();
        kept.cost = cost;
        return Ok(Arc::clone(&kept.loaded));
    }
    let input = sluice_dbt::fs::load_project_within(&dir, None, fence)
        .map_err(|e| ToolError::invalid(e.to_string()))?;
    let (analysis, findings) = analyze(input);
    let traces = Arc::new(Traces::new(&analysis.project));
    let loaded = Arc::new(Loaded {
        dir,
        analysis,
        findings,
        traces,
    });
    pretrace(&loaded);
    let mut kept = kept().lock().unwrap_or_else(|p| p.into_inner());
    if kept.len() >= KEPT_PROJECTS && !kept.contains_key(&key) {
        // Any one goes: the set is small, and a project read again costs only its load.
        if let Some(evicted) = kept.keys().next().cloned() {
            kept.remove(&evicted);
        }
    }
    kept.insert(
        key,
        KeptProject {
            stamp: now,
            checked: Instant::now(),
            cost,
            loaded: Arc::clone(&loaded),
        },
    );
    Ok(loaded)
}

/// Traces every model of a freshly loaded project on a thread of its own, so that the first column lineage or
/// impact question is answered from memory too (a cold trace costs about 0.2 ms a model, and a column that
/// feeds half the project reaches thousands). The thread stops as soon as the project is no longer kept
/// and no call is using it. What it keeps is bounded by the project: one trace per model.
fn pretrace(loaded: &Arc<Loaded>) {
    let weak = Arc::downgrade(loaded);
    let spawned = std::thread::Builder::new()
        .name("dbt-pretrace".to_owned())
        .spawn(move || {
            let Some(loaded) = weak.upgrade() else {
                return;
            };
            let started = Instant::now();
            // This thread's own reference does not count: another holder (the kept set, a call) must remain.
            let traced = loaded
                .traces
                .trace_all(&loaded.analysis.project, || weak.strong_count() > 1);
            tracing::debug!(
                dir = %loaded.dir.display(),
                traced,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "traced the dbt project's models"
            );
        });
    if let Err(e) = spawned {
        // Not fatal: the tools trace what they need as they walk.
        tracing::warn!(error = %e, "could not start the dbt pre-trace thread");
    }
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

/// The figures of issue 22 as the gateway serves them, on a large project built by real dbt (see
/// `dbt/benches/gen_project.py`; BENCHMARKS.md):
///
///     SLUICE_DBT_SCALE_DIR=/tmp/dbt-scale cargo test --release -p sluice-core --lib -- --ignored \
///         --nocapture gateway_scale
#[cfg(test)]
mod gateway_scale {
    use super::*;
    use sluice_dbt::Direction;
    use sluice_dbt::column_lineage::{Lineage, render};

    fn rss_kb() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    fn p50(mut times: Vec<Duration>) -> Duration {
        times.sort();
        times[times.len() / 2]
    }

    /// Lineage of one column (nearest 150 edges each way, rendered), through the kept project.
    #[test]
    #[ignore = "needs a generated 10,000-model project; run by hand"]
    fn gateway_scale_lineage_p50() {
        let dir = std::env::var_os("SLUICE_DBT_SCALE_DIR")
            .map_or_else(|| PathBuf::from("/tmp/dbt-scale"), PathBuf::from);
        let dir = std::fs::canonicalize(&dir).unwrap();
        let started = Instant::now();
        let loaded = load(dir.clone(), &dir).unwrap();
        eprintln!("first load (read + analyse): {:?}", started.elapsed());
        let before = rss_kb();
        let started = Instant::now();
        // The pre-trace thread is already at work; this call shares it and returns when every model is done.
        loaded.traces.trace_all(&loaded.analysis.project, || true);
        eprintln!(
            "every model traced: {:?} ({} models, RSS +{} MB)",
            started.elapsed(),
            loaded.traces.traced(),
            rss_kb().saturating_sub(before) / 1024
        );
        let project = &loaded.analysis.project;
        let models: Vec<String> = project
            .of_kind(sluice_dbt::NodeKind::Model)
            .iter()
            .step_by(97)
            .map(|(_, n)| n.name.clone())
            .collect();
        let serve = |model: &str| {
            let loaded = load(dir.clone(), &dir).unwrap();
            let walk = Lineage::with_traces(&loaded.analysis.project, Arc::clone(&loaded.traces))
                .max_edges(150)
                .walk(model, "amount", Direction::Both, None)
                .unwrap();
            render(&walk, Direction::Both).len()
        };
        let mut times = Vec::new();
        for model in models.iter().cycle().take(300) {
            let t = Instant::now();
            std::hint::black_box(serve(model));
            times.push(t.elapsed());
        }
        eprintln!(
            "lineage p50, calls within the stamp's trust window: {:?}",
            p50(times)
        );
        let mut times = Vec::new();
        let mut stamps = Vec::new();
        for model in models.iter().take(30) {
            // Expire the trust window: every call checks the project's files first.
            if let Some(k) = kept().lock().unwrap().get_mut(&(dir.clone(), dir.clone())) {
                k.checked = Instant::now() - MAX_TRUST;
            }
            let t = Instant::now();
            std::hint::black_box(serve(model));
            times.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(stamp(&dir).len());
            stamps.push(t.elapsed());
        }
        eprintln!(
            "lineage p50, each call checking the files: {:?} (the check alone: {:?})",
            p50(times),
            p50(stamps)
        );
    }
}
