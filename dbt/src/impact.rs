//! The impact of a change: what breaks and what only changes downstream when a model's column is renamed,
//! dropped or changes type, or when a model is dropped; and, for CI, the column changes between a baseline
//! manifest and the working artifacts together with their blast radius.
//!
//! A downstream model breaks when its compiled SQL reads the column by name; a test breaks when it tests the
//! column (or a `relationships` test points at it). Everything the column's values flow into (downstream
//! columns, their tests, exposures) changes. Models without compiled SQL cannot be told apart: they are
//! listed as possibly affected, never silently left out.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::column_lineage::{Lineage, ModelTrace};
use crate::error::DbtError;
use crate::finding::{Finding, Location, Rule};
use crate::project::{Direction, NodeId, NodeKind, Project};

/// A change to a column, or to a whole model when there is no column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The column gets another name.
    Rename,
    /// The column (or the model) goes away.
    Drop,
    /// The column's type changes.
    Type,
    /// Its values change (a new expression); nothing is removed.
    Values,
}

impl ChangeKind {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Rename => "rename",
            ChangeKind::Drop => "drop",
            ChangeKind::Type => "type",
            ChangeKind::Values => "values",
        }
    }

    /// Whether readers that name the column stop working.
    fn removes_name(self) -> bool {
        matches!(self, ChangeKind::Rename | ChangeKind::Drop)
    }

    /// What the change does to a test on the column: a rename or drop breaks it, a type change changes it.
    fn test_effect(self) -> Effect {
        if self.removes_name() {
            Effect::Breaks
        } else {
            Effect::Changes
        }
    }
}

/// One change to assess.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Change {
    /// The changed node's display name.
    pub node: String,
    /// Its unique id.
    pub unique_id: String,
    /// The column; `None` for the whole model.
    pub column: Option<String>,
    /// What happens to it.
    pub kind: ChangeKind,
    /// For example `renamed to customer_key`, `type INTEGER -> VARCHAR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Whether a dependent stops working or only sees different data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// It fails (a missing column in its SQL, a test on a column that is gone).
    Breaks,
    /// Its data changes, or it cannot be told whether it breaks.
    Changes,
}

/// Something downstream of a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Impacted {
    /// Which change (index into [`Impact::changes`]).
    pub change: usize,
    /// Breaks or changes.
    pub effect: Effect,
    /// `model`, `snapshot`, `test` or `exposure`.
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub kind: NodeKind,
    /// Its display name.
    pub node: String,
    /// Its unique id.
    pub unique_id: String,
    /// The column concerned, for models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Models away from the change (1 = reads it directly).
    pub depth: usize,
    /// Why.
    pub reason: String,
    /// Its file, relative to the project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Changes and their blast radius.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Impact {
    /// The changes assessed.
    pub changes: Vec<Change>,
    /// What they reach, breaking first.
    pub impacted: Vec<Impacted>,
    /// What could not be assessed, one sentence each.
    pub notes: Vec<String>,
}

impl Impact {
    /// How many dependents break.
    pub fn breaking(&self) -> usize {
        self.impacted
            .iter()
            .filter(|i| i.effect == Effect::Breaks)
            .count()
    }
}

/// The impact of one change to `node` (a model, seed, snapshot or source) of the project.
pub fn impact(
    project: &Project,
    node: &str,
    column: Option<&str>,
    kind: ChangeKind,
) -> Result<Impact, DbtError> {
    impact_with(&mut Lineage::new(project), node, column, kind)
}

/// [`impact`] over a lineage whose traces may be shared (a server keeps them with the loaded project).
pub fn impact_with(
    lineage: &mut Lineage<'_>,
    node: &str,
    column: Option<&str>,
    kind: ChangeKind,
) -> Result<Impact, DbtError> {
    let project = lineage.project();
    let id = project
        .find(node)
        .filter(|id| project.node(*id).kind != NodeKind::Test)
        .ok_or_else(|| DbtError::UnknownNode(node.to_owned()))?;
    let column = match column {
        Some(c) => Some(lineage.column_name(id, c)?),
        None => None,
    };
    let mut out = Impact::default();
    assess(lineage, id, column.as_deref(), kind, &mut out);
    finish(&mut out);
    Ok(out)
}

/// The column changes from `baseline` (say, production's manifest) to `current` (the working artifacts), each
/// with its impact on `current`. Columns are compared as the compiled SQL produces them (else as built or
/// documented); a dropped and an added column computed from the same origins are a rename.
pub fn diff(baseline: &Project, current: &Project) -> Result<Impact, DbtError> {
    diff_with(baseline, &mut Lineage::new(current))
}

