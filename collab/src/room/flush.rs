//! Storing what is pending, then sending it on: the one rule (nothing is
//! broadcast before the store has it), broadcasts and durable acks.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use coform_storage::StoreError;
use tracing::Instrument;
use yrs::sync::awareness::AwarenessUpdate;

use super::{Pending, Room};
use crate::bus::BusKind;
use crate::error::CollabError;
use crate::peer::{PeerId, PresenceTag};
use crate::protocol;

impl Room {
    /// Stores every pending update, then sends each to all peers but its
    /// sender. On a store failure nothing is sent and the room fails: its
    /// peers reconnect and their clients resend what was not stored.
    pub(super) async fn flush(&mut self) {
        if self.pending.is_empty() || self.failed {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let payloads: Vec<Bytes> = pending
            .iter()
            .flat_map(|p| [Some(&p.payload), p.repair.as_ref().map(|r| &r.payload)])
            .flatten()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect();
        let bytes: u64 = payloads.iter().map(|p| p.len() as u64).sum();
        let started = Instant::now();
        let span = tracing::debug_span!("store.append", doc = %self.name, updates = payloads.len());
        match self
            .shared
            .store
            .append(&self.name, payloads)
            .instrument(span)
            .await
        {
            Ok(ids) => {
                let metrics = &self.shared.metrics;
                metrics.store_append.observe(started.elapsed());
                metrics.updates_in.inc_by(ids.len() as u64);
                self.log_entries += ids.len() as u64;
                self.log_bytes += bytes;
                let now = now_ms();
                self.stats.last_update_ms.store(now, Relaxed);
                self.count_edits(&pending, now);
                for p in pending {
                    self.send_on(p);
                }
            }
            Err(StoreError::Deleted(_)) => {
                // Deleted for good, maybe by another replica whose
                // eviction has not arrived yet: the tombstone refused
                // these updates, and the room closes its peers with 4403.
                tracing::info!(doc = %self.name, "the document was deleted; closing its room");
                self.failed = true;
                self.deleted = true;
                for p in pending {
                    if let Some(ack) = p.ack {
                        let _ = ack.send(Err(CollabError::Store(StoreError::Deleted(
                            self.name.to_string(),
                        ))));
                    }
                }
            }
            Err(e) => {
                self.shared.metrics.store_failures.inc();
                tracing::error!(doc = %self.name, error = %e, "store append failed; closing room");
                self.failed = true;
                for p in pending {
                    if let Some(ack) = p.ack {
                        let _ = ack.send(Err(CollabError::RoomClosing));
                    }
                }
            }
        }
    }

    /// Sends one stored entry on: its update to every peer but its sender,
    /// then its repair (if any) to every peer, with a notice to those that
    /// take Coform's extensions; one update to the other replicas.
    fn send_on(&mut self, p: Pending) {
        if !p.payload.is_empty() {
            self.broadcast(&p.frame, p.origin);
        }
        let mut published = p.payload;
        if let Some(repair) = p.repair {
            self.broadcast(&repair.frame, None);
            let ack_peers: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, peer)| peer.acks)
                .map(|(id, _)| *id)
                .collect();
            for id in ack_peers {
                let notice = if Some(id) == p.origin {
                    &repair.notice_sender
                } else {
                    &repair.notice_others
                };
                self.send_to(id, notice.clone());
            }
            published = if published.is_empty() {
                repair.payload
            } else {
                match yrs::merge_updates_v1([&published[..], &repair.payload[..]]) {
                    Ok(merged) => Bytes::from(merged),
                    // Cannot happen for updates this room applied; sending
                    // the two apart is still correct, only less tidy.
                    Err(_) => {
                        if let Some(bus) = self.bus_out() {
                            bus.publish(&self.name, BusKind::Update, published);
                        }
                        repair.payload
                    }
                }
            };
        }
        if let Some(bus) = self.bus_out() {
            bus.publish(&self.name, BusKind::Update, published);
        }
        if let Some(ack) = p.ack {
            let _ = ack.send(Ok(()));
        }
    }

    /// Counts the stored updates that came from connections, and who sent
    /// them, for usage figures.
    fn count_edits(&self, stored: &[Pending], at: i64) {
        let mut updates = 0;
        let mut users: Vec<Arc<str>> = Vec::new();
        for origin in stored.iter().filter_map(|p| p.origin) {
            updates += 1;
            let user = self
                .peers
                .get(&origin)
                .and_then(|p| p.identity.as_ref())
                .map(|i| i.user_id.clone());
            if let Some(user) = user {
                users.retain(|u| *u != user);
                users.push(user);
            }
        }
        if updates > 0 {
            self.shared.count_edits(&self.name, updates, users, at);
        }
    }

    /// Sends a direct answer to `peer` (not counted as broadcast backlog).
    pub(super) fn send_to(&mut self, peer: PeerId, msg: Bytes) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let len = msg.len() as u64;
        if p.reply(msg) {
            self.shared.metrics.bytes_out.inc_by(len);
        } else {
            self.remove_peers(vec![peer]);
        }
    }

    /// Queues `msg` to every peer except `except`. Peers whose queue is
    /// full are closed (1013) and removed, and their presence with them.
    pub(super) fn broadcast(&mut self, msg: &Bytes, except: Option<PeerId>) {
        let mut lagging = Vec::new();
        let mut sent = 0u64;
        for (id, p) in &self.peers {
            if Some(*id) == except {
                continue;
            }
            if p.send(msg.clone()) {
                sent += 1;
            } else {
                lagging.push(*id);
            }
        }
        let metrics = &self.shared.metrics;
        if msg.first() == Some(&(protocol::MSG_SYNC as u8)) {
            metrics.updates_out.inc_by(sent);
        }
        metrics.bytes_out.inc_by(sent * msg.len() as u64);
        if !lagging.is_empty() {
            self.remove_peers(lagging);
        }
    }

    /// Sends a presence change to every peer except `except`: at once
    /// when the room's last presence broadcast is at least a presence
    /// window ago, otherwise merged with the other changes of this window
    /// and sent when it ends (see `presence_out`).
    pub(super) fn broadcast_presence(
        &mut self,
        update: AwarenessUpdate,
        frame: Option<Bytes>,
        except: Option<PeerId>,
    ) {
        let window = self.shared.config.presence_window;
        let now = tokio::time::Instant::now();
        if let Some(batch) = self.presence_out.offer(window, update, frame, except, now) {
            self.send_presence_now(&batch.update, batch.frame, batch.except);
        }
    }

    /// Sends the presence changes held for this window.
    pub(super) fn send_held_presence(&mut self) {
        if let Some(batch) = self.presence_out.take(tokio::time::Instant::now()) {
            self.send_presence_now(&batch.update, batch.frame, batch.except);
        }
    }

    /// Queues a presence message carrying the clients of `update` (its
    /// encoding, or `frame` when that is the same message as received) to
    /// every peer except `except`. A state still queued to a slow peer is
    /// replaced by the newer one (see [`crate::peer::Peer::send_presence`]).
    fn send_presence_now(
        &mut self,
        update: &AwarenessUpdate,
        frame: Option<Bytes>,
        except: Option<PeerId>,
    ) {
        let msg = frame.unwrap_or_else(|| protocol::encode_awareness(update));
        let tag = PresenceTag::new(update.clients.keys().map(|c| c.get()));
        let mut lagging = Vec::new();
        let mut sent = 0u64;
        let mut replaced = 0u64;
        for (id, p) in &self.peers {
            if Some(*id) == except {
                continue;
            }
            match p.send_presence(msg.clone(), &tag) {
                Some(n) => {
                    sent += 1;
                    replaced += n as u64;
                }
                None => lagging.push(*id),
            }
        }
        let metrics = &self.shared.metrics;
        metrics.bytes_out.inc_by(sent * msg.len() as u64);
        if replaced > 0 {
            metrics.awareness_coalesced.inc_by(replaced);
        }
        if !lagging.is_empty() {
            self.remove_peers(lagging);
        }
    }

    /// Tells peers that asked which of their update messages are now
    /// durable (everything handled this turn has been flushed).
    pub(super) fn send_acks(&mut self) {
        let acks = std::mem::take(&mut self.acks);
        for (peer, ack) in acks {
            for n in ack.refused {
                self.send_to(peer, protocol::encode_ack(protocol::MSG_REJECTED, n));
            }
            self.send_to(
                peer,
                protocol::encode_ack(protocol::MSG_SAVED, ack.received),
            );
            if self.peers.contains_key(&peer) {
                self.acked.insert(peer, ack.received);
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
