//! The `KeySuffix`, `Abbreviation` and `ColumnPrefix` rules: a column read as `<stem>_<key suffix>`
//! where `_id` did not settle it, its stem naming a relation whole, after role words or abbreviated.

use crate::finding::Finding;
use crate::names::{join_compatibility, stem_key};
use crate::snapshot::Table;

use super::keys::key_target;
use super::lookup::Names;
use super::score::{
    ABBREVIATED, ABBREVIATION, COLUMN_PREFIX, Candidate, GLUED, ID_SUFFIX, KEY_SUFFIX, ROLE_PREFIX, base,
    push_types_note,
};
use super::tables::TableInfo;
use super::targets::pick_targets;
use super::{InferenceRule, KeyStrength};

/// How a stem found its relation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Naming {
    Exact,
    Abbreviated,
}

/// Reads a column as `<stem>_<key suffix>` (after its table's column prefix, if any) where `_id` did not
/// settle it: other key suffixes (`KeySuffix`), abbreviated stems (`Abbreviation`) and table-prefixed
/// columns (`ColumnPrefix`). The stem names a relation whole, or after role words (`sold_date_sk` →
/// `date`), or else by abbreviation of exactly one entity's name. Returns whether the column was settled
/// here (a relation named, or a declared key); the role rule reads the rest.
pub(super) fn key_reference(
    tables: &[Table],
    infos: &[TableInfo],
    names: &Names,
    t: usize,
    c: usize,
    out: &mut Vec<Candidate>,
    findings: &mut Vec<Finding>,
) -> bool {
    let table = &tables[t];
    let Some(form) = &infos[t].forms[c] else {
        return false;
    };
    if form.stem.is_empty()
        || matches!(
            infos[t].column_keys[c],
            KeyStrength::Primary | KeyStrength::Unique
        )
    {
        return true; // A declared key is referenced, not referencing: same-named keys on both sides are 1:1.
    }
    let n = form.stem.len();
    let mut found: Vec<(usize, bool)> = Vec::new();
    let mut role_words = 0;
    let mut naming = Naming::Exact;
    for i in 0..n {
        let Some(hits) = names.by_name.get(stem_key(&form.stem[i..]).as_str()) else {
            continue;
        };
        if hits.iter().any(|(x, _)| *x == t) && (i > 0 || hits.len() == 1) {
            return true; // The table's own key, or a role of its own rows (the self-reference rule's).
        }
        found = hits.iter().copied().filter(|(x, _)| *x != t).collect();
        role_words = i;
        break;
    }
    if found.is_empty() {
        for i in 0..n {
            match names.abbreviated(infos, &form.stem[i..], t) {
                Ok(hits) if hits.is_empty() => continue,
                Ok(hits) => {
                    found = hits;
                    role_words = i;
                    naming = Naming::Abbreviated;
                    break;
                }
                Err(()) => return true, // Several entities fit the abbreviation: too weak to choose.
            }
        }
    }
    if found.is_empty() {
        return false;
    }
    let column = &table.columns[c];
    let picked = pick_targets(tables, t, found);
    findings.extend(picked.finding(tables, t, &column.name));
    let stem_text = form.stem[role_words..].join("_");
    for target in &picked.targets {
        let x = target.relation;
        let Some((tc, strength)) = key_target(&infos[x], form) else {
            continue;
        };
        let to = &tables[x];
        let target_col = &to.columns[tc];
        let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
            continue;
        };
        let target_form = infos[x].forms[tc].as_ref();
        let prefixed = form.stripped || target_form.is_some_and(|f| f.stripped);
        let (rule, bases) = if prefixed {
            (InferenceRule::ColumnPrefix, COLUMN_PREFIX)
        } else if naming == Naming::Abbreviated {
            (InferenceRule::Abbreviation, ABBREVIATION)
        } else if form.class.id_like() {
            (InferenceRule::IdSuffix, ID_SUFFIX)
        } else {
            (InferenceRule::KeySuffix, KEY_SUFFIX)
        };
        let mut confidence = base(bases, strength) * types;
        let mut reason = if prefixed {
            let without = |info: &TableInfo, cc: usize, name: &str| match &info.column_prefix {
                Some(p) if info.forms[cc].as_ref().is_some_and(|f| f.stripped) => {
                    format!("{name} without its column prefix `{p}_`")
                }
                _ => name.to_string(),
            };
            format!(
                "{} and {} read alike ({}); `{stem_text}` names table {}",
                without(&infos[t], c, &column.name),
                without(&infos[x], tc, &target_col.name),
                form.stem
                    .iter()
                    .chain([&form.suffix.to_string()])
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("_"),
                to.id.name
            )
        } else {
            format!("{} names table {}", column.name, to.id.name)
        };
        if naming == Naming::Abbreviated {
            reason.push_str(&format!(" (`{stem_text}` abbreviates it)"));
        }
        reason.push_str(&format!(
            "; {}.{} is its {}",
            to.id.name,
            target_col.name,
            strength.describe()
        ));
        if prefixed && naming == Naming::Abbreviated {
            confidence *= ABBREVIATED;
        }
        if form.glued && !prefixed {
            confidence *= GLUED;
            reason.push_str(&format!("; {} suffix glued to the name", form.suffix));
        }
        if role_words > 0 {
            confidence *= ROLE_PREFIX;
            reason.push_str(&format!(
                "; `{}` read as a role prefix",
                form.stem[..role_words].join("_")
            ));
        }
        picked.modifiers(target, tables, &mut confidence, &mut reason);
        push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
        let mut candidate = Candidate::single(t, c, x, tc, rule, confidence, reason);
        candidate.role = role_words > 0;
        out.push(candidate);
    }
    true
}

