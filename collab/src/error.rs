//! Errors of the collaboration core and the reasons a peer gets closed.

use coform_storage::StoreError;

/// Why a room operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CollabError {
    /// The document could not be loaded or stored.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored data does not decode as Yjs updates.
    #[error("document `{doc}` has undecodable stored data: {detail}")]
    CorruptDocument { doc: String, detail: String },
    /// The room is shutting down; the caller may retry on a new room.
    #[error("room is closing")]
    RoomClosing,
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
    /// An update was rejected (does not decode, or breaks a limit).
    #[error("update rejected: {0}")]
    BadUpdate(String),
    /// A server-side edit or read of the document panicked: a bug of ours,
    /// not of the request. The room rebuilds its document from the store.
    #[error("{0} panicked")]
    Panicked(String),
    /// The fan-out bus is misconfigured (bad Redis URL).
    #[error("fan-out bus: {0}")]
    Bus(String),
}

impl CollabError {
    /// The same failure again, for each of several callers waiting on it
    /// (a room that could not load answers every waiting join and edit).
    pub(crate) fn duplicate(&self) -> CollabError {
        match self {
            CollabError::Store(e) => CollabError::Store(match e {
                StoreError::Unavailable(s) => StoreError::Unavailable(s.clone()),
                StoreError::Corrupt(s) => StoreError::Corrupt(s.clone()),
                StoreError::Closed => StoreError::Closed,
                StoreError::Conflict(s) => StoreError::Conflict(s.clone()),
                StoreError::NotFound(s) => StoreError::NotFound(s.clone()),
                StoreError::Constraint(c) => StoreError::Constraint(c),
                StoreError::Deleted(s) => StoreError::Deleted(s.clone()),
            }),
            CollabError::CorruptDocument { doc, detail } => CollabError::CorruptDocument {
                doc: doc.clone(),
                detail: detail.clone(),
            },
            CollabError::RoomClosing => CollabError::RoomClosing,
            CollabError::ShuttingDown => CollabError::ShuttingDown,
            CollabError::BadUpdate(s) => CollabError::BadUpdate(s.clone()),
            CollabError::Panicked(s) => CollabError::Panicked(s.clone()),
            CollabError::Bus(s) => CollabError::Bus(s.clone()),
        }
    }
}

/// Why the server closes a peer's connection. The server maps each to a
/// WebSocket close code (see the server crate's error module).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer's outbound queue overflowed: it reads too slowly. Its client
    /// reconnects and resyncs; nothing is lost.
    Lagging,
    /// An inbound frame exceeded the frame limit.
    FrameTooBig,
    /// Applying the peer's update would exceed the document size limit.
    DocTooBig,
    /// A frame that does not decode as the y-websocket protocol.
    BadFrame(String),
    /// A text frame (the protocol is binary).
    TextFrame,
    /// The peer stopped answering pings.
    Timeout,
    /// The room could not be loaded or its store failed.
    Unavailable,
    /// The server is restarting or shutting down.
    ShuttingDown,
    /// The client closed the connection (or it dropped).
    Normal,
    /// The user lost access to the document (removed, or it was deleted).
    Forbidden,
    /// Well-formed input against the server's rules (nesting, presence
    /// limits): a policy violation.
    Policy(String),
    /// The sign-in session the connection was opened with has ended
    /// (logout, password change or reset, session revoked).
    SessionEnded,
}

impl CloseReason {
    /// A short human-readable reason for the close frame (≤ 123 bytes).
    pub fn message(&self) -> String {
        let text = match self {
            CloseReason::Lagging => "too slow: outbound queue full, reconnect to resync".into(),
            CloseReason::FrameTooBig => "frame exceeds the size limit".into(),
            CloseReason::DocTooBig => "document would exceed its size limit".into(),
            CloseReason::BadFrame(why) => format!("bad frame: {why}"),
            CloseReason::TextFrame => "text frames are not supported".into(),
            CloseReason::Timeout => "no answer to ping".into(),
            CloseReason::Unavailable => "document unavailable, retry later".into(),
            CloseReason::ShuttingDown => "server restarting".into(),
            CloseReason::Normal => String::new(),
            CloseReason::Forbidden => "access to this document was revoked".into(),
            CloseReason::Policy(why) => format!("refused: {why}"),
            CloseReason::SessionEnded => "your session has ended; sign in again".into(),
        };
        let mut text: String = text;
        if text.len() > 120 {
            let mut cut = 120;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        text
    }
}
