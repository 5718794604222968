//! `presence`: D documents × C clients, each moving its pointer R times a
//! second (an awareness update), spread evenly over the period. Measures,
//! at every other client of the room: latency from a move's send to its
//! arrival, deliveries per second, stale and out-of-order arrivals, moves
//! skipped (a server that coalesces skips intermediate states), and
//! whether every client ends with every other's latest pointer.
//!
//! [`run`] reads as the steps of a run; each simulated designer is in
//! `mover`. [`run_steps`] runs a list of loads (clients or rates) and
//! finds the highest with latency p99 within a limit.

mod mover;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

use crate::client::{bounded, open_synced, Synced, Target};
use crate::hist::Histogram;
use crate::server::{Server, Spec};
use crate::sustained::{judge, Verdict};
use crate::{measure, Common, PresenceArgs, Scenario, Setup, Usage, Window};
use mover::client_task;

#[derive(Clone, Debug)]
pub struct Params {
    pub docs: usize,
    pub clients: usize,
    /// Moves per second of each client.
    pub hz: f64,
    pub duration: Duration,
    pub warmup: Duration,
    pub drain_timeout: Duration,
    pub connect_concurrency: usize,
    /// Extra server arguments for this run (coform only).
    pub server_args: Vec<String>,
}

/// What every client task shares (one thread: cells, no locks).
struct Shared {
    t0: Instant,
    docs: usize,
    clients: usize,
    period_ns: u64,
    cap: usize,
    /// Send time of move `seq` (clock `seq + 1`) of sender `g`, at
    /// `g * cap + seq`: ns since `t0` plus one (0: not sent).
    send_ns: Vec<Cell<u64>>,
    /// Moves sent by each client.
    sent: Vec<Cell<u64>>,
    /// Highest clock receiver `r` has seen of client `j` of its room, at
    /// `r * clients + j`.
    seen: Vec<Cell<u64>>,
    hist: RefCell<Histogram>,
    warm_ns: u64,
    end_ns: u64,
    deliveries: Cell<u64>,
    deliveries_window: Cell<u64>,
    stale: Cell<u64>,
    out_of_order: Cell<u64>,
    duplicates: Cell<u64>,
    skipped: Cell<u64>,
    echoes: Cell<u64>,
    foreign: Cell<u64>,
    /// States of a clock the generator never sent: a server's removal of
    /// a client that closed (at the end of the run).
    removals: Cell<u64>,
    keepalives: Cell<u64>,
    unparsed: Cell<u64>,
    other: Cell<u64>,
    late_sends: Cell<u64>,
    sent_window: Cell<u64>,
    /// Clients that sent their last move (their timers may fire a little
    /// after the window ends).
    done_sending: Cell<usize>,
    /// Set when the run is over: every client closes.
    stop: Cell<bool>,
}

/// When the clients' first moves are due, after the clock starts (ns).
const START_NS: u64 = 300_000_000;

fn doc_name(room: usize) -> String {
    format!("presence-{room}")
}

