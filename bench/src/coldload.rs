//! `coldload`: a document with a long history, loaded by joining clients.
//!
//! The document is built by sending 20,000 small updates, one message
//! each, as one client edits it: typing 1–6 characters at random places of
//! a text, deleting a few characters now and then, and setting form fields.
//! Coform is then restarted so the document comes from its store; servers
//! that keep documents only in memory (Hocuspocus and the y-websocket
//! server with default settings) cannot be restarted without losing it, so
//! for them the document stays loaded and a holder client keeps it open:
//! their figures are warm loads, marked `from_store: false`.
//!
//! Measured: one fresh client, connect → sync step 2 received and applied
//! to a Y.Doc; then 50 clients joining at once (on a freshly restarted
//! server again for coform), until all have received their sync step 2.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Map, ReadTxn, StateVector, Text, Transact, Update};

use crate::client::{bounded, open_synced, Target};
use crate::hist::Histogram;
use crate::proto::{self, Reader};
use crate::server::{Kind, Spec};
use crate::ws::{next_rand, pump, Conn};
use crate::Window;

#[derive(Clone, Debug)]
pub struct Params {
    pub edits: usize,
    pub joiners: usize,
}

const DOC: &str = "coldload";
const SETTLE: Duration = Duration::from_secs(3);

/// The history: one update per edit, and the final state vector.
fn build_history(edits: usize) -> (Vec<Vec<u8>>, StateVector, String) {
    let doc = Doc::with_client_id(7_777_777);
    let text = doc.get_or_insert_text("body");
    let form = doc.get_or_insert_map(proto::ROOT_MAP);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut updates = Vec::with_capacity(edits);
    for i in 0..edits {
        let mut txn = doc.transact_mut();
        let len = text.len(&txn);
        let r = next_rand(&mut rng);
        match r % 100 {
            0..=84 => {
                let at = (next_rand(&mut rng) % (u64::from(len) + 1)) as u32;
                let n = 1 + (r >> 8) % 6;
                let chunk: String = (0..n)
                    .map(|k| (b'a' + ((r >> (16 + k)) % 26) as u8) as char)
                    .collect();
                text.insert(&mut txn, at, &chunk);
            }
            85..=94 if len > 4 => {
                let at = (next_rand(&mut rng) % u64::from(len - 3)) as u32;
                text.remove_range(&mut txn, at, 1 + (r >> 8) as u32 % 3);
            }
            _ => {
                let key = format!("field-{}", (r >> 8) % 50);
                form.insert(&mut txn, key, format!("value {i}"));
            }
        }
        updates.push(txn.encode_update_v1());
    }
    let txn = doc.transact();
    (updates, txn.state_vector(), text.get_string(&txn))
}

/// Sends every update on `conn`, reading (and discarding) whatever the
/// server sends meanwhile, then asks for the whole document on the same
/// connection and waits for it: once it arrives the server has them all.
async fn send_history(
    conn: &mut Conn,
    framing: &proto::Framing,
    updates: &[Vec<u8>],
) -> Result<Vec<u8>> {
    let mut msg = Vec::new();
    let mut discard = |_: &mut crate::ws::ConnState, _: &[u8]| {};
    for chunk in updates.chunks(256) {
        for u in chunk {
            msg.clear();
            framing.begin(&mut msg);
            proto::write_var(&mut msg, proto::MSG_SYNC);
            proto::write_var(&mut msg, proto::SYNC_UPDATE);
            proto::write_var_bytes(&mut msg, u);
            conn.st.queue_binary(&msg);
        }
        conn.st.try_flush(&conn.fd)?;
        while conn.st.wants_write() {
            tokio::select! {
                r = conn.fd.writable() => {
                    let mut g = r?;
                    g.clear_ready();
                    drop(g);
                    conn.st.try_flush(&conn.fd)?;
                }
                r = conn.fd.readable() => {
                    let mut g = r?;
                    pump(&mut g, &mut conn.st, &mut discard)?;
                }
            }
            if conn.st.closed() {
                bail!(
                    "closed while sending the history (code {:?})",
                    conn.st.close_code
                );
            }
        }
    }
    // Ask for everything (empty state vector) and wait for the answer.
    msg.clear();
    framing.begin(&mut msg);
    proto::write_var(&mut msg, proto::MSG_SYNC);
    proto::write_var(&mut msg, proto::SYNC_STEP1);
    proto::write_var_bytes(&mut msg, &[0]);
    conn.st.queue_binary(&msg);
    conn.flush().await?;
    let mut step2 = None;
    while step2.is_none() {
        if conn.st.closed() {
            bail!(
                "closed while waiting for the document (code {:?})",
                conn.st.close_code
            );
        }
        conn.read_some(&mut |_, frame| {
            let Some(m) = framing.strip(frame) else {
                return;
            };
            let mut r = Reader::new(m);
            if matches!(r.var(), Some(proto::MSG_SYNC) | Some(proto::MSG_SYNC_REPLY))
                && r.var() == Some(proto::SYNC_STEP2)
            {
                step2 = r.var_bytes().map(<[u8]>::to_vec);
            }
        })
        .await?;
    }
    Ok(step2.unwrap_or_default())
}

