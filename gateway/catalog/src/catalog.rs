//! The catalog: a normalised snapshot with its name lookups, join graph and search index, built once per
//! snapshot and then queried by path search, schema search and rendering.

use std::collections::{HashMap, HashSet};

use crate::documented::DocumentedKeys;
use crate::error::CatalogError;
use crate::finding::Finding;
use crate::graph::{self, JoinEdge, JoinGraph};
use crate::names::{stem_key, words};
use crate::search::SearchIndex;
use crate::snapshot::{SchemaSnapshot, Table, TableId};

/// A snapshot made ready for queries. Building it normalises the snapshot, builds the join graph (declared
/// and inferred) and the search index; everything after that is read-only, so one catalog can serve many
/// requests at once.
#[derive(Debug, Clone)]
pub struct Catalog {
    snapshot: SchemaSnapshot,
    index: HashMap<TableId, usize>,
    /// Lowercased unqualified names, for resolving what agents type.
    by_name: HashMap<String, Vec<usize>>,
    pub(crate) graph: JoinGraph,
    pub(crate) search: SearchIndex,
}

impl Catalog {
    /// Builds the catalog; the findings report what in the snapshot was inconsistent (and skipped) and
    /// which inferences were ambiguous.
    pub fn build(snapshot: SchemaSnapshot) -> (Catalog, Vec<Finding>) {
        Catalog::build_documented(snapshot, &[])
    }

