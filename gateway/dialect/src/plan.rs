//! Reading an engine's EXPLAIN output: the rows, bytes, cost and tables its planner reports, and whether
//! the plan looks expensive. What each engine can tell differs and is said in the facts' notes:
//! PostgreSQL estimates rows, width and cost; MySQL estimates rows, cost and bytes read; MariaDB rows and
//! cost; DuckDB rows (estimated cardinality); SQLite only the access path.

use serde::Serialize;
use serde_json::Value;

use crate::ConnectorKind;

/// A scan of this many estimated rows makes a query expensive.
const EXPENSIVE_ROWS: u64 = 5_000_000;
/// An optimizer cost of this much (PostgreSQL units ≈ sequential page reads; MySQL's cost model) too.
const EXPENSIVE_COST: f64 = 1_000_000.0;
/// The plan text kept in a result.
const PLAN_MAX_CHARS: usize = 6_000;

/// What the planner says about a query.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct PlanFacts {
    /// Rows the query returns, per the planner (null when the engine does not estimate).
    pub estimated_rows: Option<u64>,
    /// Bytes the query returns (PostgreSQL: rows × average width) or reads (MySQL: data read per join).
    pub estimated_bytes: Option<u64>,
    /// Rows the table accesses produce or examine, summed over the plan.
    pub scanned_rows: Option<u64>,
    /// The optimizer's cost in the engine's own units (PostgreSQL, MySQL/MariaDB).
    pub estimated_cost: Option<f64>,
    pub is_expensive: bool,
    /// Why the plan counts as expensive.
    pub expensive_reasons: Vec<String>,
    /// Tables the plan reads.
    pub tables: Vec<String>,
    /// What this engine's EXPLAIN can and cannot tell.
    pub notes: Vec<String>,
}

impl ConnectorKind {
    /// Reads the rows this engine's [`ConnectorKind::explain_sql`] returned: the planner's facts and the
    /// plan itself as text (JSON pretty-printed, shortened when long).
    pub fn read_plan(self, rows: &[Vec<Value>]) -> (PlanFacts, String) {
        let (facts, plan) = match self {
            ConnectorKind::Postgres => {
                let json = first_json(rows);
                (postgres_facts(&json), pretty(&json))
            }
            ConnectorKind::MySql => {
                let json = first_json(rows);
                (mysql_facts(&json), pretty(&json))
            }
            ConnectorKind::DuckDb => {
                // DuckDB answers (explain_key, explain_value); the physical plan is the JSON value.
                let json = rows
                    .iter()
                    .filter_map(|r| r.get(1))
                    .map(as_json)
                    .find(|v| !v.is_null())
                    .unwrap_or(Value::Null);
                (duckdb_facts(&json), pretty(&json))
            }
            ConnectorKind::Sqlite => {
                let details: Vec<String> = rows
                    .iter()
                    .filter_map(|r| r.last().and_then(Value::as_str).map(str::to_owned))
                    .collect();
                (sqlite_facts(&details), details.join("\n"))
            }
        };
        (facts, shorten(plan))
    }
}

fn shorten(plan: String) -> String {
    if plan.chars().count() <= PLAN_MAX_CHARS {
        return plan;
    }
    let cut: String = plan.chars().take(PLAN_MAX_CHARS).collect();
    format!("{cut}\n… [plan shortened to {PLAN_MAX_CHARS} characters]")
}

