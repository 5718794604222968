//! Binding parameters into `{{name}}` placeholders.
//!
//! A parameter is a value, never code: where it lands decides how it is
//! written (percent-encoded in a URL, checked for control characters in
//! a header, a typed JSON value or JSON-escaped text in a body), and a
//! value that could change what the request *is* — its host, its path's
//! shape, its header lines — is refused rather than cleaned.

use serde_json::{Map, Value};

use crate::error::SourceError;

/// One piece of a template: literal text, or a placeholder's name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits `text` into literal text and placeholders, the way
/// [`placeholders`](crate::config::placeholders) reads them: `{{` and
/// `}}` around a name of letters, digits, `_`, `-` and `.`, whitespace
/// allowed inside the braces. Braces around anything else stay text.
pub(crate) fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut literal_from = 0usize;
    let mut offset = 0usize;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        let consumed = start + 2 + end + 2;
        if is_name(name) {
            let open = offset + start;
            if open > literal_from {
                out.push(Piece::Text(&text[literal_from..open]));
            }
            out.push(Piece::Placeholder(name));
            literal_from = offset + consumed;
        }
        rest = &rest[consumed..];
        offset += consumed;
    }
    if literal_from < text.len() {
        out.push(Piece::Text(&text[literal_from..]));
    }
    out
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// Whether `text` holds a placeholder at all.
pub(crate) fn has_placeholder(text: &str) -> bool {
    pieces(text)
        .iter()
        .any(|piece| matches!(piece, Piece::Placeholder(_)))
}

/// The parameter `name`, or `parameter_refused` when it was not given.
pub(crate) fn param<'p>(
    params: &'p Map<String, Value>,
    name: &str,
) -> Result<&'p Value, SourceError> {
    params
        .get(name)
        .ok_or_else(|| SourceError::ParameterRefused {
            name: name.to_owned(),
            reason: "missing: no value was given for this placeholder".to_owned(),
        })
}

/// A parameter written as text: a string as it is, a number or boolean
/// (or null) as its JSON text. An object or array has no one text form.
pub(crate) fn as_text(name: &str, value: &Value) -> Result<String, SourceError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok("null".to_owned()),
        Value::Array(_) | Value::Object(_) => Err(SourceError::ParameterRefused {
            name: name.to_owned(),
            reason: "an object or array cannot stand in text".to_owned(),
        }),
    }
}

/// Replaces every placeholder of `text` by its parameter's text passed
/// through `write(name, text)`, which encodes or refuses it; literal text
/// is kept as written (it is the source's configuration, not input).
pub(crate) fn render(
    text: &str,
    params: &Map<String, Value>,
    mut write: impl FnMut(&str, String) -> Result<String, SourceError>,
) -> Result<String, SourceError> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text) {
        match piece {
            Piece::Text(literal) => out.push_str(literal),
            Piece::Placeholder(name) => {
                let value = as_text(name, param(params, name)?)?;
                out.push_str(&write(name, value)?);
            }
        }
    }
    Ok(out)
}

/// Binds a JSON body or GraphQL variables: a string that is exactly one
/// placeholder becomes the parameter's JSON value (a number stays a
/// number, an object an object); any other string has its placeholders
/// replaced as text. Object keys are never templated. The result is
/// serialized by `serde_json`, so a parameter can never close a string
/// or open a field of its own.
pub(crate) fn bind_json(value: &Value, params: &Map<String, Value>) -> Result<Value, SourceError> {
    Ok(match value {
        Value::String(s) => match pieces(s).as_slice() {
            [Piece::Placeholder(name)] if s.trim() == s => param(params, name)?.clone(),
            _ => Value::String(render(s, params, |_, text| Ok(text))?),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| bind_json(item, params))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, item)| Ok((key.clone(), bind_json(item, params)?)))
                .collect::<Result<_, SourceError>>()?,
        ),
        other => other.clone(),
    })
}
