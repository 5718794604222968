//! `fanout`: D documents × C clients, each client setting its own field of
//! the document every I ms. Measures deliveries to the other C−1 clients:
//! rate, latency (send → receipt, per edit, identified by its Yjs client
//! and clock), completeness, and whether every room converged.
//!
//! [`run`] reads as the steps of a run; each simulated editor (its task
//! and receiving side) is in `editor`.

mod editor;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{Any, ClientID, Doc, ReadTxn, StateVector, Transact, Update};

use crate::client::{bounded, open_synced, Synced, Target};
use crate::hist::Histogram;
use crate::proto;
use crate::server::{Server, Spec};
use crate::{Usage, Window};
use editor::client_task;

#[derive(Clone, Debug)]
pub struct Params {
    pub docs: usize,
    pub clients: usize,
    pub interval: Duration,
    pub duration: Duration,
    pub warmup: Duration,
    pub observers: usize,
    pub value_bytes: usize,
    pub drain_timeout: Duration,
    pub connect_concurrency: usize,
    /// Extra server arguments for this run (coform only).
    pub server_args: Vec<String>,
    /// More replicas of the same server (after the first): clients are
    /// spread over all of them by `spread`, and deliveries between
    /// replicas are measured apart from those within one.
    pub others: Vec<std::net::SocketAddr>,
    pub spread: Spread,
    /// What the clients' edits change.
    pub edits: proto::Edits,
}

/// How clients are spread over the replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Spread {
    /// Every document has clients on every replica: client `i` of a
    /// document is on replica `i mod N`.
    Span,
    /// Every document's clients are on one replica (as a load balancer
    /// with document affinity places them): document `d` on replica
    /// `d mod N`.
    Affinity,
}

impl Spread {
    pub fn name(self) -> &'static str {
        match self {
            Spread::Span => "span",
            Spread::Affinity => "affinity",
        }
    }

    /// The replica (0-based, of `replicas`) client `idx` of room `room`
    /// connects to.
    pub fn replica_of(self, room: usize, idx: usize, replicas: usize) -> usize {
        let n = replicas.max(1);
        match self {
            Spread::Span => idx % n,
            Spread::Affinity => room % n,
        }
    }
}

/// What every client task shares (one thread: cells, no locks).
struct Shared {
    t0: Instant,
    clients: usize,
    cap: usize,
    /// Send time of edit `seq` of sender `g`, at `g * cap + seq`: ns since
    /// `t0` plus one (0: not sent).
    send_ns: Vec<Cell<u64>>,
    sent: Vec<Cell<u64>>,
    hist: RefCell<Histogram>,
    /// Deliveries whose sender is on the other replica (with `second`).
    hist_cross: RefCell<Histogram>,
    /// Deliveries whose sender is on the same replica (with `second`).
    hist_same: RefCell<Histogram>,
    split: bool,
    /// Replicas, and how clients are spread over them.
    replicas: usize,
    spread: Spread,
    edits: proto::Edits,
    warm_ns: u64,
    end_ns: u64,
    delivered: Cell<u64>,
    delivered_window: Cell<u64>,
    echoes: Cell<u64>,
    duplicates: Cell<u64>,
    gaps: Cell<u64>,
    foreign: Cell<u64>,
    unparsed: Cell<u64>,
    acks: Cell<u64>,
    keepalives: Cell<u64>,
    awareness: Cell<u64>,
    other: Cell<u64>,
    late_sends: Cell<u64>,
    sent_window: Cell<u64>,
    /// Set when the run is over: every client closes (checked at least
    /// every 50 ms, without a wakeup source per client).
    stop: Cell<bool>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    fn expected(&self) -> u64 {
        self.sent.iter().map(Cell::get).sum::<u64>() * (self.clients as u64 - 1)
    }
}

struct Outcome {
    log: Option<Vec<Vec<u8>>>,
    /// Next clock expected from each client of the room: what it got.
    next: Vec<u64>,
    close_code: Option<u16>,
    eof: bool,
    io_error: bool,
}

/// A Y.Doc built from updates, and what is compared between replicas.
struct Replica {
    sv: StateVector,
    fields: Any,
    components: Any,
    failed_updates: usize,
}

