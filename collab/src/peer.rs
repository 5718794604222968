//! A peer: one connection as a room sees it.
//!
//! The room never touches a socket. It pushes encoded messages into the
//! peer's **bounded** outbound queue and moves on; the server's writer task
//! for that connection drains the queue. The queue is bounded in messages
//! and bytes: when a push would overflow it, the peer is marked closed with
//! [`CloseReason::Lagging`] instead of dropping the message. The writer
//! then closes the socket (code 1013) and the client reconnects and
//! resyncs, so a slow reader costs only itself and loses nothing.
//!
//! # Presence is coalesced, documents never
//!
//! Pointers move at cursor rate, so a peer that reads a little slowly
//! would otherwise get a backlog of positions that are already stale, and
//! be closed for it. Awareness is state-based (every state carries its
//! client's clock and receivers keep the highest), so only the latest
//! state of each awareness client matters: a presence message queued with
//! [`Peer::send_presence`] replaces every still-unsent presence message
//! whose clients it all carries. The replaced message is dropped from its
//! place and the new one goes to the end of the queue, so a state never
//! overtakes a document update that was queued before it. Removals (state
//! `null`) are states like any other: the latest one wins and is sent.
//! Document updates ([`Peer::send`]) are never dropped, replaced or
//! reordered.

use std::collections::{HashMap, VecDeque};
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

/// The awareness client ids a presence message carries, sorted and
/// without duplicates. Shared by every peer the message is queued to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceTag(Arc<[u64]>);

impl PresenceTag {
    /// The tag of a message carrying these clients.
    pub fn new(clients: impl IntoIterator<Item = u64>) -> Self {
        let mut ids: Vec<u64> = clients.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        PresenceTag(ids.into())
    }

    /// Does this message carry every client of `older`?
    fn covers(&self, older: &PresenceTag) -> bool {
        match (&*older.0, &*self.0) {
            // The common case: one pointer's move after another.
            ([old], [new]) => old == new,
            (old, new) => {
                old.len() <= new.len() && old.iter().all(|c| new.binary_search(c).is_ok())
            }
        }
    }

    /// One bit per client (by its id modulo 64), for [`Queue::clients`].
    fn bits(&self) -> u64 {
        self.0.iter().fold(0, |bits, c| bits | 1 << (c % 64))
    }
}

/// One queued message.
struct Queued {
    msg: Bytes,
    /// Counted in the byte budget (a broadcast, not a direct reply).
    counted: bool,
    /// The awareness clients of a presence message that a newer one may
    /// replace; `None` for everything else.
    presence: Option<PresenceTag>,
    /// Replaced by a newer presence message: left in place, never sent.
    superseded: bool,
}

/// Up to this many queued messages, a new presence message finds the ones
/// it replaces by scanning the queue. Beyond it (a peer falling behind) an
/// index of each client's latest presence message is built and kept until
/// the queue is taken: a peer that keeps up pays no hashing per message.
const SCAN_LIMIT: usize = 16;

struct Queue {
    items: VecDeque<Queued>,
    /// Bytes of the live broadcast messages (the lag budget).
    bytes: usize,
    /// Messages queued and not superseded (the message bound). Superseded
    /// entries hold no bytes and are swept out before they outnumber the
    /// live ones, so the queue stays bounded by the message bound.
    live: usize,
    /// [`PresenceTag::bits`] of every presence message queued: a new one
    /// none of whose bits are set replaces nothing, without a scan.
    clients: u64,
    /// Whether `latest` is in use (more than [`SCAN_LIMIT`] queued).
    indexed: bool,
    /// For each awareness client, the index in `items` of the latest
    /// queued presence message that carries it (while `indexed`).
    latest: HashMap<u64, usize>,
    /// Set once; after that nothing more is queued.
    closed: Option<CloseReason>,
}

