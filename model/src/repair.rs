//! Repairing a component or a meta entry that a live edit left invalid.
//!
//! A live document can receive anything an editor's client writes. When an
//! edit leaves a component invalid, the server answers with its own edit
//! that makes it valid again, touching as little as it can. This module
//! decides that edit, on JSON: which fields to change and to what.
//!
//! For each field a problem points at (a top-level key of the component,
//! one entry of `properties`, `validation`, `position` or `styling`, or
//! one custom style), the repair tries in turn:
//!
//! 1. the value the field had before the edit (a field the edit added is
//!    removed again);
//! 2. the catalog's default for the field, if it has one (a `select`
//!    whose options were emptied gets the default options);
//! 3. removing the field.
//!
//! A few fields have a repair of their own: an `id` that differs from the
//! component's key is set to the key, and a `parent` that names no
//! section (an orphan, a loop, too deep a nesting) becomes `null`: the
//! component moves to the top level instead of disappearing. A component
//! that is no object, or has no known `type`, cannot be repaired and is
//! dropped; so is one that is still invalid after every field was tried.

use std::collections::HashMap;

use serde_json::{Map as JsonMap, Value};

use crate::schema::{catalog, FieldKind};
use crate::validate::{check_component, check_meta_entry, Components};
use crate::{ComponentType, ModelError};

/// A field of a component, as the keys leading to it (`["label"]`,
/// `["properties", "placeholder"]`, `["styling", "customStyles", "color"]`).
pub type FieldPath = Vec<String>;

/// A field's value before the edit, as far as it is known: `None` inside
/// means the field was absent. Fields missing from the map are unknown.
pub type Previous = HashMap<FieldPath, Option<Value>>;

/// What the repair did to one field (or to the whole component).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Set back to its value before the edit.
    Restored,
    /// Set to the catalog's default.
    Defaulted,
    /// Removed.
    Removed,
    /// A `parent` that named no section: set to `null` (top level).
    Reparented,
    /// An `id` that differed from the key: set to the key.
    IdFixed,
    /// The whole component was removed.
    Dropped,
}

impl Action {
    /// Its name in metrics and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Restored => "restored",
            Action::Defaulted => "defaulted",
            Action::Removed => "removed",
            Action::Reparented => "reparented",
            Action::IdFixed => "id_fixed",
            Action::Dropped => "dropped",
        }
    }
}

/// One repair: what was done where, and why.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repair {
    /// The component's key; `None` for a meta entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The field, dotted (`properties.placeholder`); empty when the whole
    /// component was dropped.
    pub field: String,
    pub action: Action,
    /// The problem that caused it, as the validator words it.
    pub reason: String,
}

/// The result of [`repair_component`].
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Nothing to repair.
    Valid,
    /// The component is valid once the fields in `changed` take their
    /// values from `value` (a field absent from `value` is removed).
    Fixed {
        value: Value,
        changed: Vec<FieldPath>,
        repairs: Vec<Repair>,
    },
    /// The component cannot be repaired and must be removed.
    Drop(Repair),
}

/// Rounds of repair before a component is given up (each round fixes the
/// fields then at fault, those the edit changed first; a field has at most
/// three tries).
const MAX_ROUNDS: usize = 8;