impl Shared {
    fn new(p: &Params, n: usize) -> Shared {
        let period_ns = (1e9 / p.hz) as u64;
        let cap = ((p.duration + p.warmup).as_nanos() as u64 / period_ns.max(1) + 2) as usize;
        let warm_ns = START_NS + p.warmup.as_nanos() as u64;
        Shared {
            t0: Instant::now(),
            docs: p.docs,
            clients: p.clients,
            period_ns,
            cap,
            send_ns: (0..n * cap).map(|_| Cell::new(0)).collect(),
            sent: (0..n).map(|_| Cell::new(0)).collect(),
            seen: (0..n * p.clients).map(|_| Cell::new(0)).collect(),
            hist: RefCell::new(Histogram::default()),
            warm_ns,
            end_ns: warm_ns + p.duration.as_nanos() as u64,
            deliveries: Cell::new(0),
            deliveries_window: Cell::new(0),
            stale: Cell::new(0),
            out_of_order: Cell::new(0),
            duplicates: Cell::new(0),
            skipped: Cell::new(0),
            echoes: Cell::new(0),
            foreign: Cell::new(0),
            removals: Cell::new(0),
            keepalives: Cell::new(0),
            unparsed: Cell::new(0),
            other: Cell::new(0),
            late_sends: Cell::new(0),
            sent_window: Cell::new(0),
            done_sending: Cell::new(0),
            stop: Cell::new(false),
        }
    }

    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Send time (ns since `t0`) of clock `clock` of sender `g`, if sent.
    fn sent_at(&self, g: usize, clock: u64) -> Option<u64> {
        let seq = usize::try_from(clock.checked_sub(1)?).ok()?;
        if seq >= self.cap {
            return None;
        }
        self.send_ns[g * self.cap + seq].get().checked_sub(1)
    }

    /// Receiver `me` got state `clock` of sender `g` (index `j` in the
    /// room) at `now`.
    fn arrival(&self, me: usize, g: usize, j: usize, clock: u64, now: u64) {
        bump(&self.deliveries, 1);
        let in_window = now >= self.warm_ns && now < self.end_ns;
        if in_window {
            bump(&self.deliveries_window, 1);
        }
        if let Some(sent) = self.sent_at(g, clock) {
            if sent >= self.warm_ns && sent < self.end_ns {
                self.hist.borrow_mut().record(now.saturating_sub(sent));
            }
        }
        // Stale: the sender's next move had been sent two periods before
        // this arrival, so the receiver shows a pointer at least two moves
        // behind.
        if let Some(next) = self.sent_at(g, clock + 1) {
            if next + 2 * self.period_ns <= now {
                bump(&self.stale, 1);
            }
        }
        let seen = &self.seen[me * self.clients + j];
        let last = seen.get();
        if clock < last {
            bump(&self.out_of_order, 1);
        } else if clock == last {
            bump(&self.duplicates, 1);
        } else {
            bump(&self.skipped, clock - last - 1);
            seen.set(clock);
        }
    }

    /// Pairs (receiver, other client of its room) where the receiver does
    /// not have the other's latest state, among receivers still open.
    fn latest_missing(&self, open: impl Fn(usize) -> bool) -> u64 {
        self.missing_pairs(open, |_, _, _, _| {})
    }

    /// Like [`Shared::latest_missing`], calling `each(receiver, sender,
    /// clock seen, moves sent)` for every pair.
    fn missing_pairs(
        &self,
        open: impl Fn(usize) -> bool,
        mut each: impl FnMut(usize, usize, u64, u64),
    ) -> u64 {
        let mut missing = 0;
        for me in 0..self.sent.len() {
            if !open(me) {
                continue;
            }
            let room = me / self.clients;
            for j in (0..self.clients).filter(|&j| j != me % self.clients) {
                let g = room * self.clients + j;
                let seen = self.seen[me * self.clients + j].get();
                if seen < self.sent[g].get() {
                    missing += 1;
                    each(me, g, seen, self.sent[g].get());
                }
            }
        }
        missing
    }
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

struct Outcome {
    close_code: Option<u16>,
    eof: bool,
    io_error: bool,
}

impl Outcome {
    fn ended(&self) -> bool {
        self.close_code.is_some() || self.eof || self.io_error
    }
}

/// One run: start the server, connect every client, move pointers through
/// the warm-up and the measured window, wait until every client has every
/// other's latest pointer, stop, report.
pub async fn run(spec: &Spec, p: &Params, window: &Window) -> Result<Value> {
    if p.clients < 2 {
        bail!("presence needs at least 2 clients per document");
    }
    if !(p.hz.is_finite() && p.hz > 0.0 && p.hz <= 1000.0) {
        bail!("--hz must be between 0 and 1000 moves per second");
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
    sh.stop.set(true);
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await?);
    }
    let problems = server.log_problems();
    let stop = server.stop().await;
    Ok(report(
        p,
        &sh,
        Gathered {
            connect_s,
            usage,
            drain_s,
            metrics,
            rss,
            problems,
            stop,
            outcomes,
        },
    ))
}

