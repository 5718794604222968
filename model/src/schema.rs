//! The JSON Schema (draft 2020-12) of a template's content, derived from
//! [`crate::types`], and the component [`Catalog`] derived from that
//! schema: for each component type, its properties and validation rules
//! with their kind, limits, default, label and group — what a designer's
//! palette and property panels need, and what [`crate::validate`] checks
//! property by property.

use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde_json::{Map, Value};

/// `{"type": ["string", "null"]}`: a field that may be `null`.
pub fn nullable_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["string", "null"], "x-nullable": true})
}

/// The JSON Schema (draft 2020-12) of a template's content. Computed once.
pub fn template_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let generator = SchemaSettings::draft2020_12().into_generator();
        let mut schema = generator
            .into_root_schema_for::<crate::Content>()
            .to_value();
        schema["$id"] = Value::from("https://coform.dev/schema/template-content.json");
        tidy(&mut schema);
        schema
    })
}

/// Makes the derived schema say what the model means: an optional field
/// is absent, not `null` (only fields marked `x-nullable` may be `null`);
/// descriptions are one line; integer formats (`uint32`, ...) go.
fn tidy(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let nullable = map.remove("x-nullable").is_some();
            if !nullable {
                if let Some(Value::Array(types)) = map.get_mut("type") {
                    types.retain(|t| t != "null");
                    if types.len() == 1 {
                        let only = types.remove(0);
                        map.insert("type".into(), only);
                    }
                }
                collapse_optional(map);
            }
            if map.get("format").and_then(Value::as_str).is_some_and(|f| {
                f.starts_with("uint") || f.starts_with("int") || f == "double" || f == "float"
            }) {
                map.remove("format");
            }
            for key in ["description", "title"] {
                if let Some(Value::String(text)) = map.get_mut(key) {
                    *text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                }
            }
            for value in map.values_mut() {
                tidy(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

/// `{"anyOf": [X, {"type": "null"}], ...rest}` → `X` with `rest`.
fn collapse_optional(map: &mut Map<String, Value>) {
    let Some(Value::Array(any)) = map.get("anyOf") else {
        return;
    };
    let is_null = |v: &Value| v.get("type").and_then(Value::as_str) == Some("null");
    if any.len() != 2 || !any.iter().any(is_null) {
        return;
    }
    let Some(Value::Object(inner)) = any.iter().find(|v| !is_null(v)).cloned() else {
        return;
    };
    map.remove("anyOf");
    for (k, v) in inner {
        map.entry(k).or_insert(v);
    }
}

/// Resolves a local `$ref` (`#/$defs/Name`) against the root schema.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root["$defs"].get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

// ---------------------------------------------------------------- catalog

/// What kind of value a field holds (how a property panel edits it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FieldKind {
    /// A string (no control characters but tab and line breaks).
    Text,
    Boolean,
    Integer,
    Number,
    /// A date `YYYY-MM-DD`.
    Date,
    /// One of `values`.
    Choice,
    /// A list of `{value, label}` options.
    Options,
    /// A file input's `accept` list.
    Accept,
    /// A list of strings.
    List,
    /// One option value, or several (a choice type's default value).
    OptionValue,
    /// Options read from a data source: `{dataSourceId, params, path,
    /// labelKey, valueKey}` ([`crate::OptionsSource`]).
    OptionsSource,
    /// A default value read from a data source: `{dataSourceId, params,
    /// path}` ([`crate::DefaultSource`]).
    DefaultSource,
}

/// Limits of a field (absent: none).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// The value must be greater than this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive_minimum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// Most characters of each item of a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_max_length: Option<u64>,
}

/// One property or validation rule of a component type.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    /// Its key (`placeholder`, `minLength`, ...).
    pub name: String,
    /// A human label.
    pub label: String,
    /// What it is for.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Where a property panel shows it (`basic`, `data`, `options`,
    /// `layout`, `behaviour`, `validation`, `advanced`).
    pub group: String,
    pub kind: FieldKind,
    /// Must be present.
    pub required: bool,
    /// The value used when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    pub limits: FieldLimits,
    /// The allowed values of a [`FieldKind::Choice`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// One component type, as a palette shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeInfo {
    /// Its name in documents (`text`, ...).
    #[serde(rename = "type")]
    pub name: String,
    pub label: String,
    pub description: String,
    /// Palette group: `input`, `choice`, `layout`, `content`, `action`.
    pub group: String,
    /// Collects a value from the person filling the form.
    pub input: bool,
    /// Other components may sit inside it (`parent`).
    pub container: bool,
    pub properties: Vec<Field>,
    pub validation: Vec<Field>,
}

