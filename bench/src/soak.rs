//! `soak`: a long run of churn — clients connecting to random documents,
//! editing and leaving, documents loading and unloading, REST requests —
//! sampling the server's memory, descriptors, tasks, rooms and connections
//! from its `/metrics` as it goes. Afterwards, once every client has left
//! and every room has unloaded, the server must be back where it started:
//! no connection, room, task or descriptor left behind, and memory under
//! load no higher at the end than at the start.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::client::{open_synced, Target};
use crate::proto::{self, Reader};
use crate::server::{http_get, Spec};
use crate::ws::{new_rng, next_rand};

#[derive(Clone, Debug)]
pub struct Params {
    pub duration: Duration,
    pub docs: usize,
    pub workers: usize,
    pub edits: usize,
    pub sample: Duration,
    pub rest_per_s: f64,
    /// Where each sample is written as a JSON line, if anywhere.
    pub samples_out: Option<PathBuf>,
}

/// Idle read connections the embedded store may keep (its `READ_POOL`).
const READ_POOL: usize = 4;

/// What is sampled, all from the server's `/metrics`.
const FIGURES: [(&str, &str); 7] = [
    ("rss_bytes", "process_resident_memory_bytes"),
    ("heap_bytes", "coform_heap_allocated_bytes"),
    ("compactions_queued", "coform_compactions_queued"),
    ("fds", "process_open_fds"),
    ("tasks", "coform_tasks"),
    ("rooms", "coform_rooms_loaded"),
    ("connections", "coform_connections"),
];

async fn sample(target: &Target) -> Result<Map<String, Value>> {
    let text = http_get(target.addr, "/metrics").await?;
    let mut out = Map::new();
    for (key, metric) in FIGURES {
        let value = text
            .lines()
            .find_map(|l| {
                let (name, v) = l.split_once(' ')?;
                (name == metric).then(|| v.trim().parse::<f64>().ok())?
            })
            .with_context(|| format!("/metrics has no {metric}"))?;
        out.insert(key.into(), json!(value));
    }
    Ok(out)
}

