//! Lexical search over table names, column names, comments and sampled values: a BM25 ranking of tables
//! (each table is one document whose fields carry different weights) plus per-column attribution.
//!
//! BM25 rather than plain TF-IDF because its term-frequency saturation stops a wide table that repeats a
//! word in forty column names from outranking the table named for it, and its length normalisation is
//! tunable (we use a mild `b` so that wide fact tables are not buried).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;

use serde::Serialize;

use crate::names::terms;
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

const K1: f32 = 1.2;
const B: f32 = 0.5;
/// A question word that is a prefix of an indexed word (or the reverse) counts at this fraction.
const PREFIX_MATCH: f32 = 0.5;
const MIN_PREFIX: usize = 4;
const MAX_EXPANSIONS: usize = 16;

#[derive(Debug, Clone)]
struct Posting {
    table: u32,
    /// Column position, or `u32::MAX` for table-level fields.
    column: u32,
    field: Field,
}

/// The inverted index, built once per catalog.
#[derive(Debug, Clone, Default)]
pub(crate) struct SearchIndex {
    /// Sorted, so that prefix expansion is a range scan.
    postings: BTreeMap<String, Vec<Posting>>,
    /// Weighted term count per table (the BM25 document length).
    doc_len: Vec<f32>,
    avg_len: f32,
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
}

impl SearchIndex {
    /// `join_columns` holds `(table, column)` positions that reference another table.
    pub fn build(tables: &[Table], join_columns: &HashSet<(usize, usize)>) -> SearchIndex {
        let mut postings: BTreeMap<String, Vec<Posting>> = BTreeMap::new();
        let mut doc_len = vec![0.0f32; tables.len()];
        let mut add = |term: String, table: usize, column: u32, field: Field, doc_len: &mut Vec<f32>| {
            doc_len[table] += field.weight();
            postings.entry(term).or_default().push(Posting {
                table: table as u32,
                column,
                field,
            });
        };
        for (t, table) in tables.iter().enumerate() {
            for term in terms(&table.id.name) {
                add(term, t, u32::MAX, Field::TableName, &mut doc_len);
            }
            for term in terms(&table.id.schema) {
                add(term, t, u32::MAX, Field::SchemaName, &mut doc_len);
            }
            for term in table.comment.as_deref().map(terms).unwrap_or_default() {
                add(term, t, u32::MAX, Field::TableComment, &mut doc_len);
            }
            for (c, column) in table.columns.iter().enumerate() {
                let field = if join_columns.contains(&(t, c)) {
                    Field::JoinColumn
                } else {
                    Field::ColumnName
                };
                let c = c as u32;
                for term in terms(&column.name) {
                    add(term, t, c, field, &mut doc_len);
                }
                for term in column.comment.as_deref().map(terms).unwrap_or_default() {
                    add(term, t, c, Field::ColumnComment, &mut doc_len);
                }
                for sample in &column.samples {
                    for term in terms(sample) {
                        add(term, t, c, Field::SampleValue, &mut doc_len);
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

    /// Ranks tables for the (already stemmed) query terms; tables without any match are left out.
    pub fn search(&self, query: &[String]) -> Vec<TableHit> {
        let n = self.doc_len.len() as f32;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let mut matches: HashMap<u32, Vec<(String, Field, Option<usize>)>> = HashMap::new();
        let mut column_scores: HashMap<(u32, u32), (f32, Vec<String>)> = HashMap::new();
        let mut tf: HashMap<u32, f32> = HashMap::new();
        let mut unique: Vec<&String> = query.iter().collect();
        unique.sort();
        unique.dedup();
        for q in unique {
            for (term, fraction) in self.expand(q) {
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
                for p in list {
                    *tf.entry(p.table).or_default() += p.field.weight();
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
                    *scores.entry(t).or_default() += idf * (f * (K1 + 1.0)) / (f + K1 * len_norm) * fraction;
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
