//! Tests of the nesting scan, the anchor check and the repair.

use super::*;
use yrs::types::text::YChange;
use yrs::updates::decoder::Decode;
use yrs::{Any, Array, Doc, GetString, MapPrelim, Text, Update};

/// A document with one map at `components.<key>`, and that map.
fn doc_with_component(key: &str) -> (Doc, yrs::MapRef) {
    let doc = Doc::new();
    let root = doc.get_or_insert_map("components");
    let map = root.insert(&mut doc.transact_mut(), key, MapPrelim::default());
    (doc, map)
}

/// Runs `f` on a thread with a small stack, as a worker thread would
/// be: a recursion over 20,000 levels would overflow it.
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// A document whose `components` map holds maps nested `levels` deep,
/// built one level per transaction (as many small updates would).
fn nested_maps(doc: &Doc, levels: usize) -> Vec<u8> {
    let root = doc.get_or_insert_map("components");
    let before = doc.transact().state_vector();
    let mut txn = doc.transact_mut();
    let mut map = root.insert(&mut txn, "x", MapPrelim::default());
    for _ in 1..levels {
        map = map.insert(&mut txn, "x", MapPrelim::default());
    }
    drop(txn);
    doc.transact().encode_state_as_update_v1(&before)
}

#[test]
fn a_deep_chain_of_maps_is_refused_before_decoding() {
    let update = on_small_stack(|| nested_maps(&Doc::new(), 20_000));
    assert_eq!(scan_update_v1(&update), Err(NestingError::TypesTooDeep));
    let ok = nested_maps(&Doc::new(), MAX_NESTING);
    assert_eq!(scan_update_v1(&ok), Ok(UpdateShape::default()));
    let over = nested_maps(&Doc::new(), MAX_NESTING + 1);
    assert_eq!(scan_update_v1(&over), Err(NestingError::TypesTooDeep));
}

/// lib0 `Any`: an array nested `levels` deep, as a client would encode
/// it (tag 117, length 1, ...).
fn any_update(levels: usize) -> Vec<u8> {
    let doc = Doc::new();
    let map = doc.get_or_insert_map("meta");
    let mut txn = doc.transact_mut();
    map.insert(&mut txn, "v", Any::Null);
    let mut update = txn.encode_update_v1();
    drop(txn);
    // The update ends with the key `v`, the item's content (one Any:
    // null) and an empty delete set: splice in the nesting.
    let null_at = update.len() - 2;
    assert_eq!(&update[null_at - 2..], &[b'v', 1, 126, 0][..]);
    let mut nested = Vec::new();
    for _ in 0..levels {
        nested.extend([117, 1]);
    }
    nested.push(126);
    update.splice(null_at..null_at + 1, nested);
    update
}

#[test]
fn deeply_nested_values_are_refused_before_yrs_decodes_them() {
    let shallow = any_update(MAX_NESTING);
    assert!(scan_update_v1(&shallow).is_ok());
    assert!(Update::decode_v1(&shallow).is_ok(), "the splice is valid");
    for levels in [MAX_NESTING + 1, 100_000] {
        assert_eq!(
            scan_update_v1(&any_update(levels)),
            Err(NestingError::ValueTooDeep)
        );
    }
}

