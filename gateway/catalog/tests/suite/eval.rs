//! The evaluation set in `eval/`: join inference and schema linking measured on five public-style schemas
//! with every declared key removed. A run prints the figures and every miss, and fails when a figure
//! drops below its floor.
//!
//! Run it with `cargo nextest run -p sluice-catalog -E 'test(eval)' --no-capture` to see the tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sluice_catalog::{Catalog, JoinPath, LinkOptions, LinkRole, PathOptions, TableId, outline};

/// The schemas, by the name the case files use.
const SCHEMAS: [(&str, &str); 5] = [
    ("tpch", include_str!("../../eval/tpch.outline")),
    ("tpcds", include_str!("../../eval/tpcds.outline")),
    ("chinook", include_str!("../../eval/chinook.outline")),
    ("northwind", include_str!("../../eval/northwind.outline")),
    ("dbt_shop", include_str!("../../eval/dbt_shop.outline")),
];
const JOINS: &str = include_str!("../../eval/joins.txt");
const QUESTIONS: &str = include_str!("../../eval/questions.txt");

/// How many questions' tables count for recall@k.
const TOP_K: usize = 3;

/// The figures a run must reach, overall (`all`) and per schema, as `figures(join top-1, recall@3, recall,
/// precision)`: the values measured when the set was written, rounded down to 0.01 (a run prints today's
/// values in this form). A floor may only rise. When a change improves a figure, raise its floor to the new
/// value, rounded down, in the same change; never lower a floor to let a change through — fix the
/// regression, or, if an expected answer in `eval/` is wrong, correct the data and say why in the change.
const FLOORS: [(&str, Figures); 6] = [
    ("all", figures(0.96, 0.92, 0.93, 0.93)),
    ("tpch", figures(1.00, 0.96, 0.96, 0.95)),
    ("tpcds", figures(1.00, 0.92, 0.92, 0.91)),
    ("chinook", figures(1.00, 0.91, 0.93, 0.93)),
    ("northwind", figures(0.93, 0.92, 0.92, 1.00)),
    ("dbt_shop", figures(0.86, 0.90, 0.90, 0.87)),
];

/// The measured figures of one schema or of all of them, each a mean over cases in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    /// Share of join pairs whose first path is exactly the expected one.
    join_top1: f64,
    /// Per question, the share of its expected tables among the first `TOP_K` returned, out of at most
    /// `TOP_K` (a question needing five tables scores 1.0 when the first three are all expected).
    recall_at_3: f64,
    /// Per question, the share of its expected tables anywhere in the result.
    recall: f64,
    /// Per question, the share of returned tables that are expected (0 when nothing is returned).
    precision: f64,
}

const fn figures(join_top1: f64, recall_at_3: f64, recall: f64, precision: f64) -> Figures {
    Figures {
        join_top1,
        recall_at_3,
        recall,
        precision,
    }
}

/// A name ending in `_` stands for one with spaces, which the outline cannot spell: `Order_Details_` is
/// `Order Details`.
fn spelled(name: &str) -> String {
    match name.strip_suffix('_') {
        Some(stem) => stem.replace('_', " "),
        None => name.to_string(),
    }
}

fn catalogs() -> BTreeMap<&'static str, Catalog> {
    SCHEMAS
        .iter()
        .map(|(name, text)| {
            let mut snapshot =
                outline::parse(text).unwrap_or_else(|e| panic!("eval/{name}.outline does not parse: {e}"));
            for table in &mut snapshot.tables {
                table.id.name = spelled(&table.id.name);
            }
            for table in &snapshot.tables {
                assert!(
                    table.primary_key.is_empty()
                        && table.foreign_keys.is_empty()
                        && table.unique_constraints.is_empty()
                        && table.indexes.is_empty(),
                    "eval/{name}.outline: {} declares a key; every key is removed in the evaluation set",
                    table.id
                );
            }
            (*name, Catalog::build(snapshot).0)
        })
        .collect()
}

/// The `|`-separated fields of the case lines of a file, with their line numbers; `#` lines and blank
/// lines are skipped.
fn case_lines(text: &str, fields: usize) -> Vec<(usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(n, line)| {
            let parts: Vec<&str> = line.split('|').map(str::trim).collect();
            assert_eq!(
                parts.len(),
                fields,
                "line {}: expected {fields} fields: {line}",
                n + 1
            );
            (n + 1, parts)
        })
        .collect()
}

fn resolve(catalog: &Catalog, schema: &str, line: usize, name: &str) -> TableId {
    catalog
        .resolve_table(name)
        .unwrap_or_else(|e| panic!("line {line}: {schema} has no table {name}: {e}"))
}

/// What the first path of a pair should be.
#[derive(Debug)]
enum Expected {
    /// One join, as sorted `(table.column, table.column)` pairs, each pair sorted.
    Join(Vec<(String, String)>),
    /// Several hops, as the table sequence.
    Path(Vec<String>),
}

