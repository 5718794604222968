//! Files generated from the schema: the SDK's TypeScript types of the
//! form model (`client-sdk/src/generated/form.ts`) and the component
//! reference in `docs/TEMPLATE_FORMAT.md`. The tests of this crate fail
//! when a committed copy differs from what the schema gives;
//! `COFORM_REGENERATE=1 cargo test -p coform-model` rewrites them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map as JsonMap, Value};

use crate::schema::{catalog, template_schema, Field, FieldKind, TypeInfo};

/// Where the generated TypeScript lives, from the repository root.
pub const TS_PATH: &str = "client-sdk/src/generated/form.ts";
/// The document whose reference section is generated.
pub const DOC_PATH: &str = "docs/TEMPLATE_FORMAT.md";
/// The markers around the generated section of [`DOC_PATH`].
pub const DOC_BEGIN: &str = "<!-- BEGIN GENERATED: component reference (coform-model) -->";
pub const DOC_END: &str = "<!-- END GENERATED: component reference -->";

/// A TypeScript name for a schema definition (`Date` would shadow the
/// JavaScript global).
fn ts_name(def: &str) -> String {
    match def {
        "Date" => "IsoDate".into(),
        other => other.into(),
    }
}

fn ref_name(schema: &Value) -> Option<String> {
    schema
        .get("$ref")?
        .as_str()?
        .strip_prefix("#/$defs/")
        .map(ts_name)
}

/// The TypeScript type of a schema.
fn ts_type(schema: &Value) -> String {
    if let Some(name) = ref_name(schema) {
        return name;
    }
    if let Some(c) = schema.get("const") {
        return c.to_string();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        return any.iter().map(ts_type).collect::<Vec<_>>().join(" | ");
    }
    let one = |t: &str| match t {
        "string" => "string".to_owned(),
        "integer" | "number" => "number".to_owned(),
        "boolean" => "boolean".to_owned(),
        "null" => "null".to_owned(),
        "array" => format!("Array<{}>", ts_type(&schema["items"])),
        "object" => match &schema["additionalProperties"] {
            Value::Object(_) => format!(
                "Record<string, {}>",
                ts_type(&schema["additionalProperties"])
            ),
            _ => "Record<string, unknown>".to_owned(),
        },
        _ => "unknown".to_owned(),
    };
    match &schema["type"] {
        Value::String(t) => one(t),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "unknown".to_owned(),
    }
}

/// A `/** ... */` comment from a schema's title and description.
fn doc_comment(out: &mut String, indent: &str, schema: &Value) {
    let title = schema["title"].as_str().unwrap_or_default();
    let description = schema["description"].as_str().unwrap_or_default();
    let text = match (title.is_empty(), description.is_empty()) {
        (true, true) => return,
        (false, true) => title.to_owned(),
        (true, false) => description.to_owned(),
        (false, false) => format!("{title}: {description}"),
    };
    let _ = writeln!(out, "{indent}/** {} */", text.replace("*/", "* /"));
}

/// The members of an object schema.
fn ts_members(out: &mut String, schema: &Value) {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = schema["properties"].as_object() {
        for (name, prop) in props {
            doc_comment(out, "  ", prop);
            let optional = if required.contains(&name.as_str()) {
                ""
            } else {
                "?"
            };
            let _ = writeln!(out, "  {name}{optional}: {}", ts_type(prop));
        }
    }
    if schema["additionalProperties"] == Value::Bool(true) {
        out.push_str("  [key: string]: unknown\n");
    }
}

/// The fields every input's `properties` (or `validation`) begin with,
/// as TypeScript base interfaces, so that the SDK states them once.
#[derive(Default)]
struct Bases {
    /// A base that is no type of the model: its name → (doc, members).
    new: Vec<(String, (String, Value))>,
    /// A type that extends a base → (the base, its own members).
    of: BTreeMap<String, (String, Value)>,
}

