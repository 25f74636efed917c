//! Verification against the warehouse, the pure half: names checked and quoted, the SQL the gateway runs
//! (through its governance and audit) built from them, and the comparisons made on what comes back.
//!
//! Nothing the agent types is pasted into SQL: every table and column name is split, checked and quoted
//! for the connection's dialect here, so a name with a quote in it stays one identifier.

use std::fmt;

use serde::Serialize;

use crate::project::Relation;

pub use sluice_dialect::Quoting;

/// Why a name given by the caller cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

/// The longest identifier part accepted; every engine Sluice speaks to allows at least this many.
pub const MAX_IDENT: usize = 128;

/// Checks one identifier part: not empty, not too long, no control characters (they have no business in a
/// table or column name and would garble logs).
pub fn check_ident(what: &str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError(format!("{what} is empty")));
    }
    if name.chars().count() > MAX_IDENT {
        return Err(NameError(format!(
            "{what} `{}…` is longer than {MAX_IDENT} characters",
            name.chars().take(20).collect::<String>()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(NameError(format!("{what} contains a control character")));
    }
    Ok(())
}

/// A comma-separated list as SignalPilot's tools take it (`"a, b,c"`), trimmed, empty items dropped.
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checks every column of a list.
pub fn check_columns(what: &str, columns: &[String]) -> Result<(), NameError> {
    for c in columns {
        check_ident(what, c)?;
    }
    Ok(())
}

/// A table or view in the warehouse: optional database and schema, and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRef {
    /// Qualifiers and name, outermost first (`[schema, table]` or `[table]`).
    pub parts: Vec<String>,
}

impl TableRef {
    /// Parses `table`, `schema.table` or `database.schema.table`. Dots always separate parts; a name that
    /// contains a dot must come from the manifest instead.
    pub fn parse(name: &str) -> Result<TableRef, NameError> {
        let parts: Vec<String> = name.trim().split('.').map(|p| p.trim().to_owned()).collect();
        if parts.len() > 3 {
            return Err(NameError(format!(
                "table name `{name}` has more than three dot-separated parts (database.schema.table)"
            )));
        }
        for p in &parts {
            check_ident(&format!("a part of the table name `{name}`"), p)?;
        }
        Ok(TableRef { parts })
    }

    /// The relation dbt built, as the manifest records it. The database is left out on purpose: a
    /// connection reads one database, and DuckDB names it after the file, which the gateway may have
    /// opened under another name.
    pub fn from_relation(relation: &Relation) -> TableRef {
        let mut parts = Vec::new();
        if let Some(schema) = relation.schema.as_ref().filter(|s| !s.is_empty()) {
            parts.push(schema.clone());
        }
        parts.push(relation.identifier.clone());
        TableRef { parts }
    }

    /// The quoted name for SQL.
    pub fn sql(&self, style: Quoting) -> String {
        style.path(&self.parts)
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts.join("."))
    }
}

/// Reads no rows, only the relation's columns and their types.
pub fn probe_sql(table: &TableRef, style: Quoting) -> String {
    format!("SELECT * FROM {} LIMIT 0", table.sql(style))
}

/// One row: `row_count_0`, `row_count_1`, … for each table, in order.
pub fn row_counts_sql(tables: &[TableRef], style: Quoting) -> String {
    let items: Vec<String> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| format!("(SELECT count(*) FROM {}) AS row_count_{i}", t.sql(style)))
        .collect();
    format!("SELECT {}", items.join(", "))
}

/// One row: `row_count`, then `nulls_i` and `distinct_i` for each column, in order.
pub fn column_profile_sql(table: &TableRef, columns: &[String], style: Quoting) -> String {
    let mut items = vec!["count(*) AS row_count".to_owned()];
    for (i, c) in columns.iter().enumerate() {
        let c = style.ident(c);
        items.push(format!("count(*) - count({c}) AS nulls_{i}"));
        items.push(format!("count(DISTINCT {c}) AS distinct_{i}"));
    }
    format!("SELECT {} FROM {}", items.join(", "), table.sql(style))
}

