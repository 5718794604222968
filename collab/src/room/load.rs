//! Loading a room's document: from the store, serving fresh clients from
//! a snapshot while it builds, cutting back documents stored before the
//! nesting limit, and rebuilding after an update had to be taken back.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use coform_storage::StoredDoc;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use yrs::Doc;

use super::{Command, Room};
use crate::bus::BusKind;
use crate::compaction;
use crate::error::{CloseReason, CollabError};
use crate::guard::Guard;
use crate::nesting;
use crate::peer::{Peer, PeerId};
use crate::protocol::{self, Inbound};
use crate::registry::Shared;

/// A document built from the store, and what arrived while it was built.
pub(super) struct Loaded {
    pub(super) doc: Doc,
    pub(super) stored: StoredDoc,
    /// The snapshot as a sync step 2, when it is the whole state.
    pub(super) full_state: Option<Bytes>,
    /// Commands that arrived during the build, in order.
    pub(super) deferred: Vec<Command>,
}

/// Loads the document `name` from the store (cutting it back first if it
/// nests too deeply). While a snapshot is being built, fresh clients are
/// served from it (see [`serve_while_building`]). On a failure, leaves the
/// registry and answers every waiting join and edit with it; `None` then.
pub(super) async fn load(
    name: &Arc<str>,
    generation: u64,
    shared: &Arc<Shared>,
    rx: &mut mpsc::Receiver<Command>,
) -> Option<Loaded> {
    let loaded = tokio::select! {
        r = shared.store.load(name).instrument(tracing::debug_span!("store.load", doc = %name)) => {
            r.map_err(CollabError::from)
        }
        _ = shared.shutdown.cancelled() => Err(CollabError::ShuttingDown),
    };
    let mut deferred = Vec::new();
    let mut snapshot_state = None;
    let built = match loaded {
        Ok(stored) => {
            // A snapshot with nothing logged after it is the whole state:
            // fresh clients get it while the document is being built.
            snapshot_state = stored
                .snapshot
                .as_ref()
                .filter(|_| stored.log.is_empty())
                .map(|s| protocol::encode_step2(&s.data));
            let build = compaction::build_stored(name, stored);
            match &snapshot_state {
                Some(state) => serve_while_building(build, rx, state, &mut deferred).await,
                None => build.await,
            }
        }
        Err(e) => Err(e),
    };
    let built = match built {
        Ok((doc, stored, repair)) if !repair.is_empty() => {
            persist_repair(shared, name, doc, stored, repair).await
        }
        Ok((doc, stored, _)) => Ok((doc, stored)),
        Err(e) => Err(e),
    };
    match built {
        Ok((doc, stored)) => Some(Loaded {
            doc,
            stored,
            full_state: snapshot_state,
            deferred,
        }),
        Err(e) => {
            tracing::error!(doc = %name, error = %e, "cannot load document");
            if let Some(bus) = &shared.bus {
                bus.unsubscribe(name);
            }
            shared.forget(name, generation);
            // Every waiting join and edit learns why: a store that is
            // down (retry later) or a damaged document (ours to fix).
            // A document deleted for good is not coming back: 4403.
            let reason = match &e {
                CollabError::Store(coform_storage::StoreError::Deleted(_)) => {
                    CloseReason::Forbidden
                }
                _ => CloseReason::Unavailable,
            };
            for cmd in deferred {
                match cmd {
                    Command::Join { peer, .. } => peer.close(reason.clone()),
                    Command::Edit { reply, .. } => {
                        let _ = reply.send(Err(e.duplicate()));
                    }
                    _ => {}
                }
            }
            rx.close();
            while let Some(cmd) = rx.recv().await {
                if let Command::Join { reply, .. } | Command::Edit { reply, .. } = cmd {
                    let _ = reply.send(Err(e.duplicate()));
                }
            }
            None
        }
    }
}

impl Room {
    /// Rebuilds the doc from the store after a panic left it suspect or an
    /// applied update had to be taken back.
    pub(super) async fn rebuild(&mut self) {
        self.reload = false;
        let loaded = match compaction::load_doc(&self.shared.store, &self.name).await {
            Ok((doc, stored, repair)) if !repair.is_empty() => {
                persist_repair(&self.shared, &self.name, doc, stored, repair).await
            }
            Ok((doc, stored, _)) => Ok((doc, stored)),
            Err(e) => Err(e),
        };
        match loaded {
            Ok((doc, stored)) => {
                self.guard = Guard::watch_if(self.shared.config.check_schema, &doc);
                self.doc = doc;
                self.full_state = None;
                self.doc_bytes = stored.byte_len();
            }
            Err(e) => {
                tracing::error!(doc = %self.name, error = %e, "cannot reload room");
                self.failed = true;
                self.deleted = matches!(
                    e,
                    CollabError::Store(coform_storage::StoreError::Deleted(_))
                );
            }
        }
    }
}

