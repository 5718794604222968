//! A client that reads slowly while pointers move gets the latest presence
//! state of each collaborator, not a backlog of stale pointers, and still
//! every document update, in order. A removal (a collaborator leaving) is
//! a state like the others: it reaches the slow reader too.

mod support;

use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::{Map, ReadTxn, StateVector, Transact, Update, WriteTxn};

const ROOM: &str = "slow-presence";
const MAP: &str = "map";
/// Each round's document update carries this much, so the stalled
/// reader's socket buffers fill after a few hundred rounds.
const BLOB: usize = 16 * 1024;
/// Upper bound on rounds before presence must have been coalesced.
const MAX_ROUNDS: u32 = 3000;
/// Presence messages replaced in the slow reader's queue before it reads
/// again: the backlog it would otherwise have had to wade through.
const COALESCED: f64 = 200.0;

/// What the slow reader received, in order.
#[derive(Default)]
struct Seen {
    /// The document, from every update received (in order).
    rounds: Vec<i64>,
    /// Presence per awareness client: the clocks and states, in order.
    states: std::collections::HashMap<u64, Vec<(u32, String)>>,
    step2: bool,
}

impl Seen {
    fn take(&mut self, doc: &yrs::Doc, frame: &[u8]) {
        let mut decoder = DecoderV1::from(frame);
        for msg in MessageReader::new(&mut decoder) {
            match msg.expect("a message from the server that decodes") {
                Message::Sync(SyncMessage::Update(u)) => {
                    let update = Update::decode_v1(&u).expect("update decodes");
                    doc.transact_mut()
                        .apply_update(update)
                        .expect("update applies");
                    self.rounds
                        .push(map_get_i64(doc, MAP, "round").unwrap_or(-1));
                }
                Message::Sync(SyncMessage::SyncStep2(u)) => {
                    let update = Update::decode_v1(&u).expect("step 2 decodes");
                    doc.transact_mut().apply_update(update).expect("applies");
                    self.step2 = true;
                }
                Message::Awareness(update) => {
                    for (client, entry) in update.clients {
                        self.states
                            .entry(client.get())
                            .or_default()
                            .push((entry.clock, entry.json.to_string()));
                    }
                }
                _ => {}
            }
        }
    }

    fn last(&self, client: u64) -> Option<&(u32, String)> {
        self.states.get(&client).and_then(|s| s.last())
    }
}

async fn read_one(ws: &mut Ws, seen: &mut Seen, doc: &yrs::Doc) {
    let msg = within(TIMEOUT, "a message for the slow reader", ws.next())
        .await
        .expect("the slow reader's connection stays open")
        .expect("the slow reader's connection stays healthy");
    if let WsMessage::Binary(frame) = msg {
        seen.take(doc, &frame);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_gets_the_latest_presence_and_every_update() {
    let server = Server::open_with(|c| {
        // Never closed for lag here: the queue only has to hold updates.
        c.limits.peer_queue_bytes = 1 << 30;
        c.limits.peer_queue_messages = 1 << 20;
        c.limits.max_messages_per_sec = 1_000_000;
        c.limits.max_doc_bytes = 1 << 30;
    })
    .await;
    let [a, b, fast] = connect_all(server.addr, ROOM, ["a", "b", "fast"]).await;

    // The slow reader: a raw WebSocket with a small receive buffer, so
    // the server's writes back up soon once it stops reading.
    let mut slow = raw_connect(server.addr, ROOM, Some(4096)).await;
    let slow_doc = yrs::Doc::new();
    let mut seen = Seen::default();
    let step1 = encode_msg(&Message::Sync(SyncMessage::SyncStep1(
        StateVector::default(),
    )));
    slow.send(WsMessage::Binary(step1.into()))
        .await
        .expect("send step 1");
    while !seen.step2 {
        read_one(&mut slow, &mut seen, &slow_doc).await;
    }
    let coalesced_before = metrics(server.addr)
        .await
        .get("coform_awareness_coalesced_total");

    // Rounds of both pointers moving and one document update; the slow
    // reader reads nothing meanwhile.
    let mut rng = Rng::new(11);
    let mut round: u32 = 0;
    let mut coalesced = 0.0;
    while round < MAX_ROUNDS && coalesced < COALESCED {
        round += 1;
        a.set_awareness(round, &format!(r#"{{"x":{round},"y":1}}"#))
            .await;
        b.set_awareness(round, &format!(r#"{{"x":1,"y":{round}}}"#))
            .await;
        let blob = rng.letters(BLOB);
        let r = i64::from(round);
        a.edit(move |txn| {
            let m = txn.get_or_insert_map(MAP);
            m.insert(txn, format!("blob{}", r % 4), blob);
            m.insert(txn, "round", r);
        })
        .await;
        fast.wait_until(&format!("round {round}"), TIMEOUT, |d| {
            map_get_i64(d, MAP, "round") == Some(r)
        })
        .await;
        if round.is_multiple_of(8) {
            coalesced = metrics(server.addr)
                .await
                .get("coform_awareness_coalesced_total")
                - coalesced_before;
        }
    }
    assert!(
        coalesced >= COALESCED,
        "only {coalesced} presence messages were coalesced after {round} rounds"
    );
    eprintln!("{coalesced} presence messages coalesced after {round} rounds");

    // b leaves: its removal must reach the slow reader like a state.
    let (a_id, b_id) = (a.client_id(), b.client_id());
    b.close().await;
    fast.wait_state(
        "b's removal",
        |s| matches!(s.awareness.get(&b_id), Some((_, json)) if json == "null"),
    )
    .await;
    let removal = fast.awareness_of(b_id).expect("b's removal");

    // The slow reader reads again: everything, up to the last round and
    // the removal.
    let done = |seen: &Seen| {
        seen.rounds.last() == Some(&i64::from(round))
            && seen.last(a_id).map(|s| s.0) == Some(round)
            && seen.last(b_id) == Some(&removal)
    };
    while !done(&seen) {
        read_one(&mut slow, &mut seen, &slow_doc).await;
    }

    // Every update, in order: each one moved the round on by exactly one.
    let want: Vec<i64> = (1..=i64::from(round)).collect();
    assert_eq!(
        seen.rounds, want,
        "the slow reader missed or reordered document updates"
    );
    assert_eq!(slow_doc.transact().state_vector(), a.state_vector());

    // Presence: never an older state after a newer one, the latest last,
    // and far fewer states than moves: the stale ones were never sent.
    for (who, id) in [("a", a_id), ("b", b_id)] {
        let states = &seen.states[&id];
        assert!(
            states.windows(2).all(|w| w[0].0 < w[1].0),
            "{who}'s states arrived out of order: {:?}",
            states.iter().map(|s| s.0).collect::<Vec<_>>()
        );
        assert!(
            states.len() + 50 <= round as usize,
            "the slow reader got {} of {who}'s {round} states: a backlog, not the latest",
            states.len()
        );
    }
    assert_eq!(
        seen.last(a_id),
        Some(&(round, format!(r#"{{"x":{round},"y":1}}"#)))
    );
    assert_eq!(seen.last(b_id), Some(&removal));
    assert_eq!(
        metrics(server.addr)
            .await
            .get("coform_peers_closed_lag_total"),
        0.0,
        "a peer was closed for lag"
    );
}
