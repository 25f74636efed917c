//! Lexical checks on model SQL: non-determinism hazards, open-ended date spines, and stub detection.
//!
//! These run on the SQL with its Jinja blanked out (see [`crate::jinja`]), through a small tokenizer that
//! knows strings, quoted identifiers and comments. They are heuristics by nature, so each one errs towards
//! silence: an expression it cannot read is not reported.

use std::collections::HashSet;
use std::ops::Range;

use crate::finding::Rule;
use crate::jinja::{JinjaFacts, LineIndex};

/// One hazard found in a model's SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlHazard {
    /// `NondeterministicFunction`, `WindowWithoutTotalOrder`, `LimitWithoutOrderBy` or `DateSpineOpenEnded`.
    pub rule: Rule,
    /// 1-based line in the file.
    pub line: u32,
    /// What was found.
    pub message: String,
}

/// SQL functions and keywords that read the clock or a random source.
const CLOCK_WORDS: &[&str] = &[
    "current_date",
    "current_timestamp",
    "current_time",
    "localtimestamp",
    "localtime",
    "sysdate",
    "systimestamp",
];
const CLOCK_CALLS: &[&str] = &[
    "now",
    "getdate",
    "getutcdate",
    "sysdatetime",
    "today",
    "current_datetime",
    "random",
    "rand",
    "uuid",
    "gen_random_uuid",
    "newid",
];
/// Table functions that build a date spine in one call.
const SPINE_CALLS: &[&str] = &[
    "generate_series",
    "range",
    "sequence",
    "generate_date_array",
    "generate_timestamp_array",
];
/// Window functions whose result depends on the order of tied rows (rank and dense_rank give ties the
/// same value, so they are safe).
const ORDER_SENSITIVE: &[&str] = &[
    "row_number",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
];

/// Finds the hazards in one model. `unique_columns` are column names that some test in the project proves
/// unique; an ORDER BY ending in one of them (or in an `*_id`/`*_key` column that is not a partition key) is
/// taken as a total order.
pub fn hazards(raw: &str, facts: &JinjaFacts, unique_columns: &HashSet<String>) -> Vec<SqlHazard> {
    let lines = LineIndex::new(raw);
    let tokens = tokenize(&facts.masked_sql);
    let mut out = Vec::new();

    // Clock reads inside a spine call are reported once, as an open-ended spine.
    let mut in_spine: Vec<Range<usize>> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if let Some(name) = t.word()
            && SPINE_CALLS.iter().any(|s| name.eq_ignore_ascii_case(s))
            && is_punct(&tokens, i + 1, '(')
            && let Some(close) = matching(&tokens, i + 1)
            && tokens[i + 2..close]
                .iter()
                .enumerate()
                .any(|(k, _)| clock_read(&tokens, i + 2 + k).is_some())
        {
            in_spine.push(i..close);
            out.push(SqlHazard {
                rule: Rule::DateSpineOpenEnded,
                line: lines.line(t.at),
                message: format!(
                    "date spine `{}(...)` ends at the current date: its row count grows every day and \
                     drifts past the data; end it at the data's max date instead",
                    name.to_ascii_lowercase()
                ),
            });
        }
    }
    for hazard in &facts.hazards {
        if hazard.name.rsplit('.').next() == Some("date_spine") {
            if hazard.open_ended {
                out.push(SqlHazard {
                    rule: Rule::DateSpineOpenEnded,
                    line: hazard.line,
                    message: format!(
                        "date spine `{}` ends at the current date: its row count grows every day and \
                         drifts past the data; end it at the data's max date instead",
                        hazard.name
                    ),
                });
            }
        } else {
            out.push(SqlHazard {
                rule: Rule::NondeterministicFunction,
                line: hazard.line,
                message: format!(
                    "`{}` makes the model's output depend on when it runs",
                    hazard.name
                ),
            });
        }
    }

    for i in 0..tokens.len() {
        if let Some(name) = clock_read(&tokens, i)
            && !in_spine.iter().any(|r| r.contains(&i))
        {
            out.push(SqlHazard {
                rule: Rule::NondeterministicFunction,
                line: lines.line(tokens[i].at),
                message: format!("`{name}` makes the model's output depend on when it runs"),
            });
        }
    }

    windows(&tokens, &lines, unique_columns, &mut out);
    limits(&tokens, &lines, &facts.target_conditional, &mut out);
    out.sort_by(|a, b| a.line.cmp(&b.line).then(a.rule.cmp(&b.rule)));
    out
}

