//! The project with seeded defects: each one must produce its finding, at the right node and line.

use pretty_assertions::assert_eq;
use sluice_dbt::analyze::{ProjectInput, analyze};
use sluice_dbt::fs::load_project;
use sluice_dbt::project::ModelStatus;
use sluice_dbt::render::map::{Focus, MapOptions, render_map};
use sluice_dbt::{Rule, Severity};

use super::{Fixture, key};

/// Every seeded defect (see tests/fixtures/dbt/defects) and the finding it must produce.
const SEEDED: &[(&str, Option<&str>, Option<&str>)] = &[
    ("DBT004", None, Some("models/after_build/broken.yml:5")),
    (
        "DBT101",
        Some("model.defects.finance_summary"),
        Some("models/after_build/finance_summary.sql:3"),
    ),
    (
        "DBT102",
        Some("model.defects.finance_summary"),
        Some("models/after_build/finance_summary.sql:4"),
    ),
    (
        "DBT103",
        Some("model.defects.cycle_a"),
        Some("models/after_build/cycle_a.sql"),
    ),
    (
        "DBT104",
        Some("model.defects.stg_misc"),
        Some("models/staging/stg_misc.sql"),
    ),
    (
        "DBT105",
        Some("model.defects.customer_ltv"),
        Some("models/marts/_marts.yml:92"),
    ),
    (
        "DBT106",
        Some("model.defects.stub_model"),
        Some("models/after_build/stub_model.sql"),
    ),
    (
        "DBT201",
        Some("model.defects.orders_no_pk"),
        Some("models/marts/_marts.yml:17"),
    ),
    (
        "DBT202",
        Some("model.defects.payment_summary"),
        Some("models/marts/_marts.yml:85"),
    ),
    (
        "DBT203",
        Some("model.defects.payment_summary"),
        Some("models/marts/_marts.yml:87"),
    ),
    (
        "DBT301",
        Some("model.defects.customers"),
        Some("models/marts/_marts.yml:14"),
    ),
    (
        "DBT302",
        Some("model.defects.customers"),
        Some("models/marts/_marts.yml:4"),
    ),
    (
        "DBT401",
        Some("test.defects.unique_stg_payments_payment_id.3744510712"),
        Some("models/staging/_staging.yml:36"),
    ),
    (
        "DBT402",
        Some(
            "test.defects.accepted_values_stg_orders_status__placed__shipped__completed__returned.7511f2d274",
        ),
        Some("models/staging/_staging.yml:25"),
    ),
    (
        "DBT403",
        Some("model.defects.broken_model"),
        Some("models/marts/broken_model.sql"),
    ),
    (
        "DBT404",
        Some("model.defects.after_broken"),
        Some("models/marts/after_broken.sql"),
    ),
    (
        "DBT501",
        Some("model.defects.recent_orders"),
        Some("models/marts/recent_orders.sql:3"),
    ),
    (
        "DBT502",
        Some("model.defects.first_orders"),
        Some("models/marts/first_orders.sql:6"),
    ),
    (
        "DBT503",
        Some("model.defects.top_customers"),
        Some("models/marts/top_customers.sql:3"),
    ),
    (
        "DBT504",
        Some("model.defects.calendar"),
        Some("models/marts/calendar.sql:2"),
    ),
    (
        "DBT601",
        Some("model.defects.orders_incremental"),
        Some("models/marts/orders_incremental.sql"),
    ),
];

#[test]
fn every_seeded_defect_is_found() {
    let (_, findings) = Fixture::new("defects").analyze();
    let keys: Vec<_> = findings.iter().map(key).collect();
    for (code, node, location) in SEEDED {
        let expected = (
            code.to_string(),
            node.map(str::to_owned),
            location.map(str::to_owned),
        );
        assert!(keys.contains(&expected), "missing {expected:?} in {keys:#?}");
    }
    // The after_build edits are newer than all three artifacts.
    let stale: Vec<_> = findings
        .iter()
        .filter(|f| f.rule == Rule::ArtifactStale)
        .map(|f| f.message.clone())
        .collect();
    assert_eq!(stale.len(), 3, "{stale:#?}");
    assert!(
        stale
            .iter()
            .all(|m| m.contains("models/after_build/") && m.contains("(by 60s)")),
        "{stale:#?}"
    );
}

#[test]
fn the_full_finding_list_is_stable() {
    let (_, findings) = Fixture::new("defects").analyze();
    let rendered: Vec<String> = findings
        .iter()
        .map(|f| {
            let place = f.location.as_ref().map(ToString::to_string).unwrap_or_default();
            format!(
                "{} {} {} | {} | {}",
                f.severity,
                f.rule.code(),
                f.rule.name(),
                place,
                f.message
            )
        })
        .collect();
    insta::assert_snapshot!("defects_findings", rendered.join("\n"));
}

#[test]
fn nothing_is_reported_for_what_is_sound() {
    let (_, findings) = Fixture::new("defects").analyze();
    // Models written correctly next to the broken ones get no finding at all.
    for node in ["model.defects.stg_customers", "model.defects.stg_orders"] {
        let about: Vec<_> = findings
            .iter()
            .filter(|f| f.node.as_deref() == Some(node))
            .map(key)
            .collect();
        assert_eq!(about, vec![], "{node}");
    }
}

