//! Building the project graph: the manifest's nodes first ([`Project::from_manifest`]), then the project
//! files merged over them ([`ManifestGraph::with_files`]), with the edges, tests and columns of both.

use super::*;

impl Project {
    /// Builds the graph from a manifest, the project files, or both.
    pub fn build(manifest: Option<Manifest>, files: Option<&FileScan>) -> (Project, Vec<Finding>) {
        Project::from_manifest(manifest).with_files(files)
    }

    /// The first half of [`Project::build`]: the manifest's nodes, without the project files. The analysis
    /// scans the files on another thread meanwhile, then adds them with [`ManifestGraph::with_files`].
    pub fn from_manifest(manifest: Option<Manifest>) -> ManifestGraph {
        let mut graph = ManifestGraph::default();
        let Some(manifest) = manifest else {
            return graph;
        };
        if !manifest.metadata.project_name.is_empty() {
            graph.name = Some(manifest.metadata.project_name.clone());
        }
        let version = manifest.metadata.schema_version();
        if !version.is_some_and(|v| SUPPORTED_SCHEMA_VERSIONS.contains(&v)) {
            graph.findings.push(Finding::new(
                Rule::ManifestSchemaUnsupported,
                format!(
                    "manifest.json has schema `{}` (dbt {}); this version of Sluice reads v10-v12 and read it on a best-effort basis",
                    manifest.metadata.dbt_schema_version, manifest.metadata.dbt_version
                ),
            ));
        }
        graph.builder.project.provenance = Provenance {
            dbt_version: Some(manifest.metadata.dbt_version.clone()).filter(|v| !v.is_empty()),
            manifest_schema: version,
            adapter: Some(manifest.metadata.adapter_type.clone()).filter(|v| !v.is_empty()),
            files: false,
        };
        for group in &manifest.disabled {
            for node in group {
                graph
                    .disabled
                    .insert((node.resource_type.clone(), node.name.clone()));
            }
        }
        graph.macros = graph.builder.add_manifest(manifest);
        graph
    }
}

/// A project graph with the manifest's nodes and not yet the project files (see [`Project::from_manifest`]).
#[derive(Default)]
pub struct ManifestGraph {
    builder: Builder,
    findings: Vec<Finding>,
    /// `(resource_type, name)` of the manifest's disabled nodes.
    disabled: HashSet<(String, String)>,
    /// The root project's name from the manifest.
    name: Option<String>,
    /// Every macro: only the root project's are kept, and the root is known once the files are.
    macros: Vec<ManifestMacro>,
}

impl ManifestGraph {
    /// Adds the project files, if read, and finishes the graph.
    pub fn with_files(self, files: Option<&FileScan>) -> (Project, Vec<Finding>) {
        let ManifestGraph {
            mut builder,
            findings,
            disabled,
            name,
            macros,
        } = self;
        let name = name.or_else(|| files.and_then(|f| f.config.name.clone()));
        builder.project.macros = macros
            .into_iter()
            .filter(|m| Some(&m.package_name) == name.as_ref())
            .map(|m| MacroInfo {
                name: m.name,
                signature: m.signature,
                path: m.original_file_path,
                line: None,
                description: m.description,
            })
            .collect();
        let root = name.unwrap_or_else(|| "project".to_owned());
        builder.project.name = root.clone();
        if let Some(files) = files {
            builder.project.provenance.files = true;
            builder.add_files(files, &root, &disabled);
        }
        builder.finish();
        (builder.project, findings)
    }
}

#[derive(Default)]
struct Builder {
    project: Project,
}

impl Builder {
    fn push(&mut self, node: Node) -> NodeId {
        let id = self.project.nodes.len();
        self.project.by_id.insert(node.unique_id.clone(), id);
        self.project
            .by_name
            .entry(node.name.clone())
            .or_default()
            .push(id);
        self.project.nodes.push(node);
        id
    }

    fn find_kind(&self, kind: NodeKind, package: &str, name: &str) -> Option<NodeId> {
        self.project.named(name).find(|id| {
            let n = &self.project.nodes[*id];
            n.kind == kind && n.package == package
        })
    }