/// Checks component `key` (value `value`) and, if it is invalid, decides
/// its repair. `previous` holds the values its fields had before the edit;
/// `others` answers for the rest of the document.
pub fn repair_component(
    key: &str,
    value: &Value,
    previous: &Previous,
    others: &dyn Components,
) -> Outcome {
    let first = check_component(key, value, others);
    if first.is_empty() {
        return Outcome::Valid;
    }
    let drop = |reason: &ModelError| {
        Outcome::Drop(Repair {
            component: Some(key.to_owned()),
            field: String::new(),
            action: Action::Dropped,
            reason: reason.to_string(),
        })
    };
    let Some(kind) = value
        .get("type")
        .and_then(Value::as_str)
        .and_then(ComponentType::parse)
    else {
        let why = first
            .iter()
            .find(|e| e.path.ends_with(".type"))
            .unwrap_or(&first[0]);
        return drop(why);
    };
    let prefix = format!("components.{key}");
    let mut target = value.clone();
    let mut tries: HashMap<FieldPath, usize> = HashMap::new();
    let mut done: Vec<(FieldPath, Action, String)> = Vec::new();
    let mut errors = first;
    for _ in 0..MAX_ROUNDS {
        // Each problem with the field it is about (`None`: the component's
        // own problem, which no field repair mends).
        let mut faults: Vec<(Option<FieldPath>, &ModelError)> = Vec::new();
        for error in &errors {
            if error.path.is_empty() {
                // "N more errors not listed": the next round sees them.
                continue;
            }
            let field = field_of(&error.path, &prefix, &target).map(|field| {
                if previous.contains_key(&field) {
                    return field;
                }
                // A nested map the edit replaced whole is restored whole.
                (1..field.len())
                    .map(|n| &field[..n])
                    .find(|f| previous.contains_key(*f))
                    .map_or(field.clone(), <[String]>::to_vec)
            });
            faults.push((field, error));
        }
        // The fields the edit changed first: mending them may mend the
        // rest (a default value that was fine with the options restored).
        if faults
            .iter()
            .any(|(f, _)| f.as_ref().is_some_and(|f| previous.contains_key(f)))
        {
            faults.retain(|(f, _)| f.as_ref().is_none_or(|f| previous.contains_key(f)));
        }
        let mut fixed_this_round: Vec<FieldPath> = Vec::new();
        for (field, error) in faults {
            let Some(field) = field else {
                return drop(error);
            };
            if fixed_this_round.contains(&field) {
                continue;
            }
            let n = tries.entry(field.clone()).or_default();
            let original = get(value, &field);
            let Some(action) = fix(&mut target, (key, kind), &field, original, *n, previous) else {
                return drop(error);
            };
            *n += 1;
            done.retain(|(f, _, _)| *f != field);
            done.push((field.clone(), action, error.to_string()));
            fixed_this_round.push(field);
        }
        errors = check_component(key, &target, others);
        if errors.is_empty() {
            let changed = done.iter().map(|(f, _, _)| f.clone()).collect();
            let repairs = done
                .into_iter()
                .map(|(field, action, reason)| Repair {
                    component: Some(key.to_owned()),
                    field: field.join("."),
                    action,
                    reason,
                })
                .collect();
            return Outcome::Fixed {
                value: target,
                changed,
                repairs,
            };
        }
    }
    drop(&errors[0])
}

/// Checks meta entry `key` (value `value`, `None`: absent) and, if it is
/// invalid, decides its repair: the new value (`None`: remove it).
pub fn repair_meta(
    key: &str,
    value: &Value,
    previous: Option<&Option<Value>>,
) -> Option<(Option<Value>, Repair)> {
    let errors = check_meta_entry(key, value);
    let first = errors.first()?;
    let restore = previous
        .and_then(Option::as_ref)
        .filter(|old| *old != value && check_meta_entry(key, old).is_empty());
    let (new, action) = match restore {
        Some(old) => (Some(old.clone()), Action::Restored),
        None => (None, Action::Removed),
    };
    let repair = Repair {
        component: None,
        field: format!("meta.{key}"),
        action,
        reason: first.to_string(),
    };
    Some((new, repair))
}

/// Nested maps of a component, whose entries are repaired one by one.
const NESTED: [&str; 4] = ["properties", "validation", "position", "styling"];

/// The field a problem at `path` (a validator path under `prefix`) is
/// about, matched against the keys actually present so that keys holding
/// dots are found whole. `None`: the problem is the component's own (it
/// is no object, or its key is no id).
fn field_of(path: &str, prefix: &str, target: &Value) -> Option<FieldPath> {
    let rest = path.strip_prefix(prefix)?.strip_prefix('.')?;
    let comp = target.as_object()?;
    let (top, rest) = longest_key(comp, rest);
    let mut field = vec![top.to_owned()];
    if !NESTED.contains(&top) {
        return Some(field);
    }
    let Some(rest) = rest else {
        return Some(field);
    };
    // A nested map that is absent (or no map) has no keys to match: the
    // path's next segment names the field.
    let empty = JsonMap::new();
    let nested = comp.get(top).and_then(Value::as_object).unwrap_or(&empty);
    let (second, rest) = longest_key(nested, rest);
    field.push(second.to_owned());
    if top == "styling" && second == "customStyles" {
        if let Some((styles, rest)) = rest.and_then(|r| Some((nested.get(second)?.as_object()?, r)))
        {
            field.push(longest_key(styles, rest).0.to_owned());
        }
    }
    Some(field)
}

