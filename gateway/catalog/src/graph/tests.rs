//! Helpers and fixtures for the join graph's tests, and the tests over whole schemas (TPC-H, TPC-DS,
//! Chinook, Northwind, a dbt shop).

use pretty_assertions::assert_eq;

use crate::catalog::Catalog;
use crate::graph::EdgeOrigin;
use crate::outline;

/// Builds a catalog from an outline (a table named `Order_Details_` becomes `Order Details`, which the
/// outline cannot spell) and returns its edges as `from(cols) -> to(cols) origin confidence`, and the
/// codes of its findings.
fn edges_and_findings(schema: &str) -> (Vec<String>, Vec<&'static str>) {
    let mut snapshot = outline::parse(schema).expect("outline parses");
    for table in &mut snapshot.tables {
        if table.id.name == "Order_Details_" {
            table.id.name = "Order Details".to_string();
        }
    }
    let (catalog, findings) = Catalog::build(snapshot);
    let edges = catalog
        .edges()
        .iter()
        .map(|e| {
            let origin = match &e.origin {
                EdgeOrigin::Declared { .. } => "declared".to_string(),
                EdgeOrigin::Inferred { rule } => format!("{rule:?}"),
            };
            format!(
                "{}({}) -> {}({}) {origin} {}",
                e.from,
                e.from_columns.join(","),
                e.to,
                e.to_columns.join(","),
                e.confidence
            )
        })
        .collect();
    (edges, findings.iter().map(|f| f.code).collect())
}

/// Asserts the edges of an outline's catalog, in edge order.
pub(super) fn check(schema: &str, expected: &[&str]) {
    assert_eq!(edges_and_findings(schema).0, expected, "schema:\n{schema}");
}

/// Asserts the edges and the finding codes of an outline's catalog.
pub(super) fn check_findings(schema: &str, expected: &[&str], findings: &[&str]) {
    let (edges, codes) = edges_and_findings(schema);
    assert_eq!(
        (edges, codes),
        (
            expected.iter().map(|e| e.to_string()).collect(),
            findings.to_vec()
        ),
        "schema:\n{schema}"
    );
}

/// TPC-H's eight tables with every declared key removed.
const TPCH: &str = "\
table h.region
  r_regionkey int
  r_name char(25)
  r_comment varchar(152)
table h.nation
  n_nationkey int
  n_name char(25)
  n_regionkey int
  n_comment varchar(152)
table h.part
  p_partkey int
  p_name varchar(55)
  p_mfgr char(25)
  p_brand char(10)
  p_type varchar(25)
  p_size int
  p_container char(10)
  p_retailprice decimal(15,2)
  p_comment varchar(23)
table h.supplier
  s_suppkey int
  s_name char(25)
  s_address varchar(40)
  s_nationkey int
  s_phone char(15)
  s_acctbal decimal(15,2)
  s_comment varchar(101)
table h.partsupp
  ps_partkey int
  ps_suppkey int
  ps_availqty int
  ps_supplycost decimal(15,2)
  ps_comment varchar(199)
table h.customer
  c_custkey int
  c_name varchar(25)
  c_address varchar(40)
  c_nationkey int
  c_phone char(15)
  c_acctbal decimal(15,2)
  c_mktsegment char(10)
  c_comment varchar(117)
table h.orders
  o_orderkey int
  o_custkey int
  o_orderstatus char(1)
  o_totalprice decimal(15,2)
  o_orderdate date
  o_orderpriority char(15)
  o_clerk char(15)
  o_shippriority int
  o_comment varchar(79)
table h.lineitem
  l_orderkey int
  l_partkey int
  l_suppkey int
  l_linenumber int
  l_quantity decimal(15,2)
  l_extendedprice decimal(15,2)
  l_discount decimal(15,2)
  l_tax decimal(15,2)
  l_returnflag char(1)
  l_linestatus char(1)
  l_shipdate date
  l_commitdate date
  l_receiptdate date
  l_shipinstruct char(25)
  l_shipmode char(10)
  l_comment varchar(44)
";