    /// Adds the manifest's nodes, sources and exposures; returns its macros for the caller to filter.
    fn add_manifest(&mut self, manifest: Manifest) -> Vec<ManifestMacro> {
        let Manifest {
            nodes,
            sources,
            exposures,
            macros,
            ..
        } = manifest;
        let mut tests: Vec<(String, AttachedTest)> = Vec::new();
        for m in nodes {
            let Some(kind) = NodeKind::from_resource_type(&m.resource_type) else {
                continue;
            };
            if !m.config.enabled {
                continue;
            }
            if let Some(t) = &m.test_metadata {
                let target = m
                    .attached_node
                    .clone()
                    .or_else(|| m.depends_on.nodes.first().cloned());
                if let Some(target) = target {
                    let references = relationship(&t.name, &t.kwargs, &m.depends_on.nodes, &target);
                    tests.push((
                        target,
                        AttachedTest {
                            name: match &t.namespace {
                                Some(ns) => format!("{ns}.{}", t.name),
                                None => t.name.clone(),
                            },
                            column: m.column_name.clone().or_else(|| t.kwargs.column_name.clone()),
                            combination: t.kwargs.combination_of_columns.clone(),
                            references,
                        },
                    ));
                }
            } else if kind == NodeKind::Test
                && let Some(target) = m.attached_node.clone()
            {
                tests.push((
                    target,
                    AttachedTest {
                        name: m.name.clone(),
                        column: None,
                        combination: Vec::new(),
                        references: None,
                    },
                ));
            }
            let node = manifest_node(m, kind);
            self.push(node);
        }
        for s in sources {
            let mut node = Node::new(s.unique_id, NodeKind::Source, s.name, s.package_name);
            node.path = Some(s.original_file_path.clone());
            node.yml = Some(Location::at(s.original_file_path, None));
            node.description = if s.description.is_empty() {
                s.source_description
            } else {
                s.description
            };
            node.columns = s.columns.into_iter().map(manifest_column).collect();
            node.relation = Some(Relation {
                database: s.database,
                schema: s.schema,
                identifier: s.identifier.unwrap_or_else(|| node.name.clone()),
                relation_name: s.relation_name,
            });
            node.source_name = Some(s.source_name);
            node.in_manifest = true;
            self.push(node);
        }
        for e in exposures {
            let mut node = Node::new(e.unique_id, NodeKind::Exposure, e.name, e.package_name);
            node.path = Some(e.original_file_path.clone());
            node.yml = Some(Location::at(e.original_file_path, None));
            node.description = e.description;
            node.exposure_type = Some(e.kind).filter(|k| !k.is_empty());
            node.manifest_parents = e.depends_on.nodes;
            node.in_manifest = true;
            self.push(node);
        }
        for (target, test) in tests {
            if let Some(id) = self.project.id(&target) {
                self.project.nodes[id].tests.push(test);
            }
        }
        macros
    }

