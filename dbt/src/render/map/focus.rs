//! The narrow focus views: the work order, missing and stub models, sources and macros.

use super::*;

pub(super) fn work_order(analysis: &Analysis) -> String {
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
        deps_desc_cols(&mut out, "     ", node, &deps);
        let _ = writeln!(out);
    }
    unresolved_and_cycles(analysis, &mut out, "");
    out
}

pub(super) fn filtered(project: &Project, wanted: ModelStatus, title: &str) -> String {
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
        deps_desc_cols(&mut out, "   ", node, &deps);
        let _ = writeln!(out);
    }
    out
}

pub(super) fn sources(project: &Project) -> String {
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

pub(super) fn macros(project: &Project) -> String {
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

/// A model's dependencies, description and columns, one line each under `indent` (the last two only when
/// there are any).
fn deps_desc_cols(out: &mut String, indent: &str, node: &Node, deps: &[String]) {
    let deps = if deps.is_empty() {
        "no refs".to_owned()
    } else {
        deps.join(", ")
    };
    let _ = writeln!(out, "{indent}deps: {deps}");
    if !node.description.is_empty() {
        let _ = writeln!(out, "{indent}desc: {}", first_line(&node.description, 200));
    }
    let cols: Vec<String> = node.columns.iter().map(|c| c.name.clone()).collect();
    if !cols.is_empty() {
        let _ = writeln!(out, "{indent}cols: {}", list(&cols, 15));
    }
}
