//! A small scanner for the Jinja in dbt SQL: `ref()`, `source()`, `config()`, macro and snapshot blocks.
//!
//! It does not render templates. It finds calls whose arguments are string literals, which is how nearly all
//! dbt code is written; calls with computed arguments (`ref(var('x'))`) are skipped rather than guessed at.
//! It also produces the SQL with every Jinja region blanked out (same length, same line breaks), so the SQL
//! checks can run on text whose offsets still match the file.

use std::ops::Range;

/// `ref('name')` or `ref('package', 'name')`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefCall {
    /// The package, for the two-argument form.
    pub package: Option<String>,
    /// The referenced model, seed or snapshot.
    pub name: String,
    /// 1-based line of the call.
    pub line: u32,
}

/// `source('source_name', 'table')`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCall {
    /// The source's name.
    pub source: String,
    /// The table's name.
    pub table: String,
    /// 1-based line of the call.
    pub line: u32,
}

/// A `{% macro name(args) %}` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroDef {
    /// The macro's name.
    pub name: String,
    /// The argument list as written, whitespace collapsed: `column_name, scale=2`.
    pub signature: String,
    /// 1-based line of the definition.
    pub line: u32,
}

/// Literal arguments of `{{ config(...) }}` in a model file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InlineConfig {
    /// `materialized='...'`.
    pub materialized: Option<String>,
    /// `unique_key='id'` or `unique_key=['a', 'b']`.
    pub unique_key: Option<Vec<String>>,
    /// `incremental_strategy='...'`.
    pub incremental_strategy: Option<String>,
    /// `enabled=false`.
    pub enabled: Option<bool>,
}

/// A call to something that generates current-time SQL from Jinja (`dbt.current_timestamp()`,
/// `run_started_at`), or a date spine macro.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JinjaHazard {
    /// What was called, as written (`dbt.current_timestamp`, `run_started_at`, `dbt_utils.date_spine`).
    pub name: String,
    /// For date spines: whether an argument mentions the current date or time.
    pub open_ended: bool,
    /// 1-based line.
    pub line: u32,
}

/// Everything the scanner found in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JinjaFacts {
    /// `ref()` calls, in file order.
    pub refs: Vec<RefCall>,
    /// `source()` calls, in file order.
    pub sources: Vec<SourceCall>,
    /// The model's inline config.
    pub config: InlineConfig,
    /// Macro definitions.
    pub macros: Vec<MacroDef>,
    /// `{% snapshot name %}` blocks, with their lines.
    pub snapshots: Vec<(String, u32)>,
    /// Current-time calls and date spines made from Jinja.
    pub hazards: Vec<JinjaHazard>,
    /// Byte ranges inside `{% if ... target ... %}` blocks: SQL that only runs in some environments, such as
    /// a `limit` for development.
    pub target_conditional: Vec<Range<usize>>,
    /// The file with each Jinja expression replaced by `_` and each statement or comment by spaces, keeping
    /// length and line breaks.
    pub masked_sql: String,
}

/// Jinja names that produce the current date or time.
const JINJA_TIME: &[&str] = &[
    "current_timestamp",
    "current_timestamp_backcompat",
    "current_timestamp_in_utc_backcompat",
    "run_started_at",
    "now",
    "today",
];

