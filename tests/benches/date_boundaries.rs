//! Benchmark: `get_date_boundaries` (one `UNION ALL` statement for the whole warehouse, in one tool
//! call) side by side with what an agent without the tool does through `query_database`: one statement
//! per table, or one `MIN`/`MAX` statement per date column plus a row count per table, each its own call,
//! all through the same real gateway; and the same statement plans in-process on DuckDB, to separate
//! engine time from round trips. Warehouses: the demo (11 date columns in 9 tables) and a synthetic wide
//! one built here (40 tables × 6 date and timestamp columns, at 1,000 and at 20,000 rows per table), where
//! per-column querying is what an agent realistically does, plus the 1,000-row one in a throwaway
//! PostgreSQL (`tests/servers/start.sh`), where every statement also costs a network round trip.
//!
//! Run: `cargo build --release -p sluice-gateway --bin sluice && cargo bench -p sluice-e2e --bench date_boundaries`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rmcp::RoleClient;
use rmcp::model::ClientConfig;
use rmcp::service::RunningService;
use serde_json::{Value, json};
use sluice_e2e::{Gateway, Launch, call};

/// The allocator the `sluice` binary uses, so the in-process baseline runs DuckDB the same way.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

type Client = RunningService<RoleClient, ClientConfig>;

const WARMUP: usize = 3;

const WIDE_TABLES: usize = 40;
/// Rows per table of the two synthetic warehouses: small tables, where per-call overhead dominates, and
/// larger ones, where the engine's scanning does.
const WIDE_ROWS: [usize; 2] = [1_000, 20_000];

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// `(table, [(date column, type)])` as get_date_boundaries reported them.
type Plan = Vec<(String, Vec<(String, String)>)>;

fn plan(out: &Value) -> Result<Plan> {
    out["tables"]
        .as_array()
        .context("tables")?
        .iter()
        .map(|t| {
            let name = t["table"].as_str().context("table")?.to_owned();
            let cols = t["columns"]
                .as_array()
                .context("columns")?
                .iter()
                .filter_map(|c| Some((c["column"].as_str()?.to_owned(), c["type"].as_str()?.to_owned())))
                .collect();
            Ok((name, cols))
        })
        .collect()
}

fn quoted(table: &str) -> String {
    let (schema, name) = table.split_once('.').unwrap_or(("main", table));
    format!("\"{schema}\".\"{name}\"")
}

