//! Compact text renderings of tool results, written for an LLM to read: aligned tables, short footers and
//! explicit notices when anything was left out.

use std::fmt::Write as _;

use serde_json::Value;

use sluice_core::ops::schema::TableDescription;
use sluice_core::service::{ErrorKind, QueryOutput, ToolError};

/// Rows and characters shown as text; the structured result always carries every row.
const TEXT_MAX_ROWS: usize = 200;
const TEXT_MAX_CHARS: usize = 24_000;
/// Long cells are shortened in the text rendering only.
const CELL_MAX_CHARS: usize = 60;

pub fn error(tool: &str, e: &ToolError) -> String {
    let mut text = match e.kind {
        ErrorKind::Denied => format!(
            "Refused by governance [{}]: {}",
            e.rule.as_deref().unwrap_or("policy"),
            e.message
        ),
        ErrorKind::Invalid => format!("Error in {tool}: {}", e.message),
        ErrorKind::Failed => format!("{tool} failed: {}", e.message),
        ErrorKind::Cancelled => format!("{tool} cancelled: {}", e.message),
    };
    if let (Some(line), Some(column)) = (e.line, e.column) {
        let _ = write!(text, " (line {line}, column {column})");
    }
    text
}

pub fn cell_text(v: &Value) -> String {
    let s = match v {
        Value::Null => return "NULL".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    // Most cells are short single-line values: only pay for the rewrite when it changes something.
    let s = if s.contains(['\n', '\r', '\t']) {
        s.replace(['\n', '\r', '\t'], " ")
    } else {
        s
    };
    if s.len() > CELL_MAX_CHARS && s.chars().count() > CELL_MAX_CHARS {
        let mut cut: String = s.chars().take(CELL_MAX_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        s
    }
}

pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let width = |c: &String| if c.is_ascii() { c.len() } else { c.chars().count() };
    let mut widths: Vec<usize> = header.iter().map(width).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(c));
            }
        }
    }
    let line_len = widths.iter().map(|w| w + 3).sum::<usize>();
    let mut out = String::with_capacity(line_len * (rows.len() + 2));
    let push_line = |out: &mut String, cells: &[String]| {
        let start = out.len();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str(" | ");
            }
            out.push_str(c);
            let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(width(c));
            out.extend(std::iter::repeat_n(' ', pad));
        }
        // No trailing blanks on a line (the last column's padding, or empty trailing cells).
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
    };
    push_line(&mut out, header);
    out.push('\n');
    for (i, w) in widths.iter().enumerate() {
        if i > 0 {
            out.push_str("-+-");
        }
        out.extend(std::iter::repeat_n('-', *w));
    }
    for row in rows {
        out.push('\n');
        push_line(&mut out, row);
    }
    out
}

pub fn query(q: &QueryOutput) -> String {
    let header: Vec<String> = q.columns.iter().map(|c| c.name.clone()).collect();
    let mut shown = Vec::new();
    let mut chars = 0;
    for row in q.rows.iter().take(TEXT_MAX_ROWS) {
        let cells: Vec<String> = row.iter().map(cell_text).collect();
        chars += cells.iter().map(|c| c.len() + 3).sum::<usize>();
        if chars > TEXT_MAX_CHARS && !shown.is_empty() {
            break;
        }
        shown.push(cells);
    }
    let mut text = if q.columns.is_empty() {
        String::new()
    } else {
        table(&header, &shown)
    };
    if shown.len() < q.rows.len() {
        let _ = write!(
            text,
            "\n[display cut: the text shows the first {} of {} rows; every row is in the structured result. \
             Aggregate or filter to read the rest as text.]",
            shown.len(),
            q.rows.len()
        );
    }
    if q.truncated {
        let _ = write!(
            text,
            "\n[TRUNCATED: the query returned more than {} rows and was cut at row_limit. Do not treat these rows \
             as complete: add WHERE filters, aggregate, or page with ORDER BY … LIMIT/OFFSET.]",
            q.row_limit
        );
    }
    let _ = write!(text, "\n[{} rows, {:.1} ms]", q.row_count, q.elapsed_ms);
    text.trim_start().to_owned()
}

