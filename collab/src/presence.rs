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

use crate::peer::PeerId;

const NULL_STATE: &str = "null";
/// How long a tombstone is kept to recognise a returning client.
const TOMBSTONE_TTL: Duration = Duration::from_secs(30 * 60);

#[derive(Debug)]
struct Entry {
    clock: u32,
    /// `None` = removed (a tombstone).
    state: Option<Arc<str>>,
    /// The connection that announced the live state.
    owner: Option<PeerId>,
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
}

/// Awareness states of one room.
#[derive(Debug, Default)]
pub struct Presence {
    entries: HashMap<u64, Entry>,
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

impl Presence {
    /// Applies `update` sent by `peer`, following the y-protocols rules:
    /// an entry wins if its clock is newer, or equal with a removal of a
    /// live state.
    pub fn apply(&mut self, peer: PeerId, update: &AwarenessUpdate) -> Applied {
        let mut forward = Vec::new();
        let mut bounce = Vec::new();
        for (client, incoming) in &update.clients {
            let id = client.get();
            let is_null = &*incoming.json == NULL_STATE;
            let accepted = match self.entries.get(&id) {
                None => true,
                Some(cur) => {
                    incoming.clock > cur.clock
                        || (incoming.clock == cur.clock && is_null && cur.state.is_some())
                }
            };
            if accepted {
                let entry = Entry {
                    clock: incoming.clock,
                    state: (!is_null).then(|| incoming.json.clone()),
                    owner: (!is_null).then_some(peer),
                    removed_at: is_null.then(Instant::now),
                };
                self.entries.insert(id, entry);
                forward.push((id, incoming.clock, incoming.json.clone()));
            } else if let Some(cur) = self.entries.get(&id) {
                if !is_null && cur.state.is_none() {
                    bounce.push((id, cur.clock, Arc::from(NULL_STATE)));
                }
            }
        }
        let all_accepted = forward.len() == update.clients.len();
        Applied {
            forward: update_of(forward),
            all_accepted,
            bounce: update_of(bounce),
        }
    }

    /// Removes every live state `peer` owned and returns the removal to
    /// send to the remaining peers.
    pub fn remove_peer(&mut self, peer: PeerId) -> Option<AwarenessUpdate> {
        let now = Instant::now();
        let mut removed = Vec::new();
        for (id, e) in self.entries.iter_mut() {
            if e.owner == Some(peer) && e.state.is_some() {
                e.clock = e.clock.wrapping_add(1);
                e.state = None;
                e.owner = None;
                e.removed_at = Some(now);
                removed.push((*id, e.clock, Arc::from(NULL_STATE)));
            }
        }
        self.entries.retain(|_, e| {
            e.removed_at
                .is_none_or(|at| now.duration_since(at) < TOMBSTONE_TTL)
        });
        update_of(removed)
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
        self.entries.values().filter(|e| e.state.is_some()).count()
    }
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
        assert!(p.apply(1, &upd(&[(10, 3, r#"{"u":"a"}"#)])).all_accepted);
        p.apply(2, &upd(&[(20, 1, r#"{"u":"b"}"#)]));
        let removal = p.remove_peer(1).unwrap();
        let e = &removal.clients[&ClientID::new(10)];
        assert_eq!((e.clock, &*e.json), (4, "null"));
        assert_eq!(p.live(), 1);
        assert!(p.remove_peer(1).is_none(), "nothing left to remove");
    }

    #[test]
    fn returning_client_with_stale_clock_gets_the_tombstone_back() {
        let mut p = Presence::default();
        p.apply(1, &upd(&[(10, 3, "{}")]));
        p.remove_peer(1);
        // Reconnects on a new connection with its old clock.
        let applied = p.apply(2, &upd(&[(10, 3, "{}")]));
        assert!(applied.forward.is_none());
        let bounce = applied.bounce.unwrap();
        assert_eq!(bounce.clients[&ClientID::new(10)].clock, 4);
        // The client bumps its clock above the tombstone and resends.
        let applied = p.apply(2, &upd(&[(10, 5, "{}")]));
        assert!(applied.forward.is_some() && applied.bounce.is_none());
        assert_eq!(p.live(), 1);
        // Now owned by the new connection.
        assert!(p.remove_peer(2).is_some());
    }

    #[test]
    fn echoed_states_neither_change_owner_nor_forward() {
        let mut p = Presence::default();
        p.apply(1, &upd(&[(10, 3, "{}")]));
        let applied = p.apply(2, &upd(&[(10, 3, "{}")]));
        assert!(applied.forward.is_none() && applied.bounce.is_none());
        assert!(p.remove_peer(2).is_none());
        assert!(p.remove_peer(1).is_some());
    }
}
