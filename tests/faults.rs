//! Fault injection with real processes: while y-websocket clients edit
//! continuously, one part of a deployment fails — a replica is SIGKILLed,
//! Redis is SIGKILLed, the MongoDB-wire store is SIGKILLed or frozen with
//! SIGSTOP, the embedded store's disk fills up — and comes back.
//!
//! Every case asserts the same three things:
//!
//! - nothing anyone saw is lost: every edit the server acknowledged as
//!   saved (`?acks=1`) and every edit a client received from another is
//!   in the store, checked before its author could upload it again;
//! - the failure shows where an operator looks (`/readyz`);
//! - after it heals, every client holds every edit ever made, with no
//!   action but what a y-websocket provider does by itself (reconnect and
//!   resync, keeping its document).
//!
//! The editors are the test suite's y-websocket client with a reconnect
//! loop around it. When their connection is lost during a fault they hold
//! off reconnecting until the test has read the store (their own edits,
//! uploaded again on reconnect, would otherwise hide a loss), then
//! reconnect on their own. The recovery times each case prints are
//! recorded in `docs/TESTING.md`.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coform_storage::DocStore;
use support::*;
use tokio::sync::{mpsc, oneshot};
use yrs::updates::decoder::Decode;
use yrs::{Doc, Map, Transact, Update, WriteTxn};

const ROOM: &str = "faults";
const MAP: &str = "keys";
/// Time between two edits of one editor (pacing only: nothing waits on it).
const PACE: Duration = Duration::from_millis(8);
/// First and longest wait between two connection attempts of an editor.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_millis(800);
/// Bound of one connection attempt.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of a recovery (a store restart, a reconnect, convergence).
const RECOVERY: Duration = Duration::from_secs(60);

// ------------------------------------------------------------- the editors

/// What an editor is asked to do.
enum Order {
    /// Make `n` edits, one every [`PACE`], connected or not (offline
    /// edits stay in its document until it reconnects); answer when done.
    Burst(u64, oneshot::Sender<()>),
}

/// What the test and an editor's task share.
struct EditorState {
    name: String,
    /// Prefix of the keys this editor makes (`e3-`).
    prefix: String,
    /// The editor's document: one browser tab's, across its connections.
    doc: Doc,
    /// Servers it may connect to: it starts with the first and moves to
    /// the next after a failed attempt (a load balancer's choice).
    targets: Vec<SocketAddr>,
    /// Keys made so far.
    made: AtomicU64,
    /// Keys the server acknowledged as stored.
    acked: Mutex<BTreeSet<String>>,
    /// Connection attempts that got a websocket.
    connections: AtomicU64,
    /// How each connection ended, in order.
    endings: Mutex<Vec<String>>,
    /// Connected right now.
    online: AtomicBool,
    /// When set, a lost connection is not replaced until [`Editor::release`].
    hold_on_loss: AtomicBool,
    /// Set by a loss while holding; cleared by [`Editor::release`].
    held: AtomicBool,
    /// Ends the task.
    stop: AtomicBool,
}

/// A y-websocket client that keeps its document across connections and
/// reconnects by itself, like a provider in a browser tab.
struct Editor {
    state: Arc<EditorState>,
    orders: mpsc::Sender<Order>,
    task: tokio::task::JoinHandle<()>,
}

