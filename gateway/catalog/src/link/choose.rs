//! Choosing the connected set: from each of the best few starting tables, candidates are added greedily,
//! best coverage gain per cost first, each joined to the set by its cheapest path (the tables on the way
//! come in as bridges).

use std::collections::{BinaryHeap, HashMap};

use crate::catalog::Catalog;
use crate::finding::Finding;
use crate::path::edge_cost;

use super::coverage::Coverage;
use super::facets::Facet;
use super::{LinkOptions, rollup_factor};

/// What a table costs in the objective, in facets (a whole facet covered is 1.0): a table is added only
/// when it covers more of the question than this.
const TABLE_COST: f32 = 0.2;
/// A table on a join path is a bridge unless it covers some facet at least this well.
const BRIDGE_MATCH: f32 = 0.5;
/// What each bridge on the way costs on top.
const BRIDGE_COST: f32 = 0.15;
/// What each unit of join cost (`-ln` of edge weight × hop factor) costs.
const EDGE_COST: f32 = 0.05;
/// What a table that cannot be joined to the others costs on top: a same-named table in another schema
/// is usually a homonym, not a second answer.
const UNCONNECTED_COST: f32 = 0.3;
/// The unconnected cost is this many times higher when a roll-up is involved.
const UNCONNECTED_ROLLUP: f32 = 3.0;
/// Starting tables tried; the best resulting set wins.
const STARTS: usize = 4;

