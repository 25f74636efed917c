//! The `IdSuffix` rule: `customer_id`, `customerId`, `CustomerID` and `customerid` name a relation
//! whose key is `id` or the same name, also after a role prefix (`billing_address_id`).

use crate::finding::Finding;
use crate::names::{join_compatibility, stem_key};
use crate::snapshot::Table;

use super::InferenceRule;
use super::keys::target_column;
use super::lookup::Names;
use super::roles::self_reference;
use super::score::{Candidate, GLUED, ID_SUFFIX, ROLE_PREFIX, base, push_types_note};
use super::tables::TableInfo;
use super::targets::pick_targets;

/// Reads a column as `<table>_id`; returns whether its name found a relation (then the other naming rules
/// leave it alone, whether or not a key there fitted).
pub(super) fn id_suffix(
    tables: &[Table],
    infos: &[TableInfo],
    names: &Names,
    t: usize,
    c: usize,
    out: &mut Vec<Candidate>,
    findings: &mut Vec<Finding>,
) -> bool {
    let table = &tables[t];
    let info = &infos[t];
    let source_words = &info.column_words[c];
    let column = &table.columns[c];
    let Some(form) = info.forms[c]
        .as_ref()
        .filter(|f| f.class.id_like() && !f.stem.is_empty())
    else {
        self_reference(tables, infos, t, c, out);
        return false;
    };
    let (prefix, glued) = (&form.stem, form.glued);
    let mut role: Option<String> = None;
    let mut found: Vec<(usize, bool)> = names
        .by_name
        .get(form.stem_key.as_str())
        .cloned()
        .unwrap_or_default();
    found.retain(|(x, _)| *x != t);
    if found.is_empty() {
        for i in 1..prefix.len() {
            if let Some(hits) = names.by_name.get(stem_key(&prefix[i..]).as_str()) {
                found = hits.clone();
                role = Some(prefix[..i].join("_"));
                break;
            }
        }
        if role.is_some() && found.iter().any(|(x, _)| *x == t) {
            // `parent_category_id` in `categories`: the role names a row of the table itself.
            self_reference(tables, infos, t, c, out);
            return true;
        }
    }
    if found.is_empty() {
        self_reference(tables, infos, t, c, out);
        return false;
    }
    let picked = pick_targets(tables, t, found);
    findings.extend(picked.finding(tables, t, &column.name));
    for target in &picked.targets {
        let x = target.relation;
        let Some((tc, strength)) = target_column(&infos[x], source_words, info.forms[c].as_ref()) else {
            continue;
        };
        let to = &tables[x];
        let target_col = &to.columns[tc];
        let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
            continue;
        };
        let mut confidence = base(ID_SUFFIX, strength) * types;
        let mut reason = format!(
            "{} names table {}; {}.{} is its {}",
            column.name,
            to.id.name,
            to.id.name,
            target_col.name,
            strength.describe()
        );
        if glued {
            confidence *= GLUED;
            reason.push_str("; id suffix glued to the name");
        }
        if let Some(role) = &role {
            confidence *= ROLE_PREFIX;
            reason.push_str(&format!("; `{role}` read as a role prefix"));
        }
        picked.modifiers(target, tables, &mut confidence, &mut reason);
        push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
        let mut candidate = Candidate::single(t, c, x, tc, InferenceRule::IdSuffix, confidence, reason);
        candidate.role = role.is_some();
        out.push(candidate);
    }
    true
}

#[cfg(test)]
mod tests {
    use crate::graph::score::round3;
    use crate::graph::tests::check;

    #[test]
    fn id_suffix_matches_singular_plural_and_camel_case() {
        check(
            "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  customer_id int\n",
            &["s.orders(customer_id) -> s.customers(id) IdSuffix 0.9"],
        );
        check(
            "table s.category\n  category_id int pk\ntable s.products\n  id int pk\n  category_id bigint\n",
            &["s.products(category_id) -> s.category(category_id) IdSuffix 0.9"],
        );
        check(
            "table s.categories\n  id int pk\ntable s.addresses\n  id int pk\ntable s.boxes\n  id int pk\n\
             table s.items\n  id int pk\n  category_id int\n  address_id int\n  box_id int\n",
            &[
                "s.items(address_id) -> s.addresses(id) IdSuffix 0.9",
                "s.items(box_id) -> s.boxes(id) IdSuffix 0.9",
                "s.items(category_id) -> s.categories(id) IdSuffix 0.9",
            ],
        );
        check(
            "table app.OrderItems\n  Id int pk\n  OrderId int\n  ProductID int\ntable app.Orders\n  Id int pk\n\
             table app.Products\n  ProductID int pk\n",
            &[
                "app.OrderItems(OrderId) -> app.Orders(Id) IdSuffix 0.9",
                "app.OrderItems(ProductID) -> app.Products(ProductID) IdSuffix 0.9",
            ],
        );
    }

    #[test]
    fn id_suffix_modifiers_lower_confidence() {
        // Glued suffix, warehouse prefix, role prefix, unique instead of primary key, conventional key.
        check(
            "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  customerid int\n",
            &["s.orders(customerid) -> s.customers(id) IdSuffix 0.81"],
        );
        check(
            "table w.dim_customer\n  customer_id int pk\ntable w.fct_sales\n  id int pk\n  customer_id int\n",
            &["w.fct_sales(customer_id) -> w.dim_customer(customer_id) IdSuffix 0.855"],
        );
        check(
            "table s.addresses\n  id int pk\ntable s.orders\n  id int pk\n  billing_address_id int\n",
            &["s.orders(billing_address_id) -> s.addresses(id) IdSuffix 0.675"],
        );
        check(
            "table s.users\n  id int\n  email text unique\ntable s.logins\n  user_id int\n",
            &["s.logins(user_id) -> s.users(id) IdSuffix 0.7"],
        );
    }

    #[test]
    fn keys_that_differ_only_by_case_or_separator_meet() {
        let sources = [
            ("customer_id", false),
            ("CustomerID", false),
            ("customerId", false),
            ("CUSTOMER_ID", false),
            ("customerid", true),
            ("CUSTOMERID", true),
        ];
        let targets = ["id", "customer_id", "CustomerID", "customerid", "CUSTOMER_ID"];
        for (source, glued) in sources {
            for target in targets {
                for (declared, confidence) in [(" pk", 0.9), ("", 0.7)] {
                    let schema = format!(
                        "table s.Customers\n  {target} int{declared}\n  Name text\ntable s.orders\n  id int pk\n  {source} int\n"
                    );
                    let confidence = if glued { confidence * 0.9 } else { confidence };
                    check(
                        &schema,
                        &[&format!(
                            "s.orders({source}) -> s.Customers({target}) IdSuffix {}",
                            round3(confidence)
                        )],
                    );
                }
            }
        }
    }
}