/// Finds, per family (`properties`, `validation`), the leading fields
/// the inputs' types all share; a type holding nothing else is the base.
fn input_bases(defs: &JsonMap<String, Value>) -> Bases {
    let mut bases = Bases::default();
    let component = &defs["Component"];
    for (family, base_name) in [
        ("properties", "InputPropertiesCommon"),
        ("validation", "InputValidationCommon"),
    ] {
        let mut names: Vec<String> = Vec::new();
        for variant in component["oneOf"].as_array().into_iter().flatten() {
            let t = variant["properties"]["type"]["const"]
                .as_str()
                .unwrap_or_default();
            let is_input = catalog().types.iter().any(|i| i.name == t && i.input);
            let def = variant["properties"][family]["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/$defs/"));
            if let (true, Some(def)) = (is_input, def) {
                if !names.iter().any(|n| n == def) {
                    names.push(def.to_owned());
                }
            }
        }
        let members = |name: &str| -> Vec<(String, Value)> {
            defs[name]["properties"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        let Some(first) = names.first() else { continue };
        let mut shared = members(first);
        for name in &names[1..] {
            let theirs = members(name);
            let same = shared
                .iter()
                .zip(&theirs)
                .take_while(|(a, b)| a == b)
                .count();
            shared.truncate(same);
        }
        if shared.len() < 2 || names.len() < 2 {
            continue;
        }
        let keys: Vec<&str> = shared.iter().map(|(k, _)| k.as_str()).collect();
        let exact = names
            .iter()
            .find(|n| members(n).len() == shared.len())
            .cloned();
        let base = exact
            .clone()
            .map(|n| ts_name(&n))
            .unwrap_or_else(|| base_name.to_owned());
        if exact.is_none() {
            let mut def = defs[first.as_str()].clone();
            def["properties"] = Value::Object(shared.iter().cloned().collect());
            bases.new.push((
                base.clone(),
                (format!("What every input's `{family}` has."), def),
            ));
        }
        for name in names.iter().filter(|n| Some(*n) != exact.as_ref()) {
            let mut own = defs[name.as_str()].clone();
            let rest: JsonMap<String, Value> = members(name)
                .into_iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .collect();
            own["properties"] = Value::Object(rest);
            bases.of.insert(name.clone(), (base.clone(), own));
        }
    }
    bases
}

/// The SDK's TypeScript types of the form model.
pub fn typescript() -> String {
    let schema = template_schema();
    let mut out = String::from(
        "// Generated from the form model (crate coform-model) — do not edit.\n\
         // Regenerate: COFORM_REGENERATE=1 cargo test -p coform-model\n\n",
    );
    let names: Vec<&str> = crate::ComponentType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    out.push_str("/** Every component type, in the palette's order. */\n");
    let _ = writeln!(
        out,
        "export const COMPONENT_TYPES = [{}] as const\n",
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, value, doc) in [
        (
            "MAX_COMPONENTS",
            crate::MAX_COMPONENTS,
            "Most components in one template.",
        ),
        (
            "MAX_DEPTH",
            crate::MAX_DEPTH,
            "Deepest nesting of sections.",
        ),
        (
            "MAX_ID_CHARS",
            crate::MAX_ID_CHARS,
            "Most characters of a component id.",
        ),
        (
            "MAX_INDEX_CHARS",
            crate::MAX_INDEX_CHARS,
            "Most characters of an `index`.",
        ),
        (
            "MAX_OPTIONS",
            crate::MAX_OPTIONS,
            "Most options of a choice component.",
        ),
    ] {
        let _ = writeln!(out, "/** {doc} */\nexport const {name} = {value}\n");
    }
    out.push_str("/** A component type the server knows. */\n");
    out.push_str("export type KnownComponentType = typeof COMPONENT_TYPES[number]\n\n");
    let defs = schema["$defs"].as_object().cloned().unwrap_or_default();
    let bases = input_bases(&defs);
    for (base, (doc, members)) in &bases.new {
        let _ = writeln!(out, "/** {doc} */\nexport interface {base} {{");
        ts_members(&mut out, members);
        out.push_str("}\n\n");
    }
    for (name, def) in &defs {
        if name == "Component" {
            continue;
        }
        doc_comment(&mut out, "", def);
        let ts = ts_name(name);
        if let Some((base, own)) = bases.of.get(name) {
            let _ = writeln!(out, "export interface {ts} extends {base} {{");
            ts_members(&mut out, own);
            out.push_str("}\n\n");
        } else if def["type"] == "object" && def.get("properties").is_some() {
            let _ = writeln!(out, "export interface {ts} {{");
            ts_members(&mut out, def);
            out.push_str("}\n\n");
        } else if def["type"] == "object" {
            let _ = writeln!(out, "export interface {ts} {{}}\n");
        } else {
            let _ = writeln!(out, "export type {ts} = {}\n", ts_type(def));
        }
    }
    // Components: the common fields, and one interface per type.
    let component = &defs["Component"];
    out.push_str("/** What every component has besides its type-specific fields. */\n");
    out.push_str("export interface ComponentCommon {\n");
    ts_members(&mut out, component);
    out.push_str("}\n\n");
    let mut variants = Vec::new();
    let mut by_type = String::new();
    let mut rules_by_type = String::new();
    for variant in component["oneOf"].as_array().into_iter().flatten() {
        let t = variant["properties"]["type"]["const"]
            .as_str()
            .unwrap_or_default();
        let iface = format!("{}Component", pascal(t));
        doc_comment(&mut out, "", variant);
        let _ = writeln!(out, "export interface {iface} extends ComponentCommon {{");
        ts_members(&mut out, variant);
        out.push_str("}\n\n");
        let _ = writeln!(
            by_type,
            "  {t}: {}",
            ts_type(&variant["properties"]["properties"])
        );
        let _ = writeln!(
            rules_by_type,
            "  {t}: {}",
            ts_type(&variant["properties"]["validation"])
        );
        variants.push(iface);
    }
    out.push_str("/** One component of a template's content, by its `type`. */\n");
    let _ = writeln!(
        out,
        "export type ComponentData =\n  | {}\n",
        variants.join("\n  | ")
    );
    out.push_str("/** The `properties` of each component type. */\n");
    let _ = writeln!(out, "export interface PropertiesByType {{\n{by_type}}}\n");
    out.push_str("/** The `validation` rules of each component type. */\n");
    let _ = writeln!(
        out,
        "export interface ValidationByType {{\n{rules_by_type}}}\n"
    );
    doc_comment(&mut out, "", schema);
    out.push_str("export interface TemplateContentData {\n");
    ts_members(&mut out, schema);
    out.push_str("}\n");
    out.replace("Record<string, Component>", "Record<string, ComponentData>")
}

fn pascal(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- docs

fn kind_text(f: &Field) -> String {
    let l = &f.limits;
    let range = |lo: Option<f64>, hi: Option<f64>| match (lo, hi) {
        (Some(a), Some(b)) => format!(" {}–{}", crate::format_number(a), crate::format_number(b)),
        (Some(a), None) => format!(" ≥ {}", crate::format_number(a)),
        (None, Some(b)) => format!(" ≤ {}", crate::format_number(b)),
        _ => String::new(),
    };
    match f.kind {
        FieldKind::Text => match l.max_length {
            Some(n) => format!("string ≤ {n}"),
            None => "string".into(),
        },
        FieldKind::Boolean => "boolean".into(),
        FieldKind::Integer => format!("integer{}", range(l.minimum, l.maximum)),
        FieldKind::Number => match l.exclusive_minimum {
            Some(m) => format!("number > {}", crate::format_number(m)),
            None => format!("number{}", range(l.minimum, l.maximum)),
        },
        FieldKind::Date => "date `YYYY-MM-DD`".into(),
        FieldKind::Choice => f
            .values
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", "),
        FieldKind::Options => {
            let n = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
            let count = match (l.min_items, l.max_items) {
                (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
                (None, hi) => format!("≤ {}", n(hi)),
                (Some(lo), None) => format!("≥ {lo}"),
            };
            format!("{count} `{{value, label}}`")
        }
        FieldKind::Accept => format!(
            "`.ext` or `type/subtype`, comma-separated, ≤ {}",
            l.max_length.unwrap_or_default()
        ),
        FieldKind::List => format!(
            "≤ {} strings ≤ {}",
            l.max_items.unwrap_or_default(),
            l.item_max_length.unwrap_or_default()
        ),
        FieldKind::OptionValue => "option value(s)".into(),
        FieldKind::OptionsSource => {
            "binding `{dataSourceId, params, path, labelKey, valueKey}`".into()
        }
        FieldKind::DefaultSource => "binding `{dataSourceId, params, path}`".into(),
    }
}

fn field_rows(out: &mut String, fields: &[Field]) {
    out.push_str("| Key | Type | Default | Group | |\n|---|---|---|---|---|\n");
    for f in fields {
        let default = f
            .default
            .as_ref()
            .map(|d| format!("`{d}`"))
            .unwrap_or_default();
        let required = if f.required { "required. " } else { "" };
        let _ = writeln!(
            out,
            "| `{}` | {} | {default} | {} | {required}{} |",
            f.name,
            kind_text(f),
            f.group,
            f.description.replace('|', "\\|")
        );
    }
}

fn type_section(out: &mut String, t: &TypeInfo) {
    let _ = writeln!(
        out,
        "#### `{}` — {}\n\n{}\n",
        t.name, t.label, t.description
    );
    if t.properties.is_empty() {
        out.push_str("No properties.\n\n");
    } else {
        out.push_str("Properties:\n\n");
        field_rows(out, &t.properties);
        out.push('\n');
    }
    if !t.validation.is_empty() {
        out.push_str("Validation rules:\n\n");
        field_rows(out, &t.validation);
        out.push('\n');
    }
}

/// The component reference: every type with its properties and rules.
pub fn reference() -> String {
    let mut out = String::new();
    out.push_str(DOC_BEGIN);
    out.push_str(
        "\n\n_Generated from the form model (crate `coform-model`); the same \
         catalog is served at `GET /api/schema/components` and the JSON Schema \
         at `GET /api/schema/template`._\n\n",
    );
    for t in &catalog().types {
        type_section(&mut out, t);
    }
    out.push_str(DOC_END);
    out
}

/// `doc` with its generated section replaced by [`reference`].
pub fn with_reference(doc: &str) -> Option<String> {
    let start = doc.find(DOC_BEGIN)?;
    let end = doc.find(DOC_END)? + DOC_END.len();
    Some(format!("{}{}{}", &doc[..start], reference(), &doc[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repo_file(path: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path)
    }

    /// Compares a committed file with what the schema gives; rewrites it
    /// with `COFORM_REGENERATE=1`.
    fn check(path: &str, want: &str) {
        let file = repo_file(path);
        if std::env::var_os("COFORM_REGENERATE").is_some() {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            have == want,
            "{path} is not what the form model generates: run \
             `COFORM_REGENERATE=1 cargo test -p coform-model` and commit the result"
        );
    }

    #[test]
    fn the_sdk_types_are_generated_from_the_schema() {
        check(TS_PATH, &typescript());
    }

    #[test]
    fn the_format_reference_is_generated_from_the_schema() {
        let doc = std::fs::read_to_string(repo_file(DOC_PATH)).unwrap();
        let want = with_reference(&doc).expect("the reference markers are in the document");
        check(DOC_PATH, &want);
    }
}
