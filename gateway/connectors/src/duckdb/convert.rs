//! DuckDB values and types to engine-neutral JSON cells and SQL type names.

use duckdb::core::{LogicalTypeHandle, LogicalTypeId};
use duckdb::types::{TimeUnit, Value, ValueRef};
use serde_json::{Map, Value as Json};

use crate::Cell;
use crate::cell::{blob, float, float32, int, interval, text, uint};

fn micros(unit: TimeUnit, value: i64) -> i64 {
    match unit {
        TimeUnit::Second => value.saturating_mul(1_000_000),
        TimeUnit::Millisecond => value.saturating_mul(1_000),
        TimeUnit::Microsecond => value,
        TimeUnit::Nanosecond => value / 1_000,
    }
}

fn date(days: i32) -> Cell {
    crate::cell::date(i64::from(days))
}

fn timestamp(unit: TimeUnit, value: i64) -> Cell {
    crate::cell::timestamp(micros(unit, value), false)
}

/// A `TIMESTAMP WITH TIME ZONE` value: DuckDB keeps it as a UTC instant.
pub(crate) fn instant(unit: TimeUnit, value: i64) -> Cell {
    crate::cell::timestamp(micros(unit, value), true)
}

fn time(unit: TimeUnit, value: i64) -> Cell {
    crate::cell::time(micros(unit, value))
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
        ValueRef::Float(v) => float32(v),
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
        Value::Float(v) => float32(v),
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

/// A column's value as the agent gets it: a `TIMESTAMP WITH TIME ZONE` is an instant, marked UTC as the
/// server engines do, and DuckDB's JSON (VARCHAR underneath) is the parsed value, as from PostgreSQL.
pub(crate) fn column_cell(value: ValueRef<'_>, zoned: bool, json: bool) -> Cell {
    match value {
        ValueRef::Timestamp(unit, v) if zoned => instant(unit, v),
        ValueRef::Text(text) if json => crate::cell::json(text),
        value => cell(value),
    }
}

/// What naming a type needs from a DuckDB logical type. The crate's handle cannot be built from a raw
/// pointer outside the crate, so the one-shot reader has a handle of its own; both go through the same
/// `type_name`, which is what keeps the two paths' names identical.
pub(crate) trait TypeInfo: Sized {
    fn alias(&self) -> Option<String>;
    /// The type id, or DuckDB's raw id when this crate version does not know it.
    fn id(&self) -> Result<LogicalTypeId, u32>;
    fn decimal_width(&self) -> u8;
    fn decimal_scale(&self) -> u8;
    fn num_children(&self) -> usize;
    fn child_name(&self, index: usize) -> String;
    fn child(&self, index: usize) -> Self;
}

impl TypeInfo for LogicalTypeHandle {
    fn alias(&self) -> Option<String> {
        self.get_alias()
    }
    fn id(&self) -> Result<LogicalTypeId, u32> {
        self.try_id()
    }
    fn decimal_width(&self) -> u8 {
        LogicalTypeHandle::decimal_width(self)
    }
    fn decimal_scale(&self) -> u8 {
        LogicalTypeHandle::decimal_scale(self)
    }
    fn num_children(&self) -> usize {
        LogicalTypeHandle::num_children(self)
    }
    fn child_name(&self, index: usize) -> String {
        LogicalTypeHandle::child_name(self, index)
    }
    fn child(&self, index: usize) -> Self {
        LogicalTypeHandle::child(self, index)
    }
}

/// The SQL name of a result column's type, as DuckDB would print it.
pub(crate) fn type_name<T: TypeInfo>(handle: &T) -> String {
    if let Some(alias) = handle.alias() {
        return alias;
    }
    let Ok(id) = handle.id() else {
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

fn child_type<T: TypeInfo>(handle: &T, index: usize) -> String {
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
