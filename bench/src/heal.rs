//! `heal`: what it costs a replica to catch up on a large document after
//! it missed bus messages, by the two ways it has:
//!
//! - **exchange**: replica 1's publish of an edit is lost (the scenario
//!   cuts the Redis connection replica 1 publishes on, found by its
//!   `CLIENT LIST` name, just before the edit). Replica 1 hints once Redis
//!   answers, replica 2 sends it its state vector and applies the
//!   difference it answers.
//! - **store**: an edit is stored by a third replica that is not on the
//!   bus, and a heal hint arrives in the name of a replica that does not
//!   exist (as for one that died or unloaded the document): replica 2
//!   asks it, gets no answer, and reloads the whole document from the
//!   store.
//!
//! Both heals bring the same one-key edit to replica 2's client. The
//! figures are replica 2's own: `coform_bus_heal_{exchange,store}_seconds`
//! (the heal from its first request, or from the store read's start, to
//! the difference sent) and `coform_bus_heal_bytes_total` (what it read),
//! plus the time from the edit to its arrival at replica 2's client.
//!
//! Everything is started here on loopback: SecantusDB (the MongoDB-wire
//! store the replicas share), Redis, and three coform replicas. The
//! document, `--size-mb` of map entries sent by one client in 1 MB
//! updates, is built once; each of `--rounds` rounds then heals once each
//! way.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, Map, ReadTxn, StateVector, Transact, Update, WriteTxn};

use crate::proto::{self, Reader};
use crate::replicas::{redis_cmd, Redis};
use crate::server::{Kind, Server, Spec};

/// The document's name (and its bus channel's suffix).
const DOC: &str = "heal-bench";
/// Entries of the bulk map per 1 MB update, and each value's length.
const ENTRIES_PER_MB: usize = 8_000;
const VALUE_LEN: usize = 112;
/// Bound of every wait in the scenario.
const WAIT: Duration = Duration::from_secs(120);

pub struct Params {
    pub size_mb: usize,
    pub rounds: usize,
}

/// A Yjs client over a WebSocket: keeps a full copy of the document.
struct Client {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    doc: Doc,
}

fn sync_message(kind: u64, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(payload.len() + 8);
    proto::write_var(&mut m, proto::MSG_SYNC);
    proto::write_var(&mut m, kind);
    proto::write_var_bytes(&mut m, payload);
    m
}

impl Client {
    /// Connects and waits for the server's whole state (its sync step 2).
    async fn open(addr: SocketAddr, client_id: u64) -> Result<Client> {
        let url = format!("ws://{addr}{}", Kind::Coform.doc_path(DOC));
        let config = WebSocketConfig::default()
            .max_message_size(Some(256 << 20))
            .max_frame_size(Some(256 << 20));
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
            .await
            .context("connect")?;
        let doc = Doc::with_client_id(client_id);
        let mut c = Client { ws, doc };
        let sv = StateVector::default().encode_v1();
        c.send(sync_message(proto::SYNC_STEP1, &sv)).await?;
        c.read_until(|_, step2| step2).await?;
        Ok(c)
    }

    async fn send(&mut self, msg: Vec<u8>) -> Result<()> {
        self.ws.send(Message::binary(msg)).await?;
        Ok(())
    }

    /// Sends a local change made by `edit` to the server.
    async fn edit(&mut self, edit: impl FnOnce(&mut yrs::TransactionMut)) -> Result<()> {
        let update = {
            let mut txn = self.doc.transact_mut();
            edit(&mut txn);
            txn.encode_update_v1()
        };
        self.send(sync_message(proto::SYNC_UPDATE, &update)).await
    }

    /// Asks for the server's state and waits for the answer: everything
    /// this client sent before has then been handled (and stored).
    async fn round_trip(&mut self) -> Result<()> {
        let sv = self.doc.transact().state_vector().encode_v1();
        self.send(sync_message(proto::SYNC_STEP1, &sv)).await?;
        self.read_until(|_, step2| step2).await
    }

