//! The y-websocket protocol against real yrs clients: convergence, full
//! state for late joiners and after a restart, and no echo to the sender.

mod support;

use support::*;
use yrs::sync::{Message, SyncMessage};
use yrs::{Doc, Map, ReadTxn, Text, Transact, WriteTxn};

const ROOM: &str = "protocol-sync";

/// Several clients edit a text and a map concurrently and all end up with
/// identical content containing every edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_converge() {
    let server = Server::open().await;
    const CLIENTS: usize = 4;
    const EDITS: usize = 60;

    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        clients.push(WsClient::connect(server.addr, ROOM, &format!("client{i}")).await);
    }

    // Every client edits at the same time: random-position text inserts
    // and one map key per edit.
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(1000 + i as u64);
            for n in 0..EDITS {
                let pos = rng.below(1000) as u32;
                let chunk = format!("[{i}:{n}]");
                let key = format!("c{i}-{n}");
                client
                    .edit(move |txn| {
                        let text = txn.get_or_insert_text("text");
                        let len = text.len(txn);
                        text.insert(txn, pos.min(len), &chunk);
                        txn.get_or_insert_map("map").insert(txn, key, n as i64);
                    })
                    .await;
                if n % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            client
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.expect("edit task"));
    }

    let target = merged_state_vector(&clients.iter().map(|c| &c.doc).collect::<Vec<_>>());
    for c in &clients {
        c.wait_until("every client's edits", TIMEOUT, |doc| covers(doc, &target))
            .await;
    }

    let text0 = clients[0].text("text");
    let map0 = clients[0].map_json("map");
    assert!(
        map0.starts_with("{\"c0-0\":0,"),
        "unexpected map JSON: {}",
        &map0[..map0.len().min(80)]
    );
    for c in &clients {
        assert_eq!(
            c.text("text"),
            text0,
            "{} text differs from client0",
            c.name
        );
        assert_eq!(
            c.map_json("map"),
            map0,
            "{} map differs from client0",
            c.name
        );
        assert_eq!(
            c.map_keys("map").len(),
            CLIENTS * EDITS,
            "{} map size",
            c.name
        );
        // No frame failed to decode and no update failed to apply.
        c.check();
        let st = c.state();
        assert_eq!(st.echoes, 0, "{} received its own updates back", c.name);
        assert!(
            st.ended.is_none(),
            "{} was disconnected: {:?}",
            c.name,
            st.ended
        );
    }
    // Concurrent inserts may land inside each other's chunks, so compare
    // the multiset of characters with everything that was inserted.
    let mut expected: Vec<char> = (0..CLIENTS)
        .flat_map(|i| {
            (0..EDITS).flat_map(move |n| format!("[{i}:{n}]").chars().collect::<Vec<_>>())
        })
        .collect();
    let mut got: Vec<char> = text0.chars().collect();
    expected.sort_unstable();
    got.sort_unstable();
    assert!(
        got == expected,
        "the converged text lost or duplicated characters"
    );
}

/// A client that joins after edits were made receives all of them in the
/// server's answer to its SyncStep1, and the server opens with SyncStep1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_gets_full_state() {
    let server = Server::open().await;
    let [a, b] = connect_all(server.addr, ROOM, ["a", "b"]).await;

    for n in 0..50 {
        a.insert_text("text", u32::MAX, &format!("a{n};")).await;
        b.set_key("map", &format!("b{n}"), &format!("value {n}"))
            .await;
    }
    let target = merged_state_vector(&[&a.doc, &b.doc]);
    a.wait_until("b's edits", TIMEOUT, |d| covers(d, &target))
        .await;
    b.wait_until("a's edits", TIMEOUT, |d| covers(d, &target))
        .await;

    let late = WsClient::connect(server.addr, ROOM, "late").await;
    let st = late.state();
    assert!(
        st.step1_received >= 1,
        "server sent no SyncStep1 on join: {st:?}"
    );

    // The first SyncStep2 alone carries the whole document.
    let first = st.first_step2.clone().expect("first SyncStep2");
    let from_step2 = doc_from_update(&first);
    assert_eq!(text_string(&from_step2, "text"), a.text("text"));
    assert_eq!(map_json(&from_step2, "map"), b.map_json("map"));
    assert_eq!(map_keys(&from_step2, "map").len(), 50);
    assert_eq!(late.text("text"), a.text("text"));
    assert_eq!(late.map_json("map"), a.map_json("map"));

    // And the late joiner takes part like anyone else.
    late.set_key("map", "late", "here").await;
    a.wait_has_key("map", "late").await;
}

/// After a graceful restart on the same data dir, the first SyncStep2 a new
/// client receives already holds the stored document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_step2_after_restart_has_stored_content() {
    let mut server = Server::open().await;
    let expected_text;
    let expected_map;
    {
        let [a, observer] = connect_all(server.addr, ROOM, ["a", "observer"]).await;
        for n in 0..40 {
            a.edit(move |txn| {
                txn.get_or_insert_text("text")
                    .push(txn, &format!("line {n}\n"));
                txn.get_or_insert_map("map")
                    .insert(txn, format!("k{n}"), n as i64);
            })
            .await;
        }
        // Updates are stored before they are broadcast: once the observer
        // has everything, the store has it too.
        let target = merged_state_vector(&[&a.doc]);
        observer
            .wait_until("a's edits", TIMEOUT, |d| covers(d, &target))
            .await;
        expected_text = a.text("text");
        expected_map = a.map_json("map");
        a.close().await;
        observer.close().await;
    }

    server.restart().await;

    let fresh = WsClient::connect(server.addr, ROOM, "fresh").await;
    let first = fresh.state().first_step2.expect("first SyncStep2");
    let from_step2 = doc_from_update(&first);
    assert_eq!(text_string(&from_step2, "text"), expected_text);
    assert_eq!(map_json(&from_step2, "map"), expected_map);
    assert_eq!(fresh.text("text"), expected_text);

    // Another room on the same server is independent and empty.
    let other = WsClient::connect(server.addr, "another-room", "other").await;
    assert_eq!(other.text("text"), "");
    assert!(other.map_keys("map").is_empty());
}

