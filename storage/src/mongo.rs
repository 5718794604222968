//! The MongoDB backend, for several server replicas sharing one store.
//!
//! # Rules
//!
//! It uses neither multi-document transactions nor change streams (a
//! standalone `mongod` rejects both). Every check-then-write is one
//! single-document operation: a conditional update, a
//! `find_one_and_update`, an upsert or an insert against a unique index.
//! Where a change spans several documents, the steps are ordered so that a
//! crash between any two loses nothing that was committed.
//!
//! # Documents
//!
//! - `doc_counters` `{_id: doc, next}`: the last log entry id handed out
//!   for a document, taken with `$inc` (upsert). Kept when a document is
//!   deleted, so an id is never reused: a compaction that read entries of
//!   a deleted document can never delete entries of its successor.
//! - `doc_log` `{doc, id, len, data | parts}`: one update-log entry. An
//!   update larger than [`INLINE_MAX`] lives in `doc_log_chunks`
//!   `{doc, id, n, data}` (written first; the entry is the commit point).
//! - `doc_snapshots` `{_id: doc, seq, set, size, ncovered, parts, blob?}`:
//!   the snapshot header. Its blob is the covered ids (8 bytes each, little
//!   endian) followed by the Yjs state; inline when small, otherwise in
//!   `doc_snapshot_chunks` `{doc, seq, set, n, data}` parts of
//!   [`CHUNK_SIZE`]. `set` (an ObjectId unique to each write attempt)
//!   names the chunks the header uses: loading ignores every other chunk,
//!   so a crashed or losing attempt can never mix its parts in.
//! - `doc_leases` `{_id: doc, holder, until}`: the compaction lease.
//!
//! # Replacing a snapshot
//!
//! 1. Write the new blob's chunks under a fresh `set` (if it is large).
//! 2. Swap the header: insert with `_id = doc` for seq 1 (a duplicate key
//!    means another writer was first), else a replace filtered on the
//!    expected previous `seq`. This is the commit point.
//! 3. The loser deletes its own chunks; the winner deletes the older
//!    chunks (`seq <= its seq`, other `set`) and exactly the covered log
//!    entries, by id.
//!
//! A crash before 2 leaves the old snapshot (and stray chunks, removed by
//! the next winner); a crash after 2 leaves covered entries behind, which
//! loading skips (the header lists them) and deletes by id.
//!
//! # Loading
//!
//! The log is read **before** the header: an entry a concurrent compaction
//! deletes in between is covered by the newer header read afterwards, so
//! nothing falls through. If the header's chunks vanish meanwhile (a newer
//! snapshot replaced it), the load starts over.
//!
//! Account records are in the `mongo_accounts` module, template versions
//! and usage figures in `mongo_versions`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, ReturnDocument, WriteConcern};
use mongodb::{Client, Collection, Cursor, Database, IndexModel};

use crate::doc::{DocStats, DocStore, EntryId, LogEntry, Snapshot, StoredDoc};
use crate::error::{Result, StoreError};

/// Database used when the URL names none.
pub const DEFAULT_DATABASE: &str = "coform";
/// Size of one chunk of a large snapshot or update.
pub const CHUNK_SIZE: usize = 8 << 20;
/// Largest blob kept inside its own document; larger ones are chunked.
/// Leaves ample room below MongoDB's 16 MiB document limit.
pub const INLINE_MAX: usize = 8 << 20;

pub(crate) const DOC_COUNTERS: &str = "doc_counters";
pub(crate) const DOC_LOG: &str = "doc_log";
pub(crate) const DOC_LOG_CHUNKS: &str = "doc_log_chunks";
pub(crate) const DOC_SNAPSHOTS: &str = "doc_snapshots";
pub(crate) const DOC_SNAPSHOT_CHUNKS: &str = "doc_snapshot_chunks";
pub(crate) const DOC_LEASES: &str = "doc_leases";

