//! A small edition of the soak run (`benches/soak.rs`): sessions mixing queries on DuckDB and PostgreSQL,
//! schema tools and sandbox runs while the sandbox daemon is killed and PostgreSQL (store and warehouse) is
//! restarted. What must hold whatever the timing: every call gets an MCP answer, every answered call has its
//! audit record, the errors are the outages' own (each worded for the agent), and the gateway serves after.

use sluice_e2e::soak::{SoakConfig, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_under_a_sandbox_kill_and_a_postgres_restart_are_all_answered_and_audited() {
    if sluice_e2e::sandbox_python().is_none() {
        panic!("no sandbox Python: the test command sets SLUICE_SANDBOX_PYTHON");
    }
    let report = run(SoakConfig {
        sessions: 24,
        calls_per_session: 25,
        concurrency: 8,
        kill_sandbox_at: 0.25,
        restart_postgres_at: 0.5,
    })
    .await
    .unwrap();
    println!("{report}");
    assert_eq!(
        report.faults.len(),
        2,
        "both faults happen during the run: {report}"
    );
    assert_eq!(report.calls, 24 * 25);
    // Every call got an MCP answer (a result, or a tool error the agent can read); none was lost in transport.
    assert!(
        report.errors.keys().all(|k| !k.starts_with("initialize")),
        "a session could not be opened: {report}"
    );
    let answered_in_sessions: usize = report.per_tool.values().map(|(n, _, _)| n).sum();
    assert_eq!(answered_in_sessions, report.calls);
    assert!(report.answered >= report.calls, "{report}");
    // None may be missing from the audit log (a retried commit may, rarely, write one twice).
    for (tool, (rows, answered)) in &report.audit_by_tool {
        assert!(
            rows >= answered,
            "{tool}: {rows} audit records for {answered} answered calls\n{report}"
        );
    }
    // The errors agents saw are the outages': the sandbox restarting, PostgreSQL unreachable or restarting.
    for (kind, (_, message)) in &report.errors {
        // A PostgreSQL going down mid-handshake resets the socket ("could not reach ...: Connection reset by
        // peer; check that the server is running"): that is the restart's message too.
        let lower = message.to_lowercase();
        let outage = ["sandbox", "postgres", "connection", "could not reach"]
            .iter()
            .any(|m| lower.contains(m));
        assert!(
            outage,
            "an error that is not an outage's: [{kind}] {message}\n{report}"
        );
        assert!(!message.to_lowercase().contains("panic"), "{message}");
    }
    assert!(report.serving_after, "{report}");
    // The gateway's own memory stays small (DuckDB's work happens in its own workers where configured).
    assert!(
        report.gateway_peak_kib < 512 * 1024,
        "the gateway peaked at {} KiB\n{report}",
        report.gateway_peak_kib
    );
}
