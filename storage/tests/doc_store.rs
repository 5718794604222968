//! The `DocStore` contract, run against every backend.
//!
//! Each test is an async fn over `Arc<dyn DocStore>`; `suite!` (see
//! `support`) instantiates it once per backend.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coform_storage::embedded::EmbeddedStore;
use coform_storage::{DocStats, DocStore, Durability, EntryId, StoreError};

#[macro_use]
mod support;
use support::*;

type Store = Arc<dyn DocStore>;

suite!(
    unknown_document_is_empty,
    append_returns_increasing_ids_and_load_keeps_order,
    append_nothing_is_a_no_op,
    documents_are_independent,
    replace_snapshot_is_a_compare_and_swap,
    replace_snapshot_deletes_exactly_the_covered_entries,
    delete_removes_everything_and_frees_the_lease,
    a_tombstoned_document_stays_deleted,
    appends_racing_a_tombstone_leave_no_log_behind,
    stats_count_log_and_snapshot,
    lease_excludes_other_holders,
    lease_expires,
    concurrent_appends_keep_per_task_order,
    a_load_racing_compactions_sees_every_entry,
    ping_answers,
);

fn datas(store: &coform_storage::StoredDoc) -> Vec<&[u8]> {
    store.log.iter().map(|e| &e.data[..]).collect()
}

async fn unknown_document_is_empty(s: Store) {
    let doc = s.load("nothing-here").await.unwrap();
    assert!(doc.is_empty());
    assert_eq!(doc.byte_len(), 0);
    assert_eq!(s.stats("nothing-here").await.unwrap(), DocStats::default());
    // Deleting an unknown document is fine.
    s.delete("nothing-here").await.unwrap();
}

async fn append_returns_increasing_ids_and_load_keeps_order(s: Store) {
    let first = s.append("d", vec![b("a"), b("b"), b("c")]).await.unwrap();
    let second = s.append("d", vec![b("d")]).await.unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(second.len(), 1);
    assert!(first.windows(2).all(|w| w[0] < w[1]));
    assert!(first[2] < second[0]);
    let doc = s.load("d").await.unwrap();
    assert!(doc.snapshot.is_none());
    assert_eq!(datas(&doc), [b"a", b"b", b"c", b"d"]);
    let ids: Vec<EntryId> = doc.log.iter().map(|e| e.id).collect();
    assert_eq!(ids, [first, second].concat());
    assert_eq!(doc.byte_len(), 4);
    // Binary data (not UTF-8, with NULs) round-trips.
    let raw = Bytes::from_static(&[0, 159, 146, 150, 0, 255]);
    s.append("bin", vec![raw.clone()]).await.unwrap();
    assert_eq!(s.load("bin").await.unwrap().log[0].data, raw);
}

async fn append_nothing_is_a_no_op(s: Store) {
    assert!(s.append("d", Vec::new()).await.unwrap().is_empty());
    assert!(s.load("d").await.unwrap().is_empty());
}

async fn documents_are_independent(s: Store) {
    s.append("one", vec![b("1")]).await.unwrap();
    let two = s.append("two", vec![b("2"), b("22")]).await.unwrap();
    assert!(s
        .replace_snapshot("two", snapshot(b("snap"), two, 1))
        .await
        .unwrap());
    let one = s.load("one").await.unwrap();
    assert!(one.snapshot.is_none());
    assert_eq!(datas(&one), [b"1"]);
    s.delete("two").await.unwrap();
    assert_eq!(datas(&s.load("one").await.unwrap()), [b"1"]);
    // Names that look alike are different documents.
    assert!(s.load("ONE").await.unwrap().is_empty());
    assert!(s.load("one ").await.unwrap().is_empty());
}

