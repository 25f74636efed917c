//! One query cannot take the gateway's memory: DuckDB statements that allocate outside DuckDB's buffer
//! manager (strings, lists, DISTINCT sets) fail with the memory-limit error in their worker processes,
//! all at once, while the gateway process itself stays small and keeps serving.

use serde_json::json;
use sluice_e2e::{Gateway, Launch, call, text};

/// The statements of the connectors crate's worker tests (`duckdb_workers::HEAVY`): about 3 GB of one
/// string, a 7 GB rendering of a thousand million-element lists, and tens of GB of distinct strings.
const HEAVY: [&str; 3] = [
    "SELECT length(string_agg(repeat('x', 100000000), '')) FROM range(30)",
    "SELECT length(list(range(1000000))::VARCHAR) FROM range(1000)",
    "SELECT count(DISTINCT repeat(i::VARCHAR, 100000)) FROM range(100000) t(i)",
];

/// The gateway's peak resident memory may not reach this. `sluice up` peaks at about 150 MB before any
/// heavy statement (a dev build; the first run builds the demo warehouse in-process), and the heavy
/// statements add nothing measurable, since none of their work happens in the gateway; a single one of
/// them run in the gateway, as before workers, would have added at least the 512 MiB its worker refuses,
/// and the three together several GB.
const PEAK_RSS_BOUND_KB: u64 = 300 * 1024;
/// How much the heavy statements may raise the gateway's peak: answering three MCP calls and their error
/// texts costs far less than this.
const PEAK_GROWTH_BOUND_KB: u64 = 64 * 1024;

fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn heavy_statements_fail_in_their_workers_and_the_gateway_keeps_serving() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let warehouse = dir.path().join("wh.duckdb");
    {
        let c = duckdb::Connection::open(&warehouse)?;
        c.execute_batch("CREATE TABLE items AS SELECT range AS id FROM range(100)")?;
    }
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[duckdb]\nworkers = 3\nworker_memory = \"512MiB\"\n\n[limits]\nquery_timeout_ms = 120000\n\n\
             [[connections]]\nname = \"warehouse\"\nkind = \"duckdb\"\ndsn = \"{}\"\n",
            warehouse.display()
        ),
    )?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".to_owned(), config.display().to_string()],
        ..Default::default()
    })
    .await?;
    let pid = gw.pid().expect("running");
    let client = std::sync::Arc::new(gw.client().await?);
    let plain = json!({"connection_name": "warehouse", "sql": "SELECT count(*) AS n FROM items"});
    let r = call(&client, "query_database", plain.clone()).await?;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let before = peak_rss_kb(pid);
    let calls: Vec<_> = HEAVY
        .iter()
        .map(|sql| {
            let client = std::sync::Arc::clone(&client);
            tokio::spawn(async move {
                let r = call(
                    &client,
                    "query_database",
                    json!({"connection_name": "warehouse", "sql": sql}),
                )
                .await;
                (sql, r)
            })
        })
        .collect();
    for c in calls {
        let (sql, r) = c.await?;
        let r = r?;
        assert_eq!(r.is_error, Some(true), "{sql}: {}", text(&r));
        assert!(
            text(&r).contains(
                "memory limit: this statement needed more than the 512 MiB a DuckDB worker may use \
                 ([duckdb] worker_memory)"
            ),
            "{sql}: {}",
            text(&r)
        );
    }
    let r = call(&client, "query_database", plain).await?;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_eq!(r.structured_content.expect("structured")["rows"], json!([[100]]));
    let peak = peak_rss_kb(pid);
    eprintln!("gateway peak RSS: {before} kB before the heavy statements, {peak} kB after");
    assert!(
        peak < PEAK_RSS_BOUND_KB && peak - before < PEAK_GROWTH_BOUND_KB,
        "the gateway's peak RSS went from {before} kB to {peak} kB"
    );
    Ok(())
}
