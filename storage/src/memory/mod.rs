//! A volatile store: everything lives in this process's memory and is gone
//! when it exits. Never use it for data anyone wants to keep.
//!
//! Its [`DocStore`] answers `append` without any I/O or SQL, which makes
//! it the baseline for measuring what durable storage costs. Accounts,
//! versions, data sources and usage figures are the embedded store's, on
//! a SQLite database in memory ([`EmbeddedStore::open_in_memory`]): one
//! implementation of their rules, whichever backend runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;

use crate::doc::{DocStats, DocStore, EntryId, LogEntry, Snapshot, StoredDoc};
use crate::embedded::EmbeddedStore;
use crate::error::{Result, StoreError};
use crate::lease::LocalLeases;

/// Every document, and the tombstones of those deleted for good, under
/// one lock: an append and a tombstone never interleave.
#[derive(Default)]
struct Docs {
    live: HashMap<String, DocData>,
    tombstones: HashSet<String>,
}

impl Docs {
    fn refuse_deleted(&self, doc: &str) -> Result<()> {
        if self.tombstones.contains(doc) {
            return Err(StoreError::Deleted(doc.to_owned()));
        }
        Ok(())
    }
}

#[derive(Default)]
struct DocData {
    snapshot: Option<Snapshot>,
    log: BTreeMap<EntryId, Bytes>,
}

/// In-memory store; see the module docs.
pub struct MemoryStore {
    docs: Mutex<Docs>,
    leases: LocalLeases,
    next_id: AtomicU64,
    /// Accounts, versions, data sources and usage figures.
    records: EmbeddedStore,
}

impl MemoryStore {
    /// An empty store.
    ///
    /// # Panics
    ///
    /// If SQLite cannot open a database in memory or its writer thread
    /// cannot start (the process is out of memory or threads).
    pub fn new() -> Self {
        Self {
            docs: Mutex::default(),
            leases: LocalLeases::default(),
            next_id: AtomicU64::default(),
            records: EmbeddedStore::open_in_memory().expect("an in-memory SQLite database opens"),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

forward_account_store!(MemoryStore => EmbeddedStore, |s| &s.records);
forward_version_store!(MemoryStore => EmbeddedStore, |s| &s.records);
forward_data_source_store!(MemoryStore => EmbeddedStore, |s| &s.records);

#[async_trait]
impl DocStore for MemoryStore {
    async fn load(&self, doc: &str) -> Result<StoredDoc> {
        let docs = self.docs.lock();
        docs.refuse_deleted(doc)?;
        let Some(d) = docs.live.get(doc) else {
            return Ok(StoredDoc::default());
        };
        Ok(StoredDoc {
            snapshot: d.snapshot.clone(),
            log: d
                .log
                .iter()
                .map(|(id, data)| LogEntry {
                    id: *id,
                    data: data.clone(),
                })
                .collect(),
        })
    }

    async fn append(&self, doc: &str, updates: Vec<Bytes>) -> Result<Vec<EntryId>> {
        let mut docs = self.docs.lock();
        docs.refuse_deleted(doc)?;
        let d = docs.live.entry(doc.to_owned()).or_default();
        Ok(updates
            .into_iter()
            .map(|u| {
                let id = EntryId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
                d.log.insert(id, u);
                id
            })
            .collect())
    }

    async fn replace_snapshot(&self, doc: &str, snapshot: Snapshot) -> Result<bool> {
        let mut docs = self.docs.lock();
        docs.refuse_deleted(doc)?;
        let d = docs.live.entry(doc.to_owned()).or_default();
        let current = d.snapshot.as_ref().map_or(0, |s| s.seq);
        if current + 1 != snapshot.seq {
            return Ok(false);
        }
        for id in &snapshot.covered {
            d.log.remove(id);
        }
        d.snapshot = Some(snapshot);
        Ok(true)
    }

    async fn delete(&self, doc: &str) -> Result<()> {
        self.docs.lock().live.remove(doc);
        self.leases.forget(doc);
        Ok(())
    }

    async fn tombstone(&self, doc: &str) -> Result<()> {
        {
            let mut docs = self.docs.lock();
            docs.tombstones.insert(doc.to_owned());
            docs.live.remove(doc);
        }
        self.leases.forget(doc);
        Ok(())
    }

    async fn try_lease(&self, doc: &str, holder: &str, ttl: Duration) -> Result<bool> {
        Ok(self.leases.try_take(doc, holder, ttl))
    }

    async fn release_lease(&self, doc: &str, holder: &str) -> Result<()> {
        self.leases.release(doc, holder);
        Ok(())
    }

    async fn stats(&self, doc: &str) -> Result<DocStats> {
        let docs = self.docs.lock();
        Ok(docs
            .live
            .get(doc)
            .map_or_else(DocStats::default, |d| DocStats {
                log_entries: d.log.len() as u64,
                log_bytes: d.log.values().map(|b| b.len() as u64).sum(),
                snapshot_bytes: d.snapshot.as_ref().map_or(0, |s| s.data.len() as u64),
            }))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
