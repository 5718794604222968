//! The y-websocket client of the tests: a yrs document kept in sync with
//! one room (a template, with a token when authentication is on).
//!
//! Any protocol error of the server fails the test: a frame that does not
//! decode, a text frame, a message type a y-websocket client does not
//! expect, an update that does not apply. The reader records it and every
//! later look at the client (its state, any wait, dropping it) panics
//! with the error.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use yrs::encoding::read::Cursor;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{Doc, Map, ReadTxn, StateVector, Text, Transact, TransactionMut, Update, WriteTxn};

use super::ws_reader::{read_loop, Shared, WsSink};
use super::{doc_json, map_get_string, map_json, map_keys, text_string, url_encode, within};
use super::{encode_msg, ConnState, Ended, Server, Ws, TIMEOUT};

/// Connection options.
#[derive(Clone, Debug, Default)]
pub struct ConnectOpts {
    /// A document or access token (`?token=`).
    pub token: Option<String>,
    /// SO_RCVBUF for the client socket (small values make a stalled reader
    /// back-pressure the server quickly).
    pub recv_buffer: Option<u32>,
    /// Do not send the initial SyncStep1.
    pub no_initial_step1: bool,
    /// Ask for durable acknowledgements (`acks=1`): see `ConnState::saved`.
    pub acks: bool,
}

impl ConnectOpts {
    pub fn token(token: &str) -> ConnectOpts {
        ConnectOpts {
            token: Some(token.to_owned()),
            ..ConnectOpts::default()
        }
    }
}

/// An upgrade the server refused with a plain HTTP answer.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub json: Value,
}

impl Refusal {
    #[track_caller]
    pub fn expect(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "upgrade refusal: {:?}", self.json);
        assert_eq!(
            self.json["error"]["code"], code,
            "upgrade refusal: {:?}",
            self.json
        );
    }
}

pub fn ws_url(addr: SocketAddr, room: &str, token: Option<&str>) -> String {
    match token {
        Some(t) => format!("ws://{addr}/collab/{room}?token={}", url_encode(t)),
        None => format!("ws://{addr}/collab/{room}"),
    }
}

/// [`ws_url`] with the query the options ask for.
fn opts_url(addr: SocketAddr, room: &str, opts: &ConnectOpts) -> String {
    let url = ws_url(addr, room, opts.token.as_deref());
    match (opts.acks, opts.token.is_some()) {
        (false, _) => url,
        (true, true) => format!("{url}&acks=1"),
        (true, false) => format!("{url}?acks=1"),
    }
}

/// Opens a raw websocket to the room (no protocol handling at all).
pub async fn raw_connect(addr: SocketAddr, room: &str, recv_buffer: Option<u32>) -> Ws {
    try_raw_connect(addr, room, recv_buffer)
        .await
        .unwrap_or_else(|e| panic!("websocket handshake with {room}: {e}"))
}

/// Like [`raw_connect`], returning the handshake error (e.g. an HTTP
/// refusal) instead of panicking.
pub async fn try_raw_connect(
    addr: SocketAddr,
    room: &str,
    recv_buffer: Option<u32>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    open_socket(&ws_url(addr, room, None), addr, recv_buffer).await
}

async fn open_socket(
    url: &str,
    addr: SocketAddr,
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
    let handshake = tokio_tungstenite::client_async(url, tcp);
    let (ws, _resp) = within(TIMEOUT, "websocket handshake", handshake).await?;
    Ok(ws)
}

/// A y-websocket client: a yrs document kept in sync with one room.
pub struct WsClient {
    pub name: String,
    pub doc: Doc,
    pub room: String,
    pub addr: SocketAddr,
    opts: ConnectOpts,
    shared: Arc<Shared>,
    sink: Arc<tokio::sync::Mutex<WsSink>>,
    paused: watch::Sender<bool>,
    reader: JoinHandle<()>,
}

impl Drop for WsClient {
    fn drop(&mut self) {
        self.reader.abort();
        if !std::thread::panicking() {
            self.check();
        }
    }
}

impl Server {
    /// A client of `template` with `token`, synced.
    pub async fn ws(&self, template: &str, token: &str, name: &str) -> WsClient {
        WsClient::connect_token(self.addr, template, token, name).await
    }

