//! Checking one value: what a property or validation rule of a component
//! type must be. Which check applies comes from the component catalog
//! ([`crate::schema::catalog`]), itself derived from the types: a limit
//! is stated once, in [`crate::limits`] and the types' declarations.

use std::collections::{HashMap, HashSet};

use serde_json::{Map as JsonMap, Value};

use crate::limits::*;
use crate::schema::{catalog, Field, FieldKind};
use crate::{join, ComponentType, ModelError};

/// How a value is checked.
#[derive(Clone, Debug)]
pub(crate) enum Check {
    /// A string of at most this many characters (no control characters
    /// but tab and line breaks).
    Text(usize),
    Bool,
    /// An integer in the range.
    Int(i64, i64),
    /// A finite number.
    Num,
    /// A finite number above zero.
    Positive,
    /// A date `YYYY-MM-DD`.
    Date,
    /// One of these strings.
    OneOf(Vec<String>),
    /// `[{value, label}, ...]`.
    Options,
    /// A file input's `accept` list of at most this many characters.
    Accept(usize),
    /// A choice type's `defaultValue`: option values (checked against the
    /// component's options; rules the schema cannot state).
    Default,
    /// A list of at most `.0` strings of at most `.1` characters.
    List(usize, usize),
    /// A data-source binding; `true` for options (with `labelKey` and
    /// `valueKey`), `false` for a default value.
    Source(bool),
}

impl Check {
    /// The check of `field` of a component of type `kind`.
    fn of(field: &Field, kind: ComponentType) -> Check {
        let l = &field.limits;
        let max = |v: Option<u64>| v.map_or(usize::MAX, |n| n as usize);
        if field.name == "defaultValue" && kind.has_options() {
            return Check::Default;
        }
        match field.kind {
            FieldKind::Text => Check::Text(max(l.max_length)),
            FieldKind::Boolean => Check::Bool,
            FieldKind::Integer => Check::Int(
                l.minimum.map_or(i64::MIN, |n| n as i64),
                l.maximum.map_or(i64::MAX, |n| n as i64),
            ),
            FieldKind::Number if l.exclusive_minimum == Some(0.0) => Check::Positive,
            FieldKind::Number => Check::Num,
            FieldKind::Date => Check::Date,
            FieldKind::Choice => Check::OneOf(field.values.clone()),
            FieldKind::Options => Check::Options,
            FieldKind::Accept => Check::Accept(max(l.max_length)),
            FieldKind::List => Check::List(max(l.max_items), max(l.item_max_length)),
            FieldKind::OptionValue => Check::Default,
            FieldKind::OptionsSource => Check::Source(true),
            FieldKind::DefaultSource => Check::Source(false),
        }
    }
}

/// The check of property `key` of type `kind`; `None` if it has none.
pub(crate) fn property_check(kind: ComponentType, key: &str) -> Option<Check> {
    let field = catalog().get(kind.as_str())?.property(key)?;
    Some(Check::of(field, kind))
}

/// The check of validation rule `key` of type `kind`; `None` if it has none.
pub(crate) fn validation_check(kind: ComponentType, key: &str) -> Option<Check> {
    let field = catalog().get(kind.as_str())?.rule(key)?;
    Some(Check::of(field, kind))
}

/// Collects errors, up to [`MAX_ERRORS`].
#[derive(Default)]
pub(crate) struct Errors {
    list: Vec<ModelError>,
    dropped: usize,
}

impl Errors {
    pub(crate) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        if self.list.len() < MAX_ERRORS {
            self.list.push(ModelError {
                path: path.into(),
                message: message.into(),
            });
        } else {
            self.dropped += 1;
        }
    }

    pub(crate) fn finish(mut self) -> Result<(), Vec<ModelError>> {
        if self.dropped > 0 {
            self.list.push(ModelError {
                path: String::new(),
                message: format!("{} more errors not listed", self.dropped),
            });
        }
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(self.list)
        }
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn bad_text(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

pub(crate) fn check_text(errs: &mut Errors, path: &str, v: &Value, max: usize) {
    match v.as_str() {
        None => errs.add(path, format!("must be a string, not {}", type_name(v))),
        Some(s) if s.chars().count() > max => {
            errs.add(path, format!("must be at most {max} characters"))
        }
        Some(s) if bad_text(s) => errs.add(path, "must not contain control characters"),
        Some(_) => {}
    }
}

/// A finite number, integral if asked (Yjs stores every number as a float:
/// `3.0` is an integer).
pub(crate) fn as_number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|n| n.is_finite())
}

