//! Synthetic schemas shared by the unit tests: a small shop with declared and inferred joins, a cycle,
//! a self-reference, a keyless table, a camelCase corner and a second schema reusing table names.

use crate::catalog::Catalog;
use crate::outline;

pub(crate) const SHOP: &str = "\
table sales.customers ~1200 -- people who buy
  id int pk
  name text not null
  country text samples=[Germany|France] -- billing country
  region_id int -> sales.regions.id
table sales.regions ~12
  id int pk
  name text
table sales.orders ~50000 -- one row per checkout
  id int pk
  customer_id int not null -> sales.customers.id
  status text default='new' -- new, paid or shipped
  ordered_at timestamp
  index idx_orders_status (status)
table sales.order_items ~180000
  order_id int -> sales.orders.id
  line_no int
  productId int
  quantity int
  pk (order_id, line_no)
table sales.products ~800
  id int pk
  title text
  supplier_id int
table sales.suppliers ~40
  id int pk
  region_id int -> sales.regions.id
table sales.employees
  employee_id int pk
  manager_id int
table sales.audit_log
  message text -- free-text events
view sales.big_orders
  id int
  customer_id int
table archive.orders ~9000000
  id int pk
  customer_id int
table archive.customers
  id int pk
";

pub(crate) fn shop() -> Catalog {
    match outline::parse(SHOP) {
        Ok(snapshot) => Catalog::build(snapshot).0,
        Err(e) => panic!("fixture does not parse: {e}"),
    }
}
