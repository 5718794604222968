//! The schema guard: every live edit leaves the form valid.
//!
//! Any client that speaks y-websocket can write anything into a template
//! document: an unknown component type, a string where a number belongs,
//! a parent that does not exist, ten thousand options. The room checks
//! each applied update against the form model, **only the components it
//! touched**, and when the result is invalid answers at once with an edit
//! of its own that repairs it ([`coform_model::repair`] decides what). The
//! repair is stored and broadcast with the update that caused it, to every
//! peer including the sender, so every client converges on a valid form.
//!
//! How it knows what an update touched and what was there before: a
//! [`Guard`] observes the document's two root maps. Each transaction's
//! events name the components and meta entries it changed, with the value
//! each changed entry had before — the value a repair restores.
//!
//! What counts as touched, beyond the components an event names:
//!
//! - the children of a component that was removed or changed its type
//!   (they may now be orphans, or sit in something that is no section);
//! - every component below a section that was added or moved (it may now
//!   nest too deeply);
//! - all components added by the update, when the form now holds more than
//!   [`coform_model::MAX_COMPONENTS`]: the newest of them are dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use yrs::types::{EntryChange, Event, PathSegment};
use yrs::{
    Any, DeepObservable, Doc, Map, MapPrelim, MapRef, Out, ReadTxn, Transact, TransactionMut,
};

use coform_model::repair::{self, Action, FieldPath, Outcome, Previous, Repair};
use coform_model::{ComponentType, Components, MAX_COMPONENTS, MAX_READ_DEPTH};

use crate::content::{json_to_any, out_to_json, sync_map};

/// What the transactions since the last [`Guard::take`] changed.
#[derive(Debug, Default)]
pub struct Touched {
    /// Components changed, with the previous values of their changed
    /// fields (as far as the events told them).
    components: HashMap<String, Previous>,
    /// Components added (or replaced whole): every field was absent.
    added: HashSet<String>,
    /// Components removed, or whose type changed: their children are
    /// checked again.
    unparented: HashSet<String>,
    /// Sections added or moved: everything below them is checked again.
    moved_sections: HashSet<String>,
    /// Meta entries changed, with their previous value when known
    /// (`Some(None)`: the entry was absent).
    meta: HashMap<String, Option<Option<Value>>>,
}

impl Touched {
    /// Nothing was touched.
    pub fn is_empty(&self) -> bool {
        self.components.is_empty() && self.unparented.is_empty() && self.meta.is_empty()
    }
}

/// Watches a document's roots and records what each transaction touched.
/// One per document in memory; it lives as long as the document.
#[derive(Clone)]
pub struct Guard {
    log: Arc<Mutex<Touched>>,
}

/// The key under which the guard observes.
const OBSERVER: &str = "coform-schema-guard";

impl Guard {
    /// Starts watching `doc`.
    pub fn watch(doc: &Doc) -> Guard {
        let log = Arc::new(Mutex::new(Touched::default()));
        let components = doc.get_or_insert_map("components");
        let meta = doc.get_or_insert_map("meta");
        let l = log.clone();
        components.observe_deep(OBSERVER, move |txn, events| {
            let mut log = l.lock();
            for event in events.iter() {
                record_component_event(&mut log, txn, event);
            }
        });
        let l = log.clone();
        meta.observe_deep(OBSERVER, move |txn, events| {
            let mut log = l.lock();
            for event in events.iter() {
                record_meta_event(&mut log, txn, event);
            }
        });
        Guard { log }
    }

    /// Starts watching `doc` if `on`.
    pub fn watch_if(on: bool, doc: &Doc) -> Option<Guard> {
        on.then(|| Guard::watch(doc))
    }

    /// What was touched since the last call (and forgets it).
    pub fn take(&self) -> Touched {
        std::mem::take(&mut *self.log.lock())
    }