async fn restart(
    spec: &Spec,
    dir: &std::path::Path,
    args: &[String],
    server: crate::server::Server,
) -> Result<(crate::server::Server, Duration)> {
    let stopped = server.stop().await?;
    let s = spec.start(dir, args).await?;
    Ok((s, stopped))
}

fn apply(update: &[u8]) -> Result<(StateVector, String)> {
    let doc = Doc::new();
    let text = doc.get_or_insert_text("body");
    doc.transact_mut()
        .apply_update(Update::decode_v1(update)?)?;
    let txn = doc.transact();
    Ok((txn.state_vector(), text.get_string(&txn)))
}

pub async fn run(spec: &Spec, p: &Params, window: &Window) -> Result<Value> {
    if !spec.kind.keeps_state() {
        return Ok(json!({ "skipped": "the null relay keeps no document" }));
    }
    let restartable = spec.kind == Kind::Coform && spec.attach.is_none();
    let (history, want_sv, want_text) = build_history(p.edits);
    let history_bytes: usize = history.iter().map(Vec::len).sum();
    let dir = tempfile::Builder::new().prefix("coform-bench-").tempdir()?;
    // The history is sent as fast as the server takes it; Coform's
    // per-connection pacing would stretch 20,000 messages over 40 s.
    let build_args: Vec<String> = if spec.kind == Kind::Coform {
        vec!["--max-messages-per-sec".into(), "1000000".into()]
    } else {
        Vec::new()
    };
    let mut server = spec.start(dir.path(), &build_args).await?;
    let target = Target {
        addr: server.addr,
        kind: spec.kind,
    };
    let t_build = Instant::now();
    let builder = open_synced(&target, DOC, false, Duration::from_secs(30)).await?;
    let mut holder = builder.conn;
    let stored = send_history(&mut holder, &builder.framing, &history).await?;
    let build_s = t_build.elapsed().as_secs_f64();
    let (sv, text) = apply(&stored)?;
    if sv != want_sv || text != want_text {
        let _ = server.stop().await;
        bail!("the server's document differs from the history sent");
    }
    let mut problems = Vec::new();
    let mut restart_s = Vec::new();
    let mut stop_s = Vec::new();
    let holder = if restartable {
        holder.close();
        let (s, stopped) = restart(spec, dir.path(), &build_args, server).await?;
        stop_s.push(stopped.as_secs_f64());
        restart_s.push(s.started_in.as_secs_f64());
        server = s;
        None
    } else {
        // The holder keeps the document loaded and keeps reading whatever
        // the server still sends it (Hocuspocus acknowledges every update).
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        let task = tokio::task::spawn_local(async move {
            let mut conn = holder;
            let mut ignore = |_: &mut crate::ws::ConnState, _: &[u8]| {};
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    r = conn.read_some(&mut ignore) => {
                        if r.is_err() || conn.st.closed() || conn.flush().await.is_err() {
                            break;
                        }
                    }
                }
            }
            conn.close();
        });
        Some((stop, task))
    };
    // Let deferred work after the burst finish (Hocuspocus runs its store
    // hooks 2 s after the last change) before measuring.
    tokio::time::sleep(SETTLE).await;

    // One fresh client.
    let target = Target {
        addr: server.addr,
        kind: spec.kind,
    };
    let t0 = Instant::now();
    let one = open_synced(&target, DOC, true, Duration::from_secs(60)).await?;
    let received_one = t0.elapsed();
    let t_apply = Instant::now();
    let (sv, text) = apply(one.step2.as_deref().unwrap_or_default())?;
    let apply_s = t_apply.elapsed();
    let one_s = t0.elapsed();
    let doc_bytes = one.step2.as_ref().map_or(0, Vec::len);
    if sv != want_sv || text != want_text {
        bail!("the loaded document differs from the history sent");
    }
    one.conn.close();
    let (rss_loaded, _) = server.rss().unwrap_or((0, 0));

    if restartable {
        problems.extend(server.log_problems());
        let (s, stopped) = restart(spec, dir.path(), &build_args, server).await?;
        stop_s.push(stopped.as_secs_f64());
        restart_s.push(s.started_in.as_secs_f64());
        server = s;
    }
    let target = Target {
        addr: server.addr,
        kind: spec.kind,
    };

    // Many joining at once.
    let w0 = window.snapshot(&server);
    let t0 = Instant::now();
    let joined = bounded(p.joiners, p.joiners, |_| {
        let target = target.clone();
        async move {
            let s = open_synced(&target, DOC, true, Duration::from_secs(60)).await?;
            let at = t0.elapsed();
            Ok::<_, anyhow::Error>((s, at))
        }
    })
    .await;
    let all_received = t0.elapsed();
    let w1 = window.snapshot(&server);
    let usage = window.usage(&w0, &w1);
    let mut hist = Histogram::default();
    let mut wrong = 0;
    let mut failed = Vec::new();
    for r in joined {
        match r {
            Ok((s, at)) => {
                hist.record(at.as_nanos() as u64);
                match apply(s.step2.as_deref().unwrap_or_default()) {
                    Ok((sv, text)) if sv == want_sv && text == want_text => {}
                    _ => wrong += 1,
                }
                s.conn.close();
            }
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    if let Some((stop, task)) = holder {
        stop.cancel();
        let _ = task.await;
    }
    problems.extend(server.log_problems());
    let stop = server.stop().await;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut notes = Vec::new();
    if !failed.is_empty() {
        notes.push(format!(
            "{} joiners failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        ));
    }
    if wrong > 0 {
        notes.push(format!("{wrong} joiners got a wrong document"));
    }
    if let Err(e) = &stop {
        notes.push(format!("{e:#}"));
    }
    Ok(json!({
        "edits": p.edits,
        "history_bytes": history_bytes,
        "doc_bytes": doc_bytes,
        "from_store": restartable,
        "build_s": build_s,
        "build_updates_per_s": p.edits as f64 / build_s,
        "server_restart_s": restart_s.first().copied(),
        "server_stop_s": stop_s.first().copied(),
        "one_received_ms": ms(received_one),
        "one_apply_ms": ms(apply_s),
        "one_synced_ms": ms(one_s),
        "joiners": p.joiners,
        "join_all_received_ms": ms(all_received),
        "join_p50_received_ms": hist.quantile(0.5) as f64 / 1e6,
        // Each real client applies its own copy in parallel: all are synced
        // one apply after the last one received it.
        "join_all_synced_ms": ms(all_received) + ms(apply_s),
        "join_server_cpu_s": usage.server_cpu_s,
        "bench_cpu_util": usage.bench_cpu_util,
        "bench_wait": usage.bench_wait,
        "server_wait": usage.server_wait,
        "other_load_cores": usage.other_load,
        "server_rss_loaded_mb": rss_loaded as f64 / 1048576.0,
        "all_correct": failed.is_empty() && wrong == 0,
        "server_log_problems": problems.len(),
        "server_log_sample": problems.iter().take(3).collect::<Vec<_>>(),
        "notes": notes,
    }))
}