pub(crate) fn as_int(v: &Value) -> Option<i64> {
    as_number(v)
        .filter(|n| n.fract() == 0.0 && n.abs() < 9.0e15)
        .map(|n| n as i64)
}

/// `YYYY-MM-DD` naming a real day.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if !s.is_ascii() || b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// An `accept` list: `.ext` or `type/subtype` (subtype may be `*`),
/// separated by commas.
pub(crate) fn is_accept(s: &str) -> bool {
    let mime_char = |c: char| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c);
    let tokens: Vec<&str> = s.split(',').map(str::trim).collect();
    tokens.len() <= 50
        && tokens.iter().all(|t| {
            if let Some(ext) = t.strip_prefix('.') {
                !ext.is_empty()
                    && ext
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
            } else if let Some((ty, sub)) = t.split_once('/') {
                !ty.is_empty()
                    && ty.chars().all(mime_char)
                    && (sub == "*" || (!sub.is_empty() && sub.chars().all(mime_char)))
            } else {
                false
            }
        })
}

fn check_value(
    errs: &mut Errors,
    path: &str,
    v: &Value,
    check: &Check,
    kind: ComponentType,
    comp: &JsonMap<String, Value>,
) {
    match check {
        Check::Text(max) => check_text(errs, path, v, *max),
        Check::Bool => {
            if !v.is_boolean() {
                errs.add(path, format!("must be a boolean, not {}", type_name(v)));
            }
        }
        Check::Int(lo, hi) => match as_int(v) {
            Some(n) if (*lo..=*hi).contains(&n) => {}
            Some(_) => errs.add(path, format!("must be between {lo} and {hi}")),
            None => errs.add(
                path,
                format!("must be an integer, not {}", describe_number(v)),
            ),
        },
        Check::Num => {
            if as_number(v).is_none() {
                errs.add(path, format!("must be a number, not {}", type_name(v)));
            }
        }
        Check::Positive => match as_number(v) {
            Some(n) if n > 0.0 => {}
            Some(_) => errs.add(path, "must be greater than 0"),
            None => errs.add(path, format!("must be a number, not {}", type_name(v))),
        },
        Check::Date => match v.as_str() {
            Some(s) if is_date(s) => {}
            _ => errs.add(path, "must be a date as YYYY-MM-DD"),
        },
        Check::OneOf(allowed) => match v.as_str() {
            Some(s) if allowed.iter().any(|a| a == s) => {}
            _ => errs.add(path, format!("must be one of: {}", allowed.join(", "))),
        },
        Check::Accept(max) => match v.as_str() {
            Some(s) if s.chars().count() <= *max && is_accept(s) => {}
            Some(_) => errs.add(
                path,
                "must list file types as `.ext` or `type/subtype`, separated by commas",
            ),
            None => errs.add(path, format!("must be a string, not {}", type_name(v))),
        },
        Check::Options => check_options(errs, path, v),
        Check::List(max_items, max_chars) => match v.as_array() {
            None => errs.add(
                path,
                format!("must be an array of strings, not {}", type_name(v)),
            ),
            Some(items) if items.len() > *max_items => {
                errs.add(path, format!("must have at most {max_items} rules"))
            }
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_text(errs, &format!("{path}[{i}]"), item, *max_chars);
                }
            }
        },
        Check::Default => check_default(errs, path, v, kind, comp),
        Check::Source(options) => check_source(errs, path, v, *options),
    }
}

fn describe_number(v: &Value) -> String {
    if as_number(v).is_some() {
        "a fraction".into()
    } else {
        type_name(v).into()
    }
}

