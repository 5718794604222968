//! Compaction while the room is loaded, and the end of a room: leaving
//! the registry, closing peers, and folding its log into a snapshot.

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Command, Exit, Room};
use crate::bus::BusKind;
use crate::compaction::Compacted;
use crate::error::{CloseReason, CollabError};

impl Room {
    pub(super) fn maybe_compact(&mut self) {
        let cfg = &self.shared.config;
        let due = self.log_entries >= cfg.compact_after_updates
            || self.log_bytes >= cfg.compact_after_bytes;
        if self.compacting || !due {
            return;
        }
        self.compacting = true;
        let shared = self.shared.clone();
        let name = self.name.clone();
        let me = self.me.clone();
        self.shared.tracker.spawn(async move {
            let result = shared.compact(&name).await;
            if let Some(tx) = me.upgrade() {
                let _ = tx.send(Command::Compacted(result)).await;
            }
        });
    }

    pub(super) fn compacted(&mut self, c: Compacted) {
        self.log_entries = self.log_entries.saturating_sub(c.merged_entries);
        self.log_bytes = self.log_bytes.saturating_sub(c.merged_bytes);
        self.doc_bytes = (self.doc_bytes + c.snapshot_bytes as usize)
            .saturating_sub(c.merged_bytes as usize + self.snapshot_bytes);
        self.snapshot_bytes = c.snapshot_bytes as usize;
    }

    /// Leaves the registry, refuses late joins (they retry on a new room),
    /// closes peers, and compacts what this room appended.
    pub(super) async fn finish(mut self, exit: Exit, mut rx: mpsc::Receiver<Command>) {
        // Unsubscribe before leaving the registry: a later room of the same
        // document subscribes after it, never before.
        if let Some(bus) = &self.shared.bus {
            bus.publish(&self.name, BusKind::Leaving, Bytes::new());
            bus.unsubscribe(&self.name);
        }
        self.shared.forget(&self.name, self.generation);
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Command::Join { reply, .. } | Command::Edit { reply, .. } => {
                    let _ = reply.send(Err(CollabError::RoomClosing));
                }
                Command::Evict { reply, .. } => {
                    let _ = reply.send(());
                }
                Command::Frame { .. }
                | Command::EndSessions { .. }
                | Command::Leave { .. }
                | Command::Compacted(_)
                | Command::Read(_)
                | Command::Access { .. }
                | Command::Remote(_)
                | Command::ReplicaGone(_)
                | Command::Recheck
                | Command::Verdicts(_) => {}
            }
        }
        // Updates applied but never stored were never sent either; their
        // senders still hold them and resend after reconnecting.
        if !matches!(exit, Exit::Failed | Exit::Deleted) {
            self.flush().await;
        }
        // Idle unload and shutdown fold the log into the snapshot, so the
        // next load (after a restart, too) reads one snapshot instead of
        // replaying the log. Shutdown waits for it within its grace period.
        let compact = matches!(exit, Exit::Idle | Exit::Shutdown);
        let (reason, evicted) = match exit {
            Exit::Shutdown => (CloseReason::ShuttingDown, None),
            Exit::Idle | Exit::Failed => (CloseReason::Unavailable, None),
            Exit::Deleted => (CloseReason::Forbidden, None),
            Exit::Evicted(reason, reply) => (reason, Some(reply)),
        };
        for peer in self.peers.values() {
            peer.close(reason.clone());
        }
        self.stats.users.lock().clear();
        self.shared.metrics.rooms_loaded.dec();
        if compact && self.log_entries > 0 {
            self.shared.compact_after_unload(self.name.clone());
        }
        tracing::debug!(doc = %self.name, "room unloaded");
        if let Some(reply) = evicted {
            let _ = reply.send(());
        }
    }
}
