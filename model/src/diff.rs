//! Comparing two contents: components added, removed, moved (parent or
//! index changed) and changed (which fields), and meta fields.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map as JsonMap, Value};

use crate::join;
use crate::json::{json_eq, MAX_READ_DEPTH};

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
    let get = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
    Place {
        parent: get("parent"),
        index: get("index"),
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
                    MAX_READ_DEPTH,
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
        MAX_READ_DEPTH,
        &mut d.meta,
    );
    d
}
