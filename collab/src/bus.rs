//! The fan-out bus: how replicas tell each other about documents, through
//! Redis pub/sub.
//!
//! Each document has a channel, `coform:doc:<name>`. A replica subscribes
//! only to the documents it has loaded, and publishes there, after the
//! store has committed them, the updates its own clients made, plus its
//! clients' presence changes — but only while another replica holds the
//! document too (see *Who holds a document*). Every message carries the
//! sender's replica id (so a replica drops its own echoes) and a
//! per-(replica, document) sequence number.
//!
//! A room subscribes **before** it reads the store, and waits until Redis
//! confirms the subscription: an update stored before the read is in what
//! it reads, one stored after reaches it on the channel (both, at worst:
//! applying an update twice changes nothing). Were the order reversed, an
//! update stored and published between the read and the subscription
//! would reach the room by neither road.
//!
//! # Who holds a document
//!
//! With documents spread by affinity, most are held by one replica, and
//! publishing their updates would only make Redis send them back to their
//! publisher. So each room keeps the set of other replicas known to hold
//! its document, and publishes updates and presence only while it is not
//! empty:
//!
//! - A room that has loaded **announces** itself: a
//!   [`BusKind::SyncRequest`] addressed to everyone, with its state
//!   vector. Every room of the document answers it with what the newcomer
//!   lacks — possibly updates it stored unpublished while it believed
//!   itself alone — and from then on publishes.
//! - The **first word** a room hears from a replica (an announcement, an
//!   update, presence) adds that replica to its set; the room then asks it
//!   in turn for what it lacks (the newcomer's clients may have edited
//!   before it heard of anyone) and publishes its own clients' presence.
//!   An answer adds its sender too, without a question back.
//! - A room that unloads says [`BusKind::Leaving`]. Nothing else takes a
//!   replica out of the set, not even a missed heartbeat (a replica taken
//!   for dead may be alive, and must not miss updates): a lost `Leaving`,
//!   or a replica that died, only costs publishes nobody needed.
//! - After its subscription reconnects, a room announces itself again:
//!   replicas that loaded the document meanwhile were not heard.
//!
//! Every announcement and question goes through the same publisher as the
//! updates, after them, so an answer covers everything its sender stored
//! before it knew of the asker; everything after, it publishes.
//!
//! # Healing
//!
//! Redis pub/sub loses messages across reconnects. Nothing is lost for
//! good, because every update is in the store before it is published: a
//! replica **heals** a document — catches up and sends its clients what
//! they missed — whenever it may have missed something:
//!
//! - When a sequence number of replica R skips, or R says it failed to
//!   publish (a hint it sends once Redis is back), only R's messages were
//!   missed, and R's document holds everything R published. So the room
//!   asks R alone: a [`BusKind::SyncRequest`] carrying its state vector,
//!   answered by a [`BusKind::SyncReply`] with exactly what it lacks. The
//!   cost follows the size of the gap, not of the document. If R does not
//!   answer within [`EXCHANGE_TIMEOUT`] (it unloaded the document, or
//!   died), the room reloads from the store instead.
//! - After its subscription reconnects, anything may have been missed,
//!   from replicas that have since unloaded the document too: every
//!   loaded room reloads from the store.
//!
//! # Presence across replicas
//!
//! Each replica refreshes a key `coform:replica:<id>` with a short TTL
//! every second. Presence that arrived from another replica is tagged with
//! its id; once that replica's key is gone, every room removes its states
//! and tells its clients, so a dead replica leaves no ghosts.
//!
//! # Access changes
//!
//! Access changes reach connections on every replica through one more
//! channel, `coform:access`, which every replica subscribes to whenever
//! its subscription is up (whatever documents it has loaded: an event may
//! name many documents, or none but a user). It carries [`AccessEvent`]s
//! as the kinds [`BusKind::Evict`], [`BusKind::SetAccess`] and
//! [`BusKind::EndSessions`], numbered per sender like a document's
//! messages. A replica applies each to its own rooms: evict a document
//! (4403), make a user's connections read-only or close them (4403),
//! close the connections of ended sessions (4401).
//!
//! A replica may miss access events exactly as it may miss updates, and
//! then re-checks instead of healing: every open connection's grant is
//! asked again of the server's [`crate::access::AccessCheck`] (membership
//! and role, template, session) and tightened to what it says. It does so
//! after its subscription (re)connects, when the access channel's sequence
//! skips, and on a heal hint there (a publisher whose access message was
//! dropped sends one once Redis answers). A re-check only takes rights
//! away: restoring one late is harmless, keeping one is not, and a grant
//! read before a concurrent change must not undo it.
//!
//! What stops a deleted template's log from coming back is not the bus
//! but the store's tombstone ([`coform_storage::DocStore::tombstone`]),
//! written before the eviction is published: a replica that has not heard
//! of the deletion yet cannot store another update of it.
//!
//! # Wire format
//!
//! Every message is `[version = 1, kind, id length, replica id, seq (u64
//! little endian), payload]`. Kinds: 1 update, 2 awareness, 3 query
//! awareness, 4 heal (document channels, and heal on the access channel),
//! 5 evict, 6 set access, 7 end sessions (access channel; payloads in
//! [`AccessEvent::encode`]), 8 sync request and 9 sync reply (document
//! channels; their payload starts with the addressee, see [`Addressed`];
//! a request to the empty addressee is an announcement), 10 leaving.
//! A replica ignores kinds it does not know, so new kinds need no new
//! version.
//!
//! While Redis is down, each replica keeps serving its own clients; the
//! status is visible through [`Bus::is_connected`] (and `/readyz`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use dashmap::DashMap;
use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::AccessEvent;
use crate::registry::Shared;

