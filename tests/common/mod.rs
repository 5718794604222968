//! Shared harness for the end-to-end tests: an in-process server, the real
//! binary as a child process, and a y-websocket client built on yrs.
//!
//! Nothing here sleeps to wait for something to happen: every wait is for a
//! concrete event (a message, a state change, a metric value) and is bounded
//! by a timeout that fails the test with a description of what was awaited.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use yrs::encoding::read::Cursor;
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{
    Doc, GetString, Map, MapRef, ReadTxn, StateVector, Text, TextRef, Transact, TransactionMut,
    Update, WriteTxn,
};

/// With `COFORM_TEST_STORE=mongodb` the servers of the suite store in a
/// fresh database of the shared SecantusDB server instead of the embedded
/// store, so the same tests exercise the MongoDB backend.
pub fn test_store_url() -> Option<String> {
    match std::env::var("COFORM_TEST_STORE").as_deref() {
        Ok("mongodb") => Some(coform_storage::testing::MongoServer::shared().fresh_database_url()),
        Ok("embedded") | Err(_) => None,
        Ok(other) => panic!("COFORM_TEST_STORE must be `embedded` or `mongodb`, not `{other}`"),
    }
}

/// Default bound for any single wait in the tests.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Origin attached to transactions that apply updates received from the
/// server, so they can be told apart from local edits.
const REMOTE_ORIGIN: &str = "remote";

// ---------------------------------------------------------------------------
// Waiting helpers
// ---------------------------------------------------------------------------

/// Awaits `fut` for at most `timeout`, panicking with `what` if it takes
/// longer.
pub async fn within<T>(timeout: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(timeout, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// A small deterministic pseudo-random generator (xorshift64*), so tests
/// need no extra crate and failures can be replayed from the seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// A string of `len` lowercase letters.
    pub fn letters(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// HTTP and metrics
// ---------------------------------------------------------------------------

/// GETs `path` on the server and returns status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let url = format!("http://{addr}{path}");
    let resp = within(TIMEOUT, &format!("GET {url}"), reqwest::get(&url))
        .await
        .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
    let status = resp.status().as_u16();
    let body = within(TIMEOUT, &format!("body of GET {url}"), resp.text())
        .await
        .unwrap_or_else(|e| panic!("reading body of GET {url} failed: {e}"));
    (status, body)
}

/// A parsed Prometheus text exposition: series (name plus labels, exactly as
/// written) to value.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub series: Vec<(String, String, f64)>,
    pub raw: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut series = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // name{labels} value [timestamp]  or  name value [timestamp]
            let (name, labels, rest) = match line.find('{') {
                Some(open) => {
                    let close = line[open..]
                        .find('}')
                        .map(|c| open + c)
                        .unwrap_or_else(|| panic!("bad metrics line: {line}"));
                    (&line[..open], &line[open + 1..close], &line[close + 1..])
                }
                None => {
                    let sp = line
                        .find(char::is_whitespace)
                        .unwrap_or_else(|| panic!("bad metrics line: {line}"));
                    (&line[..sp], "", &line[sp..])
                }
            };
            let value = rest
                .split_whitespace()
                .next()
                .unwrap_or_else(|| panic!("metrics line without value: {line}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad metric value in line: {line}")),
            };
            series.push((name.to_string(), labels.to_string(), value));
        }
        Metrics {
            series,
            raw: text.to_string(),
        }
    }

    /// Whether any series named exactly `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.series.iter().any(|(n, _, _)| n == name)
    }

    /// Sum of every series named exactly `name` (all label sets); panics if
    /// the metric is absent, so a renamed metric fails loudly.
    pub fn get(&self, name: &str) -> f64 {
        assert!(
            self.has(name),
            "metric `{name}` missing from /metrics:\n{}",
            self.raw
        );
        self.series
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    }
}

pub async fn metrics(addr: SocketAddr) -> Metrics {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "/metrics answered {status}: {body}");
    Metrics::parse(&body)
}

