//! The y-websocket wire protocol: one binary frame holds one or more
//! messages, each `varuint type` + payload.
//!
//! | type | message        | payload                                    |
//! |------|----------------|--------------------------------------------|
//! | 0    | sync           | `varuint subtype` + `varbytes`: 0 step 1 (state vector), 1 step 2 (update), 2 update |
//! | 1    | awareness      | `varbytes` awareness update                |
//! | 2    | auth           | ignored from clients                       |
//! | 3    | query awareness| empty                                      |
//!
//! Inbound frames are parsed here without copying: an update's payload is
//! a slice of the frame, and a frame that is exactly one update message is
//! forwarded to other peers as the very bytes that arrived. Encoding and
//! decoding of the payloads themselves use `yrs` (`Update`, `StateVector`,
//! `AwarenessUpdate`).

use bytes::{BufMut, Bytes, BytesMut};
use yrs::sync::awareness::AwarenessUpdate;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{StateVector, Update};

use crate::nesting::{self, Anchor};
use crate::Limits;

pub const MSG_SYNC: u64 = 0;
pub const MSG_AWARENESS: u64 = 1;
pub const MSG_AUTH: u64 = 2;
pub const MSG_QUERY_AWARENESS: u64 = 3;
pub const SYNC_STEP1: u64 = 0;
pub const SYNC_STEP2: u64 = 1;
pub const SYNC_UPDATE: u64 = 2;
/// Coform extension, sent only to clients that ask for it (`?acks=1`):
/// `[100, n]` = the first `n` update messages this connection sent (sync
/// step 2 and update messages, counted in order, empty ones included) are
/// durably stored.
pub const MSG_SAVED: u64 = 100;
/// `[101, n]` = update message `n` of a read-only connection was refused.
pub const MSG_REJECTED: u64 = 101;
/// `[102, json]` (a length-prefixed UTF-8 string) = the server repaired
/// the document after an update left the form invalid; sent right after
/// the repair itself. The JSON is `{"yours": bool, "repairs": [{"component",
/// "field", "action", "reason"}]}`; `yours` tells the connection whose
/// update it was.
pub const MSG_REPAIRED: u64 = 102;

/// Largest client id: Yjs client ids are JavaScript safe integers (53
/// bits). A larger one is refused wherever a peer sends one (updates,
/// state vectors, awareness): `yrs` would keep only its low 53 bits while
/// JavaScript clients read it otherwise, so the same bytes would mean one
/// client to the server and another to its peers.
pub const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

/// The encoding of an update that contains nothing (no structs, no
/// deletions), as a client sends in sync step 2 when it has nothing new.
const EMPTY_UPDATE: &[u8] = &[0, 0];

/// One decoded inbound message.
#[derive(Debug)]
pub enum Inbound {
    /// The peer's state vector: answer with what it lacks.
    SyncStep1(StateVector),
    /// A document update (from sync step 2 or an update message).
    Update(InboundUpdate),
    /// The peer's awareness changes.
    Awareness {
        update: AwarenessUpdate,
        /// The whole frame, when it held only this message (forwardable).
        frame: Option<Bytes>,
    },
    /// The peer asks for every awareness state.
    QueryAwareness,
    /// An update message carrying nothing new (counted for durable acks).
    EmptyUpdate,
}

/// A validated document update and its bytes.
#[derive(Debug)]
pub struct InboundUpdate {
    pub update: Update,
    /// The v1-encoded update, as stored in the log.
    pub payload: Bytes,
    /// An update message carrying `payload`, ready to send to other peers.
    pub frame: Bytes,
    /// New shared types it attaches to existing parents: the room checks
    /// how deep they land once applied (see [`crate::nesting`]).
    pub anchors: Vec<Anchor>,
}

/// Why a frame was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("truncated frame")]
    Truncated,
    #[error("varint too long")]
    VarintOverflow,
    #[error("unknown sync message subtype {0}")]
    UnknownSyncType(u64),
    #[error("undecodable state vector")]
    BadStateVector,
    #[error("undecodable update: {0}")]
    BadUpdate(String),
    #[error("undecodable awareness update")]
    BadAwareness,
    #[error("empty frame")]
    Empty,
    /// An update nested deeper than the server allows: refused before
    /// decoding (a policy violation).
    #[error("{0}")]
    TooDeep(nesting::NestingError),
    /// An awareness message over the presence limits (a policy violation).
    #[error("{0}")]
    AwarenessTooLarge(String),
}

