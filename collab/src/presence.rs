//! Awareness (presence) bookkeeping for one room.
//!
//! Clients own their awareness state and version it with a clock; a state
//! of JSON `null` means "gone". The room keeps the newest clock it has seen
//! per awareness client and which connection announced it, which lets it
//! do two things the reference server does not:
//!
//! - **No ghosts.** When a connection closes, every state it owned is
//!   removed at once (clock + 1, state `null`) and the removal is sent to
//!   the others, instead of lingering until a 30 s timeout.
//! - **Instant return.** Removal leaves a tombstone with the bumped clock.
//!   A client that reconnects with the same id still has its old, lower
//!   clock, which every peer would ignore for up to 15 s. The room instead
//!   answers it with the tombstone; the stock client then raises its clock
//!   above it and resends, so its presence shows again within a round trip.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use yrs::block::ClientID;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};

use crate::peer::{Identity, PeerId};
use crate::protocol::STAMP_ALLOWANCE;
use crate::Limits;

const NULL_STATE: &str = "null";
/// How long a tombstone is kept to recognise a returning client.
const TOMBSTONE_TTL: Duration = Duration::from_secs(10 * 60);
/// How often expired tombstones are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Entry {
    clock: u32,
    /// `None` = removed (a tombstone).
    state: Option<Arc<str>>,
    /// The connection that announced the live state.
    owner: Option<PeerId>,
    /// The authenticated user of that connection, if any.
    owner_user: Option<Arc<str>>,
    /// The replica the state came from, when not from a local connection.
    replica: Option<Arc<str>>,
    removed_at: Option<Instant>,
}

/// Result of applying one peer's awareness update.
#[derive(Debug, Default)]
pub struct Applied {
    /// Entries that changed, to send to every other peer.
    pub forward: Option<AwarenessUpdate>,
    /// True when every entry of the inbound update was accepted unchanged,
    /// so the inbound frame itself may be forwarded.
    pub all_accepted: bool,
    /// Tombstones to send back to the sender (returning clients).
    pub bounce: Option<AwarenessUpdate>,
    /// Live states not kept because the room's presence is full.
    pub refused: usize,
}

/// Why a connection's awareness update was refused as a whole (nothing of
/// it is applied; the connection is closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    #[error("an awareness state must be JSON (client {0})")]
    NotJson(u64),
    #[error("an awareness state may be at most {0} bytes")]
    TooLarge(usize),
    #[error("a connection may own at most {0} awareness states")]
    TooMany(usize),
}

/// Awareness states of one room, bounded: states per connection, bytes
/// per state, live states and bytes per room, and tombstones kept.
#[derive(Debug)]
pub struct Presence {
    entries: HashMap<u64, Entry>,
    limits: Limits,
    live_states: usize,
    live_bytes: usize,
    tombstones: usize,
    /// Live states owned by each local connection.
    owned: HashMap<PeerId, usize>,
    /// When expired tombstones are next looked for (not on every message:
    /// presence moves at cursor rate).
    next_prune: Instant,
}

impl Default for Presence {
    fn default() -> Self {
        Presence::new(&Limits::default())
    }
}

fn update_of(entries: Vec<(u64, u32, Arc<str>)>) -> Option<AwarenessUpdate> {
    if entries.is_empty() {
        return None;
    }
    let clients = entries
        .into_iter()
        .map(|(id, clock, json)| (ClientID::new(id), AwarenessUpdateEntry { clock, json }))
        .collect();
    Some(AwarenessUpdate { clients })
}

/// Whether `json` is one JSON value (nesting is bounded by the parser).
fn is_json(json: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(json).is_ok()
}

/// Does an entry with `clock` (a removal when `is_null`) replace `cur`?
fn newer(cur: &Entry, clock: u32, is_null: bool) -> bool {
    clock > cur.clock || (clock == cur.clock && is_null && cur.state.is_some())
}

/// Does a local connection of `identity` get to replace `cur` (if any)?
/// A live state another user's connection owns cannot be taken over.
fn accepts(cur: Option<&Entry>, identity: Option<&Identity>, clock: u32, is_null: bool) -> bool {
    let Some(cur) = cur else { return true };
    let foreign = cur.state.is_some()
        && matches!((&cur.owner_user, identity), (Some(u), Some(me)) if *u != me.user_id);
    !foreign && newer(cur, clock, is_null)
}

