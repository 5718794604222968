//! The test client itself: any protocol error of the server fails the
//! test that sees it. A fake server on loopback sends one bad frame.

mod support;

use futures_util::SinkExt;
use support::*;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Accepts one websocket and sends it `frame`, then keeps it open.
async fn fake_server(frame: WsMessage) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
        ws.send(frame).await.expect("send the frame");
        // Hold the socket until the client goes away.
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut ws).await {}
    });
    addr
}

async fn client_sees(frame: WsMessage) {
    let addr = fake_server(frame).await;
    let c = WsClient::connect_with_doc(addr, "room", "c", Doc::new(), ConnectOpts::default()).await;
    c.wait_synced().await;
}

#[tokio::test]
#[should_panic(expected = "broke the y-websocket protocol: an undecodable frame")]
async fn an_undecodable_frame_fails_the_test() {
    client_sees(WsMessage::binary(vec![0, 9, 9])).await;
}

#[tokio::test]
#[should_panic(expected = "broke the y-websocket protocol: an unexpected message")]
async fn an_unknown_message_type_fails_the_test() {
    client_sees(WsMessage::binary(vec![100, 1, 7])).await;
}

#[tokio::test]
#[should_panic(expected = "broke the y-websocket protocol: a SyncStep2 that does not decode")]
async fn a_sync_step_that_does_not_decode_fails_the_test() {
    client_sees(WsMessage::binary(vec![0, 1, 3, 0xff, 0xff, 0xff])).await;
}

#[tokio::test]
#[should_panic(expected = "broke the y-websocket protocol: a text frame")]
async fn a_text_frame_fails_the_test() {
    client_sees(WsMessage::text("hello")).await;
}
