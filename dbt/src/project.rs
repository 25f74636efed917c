//! The project graph: every node from the manifest and the project files, merged, with lineage edges.
//!
//! The manifest is authoritative for what dbt last parsed (resolved configuration, generated tests, the
//! edges macros add); the files are fresher (models written since, YAML entries dbt drops, unresolvable
//! references dbt would refuse to parse). Where both know a model, the file's SQL and YAML win and the edges
//! of both are kept.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use crate::artifacts::manifest::{
    Manifest, ManifestColumn, ManifestMacro, ManifestNode, SUPPORTED_SCHEMA_VERSIONS,
};
use crate::files::{FileScan, SqlFile, YmlColumn, YmlKind, YmlNode};
use crate::finding::{Finding, Location, Rule};
use crate::jinja::{JinjaFacts, RefCall, SourceCall};
use crate::sql;

mod build;

pub use build::ManifestGraph;

/// Index of a node in [`Project::nodes`].
pub type NodeId = usize;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A model.
    Model,
    /// A seed (CSV).
    Seed,
    /// A snapshot.
    Snapshot,
    /// A declared source table.
    Source,
    /// A data test.
    Test,
    /// An exposure.
    Exposure,
    /// An analysis.
    Analysis,
}

impl NodeKind {
    /// dbt's `resource_type` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Model => "model",
            NodeKind::Seed => "seed",
            NodeKind::Snapshot => "snapshot",
            NodeKind::Source => "source",
            NodeKind::Test => "test",
            NodeKind::Exposure => "exposure",
            NodeKind::Analysis => "analysis",
        }
    }

    fn from_resource_type(resource_type: &str) -> Option<Self> {
        Some(match resource_type {
            "model" => NodeKind::Model,
            "seed" => NodeKind::Seed,
            "snapshot" => NodeKind::Snapshot,
            "test" => NodeKind::Test,
            "analysis" => NodeKind::Analysis,
            _ => return None,
        })
    }

    /// Whether `ref()` can name it.
    pub fn is_refable(self) -> bool {
        matches!(self, NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot)
    }
}

/// Where a model stands, in SignalPilot's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// SQL exists and looks finished, and YAML describes it.
    Complete,
    /// SQL exists but is unfinished.
    Stub,
    /// YAML (or a stale manifest) declares it, but there is no SQL.
    Missing,
    /// SQL exists and looks finished, but nothing describes it.
    Orphan,
}

impl ModelStatus {
    /// The icon the map uses.
    pub fn icon(self) -> &'static str {
        match self {
            ModelStatus::Complete => "✓",
            ModelStatus::Stub => "⚠",
            ModelStatus::Missing => "✗",
            ModelStatus::Orphan => "?",
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Complete => "complete",
            ModelStatus::Stub => "stub",
            ModelStatus::Missing => "missing",
            ModelStatus::Orphan => "orphan",
        }
    }

    /// Whether someone has to write or finish the model.
    pub fn is_actionable(self) -> bool {
        matches!(self, ModelStatus::Stub | ModelStatus::Missing)
    }
}

/// A documented column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Column {
    /// As documented.
    pub name: String,
    /// Empty when undocumented.
    pub description: String,
    /// Declared type.
    pub data_type: Option<String>,
    /// Generic tests on the column (`unique`, `not_null`...).
    pub tests: Vec<String>,
    /// Whether a `primary_key` constraint is declared on it.
    pub primary_key: bool,
    /// Line of its YAML entry, when the files were read.
    pub line: Option<u32>,
}

/// A test that checks a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AttachedTest {
    /// `unique`, `not_null`, `dbt_utils.unique_combination_of_columns`, or a singular test's name.
    pub name: String,
    /// The column, for column tests.
    pub column: Option<String>,
    /// Columns of `unique_combination_of_columns`.
    pub combination: Vec<String>,
    /// For `relationships` tests read from the manifest: the node and column the tested column references.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub references: Option<TestReference>,
}

/// What a `relationships` test says a column references.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TestReference {
    /// The referenced node's unique id (a model, seed, snapshot or source).
    pub node: String,
    /// The referenced column (the test's `field`).
    pub field: String,
}

