//! The project map: compact markdown for an agent or a person, with the focus views of SignalPilot's
//! `dbt_project_map` (`all`, `work_order`, `missing`, `stubs`, `sources`, `macros`, `model:<name>`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::str::FromStr;

use crate::analyze::Analysis;
use crate::artifacts::run_results::Outcome;
use crate::error::DbtError;
use crate::finding::{Finding, Rule, Severity};
use crate::project::{Direction, ModelStatus, Node, NodeId, NodeKind, Project};
use crate::render::report::Summary;

/// Which view of the map to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Focus {
    /// Everything, models grouped by directory.
    All,
    /// The models that need work, in build order.
    WorkOrder,
    /// Models declared in YAML without SQL.
    Missing,
    /// Models whose SQL is unfinished.
    Stubs,
    /// Sources and their tables.
    Sources,
    /// The project's macros.
    Macros,
    /// One model in depth.
    Model(String),
}

impl FromStr for Focus {
    type Err = DbtError;
    fn from_str(s: &str) -> Result<Self, DbtError> {
        let s = s.trim();
        Ok(match s {
            "" | "all" => Focus::All,
            "work_order" => Focus::WorkOrder,
            "missing" => Focus::Missing,
            "stubs" => Focus::Stubs,
            "sources" => Focus::Sources,
            "macros" => Focus::Macros,
            _ => match s.strip_prefix("model:") {
                Some(name) if !name.trim().is_empty() => Focus::Model(name.trim().to_owned()),
                _ => return Err(DbtError::UnknownFocus(s.to_owned())),
            },
        })
    }
}

/// The parameters of SignalPilot's `dbt_project_map`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOptions {
    /// Which view.
    pub focus: Focus,
    /// Models listed per directory before `(+N more)`.
    pub max_models_per_section: usize,
    /// List column names under each model.
    pub include_columns: bool,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            focus: Focus::All,
            max_models_per_section: 40,
            include_columns: false,
        }
    }
}

/// Renders the map.
pub fn render_map(analysis: &Analysis, findings: &[Finding], options: &MapOptions) -> String {
    let text = match &options.focus {
        Focus::All => full(analysis, findings, options),
        Focus::WorkOrder => work_order(analysis),
        Focus::Missing => filtered(&analysis.project, ModelStatus::Missing, "Missing Models"),
        Focus::Stubs => filtered(&analysis.project, ModelStatus::Stub, "Stub Models"),
        Focus::Sources => sources(&analysis.project),
        Focus::Macros => macros(&analysis.project),
        Focus::Model(name) => model(analysis, findings, name),
    };
    let mut text = text.trim_end().to_owned();
    text.push('\n');
    text
}

fn root_models(project: &Project) -> Vec<(NodeId, &Node)> {
    project
        .of_kind(NodeKind::Model)
        .into_iter()
        .filter(|(_, n)| n.package == project.name)
        .collect()
}

fn status(node: &Node) -> ModelStatus {
    node.status.unwrap_or(ModelStatus::Complete)
}

