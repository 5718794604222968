//! JSON parameter values as bound query parameters.
//!
//! After `prepare` the server says the type of every `$n`; each JSON value
//! is checked against that type here, before anything runs, so that a
//! value that does not fit is refused with the placeholder's name
//! ([`SourceError::ParameterRefused`]) rather than as a server error.
//!
//! Booleans, integers, floats, text and JSON are sent in binary. Every
//! other type (numeric, dates and times, uuid, enums, arrays, intervals,
//! network addresses ...) is sent as text in the Bind message's *text
//! format*, which the server parses with the type's input function: still
//! a value, never SQL, and exact (a numeric is not rounded through a
//! float on the way).

use std::error::Error;

use bytes::{BufMut, BytesMut};
use serde_json::Value;
use tokio_postgres::types::{to_sql_checked, Format, IsNull, Kind, ToSql, Type};

use crate::error::SourceError;

/// One parameter, ready to be sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Bound {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    /// text, varchar, bpchar, name: UTF-8 bytes.
    Text(String),
    Json(String),
    Jsonb(String),
    /// Any other type, in the text format for the server to parse.
    Parsed(String),
}

impl ToSql for Bound {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Bound::Null => return Ok(IsNull::Yes),
            Bound::Bool(v) => out.put_u8(*v as u8),
            Bound::I16(v) => out.put_i16(*v),
            Bound::I32(v) => out.put_i32(*v),
            Bound::I64(v) => out.put_i64(*v),
            Bound::F32(v) => out.put_f32(*v),
            Bound::F64(v) => out.put_f64(*v),
            Bound::Text(v) | Bound::Json(v) | Bound::Parsed(v) => out.put_slice(v.as_bytes()),
            Bound::Jsonb(v) => {
                // jsonb's binary form: a version byte, then the text.
                out.put_u8(1);
                out.put_slice(v.as_bytes());
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        // `bind` chose the variant from the statement's own types.
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        match self {
            Bound::Parsed(_) => Format::Text,
            _ => Format::Binary,
        }
    }

    to_sql_checked!();
}

/// Binds `value` to a parameter of type `ty`; `name` is its placeholder.
pub fn bind(name: &str, value: &Value, ty: &Type) -> Result<Bound, SourceError> {
    let refuse = |reason: String| SourceError::ParameterRefused {
        name: name.to_owned(),
        reason,
    };
    if value.is_null() {
        return Ok(Bound::Null);
    }
    if let Kind::Domain(base) = ty.kind() {
        // A domain travels in its base type's form; the server checks the
        // domain's constraints.
        return bind(name, value, base);
    }
    if let Kind::Array(element) = ty.kind() {
        let Value::Array(_) = value else {
            return Err(refuse(format!("expects an array ({})", ty.name())));
        };
        let mut text = String::new();
        array_literal(name, value, element, &mut text)?;
        return Ok(Bound::Parsed(text));
    }
    let bound = match *ty {
        Type::BOOL => match value {
            Value::Bool(b) => Bound::Bool(*b),
            Value::String(s) if s == "true" || s == "false" => Bound::Bool(s == "true"),
            _ => return Err(refuse("expects true or false".into())),
        },
        Type::INT2 | Type::INT4 | Type::INT8 => {
            let n = match value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(|| refuse(format!("expects an integer ({})", ty.name())))?;
            let out_of_range = || refuse(format!("{n} is out of range for {}", ty.name()));
            match *ty {
                Type::INT2 => Bound::I16(i16::try_from(n).map_err(|_| out_of_range())?),
                Type::INT4 => Bound::I32(i32::try_from(n).map_err(|_| out_of_range())?),
                _ => Bound::I64(n),
            }
        }
        Type::FLOAT4 | Type::FLOAT8 => {
            let x = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
                _ => None,
            }
            .ok_or_else(|| refuse(format!("expects a number ({})", ty.name())))?;
            if *ty == Type::FLOAT4 {
                if x.abs() > f32::MAX as f64 {
                    return Err(refuse(format!("{x} is out of range for real")));
                }
                Bound::F32(x as f32)
            } else {
                Bound::F64(x)
            }
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            Bound::Text(scalar_text(value).ok_or_else(|| refuse("expects text".into()))?)
        }
        Type::JSON => Bound::Json(value.to_string()),
        Type::JSONB => Bound::Jsonb(value.to_string()),
        _ => {
            let text =
                scalar_text(value).ok_or_else(|| refuse(format!("expects one {}", ty.name())))?;
            check_text_form(ty, &text).map_err(|why| refuse(why.to_owned()))?;
            Bound::Parsed(text)
        }
    };
    if let Bound::Text(text) | Bound::Parsed(text) = &bound {
        if text.contains('\0') {
            return Err(refuse("text may not contain NUL characters".into()));
        }
    }
    Ok(bound)
}