/// Why a model's SQL looks unfinished, if it does.
pub fn stub_reason(raw: &str, facts: &JinjaFacts) -> Option<&'static str> {
    let lower = raw.to_ascii_lowercase();
    if lower.contains("todo: fill in") || raw.contains("REPLACE_THIS") || lower.contains("<todo") {
        return Some("it contains a placeholder marker (TODO: fill in / REPLACE_THIS)");
    }
    let tokens = tokenize(&facts.masked_sql);
    if tokens.is_empty() {
        return Some("it has no SQL besides config and comments");
    }
    let has_jinja_sql = tokens
        .iter()
        .any(|t| t.word().is_some_and(|w| w.starts_with("__")));
    let has_query = tokens.iter().any(|t| {
        t.word().is_some_and(|w| {
            ["select", "with", "values", "from"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
        })
    });
    if !has_query && !has_jinja_sql {
        return Some("it has no SELECT");
    }
    let opens = tokens.iter().filter(|t| t.kind == Kind::Punct('(')).count();
    let closes = tokens.iter().filter(|t| t.kind == Kind::Punct(')')).count();
    if opens != closes {
        return Some("its parentheses are unbalanced");
    }
    let dangling = [
        "select", "from", "where", "and", "or", "join", "on", "by", "as", "with",
    ];
    match tokens.last() {
        Some(t) if matches!(t.kind, Kind::Punct(',' | '(')) => Some("it ends mid-statement"),
        Some(t)
            if t.word()
                .is_some_and(|w| dangling.iter().any(|k| w.eq_ignore_ascii_case(k))) =>
        {
            Some("it ends mid-statement")
        }
        _ => None,
    }
}

/// The clock or random function read at token `i`, if any.
fn clock_read<'a>(tokens: &[Token<'a>], i: usize) -> Option<&'a str> {
    let name = tokens.get(i)?.word()?;
    // `t.current_date` is a column and `as current_date` an alias, not the function.
    if i > 0
        && (is_punct(tokens, i - 1, '.')
            || tokens[i - 1].word().is_some_and(|w| w.eq_ignore_ascii_case("as")))
    {
        return None;
    }
    if is_punct(tokens, i + 1, '.') {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    if CLOCK_WORDS.contains(&lower.as_str()) {
        return Some(name);
    }
    if CLOCK_CALLS.contains(&lower.as_str()) && is_punct(tokens, i + 1, '(') {
        return Some(name);
    }
    None
}

/// Order-sensitive window functions whose ORDER BY is missing or can tie.
fn windows(
    tokens: &[Token<'_>],
    lines: &LineIndex,
    unique_columns: &HashSet<String>,
    out: &mut Vec<SqlHazard>,
) {
    for i in 0..tokens.len() {
        if !tokens[i].word().is_some_and(|w| w.eq_ignore_ascii_case("over")) || !is_punct(tokens, i + 1, '(')
        {
            continue;
        }
        let Some(function) = window_function(tokens, i) else {
            continue;
        };
        let Some(close) = matching(tokens, i + 1) else {
            continue;
        };
        let spec = window_spec(&tokens[i + 2..close]);
        let lower = function.to_ascii_lowercase();
        let rows_frame = spec.frame.as_deref() == Some("rows");
        if !ORDER_SENSITIVE.contains(&lower.as_str()) && !rows_frame {
            continue;
        }
        let line = lines.line(tokens[i].at);
        if spec.order.is_empty() {
            out.push(SqlHazard {
                rule: Rule::WindowWithoutTotalOrder,
                line,
                message: format!(
                    "`{lower}() over (...)` has no ORDER BY, so tied rows come out in any order"
                ),
            });
            continue;
        }
        let total = spec.order.iter().flatten().any(|column| {
            let c = column.to_ascii_lowercase();
            let key_like = c == "id"
                || ["_id", "_key", "_pk", "_sk", "uuid"]
                    .iter()
                    .any(|s| c.ends_with(s));
            (key_like || unique_columns.contains(&c))
                && !spec
                    .partition
                    .iter()
                    .flatten()
                    .any(|p| p.eq_ignore_ascii_case(&c))
        });
        if !total {
            let order: Vec<&str> = spec.order_text.iter().map(String::as_str).collect();
            out.push(SqlHazard {
                rule: Rule::WindowWithoutTotalOrder,
                line,
                message: format!(
                    "`{lower}() over (... order by {})` can tie: add a unique column as the last sort key",
                    order.join(", ")
                ),
            });
        }
    }
}

/// The function a window applies to, walking back from `over` across `filter (...)` and `ignore nulls`.
fn window_function<'a>(tokens: &[Token<'a>], over: usize) -> Option<&'a str> {
    let mut k = over.checked_sub(1)?;
    loop {
        if tokens[k].word().is_some_and(|w| w.eq_ignore_ascii_case("nulls")) {
            k = k.checked_sub(2)?;
            continue;
        }
        if tokens[k].kind != Kind::Punct(')') {
            return None;
        }
        let open = matching_back(tokens, k)?;
        let name_at = open.checked_sub(1)?;
        let name = tokens[name_at].word()?;
        if name.eq_ignore_ascii_case("filter") {
            k = name_at.checked_sub(1)?;
            continue;
        }
        // `string_agg(x) within group (order by y) over (...)`: step back over `within group (...)`.
        if name.eq_ignore_ascii_case("group")
            && name_at > 0
            && tokens[name_at - 1]
                .word()
                .is_some_and(|w| w.eq_ignore_ascii_case("within"))
        {
            k = name_at.checked_sub(2)?;
            continue;
        }
        return Some(name);
    }
}

