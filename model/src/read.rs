//! Reading any content leniently into the typed model, and display order.
//!
//! A live document can hold anything its editors' clients wrote. Reading
//! keeps what fits the model and leaves the rest out, never failing:
//! components without a known type are skipped, and a property or rule
//! that does not fit its type (as the catalog says) is read as absent.
//!
//! Display order: siblings (components with the same parent, `null` for
//! the top level) sort by `index`, a fractional-index string compared byte
//! by byte, then by id. `parent` names a `section`.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::{json, Map as JsonMap, Value};

use crate::check::{as_int, as_number, is_date};
use crate::limits::MAX_DEPTH;
use crate::schema::{catalog, Field, FieldKind};
use crate::types::*;

/// A template's content read leniently (see [`Content::read`]).
pub type Form = Content;

/// Does `v` fit `field`'s kind (limits of text aside: a long label still
/// reads)? Integers must also be within the field's range.
fn fits(field: &Field, v: &Value) -> bool {
    let l = &field.limits;
    match field.kind {
        FieldKind::Text | FieldKind::Accept => v.is_string(),
        FieldKind::Boolean => v.is_boolean(),
        FieldKind::Integer => as_int(v).is_some_and(|n| {
            l.minimum.is_none_or(|m| n as f64 >= m) && l.maximum.is_none_or(|m| n as f64 <= m)
        }),
        FieldKind::Number => {
            as_number(v).is_some_and(|n| l.exclusive_minimum.is_none_or(|m| n > m))
        }
        FieldKind::Date => v.as_str().is_some_and(is_date),
        FieldKind::Choice => v
            .as_str()
            .is_some_and(|s| field.values.iter().any(|x| x == s)),
        FieldKind::Options => v.is_array(),
        FieldKind::List => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        FieldKind::OptionValue => {
            v.is_string()
                || v.is_boolean()
                || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        }
        // A binding reads when its shape is the type's (the limits aside),
        // so that one odd binding never costs the component the rest.
        FieldKind::OptionsSource => OptionsSource::deserialize(v).is_ok(),
        FieldKind::DefaultSource => DefaultSource::deserialize(v).is_ok(),
    }
}

/// Options as the model reads them: objects with a string `value`; the
/// label is the value when absent.
fn read_options(v: &Value) -> Value {
    let items = v.as_array().into_iter().flatten().filter_map(|o| {
        let value = o.get("value")?.as_str()?;
        let label = o.get("label").and_then(Value::as_str).unwrap_or(value);
        Some(json!({"value": value, "label": label}))
    });
    Value::Array(items.collect())
}

/// The entries of `v` (an object) that fit their field; integers as
/// integers (Yjs stores every number as a float).
fn fitting(
    v: Option<&Value>,
    field_of: impl Fn(&str) -> Option<&'static Field>,
) -> JsonMap<String, Value> {
    let Some(map) = v.and_then(Value::as_object) else {
        return JsonMap::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let field = field_of(k)?;
            if !fits(field, v) {
                return None;
            }
            let v = match field.kind {
                FieldKind::Integer => Value::from(as_int(v)?),
                FieldKind::Options => read_options(v),
                _ => v.clone(),
            };
            Some((k.clone(), v))
        })
        .collect()
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

impl Component {
    /// Reads one component leniently; `None` if it has no known type.
    pub fn read(key: &str, v: &Value) -> Option<Component> {
        let c = v.as_object()?;
        let kind = ComponentType::parse(c.get("type")?.as_str()?)?;
        let info = catalog().get(kind.as_str())?;
        let mut properties = fitting(c.get("properties"), |k| info.property(k));
        for field in info.properties.iter().filter(|f| f.required) {
            // A required list (options) reads as empty when missing.
            properties
                .entry(field.name.clone())
                .or_insert(Value::Array(Vec::new()));
        }
        let validation = fitting(c.get("validation"), |k| info.rule(k));
        let kind = serde_json::from_value(json!({
            "type": kind.as_str(),
            "properties": properties,
            "validation": validation,
        }))
        .unwrap_or_else(|_| Kind::empty(kind));
        let number = |p: &JsonMap<String, Value>, k: &str| p.get(k).and_then(as_number);
        Some(Component {
            id: key.to_owned(),
            kind,
            label: string(c.get("label")).unwrap_or_default(),
            parent: string(c.get("parent")),
            index: string(c.get("index")).unwrap_or_default(),
            position: c
                .get("position")
                .and_then(Value::as_object)
                .map(|p| Position {
                    x: number(p, "x"),
                    y: number(p, "y"),
                    w: number(p, "w"),
                    h: number(p, "h"),
                }),
            styling: c
                .get("styling")
                .and_then(Value::as_object)
                .map(|s| Styling {
                    theme: string(s.get("theme")),
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

    /// Its type.
    pub fn component_type(&self) -> ComponentType {
        self.kind.component_type()
    }

    /// Hidden from the person filling the form.
    pub fn is_hidden(&self) -> bool {
        self.kind.hidden() == Some(true)
    }
}

impl Meta {
    /// Reads meta leniently: known keys of the wrong type read as absent.
    pub fn read(v: Option<&Value>) -> Meta {
        let Some(m) = v.and_then(Value::as_object) else {
            return Meta::default();
        };
        Meta {
            name: string(m.get("name")).unwrap_or_default(),
            description: string(m.get("description")).unwrap_or_default(),
            tags: m
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| t.iter().filter_map(|s| string(Some(s))).collect())
                .unwrap_or_default(),
            category: string(m.get("category")),
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

impl Content {
    /// Reads any content leniently: components without a known type are
    /// skipped, values that do not fit read as absent. Never fails.
    pub fn read(content: &Value) -> Content {
        let components = content
            .get("components")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), Component::read(k, v)?)))
                    .collect()
            })
            .unwrap_or_default();
        Content {
            meta: Meta::read(content.get("meta")),
            components,
        }
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
            if c.component_type() != ComponentType::Section
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

    /// The components displayed directly in `parent` (`None`: the top
    /// level), in display order.
    pub fn children(&self, parent: Option<&str>) -> Vec<&Component> {
        let mut out: Vec<&Component> = self
            .components
            .values()
            .filter(|c| self.effective_parent(&c.id) == parent)
            .collect();
        out.sort_by(|a, b| (a.index.as_bytes(), &a.id).cmp(&(b.index.as_bytes(), &b.id)));
        out
    }
}