/// The names a model depends on through `ref()`, resolved or not, in a stable order.
fn ref_names(project: &Project, id: NodeId) -> Vec<String> {
    let mut names: Vec<String> = project
        .parents(id)
        .iter()
        .map(|&p| project.node(p))
        .filter(|p| p.kind.is_refable())
        .map(|p| p.name.clone())
        .collect();
    names.extend(
        project
            .unresolved
            .iter()
            .filter(|u| u.node == id && !u.is_source)
            .map(|u| u.target.clone()),
    );
    names.sort();
    names.dedup();
    names
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.trim().lines().next().unwrap_or("");
    match line.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

fn list(names: &[String], max: usize) -> String {
    let mut out = names.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > max {
        let _ = write!(out, ", +{}", names.len() - max);
    }
    out
}

fn yml_display(node: &Node) -> String {
    node.yml
        .as_ref()
        .map_or_else(|| "(none)".to_owned(), ToString::to_string)
}

fn provenance(analysis: &Analysis) -> String {
    let p = &analysis.project.provenance;
    let manifest = p.manifest_schema.map(|v| {
        let dbt = p
            .dbt_version
            .as_deref()
            .map(|d| format!("dbt {d}, "))
            .unwrap_or_default();
        format!("manifest.json ({dbt}schema v{v})")
    });
    match (manifest, p.files) {
        (Some(m), true) => format!("Read from {m} and the project files."),
        (Some(m), false) => format!("Read from {m} only (no project directory)."),
        (None, true) => "Read from the project files only (no manifest.json: run `dbt parse` for generated tests and resolved config).".to_owned(),
        (None, false) => "Nothing was read.".to_owned(),
    }
}

fn full(analysis: &Analysis, findings: &[Finding], options: &MapOptions) -> String {
    let project = &analysis.project;
    let models = root_models(project);
    let count = |s: ModelStatus| models.iter().filter(|(_, n)| status(n) == s).count();
    let kind_count = |k: NodeKind| {
        project
            .nodes
            .iter()
            .filter(|n| n.kind == k && n.package == project.name)
            .count()
    };
    let mut out = String::new();
    let _ = writeln!(out, "# dbt project: {}", project.name);
    let _ = writeln!(out, "{}", provenance(analysis));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Models: {} total (✓ {} complete, ⚠ {} stub, ✗ {} missing, ? {} orphan). Sources: {}. Seeds: {}. \
         Snapshots: {}. Tests: {}. Exposures: {}. Macros: {}.",
        models.len(),
        count(ModelStatus::Complete),
        count(ModelStatus::Stub),
        count(ModelStatus::Missing),
        count(ModelStatus::Orphan),
        kind_count(NodeKind::Source),
        kind_count(NodeKind::Seed),
        kind_count(NodeKind::Snapshot),
        kind_count(NodeKind::Test),
        kind_count(NodeKind::Exposure),
        project.macros.len(),
    );
    let packaged = project
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Model && n.package != project.name)
        .count();
    if packaged > 0 {
        let _ = writeln!(out, "Package models (not listed below): {packaged}.");
    }
    let summary = Summary::of(findings);
    if !findings.is_empty() {
        let _ = writeln!(
            out,
            "Findings: {} error(s), {} warning(s), {} info — `sluice-dbt validate` lists them.",
            summary.errors, summary.warnings, summary.infos
        );
    }
    let _ = writeln!(out);

    let mut groups: BTreeMap<String, Vec<(NodeId, &Node)>> = BTreeMap::new();
    for (id, node) in &models {
        groups.entry(node.directory()).or_default().push((*id, node));
    }
    for (directory, mut items) in groups {
        items.sort_by_key(|(_, n)| {
            (
                status(n) != ModelStatus::Missing,
                status(n) != ModelStatus::Stub,
                n.name.clone(),
            )
        });
        let mut bits = Vec::new();
        for s in [
            ModelStatus::Complete,
            ModelStatus::Stub,
            ModelStatus::Missing,
            ModelStatus::Orphan,
        ] {
            let c = items.iter().filter(|(_, n)| status(n) == s).count();
            if c > 0 {
                bits.push(format!("{c} {}", s.as_str()));
            }
        }
        let dir = if directory.is_empty() {
            "models".to_owned()
        } else {
            directory
        };
        let _ = writeln!(out, "## {dir}/ ({} models — {})", items.len(), bits.join(", "));
        for (shown, (id, node)) in items.iter().enumerate() {
            if shown >= options.max_models_per_section {
                let _ = writeln!(
                    out,
                    "  (+{} more — ask with focus=model:<name> for detail)",
                    items.len() - shown
                );
                break;
            }
            out.push_str(&model_line(project, *id, node, options.include_columns));
        }
        let _ = writeln!(out);
    }

    if !analysis.work_order.items.is_empty() || !analysis.work_order.cycles.is_empty() {
        let _ = writeln!(out, "## Work order (build in this sequence)");
        for (i, item) in analysis.work_order.items.iter().enumerate() {
            let node = project.node(item.node);
            let deps = ref_names(project, item.node);
            let deps = if deps.is_empty() {
                String::new()
            } else {
                format!("  ← {}", list(&deps, 3))
            };
            let _ = writeln!(
                out,
                "  {:>2}. {} {}{}{} — {}",
                i + 1,
                status(node).icon(),
                node.name,
                col_hint(node),
                deps,
                item.reasons.join("; ")
            );
        }
        unresolved_and_cycles(analysis, &mut out, "  ");
        let _ = writeln!(out);
    }

    let source_groups = source_groups(project);
    if !source_groups.is_empty() {
        let _ = writeln!(out, "## Sources ({})", source_groups.len());
        for (name, tables) in &source_groups {
            let schema = tables
                .first()
                .and_then(|t| t.relation.as_ref())
                .and_then(|r| r.schema.clone())
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let names: Vec<String> = tables.iter().map(|t| t.name.clone()).collect();
            let _ = writeln!(
                out,
                "  • {name}{schema} [{} tables]: {}",
                tables.len(),
                list(&names, 10)
            );
        }
        let _ = writeln!(out);
    }
    for (kind, title) in [(NodeKind::Seed, "Seeds"), (NodeKind::Snapshot, "Snapshots")] {
        let nodes: Vec<String> = project
            .of_kind(kind)
            .into_iter()
            .filter(|(_, n)| n.package == project.name)
            .map(|(_, n)| n.name.clone())
            .collect();
        if !nodes.is_empty() {
            let _ = writeln!(
                out,
                "## {title} ({})\n  {}\n",
                nodes.len(),
                list(&nodes, options.max_models_per_section)
            );
        }
    }
    let exposures = project.of_kind(NodeKind::Exposure);
    if !exposures.is_empty() {
        let _ = writeln!(out, "## Exposures ({})", exposures.len());
        for (id, node) in exposures {
            let kind = node
                .exposure_type
                .as_deref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default();
            let deps = ref_names(project, id);
            let _ = writeln!(out, "  • {}{kind} ← {}", node.name, list(&deps, 6));
        }
        let _ = writeln!(out);
    }
    if !project.macros.is_empty() {
        let _ = writeln!(out, "## Macros ({})", project.macros.len());
        for m in project.macros.iter().take(options.max_models_per_section) {
            let _ = writeln!(out, "  • {}({})", m.name, m.signature.as_deref().unwrap_or(""));
        }
        if project.macros.len() > options.max_models_per_section {
            let _ = writeln!(
                out,
                "  (+{} more — ask with focus=macros)",
                project.macros.len() - options.max_models_per_section
            );
        }
        let _ = writeln!(out);
    }
    hazards(findings, &mut out);
    let actionable = analysis.work_order.items.len();
    if actionable == 0 {
        let _ = writeln!(
            out,
            "Status: project looks complete. No missing or stub models to build."
        );
    } else {
        let _ = writeln!(
            out,
            "Next step: {actionable} model(s) need work. Call `dbt_project_map focus=work_order` for the build \
             sequence, or `dbt_project_map focus=model:<name>` for a single model's full contract."
        );
    }
    out
}

