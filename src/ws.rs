//! `GET /collab/{doc}`: one WebSocket connection.
//!
//! Each connection has two tasks:
//!
//! - the **reader** (the upgrade task itself) decodes inbound frames on
//!   this connection's own task — in parallel with every other connection
//!   — and hands the decoded messages to the room; it paces a peer that
//!   exceeds its message rate by pausing, so TCP pushes back on it;
//! - the **writer** drains the peer's outbound queue, writing everything
//!   queued with a single flush — while the connection is busy at most once
//!   per `--write-coalesce`, so a burst of updates costs one system call
//!   instead of one each — and keeps the connection alive: a WebSocket
//!   ping for dead-peer detection and, on a quiet connection, an empty
//!   awareness message so y-websocket clients' 30 s liveness timers never
//!   fire on a healthy link.
//!
//! When the room closes the peer (lag, bad input, shutdown), both tasks
//! see it at once: the reader stops, the writer abandons any blocked write
//! and sends the close frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use coform_collab::peer::Outbound;
use coform_collab::protocol;
use coform_collab::{CloseReason, Identity, Peer, RoomHandle};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use crate::api::access::template_role;
use crate::api::extract::{authenticate, require_session, token_account};
use crate::auth::jwt::TokenError;
use crate::config::AuthMode;
use crate::error::{close_code, ApiError, Code};
use crate::server::AppState;

/// A quiet connection gets a keepalive message this often.
const KEEPALIVE: Duration = Duration::from_secs(10);
/// A WebSocket ping is sent this often.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A peer that sends nothing (not even a pong) for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// How long the writer tries to deliver a close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest document name accepted.
const MAX_DOC_NAME: usize = 512;
/// Socket buffer sizes: small, so idle connections cost little memory
/// (tungstenite fills its whole read buffer with zeros before its first
/// read: 8 KiB measured 13.3 KiB of RSS per idle connection, 2 KiB 7.3).
/// Larger frames still arrive whole, in more reads.
const READ_BUFFER: usize = 2 << 10;
const WRITE_BUFFER: usize = 8 << 10;

/// Query parameters of the upgrade request.
#[derive(serde::Deserialize)]
pub struct UpgradeParams {
    /// An access token or a document token.
    pub token: Option<String>,
    /// `1`: send durable acknowledgements (Coform's SDK; plain y-websocket
    /// clients never see them).
    pub acks: Option<String>,
}

/// Who a connection belongs to and whether it may write.
struct Access {
    identity: Option<Identity>,
    readonly: bool,
}

/// Handles the upgrade request: checks the name, the caller's access and
/// the connection limit before upgrading. Refusals are plain HTTP answers
/// (401 no or bad token, 404 no such template or not a member).
pub async fn upgrade(
    ws: WebSocketUpgrade,
    Path(doc): Path<String>,
    Query(params): Query<UpgradeParams>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    validate_doc_name(&doc)?;
    let acks = matches!(params.acks.as_deref(), Some("1" | "true"));
    // Read before the check: see `connection`.
    let epoch = state.registry.access_epoch();
    let access = match state.config.auth {
        AuthMode::Off => Access {
            identity: None,
            readonly: false,
        },
        AuthMode::On => authorize(&state, &doc, params.token.as_deref()).await?,
    };
    let permit = state
        .connections
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyConnections)?;
    let max = state.config.limits.max_frame_bytes;
    // A child of the upgrade request's span: the connection's log lines
    // carry the request id and the document for as long as it lives.
    let span =
        tracing::info_span!("ws", doc = %doc, user = access.identity.as_ref().map(|i| &*i.user_id));
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            let tracker = state.tracker.clone();
            tracker.track_future(
                connection(socket, doc, state, permit, access, acks, epoch).instrument(span),
            )
        })
        .into_response())
}

