//! DuckDB's own grammar end to end (issue 19): on a DuckDB connection, every case of
//! `fixtures/sql/duckdb/grammar.txt` (valid DuckDB 2.0 that sqlparser may not read) must run through
//! `query_database`, every case of `grammar-refused.txt` (attacks in the same syntax) must be refused by the
//! rule its header names, and a few results are pinned so that a query that runs but was rewritten into
//! something else is caught. Every failing case is reported at once.

use std::path::{Path, PathBuf};

use rmcp::RoleClient;
use rmcp::model::{CallToolResult, ClientConfig};
use rmcp::service::RunningService;
use serde_json::{Value, json};
use sluice_e2e::{Gateway, Launch, call, text};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sql/duckdb");

/// The value in `secrets` and the domain of every `customers.email`; no refusal may show either.
const SECRETS: [&str; 2] = ["sk-live-do-not-leak", "@example.com"];

/// One corpus case: where it starts, its header (after `====`) and its SQL.
struct Case {
    line: usize,
    header: String,
    sql: String,
}

/// Splits a corpus file into cases, in the format of `fixtures/sql/README.md`: lines before the first
/// `====` line are comments, and each case's SQL is kept verbatim but for surrounding blank space.
fn cases(file: &str) -> Vec<Case> {
    let path = Path::new(CORPUS).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out: Vec<Case> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(header) = line.strip_prefix("====") {
            out.push(Case {
                line: i + 1,
                header: header.trim().to_owned(),
                sql: String::new(),
            });
        } else if let Some(case) = out.last_mut() {
            case.sql.push_str(line);
            case.sql.push('\n');
        }
    }
    for case in &mut out {
        case.sql = case.sql.trim().to_owned();
    }
    out
}

/// A gateway with one DuckDB connection, `wh`, on a warehouse built from `grammar-fixture.sql`, under the
/// policy the corpora are written against.
async fn gateway() -> anyhow::Result<(Gateway, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let warehouse: PathBuf = dir.path().join("wh.duckdb");
    {
        let fixture = std::fs::read_to_string(Path::new(CORPUS).join("grammar-fixture.sql"))?;
        let conn = duckdb::Connection::open(&warehouse)?;
        conn.execute_batch(&fixture)?;
    }
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[[connections]]\nname = \"wh\"\nkind = \"duckdb\"\ndsn = \"{}\"\n\n[connections.policy]\n\
             denied_tables = [\"secrets\"]\ndenied_columns = [\"customers.email\"]\n",
            warehouse.display()
        ),
    )?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await?;
    Ok((gw, dir))
}

