//! Table-driven tests of the SQL tracer on snippets, and of the project walk on a small manifest.

use pretty_assertions::assert_eq;
use sluice_dialect::Dialect;

use super::trace::{RelationInfo, Traced, trace};
use super::*;

/// Relations the snippets read: `orders(id, customer_id, amount, status)`, `customers(id, name)`,
/// `payments(order_id, amount)`, and `raw` whose columns are unknown.
fn resolve(parts: &[String]) -> Option<RelationInfo> {
    let name = parts.last()?.to_lowercase();
    let columns: Option<&[&str]> = match name.as_str() {
        "orders" => Some(&["id", "customer_id", "amount", "status"]),
        "customers" => Some(&["id", "name"]),
        "payments" => Some(&["order_id", "amount"]),
        "raw" => None,
        _ => return None,
    };
    Some(RelationInfo {
        key: name,
        columns: columns.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
    })
}

/// One line per output column and origin: `out <- relation.column kind[(transform)][: expr]`.
fn lines(traced: &Traced) -> Vec<String> {
    let mut out = Vec::new();
    for c in &traced.columns {
        if c.origins.is_empty() {
            out.push(format!("{} <- (none)", c.name));
        }
        for o in &c.origins {
            let mut line = format!(
                "{} <- {}.{} {}",
                c.name,
                o.relation,
                o.column,
                EdgeKind::of(o, &c.name).as_str()
            );
            if let Some(t) = o.transform {
                line.push_str(&format!("({})", t.as_str()));
            }
            if !o.expressions.is_empty() {
                line.push_str(&format!(": {}", o.expressions.join(" <- ")));
            }
            out.push(line);
        }
    }
    for u in &traced.unresolved {
        out.push(format!("? {u}"));
    }
    out
}

fn check(sql: &str, expected: &[&str]) {
    let traced = trace(sql, Dialect::DuckDb.parser(), &resolve).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(lines(&traced), expected, "{sql}");
}

#[test]
fn traces_sql_snippets() {
    let cases: &[(&str, &[&str])] = &[
        // Passthrough, rename and a qualified name through three-part relation names.
        (
            r#"select id as order_id, o.status from "db"."main"."orders" as o"#,
            &[
                "order_id <- orders.id renamed",
                "status <- orders.status passthrough",
            ],
        ),
        // A CTE chain: the rename in the first CTE and the cast in the second compose.
        (
            "with a as (select id as order_id, amount from orders), \
             b as (select order_id, cast(amount as double) as amt from a) select * from b",
            &[
                "order_id <- orders.id renamed",
                "amt <- orders.amount transformed(expression): CAST(amount AS DOUBLE)",
            ],
        ),
        // Joins with aliases; the aggregate inside a CTE shows beneath the outer coalesce.
        (
            "with p as (select order_id, sum(amount) as total, count(*) as n from payments group by 1) \
             select o.id, c.name as customer_name, coalesce(p.total, 0) as paid, p.n \
             from orders o join customers c on o.customer_id = c.id left join p on p.order_id = o.id",
            &[
                "id <- orders.id passthrough",
                "customer_name <- customers.name renamed",
                "paid <- payments.amount transformed(aggregate): coalesce(p.total, 0) <- sum(amount)",
                "n <- payments.* transformed(aggregate): count(*)",
            ],
        ),
        // UNION: each output column comes from both branches, matched by position.
        (
            "select id, amount from orders union all select order_id, amount as amt from payments",
            &[
                "id <- orders.id passthrough",
                "id <- payments.order_id renamed",
                "amount <- orders.amount passthrough",
                "amount <- payments.amount passthrough",
            ],
        ),
        // SELECT * expanded with known columns, with EXCLUDE, and t.* over a join.
        (
            "select * exclude (status) from orders",
            &[
                "id <- orders.id passthrough",
                "customer_id <- orders.customer_id passthrough",
                "amount <- orders.amount passthrough",
            ],
        ),
        (
            "select c.*, o.amount from customers c join orders o on o.customer_id = c.id",
            &[
                "id <- customers.id passthrough",
                "name <- customers.name passthrough",
                "amount <- orders.amount passthrough",
            ],
        ),
        // Window functions read their partition and order columns too.
        (
            "select id, row_number() over (partition by customer_id order by amount desc) as rn, \
             sum(amount) over (partition by customer_id) as customer_total from orders",
            &[
                "id <- orders.id passthrough",
                "rn <- orders.customer_id transformed(window): row_number() OVER (PARTITION BY customer_id ORDER BY amount DESC)",
                "rn <- orders.amount transformed(window): row_number() OVER (PARTITION BY customer_id ORDER BY amount DESC)",
                "customer_total <- orders.amount transformed(window): sum(amount) OVER (PARTITION BY customer_id)",
                "customer_total <- orders.customer_id transformed(window): sum(amount) OVER (PARTITION BY customer_id)",
            ],
        ),
        // A subquery in FROM with a column alias list, and a scalar subquery in the select list.
        (
            "select x.a, (select max(amount) from payments) as top from (select id, status from orders) as x(a, b)",
            &[
                "a <- orders.id renamed",
                "top <- payments.amount transformed(aggregate): (SELECT max(amount) FROM payments) <- max(amount)",
            ],
        ),
        // Constants have no origin; a CASE is an expression.
        (
            "select 1 as one, case when status = 'x' then amount end as x_amount from orders",
            &[
                "one <- (none)",
                "x_amount <- orders.status transformed(expression): CASE WHEN status = 'x' THEN amount END",
                "x_amount <- orders.amount transformed(expression): CASE WHEN status = 'x' THEN amount END",
            ],
        ),
        // Unknown columns: a single source is trusted; a star over it is listed, not guessed.
        (
            "select a, b + 1 as c from raw",
            &[
                "a <- raw.a passthrough",
                "c <- raw.b transformed(expression): b + 1",
            ],
        ),
        (
            "select * from raw",
            &[
                "? `SELECT *` from `raw`: its columns are unknown (not in catalog.json or the YAML), so the columns it adds are not listed",
            ],
        ),
        // Unknown relations and columns are listed.
        (
            "select o.nope, z.id from orders o join elsewhere z on true",
            &[
                "nope <- (none)",
                "id <- (none)",
                "? relation `elsewhere` is not a node of the project; its columns are not traced further",
                "? `o.nope`: `orders` has no column `nope`",
            ],
        ),
        // Niladic functions read nothing.
        (
            "select current_date as today, current_timestamp - amount as t from orders",
            &[
                "today <- (none)",
                "t <- orders.amount transformed(expression): current_timestamp - amount",
            ],
        ),
        // Lateral alias reuse (DuckDB, Snowflake).
        (
            "select amount * 2 as doubled, doubled + 1 as more from orders",
            &[
                "doubled <- orders.amount transformed(expression): amount * 2",
                "more <- orders.amount transformed(expression): doubled + 1 <- amount * 2",
            ],
        ),
    ];
    for (sql, expected) in cases {
        check(sql, expected);
    }
}

