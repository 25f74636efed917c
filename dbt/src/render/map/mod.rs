//! The project map: compact markdown for an agent or a person, with the focus views of SignalPilot's
//! `dbt_project_map` (`all`, `work_order`, `missing`, `stubs`, `sources`, `macros`, `model:<name>`).
//!
//! This file holds the options, the dispatch and the helpers the views share; [`full`] renders `all`,
//! [`model`] one model, [`focus`] the other views.

mod focus;
mod full;
mod model;

use focus::{filtered, macros, sources, work_order};
use full::full;
use model::model;

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
