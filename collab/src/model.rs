//! The form model: a template document read as typed components, checked
//! against the schema, put in display order, and compared.
//!
//! This sits on top of [`crate::content`], which knows only "two root
//! maps of JSON". Here the content means something:
//!
//! ```text
//! {"meta": {"name", "description", "tags", "category", ...},
//!  "components": {"<id>": {"id", "type", "label", "parent", "index",
//!                          "properties", "position", "validation", "styling"}}}
//! ```
//!
//! - [`validate`] checks a JSON target and lists **every** problem with a
//!   precise path (`components.c1.validation.min`), so a client can point
//!   at each field. Unknown component types, values of the wrong type,
//!   orphan parents, duplicate ids, unknown keys and out-of-range numbers
//!   are all refused. Regular expressions (`validation.pattern`) and
//!   custom rules are data: their length is checked, they are never
//!   compiled or run on the server.
//! - [`parse_strict`] reads JSON text refusing duplicate object keys
//!   anywhere (a plain JSON parser silently keeps the last one, which
//!   would hide a duplicated component id).
//! - [`Form::read`] reads any content leniently into typed structs (what
//!   does not fit is skipped), for rendering a live document that clients
//!   may have filled with anything; [`parse`] is the strict variant.
//! - [`apply`] validates a target and applies it to a live document as a
//!   minimal CRDT edit ([`crate::content::apply_json`]).
//! - [`diff`] compares two contents: components added, removed, moved
//!   (parent or index changed) and changed (which fields), and meta fields.
//!
//! Display order: siblings (components with the same parent, `null` for
//! the top level) sort by `index`, a fractional-index string compared
//! byte by byte, then by id. `parent` names a `section`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map as JsonMap, Value};
use yrs::Doc;

use crate::content;

/// Most components in one template.
pub const MAX_COMPONENTS: usize = 2_000;
/// Most characters of a component id.
pub const MAX_ID_CHARS: usize = 100;
/// Most characters of an `index`.
pub const MAX_INDEX_CHARS: usize = 100;
/// Most options of a select, radio group or checkbox group.
pub const MAX_OPTIONS: usize = 500;
/// Most characters of `validation.pattern` (kept as text, never compiled).
pub const MAX_PATTERN_CHARS: usize = 1_000;
/// Most custom rules of one component.
pub const MAX_RULES: usize = 50;
/// Most characters of `validation.customValidation` (kept as text, never run).
pub const MAX_CUSTOM_VALIDATION_CHARS: usize = 10_000;
/// Deepest nesting of sections, and of JSON values under extra meta keys.
pub const MAX_DEPTH: usize = 16;
/// Most errors [`validate`] lists; one more entry says the rest were cut.
pub const MAX_ERRORS: usize = 100;

// ---------------------------------------------------------------- types

/// The kinds of component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentType {
    Text,
    Textarea,
    Number,
    Email,
    Phone,
    Date,
    Select,
    Radio,
    Checkbox,
    File,
    /// A container: other components name it as their `parent`.
    Section,
    Heading,
    Paragraph,
    Button,
}

impl ComponentType {
    pub const ALL: [ComponentType; 14] = [
        ComponentType::Text,
        ComponentType::Textarea,
        ComponentType::Number,
        ComponentType::Email,
        ComponentType::Phone,
        ComponentType::Date,
        ComponentType::Select,
        ComponentType::Radio,
        ComponentType::Checkbox,
        ComponentType::File,
        ComponentType::Section,
        ComponentType::Heading,
        ComponentType::Paragraph,
        ComponentType::Button,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ComponentType::Text => "text",
            ComponentType::Textarea => "textarea",
            ComponentType::Number => "number",
            ComponentType::Email => "email",
            ComponentType::Phone => "phone",
            ComponentType::Date => "date",
            ComponentType::Select => "select",
            ComponentType::Radio => "radio",
            ComponentType::Checkbox => "checkbox",
            ComponentType::File => "file",
            ComponentType::Section => "section",
            ComponentType::Heading => "heading",
            ComponentType::Paragraph => "paragraph",
            ComponentType::Button => "button",
        }
    }

    pub fn parse(s: &str) -> Option<ComponentType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Collects a value from the person filling the form.
    pub fn is_input(self) -> bool {
        !matches!(
            self,
            ComponentType::Section
                | ComponentType::Heading
                | ComponentType::Paragraph
                | ComponentType::Button
        )
    }

    /// Free text, where length and pattern rules apply.
    pub fn is_textual(self) -> bool {
        matches!(
            self,
            ComponentType::Text
                | ComponentType::Textarea
                | ComponentType::Email
                | ComponentType::Phone
        )
    }

    /// Offers a list of options.
    pub fn has_options(self) -> bool {
        matches!(
            self,
            ComponentType::Select | ComponentType::Radio | ComponentType::Checkbox
        )
    }
}

/// One option of a select, radio group or checkbox group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// A bound of a number (a number) or of a date (`YYYY-MM-DD`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bound {
    Number(f64),
    Date(String),
}

impl Bound {
    /// The bound as an HTML attribute value.
    pub fn to_attr(&self) -> String {
        match self {
            Bound::Number(n) => format_number(*n),
            Bound::Date(d) => d.clone(),
        }
    }
}

/// A number as JavaScript prints it (`3`, not `3.0`).
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// What a button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ButtonAction {
    Submit,
    Reset,
    Button,
}

/// How options are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Vertical,
    Horizontal,
}

/// A component's properties. Which ones a type may have is listed in
/// `docs/TEMPLATE_FORMAT.md` (and enforced by [`validate`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Properties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autocomplete: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Bound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Bound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub options: Vec<Choice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiple: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collapsible: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ButtonAction>,
}

/// Validation rules of an input. Kept as data: the server checks their
/// shape, never compiles `pattern` nor runs `rules` or `customValidation`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Bound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Bound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub rules: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_validation: Option<String>,
}

impl Validation {
    pub fn is_required(&self) -> bool {
        self.required == Some(true)
    }
}

/// Where the designer placed a component on its canvas.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h: Option<f64>,
}

/// Look of a component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Styling {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub custom_styles: BTreeMap<String, String>,
}

/// One component of a form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ComponentType,
    pub label: String,
    /// The section it sits in; `None` at the top level.
    pub parent: Option<String>,
    /// Fractional index: order among siblings.
    pub index: String,
    pub properties: Properties,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    pub validation: Validation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub styling: Option<Styling>,
}

/// Template-wide fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Other meta keys, kept as they are.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A whole form: meta and components by id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Form {
    pub meta: Meta,
    pub components: BTreeMap<String, Component>,
}

/// One problem of a document: where (a dotted path, `[i]` for array
/// items) and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

// ---------------------------------------------------------------- strict parsing