/// Expected against actual columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaComparison {
    /// In both, spelt the same.
    pub matching: Vec<String>,
    /// Expected but absent.
    pub missing: Vec<String>,
    /// Present but not expected.
    pub extra: Vec<String>,
    /// In both, spelt differently: `(expected, actual)`.
    pub case_mismatches: Vec<(String, String)>,
}

impl SchemaComparison {
    /// Whether the relation has exactly the expected columns.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.case_mismatches.is_empty()
    }
}

/// Compares column lists; names differing only in case are reported as such (engines differ in how they
/// fold unquoted names, and dbt YAML is often written in another case than the warehouse reports).
pub fn compare_columns(expected: &[String], actual: &[String]) -> SchemaComparison {
    let mut out = SchemaComparison::default();
    let mut used = vec![false; actual.len()];
    for e in expected {
        if let Some(i) = actual.iter().position(|a| a == e) {
            used[i] = true;
            out.matching.push(e.clone());
        } else if let Some(i) = actual
            .iter()
            .enumerate()
            .position(|(i, a)| !used[i] && a.eq_ignore_ascii_case(e))
        {
            used[i] = true;
            out.case_mismatches.push((e.clone(), actual[i].clone()));
        } else {
            out.missing.push(e.clone());
        }
    }
    out.extra = actual
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(a, _)| a.clone())
        .collect();
    out
}

/// What the ratio of model rows to source rows suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RatioVerdict {
    /// Between half and twice the source: no sign of trouble.
    Ok,
    /// Under half the source's rows: a filter or join may drop too much.
    OverFiltered,
    /// Over twice the source's rows: a join may multiply rows.
    FanOut,
    /// The source is empty, so no ratio.
    EmptySource,
}

impl RatioVerdict {
    /// The advice an agent reads.
    pub fn advice(self) -> &'static str {
        match self {
            RatioVerdict::Ok => "OK: no sign of fan-out or over-filtering",
            RatioVerdict::OverFiltered => {
                "WARNING: the model has less than half the source's rows: possible over-filtering or a lossy inner join"
            }
            RatioVerdict::FanOut => {
                "WARNING: the model has more than twice the source's rows: possible fan-out from a join on a non-unique key"
            }
            RatioVerdict::EmptySource => "the source is empty, so no ratio",
        }
    }
}

/// Model rows over source rows, and what it suggests.
pub fn ratio(model_rows: u64, source_rows: u64) -> (Option<f64>, RatioVerdict) {
    if source_rows == 0 {
        return (None, RatioVerdict::EmptySource);
    }
    let r = model_rows as f64 / source_rows as f64;
    let verdict = if r < 0.5 {
        RatioVerdict::OverFiltered
    } else if r > 2.0 {
        RatioVerdict::FanOut
    } else {
        RatioVerdict::Ok
    };
    (Some(r), verdict)
}