    /// Reads messages, applying every update, until `done(doc, was a sync
    /// step 2)` holds after one.
    async fn read_until(&mut self, done: impl Fn(&Doc, bool) -> bool) -> Result<()> {
        let wait = async {
            while let Some(frame) = self.ws.next().await {
                let Message::Binary(frame) = frame? else {
                    continue;
                };
                let mut r = Reader::new(&frame);
                if r.var() != Some(proto::MSG_SYNC) {
                    continue;
                }
                match r.var() {
                    Some(proto::SYNC_STEP1) => {
                        // The server asks what we have that it lacks: nothing.
                        let empty = Update::EMPTY_V1.to_vec();
                        self.send(sync_message(proto::SYNC_STEP2, &empty)).await?;
                    }
                    Some(kind @ (proto::SYNC_STEP2 | proto::SYNC_UPDATE)) => {
                        let payload = r.var_bytes().ok_or_else(|| anyhow!("truncated update"))?;
                        let update = Update::decode_v1(payload)?;
                        self.doc.transact_mut().apply_update(update)?;
                        if done(&self.doc, kind == proto::SYNC_STEP2) {
                            return Ok(());
                        }
                    }
                    _ => {}
                }
            }
            bail!("the server closed the connection")
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .map_err(|_| anyhow!("no answer within {WAIT:?}"))?
    }

    async fn wait_key(&mut self, key: &str) -> Result<()> {
        if has_key(&self.doc, key) {
            return Ok(());
        }
        self.read_until(|doc, _| has_key(doc, key)).await
    }
}

fn has_key(doc: &Doc, key: &str) -> bool {
    let marks = doc.get_or_insert_map("marks");
    let txn = doc.transact();
    marks.contains_key(&txn, key)
}

/// Cuts the connection replica `pid` publishes on (named by coform).
async fn cut_publisher(redis: SocketAddr, pid: u32) -> Result<()> {
    let list = redis_cmd(redis, &[b"CLIENT", b"LIST"]).await?;
    let list = String::from_utf8_lossy(&list);
    let pid = format!("-{pid}-");
    let id = list
        .lines()
        .find(|l| l.contains(" name=coform:publish:") && l.contains(&pid))
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .ok_or_else(|| anyhow!("no publishing connection of replica 1 in CLIENT LIST"))?
        .to_owned();
    redis_cmd(redis, &[b"CLIENT", b"KILL", b"ID", id.as_bytes()]).await?;
    Ok(())
}

/// Publishes a heal hint ("I failed to publish") in the name of a replica
/// that does not exist.
async fn hint_from_nobody(redis: SocketAddr) -> Result<()> {
    use coform_collab::bus::{BusKind, BusMessage};
    let raw = BusMessage {
        kind: BusKind::Heal,
        replica: "bench-replica-that-is-gone".into(),
        seq: 1,
        payload: Default::default(),
    }
    .encode();
    let channel = format!("coform:doc:{DOC}");
    let n = redis_cmd(redis, &[b"PUBLISH", channel.as_bytes(), &raw]).await?;
    if n == b"0" {
        bail!("no replica listens on {channel}");
    }
    Ok(())
}

/// (count, sum in seconds) of a histogram, and a counter with `via`.
struct Figures {
    exchange: (f64, f64),
    store: (f64, f64),
    exchange_bytes: f64,
    store_bytes: f64,
}

async fn figures(server: &Server) -> Result<Figures> {
    let m = server
        .metrics()
        .await
        .ok_or_else(|| anyhow!("replica 2 has no /metrics"))?;
    let get = |name: &str| {
        m.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .sum::<f64>()
    };
    Ok(Figures {
        exchange: (
            get("coform_bus_heal_exchange_seconds_count"),
            get("coform_bus_heal_exchange_seconds_sum"),
        ),
        store: (
            get("coform_bus_heal_store_seconds_count"),
            get("coform_bus_heal_store_seconds_sum"),
        ),
        exchange_bytes: get(r#"coform_bus_heal_bytes_total{via="exchange"}"#),
        store_bytes: get(r#"coform_bus_heal_bytes_total{via="store"}"#),
    })
}

/// Polls replica 2's figures until `ready` holds (the heal is counted just
/// after its difference goes out).
async fn figures_when(server: &Server, ready: impl Fn(&Figures) -> bool) -> Result<Figures> {
    let deadline = Instant::now() + WAIT;
    loop {
        let f = figures(server).await?;
        if ready(&f) {
            return Ok(f);
        }
        if Instant::now() > deadline {
            bail!("replica 2 did not count the heal within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(spec: &Spec, p: &Params) -> Result<Value> {
    if spec.kind != Kind::Coform || spec.attach.is_some() || spec.cmd.is_some() {
        bail!("heal starts its coform replicas itself: use --server coform without --attach or --server-cmd");
    }
    if p.size_mb == 0 || p.rounds == 0 {
        bail!("--size-mb and --rounds must be at least 1");
    }
    let mongo = tokio::task::spawn_blocking(coform_storage::testing::MongoServer::start).await?;
    let store = mongo.database_url("coform_heal_bench");
    let redis = Redis::start().await?;
    let dir = tempfile::Builder::new()
        .prefix("coform-bench-heal-")
        .tempdir()?;
    // Replicas sharing a MongoDB store must share the secrets key too.
    let key = "bench:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";
    let shared = ["--store", &store, "--secrets-key", key];
    let offbus: Vec<String> = shared.map(String::from).to_vec();
    let mut bus = offbus.clone();
    bus.extend(["--redis".to_string(), redis.url.clone()]);
    let mut servers = Vec::new();
    for (i, args) in [&bus, &bus, &offbus].into_iter().enumerate() {
        let data = dir.path().join(format!("replica-{}", i + 1));
        std::fs::create_dir_all(&data)?;
        match spec.start(&data, args).await {
            Ok(s) => servers.push(s),
            Err(e) => {
                for s in servers.into_iter().rev() {
                    let _ = s.stop().await;
                }
                return Err(e.context(format!("replica {}", i + 1)));
            }
        }
    }
    let result = measure(&servers, &redis, p).await;
    for s in servers.into_iter().rev() {
        let _ = s.stop().await;
    }
    drop(redis);
    drop(mongo);
    result
}

async fn measure(servers: &[Server], redis: &Redis, p: &Params) -> Result<Value> {
    let (r1, r2, r3) = (&servers[0], &servers[1], &servers[2]);
    let r1_pid = r1.pid.ok_or_else(|| anyhow!("replica 1 has no pid"))?;
    // The document: --size-mb updates of 1 MB each, from one writer.
    let built = Instant::now();
    let mut writer = Client::open(r1.addr, 1).await?;
    let value = "v".repeat(VALUE_LEN);
    for chunk in 0..p.size_mb {
        writer
            .edit(|txn| {
                let rows = txn.get_or_insert_map("rows");
                for i in 0..ENTRIES_PER_MB {
                    rows.insert(txn, format!("{chunk:04}-{i:05}"), value.as_str());
                }
            })
            .await?;
        writer.round_trip().await?;
    }
    let size_bytes = writer
        .doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default())
        .len();
    let build_s = built.elapsed().as_secs_f64();
    // Replica 2's client (the one that must hear of every edit), and the
    // off-bus replica's, each loading the whole document.
    let loaded = Instant::now();
    let mut reader = Client::open(r2.addr, 2).await?;
    let load_s = loaded.elapsed().as_secs_f64();
    let mut offbus = Client::open(r3.addr, 3).await?;
    let redis_addr: SocketAddr = redis
        .url
        .trim_start_matches("redis://")
        .parse()
        .context("redis address")?;

    let mut runs = Vec::new();
    for round in 0..p.rounds {
        // Exchange: replica 1's publish of this edit is lost.
        let before = figures(r2).await?;
        cut_publisher(redis_addr, r1_pid).await?;
        let key = format!("exchange-{round}");
        let sent = Instant::now();
        writer
            .edit(|txn| {
                txn.get_or_insert_map("marks")
                    .insert(txn, key.as_str(), true);
            })
            .await?;
        reader.wait_key(&key).await?;
        let exchange_arrival = sent.elapsed();
        let after = figures_when(r2, |f| f.exchange.0 > before.exchange.0).await?;
        if after.store.0 != before.store.0 {
            bail!("round {round}: replica 2 healed from the store, not by exchange");
        }
        let exchange_s =
            (after.exchange.1 - before.exchange.1) / (after.exchange.0 - before.exchange.0);
        let exchange_bytes = after.exchange_bytes - before.exchange_bytes;

        // Store: an edit no replica on the bus has, and nobody to ask.
        let before = after;
        let key = format!("store-{round}");
        offbus
            .edit(|txn| {
                txn.get_or_insert_map("marks")
                    .insert(txn, key.as_str(), true);
            })
            .await?;
        offbus.round_trip().await?;
        let sent = Instant::now();
        hint_from_nobody(redis_addr).await?;
        reader.wait_key(&key).await?;
        let store_arrival = sent.elapsed();
        let after = figures_when(r2, |f| f.store.0 > before.store.0).await?;
        let store_s = (after.store.1 - before.store.1) / (after.store.0 - before.store.0);
        let store_bytes = after.store_bytes - before.store_bytes;

        runs.push(json!({
            "exchange_heal_ms": exchange_s * 1e3,
            "exchange_bytes": exchange_bytes,
            "exchange_edit_arrival_ms": exchange_arrival.as_secs_f64() * 1e3,
            "store_heal_ms": store_s * 1e3,
            "store_bytes": store_bytes,
            "store_edit_arrival_ms": store_arrival.as_secs_f64() * 1e3,
            "store_over_exchange": store_s / exchange_s,
        }));
    }
    let median = crate::summarize(&runs);
    Ok(json!({
        "document_bytes": size_bytes,
        "build_s": build_s,
        "first_load_on_replica_2_s": load_s,
        "rounds": p.rounds,
        "median": median,
        "runs": runs,
    }))
}
