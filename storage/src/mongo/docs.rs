//! The MongoDB [`DocStore`]: chunked snapshots and the update log (see
//! the module docs of [`crate::mongo`] for the protocol).

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;

use super::*;
use crate::doc::{DocStats, DocStore, EntryId, LogEntry, Snapshot, StoredDoc};
use crate::error::{Result, StoreError};

/// A snapshot header as stored.
struct Header {
    seq: i64,
    set: ObjectId,
    size: usize,
    ncovered: usize,
    parts: i32,
    blob: Option<Vec<u8>>,
}

fn decode_header(mut d: Document) -> Result<Header> {
    const WHAT: &str = "snapshot header";
    let seq = get_i64(&d, "seq", WHAT)?;
    let set = d.get_object_id("set").map_err(|_| corrupt(WHAT, "set"))?;
    let size = usize::try_from(get_i64(&d, "size", WHAT)?).map_err(|_| corrupt(WHAT, "size"))?;
    let ncovered =
        usize::try_from(get_i64(&d, "ncovered", WHAT)?).map_err(|_| corrupt(WHAT, "ncovered"))?;
    let parts = i32::try_from(get_i64(&d, "parts", WHAT)?).map_err(|_| corrupt(WHAT, "parts"))?;
    let blob = if parts == 0 {
        Some(take_binary(&mut d, "blob", WHAT)?)
    } else {
        None
    };
    Ok(Header {
        seq,
        set,
        size,
        ncovered,
        parts,
        blob,
    })
}

impl Header {
    fn blob_len(&self) -> usize {
        self.ncovered * 8 + self.size
    }
}

/// One attempt of [`MongoStore::load`].
enum Attempt {
    Done(StoredDoc),
    /// The snapshot was replaced while it was read: start over.
    Raced,
}

impl MongoStore {
    /// Reads the header; `None` if there is no snapshot.
    async fn header(&self, doc: &str) -> Result<Option<Header>> {
        self.coll(DOC_SNAPSHOTS)
            .find_one(doc! { "_id": doc })
            .await
            .map_err(db_err)?
            .map(decode_header)
            .transpose()
    }

    async fn load_once(&self, doc: &str) -> Result<Attempt> {
        // 1. The log, before the header (see the module docs).
        let cursor = self
            .coll(DOC_LOG)
            .find(doc! { "doc": doc })
            .sort(doc! { "id": 1 })
            .await
            .map_err(db_err)?;
        let mut log = Vec::new();
        for mut e in collect(cursor).await? {
            const WHAT: &str = "log entry";
            let id = get_i64(&e, "id", WHAT)?;
            let data = match e.get("parts") {
                Some(_) => {
                    let parts = i32::try_from(get_i64(&e, "parts", WHAT)?)
                        .map_err(|_| corrupt(WHAT, "parts"))?;
                    let len = usize::try_from(get_i64(&e, "len", WHAT)?)
                        .map_err(|_| corrupt(WHAT, "len"))?;
                    let key = doc! { "doc": doc, "id": id };
                    match read_chunks(&self.coll(DOC_LOG_CHUNKS), key, parts, len).await? {
                        Some(data) => data,
                        // Deleted meanwhile by a compaction: start over.
                        None => return Ok(Attempt::Raced),
                    }
                }
                None => take_binary(&mut e, "data", WHAT)?,
            };
            log.push(LogEntry {
                id: EntryId(id as u64),
                data: Bytes::from(data),
            });
        }

        // 2. The snapshot.
        let Some(mut header) = self.header(doc).await? else {
            return Ok(Attempt::Done(StoredDoc {
                snapshot: None,
                log,
            }));
        };
        let blob = match header.blob.take() {
            Some(blob) => blob,
            None => {
                let key = doc! { "doc": doc, "set": header.set };
                match read_chunks(
                    &self.coll(DOC_SNAPSHOT_CHUNKS),
                    key,
                    header.parts,
                    header.blob_len(),
                )
                .await?
                {
                    Some(blob) => blob,
                    None => {
                        // Replaced meanwhile, or really damaged?
                        let now = self.header(doc).await?;
                        if now.is_some_and(|h| h.set != header.set) {
                            return Ok(Attempt::Raced);
                        }
                        return Err(StoreError::Corrupt(format!(
                            "snapshot {} of `{doc}` has missing chunks",
                            header.seq
                        )));
                    }
                }
            }
        };
        if blob.len() != header.blob_len() {
            return Err(StoreError::Corrupt(format!(
                "snapshot {} of `{doc}` has {} bytes, expected {}",
                header.seq,
                blob.len(),
                header.blob_len()
            )));
        }
        let split = header.ncovered * 8;
        let covered = decode_ids(&blob[..split]);
        let data = Bytes::from(blob).slice(split..);

        // 3. Entries the snapshot covers but a crash left behind.
        let covered_set: HashSet<EntryId> = covered.iter().copied().collect();
        let (left, log): (Vec<LogEntry>, Vec<LogEntry>) =
            log.into_iter().partition(|e| covered_set.contains(&e.id));
        if !left.is_empty() && self.check_open().is_ok() {
            let ids: Vec<EntryId> = left.iter().map(|e| e.id).collect();
            if let Err(e) = self.delete_entries(doc, &ids).await {
                tracing::warn!(doc, error = %e, "could not delete covered log entries");
            }
        }
        Ok(Attempt::Done(StoredDoc {
            snapshot: Some(Snapshot {
                data,
                covered,
                seq: header.seq as u64,
            }),
            log,
        }))
    }