/// Parses JSON text, refusing a duplicated key in any object (the error's
/// path names it). Otherwise the same as `serde_json::from_str`.
pub fn parse_strict(text: &str) -> Result<Value, ModelError> {
    use serde::de::DeserializeSeed;
    let duplicate = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let result = StrictSeed {
        path: String::new(),
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    result.map_err(|e| match duplicate.into_inner() {
        Some(path) => ModelError {
            path,
            message: "duplicate key".into(),
        },
        None => ModelError {
            path: String::new(),
            message: format!("invalid JSON: {e}"),
        },
    })
}

struct StrictSeed<'a> {
    path: String,
    duplicate: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let seed = StrictSeed {
                path: format!("{}[{}]", self.path, out.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = JsonMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            if out.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(path.clone());
                return Err(serde::de::Error::custom(format!("duplicate key `{path}`")));
            }
            let value = map.next_value_seed(StrictSeed {
                path,
                duplicate: self.duplicate,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

// ---------------------------------------------------------------- validation

/// How a value is checked.
#[derive(Clone, Copy)]
enum Check {
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
    OneOf(&'static [&'static str]),
    /// `[{value, label}, ...]`.
    Options,
    /// A file input's `accept` list.
    Accept,
    /// A `defaultValue`, checked against the component's type.
    Default,
    /// Custom rules: a list of strings.
    Rules,
}

const LAYOUTS: &[&str] = &["vertical", "horizontal"];
const ACTIONS: &[&str] = &["submit", "reset", "button"];

/// The properties every input may have.
const INPUT: &[(&str, Check)] = &[
    ("name", Check::Text(100)),
    ("helpText", Check::Text(1_000)),
    ("disabled", Check::Bool),
    ("readOnly", Check::Bool),
    ("hidden", Check::Bool),
];

/// The properties of one type beyond [`INPUT`] (for inputs).
fn type_properties(kind: ComponentType) -> &'static [(&'static str, Check)] {
    use ComponentType::*;
    match kind {
        Text | Email | Phone => &[
            ("placeholder", Check::Text(200)),
            ("defaultValue", Check::Default),
            ("autocomplete", Check::Text(100)),
        ],
        Textarea => &[
            ("placeholder", Check::Text(200)),
            ("defaultValue", Check::Default),
            ("rows", Check::Int(1, 100)),
        ],
        Number => &[
            ("placeholder", Check::Text(200)),
            ("defaultValue", Check::Default),
            ("min", Check::Num),
            ("max", Check::Num),
            ("step", Check::Positive),
        ],
        Date => &[
            ("defaultValue", Check::Default),
            ("min", Check::Date),
            ("max", Check::Date),
        ],
        Select => &[
            ("placeholder", Check::Text(200)),
            ("options", Check::Options),
            ("multiple", Check::Bool),
            ("defaultValue", Check::Default),
        ],
        Radio | Checkbox => &[
            ("options", Check::Options),
            ("defaultValue", Check::Default),
            ("layout", Check::OneOf(LAYOUTS)),
        ],
        File => &[
            ("accept", Check::Accept),
            ("multiple", Check::Bool),
            ("maxSize", Check::Positive),
        ],
        Section => &[
            ("hidden", Check::Bool),
            ("description", Check::Text(2_000)),
            ("collapsible", Check::Bool),
        ],
        Heading => &[
            ("hidden", Check::Bool),
            ("text", Check::Text(500)),
            ("level", Check::Int(1, 6)),
        ],
        Paragraph => &[("hidden", Check::Bool), ("text", Check::Text(10_000))],
        Button => &[
            ("hidden", Check::Bool),
            ("disabled", Check::Bool),
            ("text", Check::Text(200)),
            ("action", Check::OneOf(ACTIONS)),
        ],
    }
}

fn property_check(kind: ComponentType, key: &str) -> Option<Check> {
    let common: &[(&str, Check)] = if kind.is_input() { INPUT } else { &[] };
    common
        .iter()
        .chain(type_properties(kind))
        .find(|(k, _)| *k == key)
        .map(|(_, c)| *c)
}

/// The validation rules a type may have.
fn validation_check(kind: ComponentType, key: &str) -> Option<Check> {
    if !kind.is_input() {
        return None;
    }
    let bound = match kind {
        ComponentType::Number => Some(Check::Num),
        ComponentType::Date => Some(Check::Date),
        _ => None,
    };
    match key {
        "required" => Some(Check::Bool),
        "message" => Some(Check::Text(500)),
        "rules" => Some(Check::Rules),
        "customValidation" => Some(Check::Text(MAX_CUSTOM_VALIDATION_CHARS)),
        "min" | "max" => bound,
        "minLength" | "maxLength" if kind.is_textual() => Some(Check::Int(0, 1_000_000)),
        "pattern" if kind.is_textual() => Some(Check::Text(MAX_PATTERN_CHARS)),
        _ => None,
    }
}

const COMPONENT_KEYS: &[&str] = &[
    "id",
    "type",
    "label",
    "parent",
    "index",
    "properties",
    "position",
    "validation",
    "styling",
];

/// Collects errors, up to [`MAX_ERRORS`].
#[derive(Default)]
struct Errors {
    list: Vec<ModelError>,
    dropped: usize,
}

impl Errors {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        if self.list.len() < MAX_ERRORS {
            self.list.push(ModelError {
                path: path.into(),
                message: message.into(),
            });
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Result<(), Vec<ModelError>> {
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

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn bad_text(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

fn check_text(errs: &mut Errors, path: &str, v: &Value, max: usize) {
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
fn as_number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|n| n.is_finite())
}

fn as_int(v: &Value) -> Option<i64> {
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
fn is_accept(s: &str) -> bool {
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
    check: Check,
    kind: ComponentType,
    comp: &JsonMap<String, Value>,
) {
    match check {
        Check::Text(max) => check_text(errs, path, v, max),
        Check::Bool => {
            if !v.is_boolean() {
                errs.add(path, format!("must be a boolean, not {}", type_name(v)));
            }
        }
        Check::Int(lo, hi) => match as_int(v) {
            Some(n) if (lo..=hi).contains(&n) => {}
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
            Some(s) if allowed.contains(&s) => {}
            _ => errs.add(path, format!("must be one of: {}", allowed.join(", "))),
        },
        Check::Accept => match v.as_str() {
            Some(s) if s.chars().count() <= 500 && is_accept(s) => {}
            Some(_) => errs.add(
                path,
                "must list file types as `.ext` or `type/subtype`, separated by commas",
            ),
            None => errs.add(path, format!("must be a string, not {}", type_name(v))),
        },
        Check::Options => check_options(errs, path, v),
        Check::Rules => match v.as_array() {
            None => errs.add(
                path,
                format!("must be an array of strings, not {}", type_name(v)),
            ),
            Some(items) if items.len() > MAX_RULES => {
                errs.add(path, format!("must have at most {MAX_RULES} rules"))
            }
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_text(errs, &format!("{path}[{i}]"), item, 1_000);
                }
            }
        },
        Check::Default => check_default(errs, path, v, kind, comp),
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
                check_text(errs, &join(&at, "value"), value, 200);
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
            check_text(errs, &join(&at, "label"), label, 500);
        }
    }
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

fn check_default(
    errs: &mut Errors,
    path: &str,
    v: &Value,
    kind: ComponentType,
    comp: &JsonMap<String, Value>,
) {
    use ComponentType::*;
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
    match kind {
        Text | Textarea | Email | Phone => check_text(errs, path, v, 10_000),
        Number => {
            if as_number(v).is_none() {
                errs.add(path, format!("must be a number, not {}", type_name(v)));
            }
        }
        Date => check_value(errs, path, v, Check::Date, kind, comp),
        Select | Radio | Checkbox => {
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
        File | Section | Heading | Paragraph | Button => errs.add(
            path,
            format!("type `{}` has no default value", kind.as_str()),
        ),
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
fn check_map(
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
            Some(check) => check_value(errs, &at, value, check, kind, comp),
            None => errs.add(at, format!("is not {what} of type `{}`", kind.as_str())),
        }
    }
    check_range(errs, path, map, "min", "max");
    check_range(errs, path, map, "minLength", "maxLength");
    Some(())
}

fn sorted(map: &JsonMap<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn check_position(errs: &mut Errors, path: &str, v: &Value) {
    let Some(map) = v.as_object() else {
        errs.add(path, format!("must be an object, not {}", type_name(v)));
        return;
    };
    for (key, value) in sorted(map) {
        let at = join(path, key);
        match key.as_str() {
            "x" | "y" => {
                if as_number(value).is_none() {
                    errs.add(at, format!("must be a number, not {}", type_name(value)));
                }
            }
            "w" | "h" => match as_number(value) {
                Some(n) if n >= 0.0 => {}
                Some(_) => errs.add(at, "must not be negative"),
                None => errs.add(at, format!("must be a number, not {}", type_name(value))),
            },
            _ => errs.add(at, "unknown key: a position has only x, y, w and h"),
        }
    }
}

fn check_styling(errs: &mut Errors, path: &str, v: &Value) {
    let Some(map) = v.as_object() else {
        errs.add(path, format!("must be an object, not {}", type_name(v)));
        return;
    };
    for (key, value) in sorted(map) {
        let at = join(path, key);
        match key.as_str() {
            "theme" => check_text(errs, &at, value, 100),
            "customStyles" => match value.as_object() {
                None => errs.add(
                    at,
                    format!("must be an object of strings, not {}", type_name(value)),
                ),
                Some(styles) if styles.len() > 100 => errs.add(at, "must have at most 100 entries"),
                Some(styles) => {
                    for (name, style) in sorted(styles) {
                        let sp = join(&at, name);
                        if name.is_empty()
                            || name.len() > 100
                            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        {
                            errs.add(&sp, "must be a CSS property name (letters, digits, -)");
                        }
                        check_text(errs, &sp, style, 1_000);
                    }
                }
            },
            _ => errs.add(at, "unknown key: styling has only theme and customStyles"),
        }
    }
}

fn check_meta(errs: &mut Errors, v: &Value) {
    let Some(map) = v.as_object() else {
        errs.add("meta", format!("must be an object, not {}", type_name(v)));
        return;
    };
    for (key, value) in sorted(map) {
        let at = join("meta", key);
        match key.as_str() {
            "name" => check_text(errs, &at, value, 200),
            "description" => check_text(errs, &at, value, 2_000),
            "category" => check_text(errs, &at, value, 100),
            "tags" => match value.as_array() {
                None => errs.add(
                    at,
                    format!("must be an array of strings, not {}", type_name(value)),
                ),
                Some(tags) if tags.len() > 20 => errs.add(at, "must have at most 20 tags"),
                Some(tags) => {
                    for (i, tag) in tags.iter().enumerate() {
                        let tp = format!("{at}[{i}]");
                        check_text(errs, &tp, tag, 50);
                        if tag.as_str().is_some_and(|t| t.trim().is_empty()) {
                            errs.add(tp, "must not be empty");
                        }
                    }
                }
            },
            _ => {
                if key.is_empty() || key.chars().count() > 100 || bad_text(key) {
                    errs.add(
                        &at,
                        "keys must be 1 to 100 characters without control characters",
                    );
                }
                if crate::nesting::json_depth(value) > MAX_DEPTH {
                    errs.add(at, format!("nests deeper than {MAX_DEPTH} levels"));
                }
            }
        }
    }
}

fn check_id(errs: &mut Errors, path: &str, id: &str) {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        errs.add(path, format!("must be 1 to {MAX_ID_CHARS} characters"));
    } else if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        errs.add(path, "must not contain spaces or control characters");
    }
}

/// Checks a whole content (`{"meta": {...}, "components": {...}}`; either
/// root may be absent) and lists every problem found (at most
/// [`MAX_ERRORS`]).
pub fn validate(content: &Value) -> Result<(), Vec<ModelError>> {
    let mut errs = Errors::default();
    let Some(root) = content.as_object() else {
        errs.add(
            "",
            format!("content must be an object, not {}", type_name(content)),
        );
        return errs.finish();
    };
    for key in root.keys() {
        if !content::ROOTS.contains(&key.as_str()) {
            errs.add(
                key.as_str(),
                "unknown key: content has only `meta` and `components`",
            );
        }
    }
    if let Some(meta) = root.get("meta") {
        check_meta(&mut errs, meta);
    }
    if let Some(components) = root.get("components") {
        match components.as_object() {
            Some(map) => check_components(&mut errs, map),
            None => errs.add(
                "components",
                format!("must be an object, not {}", type_name(components)),
            ),
        }
    }
    errs.finish()
}

fn check_components(errs: &mut Errors, map: &JsonMap<String, Value>) {
    if map.len() > MAX_COMPONENTS {
        errs.add(
            "components",
            format!("must have at most {MAX_COMPONENTS} components"),
        );
        return;
    }
    // id value -> first key that carries it, to report duplicates.
    let mut ids: HashMap<&str, &str> = HashMap::new();
    for (key, _) in sorted(map) {
        ids.insert(key.as_str(), key.as_str());
    }
    let kind_of = |id: &str| -> Option<ComponentType> {
        map.get(id)?
            .get("type")?
            .as_str()
            .and_then(ComponentType::parse)
    };
    for (key, value) in sorted(map) {
        let path = join("components", key);
        check_id(errs, &format!("{path} (key)"), key);
        let Some(comp) = value.as_object() else {
            errs.add(
                &path,
                format!("must be an object, not {}", type_name(value)),
            );
            continue;
        };
        for k in comp.keys() {
            if !COMPONENT_KEYS.contains(&k.as_str()) {
                errs.add(join(&path, k), "unknown key");
            }
        }
        // id
        match comp.get("id") {
            None => errs.add(join(&path, "id"), "is required"),
            Some(Value::String(id)) if id == key => {}
            Some(Value::String(id)) => match ids.get(id.as_str()) {
                Some(other) => errs.add(
                    join(&path, "id"),
                    format!("duplicate id {id:?}: already used by components.{other}"),
                ),
                None => {
                    ids.insert(id.as_str(), key.as_str());
                    errs.add(
                        join(&path, "id"),
                        format!("must equal the component's key {key:?}"),
                    );
                }
            },
            Some(other) => errs.add(
                join(&path, "id"),
                format!("must be a string, not {}", type_name(other)),
            ),
        }
        // type
        let kind = match comp.get("type") {
            None => {
                errs.add(join(&path, "type"), "is required");
                None
            }
            Some(Value::String(t)) => {
                let kind = ComponentType::parse(t);
                if kind.is_none() {
                    errs.add(
                        join(&path, "type"),
                        format!(
                            "unknown component type {t:?}; known types: {}",
                            ComponentType::ALL.map(ComponentType::as_str).join(", ")
                        ),
                    );
                }
                kind
            }
            Some(other) => {
                errs.add(
                    join(&path, "type"),
                    format!("must be a string, not {}", type_name(other)),
                );
                None
            }
        };
        if let Some(label) = comp.get("label") {
            check_text(errs, &join(&path, "label"), label, 500);
        }
        // index
        match comp.get("index") {
            None => errs.add(join(&path, "index"), "is required"),
            Some(Value::String(ix))
                if !ix.is_empty()
                    && ix.len() <= MAX_INDEX_CHARS
                    && ix.bytes().all(|b| b.is_ascii_graphic()) => {}
            Some(Value::String(_)) => errs.add(
                join(&path, "index"),
                format!(
                    "must be a fractional index: 1 to {MAX_INDEX_CHARS} visible ASCII characters"
                ),
            ),
            Some(other) => errs.add(
                join(&path, "index"),
                format!("must be a string, not {}", type_name(other)),
            ),
        }
        // parent
        match comp.get("parent") {
            None | Some(Value::Null) => {}
            Some(Value::String(p)) if p == key => {
                errs.add(join(&path, "parent"), "a component can't be its own parent")
            }
            Some(Value::String(p)) => match map.get(p) {
                None => errs.add(
                    join(&path, "parent"),
                    format!("orphan: there is no component {p:?}"),
                ),
                Some(_) => match kind_of(p) {
                    Some(ComponentType::Section) => {
                        if let Some(problem) = ancestry_problem(map, key) {
                            errs.add(join(&path, "parent"), problem);
                        }
                    }
                    Some(other) => errs.add(
                        join(&path, "parent"),
                        format!("{p:?} is of type `{}`, not a section", other.as_str()),
                    ),
                    None => errs.add(join(&path, "parent"), format!("{p:?} is not a section")),
                },
            },
            Some(other) => errs.add(
                join(&path, "parent"),
                format!("must be a section's id or null, not {}", type_name(other)),
            ),
        }
        let Some(kind) = kind else { continue };
        if let Some(props) = comp.get("properties") {
            let ok = check_map(
                errs,
                &join(&path, "properties"),
                props,
                kind,
                comp,
                "a property",
                |k| property_check(kind, k),
            );
            if ok.is_some() && matches!(kind, ComponentType::Select | ComponentType::Radio) {
                let empty = props
                    .get("options")
                    .and_then(Value::as_array)
                    .is_none_or(|o| o.is_empty());
                if empty {
                    errs.add(
                        join(&path, "properties.options"),
                        format!("a `{}` needs at least one option", kind.as_str()),
                    );
                }
            }
        } else if matches!(kind, ComponentType::Select | ComponentType::Radio) {
            errs.add(
                join(&path, "properties.options"),
                format!("a `{}` needs at least one option", kind.as_str()),
            );
        }
        if let Some(v) = comp.get("validation") {
            check_map(
                errs,
                &join(&path, "validation"),
                v,
                kind,
                comp,
                "a validation rule",
                |k| validation_check(kind, k),
            );
        }
        if let Some(p) = comp.get("position") {
            check_position(errs, &join(&path, "position"), p);
        }
        if let Some(s) = comp.get("styling") {
            check_styling(errs, &join(&path, "styling"), s);
        }
    }
}

/// Walks up from `start`: a loop or too deep a nesting is a problem.
fn ancestry_problem(map: &JsonMap<String, Value>, start: &str) -> Option<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut current = start;
    seen.insert(current);
    for _ in 0..=MAX_DEPTH {
        let parent = map
            .get(current)
            .and_then(|c| c.get("parent"))
            .and_then(Value::as_str)?;
        if !seen.insert(parent) {
            return Some(format!("sections form a loop through {parent:?}"));
        }
        current = parent;
    }
    Some(format!("sections nest deeper than {MAX_DEPTH} levels"))
}

// ---------------------------------------------------------------- reading

fn get_str(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

fn get_bool(v: Option<&Value>) -> Option<bool> {
    v.and_then(Value::as_bool)
}

fn get_bound(v: Option<&Value>) -> Option<Bound> {
    match v? {
        Value::String(s) if is_date(s) => Some(Bound::Date(s.clone())),
        other => as_number(other).map(Bound::Number),
    }
}

impl Properties {
    fn read(v: Option<&Value>) -> Properties {
        let Some(p) = v.and_then(Value::as_object) else {
            return Properties::default();
        };
        let g = |k: &str| p.get(k);
        Properties {
            name: get_str(g("name")),
            placeholder: get_str(g("placeholder")),
            help_text: get_str(g("helpText")),
            default_value: g("defaultValue").cloned(),
            disabled: get_bool(g("disabled")),
            read_only: get_bool(g("readOnly")),
            hidden: get_bool(g("hidden")),
            autocomplete: get_str(g("autocomplete")),
            rows: g("rows")
                .and_then(as_int)
                .and_then(|n| u32::try_from(n).ok()),
            min: get_bound(g("min")),
            max: get_bound(g("max")),
            step: g("step").and_then(as_number),
            options: g("options")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|o| {
                            let value = get_str(o.get("value"))?;
                            let label = get_str(o.get("label")).unwrap_or_else(|| value.clone());
                            Some(Choice { value, label })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            multiple: get_bool(g("multiple")),
            layout: match g("layout").and_then(Value::as_str) {
                Some("horizontal") => Some(Layout::Horizontal),
                Some("vertical") => Some(Layout::Vertical),
                _ => None,
            },
            accept: get_str(g("accept")),
            max_size: g("maxSize").and_then(as_number),
            description: get_str(g("description")),
            collapsible: get_bool(g("collapsible")),
            text: get_str(g("text")),
            level: g("level")
                .and_then(as_int)
                .and_then(|n| u8::try_from(n).ok()),
            action: match g("action").and_then(Value::as_str) {
                Some("submit") => Some(ButtonAction::Submit),
                Some("reset") => Some(ButtonAction::Reset),
                Some("button") => Some(ButtonAction::Button),
                _ => None,
            },
        }
    }
}

impl Validation {
    fn read(v: Option<&Value>) -> Validation {
        let Some(m) = v.and_then(Value::as_object) else {
            return Validation::default();
        };
        let g = |k: &str| m.get(k);
        let count = |k: &str| g(k).and_then(as_int).and_then(|n| u64::try_from(n).ok());
        Validation {
            required: get_bool(g("required")),
            min: get_bound(g("min")),
            max: get_bound(g("max")),
            min_length: count("minLength"),
            max_length: count("maxLength"),
            pattern: get_str(g("pattern")),
            message: get_str(g("message")),
            rules: g("rules")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(|s| get_str(Some(s))).collect())
                .unwrap_or_default(),
            custom_validation: get_str(g("customValidation")),
        }
    }
}

impl Component {
    /// Reads one component leniently; `None` if it has no known type.
    pub fn read(key: &str, v: &Value) -> Option<Component> {
        let c = v.as_object()?;
        let kind = ComponentType::parse(c.get("type")?.as_str()?)?;
        Some(Component {
            id: key.to_owned(),
            kind,
            label: get_str(c.get("label")).unwrap_or_default(),
            parent: get_str(c.get("parent")),
            index: get_str(c.get("index")).unwrap_or_default(),
            properties: Properties::read(c.get("properties")),
            position: c
                .get("position")
                .and_then(Value::as_object)
                .map(|p| Position {
                    x: p.get("x").and_then(as_number),
                    y: p.get("y").and_then(as_number),
                    w: p.get("w").and_then(as_number),
                    h: p.get("h").and_then(as_number),
                }),
            validation: Validation::read(c.get("validation")),
            styling: c
                .get("styling")
                .and_then(Value::as_object)
                .map(|s| Styling {
                    theme: get_str(s.get("theme")),
                    custom_styles: s
                        .get("customStyles")
                        .and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                                .collect()
                        })
                        .unwrap_or_default(),
                }),
        })
    }

    pub fn is_hidden(&self) -> bool {
        self.properties.hidden == Some(true)
    }
}

impl Meta {
    fn read(v: Option<&Value>) -> Meta {
        let Some(m) = v.and_then(Value::as_object) else {
            return Meta::default();
        };
        Meta {
            name: get_str(m.get("name")).unwrap_or_default(),
            description: get_str(m.get("description")).unwrap_or_default(),
            tags: m
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| t.iter().filter_map(|s| get_str(Some(s))).collect())
                .unwrap_or_default(),
            category: get_str(m.get("category")),
            extra: m
                .iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "name" | "description" | "tags" | "category")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

impl Form {
    /// Reads any content leniently: components without a known type are
    /// skipped, values of the wrong type read as absent. Never fails.
    pub fn read(content: &Value) -> Form {
        let components = content
            .get("components")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), Component::read(k, v)?)))
                    .collect()
            })
            .unwrap_or_default();
        Form {
            meta: Meta::read(content.get("meta")),
            components,
        }
    }

    /// Reads a live document leniently.
    pub fn from_doc(doc: &Doc) -> Form {
        Form::read(&content::to_json(doc))
    }

    /// The section a component is displayed in: its `parent` if that is a
    /// section whose own chain reaches the top level; else the top level
    /// (so nothing of a damaged document is lost from view).
    pub fn effective_parent(&self, id: &str) -> Option<&str> {
        let parent = self.components.get(id)?.parent.as_deref()?;
        let mut seen: HashSet<&str> = HashSet::from([id]);
        let mut current = parent;
        loop {
            let c = self.components.get(current)?;
            if c.kind != ComponentType::Section
                || !seen.insert(current)
                || seen.len() > MAX_DEPTH + 1
            {
                return None;
            }
            match c.parent.as_deref() {
                None => return Some(parent),
                Some(p) => current = p,
            }
        }
    }

    /// The components displayed directly in `parent` (`None`: the top
    /// level), in display order: by `index`, then by id.
    pub fn children(&self, parent: Option<&str>) -> Vec<&Component> {
        let mut out: Vec<&Component> = self
            .components
            .values()
            .filter(|c| self.effective_parent(&c.id) == parent)
            .collect();
        out.sort_by(|a, b| (a.index.as_bytes(), &a.id).cmp(&(b.index.as_bytes(), &b.id)));
        out
    }

    /// Every component in display order, depth first, with its depth.
    pub fn ordered(&self) -> Vec<(usize, &Component)> {
        let mut kids: HashMap<Option<&str>, Vec<&Component>> = HashMap::new();
        for c in self.components.values() {
            kids.entry(self.effective_parent(&c.id))
                .or_default()
                .push(c);
        }
        for list in kids.values_mut() {
            list.sort_by(|a, b| (a.index.as_bytes(), &a.id).cmp(&(b.index.as_bytes(), &b.id)));
        }
        let mut out = Vec::with_capacity(self.components.len());
        let mut stack: Vec<(usize, &Component)> = kids
            .get(&None)
            .map(|l| l.iter().rev().map(|c| (0, *c)).collect())
            .unwrap_or_default();
        while let Some((depth, c)) = stack.pop() {
            out.push((depth, c));
            if let Some(children) = kids.get(&Some(c.id.as_str())) {
                stack.extend(children.iter().rev().map(|k| (depth + 1, *k)));
            }
        }
        out
    }
}

