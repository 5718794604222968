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
//! - `doc_counters` `{_id: doc, next, deleted?}`: the last log entry id
//!   handed out for a document, taken with `$inc` (upsert). Kept when a
//!   document is deleted, so an id is never reused: a compaction that read
//!   entries of a deleted document can never delete entries of its
//!   successor. `deleted` (ms) is the tombstone of a document deleted for
//!   good: no append reserves ids past it, and an append or snapshot that
//!   raced with it looks again after writing and takes its write back.
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
//! # Files
//!
//! - this file: connecting, indexes, and helpers for documents and chunks;
//! - `docs`: the [`DocStore`] (with its crash and race tests);
//! - `accounts`: account collections, codecs and guarded updates; `users`
//!   and `workspaces`: the [`crate::AccountStore`] operations on them;
//! - `versions`: the [`crate::VersionStore`];
//! - `datasources`: the [`crate::DataSourceStore`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, WriteConcern};
use mongodb::{Client, Collection, Cursor, Database, IndexModel};

use crate::doc::EntryId;
use crate::error::{Result, StoreError};

mod accounts;
mod datasources;
mod docs;
mod users;
mod versions;
mod workspaces;

forward_account_store!(MongoStore => MongoStore, |s| s);
forward_version_store!(MongoStore => MongoStore, |s| s);
forward_data_source_store!(MongoStore => MongoStore, |s| s);

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
pub(crate) const USERS: &str = "users";
pub(crate) const SESSIONS: &str = "sessions";
pub(crate) const REFRESH_TOKENS: &str = "refresh_tokens";
pub(crate) const USER_TOKENS: &str = "user_tokens";
pub(crate) const WORKSPACES: &str = "workspaces";
pub(crate) const INVITATIONS: &str = "invitations";
pub(crate) const TEMPLATES: &str = "templates";
pub(crate) const USERS_BY_EMAIL: &str = "users_by_email";
pub(crate) const VERSION_COUNTERS: &str = "template_version_counters";
pub(crate) const VERSIONS: &str = "template_versions";
pub(crate) const VERSION_CHUNKS: &str = "template_version_chunks";
pub(crate) const STATS: &str = "template_stats";
pub(crate) const EDITORS: &str = "template_editors";
pub(crate) const DATA_SOURCES: &str = "data_sources";
pub(crate) const DATA_SOURCES_BY_NAME: &str = "data_sources_by_name";

/// Ids per `$in` list when deleting log entries.
const DELETE_BATCH: usize = 10_000;
/// Attempts of a load whose snapshot is replaced while it reads.
const LOAD_ATTEMPTS: usize = 8;
/// Attempts of an optimistic (version-guarded) update under contention.
pub(crate) const CAS_ATTEMPTS: usize = 200;

/// MongoDB-backed store ([`DocStore`], [`crate::AccountStore`],
/// [`crate::VersionStore`] and [`crate::DataSourceStore`]).
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

    /// Creates the indexes of every collection (documents, accounts,
    /// versions, data sources); a no-op for those that exist.
    async fn create_indexes(&self) -> Result<()> {
        for (coll, keys, name, unique) in INDEXES {
            let mut spec = Document::new();
            for key in keys.split(' ') {
                match key.strip_prefix('-') {
                    Some(key) => spec.insert(key, -1),
                    None => spec.insert(key, 1),
                };
            }
            let options = IndexOptions::builder()
                .name(name.to_owned())
                .unique(unique)
                .build();
            let model = IndexModel::builder().keys(spec).options(options).build();
            self.coll(coll).create_index(model).await.map_err(db_err)?;
        }
        Ok(())
    }
}

/// Every index the store needs: (collection, keys, name, unique). Keys
/// are field names separated by spaces, `-` before one sorting it
/// descending.
#[rustfmt::skip]
const INDEXES: [(&str, &str, &str, bool); 17] = [
    (DOC_LOG,             "doc id",                 "log_by_doc_id",            true),
    (DOC_LOG_CHUNKS,      "doc id n",               "log_chunks_by_entry",      true),
    (DOC_SNAPSHOT_CHUNKS, "doc set n",              "snapshot_chunks_by_set",   true),
    (DOC_SNAPSHOT_CHUNKS, "doc seq",                "snapshot_chunks_by_seq",   false),
    (USERS,               "emailKey",               USERS_BY_EMAIL,             true),
    (SESSIONS,            "userId createdAt",       "sessions_by_user",         false),
    (REFRESH_TOKENS,      "sessionId",              "refresh_by_session",       false),
    (REFRESH_TOKENS,      "userId",                 "refresh_by_user",          false),
    (USER_TOKENS,         "userId",                 "user_tokens_by_user",      false),
    (WORKSPACES,          "members.userId",         "workspaces_by_member",     false),
    (INVITATIONS,         "workspaceId emailKey",   "invitations_by_workspace", true),
    (INVITATIONS,         "emailKey",               "invitations_by_email",     false),
    (TEMPLATES,           "workspaceId -updatedAt", "templates_by_workspace",   false),
    (VERSIONS,            "template number",        "versions_by_template",     true),
    (VERSION_CHUNKS,      "template set n",         "version_chunks_by_set",    true),
    (EDITORS,             "template user",          "editors_by_template",      true),
    (DATA_SOURCES,        "workspaceId nameFolded", DATA_SOURCES_BY_NAME,       true),
];

// ---------------------------------------------------------------- helpers

/// `NotFound(what)` when an operation matched no document.
pub(crate) fn found(count: u64, what: &str) -> Result<()> {
    match count {
        0 => Err(StoreError::NotFound(what.into())),
        _ => Ok(()),
    }
}

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
pub(crate) fn get_str(d: &Document, key: &str, what: &str) -> Result<String> {
    d.get_str(key)
        .map(str::to_owned)
        .map_err(|_| corrupt(what, key))
}

pub(crate) fn get_bool(d: &Document, key: &str, what: &str) -> Result<bool> {
    d.get_bool(key).map_err(|_| corrupt(what, key))
}

pub(crate) fn get_opt_str(d: &Document, key: &str, what: &str) -> Result<Option<String>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(_) => get_str(d, key, what).map(Some),
    }
}

pub(crate) fn get_opt_i64(d: &Document, key: &str, what: &str) -> Result<Option<i64>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(_) => get_i64(d, key, what).map(Some),
    }
}

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
