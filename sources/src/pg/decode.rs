//! Column values as JSON.
//!
//! tokio-postgres asks for every result column in binary, so each type
//! needs its own reading; a type without one is refused when the query is
//! prepared ([`supported`]), with a hint to cast the column to text,
//! rather than answered as bytes nobody can read.
//!
//! | PostgreSQL | JSON |
//! | --- | --- |
//! | bool | boolean |
//! | int2, int4, int8, oid | number |
//! | float4, float8 | number; `"NaN"`, `"Infinity"`, `"-Infinity"` as strings |
//! | numeric | **string**, exact (`"12.50"`): a JSON number would be read as a double by most clients and lose digits |
//! | text, varchar, char, name, enums, xml, citext | string |
//! | json, jsonb | the JSON value itself |
//! | uuid | string |
//! | bytea | string, standard base64 |
//! | date, timestamp, timestamptz, time, timetz | ISO 8601 string; timestamptz in UTC with `Z` |
//! | interval | ISO 8601 duration string (`P1Y2M3DT4H5M6.5S`) |
//! | inet, cidr | string (`10.0.0.1`, `10.0.0.0/8`) |
//! | arrays of these | arrays (nested for several dimensions) |
//! | domains | as their base type |
//! | NULL, void | null |

use std::error::Error;
use std::fmt::Write;

use base64::Engine;
use chrono::{Duration, NaiveDate, NaiveTime};
use fallible_iterator::FallibleIterator;
use postgres_protocol::types as wire;
use serde_json::{Number, Value};
use tokio_postgres::types::{FromSql, Kind, Type};

type BoxError = Box<dyn Error + Sync + Send>;

/// One column value, read as JSON.
pub struct Cell(pub Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        decode(ty, raw).map(Cell)
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, BoxError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(ty: &Type) -> bool {
        supported(ty)
    }
}

/// Whether values of `ty` can be read as JSON.
pub fn supported(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Domain(base) => supported(base),
        Kind::Array(element) => supported(element),
        Kind::Enum(_) => true,
        _ => {
            matches!(
                *ty,
                Type::BOOL
                    | Type::INT2
                    | Type::INT4
                    | Type::INT8
                    | Type::OID
                    | Type::FLOAT4
                    | Type::FLOAT8
                    | Type::NUMERIC
                    | Type::TEXT
                    | Type::VARCHAR
                    | Type::BPCHAR
                    | Type::NAME
                    | Type::CHAR
                    | Type::UNKNOWN
                    | Type::XML
                    | Type::JSON
                    | Type::JSONB
                    | Type::UUID
                    | Type::BYTEA
                    | Type::DATE
                    | Type::TIME
                    | Type::TIMETZ
                    | Type::TIMESTAMP
                    | Type::TIMESTAMPTZ
                    | Type::INTERVAL
                    | Type::INET
                    | Type::CIDR
                    | Type::VOID
            ) || ty.name() == "citext"
        }
    }
}

fn text(raw: &[u8]) -> Result<Value, BoxError> {
    Ok(Value::String(std::str::from_utf8(raw)?.to_owned()))
}