/// [`diff`] with the working project's lineage given, so that its traces may be shared.
pub fn diff_with(baseline: &Project, new: &mut Lineage<'_>) -> Result<Impact, DbtError> {
    let current = new.project();
    if !baseline.name.is_empty() && baseline.name != current.name {
        return Err(DbtError::BaselineMismatch {
            baseline: baseline.name.clone(),
            current: current.name.clone(),
        });
    }
    let mut old = Lineage::new(baseline);
    let mut out = Impact::default();
    for (old_id, node) in baseline.nodes.iter().enumerate() {
        if !matches!(node.kind, NodeKind::Model | NodeKind::Snapshot | NodeKind::Seed)
            || node.package != baseline.name
        {
            continue;
        }
        let Some(new_id) = current.id(&node.unique_id) else {
            assess_gone(current, node, &mut out);
            continue;
        };
        let (Some(before), Some(after)) = (old.output_columns(old_id), new.output_columns(new_id)) else {
            // A seed's columns are in its CSV, which no manifest holds: nothing to compare, nothing to say.
            if node.kind == NodeKind::Seed {
                continue;
            }
            out.notes.push(format!(
                "{}: its columns are unknown in the baseline or the working artifacts; not compared",
                node.display_name()
            ));
            continue;
        };
        let has = |cols: &[(String, Vec<String>)], name: &str| {
            cols.iter().any(|(c, _)| c.eq_ignore_ascii_case(name))
        };
        let dropped: Vec<&(String, Vec<String>)> = before.iter().filter(|(c, _)| !has(&after, c)).collect();
        let mut added: Vec<&(String, Vec<String>)> = after.iter().filter(|(c, _)| !has(&before, c)).collect();
        for (name, origins) in dropped {
            let renamed = (!origins.is_empty())
                .then(|| added.iter().position(|(_, o)| o == origins))
                .flatten()
                .map(|i| added.remove(i).0.clone());
            let (kind, detail) = match renamed {
                Some(to) => (ChangeKind::Rename, Some(format!("renamed to {to}"))),
                None => (ChangeKind::Drop, None),
            };
            push_change(new, new_id, name, kind, detail, &mut out);
        }
        let types = |p: &Project, id: NodeId| -> Vec<(String, String)> {
            let n = p.node(id);
            n.columns
                .iter()
                .filter_map(|c| Some((c.name.to_lowercase(), c.data_type.clone()?.to_lowercase())))
                .collect()
        };
        let after_types = types(current, new_id);
        for (name, before_type) in types(baseline, old_id) {
            if let Some((_, after_type)) = after_types.iter().find(|(n, t)| *n == name && *t != before_type) {
                let detail = Some(format!("type {before_type} -> {after_type}"));
                push_change(new, new_id, &name, ChangeKind::Type, detail, &mut out);
            }
        }
    }
    finish(&mut out);
    Ok(out)
}

fn push_change(
    lineage: &mut Lineage<'_>,
    id: NodeId,
    column: &str,
    kind: ChangeKind,
    detail: Option<String>,
    out: &mut Impact,
) {
    let index = out.changes.len();
    assess(lineage, id, Some(column), kind, out);
    if let Some(change) = out.changes.get_mut(index) {
        change.detail = detail;
    }
}

/// Adds a model that is gone since the baseline: whatever in the project still depends on it breaks.
fn assess_gone(project: &Project, gone: &crate::project::Node, out: &mut Impact) {
    let change = out.changes.len();
    out.changes.push(Change {
        node: gone.display_name(),
        unique_id: gone.unique_id.clone(),
        column: None,
        kind: ChangeKind::Drop,
        detail: Some("no longer in the working artifacts".to_owned()),
    });
    for id in 0..project.nodes.len() {
        let depends = project
            .parents(id)
            .iter()
            .any(|p| project.node(*p).unique_id == gone.unique_id);
        if depends {
            let reason = format!("depends on {}, which is gone", gone.display_name());
            push(out, change, Effect::Breaks, project, id, None, 1, reason);
        }
    }
}

