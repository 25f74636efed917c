//! Lexical search over table names, column names, comments and sampled values: a BM25 ranking of tables
//! (each table is one document whose fields carry different weights) plus per-column attribution.
//!
//! BM25 rather than plain TF-IDF because its term-frequency saturation stops a wide table that repeats a
//! word in forty column names from outranking the table named for it, and its length normalisation is
//! tunable (we use a mild `b` so that wide fact tables are not buried).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;

use serde::Serialize;

use crate::names::{TABLE_PREFIXES, TABLE_SUFFIXES, TypeFamily, terms, type_family, words};
use crate::snapshot::Table;

/// Where in a table a question's term was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    TableName,
    /// The table's schema name, so that `archive orders` prefers `archive.orders`.
    SchemaName,
    ColumnName,
    /// The name of a column that references another table (`customer_id`): its words name that other
    /// table, so they are weak evidence for this one.
    JoinColumn,
    TableComment,
    ColumnComment,
    SampleValue,
}

impl Field {
    /// How much one occurrence counts: a table named for the word matters most, a sampled value least.
    fn weight(self) -> f32 {
        match self {
            Field::TableName => 3.0,
            Field::SchemaName => 1.0,
            Field::ColumnName => 1.5,
            Field::JoinColumn => 0.1,
            Field::TableComment => 1.0,
            Field::ColumnComment => 0.75,
            Field::SampleValue => 0.5,
        }
    }
}

impl Field {
    /// How well a table answers a question word found in this field, in `0.0..=1.0`: named for it, a
    /// column or a sampled value for it, only a comment, or only a reference to another table.
    fn coverage(self) -> f32 {
        match self {
            Field::TableName => 1.0,
            Field::ColumnName | Field::SampleValue => 0.8,
            Field::TableComment => 0.6,
            Field::ColumnComment => 0.5,
            Field::SchemaName => 0.4,
            Field::JoinColumn => 0.2,
        }
    }
}

/// A table name that carries words the question does not (`order_items` for "orders") covers the word
/// it shares at this much.
const PARTIAL_NAME: f32 = 0.7;
/// A numeric column named for a question word covers it at this fraction of a column's coverage.
const NUMERIC_COLUMN: f32 = 0.6;

const K1: f32 = 1.2;
const B: f32 = 0.5;
/// A question word that is a prefix of an indexed word (or the reverse) counts at this fraction.
const PREFIX_MATCH: f32 = 0.5;
const MIN_PREFIX: usize = 4;
/// A prefix match covers a question word at this fraction of a whole-word match.
const PREFIX_COVERAGE: f32 = 0.6;
const MAX_EXPANSIONS: usize = 16;

#[derive(Debug, Clone)]
struct Posting {
    table: u32,
    /// Column position, or `u32::MAX` for table-level fields.
    column: u32,
    field: Field,
    /// How well the table answers the word found here ([`Field::coverage`], less for numeric columns).
    coverage: f32,
}

/// The inverted index, built once per catalog.
#[derive(Debug, Clone, Default)]
pub(crate) struct SearchIndex {
    /// Sorted, so that prefix expansion is a range scan.
    postings: BTreeMap<String, Vec<Posting>>,
    /// Weighted term count per table (the BM25 document length).
    doc_len: Vec<f32>,
    avg_len: f32,
    /// Per table, what schema search needs to know about its shape (fact or dimension, dated or not).
    pub(crate) profiles: Vec<TableProfile>,
    /// Per table, the stems of its name without warehouse prefixes and suffixes (`fct_orders` → `order`).
    entity: Vec<Vec<String>>,
}

/// The shape of a table as schema search reads it: a fact table carries measures and many references, a
/// dated table can answer "per month" or "in 1995" without naming either.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TableProfile {
    /// Numeric columns named like a measure (`l_extendedprice`, `order_total`, `Quantity`, `tax_paid`).
    pub measures: u16,
    /// Columns that reference another table.
    pub join_columns: u16,
    /// Whether any column is a date or timestamp.
    pub dated: bool,
    /// Whether the table is a calendar dimension (`date_dim`, `calendar`, `time_dim`).
    pub calendar: bool,
}

/// Words inside a column name that make a numeric column a measure. Matched as substrings of each word, so
/// glued names (`extendedprice`, `supplycost`, `subtotal`) count too.
const MEASURE_WORDS: &[&str] = &[
    "price", "amount", "amt", "quantit", "qty", "total", "revenue", "sales", "cost", "profit", "paid", "tax",
    "discount", "freight", "fee",
];

