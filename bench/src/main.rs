#![recursion_limit = "256"]
//! `coform-bench`: a load generator for Yjs WebSocket servers (Coform,
//! Hocuspocus, the y-websocket server, a null relay). See bench/README.md.

mod client;
mod coldload;
mod connections;
mod fanout;
mod heal;
mod hist;
mod presence;
mod proto;
mod replicas;
mod report;
mod server;
mod soak;
mod sustained;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};

use crate::server::{Kind, Server, Spec};

#[derive(Parser, Debug)]
#[command(
    name = "coform-bench",
    version,
    about = "Load generator for Yjs WebSocket servers"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// The server to spawn for each run (and the dialect to speak).
    #[arg(long, value_enum, default_value = "coform", global = true)]
    server: Kind,
    /// Spawn this command instead (run by `sh -c 'exec CMD'`); it must print
    /// a line containing `listening on http://127.0.0.1:PORT`.
    #[arg(long, global = true)]
    server_cmd: Option<String>,
    /// Attach to a running server on this loopback address instead of
    /// spawning one (give --server-pid to measure its CPU and memory).
    #[arg(long, global = true)]
    attach: Option<SocketAddr>,
    /// The process id of the attached server.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Extra argument for a spawned coform (repeatable), e.g.
    /// `--server-arg=--store --server-arg=memory`.
    #[arg(long = "server-arg", global = true, allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// The coform binary (default: next to this one).
    #[arg(long, global = true)]
    coform_bin: Option<PathBuf>,
    /// The null relay binary (default: next to this one).
    #[arg(long, global = true)]
    null_relay_bin: Option<PathBuf>,
    /// The directory of the Node servers (default: bench/node).
    #[arg(long, global = true)]
    node_dir: Option<PathBuf>,
    /// The Node.js executable.
    #[arg(long, global = true, default_value = "node")]
    node: String,
    /// Cores for the server (e.g. `0` or `0,2-3`).
    #[arg(long, global = true, default_value = "0")]
    server_cpus: String,
    /// Cores for this generator.
    #[arg(long, global = true, default_value = "1")]
    bench_cpus: String,
    /// Pin nothing.
    #[arg(long, global = true)]
    no_pin: bool,
    /// Run each measurement this many times and report medians.
    #[arg(long, global = true, default_value_t = 1)]
    repeat: usize,
    /// Refuse figures when the generator used more than this share of its
    /// core during the measurement.
    #[arg(long, global = true, default_value_t = 0.9)]
    max_bench_cpu: f64,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// D documents × C clients, one edit every I ms per client.
    Fanout(FanoutArgs),
    /// N idle connections over M documents.
    Connections(ConnectionsArgs),
    /// Load a document with a long history: one client, then many at once.
    Coldload(ColdloadArgs),
    /// Fanout with the durable store and with the memory store (coform).
    DurabilityCost(FanoutArgs),
    /// Fanout steps of more and more clients per document until latency
    /// p99 exceeds a limit or a check fails: the sustained-load knee.
    Sustained(SustainedArgs),
    /// Fanout with every document's clients split over two coform
    /// replicas joined by Redis: the added latency of the Redis hop.
    Replicas(ReplicasArgs),
    /// A large document on replicas sharing a SecantusDB store: the cost
    /// of healing after a lost bus message by asking the replica that sent
    /// it (state-vector exchange) against reloading from the store.
    Heal(HealArgs),
    /// D documents × C clients, each moving its pointer (an awareness
    /// update) R times a second: presence latency, staleness, cost. Lists
    /// of clients or rates run steps up to a latency p99 limit.
    Presence(PresenceArgs),
    /// A small fanout and a small presence run against coform; exits 0
    /// only if every update was delivered, every room converged and every
    /// client got every other's latest pointer (for CI).
    Smoke,
    /// A long run of churn (clients joining random documents, editing and
    /// leaving; rooms loading and unloading; REST requests) sampling the
    /// server's memory, descriptors, tasks, rooms and connections: all
    /// must be back at rest afterwards and memory flat under load.
    Soak(SoakArgs),
    /// Print side-by-side tables from a file of earlier results (JSON lines).
    Report {
        /// The file the runs' JSON lines were appended to.
        file: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
struct FanoutArgs {
    /// Documents.
    #[arg(long, default_value_t = 50)]
    docs: usize,
    /// Clients per document (every one edits).
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Seconds of measured editing (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[command(flatten)]
    knobs: FanoutKnobs,
}

/// The fanout settings shared by `fanout`, `durability-cost` and
/// `sustained`.
#[derive(Args, Debug, Clone)]
struct FanoutKnobs {
    /// Milliseconds between two edits of one client.
    #[arg(long, default_value_t = 100.0)]
    interval_ms: f64,
    /// Seconds of editing before the measurement starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Clients per document that also keep a Y.Doc to check convergence.
    #[arg(long, default_value_t = 2)]
    observers: usize,
    /// Bytes of each edited value.
    #[arg(long, default_value_t = 16)]
    value_bytes: usize,
    /// What each edit changes: `root`, the client's own key of a root map
    /// outside the form model, or `component`, the label of the client's
    /// own component of the form, which the server checks against the
    /// form model on every edit.
    #[arg(long, value_enum, default_value_t = proto::Edits::Root)]
    edits: proto::Edits,
    /// Seconds to wait for outstanding deliveries after the last edit.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout: f64,
    /// Connections opened at once while setting up.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
}

#[derive(Args, Debug, Clone)]
struct ReplicasArgs {
    #[command(flatten)]
    fanout: FanoutArgs,
    /// Coform replicas (1 to 4); 1 runs without Redis, the baseline.
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    /// `span`: every document has clients on every replica; `affinity`:
    /// each document's clients all on one replica.
    #[arg(long, value_enum, default_value_t = fanout::Spread::Span)]
    spread: fanout::Spread,
}

#[derive(Args, Debug, Clone)]
struct HealArgs {
    /// Size of the document, in 1 MB updates of map entries.
    #[arg(long, default_value_t = 20)]
    size_mb: usize,
    /// Rounds; each heals once by exchange and once from the store.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[derive(Args, Debug, Clone)]
struct SustainedArgs {
    /// Documents.
    #[arg(long, default_value_t = 10)]
    docs: usize,
    /// Clients per document of each step, ascending.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,20,30,40,50,60,70,80,100,120"
    )]
    clients: Vec<usize>,
    /// A step passes only if its latency p99 (median over --repeat runs)
    /// is at most this.
    #[arg(long, default_value_t = 50.0)]
    p99_limit_ms: f64,
    /// Seconds of measured editing per step (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    #[command(flatten)]
    knobs: FanoutKnobs,
}

impl SustainedArgs {
    /// The fanout of one step.
    fn step(&self, clients: usize) -> FanoutArgs {
        FanoutArgs {
            docs: self.docs,
            clients,
            duration: self.duration,
            knobs: self.knobs.clone(),
        }
    }
}

#[derive(Args, Debug, Clone)]
struct PresenceArgs {
    /// Documents.
    #[arg(long, default_value_t = 20)]
    docs: usize,
    /// Clients per document, every one moving its pointer. An ascending
    /// comma list (e.g. 5,10,15) runs one step per value.
    #[arg(long, value_delimiter = ',', default_value = "10")]
    clients: Vec<usize>,
    /// Pointer moves per second of each client. An ascending comma list
    /// (e.g. 30,60,90) runs one step per value.
    #[arg(long, value_delimiter = ',', default_value = "30")]
    hz: Vec<f64>,
    /// Seconds of measured moves (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of moves before the measurement starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// With steps: a step passes only if its latency p99 (median over
    /// --repeat runs) is at most this.
    #[arg(long, default_value_t = 50.0)]
    p99_limit_ms: f64,
    /// Seconds to wait, after the last move, for every client to get
    /// every other's latest pointer.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout: f64,
    /// Connections opened at once while setting up.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
}

impl PresenceArgs {
    /// The run of one step (one value of clients and of rate).
    fn step(&self, step: presence::Step) -> PresenceArgs {
        PresenceArgs {
            clients: vec![step.clients],
            hz: vec![step.hz],
            ..self.clone()
        }
    }

    fn params(&self, server_args: Vec<String>) -> presence::Params {
        presence::Params {
            docs: self.docs,
            clients: self.clients.first().copied().unwrap_or(0),
            hz: self.hz.first().copied().unwrap_or(0.0),
            duration: Duration::from_secs_f64(self.duration),
            warmup: Duration::from_secs_f64(self.warmup),
            drain_timeout: Duration::from_secs_f64(self.drain_timeout),
            connect_concurrency: self.connect_concurrency,
            server_args,
        }
    }

    fn stepped(&self) -> bool {
        self.clients.len() > 1 || self.hz.len() > 1
    }
}

#[derive(Args, Debug, Clone)]
struct SoakArgs {
    /// Seconds of churn.
    #[arg(long, default_value_t = 1800.0)]
    duration: f64,
    /// Documents the clients pick from at random.
    #[arg(long, default_value_t = 200)]
    docs: usize,
    /// Clients at a time, each joining, editing and leaving in a loop.
    #[arg(long, default_value_t = 40)]
    workers: usize,
    /// Edits per visit.
    #[arg(long, default_value_t = 5)]
    edits: usize,
    /// Seconds between two samples of the server's figures.
    #[arg(long, default_value_t = 10.0)]
    sample: f64,
    /// REST requests per second.
    #[arg(long, default_value_t = 20.0)]
    rest_per_s: f64,
    /// Write every sample to this file as a JSON line.
    #[arg(long)]
    samples_out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct ConnectionsArgs {
    #[arg(long, default_value_t = 5000)]
    connections: usize,
    #[arg(long, default_value_t = 500)]
    docs: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to hold them idle (idle CPU is measured then).
    #[arg(long, default_value_t = 5.0)]
    hold: f64,
}

#[derive(Args, Debug, Clone)]
struct ColdloadArgs {
    /// Edits in the document's history (one update message each).
    #[arg(long, default_value_t = 20_000)]
    edits: usize,
    /// Clients joining at once.
    #[arg(long, default_value_t = 50)]
    joiners: usize,
}

impl FanoutArgs {
    fn params(&self, server_args: Vec<String>) -> fanout::Params {
        fanout::Params {
            docs: self.docs,
            clients: self.clients,
            interval: Duration::from_secs_f64(self.knobs.interval_ms / 1e3),
            duration: Duration::from_secs_f64(self.duration),
            warmup: Duration::from_secs_f64(self.knobs.warmup),
            observers: self.knobs.observers,
            value_bytes: self.knobs.value_bytes,
            drain_timeout: Duration::from_secs_f64(self.knobs.drain_timeout),
            connect_concurrency: self.knobs.connect_concurrency,
            server_args,
            others: Vec::new(),
            spread: fanout::Spread::Span,
            edits: self.knobs.edits,
        }
    }
}

/// CPU accounting over a measurement window.
pub struct Window {
    cores: Vec<usize>,
}

pub struct Snap {
    t: Instant,
    bench: f64,
    server: Option<f64>,
    cores: f64,
    bench_wait: f64,
    server_wait: Option<f64>,
    parts: Vec<(String, f64)>,
}

pub struct Usage {
    pub server_cpu_s: Option<f64>,
    pub server_cpu_util: Option<f64>,
    pub bench_cpu_util: f64,
    /// CPU used on the benchmark's cores by anything else (cores).
    pub other_load: f64,
    /// Share of the window the generator spent waiting for its core.
    pub bench_wait: f64,
    /// Share of the window the server's threads spent waiting for a core.
    pub server_wait: Option<f64>,
    /// CPU seconds per process of the system under test, when it is more
    /// than one (see `Spec::also`).
    pub server_cpu_parts: Vec<(String, f64)>,
}

impl Window {
    pub fn snapshot(&self, server: &Server) -> Snap {
        let parts = server.cpu_parts();
        Snap {
            t: Instant::now(),
            bench: server::self_cpu_seconds(),
            server: parts.as_ref().map(|p| p.iter().map(|(_, s)| s).sum()),
            parts: parts.unwrap_or_default(),
            cores: server::core_busy_seconds(&self.cores).iter().sum(),
            bench_wait: server::runqueue_wait_seconds(std::process::id()).unwrap_or(0.0),
            server_wait: server.runqueue_wait(),
        }
    }

    pub fn usage(&self, a: &Snap, b: &Snap) -> Usage {
        let dt = b.t.duration_since(a.t).as_secs_f64().max(1e-9);
        let bench = b.bench - a.bench;
        let server = match (a.server, b.server) {
            (Some(x), Some(y)) => Some(y - x),
            _ => None,
        };
        let other = (b.cores - a.cores - bench - server.unwrap_or(0.0)) / dt;
        Usage {
            server_cpu_s: server,
            server_cpu_util: server.map(|s| s / dt),
            bench_cpu_util: bench / dt,
            other_load: other.max(0.0),
            bench_wait: (b.bench_wait - a.bench_wait) / dt,
            server_wait: match (a.server_wait, b.server_wait) {
                (Some(x), Some(y)) => Some((y - x) / dt),
                _ => None,
            },
            server_cpu_parts: if a.parts.len() > 1 && a.parts.len() == b.parts.len() {
                a.parts
                    .iter()
                    .zip(&b.parts)
                    .map(|((name, x), (_, y))| (name.clone(), y - x))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

fn parse_cpus(s: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.trim().parse::<usize>()?..=b.trim().parse::<usize>()?),
            None => out.push(part.trim().parse()?),
        }
    }
    Ok(out)
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn default_node_dir() -> PathBuf {
    // target/<profile>/coform-bench → bench/node
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.parent()?.join("bench").join("node")))
    {
        if dir.join("package.json").exists() {
            return dir;
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

struct Setup {
    spec: Spec,
    window: Window,
    pinned: bool,
}

fn setup(c: &Common) -> Result<Setup> {
    let server_cpus = parse_cpus(&c.server_cpus)?;
    let bench_cpus = parse_cpus(&c.bench_cpus)?;
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut pinned = !c.no_pin && ncpu >= 2;
    if pinned {
        if let Err(e) = server::set_affinity(0, &bench_cpus) {
            eprintln!("coform-bench: warning: cannot pin the generator ({e}); nothing is pinned");
            pinned = false;
        }
    } else if !c.no_pin {
        eprintln!("coform-bench: warning: one core only; server and generator share it");
    }
    if let Some(addr) = c.attach {
        if !addr.ip().is_loopback() {
            bail!("--attach takes a loopback address only");
        }
    }
    let mut cores = server_cpus.clone();
    cores.extend(&bench_cpus);
    cores.sort_unstable();
    cores.dedup();
    if !pinned {
        cores = (0..ncpu).collect();
    }
    Ok(Setup {
        spec: Spec {
            kind: c.server,
            cmd: c.server_cmd.clone(),
            attach: c.attach.map(|a| (a, c.server_pid)),
            coform_bin: c.coform_bin.clone().unwrap_or_else(|| sibling("coform")),
            null_bin: c
                .null_relay_bin
                .clone()
                .unwrap_or_else(|| sibling("null-relay")),
            node: c.node.clone(),
            node_dir: c.node_dir.clone().unwrap_or_else(default_node_dir),
            extra_args: c.server_args.clone(),
            cpus: pinned.then_some(server_cpus),
            also: Vec::new(),
        },
        window: Window { cores },
        pinned,
    })
}

/// Why a run's figures cannot be trusted, which checks failed, and what
/// makes its figures noisy.
fn run_problems(
    scenario: &str,
    v: &Value,
    max_cpu: f64,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut invalid = Vec::new();
    let mut failed = Vec::new();
    let mut noisy = Vec::new();
    if let Some(other) = v["other_load_cores"].as_f64() {
        if other > 0.25 {
            noisy.push(format!(
                "other processes used {other:.2} cores on the benchmark's cores: figures are noisy"
            ));
        }
    }
    for (key, who) in [
        ("bench_wait", "the generator"),
        ("server_wait", "the server"),
    ] {
        if let Some(w) = v[key].as_f64() {
            if w > 0.05 {
                noisy.push(format!(
                    "{who} waited for its core {:.0}% of the time (other processes ran there): latencies include that wait",
                    w * 100.0
                ));
            }
        }
    }
    for key in ["bench_cpu_util", "connect_bench_cpu_util"] {
        let Some(u) = v[key].as_f64() else { continue };
        if u > max_cpu {
            invalid.push(format!(
                "the generator's core was saturated ({:.0}% of one core > {:.0}%): its figures would measure the generator, not the server",
                u * 100.0,
                max_cpu * 100.0
            ));
        }
    }
    match scenario {
        "fanout" => {
            if v["all_delivered"] != json!(true) {
                failed.push(format!(
                    "delivery ratio {} ({} of {} deliveries, {} duplicates)",
                    v["delivery_ratio"], v["delivered"], v["expected_deliveries"], v["duplicates"]
                ));
            }
            if v["silent_losses"].as_u64().unwrap_or(0) > 0 {
                failed.push(format!(
                    "{} edits the server accepted never reached a client that stayed connected",
                    v["silent_losses"]
                ));
            }
            if v["delivered_not_in_server_state"].as_u64().unwrap_or(0) > 0 {
                failed.push(format!(
                    "{} edits were delivered that the server's document lacks",
                    v["delivered_not_in_server_state"]
                ));
            }
            if v["converged"] != json!(true) {
                failed.push(format!(
                    "not converged: {} of {} rooms agree, {} complete, server state matches in {}",
                    v["rooms_converged"],
                    v["docs"],
                    v["rooms_complete"],
                    v["rooms_server_state_match"]
                ));
            }
        }
        "presence" => failed.extend(presence::failed_checks(v)),
        "connections" if v["all_opened"] != json!(true) => {
            failed.push(format!(
                "not all connections opened and stayed: {}",
                v["notes"]
            ));
        }
        "coldload" if v["all_correct"] == json!(false) => {
            failed.push(format!("wrong or failed loads: {}", v["notes"]));
        }
        _ => {}
    }
    (invalid, failed, noisy)
}

/// Median of each numeric field over runs; booleans are and-ed; other
/// values come from the first run.
fn summarize(runs: &[Value]) -> Value {
    let Some(first) = runs.first().and_then(Value::as_object) else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (k, v) in first {
        let vals: Vec<&Value> = runs.iter().map(|r| &r[k]).collect();
        let merged = if v.is_number() {
            let mut xs: Vec<f64> = vals.iter().filter_map(|x| x.as_f64()).collect();
            xs.sort_by(f64::total_cmp);
            if xs.is_empty() {
                Value::Null
            } else {
                let m = if xs.len() % 2 == 1 {
                    xs[xs.len() / 2]
                } else {
                    (xs[xs.len() / 2 - 1] + xs[xs.len() / 2]) / 2.0
                };
                if vals.iter().all(|x| x.is_u64() || x.is_i64()) && m.fract() == 0.0 {
                    json!(m as i64)
                } else {
                    json!(m)
                }
            }
        } else if v.is_boolean() {
            json!(vals.iter().all(|x| x.as_bool() == Some(true)))
        } else {
            v.clone()
        };
        out.insert(k.clone(), merged);
    }
    Value::Object(out)
}

/// The delivery figures every fan-out scenario reports first.
const DELIVERY_FIELDS: &[&str] = &[
    "connections",
    "updates_per_s",
    "deliveries_per_s",
    "delivery_ratio",
    "silent_losses",
    "receivers_closed",
];

/// The fields shown in the human table, per scenario.
pub fn table_fields(scenario: &str) -> Vec<&'static str> {
    let own: &[&str] = match scenario {
        "fanout" | "durability-cost" | "smoke" => &[
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
            "latency_max_ms",
            "echoes",
            "rooms_converged",
            "server_cpu_s",
            "server_cpu_util",
            "server_rss_peak_mb",
            "store_append_mean_ms",
            "bench_cpu_util",
            "other_load_cores",
            "bench_wait",
            "server_wait",
        ],
        "replicas" => &[
            "latency_same_replica_p50_ms",
            "latency_same_replica_p99_ms",
            "latency_cross_replica_p50_ms",
            "latency_cross_replica_p99_ms",
            "redis_hop_p50_ms",
            "redis_hop_p99_ms",
            "rooms_converged",
            "server_cpu_util",
            "replica_log_problems",
            "bench_cpu_util",
            "other_load_cores",
        ],
        "presence" => &[
            "connections",
            "moves_per_s",
            "deliveries_per_s",
            "delivery_ratio",
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
            "latency_max_ms",
            "stale",
            "out_of_order",
            "moves_skipped",
            "latest_missing",
            "receivers_closed",
            "echoes",
            "server_cpu_s",
            "server_cpu_util",
            "server_cpu_us_per_delivery",
            "server_rss_peak_mb",
            "server_awareness_coalesced",
            "bench_cpu_util",
            "other_load_cores",
            "bench_wait",
            "server_wait",
        ],
        "connections" => &[
            "opened",
            "connects_per_s",
            "connect_p50_ms",
            "connect_p99_ms",
            "connect_server_cpu_util",
            "connect_bench_cpu_util",
            "server_rss_before_mb",
            "server_rss_connected_mb",
            "rss_per_conn_kb",
            "idle_server_cpu_util",
            "bench_cpu_util",
        ],
        "coldload" => &[
            "doc_bytes",
            "build_updates_per_s",
            "server_restart_s",
            "one_received_ms",
            "one_apply_ms",
            "one_synced_ms",
            "join_p50_received_ms",
            "join_all_received_ms",
            "join_all_synced_ms",
            "server_rss_loaded_mb",
        ],
        _ => &[],
    };
    let fanout = matches!(
        scenario,
        "fanout" | "durability-cost" | "smoke" | "replicas"
    );
    let mut fields = if fanout {
        DELIVERY_FIELDS.to_vec()
    } else {
        Vec::new()
    };
    fields.extend_from_slice(own);
    fields
}

pub fn fmt_num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) if x.abs() >= 100.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.3}"),
        None if v.is_null() => "-".to_string(),
        None => v.to_string(),
    }
}