    /// Checks what was touched since the last call and repairs what is
    /// invalid (see [`check`]); the repair itself is not recorded.
    pub fn check(&self, doc: &Doc) -> Option<Repaired> {
        let repaired = check(doc, self.take());
        if repaired.is_some() {
            self.take();
        }
        repaired
    }
}

/// An entry's old value as JSON, if it was a plain value.
fn old_json(out: &Out) -> Option<Value> {
    match out {
        Out::Any(any) => Some(any_json(any)),
        _ => None,
    }
}

fn any_json(any: &Any) -> Value {
    serde_json::to_value(any).unwrap_or(Value::Null)
}

fn key_of(segment: &PathSegment) -> Option<String> {
    match segment {
        PathSegment::Key(k) => Some(k.to_string()),
        PathSegment::Index(_) => None,
    }
}

fn record_component_event(log: &mut Touched, txn: &TransactionMut, event: &Event) {
    let path = event.path();
    let Some(first) = path.front() else {
        // The `components` map itself: components added, replaced, removed.
        if let Event::Map(e) = event {
            for (key, change) in e.keys(txn) {
                let key = key.to_string();
                match change {
                    EntryChange::Inserted(_) | EntryChange::Updated(..) => {
                        log.components.entry(key.clone()).or_default();
                        log.added.insert(key.clone());
                        // A section replaced whole may be another type now.
                        log.unparented.insert(key);
                    }
                    EntryChange::Removed(_) => {
                        log.unparented.insert(key);
                    }
                }
            }
        }
        return;
    };
    let Some(component) = key_of(first) else {
        return;
    };
    let previous = log.components.entry(component.clone()).or_default();
    let Event::Map(e) = event else {
        return;
    };
    // A field path only through map keys (an index means a value inside
    // an array: the field is recorded as touched, its old value unknown).
    let Some(prefix) = path
        .iter()
        .skip(1)
        .map(key_of)
        .collect::<Option<Vec<String>>>()
    else {
        return;
    };
    let mut type_changed = false;
    let mut parent_changed = false;
    for (key, change) in e.keys(txn) {
        let mut field: FieldPath = prefix.clone();
        field.push(key.to_string());
        let old = match change {
            EntryChange::Inserted(_) => Some(None),
            EntryChange::Updated(old, _) | EntryChange::Removed(old) => old_json(old).map(Some),
        };
        if let Some(old) = old {
            previous.entry(field.clone()).or_insert(old);
        }
        if prefix.is_empty() {
            type_changed |= &**key == "type";
            parent_changed |= &**key == "parent";
        }
    }
    if type_changed {
        log.unparented.insert(component.clone());
    }
    if type_changed || parent_changed {
        log.moved_sections.insert(component);
    }
}

fn record_meta_event(log: &mut Touched, txn: &TransactionMut, event: &Event) {
    let path = event.path();
    if let Some(first) = path.front() {
        // Inside an entry that is a shared type: touched, old unknown.
        if let Some(key) = key_of(first) {
            log.meta.entry(key).or_insert(None);
        }
        return;
    }
    let Event::Map(e) = event else {
        return;
    };
    for (key, change) in e.keys(txn) {
        let old = match change {
            EntryChange::Inserted(_) => Some(None),
            EntryChange::Updated(old, _) => old_json(old).map(Some),
            // A removed entry is never a problem.
            EntryChange::Removed(_) => continue,
        };
        log.meta.entry(key.to_string()).or_insert(old);
    }
}

/// The repairs one check made: the server's update and what it did.
#[derive(Debug)]
pub struct Repaired {
    /// The repair as a v1 update, already applied to the document.
    pub update: Vec<u8>,
    pub repairs: Vec<Repair>,
}

/// The other components of a live document, as the checks see them:
/// the document, with the repairs decided so far laid over it (`None`: the
/// component is dropped), so that one repair is never made twice (a loop of
/// sections is broken once, not at every member).
struct Live<'a, T: ReadTxn> {
    txn: &'a T,
    components: &'a MapRef,
    decided: HashMap<String, Option<Value>>,
}

