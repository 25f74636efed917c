//! Which columns are keys (declared, or by naming convention in a relation that declares none), and
//! which key column a reference points at.

use crate::names::stem_key;
use crate::snapshot::{DeclaredKey, Table};

use super::KeyStrength;
use super::composite::composite_key;
use super::lookup::Names;
use super::shared::natural_key;
use super::tables::{KeyForm, TableInfo, single_key};

/// Fills in each table's key columns, which depend on every table's name (abbreviations).
pub(super) fn resolve_keys(tables: &[Table], infos: &mut [TableInfo], names: &Names) {
    let mut resolved = Vec::with_capacity(infos.len());
    {
        for (t, table) in tables.iter().enumerate() {
            let info = &infos[t];
            let composite = composite_key(table, info);
            // In a table named after two of its columns (`partsupp`), those columns are the halves of the
            // name, not abbreviations of it: `ps_partkey` alone is not partsupp's key.
            let halves: &[usize] = match &composite {
                Some((cols, KeyStrength::Conventional)) => cols,
                _ => &[],
            };
            let declared: Vec<Option<DeclaredKey>> = table
                .columns
                .iter()
                .map(|col| single_key(table, &col.name))
                .collect();
            // Only keys are targets: a column's name matters for its own table when it is a declared key, or
            // when the table declares no primary key and the name may make it one.
            let keyless = table.primary_key.is_empty();
            let names_own: Vec<bool> = info
                .forms
                .iter()
                .enumerate()
                .map(|(c, f)| {
                    (keyless || declared[c].is_some())
                        && !halves.contains(&c)
                        && f.as_ref().is_some_and(|f| names.names_own(infos, t, f))
                })
                .collect();
            let mut column_keys: Vec<KeyStrength> = declared
                .iter()
                .enumerate()
                .map(|(c, key)| match key {
                    Some(k) => KeyStrength::from_declared(Some(*k)),
                    None if keyless
                        && (names_own[c]
                            || is_own_id(&info.column_words[c], &info.key, info.bare_key.as_deref())) =>
                    {
                        KeyStrength::Conventional
                    }
                    None => KeyStrength::None,
                })
                .collect();
            // A keyless table with no key by name is identified by its one natural key, if it has one
            // (`raw_products.sku`).
            if keyless && composite.is_none() && column_keys.iter().all(|k| *k == KeyStrength::None) {
                let mut natural =
                    (0..column_keys.len()).filter(|&c| natural_key(info.bare_words(c)).is_some());
                if let (Some(c), None) = (natural.next(), natural.next()) {
                    column_keys[c] = KeyStrength::Conventional;
                }
            }
            resolved.push((names_own, column_keys, composite));
        }
    }
    for (info, (names_own, column_keys, composite)) in infos.iter_mut().zip(resolved) {
        info.names_own = names_own;
        info.column_keys = column_keys;
        info.composite = composite;
    }
}

/// `id`, or `<table>_id` in its own table: the column a table without a declared key is identified by.
fn is_own_id(column_words: &[String], key: &str, bare_key: Option<&str>) -> bool {
    match column_words.split_last() {
        Some((last, [])) => last == "id",
        Some((last, prefix)) if last == "id" => {
            let k = stem_key(prefix);
            k == key || Some(k.as_str()) == bare_key
        }
        _ => false,
    }
}

/// The referenced column of `table` for a source column named `source_words` whose prefix names the table:
/// `id`, the same name, or the table's own `<entity>_id` (also glued, `customerid`, or abbreviated,
/// `cust_id`); the strongest key wins.
pub(super) fn target_column(
    info: &TableInfo,
    source_words: &[String],
    source: Option<&KeyForm>,
) -> Option<(usize, KeyStrength)> {
    let mut best: Option<(usize, KeyStrength)> = None;
    for (c, w) in info.column_words.iter().enumerate() {
        let strength = info.column_keys[c];
        if strength == KeyStrength::None {
            continue;
        }
        let same_form =
            |f: &KeyForm| source.is_some_and(|s| s.class.reaches(f.class) && s.stem_key == f.stem_key);
        let named = w.len() == 1 && w[0] == "id"
            || w.as_slice() == source_words
            || is_own_id(w, &info.key, info.bare_key.as_deref())
            || info.forms[c]
                .as_ref()
                .is_some_and(|f| f.class.id_like() && (info.names_own[c] || same_form(f)));
        if named && best.is_none_or(|(_, s)| strength < s) {
            best = Some((c, strength));
        }
    }
    best
}

/// The key column of relation `info` that a reference read as `source` points at: `id` for an id-like
/// or `_fk` reference, otherwise a key with an agreeing suffix that has the same stem or names its own
/// table; the strongest key wins.
pub(super) fn key_target(info: &TableInfo, source: &KeyForm) -> Option<(usize, KeyStrength)> {
    let mut best: Option<(usize, KeyStrength)> = None;
    for (c, form) in info.forms.iter().enumerate() {
        let strength = info.column_keys[c];
        let Some(form) = form else {
            continue;
        };
        if strength == KeyStrength::None || !source.class.reaches(form.class) {
            continue;
        }
        let named = if form.stem.is_empty() {
            form.suffix == "id"
        } else {
            form.stem_key == source.stem_key || info.names_own[c]
        };
        if named && best.is_none_or(|(_, s)| strength < s) {
            best = Some((c, strength));
        }
    }
    best
}

/// The table's own single-column key, strongest first: where a self-reference points.
pub(super) fn own_key(info: &TableInfo) -> Option<(usize, KeyStrength)> {
    let mut best: Option<(usize, KeyStrength)> = None;
    for (c, &strength) in info.column_keys.iter().enumerate() {
        if strength != KeyStrength::None && best.is_none_or(|(_, s)| strength < s) {
            best = Some((c, strength));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use crate::graph::tests::check;

    #[test]
    fn never_joins_two_non_keys() {
        // `customers` declares no key and its id is not the conventional one.
        check(
            "table s.customers\n  code int\n  name text\ntable s.orders\n  customer_id int\n",
            &[],
        );
        // Key-suffixed columns that are keys nowhere join nothing, whatever the suffix.
        for suffix in ["id", "key", "sk", "code", "no", "num", "uuid"] {
            check(
                &format!(
                    "table s.a\n  id int pk\n  region_{suffix} int\ntable s.b\n  id int pk\n  region_{suffix} int\n"
                ),
                &[],
            );
        }
    }
}
