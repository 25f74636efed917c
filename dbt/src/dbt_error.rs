//! Reads dbt's console output (`dbt run`, `dbt build`, `dbt parse`…) and pulls out each error: the node,
//! its file, the line, the engine's message, what kind of mistake it is and what to do about it.
//!
//! dbt's output is text meant for people, with colours and timestamps; the parser strips both, then looks
//! for dbt's fixed headers (`Runtime Error in model x (path)`, `Failure in test t (path)`, a bare
//! `Compilation Error` after `Encountered an error:`) and takes the indented lines under each as its body.

use serde::Serialize;

/// One error found in dbt's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbtErrorReport {
    /// `Runtime Error`, `Compilation Error`, `Database Error`, `Parsing Error`, `Test failure`…
    pub error_type: String,
    /// `model`, `test`, `seed`, `snapshot`… when dbt named one.
    pub resource_type: Option<String>,
    /// The node's name.
    pub node: Option<String>,
    /// The node's file, relative to the project.
    pub path: Option<String>,
    /// The line in the compiled SQL the engine pointed at.
    pub line: Option<u32>,
    /// The engine's or dbt's message, without dbt's decoration.
    pub message: String,
    /// A stable name for the kind of mistake: `missing_column`, `missing_relation`, `unresolved_ref`,
    /// `unresolved_source`, `syntax`, `ambiguous_column`, `division_by_zero`, `type_conversion`,
    /// `duplicate_key`, `test_failed`, `yaml`, `other`.
    pub category: &'static str,
    /// What to do next.
    pub suggestion: String,
}

const RESOURCE_TYPES: &[&str] = &[
    "model",
    "test",
    "seed",
    "snapshot",
    "source",
    "analysis",
    "operation",
    "unit_test",
    "macro",
    "exposure",
];

/// Removes ANSI colour sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Removes dbt's `HH:MM:SS  ` line prefix, keeping the indentation that follows it.
fn strip_timestamp(line: &str) -> &str {
    let b = line.as_bytes();
    let is_time = b.len() >= 8
        && b[0].is_ascii_digit()
        && b[1].is_ascii_digit()
        && b[2] == b':'
        && b[3].is_ascii_digit()
        && b[4].is_ascii_digit()
        && b[5] == b':'
        && b[6].is_ascii_digit()
        && b[7].is_ascii_digit();
    if !is_time {
        return line;
    }
    let rest = &line[8..];
    // dbt separates the time from the message with two spaces; indentation beyond that is the message's.
    rest.strip_prefix("  ").unwrap_or(rest.trim_start())
}

/// A header line: `<Kind> Error in <type> <name> (<path>)`, `Failure in test <name> (<path>)`, or a bare
/// `<Kind> Error`.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    error_type: String,
    resource_type: Option<String>,
    node: Option<String>,
    path: Option<String>,
}

fn parse_header(line: &str) -> Option<Header> {
    let t = line.trim();
    let (kind, rest) = if let Some(rest) = t.strip_prefix("Failure in ") {
        ("Failure".to_owned(), Some(rest))
    } else if let Some(pos) = t.find(" Error in ") {
        let kind = &t[..pos + " Error".len()];
        if !is_error_kind(kind) {
            return None;
        }
        (kind.to_owned(), Some(&t[pos + " Error in ".len()..]))
    } else if is_error_kind(t) {
        (t.to_owned(), None)
    } else {
        return None;
    };
    let Some(rest) = rest else {
        return Some(Header {
            error_type: kind,
            resource_type: None,
            node: None,
            path: None,
        });
    };
    let (resource, rest) = rest.split_once(' ')?;
    if !RESOURCE_TYPES.contains(&resource) {
        return None;
    }
    let (node, path) = match rest.split_once(" (") {
        Some((node, path)) => (node.trim(), path.strip_suffix(')').map(str::to_owned)),
        None => (rest.trim(), None),
    };
    let error_type = if kind == "Failure" && resource == "test" {
        "Test failure".to_owned()
    } else {
        kind
    };
    Some(Header {
        error_type,
        resource_type: Some(resource.to_owned()),
        node: Some(node.to_owned()),
        path,
    })
}