fn is_measure(column: &crate::snapshot::Column) -> bool {
    let numeric = matches!(
        type_family(&column.data_type),
        TypeFamily::Integer | TypeFamily::Decimal | TypeFamily::Float
    );
    let ws = words(&column.name);
    // Keys and counts are not measures, whatever else their name says.
    let key = ws
        .last()
        .is_some_and(|w| matches!(w.as_str(), "id" | "key" | "sk" | "no" | "num" | "code" | "count"));
    numeric && !key && ws.iter().any(|w| MEASURE_WORDS.iter().any(|m| w.contains(m)))
}

/// One table's lexical result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TableHit {
    pub table: usize,
    pub score: f32,
    /// `(query term, field, column position)` for every place a term was found.
    pub matches: Vec<(String, Field, Option<usize>)>,
    /// Column position → score from its own name, comment and samples.
    pub columns: Vec<(usize, f32, Vec<String>)>,
    /// Query term → its share of `score`, and how well the table answers it by where it was found
    /// ([`Field::coverage`]), independent of the table's width.
    pub terms: Vec<(String, f32, f32)>,
}

impl SearchIndex {
    /// `join_columns` holds `(table, column)` positions that reference another table.
    pub fn build(tables: &[Table], join_columns: &HashSet<(usize, usize)>) -> SearchIndex {
        let mut postings: BTreeMap<String, Vec<Posting>> = BTreeMap::new();
        let mut doc_len = vec![0.0f32; tables.len()];
        let mut profiles = vec![TableProfile::default(); tables.len()];
        let entity: Vec<Vec<String>> = tables
            .iter()
            .map(|t| {
                let mut ws = terms(&t.id.name);
                if ws.len() > 1 && TABLE_PREFIXES.contains(&ws[0].as_str()) {
                    ws.remove(0);
                }
                if ws.len() > 1 && ws.last().is_some_and(|w| TABLE_SUFFIXES.contains(&w.as_str())) {
                    ws.pop();
                }
                ws
            })
            .collect();
        let mut add =
            |term: String, table: usize, column: u32, field: Field, factor: f32, doc_len: &mut Vec<f32>| {
                doc_len[table] += field.weight();
                let coverage = field.coverage() * factor;
                postings.entry(term).or_default().push(Posting {
                    table: table as u32,
                    column,
                    field,
                    coverage,
                });
            };
        for (t, table) in tables.iter().enumerate() {
            profiles[t].calendar = words(&table.id.name)
                .iter()
                .any(|w| matches!(w.as_str(), "date" | "calendar" | "dates" | "day"));
            for term in terms(&table.id.name) {
                add(term, t, u32::MAX, Field::TableName, 1.0, &mut doc_len);
            }
            for term in terms(&table.id.schema) {
                add(term, t, u32::MAX, Field::SchemaName, 1.0, &mut doc_len);
            }
            for term in table.comment.as_deref().map(terms).unwrap_or_default() {
                add(term, t, u32::MAX, Field::TableComment, 1.0, &mut doc_len);
            }
            for (c, column) in table.columns.iter().enumerate() {
                let joins = join_columns.contains(&(t, c));
                let field = if joins {
                    Field::JoinColumn
                } else {
                    Field::ColumnName
                };
                let profile = &mut profiles[t];
                profile.join_columns += u16::from(joins);
                profile.measures += u16::from(!joins && is_measure(column));
                profile.dated |= matches!(
                    type_family(&column.data_type),
                    TypeFamily::Date | TypeFamily::Timestamp
                );
                let c = c as u32;
                // A numeric column named for a thing counts or measures it (`new_customers`): it does not
                // make the table that thing's dimension.
                let numeric = matches!(
                    type_family(&column.data_type),
                    TypeFamily::Integer | TypeFamily::Decimal | TypeFamily::Float
                );
                let named = words(&column.name).iter().filter(|w| w.len() > 2).count() > 1;
                let factor = if numeric && named && field == Field::ColumnName {
                    NUMERIC_COLUMN
                } else {
                    1.0
                };
                for term in terms(&column.name) {
                    add(term, t, c, field, factor, &mut doc_len);
                }
                for term in column.comment.as_deref().map(terms).unwrap_or_default() {
                    add(term, t, c, Field::ColumnComment, 1.0, &mut doc_len);
                }
                for sample in &column.samples {
                    for term in terms(sample) {
                        add(term, t, c, Field::SampleValue, 1.0, &mut doc_len);
                    }
                }
            }
        }
        let avg_len = if doc_len.is_empty() {
            1.0
        } else {
            doc_len.iter().sum::<f32>() / doc_len.len() as f32
        };
        SearchIndex {
            postings,
            doc_len,
            avg_len: avg_len.max(1.0),
            profiles,
            entity,
        }
    }

