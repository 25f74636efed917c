//! Relations by the names a reference may use for them: the whole stem, the stem without a warehouse
//! prefix or suffix, an abbreviation or initialism; and the relations that hold people.

use std::collections::HashMap;

use crate::names::{abbreviates, initialism, initialism_key, stem};

use super::roles::PEOPLE;
use super::tables::{KeyForm, SuffixClass, TableInfo};

/// Relation positions by the stem key of their name, with whether the name matched without its warehouse
/// prefix or suffix; and by the first three letters of their entity (and head) word, for abbreviations.
pub(super) struct Names {
    pub(super) by_name: HashMap<String, Vec<(usize, bool)>>,
    by_initials: HashMap<[u8; 3], Vec<usize>>,
    /// Relations that hold people (`employees`, `staff`), for person roles.
    pub(super) people: Vec<usize>,
}

/// The first three bytes of an ASCII word, the bucket abbreviations are looked up in.
fn initials(word: &str) -> Option<[u8; 3]> {
    match word.as_bytes() {
        [a, b, c, ..] if word.is_ascii() => Some([*a, *b, *c]),
        _ => None,
    }
}

impl Names {
    pub(super) fn new(infos: &[TableInfo]) -> Names {
        let mut by_name: HashMap<String, Vec<(usize, bool)>> = HashMap::with_capacity(infos.len() * 2);
        let mut by_initials: HashMap<[u8; 3], Vec<usize>> = HashMap::new();
        let mut people = Vec::new();
        for (t, info) in infos.iter().enumerate() {
            if PEOPLE.contains(&info.last_stem.as_str()) {
                people.push(t);
            }
            // `hdemo` abbreviates `household_demographics` by initials; its bucket is `hde`.
            if let Some(key) = initialism_key(&info.entity) {
                let list = by_initials.entry(key).or_default();
                if list.last() != Some(&t) {
                    list.push(t);
                }
            }
            by_name.entry(info.key.clone()).or_default().push((t, false));
            if let Some(bare) = &info.bare_key {
                by_name.entry(bare.clone()).or_default().push((t, true));
            }
            for word in info.entity.first().into_iter().chain(&info.head) {
                if word.len() > 3
                    && let Some(key) = initials(word)
                {
                    let list = by_initials.entry(key).or_default();
                    if list.last() != Some(&t) {
                        list.push(t);
                    }
                }
            }
        }
        Names {
            by_name,
            by_initials,
            people,
        }
    }

    /// Whether `stem` (lowercase words) abbreviates relation `x`'s name, word for word (`cust` →
    /// `customers`, `prod_cat` → `product_categories`), by initials (`hdemo` → `household_demographics`), or
    /// the head word of a prefixed table (`addr` → `customer_address`).
    fn abbreviates(short: &[String], info: &TableInfo) -> bool {
        let word = |s: &String, w: &String| stem(s) == stem(w) || abbreviates(s, w);
        let whole = short.len() == info.entity.len()
            && short.iter().zip(&info.entity).all(|(s, w)| word(s, w))
            && short.iter().zip(&info.entity).any(|(s, w)| abbreviates(s, w));
        whole
            || matches!((short, &info.head), ([s], Some(h)) if word(s, h))
            || matches!(short, [s] if initialism(s, &info.entity))
    }

    /// The relations (other than `t`) whose name `stem` abbreviates, when they are one entity (a table and
    /// its staging view count once); `Err` when several entities fit, which leaves the reference unread.
    pub(super) fn abbreviated(
        &self,
        infos: &[TableInfo],
        short: &[String],
        t: usize,
    ) -> Result<Vec<(usize, bool)>, ()> {
        let Some(first) = short.first().filter(|f| f.len() >= 3 && f.is_ascii()) else {
            return Ok(Vec::new());
        };
        let Some(list) = initials(first).and_then(|k| self.by_initials.get(&k)) else {
            return Ok(Vec::new());
        };
        let hits: Vec<(usize, bool)> = list
            .iter()
            .filter(|&&x| x != t && Names::abbreviates(short, &infos[x]))
            .map(|&x| (x, infos[x].bare_key.is_some()))
            .collect();
        let entity = |x: usize| infos[x].bare_key.as_deref().unwrap_or(&infos[x].key);
        match hits.first() {
            Some(&(x, _)) if hits.iter().any(|&(y, _)| entity(y) != entity(x)) => Err(()),
            _ => Ok(hits),
        }
    }

    /// Whether `form` names relation `t` itself: its own key by convention.
    pub(super) fn names_own(&self, infos: &[TableInfo], t: usize, form: &KeyForm) -> bool {
        let info = &infos[t];
        if form.class == SuffixClass::Foreign {
            return false;
        }
        if form.stem.is_empty() {
            return form.suffix == "id";
        }
        if form.stem_key == info.key || Some(&form.stem_key) == info.bare_key.as_ref() {
            return true;
        }
        // An abbreviation names this table unless the stem is another table's whole name (`ps_partkey` in
        // `partsupp` names `part`).
        let elsewhere = self
            .by_name
            .get(form.stem_key.as_str())
            .is_some_and(|hits| hits.iter().any(|&(x, _)| x != t));
        !elsewhere && Names::abbreviates(&form.stem, info)
    }
}