/// Updates go to every other peer but never back to their sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_not_echoed_to_sender() {
    let server = Server::open().await;
    let [a, b] = connect_all(server.addr, ROOM, ["a", "b"]).await;

    for n in 0..20 {
        a.set_key("map", &format!("a{n}"), "x").await;
    }
    for n in 0..5 {
        b.set_key("map", &format!("b{n}"), "y").await;
    }
    let target = merged_state_vector(&[&a.doc, &b.doc]);
    a.wait_until("b's edits", TIMEOUT, |d| covers(d, &target))
        .await;
    b.wait_until("a's edits", TIMEOUT, |d| covers(d, &target))
        .await;

    // Whatever the server queued for a before reading this round trip's
    // SyncStep1 (an echo included) has arrived once its answer is in.
    a.round_trip().await;
    b.round_trip().await;

    let sa = a.state();
    let sb = b.state();
    assert_eq!(sa.echoes, 0, "a got its own updates back: {sa:?}");
    assert_eq!(sb.echoes, 0, "b got its own updates back: {sb:?}");
    // Each received the other's updates and nothing more (at most one
    // message per update sent).
    assert!(
        (1..=5).contains(&sa.updates_received),
        "a got {} update messages for b's 5",
        sa.updates_received
    );
    assert!(
        (1..=20).contains(&sb.updates_received),
        "b got {} update messages for a's 20",
        sb.updates_received
    );

    // The SyncStep2 answering a's up-to-date state vector carries nothing
    // a lacks.
    let before = a.state_vector();
    a.round_trip().await;
    assert_eq!(a.state_vector(), before);
}

/// A client that reconnects with local edits made while offline uploads
/// them in its answer to the server's SyncStep1; others receive them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_are_uploaded_on_reconnect() {
    let server = Server::open().await;
    let [a, b] = connect_all(server.addr, ROOM, ["a", "b"]).await;
    a.set_key("map", "before", "1").await;
    b.wait_has_key("map", "before").await;

    // Edit a's document while it is disconnected.
    let doc: Doc = a.doc.clone();
    drop(a);
    {
        let map = doc.get_or_insert_map("map");
        let mut txn = doc.transact_mut();
        map.insert(&mut txn, "offline", "2");
    }
    let a = WsClient::connect_with_doc(server.addr, ROOM, "a", doc, ConnectOpts::default()).await;
    a.wait_synced().await;
    b.wait_has_key("map", "offline").await;

    // A client sending only SyncStep1 with an empty state vector gets the
    // whole document, as a y-websocket client would.
    let raw = WsClient::connect_with_doc(
        server.addr,
        ROOM,
        "raw",
        Doc::new(),
        ConnectOpts {
            no_initial_step1: true,
            ..Default::default()
        },
    )
    .await;
    raw.send_msg(&Message::Sync(SyncMessage::SyncStep1(
        yrs::StateVector::default(),
    )))
    .await
    .unwrap();
    raw.wait_synced().await;
    let keys = raw.map_keys("map");
    assert!(
        keys.contains("before") && keys.contains("offline"),
        "{keys:?}"
    );
    assert_eq!(
        raw.doc.transact().state_vector(),
        b.doc.transact().state_vector()
    );
}

/// Awareness is relayed to the others, sent to a joiner on join, and
/// removed for everyone when its connection goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awareness_is_relayed_and_removed_on_disconnect() {
    let server = Server::open().await;
    let room = "awareness";
    let [a, b] = connect_all(server.addr, room, ["a", "b"]).await;
    let a_id = a.client_id();
    let state = r#"{"user":{"name":"Ada"},"cursor":3}"#;

    a.set_awareness(1, state).await;
    b.wait_state("a's awareness", |s| s.awareness.contains_key(&a_id))
        .await;
    let (clock, json) = b.awareness_of(a_id).unwrap();
    assert_eq!(clock, 1);
    let got: serde_json::Value = serde_json::from_str(&json).expect("awareness JSON");
    let sent: serde_json::Value = serde_json::from_str(state).unwrap();
    assert_eq!(got, sent, "awareness state altered in transit");

    // A joiner is told the current states as part of joining.
    let c = WsClient::connect(server.addr, room, "c").await;
    c.wait_state("awareness on join", |s| s.awareness.contains_key(&a_id))
        .await;
    assert_eq!(c.awareness_of(a_id).unwrap().0, 1);

    // The sender is not sent its own state back.
    a.round_trip().await;
    assert_eq!(a.awareness_of(a_id), None, "a's awareness was echoed to a");

    // a's connection drops without a word: the others learn it is gone.
    drop(a);
    for peer in [&b, &c] {
        peer.wait_state("a's awareness removal", |s| {
            matches!(s.awareness.get(&a_id), Some((clock, json)) if *clock > 1 && json == "null")
        })
        .await;
    }
    // b and c still sync.
    b.set_key("map", "after", "x").await;
    c.wait_has_key("map", "after").await;
}
