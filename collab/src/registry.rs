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
//!
//! Access changes ([`Registry::set_access`], [`Registry::end_sessions`],
//! [`Registry::evict`]) act on this replica's rooms at once and are
//! published on the bus, so every other replica applies them to its own
//! (see [`crate::bus`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coform_storage::DocStore;
use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{AccessCheck, AccessEvent};
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
    /// Check every applied update against the form model and repair what
    /// it left invalid. Off only to measure what checking costs.
    pub check_schema: bool,
    /// A room sends presence changes at most once per this window: a
    /// change after a quiet window goes at once, changes within one are
    /// merged (latest state per client) and go together at its end.
    /// Zero sends every change at once.
    pub presence_window: Duration,
}

impl RoomConfig {
    /// The default of every setting.
    pub const DEFAULT: RoomConfig = RoomConfig {
        limits: Limits::DEFAULT,
        grace: Duration::from_secs(10),
        compact_after_updates: 1_000,
        compact_after_bytes: 4 << 20,
        inbox: 1_024,
        check_schema: true,
        presence_window: Duration::from_millis(10),
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
    /// Documents whose compaction after unload is queued or running here
    /// (see [`Shared::compact_after_unload`]).
    unload_compactions: parking_lot::Mutex<HashMap<Arc<str>, UnloadCompaction>>,
    /// Bounds the compactions after unload running at once.
    compaction_slots: tokio::sync::Semaphore,
    /// Edits stored per document, not yet taken.
    edits: DashMap<Arc<str>, EditCount>,
    /// The server's answer to "what may this connection do now?", asked
    /// when access events may have been missed. Set once, after the
    /// server's account store is open; unset, nothing is re-checked.
    pub(crate) access_check: std::sync::OnceLock<Arc<dyn AccessCheck>>,
    /// Counts access changes applied here (and re-checks begun): a
    /// connection authorized before a change but joined after it cannot
    /// have been reached by it, and asks for a re-check of its room (see
    /// [`Registry::access_epoch`]).
    access_epoch: AtomicU64,
}

/// Compactions after unload that may run at once. Each one reads a whole
/// document and writes a snapshot; more at once only queue on the store
/// (delaying every room's appends) and hold documents in memory.
const UNLOAD_COMPACTION_SLOTS: usize = 2;

/// A compactor that finds the lease held (the document's room compacting
/// it, or another replica) tries again this often, this many times.
const UNLOAD_COMPACT_TRIES: usize = 50;
const UNLOAD_COMPACT_RETRY: Duration = Duration::from_millis(100);

/// Where a document's compaction after unload stands.
#[derive(Clone, Copy, Debug, Default)]
struct UnloadCompaction {
    /// It has begun reading the store: what is appended from now on is not
    /// covered by it.
    started: bool,
    /// Another unload came after it began: run again when it ends.
    again: bool,
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

    /// Applies an access change to this replica's rooms. An eviction is
    /// only started here (the caller does not wait for the room to go).
    pub(crate) async fn apply_access(&self, event: &AccessEvent) {
        self.access_epoch.fetch_add(1, Ordering::SeqCst);
        match event {
            AccessEvent::Evict { doc, reason } => {
                let handle = self.rooms.get(&**doc).map(|h| h.clone());
                if let Some(handle) = handle {
                    let (reply, _) = oneshot::channel();
                    let reason = reason.clone();
                    let _ = handle.tx.send(Command::Evict { reason, reply }).await;
                }
            }
            AccessEvent::SetAccess {
                docs,
                user,
                readonly,
            } => {
                for doc in docs {
                    let handle = self.rooms.get(&**doc).map(|h| h.clone());
                    if let Some(handle) = handle {
                        let cmd = Command::Access {
                            user: user.clone(),
                            readonly: *readonly,
                        };
                        let _ = handle.tx.send(cmd).await;
                    }
                }
            }
            AccessEvent::EndSessions { user, sessions } => {
                let handles: Vec<RoomHandle> = self
                    .rooms
                    .iter()
                    .filter(|h| h.stats.users.lock().contains_key(user))
                    .map(|h| h.clone())
                    .collect();
                for handle in handles {
                    let cmd = Command::EndSessions {
                        user: user.clone(),
                        sessions: sessions.clone(),
                    };
                    let _ = handle.tx.send(cmd).await;
                }
            }
        }
    }