impl Presence {
    /// An empty presence bounded by `limits`.
    pub fn new(limits: &Limits) -> Self {
        Presence {
            entries: HashMap::new(),
            limits: limits.clone(),
            live_states: 0,
            live_bytes: 0,
            tombstones: 0,
            owned: HashMap::new(),
            next_prune: Instant::now() + PRUNE_EVERY,
        }
    }

    /// Counts `e` into (`add`) or out of the totals.
    fn account(&mut self, e: &Entry, add: bool) {
        let step = |n: &mut usize, by: usize| {
            if add {
                *n += by
            } else {
                *n -= by
            }
        };
        match &e.state {
            Some(state) => {
                step(&mut self.live_states, 1);
                step(&mut self.live_bytes, state.len());
                if let Some(peer) = e.owner {
                    let n = self.owned.entry(peer).or_default();
                    step(n, 1);
                    if *n == 0 {
                        self.owned.remove(&peer);
                    }
                }
            }
            None => step(&mut self.tombstones, 1),
        }
    }

    fn put(&mut self, id: u64, entry: Entry) {
        self.account(&entry, true);
        if let Some(old) = self.entries.insert(id, entry) {
            self.account(&old, false);
        }
    }

    /// Would one more live state of `bytes` (replacing `replaced` bytes of
    /// a live one) fit in the room?
    fn room_for(&self, bytes: usize, replaced: Option<usize>) -> bool {
        let states = self.live_states + usize::from(replaced.is_none());
        let total = self.live_bytes - replaced.unwrap_or(0) + bytes;
        states <= self.limits.max_awareness_states_per_room
            && total <= self.limits.max_awareness_bytes_per_room
    }

    /// Turns the live state `id` into a tombstone with a bumped clock and
    /// returns the removal to send.
    fn bury(&mut self, id: u64, now: Instant) -> (u64, u32, Arc<str>) {
        let mut e = self.entries.remove(&id).expect("entry exists");
        self.account(&e, false);
        e.clock = e.clock.wrapping_add(1);
        e.state = None;
        e.owner = None;
        e.owner_user = None;
        e.replica = None;
        e.removed_at = Some(now);
        let clock = e.clock;
        self.put(id, e);
        (id, clock, Arc::from(NULL_STATE))
    }

    /// Forgets expired tombstones, then the oldest beyond the limit.
    fn prune(&mut self, now: Instant) {
        let max = self.limits.max_awareness_tombstones;
        let expired = |e: &Entry| {
            e.removed_at
                .is_some_and(|at| now.duration_since(at) >= TOMBSTONE_TTL)
        };
        if self.tombstones > max || now >= self.next_prune {
            self.next_prune = now + PRUNE_EVERY;
            self.entries.retain(|_, e| !expired(e));
            let mut dead: Vec<(Instant, u64)> = self
                .entries
                .iter()
                .filter_map(|(id, e)| e.removed_at.map(|at| (at, *id)))
                .collect();
            self.tombstones = dead.len();
            if dead.len() > max {
                // Down to three quarters, so churn does not sort every time.
                let keep = max - max / 4;
                dead.sort_unstable();
                for (_, id) in &dead[..dead.len() - keep] {
                    self.entries.remove(id);
                }
                self.tombstones = keep;
            }
        }
    }

