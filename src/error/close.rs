//! WebSocket close codes: the other half of what the outside world sees
//! of errors, beside the HTTP table in [`super::code`].

use coform_collab::CloseReason;

/// Normal closure.
pub const CLOSE_NORMAL: u16 = 1000;
/// Going away (the peer stopped answering).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Unsupported data (a text frame on a binary protocol).
pub const CLOSE_UNSUPPORTED: u16 = 1003;
/// Invalid payload data (a frame that does not decode).
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Policy violation: well-formed input against the server's rules
/// (nesting too deep, presence over its limits).
pub const CLOSE_POLICY: u16 = 1008;
/// Message too big (frame or document size limit).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Service restart: reconnect shortly.
pub const CLOSE_RESTART: u16 = 1012;
/// Try again later: the peer lagged or the document is unavailable.
pub const CLOSE_TRY_AGAIN: u16 = 1013;
/// The connection's sign-in session ended: sign in again.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Access to the document was revoked (member removed, document deleted).
pub const CLOSE_FORBIDDEN: u16 = 4403;

/// The WebSocket close code for each reason a peer is closed.
pub fn close_code(reason: &CloseReason) -> u16 {
    match reason {
        CloseReason::Lagging | CloseReason::Unavailable => CLOSE_TRY_AGAIN,
        CloseReason::FrameTooBig | CloseReason::DocTooBig => CLOSE_TOO_BIG,
        CloseReason::BadFrame(_) => CLOSE_INVALID_PAYLOAD,
        CloseReason::TextFrame => CLOSE_UNSUPPORTED,
        CloseReason::Timeout => CLOSE_GOING_AWAY,
        CloseReason::ShuttingDown => CLOSE_RESTART,
        CloseReason::Normal => CLOSE_NORMAL,
        CloseReason::Forbidden => CLOSE_FORBIDDEN,
        CloseReason::Policy(_) => CLOSE_POLICY,
        CloseReason::SessionEnded => CLOSE_UNAUTHORIZED,
    }
}