const VERSION: u8 = 1;
const CHANNEL_PREFIX: &str = "coform:doc:";
/// The channel of access changes, shared by every replica.
const ACCESS_CHANNEL: &str = "coform:access";
const REPLICA_PREFIX: &str = "coform:replica:";
/// How often a replica refreshes its liveness key, and its TTL.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
pub const REPLICA_TTL: Duration = Duration::from_secs(3);
const OUTBOX: usize = 65_536;
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a room waits for the replica it asked to heal from before it
/// reloads from the store instead.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);

/// What one bus message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusKind {
    /// A stored document update (Yjs v1).
    Update,
    /// An awareness update (y-protocols encoding) of the sender's clients.
    Awareness,
    /// "Send me your clients' presence for this document." Replicas of
    /// earlier versions send it when they load a document (an announcement
    /// asks for the same now); still answered, for rolling upgrades.
    QueryAwareness,
    /// "I may have failed to publish updates of this document: heal it."
    /// On the access channel: "re-check your connections' grants".
    Heal,
    /// Access channel: close a document's connections and unload it.
    Evict,
    /// Access channel: a user's right on some documents changed.
    SetAccess,
    /// Access channel: a user's sign-in sessions ended.
    EndSessions,
    /// "Send me what I lack": the sender's state vector (v1), addressed
    /// to one replica.
    SyncRequest,
    /// The answer to a [`BusKind::SyncRequest`]: an update (v1) with what
    /// the requester lacked, addressed to it.
    SyncReply,
    /// "I no longer hold this document": others stop publishing to it for
    /// this replica's sake.
    Leaving,
}

impl BusKind {
    fn code(&self) -> u8 {
        match self {
            BusKind::Update => 1,
            BusKind::Awareness => 2,
            BusKind::QueryAwareness => 3,
            BusKind::Heal => 4,
            BusKind::Evict => 5,
            BusKind::SetAccess => 6,
            BusKind::EndSessions => 7,
            BusKind::SyncRequest => 8,
            BusKind::SyncReply => 9,
            BusKind::Leaving => 10,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => BusKind::Update,
            2 => BusKind::Awareness,
            3 => BusKind::QueryAwareness,
            4 => BusKind::Heal,
            5 => BusKind::Evict,
            6 => BusKind::SetAccess,
            7 => BusKind::EndSessions,
            8 => BusKind::SyncRequest,
            9 => BusKind::SyncReply,
            10 => BusKind::Leaving,
            _ => return None,
        })
    }
}