impl Queue {
    /// Marks every queued presence message that `tag` covers as
    /// superseded, takes it out of the budget, and returns how many.
    fn supersede(&mut self, tag: &PresenceTag) -> usize {
        let mut replaced = 0;
        if self.clients & tag.bits() == 0 {
            return 0;
        }
        if !self.indexed {
            for i in 0..self.items.len() {
                replaced += usize::from(self.retire(i, tag));
            }
            return replaced;
        }
        for client in tag.0.iter() {
            if let Some(&i) = self.latest.get(client) {
                replaced += usize::from(self.retire(i, tag));
            }
        }
        replaced
    }

    /// Supersedes `items[i]` if it is a live presence message that `tag`
    /// covers, releasing its bytes.
    fn retire(&mut self, i: usize, tag: &PresenceTag) -> bool {
        let Some(item) = self.items.get_mut(i) else {
            return false;
        };
        if item.superseded || !item.presence.as_ref().is_some_and(|old| tag.covers(old)) {
            return false;
        }
        item.superseded = true;
        let msg = std::mem::take(&mut item.msg);
        if item.counted {
            self.bytes -= msg.len();
        }
        self.live -= 1;
        true
    }

    /// Would one more broadcast of `len` bytes overflow the budget? An
    /// empty backlog always takes one message, however large.
    fn overflows(&self, len: usize, max_messages: usize, max_bytes: usize) -> bool {
        self.bytes > 0 && (self.live >= max_messages || self.bytes + len > max_bytes)
    }

    fn push(&mut self, msg: Bytes, counted: bool, presence: Option<PresenceTag>) {
        if counted {
            self.bytes += msg.len();
        }
        self.live += 1;
        if let Some(tag) = &presence {
            self.clients |= tag.bits();
            if self.indexed {
                for client in tag.0.iter() {
                    self.latest.insert(*client, self.items.len());
                }
            }
        }
        self.items.push_back(Queued {
            msg,
            counted,
            presence,
            superseded: false,
        });
        if self.items.len() >= 2 * self.live + SCAN_LIMIT {
            // Mostly superseded entries: sweep them out (amortised: at
            // least as many entries go as stay).
            self.items.retain(|item| !item.superseded);
            self.reindex();
        } else if !self.indexed && self.items.len() > SCAN_LIMIT {
            self.reindex();
        }
    }

    /// Builds `latest` from the queue when it is longer than
    /// [`SCAN_LIMIT`], or drops it.
    fn reindex(&mut self) {
        self.latest.clear();
        self.indexed = self.items.len() > SCAN_LIMIT;
        if !self.indexed {
            return;
        }
        for (i, item) in self.items.iter().enumerate() {
            let Some(tag) = item.presence.as_ref().filter(|_| !item.superseded) else {
                continue;
            };
            for client in tag.0.iter() {
                self.latest.insert(*client, i);
            }
        }
    }