impl FrameError {
    /// Well-formed input against the server's rules, rather than input
    /// that does not decode.
    pub fn is_policy(&self) -> bool {
        matches!(
            self,
            FrameError::TooDeep(_) | FrameError::AwarenessTooLarge(_)
        )
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn var_u64(&mut self) -> Result<u64, FrameError> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = *self.buf.get(self.pos).ok_or(FrameError::Truncated)?;
            self.pos += 1;
            if shift >= 64 || (shift == 63 && byte > 1) {
                return Err(FrameError::VarintOverflow);
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// Reads `varuint len` + `len` bytes; returns their range in the buffer.
    fn var_bytes(&mut self) -> Result<std::ops::Range<usize>, FrameError> {
        let len = self.var_u64()?;
        let len = usize::try_from(len).map_err(|_| FrameError::Truncated)?;
        let end = self.pos.checked_add(len).ok_or(FrameError::Truncated)?;
        if end > self.buf.len() {
            return Err(FrameError::Truncated);
        }
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }
}

/// Room for the server's stamp (the account's id, name and colour) that a
/// state relayed by the server carries beyond what its owner sent.
/// Stock y-websocket clients send the states they receive back to the
/// server, so a relayed state must pass this check too.
pub const STAMP_ALLOWANCE: usize = 1 << 10;

/// Checks an awareness message's size (and client ids, see
/// [`MAX_CLIENT_ID`]) before decoding it: at most
/// `limits.max_awareness_states_per_room` entries (a client may echo every
/// state of its room), each at most `limits.max_awareness_state_bytes` plus
/// [`STAMP_ALLOWANCE`], so a huge message is refused without allocating
/// for it. What a connection may *own* is checked by the room.
fn check_awareness_size(payload: &[u8], limits: &Limits) -> Result<(), FrameError> {
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    let count = r.var_u64()?;
    if count > limits.max_awareness_states_per_room as u64 {
        return Err(FrameError::AwarenessTooLarge(format!(
            "an awareness message may carry at most {} states",
            limits.max_awareness_states_per_room
        )));
    }
    for _ in 0..count {
        if r.var_u64()? > MAX_CLIENT_ID {
            return Err(FrameError::BadAwareness);
        }
        r.var_u64()?; // clock
        let state = r.var_bytes()?;
        if state.len() > limits.max_awareness_state_bytes + STAMP_ALLOWANCE {
            return Err(FrameError::AwarenessTooLarge(format!(
                "an awareness state may be at most {} bytes",
                limits.max_awareness_state_bytes
            )));
        }
    }
    Ok(())
}

/// Checks a state vector's client ids before `yrs` reads it.
fn check_state_vector(payload: &[u8]) -> Result<(), FrameError> {
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    let bad = |_| FrameError::BadStateVector;
    for _ in 0..r.var_u64().map_err(bad)? {
        if r.var_u64().map_err(bad)? > MAX_CLIENT_ID {
            return Err(FrameError::BadStateVector);
        }
        r.var_u64().map_err(bad)?; // clock
    }
    Ok(())
}

/// Decodes every message of one inbound frame. Messages of unknown type
/// (custom extensions carrying a `varbytes` payload) and auth messages are
/// skipped; anything that does not decode rejects the whole frame, and so
/// does an update nested too deeply or an awareness message over the
/// limits ([`FrameError::is_policy`]).
pub fn decode_frame(frame: &Bytes, limits: &Limits) -> Result<Vec<Inbound>, FrameError> {
    if frame.is_empty() {
        return Err(FrameError::Empty);
    }
    let mut r = Reader { buf: frame, pos: 0 };
    let mut out = Vec::with_capacity(1);
    while !r.done() {
        let start = r.pos;
        match r.var_u64()? {
            MSG_SYNC => match r.var_u64()? {
                SYNC_STEP1 => {
                    let range = r.var_bytes()?;
                    check_state_vector(&frame[range.clone()])?;
                    let sv = StateVector::decode_v1(&frame[range])
                        .map_err(|_| FrameError::BadStateVector)?;
                    out.push(Inbound::SyncStep1(sv));
                }
                kind @ (SYNC_STEP2 | SYNC_UPDATE) => {
                    let range = r.var_bytes()?;
                    let payload = frame.slice(range);
                    if payload.as_ref() == EMPTY_UPDATE {
                        out.push(Inbound::EmptyUpdate);
                        continue;
                    }
                    // Before yrs decodes it: its value decoder recurses once
                    // per level of nesting.
                    let shape = nesting::scan_update_v1(&payload).map_err(|e| match e {
                        nesting::NestingError::Malformed(_) => FrameError::BadUpdate(e.to_string()),
                        refused => FrameError::TooDeep(refused),
                    })?;
                    let update = Update::decode_v1(&payload)
                        .map_err(|e| FrameError::BadUpdate(e.to_string()))?;
                    // A lone update message is forwarded as received.
                    let whole = start == 0 && r.done() && kind == SYNC_UPDATE;
                    let frame = if whole {
                        frame.clone()
                    } else {
                        encode_update(&payload)
                    };
                    out.push(Inbound::Update(InboundUpdate {
                        update,
                        payload,
                        frame,
                        anchors: shape.anchors,
                    }));
                }
                other => return Err(FrameError::UnknownSyncType(other)),
            },
            MSG_AWARENESS => {
                let range = r.var_bytes()?;
                check_awareness_size(&frame[range.clone()], limits)?;
                let update = AwarenessUpdate::decode_v1(&frame[range])
                    .map_err(|_| FrameError::BadAwareness)?;
                let whole = start == 0 && r.done();
                out.push(Inbound::Awareness {
                    update,
                    frame: whole.then(|| frame.clone()),
                });
            }
            MSG_QUERY_AWARENESS => out.push(Inbound::QueryAwareness),
            MSG_AUTH => {
                // Clients of the y-websocket protocol never send auth; a
                // permission message has a varuint and maybe a string.
                let kind = r.var_u64()?;
                if kind == 0 {
                    r.var_bytes()?;
                }
            }
            _ => {
                r.var_bytes()?;
            }
        }
    }
    Ok(out)
}

fn write_var(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn sync_message(kind: u64, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(payload.len() + 12);
    write_var(&mut buf, MSG_SYNC);
    write_var(&mut buf, kind);
    write_var(&mut buf, payload.len() as u64);
    buf.put_slice(payload);
    buf.freeze()
}

/// `[sync, update, payload]`.
pub fn encode_update(payload: &[u8]) -> Bytes {
    sync_message(SYNC_UPDATE, payload)
}

/// `[sync, step 1, state vector]`.
pub fn encode_step1(sv: &StateVector) -> Bytes {
    sync_message(SYNC_STEP1, &sv.encode_v1())
}

/// `[sync, step 2, update]`.
pub fn encode_step2(update: &[u8]) -> Bytes {
    sync_message(SYNC_STEP2, update)
}

/// `[awareness, update]`.
pub fn encode_awareness(update: &AwarenessUpdate) -> Bytes {
    let payload = update.encode_v1();
    let mut buf = BytesMut::with_capacity(payload.len() + 6);
    write_var(&mut buf, MSG_AWARENESS);
    write_var(&mut buf, payload.len() as u64);
    buf.put_slice(&payload);
    buf.freeze()
}

/// `[tag, n]`: a durable-acknowledgement message (see [`MSG_SAVED`]).
pub fn encode_ack(tag: u64, n: u64) -> Bytes {
    let mut buf = BytesMut::with_capacity(12);
    write_var(&mut buf, tag);
    write_var(&mut buf, n);
    buf.freeze()
}

/// A repair notice (see [`MSG_REPAIRED`]).
pub fn encode_repaired(json: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(json.len() + 12);
    write_var(&mut buf, MSG_REPAIRED);
    write_var(&mut buf, json.len() as u64);
    buf.put_slice(json.as_bytes());
    buf.freeze()
}

/// An awareness message with no entries: a valid no-op every y-websocket
/// client accepts. Sent to idle peers so their liveness timers (30 s in
/// the reference client) never fire on a quiet but healthy connection.
pub fn keepalive() -> Bytes {
    Bytes::from_static(&[MSG_AWARENESS as u8, 1, 0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, GetString, Text, Transact};

    fn one_update() -> Vec<u8> {
        let doc = Doc::with_client_id(7);
        let text = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "hi");
        txn.encode_update_v1()
    }

    /// `varuint` parts, concatenated.
    fn vars(parts: &[u64]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for &p in parts {
            write_var(&mut buf, p);
        }
        buf.to_vec()
    }

    #[test]
    fn client_ids_beyond_53_bits_and_overflowing_ranges_are_refused() {
        let limits = Limits::default();
        let big = MAX_CLIENT_ID + 1;
        // One struct (a 1-long gap) of client `big`; then the delete set.
        let in_struct = vars(&[1, 1, big, 0, 0, 1, 0]);
        let in_delete_set = vars(&[0, 1, big, 1, 0, 1]);
        for update in [in_struct, in_delete_set] {
            assert!(matches!(
                decode_frame(&encode_update(&update), &limits),
                Err(FrameError::BadUpdate(_))
            ));
        }
        let sv = vars(&[1, big, 0]);
        let mut step1 = vars(&[MSG_SYNC, SYNC_STEP1, sv.len() as u64]);
        step1.extend(sv);
        assert_eq!(
            decode_frame(&Bytes::from(step1), &limits).unwrap_err(),
            FrameError::BadStateVector
        );
        let mut states = vars(&[1, big, 1, 2]);
        states.extend_from_slice(b"{}");
        let mut awareness = vars(&[MSG_AWARENESS, states.len() as u64]);
        awareness.extend(states);
        assert_eq!(
            decode_frame(&Bytes::from(awareness), &limits).unwrap_err(),
            FrameError::BadAwareness
        );
        // A deleted range whose end overflows a clock is malformed too.
        let overflow = vars(&[0, 1, 7, 1, u64::from(u32::MAX), 2]);
        assert!(matches!(
            decode_frame(&encode_update(&overflow), &limits),
            Err(FrameError::BadUpdate(_))
        ));
        // The largest id is fine.
        let mut sv = StateVector::default();
        sv.set_max(yrs::block::ClientID::new(MAX_CLIENT_ID), 4);
        let msgs = decode_frame(&encode_step1(&sv), &limits).unwrap();
        assert!(matches!(&msgs[..], [Inbound::SyncStep1(got)] if *got == sv));
    }

    #[test]
    fn lone_update_is_forwarded_as_received() {
        let frame = encode_update(&one_update());
        let mut msgs = decode_frame(&frame, &Limits::default()).unwrap();
        let Some(Inbound::Update(u)) = msgs.pop() else {
            panic!("{msgs:?}")
        };
        assert_eq!(
            u.frame.as_ptr(),
            frame.as_ptr(),
            "no copy for a lone update"
        );
        let doc = Doc::new();
        doc.transact_mut().apply_update(u.update).unwrap();
        assert_eq!(
            doc.get_or_insert_text("t").get_string(&doc.transact()),
            "hi"
        );
    }

    #[test]
    fn step2_is_rebroadcast_as_update_and_empty_step2_skipped() {
        let frame = encode_step2(&one_update());
        let msgs = decode_frame(&frame, &Limits::default()).unwrap();
        let [Inbound::Update(u)] = &msgs[..] else {
            panic!()
        };
        assert_eq!(u.frame, encode_update(&u.payload));
        assert!(matches!(
            decode_frame(&encode_step2(&[0, 0]), &Limits::default()).unwrap()[..],
            [Inbound::EmptyUpdate]
        ));
    }

    #[test]
    fn several_messages_in_one_frame() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&encode_step1(&StateVector::default()));
        buf.extend_from_slice(&encode_update(&one_update()));
        buf.extend_from_slice(&[MSG_QUERY_AWARENESS as u8]);
        let msgs = decode_frame(&buf.freeze(), &Limits::default()).unwrap();
        assert!(matches!(
            msgs[..],
            [
                Inbound::SyncStep1(_),
                Inbound::Update(_),
                Inbound::QueryAwareness
            ]
        ));
    }

    #[test]
    fn hostile_frames_are_rejected_not_panicking() {
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 2],
            vec![0, 2, 200],
            vec![
                0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
            vec![0, 9, 0],
            vec![0, 2, 3, 0xde, 0xad, 0xbe],
            vec![1, 5, 1, 2, 3],
            vec![0xff; 11],
        ];
        for case in cases {
            assert!(
                decode_frame(&Bytes::from(case.clone()), &Limits::default()).is_err(),
                "{case:?} accepted"
            );
        }
    }

