//! The validator: every problem of a content, each with its path
//! (`components.c1.validation.min`), so a client can point at each field.
//! Per-type properties and rules are checked against the catalog derived
//! from the schema ([`crate::check`]); what a schema cannot say — ids that
//! equal their keys, duplicates, orphan parents, loops, nesting depth,
//! defaults that must be option values — is checked here.

use std::collections::{HashMap, HashSet};

use serde_json::{Map as JsonMap, Value};

use crate::check::*;
use crate::limits::*;
use crate::{join, ComponentType, ModelError, ROOTS};

/// A key a component may have: its common fields and `type`,
/// `properties`, `validation` (from the schema).
fn is_component_key(key: &str) -> bool {
    let component = &crate::schema::template_schema()["$defs"]["Component"];
    component["properties"].get(key).is_some()
        || component["oneOf"][0]["properties"].get(key).is_some()
}

/// The entries of the object `v` at `path`, sorted, each with its own
/// path; none (and an error) if `v` is no object.
fn entries<'v>(errs: &mut Errors, path: &str, v: &'v Value) -> Vec<(&'v str, String, &'v Value)> {
    let Some(map) = v.as_object() else {
        errs.add(path, format!("must be an object, not {}", type_name(v)));
        return Vec::new();
    };
    let each = sorted(map).into_iter();
    each.map(|(key, value)| (key.as_str(), join(path, key), value))
        .collect()
}