/// The longest key of `map` that `path` starts with, followed by the end,
/// `.` or `[`; else the path up to its first `.` or `[`. Returns the key
/// and what follows its `.`, if anything does.
fn longest_key<'p>(map: &JsonMap<String, Value>, path: &'p str) -> (&'p str, Option<&'p str>) {
    let fits = |k: &str| {
        path.strip_prefix(k)
            .is_some_and(|r| r.is_empty() || r.starts_with(['.', '[']))
    };
    let len = map
        .keys()
        .filter(|k| fits(k))
        .map(String::len)
        .max()
        .unwrap_or_else(|| path.find(['.', '[']).unwrap_or(path.len()));
    let (key, rest) = path.split_at(len);
    (key, rest.strip_prefix('.'))
}

/// Applies try number `n` of the repair of `field` (whose value the edit
/// left is `original`) to `target`, component `key` of type `kind`;
/// `None` when no try is left.
fn fix(
    target: &mut Value,
    (key, kind): (&str, ComponentType),
    field: &[String],
    original: Option<&Value>,
    n: usize,
    previous: &Previous,
) -> Option<Action> {
    match field {
        [f] if f == "type" => return None,
        [f] if f == "id" => {
            set(target, field, Some(Value::String(key.to_owned())));
            return (n == 0).then_some(Action::IdFixed);
        }
        [f] if f == "parent" => {
            set(target, field, Some(Value::Null));
            return (n == 0).then_some(Action::Reparented);
        }
        // Required: its previous value, else one that sorts it first.
        [f] if f == "index" => {
            let old = previous.get(field).cloned().flatten();
            let (value, action) = match old {
                Some(old) if n == 0 && Some(&old) != original => (old, Action::Restored),
                _ if n <= 1 => (Value::String("a0".into()), Action::Defaulted),
                _ => return None,
            };
            set(target, field, Some(value));
            return Some(action);
        }
        _ => {}
    }
    let mut tries: Vec<(Option<Value>, Action)> = Vec::new();
    if let Some(old) = previous.get(field) {
        let action = match old {
            Some(_) => Action::Restored,
            None => Action::Removed,
        };
        tries.push((old.clone(), action));
    }
    if let Some(default) = default_of(kind, field) {
        tries.push((Some(default), Action::Defaulted));
    }
    tries.push((None, Action::Removed));
    // A try that would leave the field as the edit left it changes nothing.
    tries.dedup_by(|a, b| a.0 == b.0);
    tries.retain(|(v, _)| v.as_ref() != original);
    let (value, action) = tries.into_iter().nth(n)?;
    set(target, field, value);
    Some(action)
}

/// The catalog's default of a property or validation rule; for a
/// required one without a default, what the designer gives a new
/// component: one option for a list of options, the type's name for text.
fn default_of(kind: ComponentType, field: &[String]) -> Option<Value> {
    let info = catalog().get(kind.as_str())?;
    let f = match field {
        [group, name] if group == "properties" => info.property(name)?,
        [group, name] if group == "validation" => info.rule(name)?,
        _ => return None,
    };
    if let Some(default) = &f.default {
        return Some(default.clone());
    }
    match f.kind {
        _ if !f.required => None,
        FieldKind::Options => Some(serde_json::json!([{"value": "option-1", "label": "Option 1"}])),
        FieldKind::Text => Some(Value::String(info.label.clone())),
        _ => None,
    }
}

fn get<'v>(target: &'v Value, field: &[String]) -> Option<&'v Value> {
    field.iter().try_fold(target, |v, k| v.as_object()?.get(k))
}

