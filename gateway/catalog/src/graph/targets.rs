//! Chooses among the relations a reference's name found (own schema first, tables before views) and
//! applies the confidence modifiers every naming rule shares.

use crate::finding::Finding;
use crate::snapshot::{Table, TableKind};

use super::score::{AMBIGUOUS, CROSS_SCHEMA, VIA_TABLE_PREFIX, VIEW_BESIDE_TABLE};

/// A relation a reference may point at.
pub(super) struct Target {
    pub(super) relation: usize,
    /// Its name matched without a warehouse prefix or suffix.
    via_prefix: bool,
    /// It is a view and a table fits the same reference: the table is preferred.
    beside_table: Option<String>,
}

/// The relations a reference may point at, among those its name found: its own schema first (another
/// schema only when its own has none, `cross`), and tables before views. Several tables (or, with no
/// table, several views) are `ambiguous`; a view beside a table is not, it is scored below the table.
pub(super) struct Picked {
    pub(super) targets: Vec<Target>,
    cross: bool,
    pub(super) ambiguous: bool,
}

pub(super) fn pick_targets(tables: &[Table], t: usize, mut found: Vec<(usize, bool)>) -> Picked {
    if let [(x, via_prefix)] = found[..] {
        // The common case: one relation fits.
        let cross = tables[x].id.schema != tables[t].id.schema;
        let targets = vec![Target {
            relation: x,
            via_prefix,
            beside_table: None,
        }];
        return Picked {
            targets,
            cross,
            ambiguous: false,
        };
    }
    found.dedup_by_key(|(x, _)| *x);
    let schema = &tables[t].id.schema;
    let same: Vec<(usize, bool)> = found
        .iter()
        .copied()
        .filter(|(x, _)| tables[*x].id.schema == *schema)
        .collect();
    let cross = same.is_empty();
    let found = if cross { found } else { same };
    let is_table = |x: usize| tables[x].kind == TableKind::Table;
    let table_count = found.iter().filter(|(x, _)| is_table(*x)).count();
    let ambiguous = if table_count == 0 {
        found.len() > 1
    } else {
        table_count > 1
    };
    // Named only when a view stands beside a table, which is rare enough to build the text then.
    let beside = (table_count > 0 && table_count < found.len()).then(|| {
        let names: Vec<&str> = found
            .iter()
            .filter(|(x, _)| is_table(*x))
            .map(|(x, _)| tables[*x].id.name.as_str())
            .collect();
        names.join(", ")
    });
    let targets = found
        .iter()
        .map(|&(x, via_prefix)| Target {
            relation: x,
            via_prefix,
            beside_table: if is_table(x) { None } else { beside.clone() },
        })
        .collect();
    Picked {
        targets,
        cross,
        ambiguous,
    }
}

impl Picked {
    /// The finding for an ambiguous reference, naming the equally good candidates.
    pub(super) fn finding(&self, tables: &[Table], t: usize, column: &str) -> Option<Finding> {
        if !self.ambiguous {
            return None;
        }
        let names: Vec<String> = self
            .targets
            .iter()
            .filter(|x| x.beside_table.is_none())
            .map(|x| tables[x.relation].id.to_string())
            .collect();
        Some(Finding::info(
            "ambiguous_inference",
            Some(&tables[t].id),
            format!(
                "{}.{column} could reference any of {}; each inferred join is scored lower",
                tables[t].id,
                names.join(", ")
            ),
        ))
    }