/// The tool's own plan: a `UNION ALL` of one aggregate row per table, each type in its own slots (the
/// warehouses here have far fewer than 200 tables, so one statement).
fn one_statement_sql(plan: &Plan) -> String {
    let mut slots: Vec<(String, usize)> = Vec::new();
    for (_, cols) in plan {
        for (_, ty) in cols {
            let n = cols.iter().filter(|(_, t)| t == ty).count();
            match slots.iter_mut().find(|(t, _)| t == ty) {
                Some(slot) => slot.1 = slot.1.max(n),
                None => slots.push((ty.clone(), n)),
            }
        }
    }
    plan.iter()
        .enumerate()
        .map(|(k, (t, cols))| {
            let mut exprs = vec![format!("{k} AS k"), "COUNT(*) AS n".to_owned()];
            for (ty, n) in &slots {
                let mine: Vec<&String> = cols.iter().filter(|(_, c)| c == ty).map(|(c, _)| c).collect();
                for i in 0..*n {
                    match mine.get(i) {
                        Some(c) => exprs.push(format!("MIN(\"{c}\"), MAX(\"{c}\")")),
                        None => exprs.push(format!("CAST(NULL AS {ty}), CAST(NULL AS {ty})")),
                    }
                }
            }
            format!("SELECT {} FROM {}", exprs.join(", "), quoted(t))
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

fn per_table_sql(plan: &Plan) -> Vec<String> {
    plan.iter()
        .map(|(t, cols)| {
            let mut exprs = vec!["COUNT(*)".to_owned()];
            for (c, _) in cols {
                exprs.push(format!("MIN(\"{c}\")"));
                exprs.push(format!("MAX(\"{c}\")"));
            }
            format!("SELECT {} FROM {}", exprs.join(", "), quoted(t))
        })
        .collect()
}

fn per_column_sql(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for (t, cols) in plan {
        out.push(format!("SELECT COUNT(*) FROM {}", quoted(t)));
        for (c, _) in cols {
            out.push(format!("SELECT MIN(\"{c}\"), MAX(\"{c}\") FROM {}", quoted(t)));
        }
    }
    out
}

fn in_process(path: &Path, statements: &[String], rounds: usize) -> Result<Duration> {
    let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly)?;
    let conn = duckdb::Connection::open_with_flags(path, config)?;
    let run = || -> Result<Duration> {
        let t = Instant::now();
        for sql in statements {
            let mut stmt = conn.prepare(sql)?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                std::hint::black_box(row.get_ref(0)?.to_owned());
            }
        }
        Ok(t.elapsed())
    };
    for _ in 0..WARMUP {
        run()?;
    }
    Ok(p50((0..rounds).map(|_| run()).collect::<Result<_>>()?))
}

/// 40 tables, each with an id, 3 DATE and 3 TIMESTAMP columns (some NULLs) and an amount.
fn build_wide(path: &Path, rows: usize) -> Result<()> {
    let conn = duckdb::Connection::open(path)?;
    for t in 0..WIDE_TABLES {
        conn.execute_batch(&format!(
            "CREATE TABLE events_{t:02} AS SELECT i AS id,
                DATE '2020-01-01' + CAST(i % 1500 AS INTEGER) AS created_on,
                DATE '2021-01-01' + CAST((i * 7) % 1200 AS INTEGER) AS due_on,
                CASE WHEN i % 10 = 0 THEN NULL ELSE DATE '2022-01-01' + CAST(i % 900 AS INTEGER) END AS closed_on,
                TIMESTAMP '2020-01-01 00:00:00' + to_seconds(i * 3600 + {t}) AS created_at,
                TIMESTAMP '2021-06-01 00:00:00' + to_seconds(i * 1800) AS updated_at,
                CASE WHEN i % 7 = 0 THEN NULL ELSE TIMESTAMP '2022-01-01 00:00:00' + to_seconds(i * 600) END AS synced_at,
                (i % 1000) / 10.0 AS amount
             FROM range({rows}) AS r(i);"
        ))?;
    }
    Ok(())
}

struct Report {
    name: String,
    tables: usize,
    columns: usize,
    rounds: usize,
    tool_statements: u64,
    tool: Duration,
    per_table: (usize, Duration),
    per_column: (usize, Duration),
    /// The tool's own statement sent through `query_database`: governance and engine without the tool.
    one_statement: Duration,
    /// In-process DuckDB: one statement, per table, per column (`None` for PostgreSQL).
    engine: Option<[Duration; 3]>,
}

async fn measure(client: &Client, connection: &str, rounds: usize) -> Result<(Report, Vec<String>)> {
    let args = json!({"connection_name": connection});
    let first = call(client, "get_date_boundaries", args.clone()).await?;
    let out = first.structured_content.clone().context("structured result")?;
    let plan = plan(&out)?;
    let per_table = per_table_sql(&plan);
    let per_column = per_column_sql(&plan);
    for _ in 0..WARMUP {
        call(client, "get_date_boundaries", args.clone()).await?;
    }
    let mut tool = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let r = call(client, "get_date_boundaries", args.clone()).await?;
        anyhow::ensure!(r.is_error == Some(false), "get_date_boundaries failed");
        tool.push(t.elapsed());
    }
    let run_calls = |statements: Vec<String>| async move {
        let t = Instant::now();
        for sql in statements {
            let r = call(
                client,
                "query_database",
                json!({"connection_name": connection, "sql": sql}),
            )
            .await?;
            anyhow::ensure!(r.is_error == Some(false), "query failed: {sql}");
        }
        Ok::<_, anyhow::Error>(t.elapsed())
    };
    for _ in 0..WARMUP {
        run_calls(per_column.clone()).await?;
    }
    let one = vec![one_statement_sql(&plan)];
    let (mut column_calls, mut table_calls, mut one_calls) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        column_calls.push(run_calls(per_column.clone()).await?);
        table_calls.push(run_calls(per_table.clone()).await?);
        one_calls.push(run_calls(one.clone()).await?);
    }
    let mut statements = one;
    statements.extend(per_table.iter().cloned());
    statements.extend(per_column.iter().cloned());
    Ok((
        Report {
            name: connection.to_owned(),
            tables: plan.len(),
            columns: plan.iter().map(|(_, c)| c.len()).sum(),
            rounds,
            tool_statements: out["queries"].as_u64().unwrap_or(0),
            tool: p50(tool),
            per_table: (per_table.len(), p50(table_calls)),
            per_column: (per_column.len(), p50(column_calls)),
            one_statement: p50(one_calls),
            engine: None,
        },
        statements,
    ))
}

fn print(r: &Report) {
    println!(
        "\n{}: {} tables with dates, {} date columns; p50 of {} rounds\n",
        r.name, r.tables, r.columns, r.rounds
    );
    println!("| approach | p50 ms | relative |");
    println!("|---|---:|---:|");
    let ratio = |d: Duration| d.as_secs_f64() / r.tool.as_secs_f64();
    println!(
        "| `get_date_boundaries` (1 call, {} statement{}) | {} | 1.0× |",
        r.tool_statements,
        if r.tool_statements == 1 { "" } else { "s" },
        ms(r.tool)
    );
    println!(
        "| `query_database` with the tool's statement (1 call) | {} | {:.1}× |",
        ms(r.one_statement),
        ratio(r.one_statement)
    );
    println!(
        "| `query_database` per table ({} calls) | {} | {:.1}× |",
        r.per_table.0,
        ms(r.per_table.1),
        ratio(r.per_table.1)
    );
    println!(
        "| `query_database` per column ({} calls) | {} | {:.1}× |",
        r.per_column.0,
        ms(r.per_column.1),
        ratio(r.per_column.1)
    );
    if let Some([one, table, column]) = r.engine {
        println!(
            "\nin-process DuckDB, statements only: one statement {} ms, per table {} ms ({:.1}×), per column {} ms ({:.1}×)",
            ms(one),
            ms(table),
            table.as_secs_f64() / one.as_secs_f64(),
            ms(column),
            column.as_secs_f64() / one.as_secs_f64()
        );
    }
}