/// A decoded bus message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusMessage {
    pub kind: BusKind,
    pub replica: Arc<str>,
    pub seq: u64,
    pub payload: Bytes,
}

impl BusMessage {
    pub fn encode(&self) -> Bytes {
        let id = self.replica.as_bytes();
        let mut buf = BytesMut::with_capacity(12 + id.len() + self.payload.len());
        buf.put_u8(VERSION);
        buf.put_u8(self.kind.code());
        buf.put_u8(id.len().min(255) as u8);
        buf.put_slice(&id[..id.len().min(255)]);
        buf.put_u64_le(self.seq);
        buf.put_slice(&self.payload);
        buf.freeze()
    }

    pub fn decode(raw: &[u8]) -> Option<Self> {
        let (&version, rest) = raw.split_first()?;
        let (&kind, rest) = rest.split_first()?;
        let (&len, rest) = rest.split_first()?;
        if version != VERSION || rest.len() < usize::from(len) + 8 {
            return None;
        }
        let (id, rest) = rest.split_at(usize::from(len));
        let (seq, payload) = rest.split_at(8);
        Some(BusMessage {
            kind: BusKind::from_code(kind)?,
            replica: Arc::from(std::str::from_utf8(id).ok()?),
            seq: u64::from_le_bytes(seq.try_into().ok()?),
            payload: Bytes::copy_from_slice(payload),
        })
    }
}

/// The payload of a message meant for one replica: `[id length, id,
/// body]`. Others on the channel drop it unread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addressed {
    pub to: Arc<str>,
    pub body: Bytes,
}

impl Addressed {
    pub fn encode(to: &str, body: &[u8]) -> Bytes {
        let id = &to.as_bytes()[..to.len().min(255)];
        let mut buf = BytesMut::with_capacity(1 + id.len() + body.len());
        buf.put_u8(id.len() as u8);
        buf.put_slice(id);
        buf.put_slice(body);
        buf.freeze()
    }

    pub fn decode(payload: &Bytes) -> Option<Self> {
        let to = std::str::from_utf8(Self::addressee(payload)?).ok()?;
        Some(Addressed {
            to: Arc::from(to),
            body: payload.slice(1 + to.len()..),
        })
    }

    /// Only the addressee: `None` when the payload is not addressed.
    fn addressee(payload: &[u8]) -> Option<&[u8]> {
        let (&len, rest) = payload.split_first()?;
        rest.get(..usize::from(len))
    }
}

/// Subscription changes for the subscriber task. A subscription's sender,
/// when there is one, hears once Redis has confirmed it (and is dropped
/// unanswered while Redis is down).
enum Control {
    Subscribe(Arc<str>, Option<tokio::sync::oneshot::Sender<()>>),
    Unsubscribe(Arc<str>),
}

/// Where a message goes: a document's channel or the access channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Topic {
    Doc(Arc<str>),
    Access,
}

impl Topic {
    fn channel(&self) -> String {
        match self {
            Topic::Doc(doc) => channel(doc),
            Topic::Access => ACCESS_CHANNEL.to_owned(),
        }
    }
}

struct Outgoing {
    topic: Topic,
    kind: BusKind,
    payload: Bytes,
}

/// This replica's end of the bus. Cheap to share.
pub struct Bus {
    replica: Arc<str>,
    outbox: mpsc::Sender<Outgoing>,
    control: mpsc::UnboundedSender<Control>,
    /// True while the subscription connection is up.
    connected: Arc<AtomicBool>,
    /// Topics whose publish was dropped (outbox full, Redis down): a heal
    /// hint goes there later.
    dropped: Arc<parking_lot::Mutex<HashSet<Topic>>>,
}

