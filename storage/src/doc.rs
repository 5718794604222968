//! The document store contract shared by every backend.

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;

/// Identifies one update-log entry. Ids grow with every append, so the
/// entries one writer appends sort in the order it appended them. Across
/// writers they need not sort in commit order: the MongoDB backend
/// reserves a batch's ids before inserting it, so with several replicas an
/// entry with a smaller id can become visible after one with a larger id.
/// "Every entry above id X" is therefore not "everything committed since
/// X was read". Order does not matter for rebuilding a document (Yjs
/// updates commute); it would for reading a log incrementally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(pub u64);

/// One stored Yjs update (v1 encoding).
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub id: EntryId,
    pub data: Bytes,
}

/// A full document state (a Yjs v1 update) and the log entries it merged.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub data: Bytes,
    /// Entries merged into `data`. They are deleted in the same step that
    /// writes the snapshot; the list lets a loader skip any that survived a
    /// crash between the two (a backend without transactions).
    pub covered: Vec<EntryId>,
    /// Generation of the snapshot: 1 for a document's first, +1 for each
    /// replacement. Replacing is a compare-and-swap on it, so of two
    /// compactions that read the same snapshot only one can write.
    pub seq: u64,
}

/// Everything needed to rebuild a document in memory.
#[derive(Clone, Debug, Default)]
pub struct StoredDoc {
    pub snapshot: Option<Snapshot>,
    /// Log entries not covered by the snapshot, by id.
    pub log: Vec<LogEntry>,
}

impl StoredDoc {
    /// True when nothing at all is stored for the document.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.log.is_empty()
    }

    /// Bytes of stored state: snapshot plus uncovered log.
    pub fn byte_len(&self) -> usize {
        self.snapshot.as_ref().map_or(0, |s| s.data.len())
            + self.log.iter().map(|e| e.data.len()).sum::<usize>()
    }
}

/// Size of what a document occupies in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DocStats {
    pub log_entries: u64,
    pub log_bytes: u64,
    pub snapshot_bytes: u64,
}

/// Persistence of Yjs documents as snapshot + update log.
///
/// Implementations must be safe to call from many tasks at once and must
/// never block the async runtime: blocking database work runs on a
/// dedicated thread or in `spawn_blocking`.
#[async_trait]
pub trait DocStore: Send + Sync + 'static {
    /// Reads the snapshot and every log entry it does not cover.
    async fn load(&self, doc: &str) -> Result<StoredDoc>;

    /// Appends updates to the document's log and returns their ids, in
    /// order. Returns only once the entries are committed (appends that
    /// arrive together share one commit).
    async fn append(&self, doc: &str, updates: Vec<Bytes>) -> Result<Vec<EntryId>>;

    /// Stores `snapshot` as the document's snapshot and deletes exactly the
    /// log entries listed in `snapshot.covered` — only if the current
    /// snapshot's `seq` is `snapshot.seq - 1` (0 = none). Returns `false`,
    /// changing nothing, when another writer replaced it first.
    async fn replace_snapshot(&self, doc: &str, snapshot: Snapshot) -> Result<bool>;

    /// Removes the document: snapshot, log and lease. A later append
    /// starts it afresh (see [`DocStore::tombstone`] for deleting it for
    /// good).
    async fn delete(&self, doc: &str) -> Result<()>;

    /// Deletes the document for good: records a tombstone, then removes
    /// its snapshot, log and lease. From then on `load`, `append` and
    /// `replace_snapshot` of it fail with [`crate::StoreError::Deleted`].
    ///
    /// The refusal is atomic with respect to appends: an append either
    /// commits before the tombstone (and its entries are removed with the
    /// rest) or fails, never leaving a log without its document behind.
    /// That is what keeps a deleted template deleted while a replica
    /// that has not heard of the deletion yet still serves its clients.
    /// Tombstones are never removed (document ids are random).
    async fn tombstone(&self, doc: &str) -> Result<()>;

    /// Takes the compaction lease on `doc` for `holder` for `ttl`, unless
    /// another holder has an unexpired one. Returns whether it was taken.
    async fn try_lease(&self, doc: &str, holder: &str, ttl: std::time::Duration) -> Result<bool>;

    /// Gives the lease back early (no-op if `holder` does not hold it).
    async fn release_lease(&self, doc: &str, holder: &str) -> Result<()>;

    /// Counts what the document occupies.
    async fn stats(&self, doc: &str) -> Result<DocStats>;

    /// Checks that the store answers (used by `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Finishes queued writes and releases the backend. Later writes fail
    /// with [`crate::StoreError::Closed`].
    async fn close(&self) {}
}