/// Ids per `$in` list when deleting log entries.
const DELETE_BATCH: usize = 10_000;
/// Attempts of a load whose snapshot is replaced while it reads.
const LOAD_ATTEMPTS: usize = 8;
/// Attempts of an optimistic (version-guarded) update under contention.
pub(crate) const CAS_ATTEMPTS: usize = 200;

/// MongoDB-backed store ([`DocStore`], [`crate::AccountStore`] and
/// [`crate::VersionStore`]).
/// Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    db: Database,
    closed: AtomicBool,
}

impl MongoStore {
    /// Connects to `url` (a `mongodb://` or `mongodb+srv://` URL) and
    /// creates the indexes the store needs. The database is the URL's path
    /// (`mongodb://host/mydb`), [`DEFAULT_DATABASE`] when it has none.
    ///
    /// Unless the URL sets a write concern (`w`, `journal`), writes are
    /// acknowledged by a majority and journaled: "committed" means it
    /// survives a crash of the server.
    pub async fn connect(url: &str) -> Result<MongoStore> {
        let mut options = ClientOptions::parse(url).await.map_err(db_err)?;
        let name = options
            .default_database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        if options.app_name.is_none() {
            options.app_name = Some("coform".into());
        }
        if options.write_concern.is_none() {
            options.write_concern = Some(
                WriteConcern::builder()
                    .w(Acknowledgment::Majority)
                    .journal(true)
                    .build(),
            );
        }
        if options.server_selection_timeout.is_none() {
            options.server_selection_timeout = Some(Duration::from_secs(10));
        }
        let client = Client::with_options(options).map_err(db_err)?;
        let db = client.database(&name);
        let store = MongoStore {
            inner: Arc::new(Inner {
                client,
                db,
                closed: AtomicBool::new(false),
            }),
        };
        store.create_indexes().await?;
        Ok(store)
    }

    /// Name of the database this store uses.
    pub fn database_name(&self) -> &str {
        self.inner.db.name()
    }

    pub(crate) fn coll(&self, name: &str) -> Collection<Document> {
        self.inner.db.collection(name)
    }

    /// Fails with [`StoreError::Closed`] once [`DocStore::close`] ran.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    async fn create_indexes(&self) -> Result<()> {
        let index = |keys: Document, name: &str, unique: bool| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .name(name.to_owned())
                        .unique(unique)
                        .build(),
                )
                .build()
        };
        let wanted = [
            (
                DOC_LOG,
                index(doc! { "doc": 1, "id": 1 }, "log_by_doc_id", true),
            ),
            (
                DOC_LOG_CHUNKS,
                index(
                    doc! { "doc": 1, "id": 1, "n": 1 },
                    "log_chunks_by_entry",
                    true,
                ),
            ),
            (
                DOC_SNAPSHOT_CHUNKS,
                index(
                    doc! { "doc": 1, "set": 1, "n": 1 },
                    "snapshot_chunks_by_set",
                    true,
                ),
            ),
            (
                DOC_SNAPSHOT_CHUNKS,
                index(doc! { "doc": 1, "seq": 1 }, "snapshot_chunks_by_seq", false),
            ),
        ];
        for (coll, model) in wanted {
            self.coll(coll).create_index(model).await.map_err(db_err)?;
        }
        crate::mongo_accounts::create_indexes(self).await?;
        crate::mongo_versions::create_indexes(self).await
    }
}

// ---------------------------------------------------------------- helpers

/// True when the error is a duplicate key (E11000) on any path.
pub(crate) fn is_duplicate(e: &mongodb::error::Error) -> bool {
    const DUPLICATE_KEY: i32 = 11000;
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().any(|w| w.code == DUPLICATE_KEY)),
        _ => false,
    }
}

/// Maps a driver error: a duplicate key is a `Conflict`, data that does
/// not decode is `Corrupt`, a shut-down client is `Closed`, the rest
/// (network, server selection, server errors) is `Unavailable`.
pub(crate) fn db_err(e: mongodb::error::Error) -> StoreError {
    if is_duplicate(&e) {
        return StoreError::Conflict(e.to_string());
    }
    match &*e.kind {
        ErrorKind::BsonDeserialization(_) => StoreError::Corrupt(e.to_string()),
        ErrorKind::Shutdown => StoreError::Closed,
        _ => StoreError::Unavailable(e.to_string()),
    }
}

