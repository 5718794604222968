//! Random nested structures against every read path: Yjs updates of
//! nested maps, arrays, text and values from a real y-websocket client
//! (yrs), and nested JSON through the REST writes (content, import,
//! restore). Whatever arrives is stored or refused with a clear answer;
//! no read answers 5xx, the process never dies, and the stored document
//! never nests deeper than the limit. Seeded: the seed is printed, and
//! `COFORM_FUZZ_SEED` replays a run.

mod support;

use base64::Engine;
use serde_json::{json, Value};
use support::*;
use yrs::updates::decoder::Decode;
use yrs::{Any, ArrayPrelim, Doc, In, Map, MapPrelim, Out, ReadTxn, Transact};

const MAX_NESTING: usize = 17;
const ROUNDS: usize = 100;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn scalar(rng: &mut Rng) -> Any {
    match rng.below(5) {
        0 => Any::Null,
        1 => Any::Bool(rng.below(2) == 0),
        2 => Any::from(rng.below(1_000) as f64 / 7.0),
        3 => Any::from(format!("s{}", rng.below(100))),
        _ => Any::from(vec![Any::from(1.0), Any::Null]),
    }
}

/// A value nested exactly `depth` levels on one branch, shallow elsewhere.
fn any_value(rng: &mut Rng, depth: usize) -> Any {
    if depth == 0 {
        return scalar(rng);
    }
    let deep = any_value(rng, depth - 1);
    if rng.below(2) == 0 {
        Any::from(vec![deep, scalar(rng)])
    } else {
        Any::from(std::collections::HashMap::from([
            ("deep".to_owned(), deep),
            ("flat".to_owned(), scalar(rng)),
        ]))
    }
}

/// Shared types nested `depth` levels on one branch, with values and text
/// along the way.
fn shared(rng: &mut Rng, depth: usize) -> In {
    if depth == 0 {
        return match rng.below(3) {
            0 => In::Any(scalar(rng)),
            1 => {
                let depth = 1 + rng.below(4) as usize;
                In::Any(any_value(rng, depth))
            }
            _ => In::Text(yrs::types::text::DeltaPrelim::default()),
        };
    }
    let deep = shared(rng, depth - 1);
    if rng.below(3) == 0 {
        In::Array(ArrayPrelim::from_iter([deep, In::Any(scalar(rng))]))
    } else {
        In::Map(MapPrelim::from_iter([
            ("deep", deep),
            ("flat", In::Any(scalar(rng))),
        ]))
    }
}

/// JSON nested exactly `depth` levels on one branch.
fn json_value(rng: &mut Rng, depth: usize) -> Value {
    let mut v = json!(rng.below(10));
    for _ in 0..depth {
        v = if rng.below(2) == 0 {
            json!([v, "x"])
        } else {
            json!({"deep": v, "flat": true})
        };
    }
    v
}