fn field_str(out: &Out, txn: &impl ReadTxn, key: &str) -> Option<Option<String>> {
    let value = match out {
        Out::YMap(m) => m.get(txn, key),
        Out::Any(Any::Map(m)) => m.get(key).cloned().map(Out::Any),
        _ => return None,
    };
    Some(match value {
        Some(Out::Any(Any::String(s))) => Some(s.to_string()),
        _ => None,
    })
}

impl<T: ReadTxn> Components for Live<'_, T> {
    fn kind(&self, id: &str) -> Option<Option<ComponentType>> {
        if let Some(decided) = self.decided.get(id) {
            let c = decided.as_ref()?;
            return Some(
                c.get("type")
                    .and_then(Value::as_str)
                    .and_then(ComponentType::parse),
            );
        }
        let c = self.components.get(self.txn, id)?;
        Some(
            field_str(&c, self.txn, "type")
                .flatten()
                .and_then(|t| ComponentType::parse(&t)),
        )
    }

    fn parent(&self, id: &str) -> Option<String> {
        if let Some(decided) = self.decided.get(id) {
            let parent = decided.as_ref()?.get("parent")?.as_str()?;
            return Some(parent.to_owned());
        }
        let c = self.components.get(self.txn, id)?;
        field_str(&c, self.txn, "parent").flatten()
    }
}

/// What to write to repair one component.
enum Plan {
    Drop(String),
    Fields(String, Value, Vec<FieldPath>),
}

/// Checks what `touched` names against the form model and, if anything is
/// invalid, repairs it in one transaction on `doc`. `None`: all valid.
pub fn check(doc: &Doc, touched: Touched) -> Option<Repaired> {
    if touched.is_empty() {
        return None;
    }
    let components = doc.get_or_insert_map("components");
    let meta = doc.get_or_insert_map("meta");
    let mut plans: Vec<Plan> = Vec::new();
    let mut meta_plans: Vec<(String, Option<Value>)> = Vec::new();
    let mut repairs: Vec<Repair> = Vec::new();
    {
        let txn = doc.transact();
        let mut live = Live {
            txn: &txn,
            components: &components,
            decided: HashMap::new(),
        };
        let mut keys: Vec<String> = touched.components.keys().cloned().collect();
        let mut dropped: HashSet<String> = HashSet::new();
        // Too many components: the newest additions go.
        let count = components.len(&txn) as usize;
        if count > MAX_COMPONENTS && !touched.added.is_empty() {
            let mut added: Vec<&String> = touched
                .added
                .iter()
                .filter(|k| components.contains_key(&txn, k))
                .collect();
            added.sort();
            for key in added.into_iter().take(count - MAX_COMPONENTS) {
                dropped.insert(key.clone());
                live.decided.insert(key.clone(), None);
                repairs.push(Repair {
                    component: Some(key.clone()),
                    field: String::new(),
                    action: Action::Dropped,
                    reason: format!("a form has at most {MAX_COMPONENTS} components"),
                });
                plans.push(Plan::Drop(key.clone()));
            }
        }
        // The components the update named first, then those it may have
        // affected, each once.
        keys.sort();
        if !touched.unparented.is_empty() || !touched.moved_sections.is_empty() {
            keys.extend(affected(&txn, &components, &touched));
        }
        let mut seen = HashSet::new();
        keys.retain(|k| seen.insert(k.clone()));
        let none = Previous::new();
        for key in keys {
            if dropped.contains(&key) {
                continue;
            }
            let Some(out) = components.get(&txn, &key) else {
                continue;
            };
            let value = out_to_json(&txn, &out, MAX_READ_DEPTH, &mut false);
            // A component the edit added had every field absent before.
            let added;
            let previous = if touched.added.contains(&key) {
                added = absent_fields(&value);
                &added
            } else {
                touched.components.get(&key).unwrap_or(&none)
            };
            match repair::repair_component(&key, &value, previous, &live) {
                Outcome::Valid => {}
                Outcome::Drop(r) => {
                    repairs.push(r);
                    live.decided.insert(key.clone(), None);
                    plans.push(Plan::Drop(key));
                }
                Outcome::Fixed {
                    value,
                    changed,
                    repairs: rs,
                } => {
                    repairs.extend(rs);
                    live.decided.insert(key.clone(), Some(value.clone()));
                    plans.push(Plan::Fields(key, value, changed));
                }
            }
        }
        let mut meta_keys: Vec<(&String, &Option<Option<Value>>)> = touched.meta.iter().collect();
        meta_keys.sort_by(|a, b| a.0.cmp(b.0));
        for (key, previous) in meta_keys {
            let Some(out) = meta.get(&txn, key) else {
                continue;
            };
            let value = out_to_json(&txn, &out, MAX_READ_DEPTH, &mut false);
            if let Some((new, r)) = repair::repair_meta(key, &value, previous.as_ref()) {
                repairs.push(r);
                meta_plans.push((key.clone(), new));
            }
        }
    }
    if repairs.is_empty() {
        return None;
    }
    let mut txn = doc.transact_mut();
    for plan in plans {
        match plan {
            Plan::Drop(key) => {
                components.remove(&mut txn, &key);
            }
            Plan::Fields(key, value, changed) => {
                write_fields(&mut txn, &components, &key, &value, &changed)
            }
        }
    }
    for (key, new) in meta_plans {
        match new {
            Some(v) => insert_json(&mut txn, &meta, &key, &v),
            None => {
                meta.remove(&mut txn, &key);
            }
        }
    }
    Some(Repaired {
        update: txn.encode_update_v1(),
        repairs,
    })
}