/// Scans a SQL file's Jinja.
pub fn scan(text: &str) -> JinjaFacts {
    let lines = LineIndex::new(text);
    let mut facts = JinjaFacts::default();
    let mut masked = text.as_bytes().to_vec();
    // Open `{% if %}` blocks: whether each depends on `target`, and where its body starts.
    let mut ifs: Vec<(bool, usize)> = Vec::new();

    for region in regions(text) {
        let tokens = match region.kind {
            RegionKind::Comment => Vec::new(),
            RegionKind::Expr | RegionKind::Stmt => tokenize(text, region.inner.clone()),
        };
        // An expression renders to SQL, so it stays a word in the masked text; `config()` renders to nothing.
        let is_config = matches!(
            tokens.first(),
            Some(Token {
                tok: Tok::Ident("config"),
                ..
            })
        );
        let fill = if region.kind == RegionKind::Expr && !is_config {
            b'_'
        } else {
            b' '
        };
        for b in &mut masked[region.outer.clone()] {
            if *b != b'\n' {
                *b = fill;
            }
        }
        if region.kind == RegionKind::Comment {
            continue;
        }
        if region.kind == RegionKind::Stmt {
            match tokens.first().map(|t| &t.tok) {
                Some(Tok::Ident("macro")) => {
                    if let Some(def) = macro_def(text, &tokens, &lines) {
                        facts.macros.push(def);
                    }
                }
                Some(Tok::Ident("snapshot")) => {
                    if let Some(Token {
                        tok: Tok::Ident(name),
                        at,
                    }) = tokens.get(1)
                    {
                        facts.snapshots.push(((*name).to_owned(), lines.line(*at)));
                    }
                }
                Some(Tok::Ident("if")) => {
                    let on_target = tokens
                        .iter()
                        .any(|t| matches!(t.tok, Tok::Ident(name) if name == "target" || name.starts_with("target.")));
                    ifs.push((on_target, region.outer.end));
                }
                Some(Tok::Ident("endif")) => {
                    if let Some((true, start)) = ifs.pop() {
                        facts.target_conditional.push(start..region.outer.start);
                    }
                }
                _ => {}
            }
        }
        calls(&tokens, &lines, &mut facts);
    }
    facts.masked_sql =
        String::from_utf8(masked).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    facts
}

/// The macros defined in a file (used on manifest macro bodies too).
pub fn macro_definitions(text: &str) -> Vec<MacroDef> {
    let lines = LineIndex::new(text);
    regions(text)
        .into_iter()
        .filter(|r| r.kind == RegionKind::Stmt)
        .filter_map(|r| {
            let tokens = tokenize(text, r.inner.clone());
            match tokens.first().map(|t| &t.tok) {
                Some(Tok::Ident("macro")) => macro_def(text, &tokens, &lines),
                _ => None,
            }
        })
        .collect()
}

