//! The `CompositeKey` rule: a relation's key of several columns (declared, or by a name spelled from
//! two of its columns) and the columns elsewhere that match it column for column, as one edge.

use std::collections::HashMap;

use crate::finding::Finding;
use crate::names::join_compatibility;
use crate::snapshot::Table;

use super::score::{COMPOSITE_KEY, Candidate, base};
use super::tables::{SuffixClass, TableInfo};
use super::targets::pick_targets;
use super::{InferenceRule, KeyStrength};

/// A declared key of several columns, or by convention two columns whose stems spell the table's name
/// (`partsupp` = `part` + `supp`) in a table that declares no primary key.
pub(super) fn composite_key(table: &Table, info: &TableInfo) -> Option<(Vec<usize>, KeyStrength)> {
    let positions = |cols: &[String]| -> Option<Vec<usize>> {
        cols.iter()
            .map(|n| table.columns.iter().position(|c| c.name == *n))
            .collect()
    };
    let declared = std::iter::once((&table.primary_key, KeyStrength::Primary))
        .chain(
            table
                .unique_constraints
                .iter()
                .map(|u| (&u.columns, KeyStrength::Unique)),
        )
        .chain(
            table
                .indexes
                .iter()
                .filter(|i| i.unique)
                .map(|i| (&i.columns, KeyStrength::Unique)),
        )
        .find(|(cols, _)| cols.len() >= 2);
    if let Some((cols, strength)) = declared {
        return positions(cols).map(|p| (p, strength));
    }
    if !table.primary_key.is_empty() {
        return None;
    }
    let glued = |k: &str| k.replace('_', "");
    let name = glued(info.bare_key.as_deref().unwrap_or(&info.key));
    let stems: Vec<(usize, String)> = info
        .forms
        .iter()
        .enumerate()
        .filter_map(|(c, f)| match f {
            Some(f) if !f.stem.is_empty() && f.class != SuffixClass::Foreign => Some((c, glued(&f.stem_key))),
            _ => None,
        })
        .collect();
    for (i, (a, sa)) in stems.iter().enumerate() {
        for (b, sb) in &stems[i + 1..] {
            if name.len() == sa.len() + sb.len()
                && ((name.starts_with(sa.as_str()) && name.ends_with(sb.as_str()))
                    || (name.starts_with(sb.as_str()) && name.ends_with(sa.as_str())))
            {
                return Some((vec![*a, *b], KeyStrength::Conventional));
            }
        }
    }
    None
}

