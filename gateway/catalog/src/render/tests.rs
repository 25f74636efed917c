//! Snapshot tests of each view on the shop fixture, and of a paged overview.

use insta::assert_snapshot;

use super::*;
use crate::budget::{Budget, Window};
use crate::fixtures::shop;
use crate::link::LinkOptions;
use crate::path::PathOptions;

fn all() -> Window {
    Window::new(Budget::chars(100_000))
}

#[test]
fn overview() {
    assert_snapshot!(super::overview(&shop(), &all()).text);
}

#[test]
fn ddl_full_and_compressed() {
    let catalog = shop();
    let ids = [
        TableId::new("sales", "orders"),
        TableId::new("sales", "order_items"),
        TableId::new("sales", "big_orders"),
    ];
    let full = DdlOptions {
        quoting: Quoting::Double,
        compress: false,
    };
    assert_snapshot!("ddl_full", super::ddl(&catalog, Some(&ids), &full, &all()).text);
    let compressed = DdlOptions {
        quoting: Quoting::Backtick,
        compress: true,
    };
    assert_snapshot!(
        "ddl_compressed_backticks",
        super::ddl(&catalog, Some(&ids), &compressed, &all()).text
    );
}

#[test]
fn compact_and_json() {
    let catalog = shop();
    assert_snapshot!("compact", super::compact(&catalog, None, &all()).text);
    let ids = [TableId::new("sales", "orders")];
    let rendered = super::json(&catalog, Some(&ids), &all());
    let value: serde_json::Value = serde_json::from_str(&rendered.text).expect("valid JSON");
    insta::assert_json_snapshot!("json", value);
}

#[test]
fn relationships() {
    let catalog = shop();
    assert_snapshot!(
        "relationships_compact",
        super::relationships(&catalog, RelationshipFormat::Compact, true, &all()).text
    );
    assert_snapshot!(
        "relationships_graph",
        super::relationships(&catalog, RelationshipFormat::Graph, true, &all()).text
    );
}

#[test]
fn schema_link_formats() {
    let catalog = shop();
    let link = catalog.schema_link(
        "products ordered by customers in Germany",
        &LinkOptions::default(),
    );
    assert_snapshot!(
        "link_compact",
        super::schema_link(&catalog, &link, LinkFormat::Compact, Quoting::Double, &all()).text
    );
    assert_snapshot!(
        "link_ddl",
        super::schema_link(&catalog, &link, LinkFormat::Ddl, Quoting::Double, &all()).text
    );
    let json = super::schema_link(&catalog, &link, LinkFormat::Json, Quoting::Double, &all());
    let value: serde_json::Value = serde_json::from_str(&json.text).expect("valid JSON");
    insta::assert_json_snapshot!("link_json", value);
}

#[test]
fn join_paths() {
    let catalog = shop();
    let search = catalog
        .find_join_paths(
            &TableId::new("sales", "customers"),
            &TableId::new("sales", "products"),
            &PathOptions::default(),
        )
        .expect("tables exist");
    assert_snapshot!(super::join_paths(&search, &all()).text);
}

#[test]
fn paged_overview_says_what_it_left_out() {
    let window = Window::new(Budget::chars(400));
    assert_snapshot!("overview_page_1", super::overview(&shop(), &window).text);
    assert_snapshot!("overview_page_2", super::overview(&shop(), &window.page(2)).text);
}
