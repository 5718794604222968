//! A peer's sync messages and updates, and server-side edits: applied to
//! the room's `Doc` and kept pending until stored, or refused.

use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use tokio::sync::oneshot;
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, StateVector, Transact, Update};

use super::{DocEdit, Pending, Repair, Room};
use crate::error::{CloseReason, CollabError};
use crate::nesting;
use crate::peer::PeerId;
use crate::protocol::{self, Inbound, InboundUpdate};

impl Room {
    /// Applies a server-side edit as one update, stored and broadcast like
    /// any other; `reply` is answered once it is stored.
    pub(super) fn server_edit(
        &mut self,
        edit: DocEdit,
        reply: oneshot::Sender<Result<(), CollabError>>,
    ) {
        let doc = &self.doc;
        let update = match std::panic::catch_unwind(AssertUnwindSafe(|| edit(doc))) {
            Ok(Ok(update)) => update,
            Ok(Err(e)) => {
                let _ = reply.send(Err(CollabError::BadUpdate(e)));
                return;
            }
            Err(_) => {
                self.shared.metrics.update_panics.inc();
                tracing::error!(doc = %self.name, "a server-side edit panicked; reloading room");
                self.reload = true;
                let _ = reply.send(Err(CollabError::Panicked("an edit of the document".into())));
                return;
            }
        };
        let empty = Update::decode_v1(&update)
            .map(|u| u.is_empty())
            .unwrap_or(true);
        if empty {
            let _ = reply.send(Ok(()));
            return;
        }
        self.full_state = None;
        self.doc_bytes += update.len();
        let payload = Bytes::from(update);
        let frame = protocol::encode_update(&payload);
        self.pending.push(Pending {
            origin: None,
            payload,
            frame,
            ack: Some(reply),
            repair: None,
        });
        self.check_schema(None);
    }

    pub(super) async fn on_message(&mut self, peer: PeerId, msg: Inbound) {
        if self.reload {
            // An update was taken back: nothing may see or build on the
            // document before it is rebuilt.
            self.settle().await;
        }
        match msg {
            Inbound::SyncStep1(sv) => {
                self.flush().await;
                let reply = self.sync_step2(&sv);
                self.send_to(peer, reply);
            }
            Inbound::Update(update) => {
                if self.peers.get(&peer).is_some_and(|p| p.is_readonly()) {
                    // Viewers' edits are never applied, stored or relayed.
                    self.shared.metrics.readonly_updates_dropped.inc();
                    return;
                }
                self.apply(peer, update)
            }
            Inbound::Awareness { update, frame } => self.on_awareness(peer, update, frame),
            Inbound::QueryAwareness => {
                if let Some(states) = self.presence.snapshot() {
                    self.send_to(peer, protocol::encode_awareness(&states));
                }
            }
            Inbound::EmptyUpdate => {}
        }
    }

    /// The answer to a sync step 1: what the peer lacks.
    fn sync_step2(&mut self, sv: &StateVector) -> Bytes {
        if sv.is_empty() {
            if let Some(cached) = &self.full_state {
                return cached.clone();
            }
        }
        let update = self.doc.transact().encode_state_as_update_v1(sv);
        let msg = protocol::encode_step2(&update);
        if sv.is_empty() {
            self.full_state = Some(msg.clone());
        }
        msg
    }

