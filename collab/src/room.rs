//! The room: the single owner of one document in memory.
//!
//! Each loaded document has one room task. Connections talk to it through
//! a bounded inbox ([`RoomHandle`]); nothing else touches the `Doc`, so no
//! lock is needed and updates are applied in one well-defined order.
//!
//! # One turn of the loop
//!
//! 1. Wait for a command, then take every other command already waiting
//!    (up to a bound) without waiting again.
//! 2. Apply each update to the `Doc` and keep it as *pending*.
//! 3. Append all pending updates to the store in one call (the store
//!    group-commits them, also with other rooms' appends).
//! 4. Only then queue each update to every peer but its sender — the
//!    same `Bytes` for all of them, encoded once.
//!
//! Anything that reveals document state (a join, a sync step 1 answer)
//! first completes steps 3 and 4, so no peer ever sees an update the store
//! does not have. While step 3 waits, new commands pile up in the inbox
//! and become the next, larger batch: under load, commits get bigger, not
//! more frequent.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use coform_storage::StoredDoc;

use crate::bus::{BusKind, BusMessage};
use crate::compaction::{self, Compacted};
use crate::error::{CloseReason, CollabError};
use crate::nesting;
use crate::peer::{Peer, PeerId, SessionSet};
use crate::presence::Presence;
use crate::protocol::{self, Inbound, InboundUpdate};
use crate::registry::Shared;

/// Most commands handled in one turn before the batch is committed.
const MAX_BATCH: usize = 512;
/// A room that unloads while a compaction of it is running retries its own
/// this often, this many times (the running one holds the lease).
const UNLOAD_COMPACT_TRIES: usize = 50;
const UNLOAD_COMPACT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// A server-side change: runs against the room's `Doc` and returns the
/// v1 update it made (empty if nothing changed).
pub type DocEdit = Box<dyn FnOnce(&Doc) -> Result<Vec<u8>, String> + Send>;

/// A read of the room's `Doc`; it sends its result on its own channel.
pub type DocRead = Box<dyn FnOnce(&Doc) + Send>;

/// A message to a room task.
pub(crate) enum Command {
    /// Add a peer; answered once it has been sent the room's state vector.
    Join {
        peer: Arc<Peer>,
        reply: oneshot::Sender<Result<(), CollabError>>,
    },
    /// Messages decoded from one of the peer's frames.
    Frame {
        peer: PeerId,
        messages: Vec<Inbound>,
    },
    /// The peer's connection ended.
    Leave { peer: PeerId },
    /// A background compaction finished.
    Compacted(Result<Option<Compacted>, CollabError>),
    /// A server-side edit; answered once it is stored and broadcast.
    Edit {
        edit: DocEdit,
        reply: oneshot::Sender<Result<(), CollabError>>,
    },
    /// Read the stored state of the document.
    Read(DocRead),
    /// A message from another replica (see [`crate::bus`]).
    Remote(BusMessage),
    /// Another replica died: drop the presence it relayed.
    ReplicaGone(Arc<str>),
    /// A user's access changed: `None` closes their connections with
    /// [`CloseReason::Forbidden`], `Some(readonly)` sets their write right.
    Access {
        user: Arc<str>,
        readonly: Option<bool>,
    },
    /// Sign-in sessions of a user ended: close their connections with
    /// [`CloseReason::SessionEnded`].
    EndSessions {
        user: Arc<str>,
        sessions: SessionSet,
    },
    /// Close every peer with `reason` and unload; answered when done.
    Evict {
        reason: CloseReason,
        reply: oneshot::Sender<()>,
    },
}

/// Live figures of a room, readable without asking its task.
#[derive(Default)]
pub struct RoomStats {
    /// Connected users (authenticated peers) and their connection counts.
    pub users: Mutex<HashMap<Arc<str>, usize>>,
    /// Time of the last stored update (ms since the epoch), 0 if none yet.
    pub last_update_ms: std::sync::atomic::AtomicI64,
}

/// A connection's way to reach its room. Cheap to clone.
#[derive(Clone)]
pub struct RoomHandle {
    pub(crate) name: Arc<str>,
    /// Distinguishes this room from an earlier or later room of the same
    /// document in the registry (a room removes only its own entry).
    pub(crate) generation: u64,
    /// Bounded: a flood of frames waits here, pausing the readers that
    /// send them, instead of growing memory.
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) stats: Arc<RoomStats>,
}

impl RoomHandle {
    /// The document's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands decoded messages to the room. Returns `false` if the room is
    /// gone (the connection should close; its client will reconnect).
    pub async fn frame(&self, peer: PeerId, messages: Vec<Inbound>) -> bool {
        self.tx
            .send(Command::Frame { peer, messages })
            .await
            .is_ok()
    }

    /// Tells the room the peer left.
    pub async fn leave(&self, peer: PeerId) {
        let _ = self.tx.send(Command::Leave { peer }).await;
    }
}

