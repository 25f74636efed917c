//! The jaffle project as older dbt-core releases wrote its artifacts (`tests/fixtures/dbt/jaffle-versions/`,
//! from `generate-versions.sh`): each manifest schema the crate claims to read (v10 to v12) loads without a
//! finding and answers graph, column lineage, impact and coverage questions as the artifacts of the current
//! release (dbt-core 1.10, `jaffle/target/`) do. The answers are compared with 1.10's rather than written out
//! again; the hand-written expectations of `column_lineage.rs` and `impact.rs` pin 1.10's own, and a few are
//! asserted here too so that two equally empty answers cannot pass.

use pretty_assertions::assert_eq;
use sluice_dbt::analyze::Analysis;
use sluice_dbt::column_lineage::{ColumnLineage, Lineage};
use sluice_dbt::coverage::coverage;
use sluice_dbt::impact::{ChangeKind, Effect, Impact, diff, impact};
use sluice_dbt::project::{Direction, NodeKind};

use super::{Fixture, fixtures};

/// One dbt-core release whose artifacts are committed.
struct Version {
    /// The dbt-core version, which names its directory under `jaffle-versions/`.
    dbt: &'static str,
    /// The manifest schema it writes.
    manifest_schema: u32,
    /// Whether its YAML key for data tests is `tests:` (before 1.8) rather than `data_tests:`.
    tests_key: bool,
}

/// Every committed release, oldest first, with the schema each was found to write.
const VERSIONS: &[Version] = &[
    Version {
        dbt: "1.6.19",
        manifest_schema: 10,
        tests_key: true,
    },
    Version {
        dbt: "1.7.20",
        manifest_schema: 11,
        tests_key: true,
    },
    Version {
        dbt: "1.8.10",
        manifest_schema: 12,
        tests_key: false,
    },
    Version {
        dbt: "1.9.11",
        manifest_schema: 12,
        tests_key: false,
    },
];

/// The jaffle project with `version`'s artifacts in `target/`, and its YAML as that release built it:
/// `generate-versions.sh` renames `data_tests:` to `tests:` for dbt-core before 1.8, and so does this copy.
fn fixture(version: &Version) -> Fixture {
    let fixture = Fixture::new("jaffle");
    let artifacts = fixtures().join("jaffle-versions").join(version.dbt);
    for file in ["manifest.json", "catalog.json", "run_results.json"] {
        std::fs::copy(artifacts.join(file), fixture.path().join("target").join(file))
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", version.dbt));
    }
    if version.tests_key {
        for dir in ["models/staging", "models/marts", "seeds"] {
            for entry in std::fs::read_dir(fixture.path().join(dir)).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "yml") {
                    let text = std::fs::read_to_string(&path).expect("read yml");
                    std::fs::write(&path, text.replace("data_tests:", "tests:")).expect("write yml");
                }
            }
        }
    }
    // The copies and edits above are newer than the fixture's times; set them again.
    fixture.touch_all();
    fixture
}

