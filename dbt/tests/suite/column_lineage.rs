//! Column lineage on the jaffle fixture (compiled SQL written by real dbt-core), checked against edges written by
//! hand, and the fallbacks: a manifest without compiled code, SQL that does not parse.

use pretty_assertions::assert_eq;
use sluice_dbt::column_lineage::{ColumnLineage, Lineage, render};
use sluice_dbt::project::Direction;

use super::Fixture;

/// `depth from -> to kind[(transform)]`, upstream edges then downstream ones.
fn edges(lineage: &ColumnLineage) -> Vec<String> {
    lineage
        .upstream
        .iter()
        .map(|e| ("up", e))
        .chain(lineage.downstream.iter().map(|e| ("down", e)))
        .map(|(side, e)| {
            let mut line = format!(
                "{side} {} {}.{} -> {}.{} {}",
                e.depth,
                e.from.node,
                e.from.column,
                e.to.node,
                e.to.column,
                e.kind.as_str()
            );
            if let Some(t) = e.transform {
                line.push_str(&format!("({})", t.as_str()));
            }
            line
        })
        .collect()
}

#[test]
fn jaffle_column_lineage_matches_the_hand_written_edges() {
    let (analysis, _) = Fixture::new("jaffle").analyze();
    let mut lineage = Lineage::new(&analysis.project);
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "orders",
            "amount",
            &[
                "up 1 stg_payments.amount -> orders.amount transformed(aggregate)",
                "up 2 jaffle_raw.payments.amount -> stg_payments.amount transformed(expression)",
                "down 1 orders.amount -> customers.lifetime_value transformed(aggregate)",
            ],
        ),
        (
            "stg_orders",
            "order_id",
            &[
                "up 1 jaffle_raw.orders.id -> stg_orders.order_id renamed",
                "down 1 stg_orders.order_id -> orders.order_id passthrough",
                "down 1 stg_orders.order_id -> orders.customer_order_seq transformed(window)",
            ],
        ),
        (
            "stg_orders",
            "customer_id",
            &[
                "up 1 jaffle_raw.orders.user_id -> stg_orders.customer_id renamed",
                "down 1 stg_orders.customer_id -> orders.customer_id passthrough",
                "down 1 stg_orders.customer_id -> orders.customer_order_seq transformed(window)",
            ],
        ),
        (
            "customers",
            "number_of_orders",
            &["up 1 orders.* -> customers.number_of_orders transformed(aggregate)"],
        ),
        (
            "customers",
            "first_name",
            &[
                "up 1 stg_customers.first_name -> customers.first_name passthrough",
                "up 2 jaffle_raw.customers.first_name -> stg_customers.first_name passthrough",
            ],
        ),
        (
            "stg_payments",
            "payment_method",
            &[
                "up 1 payment_methods.payment_method -> stg_payments.payment_method passthrough",
                "down 1 stg_payments.payment_method -> fct_payments.payment_method passthrough",
            ],
        ),
        (
            "jaffle_raw.payments",
            "amount",
            &[
                "down 1 jaffle_raw.payments.amount -> stg_payments.amount transformed(expression)",
                "down 2 stg_payments.amount -> orders.amount transformed(aggregate)",
                "down 2 stg_payments.amount -> fct_payments.amount passthrough",
                "down 3 orders.amount -> customers.lifetime_value transformed(aggregate)",
            ],
        ),
    ];
    for (model, column, expected) in cases {
        let got = lineage
            .walk(model, column, Direction::Both, None)
            .unwrap_or_else(|e| panic!("{model}.{column}: {e}"));
        assert_eq!(edges(&got), *expected, "{model}.{column}");
        assert_eq!(got.unresolved, Vec::<String>::new(), "{model}.{column}");
        assert_eq!(got.model_level, Vec::<String>::new(), "{model}.{column}");
    }
}