/// An update applied to the doc but not yet stored or sent.
struct Pending {
    /// The peer that sent it (not sent back to it); `None` for server edits.
    origin: Option<PeerId>,
    payload: Bytes,
    frame: Bytes,
    /// Answered once the update is stored (server edits).
    ack: Option<oneshot::Sender<Result<(), CollabError>>>,
}

/// Durable-ack bookkeeping of one peer for one turn.
#[derive(Default)]
struct AckState {
    /// Update messages received from the peer so far (cumulative).
    received: u64,
    /// Numbers of the messages refused this turn (read-only peer).
    refused: Vec<u64>,
}

/// Why the loop ended.
enum Exit {
    Idle,
    Shutdown,
    Failed,
    Evicted(CloseReason, oneshot::Sender<()>),
}

pub(crate) struct Room {
    name: Arc<str>,
    generation: u64,
    shared: Arc<Shared>,
    doc: Doc,
    presence: Presence,
    peers: HashMap<PeerId, Arc<Peer>>,
    pending: Vec<Pending>,
    /// The full state as a sync step 2 message, kept until the doc changes:
    /// many clients joining at once cost one encoding.
    full_state: Option<Bytes>,
    /// Stored bytes of the document (snapshot + log), for the size limit.
    doc_bytes: usize,
    snapshot_bytes: usize,
    /// Log entries stored since the last compaction.
    log_entries: u64,
    log_bytes: u64,
    compacting: bool,
    idle_since: Option<Instant>,
    /// Set when the doc must be rebuilt from the store (after a panic).
    reload: bool,
    failed: bool,
    /// Lets background work report back without keeping the room alive.
    me: mpsc::WeakSender<Command>,
    stats: Arc<RoomStats>,
    /// Update messages handled this turn per peer that wants acks
    /// (answered after the flush), starting from what was acked before.
    acks: HashMap<PeerId, AckState>,
    /// Update messages acked so far per peer that wants acks.
    acked: HashMap<PeerId, u64>,
    /// Set by an eviction command; ends the loop after this turn.
    evicted: Option<(CloseReason, oneshot::Sender<()>)>,
}