fn macro_def(text: &str, tokens: &[Token<'_>], lines: &LineIndex) -> Option<MacroDef> {
    let Token {
        tok: Tok::Ident(name),
        at,
    } = tokens.get(1)?
    else {
        return None;
    };
    let open = tokens.get(2).filter(|t| t.tok == Tok::Punct('('))?;
    let close = matching_paren(tokens, 2)?;
    let raw = text.get(open.at + 1..tokens[close].at).unwrap_or("");
    Some(MacroDef {
        name: (*name).to_owned(),
        signature: raw.split_whitespace().collect::<Vec<_>>().join(" "),
        line: lines.line(*at),
    })
}

/// Finds `ref(`, `source(`, `config(`, time calls and date spines among a region's tokens.
fn calls(tokens: &[Token<'_>], lines: &LineIndex, facts: &mut JinjaFacts) {
    for (i, token) in tokens.iter().enumerate() {
        let Tok::Ident(name) = token.tok else { continue };
        let is_call = tokens.get(i + 1).is_some_and(|t| t.tok == Tok::Punct('('));
        let line = lines.line(token.at);
        let last_segment = name.rsplit('.').next().unwrap_or(name);
        if JINJA_TIME.contains(&last_segment) && (is_call || last_segment == "run_started_at") {
            facts.hazards.push(JinjaHazard {
                name: name.to_owned(),
                open_ended: false,
                line,
            });
            continue;
        }
        if !is_call {
            continue;
        }
        let Some(close) = matching_paren(tokens, i + 1) else {
            continue;
        };
        let args = split_args(&tokens[i + 2..close]);
        match name {
            "ref" => {
                let literals: Option<Vec<&str>> = args
                    .iter()
                    .filter(|a| a.kwarg.is_none())
                    .map(|a| a.literal())
                    .collect();
                match literals.as_deref() {
                    Some([model]) => facts.refs.push(RefCall {
                        package: None,
                        name: (*model).to_owned(),
                        line,
                    }),
                    Some([package, model]) => facts.refs.push(RefCall {
                        package: Some((*package).to_owned()),
                        name: (*model).to_owned(),
                        line,
                    }),
                    _ => {}
                }
            }
            "source" => {
                let literals: Option<Vec<&str>> = args
                    .iter()
                    .filter(|a| a.kwarg.is_none())
                    .map(|a| a.literal())
                    .collect();
                if let Some([source, table]) = literals.as_deref() {
                    facts.sources.push(SourceCall {
                        source: (*source).to_owned(),
                        table: (*table).to_owned(),
                        line,
                    });
                }
            }
            "config" => {
                for arg in &args {
                    match arg.kwarg {
                        Some("materialized") => facts.config.materialized = arg.literal().map(str::to_owned),
                        Some("incremental_strategy") => {
                            facts.config.incremental_strategy = arg.literal().map(str::to_owned)
                        }
                        Some("unique_key") => facts.config.unique_key = arg.literal_list(),
                        Some("enabled") => {
                            facts.config.enabled = match arg.value {
                                [
                                    Token {
                                        tok: Tok::Ident("true" | "True"),
                                        ..
                                    },
                                ] => Some(true),
                                [
                                    Token {
                                        tok: Tok::Ident("false" | "False"),
                                        ..
                                    },
                                ] => Some(false),
                                _ => None,
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ if last_segment == "date_spine" => {
                let open_ended = tokens[i + 2..close].iter().any(|t| match &t.tok {
                    Tok::Str(s) => mentions_current_time(s),
                    Tok::Ident(id) => JINJA_TIME.contains(&id.rsplit('.').next().unwrap_or(id)),
                    Tok::Punct(_) | Tok::Other => false,
                });
                facts.hazards.push(JinjaHazard {
                    name: name.to_owned(),
                    open_ended,
                    line,
                });
            }
            _ => {}
        }
    }
}

/// Whether SQL text inside a Jinja string (a date spine bound) reads the clock.
pub(crate) fn mentions_current_time(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    words.iter().any(|w| {
        matches!(
            *w,
            "current_date"
                | "current_timestamp"
                | "now"
                | "getdate"
                | "sysdate"
                | "today"
                | "localtimestamp"
                | "sysdatetime"
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegionKind {
    Expr,
    Stmt,
    Comment,
}

#[derive(Debug, Clone)]
struct Region {
    kind: RegionKind,
    /// From `{{` to past `}}`.
    outer: Range<usize>,
    /// Between the delimiters (and any `-` whitespace control).
    inner: Range<usize>,
}

/// Splits a file into Jinja regions. Quotes inside expressions and statements are respected, so `'}}'` in a
/// string does not end the region; `{% raw %}` blocks are treated as plain text.
fn regions(text: &str) -> Vec<Region> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        let (kind, close) = match bytes[i + 1] {
            b'{' => (RegionKind::Expr, b'}'),
            b'%' => (RegionKind::Stmt, b'%'),
            b'#' => (RegionKind::Comment, b'#'),
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i;
        let mut j = i + 2;
        let mut quote: Option<u8> = None;
        let mut end = None;
        while j < bytes.len() {
            let b = bytes[j];
            match quote {
                Some(_) if b == b'\\' => j += 1,
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if kind != RegionKind::Comment && (b == b'\'' || b == b'"') => quote = Some(b),
                None if b == close && bytes.get(j + 1) == Some(&b'}') => {
                    end = Some(j + 2);
                    break;
                }
                None => {}
            }
            j += 1;
        }
        let Some(end) = end else { break };
        let mut inner = start + 2..end - 2;
        if bytes.get(inner.start) == Some(&b'-') || bytes.get(inner.start) == Some(&b'+') {
            inner.start += 1;
        }
        if inner.end > inner.start && (bytes[inner.end - 1] == b'-' || bytes[inner.end - 1] == b'+') {
            inner.end -= 1;
        }
        let is_raw = kind == RegionKind::Stmt && text.get(inner.clone()).is_some_and(|s| s.trim() == "raw");
        out.push(Region {
            kind,
            outer: start..end,
            inner,
        });
        i = end;
        if is_raw {
            // Everything up to `{% endraw %}` is literal text.
            i = find_endraw(text, end).unwrap_or(bytes.len());
        }
    }
    out
}

fn find_endraw(text: &str, from: usize) -> Option<usize> {
    let rest = text.get(from..)?;
    let mut offset = 0;
    while let Some(pos) = rest[offset..].find("{%") {
        let at = offset + pos;
        let tail = &rest[at + 2..];
        let tail = tail.trim_start_matches(['-', '+']).trim_start();
        if tail.starts_with("endraw") {
            return Some(from + at);
        }
        offset = at + 2;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    /// A name, dots included: `dbt_utils.date_spine`.
    Ident(&'a str),
    /// A string literal, unescaped.
    Str(String),
    Punct(char),
    /// Numbers and anything else.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
struct Token<'a> {
    tok: Tok<'a>,
    /// Byte offset in the file.
    at: usize,
}

fn tokenize(text: &str, range: Range<usize>) -> Vec<Token<'_>> {
    let Some(src) = text.get(range.clone()) else {
        return Vec::new();
    };
    let base = range.start;
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c == '\'' || c == '"' {
            let mut value = String::new();
            while let Some((_, d)) = chars.next() {
                match d {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            value.push(e);
                        }
                    }
                    d if d == c => break,
                    d => value.push(d),
                }
            }
            out.push(Token {
                tok: Tok::Str(value),
                at: base + i,
            });
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == '.' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Token {
                tok: Tok::Ident(&src[i..end]),
                at: base + i,
            });
        } else if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|&(_, d)| d.is_ascii_alphanumeric() || d == '.')
            {
                chars.next();
            }
            out.push(Token {
                tok: Tok::Other,
                at: base + i,
            });
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                at: base + i,
            });
        }
    }
    out
}

/// The index of the `)` matching the `(` at `open`.
fn matching_paren(tokens: &[Token<'_>], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

struct Arg<'t, 'a> {
    kwarg: Option<&'a str>,
    value: &'t [Token<'a>],
}

impl Arg<'_, '_> {
    fn literal(&self) -> Option<&str> {
        match self.value {
            [Token { tok: Tok::Str(s), .. }] => Some(s),
            _ => None,
        }
    }

    fn literal_list(&self) -> Option<Vec<String>> {
        if let Some(s) = self.literal() {
            return Some(vec![s.to_owned()]);
        }
        let inner = match self.value {
            [
                Token {
                    tok: Tok::Punct('['), ..
                },
                inner @ ..,
                Token {
                    tok: Tok::Punct(']'), ..
                },
            ] => inner,
            _ => return None,
        };
        inner
            .iter()
            .filter(|t| t.tok != Tok::Punct(','))
            .map(|t| match &t.tok {
                Tok::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Splits call arguments at top-level commas, recognising `name=value` keyword arguments.
fn split_args<'t, 'a>(tokens: &'t [Token<'a>]) -> Vec<Arg<'t, 'a>> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for k in 0..=tokens.len() {
        let at_end = k == tokens.len();
        if !at_end {
            match tokens[k].tok {
                Tok::Punct('(' | '[' | '{') => depth += 1,
                Tok::Punct(')' | ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if at_end || (depth == 0 && tokens[k].tok == Tok::Punct(',')) {
            let part = &tokens[start..k];
            start = k + 1;
            if part.is_empty() {
                continue;
            }
            let arg = match part {
                [
                    Token {
                        tok: Tok::Ident(name),
                        ..
                    },
                    Token {
                        tok: Tok::Punct('='), ..
                    },
                    value @ ..,
                ] => Arg {
                    kwarg: Some(name),
                    value,
                },
                _ => Arg {
                    kwarg: None,
                    value: part,
                },
            };
            out.push(arg);
        }
    }
    out
}

/// Byte offset to 1-based line.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    pub(crate) fn line(&self, offset: usize) -> u32 {
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        u32::try_from(line).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// A ref call as the tests compare it: package, name, line.
    type Ref = (Option<String>, String, u32);

    fn refs(text: &str) -> Vec<Ref> {
        scan(text)
            .refs
            .into_iter()
            .map(|r| (r.package, r.name, r.line))
            .collect()
    }

    #[test]
    fn ref_calls() {
        let cases: &[(&str, Vec<Ref>)] = &[
            ("select * from {{ ref('a') }}", vec![(None, "a".into(), 1)]),
            ("select * from {{ref(\"a\")}}", vec![(None, "a".into(), 1)]),
            (
                "\n\n{{ ref('pkg', 'b') }}",
                vec![(Some("pkg".into()), "b".into(), 3)],
            ),
            ("{{ ref('c', v=2) }}", vec![(None, "c".into(), 1)]),
            ("{{ ref('c', version=2) }}", vec![(None, "c".into(), 1)]),
            ("{% set x = ref('d') %}", vec![(None, "d".into(), 1)]),
            // dbt renders Jinja inside SQL comments, so these are real dependencies.
            ("-- depends_on: {{ ref('e') }}", vec![(None, "e".into(), 1)]),
            // Computed arguments and Jinja comments are not dependencies we can name.
            ("{{ ref(var('model')) }}", vec![]),
            ("{# {{ ref('f') }} #}", vec![]),
            ("{{ xref('g') }} {{ my.ref('h') }}", vec![]),
            ("{% raw %}{{ ref('i') }}{% endraw %}", vec![]),
            (
                "{{ ref('a') }} {{ ref('b') }}",
                vec![(None, "a".into(), 1), (None, "b".into(), 1)],
            ),
            ("{{ '}}' ~ ref('j') }}", vec![(None, "j".into(), 1)]),
        ];
        for (text, expected) in cases {
            assert_eq!(&refs(text), expected, "{text}");
        }
    }

    #[test]
    fn source_calls() {
        let facts = scan("from {{ source('shop', 'orders') }}\njoin {{ source(\"shop\") }}");
        assert_eq!(
            facts.sources,
            vec![SourceCall {
                source: "shop".into(),
                table: "orders".into(),
                line: 1
            }]
        );
    }

    #[test]
    fn config_calls() {
        let cases = [
            (
                "{{ config(materialized='incremental', unique_key=['a', 'b'], incremental_strategy='merge') }}",
                InlineConfig {
                    materialized: Some("incremental".into()),
                    unique_key: Some(vec!["a".into(), "b".into()]),
                    incremental_strategy: Some("merge".into()),
                    enabled: None,
                },
            ),
            (
                "{{\n  config(\n    materialized = \"table\",\n    unique_key = 'id',\n    enabled=false\n  )\n}}",
                InlineConfig {
                    materialized: Some("table".into()),
                    unique_key: Some(vec!["id".into()]),
                    incremental_strategy: None,
                    enabled: Some(false),
                },
            ),
            ("select 1", InlineConfig::default()),
        ];
        for (text, expected) in cases {
            assert_eq!(scan(text).config, expected, "{text}");
        }
    }

    #[test]
    fn macros_snapshots_and_masking() {
        let text = "{% macro cents(col, scale=2) -%}\n  {{ col }} / 100\n{%- endmacro %}\n{% snapshot snap %}\nx\n{% endsnapshot %}";
        let facts = scan(text);
        assert_eq!(
            facts.macros,
            vec![MacroDef {
                name: "cents".into(),
                signature: "col, scale=2".into(),
                line: 1
            }]
        );
        assert_eq!(facts.snapshots, vec![("snap".to_owned(), 4)]);
        assert_eq!(facts.masked_sql.len(), text.len());
        assert_eq!(facts.masked_sql.lines().count(), text.lines().count());
        assert!(facts.masked_sql.contains("_______ / 100"), "{}", facts.masked_sql);
        assert_eq!(
            macro_definitions("{% macro m() %}{% endmacro %}")[0].signature,
            ""
        );
    }

    #[test]
    fn hazards_and_target_conditionals() {
        let text = "select {{ dbt.current_timestamp() }}, '{{ run_started_at }}'\n\
                    from {{ dbt_utils.date_spine(datepart='day', start_date=\"cast('2020-01-01' as date)\", end_date='current_date') }}\n\
                    {{ dbt_utils.date_spine('day', \"'2020-01-01'\", \"'2021-01-01'\") }}\n\
                    {% if target.name == 'dev' %} limit 10 {% endif %}";
        let facts = scan(text);
        let got: Vec<_> = facts
            .hazards
            .iter()
            .map(|h| (h.name.as_str(), h.open_ended, h.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("dbt.current_timestamp", false, 1),
                ("run_started_at", false, 1),
                ("dbt_utils.date_spine", true, 2),
                ("dbt_utils.date_spine", false, 3),
            ]
        );
        assert_eq!(facts.target_conditional.len(), 1);
        let body = &text[facts.target_conditional[0].clone()];
        assert_eq!(body.trim(), "limit 10");
    }

    #[test]
    fn line_index() {
        let idx = LineIndex::new("a\nbb\n\nc");
        let got: Vec<u32> = [0, 1, 2, 4, 5, 6].iter().map(|&o| idx.line(o)).collect();
        assert_eq!(got, vec![1, 1, 2, 2, 3, 4]);
    }
}