/// Engines hand JSON plans back as JSON values or as text holding JSON.
fn as_json(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

fn first_json(rows: &[Vec<Value>]) -> Value {
    rows.first()
        .and_then(|r| r.first())
        .map(as_json)
        .unwrap_or(Value::Null)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// A number that engines write as a JSON number or as a string ("1.55", "100.00").
fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    if !name.is_empty() && !list.iter().any(|t| t == name) {
        list.push(name.to_owned());
    }
}

fn judge(f: &mut PlanFacts) {
    if let Some(rows) = f.scanned_rows
        && rows >= EXPENSIVE_ROWS
    {
        f.expensive_reasons.push(format!(
            "the plan reads about {rows} rows (threshold {EXPENSIVE_ROWS})"
        ));
    }
    if let Some(cost) = f.estimated_cost
        && cost >= EXPENSIVE_COST
    {
        f.expensive_reasons.push(format!(
            "the optimizer cost is {cost:.0} (threshold {EXPENSIVE_COST:.0})"
        ));
    }
    f.is_expensive = !f.expensive_reasons.is_empty();
}

/// PostgreSQL's `EXPLAIN (FORMAT JSON)`: `[{"Plan": {"Node Type", "Plan Rows", "Plan Width", "Total Cost",
/// "Relation Name", "Plans": […]}}]`.
pub fn postgres_facts(json: &Value) -> PlanFacts {
    let mut f = PlanFacts::default();
    let Some(top) = json.get(0).and_then(|p| p.get("Plan")) else {
        f.notes.push("PostgreSQL returned no plan".to_owned());
        return f;
    };
    let rows = num(top.get("Plan Rows"));
    let width = num(top.get("Plan Width"));
    f.estimated_rows = rows.map(|r| r as u64);
    f.estimated_bytes = rows.zip(width).map(|(r, w)| (r * w) as u64);
    let mut scanned = 0.0;
    let mut max_cost: f64 = 0.0;
    let mut stack = vec![top];
    while let Some(node) = stack.pop() {
        max_cost = max_cost.max(num(node.get("Total Cost")).unwrap_or(0.0));
        if let Some(table) = node.get("Relation Name").and_then(Value::as_str) {
            push_unique(&mut f.tables, table);
            scanned += num(node.get("Plan Rows")).unwrap_or(0.0);
        }
        if let Some(children) = node.get("Plans").and_then(Value::as_array) {
            stack.extend(children.iter());
        }
    }
    f.scanned_rows = Some(scanned as u64);
    // Beneath a Limit the inputs keep their full cost; the largest node cost is the work the plan can do.
    f.estimated_cost = Some(max_cost);
    f.notes.push(
        "PostgreSQL estimates from table statistics (run ANALYZE for fresh ones); bytes = rows × average \
         row width of the result; cost is in planner units"
            .to_owned(),
    );
    judge(&mut f);
    f
}

/// MySQL's and MariaDB's `EXPLAIN FORMAT=JSON`: a `query_block` with `table` objects (MySQL:
/// `rows_examined_per_scan`, `rows_produced_per_join`, `cost_info.data_read_per_join`; MariaDB: `rows`,
/// `filtered`) in nested loops.
pub fn mysql_facts(json: &Value) -> PlanFacts {
    let mut f = PlanFacts::default();
    let Some(block) = json.get("query_block") else {
        f.notes.push("the server returned no JSON plan".to_owned());
        return f;
    };
    let mut tables = Vec::new();
    collect_tables(block, &mut tables);
    let mut scanned = 0.0;
    let mut produced_last = None;
    let mut product = 1.0;
    let mut bytes = None::<f64>;
    for t in &tables {
        if let Some(name) = t.get("table_name").and_then(Value::as_str) {
            push_unique(&mut f.tables, name);
        }
        let examined = num(t.get("rows_examined_per_scan"))
            .or_else(|| num(t.get("rows")))
            .unwrap_or(0.0);
        scanned += examined;
        let filtered = num(t.get("filtered")).unwrap_or(100.0) / 100.0;
        product *= (examined * filtered).max(if examined > 0.0 { 1.0 } else { 0.0 });
        if let Some(p) = num(t.get("rows_produced_per_join")) {
            produced_last = Some(p);
        }
        if let Some(read) = t
            .get("cost_info")
            .and_then(|c| c.get("data_read_per_join"))
            .and_then(size)
        {
            bytes = Some(bytes.unwrap_or(0.0) + read);
        }
    }
    f.scanned_rows = Some(scanned as u64);
    f.estimated_rows = if tables.is_empty() {
        None
    } else {
        Some(produced_last.unwrap_or(product) as u64)
    };
    f.estimated_bytes = bytes.map(|b| b as u64);
    f.estimated_cost =
        num(block.get("cost_info").and_then(|c| c.get("query_cost"))).or_else(|| num(block.get("cost")));
    if bytes.is_none() {
        f.notes.push(
            "this server's EXPLAIN gives no byte estimate (MariaDB reports rows, not widths)".to_owned(),
        );
    }
    f.notes.push(
        "row estimates come from index statistics and may be rough for unindexed filters (run ANALYZE TABLE \
         for fresh ones)"
            .to_owned(),
    );
    judge(&mut f);
    f
}

/// Every object that describes a table access, in document order.
fn collect_tables<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(map) => {
            if map.contains_key("table_name") {
                out.push(v);
            }
            for child in map.values() {
                collect_tables(child, out);
            }
        }
        Value::Array(items) => {
            for child in items {
                collect_tables(child, out);
            }
        }
        _ => {}
    }
}

