//! Rough timing of governance over the DuckDB and PostgreSQL allowed corpora: parse alone, and the whole
//! decision with rewrite. Run in release: `cargo run --release -p sluice-governance --example timing`.

use std::time::{Duration, Instant};

use sluice_governance::{Dialect, Policy, govern};
use sqlparser::parser::Parser;

const ROUNDS: usize = 200;

fn cases(dir: &str) -> Vec<String> {
    let path = format!(
        "{}/../../tests/fixtures/sql/{dir}/allowed.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split("\n====")
        .skip(1)
        .filter_map(|case| case.split_once('\n').map(|(_, sql)| sql.trim().to_owned()))
        .filter(|sql| !sql.is_empty())
        .collect()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn main() {
    let policy = Policy::default();
    for (dir, dialect, parser) in [
        (
            "duckdb",
            Dialect::DuckDb,
            &sqlparser::dialect::DuckDbDialect as &dyn sqlparser::dialect::Dialect,
        ),
        (
            "postgres",
            Dialect::PostgreSql,
            &sqlparser::dialect::PostgreSqlDialect {},
        ),
    ] {
        let queries = cases(dir);
        let (mut parse, mut decide) = (Vec::new(), Vec::new());
        for sql in &queries {
            let (mut p, mut d) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                let start = Instant::now();
                let _ = std::hint::black_box(Parser::parse_sql(parser, sql));
                p.push(start.elapsed());
                let start = Instant::now();
                let _ = std::hint::black_box(govern(sql, dialect, &policy, 1001));
                d.push(start.elapsed());
            }
            parse.push(median(p));
            decide.push(median(d));
        }
        println!(
            "{dir}: {} queries, median parse {:?}, median govern (parse + checks + rewrite + render + verify) {:?}",
            queries.len(),
            median(parse),
            median(decide)
        );
    }
}