fn print_table(title: &str, columns: &[(&str, &Value)], fields: &[&str]) {
    eprintln!("\n{title}");
    let mut header = format!("  {:<26}", "metric");
    for (name, _) in columns {
        header.push_str(&format!(" {name:>14}"));
    }
    eprintln!("{header}");
    for f in fields {
        let mut line = format!("  {f:<26}");
        for (_, v) in columns {
            line.push_str(&format!(" {:>14}", fmt_num(&v[*f])));
        }
        eprintln!("{line}");
    }
}

async fn run_once(
    scenario: &Scenario,
    s: &Setup,
    c: &Common,
    server_args: &[String],
) -> Result<Value> {
    match scenario {
        Scenario::Fanout(a) => {
            fanout::run(&s.spec, &a.params(server_args.to_vec()), &s.window).await
        }
        Scenario::DurabilityCost(a) => {
            fanout::run(&s.spec, &a.params(server_args.to_vec()), &s.window).await
        }
        Scenario::Replicas(a) => {
            let p = a.fanout.params(server_args.to_vec());
            replicas::run(&s.spec, &p, a.replicas, a.spread, &s.window).await
        }
        Scenario::Smoke => {
            let a = smoke_args();
            fanout::run(&s.spec, &a.params(server_args.to_vec()), &s.window).await
        }
        Scenario::Presence(a) => {
            if a.stepped() {
                bail!("presence steps are measured one by one");
            }
            presence::run(&s.spec, &a.params(server_args.to_vec()), &s.window).await
        }
        Scenario::Connections(a) => {
            let p = connections::Params {
                connections: a.connections,
                docs: a.docs,
                concurrency: a.concurrency,
                hold: Duration::from_secs_f64(a.hold),
            };
            connections::run(&s.spec, &p, &s.window).await
        }
        Scenario::Report { .. } => bail!("report is not a measurement"),
        Scenario::Sustained(_) => bail!("sustained measures fanout steps"),
        Scenario::Soak(_) => bail!("soak is one long run"),
        Scenario::Heal(_) => bail!("heal measures its rounds on one document"),
        Scenario::Coldload(a) => {
            let _ = c;
            let p = coldload::Params {
                edits: a.edits,
                joiners: a.joiners,
            };
            coldload::run(&s.spec, &p, &s.window).await
        }
    }
}

