//! Crash safety of the real binary: ten clients edit continuously, the
//! server is SIGKILLed mid-stream and restarted on the same data dir, over
//! and over. Every update any client received from the server must be
//! there after the restart (the server stores before it broadcasts).

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use support::*;
use yrs::{Doc, Map, WriteTxn};

const ROOM: &str = "crash-recovery";
const MAP: &str = "keys";
const CLIENTS: usize = 10;
const CYCLES: usize = 6;

fn key(client: usize, n: u64) -> String {
    format!("c{client}-{n}")
}

fn own_prefix(client: usize) -> String {
    format!("c{client}-")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn updates_seen_by_any_client_survive_sigkill() {
    let mut server = ProcessServer::start(&[]).await;
    // Each client's document lives across its reconnections, as a browser
    // tab's would across a server restart.
    let docs: Vec<Doc> = (0..CLIENTS).map(|_| Doc::new()).collect();
    let mut next_seq = [0u64; CLIENTS];
    // Keys some client received from the server, cumulative over cycles.
    let mut required: BTreeSet<String> = BTreeSet::new();
    let mut rng = Rng::new(0xC0F0);

    for cycle in 0..CYCLES {
        let mut clients = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let c = WsClient::connect_doc(
                server.addr,
                ROOM,
                &format!("client{i}/cycle{cycle}"),
                doc.clone(),
            )
            .await;
            clients.push(Arc::new(c));
        }

        // Continuous editing: each client inserts its own unique keys.
        let stop = StopFlag::default();
        let mut loops = Vec::new();
        for (i, c) in clients.iter().enumerate() {
            let c = c.clone();
            let stop = stop.clone();
            let mut seq = next_seq[i];
            loops.push(tokio::spawn(async move {
                while !stop.is_stopped() {
                    let k = key(i, seq);
                    // The edit is applied locally before it is sent, so the
                    // key counts as generated even if the send fails.
                    seq += 1;
                    let sent = c
                        .try_edit(move |txn| {
                            txn.get_or_insert_map(MAP).insert(txn, k, seq as i64);
                        })
                        .await;
                    if sent.is_err() {
                        break;
                    }
                    // Pacing only (keeps ten writers under the per-peer
                    // rate limit); nothing waits on it.
                    tokio::time::sleep(Duration::from_millis(4)).await;
                }
                seq
            }));
        }

        // Kill at a different point of the stream every cycle, once the
        // server is visibly fanning updates out.
        let threshold = 150 + rng.below(400);
        clients[0]
            .wait_state("updates from the other clients", |s| {
                s.updates_received >= threshold
            })
            .await;
        server.kill9().await;
        stop.stop();
        for (i, l) in loops.into_iter().enumerate() {
            next_seq[i] = within(TIMEOUT, "edit loop to stop", l)
                .await
                .expect("edit loop panicked");
        }
        for c in &clients {
            c.wait_ended().await;
        }

        // Everything a client holds from another client came from the server.
        let mut seen_this_cycle = 0;
        for (i, doc) in docs.iter().enumerate() {
            let prefix = own_prefix(i);
            for k in map_keys(doc, MAP) {
                if !k.starts_with(&prefix) && required.insert(k) {
                    seen_this_cycle += 1;
                }
            }
        }
        assert!(
            seen_this_cycle > 0,
            "cycle {cycle}: clients saw no new updates"
        );
        drop(clients);

        server.restart().await;

        // A fresh client, before any old one reconnects and re-uploads:
        // only what the server recovered from disk.
        let verifier = WsClient::connect(server.addr, ROOM, &format!("verifier{cycle}")).await;
        let first = verifier
            .state()
            .first_step2
            .expect("verifier's first SyncStep2");
        let recovered = map_keys(&doc_from_update(&first), MAP);
        let missing: Vec<&String> = required.difference(&recovered).collect();
        assert!(
            missing.is_empty(),
            "cycle {cycle}: {} of {} updates that clients had received were lost by the crash, e.g. {:?}",
            missing.len(),
            required.len(),
            &missing[..missing.len().min(10)]
        );
        verifier.close().await;
        eprintln!(
            "cycle {cycle}: {} keys required, {} recovered, {} generated",
            required.len(),
            recovered.len(),
            next_seq.iter().sum::<u64>()
        );
    }

    // Finally every client reconnects; its SyncStep2 uploads whatever it
    // generated that the server never stored, and all converge on every key
    // ever generated.
    let mut clients = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let c = WsClient::connect_doc(server.addr, ROOM, &format!("client{i}/final"), doc.clone())
            .await;
        clients.push(c);
    }
    let all: BTreeSet<String> = (0..CLIENTS)
        .flat_map(|i| (0..next_seq[i]).map(move |n| key(i, n)))
        .collect();
    for c in &clients {
        c.wait_until("every key ever generated", TIMEOUT, |d| {
            map_keys(d, MAP).len() == all.len()
        })
        .await;
        assert_eq!(c.map_keys(MAP), all, "{} holds a different key set", c.name);
    }

    // And a graceful stop keeps it all too, telling the clients to come back.
    let status = server.terminate().await;
    assert!(
        status.success(),
        "server exited with {status:?} after SIGTERM"
    );
    for c in &clients {
        c.expect_close("SIGTERM", &[1012, 1001]).await;
    }
    server.restart().await;
    let last = WsClient::connect(server.addr, ROOM, "after-sigterm").await;
    assert_eq!(last.map_keys(MAP), all);
}

