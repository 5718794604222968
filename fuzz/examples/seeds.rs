//! Writes the seed inputs of the fuzz targets, made with the real
//! encoders (yrs, the relay's framing, the server's token module, the
//! model's JSON), into `corpus/<target>/seed-*`:
//!
//! ```sh
//! cd fuzz && cargo run --example seeds
//! ```
//!
//! The fuzzer grows each corpus from these; `cargo fuzz cmin` keeps it
//! small before it is committed.

#[allow(dead_code)]
#[path = "../../src/auth/jwt.rs"]
mod jwt;

use std::path::Path;
use std::time::Duration;

use coform_collab::protocol::{encode_awareness, encode_step1, encode_step2, encode_update};
use serde_json::{json, Value};
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::updates::encoder::Encode;
use yrs::{Any, Doc, Map, MapPrelim, ReadTxn, StateVector, Text, Transact, WriteTxn};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

/// Updates a designer makes: a component added, a label typed, a move.
fn updates() -> (Vec<Vec<u8>>, Vec<u8>) {
    let doc = Doc::with_client_id(7);
    let mut out = Vec::new();
    let mut step = |f: &dyn Fn(&mut yrs::TransactionMut)| {
        let before = doc.transact().state_vector();
        let mut txn = doc.transact_mut();
        f(&mut txn);
        drop(txn);
        out.push(doc.transact().encode_state_as_update_v1(&before));
    };
    step(&|txn| {
        let meta = txn.get_or_insert_map("meta");
        meta.insert(txn, "name", "Signup");
        meta.insert(txn, "tags", Any::Array(vec![Any::from("hr")].into()));
    });
    step(&|txn| {
        let components = txn.get_or_insert_map("components");
        let c = components.insert(txn, "name", MapPrelim::default());
        c.insert(txn, "id", "name");
        c.insert(txn, "type", "text");
        c.insert(txn, "index", "a0");
        let props = c.insert(txn, "properties", MapPrelim::default());
        props.insert(txn, "placeholder", "Ada");
        let position = c.insert(txn, "position", MapPrelim::default());
        position.insert(txn, "x", 10.0);
        position.insert(txn, "w", 200.0);
    });
    step(&|txn| {
        let notes = txn.get_or_insert_text("notes");
        notes.insert(txn, 0, "Hello, wörld");
        notes.remove_range(txn, 5, 2);
    });
    step(&|txn| {
        let components = txn.get_or_insert_map("components");
        components.remove(txn, "name");
    });
    let state = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    (out, state)
}

fn awareness(entries: &[(u64, u32, &str)]) -> AwarenessUpdate {
    AwarenessUpdate {
        clients: entries
            .iter()
            .map(|&(id, clock, json)| {
                (
                    yrs::block::ClientID::new(id),
                    AwarenessUpdateEntry {
                        clock,
                        json: json.into(),
                    },
                )
            })
            .collect(),
    }
}

fn cursor(name: &str) -> String {
    json!({"user": {"name": name, "color": "#30bced"},
           "cursor": {"anchor": 12, "head": 15}, "selected": ["name"]})
    .to_string()
}

fn frames() {
    let (updates, state) = updates();
    for (i, u) in updates.iter().enumerate() {
        write("frame", &format!("update-{i}"), &encode_update(u));
    }
    write("frame", "step2-state", &encode_step2(&state));
    write("frame", "step2-empty", &encode_step2(&[0, 0]));
    let mut sv = StateVector::default();
    sv.set_max(yrs::block::ClientID::new(7), 12);
    sv.set_max(yrs::block::ClientID::new(1 << 40), 3);
    write("frame", "step1", &encode_step1(&sv));
    write(
        "frame",
        "step1-empty",
        &encode_step1(&StateVector::default()),
    );
    let a = awareness(&[(7, 1, &cursor("Ada")), (9, 4, "null")]);
    write("frame", "awareness", &encode_awareness(&a));
    write("frame", "query-awareness", &[3]);
    write(
        "frame",
        "auth",
        &[2, 0, 6, b'd', b'e', b'n', b'i', b'e', b'd'],
    );
    write("frame", "unknown-type", &[100, 3, 1, 2, 3]);
    // Several messages in one frame, as a client sends on connect.
    let mut many = encode_step1(&sv).to_vec();
    many.extend_from_slice(&encode_awareness(&a));
    many.extend_from_slice(&encode_update(&updates[1]));
    many.push(3);
    write("frame", "many", &many);
}