/// Polls `/metrics` until `pred` holds for the value of `name`, returning
/// that value. Fails after `timeout` with the last value seen.
pub async fn wait_metric(
    addr: SocketAddr,
    name: &str,
    timeout: Duration,
    pred: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = Instant::now() + timeout;
    loop {
        let v = metrics(addr).await.get(name);
        if pred(v) {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("metric `{name}` never met the condition within {timeout:?}; last value {v}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// In-process server
// ---------------------------------------------------------------------------

type Tweak = Arc<dyn Fn(&mut coform::config::Config) + Send + Sync>;

/// The server running inside the test process on a temporary data dir.
/// Dropping it cancels the server and removes the directory.
pub struct TestServer {
    pub addr: SocketAddr,
    server: Option<coform::server::RunningServer>,
    tweak: Tweak,
    /// The MongoDB database this server stores in (kept across restarts),
    /// when the suite runs with `COFORM_TEST_STORE=mongodb`.
    store_url: Option<String>,
    // Declared last: dropped after the server.
    dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts with `Config::for_tests` adjusted by `tweak`. The same tweak
    /// is applied again by [`TestServer::restart`].
    pub async fn start_with(
        tweak: impl Fn(&mut coform::config::Config) + Send + Sync + 'static,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("create temp data dir");
        let tweak: Tweak = Arc::new(tweak);
        let store_url = test_store_url();
        let server = Self::launch(dir.path(), &tweak, &store_url).await;
        TestServer {
            addr: server.addr,
            server: Some(server),
            tweak,
            store_url,
            dir,
        }
    }

    async fn launch(
        dir: &Path,
        tweak: &Tweak,
        store_url: &Option<String>,
    ) -> coform::server::RunningServer {
        let mut config = coform::config::Config::for_tests(dir.to_path_buf());
        if let Some(url) = store_url {
            config.store = coform::config::StoreKind::MongoDb(url.clone());
        }
        tweak(&mut config);
        within(TIMEOUT, "server start", coform::server::start(config))
            .await
            .expect("start in-process server")
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Opens the store this server uses (call after stopping it when it is
    /// the embedded one, which one process at a time may open).
    pub async fn open_store(&self) -> Arc<dyn coform_storage::DocStore> {
        match &self.store_url {
            Some(url) => Arc::new(
                coform_storage::mongo::MongoStore::connect(url)
                    .await
                    .expect("connect to the test MongoDB"),
            ),
            None => Arc::new(
                coform_storage::embedded::EmbeddedStore::open(
                    self.dir.path(),
                    coform_storage::Durability::Full,
                )
                .expect("open the server's embedded store"),
            ),
        }
    }

    /// Graceful shutdown; the data dir is kept.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            within(TIMEOUT, "server shutdown", server.shutdown()).await;
        }
    }

    /// Graceful shutdown, then a new server on the same data dir (new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Starts a server on the data dir after [`TestServer::stop`].
    pub async fn start_again(&mut self) {
        assert!(self.server.is_none(), "server still running");
        let server = Self::launch(self.dir.path(), &self.tweak, &self.store_url).await;
        self.addr = server.addr;
        self.server = Some(server);
    }
}

// ---------------------------------------------------------------------------
// The binary as a child process
// ---------------------------------------------------------------------------

const LISTENING_PREFIX: &str = "coform listening on http://";

/// The `coform` binary run as a child process on a temporary data dir.
/// Its stderr is kept (last lines) and printed if the test fails.
pub struct ProcessServer {
    pub addr: SocketAddr,
    /// See [`TestServer`]: the MongoDB database under `COFORM_TEST_STORE=mongodb`.
    store_url: Option<String>,
    child: Option<tokio::process::Child>,
    args: Vec<String>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    dir: tempfile::TempDir,
}

impl ProcessServer {
    /// Spawns `coform serve --bind 127.0.0.1:0 --data-dir DIR ARGS...` and
    /// waits for its listening line.
    pub async fn start(args: &[&str]) -> ProcessServer {
        let dir = tempfile::tempdir().expect("create temp data dir");
        let mut server = ProcessServer {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            store_url: test_store_url().filter(|_| !args.contains(&"--store")),
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
            dir,
        };
        server.spawn().await;
        server
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(|c| c.id())
            .expect("server process is not running")
    }

    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "server process already running");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_coform"));
        cmd.arg("serve")
            .args(["--auth", "off"])
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(&self.args)
            .args(self.store_url.iter().flat_map(|u| ["--store", u.as_str()]))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn coform binary");
        let stdout = child.stdout.take().expect("child stdout");
        let stderr = child.stderr.take().expect("child stderr");

        let tail = self.stderr_tail.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut tail = tail.lock().unwrap();
                if tail.len() >= 200 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });

        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Option<String>>();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next_line().await.ok().flatten();
            let _ = first_tx.send(first);
            // Keep draining so the child never blocks on a full pipe.
            while let Ok(Some(_)) = lines.next_line().await {}
        });
        self.child = Some(child);

        let line = within(TIMEOUT, "the server's listening line", first_rx)
            .await
            .ok()
            .flatten();
        let line = match line {
            Some(l) => l,
            None => {
                let status = self.child.as_mut().unwrap().try_wait();
                panic!(
                    "server printed no listening line (exit: {status:?}); stderr:\n{}",
                    self.stderr()
                );
            }
        };
        let rest = line
            .strip_prefix(LISTENING_PREFIX)
            .unwrap_or_else(|| panic!("unexpected first stdout line: {line:?}"));
        self.addr = rest
            .trim()
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| panic!("bad address in listening line {line:?}: {e}"));
    }

    /// The last lines the server wrote to stderr.
    pub fn stderr(&self) -> String {
        let tail = self.stderr_tail.lock().unwrap();
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// SIGKILL to this server's own child process, then reaps it.
    pub async fn kill9(&mut self) {
        let mut child = self.child.take().expect("server process is not running");
        let pid = child.id().expect("child already reaped") as libc::pid_t;
        // SAFETY: sending a signal to our own, not yet reaped, child.
        let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(
            rc,
            0,
            "kill(SIGKILL) failed: {}",
            std::io::Error::last_os_error()
        );
        let status = within(TIMEOUT, "killed server to exit", child.wait())
            .await
            .expect("wait for killed server");
        assert!(!status.success(), "SIGKILLed server reported success");
    }

    /// SIGTERM (graceful shutdown) and waits for the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server process is not running");
        let pid = child.id().expect("child already reaped") as libc::pid_t;
        // SAFETY: sending a signal to our own, not yet reaped, child.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(
            rc,
            0,
            "kill(SIGTERM) failed: {}",
            std::io::Error::last_os_error()
        );
        within(TIMEOUT, "server to exit after SIGTERM", child.wait())
            .await
            .expect("wait for server")
    }

    /// Starts the binary again on the same data dir (it gets a new port).
    pub async fn restart(&mut self) {
        self.spawn().await;
    }
}