    /// [`Catalog::build`] with keys documented outside the engine (a dbt project's tests): the join graph
    /// uses them where the engine declares none; the snapshot, and so every description, stays as the
    /// engine reported it.
    pub fn build_documented(
        mut snapshot: SchemaSnapshot,
        documented: &[DocumentedKeys],
    ) -> (Catalog, Vec<Finding>) {
        let mut findings = snapshot.normalize();
        let index: HashMap<TableId, usize> = snapshot
            .tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, t) in snapshot.tables.iter().enumerate() {
            by_name.entry(t.id.name.to_lowercase()).or_default().push(i);
        }
        let (graph, graph_findings) = if documented.is_empty() {
            graph::build(&snapshot.tables, &index)
        } else {
            let (tables, applied) = crate::documented::apply(&snapshot.tables, documented);
            findings.extend(applied);
            graph::build(&tables, &index)
        };
        findings.extend(graph_findings);
        let search = search_index(&snapshot.tables, &graph);
        (
            Catalog {
                snapshot,
                index,
                by_name,
                graph,
                search,
            },
            findings,
        )
    }

    pub fn snapshot(&self) -> &SchemaSnapshot {
        &self.snapshot
    }

    /// A copy of this catalog whose columns carry the given sampled values (`(table, column, values)`;
    /// unknown tables and columns are ignored, a column not listed keeps its own), with the search index
    /// rebuilt so that [`Catalog::schema_link`] matches them. The join graph is reused as it is: samples
    /// never change how tables join.
    pub fn with_samples(&self, samples: impl IntoIterator<Item = (TableId, String, Vec<String>)>) -> Catalog {
        let mut snapshot = self.snapshot.clone();
        for (table, column, values) in samples {
            let Some(&t) = self.index.get(&table) else {
                continue;
            };
            if let Some(c) = snapshot.tables[t].columns.iter_mut().find(|c| c.name == column) {
                c.samples = values;
            }
        }
        let search = search_index(&snapshot.tables, &self.graph);
        Catalog {
            snapshot,
            index: self.index.clone(),
            by_name: self.by_name.clone(),
            graph: self.graph.clone(),
            search,
        }
    }

    /// All tables and views, sorted by schema and name.
    pub fn tables(&self) -> &[Table] {
        &self.snapshot.tables
    }

    pub fn table(&self, id: &TableId) -> Option<&Table> {
        self.position(id).map(|i| &self.snapshot.tables[i])
    }

    /// Every join edge, declared and inferred, in a stable order (by referencing table, then referenced).
    pub fn edges(&self) -> &[JoinEdge] {
        &self.graph.edges
    }

    /// The edges that touch `id` (either side), in edge order.
    pub fn edges_of(&self, id: &TableId) -> Vec<&JoinEdge> {
        match self.position(id) {
            Some(t) => self.graph.incident[t]
                .iter()
                .map(|&e| &self.graph.edges[e as usize])
                .collect(),
            None => Vec::new(),
        }
    }

    pub(crate) fn position(&self, id: &TableId) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Resolves what an agent typed (`orders`, `sales.orders`, `"Sales"."Orders"`, `` `db`.`orders` ``,
    /// `warehouse.sales.orders`) to one table: exact first, then case-insensitive. An unqualified name found
    /// in several schemas is ambiguous rather than guessed; an unknown name comes back with suggestions.
    pub fn resolve_table(&self, name: &str) -> Result<TableId, CatalogError> {
        let parts = split_qualified(name);
        let (schema, table) = match parts.as_slice() {
            [t] => (None, t.as_str()),
            [s, t] => (Some(s.as_str()), t.as_str()),
            [.., s, t] => (Some(s.as_str()), t.as_str()),
            [] => {
                return Err(CatalogError::UnknownTable {
                    name: name.to_string(),
                    suggestions: Vec::new(),
                });
            }
        };
        let candidates: Vec<usize> = self
            .by_name
            .get(&table.to_lowercase())
            .cloned()
            .unwrap_or_default();
        let tables = &self.snapshot.tables;
        let matches_schema = |i: &usize, exact: bool| match schema {
            None => true,
            Some(s) if exact => tables[*i].id.schema == s,
            Some(s) => tables[*i].id.schema.eq_ignore_ascii_case(s),
        };
        let exact: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|i| tables[*i].id.name == table && matches_schema(i, true))
            .collect();
        let pool = if exact.is_empty() {
            candidates
                .iter()
                .copied()
                .filter(|i| matches_schema(i, false))
                .collect()
        } else {
            exact
        };
        match pool.as_slice() {
            [one] => Ok(tables[*one].id.clone()),
            [] => Err(CatalogError::UnknownTable {
                name: name.to_string(),
                suggestions: self.suggest(table),
            }),
            many => Err(CatalogError::AmbiguousTable {
                name: name.to_string(),
                candidates: many.iter().map(|i| tables[*i].id.clone()).collect(),
            }),
        }
    }

    /// Up to five tables whose names are close to `name`: same stem, containing it, or within two edits.
    fn suggest(&self, name: &str) -> Vec<TableId> {
        let lower = name.to_lowercase();
        let key = stem_key(&words(name));
        let mut scored: Vec<(usize, &TableId)> = self
            .snapshot
            .tables
            .iter()
            .filter_map(|t| {
                let other = t.id.name.to_lowercase();
                let rank = if stem_key(&words(&t.id.name)) == key {
                    0
                } else if !lower.is_empty() && (other.contains(&lower) || lower.contains(&other)) {
                    1
                } else {
                    let d = edit_distance(&lower, &other);
                    if d <= 2 { 1 + d } else { return None }
                };
                Some((rank, &t.id))
            })
            .collect();
        scored.sort();
        scored.into_iter().take(5).map(|(_, id)| id.clone()).collect()
    }
}

/// The search index over `tables`, with the columns that reference another table (per the join graph)
/// marked as join columns.
fn search_index(tables: &[Table], graph: &JoinGraph) -> SearchIndex {
    let mut join_columns = HashSet::new();
    for (edge, &(from, _)) in graph.edges.iter().zip(&graph.ends) {
        let table = &tables[from as usize];
        for name in &edge.from_columns {
            join_columns.extend(
                table
                    .columns
                    .iter()
                    .position(|c| &c.name == name)
                    .map(|c| (from as usize, c)),
            );
        }
    }
    SearchIndex::build(tables, &join_columns)
}

