//! Column-level lineage across a project: each model's compiled SQL is traced ([`trace`]) with the relations it
//! reads resolved to the project's nodes, and a column's lineage is walked upstream (where its values come
//! from) and downstream (which columns read it), one model at a time and only the models on the way.
//!
//! Models without compiled SQL (the manifest came from `dbt parse`, or only raw Jinja is known) are not
//! guessed at: the walk says so and falls back to their model-level parents and children.

pub mod trace;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use sluice_dialect::Dialect;

use crate::error::DbtError;
use crate::project::{Direction, NodeId, NodeKind, Project};
use trace::{Origin, RelationInfo, Traced, Transform};

/// How an output column relates to one origin column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// The same value under the same name.
    Passthrough,
    /// The same value under another name.
    Renamed,
    /// Computed from it: see the transform and the expression.
    Transformed,
}

impl EdgeKind {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Passthrough => "passthrough",
            EdgeKind::Renamed => "renamed",
            EdgeKind::Transformed => "transformed",
        }
    }

    fn of(origin: &Origin, output: &str) -> EdgeKind {
        if origin.transform.is_some() {
            EdgeKind::Transformed
        } else if origin.column.eq_ignore_ascii_case(output) {
            EdgeKind::Passthrough
        } else {
            EdgeKind::Renamed
        }
    }
}

/// A column of a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ColumnRef {
    /// The node's display name (`stg_orders`, `jaffle_raw.orders`).
    pub node: String,
    /// Its unique id.
    pub unique_id: String,
    /// The column; `*` stands for the node's rows (`count(*)`).
    pub column: String,
}

/// One step of data flow: `from` feeds `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ColumnEdge {
    /// Models away from the start column (1 = direct).
    pub depth: usize,
    /// The column read.
    pub from: ColumnRef,
    /// The column computed.
    pub to: ColumnRef,
    /// Passthrough, renamed or transformed.
    pub kind: EdgeKind,
    /// For transformed edges: expression, aggregate or window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform: Option<Transform>,
    /// The expressions applied inside the model, outermost first, joined by ` <- `.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// A column's lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ColumnLineage {
    /// The start column.
    pub start: ColumnRef,
    /// The SQL dialect the models were parsed in.
    pub dialect: String,
    /// Edges towards the sources, nearest first.
    pub upstream: Vec<ColumnEdge>,
    /// Edges towards the consumers, nearest first.
    pub downstream: Vec<ColumnEdge>,
    /// Exposures that read a model the column flows into.
    pub exposures: Vec<String>,
    /// Models whose SQL could not be traced, and the model-level lineage shown instead.
    pub model_level: Vec<String>,
    /// What inside a traced model could not be attributed, as `model: what`.
    pub unresolved: Vec<String>,
    /// Whether a side stopped at [`Lineage::max_edges`]: the farther edges (and the exposures and models past
    /// them) were not walked.
    pub truncated: bool,
}

/// What tracing a model's SQL gave.
#[derive(Debug, Clone)]
pub enum ModelTrace {
    /// Its output columns and their origins.
    Traced(Traced),
    /// No compiled SQL: the reason.
    Untraced(String),
}

/// The traced models of one project, shared by every walk over it and safe to share between threads: each
/// model is traced at most once (the first walk to reach it does the work, a concurrent one waits for it),
/// so a server that keeps a loaded project keeps this beside it and answers later walks from memory.
///
/// The memory it holds is bounded by the project: one trace per model or snapshot, never more (about
/// 3 KB a model on the 10,000-model benchmark project; BENCHMARKS.md).
pub struct Traces {
    dialect: Dialect,
    /// Nodes by lowercase relation identifier.
    relations: HashMap<String, Vec<NodeId>>,
    /// One slot per node of the project, filled when the node is first traced.
    slots: Vec<OnceLock<Arc<ModelTrace>>>,
    traced: AtomicUsize,
}

