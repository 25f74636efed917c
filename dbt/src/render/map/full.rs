//! The whole-project map (`all`): where the facts come from, the models by directory with their columns and
//! refs, the work order, sources, exposures, macros, unresolved refs and cycles, and the hazards the
//! findings name.

use super::*;

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

pub(super) fn full(analysis: &Analysis, findings: &[Finding], options: &MapOptions) -> String {
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