fn col_hint(node: &Node) -> String {
    if !node.columns.is_empty() {
        format!(" [{} cols]", node.columns.len())
    } else if !node.has_yml() {
        " [no yml contract]".to_owned()
    } else {
        String::new()
    }
}

fn model_line(project: &Project, id: NodeId, node: &Node, include_columns: bool) -> String {
    let mut line = format!("  {} {}{}", status(node).icon(), node.name, col_hint(node));
    let deps = ref_names(project, id);
    if !deps.is_empty() {
        let _ = write!(line, "  ← {}", list(&deps, 4));
    }
    if let Some(m) = &node.materialized {
        let _ = write!(line, "  ({m})");
    }
    line.push('\n');
    if status(node).is_actionable() && !node.description.is_empty() {
        let _ = writeln!(line, "      desc: {}", first_line(&node.description, 120));
    }
    if include_columns && !node.columns.is_empty() {
        let names: Vec<String> = node.columns.iter().map(|c| c.name.clone()).collect();
        let _ = writeln!(line, "      cols: {}", list(&names, 10));
    }
    line
}

fn unresolved_and_cycles(analysis: &Analysis, out: &mut String, indent: &str) {
    let project = &analysis.project;
    if !analysis.work_order.cycles.is_empty() {
        let _ = writeln!(out, "\n{indent}⚠ CYCLES DETECTED (resolve before building):");
        for cycle in &analysis.work_order.cycles {
            let names: Vec<&str> = cycle.iter().map(|&id| project.node(id).name.as_str()).collect();
            let _ = writeln!(out, "{indent}  {}", names.join(" → "));
        }
    }
    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for u in &project.unresolved {
        by_node
            .entry(project.node(u.node).name.clone())
            .or_default()
            .push(u.call.clone());
    }
    if !by_node.is_empty() {
        let _ = writeln!(
            out,
            "\n{indent}⚠ UNRESOLVED REFS (ref()/source() targets that don't exist in this project):"
        );
        for (name, calls) in by_node {
            let _ = writeln!(out, "{indent}  {name}: {}", calls.join(", "));
        }
    }
}

