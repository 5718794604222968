//! # coform-collab
//!
//! The collaboration core: the y-websocket protocol, rooms, the room
//! registry and presence. It knows nothing of HTTP, sockets or database
//! drivers: a peer is a [`Peer`] handle with a bounded outbound queue, and
//! storage is reached only through [`coform_storage::DocStore`].
//!
//! # Layout
//!
//! - [`protocol`]: decoding inbound frames into commands and encoding
//!   outbound messages (y-websocket framing, on top of `yrs::sync`).
//! - [`peer`]: [`Peer`], one connection as the room sees it: an id, a
//!   bounded outbound queue, and a close signal.
//! - [`presence`]: awareness bookkeeping: which connection owns which
//!   awareness client, clocks, removal when a connection goes away.
//! - [`room`]: the room task, the single owner of one document in memory:
//!   apply, store (group commit), then broadcast. Its modules, by job:
//!   the loop (`room`), `load` (loading and repair), `update` (applying
//!   updates and server edits), `peers` (joins, access, presence),
//!   `flush` (store, then broadcast), `remote` (other replicas' messages)
//!   and `unload` (compaction and the end of a room).
//! - [`registry`]: document name to running room; loads rooms on first
//!   join and lets them unload after a grace period.
//! - [`content`]: a template document as JSON, and JSON applied back as a
//!   minimal CRDT edit (used by the REST API).
//! - [`bus`]: fan-out to other replicas through Redis pub/sub, with
//!   healing from the store after gaps, replica heartbeats, and the
//!   access channel that carries access changes to every replica.
//! - [`access`]: access changes on live connections ([`AccessEvent`])
//!   and the server's [`AccessCheck`], asked again after a replica may
//!   have missed some.
//! - [`compaction`]: merging a document's snapshot and log into a new
//!   snapshot, deleting exactly the merged entries.
//! - [`guard`]: the schema guard: checks the components each update
//!   touched against the form model and repairs what it left invalid.
//! - [`metrics`]: counters and histograms rendered as Prometheus text.
//! - [`error`]: [`CollabError`] and [`CloseReason`].
//!
//! # The one rule
//!
//! No update is broadcast before the store has committed it: the room
//! applies a batch of updates, appends them in one store call, and only
//! when that returns sends them on. Anything a client has seen survives a
//! crash.

pub mod access;
pub mod bus;
pub mod compaction;
pub mod content;
pub mod error;
pub mod guard;
pub mod metrics;
pub mod nesting;
pub mod peer;
pub mod presence;
pub mod protocol;
pub mod registry;
pub mod room;

pub use access::{AccessCheck, AccessEvent, Grant};
pub use error::{CloseReason, CollabError};
pub use metrics::Metrics;
pub use peer::{Identity, Peer, PeerId, SessionSet};
pub use registry::{EditCount, Registry, RoomConfig};
pub use room::{DocEdit, RoomHandle};

/// Limits that protect a room and the process from one peer.
///
/// Their defaults are [`Limits::DEFAULT`], stated once: the server's flags
/// take their default values from it too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest inbound WebSocket frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Largest stored size of one document (snapshot + log), in bytes.
    pub max_doc_bytes: usize,
    /// Sustained inbound messages per second per peer; bursts of twice
    /// this are allowed, beyond that reading from the peer pauses.
    pub max_messages_per_sec: u32,
    /// Bytes that may wait in one peer's outbound queue before the peer is
    /// considered too slow and closed (its client resyncs on reconnect).
    pub peer_queue_bytes: usize,
    /// Messages that may wait in one peer's outbound queue.
    pub peer_queue_messages: usize,
    /// Awareness (presence) states one connection may own, and carry in
    /// one message. A y-websocket client has one.
    pub max_awareness_states_per_peer: usize,
    /// Largest awareness state (its JSON), in bytes.
    pub max_awareness_state_bytes: usize,
    /// Live awareness states one room keeps, from all its connections and
    /// replicas; beyond it new states are not relayed (counted in
    /// `coform_awareness_refused_total`).
    pub max_awareness_states_per_room: usize,
    /// Total bytes of live awareness states one room keeps.
    pub max_awareness_bytes_per_room: usize,
    /// Removed awareness clients remembered per room (to let a returning
    /// client show again at once); the oldest are forgotten first.
    pub max_awareness_tombstones: usize,
}

impl Limits {
    /// The default of every limit.
    pub const DEFAULT: Limits = Limits {
        max_frame_bytes: 16 << 20,
        max_doc_bytes: 64 << 20,
        max_messages_per_sec: 500,
        peer_queue_bytes: 16 << 20,
        peer_queue_messages: 16_384,
        max_awareness_states_per_peer: 8,
        max_awareness_state_bytes: 16 << 10,
        max_awareness_states_per_room: 4_096,
        max_awareness_bytes_per_room: 8 << 20,
        max_awareness_tombstones: 4_096,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
