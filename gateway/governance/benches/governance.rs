//! The governance benchmark: for every query of `benches/corpus/` (typical analytical SQL for an online
//! retailer), per dialect (DuckDB, PostgreSQL), criterion measures
//!
//! - `parse`: `sqlparser`'s `Parser::parse_sql` alone, the floor every decision stands on;
//! - `read`: governance's own reading, as `govern`'s first pass does it (tokenize, token pre-scan, parse
//!   without unescaping and without source positions);
//! - `decide`: the decision alone on the already parsed statement (statement kind, the walk of the whole
//!   tree against the deny lists and the policy, the row limit), `govern`'s own code through
//!   `bench_support::decide`; each iteration gets a fresh clone of the tree, made outside the timing, and
//!   the result is dropped outside it too;
//! - `decide_policy`: the same under the typical connection policy;
//! - `govern`: the whole decision with rewrite, `govern(sql, dialect, &Policy::default(), 1001)`;
//! - `govern_policy`: the same under a typical connection policy (denied tables, schemas, columns and a
//!   function), which adds the column and name checks;
//! - `regovern`: `govern` of governance's own output for the query (as when an agent runs the SQL
//!   `validate_sql` showed it): nothing to rewrite and the rendering is the text parsed, so the re-parse
//!   check's answer is known without parsing again;
//! - `render`: rendering the limited tree back to SQL;
//! - `verify`: rendering plus the safety check that the rendering parses back to the checked tree (the
//!   last step of `govern`, run alone through `bench_support`); the re-parse check alone is
//!   `verify − render`;
//! - `redact`: literal redaction for the audit log.
//!
//! A second group, `boundaries/<dialect>/<tables>/<step>`, measures the same steps on the statement
//! `get_date_boundaries` sends (a `UNION ALL` of one aggregate row per table) for 5 to 160 tables, to show
//! how each step grows with the statement's size; see `boundaries` below.
//!
//! Each benchmark id is `<dialect>/<query>/<step>`; criterion writes per-query estimates to
//! `$CRITERION_HOME` (default `<target>/criterion`), where `benches/report.py` reads the medians and puts
//! them beside sqlglot's. Run everything with `benches/run.sh`; one step with e.g.
//! `cargo bench -p sluice-governance --bench governance -- 'duckdb/.*/govern$'`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use sluice_governance::{Decision, Dialect, Policy, bench_support, govern, govern_and_redact, redact};
use sqlparser::dialect::{DuckDbDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

/// The limit the gateway passes: its default cap of 1 000 rows plus one to detect truncation.
const LIMIT: u64 = 1001;

struct Case {
    name: String,
    sql: String,
}

/// The corpus for one dialect: every `NAME.sql`, plus `NAME.<dialect>.sql` variants where the dialects'
/// syntax differs (the same rule as `sqlglot_bench.py`), in name order.
fn corpus(dialect: &str) -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/corpus");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut cases: Vec<Case> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let file = path.file_name()?.to_str()?.to_owned();
            let stem = file.strip_suffix(".sql")?;
            let name = match stem.split_once('.') {
                None => stem,
                Some((name, only)) if only == dialect => name,
                Some(_) => return None,
            };
            let sql = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {file}: {e}"));
            Some(Case {
                name: name.to_owned(),
                sql,
            })
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        cases.len() >= 30,
        "the {dialect} corpus has only {} queries",
        cases.len()
    );
    cases
}

