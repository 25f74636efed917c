//! Governance of DuckDB statements that sqlparser cannot parse, on DuckDB's own parse tree.
//!
//! DuckDB's grammar has forms sqlparser does not know (list comprehensions, `USING SAMPLE n ROWS`,
//! `UNPIVOT … INTO NAME … VALUE …`, …). Refusing them as unparsable refuses valid analytics, so for a DuckDB
//! connection the gateway asks DuckDB's parser for the statement's tree (`json_serialize_sql`, which
//! serialises only SELECT statements) and governs that tree here. The rule stays: what cannot be proven safe
//! is refused.
//!
//! - Exactly one statement, and it must be a query: DuckDB serialises nothing else.
//! - Every object of the tree is visited, whatever its node type, so a function call is judged wherever it
//!   sits (lambdas, list comprehensions, PIVOT, samples, table functions): the same per-dialect deny list and
//!   policy entries as the sqlparser path.
//! - Base tables: file paths and string names (`FROM 'x.csv'`, replacement scans) are refused; the policy's
//!   table and schema rules apply, CTE names in scope are exempt from the allow lists but not the deny list.
//! - Columns: with denied columns in the policy, a reference whose name is a denied column's, and any star
//!   or `COLUMNS(…)`, are refused (there is no alias resolution on this path: it refuses more, never less).
//! - The row limit wraps the original text: `SELECT * FROM (\n<sql>\n) AS sluice_limited LIMIT n`. The caller
//!   has DuckDB parse the wrapped text and [`wraps_the_same_query`] checks that the subquery is the tree
//!   that was governed, so no comment or quoting trick can make the text that runs differ from it.

use serde_json::Value;

use crate::Dialect;
use crate::functions::{self, FunctionVerdict};
use crate::names::{Entries, display};
use crate::policy::Policy;
use crate::rules;
use crate::verdict::{Decision, Finding, StatementKind, Verdict};

/// Extensions DuckDB's replacement scans read as files: `FROM name.parquet` is the file when no schema
/// `name` holds a table `parquet`.
const FILE_EXTENSIONS: &[&str] = &[
    "csv", "tsv", "txt", "parquet", "json", "jsonl", "ndjson", "gz", "zst", "arrow", "ipc", "xlsx", "db",
    "duckdb", "sqlite", "avro",
];

/// The alias of the wrapping subquery.
const WRAPPER_ALIAS: &str = "sluice_limited";

fn deny(rule: &'static str, message: String) -> Verdict {
    Verdict {
        decision: Decision::Deny,
        findings: vec![Finding::deny(rule, message, None)],
    }
}

/// The text to run: `sql` without trailing semicolons, wrapped in the row limit. Newlines around the
/// original keep a trailing line comment from swallowing the wrapper's end.
pub fn wrap_with_limit(sql: &str, limit: u64) -> String {
    let body = sql
        .trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    format!("SELECT * FROM (\n{body}\n) AS {WRAPPER_ALIAS} LIMIT {limit}")
}

