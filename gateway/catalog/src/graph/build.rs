//! Builds the join graph: runs the inference rules in order, keeps the best edge for each pair of
//! column lists (a declared key before any inference) and indexes the edges by relation.

use std::collections::{HashMap, HashSet};

use crate::finding::Finding;
use crate::snapshot::{Table, TableId};

use super::composite::composite_keys;
use super::declared::declared_edges;
use super::id_suffix::id_suffix;
use super::key_suffix::key_reference;
use super::keys::resolve_keys;
use super::lookup::Names;
use super::roles::{prefer_event_roles, role_reference, self_reference};
use super::score::round3;
use super::shared::{natural_keys, shared_keys};
use super::tables::{TableInfo, table_info};
use super::{EdgeOrigin, InferenceRule, JoinEdge, JoinGraph};

/// One side of a join by positions: a relation and its columns.
type Side = (usize, Vec<u32>);

/// Builds the join graph over `tables` (sorted by id, as a normalised snapshot holds them).
pub(crate) fn build(tables: &[Table], index: &HashMap<TableId, usize>) -> (JoinGraph, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut infos: Vec<TableInfo> = tables.iter().map(table_info).collect();
    let names = Names::new(&infos);
    resolve_keys(tables, &mut infos, &names);

    let mut edges: Vec<(usize, usize, JoinEdge)> = Vec::new();
    declared_edges(tables, index, &mut edges, &mut findings);

    let mut candidates = Vec::new();
    let mut unread: Vec<(usize, usize)> = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        for c in 0..table.columns.len() {
            if infos[t].declared_sources.contains(&c) {
                continue;
            }
            if infos[t].forms[c].as_ref().is_some_and(|f| f.stripped) {
                // Table-prefixed columns are read without their prefix, below.
                self_reference(tables, &infos, t, c, &mut candidates);
                unread.push((t, c));
            } else if !id_suffix(tables, &infos, &names, t, c, &mut candidates, &mut findings) {
                unread.push((t, c));
            }
        }
    }
    shared_keys(tables, &infos, &mut candidates);
    // A column whose name is a declared key elsewhere is the shared-key rule's; the other naming rules
    // read the columns `_id` did not settle.
    let claimed: HashSet<(usize, usize)> = candidates
        .iter()
        .filter(|c| c.rule == InferenceRule::SharedKey)
        .map(|c| (c.from, c.from_columns[0]))
        .collect();
    for (t, c) in unread {
        if !claimed.contains(&(t, c))
            && !key_reference(tables, &infos, &names, t, c, &mut candidates, &mut findings)
        {
            role_reference(tables, &infos, &names, t, c, &mut candidates);
        }
    }
    composite_keys(tables, &infos, &mut candidates, &mut findings);
    natural_keys(tables, &infos, &mut candidates);
    prefer_event_roles(&infos, &mut candidates);

    // Declared edges win over any inference on the same columns; among inferences the most confident wins.
    // Edges meet by column positions in either direction, so no name is cloned to compare them.
    let side = |t: usize, columns: &[String]| -> Side {
        let positions = columns
            .iter()
            .map(|n| {
                tables[t]
                    .columns
                    .iter()
                    .position(|c| c.name == *n)
                    .map_or(u32::MAX, |p| p as u32)
            })
            .collect();
        (t, positions)
    };
    let undirected = |a: Side, b: Side| if a <= b { (a, b) } else { (b, a) };
    let mut seen: HashSet<(Side, Side)> = HashSet::with_capacity(edges.len() * 2);
    for (a, b, e) in &edges {
        seen.insert(undirected(side(*a, &e.from_columns), side(*b, &e.to_columns)));
    }
    candidates.sort_by(|x, y| {
        y.confidence
            .total_cmp(&x.confidence)
            .then((x.from, &x.from_columns, x.to, &x.to_columns).cmp(&(
                y.from,
                &y.from_columns,
                y.to,
                &y.to_columns,
            )))
    });
    for cand in candidates {
        let positions = |columns: &[usize]| columns.iter().map(|&c| c as u32).collect::<Vec<u32>>();
        let key = undirected(
            (cand.from, positions(&cand.from_columns)),
            (cand.to, positions(&cand.to_columns)),
        );
        if !seen.insert(key) {
            continue;
        }
        let (ft, tt) = (&tables[cand.from], &tables[cand.to]);
        let from_columns: Vec<String> = cand
            .from_columns
            .iter()
            .map(|&c| ft.columns[c].name.clone())
            .collect();
        let to_columns: Vec<String> = cand
            .to_columns
            .iter()
            .map(|&c| tt.columns[c].name.clone())
            .collect();
        let (from_key, to_key) = cand.keys.unwrap_or((
            infos[cand.from].column_keys[cand.from_columns[0]],
            infos[cand.to].column_keys[cand.to_columns[0]],
        ));
        edges.push((
            cand.from,
            cand.to,
            JoinEdge {
                from: ft.id.clone(),
                from_columns,
                to: tt.id.clone(),
                to_columns,
                origin: EdgeOrigin::Inferred { rule: cand.rule },
                confidence: round3(cand.confidence),
                reason: cand.reason,
                from_key,
                to_key,
            },
        ));
    }

    edges.sort_by(|(a1, b1, e1), (a2, b2, e2)| {
        (a1, b1, &e1.from_columns, &e1.to_columns, !e1.is_declared()).cmp(&(
            a2,
            b2,
            &e2.from_columns,
            &e2.to_columns,
            !e2.is_declared(),
        ))
    });
    let mut graph = JoinGraph {
        adjacency: vec![Vec::new(); tables.len()],
        incident: vec![Vec::new(); tables.len()],
        ..JoinGraph::default()
    };
    for (i, (a, b, e)) in edges.into_iter().enumerate() {
        graph.incident[a].push(i as u32);
        if a != b {
            graph.adjacency[a].push((i as u32, b as u32));
            graph.adjacency[b].push((i as u32, a as u32));
            graph.incident[b].push(i as u32);
        }
        graph.ends.push((a as u32, b as u32));
        graph.edges.push(e);
    }
    (graph, findings)
}

#[cfg(test)]
mod tests {
    use crate::graph::tests::check;

    #[test]
    fn declared_keys_suppress_inference_on_the_same_columns() {
        check(
            "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  customer_id int -> s.customers.id\n",
            &["s.orders(customer_id) -> s.customers(id) declared 1"],
        );
        // A declared reference elsewhere wins over what the name suggests.
        check(
            "table s.customers\n  id int pk\ntable s.clients\n  id int pk\ntable s.orders\n  id int pk\n  customer_id int -> s.clients.id\n",
            &["s.orders(customer_id) -> s.clients(id) declared 1"],
        );
    }
}