async fn query(
    client: &RunningService<RoleClient, ClientConfig>,
    sql: &str,
    row_limit: Option<u64>,
) -> anyhow::Result<CallToolResult> {
    let mut args = json!({"connection_name": "wh", "sql": sql});
    if let Some(limit) = row_limit {
        args["row_limit"] = json!(limit);
    }
    call(client, "query_database", args).await
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

#[tokio::test]
async fn duckdb_grammar_runs() -> anyhow::Result<()> {
    let (gw, _dir) = gateway().await?;
    let client = gw.client().await?;
    let cases = cases("grammar.txt");
    assert!(cases.len() >= 120, "only {} cases in grammar.txt", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let r = query(&client, &case.sql, None).await?;
        if r.is_error != Some(false) {
            failures.push(format!(
                "grammar.txt:{} [{}]\n    {}",
                case.line,
                case.header,
                first_line(&text(&r))
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} grammar.txt cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn duckdb_grammar_attacks_are_refused_by_their_rule() -> anyhow::Result<()> {
    let (gw, _dir) = gateway().await?;
    let client = gw.client().await?;
    let cases = cases("grammar-refused.txt");
    assert!(
        cases.len() >= 40,
        "only {} cases in grammar-refused.txt",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let rule = case.header.split_whitespace().next().unwrap_or_default();
        let r = query(&client, &case.sql, None).await?;
        let t = text(&r);
        let problem = if r.is_error != Some(true) {
            Some(format!("ran: {}", first_line(&t)))
        } else if !t.contains(&format!("[{rule}]")) {
            Some(format!("refused otherwise: {}", first_line(&t)))
        } else if SECRETS.iter().any(|s| t.contains(s)) || t.contains("root:") {
            Some(format!("leaked: {t}"))
        } else {
            None
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "grammar-refused.txt:{} [{}]\n    {problem}",
                case.line, case.header
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} grammar-refused.txt cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Nothing the statements in the corpus name was written.
    for path in [
        "/tmp/sluice-grammar-out.csv",
        "/tmp/sluice-grammar-out.parquet",
        "/tmp/sluice-grammar-other.duckdb",
        "/tmp/sluice-grammar-dump",
    ] {
        assert!(!Path::new(path).exists(), "{path} was written");
    }
    Ok(())
}

/// Results of DuckDB-only queries, so that a query the gateway rewrote into something else (a lost clause, a
/// comment that swallowed the wrapper, a limit in the wrong place) fails here even though it runs.
#[tokio::test]
async fn duckdb_grammar_results_are_right() -> anyhow::Result<()> {
    let (gw, _dir) = gateway().await?;
    let client = gw.client().await?;
    // (sql, row_limit, expected rows, or the expected row count when rows are random).
    enum Want {
        Rows(Value),
        Count(u64),
    }
    let checks: Vec<(&str, Option<u64>, Want)> = vec![
        (
            "SELECT [x * 2 FOR x IN [1, 2, 3] IF x > 1] AS doubled",
            None,
            Want::Rows(json!([[[4, 6]]])),
        ),
        (
            "SELECT [x FOR x IN [1, 2, 3] IF x > 1] AS kept;",
            None,
            Want::Rows(json!([[[2, 3]]])),
        ),
        (
            "SELECT [x /* each */ * 2 FOR x IN [1, 2, 3] -- all of them\n] AS doubled",
            None,
            Want::Rows(json!([[[2, 4, 6]]])),
        ),
        (
            "SELECT [s || ') -- not a comment' FOR s IN ['a']] AS tricky",
            None,
            Want::Rows(json!([[["a) -- not a comment"]]])),
        ),
        (
            "SELECT list_reduce([1, 2, 3, 4], lambda acc, x: acc + x) AS total",
            None,
            Want::Rows(json!([[10]])),
        ),
        ("FROM orders USING SAMPLE 2 ROWS", None, Want::Count(2)),
        (
            "FROM orders USING SAMPLE 2 ROWS -- two at random",
            None,
            Want::Count(2),
        ),
        ("SELECT * FROM orders USING SAMPLE 10 ROWS", None, Want::Count(6)),
        (
            "SELECT * FROM orders TABLESAMPLE reservoir(5 ROWS) REPEATABLE (1)",
            None,
            Want::Count(5),
        ),
        (
            "SELECT * FROM orders ORDER BY order_id LIMIT 50%",
            None,
            Want::Count(3),
        ),
        (
            "UNPIVOT monthly ON jan, feb, mar INTO NAME month VALUE sales",
            None,
            Want::Count(9),
        ),
        (
            "SELECT month, sum(sales)::INTEGER AS total FROM (UNPIVOT monthly ON jan, feb, mar INTO NAME month VALUE sales) GROUP BY month ORDER BY month",
            None,
            Want::Rows(json!([["feb", 37], ["jan", 16], ["mar", 58]])),
        ),
        (
            "SELECT region, month, sales FROM monthly UNPIVOT INCLUDE NULLS (sales FOR month IN (jan, feb, mar)) WHERE region = 'east' ORDER BY month",
            None,
            Want::Rows(json!([
                ["east", "feb", 2],
                ["east", "jan", 1],
                ["east", "mar", 3]
            ])),
        ),
        (
            "SELECT customer_id, paid::DOUBLE AS paid FROM (PIVOT orders ON status IN ('paid', 'shipped') USING sum(amount) GROUP BY customer_id) ORDER BY customer_id",
            None,
            Want::Rows(json!([[1, 120.5], [2, 290.25], [3, null], [4, null]])),
        ),
        (
            "SELECT order_id, sum(amount) OVER (ORDER BY order_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) AS others FROM orders ORDER BY order_id LIMIT 2",
            None,
            Want::Rows(json!([[1, "396.00"], [2, "481.50"]])),
        ),
        (
            "SELECT m.region, c.name FROM monthly m POSITIONAL JOIN customers c",
            None,
            Want::Rows(json!([
                ["north", "Ada"],
                ["south", "Bo"],
                ["east", "Chen"],
                [null, "Dita"]
            ])),
        ),
        (
            "WITH RECURSIVE nums(n) USING KEY (n) AS (SELECT 1 UNION SELECT n + 1 FROM nums WHERE n < 4) SELECT list(n ORDER BY n) FROM nums",
            None,
            Want::Rows(json!([[[1, 2, 3, 4]]])),
        ),
        (
            "SELECT * EXCLUDE (email) RENAME (name AS customer_name) FROM customers ORDER BY customer_id LIMIT 1",
            None,
            Want::Rows(json!([[1, "Ada", "UK", "2024-11-01"]])),
        ),
        (
            "SELECT status, count(*)::INTEGER AS n FROM orders GROUP BY ALL USING SAMPLE 100% ORDER BY n DESC, status",
            None,
            Want::Rows(json!([
                ["paid", 3],
                ["cancelled", 1],
                ["refunded", 1],
                ["shipped", 1]
            ])),
        ),
        (
            "SELECT t.ticker, t.qty, p.price FROM trades t ASOF JOIN prices p ON t.ticker = p.ticker AND t.ts >= p.ts ORDER BY t.ticker, t.ts",
            None,
            Want::Rows(json!([
                ["AAPL", 10, 100.0],
                ["AAPL", 5, 101.0],
                ["MSFT", 7, 300.0],
                ["MSFT", 3, 301.0]
            ])),
        ),
        // The gateway's own row limit still holds around a query only DuckDB can read.
        (
            "SELECT unnest([x FOR x IN range(10)]) AS n",
            Some(3),
            Want::Count(3),
        ),
        ("FROM orders USING SAMPLE 5 ROWS", Some(2), Want::Count(2)),
    ];
    let mut failures = Vec::new();
    for (sql, limit, want) in &checks {
        let r = query(&client, sql, *limit).await?;
        if r.is_error != Some(false) {
            failures.push(format!("{sql}\n    failed: {}", first_line(&text(&r))));
            continue;
        }
        let s = r.structured_content.clone().unwrap_or_default();
        match want {
            Want::Rows(rows) if &s["rows"] != rows => {
                failures.push(format!("{sql}\n    rows {}, expected {rows}", s["rows"]));
            }
            Want::Count(n) if s["row_count"] != json!(n) => {
                failures.push(format!("{sql}\n    row_count {}, expected {n}", s["row_count"]));
            }
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} result checks failed:\n{}",
        failures.len(),
        checks.len(),
        failures.join("\n")
    );
    Ok(())
}
