//! The embedded store's [`DocStore`]: snapshots and the update log.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{params, Connection};

use super::{EmbeddedStore, IdCounter};
use crate::doc::{DocStats, DocStore, EntryId, LogEntry, Snapshot, StoredDoc};
use crate::error::{Result, StoreError};

/// Fails with [`StoreError::Deleted`] if `doc` has a tombstone. Run in
/// the same transaction as the write it guards: the single writer makes
/// the check and the write one step.
fn refuse_deleted(conn: &Connection, doc: &str) -> Result<()> {
    let deleted = conn
        .prepare_cached("SELECT 1 FROM doc_tombstone WHERE doc = ?1")?
        .exists(params![doc])?;
    if deleted {
        return Err(StoreError::Deleted(doc.to_owned()));
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Removes a document's log and snapshot (deletion and tombstone alike),
/// recording the id counter first so deleted ids are never handed out again.
fn remove_content(conn: &Connection, ids: &IdCounter, doc: &str) -> Result<()> {
    ids.record(conn)?;
    conn.execute("DELETE FROM doc_log WHERE doc = ?1", params![doc])?;
    conn.execute("DELETE FROM doc_snapshot WHERE doc = ?1", params![doc])?;
    Ok(())
}

/// Writes snapshot `seq` if the current one is `seq - 1`, deleting the
/// entries it covers. Returns whether it was written.
fn write_snapshot(
    conn: &Connection,
    ids: &IdCounter,
    doc: &str,
    snapshot: &Snapshot,
) -> Result<bool> {
    refuse_deleted(conn, doc)?;
    let current: i64 = conn
        .prepare_cached("SELECT seq FROM doc_snapshot WHERE doc = ?1")?
        .query_row(params![doc], |r| r.get(0))
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(0),
            e => Err(e),
        })?;
    if current as u64 + 1 != snapshot.seq {
        return Ok(false);
    }
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO doc_snapshot (doc, data, covered, seq, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(doc) DO UPDATE SET data = excluded.data,
           covered = excluded.covered, seq = excluded.seq,
           updated_at = excluded.updated_at",
    )?
    .execute(params![
        doc,
        &snapshot.data[..],
        encode_ids(&snapshot.covered),
        snapshot.seq as i64,
        now
    ])?;
    ids.record(conn)?;
    delete_covered(conn, doc, &snapshot.covered)?;
    Ok(true)
}

/// Deletes exactly the log entries `covered`. They are normally every entry
/// of the document up to the newest of them (ids only grow, and the
/// compactor read all of them), so one range delete on the index does it;
/// if the range holds any other entry, that delete is undone and they are
/// deleted one by one.
fn delete_covered(conn: &Connection, doc: &str, covered: &[EntryId]) -> Result<()> {
    let Some(max) = covered.iter().map(|id| id.0).max() else {
        return Ok(());
    };
    conn.execute_batch("SAVEPOINT delete_covered")?;
    let deleted = conn
        .prepare_cached("DELETE FROM doc_log WHERE doc = ?1 AND id <= ?2")?
        .execute(params![doc, max as i64])?;
    if deleted == covered.len() {
        conn.execute_batch("RELEASE delete_covered")?;
        return Ok(());
    }
    conn.execute_batch("ROLLBACK TO delete_covered; RELEASE delete_covered")?;
    let mut del = conn.prepare_cached("DELETE FROM doc_log WHERE id = ?1 AND doc = ?2")?;
    for id in covered {
        del.execute(params![id.0 as i64, doc])?;
    }
    Ok(())
}

fn encode_ids(ids: &[EntryId]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.0.to_le_bytes()).collect()
}

fn decode_ids(raw: &[u8]) -> Result<Vec<EntryId>> {
    if !raw.len().is_multiple_of(8) {
        return Err(StoreError::Corrupt(
            "snapshot covered-id list has a ragged length".into(),
        ));
    }
    Ok(raw
        .chunks_exact(8)
        .map(|c| EntryId(u64::from_le_bytes(c.try_into().expect("8-byte chunk"))))
        .collect())
}