fn replica(updates: &[Vec<u8>]) -> Replica {
    let doc = Doc::new();
    let map = doc.get_or_insert_map(proto::ROOT_MAP);
    let components = doc.get_or_insert_map(proto::COMPONENTS_MAP);
    let mut failed = 0;
    {
        let mut txn = doc.transact_mut();
        for u in updates {
            match Update::decode_v1(u) {
                Ok(u) => {
                    if txn.apply_update(u).is_err() {
                        failed += 1;
                    }
                }
                Err(_) => failed += 1,
            }
        }
    }
    let txn = doc.transact();
    Replica {
        sv: txn.state_vector(),
        fields: map.to_json(&txn),
        components: components.to_json(&txn),
        failed_updates: failed,
    }
}

/// When the clients' first edits are due, after the clock starts (ns):
/// time for every client task to be running.
const START_NS: u64 = 300_000_000;

fn doc_name(room: usize) -> String {
    format!("fanout-{room}")
}

/// One run: start the server, connect every client, let them edit through
/// the warm-up and the measured window, wait for the deliveries, read the
/// server's documents, stop, check convergence and losses, report.
pub async fn run(spec: &Spec, p: &Params, window: &Window) -> Result<Value> {
    if p.clients < 2 {
        bail!("fanout needs at least 2 clients per document");
    }
    let dir = tempfile::Builder::new().prefix("coform-bench-").tempdir()?;
    let server = spec.start(dir.path(), &p.server_args).await?;
    let target = Target {
        addr: server.addr,
        kind: spec.kind,
    };
    let (conns, connect_s) = match connect(&target, p).await {
        Ok(connected) => connected,
        Err(e) => {
            let _ = server.stop().await;
            return Err(e);
        }
    };
    let sh = Rc::new(Shared::new(p, conns.len()));
    let tasks = spawn_clients(&sh, conns, p);
    let usage = measure_window(&sh, &server, window).await;
    let drain_s = drain(&sh, &tasks, p.drain_timeout).await;
    let metrics = server.metrics().await;
    let rss = server.rss().unwrap_or((0, 0));
    let (server_docs, verify_errors) = read_server_docs(spec, &target, p).await;
    sh.stop.set(true);
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await?);
    }
    let problems = server.log_problems();
    let stop = server.stop().await;
    let state_checked = spec.kind.keeps_state();
    let rooms = check_rooms(&sh, p, &outcomes, &server_docs);
    let losses = count_losses(&sh, p, &outcomes, &server_docs, state_checked);
    Ok(report(
        p,
        &sh,
        Gathered {
            connect_s,
            usage,
            drain_s,
            metrics,
            rss,
            verify_errors,
            problems,
            stop,
            closes: close_counts(&outcomes),
            rooms,
            losses,
            state_checked,
        },
    ))
}

/// Every replica: the first, then `p.others`.
fn replica_targets(target: &Target, p: &Params) -> Vec<Target> {
    let mut targets = vec![target.clone()];
    targets.extend(p.others.iter().map(|&addr| Target {
        addr,
        kind: target.kind,
    }));
    targets
}

/// Opens and syncs every client (with more replicas, each on the replica
/// `spread` gives it); returns them and the seconds it took.
async fn connect(target: &Target, p: &Params) -> Result<(Vec<Synced>, f64)> {
    let n = p.docs * p.clients;
    let t_connect = Instant::now();
    let targets = replica_targets(target, p);
    let opened = bounded(n, p.connect_concurrency, |i| {
        let replica = p
            .spread
            .replica_of(i / p.clients, i % p.clients, targets.len());
        let target = targets[replica].clone();
        let doc = doc_name(i / p.clients);
        async move { open_synced(&target, &doc, false, Duration::from_secs(60)).await }
    })
    .await;
    let connect_s = t_connect.elapsed().as_secs_f64();
    let mut conns = Vec::with_capacity(n);
    for (i, r) in opened.into_iter().enumerate() {
        match r {
            Ok(s) => conns.push(s),
            Err(e) => bail!("client {i} could not open its document: {e:#}"),
        }
    }
    Ok((conns, connect_s))
}