/// Validates `content` and reads it into typed structs.
pub fn parse(content: &Value) -> Result<Form, Vec<ModelError>> {
    validate(content)?;
    Ok(Form::read(content))
}

/// Validates `target` and, if it is valid, makes the document's roots
/// named in it equal to it by a minimal CRDT edit (see
/// [`content::apply_json`]). Returns the update made (empty if nothing
/// changed); nothing is changed when there are errors.
pub fn apply(doc: &Doc, target: &Value) -> Result<Vec<u8>, Vec<ModelError>> {
    validate(target)?;
    content::apply_json(doc, target).map_err(|e| {
        vec![ModelError {
            path: String::new(),
            message: e.to_string(),
        }]
    })
}

// ---------------------------------------------------------------- diff

/// Where a component sits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub parent: Option<String>,
    pub index: Option<String>,
}

/// A component whose parent or index changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub id: String,
    pub from: Place,
    pub to: Place,
}

/// A component present on both sides whose other fields differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    pub id: String,
    /// Dotted paths of the values that differ (`label`,
    /// `properties.placeholder`, `validation.required`, ...); arrays
    /// compare as a whole.
    pub fields: Vec<String>,
}

/// What changed from one content to another. Every list is sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub moved: Vec<Moved>,
    pub changed: Vec<Changed>,
    /// Dotted paths of the meta values that differ.
    pub meta: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.moved.is_empty()
            && self.changed.is_empty()
            && self.meta.is_empty()
    }
}