    /// Deletes exactly these log entries of `doc` (and their chunks).
    async fn delete_entries(&self, doc: &str, ids: &[EntryId]) -> Result<()> {
        for batch in ids.chunks(DELETE_BATCH) {
            let ids: Vec<i64> = batch.iter().map(|id| id.0 as i64).collect();
            let filter = doc! { "doc": doc, "id": { "$in": &ids } };
            self.coll(DOC_LOG)
                .delete_many(filter.clone())
                .await
                .map_err(db_err)?;
            self.coll(DOC_LOG_CHUNKS)
                .delete_many(filter)
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Reserves `n` log ids for `doc`: one atomic `$inc` of its counter;
    /// returns the counter document after it.
    ///
    /// The counter is created by a plain insert (a duplicate key means
    /// another append created it) and then only incremented, rather than
    /// by an upserting `find_one_and_update`: SecantusDB sometimes answers
    /// concurrent upserts of that kind with no document (mongod retries
    /// them itself).
    async fn reserve_ids(&self, doc: &str, n: i64) -> Result<Document> {
        let counters = self.coll(DOC_COUNTERS);
        for _ in 0..2 {
            // Only a live counter: a tombstoned one refuses every append.
            let counter = counters
                .find_one_and_update(
                    doc! { "_id": doc, "deleted": { "$exists": false } },
                    doc! { "$inc": { "next": n } },
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(db_err)?;
            if let Some(counter) = counter {
                return Ok(counter);
            }
            match counters.insert_one(doc! { "_id": doc, "next": 0i64 }).await {
                Ok(_) => {}
                Err(e) if is_duplicate(&e) => {
                    if self.is_tombstoned(doc).await? {
                        return Err(StoreError::Deleted(doc.to_owned()));
                    }
                }
                Err(e) => return Err(db_err(e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "could not reserve log ids for `{doc}`"
        )))
    }

    /// Whether `doc` was deleted for good (its counter holds `deleted`).
    async fn is_tombstoned(&self, doc: &str) -> Result<bool> {
        let found = self
            .coll(DOC_COUNTERS)
            .find_one(doc! { "_id": doc, "deleted": { "$exists": true } })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(db_err)?;
        Ok(found.is_some())
    }

    /// [`StoreError::Deleted`] if `doc` has a tombstone.
    async fn refuse_deleted(&self, doc: &str) -> Result<()> {
        if self.is_tombstoned(doc).await? {
            return Err(StoreError::Deleted(doc.to_owned()));
        }
        Ok(())
    }

    /// Step 1 of a replacement: the header document for `snapshot`, its
    /// chunks written if it is large.
    pub(crate) async fn prepare_snapshot(
        &self,
        doc: &str,
        snapshot: &Snapshot,
    ) -> Result<Document> {
        let set = ObjectId::new();
        let seq = snapshot.seq as i64;
        let mut blob = encode_ids(&snapshot.covered);
        blob.extend_from_slice(&snapshot.data);
        let mut header = doc! {
            "seq": seq,
            "set": set,
            "size": snapshot.data.len() as i64,
            "ncovered": snapshot.covered.len() as i64,
            "updatedAt": now_millis(),
        };
        if blob.len() > INLINE_MAX {
            let key = doc! { "doc": doc, "seq": seq, "set": set };
            let parts = write_chunks(&self.coll(DOC_SNAPSHOT_CHUNKS), &key, &blob).await?;
            header.insert("parts", parts);
        } else {
            header.insert("parts", 0);
            header.insert("blob", binary(blob));
        }
        Ok(header)
    }

    /// Step 2: swaps the header in if the current one has `seq - 1`.
    pub(crate) async fn swap_header(&self, doc: &str, header: &Document) -> Result<bool> {
        let seq = get_i64(header, "seq", "new header")?;
        let snapshots = self.coll(DOC_SNAPSHOTS);
        if seq == 1 {
            let mut first = doc! { "_id": doc };
            first.extend(header.clone());
            return match snapshots.insert_one(first).await {
                Ok(_) => Ok(true),
                Err(e) if is_duplicate(&e) => Ok(false),
                Err(e) => Err(db_err(e)),
            };
        }
        let replaced = snapshots
            .replace_one(doc! { "_id": doc, "seq": seq - 1 }, header.clone())
            .await
            .map_err(db_err)?;
        Ok(replaced.matched_count == 1)
    }
}

#[async_trait]
impl DocStore for MongoStore {
    async fn load(&self, doc: &str) -> Result<StoredDoc> {
        self.refuse_deleted(doc).await?;
        for _ in 0..LOAD_ATTEMPTS {
            if let Attempt::Done(loaded) = self.load_once(doc).await? {
                return Ok(loaded);
            }
        }
        Err(StoreError::Unavailable(format!(
            "`{doc}` kept changing while it was loaded"
        )))
    }

    async fn append(&self, doc: &str, updates: Vec<Bytes>) -> Result<Vec<EntryId>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        self.check_open()?;
        let n = updates.len() as i64;
        let counter = self.reserve_ids(doc, n).await?;
        let last = get_i64(&counter, "next", "log counter")?;
        let first = last - n + 1;

        let mut entries = Vec::with_capacity(updates.len());
        let mut ids = Vec::with_capacity(updates.len());
        for (i, update) in updates.into_iter().enumerate() {
            let id = first + i as i64;
            let mut entry = doc! { "doc": doc, "id": id, "len": update.len() as i64 };
            if update.len() > INLINE_MAX {
                let key = doc! { "doc": doc, "id": id };
                let parts = write_chunks(&self.coll(DOC_LOG_CHUNKS), &key, &update).await?;
                entry.insert("parts", parts);
            } else {
                entry.insert("data", binary(update.to_vec()));
            }
            entries.push(entry);
            ids.push(EntryId(id as u64));
        }
        self.coll(DOC_LOG)
            .insert_many(entries)
            .ordered(true)
            .await
            .map_err(db_err)?;
        // The ids were reserved before any tombstone, but a tombstone may
        // have been written since, and its deletion may have run before
        // these entries landed. Looking again closes the race: either the
        // tombstone came after this look (and its deletion, after it,
        // removes these entries) or this look sees it and takes them back.
        if self.is_tombstoned(doc).await? {
            self.delete_entries(doc, &ids).await?;
            return Err(StoreError::Deleted(doc.to_owned()));
        }
        Ok(ids)
    }

    async fn replace_snapshot(&self, doc: &str, snapshot: Snapshot) -> Result<bool> {
        self.check_open()?;
        if snapshot.seq == 0 || i64::try_from(snapshot.seq).is_err() {
            return Ok(false);
        }
        self.refuse_deleted(doc).await?;
        // Cheap early exit for a compactor that already lost.
        let current = self.header(doc).await?.map_or(0, |h| h.seq);
        if current + 1 != snapshot.seq as i64 {
            return Ok(false);
        }
        let header = self.prepare_snapshot(doc, &snapshot).await?;
        let set = header
            .get_object_id("set")
            .map_err(|_| corrupt("new header", "set"))?;
        let seq = snapshot.seq as i64;
        let chunks = self.coll(DOC_SNAPSHOT_CHUNKS);
        // On an error the outcome is unknown: the chunks stay (the next
        // winner removes them if the header does not use them).
        let won = self.swap_header(doc, &header).await?;
        if !won {
            if let Err(e) = chunks.delete_many(doc! { "doc": doc, "set": set }).await {
                tracing::warn!(doc, error = %e, "could not delete a losing snapshot's chunks");
            }
            return Ok(false);
        }
        // A tombstone written meanwhile: take the snapshot back (the same
        // look-again as in `append`).
        if self.is_tombstoned(doc).await? {
            self.delete(doc).await?;
            return Err(StoreError::Deleted(doc.to_owned()));
        }
        // Committed. What follows is clean-up: a failure leaves garbage that
        // loading skips and later compactions remove, so it is not an error.
        if let Err(e) = chunks
            .delete_many(doc! { "doc": doc, "seq": { "$lte": seq }, "set": { "$ne": set } })
            .await
        {
            tracing::warn!(doc, error = %e, "could not delete old snapshot chunks");
        }
        if let Err(e) = self.delete_entries(doc, &snapshot.covered).await {
            tracing::warn!(doc, error = %e, "could not delete compacted log entries");
        }
        Ok(true)
    }

    async fn delete(&self, doc: &str) -> Result<()> {
        self.check_open()?;
        // The header first: a crash midway leaves a log without snapshot,
        // never a snapshot whose chunks are gone.
        self.coll(DOC_SNAPSHOTS)
            .delete_one(doc! { "_id": doc })
            .await
            .map_err(db_err)?;
        for coll in [DOC_SNAPSHOT_CHUNKS, DOC_LOG, DOC_LOG_CHUNKS] {
            self.coll(coll)
                .delete_many(doc! { "doc": doc })
                .await
                .map_err(db_err)?;
        }
        self.coll(DOC_LEASES)
            .delete_one(doc! { "_id": doc })
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn tombstone(&self, doc: &str) -> Result<()> {
        self.check_open()?;
        // The tombstone first, on the counter every append goes through:
        // from here on no append reserves ids, and any that reserved
        // before takes its entries back (see `append`).
        self.coll(DOC_COUNTERS)
            .update_one(
                doc! { "_id": doc },
                doc! { "$set": { "deleted": now_millis() } },
            )
            .upsert(true)
            .await
            .map_err(db_err)?;
        self.delete(doc).await
    }

    async fn try_lease(&self, doc: &str, holder: &str, ttl: Duration) -> Result<bool> {
        self.check_open()?;
        let now = now_millis();
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let until = now.saturating_add(ttl);
        // Matches a free (expired) lease or our own; otherwise the upsert
        // tries to insert a second document with this `_id` and fails.
        let taken = self
            .coll(DOC_LEASES)
            .update_one(
                doc! {
                    "_id": doc,
                    "$or": [ { "until": { "$lte": now } }, { "holder": holder } ],
                },
                doc! { "$set": { "holder": holder, "until": until } },
            )
            .upsert(true)
            .await;
        match taken {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate(&e) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn release_lease(&self, doc: &str, holder: &str) -> Result<()> {
        self.check_open()?;
        self.coll(DOC_LEASES)
            .delete_one(doc! { "_id": doc, "holder": holder })
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn stats(&self, doc: &str) -> Result<DocStats> {
        let cursor = self
            .coll(DOC_LOG)
            .aggregate([
                doc! { "$match": { "doc": doc } },
                doc! { "$group": {
                    "_id": Bson::Null,
                    "entries": { "$sum": 1 },
                    "bytes": { "$sum": "$len" },
                } },
            ])
            .await
            .map_err(db_err)?;
        let groups = collect(cursor).await?;
        let (log_entries, log_bytes) = match groups.first() {
            Some(g) => (
                get_i64(g, "entries", "log stats")? as u64,
                get_i64(g, "bytes", "log stats")? as u64,
            ),
            None => (0, 0),
        };
        let snapshot_bytes = self
            .coll(DOC_SNAPSHOTS)
            .find_one(doc! { "_id": doc })
            .projection(doc! { "size": 1 })
            .await
            .map_err(db_err)?
            .map(|h| get_i64(&h, "size", "snapshot header"))
            .transpose()?
            .unwrap_or(0) as u64;
        Ok(DocStats {
            log_entries,
            log_bytes,
            snapshot_bytes,
        })
    }

    async fn ping(&self) -> Result<()> {
        self.check_open()?;
        self.inner
            .db
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Every write was awaited by its caller: nothing is queued here.
        let shutdown = self.inner.client.clone().shutdown().immediate(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), shutdown).await;
    }
}

#[cfg(test)]
mod tests;