fn check_position(errs: &mut Errors, path: &str, v: &Value) {
    for (key, at, value) in entries(errs, path, v) {
        match key {
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
    for (key, at, value) in entries(errs, path, v) {
        match key {
            "theme" => check_text(errs, &at, value, MAX_THEME_CHARS),
            "customStyles" => {
                let limit = ("an object", MAX_CUSTOM_STYLES, "entries");
                let styles = bounded(errs, &at, value, value.as_object(), |m| m.len(), limit);
                for (name, style) in styles.map(sorted).unwrap_or_default() {
                    let sp = join(&at, name);
                    if name.is_empty()
                        || name.len() > MAX_CSS_NAME_CHARS
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    {
                        errs.add(&sp, "must be a CSS property name (letters, digits, -)");
                    }
                    check_text(errs, &sp, style, MAX_STYLE_VALUE_CHARS);
                }
            }
            _ => errs.add(at, "unknown key: styling has only theme and customStyles"),
        }
    }
}

/// A collection of strings (`found`, read from `value`) holding at most
/// `max` items; otherwise records why not and gives nothing to walk.
fn bounded<C>(
    errs: &mut Errors,
    at: &str,
    value: &Value,
    found: Option<C>,
    len: impl Fn(&C) -> usize,
    (shape, max, unit): (&str, usize, &str),
) -> Option<C> {
    match found {
        None => {
            errs.add(
                at,
                format!("must be {shape} of strings, not {}", type_name(value)),
            );
            None
        }
        Some(c) if len(&c) > max => {
            errs.add(at, format!("must have at most {max} {unit}"));
            None
        }
        found => found,
    }
}

fn check_meta(errs: &mut Errors, v: &Value) {
    for (key, at, value) in entries(errs, "meta", v) {
        match key {
            "name" => check_text(errs, &at, value, MAX_META_NAME_CHARS),
            "description" => check_text(errs, &at, value, MAX_DESCRIPTION_CHARS),
            "category" => check_text(errs, &at, value, MAX_CATEGORY_CHARS),
            "tags" => {
                let limit = ("an array", MAX_TAGS, "tags");
                let tags = bounded(errs, &at, value, value.as_array(), |a| a.len(), limit);
                for (i, tag) in tags.into_iter().flatten().enumerate() {
                    let tp = format!("{at}[{i}]");
                    check_text(errs, &tp, tag, MAX_TAG_CHARS);
                    if tag.as_str().is_some_and(|t| t.trim().is_empty()) {
                        errs.add(tp, "must not be empty");
                    }
                }
            }
            _ => {
                if key.is_empty() || key.chars().count() > MAX_META_KEY_CHARS || bad_text(key) {
                    errs.add(
                        &at,
                        format!("keys must be 1 to {MAX_META_KEY_CHARS} characters without control characters"),
                    );
                }
                if crate::json::json_depth(value) > MAX_DEPTH {
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
        if !ROOTS.contains(&key.as_str()) {
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

/// What the checks of one component need to know about the others.
pub trait Components {
    /// Is there a component `id`, and of which type? `None`: there is no
    /// such component; `Some(None)`: there is, without a known type.
    fn kind(&self, id: &str) -> Option<Option<ComponentType>>;
    /// The parent component `id` names, if it names one.
    fn parent(&self, id: &str) -> Option<String>;
}

impl Components for JsonMap<String, Value> {
    fn kind(&self, id: &str) -> Option<Option<ComponentType>> {
        let c = self.get(id)?;
        Some(
            c.get("type")
                .and_then(Value::as_str)
                .and_then(ComponentType::parse),
        )
    }

    fn parent(&self, id: &str) -> Option<String> {
        let parent = self.get(id)?.get("parent")?.as_str()?;
        Some(parent.to_owned())
    }
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
    let mut ids: HashMap<String, String> = HashMap::new();
    for (key, _) in sorted(map) {
        ids.insert(key.clone(), key.clone());
    }
    for (key, value) in sorted(map) {
        check_one(errs, key, value, map, Some(&mut ids));
    }
}

/// Every problem of component `key` (its value `value`) in a document
/// whose other components `others` describes: the checks
/// [`validate`] makes of each component, for a live document where only
/// some components changed. Duplicate ids are reported as ids that differ
/// from their key.
pub fn check_component(key: &str, value: &Value, others: &dyn Components) -> Vec<ModelError> {
    let mut errs = Errors::default();
    check_one(&mut errs, key, value, others, None);
    match errs.finish() {
        Ok(()) => Vec::new(),
        Err(list) => list,
    }
}

/// Every problem of meta entry `key` (its value `value`).
pub fn check_meta_entry(key: &str, value: &Value) -> Vec<ModelError> {
    let mut errs = Errors::default();
    let mut one = JsonMap::new();
    one.insert(key.to_owned(), value.clone());
    check_meta(&mut errs, &Value::Object(one));
    match errs.finish() {
        Ok(()) => Vec::new(),
        Err(list) => list,
    }
}

fn check_one(
    errs: &mut Errors,
    key: &str,
    value: &Value,
    others: &dyn Components,
    ids: Option<&mut HashMap<String, String>>,
) {
    let path = join("components", key);
    check_id(errs, &format!("{path} (key)"), key);
    let Some(comp) = value.as_object() else {
        errs.add(
            &path,
            format!("must be an object, not {}", type_name(value)),
        );
        return;
    };
    for k in comp.keys() {
        if !is_component_key(k) {
            errs.add(join(&path, k), "unknown key");
        }
    }
    // id
    match comp.get("id") {
        None => errs.add(join(&path, "id"), "is required"),
        Some(Value::String(id)) if id == key => {}
        Some(Value::String(id)) => match ids {
            Some(ids) => match ids.get(id.as_str()) {
                Some(other) => errs.add(
                    join(&path, "id"),
                    format!("duplicate id {id:?}: already used by components.{other}"),
                ),
                None => {
                    ids.insert(id.clone(), key.to_owned());
                    errs.add(
                        join(&path, "id"),
                        format!("must equal the component's key {key:?}"),
                    );
                }
            },
            None => errs.add(
                join(&path, "id"),
                format!("must equal the component's key {key:?}"),
            ),
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
                        ComponentType::ALL
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
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
        check_text(errs, &join(&path, "label"), label, MAX_LABEL_CHARS);
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
            format!("must be a fractional index: 1 to {MAX_INDEX_CHARS} visible ASCII characters"),
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
        Some(Value::String(p)) => match others.kind(p) {
            None => errs.add(
                join(&path, "parent"),
                format!("orphan: there is no component {p:?}"),
            ),
            Some(_) => match others.kind(p).flatten() {
                Some(ComponentType::Section) => {
                    if let Some(problem) = ancestry_problem(others, key) {
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
    let Some(kind) = kind else { return };
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

/// Walks up from `start`: a loop or too deep a nesting is a problem.
fn ancestry_problem(others: &dyn Components, start: &str) -> Option<String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut current = start.to_owned();
    seen.insert(current.clone());
    for _ in 0..=MAX_DEPTH {
        let parent = others.parent(&current)?;
        if !seen.insert(parent.clone()) {
            return Some(format!("sections form a loop through {parent:?}"));
        }
        current = parent;
    }
    Some(format!("sections nest deeper than {MAX_DEPTH} levels"))
}
