//! The analysis: project files and artifacts in, the project graph, work order and findings out.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use crate::artifacts::catalog::Catalog;
use crate::artifacts::manifest::Manifest;
use crate::artifacts::run_results::{Outcome, RunResults};
use crate::files::{self, ProjectFiles};
use crate::finding::{Finding, Location, Rule};
use crate::jinja;
use crate::project::{ModelStatus, Node, NodeId, NodeKind, Project};
use crate::sql;
use crate::work_order::{WorkOrder, work_order};

/// An artifact and its file's modification time.
#[derive(Debug, Clone)]
pub struct Artifact<T> {
    /// The parsed artifact.
    pub value: T,
    /// When the file was written, for the staleness check.
    pub modified: Option<SystemTime>,
}

impl<T> Artifact<T> {
    /// An artifact without a known modification time.
    pub fn new(value: T) -> Self {
        Artifact {
            value,
            modified: None,
        }
    }
}

/// Everything an analysis reads. Any part may be absent: a project without artifacts is analysed from its
/// files, and artifacts without a project directory from the manifest alone.
#[derive(Debug, Clone, Default)]
pub struct ProjectInput {
    /// The project directory's files.
    pub files: Option<ProjectFiles>,
    /// `manifest.json`.
    pub manifest: Option<Artifact<Manifest>>,
    /// `catalog.json`.
    pub catalog: Option<Artifact<Catalog>>,
    /// `run_results.json`.
    pub run_results: Option<Artifact<RunResults>>,
    /// The target directory as the user would write it (`target`), for messages.
    pub target_dir: String,
}

/// The last run's outcome for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// What happened.
    pub outcome: Outcome,
    /// dbt's message.
    pub message: Option<String>,
    /// Failing rows, for tests.
    pub failures: Option<i64>,
}

/// What an analysis produces besides its findings.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// The merged graph.
    pub project: Project,
    /// Models that need work, in build order, and cycles.
    pub work_order: WorkOrder,
    /// The last run's outcome by node, when run_results.json was read.
    pub last_run: HashMap<NodeId, RunOutcome>,
}

