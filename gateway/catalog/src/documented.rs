//! Keys documented outside the engine (a dbt project's tests) for relations that declare none: applied to
//! a copy of the tables that only the join graph sees, so that describing a table still shows exactly what
//! the engine declares.
//!
//! A documented primary key counts as a declared one for join inference, a documented unique column as a
//! unique constraint, and a documented reference (a dbt `relationships` test) as a foreign key named after
//! where it was documented. What the engine declares always wins: a relation with a declared primary key
//! keeps it, and a column that already has a declared foreign key gets no second one.

use serde::Serialize;

use crate::finding::Finding;
use crate::snapshot::{ForeignKey, Table, TableId, UniqueConstraint};

/// A relation as a document names it: the schema is optional (matched case-insensitively, as the name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelationName {
    pub schema: Option<String>,
    pub name: String,
}

/// One documented reference: `column` of the relation references `to_column` of `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentedReference {
    pub column: String,
    pub to: RelationName,
    pub to_column: String,
    /// Where it is documented, for the edge's reason (`dbt test relationships on stg_orders.customer_id`).
    pub source: String,
}

/// What a document says about one relation's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentedKeys {
    pub relation: RelationName,
    /// Where it is documented (`dbt project 'jaffle'`), for findings and constraint names.
    pub source: String,
    pub primary_key: Option<Vec<String>>,
    pub unique: Vec<String>,
    pub references: Vec<DocumentedReference>,
}

/// The position of the relation `name` refers to: exact, then case-insensitive; a name without a schema
/// only when one relation has it.
fn locate(tables: &[Table], name: &RelationName) -> Option<usize> {
    let matches = |t: &Table, exact: bool| {
        let eq = |a: &str, b: &str| if exact { a == b } else { a.eq_ignore_ascii_case(b) };
        eq(&t.id.name, &name.name) && name.schema.as_deref().is_none_or(|s| eq(&t.id.schema, s))
    };
    for exact in [true, false] {
        let mut found = tables.iter().enumerate().filter(|(_, t)| matches(t, exact));
        if let (Some((i, _)), None) = (found.next(), found.next()) {
            return Some(i);
        }
    }
    None
}

/// The table's own spelling of `column`, exact first, then case-insensitive.
fn column_name(table: &Table, column: &str) -> Option<String> {
    table
        .column(column)
        .or_else(|| table.columns.iter().find(|c| c.name.eq_ignore_ascii_case(column)))
        .map(|c| c.name.clone())
}

fn columns_of(table: &Table, columns: &[String]) -> Option<Vec<String>> {
    columns.iter().map(|c| column_name(table, c)).collect()
}