async fn replace_snapshot_is_a_compare_and_swap(s: Store) {
    let snap = |data: &str, seq: u64| snapshot(b(data), Vec::new(), seq);
    // The first snapshot must be seq 1.
    assert!(!s.replace_snapshot("d", snap("x", 2)).await.unwrap());
    assert!(!s.replace_snapshot("d", snap("x", 0)).await.unwrap());
    assert!(s.load("d").await.unwrap().snapshot.is_none());
    assert!(s.replace_snapshot("d", snap("v1", 1)).await.unwrap());
    // A second compactor that read "no snapshot" loses.
    assert!(!s.replace_snapshot("d", snap("lost", 1)).await.unwrap());
    assert!(!s.replace_snapshot("d", snap("skip", 3)).await.unwrap());
    let loaded = s.load("d").await.unwrap().snapshot.unwrap();
    assert_eq!((&loaded.data[..], loaded.seq), (&b"v1"[..], 1));
    assert!(s.replace_snapshot("d", snap("v2", 2)).await.unwrap());
    let loaded = s.load("d").await.unwrap().snapshot.unwrap();
    assert_eq!((&loaded.data[..], loaded.seq), (&b"v2"[..], 2));

    // Racing compactors on the same generation: exactly one wins.
    let wins = at_once(8, |i| {
        let s = s.clone();
        async move { s.replace_snapshot("d", snap(&format!("r{i}"), 3)).await }
    })
    .await;
    assert_eq!(
        wins.into_iter()
            .filter(|won| *won.as_ref().unwrap())
            .count(),
        1
    );
    assert_eq!(s.load("d").await.unwrap().snapshot.unwrap().seq, 3);
}

async fn replace_snapshot_deletes_exactly_the_covered_entries(s: Store) {
    let ids = s.append("d", vec![b("a"), b("b"), b("c")]).await.unwrap();
    // Compaction read a and c; b and a later append are not covered.
    let later = s.append("d", vec![b("d")]).await.unwrap();
    let covered = vec![ids[0], ids[2]];
    assert!(s
        .replace_snapshot("d", snapshot(b("ac"), covered.clone(), 1))
        .await
        .unwrap());
    let doc = s.load("d").await.unwrap();
    let snap = doc.snapshot.as_ref().unwrap();
    assert_eq!(&snap.data[..], b"ac");
    assert_eq!(snap.covered, covered);
    assert_eq!(datas(&doc), [b"b", b"d"]);
    assert_eq!(doc.log[1].id, later[0]);
    assert_eq!(doc.byte_len(), 4);

    // A losing compaction deletes nothing.
    assert!(!s
        .replace_snapshot("d", snapshot(b("lost"), vec![ids[1], later[0]], 1))
        .await
        .unwrap());
    assert_eq!(datas(&s.load("d").await.unwrap()), [b"b", b"d"]);

    // Covered ids of another document are not touched.
    let other = s.append("other", vec![b("o")]).await.unwrap();
    assert!(s
        .replace_snapshot(
            "d",
            snapshot(b("abcd"), vec![ids[1], later[0], other[0]], 2),
        )
        .await
        .unwrap());
    let doc = s.load("d").await.unwrap();
    assert!(doc.log.is_empty());
    assert_eq!(&doc.snapshot.unwrap().data[..], b"abcd");
    assert_eq!(datas(&s.load("other").await.unwrap()), [b"o"]);
}

async fn delete_removes_everything_and_frees_the_lease(s: Store) {
    let ids = s.append("d", vec![b("a"), b("b")]).await.unwrap();
    assert!(s
        .replace_snapshot("d", snapshot(b("a"), vec![ids[0]], 1))
        .await
        .unwrap());
    assert!(take(&s, "d", "compactor", Duration::from_secs(60)).await);
    s.delete("d").await.unwrap();
    assert!(s.load("d").await.unwrap().is_empty());
    assert_eq!(s.stats("d").await.unwrap(), DocStats::default());
    assert!(take(&s, "d", "someone-else", Duration::from_secs(60)).await);
    // A recreated document starts over: its first snapshot is seq 1.
    s.append("d", vec![b("new")]).await.unwrap();
    assert!(s
        .replace_snapshot("d", snapshot(b("new"), Vec::new(), 1))
        .await
        .unwrap());
}