/// Analyses a project. Never fails: unreadable parts were already turned into errors by whoever read them,
/// and everything wrong with what was read is a finding.
pub fn analyze(input: ProjectInput) -> (Analysis, Vec<Finding>) {
    let ProjectInput {
        files,
        manifest,
        catalog,
        run_results,
        target_dir,
    } = input;
    let mut findings = Vec::new();
    let target = if target_dir.is_empty() {
        "target".to_owned()
    } else {
        target_dir
    };

    // The project files are scanned (YAML parsed, Jinja and SQL read) on a second thread while this one turns
    // the manifest into graph nodes: on a 10,000-model project each takes a good part of the analysis, and
    // neither needs the other until the graph is finished.
    let started = std::time::Instant::now();
    let manifest_present = manifest.is_some();
    let manifest_modified = manifest.as_ref().and_then(|a| a.modified);
    let (scan, graph) = std::thread::scope(|scope| {
        let scanning = files.as_ref().map(|f| {
            scope.spawn(|| {
                let scan = files::scan(f);
                tracing::debug!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "scanned the project files"
                );
                scan
            })
        });
        let graph = Project::from_manifest(manifest.map(|a| a.value));
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "built the manifest's nodes"
        );
        // A panic in the scan is a bug: it goes on as the panic it was.
        let scan = scanning.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (scan, graph)
    });
    let scanned_ms = started.elapsed().as_millis() as u64;
    let scan = scan.map(|(scan, scan_findings)| {
        findings.extend(scan_findings);
        scan
    });
    for (present, name, consequence) in [
        (
            manifest_present,
            "manifest.json",
            "the graph comes from the project files alone and no generated tests are known",
        ),
        (
            catalog.is_some(),
            "catalog.json",
            "documented columns were not compared with the warehouse (run `dbt docs generate`)",
        ),
        (
            run_results.is_some(),
            "run_results.json",
            "the last run's failures are unknown",
        ),
    ] {
        if !present {
            findings.push(Finding::new(
                Rule::ArtifactMissing,
                format!("{target}/{name} not found: {consequence}"),
            ));
        }
    }

    if let Some((newest_path, newest)) = scan.as_ref().and_then(|s| s.newest.clone()) {
        let artifacts = [
            ("manifest.json", manifest_modified),
            ("catalog.json", catalog.as_ref().and_then(|a| a.modified)),
            ("run_results.json", run_results.as_ref().and_then(|a| a.modified)),
        ];
        for (name, modified) in artifacts {
            if let Some(modified) = modified
                && let Ok(age) = newest.duration_since(modified)
                && !age.is_zero()
            {
                findings.push(
                    Finding::new(
                        Rule::ArtifactStale,
                        format!(
                            "{target}/{name} is older than {newest_path} (by {}s): it describes an earlier state of \
                             the project; rerun `dbt build` and `dbt docs generate`",
                            age.as_secs()
                        ),
                    )
                    .at(&newest_path, None),
                );
            }
        }
    }

    let (mut project, build_findings) = graph.with_files(scan.as_ref());
    findings.extend(build_findings);
    let built_ms = started.elapsed().as_millis() as u64;
    let root = project.name.clone();

    let last_run = run_results
        .map(|rr| last_run(&project, rr.value))
        .unwrap_or_default();
    if let Some(catalog) = catalog {
        attach_catalog(&mut project, &catalog.value);
        findings.extend(catalog_checks(&project, &last_run));
    }
    findings.extend(run_checks(&project, &last_run));

    let unique_columns = project.unique_columns();
    let mut needs_work: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
    for (id, node) in project.nodes.iter().enumerate() {
        if node.package != root {
            continue;
        }
        if project.provenance.files && node.in_manifest && !node.on_disk && node.kind == NodeKind::Model {
            let path = node.path.clone().unwrap_or_default();
            findings.push(
                Finding::new(
                    Rule::ArtifactStale,
                    format!(
                        "model `{}` is in {target}/manifest.json but its file {path} no longer exists",
                        node.name
                    ),
                )
                .node(&node.unique_id),
            );
        }
        if node.kind == NodeKind::Model {
            model_checks(
                node,
                &unique_columns,
                &mut findings,
                needs_work.entry(id).or_default(),
            );
        }
    }
    for u in &project.unresolved {
        let node = project.node(u.node);
        let (rule, what) = if u.is_source {
            (Rule::UnresolvedSource, "no source declares this table")
        } else {
            (Rule::UnresolvedRef, "no model, seed or snapshot has this name")
        };
        findings.push(
            Finding::new(
                rule,
                format!("`{}` in {} `{}`: {what}", u.call, node.kind.as_str(), node.name),
            )
            .node(&node.unique_id)
            .located(u.location.clone()),
        );
        if node.kind == NodeKind::Model {
            needs_work
                .entry(u.node)
                .or_default()
                .push(format!("unresolved {}", u.call));
        }
    }
    for (&id, outcome) in &last_run {
        let node = project.node(id);
        let reason = match (node.kind, outcome.outcome) {
            (NodeKind::Model, Outcome::Errored) => "errored in the last run".to_owned(),
            (NodeKind::Test, Outcome::Failed | Outcome::Errored) => format!("test `{}` failed", node.name),
            _ => continue,
        };
        let model = match node.kind {
            NodeKind::Test => node
                .test
                .as_ref()
                .and_then(|t| t.attached.as_deref())
                .and_then(|a| project.id(a)),
            _ => Some(id),
        };
        if let Some(model) =
            model.filter(|&m| project.node(m).kind == NodeKind::Model && project.node(m).package == root)
        {
            needs_work.entry(model).or_default().push(reason);
        }
    }
    needs_work.retain(|_, reasons| !reasons.is_empty());
    for reasons in needs_work.values_mut() {
        reasons.sort();
        reasons.dedup();
    }

    // The Jinja facts served the checks; the project kept by the gateway does not need them.
    for node in &mut project.nodes {
        node.jinja = None;
    }
    let checked_ms = started.elapsed().as_millis() as u64;
    let (order, cycle_findings) = work_order(&project, &needs_work);
    findings.extend(cycle_findings);
    Finding::sort(&mut findings);
    findings.dedup();
    tracing::debug!(
        scanned_ms,
        built_ms,
        checked_ms,
        elapsed_ms = started.elapsed().as_millis() as u64,
        nodes = project.nodes.len(),
        findings = findings.len(),
        "analysed dbt project"
    );
    (
        Analysis {
            project,
            work_order: order,
            last_run,
        },
        findings,
    )
}

fn yml_location(node: &Node) -> Option<Location> {
    node.yml
        .clone()
        .or_else(|| node.path.as_ref().map(|p| Location::at(p, None)))
}

fn sql_location(node: &Node, line: Option<u32>) -> Option<Location> {
    node.path.as_ref().map(|p| Location::at(p, line))
}