/// Governs `sql` given DuckDB's serialisation of it (`json_serialize_sql(sql)`), under `policy`, with at
/// most `limit` rows. Allowed statements come back wrapped (see [`wrap_with_limit`]).
pub fn govern_duckdb_tree(sql: &str, tree: &str, policy: &Policy, limit: u64) -> Verdict {
    let Ok(tree) = serde_json::from_str::<Value>(tree) else {
        return deny(
            rules::INTERNAL_ERROR,
            "DuckDB's parse tree of this statement could not be read; it was not run.".to_owned(),
        );
    };
    if tree["error"].as_bool() != Some(false) {
        let message = tree["error_message"].as_str().unwrap_or("unknown error");
        return if tree["error_type"].as_str() == Some("not implemented") {
            deny(
                rules::STATEMENT_NOT_ALLOWED,
                "Only read-only queries (SELECT) are allowed on this connection; DuckDB reads this statement \
                 as something else. Rewrite it as a SELECT."
                    .to_owned(),
            )
        } else {
            deny(
                rules::PARSE_ERROR,
                format!("DuckDB cannot parse this statement: {message}"),
            )
        };
    }
    let statements = tree["statements"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let node = match statements {
        [] => return deny(rules::EMPTY_STATEMENT, "The SQL holds no statement.".to_owned()),
        [one] => &one["node"],
        _ => {
            return deny(
                rules::MULTIPLE_STATEMENTS,
                "Only one statement per call is accepted. Send each statement separately.".to_owned(),
            );
        }
    };
    let mut walker = TreeWalk::new(policy, sql);
    walker.visit(node);
    walker.finish();
    if let Some(finding) = walker.denial {
        return Verdict {
            decision: Decision::Deny,
            findings: vec![finding],
        };
    }
    Verdict {
        decision: Decision::Allow {
            sql: wrap_with_limit(sql, limit),
            rewritten: true,
            statement: StatementKind::Query,
            limit_applied: Some(limit),
        },
        findings: vec![Finding {
            rule: rules::ROW_LIMIT,
            severity: crate::Severity::Info,
            message: format!(
                "DuckDB-only syntax: governed on DuckDB's own parse tree, and limited to {limit} rows by a \
                 wrapping query."
            ),
            span: None,
        }],
    }
}

/// Whether `wrapped_tree` (DuckDB's serialisation of [`wrap_with_limit`]'s text) is exactly the wrapper
/// around `original_tree`: one statement selecting `*` from one subquery whose tree equals the original's
/// (source positions aside), limited by a constant.
pub fn wraps_the_same_query(original_tree: &str, wrapped_tree: &str) -> bool {
    let (Ok(original), Ok(wrapped)) = (
        serde_json::from_str::<Value>(original_tree),
        serde_json::from_str::<Value>(wrapped_tree),
    ) else {
        return false;
    };
    let [one] = wrapped["statements"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    else {
        return false;
    };
    let [original] = original["statements"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    else {
        return false;
    };
    let outer = &one["node"];
    let from = &outer["from_table"];
    let star_only =
        matches!(outer["select_list"].as_array().map(Vec::as_slice), Some([star]) if star["class"] == "STAR");
    let limited = outer["modifiers"]
        .as_array()
        .is_some_and(|m| m.len() == 1 && m[0]["type"] == "LIMIT_MODIFIER");
    outer["type"] == "SELECT_NODE"
        && star_only
        && limited
        && outer["where_clause"].is_null()
        && from["type"] == "SUBQUERY"
        && from["alias"] == WRAPPER_ALIAS
        && without_locations(&from["subquery"]["node"]) == without_locations(&original["node"])
}

/// A node's name as lowercased parts, outermost first, from its `keys` fields; empty parts are left out.
fn name_parts(node: &Value, keys: [&str; 3]) -> Vec<String> {
    keys.iter()
        .filter_map(|k| node[*k].as_str())
        .filter(|p| !p.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The tree without source positions, which differ between the original and the wrapped text.
fn without_locations(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with("query_location"))
                .map(|(k, v)| (k.clone(), without_locations(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_locations).collect()),
        other => other.clone(),
    }
}

/// A base table the statement reads.
struct TableSeen {
    parts: Vec<String>,
    alias: Option<String>,
    /// Its columns renamed (`customers AS c(a, b)`), which hides their names.
    renamed: bool,
}

/// The walk over every object of one statement's tree; it stops at the first refusal. Column facts are
/// gathered on the way and judged at the end ([`TreeWalk::finish`]), once every table read is known.
struct TreeWalk<'p> {
    policy: &'p Policy,
    sql: &'p str,
    entries: Entries,
    /// `(table parts, column)` of the policy's denied columns.
    denied_columns: Vec<(Vec<String>, String)>,
    /// CTE names in scope, innermost last.
    ctes: Vec<Vec<String>>,
    depth: usize,
    denial: Option<Finding>,
    tables: Vec<TableSeen>,
    /// Every column reference's name parts (also a method call's qualifiers: `c.email.upper()`).
    columns: Vec<Vec<String>>,
    /// The tables each enclosing SELECT reads directly (its FROM, through joins and PIVOT sources, not
    /// into subqueries or CTEs, whose own SELECTs are judged themselves), innermost last.
    frames: Vec<Vec<Vec<String>>>,
    /// Every construct that may reach every column of its SELECT's tables (`*`, `COLUMNS(…)`, `#n`):
    /// what it is, those tables, and the columns it excludes.
    reaches_all: Vec<ReachesAll>,
}

/// A construct that may reach every column of the tables its SELECT reads (see [`TreeWalk::reaches_all`]).
struct ReachesAll {
    what: &'static str,
    tables: Vec<Vec<String>>,
    excluded: Vec<String>,
}

impl<'p> TreeWalk<'p> {
    fn new(policy: &'p Policy, sql: &'p str) -> TreeWalk<'p> {
        let denied_columns = crate::names::denied_columns(policy);
        TreeWalk {
            policy,
            sql,
            entries: Entries::new(policy),
            denied_columns,
            ctes: Vec::new(),
            depth: 0,
            denial: None,
            tables: Vec::new(),
            columns: Vec::new(),
            frames: Vec::new(),
            reaches_all: Vec::new(),
        }
    }

    /// Judges the column facts against the tables read: where a table has denied columns, nothing may reach
    /// them by name, by position, through `*`/`COLUMNS(…)`/SUMMARIZE, by renaming the table's columns, or
    /// as the whole row (the table's name or alias used as a value).
    fn finish(&mut self) {
        if self.denial.is_some() || self.denied_columns.is_empty() {
            return;
        }
        let mut denied_names: Vec<&str> = Vec::new();
        let mut guarded: Vec<&TableSeen> = Vec::new();
        for t in &self.tables {
            let mut hit = false;
            for (table, column) in &self.denied_columns {
                if table.is_empty() || crate::names::entry_matches(table, &t.parts) {
                    hit = true;
                    denied_names.push(column);
                }
            }
            if hit {
                guarded.push(t);
            }
        }
        if guarded.is_empty() {
            return;
        }
        let policy_list = self.policy.denied_columns.join(", ");
        let entries = &self.denied_columns;
        let star = self.reaches_all.iter().find_map(|r| {
            let (what, excluded) = (r.what, &r.excluded);
            r.tables.iter().find_map(|t| {
                let denied: Vec<&String> = entries
                    .iter()
                    .filter(|(table, _)| table.is_empty() || crate::names::entry_matches(table, t))
                    .map(|(_, column)| column)
                    .collect();
                (!denied.is_empty() && !denied.iter().all(|d| excluded.contains(d)))
                    .then(|| (what, display(t)))
            })
        });
        let refusal = if let Some((what, table)) = star {
            Some(format!(
                "{what} over `{table}` may reach a column this connection's policy denies ({policy_list}). \
                 Name the columns you need, or exclude the denied ones."
            ))
        } else if let Some(t) = guarded.iter().find(|t| t.renamed) {
            Some(format!(
                "Renaming the columns of `{}` could hide one this connection's policy denies ({policy_list}). \
                 Name the columns you need without renaming the table's.",
                display(&t.parts)
            ))
        } else if let Some(name) = self
            .columns
            .iter()
            .flatten()
            .find(|part| denied_names.contains(&part.as_str()))
        {
            Some(format!(
                "Column `{name}` is denied by this connection's policy ({policy_list}). Query other columns."
            ))
        } else {
            let row_names: Vec<&str> = guarded
                .iter()
                .flat_map(|t| {
                    t.parts
                        .last()
                        .map(String::as_str)
                        .into_iter()
                        .chain(t.alias.as_deref())
                })
                .collect();
            self.columns
                .iter()
                .filter_map(|c| c.last())
                .find(|last| row_names.contains(&last.as_str()))
                .map(|row| {
                    format!(
                        "`{row}` as a value is the whole row of a table with a denied column ({policy_list}). \
                         Name the columns you need."
                    )
                })
        };
        if let Some(message) = refusal {
            self.refuse(rules::DENIED_COLUMN, message);
        }
    }

    fn refuse(&mut self, rule: &'static str, message: String) {
        if self.denial.is_none() {
            self.denial = Some(Finding::deny(rule, message, None));
        }
    }

    fn visit(&mut self, v: &Value) {
        if self.denial.is_some() {
            return;
        }
        self.depth += 1;
        // DuckDB's own parser bounds nesting far above this; the policy's limit applies as on the other path
        // (one object level is about one parser recursion level).
        if self.depth > self.policy.max_depth.saturating_mul(4) {
            self.refuse(
                rules::TOO_DEEP,
                "The statement nests deeper than this connection allows. Flatten it with CTEs.".to_owned(),
            );
        } else {
            match v {
                Value::Object(map) => {
                    let scoped = self.enter_ctes(v);
                    let select = v["type"] == "SELECT_NODE";
                    if select {
                        let mut direct = Vec::new();
                        self.direct_tables(&v["from_table"], &mut direct);
                        self.frames.push(direct);
                    }
                    self.judge(v);
                    for child in map.values() {
                        self.visit(child);
                    }
                    if select {
                        self.frames.pop();
                    }
                    if scoped {
                        self.ctes.pop();
                    }
                }
                Value::Array(items) => {
                    for item in items {
                        self.visit(item);
                    }
                }
                _ => {}
            }
        }
        self.depth -= 1;
    }

    /// Brings a node's CTE names into scope for its subtree; returns whether it had any.
    fn enter_ctes(&mut self, node: &Value) -> bool {
        let Some(map) = node["cte_map"]["map"].as_array() else {
            return false;
        };
        let names: Vec<String> = map
            .iter()
            .filter_map(|e| e["key"].as_str())
            .map(str::to_lowercase)
            .collect();
        if names.is_empty() {
            return false;
        }
        self.ctes.push(names);
        true
    }

    /// The base tables a FROM reads directly: through joins and PIVOT/UNPIVOT sources, not into subqueries,
    /// and not CTEs (a CTE's body is a SELECT judged on its own).
    fn direct_tables(&self, from: &Value, out: &mut Vec<Vec<String>>) {
        match from["type"].as_str() {
            Some("BASE_TABLE") => {
                let parts = name_parts(from, ["catalog_name", "schema_name", "table_name"]);
                if !(parts.is_empty() || parts.len() == 1 && self.is_cte(&parts[0])) {
                    out.push(parts);
                }
            }
            Some("SUBQUERY") => {}
            _ => {
                for key in ["left", "right", "source"] {
                    if from[key].is_object() {
                        self.direct_tables(&from[key], out);
                    }
                }
            }
        }
    }

    fn is_cte(&self, name: &str) -> bool {
        self.ctes.iter().flatten().any(|c| c == name)
    }

    /// Judges one object by what it is; children are visited by the caller.
    fn judge(&mut self, node: &Value) {
        // Anything naming a function is judged as a call, whatever its node class (FUNCTION, WINDOW, …).
        if node["function_name"].is_string() {
            self.function(node);
        }
        match (node["class"].as_str(), node["type"].as_str()) {
            (Some("STAR"), _) => {
                let what = if node["columns"].as_bool() == Some(true) {
                    "`COLUMNS(…)`"
                } else {
                    "`*`"
                };
                let excluded: Vec<String> = node["exclude_list"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.as_str().or_else(|| e["column"].as_str()))
                    .chain(
                        node["qualified_exclude_list"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|e| e["column"].as_str()),
                    )
                    .map(str::to_lowercase)
                    .collect();
                let tables = self.frames.last().cloned().unwrap_or_default();
                self.reaches_all.push(ReachesAll {
                    what,
                    tables,
                    excluded,
                });
            }
            (Some("POSITIONAL_REFERENCE"), _) => {
                let tables = self.frames.last().cloned().unwrap_or_default();
                self.reaches_all.push(ReachesAll {
                    what: "A positional reference (`#n`)",
                    tables,
                    excluded: Vec::new(),
                });
            }
            (Some("COLUMN_REF"), _) => {
                let parts = node["column_names"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_lowercase)
                    .collect();
                self.columns.push(parts);
            }
            (None, Some("BASE_TABLE")) => self.table(node),
            _ => {}
        }
    }

    fn function(&mut self, node: &Value) {
        let Some(name) = node["function_name"].as_str() else {
            return;
        };
        let parts = name_parts(node, ["catalog", "schema", "function_name"]);
        // `c.email.upper()` is a method call on a column: DuckDB's parser puts `c` and `email` where a
        // catalog and schema go, so the qualifiers are column facts too.
        if parts.len() > 1 {
            self.columns.push(parts[..parts.len() - 1].to_vec());
        }
        match functions::judge(&parts, Dialect::DuckDb, &self.entries) {
            FunctionVerdict::Allowed => {}
            FunctionVerdict::BuiltIn(why) => self.refuse(why.rule(), why.message(name)),
            FunctionVerdict::Policy => self.refuse(
                rules::DENIED_FUNCTION,
                format!(
                    "`{name}` is denied by this connection's policy. Rewrite the query without it, or ask an \
                     administrator to allow it."
                ),
            ),
        }
    }

    fn table(&mut self, node: &Value) {
        let parts = name_parts(node, ["catalog_name", "schema_name", "table_name"]);
        let Some(name) = parts.last().cloned() else {
            return;
        };
        // DuckDB reads a table name that looks like a file (`FROM 'data.csv'`, `FROM "x/y.parquet"`) as that
        // file when no such table exists: a name with a path separator, an extension, a scheme or a glob.
        let quoted_as_string = node["query_location"]
            .as_u64()
            .and_then(|at| usize::try_from(at).ok())
            .and_then(|at| self.sql.as_bytes().get(at))
            == Some(&b'\'');
        if quoted_as_string {
            return self.refuse(
                rules::STRING_LITERAL_TABLE,
                format!(
                    "'{name}' is a string used as a table, which DuckDB reads as a file; reading files is not \
                     allowed. Query a table of the connection instead."
                ),
            );
        }
        // `FROM backup.parquet` reads the file `backup.parquet` when no schema `backup` holds such a table.
        let file_extension = parts.len() == 2 && FILE_EXTENSIONS.contains(&name.as_str());
        if file_extension || (parts.len() == 1 && name.contains(['/', '\\', '.', ':', '*', '?', '~'])) {
            return self.refuse(
                rules::FILE_PATH_TABLE,
                format!(
                    "`{}` names a file, not a table; reading files is not allowed. Query a table of the \
                     connection instead.",
                    display(&parts)
                ),
            );
        }
        if functions::is_secret_relation(&name, Dialect::DuckDb) {
            let why = functions::Why::Secrets;
            return self.refuse(why.rule(), why.message(&name));
        }
        let cte = parts.len() == 1 && self.is_cte(&name);
        if !cte {
            self.tables.push(TableSeen {
                parts: parts.clone(),
                alias: node["alias"]
                    .as_str()
                    .filter(|a| !a.is_empty())
                    .map(str::to_lowercase),
                renamed: node["column_name_alias"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty()),
            });
        }
        if let Some((rule, message)) = self.entries.judge_table(self.policy, &parts, cte) {
            self.refuse(rule, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn rule_of(tree: &str) -> Option<&'static str> {
        govern_duckdb_tree("SELECT 1", tree, &Policy::default(), 5)
            .denial()
            .map(|f| f.rule)
    }

    #[test]
    fn the_wrapper_drops_trailing_semicolons_and_keeps_comments_on_their_line() {
        assert_eq!(
            wrap_with_limit("  SELECT 1 ; ;\n", 7),
            "SELECT * FROM (\nSELECT 1\n) AS sluice_limited LIMIT 7"
        );
        assert_eq!(
            wrap_with_limit("SELECT 1 -- note", 7),
            "SELECT * FROM (\nSELECT 1 -- note\n) AS sluice_limited LIMIT 7"
        );
    }

    #[test]
    fn what_duckdb_will_not_serialise_or_cannot_parse_is_refused() {
        let cases = [
            (
                r#"{"error": true, "error_type": "not implemented", "error_message": "Only SELECT statements can be serialized to json!"}"#,
                Some(rules::STATEMENT_NOT_ALLOWED),
            ),
            (
                r#"{"error": true, "error_type": "parser", "error_message": "syntax error at or near \"FROM\""}"#,
                Some(rules::PARSE_ERROR),
            ),
            (
                r#"{"error": false, "statements": []}"#,
                Some(rules::EMPTY_STATEMENT),
            ),
            (
                r#"{"error": false, "statements": [{"node": {}}, {"node": {}}]}"#,
                Some(rules::MULTIPLE_STATEMENTS),
            ),
            ("not json", Some(rules::INTERNAL_ERROR)),
            (r#"{"statements": [{"node": {}}]}"#, Some(rules::PARSE_ERROR)),
            (
                r#"{"error": false, "statements": [{"node": {"type": "SELECT_NODE"}}]}"#,
                None,
            ),
        ];
        for (tree, expected) in cases {
            assert_eq!(rule_of(tree), expected, "{tree}");
        }
    }

    #[test]
    fn functions_are_judged_in_any_node_and_file_names_are_refused() {
        let call = |name: &str| {
            format!(
                r#"{{"error": false, "statements": [{{"node": {{"type": "SELECT_NODE", "select_list": [{{"class": "WINDOW", "function_name": "{name}", "schema": "", "catalog": ""}}]}}}}]}}"#
            )
        };
        assert_eq!(rule_of(&call("read_text")), Some(rules::FILE_ACCESS_FUNCTION));
        assert_eq!(rule_of(&call("sum")), None);
        let table = |name: &str| {
            format!(
                r#"{{"error": false, "statements": [{{"node": {{"type": "SELECT_NODE", "from_table": {{"type": "BASE_TABLE", "table_name": "{name}", "schema_name": "", "catalog_name": ""}}}}}}]}}"#
            )
        };
        assert_eq!(rule_of(&table("data.csv")), Some(rules::FILE_PATH_TABLE));
        assert_eq!(rule_of(&table("s3://b/k")), Some(rules::FILE_PATH_TABLE));
        assert_eq!(rule_of(&table("orders")), None);
    }

    #[test]
    fn only_the_exact_wrapper_around_the_same_tree_is_accepted() {
        let original = r#"{"statements": [{"node": {"type": "SELECT_NODE", "query_location": 0, "x": 1}}]}"#;
        let wrapped = |alias: &str, inner_x: i64, filter: &str| {
            format!(
                r#"{{"statements": [{{"node": {{"type": "SELECT_NODE", "select_list": [{{"class": "STAR"}}],
                    "modifiers": [{{"type": "LIMIT_MODIFIER"}}], "where_clause": {filter},
                    "from_table": {{"type": "SUBQUERY", "alias": "{alias}",
                        "subquery": {{"node": {{"type": "SELECT_NODE", "query_location": 16, "x": {inner_x}}}}}}}}}}}]}}"#
            )
        };
        assert!(wraps_the_same_query(
            original,
            &wrapped("sluice_limited", 1, "null")
        ));
        assert!(!wraps_the_same_query(original, &wrapped("other", 1, "null")));
        assert!(!wraps_the_same_query(
            original,
            &wrapped("sluice_limited", 2, "null")
        ));
        assert!(!wraps_the_same_query(
            original,
            &wrapped("sluice_limited", 1, r#"{"class": "CONSTANT"}"#)
        ));
        assert!(!wraps_the_same_query(original, "garbage"));
    }
}