    /// The HTTP refusal of an upgrade that must fail.
    pub async fn ws_refused(&self, template: &str, token: Option<&str>) -> Refusal {
        let opts = ConnectOpts {
            token: token.map(str::to_owned),
            ..ConnectOpts::default()
        };
        match WsClient::try_connect(self.addr, template, "refused", Doc::new(), opts).await {
            Ok(_) => panic!("the upgrade to {template} with {token:?} was accepted"),
            Err(r) => r,
        }
    }
}

impl WsClient {
    /// Connects (no token) with a fresh document and waits until the
    /// first SyncStep2 from the server has been applied.
    pub async fn connect(addr: SocketAddr, room: &str, name: &str) -> WsClient {
        Self::connect_with_doc(addr, room, name, Doc::new(), ConnectOpts::default())
            .await
            .synced()
            .await
    }

    /// Connects with `token` and waits for the first SyncStep2.
    pub async fn connect_token(addr: SocketAddr, room: &str, token: &str, name: &str) -> WsClient {
        Self::connect_with_doc(addr, room, name, Doc::new(), ConnectOpts::token(token))
            .await
            .synced()
            .await
    }

    /// Connects (no token) with `doc` and waits for the first SyncStep2.
    pub async fn connect_doc(addr: SocketAddr, room: &str, name: &str, doc: Doc) -> WsClient {
        Self::connect_with_doc(addr, room, name, doc, ConnectOpts::default())
            .await
            .synced()
            .await
    }

    /// Waits for the first SyncStep2 and hands the client back.
    pub async fn synced(self) -> WsClient {
        self.wait_synced().await;
        self
    }

    /// Connects with an existing document (e.g. a reconnect keeping local
    /// state) without waiting for the sync; panics on a refusal.
    pub async fn connect_with_doc(
        addr: SocketAddr,
        room: &str,
        name: &str,
        doc: Doc,
        opts: ConnectOpts,
    ) -> WsClient {
        Self::try_connect(addr, room, name, doc, opts)
            .await
            .unwrap_or_else(|r| panic!("{name}: upgrade to {room} refused: {r:?}"))
    }

    /// Connects with `token` (sending SyncStep1) or returns the HTTP
    /// refusal.
    pub async fn try_connect_token(
        addr: SocketAddr,
        room: &str,
        token: &str,
        name: &str,
    ) -> Result<WsClient, Refusal> {
        Self::try_connect(addr, room, name, Doc::new(), ConnectOpts::token(token)).await
    }

    /// Connects (sending SyncStep1 unless told not to) or returns the
    /// HTTP refusal.
    pub async fn try_connect(
        addr: SocketAddr,
        room: &str,
        name: &str,
        doc: Doc,
        opts: ConnectOpts,
    ) -> Result<WsClient, Refusal> {
        use tokio_tungstenite::tungstenite::Error;
        let url = opts_url(addr, room, &opts);
        let ws = match open_socket(&url, addr, opts.recv_buffer).await {
            Ok(ws) => ws,
            Err(Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let json = resp
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                return Err(Refusal { status, json });
            }
            Err(e) => panic!("{name}: websocket handshake with {room} failed: {e}"),
        };
        Ok(Self::over(ws, addr, room, name, doc, opts).await)
    }

