//! The room registry: which documents are loaded, and the way in.
//!
//! A room is created by the first [`Registry::join`] for its document and
//! removes itself when it unloads (idle past the grace period, shutdown or
//! a store failure). Joining races with unloading safely: a room that is
//! closing refuses the join and the caller retries, getting a fresh room
//! that loads the document again from the store.
//!
//! Every room shares one [`Shared`] context: the store, metrics, config,
//! the shutdown token and the task tracker that shutdown waits on. A
//! fan-out bus for other replicas plugs in here, beside the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coform_storage::DocStore;
use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::{Bus, BusKind, BusMessage};
use crate::compaction::{self, Compacted};
use crate::error::CloseReason;
use crate::error::CollabError;
use crate::metrics::Metrics;
use crate::peer::{Peer, SessionSet};
use crate::room::{Command, DocEdit, DocRead, Room, RoomHandle, RoomStats};
use crate::Limits;

/// Tuning of rooms. Its defaults are [`RoomConfig::DEFAULT`], stated
/// once: the server's flags take their default values from it too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomConfig {
    pub limits: Limits,
    /// How long a room stays loaded after its last peer leaves.
    pub grace: Duration,
    /// Compact a document once this many log entries accumulated...
    pub compact_after_updates: u64,
    /// ...or this many log bytes.
    pub compact_after_bytes: u64,
    /// Commands a room's inbox holds before senders wait.
    pub inbox: usize,
}

impl RoomConfig {
    /// The default of every setting.
    pub const DEFAULT: RoomConfig = RoomConfig {
        limits: Limits::DEFAULT,
        grace: Duration::from_secs(10),
        compact_after_updates: 1_000,
        compact_after_bytes: 4 << 20,
        inbox: 1_024,
    };
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig::DEFAULT
    }
}

/// Edits that rooms stored since they were last taken with
/// [`Registry::take_edits`]: the raw material of usage figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EditCount {
    /// Document updates from connections that the store committed
    /// (server-side edits through [`Registry::edit`] are not counted).
    pub updates: u64,
    /// The distinct users who sent them, the most recent last.
    pub editors: Vec<Arc<str>>,
    /// When the latest of them was stored (ms since the epoch).
    pub last_ms: i64,
}

/// What every room of the process shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn DocStore>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) config: RoomConfig,
    /// Cancelled on shutdown: rooms flush, close their peers and exit.
    pub(crate) shutdown: CancellationToken,
    /// Every room task and background compaction; shutdown waits on it.
    pub(crate) tracker: TaskTracker,
    rooms: DashMap<Arc<str>, RoomHandle>,
    next_generation: AtomicU64,
    /// This process's name as a compaction lease holder.
    holder: String,
    /// Fan-out to other replicas; `None` on a single node.
    pub(crate) bus: Option<Bus>,
    /// Edits stored per document, not yet taken.
    edits: DashMap<Arc<str>, EditCount>,
}

/// A name for this process, unique across replicas and restarts.
pub(crate) fn process_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        format!("{host}-{}-{nanos:x}", std::process::id())
    })
    .clone()
}

impl Shared {
    /// Adds a committed batch of connections' updates to the document's
    /// edit count.
    pub(crate) fn count_edits(&self, doc: &Arc<str>, updates: u64, users: Vec<Arc<str>>, at: i64) {
        let mut count = self.edits.entry(doc.clone()).or_default();
        count.updates += updates;
        for user in users {
            count.editors.retain(|u| *u != user);
            count.editors.push(user);
        }
        count.last_ms = count.last_ms.max(at);
    }

    /// Removes the registry entry of `name` if it is still `generation`'s.
    pub(crate) fn forget(&self, name: &str, generation: u64) {
        self.rooms
            .remove_if(name, |_, h| h.generation == generation);
    }

    /// Hands a message from another replica to the document's room.
    pub(crate) async fn deliver(&self, doc: &str, msg: BusMessage) {
        let handle = self.rooms.get(doc).map(|h| h.clone());
        if let Some(handle) = handle {
            let _ = handle.tx.send(Command::Remote(msg)).await;
        }
    }

    /// Makes every loaded room catch up from the store.
    pub(crate) async fn heal_all(&self) {
        let handles: Vec<RoomHandle> = self.rooms.iter().map(|h| h.clone()).collect();
        for handle in handles {
            let heal = BusMessage {
                kind: BusKind::Heal,
                replica: Arc::from(""),
                seq: 0,
                payload: Default::default(),
            };
            let _ = handle.tx.send(Command::Remote(heal)).await;
        }
    }

    /// Tells every loaded room that `replica` died.
    pub(crate) async fn replica_gone(&self, replica: &Arc<str>) {
        let handles: Vec<RoomHandle> = self.rooms.iter().map(|h| h.clone()).collect();
        for handle in handles {
            let _ = handle.tx.send(Command::ReplicaGone(replica.clone())).await;
        }
    }