    fn add_files(&mut self, files: &FileScan, root: &str, disabled: &HashSet<(String, String)>) {
        let is_disabled = |kind: &str, name: &str| disabled.contains(&(kind.to_owned(), name.to_owned()));
        for file in &files.models {
            if file.disabled || is_disabled("model", &file.name) {
                continue;
            }
            let id = self.sql_node(NodeKind::Model, file, root);
            let node = &mut self.project.nodes[id];
            if node.materialized.is_none() {
                node.materialized = Some(file.dir_materialized.clone().unwrap_or_else(|| "view".to_owned()));
            }
        }
        for file in &files.snapshots {
            if !file.disabled && !is_disabled("snapshot", &file.name) {
                self.sql_node(NodeKind::Snapshot, file, root);
            }
        }
        for seed in &files.seeds {
            let name = crate::files::file_stem(&seed.path).to_owned();
            if is_disabled("seed", &name) {
                continue;
            }
            let id = match self.find_kind(NodeKind::Seed, root, &name) {
                Some(id) => id,
                None => self.push(Node::new(
                    format!("seed.{root}.{name}"),
                    NodeKind::Seed,
                    name,
                    root.to_owned(),
                )),
            };
            let node = &mut self.project.nodes[id];
            node.path = Some(seed.path.clone());
            node.on_disk = true;
            node.materialized.get_or_insert_with(|| "seed".to_owned());
        }
        for yml in &files.yml_nodes {
            self.yml_node(yml, root, &is_disabled);
        }
        for source in &files.sources {
            for table in &source.tables {
                let id = match self.project.resolve_source(&source.name, &table.name) {
                    Some(id) => id,
                    None => {
                        let mut node = Node::new(
                            format!("source.{root}.{}.{}", source.name, table.name),
                            NodeKind::Source,
                            table.name.clone(),
                            root.to_owned(),
                        );
                        node.source_name = Some(source.name.clone());
                        node.relation = Some(Relation {
                            database: source.database.clone(),
                            schema: Some(source.schema.clone().unwrap_or_else(|| source.name.clone())),
                            identifier: table.identifier.clone().unwrap_or_else(|| table.name.clone()),
                            relation_name: None,
                        });
                        self.push(node)
                    }
                };
                let node = &mut self.project.nodes[id];
                node.path = Some(source.path.clone());
                node.yml = Some(Location::at(&source.path, Some(table.line)));
                node.on_disk = true;
                if !table.description.is_empty() || !node.in_manifest {
                    node.description = if table.description.is_empty() {
                        source.description.clone()
                    } else {
                        table.description.clone()
                    };
                }
                if !table.columns.is_empty() || !node.in_manifest {
                    node.columns = table.columns.iter().map(yml_column).collect();
                }
            }
        }
        for exposure in &files.exposures {
            let id = match self.find_kind(NodeKind::Exposure, root, &exposure.name) {
                Some(id) => id,
                None => self.push(Node::new(
                    format!("exposure.{root}.{}", exposure.name),
                    NodeKind::Exposure,
                    exposure.name.clone(),
                    root.to_owned(),
                )),
            };
            let node = &mut self.project.nodes[id];
            node.path = Some(exposure.path.clone());
            node.yml = Some(Location::at(&exposure.path, Some(exposure.line)));
            node.description = exposure.description.clone();
            node.exposure_type = Some(exposure.kind.clone()).filter(|k| !k.is_empty());
            node.ref_calls = exposure.refs.clone();
            node.source_calls = exposure.sources.clone();
            node.on_disk = true;
        }
        for other in &files.other_sql {
            let kind = if other.role == crate::files::FileRole::Test {
                NodeKind::Test
            } else {
                NodeKind::Analysis
            };
            let existing = self
                .project
                .nodes
                .iter()
                .position(|n| n.kind == kind && n.path.as_deref() == Some(other.path.as_str()));
            let id = match existing {
                Some(id) => id,
                None => self.push(Node::new(
                    format!("{}.{root}.{}", kind.as_str(), other.name),
                    kind,
                    other.name.clone(),
                    root.to_owned(),
                )),
            };
            let node = &mut self.project.nodes[id];
            node.path = Some(other.path.clone());
            node.ref_calls = other.refs.clone();
            node.source_calls = other.sources.clone();
            node.on_disk = true;
        }
        for m in &files.macros {
            let info = MacroInfo {
                name: m.def.name.clone(),
                signature: Some(m.def.signature.clone()),
                path: m.path.clone(),
                line: Some(m.def.line),
                description: String::new(),
            };
            match self.project.macros.iter_mut().find(|x| x.name == info.name) {
                Some(existing) => {
                    existing.signature = info.signature;
                    existing.path = info.path;
                    existing.line = info.line;
                }
                None => self.project.macros.push(info),
            }
        }
    }

    /// Adds or updates a model or snapshot from its file.
    fn sql_node(&mut self, kind: NodeKind, file: &SqlFile, root: &str) -> NodeId {
        let id = match self.find_kind(kind, root, &file.name) {
            Some(id) => id,
            None => self.push(Node::new(
                format!("{}.{root}.{}", kind.as_str(), file.name),
                kind,
                file.name.clone(),
                root.to_owned(),
            )),
        };
        let node = &mut self.project.nodes[id];
        node.path = Some(file.path.clone());
        node.on_disk = true;
        node.sql = Some(file.contents.clone());
        node.jinja = Some(Arc::clone(&file.facts));
        node.ref_calls = file.facts.refs.clone();
        node.source_calls = file.facts.sources.clone();
        let config = &file.facts.config;
        if let Some(m) = &config.materialized {
            node.materialized = Some(m.clone());
        } else if !node.in_manifest {
            node.materialized = file.dir_materialized.clone();
        }
        if let Some(k) = &config.unique_key {
            node.unique_key = k.clone();
        }
        if let Some(s) = &config.incremental_strategy {
            node.incremental_strategy = Some(s.clone());
        }
        id
    }