impl Shared {
    /// The shared state of `n` clients; the run's clock starts now.
    fn new(p: &Params, n: usize) -> Shared {
        let cap = (p.duration + p.warmup).as_nanos() / p.interval.as_nanos().max(1) + 2;
        let cap = cap as usize;
        let warm_ns = START_NS + p.warmup.as_nanos() as u64;
        let end_ns = warm_ns + p.duration.as_nanos() as u64;
        Shared {
            t0: Instant::now(),
            clients: p.clients,
            cap,
            send_ns: (0..n * cap).map(|_| Cell::new(0)).collect(),
            sent: (0..n).map(|_| Cell::new(0)).collect(),
            hist: RefCell::new(Histogram::default()),
            hist_cross: RefCell::new(Histogram::default()),
            hist_same: RefCell::new(Histogram::default()),
            split: !p.others.is_empty(),
            replicas: 1 + p.others.len(),
            spread: p.spread,
            edits: p.edits,
            warm_ns,
            end_ns,
            delivered: Cell::new(0),
            delivered_window: Cell::new(0),
            echoes: Cell::new(0),
            duplicates: Cell::new(0),
            gaps: Cell::new(0),
            foreign: Cell::new(0),
            unparsed: Cell::new(0),
            acks: Cell::new(0),
            keepalives: Cell::new(0),
            awareness: Cell::new(0),
            other: Cell::new(0),
            late_sends: Cell::new(0),
            sent_window: Cell::new(0),
            stop: Cell::new(false),
        }
    }
}

/// Starts one task per client; the first edits are due [`START_NS`] after
/// the clock started.
fn spawn_clients(sh: &Rc<Shared>, conns: Vec<Synced>, p: &Params) -> Vec<JoinHandle<Outcome>> {
    let start = tokio::time::Instant::from_std(sh.t0 + Duration::from_nanos(START_NS));
    let mut tasks = Vec::with_capacity(conns.len());
    for (i, synced) in conns.into_iter().enumerate() {
        let (room, idx) = (i / p.clients, i % p.clients);
        tasks.push(tokio::task::spawn_local(client_task(
            sh.clone(),
            synced,
            room,
            idx,
            idx < p.observers,
            start,
            p.interval,
            p.value_bytes,
        )));
    }
    tasks
}

/// CPU use over the measurement window: from the end of the warm-up to
/// the last send.
async fn measure_window(sh: &Shared, server: &Server, window: &Window) -> Usage {
    tokio::time::sleep_until((sh.t0 + Duration::from_nanos(sh.warm_ns)).into()).await;
    let w0 = window.snapshot(server);
    tokio::time::sleep_until((sh.t0 + Duration::from_nanos(sh.end_ns)).into()).await;
    let w1 = window.snapshot(server);
    window.usage(&w0, &w1)
}