    /// Stores a document cut back by [`crate::nesting::repair`] as its
    /// snapshot (see [`compaction::store_repaired`]).
    pub(crate) async fn store_repaired(
        &self,
        name: &str,
        doc: &yrs::Doc,
        stored: &coform_storage::StoredDoc,
    ) -> Result<coform_storage::StoredDoc, CollabError> {
        compaction::store_repaired(&self.store, name, &self.holder, doc, stored).await
    }

    pub(crate) async fn compact(&self, name: &str) -> Result<Option<Compacted>, CollabError> {
        let result = compaction::compact(&self.store, name, &self.holder).await;
        match &result {
            Ok(Some(c)) => {
                self.metrics.compactions.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    doc = name,
                    merged = c.merged_entries,
                    bytes = c.snapshot_bytes,
                    "compacted"
                );
            }
            Ok(None) => {}
            Err(_) => {
                self.metrics
                    .compaction_failures
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }
}

/// Document name to running room. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
}

impl Registry {
    /// A registry for a single node (no fan-out to other replicas).
    pub fn new(store: Arc<dyn DocStore>, metrics: Arc<Metrics>, config: RoomConfig) -> Self {
        Self::build(store, metrics, config, None)
    }

    /// A registry whose rooms fan out through Redis at `redis_url` to the
    /// other replicas (see [`crate::bus`]). Only the URL is checked here;
    /// the bus connects, and reconnects, in the background.
    pub fn with_redis(
        store: Arc<dyn DocStore>,
        metrics: Arc<Metrics>,
        config: RoomConfig,
        redis_url: &str,
    ) -> Result<Self, CollabError> {
        redis::Client::open(redis_url).map_err(|e| CollabError::Bus(e.to_string()))?;
        Ok(Self::build(store, metrics, config, Some(redis_url)))
    }

    fn build(
        store: Arc<dyn DocStore>,
        metrics: Arc<Metrics>,
        config: RoomConfig,
        redis_url: Option<&str>,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let shared = Arc::new_cyclic(|weak| {
            let bus = redis_url
                .and_then(|url| Bus::start(url, weak.clone(), shutdown.clone(), &tracker).ok());
            Shared {
                store,
                metrics,
                config,
                shutdown,
                tracker,
                rooms: DashMap::new(),
                next_generation: AtomicU64::new(1),
                holder: process_id(),
                bus,
                edits: DashMap::new(),
            }
        });
        Registry { shared }
    }

    /// `None` on a single node; otherwise whether Redis is reachable.
    pub fn bus_connected(&self) -> Option<bool> {
        self.shared.bus.as_ref().map(Bus::is_connected)
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    pub fn store(&self) -> &Arc<dyn DocStore> {
        &self.shared.store
    }

    pub fn config(&self) -> &RoomConfig {
        &self.shared.config
    }

    /// Number of rooms currently registered.
    pub fn rooms(&self) -> usize {
        self.shared.rooms.len()
    }

    /// Adds `peer` to the document's room, loading it first if needed.
    /// Returns once the peer has been queued the room's sync step 1, i.e.
    /// after the document finished loading: a client is never answered
    /// from a half-loaded room.
    pub async fn join(&self, doc: &str, peer: Arc<Peer>) -> Result<RoomHandle, CollabError> {
        // A few retries cover the window where a room is unloading.
        for _ in 0..16 {
            if self.shared.shutdown.is_cancelled() {
                return Err(CollabError::ShuttingDown);
            }
            let handle = self.room(doc);
            let (reply, answer) = oneshot::channel();
            let join = Command::Join {
                peer: peer.clone(),
                reply,
            };
            if handle.tx.send(join).await.is_err() {
                self.shared.forget(doc, handle.generation);
                continue;
            }
            match answer.await {
                Ok(Ok(())) => return Ok(handle),
                Ok(Err(CollabError::RoomClosing)) | Err(_) => continue,
                Ok(Err(e)) => return Err(e),
            }
        }
        Err(CollabError::RoomClosing)
    }

    /// The document's room, loading it if needed.
    fn room(&self, doc: &str) -> RoomHandle {
        self.shared
            .rooms
            .entry(Arc::from(doc))
            .or_insert_with(|| self.spawn_room(doc))
            .clone()
    }

    fn spawn_room(&self, doc: &str) -> RoomHandle {
        let generation = self.shared.next_generation.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.shared.config.inbox);
        let name: Arc<str> = Arc::from(doc);
        let stats = Arc::new(RoomStats::default());
        let handle = RoomHandle {
            name: name.clone(),
            generation,
            tx: tx.clone(),
            stats: stats.clone(),
        };
        let weak = tx.downgrade();
        drop(tx);
        self.shared.tracker.spawn(Room::run(
            name,
            generation,
            self.shared.clone(),
            rx,
            weak,
            stats,
        ));
        handle
    }

