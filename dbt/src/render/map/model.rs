//! One model's view (`model:<name>`): its facts (materialization, keys, relation, last run), description,
//! what it reads and what reads it, its columns and tests, and the findings about it.

use super::*;

pub(super) fn model(analysis: &Analysis, findings: &[Finding], name: &str) -> String {
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
