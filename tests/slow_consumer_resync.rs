//! A peer that stops reading must not hold the room back: once its
//! outbound queue overflows the server closes it (1013), everyone else
//! keeps receiving every update, and the slow client resyncs on reconnect.

mod support;

use support::*;
use yrs::{Map, WriteTxn};

const ROOM: &str = "slow-consumer";
const MAP: &str = "map";
const BLOB: usize = 32 * 1024;
/// Upper bound on what the writer sends before the server must have closed
/// the stalled peer (its socket buffers are far smaller than this).
const MAX_ROUNDS: i64 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_peer_is_closed_and_resyncs() {
    let server = Server::open_with(|c| {
        c.limits.peer_queue_bytes = 64 * 1024;
        c.limits.max_messages_per_sec = 1_000_000;
        c.limits.max_doc_bytes = 1 << 30;
    })
    .await;

    let [writer, fast] = connect_all(server.addr, ROOM, ["writer", "fast"]).await;
    // A small receive buffer so the stall backs up into the server soon.
    let slow = WsClient::connect_with_doc(
        server.addr,
        ROOM,
        "slow",
        yrs::Doc::new(),
        ConnectOpts {
            recv_buffer: Some(4096),
            ..Default::default()
        },
    )
    .await;
    slow.wait_synced().await;
    // Make sure the server has registered all three before the stall.
    fast.round_trip().await;
    slow.round_trip().await;

    let lag_before = metrics(server.addr)
        .await
        .get("coform_peers_closed_lag_total");
    slow.pause_reading();

    let mut rng = Rng::new(5);
    let mut round: i64 = 0;
    // Sends one sizeable update and waits until the fast peer has it: the
    // fast peer is never the one that falls behind.
    let mut step = |round: i64| {
        let blob = rng.letters(BLOB);
        let key = format!("blob{}", round % 4);
        let writer = &writer;
        let fast = &fast;
        async move {
            writer
                .edit(move |txn| {
                    let m = txn.get_or_insert_map(MAP);
                    m.insert(txn, key, blob);
                    m.insert(txn, "round", round);
                })
                .await;
            fast.wait_until(&format!("round {round}"), TIMEOUT, |d| {
                map_get_i64(d, MAP, "round") == Some(round)
            })
            .await;
        }
    };

    let mut closed = false;
    while round < MAX_ROUNDS {
        round += 1;
        step(round).await;
        if round % 8 == 0 {
            let lag = metrics(server.addr)
                .await
                .get("coform_peers_closed_lag_total");
            if lag > lag_before {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed,
        "the stalled peer was not closed after {round} updates of {BLOB} bytes \
         (peer_queue_bytes = 64 KiB)"
    );

    eprintln!("stalled peer closed for lag after {round} updates of {BLOB} bytes");

    // The room carries on at full speed for the others.
    for _ in 0..20 {
        round += 1;
        step(round).await;
    }
    assert_eq!(
        fast.map_json(MAP),
        writer.map_json(MAP),
        "the fast peer diverged while another peer was stalled"
    );
    let fs = fast.state();
    assert!(
        fs.ended.is_none(),
        "the fast peer was disconnected: {:?}",
        fs.ended
    );
    assert_eq!(fs.echoes, 0);
    let lag_after = metrics(server.addr)
        .await
        .get("coform_peers_closed_lag_total");
    assert_eq!(
        lag_after,
        lag_before + 1.0,
        "exactly one peer (the stalled one) should have been closed for lag"
    );

    // The stalled client reads again: what was buffered, then the end.
    slow.resume_reading();
    match slow.wait_ended().await {
        Ended::Closed { code, reason } => {
            assert_eq!(
                code, 1013,
                "stalled peer closed with {code} ({reason}), expected 1013"
            )
        }
        Ended::Dropped(why) => {
            eprintln!("stalled peer's connection ended without a close frame: {why}")
        }
    }
    let seen = map_get_i64(&slow.doc, MAP, "round").unwrap_or(0);
    assert!(
        seen < round,
        "the stalled peer got every update ({seen} of {round}) although it was closed"
    );
    slow.check();

    // Reconnecting with the same document catches up on everything missed.
    let slow = slow.reconnect(server.addr).await;
    assert_eq!(
        map_get_i64(&slow.doc, MAP, "round"),
        Some(round),
        "resync after reconnect did not bring the latest round"
    );
    assert_eq!(
        slow.map_json(MAP),
        writer.map_json(MAP),
        "resynced content differs"
    );

    // And it is a full member of the room again.
    slow.set_key(MAP, "from-slow", "back").await;
    writer
        .wait_until("the resynced peer's edit", TIMEOUT, |d| {
            map_get_string(d, MAP, "from-slow").as_deref() == Some("back")
        })
        .await;
    fast.wait_until("the resynced peer's edit", TIMEOUT, |d| {
        map_get_string(d, MAP, "from-slow").as_deref() == Some("back")
    })
    .await;
}

/// A document larger than one peer's queue must still reach a client that
/// joins: the whole-state SyncStep2 is a single message, not a sign of lag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiner_syncs_a_document_larger_than_the_peer_queue() {
    let server = Server::open_with(|c| {
        c.limits.peer_queue_bytes = 64 * 1024;
        c.limits.max_doc_bytes = 1 << 30;
    })
    .await;
    let [writer, observer] = connect_all(server.addr, ROOM, ["writer", "observer"]).await;
    let mut rng = Rng::new(9);
    for n in 0..4i64 {
        let blob = rng.letters(BLOB);
        writer
            .edit(move |txn| {
                let m = txn.get_or_insert_map(MAP);
                m.insert(txn, format!("blob{n}"), blob);
                m.insert(txn, "round", n);
            })
            .await;
        observer
            .wait_until(&format!("blob {n}"), TIMEOUT, |d| {
                map_get_i64(d, MAP, "round") == Some(n)
            })
            .await;
    }
    let expected = writer.map_json(MAP);
    assert!(
        expected.len() > 64 * 1024,
        "document is not larger than the queue: {}",
        &expected[..expected.len().min(300)]
    );

    // Join repeatedly: every joiner must get the document, none be closed.
    for attempt in 0..10 {
        let joiner = WsClient::connect_with_doc(
            server.addr,
            ROOM,
            &format!("joiner{attempt}"),
            yrs::Doc::new(),
            ConnectOpts::default(),
        )
        .await;
        joiner
            .wait_state("the first SyncStep2 or the end", |s| {
                s.step2_received > 0 || s.ended.is_some()
            })
            .await;
        let st = joiner.state();
        assert!(
            st.ended.is_none() && st.step2_received > 0,
            "joiner {attempt} of a {} byte document was closed instead of synced: {:?}",
            expected.len(),
            st.ended
        );
        assert_eq!(
            joiner.map_json(MAP),
            expected,
            "joiner {attempt} got other content"
        );
    }
    assert_eq!(
        metrics(server.addr)
            .await
            .get("coform_peers_closed_lag_total"),
        0.0,
        "peers were closed for lag although every one of them was reading"
    );
}