impl Catalog {
    /// The connected set of tables that covers the most of the question for the fewest tables: from each
    /// of the best few starting tables, greedily add the candidate (with the bridges that join it) whose
    /// coverage gain most exceeds its cost, and keep the best of the resulting sets.
    pub(super) fn cover_facets(
        &self,
        cover: &Coverage,
        facets: &[Facet],
        options: &LinkOptions,
        allowed: &dyn Fn(u32) -> bool,
    ) -> Option<Pick> {
        if cover.tables.is_empty() || options.max_tables == 0 {
            return None;
        }
        let weights: Vec<f32> = facets.iter().map(|f| f.weight).collect();
        let mut starts: Vec<(usize, f32)> = (0..cover.tables.len())
            .map(|i| (i, dot(&cover.rows[i], &weights)))
            .filter(|(_, v)| *v > 0.0)
            .collect();
        starts.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(cover.tables[a.0].cmp(&cover.tables[b.0]))
        });
        let tables = self.tables();
        let mut best: Option<(f32, Pick)> = None;
        for &(start, _) in starts.iter().take(STARTS) {
            let mut pick = Pick {
                tables: vec![cover.tables[start]],
                bridges: HashMap::new(),
                findings: Vec::new(),
            };
            let mut covered = cover.rows[start].clone();
            let mut objective = dot(&covered, &weights) - TABLE_COST;
            while pick.tables.len() < options.max_tables {
                let reach = self.reach(&pick.tables, options.max_bridge_hops, allowed);
                let mut step: Option<(f32, Vec<usize>, bool, f32)> = None;
                let mut lone: Option<(f32, Vec<usize>, bool, f32)> = None;
                for (i, &c) in cover.tables.iter().enumerate() {
                    if pick.tables.contains(&c) {
                        continue;
                    }
                    let own = gain(&covered, &cover.rows[i], &weights);
                    if own <= 0.0 {
                        continue;
                    }
                    let (path, connected, cost) = match reach.get(&c) {
                        Some(_) => {
                            let path = walk(&reach, c);
                            let hops_cost = reach.get(&c).map_or(0.0, |r| r.0 as f32);
                            let bridges = path.len().saturating_sub(1) as f32;
                            (
                                path,
                                true,
                                TABLE_COST + BRIDGE_COST * bridges + EDGE_COST * hops_cost,
                            )
                        }
                        None => {
                            // A roll-up beside a table it cannot join answers neither question.
                            let rollup = std::iter::once(c)
                                .chain(pick.tables.iter().copied())
                                .any(|x| rollup_factor(&tables[x].id.name) < 1.0);
                            let factor = if rollup { UNCONNECTED_ROLLUP } else { 1.0 };
                            (vec![c], false, TABLE_COST + UNCONNECTED_COST * factor)
                        }
                    };
                    if pick.tables.len() + path.len() > options.max_tables {
                        continue;
                    }
                    // Bridges that match something add their own coverage.
                    let mut trial = covered.clone();
                    for &x in &path {
                        if let Some(row) = cover.row(x) {
                            for (a, b) in trial.iter_mut().zip(row) {
                                *a = a.max(*b);
                            }
                        }
                    }
                    let added = dot(&trial, &weights) - dot(&covered, &weights);
                    let net = added - cost;
                    // As in greedy weighted set cover, the best gain per cost goes first, so that a cheap
                    // direct join is not pre-empted by a slightly larger gain three hops away.
                    let ratio = added / cost.max(1e-6);
                    // Joined tables come first: a table that cannot be joined is considered only once
                    // nothing joinable adds anything (a pre-aggregated view must not pre-empt the facts).
                    let slot = if connected { &mut step } else { &mut lone };
                    if net > 0.0 && slot.as_ref().is_none_or(|s| ratio > s.3) {
                        *slot = Some((net, path, connected, ratio));
                    }
                }
                let Some((net, path, connected, _)) = step.or(lone) else {
                    break;
                };
                objective += net;
                let c = path[0];
                let last = *path.last().unwrap_or(&c);
                let end = if connected {
                    reach.get(&last).map_or(last, |r| r.1)
                } else {
                    c
                };
                for &x in &path {
                    if let Some(row) = cover.row(x) {
                        for (a, b) in covered.iter_mut().zip(row) {
                            *a = a.max(*b);
                        }
                    }
                    pick.tables.push(x);
                    // A table on the way that only touches the question (a `customer_id` column) is there
                    // for the join.
                    if x != c && cover.row(x).is_none_or(|r| r.iter().all(|v| *v < BRIDGE_MATCH)) {
                        pick.bridges.insert(x, vec![c, end]);
                    }
                }
                if !connected {
                    pick.findings.push(Finding::info(
                        "unconnected",
                        Some(&tables[c].id),
                        format!(
                            "{} matched but no join path of at most {} hops connects it to the other tables",
                            tables[c].id, options.max_bridge_hops
                        ),
                    ));
                }
            }
            if best.as_ref().is_none_or(|b| objective > b.0 + 1e-6) {
                best = Some((objective, pick));
            }
        }
        best.map(|(_, pick)| pick)
    }

    /// The tables within `max_hops` of `from` (a set), each with its cheapest cost, the member of `from` it
    /// is reached from, and the previous table on that path (`usize::MAX` for members).
    fn reach(
        &self,
        from: &[usize],
        max_hops: usize,
        allowed: &dyn Fn(u32) -> bool,
    ) -> HashMap<usize, (f64, usize, usize)> {
        let graph = &self.graph;
        let mut best: HashMap<usize, (f64, usize, usize)> = HashMap::new();
        let mut heap = BinaryHeap::new();
        for &t in from {
            best.insert(t, (0.0, t, usize::MAX));
            heap.push(Entry(0.0, t, 0));
        }
        while let Some(Entry(cost, t, hops)) = heap.pop() {
            if best.get(&t).is_some_and(|b| cost > b.0) {
                continue;
            }
            if hops >= max_hops {
                continue;
            }
            let origin = best.get(&t).map_or(t, |b| b.1);
            for &(e, nb) in &graph.adjacency[t] {
                if !allowed(e) {
                    continue;
                }
                let c = cost + edge_cost(&graph.edges[e as usize]);
                let nb = nb as usize;
                if best.get(&nb).is_none_or(|b| c < b.0) {
                    best.insert(nb, (c, origin, t));
                    heap.push(Entry(c, nb, hops + 1));
                }
            }
        }
        best
    }
}

/// The path from `t` back to the set [`Catalog::reach`] started from, set member excluded: `t` first.
fn walk(reach: &HashMap<usize, (f64, usize, usize)>, t: usize) -> Vec<usize> {
    let mut path = vec![t];
    let mut at = t;
    while let Some(&(_, _, prev)) = reach.get(&at) {
        if prev == usize::MAX || reach.get(&prev).is_some_and(|p| p.2 == usize::MAX) {
            break;
        }
        path.push(prev);
        at = prev;
    }
    path
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// What `row` adds to `covered`, weighted.
fn gain(covered: &[f32], row: &[f32], weights: &[f32]) -> f32 {
    covered
        .iter()
        .zip(row)
        .zip(weights)
        .map(|((c, r), w)| (r - c).max(0.0) * w)
        .sum()
}

/// The set chosen for a question: tables in the order added, and for each bridge the tables it connects.
#[derive(Debug, Default)]
pub(super) struct Pick {
    pub(super) tables: Vec<usize>,
    pub(super) bridges: HashMap<usize, Vec<usize>>,
    pub(super) findings: Vec<Finding>,
}

/// A Dijkstra queue entry ordered cheapest first.
#[derive(Debug, PartialEq)]
struct Entry(f64, usize, usize);

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> std::cmp::Ordering {
        other.0.total_cmp(&self.0).then(other.1.cmp(&self.1))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