/// A document stored before the nesting limit, just cut back by
/// [`nesting::repair`]: its repaired state becomes its snapshot before
/// anyone sees it (the deletions are never logged: replaying a deep
/// subtree and its deletion in one transaction is what must not happen),
/// then other replicas get the deletions, one level per message.
async fn persist_repair(
    shared: &Arc<Shared>,
    name: &Arc<str>,
    doc: Doc,
    stored: StoredDoc,
    repair: Vec<Vec<u8>>,
) -> Result<(Doc, StoredDoc), CollabError> {
    tracing::warn!(
        doc = %name,
        levels = repair.len(),
        "document nests deeper than {} levels (stored before that limit); cutting it back",
        nesting::MAX_NESTING
    );
    let stored = shared.store_repaired(name, &doc, &stored).await?;
    shared.metrics.documents_repaired.inc();
    if let Some(bus) = &shared.bus {
        for level in repair {
            bus.publish(name, BusKind::Update, Bytes::from(level));
        }
    }
    Ok((doc, stored))
}

/// Runs `build` (the document rebuilt from a snapshot with an empty log)
/// while answering the inbox from `state`, the snapshot as a sync step 2:
/// joins are let in and a fresh client's sync step 1 is answered at once,
/// everything else is kept in `deferred`, in arrival order, for the room
/// to handle once the document is built (joins again, to send them the
/// room's state vector and presence then).
async fn serve_while_building<T>(
    build: impl std::future::Future<Output = Result<T, CollabError>>,
    rx: &mut mpsc::Receiver<Command>,
    state: &Bytes,
    deferred: &mut Vec<Command>,
) -> Result<T, CollabError> {
    tokio::pin!(build);
    let mut joined: HashMap<PeerId, Arc<Peer>> = HashMap::new();
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            built = &mut build => return built,
            cmd = rx.recv(), if open => match cmd {
                None => open = false,
                Some(Command::Join { peer, reply }) => {
                    joined.insert(peer.id, peer.clone());
                    let _ = reply.send(Ok(()));
                    let (reply, _) = oneshot::channel();
                    deferred.push(Command::Join { peer, reply });
                }
                Some(Command::Frame { peer, mut messages }) => {
                    if let Some(p) = joined.get(&peer) {
                        messages.retain(|m| match m {
                            Inbound::SyncStep1(sv) if sv.is_empty() => {
                                p.reply(state.clone());
                                false
                            }
                            _ => true,
                        });
                    }
                    if !messages.is_empty() {
                        deferred.push(Command::Frame { peer, messages });
                    }
                }
                Some(cmd) => deferred.push(cmd),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;
    use yrs::StateVector;

    /// While the document is being built, a fresh client's sync step 1 is
    /// answered from the snapshot at once; the rest waits, in order.
    #[tokio::test]
    async fn a_snapshot_answers_fresh_clients_while_the_document_builds() {
        let (tx, mut rx) = mpsc::channel(16);
        let (release, gate) = oneshot::channel::<()>();
        let build = async move {
            let _ = gate.await;
            Ok((Doc::new(), StoredDoc::default()))
        };
        let state = Bytes::from_static(b"snapshot as step 2");
        let peer = Arc::new(Peer::new(&Limits::default()));
        let (joined, join_answer) = oneshot::channel();
        tx.send(Command::Join {
            peer: peer.clone(),
            reply: joined,
        })
        .await
        .unwrap();
        let old_client = StateVector::from_iter([(yrs::ClientID::new(7), 3u32)]);
        tx.send(Command::Frame {
            peer: peer.id,
            messages: vec![
                Inbound::SyncStep1(StateVector::default()),
                Inbound::QueryAwareness,
                Inbound::SyncStep1(old_client),
            ],
        })
        .await
        .unwrap();
        tx.send(Command::Leave { peer: peer.id }).await.unwrap();

        let mut deferred = Vec::new();
        {
            let serving = serve_while_building(build, &mut rx, &state, &mut deferred);
            tokio::pin!(serving);
            // Serve the inbox until the answer is out; the build is still held.
            let answered = async {
                let wait = std::time::Duration::from_secs(5);
                tokio::time::timeout(wait, async {
                    loop {
                        if let Some(out) = peer.try_next() {
                            return out;
                        }
                        tokio::task::yield_now().await;
                    }
                })
                .await
                .expect("no answer while the document was building")
            };
            tokio::select! {
                _ = &mut serving => panic!("the build finished before it was released"),
                out = answered => match out {
                    crate::peer::Outbound::Messages(m) => assert_eq!(m, vec![state.clone()]),
                    crate::peer::Outbound::Close(r) => panic!("closed: {r:?}"),
                },
            }
            assert!(
                join_answer.await.unwrap().is_ok(),
                "the join is let in at once"
            );
            release.send(()).unwrap();
            serving.await.expect("built");
        }
        let kinds: Vec<String> = deferred
            .iter()
            .map(|c| match c {
                Command::Join { .. } => "join".to_string(),
                Command::Frame { messages, .. } => format!("frame x{}", messages.len()),
                Command::Leave { .. } => "leave".to_string(),
                _ => "other".to_string(),
            })
            .collect();
        assert_eq!(kinds, ["join", "frame x2", "leave"]);
    }
}
