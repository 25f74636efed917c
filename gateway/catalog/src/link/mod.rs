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
//!
//! This file holds the result types and [`Catalog::schema_link`], which scores the chosen tables and lists
//! the joins among them; `facets` reads the question's facets, `coverage` rates each candidate table
//! against them, and `choose` picks the connected set.

mod choose;
mod coverage;
mod facets;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::catalog::Catalog;
use crate::finding::Finding;
use crate::graph::JoinEdge;
use crate::names::{stem, terms, words};
use crate::path::edge_allowed;
use crate::search::Field;
use crate::snapshot::TableId;

use facets::facets;

/// A bridge's score, relative to the weaker of the tables it connects.
const BRIDGE_DISCOUNT: f32 = 0.5;
/// Coverage factor of a relation named like a roll-up.
const ROLLUP: f32 = 0.85;

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
