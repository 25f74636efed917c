//! Name handling shared by the rules: object names as lowercased parts, and policy entries matched against them.

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

/// The lowercased parts of an object name, outermost first; `None` when a part is computed at run time
/// (Snowflake `IDENTIFIER('…')`), since such a name cannot be judged before it runs.
pub(crate) fn parts(name: &ObjectName) -> Option<Vec<String>> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => Some(ident.value.to_lowercase()),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

/// The lowercased parts of a list of identifiers.
pub(crate) fn ident_parts(idents: &[Ident]) -> Vec<String> {
    idents.iter().map(|i| i.value.to_lowercase()).collect()
}

/// Splits a policy entry such as `Sales."Orders"` into lowercased parts without quotes.
pub(crate) fn parse_entry(entry: &str) -> Vec<String> {
    entry
        .split('.')
        .map(|p| {
            p.trim()
                .trim_matches(|c| matches!(c, '"' | '`' | '[' | ']'))
                .to_lowercase()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether a policy entry names the object `parts`.
///
/// The entry matches when its parts are a suffix of the object's parts (`sales.orders` matches
/// `db.sales.orders`), and also when the object is written unqualified and its name is the entry's last
/// part: an unqualified name may resolve to the qualified object through the search path, and governance
/// cannot see the search path.
pub(crate) fn entry_matches(entry: &[String], parts: &[String]) -> bool {
    if entry.is_empty() || parts.is_empty() {
        return false;
    }
    if parts.ends_with(entry) {
        return true;
    }
    parts.len() == 1 && entry.last() == parts.last()
}

/// A policy's name entries, split into parts once per governed statement rather than once per name checked.
#[derive(Debug, Default)]
pub(crate) struct Entries {
    pub(crate) deny_functions: Vec<Vec<String>>,
    pub(crate) allow_functions: Vec<Vec<String>>,
    pub(crate) allowed_schemas: Vec<Vec<String>>,
    pub(crate) denied_schemas: Vec<Vec<String>>,
    pub(crate) allowed_tables: Vec<Vec<String>>,
    pub(crate) denied_tables: Vec<Vec<String>>,
}

impl Entries {
    pub(crate) fn new(policy: &crate::policy::Policy) -> Self {
        let split = |list: &[String]| list.iter().map(|e| parse_entry(e)).collect();
        Entries {
            deny_functions: split(&policy.deny_functions),
            allow_functions: split(&policy.allow_functions),
            allowed_schemas: split(&policy.allowed_schemas),
            denied_schemas: split(&policy.denied_schemas),
            allowed_tables: split(&policy.allowed_tables),
            denied_tables: split(&policy.denied_tables),
        }
    }
}

impl Entries {
    /// The policy's verdict on reading the table `parts` (`cte` when the name is a CTE in scope, which is
    /// exempt from the allow lists but not from the deny list): the rule and message of a refusal, if any.
    /// Both walks (sqlparser's tree and DuckDB's own) judge tables here.
    pub(crate) fn judge_table(
        &self,
        policy: &crate::policy::Policy,
        parts: &[String],
        cte: bool,
    ) -> Option<(&'static str, String)> {
        let shown = display(parts);
        if any_matches(&self.denied_tables, parts) {
            return Some((
                crate::rules::DENIED_TABLE,
                format!(
                    "Table `{shown}` is denied by this connection's policy (a CTE may not take its name either). \
                     Query other tables."
                ),
            ));
        }
        if cte {
            return None;
        }
        if !policy.allowed_tables.is_empty() && !any_matches(&self.allowed_tables, parts) {
            return Some((
                crate::rules::DENIED_TABLE,
                format!(
                    "Table `{shown}` is not among this connection's allowed tables ({}). Query one of those.",
                    policy.allowed_tables.join(", ")
                ),
            ));
        }
        let (_, schema) = parts.split_last()?;
        if schema.is_empty() {
            return None;
        }
        let shown_schema = display(schema);
        if any_matches(&self.denied_schemas, schema) {
            return Some((
                crate::rules::DENIED_SCHEMA,
                format!(
                    "Schema `{shown_schema}` is denied by this connection's policy, so `{shown}` cannot be \
                     queried. Query tables of other schemas."
                ),
            ));
        }
        if !policy.allowed_schemas.is_empty() && !any_matches(&self.allowed_schemas, schema) {
            return Some((
                crate::rules::DENIED_SCHEMA,
                format!(
                    "Schema `{shown_schema}` is not among this connection's allowed schemas ({}), so \
                     `{shown}` cannot be queried. Query tables of those schemas.",
                    policy.allowed_schemas.join(", ")
                ),
            ));
        }
        None
    }
}

/// `(table parts, column)` of each of the policy's denied columns (`schema.table.column`, `table.column` or
/// a bare `column`, whose table parts are empty: every table's).
pub(crate) fn denied_columns(policy: &crate::policy::Policy) -> Vec<(Vec<String>, String)> {
    policy
        .denied_columns
        .iter()
        .filter_map(|entry| {
            let mut parts = parse_entry(entry);
            let column = parts.pop()?;
            Some((parts, column))
        })
        .collect()
}

/// Whether any of the split entries names the object `parts`.
pub(crate) fn any_matches(entries: &[Vec<String>], parts: &[String]) -> bool {
    entries.iter().any(|e| entry_matches(e, parts))
}

/// Renders name parts for a message.
pub(crate) fn display(parts: &[String]) -> String {
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn v(s: &str) -> Vec<String> {
        parse_entry(s)
    }

    #[test]
    fn entries_parse_without_quotes() {
        assert_eq!(
            v("Sales.\"Orders\""),
            vec!["sales".to_owned(), "orders".to_owned()]
        );
        assert_eq!(v("[dbo].[T]"), vec!["dbo".to_owned(), "t".to_owned()]);
        assert_eq!(v(""), Vec::<String>::new());
    }

    #[test]
    fn entries_match_suffixes_and_unqualified_names() {
        let cases = [
            ("orders", "orders", true),
            ("orders", "sales.orders", true),
            ("sales.orders", "sales.orders", true),
            ("sales.orders", "db.sales.orders", true),
            ("sales.orders", "orders", true),
            ("sales.orders", "hr.orders", false),
            ("orders", "orders_archive", false),
            ("", "orders", false),
        ];
        for (entry, name, expected) in cases {
            assert_eq!(entry_matches(&v(entry), &v(name)), expected, "{entry} vs {name}");
        }
    }
}
