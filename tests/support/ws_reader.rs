//! The reading side of the y-websocket client: what it has seen, and the
//! task that reads the server's frames, answers SyncStep1 and records
//! every protocol error (see [`super::ws`]).

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use yrs::encoding::read::Cursor;
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, Transact, Update};

/// Origin attached to transactions that apply updates received from the
/// server, so they can be told apart from local edits.
const REMOTE_ORIGIN: &str = "remote";

pub type Ws = WebSocketStream<TcpStream>;
pub(super) type WsSink = SplitSink<Ws, WsMessage>;

/// How the connection ended, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The server sent a close frame (1005 when it carried no code).
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
    /// What the server sent that breaks the protocol (see the module
    /// documentation); any entry fails the test.
    pub protocol_errors: Vec<String>,
    pub ended: Option<Ended>,
    /// Update messages sent (SyncStep2 answers and updates), numbered in
    /// the order the server counts them for durable acknowledgements.
    pub updates_sent: u64,
    /// The latest durable acknowledgement `[100, n]`: the first `n` update
    /// messages sent are stored (only asked for with `ConnectOpts::acks`).
    pub saved: u64,
    /// Repair notices `[102, json]`, parsed (only with `ConnectOpts::acks`).
    pub repairs: Vec<serde_json::Value>,
}

impl ConnState {
    pub fn close_code(&self) -> Option<u16> {
        match &self.ended {
            Some(Ended::Closed { code, .. }) => Some(*code),
            _ => None,
        }
    }
}

pub(super) struct Shared {
    pub(super) state: Mutex<ConnState>,
    pub(super) events: watch::Sender<u64>,
    /// The client asked for durable acknowledgements (`?acks=1`); without
    /// it, one is a protocol error like any unexpected message.
    pub(super) acks: bool,
}

impl Shared {
    pub(super) fn update(&self, f: impl FnOnce(&mut ConnState)) {
        f(&mut self.state.lock().unwrap());
        self.events.send_modify(|n| *n += 1);
    }

    pub(super) fn protocol_error(&self, error: String) {
        self.update(|s| s.protocol_errors.push(error));
    }

    pub(super) fn end(&self, ended: Ended) {
        self.update(|s| {
            s.ended.get_or_insert(ended);
        });
    }
}

/// Encodes one y-websocket message as a frame payload.
pub fn encode_msg(msg: &Message) -> Vec<u8> {
    msg.encode_v1()
}

pub(super) async fn read_loop(
    mut stream: SplitStream<Ws>,
    doc: Doc,
    shared: std::sync::Arc<Shared>,
    sink: std::sync::Arc<tokio::sync::Mutex<WsSink>>,
    mut paused: watch::Receiver<bool>,
) {
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
            None => return shared.end(Ended::Dropped("stream ended".into())),
            Some(Err(e)) => return shared.end(Ended::Dropped(e.to_string())),
            Some(Ok(frame)) => frame,
        };
        match frame {
            WsMessage::Binary(data) => {
                for msg in decode_frame(&data, &shared) {
                    handle_message(msg, &doc, &shared, &sink).await;
                }
            }
            WsMessage::Text(text) => {
                shared.protocol_error(format!("a text frame: {:?}", text.as_str()))
            }
            WsMessage::Close(frame) => {
                let (code, reason) = match frame {
                    Some(f) => (u16::from(f.code), f.reason.to_string()),
                    None => (1005, String::new()),
                };
                shared.end(Ended::Closed { code, reason });
                // Let tungstenite finish the closing handshake.
                while let Some(Ok(_)) = stream.next().await {}
                return;
            }
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => {}
        }
    }
}

/// Coform's durable acknowledgement `[100, n]` (sent on its own frame).
const MSG_SAVED: u8 = 100;
/// Coform's repair notice `[102, json]` (sent on its own frame).
const MSG_REPAIRED: u8 = 102;

/// The messages of one binary frame (normally one; several are accepted).
/// A frame that is empty or does not decode to the end is a protocol
/// error. An acknowledgement, when asked for, is recorded here.
fn decode_frame(data: &[u8], shared: &Shared) -> Vec<Message> {
    if shared.acks && data.first() == Some(&MSG_SAVED) {
        use yrs::encoding::read::Read;
        let mut cursor = Cursor::new(&data[1..]);
        match cursor.read_var::<u64>() {
            Ok(n) if cursor.next == cursor.buf.len() => shared.update(|s| {
                if n < s.saved || n > s.updates_sent {
                    s.protocol_errors.push(format!(
                        "an acknowledgement of {n} updates after {} of {} sent",
                        s.saved, s.updates_sent
                    ));
                }
                s.saved = s.saved.max(n);
            }),
            _ => shared.protocol_error(format!("a malformed acknowledgement {data:?}")),
        }
        return Vec::new();
    }
    if shared.acks && data.first() == Some(&MSG_REPAIRED) {
        use yrs::encoding::read::Read;
        let mut cursor = Cursor::new(&data[1..]);
        let json = cursor.read_string().map(str::to_owned).ok();
        let notice = json
            .filter(|_| cursor.next == cursor.buf.len())
            .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok());
        match notice {
            Some(notice) => shared.update(|s| s.repairs.push(notice)),
            None => shared.protocol_error(format!("a malformed repair notice {data:?}")),
        }
        return Vec::new();
    }
    let mut msgs = Vec::new();
    let mut decoder = DecoderV1::new(Cursor::new(data));
    for msg in MessageReader::new(&mut decoder) {
        match msg {
            Ok(m) => msgs.push(m),
            Err(e) => {
                shared.protocol_error(format!("an undecodable frame {data:?}: {e}"));
                return Vec::new();
            }
        }
    }
    if msgs.is_empty() {
        shared.protocol_error("an empty frame".into());
    }
    msgs
}

async fn handle_message(
    msg: Message,
    doc: &Doc,
    shared: &Shared,
    sink: &tokio::sync::Mutex<WsSink>,
) {
    match msg {
        Message::Sync(SyncMessage::SyncStep1(sv)) => {
            // Answer with what the server is missing, as y-websocket does.
            let diff = doc.transact().encode_state_as_update_v1(&sv);
            let reply = encode_msg(&Message::Sync(SyncMessage::SyncStep2(diff)));
            let mut sink = sink.lock().await;
            // Counted under the sink's lock: numbers follow the send order.
            shared.update(|s| s.updates_sent += 1);
            let _ = sink.send(WsMessage::binary(reply)).await;
            drop(sink);
            shared.update(|s| s.step1_received += 1);
        }
        Message::Sync(SyncMessage::SyncStep2(update)) => {
            let res = apply_remote(doc, &update);
            shared.update(|s| {
                s.step2_received += 1;
                s.first_step2.get_or_insert_with(|| update.clone());
                if let Err(e) = res {
                    s.protocol_errors.push(format!("a SyncStep2 that {e}"));
                }
            });
        }
        Message::Sync(SyncMessage::Update(update)) => {
            let own_client = doc.client_id();
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
                    s.protocol_errors.push(format!("an update that {e}"));
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
        other => shared.protocol_error(format!("an unexpected message {other:?}")),
    }
}

fn apply_remote(doc: &Doc, update: &[u8]) -> Result<(), String> {
    let update = Update::decode_v1(update).map_err(|e| format!("does not decode: {e}"))?;
    let mut txn = doc.transact_mut_with(REMOTE_ORIGIN);
    txn.apply_update(update)
        .map_err(|e| format!("does not apply: {e}"))
}