/// Every field of a component value, as absent: the "before" of a
/// component the edit added.
fn absent_fields(value: &Value) -> Previous {
    let mut out = Previous::new();
    let Some(comp) = value.as_object() else {
        return out;
    };
    for (k, v) in comp {
        out.insert(vec![k.clone()], None);
        for (k2, v2) in v.as_object().into_iter().flatten() {
            out.insert(vec![k.clone(), k2.clone()], None);
            for k3 in v2.as_object().into_iter().flat_map(|m| m.keys()) {
                out.insert(vec![k.clone(), k2.clone(), k3.clone()], None);
            }
        }
    }
    out
}

/// Components whose validity may have changed without being touched:
/// children of removed (or retyped) components and everything below an
/// added or moved section.
fn affected(txn: &impl ReadTxn, components: &MapRef, touched: &Touched) -> Vec<String> {
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    for (key, out) in components.iter(txn) {
        if let Some(Some(parent)) = field_str(&out, txn, "parent") {
            children.entry(parent).or_default().push(key.to_owned());
        }
    }
    let mut out = Vec::new();
    let mut queue: VecDeque<(&str, usize)> = VecDeque::new();
    for k in touched.unparented.iter().chain(&touched.moved_sections) {
        queue.push_back((k, 0));
    }
    let mut seen: HashSet<&str> = HashSet::new();
    while let Some((k, depth)) = queue.pop_front() {
        if !seen.insert(k) || depth > coform_model::MAX_DEPTH + 1 {
            continue;
        }
        for child in children.get(k).into_iter().flatten() {
            out.push(child.clone());
            queue.push_back((child, depth + 1));
        }
    }
    out
}

