//! One simulated designer of a presence run: its task (moving its pointer
//! on schedule, reading everything the server sends) and its receiving
//! side, which counts each pointer state that arrives, its latency, and
//! whether it was already stale.
//!
//! A pointer move is an awareness update of one client: its clock is the
//! move's number (from 1; y-protocols servers keep the clock as sent), and
//! its state is a small JSON object with the position and the send time.
//! Receivers identify a move by (client, clock) read from the message's
//! varints and never parse the JSON: the send time is looked up in the
//! run's table, as fanout does for edits.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Outcome, Shared};
use crate::client::Synced;
use crate::proto::{self, Framing, Reader};
use crate::ws::{pump, ConnState};

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

/// One client's receiving side.
struct Recv {
    room: usize,
    cid: u64,
    framing: Framing,
    reply: Vec<u8>,
    /// Receipt time of the current read, taken at its first state.
    batch_ns: u64,
}

impl Recv {
    fn on_frame(&mut self, sh: &Shared, me: usize, st: &mut ConnState, frame: &[u8]) {
        let Some(msg) = self.framing.strip(frame) else {
            bump(&sh.other, 1);
            return;
        };
        let mut r = Reader::new(msg);
        match r.var() {
            Some(proto::MSG_AWARENESS) => {
                let Some(payload) = r.var_bytes() else {
                    bump(&sh.unparsed, 1);
                    return;
                };
                if self.on_awareness(sh, me, payload).is_none() {
                    bump(&sh.unparsed, 1);
                }
            }
            Some(proto::MSG_SYNC) | Some(proto::MSG_SYNC_REPLY) => {
                if r.var() == Some(proto::SYNC_STEP1) {
                    self.reply.clear();
                    proto::empty_step2(&self.framing, &mut self.reply);
                    st.queue_binary(&self.reply);
                } else {
                    bump(&sh.other, 1);
                }
            }
            _ => bump(&sh.other, 1),
        }
    }

    /// Counts every state of an awareness update: `[count, (client, clock,
    /// json)*]`. `None` if it does not parse.
    fn on_awareness(&mut self, sh: &Shared, me: usize, payload: &[u8]) -> Option<()> {
        let mut r = Reader::new(payload);
        let count = r.var()?;
        if count == 0 {
            bump(&sh.keepalives, 1);
            return Some(());
        }
        if self.batch_ns == 0 {
            self.batch_ns = sh.now_ns();
        }
        let now = self.batch_ns;
        let c = sh.clients as u64;
        let base = proto::client_id(self.room * sh.clients);
        for _ in 0..count {
            let client = r.var()?;
            let clock = r.var()?;
            r.var_bytes()?; // the state's JSON: not needed
            if client == self.cid {
                bump(&sh.echoes, 1);
            } else if client < base || client >= base + c || clock == 0 {
                bump(&sh.foreign, 1);
            } else {
                let j = (client - base) as usize;
                let g = self.room * sh.clients + j;
                if clock > sh.sent[g].get() {
                    // Not a move: the server removing a client that left.
                    bump(&sh.removals, 1);
                } else {
                    sh.arrival(me, g, j, clock, now);
                }
            }
        }
        Some(())
    }
}

/// The JSON state of move `seq` of client `global`: a position that moves
/// every time and the send time (µs since the run's clock started).
fn write_state(out: &mut Vec<u8>, global: usize, seq: u64, sent_us: u64) {
    let x = (seq * 7 + global as u64 * 31) % 1920;
    let y = (seq * 13 + global as u64 * 17) % 1080;
    out.extend_from_slice(b"{\"pointer\":{\"x\":");
    proto::push_decimal(out, x);
    out.extend_from_slice(b",\"y\":");
    proto::push_decimal(out, y);
    out.extend_from_slice(b"},\"sent\":");
    proto::push_decimal(out, sent_us);
    out.push(b'}');
}

/// Appends the awareness message of one client's state (after the
/// framing's prefix): `[1, varbytes([1, client, clock, varstring(json)])]`.
pub fn encode_move(out: &mut Vec<u8>, client: u64, clock: u64, json: &[u8], scratch: &mut Vec<u8>) {
    scratch.clear();
    proto::write_var(scratch, 1);
    proto::write_var(scratch, client);
    proto::write_var(scratch, clock);
    proto::write_var_bytes(scratch, json);
    proto::write_var(out, proto::MSG_AWARENESS);
    proto::write_var_bytes(out, scratch);
}

/// When client `idx` of room `room` moves within each period, as a share
/// of the period: the clients of a room are spread evenly over it, and the
/// rooms between them, so no two clients of the run move at once.
pub fn phase(room: usize, idx: usize, docs: usize, clients: usize) -> f64 {
    (idx * docs + room) as f64 / (docs * clients) as f64
}

