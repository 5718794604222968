//! `null-relay [--bind ADDR]`: the physical limit of pure fan-out.
//!
//! Every binary frame a socket sends is forwarded, undecoded, to every other
//! socket connected on the same URL path. The one exception: a frame that
//! starts with a y-websocket sync step 1 (`00 00`) is answered with an empty
//! sync step 2 so clients consider themselves synced. No document, no store.
//! Prints `null-relay listening on http://ADDR` once it accepts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};

type Rooms = Arc<Mutex<HashMap<String, HashMap<u64, UnboundedSender<Message>>>>>;

const EMPTY_SYNC_STEP2: &[u8] = &[0, 1, 2, 0, 0];

// One thread: the relay is measured on one core.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let bind = match args.iter().position(|a| a == "--bind") {
        Some(i) => args.get(i + 1).cloned().unwrap_or_default(),
        None => "127.0.0.1:0".to_string(),
    };
    let listener = TcpListener::bind(&bind).await?;
    println!("null-relay listening on http://{}", listener.local_addr()?);
    let rooms = Rooms::default();
    for id in 0u64.. {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(connection(stream, rooms.clone(), id));
    }
    Ok(())
}

// The handshake callback's error type is tungstenite's HTTP response.
#[allow(clippy::result_large_err)]
async fn connection(stream: TcpStream, rooms: Rooms, id: u64) {
    let _ = stream.set_nodelay(true);
    let mut path = String::new();
    let callback = |req: &Request, resp: Response| {
        path = req.uri().path().to_string();
        Ok(resp)
    };
    // Small buffers, as a lean server would use for mostly idle sockets.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 << 10)
        .write_buffer_size(8 << 10);
    let accepted = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config));
    let Ok(ws) = accepted.await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = unbounded_channel::<Message>();
    rooms
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default()
        .insert(id, tx.clone());
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let mut ok = sink.feed(msg).await.is_ok();
            while let (true, Ok(msg)) = (ok, rx.try_recv()) {
                ok = sink.feed(msg).await.is_ok();
            }
            if !ok || sink.flush().await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = source.next().await {
        match msg {
            Message::Binary(data) if data.starts_with(&[0, 0]) => {
                let _ = tx.send(Message::Binary(Bytes::from_static(EMPTY_SYNC_STEP2)));
            }
            Message::Binary(data) => {
                let rooms = rooms.lock().unwrap();
                for (_, peer) in rooms[&path].iter().filter(|(peer, _)| **peer != id) {
                    let _ = peer.send(Message::Binary(data.clone()));
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    let mut map = rooms.lock().unwrap();
    if let Some(room) = map.get_mut(&path) {
        room.remove(&id);
        if room.is_empty() {
            map.remove(&path);
        }
    }
    drop((map, tx));
    writer.abort();
}