/// The deepest nesting of shared types and values in `doc`, walked with a
/// stack and capped at `cap`.
fn doc_depth(doc: &Doc, cap: usize) -> usize {
    let txn = doc.transact();
    let mut deepest = 0;
    let mut stack: Vec<(Out, usize)> = txn.root_refs().map(|(_, out)| (out, 0)).collect();
    while let Some((out, level)) = stack.pop() {
        deepest = deepest.max(level);
        if level >= cap {
            continue;
        }
        match out {
            Out::YMap(m) => stack.extend(m.iter(&txn).map(|(_, v)| (v, level + 1))),
            Out::YArray(a) => {
                use yrs::Array;
                stack.extend(a.iter(&txn).map(|v| (v, level + 1)))
            }
            Out::Any(any) => {
                let mut values = vec![(any, level)];
                while let Some((v, l)) = values.pop() {
                    deepest = deepest.max(l);
                    match v {
                        Any::Array(items) if l < cap => {
                            values.extend(items.iter().cloned().map(|i| (i, l + 1)))
                        }
                        Any::Map(m) if l < cap => {
                            values.extend(m.values().cloned().map(|i| (i, l + 1)))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    deepest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_nested_structures_never_crash_a_read() {
    let seed = std::env::var("COFORM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_ms() as u64 | 1);
    println!("nesting fuzz seed: {seed} (replay with COFORM_FUZZ_SEED={seed})");
    let mut rng = Rng(seed);

    let s = Server::start().await;
    let a = s.register("Ada", "ada@example.com").await;
    let ws = s.create_workspace(&a.access, "Team").await;
    let tpl = id_of(&s.create_template(&a.access, &ws, "Form", None).await);
    let mut client = s.ws(&tpl, &a.access, "fuzzer").await;
    let (mut stored, mut refused) = (0, 0);

    for round in 0..ROUNDS {
        let what = format!("round {round} (seed {seed})");
        // A Yjs update from a separate client, onto what the server has.
        let depth = 1 + rng.below(2 * MAX_NESTING as u64 + 6) as usize;
        let author = Doc::new();
        {
            let state = client
                .doc
                .transact()
                .encode_state_as_update_v1(&Default::default());
            let mut txn = author.transact_mut();
            txn.apply_update(yrs::Update::decode_v1(&state).unwrap())
                .unwrap();
        }
        let before = author.transact().state_vector();
        {
            let root = if rng.below(4) == 0 {
                "meta"
            } else {
                "components"
            };
            let map = author.get_or_insert_map(root);
            let mut txn = author.transact_mut();
            let key = format!("k{}", rng.below(5));
            if rng.below(3) == 0 {
                map.insert(&mut txn, key, any_value(&mut rng, depth));
            } else {
                map.insert(&mut txn, key, shared(&mut rng, depth));
            }
        }
        let update = author.transact().encode_state_as_update_v1(&before);
        client.send_update(update).await;
        if client.try_round_trip().await {
            stored += 1;
        } else {
            let code = client.wait_close_code().await;
            assert_eq!(code, 1008, "{what}: depth {depth} closed with {code}");
            refused += 1;
            client = s.ws(&tpl, &a.access, "fuzzer").await;
        }

        // Nested JSON through every REST write.
        let jdepth = 1 + rng.below(160) as usize;
        let meta = json!({"name": "Form", "extra": json_value(&mut rng, jdepth)});
        let writes = [
            s.put(
                &format!("/api/templates/{tpl}"),
                Some(&a.access),
                json!({"content": {"meta": meta.clone()}}),
            )
            .await,
            s.post(
                &format!("/api/templates/{tpl}/import"),
                Some(&a.access),
                json!({"format": "coform-template", "version": 1,
                       "template": {"name": "Form"},
                       "content": {"meta": meta, "components": {}}}),
            )
            .await,
        ];
        for r in &writes {
            assert!(
                r.status < 500,
                "{what}: {} answered {}: {}",
                r.what,
                r.status,
                r.text
            );
        }
        let backup = s.backup(&a.access, &ws).await;
        assert_eq!(backup.status, 200, "{what}: backup {}", backup.text);
        let mut restore = backup.json.clone();
        restore["templates"][0]["state"] =
            json!(base64::engine::general_purpose::STANDARD.encode(nested_state(&mut rng, depth)));
        let r = s.restore(&a.access, &ws, restore).await;
        assert!(
            r.status < 500,
            "{what}: restore answered {}: {}",
            r.status,
            r.text
        );

        // Every read path answers.
        for path in [
            format!("/api/templates/{tpl}"),
            format!("/api/templates/{tpl}/preview"),
            format!("/api/templates/{tpl}/versions"),
            format!("/api/templates/{tpl}/versions/current/diff/current"),
            format!("/api/templates?workspaceId={ws}"),
        ] {
            let r = s.get(&path, Some(&a.access)).await;
            assert!(
                r.status < 500,
                "{what}: GET {path} answered {}: {}",
                r.status,
                r.text
            );
        }
        let r = s
            .post_empty(&format!("/api/templates/{tpl}/export"), Some(&a.access))
            .await;
        assert_eq!(r.status, 200, "{what}: export {}", r.text);
        let v = s
            .post(
                &format!("/api/templates/{tpl}/versions"),
                Some(&a.access),
                json!({"name": format!("v{round}")}),
            )
            .await;
        assert_eq!(v.status, 201, "{what}: version {}", v.text);
        let n = v.json["number"].as_u64().unwrap();
        for path in [
            format!("/api/templates/{tpl}/versions/{n}"),
            format!("/api/templates/{tpl}/versions/1/diff/{n}"),
        ] {
            let r = s.get(&path, Some(&a.access)).await;
            assert_eq!(r.status, 200, "{what}: GET {path}: {}", r.text);
        }
    }

    // What is stored never nests past the limit.
    let fresh = s.ws(&tpl, &a.access, "fresh").await;
    let depth = doc_depth(&fresh.doc, 4 * MAX_NESTING);
    assert!(depth <= MAX_NESTING, "stored document nests {depth} levels");
    println!("nesting fuzz: {stored} updates stored, {refused} refused");
    assert!(
        stored > 0 && refused > 0,
        "the rounds covered both sides of the limit"
    );
}

/// A whole document state with random nesting, as a backup carries it.
fn nested_state(rng: &mut Rng, depth: usize) -> Vec<u8> {
    let doc = Doc::new();
    let map = doc.get_or_insert_map("components");
    let mut txn = doc.transact_mut();
    map.insert(&mut txn, "c", shared(rng, depth));
    drop(txn);
    let state = doc
        .transact()
        .encode_state_as_update_v1(&Default::default());
    state
}