impl Drop for ProcessServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            eprintln!("---- coform server stderr (tail) ----\n{}", self.stderr());
        }
    }
}

// ---------------------------------------------------------------------------
// y-websocket client
// ---------------------------------------------------------------------------

type Ws = WebSocketStream<TcpStream>;
type WsSink = SplitSink<Ws, WsMessage>;

/// How the connection ended, as seen by the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The server sent a close frame.
    Closed { code: u16, reason: String },
    /// The connection went away without a close frame.
    Dropped(String),
}

/// What a client has seen on its connection.
#[derive(Clone, Debug, Default)]
pub struct ConnState {
    pub step1_received: u64,
    pub step2_received: u64,
    /// The payload of the first SyncStep2 received.
    pub first_step2: Option<Vec<u8>>,
    pub updates_received: u64,
    pub update_bytes_received: u64,
    /// Sync updates that carried changes authored by this very client.
    pub echoes: u64,
    pub awareness_received: u64,
    /// Latest awareness entry per awareness client id: (clock, JSON state).
    pub awareness: HashMap<u64, (u32, String)>,
    pub other_messages: u64,
    /// Binary frames that did not decode as a y-websocket message.
    pub decode_errors: Vec<String>,
    /// Updates that decoded but failed to apply.
    pub apply_errors: Vec<String>,
    pub text_frames: u64,
    pub ended: Option<Ended>,
}

