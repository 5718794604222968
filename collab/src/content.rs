//! A template document as JSON, and JSON applied back as a minimal edit.
//!
//! A template's Yjs document has two root maps, `meta` and `components`
//! (see the design notes). [`to_json`] renders them as
//! `{"meta": {...}, "components": {...}}`. [`apply_json`] takes such a
//! target and changes the document **only where it differs**, key by key:
//! nested maps are edited in place, changed values are set, missing keys
//! removed. People editing live keep every edit the target does not
//! touch, and see the change as an ordinary update.

use serde_json::{Map as JsonMap, Value};
use yrs::types::ToJson;
use yrs::{Any, Doc, Map, MapPrelim, MapRef, Out, ReadTxn, Transact, TransactionMut};

/// The root maps of a template document.
pub const ROOTS: [&str; 2] = ["meta", "components"];

fn any_to_json(any: &Any) -> Value {
    serde_json::to_value(any).unwrap_or(Value::Null)
}

fn out_to_json<T: ReadTxn>(txn: &T, out: &Out) -> Value {
    any_to_json(&out.to_json(txn))
}

/// The document's content as JSON.
pub fn to_json(doc: &Doc) -> Value {
    let roots: Vec<(&str, MapRef)> = ROOTS
        .iter()
        .map(|r| (*r, doc.get_or_insert_map(*r)))
        .collect();
    let txn = doc.transact();
    let mut out = JsonMap::new();
    for (name, map) in roots {
        out.insert(name.to_owned(), any_to_json(&map.to_json(&txn)));
    }
    Value::Object(out)
}

/// Why a JSON target was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContentError {
    #[error("content must be a JSON object")]
    NotAnObject,
    #[error("unknown root `{0}`: a template has only `meta` and `components`")]
    UnknownRoot(String),
    #[error("`{0}` must be a JSON object")]
    RootNotAnObject(String),
}

/// Checks a target before any change is made.
pub fn validate_target(target: &Value) -> Result<(), ContentError> {
    let obj = target.as_object().ok_or(ContentError::NotAnObject)?;
    for (key, value) in obj {
        if !ROOTS.contains(&key.as_str()) {
            return Err(ContentError::UnknownRoot(key.clone()));
        }
        if !value.is_object() {
            return Err(ContentError::RootNotAnObject(key.clone()));
        }
    }
    Ok(())
}

/// Makes the document's roots named in `target` equal to it, changing
/// only what differs, in one transaction. Roots absent from the target are
/// left alone. Returns the v1 update of the change (empty if none).
pub fn apply_json(doc: &Doc, target: &Value) -> Result<Vec<u8>, ContentError> {
    validate_target(target)?;
    let obj = target.as_object().ok_or(ContentError::NotAnObject)?;
    let roots: Vec<(MapRef, &JsonMap<String, Value>)> = obj
        .iter()
        .filter_map(|(k, v)| {
            v.as_object()
                .map(|o| (doc.get_or_insert_map(k.as_str()), o))
        })
        .collect();
    let mut txn = doc.transact_mut();
    for (map, want) in roots {
        sync_map(&mut txn, &map, want);
    }
    Ok(txn.encode_update_v1())
}

fn sync_map(txn: &mut TransactionMut, map: &MapRef, want: &JsonMap<String, Value>) {
    let stale: Vec<String> = map
        .keys(txn)
        .filter(|k| !want.contains_key(*k))
        .map(String::from)
        .collect();
    for key in stale {
        map.remove(txn, &key);
    }
    for (key, value) in want {
        let current = map.get(txn, key);
        match (current, value) {
            (Some(Out::YMap(sub)), Value::Object(o)) => sync_map(txn, &sub, o),
            (Some(cur), v) if json_eq(&out_to_json(txn, &cur), v) => {}
            (_, Value::Object(o)) => {
                let sub = map.insert(txn, key.as_str(), MapPrelim::default());
                sync_map(txn, &sub, o);
            }
            (_, v) => {
                map.insert(txn, key.as_str(), json_to_any(v));
            }
        }
    }
}

/// JSON equality where numbers compare by value (1 == 1.0).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A JSON value as a Yjs value. Numbers become floats, as in JavaScript,
/// so every client reads them as plain numbers.
pub fn json_to_any(v: &Value) -> Any {
    match v {
        Value::Null => Any::Null,
        Value::Bool(b) => Any::Bool(*b),
        Value::Number(n) => Any::from(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Any::from(s.as_str()),
        Value::Array(items) => Any::from(items.iter().map(json_to_any).collect::<Vec<_>>()),
        Value::Object(o) => Any::from(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_any(v)))
                .collect::<std::collections::HashMap<_, _>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use yrs::updates::decoder::Decode;
    use yrs::Update;

    #[test]
    fn applies_only_what_differs_and_keeps_concurrent_edits() {
        let server = Doc::new();
        let target = json!({
            "meta": {"name": "Signup", "tags": ["a", "b"]},
            "components": {"c1": {"id": "c1", "type": "text", "label": "Name",
                                  "properties": {"placeholder": "Your name"}}}
        });
        apply_json(&server, &target).unwrap();
        assert_eq!(to_json(&server), target);

        // A live client concurrently edits a field the target won't touch.
        let client = Doc::new();
        let state = server
            .transact()
            .encode_state_as_update_v1(&Default::default());
        client
            .transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        let comps = client.get_or_insert_map("components");
        let client_update = {
            let mut txn = client.transact_mut();
            let Some(Out::YMap(c1)) = comps.get(&txn, "c1") else {
                panic!()
            };
            let Some(Out::YMap(props)) = c1.get(&txn, "properties") else {
                panic!()
            };
            props.insert(&mut txn, "maxLength", 40.0);
            txn.encode_update_v1()
        };

        // The server applies a target that changes only the label.
        let mut target2 = target.clone();
        target2["components"]["c1"]["label"] = json!("Full name");
        let edit = apply_json(&server, &target2).unwrap();
        assert!(edit.len() < 80, "a minimal edit, got {} bytes", edit.len());
        server
            .transact_mut()
            .apply_update(Update::decode_v1(&client_update).unwrap())
            .unwrap();
        let got = to_json(&server);
        assert_eq!(got["components"]["c1"]["label"], "Full name");
        assert_eq!(got["components"]["c1"]["properties"]["maxLength"], 40.0);

        // Applying the same target twice changes nothing.
        let again = apply_json(
            &server,
            &json!({"meta": {"name": "Signup", "tags": ["a", "b"]}}),
        )
        .unwrap();
        assert!(Update::decode_v1(&again).unwrap().is_empty());
    }

    #[test]
    fn removes_keys_missing_from_the_target() {
        let doc = Doc::new();
        apply_json(
            &doc,
            &json!({"components": {"a": {"id": "a"}, "b": {"id": "b"}}}),
        )
        .unwrap();
        apply_json(&doc, &json!({"components": {"b": {"id": "b"}}})).unwrap();
        assert_eq!(to_json(&doc)["components"], json!({"b": {"id": "b"}}));
    }

    #[test]
    fn bad_targets_are_refused_before_any_change() {
        let doc = Doc::new();
        assert_eq!(
            apply_json(&doc, &json!([1])),
            Err(ContentError::NotAnObject)
        );
        assert_eq!(
            apply_json(&doc, &json!({"meta": {}, "evil": {}})),
            Err(ContentError::UnknownRoot("evil".into()))
        );
        assert_eq!(
            apply_json(&doc, &json!({"meta": 3})),
            Err(ContentError::RootNotAnObject("meta".into()))
        );
        assert_eq!(to_json(&doc), json!({"meta": {}, "components": {}}));
    }
}
