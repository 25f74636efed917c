//! Protection from runaway clients, on a real gateway over loopback: a key's burst is cut at its limit with
//! a tool error the agent can read while another key runs on and every call is audited once; an address
//! over its request rate, or one that keeps failing authentication, gets 429 with `Retry-After`, and the
//! lockout grows.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;
use sluice_e2e::{Gateway, Launch, call, text};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

/// `sluice up` with `[rate_limits]` set to `section`.
async fn gateway_with(section: &str) -> anyhow::Result<(Gateway, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, format!("[rate_limits]\n{section}"))?;
    let gw = Gateway::launch(Launch {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await?;
    Ok((gw, dir))
}

async fn create_key(gw: &Gateway, name: &str) -> anyhow::Result<String> {
    let out = gw.cli(&["key", "create", "--name", name]).await?;
    anyhow::ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// An `initialize` POST with `key` (none: no key at all).
async fn init(gw: &Gateway, key: Option<&str>) -> anyhow::Result<reqwest::Response> {
    let mut req = reqwest::Client::new()
        .post(&gw.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(INIT);
    if let Some(key) = key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    Ok(req.send().await?)
}

/// A 429's `Retry-After` in seconds and its JSON-RPC error message.
async fn refused(resp: reqwest::Response) -> anyhow::Result<(u64, String)> {
    assert_eq!(resp.status(), 429);
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| anyhow::anyhow!("a 429 without a Retry-After in seconds"))?;
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], -32029, "{body}");
    assert_eq!(body["error"]["data"]["retry_after_secs"], retry_after, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
    Ok((retry_after, message))
}

/// The audit log's records as JSON, newest first.
async fn audit(gw: &Gateway) -> anyhow::Result<Vec<serde_json::Value>> {
    let out = gw.cli(&["audit", "--limit", "500"]).await?;
    anyhow::ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// A bounded burst from one key (24 calls, 8 at a time) against a limit of 5 at once and 2 a minute: 5
/// run, the rest are refused with a tool error that names the limit and when to retry, and do no work.
/// Meanwhile another key of the same org makes all its calls. Every call, run or refused, has exactly
/// one audit record.
#[tokio::test]
async fn a_burst_from_one_key_is_cut_at_its_limit_and_other_keys_run_on() -> anyhow::Result<()> {
    let (gw, _dir) = gateway_with("key_per_minute = 2\nkey_burst = 5\n").await?;
    let busy = create_key(&gw, "busy").await?;
    let calm = create_key(&gw, "calm").await?;
    let busy_client = std::sync::Arc::new(gw.client_with_key(&busy).await?);
    let calm_client = gw.client_with_key(&calm).await?;
    let args = json!({"connection_name": "demo", "sql": "SELECT * FROM customers LIMIT 10"});

    let burst = async {
        let mut results = Vec::new();
        for _ in 0..3 {
            let wave = (0..8).map(|_| call(&busy_client, "query_database", args.clone()));
            for r in futures_util::future::join_all(wave).await {
                results.push(r?);
            }
        }
        anyhow::Ok(results)
    };
    let steady = async {
        let mut results = Vec::new();
        for _ in 0..5 {
            results.push(call(&calm_client, "query_database", args.clone()).await?);
        }
        anyhow::Ok(results)
    };
    let (burst, steady) = tokio::join!(burst, steady);
    let (burst, steady) = (burst?, steady?);

    let ran = burst.iter().filter(|r| r.is_error != Some(true)).count();
    assert_eq!(ran, 5, "the burst of 5 runs, no more");
    // Rendered like every refusal with a rule (a budget's too).
    let expected = "Refused by governance [rate_limited]: rate limit: key 'busy' (";
    for r in burst.iter().filter(|r| r.is_error == Some(true)) {
        let message = text(r);
        assert!(message.starts_with(expected), "{message}");
        assert!(
            message.contains("made more than 2 calls per minute (bursts up to 5); retry after "),
            "{message}"
        );
        let secs: u64 = message
            .split("retry after ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_default();
        assert!((1..=30).contains(&secs), "{message}");
        assert!(
            message.ends_with("The call was not run; the operator can raise [rate_limits] key_per_minute."),
            "{message}"
        );
    }
    for r in &steady {
        assert_ne!(r.is_error, Some(true), "the other key was limited: {}", text(r));
    }

    // Nothing lost from the audit log: one record per call, the refusals marked with their rule.
    let records = audit(&gw).await?;
    let of = |key: &str| -> Vec<(String, Option<String>)> {
        records
            .iter()
            .filter(|r| r["tool"] == "query_database" && r["key_prefix"] == key[..15])
            .map(|r| {
                (
                    r["decision"].as_str().unwrap_or_default().to_owned(),
                    r["rule"].as_str().map(str::to_owned),
                )
            })
            .collect()
    };
    let busy_records = of(&busy);
    assert_eq!(busy_records.len(), 24, "{busy_records:?}");
    assert_eq!(
        busy_records.iter().filter(|(d, _)| d == "ok").count(),
        5,
        "{busy_records:?}"
    );
    assert_eq!(
        busy_records
            .iter()
            .filter(|(d, rule)| d == "denied" && rule.as_deref() == Some("rate_limited"))
            .count(),
        19,
        "{busy_records:?}"
    );
    let calm_records = of(&calm);
    assert_eq!(calm_records.len(), 5, "{calm_records:?}");
    assert!(calm_records.iter().all(|(d, _)| d == "ok"), "{calm_records:?}");
    Ok(())
}

/// An address over its request rate gets 429 with `Retry-After` before its key is even looked at; the
/// health endpoints are never limited.
#[tokio::test]
async fn an_address_over_its_request_rate_gets_429_with_retry_after() -> anyhow::Result<()> {
    let (gw, _dir) = gateway_with("ip_per_minute = 2\nip_burst = 3\n").await?;
    for _ in 0..3 {
        assert_eq!(init(&gw, Some(&gw.key)).await?.status(), 200);
    }
    let (retry_after, message) = refused(init(&gw, Some(&gw.key)).await?).await?;
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(
        message,
        format!(
            "rate limit: address 127.0.0.1 sent more than 2 requests per minute (bursts up to 3); retry after \
             {retry_after} s"
        )
    );
    let health = reqwest::get(format!("http://{}/healthz", gw.addr)).await?;
    assert_eq!(health.status(), 200);
    Ok(())
}

/// Three failed authentications lock the address out: 429 with `Retry-After`, even for a good key (a
/// success does not unlock it early), while the health endpoints still answer. After the lockout, one more
/// failure locks it again for twice as long; a good key after that is let in.
#[tokio::test]
async fn an_address_that_keeps_failing_authentication_is_locked_out_for_longer_each_time()
-> anyhow::Result<()> {
    let (gw, _dir) = gateway_with("auth_failures = 3\nlockout_secs = 1\nmax_lockout_secs = 8\n").await?;
    for key in [None, Some("sluice_notakey"), Some("sluice_wrong")] {
        assert_eq!(init(&gw, key).await?.status(), 401);
    }
    let (retry_after, message) = refused(init(&gw, Some(&gw.key)).await?).await?;
    assert_eq!(retry_after, 1);
    assert_eq!(
        message,
        "too many failed authentications: address 127.0.0.1 is locked out for 1 s after 3 failed attempts; \
         retry after 1 s with a valid API key"
    );
    let health = reqwest::get(format!("http://{}/healthz", gw.addr)).await?;
    assert_eq!(health.status(), 200);

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(init(&gw, Some("sluice_wrong")).await?.status(), 401);
    let (retry_after, message) = refused(init(&gw, Some(&gw.key)).await?).await?;
    assert_eq!(retry_after, 2);
    assert_eq!(
        message,
        "too many failed authentications: address 127.0.0.1 is locked out for 2 s after 4 failed attempts; \
         retry after 2 s with a valid API key"
    );

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(init(&gw, Some(&gw.key)).await?.status(), 200);
    assert!(
        gw.log()
            .contains("address locked out after failed authentications"),
        "{}",
        gw.log()
    );
    Ok(())
}