impl Bus {
    /// Starts the bus tasks. They connect (and reconnect) on their own;
    /// rooms are reached through `shared` (weak, so the bus never keeps the
    /// registry alive).
    pub(crate) fn start(
        url: &str,
        shared: Weak<Shared>,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<Bus, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let replica: Arc<str> = Arc::from(crate::registry::process_id().as_str());
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX);
        let (control, control_rx) = mpsc::unbounded_channel();
        let connected = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(parking_lot::Mutex::new(HashSet::new()));
        let remote_replicas: Arc<DashMap<Arc<str>, ()>> = Arc::new(DashMap::new());
        tracker.spawn(publisher(
            client.clone(),
            replica.clone(),
            outbox_rx,
            dropped.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(subscriber(
            client.clone(),
            replica.clone(),
            control_rx,
            shared.clone(),
            connected.clone(),
            remote_replicas.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(heartbeat(
            client,
            replica.clone(),
            shared,
            remote_replicas,
            shutdown,
        ));
        Ok(Bus {
            replica,
            outbox,
            control,
            connected,
            dropped,
        })
    }

    /// This replica's id.
    pub fn replica(&self) -> &Arc<str> {
        &self.replica
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Subscribes to the document's channel and waits until Redis has
    /// confirmed it: `false` if it has not within its timeout (Redis is
    /// down; the subscription is made, and every room healed from the
    /// store, once it is back).
    pub(crate) async fn subscribe(&self, doc: &Arc<str>) -> bool {
        if !self.is_connected() {
            let _ = self.control.send(Control::Subscribe(doc.clone(), None));
            return false;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .control
            .send(Control::Subscribe(doc.clone(), Some(tx)))
            .is_err()
        {
            return false;
        }
        matches!(tokio::time::timeout(REDIS_TIMEOUT, rx).await, Ok(Ok(())))
    }

    pub(crate) fn unsubscribe(&self, doc: &Arc<str>) {
        let _ = self.control.send(Control::Unsubscribe(doc.clone()));
    }

    /// Queues a message for the document's channel. Never waits: if the
    /// outbox is full, the document is remembered and a heal hint is sent
    /// instead once there is room.
    pub(crate) fn publish(&self, doc: &Arc<str>, kind: BusKind, payload: Bytes) {
        self.send(Topic::Doc(doc.clone()), kind, payload);
    }

    /// Queues an access change for the access channel; like
    /// [`Bus::publish`], a dropped one is followed by a heal hint there,
    /// on which every other replica re-checks its connections.
    pub(crate) fn publish_access(&self, event: AccessEvent) {
        for part in event.split() {
            let (kind, payload) = part.encode();
            self.send(Topic::Access, kind, payload);
        }
    }

    fn send(&self, topic: Topic, kind: BusKind, payload: Bytes) {
        let msg = Outgoing {
            topic,
            kind,
            payload,
        };
        if let Err(e) = self.outbox.try_send(msg) {
            let msg = match e {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m,
            };
            self.dropped.lock().insert(msg.topic);
        }
    }
}

/// A connection named `name` (as `CLIENT LIST` shows it, so an operator
/// can tell which replica's publisher is which), or `None` on a failure.
async fn connect_named(
    client: &redis::Client,
    name: &str,
) -> Option<redis::aio::MultiplexedConnection> {
    let connect = async {
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(name)
            .query_async::<()>(&mut c)
            .await?;
        Ok::<_, redis::RedisError>(c)
    };
    tokio::time::timeout(REDIS_TIMEOUT, connect)
        .await
        .ok()
        .and_then(Result::ok)
}

fn channel(doc: &str) -> String {
    format!("{CHANNEL_PREFIX}{doc}")
}

/// Publishes queued messages in order, numbering them per document.
/// Messages that fail to go out mark their document for a heal hint,
/// sent once Redis answers again.
async fn publisher(
    client: redis::Client,
    replica: Arc<str>,
    mut outbox: mpsc::Receiver<Outgoing>,
    dropped: Arc<parking_lot::Mutex<HashSet<Topic>>>,
    shutdown: CancellationToken,
) {
    let mut seqs: HashMap<Topic, u64> = HashMap::new();
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    loop {
        // With hints owed, try again after a pause even if nothing else is
        // published: a dropped update must not wait for the next one.
        let owed = !dropped.lock().is_empty();
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            m = outbox.recv() => match m { Some(m) => Some(m), None => return },
            _ = tokio::time::sleep(Duration::from_millis(250)), if owed => None,
        };
        let mut batch: Vec<Outgoing> = msg.into_iter().collect();
        while let Ok(m) = outbox.try_recv() {
            batch.push(m);
        }
        // Hints for topics whose messages were dropped earlier.
        let hinted: Vec<Topic> = dropped.lock().iter().cloned().collect();
        for topic in hinted {
            batch.push(Outgoing {
                topic,
                kind: BusKind::Heal,
                payload: Bytes::new(),
            });
        }
        if conn.is_none() {
            conn = connect_named(&client, &format!("coform:publish:{replica}")).await;
        }
        let mut failed = conn.is_none();
        if let Some(c) = conn.as_mut() {
            let mut pipe = redis::pipe();
            for m in &batch {
                let seq = seqs.entry(m.topic.clone()).or_insert(0);
                *seq += 1;
                let raw = BusMessage {
                    kind: m.kind.clone(),
                    replica: replica.clone(),
                    seq: *seq,
                    payload: m.payload.clone(),
                }
                .encode();
                pipe.publish(m.topic.channel(), raw.as_ref()).ignore();
            }
            let sent: Result<Result<(), _>, _> =
                tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async(c)).await;
            failed = !matches!(sent, Ok(Ok(())));
        }
        {
            let mut d = dropped.lock();
            if failed {
                d.extend(batch.into_iter().map(|m| m.topic));
            } else {
                for m in &batch {
                    if m.kind == BusKind::Heal {
                        d.remove(&m.topic);
                    }
                }
            }
        }
        if failed {
            conn = None;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }
}

/// Keeps one subscription connection with the access channel and every
/// wanted document channel, hands messages to rooms, and after a
/// reconnect heals every loaded room and re-checks every connection.
#[allow(clippy::too_many_arguments)]
async fn subscriber(
    client: redis::Client,
    replica: Arc<str>,
    mut control: mpsc::UnboundedReceiver<Control>,
    shared: Weak<Shared>,
    connected: Arc<AtomicBool>,
    remote_replicas: Arc<DashMap<Arc<str>, ()>>,
    shutdown: CancellationToken,
) {
    let mut wanted: HashSet<Arc<str>> = HashSet::new();
    let mut last_seq: HashMap<(Arc<str>, Arc<str>), u64> = HashMap::new();
    // Last access-channel sequence number seen per replica.
    let mut access_seq: HashMap<Arc<str>, u64> = HashMap::new();
    let mut first = true;
    let mut backoff = Duration::from_millis(100);
    loop {
        let pubsub = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()) => r.ok().and_then(Result::ok),
        };
        let Some(pubsub) = pubsub else {
            // Keep the wanted set current while disconnected.
            while let Ok(c) = control.try_recv() {
                apply_control(&mut wanted, c);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        };
        let (mut sink, mut stream) = pubsub.split();
        while let Ok(c) = control.try_recv() {
            apply_control(&mut wanted, c);
        }
        let mut ok = sink.subscribe(ACCESS_CHANNEL).await.is_ok();
        for doc in &wanted {
            ok &= sink.subscribe(channel(doc)).await.is_ok();
        }
        if !ok {
            continue;
        }
        backoff = Duration::from_millis(100);
        connected.store(true, Ordering::Relaxed);
        // After a reconnect anything may have been missed; on the first
        // connection, so may rooms that loaded while Redis was down.
        if !first || !wanted.is_empty() {
            tracing::info!("bus (re)connected; healing loaded documents from the store");
            if let Some(shared) = shared.upgrade() {
                shared.heal_all().await;
            }
            last_seq.clear();
        }
        // Access events published while this replica was not listening
        // (cut off, or not yet connected) are lost: ask again instead.
        if let Some(shared) = shared.upgrade() {
            shared.recheck_all().await;
        }
        access_seq.clear();
        first = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                c = control.recv() => {
                    let Some(mut c) = c else { return };
                    let result = match &mut c {
                        Control::Subscribe(doc, confirm) => {
                            let r = sink.subscribe(channel(doc)).await;
                            if r.is_ok() {
                                if let Some(confirm) = confirm.take() {
                                    let _ = confirm.send(());
                                }
                            }
                            r
                        }
                        Control::Unsubscribe(doc) => sink.unsubscribe(channel(doc)).await,
                    };
                    if let Control::Unsubscribe(doc) = &c {
                        last_seq.retain(|(_, d), _| d != doc);
                    }
                    apply_control(&mut wanted, c);
                    if result.is_err() {
                        break;
                    }
                }
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    if msg.get_channel_name() == ACCESS_CHANNEL {
                        on_access(&msg, &replica, &mut access_seq, &shared).await;
                        continue;
                    }
                    let Some(doc) = msg.get_channel_name().strip_prefix(CHANNEL_PREFIX) else { continue };
                    let Some(m) = BusMessage::decode(msg.get_payload_bytes()) else { continue };
                    if m.replica == replica {
                        continue;
                    }
                    remote_replicas.insert(m.replica.clone(), ());
                    let doc: Arc<str> = Arc::from(doc);
                    let key = (m.replica.clone(), doc.clone());
                    let expected = last_seq.get(&key).map(|s| s + 1);
                    last_seq.insert(key, m.seq);
                    let gap = expected.is_some_and(|e| e != m.seq);
                    // Requests and replies for another replica are not
                    // ours (counted above all the same: they are numbered).
                    let elsewhere = match m.kind {
                        // A request to everyone is an announcement.
                        BusKind::SyncRequest => !matches!(
                            Addressed::addressee(&m.payload),
                            Some(to) if to.is_empty() || to == replica.as_bytes()
                        ),
                        BusKind::SyncReply => {
                            Addressed::addressee(&m.payload) != Some(replica.as_bytes())
                        }
                        _ => false,
                    };
                    if let Some(shared) = shared.upgrade() {
                        if gap {
                            tracing::info!(doc = %doc, replica = %m.replica, "bus sequence gap; healing");
                            shared.deliver(&doc, BusMessage { kind: BusKind::Heal, ..m.clone() }).await;
                        }
                        if !elsewhere {
                            shared.deliver(&doc, m).await;
                        }
                    }
                }
            }
        }
        connected.store(false, Ordering::Relaxed);
        tracing::warn!("bus connection lost; serving local clients only until it returns");
    }
}

