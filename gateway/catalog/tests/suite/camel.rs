//! A Northwind-style camelCase schema with no declared foreign keys: everything joins by inference.

use pretty_assertions::assert_eq;
use sluice_catalog::render::{self, DdlOptions};
use sluice_catalog::{
    Budget, Catalog, InferenceRule, LinkFormat, LinkOptions, PathOptions, Quoting, SchemaSnapshot, TableId,
    Window, diff, outline,
};

const NORTHWIND: &str = "\
table main.Customers
  CustomerID text pk
  CompanyName text
  Country text samples=[Germany|Mexico|UK]
table main.Employees
  EmployeeID int pk
  LastName text
  ReportsTo int
table main.Orders
  OrderID int pk
  CustomerID text
  EmployeeID int
  ShipVia int
  OrderDate timestamp
table main.OrderDetails
  OrderID int
  ProductID int
  UnitPrice decimal(10,2)
  pk (OrderID, ProductID)
table main.Products
  ProductID int pk
  ProductName text
  CategoryID int
table main.Categories
  CategoryID int pk
  CategoryName text
";

fn catalog() -> Catalog {
    Catalog::build(outline::parse(NORTHWIND).expect("outline parses")).0
}

#[test]
fn inference_joins_a_schema_without_foreign_keys() {
    let catalog = catalog();
    let edges: Vec<(String, String, InferenceRule)> = catalog
        .edges()
        .iter()
        .map(|e| {
            let rule = match e.origin {
                sluice_catalog::EdgeOrigin::Inferred { rule } => rule,
                sluice_catalog::EdgeOrigin::Declared { .. } => panic!("nothing is declared"),
            };
            (
                format!("{}.{}", e.from.name, e.from_columns[0]),
                format!("{}.{}", e.to.name, e.to_columns[0]),
                rule,
            )
        })
        .collect();
    let s = |a: &str, b: &str, r| (a.to_string(), b.to_string(), r);
    assert_eq!(
        edges,
        vec![
            s(
                "Employees.ReportsTo",
                "Employees.EmployeeID",
                InferenceRule::SelfReference
            ),
            s("OrderDetails.OrderID", "Orders.OrderID", InferenceRule::IdSuffix),
            s(
                "OrderDetails.ProductID",
                "Products.ProductID",
                InferenceRule::IdSuffix
            ),
            s(
                "Orders.CustomerID",
                "Customers.CustomerID",
                InferenceRule::IdSuffix
            ),
            s(
                "Orders.EmployeeID",
                "Employees.EmployeeID",
                InferenceRule::IdSuffix
            ),
            s(
                "Products.CategoryID",
                "Categories.CategoryID",
                InferenceRule::IdSuffix
            ),
        ]
    );
}

#[test]
fn join_path_sql_for_mysql_quoting() {
    let catalog = catalog();
    let from = catalog
        .resolve_table("customers")
        .expect("case-insensitive match");
    let to = catalog
        .resolve_table("`main`.`Categories`")
        .expect("quoted match");
    let options = PathOptions {
        k: 1,
        quoting: Quoting::Backtick,
        ..PathOptions::default()
    };
    let search = catalog
        .find_join_paths(&from, &to, &options)
        .expect("tables exist");
    assert_eq!(
        search.paths[0].sql,
        "SELECT *\nFROM `main`.`Customers` AS t0\n\
         JOIN `main`.`Orders` AS t1 ON t1.`CustomerID` = t0.`CustomerID`\n\
         JOIN `main`.`OrderDetails` AS t2 ON t2.`OrderID` = t1.`OrderID`\n\
         JOIN `main`.`Products` AS t3 ON t3.`ProductID` = t2.`ProductID`\n\
         JOIN `main`.`Categories` AS t4 ON t4.`CategoryID` = t3.`CategoryID`"
    );
    assert_eq!(search.paths[0].hops, 4);
}

#[test]
fn schema_link_finds_the_bridge_tables() {
    let catalog = catalog();
    let link = catalog.schema_link(
        "product categories bought by customers in Germany",
        &LinkOptions::default(),
    );
    let mut names: Vec<&str> = link.tables.iter().map(|t| t.table.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        vec!["Categories", "Customers", "OrderDetails", "Orders", "Products"]
    );
    assert_eq!(link.edges.len(), 4);
    let rendered = render::schema_link(
        &catalog,
        &link,
        LinkFormat::Json,
        Quoting::Double,
        &Window::default(),
    );
    let value: serde_json::Value = serde_json::from_str(&rendered.text).expect("valid JSON");
    assert_eq!(value["tables"].as_array().map(Vec::len), Some(5));
}

#[test]
fn snapshots_round_trip_through_json_and_diff() {
    let snapshot = outline::parse(NORTHWIND).expect("parses");
    let back = SchemaSnapshot::from_json(&snapshot.to_json()).expect("decodes");
    assert_eq!(back, snapshot);
    assert!(diff(&snapshot, &back).is_empty());
    assert!(SchemaSnapshot::from_json("{").is_err());
}

#[test]
fn describe_one_table_as_ddl() {
    let catalog = catalog();
    let id = TableId::new("main", "Orders");
    let options = DdlOptions {
        quoting: Quoting::Double,
        compress: true,
    };
    let r = render::ddl(
        &catalog,
        Some(std::slice::from_ref(&id)),
        &options,
        &Window::new(Budget::chars(1_000)),
    );
    assert_eq!(
        r.text,
        "-- 1 tables and views (compressed: no comments, defaults or indexes)\n\
         CREATE TABLE \"main\".\"Orders\" (\"OrderID\" int NOT NULL, \"CustomerID\" text, \"EmployeeID\" int, \
         \"ShipVia\" int, \"OrderDate\" timestamp, PRIMARY KEY (\"OrderID\"));"
    );
}
