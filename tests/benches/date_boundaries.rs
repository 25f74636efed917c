//! Benchmark: `get_date_boundaries` on the demo warehouse (one statement per table, inside one tool call)
//! side by side with the per-column approach (one `MIN`/`MAX` statement per date column plus a row count
//! per table, each its own `query_database` call, as an agent without the tool or a per-column
//! implementation does), through the real gateway; and the same two statement plans in-process on DuckDB,
//! to separate engine time from round trips.
//!
//! Run: `cargo build --release -p sluice-gateway --bin sluice && cargo bench -p sluice-e2e --bench date_boundaries`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::{Value, json};
use sluice_e2e::{Gateway, Launch, call};

const WARMUP: usize = 5;
const ROUNDS: usize = 40;

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// `(table, [date columns])` as get_date_boundaries reported them.
fn plan(out: &Value) -> Result<Vec<(String, Vec<String>)>> {
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
                .filter_map(|c| c["column"].as_str().map(str::to_owned))
                .collect();
            Ok((name, cols))
        })
        .collect()
}

fn quoted(table: &str) -> String {
    let (schema, name) = table.split_once('.').unwrap_or(("main", table));
    format!("\"{schema}\".\"{name}\"")
}

fn per_table_sql(plan: &[(String, Vec<String>)]) -> Vec<String> {
    plan.iter()
        .map(|(t, cols)| {
            let mut exprs = vec!["COUNT(*)".to_owned()];
            for c in cols {
                exprs.push(format!("MIN(\"{c}\")"));
                exprs.push(format!("MAX(\"{c}\")"));
            }
            format!("SELECT {} FROM {}", exprs.join(", "), quoted(t))
        })
        .collect()
}

fn per_column_sql(plan: &[(String, Vec<String>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (t, cols) in plan {
        out.push(format!("SELECT COUNT(*) FROM {}", quoted(t)));
        for c in cols {
            out.push(format!("SELECT MIN(\"{c}\"), MAX(\"{c}\") FROM {}", quoted(t)));
        }
    }
    out
}

fn in_process(path: &std::path::Path, statements: &[String]) -> Result<Duration> {
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
    Ok(p50((0..ROUNDS).map(|_| run()).collect::<Result<_>>()?))
}

#[tokio::main]
async fn main() -> Result<()> {
    // Our own data directory, so that the demo file outlives the gateway for the in-process runs.
    let dir = tempfile::tempdir()?;
    let gw = Gateway::launch(Launch {
        data_dir: Some(dir.path().join("data")),
        ..Default::default()
    })
    .await?;
    let client = gw.client().await?;
    let args = json!({"connection_name": "demo"});
    let first = call(&client, "get_date_boundaries", args.clone()).await?;
    let out = first.structured_content.clone().context("structured result")?;
    let plan = plan(&out)?;
    let columns: usize = plan.iter().map(|(_, c)| c.len()).sum();
    let per_table = per_table_sql(&plan);
    let per_column = per_column_sql(&plan);

    for _ in 0..WARMUP {
        call(&client, "get_date_boundaries", args.clone()).await?;
    }
    let mut tool = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let r = call(&client, "get_date_boundaries", args.clone()).await?;
        anyhow::ensure!(r.is_error == Some(false), "get_date_boundaries failed");
        tool.push(t.elapsed());
    }
    let run_calls = |statements: Vec<String>| {
        let client = &client;
        async move {
            let t = Instant::now();
            for sql in statements {
                let r = call(
                    client,
                    "query_database",
                    json!({"connection_name": "demo", "sql": sql}),
                )
                .await?;
                anyhow::ensure!(r.is_error == Some(false), "query failed: {sql}");
            }
            Ok::<_, anyhow::Error>(t.elapsed())
        }
    };
    for _ in 0..WARMUP {
        run_calls(per_column.clone()).await?;
    }
    let mut column_calls = Vec::new();
    let mut table_calls = Vec::new();
    for _ in 0..ROUNDS {
        column_calls.push(run_calls(per_column.clone()).await?);
        table_calls.push(run_calls(per_table.clone()).await?);
    }
    let demo = gw.data_dir.join("demo.duckdb");
    // Let the gateway release the file so the in-process reader can open it.
    drop(client);
    gw.stop().await?;
    let engine_table = in_process(&demo, &per_table)?;
    let engine_column = in_process(&demo, &per_column)?;

    let (tool, column_calls, table_calls) = (p50(tool), p50(column_calls), p50(table_calls));
    println!(
        "demo warehouse: {} tables with dates, {columns} date columns; {} statements per table vs {} per column; p50 of {ROUNDS} rounds\n",
        plan.len(),
        per_table.len(),
        per_column.len()
    );
    println!("| approach | p50 ms | vs get_date_boundaries |");
    println!("|---|---|---|");
    let ratio = |d: Duration| d.as_secs_f64() / tool.as_secs_f64();
    println!(
        "| get_date_boundaries (1 call, 1 statement per table) | {} | 1.0× |",
        ms(tool)
    );
    println!(
        "| query_database per table ({} calls) | {} | {:.1}× |",
        per_table.len(),
        ms(table_calls),
        ratio(table_calls)
    );
    println!(
        "| query_database per column ({} calls) | {} | {:.1}× |",
        per_column.len(),
        ms(column_calls),
        ratio(column_calls)
    );
    println!(
        "\nin-process DuckDB, statements only: per table {} ms, per column {} ms ({:.1}×)",
        ms(engine_table),
        ms(engine_column),
        engine_column.as_secs_f64() / engine_table.as_secs_f64()
    );
    Ok(())
}