/// Joins columns that match a multi-column key column for column (same stem and suffix once column
/// prefixes are dropped) as one edge: `lineitem (l_partkey, l_suppkey)` → `partsupp (ps_partkey,
/// ps_suppkey)`.
pub(super) fn composite_keys(
    tables: &[Table],
    infos: &[TableInfo],
    out: &mut Vec<Candidate>,
    findings: &mut Vec<Finding>,
) {
    if infos.iter().all(|i| i.composite.is_none()) {
        return;
    }
    let mut by_form: HashMap<(&str, SuffixClass), Vec<(usize, usize)>> = HashMap::new();
    for (t, info) in infos.iter().enumerate() {
        for (c, form) in info.forms.iter().enumerate() {
            if let Some(f) = form
                && !f.stem.is_empty()
                && f.class != SuffixClass::Foreign
            {
                by_form
                    .entry((f.stem_key.as_str(), f.class))
                    .or_default()
                    .push((t, c));
            }
        }
    }
    // For each source table, the keys it matches: (target, source columns).
    let mut matches: HashMap<usize, Vec<(usize, Vec<usize>)>> = HashMap::new();
    for (k, info) in infos.iter().enumerate() {
        let Some((key_columns, _)) = &info.composite else {
            continue;
        };
        // Intersect, component by component, the tables holding a column of the same form.
        let mut sources: Option<HashMap<usize, Vec<usize>>> = None;
        for &kc in key_columns {
            let mut next: HashMap<usize, Vec<usize>> = HashMap::new();
            let holders = info.forms[kc]
                .as_ref()
                .and_then(|f| by_form.get(&(f.stem_key.as_str(), f.class)));
            for &(s, sc) in holders.into_iter().flatten() {
                if s == k || next.contains_key(&s) {
                    continue;
                }
                let so_far = match &sources {
                    None => Some(Vec::new()),
                    Some(previous) => previous.get(&s).cloned(),
                };
                if let Some(mut cols) = so_far {
                    cols.push(sc);
                    next.insert(s, cols);
                }
            }
            sources = Some(next);
        }
        for (s, cols) in sources.unwrap_or_default() {
            if cols.len() == key_columns.len() {
                matches.entry(s).or_default().push((k, cols));
            }
        }
    }
    let mut sources: Vec<usize> = matches.keys().copied().collect();
    sources.sort_unstable();
    for s in sources {
        let mut keyed = matches.remove(&s).unwrap_or_default();
        keyed.sort_by_key(|(k, _)| *k);
        let source = &tables[s];
        let from_key = KeyStrength::from_declared(
            source.key_kind(
                &keyed[0]
                    .1
                    .iter()
                    .map(|&c| source.columns[c].name.clone())
                    .collect::<Vec<_>>(),
            ),
        );
        let picked = pick_targets(tables, s, keyed.iter().map(|(k, _)| (*k, false)).collect());
        for target in &picked.targets {
            let k = target.relation;
            let Some((from_cols, (key_columns, strength))) = keyed
                .iter()
                .find(|(x, _)| *x == k)
                .map(|(_, cols)| cols)
                .zip(infos[k].composite.as_ref())
            else {
                continue;
            };
            let to = &tables[k];
            let from_names: Vec<String> = from_cols
                .iter()
                .map(|&c| source.columns[c].name.clone())
                .collect();
            let declared = source.foreign_keys.iter().any(|fk| fk.columns == from_names);
            if declared || (from_key != KeyStrength::None && *strength != KeyStrength::Conventional) {
                continue; // Declared already, or a key on both sides (1:1 extension tables, as for shared keys).
            }
            let mut types = 1.0f32;
            for (&fc, &kc) in from_cols.iter().zip(key_columns) {
                match join_compatibility(&source.columns[fc].data_type, &to.columns[kc].data_type) {
                    Some(f) => types = types.min(f),
                    None => types = 0.0,
                }
            }
            if types == 0.0 {
                continue;
            }
            let mut confidence = base(COMPOSITE_KEY, *strength) * types;
            let to_names: Vec<&str> = key_columns.iter().map(|&c| to.columns[c].name.as_str()).collect();
            let mut reason = format!(
                "({}) match ({}), the {} of {}, column for column",
                from_names.join(", "),
                to_names.join(", "),
                strength.describe(),
                to.id.name
            );
            if *strength == KeyStrength::Conventional {
                reason.push_str(&format!(
                    "; {} is named after the entities of its two key columns",
                    to.id.name
                ));
            }
            let stripped = |x: usize, cols: &[usize]| {
                cols.iter()
                    .any(|&c| infos[x].forms[c].as_ref().is_some_and(|f| f.stripped))
            };
            if stripped(s, from_cols) || stripped(k, key_columns) {
                reason.push_str("; compared without the column prefixes");
            }
            picked.modifiers(target, tables, &mut confidence, &mut reason);
            if types < 1.0 {
                reason.push_str("; types only loosely compatible");
            }
            out.push(Candidate {
                from: s,
                from_columns: from_cols.clone(),
                to: k,
                to_columns: key_columns.clone(),
                rule: InferenceRule::CompositeKey,
                confidence,
                reason,
                keys: Some((from_key, *strength)),
                role: false,
            });
        }
        let label: Vec<&str> = keyed[0]
            .1
            .iter()
            .map(|&c| source.columns[c].name.as_str())
            .collect();
        findings.extend(picked.finding(tables, s, &format!("({})", label.join(", "))));
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::tests::check;

    #[test]
    fn composite_keys_make_one_edge() {
        let cases: &[(&str, &[&str])] = &[
            // A declared two-column primary key, matched column for column without the column prefixes.
            (
                "table h.partsupp\n  ps_partkey int\n  ps_suppkey int\n  ps_availqty int\n  pk (ps_partkey, ps_suppkey)\n\
                 table h.lineitem\n  l_orderkey int\n  l_partkey int\n  l_suppkey int\n  l_quantity int\n",
                &["h.lineitem(l_partkey,l_suppkey) -> h.partsupp(ps_partkey,ps_suppkey) CompositeKey 0.85"],
            ),
            // Unprefixed names onto a declared unique pair.
            (
                "table s.order_lines\n  id int pk\n  order_id int\n  line_no int\n  unique (order_id, line_no)\n\
                 table s.returns\n  id int pk\n  order_id int\n  line_no int\n",
                &["s.returns(order_id,line_no) -> s.order_lines(order_id,line_no) CompositeKey 0.8"],
            ),
            // By convention: a keyless table named after its two key columns (`part` + `supp`); neither
            // half alone is its key.
            (
                "table h.partsupp\n  ps_partkey int\n  ps_suppkey int\n  ps_comment text\n\
                 table h.lineitem\n  l_partkey int\n  l_suppkey int\n  l_comment text\n",
                &["h.lineitem(l_partkey,l_suppkey) -> h.partsupp(ps_partkey,ps_suppkey) CompositeKey 0.7"],
            ),
            // One of the two columns, or a pair whose types do not join: nothing.
            (
                "table h.partsupp\n  ps_partkey int\n  ps_suppkey int\n  pk (ps_partkey, ps_suppkey)\n\
                 table h.lineitem\n  l_partkey int\n  l_quantity int\n  l_comment text\n",
                &[],
            ),
            (
                "table h.partsupp\n  ps_partkey int\n  ps_suppkey int\n  pk (ps_partkey, ps_suppkey)\n\
                 table h.lineitem\n  l_partkey int\n  l_suppkey boolean\n  l_comment text\n",
                &[],
            ),
            // A key on both sides (1:1) is not inferred.
            (
                "table s.order_lines\n  order_id int\n  line_no int\n  pk (order_id, line_no)\n\
                 table s.line_notes\n  order_id int\n  line_no int\n  pk (order_id, line_no)\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check(schema, edges);
        }
    }
}
