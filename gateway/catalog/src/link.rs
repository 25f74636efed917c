//! Schema search for a question (`schema_link`): lexical ranking, propagation along the join graph, and a
//! small connected set of tables with the joins among them.
//!
//! 1. The question is split into words, stopwords dropped, words stemmed ([`crate::names::terms`]).
//! 2. Tables are ranked by BM25 over names, comments and sampled values ([`crate::search`]).
//! 3. Each matched table gains `PROPAGATION ×` the best `weight × score` among its matched neighbours
//!    (at most its own score), so that of two tables named `orders` the one joined to the other matches wins.
//! 4. Seeds scoring at least `RELATIVE_FLOOR` of the best are added best first; each new seed is connected
//!    to the tables already chosen by the cheapest join path of at most `max_bridge_hops`, whose
//!    intermediate tables come in as bridges (an approximate Steiner tree), until `max_tables`. A seed that
//!    cannot be connected is kept only above `UNCONNECTED_FLOOR` of the best (homonyms in other schemas).

use std::collections::{BinaryHeap, HashMap, HashSet};

use serde::Serialize;

use crate::catalog::Catalog;
use crate::finding::Finding;
use crate::graph::JoinEdge;
use crate::names::{stem, terms, words};
use crate::path::{edge_allowed, edge_cost};
use crate::search::Field;
use crate::snapshot::TableId;

const PROPAGATION: f32 = 0.3;
const RELATIVE_FLOOR: f32 = 0.3;
/// A match that cannot be joined to the chosen tables must be this close to the best to be kept: a
/// same-named table in another schema is usually a homonym, not a second answer.
const UNCONNECTED_FLOOR: f32 = 0.6;
const BRIDGE_DISCOUNT: f32 = 0.5;

/// Options for [`Catalog::schema_link`].
#[derive(Debug, Clone, PartialEq)]
pub struct LinkOptions {
    /// Most tables returned, bridges included (SignalPilot's default is 20).
    pub max_tables: usize,
    pub include_inferred: bool,
    /// Longest join path used to connect a matched table to the set.
    pub max_bridge_hops: usize,
    /// Most columns listed as matched per table.
    pub max_columns: usize,
}

impl Default for LinkOptions {
    fn default() -> LinkOptions {
        LinkOptions {
            max_tables: 20,
            include_inferred: true,
            max_bridge_hops: 3,
            max_columns: 8,
        }
    }
}

/// Why a table is in the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkRole {
    /// The question's words matched it.
    Matched,
    /// It joins matched tables that do not join directly.
    Bridge,
}

/// Where one question term was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermMatch {
    pub term: String,
    pub field: Field,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// A column that matched, with its own score and terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkedColumn {
    pub name: String,
    pub score: f32,
    pub terms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkedTable {
    pub table: TableId,
    pub score: f32,
    pub role: LinkRole,
    /// For bridges: the tables it connects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connects: Vec<TableId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<TermMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<LinkedColumn>,
}

/// The tables relevant to a question, best first, with every join among them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaLink {
    pub question: String,
    pub terms: Vec<String>,
    pub tables: Vec<LinkedTable>,
    pub edges: Vec<JoinEdge>,
    pub findings: Vec<Finding>,
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

