//! The project's own files, parsed without dbt: `dbt_project.yml`, property YAML, model, snapshot, macro and
//! seed files. This is what finds models declared in YAML without SQL, stub SQL and unresolved `ref()` calls
//! when the manifest is stale or missing.
//!
//! Input is file contents plus metadata, read by the edge layer ([`crate::fs`]); nothing here touches the disk.

use std::sync::Arc;
use std::time::SystemTime;

use crate::finding::{Finding, Rule};
use crate::jinja::{self, JinjaFacts, MacroDef, RefCall, SourceCall};
use crate::yaml::{self, Yaml};

/// One file of the project, as read by the edge layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    /// Relative to the project directory, `/`-separated.
    pub path: String,
    /// UTF-8 text (seeds are listed with empty contents: only their names matter).
    pub contents: String,
    /// Last modification time, for the staleness check.
    pub modified: Option<SystemTime>,
}

/// The project directory's files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectFiles {
    /// `dbt_project.yml`, when present.
    pub dbt_project: Option<ProjectFile>,
    /// Every `.sql`, `.py`, `.yml`, `.yaml` and `.csv` file under the configured paths.
    pub files: Vec<ProjectFile>,
}

/// What a file is to dbt, by where it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// Under a model path.
    Model,
    /// Under a seed path.
    Seed,
    /// Under a snapshot path.
    Snapshot,
    /// Under a macro path.
    Macro,
    /// Under a test path (singular tests).
    Test,
    /// Under an analysis path.
    Analysis,
    /// Elsewhere.
    Other,
}

/// The parts of `dbt_project.yml` the scanner needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectConfig {
    /// `name:`.
    pub name: Option<String>,
    /// `model-paths` (default `models`).
    pub model_paths: Vec<String>,
    /// `seed-paths` (default `seeds`).
    pub seed_paths: Vec<String>,
    /// `snapshot-paths` (default `snapshots`).
    pub snapshot_paths: Vec<String>,
    /// `macro-paths` (default `macros`).
    pub macro_paths: Vec<String>,
    /// `test-paths` (default `tests`).
    pub test_paths: Vec<String>,
    /// `analysis-paths` (default `analyses`).
    pub analysis_paths: Vec<String>,
    /// `target-path` (default `target`).
    pub target_path: String,
    /// The `models:` block, kept to resolve directory-level `+materialized` and `+enabled`.
    models_block: Option<Yaml>,
}

impl Default for ProjectConfig {
    fn default() -> Self {
        ProjectConfig {
            name: None,
            model_paths: vec!["models".into()],
            seed_paths: vec!["seeds".into()],
            snapshot_paths: vec!["snapshots".into()],
            macro_paths: vec!["macros".into()],
            test_paths: vec!["tests".into()],
            analysis_paths: vec!["analyses".into()],
            target_path: "target".into(),
            models_block: None,
        }
    }
}

impl ProjectConfig {
    /// Parses `dbt_project.yml`; a broken file gives the defaults and a finding.
    pub fn parse(file: &ProjectFile) -> (ProjectConfig, Vec<Finding>) {
        let mut config = ProjectConfig::default();
        let root = match yaml::parse(&file.contents) {
            Ok(Some(root)) => root,
            Ok(None) => return (config, Vec::new()),
            Err(e) => {
                let finding = Finding::new(
                    Rule::YamlInvalid,
                    format!("{} cannot be parsed: {}", file.path, e.message),
                )
                .at(&file.path, Some(e.line));
                return (config, vec![finding]);
            }
        };
        config.name = root.get_str("name").map(str::to_owned);
        let paths = |key: &str, default: &mut Vec<String>| {
            if let Some(list) = root.get(key).map(Yaml::string_list).filter(|l| !l.is_empty()) {
                *default = list.into_iter().map(|p| normalize(&p)).collect();
            }
        };
        paths("model-paths", &mut config.model_paths);
        paths("seed-paths", &mut config.seed_paths);
        paths("snapshot-paths", &mut config.snapshot_paths);
        paths("macro-paths", &mut config.macro_paths);
        paths("test-paths", &mut config.test_paths);
        paths("analysis-paths", &mut config.analysis_paths);
        if let Some(target) = root.get_str("target-path") {
            config.target_path = normalize(target);
        }
        config.models_block = root.get("models").cloned();
        (config, Vec::new())
    }

