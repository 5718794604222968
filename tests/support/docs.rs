//! Views of yrs documents: root maps and texts, canonical JSON, state
//! vectors.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Map, MapRef, ReadTxn, TextRef, Transact, Update};

/// Keys of root map `name` (empty if absent).
pub fn map_keys(doc: &Doc, name: &str) -> BTreeSet<String> {
    let map: MapRef = doc.get_or_insert_map(name);
    let txn = doc.transact();
    map.keys(&txn).map(|k| k.to_string()).collect()
}

/// Contents of root text `name`.
pub fn text_string(doc: &Doc, name: &str) -> String {
    let text: TextRef = doc.get_or_insert_text(name);
    let txn = doc.transact();
    text.get_string(&txn)
}

/// Root map `name` as canonical JSON (keys sorted).
pub fn map_json(doc: &Doc, name: &str) -> String {
    let map: MapRef = doc.get_or_insert_map(name);
    let txn = doc.transact();
    let any = map.to_json(&txn);
    let mut out = String::new();
    canonical_json(&any, &mut out);
    out
}

fn canonical_json(any: &yrs::Any, out: &mut String) {
    match any {
        yrs::Any::Map(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k.as_str()).unwrap());
                out.push(':');
                canonical_json(&m[k], out);
            }
            out.push('}');
        }
        yrs::Any::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        other => {
            // `Any::to_json` writes from the start of the buffer it is
            // given, so give it a fresh one.
            let mut scalar = String::new();
            other.to_json(&mut scalar);
            out.push_str(&scalar);
        }
    }
}

/// A fresh document holding exactly the given update.
pub fn doc_from_update(update: &[u8]) -> Doc {
    let doc = Doc::new();
    let update = Update::decode_v1(update).expect("decode update");
    doc.transact_mut()
        .apply_update(update)
        .expect("apply update");
    doc
}

/// The state vector every client converges to: for each client id, the
/// highest clock any of the documents has.
pub fn merged_state_vector(docs: &[&Doc]) -> HashMap<u64, u32> {
    let mut merged = HashMap::new();
    for doc in docs {
        let sv = doc.transact().state_vector();
        for (client, clock) in sv.iter() {
            let e = merged.entry(client.get()).or_insert(0);
            if *clock > *e {
                *e = *clock;
            }
        }
    }
    merged
}

/// Whether `doc` has seen everything described by `target`.
pub fn covers(doc: &Doc, target: &HashMap<u64, u32>) -> bool {
    let sv = doc.transact().state_vector();
    target
        .iter()
        .all(|(client, clock)| sv.get(&yrs::block::ClientID::new(*client)) >= *clock)
}

/// The integer stored under `key` in root map `map`, if any.
pub fn map_get_i64(doc: &Doc, map: &str, key: &str) -> Option<i64> {
    let m: MapRef = doc.get_or_insert_map(map);
    let txn = doc.transact();
    match m.get(&txn, key)? {
        yrs::Out::Any(yrs::Any::Number(yrs::Number::Int(n))) => Some(n),
        yrs::Out::Any(yrs::Any::Number(yrs::Number::Float(f))) => Some(f as i64),
        _ => None,
    }
}

/// The string stored under `key` in root map `map`, if any.
pub fn map_get_string(doc: &Doc, map: &str, key: &str) -> Option<String> {
    let m: MapRef = doc.get_or_insert_map(map);
    let txn = doc.transact();
    match m.get(&txn, key)? {
        yrs::Out::Any(yrs::Any::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// A template document as `{"meta": {...}, "components": {...}}`.
pub fn doc_json(doc: &Doc) -> Value {
    let roots: Vec<(&str, yrs::MapRef)> = ["meta", "components"]
        .into_iter()
        .map(|r| (r, doc.get_or_insert_map(r)))
        .collect();
    let txn = doc.transact();
    let mut out = serde_json::Map::new();
    for (name, map) in roots {
        let any = map.to_json(&txn);
        out.insert(
            name.to_owned(),
            serde_json::to_value(&any).expect("Any to JSON"),
        );
    }
    Value::Object(out)
}
