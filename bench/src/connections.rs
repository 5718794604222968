//! `connections`: N idle clients over M documents. Measures how fast they
//! connect and sync, and what each costs the server in memory and, while
//! idle, in CPU.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::client::{bounded, open_synced, Target};
use crate::hist::Histogram;
use crate::server::Spec;
use crate::Window;

#[derive(Clone, Debug)]
pub struct Params {
    pub connections: usize,
    pub docs: usize,
    pub concurrency: usize,
    pub hold: Duration,
}

pub async fn run(spec: &Spec, p: &Params, window: &Window) -> Result<Value> {
    let dir = tempfile::Builder::new().prefix("coform-bench-").tempdir()?;
    let server = spec.start(dir.path(), &[]).await?;
    let target = Target {
        addr: server.addr,
        kind: spec.kind,
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_before, _) = server.rss().unwrap_or((0, 0));
    let docs = p.docs.max(1);

    let c0 = window.snapshot(&server);
    let t0 = Instant::now();
    let opened = bounded(p.connections, p.concurrency, |i| {
        let target = target.clone();
        let doc = format!("idle-{}", i % docs);
        async move { open_synced(&target, &doc, false, Duration::from_secs(60)).await }
    })
    .await;
    let connect_s = t0.elapsed().as_secs_f64();
    let connect_usage = window.usage(&c0, &window.snapshot(&server));
    let mut hist = Histogram::default();
    let mut conns = Vec::with_capacity(p.connections);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for r in opened {
        match r {
            Ok(s) => {
                hist.record(s.took.as_nanos() as u64);
                conns.push(s);
            }
            Err(e) => *errors.entry(format!("{e:#}")).or_default() += 1,
        }
    }
    if conns.is_empty() {
        let _ = server.stop().await;
        bail!("no connection could be opened: {errors:?}");
    }
    let opened_ok = conns.len();

    // Keep every connection alive (answering pings) while idle.
    let cancel = CancellationToken::new();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|s| {
            let cancel = cancel.clone();
            tokio::task::spawn_local(async move {
                let mut conn = s.conn;
                let framing = s.framing;
                let mut reply = Vec::new();
                let mut on = |st: &mut crate::ws::ConnState, frame: &[u8]| {
                    // Answer a late sync step 1 like any client would.
                    if let Some(msg) = framing.strip(frame) {
                        if msg.len() >= 2 && (msg[0] == 0 || msg[0] == 4) && msg[1] == 0 {
                            reply.clear();
                            crate::proto::empty_step2(&framing, &mut reply);
                            st.queue_binary(&reply);
                        }
                    }
                };
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        r = conn.read_some(&mut on) => {
                            if r.is_err() || conn.st.closed() {
                                break;
                            }
                            if conn.flush().await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let closed = conn.st.close_code;
                let eof = conn.st.eof;
                conn.close();
                (closed, eof)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_connected, _) = server.rss().unwrap_or((0, 0));
    let w0 = window.snapshot(&server);
    tokio::time::sleep(p.hold).await;
    let w1 = window.snapshot(&server);
    let usage = window.usage(&w0, &w1);
    let (rss_end, rss_peak) = server.rss().unwrap_or((0, 0));
    let (bench_rss, _) = crate::server::rss(std::process::id()).unwrap_or((0, 0));
    cancel.cancel();
    let mut closes: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        let (code, eof) = t.await?;
        if let Some(code) = code {
            *closes.entry(code.to_string()).or_default() += 1;
        } else if eof {
            *closes.entry("eof".into()).or_default() += 1;
        }
    }
    let problems = server.log_problems();
    let stop = server.stop().await;

    let per_conn = |rss: u64| (rss.saturating_sub(rss_before)) as f64 / opened_ok as f64 / 1024.0;
    let failed = (!errors.is_empty()).then(|| format!("failed connections: {errors:?}"));
    let closed =
        (!closes.is_empty()).then(|| format!("closed by the server while idle: {closes:?}"));
    let stopped = stop.as_ref().err().map(|e| format!("{e:#}"));
    let notes: Vec<String> = [failed, closed, stopped].into_iter().flatten().collect();
    Ok(json!({
        "connections": p.connections,
        "docs": docs,
        "opened": opened_ok,
        "failed": p.connections - opened_ok,
        "connect_s": connect_s,
        "connects_per_s": opened_ok as f64 / connect_s,
        "connect_p50_ms": hist.quantile(0.5) as f64 / 1e6,
        "connect_p99_ms": hist.quantile(0.99) as f64 / 1e6,
        "server_rss_before_mb": rss_before as f64 / 1048576.0,
        "server_rss_connected_mb": rss_connected as f64 / 1048576.0,
        "server_rss_peak_mb": rss_peak as f64 / 1048576.0,
        "rss_per_conn_kb": per_conn(rss_connected),
        "rss_per_conn_end_kb": per_conn(rss_end),
        "connect_server_cpu_util": connect_usage.server_cpu_util,
        "connect_bench_cpu_util": connect_usage.bench_cpu_util,
        "idle_server_cpu_util": usage.server_cpu_util,
        "bench_cpu_util": usage.bench_cpu_util,
        "bench_wait": connect_usage.bench_wait,
        "server_wait": connect_usage.server_wait,
        "other_load_cores": connect_usage.other_load.max(usage.other_load),
        "bench_rss_mb": bench_rss as f64 / 1048576.0,
        "closed_by_server": closes,
        "all_opened": opened_ok == p.connections && closes.is_empty(),
        "server_log_problems": problems.len(),
        "server_log_sample": problems.iter().take(3).collect::<Vec<_>>(),
        "notes": notes,
    }))
}
