//! A room's presence under a sequence of events, as the relay meets them:
//! frames from local connections (decoded by `decode_frame`, their
//! awareness messages applied with `Presence::apply`; a refused update
//! closes the connection), connections leaving, presence relayed by other
//! replicas (what passed their frame check, applied with `apply_remote`),
//! and replicas dying.
//!
//! Invariants checked after every event:
//! - the totals the presence keeps match its states; live states, their
//!   bytes and tombstones stay within the limits; every live state is JSON;
//! - a refused update changes nothing;
//! - `all_accepted` means the inbound message equals what is forwarded
//!   (the relay then forwards the inbound frame itself);
//! - with sign-in, every state forwarded carries the account's identity;
//! - whatever is forwarded, a stock client echoes back: the echo must pass
//!   the frame check (`decode_frame`), or echoing clients get closed;
//! - a connection never owns more states than it may.

#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use coform_collab::presence::{Applied, Presence};
use coform_collab::protocol::{decode_frame, encode_awareness, FrameError, Inbound};
use coform_collab::{Identity, Limits, PeerId};
use libfuzzer_sys::fuzz_target;
use yrs::sync::awareness::AwarenessUpdate;

/// Small enough that the fuzzer reaches every limit.
fn limits() -> Limits {
    Limits {
        max_awareness_states_per_peer: 3,
        max_awareness_state_bytes: 1024,
        max_awareness_states_per_room: 8,
        max_awareness_bytes_per_room: 4096,
        max_awareness_tombstones: 6,
        ..Limits::default()
    }
}

/// Reads the fuzzer's bytes as a list of events.
struct Events<'a>(&'a [u8]);

impl<'a> Events<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// A two-byte length, then that many bytes (or what is left).
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u16::from_le_bytes([self.byte()?, self.byte()?]) as usize;
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        Some(taken)
    }
}

/// A `varuint` length.
fn var_len(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out
}

/// The signed-in account of each connection: two connections share one
/// user (two tabs), and names are as long and as wide as accounts allow.
fn identity(peer: PeerId) -> Identity {
    let user = peer % 3;
    let name: String = match user {
        0 => "Ada".into(),
        1 => "\u{1d11e}".repeat(200),
        _ => "\"".repeat(200),
    };
    Identity {
        user_id: format!("{user:032x}").into(),
        name: name.into(),
        color: "#a1b2c3".into(),
        session: None,
    }
}

/// Every live state, ordered.
fn states(p: &Presence) -> BTreeMap<u64, (u32, Arc<str>)> {
    p.snapshot()
        .map(|u| {
            u.clients
                .into_iter()
                .map(|(id, e)| (id.get(), (e.clock, e.json)))
                .collect()
        })
        .unwrap_or_default()
}

fn check_presence(p: &Presence, limits: &Limits) {
    let live = states(p);
    let (bytes, tombstones) = p.footprint();
    assert_eq!(live.len(), p.live());
    assert_eq!(live.values().map(|(_, j)| j.len()).sum::<usize>(), bytes);
    assert!(p.live() <= limits.max_awareness_states_per_room);
    assert!(bytes <= limits.max_awareness_bytes_per_room);
    assert!(tombstones <= limits.max_awareness_tombstones);
    // JSON as its grammar has it: a number like `5e555` is JSON (a
    // browser's JSON.parse reads it as Infinity) even though it does not
    // fit the f64 of `serde_json::Value`.
    for (_, json) in live.values() {
        assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(json).is_ok(),
            "{json}"
        );
    }
}

/// What the relay sends on must come back through the frame check when a
/// stock client echoes it.
fn check_echo(update: &AwarenessUpdate, limits: &Limits) {
    match decode_frame(&encode_awareness(update), limits) {
        Ok(_) => {}
        Err(e @ FrameError::AwarenessTooLarge(_)) => {
            panic!("the echo of a relayed update is refused: {e}")
        }
        Err(e) => panic!("a relayed update does not decode: {e}"),
    }
}

fn check_applied(
    applied: &Applied,
    inbound: &AwarenessUpdate,
    who: Option<&Identity>,
    limits: &Limits,
) {
    let Some(forward) = &applied.forward else {
        return;
    };
    if applied.all_accepted {
        assert_eq!(forward.clients, inbound.clients);
    }
    for entry in forward.clients.values() {
        if let (Some(me), false) = (who, &*entry.json == "null") {
            let v: serde_json::Value = serde_json::from_str(&entry.json).unwrap();
            assert_eq!(v["user"]["id"], *me.user_id, "{}", entry.json);
            assert_eq!(v["user"]["name"], *me.name);
        }
    }
    check_echo(forward, limits);
    if let Some(bounce) = &applied.bounce {
        check_echo(bounce, limits);
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = limits();
    let mut events = Events(data);
    let Some(mode) = events.byte() else { return };
    let signed_in = mode & 1 == 1;
    let mut presence = Presence::new(&limits);
    let replicas: [Arc<str>; 2] = [Arc::from("replica-a"), Arc::from("replica-b")];
    let mut peers = std::collections::BTreeSet::new();
    while let (Some(kind), Some(who)) = (events.byte(), events.byte()) {
        let peer = PeerId::from(who % 6) + 1;
        let replica = &replicas[usize::from(who % 2)];
        match kind % 4 {
            0 => {
                let Some(frame) = events.bytes() else { break };
                let Ok(messages) = decode_frame(&Bytes::copy_from_slice(frame), &limits) else {
                    continue;
                };
                peers.insert(peer);
                let me = signed_in.then(|| identity(peer));
                for message in messages {
                    let Inbound::Awareness { update, .. } = message else {
                        continue;
                    };
                    let before = (states(&presence), presence.footprint());
                    match presence.apply(peer, me.as_ref(), &update) {
                        Ok(applied) => check_applied(&applied, &update, me.as_ref(), &limits),
                        Err(_) => {
                            assert_eq!(before, (states(&presence), presence.footprint()));
                            // The connection is closed, and its presence goes.
                            presence.remove_peer(peer);
                            break;
                        }
                    }
                }
            }
            1 => {
                if let Some(removal) = presence.remove_peer(peer) {
                    assert!(removal.clients.len() <= limits.max_awareness_states_per_peer);
                    assert!(removal.clients.values().all(|e| &*e.json == "null"));
                    check_echo(&removal, &limits);
                }
            }
            2 => {
                let Some(payload) = events.bytes() else { break };
                // What another replica publishes passed its frame check.
                let mut frame = vec![1u8];
                frame.extend_from_slice(&var_len(payload.len()));
                frame.extend_from_slice(payload);
                let Ok(messages) = decode_frame(&Bytes::from(frame), &limits) else {
                    continue;
                };
                let Some(Inbound::Awareness { update, .. }) = messages.into_iter().next() else {
                    continue;
                };
                if let Some(forward) = presence.apply_remote(replica, &update) {
                    check_echo(&forward, &limits);
                }
            }
            _ => {
                presence.remove_replica(replica);
            }
        }
        check_presence(&presence, &limits);
    }
    // Every connection and replica goes: nothing is left live, and no
    // connection owned more than it may.
    for peer in peers {
        if let Some(removal) = presence.remove_peer(peer) {
            assert!(removal.clients.len() <= limits.max_awareness_states_per_peer);
        }
    }
    for replica in &replicas {
        presence.remove_replica(replica);
    }
    check_presence(&presence, &limits);
    assert_eq!(presence.live(), 0);
});
