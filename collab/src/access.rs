//! Access changes on live connections, on every replica.
//!
//! The server decides who may open a document; this module carries the
//! *changes* of that decision to connections already open — here and, by
//! the bus's access channel (see [`crate::bus`]), on every other replica:
//!
//! - [`AccessEvent`]: what changed (a document evicted, a user's right on
//!   some documents, a user's sign-in sessions ended), with its wire
//!   encoding as a bus payload;
//! - [`AccessCheck`]: the server's answer to "what may this connection do
//!   now?", asked when a replica may have missed events (its bus
//!   reconnected, or a sequence number skipped): the collaboration core
//!   knows nothing of accounts, so the server plugs this in
//!   ([`crate::Registry::set_access_check`]).

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::bus::BusKind;
use crate::error::CloseReason;
use crate::peer::{Identity, SessionSet};

/// What a connection may do now, as the server's records say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// It may edit.
    Edit,
    /// It may only read (and show presence).
    View,
    /// It may not see the document any more (not a member, or the
    /// template is gone): closed with [`CloseReason::Forbidden`].
    Revoked,
    /// The sign-in session it was opened with has ended: closed with
    /// [`CloseReason::SessionEnded`].
    SessionEnded,
}

/// The server's answer to "what may `who` do on `doc` now?", read from the
/// records (membership and role, the template, the session), never from a
/// cache. An `Err` (the records cannot be read) leaves the connection as
/// it is; the next re-check asks again.
#[async_trait::async_trait]
pub trait AccessCheck: Send + Sync + 'static {
    async fn check(&self, doc: &str, who: &Identity) -> Result<Grant, String>;
}

/// An access change, applied to this replica's rooms and published to the
/// others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessEvent {
    /// Close every connection of the document with `reason` and unload it.
    Evict { doc: Arc<str>, reason: CloseReason },
    /// The user's right on these documents changed: `None` closes their
    /// connections ([`CloseReason::Forbidden`]), `Some(readonly)` sets it.
    SetAccess {
        docs: Vec<Arc<str>>,
        user: Arc<str>,
        readonly: Option<bool>,
    },
    /// Sign-in sessions of the user ended: their connections close with
    /// [`CloseReason::SessionEnded`].
    EndSessions {
        user: Arc<str>,
        sessions: SessionSet,
    },
}

/// Documents named in one `SetAccess` message at most; more are split
/// over several messages (a workspace may hold many templates).
pub(crate) const DOCS_PER_MESSAGE: usize = 512;

impl AccessEvent {
    /// The bus kind and payload of this event.
    ///
    /// Payloads are built from length-prefixed strings (u32 little endian,
    /// then UTF-8) and one-byte tags:
    ///
    /// - `Evict`: doc, reason (0 normal, 1 forbidden, 2 unavailable,
    ///   3 shutting down, 4 session ended);
    /// - `SetAccess`: user, right (0 revoked, 1 read-only, 2 write), a u32
    ///   count, then that many docs;
    /// - `EndSessions`: user, set (0 exactly one, 1 all, 2 all but one),
    ///   then the session for 0 and 2.
    ///
    /// A reader ignores bytes after what it knows, so later versions may
    /// append fields.
    pub fn encode(&self) -> (BusKind, Bytes) {
        let mut buf = BytesMut::new();
        let kind = match self {
            AccessEvent::Evict { doc, reason } => {
                put_str(&mut buf, doc);
                buf.put_u8(match reason {
                    CloseReason::Normal => 0,
                    CloseReason::Unavailable => 2,
                    CloseReason::ShuttingDown => 3,
                    CloseReason::SessionEnded => 4,
                    _ => 1,
                });
                BusKind::Evict
            }
            AccessEvent::SetAccess {
                docs,
                user,
                readonly,
            } => {
                put_str(&mut buf, user);
                buf.put_u8(match readonly {
                    None => 0,
                    Some(true) => 1,
                    Some(false) => 2,
                });
                buf.put_u32_le(docs.len() as u32);
                for doc in docs {
                    put_str(&mut buf, doc);
                }
                BusKind::SetAccess
            }
            AccessEvent::EndSessions { user, sessions } => {
                put_str(&mut buf, user);
                match sessions {
                    SessionSet::One(s) => {
                        buf.put_u8(0);
                        put_str(&mut buf, s);
                    }
                    SessionSet::AllBut(None) => buf.put_u8(1),
                    SessionSet::AllBut(Some(s)) => {
                        buf.put_u8(2);
                        put_str(&mut buf, s);
                    }
                }
                BusKind::EndSessions
            }
        };
        (kind, buf.freeze())
    }