impl ConnState {
    pub fn close_code(&self) -> Option<u16> {
        match &self.ended {
            Some(Ended::Closed { code, .. }) => Some(*code),
            _ => None,
        }
    }
}

struct Shared {
    state: Mutex<ConnState>,
    events: watch::Sender<u64>,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut ConnState)) {
        f(&mut self.state.lock().unwrap());
        self.events.send_modify(|n| *n += 1);
    }
}

/// Connection options.
#[derive(Clone, Debug, Default)]
pub struct ConnectOpts {
    /// SO_RCVBUF for the client socket (small values make a stalled reader
    /// back-pressure the server quickly).
    pub recv_buffer: Option<u32>,
    /// Do not send the initial SyncStep1.
    pub no_initial_step1: bool,
}

/// A y-websocket client: a yrs document kept in sync with one room.
pub struct YClient {
    pub name: String,
    pub doc: Doc,
    pub room: String,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    sink: Arc<tokio::sync::Mutex<WsSink>>,
    paused: watch::Sender<bool>,
    reader: JoinHandle<()>,
}

impl Drop for YClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

pub fn ws_url(addr: SocketAddr, room: &str) -> String {
    format!("ws://{addr}/collab/{room}")
}

/// Opens a raw websocket to the room (no protocol handling at all).
pub async fn raw_connect(addr: SocketAddr, room: &str, recv_buffer: Option<u32>) -> Ws {
    let url = ws_url(addr, room);
    try_raw_connect(addr, room, recv_buffer)
        .await
        .unwrap_or_else(|e| panic!("websocket handshake with {url}: {e}"))
}

/// Like [`raw_connect`], returning the handshake error (e.g. an HTTP
/// refusal) instead of panicking.
pub async fn try_raw_connect(
    addr: SocketAddr,
    room: &str,
    recv_buffer: Option<u32>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    let tcp = within(TIMEOUT, "tcp connect", socket.connect(addr))
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let url = ws_url(addr, room);
    let (ws, _resp) = within(
        TIMEOUT,
        "websocket handshake",
        tokio_tungstenite::client_async(url.as_str(), tcp),
    )
    .await?;
    Ok(ws)
}

/// Encodes one y-websocket message as a frame payload.
pub fn encode_msg(msg: &Message) -> Vec<u8> {
    msg.encode_v1()
}

impl YClient {
    /// Connects with a fresh document and waits until the first SyncStep2
    /// from the server has been applied.
    pub async fn connect(addr: SocketAddr, room: &str, name: &str) -> YClient {
        let c = Self::connect_with_doc(addr, room, name, Doc::new(), ConnectOpts::default()).await;
        c.wait_synced().await;
        c
    }