/// The relation a node is built into (or a source reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Relation {
    /// Database.
    pub database: Option<String>,
    /// Schema.
    pub schema: Option<String>,
    /// Table or view name.
    pub identifier: String,
    /// dbt's fully quoted name, such as `"db"."main"."orders"`.
    pub relation_name: Option<String>,
}

/// What a test node tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TestInfo {
    /// Generic test name, empty for singular tests.
    pub test_name: String,
    /// The tested column.
    pub column: Option<String>,
    /// The tested node's unique id.
    pub attached: Option<String>,
    /// `ERROR` or `warn`.
    pub severity: Option<String>,
}

/// One node of the project.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// dbt's unique id; for nodes only the files know, built the way dbt builds it.
    pub unique_id: String,
    /// What it is.
    pub kind: NodeKind,
    /// Its name (for sources, the table's name).
    pub name: String,
    /// Its package (project).
    pub package: String,
    /// The file that defines it (SQL, CSV, or YAML for sources and exposures).
    pub path: Option<String>,
    /// The YAML entry that describes it.
    pub yml: Option<Location>,
    /// Description.
    pub description: String,
    /// Documented columns.
    pub columns: Vec<Column>,
    /// Columns of the built relation, from catalog.json: name and type.
    pub catalog_columns: Option<Vec<(String, String)>>,
    /// Tests that check it.
    pub tests: Vec<AttachedTest>,
    /// `view`, `table`, `incremental`, `ephemeral`...
    pub materialized: Option<String>,
    /// For incremental models.
    pub incremental_strategy: Option<String>,
    /// `unique_key` config.
    pub unique_key: Vec<String>,
    /// Columns of a model-level `primary_key` constraint.
    pub primary_key_constraint: Vec<String>,
    /// Where it is built (from the manifest).
    pub relation: Option<Relation>,
    /// For sources: the source's name.
    pub source_name: Option<String>,
    /// For tests.
    pub test: Option<TestInfo>,
    /// For models.
    pub status: Option<ModelStatus>,
    /// Why the model is a stub.
    pub stub_reason: Option<&'static str>,
    /// The SQL as written.
    #[serde(skip)]
    pub sql: Option<String>,
    /// The SQL dbt compiled (manifest `compiled_code`), for column lineage.
    #[serde(skip)]
    pub compiled_sql: Option<String>,
    /// What the Jinja of `sql` says, while the analysis runs: scanned once with the project files (or when
    /// the graph is finished) and read by the stub and SQL checks, then dropped so the kept project is smaller.
    #[serde(skip)]
    pub(crate) jinja: Option<Arc<JinjaFacts>>,
    /// `ref()` calls read from its file.
    #[serde(skip)]
    pub ref_calls: Vec<RefCall>,
    /// `source()` calls read from its file.
    #[serde(skip)]
    pub source_calls: Vec<SourceCall>,
    /// Whether the manifest has it.
    pub in_manifest: bool,
    /// Whether its file was found in the project directory (always false when only the manifest was read).
    pub on_disk: bool,
    /// Exposure type, such as `dashboard`.
    pub exposure_type: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    #[serde(skip)]
    manifest_parents: Vec<String>,
}

impl Node {
    fn new(unique_id: String, kind: NodeKind, name: String, package: String) -> Self {
        Node {
            unique_id,
            kind,
            name,
            package,
            path: None,
            yml: None,
            description: String::new(),
            columns: Vec::new(),
            catalog_columns: None,
            tests: Vec::new(),
            materialized: None,
            incremental_strategy: None,
            unique_key: Vec::new(),
            primary_key_constraint: Vec::new(),
            relation: None,
            source_name: None,
            test: None,
            status: None,
            stub_reason: None,
            sql: None,
            compiled_sql: None,
            jinja: None,
            ref_calls: Vec::new(),
            source_calls: Vec::new(),
            in_manifest: false,
            on_disk: false,
            exposure_type: None,
            tags: Vec::new(),
            manifest_parents: Vec::new(),
        }
    }