/// `Compilation Error`, `Database Error`, `Runtime Error`, `Parsing Error`, `Dependency Error`…: one or
/// two capitalised words and `Error`.
fn is_error_kind(s: &str) -> bool {
    let Some(prefix) = s.strip_suffix(" Error") else {
        return false;
    };
    let words: Vec<&str> = prefix.split(' ').collect();
    !words.is_empty()
        && words.len() <= 2
        && words.iter().all(|w| {
            w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && w.chars().all(|c| c.is_ascii_alphabetic())
        })
}

/// Lines that end an error's body: dbt's own status lines.
fn ends_body(line: &str) -> bool {
    let t = line.trim();
    t.is_empty()
        || t.starts_with("compiled code at ")
        || t.starts_with("Done. ")
        || t.starts_with("Completed with ")
        || t.starts_with("Finished running ")
        || t.starts_with("See test failures:")
}

/// Every error in dbt's output, in order. Empty when the output shows none.
pub fn parse_dbt_errors(output: &str) -> Vec<DbtErrorReport> {
    let clean = strip_ansi(output);
    let lines: Vec<&str> = clean.lines().map(strip_timestamp).collect();
    let mut reports = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(header) = parse_header(lines[i]) else {
            i += 1;
            continue;
        };
        // `Failure in model x` is followed by the real `Runtime Error in model x`; keep only the latter.
        if header.error_type == "Failure"
            && let Some(next) = lines.get(i + 1).and_then(|l| parse_header(l))
            && next.node == header.node
        {
            i += 1;
            continue;
        }
        let mut body = Vec::new();
        let mut j = i + 1;
        while j < lines.len() && !ends_body(lines[j]) && parse_header(lines[j]).is_none() {
            body.push(lines[j].trim_end());
            j += 1;
        }
        reports.push(report(header, &body));
        i = j;
    }
    if reports.is_empty() {
        // Output without dbt's headers (a log excerpt, an engine message pasted alone): still worth reading
        // when a line says `…Error: …` (status lines like `ERROR=0` do not count).
        let lines: Vec<&str> = lines.iter().copied().filter(|l| !l.trim().is_empty()).collect();
        if lines.iter().any(|l| l.to_ascii_lowercase().contains("error:")) {
            reports.push(report(
                Header {
                    error_type: "Error".to_owned(),
                    resource_type: None,
                    node: None,
                    path: None,
                },
                &lines,
            ));
        }
    }
    reports
}

fn report(header: Header, body: &[&str]) -> DbtErrorReport {
    let mut line = None;
    let mut message_lines = Vec::new();
    let mut skip_caret = false;
    for l in body {
        let t = l.trim();
        if let Some(n) = line_number(t) {
            line = line.or(Some(n));
            // The `LINE n: <sql>` quote and its caret line repeat the SQL, not the problem.
            if t.starts_with("LINE ") {
                skip_caret = true;
                continue;
            }
        }
        if skip_caret && t.chars().all(|c| c == '^' || c == ' ') {
            skip_caret = false;
            continue;
        }
        message_lines.push(t);
    }
    let message = message_lines.join("\n");
    let mut node = header.node;
    let mut path = header.path;
    let mut resource_type = header.resource_type;
    // Parse-time errors name the node inside the message: `Model 'model.pkg.name' (path) depends on …`.
    if node.is_none()
        && let Some((uid, p)) = quoted_node(&message)
    {
        let mut parts = uid.splitn(3, '.');
        resource_type = parts.next().map(str::to_owned);
        node = parts.nth(1).map(str::to_owned);
        path = p;
    }
    let (category, suggestion) = classify(&header.error_type, &message, node.as_deref());
    DbtErrorReport {
        error_type: header.error_type,
        resource_type,
        node,
        path,
        line,
        message,
        category,
        suggestion,
    }
}