    /// Connects with an existing document (e.g. a reconnect keeping local
    /// state) without waiting for the sync to complete.
    pub async fn connect_with_doc(
        addr: SocketAddr,
        room: &str,
        name: &str,
        doc: Doc,
        opts: ConnectOpts,
    ) -> YClient {
        let ws = raw_connect(addr, room, opts.recv_buffer).await;
        let (sink, stream) = ws.split();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let (events, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            state: Mutex::new(ConnState::default()),
            events,
        });
        let (paused, paused_rx) = watch::channel(false);
        let reader = tokio::spawn(read_loop(
            stream,
            doc.clone(),
            shared.clone(),
            sink.clone(),
            paused_rx,
        ));
        let client = YClient {
            name: name.to_string(),
            doc,
            room: room.to_string(),
            addr,
            shared,
            sink,
            paused,
            reader,
        };
        if !opts.no_initial_step1 {
            let sv = client.doc.transact().state_vector();
            client
                .send_msg(&Message::Sync(SyncMessage::SyncStep1(sv)))
                .await
                .expect("send SyncStep1");
        }
        client
    }

    /// Reconnects to `addr` keeping this client's document; waits for sync.
    pub async fn reconnect(self, addr: SocketAddr) -> YClient {
        let doc = self.doc.clone();
        let (room, name) = (self.room.clone(), self.name.clone());
        drop(self);
        let c = Self::connect_with_doc(addr, &room, &name, doc, ConnectOpts::default()).await;
        c.wait_synced().await;
        c
    }

    pub fn client_id(&self) -> u64 {
        self.doc.client_id().get()
    }

    pub fn state(&self) -> ConnState {
        self.shared.state.lock().unwrap().clone()
    }

    /// Sends a raw websocket message.
    pub async fn send_raw(&self, msg: WsMessage) -> Result<(), String> {
        let mut sink = self.sink.lock().await;
        sink.send(msg).await.map_err(|e| e.to_string())
    }

    pub async fn send_msg(&self, msg: &Message) -> Result<(), String> {
        self.send_raw(WsMessage::binary(encode_msg(msg))).await
    }

    /// Sends a sync update (message type 0, subtype 2).
    pub async fn send_update(&self, update: Vec<u8>) -> Result<(), String> {
        self.send_msg(&Message::Sync(SyncMessage::Update(update)))
            .await
    }

    /// Runs `f` in a local transaction and sends the resulting update.
    /// Returns the update that was sent.
    pub async fn try_edit(&self, f: impl FnOnce(&mut TransactionMut)) -> Result<Vec<u8>, String> {
        // Root types must be reached through `txn` (WriteTxn): the Doc's
        // own get_or_insert_* would wait for this very transaction.
        let update = {
            let mut txn = self.doc.transact_mut();
            f(&mut txn);
            txn.encode_update_v1()
        };
        self.send_update(update.clone()).await?;
        Ok(update)
    }

    /// Like [`YClient::try_edit`], panicking if the send fails.
    pub async fn edit(&self, f: impl FnOnce(&mut TransactionMut)) -> Vec<u8> {
        let name = self.name.clone();
        self.try_edit(f)
            .await
            .unwrap_or_else(|e| panic!("{name}: sending update failed: {e}"))
    }

    /// Sets `key` to the string `value` in the root map `map`.
    pub async fn set_key(&self, map: &str, key: &str, value: &str) -> Vec<u8> {
        let (map, key, value) = (map.to_string(), key.to_string(), value.to_string());
        self.edit(move |txn| {
            txn.get_or_insert_map(map.as_str()).insert(txn, key, value);
        })
        .await
    }

    /// Inserts `chunk` at `index` (clamped) into the root text `text`.
    pub async fn insert_text(&self, text: &str, index: u32, chunk: &str) -> Vec<u8> {
        let (text, chunk) = (text.to_string(), chunk.to_string());
        self.edit(move |txn| {
            let t = txn.get_or_insert_text(text.as_str());
            let len = t.len(txn);
            t.insert(txn, index.min(len), &chunk);
        })
        .await
    }

    /// Stops reading from the socket (the server's writes back up).
    pub fn pause_reading(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume_reading(&self) {
        self.paused.send_replace(false);
    }

    /// Waits until `pred` holds for the connection state.
    pub async fn wait_state(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&ConnState) -> bool,
    ) {
        let mut rx = self.shared.events.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(&self.shared.state.lock().unwrap()) {
                return;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => unreachable!("event sender lives in Shared"),
                Err(_) => panic!(
                    "{}: timed out after {timeout:?} waiting for {what}; state: {:?}",
                    self.name,
                    self.state_summary()
                ),
            }
        }
    }

    /// Waits until `pred` holds for the document. Fails early if the
    /// connection ends while waiting (the document can no longer change).
    pub async fn wait_until(&self, what: &str, timeout: Duration, pred: impl Fn(&Doc) -> bool) {
        let mut rx = self.shared.events.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(&self.doc) {
                return;
            }
            if let Some(ended) = self.shared.state.lock().unwrap().ended.clone() {
                // One more look: the last message may have completed it.
                if pred(&self.doc) {
                    return;
                }
                panic!(
                    "{}: connection ended ({ended:?}) while waiting for {what}",
                    self.name
                );
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => unreachable!("event sender lives in Shared"),
                Err(_) => panic!(
                    "{}: timed out after {timeout:?} waiting for {what}; state: {:?}",
                    self.name,
                    self.state_summary()
                ),
            }
        }
    }

    /// Waits for the first SyncStep2 from the server.
    pub async fn wait_synced(&self) {
        self.wait_state("the first SyncStep2", TIMEOUT, |s| {
            s.step2_received > 0 || s.ended.is_some()
        })
        .await;
        let st = self.state();
        assert!(
            st.step2_received > 0,
            "{}: connection ended before sync: {:?}",
            self.name,
            st.ended
        );
    }

    /// Waits until the connection ends and returns how.
    pub async fn wait_ended(&self, timeout: Duration) -> Ended {
        self.wait_state("the connection to end", timeout, |s| s.ended.is_some())
            .await;
        self.state().ended.unwrap()
    }

    /// A round trip through this connection: sends SyncStep1 and waits for
    /// the SyncStep2 that answers it. Anything the server queued for this
    /// client before it read the SyncStep1 has arrived when this returns.
    pub async fn round_trip(&self) {
        let before = self.state().step2_received;
        let sv = self.doc.transact().state_vector();
        self.send_msg(&Message::Sync(SyncMessage::SyncStep1(sv)))
            .await
            .unwrap_or_else(|e| panic!("{}: send SyncStep1: {e}", self.name));
        self.wait_state("the SyncStep2 answering our SyncStep1", TIMEOUT, |s| {
            s.step2_received > before
        })
        .await;
    }

    /// Announces this client's awareness state (JSON, `"null"` = gone).
    pub async fn set_awareness(&self, clock: u32, json: &str) {
        let mut clients = HashMap::new();
        clients.insert(
            self.doc.client_id(),
            yrs::sync::awareness::AwarenessUpdateEntry {
                clock,
                json: json.into(),
            },
        );
        let update = yrs::sync::awareness::AwarenessUpdate { clients };
        self.send_msg(&Message::Awareness(update))
            .await
            .unwrap_or_else(|e| panic!("{}: send awareness: {e}", self.name));
    }

    /// The awareness state this client has been told for `client`.
    pub fn awareness_of(&self, client: u64) -> Option<(u32, String)> {
        self.shared
            .state
            .lock()
            .unwrap()
            .awareness
            .get(&client)
            .cloned()
    }

    /// Closes the websocket politely.
    pub async fn close(&self) {
        let _ = self.send_raw(WsMessage::Close(None)).await;
    }

    fn state_summary(&self) -> String {
        let s = self.state();
        format!(
            "step1={} step2={} updates={} echoes={} awareness={} decode_errors={:?} apply_errors={:?} ended={:?}",
            s.step1_received,
            s.step2_received,
            s.updates_received,
            s.echoes,
            s.awareness_received,
            s.decode_errors,
            s.apply_errors,
            s.ended
        )
    }

    // ---- document views ----

    pub fn map_keys(&self, map: &str) -> BTreeSet<String> {
        map_keys(&self.doc, map)
    }

    pub fn text(&self, text: &str) -> String {
        text_string(&self.doc, text)
    }

    pub fn map_json(&self, map: &str) -> String {
        map_json(&self.doc, map)
    }

    pub fn state_vector(&self) -> StateVector {
        self.doc.transact().state_vector()
    }
}