fn smoke_args() -> FanoutArgs {
    FanoutArgs {
        docs: 4,
        clients: 5,
        duration: 3.0,
        knobs: FanoutKnobs {
            interval_ms: 50.0,
            warmup: 0.5,
            observers: 2,
            value_bytes: 16,
            drain_timeout: 10.0,
            connect_concurrency: 20,
            // Form edits: the server's schema check runs on every one.
            edits: proto::Edits::Component,
        },
    }
}

/// The presence part of `smoke`: 2 documents × 4 clients at 30 Hz for
/// 2 s.
fn smoke_presence_args() -> PresenceArgs {
    PresenceArgs {
        docs: 2,
        clients: vec![4],
        hz: vec![30.0],
        duration: 2.0,
        warmup: 0.5,
        p99_limit_ms: 50.0,
        drain_timeout: 10.0,
        connect_concurrency: 8,
    }
}

fn scenario_name(s: &Scenario) -> &'static str {
    match s {
        Scenario::Fanout(_) => "fanout",
        Scenario::Connections(_) => "connections",
        Scenario::Coldload(_) => "coldload",
        Scenario::DurabilityCost(_) => "durability-cost",
        Scenario::Smoke => "smoke",
        Scenario::Presence(_) => "presence",
        Scenario::Replicas(_) => "replicas",
        Scenario::Heal(_) => "heal",
        Scenario::Sustained(_) => "sustained",
        Scenario::Soak(_) => "soak",
        Scenario::Report { .. } => "report",
    }
}