    /// Every directory the scanner reads, for the edge layer to walk.
    pub fn scan_roots(&self) -> Vec<&str> {
        let mut roots: Vec<&str> = [
            &self.model_paths,
            &self.seed_paths,
            &self.snapshot_paths,
            &self.macro_paths,
            &self.test_paths,
            &self.analysis_paths,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
        roots.sort_unstable();
        roots.dedup();
        roots
    }

    /// What `path` is, by the configured directories.
    pub fn role(&self, path: &str) -> FileRole {
        let under = |roots: &[String]| {
            roots
                .iter()
                .any(|r| r.is_empty() || path.starts_with(&format!("{r}/")))
        };
        if under(&self.model_paths) {
            FileRole::Model
        } else if under(&self.snapshot_paths) {
            FileRole::Snapshot
        } else if under(&self.seed_paths) {
            FileRole::Seed
        } else if under(&self.macro_paths) {
            FileRole::Macro
        } else if under(&self.test_paths) {
            FileRole::Test
        } else if under(&self.analysis_paths) {
            FileRole::Analysis
        } else {
            FileRole::Other
        }
    }

    /// Directory-level config for a model file from the `models:` block: the deepest `+materialized` and
    /// `+enabled` on the path `<project>/<dirs...>/<model>` win, as in dbt.
    pub fn dir_config(&self, path: &str) -> (Option<String>, Option<bool>) {
        let (mut materialized, mut enabled) = (None, None);
        let (Some(block), Some(name)) = (&self.models_block, &self.name) else {
            return (None, None);
        };
        let relative = self
            .model_paths
            .iter()
            .find_map(|r| path.strip_prefix(&format!("{r}/")))
            .unwrap_or(path);
        let stem = relative.rsplit_once('.').map_or(relative, |(s, _)| s);
        let mut node = block.get(name);
        let mut segments = stem.split('/');
        while let Some(level) = node {
            for key in ["materialized", "+materialized"] {
                if let Some(m) = level.get_str(key) {
                    materialized = Some(m.to_owned());
                }
            }
            for key in ["enabled", "+enabled"] {
                if let Some(e) = level.get_str(key) {
                    enabled = Some(!e.eq_ignore_ascii_case("false"));
                }
            }
            node = segments.next().and_then(|s| level.get(s));
        }
        (materialized, enabled)
    }
}

fn normalize(path: &str) -> String {
    path.trim_start_matches("./").trim_end_matches('/').to_owned()
}

/// The name dbt gives the node defined by a file: its stem.
pub(crate) fn file_stem(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rsplit_once('.').map_or(file, |(stem, _)| stem)
}

/// A model, seed or snapshot file.
#[derive(Debug, Clone)]
pub struct SqlFile {
    /// The node's name.
    pub name: String,
    /// Relative path.
    pub path: String,
    /// The file's text.
    pub contents: String,
    /// What its Jinja says (shared with the node built from it, so the checks do not scan it again).
    pub facts: Arc<JinjaFacts>,
    /// Directory-level materialization from `dbt_project.yml`.
    pub dir_materialized: Option<String>,
    /// Whether config disables it.
    pub disabled: bool,
    /// Modification time.
    pub modified: Option<SystemTime>,
}

/// A column entry in a property file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YmlColumn {
    /// The column's name.
    pub name: String,
    /// Its description (empty when absent).
    pub description: String,
    /// `data_type:`.
    pub data_type: Option<String>,
    /// Names of the generic tests on it (`unique`, `not_null`, `accepted_values`...).
    pub tests: Vec<String>,
    /// Whether a `primary_key` constraint is declared on it.
    pub primary_key: bool,
    /// 1-based line.
    pub line: u32,
}

/// Which kind of node a property entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YmlKind {
    /// `models:`.
    Model,
    /// `seeds:`.
    Seed,
    /// `snapshots:`.
    Snapshot,
}