#[test]
fn expressions_depth_and_exposures() {
    let (analysis, _) = Fixture::new("jaffle").analyze();
    let mut lineage = Lineage::new(&analysis.project);
    let got = lineage
        .walk("orders", "amount", Direction::Both, Some(1))
        .expect("walks");
    assert_eq!(got.dialect, "duckdb");
    assert_eq!(got.exposures, vec!["customer_dashboard".to_owned()]);
    assert_eq!(
        got.upstream
            .iter()
            .map(|e| e.expression.clone())
            .collect::<Vec<_>>(),
        vec![Some("coalesce(p.amount, 0) <- sum(amount)".to_owned())]
    );
    insta::assert_snapshot!("column_lineage_orders_amount", render(&got, Direction::Both));
    assert!(!got.truncated);
    // An edge limit stops the walk at the nearest edges and says so.
    let limited = Lineage::new(&analysis.project)
        .max_edges(2)
        .walk("jaffle_raw.payments", "amount", Direction::Downstream, None)
        .expect("walks");
    assert_eq!(
        edges(&limited),
        vec![
            "down 1 jaffle_raw.payments.amount -> stg_payments.amount transformed(expression)",
            "down 2 stg_payments.amount -> orders.amount transformed(aggregate)",
        ]
    );
    assert!(limited.truncated);
}

#[test]
fn unknown_models_and_columns_are_errors() {
    let (analysis, _) = Fixture::new("jaffle").analyze();
    let mut lineage = Lineage::new(&analysis.project);
    let cases = [
        (
            "nope",
            "id",
            "no model, seed, snapshot or source named `nope` in the project",
        ),
        (
            "stg_orders",
            "nope",
            "`stg_orders` has no column `nope`; its columns are: order_id, customer_id, order_date, status",
        ),
    ];
    for (model, column, message) in cases {
        let err = lineage
            .walk(model, column, Direction::Both, None)
            .expect_err("an error");
        assert_eq!(err.to_string(), message);
    }
}

/// Rewrites the fixture's manifest: `edit` gets each model node's JSON.
fn with_manifest(fixture: &Fixture, edit: impl Fn(&str, &mut serde_json::Value)) {
    let path = fixture.path().join("target/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    if let Some(nodes) = manifest["nodes"].as_object_mut() {
        for (id, node) in nodes.iter_mut() {
            edit(id, node);
        }
    }
    std::fs::write(&path, serde_json::to_vec(&manifest).expect("json")).expect("write");
    fixture.touch("target/manifest.json", 60);
}

#[test]
fn without_compiled_code_lineage_falls_back_to_models() {
    let fixture = Fixture::new("jaffle");
    with_manifest(&fixture, |_, node| {
        if let Some(n) = node.as_object_mut() {
            n.remove("compiled_code");
        }
    });
    let (analysis, _) = fixture.analyze();
    let got = Lineage::new(&analysis.project)
        .walk("orders", "amount", Direction::Both, None)
        .expect("walks");
    assert_eq!(edges(&got), Vec::<String>::new());
    assert_eq!(
        got.model_level,
        vec![
            "orders: column lineage unavailable, the manifest has no compiled SQL for it, only raw Jinja (run \
             `dbt compile` or `dbt build`); model-level parents: stg_orders, stg_payments"
                .to_owned(),
            "customers: column lineage unavailable, the manifest has no compiled SQL for it, only raw Jinja (run \
             `dbt compile` or `dbt build`); model-level children: customer_dashboard"
                .to_owned(),
        ]
    );
}

#[test]
fn sql_that_does_not_parse_is_reported_not_guessed() {
    let fixture = Fixture::new("jaffle");
    with_manifest(&fixture, |id, node| {
        if id == "model.jaffle.stg_payments" {
            node["compiled_code"] = serde_json::Value::from("select p.id as payment_id from (((");
        }
    });
    let (analysis, _) = fixture.analyze();
    let got = Lineage::new(&analysis.project)
        .walk("orders", "amount", Direction::Upstream, None)
        .expect("walks");
    assert_eq!(
        edges(&got),
        vec!["up 1 stg_payments.amount -> orders.amount transformed(aggregate)".to_owned()]
    );
    assert_eq!(got.model_level.len(), 1, "{:?}", got.model_level);
    assert!(
        got.model_level[0].starts_with(
            "stg_payments: column lineage unavailable, its compiled SQL does not parse as DuckDB:"
        ),
        "{}",
        got.model_level[0]
    );
}