#[derive(Default)]
struct Counts {
    sessions: Cell<u64>,
    edits: Cell<u64>,
    failures: Cell<u64>,
    rest: Cell<u64>,
    rest_failures: Cell<u64>,
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

/// One visit: connect to a document, sync, make `edits` edits as Yjs
/// client `client` (its clock continuing at `first_seq`, as a person's
/// editor does across visits), and leave once the server has them.
///
/// The edits are followed by a sync step 1, which the server answers (with
/// its step 2) only after everything the connection sent before it is
/// stored. Until that answer the visit has not succeeded: like a real
/// editor, the worker keeps edits the server has not confirmed and sends
/// them again on its next visit (`first_seq` does not move on). Leaving
/// without waiting would lose them whenever the close overtakes them (a
/// socket closed with unread data is reset, and a reset discards what the
/// server had not read yet); the server never confirmed them, so that is
/// no loss of the server's, but the worker's later edits would then wait
/// forever for the missing ones and the documents would grow.
async fn session(
    target: &Target,
    doc: &str,
    client: u64,
    key: &[u8],
    first_seq: u64,
    edits: usize,
) -> Result<()> {
    let mut s = open_synced(target, doc, false, Duration::from_secs(30)).await?;
    let mut msg = Vec::new();
    let mut scratch = Vec::new();
    for seq in first_seq..first_seq + edits as u64 {
        msg.clear();
        s.framing.begin(&mut msg);
        proto::encode_edit(
            &mut msg,
            client,
            proto::EditTarget::Root { key },
            seq,
            16,
            &mut scratch,
        );
        s.conn.st.queue_binary(&msg);
    }
    for m in proto::opening_messages(&s.framing) {
        s.conn.st.queue_binary(&m);
    }
    s.conn.flush().await?;
    let framing = s.framing.clone();
    let confirmed = async {
        let mut answered = false;
        while !answered {
            if s.conn.st.closed() {
                bail!("the server closed the connection before confirming the edits");
            }
            s.conn
                .read_some(&mut |_, frame| {
                    if let Some(msg) = framing.strip(frame) {
                        let mut r = Reader::new(msg);
                        if matches!(r.var(), Some(proto::MSG_SYNC | proto::MSG_SYNC_REPLY))
                            && r.var() == Some(proto::SYNC_STEP2)
                        {
                            answered = true;
                        }
                    }
                })
                .await?;
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), confirmed)
        .await
        .map_err(|_| anyhow!("the edits were not confirmed within 30 s"))??;
    s.conn.close();
    Ok(())
}

/// The median of the samples' `key` in `range` (fractions of the run).
fn median_of(samples: &[Map<String, Value>], key: &str, from: f64, to: f64) -> Option<f64> {
    let n = samples.len();
    let lo = ((n as f64) * from).floor() as usize;
    let hi = (((n as f64) * to).ceil() as usize).min(n);
    let mut v: Vec<f64> = samples
        .get(lo..hi)?
        .iter()
        .filter_map(|s| s.get(key)?.as_f64())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Spawns the churn until `deadline`: `p.workers` clients joining,
/// editing and leaving, and the REST requests.
///
/// Worker `w` is one person: in document `d` it edits its own field as
/// the same Yjs client every visit, its clock carrying on (`clocks`), so
/// documents stay the same size however long the run (each holds a field
/// per worker, overwritten) and what grows can only be the server's own.
fn churn(
    target: &Target,
    p: &Params,
    deadline: Instant,
    counts: &Rc<Counts>,
    clocks: &Rc<RefCell<HashMap<(usize, usize), u64>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for w in 0..p.workers.max(1) {
        let (target, counts, clocks) = (target.clone(), counts.clone(), clocks.clone());
        let (docs, edits) = (p.docs.max(1), p.edits);
        tasks.push(tokio::task::spawn_local(async move {
            let mut rng = new_rng();
            let mut key = Vec::new();
            proto::field_key(w, &mut key);
            while Instant::now() < deadline {
                let d = next_rand(&mut rng) as usize % docs;
                let doc = format!("soak-{d}");
                let client = proto::client_id(w * docs + d);
                let first = clocks.borrow().get(&(w, d)).copied().unwrap_or(0);
                match session(&target, &doc, client, &key, first, edits).await {
                    Ok(()) => {
                        clocks.borrow_mut().insert((w, d), first + edits as u64);
                        bump(&counts.sessions, 1);
                        bump(&counts.edits, edits as u64);
                    }
                    Err(_) => bump(&counts.failures, 1),
                }
                // Pace: a person opens a form, edits, leaves, comes back.
                let pause = 50 + next_rand(&mut rng) % 250;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }));
    }
    let (target, counts) = (target.clone(), counts.clone());
    let every = Duration::from_secs_f64(1.0 / p.rest_per_s.max(0.1));
    tasks.push(tokio::task::spawn_local(async move {
        const PATHS: [&str; 5] = [
            "/healthz",
            "/readyz",
            "/api/schema",
            "/api/public/templates/00000000000000000000000000/preview",
            "/api/auth/me",
        ];
        let mut i = 0usize;
        let mut tick = tokio::time::interval(every);
        while Instant::now() < deadline {
            tick.tick().await;
            match http_get(target.addr, PATHS[i % PATHS.len()]).await {
                Ok(_) => bump(&counts.rest, 1),
                Err(_) => bump(&counts.rest_failures, 1),
            }
            i += 1;
        }
    }));
    tasks
}

/// Waits until no client is connected, every room has unloaded (their
/// grace is 1 s), the compactions queued by the unloads have run (under
/// CPU starvation that backlog takes minutes) and the task count has held
/// still for two seconds; returns the figures then, with `settle_s`, how
/// long that took. Gives up waiting after ten minutes.
async fn at_rest(target: &Target) -> Result<Map<String, Value>> {
    let started = Instant::now();
    let settle = started + Duration::from_secs(600);
    let mut steady = 0;
    let mut last_tasks = f64::NAN;
    loop {
        let mut s = sample(target).await?;
        let idle = s["connections"].as_f64() == Some(0.0)
            && s["rooms"].as_f64() == Some(0.0)
            && s["compactions_queued"].as_f64() == Some(0.0);
        let tasks = s["tasks"].as_f64().unwrap_or(f64::NAN);
        steady = if idle && tasks == last_tasks {
            steady + 1
        } else {
            0
        };
        last_tasks = tasks;
        if steady >= 4 || Instant::now() > settle {
            s.insert(
                "settle_s".into(),
                json!(started.elapsed().as_secs_f64().round()),
            );
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn run(spec: &Spec, p: &Params) -> Result<(Map<String, Value>, bool)> {
    let dir = tempfile::Builder::new().prefix("coform-soak-").tempdir()?;
    // A short room grace, so documents load and unload all the time.
    let server = spec
        .start(dir.path(), &["--room-grace".into(), "1s".into()])
        .await?;
    let target = Target {
        addr: server.addr,
        kind: spec.kind,
    };
    let mut samples_file = match &p.samples_out {
        Some(path) => Some(std::fs::File::create(path).with_context(|| format!("{path:?}"))?),
        None => None,
    };
    let counts = Rc::new(Counts::default());
    let clocks = Rc::new(RefCell::new(HashMap::new()));
    // A first minute of churn (a tenth of a short run) opens what the
    // server keeps open for good (store connections, caches); the figures
    // at rest after it are the baseline.
    let warmup = (p.duration / 10).min(Duration::from_secs(60));
    for t in churn(&target, p, Instant::now() + warmup, &counts, &clocks) {
        let _ = t.await;
    }
    let before = at_rest(&target).await?;
    let started = Instant::now();
    let deadline = started + p.duration;
    let tasks = churn(&target, p, deadline, &counts, &clocks);

    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(p.sample);
    while Instant::now() < deadline {
        tick.tick().await;
        let mut s = sample(&target).await?;
        s.insert("t_s".into(), json!(started.elapsed().as_secs_f64().round()));
        s.insert("sessions".into(), json!(counts.sessions.get()));
        if let Some(f) = samples_file.as_mut() {
            use std::io::Write;
            writeln!(f, "{}", Value::Object(s.clone()))?;
        }
        samples.push(s);
    }
    for t in tasks {
        let _ = t.await;
    }

    // Every client has left: the figures at rest again.
    let after = at_rest(&target).await?;
    let _ = server.stop().await;

    // Growth under load: the last tenth of the run against the second.
    let growth_of = |key: &str| {
        let first = median_of(&samples, key, 0.1, 0.2);
        let last = median_of(&samples, key, 0.9, 1.0);
        let growth = match (first, last) {
            (Some(a), Some(b)) if a > 0.0 => Some(b / a),
            _ => None,
        };
        (first, last, growth)
    };
    let rss = growth_of("rss_bytes");
    let heap = growth_of("heap_bytes");
    let (heap_first, _, heap_growth) = heap;
    let f = |m: &Map<String, Value>, k: &str| m[k].as_f64().unwrap_or(f64::NAN);
    // The embedded store keeps a few idle read connections (two
    // descriptors each) once concurrency has needed them, up to its pool
    // size: the descriptors at rest may grow by that, and no more.
    let fds_allowance = 2.0 * READ_POOL as f64;
    let fds_last = median_of(&samples, "fds", 0.9, 1.0);
    let fds_first = median_of(&samples, "fds", 0.1, 0.2);
    let back_to_rest = f(&after, "connections") == 0.0
        && f(&after, "rooms") == 0.0
        && f(&after, "compactions_queued") == 0.0
        && f(&after, "tasks") <= f(&before, "tasks")
        && f(&after, "fds") <= f(&before, "fds") + fds_allowance;
    // Memory is what the process holds (the live heap): flat under load,
    // and at rest no more than early under load. Resident memory also
    // counts freed memory the allocator keeps for reuse and the binary's
    // pages as they are first run; it is reported, not judged.
    let flat = heap_growth.is_some_and(|g| g <= 1.10)
        && heap_first.is_some_and(|h| f(&after, "heap_bytes") <= h);
    let mut out = Map::new();
    out.insert(
        "duration_s".into(),
        json!(started.elapsed().as_secs_f64().round()),
    );
    out.insert("sessions".into(), json!(counts.sessions.get()));
    out.insert("session_failures".into(), json!(counts.failures.get()));
    out.insert("edits".into(), json!(counts.edits.get()));
    out.insert("rest_requests".into(), json!(counts.rest.get()));
    out.insert("rest_failures".into(), json!(counts.rest_failures.get()));
    out.insert("samples".into(), json!(samples.len()));
    out.insert("before".into(), Value::Object(before));
    out.insert("after".into(), Value::Object(after));
    for (name, (first, last, growth)) in [("rss", rss), ("heap", heap)] {
        let mb = |b: Option<f64>| json!(b.map(|b| b / 1e6));
        out.insert(format!("{name}_under_load_first_mb"), mb(first));
        out.insert(format!("{name}_under_load_last_mb"), mb(last));
        out.insert(format!("{name}_growth"), json!(growth));
    }
    out.insert("fds_under_load_first".into(), json!(fds_first));
    out.insert("fds_under_load_last".into(), json!(fds_last));
    out.insert(
        "peak_connections".into(),
        json!(samples
            .iter()
            .map(|s| f(s, "connections"))
            .fold(0.0, f64::max)),
    );
    out.insert(
        "peak_rooms".into(),
        json!(samples.iter().map(|s| f(s, "rooms")).fold(0.0, f64::max)),
    );
    out.insert("back_to_rest".into(), json!(back_to_rest));
    out.insert("memory_flat".into(), json!(flat));
    let ok = back_to_rest && flat && counts.failures.get() == 0 && counts.rest_failures.get() == 0;
    Ok((out, ok))
}
