//! PostgreSQL binary wire values to engine-neutral JSON cells, decoded by type OID.
//!
//! sqlx asks for every result column in binary format, so the exact value is in hand: NUMERIC keeps all
//! its digits, timestamps their microseconds, arrays their shape. Types this module does not know are
//! passed through as text when their binary form is text (enums, citext, …) and as base64 otherwise.

use serde_json::Value as Json;

use crate::Cell;
use crate::cell;

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i64 = 10_957;

pub(crate) mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const MONEY: u32 = 790;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const TIMETZ: u32 = 1266;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

fn be<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    bytes.get(..N)?.try_into().ok()
}

/// Converts one non-NULL value of type `type_oid` (already resolved through domains).
pub(crate) fn cell(type_oid: u32, bytes: &[u8]) -> Cell {
    decode(type_oid, bytes).unwrap_or_else(|| fallback(bytes))
}

fn fallback(bytes: &[u8]) -> Cell {
    match std::str::from_utf8(bytes) {
        Ok(s) => Json::String(s.to_owned()),
        Err(_) => cell::blob(bytes),
    }
}

fn decode(type_oid: u32, bytes: &[u8]) -> Option<Cell> {
    Some(match type_oid {
        oid::BOOL => Json::Bool(*bytes.first()? != 0),
        oid::INT2 => cell::int(i128::from(i16::from_be_bytes(be(bytes)?))),
        oid::INT4 => cell::int(i128::from(i32::from_be_bytes(be(bytes)?))),
        oid::INT8 => cell::int(i128::from(i64::from_be_bytes(be(bytes)?))),
        oid::OID => cell::uint(u128::from(u32::from_be_bytes(be(bytes)?))),
        oid::FLOAT4 => cell::float32(f32::from_be_bytes(be(bytes)?)),
        oid::FLOAT8 => cell::float(f64::from_be_bytes(be(bytes)?)),
        oid::NUMERIC => Json::String(numeric(bytes)?),
        oid::MONEY => {
            // Cents in the server's lc_monetary; two fractional digits is every common locale's choice.
            let cents = i64::from_be_bytes(be(bytes)?);
            let sign = if cents < 0 { "-" } else { "" };
            let abs = cents.unsigned_abs();
            Json::String(format!("{sign}{}.{:02}", abs / 100, abs % 100))
        }
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::CHAR | oid::UNKNOWN => cell::text(bytes),
        oid::BYTEA => cell::blob(bytes),
        oid::UUID => cell::uuid(bytes),
        oid::JSON => cell::json(bytes),
        // jsonb's binary form is a version byte (1) followed by the JSON text.
        oid::JSONB => cell::json(bytes.get(1..)?),
        oid::DATE => {
            let days = i32::from_be_bytes(be(bytes)?);
            match days {
                i32::MAX => Json::String("infinity".to_owned()),
                i32::MIN => Json::String("-infinity".to_owned()),
                d => cell::date(i64::from(d) + PG_EPOCH_DAYS),
            }
        }
        oid::TIME => cell::time(i64::from_be_bytes(be(bytes)?)),
        oid::TIMETZ => {
            let us = i64::from_be_bytes(be(bytes)?);
            // The wire carries seconds *west* of UTC; ISO-8601 offsets count east.
            let west = i32::from_be_bytes(be(bytes.get(8..)?)?);
            Json::String(format!("{}{}", cell::time_text(us), cell::offset_text(-west)))
        }
        oid::TIMESTAMP | oid::TIMESTAMPTZ => {
            let us = i64::from_be_bytes(be(bytes)?);
            match us {
                i64::MAX => Json::String("infinity".to_owned()),
                i64::MIN => Json::String("-infinity".to_owned()),
                us => cell::timestamp(us.checked_add(PG_EPOCH_US)?, type_oid == oid::TIMESTAMPTZ),
            }
        }
        oid::INTERVAL => {
            let us = i64::from_be_bytes(be(bytes)?);
            let days = i32::from_be_bytes(be(bytes.get(8..)?)?);
            let months = i32::from_be_bytes(be(bytes.get(12..)?)?);
            cell::interval(months, days, us.checked_mul(1_000)?)
        }
        _ => return None,
    })
}

/// NUMERIC's binary form: base-10000 digits with a weight, a sign and a display scale. Rendered as the
/// exact decimal string PostgreSQL itself would print.
pub(crate) fn numeric(bytes: &[u8]) -> Option<String> {
    let ndigits = usize::from(u16::from_be_bytes(be(bytes)?));
    let weight = i64::from(i16::from_be_bytes(be(bytes.get(2..)?)?));
    let sign = u16::from_be_bytes(be(bytes.get(4..)?)?);
    let dscale = usize::from(u16::from_be_bytes(be(bytes.get(6..)?)?));
    match sign {
        0xC000 => return Some("NaN".to_owned()),
        0xD000 => return Some("Infinity".to_owned()),
        0xF000 => return Some("-Infinity".to_owned()),
        _ => {}
    }
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        digits.push(i64::from(u16::from_be_bytes(be(bytes.get(8 + 2 * i..)?)?)));
    }
    let digit = |index: i64| -> i64 {
        usize::try_from(index)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                out.push_str(&digit(i).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut index = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(index)));
            index += 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    if out == "-0" || (out.starts_with("-0.") && out[3..].bytes().all(|b| b == b'0')) {
        out.remove(0);
    }
    Some(out)
}

