//! Compaction under a stream of small updates: the log is folded into a
//! snapshot, nothing is lost, and a restarted server serves exactly what
//! the clients hold.

mod support;

use support::*;
use yrs::{Map, Text, WriteTxn};

const ROOM: &str = "compaction";
const CLIENTS: usize = 3;
const EDITS_PER_CLIENT: usize = 1000;
const COMPACT_AFTER: u64 = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_updates_compact_and_survive_restart() {
    let mut server = Server::open_with(|c| {
        c.compaction.after_updates = COMPACT_AFTER;
        // Let the clients go as fast as they can.
        c.limits.max_messages_per_sec = 1_000_000;
    })
    .await;

    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        clients.push(WsClient::connect(server.addr, ROOM, &format!("client{i}")).await);
    }
    let before = metrics(server.addr).await;
    let compactions_before = before.get("coform_compactions_total");
    let updates_in_before = before.get("coform_updates_in_total");
    assert_eq!(
        compactions_before, 0.0,
        "a new server has compacted already"
    );

    // Small concurrent updates: text inserts at random positions, some
    // deletions, and map keys that are overwritten again and again (so the
    // snapshot has tombstones to handle).
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(77 + i as u64);
            let mut sent_bytes = 0usize;
            for n in 0..EDITS_PER_CLIENT {
                let pos = rng.below(10_000) as u32;
                let del = if n % 5 == 4 {
                    Some(rng.below(10_000) as u32)
                } else {
                    None
                };
                let chunk_len = 1 + rng.below(3) as usize;
                let chunk = rng.letters(chunk_len);
                let key = format!("k{i}-{}", n % 40);
                let update = client
                    .edit(move |txn| {
                        let text = txn.get_or_insert_text("text");
                        if let Some(d) = del {
                            let len = text.len(txn);
                            if len > 0 {
                                text.remove_range(txn, d % len, 1);
                            }
                        }
                        let len = text.len(txn);
                        text.insert(txn, pos % (len + 1), &chunk);
                        if n % 3 == 0 {
                            txn.get_or_insert_map("map").insert(txn, key, n as i64);
                        }
                    })
                    .await;
                sent_bytes += update.len();
            }
            (client, sent_bytes)
        }));
    }
    let mut clients = Vec::new();
    let mut sent_bytes = 0;
    for t in tasks {
        let (c, b) = t.await.expect("edit task");
        clients.push(c);
        sent_bytes += b;
    }
    let total_updates = (CLIENTS * EDITS_PER_CLIENT) as u64;

    let target = merged_state_vector(&clients.iter().map(|c| &c.doc).collect::<Vec<_>>());
    for c in &clients {
        c.wait_until("all updates of all clients", TIMEOUT, |d| {
            covers(d, &target)
        })
        .await;
    }
    let text = clients[0].text("text");
    let map = clients[0].map_json("map");
    for c in &clients {
        assert_eq!(c.text("text"), text, "{} diverged", c.name);
        assert_eq!(c.map_json("map"), map, "{} diverged", c.name);
    }
    assert!(!text.is_empty());

    let compactions = wait_metric(server.addr, "coform_compactions_total", TIMEOUT, |v| {
        v > 0.0
    })
    .await;
    let m = metrics(server.addr).await;
    assert!(
        m.get("coform_updates_in_total") - updates_in_before >= total_updates as f64,
        "server counted fewer updates than were sent: {}",
        m.get("coform_updates_in_total")
    );
    assert!(
        m.get("coform_compactions_total") >= compactions,
        "compaction counter went backwards"
    );

    server.stop().await;
    // A graceful stop tells the clients the server is going away.
    for c in &clients {
        c.expect_close("shutdown", &[1001, 1012]).await;
    }

    // The log has been folded into a snapshot.
    {
        let store = server.open_store().await;
        let stats = store.stats(ROOM).await.expect("stats");
        eprintln!("after {total_updates} updates ({sent_bytes} bytes): {stats:?}");
        assert!(
            stats.log_entries < total_updates / 3,
            "log still has {} entries after {total_updates} updates with compaction every {COMPACT_AFTER}",
            stats.log_entries
        );
        assert!(stats.snapshot_bytes > 0, "no snapshot stored: {stats:?}");
        assert!(
            ((stats.snapshot_bytes + stats.log_bytes) as usize) < sent_bytes,
            "stored {stats:?} is not smaller than the {sent_bytes} bytes of updates sent"
        );
        store.close().await;
    }

    server.start_again().await;
    let fresh = WsClient::connect(server.addr, ROOM, "fresh").await;
    let first = fresh.state().first_step2.expect("first SyncStep2");
    let restored = doc_from_update(&first);
    assert_eq!(
        text_string(&restored, "text"),
        text,
        "restored text differs"
    );
    assert_eq!(map_json(&restored, "map"), map, "restored map differs");
    assert!(
        covers(&restored, &target),
        "restored state vector is behind the clients'"
    );

    // The old clients reconnect and have nothing to catch up on.
    for c in clients {
        let c = c.reconnect(server.addr).await;
        c.round_trip().await;
        assert_eq!(c.text("text"), text);
        assert_eq!(c.state().updates_received, 0);
    }
}

/// After a restart a document whose log was folded into a snapshot is
/// served from the snapshot while the room is still building it: clients
/// that join at once and edit right away all get the stored state, all of
/// each other's edits, and everything is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_joining_while_a_snapshot_loads_get_it_and_keep_editing() {
    const DOC: &str = "snapshot-joiners";
    const JOINERS: usize = 20;
    let mut server = Server::open().await;
    let writer = WsClient::connect(server.addr, DOC, "writer").await;
    for i in 0..200 {
        writer
            .edit(move |txn| {
                let text = txn.get_or_insert_text("text");
                let len = text.len(txn);
                text.insert(txn, len, &format!("line {i}\n"));
            })
            .await;
    }
    writer.round_trip().await;
    let text = writer.text("text");
    writer.close().await;
    server.stop().await;
    {
        let store = server.open_store().await;
        let stats = store.stats(DOC).await.expect("stats");
        assert_eq!(
            stats.log_entries, 0,
            "shutdown should fold the log into a snapshot: {stats:?}"
        );
        assert!(stats.snapshot_bytes > 0, "{stats:?}");
        store.close().await;
    }

    server.start_again().await;
    let mut tasks = Vec::new();
    for i in 0..JOINERS {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let c = WsClient::connect(addr, DOC, &format!("joiner{i}")).await;
            c.edit(move |txn| {
                txn.get_or_insert_map("joined")
                    .insert(txn, format!("j{i}"), i as i64);
            })
            .await;
            c
        }));
    }
    let mut joiners = Vec::new();
    for t in tasks {
        joiners.push(t.await.expect("joiner task"));
    }
    for c in &joiners {
        assert_eq!(
            c.text("text"),
            text,
            "{} did not get the stored text",
            c.name
        );
        c.wait_map_len("joined", JOINERS).await;
    }
    for c in &joiners {
        c.close().await;
    }
    server.stop().await;
    server.start_again().await;
    let fresh = WsClient::connect(server.addr, DOC, "fresh").await;
    assert_eq!(fresh.text("text"), text);
    assert_eq!(map_keys(&fresh.doc, "joined").len(), JOINERS);
}
