//! Work order: the models that need work, in the order to build them (Kahn's algorithm), and the cycles
//! that make an order impossible.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};

use crate::finding::{Finding, Rule};
use crate::project::{NodeId, NodeKind, Project};

/// One model to work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    /// The model.
    pub node: NodeId,
    /// Why it needs work: `missing SQL`, `stub: ...`, `errored in the last run`...
    pub reasons: Vec<String>,
}

/// The models to work on, dependencies first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkOrder {
    /// In build order; models caught in a cycle come last, by name.
    pub items: Vec<WorkItem>,
    /// Each cycle as a closed path: `[a, b, a]`.
    pub cycles: Vec<Vec<NodeId>>,
}

/// Orders `needs_work` by dependency over the whole model graph, so a model comes after everything it
/// depends on even through models that need no work. Ties are broken by name, so the order is stable.
pub fn work_order(
    project: &Project,
    needs_work: &BTreeMap<NodeId, Vec<String>>,
) -> (WorkOrder, Vec<Finding>) {
    let in_graph = |id: NodeId| project.node(id).kind.is_refable();
    let name = |id: NodeId| project.node(id).name.clone();
    let nodes: Vec<NodeId> = (0..project.nodes.len()).filter(|&id| in_graph(id)).collect();
    let mut indegree = vec![0usize; project.nodes.len()];
    for &id in &nodes {
        // A self-reference counts, so a model that refs itself never becomes ready and is reported as a cycle.
        indegree[id] = project.parents(id).iter().filter(|&&p| in_graph(p)).count();
    }
    let mut ready: BinaryHeap<Reverse<(String, NodeId)>> = nodes
        .iter()
        .filter(|&&id| indegree[id] == 0)
        .map(|&id| Reverse((name(id), id)))
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse((_, id))) = ready.pop() {
        order.push(id);
        for &child in project.children(id) {
            if in_graph(child) && child != id {
                indegree[child] -= 1;
                if indegree[child] == 0 {
                    ready.push(Reverse((name(child), child)));
                }
            }
        }
    }
    let placed: HashSet<NodeId> = order.iter().copied().collect();
    let mut stuck: Vec<NodeId> = nodes.iter().copied().filter(|id| !placed.contains(id)).collect();
    stuck.sort_by_key(|&id| name(id));

    let cycles = cycles(project, &stuck);
    // A model in a cycle needs work even if nothing else is wrong with it: dbt will not build the project.
    let in_cycle: HashSet<NodeId> = cycles.iter().flatten().copied().collect();
    let items: Vec<WorkItem> = order
        .iter()
        .chain(stuck.iter())
        .filter(|&&id| project.node(id).kind == NodeKind::Model)
        .filter_map(|&id| {
            let mut reasons = needs_work.get(&id).cloned().unwrap_or_default();
            if in_cycle.contains(&id) {
                reasons.push("part of a ref cycle".to_owned());
            }
            (!reasons.is_empty()).then_some(WorkItem { node: id, reasons })
        })
        .collect();
    let findings = cycles
        .iter()
        .map(|cycle| {
            let names: Vec<String> = cycle.iter().map(|&id| name(id)).collect();
            let first = project.node(cycle[0]);
            Finding::new(
                Rule::RefCycle,
                format!("models depend on each other in a cycle: {}", names.join(" → ")),
            )
            .node(&first.unique_id)
            .located(first.path.as_ref().map(|p| crate::finding::Location::at(p, None)))
        })
        .collect();
    (WorkOrder { items, cycles }, findings)
}