pub(crate) fn corrupt(what: &str, key: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "{what}: field `{key}` is missing or has the wrong type"
    ))
}

pub(crate) fn get_i64(d: &Document, key: &str, what: &str) -> Result<i64> {
    match d.get(key) {
        Some(Bson::Int64(v)) => Ok(*v),
        Some(Bson::Int32(v)) => Ok(i64::from(*v)),
        _ => Err(corrupt(what, key)),
    }
}

/// Takes a Binary field out of `d` without copying it.
pub(crate) fn take_binary(d: &mut Document, key: &str, what: &str) -> Result<Vec<u8>> {
    match d.remove(key) {
        Some(Bson::Binary(b)) => Ok(b.bytes),
        _ => Err(corrupt(what, key)),
    }
}

pub(crate) fn binary(bytes: Vec<u8>) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    })
}

/// Drains a cursor into a vector.
pub(crate) async fn collect(mut cursor: Cursor<Document>) -> Result<Vec<Document>> {
    let mut out = Vec::new();
    while cursor.advance().await.map_err(db_err)? {
        out.push(cursor.deserialize_current().map_err(db_err)?);
    }
    Ok(out)
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn encode_ids(ids: &[EntryId]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.0.to_le_bytes()).collect()
}

fn decode_ids(raw: &[u8]) -> Vec<EntryId> {
    raw.chunks_exact(8)
        .map(|c| EntryId(u64::from_le_bytes(c.try_into().expect("8-byte chunk"))))
        .collect()
}

/// Writes `data` as parts `{..key, n, data}` of [`CHUNK_SIZE`] into
/// `coll`; returns the number of parts.
pub(crate) async fn write_chunks(
    coll: &Collection<Document>,
    key: &Document,
    data: &[u8],
) -> Result<i32> {
    let mut parts = Vec::new();
    for (n, piece) in data.chunks(CHUNK_SIZE).enumerate() {
        let mut part = key.clone();
        part.insert("n", n as i32);
        part.insert("data", binary(piece.to_vec()));
        parts.push(part);
    }
    let count = parts.len() as i32;
    // One part per insert keeps each message small; parts are written
    // before the document that refers to them, so order does not matter.
    for part in parts {
        coll.insert_one(part).await.map_err(db_err)?;
    }
    Ok(count)
}