pub fn describe(d: &TableDescription) -> String {
    let mut text = format!("{} {}.{}", d.kind, d.schema, d.name);
    if let Some(rows) = d.row_estimate {
        let _ = write!(text, " (~{rows} rows)");
    }
    if let Some(comment) = &d.comment {
        let _ = write!(text, " — {comment}");
    }
    text.push('\n');
    let header = ["column", "type", "null", "key", "default", "comment"]
        .map(str::to_owned)
        .to_vec();
    let rows: Vec<Vec<String>> = d
        .columns
        .iter()
        .map(|c| {
            let fk = d
                .foreign_keys
                .iter()
                .find(|fk| fk.columns.len() == 1 && fk.columns.first() == Some(&c.name))
                .map(|fk| format!("FK → {}({})", fk.references, fk.referenced_columns.join(", ")));
            let key = match (c.primary_key, fk) {
                (true, Some(fk)) => format!("PK, {fk}"),
                (true, None) => "PK".to_owned(),
                (false, Some(fk)) => fk,
                (false, None) => String::new(),
            };
            vec![
                c.name.clone(),
                c.data_type.clone(),
                if c.nullable { "yes" } else { "no" }.to_owned(),
                key,
                c.default.clone().unwrap_or_default(),
                c.comment.clone().unwrap_or_default(),
            ]
        })
        .collect();
    text.push_str(&table(&header, &rows));
    for fk in d.foreign_keys.iter().filter(|fk| fk.columns.len() > 1) {
        let _ = write!(
            text,
            "\nFK ({}) → {}({})",
            fk.columns.join(", "),
            fk.references,
            fk.referenced_columns.join(", ")
        );
    }
    if !d.primary_key.is_empty() {
        let _ = write!(text, "\nPrimary key: ({})", d.primary_key.join(", "));
    }
    let _ = write!(text, "\n[{} columns]", d.columns.len());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;
    use sluice_core::service::ColumnOut;

    fn q(rows: Vec<Vec<Value>>, truncated: bool) -> QueryOutput {
        QueryOutput {
            connection: "demo".into(),
            columns: vec![
                ColumnOut {
                    name: "id".into(),
                    type_name: "INTEGER".into(),
                },
                ColumnOut {
                    name: "name".into(),
                    type_name: "VARCHAR".into(),
                },
            ],
            row_count: rows.len() as u64,
            rows,
            truncated,
            row_limit: 2,
            elapsed_ms: 1.25,
            sql_executed: "SELECT 1".into(),
        }
    }

    #[test]
    fn query_table_and_footer() {
        let text = query(&q(
            vec![vec![json!(1), json!("Ada")], vec![json!(22), Value::Null]],
            false,
        ));
        assert_eq!(
            text,
            "id | name\n---+-----\n1  | Ada\n22 | NULL\n[2 rows, 1.2 ms]"
        );
    }

    #[test]
    fn truncation_is_announced() {
        let text = query(&q(
            vec![vec![json!(1), json!("a")], vec![json!(2), json!("b")]],
            true,
        ));
        assert!(
            text.contains("[TRUNCATED: the query returned more than 2 rows"),
            "{text}"
        );
        assert!(text.ends_with("[2 rows, 1.2 ms]"), "{text}");
    }

    #[test]
    fn long_cells_are_shortened() {
        let long = "x".repeat(100);
        let text = query(&q(vec![vec![json!(1), json!(long)]], false));
        assert!(text.contains(&format!("{}…", "x".repeat(59))), "{text}");
    }

    #[test]
    fn errors_carry_rule_and_position() {
        let e = ToolError {
            kind: ErrorKind::Denied,
            rule: Some("parse_error".into()),
            message: "bad".into(),
            line: Some(1),
            column: Some(8),
        };
        assert_eq!(
            error("query_database", &e),
            "Refused by governance [parse_error]: bad (line 1, column 8)"
        );
    }
}