/// Writes the `changed` fields of component `key` from `value` (a field
/// absent from `value` is removed). Nested maps that are Y.Maps are edited
/// in place; one that is a plain value is rewritten whole.
fn write_fields(
    txn: &mut TransactionMut,
    components: &MapRef,
    key: &str,
    value: &Value,
    changed: &[FieldPath],
) {
    let comp = match components.get(txn, key) {
        Some(Out::YMap(m)) => m,
        // Not a Y.Map (a plain object written by some client): the
        // repaired component replaces it whole, as a Y.Map.
        _ => {
            insert_json(txn, components, key, value);
            return;
        }
    };
    for field in changed {
        let mut at = comp.clone();
        let mut path: Vec<&str> = Vec::new();
        for (i, k) in field.iter().enumerate() {
            path.push(k);
            let last = i + 1 == field.len();
            let want = lookup(value, &path);
            if last {
                match want {
                    Some(v) => insert_json(txn, &at, k, v),
                    None => {
                        at.remove(txn, k);
                    }
                }
                break;
            }
            match at.get(txn, k) {
                Some(Out::YMap(m)) => at = m,
                _ => {
                    // The container is absent or a plain value: write it
                    // whole from the repaired value.
                    match want {
                        Some(v) => insert_json(txn, &at, k, v),
                        None => {
                            at.remove(txn, k);
                        }
                    }
                    break;
                }
            }
        }
    }
}

fn lookup<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, k| v.as_object()?.get(*k))
}