#[async_trait]
impl DocStore for EmbeddedStore {
    async fn load(&self, doc: &str) -> Result<StoredDoc> {
        let doc = doc.to_owned();
        self.read(move |conn| {
            // One read transaction: the snapshot and the log come from the
            // same state of the database. Read one by one, a compaction
            // committing in between would leave an old snapshot and a log
            // without the entries the new snapshot folded in.
            let tx = conn.unchecked_transaction()?;
            refuse_deleted(&tx, &doc)?;
            let snapshot = tx
                .prepare_cached("SELECT data, covered, seq FROM doc_snapshot WHERE doc = ?1")?
                .query_row(params![doc], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            let snapshot = match snapshot {
                Some((data, covered, seq)) => Some(Snapshot {
                    data: Bytes::from(data),
                    covered: decode_ids(&covered)?,
                    seq: seq as u64,
                }),
                None => None,
            };
            let covered: HashSet<EntryId> = snapshot
                .as_ref()
                .map(|s| s.covered.iter().copied().collect())
                .unwrap_or_default();
            let mut stmt =
                tx.prepare_cached("SELECT id, data FROM doc_log WHERE doc = ?1 ORDER BY id")?;
            let rows = stmt.query_map(params![doc], |r| {
                Ok(LogEntry {
                    id: EntryId(r.get::<_, i64>(0)? as u64),
                    data: Bytes::from(r.get::<_, Vec<u8>>(1)?),
                })
            })?;
            let mut log = Vec::new();
            for row in rows {
                let entry = row?;
                if !covered.contains(&entry.id) {
                    log.push(entry);
                }
            }
            drop(stmt);
            tx.commit()?;
            Ok(StoredDoc { snapshot, log })
        })
        .await
    }

    async fn append(&self, doc: &str, updates: Vec<Bytes>) -> Result<Vec<EntryId>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let doc = doc.to_owned();
        let counter = self.inner.ids.clone();
        self.write(move |conn| {
            refuse_deleted(conn, &doc)?;
            let mut stmt =
                conn.prepare_cached("INSERT INTO doc_log (doc, id, data) VALUES (?1, ?2, ?3)")?;
            let mut ids = Vec::with_capacity(updates.len());
            for u in &updates {
                let id = counter.take();
                stmt.execute(params![doc, id as i64, &u[..]])?;
                ids.push(EntryId(id));
            }
            Ok(ids)
        })
        .await
    }

    async fn replace_snapshot(&self, doc: &str, snapshot: Snapshot) -> Result<bool> {
        let doc = doc.to_owned();
        let ids = self.inner.ids.clone();
        self.write(move |conn| write_snapshot(conn, &ids, &doc, &snapshot))
            .await
    }

    async fn delete(&self, doc: &str) -> Result<()> {
        let doc_owned = doc.to_owned();
        let ids = self.inner.ids.clone();
        self.write(move |conn| remove_content(conn, &ids, &doc_owned))
            .await?;
        self.inner.leases.forget(doc);
        Ok(())
    }