pub use content::json_eq;

/// Paths under `prefix` where two objects differ (recursing into objects
/// on both sides, at most `room` levels; anything else, or anything
/// deeper, compares whole).
fn changed_paths(
    prefix: &str,
    a: &JsonMap<String, Value>,
    b: &JsonMap<String, Value>,
    skip: &[&str],
    room: usize,
    out: &mut Vec<String>,
) {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        if prefix.is_empty() && skip.contains(&key.as_str()) {
            continue;
        }
        let path = join(prefix, key);
        match (a.get(key), b.get(key)) {
            (Some(Value::Object(x)), Some(Value::Object(y))) if room > 0 => {
                changed_paths(&path, x, y, skip, room - 1, out)
            }
            (Some(x), Some(y)) if json_eq(x, y) => {}
            _ => out.push(path),
        }
    }
}

fn place(c: &Value) -> Place {
    Place {
        parent: get_str(c.get("parent")),
        index: get_str(c.get("index")),
    }
}

/// Compares two contents (read leniently: anything goes).
pub fn diff(from: &Value, to: &Value) -> Diff {
    let empty = JsonMap::new();
    let root = |v: &'_ Value, k: &str| -> JsonMap<String, Value> {
        v.get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (a, b) = (root(from, "components"), root(to, "components"));
    let mut d = Diff::default();
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for id in keys {
        match (a.get(id), b.get(id)) {
            (None, Some(_)) => d.added.push(id.clone()),
            (Some(_), None) => d.removed.push(id.clone()),
            (Some(x), Some(y)) => {
                let (px, py) = (place(x), place(y));
                if px != py {
                    d.moved.push(Moved {
                        id: id.clone(),
                        from: px,
                        to: py,
                    });
                }
                let mut fields = Vec::new();
                changed_paths(
                    "",
                    x.as_object().unwrap_or(&empty),
                    y.as_object().unwrap_or(&empty),
                    &["parent", "index"],
                    content::MAX_READ_DEPTH,
                    &mut fields,
                );
                if (!x.is_object() || !y.is_object()) && !json_eq(x, y) {
                    fields = vec![String::new()];
                }
                if !fields.is_empty() {
                    d.changed.push(Changed {
                        id: id.clone(),
                        fields,
                    });
                }
            }
            (None, None) => {}
        }
    }
    changed_paths(
        "",
        &root(from, "meta"),
        &root(to, "meta"),
        &[],
        content::MAX_READ_DEPTH,
        &mut d.meta,
    );
    d
}