fn float(x: f64) -> Value {
    match Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => Value::String("NaN".into()),
        None if x > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// Reads one non-null value of type `ty`.
pub fn decode(ty: &Type, raw: &[u8]) -> Result<Value, BoxError> {
    match ty.kind() {
        Kind::Domain(base) => return decode(base, raw),
        Kind::Array(element) => return array(element, raw),
        Kind::Enum(_) => return text(raw),
        _ => {}
    }
    Ok(match *ty {
        Type::BOOL => Value::Bool(wire::bool_from_sql(raw)?),
        Type::INT2 => wire::int2_from_sql(raw)?.into(),
        Type::INT4 => wire::int4_from_sql(raw)?.into(),
        Type::INT8 => wire::int8_from_sql(raw)?.into(),
        Type::OID => wire::oid_from_sql(raw)?.into(),
        Type::FLOAT4 => float(wire::float4_from_sql(raw)? as f64),
        Type::FLOAT8 => float(wire::float8_from_sql(raw)?),
        Type::NUMERIC => Value::String(numeric(raw)?),
        Type::CHAR => Value::String((raw.first().copied().unwrap_or(0) as char).to_string()),
        Type::JSON => serde_json::from_slice(raw)?,
        Type::JSONB => match raw.split_first() {
            Some((1, json)) => serde_json::from_slice(json)?,
            _ => return Err("unknown jsonb version".into()),
        },
        Type::UUID => {
            let b = wire::uuid_from_sql(raw)?;
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Value::String(format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            ))
        }
        Type::BYTEA => Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
        Type::DATE => Value::String(date(wire::date_from_sql(raw)?)),
        Type::TIMESTAMP => Value::String(timestamp(wire::timestamp_from_sql(raw)?, "")),
        Type::TIMESTAMPTZ => Value::String(timestamp(wire::timestamp_from_sql(raw)?, "Z")),
        Type::TIME => Value::String(time(wire::time_from_sql(raw)?)?),
        Type::TIMETZ => {
            if raw.len() != 12 {
                return Err("invalid timetz".into());
            }
            let micros = i64::from_be_bytes(raw[0..8].try_into()?);
            // Seconds *west* of UTC, the opposite of ISO's sign.
            let west = i32::from_be_bytes(raw[8..12].try_into()?);
            let east = -west;
            let sign = if east < 0 { '-' } else { '+' };
            let east = east.unsigned_abs();
            Value::String(format!(
                "{}{sign}{:02}:{:02}",
                time(micros)?,
                east / 3600,
                east % 3600 / 60
            ))
        }
        Type::INTERVAL => Value::String(interval(raw)?),
        // What `SELECT pg_sleep(1)` and other procedures-as-functions give.
        Type::VOID => Value::Null,
        Type::INET | Type::CIDR => {
            let inet = wire::inet_from_sql(raw)?;
            let full = if inet.addr().is_ipv4() { 32 } else { 128 };
            if *ty == Type::INET && inet.netmask() == full {
                Value::String(inet.addr().to_string())
            } else {
                Value::String(format!("{}/{}", inet.addr(), inet.netmask()))
            }
        }
        _ if supported(ty) => text(raw)?,
        _ => return Err(format!("the type {} has no JSON form", ty.name()).into()),
    })
}

fn array(element: &Type, raw: &[u8]) -> Result<Value, BoxError> {
    let array = wire::array_from_sql(raw)?;
    let dims: Vec<usize> = array.dimensions().map(|d| Ok(d.len as usize)).collect()?;
    let mut values = Vec::new();
    let mut it = array.values();
    while let Some(item) = it.next()? {
        values.push(match item {
            Some(bytes) => decode(element, bytes)?,
            None => Value::Null,
        });
    }
    if dims.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    // Elements come in row-major order; fold the innermost dimension
    // first.
    let mut level = values;
    for &len in dims[1..].iter().rev() {
        level = level
            .chunks(len.max(1))
            .map(|chunk| Value::Array(chunk.to_vec()))
            .collect();
    }
    Ok(Value::Array(level))
}

/// numeric's binary form: digit count, weight (of the first base-10000
/// digit), sign, display scale, then the base-10000 digits.
fn numeric(raw: &[u8]) -> Result<String, BoxError> {
    if raw.len() < 8 {
        return Err("invalid numeric".into());
    }
    let word = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
    let ndigits = word(0) as usize;
    let weight = word(2) as i16 as i64;
    let sign = word(4);
    let dscale = word(6) as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return Err("invalid numeric sign".into()),
    }
    if raw.len() != 8 + 2 * ndigits {
        return Err("invalid numeric length".into());
    }
    let digit = |i: i64| -> u16 {
        if i < 0 || i as usize >= ndigits {
            0
        } else {
            word(8 + 2 * i as usize)
        }
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
                write!(out, "{}", digit(i))?;
            } else {
                write!(out, "{:04}", digit(i))?;
            }
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut i = weight + 1;
        while fraction.len() < dscale {
            write!(fraction, "{:04}", digit(i))?;
            i += 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date")
}

fn date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => epoch()
            .checked_add_signed(Duration::days(days as i64))
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| format!("{days} days from 2000-01-01")),
    }
}

fn timestamp(micros: i64, zone: &str) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        _ => epoch()
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.checked_add_signed(Duration::microseconds(micros)))
            .map(|t| format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S%.f")))
            .unwrap_or_else(|| format!("{micros} µs from 2000-01-01")),
    }
}