/// Status, documentation, primary key, SQL hazard and incremental checks of one root-project model.
fn model_checks(
    node: &Node,
    unique_columns: &std::collections::HashSet<String>,
    findings: &mut Vec<Finding>,
    needs_work: &mut Vec<String>,
) {
    let id = &node.unique_id;
    let name = &node.name;
    match node.status {
        Some(ModelStatus::Missing) => {
            findings.push(
                Finding::new(
                    Rule::ModelSqlMissing,
                    format!(
                        "model `{name}` is declared in YAML but has no SQL file; dbt ignores its YAML entry"
                    ),
                )
                .node(id)
                .located(yml_location(node)),
            );
            needs_work.push("no SQL file".to_owned());
            return;
        }
        Some(ModelStatus::Stub) => {
            let reason = node.stub_reason.unwrap_or("it looks unfinished");
            findings.push(
                Finding::new(Rule::StubModel, format!("model `{name}` is a stub: {reason}"))
                    .node(id)
                    .located(sql_location(node, None)),
            );
            needs_work.push(format!("stub: {reason}"));
        }
        Some(ModelStatus::Orphan) => findings.push(
            Finding::new(
                Rule::OrphanModel,
                format!("model `{name}` has no YAML entry: no description, no documented columns, no tests"),
            )
            .node(id)
            .located(sql_location(node, None)),
        ),
        Some(ModelStatus::Complete) | None => {}
    }
    if node.has_yml() {
        if node.description.trim().is_empty() {
            findings.push(
                Finding::new(
                    Rule::UndocumentedModel,
                    format!("model `{name}` has no description"),
                )
                .node(id)
                .located(yml_location(node)),
            );
        }
        for column in node.columns.iter().filter(|c| c.description.trim().is_empty()) {
            let location = match (&node.yml, column.line) {
                (Some(yml), Some(line)) => Some(Location::at(&yml.path, Some(line))),
                _ => yml_location(node),
            };
            findings.push(
                Finding::new(
                    Rule::UndocumentedColumn,
                    format!("column `{name}.{}` has no description", column.name),
                )
                .node(id)
                .located(location),
            );
        }
        let ephemeral = node.materialized.as_deref() == Some("ephemeral");
        if node.status == Some(ModelStatus::Complete) && !ephemeral && node.primary_key().is_none() {
            findings.push(
                Finding::new(
                    Rule::MissingPrimaryKeyTest,
                    format!(
                        "model `{name}` has no primary-key test: add `unique` and `not_null` to its key column \
                         (or unique_combination_of_columns for a compound key)"
                    ),
                )
                .node(id)
                .located(yml_location(node)),
            );
        }
    }
    if matches!(node.status, Some(ModelStatus::Complete | ModelStatus::Orphan))
        && let Some(sql_text) = &node.sql
    {
        let scanned;
        let facts = match &node.jinja {
            Some(facts) => facts.as_ref(),
            None => {
                scanned = jinja::scan(sql_text);
                &scanned
            }
        };
        for hazard in sql::hazards(sql_text, facts, unique_columns) {
            findings.push(
                Finding::new(hazard.rule, format!("model `{name}`: {}", hazard.message))
                    .node(id)
                    .located(sql_location(node, Some(hazard.line))),
            );
        }
    }
    let appends = ["append", "insert_overwrite", "microbatch"];
    if node.materialized.as_deref() == Some("incremental")
        && node.unique_key.is_empty()
        && !node
            .incremental_strategy
            .as_deref()
            .is_some_and(|s| appends.contains(&s))
    {
        let strategy = node
            .incremental_strategy
            .as_deref()
            .unwrap_or("the adapter's default");
        findings.push(
            Finding::new(
                Rule::IncrementalWithoutUniqueKey,
                format!(
                    "incremental model `{name}` (strategy {strategy}) has no unique_key: rows that arrive again are \
                     inserted again; set unique_key, or incremental_strategy='append' if that is intended"
                ),
            )
            .node(id)
            .located(sql_location(node, None)),
        );
    }
}

fn attach_catalog(project: &mut Project, catalog: &Catalog) {
    for node in &mut project.nodes {
        if let Some(table) = catalog.table(&node.unique_id) {
            let mut columns: Vec<_> = table.columns.iter().collect();
            columns.sort_by_key(|c| c.index);
            node.catalog_columns = Some(
                columns
                    .into_iter()
                    .map(|c| (c.name.clone(), c.data_type.clone()))
                    .collect(),
            );
        }
    }
}