/// `tables` with the documented keys added where the engine declares none; what could not be applied (a
/// relation or column the snapshot does not have) is reported, not guessed.
pub(crate) fn apply(tables: &[Table], documented: &[DocumentedKeys]) -> (Vec<Table>, Vec<Finding>) {
    let mut out = tables.to_vec();
    let mut findings = Vec::new();
    let missing =
        |what: String, table: Option<&TableId>| Finding::info("documented_key_not_applied", table, what);
    for doc in documented {
        let Some(t) = locate(tables, &doc.relation) else {
            continue; // Projects document relations that are not built (yet), or live elsewhere.
        };
        let id = tables[t].id.clone();
        if let Some(pk) = &doc.primary_key {
            match columns_of(&out[t], pk) {
                Some(cols) if out[t].primary_key.is_empty() && !out[t].is_key(&cols) => {
                    out[t].primary_key = cols;
                }
                Some(_) => {}
                None => findings.push(missing(
                    format!(
                        "{}: key ({}) of {id} names a column it does not have",
                        doc.source,
                        pk.join(", ")
                    ),
                    Some(&id),
                )),
            }
        }
        for column in &doc.unique {
            if let Some(col) = column_name(&out[t], column) {
                let cols = vec![col];
                if !out[t].is_key(&cols) {
                    out[t].unique_constraints.push(UniqueConstraint {
                        name: Some(doc.source.clone()),
                        columns: cols,
                    });
                }
            }
        }
        for reference in &doc.references {
            let Some(target) = locate(tables, &reference.to) else {
                findings.push(missing(
                    format!(
                        "{}: {id}.{} references {}, which is not in the snapshot",
                        reference.source, reference.column, reference.to.name
                    ),
                    Some(&id),
                ));
                continue;
            };
            let (Some(column), Some(to_column)) = (
                column_name(&out[t], &reference.column),
                column_name(&tables[target], &reference.to_column),
            ) else {
                findings.push(missing(
                    format!(
                        "{}: {id}.{} -> {}.{} names a column the snapshot does not have",
                        reference.source, reference.column, tables[target].id, reference.to_column
                    ),
                    Some(&id),
                ));
                continue;
            };
            if out[t]
                .foreign_keys
                .iter()
                .any(|fk| fk.columns == [column.clone()])
            {
                continue;
            }
            out[t].foreign_keys.push(ForeignKey {
                name: Some(reference.source.clone()),
                columns: vec![column],
                references: tables[target].id.clone(),
                referenced_columns: vec![to_column],
            });
        }
    }
    (out, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outline;
    use crate::{Catalog, EdgeOrigin};

    fn name(n: &str) -> RelationName {
        RelationName {
            schema: Some("main".into()),
            name: n.into(),
        }
    }

    fn dbt(relation: &str, pk: Option<&[&str]>, references: &[(&str, &str, &str)]) -> DocumentedKeys {
        DocumentedKeys {
            relation: name(relation),
            source: "dbt project 'shop'".into(),
            primary_key: pk.map(|k| k.iter().map(|c| c.to_string()).collect()),
            unique: Vec::new(),
            references: references
                .iter()
                .map(|(column, to, to_column)| DocumentedReference {
                    column: column.to_string(),
                    to: name(to),
                    to_column: to_column.to_string(),
                    source: format!("dbt test relationships on {relation}.{column}"),
                })
                .collect(),
        }
    }

    /// Views named so that no convention joins them (`buyer` is no table's name): only the tests can.
    const SHOP: &str = "
view main.stg_orders
  order_id int
  buyer int
  placed_at date
view main.stg_customers
  customer_ref int
  name text
";

    fn joins(catalog: &Catalog) -> Vec<String> {
        catalog
            .edges()
            .iter()
            .map(|e| {
                let origin = match &e.origin {
                    EdgeOrigin::Declared { constraint } => constraint.clone().unwrap_or_default(),
                    EdgeOrigin::Inferred { rule } => format!("{rule:?}"),
                };
                format!(
                    "{}({}) -> {}({}) [{origin}] {:?}",
                    e.from.name,
                    e.from_columns.join(","),
                    e.to.name,
                    e.to_columns.join(","),
                    e.to_key
                )
            })
            .collect()
    }

    #[test]
    fn documented_keys_join_views_that_no_convention_joins() {
        let snapshot = outline::parse(SHOP).expect("outline parses");
        let (plain, _) = Catalog::build(snapshot.clone());
        assert_eq!(joins(&plain), Vec::<String>::new());
        let docs = vec![
            dbt("stg_customers", Some(&["customer_ref"]), &[]),
            dbt(
                "stg_orders",
                Some(&["order_id"]),
                &[("buyer", "stg_customers", "customer_ref")],
            ),
        ];
        let (catalog, findings) = Catalog::build_documented(snapshot, &docs);
        assert_eq!(
            joins(&catalog),
            vec![
                "stg_orders(buyer) -> stg_customers(customer_ref) [dbt test relationships on stg_orders.buyer] Primary"
            ]
        );
        assert!(findings.is_empty(), "{findings:?}");
        // Describing the view still shows only what the engine declares.
        let view = catalog.table(&TableId::new("main", "stg_orders")).expect("view");
        assert!(view.primary_key.is_empty() && view.foreign_keys.is_empty());
    }

    #[test]
    fn what_the_engine_declares_wins_and_unknown_names_are_reported() {
        let schema = "
table main.customers
  id int pk
  email text
table main.orders
  id int pk
  customer int
";
        let docs = vec![
            dbt("customers", Some(&["email"]), &[]),
            dbt(
                "ORDERS",
                None,
                &[("Customer", "customers", "ID"), ("nope", "customers", "id")],
            ),
            dbt("orders", None, &[("customer", "ghosts", "id")]),
            dbt("absent", Some(&["id"]), &[]),
        ];
        let (catalog, findings) = Catalog::build_documented(outline::parse(schema).expect("parses"), &docs);
        assert_eq!(
            joins(&catalog),
            vec!["orders(customer) -> customers(id) [dbt test relationships on ORDERS.Customer] Primary"]
        );
        let messages: Vec<&str> = findings
            .iter()
            .filter(|f| f.code == "documented_key_not_applied")
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(
            messages,
            vec![
                "dbt test relationships on ORDERS.nope: main.orders.nope -> main.customers.id names a column the snapshot does not have",
                "dbt test relationships on orders.customer: main.orders.customer references ghosts, which is not in the snapshot",
            ]
        );
    }
}