/// `LINE 11: …` (PostgreSQL, DuckDB), `at line 3` / `line 3` (MySQL, Jinja), `at [3:5]` (BigQuery).
fn line_number(t: &str) -> Option<u32> {
    if let Some(rest) = t.strip_prefix("LINE ") {
        return rest.split(':').next()?.trim().parse().ok();
    }
    let lower = t.to_ascii_lowercase();
    if let Some(pos) = lower.find("at [") {
        let rest = &t[pos + 4..];
        return rest.split(':').next()?.parse().ok();
    }
    if let Some(pos) = lower.find("line ") {
        let digits: String = lower[pos + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        return digits.parse().ok();
    }
    None
}

/// `'model.pkg.name' (path)` inside a message.
fn quoted_node(message: &str) -> Option<(String, Option<String>)> {
    for prefix in ["Model '", "Test '", "Snapshot '", "Seed '", "Analysis '"] {
        if let Some(pos) = message.find(prefix) {
            let rest = &message[pos + prefix.len()..];
            let (uid, after) = rest.split_once('\'')?;
            let path = after
                .trim_start()
                .strip_prefix('(')
                .and_then(|p| p.split_once(')'))
                .map(|(p, _)| p.to_owned());
            return Some((uid.to_owned(), path));
        }
    }
    None
}

/// The first quoted word after `marker` (`"x"`, `'x'` or `` `x` ``), or the bare word.
fn name_after(message: &str, marker: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let pos = lower.find(marker)?;
    let rest = message[pos + marker.len()..].trim_start();
    let first = rest.chars().next()?;
    if matches!(first, '"' | '\'' | '`') {
        let inner = &rest[1..];
        inner.find(first).map(|end| inner[..end].to_owned())
    } else {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.'))
            .collect();
        (!word.is_empty()).then_some(word)
    }
}

fn classify(error_type: &str, message: &str, node: Option<&str>) -> (&'static str, String) {
    let lower = message.to_ascii_lowercase();
    let model = node.unwrap_or("<model>");
    if let Some(target) = name_after(message, "depends on a node named ") {
        return (
            "unresolved_ref",
            format!(
                "ref('{target}') names no model, seed or snapshot: fix the spelling or create the model, then \
                 run dbt_project_validate to list every unresolved ref"
            ),
        );
    }
    if lower.contains("depends on a source named") {
        let target = name_after(message, "depends on a source named ").unwrap_or_default();
        return (
            "unresolved_source",
            format!(
                "source {target} is not declared: add it under `sources:` in a YAML file, or fix the source() call"
            ),
        );
    }
    let column = name_after(message, "referenced column ")
        .or_else(|| name_after(message, "unknown column "))
        .or_else(|| name_after(message, "no such column: "))
        .or_else(|| {
            lower
                .contains("does not exist")
                .then(|| name_after(message, "column "))
                .flatten()
        });
    if let Some(column) = column {
        let candidates = message
            .lines()
            .find_map(|l| l.trim().strip_prefix("Candidate bindings:"))
            .map(|c| format!(" Columns that do exist: {}.", c.trim()))
            .unwrap_or_default();
        return (
            "missing_column",
            format!(
                "Column {column} does not exist where {model} selects it.{candidates} Check the upstream model's \
                 columns with check_model_schema, and the spelling in the SELECT."
            ),
        );
    }
    if lower.contains("table with name")
        || (lower.contains("relation") && lower.contains("does not exist"))
        || (lower.contains("table") && lower.contains("doesn't exist"))
        || lower.contains("no such table")
    {
        let table = name_after(message, "table with name ")
            .or_else(|| name_after(message, "relation "))
            .or_else(|| name_after(message, "table "))
            .unwrap_or_default();
        return (
            "missing_relation",
            format!(
                "Relation {table} has not been built (or is misspelt): build {model}'s parents first with \
                 `dbt build --select +{model}`, and use ref()/source() rather than hard-coded names."
            ),
        );
    }
    if lower.contains("syntax error") || lower.contains("parser error") {
        return (
            "syntax",
            "Fix the SQL syntax at the line shown (look in target/compiled/ for the SQL after Jinja)."
                .to_owned(),
        );
    }
    if lower.contains("ambiguous") {
        return (
            "ambiguous_column",
            "Qualify the column with its table alias.".to_owned(),
        );
    }
    if lower.contains("division by zero") || lower.contains("divide by zero") {
        return (
            "division_by_zero",
            "Guard the denominator with NULLIF(denominator, 0).".to_owned(),
        );
    }
    if lower.contains("conversion error")
        || lower.contains("invalid input syntax for type")
        || lower.contains("could not convert")
    {
        return (
            "type_conversion",
            "A value does not fit the type it is cast to: use TRY_CAST or clean the value upstream."
                .to_owned(),
        );
    }
    if lower.contains("duplicate key") || lower.contains("unique constraint") || lower.contains("primary key")
    {
        return (
            "duplicate_key",
            "Rows repeat the key: find the duplicates with analyze_grain and deduplicate upstream (row_number() \
             over a total order)."
                .to_owned(),
        );
    }
    if error_type == "Test failure"
        || lower.contains("configured to fail")
        || lower.contains("configured to warn")
    {
        return (
            "test_failed",
            format!(
                "The test found offending rows: look at them with `dbt test --select {model} --store-failures`, \
                 then fix the model or the data, not the test."
            ),
        );
    }
    if error_type == "Parsing Error" || lower.contains("yaml") {
        return (
            "yaml",
            "A YAML file does not parse or does not fit dbt's schema: check the indentation and keys at the path \
             shown."
                .to_owned(),
        );
    }
    (
        "other",
        "Read the message above; dbt_project_validate may point at the cause.".to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// Real output of dbt-core 1.10 with dbt-duckdb (colours on), from running the defects fixture.
    const RUN_COLOURED: &str = "\u{1b}[0m23:24:08  \u{1b}[31mCompleted with 1 error, 0 partial successes, and 0 warnings:\u{1b}[0m\n\
\u{1b}[0m23:24:08  \n\
\u{1b}[0m23:24:08  \u{1b}[31mFailure in model broken_model (models/marts/broken_model.sql)\u{1b}[0m\n\
\u{1b}[0m23:24:08    Runtime Error in model broken_model (models/marts/broken_model.sql)\n\
  Binder Error: Referenced column \"shipping_address\" not found in FROM clause!\n\
  Candidate bindings: \"customer_id\"\n\
\u{1b}[0m23:24:08  \n\
\u{1b}[0m23:24:08    compiled code at target/compiled/defects/models/marts/broken_model.sql\n\
\u{1b}[0m23:24:08  \n\
\u{1b}[0m23:24:08  Done. PASS=0 WARN=0 ERROR=1 SKIP=0 NO-OP=0 TOTAL=1\n";

    /// Real `dbt parse` output for a ref to a model that does not exist.
    const PARSE: &str = "23:24:16  Registered adapter: duckdb=1.10.1\n\
23:24:17  Encountered an error:\n\
Compilation Error\n\
  Model 'model.defects.bad_ref' (models/marts/bad_ref.sql) depends on a node named 'stg_nope' which was not found\n";

    const POSTGRES: &str = "12:00:01  Database Error in model orders (models/marts/orders.sql)\n\
  column \"amount_usd\" does not exist\n\
  LINE 7:     sum(amount_usd) as total\n\
                  ^\n\
12:00:01  compiled code at target/run/shop/models/marts/orders.sql\n";

    const TEST_FAIL: &str = "12:00:02  Failure in test unique_stg_payments_payment_id (models/staging/_staging.yml)\n\
12:00:02    Got 1 result, configured to fail if != 0\n\
12:00:02  \n\
12:00:02    compiled code at target/compiled/defects/models/staging/_staging.yml/unique.sql\n";

    const MISSING_TABLE: &str = "Runtime Error in model customers (models/marts/customers.sql)\n\
  Catalog Error: Table with name stg_customer does not exist!\n\
  Did you mean \"stg_customers\"?\n\
  LINE 3: from \"jaffle\".\"main\".\"stg_customer\"\n";

    /// error type, node, path, line, category, first line of the message.
    type Expected<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<u32>,
        &'a str,
        &'a str,
    );

    fn check(output: &str, expected: Vec<Expected<'_>>) {
        let got: Vec<_> = parse_dbt_errors(output)
            .into_iter()
            .map(|r| {
                (
                    r.error_type,
                    r.node,
                    r.path,
                    r.line,
                    r.category,
                    r.message.lines().next().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let want: Vec<_> = expected
            .into_iter()
            .map(|(t, n, p, l, c, m)| {
                (
                    t.to_owned(),
                    n.map(str::to_owned),
                    p.map(str::to_owned),
                    l,
                    c,
                    m.to_owned(),
                )
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn table() {
        check(
            RUN_COLOURED,
            vec![(
                "Runtime Error",
                Some("broken_model"),
                Some("models/marts/broken_model.sql"),
                None,
                "missing_column",
                "Binder Error: Referenced column \"shipping_address\" not found in FROM clause!",
            )],
        );
        check(
            PARSE,
            vec![(
                "Compilation Error",
                Some("bad_ref"),
                Some("models/marts/bad_ref.sql"),
                None,
                "unresolved_ref",
                "Model 'model.defects.bad_ref' (models/marts/bad_ref.sql) depends on a node named 'stg_nope' which was not found",
            )],
        );
        check(
            POSTGRES,
            vec![(
                "Database Error",
                Some("orders"),
                Some("models/marts/orders.sql"),
                Some(7),
                "missing_column",
                "column \"amount_usd\" does not exist",
            )],
        );
        check(
            TEST_FAIL,
            vec![(
                "Test failure",
                Some("unique_stg_payments_payment_id"),
                Some("models/staging/_staging.yml"),
                None,
                "test_failed",
                "Got 1 result, configured to fail if != 0",
            )],
        );
        check(
            MISSING_TABLE,
            vec![(
                "Runtime Error",
                Some("customers"),
                Some("models/marts/customers.sql"),
                Some(3),
                "missing_relation",
                "Catalog Error: Table with name stg_customer does not exist!",
            )],
        );
        check("23:00:00  Done. PASS=3 WARN=0 ERROR=0 SKIP=0 TOTAL=3\n", vec![]);
        check(
            "Conversion Error: Could not convert string 'abc' to INT32",
            vec![(
                "Error",
                None,
                None,
                None,
                "type_conversion",
                "Conversion Error: Could not convert string 'abc' to INT32",
            )],
        );
    }

    #[test]
    fn several_errors_in_one_output() {
        let both = format!("{POSTGRES}\n{TEST_FAIL}");
        let nodes: Vec<_> = parse_dbt_errors(&both).into_iter().map(|r| r.node).collect();
        assert_eq!(
            nodes,
            vec![
                Some("orders".to_owned()),
                Some("unique_stg_payments_payment_id".to_owned())
            ]
        );
    }

    #[test]
    fn suggestions_name_what_to_fix() {
        let r = &parse_dbt_errors(RUN_COLOURED)[0];
        assert!(r.suggestion.contains("shipping_address"), "{}", r.suggestion);
        assert!(r.suggestion.contains("\"customer_id\""), "{}", r.suggestion);
        let r = &parse_dbt_errors(PARSE)[0];
        assert!(r.suggestion.contains("ref('stg_nope')"), "{}", r.suggestion);
        let r = &parse_dbt_errors(MISSING_TABLE)[0];
        assert!(
            r.suggestion.contains("dbt build --select +customers"),
            "{}",
            r.suggestion
        );
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("Compilation Error").map(|h| h.error_type),
            Some("Compilation Error".into())
        );
        assert_eq!(parse_header("an Error in my life"), None);
        assert_eq!(parse_header("Runtime Error in nonsense x (y)"), None);
        assert_eq!(strip_timestamp("12:00:01    body"), "  body");
        assert_eq!(strip_ansi("\u{1b}[31mred\u{1b}[0m"), "red");
    }
}