    #[test]
    fn keepalive_decodes_as_empty_awareness() {
        let msgs = decode_frame(&keepalive(), &Limits::default()).unwrap();
        let [Inbound::Awareness { update, .. }] = &msgs[..] else {
            panic!()
        };
        assert!(update.clients.is_empty());
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes at all: the decoder answers, it never panics.
        #[test]
        fn arbitrary_frames_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_frame(&Bytes::from(data), &Limits::default());
        }

        /// Valid messages with a corrupted tail: rejected or accepted, never a panic.
        #[test]
        fn corrupted_updates_never_panic(cut in 0usize..64, flip in any::<u8>(), at in 0usize..64) {
            let doc = yrs::Doc::with_client_id(3);
            let text = {
                use yrs::Transact;
                let t = doc.get_or_insert_text("t");
                let mut txn = doc.transact_mut();
                yrs::Text::insert(&t, &mut txn, 0, "hello world");
                txn.encode_update_v1()
            };
            let mut frame = encode_update(&text).to_vec();
            if at < frame.len() { frame[at] ^= flip; }
            frame.truncate(frame.len().saturating_sub(cut % 8));
            if let Ok(msgs) = decode_frame(&Bytes::from(frame), &Limits::default()) {
                for m in msgs {
                    if let Inbound::Update(u) = m {
                        use yrs::Transact;
                        let target = yrs::Doc::new();
                        let _ = target.transact_mut().apply_update(u.update);
                    }
                }
            }
        }
    }
}