impl Traces {
    /// An empty cache for `project`: nothing is traced yet.
    pub fn new(project: &Project) -> Self {
        let dialect = project
            .provenance
            .adapter
            .as_deref()
            .and_then(Dialect::from_kind)
            .unwrap_or(Dialect::Unknown);
        let mut relations: HashMap<String, Vec<NodeId>> = HashMap::new();
        for (id, node) in project.nodes.iter().enumerate() {
            if let Some(r) = &node.relation {
                relations.entry(r.identifier.to_lowercase()).or_default().push(id);
            }
        }
        Traces {
            dialect,
            relations,
            slots: (0..project.nodes.len()).map(|_| OnceLock::new()).collect(),
            traced: AtomicUsize::new(0),
        }
    }

    /// How many models have been traced so far.
    pub fn traced(&self) -> usize {
        self.traced.load(Ordering::Relaxed)
    }

    /// Traces every model and snapshot not traced yet, in node order, while `go_on()` says so (a server
    /// stops when it no longer keeps the project). Returns how many this call traced.
    pub fn trace_all(&self, project: &Project, go_on: impl Fn() -> bool) -> usize {
        let mut count = 0;
        for (id, node) in project.nodes.iter().enumerate() {
            if !is_traceable(node.kind) || self.slots.get(id).is_some_and(|s| s.get().is_some()) {
                continue;
            }
            if !go_on() {
                break;
            }
            self.model(project, id);
            count += 1;
        }
        count
    }

    /// The trace of one model or snapshot, traced now if it was not yet.
    fn model(&self, project: &Project, id: NodeId) -> Arc<ModelTrace> {
        match self.slots.get(id) {
            Some(slot) => Arc::clone(slot.get_or_init(|| {
                self.traced.fetch_add(1, Ordering::Relaxed);
                Arc::new(self.trace_model(project, id))
            })),
            // Only reachable with a project other than the one the cache was made for: trace, keep nothing.
            None => Arc::new(self.trace_model(project, id)),
        }
    }

    fn trace_model(&self, project: &Project, id: NodeId) -> ModelTrace {
        let node = project.node(id);
        let Some(sql) = &node.compiled_sql else {
            return ModelTrace::Untraced(if node.sql.is_some() {
                "the manifest has no compiled SQL for it, only raw Jinja (run `dbt compile` or `dbt build`)"
                    .to_owned()
            } else {
                "no SQL is known for it".to_owned()
            });
        };
        let resolve = |parts: &[String]| self.resolve(project, id, parts);
        match trace::trace(sql, self.dialect.parser(), &resolve) {
            Ok(traced) => ModelTrace::Traced(traced),
            Err(e) => ModelTrace::Untraced(format!(
                "its compiled SQL does not parse as {}: {e}",
                self.dialect.title()
            )),
        }
    }

    /// The node a table name in `model`'s SQL stands for: same identifier, schema and database where given;
    /// among several (a seed and a source over one table), the model's own parents first.
    fn resolve(&self, project: &Project, model: NodeId, parts: &[String]) -> Option<RelationInfo> {
        let (identifier, qualifiers) = parts.split_last()?;
        let candidates = self.relations.get(&identifier.to_lowercase())?;
        let fits = |id: &NodeId| {
            let Some(r) = &project.node(*id).relation else {
                return false;
            };
            let same = |want: &String, have: &Option<String>| {
                have.as_deref().is_none_or(|h| h.eq_ignore_ascii_case(want))
            };
            match qualifiers {
                [] => true,
                [schema] => same(schema, &r.schema),
                [.., database, schema] => same(schema, &r.schema) && same(database, &r.database),
            }
        };
        let fitting: Vec<NodeId> = candidates.iter().copied().filter(fits).collect();
        let parents = project.parents(model);
        let id = fitting
            .iter()
            .copied()
            .find(|id| parents.contains(id) || *id == model)
            .or_else(|| fitting.first().copied())?;
        Some(RelationInfo {
            key: project.node(id).unique_id.clone(),
            columns: node_columns(project, id),
        })
    }
}

/// A node's columns: as built (catalog), else as documented; `None` when neither is known.
fn node_columns(project: &Project, id: NodeId) -> Option<Vec<String>> {
    let node = project.node(id);
    if let Some(cols) = &node.catalog_columns {
        return Some(cols.iter().map(|(n, _)| n.clone()).collect());
    }
    (!node.columns.is_empty()).then(|| node.columns.iter().map(|c| c.name.clone()).collect())
}

