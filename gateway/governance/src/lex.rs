//! Tokenizing and parsing in the connection's dialect, and the checks that must run on tokens before the
//! parser builds a tree (executable comments, statements the parser rejects, operator chains too long to walk).

use sqlparser::ast::Statement;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError, ParserOptions};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::Dialect;
use crate::rules;
use crate::verdict::{Finding, Span};

/// The most bytes of SQL governance accepts; longer texts are refused before tokenizing.
pub(crate) const MAX_SQL_BYTES: usize = 1 << 20;

/// The most operator tokens one statement may hold. The parser builds left-deep trees for operator chains
/// (`a OR b OR c …`) without recursing, but walking, rendering and dropping such trees recurses once per
/// operator; this bound keeps that recursion far from the stack's end on any thread.
pub(crate) const MAX_OPERATORS: usize = 3_000;

/// Parser options: literals keep their original escapes, so a rendered statement spells every string
/// exactly as the agent did and the engine reads it exactly as the parser did.
fn options() -> ParserOptions {
    ParserOptions::new().with_unescape(false)
}

/// Tokenizes `sql` in the dialect, or explains why it cannot be read.
pub(crate) fn tokenize(sql: &str, dialect: Dialect) -> Result<Vec<TokenWithSpan>, Finding> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Finding::deny(
            rules::TOO_LARGE,
            format!(
                "The SQL is {} bytes long; at most {MAX_SQL_BYTES} bytes are accepted. Send a shorter query.",
                sql.len()
            ),
            None,
        ));
    }
    Tokenizer::new(dialect.parser(), sql)
        .with_unescape(false)
        .tokenize_with_location()
        .map_err(|e| parse_error(&e.to_string(), dialect, None))
}

/// Parses tokens into statements with the nesting limit `max_depth`.
pub(crate) fn parse(
    tokens: Vec<TokenWithSpan>,
    dialect: Dialect,
    max_depth: usize,
) -> Result<Vec<Statement>, Finding> {
    // Errors at the end of the input carry no position; the end of the last token is that position.
    let end = tokens.last().map(|t| Span {
        line: t.span.end.line,
        column: t.span.end.column,
    });
    Parser::new(dialect.parser())
        .with_options(options())
        .with_recursion_limit(max_depth.max(1))
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => too_deep(max_depth, None),
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => unknown_statement(&m, dialect)
                .unwrap_or_else(|| parse_error(&m, dialect, end.filter(|_| m.ends_with("found: EOF")))),
        })
}

/// Tokenizes and parses in one step.
pub(crate) fn parse_sql(sql: &str, dialect: Dialect, max_depth: usize) -> Result<Vec<Statement>, Finding> {
    parse(tokenize(sql, dialect)?, dialect, max_depth)
}

/// Whether the parser gets the tokens' source positions. Positions serve only findings and error messages:
/// the parser decides nothing by them, and trees compare equal without them (`Ident` and `ValueWithSpan`
/// ignore theirs; no other node holds one). Dropping them spares the parser formatting a position into
/// each error it builds and discards while it tries alternatives (about one per identifier in an
/// expression): some 8 % of a parse of typical analytical SQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Positions {
    Keep,
    Drop,
}

/// The tokens with their positions cleared.
pub(crate) fn drop_positions(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    tokens.into_iter().map(|t| TokenWithSpan::wrap(t.token)).collect()
}

/// Tokenizes and parses a rendering for the stability check, without positions (see [`Positions`]).
pub(crate) fn reparse_sql(sql: &str, dialect: Dialect, max_depth: usize) -> Result<Vec<Statement>, Finding> {
    parse(drop_positions(tokenize(sql, dialect)?), dialect, max_depth)
}