/// One event of the awareness target: kind, who, then a length-prefixed
/// payload for kinds 0 (a local frame) and 2 (a remote update).
fn event(out: &mut Vec<u8>, kind: u8, who: u8, payload: Option<&[u8]>) {
    out.extend_from_slice(&[kind, who]);
    if let Some(p) = payload {
        out.extend_from_slice(&(p.len() as u16).to_le_bytes());
        out.extend_from_slice(p);
    }
}

fn presence() {
    let ada = encode_awareness(&awareness(&[(7, 1, &cursor("Ada"))]));
    let ada2 = encode_awareness(&awareness(&[(7, 2, &cursor("Ada"))]));
    let bob = encode_awareness(&awareness(&[(8, 1, &cursor("Bob")), (9, 1, "{}")]));
    let gone = encode_awareness(&awareness(&[(7, 3, "null")]));
    let echo = encode_awareness(&awareness(&[
        (7, 2, &cursor("Ada")),
        (8, 1, &cursor("Bob")),
    ]));
    let remote = awareness(&[(20, 1, &cursor("Cy")), (21, 5, "null")]).encode_v1();
    for signed_in in [0u8, 1] {
        let mut s = vec![signed_in];
        event(&mut s, 0, 1, Some(&ada));
        event(&mut s, 0, 2, Some(&bob));
        event(&mut s, 0, 1, Some(&ada2));
        event(&mut s, 0, 2, Some(&echo));
        event(&mut s, 2, 0, Some(&remote));
        event(&mut s, 1, 1, None);
        // Ada returns on a new connection with her old clock.
        event(&mut s, 0, 3, Some(&ada));
        event(&mut s, 0, 3, Some(&gone));
        event(&mut s, 3, 0, None);
        write("awareness", &format!("session-{signed_in}"), &s);
    }
}

fn content() -> Value {
    json!({
        "meta": {"name": "Club signup", "description": "Members only", "tags": ["club", "hr"],
                 "category": "forms", "brand": {"accent": "#336699", "logo": null}},
        "components": {
            "about": {"id": "about", "type": "section", "label": "About you", "parent": null,
                      "index": "a0", "properties": {"collapsible": false}},
            "name": {"id": "name", "type": "text", "label": "Full name", "parent": "about",
                     "index": "a0", "properties": {"placeholder": "Ada Lovelace", "name": "full_name"},
                     "validation": {"required": true, "minLength": 1, "maxLength": 120,
                                    "pattern": "^\\S.*$", "message": "Tell us your name"},
                     "position": {"x": 4, "y": 8, "w": 320, "h": 36},
                     "styling": {"theme": "dark", "customStyles": {"color": "red"}}},
            "age": {"id": "age", "type": "number", "label": "Age", "parent": "about", "index": "a1",
                    "properties": {"min": 0, "max": 130, "step": 1},
                    "validation": {"min": 16, "max": 99}},
            "email": {"id": "email", "type": "email", "label": "E-mail", "index": "a1",
                      "properties": {"defaultSource": {"dataSourceId": "ds_me", "path": "user.email"}}},
            "phone": {"id": "phone", "type": "phone", "label": "Phone", "index": "a2"},
            "notes": {"id": "notes", "type": "textarea", "label": "Notes", "index": "a3",
                      "properties": {"rows": 5}},
            "start": {"id": "start", "type": "date", "label": "Start", "index": "a4",
                      "properties": {"min": "2026-01-01"}},
            "plan": {"id": "plan", "type": "select", "label": "Plan", "index": "a5",
                     "properties": {"options": [{"value": "free", "label": "Free"},
                                                {"value": "pro", "label": "Pro"}],
                                    "defaultValue": "free",
                                    "optionsSource": {"dataSourceId": "ds_plans", "path": "items",
                                                      "valueKey": "id", "labelKey": "title",
                                                      "params": {"region": "eu"}}}},
            "size": {"id": "size", "type": "radio", "label": "Size", "index": "a6",
                     "properties": {"options": [{"value": "m", "label": "M"}], "defaultValue": "m"}},
            "ok": {"id": "ok", "type": "checkbox", "label": "I agree", "index": "a7",
                   "validation": {"required": true, "rules": ["mustAgree"]}},
            "cv": {"id": "cv", "type": "file", "label": "CV", "index": "a8",
                   "properties": {"accept": ".pdf,image/*", "maxSize": 2000000}},
            "title": {"id": "title", "type": "heading", "label": "", "index": "a9",
                      "properties": {"text": "Welcome", "level": 1}},
            "intro": {"id": "intro", "type": "paragraph", "label": "", "index": "b0",
                      "properties": {"text": "Two minutes,\nno more."}},
            "send": {"id": "send", "type": "button", "label": "Send", "index": "b1",
                     "properties": {"action": "submit"}}
        }
    })
}