fn hazards(findings: &[Finding], out: &mut String) {
    let rules = [
        Rule::NondeterministicFunction,
        Rule::WindowWithoutTotalOrder,
        Rule::LimitWithoutOrderBy,
        Rule::DateSpineOpenEnded,
    ];
    let hits: Vec<&Finding> = findings.iter().filter(|f| rules.contains(&f.rule)).collect();
    if hits.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## ⚠ Non-determinism and date-spine hazards ({})",
        hits.len()
    );
    let _ = writeln!(
        out,
        "These models can return different rows on each run; fix them before trusting row counts."
    );
    for f in hits.iter().take(15) {
        let place = f.location.as_ref().map(ToString::to_string).unwrap_or_default();
        let _ = writeln!(out, "  - {place} — {} {}", f.rule.code(), f.message);
    }
    if hits.len() > 15 {
        let _ = writeln!(out, "  (+{} more)", hits.len() - 15);
    }
    let _ = writeln!(out);
}

fn source_groups(project: &Project) -> BTreeMap<String, Vec<&Node>> {
    let mut groups: BTreeMap<String, Vec<&Node>> = BTreeMap::new();
    for (_, node) in project.of_kind(NodeKind::Source) {
        groups
            .entry(node.source_name.clone().unwrap_or_default())
            .or_default()
            .push(node);
    }
    groups
}