// ---------------------------------------------------------------- tests

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "meta": {"name": "Signup", "description": "Join us", "tags": ["a", "b"],
                     "category": "hr", "theme": {"dark": true}},
            "components": {
                "s1": {"id": "s1", "type": "section", "label": "You", "parent": null, "index": "a0",
                       "properties": {"description": "About you", "collapsible": true}},
                "name": {"id": "name", "type": "text", "label": "Name", "parent": "s1", "index": "a0",
                         "properties": {"placeholder": "Ada", "name": "full_name", "autocomplete": "name"},
                         "validation": {"required": true, "minLength": 2, "maxLength": 80.0,
                                        "pattern": "^[^<>]+$", "message": "Your name",
                                        "rules": ["noDigits"], "customValidation": "value => value.length > 1"},
                         "position": {"x": 0, "y": 10, "w": 200, "h": 40},
                         "styling": {"theme": "light", "customStyles": {"font-weight": "bold"}}},
                "age": {"id": "age", "type": "number", "label": "Age", "parent": "s1", "index": "a1",
                        "properties": {"min": 0, "max": 150, "step": 1, "defaultValue": 30},
                        "validation": {"min": 18, "max": 120}},
                "mail": {"id": "mail", "type": "email", "label": "E-mail", "parent": null, "index": "a1"},
                "tel": {"id": "tel", "type": "phone", "label": "Phone", "index": "a2"},
                "bio": {"id": "bio", "type": "textarea", "label": "Bio", "index": "a3",
                        "properties": {"rows": 4}},
                "born": {"id": "born", "type": "date", "label": "Born", "index": "a4",
                         "properties": {"min": "1900-01-01", "max": "2024-02-29"},
                         "validation": {"min": "1900-01-01"}},
                "color": {"id": "color", "type": "select", "label": "Colour", "index": "a5",
                          "properties": {"options": [{"value": "r", "label": "Red"}, {"value": "g", "label": "Green"}],
                                         "multiple": true, "defaultValue": ["r"]}},
                "size": {"id": "size", "type": "radio", "label": "Size", "index": "a6",
                         "properties": {"options": [{"value": "s", "label": "S"}], "layout": "horizontal",
                                        "defaultValue": "s"},
                         "validation": {"required": true}},
                "tos": {"id": "tos", "type": "checkbox", "label": "I agree", "index": "a7",
                        "properties": {"defaultValue": false}, "validation": {"required": true}},
                "cv": {"id": "cv", "type": "file", "label": "CV", "index": "a8",
                       "properties": {"accept": "application/pdf, .doc,image/*", "maxSize": 1000000, "multiple": false}},
                "h": {"id": "h", "type": "heading", "label": "", "index": "a9",
                      "properties": {"text": "Welcome", "level": 2}, "validation": {}},
                "p": {"id": "p", "type": "paragraph", "label": "", "index": "b0",
                      "properties": {"text": "Fill in\nplease"}},
                "go": {"id": "go", "type": "button", "label": "Send", "index": "b1",
                       "properties": {"action": "submit", "text": "Send"}}
            }
        })
    }

    fn errors(v: &Value) -> Vec<(String, String)> {
        validate(v)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect()
    }

    fn paths(v: &Value) -> Vec<String> {
        errors(v).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn a_good_document_of_every_type_is_valid() {
        assert_eq!(errors(&good()), vec![]);
        let form = parse(&good()).unwrap();
        assert_eq!(form.components.len(), 14);
        let kinds: BTreeSet<ComponentType> = form.components.values().map(|c| c.kind).collect();
        assert_eq!(kinds.len(), ComponentType::ALL.len());
        assert_eq!(form.meta.name, "Signup");
        assert_eq!(form.meta.extra["theme"], json!({"dark": true}));
        let name = &form.components["name"];
        assert!(name.validation.is_required());
        assert_eq!(name.validation.max_length, Some(80));
        assert_eq!(name.properties.placeholder.as_deref(), Some("Ada"));
        assert_eq!(
            form.components["age"].properties.min,
            Some(Bound::Number(0.0))
        );
        assert_eq!(
            form.components["born"].properties.max,
            Some(Bound::Date("2024-02-29".into()))
        );
        assert_eq!(
            form.components["go"].properties.action,
            Some(ButtonAction::Submit)
        );
        // Empty content and an empty object are valid too.
        assert_eq!(errors(&json!({})), vec![]);
        assert_eq!(errors(&json!({"meta": {}, "components": {}})), vec![]);
    }

    #[test]
    fn typed_form_serializes_to_the_documented_shape() {
        let form = parse(&good()).unwrap();
        let v = serde_json::to_value(&form).unwrap();
        assert_eq!(v["components"]["name"]["type"], "text");
        assert_eq!(v["components"]["name"]["validation"]["maxLength"], 80);
        assert_eq!(v["components"]["born"]["properties"]["min"], "1900-01-01");
        assert_eq!(v["meta"]["theme"], json!({"dark": true}));
        let back: Form = serde_json::from_value(v).unwrap();
        assert_eq!(back, form);
    }

    #[test]
    fn hostile_values_get_precise_paths() {
        let mut doc = good();
        let c = &mut doc["components"];
        c["age"]["validation"]["min"] = json!("eighteen");
        c["name"]["validation"]["maxLength"] = json!(1.5);
        c["name"]["validation"]["required"] = json!("yes");
        c["name"]["properties"]["onclick"] = json!("alert(1)");
        c["bio"]["properties"]["rows"] = json!(1000);
        c["h"]["properties"]["level"] = json!(7);
        c["go"]["properties"]["action"] = json!("javascript:alert(1)");
        c["cv"]["properties"]["accept"] = json!("<script>");
        c["born"]["validation"]["max"] = json!("2023-02-29");
        c["size"]["properties"]["options"][0]["value"] = json!(5);
        c["color"]["properties"]["options"][1]["value"] = json!("r");
        c["h"]["validation"]["required"] = json!(true);
        c["mail"]["validation"] = json!({"min": 3});
        c["tel"]["position"] = json!({"x": "left", "w": -1, "z": 0});
        c["tel"]["styling"] = json!({"customStyles": {"a b": "x"}, "css": "y"});
        c["p"]["label"] = json!(["not", "a", "string"]);
        c["p"]["evil"] = json!(1);
        doc["meta"]["tags"] = json!(["ok", 3, " "]);
        doc["meta"]["name"] = json!({"x": 1});
        let got = paths(&doc);
        for want in [
            "components.age.validation.min",
            "components.name.validation.maxLength",
            "components.name.validation.required",
            "components.name.properties.onclick",
            "components.bio.properties.rows",
            "components.h.properties.level",
            "components.go.properties.action",
            "components.cv.properties.accept",
            "components.born.validation.max",
            "components.size.properties.options[0].value",
            "components.color.properties.options[1].value",
            "components.h.validation.required",
            "components.mail.validation.min",
            "components.tel.position.x",
            "components.tel.position.w",
            "components.tel.position.z",
            "components.tel.styling.customStyles.a b",
            "components.tel.styling.css",
            "components.p.label",
            "components.p.evil",
            "meta.tags[1]",
            "meta.tags[2]",
            "meta.name",
        ] {
            assert!(
                got.iter().any(|p| p == want),
                "no error at {want}: {got:#?}"
            );
        }
        // The radio's default no longer matches an option value.
        assert!(got.contains(&"components.size.properties.defaultValue".to_owned()));
        let errs = errors(&doc);
        let msg = |p: &str| errs.iter().find(|(x, _)| x == p).unwrap().1.clone();
        assert!(msg("components.age.validation.min").contains("number"));
        assert!(msg("components.color.properties.options[1].value").contains("duplicate"));
        assert!(msg("components.h.validation.required").contains("heading"));
    }

    #[test]
    fn unknown_types_orphans_loops_and_duplicate_ids() {
        let doc = json!({"components": {
            "a": {"id": "a", "type": "marquee", "index": "a0"},
            "b": {"id": "b", "type": "text", "index": "a1", "parent": "ghost"},
            "c": {"id": "c", "type": "text", "index": "a2", "parent": "d"},
            "d": {"id": "d", "type": "heading", "index": "a3"},
            "e": {"id": "b", "type": "text", "index": "a4"},
            "f": {"id": "zz", "type": "text", "index": "a5"},
            "s1": {"id": "s1", "type": "section", "index": "a6", "parent": "s2"},
            "s2": {"id": "s2", "type": "section", "index": "a7", "parent": "s1"},
            "s3": {"id": "s3", "type": "section", "index": "a8", "parent": "s3"},
            "g": {"type": "text"},
            "h": 5,
            "i": {"id": "i", "type": "text", "index": "has space"},
            "j k": {"id": "j k", "type": "text", "index": "a9"}
        }, "extra": {}});
        let errs = errors(&doc);
        let msg = |p: &str| {
            errs.iter()
                .find(|(x, _)| x == p)
                .unwrap_or_else(|| panic!("no error at {p}: {errs:#?}"))
                .1
                .clone()
        };
        assert!(msg("components.a.type").contains("unknown component type"));
        assert!(msg("components.b.parent").contains("orphan"));
        assert!(msg("components.c.parent").contains("not a section"));
        assert!(msg("components.e.id").contains("duplicate id"));
        assert!(msg("components.f.id").contains("must equal"));
        assert!(msg("components.s1.parent").contains("loop"));
        assert!(msg("components.s2.parent").contains("loop"));
        assert!(msg("components.s3.parent").contains("own parent"));
        assert_eq!(msg("components.g.id"), "is required");
        assert_eq!(msg("components.g.index"), "is required");
        assert!(msg("components.h").contains("object"));
        assert!(msg("components.i.index").contains("fractional"));
        assert!(msg("components.j k (key)").contains("spaces"));
        assert!(msg("extra").contains("unknown key"));
    }

    #[test]
    fn select_and_radio_need_options_and_defaults_must_match() {
        let doc = json!({"components": {
            "s": {"id": "s", "type": "select", "index": "a0"},
            "r": {"id": "r", "type": "radio", "index": "a1", "properties": {"options": []}},
            "c": {"id": "c", "type": "checkbox", "index": "a2",
                  "properties": {"options": [{"value": "x", "label": "X"}], "defaultValue": ["y"]}},
            "n": {"id": "n", "type": "number", "index": "a3",
                  "properties": {"min": 10, "max": 1, "step": 0}},
            "t": {"id": "t", "type": "text", "index": "a4",
                  "validation": {"minLength": 5, "maxLength": 2, "pattern": "x".repeat(MAX_PATTERN_CHARS + 1)}},
            "f": {"id": "f", "type": "file", "index": "a5", "properties": {"defaultValue": "x"}}
        }});
        let got = paths(&doc);
        for want in [
            "components.s.properties.options",
            "components.r.properties.options",
            "components.c.properties.defaultValue[0]",
            "components.n.properties.max",
            "components.n.properties.step",
            "components.t.validation.maxLength",
            "components.t.validation.pattern",
            "components.f.properties.defaultValue",
        ] {
            assert!(
                got.iter().any(|p| p == want),
                "no error at {want}: {got:#?}"
            );
        }
    }

    #[test]
    fn patterns_and_custom_code_are_data_never_compiled() {
        // An invalid regex and code-looking strings are fine: kept as text.
        let doc = json!({"components": {"t": {"id": "t", "type": "text", "index": "a0",
            "validation": {"pattern": "([unclosed", "rules": ["process.exit()"],
                           "customValidation": "while(true){}"}}}});
        assert_eq!(errors(&doc), vec![]);
        let form = parse(&doc).unwrap();
        assert_eq!(
            form.components["t"].validation.pattern.as_deref(),
            Some("([unclosed")
        );
    }

    #[test]
    fn error_list_is_bounded() {
        let mut comps = JsonMap::new();
        for i in 0..300 {
            comps.insert(
                format!("c{i}"),
                json!({"id": format!("c{i}"), "type": "nope", "index": "a"}),
            );
        }
        let errs = validate(&json!({ "components": comps })).unwrap_err();
        assert_eq!(errs.len(), MAX_ERRORS + 1);
        assert!(errs.last().unwrap().message.contains("200 more"));
        let mut many = JsonMap::new();
        for i in 0..=MAX_COMPONENTS {
            many.insert(format!("c{i}"), json!({}));
        }
        let errs = validate(&json!({ "components": many })).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "components");
    }

    #[test]
    fn non_object_roots_and_deep_meta() {
        assert_eq!(paths(&json!([1])), vec![""]);
        assert_eq!(
            paths(&json!({"meta": 1, "components": []})),
            vec!["meta", "components"]
        );
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert_eq!(paths(&json!({"meta": {"x": deep}})), vec!["meta.x"]);
    }

    #[test]
    fn strict_parsing_refuses_duplicate_keys_with_their_path() {
        let text = r#"{"content": {"components": {"c1": {"id": "c1"}, "c1": {"id": "c1"}}}}"#;
        let err = parse_strict(text).unwrap_err();
        assert_eq!(err.path, "content.components.c1");
        assert_eq!(err.message, "duplicate key");
        let err = parse_strict(r#"{"a": [{"x": 1, "x": 2}]}"#).unwrap_err();
        assert_eq!(err.path, "a[0].x");
        let err = parse_strict("{").unwrap_err();
        assert!(err.message.starts_with("invalid JSON"), "{err}");
        assert!(parse_strict("{} x").is_err());
        let ok = parse_strict(r#"{"a": [1, 2.5, -3, "s", null, true, {"b": {}}]}"#).unwrap();
        assert_eq!(ok, json!({"a": [1, 2.5, -3, "s", null, true, {"b": {}}]}));
    }

    #[test]
    fn display_order_follows_parents_and_fractional_indexes() {
        let form = Form::read(&good());
        let order: Vec<(usize, &str)> = form
            .ordered()
            .into_iter()
            .map(|(d, c)| (d, c.id.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![
                (0, "s1"),
                (1, "name"),
                (1, "age"),
                (0, "mail"),
                (0, "tel"),
                (0, "bio"),
                (0, "born"),
                (0, "color"),
                (0, "size"),
                (0, "tos"),
                (0, "cv"),
                (0, "h"),
                (0, "p"),
                (0, "go"),
            ]
        );
        let top: Vec<&str> = form
            .children(Some("s1"))
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(top, ["name", "age"]);
    }

    #[test]
    fn lenient_reading_of_a_damaged_document_loses_nothing_visible() {
        let doc = json!({"meta": "nope", "components": {
            "x": {"type": "text", "label": 5, "index": 3, "parent": "loop1",
                  "properties": {"options": "no", "rows": -1}, "validation": []},
            "loop1": {"type": "section", "parent": "loop2", "index": "b"},
            "loop2": {"type": "section", "parent": "loop1", "index": "a"},
            "bad": {"type": "marquee"},
            "worse": [1, 2]
        }});
        let form = Form::read(&doc);
        assert_eq!(form.meta, Meta::default());
        assert_eq!(form.components.len(), 3);
        let ids: BTreeSet<&str> = form.ordered().iter().map(|(_, c)| c.id.as_str()).collect();
        assert_eq!(ids, BTreeSet::from(["x", "loop1", "loop2"]));
        assert_eq!(form.components["x"].label, "");
        assert_eq!(form.components["x"].properties.rows, None);
    }

    #[test]
    fn apply_validates_then_edits_minimally() {
        let doc = Doc::new();
        apply(&doc, &good()).unwrap();
        assert!(json_eq(&content::to_json(&doc), &good()));
        let mut bad = good();
        bad["components"]["age"]["type"] = json!("nope");
        assert!(apply(&doc, &bad).is_err());
        assert!(json_eq(&content::to_json(&doc), &good()), "nothing changed");
        let mut next = good();
        next["components"]["age"]["label"] = json!("Your age");
        let update = apply(&doc, &next).unwrap();
        assert!(
            update.len() < 100,
            "minimal edit, got {} bytes",
            update.len()
        );
    }

    #[test]
    fn diff_reports_added_removed_moved_changed_and_meta() {
        let a = good();
        let mut b = good();
        let c = b["components"].as_object_mut().unwrap();
        c.remove("tel");
        c.insert(
            "new".into(),
            json!({"id": "new", "type": "text", "label": "New", "index": "c0"}),
        );
        c.get_mut("age").unwrap()["parent"] = json!(null);
        c.get_mut("bio").unwrap()["index"] = json!("Z9");
        c.get_mut("name").unwrap()["label"] = json!("Full name");
        c.get_mut("name").unwrap()["validation"]["required"] = json!(false);
        c.get_mut("name").unwrap()["properties"]["helpText"] = json!("As in your passport");
        c.get_mut("color").unwrap()["properties"]["options"][0]["label"] = json!("Rouge");
        // Numbers compare by value: 80 == 80.0 is no change.
        c.get_mut("name").unwrap()["validation"]["maxLength"] = json!(80);
        b["meta"]["name"] = json!("Signup v2");
        b["meta"]["theme"]["dark"] = json!(false);
        let d = diff(&a, &b);
        assert_eq!(d.added, ["new"]);
        assert_eq!(d.removed, ["tel"]);
        assert_eq!(
            d.moved,
            vec![
                Moved {
                    id: "age".into(),
                    from: Place {
                        parent: Some("s1".into()),
                        index: Some("a1".into())
                    },
                    to: Place {
                        parent: None,
                        index: Some("a1".into())
                    },
                },
                Moved {
                    id: "bio".into(),
                    from: Place {
                        parent: None,
                        index: Some("a3".into())
                    },
                    to: Place {
                        parent: None,
                        index: Some("Z9".into())
                    },
                },
            ]
        );
        assert_eq!(
            d.changed,
            vec![
                Changed {
                    id: "color".into(),
                    fields: vec!["properties.options".into()]
                },
                Changed {
                    id: "name".into(),
                    fields: vec![
                        "label".into(),
                        "properties.helpText".into(),
                        "validation.required".into()
                    ]
                },
            ]
        );
        assert_eq!(d.meta, ["name", "theme.dark"]);
        assert!(diff(&a, &a).is_empty());
        assert!(diff(&json!(null), &json!([])).is_empty());
    }

    #[test]
    fn dates_and_accept_lists() {
        for ok in ["2024-02-29", "2000-02-29", "1999-12-31", "0001-01-01"] {
            assert!(is_date(ok), "{ok}");
        }
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-1-01",
            "2024-01-00",
            "２０２４-01-01",
            "",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
        assert!(is_accept("image/*,.pdf, application/vnd.ms-excel"));
        for bad in ["", "pdf", ".", "image/", "<x>/y", "a/b c"] {
            assert!(!is_accept(bad), "{bad}");
        }
    }
}