/// A string, number or boolean as text; `None` for arrays and objects.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Cheap checks of the text forms most often mistyped, so the error
/// names the parameter; the server's input function is the real judge.
fn check_text_form(ty: &Type, text: &str) -> Result<(), &'static str> {
    match *ty {
        Type::NUMERIC => {
            let t = text.trim();
            let number = t.parse::<f64>().is_ok()
                && t.bytes()
                    .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
            let special = ["NaN", "Infinity", "-Infinity"].contains(&t);
            if number || special {
                Ok(())
            } else {
                Err("expects a number (numeric)")
            }
        }
        Type::UUID => {
            let t = text.trim().trim_start_matches('{').trim_end_matches('}');
            let hex: Vec<u8> = t.bytes().filter(|b| *b != b'-').collect();
            if hex.len() == 32 && hex.iter().all(u8::is_ascii_hexdigit) {
                Ok(())
            } else {
                Err("expects a UUID")
            }
        }
        _ => Ok(()),
    }
}

/// Writes `value` (a JSON array, maybe nested) as an array literal of
/// `element`s: `{"a","b",NULL}`. Every element is checked as a
/// parameter of the element type first, and written quoted, so no
/// element can close the literal early.
fn array_literal(
    name: &str,
    value: &Value,
    element: &Type,
    out: &mut String,
) -> Result<(), SourceError> {
    match value {
        Value::Array(items) => {
            out.push('{');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                array_literal(name, item, element, out)?;
            }
            out.push('}');
        }
        Value::Null => out.push_str("NULL"),
        _ => {
            let text = match bind(name, value, element)? {
                Bound::Null => {
                    out.push_str("NULL");
                    return Ok(());
                }
                Bound::Bool(b) => b.to_string(),
                Bound::I16(n) => n.to_string(),
                Bound::I32(n) => n.to_string(),
                Bound::I64(n) => n.to_string(),
                Bound::F32(x) => x.to_string(),
                Bound::F64(x) => x.to_string(),
                Bound::Text(s) | Bound::Json(s) | Bound::Jsonb(s) | Bound::Parsed(s) => s,
            };
            out.push('"');
            for c in text.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_are_checked_against_their_width() {
        assert_eq!(bind("n", &json!(7), &Type::INT4).unwrap(), Bound::I32(7));
        assert_eq!(bind("n", &json!("7"), &Type::INT8).unwrap(), Bound::I64(7));
        let err = bind("n", &json!(70000), &Type::INT2).unwrap_err();
        assert_eq!(err.code(), "parameter_refused");
        assert!(err.to_string().contains("\"n\""), "{err}");
        assert!(bind("n", &json!("1 OR 1=1"), &Type::INT4).is_err());
        assert!(bind("n", &json!(1.5), &Type::INT4).is_err());
    }

    #[test]
    fn text_takes_scalars_only() {
        assert_eq!(
            bind("s", &json!("' OR 1=1 --"), &Type::TEXT).unwrap(),
            Bound::Text("' OR 1=1 --".into())
        );
        assert!(bind("s", &json!({"a": 1}), &Type::TEXT).is_err());
        assert!(bind("s", &json!("a\0b"), &Type::TEXT).is_err());
    }

    #[test]
    fn arrays_become_quoted_literals() {
        let ty = Type::INT4_ARRAY;
        assert_eq!(
            bind("ids", &json!([1, null, 3]), &ty).unwrap(),
            Bound::Parsed("{\"1\",NULL,\"3\"}".into())
        );
        assert_eq!(
            bind("names", &json!(["a\"}", "b\\"]), &Type::TEXT_ARRAY).unwrap(),
            Bound::Parsed("{\"a\\\"}\",\"b\\\\\"}".into())
        );
        assert!(bind("ids", &json!(["x"]), &ty).is_err());
        assert!(bind("ids", &json!(1), &ty).is_err());
    }

    #[test]
    fn numeric_and_uuid_are_checked_before_sending() {
        assert!(bind("x", &json!("12.50"), &Type::NUMERIC).is_ok());
        assert!(bind("x", &json!(12.5), &Type::NUMERIC).is_ok());
        assert!(bind("x", &json!("12,5"), &Type::NUMERIC).is_err());
        assert!(bind(
            "u",
            &json!("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
            &Type::UUID
        )
        .is_ok());
        assert!(bind("u", &json!("nope"), &Type::UUID).is_err());
    }
}