    /// Index terms that `term` matches, with the fraction each counts: itself fully, and words it is a
    /// prefix of (or that are a prefix of it) at [`PREFIX_MATCH`], so that `cust` finds `customer` and
    /// `orderlines` finds `order`.
    fn expand(&self, term: &str) -> Vec<(&str, f32)> {
        let mut out = Vec::new();
        if let Some((k, _)) = self.postings.get_key_value(term) {
            out.push((k.as_str(), 1.0));
        }
        if term.chars().count() >= MIN_PREFIX {
            for (k, _) in self
                .postings
                .range::<str, _>((Bound::Included(term), Bound::Unbounded))
                .skip_while(|(k, _)| *k == term)
            {
                if !k.starts_with(term) || out.len() >= MAX_EXPANSIONS {
                    break;
                }
                out.push((k.as_str(), PREFIX_MATCH));
            }
            let chars: Vec<(usize, char)> = term.char_indices().collect();
            for &(end, _) in chars.iter().skip(MIN_PREFIX) {
                if let Some((k, _)) = self.postings.get_key_value(&term[..end]) {
                    out.push((k.as_str(), PREFIX_MATCH));
                }
            }
        }
        out
    }

    /// Ranks tables for the (already stemmed) query terms; tables without any match are left out. The
    /// `exact` terms (glued compounds such as `lineitem`) are matched only whole: a compound's prefixes are
    /// its own words, searched already.
    pub fn search(&self, query: &[String], exact: &[String]) -> Vec<TableHit> {
        let n = self.doc_len.len() as f32;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let mut matches: HashMap<u32, Vec<(String, Field, Option<usize>)>> = HashMap::new();
        let mut per_term: HashMap<u32, Vec<(String, f32, f32)>> = HashMap::new();
        let mut coverage: HashMap<u32, f32> = HashMap::new();
        let mut column_scores: HashMap<(u32, u32), (f32, Vec<String>)> = HashMap::new();
        let mut tf: HashMap<u32, f32> = HashMap::new();
        let mut unique: Vec<&String> = query.iter().collect();
        unique.sort();
        unique.dedup();
        for q in unique {
            let mut expanded = self.expand(q);
            if exact.contains(q) {
                expanded.retain(|(_, fraction)| *fraction >= 1.0);
            }
            for (term, fraction) in expanded {
                let Some(list) = self.postings.get(term) else {
                    continue;
                };
                // Postings were added table by table, so equal tables are adjacent.
                let mut df = 0usize;
                let mut last = None;
                for p in list {
                    if last != Some(p.table) {
                        df += 1;
                        last = Some(p.table);
                    }
                }
                let df = df as f32;
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                tf.clear();
                coverage.clear();
                for p in list {
                    *tf.entry(p.table).or_default() += p.field.weight();
                    let mut c = p.coverage;
                    if p.field == Field::TableName
                        && !self.entity[p.table as usize].iter().all(|w| query.contains(w))
                    {
                        c *= PARTIAL_NAME;
                    }
                    let c = if fraction < 1.0 { c * PREFIX_COVERAGE } else { c };
                    let best = coverage.entry(p.table).or_default();
                    *best = best.max(c);
                    let column = (p.column != u32::MAX).then_some(p.column as usize);
                    matches
                        .entry(p.table)
                        .or_default()
                        .push((q.clone(), p.field, column));
                    if p.column != u32::MAX {
                        let col = column_scores.entry((p.table, p.column)).or_default();
                        col.0 += idf * p.field.weight() * fraction;
                        if !col.1.contains(q) {
                            col.1.push(q.clone());
                        }
                    }
                }
                for (&t, &f) in &tf {
                    let len_norm = 1.0 - B + B * self.doc_len[t as usize] / self.avg_len;
                    let s = idf * (f * (K1 + 1.0)) / (f + K1 * len_norm) * fraction;
                    *scores.entry(t).or_default() += s;
                    let c = coverage.get(&t).copied().unwrap_or(0.0);
                    let list = per_term.entry(t).or_default();
                    match list.iter_mut().find(|(term, _, _)| term == q) {
                        Some(entry) => {
                            entry.1 += s;
                            entry.2 = entry.2.max(c);
                        }
                        None => list.push((q.clone(), s, c)),
                    }
                }
            }
        }
        let mut hits: Vec<TableHit> = scores
            .into_iter()
            .map(|(t, score)| {
                let mut m = matches.remove(&t).unwrap_or_default();
                m.sort();
                m.dedup();
                TableHit {
                    table: t as usize,
                    score,
                    matches: m,
                    columns: Vec::new(),
                    terms: per_term.remove(&t).unwrap_or_default(),
                }
            })
            .collect();
        let position: HashMap<usize, usize> = hits.iter().enumerate().map(|(i, h)| (h.table, i)).collect();
        for ((t, c), (score, terms)) in column_scores {
            if let Some(&i) = position.get(&(t as usize)) {
                hits[i].columns.push((c as usize, score, terms));
            }
        }
        for hit in &mut hits {
            hit.columns
                .sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.table.cmp(&b.table)));
        hits
    }
}
