//! One simulated editor of a fanout run: its task (sending its edits on
//! schedule, reading everything the server sends) and its receiving side,
//! which counts each delivery and its latency in the run's shared
//! counters.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Outcome, Shared};
use crate::client::Synced;
use crate::proto::{self, Framing, Reader};
use crate::ws::{new_rng, next_rand, pump, ConnState};

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

/// One client's receiving side.
struct Recv {
    room: usize,
    idx: usize,
    cid: u64,
    /// Next clock expected from each client of the room.
    next: Vec<u64>,
    /// Observers: every update seen or sent, applied to a Y.Doc afterwards.
    log: Option<Vec<Vec<u8>>>,
    framing: Framing,
    reply: Vec<u8>,
    /// Receipt time of the current read, taken at its first update.
    batch_ns: u64,
    /// Whether the room's components exist (always, when clients edit the
    /// root map): a client edits its component only once it has seen
    /// the seeding update, which the room's first client sends.
    seeded: bool,
}

impl Recv {
    fn on_frame(&mut self, sh: &Shared, st: &mut ConnState, frame: &[u8]) {
        let Some(msg) = self.framing.strip(frame) else {
            bump(&sh.other, 1);
            return;
        };
        let mut r = Reader::new(msg);
        match r.var() {
            Some(proto::MSG_SYNC) | Some(proto::MSG_SYNC_REPLY) => match r.var() {
                Some(sub @ (proto::SYNC_UPDATE | proto::SYNC_STEP2)) => {
                    let Some(update) = r.var_bytes() else {
                        bump(&sh.unparsed, 1);
                        return;
                    };
                    if !self.seeded {
                        let seed = proto::seed_client_id(self.room);
                        let whole = proto::seed_len(sh.clients);
                        proto::update_ranges(update, |rg| {
                            self.seeded |= rg.client == seed && rg.end >= whole;
                        });
                    }
                    if sub == proto::SYNC_UPDATE {
                        self.on_update(sh, update);
                    }
                    if let Some(log) = &mut self.log {
                        log.push(update.to_vec());
                    }
                }
                Some(proto::SYNC_STEP1) => {
                    self.reply.clear();
                    proto::empty_step2(&self.framing, &mut self.reply);
                    st.queue_binary(&self.reply);
                }
                _ => bump(&sh.other, 1),
            },
            Some(proto::MSG_AWARENESS) => {
                if r.rest() == [1, 0] {
                    bump(&sh.keepalives, 1);
                } else {
                    bump(&sh.awareness, 1);
                }
            }
            Some(proto::MSG_SYNC_STATUS) => bump(&sh.acks, 1),
            _ => bump(&sh.other, 1),
        }
    }