fn expected_join(catalog: &Catalog, schema: &str, line: usize, text: &str) -> Expected {
    if !text.contains('=') {
        return Expected::Path(
            text.split('>')
                .map(|t| resolve(catalog, schema, line, t.trim()).name)
                .collect(),
        );
    }
    let column = |side: &str| {
        let (table, column) = side
            .trim()
            .rsplit_once('.')
            .unwrap_or_else(|| panic!("line {line}: `{side}` is not table.column"));
        let id = resolve(catalog, schema, line, table);
        let found = catalog.table(&id).and_then(|t| t.column(column)).is_some();
        assert!(found, "line {line}: {id} has no column {column}");
        format!("{}.{column}", id.name)
    };
    let mut pairs: Vec<(String, String)> = text
        .split(" AND ")
        .map(|condition| {
            let (a, b) = condition
                .split_once('=')
                .unwrap_or_else(|| panic!("line {line}: `{condition}` is not a = b"));
            sorted_pair(column(a), column(b))
        })
        .collect();
    pairs.sort();
    Expected::Join(pairs)
}

fn sorted_pair(a: String, b: String) -> (String, String) {
    if a <= b { (a, b) } else { (b, a) }
}

/// `a > b > c [a.x = b.y; b.z = c.w]`: what a miss prints.
fn describe(path: &JoinPath) -> String {
    let tables: Vec<&str> = path.tables.iter().map(|t| t.name.as_str()).collect();
    let conditions: Vec<String> = path
        .steps
        .iter()
        .map(|s| {
            s.left_columns
                .iter()
                .zip(&s.right_columns)
                .map(|(l, r)| format!("{}.{l} = {}.{r}", s.left.name, s.right.name))
                .collect::<Vec<_>>()
                .join(" AND ")
        })
        .collect();
    format!(
        "{} [{}] ({:.3})",
        tables.join(" > "),
        conditions.join("; "),
        path.score
    )
}

fn matches(expected: &Expected, path: &JoinPath) -> bool {
    match expected {
        Expected::Path(tables) => path.tables.iter().map(|t| &t.name).eq(tables.iter()),
        Expected::Join(pairs) => {
            let [step] = path.steps.as_slice() else {
                return false;
            };
            let mut got: Vec<(String, String)> = step
                .left_columns
                .iter()
                .zip(&step.right_columns)
                .map(|(l, r)| {
                    sorted_pair(
                        format!("{}.{l}", step.left.name),
                        format!("{}.{r}", step.right.name),
                    )
                })
                .collect();
            got.sort();
            got == *pairs
        }
    }
}

/// Running sums for one group of cases.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    pairs: usize,
    top1: usize,
    questions: usize,
    recall_at_3: f64,
    recall: f64,
    precision: f64,
}

impl Tally {
    fn figures(&self) -> Figures {
        let mean = |sum: f64, n: usize| if n == 0 { 0.0 } else { sum / n as f64 };
        Figures {
            join_top1: mean(self.top1 as f64, self.pairs),
            recall_at_3: mean(self.recall_at_3, self.questions),
            recall: mean(self.recall, self.questions),
            precision: mean(self.precision, self.questions),
        }
    }
}

/// One line of the printed table; a group without join pairs (a question tag) shows `-` for them.
fn row(out: &mut String, name: &str, t: &Tally) {
    let f = t.figures();
    let (pairs, top1) = if t.pairs == 0 {
        ("-".to_string(), "-".to_string())
    } else {
        (t.pairs.to_string(), format!("{:.3}", f.join_top1))
    };
    let _ = writeln!(
        out,
        "{name:<10} {pairs:>5} {top1:>6} {:>9} {:>9.3} {:>7.3} {:>9.3}",
        t.questions, f.recall_at_3, f.recall, f.precision
    );
}

/// A figure rounded down to 0.01, as floors are set.
fn floor2(x: f64) -> f64 {
    (x * 100.0 + 1e-9).floor() / 100.0
}