    /// Makes every loaded room with authenticated connections ask the
    /// [`AccessCheck`] about each of them and tighten what it says (after
    /// access events may have been missed).
    pub(crate) async fn recheck_all(&self) {
        if self.access_check.get().is_none() {
            return;
        }
        self.access_epoch.fetch_add(1, Ordering::SeqCst);
        let handles: Vec<RoomHandle> = self
            .rooms
            .iter()
            .filter(|h| !h.stats.users.lock().is_empty())
            .map(|h| h.clone())
            .collect();
        for handle in handles {
            let _ = handle.tx.send(Command::Recheck).await;
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

    /// Folds `name`'s log into its snapshot after its room unloaded: at
    /// most one compaction per document queued or running at a time (an
    /// unload while one is queued is covered by it; one while it runs makes
    /// it run once more), and at most [`UNLOAD_COMPACTION_SLOTS`] running,
    /// so documents that load and unload faster than the store compacts
    /// them cost a bounded number of tasks, not one per unload.
    pub(crate) fn compact_after_unload(self: &Arc<Self>, name: Arc<str>) {
        {
            let mut pending = self.unload_compactions.lock();
            match pending.get_mut(&name) {
                Some(c) if !c.started => return,
                Some(c) => {
                    c.again = true;
                    return;
                }
                None => {
                    pending.insert(name.clone(), UnloadCompaction::default());
                }
            }
        }
        let shared = self.clone();
        self.tracker.spawn(async move {
            loop {
                let Ok(_slot) = shared.compaction_slots.acquire().await else {
                    break;
                };
                if let Some(c) = shared.unload_compactions.lock().get_mut(&name) {
                    *c = UnloadCompaction {
                        started: true,
                        again: false,
                    };
                }
                shared.compact_retrying(&name).await;
                let mut pending = shared.unload_compactions.lock();
                match pending.get_mut(&name) {
                    Some(c) if c.again && !shared.shutdown.is_cancelled() => c.started = false,
                    _ => {
                        pending.remove(&name);
                        break;
                    }
                }
            }
        });
    }

    /// Compacts `name`, waiting for a compaction that holds its lease
    /// (which covers only what it read) to end first.
    async fn compact_retrying(&self, name: &str) {
        for _ in 0..UNLOAD_COMPACT_TRIES {
            match self.compact(name).await {
                Ok(Some(_)) => return,
                Ok(None) => tokio::time::sleep(UNLOAD_COMPACT_RETRY).await,
                Err(e) => {
                    tracing::warn!(doc = %name, error = %e, "compaction on unload failed");
                    return;
                }
            }
        }
    }

    pub(crate) async fn compact(&self, name: &str) -> Result<Option<Compacted>, CollabError> {
        let result = compaction::compact(&self.store, name, &self.holder).await;
        match &result {
            Ok(Some(c)) => {
                self.metrics.compactions.inc();
                tracing::debug!(
                    doc = name,
                    merged = c.merged_entries,
                    bytes = c.snapshot_bytes,
                    "compacted"
                );
            }
            Ok(None) => {}
            Err(_) => {
                self.metrics.compaction_failures.inc();
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
                unload_compactions: parking_lot::Mutex::new(HashMap::new()),
                compaction_slots: tokio::sync::Semaphore::new(UNLOAD_COMPACTION_SLOTS),
                edits: DashMap::new(),
                access_check: std::sync::OnceLock::new(),
                access_epoch: AtomicU64::new(0),
            }
        });
        Registry { shared }
    }

    /// Plugs in the server's [`AccessCheck`], asked about open connections
    /// whenever this replica may have missed access changes on the bus.
    /// Only the first call counts.
    pub fn set_access_check(&self, check: Arc<dyn AccessCheck>) {
        let _ = self.shared.access_check.set(check);
    }

    /// Re-checks every open connection with the [`AccessCheck`] now (what
    /// a replica does after its bus reconnects).
    pub async fn recheck_access(&self) {
        self.shared.recheck_all().await;
    }

    /// The number of access changes applied here so far. A connection
    /// reads it before it checks its access and again once it joined: if
    /// it moved, a change may have passed between the two unseen, and
    /// [`Registry::recheck_doc`] settles it.
    pub fn access_epoch(&self) -> u64 {
        self.shared.access_epoch.load(Ordering::SeqCst)
    }

    /// Re-checks the open connections of one loaded document with the
    /// [`AccessCheck`].
    pub async fn recheck_doc(&self, doc: &str) {
        if self.shared.access_check.get().is_none() {
            return;
        }
        let handle = self.shared.rooms.get(doc).map(|h| h.clone());
        if let Some(handle) = handle {
            let _ = handle.tx.send(Command::Recheck).await;
        }
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

    /// Documents whose compaction after unload is queued or running.
    pub fn unload_compactions_queued(&self) -> usize {
        self.shared.unload_compactions.lock().len()
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

    /// Changes a user's access to a document at once, here and on every
    /// other replica: `None` closes their connections (4403),
    /// `Some(readonly)` sets their write right.
    pub async fn set_access(&self, doc: &str, user: &str, readonly: Option<bool>) {
        self.set_access_in(&[doc], user, readonly).await;
    }

    /// [`Registry::set_access`] on several documents (e.g. every template
    /// of a workspace) with as few bus messages as possible.
    pub async fn set_access_in<S: AsRef<str>>(
        &self,
        docs: &[S],
        user: &str,
        readonly: Option<bool>,
    ) {
        self.act(AccessEvent::SetAccess {
            docs: docs.iter().map(|d| Arc::from(d.as_ref())).collect(),
            user: Arc::from(user),
            readonly,
        })
        .await;
    }

    /// Closes the connections of `user` opened with one of `sessions`, on
    /// every document, here and on every other replica, at once (with
    /// [`CloseReason::SessionEnded`]).
    pub async fn end_sessions(&self, user: &str, sessions: SessionSet) {
        self.act(AccessEvent::EndSessions {
            user: Arc::from(user),
            sessions,
        })
        .await;
    }

    /// Publishes an access change to the other replicas and applies it
    /// here.
    async fn act(&self, event: AccessEvent) {
        if let Some(bus) = &self.shared.bus {
            bus.publish_access(event.clone());
        }
        self.shared.apply_access(&event).await;
    }

    /// Closes every connection of the document with `reason` and unloads
    /// its room, here and on every other replica; returns when the room
    /// here is gone (the others' go as soon as they hear of it).
    pub async fn evict(&self, doc: &str, reason: CloseReason) {
        if let Some(bus) = &self.shared.bus {
            bus.publish_access(AccessEvent::Evict {
                doc: Arc::from(doc),
                reason: reason.clone(),
            });
        }
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

    /// Documents that unload far faster than they can be compacted (what
    /// a soak run found: one compaction task per unload piled up without
    /// bound) cost one queued compaction each, and every log is still
    /// folded in the end.
    #[tokio::test]
    async fn unloads_faster_than_compactions_queue_one_per_document() {
        use yrs::{Map, Transact};
        let store: Arc<dyn DocStore> = Arc::new(MemoryStore::new());
        let registry = registry(store.clone());
        let names: Vec<Arc<str>> = (0..3).map(|i| Arc::from(format!("doc-{i}"))).collect();
        for name in &names {
            let doc = yrs::Doc::with_client_id(7);
            let map = doc.get_or_insert_map("form");
            let mut txn = doc.transact_mut();
            map.insert(&mut txn, "k", "v");
            let update = bytes::Bytes::from(txn.encode_update_v1());
            store.append(name, vec![update]).await.unwrap();
        }
        let shared = &registry.shared;
        for _ in 0..1000 {
            for name in &names {
                shared.compact_after_unload(name.clone());
            }
        }
        // One task per document at most (each runs again at most once).
        assert!(
            shared.tracker.len() <= names.len(),
            "{}",
            shared.tracker.len()
        );
        let queued = registry.unload_compactions_queued();
        assert!(queued >= 1 && queued <= names.len(), "{queued}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while registry.unload_compactions_queued() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "compactions never ended"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for name in &names {
            let stored = store.load(name).await.unwrap();
            assert!(stored.log.is_empty(), "{name}: the log was not folded");
            assert!(stored.snapshot.is_some(), "{name}");
        }
    }

    fn identity(user: &str, session: &str) -> crate::Identity {
        crate::Identity {
            user_id: user.into(),
            name: user.into(),
            color: "#000".into(),
            session: Some(session.into()),
        }
    }

    /// Answers from a table, as the server's records would.
    struct Records(Vec<(&'static str, &'static str, crate::Grant)>);

    #[async_trait::async_trait]
    impl crate::AccessCheck for Records {
        async fn check(&self, _: &str, who: &crate::Identity) -> Result<crate::Grant, String> {
            let found = self
                .0
                .iter()
                .find(|(u, s, _)| **u == *who.user_id && who.session.as_deref() == Some(*s));
            Ok(found.map_or(crate::Grant::Edit, |(_, _, g)| *g))
        }
    }

    fn writable_update() -> bytes::Bytes {
        use yrs::{Text, Transact};
        let doc = yrs::Doc::with_client_id(9);
        let text = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "late");
        crate::protocol::encode_update(&txn.encode_update_v1())
    }

    /// A re-check (what a replica does after missing bus messages) closes
    /// or downgrades exactly what the records no longer allow, and never
    /// grants more.
    #[tokio::test]
    async fn a_recheck_takes_away_what_the_records_no_longer_allow() {
        use crate::Grant::*;
        let registry = registry(Arc::new(MemoryStore::new()));
        registry.set_access_check(Arc::new(Records(vec![
            ("gone", "s", Revoked),
            ("ended", "old", SessionEnded),
            ("demoted", "s", View),
            ("viewer", "s", Edit),
        ])));
        let limits = Limits::default();
        let peer = |user, session, readonly| {
            Arc::new(Peer::with_identity(
                &limits,
                Some(identity(user, session)),
                readonly,
            ))
        };
        let gone = peer("gone", "s", false);
        let ended = peer("ended", "old", false);
        let kept = peer("ended", "new", false);
        let demoted = peer("demoted", "s", false);
        let viewer = peer("viewer", "s", true);
        for p in [&gone, &ended, &kept, &demoted, &viewer] {
            registry.join("doc", p.clone()).await.unwrap();
        }
        registry.recheck_access().await;
        assert_eq!(gone.wait_closed().await, CloseReason::Forbidden);
        assert_eq!(ended.wait_closed().await, CloseReason::SessionEnded);
        // The verdicts arrive together: once one is applied, all are.
        assert_eq!(kept.closed(), None);
        assert!(demoted.is_readonly());
        assert!(viewer.is_readonly(), "a re-check never grants a right");
    }

    /// A room whose document was deleted for good (by another replica that
    /// has not told this one yet) refuses its peers' next update: the
    /// store keeps nothing and the peers are closed with 4403.
    #[tokio::test]
    async fn an_update_of_a_tombstoned_document_closes_its_room_with_4403() {
        let store = Arc::new(MemoryStore::new());
        let registry = registry(store.clone());
        let peer = Arc::new(Peer::new(&Limits::default()));
        let room = registry.join("doc", peer.clone()).await.unwrap();
        store.tombstone("doc").await.unwrap();
        let frame = writable_update();
        let msgs = crate::protocol::decode_frame(&frame, &Limits::default()).unwrap();
        assert!(room.frame(peer.id, msgs).await);
        assert_eq!(peer.wait_closed().await, CloseReason::Forbidden);
        assert!(matches!(
            store.load("doc").await,
            Err(StoreError::Deleted(_))
        ));
        // Joining again is refused the same way.
        let again = Arc::new(Peer::new(&Limits::default()));
        let joined = registry.join("doc", again).await;
        assert!(
            matches!(joined, Err(CollabError::Store(StoreError::Deleted(_)))),
            "{:?}",
            joined.err()
        );
    }
}
