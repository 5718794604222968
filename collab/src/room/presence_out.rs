//! Presence changes on their way to this replica's peers, sent at most
//! once per presence window per room.
//!
//! A designer's pointer moves about 30 times a second; with C people in a
//! room every move is C − 1 deliveries, so presence is most of a busy
//! room's traffic. A change that comes after a quiet window goes out at
//! once (no added latency for a room that is not busy); changes that come
//! while one went out less than a window ago are merged, latest state per
//! client, and go out together when the window ends: one message per peer
//! instead of one per change.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use yrs::block::ClientID;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};

use crate::peer::PeerId;

/// What is held for the next presence broadcast.
#[derive(Default)]
pub(super) struct PresenceOut {
    clients: HashMap<ClientID, AwarenessUpdateEntry>,
    /// The one change held, as received, while it is the only one.
    frame: Option<Bytes>,
    /// The peer every held change came from (not sent back to it), or
    /// `None` once changes of several peers (or of other replicas) are
    /// merged: a client ignores its own state coming back at the same
    /// clock, so merged batches go to every peer.
    except: Option<PeerId>,
    held: usize,
    /// When the held changes go out.
    due: Option<Instant>,
    /// When the last broadcast went out.
    last_sent: Option<Instant>,
}

/// What to send now.
pub(super) struct Batch {
    pub update: AwarenessUpdate,
    pub frame: Option<Bytes>,
    pub except: Option<PeerId>,
}

impl PresenceOut {
    /// Takes a change: returns it back to be sent at once when the last
    /// broadcast is at least `window` ago and nothing is held; otherwise
    /// holds it (merged with what is held) until [`PresenceOut::due`].
    pub fn offer(
        &mut self,
        window: Duration,
        update: AwarenessUpdate,
        frame: Option<Bytes>,
        except: Option<PeerId>,
        now: Instant,
    ) -> Option<Batch> {
        let quiet = self.last_sent.is_none_or(|t| now >= t + window);
        if self.held == 0 && quiet {
            self.last_sent = Some(now);
            return Some(Batch {
                update,
                frame,
                except,
            });
        }
        if self.held == 0 {
            self.frame = frame;
            self.except = except;
            self.due = self.last_sent.map(|t| t + window);
        } else {
            self.frame = None;
            if self.except != except {
                self.except = None;
            }
        }
        self.held += 1;
        // Changes come in order and only applied ones are offered, so the
        // later state of a client is the newer one.
        self.clients.extend(update.clients);
        None
    }

    /// When the held changes are due (`None`: nothing held).
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Takes what is held, to be sent now.
    pub fn take(&mut self, now: Instant) -> Option<Batch> {
        if self.held == 0 {
            return None;
        }
        self.held = 0;
        self.due = None;
        self.last_sent = Some(now);
        Some(Batch {
            update: AwarenessUpdate {
                clients: std::mem::take(&mut self.clients),
            },
            frame: self.frame.take(),
            except: self.except.take(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn change(client: u64, clock: u32) -> AwarenessUpdate {
        let mut clients = HashMap::new();
        let json: Arc<str> = Arc::from(format!("{{\"x\":{clock}}}"));
        clients.insert(ClientID::new(client), AwarenessUpdateEntry { clock, json });
        AwarenessUpdate { clients }
    }

    const W: Duration = Duration::from_millis(10);

    #[test]
    fn a_change_after_a_quiet_window_goes_at_once() {
        let mut out = PresenceOut::default();
        let t0 = Instant::now();
        let sent = out.offer(W, change(1, 1), None, Some(7), t0).unwrap();
        assert_eq!(sent.except, Some(7));
        assert!(out.due().is_none());
        // A window later: again at once.
        assert!(out.offer(W, change(1, 2), None, Some(7), t0 + W).is_some());
    }

    #[test]
    fn changes_within_a_window_are_merged_latest_per_client() {
        let mut out = PresenceOut::default();
        let t0 = Instant::now();
        let frame = Bytes::from_static(b"f");
        assert!(out.offer(W, change(1, 1), None, Some(7), t0).is_some());
        let ms = Duration::from_millis;
        assert!(out
            .offer(W, change(1, 2), Some(frame.clone()), Some(7), t0 + ms(1))
            .is_none());
        assert_eq!(out.due(), Some(t0 + W));
        // One held change keeps its frame and its sender.
        assert!(out
            .offer(W, change(1, 3), None, Some(7), t0 + ms(2))
            .is_none());
        assert!(out
            .offer(W, change(2, 9), None, Some(8), t0 + ms(3))
            .is_none());
        let batch = out.take(t0 + W).unwrap();
        assert_eq!(batch.update.clients.len(), 2);
        assert_eq!(batch.update.clients[&ClientID::new(1)].clock, 3);
        assert_eq!(batch.update.clients[&ClientID::new(2)].clock, 9);
        assert!(batch.frame.is_none(), "merged changes are encoded anew");
        assert_eq!(batch.except, None, "changes of two peers go to all");
        assert!(out.due().is_none());
        assert!(out.take(t0 + W).is_none());
        // The window restarts at the batch.
        assert!(out
            .offer(W, change(1, 4), None, Some(7), t0 + W + ms(1))
            .is_none());
        assert_eq!(out.due(), Some(t0 + W + W));
    }

    #[test]
    fn one_held_change_keeps_its_frame_and_sender() {
        let mut out = PresenceOut::default();
        let t0 = Instant::now();
        let frame = Bytes::from_static(b"f");
        out.offer(W, change(1, 1), None, Some(7), t0);
        out.offer(W, change(1, 2), Some(frame.clone()), Some(7), t0);
        let batch = out.take(t0 + W).unwrap();
        assert_eq!(batch.frame, Some(frame));
        assert_eq!(batch.except, Some(7));
    }

    #[test]
    fn a_zero_window_sends_everything_at_once() {
        let mut out = PresenceOut::default();
        let t0 = Instant::now();
        for clock in 1..5 {
            assert!(out
                .offer(Duration::ZERO, change(1, clock), None, None, t0)
                .is_some());
        }
    }
}