/// Sets `map[key]` to `value`: an object as a Y.Map, anything else as a
/// plain value.
fn insert_json(txn: &mut TransactionMut, map: &MapRef, key: &str, value: &Value) {
    match value {
        Value::Object(o) => {
            let sub = map.insert(txn, key, MapPrelim::default());
            sync_map(txn, &sub, o);
        }
        v => {
            map.insert(txn, key, json_to_any(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{apply_json, to_json};
    use serde_json::json;
    use yrs::updates::decoder::Decode;
    use yrs::{ArrayPrelim, Update};

    /// The server's document with its guard, and a form to start from.
    fn server() -> (Doc, Guard) {
        let doc = Doc::new();
        let guard = Guard::watch(&doc);
        let form = json!({"meta": {"name": "Form"}, "components": {
            "s": {"id": "s", "type": "section", "label": "Section", "index": "a0"},
            "name": {"id": "name", "type": "text", "label": "Name", "index": "a1",
                     "properties": {"placeholder": "Your name"}},
            "pick": {"id": "pick", "type": "select", "label": "Pick", "index": "a2",
                     "properties": {"options": [{"label": "A", "value": "a"}]}}
        }});
        apply_json(&doc, &form).unwrap();
        guard.take();
        (doc, guard)
    }

    /// A client with the server's state.
    fn client(server: &Doc) -> Doc {
        let doc = Doc::new();
        let state = server
            .transact()
            .encode_state_as_update_v1(&Default::default());
        doc.transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        doc
    }

    /// What `edit` does to `client`'s components, as an update not yet sent.
    fn local(client: &Doc, edit: impl FnOnce(&mut TransactionMut, &MapRef)) -> Vec<u8> {
        let components = client.get_or_insert_map("components");
        let mut txn = client.transact_mut();
        edit(&mut txn, &components);
        txn.encode_update_v1()
    }

    /// Sends what `client` did in `edit` to `server`, checks it, and
    /// sends the repair back; returns the repairs.
    fn edit(
        server: &Doc,
        guard: &Guard,
        client: &Doc,
        edit: impl FnOnce(&mut TransactionMut, &MapRef),
    ) -> Vec<Repair> {
        let update = local(client, edit);
        server
            .transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        let repaired = guard.check(server);
        let Some(repaired) = repaired else {
            return Vec::new();
        };
        client
            .transact_mut()
            .apply_update(Update::decode_v1(&repaired.update).unwrap())
            .unwrap();
        repaired.repairs
    }

    fn assert_valid_and_equal(server: &Doc, client: &Doc) {
        let content = to_json(server);
        assert!(
            coform_model::validate(&content).is_ok(),
            "{:?}",
            coform_model::validate(&content)
        );
        assert_eq!(content, to_json(client));
    }

    fn comp(txn: &TransactionMut, components: &MapRef, id: &str) -> MapRef {
        match components.get(txn, id) {
            Some(Out::YMap(m)) => m,
            other => panic!("{id}: {other:?}"),
        }
    }

    fn nested(txn: &TransactionMut, components: &MapRef, id: &str, key: &str) -> MapRef {
        match comp(txn, components, id).get(txn, key) {
            Some(Out::YMap(m)) => m,
            other => panic!("{id}.{key}: {other:?}"),
        }
    }

    #[test]
    fn a_valid_edit_needs_no_repair() {
        let (server, guard) = server();
        let c = client(&server);
        let repairs = edit(&server, &guard, &c, |txn, comps| {
            comp(txn, comps, "name").insert(txn, "label", "Full name");
        });
        assert!(repairs.is_empty(), "{repairs:?}");
        assert_eq!(
            to_json(&server)["components"]["name"]["label"],
            json!("Full name")
        );
    }

    #[test]
    fn an_unknown_component_type_is_dropped() {
        let (server, guard) = server();
        let c = client(&server);
        let repairs = edit(&server, &guard, &c, |txn, comps| {
            comps.insert(
                txn,
                "x",
                MapPrelim::from([
                    ("id".to_owned(), Any::from("x")),
                    ("type".to_owned(), Any::from("hologram")),
                    ("index".to_owned(), Any::from("a9")),
                ]),
            );
        });
        assert_eq!(repairs.len(), 1);
        assert_eq!(repairs[0].action, Action::Dropped);
        assert!(to_json(&server)["components"].get("x").is_none());
        assert_valid_and_equal(&server, &c);
    }

    #[test]
    fn a_mistyped_field_gets_its_previous_value_back() {
        let (server, guard) = server();
        let c = client(&server);
        let repairs = edit(&server, &guard, &c, |txn, comps| {
            nested(txn, comps, "name", "properties").insert(txn, "placeholder", 42.0);
        });
        assert_eq!(repairs[0].action, Action::Restored);
        assert_eq!(repairs[0].field, "properties.placeholder");
        assert_eq!(
            to_json(&server)["components"]["name"]["properties"]["placeholder"],
            json!("Your name")
        );
        assert_valid_and_equal(&server, &c);
    }

    #[test]
    fn an_orphan_moves_to_the_top_level() {
        let (server, guard) = server();
        let c = client(&server);
        let repairs = edit(&server, &guard, &c, |txn, comps| {
            comp(txn, comps, "name").insert(txn, "parent", "nowhere");
        });
        assert_eq!(repairs[0].action, Action::Reparented);
        assert_eq!(
            to_json(&server)["components"]["name"]["parent"],
            Value::Null
        );
        assert_valid_and_equal(&server, &c);
    }

    #[test]
    fn ten_thousand_options_are_taken_back() {
        let (server, guard) = server();
        let c = client(&server);
        let many: Vec<Any> = (0..10_000)
            .map(|i| {
                Any::from(HashMap::from([
                    ("label".to_owned(), Any::from(format!("o{i}"))),
                    ("value".to_owned(), Any::from(format!("o{i}"))),
                ]))
            })
            .collect();
        let repairs = edit(&server, &guard, &c, |txn, comps| {
            nested(txn, comps, "pick", "properties").insert(txn, "options", Any::from(many));
        });
        assert_eq!(repairs[0].action, Action::Restored);
        assert_eq!(
            to_json(&server)["components"]["pick"]["properties"]["options"],
            json!([{"label": "A", "value": "a"}])
        );
        assert_valid_and_equal(&server, &c);
    }

    #[test]
    fn a_move_into_a_section_another_client_deleted_is_undone_at_the_top_level() {
        let (server, guard) = server();
        let a = client(&server);
        let b = client(&server);
        // Each edit is valid on its own.
        let ua = local(&a, |txn, comps| {
            comp(txn, comps, "name").insert(txn, "parent", "s");
        });
        let ub = local(&b, |txn, comps| {
            comps.remove(txn, "s");
        });
        server
            .transact_mut()
            .apply_update(Update::decode_v1(&ua).unwrap())
            .unwrap();
        assert!(guard.check(&server).is_none());
        server
            .transact_mut()
            .apply_update(Update::decode_v1(&ub).unwrap())
            .unwrap();
        let repaired = guard.check(&server).expect("the orphan is repaired");
        assert_eq!(repaired.repairs[0].component.as_deref(), Some("name"));
        assert_eq!(repaired.repairs[0].action, Action::Reparented);
        for client in [&a, &b] {
            for u in [&ua, &ub, &repaired.update] {
                client
                    .transact_mut()
                    .apply_update(Update::decode_v1(u).unwrap())
                    .unwrap();
            }
            assert_valid_and_equal(&server, client);
        }
        assert!(to_json(&server)["components"].get("name").is_some());
    }

    #[test]
    fn two_sections_moved_into_each_other_are_untangled_by_one_repair() {
        let (server, guard) = server();
        let seed = client(&server);
        edit(&server, &guard, &seed, |txn, comps| {
            let b = [("id", "b"), ("type", "section"), ("index", "a3")];
            comps.insert(
                txn,
                "b",
                MapPrelim::from(b.map(|(k, v)| (k.to_owned(), Any::from(v)))),
            );
            comp(txn, comps, "name").insert(txn, "parent", "s");
        });
        let (one, two) = (client(&server), client(&server));
        let move_s = local(&one, |txn, comps| {
            comp(txn, comps, "s").insert(txn, "parent", "b");
        });
        let move_b = local(&two, |txn, comps| {
            comp(txn, comps, "b").insert(txn, "parent", "s");
        });
        for u in [&move_s, &move_b] {
            server
                .transact_mut()
                .apply_update(Update::decode_v1(u).unwrap())
                .unwrap();
        }
        let repaired = guard.check(&server).expect("the loop is broken");
        assert_eq!(repaired.repairs.len(), 1, "{:?}", repaired.repairs);
        assert_eq!(repaired.repairs[0].action, Action::Reparented);
        let content = to_json(&server);
        assert!(coform_model::validate(&content).is_ok(), "{content}");
        // The one inside stays inside; nothing else moved.
        assert_eq!(content["components"]["name"]["parent"], json!("s"));
    }

    #[test]
    fn a_plain_object_component_with_a_bad_field_is_rewritten_as_a_map() {
        let (server, guard) = server();
        let c = client(&server);
        let repairs = edit(&server, &guard, &c, |txn, comps| {
            comps.insert(
                txn,
                "p",
                Any::from(HashMap::from([
                    ("id".to_owned(), Any::from("p")),
                    ("type".to_owned(), Any::from("text")),
                    ("index".to_owned(), Any::from("a5")),
                    ("label".to_owned(), Any::from(7.0)),
                ])),
            );
        });
        assert_eq!(repairs[0].field, "label");
        assert_eq!(repairs[0].action, Action::Removed);
        assert_valid_and_equal(&server, &c);
        let comps = server.get_or_insert_map("components");
        let txn = server.transact();
        assert!(matches!(comps.get(&txn, "p"), Some(Out::YMap(_))));
    }

    #[test]
    fn a_shared_array_of_options_is_checked_like_a_plain_one() {
        let (server, guard) = server();
        let c = client(&server);
        let repairs = edit(&server, &guard, &c, |txn, comps| {
            let props = nested(txn, comps, "pick", "properties");
            props.insert(txn, "options", ArrayPrelim::default());
        });
        // An empty list of options: the previous one is not a plain value
        // the event can give back, so the catalog's default is used.
        assert!(!repairs.is_empty());
        assert_valid_and_equal(&server, &c);
    }

    #[test]
    fn a_bad_meta_entry_is_restored() {
        let (server, guard) = server();
        let c = client(&server);
        let meta = c.get_or_insert_map("meta");
        let update = {
            let mut txn = c.transact_mut();
            meta.insert(&mut txn, "name", 5.0);
            txn.encode_update_v1()
        };
        server
            .transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        let repaired = guard.check(&server).unwrap();
        assert_eq!(repaired.repairs[0].action, Action::Restored);
        assert_eq!(to_json(&server)["meta"]["name"], json!("Form"));
    }
}