/// A model, seed or snapshot entry in a property file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YmlNode {
    /// `models:`, `seeds:` or `snapshots:`.
    pub kind: YmlKind,
    /// The node's name.
    pub name: String,
    /// The YAML file.
    pub path: String,
    /// 1-based line of `- name:`.
    pub line: u32,
    /// Its description (empty when absent).
    pub description: String,
    /// Its columns.
    pub columns: Vec<YmlColumn>,
    /// Model-level tests, by name; `unique_combination_of_columns` carries its columns.
    pub tests: Vec<(String, Vec<String>)>,
    /// `config: materialized:`.
    pub materialized: Option<String>,
    /// `config: unique_key:`.
    pub unique_key: Option<Vec<String>>,
    /// `config: incremental_strategy:`.
    pub incremental_strategy: Option<String>,
    /// `config: enabled:`.
    pub enabled: Option<bool>,
    /// Columns of a model-level `primary_key` constraint.
    pub primary_key: Vec<String>,
}

/// A table of a declared source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YmlSourceTable {
    /// `source(_, name)`.
    pub name: String,
    /// The warehouse table, when it differs.
    pub identifier: Option<String>,
    /// Description.
    pub description: String,
    /// Documented columns.
    pub columns: Vec<YmlColumn>,
    /// 1-based line.
    pub line: u32,
}

/// A `sources:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YmlSource {
    /// `source(name, _)`.
    pub name: String,
    /// Schema (defaults to the name in dbt).
    pub schema: Option<String>,
    /// Database.
    pub database: Option<String>,
    /// Description.
    pub description: String,
    /// The YAML file.
    pub path: String,
    /// 1-based line.
    pub line: u32,
    /// Its tables.
    pub tables: Vec<YmlSourceTable>,
}

/// An `exposures:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YmlExposure {
    /// Its name.
    pub name: String,
    /// `dashboard`, `application`...
    pub kind: String,
    /// Description.
    pub description: String,
    /// The YAML file.
    pub path: String,
    /// 1-based line.
    pub line: u32,
    /// `ref()` entries of `depends_on`.
    pub refs: Vec<RefCall>,
    /// `source()` entries of `depends_on`.
    pub sources: Vec<SourceCall>,
}

/// A macro defined under a macro path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMacro {
    /// The definition.
    pub def: MacroDef,
    /// The file.
    pub path: String,
}

/// A singular test or analysis: only its references matter.
#[derive(Debug, Clone)]
pub struct OtherSql {
    /// Test or analysis.
    pub role: FileRole,
    /// The node's name.
    pub name: String,
    /// The file.
    pub path: String,
    /// Its `ref()` calls.
    pub refs: Vec<RefCall>,
    /// Its `source()` calls.
    pub sources: Vec<SourceCall>,
}

/// Everything read from the project's files.
#[derive(Debug, Clone, Default)]
pub struct FileScan {
    /// The parsed `dbt_project.yml`.
    pub config: ProjectConfig,
    /// Model files (`.sql` and `.py`).
    pub models: Vec<SqlFile>,
    /// Snapshot blocks (one file may hold several).
    pub snapshots: Vec<SqlFile>,
    /// Seed files.
    pub seeds: Vec<ProjectFile>,
    /// Property entries for models, seeds and snapshots.
    pub yml_nodes: Vec<YmlNode>,
    /// Declared sources.
    pub sources: Vec<YmlSource>,
    /// Declared exposures.
    pub exposures: Vec<YmlExposure>,
    /// Macro definitions.
    pub macros: Vec<FileMacro>,
    /// Singular tests and analyses.
    pub other_sql: Vec<OtherSql>,
    /// The newest file and its modification time, for the staleness check.
    pub newest: Option<(String, SystemTime)>,
}