#[test]
fn fresh_artifacts_are_not_stale_and_edited_files_are() {
    let fixture = Fixture::new("jaffle");
    let stale = |fixture: &Fixture| {
        fixture
            .analyze()
            .1
            .iter()
            .filter(|f| f.rule == Rule::ArtifactStale)
            .map(key)
            .collect::<Vec<_>>()
    };
    assert_eq!(stale(&fixture), vec![]);
    fixture.touch("models/marts/orders.sql", 90);
    let found = stale(&fixture);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found
            .iter()
            .all(|(_, _, loc)| loc.as_deref() == Some("models/marts/orders.sql"))
    );
}

#[test]
fn a_deleted_model_file_is_reported_against_the_manifest() {
    let fixture = Fixture::new("jaffle");
    std::fs::remove_file(fixture.path().join("models/marts/fct_payments.sql")).expect("remove");
    let (analysis, findings) = fixture.analyze();
    let fct = analysis
        .project
        .node(analysis.project.find("fct_payments").expect("still in manifest"));
    assert_eq!(fct.status, Some(ModelStatus::Missing));
    assert!(
        findings.iter().any(|f| f.rule == Rule::ArtifactStale
            && f.node.as_deref() == Some("model.jaffle.fct_payments")
            && f.message.contains("no longer exists")),
        "{findings:#?}"
    );
}

#[test]
fn work_order_lists_models_needing_work_in_dependency_order() {
    let (analysis, _) = Fixture::new("defects").analyze();
    let items: Vec<(String, Vec<String>)> = analysis
        .work_order
        .items
        .iter()
        .map(|i| (analysis.project.node(i.node).name.clone(), i.reasons.clone()))
        .collect();
    let names: Vec<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "customer_ltv",
            "finance_summary",
            "broken_model",
            "stg_payments",
            "stub_model",
            "cycle_a",
            "cycle_b"
        ]
    );
    assert_eq!(items[2].1, vec!["errored in the last run".to_owned()]);
    assert_eq!(items[5].1, vec!["part of a ref cycle".to_owned()]);
    let cycles: Vec<Vec<&str>> = analysis
        .work_order
        .cycles
        .iter()
        .map(|c| {
            c.iter()
                .map(|&id| analysis.project.node(id).name.as_str())
                .collect()
        })
        .collect();
    assert_eq!(cycles, vec![vec!["cycle_a", "cycle_b", "cycle_a"]]);
}

#[test]
fn map_views() {
    let (analysis, findings) = Fixture::new("defects").analyze();
    for (focus, name) in [
        ("all", "defects_all"),
        ("work_order", "defects_work_order"),
        ("missing", "defects_missing"),
        ("stubs", "defects_stubs"),
        ("model:customers", "defects_model_customers"),
        ("model:cust", "defects_model_not_found"),
    ] {
        let options = MapOptions {
            focus: focus.parse::<Focus>().expect("focus"),
            ..MapOptions::default()
        };
        insta::assert_snapshot!(name, render_map(&analysis, &findings, &options));
    }
}

#[test]
fn without_the_project_directory_the_manifest_still_gives_run_catalog_and_test_findings() {
    let fixture = Fixture::new("defects");
    let input = load_project(fixture.path(), None).expect("loads");
    let (analysis, findings) = analyze(ProjectInput { files: None, ..input });
    let codes: std::collections::BTreeSet<&str> = findings.iter().map(|f| f.rule.code()).collect();
    for expected in [
        "DBT201", "DBT301", "DBT302", "DBT401", "DBT403", "DBT501", "DBT502", "DBT503", "DBT504", "DBT601",
    ] {
        assert!(codes.contains(expected), "{expected} missing from {codes:?}");
    }
    // What only the files know (edits after the build, YAML without SQL) cannot be found.
    for absent in ["DBT101", "DBT102", "DBT103", "DBT105", "DBT002"] {
        assert!(!codes.contains(absent), "{absent} in {codes:?}");
    }
    assert!(analysis.project.find("finance_summary").is_none());
}

#[test]
fn without_artifacts_the_files_still_give_the_static_findings() {
    let fixture = Fixture::new("defects");
    std::fs::remove_dir_all(fixture.path().join("target")).expect("remove target");
    let (analysis, findings) = fixture.analyze();
    let codes: std::collections::BTreeSet<&str> = findings.iter().map(|f| f.rule.code()).collect();
    for expected in [
        "DBT001", "DBT004", "DBT101", "DBT102", "DBT103", "DBT104", "DBT105", "DBT106", "DBT201", "DBT501",
        "DBT502", "DBT503", "DBT504", "DBT601",
    ] {
        assert!(codes.contains(expected), "{expected} missing from {codes:?}");
    }
    for needs_artifacts in ["DBT301", "DBT302", "DBT401", "DBT403"] {
        assert!(!codes.contains(needs_artifacts), "{needs_artifacts} in {codes:?}");
    }
    let missing: Vec<_> = findings
        .iter()
        .filter(|f| f.rule == Rule::ArtifactMissing)
        .collect();
    assert_eq!(missing.len(), 3);
    assert!(missing.iter().all(|f| f.severity == Severity::Info));
    // dbt_project.yml's +materialized applies to models found only on disk.
    let stg = analysis
        .project
        .node(analysis.project.find("stg_misc").expect("model"));
    assert_eq!(stg.materialized.as_deref(), Some("view"));
}