/// A document deleted for good refuses every later write and load, and
/// nothing of it is left; other documents are untouched.
async fn a_tombstoned_document_stays_deleted(s: Store) {
    let ids = s.append("d", vec![b("a"), b("b")]).await.unwrap();
    assert!(s
        .replace_snapshot("d", snapshot(b("ab"), ids.clone(), 1))
        .await
        .unwrap());
    s.append("d", vec![b("c")]).await.unwrap();
    s.append("other", vec![b("x")]).await.unwrap();
    s.tombstone("d").await.unwrap();

    fn deleted<T>(r: &Result<T, StoreError>) -> bool {
        matches!(r, Err(StoreError::Deleted(d)) if d == "d")
    }
    let appended = s.append("d", vec![b("late")]).await;
    assert!(
        deleted(&appended),
        "append after the tombstone: {appended:?}"
    );
    let loaded = s.load("d").await.map(|_| ());
    assert!(deleted(&loaded), "load after the tombstone: {loaded:?}");
    let replaced = s.replace_snapshot("d", snapshot(b("z"), vec![], 2)).await;
    assert!(
        deleted(&replaced),
        "snapshot after the tombstone: {replaced:?}"
    );
    assert_eq!(s.stats("d").await.unwrap(), DocStats::default());
    // Burying twice is fine; the neighbour is untouched.
    s.tombstone("d").await.unwrap();
    s.tombstone("never-existed").await.unwrap();
    assert!(deleted(&s.append("d", vec![b("again")]).await));
    assert_eq!(datas(&s.load("other").await.unwrap()), [b"x"]);
}

