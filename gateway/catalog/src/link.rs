//! Schema search for a question (`schema_link`): the connected set of tables that answers the whole
//! question, not the best match for one of its words, with the joins among them.
//!
//! 1. The question is split into words, stopwords dropped, words stemmed ([`crate::names::terms`]); each
//!    distinct term is a **facet**. Facets that name a measure (`revenue`, `sales`, `quantity`) or a time
//!    grain (`month`, `1995`) are marked; aggregate words (`number`, `total`) weigh little. Two adjacent
//!    words are also searched glued (`line items` → `lineitem`) and count for both.
//! 2. Tables are ranked by BM25 over names, comments and sampled values ([`crate::search`]); each table's
//!    **coverage** of each facet says how well it answers it: by where the word was found (named for it,
//!    a column, a value, a comment, a reference), not by how wide the table is. Measure facets are also
//!    covered by fact tables (numeric measure columns, several references, rarely referenced), time
//!    facets by dated tables and calendars. dbt layers scale coverage (marts over staging over raw), and
//!    so do names of roll-ups (`monthly_revenue`, `Sales by Category`).
//! 3. From each of the best few tables, candidates are added greedily, best coverage gain per cost first,
//!    each joined to the set by its cheapest path of at most `max_bridge_hops` (tables on the way come in
//!    as bridges): a table costs `TABLE_COST`, a bridge more, a table that cannot be joined more still
//!    (much more beside a roll-up) and is considered only when nothing joinable helps. The set with the
//!    best coverage less cost wins, so a roll-up that cannot reach a dimension the question needs loses
//!    to the facts and dimensions that can, and a sibling (`stg_orders` beside `fct_orders`) that adds
//!    nothing stays out.

use std::collections::{BinaryHeap, HashMap, HashSet};

use serde::Serialize;

use crate::catalog::Catalog;
use crate::finding::Finding;
use crate::graph::JoinEdge;
use crate::names::{TypeFamily, stem, terms, type_family, words};
use crate::path::{edge_allowed, edge_cost};
use crate::search::Field;
use crate::snapshot::TableId;

