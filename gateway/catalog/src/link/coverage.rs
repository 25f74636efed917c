//! Each candidate table's coverage of each facet: lexical (where the word was found, the BM25 rank only
//! breaking near-ties), measure words answered by fact tables, time words by dated tables and calendars,
//! all scaled by the table's dbt layer and roll-up name.

use std::collections::HashMap;

use crate::catalog::Catalog;
use crate::names::{TypeFamily, type_family, words};
use crate::search::Field;

use super::facets::{Facet, FacetKind};
use super::rollup_factor;

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
/// A measure word found only among a table's sampled values covers it at this fraction.
const VALUE_MEASURE: f32 = 0.3;
/// A table with a numeric column named for the measure word covers it at this much.
const NAMED_MEASURE_COVERAGE: f32 = 0.9;

impl Catalog {
    /// Every table's coverage of every facet: lexical (its share of the best BM25 score for the term),
    /// measures (fact tables for `revenue`, `sales`, `quantity`…) and time (dated tables and calendars for
    /// `month`, `1995`), each times the table's dbt layer factor.
    pub(super) fn coverage(
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
}

/// Candidate tables and their coverage of each facet (rows in `0.0..=1.0`).
#[derive(Debug, Default)]
pub(super) struct Coverage {
    pub(super) tables: Vec<usize>,
    pub(super) rows: Vec<Vec<f32>>,
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

    pub(super) fn row(&self, t: usize) -> Option<&Vec<f32>> {
        self.position.get(&t).map(|&i| &self.rows[i])
    }

    fn row_mut(&mut self, t: usize) -> Option<&mut Vec<f32>> {
        self.position.get(&t).map(|&i| &mut self.rows[i])
    }

    /// A table's weighted coverage of the whole question.
    pub(super) fn value(&self, t: usize, facets: &[Facet]) -> f32 {
        self.row(t)
            .map_or(0.0, |r| r.iter().zip(facets).map(|(c, f)| c * f.weight).sum())
    }
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