    /// Applies `update` sent by `peer`, following the y-protocols rules:
    /// an entry wins if its clock is newer, or equal with a removal of a
    /// live state. With an `identity`, the `user` field of every state the
    /// peer announces is replaced by the server's account data, and a
    /// state another user's connection owns cannot be taken over.
    ///
    /// A state that is not JSON or too large (as sent, or once stamped:
    /// a relayed state must pass the frame check when clients echo it),
    /// or more states than one connection may own, refuses the whole
    /// update (nothing changes). A new live state that does not fit in the
    /// room is left out ([`Applied::refused`]).
    pub fn apply(
        &mut self,
        peer: PeerId,
        identity: Option<&Identity>,
        update: &AwarenessUpdate,
    ) -> Result<Applied, PresenceError> {
        // Check everything first: a refused update changes nothing. Only
        // entries that would be taken count: stock clients send back every
        // state they receive, and those echoes are simply not newer.
        let mut owned = self.owned.get(&peer).copied().unwrap_or(0);
        // Stamped states, made once here and kept below.
        let mut stamped: HashMap<u64, Arc<str>> = HashMap::new();
        for (client, incoming) in &update.clients {
            let id = client.get();
            let is_null = &*incoming.json == NULL_STATE;
            let cur = self.entries.get(&id);
            if !accepts(cur, identity, incoming.clock, is_null) {
                continue;
            }
            if !is_null {
                if incoming.json.len() > self.limits.max_awareness_state_bytes {
                    return Err(PresenceError::TooLarge(
                        self.limits.max_awareness_state_bytes,
                    ));
                }
                if !is_json(&incoming.json) {
                    return Err(PresenceError::NotJson(id));
                }
                if let Some(me) = identity {
                    // Re-serialising may lengthen what the client wrote
                    // (`1e15` becomes `1000000000000000.0`): the state as
                    // relayed must still pass the frame check when the
                    // others' clients echo it, or they would be closed.
                    let json = stamp(&incoming.json, me);
                    if json.len() > self.limits.max_awareness_state_bytes + STAMP_ALLOWANCE {
                        return Err(PresenceError::TooLarge(
                            self.limits.max_awareness_state_bytes,
                        ));
                    }
                    stamped.insert(id, json);
                }
            }
            let mine = cur.is_some_and(|c| c.owner == Some(peer) && c.state.is_some());
            match (mine, is_null) {
                (false, false) => owned += 1,
                (true, true) => owned -= 1,
                _ => {}
            }
        }
        if owned > self.limits.max_awareness_states_per_peer {
            return Err(PresenceError::TooMany(
                self.limits.max_awareness_states_per_peer,
            ));
        }

        let now = Instant::now();
        let mut forward = Vec::new();
        let mut bounce = Vec::new();
        let mut any_stamped = false;
        let mut refused = 0;
        for (client, incoming) in &update.clients {
            let id = client.get();
            let is_null = &*incoming.json == NULL_STATE;
            if accepts(self.entries.get(&id), identity, incoming.clock, is_null) {
                let json = match stamped.remove(&id) {
                    Some(json) => {
                        any_stamped = true;
                        json
                    }
                    None => incoming.json.clone(),
                };
                let replaced = self
                    .entries
                    .get(&id)
                    .and_then(|e| e.state.as_ref().map(|s| s.len()));
                if !is_null && !self.room_for(json.len(), replaced) {
                    refused += 1;
                    continue;
                }
                self.put(
                    id,
                    Entry {
                        clock: incoming.clock,
                        state: (!is_null).then(|| json.clone()),
                        owner: (!is_null).then_some(peer),
                        owner_user: identity.filter(|_| !is_null).map(|me| me.user_id.clone()),
                        replica: None,
                        removed_at: is_null.then_some(now),
                    },
                );
                forward.push((id, incoming.clock, json));
            } else if let Some(cur) = self.entries.get(&id) {
                if !is_null && cur.state.is_none() {
                    bounce.push((id, cur.clock, Arc::from(NULL_STATE)));
                }
            }
        }
        self.prune(now);
        let all_accepted = !any_stamped && forward.len() == update.clients.len();
        Ok(Applied {
            forward: update_of(forward),
            all_accepted,
            bounce: update_of(bounce),
            refused,
        })
    }

    /// Removes every live state `peer` owned and returns the removal to
    /// send to the remaining peers.
    pub fn remove_peer(&mut self, peer: PeerId) -> Option<AwarenessUpdate> {
        let now = Instant::now();
        let ids: Vec<u64> = if self.owned.contains_key(&peer) {
            self.entries
                .iter()
                .filter(|(_, e)| e.owner == Some(peer) && e.state.is_some())
                .map(|(id, _)| *id)
                .collect()
        } else {
            Vec::new()
        };
        let removed = ids.into_iter().map(|id| self.bury(id, now)).collect();
        self.prune(now);
        update_of(removed)
    }

