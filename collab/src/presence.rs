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
    /// live state. With an `identity`, the `user` field of every state the
    /// peer announces is replaced by the server's account data, and a
    /// state another user's connection owns cannot be taken over.
    pub fn apply(
        &mut self,
        peer: PeerId,
        identity: Option<&Identity>,
        update: &AwarenessUpdate,
    ) -> Applied {
        let mut forward = Vec::new();
        let mut bounce = Vec::new();
        let mut stamped = false;
        for (client, incoming) in &update.clients {
            let id = client.get();
            let is_null = &*incoming.json == NULL_STATE;
            let accepted = match self.entries.get(&id) {
                None => true,
                Some(cur) => {
                    let foreign = cur.state.is_some()
                        && matches!((&cur.owner_user, identity), (Some(u), Some(me)) if *u != me.user_id);
                    !foreign
                        && (incoming.clock > cur.clock
                            || (incoming.clock == cur.clock && is_null && cur.state.is_some()))
                }
            };
            if accepted {
                let json = match identity {
                    Some(me) if !is_null => {
                        stamped = true;
                        stamp(&incoming.json, me)
                    }
                    _ => incoming.json.clone(),
                };
                let entry = Entry {
                    clock: incoming.clock,
                    state: (!is_null).then(|| json.clone()),
                    owner: (!is_null).then_some(peer),
                    owner_user: identity.filter(|_| !is_null).map(|me| me.user_id.clone()),
                    replica: None,
                    removed_at: is_null.then(Instant::now),
                };
                self.entries.insert(id, entry);
                forward.push((id, incoming.clock, json));
            } else if let Some(cur) = self.entries.get(&id) {
                if !is_null && cur.state.is_none() {
                    bounce.push((id, cur.clock, Arc::from(NULL_STATE)));
                }
            }
        }
        let all_accepted = !stamped && forward.len() == update.clients.len();
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
                e.owner_user = None;
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

    /// Applies presence another replica relayed (already stamped there).
    /// Returns what changed, to send to local peers.
    pub fn apply_remote(
        &mut self,
        replica: &Arc<str>,
        update: &AwarenessUpdate,
    ) -> Option<AwarenessUpdate> {
        let mut forward = Vec::new();
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
                self.entries.insert(
                    id,
                    Entry {
                        clock: incoming.clock,
                        state: (!is_null).then(|| incoming.json.clone()),
                        owner: None,
                        owner_user: None,
                        replica: (!is_null).then(|| replica.clone()),
                        removed_at: is_null.then(Instant::now),
                    },
                );
                forward.push((id, incoming.clock, incoming.json.clone()));
            }
        }
        update_of(forward)
    }

    /// Removes every state relayed from `replica` (it died).
    pub fn remove_replica(&mut self, replica: &str) -> Option<AwarenessUpdate> {
        let now = Instant::now();
        let mut removed = Vec::new();
        for (id, e) in self.entries.iter_mut() {
            if e.replica.as_deref() == Some(replica) && e.state.is_some() {
                e.clock = e.clock.wrapping_add(1);
                e.state = None;
                e.replica = None;
                e.removed_at = Some(now);
                removed.push((*id, e.clock, Arc::from(NULL_STATE)));
            }
        }
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
        self.entries.values().filter(|e| e.state.is_some()).count()
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
                .all_accepted
        );
        p.apply(2, None, &upd(&[(20, 1, r#"{"u":"b"}"#)]));
        let removal = p.remove_peer(1).unwrap();
        let e = &removal.clients[&ClientID::new(10)];
        assert_eq!((e.clock, &*e.json), (4, "null"));
        assert_eq!(p.live(), 1);
        assert!(p.remove_peer(1).is_none(), "nothing left to remove");
    }

    #[test]
    fn returning_client_with_stale_clock_gets_the_tombstone_back() {
        let mut p = Presence::default();
        p.apply(1, None, &upd(&[(10, 3, "{}")]));
        p.remove_peer(1);
        // Reconnects on a new connection with its old clock.
        let applied = p.apply(2, None, &upd(&[(10, 3, "{}")]));
        assert!(applied.forward.is_none());
        let bounce = applied.bounce.unwrap();
        assert_eq!(bounce.clients[&ClientID::new(10)].clock, 4);
        // The client bumps its clock above the tombstone and resends.
        let applied = p.apply(2, None, &upd(&[(10, 5, "{}")]));
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
        }
    }

    #[test]
    fn user_field_comes_from_the_account_not_the_client() {
        let mut p = Presence::default();
        let claimed = r##"{"user":{"name":"The CEO","color":"#ff0000"},"cursor":5}"##;
        let applied = p.apply(1, Some(&who("u1")), &upd(&[(10, 1, claimed)]));
        assert!(!applied.all_accepted, "stamped states must be re-encoded");
        let json = &applied.forward.unwrap().clients[&ClientID::new(10)].json;
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["user"]["name"], "u1 name");
        assert_eq!(v["user"]["id"], "u1");
        assert_eq!(v["cursor"], 5);
        // Another user cannot take over that client's presence.
        let applied = p.apply(2, Some(&who("u2")), &upd(&[(10, 9, "{}")]));
        assert!(applied.forward.is_none());
        // The same user on a new connection can.
        assert!(p
            .apply(3, Some(&who("u1")), &upd(&[(10, 9, "{}")]))
            .forward
            .is_some());
    }

    #[test]
    fn remote_states_go_when_their_replica_dies() {
        let mut p = Presence::default();
        let r: Arc<str> = Arc::from("r2");
        assert!(p.apply_remote(&r, &upd(&[(10, 1, "{}")])).is_some());
        p.apply(1, None, &upd(&[(20, 1, "{}")]));
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
        p.apply(1, None, &upd(&[(10, 3, "{}")]));
        let applied = p.apply(2, None, &upd(&[(10, 3, "{}")]));
        assert!(applied.forward.is_none() && applied.bounce.is_none());
        assert!(p.remove_peer(2).is_none());
        assert!(p.remove_peer(1).is_some());
    }
}