/// Walks column lineage over one project, tracing models on demand through a [`Traces`] cache.
pub struct Lineage<'p> {
    project: &'p Project,
    traces: Arc<Traces>,
    max_edges: Option<usize>,
}

impl<'p> Lineage<'p> {
    /// Prepares lineage for a project with a cache of its own; models are traced when a walk reaches them.
    pub fn new(project: &'p Project) -> Self {
        Lineage::with_traces(project, Arc::new(Traces::new(project)))
    }

    /// Prepares lineage with a shared cache, which must have been made for this `project` ([`Traces::new`]):
    /// models traced by earlier walks are not traced again.
    pub fn with_traces(project: &'p Project, traces: Arc<Traces>) -> Self {
        Lineage {
            project,
            traces,
            max_edges: None,
        }
    }

    /// Stops each side of a walk after `max` edges (the nearest, as the walk is breadth-first), so a widely
    /// used column stays readable in an agent's context and costs only the models on the way to them.
    #[must_use]
    pub fn max_edges(mut self, max: usize) -> Self {
        self.max_edges = Some(max);
        self
    }

    fn full(&self, edges: &[ColumnEdge]) -> bool {
        self.max_edges.is_some_and(|max| edges.len() >= max)
    }

    /// The project.
    pub fn project(&self) -> &'p Project {
        self.project
    }

    /// A node's output columns with their origins as `relation.column` strings (sorted): traced from the
    /// compiled SQL, else as built or documented (without origins); `None` when nothing is known.
    pub fn output_columns(&mut self, id: NodeId) -> Option<Vec<(String, Vec<String>)>> {
        if is_traceable(self.project.node(id).kind)
            && let ModelTrace::Traced(t) = &*self.model(id)
            && !t.columns.is_empty()
        {
            return Some(
                t.columns
                    .iter()
                    .map(|c| {
                        let mut origins: Vec<String> = c
                            .origins
                            .iter()
                            .map(|o| format!("{}.{}", o.relation, o.column.to_lowercase()))
                            .collect();
                        origins.sort();
                        (c.name.clone(), origins)
                    })
                    .collect(),
            );
        }
        self.columns(id)
            .map(|cols| cols.into_iter().map(|c| (c, Vec::new())).collect())
    }

    /// The column's name as the node spells it, or why the node has no such column.
    pub fn column_name(&mut self, id: NodeId, column: &str) -> Result<String, DbtError> {
        self.check_column(id, column)
    }

    /// The dialect the models are parsed in (from the manifest's adapter; generic when unknown).
    pub fn dialect(&self) -> Dialect {
        self.traces.dialect
    }

    /// The trace of one model or snapshot.
    pub fn model(&mut self, id: NodeId) -> Arc<ModelTrace> {
        self.traces.model(self.project, id)
    }

    /// A node's columns: as built (catalog), else as documented; `None` when neither is known.
    pub fn columns(&self, id: NodeId) -> Option<Vec<String>> {
        node_columns(self.project, id)
    }

    fn column_ref(&self, id: NodeId, column: &str) -> ColumnRef {
        let node = self.project.node(id);
        ColumnRef {
            node: node.display_name(),
            unique_id: node.unique_id.clone(),
            column: column.to_owned(),
        }
    }

    /// The column's name as the node spells it, or why it is not a column of the node. The traced output
    /// and the catalog are both asked: a `SELECT *` the tracer could not expand leaves the first incomplete.
    fn check_column(&mut self, id: NodeId, column: &str) -> Result<String, DbtError> {
        let mut known: Vec<String> = Vec::new();
        if is_traceable(self.project.node(id).kind)
            && let ModelTrace::Traced(t) = &*self.model(id)
        {
            known.extend(t.columns.iter().map(|c| c.name.clone()));
        }
        for c in self.columns(id).unwrap_or_default() {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(&c)) {
                known.push(c);
            }
        }
        if known.is_empty() {
            return Ok(column.to_owned());
        }
        known
            .iter()
            .find(|c| c.eq_ignore_ascii_case(column))
            .cloned()
            .ok_or_else(|| DbtError::UnknownColumn {
                node: self.project.node(id).display_name(),
                column: column.to_owned(),
                known: known.join(", "),
            })
    }

    /// Walks a column's lineage. `node` is a model, seed, snapshot or source (as [`Project::find`] takes it).
    pub fn walk(
        &mut self,
        node: &str,
        column: &str,
        direction: Direction,
        depth: Option<usize>,
    ) -> Result<ColumnLineage, DbtError> {
        let start = self
            .project
            .find(node)
            .filter(|id| self.project.node(*id).kind != NodeKind::Test)
            .ok_or_else(|| DbtError::UnknownNode(node.to_owned()))?;
        let column = self.check_column(start, column)?;
        Ok(self.walk_from(start, &column, direction, depth))
    }

    /// Walks a column's lineage without checking that the node has the column: impact analysis asks about
    /// columns that a change removed.
    pub fn walk_from(
        &mut self,
        start: NodeId,
        column: &str,
        direction: Direction,
        depth: Option<usize>,
    ) -> ColumnLineage {
        let column = column.to_owned();
        let mut out = ColumnLineage {
            start: self.column_ref(start, &column),
            dialect: self.traces.dialect.name().to_owned(),
            upstream: Vec::new(),
            downstream: Vec::new(),
            exposures: Vec::new(),
            model_level: Vec::new(),
            unresolved: Vec::new(),
            truncated: false,
        };
        let mut noted: HashSet<NodeId> = HashSet::new();
        if direction != Direction::Downstream {
            self.upstream(start, &column, depth, &mut out, &mut noted);
        }
        if direction != Direction::Upstream {
            self.downstream(start, &column, depth, &mut out, &mut noted);
        }
        if let Some(max) = self.max_edges {
            for edges in [&mut out.upstream, &mut out.downstream] {
                if edges.len() > max {
                    edges.truncate(max);
                    out.truncated = true;
                }
            }
        }
        out.exposures.sort();
        out.exposures.dedup();
        out
    }

    /// Records a model's unresolved items, or why it was not traced and its model-level neighbours, once.
    fn note(&mut self, id: NodeId, upstream: bool, out: &mut ColumnLineage, noted: &mut HashSet<NodeId>) {
        if !noted.insert(id) {
            return;
        }
        let name = self.project.node(id).display_name();
        match &*self.model(id) {
            ModelTrace::Traced(t) => {
                out.unresolved
                    .extend(t.unresolved.iter().map(|u| format!("{name}: {u}")));
            }
            ModelTrace::Untraced(why) => {
                let neighbours = if upstream {
                    self.project.parents(id)
                } else {
                    self.project.children(id)
                };
                let names: Vec<String> = neighbours
                    .iter()
                    .map(|n| self.project.node(*n))
                    .filter(|n| n.kind != NodeKind::Test)
                    .map(|n| n.display_name())
                    .collect();
                out.model_level.push(format!(
                    "{name}: column lineage unavailable, {why}; model-level {}: {}",
                    if upstream { "parents" } else { "children" },
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ));
            }
        }
    }

    fn upstream(
        &mut self,
        start: NodeId,
        column: &str,
        depth: Option<usize>,
        out: &mut ColumnLineage,
        noted: &mut HashSet<NodeId>,
    ) {
        let mut seen: HashSet<(NodeId, String)> = HashSet::from([(start, column.to_lowercase())]);
        let mut queue = VecDeque::from([(start, column.to_owned(), 0usize)]);
        while let Some((id, col, d)) = queue.pop_front() {
            if self.full(&out.upstream) {
                out.truncated = true;
                break;
            }
            if depth.is_some_and(|max| d >= max) || !is_traceable(self.project.node(id).kind) {
                continue;
            }
            let trace = self.model(id);
            self.note(id, true, out, noted);
            let ModelTrace::Traced(traced) = &*trace else {
                continue;
            };
            let Some(output) = traced.columns.iter().find(|c| c.name.eq_ignore_ascii_case(&col)) else {
                continue;
            };
            for origin in &output.origins {
                let Some(from) = self.project.id(&origin.relation) else {
                    continue;
                };
                out.upstream
                    .push(self.edge(d + 1, from, origin, id, &output.name));
                if from != id && origin.column != "*" && seen.insert((from, origin.column.to_lowercase())) {
                    queue.push_back((from, origin.column.clone(), d + 1));
                }
            }
        }
    }

    fn downstream(
        &mut self,
        start: NodeId,
        column: &str,
        depth: Option<usize>,
        out: &mut ColumnLineage,
        noted: &mut HashSet<NodeId>,
    ) {
        let mut seen: HashSet<(NodeId, String)> = HashSet::from([(start, column.to_lowercase())]);
        let mut queue = VecDeque::from([(start, column.to_owned(), 0usize)]);
        while let Some((id, col, d)) = queue.pop_front() {
            if self.full(&out.downstream) {
                out.truncated = true;
                break;
            }
            if depth.is_some_and(|max| d >= max) {
                continue;
            }
            let unique_id = self.project.node(id).unique_id.clone();
            for &child in self.project.children(id) {
                let kind = self.project.node(child).kind;
                if kind == NodeKind::Exposure {
                    out.exposures.push(self.project.node(child).display_name());
                    continue;
                }
                if !is_traceable(kind) || child == id {
                    continue;
                }
                let trace = self.model(child);
                self.note(child, false, out, noted);
                let ModelTrace::Traced(traced) = &*trace else {
                    continue;
                };
                for output in &traced.columns {
                    for origin in &output.origins {
                        if origin.relation == unique_id && origin.column.eq_ignore_ascii_case(&col) {
                            out.downstream
                                .push(self.edge(d + 1, id, origin, child, &output.name));
                            if seen.insert((child, output.name.to_lowercase())) {
                                queue.push_back((child, output.name.clone(), d + 1));
                            }
                        }
                    }
                }
            }
        }
    }

    fn edge(&self, depth: usize, from: NodeId, origin: &Origin, to: NodeId, to_column: &str) -> ColumnEdge {
        ColumnEdge {
            depth,
            from: self.column_ref(from, &origin.column),
            to: self.column_ref(to, to_column),
            kind: EdgeKind::of(origin, to_column),
            transform: origin.transform,
            expression: (!origin.expressions.is_empty()).then(|| origin.expressions.join(" <- ")),
        }
    }
}