impl Catalog {
    /// Finds the smallest useful set of tables for `question`; see the module documentation for the steps.
    pub fn schema_link(&self, question: &str, options: &LinkOptions) -> SchemaLink {
        let query = terms(question);
        // Results show the question's own words, not their stems.
        let mut originals: HashMap<String, String> = HashMap::new();
        for word in words(question) {
            originals.entry(stem(&word)).or_insert(word);
        }
        let original = |term: &String| originals.get(term).cloned().unwrap_or_else(|| term.clone());
        let mut link = SchemaLink {
            question: question.to_string(),
            terms: query.clone(),
            tables: Vec::new(),
            edges: Vec::new(),
            findings: Vec::new(),
        };
        let hits = self.search.search(&query);
        if hits.is_empty() || options.max_tables == 0 {
            link.findings.push(Finding::info(
                "no_match",
                None,
                format!("no table or column matches any of: {}", query.join(", ")),
            ));
            return link;
        }
        let graph = &self.graph;
        let allowed = |e: u32| edge_allowed(&graph.edges[e as usize], options.include_inferred, 0.0);
        let lexical: HashMap<usize, f32> = hits.iter().map(|h| (h.table, h.score)).collect();
        let mut ranked: Vec<(usize, f32)> = hits
            .iter()
            .map(|h| {
                let best_neighbour = graph.adjacency[h.table]
                    .iter()
                    .filter(|(e, _)| allowed(*e))
                    .filter_map(|(e, nb)| {
                        lexical
                            .get(&(*nb as usize))
                            .map(|s| s * graph.edges[*e as usize].weight())
                    })
                    .fold(0.0f32, f32::max);
                // Capped by the table's own evidence: connection confirms a match, it does not make one.
                (h.table, h.score + PROPAGATION * best_neighbour.min(h.score))
            })
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top = ranked[0].1;

        let mut chosen: Vec<usize> = Vec::new();
        let mut scores: HashMap<usize, f32> = HashMap::new();
        let mut bridges: HashMap<usize, Vec<usize>> = HashMap::new();
        for &(t, score) in &ranked {
            if score < RELATIVE_FLOOR * top || chosen.len() >= options.max_tables {
                break;
            }
            if let Some(existing) = scores.get_mut(&t) {
                // Already in as a bridge: it matched too, so it is promoted.
                *existing = existing.max(score);
                bridges.remove(&t);
                continue;
            }
            if chosen.is_empty() {
                chosen.push(t);
                scores.insert(t, score);
                continue;
            }
            match self.bridge(t, &chosen, options.max_bridge_hops, &allowed) {
                Some((path, weight)) => {
                    let new: Vec<usize> = path.iter().copied().filter(|x| !scores.contains_key(x)).collect();
                    if chosen.len() + new.len() > options.max_tables {
                        link.findings.push(Finding::info(
                            "table_limit",
                            Some(&self.tables()[t].id),
                            format!(
                                "{} matched but joining it needs {} more tables than max_tables allows",
                                self.tables()[t].id,
                                chosen.len() + new.len() - options.max_tables
                            ),
                        ));
                        continue;
                    }
                    let (first, last) = (path[0], path[path.len() - 1]);
                    for x in new {
                        chosen.push(x);
                        if x == t {
                            scores.insert(x, score);
                        } else {
                            let s = score.min(scores.get(&last).copied().unwrap_or(score)) * weight;
                            scores.insert(x, s * BRIDGE_DISCOUNT);
                            bridges.insert(x, vec![first, last]);
                        }
                    }
                }
                None if score < UNCONNECTED_FLOOR * top => continue,
                None => {
                    chosen.push(t);
                    scores.insert(t, score);
                    link.findings.push(Finding::info(
                        "unconnected",
                        Some(&self.tables()[t].id),
                        format!(
                            "{} matched but no join path of at most {} hops connects it to the other tables",
                            self.tables()[t].id,
                            options.max_bridge_hops
                        ),
                    ));
                }
            }
        }

        let by_table: HashMap<usize, &crate::search::TableHit> = hits.iter().map(|h| (h.table, h)).collect();
        let tables = self.tables();
        for &t in &chosen {
            let table = &tables[t];
            let role = if bridges.contains_key(&t) {
                LinkRole::Bridge
            } else {
                LinkRole::Matched
            };
            let mut entry = LinkedTable {
                table: table.id.clone(),
                score: round3(scores.get(&t).copied().unwrap_or(0.0)),
                role,
                connects: bridges
                    .get(&t)
                    .map(|v| v.iter().map(|x| tables[*x].id.clone()).collect())
                    .unwrap_or_default(),
                matches: Vec::new(),
                columns: Vec::new(),
            };
            if let Some(hit) = by_table.get(&t) {
                entry.matches = hit
                    .matches
                    .iter()
                    .map(|(term, field, column)| TermMatch {
                        term: original(term),
                        field: *field,
                        column: column.map(|c| table.columns[c].name.clone()),
                    })
                    .collect();
                entry.columns = hit
                    .columns
                    .iter()
                    .take(options.max_columns)
                    .map(|(c, score, terms)| LinkedColumn {
                        name: table.columns[*c].name.clone(),
                        score: round3(*score),
                        terms: terms.iter().map(&original).collect(),
                    })
                    .collect();
            }
            link.tables.push(entry);
        }
        link.tables
            .sort_by(|a, b| b.score.total_cmp(&a.score).then(a.table.cmp(&b.table)));

        let set: HashSet<usize> = chosen.iter().copied().collect();
        let mut edges: Vec<usize> = chosen
            .iter()
            .flat_map(|&t| graph.incident[t].iter().map(|&e| e as usize))
            .filter(|&e| {
                let (a, b) = graph.ends[e];
                set.contains(&(a as usize)) && set.contains(&(b as usize)) && allowed(e as u32)
            })
            .collect();
        edges.sort_unstable();
        edges.dedup();
        let mut edges: Vec<JoinEdge> = edges.into_iter().map(|e| graph.edges[e].clone()).collect();
        edges.sort_by(|a, b| {
            b.is_declared()
                .cmp(&a.is_declared())
                .then(b.confidence.total_cmp(&a.confidence))
                .then((&a.from, &a.to, &a.from_columns).cmp(&(&b.from, &b.to, &b.from_columns)))
        });
        link.edges = edges;
        link
    }