/// Reads the `parts` chunks matching `key`, in order, and joins them.
/// `None` when any is missing (or the total is not `len` bytes).
pub(crate) async fn read_chunks(
    coll: &Collection<Document>,
    key: Document,
    parts: i32,
    len: usize,
) -> Result<Option<Vec<u8>>> {
    let mut filter = key;
    filter.insert("n", doc! { "$gte": 0, "$lt": parts });
    let cursor = coll
        .find(filter)
        .sort(doc! { "n": 1 })
        .await
        .map_err(db_err)?;
    let chunks = collect(cursor).await?;
    if chunks.len() != usize::try_from(parts).unwrap_or(0) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(len);
    for (i, mut c) in chunks.into_iter().enumerate() {
        if get_i64(&c, "n", "chunk")? != i as i64 {
            return Ok(None);
        }
        out.extend_from_slice(&take_binary(&mut c, "data", "chunk")?);
    }
    Ok((out.len() == len).then_some(out))
}

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
            let counter = counters
                .find_one_and_update(doc! { "_id": doc }, doc! { "$inc": { "next": n } })
                .return_document(ReturnDocument::After)
                .await
                .map_err(db_err)?;
            if let Some(counter) = counter {
                return Ok(counter);
            }
            match counters.insert_one(doc! { "_id": doc, "next": 0i64 }).await {
                Ok(_) => {}
                Err(e) if is_duplicate(&e) => {}
                Err(e) => return Err(db_err(e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "could not reserve log ids for `{doc}`"
        )))
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
        Ok(ids)
    }

    async fn replace_snapshot(&self, doc: &str, snapshot: Snapshot) -> Result<bool> {
        self.check_open()?;
        if snapshot.seq == 0 || i64::try_from(snapshot.seq).is_err() {
            return Ok(false);
        }
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
mod tests {
    use super::*;
    use crate::testing::{drop_database, MongoServer};

    async fn fresh() -> (Arc<MongoStore>, String) {
        let url = MongoServer::shared().fresh_database_url();
        let store = MongoStore::connect(&url).await.unwrap();
        (Arc::new(store), url)
    }

    /// `len` bytes of deterministic noise (incompressible, unlike zeros).
    fn noise(len: usize, seed: u64) -> Bytes {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        Bytes::from(out)
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    async fn count(store: &MongoStore, coll: &str, filter: Document) -> u64 {
        store.coll(coll).count_documents(filter).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn snapshot_larger_than_a_document_round_trips_through_chunks() {
        let (s, url) = fresh().await;
        let ids = s.append("d", vec![b("a"), b("b"), b("c")]).await.unwrap();
        let big = noise(20 << 20, 1);
        let snap = Snapshot {
            data: big.clone(),
            covered: ids[..2].to_vec(),
            seq: 1,
        };
        assert!(s.replace_snapshot("d", snap).await.unwrap());
        // 20 MiB + 16 bytes of ids = 3 parts of at most 8 MiB.
        assert_eq!(count(&s, DOC_SNAPSHOT_CHUNKS, doc! { "doc": "d" }).await, 3);
        let loaded = s.load("d").await.unwrap();
        let snapshot = loaded.snapshot.unwrap();
        assert_eq!(snapshot.seq, 1);
        assert_eq!(snapshot.covered, ids[..2]);
        assert!(snapshot.data == big, "snapshot data differs");
        assert_eq!(loaded.log.len(), 1);
        assert_eq!(loaded.log[0].id, ids[2]);
        assert_eq!(s.stats("d").await.unwrap().snapshot_bytes, 20 << 20);

        // A small successor is inline and removes the old chunks.
        assert!(s
            .replace_snapshot(
                "d",
                Snapshot {
                    data: b("small"),
                    covered: vec![ids[2]],
                    seq: 2,
                },
            )
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
            .replace_snapshot(
                "d",
                Snapshot {
                    data: b("merged"),
                    covered: ids[..2].to_vec(),
                    seq: 1,
                },
            )
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
            .replace_snapshot(
                "d",
                Snapshot {
                    data: old.clone(),
                    covered: vec![ids[0]],
                    seq: 1,
                },
            )
            .await
            .unwrap());
        // "Crash": chunks of seq 2 written, header never swapped.
        let doomed = Snapshot {
            data: noise(12 << 20, 4),
            covered: vec![ids[1]],
            seq: 2,
        };
        s.prepare_snapshot("d", &doomed).await.unwrap();
        assert_eq!(
            count(&s, DOC_SNAPSHOT_CHUNKS, doc! { "doc": "d", "seq": 2 }).await,
            2
        );
        let loaded = s.load("d").await.unwrap();
        let snapshot = loaded.snapshot.unwrap();
        assert_eq!(snapshot.seq, 1);
        assert!(snapshot.data == old, "old snapshot damaged");
        assert_eq!(loaded.log.len(), 1);
        assert_eq!(loaded.log[0].id, ids[1]);

        // The retry after the restart writes seq 2 for real.
        let retry = Snapshot {
            data: noise(10 << 20, 5),
            covered: vec![ids[1]],
            seq: 2,
        };
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
        let snap = Snapshot {
            data: b("ab"),
            covered: ids[..2].to_vec(),
            seq: 1,
        };
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
                    .replace_snapshot(
                        "d",
                        Snapshot {
                            data: data.clone(),
                            covered: Vec::new(),
                            seq: 1,
                        },
                    )
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
                        Some(snap) => {
                            (String::from_utf8(snap.data.to_vec()).unwrap(), snap.seq + 1)
                        }
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
}
