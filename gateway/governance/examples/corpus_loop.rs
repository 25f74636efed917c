//! Runs one step of governance over the benchmark corpus in a loop, for profilers (`perf record`,
//! `valgrind --tool=callgrind`): `cargo run --release -p sluice-governance --example corpus_loop -- \
//! duckdb govern 200` (dialect `duckdb` or `postgres`; step `parse`, `govern`, `redact`, `audit_before` or
//! `audit_now`; rounds). `audit_before` is what the gateway's governed query did per statement before
//! `govern_and_redact`: `govern`, then `redact` of the allowed SQL for the audit; `audit_now` is
//! `govern_and_redact`.

use std::path::Path;

use sluice_governance::{Decision, Dialect, Policy, govern, govern_and_redact, redact};
use sqlparser::dialect::{DuckDbDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dialect_name = args.get(1).map_or("duckdb", String::as_str);
    let step = args.get(2).map_or("govern", String::as_str);
    let rounds: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(100);
    let dialect = Dialect::from_kind(dialect_name).unwrap_or(Dialect::Unknown);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/corpus");
    let mut queries = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".sql") else {
            continue;
        };
        if stem.split_once('.').is_some_and(|(_, only)| only != dialect_name) {
            continue;
        }
        queries.push(std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    let policy = Policy::default();
    let mut allowed = 0usize;
    for _ in 0..rounds {
        for sql in &queries {
            let ok = match step {
                "parse" if dialect == Dialect::DuckDb => Parser::parse_sql(&DuckDbDialect {}, sql).is_ok(),
                "parse" => Parser::parse_sql(&PostgreSqlDialect {}, sql).is_ok(),
                "redact" => redact(sql, dialect).text.is_some(),
                "audit_before" => match govern(sql, dialect, &policy, 1001).decision {
                    Decision::Allow { sql: out, .. } => redact(&out, dialect).text.is_some(),
                    Decision::Deny => false,
                },
                "audit_now" => govern_and_redact(sql, dialect, &policy, 1001)
                    .1
                    .is_some_and(|r| r.text.is_some()),
                _ => govern(sql, dialect, &policy, 1001).is_allowed(),
            };
            allowed += usize::from(ok);
        }
    }
    println!("{} queries x {rounds} rounds, {allowed} passed", queries.len());
}
