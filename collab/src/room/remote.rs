//! Messages from other replicas through the bus: their updates (already
//! stored), their presence, and healing after a gap — by asking the
//! replica whose messages were missed, or from the store.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use coform_storage::StoreError;
use tracing::Instrument;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ReadTxn, StateVector, Transact, Update};

use super::Room;
use crate::bus::{Addressed, BusKind, BusMessage, EXCHANGE_TIMEOUT};
use crate::compaction::stored_updates;
use crate::nesting;
use crate::protocol;

/// A heal asked of one replica, waiting for its answer.
pub(super) struct Exchange {
    /// When the first request went out (for the heal's duration).
    started: Instant,
    /// When the room stops waiting and reloads from the store.
    deadline: tokio::time::Instant,
}

impl Room {
    /// Handles a message another replica published on this document.
    pub(super) async fn remote(&mut self, msg: BusMessage) {
        if msg.kind == BusKind::Leaving {
            self.others.remove(&msg.replica);
            return;
        }
        if !msg.replica.is_empty() && !self.others.contains(&msg.replica) {
            self.meet(&msg);
        }
        match msg.kind {
            BusKind::Update => {
                // Already stored (and checked) by its replica: apply and
                // pass on.
                if !self.apply_remote(&msg.payload, &msg.replica) {
                    return;
                }
                self.full_state = None;
                self.doc_bytes += msg.payload.len();
                self.broadcast(&protocol::encode_update(&msg.payload), None);
                // Valid where it was made, it may not be valid with what
                // this replica's clients did meanwhile.
                self.check_schema(None);
            }
            BusKind::Awareness => {
                let Ok(update) = yrs::sync::awareness::AwarenessUpdate::decode_v1(&msg.payload)
                else {
                    return;
                };
                if let Some(forward) = self.presence.apply_remote(&msg.replica, &update) {
                    self.broadcast_presence(forward, None, None);
                }
            }
            BusKind::QueryAwareness => {
                if let Some(local) = self.presence.local_snapshot() {
                    self.publish_awareness(&local);
                }
            }
            // No sender: the subscription reconnected, and anything may
            // have been missed, from replicas gone since too.
            // Others may have loaded the document meanwhile, unheard.
            BusKind::Heal if msg.replica.is_empty() => {
                self.heal_from_store("reconnect").await;
                self.announce();
            }
            // Only this replica's messages were missed (a sequence gap, or
            // its hint that it failed to publish): it has them all.
            BusKind::Heal => self.ask(msg.replica),
            BusKind::SyncRequest => self.answer(msg).await,
            BusKind::SyncReply => self.on_reply(msg),
            // Access changes travel on the access channel, never here.
            BusKind::Evict | BusKind::SetAccess | BusKind::EndSessions | BusKind::Leaving => {}
        }
    }

    /// The bus, when another replica holds the document: updates and
    /// presence are published only then.
    pub(super) fn bus_out(&self) -> Option<&crate::bus::Bus> {
        self.shared.bus.as_ref().filter(|_| !self.others.is_empty())
    }

    /// Tells every replica holding the document that this one does now:
    /// each answers with what this one lacks (it may have stored updates
    /// without publishing them, believing itself alone), and meets it.
    pub(super) fn announce(&mut self) {
        self.request("");
    }

    /// Publishes this room's state vector to `to` (everyone if empty):
    /// "send me what I lack".
    fn request(&self, to: &str) {
        if let Some(bus) = &self.shared.bus {
            let sv = self.doc.transact().state_vector().encode_v1();
            bus.publish(&self.name, BusKind::SyncRequest, Addressed::encode(to, &sv));
        }
    }

    /// First word from `msg.replica` on this document: from now on this
    /// room publishes for its sake. What this room stored unpublished
    /// before may be missing there: unless the message is itself an
    /// answer (or a heal, which asks anyway), ask it what this room lacks
    /// (it may have stored updates unpublished too), and tell it who is
    /// present here.
    fn meet(&mut self, msg: &BusMessage) {
        self.others.insert(msg.replica.clone());
        if msg.kind != BusKind::SyncReply && msg.kind != BusKind::Heal {
            self.request(&msg.replica);
        }
        if let Some(local) = self.presence.local_snapshot() {
            self.publish_awareness(&local);
        }
    }

