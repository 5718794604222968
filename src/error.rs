//! Errors as the outside world sees them: HTTP statuses with one JSON
//! shape, and WebSocket close codes. Both mappings live here and nowhere
//! else.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use coform_collab::CloseReason;

/// An error answered over HTTP as
/// `{"error":{"code":"snake_case","message":"..."}}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad document name, bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// The connection limit is reached.
    #[error("too many connections; retry later")]
    TooManyConnections,
    /// The server is starting, shutting down, or its store is unreachable.
    #[error("{0}")]
    Unavailable(String),
    /// A failure of ours; details go to the log, never to the client.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooManyConnections | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::TooManyConnections => "too_many_connections",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        }
        let body = serde_json::json!({
            "error": { "code": self.code(), "message": self.to_string() }
        });
        (self.status(), Json(body)).into_response()
    }
}

/// Normal closure.
pub const CLOSE_NORMAL: u16 = 1000;
/// Going away (the peer stopped answering).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Unsupported data (a text frame on a binary protocol).
pub const CLOSE_UNSUPPORTED: u16 = 1003;
/// Invalid payload data (a frame that does not decode).
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Message too big (frame or document size limit).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Service restart: reconnect shortly.
pub const CLOSE_RESTART: u16 = 1012;
/// Try again later: the peer lagged or the document is unavailable.
pub const CLOSE_TRY_AGAIN: u16 = 1013;
/// Authentication failed or expired.
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
    }
}
