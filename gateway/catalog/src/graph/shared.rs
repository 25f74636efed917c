//! The `SharedKey` and `NaturalKey` rules: a column that is the key of exactly one other relation under
//! the same name (`store_key`, `sku`) joins it.

use std::collections::HashMap;

use crate::names::join_compatibility;
use crate::snapshot::Table;

use super::score::{
    AMBIGUOUS, CROSS_SCHEMA, Candidate, NATURAL_KEY, SHARED_KEY_PRIMARY, SHARED_KEY_UNIQUE, base,
    push_types_note,
};
use super::tables::{SuffixClass, TableInfo};
use super::targets::pick_targets;
use super::{InferenceRule, KeyStrength};

/// Natural keys that are identifiers by definition, compared with a column's words joined by `_`. Kept short
/// on purpose: `email`, `code` or `name` are unique in some tables and attributes in others.
const NATURAL_KEYS: &[&str] = &[
    "sku", "isbn", "issn", "ean", "upc", "gtin", "asin", "isin", "iban", "vin", "iso_code",
];

/// The position in `NATURAL_KEYS` of a column's words (`sku`, `iso_code`), if it is one.
pub(super) fn natural_key(words: &[String]) -> Option<usize> {
    match words {
        [w] => NATURAL_KEYS.iter().position(|k| k == w),
        [a, b] => NATURAL_KEYS
            .iter()
            .position(|k| k.split_once('_') == Some((a.as_str(), b.as_str()))),
        _ => None,
    }
}

pub(super) fn shared_keys(tables: &[Table], infos: &[TableInfo], out: &mut Vec<Candidate>) {
    // Grouped by stem and kind of suffix, so that `store_key`, `StoreKey`, `storekey`, `store_sk` and
    // `ss_store_sk` (without its column prefix) meet.
    let mut groups: HashMap<(&str, SuffixClass), Vec<(usize, usize)>> = HashMap::new();
    for (t, info) in infos.iter().enumerate() {
        for (c, form) in info.forms.iter().enumerate() {
            if let Some(f) = form
                && !f.stem.is_empty()
                && f.class != SuffixClass::Foreign
            {
                groups
                    .entry((f.stem_key.as_str(), f.class))
                    .or_default()
                    .push((t, c));
            }
        }
    }
    let is_declared_key = |t: usize, c: usize| {
        matches!(
            infos[t].column_keys[c],
            KeyStrength::Primary | KeyStrength::Unique
        )
    };
    let mut names: Vec<&(&str, SuffixClass)> = groups.keys().collect();
    names.sort_by_key(|(stem, class)| (*stem, *class as u8));
    for name in names {
        let members = &groups[name];
        let holders: Vec<(usize, usize)> = members
            .iter()
            .copied()
            .filter(|&(t, c)| is_declared_key(t, c))
            .collect();
        if holders.is_empty() {
            continue;
        }
        for &(t, c) in members {
            if is_declared_key(t, c) || infos[t].declared_sources.contains(&c) {
                continue; // A key on both sides is not "a key on exactly one side"; declared FKs speak for themselves.
            }
            let table = &tables[t];
            let others: Vec<(usize, usize)> = holders.iter().copied().filter(|(h, _)| *h != t).collect();
            let same: Vec<(usize, usize)> = others
                .iter()
                .copied()
                .filter(|(h, _)| tables[*h].id.schema == table.id.schema)
                .collect();
            let cross = same.is_empty();
            let targets = if cross { others } else { same };
            let ambiguous = targets.len() > 1;
            for (h, hc) in targets {
                let (column, holder) = (&table.columns[c], &tables[h]);
                let target_col = &holder.columns[hc];
                let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
                    continue;
                };
                let strength = infos[h].column_keys[hc];
                let base = if strength == KeyStrength::Primary {
                    SHARED_KEY_PRIMARY
                } else {
                    SHARED_KEY_UNIQUE
                };
                let mut confidence = base * types;
                let mut reason = format!(
                    "{} is the {} of {} and a non-key column here",
                    target_col.name,
                    strength.describe(),
                    holder.id.name
                );
                let stripped = |x: usize, xc: usize| infos[x].forms[xc].as_ref().is_some_and(|f| f.stripped);
                if stripped(t, c) || stripped(h, hc) {
                    reason.push_str("; compared without the column prefixes");
                }
                if cross {
                    confidence *= CROSS_SCHEMA;
                    reason.push_str(&format!("; in another schema ({})", holder.id.schema));
                }
                if ambiguous {
                    confidence *= AMBIGUOUS;
                    reason.push_str("; it is a key in several tables");
                }
                push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
                out.push(Candidate::single(
                    t,
                    c,
                    h,
                    hc,
                    InferenceRule::SharedKey,
                    confidence,
                    reason,
                ));
            }
        }
    }
}