/// Checks the token and the user's current role on the template. A
/// document token must name this template; either kind of token is
/// re-checked against the current membership, so a revoked member cannot
/// reconnect with a token issued earlier.
async fn authorize(state: &AppState, doc: &str, token: Option<&str>) -> Result<Access, ApiError> {
    let token = token.filter(|t| !t.is_empty()).ok_or(ApiError::new(
        Code::Unauthorized,
        "a token is required: ?token=...",
    ))?;
    let (user, session) = match state.auth.keys.verify_doc(token) {
        Ok(claims) => {
            if claims.tpl != doc {
                return Err(ApiError::new(
                    Code::InvalidToken,
                    "this document token is for another template",
                ));
            }
            require_session(state, &claims.sid, &claims.sub).await?;
            let user = token_account(state, &claims.sub, Code::InvalidToken).await?;
            (user, claims.sid)
        }
        Err(TokenError::Expired) => {
            return Err(ApiError::new(
                Code::TokenExpired,
                "the document token has expired",
            ));
        }
        Err(TokenError::Invalid) => {
            let me = authenticate(state, token).await?;
            (me.user, me.session_id)
        }
    };
    let (_, role) = template_role(state, doc, &user.id).await?;
    Ok(Access {
        identity: Some(Identity {
            user_id: user.id.as_str().into(),
            name: user.name.as_str().into(),
            color: user.color.as_str().into(),
            session: Some(session.as_str().into()),
        }),
        readonly: !role.can_edit(),
    })
}