    /// `source_name.table` for sources, the name otherwise.
    pub fn display_name(&self) -> String {
        match &self.source_name {
            Some(source) => format!("{source}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The directory that groups it in the map: of its SQL file, else of its YAML.
    pub fn directory(&self) -> String {
        let path = self
            .path
            .as_deref()
            .or(self.yml.as_ref().map(|l| l.path.as_str()))
            .unwrap_or("");
        path.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned()
    }

    /// Whether a YAML entry describes it (from the files, or the manifest's patch).
    pub fn has_yml(&self) -> bool {
        self.yml.is_some()
    }

    /// The primary key: a model-level constraint, a `unique_combination_of_columns`, a column with both
    /// `unique` and `not_null` tests, or a column `primary_key` constraint.
    pub fn primary_key(&self) -> Option<Vec<String>> {
        if !self.primary_key_constraint.is_empty() {
            return Some(self.primary_key_constraint.clone());
        }
        if let Some(t) = self.tests.iter().find(|t| {
            t.name.rsplit('.').next() == Some("unique_combination_of_columns") && !t.combination.is_empty()
        }) {
            return Some(t.combination.clone());
        }
        let has = |column: &str, test: &str| {
            self.tests.iter().any(|t| {
                t.name.rsplit('.').next() == Some(test)
                    && t.column
                        .as_deref()
                        .is_some_and(|c| c.eq_ignore_ascii_case(column))
            })
        };
        if let Some(column) = self.columns.iter().find(|c| c.primary_key) {
            return Some(vec![column.name.clone()]);
        }
        self.tests
            .iter()
            .filter_map(|t| t.column.as_deref())
            .find(|c| has(c, "unique") && has(c, "not_null"))
            .map(|c| vec![c.to_owned()])
    }
}

/// A `ref()` or `source()` that names nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    /// The node whose file makes the call.
    pub node: NodeId,
    /// `ref('x')` or `source('a', 'b')`, as a reader would write it.
    pub call: String,
    /// Whether it is a source call.
    pub is_source: bool,
    /// The name a person would search for: the model, or `source.table`.
    pub target: String,
    /// Where.
    pub location: Option<Location>,
}

/// A macro of the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MacroInfo {
    /// Name.
    pub name: String,
    /// Argument list as written.
    pub signature: Option<String>,
    /// File.
    pub path: String,
    /// Line of `{% macro %}`, when read from the file.
    pub line: Option<u32>,
    /// Description from YAML (manifest).
    pub description: String,
}

/// Which way to walk lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Towards sources.
    Upstream,
    /// Towards exposures.
    Downstream,
    /// Both.
    Both,
}

/// A node reached by a lineage walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineageStep {
    /// The node.
    pub node: NodeId,
    /// How many edges from the start (1 = direct).
    pub depth: usize,
    /// Upstream or downstream of the start.
    pub upstream: bool,
}

/// Where the project's information came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// dbt-core version from the manifest.
    pub dbt_version: Option<String>,
    /// Manifest schema version.
    pub manifest_schema: Option<u32>,
    /// The adapter, such as `duckdb`.
    pub adapter: Option<String>,
    /// Whether the project files were read.
    pub files: bool,
}

/// The merged project graph.
#[derive(Debug, Clone, Default)]
pub struct Project {
    /// The root project's name.
    pub name: String,
    /// Every node, models first in no particular order; use the accessors for lookups.
    pub nodes: Vec<Node>,
    /// The root project's macros, by name.
    pub macros: Vec<MacroInfo>,
    /// Calls that name nothing.
    pub unresolved: Vec<Unresolved>,
    /// What the graph was built from.
    pub provenance: Provenance,
    parents: Vec<Vec<NodeId>>,
    children: Vec<Vec<NodeId>>,
    by_id: HashMap<String, NodeId>,
    /// Every node by name (a source by its table's name): lookups by name stay O(1) on 10,000-model projects.
    by_name: HashMap<String, Vec<NodeId>>,
}

impl Project {
    /// The node with this index.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// The index of the node with this unique id.
    pub fn id(&self, unique_id: &str) -> Option<NodeId> {
        self.by_id.get(unique_id).copied()
    }

    /// Direct upstream nodes.
    pub fn parents(&self, id: NodeId) -> &[NodeId] {
        &self.parents[id]
    }

