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
//!
//! # Layout
//!
//! - this module: the room's state, its inbox ([`RoomHandle`], `Command`)
//!   and the loop: `Room::run`, one turn, dispatching each command.
//! - `load`: loading the document (serving fresh clients from a snapshot
//!   while it builds), repairing documents stored before the nesting
//!   limit, and rebuilding from the store after a taken-back update.
//! - `update`: a peer's sync messages and updates, and server-side
//!   edits: applied to the `Doc` and kept pending, or refused.
//! - `peers`: joining, access and session changes, presence messages, and
//!   removing peers with their presence.
//! - `flush`: storing what is pending, then broadcasting it; durable acks.
//! - `remote`: messages from other replicas (updates, presence), and
//!   healing after a gap on the bus: by asking the replica whose messages
//!   were missed, or from the store.
//! - `unload`: compaction while loaded, and the end of a room.

mod flush;
mod load;
mod peers;
mod presence_out;
mod remote;
mod unload;
mod update;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use yrs::Doc;

use crate::access::Grant;
use crate::bus::BusMessage;
use crate::compaction::Compacted;
use crate::error::{CloseReason, CollabError};
use crate::guard::Guard;
use crate::peer::{Identity, Peer, PeerId, SessionSet};
use crate::presence::Presence;
use crate::protocol::Inbound;
use crate::registry::Shared;
use load::{load, Loaded};

/// Most commands handled in one turn before the batch is committed.
const MAX_BATCH: usize = 512;

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
    /// Access events may have been missed: ask the server's access check
    /// about every connected identity (in the background).
    Recheck,
    /// The answers of a re-check, to apply.
    Verdicts(Vec<(Identity, Grant)>),
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
    /// The server's repair of what this update left invalid: stored with
    /// it, sent to every peer right after it, and published with it as one
    /// update (other replicas never see the invalid form alone). An entry
    /// with an empty `payload` is a repair alone (of an update from another
    /// replica, which is stored already).
    repair: Option<Repair>,
}

/// A repair made by the schema guard, and its notices for peers that take
/// Coform's extensions.
struct Repair {
    payload: Bytes,
    frame: Bytes,
    /// For the connection whose update it repaired.
    notice_sender: Bytes,
    /// For everyone else.
    notice_others: Bytes,
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
    /// The store refused the document: it was deleted for good.
    Deleted,
    Evicted(CloseReason, oneshot::Sender<()>),
}

pub(crate) struct Room {
    name: Arc<str>,
    generation: u64,
    shared: Arc<Shared>,
    doc: Doc,
    /// Watches `doc` for what each update touched (the schema guard);
    /// `None` when checking is off (only to measure what it costs).
    guard: Option<Guard>,
    presence: Presence,
    /// Presence changes held for the next presence window.
    presence_out: presence_out::PresenceOut,
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
    /// Set with `failed` when the store said the document was deleted for
    /// good: peers are closed with 4403, not told to retry.
    deleted: bool,
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
    /// Heals asked of other replicas, by replica, awaiting their answer.
    exchanges: HashMap<Arc<str>, remote::Exchange>,
    /// Other replicas known to hold this document: updates and presence
    /// are published only while there is one (see `crate::bus`).
    others: HashSet<Arc<str>>,
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
        // Subscribe first, then read the store: see `crate::bus`.
        if let Some(bus) = &shared.bus {
            bus.subscribe(&name).await;
        }
        let Some(Loaded {
            doc,
            stored,
            full_state,
            deferred,
        }) = load(&name, generation, &shared, &mut rx).await
        else {
            return;
        };
        shared.metrics.room_load.observe(started.elapsed());
        shared.metrics.rooms_loaded.inc();
        let snapshot_bytes = stored.snapshot.as_ref().map_or(0, |s| s.data.len());
        let presence = Presence::new(&shared.config.limits);
        let guard = Guard::watch_if(shared.config.check_schema, &doc);
        let mut room = Room {
            name,
            generation,
            shared,
            doc,
            guard,
            presence,
            peers: HashMap::new(),
            pending: Vec::new(),
            full_state,
            doc_bytes: stored.byte_len(),
            snapshot_bytes,
            log_entries: stored.log.len() as u64,
            log_bytes: stored.log.iter().map(|e| e.data.len() as u64).sum(),
            compacting: false,
            idle_since: Some(Instant::now()),
            reload: false,
            failed: false,
            deleted: false,
            me,
            stats,
            acks: HashMap::new(),
            acked: HashMap::new(),
            evicted: None,
            presence_out: Default::default(),
            exchanges: HashMap::new(),
            others: HashSet::new(),
        };
        tracing::debug!(doc = %room.name, ms = started.elapsed().as_millis() as u64, "room loaded");
        // Other replicas holding the document learn of this one, and send
        // what it lacks and their presence.
        room.announce();
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
            let presence_due = self.presence_out.due();
            let exchange_due = self.exchange_due();
            let first = tokio::select! {
                biased;
                _ = self.shared.shutdown.cancelled() => return Exit::Shutdown,
                _ = tokio::time::sleep_until(exchange_due.unwrap_or_else(tokio::time::Instant::now)),
                    if exchange_due.is_some() => {
                    self.exchanges_timed_out().await;
                    if let Some(exit) = self.end_turn().await {
                        return exit;
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(presence_due.unwrap_or_else(tokio::time::Instant::now)),
                    if presence_due.is_some() => {
                    self.send_held_presence();
                    continue;
                }
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
            return Some(if self.deleted {
                Exit::Deleted
            } else {
                Exit::Failed
            });
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
            Command::Join { peer, reply } => self.join(peer, reply).await,
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
            Command::Access { user, readonly } => self.set_access(user, readonly),
            Command::EndSessions { user, sessions } => self.end_sessions(user, sessions),
            Command::Evict { reason, reply } => self.evicted = Some((reason, reply)),
            Command::Recheck => self.recheck(),
            Command::Verdicts(verdicts) => self.apply_verdicts(verdicts),
            Command::Remote(msg) => self.remote(msg).await,
            Command::ReplicaGone(replica) => {
                // Kept in `others`: a replica taken for dead by a missed
                // heartbeat may still hold the document, and must not
                // miss updates for it (publishing to no one costs little).
                self.replica_gone_mid_exchange(&replica).await;
                if let Some(removal) = self.presence.remove_replica(&replica) {
                    self.broadcast_presence(removal, None, None);
                }
            }
        }
    }
}
