//! What inference reads from each relation's name and columns, once: the name's stems, the column
//! prefix most columns share, and each column read as `<stem>_<key suffix>`.

use std::collections::HashSet;

use crate::names::{TABLE_PREFIXES, TABLE_SUFFIXES, stem, stem_key, words};
use crate::snapshot::{DeclaredKey, Table};

use super::KeyStrength;

/// What a key suffix says about a column; references join only onto keys whose suffix agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum SuffixClass {
    Id,
    Uuid,
    /// `_key` and `_sk` (surrogate key).
    Key,
    /// `_no` and `_num`.
    Number,
    Code,
    /// `_fk`: only ever the referencing side.
    Foreign,
}

impl SuffixClass {
    pub(super) fn of(word: &str) -> Option<SuffixClass> {
        match word {
            "id" => Some(SuffixClass::Id),
            "uuid" => Some(SuffixClass::Uuid),
            "key" | "sk" => Some(SuffixClass::Key),
            "no" | "num" => Some(SuffixClass::Number),
            "code" => Some(SuffixClass::Code),
            "fk" => Some(SuffixClass::Foreign),
            _ => None,
        }
    }

    /// Whether a reference with this suffix may point at a key with suffix `target`.
    pub(super) fn reaches(self, target: SuffixClass) -> bool {
        use SuffixClass::*;
        match (self, target) {
            (_, Foreign) => false,
            (Foreign, _) => true,
            (Id | Uuid, Id | Uuid) => true,
            (a, b) => a == b,
        }
    }

    pub(super) fn id_like(self) -> bool {
        matches!(self, SuffixClass::Id | SuffixClass::Uuid)
    }
}

/// Every key suffix `SuffixClass::of` knows, as written.
const KEY_SUFFIXES: &[&str] = &["id", "uuid", "key", "sk", "no", "num", "code", "fk"];

/// A column read as `<stem>_<key suffix>`, after the table's column prefix is dropped.
#[derive(Debug, Clone)]
pub(super) struct KeyForm {
    /// Lowercase words before the suffix, as written (`custkey` → `cust`).
    pub(super) stem: Vec<String>,
    /// Their stem key, under which they meet table names.
    pub(super) stem_key: String,
    pub(super) class: SuffixClass,
    /// The suffix as written (`key`, `sk`).
    pub(super) suffix: &'static str,
    /// The suffix was glued to the stem (`custkey`, `customerid`).
    pub(super) glued: bool,
    /// The table's column prefix was dropped to get here.
    pub(super) stripped: bool,
}

fn key_form(column_words: &[String], stripped: bool) -> Option<KeyForm> {
    let (last, rest) = column_words.split_last()?;
    let form = |stem: Vec<String>, class, suffix, glued| KeyForm {
        stem_key: stem_key(&stem),
        stem,
        class,
        suffix,
        glued,
        stripped,
    };
    if let Some(class) = SuffixClass::of(last) {
        let suffix = KEY_SUFFIXES
            .iter()
            .find(|s| **s == last.as_str())
            .copied()
            .unwrap_or("");
        return Some(form(rest.to_vec(), class, suffix, false));
    }
    if !rest.is_empty() || !last.is_ascii() {
        return None;
    }
    // Glued suffixes only where the stem cannot be an ordinary word's start: `customerid`, `custkey`, but
    // not `hockey` or `paid`.
    for (suffix, min_stem) in [("uuid", 3), ("id", 3), ("key", 4)] {
        if let Some(stem) = last.strip_suffix(suffix)
            && stem.len() >= min_stem
            && stem.chars().all(|c| c.is_ascii_alphabetic())
            && let Some(class) = SuffixClass::of(suffix)
        {
            return Some(form(vec![stem.to_string()], class, suffix, true));
        }
    }
    None
}

/// What inference needs to know about each table, computed once.
pub(super) struct TableInfo {
    /// Stem key of the whole name (`order_items` → `order_item`).
    pub(super) key: String,
    /// Stem key without a warehouse prefix or suffix (`dim_customer`, `stg_customers`, `date_dim` →
    /// `customer`, `customer`, `date`).
    pub(super) bare_key: Option<String>,
    /// The name's words without a warehouse prefix or suffix: what abbreviations expand to.
    pub(super) entity: Vec<String>,
    /// In a table with a column prefix and a name of several words, the last word (`customer_address` →
    /// `address`, which `ca_address_sk` names).
    pub(super) head: Option<String>,
    /// Last word's stem, for the people-table check.
    pub(super) last_stem: String,
    pub(super) column_words: Vec<Vec<String>>,
    /// Whether the column is read without the table's column prefix (`o_custkey` → `custkey`).
    prefixed: Vec<bool>,
    /// The prefix most columns share (`o` in `orders(o_orderkey, o_custkey, …)`), if there is one.
    pub(super) column_prefix: Option<String>,
    pub(super) forms: Vec<Option<KeyForm>>,
    /// The column's key form names its own table (`customer_id` in `customers`, `c_custkey` in `customer`).
    pub(super) names_own: Vec<bool>,
    pub(super) column_keys: Vec<KeyStrength>,
    /// A key of two or more columns: declared, or by convention in a table named after the entities of two
    /// of its columns (`partsupp (ps_partkey, ps_suppkey)`, `dept_emp (dept_no, emp_no)`).
    pub(super) composite: Option<(Vec<usize>, KeyStrength)>,
    /// Columns that alone are the source of a declared foreign key; inference leaves them alone.
    pub(super) declared_sources: HashSet<usize>,
}