/// The current release's analysis, and each older release's beside its version.
fn analyses() -> (Analysis, Vec<(&'static Version, Analysis)>) {
    let (current, findings) = Fixture::new("jaffle").analyze();
    assert_eq!(findings, vec![], "dbt-core 1.10");
    let older = VERSIONS
        .iter()
        .map(|v| {
            let (analysis, findings) = fixture(v).analyze();
            assert_eq!(findings, vec![], "dbt-core {}", v.dbt);
            (v, analysis)
        })
        .collect();
    (current, older)
}

#[test]
fn every_release_loads_without_findings_and_names_its_schema() {
    let (current, older) = analyses();
    assert_eq!(current.project.provenance.manifest_schema, Some(12));
    for (version, analysis) in &older {
        let provenance = &analysis.project.provenance;
        assert_eq!(
            (
                provenance.manifest_schema,
                provenance.dbt_version.as_deref(),
                provenance.adapter.as_deref()
            ),
            (Some(version.manifest_schema), Some(version.dbt), Some("duckdb")),
            "dbt-core {}",
            version.dbt
        );
        assert!(analysis.work_order.items.is_empty(), "dbt-core {}", version.dbt);
    }
}

/// `kind name` of every node of the root project, sorted.
fn inventory(analysis: &Analysis) -> Vec<String> {
    let project = &analysis.project;
    let mut names: Vec<String> = project
        .nodes
        .iter()
        .filter(|n| n.package == project.name)
        .map(|n| format!("{} {}", n.kind.as_str(), n.display_name()))
        .collect();
    names.sort();
    names
}

#[test]
fn every_release_has_the_same_nodes() {
    let (current, older) = analyses();
    let expected = inventory(&current);
    let count = |kind: NodeKind| {
        expected
            .iter()
            .filter(|n| n.starts_with(&format!("{} ", kind.as_str())))
            .count()
    };
    // 6 models, 3 sources, 4 seeds, 1 snapshot, 1 exposure and 18 data tests (17 generic, 1 singular).
    assert_eq!(
        [
            NodeKind::Model,
            NodeKind::Source,
            NodeKind::Seed,
            NodeKind::Snapshot,
            NodeKind::Exposure,
            NodeKind::Test
        ]
        .map(count),
        [6, 3, 4, 1, 1, 18]
    );
    for (version, analysis) in &older {
        assert_eq!(inventory(analysis), expected, "dbt-core {}", version.dbt);
        // Every node as the map and the tools see it: columns, built columns, tests, relation, configuration.
        for node in &current.project.nodes {
            let project = &analysis.project;
            let other = project
                .find(&node.unique_id)
                .map(|id| project.node(id))
                .unwrap_or_else(|| panic!("dbt-core {}: {} missing", version.dbt, node.unique_id));
            assert_eq!(
                serde_json::to_value(other).expect("serializes"),
                serde_json::to_value(node).expect("serializes"),
                "dbt-core {}: {}",
                version.dbt,
                node.unique_id
            );
        }
    }
}

/// Each node's display name with its parents' and the last run's outcome.
fn edges_and_runs(analysis: &Analysis) -> Vec<String> {
    let project = &analysis.project;
    let mut out: Vec<String> = project
        .nodes
        .iter()
        .map(|node| {
            let id = project.find(&node.unique_id).expect("own node");
            let mut parents: Vec<String> = project
                .lineage(id, Direction::Upstream, Some(1), false)
                .iter()
                .map(|s| project.node(s.node).display_name())
                .collect();
            parents.sort();
            let run = analysis.last_run.get(&id).map(|r| format!("{:?}", r.outcome));
            format!("{} <- [{}] {run:?}", node.display_name(), parents.join(", "))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_release_has_the_same_lineage_and_run_outcomes() {
    let (current, older) = analyses();
    let expected = edges_and_runs(&current);
    assert!(
        expected.contains(&r#"orders <- [stg_orders, stg_payments] Some("Ok")"#.to_owned()),
        "{expected:#?}"
    );
    // The one real difference: dbt-core 1.10's `dbt build` lists exposures in run_results.json (status
    // `no-op`); earlier releases leave them out, so the exposure has no last run there.
    let exposure = r#"customer_dashboard <- [customers, orders] Some("Ok")"#;
    assert!(expected.iter().any(|e| e == exposure), "{expected:#?}");
    let expected_before_1_10: Vec<String> = expected
        .iter()
        .map(|e| {
            if e == exposure {
                "customer_dashboard <- [customers, orders] None".to_owned()
            } else {
                e.clone()
            }
        })
        .collect();
    for (version, analysis) in &older {
        assert_eq!(
            edges_and_runs(analysis),
            expected_before_1_10,
            "dbt-core {}",
            version.dbt
        );
    }
}

/// `side depth from -> to kind(transform) expression`, upstream edges then downstream ones.
fn column_edges(lineage: &ColumnLineage) -> Vec<String> {
    lineage
        .upstream
        .iter()
        .map(|e| ("up", e))
        .chain(lineage.downstream.iter().map(|e| ("down", e)))
        .map(|(side, e)| {
            let transform = e
                .transform
                .map(|t| format!("({})", t.as_str()))
                .unwrap_or_default();
            format!(
                "{side} {} {}.{} -> {}.{} {}{transform} {:?}",
                e.depth,
                e.from.node,
                e.from.column,
                e.to.node,
                e.to.column,
                e.kind.as_str(),
                e.expression
            )
        })
        .collect()
}

#[test]
fn every_release_traces_columns_to_the_same_edges() {
    let (current, older) = analyses();
    let cases = [
        ("orders", "amount"),
        ("stg_orders", "order_id"),
        ("customers", "number_of_orders"),
        ("customers", "lifetime_value"),
        ("stg_payments", "payment_method"),
        ("jaffle_raw.payments", "amount"),
        ("payment_methods", "code"),
    ];
    let walk = |analysis: &Analysis, model: &str, column: &str| -> Vec<String> {
        let got = Lineage::new(&analysis.project)
            .walk(model, column, Direction::Both, None)
            .unwrap_or_else(|e| panic!("{model}.{column}: {e}"));
        assert_eq!(got.unresolved, Vec::<String>::new(), "{model}.{column}");
        assert_eq!(got.model_level, Vec::<String>::new(), "{model}.{column}");
        column_edges(&got)
    };
    let orders_amount = walk(&current, "orders", "amount");
    assert!(
        orders_amount[0].starts_with("up 1 stg_payments.amount -> orders.amount transformed(aggregate)"),
        "{orders_amount:#?}"
    );
    for (model, column) in cases {
        let expected = walk(&current, model, column);
        for (version, analysis) in &older {
            assert_eq!(
                walk(analysis, model, column),
                expected,
                "dbt-core {}: {model}.{column}",
                version.dbt
            );
        }
    }
}

/// `effect kind node[.column] (reason)` per impacted dependent.
fn impact_summary(impact: &Impact) -> Vec<String> {
    impact
        .impacted
        .iter()
        .map(|i| {
            let effect = match i.effect {
                Effect::Breaks => "breaks",
                Effect::Changes => "changes",
            };
            let column = i.column.as_ref().map(|c| format!(".{c}")).unwrap_or_default();
            format!("{effect} {} {}{column} ({})", i.kind.as_str(), i.node, i.reason)
        })
        .collect()
}

#[test]
fn every_release_finds_the_same_impact() {
    let (current, older) = analyses();
    let cases = [
        ("stg_payments", Some("order_id"), ChangeKind::Rename),
        ("stg_orders", Some("status"), ChangeKind::Drop),
        ("stg_customers", Some("customer_id"), ChangeKind::Rename),
        ("stg_payments", Some("amount"), ChangeKind::Type),
        ("orders", None, ChangeKind::Drop),
    ];
    let assess = |analysis: &Analysis, model: &str, column: Option<&str>, kind: ChangeKind| {
        impact(&analysis.project, model, column, kind).unwrap_or_else(|e| panic!("{model}.{column:?}: {e}"))
    };
    let rename = assess(&current, "stg_payments", Some("order_id"), ChangeKind::Rename);
    let broken: Vec<&str> = rename
        .impacted
        .iter()
        .filter(|i| i.effect == Effect::Breaks)
        .map(|i| i.node.as_str())
        .collect();
    assert_eq!(broken, ["fct_payments", "orders"]);
    for (model, column, kind) in cases {
        let expected = assess(&current, model, column, kind);
        for (version, analysis) in &older {
            let got = assess(analysis, model, column, kind);
            assert_eq!(
                (impact_summary(&got), &got.notes),
                (impact_summary(&expected), &expected.notes),
                "dbt-core {}: {kind:?} {model}.{column:?}",
                version.dbt
            );
        }
    }
}

#[test]
fn an_older_release_as_baseline_shows_no_change() {
    // `impact --state` with production's manifest written by an older dbt-core than the working one, as
    // during an upgrade: the same project must not show columns as dropped, renamed or retyped.
    let (current, older) = analyses();
    for (version, analysis) in &older {
        for (baseline, working, direction) in [
            (&analysis.project, &current.project, "to 1.10"),
            (&current.project, &analysis.project, "from 1.10"),
        ] {
            let report = diff(baseline, working).expect("same project");
            assert_eq!(
                (&report.changes, &report.impacted),
                (&vec![], &vec![]),
                "dbt-core {} {direction}",
                version.dbt
            );
        }
    }
}

#[test]
fn every_release_has_the_same_coverage() {
    let (current, older) = analyses();
    let expected = coverage(&current.project);
    assert_eq!((expected.models.tested, expected.models.total), (6, 6));
    for (version, analysis) in &older {
        // The whole report: per model and source, every column's tests, the primary key and the YAML lines.
        assert_eq!(coverage(&analysis.project), expected, "dbt-core {}", version.dbt);
    }
}