/// A connection policy as an operator might write one for the retailer schema: none of it refuses a corpus
/// query, all of it is checked.
fn typical_policy() -> Policy {
    let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    Policy {
        denied_schemas: list(&["internal", "audit"]),
        denied_tables: list(&["staff_salaries", "internal.api_keys", "payment_tokens"]),
        denied_columns: list(&[
            "customers.password_hash",
            "customers.phone",
            "payments.card_number",
            "payments.card_fingerprint",
        ]),
        deny_functions: list(&["md5", "pg_catalog.pg_read_file"]),
        ..Policy::default()
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
        .nresamples(10_000)
        .configure_from_args();
    let policy = Policy::default();
    let strict = typical_policy();
    let dialects: [(&str, Dialect, &dyn sqlparser::dialect::Dialect); 2] = [
        ("duckdb", Dialect::DuckDb, &DuckDbDialect {}),
        ("postgres", Dialect::PostgreSql, &PostgreSqlDialect {}),
    ];
    for (name, dialect, parser) in dialects {
        let cases = corpus(name);
        // A benchmark of refusals would measure the wrong thing: every query must pass and be limited.
        let limited: Vec<_> = cases
            .iter()
            .map(|case| {
                let verdict = govern(&case.sql, dialect, &policy, LIMIT);
                let output = match &verdict.decision {
                    Decision::Allow {
                        limit_applied: Some(_),
                        sql,
                        ..
                    } => sql.clone(),
                    _ => panic!("{name}/{}: not allowed with a limit: {verdict:?}", case.name),
                };
                assert!(
                    matches!(govern(&output, dialect, &policy, LIMIT).decision,
                        Decision::Allow { ref sql, rewritten: false, .. } if *sql == output),
                    "{name}/{}: its output does not govern to itself",
                    case.name
                );
                assert!(
                    govern(&case.sql, dialect, &strict, LIMIT).is_allowed(),
                    "{name}/{}: refused under the typical policy",
                    case.name
                );
                assert!(
                    redact(&case.sql, dialect).text.is_some(),
                    "{name}/{}: not redacted",
                    case.name
                );
                assert!(
                    Parser::parse_sql(parser, &case.sql).is_ok(),
                    "{name}/{}",
                    case.name
                );
                let parsed = bench_support::parsed_statement(&case.sql, dialect)
                    .unwrap_or_else(|| panic!("{name}/{}: no parsed statement", case.name));
                assert!(
                    bench_support::decide(parsed.clone(), dialect, &strict, LIMIT).is_some(),
                    "{name}/{}: the decision refuses it under the typical policy",
                    case.name
                );
                let limited = bench_support::decide(parsed.clone(), dialect, &policy, LIMIT)
                    .unwrap_or_else(|| panic!("{name}/{}: no limited statement", case.name));
                (parsed, limited, output)
            })
            .collect();

        // One group per query, its steps measured one after the other, so that a change in the machine's
        // load skews the steps of a query alike.
        for (case, (parsed, statement, output)) in cases.iter().zip(&limited) {
            let sql = case.sql.as_str();
            let mut group = c.benchmark_group(format!("{name}/{}", case.name));
            group.bench_function("parse", |b| b.iter(|| Parser::parse_sql(parser, black_box(sql))));
            group.bench_function("read", |b| {
                b.iter(|| bench_support::read(black_box(sql), dialect))
            });
            group.bench_function("decide", |b| {
                b.iter_batched(
                    || parsed.clone(),
                    |tree| bench_support::decide(tree, dialect, &policy, LIMIT),
                    BatchSize::SmallInput,
                )
            });
            group.bench_function("decide_policy", |b| {
                b.iter_batched(
                    || parsed.clone(),
                    |tree| bench_support::decide(tree, dialect, &strict, LIMIT),
                    BatchSize::SmallInput,
                )
            });
            group.bench_function("govern", |b| {
                b.iter(|| govern(black_box(sql), dialect, &policy, LIMIT))
            });
            group.bench_function("govern_policy", |b| {
                b.iter(|| govern(black_box(sql), dialect, &strict, LIMIT))
            });
            group.bench_function("regovern", |b| {
                b.iter(|| govern(black_box(output), dialect, &policy, LIMIT))
            });
            group.bench_function("render", |b| b.iter(|| black_box(statement).to_string()));
            group.bench_function("verify", |b| {
                b.iter(|| bench_support::render_verified(black_box(statement), dialect))
            });
            group.bench_function("redact", |b| b.iter(|| redact(black_box(sql), dialect)));
            group.finish();
        }
    }
    boundaries(&mut c);
    c.final_summary();
}

/// The tables of the `boundaries` group: the size curve of one statement.
const BOUNDARY_TABLES: [usize; 6] = [5, 10, 20, 40, 80, 160];

/// Group `boundaries/<dialect>/<tables>`: every step of governing the date-boundaries statement and
/// redacting it for the audit, as a function of its size, to show how each step grows. The gateway passes
/// a limit of one row per table plus one; the audit redacts the SQL that ran (governance's output).
///
/// - `parse`, `read`, `decide`, `render`, `verify`: the steps, as in the corpus groups, on the statement
///   without a `LIMIT` (so `decide` adds one and `verify` parses the rendering again);
/// - `govern` and `redact`: the statement without a `LIMIT` governed, and governance's output redacted by
///   [`redact`], which parses it once more: what the gateway did per call before the tool's statement
///   carried its own `LIMIT` and before the audit took governance's redaction;
/// - `govern_limited`: `govern` of the statement as the tool sends it now, ending in `LIMIT <tables>`:
///   nothing to rewrite, and the rendering is the text, so the re-parse check's answer is known;
/// - `govern_and_redact`: what the gateway runs per call now, [`govern_and_redact`] of that statement
///   (the audit's redaction made from the checked tree).
fn boundaries(c: &mut Criterion) {
    let policy = Policy::default();
    let dialects: [(&str, &str, Dialect, &dyn sqlparser::dialect::Dialect); 2] = [
        ("duckdb", "main", Dialect::DuckDb, &DuckDbDialect {}),
        ("postgres", "public", Dialect::PostgreSql, &PostgreSqlDialect {}),
    ];
    for (name, schema, dialect, parser) in dialects {
        for tables in BOUNDARY_TABLES {
            let sql = bench_support::boundaries_sql(schema, tables);
            let sent = format!("{sql} LIMIT {tables}");
            let limit = tables as u64 + 1;
            let executed = match govern(&sql, dialect, &policy, limit).decision {
                Decision::Allow {
                    limit_applied: Some(applied),
                    sql,
                    ..
                } if applied == limit => sql,
                other => panic!("{name}/{tables} tables: not allowed with its limit: {other:?}"),
            };
            assert!(
                redact(&executed, dialect).text.is_some(),
                "{name}/{tables}: not redacted"
            );
            let (verdict, redacted) = govern_and_redact(&sent, dialect, &policy, limit);
            assert!(
                matches!(&verdict.decision, Decision::Allow { sql, rewritten: false, .. } if *sql == sent),
                "{name}/{tables}: the statement with its limit is not its own rendering: {verdict:?}"
            );
            assert_eq!(
                redacted,
                Some(redact(&sent, dialect)),
                "{name}/{tables}: redaction"
            );
            let parsed = bench_support::parsed_statement(&sql, dialect)
                .unwrap_or_else(|| panic!("{name}/{tables}: no parsed statement"));
            let limited = bench_support::decide(parsed.clone(), dialect, &policy, limit)
                .unwrap_or_else(|| panic!("{name}/{tables}: no limited statement"));
            let sql = sql.as_str();
            let mut group = c.benchmark_group(format!("boundaries/{name}/{tables}"));
            group.throughput(criterion::Throughput::Bytes(sql.len() as u64));
            group.bench_function("parse", |b| b.iter(|| Parser::parse_sql(parser, black_box(sql))));
            group.bench_function("read", |b| {
                b.iter(|| bench_support::read(black_box(sql), dialect))
            });
            group.bench_function("decide", |b| {
                b.iter_batched(
                    || parsed.clone(),
                    |tree| bench_support::decide(tree, dialect, &policy, limit),
                    BatchSize::SmallInput,
                )
            });
            group.bench_function("render", |b| b.iter(|| black_box(&limited).to_string()));
            group.bench_function("verify", |b| {
                b.iter(|| bench_support::render_verified(black_box(&limited), dialect))
            });
            group.bench_function("govern", |b| {
                b.iter(|| govern(black_box(sql), dialect, &policy, limit))
            });
            group.bench_function("redact", |b| b.iter(|| redact(black_box(&executed), dialect)));
            group.bench_function("govern_limited", |b| {
                b.iter(|| govern(black_box(&sent), dialect, &policy, limit))
            });
            group.bench_function("govern_and_redact", |b| {
                b.iter(|| govern_and_redact(black_box(&sent), dialect, &policy, limit))
            });
            group.finish();
        }
    }
}