    /// The cheapest path (as table positions from `from` to a chosen table) within `max_hops`, and the
    /// product of its edge factors; early exit at the first chosen table settled.
    fn bridge(
        &self,
        from: usize,
        chosen: &[usize],
        max_hops: usize,
        allowed: &dyn Fn(u32) -> bool,
    ) -> Option<(Vec<usize>, f32)> {
        let graph = &self.graph;
        let targets: HashSet<usize> = chosen.iter().copied().collect();
        let mut best: HashMap<usize, (f64, usize, usize)> = HashMap::new(); // cost, hops, previous
        let mut heap = BinaryHeap::new();
        best.insert(from, (0.0, 0, usize::MAX));
        heap.push(Entry(0.0, from, 0));
        while let Some(Entry(cost, t, hops)) = heap.pop() {
            if best.get(&t).is_some_and(|b| cost > b.0) {
                continue;
            }
            if targets.contains(&t) {
                let mut path = vec![t];
                let mut at = t;
                while let Some(&(_, _, prev)) = best.get(&at) {
                    if prev == usize::MAX {
                        break;
                    }
                    path.push(prev);
                    at = prev;
                }
                // Path runs from the new seed to the chosen table it reaches.
                path.reverse();
                return Some((path, (-cost).exp() as f32));
            }
            if hops >= max_hops {
                continue;
            }
            for &(e, nb) in &graph.adjacency[t] {
                if !allowed(e) {
                    continue;
                }
                let c = cost + edge_cost(&graph.edges[e as usize]);
                let nb = nb as usize;
                if best.get(&nb).is_none_or(|b| c < b.0) {
                    best.insert(nb, (c, hops + 1, t));
                    heap.push(Entry(c, nb, hops + 1));
                }
            }
        }
        None
    }
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

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::{LinkOptions, LinkRole};
    use crate::catalog::Catalog;
    use crate::outline;

    const SHOP: &str = "\
table s.customers -- people who buy
  id int pk
  name text
  country text samples=[Germany|France|United States]
table s.orders
  id int pk
  customer_id int -> s.customers.id
  ordered_at timestamp
table s.order_items
  id int pk
  order_id int -> s.orders.id
  product_id int -> s.products.id
  quantity int
table s.products
  id int pk
  title text
  categoryId int
table s.categories
  id int pk
  label text
table s.audit_log
  message text -- free-text events
table archive.orders
  id int pk
  note text
";

