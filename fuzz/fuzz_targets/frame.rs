//! One inbound WebSocket frame, as the connection task hands it to
//! `decode_frame` (the socket has already refused frames over
//! `max_frame_bytes`).
//!
//! Beyond "no panic": what decodes keeps the promises the room relies on.
//! - an update's payload is a slice of the frame, never empty, never the
//!   empty update (that is `EmptyUpdate`), and its forwardable frame
//!   decodes to exactly that update again;
//! - an awareness message never carries more states, or larger ones, than
//!   the limits allow, and a message that is the whole frame is forwarded
//!   as that frame;
//! - a state vector re-encodes to a message that decodes to the same one;
//! - decoding is deterministic: the same frame gives the same answer.

#![no_main]

use bytes::Bytes;
use coform_collab::protocol::{self, decode_frame, Inbound, STAMP_ALLOWANCE};
use coform_collab::Limits;
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer reaches every limit.
fn limits() -> Limits {
    Limits {
        max_frame_bytes: 64 << 10,
        max_awareness_states_per_room: 16,
        max_awareness_state_bytes: 256,
        ..Limits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = limits();
    if data.len() > limits.max_frame_bytes {
        return;
    }
    let frame = Bytes::copy_from_slice(data);
    let messages = match decode_frame(&frame, &limits) {
        Ok(messages) => messages,
        Err(e) => {
            let again = decode_frame(&frame, &limits).expect_err("same frame, same answer");
            assert_eq!(e, again);
            return;
        }
    };
    let count = messages.len();
    let span = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
    for message in messages {
        match message {
            Inbound::Update(u) => {
                assert!(!u.payload.is_empty() && u.payload.as_ref() != [0, 0]);
                assert!(u.payload.len() < frame.len());
                let start = u.payload.as_ptr() as usize;
                assert!(
                    span.contains(&start) && start + u.payload.len() <= span.end,
                    "an update's payload is a slice of the frame"
                );
                let again = decode_frame(&u.frame, &limits).expect("a forwarded update decodes");
                match &again[..] {
                    [Inbound::Update(v)] => assert_eq!(v.payload, u.payload),
                    other => panic!("a forwarded update decodes to {other:?}"),
                }
            }
            Inbound::Awareness {
                update,
                frame: whole,
            } => {
                assert!(update.clients.len() <= limits.max_awareness_states_per_room);
                for entry in update.clients.values() {
                    assert!(entry.json.len() <= limits.max_awareness_state_bytes + STAMP_ALLOWANCE);
                }
                if let Some(whole) = whole {
                    assert_eq!(count, 1);
                    assert_eq!(whole, frame);
                }
                let again = decode_frame(&protocol::encode_awareness(&update), &limits)
                    .expect("a decoded awareness update re-encodes");
                match &again[..] {
                    [Inbound::Awareness { update: u2, .. }] => {
                        assert_eq!(u2.clients, update.clients)
                    }
                    other => panic!("a re-encoded awareness update decodes to {other:?}"),
                }
            }
            Inbound::SyncStep1(sv) => {
                let again = decode_frame(&protocol::encode_step1(&sv), &limits)
                    .expect("a decoded state vector re-encodes");
                match &again[..] {
                    [Inbound::SyncStep1(sv2)] => assert_eq!(*sv2, sv),
                    other => panic!("a re-encoded state vector decodes to {other:?}"),
                }
            }
            Inbound::QueryAwareness | Inbound::EmptyUpdate => {}
        }
    }
});