fn check_options(errs: &mut Errors, path: &str, v: &Value) {
    let Some(items) = v.as_array() else {
        errs.add(
            path,
            format!(
                "must be an array of {{value, label}} objects, not {}",
                type_name(v)
            ),
        );
        return;
    };
    if items.len() > MAX_OPTIONS {
        errs.add(path, format!("must have at most {MAX_OPTIONS} options"));
        return;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Some(o) = item.as_object() else {
            errs.add(
                &at,
                format!("must be a {{value, label}} object, not {}", type_name(item)),
            );
            continue;
        };
        for key in o
            .keys()
            .filter(|k| !matches!(k.as_str(), "value" | "label"))
        {
            errs.add(
                join(&at, key),
                "unknown key: an option has only `value` and `label`",
            );
        }
        match o.get("value") {
            None => errs.add(join(&at, "value"), "is required"),
            Some(value) => {
                check_text(errs, &join(&at, "value"), value, MAX_OPTION_VALUE_CHARS);
                if let Some(s) = value.as_str() {
                    if s.is_empty() {
                        errs.add(join(&at, "value"), "must not be empty");
                    } else if let Some(first) = seen.insert(s, i) {
                        errs.add(
                            join(&at, "value"),
                            format!("duplicate value {s:?} (also {path}[{first}])"),
                        );
                    }
                }
            }
        }
        if let Some(label) = o.get("label") {
            check_text(errs, &join(&at, "label"), label, MAX_LABEL_CHARS);
        }
    }
}

/// A data-source binding: `{dataSourceId, params, path}`, with
/// `labelKey` and `valueKey` when it gives `options`. Whether the source
/// exists, and is in the template's workspace, is the server's to say
/// when the binding is executed: a document names it, nothing more.
fn check_source(errs: &mut Errors, path: &str, v: &Value, options: bool) {
    let Some(o) = v.as_object() else {
        errs.add(
            path,
            format!("must be a data-source binding object, not {}", type_name(v)),
        );
        return;
    };
    let keys: &[&str] = if options {
        &["dataSourceId", "params", "path", "labelKey", "valueKey"]
    } else {
        &["dataSourceId", "params", "path"]
    };
    for (key, value) in sorted(o) {
        let at = join(path, key);
        match key.as_str() {
            "dataSourceId" => match value.as_str() {
                Some(id)
                    if !id.is_empty()
                        && id.chars().count() <= MAX_DATA_SOURCE_ID_CHARS
                        && !id.chars().any(|c| c.is_control() || c.is_whitespace()) => {}
                Some(_) => errs.add(
                    at,
                    format!(
                        "must be a data source's id: 1 to {MAX_DATA_SOURCE_ID_CHARS} characters without spaces"
                    ),
                ),
                None => errs.add(at, format!("must be a string, not {}", type_name(value))),
            },
            "params" => check_params(errs, &at, value),
            "path" | "labelKey" | "valueKey" if keys.contains(&key.as_str()) => {
                check_text(errs, &at, value, MAX_SOURCE_PATH_CHARS);
                if value.as_str().is_some_and(|p| !is_dot_path(p)) {
                    errs.add(
                        at,
                        "must be keys separated by single dots (`data.items`)",
                    );
                }
            }
            _ => errs.add(
                at,
                format!("unknown key: a binding has only {}", keys.join(", ")),
            ),
        }
    }
    if !o.contains_key("dataSourceId") {
        errs.add(join(path, "dataSourceId"), "is required");
    }
}

/// A binding's `params`: placeholder name → literal value.
fn check_params(errs: &mut Errors, path: &str, v: &Value) {
    let Some(map) = v.as_object() else {
        errs.add(
            path,
            format!("must be an object of strings, not {}", type_name(v)),
        );
        return;
    };
    if map.len() > MAX_SOURCE_PARAMS {
        errs.add(
            path,
            format!("must have at most {MAX_SOURCE_PARAMS} parameters"),
        );
        return;
    }
    for (name, value) in sorted(map) {
        let at = join(path, name);
        if !is_param_name(name) {
            errs.add(
                &at,
                format!(
                    "must be a parameter name: 1 to {MAX_SOURCE_PARAM_NAME_CHARS} letters, digits, _, - or ."
                ),
            );
        }
        check_text(errs, &at, value, MAX_SOURCE_PARAM_VALUE_CHARS);
    }
}