    /// Links `question` and lists the tables as `schema.name role`, best first, plus the join count.
    fn check(question: &str, max_tables: usize, expected: &[&str], joins: usize) {
        let (catalog, _) = Catalog::build(outline::parse(SHOP).expect("outline parses"));
        let link = catalog.schema_link(
            question,
            &LinkOptions {
                max_tables,
                ..LinkOptions::default()
            },
        );
        let actual: Vec<String> = link
            .tables
            .iter()
            .map(|t| {
                format!(
                    "{} {}",
                    t.table,
                    if t.role == LinkRole::Bridge {
                        "bridge"
                    } else {
                        "matched"
                    }
                )
            })
            .collect();
        assert_eq!(
            (actual, link.edges.len()),
            (expected.iter().map(|s| s.to_string()).collect(), joins),
            "{question}"
        );
    }

    #[test]
    fn ranks_by_name_comment_and_sampled_values() {
        check("Which customers are in Germany?", 5, &["s.customers matched"], 0);
        check("free-text events", 5, &["s.audit_log matched"], 0);
        // camelCase column names are split, plurals stemmed.
        check(
            "products by category",
            5,
            &["s.products matched", "s.categories matched"],
            1,
        );
    }

    #[test]
    fn bridges_pull_in_the_tables_between_matches() {
        // customers and products only connect through orders and order_items.
        check(
            "customers who bought products",
            5,
            &[
                "s.products matched",
                "s.customers matched",
                "s.order_items bridge",
                "s.orders bridge",
            ],
            3,
        );
        // Too small a limit keeps the best match rather than a disconnected pair.
        check("customers who bought products", 2, &["s.products matched"], 0);
    }

    #[test]
    fn propagation_prefers_the_connected_homonym() {
        // Both schemas have `orders`; the one joined to the matched customers ranks first, and the
        // unconnected homonym in `archive` is left out.
        check(
            "orders of customers",
            5,
            &["s.orders matched", "s.customers matched", "s.order_items matched"],
            2,
        );
        // Naming the schema puts its table first; the other `orders` stays as a close alternative.
        check(
            "archive orders",
            5,
            &[
                "archive.orders matched",
                "s.orders matched",
                "s.order_items matched",
            ],
            1,
        );
    }

    #[test]
    fn samples_added_later_are_matched_and_the_joins_kept() {
        use crate::snapshot::TableId;
        let (catalog, _) = Catalog::build(outline::parse(SHOP).expect("outline parses"));
        let question = "shipments to Portugal";
        assert_eq!(catalog.schema_link(question, &LinkOptions::default()).tables, []);
        let sampled = catalog.with_samples([
            (
                TableId::new("s", "orders"),
                "ordered_at".to_owned(),
                vec!["Portugal".to_owned()],
            ),
            // Unknown tables and columns are ignored.
            (
                TableId::new("s", "nowhere"),
                "x".to_owned(),
                vec!["Portugal".to_owned()],
            ),
            (
                TableId::new("s", "orders"),
                "nothing".to_owned(),
                vec!["x".to_owned()],
            ),
        ]);
        let link = sampled.schema_link(question, &LinkOptions::default());
        assert_eq!(
            link.tables
                .iter()
                .map(|t| (t.table.to_string(), t.matches.iter().map(|m| m.field).collect()))
                .collect::<Vec<(String, Vec<crate::search::Field>)>>(),
            [("s.orders".to_owned(), vec![crate::search::Field::SampleValue])]
        );
        // Columns not listed keep their own samples; the join graph is the same.
        assert_eq!(
            sampled
                .schema_link("customers in Germany", &LinkOptions::default())
                .tables[0]
                .table,
            TableId::new("s", "customers")
        );
        assert_eq!(sampled.edges(), catalog.edges());
    }

    #[test]
    fn no_match_is_a_finding() {
        let (catalog, _) = Catalog::build(outline::parse(SHOP).expect("parses"));
        let link = catalog.schema_link("zebra giraffe", &LinkOptions::default());
        assert_eq!(
            (
                link.tables.len(),
                link.findings.iter().map(|f| f.code).collect::<Vec<_>>()
            ),
            (0, vec!["no_match"])
        );
    }
}
