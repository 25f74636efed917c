//! The keys a project's tests document for the relations it builds: primary keys (a `primary_key`
//! constraint, `unique_combination_of_columns`, or `unique` + `not_null` on one column), other unique
//! columns, and what `relationships` tests say a column references. Join inference uses them for
//! relations that declare no keys, which is what dbt builds (views, and tables without constraints).

use serde::Serialize;

use crate::project::{NodeKind, Project, Relation};

/// What the tests say about one relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelationKeys {
    /// Where the node is built (or, for a source, what it reads).
    pub relation: Relation,
    /// The node's display name (`stg_orders`, `jaffle.raw_orders`), for reasons shown to people.
    pub node: String,
    /// The primary key the tests establish, if any.
    pub primary_key: Option<Vec<String>>,
    /// Single columns with a `unique` test that are not the primary key.
    pub unique: Vec<String>,
    /// Columns a `relationships` test checks against another relation.
    pub references: Vec<TestedReference>,
}

/// One `relationships` test: `column` of the tested relation references `to_column` of `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestedReference {
    pub column: String,
    pub to: Relation,
    pub to_node: String,
    pub to_column: String,
}

/// The documented keys of every built relation (models, seeds, snapshots) and source that has any.
/// Relations whose location the manifest does not give are skipped: without a manifest there is
/// nothing to match against the warehouse.
pub fn relation_keys(project: &Project) -> Vec<RelationKeys> {
    let mut out = Vec::new();
    for node in &project.nodes {
        if !matches!(
            node.kind,
            NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot | NodeKind::Source
        ) || node.materialized.as_deref() == Some("ephemeral")
        {
            continue;
        }
        let Some(relation) = &node.relation else {
            continue;
        };
        let primary_key = node.primary_key();
        let mut unique: Vec<String> = node
            .tests
            .iter()
            .filter(|t| t.name.rsplit('.').next() == Some("unique"))
            .filter_map(|t| t.column.clone())
            .filter(|c| primary_key.as_deref() != Some(std::slice::from_ref(c)))
            .collect();
        unique.sort();
        unique.dedup();
        let mut references: Vec<TestedReference> = node
            .tests
            .iter()
            .filter_map(|t| {
                let reference = t.references.as_ref()?;
                let column = t.column.clone()?;
                let target = project.nodes.iter().find(|n| n.unique_id == reference.node)?;
                Some(TestedReference {
                    column,
                    to: target.relation.clone()?,
                    to_node: target.display_name(),
                    to_column: reference.field.clone(),
                })
            })
            .collect();
        references.sort_by(|a, b| (&a.column, &a.to_node).cmp(&(&b.column, &b.to_node)));
        references.dedup();
        if primary_key.is_some() || !unique.is_empty() || !references.is_empty() {
            out.push(RelationKeys {
                relation: relation.clone(),
                node: node.display_name(),
                primary_key,
                unique,
                references,
            });
        }
    }
    out.sort_by(|a, b| a.node.cmp(&b.node));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::manifest::Manifest;

    fn project(manifest: &str) -> Project {
        let manifest: Manifest = serde_json::from_str(manifest).expect("manifest parses");
        Project::build(Some(manifest), None).0
    }

    /// A manifest of two models: `orders` (a view whose `customer_id` is tested against `customers`) and
    /// `customers` (a table keyed by unique + not_null on `customer_id`, with a unique `email`).
    const MANIFEST: &str = r#"{
      "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"},
      "nodes": {
        "model.shop.orders": {"resource_type": "model", "name": "orders", "package_name": "shop",
          "unique_id": "model.shop.orders", "schema": "main", "alias": "orders", "database": "dev",
          "relation_name": "\"dev\".\"main\".\"orders\"", "config": {"materialized": "view"},
          "depends_on": {"nodes": ["model.shop.customers"]}},
        "model.shop.customers": {"resource_type": "model", "name": "customers", "package_name": "shop",
          "unique_id": "model.shop.customers", "schema": "main", "alias": "customers", "database": "dev",
          "config": {"materialized": "table"}, "depends_on": {"nodes": []}},
        "model.shop.tmp": {"resource_type": "model", "name": "tmp", "package_name": "shop",
          "unique_id": "model.shop.tmp", "schema": "main", "alias": "tmp", "database": "dev",
          "config": {"materialized": "ephemeral"}, "depends_on": {"nodes": []}},
        "test.shop.rel": {"resource_type": "test", "name": "relationships_orders_customer_id", "package_name": "shop",
          "unique_id": "test.shop.rel", "attached_node": "model.shop.orders", "column_name": "customer_id",
          "test_metadata": {"name": "relationships", "kwargs": {"to": "ref('customers')", "field": "customer_id", "column_name": "customer_id"}},
          "depends_on": {"nodes": ["model.shop.customers", "model.shop.orders"]}},
        "test.shop.u": {"resource_type": "test", "name": "unique_customers_customer_id", "package_name": "shop",
          "unique_id": "test.shop.u", "attached_node": "model.shop.customers", "column_name": "customer_id",
          "test_metadata": {"name": "unique", "kwargs": {"column_name": "customer_id"}},
          "depends_on": {"nodes": ["model.shop.customers"]}},
        "test.shop.nn": {"resource_type": "test", "name": "not_null_customers_customer_id", "package_name": "shop",
          "unique_id": "test.shop.nn", "attached_node": "model.shop.customers", "column_name": "customer_id",
          "test_metadata": {"name": "not_null", "kwargs": {"column_name": "customer_id"}},
          "depends_on": {"nodes": ["model.shop.customers"]}},
        "test.shop.ue": {"resource_type": "test", "name": "unique_customers_email", "package_name": "shop",
          "unique_id": "test.shop.ue", "attached_node": "model.shop.customers", "column_name": "email",
          "test_metadata": {"name": "unique", "kwargs": {"column_name": "email"}},
          "depends_on": {"nodes": ["model.shop.customers"]}},
        "test.shop.ut": {"resource_type": "test", "name": "unique_tmp_id", "package_name": "shop",
          "unique_id": "test.shop.ut", "attached_node": "model.shop.tmp", "column_name": "id",
          "test_metadata": {"name": "unique", "kwargs": {"column_name": "id"}},
          "depends_on": {"nodes": ["model.shop.tmp"]}}
      },
      "sources": {}, "exposures": {}, "macros": {}
    }"#;

    /// Node, primary key, unique columns, references as `column -> relation.column`.
    type Summary = (String, Option<Vec<String>>, Vec<String>, Vec<String>);

    #[test]
    fn keys_and_references_come_from_the_tests() {
        let keys = relation_keys(&project(MANIFEST));
        let summary: Vec<Summary> = keys
            .iter()
            .map(|k| {
                (
                    k.node.clone(),
                    k.primary_key.clone(),
                    k.unique.clone(),
                    k.references
                        .iter()
                        .map(|r| format!("{} -> {}.{}", r.column, r.to.identifier, r.to_column))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "customers".to_owned(),
                    Some(vec!["customer_id".to_owned()]),
                    vec!["email".to_owned()],
                    vec![]
                ),
                (
                    "orders".to_owned(),
                    None,
                    vec![],
                    vec!["customer_id -> customers.customer_id".to_owned()]
                ),
            ]
        );
        assert_eq!(keys[1].relation.schema.as_deref(), Some("main"));
    }

    #[test]
    fn a_relationships_test_without_a_single_other_dependency_references_nothing() {
        let manifest = MANIFEST.replace(
            r#""depends_on": {"nodes": ["model.shop.customers", "model.shop.orders"]}"#,
            r#""depends_on": {"nodes": ["model.shop.orders"]}"#,
        );
        let keys = relation_keys(&project(&manifest));
        assert!(keys.iter().all(|k| k.references.is_empty()), "{keys:?}");
    }
}
