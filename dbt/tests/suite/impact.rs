//! Impact on the jaffle fixture: a rename that breaks two downstream models, a drop that breaks a test, and
//! the comparison with a baseline manifest (a rename made since, a manifest from another project, an empty
//! file).

use pretty_assertions::assert_eq;
use sluice_dbt::Project;
use sluice_dbt::artifacts::manifest::Manifest;
use sluice_dbt::impact::{ChangeKind, Effect, Impact, diff, impact};

use super::Fixture;

/// `effect kind node[.column]` per impacted dependent.
fn summary(impact: &Impact) -> Vec<String> {
    impact
        .impacted
        .iter()
        .map(|i| {
            let effect = match i.effect {
                Effect::Breaks => "breaks",
                Effect::Changes => "changes",
            };
            match &i.column {
                Some(c) => format!("{effect} {} {}.{c}", i.kind.as_str(), i.node),
                None => format!("{effect} {} {}", i.kind.as_str(), i.node),
            }
        })
        .collect()
}

#[test]
fn changes_to_one_column() {
    let (analysis, _) = Fixture::new("jaffle").analyze();
    let project = &analysis.project;
    let cases: &[(&str, Option<&str>, ChangeKind, &[&str])] = &[
        // A rename that breaks two downstream models.
        (
            "stg_payments",
            Some("order_id"),
            ChangeKind::Rename,
            &[
                "breaks model fct_payments",
                "breaks model orders",
                "changes exposure customer_dashboard",
                "changes model fct_payments.order_id",
            ],
        ),
        // A drop that breaks a test (and the model that selects the column).
        (
            "stg_orders",
            Some("status"),
            ChangeKind::Drop,
            &[
                "breaks test accepted_values_stg_orders_status__placed__shipped__completed__return_pending__returned",
                "breaks model orders",
                "changes exposure customer_dashboard",
                "changes model orders.status",
            ],
        ),
        // A type change breaks nothing but changes what reads the column.
        (
            "stg_payments",
            Some("amount"),
            ChangeKind::Type,
            &[
                "changes exposure customer_dashboard",
                "changes model fct_payments",
                "changes model fct_payments.amount",
                "changes model orders",
                "changes model orders.amount",
                "changes model customers.lifetime_value",
            ],
        ),
        // A column a relationships test points at.
        (
            "stg_customers",
            Some("customer_id"),
            ChangeKind::Rename,
            &[
                "breaks model customers",
                "breaks test not_null_stg_customers_customer_id",
                "breaks model stg_orders.customer_id",
                "breaks test unique_stg_customers_customer_id",
                "changes exposure customer_dashboard",
                "changes model customers.customer_id",
                "changes test not_null_customers_customer_id",
                "changes test unique_customers_customer_id",
            ],
        ),
    ];
    for (model, column, kind, expected) in cases {
        let got = impact(project, model, *column, *kind).expect("assesses");
        assert_eq!(summary(&got), *expected, "{model}.{column:?} {kind:?}");
    }
}

fn manifest(fixture: &Fixture) -> serde_json::Value {
    let bytes = std::fs::read(fixture.path().join("target/manifest.json")).expect("read");
    serde_json::from_slice(&bytes).expect("json")
}

fn project_of(manifest: &serde_json::Value) -> Project {
    let manifest: Manifest = serde_json::from_value(manifest.clone()).expect("manifest");
    Project::build(Some(manifest), None).0
}

#[test]
fn a_baseline_shows_the_renamed_column_and_what_it_breaks() {
    let fixture = Fixture::new("jaffle");
    let baseline = manifest(&fixture);
    // The working tree renames stg_orders.customer_id to customer_key; orders still selects customer_id.
    let mut current = baseline.clone();
    let node = &mut current["nodes"]["model.jaffle.stg_orders"];
    let sql = node["compiled_code"].as_str().expect("compiled").to_owned();
    node["compiled_code"] = sql
        .replace("user_id as customer_id", "user_id as customer_key")
        .into();
    let report = diff(&project_of(&baseline), &project_of(&current)).expect("same project");
    assert_eq!(report.changes.len(), 1, "{:?}", report.changes);
    let change = &report.changes[0];
    assert_eq!(
        (
            change.node.as_str(),
            change.column.as_deref(),
            change.kind,
            change.detail.as_deref()
        ),
        (
            "stg_orders",
            Some("customer_id"),
            ChangeKind::Rename,
            Some("renamed to customer_key")
        )
    );
    assert_eq!(
        summary(&report)
            .iter()
            .filter(|s| s.starts_with("breaks"))
            .collect::<Vec<_>>(),
        vec![
            "breaks model orders",
            "breaks test relationships_stg_orders_customer_id__customer_id__ref_stg_customers_"
        ]
    );
    // A model removed since the baseline is a dropped model.
    let mut removed = baseline.clone();
    if let Some(nodes) = removed["nodes"].as_object_mut() {
        nodes.retain(|id, _| !id.contains("fct_payments"));
    }
    let report = diff(&project_of(&baseline), &project_of(&removed)).expect("same project");
    let changes: Vec<(&str, ChangeKind, Option<&str>)> = report
        .changes
        .iter()
        .map(|c| (c.node.as_str(), c.kind, c.detail.as_deref()))
        .collect();
    assert_eq!(
        changes,
        vec![(
            "fct_payments",
            ChangeKind::Drop,
            Some("no longer in the working artifacts")
        )]
    );
    // No change, no impact.
    let same = diff(&project_of(&baseline), &project_of(&baseline)).expect("same project");
    assert_eq!(same, Impact::default());
}

#[test]
fn a_baseline_from_another_project_is_refused() {
    let fixture = Fixture::new("jaffle");
    let current = manifest(&fixture);
    let mut other = current.clone();
    other["metadata"]["project_name"] = "shop".into();
    let err = diff(&project_of(&other), &project_of(&current)).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "the baseline manifest is from dbt project `shop`, not `jaffle`: compare artifacts of the same project"
    );
}