/// Every component type with its fields, derived from the schema.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub types: Vec<TypeInfo>,
    /// Fields every component has besides `properties` and `validation`
    /// (`label`, ...), with their limits.
    pub common: Vec<Field>,
}

impl Catalog {
    /// The entry of `type_name`, if it is a type.
    pub fn get(&self, type_name: &str) -> Option<&TypeInfo> {
        self.types.iter().find(|t| t.name == type_name)
    }
}

impl TypeInfo {
    /// Its property `name`, if it has one.
    pub fn property(&self, name: &str) -> Option<&Field> {
        self.properties.iter().find(|f| f.name == name)
    }

    /// Its validation rule `name`, if it has one.
    pub fn rule(&self, name: &str) -> Option<&Field> {
        self.validation.iter().find(|f| f.name == name)
    }
}

/// The component catalog. Computed once.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| build_catalog(template_schema()))
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn count(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn build_catalog(root: &Value) -> Catalog {
    let component = &root["$defs"]["Component"];
    let types = component["oneOf"]
        .as_array()
        .map(|variants| {
            variants
                .iter()
                .map(|variant| type_info(root, variant))
                .collect()
        })
        .unwrap_or_default();
    let common = object_fields(root, component)
        .into_iter()
        .filter(|f| f.name == "label")
        .collect();
    Catalog { types, common }
}

fn type_info(root: &Value, variant: &Value) -> TypeInfo {
    let props = &variant["properties"];
    let name = text(&props["type"], "const");
    let kind = crate::ComponentType::parse(&name);
    TypeInfo {
        label: text(variant, "title"),
        description: text(variant, "description"),
        group: text(variant, "x-group"),
        input: kind.is_some_and(crate::ComponentType::is_input),
        container: kind == Some(crate::ComponentType::Section),
        properties: object_fields(root, resolve(root, &props["properties"])),
        validation: object_fields(root, resolve(root, &props["validation"])),
        name,
    }
}

/// The fields of an object schema, in declaration order.
fn object_fields(root: &Value, object: &Value) -> Vec<Field> {
    let required: Vec<&str> = object["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = object["properties"].as_object() else {
        return Vec::new();
    };
    props
        .iter()
        .filter(|(name, _)| *name != "type")
        .map(|(name, schema)| field(root, name, schema, required.contains(&name.as_str())))
        .collect()
}

fn field(root: &Value, name: &str, schema: &Value, required: bool) -> Field {
    let target = resolve(root, schema);
    let items = resolve(root, &target["items"]);
    let values: Vec<String> = target["enum"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let def = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"));
    let kind = if def == Some("OptionsSource") {
        FieldKind::OptionsSource
    } else if def == Some("DefaultSource") {
        FieldKind::DefaultSource
    } else if target.get("anyOf").is_some() {
        FieldKind::OptionValue
    } else if target["format"] == "date" {
        FieldKind::Date
    } else if target["format"] == "accept" {
        FieldKind::Accept
    } else if !values.is_empty() {
        FieldKind::Choice
    } else {
        match target["type"].as_str() {
            Some("boolean") => FieldKind::Boolean,
            Some("integer") => FieldKind::Integer,
            Some("number") => FieldKind::Number,
            Some("array") if items.get("properties").is_some() => FieldKind::Options,
            Some("array") => FieldKind::List,
            _ => FieldKind::Text,
        }
    };
    let label = match text(schema, "title") {
        t if t.is_empty() => name.to_owned(),
        t => t,
    };
    Field {
        name: name.to_owned(),
        label,
        description: text(schema, "description"),
        group: match text(schema, "x-group") {
            g if g.is_empty() => "basic".to_owned(),
            g => g,
        },
        kind,
        required,
        default: schema.get("default").filter(|d| !d.is_null()).cloned(),
        limits: FieldLimits {
            min_length: count(target, "minLength"),
            max_length: count(target, "maxLength"),
            minimum: num(target, "minimum").or_else(|| num(schema, "minimum")),
            maximum: num(target, "maximum").or_else(|| num(schema, "maximum")),
            exclusive_minimum: num(schema, "exclusiveMinimum"),
            min_items: count(target, "minItems"),
            max_items: count(target, "maxItems"),
            item_max_length: count(items, "maxLength"),
        },
        values,
    }
}