fn file(content: Value) -> Value {
    json!({"format": "coform-template", "version": 1,
           "template": {"name": "Club signup", "description": "Members only", "tags": ["club"]},
           "content": content})
}

fn templates() {
    let full = content();
    assert_eq!(
        coform_model::validate(&full),
        Ok(()),
        "the seed is a valid template"
    );
    let pretty = serde_json::to_string_pretty(&file(full.clone())).unwrap();
    write("template_import", "full", pretty.as_bytes());
    let compact = file(json!({"components": {"q": {"id": "q", "type": "text", "index": "a0"}}}));
    write("template_import", "small", compact.to_string().as_bytes());
    write(
        "template_import",
        "content-only",
        full.to_string().as_bytes(),
    );
    let mut broken = full;
    broken["components"]["age"]["validation"]["min"] = json!("sixteen");
    broken["components"]["name"]["parent"] = json!("nowhere");
    let mut bad = file(broken);
    bad["version"] = json!(2);
    bad["template"]["name"] = json!(" ");
    write("template_import", "errors", bad.to_string().as_bytes());
    write(
        "template_import",
        "duplicate-key",
        br#"{"format": "coform-template", "version": 1, "template": {"name": "D"},
            "content": {"components": {"a": {"id": "a", "type": "text", "index": "a0"},
                                       "a": {"id": "a", "type": "email", "index": "a1"}}}}"#,
    );
}

fn tokens() {
    // Well-formed tokens of another server (another key): the target's
    // own key must refuse them.
    let other = jwt::Keys::new(b"another server's secret, 32 byte");
    let year = Duration::from_secs(365 * 24 * 3600);
    let access = other.issue_access("u1", "s1", year).unwrap();
    let doc = other.issue_doc("u1", "s1", "t1", "editor", year).unwrap();
    write("tokens", "text-access", format!("\0{access}").as_bytes());
    write("tokens", "text-doc", format!("\0{doc}").as_bytes());
    write(
        "tokens",
        "text-refresh",
        b"\0Vq3Y9lZ0o8sQmI1v2b7rX4kTn5pWcE6aHjGdFuLxK0s",
    );
    write(
        "tokens",
        "issued",
        b"\x01\x40\x08user-1\x01session-1\x01tpl-1\x01viewer",
    );
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let access =
        r#"{"sub":"u1","sid":"s1","iss":"coform","aud":"coform-api","iat":1,"exp":4102444800}"#;
    let doc = r#"{"sub":"u1","sid":"s1","tpl":"t1","role":"editor","iss":"coform","aud":"coform-collab","iat":1,"exp":4102444800}"#;
    let expired = r#"{"sub":"u1","sid":"s1","iss":"coform","aud":"coform-api","iat":1,"exp":2}"#;
    for (name, payload) in [("access", access), ("doc", doc), ("expired", expired)] {
        write(
            "tokens",
            &format!("signed-{name}"),
            format!("\x02\x00{header}\x01{payload}").as_bytes(),
        );
    }
}

fn main() {
    frames();
    presence();
    templates();
    tokens();
}