/// What [`PARAM_NAME_PATTERN`] accepts.
pub(crate) fn is_param_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SOURCE_PARAM_NAME_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// What [`SOURCE_PATH_PATTERN`] accepts: non-empty keys separated by
/// single dots.
pub(crate) fn is_dot_path(s: &str) -> bool {
    s.split('.').all(|key| !key.is_empty())
}

/// Option values of a component (for checking `defaultValue`).
fn option_values(comp: &JsonMap<String, Value>) -> Option<HashSet<&str>> {
    let options = comp.get("properties")?.get("options")?.as_array()?;
    Some(
        options
            .iter()
            .filter_map(|o| o.get("value")?.as_str())
            .collect(),
    )
}

/// A choice type's `defaultValue`: one option value, several when
/// `multiple` (select) or a group (checkbox), a boolean for a single box.
fn check_default(
    errs: &mut Errors,
    path: &str,
    v: &Value,
    kind: ComponentType,
    comp: &JsonMap<String, Value>,
) {
    use ComponentType::{Checkbox, Select};
    let props = comp.get("properties");
    let multiple = props
        .and_then(|p| p.get("multiple"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let has_options = props
        .and_then(|p| p.get("options"))
        .and_then(Value::as_array)
        .is_some_and(|o| !o.is_empty());
    let in_options = |errs: &mut Errors, path: &str, s: &str| {
        if let Some(values) = option_values(comp) {
            if !values.contains(s) {
                errs.add(path, format!("{s:?} is not one of the options' values"));
            }
        }
    };
    let many = match kind {
        Select => multiple,
        Checkbox => has_options,
        _ => false,
    };
    if kind == Checkbox && !has_options {
        if !v.is_boolean() {
            errs.add(
                path,
                format!(
                    "must be a boolean for a single checkbox, not {}",
                    type_name(v)
                ),
            );
        }
    } else if many {
        match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}[{i}]");
                    match item.as_str() {
                        Some(s) => in_options(errs, &at, s),
                        None => errs.add(at, "must be an option's value"),
                    }
                }
            }
            None => errs.add(
                path,
                format!("must be an array of option values, not {}", type_name(v)),
            ),
        }
    } else {
        match v.as_str() {
            Some(s) => in_options(errs, path, s),
            None => errs.add(
                path,
                format!("must be an option's value, not {}", type_name(v)),
            ),
        }
    }
}

/// `min <= max` for numbers and dates, `minLength <= maxLength`.
fn check_range(errs: &mut Errors, path: &str, map: &JsonMap<String, Value>, lo: &str, hi: &str) {
    let (Some(a), Some(b)) = (map.get(lo), map.get(hi)) else {
        return;
    };
    let inverted = match (as_number(a), as_number(b), a.as_str(), b.as_str()) {
        (Some(x), Some(y), _, _) => x > y,
        (_, _, Some(x), Some(y)) if is_date(x) && is_date(y) => x > y,
        _ => false,
    };
    if inverted {
        errs.add(join(path, hi), format!("must not be less than `{lo}`"));
    }
}

/// Checks a map's keys against `check_of`; `what` names the map in
/// messages ("property of a text").
pub(crate) fn check_map(
    errs: &mut Errors,
    path: &str,
    v: &Value,
    kind: ComponentType,
    comp: &JsonMap<String, Value>,
    what: &str,
    check_of: impl Fn(&str) -> Option<Check>,
) -> Option<()> {
    let Some(map) = v.as_object() else {
        errs.add(path, format!("must be an object, not {}", type_name(v)));
        return None;
    };
    for (key, value) in sorted(map) {
        let at = join(path, key);
        match check_of(key) {
            Some(check) => check_value(errs, &at, value, &check, kind, comp),
            None => errs.add(at, format!("is not {what} of type `{}`", kind.as_str())),
        }
    }
    check_range(errs, path, map, "min", "max");
    check_range(errs, path, map, "minLength", "maxLength");
    Some(())
}

pub(crate) fn sorted(map: &JsonMap<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}
