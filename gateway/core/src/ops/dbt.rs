//! dbt operations: registered projects, the project map, validation and lineage from dbt's own artifacts, dbt
//! error reading and model skeletons, and the checks of a built model against the warehouse.
//!
//! The analysis and every piece of SQL come from the pure `sluice-dbt` crate; this module resolves the
//! project (only directories inside registered projects or configured roots), runs the crate's work off
//! the async threads, and sends each statement through [`Services::query_in`], so verification SQL is
//! governed and audited like an agent's query. A model's relation is read from the manifest of the project
//! bound to the connection, never guessed from its name.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dbt::files::{ProjectConfig, ProjectFile};
use sluice_dbt::render::map::{Focus, MapOptions, render_map};
use sluice_dbt::render::report::{Format, ReportOptions, Summary, render};
use sluice_dbt::verify::{self, TableRef};
use sluice_dbt::{Analysis, Direction, Finding, NodeKind, Rule, Severity, analyze};
use sluice_dialect::Quoting;

use crate::auth::AuthContext;
use crate::dbt_parse::{self, ParseCommand, ParseStatus};
use crate::pipeline::CallContext;
use crate::projects::{ProjectEntry, resolve_dir};
use crate::service::{AuditFacts, Outcome, QueryOutput, Services, ToolError};

// ---------------------------------------------------------------------------------------------------------
// Arguments

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetProjectArgs {
    /// The project's registered name (see list_projects).
    pub name: String,
}

pub fn default_focus() -> String {
    "all".to_owned()
}