impl Room {
    /// Loads the document, then serves commands until idle, shutdown or a
    /// store failure. Joins that arrive during the load wait in the inbox.
    pub(crate) async fn run(
        name: Arc<str>,
        generation: u64,
        shared: Arc<Shared>,
        mut rx: mpsc::Receiver<Command>,
        me: mpsc::WeakSender<Command>,
        stats: Arc<RoomStats>,
    ) {
        let started = Instant::now();
        let loaded = tokio::select! {
            r = shared.store.load(&name) => r.map_err(CollabError::from),
            _ = shared.shutdown.cancelled() => Err(CollabError::ShuttingDown),
        };
        let mut deferred = Vec::new();
        let mut snapshot_state = None;
        let built = match loaded {
            Ok(stored) => {
                // A snapshot with nothing logged after it is the whole state:
                // fresh clients get it while the document is being built.
                snapshot_state = stored
                    .snapshot
                    .as_ref()
                    .filter(|_| stored.log.is_empty())
                    .map(|s| protocol::encode_step2(&s.data));
                let build = compaction::build_stored(&name, stored);
                match &snapshot_state {
                    Some(state) => serve_while_building(build, &mut rx, state, &mut deferred).await,
                    None => build.await,
                }
            }
            Err(e) => Err(e),
        };
        let built = match built {
            Ok((doc, stored, repair)) if !repair.is_empty() => {
                persist_repair(&shared, &name, doc, stored, repair).await
            }
            Ok((doc, stored, _)) => Ok((doc, stored)),
            Err(e) => Err(e),
        };
        let (doc, stored) = match built {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(doc = %name, error = %e, "cannot load document");
                shared.forget(&name, generation);
                // Every waiting join and edit learns why: a store that is
                // down (retry later) or a damaged document (ours to fix).
                for cmd in deferred {
                    match cmd {
                        Command::Join { peer, .. } => peer.close(CloseReason::Unavailable),
                        Command::Edit { reply, .. } => {
                            let _ = reply.send(Err(e.duplicate()));
                        }
                        _ => {}
                    }
                }
                rx.close();
                while let Some(cmd) = rx.recv().await {
                    if let Command::Join { reply, .. } | Command::Edit { reply, .. } = cmd {
                        let _ = reply.send(Err(e.duplicate()));
                    }
                }
                return;
            }
        };
        shared.metrics.room_load.observe(started.elapsed());
        shared.metrics.rooms_loaded.fetch_add(1, Relaxed);
        let snapshot_bytes = stored.snapshot.as_ref().map_or(0, |s| s.data.len());
        let presence = Presence::new(&shared.config.limits);
        let mut room = Room {
            name,
            generation,
            shared,
            doc,
            presence,
            peers: HashMap::new(),
            pending: Vec::new(),
            full_state: snapshot_state,
            doc_bytes: stored.byte_len(),
            snapshot_bytes,
            log_entries: stored.log.len() as u64,
            log_bytes: stored.log.iter().map(|e| e.data.len() as u64).sum(),
            compacting: false,
            idle_since: Some(Instant::now()),
            reload: false,
            failed: false,
            me,
            stats,
            acks: HashMap::new(),
            acked: HashMap::new(),
            evicted: None,
        };
        tracing::debug!(doc = %room.name, ms = started.elapsed().as_millis() as u64, "room loaded");
        if let Some(bus) = &room.shared.bus {
            bus.subscribe(&room.name);
            // Presence held by other replicas shows here at once.
            bus.publish(&room.name, BusKind::QueryAwareness, Bytes::new());
        }
        let mut exit = None;
        if !deferred.is_empty() {
            for cmd in deferred {
                room.handle(cmd).await;
            }
            exit = room.end_turn().await;
        }
        let exit = match exit {
            Some(exit) => exit,
            None => room.serve(&mut rx).await,
        };
        room.finish(exit, rx).await;
    }

    async fn serve(&mut self, rx: &mut mpsc::Receiver<Command>) -> Exit {
        loop {
            let grace = self.shared.config.grace;
            let idle_deadline = self
                .idle_since
                .map(|t| tokio::time::Instant::from_std(t + grace));
            let first = tokio::select! {
                biased;
                _ = self.shared.shutdown.cancelled() => return Exit::Shutdown,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => cmd,
                    None => return Exit::Idle,
                },
                _ = tokio::time::sleep_until(idle_deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if idle_deadline.is_some() => return Exit::Idle,
            };
            self.handle(first).await;
            for _ in 1..MAX_BATCH {
                match rx.try_recv() {
                    Ok(cmd) => self.handle(cmd).await,
                    Err(_) => break,
                }
            }
            if let Some(exit) = self.end_turn().await {
                return exit;
            }
        }
    }

    /// Stores and broadcasts what is pending, then, if an update had to
    /// be taken back (or panicked), rebuilds the document from the store.
    /// Called before anything reveals or builds on the document's state.
    async fn settle(&mut self) {
        self.flush().await;
        if self.reload {
            self.rebuild().await;
        }
    }

    /// After a batch of commands: store and broadcast what they produced,
    /// answer acks, compact when due. `Some` ends the room.
    async fn end_turn(&mut self) -> Option<Exit> {
        self.settle().await;
        if self.failed {
            return Some(Exit::Failed);
        }
        self.send_acks();
        if let Some((reason, reply)) = self.evicted.take() {
            return Some(Exit::Evicted(reason, reply));
        }
        self.maybe_compact();
        self.idle_since = if self.peers.is_empty() {
            self.idle_since.or_else(|| Some(Instant::now()))
        } else {
            None
        };
        None
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join { peer, reply } => {
                self.settle().await;
                if self.failed {
                    let _ = reply.send(Err(CollabError::RoomClosing));
                    return;
                }
                let sv = self.doc.transact().state_vector();
                peer.reply(protocol::encode_step1(&sv));
                if let Some(states) = self.presence.snapshot() {
                    peer.reply(protocol::encode_awareness(&states));
                }
                if let Some(who) = &peer.identity {
                    *self
                        .stats
                        .users
                        .lock()
                        .entry(who.user_id.clone())
                        .or_default() += 1;
                }
                self.peers.insert(peer.id, peer);
                self.idle_since = None;
                let _ = reply.send(Ok(()));
            }
            Command::Frame { peer, messages } => {
                for msg in messages {
                    let Some(p) = self.peers.get(&peer) else {
                        break;
                    };
                    if p.acks && matches!(msg, Inbound::Update(_) | Inbound::EmptyUpdate) {
                        let refused = p.is_readonly();
                        let before = self.acked.get(&peer).copied().unwrap_or(0);
                        let ack = self.acks.entry(peer).or_insert_with(|| AckState {
                            received: before,
                            refused: Vec::new(),
                        });
                        ack.received += 1;
                        if refused {
                            ack.refused.push(ack.received);
                        }
                    }
                    self.on_message(peer, msg).await;
                }
            }
            Command::Leave { peer } => self.remove_peers(vec![peer]),
            Command::Compacted(result) => {
                self.compacting = false;
                match result {
                    Ok(Some(c)) => self.compacted(c),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(doc = %self.name, error = %e, "compaction failed");
                    }
                }
            }
            Command::Edit { edit, reply } => {
                if self.reload {
                    self.settle().await;
                }
                self.server_edit(edit, reply)
            }
            Command::Read(read) => {
                self.settle().await;
                read(&self.doc);
            }
            Command::Access { user, readonly } => {
                let affected: Vec<PeerId> = self
                    .peers
                    .values()
                    .filter(|p| p.identity.as_ref().is_some_and(|i| i.user_id == user))
                    .map(|p| p.id)
                    .collect();
                for id in affected {
                    match readonly {
                        Some(ro) => self.peers[&id].set_readonly(ro),
                        None => {
                            self.peers[&id].close(CloseReason::Forbidden);
                            self.remove_peers(vec![id]);
                        }
                    }
                }
            }
            Command::EndSessions { user, sessions } => {
                let ended: Vec<PeerId> = self
                    .peers
                    .values()
                    .filter(|p| {
                        p.identity.as_ref().is_some_and(|i| {
                            i.user_id == user
                                && i.session.as_ref().is_some_and(|s| sessions.contains(s))
                        })
                    })
                    .map(|p| p.id)
                    .collect();
                for id in ended {
                    self.shared
                        .metrics
                        .peers_closed_session
                        .fetch_add(1, Relaxed);
                    self.peers[&id].close(CloseReason::SessionEnded);
                    self.remove_peers(vec![id]);
                }
            }
            Command::Evict { reason, reply } => self.evicted = Some((reason, reply)),
            Command::Remote(msg) => self.remote(msg).await,
            Command::ReplicaGone(replica) => {
                if let Some(removal) = self.presence.remove_replica(&replica) {
                    self.broadcast(&protocol::encode_awareness(&removal), None);
                }
            }
        }
    }

    /// Applies a server-side edit as one update, stored and broadcast like
    /// any other; `reply` is answered once it is stored.
    fn server_edit(&mut self, edit: DocEdit, reply: oneshot::Sender<Result<(), CollabError>>) {
        let doc = &self.doc;
        let update = match std::panic::catch_unwind(AssertUnwindSafe(|| edit(doc))) {
            Ok(Ok(update)) => update,
            Ok(Err(e)) => {
                let _ = reply.send(Err(CollabError::BadUpdate(e)));
                return;
            }
            Err(_) => {
                self.shared.metrics.update_panics.fetch_add(1, Relaxed);
                tracing::error!(doc = %self.name, "a server-side edit panicked; reloading room");
                self.reload = true;
                let _ = reply.send(Err(CollabError::Panicked("an edit of the document".into())));
                return;
            }
        };
        let empty = Update::decode_v1(&update)
            .map(|u| u.is_empty())
            .unwrap_or(true);
        if empty {
            let _ = reply.send(Ok(()));
            return;
        }
        self.full_state = None;
        self.doc_bytes += update.len();
        let payload = Bytes::from(update);
        let frame = protocol::encode_update(&payload);
        self.pending.push(Pending {
            origin: None,
            payload,
            frame,
            ack: Some(reply),
        });
    }

    async fn on_message(&mut self, peer: PeerId, msg: Inbound) {
        if self.reload {
            // An update was taken back: nothing may see or build on the
            // document before it is rebuilt.
            self.settle().await;
        }
        match msg {
            Inbound::SyncStep1(sv) => {
                self.flush().await;
                let reply = self.sync_step2(&sv);
                self.send_to(peer, reply);
            }
            Inbound::Update(update) => {
                if self.peers.get(&peer).is_some_and(|p| p.is_readonly()) {
                    // Viewers' edits are never applied, stored or relayed.
                    self.shared
                        .metrics
                        .readonly_updates_dropped
                        .fetch_add(1, Relaxed);
                    return;
                }
                self.apply(peer, update)
            }
            Inbound::Awareness { update, frame } => {
                self.shared.metrics.awareness_in.fetch_add(1, Relaxed);
                let identity = self.peers.get(&peer).and_then(|p| p.identity.clone());
                let applied = match self.presence.apply(peer, identity.as_ref(), &update) {
                    Ok(applied) => applied,
                    Err(e) => {
                        self.reject(peer, CloseReason::Policy(e.to_string()));
                        return;
                    }
                };
                if applied.refused > 0 {
                    self.shared
                        .metrics
                        .awareness_refused
                        .fetch_add(applied.refused as u64, Relaxed);
                }
                if let Some(bounce) = applied.bounce {
                    self.send_to(peer, protocol::encode_awareness(&bounce));
                }
                if let Some(forward) = applied.forward {
                    self.publish_awareness(&forward);
                    let bytes = match frame {
                        Some(frame) if applied.all_accepted => frame,
                        _ => protocol::encode_awareness(&forward),
                    };
                    self.broadcast(&bytes, Some(peer));
                }
            }
            Inbound::QueryAwareness => {
                if let Some(states) = self.presence.snapshot() {
                    self.send_to(peer, protocol::encode_awareness(&states));
                }
            }
            Inbound::EmptyUpdate => {}
        }
    }

    /// Tells peers that asked which of their update messages are now
    /// durable (everything handled this turn has been flushed).
    fn send_acks(&mut self) {
        let acks = std::mem::take(&mut self.acks);
        for (peer, ack) in acks {
            for n in ack.refused {
                self.send_to(peer, protocol::encode_ack(protocol::MSG_REJECTED, n));
            }
            self.send_to(
                peer,
                protocol::encode_ack(protocol::MSG_SAVED, ack.received),
            );
            if self.peers.contains_key(&peer) {
                self.acked.insert(peer, ack.received);
            }
        }
    }

    /// The answer to a sync step 1: what the peer lacks.
    fn sync_step2(&mut self, sv: &StateVector) -> Bytes {
        if sv.is_empty() {
            if let Some(cached) = &self.full_state {
                return cached.clone();
            }
        }
        let update = self.doc.transact().encode_state_as_update_v1(sv);
        let msg = protocol::encode_step2(&update);
        if sv.is_empty() {
            self.full_state = Some(msg.clone());
        }
        msg
    }

    fn apply(&mut self, peer: PeerId, u: InboundUpdate) {
        let limit = self.shared.config.limits.max_doc_bytes;
        if self.doc_bytes + u.payload.len() > limit {
            self.reject(peer, CloseReason::DocTooBig);
            return;
        }
        let doc = &self.doc;
        let (update, anchors) = (u.update, u.anchors);
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut txn = doc.transact_mut();
            txn.apply_update(update)?;
            Ok(nesting::check_anchors(&txn, &anchors))
        }));
        match applied {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                // Applied, but it must not stay: the store never gets it,
                // and the document is rebuilt from the store before anyone
                // sees or builds on it.
                self.shared
                    .metrics
                    .updates_refused_nesting
                    .fetch_add(1, Relaxed);
                self.reload = true;
                self.reject(peer, CloseReason::Policy(e.to_string()));
                return;
            }
            Ok(Err(e)) => {
                let e: yrs::error::UpdateError = e;
                self.reject(
                    peer,
                    CloseReason::BadFrame(format!("update does not apply: {e}")),
                );
                return;
            }
            Err(_) => {
                // The doc may be half-modified: rebuild it from the store
                // (which has every update but this one) after this turn.
                self.shared.metrics.update_panics.fetch_add(1, Relaxed);
                tracing::error!(doc = %self.name, peer, "update panicked while applying; reloading room");
                self.reload = true;
                self.reject(
                    peer,
                    CloseReason::BadFrame("update could not be applied".into()),
                );
                return;
            }
        }
        self.full_state = None;
        self.doc_bytes += u.payload.len();
        self.pending.push(Pending {
            origin: Some(peer),
            payload: u.payload,
            frame: u.frame,
            ack: None,
        });
    }

    fn reject(&mut self, peer: PeerId, reason: CloseReason) {
        self.shared
            .metrics
            .peers_closed_bad_input
            .fetch_add(1, Relaxed);
        tracing::info!(doc = %self.name, peer, ?reason, "closing peer for bad input");
        if let Some(p) = self.peers.get(&peer) {
            p.close(reason);
        }
        self.remove_peers(vec![peer]);
    }

    /// Stores every pending update, then sends each to all peers but its
    /// sender. On a store failure nothing is sent and the room fails: its
    /// peers reconnect and their clients resend what was not stored.
    async fn flush(&mut self) {
        if self.pending.is_empty() || self.failed {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let payloads: Vec<Bytes> = pending.iter().map(|p| p.payload.clone()).collect();
        let bytes: u64 = payloads.iter().map(|p| p.len() as u64).sum();
        let started = Instant::now();
        match self.shared.store.append(&self.name, payloads).await {
            Ok(ids) => {
                let metrics = &self.shared.metrics;
                metrics.store_append.observe(started.elapsed());
                metrics.updates_in.fetch_add(ids.len() as u64, Relaxed);
                self.log_entries += ids.len() as u64;
                self.log_bytes += bytes;
                let now = now_ms();
                self.stats.last_update_ms.store(now, Relaxed);
                self.count_edits(&pending, now);
                for p in pending {
                    self.broadcast(&p.frame, p.origin);
                    if let Some(bus) = &self.shared.bus {
                        bus.publish(&self.name, BusKind::Update, p.payload);
                    }
                    if let Some(ack) = p.ack {
                        let _ = ack.send(Ok(()));
                    }
                }
            }
            Err(e) => {
                self.shared.metrics.store_failures.fetch_add(1, Relaxed);
                tracing::error!(doc = %self.name, error = %e, "store append failed; closing room");
                self.failed = true;
                for p in pending {
                    if let Some(ack) = p.ack {
                        let _ = ack.send(Err(CollabError::RoomClosing));
                    }
                }
            }
        }
    }

    /// Counts the stored updates that came from connections, and who sent
    /// them, for usage figures.
    fn count_edits(&self, stored: &[Pending], at: i64) {
        let mut updates = 0;
        let mut users: Vec<Arc<str>> = Vec::new();
        for origin in stored.iter().filter_map(|p| p.origin) {
            updates += 1;
            let user = self
                .peers
                .get(&origin)
                .and_then(|p| p.identity.as_ref())
                .map(|i| i.user_id.clone());
            if let Some(user) = user {
                users.retain(|u| *u != user);
                users.push(user);
            }
        }
        if updates > 0 {
            self.shared.count_edits(&self.name, updates, users, at);
        }
    }

    /// Sends a direct answer to `peer` (not counted as broadcast backlog).
    fn send_to(&mut self, peer: PeerId, msg: Bytes) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let len = msg.len() as u64;
        if p.reply(msg) {
            self.shared.metrics.bytes_out.fetch_add(len, Relaxed);
        } else {
            self.remove_peers(vec![peer]);
        }
    }

    /// Queues `msg` to every peer except `except`. Peers whose queue is
    /// full are closed (1013) and removed, and their presence with them.
    fn broadcast(&mut self, msg: &Bytes, except: Option<PeerId>) {
        let mut lagging = Vec::new();
        let mut sent = 0u64;
        for (id, p) in &self.peers {
            if Some(*id) == except {
                continue;
            }
            if p.send(msg.clone()) {
                sent += 1;
            } else {
                lagging.push(*id);
            }
        }
        let metrics = &self.shared.metrics;
        if msg.first() == Some(&(protocol::MSG_SYNC as u8)) {
            metrics.updates_out.fetch_add(sent, Relaxed);
        }
        metrics
            .bytes_out
            .fetch_add(sent * msg.len() as u64, Relaxed);
        if !lagging.is_empty() {
            self.remove_peers(lagging);
        }
    }

    /// Forgets peers and tells the others their presence is gone.
    fn remove_peers(&mut self, mut ids: Vec<PeerId>) {
        while let Some(id) = ids.pop() {
            let Some(peer) = self.peers.remove(&id) else {
                continue;
            };
            self.acks.remove(&id);
            self.acked.remove(&id);
            if let Some(who) = &peer.identity {
                let mut users = self.stats.users.lock();
                if let Some(n) = users.get_mut(&who.user_id) {
                    *n -= 1;
                    if *n == 0 {
                        users.remove(&who.user_id);
                    }
                }
            }
            if peer.closed() == Some(CloseReason::Lagging) {
                self.shared.metrics.peers_closed_lag.fetch_add(1, Relaxed);
                tracing::info!(doc = %self.name, peer = id, "closed a peer that fell behind");
            }
            if let Some(removal) = self.presence.remove_peer(id) {
                self.publish_awareness(&removal);
                let msg = protocol::encode_awareness(&removal);
                for (other, p) in &self.peers {
                    if !p.send(msg.clone()) {
                        ids.push(*other);
                    }
                }
            }
        }
    }

    /// Sends this replica's presence changes to the other replicas.
    fn publish_awareness(&self, update: &yrs::sync::awareness::AwarenessUpdate) {
        if let Some(bus) = &self.shared.bus {
            use yrs::updates::encoder::Encode;
            bus.publish(
                &self.name,
                BusKind::Awareness,
                Bytes::from(update.encode_v1()),
            );
        }
    }

    /// Handles a message another replica published on this document.
    async fn remote(&mut self, msg: BusMessage) {
        match msg.kind {
            BusKind::Update => {
                // Already stored (and checked) by its replica: apply and
                // pass on. Checked again all the same: the bus is another
                // way in, and nothing nested too deeply may reach yrs.
                let shape = match nesting::scan_update_v1(&msg.payload) {
                    Ok(shape) => shape,
                    Err(e) => {
                        tracing::warn!(doc = %self.name, replica = %msg.replica, error = %e, "refused an update from the bus");
                        return;
                    }
                };
                let Ok(update) = Update::decode_v1(&msg.payload) else {
                    return;
                };
                let doc = &self.doc;
                let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let mut txn = doc.transact_mut();
                    txn.apply_update(update)?;
                    // A waiting parent is fine here (replicas' messages may
                    // arrive out of order); too deep is not.
                    let verdict = nesting::check_anchors(&txn, &shape.anchors);
                    Ok::<_, yrs::error::UpdateError>(!matches!(
                        verdict,
                        Err(nesting::AnchorError::TooDeep)
                    ))
                }));
                if !matches!(applied, Ok(Ok(true))) {
                    self.reload = true;
                    return;
                }
                self.full_state = None;
                self.doc_bytes += msg.payload.len();
                self.broadcast(&protocol::encode_update(&msg.payload), None);
            }
            BusKind::Awareness => {
                use yrs::updates::decoder::Decode as _;
                let Ok(update) = yrs::sync::awareness::AwarenessUpdate::decode_v1(&msg.payload)
                else {
                    return;
                };
                if let Some(forward) = self.presence.apply_remote(&msg.replica, &update) {
                    self.broadcast(&protocol::encode_awareness(&forward), None);
                }
            }
            BusKind::QueryAwareness => {
                if let Some(local) = self.presence.local_snapshot() {
                    self.publish_awareness(&local);
                }
            }
            BusKind::Heal => self.heal().await,
        }
    }

    /// Catches up from the store after a possible gap on the bus: applies
    /// every stored update (idempotent) and sends local peers the difference.
    async fn heal(&mut self) {
        self.flush().await;
        let stored = match self.shared.store.load(&self.name).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(doc = %self.name, error = %e, "heal: cannot read the store");
                return;
            }
        };
        let before = self.doc.transact().state_vector();
        let doc = &self.doc;
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut txn = doc.transact_mut();
            let parts = stored
                .snapshot
                .iter()
                .map(|s| &s.data)
                .chain(stored.log.iter().map(|e| &e.data));
            for data in parts {
                if let Ok(u) = Update::decode_v1(data) {
                    let _ = txn.apply_update(u);
                }
            }
        }));
        if applied.is_err() {
            self.reload = true;
            return;
        }
        let diff = self.doc.transact().encode_state_as_update_v1(&before);
        let changed = Update::decode_v1(&diff)
            .map(|u| !u.is_empty())
            .unwrap_or(false);
        if changed {
            self.full_state = None;
            self.broadcast(&protocol::encode_update(&diff), None);
        }
        // Other replicas may have missed this replica's presence too.
        if let Some(local) = self.presence.local_snapshot() {
            self.publish_awareness(&local);
        }
    }

    /// Rebuilds the doc from the store after a panic left it suspect or an
    /// applied update had to be taken back.
    async fn rebuild(&mut self) {
        self.reload = false;
        let loaded = match compaction::load_doc(&self.shared.store, &self.name).await {
            Ok((doc, stored, repair)) if !repair.is_empty() => {
                persist_repair(&self.shared, &self.name, doc, stored, repair).await
            }
            Ok((doc, stored, _)) => Ok((doc, stored)),
            Err(e) => Err(e),
        };
        match loaded {
            Ok((doc, stored)) => {
                self.doc = doc;
                self.full_state = None;
                self.doc_bytes = stored.byte_len();
            }
            Err(e) => {
                tracing::error!(doc = %self.name, error = %e, "cannot reload room");
                self.failed = true;
            }
        }
    }

    fn maybe_compact(&mut self) {
        let cfg = &self.shared.config;
        let due = self.log_entries >= cfg.compact_after_updates
            || self.log_bytes >= cfg.compact_after_bytes;
        if self.compacting || !due {
            return;
        }
        self.compacting = true;
        let shared = self.shared.clone();
        let name = self.name.clone();
        let me = self.me.clone();
        self.shared.tracker.spawn(async move {
            let result = shared.compact(&name).await;
            if let Some(tx) = me.upgrade() {
                let _ = tx.send(Command::Compacted(result)).await;
            }
        });
    }

    fn compacted(&mut self, c: Compacted) {
        self.log_entries = self.log_entries.saturating_sub(c.merged_entries);
        self.log_bytes = self.log_bytes.saturating_sub(c.merged_bytes);
        self.doc_bytes = (self.doc_bytes + c.snapshot_bytes as usize)
            .saturating_sub(c.merged_bytes as usize + self.snapshot_bytes);
        self.snapshot_bytes = c.snapshot_bytes as usize;
    }

    /// Leaves the registry, refuses late joins (they retry on a new room),
    /// closes peers, and compacts what this room appended.
    async fn finish(mut self, exit: Exit, mut rx: mpsc::Receiver<Command>) {
        self.shared.forget(&self.name, self.generation);
        if let Some(bus) = &self.shared.bus {
            bus.unsubscribe(&self.name);
        }
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Command::Join { reply, .. } | Command::Edit { reply, .. } => {
                    let _ = reply.send(Err(CollabError::RoomClosing));
                }
                Command::Evict { reply, .. } => {
                    let _ = reply.send(());
                }
                Command::Frame { .. }
                | Command::EndSessions { .. }
                | Command::Leave { .. }
                | Command::Compacted(_)
                | Command::Read(_)
                | Command::Access { .. }
                | Command::Remote(_)
                | Command::ReplicaGone(_) => {}
            }
        }
        // Updates applied but never stored were never sent either; their
        // senders still hold them and resend after reconnecting.
        if !matches!(exit, Exit::Failed) {
            self.flush().await;
        }
        // Idle unload and shutdown fold the log into the snapshot, so the
        // next load (after a restart, too) reads one snapshot instead of
        // replaying the log. Shutdown waits for it within its grace period.
        let compact = matches!(exit, Exit::Idle | Exit::Shutdown);
        let (reason, evicted) = match exit {
            Exit::Shutdown => (CloseReason::ShuttingDown, None),
            Exit::Idle | Exit::Failed => (CloseReason::Unavailable, None),
            Exit::Evicted(reason, reply) => (reason, Some(reply)),
        };
        for peer in self.peers.values() {
            peer.close(reason.clone());
        }
        self.stats.users.lock().clear();
        self.shared.metrics.rooms_loaded.fetch_sub(1, Relaxed);
        if compact && self.log_entries > 0 {
            let shared = self.shared.clone();
            let name = self.name.clone();
            self.shared.tracker.spawn(async move {
                // A compaction still running holds the lease and covers
                // only what it read: wait for it, then fold the rest.
                for _ in 0..UNLOAD_COMPACT_TRIES {
                    match shared.compact(&name).await {
                        Ok(Some(_)) => return,
                        Ok(None) => tokio::time::sleep(UNLOAD_COMPACT_RETRY).await,
                        Err(e) => {
                            tracing::warn!(doc = %name, error = %e, "compaction on unload failed");
                            return;
                        }
                    }
                }
            });
        }
        tracing::debug!(doc = %self.name, "room unloaded");
        if let Some(reply) = evicted {
            let _ = reply.send(());
        }
    }
}