#[derive(Debug, Default)]
struct WindowSpec {
    /// The last identifier of each partition term, `None` for expressions.
    partition: Vec<Option<String>>,
    /// The last identifier of each order term, `None` for expressions.
    order: Vec<Option<String>>,
    /// Each order term as written, for messages.
    order_text: Vec<String>,
    /// `rows`, `range` or `groups`.
    frame: Option<String>,
}

fn window_spec(spec: &[Token<'_>]) -> WindowSpec {
    #[derive(PartialEq)]
    enum Part {
        None,
        Partition,
        Order,
    }
    let mut out = WindowSpec::default();
    let mut part = Part::None;
    let mut term: Vec<&Token<'_>> = Vec::new();
    let mut depth = 0usize;
    let flush = |part: &Part, term: &mut Vec<&Token<'_>>, out: &mut WindowSpec| {
        if term.is_empty() {
            return;
        }
        let column = term_column(term);
        match part {
            Part::Partition => out.partition.push(column),
            Part::Order => {
                out.order_text.push(
                    term.iter()
                        .map(|t| t.text)
                        .collect::<Vec<_>>()
                        .join(" ")
                        .replace(" . ", "."),
                );
                out.order.push(column);
            }
            Part::None => {}
        }
        term.clear();
    };
    let mut k = 0;
    while k < spec.len() {
        let t = &spec[k];
        let word = t.word().map(str::to_ascii_lowercase);
        match (&t.kind, word.as_deref()) {
            (Kind::Punct('('), _) => {
                depth += 1;
                term.push(t);
            }
            (Kind::Punct(')'), _) => {
                depth = depth.saturating_sub(1);
                term.push(t);
            }
            (Kind::Punct(','), _) if depth == 0 => flush(&part, &mut term, &mut out),
            (_, Some("partition"))
                if depth == 0
                    && spec
                        .get(k + 1)
                        .and_then(Token::word)
                        .is_some_and(|w| w.eq_ignore_ascii_case("by")) =>
            {
                flush(&part, &mut term, &mut out);
                part = Part::Partition;
                k += 1;
            }
            (_, Some("order"))
                if depth == 0
                    && spec
                        .get(k + 1)
                        .and_then(Token::word)
                        .is_some_and(|w| w.eq_ignore_ascii_case("by")) =>
            {
                flush(&part, &mut term, &mut out);
                part = Part::Order;
                k += 1;
            }
            (_, Some(frame @ ("rows" | "range" | "groups"))) if depth == 0 => {
                flush(&part, &mut term, &mut out);
                out.frame = Some(frame.to_owned());
                part = Part::None;
            }
            _ => term.push(t),
        }
        k += 1;
    }
    flush(&part, &mut term, &mut out);
    out
}