    fn on_update(&mut self, sh: &Shared, update: &[u8]) {
        if self.batch_ns == 0 {
            self.batch_ns = sh.now_ns();
        }
        let now = self.batch_ns;
        let in_window = now >= sh.warm_ns && now < sh.end_ns;
        let c = sh.clients as u64;
        let base = proto::client_id(self.room * sh.clients);
        let (cid, room) = (self.cid, self.room);
        let next = &mut self.next;
        let mut hist = sh.hist.borrow_mut();
        let mut hist_same = sh.hist_same.borrow_mut();
        let mut hist_cross = sh.hist_cross.borrow_mut();
        let my_replica = sh.spread.replica_of(room, self.idx, sh.replicas);
        let parsed = proto::update_ranges(update, |rg| {
            let len = rg.end - rg.start;
            if rg.client == cid {
                bump(&sh.echoes, len);
                return;
            }
            if proto::is_seed_client(rg.client) {
                return;
            }
            if rg.client < base || rg.client >= base + c {
                bump(&sh.foreign, len);
                return;
            }
            let j = (rg.client - base) as usize;
            let expected = next[j];
            if rg.end <= expected {
                bump(&sh.duplicates, len);
                return;
            }
            if rg.start > expected {
                bump(&sh.gaps, rg.start - expected);
            } else if rg.start < expected {
                bump(&sh.duplicates, expected - rg.start);
            }
            let from = rg.start.max(expected);
            next[j] = rg.end;
            let fresh = rg.end - from;
            bump(&sh.delivered, fresh);
            if in_window {
                bump(&sh.delivered_window, fresh);
            }
            let sender = room * sh.clients + j;
            for clock in from..rg.end.min(sh.cap as u64) {
                let sent = sh.send_ns[sender * sh.cap + clock as usize].get();
                if sent > 0 {
                    let sent = sent - 1;
                    if sent >= sh.warm_ns && sent < sh.end_ns {
                        let latency = now.saturating_sub(sent);
                        hist.record(latency);
                        if sh.split {
                            if sh.spread.replica_of(room, j, sh.replicas) != my_replica {
                                hist_cross.record(latency);
                            } else {
                                hist_same.record(latency);
                            }
                        }
                    }
                }
            }
        });
        if parsed.is_none() {
            bump(&sh.unparsed, 1);
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn client_task(
    sh: Rc<Shared>,
    synced: Synced,
    room: usize,
    idx: usize,
    observer: bool,
    start: tokio::time::Instant,
    interval: Duration,
    value_bytes: usize,
) -> Outcome {
    let Synced {
        mut conn, framing, ..
    } = synced;
    let global = room * sh.clients + idx;
    let cid = proto::client_id(global);
    let mut key = Vec::new();
    proto::field_key(idx, &mut key);
    let mut recv = Recv {
        room,
        idx,
        cid,
        next: vec![0; sh.clients],
        log: observer.then(Vec::new),
        framing: framing.clone(),
        reply: Vec::new(),
        batch_ns: 0,
        seeded: sh.edits == proto::Edits::Root || idx == 0,
    };
    let target = match sh.edits {
        proto::Edits::Root => proto::EditTarget::Root { key: &key },
        proto::Edits::Component => proto::EditTarget::Label {
            seed: proto::seed_client_id(room),
            index: idx,
        },
    };
    let mut rng = new_rng();
    let jitter = Duration::from_nanos(next_rand(&mut rng) % interval.as_nanos().max(1) as u64);
    let first = start + jitter;
    let end = sh.t0 + Duration::from_nanos(sh.end_ns);
    let mut seq = 0u64;
    let mut sending = true;
    let sleep = tokio::time::sleep_until(first);
    tokio::pin!(sleep);
    let mut msg = Vec::with_capacity(64);
    let mut scratch = Vec::with_capacity(64);
    let mut io_error = false;
    conn.drain_buffered(&mut |st, f| recv.on_frame(&sh, st, f));
    if sh.edits == proto::Edits::Component && idx == 0 {
        msg.clear();
        framing.begin(&mut msg);
        let seed = proto::seed_client_id(room);
        proto::encode_seed(&mut msg, seed, sh.clients, &mut scratch);
        conn.st.queue_binary(&msg);
        if let Some(log) = &mut recv.log {
            log.push(scratch.clone());
        }
        if conn.st.try_flush(&conn.fd).is_err() {
            io_error = true;
        }
    }
    const IDLE_TICK: Duration = Duration::from_millis(50);
    const SEED_TICK: Duration = Duration::from_millis(1);
    loop {
        if sh.stop.get() {
            break;
        }
        tokio::select! {
            biased;
            ready = conn.fd.readable() => {
                let Ok(mut guard) = ready else { io_error = true; break };
                recv.batch_ns = 0;
                if pump(&mut guard, &mut conn.st, &mut |st, f| recv.on_frame(&sh, st, f)).is_err() {
                    io_error = true;
                    break;
                }
                drop(guard);
                if conn.st.closed() {
                    break;
                }
                if conn.st.try_flush(&conn.fd).is_err() {
                    io_error = true;
                    break;
                }
            }
            ready = conn.fd.writable(), if conn.st.wants_write() => {
                let Ok(mut guard) = ready else { io_error = true; break };
                guard.clear_ready();
                drop(guard);
                if conn.st.try_flush(&conn.fd).is_err() {
                    io_error = true;
                    break;
                }
            }
            _ = &mut sleep => {
                let deadline = first + interval * seq as u32;
                if sending && (deadline.into_std() >= end || seq as usize >= sh.cap) {
                    sending = false;
                }
                if !sending {
                    sleep.as_mut().reset(tokio::time::Instant::now() + IDLE_TICK);
                    continue;
                }
                if !recv.seeded {
                    // The component is not there yet: look again soon (the
                    // seed arrives within milliseconds of the start).
                    sleep.as_mut().reset(tokio::time::Instant::now() + SEED_TICK);
                    continue;
                }
                let now = Instant::now();
                if now.duration_since(deadline.into_std()) > interval {
                    bump(&sh.late_sends, 1);
                }
                msg.clear();
                framing.begin(&mut msg);
                proto::encode_edit(&mut msg, cid, target, seq, value_bytes, &mut scratch);
                let t = now.duration_since(sh.t0).as_nanos() as u64;
                sh.send_ns[global * sh.cap + seq as usize].set(t + 1);
                if t >= sh.warm_ns && t < sh.end_ns {
                    bump(&sh.sent_window, 1);
                }
                conn.st.queue_binary(&msg);
                if let Some(log) = &mut recv.log {
                    log.push(scratch.clone());
                }
                seq += 1;
                sh.sent[global].set(seq);
                if conn.st.try_flush(&conn.fd).is_err() {
                    io_error = true;
                    break;
                }
                sleep.as_mut().reset(first + interval * seq as u32);
            }
        }
    }
    let outcome = Outcome {
        log: recv.log,
        next: recv.next,
        close_code: conn.st.close_code,
        eof: conn.st.eof,
        io_error,
    };
    conn.close();
    outcome
}