/// Documented columns against the built relations.
fn catalog_checks(project: &Project, last_run: &HashMap<NodeId, RunOutcome>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (id, node) in project.nodes.iter().enumerate() {
        if node.package != project.name
            || !matches!(
                node.kind,
                NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot | NodeKind::Source
            )
        {
            continue;
        }
        let name = node.display_name();
        let Some(actual) = &node.catalog_columns else {
            let failed = last_run
                .get(&id)
                .is_some_and(|r| matches!(r.outcome, Outcome::Errored | Outcome::Skipped));
            let builds = node.kind == NodeKind::Model
                && node.in_manifest
                && node.status != Some(ModelStatus::Missing)
                && node.materialized.as_deref() != Some("ephemeral");
            if builds && !failed {
                findings.push(
                    Finding::new(
                        Rule::ModelNotInCatalog,
                        format!("model `{name}` is not in catalog.json: it has not been built since the last `dbt docs generate`"),
                    )
                    .node(&node.unique_id)
                    .located(sql_location(node, None)),
                );
            }
            continue;
        };
        let actual_names: Vec<String> = actual.iter().map(|(c, _)| c.to_ascii_lowercase()).collect();
        for column in &node.columns {
            let documented = column.name.trim_matches(['"', '`']).to_ascii_lowercase();
            if !actual_names.contains(&documented) {
                let location = match (&node.yml, column.line) {
                    (Some(yml), Some(line)) => Some(Location::at(&yml.path, Some(line))),
                    _ => yml_location(node),
                };
                findings.push(
                    Finding::new(
                        Rule::DocumentedColumnMissing,
                        format!(
                            "column `{name}.{}` is documented but the built {} has no such column",
                            column.name,
                            node.kind.as_str()
                        ),
                    )
                    .node(&node.unique_id)
                    .located(location),
                );
            }
        }
        // Undocumented warehouse columns only matter once a model documents its columns at all; a model
        // with none is reported as undocumented or orphaned already.
        if node.kind == NodeKind::Model && !node.columns.is_empty() {
            let documented: Vec<String> = node
                .columns
                .iter()
                .map(|c| c.name.trim_matches(['"', '`']).to_ascii_lowercase())
                .collect();
            for (column, data_type) in actual {
                if !documented.contains(&column.to_ascii_lowercase()) {
                    findings.push(
                        Finding::new(
                            Rule::UndocumentedCatalogColumn,
                            format!("column `{name}.{column}` ({data_type}) is in the built model but not documented"),
                        )
                        .node(&node.unique_id)
                        .located(yml_location(node)),
                    );
                }
            }
        }
    }
    findings
}

fn last_run(project: &Project, run_results: RunResults) -> HashMap<NodeId, RunOutcome> {
    run_results
        .results
        .into_iter()
        .filter_map(|r| {
            let id = project.id(&r.unique_id)?;
            Some((
                id,
                RunOutcome {
                    outcome: r.outcome(),
                    message: r.message,
                    failures: r.failures,
                },
            ))
        })
        .collect()
}

/// Failures of the last run.
fn run_checks(project: &Project, last_run: &HashMap<NodeId, RunOutcome>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (&id, result) in last_run {
        let node = project.node(id);
        let kind = node.kind.as_str();
        let message = result
            .message
            .as_deref()
            .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|m| !m.is_empty())
            .map(|m| format!(": {}", truncate(&m, 300)))
            .unwrap_or_default();
        let subject = match (&node.test, node.kind) {
            (Some(test), NodeKind::Test) => {
                let target = test
                    .attached
                    .as_deref()
                    .and_then(|a| project.id(a))
                    .map(|t| project.node(t).display_name());
                match (target, &test.column) {
                    (Some(t), Some(c)) => format!("test `{}` on `{t}.{c}`", node.name),
                    (Some(t), None) => format!("test `{}` on `{t}`", node.name),
                    _ => format!("test `{}`", node.name),
                }
            }
            _ => format!("{kind} `{}`", node.display_name()),
        };
        let (rule, verb) = match result.outcome {
            Outcome::Failed => (Rule::TestFailed, "failed"),
            Outcome::Warned => (Rule::TestWarned, "warned"),
            Outcome::Errored => (Rule::NodeErrored, "errored"),
            Outcome::Skipped => (Rule::NodeSkipped, "was skipped because something upstream failed"),
            Outcome::Ok | Outcome::Other => continue,
        };
        let rows = match (result.outcome, result.failures) {
            (Outcome::Failed | Outcome::Warned, Some(n)) => {
                format!(" ({n} failing row{})", if n == 1 { "" } else { "s" })
            }
            _ => String::new(),
        };
        let message = if result.outcome == Outcome::Skipped {
            String::new()
        } else {
            message
        };
        findings.push(
            Finding::new(rule, format!("{subject} {verb} in the last run{rows}{message}"))
                .node(&node.unique_id)
                .located(test_location(project, node)),
        );
    }
    findings
}

/// Where to point for a run result: a generic test's column entry in YAML when the files were read, else
/// the node's file.
fn test_location(project: &Project, node: &Node) -> Option<Location> {
    if let Some(test) = &node.test
        && let Some(target) = test.attached.as_deref().and_then(|a| project.id(a))
        && let Some(column) = &test.column
    {
        let target = project.node(target);
        if let Some(line) = target
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(column))
            .and_then(|c| c.line)
            && let Some(yml) = &target.yml
        {
            return Some(Location::at(&yml.path, Some(line)));
        }
    }
    node.path.as_ref().map(|p| Location::at(p, None))
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