fn validate_doc_name(doc: &str) -> Result<(), ApiError> {
    if doc.is_empty() || doc.len() > MAX_DOC_NAME {
        return Err(ApiError::BadRequest(format!(
            "document name must be 1 to {MAX_DOC_NAME} bytes"
        )));
    }
    if doc.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "document name must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// Keeps the connection gauge honest however the task ends.
struct ConnectionGuard(Arc<coform_collab::Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

async fn connection(
    socket: WebSocket,
    doc: String,
    state: AppState,
    _permit: OwnedSemaphorePermit,
    access: Access,
    acks: bool,
    epoch: u64,
) {
    let metrics = state.registry.metrics().clone();
    metrics.connections.inc();
    let _guard = ConnectionGuard(metrics);
    let limits = &state.registry.config().limits;
    let peer = Peer::with_identity(limits, access.identity, access.readonly).with_acks(acks);
    let peer = Arc::new(peer);
    let (mut sink, stream) = socket.split();
    let room = match state.registry.join(&doc, peer.clone()).await {
        Ok(room) => room,
        Err(e) => {
            tracing::warn!(doc, error = %e, "join failed");
            let reason = if state.registry.is_shutting_down() {
                CloseReason::ShuttingDown
            } else if matches!(
                e,
                coform_collab::CollabError::Store(coform_storage::StoreError::Deleted(_))
            ) {
                // Deleted meanwhile (its template is gone): not coming back.
                CloseReason::Forbidden
            } else {
                CloseReason::Unavailable
            };
            send_close(&mut sink, &reason).await;
            return;
        }
    };
    // An access change applied (here, or heard from another replica)
    // between the check and the join found no socket of ours to act on:
    // the room asks the records again about its connections.
    if state.registry.access_epoch() != epoch {
        state.registry.recheck_doc(&doc).await;
    }
    let writer = tokio::spawn(write_loop(sink, peer.clone(), state.config.write_coalesce));
    read_loop(stream, &room, &peer, &state).await;
    room.leave(peer.id).await;
    peer.close(CloseReason::Normal);
    let _ = writer.await;
}

async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    room: &RoomHandle,
    peer: &Peer,
    state: &AppState,
) {
    let metrics = state.registry.metrics();
    let mut pace = Pacer::new(state.config.limits.max_messages_per_sec);
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => next,
            _ = peer.wait_closed() => return,
        };
        let msg = match next {
            Err(_) => {
                peer.close(CloseReason::Timeout);
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                if is_capacity_error(e) {
                    metrics.peers_closed_bad_input.inc();
                    peer.close(CloseReason::FrameTooBig);
                }
                return;
            }
            Ok(Some(Ok(msg))) => msg,
        };
        match msg {
            Message::Binary(data) => {
                metrics.bytes_in.inc_by(data.len() as u64);
                pace.wait().await;
                match protocol::decode_frame(&data, &state.registry.config().limits) {
                    Ok(messages) if messages.is_empty() => {}
                    Ok(messages) => {
                        if !room.frame(peer.id, messages).await {
                            peer.close(CloseReason::Unavailable);
                            return;
                        }
                    }
                    Err(e) => {
                        metrics.peers_closed_bad_input.inc();
                        tracing::info!(doc = room.name(), peer = peer.id, error = %e, "bad frame");
                        if matches!(e, protocol::FrameError::TooDeep(_)) {
                            metrics.updates_refused_nesting.inc();
                        }
                        peer.close(if e.is_policy() {
                            CloseReason::Policy(e.to_string())
                        } else {
                            CloseReason::BadFrame(e.to_string())
                        });
                        return;
                    }
                }
            }
            Message::Text(_) => {
                metrics.peers_closed_bad_input.inc();
                peer.close(CloseReason::TextFrame);
                return;
            }
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
}

fn is_capacity_error(e: axum::Error) -> bool {
    matches!(
        e.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

type Sink = SplitSink<WebSocket, Message>;

async fn write_loop(mut sink: Sink, peer: Arc<Peer>, coalesce: Duration) {
    let mut ticker = tokio::time::interval(KEEPALIVE);
    ticker.tick().await;
    let mut last_write = Instant::now();
    let mut last_ping = Instant::now();
    // The earliest moment of the next write while the connection is busy.
    let mut next_write = tokio::time::Instant::now();
    loop {
        let batch = tokio::select! {
            out = peer.next() => out,
            _ = ticker.tick() => {
                let mut ok = true;
                if last_write.elapsed() >= KEEPALIVE {
                    ok &= sink.send(Message::Binary(protocol::keepalive())).await.is_ok();
                    last_write = Instant::now();
                }
                if ok && last_ping.elapsed() >= PING_EVERY {
                    ok &= sink.send(Message::Ping(Default::default())).await.is_ok();
                    last_ping = Instant::now();
                }
                if !ok {
                    peer.close(CloseReason::Normal);
                    return;
                }
                continue;
            }
        };
        let batch = match batch {
            // Busy: what arrives before the window ends leaves in this write.
            Outbound::Messages(mut messages) if tokio::time::Instant::now() < next_write => {
                tokio::select! {
                    _ = tokio::time::sleep_until(next_write) => {}
                    _ = peer.wait_closed() => {}
                }
                match peer.try_next() {
                    Some(Outbound::Messages(more)) => {
                        messages.extend(more);
                        Outbound::Messages(messages)
                    }
                    Some(close) => close,
                    None => Outbound::Messages(messages),
                }
            }
            other => other,
        };
        match batch {
            Outbound::Messages(messages) => {
                let write = async {
                    for m in messages {
                        sink.feed(Message::Binary(m)).await?;
                    }
                    sink.flush().await
                };
                tokio::select! {
                    result = write => {
                        if result.is_err() {
                            peer.close(CloseReason::Normal);
                            return;
                        }
                        last_write = Instant::now();
                        next_write = tokio::time::Instant::now() + coalesce;
                    }
                    // A write blocked on a full socket is abandoned as soon
                    // as the peer is closed; the close frame follows.
                    _ = peer.wait_closed() => {}
                }
            }
            Outbound::Close(reason) => {
                send_close(&mut sink, &reason).await;
                return;
            }
        }
    }
}

async fn send_close(sink: &mut Sink, reason: &CloseReason) {
    if *reason == CloseReason::Normal {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
        return;
    }
    let frame = CloseFrame {
        code: close_code(reason),
        reason: reason.message().into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
    })
    .await;
}

/// Token bucket pacing one connection's inbound messages: a burst of
/// twice the rate, then one message per `1/rate` seconds. Over the limit
/// the reader waits instead of reading, so TCP pushes back on the sender.
struct Pacer {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    fn new(per_sec: u32) -> Self {
        let rate = f64::from(per_sec.max(1));
        Pacer {
            rate,
            burst: rate * 2.0,
            tokens: rate * 2.0,
            last: Instant::now(),
        }
    }

    async fn wait(&mut self) {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / self.rate);
            tokio::time::sleep(wait).await;
            self.tokens = 1.0;
            self.last = Instant::now();
        }
        self.tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_names_are_checked() {
        assert!(validate_doc_name("form-1").is_ok());
        assert!(validate_doc_name("ünïcode form").is_ok());
        assert!(validate_doc_name("").is_err());
        assert!(validate_doc_name("a\nb").is_err());
        assert!(validate_doc_name(&"x".repeat(MAX_DOC_NAME + 1)).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_allows_a_burst_then_the_rate() {
        let mut p = Pacer::new(10);
        let start = tokio::time::Instant::now();
        for _ in 0..20 {
            p.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "burst of 2x rate is free");
        for _ in 0..10 {
            p.wait().await;
        }
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(950) && waited <= Duration::from_millis(1100),
            "{waited:?}"
        );
    }
}