#[test]
fn eval_join_inference_and_schema_linking_hold_their_floors() {
    let catalogs = catalogs();
    let catalog_of = |schema: &str, line: usize| {
        catalogs
            .get(schema)
            .unwrap_or_else(|| panic!("line {line}: unknown schema {schema}"))
    };
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_tag: BTreeMap<String, Tally> = BTreeMap::new();
    let mut misses = String::new();

    let joins = case_lines(JOINS, 4);
    let _ = writeln!(misses, "join misses (expected vs first path):");
    for (line, fields) in &joins {
        let [schema, from, to, expected] = fields.as_slice() else {
            unreachable!("case_lines checks the field count")
        };
        let catalog = catalog_of(schema, *line);
        let expected = expected_join(catalog, schema, *line, expected);
        let (from_id, to_id) = (
            resolve(catalog, schema, *line, from),
            resolve(catalog, schema, *line, to),
        );
        let search = catalog
            .find_join_paths(&from_id, &to_id, &PathOptions::default())
            .unwrap_or_else(|e| panic!("line {line}: {e}"));
        let hit = search.paths.first().is_some_and(|p| matches(&expected, p));
        for key in [schema.to_string(), "all".to_string()] {
            let t = tallies.entry(key).or_default();
            t.pairs += 1;
            t.top1 += usize::from(hit);
        }
        if !hit {
            let got = match search.paths.first() {
                Some(p) => describe(p),
                None => "no path".to_string(),
            };
            let want = match &expected {
                Expected::Join(pairs) => pairs
                    .iter()
                    .map(|(a, b)| format!("{a} = {b}"))
                    .collect::<Vec<_>>()
                    .join(" AND "),
                Expected::Path(tables) => tables.join(" > "),
            };
            let _ = writeln!(
                misses,
                "  {schema} {from} -> {to}: expected {want}\n      got {got}"
            );
        }
    }

    let questions = case_lines(QUESTIONS, 4);
    let _ = writeln!(
        misses,
        "\nschema-link misses (expected; got best first, * expected, ~ bridge):"
    );
    for (line, fields) in &questions {
        let [schema, question, expected, tags] = fields.as_slice() else {
            unreachable!("case_lines checks the field count")
        };
        let catalog = catalog_of(schema, *line);
        let expected: Vec<TableId> = expected
            .split(',')
            .map(|t| resolve(catalog, schema, *line, t.trim()))
            .collect();
        let link = catalog.schema_link(question, &LinkOptions::default());
        let got: Vec<&TableId> = link.tables.iter().map(|t| &t.table).collect();
        let found = |tables: &[&TableId]| expected.iter().filter(|e| tables.contains(e)).count();
        let top = &got[..got.len().min(TOP_K)];
        let recall_at_3 = found(top) as f64 / expected.len().min(TOP_K) as f64;
        let recall = found(&got) as f64 / expected.len() as f64;
        let precision = if got.is_empty() {
            0.0
        } else {
            found(&got) as f64 / got.len() as f64
        };
        let add = |t: &mut Tally| {
            t.questions += 1;
            t.recall_at_3 += recall_at_3;
            t.recall += recall;
            t.precision += precision;
        };
        for key in [schema.to_string(), "all".to_string()] {
            add(tallies.entry(key).or_default());
        }
        for tag in tags.split(',') {
            add(by_tag.entry(tag.trim().to_string()).or_default());
        }
        if recall_at_3 < 1.0 || recall < 1.0 || precision < 1.0 {
            let listed: Vec<String> = link
                .tables
                .iter()
                .map(|t| {
                    let mark = if expected.contains(&t.table) { "*" } else { "" };
                    let bridge = if t.role == LinkRole::Bridge { "~" } else { "" };
                    format!("{mark}{bridge}{}", t.table.name)
                })
                .collect();
            let want: Vec<&str> = expected.iter().map(|t| t.name.as_str()).collect();
            let _ = writeln!(
                misses,
                "  {schema} \"{question}\" [{tags}] r@3 {recall_at_3:.2} p {precision:.2}\n      \
                 expected {}\n      got {}",
                want.join(", "),
                if listed.is_empty() {
                    "nothing".to_string()
                } else {
                    listed.join(", ")
                }
            );
        }
    }

    let mut report = String::new();
    let _ = writeln!(
        report,
        "{:<10} {:>5} {:>6} {:>9} {:>9} {:>7} {:>9}",
        "schema", "pairs", "top-1", "questions", "recall@3", "recall", "precision"
    );
    for (name, _) in FLOORS.iter().skip(1).chain(FLOORS.iter().take(1)) {
        row(
            &mut report,
            name,
            &tallies.get(*name).copied().unwrap_or_default(),
        );
    }
    let _ = writeln!(report, "\nquestions by tag:");
    for (tag, t) in &by_tag {
        row(&mut report, tag, t);
    }
    let _ = writeln!(report, "\ntoday's figures as floors (rounded down to 0.01):");
    for (name, _) in FLOORS {
        let f = tallies.get(name).copied().unwrap_or_default().figures();
        let _ = writeln!(
            report,
            "    (\"{name}\", figures({:.2}, {:.2}, {:.2}, {:.2})),",
            floor2(f.join_top1),
            floor2(f.recall_at_3),
            floor2(f.recall),
            floor2(f.precision)
        );
    }
    println!("{report}\n{misses}");

    // The minimum: at least 40 join pairs and 60 questions over at least four schemas.
    assert!(
        joins.len() >= 40 && questions.len() >= 60 && SCHEMAS.len() >= 4,
        "{} pairs, {} questions",
        joins.len(),
        questions.len()
    );
    let mut below = Vec::new();
    for (name, floor) in FLOORS {
        let got = tallies.get(name).copied().unwrap_or_default().figures();
        let checks = [
            ("join top-1", got.join_top1, floor.join_top1),
            ("recall@3", got.recall_at_3, floor.recall_at_3),
            ("recall", got.recall, floor.recall),
            ("precision", got.precision, floor.precision),
        ];
        for (what, value, floor) in checks {
            // A small tolerance, so that summation order cannot fail a figure equal to its floor.
            if value + 1e-9 < floor {
                below.push(format!("{name} {what} {value:.3} < floor {floor:.2}"));
            }
        }
    }
    assert!(
        below.is_empty(),
        "figures below their floors:\n{}",
        below.join("\n")
    );
}
