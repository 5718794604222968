//! The room's peers: joining, access and session changes, presence
//! messages, and removing peers together with their presence.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;
use yrs::sync::awareness::AwarenessUpdate;
use yrs::{ReadTxn, Transact};

use super::{Command, Room};
use crate::access::Grant;
use crate::bus::BusKind;
use crate::error::{CloseReason, CollabError};
use crate::peer::{Identity, Peer, PeerId, PresenceTag, SessionSet};
use crate::protocol;

impl Room {
    /// Adds a peer once what is pending is stored: it is sent the room's
    /// state vector and presence, then `reply` lets its connection go on.
    pub(super) async fn join(
        &mut self,
        peer: Arc<Peer>,
        reply: oneshot::Sender<Result<(), CollabError>>,
    ) {
        self.settle().await;
        if self.failed {
            let _ = reply.send(Err(CollabError::RoomClosing));
            return;
        }
        let sv = self.doc.transact().state_vector();
        peer.reply(protocol::encode_step1(&sv));
        if let Some(states) = self.presence.snapshot() {
            peer.reply(protocol::encode_awareness(&states));
        }
        if let Some(who) = &peer.identity {
            *self
                .stats
                .users
                .lock()
                .entry(who.user_id.clone())
                .or_default() += 1;
        }
        self.peers.insert(peer.id, peer);
        self.idle_since = None;
        let _ = reply.send(Ok(()));
    }

    /// A user's access changed: `None` closes their connections
    /// ([`CloseReason::Forbidden`]), `Some(readonly)` sets their write right.
    pub(super) fn set_access(&mut self, user: Arc<str>, readonly: Option<bool>) {
        let affected: Vec<PeerId> = self
            .peers
            .values()
            .filter(|p| p.identity.as_ref().is_some_and(|i| i.user_id == user))
            .map(|p| p.id)
            .collect();
        for id in affected {
            match readonly {
                Some(ro) => self.peers[&id].set_readonly(ro),
                None => {
                    self.peers[&id].close(CloseReason::Forbidden);
                    self.remove_peers(vec![id]);
                }
            }
        }
    }

    /// Closes the connections `user` opened with one of `sessions`
    /// ([`CloseReason::SessionEnded`]).
    pub(super) fn end_sessions(&mut self, user: Arc<str>, sessions: SessionSet) {
        let ended: Vec<PeerId> = self
            .peers
            .values()
            .filter(|p| {
                p.identity.as_ref().is_some_and(|i| {
                    i.user_id == user && i.session.as_ref().is_some_and(|s| sessions.contains(s))
                })
            })
            .map(|p| p.id)
            .collect();
        for id in ended {
            self.shared.metrics.peers_closed_session.inc();
            self.peers[&id].close(CloseReason::SessionEnded);
            self.remove_peers(vec![id]);
        }
    }

    /// Asks the server's access check about every identity connected here,
    /// in the background (the room keeps serving meanwhile); the answers
    /// come back as [`Command::Verdicts`].
    pub(super) fn recheck(&mut self) {
        let Some(check) = self.shared.access_check.get().cloned() else {
            return;
        };
        let mut who: Vec<Identity> = Vec::new();
        for identity in self.peers.values().filter_map(|p| p.identity.as_ref()) {
            let known = who
                .iter()
                .any(|w| w.user_id == identity.user_id && w.session == identity.session);
            if !known {
                who.push(identity.clone());
            }
        }
        if who.is_empty() {
            return;
        }
        let doc = self.name.clone();
        let me = self.me.clone();
        self.shared.tracker.spawn(async move {
            let mut verdicts = Vec::with_capacity(who.len());
            for identity in who {
                match check.check(&doc, &identity).await {
                    Ok(grant) => verdicts.push((identity, grant)),
                    Err(e) => {
                        tracing::warn!(doc = %doc, user = %identity.user_id, error = %e,
                            "cannot re-check a connection's access; keeping it for now");
                    }
                }
            }
            if let Some(tx) = me.upgrade() {
                let _ = tx.send(Command::Verdicts(verdicts)).await;
            }
        });
    }

