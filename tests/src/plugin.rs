//! The plugin's drift check: every tool and parameter the skills and agents under `skills/` name must exist
//! in the running server's `tools/list`. Tools are named as `mcp__sluice__<tool>` (or the prefix Claude
//! Code gives a plugin's server), as backticked bare names, or as the calls of example blocks
//! (`tool(param="…", other=1)` lines in fenced code); parameters as the keywords of those calls, or
//! backticked beside a tool the same paragraph names.

use std::collections::{BTreeMap, BTreeSet};

/// The server's tools and each one's parameter names.
pub type Catalogue = BTreeMap<String, BTreeSet<String>>;

/// The prefixes Claude Code puts before a tool of the `sluice` server: added with `claude mcp add`, and
/// declared by the plugin (whose server it names `plugin:sluice:sluice`).
const PREFIXES: [&str; 2] = ["mcp__plugin_sluice_sluice__", "mcp__sluice__"];

/// Every name in `text` (a SKILL.md or agent file, called `file` in the messages) that `tools` does not
/// have, one message each.
pub fn problems(file: &str, text: &str, tools: &Catalogue) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in PREFIXES {
        for (at, _) in text.match_indices(prefix) {
            let name = identifier(&text[at + prefix.len()..]);
            if !tools.contains_key(name) {
                out.push(format!("{file}: {prefix}{name} names no tool"));
            }
        }
    }
    let body = without_frontmatter(text);
    let mut prose = String::new();
    let mut fenced = false;
    for line in body.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            prose.push('\n');
            continue;
        }
        if fenced {
            if let Some((tool, keywords)) = call(line) {
                match tools.get(tool) {
                    None => out.push(format!(
                        "{file}: the example call `{}` names no tool",
                        line.trim()
                    )),
                    Some(params) => {
                        for k in keywords {
                            if !params.contains(k) {
                                out.push(format!(
                                    "{file}: {tool} has no parameter {k} (in `{}`)",
                                    line.trim()
                                ));
                            }
                        }
                    }
                }
            }
            prose.push('\n');
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    for paragraph in prose.split("\n\n") {
        let named: Vec<&str> = words(paragraph).filter(|w| tools.contains_key(*w)).collect();
        for span in paragraph.split('`').skip(1).step_by(2) {
            let word = identifier(span);
            // Only spans that are one identifier, alone or as `name=value`, are names of ours: SQL, paths and
            // values in backticks are left alone.
            let rest = &span[word.len()..];
            if word.is_empty() || !(rest.is_empty() || rest.starts_with('=')) || tools.contains_key(word) {
                continue;
            }
            let of_named_tool = named
                .iter()
                .any(|t| tools.get(*t).is_some_and(|p| p.contains(word)));
            if !of_named_tool {
                out.push(format!(
                    "{file}: `{span}` is neither a tool nor a parameter of a tool its paragraph names ({})",
                    if named.is_empty() {
                        "none".to_owned()
                    } else {
                        named.join(", ")
                    }
                ));
            }
        }
    }
    out
}

fn without_frontmatter(text: &str) -> &str {
    text.strip_prefix("---\n")
        .and_then(|rest| rest.find("\n---\n").map(|end| &rest[end + 5..]))
        .unwrap_or(text)
}

/// The leading `[a-z0-9_]` identifier of `s` (lower case only: tool and parameter names are).
fn identifier(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(s.len());
    let word = &s[..end];
    if word.starts_with(|c: char| c.is_ascii_digit()) {
        ""
    } else {
        word
    }
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// An example call line `name(k=v, k2="…")`: the name and its keywords (at the call's own depth, outside
/// string literals). Anything else is output or code, not a call.
fn call(line: &str) -> Option<(&str, Vec<&str>)> {
    let line = line.trim();
    let name = identifier(line);
    let args = line[name.len()..].strip_prefix('(')?.strip_suffix(')')?;
    if name.is_empty() {
        return None;
    }
    let mut keywords = Vec::new();
    let (mut depth, mut quote, mut escaped) = (0usize, None::<char>, false);
    let mut start = Some(0);
    for (i, c) in args.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => start = Some(i + 1),
            '=' if depth == 0 => {
                if let Some(s) = start.take() {
                    let key = args[s..i].trim();
                    if !key.is_empty() {
                        keywords.push(key);
                    }
                }
            }
            _ => {}
        }
    }
    Some((name, keywords))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        let mut tools = Catalogue::new();
        tools.insert(
            "query_database".to_owned(),
            ["connection_name", "sql", "row_limit"].map(str::to_owned).into(),
        );
        tools.insert(
            "list_tables".to_owned(),
            ["connection_name"].map(str::to_owned).into(),
        );
        tools
    }

    #[test]
    fn real_names_pass_and_invented_ones_are_named() {
        let good = "---\nname: x\narguments: [question]\n---\n\
            Run `query_database` with `connection_name` and `row_limit=5`; see `orders.status`.\n\n\
            ```\nquery_database(connection_name=\"demo\", sql=\"SELECT a = 1, f(b) FROM t\", row_limit=5)\n```\n\n\
            Agents call mcp__sluice__list_tables or mcp__plugin_sluice_sluice__query_database.\n";
        assert_eq!(problems("good.md", good, &catalogue()), Vec::<String>::new());
        let bad = "Use `run_query` then `list_tables` with `sql`.\n\n\
            ```\nquery_database(connection=\"demo\", sql=\"x\")\nexplore_everything(connection_name=\"demo\")\n```\n\n\
            Call mcp__sluice__drop_table.\n";
        assert_eq!(
            problems("bad.md", bad, &catalogue()),
            [
                "bad.md: mcp__sluice__drop_table names no tool",
                "bad.md: query_database has no parameter connection (in `query_database(connection=\"demo\", sql=\"x\")`)",
                "bad.md: the example call `explore_everything(connection_name=\"demo\")` names no tool",
                "bad.md: `run_query` is neither a tool nor a parameter of a tool its paragraph names (list_tables)",
                "bad.md: `sql` is neither a tool nor a parameter of a tool its paragraph names (list_tables)",
            ]
        );
    }
}