/// A TPC-DS subset, surrogate keys only by name.
const TPCDS: &str = "\
table ds.store_sales
  ss_sold_date_sk int
  ss_sold_time_sk int
  ss_item_sk int
  ss_customer_sk int
  ss_cdemo_sk int
  ss_addr_sk int
  ss_store_sk int
  ss_promo_sk int
  ss_ticket_number int
  ss_quantity int
  ss_sales_price decimal(7,2)
  ss_net_paid decimal(7,2)
table ds.customer
  c_customer_sk int
  c_customer_id char(16)
  c_current_cdemo_sk int
  c_current_addr_sk int
  c_first_shipto_date_sk int
  c_first_sales_date_sk int
  c_first_name char(20)
  c_last_name char(30)
  c_birth_country varchar(20)
table ds.item
  i_item_sk int
  i_item_id char(16)
  i_rec_start_date date
  i_item_desc varchar(200)
  i_current_price decimal(7,2)
  i_brand_id int
  i_category_id int
  i_category char(50)
table ds.date_dim
  d_date_sk int
  d_date_id char(16)
  d_date date
  d_year int
  d_moy int
  d_dom int
table ds.store
  s_store_sk int
  s_store_id char(16)
  s_closed_date_sk int
  s_store_name varchar(50)
  s_number_employees int
  s_city varchar(60)
table ds.customer_address
  ca_address_sk int
  ca_address_id char(16)
  ca_street_number char(10)
  ca_city varchar(60)
  ca_state char(2)
  ca_country varchar(20)
table ds.promotion
  p_promo_sk int
  p_promo_id char(16)
  p_start_date_sk int
  p_end_date_sk int
  p_item_sk int
  p_cost decimal(15,2)
  p_promo_name char(50)
";

/// Chinook's CamelCase tables without declared keys.
const CHINOOK: &str = "\
table main.Artist
  ArtistId int
  Name text
table main.Album
  AlbumId int
  Title text
  ArtistId int
table main.Genre
  GenreId int
  Name text
table main.MediaType
  MediaTypeId int
  Name text
table main.Track
  TrackId int
  Name text
  AlbumId int
  MediaTypeId int
  GenreId int
  Composer text
  Milliseconds int
  UnitPrice numeric(10,2)
table main.Playlist
  PlaylistId int
  Name text
table main.PlaylistTrack
  PlaylistId int
  TrackId int
table main.Employee
  EmployeeId int
  LastName text
  Title text
  ReportsTo int
table main.Customer
  CustomerId int
  FirstName text
  Company text
  SupportRepId int
table main.Invoice
  InvoiceId int
  CustomerId int
  InvoiceDate timestamp
  BillingAddress text
  BillingCity text
  BillingCountry text
  Total numeric(10,2)
table main.InvoiceLine
  InvoiceLineId int
  InvoiceId int
  TrackId int
  UnitPrice numeric(10,2)
  Quantity int
";

/// Northwind as SQL Server ships it (`[Order Details]`), no declared keys.
const NORTHWIND: &str = "\
table dbo.Customers
  CustomerID nchar(5)
  CompanyName nvarchar(40)
table dbo.Employees
  EmployeeID int
  LastName nvarchar(20)
  ReportsTo int
table dbo.Orders
  OrderID int
  CustomerID nchar(5)
  EmployeeID int
  ShipVia int
  OrderDate datetime
table dbo.Order_Details_
  OrderID int
  ProductID int
  UnitPrice money
  Quantity smallint
table dbo.Products
  ProductID int
  ProductName nvarchar(40)
  SupplierID int
  CategoryID int
table dbo.Suppliers
  SupplierID int
  CompanyName nvarchar(40)
table dbo.Categories
  CategoryID int
  CategoryName nvarchar(15)
";

/// Northwind as the PostgreSQL port spells it.
const NORTHWIND_SNAKE: &str = "\
table public.customers
  customer_id bpchar
  company_name varchar(40)
table public.orders
  order_id smallint
  customer_id bpchar
  employee_id smallint
table public.order_details
  order_id smallint
  product_id smallint
  unit_price real
table public.products
  product_id smallint
  product_name varchar(40)
";