/// Keys of root map `name` (empty if absent).
pub fn map_keys(doc: &Doc, name: &str) -> BTreeSet<String> {
    let map: MapRef = doc.get_or_insert_map(name);
    let txn = doc.transact();
    map.keys(&txn).map(|k| k.to_string()).collect()
}

/// Contents of root text `name`.
pub fn text_string(doc: &Doc, name: &str) -> String {
    let text: TextRef = doc.get_or_insert_text(name);
    let txn = doc.transact();
    text.get_string(&txn)
}

/// Root map `name` as canonical JSON (keys sorted).
pub fn map_json(doc: &Doc, name: &str) -> String {
    use yrs::types::ToJson;
    let map: MapRef = doc.get_or_insert_map(name);
    let txn = doc.transact();
    let any = map.to_json(&txn);
    let mut out = String::new();
    canonical_json(&any, &mut out);
    out
}

fn canonical_json(any: &yrs::Any, out: &mut String) {
    match any {
        yrs::Any::Map(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k.as_str()).unwrap());
                out.push(':');
                canonical_json(&m[k], out);
            }
            out.push('}');
        }
        yrs::Any::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        other => {
            // `Any::to_json` writes from the start of the buffer it is
            // given, so give it a fresh one.
            let mut scalar = String::new();
            other.to_json(&mut scalar);
            out.push_str(&scalar);
        }
    }
}