    /// Like [`WsClient::try_connect`], for a client that expects the
    /// server to be unreachable at times (a reconnecting provider): any
    /// failure to connect (refused, reset, an HTTP answer, no answer
    /// within `timeout`) is an `Err` describing it, not a panic.
    pub async fn dial(
        addr: SocketAddr,
        room: &str,
        name: &str,
        doc: Doc,
        opts: ConnectOpts,
        timeout: Duration,
    ) -> Result<WsClient, String> {
        let url = opts_url(addr, room, &opts);
        let open = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            tcp.set_nodelay(true).map_err(|e| e.to_string())?;
            let (ws, _resp) = tokio_tungstenite::client_async(url.as_str(), tcp)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<Ws, String>(ws)
        };
        let ws = tokio::time::timeout(timeout, open)
            .await
            .map_err(|_| format!("no websocket handshake within {timeout:?}"))??;
        Ok(Self::over(ws, addr, room, name, doc, opts).await)
    }

    /// Starts the client on an open websocket (sending SyncStep1 unless
    /// told not to; a failed send shows as the connection's end).
    async fn over(
        ws: Ws,
        addr: SocketAddr,
        room: &str,
        name: &str,
        doc: Doc,
        opts: ConnectOpts,
    ) -> WsClient {
        let (sink, stream) = ws.split();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let (events, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            state: Mutex::new(ConnState::default()),
            events,
            acks: opts.acks,
        });
        let (paused, paused_rx) = watch::channel(false);
        let reader = tokio::spawn(read_loop(
            stream,
            doc.clone(),
            shared.clone(),
            sink.clone(),
            paused_rx,
        ));
        let client = WsClient {
            name: name.to_owned(),
            doc,
            room: room.to_owned(),
            addr,
            opts,
            shared,
            sink,
            paused,
            reader,
        };
        if !client.opts.no_initial_step1 {
            if let Err(e) = client.send_step1().await {
                client
                    .shared
                    .end(Ended::Dropped(format!("send SyncStep1: {e}")));
            }
        }
        client
    }

    /// Reconnects to `addr` keeping this client's document and token;
    /// waits for sync.
    pub async fn reconnect(self, addr: SocketAddr) -> WsClient {
        let doc = self.doc.clone();
        let (room, name) = (self.room.clone(), self.name.clone());
        let opts = ConnectOpts {
            no_initial_step1: false,
            ..self.opts.clone()
        };
        drop(self);
        Self::connect_with_doc(addr, &room, &name, doc, opts)
            .await
            .synced()
            .await
    }

    pub fn client_id(&self) -> u64 {
        self.doc.client_id().get()
    }

    /// Panics with the protocol errors the server made, if any.
    #[track_caller]
    pub fn check(&self) {
        let errors = self.shared.state.lock().unwrap().protocol_errors.clone();
        assert!(
            errors.is_empty(),
            "{}: the server broke the y-websocket protocol: {}",
            self.name,
            errors.join("; ")
        );
    }

    /// What the client has seen so far; panics on a protocol error.
    #[track_caller]
    pub fn state(&self) -> ConnState {
        self.check();
        self.shared.state.lock().unwrap().clone()
    }

    // ---- sending

    /// Sends a raw websocket message.
    pub async fn send_raw(&self, msg: WsMessage) -> Result<(), String> {
        let mut sink = self.sink.lock().await;
        sink.send(msg).await.map_err(|e| e.to_string())
    }

    pub async fn send_msg(&self, msg: &Message) -> Result<(), String> {
        self.send_raw(WsMessage::binary(encode_msg(msg))).await
    }

    async fn send_step1(&self) -> Result<(), String> {
        let sv = self.doc.transact().state_vector();
        self.send_msg(&Message::Sync(SyncMessage::SyncStep1(sv)))
            .await
    }

    /// Sends a sync update (message type 0, subtype 2).
    pub async fn try_send_update(&self, update: Vec<u8>) -> Result<(), String> {
        self.try_send_counted(update).await.map(|_| ())
    }

    /// Sends a sync update and returns its number among this connection's
    /// update messages (what a durable acknowledgement counts).
    pub async fn try_send_counted(&self, update: Vec<u8>) -> Result<u64, String> {
        let frame = encode_msg(&Message::Sync(SyncMessage::Update(update)));
        let mut sink = self.sink.lock().await;
        let mut number = 0;
        self.shared.update(|s| {
            s.updates_sent += 1;
            number = s.updates_sent;
        });
        sink.send(WsMessage::binary(frame))
            .await
            .map_err(|e| e.to_string())?;
        Ok(number)
    }

    /// Like [`WsClient::try_send_update`], panicking if the send fails.
    pub async fn send_update(&self, update: Vec<u8>) {
        self.try_send_update(update)
            .await
            .unwrap_or_else(|e| panic!("{}: send update: {e}", self.name));
    }

    /// Runs `f` in a local transaction without sending anything; returns
    /// the update it made. Root types must be reached through `txn`
    /// (WriteTxn): the Doc's own get_or_insert_* would wait for this very
    /// transaction.
    pub fn edit_local(&self, f: impl FnOnce(&mut TransactionMut)) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        f(&mut txn);
        txn.encode_update_v1()
    }

    /// Runs `f` in a local transaction and sends the resulting update.
    /// Returns the update that was sent.
    pub async fn try_edit(&self, f: impl FnOnce(&mut TransactionMut)) -> Result<Vec<u8>, String> {
        let update = self.edit_local(f);
        self.try_send_update(update.clone()).await?;
        Ok(update)
    }

    /// Like [`WsClient::try_edit`], panicking if the send fails.
    pub async fn edit(&self, f: impl FnOnce(&mut TransactionMut)) -> Vec<u8> {
        let update = self.edit_local(f);
        self.send_update(update.clone()).await;
        update
    }

    /// Sets `key` to the string `value` in the root map `map`.
    pub async fn set_key(&self, map: &str, key: &str, value: &str) -> Vec<u8> {
        self.edit(|txn| {
            txn.get_or_insert_map(map).insert(txn, key, value);
        })
        .await
    }

    /// Sets `map.key = value` and waits until `other` has it.
    pub async fn set_key_seen_by(&self, other: &WsClient, map: &str, key: &str, value: &str) {
        self.set_key(map, key, value).await;
        other.wait_key(map, key, value).await;
    }

    /// Like [`WsClient::set_key`], ignoring a failed send.
    pub async fn try_set_key(&self, map: &str, key: &str, value: &str) {
        let _ = self
            .try_edit(|txn| {
                txn.get_or_insert_map(map).insert(txn, key, value);
            })
            .await;
    }

    /// Inserts `chunk` at `index` (clamped) into the root text `text`.
    pub async fn insert_text(&self, text: &str, index: u32, chunk: &str) -> Vec<u8> {
        self.edit(|txn| {
            let t = txn.get_or_insert_text(text);
            let len = t.len(txn);
            t.insert(txn, index.min(len), chunk);
        })
        .await
    }

    /// Announces this client's awareness state (JSON, `"null"` = gone).
    pub async fn set_awareness(&self, clock: u32, json: &str) {
        let mut clients = HashMap::new();
        let entry = AwarenessUpdateEntry {
            clock,
            json: json.into(),
        };
        clients.insert(self.doc.client_id(), entry);
        self.send_msg(&Message::Awareness(AwarenessUpdate { clients }))
            .await
            .unwrap_or_else(|e| panic!("{}: send awareness: {e}", self.name));
    }

    /// Closes the websocket politely.
    pub async fn close(&self) {
        let _ = self.send_raw(WsMessage::Close(None)).await;
    }

    /// Stops reading from the socket (the server's writes back up).
    pub fn pause_reading(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume_reading(&self) {
        self.paused.send_replace(false);
    }

    // ---- waiting

    /// Waits until `pred` holds for the connection state.
    pub async fn wait_state(&self, what: &str, pred: impl Fn(&ConnState) -> bool) {
        self.wait_state_within(what, TIMEOUT, pred).await
    }

    /// [`WsClient::wait_state`] bounded by `timeout`.
    pub async fn wait_state_within(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&ConnState) -> bool,
    ) {
        let mut rx = self.shared.events.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.check();
            if pred(&self.shared.state.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                panic!(
                    "{}: timed out after {timeout:?} waiting for {what}; state: {}",
                    self.name,
                    self.state_summary()
                );
            }
        }
    }

    /// Waits until `pred` holds for the document. Fails early if the
    /// connection ends while waiting (the document can no longer change).
    pub async fn wait_until(&self, what: &str, timeout: Duration, pred: impl Fn(&Doc) -> bool) {
        self.wait_state_within(what, timeout, |s| s.ended.is_some() || pred(&self.doc))
            .await;
        // One more look: the last message may have completed it.
        assert!(
            pred(&self.doc),
            "{}: connection ended ({:?}) while waiting for {what}; doc: {}",
            self.name,
            self.state().ended,
            self.json()
        );
    }

    /// [`WsClient::wait_until`] with the default timeout.
    pub async fn wait_doc(&self, what: &str, pred: impl Fn(&Doc) -> bool) {
        self.wait_until(what, TIMEOUT, pred).await
    }

    /// Waits until `map.key` is the string `value`.
    pub async fn wait_key(&self, map: &str, key: &str, value: &str) {
        self.wait_doc(&format!("{map}.{key} = {value:?}"), |d| {
            map_get_string(d, map, key).as_deref() == Some(value)
        })
        .await;
    }

    /// Waits until the root map `map` has `key`.
    pub async fn wait_has_key(&self, map: &str, key: &str) {
        self.wait_doc(&format!("{map} to have {key:?}"), |d| {
            map_keys(d, map).contains(key)
        })
        .await;
    }

    /// Waits until the root map `map` has `len` keys.
    pub async fn wait_map_len(&self, map: &str, len: usize) {
        self.wait_doc(&format!("{map} to have {len} keys"), |d| {
            map_keys(d, map).len() == len
        })
        .await;
    }

    /// Waits for the first SyncStep2 from the server.
    pub async fn wait_synced(&self) {
        self.wait_step2_after(0, "the first SyncStep2").await;
    }

    /// Waits for a SyncStep2 beyond the first `before`; fails if the
    /// connection ends first.
    async fn wait_step2_after(&self, before: u64, what: &str) {
        self.wait_state(what, |s| s.step2_received > before || s.ended.is_some())
            .await;
        let st = self.state();
        assert!(
            st.step2_received > before,
            "{}: connection ended while waiting for {what}: {:?}",
            self.name,
            st.ended
        );
    }

    /// A round trip through this connection: sends SyncStep1 and waits for
    /// the SyncStep2 that answers it. Everything the server queued for
    /// this client before it read the SyncStep1 has then arrived, and
    /// every frame this client sent before has been handled by the room.
    pub async fn round_trip(&self) {
        let before = self.state().step2_received;
        self.send_step1()
            .await
            .unwrap_or_else(|e| panic!("{}: send SyncStep1: {e}", self.name));
        self.wait_step2_after(before, "the SyncStep2 answering our SyncStep1")
            .await;
    }

    /// Like [`WsClient::round_trip`], but returns `false` instead of
    /// failing when the connection ends first.
    pub async fn try_round_trip(&self) -> bool {
        let before = self.state().step2_received;
        if self.send_step1().await.is_err() {
            return false;
        }
        self.wait_state("a SyncStep2 or the end of the connection", |s| {
            s.step2_received > before || s.ended.is_some()
        })
        .await;
        self.state().step2_received > before
    }

    /// Waits until the connection ends and returns how.
    pub async fn wait_ended(&self) -> Ended {
        self.wait_state("the connection to end", |s| s.ended.is_some())
            .await;
        self.state().ended.unwrap()
    }

    /// Waits for a close frame and returns its code.
    pub async fn wait_close_code(&self) -> u16 {
        match self.wait_ended().await {
            Ended::Closed { code, .. } => code,
            other => panic!("{}: expected a close frame, got {other:?}", self.name),
        }
    }

    /// Waits for the end of the connection, which must be a close frame
    /// with one of `codes`; `what` says what caused it. Returns the code.
    pub async fn expect_close(&self, what: &str, codes: &[u16]) -> u16 {
        match self.wait_ended().await {
            Ended::Closed { code, reason } => {
                assert!(
                    codes.contains(&code),
                    "{}: {what}: closed with {code} ({reason}), expected one of {codes:?}",
                    self.name
                );
                code
            }
            Ended::Dropped(why) => panic!(
                "{}: {what}: connection dropped without a close frame: {why}",
                self.name
            ),
        }
    }

    fn state_summary(&self) -> String {
        let s = self.shared.state.lock().unwrap().clone();
        format!(
            "step1={} step2={} updates={} echoes={} awareness={} protocol_errors={:?} ended={:?}",
            s.step1_received,
            s.step2_received,
            s.updates_received,
            s.echoes,
            s.awareness_received,
            s.protocol_errors,
            s.ended
        )
    }

    // ---- what the client knows

    /// The awareness state this client has been told for `client`.
    pub fn awareness_of(&self, client: u64) -> Option<(u32, String)> {
        self.state().awareness.get(&client).cloned()
    }

    /// [`WsClient::awareness_of`] as JSON.
    pub fn awareness_json(&self, client: u64) -> Option<Value> {
        let (_, json) = self.awareness_of(client)?;
        serde_json::from_str(&json).ok()
    }

    pub fn map_keys(&self, map: &str) -> BTreeSet<String> {
        map_keys(&self.doc, map)
    }

    pub fn text(&self, text: &str) -> String {
        text_string(&self.doc, text)
    }

    pub fn map_json(&self, map: &str) -> String {
        map_json(&self.doc, map)
    }

    /// The string under `map.key` in this client's document.
    pub fn get_string(&self, map: &str, key: &str) -> Option<String> {
        map_get_string(&self.doc, map, key)
    }

    /// The document as `{"meta": {...}, "components": {...}}`.
    pub fn json(&self) -> Value {
        doc_json(&self.doc)
    }

    pub fn state_vector(&self) -> StateVector {
        self.doc.transact().state_vector()
    }
}

/// Waits until `pred` holds, re-checking whenever any of `clients` sees an
/// event (a message or the end of its connection).
pub async fn wait_clients(
    clients: &[&WsClient],
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
        clients.iter().for_each(|c| c.check());
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
