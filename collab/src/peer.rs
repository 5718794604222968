//! A peer: one connection as a room sees it.
//!
//! The room never touches a socket. It pushes encoded messages into the
//! peer's **bounded** outbound queue and moves on; the server's writer task
//! for that connection drains the queue. The queue is bounded in messages
//! and bytes: when a push would overflow it, the peer is marked closed with
//! [`CloseReason::Lagging`] instead of dropping the message. The writer
//! then closes the socket (code 1013) and the client reconnects and
//! resyncs, so a slow reader costs only itself and loses nothing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::CloseReason;
use crate::Limits;

/// Process-unique peer id.
pub type PeerId = u64;

/// Who is behind a connection, as the server authenticated them. The room
/// stamps it into the peer's presence so nobody can pose as someone else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Arc<str>,
    pub name: Arc<str>,
    pub color: Arc<str>,
    /// The sign-in session the connection was opened with: when it ends
    /// (logout, password change, revocation), so does the connection.
    pub session: Option<Arc<str>>,
}

/// Which of a user's sign-in sessions ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionSet {
    /// Exactly this one.
    One(Arc<str>),
    /// Every session but this one (`None`: all of them).
    AllBut(Option<Arc<str>>),
}

impl SessionSet {
    /// Is `session` one of them?
    pub fn contains(&self, session: &str) -> bool {
        match self {
            SessionSet::One(s) => &**s == session,
            SessionSet::AllBut(keep) => keep.as_deref() != Some(session),
        }
    }
}

static NEXT_PEER: AtomicU64 = AtomicU64::new(1);

struct Queue {
    items: VecDeque<Bytes>,
    bytes: usize,
    /// Set once; after that nothing more is queued.
    closed: Option<CloseReason>,
}

/// One connection's outbound side. Shared (`Arc`) by the room that fills
/// it and the writer task that drains it.
pub struct Peer {
    pub id: PeerId,
    /// The authenticated user, `None` when authentication is off.
    pub identity: Option<Identity>,
    /// Read-only peers (viewers) receive everything, may send presence, but
    /// their document updates are never applied, stored or relayed. Atomic
    /// because a role change takes effect on a live connection.
    readonly: AtomicBool,
    /// The client asked for durable acknowledgements (Coform's SDK).
    pub acks: bool,
    /// Outbound messages and the close flag, under one short-held lock.
    queue: Mutex<Queue>,
    /// Wakes the writer (the only waiter) when a message is queued or the
    /// peer is closed.
    ready: Notify,
    /// Cancelled when the peer is closed; any number of tasks may wait on
    /// it (the reader, and the writer while a write is blocked).
    closed_signal: CancellationToken,
    max_bytes: usize,
    max_messages: usize,
}

/// What the writer gets from [`Peer::next`].
pub enum Outbound {
    /// Messages to write, in order.
    Messages(Vec<Bytes>),
    /// The peer was closed; write a close frame with this reason.
    Close(CloseReason),
}

impl Peer {
    /// An anonymous peer that may write (authentication off).
    pub fn new(limits: &Limits) -> Self {
        Self::with_identity(limits, None, false)
    }