/// A fresh document holding exactly the given update.
pub fn doc_from_update(update: &[u8]) -> Doc {
    let doc = Doc::new();
    let update = Update::decode_v1(update).expect("decode update");
    doc.transact_mut()
        .apply_update(update)
        .expect("apply update");
    doc
}

async fn read_loop(
    mut stream: SplitStream<Ws>,
    doc: Doc,
    shared: Arc<Shared>,
    sink: Arc<tokio::sync::Mutex<WsSink>>,
    mut paused: watch::Receiver<bool>,
) {
    let own_client = doc.client_id();
    loop {
        // While paused, do not poll the socket at all.
        while *paused.borrow_and_update() {
            if paused.changed().await.is_err() {
                return;
            }
        }
        let next = tokio::select! {
            biased;
            changed = paused.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            next = stream.next() => next,
        };
        let frame = match next {
            None => {
                shared.update(|s| {
                    if s.ended.is_none() {
                        s.ended = Some(Ended::Dropped("stream ended".into()));
                    }
                });
                return;
            }
            Some(Err(e)) => {
                shared.update(|s| {
                    if s.ended.is_none() {
                        s.ended = Some(Ended::Dropped(e.to_string()));
                    }
                });
                return;
            }
            Some(Ok(frame)) => frame,
        };
        match frame {
            WsMessage::Binary(data) => {
                // A frame normally holds one message; accept several.
                let mut msgs = Vec::new();
                {
                    let mut decoder = DecoderV1::new(Cursor::new(&data));
                    for msg in MessageReader::new(&mut decoder) {
                        match msg {
                            Ok(m) => msgs.push(m),
                            Err(e) => {
                                shared.update(|s| s.decode_errors.push(e.to_string()));
                                break;
                            }
                        }
                    }
                }
                if msgs.is_empty() {
                    shared.update(|s| s.decode_errors.push("empty frame".into()));
                }
                for msg in msgs {
                    handle_message(msg, &doc, own_client, &shared, &sink).await;
                }
            }
            WsMessage::Text(_) => shared.update(|s| s.text_frames += 1),
            WsMessage::Close(frame) => {
                let ended = match frame {
                    Some(f) => Ended::Closed {
                        code: u16::from(f.code),
                        reason: f.reason.to_string(),
                    },
                    None => Ended::Closed {
                        code: u16::from(CloseCode::Status),
                        reason: String::new(),
                    },
                };
                shared.update(|s| {
                    if s.ended.is_none() {
                        s.ended = Some(ended);
                    }
                });
                // Let tungstenite finish the closing handshake.
                while let Some(Ok(_)) = stream.next().await {}
                return;
            }
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => {}
        }
    }
}