/// Joins a natural key without a key suffix (`raw_items.sku`) to the one relation where it is the key
/// (`raw_products.sku`: declared, or the only key of a keyless table). A key on both sides or on several
/// tables infers nothing.
pub(super) fn natural_keys(tables: &[Table], infos: &[TableInfo], out: &mut Vec<Candidate>) {
    let mut groups: Vec<Vec<(usize, usize)>> = vec![Vec::new(); NATURAL_KEYS.len()];
    for (t, info) in infos.iter().enumerate() {
        for c in 0..info.column_words.len() {
            if let Some(k) = natural_key(info.bare_words(c)) {
                groups[k].push((t, c));
            }
        }
    }
    for members in groups.iter().filter(|m| m.len() >= 2) {
        let is_key = |(t, c): (usize, usize)| infos[t].column_keys[c] != KeyStrength::None;
        for &(t, c) in members {
            if is_key((t, c)) || infos[t].declared_sources.contains(&c) {
                continue;
            }
            let found: Vec<(usize, bool)> = members
                .iter()
                .copied()
                .filter(|&(h, hc)| h != t && is_key((h, hc)))
                .map(|(h, _)| (h, false))
                .collect();
            if found.is_empty() {
                continue;
            }
            let picked = pick_targets(tables, t, found);
            if picked.ambiguous {
                continue;
            }
            let column = &tables[t].columns[c];
            for target in &picked.targets {
                let h = target.relation;
                let Some(&(_, hc)) = members.iter().find(|(x, _)| *x == h) else {
                    continue;
                };
                let (holder, target_col) = (&tables[h], &tables[h].columns[hc]);
                let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
                    continue;
                };
                let strength = infos[h].column_keys[hc];
                let mut confidence = base(NATURAL_KEY, strength) * types;
                let mut reason = format!(
                    "{} is a natural key; {}.{} is its {} and {} is a non-key column here",
                    column.name,
                    holder.id.name,
                    target_col.name,
                    strength.describe(),
                    column.name
                );
                picked.modifiers(target, tables, &mut confidence, &mut reason);
                push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
                out.push(Candidate::single(
                    t,
                    c,
                    h,
                    hc,
                    InferenceRule::NaturalKey,
                    confidence,
                    reason,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::tests::{check, check_findings};

    #[test]
    fn shared_key_columns_join_only_when_a_key_on_exactly_one_side() {
        check(
            "table w.dim_store\n  store_code text pk\ntable w.sales\n  id int pk\n  store_code text\n",
            &["w.sales(store_code) -> w.dim_store(store_code) SharedKey 0.8"],
        );
        // Key on both sides: no inference. Key on neither side: no inference.
        check(
            "table w.a\n  region_key int pk\ntable w.b\n  region_key int pk\n",
            &[],
        );
        check(
            "table w.a\n  id int pk\n  region_key int\ntable w.b\n  id int pk\n  region_key int\n",
            &[],
        );
        // A unique key counts; two key holders make each join ambiguous.
        check(
            "table w.stores\n  id int pk\n  store_key int unique\ntable w.shops\n  id int pk\n  store_key int unique\n\
             table w.sales\n  id int pk\n  store_key int\n",
            &[
                "w.sales(store_key) -> w.shops(store_key) SharedKey 0.638",
                "w.sales(store_key) -> w.stores(store_key) SharedKey 0.638",
            ],
        );
    }

    #[test]
    fn natural_keys_join_where_they_are_the_key_on_one_side() {
        let cases: &[(&str, &[&str])] = &[
            // A keyless table identified by its natural key; the other side has its own `id`.
            (
                "table raw.raw_products\n  sku text\n  name text\ntable raw.raw_items\n  id int\n  order_id int\n  sku text\n",
                &["raw.raw_items(sku) -> raw.raw_products(sku) NaturalKey 0.6"],
            ),
            // Declared, and a two-word natural key.
            (
                "table s.books\n  isbn text pk\n  title text\ntable s.reviews\n  id int pk\n  isbn text\n\
                 table s.countries\n  iso_code text unique\n  name text\ntable s.cities\n  id int pk\n  iso_code text\n",
                &[
                    "s.cities(iso_code) -> s.countries(iso_code) SharedKey 0.75",
                    "s.reviews(isbn) -> s.books(isbn) NaturalKey 0.8",
                ],
            ),
            // A key on neither side, on both sides, on two tables, with unjoinable types, or a word that is
            // not on the list: nothing.
            (
                "table s.products\n  id int pk\n  sku text\ntable s.items\n  id int pk\n  sku text\n",
                &[],
            ),
            (
                "table s.products\n  sku text pk\ntable s.product_details\n  sku text pk\n  notes text\n",
                &[],
            ),
            (
                "table s.products\n  sku text pk\ntable s.archived_products\n  sku text pk\ntable s.items\n  id int pk\n  sku text\n",
                &[],
            ),
            (
                "table s.products\n  sku text pk\ntable s.items\n  id int pk\n  sku boolean\n",
                &[],
            ),
            (
                "table s.accounts\n  email text pk\ntable s.logins\n  id int pk\n  email text\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check_findings(schema, edges, &[]);
        }
    }
}
