//! Errors as the outside world sees them: HTTP statuses with one JSON
//! shape, and WebSocket close codes. Both mappings live here and nowhere
//! else.
//!
//! Every failed request answers
//! `{"error": {"code": "snake_case", "message": "...", "details": ...}}`.
//! Codes are stable; messages are for people. A resource in a workspace the
//! caller does not belong to answers 404, exactly like one that does not
//! exist, so nobody can probe for others' data.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use coform_collab::{CloseReason, CollabError};
use coform_storage::StoreError;
use serde::Serialize;

/// One invalid field of a request body.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not the expected shape.
    #[error("{0}")]
    InvalidJson(String),
    /// A malformed request that is not about a body field.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed, but some fields are invalid.
    #[error("some fields are invalid")]
    Validation(Vec<FieldError>),
    /// A single-use or e-mailed token is unknown, used or expired.
    #[error("the token is invalid or has expired")]
    InvalidToken,
    /// No credentials, or credentials that are not valid now.
    #[error("{1}")]
    Unauthorized(&'static str, &'static str),
    /// Wrong e-mail or password (never says which).
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    /// A member whose role does not allow the action.
    #[error("{0}")]
    Forbidden(String),
    /// Missing, or in a workspace the caller does not belong to.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with the current state.
    #[error("{1}")]
    Conflict(&'static str, String),
    /// The body exceeds the size limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Too many attempts; retry after the given seconds. Also the answer
    /// to a login that must wait after failures, the same whether or not
    /// the address has an account.
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
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
            ApiError::InvalidJson(_) | ApiError::BadRequest(_) | ApiError::InvalidToken => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(..) | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(..) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooManyConnections | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation(_) => "validation_failed",
            ApiError::InvalidToken => "invalid_token",
            ApiError::Unauthorized(code, _) => code,
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(code, _) => code,
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::TooManyConnections => "too_many_connections",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Shorthand for a one-field validation error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => {
                ApiError::Conflict("conflict", format!("already exists: {what}"))
            }
            StoreError::NotFound(_) => ApiError::NotFound("resource"),
            StoreError::Constraint("last_owner") => ApiError::Conflict(
                "last_owner",
                "a workspace must keep at least one owner".into(),
            ),
            StoreError::Constraint(code) => {
                ApiError::Conflict(code, format!("constraint violated: {code}"))
            }
            StoreError::Unavailable(_) | StoreError::Closed => {
                tracing::error!(error = %e, "store unavailable");
                ApiError::Unavailable("storage is unavailable; retry later".into())
            }
            StoreError::Corrupt(_) => ApiError::Internal(e.into()),
        }
    }
}

impl From<CollabError> for ApiError {
    fn from(e: CollabError) -> Self {
        match e {
            CollabError::Store(s) => s.into(),
            CollabError::BadUpdate(msg) => ApiError::BadRequest(msg),
            CollabError::RoomClosing | CollabError::ShuttingDown => {
                ApiError::Unavailable("the document is being unloaded; retry".into())
            }
            CollabError::CorruptDocument { .. }
            | CollabError::Panicked(_)
            | CollabError::Bus(_) => ApiError::Internal(e.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        }
        let details = match &self {
            ApiError::Validation(fields) => serde_json::to_value(fields).unwrap_or_default(),
            ApiError::RateLimited(s) => {
                serde_json::json!({ "retryAfter": s })
            }
            _ => serde_json::Value::Null,
        };
        let body = serde_json::json!({
            "error": { "code": self.code(), "message": self.to_string(), "details": details }
        });
        let mut response = (self.status(), Json(body)).into_response();
        if let ApiError::RateLimited(s) = &self {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if let ApiError::PayloadTooLarge = self {
            // The rest of the body is never read: the connection cannot
            // carry another request, and the client must not reuse it.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
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