#[cfg(test)]
mod tests {
    use crate::graph::tests::{check, check_findings};

    #[test]
    fn key_suffixes_other_than_id() {
        let cases: &[(&str, &[&str])] = &[
            // `_key`, `_sk`, `_no`, `_num`, `_code` name a table whose key has the same kind of suffix.
            (
                "table w.customers\n  customer_key int\n  name text\ntable w.sales\n  customer_key int\n",
                &["w.sales(customer_key) -> w.customers(customer_key) KeySuffix 0.65"],
            ),
            (
                "table w.dim_customer\n  customer_key int\n  name text\ntable w.sales\n  customer_key int\n",
                &["w.sales(customer_key) -> w.dim_customer(customer_key) KeySuffix 0.617"],
            ),
            (
                "table w.dim_customer\n  customer_sk int\n  name text\ntable w.sales\n  customer_key int\n",
                &["w.sales(customer_key) -> w.dim_customer(customer_sk) KeySuffix 0.617"],
            ),
            (
                "table s.orders\n  order_no int\n  total int\ntable s.shipments\n  order_num int\n",
                &["s.shipments(order_num) -> s.orders(order_no) KeySuffix 0.65"],
            ),
            (
                "table s.statuses\n  status_code text\n  label text\ntable s.orders\n  id int pk\n  status_code text\n",
                &["s.orders(status_code) -> s.statuses(status_code) KeySuffix 0.65"],
            ),
            (
                "table s.customers\n  customer_key int unique\n  name text\ntable s.sales\n  id int pk\n  customerkey int\n",
                &["s.sales(customerkey) -> s.customers(customer_key) SharedKey 0.75"],
            ),
            // `_fk` only references, onto any key of the table it names.
            (
                "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  customer_fk int\n",
                &["s.orders(customer_fk) -> s.customers(id) KeySuffix 0.85"],
            ),
            // A declared key of the same name is the shared-key rule's, as before.
            (
                "table s.statuses\n  status_code text pk\ntable s.orders\n  id int pk\n  status_code text\n",
                &["s.orders(status_code) -> s.statuses(status_code) SharedKey 0.8"],
            ),
            // A code is not the id: `statuses` is keyed by `id`, its `status_code` is no key.
            (
                "table s.statuses\n  id int pk\n  status_code int\ntable s.orders\n  id int pk\n  status_code int\n",
                &[],
            ),
            // Nor is a `_key` an `id`.
            (
                "table s.customers\n  id int pk\ntable s.sales\n  id int pk\n  customer_key int\n",
                &[],
            ),
            // `notes_no` is a number, not a reference: no `notes` table, or one keyed by `id`.
            ("table s.orders\n  id int pk\n  notes_no int\n", &[]),
            (
                "table s.notes\n  id int pk\n  body text\ntable s.orders\n  id int pk\n  notes_no int\n",
                &[],
            ),
            // `_fk` is never a target.
            (
                "table s.customers\n  customer_fk int\n  name text\ntable s.orders\n  id int pk\n  customer_fk int\n",
                &[],
            ),
            // The types must be join-compatible.
            (
                "table w.customers\n  customer_key int\n  name text\ntable w.sales\n  customer_key boolean\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check(schema, edges);
        }
        // Two relations of the same entity: ambiguous, with a finding, as for `_id`.
        check_findings(
            "table w.customers\n  customer_key int\ntable w.dim_customer\n  customer_key int\n\
             table w.sales\n  customer_key int\n",
            &[
                "w.dim_customer(customer_key) -> w.customers(customer_key) KeySuffix 0.65",
                "w.sales(customer_key) -> w.customers(customer_key) KeySuffix 0.553",
                "w.sales(customer_key) -> w.dim_customer(customer_key) KeySuffix 0.525",
            ],
            &["ambiguous_inference"],
        );
    }

    #[test]
    fn abbreviated_stems_name_one_table() {
        let cases: &[(&str, &[&str])] = &[
            (
                "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  cust_id int\n",
                &["s.orders(cust_id) -> s.customers(id) Abbreviation 0.8"],
            ),
            (
                "table s.employees\n  emp_no int\n  name text\ntable s.salaries\n  emp_no int\n  amount int\n",
                &["s.salaries(emp_no) -> s.employees(emp_no) Abbreviation 0.6"],
            ),
            (
                "table s.products\n  product_code text pk\ntable s.order_lines\n  id int pk\n  prod_code text\n",
                &["s.order_lines(prod_code) -> s.products(product_code) Abbreviation 0.8"],
            ),
            (
                "table s.departments\n  dept_no text\n  name text\ntable s.staff\n  id int pk\n  dept_no text\n",
                &["s.staff(dept_no) -> s.departments(dept_no) Abbreviation 0.6"],
            ),
            // With a role before the abbreviation.
            (
                "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  billing_cust_id int\n",
                &["s.orders(billing_cust_id) -> s.customers(id) Abbreviation 0.6"],
            ),
            // A table and its staging view are one entity: the table is preferred.
            (
                "table s.customers\n  id int pk\nview s.stg_customers\n  customer_id int\n\
                 table s.orders\n  id int pk\n  cust_id int\n",
                &[
                    "s.orders(cust_id) -> s.customers(id) Abbreviation 0.8",
                    "s.orders(cust_id) -> s.stg_customers(customer_id) Abbreviation 0.513",
                    "s.stg_customers(customer_id) -> s.customers(id) IdSuffix 0.9",
                ],
            ),
            // Two entities fit (`customers`, `custodians`): too weak to choose, nothing.
            (
                "table s.customers\n  id int pk\ntable s.custodians\n  id int pk\ntable s.orders\n  id int pk\n  cust_id int\n",
                &[],
            ),
            // Fewer than three letters abbreviate nothing.
            (
                "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  cu_id int\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check(schema, edges);
        }
    }

    #[test]
    fn table_prefixed_columns_join_by_their_stems() {
        let cases: &[(&str, &[&str])] = &[
            // TPC-H: `o_custkey` and `c_custkey` meet as `custkey`; `cust` abbreviates `customer`.
            (
                "table h.customer\n  c_custkey int\n  c_name text\n  c_comment text\n\
                 table h.orders\n  o_orderkey int\n  o_custkey int\n  o_comment text\n",
                &["h.orders(o_custkey) -> h.customer(c_custkey) ColumnPrefix 0.63"],
            ),
            // A declared primary key makes it the shared-key rule's, as for unprefixed names.
            (
                "table h.customer\n  c_custkey int pk\n  c_name text\n\
                 table h.orders\n  o_orderkey int\n  o_custkey int\n  o_comment text\n",
                &["h.orders(o_custkey) -> h.customer(c_custkey) SharedKey 0.8"],
            ),
            // TPC-DS: surrogate keys, a role (`sold`) before the entity and `_dim` after the table's.
            (
                "table ds.date_dim\n  d_date_sk int\n  d_date date\n  d_year int\n\
                 table ds.store_sales\n  ss_sold_date_sk int\n  ss_customer_sk int\n  ss_quantity int\n\
                 table ds.customer\n  c_customer_sk int\n  c_customer_id char(16)\n  c_name text\n",
                &[
                    "ds.store_sales(ss_customer_sk) -> ds.customer(c_customer_sk) ColumnPrefix 0.7",
                    "ds.store_sales(ss_sold_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                ],
            ),
            // A prefixed `_id` onto an unprefixed table's `id`.
            (
                "table s.customers\n  id int pk\ntable s.orders\n  o_id int\n  o_customer_id int\n  o_total int\n",
                &["s.orders(o_customer_id) -> s.customers(id) ColumnPrefix 0.85"],
            ),
            // `x_` is not the table's prefix (orders starts with `o`): its columns are read whole, and
            // `x_custkey` is no key name.
            (
                "table s.orders\n  x_custkey int\n  x_comment text\ntable s.customer\n  c_custkey int\n  c_name text\n",
                &[],
            ),
            // A stem that names no table, and columns that name none of their own tables: nothing.
            (
                "table h.orders\n  o_orderkey int\n  o_clerkkey int\n  o_comment text\n",
                &[],
            ),
            (
                "table h.customer\n  c_custkey int\n  c_nationkey int\n  c_name text\n\
                 table h.supplier\n  s_suppkey int\n  s_nationkey int\n  s_name text\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check(schema, edges);
        }
    }

    #[test]
    fn initialisms_name_tables_of_several_words() {
        let cases: &[(&str, &[&str])] = &[
            // TPC-DS: `hdemo` is `h` + `demo(graphics)`, also after a role word (`current`).
            (
                "table ds.household_demographics\n  hd_demo_sk int\n  hd_buy_potential text\n  hd_dep_count int\n\
                 table ds.store_sales\n  ss_hdemo_sk int\n  ss_quantity int\n  ss_net_paid int\n\
                 table ds.customer\n  c_customer_sk int\n  c_current_hdemo_sk int\n  c_name text\n",
                &[
                    "ds.customer(c_current_hdemo_sk) -> ds.household_demographics(hd_demo_sk) ColumnPrefix 0.473",
                    "ds.store_sales(ss_hdemo_sk) -> ds.household_demographics(hd_demo_sk) ColumnPrefix 0.63",
                ],
            ),
            // Unprefixed, onto a declared key.
            (
                "table s.customer_demographics\n  id int pk\n  gender text\ntable s.sales\n  id int pk\n  cdemo_id int\n",
                &["s.sales(cdemo_id) -> s.customer_demographics(id) Abbreviation 0.8"],
            ),
            // Letters that do not begin the last word, a single-word table, two entities with the same
            // initialism: nothing.
            (
                "table s.household_demographics\n  id int pk\ntable s.sales\n  id int pk\n  hdems_id int\n",
                &[],
            ),
            (
                "table s.demographics\n  id int pk\ntable s.sales\n  id int pk\n  hdemo_id int\n",
                &[],
            ),
            (
                "table s.household_demographics\n  id int pk\ntable s.home_demographics\n  id int pk\n\
                 table s.sales\n  id int pk\n  hdemo_id int\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check_findings(schema, edges, &[]);
        }
    }
}