/// A one-dimensional-or-more array's binary form: header, dimensions, then each element with its length
/// (-1 for NULL). Nested dimensions become nested JSON arrays.
pub(crate) fn array(bytes: &[u8]) -> Option<Cell> {
    let ndim = usize::try_from(i32::from_be_bytes(be(bytes)?)).ok()?;
    let elem_oid = u32::from_be_bytes(be(bytes.get(8..)?)?);
    let mut dims = Vec::with_capacity(ndim);
    for d in 0..ndim {
        let len = i32::from_be_bytes(be(bytes.get(12 + 8 * d..)?)?);
        dims.push(usize::try_from(len).ok()?);
    }
    let mut rest = bytes.get(12 + 8 * ndim..)?;
    let total: usize = if ndim == 0 { 0 } else { dims.iter().product() };
    let mut flat = Vec::with_capacity(total);
    for _ in 0..total {
        let len = i32::from_be_bytes(be(rest)?);
        rest = rest.get(4..)?;
        if len < 0 {
            flat.push(Json::Null);
        } else {
            let len = usize::try_from(len).ok()?;
            flat.push(cell(elem_oid, rest.get(..len)?));
            rest = rest.get(len..)?;
        }
    }
    Some(nest(&dims, &mut flat.into_iter()))
}

fn nest(dims: &[usize], items: &mut impl Iterator<Item = Cell>) -> Cell {
    match dims {
        [] => Json::Array(Vec::new()),
        [len] => Json::Array(items.take(*len).collect()),
        [len, inner @ ..] => Json::Array((0..*len).map(|_| nest(inner, items)).collect()),
    }
}

/// The SQL-standard spelling of a PostgreSQL type name as sqlx reports it (`INT4` → `INTEGER`), so that
/// agents see the same names across engines; other names pass through.
pub(crate) fn type_name(pg_name: &str) -> String {
    if let Some(element) = pg_name.strip_suffix("[]") {
        return format!("{}[]", type_name(element));
    }
    let name = match pg_name {
        "BOOL" => "BOOLEAN",
        "INT2" => "SMALLINT",
        "INT4" => "INTEGER",
        "INT8" => "BIGINT",
        "FLOAT4" => "REAL",
        "FLOAT8" => "DOUBLE PRECISION",
        "BPCHAR" => "CHAR",
        "TIMESTAMPTZ" => "TIMESTAMP WITH TIME ZONE",
        "TIMETZ" => "TIME WITH TIME ZONE",
        other => return other.to_owned(),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((digits.len() as u16).to_be_bytes());
        out.extend(weight.to_be_bytes());
        out.extend(sign.to_be_bytes());
        out.extend(dscale.to_be_bytes());
        for d in digits {
            out.extend(d.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_are_exact() {
        let check = |bytes: Vec<u8>, expected: &str| assert_eq!(numeric(&bytes).as_deref(), Some(expected));
        check(numeric_bytes(0, 0, 2, &[12, 3400]), "12.34");
        check(numeric_bytes(0, 0x4000, 2, &[12, 3400]), "-12.34");
        check(numeric_bytes(-1, 0, 4, &[5]), "0.0005");
        check(numeric_bytes(-2, 0, 6, &[1200]), "0.000012");
        check(numeric_bytes(1, 0, 0, &[1, 0]), "10000");
        check(
            numeric_bytes(4, 0, 0, &[9, 2233, 7203, 6854, 7758]),
            "92233720368547758",
        );
        check(numeric_bytes(0, 0, 3, &[]), "0.000");
        check(numeric_bytes(0, 0xC000, 0, &[]), "NaN");
        check(numeric_bytes(0, 0xF000, 0, &[]), "-Infinity");
    }

    #[test]
    fn scalars_and_arrays() {
        assert_eq!(
            cell(oid::INT8, &(1i64 << 60).to_be_bytes()),
            json!("1152921504606846976")
        );
        assert_eq!(cell(oid::DATE, &0i32.to_be_bytes()), json!("2000-01-01"));
        assert_eq!(
            cell(oid::TIMESTAMPTZ, &1_500_000i64.to_be_bytes()),
            json!("2000-01-01T00:00:01.500000Z")
        );
        let mut timetz = 3_600_000_000i64.to_be_bytes().to_vec();
        timetz.extend((-7200i32).to_be_bytes());
        assert_eq!(cell(oid::TIMETZ, &timetz), json!("01:00:00+02:00"));
        assert_eq!(cell(oid::JSONB, b"\x01[1,\"a\"]"), json!([1, "a"]));
        // int4[] {{1,NULL},{3,4}}
        let mut arr = Vec::new();
        arr.extend(2i32.to_be_bytes());
        arr.extend(1i32.to_be_bytes());
        arr.extend(oid::INT4.to_be_bytes());
        for _ in 0..2 {
            arr.extend(2i32.to_be_bytes());
            arr.extend(1i32.to_be_bytes());
        }
        for v in [Some(1i32), None, Some(3), Some(4)] {
            match v {
                Some(v) => {
                    arr.extend(4i32.to_be_bytes());
                    arr.extend(v.to_be_bytes());
                }
                None => arr.extend((-1i32).to_be_bytes()),
            }
        }
        assert_eq!(array(&arr), Some(json!([[1, null], [3, 4]])));
        assert_eq!(type_name("INT4[]"), "INTEGER[]");
    }
}