/// A dbt shop: staging views over raw tables, marts built from them, nothing declared.
const DBT_SHOP: &str = "\
view analytics.stg_customers
  customer_id int
  first_name text
  last_name text
view analytics.stg_orders
  order_id int
  customer_id int
  order_date date
  status text
view analytics.stg_payments
  payment_id int
  order_id int
  payment_method text
  amount int
table analytics.dim_customers
  customer_id int
  first_name text
  number_of_orders int
table analytics.fct_orders
  order_id int
  customer_id int
  order_date date
  amount int
";

#[test]
fn reasons_say_which_names_matched() {
    let reasons = |schema: &str| -> Vec<String> {
        let (catalog, _) = Catalog::build(outline::parse(schema).expect("outline parses"));
        catalog.edges().iter().map(|e| e.reason.clone()).collect()
    };
    assert_eq!(
        reasons(TPCH)
            .into_iter()
            .filter(|r| r.contains("custkey") || r.contains("partsupp"))
            .collect::<Vec<_>>(),
        vec![
            "(l_partkey, l_suppkey) match (ps_partkey, ps_suppkey), the key by naming convention (no declared \
             primary key) of partsupp, column for column; partsupp is named after the entities of its two key \
             columns; compared without the column prefixes",
            "o_custkey without its column prefix `o_` and c_custkey without its column prefix `c_` read alike \
             (cust_key); `cust` names table customer (`cust` abbreviates it); customer.c_custkey is its key by \
             naming convention (no declared primary key)",
        ]
    );
    assert_eq!(
        reasons(
            "table s.customers\n  id int pk\nview s.stg_customers\n  customer_id int\n\
             table s.orders\n  id int pk\n  cust_id int\n"
        ),
        vec![
            "cust_id names table customers (`cust` abbreviates it); customers.id is its primary key",
            "cust_id names table stg_customers (`cust` abbreviates it); stg_customers.customer_id is its key by \
             naming convention (no declared primary key); matched without the table's prefix; a view, and table \
             customers fits too",
            "customer_id names table customers; customers.id is its primary key",
        ]
    );
}

#[test]
fn tpch_without_declared_keys_has_its_standard_joins_and_no_others() {
    check_findings(
        TPCH,
        &[
            "h.customer(c_nationkey) -> h.nation(n_nationkey) ColumnPrefix 0.7",
            "h.lineitem(l_orderkey) -> h.orders(o_orderkey) ColumnPrefix 0.7",
            "h.lineitem(l_partkey) -> h.part(p_partkey) ColumnPrefix 0.7",
            "h.lineitem(l_partkey,l_suppkey) -> h.partsupp(ps_partkey,ps_suppkey) CompositeKey 0.7",
            "h.lineitem(l_suppkey) -> h.supplier(s_suppkey) ColumnPrefix 0.63",
            "h.nation(n_regionkey) -> h.region(r_regionkey) ColumnPrefix 0.7",
            "h.orders(o_custkey) -> h.customer(c_custkey) ColumnPrefix 0.63",
            "h.partsupp(ps_partkey) -> h.part(p_partkey) ColumnPrefix 0.7",
            "h.partsupp(ps_suppkey) -> h.supplier(s_suppkey) ColumnPrefix 0.63",
            "h.supplier(s_nationkey) -> h.nation(n_nationkey) ColumnPrefix 0.7",
        ],
        &[],
    );
}

#[test]
fn tpcds_surrogate_keys_join_their_dimensions() {
    check_findings(
        TPCDS,
        &[
            "ds.customer(c_current_addr_sk) -> ds.customer_address(ca_address_sk) ColumnPrefix 0.473",
            "ds.customer(c_first_sales_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
            "ds.customer(c_first_shipto_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
            "ds.promotion(p_end_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
            "ds.promotion(p_start_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
            "ds.promotion(p_item_sk) -> ds.item(i_item_sk) ColumnPrefix 0.7",
            "ds.store(s_closed_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
            "ds.store_sales(ss_customer_sk) -> ds.customer(c_customer_sk) ColumnPrefix 0.7",
            "ds.store_sales(ss_addr_sk) -> ds.customer_address(ca_address_sk) ColumnPrefix 0.63",
            "ds.store_sales(ss_sold_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
            "ds.store_sales(ss_item_sk) -> ds.item(i_item_sk) ColumnPrefix 0.7",
            "ds.store_sales(ss_promo_sk) -> ds.promotion(p_promo_sk) ColumnPrefix 0.63",
            "ds.store_sales(ss_store_sk) -> ds.store(s_store_sk) ColumnPrefix 0.7",
        ],
        &[],
    );
}