    /// Applies presence another replica relayed (already checked and
    /// stamped there; states that are not JSON are dropped all the same).
    /// Returns what changed, to send to local peers.
    pub fn apply_remote(
        &mut self,
        replica: &Arc<str>,
        update: &AwarenessUpdate,
    ) -> Option<AwarenessUpdate> {
        let now = Instant::now();
        let mut forward = Vec::new();
        for (client, incoming) in &update.clients {
            let id = client.get();
            let is_null = &*incoming.json == NULL_STATE;
            if !is_null
                && (incoming.json.len() > self.limits.max_awareness_state_bytes
                    || !is_json(&incoming.json))
            {
                continue;
            }
            let cur = self.entries.get(&id);
            if !cur.is_none_or(|c| newer(c, incoming.clock, is_null)) {
                continue;
            }
            let replaced = cur.and_then(|e| e.state.as_ref().map(|s| s.len()));
            if !is_null && !self.room_for(incoming.json.len(), replaced) {
                continue;
            }
            self.put(
                id,
                Entry {
                    clock: incoming.clock,
                    state: (!is_null).then(|| incoming.json.clone()),
                    owner: None,
                    owner_user: None,
                    replica: (!is_null).then(|| replica.clone()),
                    removed_at: is_null.then_some(now),
                },
            );
            forward.push((id, incoming.clock, incoming.json.clone()));
        }
        self.prune(now);
        update_of(forward)
    }

    /// Removes every state relayed from `replica` (it died).
    pub fn remove_replica(&mut self, replica: &str) -> Option<AwarenessUpdate> {
        let now = Instant::now();
        let ids: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.replica.as_deref() == Some(replica) && e.state.is_some())
            .map(|(id, _)| *id)
            .collect();
        let removed = ids.into_iter().map(|id| self.bury(id, now)).collect();
        self.prune(now);
        update_of(removed)
    }

    /// Live states of this replica's own connections (for other replicas).
    pub fn local_snapshot(&self) -> Option<AwarenessUpdate> {
        update_of(
            self.entries
                .iter()
                .filter(|(_, e)| e.owner.is_some())
                .filter_map(|(id, e)| e.state.clone().map(|s| (*id, e.clock, s)))
                .collect(),
        )
    }

    /// Every live state, for a peer that just joined or asked.
    pub fn snapshot(&self) -> Option<AwarenessUpdate> {
        update_of(
            self.entries
                .iter()
                .filter_map(|(id, e)| e.state.clone().map(|s| (*id, e.clock, s)))
                .collect(),
        )
    }

    /// Number of live states.
    pub fn live(&self) -> usize {
        self.live_states
    }

    /// Bytes of live states and the number of tombstones kept.
    pub fn footprint(&self) -> (usize, usize) {
        (self.live_bytes, self.tombstones)
    }
}