/// Adds one change to node `id` of the lineage's project, and what it reaches.
fn assess(lineage: &mut Lineage<'_>, id: NodeId, column: Option<&str>, kind: ChangeKind, out: &mut Impact) {
    let project = lineage.project();
    let change = out.changes.len();
    let node = project.node(id);
    out.changes.push(Change {
        node: node.display_name(),
        unique_id: node.unique_id.clone(),
        column: column.map(str::to_owned),
        kind,
        detail: None,
    });
    let Some(column) = column else {
        // A whole model: its direct dependents break when it is dropped; everything downstream changes.
        for step in project.lineage(id, Direction::Downstream, None, true) {
            let effect = if kind == ChangeKind::Drop && step.depth == 1 {
                Effect::Breaks
            } else {
                Effect::Changes
            };
            let reason = if effect == Effect::Breaks {
                format!("depends on {}", node.display_name())
            } else {
                format!("downstream of {}", node.display_name())
            };
            push(out, change, effect, project, step.node, None, step.depth, reason);
        }
        return;
    };
    readers(lineage, id, column, kind, change, 1, &mut BTreeSet::new(), out);
    // Everything the values flow into.
    let walk = lineage.walk_from(id, column, Direction::Downstream, None);
    for edge in &walk.downstream {
        let Some(to) = project.id(&edge.to.unique_id) else {
            continue;
        };
        let reason = format!(
            "computed from {}.{} ({})",
            edge.from.node,
            edge.from.column,
            edge.kind.as_str()
        );
        push(
            out,
            change,
            Effect::Changes,
            project,
            to,
            Some(edge.to.column.clone()),
            edge.depth,
            reason,
        );
        // Tests on a column the change reaches see different data.
        for &t in project.children(to) {
            let tn = project.node(t);
            if tn.kind == NodeKind::Test
                && tn
                    .test
                    .as_ref()
                    .and_then(|i| i.column.as_deref())
                    .is_some_and(|c| c.eq_ignore_ascii_case(&edge.to.column))
            {
                push(
                    out,
                    change,
                    Effect::Changes,
                    project,
                    t,
                    None,
                    edge.depth,
                    format!("tests {}.{}", edge.to.node, edge.to.column),
                );
            }
        }
    }
    let mut exposures: BTreeSet<NodeId> = BTreeSet::new();
    for step in project.lineage(id, Direction::Downstream, None, false) {
        if project.node(step.node).kind == NodeKind::Exposure {
            exposures.insert(step.node);
        }
    }
    for e in exposures {
        push(
            out,
            change,
            Effect::Changes,
            project,
            e,
            None,
            0,
            "reads a model downstream of the change".to_owned(),
        );
    }
    out.notes.extend(walk.model_level);
}

/// What reads `column` of node `id` by name, `depth` models away from the change: models whose SQL names it
/// and tests on it break when the name goes away (and are affected otherwise). A model whose `SELECT *`
/// passes the column through keeps the upstream name, so a rename or drop removes the column from it as
/// well: its own readers are followed the same way.
#[allow(clippy::too_many_arguments)]
fn readers(
    lineage: &mut Lineage<'_>,
    id: NodeId,
    column: &str,
    kind: ChangeKind,
    change: usize,
    depth: usize,
    seen: &mut BTreeSet<(NodeId, String)>,
    out: &mut Impact,
) {
    if !seen.insert((id, column.to_lowercase())) {
        return;
    }
    let project = lineage.project();
    let node = project.node(id);
    let name = node.display_name();
    let by_name = if depth == 1 {
        "by name".to_owned()
    } else {
        format!("by name ({name} passes it through `SELECT *`)")
    };
    // Models that take the column's name from a `SELECT *` over this node, to follow after the loop.
    let mut through_star: Vec<(NodeId, String)> = Vec::new();
    // Direct readers: a model whose SQL names the column breaks when the name goes away.
    for &child in project.children(id) {
        let c = project.node(child);
        match c.kind {
            NodeKind::Model | NodeKind::Snapshot => match &*lineage.model(child) {
                ModelTrace::Traced(t) => {
                    if kind.removes_name() {
                        through_star.extend(
                            t.columns
                                .iter()
                                .filter(|c| {
                                    c.star
                                        && c.origins.iter().any(|o| {
                                            o.relation == node.unique_id
                                                && o.column.eq_ignore_ascii_case(column)
                                        })
                                })
                                .map(|c| (child, c.name.clone())),
                        );
                    }
                    let reads = t
                        .reads
                        .iter()
                        .any(|(r, col)| *r == node.unique_id && col.eq_ignore_ascii_case(column));
                    if reads && kind.removes_name() {
                        push(
                            out,
                            change,
                            Effect::Breaks,
                            project,
                            child,
                            None,
                            depth,
                            format!("its SQL reads {name}.{column} {by_name}"),
                        );
                    } else if reads {
                        push(
                            out,
                            change,
                            Effect::Changes,
                            project,
                            child,
                            None,
                            depth,
                            format!("reads {name}.{column}"),
                        );
                    }
                }
                ModelTrace::Untraced(why) => {
                    out.notes.push(format!(
                        "{}: cannot tell whether it reads {name}.{column}: {why}",
                        c.display_name()
                    ));
                    push(
                        out,
                        change,
                        Effect::Changes,
                        project,
                        child,
                        None,
                        depth,
                        format!("reads {name}; whether it reads the column is unknown"),
                    );
                }
            },
            NodeKind::Test => {
                let on_column = c.test.as_ref().is_some_and(|t| {
                    t.attached.as_deref() == Some(&node.unique_id)
                        && t.column
                            .as_deref()
                            .is_some_and(|tc| tc.eq_ignore_ascii_case(column))
                });
                if on_column {
                    let effect = kind.test_effect();
                    push(
                        out,
                        change,
                        effect,
                        project,
                        child,
                        None,
                        depth,
                        format!("tests {name}.{column}"),
                    );
                }
            }
            _ => {}
        }
    }
    // Relationships tests elsewhere that point at the column.
    for (tid, t) in project.nodes.iter().enumerate() {
        for test in &t.tests {
            let points = test
                .references
                .as_ref()
                .is_some_and(|r| r.node == node.unique_id && r.field.eq_ignore_ascii_case(column));
            if points {
                let effect = kind.test_effect();
                push(
                    out,
                    change,
                    effect,
                    project,
                    tid,
                    test.column.clone(),
                    depth,
                    format!(
                        "its relationships test on {} references {name}.{column}",
                        test.column.as_deref().unwrap_or("?")
                    ),
                );
            }
        }
    }
    for (child, child_column) in through_star {
        readers(lineage, child, &child_column, kind, change, depth + 1, seen, out);
    }
}