/// The same wide warehouse (1,000 rows per table) in a throwaway PostgreSQL from `tests/servers/start.sh`,
/// stopped and removed on drop.
struct Postgres {
    dir: tempfile::TempDir,
    dsn: String,
}

impl Postgres {
    fn start() -> Result<Postgres> {
        let servers = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers");
        let dir = tempfile::tempdir()?;
        let out = Command::new("bash")
            .arg(servers.join("start.sh"))
            .arg("postgres")
            .arg(dir.path().join("server"))
            .arg("--watch")
            .arg(std::process::id().to_string())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "start.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout).to_string();
        let value = |key: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(key).map(str::to_owned))
                .with_context(|| format!("{key} in {env}"))
        };
        let (dsn, port) = (value("DSN=")?, value("PORT=")?);
        let mut sql = String::new();
        for t in 0..WIDE_TABLES {
            sql.push_str(&format!(
                "CREATE TABLE events_{t:02} AS SELECT i AS id,
                    DATE '2020-01-01' + i % 1500 AS created_on,
                    DATE '2021-01-01' + (i * 7) % 1200 AS due_on,
                    CASE WHEN i % 10 = 0 THEN NULL ELSE DATE '2022-01-01' + i % 900 END AS closed_on,
                    TIMESTAMP '2020-01-01' + make_interval(secs => i * 3600 + {t}) AS created_at,
                    TIMESTAMP '2021-06-01' + make_interval(secs => i * 1800) AS updated_at,
                    CASE WHEN i % 7 = 0 THEN NULL ELSE TIMESTAMP '2022-01-01' + make_interval(secs => i * 600) END AS synced_at,
                    (i % 1000) / 10.0 AS amount
                 FROM generate_series(0, 999) AS i;\n"
            ));
        }
        sql.push_str("ANALYZE;\n");
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "app", "-d", "sluice"])
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
            .env("PGPASSWORD", "app-secret")
            .output()?;
        let pg = Postgres { dir, dsn };
        anyhow::ensure!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(pg)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/stop.sh"))
            .arg(self.dir.path().join("server"))
            .arg("--remove")
            .output();
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    sluice_e2e::install_crypto_provider();
    // Our own data directory, so that the files outlive the gateway for the in-process runs.
    let dir = tempfile::tempdir()?;
    let mut config = String::new();
    let mut wide = Vec::new();
    for rows in WIDE_ROWS {
        let name = format!("wide_{}k", rows / 1_000);
        let path = dir.path().join(format!("{name}.duckdb"));
        build_wide(&path, rows)?;
        config.push_str(&format!(
            "[[connections]]\nname = \"{name}\"\nkind = \"duckdb\"\ndsn = \"{}\"\n\n",
            path.display()
        ));
        wide.push((name, path));
    }
    let pg = Postgres::start()?;
    config.push_str(&format!(
        "[[connections]]\nname = \"wide_1k_postgres\"\nkind = \"postgres\"\ndsn = \"{}\"\n",
        pg.dsn
    ));
    let config_path = dir.path().join("sluice.toml");
    std::fs::write(&config_path, config)?;
    let gw = Gateway::launch(Launch {
        data_dir: Some(dir.path().join("data")),
        args: vec!["--config".into(), config_path.display().to_string()],
        ..Default::default()
    })
    .await?;
    let client = gw.client().await?;
    let mut runs = vec![(
        measure(&client, "demo", 30).await?,
        gw.data_dir.join("demo.duckdb"),
    )];
    for (name, path) in &wide {
        runs.push((measure(&client, name, 10).await?, path.clone()));
    }
    let (postgres, _) = measure(&client, "wide_1k_postgres", 10).await?;
    // Let the gateway release the files so the in-process readers can open them.
    drop(client);
    gw.stop().await?;
    for ((mut report, statements), path) in runs {
        let (one, rest) = statements.split_at(1);
        let (table, column) = rest.split_at(report.per_table.0);
        report.engine = Some([
            in_process(&path, one, 30)?,
            in_process(&path, table, 30)?,
            in_process(&path, column, 30)?,
        ]);
        print(&report);
    }
    print(&postgres);
    Ok(())
}
