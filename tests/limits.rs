//! Limits and bad input: the offending peer is closed with the right code,
//! its input never reaches anyone, and the room keeps working for the rest.

mod support;

use futures_util::StreamExt;
use support::*;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::{Text, WriteTxn};

const TEXT: &str = "text";

/// `writer` edits and `observer` must receive it: the room still works.
async fn assert_room_works(writer: &WsClient, observer: &WsClient, marker: &str) {
    writer.insert_text(TEXT, u32::MAX, marker).await;
    observer
        .wait_until(&format!("marker {marker:?}"), TIMEOUT, |d| {
            text_string(d, TEXT).contains(marker)
        })
        .await;
    for c in [writer, observer] {
        let st = c.state();
        assert!(
            st.ended.is_none(),
            "{} was disconnected: {:?}",
            c.name,
            st.ended
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_closes_only_that_peer_with_1009() {
    let server = Server::open_with(|c| {
        c.limits.max_frame_bytes = 64 * 1024;
    })
    .await;
    let room = "limits-frame";
    let [writer, observer, offender] =
        connect_all(server.addr, room, ["writer", "observer", "offender"]).await;
    assert_room_works(&writer, &observer, "<before>").await;

    // Just below the limit is fine...
    let fits = "f".repeat(60 * 1024);
    offender.insert_text(TEXT, 0, &fits).await;
    observer
        .wait_until("the 60 KiB update", TIMEOUT, |d| {
            text_string(d, TEXT).contains(&fits)
        })
        .await;

    // ...one frame over it closes the sender with 1009.
    let big = "B".repeat(100 * 1024);
    let _ = offender
        .try_edit(|txn| txn.get_or_insert_text(TEXT).insert(txn, 0, &big))
        .await;
    offender.expect_close("oversized frame", &[1009]).await;

    // Everyone else carries on, and the oversized update went nowhere.
    assert_room_works(&writer, &observer, "<after>").await;
    assert_room_works(&observer, &writer, "<after-2>").await;
    assert!(
        !observer.text(TEXT).contains("BBBB"),
        "the rejected update reached a peer"
    );
    let late = WsClient::connect(server.addr, room, "late").await;
    let t = late.text(TEXT);
    assert!(
        t.contains("<after-2>") && t.contains(&fits),
        "late joiner lacks accepted edits"
    );
    assert!(!t.contains("BBBB"), "the rejected update was stored");
}

/// Frames that do not decode as the y-websocket protocol.
fn garbage_frames() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty frame", vec![]),
        ("unknown sync subtype", vec![0, 7, 1, 0]),
        ("truncated update payload", vec![0, 2, 16, 1, 2]),
        (
            "update payload that is not an update",
            vec![0, 2, 4, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "state vector that does not decode",
            vec![0, 0, 3, 0xff, 0xff, 0xff],
        ),
        ("overlong varint", vec![0xff; 16]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_close_the_sender_and_the_room_carries_on() {
    let server = Server::open().await;
    let room = "limits-garbage";
    let [writer, observer] = connect_all(server.addr, room, ["writer", "observer"]).await;
    assert_room_works(&writer, &observer, "<start>").await;

    for (i, (what, frame)) in garbage_frames().into_iter().enumerate() {
        let bad = WsClient::connect(server.addr, room, &format!("garbage: {what}")).await;
        bad.send_raw(WsMessage::binary(frame))
            .await
            .expect("send garbage");
        bad.expect_close(what, &[1007, 1002]).await;
        assert_room_works(&writer, &observer, &format!("<after {i}>")).await;
    }

    // A text frame is refused with 1003.
    let texty = WsClient::connect(server.addr, room, "text frame").await;
    texty
        .send_raw(WsMessage::text("hello"))
        .await
        .expect("send text frame");
    texty.expect_close("text frame", &[1003]).await;
    assert_room_works(&observer, &writer, "<after text>").await;

    // Nothing of it was stored; the document is what the good peers wrote.
    let late = WsClient::connect(server.addr, room, "late").await;
    assert_eq!(late.text(TEXT), writer.text(TEXT));
    assert_eq!(late.text(TEXT), observer.text(TEXT));
    let m = metrics(server.addr).await;
    assert!(
        m.get("coform_connections") >= 3.0,
        "connections gauge: {}",
        m.get("coform_connections")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_past_max_doc_bytes_closes_sender_with_1009() {
    const LIMIT: usize = 64 * 1024;
    const CHUNK: usize = 10_000;
    let server = Server::open_with(|c| {
        c.limits.max_doc_bytes = LIMIT;
    })
    .await;
    let room = "limits-doc";
    let [writer, observer, offender] =
        connect_all(server.addr, room, ["writer", "observer", "offender"]).await;

    // Each chunk is a distinct letter so the observer can tell them apart.
    let mut accepted = 0usize;
    let mut rejected_chunk = None;
    for k in 0..20u8 {
        let chunk = String::from((b'a' + k) as char).repeat(CHUNK);
        let _ = offender
            .try_edit(|txn| txn.get_or_insert_text(TEXT).push(txn, &chunk))
            .await;
        // Either the observer gets it or the offender is closed.
        let probe = chunk.clone();
        wait_clients(
            &[&observer, &offender],
            "the chunk or the offender's close",
            TIMEOUT,
            || {
                text_string(&observer.doc, TEXT).contains(&probe)
                    || offender.state().ended.is_some()
            },
        )
        .await;
        if offender.state().ended.is_some() {
            rejected_chunk = Some(chunk);
            break;
        }
        accepted += 1;
    }
    let rejected_chunk = rejected_chunk.expect("the offender was never closed by max_doc_bytes");
    assert!(
        accepted >= 1,
        "the first chunk was refused although it fits"
    );
    assert!(
        accepted * CHUNK <= LIMIT,
        "{accepted} chunks of {CHUNK} bytes accepted with max_doc_bytes = {LIMIT}"
    );
    offender.expect_close("doc too big", &[1009]).await;

    // A small edit still fits; the refused chunk is nowhere.
    assert_room_works(&writer, &observer, "<small>").await;
    assert!(!observer.text(TEXT).contains(&rejected_chunk[..100]));
    let late = WsClient::connect(server.addr, room, "late").await;
    assert!(late.text(TEXT).contains("<small>"));
    assert!(
        !late.text(TEXT).contains(&rejected_chunk[..100]),
        "the refused update was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_are_refused_with_503() {
    let server = Server::open_with(|c| {
        c.limits.max_connections = 2;
    })
    .await;
    let room = "limits-connections";
    let [a, b] = connect_all(server.addr, room, ["a", "b"]).await;

    match try_raw_connect(server.addr, room, None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(
                resp.status().as_u16(),
                503,
                "third connection refused with {}",
                resp.status()
            )
        }
        Err(e) => panic!("third connection failed otherwise than with 503: {e}"),
        Ok(_) => panic!("a third connection was accepted with max_connections = 2"),
    }
    // The refusal cost the existing peers nothing.
    assert_room_works(&a, &b, "<still two>").await;

    // Once one leaves, its slot is free again (the release is asynchronous,
    // so retry until it is, within the timeout).
    a.close().await;
    a.wait_ended().await;
    drop(a);
    let deadline = std::time::Instant::now() + TIMEOUT;
    let c = loop {
        match try_raw_connect(server.addr, room, None).await {
            Ok(ws) => break ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp))
                if resp.status().as_u16() == 503 =>
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the freed slot never became available"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reconnect failed: {e}"),
        }
    };
    let mut c = c;
    let first = within(TIMEOUT, "the server's first message", c.next())
        .await
        .expect("connection ended")
        .expect("read error");
    match first {
        WsMessage::Binary(b) => assert_eq!(&b[..2], &[0, 0], "first message is not SyncStep1"),
        other => panic!("unexpected first message {other:?}"),
    }
}
