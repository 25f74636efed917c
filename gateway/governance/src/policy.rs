//! The per-connection governance policy.

/// What a connection allows beyond the built-in rules. Names are matched case-insensitively and without
/// quotes; an entry `schema.table` also matches an unqualified `table`, since the search path may resolve it
/// there (see `names::entry_matches`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// The policy's row maximum. `govern` does not read it: the caller folds it into the `limit` it passes
    /// (the smallest of tool, policy and connection limits, plus one to detect truncation).
    pub max_rows: u64,
    /// Functions to refuse besides the built-in lists (`name` or `schema.name`). Wins over `allow_functions`.
    pub deny_functions: Vec<String>,
    /// Built-in deny-list entries to lift for this connection (e.g. `read_parquet`).
    pub allow_functions: Vec<String>,
    /// When not empty, schema-qualified tables must be in one of these schemas. Unqualified tables are
    /// assumed to be in the connection's default schema.
    pub allowed_schemas: Vec<String>,
    /// Schemas whose tables are refused.
    pub denied_schemas: Vec<String>,
    /// When not empty, every table must be one of these (`table` or `schema.table`); CTEs are exempt.
    pub allowed_tables: Vec<String>,
    /// Tables that are refused, also as CTE names.
    pub denied_tables: Vec<String>,
    /// Columns that are refused (`table.column` or `schema.table.column`; a bare `column` means every
    /// table's). `*` and whole-row references over such a table are refused too, unless the column is
    /// excluded (`* EXCLUDE (…)`, `* EXCEPT (…)`).
    pub denied_columns: Vec<String>,
    /// The deepest nesting accepted, in parser recursion levels (a subquery costs about two).
    pub max_depth: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_rows: 10_000,
            deny_functions: Vec::new(),
            allow_functions: Vec::new(),
            allowed_schemas: Vec::new(),
            denied_schemas: Vec::new(),
            allowed_tables: Vec::new(),
            denied_tables: Vec::new(),
            denied_columns: Vec::new(),
            max_depth: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn policies_load_from_config_with_defaults() {
        let loaded: Policy =
            serde_json::from_str(r#"{"denied_tables": ["secrets"], "max_rows": 500}"#).unwrap_or_default();
        let expected = Policy {
            denied_tables: vec!["secrets".to_owned()],
            max_rows: 500,
            ..Policy::default()
        };
        assert_eq!(loaded, expected);
        assert_eq!(Policy::default().max_depth, 64);
    }
}
