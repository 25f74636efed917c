//! How values read from a warehouse are shown in text: one cell as an agent would type it, one line of
//! bounded length.

/// A JSON cell as an agent would type it: strings bare, everything else as JSON.
pub fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One line, at most `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > max {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        line
    }
}

/// A date value as text, exactly as the engine returned it.
pub(super) fn value_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        other => Some(cell(other)),
    }
}
