//! The sound project: no findings, a complete map, correct lineage.

use pretty_assertions::assert_eq;
use sluice_dbt::project::{Direction, ModelStatus, NodeKind};
use sluice_dbt::render::map::{Focus, MapOptions, render_map};

use super::Fixture;

#[test]
fn a_sound_project_has_no_findings() {
    let (analysis, findings) = Fixture::new("jaffle").analyze();
    assert_eq!(findings, vec![]);
    assert!(analysis.work_order.items.is_empty());
    let project = &analysis.project;
    assert_eq!(project.name, "jaffle");
    assert_eq!(project.provenance.manifest_schema, Some(12));
    let statuses: Vec<_> = project
        .of_kind(NodeKind::Model)
        .iter()
        .map(|(_, n)| (n.name.clone(), n.status))
        .collect();
    assert_eq!(
        statuses,
        [
            "customers",
            "fct_payments",
            "orders",
            "stg_customers",
            "stg_orders",
            "stg_payments"
        ]
        .iter()
        .map(|n| (n.to_string(), Some(ModelStatus::Complete)))
        .collect::<Vec<_>>()
    );
}

#[test]
fn incremental_config_and_relations_come_from_the_manifest() {
    let (analysis, _) = Fixture::new("jaffle").analyze();
    let project = &analysis.project;
    let fct = project.node(project.find("fct_payments").expect("model"));
    assert_eq!(fct.materialized.as_deref(), Some("incremental"));
    assert_eq!(fct.incremental_strategy.as_deref(), Some("delete+insert"));
    assert_eq!(fct.unique_key, vec!["payment_id".to_owned()]);
    assert_eq!(fct.primary_key(), Some(vec!["payment_id".to_owned()]));
    let relation = fct.relation.as_ref().and_then(|r| r.relation_name.clone());
    assert_eq!(relation.as_deref(), Some("\"jaffle\".\"main\".\"fct_payments\""));
    let source = project.node(project.find("jaffle_raw.orders").expect("source"));
    assert_eq!(
        source.relation.as_ref().map(|r| r.identifier.as_str()),
        Some("raw_orders")
    );
    let columns = fct.catalog_columns.clone().expect("in catalog");
    assert_eq!(
        columns.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        vec!["payment_id", "order_id", "payment_method", "amount"]
    );
}

#[test]
fn lineage_to_any_depth() {
    let (analysis, _) = Fixture::new("jaffle").analyze();
    let project = &analysis.project;
    let names = |start: &str, direction, depth| -> Vec<(String, usize)> {
        let id = project.find(start).expect("node");
        project
            .lineage(id, direction, depth, false)
            .iter()
            .map(|s| (project.node(s.node).display_name(), s.depth))
            .collect()
    };
    assert_eq!(
        names("customers", Direction::Upstream, None),
        vec![
            ("orders".into(), 1),
            ("stg_customers".into(), 1),
            ("jaffle_raw.customers".into(), 2),
            ("stg_orders".into(), 2),
            ("stg_payments".into(), 2),
            ("jaffle_raw.orders".into(), 3),
            ("jaffle_raw.payments".into(), 3),
            ("payment_methods".into(), 3),
        ]
    );
    assert_eq!(names("customers", Direction::Upstream, Some(1)).len(), 2);
    assert_eq!(
        names("jaffle_raw.payments", Direction::Downstream, None),
        vec![
            ("stg_payments".into(), 1),
            ("fct_payments".into(), 2),
            ("orders".into(), 2),
            ("customer_dashboard".into(), 3),
            ("customers".into(), 3),
        ]
    );
}

#[test]
fn map_views() {
    let (analysis, findings) = Fixture::new("jaffle").analyze();
    for (focus, name) in [
        ("all", "jaffle_all"),
        ("model:orders", "jaffle_model_orders"),
        ("sources", "jaffle_sources"),
        ("macros", "jaffle_macros"),
        ("work_order", "jaffle_work_order"),
    ] {
        let options = MapOptions {
            focus: focus.parse::<Focus>().expect("focus"),
            ..MapOptions::default()
        };
        insta::assert_snapshot!(name, render_map(&analysis, &findings, &options));
    }
    let options = MapOptions {
        focus: Focus::All,
        max_models_per_section: 1,
        include_columns: true,
    };
    let text = render_map(&analysis, &findings, &options);
    assert!(
        text.contains("  (+2 more — ask with focus=model:<name> for detail)"),
        "{text}"
    );
    assert!(
        text.contains("      cols: customer_id, first_name, last_name, first_order_date"),
        "{text}"
    );
}