fn work_order(analysis: &Analysis) -> String {
    let project = &analysis.project;
    let mut out = format!("# Work order for {}\n\n", project.name);
    if analysis.work_order.items.is_empty() {
        out.push_str("No actionable models — project looks complete.\n");
        unresolved_and_cycles(analysis, &mut out, "");
        return out;
    }
    let _ = writeln!(
        out,
        "{} actionable model(s). Build top to bottom; each model's dependencies are already resolved by the time you reach it.\n",
        analysis.work_order.items.len()
    );
    for (i, item) in analysis.work_order.items.iter().enumerate() {
        let node = project.node(item.node);
        let deps = ref_names(project, item.node);
        let mat = node
            .materialized
            .as_deref()
            .map(|m| format!(" {m}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>2}. {} {} [{} cols]{mat}",
            i + 1,
            status(node).icon(),
            node.name,
            node.columns.len()
        );
        let _ = writeln!(out, "     why:  {}", item.reasons.join("; "));
        let _ = writeln!(out, "     yml:  {}", yml_display(node));
        let _ = writeln!(
            out,
            "     deps: {}",
            if deps.is_empty() {
                "no refs".to_owned()
            } else {
                deps.join(", ")
            }
        );
        if !node.description.is_empty() {
            let _ = writeln!(out, "     desc: {}", first_line(&node.description, 200));
        }
        let cols: Vec<String> = node.columns.iter().map(|c| c.name.clone()).collect();
        if !cols.is_empty() {
            let _ = writeln!(out, "     cols: {}", list(&cols, 15));
        }
        let _ = writeln!(out);
    }
    unresolved_and_cycles(analysis, &mut out, "");
    out
}

fn filtered(project: &Project, wanted: ModelStatus, title: &str) -> String {
    let mut models: Vec<(NodeId, &Node)> = root_models(project)
        .into_iter()
        .filter(|(_, n)| status(n) == wanted)
        .collect();
    models.sort_by_key(|(_, n)| (n.directory(), n.name.clone()));
    let mut out = format!("# {title} in {}\n\n", project.name);
    if models.is_empty() {
        let _ = writeln!(out, "None — no models with status {}.", wanted.as_str());
        return out;
    }
    let _ = writeln!(out, "{} model(s):\n", models.len());
    for (id, node) in models {
        let deps = ref_names(project, id);
        let _ = writeln!(
            out,
            "{} {}  ({}/)",
            status(node).icon(),
            node.name,
            node.directory()
        );
        let _ = writeln!(out, "   yml:  {}", yml_display(node));
        let _ = writeln!(out, "   sql:  {}", node.path.as_deref().unwrap_or("(none)"));
        if let Some(reason) = node.stub_reason {
            let _ = writeln!(out, "   why:  {reason}");
        }
        let _ = writeln!(
            out,
            "   deps: {}",
            if deps.is_empty() {
                "no refs".to_owned()
            } else {
                deps.join(", ")
            }
        );
        if !node.description.is_empty() {
            let _ = writeln!(out, "   desc: {}", first_line(&node.description, 200));
        }
        let cols: Vec<String> = node.columns.iter().map(|c| c.name.clone()).collect();
        if !cols.is_empty() {
            let _ = writeln!(out, "   cols: {}", list(&cols, 15));
        }
        let _ = writeln!(out);
    }
    out
}

fn sources(project: &Project) -> String {
    let mut out = format!("# Sources in {}\n\n", project.name);
    let groups = source_groups(project);
    if groups.is_empty() {
        out.push_str("No sources declared in yml.\n");
        return out;
    }
    for (name, tables) in groups {
        let relation = tables.first().and_then(|t| t.relation.as_ref());
        let schema = relation
            .and_then(|r| r.schema.clone())
            .unwrap_or_else(|| "(no schema)".to_owned());
        let database = relation
            .and_then(|r| r.database.clone())
            .map(|d| format!(" database={d}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "## {name}  schema={schema}{database}  [{} tables]",
            tables.len()
        );
        for table in tables {
            let identifier = table
                .relation
                .as_ref()
                .filter(|r| r.identifier != table.name)
                .map(|r| format!(" ({})", r.identifier))
                .unwrap_or_default();
            let desc = if table.description.is_empty() {
                String::new()
            } else {
                format!(" — {}", first_line(&table.description, 100))
            };
            let _ = writeln!(out, "   • {}{identifier}{desc}", table.name);
        }
        let _ = writeln!(out);
    }
    out
}

fn macros(project: &Project) -> String {
    let mut out = format!("# Macros in {}\n\n", project.name);
    if project.macros.is_empty() {
        out.push_str("No macros found under macros/.\n");
        return out;
    }
    let mut by_file: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for m in &project.macros {
        by_file.entry(m.path.as_str()).or_default().push(format!(
            "  • {}({})",
            m.name,
            m.signature.as_deref().unwrap_or("")
        ));
    }
    for (file, lines) in by_file {
        let _ = writeln!(out, "## {file}\n{}\n", lines.join("\n"));
    }
    out
}

fn model(analysis: &Analysis, findings: &[Finding], name: &str) -> String {
    let project = &analysis.project;
    let Some(id) = project
        .find(name)
        .filter(|&id| project.node(id).kind == NodeKind::Model)
    else {
        let lower = name.to_ascii_lowercase();
        let candidates: Vec<String> = root_models(project)
            .into_iter()
            .filter(|(_, n)| n.name.to_ascii_lowercase().contains(&lower))
            .map(|(_, n)| n.name.clone())
            .take(5)
            .collect();
        let hint = if candidates.is_empty() {
            String::new()
        } else {
            format!(" Did you mean: {}?", candidates.join(", "))
        };
        return format!("Model '{name}' not found in project {}.{hint}\n", project.name);
    };
    let node = project.node(id);
    let mut out = format!("# Model: {}\n\n", node.name);
    let _ = writeln!(
        out,
        "Status:          {} {}",
        status(node).icon(),
        status(node).as_str()
    );
    let _ = writeln!(out, "Unique id:       {}", node.unique_id);
    let _ = writeln!(out, "Directory:       {}", node.directory());
    let _ = writeln!(out, "YML path:        {}", yml_display(node));
    let _ = writeln!(
        out,
        "SQL path:        {}",
        node.path.as_deref().unwrap_or("(none)")
    );
    if let Some(m) = &node.materialized {
        let _ = writeln!(out, "Materialization: {m}");
    }
    if node.materialized.as_deref() == Some("incremental") {
        let key = if node.unique_key.is_empty() {
            "(none)".to_owned()
        } else {
            node.unique_key.join(", ")
        };
        let strategy = node.incremental_strategy.as_deref().unwrap_or("adapter default");
        let _ = writeln!(out, "Incremental:     strategy {strategy}, unique_key {key}");
    }
    if let Some(pk) = node.primary_key() {
        let _ = writeln!(out, "Primary key:     {}", pk.join(", "));
    }
    if let Some(relation) = node.relation.as_ref().and_then(|r| r.relation_name.clone()) {
        let _ = writeln!(out, "Relation:        {relation}");
    }
    if let Some(reason) = node.stub_reason {
        let _ = writeln!(out, "Stub because:    {reason}");
    }
    if let Some(run) = analysis.last_run.get(&id) {
        let outcome = match run.outcome {
            Outcome::Ok => "success",
            Outcome::Failed => "failed",
            Outcome::Warned => "warned",
            Outcome::Errored => "error",
            Outcome::Skipped => "skipped",
            Outcome::Other => "unknown",
        };
        let message = run
            .message
            .as_deref()
            .map(|m| format!(" — {}", first_line(m, 160)))
            .unwrap_or_default();
        let _ = writeln!(out, "Last run:        {outcome}{message}");
    }
    let _ = writeln!(out);
    if !node.description.is_empty() {
        let _ = writeln!(out, "## Description\n{}\n", node.description.trim());
    }

    let mut parents = project.parents(id).to_vec();
    parents.sort_by_key(|&p| project.node(p).display_name());
    let unresolved: Vec<_> = project.unresolved.iter().filter(|u| u.node == id).collect();
    if !parents.is_empty() || !unresolved.is_empty() {
        let _ = writeln!(out, "## Dependencies ({})", parents.len() + unresolved.len());
        for &p in &parents {
            let parent = project.node(p);
            match parent.kind {
                NodeKind::Source => {
                    let _ = writeln!(
                        out,
                        "  • source('{}', '{}')",
                        parent.source_name.as_deref().unwrap_or(""),
                        parent.name
                    );
                }
                NodeKind::Model => {
                    let s = status(parent);
                    let _ = writeln!(out, "  {} ref('{}')  [{}]", s.icon(), parent.name, s.as_str());
                }
                kind => {
                    let _ = writeln!(out, "  • ref('{}')  [{}]", parent.name, kind.as_str());
                }
            }
        }
        for u in unresolved {
            let _ = writeln!(out, "  ⚠ {}  [UNRESOLVED — nothing has this name]", u.call);
        }
        let _ = writeln!(out);
    }
    for (title, direction) in [
        ("Upstream", Direction::Upstream),
        ("Downstream", Direction::Downstream),
    ] {
        let steps = project.lineage(id, direction, None, false);
        if !steps.is_empty() {
            let names: Vec<String> = steps
                .iter()
                .map(|s| format!("{} ({})", project.node(s.node).display_name(), s.depth))
                .collect();
            let _ = writeln!(
                out,
                "## {title}, all depths ({}): {}\n",
                steps.len(),
                names.join(", ")
            );
        }
    }

    let warehouse_type = |column: &str| {
        node.catalog_columns
            .as_ref()
            .and_then(|cols| cols.iter().find(|(c, _)| c.eq_ignore_ascii_case(column)))
            .map(|(_, t)| t.clone())
    };
    if !node.columns.is_empty() {
        let _ = writeln!(out, "## Columns ({})", node.columns.len());
        for c in &node.columns {
            let data_type = c.data_type.clone().or_else(|| warehouse_type(&c.name));
            let type_hint = data_type.map(|t| format!("  [{t}]")).unwrap_or_default();
            let tests: Vec<&str> = node
                .tests
                .iter()
                .filter(|t| {
                    t.column
                        .as_deref()
                        .is_some_and(|tc| tc.eq_ignore_ascii_case(&c.name))
                })
                .map(|t| t.name.as_str())
                .collect();
            let tests = if tests.is_empty() {
                String::new()
            } else {
                format!("  tests: {}", tests.join(", "))
            };
            let _ = writeln!(out, "  • {}{type_hint}{tests}", c.name);
            if !c.description.is_empty() {
                let _ = writeln!(out, "      {}", first_line(&c.description, 200));
            }
        }
        let _ = writeln!(out);
    }
    if let Some(actual) = &node.catalog_columns {
        let undocumented: Vec<String> = actual
            .iter()
            .filter(|(c, _)| !node.columns.iter().any(|d| d.name.eq_ignore_ascii_case(c)))
            .map(|(c, t)| format!("{c} [{t}]"))
            .collect();
        if !undocumented.is_empty() {
            let _ = writeln!(
                out,
                "## Built but undocumented columns ({})\n  {}\n",
                undocumented.len(),
                undocumented.join(", ")
            );
        }
    }
    let model_tests: Vec<&str> = node
        .tests
        .iter()
        .filter(|t| t.column.is_none())
        .map(|t| t.name.as_str())
        .collect();
    if !model_tests.is_empty() {
        let _ = writeln!(out, "## Model-level tests ({})", model_tests.len());
        for t in model_tests {
            let _ = writeln!(out, "  • {t}");
        }
        let _ = writeln!(out);
    }
    if !node.tags.is_empty() {
        let _ = writeln!(out, "Tags: {}\n", node.tags.join(", "));
    }
    let own: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.node.as_deref() == Some(node.unique_id.as_str()))
        .collect();
    if !own.is_empty() {
        let _ = writeln!(out, "## Findings ({})", own.len());
        for f in own {
            let marker = if f.severity == Severity::Error {
                "✗"
            } else {
                "⚠"
            };
            let place = f.location.as_ref().map(|l| format!(" ({l})")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {marker} {} {}{place}: {}",
                f.rule.code(),
                f.rule.name(),
                f.message
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn focus_values() {
        let cases = [
            ("all", Some(Focus::All)),
            ("", Some(Focus::All)),
            ("work_order", Some(Focus::WorkOrder)),
            ("missing", Some(Focus::Missing)),
            ("stubs", Some(Focus::Stubs)),
            ("sources", Some(Focus::Sources)),
            ("macros", Some(Focus::Macros)),
            ("model: orders ", Some(Focus::Model("orders".into()))),
            ("model:", None),
            ("everything", None),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<Focus>().ok(), expected, "{input:?}");
        }
    }
}
