//! DuckDB statements the parser does not know: `SUMMARIZE` and the `PIVOT` statement are split into parts
//! the parser does know, governed as queries, and rendered back from those parts. Also DuckDB's `ASOF JOIN`,
//! which the parser only knows in Snowflake's form, travels through the parser as a marked join.

use sqlparser::ast::{GroupByExpr, Query, Select, SetExpr, Statement, TableWithJoins};
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Whitespace};

use crate::Dialect;
use crate::lex;
use crate::rules;
use crate::verdict::Finding;

/// `SUMMARIZE <table>` or `SUMMARIZE <query>`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Summarize {
    /// Held as `SELECT * FROM <table>` so that every relation rule applies, `*` included.
    Table(Query),
    Query(Query),
}

/// `PIVOT <source> ON <columns> [USING <aggregates>] [GROUP BY …] [ORDER BY …] [LIMIT …]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pivot {
    /// `SELECT <on columns> FROM <source> [GROUP BY …] [ORDER BY …] [LIMIT …]`.
    pub(crate) on: Query,
    /// `SELECT <aggregates> [, *] FROM <source>`; the `*` stands for the columns a PIVOT without
    /// `GROUP BY` passes through.
    pub(crate) using: Query,
    pub(crate) has_using: bool,
    pub(crate) implicit_star: bool,
}

fn significant(tokens: &[TokenWithSpan]) -> impl Iterator<Item = (usize, &TokenWithSpan)> {
    tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
}

fn word_is(t: &Token, text: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(text))
}

/// Which special statement the tokens start with, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    Summarize,
    Pivot,
    Unpivot,
}

/// A special statement found at the start of the tokens: its kind, the range of tokens after its keyword,
/// and, for a PIVOT inside governance's own limit wrapper, that wrapper's limit.
pub(crate) struct Found {
    pub(crate) kind: Special,
    pub(crate) rest: std::ops::Range<usize>,
    pub(crate) wrapped_limit: Option<u64>,
}

pub(crate) fn special(tokens: &[TokenWithSpan]) -> Option<Found> {
    let (i, first) = significant(tokens).next()?;
    let kind = if word_is(&first.token, "SUMMARIZE") {
        Special::Summarize
    } else if word_is(&first.token, "PIVOT") || word_is(&first.token, "PIVOT_WIDER") {
        Special::Pivot
    } else if word_is(&first.token, "UNPIVOT") || word_is(&first.token, "PIVOT_LONGER") {
        Special::Unpivot
    } else {
        // Only the wrapper has `PIVOT` as its fifth token (`SELECT * FROM (PIVOT`); other statements stop
        // here without collecting their tokens.
        if !significant(tokens)
            .nth(4)
            .is_some_and(|(_, t)| word_is(&t.token, "PIVOT"))
        {
            return None;
        }
        let sig: Vec<(usize, &TokenWithSpan)> = significant(tokens).collect();
        return wrapped_pivot(&sig);
    };
    Some(Found {
        kind,
        rest: i + 1..tokens.len(),
        wrapped_limit: None,
    })
}

/// `SELECT * FROM (PIVOT …) AS sluice_limited LIMIT n`, the form governance itself produces, so that its
/// output can be governed (and redacted) again.
fn wrapped_pivot(sig: &[(usize, &TokenWithSpan)]) -> Option<Found> {
    let end = sig.iter().rposition(|(_, t)| t.token != Token::SemiColon)? + 1;
    let sig = sig.get(..end)?;
    let head = sig.get(..5)?;
    let tail = sig.get(sig.len().checked_sub(5)?..)?;
    let head_ok = matches!(head, [(_, a), (_, b), (_, c), (_, d), (_, e)]
        if word_is(&a.token, "SELECT") && b.token == Token::Mul && word_is(&c.token, "FROM")
            && d.token == Token::LParen && word_is(&e.token, "PIVOT"));
    let (close, limit) = match tail {
        [(close, a), (_, b), (_, c), (_, d), (_, e)]
            if a.token == Token::RParen
                && word_is(&b.token, "AS")
                && word_is(&c.token, crate::limit::WRAP_ALIAS)
                && word_is(&d.token, "LIMIT") =>
        {
            match &e.token {
                Token::Number(n, _) => (*close, n.parse::<u64>().ok()?),
                _ => return None,
            }
        }
        _ => return None,
    };
    let (pivot_at, _) = head.get(4)?;
    (head_ok && *pivot_at < close).then_some(Found {
        kind: Special::Pivot,
        rest: pivot_at + 1..close,
        wrapped_limit: Some(limit),
    })
}

fn kw(keyword: &str) -> TokenWithSpan {
    TokenWithSpan::wrap(Token::make_keyword(keyword))
}

fn space() -> TokenWithSpan {
    TokenWithSpan::wrap(Token::Whitespace(Whitespace::Space))
}