/// The cycles among the nodes Kahn could not place: strongly connected components (Tarjan, iterative so
/// deep graphs cannot overflow the stack), each reported as one closed path through it.
fn cycles(project: &Project, stuck: &[NodeId]) -> Vec<Vec<NodeId>> {
    let members: HashSet<NodeId> = stuck.iter().copied().collect();
    let succ = |id: NodeId| -> Vec<NodeId> {
        project
            .children(id)
            .iter()
            .copied()
            .filter(|c| members.contains(c))
            .collect()
    };
    let n = project.nodes.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut components = Vec::new();
    for &start in stuck {
        if index[start] != usize::MAX {
            continue;
        }
        let mut call: Vec<(NodeId, Vec<NodeId>, usize)> = vec![(start, succ(start), 0)];
        index[start] = next;
        low[start] = next;
        next += 1;
        stack.push(start);
        on_stack[start] = true;
        while let Some((v, children, i)) = call.last_mut() {
            let v = *v;
            if let Some(&w) = children.get(*i) {
                *i += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, succ(w), 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some((parent, _, _)) = call.last() {
                low[*parent] = low[*parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                let self_loop = component.len() == 1 && project.parents(v).contains(&v);
                if component.len() > 1 || self_loop {
                    components.push(component);
                }
            }
        }
    }
    let mut out: Vec<Vec<NodeId>> = components
        .into_iter()
        .filter_map(|component| closed_path(project, &component))
        .collect();
    out.sort_by_key(|c| project.node(c[0]).name.clone());
    out
}

/// A closed path through a strongly connected component, starting at its first model by name, found by a
/// breadth-first search back to the start (so it is a shortest cycle through that model).
fn closed_path(project: &Project, component: &[NodeId]) -> Option<Vec<NodeId>> {
    let members: HashSet<NodeId> = component.iter().copied().collect();
    let start = *component.iter().min_by_key(|&&id| (&project.node(id).name, id))?;
    let mut previous: BTreeMap<NodeId, NodeId> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in project.parents(v).iter().filter(|w| members.contains(w)) {
            // `v` depends on `w`; reaching `start` closes the cycle.
            if w == start {
                let mut path = vec![start];
                let mut cur = v;
                while cur != start {
                    path.push(cur);
                    cur = *previous.get(&cur)?;
                }
                path.push(start);
                // Each model feeds the next one: the order data flows in, as lineage is drawn.
                return Some(path);
            }
            if let std::collections::btree_map::Entry::Vacant(e) = previous.entry(w) {
                e.insert(v);
                queue.push_back(w);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{ProjectFile, ProjectFiles, scan};
    use pretty_assertions::assert_eq;

    fn project(models: &[(&str, &str)]) -> Project {
        let files = ProjectFiles {
            dbt_project: Some(ProjectFile {
                path: "dbt_project.yml".into(),
                contents: "name: p\n".into(),
                modified: None,
            }),
            files: models
                .iter()
                .map(|(name, sql)| ProjectFile {
                    path: format!("models/{name}.sql"),
                    contents: (*sql).into(),
                    modified: None,
                })
                .collect(),
        };
        Project::build(None, Some(&scan(&files).0)).0
    }

    fn check(models: &[(&str, &str)], needs: &[&str], expected_order: &[&str], expected_cycles: &[&[&str]]) {
        let p = project(models);
        let needs_work: BTreeMap<NodeId, Vec<String>> = needs
            .iter()
            .map(|n| (p.find(n).expect("model"), vec!["test".to_owned()]))
            .collect();
        let (order, findings) = work_order(&p, &needs_work);
        let names: Vec<&str> = order.items.iter().map(|i| p.node(i.node).name.as_str()).collect();
        assert_eq!(names, expected_order);
        let cycles: Vec<Vec<&str>> = order
            .cycles
            .iter()
            .map(|c| c.iter().map(|&id| p.node(id).name.as_str()).collect())
            .collect();
        assert_eq!(cycles, expected_cycles);
        assert_eq!(findings.len(), expected_cycles.len());
    }

    #[test]
    fn orders_through_models_that_need_no_work() {
        // c needs b needs a; only a and c need work, and c must still come after a.
        check(
            &[
                ("c", "select * from {{ ref('b') }}"),
                ("b", "select * from {{ ref('a') }}"),
                ("a", "select 1"),
            ],
            &["c", "a"],
            &["a", "c"],
            &[],
        );
        // Independent models come out by name.
        check(
            &[("z", "select 1"), ("y", "select 1")],
            &["z", "y"],
            &["y", "z"],
            &[],
        );
    }

    #[test]
    fn reports_cycles() {
        check(
            &[
                ("a", "select * from {{ ref('b') }}"),
                ("b", "select * from {{ ref('a') }}"),
                ("c", "select * from {{ ref('a') }}"),
                ("d", "select 1"),
            ],
            &["c", "d"],
            &["d", "a", "b", "c"],
            &[&["a", "b", "a"]],
        );
        check(
            &[("s", "select * from {{ ref('s') }}")],
            &["s"],
            &["s"],
            &[&["s", "s"]],
        );
        check(
            &[
                ("a", "select * from {{ ref('c') }}"),
                ("b", "select * from {{ ref('a') }}"),
                ("c", "select * from {{ ref('b') }}"),
            ],
            &[],
            &["a", "b", "c"],
            &[&["a", "b", "c", "a"]],
        );
    }
}