    fn yml_node(&mut self, yml: &YmlNode, root: &str, is_disabled: &dyn Fn(&str, &str) -> bool) {
        let kind = match yml.kind {
            YmlKind::Model => NodeKind::Model,
            YmlKind::Seed => NodeKind::Seed,
            YmlKind::Snapshot => NodeKind::Snapshot,
        };
        if yml.enabled == Some(false) || is_disabled(kind.as_str(), &yml.name) {
            return;
        }
        let id = match self.find_kind(kind, root, &yml.name) {
            Some(id) => id,
            // Seeds and snapshots without files are YAML about something that does not exist; dbt warns and
            // so does the map (a model entry without SQL is the "missing" status).
            None if kind != NodeKind::Model => return,
            None => self.push(Node::new(
                format!("model.{root}.{}", yml.name),
                NodeKind::Model,
                yml.name.clone(),
                root.to_owned(),
            )),
        };
        let node = &mut self.project.nodes[id];
        node.yml = Some(Location::at(&yml.path, Some(yml.line)));
        node.description = yml.description.clone();
        // The manifest's columns carry the same YAML as of the last parse; the file is newer.
        let manifest_types: HashMap<String, Option<String>> = node
            .columns
            .iter()
            .map(|c| (c.name.to_ascii_lowercase(), c.data_type.clone()))
            .collect();
        node.columns = yml
            .columns
            .iter()
            .map(|c| {
                let mut column = yml_column(c);
                if column.data_type.is_none() {
                    column.data_type = manifest_types
                        .get(&c.name.to_ascii_lowercase())
                        .cloned()
                        .flatten();
                }
                column
            })
            .collect();
        let mut tests: BTreeSet<AttachedTest> = node.tests.drain(..).collect();
        // The manifest's entry for a test is the richer one (a relationship's target): the YAML's same test
        // is not added beside it.
        let mut add = |test: AttachedTest| {
            if !tests
                .iter()
                .any(|t| t.name == test.name && t.column == test.column && t.combination == test.combination)
            {
                tests.insert(test);
            }
        };
        for c in &yml.columns {
            for t in &c.tests {
                add(AttachedTest {
                    name: t.clone(),
                    column: Some(c.name.clone()),
                    combination: Vec::new(),
                    references: None,
                });
            }
        }
        for (name, combination) in &yml.tests {
            add(AttachedTest {
                name: name.clone(),
                column: None,
                combination: combination.clone(),
                references: None,
            });
        }
        node.tests = tests.into_iter().collect();
        if !yml.primary_key.is_empty() {
            node.primary_key_constraint = yml.primary_key.clone();
        }
        if !node.in_manifest {
            // Without a manifest, YAML config applies unless the SQL's own config() said otherwise.
            let from_sql = match (&node.jinja, node.sql.as_deref()) {
                (Some(facts), _) => facts.config.clone(),
                (None, Some(sql)) => crate::jinja::scan(sql).config,
                (None, None) => Default::default(),
            };
            if from_sql.materialized.is_none() && yml.materialized.is_some() {
                node.materialized = yml.materialized.clone();
            }
            if from_sql.unique_key.is_none()
                && let Some(k) = &yml.unique_key
            {
                node.unique_key = k.clone();
            }
            if from_sql.incremental_strategy.is_none() && yml.incremental_strategy.is_some() {
                node.incremental_strategy = yml.incremental_strategy.clone();
            }
        }
    }

    /// Statuses, edges and unresolved calls.
    fn finish(&mut self) {
        let project = &mut self.project;
        for node in &mut project.nodes {
            if node.kind != NodeKind::Model {
                continue;
            }
            let python = node.path.as_deref().is_some_and(|p| p.ends_with(".py"));
            // A model the manifest knows but whose file is gone has no SQL any more.
            let file_gone =
                project.provenance.files && node.in_manifest && !node.on_disk && node.package == project.name;
            let sql = if file_gone { None } else { node.sql.as_deref() };
            if let (Some(sql), None, false) = (sql, &node.jinja, python) {
                node.jinja = Some(Arc::new(crate::jinja::scan(sql)));
            }
            node.status = Some(match (sql, &node.jinja) {
                (None, _) if !python => ModelStatus::Missing,
                (Some(sql), Some(facts)) if !python => match sql::stub_reason(sql, facts) {
                    Some(reason) => {
                        node.stub_reason = Some(reason);
                        ModelStatus::Stub
                    }
                    None if node.has_yml() => ModelStatus::Complete,
                    None => ModelStatus::Orphan,
                },
                _ if node.has_yml() => ModelStatus::Complete,
                _ => ModelStatus::Orphan,
            });
        }

        let n = project.nodes.len();
        let mut parents: Vec<BTreeSet<NodeId>> = vec![BTreeSet::new(); n];
        let mut unresolved = Vec::new();
        for (id, node) in project.nodes.iter().enumerate() {
            for parent in &node.manifest_parents {
                if let Some(&p) = project.by_id.get(parent) {
                    parents[id].insert(p);
                }
            }
            for call in &node.ref_calls {
                match project.resolve_ref(call.package.as_deref(), &call.name) {
                    Some(p) => {
                        parents[id].insert(p);
                    }
                    None => unresolved.push(Unresolved {
                        node: id,
                        call: match &call.package {
                            Some(pkg) => format!("ref('{pkg}', '{}')", call.name),
                            None => format!("ref('{}')", call.name),
                        },
                        is_source: false,
                        target: call.name.clone(),
                        location: node.path.as_ref().map(|p| Location::at(p, Some(call.line))),
                    }),
                }
            }
            for call in &node.source_calls {
                match project.resolve_source(&call.source, &call.table) {
                    Some(p) => {
                        parents[id].insert(p);
                    }
                    None => unresolved.push(Unresolved {
                        node: id,
                        call: format!("source('{}', '{}')", call.source, call.table),
                        is_source: true,
                        target: format!("{}.{}", call.source, call.table),
                        location: node.path.as_ref().map(|p| Location::at(p, Some(call.line))),
                    }),
                }
            }
        }
        let mut children = vec![Vec::new(); n];
        for (id, ps) in parents.iter().enumerate() {
            for &p in ps {
                if p != id || project.nodes[id].kind != NodeKind::Test {
                    children[p].push(id);
                }
            }
        }
        project.parents = parents.into_iter().map(|s| s.into_iter().collect()).collect();
        project.children = children;
        project.unresolved = unresolved;
        project.macros.sort_by(|a, b| a.name.cmp(&b.name));
        for node in &mut project.nodes {
            node.manifest_parents = Vec::new();
        }
    }
}