    /// Applies a re-check's answers. They only take rights away: an
    /// answer may predate an access change applied since (which it must
    /// not undo), and a right restored late is harmless where one kept is
    /// not — the client gets it back when it reconnects.
    pub(super) fn apply_verdicts(&mut self, verdicts: Vec<(Identity, Grant)>) {
        for (who, grant) in verdicts {
            match grant {
                Grant::Edit => {}
                Grant::View => self.set_access(who.user_id, Some(true)),
                Grant::Revoked => self.set_access(who.user_id, None),
                Grant::SessionEnded => match who.session {
                    Some(session) => self.end_sessions(who.user_id, SessionSet::One(session)),
                    None => self.set_access(who.user_id, None),
                },
            }
        }
    }

    /// Applies a peer's presence message within the presence limits and
    /// relays what it changed, here and to the other replicas.
    pub(super) fn on_awareness(
        &mut self,
        peer: PeerId,
        update: AwarenessUpdate,
        frame: Option<Bytes>,
    ) {
        self.shared.metrics.awareness_in.inc();
        let identity = self.peers.get(&peer).and_then(|p| p.identity.clone());
        let applied = match self.presence.apply(peer, identity.as_ref(), &update) {
            Ok(applied) => applied,
            Err(e) => {
                self.reject(peer, CloseReason::Policy(e.to_string()));
                return;
            }
        };
        if applied.refused > 0 {
            self.shared
                .metrics
                .awareness_refused
                .inc_by(applied.refused as u64);
        }
        if let Some(bounce) = applied.bounce {
            self.send_to(peer, protocol::encode_awareness(&bounce));
        }
        if let Some(forward) = applied.forward {
            self.publish_awareness(&forward);
            let frame = frame.filter(|_| applied.all_accepted);
            self.broadcast_presence(forward, frame, Some(peer));
        }
    }

    /// Forgets peers and tells the others their presence is gone.
    pub(super) fn remove_peers(&mut self, mut ids: Vec<PeerId>) {
        while let Some(id) = ids.pop() {
            let Some(peer) = self.peers.remove(&id) else {
                continue;
            };
            self.acks.remove(&id);
            self.acked.remove(&id);
            if let Some(who) = &peer.identity {
                let mut users = self.stats.users.lock();
                if let Some(n) = users.get_mut(&who.user_id) {
                    *n -= 1;
                    if *n == 0 {
                        users.remove(&who.user_id);
                    }
                }
            }
            if peer.closed() == Some(CloseReason::Lagging) {
                self.shared.metrics.peers_closed_lag.inc();
                tracing::info!(doc = %self.name, peer = id, "closed a peer that fell behind");
            }
            if let Some(removal) = self.presence.remove_peer(id) {
                // What is held may carry this peer's last states: they go
                // first, so the removal is the last word.
                self.send_held_presence();
                self.publish_awareness(&removal);
                let msg = protocol::encode_awareness(&removal);
                let tag = PresenceTag::new(removal.clients.keys().map(|c| c.get()));
                let mut replaced = 0u64;
                for (other, p) in &self.peers {
                    match p.send_presence(msg.clone(), &tag) {
                        Some(n) => replaced += n as u64,
                        None => ids.push(*other),
                    }
                }
                if replaced > 0 {
                    self.shared.metrics.awareness_coalesced.inc_by(replaced);
                }
            }
        }
    }

    /// Sends this replica's presence changes to the other replicas.
    pub(super) fn publish_awareness(&self, update: &AwarenessUpdate) {
        if let Some(bus) = self.bus_out() {
            use yrs::updates::encoder::Encode;
            bus.publish(
                &self.name,
                BusKind::Awareness,
                Bytes::from(update.encode_v1()),
            );
        }
    }
}