/// Runs one configuration `repeat` times; returns its summary object and
/// whether it is valid and passed.
async fn measure(
    common: &Common,
    scenario: &Scenario,
    s: &Setup,
    server_args: &[String],
    label: &str,
) -> (Value, bool, bool) {
    let name = scenario_name(scenario);
    let check_as = match name {
        "durability-cost" | "smoke" | "replicas" => "fanout",
        n => n,
    };
    let mut runs = Vec::new();
    let mut invalid = Vec::new();
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    for i in 0..common.repeat.max(1) {
        match run_once(scenario, s, common, server_args).await {
            Ok(v) => {
                let (inv, fail, noisy) = run_problems(check_as, &v, common.max_bench_cpu);
                for p in inv.iter().chain(&fail) {
                    eprintln!("coform-bench: {label} run {}: {p}", i + 1);
                }
                for p in &noisy {
                    eprintln!("coform-bench: {label} run {}: warning: {p}", i + 1);
                }
                warnings.extend(noisy);
                invalid.extend(inv);
                failed.extend(fail);
                runs.push(v);
            }
            Err(e) => {
                eprintln!("coform-bench: {label} run {}: error: {e:#}", i + 1);
                failed.push(format!("run {} failed: {e:#}", i + 1));
            }
        }
    }
    let valid = invalid.is_empty() && !runs.is_empty();
    let passed = failed.is_empty();
    let summary = json!({
        "valid": valid,
        "passed": passed,
        "problems": invalid.iter().chain(&failed).collect::<Vec<_>>(),
        "warnings": warnings,
        // Figures measured on a saturated generator are not reported.
        "median": if valid { summarize(&runs) } else { Value::Null },
        "runs": runs,
    });
    (summary, valid, passed)
}