/// A `relationships` test's target: the node it depends on besides the tested one, and its `field`.
fn relationship(
    name: &str,
    kwargs: &crate::artifacts::manifest::TestKwargs,
    depends_on: &[String],
    tested: &str,
) -> Option<TestReference> {
    if name != "relationships" {
        return None;
    }
    let field = kwargs.field.clone()?;
    let mut others = depends_on.iter().filter(|n| n.as_str() != tested);
    match (others.next(), others.next()) {
        (Some(node), None) => Some(TestReference {
            node: node.clone(),
            field,
        }),
        _ => None,
    }
}

fn manifest_node(m: ManifestNode, kind: NodeKind) -> Node {
    let mut node = Node::new(m.unique_id, kind, m.name, m.package_name);
    if !m.original_file_path.is_empty() {
        node.path = Some(m.original_file_path);
    }
    // `patch_path` is `package://path`; only the root project's files are in the project directory.
    node.yml = m
        .patch_path
        .map(|p| Location::at(p.split_once("://").map_or(p.as_str(), |(_, path)| path), None));
    node.description = m.description;
    node.columns = m.columns.into_iter().map(manifest_column).collect();
    node.materialized = m.config.materialized;
    node.incremental_strategy = m.config.incremental_strategy;
    node.unique_key = m.config.unique_key;
    node.primary_key_constraint = m
        .constraints
        .into_iter()
        .filter(|c| c.kind == "primary_key")
        .flat_map(|c| c.columns)
        .collect();
    if kind != NodeKind::Test && kind != NodeKind::Analysis {
        node.relation = Some(Relation {
            database: m.database,
            schema: m.schema,
            identifier: m.alias.unwrap_or_else(|| node.name.clone()),
            relation_name: m.relation_name,
        });
    }
    if kind == NodeKind::Test {
        node.test = Some(TestInfo {
            test_name: m
                .test_metadata
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            column: m.column_name.or_else(|| {
                m.test_metadata
                    .as_ref()
                    .and_then(|t| t.kwargs.column_name.clone())
            }),
            attached: m.attached_node.or_else(|| m.depends_on.nodes.first().cloned()),
            severity: m.config.severity,
        });
    }
    if matches!(kind, NodeKind::Model | NodeKind::Snapshot) {
        if !m.raw_code.is_empty() {
            node.sql = Some(m.raw_code);
        }
        node.compiled_sql = m.compiled_code.filter(|c| !c.trim().is_empty());
    }
    node.manifest_parents = m.depends_on.nodes;
    node.tags = m.tags;
    node.in_manifest = true;
    node
}

fn manifest_column(c: ManifestColumn) -> Column {
    Column {
        primary_key: c.constraints.iter().any(|k| k.kind == "primary_key"),
        name: c.name,
        description: c.description.trim().to_owned(),
        data_type: c.data_type,
        tests: Vec::new(),
        line: None,
    }
}

fn yml_column(c: &YmlColumn) -> Column {
    Column {
        name: c.name.clone(),
        description: c.description.clone(),
        data_type: c.data_type.clone(),
        tests: c.tests.clone(),
        primary_key: c.primary_key,
        line: Some(c.line),
    }
}
