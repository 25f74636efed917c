//! Tests of `schema_link` on a small shop schema: ranking, bridges, homonyms, added samples and no match.

use pretty_assertions::assert_eq;

use super::{LinkOptions, LinkRole};
use crate::catalog::Catalog;
use crate::outline;

const SHOP: &str = "\
table s.customers -- people who buy
  id int pk
  name text
  country text samples=[Germany|France|United States]
table s.orders
  id int pk
  customer_id int -> s.customers.id
  ordered_at timestamp
table s.order_items
  id int pk
  order_id int -> s.orders.id
  product_id int -> s.products.id
  quantity int
table s.products
  id int pk
  title text
  categoryId int
table s.categories
  id int pk
  label text
table s.audit_log
  message text -- free-text events
table archive.orders
  id int pk
  note text
";

/// Links `question` and lists the tables as `schema.name role`, best first, plus the join count.
fn check(question: &str, max_tables: usize, expected: &[&str], joins: usize) {
    let (catalog, _) = Catalog::build(outline::parse(SHOP).expect("outline parses"));
    let link = catalog.schema_link(
        question,
        &LinkOptions {
            max_tables,
            ..LinkOptions::default()
        },
    );
    let actual: Vec<String> = link
        .tables
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                t.table,
                if t.role == LinkRole::Bridge {
                    "bridge"
                } else {
                    "matched"
                }
            )
        })
        .collect();
    assert_eq!(
        (actual, link.edges.len()),
        (expected.iter().map(|s| s.to_string()).collect(), joins),
        "{question}"
    );
}

#[test]
fn ranks_by_name_comment_and_sampled_values() {
    check("Which customers are in Germany?", 5, &["s.customers matched"], 0);
    check("free-text events", 5, &["s.audit_log matched"], 0);
    // camelCase column names are split, plurals stemmed.
    check(
        "products by category",
        5,
        &["s.products matched", "s.categories matched"],
        1,
    );
}

#[test]
fn bridges_pull_in_the_tables_between_matches() {
    // customers and products only connect through orders and order_items.
    check(
        "customers who bought products",
        5,
        &[
            "s.customers matched",
            "s.products matched",
            "s.order_items bridge",
            "s.orders bridge",
        ],
        3,
    );
    // Too small a limit keeps one of the (equally good) matches rather than a disconnected pair.
    check("customers who bought products", 2, &["s.customers matched"], 0);
}

#[test]
fn propagation_prefers_the_connected_homonym() {
    // Both schemas have `orders`; the one joined to the matched customers ranks first, and the
    // unconnected homonym in `archive` is left out, as is `order_items`, which adds nothing asked for.
    check(
        "orders of customers",
        5,
        &["s.orders matched", "s.customers matched"],
        1,
    );
    // Naming the schema answers the question whole: the other `orders` adds nothing it asks for.
    check("archive orders", 5, &["archive.orders matched"], 0);
}

#[test]
fn samples_added_later_are_matched_and_the_joins_kept() {
    use crate::snapshot::TableId;
    let (catalog, _) = Catalog::build(outline::parse(SHOP).expect("outline parses"));
    let question = "shipments to Portugal";
    assert_eq!(catalog.schema_link(question, &LinkOptions::default()).tables, []);
    let sampled = catalog.with_samples([
        (
            TableId::new("s", "orders"),
            "ordered_at".to_owned(),
            vec!["Portugal".to_owned()],
        ),
        // Unknown tables and columns are ignored.
        (
            TableId::new("s", "nowhere"),
            "x".to_owned(),
            vec!["Portugal".to_owned()],
        ),
        (
            TableId::new("s", "orders"),
            "nothing".to_owned(),
            vec!["x".to_owned()],
        ),
    ]);
    let link = sampled.schema_link(question, &LinkOptions::default());
    assert_eq!(
        link.tables
            .iter()
            .map(|t| (t.table.to_string(), t.matches.iter().map(|m| m.field).collect()))
            .collect::<Vec<(String, Vec<crate::search::Field>)>>(),
        [("s.orders".to_owned(), vec![crate::search::Field::SampleValue])]
    );
    // Columns not listed keep their own samples; the join graph is the same.
    assert_eq!(
        sampled
            .schema_link("customers in Germany", &LinkOptions::default())
            .tables[0]
            .table,
        TableId::new("s", "customers")
    );
    assert_eq!(sampled.edges(), catalog.edges());
}

#[test]
fn no_match_is_a_finding() {
    let (catalog, _) = Catalog::build(outline::parse(SHOP).expect("parses"));
    let link = catalog.schema_link("zebra giraffe", &LinkOptions::default());
    assert_eq!(
        (
            link.tables.len(),
            link.findings.iter().map(|f| f.code).collect::<Vec<_>>()
        ),
        (0, vec!["no_match"])
    );
}
