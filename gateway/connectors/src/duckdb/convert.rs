//! DuckDB values and types to engine-neutral JSON cells and SQL type names.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveTime};
use duckdb::core::{LogicalTypeHandle, LogicalTypeId};
use duckdb::types::{TimeUnit, Value, ValueRef};
use serde_json::{Map, Number, Value as Json};

use crate::Cell;

/// JSON can carry integers exactly up to 2^53 in most clients; beyond that we send strings so that
/// nothing is rounded on the way to the agent.
const MAX_SAFE_INTEGER: i128 = 9_007_199_254_740_991;

fn int(value: i128) -> Cell {
    if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&value) {
        // The range check makes the narrowing lossless.
        Json::Number(Number::from(value as i64))
    } else {
        Json::String(value.to_string())
    }
}

fn uint(value: u128) -> Cell {
    if value <= MAX_SAFE_INTEGER as u128 {
        Json::Number(Number::from(value as u64))
    } else {
        Json::String(value.to_string())
    }
}

fn float(value: f64) -> Cell {
    // NaN and infinities have no JSON number form; their names are the least surprising rendering.
    Number::from_f64(value)
        .map(Json::Number)
        .unwrap_or_else(|| Json::String(value.to_string()))
}

fn micros(unit: TimeUnit, value: i64) -> i64 {
    match unit {
        TimeUnit::Second => value.saturating_mul(1_000_000),
        TimeUnit::Millisecond => value.saturating_mul(1_000),
        TimeUnit::Microsecond => value,
        TimeUnit::Nanosecond => value / 1_000,
    }
}

fn date(days: i32) -> Cell {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1);
    match epoch.and_then(|e| e.checked_add_signed(chrono::Duration::days(i64::from(days)))) {
        Some(d) => Json::String(d.format("%Y-%m-%d").to_string()),
        // DuckDB's infinity dates sit outside chrono's range.
        None => Json::String(if days > 0 { "infinity" } else { "-infinity" }.to_owned()),
    }
}

fn timestamp(unit: TimeUnit, value: i64) -> Cell {
    let us = micros(unit, value);
    match DateTime::from_timestamp_micros(us) {
        Some(ts) => {
            let naive = ts.naive_utc();
            let text = if us % 1_000_000 == 0 {
                naive.format("%Y-%m-%dT%H:%M:%S").to_string()
            } else {
                naive.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
            };
            Json::String(text)
        }
        None => Json::String(if us > 0 { "infinity" } else { "-infinity" }.to_owned()),
    }
}

fn time(unit: TimeUnit, value: i64) -> Cell {
    let us = micros(unit, value);
    let secs = u32::try_from(us.div_euclid(1_000_000)).unwrap_or(0);
    let nanos = u32::try_from(us.rem_euclid(1_000_000) * 1_000).unwrap_or(0);
    match NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos) {
        Some(t) if nanos == 0 => Json::String(t.format("%H:%M:%S").to_string()),
        Some(t) => Json::String(t.format("%H:%M:%S%.6f").to_string()),
        None => Json::String(format!("{us}us")),
    }
}