    /// A peer for an authenticated user.
    pub fn with_identity(limits: &Limits, identity: Option<Identity>, readonly: bool) -> Self {
        Peer {
            id: NEXT_PEER.fetch_add(1, Ordering::Relaxed),
            identity,
            readonly: AtomicBool::new(readonly),
            acks: false,
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                closed: None,
            }),
            ready: Notify::new(),
            closed_signal: CancellationToken::new(),
            max_bytes: limits.peer_queue_bytes,
            max_messages: limits.peer_queue_messages,
        }
    }

    /// Turns durable acknowledgements on (before the peer is shared).
    pub fn with_acks(mut self, on: bool) -> Self {
        self.acks = on;
        self
    }

    pub fn is_readonly(&self) -> bool {
        self.readonly.load(Ordering::Relaxed)
    }

    pub fn set_readonly(&self, readonly: bool) {
        self.readonly.store(readonly, Ordering::Relaxed);
    }

    /// Queues one message. Returns `false` if the peer is closed, or was
    /// just closed because the message did not fit (the caller should then
    /// forget the peer).
    pub fn send(&self, msg: Bytes) -> bool {
        let mut q = self.queue.lock();
        if q.closed.is_some() {
            return false;
        }
        // An empty backlog always takes one message, however large.
        if q.bytes > 0
            && (q.items.len() >= self.max_messages || q.bytes + msg.len() > self.max_bytes)
        {
            q.closed = Some(CloseReason::Lagging);
            q.items.clear();
            q.bytes = 0;
            drop(q);
            self.ready.notify_one();
            self.closed_signal.cancel();
            return false;
        }
        q.bytes += msg.len();
        q.items.push_back(msg);
        drop(q);
        self.ready.notify_one();
        true
    }

    /// Queues a direct answer to something this peer asked for (its sync
    /// step 2, the presence snapshot). Such answers are bounded by what the
    /// peer itself sends, so they do not count toward the lag budget: a
    /// joiner of a document larger than the budget is synced, not closed.
    /// Returns `false` if the peer is closed.
    pub fn reply(&self, msg: Bytes) -> bool {
        let mut q = self.queue.lock();
        if q.closed.is_some() {
            return false;
        }
        q.items.push_back(msg);
        drop(q);
        self.ready.notify_one();
        true
    }

    /// Closes the peer with `reason` unless it is already closed. Queued
    /// messages are discarded: its client resyncs when it reconnects.
    pub fn close(&self, reason: CloseReason) {
        let mut q = self.queue.lock();
        if q.closed.is_none() {
            q.closed = Some(reason);
            q.items.clear();
            q.bytes = 0;
        }
        drop(q);
        self.ready.notify_one();
        self.closed_signal.cancel();
    }

    /// The reason the peer was closed, if it was.
    pub fn closed(&self) -> Option<CloseReason> {
        self.queue.lock().closed.clone()
    }

    /// Waits for queued messages or a close, taking everything queued at
    /// once so the writer can send it with a single flush.
    pub async fn next(&self) -> Outbound {
        loop {
            let notified = self.ready.notified();
            if let Some(out) = self.try_next() {
                return out;
            }
            notified.await;
        }
    }

    /// Takes whatever is queued without waiting: `None` when nothing is.
    pub fn try_next(&self) -> Option<Outbound> {
        let mut q = self.queue.lock();
        if let Some(reason) = &q.closed {
            return Some(Outbound::Close(reason.clone()));
        }
        if q.items.is_empty() {
            return None;
        }
        q.bytes = 0;
        Some(Outbound::Messages(q.items.drain(..).collect()))
    }

    /// Resolves once the peer is closed (used to abort a blocked write).
    pub async fn wait_closed(&self) -> CloseReason {
        self.closed_signal.cancelled().await;
        self.closed().unwrap_or(CloseReason::Normal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bytes: usize, messages: usize) -> Limits {
        Limits {
            peer_queue_bytes: bytes,
            peer_queue_messages: messages,
            ..Limits::default()
        }
    }

    #[tokio::test]
    async fn overflow_closes_with_lagging_instead_of_dropping() {
        let peer = Peer::new(&limits(10, 100));
        assert!(peer.send(Bytes::from_static(b"12345678")));
        assert!(
            !peer.send(Bytes::from_static(b"abc")),
            "would exceed 10 bytes"
        );
        assert_eq!(peer.closed(), Some(CloseReason::Lagging));
        assert!(!peer.send(Bytes::from_static(b"x")));
        assert!(matches!(
            peer.next().await,
            Outbound::Close(CloseReason::Lagging)
        ));
    }

    #[tokio::test]
    async fn writer_takes_everything_queued_at_once() {
        let peer = Peer::new(&limits(1 << 20, 100));
        for i in 0..5u8 {
            assert!(peer.send(Bytes::from(vec![i])));
        }
        let Outbound::Messages(batch) = peer.next().await else {
            panic!()
        };
        assert_eq!(batch.len(), 5);
        assert_eq!(batch[4][0], 4);
        // The byte budget is free again after draining.
        assert!(peer.send(Bytes::from(vec![0u8; 1 << 20])));
    }

    #[test]
    fn try_next_takes_what_is_queued_without_waiting() {
        let peer = Peer::new(&limits(1 << 20, 100));
        assert!(peer.try_next().is_none());
        assert!(peer.send(Bytes::from_static(b"a")));
        assert!(peer.send(Bytes::from_static(b"b")));
        let Some(Outbound::Messages(batch)) = peer.try_next() else {
            panic!()
        };
        assert_eq!(batch.len(), 2);
        assert!(peer.try_next().is_none());
        peer.close(CloseReason::ShuttingDown);
        assert!(matches!(
            peer.try_next(),
            Some(Outbound::Close(CloseReason::ShuttingDown))
        ));
    }

    #[tokio::test]
    async fn close_wakes_every_waiter() {
        let peer = std::sync::Arc::new(Peer::new(&limits(1 << 20, 100)));
        let (a, b) = (peer.clone(), peer.clone());
        let reader = tokio::spawn(async move { a.wait_closed().await });
        let writer = tokio::spawn(async move { matches!(b.next().await, Outbound::Close(_)) });
        tokio::task::yield_now().await;
        peer.close(CloseReason::ShuttingDown);
        assert_eq!(reader.await.unwrap(), CloseReason::ShuttingDown);
        assert!(writer.await.unwrap());
    }

    #[tokio::test]
    async fn replies_do_not_count_toward_the_lag_budget() {
        let peer = Peer::new(&limits(10, 100));
        assert!(
            peer.reply(Bytes::from(vec![0u8; 1000])),
            "a sync reply larger than the budget"
        );
        assert!(
            peer.send(Bytes::from_static(b"12345678")),
            "broadcast backlog is still empty"
        );
        assert!(
            !peer.send(Bytes::from_static(b"abc")),
            "backlog over budget"
        );
        assert_eq!(peer.closed(), Some(CloseReason::Lagging));
    }

    #[tokio::test]
    async fn a_large_message_to_an_idle_peer_is_not_lag() {
        let peer = Peer::new(&limits(10, 100));
        assert!(peer.send(Bytes::from(vec![0u8; 100])));
        assert_eq!(peer.closed(), None);
    }
}