    /// Direct downstream nodes.
    pub fn children(&self, id: NodeId) -> &[NodeId] {
        &self.children[id]
    }

    /// Nodes of one kind, with their ids, sorted by name.
    pub fn of_kind(&self, kind: NodeKind) -> Vec<(NodeId, &Node)> {
        let mut out: Vec<_> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.kind == kind)
            .collect();
        out.sort_by(|a, b| {
            a.1.display_name()
                .cmp(&b.1.display_name())
                .then(a.1.package.cmp(&b.1.package))
        });
        out
    }

    /// Finds a node by unique id, by `ref()` name (root package first), or by `source_name.table`.
    pub fn find(&self, name: &str) -> Option<NodeId> {
        if let Some(id) = self.id(name) {
            return Some(id);
        }
        self.resolve_ref(None, name).or_else(|| {
            let (source, table) = name.split_once('.')?;
            self.resolve_source(source, table)
        })
    }

    /// What `ref(package, name)` resolves to: the root project's node first, as dbt does.
    pub fn resolve_ref(&self, package: Option<&str>, name: &str) -> Option<NodeId> {
        let mut candidates = self
            .named(name)
            .map(|id| (id, &self.nodes[id]))
            .filter(|(_, n)| n.kind.is_refable() && package.is_none_or(|p| n.package == p));
        let first = candidates.next()?;
        if first.1.package == self.name {
            return Some(first.0);
        }
        Some(
            candidates
                .find(|(_, n)| n.package == self.name)
                .map_or(first.0, |(id, _)| id),
        )
    }

    /// What `source(source, table)` resolves to.
    pub fn resolve_source(&self, source: &str, table: &str) -> Option<NodeId> {
        self.named(table).find(|id| {
            let n = &self.nodes[*id];
            n.kind == NodeKind::Source && n.source_name.as_deref() == Some(source)
        })
    }

    /// The nodes with this name, in the order they were added.
    fn named(&self, name: &str) -> impl Iterator<Item = NodeId> + '_ {
        self.by_name.get(name).into_iter().flatten().copied()
    }

    /// Every node upstream and/or downstream of `start`, up to `depth` edges (all when `None`), nearest first.
    /// Tests are left out unless `include_tests`.
    pub fn lineage(
        &self,
        start: NodeId,
        direction: Direction,
        depth: Option<usize>,
        include_tests: bool,
    ) -> Vec<LineageStep> {
        let mut out = Vec::new();
        let walks: &[bool] = match direction {
            Direction::Upstream => &[true],
            Direction::Downstream => &[false],
            Direction::Both => &[true, false],
        };
        for &upstream in walks {
            let mut seen = HashSet::from([start]);
            let mut queue = VecDeque::from([(start, 0usize)]);
            let mut steps = Vec::new();
            while let Some((id, d)) = queue.pop_front() {
                if depth.is_some_and(|max| d >= max) {
                    continue;
                }
                let next = if upstream {
                    self.parents(id)
                } else {
                    self.children(id)
                };
                for &n in next {
                    if (!include_tests && self.nodes[n].kind == NodeKind::Test) || !seen.insert(n) {
                        continue;
                    }
                    steps.push(LineageStep {
                        node: n,
                        depth: d + 1,
                        upstream,
                    });
                    queue.push_back((n, d + 1));
                }
            }
            steps.sort_by(|a, b| {
                a.depth.cmp(&b.depth).then_with(|| {
                    self.nodes[a.node]
                        .display_name()
                        .cmp(&self.nodes[b.node].display_name())
                })
            });
            out.extend(steps);
        }
        out
    }

    /// Column names that some test or constraint proves unique, lowercased: evidence of a total order.
    pub fn unique_columns(&self) -> HashSet<String> {
        let mut out = HashSet::new();
        for node in &self.nodes {
            for t in &node.tests {
                if t.name.rsplit('.').next() == Some("unique")
                    && let Some(c) = &t.column
                {
                    out.insert(c.to_ascii_lowercase());
                }
            }
            for c in node.columns.iter().filter(|c| c.primary_key) {
                out.insert(c.name.to_ascii_lowercase());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{ProjectFile, ProjectFiles, scan};
    use pretty_assertions::assert_eq;

    fn files(list: &[(&str, &str)]) -> FileScan {
        let files = ProjectFiles {
            dbt_project: Some(ProjectFile {
                path: "dbt_project.yml".into(),
                contents: "name: p\n".into(),
                modified: None,
            }),
            files: list
                .iter()
                .map(|(p, c)| ProjectFile {
                    path: (*p).into(),
                    contents: (*c).into(),
                    modified: None,
                })
                .collect(),
        };
        scan(&files).0
    }

    fn statuses(project: &Project) -> Vec<(String, ModelStatus)> {
        project
            .of_kind(NodeKind::Model)
            .into_iter()
            .filter_map(|(_, n)| Some((n.name.clone(), n.status?)))
            .collect()
    }

    #[test]
    fn files_only_statuses_edges_and_unresolved() {
        let scan = files(&[
            ("models/a.sql", "select * from {{ source('s', 't') }}"),
            (
                "models/b.sql",
                "select * from {{ ref('a') }} join {{ ref('nope') }} using (id)",
            ),
            (
                "models/c.sql",
                "{{ config(materialized='table') }}\n-- TODO: fill in\nselect",
            ),
            (
                "models/schema.yml",
                "models:\n  - name: a\n    description: A.\n  - name: d\n    description: D.\nsources:\n  - name: s\n    tables:\n      - name: t\n",
            ),
        ]);
        let (project, findings) = Project::build(None, Some(&scan));
        assert_eq!(findings, vec![]);
        assert_eq!(
            statuses(&project),
            vec![
                ("a".to_owned(), ModelStatus::Complete),
                ("b".to_owned(), ModelStatus::Orphan),
                ("c".to_owned(), ModelStatus::Stub),
                ("d".to_owned(), ModelStatus::Missing),
            ]
        );
        let a = project.find("a").expect("a");
        let b = project.find("b").expect("b");
        let t = project.find("s.t").expect("source");
        assert_eq!(project.parents(b), &[a]);
        assert_eq!(project.parents(a), &[t]);
        assert_eq!(project.node(a).unique_id, "model.p.a");
        let unresolved: Vec<_> = project
            .unresolved
            .iter()
            .map(|u| (u.call.as_str(), u.location.clone()))
            .collect();
        assert_eq!(
            unresolved,
            vec![("ref('nope')", Some(Location::at("models/b.sql", Some(1))))]
        );
        let up: Vec<_> = project
            .lineage(b, Direction::Upstream, None, false)
            .into_iter()
            .map(|s| (project.node(s.node).display_name(), s.depth))
            .collect();
        assert_eq!(up, vec![("a".to_owned(), 1), ("s.t".to_owned(), 2)]);
        let limited = project.lineage(b, Direction::Upstream, Some(1), false);
        assert_eq!(limited.len(), 1);
        let down: Vec<_> = project
            .lineage(t, Direction::Downstream, None, false)
            .into_iter()
            .map(|s| s.node)
            .collect();
        assert_eq!(down, vec![a, b]);
    }

    #[test]
    fn primary_keys() {
        let scan = files(&[
            ("models/a.sql", "select 1 as id"),
            ("models/b.sql", "select 1 as id"),
            ("models/c.sql", "select 1 as id"),
            ("models/d.sql", "select 1 as id"),
            (
                "models/schema.yml",
                "models:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n  - name: b\n    columns:\n      - name: id\n        data_tests: [unique]\n      - name: x\n        data_tests: [not_null]\n  - name: c\n    data_tests:\n      - dbt_utils.unique_combination_of_columns:\n          combination_of_columns: [id, x]\n  - name: d\n    constraints:\n      - type: primary_key\n        columns: [id]\n",
            ),
        ]);
        let (project, _) = Project::build(None, Some(&scan));
        let keys: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|m| project.node(project.find(m).expect("model")).primary_key())
            .collect();
        assert_eq!(
            keys,
            vec![
                Some(vec!["id".to_owned()]),
                None,
                Some(vec!["id".to_owned(), "x".to_owned()]),
                Some(vec!["id".to_owned()]),
            ]
        );
    }
}