#[allow(clippy::too_many_arguments)]
fn push(
    out: &mut Impact,
    change: usize,
    effect: Effect,
    project: &Project,
    id: NodeId,
    column: Option<String>,
    depth: usize,
    reason: String,
) {
    let node = project.node(id);
    out.impacted.push(Impacted {
        change,
        effect,
        kind: node.kind,
        node: node.display_name(),
        unique_id: node.unique_id.clone(),
        column,
        depth,
        reason,
        path: node.path.clone(),
    });
}

/// Sorts (breaking first, then by change, depth and name) and keeps one entry per dependent, column and
/// change, the breaking one when there are two.
fn finish(out: &mut Impact) {
    out.impacted.sort_by(|a, b| {
        (a.change, a.effect, a.depth, &a.node, &a.column)
            .cmp(&(b.change, b.effect, b.depth, &b.node, &b.column))
    });
    let mut seen = BTreeSet::new();
    out.impacted
        .retain(|i| seen.insert((i.change, i.unique_id.clone(), i.column.clone())));
    out.impacted.sort_by(|a, b| {
        (a.effect, a.change, a.depth, &a.node, &a.column)
            .cmp(&(b.effect, b.change, b.depth, &b.node, &b.column))
    });
    out.notes.sort();
    out.notes.dedup();
}

/// Findings for CI: each breaking dependent (DBT801, error) and each changed one (DBT802, warning).
pub fn findings(impact: &Impact) -> Vec<Finding> {
    let mut out: Vec<Finding> = impact
        .impacted
        .iter()
        .map(|i| {
            let change = &impact.changes[i.change];
            let what = describe(change);
            let target = match &i.column {
                Some(c) => format!("{} `{}.{c}`", i.kind.as_str(), i.node),
                None => format!("{} `{}`", i.kind.as_str(), i.node),
            };
            let (rule, verb) = match i.effect {
                Effect::Breaks => (Rule::ChangeBreaks, "breaks"),
                Effect::Changes => (Rule::ChangeAffects, "affects"),
            };
            Finding::new(rule, format!("{what} {verb} {target}: {}", i.reason))
                .node(i.unique_id.clone())
                .located(i.path.clone().map(|p| Location::at(p, None)))
        })
        .collect();
    Finding::sort(&mut out);
    out
}

fn describe(change: &Change) -> String {
    let subject = match &change.column {
        Some(c) => format!("`{}.{c}`", change.node),
        None => format!("`{}`", change.node),
    };
    match &change.detail {
        Some(d) => format!("{} of {subject} ({d})", change.kind.as_str()),
        None => format!("{} of {subject}", change.kind.as_str()),
    }
}

/// The text report.
pub fn render(impact: &Impact) -> String {
    let mut out = String::new();
    if impact.changes.is_empty() {
        out.push_str("No column changes.\n");
    }
    for (index, change) in impact.changes.iter().enumerate() {
        let of: Vec<&Impacted> = impact.impacted.iter().filter(|i| i.change == index).collect();
        let breaks = of.iter().filter(|i| i.effect == Effect::Breaks).count();
        let _ = writeln!(
            out,
            "# {}: {breaks} break, {} change",
            describe(change),
            of.len() - breaks
        );
        for i in of {
            let target = match &i.column {
                Some(c) => format!("{}.{c}", i.node),
                None => i.node.clone(),
            };
            let _ = writeln!(
                out,
                "  {:<7} {:>2}  {:<8} {target}  ({})",
                match i.effect {
                    Effect::Breaks => "BREAKS",
                    Effect::Changes => "changes",
                },
                i.depth,
                i.kind.as_str(),
                i.reason
            );
        }
    }
    if !impact.notes.is_empty() {
        let _ = writeln!(out, "\nNot assessed ({}):", impact.notes.len());
        for n in &impact.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}
