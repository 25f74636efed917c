//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`) against `sluice serve`.
//!
//! The suite's client sends no credentials, so a loopback proxy adds the API key; auth stays on, and the
//! proxy passes `Host` and `Origin` through so the DNS-rebinding scenario tests the gateway's own check.
//! Scenarios that need the suite's fixture tools/resources/prompts are in the baseline
//! (tests/conformance/expected-failures.yml, reasons in tests/conformance/README.md).

use std::path::PathBuf;

use sluice_e2e::proxy::spawn_key_proxy;
use sluice_e2e::{Gateway, Launch, cli};

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

#[tokio::test]
async fn official_conformance_suite_passes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let out = cli(&data, &["key", "create", "--name", "conformance"]).await?;
    anyhow::ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout)?.trim().to_owned();
    let gw = Gateway::launch(Launch {
        command: Some("serve"),
        data_dir: Some(data),
        ..Default::default()
    })
    .await?;
    let proxy = spawn_key_proxy(gw.addr, key).await?;
    let url = format!("http://127.0.0.1:{}/mcp", proxy.addr.port());

    let output = tokio::process::Command::new(conformance_dir().join("run.sh"))
        .arg(&url)
        .env("SLUICE_CONFORMANCE_RESULTS", dir.path().join("results"))
        .output()
        .await?;
    let strip = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // Skip an ANSI escape sequence: ESC [ … letter.
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    let stdout = strip(&output.stdout);
    let stderr = strip(&output.stderr);
    assert!(
        output.status.success(),
        "conformance suite failed ({:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- gateway log ---\n{}",
        output.status,
        gw.log()
    );
    // The applicable scenarios really ran.
    for scenario in [
        "server-initialize",
        "tools-list",
        "dns-rebinding-protection",
        "server-sse-multiple-streams",
    ] {
        assert!(
            stdout.contains(scenario),
            "scenario {scenario} missing from the output:\n{stdout}"
        );
    }
    Ok(())
}