/// Reads the project's files. Broken YAML is a finding; the rest of the project is still read.
pub fn scan(files: &ProjectFiles) -> (FileScan, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut out = FileScan::default();
    if let Some(project) = &files.dbt_project {
        let (config, config_findings) = ProjectConfig::parse(project);
        out.config = config;
        findings.extend(config_findings);
        note_newest(&mut out.newest, project);
    }
    for file in &files.files {
        note_newest(&mut out.newest, file);
        let role = out.config.role(&file.path);
        let ext = file
            .path
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match (role, ext.as_str()) {
            (_, "yml" | "yaml") if role != FileRole::Other => scan_yaml(file, &mut out, &mut findings),
            (FileRole::Model, "sql" | "py") => {
                let facts = Arc::new(if ext == "sql" {
                    jinja::scan(&file.contents)
                } else {
                    JinjaFacts::default()
                });
                let (dir_materialized, dir_enabled) = out.config.dir_config(&file.path);
                let disabled = facts.config.enabled == Some(false) || dir_enabled == Some(false);
                out.models.push(SqlFile {
                    name: file_stem(&file.path).to_owned(),
                    path: file.path.clone(),
                    contents: file.contents.clone(),
                    facts,
                    dir_materialized,
                    disabled,
                    modified: file.modified,
                });
            }
            (FileRole::Snapshot, "sql") => {
                let facts = Arc::new(jinja::scan(&file.contents));
                for (name, _line) in &facts.snapshots {
                    out.snapshots.push(SqlFile {
                        name: name.clone(),
                        path: file.path.clone(),
                        contents: file.contents.clone(),
                        facts: Arc::clone(&facts),
                        dir_materialized: Some("snapshot".into()),
                        disabled: facts.config.enabled == Some(false),
                        modified: file.modified,
                    });
                }
            }
            (FileRole::Seed, "csv") => out.seeds.push(file.clone()),
            (FileRole::Macro, "sql") => {
                out.macros
                    .extend(
                        jinja::macro_definitions(&file.contents)
                            .into_iter()
                            .map(|def| FileMacro {
                                def,
                                path: file.path.clone(),
                            }),
                    );
            }
            (FileRole::Test | FileRole::Analysis, "sql") => {
                let facts = jinja::scan(&file.contents);
                out.other_sql.push(OtherSql {
                    role,
                    name: file_stem(&file.path).to_owned(),
                    path: file.path.clone(),
                    refs: facts.refs,
                    sources: facts.sources,
                });
            }
            _ => {}
        }
    }
    (out, findings)
}

fn note_newest(newest: &mut Option<(String, SystemTime)>, file: &ProjectFile) {
    if let Some(modified) = file.modified
        && newest.as_ref().is_none_or(|(_, t)| modified > *t)
    {
        *newest = Some((file.path.clone(), modified));
    }
}

fn scan_yaml(file: &ProjectFile, out: &mut FileScan, findings: &mut Vec<Finding>) {
    let root = match yaml::parse(&file.contents) {
        Ok(Some(root)) => root,
        Ok(None) => return,
        Err(e) => {
            findings.push(
                Finding::new(
                    Rule::YamlInvalid,
                    format!("{} cannot be parsed: {}", file.path, e.message),
                )
                .at(&file.path, Some(e.line)),
            );
            return;
        }
    };
    for (key, kind) in [
        ("models", YmlKind::Model),
        ("seeds", YmlKind::Seed),
        ("snapshots", YmlKind::Snapshot),
    ] {
        for entry in root.get(key).map(Yaml::items).unwrap_or_default() {
            if let Some(node) = yml_node(entry, kind, &file.path) {
                out.yml_nodes.push(node);
            }
        }
    }
    for entry in root.get("sources").map(Yaml::items).unwrap_or_default() {
        let Some(name) = entry.get_str("name") else {
            continue;
        };
        let tables = entry
            .get("tables")
            .map(Yaml::items)
            .unwrap_or_default()
            .iter()
            .filter_map(|t| {
                Some(YmlSourceTable {
                    name: t.get_str("name")?.to_owned(),
                    identifier: t.get_str("identifier").map(str::to_owned),
                    description: text(t, "description"),
                    columns: columns(t),
                    line: t.get("name").map_or(t.line, |n| n.line),
                })
            })
            .collect();
        out.sources.push(YmlSource {
            name: name.to_owned(),
            schema: entry.get_str("schema").map(str::to_owned),
            database: entry.get_str("database").map(str::to_owned),
            description: text(entry, "description"),
            path: file.path.clone(),
            line: entry.get("name").map_or(entry.line, |n| n.line),
            tables,
        });
    }
    for entry in root.get("exposures").map(Yaml::items).unwrap_or_default() {
        let Some(name) = entry.get_str("name") else {
            continue;
        };
        let mut refs = Vec::new();
        let mut sources = Vec::new();
        for dep in entry.get("depends_on").map(Yaml::items).unwrap_or_default() {
            let Some(call) = dep.as_str() else { continue };
            let facts = jinja::scan(&format!("{{{{ {call} }}}}"));
            refs.extend(facts.refs.into_iter().map(|r| RefCall { line: dep.line, ..r }));
            sources.extend(
                facts
                    .sources
                    .into_iter()
                    .map(|s| SourceCall { line: dep.line, ..s }),
            );
        }
        out.exposures.push(YmlExposure {
            name: name.to_owned(),
            kind: entry.get_str("type").unwrap_or_default().to_owned(),
            description: text(entry, "description"),
            path: file.path.clone(),
            line: entry.get("name").map_or(entry.line, |n| n.line),
            refs,
            sources,
        });
    }
}