/// MySQL writes sizes as "96", "1K", "2M", "3G".
fn size(v: &Value) -> Option<f64> {
    let text = match v {
        Value::Number(n) => return n.as_f64(),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (text.get(..i)?, c.to_ascii_uppercase()),
        _ => (text, ' '),
    };
    let base: f64 = digits.trim().parse().ok()?;
    let factor = match unit {
        ' ' => 1.0,
        'K' => 1024.0,
        'M' => 1024.0 * 1024.0,
        'G' => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(base * factor)
}

/// DuckDB's `EXPLAIN (FORMAT JSON)`: `[{"name", "children": […], "extra_info": {"Table",
/// "Estimated Cardinality"}}]`.
pub fn duckdb_facts(json: &Value) -> PlanFacts {
    let mut f = PlanFacts::default();
    let top = match json {
        Value::Array(items) => items.first(),
        Value::Object(_) => Some(json),
        _ => None,
    };
    let Some(top) = top else {
        f.notes.push("DuckDB returned no plan".to_owned());
        return f;
    };
    let cardinality = |node: &Value| {
        num(node
            .get("extra_info")
            .and_then(|e| e.get("Estimated Cardinality")))
    };
    f.estimated_rows = duckdb_rows(top).map(|rows| rows as u64);
    let mut scanned = 0.0;
    let mut stack = vec![top];
    while let Some(n) = stack.pop() {
        let children = n.get("children").and_then(Value::as_array);
        // Leaves are where rows come from: table scans, table functions (`range`), file readers.
        if children.is_none_or(|c| c.is_empty()) {
            if let Some(table) = n
                .get("extra_info")
                .and_then(|e| e.get("Table"))
                .and_then(Value::as_str)
            {
                push_unique(&mut f.tables, table);
            }
            scanned += cardinality(n).unwrap_or(0.0);
        }
        stack.extend(children.into_iter().flatten());
    }
    f.scanned_rows = Some(scanned as u64);
    f.notes.push(
        "DuckDB estimates cardinalities but gives neither row widths nor a cost, so bytes are unknown"
            .to_owned(),
    );
    judge(&mut f);
    f
}

/// The rows a DuckDB plan node is estimated to produce. DuckDB leaves the estimate out on some nodes (a
/// projection, a cross product) and writes 0 on a `LIMIT` above a node without one, so: a positive
/// estimate as written; a limit caps its input (or is the bound when the input's is unknown); a cross
/// product multiplies its inputs; a node with one input passes its input's; a leaf's 0 is a real 0 (an
/// empty table).
fn duckdb_rows(node: &Value) -> Option<f64> {
    let extra = node.get("extra_info");
    let written = num(extra.and_then(|e| e.get("Estimated Cardinality")));
    let children: &[Value] = node
        .get("children")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if let Some(rows) = written
        && (rows > 0.0 || children.is_empty())
    {
        return Some(rows);
    }
    let name = node
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim();
    if let Some(limit) = num(extra.and_then(|e| e.get("Limit"))) {
        let input = children.first().and_then(duckdb_rows);
        return Some(input.map_or(limit, |rows| rows.min(limit)));
    }
    match children {
        [only] => duckdb_rows(only),
        [_, ..] if name == "CROSS_PRODUCT" => children.iter().map(duckdb_rows).product(),
        _ => written,
    }
}

/// SQLite's `EXPLAIN QUERY PLAN`: one line per step (`SCAN t`, `SEARCH t USING INDEX …`), no estimates.
pub fn sqlite_facts(details: &[String]) -> PlanFacts {
    let mut f = PlanFacts::default();
    let mut full_scans = 0;
    for d in details {
        let words: Vec<&str> = d.split_whitespace().collect();
        if let [verb @ ("SCAN" | "SEARCH"), table, ..] = words.as_slice() {
            if !table.starts_with("CONSTANT") && *table != "SUBQUERY" {
                push_unique(&mut f.tables, table);
            }
            if *verb == "SCAN" && !d.contains(" USING ") && !table.starts_with("CONSTANT") {
                full_scans += 1;
            }
        }
    }
    if full_scans >= 2 {
        f.expensive_reasons.push(format!(
            "{full_scans} tables are read in full without an index, nested in one another"
        ));
    }
    f.is_expensive = !f.expensive_reasons.is_empty();
    f.notes.push(
        "SQLite's planner reports only the access path (SCAN = full read, SEARCH = index lookup), no row or \
         byte estimates"
            .to_owned(),
    );
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn postgres_plans() {
        let plan = json!([{"Plan": {"Node Type": "Limit", "Total Cost": 0.5, "Plan Rows": 101, "Plan Width": 40,
            "Plans": [{"Node Type": "Seq Scan", "Relation Name": "orders", "Total Cost": 9000000.0,
                       "Plan Rows": 6000000, "Plan Width": 40}]}}]);
        let f = postgres_facts(&plan);
        assert_eq!(
            (f.estimated_rows, f.estimated_bytes, f.scanned_rows),
            (Some(101), Some(4040), Some(6_000_000))
        );
        assert_eq!(f.tables, vec!["orders".to_owned()]);
        // What DuckDB 2.0 writes for a governed cross join: a 0 on the limit, nothing on the product.
        let scan = |table: &str, rows: &str| json!({"name": "SEQ_SCAN", "children": [], "extra_info": {"Table": table, "Estimated Cardinality": rows}});
        let limited = |limit: &str, child: Value| {
            json!([{"name": "STREAMING_LIMIT", "children": [child],
                "extra_info": {"Limit": limit, "Estimated Cardinality": "0"}}])
        };
        let product = json!({"name": "CROSS_PRODUCT", "children": [scan("s", "10000"), scan("i", "17158")],
            "extra_info": {}});
        let cases = [
            (limited("10001", product.clone()), Some(10_001), Some(27_158)),
            (limited("100000000000", product), Some(171_580_000), Some(27_158)),
            (limited("5", scan("empty", "0")), Some(0), Some(0)),
            (
                limited(
                    "7",
                    json!({"name": "HASH_JOIN", "children": [scan("a", "3"), scan("b", "4")],
                    "extra_info": {}}),
                ),
                Some(7),
                Some(7),
            ),
        ];
        for (plan, rows, scanned) in cases {
            let f = duckdb_facts(&plan);
            assert_eq!((f.estimated_rows, f.scanned_rows), (rows, scanned), "{plan}");
        }
        assert!(f.is_expensive && f.expensive_reasons.len() == 2, "{f:?}");
        assert!(
            !postgres_facts(&json!([{"Plan": {"Plan Rows": 3, "Plan Width": 8, "Total Cost": 1.0}}]))
                .is_expensive
        );
    }

    #[test]
    fn mysql_and_mariadb_plans() {
        let mysql = json!({"query_block": {"cost_info": {"query_cost": "1.55"}, "nested_loop": [
            {"table": {"table_name": "o", "rows_examined_per_scan": 3, "rows_produced_per_join": 3,
                       "filtered": "100.00", "cost_info": {"data_read_per_join": "1K"}}},
            {"table": {"table_name": "c", "rows_examined_per_scan": 1, "rows_produced_per_join": 2,
                       "filtered": "50.00", "cost_info": {"data_read_per_join": "96"}}}]}});
        let f = mysql_facts(&mysql);
        assert_eq!(
            (
                f.estimated_rows,
                f.estimated_bytes,
                f.scanned_rows,
                f.estimated_cost
            ),
            (Some(2), Some(1120), Some(4), Some(1.55))
        );
        assert_eq!(f.tables, vec!["o".to_owned(), "c".to_owned()]);
        let mariadb = json!({"query_block": {"select_id": 1, "cost": 0.01,
            "nested_loop": [{"table": {"table_name": "orders", "access_type": "ALL", "rows": 8000000, "filtered": 10}}]}});
        let f = mysql_facts(&mariadb);
        assert_eq!((f.estimated_rows, f.estimated_bytes), (Some(800_000), None));
        assert!(f.is_expensive, "{f:?}");
    }

    #[test]
    fn duckdb_and_sqlite_plans() {
        let duck = json!([{"name": "PROJECTION", "children": [{"name": "SEQ_SCAN ", "children": [],
            "extra_info": {"Table": "orders", "Estimated Cardinality": "1000"}}], "extra_info": {}}]);
        let f = duckdb_facts(&duck);
        assert_eq!(
            (f.estimated_rows, f.scanned_rows, f.estimated_bytes),
            (Some(1000), Some(1000), None)
        );
        assert_eq!(f.tables, vec!["orders".to_owned()]);
        let f = sqlite_facts(&["SCAN o".to_owned(), "SCAN c".to_owned()]);
        assert!(f.is_expensive && f.estimated_rows.is_none());
        let f = sqlite_facts(&[
            "SCAN o".to_owned(),
            "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)".to_owned(),
        ]);
        assert!(!f.is_expensive);
        assert_eq!(f.tables, vec!["o".to_owned(), "c".to_owned()]);
    }

    #[test]
    fn sizes() {
        let cases = [
            (json!("96"), Some(96.0)),
            (json!("1K"), Some(1024.0)),
            (json!(5), Some(5.0)),
            (json!("x"), None),
        ];
        for (v, expected) in cases {
            assert_eq!(size(&v), expected, "{v}");
        }
    }
}
