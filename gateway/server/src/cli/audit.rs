//! `sluice audit`: the newest audit records of an organization, one JSON object per line.

use std::io::Write as _;

use anyhow::Result;
use sluice_core::setup::Context;

use super::settings::settings;
use super::{Common, OrgArg};

/// `--since`: an RFC 3339 time or an age (`90s`, `15m`, `2h`, `7d`), as the store's timestamps are written
/// (UTC, microseconds), so that text order is time order.
pub(super) fn since_time(text: &str) -> Result<String, String> {
    let text = text.trim();
    let at = match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => t.with_timezone(&chrono::Utc),
        Err(_) => {
            let split = text.len().saturating_sub(1);
            let (n, unit) = text.split_at(split);
            let n: i64 = n.parse().map_err(|_| {
                format!("'{text}' is neither an RFC 3339 time (2026-12-07T09:00:00Z) nor an age (90s, 15m, 2h, 7d)")
            })?;
            let age = match unit {
                "s" => chrono::Duration::seconds(n),
                "m" => chrono::Duration::minutes(n),
                "h" => chrono::Duration::hours(n),
                "d" => chrono::Duration::days(n),
                _ => return Err(format!("'{text}': an age ends in s, m, h or d (e.g. 15m)")),
            };
            chrono::Utc::now() - age
        }
    };
    Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

pub(super) async fn run(
    common: Common,
    org: OrgArg,
    limit: i64,
    since: Option<String>,
    tool: Option<String>,
) -> Result<()> {
    let ctx = Context::open(settings(&common, None)?).await?;
    let org = ctx.store.org_id(&org.value).await?;
    let mut out = std::io::stdout().lock();
    for r in ctx
        .store
        .audit_since(&org, since.as_deref(), tool.as_deref(), limit)
        .await?
    {
        writeln!(out, "{}", serde_json::to_string(&r)?)?;
    }
    Ok(())
}