impl TableInfo {
    /// The column's words without the table's column prefix, where it has one.
    pub(super) fn bare_words(&self, c: usize) -> &[String] {
        let w = &self.column_words[c];
        if self.prefixed[c] { &w[1..] } else { w }
    }
}

pub(super) fn single_key(table: &Table, column: &str) -> Option<DeclaredKey> {
    let one = |cols: &[String]| cols.len() == 1 && cols[0] == column;
    if one(&table.primary_key) {
        Some(DeclaredKey::Primary)
    } else if table.unique_constraints.iter().any(|u| one(&u.columns))
        || table.indexes.iter().any(|i| i.unique && one(&i.columns))
    {
        Some(DeclaredKey::Unique)
    } else {
        None
    }
}

/// The first word most of a table's columns share (`o` in TPC-H's `orders`, `ss` in TPC-DS's
/// `store_sales`): at most four letters, starting with the table's own first letter, on at least two and
/// more than half of the columns.
fn column_prefix(column_words: &[Vec<String>], entity: &[String]) -> Option<String> {
    let initial = entity.first()?.chars().next()?;
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for w in column_words.iter().filter(|w| w.len() >= 2) {
        match counts.iter_mut().find(|(p, _)| *p == w[0]) {
            Some((_, n)) => *n += 1,
            None => counts.push((&w[0], 1)),
        }
    }
    let (prefix, count) = counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))?;
    (count >= 2
        && count * 2 > column_words.len()
        && prefix.len() <= 4
        && prefix.chars().all(|c| c.is_ascii_alphabetic())
        && prefix.starts_with(initial))
    .then(|| prefix.to_string())
}

pub(super) fn table_info(table: &Table) -> TableInfo {
    let name_words = words(&table.id.name);
    let key = stem_key(&name_words);
    let mut entity: &[String] = &name_words;
    if let Some((first, rest)) = entity.split_first()
        && !rest.is_empty()
        && TABLE_PREFIXES.contains(&first.as_str())
    {
        entity = rest;
    }
    if let Some((last, rest)) = entity.split_last()
        && !rest.is_empty()
        && TABLE_SUFFIXES.contains(&last.as_str())
    {
        entity = rest;
    }
    let bare_key = (entity.len() < name_words.len()).then(|| stem_key(entity));
    let entity = entity.to_vec();
    let last_stem = name_words.last().map(|w| stem(w)).unwrap_or_default();
    let column_words: Vec<Vec<String>> = table.columns.iter().map(|c| words(&c.name)).collect();
    let column_prefix = column_prefix(&column_words, &entity);
    let head = (column_prefix.is_some() && entity.len() >= 2).then(|| entity[entity.len() - 1].clone());
    let mut prefixed = Vec::with_capacity(column_words.len());
    let mut forms = Vec::with_capacity(column_words.len());
    for w in &column_words {
        let stripped = match &column_prefix {
            Some(p) if w.len() >= 2 && w[0] == *p => Some(&w[1..]),
            _ => None,
        };
        // Drop the prefix unless only the suffix would remain (`item_no` in `item` stays whole).
        match stripped.map(|s| key_form(s, true)) {
            Some(Some(form)) if !form.stem.is_empty() || form.suffix == "id" => {
                prefixed.push(true);
                forms.push(Some(form));
            }
            Some(None) => {
                prefixed.push(true);
                forms.push(None);
            }
            _ => {
                prefixed.push(false);
                forms.push(key_form(w, false));
            }
        }
    }
    let declared_sources = table
        .foreign_keys
        .iter()
        .filter(|fk| fk.columns.len() == 1)
        .filter_map(|fk| table.columns.iter().position(|c| c.name == fk.columns[0]))
        .collect();
    TableInfo {
        key,
        bare_key,
        entity,
        head,
        last_stem,
        column_words,
        prefixed,
        column_prefix,
        forms,
        names_own: Vec::new(),
        column_keys: Vec::new(),
        composite: None,
        declared_sources,
    }
}