/// Opens and syncs every client; returns them and the seconds it took.
async fn connect(target: &Target, p: &Params) -> Result<(Vec<Synced>, f64)> {
    let n = p.docs * p.clients;
    let t_connect = Instant::now();
    let opened = bounded(n, p.connect_concurrency, |i| {
        let target = target.clone();
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

fn spawn_clients(sh: &Rc<Shared>, conns: Vec<Synced>, p: &Params) -> Vec<JoinHandle<Outcome>> {
    let start = tokio::time::Instant::from_std(sh.t0 + Duration::from_nanos(START_NS));
    conns
        .into_iter()
        .enumerate()
        .map(|(i, synced)| {
            let (room, idx) = (i / p.clients, i % p.clients);
            tokio::task::spawn_local(client_task(sh.clone(), synced, room, idx, start))
        })
        .collect()
}

/// CPU use over the measurement window: from the end of the warm-up to
/// the last move.
async fn measure_window(sh: &Shared, server: &Server, window: &Window) -> Usage {
    tokio::time::sleep_until((sh.t0 + Duration::from_nanos(sh.warm_ns)).into()).await;
    let w0 = window.snapshot(server);
    tokio::time::sleep_until((sh.t0 + Duration::from_nanos(sh.end_ns)).into()).await;
    let w1 = window.snapshot(server);
    window.usage(&w0, &w1)
}

/// Waits until every client has sent its last move and every open client
/// has every other's latest pointer, while states keep coming; returns the
/// seconds it waited.
async fn drain(sh: &Shared, tasks: &[JoinHandle<Outcome>], timeout: Duration) -> f64 {
    let t_drain = Instant::now();
    let mut last = sh.deliveries.get();
    let mut last_change = Instant::now();
    loop {
        let all_sent = sh.done_sending.get() == tasks.len();
        if all_sent && sh.latest_missing(|i| !tasks[i].is_finished()) == 0 {
            break;
        }
        if t_drain.elapsed() > timeout {
            break;
        }
        let got = sh.deliveries.get();
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

/// What a run gathered besides the shared counters, for its report.
struct Gathered {
    connect_s: f64,
    usage: Usage,
    drain_s: f64,
    metrics: Option<Vec<(String, f64)>>,
    rss: (u64, u64),
    problems: Vec<String>,
    stop: Result<Duration>,
    outcomes: Vec<Outcome>,
}

/// The run's figures as JSON.
fn report(p: &Params, sh: &Shared, g: Gathered) -> Value {
    let Gathered {
        connect_s,
        usage,
        drain_s,
        metrics,
        rss: (rss_end, rss_peak),
        problems,
        stop,
        outcomes,
    } = g;
    let n = p.docs * p.clients;
    let mut closes: BTreeMap<String, u64> = BTreeMap::new();
    for o in &outcomes {
        if let Some(code) = o.close_code {
            *closes.entry(code.to_string()).or_default() += 1;
        } else if o.eof {
            *closes.entry("eof".into()).or_default() += 1;
        } else if o.io_error {
            *closes.entry("io-error".into()).or_default() += 1;
        }
    }
    let receivers_closed = outcomes.iter().filter(|o| o.ended()).count();
    let latest_missing = sh.latest_missing(|i| !outcomes[i].ended());
    let sent: u64 = sh.sent.iter().map(Cell::get).sum();
    let states_sent = sent * (p.clients as u64 - 1);
    let deliveries = sh.deliveries.get();
    let hist = sh.hist.borrow();
    let ms = |ns: u64| ns as f64 / 1e6;
    let secs = p.duration.as_secs_f64();
    let deliveries_per_s = sh.deliveries_window.get() as f64 / secs;
    let metric = |name: &str| {
        metrics
            .as_ref()
            .and_then(|m| m.iter().find(|(k, _)| k == name).map(|(_, v)| *v))
    };
    let server_cpu_us_per_delivery = usage
        .server_cpu_s
        .filter(|_| sh.deliveries_window.get() > 0)
        .map(|s| s * 1e6 / sh.deliveries_window.get() as f64);
    let mut notes = Vec::new();
    if !closes.is_empty() {
        notes.push(format!("connections closed during the run: {closes:?}"));
    }
    if sh.late_sends.get() > 0 {
        notes.push(format!(
            "{} moves were sent more than one period late",
            sh.late_sends.get()
        ));
    }
    if let Err(e) = &stop {
        notes.push(format!("{e:#}"));
    }
    let mut shown = 0;
    sh.missing_pairs(
        |i| !outcomes[i].ended(),
        |me, g, seen, sent| {
            if shown < 5 {
                shown += 1;
                notes.push(format!(
                    "client {me} ends with move {seen} of client {g}, which sent {sent}"
                ));
            }
        },
    );
    json!({
        "docs": p.docs,
        "clients": p.clients,
        "hz": p.hz,
        "duration_s": secs,
        "connections": n,
        "connect_s": connect_s,
        "moves_sent": sent,
        "moves_per_s": sh.sent_window.get() as f64 / secs,
        "states_sent_to_others": states_sent,
        "deliveries": deliveries,
        "deliveries_per_s": deliveries_per_s,
        "delivery_ratio": if states_sent == 0 { 0.0 } else { deliveries as f64 / states_sent as f64 },
        "latency_p50_ms": ms(hist.quantile(0.50)),
        "latency_p95_ms": ms(hist.quantile(0.95)),
        "latency_p99_ms": ms(hist.quantile(0.99)),
        "latency_max_ms": ms(hist.max()),
        "latency_mean_ms": hist.mean() / 1e6,
        "latency_samples": hist.count(),
        "stale": sh.stale.get(),
        "stale_ratio": if deliveries == 0 { 0.0 } else { sh.stale.get() as f64 / deliveries as f64 },
        "out_of_order": sh.out_of_order.get(),
        "duplicates": sh.duplicates.get(),
        "moves_skipped": sh.skipped.get(),
        "latest_missing": latest_missing,
        "all_latest": latest_missing == 0 && receivers_closed == 0,
        "receivers_closed": receivers_closed,
        "echoes": sh.echoes.get(),
        "foreign": sh.foreign.get(),
        "removals": sh.removals.get(),
        "keepalives": sh.keepalives.get(),
        "unparsed": sh.unparsed.get(),
        "other_messages": sh.other.get(),
        "server_cpu_s": usage.server_cpu_s,
        "server_cpu_util": usage.server_cpu_util,
        "server_cpu_us_per_delivery": server_cpu_us_per_delivery,
        "server_rss_peak_mb": rss_peak as f64 / 1048576.0,
        "server_rss_end_mb": rss_end as f64 / 1048576.0,
        "bench_cpu_util": usage.bench_cpu_util,
        "other_load_cores": usage.other_load,
        "bench_wait": usage.bench_wait,
        "server_wait": usage.server_wait,
        "drain_s": drain_s,
        "closed_by_server": closes,
        "late_sends": sh.late_sends.get(),
        "server_awareness_coalesced": metric("coform_awareness_coalesced_total"),
        "server_peers_closed_lag": metric("coform_peers_closed_lag_total"),
        "server_log_problems": problems.len(),
        "server_log_sample": problems.iter().take(3).collect::<Vec<_>>(),
        "server_stop_s": stop.as_ref().map(|d| d.as_secs_f64()).unwrap_or(-1.0),
        "notes": notes,
    })
}

/// The checks of one presence run (besides the generator's CPU).
pub fn failed_checks(v: &Value) -> Vec<String> {
    let mut failed = Vec::new();
    if v["all_latest"] != json!(true) {
        failed.push(format!(
            "clients lack the latest pointer of others: {} (receiver, sender) pairs, {} receivers closed",
            v["latest_missing"], v["receivers_closed"]
        ));
    }
    if v["out_of_order"].as_u64().unwrap_or(0) > 0 {
        failed.push(format!(
            "{} states arrived after a newer one of the same client",
            v["out_of_order"]
        ));
    }
    if v["unparsed"].as_u64().unwrap_or(0) > 0 {
        failed.push(format!(
            "{} awareness messages did not parse",
            v["unparsed"]
        ));
    }
    failed
}

/// One load of a stepped run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    pub clients: usize,
    pub hz: f64,
}

/// The loads to run: one list of clients or of rates (the other a single
/// value), ascending.
pub fn steps(a: &PresenceArgs) -> Result<Vec<Step>> {
    if a.clients.is_empty() || a.hz.is_empty() {
        bail!("--clients and --hz need at least one value");
    }
    if a.clients.len() > 1 && a.hz.len() > 1 {
        bail!("step either --clients or --hz, not both");
    }
    if a.clients.iter().any(|&c| c < 2) {
        bail!("every step needs at least 2 clients per document");
    }
    if a.hz
        .iter()
        .any(|&h| !(h.is_finite() && h > 0.0 && h <= 1000.0))
    {
        bail!("--hz must be between 0 and 1000 moves per second");
    }
    if a.clients.windows(2).any(|w| w[0] >= w[1]) || a.hz.windows(2).any(|w| w[0] >= w[1]) {
        bail!("steps must be ascending, e.g. --clients 5,10,15 or --hz 30,60,90");
    }
    if a.docs == 0 {
        bail!("--docs must be at least 1");
    }
    let mut out = Vec::new();
    for &clients in &a.clients {
        for &hz in &a.hz {
            out.push(Step { clients, hz });
        }
    }
    Ok(out)
}

/// One element of `steps` in the JSON line (medians over its runs).
pub fn step_json(step: Step, summary: &Value, verdict: &Verdict, limit_ms: f64) -> Value {
    let m = &summary["median"];
    json!({
        "clients": step.clients,
        "hz": step.hz,
        "deliveries_per_s": m["deliveries_per_s"],
        "latency_p50_ms": m["latency_p50_ms"],
        "latency_p99_ms": m["latency_p99_ms"],
        "stale": m["stale"],
        "moves_skipped": m["moves_skipped"],
        "server_cpu_util": m["server_cpu_util"],
        "server_cpu_us_per_delivery": m["server_cpu_us_per_delivery"],
        "valid": summary["valid"] == json!(true),
        "checks_passed": summary["passed"] == json!(true),
        "passed": verdict.passed(),
        "result": verdict.label(),
        "why": verdict.why(limit_ms),
        "problems": summary["problems"],
        "warnings": summary["warnings"],
    })
}

fn num(v: &Value, decimals: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.decimals$}"),
        None => "-".into(),
    }
}

/// The human table of the steps.
pub fn steps_table(steps: &[Value]) -> String {
    let mut t = format!(
        "  {:>11} {:>6} {:>13} {:>8} {:>8} {:>9} {:>9} {:>10} {:>9} {:>6}  {}\n",
        "clients/doc",
        "hz",
        "deliveries/s",
        "p50 ms",
        "p99 ms",
        "stale",
        "skipped",
        "server cpu",
        "µs/deliv",
        "valid",
        "result"
    );
    for s in steps {
        t.push_str(&format!(
            "  {:>11} {:>6} {:>13} {:>8} {:>8} {:>9} {:>9} {:>10} {:>9} {:>6}  {}\n",
            num(&s["clients"], 0),
            num(&s["hz"], 0),
            num(&s["deliveries_per_s"], 0),
            num(&s["latency_p50_ms"], 2),
            num(&s["latency_p99_ms"], 2),
            num(&s["stale"], 0),
            num(&s["moves_skipped"], 0),
            num(&s["server_cpu_util"], 2),
            num(&s["server_cpu_us_per_delivery"], 2),
            if s["valid"] == json!(true) {
                "yes"
            } else {
                "no"
            },
            s["result"].as_str().unwrap_or("?"),
        ));
    }
    t
}

/// The highest passing step, or null.
pub fn highest_passing(steps: &[Value]) -> Value {
    steps
        .iter()
        .rfind(|s| s["passed"] == json!(true))
        .map_or(Value::Null, |s| {
            json!({
                "clients": s["clients"],
                "hz": s["hz"],
                "deliveries_per_s": s["deliveries_per_s"],
                "latency_p99_ms": s["latency_p99_ms"],
            })
        })
}

/// Runs the steps in order, stopping at the first that does not pass;
/// returns the fields of the JSON line and whether at least one passed.
pub async fn run_steps(
    common: &Common,
    a: &PresenceArgs,
    s: &Setup,
) -> Result<(Map<String, Value>, bool)> {
    let loads = steps(a)?;
    let limit = a.p99_limit_ms;
    let mut out_steps = Vec::new();
    let mut stopped = String::from("every step passed: the limit is above the highest load tried");
    let mut generator_bound = false;
    for step in loads {
        let scenario = Scenario::Presence(a.step(step));
        let label = format!("presence {} clients/doc at {} Hz", step.clients, step.hz);
        let (summary, _, _) = measure(common, &scenario, s, &[], &label).await;
        let verdict = judge(&summary, limit);
        let sj = step_json(step, &summary, &verdict, limit);
        eprintln!(
            "coform-bench: {label}: {} deliveries/s, p99 {} ms: {}",
            num(&sj["deliveries_per_s"], 0),
            num(&sj["latency_p99_ms"], 2),
            verdict.label()
        );
        out_steps.push(sj);
        if !verdict.passed() {
            generator_bound = verdict == Verdict::GeneratorBound;
            stopped = format!(
                "at {} clients/doc and {} Hz: {}",
                step.clients,
                step.hz,
                verdict.why(limit).unwrap_or_default()
            );
            break;
        }
    }
    let best = highest_passing(&out_steps);
    eprintln!(
        "\npresence against {}: {} documents, p99 limit {} ms (medians of {})",
        common.server.name(),
        a.docs,
        limit,
        common.repeat.max(1)
    );
    eprint!("{}", steps_table(&out_steps));
    if best.is_null() {
        eprintln!("  highest step within the limit: none");
    } else {
        eprintln!(
            "  highest step within the limit: {} clients/doc at {} Hz, {} deliveries/s, p99 {} ms",
            best["clients"],
            best["hz"],
            num(&best["deliveries_per_s"], 0),
            num(&best["latency_p99_ms"], 2)
        );
    }
    eprintln!("  stopped: {stopped}");
    let ok = !best.is_null();
    let mut out = Map::new();
    out.insert("steps".into(), Value::Array(out_steps));
    out.insert("highest_passing".into(), best);
    out.insert("stopped_because".into(), json!(stopped));
    out.insert("generator_bound".into(), json!(generator_bound));
    Ok((out, ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(hz: f64) -> Params {
        Params {
            docs: 1,
            clients: 3,
            hz,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            drain_timeout: Duration::from_secs(1),
            connect_concurrency: 1,
            server_args: Vec::new(),
        }
    }

    /// Marks move `clock` of sender `g` sent at `at` ns.
    fn sent(sh: &Shared, g: usize, clock: u64, at: u64) {
        sh.send_ns[g * sh.cap + clock as usize - 1].set(at + 1);
        sh.sent[g].set(sh.sent[g].get().max(clock));
    }

    #[test]
    fn stale_skipped_and_out_of_order_arrivals() {
        // 10 Hz: a period of 100 ms.
        let sh = Shared::new(&params(10.0), 3);
        let ms = 1_000_000;
        let warm = sh.warm_ns;
        for clock in 1..=5 {
            sent(&sh, 1, clock, warm + clock * 100 * ms);
        }
        // Receiver 0 gets move 1 of client 1 before move 2 was sent:
        // fresh.
        sh.arrival(0, 1, 1, 1, warm + 150 * ms);
        assert_eq!((sh.stale.get(), sh.skipped.get()), (0, 0));
        // Move 2 arrives when move 3 was sent 150 ms earlier (< 2
        // periods): late, not stale.
        sh.arrival(0, 1, 1, 2, warm + 450 * ms);
        assert_eq!(sh.stale.get(), 0);
        // Move 3 arrives when move 4 was sent 200 ms earlier: stale.
        sh.arrival(0, 1, 1, 3, warm + 600 * ms);
        assert_eq!(sh.stale.get(), 1);
        // Then 5: move 4 is skipped (coalesced), not lost.
        sh.arrival(0, 1, 1, 5, warm + 620 * ms);
        assert_eq!(sh.skipped.get(), 1);
        // Then 4, late: out of order; and 5 again: a duplicate.
        sh.arrival(0, 1, 1, 4, warm + 630 * ms);
        sh.arrival(0, 1, 1, 5, warm + 640 * ms);
        assert_eq!((sh.out_of_order.get(), sh.duplicates.get()), (1, 1));
        assert_eq!(sh.deliveries.get(), 6);
        assert_eq!(sh.hist.borrow().count(), 6);
        // Receiver 0 has client 1's latest (5); client 0 and 2 sent
        // nothing; receiver 2 lacks client 1's latest.
        assert_eq!(sh.latest_missing(|_| true), 1);
        assert_eq!(sh.latest_missing(|r| r != 2), 0);
    }

    #[test]
    fn steps_are_one_ascending_list() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let mut all = vec!["coform-bench", "presence"];
            all.extend(args);
            match crate::Cli::try_parse_from(all).unwrap().scenario {
                Scenario::Presence(a) => a,
                _ => unreachable!(),
            }
        };
        let a = parse(&[]);
        assert_eq!(
            (a.docs, a.clients.clone(), a.hz.clone()),
            (20, vec![10], vec![30.0])
        );
        assert_eq!(
            steps(&a).unwrap(),
            vec![Step {
                clients: 10,
                hz: 30.0
            }]
        );
        let a = parse(&["--clients", "5,10,15"]);
        assert_eq!(steps(&a).unwrap().len(), 3);
        let a = parse(&["--hz", "30,60,90", "--clients", "4"]);
        assert_eq!(
            steps(&a).unwrap()[2],
            Step {
                clients: 4,
                hz: 90.0
            }
        );
        assert!(steps(&parse(&["--hz", "30,60", "--clients", "4,8"])).is_err());
        assert!(steps(&parse(&["--clients", "10,5"])).is_err());
        assert!(steps(&parse(&["--clients", "1"])).is_err());
        assert!(steps(&parse(&["--hz", "0"])).is_err());
    }

    #[test]
    fn failed_checks_name_the_cause() {
        let ok = json!({"all_latest": true, "out_of_order": 0, "unparsed": 0});
        assert!(failed_checks(&ok).is_empty());
        let bad = json!({"all_latest": false, "latest_missing": 3, "receivers_closed": 0,
                         "out_of_order": 2, "unparsed": 0});
        let f = failed_checks(&bad);
        assert_eq!(f.len(), 2);
        assert!(f[0].contains("latest pointer"));
        assert!(f[1].contains("after a newer one"));
    }
}