    fn apply(&mut self, peer: PeerId, u: InboundUpdate) {
        let limit = self.shared.config.limits.max_doc_bytes;
        if self.doc_bytes + u.payload.len() > limit {
            self.reject(peer, CloseReason::DocTooBig);
            return;
        }
        let doc = &self.doc;
        let (update, anchors) = (u.update, u.anchors);
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut txn = doc.transact_mut();
            txn.apply_update(update)?;
            Ok(nesting::check_anchors(&txn, &anchors))
        }));
        match applied {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                // Applied, but it must not stay: the store never gets it,
                // and the document is rebuilt from the store before anyone
                // sees or builds on it.
                self.shared.metrics.updates_refused_nesting.inc();
                self.reload = true;
                self.reject(peer, CloseReason::Policy(e.to_string()));
                return;
            }
            Ok(Err(e)) => {
                let e: yrs::error::UpdateError = e;
                self.reject(
                    peer,
                    CloseReason::BadFrame(format!("update does not apply: {e}")),
                );
                return;
            }
            Err(_) => {
                // The doc may be half-modified: rebuild it from the store
                // (which has every update but this one) after this turn.
                self.shared.metrics.update_panics.inc();
                tracing::error!(doc = %self.name, peer, "update panicked while applying; reloading room");
                self.reload = true;
                self.reject(
                    peer,
                    CloseReason::BadFrame("update could not be applied".into()),
                );
                return;
            }
        }
        self.full_state = None;
        self.doc_bytes += u.payload.len();
        self.pending.push(Pending {
            origin: Some(peer),
            payload: u.payload,
            frame: u.frame,
            ack: None,
            repair: None,
        });
        self.check_schema(Some(peer));
    }

    /// Checks what the update just applied touched against the form model
    /// and, if it left the form invalid, repairs it at once. The repair
    /// rides with the last pending update (the one that caused it); with
    /// none pending (an update from another replica, already stored), it is
    /// pending on its own. `sender`: the connection whose update it was.
    pub(super) fn check_schema(&mut self, sender: Option<PeerId>) {
        let Some(guard) = &self.guard else {
            return;
        };
        let doc = &self.doc;
        let checked = std::panic::catch_unwind(AssertUnwindSafe(|| guard.check(doc)));
        let repaired = match checked {
            Ok(Some(repaired)) => repaired,
            Ok(None) => return,
            Err(_) => {
                self.shared.metrics.update_panics.inc();
                tracing::error!(doc = %self.name, "the schema check panicked; reloading room");
                self.reload = true;
                return;
            }
        };
        let metrics = &self.shared.metrics;
        metrics.schema_repaired_updates.inc();
        for r in &repaired.repairs {
            metrics
                .schema_repairs
                .get_or_create(&[("action", r.action.as_str())])
                .inc();
        }
        tracing::info!(
            doc = %self.name,
            peer = sender,
            repairs = repaired.repairs.len(),
            first = %repaired.repairs.first().map(|r| r.reason.as_str()).unwrap_or_default(),
            "repaired what an update left invalid"
        );
        let notice = |yours: bool| {
            let json = serde_json::json!({"yours": yours, "repairs": repaired.repairs});
            protocol::encode_repaired(&json.to_string())
        };
        let payload = Bytes::from(repaired.update);
        self.full_state = None;
        self.doc_bytes += payload.len();
        let repair = Repair {
            frame: protocol::encode_update(&payload),
            payload,
            notice_sender: notice(true),
            notice_others: notice(false),
        };
        match self.pending.last_mut() {
            Some(last)
                if last.repair.is_none() && sender.is_some_and(|s| last.origin == Some(s)) =>
            {
                last.repair = Some(repair)
            }
            Some(last)
                if last.repair.is_none()
                    && sender.is_none()
                    && last.origin.is_none()
                    && last.ack.is_some() =>
            {
                last.repair = Some(repair)
            }
            // A repair on its own: the entry carries no update of its own.
            _ => self.pending.push(Pending {
                origin: None,
                payload: Bytes::new(),
                frame: Bytes::new(),
                ack: None,
                repair: Some(repair),
            }),
        }
    }

    pub(super) fn reject(&mut self, peer: PeerId, reason: CloseReason) {
        self.shared.metrics.peers_closed_bad_input.inc();
        tracing::info!(doc = %self.name, peer, ?reason, "closing peer for bad input");
        if let Some(p) = self.peers.get(&peer) {
            p.close(reason);
        }
        self.remove_peers(vec![peer]);
    }
}
