//! Worst-case shapes on a small stack: long operator chains, long set operations and nesting at the limit
//! must be governed (or refused) on a 1 MiB thread without overflowing, in debug builds too.

use sluice_governance::{Dialect, Policy, govern, redact, rules};

/// Half of tokio's default worker stack.
const STACK: usize = 1 << 20;

fn on_small_stack(sql: String) -> (Option<&'static str>, bool) {
    let handle = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let verdict = govern(&sql, Dialect::DuckDb, &Policy::default(), 100);
            let redacted = redact(&sql, Dialect::DuckDb);
            (verdict.denial().map(|f| f.rule), redacted.text.is_some())
        })
        .expect("spawn");
    handle.join().expect("governance must not overflow the stack")
}

#[test]
fn long_chains_and_deep_nesting_stay_on_the_stack() {
    let chain = |n: usize, op: &str| vec!["a = 1"; n].join(op);
    let cases: Vec<(String, Option<&str>)> = vec![
        (format!("SELECT * FROM t WHERE {}", chain(1400, " AND ")), None),
        (
            format!("SELECT * FROM t WHERE {}", chain(4000, " OR ")),
            Some(rules::TOO_COMPLEX),
        ),
        (vec!["SELECT 1"; 2900].join(" UNION ALL "), None),
        (
            vec!["SELECT 1"; 20_000].join(" UNION ALL "),
            Some(rules::TOO_COMPLEX),
        ),
        (format!("SELECT {}", vec!["1"; 2900].join(" + ")), None),
        (
            format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000)),
            Some(rules::TOO_DEEP),
        ),
        (
            format!("SELECT {}1", "- ".repeat(50_000)),
            Some(rules::TOO_COMPLEX),
        ),
        (format!("SELECT {}1", "- ".repeat(2_000)), Some(rules::TOO_DEEP)),
        (
            format!("SELECT {}1", "NOT ".repeat(5_000)),
            Some(rules::TOO_COMPLEX),
        ),
        (
            format!("SELECT 1{}", "::INT".repeat(5_000)),
            Some(rules::TOO_COMPLEX),
        ),
    ];
    for (sql, expected) in cases {
        let (got, _) = on_small_stack(sql.clone());
        assert_eq!(got, expected, "{}…", sql.chars().take(80).collect::<String>());
    }
}

#[test]
fn deepest_allowed_nesting_stays_on_the_stack() {
    let mut sql = "SELECT a FROM t".to_owned();
    for i in 0..25 {
        sql = format!("SELECT * FROM ({sql}) AS s{i} WHERE a IN (SELECT coalesce(abs(a), 1) FROM u)");
    }
    let (got, redacted) = on_small_stack(sql);
    assert!(got.is_none() || got == Some(rules::TOO_DEEP), "{got:?}");
    assert!(redacted || got.is_some());
}