fn single_query(tokens: Vec<TokenWithSpan>, dialect: Dialect, max_depth: usize) -> Result<Query, Finding> {
    let mut statements = lex::parse(tokens, dialect, max_depth)?;
    match (statements.pop(), statements.is_empty()) {
        (Some(Statement::Query(q)), true) => Ok(*q),
        (None, _) => Err(Finding::deny(
            rules::PARSE_ERROR,
            "The statement is incomplete. Complete it, e.g. `SUMMARIZE my_table`.".to_owned(),
            None,
        )),
        (Some(_), true) => Err(Finding::deny(
            rules::STATEMENT_NOT_ALLOWED,
            "Only a table or a read-only query can follow SUMMARIZE or PIVOT. Use a SELECT.".to_owned(),
            None,
        )),
        (Some(_), false) => Err(multiple()),
    }
}

pub(crate) fn multiple() -> Finding {
    Finding::deny(
        rules::MULTIPLE_STATEMENTS,
        "Only one statement per call is accepted. Send the statements one at a time.".to_owned(),
        None,
    )
}

/// Parses the tokens after `SUMMARIZE`.
pub(crate) fn parse_summarize(
    rest: &[TokenWithSpan],
    dialect: Dialect,
    max_depth: usize,
) -> Result<Summarize, Finding> {
    let starts_query = significant(rest).next().is_some_and(|(_, t)| {
        matches!(&t.token, Token::Word(w) if w.quote_style.is_none()
            && matches!(w.keyword, Keyword::SELECT | Keyword::WITH | Keyword::FROM | Keyword::VALUES | Keyword::TABLE))
            || t.token == Token::LParen
    });
    if starts_query {
        return single_query(rest.to_vec(), dialect, max_depth).map(Summarize::Query);
    }
    let mut tokens = vec![
        kw("SELECT"),
        space(),
        TokenWithSpan::wrap(Token::Mul),
        space(),
        kw("FROM"),
        space(),
    ];
    tokens.extend_from_slice(rest);
    single_query(tokens, dialect, max_depth).map(Summarize::Table)
}

/// The sections of a PIVOT statement, as token ranges.
#[derive(Default)]
struct Sections {
    source: Vec<TokenWithSpan>,
    on: Vec<TokenWithSpan>,
    using: Option<Vec<TokenWithSpan>>,
    /// Everything from `GROUP BY` (or `ORDER BY`, `LIMIT`) on, keywords included.
    tail: Vec<TokenWithSpan>,
    grouped: bool,
}

fn split_pivot(rest: &[TokenWithSpan]) -> Result<Sections, Finding> {
    #[derive(PartialEq, PartialOrd, Clone, Copy)]
    enum Part {
        Source,
        On,
        Using,
        Tail,
    }
    let mut sections = Sections::default();
    let mut part = Part::Source;
    let mut depth = 0usize;
    let next_significant = |from: usize| {
        rest.iter()
            .skip(from + 1)
            .find(|t| !matches!(t.token, Token::Whitespace(_)))
    };
    for (i, t) in rest.iter().enumerate() {
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && part < Part::Tail {
            let by_follows = next_significant(i).is_some_and(|n| word_is(&n.token, "BY"));
            if part == Part::Source && word_is(&t.token, "ON") {
                part = Part::On;
                continue;
            }
            if part == Part::On && word_is(&t.token, "USING") {
                part = Part::Using;
                sections.using = Some(Vec::new());
                continue;
            }
            if part >= Part::On
                && (((word_is(&t.token, "GROUP") || word_is(&t.token, "ORDER")) && by_follows)
                    || word_is(&t.token, "LIMIT"))
            {
                sections.grouped = word_is(&t.token, "GROUP");
                part = Part::Tail;
            }
        }
        match part {
            Part::Source => sections.source.push(t.clone()),
            Part::On => sections.on.push(t.clone()),
            Part::Using => {
                if let Some(u) = sections.using.as_mut() {
                    u.push(t.clone());
                }
            }
            Part::Tail => sections.tail.push(t.clone()),
        }
    }
    if part == Part::Source {
        return Err(Finding::deny(
            rules::PARSE_ERROR,
            "The PIVOT statement has no ON clause. Write `PIVOT <table> ON <column> USING <aggregate>`."
                .to_owned(),
            None,
        ));
    }
    Ok(sections)
}

