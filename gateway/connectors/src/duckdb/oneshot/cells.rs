//! Arrow arrays from DuckDB's export to the crate's `ValueRef`s, by the crate's own rules.

use super::*;

/// A column whose values this reader cannot turn into cells (DuckDB's Arrow export gives it a shape
/// the crate has no value for, such as TIME_NS); the crate's reader panicked on these.
pub(super) fn unreadable(column: &Column) -> ConnectorError {
    ConnectorError::Query {
        message: format!(
            "column \"{}\" has DuckDB type {}, which Sluice cannot read yet; cast it, for example to VARCHAR",
            column.name, column.type_name
        ),
    }
}

fn downcast<A: 'static>(column: &ArrayRef) -> Result<&A, ConnectorError> {
    column.as_any().downcast_ref::<A>().ok_or_else(|| {
        internal(
            "arrow array",
            format!("unexpected array for {}", column.data_type()),
        )
    })
}

fn decimal<'a>(width: u8, scale: i8, value: i128) -> Result<ValueRef<'a>, ConnectorError> {
    let scale = u8::try_from(scale).map_err(|_| internal("decimal", "negative scale"))?;
    Decimal::new(width, scale, value)
        .map(ValueRef::Decimal)
        .map_err(|e| internal("decimal", e))
}

/// One cell of a top-level column as the crate's `ValueRef`, by the crate's rules: the Arrow type picks
/// the variant, and the column's DuckDB type tells apart what Arrow carries alike (GEOMETRY as binary;
/// HUGEINT, UHUGEINT and DECIMAL(38,0) as Decimal128(38,0)). Nested values stay borrowed Arrow arrays,
/// which the crate itself turns into owned values.
pub(super) fn value_ref<'a>(
    column: &'a ArrayRef,
    row: usize,
    logical: Option<LogicalTypeId>,
) -> Result<ValueRef<'a>, ConnectorError> {
    if column.is_null(row) {
        return Ok(ValueRef::Null);
    }
    let value = match column.data_type() {
        DataType::Utf8 => ValueRef::Text(downcast::<array::StringArray>(column)?.value(row).as_bytes()),
        DataType::LargeUtf8 => {
            ValueRef::Text(downcast::<array::LargeStringArray>(column)?.value(row).as_bytes())
        }
        DataType::Binary => ValueRef::Blob(downcast::<array::BinaryArray>(column)?.value(row)),
        DataType::LargeBinary => ValueRef::Blob(downcast::<array::LargeBinaryArray>(column)?.value(row)),
        DataType::FixedSizeBinary(_) => ValueRef::Blob(downcast::<FixedSizeBinaryArray>(column)?.value(row)),
        DataType::Boolean => ValueRef::Boolean(downcast::<array::BooleanArray>(column)?.value(row)),
        DataType::Int8 => ValueRef::TinyInt(downcast::<array::Int8Array>(column)?.value(row)),
        DataType::Int16 => ValueRef::SmallInt(downcast::<array::Int16Array>(column)?.value(row)),
        DataType::Int32 => ValueRef::Int(downcast::<array::Int32Array>(column)?.value(row)),
        DataType::Int64 => ValueRef::BigInt(downcast::<array::Int64Array>(column)?.value(row)),
        DataType::UInt8 => ValueRef::UTinyInt(downcast::<array::UInt8Array>(column)?.value(row)),
        DataType::UInt16 => ValueRef::USmallInt(downcast::<array::UInt16Array>(column)?.value(row)),
        DataType::UInt32 => ValueRef::UInt(downcast::<array::UInt32Array>(column)?.value(row)),
        DataType::UInt64 => ValueRef::UBigInt(downcast::<array::UInt64Array>(column)?.value(row)),
        DataType::Float32 => ValueRef::Float(downcast::<array::Float32Array>(column)?.value(row)),
        DataType::Float64 => ValueRef::Double(downcast::<array::Float64Array>(column)?.value(row)),
        DataType::Decimal32(width, scale) => decimal(
            *width,
            *scale,
            i128::from(downcast::<array::Decimal32Array>(column)?.value(row)),
        )?,
        DataType::Decimal64(width, scale) => decimal(
            *width,
            *scale,
            i128::from(downcast::<array::Decimal64Array>(column)?.value(row)),
        )?,
        DataType::Decimal128(width, scale) => {
            let value = downcast::<array::Decimal128Array>(column)?.value(row);
            if *scale == 0 && *width == Decimal::MAX_WIDTH {
                // HUGEINT, UHUGEINT and DECIMAL(38,0) look alike in Arrow; the DuckDB type decides.
                match logical {
                    Some(LogicalTypeId::UHugeint) => ValueRef::UHugeInt(value as u128),
                    Some(LogicalTypeId::Decimal) => decimal(*width, 0, value)?,
                    _ => ValueRef::HugeInt(value),
                }
            } else {
                decimal(*width, *scale, value)?
            }
        }
        DataType::Timestamp(unit, _) => {
            let (unit, value) = match unit {
                TimeUnit::Second => (
                    types::TimeUnit::Second,
                    downcast::<array::TimestampSecondArray>(column)?.value(row),
                ),
                TimeUnit::Millisecond => (
                    types::TimeUnit::Millisecond,
                    downcast::<array::TimestampMillisecondArray>(column)?.value(row),
                ),
                TimeUnit::Microsecond => (
                    types::TimeUnit::Microsecond,
                    downcast::<array::TimestampMicrosecondArray>(column)?.value(row),
                ),
                TimeUnit::Nanosecond => (
                    types::TimeUnit::Nanosecond,
                    downcast::<array::TimestampNanosecondArray>(column)?.value(row),
                ),
            };
            ValueRef::Timestamp(unit, value)
        }
        DataType::Date32 => ValueRef::Date32(downcast::<array::Date32Array>(column)?.value(row)),
        DataType::Time64(TimeUnit::Microsecond) => ValueRef::Time64(
            types::TimeUnit::Microsecond,
            downcast::<array::Time64MicrosecondArray>(column)?.value(row),
        ),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let value = downcast::<array::IntervalMonthDayNanoArray>(column)?.value(row);
            ValueRef::Interval {
                months: value.months,
                days: value.days,
                nanos: value.nanoseconds,
            }
        }
        DataType::List(_) => ValueRef::List(ListType::Regular(downcast::<ListArray>(column)?), row),
        DataType::LargeList(_) => ValueRef::List(ListType::Large(downcast::<LargeListArray>(column)?), row),
        DataType::Dictionary(key, _) => {
            let enumeration = match key.as_ref() {
                DataType::UInt8 => EnumType::UInt8(downcast::<DictionaryArray<UInt8Type>>(column)?),
                DataType::UInt16 => EnumType::UInt16(downcast::<DictionaryArray<UInt16Type>>(column)?),
                DataType::UInt32 => EnumType::UInt32(downcast::<DictionaryArray<UInt32Type>>(column)?),
                other => return Err(internal("enum", format!("unexpected key type {other}"))),
            };
            ValueRef::Enum(enumeration, row)
        }
        DataType::Struct(_) => ValueRef::Struct(downcast::<StructArray>(column)?, row),
        DataType::Map(..) => ValueRef::Map(downcast::<MapArray>(column)?, row),
        DataType::FixedSizeList(..) => ValueRef::Array(downcast::<FixedSizeListArray>(column)?, row),
        DataType::Union(..) => ValueRef::Union(column, row),
        other => return Err(internal("arrow array", format!("unsupported type {other}"))),
    };
    Ok(match value {
        ValueRef::Blob(bytes) if logical == Some(LogicalTypeId::Geometry) => ValueRef::Geometry(bytes),
        value => value,
    })
}
