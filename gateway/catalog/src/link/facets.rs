//! The question's facets: one per distinct term, marked as a measure, a time grain or a plain word, and
//! weighted (aggregate words weigh little).

use std::collections::HashMap;

/// What a time word and an aggregate word weigh in the question (any other facet weighs 1.0).
const TIME_WEIGHT: f32 = 0.5;
const AGGREGATE_WEIGHT: f32 = 0.1;

/// What kind of thing a question word asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FacetKind {
    /// Found by its words (a dimension, an entity, a value).
    Plain,
    /// A measure: fact tables answer it even when no name says so (`revenue` → `lineitem`).
    Measure,
    /// A time grain or a year: any dated table answers it.
    Time,
}

/// One facet of a question: a (stemmed) term, how much it matters and what kind of thing it asks for.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Facet {
    pub(super) term: String,
    pub(super) weight: f32,
    pub(super) kind: FacetKind,
    /// For measures, the vocabulary entry the word matched (`quantit` for `quantities`).
    pub(super) root: String,
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
pub(super) fn facets(query: &[String], originals: &HashMap<String, String>) -> Vec<Facet> {
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
