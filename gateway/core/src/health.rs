//! Connection health measured from real calls: every governed query's latency and outcome, kept per
//! connection for a recent window, summarised as p50/p95/p99 and an error rate.
//!
//! Only engine work counts (a query that governance refused never reached the connection); a timeout or
//! an unreachable server counts as an error. Samples live in memory: health is about now, not history.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;

/// How far back the summary looks.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Samples kept per connection, whatever the window (bounds memory under load).
const MAX_SAMPLES: usize = 2_000;

struct Sample {
    at: Instant,
    latency_ms: f64,
    ok: bool,
}

/// The measured health of every connection, keyed by org and connection name.
#[derive(Default)]
pub struct Health {
    samples: Mutex<HashMap<(String, String), VecDeque<Sample>>>,
}

/// A summary of one connection's recent calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct LatencyStats {
    /// Calls in the window.
    pub calls: u64,
    pub errors: u64,
    /// errors / calls (0 when there were no calls).
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The window the numbers cover, in seconds.
    pub window_secs: u64,
}

impl Health {
    /// Records one call's latency and outcome.
    pub fn record(&self, org_id: &str, connection: &str, latency: Duration, ok: bool) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let list = samples
            .entry((org_id.to_owned(), connection.to_owned()))
            .or_default();
        list.push_back(Sample {
            at: Instant::now(),
            latency_ms: latency.as_secs_f64() * 1000.0,
            ok,
        });
        while list.len() > MAX_SAMPLES {
            list.pop_front();
        }
    }

    /// The summary of the window ending now.
    pub fn stats(&self, org_id: &str, connection: &str) -> LatencyStats {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = samples.get_mut(&(org_id.to_owned(), connection.to_owned())) else {
            return LatencyStats {
                window_secs: WINDOW.as_secs(),
                ..Default::default()
            };
        };
        let now = Instant::now();
        while list.front().is_some_and(|s| now.duration_since(s.at) > WINDOW) {
            list.pop_front();
        }
        let mut latencies: Vec<f64> = list.iter().map(|s| s.latency_ms).collect();
        latencies.sort_by(f64::total_cmp);
        let calls = list.len() as u64;
        let errors = list.iter().filter(|s| !s.ok).count() as u64;
        LatencyStats {
            calls,
            errors,
            error_rate: if calls == 0 {
                0.0
            } else {
                errors as f64 / calls as f64
            },
            p50_ms: percentile(&latencies, 50.0),
            p95_ms: percentile(&latencies, 95.0),
            p99_ms: percentile(&latencies, 99.0),
            window_secs: WINDOW.as_secs(),
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).map(|v| (v * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let cases = [
            (50.0, 50.0),
            (95.0, 95.0),
            (99.0, 99.0),
            (100.0, 100.0),
            (1.0, 1.0),
        ];
        for (p, expected) in cases {
            assert_eq!(percentile(&values, p), Some(expected), "p{p}");
        }
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
    }

    #[test]
    fn stats_count_errors_per_connection() {
        let h = Health::default();
        for ms in [10, 20, 30] {
            h.record("local", "a", Duration::from_millis(ms), true);
        }
        h.record("local", "a", Duration::from_millis(40), false);
        h.record("other", "a", Duration::from_millis(1), false);
        let s = h.stats("local", "a");
        assert_eq!((s.calls, s.errors, s.error_rate), (4, 1, 0.25));
        assert_eq!((s.p50_ms, s.p99_ms), (Some(20.0), Some(40.0)));
        assert_eq!(h.stats("local", "b").calls, 0);
    }
}
