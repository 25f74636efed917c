//! Query results as CSV (RFC 4180), the form execute_code hands them to sandboxed code.
//!
//! NULL is an empty unquoted field and an empty string is `""`, so that readers which distinguish the two
//! (DuckDB with `allow_quoted_nulls=false`) can; pandas reads both as missing.

use serde_json::Value;

/// One header line with the column names, then one line per row.
pub fn encode(columns: &[String], rows: &[Vec<Value>]) -> Vec<u8> {
    let mut out = String::new();
    let header: Vec<String> = columns.iter().map(|c| field(Some(c))).collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = row.iter().map(cell).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => field(Some(s)),
        // Arrays and objects (JSON columns) travel as their JSON text.
        other => field(Some(&other.to_string())),
    }
}

fn field(text: Option<&str>) -> String {
    let text = text.unwrap_or_default();
    let needs_quotes = text.is_empty()
        || text.contains([',', '"', '\n', '\r'])
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace);
    if needs_quotes {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn quoting_and_nulls() {
        let columns = vec!["id".to_owned(), "name, full".to_owned(), "note".to_owned()];
        let rows = vec![
            vec![json!(1), json!("Ann"), Value::Null],
            vec![json!(2.5), json!("say \"hi\""), json!("")],
            vec![json!(true), json!("two\nlines"), json!({"a": [1]})],
            vec![json!(-3), json!(" padded"), json!("12.50")],
        ];
        let text = String::from_utf8(encode(&columns, &rows)).unwrap();
        assert_eq!(
            text,
            "id,\"name, full\",note\n\
             1,Ann,\n\
             2.5,\"say \"\"hi\"\"\",\"\"\n\
             true,\"two\nlines\",\"{\"\"a\"\":[1]}\"\n\
             -3,\" padded\",12.50\n"
        );
    }
}