fn text(node: &Yaml, key: &str) -> String {
    node.get_str(key).map(str::trim).unwrap_or_default().to_owned()
}

fn yml_node(entry: &Yaml, kind: YmlKind, path: &str) -> Option<YmlNode> {
    let name = entry.get("name")?;
    let config = entry.get("config");
    let config_str = |key: &str| config.and_then(|c| c.get_str(key)).map(str::to_owned);
    let primary_key = entry
        .get("constraints")
        .map(Yaml::items)
        .unwrap_or_default()
        .iter()
        .filter(|c| c.get_str("type") == Some("primary_key"))
        .flat_map(|c| c.get("columns").map(Yaml::string_list).unwrap_or_default())
        .collect();
    Some(YmlNode {
        kind,
        name: name.as_str()?.to_owned(),
        path: path.to_owned(),
        line: name.line,
        description: text(entry, "description"),
        columns: columns(entry),
        tests: tests(entry),
        materialized: config_str("materialized"),
        unique_key: config.and_then(|c| c.get("unique_key")).map(Yaml::string_list),
        incremental_strategy: config_str("incremental_strategy"),
        enabled: config_str("enabled").map(|e| !e.eq_ignore_ascii_case("false")),
        primary_key,
    })
}

fn columns(entry: &Yaml) -> Vec<YmlColumn> {
    entry
        .get("columns")
        .map(Yaml::items)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            let name = c.get("name")?;
            Some(YmlColumn {
                name: name.as_str()?.to_owned(),
                description: text(c, "description"),
                data_type: c.get_str("data_type").map(str::to_owned),
                tests: tests(c).into_iter().map(|(t, _)| t).collect(),
                primary_key: c
                    .get("constraints")
                    .map(Yaml::items)
                    .unwrap_or_default()
                    .iter()
                    .any(|k| k.get_str("type") == Some("primary_key")),
                line: name.line,
            })
        })
        .collect()
}

/// Test names under `data_tests:` (dbt 1.8+) and `tests:`; each with the columns of a
/// `unique_combination_of_columns`.
fn tests(entry: &Yaml) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for key in ["data_tests", "tests"] {
        for test in entry.get(key).map(Yaml::items).unwrap_or_default() {
            if let Some(name) = test.as_str() {
                out.push((name.to_owned(), Vec::new()));
            } else if let Some((name, args)) = test.entries().first() {
                // `- name: custom_name\n  test_name: unique` names the generic test explicitly.
                let name = test.get_str("test_name").unwrap_or(name);
                let args = args.get("arguments").unwrap_or(args);
                let combination = args
                    .get("combination_of_columns")
                    .map(Yaml::string_list)
                    .unwrap_or_default();
                out.push((name.to_owned(), combination));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