/// `json` with its `user` field set to the server's view of `me`. A state
/// that is not a JSON object becomes `{"user": ...}`.
fn stamp(json: &str, me: &Identity) -> Arc<str> {
    let user = serde_json::json!({
        "id": &*me.user_id,
        "name": &*me.name,
        "color": &*me.color,
    });
    let mut value: serde_json::Value =
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
    match value.as_object_mut() {
        Some(obj) => {
            obj.insert("user".into(), user);
        }
        None => value = serde_json::json!({ "user": user }),
    }
    Arc::from(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upd(entries: &[(u64, u32, &str)]) -> AwarenessUpdate {
        update_of(
            entries
                .iter()
                .map(|(i, c, j)| (*i, *c, Arc::from(*j)))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn leaving_peer_states_are_removed_with_a_newer_clock() {
        let mut p = Presence::default();
        assert!(
            p.apply(1, None, &upd(&[(10, 3, r#"{"u":"a"}"#)]))
                .unwrap()
                .all_accepted
        );
        p.apply(2, None, &upd(&[(20, 1, r#"{"u":"b"}"#)])).unwrap();
        let removal = p.remove_peer(1).unwrap();
        let e = &removal.clients[&ClientID::new(10)];
        assert_eq!((e.clock, &*e.json), (4, "null"));
        assert_eq!(p.live(), 1);
        assert!(p.remove_peer(1).is_none(), "nothing left to remove");
    }

    #[test]
    fn returning_client_with_stale_clock_gets_the_tombstone_back() {
        let mut p = Presence::default();
        p.apply(1, None, &upd(&[(10, 3, "{}")])).unwrap();
        p.remove_peer(1);
        // Reconnects on a new connection with its old clock.
        let applied = p.apply(2, None, &upd(&[(10, 3, "{}")])).unwrap();
        assert!(applied.forward.is_none());
        let bounce = applied.bounce.unwrap();
        assert_eq!(bounce.clients[&ClientID::new(10)].clock, 4);
        // The client bumps its clock above the tombstone and resends.
        let applied = p.apply(2, None, &upd(&[(10, 5, "{}")])).unwrap();
        assert!(applied.forward.is_some() && applied.bounce.is_none());
        assert_eq!(p.live(), 1);
        // Now owned by the new connection.
        assert!(p.remove_peer(2).is_some());
    }

    fn who(user: &str) -> Identity {
        Identity {
            user_id: user.into(),
            name: format!("{user} name").into(),
            color: "#123456".into(),
            session: None,
        }
    }

    #[test]
    fn user_field_comes_from_the_account_not_the_client() {
        let mut p = Presence::default();
        let claimed = r##"{"user":{"name":"The CEO","color":"#ff0000"},"cursor":5}"##;
        let applied = p
            .apply(1, Some(&who("u1")), &upd(&[(10, 1, claimed)]))
            .unwrap();
        assert!(!applied.all_accepted, "stamped states must be re-encoded");
        let json = &applied.forward.unwrap().clients[&ClientID::new(10)].json;
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["user"]["name"], "u1 name");
        assert_eq!(v["user"]["id"], "u1");
        assert_eq!(v["cursor"], 5);
        // Another user cannot take over that client's presence.
        let applied = p
            .apply(2, Some(&who("u2")), &upd(&[(10, 9, "{}")]))
            .unwrap();
        assert!(applied.forward.is_none());
        // The same user on a new connection can.
        assert!(p
            .apply(3, Some(&who("u1")), &upd(&[(10, 9, "{}")]))
            .unwrap()
            .forward
            .is_some());
    }

    #[test]
    fn remote_states_go_when_their_replica_dies() {
        let mut p = Presence::default();
        let r: Arc<str> = Arc::from("r2");
        assert!(p.apply_remote(&r, &upd(&[(10, 1, "{}")])).is_some());
        p.apply(1, None, &upd(&[(20, 1, "{}")])).unwrap();
        assert_eq!(
            p.local_snapshot().unwrap().clients.len(),
            1,
            "only local states"
        );
        let removal = p.remove_replica("r2").unwrap();
        assert_eq!(removal.clients[&ClientID::new(10)].clock, 2);
        assert_eq!(p.live(), 1);
    }

    #[test]
    fn echoed_states_neither_change_owner_nor_forward() {
        let mut p = Presence::default();
        p.apply(1, None, &upd(&[(10, 3, "{}")])).unwrap();
        let applied = p.apply(2, None, &upd(&[(10, 3, "{}")])).unwrap();
        assert!(applied.forward.is_none() && applied.bounce.is_none());
        assert!(p.remove_peer(2).is_none());
        assert!(p.remove_peer(1).is_some());
    }

    fn small_limits() -> Limits {
        Limits {
            max_awareness_states_per_peer: 2,
            max_awareness_state_bytes: 64,
            max_awareness_states_per_room: 3,
            max_awareness_bytes_per_room: 1_000,
            max_awareness_tombstones: 5,
            ..Limits::default()
        }
    }

    #[test]
    fn states_that_are_not_json_or_too_large_refuse_the_whole_update() {
        let mut p = Presence::new(&small_limits());
        let bad = upd(&[(10, 1, "{}"), (11, 1, "{not json")]);
        assert_eq!(
            p.apply(1, None, &bad).unwrap_err(),
            PresenceError::NotJson(11)
        );
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(100));
        let bad = upd(&[(12, 1, &big)]);
        assert_eq!(
            p.apply(1, None, &bad).unwrap_err(),
            PresenceError::TooLarge(64)
        );
        assert_eq!(p.live(), 0, "nothing of a refused update is kept");
        // A removal (`null`) is always fine.
        assert!(p.apply(1, None, &upd(&[(10, 2, "null")])).is_ok());
    }

    #[test]
    fn one_connection_owns_a_bounded_number_of_states() {
        let mut p = Presence::new(&small_limits());
        p.apply(1, None, &upd(&[(10, 1, "{}"), (11, 1, "{}")]))
            .unwrap();
        assert_eq!(
            p.apply(1, None, &upd(&[(12, 1, "{}")])).unwrap_err(),
            PresenceError::TooMany(2)
        );
        // Updating one it owns, or swapping one for another, is fine.
        p.apply(1, None, &upd(&[(10, 2, r#"{"a":1}"#)])).unwrap();
        p.apply(1, None, &upd(&[(11, 2, "null"), (12, 1, "{}")]))
            .unwrap();
        assert_eq!(p.live(), 2);
    }

    #[test]
    fn a_full_room_relays_no_new_states_and_tombstones_are_bounded() {
        let mut p = Presence::new(&small_limits());
        for peer in 1..=3 {
            let a = p.apply(peer, None, &upd(&[(peer * 10, 1, "{}")])).unwrap();
            assert_eq!(a.refused, 0);
        }
        let a = p.apply(4, None, &upd(&[(40, 1, "{}")])).unwrap();
        assert_eq!((a.refused, a.forward.is_none()), (1, true));
        assert_eq!(p.live(), 3);
        // Once someone leaves there is room again.
        p.remove_peer(1);
        let a = p.apply(4, None, &upd(&[(40, 1, "{}")])).unwrap();
        assert_eq!(a.refused, 0);
        // Many clients come and go: the removed ones remembered stay bounded.
        for i in 0..50u64 {
            p.apply(100 + i, None, &upd(&[(1_000 + i, 1, "{}")]))
                .unwrap();
            p.remove_peer(100 + i);
        }
        let (bytes, tombstones) = p.footprint();
        assert!(tombstones <= 5, "{tombstones} tombstones");
        assert_eq!(bytes, 3 * 2, "three live states of `{{}}`");
        assert_eq!(p.entries.len(), p.live() + tombstones);
    }

    #[test]
    fn a_stamped_state_passes_the_frame_check_when_echoed_or_is_refused() {
        use crate::protocol::{decode_frame, encode_awareness};
        let limits = Limits::default();
        let mut p = Presence::new(&limits);
        // Within the limit as sent, but `1e15` is written back as
        // `1000000000000000.0`: relayed, it would be refused from every
        // client that echoes it.
        let numbers = vec!["1e15"; 3_000].join(",");
        let growing = format!(r#"{{"n":[{numbers}]}}"#);
        assert!(growing.len() <= limits.max_awareness_state_bytes);
        assert_eq!(
            p.apply(1, Some(&who("u1")), &upd(&[(10, 1, &growing)]))
                .unwrap_err(),
            PresenceError::TooLarge(limits.max_awareness_state_bytes)
        );
        assert_eq!((p.live(), p.footprint()), (0, (0, 0)), "nothing kept");
        // A large state that does not grow is relayed, and its echo passes.
        let large = format!(r#"{{"n":"{}"}}"#, "x".repeat(16_000));
        let applied = p
            .apply(1, Some(&who("u1")), &upd(&[(10, 1, &large)]))
            .unwrap();
        let echo = encode_awareness(&applied.forward.unwrap());
        assert!(decode_frame(&echo, &limits).is_ok());
    }

    #[test]
    fn echoes_of_other_peoples_states_are_not_counted_against_a_connection() {
        let mut p = Presence::new(&small_limits());
        for peer in 1..=3u64 {
            p.apply(peer, None, &upd(&[(peer * 10, 1, "{}")])).unwrap();
        }
        // Peer 4 sends all three back, as a stock client does (more than the
        // two it may own), and then, with room made, its own two.
        let echo = upd(&[(10, 1, "{}"), (20, 1, "{}"), (30, 1, "{}")]);
        let a = p.apply(4, None, &echo).unwrap();
        assert!(a.forward.is_none());
        p.remove_peer(2);
        p.remove_peer(3);
        p.apply(4, None, &upd(&[(40, 1, "{}"), (41, 1, "{}")]))
            .unwrap();
        assert_eq!(p.owned.get(&4), Some(&2));
    }
}
