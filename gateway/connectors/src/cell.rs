//! JSON renderings every engine shares, so the same value reads the same whichever engine answered.
//!
//! Integers beyond 2^53 and decimals are strings (nothing rounds on the way to the agent), temporal values
//! are ISO-8601, intervals ISO-8601 durations, binary base64, NULL `null`.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveTime};
use serde_json::{Number, Value as Json};

use crate::Cell;

/// JSON can carry integers exactly up to 2^53 in most clients; beyond that we send strings so that
/// nothing is rounded on the way to the agent.
const MAX_SAFE_INTEGER: i128 = 9_007_199_254_740_991;

pub(crate) fn int(value: i128) -> Cell {
    if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&value) {
        // The range check makes the narrowing lossless.
        Json::Number(Number::from(value as i64))
    } else {
        Json::String(value.to_string())
    }
}

pub(crate) fn uint(value: u128) -> Cell {
    if value <= MAX_SAFE_INTEGER as u128 {
        Json::Number(Number::from(value as u64))
    } else {
        Json::String(value.to_string())
    }
}

pub(crate) fn float(value: f64) -> Cell {
    // NaN and infinities have no JSON number form; their names are the least surprising rendering.
    Number::from_f64(value)
        .map(Json::Number)
        .unwrap_or_else(|| Json::String(value.to_string()))
}

/// A single-precision float through its shortest decimal form, so `REAL 1.1` reads `1.1` and not
/// `1.100000023841858` (what widening the bits to f64 would print).
pub(crate) fn float32(value: f32) -> Cell {
    float(value.to_string().parse::<f64>().unwrap_or(f64::from(value)))
}

/// Days since 1970-01-01.
pub(crate) fn date(days: i64) -> Cell {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1);
    match epoch.and_then(|e| e.checked_add_signed(chrono::Duration::try_days(days)?)) {
        Some(d) => Json::String(d.format("%Y-%m-%d").to_string()),
        // Engines' infinity dates sit outside chrono's range.
        None => Json::String(if days > 0 { "infinity" } else { "-infinity" }.to_owned()),
    }
}

/// Microseconds since 1970-01-01T00:00:00; with `utc`, the instant is marked with `Z`.
pub(crate) fn timestamp(us: i64, utc: bool) -> Cell {
    match DateTime::from_timestamp_micros(us) {
        Some(ts) => {
            let naive = ts.naive_utc();
            let mut text = if us % 1_000_000 == 0 {
                naive.format("%Y-%m-%dT%H:%M:%S").to_string()
            } else {
                naive.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
            };
            if utc {
                text.push('Z');
            }
            Json::String(text)
        }
        None => Json::String(if us > 0 { "infinity" } else { "-infinity" }.to_owned()),
    }
}

/// Microseconds since midnight.
pub(crate) fn time(us: i64) -> Cell {
    Json::String(time_text(us))
}

pub(crate) fn time_text(us: i64) -> String {
    let secs = u32::try_from(us.div_euclid(1_000_000)).unwrap_or(0);
    let nanos = u32::try_from(us.rem_euclid(1_000_000) * 1_000).unwrap_or(0);
    match NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos) {
        Some(t) if nanos == 0 => t.format("%H:%M:%S").to_string(),
        Some(t) => t.format("%H:%M:%S%.6f").to_string(),
        // PostgreSQL allows 24:00:00, which chrono does not.
        None => {
            let (h, m, s) = (us / 3_600_000_000, (us / 60_000_000) % 60, (us / 1_000_000) % 60);
            format!("{h:02}:{m:02}:{s:02}")
        }
    }
}

/// A UTC offset in seconds east of Greenwich, as `+HH:MM`.
pub(crate) fn offset_text(seconds_east: i32) -> String {
    let sign = if seconds_east < 0 { '-' } else { '+' };
    let abs = seconds_east.unsigned_abs();
    let (h, m, s) = (abs / 3600, (abs / 60) % 60, abs % 60);
    if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    }
}

/// ISO-8601 duration (`P1Y2M3DT4H5M6.5S`), which every client can parse.
pub(crate) fn interval(months: i32, days: i32, nanos: i64) -> Cell {
    let mut out = String::from("P");
    let (years, months) = (months / 12, months % 12);
    if years != 0 {
        out.push_str(&format!("{years}Y"));
    }
    if months != 0 {
        out.push_str(&format!("{months}M"));
    }
    if days != 0 {
        out.push_str(&format!("{days}D"));
    }
    if nanos != 0 {
        out.push('T');
        let total_us = nanos / 1_000;
        let hours = total_us / 3_600_000_000;
        let minutes = (total_us / 60_000_000) % 60;
        let seconds = (total_us / 1_000_000) % 60;
        let frac = (total_us % 1_000_000).abs();
        if hours != 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes != 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if seconds != 0 || frac != 0 {
            if frac == 0 {
                out.push_str(&format!("{seconds}S"));
            } else {
                out.push_str(&format!("{seconds}.{frac:06}S"));
            }
        }
    }
    if out == "P" {
        out.push_str("0D");
    }
    Json::String(out)
}

pub(crate) fn text(bytes: &[u8]) -> Cell {
    Json::String(String::from_utf8_lossy(bytes).into_owned())
}

pub(crate) fn blob(bytes: &[u8]) -> Cell {
    Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Parsed JSON; text that is not JSON (it should not happen for a JSON column) stays a string.
pub(crate) fn json(bytes: &[u8]) -> Cell {
    serde_json::from_slice(bytes).unwrap_or_else(|_| text(bytes))
}

/// A UUID's 16 bytes in the canonical hyphenated form.
pub(crate) fn uuid(bytes: &[u8]) -> Cell {
    if bytes.len() != 16 {
        return blob(bytes);
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Json::String(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn shared_renderings() {
        let cases: Vec<(Cell, Cell)> = vec![
            (int(1 << 60), json!("1152921504606846976")),
            (int(-42), json!(-42)),
            (uint(u128::from(u64::MAX)), json!("18446744073709551615")),
            (float32(1.1), json!(1.1)),
            (float(f64::INFINITY), json!("inf")),
            (date(19_000), json!("2022-01-08")),
            (date(i64::from(i32::MAX)), json!("infinity")),
            (timestamp(1_500_000, false), json!("1970-01-01T00:00:01.500000")),
            (timestamp(86_400_000_000, true), json!("1970-01-02T00:00:00Z")),
            (time(3_723_000_000), json!("01:02:03")),
            (time(86_400_000_000), json!("24:00:00")),
            (json!(offset_text(-(5 * 3600 + 1800))), json!("-05:30")),
            (interval(14, 3, 3_661_500_000_000), json!("P1Y2M3DT1H1M1.500000S")),
            (interval(0, 0, 0), json!("P0D")),
            (blob(b"hi"), json!("aGk=")),
            (json(br#"{"a":[1,2]}"#), json!({"a": [1, 2]})),
            (
                uuid(&[
                    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde,
                    0xf0,
                ]),
                json!("12345678-9abc-def0-1234-56789abcdef0"),
            ),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
        }
    }
}