/// Appends running while the document is deleted for good either commit
/// before it (and go with it) or fail: no log of it survives.
async fn appends_racing_a_tombstone_leave_no_log_behind(s: Store) {
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    match s.append("d", vec![b(&format!("{t}-{i}"))]).await {
                        Ok(_) => {}
                        Err(StoreError::Deleted(_)) => return,
                        Err(e) => panic!("append failed: {e}"),
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    s.append("d", vec![b("first")]).await.unwrap();
    s.tombstone("d").await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(s.stats("d").await.unwrap(), DocStats::default());
    assert!(matches!(s.load("d").await, Err(StoreError::Deleted(_))));
}

async fn stats_count_log_and_snapshot(s: Store) {
    let ids = s
        .append("d", vec![b("aaaa"), b("bb"), b("c")])
        .await
        .unwrap();
    assert_eq!(
        s.stats("d").await.unwrap(),
        DocStats {
            log_entries: 3,
            log_bytes: 7,
            snapshot_bytes: 0,
        }
    );
    assert!(s
        .replace_snapshot("d", snapshot(b("snapshot!"), ids[..2].to_vec(), 1))
        .await
        .unwrap());
    assert_eq!(
        s.stats("d").await.unwrap(),
        DocStats {
            log_entries: 1,
            log_bytes: 1,
            snapshot_bytes: 9,
        }
    );
    let loaded = s.load("d").await.unwrap();
    assert_eq!(loaded.byte_len(), 10);
}

async fn lease_excludes_other_holders(s: Store) {
    let long = Duration::from_secs(60);
    assert!(take(&s, "d", "a", long).await);
    assert!(!take(&s, "d", "b", long).await);
    // The holder may renew; other documents are separate.
    assert!(take(&s, "d", "a", long).await);
    assert!(take(&s, "other", "b", long).await);
    // Releasing by a non-holder does nothing.
    s.release_lease("d", "b").await.unwrap();
    assert!(!take(&s, "d", "b", long).await);
    s.release_lease("d", "a").await.unwrap();
    assert!(take(&s, "d", "b", long).await);
    assert!(!take(&s, "d", "a", long).await);
    // Releasing what nobody holds is fine.
    s.release_lease("free", "a").await.unwrap();
}

/// Whether `holder` takes the lease on `doc` for `ttl`.
async fn take(s: &Store, doc: &str, holder: &str, ttl: Duration) -> bool {
    s.try_lease(doc, holder, ttl).await.unwrap()
}

async fn lease_expires(s: Store) {
    assert!(take(&s, "d", "a", Duration::from_millis(200)).await);
    assert!(!take(&s, "d", "b", Duration::from_secs(60)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(take(&s, "d", "b", Duration::from_secs(60)).await);
    assert!(!take(&s, "d", "a", Duration::from_secs(60)).await);
}

async fn concurrent_appends_keep_per_task_order(s: Store) {
    at_once(8, |t| {
        let s = s.clone();
        async move {
            let mut last = EntryId(0);
            for i in 0..25 {
                let id = s.append("d", vec![b(&format!("{t}-{i}"))]).await.unwrap()[0];
                assert!(id > last);
                last = id;
            }
        }
    })
    .await;
    let doc = s.load("d").await.unwrap();
    assert_eq!(doc.log.len(), 200);
    assert!(doc.log.windows(2).all(|w| w[0].id < w[1].id));
    // Each task's entries appear in the order it appended them.
    for t in 0..8 {
        let prefix = format!("{t}-");
        let mine: Vec<String> = doc
            .log
            .iter()
            .map(|e| String::from_utf8(e.data.to_vec()).unwrap())
            .filter(|d| d.starts_with(&prefix))
            .collect();
        let want: Vec<String> = (0..25).map(|i| format!("{t}-{i}")).collect();
        assert_eq!(mine, want);
    }
}

/// A load that runs while compactions fold the log into new snapshots
/// must see every entry appended before it began: in the new snapshot, in
/// the log, or both, never in neither (a snapshot read before a
/// compaction and a log read after it would lose what that compaction
/// folded).
async fn a_load_racing_compactions_sees_every_entry(s: Store) {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const ROUNDS: u64 = 150;
    let appended = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // A fast store (the memory one) could finish every round before a
    // reader is first scheduled: halfway, the writer waits for a load.
    let loaded = Arc::new(tokio::sync::Notify::new());

    let writer = {
        let (s, appended, done, loaded) =
            (s.clone(), appended.clone(), done.clone(), loaded.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for round in 1..=ROUNDS {
                if round == ROUNDS / 2 {
                    loaded.notified().await;
                }
                ids.extend(s.append("d", vec![b(&format!("e{round}"))]).await.unwrap());
                appended.store(round, Ordering::SeqCst);
                // The snapshot holds every entry so far; it covers them all.
                let names: Vec<String> = (1..=round).map(|r| format!("e{r}")).collect();
                let snap = snapshot(Bytes::from(names.join(",")), ids.clone(), round);
                assert!(s.replace_snapshot("d", snap).await.unwrap());
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let readers = at_once(3, |_| {
        let (s, appended, done, loaded) =
            (s.clone(), appended.clone(), done.clone(), loaded.clone());
        async move {
            let mut loads = 0;
            while !done.load(Ordering::SeqCst) {
                let before = appended.load(Ordering::SeqCst);
                let doc = s.load("d").await.unwrap();
                let mut seen: BTreeSet<String> = doc
                    .log
                    .iter()
                    .map(|e| String::from_utf8(e.data.to_vec()).unwrap())
                    .collect();
                if let Some(snap) = &doc.snapshot {
                    let text = String::from_utf8(snap.data.to_vec()).unwrap();
                    seen.extend(text.split(',').filter(|n| !n.is_empty()).map(str::to_owned));
                }
                for r in 1..=before {
                    assert!(
                        seen.contains(&format!("e{r}")),
                        "load {loads} lost e{r} of {before}: snapshot {:?}, log {:?}",
                        doc.snapshot.as_ref().map(|s| s.seq),
                        doc.log.iter().map(|e| e.id).collect::<Vec<_>>()
                    );
                }
                loads += 1;
                // Keeps a permit if the writer is not waiting yet.
                loaded.notify_one();
                // A memory store's load never waits: without this the
                // readers could hold every worker thread and starve the
                // writer they just woke.
                tokio::task::yield_now().await;
            }
            loads
        }
    })
    .await;
    writer.await.unwrap();
    assert!(
        readers.iter().sum::<u64>() > 0,
        "no load ran during the compactions"
    );
}

async fn ping_answers(s: Store) {
    s.ping().await.unwrap();
}

// ---------------------------------------------------------------- embedded only

#[tokio::test]
async fn embedded_keeps_everything_across_reopen_and_refuses_writes_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let (kept, covered) = {
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let ids = store.append("d", vec![b("a"), b("b")]).await.unwrap();
        assert!(store
            .replace_snapshot("d", snapshot(b("a"), vec![ids[0]], 1))
            .await
            .unwrap());
        store.close().await;
        assert!(matches!(
            store.append("d", vec![b("late")]).await,
            Err(StoreError::Closed)
        ));
        assert!(matches!(store.ping().await, Err(StoreError::Closed)));
        (ids[1], ids[0])
    };
    let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
    let doc = store.load("d").await.unwrap();
    let snap = doc.snapshot.unwrap();
    assert_eq!((&snap.data[..], snap.seq), (&b"a"[..], 1));
    assert_eq!(snap.covered, [covered]);
    assert_eq!(doc.log.len(), 1);
    assert_eq!(doc.log[0].id, kept);
    // Ids keep growing after a reopen.
    let next = store.append("d", vec![b("c")]).await.unwrap();
    assert!(next[0] > kept);
}