/// Handles one message of the access channel: applies its event to this
/// replica's rooms, or re-checks every connection when something may have
/// been missed (a sequence gap, a heal hint, a message it cannot read).
async fn on_access(
    msg: &redis::Msg,
    replica: &Arc<str>,
    access_seq: &mut HashMap<Arc<str>, u64>,
    shared: &Weak<Shared>,
) {
    let Some(m) = BusMessage::decode(msg.get_payload_bytes()) else {
        return;
    };
    if m.replica == *replica {
        return;
    }
    let expected = access_seq.get(&m.replica).map(|s| s + 1);
    access_seq.insert(m.replica.clone(), m.seq);
    let gap = expected.is_some_and(|e| e != m.seq);
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let event = AccessEvent::decode(&m.kind, &m.payload);
    if gap || event.is_none() {
        tracing::info!(replica = %m.replica, gap, "access changes may have been missed; re-checking connections");
        shared.recheck_all().await;
    }
    if let Some(event) = event {
        shared.apply_access(&event).await;
    }
}

fn apply_control(wanted: &mut HashSet<Arc<str>>, c: Control) {
    match c {
        Control::Subscribe(doc, _) => {
            wanted.insert(doc);
        }
        Control::Unsubscribe(doc) => {
            wanted.remove(&doc);
        }
    }
}