/// A statement the parser does not know at all (`CHECKPOINT`, `VACUUM` in some dialects) is not a read-only
/// query either: it is refused as a statement kind rather than as a syntax error.
fn unknown_statement(message: &str, dialect: Dialect) -> Option<Finding> {
    let rest = message.strip_prefix("sql parser error: ").unwrap_or(message);
    let rest = rest.strip_prefix("Expected: an SQL statement, found: ")?;
    let (word, position) = rest.split_once(" at Line: ")?;
    // Only known keywords count: an unknown word is more likely a typo, which is a syntax error.
    let upper = word.to_ascii_uppercase();
    let extra = ["CHECKPOINT", "FORCE", "ABORT"];
    if !sqlparser::keywords::ALL_KEYWORDS.contains(&upper.as_str()) && !extra.contains(&upper.as_str()) {
        return None;
    }
    let parsed = parse_error(message, dialect, None);
    Some(Finding::deny(
        rules::STATEMENT_NOT_ALLOWED,
        format!(
            "`{}` statements are not allowed (line {}). Allowed are read-only queries (SELECT, WITH, VALUES, \
             TABLE), EXPLAIN without ANALYZE, SHOW and DESCRIBE.",
            upper,
            position.replace(", Column: ", ", column ")
        ),
        parsed.span,
    ))
}

pub(crate) fn too_deep(max_depth: usize, span: Option<Span>) -> Finding {
    Finding::deny(
        rules::TOO_DEEP,
        format!(
            "The SQL nests deeper than {max_depth} levels. Flatten it: move nested subqueries into CTEs \
             (WITH …) and drop redundant parentheses."
        ),
        span,
    )
}

/// Turns a parser message such as `Expected: …, found: x at Line: 1, Column: 8` into a finding whose span
/// and text both carry the position.
pub(crate) fn parse_error(message: &str, dialect: Dialect, at_end: Option<Span>) -> Finding {
    let message = message.trim_start_matches("sql parser error: ");
    let (text, span) = match message.rfind(" at Line: ") {
        Some(at) => {
            let tail = message.get(at + " at Line: ".len()..).unwrap_or("");
            let mut nums = tail.split(", Column: ").map(|n| n.trim().parse::<u64>());
            match (nums.next(), nums.next()) {
                (Some(Ok(line)), Some(Ok(column))) => {
                    (message.get(..at).unwrap_or(message), Some(Span { line, column }))
                }
                _ => (message, None),
            }
        }
        None => (message, at_end.filter(|s| s.line > 0)),
    };
    let position = match span {
        Some(s) => format!(" at line {}, column {}", s.line, s.column),
        None => String::new(),
    };
    Finding::deny(
        rules::PARSE_ERROR,
        format!(
            "The SQL could not be parsed as {}{position}: {text}. Fix the syntax there; send exactly one \
             read-only statement in the connection's dialect.",
            dialect.title()
        ),
        span,
    )
}

fn span_of(t: &TokenWithSpan) -> Option<Span> {
    let start = t.span.start;
    (start.line > 0).then_some(Span {
        line: start.line,
        column: start.column,
    })
}

fn is_keyword(t: &Token, kw: Keyword) -> bool {
    matches!(t, Token::Word(w) if w.keyword == kw && w.quote_style.is_none())
}

fn is_word(t: &Token, text: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(text))
}