#[test]
fn sql_that_does_not_parse_is_an_error() {
    for sql in ["select from where", "{{ ref('x') }}", "create table t (a int)"] {
        assert!(
            trace(sql, Dialect::DuckDb.parser(), &resolve).is_err(),
            "{sql} should not trace"
        );
    }
}

#[test]
fn records_every_column_read() {
    let cases: &[(&str, &[&str])] = &[
        (
            "with p as (select order_id, sum(amount) as total from payments where amount > 0 group by order_id) \
             select o.id from orders o join p on p.order_id = o.id where o.status = 'x'",
            &[
                "orders.id",
                "orders.status",
                "payments.amount",
                "payments.order_id",
            ],
        ),
        (
            "select c.name from customers c where exists (select 1 from orders o where o.customer_id = c.id)",
            &["customers.id", "customers.name", "orders.customer_id"],
        ),
        ("select * from customers", &["customers.id", "customers.name"]),
    ];
    for (sql, expected) in cases {
        let traced = trace(sql, Dialect::DuckDb.parser(), &resolve).expect("traces");
        let reads: Vec<String> = traced.reads.iter().map(|(r, c)| format!("{r}.{c}")).collect();
        assert_eq!(reads, *expected, "{sql}");
    }
}

#[test]
fn each_dialect_parses_its_own_syntax() {
    let cases: &[(Dialect, &str, &[&str])] = &[
        (
            Dialect::PostgreSql,
            "select amount::numeric(10, 2) as amt, o.status from public.orders as o",
            &[
                "amt <- orders.amount transformed(expression): amount::NUMERIC(10,2)",
                "status <- orders.status passthrough",
            ],
        ),
        (
            Dialect::Snowflake,
            "select id, iff(amount > 0, amount, null) as positive from orders qualify row_number() over (partition by id order by amount) = 1",
            &[
                "id <- orders.id passthrough",
                "positive <- orders.amount transformed(expression): iff(amount > 0, amount, NULL)",
            ],
        ),
    ];
    for (dialect, sql, expected) in cases {
        let traced = trace(sql, dialect.parser(), &resolve).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(lines(&traced), *expected, "{sql}");
    }
}