#[test]
fn embedded_json_depth_ignores_brackets_in_strings() {
    assert_eq!(json_text_depth(r#"{"a":[1,{"b":"[[[{{"}]}"#), 3);
    assert_eq!(json_text_depth(r#""\"[""#), 0);
    assert_eq!(json_depth(&serde_json::json!({"a": [1, {"b": []}]})), 4);
}

#[test]
fn anchors_are_new_types_under_existing_parents() {
    let (doc, existing) = doc_with_component("c1");
    let before = doc.transact().state_vector();
    {
        let mut txn = doc.transact_mut();
        let a = existing.insert(&mut txn, "a", MapPrelim::default());
        a.insert(&mut txn, "b", MapPrelim::default());
    }
    let update = doc.transact().encode_state_as_update_v1(&before);
    let shape = scan_update_v1(&update).unwrap();
    assert_eq!(shape.anchors.len(), 1);
    assert_eq!(shape.anchors[0].levels, 2);
    let txn = doc.transact();
    assert_eq!(type_level(&txn, shape.anchors[0].id, MAX_NESTING), Some(2));
    assert_eq!(check_anchors(&txn, &shape.anchors), Ok(()));
}

#[test]
fn chains_built_over_many_updates_are_caught_once_applied() {
    // The server's copy, and a client that adds one level per update.
    let server = Doc::new();
    let (client, mut map) = doc_with_component("x");
    let mut sent = client
        .transact()
        .encode_state_as_update_v1(&Default::default());
    for level in 1..=MAX_NESTING + 1 {
        let shape = scan_update_v1(&sent).unwrap();
        let mut txn = server.transact_mut();
        txn.apply_update(Update::decode_v1(&sent).unwrap()).unwrap();
        let verdict = check_anchors(&txn, &shape.anchors);
        if level <= MAX_NESTING {
            assert_eq!(verdict, Ok(()), "level {level}");
        } else {
            assert_eq!(verdict, Err(AnchorError::TooDeep));
        }
        drop(txn);
        let before = client.transact().state_vector();
        map = {
            let mut txn = client.transact_mut();
            map.insert(&mut txn, "x", MapPrelim::default())
        };
        sent = client.transact().encode_state_as_update_v1(&before);
    }
}

#[test]
fn an_update_whose_parent_is_missing_is_caught() {
    let (client, parent) = doc_with_component("x");
    let before = client.transact().state_vector();
    {
        let mut txn = client.transact_mut();
        parent.insert(&mut txn, "y", MapPrelim::default());
    }
    let child_only = client.transact().encode_state_as_update_v1(&before);
    let shape = scan_update_v1(&child_only).unwrap();
    let server = Doc::new();
    let mut txn = server.transact_mut();
    txn.apply_update(Update::decode_v1(&child_only).unwrap())
        .unwrap();
    assert_eq!(
        check_anchors(&txn, &shape.anchors),
        Err(AnchorError::Missing)
    );
}

#[test]
fn a_stored_deep_document_is_cut_back_without_deep_recursion() {
    on_small_stack(|| {
        let doc = Doc::new();
        let chain = nested_maps(&doc, 20_000);
        let fixes = repair(&doc);
        assert_eq!(fixes.len(), 20_000 - MAX_NESTING);
        assert!(repair(&doc).is_empty(), "nothing left to cut");
        let mut depth = 0;
        let mut cur = doc.get_or_insert_map("components");
        let txn = doc.transact();
        while let Some(Out::YMap(next)) = cur.get(&txn, "x") {
            depth += 1;
            cur = next;
        }
        assert_eq!(depth, MAX_NESTING);
        let state = txn.encode_state_as_update_v1(&Default::default());
        drop(txn);

        // Another copy that applies the fixes one by one converges.
        let other = Doc::new();
        let apply = |doc: &Doc, u: &[u8]| {
            doc.transact_mut()
                .apply_update(Update::decode_v1(u).unwrap())
                .unwrap()
        };
        apply(&other, &chain);
        for fix in &fixes {
            apply(&other, fix);
        }
        assert!(repair(&other).is_empty());

        // The repaired state loads flat, and old copies of the chain
        // applied over it change nothing.
        let fresh = Doc::new();
        {
            let mut txn = fresh.transact_mut();
            txn.apply_update(Update::decode_v1(&state).unwrap())
                .unwrap();
            txn.apply_update(Update::decode_v1(&chain).unwrap())
                .unwrap();
        }
        assert!(repair(&fresh).is_empty());
        // Deleting the top of what is left recurses at most MAX_NESTING.
        let root = fresh.get_or_insert_map("components");
        root.remove(&mut fresh.transact_mut(), "x");
    });
}

/// Applies raw v1 updates to a fresh document that never names a root
/// type itself, as a room rebuilding from its update log does.
fn load_untyped(updates: &[Vec<u8>]) -> Doc {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        for u in updates {
            txn.apply_update(Update::decode_v1(u).unwrap()).unwrap();
        }
    }
    doc
}

/// Every update `doc` made since `before`.
fn since(doc: &Doc, before: &yrs::StateVector) -> Vec<u8> {
    doc.transact().encode_state_as_update_v1(before)
}

#[test]
fn a_large_text_in_an_untyped_root_is_walked_in_a_few_steps() {
    // 1 MiB of text in four inserts, as a client typing into a top-level
    // Y.Text the server never declared.
    let client = Doc::new();
    let body = client.get_or_insert_text("body");
    let chunk = "é😀abcdefghij".repeat(1 << 16 >> 4);
    let mut updates = Vec::new();
    let mut expected = String::new();
    for round in 0..4u32 {
        let before = client.transact().state_vector();
        let text = format!("{round}{}", &chunk.repeat(4));
        let at = body.len(&client.transact());
        body.insert(&mut client.transact_mut(), at / 2, &text);
        updates.push(since(&client, &before));
        expected = body.get_string(&client.transact());
    }
    assert!(expected.len() >= 1 << 20, "{} bytes", expected.len());

    let doc = load_untyped(&updates);
    assert!(matches!(
        doc.transact().root_refs().next(),
        Some((_, Out::UndefinedRef(_)))
    ));
    let (doomed, steps) = find_too_deep(&doc);
    assert!(doomed.is_empty());
    // A handful of chunks (one per run of text), not one per character.
    assert!(steps <= 16, "{steps} steps for {} bytes", expected.len());
    assert!(repair(&doc).is_empty());
    let body = doc.get_or_insert_text("body");
    assert_eq!(body.get_string(&doc.transact()), expected);
}

#[test]
fn deep_types_under_an_untyped_text_root_are_still_cut() {
    on_small_stack(|| {
        let client = Doc::new();
        let body = client.get_or_insert_text("body");
        let extra = 7;
        {
            let mut txn = client.transact_mut();
            body.insert(&mut txn, 0, "héllo 😀 wörld");
            // The deep chain sits between two runs of text.
            let mut map = body.insert_embed(&mut txn, 6, MapPrelim::default());
            for _ in 1..MAX_NESTING + extra {
                map = map.insert(&mut txn, "x", MapPrelim::default());
            }
            let end = body.len(&txn);
            body.insert(&mut txn, end, " ✓");
        }
        let updates = vec![since(&client, &Default::default())];
        let text_of = |doc: &Doc| {
            let body = doc.get_or_insert_text("body");
            let txn = doc.transact();
            body.diff(&txn, YChange::identity)
                .into_iter()
                .filter_map(|d| match d.insert {
                    Out::Any(Any::String(s)) => Some(s.to_string()),
                    _ => None,
                })
                .collect::<String>()
        };

        let doc = load_untyped(&updates);
        let (_, steps) = find_too_deep(&doc);
        assert!(steps <= 4 + 2 * (MAX_NESTING + extra), "{steps} steps");
        let fixes = repair(&doc);
        assert_eq!(fixes.len(), extra);
        assert!(repair(&doc).is_empty(), "nothing left to cut");
        assert_eq!(text_of(&doc), "héllo 😀 wörld ✓");

        // The depth left is exactly the limit.
        let body = doc.get_or_insert_text("body");
        let txn = doc.transact();
        let mut depth = 0;
        let mut cur = body
            .diff(&txn, YChange::identity)
            .into_iter()
            .find_map(|d| match d.insert {
                Out::YMap(m) => Some(m),
                _ => None,
            })
            .expect("the embedded map stays");
        depth += 1;
        while let Some(Out::YMap(next)) = cur.get(&txn, "x") {
            depth += 1;
            cur = next;
        }
        assert_eq!(depth, MAX_NESTING);
    });
}

#[test]
fn deep_types_among_values_in_an_untyped_array_root_are_cut_by_identity() {
    on_small_stack(|| {
        let client = Doc::new();
        let list = client.get_or_insert_array("list");
        let extra = 3;
        {
            let mut txn = client.transact_mut();
            list.insert_range(&mut txn, 0, [1, 2, 3]);
            let mut map = list.insert(&mut txn, 3, MapPrelim::default());
            for _ in 1..MAX_NESTING + extra {
                map = map.insert(&mut txn, "x", MapPrelim::default());
            }
            list.insert_range(&mut txn, 4, [4, 5]);
            list.insert(&mut txn, 5, MapPrelim::default());
        }
        let updates = vec![since(&client, &Default::default())];
        let doc = load_untyped(&updates);
        let fixes = repair(&doc);
        assert_eq!(fixes.len(), extra);
        assert!(repair(&doc).is_empty());

        // Values and the shallow map are all still there, in order.
        let list = doc.get_or_insert_array("list");
        let txn = doc.transact();
        let items: Vec<Out> = list.iter(&txn).collect();
        assert_eq!(items.len(), 7);
        let ints: Vec<String> = items
            .iter()
            .filter_map(|o| match o {
                Out::Any(a) => Some(a.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(ints, ["1", "2", "3", "4", "5"]);
        assert!(matches!(items[3], Out::YMap(_)));
        assert!(matches!(items[5], Out::YMap(_)));
    });
}