/// Splits a possibly quoted, dotted name into its parts, honouring `"…"`, `` `…` `` and `[…]` quoting
/// (with doubled quotes inside).
pub(crate) fn split_qualified(name: &str) -> Vec<String> {
    // Whitespace inside an unquoted part belongs to the name (`Order Lines`); around a part it does not.
    let finish = |current: &mut String, quoted: bool, parts: &mut Vec<String>| {
        let part = std::mem::take(current);
        parts.push(if quoted { part } else { part.trim().to_string() });
    };
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = name.trim().chars().peekable();
    while let Some(ch) = chars.next() {
        let close = match ch {
            '"' => Some('"'),
            '`' => Some('`'),
            '[' => Some(']'),
            _ => None,
        };
        if let Some(close) = close {
            quoted = true;
            current = current.trim().to_string();
            while let Some(inner) = chars.next() {
                if inner == close {
                    if chars.peek() == Some(&close) && close != ']' {
                        current.push(close);
                        chars.next();
                    } else {
                        break;
                    }
                } else {
                    current.push(inner);
                }
            }
            // Whitespace between a closing quote and the next dot is not part of the name.
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else if ch == '.' {
            finish(&mut current, quoted, &mut parts);
            quoted = false;
        } else {
            current.push(ch);
        }
    }
    finish(&mut current, quoted, &mut parts);
    parts.retain(|p| !p.is_empty());
    parts
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            row[j + 1] = sub.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::split_qualified;
    use crate::error::CatalogError;
    use crate::fixtures::shop;
    use crate::snapshot::TableId;

    #[test]
    fn splits_quoted_names() {
        let cases: [(&str, &[&str]); 8] = [
            ("orders", &["orders"]),
            ("Order Lines", &["Order Lines"]),
            (" sales . Order Lines ", &["sales", "Order Lines"]),
            ("\"Sales Data\" . \" padded \"", &["Sales Data", " padded "]),
            ("sales.orders", &["sales", "orders"]),
            ("\"Sales\".\"Order \"\"Items\"\"\"", &["Sales", "Order \"Items\""]),
            ("`db`.`my.table`", &["db", "my.table"]),
            ("[dbo].[Orders]", &["dbo", "Orders"]),
        ];
        for (input, expected) in cases {
            assert_eq!(split_qualified(input), expected, "{input}");
        }
    }

    /// Resolves `input` against the shop fixture: `Ok("schema.name")` or the error's variant and names.
    fn check(input: &str, expected: Result<&str, (&str, Vec<&str>)>) {
        let actual = match shop().resolve_table(input) {
            Ok(id) => Ok(id.to_string()),
            Err(CatalogError::UnknownTable { suggestions, .. }) => Err((
                "unknown",
                suggestions.iter().map(TableId::to_string).collect::<Vec<_>>(),
            )),
            Err(CatalogError::AmbiguousTable { candidates, .. }) => {
                Err(("ambiguous", candidates.iter().map(TableId::to_string).collect()))
            }
            Err(other) => panic!("unexpected {other}"),
        };
        let expected = expected
            .map(str::to_string)
            .map_err(|(k, v)| (k, v.into_iter().map(String::from).collect()));
        assert_eq!(actual, expected, "{input}");
    }

    #[test]
    fn resolves_names_agents_type() {
        check("sales.orders", Ok("sales.orders"));
        check("\"sales\".\"orders\"", Ok("sales.orders"));
        check("SALES.Products", Ok("sales.products"));
        check("warehouse.sales.regions", Ok("sales.regions"));
        check("products", Ok("sales.products"));
        check(
            "orders",
            Err(("ambiguous", vec!["archive.orders", "sales.orders"])),
        );
        check(
            "order",
            Err((
                "unknown",
                vec![
                    "archive.orders",
                    "sales.orders",
                    "sales.big_orders",
                    "sales.order_items",
                ],
            )),
        );
        check("", Err(("unknown", vec![])));
    }
}