/// Parses the tokens after `PIVOT`.
pub(crate) fn parse_pivot(
    rest: &[TokenWithSpan],
    dialect: Dialect,
    max_depth: usize,
) -> Result<Pivot, Finding> {
    let s = split_pivot(rest)?;
    let mut on = vec![kw("SELECT"), space()];
    on.extend(s.on.iter().cloned());
    on.extend([space(), kw("FROM"), space()]);
    on.extend(s.source.iter().cloned());
    on.push(space());
    on.extend(s.tail.iter().cloned());

    let implicit_star = !s.grouped;
    let mut using = vec![kw("SELECT"), space()];
    let has_using = s.using.is_some();
    if let Some(u) = &s.using {
        using.extend(u.iter().cloned());
        if implicit_star {
            using.extend([TokenWithSpan::wrap(Token::Comma), space()]);
        }
    }
    if implicit_star {
        using.push(TokenWithSpan::wrap(Token::Mul));
    } else if !has_using {
        using.push(TokenWithSpan::wrap(Token::Number("1".to_owned(), false)));
    }
    using.extend([space(), kw("FROM"), space()]);
    using.extend(s.source.iter().cloned());

    Ok(Pivot {
        on: single_query(on, dialect, max_depth)?,
        using: single_query(using, dialect, max_depth)?,
        has_using,
        implicit_star,
    })
}

fn select(query: &Query) -> Option<&Select> {
    match query.body.as_ref() {
        SetExpr::Select(s) => Some(s),
        _ => None,
    }
}

fn joined<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn from_clause(from: &[TableWithJoins]) -> String {
    joined(from)
}

/// Renders a SUMMARIZE statement from its governed parts.
pub(crate) fn render_summarize(s: &Summarize) -> Option<String> {
    match s {
        Summarize::Query(q) => Some(format!("SUMMARIZE {q}")),
        Summarize::Table(q) => select(q).map(|sel| format!("SUMMARIZE {}", from_clause(&sel.from))),
    }
}

/// Renders a PIVOT statement from its governed parts.
pub(crate) fn render_pivot(p: &Pivot) -> Option<String> {
    let on = select(&p.on)?;
    let using = select(&p.using)?;
    let mut out = format!("PIVOT {} ON {}", from_clause(&on.from), joined(&on.projection));
    if p.has_using {
        let items = using.projection.as_slice();
        let items = if p.implicit_star {
            items.split_last().map(|(_, rest)| rest).unwrap_or(items)
        } else {
            items
        };
        out.push_str(&format!(" USING {}", joined(items)));
    }
    match &on.group_by {
        GroupByExpr::All(_) => out.push_str(&format!(" {}", on.group_by)),
        GroupByExpr::Expressions(exprs, _) if !exprs.is_empty() => out.push_str(&format!(" {}", on.group_by)),
        GroupByExpr::Expressions(..) => {}
    }
    if let Some(order) = &p.on.order_by {
        out.push_str(&format!(" {order}"));
    }
    if let Some(limit) = &p.on.limit_clause {
        out.push_str(&limit.to_string());
    }
    Some(out)
}

/// Marks DuckDB `ASOF` joins as `GLOBAL` joins, a form the parser knows and DuckDB does not, so that they can
/// be told apart after rendering. Returns whether anything was marked. Texts that already use the word
/// `GLOBAL` are left alone (and then fail to parse, refusing the query), so every `GLOBAL` in a rendering
/// is a marked `ASOF`.
pub(crate) fn mark_asof(tokens: &mut [TokenWithSpan]) -> bool {
    if !tokens.iter().any(|t| word_is(&t.token, "ASOF")) || tokens.iter().any(|t| word_is(&t.token, "GLOBAL"))
    {
        return false;
    }
    let joins = ["JOIN", "LEFT", "RIGHT", "INNER", "FULL", "OUTER", "SEMI", "ANTI"];
    let positions: Vec<usize> = significant(tokens)
        .collect::<Vec<_>>()
        .windows(2)
        .filter_map(|w| match w {
            [(i, a), (_, b)] if word_is(&a.token, "ASOF") && joins.iter().any(|j| word_is(&b.token, j)) => {
                Some(*i)
            }
            _ => None,
        })
        .collect();
    for &i in &positions {
        if let Some(t) = tokens.get_mut(i) {
            t.token = Token::make_keyword("GLOBAL");
        }
    }
    !positions.is_empty()
}

/// Turns the marked `GLOBAL` joins of a rendering back into `ASOF`.
pub(crate) fn unmark_asof(rendered: &str, dialect: Dialect) -> Option<String> {
    let tokens = lex::tokenize(rendered, dialect).ok()?;
    let marks: Vec<Location> = tokens
        .iter()
        .filter(|t| word_is(&t.token, "GLOBAL"))
        .map(|t| t.span.start)
        .collect();
    let mut out = String::with_capacity(rendered.len());
    let (mut line, mut column) = (1u64, 1u64);
    let mut skip = 0usize;
    for c in rendered.chars() {
        if skip > 0 {
            skip -= 1;
        } else if marks.contains(&Location { line, column }) {
            out.push_str("ASOF");
            skip = "GLOBAL".len() - 1;
        } else {
            out.push(c);
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    Some(out)
}