/// A document stored before the nesting limit, just cut back by
/// [`nesting::repair`]: its repaired state becomes its snapshot before
/// anyone sees it (the deletions are never logged: replaying a deep
/// subtree and its deletion in one transaction is what must not happen),
/// then other replicas get the deletions, one level per message.
async fn persist_repair(
    shared: &Arc<Shared>,
    name: &Arc<str>,
    doc: Doc,
    stored: StoredDoc,
    repair: Vec<Vec<u8>>,
) -> Result<(Doc, StoredDoc), CollabError> {
    tracing::warn!(
        doc = %name,
        levels = repair.len(),
        "document nests deeper than {} levels (stored before that limit); cutting it back",
        nesting::MAX_NESTING
    );
    let stored = shared.store_repaired(name, &doc, &stored).await?;
    shared.metrics.documents_repaired.fetch_add(1, Relaxed);
    if let Some(bus) = &shared.bus {
        for level in repair {
            bus.publish(name, BusKind::Update, Bytes::from(level));
        }
    }
    Ok((doc, stored))
}

/// Runs `build` (the document rebuilt from a snapshot with an empty log)
/// while answering the inbox from `state`, the snapshot as a sync step 2:
/// joins are let in and a fresh client's sync step 1 is answered at once,
/// everything else is kept in `deferred`, in arrival order, for the room
/// to handle once the document is built (joins again, to send them the
/// room's state vector and presence then).
async fn serve_while_building<T>(
    build: impl std::future::Future<Output = Result<T, CollabError>>,
    rx: &mut mpsc::Receiver<Command>,
    state: &Bytes,
    deferred: &mut Vec<Command>,
) -> Result<T, CollabError> {
    tokio::pin!(build);
    let mut joined: HashMap<PeerId, Arc<Peer>> = HashMap::new();
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            built = &mut build => return built,
            cmd = rx.recv(), if open => match cmd {
                None => open = false,
                Some(Command::Join { peer, reply }) => {
                    joined.insert(peer.id, peer.clone());
                    let _ = reply.send(Ok(()));
                    let (reply, _) = oneshot::channel();
                    deferred.push(Command::Join { peer, reply });
                }
                Some(Command::Frame { peer, mut messages }) => {
                    if let Some(p) = joined.get(&peer) {
                        messages.retain(|m| match m {
                            Inbound::SyncStep1(sv) if sv.is_empty() => {
                                p.reply(state.clone());
                                false
                            }
                            _ => true,
                        });
                    }
                    if !messages.is_empty() {
                        deferred.push(Command::Frame { peer, messages });
                    }
                }
                Some(cmd) => deferred.push(cmd),
            },
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    /// While the document is being built, a fresh client's sync step 1 is
    /// answered from the snapshot at once; the rest waits, in order.
    #[tokio::test]
    async fn a_snapshot_answers_fresh_clients_while_the_document_builds() {
        let (tx, mut rx) = mpsc::channel(16);
        let (release, gate) = oneshot::channel::<()>();
        let build = async move {
            let _ = gate.await;
            Ok((Doc::new(), StoredDoc::default()))
        };
        let state = Bytes::from_static(b"snapshot as step 2");
        let peer = Arc::new(Peer::new(&Limits::default()));
        let (joined, join_answer) = oneshot::channel();
        tx.send(Command::Join {
            peer: peer.clone(),
            reply: joined,
        })
        .await
        .unwrap();
        let old_client = StateVector::from_iter([(yrs::ClientID::new(7), 3u32)]);
        tx.send(Command::Frame {
            peer: peer.id,
            messages: vec![
                Inbound::SyncStep1(StateVector::default()),
                Inbound::QueryAwareness,
                Inbound::SyncStep1(old_client),
            ],
        })
        .await
        .unwrap();
        tx.send(Command::Leave { peer: peer.id }).await.unwrap();

        let mut deferred = Vec::new();
        {
            let serving = serve_while_building(build, &mut rx, &state, &mut deferred);
            tokio::pin!(serving);
            // Serve the inbox until the answer is out; the build is still held.
            let answered = async {
                let wait = std::time::Duration::from_secs(5);
                tokio::time::timeout(wait, async {
                    loop {
                        if let Some(out) = peer.try_next() {
                            return out;
                        }
                        tokio::task::yield_now().await;
                    }
                })
                .await
                .expect("no answer while the document was building")
            };
            tokio::select! {
                _ = &mut serving => panic!("the build finished before it was released"),
                out = answered => match out {
                    crate::peer::Outbound::Messages(m) => assert_eq!(m, vec![state.clone()]),
                    crate::peer::Outbound::Close(r) => panic!("closed: {r:?}"),
                },
            }
            assert!(
                join_answer.await.unwrap().is_ok(),
                "the join is let in at once"
            );
            release.send(()).unwrap();
            serving.await.expect("built");
        }
        let kinds: Vec<String> = deferred
            .iter()
            .map(|c| match c {
                Command::Join { .. } => "join".to_string(),
                Command::Frame { messages, .. } => format!("frame x{}", messages.len()),
                Command::Leave { .. } => "leave".to_string(),
                _ => "other".to_string(),
            })
            .collect();
        assert_eq!(kinds, ["join", "frame x2", "leave"]);
    }
}
