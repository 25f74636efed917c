//! Join path search: the k best simple paths between two tables, each with ready-to-run JOIN SQL.
//!
//! A path's score is the product over its joins of `confidence × key factor × HOP_FACTOR`, so declared
//! joins (confidence 1) beat inferred ones, joins onto a declared key beat joins onto a non-key, and every
//! extra hop costs 15%. Search works on costs (`-ln` of the factors, which add up): a bounded best-first
//! search over partial paths, guided by an admissible lower bound (the cheapest cost to the target on the
//! graph limited to `max_hops`, from one reverse Dijkstra), returns complete paths in score order, so it
//! stops after the k-th instead of enumerating every path.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::CatalogError;
use crate::finding::Finding;
use crate::graph::{EdgeOrigin, JoinEdge};
use crate::render::Quoting;
use crate::snapshot::TableId;

/// Each hop multiplies a path's score by this, so that fewer hops win when the joins are equally good.
pub const HOP_FACTOR: f64 = 0.85;
/// Partial paths expanded before the search gives up and reports what it found.
const MAX_EXPANSIONS: usize = 200_000;
/// Scores closer than this count as equal, so that summation order cannot decide a tie.
const EPSILON: f64 = 1e-9;

/// What to search for.
#[derive(Debug, Clone, PartialEq)]
pub struct PathOptions {
    /// Most joins in a path (SignalPilot's `max_hops`, 1 to 6 there; any value works here).
    pub max_hops: usize,
    /// How many paths to return.
    pub k: usize,
    /// Whether inferred joins may be used (declared foreign keys always are).
    pub include_inferred: bool,
    /// Inferred joins below this confidence are ignored.
    pub min_confidence: f32,
    pub quoting: Quoting,
}

impl Default for PathOptions {
    fn default() -> PathOptions {
        PathOptions {
            max_hops: 4,
            k: 3,
            include_inferred: true,
            min_confidence: 0.0,
            quoting: Quoting::Double,
        }
    }
}

/// One join of a path, written in the path's direction: `left` is already in the query, `right` is joined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinStep {
    pub left: TableId,
    pub left_columns: Vec<String>,
    pub right: TableId,
    pub right_columns: Vec<String>,
    pub origin: EdgeOrigin,
    pub confidence: f32,
    pub reason: String,
}

/// A simple path (no table twice) with its score and SQL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinPath {
    pub tables: Vec<TableId>,
    pub steps: Vec<JoinStep>,
    pub hops: usize,
    pub score: f32,
    /// `SELECT * FROM … AS t0 JOIN … AS t1 ON …`, aliases `t0`, `t1`, … in path order.
    pub sql: String,
}

/// The answer to a path query: best first, plus findings (no path, search cut short).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathSearch {
    pub from: TableId,
    pub to: TableId,
    pub max_hops: usize,
    pub paths: Vec<JoinPath>,
    pub findings: Vec<Finding>,
}

/// The cost of crossing an edge: `-ln(weight × HOP_FACTOR)`, never below `-ln(HOP_FACTOR)`.
pub(crate) fn edge_cost(edge: &JoinEdge) -> f64 {
    -(f64::from(edge.weight()).max(1e-6) * HOP_FACTOR).ln()
}

pub(crate) fn edge_allowed(edge: &JoinEdge, include_inferred: bool, min_confidence: f32) -> bool {
    edge.is_declared() || (include_inferred && edge.confidence >= min_confidence)
}

/// A partial path in the search arena: its last table, the edge that reached it and its parent entry.
#[derive(Debug, Clone, Copy)]
struct Node {
    table: u32,
    edge: u32,
    parent: u32,
    depth: u32,
    cost: f64,
}

#[derive(Debug, PartialEq)]
struct Queued {
    estimate: f64,
    depth: u32,
    seq: u32,
}

impl Eq for Queued {}