    /// Applies an update from the bus. Checked again all the same: the bus
    /// is another way in, and nothing nested too deeply may reach yrs.
    /// `false` if it was refused, or had to be taken back (the room then
    /// rebuilds from the store).
    fn apply_remote(&mut self, payload: &[u8], replica: &str) -> bool {
        let shape = match nesting::scan_update_v1(payload) {
            Ok(shape) => shape,
            Err(e) => {
                tracing::warn!(doc = %self.name, replica, error = %e, "refused an update from the bus");
                return false;
            }
        };
        let Ok(update) = Update::decode_v1(payload) else {
            return false;
        };
        let doc = &self.doc;
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut txn = doc.transact_mut();
            txn.apply_update(update)?;
            // A waiting parent is fine here (replicas' messages may
            // arrive out of order); too deep is not.
            let verdict = nesting::check_anchors(&txn, &shape.anchors);
            Ok::<_, yrs::error::UpdateError>(!matches!(verdict, Err(nesting::AnchorError::TooDeep)))
        }));
        if !matches!(applied, Ok(Ok(true))) {
            self.reload = true;
            return false;
        }
        true
    }

    /// Asks `replica` for what this room lacks of the document: publishes
    /// this room's state vector to it, and reloads from the store if no
    /// answer comes within [`EXCHANGE_TIMEOUT`].
    fn ask(&mut self, replica: Arc<str>) {
        if self.shared.bus.is_none() {
            return;
        }
        self.request(&replica);
        // Ask again on a later gap (what was missed may be newer than the
        // first answer), but time the heal from the first request.
        let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
        self.exchanges
            .entry(replica)
            .and_modify(|e| e.deadline = deadline)
            .or_insert(Exchange {
                started: Instant::now(),
                deadline,
            });
    }

    /// Answers another replica's request with what its state vector lacks.
    /// Everything answered is stored first, as for a joining client.
    async fn answer(&mut self, msg: BusMessage) {
        let Some(request) = Addressed::decode(&msg.payload) else {
            return;
        };
        let Ok(sv) = StateVector::decode_v1(&request.body) else {
            tracing::warn!(doc = %self.name, replica = %msg.replica, "a sync request without a readable state vector; ignored");
            return;
        };
        self.settle().await;
        if self.failed {
            return;
        }
        let doc = &self.doc;
        let Ok(update) = std::panic::catch_unwind(AssertUnwindSafe(|| {
            doc.transact().encode_state_as_update_v1(&sv)
        })) else {
            return;
        };
        if let Some(bus) = &self.shared.bus {
            bus.publish(
                &self.name,
                BusKind::SyncReply,
                Addressed::encode(&msg.replica, &update),
            );
        }
    }

    /// Applies the answer of a replica this room asked, and sends local
    /// peers what was new to them.
    fn on_reply(&mut self, msg: BusMessage) {
        let Some(reply) = Addressed::decode(&msg.payload) else {
            return;
        };
        let asked = self.exchanges.remove(&msg.replica);
        let before = self.doc.transact().state_vector();
        if !self.apply_remote(&reply.body, &msg.replica) {
            return;
        }
        let metrics = &self.shared.metrics;
        metrics
            .bus_heal_bytes
            .get_or_create(&[("via", "exchange")])
            .inc_by(reply.body.len() as u64);
        if let Some(asked) = asked {
            metrics
                .bus_heals
                .get_or_create(&[("via", "exchange")])
                .inc();
            metrics.heal_exchange.observe(asked.started.elapsed());
        }
        self.send_new_since(&before);
    }

    /// The earliest time an exchange gives up waiting, if one is waiting.
    pub(super) fn exchange_due(&self) -> Option<tokio::time::Instant> {
        self.exchanges.values().map(|e| e.deadline).min()
    }

    /// Reloads from the store for every exchange whose replica did not
    /// answer in time (one load covers them all).
    pub(super) async fn exchanges_timed_out(&mut self) {
        let now = tokio::time::Instant::now();
        let before = self.exchanges.len();
        self.exchanges.retain(|_, e| e.deadline > now);
        if self.exchanges.len() < before {
            self.heal_from_store("no answer from the replica asked")
                .await;
        }
    }

    /// `replica` died: an exchange waiting for it is answered by the
    /// store at once.
    pub(super) async fn replica_gone_mid_exchange(&mut self, replica: &str) {
        if self.exchanges.remove(replica).is_some() {
            self.heal_from_store("the replica asked died").await;
        }
    }

    /// Catches up from the store: applies every stored update (idempotent)
    /// and sends local peers the difference.
    async fn heal_from_store(&mut self, why: &'static str) {
        let started = Instant::now();
        self.flush().await;
        let span = tracing::debug_span!("store.load", doc = %self.name, reason = "heal");
        let stored = match self.shared.store.load(&self.name).instrument(span).await {
            Ok(stored) => stored,
            Err(StoreError::Deleted(_)) => {
                tracing::info!(doc = %self.name, "heal: the document was deleted; closing its room");
                self.failed = true;
                self.deleted = true;
                return;
            }
            Err(e) => {
                tracing::warn!(doc = %self.name, error = %e, "heal: cannot read the store");
                return;
            }
        };
        tracing::debug!(doc = %self.name, why, "healing from the store");
        let before = self.doc.transact().state_vector();
        let doc = &self.doc;
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut txn = doc.transact_mut();
            for data in stored_updates(&stored) {
                if let Ok(u) = Update::decode_v1(data) {
                    let _ = txn.apply_update(u);
                }
            }
        }));
        if applied.is_err() {
            self.reload = true;
            return;
        }
        // Whatever was asked of other replicas is covered now.
        self.exchanges.clear();
        let metrics = self.shared.metrics.clone();
        metrics
            .bus_heal_bytes
            .get_or_create(&[("via", "store")])
            .inc_by(stored.byte_len() as u64);
        metrics.bus_heals.get_or_create(&[("via", "store")]).inc();
        self.send_new_since(&before);
        metrics.heal_store.observe(started.elapsed());
        // Other replicas may have missed this replica's presence too.
        if let Some(local) = self.presence.local_snapshot() {
            self.publish_awareness(&local);
        }
    }

    /// Sends local peers what the document gained since `before`, and
    /// checks the form it now holds.
    fn send_new_since(&mut self, before: &StateVector) {
        let diff = self.doc.transact().encode_state_as_update_v1(before);
        let changed = Update::decode_v1(&diff)
            .map(|u| !u.is_empty())
            .unwrap_or(false);
        if changed {
            self.full_state = None;
            self.broadcast(&protocol::encode_update(&diff), None);
        }
        self.check_schema(None);
    }
}