/// Sets (`Some`) or removes (`None`) `field` in `target`, creating the
/// nested objects on its way (a nested value that is no object is
/// replaced by one).
fn set(target: &mut Value, field: &[String], value: Option<Value>) {
    let Some((last, path)) = field.split_last() else {
        return;
    };
    let mut at = target;
    for k in path {
        let Value::Object(map) = at else { return };
        let slot = map
            .entry(k.clone())
            .or_insert_with(|| Value::Object(JsonMap::new()));
        if !slot.is_object() {
            *slot = Value::Object(JsonMap::new());
        }
        at = slot;
    }
    if let Value::Object(map) = at {
        match value {
            Some(v) => {
                map.insert(last.clone(), v);
            }
            None => {
                map.remove(last);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(components: Value) -> JsonMap<String, Value> {
        components.as_object().unwrap().clone()
    }

    fn text(id: &str) -> Value {
        json!({"id": id, "type": "text", "label": "Name", "index": "a0"})
    }

    fn fixed(outcome: Outcome) -> (Value, Vec<FieldPath>, Vec<Repair>) {
        match outcome {
            Outcome::Fixed {
                value,
                changed,
                repairs,
            } => (value, changed, repairs),
            other => panic!("expected a repair, got {other:?}"),
        }
    }

    fn path(p: &str) -> FieldPath {
        p.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn a_valid_component_needs_nothing() {
        let all = doc(json!({"c1": text("c1")}));
        let out = repair_component("c1", &all["c1"], &Previous::new(), &all);
        assert_eq!(out, Outcome::Valid);
    }

    #[test]
    fn an_unknown_type_drops_the_component() {
        let mut c = text("c1");
        c["type"] = json!("hologram");
        let all = doc(json!({ "c1": c }));
        match repair_component("c1", &all["c1"], &Previous::new(), &all) {
            Outcome::Drop(r) => {
                assert_eq!(r.action, Action::Dropped);
                assert!(r.reason.contains("unknown component type"), "{}", r.reason);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_mistyped_field_gets_its_previous_value_back() {
        let mut c = text("c1");
        c["properties"] = json!({"placeholder": 42});
        let all = doc(json!({ "c1": c }));
        let mut previous = Previous::new();
        previous.insert(path("properties.placeholder"), Some(json!("Your name")));
        let (value, changed, repairs) = fixed(repair_component("c1", &all["c1"], &previous, &all));
        assert_eq!(value["properties"]["placeholder"], json!("Your name"));
        assert_eq!(changed, vec![path("properties.placeholder")]);
        assert_eq!(repairs[0].action, Action::Restored);
        assert_eq!(repairs[0].field, "properties.placeholder");
    }

    #[test]
    fn a_field_the_edit_added_is_removed_and_unknown_keys_go() {
        let mut c = text("c1");
        c["properties"] = json!({"placeholder": 42, "a.b": 1});
        c["colour"] = json!("red");
        let all = doc(json!({ "c1": c }));
        let mut previous = Previous::new();
        previous.insert(path("properties.placeholder"), None);
        let (value, mut changed, _) = fixed(repair_component("c1", &all["c1"], &previous, &all));
        assert_eq!(value["properties"], json!({}));
        assert!(value.get("colour").is_none());
        changed.sort();
        let dotted = vec!["colour".to_owned()];
        let with_dot = vec!["properties".to_owned(), "a.b".to_owned()];
        assert_eq!(
            changed,
            vec![dotted, with_dot, path("properties.placeholder")]
        );
    }

    #[test]
    fn an_orphan_moves_to_the_top_level() {
        let mut c = text("c1");
        c["parent"] = json!("gone");
        let all = doc(json!({ "c1": c }));
        let (value, _, repairs) = fixed(repair_component("c1", &all["c1"], &Previous::new(), &all));
        assert_eq!(value["parent"], Value::Null);
        assert_eq!(repairs[0].action, Action::Reparented);
        assert!(
            repairs[0].reason.contains("orphan"),
            "{}",
            repairs[0].reason
        );
    }

    #[test]
    fn a_select_without_options_gets_the_default_options() {
        let c = json!({"id": "s", "type": "select", "index": "a0",
                       "properties": {"options": []}});
        let all = doc(json!({ "s": c }));
        let (value, _, repairs) = fixed(repair_component("s", &all["s"], &Previous::new(), &all));
        let options = value["properties"]["options"].as_array().unwrap();
        assert!(!options.is_empty());
        assert_eq!(repairs[0].action, Action::Defaulted);
    }

    #[test]
    fn a_radio_without_properties_gets_the_default_options() {
        let c = json!({"id": "how", "type": "radio", "index": "a0", "label": "Contact by"});
        let all = doc(json!({ "how": c }));
        let (value, changed, repairs) = fixed(repair_component(
            "how",
            &all["how"],
            &absent(&all["how"]),
            &all,
        ));
        assert_eq!(changed, vec![path("properties.options")]);
        assert_eq!(repairs[0].action, Action::Defaulted);
        assert_eq!(value["label"], json!("Contact by"));
        assert!(!value["properties"]["options"]
            .as_array()
            .unwrap()
            .is_empty());
    }

    /// Every field of `value` as absent before (a component just added),
    /// as the schema guard gives them: top-level and nested.
    fn absent(value: &Value) -> Previous {
        let mut out = Previous::new();
        for (k, v) in value.as_object().unwrap() {
            out.insert(vec![k.clone()], None);
            for k2 in v.as_object().into_iter().flat_map(|m| m.keys()) {
                out.insert(vec![k.clone(), k2.clone()], None);
            }
        }
        out
    }

    #[test]
    fn a_component_added_with_a_stray_property_loses_only_that_property() {
        let c = json!({"id": "r", "type": "radio", "index": "a0", "label": "Pick",
                       "properties": {"options": [{"value": "a", "label": "A"}], "placeholder": "x"},
                       "validation": {"required": true}});
        let all = doc(json!({ "r": c }));
        let (value, changed, _) = fixed(repair_component("r", &all["r"], &absent(&all["r"]), &all));
        assert_eq!(changed, vec![path("properties.placeholder")]);
        assert_eq!(
            value["properties"],
            json!({"options": [{"value": "a", "label": "A"}]})
        );
        assert_eq!(value["validation"], json!({"required": true}));
    }

    #[test]
    fn too_many_options_are_taken_back() {
        let many: Vec<Value> = (0..10_000)
            .map(|i| json!({"label": format!("o{i}"), "value": format!("o{i}")}))
            .collect();
        let c = json!({"id": "s", "type": "select", "index": "a0",
                       "properties": {"options": many}});
        let all = doc(json!({ "s": c }));
        let old = json!([{"label": "A", "value": "a"}]);
        let mut previous = Previous::new();
        previous.insert(path("properties.options"), Some(old.clone()));
        let (value, _, _) = fixed(repair_component("s", &all["s"], &previous, &all));
        assert_eq!(value["properties"]["options"], old);
    }

    #[test]
    fn a_wrong_id_is_set_to_the_key_and_a_bad_index_restored() {
        let c = json!({"id": "other", "type": "text", "index": 7});
        let all = doc(json!({ "c1": c }));
        let (value, _, _) = fixed(repair_component("c1", &all["c1"], &Previous::new(), &all));
        assert_eq!(value["id"], json!("c1"));
        assert_eq!(value["index"], json!("a0"));
    }

    #[test]
    fn an_inverted_range_loses_the_new_bound() {
        let mut c = text("c1");
        c["validation"] = json!({"minLength": 10, "maxLength": 2});
        let all = doc(json!({ "c1": c }));
        let mut previous = Previous::new();
        previous.insert(path("validation.maxLength"), Some(json!(20)));
        let (value, _, _) = fixed(repair_component("c1", &all["c1"], &previous, &all));
        assert_eq!(value["validation"]["maxLength"], json!(20));
    }

    #[test]
    fn a_bad_meta_entry_is_restored_or_removed() {
        let (new, r) = repair_meta("name", &json!(5), Some(&Some(json!("Form")))).unwrap();
        assert_eq!(new, Some(json!("Form")));
        assert_eq!(r.action, Action::Restored);
        let (new, r) = repair_meta("tags", &json!("x"), None).unwrap();
        assert_eq!(new, None);
        assert_eq!(r.action, Action::Removed);
        assert!(repair_meta("name", &json!("Fine"), None).is_none());
    }
}