/// A bridge's score, relative to the weaker of the tables it connects.
const BRIDGE_DISCOUNT: f32 = 0.5;
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
/// Lexical candidates: the best overall, and the best per facet above `MIN_COVERAGE` of that facet's best.
const OVERALL_CANDIDATES: usize = 10;
const FACET_CANDIDATES: usize = 6;
const MIN_COVERAGE: f32 = 0.25;
/// How much of a lexical coverage depends on the BM25 rank among tables matching the same word.
const RANK_SHARE: f32 = 0.15;
/// Fact tables considered for measure words, and the least fact-likeness that makes one a candidate.
const FACT_CANDIDATES: usize = 6;
const MIN_FACT: f32 = 0.3;
/// A fact table covers a measure word at this much times its fact-likeness.
const MEASURE_COVERAGE: f32 = 0.85;
/// A measure-bearing table that other tables reference is more likely a dimension.
const REFERENCED_FACT: f32 = 0.8;
/// A dated table covers a time word at this much; a calendar dimension fully.
const DATED_COVERAGE: f32 = 0.5;
const TIME_WEIGHT: f32 = 0.5;
/// Coverage factor of a relation named like a roll-up.
const ROLLUP: f32 = 0.85;
/// A measure word found only among a table's sampled values covers it at this fraction.
const VALUE_MEASURE: f32 = 0.3;
const AGGREGATE_WEIGHT: f32 = 0.1;
/// A table with a numeric column named for the measure word covers it at this much.
const NAMED_MEASURE_COVERAGE: f32 = 0.9;

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
        // Compounds: two adjacent words glued (`line items` → `lineitem`, `supply cost` → `supplycost`) are
        // searched too, and count for both words.
        let mut compounds: Vec<(String, [String; 2])> = Vec::new();
        let question_words = words(question);
        for pair in question_words.windows(2) {
            let (a, b) = (terms(&pair[0]), terms(&pair[1]));
            if let ([a], [b]) = (a.as_slice(), b.as_slice()) {
                let glued = stem(&format!("{}{}", pair[0], pair[1]));
                if !query.contains(&glued) && !compounds.iter().any(|(g, _)| g == &glued) {
                    compounds.push((glued, [a.clone(), b.clone()]));
                }
            }
        }
        let glued: Vec<String> = compounds.iter().map(|(g, _)| g.clone()).collect();
        let mut searched = query.clone();
        searched.extend(glued.iter().cloned());
        let hits = self.search.search(&searched, &glued);
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
        let facets = facets(&query, &originals);
        let cover = self.coverage(&hits, &facets, &compounds);
        let Some(pick) = self.cover_facets(&cover, &facets, options, &allowed) else {
            link.findings.push(Finding::info(
                "no_match",
                None,
                format!("no table or column matches any of: {}", query.join(", ")),
            ));
            return link;
        };
        link.findings.extend(pick.findings);
        let chosen = pick.tables;
        let bridges = pick.bridges;
        // Scores are on the lexical scale so that they read as before: the table covering most of the
        // question scores the best hit's BM25 score, the others in proportion to what they cover.
        let top = hits.first().map_or(1.0, |h| h.score);
        let best = chosen
            .iter()
            .map(|&t| cover.value(t, &facets))
            .fold(0.0f32, f32::max)
            .max(1e-6);
        let mut scores: HashMap<usize, f32> = HashMap::new();
        for &t in &chosen {
            scores.insert(t, top * cover.value(t, &facets) / best);
        }
        for (&t, ends) in &bridges {
            let end_score = ends
                .iter()
                .filter_map(|e| scores.get(e).copied())
                .fold(f32::MAX, f32::min);
            let own = scores.get(&t).copied().unwrap_or(0.0);
            scores.insert(t, own.max(BRIDGE_DISCOUNT * end_score.min(top)));
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

    /// Every table's coverage of every facet: lexical (its share of the best BM25 score for the term),
    /// measures (fact tables for `revenue`, `sales`, `quantity`…) and time (dated tables and calendars for
    /// `month`, `1995`), each times the table's dbt layer factor.
    fn coverage(
        &self,
        hits: &[crate::search::TableHit],
        facets: &[Facet],
        compounds: &[(String, [String; 2])],
    ) -> Coverage {
        // The facets a searched term counts for: its own, or both parts of a compound.
        let targets = |term: &String| -> Vec<usize> {
            match facets.iter().position(|f| &f.term == term) {
                Some(f) => vec![f],
                None => compounds
                    .iter()
                    .filter(|(g, _)| g == term)
                    .flat_map(|(_, parts)| parts.iter())
                    .filter_map(|p| facets.iter().position(|f| &f.term == p))
                    .collect(),
            }
        };
        let graph = &self.graph;
        let profiles = &self.search.profiles;
        let tables = self.tables();
        let mut cover = Coverage::default();
        let mut best = vec![0.0f32; facets.len()];
        for hit in hits {
            for (term, s, _) in &hit.terms {
                for f in targets(term) {
                    best[f] = best[f].max(*s);
                }
            }
        }
        // Lexical candidates: the best few per facet, plus the best few overall.
        let mut per_facet: Vec<Vec<(usize, f32)>> = vec![Vec::new(); facets.len()];
        for hit in hits {
            for (term, s, c) in &hit.terms {
                // A measure word found only among sampled values (`Sales Manager`) names no measure.
                let values_only = hit
                    .matches
                    .iter()
                    .filter(|(t, _, _)| t == term)
                    .all(|(_, field, _)| *field == Field::SampleValue);
                for f in targets(term) {
                    let c = if values_only && facets[f].kind == FacetKind::Measure {
                        c * VALUE_MEASURE
                    } else {
                        *c
                    };
                    // Where the word was found decides; the BM25 share only breaks near-ties.
                    let relative = s / best[f].max(1e-6);
                    per_facet[f].push((hit.table, c * (1.0 - RANK_SHARE + RANK_SHARE * relative)));
                }
            }
        }
        for (i, hit) in hits.iter().enumerate() {
            if i < OVERALL_CANDIDATES {
                cover.add(hit.table, facets.len());
            }
        }
        for (f, list) in per_facet.iter_mut().enumerate() {
            list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            for &(t, c) in list.iter().take(FACET_CANDIDATES) {
                if c >= MIN_COVERAGE {
                    cover.add(t, facets.len());
                }
            }
            for &(t, c) in list.iter() {
                if let Some(row) = cover.row_mut(t) {
                    row[f] = row[f].max(c);
                }
            }
        }
        // Measure words reach fact tables: measures and references, rarely referenced themselves.
        if facets.iter().any(|f| f.kind == FacetKind::Measure) {
            let mut facts: Vec<(usize, f32)> = profiles
                .iter()
                .enumerate()
                .filter(|(_, p)| p.measures > 0 && p.join_columns > 0)
                .map(|(t, p)| {
                    let referenced = graph.incident[t].iter().any(|&e| {
                        let (a, b) = graph.ends[e as usize];
                        b as usize == t && a as usize != t
                    });
                    let fact = ((f32::from(p.measures) + 1.0) / 3.0).min(1.0)
                        * (f32::from(p.join_columns) / 2.0).min(1.0)
                        * if referenced { REFERENCED_FACT } else { 1.0 };
                    (t, fact)
                })
                .collect();
            facts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            for &(t, fact) in facts.iter().take(FACT_CANDIDATES) {
                if fact < MIN_FACT {
                    break;
                }
                cover.add(t, facets.len());
            }
            for &(t, fact) in &facts {
                if let Some(row) = cover.row_mut(t) {
                    for (f, facet) in facets.iter().enumerate() {
                        if facet.kind == FacetKind::Measure {
                            row[f] = row[f].max(MEASURE_COVERAGE * fact);
                        }
                    }
                }
            }
        }
        if facets.iter().any(|f| f.kind == FacetKind::Time) {
            for (t, p) in profiles.iter().enumerate() {
                if p.calendar {
                    cover.add(t, facets.len());
                }
            }
        }
        for i in 0..cover.tables.len() {
            let t = cover.tables[i];
            let p = profiles[t];
            // A measure word inside a numeric column's name (`o_totalprice`, `ProductSales`) covers it.
            for (f, facet) in facets.iter().enumerate() {
                if facet.kind == FacetKind::Measure
                    && p.measures > 0
                    && tables[t].columns.iter().any(|c| {
                        c.name.to_ascii_lowercase().contains(facet.root.as_str())
                            && matches!(
                                type_family(&c.data_type),
                                TypeFamily::Integer | TypeFamily::Decimal | TypeFamily::Float
                            )
                    })
                {
                    cover.rows[i][f] = cover.rows[i][f].max(NAMED_MEASURE_COVERAGE);
                }
            }
            let layer = layer_factor(&tables[t].id.name) * rollup_factor(&tables[t].id.name);
            let row = &mut cover.rows[i];
            for (f, facet) in facets.iter().enumerate() {
                if facet.kind == FacetKind::Time {
                    let time = if p.calendar {
                        1.0
                    } else if p.dated {
                        DATED_COVERAGE
                    } else {
                        0.0
                    };
                    row[f] = row[f].max(time);
                }
                row[f] *= layer;
            }
        }
        cover
    }

    /// The connected set of tables that covers the most of the question for the fewest tables: from each
    /// of the best few starting tables, greedily add the candidate (with the bridges that join it) whose
    /// coverage gain most exceeds its cost, and keep the best of the resulting sets.
    fn cover_facets(
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
struct Pick {
    tables: Vec<usize>,
    bridges: HashMap<usize, Vec<usize>>,
    findings: Vec<Finding>,
}

/// Candidate tables and their coverage of each facet (rows in `0.0..=1.0`).
#[derive(Debug, Default)]
struct Coverage {
    tables: Vec<usize>,
    rows: Vec<Vec<f32>>,
    position: HashMap<usize, usize>,
}

impl Coverage {
    fn add(&mut self, t: usize, facets: usize) {
        if !self.position.contains_key(&t) {
            self.position.insert(t, self.tables.len());
            self.tables.push(t);
            self.rows.push(vec![0.0; facets]);
        }
    }

    fn row(&self, t: usize) -> Option<&Vec<f32>> {
        self.position.get(&t).map(|&i| &self.rows[i])
    }

    fn row_mut(&mut self, t: usize) -> Option<&mut Vec<f32>> {
        self.position.get(&t).map(|&i| &mut self.rows[i])
    }

    /// A table's weighted coverage of the whole question.
    fn value(&self, t: usize, facets: &[Facet]) -> f32 {
        self.row(t)
            .map_or(0.0, |r| r.iter().zip(facets).map(|(c, f)| c * f.weight).sum())
    }
}

/// What kind of thing a question word asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FacetKind {
    /// Found by its words (a dimension, an entity, a value).
    Plain,
    /// A measure: fact tables answer it even when no name says so (`revenue` → `lineitem`).
    Measure,
    /// A time grain or a year: any dated table answers it.
    Time,
}

/// One facet of a question: a (stemmed) term, how much it matters and what kind of thing it asks for.
#[derive(Debug, Clone, PartialEq)]
struct Facet {
    term: String,
    weight: f32,
    kind: FacetKind,
    /// For measures, the vocabulary entry the word matched (`quantit` for `quantities`).
    root: String,
}

/// Words that name a measure: they reach fact tables as well as the tables named for them.
const MEASURE_WORDS: &[&str] = &[
    "revenue", "sale", "sold", "sell", "amount", "quantit", "price", "spent", "spend", "profit", "purchase",
    "income", "earning",
];

/// Words that name a time grain.
const TIME_WORDS: &[&str] = &[
    "month",
    "monthly",
    "year",
    "yearly",
    "annual",
    "day",
    "daily",
    "week",
    "weekly",
    "quarter",
    "quarterly",
    "date",
];

/// Words that ask for an aggregate rather than name a thing: they matter little for which tables answer.
const AGGREGATE_WORDS: &[&str] = &[
    "number", "count", "total", "totals", "average", "avg", "sum", "most", "top", "highest", "lowest",
    "many", "much", "best", "more", "less",
];

/// The question's facets, one per distinct term, in question order.
fn facets(query: &[String], originals: &HashMap<String, String>) -> Vec<Facet> {
    let mut out: Vec<Facet> = Vec::new();
    for term in query {
        if out.iter().any(|f| &f.term == term) {
            continue;
        }
        let word = originals.get(term).map_or(term.as_str(), String::as_str);
        let year = word.len() == 4
            && (word.starts_with("19") || word.starts_with("20"))
            && word.parse::<u32>().is_ok();
        let measure = MEASURE_WORDS.iter().find(|m| word.starts_with(*m));
        let (kind, weight) = if year || TIME_WORDS.contains(&word) {
            (FacetKind::Time, TIME_WEIGHT)
        } else if AGGREGATE_WORDS.contains(&word) {
            (FacetKind::Plain, AGGREGATE_WEIGHT)
        } else if measure.is_some() {
            (FacetKind::Measure, 1.0)
        } else {
            (FacetKind::Plain, 1.0)
        };
        out.push(Facet {
            term: term.clone(),
            weight,
            kind,
            root: measure.map_or_else(String::new, |m| m.to_string()),
        });
    }
    out
}

/// Names of pre-aggregated relations (`monthly_revenue`, `Sales by Category`, `Summary of Sales by Year`):
/// they answer only the questions they were rolled up for, so base facts and dimensions win ties.
fn rollup_factor(name: &str) -> f32 {
    let rollup = words(name).iter().any(|w| {
        matches!(
            w.as_str(),
            "by" | "per"
                | "summary"
                | "monthly"
                | "weekly"
                | "daily"
                | "yearly"
                | "annual"
                | "quarterly"
                | "agg"
                | "aggregate"
                | "aggregated"
                | "rollup"
                | "totals"
        )
    });
    if rollup { ROLLUP } else { 1.0 }
}

/// dbt layers: marts (`dim_`, `fct_`) answer questions, staging views only where no mart does, raw
/// tables last; other names are neutral.
fn layer_factor(name: &str) -> f32 {
    let ws = words(name);
    let first = ws.first().map_or("", String::as_str);
    let last = ws.last().map_or("", String::as_str);
    match (first, last) {
        ("dim" | "fct" | "fact", _) | (_, "dim" | "fact" | "fct") => 1.0,
        ("stg" | "int", _) => 0.85,
        ("raw" | "src", _) => 0.75,
        _ => 1.0,
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
                "s.customers matched",
                "s.products matched",
                "s.order_items bridge",
                "s.orders bridge",
            ],
            3,
        );
        // Too small a limit keeps one of the (equally good) matches rather than a disconnected pair.
        check("customers who bought products", 2, &["s.customers matched"], 0);
    }

    #[test]
    fn propagation_prefers_the_connected_homonym() {
        // Both schemas have `orders`; the one joined to the matched customers ranks first, and the
        // unconnected homonym in `archive` is left out, as is `order_items`, which adds nothing asked for.
        check(
            "orders of customers",
            5,
            &["s.orders matched", "s.customers matched"],
            1,
        );
        // Naming the schema answers the question whole: the other `orders` adds nothing it asks for.
        check("archive orders", 5, &["archive.orders matched"], 0);
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