/// Whether a token can make a parse tree one level deeper without the parser recursing: binary and postfix
/// operators, set operators and their keyword forms. Anything not known to be flat counts, so the
/// estimate errs high.
fn is_operator(t: &Token) -> bool {
    match t {
        Token::Word(w) => {
            w.quote_style.is_none()
                && matches!(
                    w.keyword,
                    Keyword::AND
                        | Keyword::OR
                        | Keyword::XOR
                        | Keyword::UNION
                        | Keyword::EXCEPT
                        | Keyword::INTERSECT
                        | Keyword::MINUS
                        | Keyword::IS
                        | Keyword::NOTNULL
                        | Keyword::LIKE
                        | Keyword::ILIKE
                        | Keyword::RLIKE
                        | Keyword::REGEXP
                        | Keyword::SIMILAR
                        | Keyword::GLOB
                        | Keyword::MATCH
                        | Keyword::BETWEEN
                        | Keyword::IN
                        | Keyword::COLLATE
                        | Keyword::AT
                        | Keyword::DIV
                        | Keyword::MOD
                        | Keyword::OPERATOR
                        | Keyword::OVERLAPS
                        | Keyword::MEMBER
                        | Keyword::NOT
                )
        }
        Token::EOF
        | Token::Number(..)
        | Token::Char(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::Comma
        | Token::Whitespace(_)
        | Token::LParen
        | Token::RParen
        | Token::Period
        | Token::SemiColon
        | Token::Placeholder(_) => false,
        _ => true,
    }
}

/// The 1-based locations of every `/*!` in the text.
fn executable_comment_starts(sql: &str) -> Vec<Location> {
    let mut found = Vec::new();
    let (mut line, mut column) = (1u64, 1u64);
    let bytes = sql.as_bytes();
    for (i, c) in sql.char_indices() {
        if c == '/' && bytes.get(i + 1) == Some(&b'*') && bytes.get(i + 2) == Some(&b'!') {
            found.push(Location { line, column });
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    found
}

/// Checks that must run on tokens: executable comments, MySQL forms the parser does not know
/// (`INTO OUTFILE`, `LOCK IN SHARE MODE`), nesting and operator counts.
pub(crate) fn prescan(
    sql: &str,
    tokens: &[TokenWithSpan],
    dialect: Dialect,
    max_depth: usize,
) -> Vec<Finding> {
    let mut findings = Vec::new();

    if dialect.runs_executable_comments() && sql.contains("/*!") {
        // A comment that MySQL executes either stays a comment token or is expanded by the tokenizer into
        // tokens that start where the comment starts; a `/*!` inside a string starts no token at all.
        let starts = executable_comment_starts(sql);
        let hit = tokens.iter().find(|t| {
            starts.contains(&t.span.start)
                || matches!(&t.token, Token::Whitespace(Whitespace::MultiLineComment(c)) if c.starts_with('!'))
        });
        if let Some(t) = hit {
            findings.push(Finding::deny(
                rules::EXECUTABLE_COMMENT,
                "MySQL runs `/*! … */` comments as code, so they are not allowed. Write that SQL without the \
                 comment markers, or remove it."
                    .to_owned(),
                span_of(t),
            ));
        }
    }

    let significant: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut depth = 0usize;
    let mut deepest: Option<&TokenWithSpan> = None;
    let mut operators = 0usize;
    for (i, t) in significant.iter().enumerate() {
        let next = |k: usize| significant.get(i + k).map(|t| &t.token);
        match &t.token {
            Token::LParen => {
                depth += 1;
                if depth > max_depth && deepest.is_none() {
                    deepest = Some(t);
                }
            }
            Token::RParen => depth = depth.saturating_sub(1),
            tok if is_keyword(tok, Keyword::INTO)
                && next(1).is_some_and(|n| is_word(n, "OUTFILE") || is_word(n, "DUMPFILE")) =>
            {
                findings.push(Finding::deny(
                    rules::INTO_OUTFILE,
                    "`INTO OUTFILE` / `INTO DUMPFILE` writes files on the database server and is not allowed. \
                     Remove the INTO clause; results are returned to you directly."
                        .to_owned(),
                    span_of(t),
                ));
            }
            tok if (is_keyword(tok, Keyword::LOCK)
                && next(1).is_some_and(|n| is_keyword(n, Keyword::IN))
                && next(2).is_some_and(|n| is_keyword(n, Keyword::SHARE)))
                || (is_keyword(tok, Keyword::FOR)
                    && next(1)
                        .is_some_and(|n| is_keyword(n, Keyword::NO) || is_keyword(n, Keyword::KEY))
                    && next(2)
                        .is_some_and(|n| is_keyword(n, Keyword::KEY) || is_keyword(n, Keyword::SHARE))) =>
            {
                // PostgreSQL's `FOR NO KEY UPDATE` and `FOR KEY SHARE`, and MySQL's `LOCK IN SHARE MODE`, are
                // locking reads the parser does not know.
                findings.push(locking_read(span_of(t)));
            }
            tok if is_operator(tok) => operators += 1,
            _ => {}
        }
    }
    if let Some(t) = deepest {
        findings.push(too_deep(max_depth, span_of(t)));
    }
    if operators > MAX_OPERATORS {
        findings.push(Finding::deny(
            rules::TOO_COMPLEX,
            format!(
                "The SQL holds {operators} operators; at most {MAX_OPERATORS} are accepted. Shorten it, e.g. \
                 replace long OR chains with `IN (…)` lists or a join against VALUES."
            ),
            None,
        ));
    }
    findings
}

pub(crate) fn locking_read(span: Option<Span>) -> Finding {
    Finding::deny(
        rules::LOCKING_READ,
        "Locking reads (`FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`) lock rows and are not allowed. \
         Remove the locking clause."
            .to_owned(),
        span,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn check(sql: &str, dialect: Dialect, expected: &[&str]) {
        let found: Vec<&str> = match tokenize(sql, dialect) {
            Ok(tokens) => prescan(sql, &tokens, dialect, 8).iter().map(|f| f.rule).collect(),
            Err(f) => vec![f.rule],
        };
        assert_eq!(found, expected, "{sql}");
    }

    #[test]
    fn prescan_finds_what_the_parser_cannot() {
        check("SELECT 1", Dialect::MySql, &[]);
        check(
            "SELECT 1 /*! , SLEEP(5) */",
            Dialect::MySql,
            &[rules::EXECUTABLE_COMMENT],
        );
        check(
            "SELECT 1 /*!50000 , SLEEP(5) */",
            Dialect::MySql,
            &[rules::EXECUTABLE_COMMENT],
        );
        check("SELECT 1 /*!*/", Dialect::MySql, &[]);
        check("SELECT '/*! x */'", Dialect::MySql, &[]);
        check("SELECT 1 -- /*! x */", Dialect::MySql, &[]);
        check("SELECT 1 /*! x */", Dialect::PostgreSql, &[]);
        check(
            "SELECT 1 /*! x */",
            Dialect::Unknown,
            &[rules::EXECUTABLE_COMMENT],
        );
        check(
            "SELECT * FROM t INTO OUTFILE '/tmp/x'",
            Dialect::MySql,
            &[rules::INTO_OUTFILE],
        );
        check(
            "SELECT * INTO dumpfile '/tmp/x' FROM t",
            Dialect::MySql,
            &[rules::INTO_OUTFILE],
        );
        check(
            "SELECT * FROM t LOCK IN SHARE MODE",
            Dialect::MySql,
            &[rules::LOCKING_READ],
        );
        check(
            "SELECT ((((((((((1))))))))))",
            Dialect::PostgreSql,
            &[rules::TOO_DEEP],
        );
        check("SELECT 'unterminated", Dialect::PostgreSql, &[rules::PARSE_ERROR]);
        let chain = vec!["a = 1"; MAX_OPERATORS].join(" OR ");
        check(
            &format!("SELECT * FROM t WHERE {chain}"),
            Dialect::PostgreSql,
            &[rules::TOO_COMPLEX],
        );
        let long = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
        check(&long, Dialect::PostgreSql, &[rules::TOO_LARGE]);
    }

    #[test]
    fn parse_errors_carry_the_position() {
        let f = match parse_sql("SELECT 1 FROM", Dialect::PostgreSql, 64) {
            Err(f) => f,
            Ok(_) => panic!("must not parse"),
        };
        assert_eq!(f.rule, rules::PARSE_ERROR);
        assert_eq!(f.span, Some(Span { line: 1, column: 14 }));
        assert!(f.message.contains("line 1, column 14"), "{}", f.message);
    }
}