    async fn tombstone(&self, doc: &str) -> Result<()> {
        let doc_owned = doc.to_owned();
        let ids = self.inner.ids.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO doc_tombstone (doc, deleted_at) VALUES (?1, ?2)",
                params![doc_owned, now_ms()],
            )?;
            remove_content(conn, &ids, &doc_owned)
        })
        .await?;
        self.inner.leases.forget(doc);
        Ok(())
    }

    async fn try_lease(&self, doc: &str, holder: &str, ttl: Duration) -> Result<bool> {
        Ok(self.inner.leases.try_take(doc, holder, ttl))
    }

    async fn release_lease(&self, doc: &str, holder: &str) -> Result<()> {
        self.inner.leases.release(doc, holder);
        Ok(())
    }

    async fn stats(&self, doc: &str) -> Result<DocStats> {
        let doc = doc.to_owned();
        self.read(move |conn| {
            let (entries, bytes): (i64, i64) = conn
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM doc_log WHERE doc = ?1",
                )?
                .query_row(params![doc], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let snap: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM doc_snapshot WHERE doc = ?1",
                )?
                .query_row(params![doc], |r| r.get(0))?;
            Ok(DocStats {
                log_entries: entries as u64,
                log_bytes: bytes as u64,
                snapshot_bytes: snap as u64,
            })
        })
        .await
    }

    /// Reads; and after a failed write (a full disk, say), also checks
    /// that the store can write again (`write_health`).
    async fn ping(&self) -> Result<()> {
        if self.inner.writer.lock().is_none() {
            return Err(StoreError::Closed);
        }
        self.write_health().await?;
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn close(&self) {
        self.shut_writer().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::{DB_FILE, WAL_RESTART_FRAMES};
    use crate::testing::fixtures::{at_once, b, snapshot};
    use crate::Durability;

    /// Probe rows written so far.
    async fn probes(store: &EmbeddedStore) -> i64 {
        store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT COALESCE(MAX(value), 0) FROM store_meta WHERE key = 'write_probe'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn after_a_failed_write_ping_proves_the_store_writes_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        store.ping().await.unwrap();
        assert_eq!(probes(&store).await, 0, "a healthy store's ping only reads");

        let failed: Result<()> = store
            .write(|_| Err(StoreError::Unavailable("disk I/O error".into())))
            .await;
        assert!(failed.is_err());
        // The failure is remembered: the next ping writes a probe row
        // (there is space here, so it succeeds) and clears it.
        store.ping().await.unwrap();
        assert_eq!(probes(&store).await, 1);
        store.ping().await.unwrap();
        assert_eq!(probes(&store).await, 1, "healthy again: no more probes");
    }

    #[tokio::test]
    async fn a_snapshot_deletes_exactly_the_entries_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let ids = store
            .append("d", vec![b("a"), b("b"), b("c")])
            .await
            .unwrap();
        // Not a prefix: the range up to the newest covered entry holds an
        // entry the snapshot does not cover, which must survive.
        let snap = snapshot(b("ac"), vec![ids[0], ids[2]], 1);
        assert!(store.replace_snapshot("d", snap).await.unwrap());
        let loaded = store.load("d").await.unwrap();
        let left: Vec<_> = loaded.log.iter().map(|e| e.id).collect();
        assert_eq!(left, vec![ids[1]]);
        store.close().await;
    }

    #[tokio::test]
    async fn ids_never_come_back_after_the_newest_entries_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let first = store.append("d", vec![b("a"), b("b")]).await.unwrap();
        let snap = snapshot(b("ab"), first.clone(), 1);
        assert!(store.replace_snapshot("d", snap).await.unwrap());
        let gone = store.append("e", vec![b("x")]).await.unwrap();
        store.delete("e").await.unwrap();
        store.close().await;
        drop(store);

        // The log is empty now; a restart must still not reuse an id the
        // snapshot of "d" covers (it would be skipped as covered: lost).
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let next = store.append("d", vec![b("c")]).await.unwrap();
        assert!(next[0] > gone[0] && next[0] > first[1], "{next:?}");
        let loaded = store.load("d").await.unwrap();
        assert_eq!(loaded.log.len(), 1);
        assert_eq!(&loaded.log[0].data[..], b"c");
        store.close().await;
    }

    #[tokio::test]
    async fn a_log_in_the_rowid_layout_is_migrated_with_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        {
            // The layout before the log was clustered by document.
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE doc_log (
                     id   INTEGER PRIMARY KEY AUTOINCREMENT,
                     doc  TEXT NOT NULL,
                     data BLOB NOT NULL);
                 CREATE INDEX doc_log_by_doc ON doc_log(doc, id);
                 INSERT INTO doc_log (doc, data) VALUES ('d', x'01'), ('e', x'02'),
                     ('d', x'03'), ('e', x'04');
                 DELETE FROM doc_log WHERE id = 4;",
            )
            .unwrap();
        }
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let d = store.load("d").await.unwrap();
        let ids: Vec<u64> = d.log.iter().map(|e| e.id.0).collect();
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(&d.log[1].data[..], &[3]);
        assert_eq!(store.load("e").await.unwrap().log.len(), 1);
        // Id 4 was handed out (and deleted) before: never again.
        let next = store.append("e", vec![b("y")]).await.unwrap();
        assert_eq!(next[0].0, 5);
        store.close().await;
        drop(store);
        // Opening again is a no-op for the migrated layout.
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        assert_eq!(store.load("e").await.unwrap().log.len(), 2);
        store.close().await;
    }

    #[tokio::test]
    async fn the_wal_stays_bounded_under_continuous_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Normal).unwrap();
        // 16 documents written without pause: every commit adds frames
        // while the checkpointer runs beside the writer.
        at_once(16, |d| {
            let store = store.clone();
            async move {
                for i in 0..1500 {
                    let update = Bytes::from(vec![i as u8; 200]);
                    store
                        .append(&format!("doc-{d}"), vec![update])
                        .await
                        .unwrap();
                }
            }
        })
        .await;
        let wal = std::fs::metadata(dir.path().join(format!("{DB_FILE}-wal")))
            .unwrap()
            .len();
        let frames = wal / 4096;
        assert!(
            frames < 4 * WAL_RESTART_FRAMES as u64,
            "the WAL grew to {frames} frames"
        );
        assert_eq!(store.load("doc-3").await.unwrap().log.len(), 1500);
        store.close().await;
    }

    #[tokio::test]
    async fn append_load_compact_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let ids = store.append("d", vec![b("a"), b("b")]).await.unwrap();
        let later = store.append("d", vec![b("c")]).await.unwrap();
        store.append("other", vec![b("x")]).await.unwrap();
        assert!(ids[0] < ids[1] && ids[1] < later[0]);

        // Compact only the first two; the third survives.
        let snap = snapshot(b("ab"), ids.clone(), 1);
        assert!(store.replace_snapshot("d", snap.clone()).await.unwrap());
        // A second compactor that read the same (absent) snapshot loses.
        assert!(!store.replace_snapshot("d", snap).await.unwrap());
        let loaded = store.load("d").await.unwrap();
        assert_eq!(&loaded.snapshot.unwrap().data[..], b"ab");
        assert_eq!(loaded.log.len(), 1);
        assert_eq!(&loaded.log[0].data[..], b"c");
        assert_eq!(store.stats("d").await.unwrap().log_entries, 1);
        assert_eq!(store.load("other").await.unwrap().log.len(), 1);

        store.delete("d").await.unwrap();
        assert!(store.load("d").await.unwrap().is_empty());
        store.close().await;
        assert!(matches!(
            store.append("d", vec![b("z")]).await,
            Err(StoreError::Closed)
        ));
    }

    #[tokio::test]
    async fn second_process_is_refused_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let _first = EmbeddedStore::open(dir.path(), Durability::Normal).unwrap();
        let err = EmbeddedStore::open(dir.path(), Durability::Normal)
            .err()
            .unwrap();
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[tokio::test]
    async fn concurrent_appends_share_commits_and_keep_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        at_once(8, |t| {
            let store = store.clone();
            async move {
                let mut last = EntryId(0);
                for i in 0..50 {
                    let id = store
                        .append("d", vec![b(&format!("{t}-{i}"))])
                        .await
                        .unwrap()[0];
                    assert!(id > last);
                    last = id;
                }
            }
        })
        .await;
        assert_eq!(store.load("d").await.unwrap().log.len(), 400);
    }

    #[tokio::test]
    async fn lease_excludes_other_holders_until_released_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Normal).unwrap();
        assert!(store
            .try_lease("d", "a", Duration::from_secs(60))
            .await
            .unwrap());
        assert!(!store
            .try_lease("d", "b", Duration::from_secs(60))
            .await
            .unwrap());
        store.release_lease("d", "a").await.unwrap();
        assert!(store
            .try_lease("d", "b", Duration::from_millis(1))
            .await
            .unwrap());
        std::thread::sleep(Duration::from_millis(5));
        assert!(store
            .try_lease("d", "a", Duration::from_secs(60))
            .await
            .unwrap());
    }
}