#[test]
fn chinook_camel_case_joins_by_inference() {
    check_findings(
        CHINOOK,
        &[
            "main.Album(ArtistId) -> main.Artist(ArtistId) IdSuffix 0.7",
            "main.Customer(SupportRepId) -> main.Employee(EmployeeId) RoleName 0.6",
            "main.Employee(ReportsTo) -> main.Employee(EmployeeId) SelfReference 0.553",
            "main.Invoice(CustomerId) -> main.Customer(CustomerId) IdSuffix 0.7",
            "main.InvoiceLine(InvoiceId) -> main.Invoice(InvoiceId) IdSuffix 0.7",
            "main.InvoiceLine(TrackId) -> main.Track(TrackId) IdSuffix 0.7",
            "main.PlaylistTrack(PlaylistId) -> main.Playlist(PlaylistId) IdSuffix 0.7",
            "main.PlaylistTrack(TrackId) -> main.Track(TrackId) IdSuffix 0.7",
            "main.Track(AlbumId) -> main.Album(AlbumId) IdSuffix 0.7",
            "main.Track(GenreId) -> main.Genre(GenreId) IdSuffix 0.7",
            "main.Track(MediaTypeId) -> main.MediaType(MediaTypeId) IdSuffix 0.7",
        ],
        &[],
    );
}

#[test]
fn northwind_joins_by_inference_in_both_spellings() {
    check_findings(
        NORTHWIND,
        &[
            "dbo.Employees(ReportsTo) -> dbo.Employees(EmployeeID) SelfReference 0.553",
            "dbo.Order Details(OrderID) -> dbo.Orders(OrderID) IdSuffix 0.7",
            "dbo.Order Details(ProductID) -> dbo.Products(ProductID) IdSuffix 0.7",
            "dbo.Orders(CustomerID) -> dbo.Customers(CustomerID) IdSuffix 0.7",
            "dbo.Orders(EmployeeID) -> dbo.Employees(EmployeeID) IdSuffix 0.7",
            "dbo.Products(CategoryID) -> dbo.Categories(CategoryID) IdSuffix 0.7",
            "dbo.Products(SupplierID) -> dbo.Suppliers(SupplierID) IdSuffix 0.7",
        ],
        &[],
    );
    check_findings(
        NORTHWIND_SNAKE,
        &[
            "public.order_details(order_id) -> public.orders(order_id) IdSuffix 0.7",
            "public.order_details(product_id) -> public.products(product_id) IdSuffix 0.7",
            "public.orders(customer_id) -> public.customers(customer_id) IdSuffix 0.7",
        ],
        &[],
    );
}

#[test]
fn dbt_shop_joins_marts_and_staging_views() {
    check_findings(
        DBT_SHOP,
        &[
            "analytics.dim_customers(customer_id) -> analytics.stg_customers(customer_id) IdSuffix 0.665",
            "analytics.fct_orders(customer_id) -> analytics.dim_customers(customer_id) IdSuffix 0.665",
            "analytics.fct_orders(customer_id) -> analytics.stg_customers(customer_id) IdSuffix 0.598",
            "analytics.fct_orders(order_id) -> analytics.stg_orders(order_id) IdSuffix 0.665",
            "analytics.stg_orders(customer_id) -> analytics.dim_customers(customer_id) IdSuffix 0.665",
            "analytics.stg_orders(customer_id) -> analytics.stg_customers(customer_id) IdSuffix 0.598",
            "analytics.stg_payments(order_id) -> analytics.fct_orders(order_id) IdSuffix 0.665",
            "analytics.stg_payments(order_id) -> analytics.stg_orders(order_id) IdSuffix 0.598",
        ],
        &[],
    );
}