/// Columns worth testing as a grain when the caller names none: `id` and `*_id`/`*_key`, at most five.
pub fn default_grain_candidates(columns: &[String]) -> Vec<String> {
    columns
        .iter()
        .filter(|c| {
            let l = c.to_ascii_lowercase();
            l == "id" || l.ends_with("_id") || l.ends_with("_key")
        })
        .take(5)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn table_names() {
        let ok = [
            ("orders", "\"orders\""),
            ("main.orders", "\"main\".\"orders\""),
            (" db . main . orders ", "\"db\".\"main\".\"orders\""),
            ("Weird Name", "\"Weird Name\""),
        ];
        for (name, expected) in ok {
            assert_eq!(
                TableRef::parse(name).map(|t| t.sql(Quoting::Double)),
                Ok(expected.to_owned()),
                "{name}"
            );
        }
        let bad = [
            ("", "is empty"),
            ("a..b", "is empty"),
            ("a.b.c.d", "more than three"),
            ("a\nb", "control character"),
        ];
        for (name, message) in bad {
            let err = TableRef::parse(name).err().map(|e| e.0).unwrap_or_default();
            assert!(err.contains(message), "{name:?}: {err}");
        }
        let long = "x".repeat(MAX_IDENT + 1);
        assert!(TableRef::parse(&long).is_err());
    }

    #[test]
    fn relations_leave_the_database_out() {
        let r = Relation {
            database: Some("jaffle".into()),
            schema: Some("main".into()),
            identifier: "orders".into(),
            relation_name: Some("\"jaffle\".\"main\".\"orders\"".into()),
        };
        assert_eq!(
            TableRef::from_relation(&r).sql(Quoting::Double),
            "\"main\".\"orders\""
        );
        assert_eq!(
            TableRef::from_relation(&r).sql(Quoting::Backtick),
            "`main`.`orders`"
        );
    }

    #[test]
    fn sql_builders() {
        let t = TableRef::parse("main.orders").unwrap_or_else(|e| panic!("{e}"));
        let u = TableRef::parse("raw.raw_orders").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            probe_sql(&t, Quoting::Double),
            "SELECT * FROM \"main\".\"orders\" LIMIT 0"
        );
        assert_eq!(
            row_counts_sql(&[t.clone(), u], Quoting::Backtick),
            "SELECT (SELECT count(*) FROM `main`.`orders`) AS row_count_0, \
             (SELECT count(*) FROM `raw`.`raw_orders`) AS row_count_1"
        );
        assert_eq!(
            column_profile_sql(&t, &s(&["order_id", "we\"ird"]), Quoting::Double),
            "SELECT count(*) AS row_count, count(*) - count(\"order_id\") AS nulls_0, \
             count(DISTINCT \"order_id\") AS distinct_0, count(*) - count(\"we\"\"ird\") AS nulls_1, \
             count(DISTINCT \"we\"\"ird\") AS distinct_1 FROM \"main\".\"orders\""
        );
    }

    #[test]
    fn column_comparison() {
        let cases: Vec<(Vec<String>, Vec<String>, SchemaComparison)> = vec![
            (
                s(&["a", "b"]),
                s(&["a", "b"]),
                SchemaComparison {
                    matching: s(&["a", "b"]),
                    ..Default::default()
                },
            ),
            (
                s(&["customer_id", "first_name", "loyalty_tier"]),
                s(&["customer_id", "first_name", "debug_flag"]),
                SchemaComparison {
                    matching: s(&["customer_id", "first_name"]),
                    missing: s(&["loyalty_tier"]),
                    extra: s(&["debug_flag"]),
                    case_mismatches: vec![],
                },
            ),
            (
                s(&["Order_ID", "amount"]),
                s(&["order_id", "amount", "AMOUNT"]),
                SchemaComparison {
                    matching: s(&["amount"]),
                    missing: vec![],
                    extra: s(&["AMOUNT"]),
                    case_mismatches: vec![("Order_ID".into(), "order_id".into())],
                },
            ),
        ];
        for (expected, actual, want) in cases {
            let got = compare_columns(&expected, &actual);
            assert_eq!(got, want, "{expected:?} vs {actual:?}");
        }
        assert!(compare_columns(&s(&["a"]), &s(&["a"])).is_exact());
        assert!(!compare_columns(&s(&["a"]), &s(&["A"])).is_exact());
    }

    #[test]
    fn ratios() {
        let cases = [
            (100, 100, Some(1.0), RatioVerdict::Ok),
            (49, 100, Some(0.49), RatioVerdict::OverFiltered),
            (50, 100, Some(0.5), RatioVerdict::Ok),
            (201, 100, Some(2.01), RatioVerdict::FanOut),
            (5, 0, None, RatioVerdict::EmptySource),
        ];
        for (m, src, r, v) in cases {
            assert_eq!(ratio(m, src), (r, v), "{m}/{src}");
        }
    }

    #[test]
    fn lists_and_candidates() {
        assert_eq!(split_list(" a, b ,,c "), s(&["a", "b", "c"]));
        assert_eq!(split_list(""), Vec::<String>::new());
        assert_eq!(
            default_grain_candidates(&s(&["id", "name", "customer_id", "order_key", "idea"])),
            s(&["id", "customer_id", "order_key"])
        );
        assert!(check_columns("a column", &s(&["ok", ""])).is_err());
    }
}