    /// Applies the modifiers every naming rule shares: warehouse prefix, other schema, ambiguity, a view
    /// beside a table.
    pub(super) fn modifiers(
        &self,
        target: &Target,
        tables: &[Table],
        confidence: &mut f32,
        reason: &mut String,
    ) {
        if target.via_prefix {
            *confidence *= VIA_TABLE_PREFIX;
            reason.push_str("; matched without the table's prefix");
        }
        if self.cross {
            *confidence *= CROSS_SCHEMA;
            reason.push_str(&format!(
                "; in another schema ({})",
                tables[target.relation].id.schema
            ));
        }
        if self.ambiguous && target.beside_table.is_none() {
            *confidence *= AMBIGUOUS;
            reason.push_str("; several tables match");
        }
        if let Some(table) = &target.beside_table {
            *confidence *= VIEW_BESIDE_TABLE;
            reason.push_str(&format!("; a view, and table {table} fits too"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::tests::{check, check_findings};

    #[test]
    fn same_table_names_in_two_schemas_never_collide() {
        let two_schemas = "table shop.customers\n  id int pk\ntable shop.orders\n  id int pk\n  customer_id int\n\
                           table archive.customers\n  id int pk\ntable archive.orders\n  id int pk\n  customer_id int\n";
        check(
            two_schemas,
            &[
                "archive.orders(customer_id) -> archive.customers(id) IdSuffix 0.9",
                "shop.orders(customer_id) -> shop.customers(id) IdSuffix 0.9",
            ],
        );
        // Across schemas only when the own schema has no candidate, and scored lower.
        check(
            "table crm.customers\n  id int pk\ntable sales.orders\n  id int pk\n  customer_id int\n",
            &["sales.orders(customer_id) -> crm.customers(id) IdSuffix 0.72"],
        );
        check(
            "table crm.customers\n  id int pk\ntable old.customers\n  id int pk\ntable sales.orders\n  id int pk\n  customer_id int\n",
            &[
                "sales.orders(customer_id) -> crm.customers(id) IdSuffix 0.612",
                "sales.orders(customer_id) -> old.customers(id) IdSuffix 0.612",
            ],
        );
    }

    #[test]
    fn views_are_join_targets_like_tables() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            // A keyless view is identified by `id` or `<name>_id`, as a keyless table is.
            (
                "view s.customers\n  id int\ntable s.orders\n  id int pk\n  customer_id int\n",
                &["s.orders(customer_id) -> s.customers(id) IdSuffix 0.7"],
                &[],
            ),
            // dbt's staging and intermediate views: `stg_` and `int_` are warehouse prefixes.
            (
                "view s.stg_customers\n  customer_id int\n  first_name text\ntable s.orders\n  id int pk\n  customer_id int\n",
                &["s.orders(customer_id) -> s.stg_customers(customer_id) IdSuffix 0.665"],
                &[],
            ),
            (
                "view s.int_orders\n  order_id int\ntable s.payments\n  id int pk\n  order_id int\n",
                &["s.payments(order_id) -> s.int_orders(order_id) IdSuffix 0.665"],
                &[],
            ),
            // A table and a view fit the same reference: both edges, the declared key first, no ambiguity.
            (
                "table s.customers\n  id int pk\nview s.stg_customers\n  customer_id int\n\
                 table s.orders\n  id int pk\n  customer_id int\n",
                &[
                    "s.orders(customer_id) -> s.customers(id) IdSuffix 0.9",
                    "s.orders(customer_id) -> s.stg_customers(customer_id) IdSuffix 0.598",
                    "s.stg_customers(customer_id) -> s.customers(id) IdSuffix 0.9",
                ],
                &[],
            ),
            // The table is preferred even when it declares no key either.
            (
                "table s.customers\n  customer_id int\nview s.stg_customers\n  customer_id int\n\
                 table s.orders\n  id int pk\n  customer_id int\n",
                &[
                    "s.orders(customer_id) -> s.customers(customer_id) IdSuffix 0.7",
                    "s.orders(customer_id) -> s.stg_customers(customer_id) IdSuffix 0.598",
                    "s.stg_customers(customer_id) -> s.customers(customer_id) IdSuffix 0.7",
                ],
                &[],
            ),
            // Two views and no table: ambiguous, as two tables are.
            (
                "view s.customers\n  id int\nview s.stg_customers\n  customer_id int\n\
                 table s.orders\n  id int pk\n  customer_id int\n",
                &[
                    "s.orders(customer_id) -> s.customers(id) IdSuffix 0.595",
                    "s.orders(customer_id) -> s.stg_customers(customer_id) IdSuffix 0.565",
                    "s.stg_customers(customer_id) -> s.customers(id) IdSuffix 0.7",
                ],
                &["ambiguous_inference"],
            ),
            // A declared foreign key into a view is an edge like any other.
            (
                "view s.v_customers\n  id int\ntable s.orders\n  id int pk\n  customer_id int -> s.v_customers.id\n",
                &["s.orders(customer_id) -> s.v_customers(id) declared 1"],
                &[],
            ),
            // Self-references in views follow the table rules, onto the conventional key.
            (
                "view hr.stg_employees\n  employee_id int\n  manager_id int\n",
                &["hr.stg_employees(manager_id) -> hr.stg_employees(employee_id) SelfReference 0.553"],
                &[],
            ),
            (
                "view s.stg_categories\n  category_id int\n  parent_category_id int\n",
                &[
                    "s.stg_categories(parent_category_id) -> s.stg_categories(category_id) SelfReference 0.638",
                ],
                &[],
            ),
            // Views reference tables, as before.
            (
                "table s.customers\n  id int pk\nview s.recent_orders\n  customer_id int\n",
                &["s.recent_orders(customer_id) -> s.customers(id) IdSuffix 0.9"],
                &[],
            ),
        ];
        for (schema, edges, findings) in cases {
            check_findings(schema, edges, findings);
        }
    }
}