async fn handle_message(
    msg: Message,
    doc: &Doc,
    own_client: yrs::block::ClientID,
    shared: &Shared,
    sink: &tokio::sync::Mutex<WsSink>,
) {
    match msg {
        Message::Sync(SyncMessage::SyncStep1(sv)) => {
            // Answer with what the server is missing, as y-websocket does.
            let diff = doc.transact().encode_state_as_update_v1(&sv);
            let reply = encode_msg(&Message::Sync(SyncMessage::SyncStep2(diff)));
            let _ = sink.lock().await.send(WsMessage::binary(reply)).await;
            shared.update(|s| s.step1_received += 1);
        }
        Message::Sync(SyncMessage::SyncStep2(update)) => {
            let res = apply_remote(doc, &update);
            shared.update(|s| {
                s.step2_received += 1;
                if s.first_step2.is_none() {
                    s.first_step2 = Some(update.clone());
                }
                if let Err(e) = res {
                    s.apply_errors.push(e);
                }
            });
        }
        Message::Sync(SyncMessage::Update(update)) => {
            let echo = Update::decode_v1(&update)
                .map(|u| u.state_vector().contains_client(&own_client))
                .unwrap_or(false);
            let res = apply_remote(doc, &update);
            shared.update(|s| {
                s.updates_received += 1;
                s.update_bytes_received += update.len() as u64;
                if echo {
                    s.echoes += 1;
                }
                if let Err(e) = res {
                    s.apply_errors.push(e);
                }
            });
        }
        Message::Awareness(update) => shared.update(|s| {
            s.awareness_received += 1;
            for (client, entry) in update.clients {
                let e = s
                    .awareness
                    .entry(client.get())
                    .or_insert((0, String::new()));
                if entry.clock >= e.0 {
                    *e = (entry.clock, entry.json.to_string());
                }
            }
        }),
        _ => shared.update(|s| s.other_messages += 1),
    }
}

fn apply_remote(doc: &Doc, update: &[u8]) -> Result<(), String> {
    let update = Update::decode_v1(update).map_err(|e| format!("decode: {e}"))?;
    let mut txn = doc.transact_mut_with(REMOTE_ORIGIN);
    txn.apply_update(update).map_err(|e| format!("apply: {e}"))
}

/// The state vector every client converges to: for each client id, the
/// highest clock any of the documents has.
pub fn merged_state_vector(docs: &[&Doc]) -> HashMap<u64, u32> {
    let mut merged = HashMap::new();
    for doc in docs {
        let sv = doc.transact().state_vector();
        for (client, clock) in sv.iter() {
            let e = merged.entry(client.get()).or_insert(0);
            if *clock > *e {
                *e = *clock;
            }
        }
    }
    merged
}

/// Whether `doc` has seen everything described by `target`.
pub fn covers(doc: &Doc, target: &HashMap<u64, u32>) -> bool {
    let sv = doc.transact().state_vector();
    target
        .iter()
        .all(|(client, clock)| sv.get(&yrs::block::ClientID::new(*client)) >= *clock)
}

/// A flag shared with background edit loops.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The integer stored under `key` in root map `map`, if any.
pub fn map_get_i64(doc: &Doc, map: &str, key: &str) -> Option<i64> {
    let m: MapRef = doc.get_or_insert_map(map);
    let txn = doc.transact();
    match m.get(&txn, key)? {
        yrs::Out::Any(yrs::Any::Number(yrs::Number::Int(n))) => Some(n),
        yrs::Out::Any(yrs::Any::Number(yrs::Number::Float(f))) => Some(f as i64),
        _ => None,
    }
}

/// The string stored under `key` in root map `map`, if any.
pub fn map_get_string(doc: &Doc, map: &str, key: &str) -> Option<String> {
    let m: MapRef = doc.get_or_insert_map(map);
    let txn = doc.transact();
    match m.get(&txn, key)? {
        yrs::Out::Any(yrs::Any::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// Waits until `pred` holds, re-checking whenever any of `clients` sees an
/// event (a message or the end of its connection).
pub async fn wait_clients(
    clients: &[&YClient],
    what: &str,
    timeout: Duration,
    pred: impl Fn() -> bool,
) {
    let mut rxs: Vec<_> = clients
        .iter()
        .map(|c| c.shared.events.subscribe())
        .collect();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if pred() {
            return;
        }
        let changed =
            futures_util::future::select_all(rxs.iter_mut().map(|rx| Box::pin(rx.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let states: Vec<String> = clients
                .iter()
                .map(|c| format!("{}: {}", c.name, c.state_summary()))
                .collect();
            panic!("timed out after {timeout:?} waiting for {what}; {states:#?}");
        }
    }
}