/// The column a sort or partition term names: `t.col`, `col desc`, `"col" nulls last`; `None` for anything
/// more complex.
fn term_column(term: &[&Token<'_>]) -> Option<String> {
    let mut end = term.len();
    while end > 0
        && term[end - 1].word().is_some_and(|w| {
            ["asc", "desc", "nulls", "first", "last"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
        })
    {
        end -= 1;
    }
    let core = &term[..end];
    let simple = !core.is_empty()
        && core.iter().enumerate().all(|(i, t)| {
            if i % 2 == 0 {
                t.ident().is_some()
            } else {
                t.kind == Kind::Punct('.')
            }
        })
        && core.len() % 2 == 1;
    if simple {
        core.last().and_then(|t| t.ident()).map(str::to_owned)
    } else {
        None
    }
}

/// LIMIT with no ORDER BY in the same query block.
fn limits(tokens: &[Token<'_>], lines: &LineIndex, skip: &[Range<usize>], out: &mut Vec<SqlHazard>) {
    // One flag per parenthesis depth: has this query block sorted?
    let mut ordered = vec![false];
    for (i, t) in tokens.iter().enumerate() {
        match t.kind {
            Kind::Punct('(') => ordered.push(false),
            // The outermost block is never popped, so unbalanced SQL cannot empty the stack.
            Kind::Punct(')') if ordered.len() > 1 => {
                ordered.pop();
            }
            _ => {}
        }
        let Some(word) = t.word() else { continue };
        let top = ordered.len() - 1;
        if word.eq_ignore_ascii_case("select") {
            ordered[top] = false;
        } else if word.eq_ignore_ascii_case("order")
            && tokens
                .get(i + 1)
                .and_then(Token::word)
                .is_some_and(|w| w.eq_ignore_ascii_case("by"))
        {
            ordered[top] = true;
        } else if word.eq_ignore_ascii_case("limit") && !ordered[top] {
            // `limit 0` returns nothing either way; environment-only limits (dev sampling) are not the model.
            let zero = tokens.get(i + 1).is_some_and(|n| n.text == "0");
            if zero || skip.iter().any(|r| r.contains(&t.at)) {
                continue;
            }
            out.push(SqlHazard {
                rule: Rule::LimitWithoutOrderBy,
                line: lines.line(t.at),
                message: "LIMIT without ORDER BY: which rows are kept is up to the engine".to_owned(),
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    QuotedIdent,
    Str,
    Number,
    Punct(char),
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    at: usize,
}

impl<'a> Token<'a> {
    fn word(&self) -> Option<&'a str> {
        (self.kind == Kind::Word).then_some(self.text)
    }

    /// A bare or quoted identifier, without quotes.
    fn ident(&self) -> Option<&'a str> {
        match self.kind {
            Kind::Word => Some(self.text),
            Kind::QuotedIdent => self.text.get(1..self.text.len().saturating_sub(1)),
            _ => None,
        }
    }
}

fn is_punct(tokens: &[Token<'_>], i: usize, c: char) -> bool {
    tokens.get(i).is_some_and(|t| t.kind == Kind::Punct(c))
}

fn matching(tokens: &[Token<'_>], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.kind {
            Kind::Punct('(') => depth += 1,
            Kind::Punct(')') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

fn matching_back(tokens: &[Token<'_>], close: usize) -> Option<usize> {
    let mut depth = 0usize;
    for k in (0..=close).rev() {
        match tokens[k].kind {
            Kind::Punct(')') => depth += 1,
            Kind::Punct('(') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits SQL into words, quoted identifiers, strings, numbers and punctuation; comments are dropped.
fn tokenize(sql: &str) -> Vec<Token<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if b == b'-' && bytes.get(i + 1) == Some(&b'-') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if b == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i = (i + 2).min(bytes.len());
            continue;
        }
        let kind = if b == b'\'' || b == b'"' || b == b'`' {
            // A doubled quote is an escaped quote inside the literal.
            i += 1;
            loop {
                match bytes.get(i) {
                    None => break,
                    Some(&c) if c == b => {
                        if bytes.get(i + 1) == Some(&b) {
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(_) => i += 1,
                }
            }
            if b == b'\'' { Kind::Str } else { Kind::QuotedIdent }
        } else if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || bytes[i] == b'_'
                    || bytes[i] == b'$'
                    || bytes[i] >= 0x80)
            {
                i += 1;
            }
            Kind::Word
        } else if b.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            Kind::Number
        } else {
            i += 1;
            Kind::Punct(char::from(b))
        };
        if let Some(text) = sql.get(start..i) {
            out.push(Token {
                kind,
                text,
                at: start,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jinja::scan;
    use pretty_assertions::assert_eq;

    fn check(sql: &str, expected: &[(Rule, u32)]) {
        let unique: HashSet<String> = ["order_number".to_owned()].into_iter().collect();
        let got: Vec<(Rule, u32)> = hazards(sql, &scan(sql), &unique)
            .into_iter()
            .map(|h| (h.rule, h.line))
            .collect();
        assert_eq!(got, expected, "{sql}");
    }

    #[test]
    fn clock_reads() {
        use Rule::NondeterministicFunction as N;
        check("select * from t where d >= current_date - 7", &[(N, 1)]);
        check("select now() as at", &[(N, 1)]);
        check("select\n  CURRENT_TIMESTAMP as loaded_at", &[(N, 2)]);
        check("select {{ dbt.current_timestamp() }} as at", &[(N, 1)]);
        check("select random() as r", &[(N, 1)]);
        // Columns, aliases, strings and comments that merely use the words are not clock reads.
        check(
            "select t.current_date, x as current_date, 'now()' from t -- now()",
            &[],
        );
        check("select now from t /* current_date */", &[]);
    }

    #[test]
    fn date_spines() {
        use Rule::DateSpineOpenEnded as S;
        check(
            "select * from range(date '2018-01-01', current_date, interval 1 day)",
            &[(S, 1)],
        );
        check(
            "select generate_series(date '2018-01-01', date '2019-01-01', interval 1 day)",
            &[],
        );
        check(
            "{{ dbt_utils.date_spine(datepart='day', start_date=\"cast('2018-01-01' as date)\", end_date=\"current_date\") }}",
            &[(S, 1)],
        );
        check(
            "{{ dbt_utils.date_spine('day', \"'2018-01-01'\", \"'2019-01-01'\") }}",
            &[],
        );
    }

    #[test]
    fn windows_need_a_total_order() {
        use Rule::WindowWithoutTotalOrder as W;
        check(
            "select row_number() over (partition by customer_id order by order_date) from t",
            &[(W, 1)],
        );
        check(
            "select row_number() over (partition by c order by order_date, o.order_id) from t",
            &[],
        );
        check("select row_number() over (order by id) from t", &[]);
        check("select row_number() over () from t", &[(W, 1)]);
        check(
            "select lag(x) over (partition by a order by a_date) from t",
            &[(W, 1)],
        );
        // Tie-safe ranking functions and plain aggregates are fine.
        check("select rank() over (order by score) from t", &[]);
        check("select sum(x) over (partition by c) from t", &[]);
        // A ROWS frame over a tying order is not.
        check(
            "select sum(x) over (order by d rows between unbounded preceding and current row) from t",
            &[(W, 1)],
        );
        // A column that a test proves unique is a total order; a partition key is not.
        check("select row_number() over (order by order_number) from t", &[]);
        check(
            "select row_number() over (partition by customer_id order by customer_id) from t",
            &[(W, 1)],
        );
        check(
            "select first_value(x) ignore nulls over (order by d) from t",
            &[(W, 1)],
        );
        check(
            "select count(*) filter (where x) over (order by d rows 3 preceding) from t",
            &[(W, 1)],
        );
        check("select x from t window w as (order by d)", &[]);
    }

    #[test]
    fn limits_need_an_order() {
        use Rule::LimitWithoutOrderBy as L;
        check("select * from t limit 5", &[(L, 1)]);
        check("select * from t order by id limit 5", &[]);
        check("select * from (select * from t order by id limit 5) s", &[]);
        check("select * from (select * from t limit 5) s order by id", &[(L, 1)]);
        check(
            "with a as (select * from t order by x)\nselect * from a\nlimit 5",
            &[(L, 3)],
        );
        check("select * from t limit 0", &[]);
        check(
            "select * from t\n{% if target.name == 'dev' %}\nlimit 100\n{% endif %}",
            &[],
        );
        check(
            "select * from t\n{% if var('sample') %}\nlimit 100\n{% endif %}",
            &[(L, 3)],
        );
    }

    fn stub(sql: &str) -> Option<&'static str> {
        stub_reason(sql, &scan(sql))
    }

    #[test]
    fn stubs() {
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("{{ config(materialized='table') }}\n-- nothing yet\n", true),
            (
                "{{ config(materialized='table') }}\n-- TODO: fill in transformations\nselect\n",
                true,
            ),
            ("select a,\n", true),
            ("select count(* from t", true),
            ("select * from t where", true),
            ("todo", true),
            ("select * from {{ ref('a') }}", false),
            (
                "{{ dbt_utils.union_relations(relations=[ref('a'), ref('b')]) }}",
                false,
            ),
            ("with a as (select 1 as x) select x from a", false),
            ("-- TODO: speed this up\nselect 1 as x", false),
        ];
        for (sql, expected) in cases {
            assert_eq!(stub(sql).is_some(), *expected, "{sql:?} -> {:?}", stub(sql));
        }
    }
}