/// Refreshes this replica's liveness key and notices other replicas'
/// deaths (their key expired), so rooms drop their clients' presence.
async fn heartbeat(
    client: redis::Client,
    replica: Arc<str>,
    shared: Weak<Shared>,
    remote_replicas: Arc<DashMap<Arc<str>, ()>>,
    shutdown: CancellationToken,
) {
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                if let Some(c) = conn.as_mut() {
                    let _: Result<Result<(), _>, _> =
                        tokio::time::timeout(REDIS_TIMEOUT, c.del(format!("{REPLICA_PREFIX}{replica}"))).await;
                }
                return;
            }
            _ = ticker.tick() => {}
        }
        if conn.is_none() {
            conn = tokio::time::timeout(REDIS_TIMEOUT, client.get_multiplexed_async_connection())
                .await
                .ok()
                .and_then(Result::ok);
        }
        let Some(c) = conn.as_mut() else { continue };
        let key = format!("{REPLICA_PREFIX}{replica}");
        let ttl_ms = REPLICA_TTL.as_millis() as u64;
        let set: Result<Result<(), _>, _> =
            tokio::time::timeout(REDIS_TIMEOUT, c.pset_ex(key, 1, ttl_ms)).await;
        if !matches!(set, Ok(Ok(()))) {
            conn = None;
            continue;
        }
        let others: Vec<Arc<str>> = remote_replicas.iter().map(|e| e.key().clone()).collect();
        for other in others {
            let alive: Result<Result<bool, _>, _> =
                tokio::time::timeout(REDIS_TIMEOUT, c.exists(format!("{REPLICA_PREFIX}{other}")))
                    .await;
            match alive {
                Ok(Ok(false)) => {
                    tracing::info!(replica = %other, "replica stopped heartbeating; removing its presence");
                    remote_replicas.remove(&other);
                    if let Some(shared) = shared.upgrade() {
                        shared.replica_gone(&other).await;
                    }
                }
                Ok(Ok(true)) => {}
                _ => {
                    conn = None;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_ignored() {
        let m = BusMessage {
            kind: BusKind::Update,
            replica: "r1".into(),
            seq: 7,
            payload: Bytes::from_static(b"xyz"),
        };
        assert_eq!(BusMessage::decode(&m.encode()), Some(m));
        assert_eq!(BusMessage::decode(b""), None);
        assert_eq!(
            BusMessage::decode(&[1, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            None,
            "unknown kind"
        );
        assert_eq!(BusMessage::decode(&[1, 1, 5, b'a']), None, "truncated");
    }

    #[test]
    fn access_kinds_round_trip_in_the_same_envelope() {
        for kind in [BusKind::Evict, BusKind::SetAccess, BusKind::EndSessions] {
            let m = BusMessage {
                kind,
                replica: "r1".into(),
                seq: 1,
                payload: Bytes::from_static(b"p"),
            };
            assert_eq!(BusMessage::decode(&m.encode()), Some(m));
        }
    }

    #[test]
    fn addressed_payloads_name_their_replica_and_keep_their_body() {
        let raw = Addressed::encode("replica-7", b"state vector");
        assert_eq!(Addressed::addressee(&raw), Some(&b"replica-7"[..]));
        let back = Addressed::decode(&raw).unwrap();
        assert_eq!(&*back.to, "replica-7");
        assert_eq!(&back.body[..], b"state vector");
        // Empty bodies, and garbage: a length past the end, no length.
        let empty = Addressed::decode(&Addressed::encode("r", b"")).unwrap();
        assert!(empty.body.is_empty());
        assert_eq!(Addressed::decode(&Bytes::from_static(&[9, b'r'])), None);
        assert_eq!(Addressed::decode(&Bytes::new()), None);
        assert_eq!(Addressed::addressee(&[9, b'r']), None);
        for kind in [BusKind::SyncRequest, BusKind::SyncReply] {
            let m = BusMessage {
                kind,
                replica: "r1".into(),
                seq: 2,
                payload: raw.clone(),
            };
            assert_eq!(BusMessage::decode(&m.encode()), Some(m));
        }
    }
}