async fn run(cli: Cli, s: Setup) -> Result<ExitCode> {
    let name = scenario_name(&cli.scenario);
    if matches!(cli.scenario, Scenario::Smoke) && cli.common.server != Kind::Coform {
        bail!("smoke runs against coform");
    }
    let started = Instant::now();
    let base = json!({
        "scenario": name,
        "server": cli.common.server.name(),
        "server_cmd": cli.common.server_cmd,
        "server_args": cli.common.server_args,
        "repeat": cli.common.repeat.max(1),
        "pinned": s.pinned,
        "server_cpus": cli.common.server_cpus,
        "bench_cpus": cli.common.bench_cpus,
        "params": params_json(&cli.scenario),
    });
    let mut out = base.as_object().cloned().unwrap_or_default();
    let ok = if let Some(a) = cli.scenario.stepped_presence() {
        let (fields, ok) = presence::run_steps(&cli.common, a, &s).await?;
        out.extend(fields);
        ok
    } else if let Scenario::Sustained(a) = &cli.scenario {
        let (fields, ok) = sustained::run(&cli.common, a, &s).await?;
        out.extend(fields);
        ok
    } else if let Scenario::Heal(a) = &cli.scenario {
        let p = heal::Params {
            size_mb: a.size_mb,
            rounds: a.rounds,
        };
        let v = heal::run(&s.spec, &p).await?;
        if let Some(fields) = v.as_object() {
            out.extend(fields.clone());
        }
        true
    } else if let Scenario::Soak(a) = &cli.scenario {
        if cli.common.server != Kind::Coform {
            bail!("soak reads coform's /metrics: use --server coform");
        }
        let p = soak::Params {
            duration: Duration::from_secs_f64(a.duration),
            docs: a.docs,
            workers: a.workers,
            edits: a.edits,
            sample: Duration::from_secs_f64(a.sample),
            rest_per_s: a.rest_per_s,
            samples_out: a.samples_out.clone(),
        };
        let (fields, ok) = soak::run(&s.spec, &p).await?;
        out.extend(fields);
        ok
    } else if let Scenario::DurabilityCost(_) = &cli.scenario {
        if cli.common.server != Kind::Coform {
            bail!("durability-cost compares coform's stores: use --server coform");
        }
        let configs: [(&str, Vec<String>); 3] = [
            ("full", vec![]),
            ("normal", vec!["--durability".into(), "normal".into()]),
            ("memory", vec!["--store".into(), "memory".into()]),
        ];
        let mut results = Map::new();
        let mut ok = true;
        for (label, args) in &configs {
            let (summary, valid, passed) =
                measure(&cli.common, &cli.scenario, &s, args, label).await;
            ok &= valid && passed;
            results.insert(label.to_string(), summary);
        }
        let p50 = |k: &str| results[k]["median"]["latency_p50_ms"].as_f64();
        let cpu = |k: &str| results[k]["median"]["server_cpu_s"].as_f64();
        let cost = json!({
            "p50_full_minus_memory_ms": p50("full").zip(p50("memory")).map(|(a, b)| a - b),
            "p50_normal_minus_memory_ms": p50("normal").zip(p50("memory")).map(|(a, b)| a - b),
            "cpu_full_minus_memory_s": cpu("full").zip(cpu("memory")).map(|(a, b)| a - b),
            "cpu_normal_minus_memory_s": cpu("normal").zip(cpu("memory")).map(|(a, b)| a - b),
        });
        let cols: Vec<(&str, &Value)> = configs
            .iter()
            .map(|(l, _)| (*l, &results[*l]["median"]))
            .collect();
        print_table(
            &format!(
                "durability-cost (coform, medians of {})",
                cli.common.repeat.max(1)
            ),
            &cols,
            &table_fields(name),
        );
        eprintln!("  cost: {cost}");
        out.insert("configs".into(), Value::Object(results));
        out.insert("cost".into(), cost);
        ok
    } else {
        let (summary, valid, passed) = measure(&cli.common, &cli.scenario, &s, &[], name).await;
        let title = format!(
            "{name} against {} (medians of {})",
            cli.common.server.name(),
            cli.common.repeat.max(1)
        );
        if valid {
            if summary["median"].get("skipped").is_some() {
                eprintln!("\n{title}: skipped: {}", summary["median"]["skipped"]);
            } else {
                print_table(
                    &title,
                    &[("median", &summary["median"])],
                    &table_fields(name),
                );
            }
        }
        for (k, v) in summary.as_object().cloned().unwrap_or_default() {
            out.insert(k, v);
        }
        if matches!(cli.scenario, Scenario::Smoke) {
            let presence = Scenario::Presence(smoke_presence_args());
            let (summary, valid, presence_passed) =
                measure(&cli.common, &presence, &s, &[], "smoke presence").await;
            if valid {
                print_table(
                    "smoke presence against coform",
                    &[("median", &summary["median"])],
                    &table_fields("presence"),
                );
            }
            out.insert("presence".into(), summary);
            // In CI only correctness counts; a busy machine is not a failure.
            passed && presence_passed
        } else {
            valid && passed
        }
    };
    out.insert("elapsed_s".into(), json!(started.elapsed().as_secs_f64()));
    println!("{}", Value::Object(out));
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn params_json(s: &Scenario) -> Value {
    match s {
        Scenario::Fanout(a) | Scenario::DurabilityCost(a) => fanout_json(a),
        Scenario::Replicas(a) => {
            let mut v = fanout_json(&a.fanout);
            v["replicas"] = json!(a.replicas);
            v["spread"] = json!(a.spread.name());
            v
        }
        Scenario::Smoke => fanout_json(&smoke_args()),
        Scenario::Presence(a) => presence_json(a),
        Scenario::Connections(a) => json!({
            "connections": a.connections, "docs": a.docs,
            "concurrency": a.concurrency, "hold_s": a.hold,
        }),
        Scenario::Coldload(a) => json!({ "edits": a.edits, "joiners": a.joiners }),
        Scenario::Sustained(a) => sustained_json(a),
        Scenario::Heal(a) => json!({ "size_mb": a.size_mb, "rounds": a.rounds }),
        Scenario::Soak(a) => json!({
            "duration": a.duration, "docs": a.docs, "workers": a.workers, "edits": a.edits,
            "sample": a.sample, "rest_per_s": a.rest_per_s,
        }),
        Scenario::Report { .. } => Value::Null,
    }
}

fn fanout_json(a: &FanoutArgs) -> Value {
    let k = &a.knobs;
    json!({
        "docs": a.docs, "clients": a.clients, "interval_ms": k.interval_ms,
        "duration_s": a.duration, "warmup_s": k.warmup, "observers": k.observers,
        "value_bytes": k.value_bytes, "edits": k.edits.name(),
    })
}

fn presence_json(a: &PresenceArgs) -> Value {
    json!({
        "docs": a.docs, "clients": a.clients, "hz": a.hz, "duration_s": a.duration,
        "warmup_s": a.warmup, "p99_limit_ms": a.p99_limit_ms,
    })
}

impl Scenario {
    /// A presence scenario with steps (lists of clients or rates).
    fn stepped_presence(&self) -> Option<&PresenceArgs> {
        match self {
            Scenario::Presence(a) if a.stepped() => Some(a),
            _ => None,
        }
    }
}

fn sustained_json(a: &SustainedArgs) -> Value {
    let k = &a.knobs;
    json!({
        "docs": a.docs, "clients": a.clients, "interval_ms": k.interval_ms,
        "p99_limit_ms": a.p99_limit_ms, "duration_s": a.duration, "warmup_s": k.warmup,
        "observers": k.observers, "value_bytes": k.value_bytes,
        "edits": k.edits.name(),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Scenario::Report { file } = &cli.scenario {
        return match report::print(file) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("coform-bench: error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    server::raise_fd_limit();
    // Pin before the runtime exists, so every thread inherits it.
    let s = match setup(&cli.common) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("coform-bench: error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime")
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coform-bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, run(cli, s)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("coform-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_keep_integers_and_and_booleans() {
        let runs = vec![
            json!({"n": 3, "x": 1.5, "ok": true, "s": "a"}),
            json!({"n": 1, "x": 0.5, "ok": false, "s": "b"}),
            json!({"n": 2, "x": 2.5, "ok": true, "s": "c"}),
        ];
        let m = summarize(&runs);
        assert_eq!(m["n"], json!(2));
        assert_eq!(m["x"], json!(1.5));
        assert_eq!(m["ok"], json!(false));
        assert_eq!(m["s"], json!("a"));
        let two = summarize(&runs[..2]);
        assert_eq!(two["n"], json!(2));
        assert_eq!(two["x"], json!(1.0));
    }

    #[test]
    fn saturated_generator_invalidates_and_losses_fail() {
        let v = json!({"bench_cpu_util": 0.95, "all_delivered": true, "converged": true,
                       "silent_losses": 0});
        let (invalid, failed, _) = run_problems("fanout", &v, 0.9);
        assert_eq!(invalid.len(), 1);
        assert!(failed.is_empty());
        let v = json!({"bench_cpu_util": 0.2, "all_delivered": false, "converged": true,
                       "silent_losses": 3, "other_load_cores": 0.5});
        let (invalid, failed, noisy) = run_problems("fanout", &v, 0.9);
        assert!(invalid.is_empty());
        assert_eq!(failed.len(), 2);
        assert_eq!(noisy.len(), 1);
    }

    #[test]
    fn core_lists() {
        assert_eq!(parse_cpus("0").unwrap(), vec![0]);
        assert_eq!(parse_cpus("0,2-4").unwrap(), vec![0, 2, 3, 4]);
    }
}
