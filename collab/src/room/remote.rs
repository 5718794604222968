//! Messages from other replicas through the bus: their updates (already
//! stored), their presence, and healing from the store after a gap.

use std::panic::AssertUnwindSafe;

use coform_storage::StoreError;
use tracing::Instrument;
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, Transact, Update};

use super::Room;
use crate::bus::{BusKind, BusMessage};
use crate::compaction::stored_updates;
use crate::nesting;
use crate::protocol;

impl Room {
    /// Handles a message another replica published on this document.
    pub(super) async fn remote(&mut self, msg: BusMessage) {
        match msg.kind {
            BusKind::Update => {
                // Already stored (and checked) by its replica: apply and
                // pass on. Checked again all the same: the bus is another
                // way in, and nothing nested too deeply may reach yrs.
                let shape = match nesting::scan_update_v1(&msg.payload) {
                    Ok(shape) => shape,
                    Err(e) => {
                        tracing::warn!(doc = %self.name, replica = %msg.replica, error = %e, "refused an update from the bus");
                        return;
                    }
                };
                let Ok(update) = Update::decode_v1(&msg.payload) else {
                    return;
                };
                let doc = &self.doc;
                let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let mut txn = doc.transact_mut();
                    txn.apply_update(update)?;
                    // A waiting parent is fine here (replicas' messages may
                    // arrive out of order); too deep is not.
                    let verdict = nesting::check_anchors(&txn, &shape.anchors);
                    Ok::<_, yrs::error::UpdateError>(!matches!(
                        verdict,
                        Err(nesting::AnchorError::TooDeep)
                    ))
                }));
                if !matches!(applied, Ok(Ok(true))) {
                    self.reload = true;
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
                use yrs::updates::decoder::Decode as _;
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
            BusKind::Heal => self.heal().await,
            // Access changes travel on the access channel, never here.
            BusKind::Evict | BusKind::SetAccess | BusKind::EndSessions => {}
        }
    }

    /// Catches up from the store after a possible gap on the bus: applies
    /// every stored update (idempotent) and sends local peers the difference.
    async fn heal(&mut self) {
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
        let diff = self.doc.transact().encode_state_as_update_v1(&before);
        let changed = Update::decode_v1(&diff)
            .map(|u| !u.is_empty())
            .unwrap_or(false);
        if changed {
            self.full_state = None;
            self.broadcast(&protocol::encode_update(&diff), None);
        }
        self.check_schema(None);
        // Other replicas may have missed this replica's presence too.
        if let Some(local) = self.presence.local_snapshot() {
            self.publish_awareness(&local);
        }
    }
}
