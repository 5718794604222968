//! Crash and race cases of the MongoDB document store.

use super::*;
use crate::mongo::MongoStore;
use crate::testing::fixtures::{b, noise, snapshot};
use crate::testing::{drop_database, MongoServer};

async fn fresh() -> (Arc<MongoStore>, String) {
    let url = MongoServer::shared().fresh_database_url();
    let store = MongoStore::connect(&url).await.unwrap();
    (Arc::new(store), url)
}

async fn count(store: &MongoStore, coll: &str, filter: Document) -> u64 {
    store.coll(coll).count_documents(filter).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_larger_than_a_document_round_trips_through_chunks() {
    let (s, url) = fresh().await;
    let ids = s.append("d", vec![b("a"), b("b"), b("c")]).await.unwrap();
    let big = noise(20 << 20, 1);
    let snap = snapshot(big.clone(), ids[..2].to_vec(), 1);
    assert!(s.replace_snapshot("d", snap).await.unwrap());
    // 20 MiB + 16 bytes of ids = 3 parts of at most 8 MiB.
    assert_eq!(count(&s, DOC_SNAPSHOT_CHUNKS, doc! { "doc": "d" }).await, 3);
    let loaded = s.load("d").await.unwrap();
    let stored = loaded.snapshot.unwrap();
    assert_eq!(stored.seq, 1);
    assert_eq!(stored.covered, ids[..2]);
    assert!(stored.data == big, "snapshot data differs");
    assert_eq!(loaded.log.len(), 1);
    assert_eq!(loaded.log[0].id, ids[2]);
    assert_eq!(s.stats("d").await.unwrap().snapshot_bytes, 20 << 20);

    // A small successor is inline and removes the old chunks.
    assert!(s
        .replace_snapshot("d", snapshot(b("small"), vec![ids[2]], 2))
        .await
        .unwrap());
    assert_eq!(count(&s, DOC_SNAPSHOT_CHUNKS, doc! {}).await, 0);
    let loaded = s.load("d").await.unwrap();
    assert_eq!(&loaded.snapshot.unwrap().data[..], b"small");
    assert!(loaded.log.is_empty());
    drop_database(&url).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_larger_than_a_document_round_trips_through_chunks() {
    let (s, url) = fresh().await;
    let big = noise(17 << 20, 2);
    let ids = s
        .append("d", vec![b("x"), big.clone(), b("y")])
        .await
        .unwrap();
    assert_eq!(count(&s, DOC_LOG_CHUNKS, doc! { "doc": "d" }).await, 3);
    let loaded = s.load("d").await.unwrap();
    let datas: Vec<&[u8]> = loaded.log.iter().map(|e| &e.data[..]).collect();
    assert_eq!(datas.len(), 3);
    assert_eq!(datas[0], b"x");
    assert!(datas[1] == &big[..], "big update differs");
    assert_eq!(datas[2], b"y");
    let stats = s.stats("d").await.unwrap();
    assert_eq!(stats.log_entries, 3);
    assert_eq!(stats.log_bytes, (17 << 20) + 2);
    // Compacting it away removes its chunks too.
    assert!(s
        .replace_snapshot("d", snapshot(b("merged"), ids[..2].to_vec(), 1))
        .await
        .unwrap());
    assert_eq!(count(&s, DOC_LOG_CHUNKS, doc! {}).await, 0);
    let loaded = s.load("d").await.unwrap();
    assert_eq!(loaded.log.len(), 1);
    assert_eq!(loaded.log[0].id, ids[2]);
    drop_database(&url).await.unwrap();
}

/// A crash after the new snapshot's chunks were written but before its
/// header: the old snapshot still loads, and the stray chunks go with
/// the next successful replacement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_the_header_swap_keeps_the_old_snapshot() {
    let (s, url) = fresh().await;
    let ids = s.append("d", vec![b("a"), b("b")]).await.unwrap();
    let old = noise(9 << 20, 3);
    assert!(s
        .replace_snapshot("d", snapshot(old.clone(), vec![ids[0]], 1))
        .await
        .unwrap());
    // "Crash": chunks of seq 2 written, header never swapped.
    let doomed = snapshot(noise(12 << 20, 4), vec![ids[1]], 2);
    s.prepare_snapshot("d", &doomed).await.unwrap();
    assert_eq!(
        count(&s, DOC_SNAPSHOT_CHUNKS, doc! { "doc": "d", "seq": 2 }).await,
        2
    );
    let loaded = s.load("d").await.unwrap();
    let stored = loaded.snapshot.unwrap();
    assert_eq!(stored.seq, 1);
    assert!(stored.data == old, "old snapshot damaged");
    assert_eq!(loaded.log.len(), 1);
    assert_eq!(loaded.log[0].id, ids[1]);

    // The retry after the restart writes seq 2 for real.
    let retry = snapshot(noise(10 << 20, 5), vec![ids[1]], 2);
    assert!(s.replace_snapshot("d", retry.clone()).await.unwrap());
    let loaded = s.load("d").await.unwrap();
    assert!(loaded.snapshot.unwrap().data == retry.data);
    assert!(loaded.log.is_empty());
    // Only the winner's two parts are left.
    assert_eq!(count(&s, DOC_SNAPSHOT_CHUNKS, doc! {}).await, 2);
    drop_database(&url).await.unwrap();
}

/// A crash after the header swap but before the covered entries were
/// deleted: loading skips them (and deletes them), nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_header_swap_leaves_covered_entries_skipped() {
    let (s, url) = fresh().await;
    let ids = s.append("d", vec![b("a"), b("b"), b("c")]).await.unwrap();
    let snap = snapshot(b("ab"), ids[..2].to_vec(), 1);
    let header = s.prepare_snapshot("d", &snap).await.unwrap();
    assert!(s.swap_header("d", &header).await.unwrap());
    assert_eq!(s.stats("d").await.unwrap().log_entries, 3);
    let loaded = s.load("d").await.unwrap();
    assert_eq!(&loaded.snapshot.unwrap().data[..], b"ab");
    assert_eq!(loaded.log.len(), 1);
    assert_eq!(loaded.log[0].id, ids[2]);
    // The load removed exactly the covered leftovers.
    assert_eq!(s.stats("d").await.unwrap().log_entries, 1);
    drop_database(&url).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_large_replacements_of_one_seq_one_wins_unmixed() {
    let (s, url) = fresh().await;
    let mut tasks = Vec::new();
    for i in 0..4u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let data = noise(9 << 20, 10 + i);
            let won = s
                .replace_snapshot("d", snapshot(data.clone(), Vec::new(), 1))
                .await
                .unwrap();
            (won, data)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (won, data) = t.await.unwrap();
        if won {
            winners.push(data);
        }
    }
    assert_eq!(winners.len(), 1);
    let loaded = s.load("d").await.unwrap().snapshot.unwrap();
    assert!(loaded.data == winners[0], "loaded data is not the winner's");
    assert_eq!(count(&s, DOC_SNAPSHOT_CHUNKS, doc! {}).await, 2);
    drop_database(&url).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lease_takers_one_wins() {
    let (s, url) = fresh().await;
    for round in 0..10 {
        let doc = format!("d{round}");
        let mut tasks = Vec::new();
        for h in 0..8 {
            let s = s.clone();
            let doc = doc.clone();
            tasks.push(tokio::spawn(async move {
                s.try_lease(&doc, &format!("h{h}"), Duration::from_secs(60))
                    .await
                    .unwrap()
            }));
        }
        let mut taken = 0;
        for t in tasks {
            taken += t.await.unwrap() as u32;
        }
        assert_eq!(taken, 1, "round {round}");
    }
    drop_database(&url).await.unwrap();
}

/// Loads racing with appends and compactions always see every update
/// (in the snapshot or the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_during_compactions_lose_nothing() {
    let (s, url) = fresh().await;
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            // The "snapshot" is the sorted list of merged updates.
            for round in 0..30u32 {
                s.append("d", vec![b(&format!("u{round:03}"))])
                    .await
                    .unwrap();
                let doc = s.load("d").await.unwrap();
                let (mut all, seq) = match &doc.snapshot {
                    Some(snap) => (String::from_utf8(snap.data.to_vec()).unwrap(), snap.seq + 1),
                    None => (String::new(), 1),
                };
                for e in &doc.log {
                    all.push_str(std::str::from_utf8(&e.data).unwrap());
                }
                let snap = Snapshot {
                    data: Bytes::from(all),
                    covered: doc.log.iter().map(|e| e.id).collect(),
                    seq,
                };
                assert!(s.replace_snapshot("d", snap).await.unwrap());
            }
        })
    };
    let mut seen = 0;
    while !writer.is_finished() {
        let doc = s.load("d").await.unwrap();
        let mut all = doc
            .snapshot
            .map(|snap| String::from_utf8(snap.data.to_vec()).unwrap())
            .unwrap_or_default();
        for e in &doc.log {
            all.push_str(std::str::from_utf8(&e.data).unwrap());
        }
        let count = all.len() / 4;
        // Every update up to the newest one seen is there, once.
        let want: String = (0..count).map(|i| format!("u{i:03}")).collect();
        assert_eq!(all, want);
        assert!(count >= seen, "went back from {seen} to {count}");
        seen = count;
    }
    writer.await.unwrap();
    drop_database(&url).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_name_comes_from_the_url() {
    let server = MongoServer::shared();
    let store = MongoStore::connect(&server.url).await.unwrap();
    assert_eq!(store.database_name(), DEFAULT_DATABASE);
    let url = server.database_url("named_db");
    let store = MongoStore::connect(&url).await.unwrap();
    assert_eq!(store.database_name(), "named_db");
    drop_database(&url).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_refuses_later_work() {
    let (s, url) = fresh().await;
    s.append("d", vec![b("a")]).await.unwrap();
    s.ping().await.unwrap();
    s.close().await;
    assert!(matches!(
        s.append("d", vec![b("b")]).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(s.ping().await, Err(StoreError::Closed)));
    drop_database(&url).await.unwrap();
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    // Port 9 (discard) on loopback: nothing answers MongoDB there.
    let r = MongoStore::connect("mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300").await;
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{:?}",
        r.err()
    );
    let r = MongoStore::connect("not a url").await;
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{:?}",
        r.err()
    );
}
