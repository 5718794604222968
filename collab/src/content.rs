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
use yrs::types::xml::{Xml, XmlFragment, XmlOut};
use yrs::{
    Any, Array, Doc, GetString, Map, MapPrelim, MapRef, Out, ReadTxn, Transact, TransactionMut,
};

use crate::nesting::{json_depth, MAX_NESTING};

pub use coform_model::{MAX_READ_DEPTH, ROOTS};

/// A scalar `Any` as JSON (a number JSON cannot hold becomes `null`).
fn scalar_to_json(any: &Any) -> Value {
    serde_json::to_value(any).unwrap_or(Value::Null)
}

/// `any` as JSON, at most `room` levels deep; sets `cut` if it had to
/// leave something out. Recursion is bounded by `room`.
fn any_to_json(any: &Any, room: usize, cut: &mut bool) -> Value {
    match any {
        Any::Array(_) | Any::Map(_) if room == 0 => {
            *cut = true;
            Value::Null
        }
        Any::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| any_to_json(v, room - 1, cut))
                .collect(),
        ),
        Any::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), any_to_json(v, room - 1, cut)))
                .collect(),
        ),
        scalar => scalar_to_json(scalar),
    }
}

/// A shared value as JSON, as `yrs`'s `to_json` renders it but at most
/// `room` levels deep (recursion bounded by `room`).
pub(crate) fn out_to_json<T: ReadTxn>(txn: &T, out: &Out, room: usize, cut: &mut bool) -> Value {
    match out {
        Out::Any(any) => any_to_json(any, room, cut),
        Out::YText(t) => Value::String(t.get_string(txn)),
        Out::YXmlText(t) => Value::String(t.get_string(txn)),
        Out::YDoc(d) => serde_json::json!({ "guid": d.guid().as_ref() }),
        _ if room == 0 => {
            *cut = true;
            Value::Null
        }
        Out::YMap(m) => Value::Object(
            m.iter(txn)
                .map(|(k, v)| (k.to_owned(), out_to_json(txn, &v, room - 1, cut)))
                .collect(),
        ),
        Out::YArray(a) => Value::Array(
            a.iter(txn)
                .map(|v| out_to_json(txn, &v, room - 1, cut))
                .collect(),
        ),
        Out::YXmlElement(e) => {
            let mut s = String::new();
            xml_string(txn, XmlOut::Element(e.clone()), room, cut, &mut s);
            Value::String(s)
        }
        Out::YXmlFragment(f) => {
            let mut s = String::new();
            xml_string(txn, XmlOut::Fragment(f.clone()), room, cut, &mut s);
            Value::String(s)
        }
        _ => Value::Null,
    }
}

/// XML as a string (as `yrs` renders it), at most `room` levels deep.
fn xml_string<T: ReadTxn>(txn: &T, node: XmlOut, room: usize, cut: &mut bool, out: &mut String) {
    match node {
        XmlOut::Text(t) => out.push_str(&t.get_string(txn)),
        _ if room == 0 => *cut = true,
        XmlOut::Fragment(f) => {
            for child in f.children(txn) {
                xml_string(txn, child, room - 1, cut, out);
            }
        }
        XmlOut::Element(e) => {
            let tag = e.tag().to_string();
            out.push('<');
            out.push_str(&tag);
            let mut attrs: Vec<(String, String)> = e
                .attributes(txn)
                .map(|(k, v)| (k.to_owned(), v.to_string(txn)))
                .collect();
            attrs.sort();
            for (k, v) in attrs {
                out.push_str(&format!(" {k}=\"{v}\""));
            }
            out.push('>');
            for child in e.children(txn) {
                xml_string(txn, child, room - 1, cut, out);
            }
            out.push_str(&format!("</{tag}>"));
        }
    }
}

/// The document's content as JSON, and whether anything was left out
/// for nesting deeper than [`MAX_READ_DEPTH`].
pub fn to_json_checked(doc: &Doc) -> (Value, bool) {
    let roots: Vec<(&str, MapRef)> = ROOTS
        .iter()
        .map(|r| (*r, doc.get_or_insert_map(*r)))
        .collect();
    let txn = doc.transact();
    let mut out = JsonMap::new();
    let mut cut = false;
    for (name, map) in roots {
        let value = out_to_json(&txn, &Out::YMap(map), MAX_READ_DEPTH, &mut cut);
        out.insert(name.to_owned(), value);
    }
    (Value::Object(out), cut)
}

/// The document's content as JSON. Content nested deeper than
/// [`MAX_READ_DEPTH`] (possible only in documents stored before the
/// nesting limit) renders as `null` and is logged.
pub fn to_json(doc: &Doc) -> Value {
    let (value, cut) = to_json_checked(doc);
    if cut {
        tracing::warn!(
            "document content nests deeper than {MAX_READ_DEPTH} levels; the excess is left out"
        );
    }
    value
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
    #[error("content nests deeper than {MAX_NESTING} levels")]
    TooDeep,
}

/// Checks a target before any change is made.
pub fn validate_target(target: &Value) -> Result<(), ContentError> {
    let obj = target.as_object().ok_or(ContentError::NotAnObject)?;
    // The root object is level 0: a root's children are at level 1.
    if json_depth(target) > MAX_NESTING + 1 {
        return Err(ContentError::TooDeep);
    }
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

pub(crate) fn sync_map(txn: &mut TransactionMut, map: &MapRef, want: &JsonMap<String, Value>) {
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
            (Some(cur), v) if json_eq(&out_to_json(txn, &cur, MAX_READ_DEPTH, &mut false), v) => {}
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

pub use coform_model::json_eq;

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
    fn validated_targets_apply_as_minimal_edits_and_invalid_ones_change_nothing() {
        let good = json!({"meta": {"name": "Signup"}, "components": {
            "s1": {"id": "s1", "type": "section", "label": "You", "index": "a0"},
            "age": {"id": "age", "type": "number", "label": "Age", "parent": "s1", "index": "a1",
                    "properties": {"min": 0, "max": 150}}}});
        // What the REST API does: validate with the model, then apply.
        let apply = |doc: &Doc, target: &Value| {
            coform_model::validate(target).map_err(|e| format!("{e:?}"))?;
            apply_json(doc, target).map_err(|e| e.to_string())
        };
        let doc = Doc::new();
        apply(&doc, &good).unwrap();
        assert!(json_eq(&to_json(&doc), &good));
        let mut bad = good.clone();
        bad["components"]["age"]["type"] = json!("nope");
        assert!(apply(&doc, &bad).is_err());
        assert!(json_eq(&to_json(&doc), &good), "nothing changed");
        let mut next = good.clone();
        next["components"]["age"]["label"] = json!("Your age");
        let update = apply(&doc, &next).unwrap();
        assert!(
            update.len() < 100,
            "minimal edit, got {} bytes",
            update.len()
        );
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