pub fn default_max_models() -> usize {
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectDirArgs {
    /// A registered project's name, or an absolute path inside a registered project.
    pub project_dir: String,
}

pub fn default_direction() -> String {
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorParserArgs {
    /// Raw dbt output (stdout and/or stderr of dbt run, build, test, parse or compile).
    pub error_output: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkeletonArgs {
    /// The new model's name.
    pub model_name: String,
    /// Comma-separated output columns, as documented in the model's YAML.
    pub yml_columns: String,
    /// Comma-separated upstreams: model names become ref(), `source_name.table` becomes source().
    #[serde(default)]
    pub ref_tables: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSchemaArgs {
    /// The connection holding the warehouse a registered project builds.
    pub connection_name: String,
    /// The dbt model (its relation is read from the project's manifest).
    pub model_name: String,
    /// Comma-separated expected columns; empty = the columns documented in the model's YAML.
    pub yml_columns: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateOutputArgs {
    /// The connection holding the warehouse a registered project builds.
    pub connection_name: String,
    /// The dbt model (its relation is read from the project's manifest).
    pub model_name: String,
    /// Optional upstream to compare row counts with: a model, seed, `source_name.table`, or a table name.
    #[serde(default)]
    pub source_table: String,
    /// Optional expected row count; 0 = no check.
    #[serde(default)]
    pub expected_row_count: u64,
}

pub fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSourcesArgs {
    /// The connection holding the warehouse a registered project builds.
    pub connection_name: String,
    /// The dbt model (its relation is read from the project's manifest).
    pub model_name: String,
    /// Comma-separated upstreams: models, seeds, `source_name.table`, or table names.
    pub source_tables: String,
    /// Also profile the model's columns (NULL counts and fractions, distinct values).
    #[serde(default = "default_true")]
    pub sample_nulls: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrainArgs {
    /// The connection to read.
    pub connection_name: String,
    /// A model, seed or `source_name.table` of a project bound to the connection, or `[schema.]table`.
    pub table_name: String,
    /// Comma-separated columns to test as the grain; empty = `id`, `*_id` and `*_key` columns.
    #[serde(default)]
    pub candidate_keys: String,
}

// ---------------------------------------------------------------------------------------------------------
// Outputs

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

#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct SummaryOut {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

impl From<Summary> for SummaryOut {
    fn from(s: Summary) -> Self {
        SummaryOut {
            errors: s.errors,
            warnings: s.warnings,
            infos: s.infos,
        }
    }
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
    pub findings: SummaryOut,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ProjectMap {
    pub project: String,
    pub project_dir: String,
    pub focus: String,
    /// The rendered map.
    pub map: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FindingOut {
    /// Stable id, e.g. DBT301.
    pub id: String,
    /// Stable name, e.g. documented-column-missing.
    pub name: String,
    /// error, warning or info.
    pub severity: String,
    pub message: String,
    /// The node's unique id.
    pub node: Option<String>,
    /// File relative to the project.
    pub path: Option<String>,
    pub line: Option<u32>,
}

impl From<&Finding> for FindingOut {
    fn from(f: &Finding) -> Self {
        FindingOut {
            id: f.rule.code().to_owned(),
            name: f.rule.name().to_owned(),
            severity: f.severity.as_str().to_owned(),
            message: f.message.clone(),
            node: f.node.clone(),
            path: f.location.as_ref().map(|l| l.path.clone()),
            line: f.location.as_ref().and_then(|l| l.line),
        }
    }
}

/// Whether `dbt parse` refreshed the manifest before the validation read it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DbtParseOut {
    /// not_configured (no dbt binary configured), skipped (no dbt_project.yml), succeeded, failed or
    /// timed_out.
    pub status: String,
    /// Whether dbt parse was run before the artifacts were read.
    pub ran: bool,
    pub duration_ms: Option<u64>,
    /// dbt's exit code when it failed (null when killed).
    pub exit_code: Option<i32>,
    /// The last lines dbt printed, when it failed or timed out.
    pub output_tail: Vec<String>,
    /// What this means for the findings.
    pub message: String,
}

impl DbtParseOut {
    fn not_run(status: &str, message: String) -> Self {
        DbtParseOut {
            status: status.to_owned(),
            ran: false,
            duration_ms: None,
            exit_code: None,
            output_tail: Vec::new(),
            message,
        }
    }

    fn from_run(run: dbt_parse::ParseRun, timeout: std::time::Duration) -> Self {
        let secs = run.duration.as_secs_f64();
        let stale = "the findings come from the artifacts as found, which may be stale";
        let message = match run.status {
            ParseStatus::Succeeded => {
                format!("dbt parse ran in {secs:.1} s; the manifest reflects the current project files.")
            }
            ParseStatus::Failed => format!(
                "dbt parse FAILED ({}) after {secs:.1} s; {stale}. Fix what dbt reports:",
                run.exit_code
                    .map_or("killed by a signal".to_owned(), |c| format!("exit code {c}"))
            ),
            ParseStatus::TimedOut => format!(
                "dbt parse timed out after {} s and was killed; {stale}. Its last output:",
                timeout.as_secs()
            ),
        };
        let succeeded = run.status == ParseStatus::Succeeded;
        DbtParseOut {
            status: run.status.as_str().to_owned(),
            ran: true,
            duration_ms: Some(u64::try_from(run.duration.as_millis()).unwrap_or(u64::MAX)),
            exit_code: run.exit_code.filter(|_| !succeeded),
            output_tail: if succeeded { Vec::new() } else { run.output_tail },
            message,
        }
    }

    fn render(&self) -> String {
        let mut out = self.message.clone();
        for line in &self.output_tail {
            let _ = write!(out, "\n  | {line}");
        }
        out
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ValidationReport {
    pub project: String,
    pub project_dir: String,
    /// Whether `dbt parse` ran first (only when the operator configured a dbt binary) and how it went.
    pub dbt_parse: DbtParseOut,
    pub summary: SummaryOut,
    pub findings: Vec<FindingOut>,
    /// The report as sluice-dbt renders it (the text an agent reads); not part of the structured result.
    #[serde(skip)]
    #[schemars(skip)]
    pub text: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct LineageNode {
    /// Edges from the start node.
    pub depth: usize,
    pub kind: String,
    pub name: String,
    pub unique_id: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Lineage {
    pub project: String,
    pub node: String,
    pub unique_id: String,
    pub kind: String,
    pub direction: String,
    /// Edges followed; null = all.
    pub depth: Option<u32>,
    pub upstream: Vec<LineageNode>,
    pub downstream: Vec<LineageNode>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ParsedError {
    pub error_type: String,
    pub resource_type: Option<String>,
    pub node: Option<String>,
    pub path: Option<String>,
    pub line: Option<u32>,
    pub message: String,
    /// missing_column, missing_relation, unresolved_ref, unresolved_source, syntax, ambiguous_column,
    /// division_by_zero, type_conversion, duplicate_key, test_failed, yaml or other.
    pub category: String,
    pub suggested_fix: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ParsedErrors {
    pub errors: Vec<ParsedError>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Skeleton {
    pub model_name: String,
    pub sql: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct WarehouseColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CaseMismatch {
    pub expected: String,
    pub actual: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SchemaCheck {
    pub connection: String,
    pub model: String,
    /// The relation read, from the manifest.
    pub relation: String,
    pub expected: Vec<String>,
    pub actual: Vec<WarehouseColumn>,
    pub matching: Vec<String>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub case_mismatches: Vec<CaseMismatch>,
    /// True when the relation has exactly the expected columns.
    pub matches: bool,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct OutputValidation {
    pub connection: String,
    pub model: String,
    pub relation: String,
    pub row_count: u64,
    pub source_table: Option<String>,
    pub source_relation: Option<String>,
    pub source_row_count: Option<u64>,
    /// Model rows over source rows.
    pub ratio: Option<f64>,
    /// ok, over_filtered, fan_out or empty_source.
    pub verdict: Option<String>,
    pub expected_row_count: Option<u64>,
    pub expected_matches: Option<bool>,
    pub warnings: Vec<String>,
}

pub fn verdict_name(v: verify::RatioVerdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SourceRows {
    pub name: String,
    pub relation: String,
    pub row_count: u64,
    pub ratio: Option<f64>,
    pub verdict: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ColumnProfile {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub nulls: u64,
    pub null_fraction: f64,
    pub distinct: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SourceAudit {
    pub connection: String,
    pub model: String,
    pub relation: String,
    pub row_count: u64,
    pub sources: Vec<SourceRows>,
    /// Empty unless sample_nulls.
    pub columns: Vec<ColumnProfile>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct KeyCheck {
    pub column: String,
    pub distinct: u64,
    pub nulls: u64,
    /// Every row has its own non-NULL value.
    pub unique: bool,
    /// Rows per distinct value.
    pub fan_out: Option<f64>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Grain {
    pub connection: String,
    pub table: String,
    pub relation: String,
    pub total_rows: u64,
    pub candidates: Vec<KeyCheck>,
    /// The first unique candidate.
    pub grain: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------
// Shared plumbing

pub fn ok<T>(result: Result<T, ToolError>) -> Outcome<T> {
    Outcome {
        result,
        audit: AuditFacts::default(),
    }
}

/// Runs filesystem and analysis work on the blocking pool: a large manifest takes most of a second.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolError::failed(format!("the dbt analysis task failed: {e}")))?
}

pub async fn projects(s: &Services, auth: &AuthContext) -> Result<Vec<ProjectEntry>, ToolError> {
    crate::projects::list(&s.settings, &s.store, &auth.org_id)
        .await
        .map_err(|e| ToolError::failed(format!("could not read the registered projects: {e}")))
}

/// A project read from disk and analysed.
pub struct Loaded {
    dir: PathBuf,
    analysis: Analysis,
    findings: Vec<Finding>,
}

/// Reads a project, never outside `fence` (its registered directory or root), whatever its dbt_project.yml
/// or symbolic links say.
pub fn load(dir: PathBuf, fence: &std::path::Path) -> Result<Loaded, ToolError> {
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
pub async fn load_dir(s: &Services, auth: &AuthContext, project_dir: String) -> Result<Loaded, ToolError> {
    let projects = projects(s, auth).await?;
    let roots = s.settings.dbt_project_roots.clone();
    blocking(move || {
        let resolved = resolve_dir(&projects, &roots, &project_dir).map_err(ToolError::invalid)?;
        load(resolved.dir, &resolved.fence)
    })
    .await
}

/// The projects bound to a connection, analysed.
pub async fn bound(
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

/// A model of a project bound to the connection: its relation as the manifest records it.
pub struct Model {
    name: String,
    table: TableRef,
    documented: Vec<String>,
}

pub fn find_model(bound: &[(String, Loaded)], connection: &str, model: &str) -> Result<Model, ToolError> {
    if bound.is_empty() {
        return Err(ToolError::invalid(format!(
            "no dbt project is bound to connection '{connection}', so model '{model}' cannot be looked up in a \
             manifest: register the project with `sluice project add --name N --dir D --connection \
             {connection}` (or `connection = \"{connection}\"` under [[projects]] in the config)"
        )));
    }
    for (_, loaded) in bound {
        let project = &loaded.analysis.project;
        let Some(id) = project.find(model) else {
            continue;
        };
        let node = project.node(id);
        if !matches!(node.kind, NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot) {
            return Err(ToolError::invalid(format!(
                "'{model}' is a {} in project {}, not a model, seed or snapshot",
                node.kind.as_str(),
                project.name
            )));
        }
        let Some(relation) = node.relation.as_ref() else {
            return Err(ToolError::invalid(format!(
                "model '{model}' has no relation in the manifest of project {} (ephemeral, disabled, or declared \
                 without SQL); build it with `dbt build --select {model}` first",
                project.name
            )));
        };
        return Ok(Model {
            name: node.name.clone(),
            table: TableRef::from_relation(relation),
            documented: node.columns.iter().map(|c| c.name.clone()).collect(),
        });
    }
    let names: Vec<String> = bound.iter().map(|(n, _)| n.clone()).collect();
    let mut models: Vec<String> = bound
        .iter()
        .flat_map(|(_, l)| {
            l.analysis
                .project
                .of_kind(NodeKind::Model)
                .into_iter()
                .filter(|(_, n)| n.relation.is_some())
                .map(|(_, n)| n.name.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    models.sort();
    models.dedup();
    let shown: Vec<String> = models.iter().take(30).cloned().collect();
    Err(ToolError::invalid(format!(
        "model '{model}' is not in the manifest of project {} (bound to connection '{connection}'); models: {}{}",
        names.join(", "),
        shown.join(", "),
        if models.len() > shown.len() { ", …" } else { "" }
    )))
}

/// A table the caller names beside the model: a node of a bound project when it is one, else a plain name.
pub fn find_table(bound: &[(String, Loaded)], name: &str) -> Result<TableRef, ToolError> {
    for (_, loaded) in bound {
        let project = &loaded.analysis.project;
        if let Some(id) = project.find(name)
            && let Some(relation) = project.node(id).relation.as_ref()
        {
            return Ok(TableRef::from_relation(relation));
        }
    }
    TableRef::parse(name).map_err(|e| ToolError::invalid(e.to_string()))
}

/// Several governed statements for one tool call: each goes through [`Services::query_in`]; the audit
/// record lists them all (the audit log redacts every literal).
pub struct Runner<'a> {
    s: &'a Services,
    ctx: &'a CallContext,
    connection: String,
    sqls: Vec<String>,
    audit: AuditFacts,
}

impl<'a> Runner<'a> {
    fn new(s: &'a Services, ctx: &'a CallContext, connection: &str) -> Self {
        Runner {
            s,
            ctx,
            connection: connection.to_owned(),
            sqls: Vec::new(),
            audit: AuditFacts {
                connection: Some(connection.to_owned()),
                ..Default::default()
            },
        }
    }

    async fn run(&mut self, sql: &str, what: &str) -> Result<QueryOutput, ToolError> {
        let out = self
            .s
            .query_in(
                &self.ctx.auth,
                self.ctx.session_id.as_deref(),
                &self.connection,
                sql,
                1,
            )
            .await;
        if let Some(sql) = out.audit.sql {
            self.sqls.push(sql);
            self.audit.sql = Some(self.sqls.join(";\n"));
        }
        self.audit.dialect = out.audit.dialect.or(self.audit.dialect);
        if out.audit.rule.is_some() {
            self.audit.rule = out.audit.rule;
        }
        match out.result {
            Ok(r) => {
                self.audit.rows = Some(self.audit.rows.unwrap_or(0) + r.row_count);
                Ok(r)
            }
            Err(mut e) => {
                e.message = format!("{what}: {}", e.message);
                Err(e)
            }
        }
    }

    fn finish<T>(self, result: Result<T, ToolError>) -> Outcome<T> {
        Outcome {
            result,
            audit: self.audit,
        }
    }
}

/// The number in column `name` of the first row (counts arrive as numbers, or as strings beyond 2^53).
pub fn count(out: &QueryOutput, name: &str) -> Result<u64, ToolError> {
    let index = out
        .columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| ToolError::failed(format!("the result has no column {name}")))?;
    let value = out
        .rows
        .first()
        .and_then(|r| r.get(index))
        .ok_or_else(|| ToolError::failed(format!("the result has no value for {name}")))?;
    value
        .as_u64()
        .or_else(|| value.as_i64().and_then(|v| u64::try_from(v).ok()))
        .or_else(|| value.as_str().and_then(|v| v.parse().ok()))
        .or_else(|| value.as_f64().filter(|v| *v >= 0.0).map(|v| v as u64))
        .ok_or_else(|| ToolError::failed(format!("{name} is not a count: {value}")))
}

pub fn not_built(model: &str) -> String {
    format!("could not read model '{model}' (has it been built? run `dbt build --select {model}`)")
}

pub async fn get_project(s: &Services, auth: &AuthContext, name: String) -> Result<ProjectDetail, ToolError> {
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
        findings: Summary::of(&loaded.findings).into(),
    })
}

pub async fn project_map(
    s: &Services,
    auth: &AuthContext,
    args: ProjectMapArgs,
) -> Result<ProjectMap, ToolError> {
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

/// What `dbt parse` needs for a resolved project: `None` when the directory has no `dbt_project.yml`
/// (a manifest-only project dbt cannot parse). The target directory is the project's own `target-path`,
/// and must lie inside the fence, since dbt writes there.
pub fn parse_command(
    binary: PathBuf,
    dir: &Path,
    fence: &Path,
    timeout: std::time::Duration,
) -> Result<Option<ParseCommand>, ToolError> {
    let config_path = dir.join("dbt_project.yml");
    if !config_path.is_file() {
        return Ok(None);
    }
    let contents = std::fs::read_to_string(&config_path)
        .map_err(|e| ToolError::failed(format!("{} cannot be read: {e}", config_path.display())))?;
    let file = ProjectFile {
        path: "dbt_project.yml".to_owned(),
        contents,
        modified: None,
    };
    let target = dir.join(ProjectConfig::parse(&file).0.target_path);
    // The target may not exist yet: check the nearest directory that does, and refuse `..` after it.
    let existing = target.ancestors().find(|a| a.exists()).unwrap_or(dir);
    let rest = target.strip_prefix(existing).unwrap_or(Path::new(""));
    let inside = std::fs::canonicalize(existing).is_ok_and(|real| real.starts_with(fence))
        && !rest.components().any(|c| matches!(c, Component::ParentDir));
    if !inside {
        return Err(ToolError::invalid(format!(
            "the target directory {} (target-path in dbt_project.yml) lies outside the project {}; dbt parse \
             was not run",
            target.display(),
            fence.display()
        )));
    }
    Ok(Some(ParseCommand {
        binary,
        project_dir: dir.to_path_buf(),
        profiles_dir: dir.join("profiles.yml").is_file().then(|| dir.to_path_buf()),
        target_path: target,
        log_path: dir.join("logs"),
        timeout,
    }))
}

/// Runs `dbt parse` on the project when the operator configured a dbt binary. A failed or timed-out parse
/// is reported, not an error; a binary that cannot be started is (the operator must fix the config).
pub async fn refresh_manifest(s: &Services, dir: &Path, fence: &Path) -> Result<DbtParseOut, ToolError> {
    let Some(binary) = s.settings.dbt_binary.clone() else {
        return Ok(DbtParseOut::not_run(
            "not_configured",
            "dbt parse was not run (no dbt binary is configured under [dbt] in the gateway config); the \
             artifacts were read as found."
                .to_owned(),
        ));
    };
    let timeout = s.settings.dbt_parse_timeout;
    let (d, f) = (dir.to_path_buf(), fence.to_path_buf());
    let Some(command) = blocking(move || parse_command(binary, &d, &f, timeout)).await? else {
        return Ok(DbtParseOut::not_run(
            "skipped",
            format!(
                "dbt parse was not run: {} has no dbt_project.yml; the artifacts were read as found.",
                dir.display()
            ),
        ));
    };
    let run = dbt_parse::run(&command)
        .await
        .map_err(|e| ToolError::failed(format!("dbt parse could not run: {e}")))?;
    tracing::info!(
        project_dir = %dir.display(),
        status = run.status.as_str(),
        exit_code = run.exit_code,
        elapsed_ms = run.duration.as_millis() as u64,
        "dbt parse"
    );
    Ok(DbtParseOut::from_run(run, timeout))
}

pub async fn validate(
    s: &Services,
    auth: &AuthContext,
    project_dir: String,
) -> Result<ValidationReport, ToolError> {
    let projects = projects(s, auth).await?;
    let roots = s.settings.dbt_project_roots.clone();
    let resolved =
        blocking(move || resolve_dir(&projects, &roots, &project_dir).map_err(ToolError::invalid)).await?;
    let parse = refresh_manifest(s, &resolved.dir, &resolved.fence).await?;
    let loaded = blocking(move || load(resolved.dir, &resolved.fence))
        .await
        .map_err(|mut e| {
            if parse.ran {
                e.message = format!("{} ({})", e.message, parse.render());
            }
            e
        })?;
    let name = loaded.analysis.project.name.clone();
    let text = render(
        &loaded.findings,
        Format::Text,
        &ReportOptions {
            project: name.clone(),
            path_prefix: String::new(),
            fail_on: Severity::Error,
        },
    );
    Ok(ValidationReport {
        project: name,
        project_dir: loaded.dir.display().to_string(),
        text: format!("{}\n\n{}", parse.render(), text.trim_end()),
        dbt_parse: parse,
        summary: Summary::of(&loaded.findings).into(),
        findings: loaded.findings.iter().map(FindingOut::from).collect(),
    })
}

pub async fn lineage(s: &Services, auth: &AuthContext, args: LineageArgs) -> Result<Lineage, ToolError> {
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
                    kind: n.kind.as_str().to_owned(),
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
        kind: node.kind.as_str().to_owned(),
        direction: match direction {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
            Direction::Both => "both",
        }
        .to_owned(),
        depth,
        upstream: side(true),
        downstream: side(false),
    })
}

pub fn parse_errors(output: &str) -> Result<ParsedErrors, ToolError> {
    if output.trim().is_empty() {
        return Err(ToolError::invalid(
            "error_output is empty: paste the output of the failing dbt command",
        ));
    }
    Ok(ParsedErrors {
        errors: sluice_dbt::dbt_error::parse_dbt_errors(output)
            .into_iter()
            .map(|e| ParsedError {
                error_type: e.error_type,
                resource_type: e.resource_type,
                node: e.node,
                path: e.path,
                line: e.line,
                message: e.message,
                category: e.category.to_owned(),
                suggested_fix: e.suggestion,
            })
            .collect(),
    })
}

/// What every verification tool does first: the connection's quoting and the projects bound to it.
pub async fn prepare(
    s: &Services,
    ctx: &CallContext,
    connection: &str,
) -> Result<(Quoting, Vec<(String, Loaded)>), ToolError> {
    let conn = s.connection(&ctx.auth, connection)?;
    let bound = bound(s, &ctx.auth, connection).await?;
    Ok((conn.dialect.quoting(), bound))
}

pub async fn check_model_schema(
    s: &Services,
    ctx: &CallContext,
    args: CheckSchemaArgs,
) -> Outcome<SchemaCheck> {
    let mut runner = Runner::new(s, ctx, &args.connection_name);
    let result = async {
        let (style, bound) = prepare(s, ctx, &args.connection_name).await?;
        let model = find_model(&bound, &args.connection_name, &args.model_name)?;
        let mut expected = verify::split_list(&args.yml_columns);
        if expected.is_empty() {
            expected = model.documented.clone();
        }
        if expected.is_empty() {
            return Err(ToolError::invalid(format!(
                "yml_columns is empty and model '{}' documents no columns in its YAML: give the expected \
                 columns, comma-separated",
                model.name
            )));
        }
        verify::check_columns("a column name in yml_columns", &expected)
            .map_err(|e| ToolError::invalid(e.to_string()))?;
        let probe = runner
            .run(&verify::probe_sql(&model.table, style), &not_built(&model.name))
            .await?;
        let actual: Vec<String> = probe.columns.iter().map(|c| c.name.clone()).collect();
        let cmp = verify::compare_columns(&expected, &actual);
        Ok(SchemaCheck {
            connection: args.connection_name.clone(),
            model: model.name,
            relation: model.table.to_string(),
            matches: cmp.is_exact(),
            expected,
            actual: probe
                .columns
                .iter()
                .map(|c| WarehouseColumn {
                    name: c.name.clone(),
                    type_name: c.type_name.clone(),
                })
                .collect(),
            matching: cmp.matching,
            missing: cmp.missing,
            extra: cmp.extra,
            case_mismatches: cmp
                .case_mismatches
                .into_iter()
                .map(|(expected, actual)| CaseMismatch { expected, actual })
                .collect(),
        })
    }
    .await;
    runner.finish(result)
}

pub async fn validate_model_output(
    s: &Services,
    ctx: &CallContext,
    args: ValidateOutputArgs,
) -> Outcome<OutputValidation> {
    let mut runner = Runner::new(s, ctx, &args.connection_name);
    let result = async {
        let (style, bound) = prepare(s, ctx, &args.connection_name).await?;
        let model = find_model(&bound, &args.connection_name, &args.model_name)?;
        let source_name = args.source_table.trim();
        let source = if source_name.is_empty() {
            None
        } else {
            Some(find_table(&bound, source_name)?)
        };
        let mut tables = vec![model.table.clone()];
        tables.extend(source.clone());
        let counts = runner
            .run(&verify::row_counts_sql(&tables, style), &not_built(&model.name))
            .await?;
        let row_count = count(&counts, "row_count_0")?;
        let source_row_count = match source {
            Some(_) => Some(count(&counts, "row_count_1")?),
            None => None,
        };
        let (ratio, verdict) = match source_row_count {
            Some(src) => {
                let (r, v) = verify::ratio(row_count, src);
                (r, Some(v))
            }
            None => (None, None),
        };
        let expected = (args.expected_row_count > 0).then_some(args.expected_row_count);
        let mut warnings = Vec::new();
        if row_count == 0 {
            warnings.push("the model has 0 rows".to_owned());
        }
        if let Some(v) = verdict.filter(|v| !matches!(v, verify::RatioVerdict::Ok)) {
            warnings.push(v.advice().to_owned());
        }
        if let Some(e) = expected.filter(|e| *e != row_count) {
            warnings.push(format!("expected {e} rows, found {row_count}"));
        }
        Ok(OutputValidation {
            connection: args.connection_name.clone(),
            model: model.name,
            relation: model.table.to_string(),
            row_count,
            source_table: source.as_ref().map(|_| source_name.to_owned()),
            source_relation: source.as_ref().map(ToString::to_string),
            source_row_count,
            ratio,
            verdict: verdict.map(verdict_name),
            expected_row_count: expected,
            expected_matches: expected.map(|e| e == row_count),
            warnings,
        })
    }
    .await;
    runner.finish(result)
}

pub async fn audit_model_sources(
    s: &Services,
    ctx: &CallContext,
    args: AuditSourcesArgs,
) -> Outcome<SourceAudit> {
    let mut runner = Runner::new(s, ctx, &args.connection_name);
    let result = async {
        let (style, bound) = prepare(s, ctx, &args.connection_name).await?;
        let model = find_model(&bound, &args.connection_name, &args.model_name)?;
        let names = verify::split_list(&args.source_tables);
        if names.is_empty() {
            return Err(ToolError::invalid(
                "source_tables is empty: give at least one upstream (model, seed, source_name.table or table), \
                 comma-separated",
            ));
        }
        let sources = names
            .iter()
            .map(|n| find_table(&bound, n))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tables = vec![model.table.clone()];
        tables.extend(sources.iter().cloned());
        let counts = runner
            .run(
                &verify::row_counts_sql(&tables, style),
                &format!("could not count the rows of '{}' or its upstreams", model.name),
            )
            .await?;
        let row_count = count(&counts, "row_count_0")?;
        let mut source_rows = Vec::new();
        for (i, (name, table)) in names.iter().zip(&sources).enumerate() {
            let rows = count(&counts, &format!("row_count_{}", i + 1))?;
            let (ratio, verdict) = verify::ratio(row_count, rows);
            source_rows.push(SourceRows {
                name: name.clone(),
                relation: table.to_string(),
                row_count: rows,
                ratio,
                verdict: verdict_name(verdict),
            });
        }
        let mut columns = Vec::new();
        if args.sample_nulls {
            let probe = runner
                .run(&verify::probe_sql(&model.table, style), &not_built(&model.name))
                .await?;
            let names: Vec<String> = probe.columns.iter().map(|c| c.name.clone()).collect();
            if !names.is_empty() {
                let profile = runner
                    .run(
                        &verify::column_profile_sql(&model.table, &names, style),
                        &format!("could not profile the columns of '{}'", model.name),
                    )
                    .await?;
                for (i, c) in probe.columns.iter().enumerate() {
                    let nulls = count(&profile, &format!("nulls_{i}"))?;
                    columns.push(ColumnProfile {
                        name: c.name.clone(),
                        type_name: c.type_name.clone(),
                        nulls,
                        null_fraction: if row_count == 0 {
                            0.0
                        } else {
                            nulls as f64 / row_count as f64
                        },
                        distinct: count(&profile, &format!("distinct_{i}"))?,
                    });
                }
            }
        }
        Ok(SourceAudit {
            connection: args.connection_name.clone(),
            model: model.name,
            relation: model.table.to_string(),
            row_count,
            sources: source_rows,
            columns,
        })
    }
    .await;
    runner.finish(result)
}

pub async fn analyze_grain(s: &Services, ctx: &CallContext, args: GrainArgs) -> Outcome<Grain> {
    let mut runner = Runner::new(s, ctx, &args.connection_name);
    let result = async {
        let (style, bound) = prepare(s, ctx, &args.connection_name).await?;
        let table = find_table(&bound, args.table_name.trim())?;
        let what = format!("could not read '{}' ({table})", args.table_name.trim());
        let mut keys = verify::split_list(&args.candidate_keys);
        verify::check_columns("a candidate key", &keys).map_err(|e| ToolError::invalid(e.to_string()))?;
        if keys.is_empty() {
            let probe = runner.run(&verify::probe_sql(&table, style), &what).await?;
            let names: Vec<String> = probe.columns.iter().map(|c| c.name.clone()).collect();
            keys = verify::default_grain_candidates(&names);
        }
        let profile = runner
            .run(&verify::column_profile_sql(&table, &keys, style), &what)
            .await?;
        let total_rows = count(&profile, "row_count")?;
        let mut candidates = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let distinct = count(&profile, &format!("distinct_{i}"))?;
            let nulls = count(&profile, &format!("nulls_{i}"))?;
            candidates.push(KeyCheck {
                column: k.clone(),
                distinct,
                nulls,
                unique: nulls == 0 && distinct == total_rows,
                fan_out: (distinct > 0).then(|| total_rows as f64 / distinct as f64),
            });
        }
        Ok(Grain {
            connection: args.connection_name.clone(),
            table: args.table_name.trim().to_owned(),
            relation: table.to_string(),
            total_rows,
            grain: candidates.iter().find(|c| c.unique).map(|c| c.column.clone()),
            candidates,
        })
    }
    .await;
    runner.finish(result)
}

/// `dbt_model_skeleton`: the SQL of a new model from its YAML columns (pure; nothing is read or run).
pub fn skeleton(args: SkeletonArgs) -> Outcome<Skeleton> {
    let result = sluice_dbt::skeleton::sql_skeleton(&args.model_name, &args.yml_columns, &args.ref_tables)
        .map(|sql| Skeleton {
            model_name: args.model_name.clone(),
            sql,
        })
        .map_err(|e| ToolError::invalid(e.to_string()));
    ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn dbt_parse_writes_only_inside_the_project() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let project = base.join("p");
        let outside = base.join("outside");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let timeout = std::time::Duration::from_secs(1);
        let prepare = || parse_command(PathBuf::from("dbt"), &project, &project, timeout);
        // No dbt_project.yml: nothing dbt could parse.
        assert!(prepare().unwrap().is_none());
        std::fs::write(project.join("dbt_project.yml"), "name: p\n").unwrap();
        let c = prepare().unwrap().unwrap();
        assert_eq!(
            (c.target_path, c.log_path, c.profiles_dir),
            (project.join("target"), project.join("logs"), None)
        );
        std::fs::write(project.join("profiles.yml"), "p: {}\n").unwrap();
        std::fs::write(
            project.join("dbt_project.yml"),
            "name: p\ntarget-path: build/out\n",
        )
        .unwrap();
        let c = prepare().unwrap().unwrap();
        assert_eq!(
            (c.target_path, c.profiles_dir),
            (project.join("build/out"), Some(project.clone()))
        );
        std::os::unix::fs::symlink(&outside, project.join("linked")).unwrap();
        for target in [
            "../outside",
            "new/../../outside",
            "linked",
            "linked/deeper",
            "/tmp",
        ] {
            std::fs::write(
                project.join("dbt_project.yml"),
                format!("name: p\ntarget-path: '{target}'\n"),
            )
            .unwrap();
            let err = prepare().map(|_| ()).unwrap_err().message;
            assert!(
                err.contains("lies outside the project") && err.contains("dbt parse was not run"),
                "{target}: {err}"
            );
        }
    }
}
