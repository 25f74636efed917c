//! Governs the `get_date_boundaries` statement (a `UNION ALL` of one aggregate row per table, 6 date
//! columns each; the shape of the `boundaries/` bench group) in a loop, for profilers and instruction
//! counts (`valgrind --tool=callgrind`, whose counts the machine's load does not change):
//! `cargo run --release -p sluice-governance --example boundaries_loop -- 40 before 10` (tables; step;
//! rounds). Steps: `before`, what the gateway did per call before (`govern` of the statement without a
//! `LIMIT`, then `redact` of governance's output for the audit); `now`, what it does now
//! (`govern_and_redact` of the statement ending in its own `LIMIT`); `read` (parse alone, as governance
//! reads); `govern`; `redact`.

use sluice_governance::{Decision, Dialect, Policy, bench_support, govern, govern_and_redact, redact};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tables: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(40);
    let step = args.get(2).map_or("now", String::as_str);
    let rounds: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(10);
    let dialect = Dialect::DuckDb;
    let policy = Policy::default();
    let sql = bench_support::boundaries_sql("main", tables);
    let limited = format!("{sql} LIMIT {tables}");
    let limit = tables as u64 + 1;
    let mut passed = 0usize;
    for _ in 0..rounds {
        let ok = match step {
            "before" => match govern(&sql, dialect, &policy, limit).decision {
                Decision::Allow { sql: out, .. } => redact(&out, dialect).text.is_some(),
                Decision::Deny => false,
            },
            "now" => govern_and_redact(&limited, dialect, &policy, limit)
                .1
                .is_some_and(|r| r.text.is_some()),
            "read" => bench_support::read(&sql, dialect),
            "redact" => redact(&limited, dialect).text.is_some(),
            _ => govern(&sql, dialect, &policy, limit).is_allowed(),
        };
        passed += usize::from(ok);
    }
    println!(
        "{tables} tables ({} bytes) x {rounds} rounds of {step}, {passed} passed",
        sql.len()
    );
}