    /// Decodes an access message; `None` if `kind` is not one or the
    /// payload is malformed.
    pub fn decode(kind: &BusKind, payload: &[u8]) -> Option<AccessEvent> {
        let mut r = payload;
        Some(match kind {
            BusKind::Evict => {
                let doc = get_str(&mut r)?;
                let reason = match get_u8(&mut r)? {
                    0 => CloseReason::Normal,
                    2 => CloseReason::Unavailable,
                    3 => CloseReason::ShuttingDown,
                    4 => CloseReason::SessionEnded,
                    _ => CloseReason::Forbidden,
                };
                AccessEvent::Evict { doc, reason }
            }
            BusKind::SetAccess => {
                let user = get_str(&mut r)?;
                let readonly = match get_u8(&mut r)? {
                    0 => None,
                    1 => Some(true),
                    2 => Some(false),
                    _ => return None,
                };
                if r.remaining() < 4 {
                    return None;
                }
                let n = r.get_u32_le() as usize;
                // Each doc takes at least its 4-byte length.
                if n > r.remaining() / 4 {
                    return None;
                }
                let docs = (0..n)
                    .map(|_| get_str(&mut r))
                    .collect::<Option<Vec<_>>>()?;
                AccessEvent::SetAccess {
                    docs,
                    user,
                    readonly,
                }
            }
            BusKind::EndSessions => {
                let user = get_str(&mut r)?;
                let sessions = match get_u8(&mut r)? {
                    0 => SessionSet::One(get_str(&mut r)?),
                    1 => SessionSet::AllBut(None),
                    2 => SessionSet::AllBut(Some(get_str(&mut r)?)),
                    _ => return None,
                };
                AccessEvent::EndSessions { user, sessions }
            }
            _ => return None,
        })
    }

    /// Splits a `SetAccess` naming many documents into messages of at
    /// most [`DOCS_PER_MESSAGE`] documents; other events stay whole.
    pub(crate) fn split(self) -> Vec<AccessEvent> {
        match self {
            AccessEvent::SetAccess {
                docs,
                user,
                readonly,
            } if docs.len() > DOCS_PER_MESSAGE => docs
                .chunks(DOCS_PER_MESSAGE)
                .map(|chunk| AccessEvent::SetAccess {
                    docs: chunk.to_vec(),
                    user: user.clone(),
                    readonly,
                })
                .collect(),
            other => vec![other],
        }
    }
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_u32_le(s.len() as u32);
    buf.put_slice(s.as_bytes());
}

fn get_u8(r: &mut &[u8]) -> Option<u8> {
    (r.remaining() >= 1).then(|| r.get_u8())
}

fn get_str(r: &mut &[u8]) -> Option<Arc<str>> {
    if r.remaining() < 4 {
        return None;
    }
    let len = r.get_u32_le() as usize;
    if r.remaining() < len {
        return None;
    }
    let (s, rest) = r.split_at(len);
    let s = std::str::from_utf8(s).ok()?;
    *r = rest;
    Some(Arc::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_garbage_is_refused() {
        let events = [
            AccessEvent::Evict {
                doc: "t1".into(),
                reason: CloseReason::Forbidden,
            },
            AccessEvent::Evict {
                doc: "t1".into(),
                reason: CloseReason::Normal,
            },
            AccessEvent::SetAccess {
                docs: vec!["a".into(), "b".into()],
                user: "u".into(),
                readonly: Some(true),
            },
            AccessEvent::SetAccess {
                docs: vec![],
                user: "u".into(),
                readonly: None,
            },
            AccessEvent::EndSessions {
                user: "u".into(),
                sessions: SessionSet::One("s1".into()),
            },
            AccessEvent::EndSessions {
                user: "u".into(),
                sessions: SessionSet::AllBut(None),
            },
            AccessEvent::EndSessions {
                user: "ü".into(),
                sessions: SessionSet::AllBut(Some("keep".into())),
            },
        ];
        for e in events {
            let (kind, payload) = e.encode();
            assert_eq!(AccessEvent::decode(&kind, &payload), Some(e.clone()));
            // Every strict prefix is refused, never misread.
            for cut in 0..payload.len() {
                assert_eq!(
                    AccessEvent::decode(&kind, &payload[..cut]),
                    None,
                    "{e:?} cut at {cut}"
                );
            }
        }
        assert_eq!(AccessEvent::decode(&BusKind::Update, b""), None);
        // A count far beyond the payload is refused without allocating it.
        let mut huge = BytesMut::new();
        put_str(&mut huge, "u");
        huge.put_u8(2);
        huge.put_u32_le(u32::MAX);
        assert_eq!(AccessEvent::decode(&BusKind::SetAccess, &huge), None);
    }

    #[test]
    fn many_documents_are_split_over_several_messages() {
        let docs: Vec<Arc<str>> = (0..1200).map(|i| Arc::from(format!("t{i}"))).collect();
        let parts = AccessEvent::SetAccess {
            docs: docs.clone(),
            user: "u".into(),
            readonly: None,
        }
        .split();
        assert_eq!(parts.len(), 3);
        let mut again = Vec::new();
        for p in parts {
            let AccessEvent::SetAccess { docs, .. } = p else {
                panic!("not a SetAccess")
            };
            assert!(docs.len() <= DOCS_PER_MESSAGE);
            again.extend(docs);
        }
        assert_eq!(again, docs);
    }
}