impl Ord for Queued {
    fn cmp(&self, other: &Queued) -> Ordering {
        // BinaryHeap is a max-heap: reverse so the cheapest estimate, then fewest hops, then oldest pops first.
        other
            .estimate
            .total_cmp(&self.estimate)
            .then(other.depth.cmp(&self.depth))
            .then(other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Queued) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

const NO_PARENT: u32 = u32::MAX;

impl Catalog {
    /// The `k` best simple paths from `from` to `to` within `max_hops` joins. Unknown tables are an error;
    /// no path is an empty answer with a finding.
    pub fn find_join_paths(
        &self,
        from: &TableId,
        to: &TableId,
        options: &PathOptions,
    ) -> Result<PathSearch, CatalogError> {
        let unknown = |id: &TableId| CatalogError::UnknownTable {
            name: id.to_string(),
            suggestions: Vec::new(),
        };
        let start = self.position(from).ok_or_else(|| unknown(from))?;
        let goal = self.position(to).ok_or_else(|| unknown(to))?;
        let mut search = PathSearch {
            from: from.clone(),
            to: to.clone(),
            max_hops: options.max_hops,
            paths: Vec::new(),
            findings: Vec::new(),
        };
        if start == goal {
            search.paths.push(self.make_path(start, &[], options.quoting));
            return Ok(search);
        }
        if options.k == 0 || options.max_hops == 0 {
            return Ok(search);
        }
        let graph = &self.graph;
        let allowed = |e: u32| {
            edge_allowed(
                &graph.edges[e as usize],
                options.include_inferred,
                options.min_confidence,
            )
        };
        let max_hops = options.max_hops as u32;

        // Hop distance to the goal, limited to max_hops: tables farther away can never be on a result.
        let n = graph.adjacency.len();
        let mut hops = vec![u32::MAX; n];
        hops[goal] = 0;
        let mut queue = VecDeque::from([goal]);
        while let Some(t) = queue.pop_front() {
            if hops[t] >= max_hops {
                continue;
            }
            for &(e, nb) in &graph.adjacency[t] {
                if allowed(e) && hops[nb as usize] == u32::MAX {
                    hops[nb as usize] = hops[t] + 1;
                    queue.push_back(nb as usize);
                }
            }
        }
        if hops[start] == u32::MAX {
            search.findings.push(Finding::info(
                "no_path",
                Some(from),
                format!(
                    "no join path from {from} to {to} within {} hops{}",
                    options.max_hops,
                    if options.include_inferred {
                        ""
                    } else {
                        " using declared foreign keys only"
                    }
                ),
            ));
            return Ok(search);
        }

        // Cheapest cost to the goal within that neighbourhood: an admissible bound for best-first search.
        let mut bound = vec![f64::INFINITY; n];
        bound[goal] = 0.0;
        let mut heap = BinaryHeap::new();
        heap.push(Queued {
            estimate: 0.0,
            depth: 0,
            seq: goal as u32,
        });
        while let Some(Queued { estimate, seq, .. }) = heap.pop() {
            let t = seq as usize;
            if estimate > bound[t] {
                continue;
            }
            for &(e, nb) in &graph.adjacency[t] {
                let nb = nb as usize;
                if !allowed(e) || hops[nb] == u32::MAX {
                    continue;
                }
                let c = estimate + edge_cost(&graph.edges[e as usize]);
                if c < bound[nb] {
                    bound[nb] = c;
                    heap.push(Queued {
                        estimate: c,
                        depth: 0,
                        seq: nb as u32,
                    });
                }
            }
        }

        let mut arena = vec![Node {
            table: start as u32,
            edge: u32::MAX,
            parent: NO_PARENT,
            depth: 0,
            cost: 0.0,
        }];
        let mut open = BinaryHeap::new();
        open.push(Queued {
            estimate: bound[start],
            depth: 0,
            seq: 0,
        });
        let mut found: Vec<(f64, u32)> = Vec::new();
        let mut expansions = 0usize;
        while let Some(Queued { estimate, seq, .. }) = open.pop() {
            if found.len() >= options.k && estimate > found[options.k - 1].0 + EPSILON {
                break;
            }
            let node = arena[seq as usize];
            if node.table as usize == goal {
                found.push((node.cost, seq));
                found.sort_by(|a, b| a.0.total_cmp(&b.0));
                continue;
            }
            expansions += 1;
            if expansions > MAX_EXPANSIONS {
                search.findings.push(Finding::info(
                    "search_truncated",
                    Some(from),
                    format!("path search stopped after {MAX_EXPANSIONS} partial paths; results may not be the best"),
                ));
                break;
            }
            for &(e, nb) in &graph.adjacency[node.table as usize] {
                if !allowed(e) {
                    continue;
                }
                let nbu = nb as usize;
                if hops[nbu] == u32::MAX || node.depth + 1 + hops[nbu] > max_hops {
                    continue;
                }
                if on_path(&arena, seq, nb) {
                    continue;
                }
                let cost = node.cost + edge_cost(&graph.edges[e as usize]);
                let id = arena.len() as u32;
                arena.push(Node {
                    table: nb,
                    edge: e,
                    parent: seq,
                    depth: node.depth + 1,
                    cost,
                });
                open.push(Queued {
                    estimate: cost + bound[nbu],
                    depth: node.depth + 1,
                    seq: id,
                });
            }
        }

        let mut paths: Vec<JoinPath> = found
            .into_iter()
            .map(|(_, seq)| {
                let mut edges = Vec::new();
                let mut at = seq;
                while arena[at as usize].parent != NO_PARENT {
                    edges.push(arena[at as usize].edge);
                    at = arena[at as usize].parent;
                }
                edges.reverse();
                self.make_path(start, &edges, options.quoting)
            })
            .collect();
        // Deterministic order: score, then hops, then the tables and columns by name.
        paths.sort_by(|a, b| {
            let (sa, sb) = (round6(a.score), round6(b.score));
            sb.total_cmp(&sa)
                .then(a.hops.cmp(&b.hops))
                .then_with(|| tie_key(a).cmp(&tie_key(b)))
        });
        paths.truncate(options.k);
        search.paths = paths;
        Ok(search)
    }

    /// Builds the path that starts at table position `start` and follows `edges`.
    fn make_path(&self, start: usize, edges: &[u32], quoting: Quoting) -> JoinPath {
        let tables_all = self.tables();
        let mut at = start;
        let mut tables = vec![tables_all[start].id.clone()];
        let mut steps = Vec::with_capacity(edges.len());
        let mut score = 1.0f64;
        for &e in edges {
            let edge = &self.graph.edges[e as usize];
            let (a, b) = self.graph.ends[e as usize];
            let forward = a as usize == at;
            let next = if forward { b as usize } else { a as usize };
            let (left_columns, right_columns) = if forward {
                (edge.from_columns.clone(), edge.to_columns.clone())
            } else {
                (edge.to_columns.clone(), edge.from_columns.clone())
            };
            steps.push(JoinStep {
                left: tables_all[at].id.clone(),
                left_columns,
                right: tables_all[next].id.clone(),
                right_columns,
                origin: edge.origin.clone(),
                confidence: edge.confidence,
                reason: edge.reason.clone(),
            });
            score *= (-edge_cost(edge)).exp();
            tables.push(tables_all[next].id.clone());
            at = next;
        }
        let sql = join_sql(&tables, &steps, quoting);
        JoinPath {
            hops: steps.len(),
            tables,
            steps,
            score: round6(score) as f32,
            sql,
        }
    }
}

fn on_path(arena: &[Node], mut at: u32, table: u32) -> bool {
    while at != NO_PARENT {
        let node = &arena[at as usize];
        if node.table == table {
            return true;
        }
        at = node.parent;
    }
    false
}

fn round6(x: impl Into<f64>) -> f64 {
    (x.into() * 1e6).round() / 1e6
}

fn tie_key(path: &JoinPath) -> Vec<(&TableId, &[String], &[String])> {
    path.steps
        .iter()
        .map(|s| (&s.right, s.left_columns.as_slice(), s.right_columns.as_slice()))
        .collect()
}

/// `SELECT *` over the path with aliases `t0…tn`; each step joins on all its column pairs.
pub fn join_sql(tables: &[TableId], steps: &[JoinStep], quoting: Quoting) -> String {
    let mut sql = String::from("SELECT *\n");
    if let Some(first) = tables.first() {
        sql.push_str(&format!("FROM {} AS t0", first.sql(quoting)));
    }
    for (i, step) in steps.iter().enumerate() {
        let conditions: Vec<String> = step
            .left_columns
            .iter()
            .zip(&step.right_columns)
            .map(|(l, r)| format!("t{}.{} = t{}.{}", i + 1, quoting.ident(r), i, quoting.ident(l)))
            .collect();
        sql.push_str(&format!(
            "\nJOIN {} AS t{} ON {}",
            step.right.sql(quoting),
            i + 1,
            conditions.join(" AND ")
        ));
    }
    sql
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::{PathOptions, Quoting};
    use crate::catalog::Catalog;
    use crate::outline;
    use crate::snapshot::TableId;

    /// A shop with declared keys, an inferred shortcut, a cycle and a keyless log table.
    const SHOP: &str = "\
table s.customers
  id int pk
  region_id int -> s.regions.id
table s.regions
  id int pk
table s.orders
  id int pk
  customer_id int -> s.customers.id
table s.order_items
  id int pk
  order_id int -> s.orders.id
  product_id int -> s.products.id
table s.products
  id int pk
  supplier_id int
table s.suppliers
  id int pk
  region_id int -> s.regions.id
table s.audit_log
  message text
";

    fn id(s: &str) -> TableId {
        let (schema, name) = s.split_once('.').expect("qualified");
        TableId::new(schema, name)
    }

    /// Finds paths and lists each as `t0 > t1 > … (score)`, best first.
    fn check(schema: &str, from: &str, to: &str, options: PathOptions, expected: &[&str]) {
        let (catalog, _) = Catalog::build(outline::parse(schema).expect("outline parses"));
        let search = catalog
            .find_join_paths(&id(from), &id(to), &options)
            .expect("tables exist");
        let actual: Vec<String> = search
            .paths
            .iter()
            .map(|p| {
                let names: Vec<String> = p.tables.iter().map(|t| t.name.clone()).collect();
                format!("{} ({})", names.join(" > "), p.score)
            })
            .collect();
        assert_eq!(actual, expected, "{from} -> {to}");
    }

    #[test]
    fn declared_beats_inferred_and_fewer_hops_win() {
        // Three declared hops (0.85^3) beat three hops of which one is inferred (0.85^3 × 0.9).
        check(
            SHOP,
            "s.orders",
            "s.suppliers",
            PathOptions::default(),
            &[
                "orders > customers > regions > suppliers (0.614125)",
                "orders > order_items > products > suppliers (0.552712)",
            ],
        );
        // Without inference only the declared route is left.
        check(
            SHOP,
            "s.orders",
            "s.suppliers",
            PathOptions {
                include_inferred: false,
                ..PathOptions::default()
            },
            &["orders > customers > regions > suppliers (0.614125)"],
        );
        // max_hops bounds the search; k bounds the answer.
        check(
            SHOP,
            "s.orders",
            "s.suppliers",
            PathOptions {
                max_hops: 2,
                ..PathOptions::default()
            },
            &[],
        );
        check(
            SHOP,
            "s.orders",
            "s.suppliers",
            PathOptions {
                k: 1,
                ..PathOptions::default()
            },
            &["orders > customers > regions > suppliers (0.614125)"],
        );
        check(
            SHOP,
            "s.orders",
            "s.customers",
            PathOptions::default(),
            &["orders > customers (0.85)"],
        );
    }

    #[test]
    fn cycles_give_several_simple_paths_and_no_loops() {
        // regions closes a cycle customers-regions-suppliers-products-order_items-orders-customers.
        check(
            SHOP,
            "s.customers",
            "s.products",
            PathOptions {
                max_hops: 6,
                k: 5,
                ..PathOptions::default()
            },
            &[
                "customers > orders > order_items > products (0.614125)",
                "customers > regions > suppliers > products (0.552712)",
            ],
        );
    }

    #[test]
    fn keyless_and_unknown_tables() {
        let (catalog, _) = Catalog::build(outline::parse(SHOP).expect("parses"));
        let search = catalog
            .find_join_paths(&id("s.orders"), &id("s.audit_log"), &PathOptions::default())
            .expect("tables exist");
        assert_eq!(search.paths.len(), 0);
        assert_eq!(
            search.findings.iter().map(|f| f.code).collect::<Vec<_>>(),
            vec!["no_path"]
        );
        assert!(
            catalog
                .find_join_paths(&id("s.orders"), &id("s.nope"), &PathOptions::default())
                .is_err()
        );
    }

    #[test]
    fn sql_uses_aliases_and_the_requested_quoting() {
        let (catalog, _) = Catalog::build(outline::parse(SHOP).expect("parses"));
        let options = PathOptions {
            k: 1,
            quoting: Quoting::Backtick,
            ..PathOptions::default()
        };
        let search = catalog
            .find_join_paths(&id("s.regions"), &id("s.orders"), &options)
            .expect("tables exist");
        assert_eq!(
            search.paths[0].sql,
            "SELECT *\nFROM `s`.`regions` AS t0\nJOIN `s`.`customers` AS t1 ON t1.`region_id` = t0.`id`\n\
             JOIN `s`.`orders` AS t2 ON t2.`customer_id` = t1.`id`"
        );
        let options = PathOptions {
            k: 1,
            ..PathOptions::default()
        };
        let search = catalog
            .find_join_paths(&id("s.order_items"), &id("s.orders"), &options)
            .expect("tables exist");
        assert_eq!(
            search.paths[0].sql,
            "SELECT *\nFROM \"s\".\"order_items\" AS t0\nJOIN \"s\".\"orders\" AS t1 ON t1.\"id\" = t0.\"order_id\""
        );
    }

    #[test]
    fn equal_scores_break_ties_by_name() {
        // Two declared routes of equal length and score: the alphabetically first intermediate table wins.
        let schema = "table s.a\n  id int pk\ntable s.z\n  id int pk\n  a_id int -> s.a.id\n  d_id int -> s.d.id\n\
                      table s.m\n  id int pk\n  a_id int -> s.a.id\n  d_id int -> s.d.id\ntable s.d\n  id int pk\n";
        check(
            schema,
            "s.a",
            "s.d",
            PathOptions::default(),
            &["a > m > d (0.7225)", "a > z > d (0.7225)"],
        );
    }

    #[test]
    fn same_names_in_two_schemas_stay_apart() {
        let schema = "table shop.customers\n  id int pk\ntable shop.orders\n  id int pk\n  customer_id int\n\
                      table archive.customers\n  id int pk\ntable archive.orders\n  id int pk\n  customer_id int\n";
        check(
            schema,
            "shop.orders",
            "shop.customers",
            PathOptions::default(),
            &["orders > customers (0.765)"],
        );
        check(
            schema,
            "shop.orders",
            "archive.customers",
            PathOptions::default(),
            &[],
        );
    }
}