/// Waits for every delivery, while deliveries keep coming; returns the
/// seconds it waited.
async fn drain(sh: &Shared, tasks: &[JoinHandle<Outcome>], timeout: Duration) -> f64 {
    let t_drain = Instant::now();
    let mut last = sh.delivered.get();
    let mut last_change = Instant::now();
    loop {
        let got = sh.delivered.get();
        if got >= sh.expected() || t_drain.elapsed() > timeout {
            break;
        }
        if got != last {
            last = got;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(3) {
            break;
        }
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t_drain.elapsed().as_secs_f64()
}

/// What the server itself holds, read by a fresh client per room while
/// the clients are still connected (servers without a store would drop a
/// document its last client left), from the replica of the room's first
/// client; and the rooms that could not be read.
async fn read_server_docs(
    spec: &Spec,
    target: &Target,
    p: &Params,
) -> (Vec<Option<Replica>>, Vec<String>) {
    let docs = p.docs;
    let targets = replica_targets(target, p);
    let mut server_docs: Vec<Option<Replica>> = Vec::new();
    let mut verify_errors = Vec::new();
    if spec.kind.keeps_state() {
        for room in 0..docs {
            let target = &targets[p.spread.replica_of(room, 0, targets.len())];
            match open_synced(target, &doc_name(room), true, Duration::from_secs(30)).await {
                Ok(s) => {
                    server_docs.push(s.step2.as_ref().map(|u| replica(std::slice::from_ref(u))));
                    s.conn.close();
                }
                Err(e) => {
                    verify_errors.push(format!("room {room}: {e:#}"));
                    server_docs.push(None);
                }
            }
        }
    }
    (server_docs, verify_errors)
}

/// Whether each room converged: its observers agree with each other and
/// with the server, and hold every client's last edit.
struct Rooms {
    converged: usize,
    complete: usize,
    server_match: usize,
    failed_updates: usize,
    divergence: Vec<String>,
}

fn check_rooms(
    sh: &Shared,
    p: &Params,
    outcomes: &[Outcome],
    server_docs: &[Option<Replica>],
) -> Rooms {
    let mut rooms_converged = 0;
    let mut rooms_complete = 0;
    let mut rooms_server_match = 0;
    let mut failed_updates = 0;
    let mut divergence = Vec::new();
    for room in 0..p.docs {
        let replicas: Vec<Replica> = (0..p.clients)
            .filter_map(|idx| outcomes[room * p.clients + idx].log.as_deref())
            .map(replica)
            .collect();
        failed_updates += replicas.iter().map(|r| r.failed_updates).sum::<usize>();
        let reference = replicas
            .first()
            .or_else(|| server_docs.get(room).and_then(Option::as_ref));
        let Some(reference) = reference else {
            continue;
        };
        let agree = replicas.iter().all(|r| r.same_as(reference));
        if agree {
            rooms_converged += 1;
        } else {
            divergence.push(format!("room {room}: observers differ"));
        }
        let complete = (0..p.clients).all(|idx| {
            let g = room * p.clients + idx;
            let sent = sh.sent[g].get();
            let clock = reference.sv.get(&ClientID::new(proto::client_id(g)));
            let value_ok = sent == 0
                || reference.value(p.edits, idx)
                    == Some(proto::edit_value(sent - 1, p.value_bytes));
            clock as u64 == sent && value_ok
        });
        if complete {
            rooms_complete += 1;
        } else {
            divergence.push(format!("room {room}: missing edits"));
        }
        if let Some(Some(s)) = server_docs.get(room) {
            if s.same_as(reference) {
                rooms_server_match += 1;
            } else {
                divergence.push(format!("room {room}: server state differs"));
            }
        }
    }

    Rooms {
        converged: rooms_converged,
        complete: rooms_complete,
        server_match: rooms_server_match,
        failed_updates,
        divergence,
    }
}

/// Silent losses: edits the server accepted (its own document has them;
/// for the null relay: every edit sent) that a client which stayed
/// connected never got. And the reverse: edits a client got that the
/// server's document lacks.
struct Losses {
    silent: u64,
    not_in_server_state: u64,
    receivers_closed: u64,
}

fn count_losses(
    sh: &Shared,
    p: &Params,
    outcomes: &[Outcome],
    server_docs: &[Option<Replica>],
    state_checked: bool,
) -> Losses {
    let mut silent_losses = 0u64;
    let mut not_in_server_state = 0u64;
    let mut receivers_closed = 0u64;
    for (i, o) in outcomes.iter().enumerate() {
        let (room, idx) = (i / p.clients, i % p.clients);
        if o.close_code.is_some() || o.eof || o.io_error {
            receivers_closed += 1;
            continue;
        }
        for j in (0..p.clients).filter(|&j| j != idx) {
            let g = room * p.clients + j;
            let accepted = match server_docs.get(room) {
                Some(Some(doc)) => u64::from(doc.sv.get(&ClientID::new(proto::client_id(g)))),
                _ => sh.sent[g].get(),
            };
            silent_losses += accepted.saturating_sub(o.next[j]);
            if state_checked {
                not_in_server_state += o.next[j].saturating_sub(accepted);
            }
        }
    }

    Losses {
        silent: silent_losses,
        not_in_server_state,
        receivers_closed,
    }
}

/// How the connections that ended early ended: close code, eof or I/O error.
fn close_counts(outcomes: &[Outcome]) -> BTreeMap<String, u64> {
    let mut closes: BTreeMap<String, u64> = BTreeMap::new();
    for o in outcomes {
        if let Some(code) = o.close_code {
            *closes.entry(code.to_string()).or_default() += 1;
        } else if o.eof {
            *closes.entry("eof".into()).or_default() += 1;
        } else if o.io_error {
            *closes.entry("io-error".into()).or_default() += 1;
        }
    }

    closes
}

/// What a run gathered besides the shared counters, for its report.
struct Gathered {
    connect_s: f64,
    usage: Usage,
    drain_s: f64,
    metrics: Option<Vec<(String, f64)>>,
    /// Resident memory of the server at the end and at its peak (bytes).
    rss: (u64, u64),
    verify_errors: Vec<String>,
    problems: Vec<String>,
    stop: Result<Duration>,
    closes: BTreeMap<String, u64>,
    rooms: Rooms,
    losses: Losses,
    state_checked: bool,
}

/// The run's figures as JSON.
fn report(p: &Params, sh: &Shared, g: Gathered) -> Value {
    let Gathered {
        connect_s,
        usage,
        drain_s,
        metrics,
        rss: (rss_end, rss_peak),
        verify_errors,
        problems,
        stop,
        closes,
        rooms,
        losses,
        state_checked,
    } = g;
    let n = p.docs * p.clients;
    let Rooms {
        converged: rooms_converged,
        complete: rooms_complete,
        server_match: rooms_server_match,
        failed_updates,
        divergence,
    } = rooms;
    let Losses {
        silent: silent_losses,
        not_in_server_state,
        receivers_closed,
    } = losses;
    let expected = sh.expected();
    let delivered = sh.delivered.get();
    let ratio = if expected == 0 {
        0.0
    } else {
        delivered as f64 / expected as f64
    };
    let hist = sh.hist.borrow();
    let ms = |ns: u64| ns as f64 / 1e6;
    let secs = p.duration.as_secs_f64();
    let converged = rooms_converged == p.docs
        && rooms_complete == p.docs
        && (!state_checked || rooms_server_match == p.docs)
        && failed_updates == 0;
    let all_delivered = delivered == expected && sh.duplicates.get() == 0;
    let mut notes = Vec::new();
    if !closes.is_empty() {
        notes.push(format!("connections closed during the run: {closes:?}"));
    }
    if sh.late_sends.get() > 0 {
        notes.push(format!(
            "{} edits were sent more than one interval late",
            sh.late_sends.get()
        ));
    }
    notes.extend(verify_errors.iter().cloned());
    notes.extend(divergence.iter().take(5).cloned());
    if let Err(e) = &stop {
        notes.push(format!("{e:#}"));
    }
    let store_append_mean_ms = metrics.as_ref().and_then(|m| {
        let get = |name: &str| m.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        let sum = get("coform_store_append_seconds_sum")?;
        let count = get("coform_store_append_seconds_count")?;
        (count > 0.0).then(|| sum / count * 1e3)
    });
    let metrics_json = metrics.map(|m| {
        let keep = [
            "coform_updates_in_total",
            "coform_updates_out_total",
            "coform_peers_closed_lag_total",
            "coform_peers_closed_bad_input_total",
            "coform_store_failures_total",
            "coform_update_panics_total",
            "coform_store_append_seconds_sum",
            "coform_store_append_seconds_count",
        ];
        let map: serde_json::Map<String, Value> = m
            .into_iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k, json!(v)))
            .collect();
        Value::Object(map)
    });
    json!({
        "docs": p.docs,
        "clients": p.clients,
        "interval_ms": p.interval.as_secs_f64() * 1e3,
        "duration_s": secs,
        "connections": n,
        "connect_s": connect_s,
        "updates_sent": sh.sent.iter().map(Cell::get).sum::<u64>(),
        "updates_per_s": sh.sent_window.get() as f64 / secs,
        "expected_deliveries": expected,
        "delivered": delivered,
        "delivery_ratio": ratio,
        "deliveries_per_s": sh.delivered_window.get() as f64 / secs,
        "latency_same_replica_p50_ms": split_ms(&sh.hist_same, 0.50),
        "latency_same_replica_p99_ms": split_ms(&sh.hist_same, 0.99),
        "latency_cross_replica_p50_ms": split_ms(&sh.hist_cross, 0.50),
        "latency_cross_replica_p99_ms": split_ms(&sh.hist_cross, 0.99),
        "latency_p50_ms": ms(hist.quantile(0.50)),
        "latency_p95_ms": ms(hist.quantile(0.95)),
        "latency_p99_ms": ms(hist.quantile(0.99)),
        "latency_max_ms": ms(hist.max()),
        "latency_mean_ms": hist.mean() / 1e6,
        "latency_samples": hist.count(),
        "duplicates": sh.duplicates.get(),
        "silent_losses": silent_losses,
        "delivered_not_in_server_state": if state_checked { json!(not_in_server_state) } else { Value::Null },
        "receivers_closed": receivers_closed,
        "gaps": sh.gaps.get(),
        "echoes": sh.echoes.get(),
        "acks": sh.acks.get(),
        "keepalives": sh.keepalives.get(),
        "unparsed_updates": sh.unparsed.get(),
        "rooms_converged": rooms_converged,
        "rooms_complete": rooms_complete,
        "rooms_server_state_match": if state_checked { json!(rooms_server_match) } else { Value::Null },
        "converged": converged,
        "all_delivered": all_delivered,
        "server_cpu_s": usage.server_cpu_s,
        "server_cpu_util": usage.server_cpu_util,
        "server_rss_peak_mb": rss_peak as f64 / 1048576.0,
        "server_rss_end_mb": rss_end as f64 / 1048576.0,
        "bench_cpu_util": usage.bench_cpu_util,
        "other_load_cores": usage.other_load,
        "bench_wait": usage.bench_wait,
        "server_wait": usage.server_wait,
        "server_cpu_parts": usage
            .server_cpu_parts
            .iter()
            .map(|(name, cpu)| (name.clone(), json!(cpu)))
            .collect::<serde_json::Map<String, Value>>(),
        "drain_s": drain_s,
        "closed_by_server": closes,
        "late_sends": sh.late_sends.get(),
        "server_metrics": metrics_json,
        "store_append_mean_ms": store_append_mean_ms,
        "server_log_problems": problems.len(),
        "server_log_sample": problems.iter().take(3).collect::<Vec<_>>(),
        "server_stop_s": stop.as_ref().map(|d| d.as_secs_f64()).unwrap_or(-1.0),
        "notes": notes,
    })
}