pub(super) async fn client_task(
    sh: Rc<Shared>,
    synced: Synced,
    room: usize,
    idx: usize,
    start: tokio::time::Instant,
) -> Outcome {
    let Synced {
        mut conn, framing, ..
    } = synced;
    let global = room * sh.clients + idx;
    let cid = proto::client_id(global);
    let mut recv = Recv {
        room,
        cid,
        framing: framing.clone(),
        reply: Vec::new(),
        batch_ns: 0,
    };
    let period = Duration::from_nanos(sh.period_ns);
    let first = start + period.mul_f64(phase(room, idx, sh.docs, sh.clients));
    let end = sh.t0 + Duration::from_nanos(sh.end_ns);
    let mut seq = 0u64;
    let mut sending = true;
    let sleep = tokio::time::sleep_until(first);
    tokio::pin!(sleep);
    let mut msg = Vec::with_capacity(96);
    let mut json = Vec::with_capacity(64);
    let mut scratch = Vec::with_capacity(96);
    let mut io_error = false;
    conn.drain_buffered(&mut |st, f| recv.on_frame(&sh, global, st, f));
    const IDLE_TICK: Duration = Duration::from_millis(50);
    loop {
        if sh.stop.get() {
            break;
        }
        tokio::select! {
            biased;
            ready = conn.fd.readable() => {
                let Ok(mut guard) = ready else { io_error = true; break };
                recv.batch_ns = 0;
                if pump(&mut guard, &mut conn.st, &mut |st, f| recv.on_frame(&sh, global, st, f)).is_err() {
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
                let deadline = first + period * seq as u32;
                if sending && (deadline.into_std() >= end || seq as usize >= sh.cap) {
                    sending = false;
                    sh.done_sending.set(sh.done_sending.get() + 1);
                }
                if !sending {
                    sleep.as_mut().reset(tokio::time::Instant::now() + IDLE_TICK);
                    continue;
                }
                let now = Instant::now();
                if now.duration_since(deadline.into_std()) > period {
                    bump(&sh.late_sends, 1);
                }
                let t = now.duration_since(sh.t0).as_nanos() as u64;
                json.clear();
                write_state(&mut json, global, seq, t / 1000);
                msg.clear();
                framing.begin(&mut msg);
                encode_move(&mut msg, cid, seq + 1, &json, &mut scratch);
                sh.send_ns[global * sh.cap + seq as usize].set(t + 1);
                if t >= sh.warm_ns && t < sh.end_ns {
                    bump(&sh.sent_window, 1);
                }
                conn.st.queue_binary(&msg);
                seq += 1;
                sh.sent[global].set(seq);
                if conn.st.try_flush(&conn.fd).is_err() {
                    io_error = true;
                    break;
                }
                sleep.as_mut().reset(first + period * seq as u32);
            }
        }
    }
    let outcome = Outcome {
        close_code: conn.st.close_code,
        eof: conn.st.eof,
        io_error,
    };
    conn.close();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::sync::awareness::AwarenessUpdate;
    use yrs::updates::decoder::Decode;

    #[test]
    fn a_move_is_an_awareness_update_of_one_client_with_a_json_state() {
        let mut json = Vec::new();
        write_state(&mut json, 3, 41, 1_234_567);
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["sent"], 1_234_567);
        assert!(value["pointer"]["x"].is_u64() && value["pointer"]["y"].is_u64());

        let mut msg = Vec::new();
        let mut scratch = Vec::new();
        encode_move(&mut msg, 1_000_003, 42, &json, &mut scratch);
        let mut r = Reader::new(&msg);
        assert_eq!(r.var(), Some(proto::MSG_AWARENESS));
        let update = AwarenessUpdate::decode_v1(r.var_bytes().unwrap()).unwrap();
        assert!(r.rest().is_empty());
        assert_eq!(update.clients.len(), 1);
        let (client, entry) = update.clients.iter().next().unwrap();
        assert_eq!(client.get(), 1_000_003);
        assert_eq!(entry.clock, 42);
        assert_eq!(entry.json.as_bytes(), json.as_slice());
    }

    #[test]
    fn phases_spread_every_client_over_the_period() {
        let (docs, clients) = (4, 5);
        let mut all: Vec<f64> = (0..docs)
            .flat_map(|room| (0..clients).map(move |idx| phase(room, idx, docs, clients)))
            .collect();
        all.sort_by(f64::total_cmp);
        for (i, p) in all.iter().enumerate() {
            assert!((p - i as f64 / 20.0).abs() < 1e-9, "{all:?}");
        }
        // A room's own clients are a fifth of a period apart.
        let gap = phase(2, 1, docs, clients) - phase(2, 0, docs, clients);
        assert!((gap - 0.2).abs() < 1e-9);
    }
}