/// A large top-level text the server never typed (a plain Yjs client's
/// `Y.Text`), recovered from the update log alone after SIGKILL: the new
/// client gets all of it, and well within the usual timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_text_is_served_after_a_restart_from_the_log() {
    const BODY: &str = "body";
    const INSERTS: usize = 16;
    // No snapshot before the kill: the restart replays the log.
    let mut server = ProcessServer::start(&[
        "--compact-after-updates",
        "1000000",
        "--compact-after-bytes",
        "1073741824",
    ])
    .await;
    let writer = WsClient::connect(server.addr, "large-text", "writer").await;
    let observer = WsClient::connect(server.addr, "large-text", "observer").await;
    let mut rng = Rng::new(0x7E47);
    for i in 0..INSERTS {
        // 16 KiB per insert, at varying places, multi-byte characters too.
        let chunk = format!("<{i}é😀{}>", rng.letters(16 * 1024));
        // At the start, at the end, or before an earlier chunk (ASCII `<`:
        // never inside a character).
        let now = writer.text(BODY);
        let at = match i % 3 {
            0 => 0,
            1 => u32::MAX,
            _ => {
                let marks: Vec<usize> = now.match_indices('<').map(|(p, _)| p).collect();
                marks[rng.below(marks.len() as u64) as usize] as u32
            }
        };
        writer.insert_text(BODY, at, &chunk).await;
    }
    let expected = writer.text(BODY);
    assert!(expected.len() >= 256 * 1024, "{} bytes", expected.len());
    // The server stores before it broadcasts: once the observer has it
    // all, so does the log.
    observer
        .wait_until("the whole text", TIMEOUT, |d| {
            text_string(d, BODY) == expected
        })
        .await;
    server.kill9().await;
    writer.wait_ended().await;
    observer.wait_ended().await;

    server.restart().await;
    // `connect` waits for the first SyncStep2 within the usual timeout.
    let reader = WsClient::connect(server.addr, "large-text", "reader").await;
    let first = reader
        .state()
        .first_step2
        .expect("reader's first SyncStep2");
    let doc = doc_from_update(&first);
    let served = text_string(&doc, BODY);
    assert_eq!(served.len(), expected.len());
    assert!(served == expected, "the served text differs");
    assert_eq!(reader.text(BODY), expected);
    reader.close().await;
}