impl Editor {
    fn spawn(index: usize, targets: Vec<SocketAddr>) -> Editor {
        let state = Arc::new(EditorState {
            name: format!("editor{index}"),
            prefix: format!("e{index}-"),
            doc: Doc::new(),
            targets,
            made: AtomicU64::new(0),
            acked: Mutex::new(BTreeSet::new()),
            connections: AtomicU64::new(0),
            endings: Mutex::new(Vec::new()),
            online: AtomicBool::new(false),
            hold_on_loss: AtomicBool::new(false),
            held: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let (orders, rx) = mpsc::channel(4);
        let task = tokio::spawn(run_editor(state.clone(), rx));
        Editor {
            state,
            orders,
            task,
        }
    }

    fn key(&self, n: u64) -> String {
        format!("{}{n}", self.state.prefix)
    }

    /// Every key this editor made.
    fn made(&self) -> BTreeSet<String> {
        (0..self.state.made.load(Ordering::SeqCst))
            .map(|n| self.key(n))
            .collect()
    }

    fn acked(&self) -> BTreeSet<String> {
        self.state.acked.lock().unwrap().clone()
    }

    /// Keys this editor holds that another editor made: it can only have
    /// them from a server, which must have stored them first.
    fn received(&self) -> BTreeSet<String> {
        map_keys(&self.state.doc, MAP)
            .into_iter()
            .filter(|k| !k.starts_with(&self.state.prefix))
            .collect()
    }

    fn keys(&self) -> BTreeSet<String> {
        map_keys(&self.state.doc, MAP)
    }

    fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    fn is_online(&self) -> bool {
        self.state.online.load(Ordering::SeqCst)
    }

    fn is_held(&self) -> bool {
        self.state.held.load(Ordering::SeqCst)
    }

    fn endings(&self) -> Vec<String> {
        self.state.endings.lock().unwrap().clone()
    }

    async fn burst(&self, n: u64) -> oneshot::Receiver<()> {
        let (done, rx) = oneshot::channel();
        self.orders
            .send(Order::Burst(n, done))
            .await
            .unwrap_or_else(|_| panic!("{}: its task ended", self.state.name));
        rx
    }
}

/// The editor's loop: keep a connection (unless held), make the edits it
/// is ordered to, and record what the server acknowledges.
async fn run_editor(state: Arc<EditorState>, mut orders: mpsc::Receiver<Order>) {
    // The current connection and the (message number, key) of each edit
    // sent on it, until acknowledged.
    let mut conn: Option<(WsClient, Vec<(u64, String)>)> = None;
    let mut target = 0usize;
    let mut retry_at = Instant::now();
    let mut backoff = RETRY_FIRST;
    let mut burst: Option<(u64, oneshot::Sender<()>)> = None;
    while !state.stop.load(Ordering::SeqCst) {
        // Record acknowledgements; notice a lost connection.
        if let Some((client, sent)) = conn.as_mut() {
            let st = client.state();
            if st.step2_received > 0 {
                backoff = RETRY_FIRST;
            }
            let acked: Vec<String> = sent
                .iter()
                .filter(|(n, _)| *n <= st.saved)
                .map(|(_, k)| k.clone())
                .collect();
            sent.retain(|(n, _)| *n > st.saved);
            state.acked.lock().unwrap().extend(acked);
            if let Some(end) = st.ended {
                state.endings.lock().unwrap().push(format!("{end:?}"));
                state.online.store(false, Ordering::SeqCst);
                conn = None;
                if state.hold_on_loss.load(Ordering::SeqCst) {
                    state.held.store(true, Ordering::SeqCst);
                }
            }
        }
        // Reconnect, as a provider does, unless held.
        if conn.is_none() && !state.held.load(Ordering::SeqCst) && Instant::now() >= retry_at {
            let addr = state.targets[target % state.targets.len()];
            let opts = ConnectOpts {
                acks: true,
                ..ConnectOpts::default()
            };
            match WsClient::dial(
                addr,
                ROOM,
                &state.name,
                state.doc.clone(),
                opts,
                DIAL_TIMEOUT,
            )
            .await
            {
                Ok(client) => {
                    state.connections.fetch_add(1, Ordering::SeqCst);
                    state.online.store(true, Ordering::SeqCst);
                    conn = Some((client, Vec::new()));
                }
                Err(_) => target += 1,
            }
            retry_at = Instant::now() + backoff;
            backoff = (backoff * 2).min(RETRY_MAX);
        }
        if burst.is_none() {
            match orders.try_recv() {
                Ok(Order::Burst(n, done)) => burst = Some((n, done)),
                Err(mpsc::error::TryRecvError::Empty) => {}
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
        // One edit of the burst, sent if connected.
        if let Some((left, _)) = burst.as_mut() {
            let n = state.made.fetch_add(1, Ordering::SeqCst);
            let key = format!("{}{n}", state.prefix);
            let update = {
                let mut txn = state.doc.transact_mut();
                txn.get_or_insert_map(MAP)
                    .insert(&mut txn, key.clone(), n as i64);
                txn.encode_update_v1()
            };
            if let Some((client, sent)) = conn.as_mut() {
                // A failed send shows as the connection's end next turn.
                if let Ok(number) = client.try_send_counted(update).await {
                    sent.push((number, key));
                }
            }
            *left -= 1;
            if *left == 0 {
                let (_, done) = burst.take().expect("a burst");
                let _ = done.send(());
            }
            tokio::time::sleep(PACE).await;
        } else {
            // Pacing of the connection upkeep between bursts only.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The editors of one case and what they saw.
struct Storm {
    editors: Vec<Editor>,
}

impl Storm {
    /// One editor per entry of `targets` (the servers it may use, in its
    /// order of preference); waits until each is connected.
    async fn start(targets: Vec<Vec<SocketAddr>>) -> Storm {
        let editors: Vec<Editor> = targets
            .into_iter()
            .enumerate()
            .map(|(i, t)| Editor::spawn(i, t))
            .collect();
        let storm = Storm { editors };
        storm
            .wait("every editor to connect", TIMEOUT, |s| {
                s.editors.iter().all(|e| e.is_online())
            })
            .await;
        storm
    }

    /// Orders `n` edits of every editor; returns when they are all made.
    async fn burst(&self, n: u64) {
        let pending = self.start_burst(n).await;
        self.finish_burst(pending).await;
    }

    async fn start_burst(&self, n: u64) -> Vec<oneshot::Receiver<()>> {
        let mut pending = Vec::new();
        for e in &self.editors {
            pending.push(e.burst(n).await);
        }
        pending
    }

    async fn finish_burst(&self, pending: Vec<oneshot::Receiver<()>>) {
        for (e, done) in self.editors.iter().zip(pending) {
            within(
                TIMEOUT,
                &format!("{} to finish its burst", e.state.name),
                done,
            )
            .await
            .expect("editor task ended");
        }
    }

    /// Editors keep a lost connection closed until [`Storm::release`].
    fn hold_on_loss(&self) {
        for e in &self.editors {
            e.state.hold_on_loss.store(true, Ordering::SeqCst);
        }
    }

    /// Editors reconnect by themselves again.
    fn release(&self) {
        for e in &self.editors {
            e.state.hold_on_loss.store(false, Ordering::SeqCst);
            e.state.held.store(false, Ordering::SeqCst);
        }
    }

    fn acked_count(&self) -> usize {
        self.editors.iter().map(|e| e.acked().len()).sum()
    }

    /// What must be stored: every key acknowledged to its author, and
    /// every key an editor received from another.
    fn required(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for e in &self.editors {
            all.extend(e.acked());
            all.extend(e.received());
        }
        all
    }

    fn made(&self) -> BTreeSet<String> {
        self.editors.iter().flat_map(|e| e.made()).collect()
    }

    /// Polls `pred` (editor state announces no event) until `timeout`.
    async fn wait(&self, what: &str, timeout: Duration, pred: impl Fn(&Storm) -> bool) {
        poll(what, timeout, || {
            let ok = pred(self);
            async move { ok.then_some(()) }
        })
        .await
    }

    /// Waits until every editor holds every key ever made; returns how
    /// long that took.
    async fn converge(&self, timeout: Duration) -> Duration {
        let started = Instant::now();
        let made = self.made();
        loop {
            let missing: Vec<(String, usize, bool)> = self
                .editors
                .iter()
                .map(|e| {
                    let keys = e.keys();
                    assert!(
                        keys.is_subset(&made),
                        "{} holds keys nobody made",
                        e.state.name
                    );
                    (e.state.name.clone(), made.len() - keys.len(), e.is_online())
                })
                .collect();
            if missing.iter().all(|(_, n, _)| *n == 0) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "timed out after {timeout:?} waiting for every editor to hold all {} keys made; \
                 (editor, keys missing, online): {missing:?}",
                made.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        for e in &self.editors {
            e.state.stop.store(true, Ordering::SeqCst);
        }
        for e in self.editors {
            within(TIMEOUT, "an editor task to end", e.task)
                .await
                .expect("editor task panicked");
        }
    }
}

// ------------------------------------------------------ stores and probes

/// The keys of the map in the document as the MongoDB database at `url`
/// holds it (snapshot and log), read directly.
async fn stored_in_mongo(url: &str) -> BTreeSet<String> {
    let store = coform_storage::mongo::MongoStore::connect(url)
        .await
        .expect("connect to the store");
    let stored = within(TIMEOUT, "the stored document", store.load(ROOM))
        .await
        .expect("load the stored document");
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        for data in stored
            .snapshot
            .iter()
            .map(|s| &s.data)
            .chain(stored.log.iter().map(|e| &e.data))
        {
            let update = Update::decode_v1(data).expect("a stored update decodes");
            txn.apply_update(update).expect("a stored update applies");
        }
    }
    store.close().await;
    map_keys(&doc, MAP)
}

/// The keys a fresh client gets first from `addr`: the room's document,
/// which holds nothing the store does not (it stores before it reveals).
async fn served_by(addr: SocketAddr, name: &str) -> BTreeSet<String> {
    let verifier = WsClient::connect(addr, ROOM, name).await;
    let first = verifier
        .state()
        .first_step2
        .expect("the verifier's first SyncStep2");
    verifier.close().await;
    map_keys(&doc_from_update(&first), MAP)
}

#[track_caller]
fn assert_subset(what: &str, required: &BTreeSet<String>, stored: &BTreeSet<String>) {
    let missing: Vec<&String> = required.difference(stored).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {} keys that a client saw acknowledged or received are not stored, e.g. {:?}",
        missing.len(),
        required.len(),
        &missing[..missing.len().min(10)]
    );
}

/// `/readyz` of `addr`: its status and body.
async fn readyz(addr: SocketAddr) -> (u16, String) {
    within(
        Duration::from_secs(10),
        "an answer from /readyz",
        http_get(addr, "/readyz"),
    )
    .await
}

/// Polls `/readyz` until `pred` holds; returns the answer.
async fn wait_readyz(
    addr: SocketAddr,
    what: &str,
    timeout: Duration,
    pred: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let pred = &pred;
    poll(what, timeout, || async move {
        let (status, body) = readyz(addr).await;
        pred(status, &body).then_some((status, body))
    })
    .await
}

/// [`wait_readyz`] on several servers at once.
async fn wait_all_readyz(
    addrs: &[SocketAddr],
    what: &str,
    timeout: Duration,
    pred: impl Fn(u16, &str) -> bool,
) {
    let pred = &pred;
    futures_util::future::join_all(
        addrs
            .iter()
            .map(|a| wait_readyz(*a, what, timeout, move |s, b| pred(s, b))),
    )
    .await;
}

async fn replica(store: &str, redis: &Redis) -> ProcessServer {
    ProcessServer::start(&[
        "--store",
        store,
        "--redis",
        &redis.url(),
        "--room-grace",
        "1s",
    ])
    .await
}

/// Two editors on each of two replicas, each able to move to the other.
fn two_by_two(r1: SocketAddr, r2: SocketAddr) -> Vec<Vec<SocketAddr>> {
    vec![vec![r1, r2], vec![r1, r2], vec![r2, r1], vec![r2, r1]]
}

// ------------------------------------------------------------------ cases

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replica_loses_nothing_and_its_clients_resync_elsewhere() {
    let store = MongoServer::shared().fresh_database_url();
    let redis = Redis::start();
    let mut r1 = replica(&store, &redis).await;
    let r2 = replica(&store, &redis).await;
    let storm = Storm::start(two_by_two(r1.addr, r2.addr)).await;
    storm.burst(20).await;

    // SIGKILL the first replica in the middle of a burst.
    storm.hold_on_loss();
    let pending = storm.start_burst(150).await;
    storm
        .wait("edits acknowledged on both replicas", TIMEOUT, |s| {
            s.editors.iter().all(|e| e.acked().len() >= 30)
        })
        .await;
    r1.kill9().await;
    let killed = Instant::now();
    storm
        .wait("the killed replica's editors to lose it", TIMEOUT, |s| {
            s.editors[..2].iter().all(|e| e.is_held())
        })
        .await;
    let required = storm.required();
    let stored = stored_in_mongo(&store).await;
    let checked = killed.elapsed();
    assert_subset("after the kill", &required, &stored);
    assert!(
        storm.editors[2..].iter().all(|e| e.connections() == 1),
        "the surviving replica's editors kept their connections"
    );

    // They reconnect by themselves, to the other replica, and resync.
    let released = Instant::now();
    storm.release();
    storm
        .wait("the killed replica's editors to reconnect", RECOVERY, |s| {
            s.editors[..2]
                .iter()
                .all(|e| e.is_online() && e.connections() >= 2)
        })
        .await;
    let reconnected = released.elapsed();
    storm.finish_burst(pending).await;
    let converged = storm.converge(RECOVERY).await;
    storm.burst(20).await;
    storm.converge(RECOVERY).await;
    let made = storm.made();
    assert_subset("in the end", &made, &stored_in_mongo(&store).await);
    eprintln!(
        "replica SIGKILL: {} keys made, {} required at the kill (checked {:?} after it); \
         reconnected to the other replica {reconnected:?} after the release, converged \
         {converged:?} after the burst",
        made.len(),
        required.len(),
        checked
    );
    storm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_storm_replicas_keep_storing_and_heal() {
    let store = MongoServer::shared().fresh_database_url();
    let mut redis = Redis::start();
    let r1 = replica(&store, &redis).await;
    let r2 = replica(&store, &redis).await;
    let storm = Storm::start(two_by_two(r1.addr, r2.addr)).await;
    storm.burst(20).await;

    let pending = storm.start_burst(120).await;
    storm
        .wait("edits acknowledged", TIMEOUT, |s| s.acked_count() >= 100)
        .await;
    redis.stop(); // SIGKILL
    let killed = Instant::now();
    for r in [&r1, &r2] {
        let (_, body) = wait_readyz(r.addr, "readyz to report redis down", TIMEOUT, |s, b| {
            s == 200 && b.contains(r#""redis":"down""#)
        })
        .await;
        assert!(body.contains(r#""status":"degraded""#), "readyz: {body}");
    }
    // Each replica keeps storing its own clients' edits meanwhile.
    let acked_before: Vec<usize> = storm.editors.iter().map(|e| e.acked().len()).collect();
    storm.finish_burst(pending).await;
    storm.burst(30).await;
    storm
        .wait("edits acknowledged while Redis is down", TIMEOUT, |s| {
            s.editors
                .iter()
                .zip(&acked_before)
                .all(|(e, before)| e.acked().len() >= before + 30)
        })
        .await;
    assert_subset(
        "while Redis is down",
        &storm.required(),
        &stored_in_mongo(&store).await,
    );

    // Redis comes back on the same port: the replicas heal by themselves,
    // and no client reconnects.
    redis.spawn();
    let back = Instant::now();
    let took = storm.converge(RECOVERY).await;
    for r in [&r1, &r2] {
        wait_readyz(r.addr, "readyz to report redis up", TIMEOUT, |s, b| {
            s == 200 && b.contains(r#""redis":"up""#) && b.contains(r#""status":"ready""#)
        })
        .await;
    }
    for e in &storm.editors {
        assert_eq!(
            e.connections(),
            1,
            "{} reconnected: {:?}",
            e.state.name,
            e.endings()
        );
    }
    storm.burst(10).await;
    storm.converge(RECOVERY).await;
    assert_subset("in the end", &storm.made(), &stored_in_mongo(&store).await);
    eprintln!(
        "redis SIGKILL: down {:?}; every client converged {took:?} after Redis came back, \
         none reconnected",
        back - killed
    );
    storm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_killed_mid_storm_acknowledges_nothing_unstored_and_recovers() {
    let data = tempfile::tempdir().expect("store data dir");
    let mut mongo = MongoServer::start_persistent(data.path());
    let store = mongo.fresh_database_url();
    let redis = Redis::start();
    let r1 = replica(&store, &redis).await;
    let r2 = replica(&store, &redis).await;
    let storm = Storm::start(two_by_two(r1.addr, r2.addr)).await;
    storm.burst(20).await;

    storm.hold_on_loss();
    let pending = storm.start_burst(100).await;
    storm
        .wait("edits acknowledged", TIMEOUT, |s| s.acked_count() >= 150)
        .await;
    mongo.kill9();
    let killed = Instant::now();
    wait_all_readyz(&[r1.addr, r2.addr], "readyz to say 503", TIMEOUT, |s, _| {
        s == 503
    })
    .await;
    let unready_after = killed.elapsed();
    // The rooms cannot store: they close their connections rather than
    // acknowledge or relay anything.
    storm.finish_burst(pending).await;
    storm
        .wait("every editor to lose its connection", TIMEOUT, |s| {
            s.editors.iter().all(|e| e.is_held())
        })
        .await;
    let lost_after = killed.elapsed();
    let required = storm.required();
    let made_while_down = storm.made();

    // Same port, same data: the store restarts and the servers find it.
    mongo.restart();
    let restarted = Instant::now();
    wait_all_readyz(
        &[r1.addr, r2.addr],
        "readyz to say 200 again",
        RECOVERY,
        |s, _| s == 200,
    )
    .await;
    let ready_after = restarted.elapsed();
    assert_subset(
        "after the store's restart",
        &required,
        &stored_in_mongo(&store).await,
    );

    storm.release();
    let took = storm.converge(RECOVERY).await;
    let since_restart = restarted.elapsed();
    storm.burst(20).await;
    storm.converge(RECOVERY).await;
    assert_subset("in the end", &storm.made(), &stored_in_mongo(&store).await);
    eprintln!(
        "store SIGKILL: readyz 503 after {unready_after:?}, every connection closed after \
         {lost_after:?}; {} of {} keys made by then were required; readyz 200 {ready_after:?} \
         after the restart; converged {took:?} after the release ({:?} after the restart)",
        required.len(),
        made_while_down.len(),
        since_restart
    );
    storm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_frozen_for_five_seconds_stalls_then_catches_up() {
    let mongo = MongoServer::start();
    let store = mongo.fresh_database_url();
    let redis = Redis::start();
    let r1 = replica(&store, &redis).await;
    let r2 = replica(&store, &redis).await;
    let storm = Storm::start(two_by_two(r1.addr, r2.addr)).await;
    storm.burst(20).await;

    storm.hold_on_loss();
    let pending = storm.start_burst(200).await;
    storm
        .wait("edits acknowledged", TIMEOUT, |s| s.acked_count() >= 150)
        .await;
    mongo.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    wait_all_readyz(
        &[r1.addr, r2.addr],
        "readyz to say 503",
        Duration::from_secs(4),
        |s, _| s == 503,
    )
    .await;
    let unready_after = stopped.elapsed();
    // Whatever was answered before the stop has arrived by now; from here
    // on nothing can be acknowledged, since nothing can be stored.
    tokio::time::sleep_until((stopped + Duration::from_millis(500)).into()).await;
    let acked_frozen = storm.acked_count();
    let five = stopped + Duration::from_secs(5);
    tokio::time::sleep_until(five.into()).await;
    assert_eq!(
        storm.acked_count(),
        acked_frozen,
        "edits were acknowledged while the store was frozen"
    );
    let required = storm.required();
    mongo.signal(libc::SIGCONT);
    let resumed = Instant::now();
    wait_all_readyz(
        &[r1.addr, r2.addr],
        "readyz to say 200 again",
        RECOVERY,
        |s, _| s == 200,
    )
    .await;
    let ready_after = resumed.elapsed();
    assert_subset(
        "after the store resumed",
        &required,
        &stored_in_mongo(&store).await,
    );
    storm.release();
    storm.finish_burst(pending).await;
    let took = storm.converge(RECOVERY).await;
    let stalled = resumed - stopped;
    assert_subset("in the end", &storm.made(), &stored_in_mongo(&store).await);
    let reconnects: u64 = storm.editors.iter().map(|e| e.connections() - 1).sum();
    eprintln!(
        "store SIGSTOP for {stalled:?}: readyz 503 after {unready_after:?}, 200 \
         {ready_after:?} after SIGCONT; {reconnects} reconnects; converged {took:?} after the \
         burst"
    );
    storm.stop().await;
}

// ----------------------------------------------------- a full disk (root)

/// A size-limited tmpfs mounted on a fresh directory, unmounted when
/// dropped. Mounting needs root (or password-less sudo, as on CI runners).
struct SmallDisk {
    dir: tempfile::TempDir,
    sudo: bool,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("mount point");
        // SAFETY: plain getters without side effects.
        let (uid, gid, root) = unsafe { (libc::getuid(), libc::getgid(), libc::geteuid() == 0) };
        let options = format!("size={size},uid={uid},gid={gid},mode=0700");
        let mount = ["mount", "-t", "tmpfs", "-o", &options, "tmpfs"];
        let status = if root {
            std::process::Command::new(mount[0])
                .args(&mount[1..])
                .arg(dir.path())
                .status()
        } else {
            std::process::Command::new("sudo")
                .arg("-n")
                .args(mount)
                .arg(dir.path())
                .status()
        };
        match status {
            Ok(s) if s.success() => SmallDisk { dir, sudo: !root },
            other => panic!(
                "the full-disk case needs a size-limited filesystem for its data dir and \
                 could not mount one ({other:?}): run the tests as root (as CI does) or \
                 with password-less sudo"
            ),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the filesystem is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler file");
        let chunk = vec![0x5a; 64 * 1024];
        let mut size = chunk.len();
        loop {
            match file.write(&chunk[..size]) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    if size == 1 {
                        break;
                    }
                    size = (size / 2).max(1);
                }
                Err(e) => panic!("fill the small disk: {e}"),
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let path = self.dir.path().to_owned();
        let status = if self.sudo {
            std::process::Command::new("sudo")
                .args(["-n", "umount", "-l"])
                .arg(&path)
                .status()
        } else {
            std::process::Command::new("umount")
                .arg("-l")
                .arg(&path)
                .status()
        };
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("could not unmount {}: {status:?}", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_edits_instead_of_acknowledging_and_recovers() {
    let disk = SmallDisk::mount("16m");
    let data = disk.path().join("data");
    let server =
        ProcessServer::start_in(&data, &["--store", "embedded", "--room-grace", "1s"]).await;
    let storm = Storm::start(vec![vec![server.addr]; 3]).await;
    storm.burst(20).await;
    let (status, _) = readyz(server.addr).await;
    assert_eq!(status, 200);

    storm.hold_on_loss();
    let filler = disk.fill();
    let filled = Instant::now();
    let pending = storm.start_burst(150).await;
    storm
        .wait("every editor to lose its connection", TIMEOUT, |s| {
            s.editors.iter().all(|e| e.is_held())
        })
        .await;
    let refused_after = filled.elapsed();
    let (status, body) =
        wait_readyz(server.addr, "readyz to say 503", TIMEOUT, |s, _| s == 503).await;
    assert!(body.contains("unavailable"), "readyz: {body}");
    assert_eq!(status, 503);
    storm.finish_burst(pending).await;
    let required = storm.required();
    let made_while_full = storm.made();

    // Space again: the store writes again, readyz says so, the held
    // editors reconnect by themselves and everything converges.
    std::fs::remove_file(&filler).expect("remove the filler file");
    let freed = Instant::now();
    wait_readyz(server.addr, "readyz to say 200 again", RECOVERY, |s, _| {
        s == 200
    })
    .await;
    let ready_after = freed.elapsed();
    assert_subset(
        "after space was freed",
        &required,
        &served_by(server.addr, "verifier-after-free").await,
    );
    storm.release();
    storm.burst(20).await;
    let took = storm.converge(RECOVERY).await;
    assert_subset(
        "in the end",
        &storm.made(),
        &served_by(server.addr, "verifier-end").await,
    );
    eprintln!(
        "full disk: every connection closed {refused_after:?} after the fill; {} of {} keys \
         made by then were acknowledged or relayed; readyz 200 {ready_after:?} after space \
         was freed; converged {took:?} after the release",
        required.len(),
        made_while_full.len()
    );
    storm.stop().await;
    drop(server);
}
