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

/// A project from a manifest alone: `(name, compiled SQL, parents, documented columns)` per model, all in
/// `db.main` on DuckDB.
fn models(models: &[(&str, &str, &[&str], &[&str])]) -> Project {
    let mut nodes = serde_json::Map::new();
    for (name, sql, parents, columns) in models {
        let id = format!("model.p.{name}");
        let columns: serde_json::Map<String, serde_json::Value> = columns
            .iter()
            .map(|c| ((*c).to_owned(), serde_json::json!({"name": c})))
            .collect();
        let parents: Vec<String> = parents.iter().map(|p| format!("model.p.{p}")).collect();
        nodes.insert(
            id.clone(),
            serde_json::json!({
                "unique_id": id, "resource_type": "model", "name": name, "package_name": "p",
                "original_file_path": format!("models/{name}.sql"), "patch_path": "p://models/schema.yml",
                "database": "db", "schema": "main", "raw_code": sql, "compiled_code": sql,
                "columns": columns, "depends_on": {"nodes": parents},
            }),
        );
    }
    project_of(&serde_json::json!({
        "metadata": {"project_name": "p", "adapter_type": "duckdb",
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"},
        "nodes": nodes,
    }))
}

/// A column renamed or dropped upstream of a `SELECT *` disappears from the model that selects it, so the
/// models reading it from there by name break too; a column joined on with `USING` is read by name though
/// no expression names it. Expectations written by hand from the SQL.
#[test]
fn select_star_and_join_using_are_followed() {
    let project = models(&[
        ("a", "select 1 as id, 2 as amount", &[], &["id", "amount"]),
        ("e", "select 1 as id, 'x' as name", &[], &["id", "name"]),
        // Passes every column of a through under a's names. (A `*` over a model is expanded with its
        // catalog or YAML columns, so b and d document theirs.)
        ("b", "select * from db.main.a", &["a"], &["id", "amount"]),
        // Reads b.amount by name: breaks when a.amount is renamed, though its SQL never names a.
        (
            "c",
            "select id, amount * 2 as doubled from db.main.b",
            &["b"],
            &[],
        ),
        // Two stars deep.
        ("d", "select * from db.main.b", &["b"], &["id", "amount"]),
        ("f", "select amount from db.main.d", &["d"], &[]),
        // Names the column itself: it breaks, and what reads its alias does not.
        ("g", "select amount as amt from db.main.a", &["a"], &[]),
        ("h", "select amt from db.main.g", &["g"], &[]),
        // Joins on id with USING and selects no id at all.
        (
            "j",
            "select a.amount, e.name from db.main.a join db.main.e using (id)",
            &["a", "e"],
            &[],
        ),
    ]);
    let cases: &[(&str, &str, ChangeKind, &[&str])] = &[
        (
            "a",
            "amount",
            ChangeKind::Rename,
            &[
                "breaks model b",
                "breaks model g",
                "breaks model j",
                "breaks model c",
                "breaks model d",
                "breaks model f",
                "changes model b.amount",
                "changes model g.amt",
                "changes model j.amount",
                "changes model c.doubled",
                "changes model d.amount",
                "changes model h.amt",
                "changes model f.amount",
            ],
        ),
        // A drop reaches the same readers.
        (
            "b",
            "amount",
            ChangeKind::Drop,
            &[
                "breaks model c",
                "breaks model d",
                "breaks model f",
                "changes model c.doubled",
                "changes model d.amount",
                "changes model f.amount",
            ],
        ),
        // A type change removes no name: what reads through the star only changes.
        (
            "a",
            "amount",
            ChangeKind::Type,
            &[
                "changes model b",
                "changes model b.amount",
                "changes model g",
                "changes model g.amt",
                "changes model j",
                "changes model j.amount",
                "changes model c.doubled",
                "changes model d.amount",
                "changes model h.amt",
                "changes model f.amount",
            ],
        ),
        // USING (id) reads the id of both sides.
        ("e", "id", ChangeKind::Rename, &["breaks model j"]),
        (
            "a",
            "id",
            ChangeKind::Rename,
            &[
                "breaks model b",
                "breaks model j",
                "breaks model c",
                "breaks model d",
                "changes model b.id",
                "changes model c.id",
                "changes model d.id",
            ],
        ),
    ];
    for (model, column, kind, expected) in cases {
        let got = impact(&project, model, Some(column), *kind).expect("assesses");
        assert_eq!(summary(&got), *expected, "{model}.{column} {kind:?}");
    }
    // The reason names the model the column passed through.
    let got = impact(&project, "a", Some("amount"), ChangeKind::Rename).expect("assesses");
    let f = got
        .impacted
        .iter()
        .find(|i| i.node == "f" && i.effect == Effect::Breaks)
        .expect("f breaks");
    assert_eq!(
        (f.depth, f.reason.as_str()),
        (
            3,
            "its SQL reads d.amount by name (d passes it through `SELECT *`)"
        )
    );
}