/// ISO-8601 duration (`P1Y2M3DT4H5M6.5S`), which every client can parse.
fn interval(months: i32, days: i32, nanos: i64) -> Cell {
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

fn text(bytes: &[u8]) -> Cell {
    Json::String(String::from_utf8_lossy(bytes).into_owned())
}

fn blob(bytes: &[u8]) -> Cell {
    Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Converts a borrowed DuckDB value; nested values go through their owned form.
pub(crate) fn cell(value: ValueRef<'_>) -> Cell {
    match value {
        ValueRef::Null => Json::Null,
        ValueRef::Boolean(b) => Json::Bool(b),
        ValueRef::TinyInt(v) => int(i128::from(v)),
        ValueRef::SmallInt(v) => int(i128::from(v)),
        ValueRef::Int(v) => int(i128::from(v)),
        ValueRef::BigInt(v) => int(i128::from(v)),
        ValueRef::HugeInt(v) => int(v),
        ValueRef::UHugeInt(v) => uint(v),
        ValueRef::UTinyInt(v) => uint(u128::from(v)),
        ValueRef::USmallInt(v) => uint(u128::from(v)),
        ValueRef::UInt(v) => uint(u128::from(v)),
        ValueRef::UBigInt(v) => uint(u128::from(v)),
        ValueRef::Float(v) => float(f64::from(v)),
        ValueRef::Double(v) => float(v),
        ValueRef::Decimal(d) => Json::String(d.to_string()),
        ValueRef::Timestamp(unit, v) => timestamp(unit, v),
        ValueRef::Text(bytes) => text(bytes),
        ValueRef::Blob(bytes) | ValueRef::Geometry(bytes) => blob(bytes),
        ValueRef::Date32(days) => date(days),
        ValueRef::Time64(unit, v) => time(unit, v),
        ValueRef::Interval { months, days, nanos } => interval(months, days, nanos),
        other => owned(other.to_owned()),
    }
}

fn owned(value: Value) -> Cell {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::TinyInt(v) => int(i128::from(v)),
        Value::SmallInt(v) => int(i128::from(v)),
        Value::Int(v) => int(i128::from(v)),
        Value::BigInt(v) => int(i128::from(v)),
        Value::HugeInt(v) => int(v),
        Value::UHugeInt(v) => uint(v),
        Value::UTinyInt(v) => uint(u128::from(v)),
        Value::USmallInt(v) => uint(u128::from(v)),
        Value::UInt(v) => uint(u128::from(v)),
        Value::UBigInt(v) => uint(u128::from(v)),
        Value::Float(v) => float(f64::from(v)),
        Value::Double(v) => float(v),
        Value::Decimal(d) => Json::String(d.to_string()),
        Value::Timestamp(unit, v) => timestamp(unit, v),
        Value::Text(s) | Value::Enum(s) => Json::String(s),
        Value::Blob(bytes) | Value::Geometry(bytes) => blob(&bytes),
        Value::Date32(days) => date(days),
        Value::Time64(unit, v) => time(unit, v),
        Value::Interval { months, days, nanos } => interval(months, days, nanos),
        Value::List(items) | Value::Array(items) => Json::Array(items.into_iter().map(owned).collect()),
        Value::Struct(fields) => {
            let mut map = Map::new();
            for (name, value) in fields.iter() {
                map.insert(name.clone(), owned(value.clone()));
            }
            Json::Object(map)
        }
        Value::Map(entries) => Json::Array(
            entries
                .iter()
                .map(|(k, v)| serde_json::json!({ "key": owned(k.clone()), "value": owned(v.clone()) }))
                .collect(),
        ),
        Value::Union(inner) => owned(*inner),
        #[allow(unreachable_patterns)]
        _ => Json::Null,
    }
}

/// The SQL name of a result column's type, as DuckDB would print it.
pub(crate) fn type_name(handle: &LogicalTypeHandle) -> String {
    if let Some(alias) = handle.get_alias() {
        return alias;
    }
    let Ok(id) = handle.try_id() else {
        return "UNKNOWN".to_owned();
    };
    let name = match id {
        LogicalTypeId::Boolean => "BOOLEAN",
        LogicalTypeId::Tinyint => "TINYINT",
        LogicalTypeId::Smallint => "SMALLINT",
        LogicalTypeId::Integer => "INTEGER",
        LogicalTypeId::Bigint => "BIGINT",
        LogicalTypeId::UTinyint => "UTINYINT",
        LogicalTypeId::USmallint => "USMALLINT",
        LogicalTypeId::UInteger => "UINTEGER",
        LogicalTypeId::UBigint => "UBIGINT",
        LogicalTypeId::Hugeint => "HUGEINT",
        LogicalTypeId::Float => "FLOAT",
        LogicalTypeId::Double => "DOUBLE",
        LogicalTypeId::Timestamp => "TIMESTAMP",
        LogicalTypeId::TimestampS => "TIMESTAMP_S",
        LogicalTypeId::TimestampMs => "TIMESTAMP_MS",
        LogicalTypeId::TimestampNs => "TIMESTAMP_NS",
        LogicalTypeId::TimestampTZ => "TIMESTAMP WITH TIME ZONE",
        LogicalTypeId::Date => "DATE",
        LogicalTypeId::Time => "TIME",
        LogicalTypeId::Interval => "INTERVAL",
        LogicalTypeId::Varchar => "VARCHAR",
        LogicalTypeId::Blob => "BLOB",
        LogicalTypeId::Uuid => "UUID",
        LogicalTypeId::Enum => "ENUM",
        LogicalTypeId::Decimal => {
            return format!("DECIMAL({},{})", handle.decimal_width(), handle.decimal_scale());
        }
        LogicalTypeId::List => return format!("{}[]", child_type(handle, 0)),
        LogicalTypeId::Struct => {
            let fields: Vec<String> = (0..handle.num_children())
                .map(|i| format!("{} {}", handle.child_name(i), child_type(handle, i)))
                .collect();
            return format!("STRUCT({})", fields.join(", "));
        }
        LogicalTypeId::Map => return format!("MAP({}, {})", child_type(handle, 0), child_type(handle, 1)),
        other => return format!("{other:?}").to_ascii_uppercase(),
    };
    name.to_owned()
}

fn child_type(handle: &LogicalTypeHandle, index: usize) -> String {
    if index < handle.num_children() {
        type_name(&handle.child(index))
    } else {
        "UNKNOWN".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn scalars() {
        let cases: Vec<(ValueRef<'_>, Cell)> = vec![
            (ValueRef::Null, Json::Null),
            (ValueRef::Int(-5), serde_json::json!(-5)),
            (
                ValueRef::HugeInt(1 << 60),
                serde_json::json!("1152921504606846976"),
            ),
            (
                ValueRef::UBigInt(u64::MAX),
                serde_json::json!("18446744073709551615"),
            ),
            (ValueRef::Double(f64::NAN), serde_json::json!("NaN")),
            (ValueRef::Date32(19_000), serde_json::json!("2022-01-08")),
            (
                ValueRef::Timestamp(TimeUnit::Microsecond, 1_500_000),
                serde_json::json!("1970-01-01T00:00:01.500000"),
            ),
            (
                ValueRef::Timestamp(TimeUnit::Second, 86_400),
                serde_json::json!("1970-01-02T00:00:00"),
            ),
            (
                ValueRef::Time64(TimeUnit::Microsecond, 3_723_000_000),
                serde_json::json!("01:02:03"),
            ),
            (
                ValueRef::Interval {
                    months: 14,
                    days: 3,
                    nanos: 3_661_500_000_000,
                },
                serde_json::json!("P1Y2M3DT1H1M1.500000S"),
            ),
            (
                ValueRef::Interval {
                    months: 0,
                    days: 0,
                    nanos: 0,
                },
                serde_json::json!("P0D"),
            ),
            (ValueRef::Blob(b"hi"), serde_json::json!("aGk=")),
            (ValueRef::Text(b"caf\xc3\xa9"), serde_json::json!("café")),
        ];
        for (value, expected) in cases {
            assert_eq!(cell(value), expected, "{value:?}");
        }
    }
}