fn time(micros: i64) -> Result<String, BoxError> {
    // 24:00:00 is a valid PostgreSQL time, not a chrono one.
    if micros == 86_400_000_000 {
        return Ok("24:00:00".into());
    }
    let t = NaiveTime::from_num_seconds_from_midnight_opt(
        u32::try_from(micros / 1_000_000)?,
        u32::try_from(micros % 1_000_000)? * 1000,
    )
    .ok_or("invalid time")?;
    Ok(t.format("%H:%M:%S%.f").to_string())
}

fn interval(raw: &[u8]) -> Result<String, BoxError> {
    if raw.len() != 16 {
        return Err("invalid interval".into());
    }
    let micros = i64::from_be_bytes(raw[0..8].try_into()?);
    let days = i32::from_be_bytes(raw[8..12].try_into()?);
    let months = i32::from_be_bytes(raw[12..16].try_into()?);
    let mut out = String::from("P");
    if months / 12 != 0 {
        write!(out, "{}Y", months / 12)?;
    }
    if months % 12 != 0 {
        write!(out, "{}M", months % 12)?;
    }
    if days != 0 {
        write!(out, "{days}D")?;
    }
    if micros != 0 {
        out.push('T');
        let hours = micros / 3_600_000_000;
        let minutes = micros % 3_600_000_000 / 60_000_000;
        let rest = micros % 60_000_000;
        if hours != 0 {
            write!(out, "{hours}H")?;
        }
        if minutes != 0 {
            write!(out, "{minutes}M")?;
        }
        if rest != 0 {
            let sign = if rest < 0 { "-" } else { "" };
            let rest = rest.unsigned_abs();
            let fraction = format!("{:06}", rest % 1_000_000);
            let fraction = fraction.trim_end_matches('0');
            write!(out, "{sign}{}", rest / 1_000_000)?;
            if !fraction.is_empty() {
                write!(out, ".{fraction}")?;
            }
            out.push('S');
        }
    }
    if out == "P" {
        out.push_str("T0S");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend((digits.len() as u16).to_be_bytes());
        raw.extend(weight.to_be_bytes());
        raw.extend(sign.to_be_bytes());
        raw.extend(dscale.to_be_bytes());
        for d in digits {
            raw.extend(d.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics_keep_every_digit() {
        // 12345678.90 = [1234, 5678, 9000], weight 1, scale 2.
        assert_eq!(
            numeric(&numeric_bytes(1, 0, 2, &[1234, 5678, 9000])).unwrap(),
            "12345678.90"
        );
        // -0.0001 = [1], weight -1, scale 4.
        assert_eq!(
            numeric(&numeric_bytes(-1, 0x4000, 4, &[1])).unwrap(),
            "-0.0001"
        );
        // 0.00000123 = 0.0000|0123: weight -2, digits [123], scale 8.
        assert_eq!(
            numeric(&numeric_bytes(-2, 0, 8, &[123])).unwrap(),
            "0.00000123"
        );
        // 10000 = [1], weight 1, scale 0 (trailing zero digits dropped).
        assert_eq!(numeric(&numeric_bytes(1, 0, 0, &[1])).unwrap(), "10000");
        assert_eq!(numeric(&numeric_bytes(0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert!(numeric(&[0, 1]).is_err());
    }

    #[test]
    fn intervals_read_as_iso_durations() {
        let raw = |micros: i64, days: i32, months: i32| {
            let mut v = micros.to_be_bytes().to_vec();
            v.extend(days.to_be_bytes());
            v.extend(months.to_be_bytes());
            v
        };
        assert_eq!(
            interval(&raw(4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000, 3, 14)).unwrap(),
            "P1Y2M3DT4H5M6.5S"
        );
        assert_eq!(interval(&raw(0, 0, 0)).unwrap(), "PT0S");
    }

    #[test]
    fn dates_and_times_read_as_iso() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(i32::MAX), "infinity");
        assert_eq!(timestamp(1_500_000, "Z"), "2000-01-01T00:00:01.500Z");
        assert_eq!(time(3_600_000_000).unwrap(), "01:00:00");
    }
}
