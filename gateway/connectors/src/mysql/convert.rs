//! MySQL/MariaDB binary-protocol values to engine-neutral JSON cells, decoded by column type.
//!
//! Prepared statements return rows in the binary protocol: fixed-width little-endian numbers, decimals
//! as their exact text, temporal values as small length-prefixed structs. Decoding those bytes here keeps
//! every value exact (zero dates, negative and >24h TIME values included).

use serde_json::Value as Json;

use crate::Cell;
use crate::cell;

fn le<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    bytes.get(..N)?.try_into().ok()
}

/// Converts one non-NULL value whose column sqlx names `type_name` (e.g. `INT UNSIGNED`, `DATETIME`).
pub(crate) fn cell(type_name: &str, bytes: &[u8]) -> Cell {
    decode(type_name, bytes).unwrap_or_else(|| match std::str::from_utf8(bytes) {
        Ok(s) => Json::String(s.to_owned()),
        Err(_) => cell::blob(bytes),
    })
}

fn decode(type_name: &str, bytes: &[u8]) -> Option<Cell> {
    Some(match type_name {
        // TINYINT(1), MySQL's BOOLEAN.
        "BOOLEAN" => Json::Bool(*bytes.first()? != 0),
        "TINYINT" => cell::int(i128::from(i8::from_le_bytes(le(bytes)?))),
        "TINYINT UNSIGNED" => cell::uint(u128::from(*bytes.first()?)),
        "SMALLINT" => cell::int(i128::from(i16::from_le_bytes(le(bytes)?))),
        "SMALLINT UNSIGNED" | "YEAR" => cell::uint(u128::from(u16::from_le_bytes(le(bytes)?))),
        "INT" | "MEDIUMINT" => cell::int(i128::from(i32::from_le_bytes(le(bytes)?))),
        "INT UNSIGNED" | "MEDIUMINT UNSIGNED" => cell::uint(u128::from(u32::from_le_bytes(le(bytes)?))),
        "BIGINT" => cell::int(i128::from(i64::from_le_bytes(le(bytes)?))),
        "BIGINT UNSIGNED" => cell::uint(u128::from(u64::from_le_bytes(le(bytes)?))),
        "FLOAT" => cell::float32(f32::from_le_bytes(le(bytes)?)),
        "DOUBLE" => cell::float(f64::from_le_bytes(le(bytes)?)),
        "DECIMAL" => Json::String(std::str::from_utf8(bytes).ok()?.to_owned()),
        "JSON" => cell::json(bytes),
        "BIT" => {
            // Big-endian bits, at most 64 of them.
            let value = bytes.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
            cell::uint(value)
        }
        "DATE" => Json::String(date(bytes)?),
        "DATETIME" => Json::String(datetime(bytes)?),
        // TIMESTAMP values arrive in the session time zone, which the connector pins to UTC.
        "TIMESTAMP" => Json::String(format!("{}Z", datetime(bytes)?)),
        "TIME" => Json::String(time(bytes)?),
        // MariaDB's UUID type travels as a binary-collated fixed string holding the text form.
        "BINARY" if is_uuid_text(bytes) => cell::text(bytes),
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" | "GEOMETRY" => {
            cell::blob(bytes)
        }
        "NULL" => Json::Null,
        _ => return None,
    })
}

fn is_uuid_text(bytes: &[u8]) -> bool {
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `len, year(u16), month, day`; length 0 is the zero date.
fn date(bytes: &[u8]) -> Option<String> {
    let len = *bytes.first()?;
    if len == 0 {
        return Some("0000-00-00".to_owned());
    }
    let year = u16::from_le_bytes(le(bytes.get(1..)?)?);
    Some(format!("{year:04}-{:02}-{:02}", bytes.get(3)?, bytes.get(4)?))
}

/// `len, year, month, day[, hour, minute, second[, microseconds(u32)]]`.
fn datetime(bytes: &[u8]) -> Option<String> {
    let len = *bytes.first()?;
    let day = date(bytes)?;
    let (h, m, s) = if len >= 7 {
        (*bytes.get(5)?, *bytes.get(6)?, *bytes.get(7)?)
    } else {
        (0, 0, 0)
    };
    let us = if len >= 11 {
        u32::from_le_bytes(le(bytes.get(8..)?)?)
    } else {
        0
    };
    let mut out = format!("{day}T{h:02}:{m:02}:{s:02}");
    if us != 0 {
        out.push_str(&format!(".{us:06}"));
    }
    Some(out)
}

/// `len, negative, days(u32), hour, minute, second[, microseconds]`. MySQL's TIME is also a duration
/// (up to ±838:59:59), so hours are not wrapped at 24.
fn time(bytes: &[u8]) -> Option<String> {
    let len = *bytes.first()?;
    if len == 0 {
        return Some("00:00:00".to_owned());
    }
    let negative = *bytes.get(1)? != 0;
    let days = u32::from_le_bytes(le(bytes.get(2..)?)?);
    let hours = days * 24 + u32::from(*bytes.get(6)?);
    let (m, s) = (*bytes.get(7)?, *bytes.get(8)?);
    let us = if len >= 12 {
        u32::from_le_bytes(le(bytes.get(9..)?)?)
    } else {
        0
    };
    let mut out = format!("{}{hours:02}:{m:02}:{s:02}", if negative { "-" } else { "" });
    if us != 0 {
        out.push_str(&format!(".{us:06}"));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn binary_values() {
        let cases: Vec<(&str, Vec<u8>, Cell)> = vec![
            (
                "BIGINT UNSIGNED",
                u64::MAX.to_le_bytes().to_vec(),
                json!("18446744073709551615"),
            ),
            ("INT", (-7i32).to_le_bytes().to_vec(), json!(-7)),
            ("BOOLEAN", vec![1], json!(true)),
            ("DECIMAL", b"-12.340".to_vec(), json!("-12.340")),
            ("DATE", vec![4, 0xe8, 0x07, 2, 29], json!("2024-02-29")),
            ("DATE", vec![0], json!("0000-00-00")),
            (
                "DATETIME",
                vec![7, 0xe8, 0x07, 1, 2, 3, 4, 5],
                json!("2024-01-02T03:04:05"),
            ),
            (
                "TIMESTAMP",
                vec![11, 0xe8, 0x07, 1, 2, 3, 4, 5, 0x40, 0xe2, 0x01, 0],
                json!("2024-01-02T03:04:05.123456Z"),
            ),
            ("TIME", vec![8, 1, 1, 0, 0, 0, 2, 3, 4], json!("-26:03:04")),
            ("BIT", vec![1, 2], json!(258)),
            ("VARBINARY", b"hi".to_vec(), json!("aGk=")),
            (
                "BINARY",
                b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".to_vec(),
                json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            ),
            ("JSON", br#"{"k":1}"#.to_vec(), json!({"k": 1})),
            ("VARCHAR", "café".as_bytes().to_vec(), json!("café")),
        ];
        for (type_name, bytes, expected) in cases {
            assert_eq!(cell(type_name, &bytes), expected, "{type_name}");
        }
    }
}