fn is_traceable(kind: NodeKind) -> bool {
    matches!(kind, NodeKind::Model | NodeKind::Snapshot)
}

/// The compact text form, for agents and the terminal.
pub fn render(lineage: &ColumnLineage, direction: Direction) -> String {
    let s = &lineage.start;
    let mut out = format!("# Column lineage of {}.{} ({})\n", s.node, s.column, s.unique_id);
    for (title, edges, shown) in [
        ("Upstream", &lineage.upstream, direction != Direction::Downstream),
        (
            "Downstream",
            &lineage.downstream,
            direction != Direction::Upstream,
        ),
    ] {
        if !shown {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({}):", edges.len());
        for e in edges {
            let _ = write!(
                out,
                "  {:>2}  {}.{} -> {}.{}  {}",
                e.depth,
                e.from.node,
                e.from.column,
                e.to.node,
                e.to.column,
                e.kind.as_str()
            );
            if let Some(t) = e.transform {
                let _ = write!(out, " ({})", t.as_str());
            }
            if let Some(x) = &e.expression {
                let _ = write!(out, ": {x}");
            }
            out.push('\n');
        }
    }
    if lineage.truncated {
        out.push_str("\n(stopped at the edge limit: farther edges were not walked; lower the depth or pick one direction)\n");
    }
    if !lineage.exposures.is_empty() {
        let _ = writeln!(out, "\nExposures: {}", lineage.exposures.join(", "));
    }
    for (title, items) in [
        ("Model-level only", &lineage.model_level),
        ("Unresolved", &lineage.unresolved),
    ] {
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({}):", items.len());
        for item in items {
            let _ = writeln!(out, "  - {item}");
        }
    }
    out
}

#[cfg(test)]
mod tests;