fn split_ms(h: &RefCell<Histogram>, q: f64) -> Value {
    let h = h.borrow();
    if h.count() == 0 {
        Value::Null
    } else {
        json!(h.quantile(q) as f64 / 1e6)
    }
}

impl Replica {
    fn same_as(&self, other: &Replica) -> bool {
        self.sv == other.sv && self.fields == other.fields && self.components == other.components
    }

    /// The value client `idx` of the room edits: its key of the root map,
    /// or its component's label.
    fn value(&self, edits: proto::Edits, idx: usize) -> Option<String> {
        let key = format!("field-{idx}");
        let value = match edits {
            proto::Edits::Root => get(&self.fields, &key)?,
            proto::Edits::Component => get(get(&self.components, &key)?, "label")?,
        };
        match value {
            Any::String(s) => Some(s.to_string()),
            _ => None,
        }
    }
}

fn get<'a>(map: &'a Any, key: &str) -> Option<&'a Any> {
    match map {
        Any::Map(m) => m.get(key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_spread_over_the_replicas() {
        // Span: every document on every replica, by client index.
        let span: Vec<usize> = (0..6).map(|i| Spread::Span.replica_of(4, i, 3)).collect();
        assert_eq!(span, [0, 1, 2, 0, 1, 2]);
        assert_eq!(Spread::Span.replica_of(0, 5, 2), 1);
        // Affinity: a document's clients all on one replica.
        let rooms: Vec<usize> = (0..4)
            .map(|r| Spread::Affinity.replica_of(r, 7, 3))
            .collect();
        assert_eq!(rooms, [0, 1, 2, 0]);
        assert!((0..10).all(|i| Spread::Affinity.replica_of(5, i, 2) == 1));
        // One replica: everyone on it.
        assert_eq!(Spread::Span.replica_of(3, 9, 1), 0);
    }
}