    /// Applies a server-side edit to the document (loading it if needed):
    /// stored, then broadcast to everyone connected, like a peer's update.
    /// Returns once it is stored.
    pub async fn edit(&self, doc: &str, edit: DocEdit) -> Result<(), CollabError> {
        let mut edit = Some(edit);
        for _ in 0..16 {
            if self.shared.shutdown.is_cancelled() {
                return Err(CollabError::ShuttingDown);
            }
            let Some(e) = edit.take() else { break };
            let handle = self.room(doc);
            let (reply, answer) = oneshot::channel();
            if let Err(mpsc::error::SendError(cmd)) =
                handle.tx.send(Command::Edit { edit: e, reply }).await
            {
                self.shared.forget(doc, handle.generation);
                if let Command::Edit { edit: e, .. } = cmd {
                    edit = Some(e);
                }
                continue;
            }
            return match answer.await {
                Ok(result) => result,
                Err(_) => Err(CollabError::RoomClosing),
            };
        }
        Err(CollabError::RoomClosing)
    }

    /// Runs `read` on the document's stored state: in its room if loaded,
    /// otherwise on a copy loaded from the store (no room is created).
    pub async fn read<T: Send + 'static>(
        &self,
        doc: &str,
        read: impl FnOnce(&yrs::Doc) -> T + Send + 'static,
    ) -> Result<T, CollabError> {
        let handle = self.shared.rooms.get(doc).map(|h| h.clone());
        // Shared so the closure can run in the room or, failing that, here.
        let read = Arc::new(parking_lot::Mutex::new(Some(read)));
        if let Some(handle) = handle {
            let (tx, rx) = oneshot::channel();
            let r = read.clone();
            let cmd: DocRead = Box::new(move |d: &yrs::Doc| {
                if let Some(f) = r.lock().take() {
                    let _ = tx.send(f(d));
                }
            });
            if handle.tx.send(Command::Read(cmd)).await.is_ok() {
                if let Ok(v) = rx.await {
                    return Ok(v);
                }
            }
        }
        let (doc, _, _) = compaction::load_doc(&self.shared.store, doc).await?;
        let f = read.lock().take().ok_or(CollabError::RoomClosing)?;
        tokio::task::spawn_blocking(move || f(&doc))
            .await
            .map_err(|e| match e.is_cancelled() {
                true => CollabError::ShuttingDown,
                false => CollabError::Panicked("a read of the document".into()),
            })
    }

    /// Changes a user's access to a loaded document at once: `None` closes
    /// their connections (4403), `Some(readonly)` sets their write right.
    pub async fn set_access(&self, doc: &str, user: &str, readonly: Option<bool>) {
        let handle = self.shared.rooms.get(doc).map(|h| h.clone());
        if let Some(handle) = handle {
            let cmd = Command::Access {
                user: Arc::from(user),
                readonly,
            };
            let _ = handle.tx.send(cmd).await;
        }
    }

    /// Closes the connections of `user` opened with one of `sessions`, on
    /// every document loaded here, at once (with
    /// [`CloseReason::SessionEnded`]).
    pub async fn end_sessions(&self, user: &str, sessions: SessionSet) {
        let handles: Vec<RoomHandle> = self
            .shared
            .rooms
            .iter()
            .filter(|h| h.stats.users.lock().contains_key(user))
            .map(|h| h.clone())
            .collect();
        let user: Arc<str> = Arc::from(user);
        for handle in handles {
            let cmd = Command::EndSessions {
                user: user.clone(),
                sessions: sessions.clone(),
            };
            let _ = handle.tx.send(cmd).await;
        }
    }

    /// Closes every connection of the document with `reason` and unloads
    /// its room; returns when the room is gone.
    pub async fn evict(&self, doc: &str, reason: CloseReason) {
        let handle = self.shared.rooms.get(doc).map(|h| h.clone());
        if let Some(handle) = handle {
            let (reply, done) = oneshot::channel();
            if handle
                .tx
                .send(Command::Evict { reason, reply })
                .await
                .is_ok()
            {
                let _ = done.await;
            }
        }
    }

    /// Users connected to the document right now (empty if not loaded).
    pub fn connected_users(&self, doc: &str) -> Vec<Arc<str>> {
        self.shared
            .rooms
            .get(doc)
            .map(|h| h.stats.users.lock().keys().cloned().collect())
            .unwrap_or_default()
    }

    /// When the loaded document last stored an update (ms since the epoch).
    pub fn last_update_ms(&self, doc: &str) -> Option<i64> {
        self.shared
            .rooms
            .get(doc)
            .map(|h| h.stats.last_update_ms.load(Ordering::Relaxed))
            .filter(|t| *t > 0)
    }

    /// Takes the edit counts of every document that stored edits since
    /// the last call (see [`EditCount`]).
    pub fn take_edits(&self) -> Vec<(Arc<str>, EditCount)> {
        let docs: Vec<Arc<str>> = self.shared.edits.iter().map(|e| e.key().clone()).collect();
        docs.into_iter()
            .filter_map(|d| self.shared.edits.remove(&d))
            .collect()
    }

    /// Takes the edit count of one document, if it stored edits since the
    /// last take.
    pub fn take_edits_of(&self, doc: &str) -> Option<EditCount> {
        self.shared.edits.remove(doc).map(|(_, c)| c)
    }

    /// Compacts a document now (if no one else is), whether or not loaded.
    pub async fn compact(&self, doc: &str) -> Result<Option<Compacted>, CollabError> {
        self.shared.compact(doc).await
    }

    /// Stops every room: each flushes, closes its peers (they reconnect
    /// elsewhere or later) and exits. Waits at most `grace` for them and
    /// for running compactions.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.shutdown.cancel();
        self.shared.tracker.close();
        if tokio::time::timeout(grace, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("rooms did not finish within the shutdown grace period");
        }
    }

    /// Starts shutdown without waiting: rooms close their peers and exit.
    pub fn begin_shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// True once [`Registry::shutdown`] has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coform_storage::memory::MemoryStore;
    use coform_storage::{DocStats, EntryId, Snapshot, StoreError, StoredDoc};

    /// A store whose database cannot be reached.
    struct Unreachable;

    fn down<T>() -> coform_storage::error::Result<T> {
        Err(StoreError::Unavailable("connection refused".into()))
    }

    #[async_trait::async_trait]
    impl DocStore for Unreachable {
        async fn load(&self, _: &str) -> coform_storage::error::Result<StoredDoc> {
            down()
        }
        async fn append(
            &self,
            _: &str,
            _: Vec<bytes::Bytes>,
        ) -> coform_storage::error::Result<Vec<EntryId>> {
            down()
        }
        async fn replace_snapshot(
            &self,
            _: &str,
            _: Snapshot,
        ) -> coform_storage::error::Result<bool> {
            down()
        }
        async fn delete(&self, _: &str) -> coform_storage::error::Result<()> {
            down()
        }
        async fn tombstone(&self, _: &str) -> coform_storage::error::Result<()> {
            down()
        }
        async fn try_lease(
            &self,
            _: &str,
            _: &str,
            _: Duration,
        ) -> coform_storage::error::Result<bool> {
            down()
        }
        async fn release_lease(&self, _: &str, _: &str) -> coform_storage::error::Result<()> {
            down()
        }
        async fn stats(&self, _: &str) -> coform_storage::error::Result<DocStats> {
            down()
        }
        async fn ping(&self) -> coform_storage::error::Result<()> {
            down()
        }
    }

    fn registry(store: Arc<dyn DocStore>) -> Registry {
        Registry::new(store, Arc::new(Metrics::default()), RoomConfig::default())
    }

    /// A room whose document cannot be loaded tells every waiting join and
    /// edit that the store is down (the server answers 503), not that the
    /// request was bad.
    #[tokio::test]
    async fn a_failed_load_answers_joins_and_edits_with_the_store_failure() {
        let registry = registry(Arc::new(Unreachable));
        let peer = Arc::new(Peer::new(&Limits::default()));
        let joined = registry.join("doc", peer).await;
        assert!(
            matches!(joined, Err(CollabError::Store(StoreError::Unavailable(_)))),
            "{:?}",
            joined.err()
        );
        let edit: DocEdit = Box::new(|_| Ok(Vec::new()));
        let edited = registry.edit("doc", edit).await;
        assert!(
            matches!(edited, Err(CollabError::Store(StoreError::Unavailable(_)))),
            "{edited:?}"
        );
    }

    /// A server-side edit or read that panics is a failure of ours, not a
    /// rejected update.
    #[tokio::test]
    async fn a_panicking_edit_or_read_is_reported_as_a_panic() {
        let registry = registry(Arc::new(MemoryStore::new()));
        let edit: DocEdit = Box::new(|_| panic!("a bug in an edit"));
        let edited = registry.edit("doc", edit).await;
        assert!(
            matches!(edited, Err(CollabError::Panicked(_))),
            "{edited:?}"
        );
        registry.evict("doc", CloseReason::Normal).await;
        let read = registry
            .read("doc", |_| -> () { panic!("a bug in a read") })
            .await;
        assert!(matches!(read, Err(CollabError::Panicked(_))), "{read:?}");
    }
}