    /// Forgets everything queued (taken by the writer, or the peer is
    /// closed).
    fn discard(&mut self) {
        self.items.clear();
        self.clients = 0;
        if self.indexed {
            self.latest.clear();
            self.indexed = false;
        }
        self.bytes = 0;
        self.live = 0;
    }
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
                live: 0,
                clients: 0,
                indexed: false,
                latest: HashMap::new(),
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
        if q.overflows(msg.len(), self.max_messages, self.max_bytes) {
            drop(q);
            self.close(CloseReason::Lagging);
            return false;
        }
        q.push(msg, true, None);
        drop(q);
        self.ready.notify_one();
        true
    }

    /// Queues a presence (awareness) message carrying the clients of
    /// `tag`, first replacing every unsent presence message whose clients
    /// it all carries (see the module's notes): those leave the lag budget.
    /// Returns how many it replaced, or `None` if the peer is closed (or
    /// was just closed because the message did not fit).
    pub fn send_presence(&self, msg: Bytes, tag: &PresenceTag) -> Option<usize> {
        let mut q = self.queue.lock();
        if q.closed.is_some() {
            return None;
        }
        let replaced = q.supersede(tag);
        if q.overflows(msg.len(), self.max_messages, self.max_bytes) {
            drop(q);
            self.close(CloseReason::Lagging);
            return None;
        }
        q.push(msg, true, Some(tag.clone()));
        drop(q);
        self.ready.notify_one();
        Some(replaced)
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
        q.push(msg, false, None);
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
            q.discard();
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
        if q.live == 0 {
            return None;
        }
        let mut out = Vec::with_capacity(q.live);
        out.extend(
            q.items
                .iter_mut()
                .filter(|item| !item.superseded)
                .map(|item| std::mem::take(&mut item.msg)),
        );
        q.discard();
        Some(Outbound::Messages(out))
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
    fn tag(clients: &[u64]) -> PresenceTag {
        PresenceTag::new(clients.iter().copied())
    }

    fn drain(peer: &Peer) -> Vec<Bytes> {
        match peer.try_next() {
            Some(Outbound::Messages(batch)) => batch,
            Some(Outbound::Close(reason)) => panic!("closed: {reason:?}"),
            None => Vec::new(),
        }
    }

    #[test]
    fn a_newer_state_of_a_client_replaces_its_queued_one() {
        let peer = Peer::new(&limits(1 << 20, 100));
        assert_eq!(
            peer.send_presence(Bytes::from_static(b"a1"), &tag(&[1])),
            Some(0)
        );
        assert_eq!(
            peer.send_presence(Bytes::from_static(b"b1"), &tag(&[2])),
            Some(0)
        );
        assert_eq!(
            peer.send_presence(Bytes::from_static(b"a2"), &tag(&[1])),
            Some(1)
        );
        assert_eq!(
            peer.send_presence(Bytes::from_static(b"a3"), &tag(&[1])),
            Some(1)
        );
        assert_eq!(drain(&peer), vec!["b1", "a3"]);
        // What the writer took is gone: nothing left to replace.
        assert_eq!(
            peer.send_presence(Bytes::from_static(b"a4"), &tag(&[1])),
            Some(0)
        );
        assert_eq!(drain(&peer), vec!["a4"]);
    }

    #[test]
    fn a_removal_is_kept_and_wins_over_the_state_before_it() {
        let peer = Peer::new(&limits(1 << 20, 100));
        peer.send_presence(Bytes::from_static(b"a1"), &tag(&[1]));
        peer.send_presence(Bytes::from_static(b"a-null"), &tag(&[1]));
        // Another client's state does not touch it.
        peer.send_presence(Bytes::from_static(b"b1"), &tag(&[2]));
        assert_eq!(drain(&peer), vec!["a-null", "b1"]);
    }

    #[test]
    fn updates_are_never_dropped_nor_reordered_and_no_state_overtakes_one() {
        let peer = Peer::new(&limits(1 << 20, 100));
        for i in 1..=3u8 {
            assert!(peer.send(Bytes::from(vec![b'u', b'0' + i])));
            assert!(peer
                .send_presence(Bytes::from(vec![b'a', b'0' + i]), &tag(&[1]))
                .is_some());
        }
        assert!(peer.send(Bytes::from_static(b"u4")));
        // The latest state goes where it was queued, after every update
        // queued before it; the older ones are gone.
        assert_eq!(drain(&peer), vec!["u1", "u2", "u3", "a3", "u4"]);
    }

    #[test]
    fn a_message_of_several_clients_is_replaced_only_when_all_are_covered() {
        let peer = Peer::new(&limits(1 << 20, 100));
        peer.send_presence(Bytes::from_static(b"ab"), &tag(&[1, 2]));
        assert_eq!(
            peer.send_presence(Bytes::from_static(b"a"), &tag(&[1])),
            Some(0)
        );
        assert_eq!(drain(&peer), vec!["ab", "a"]);

        peer.send_presence(Bytes::from_static(b"ab"), &tag(&[2, 1]));
        peer.send_presence(Bytes::from_static(b"c"), &tag(&[3]));
        assert_eq!(
            peer.send_presence(Bytes::from_static(b"abc"), &tag(&[3, 2, 1])),
            Some(2)
        );
        assert_eq!(drain(&peer), vec!["abc"]);
    }

    #[test]
    fn replies_and_updates_are_never_replaced() {
        let peer = Peer::new(&limits(1 << 20, 100));
        // A presence snapshot answered to the peer itself is a reply.
        assert!(peer.reply(Bytes::from_static(b"snapshot")));
        assert!(peer.send(Bytes::from_static(b"update")));
        assert_eq!(
            peer.send_presence(Bytes::from_static(b"a1"), &tag(&[1])),
            Some(0)
        );
        assert_eq!(drain(&peer), vec!["snapshot", "update", "a1"]);
    }

    #[test]
    fn replaced_states_leave_the_lag_budget() {
        // Three messages or 10 bytes at most: a slow peer still gets the
        // latest pointer of each client, however many moves it missed.
        let peer = Peer::new(&limits(10, 3));
        for i in 0..1000u32 {
            let msg = Bytes::from(format!("a{}", i % 10));
            assert!(peer.send_presence(msg, &tag(&[1])).is_some(), "move {i}");
            let msg = Bytes::from(format!("b{}", i % 10));
            assert!(peer.send_presence(msg, &tag(&[2])).is_some(), "move {i}");
        }
        assert_eq!(peer.closed(), None);
        // The superseded entries were swept out as they piled up.
        assert!(peer.queue.lock().items.len() < 2 * 2 + SCAN_LIMIT);
        assert_eq!(drain(&peer), vec!["a9", "b9"]);
        // A backlog of updates still overflows.
        for i in 0..3u8 {
            assert!(peer.send(Bytes::from(vec![i])));
        }
        assert!(!peer.send(Bytes::from_static(b"x")), "fourth message");
        assert_eq!(peer.closed(), Some(CloseReason::Lagging));
        assert_eq!(
            peer.send_presence(Bytes::from_static(b"a"), &tag(&[1])),
            None
        );
    }

    /// Random sends and takes (a fixed seed), short and long queues alike,
    /// against a model: each batch is everything sent since the last take,
    /// in order, less the presence states followed by a newer one of the
    /// same client in the same batch.
    #[test]
    fn coalescing_matches_the_model_for_short_and_long_queues() {
        let peer = Peer::new(&limits(1 << 30, 1 << 20));
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut sent: Vec<(Option<u64>, Bytes)> = Vec::new();
        let mut longest = 0;
        for step in 0..20_000u32 {
            match rand(100) {
                0..=1 => {
                    longest = longest.max(sent.len());
                    let want: Vec<Bytes> = sent
                        .iter()
                        .enumerate()
                        .filter(|(i, (client, _))| {
                            client.is_none_or(|c| !sent[i + 1..].iter().any(|(d, _)| *d == Some(c)))
                        })
                        .map(|(_, (_, msg))| msg.clone())
                        .collect();
                    assert_eq!(drain(&peer), want, "take at step {step}");
                    sent.clear();
                }
                2..=29 => {
                    let msg = Bytes::from(format!("u{step}"));
                    assert!(peer.send(msg.clone()));
                    sent.push((None, msg));
                }
                _ => {
                    // Ids that share bits of the queue's client mask.
                    let client = rand(6) * 32;
                    let msg = Bytes::from(format!("p{client}-{step}"));
                    assert!(peer.send_presence(msg.clone(), &tag(&[client])).is_some());
                    sent.push((Some(client), msg));
                }
            }
        }
        assert!(
            longest > 4 * SCAN_LIMIT,
            "queues were never long: {longest}"
        );
    }
}
