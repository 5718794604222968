//! Errors as the outside world sees them: HTTP answers with one JSON
//! shape, and WebSocket close codes. Both mappings live here and nowhere
//! else.
//!
//! # Layout
//!
//! - [`code`]: the error table: each [`Code`] with its code string, HTTP
//!   status and meaning (shown to client authors in `docs/ERRORS.md`).
//! - this module: [`ApiError`], why a request failed, and how storage and
//!   collaboration failures become answers.
//! - [`close`]: WebSocket close codes and [`close_code`].
//!
//! Every failed request answers
//! `{"error": {"code": "snake_case", "message": "...", "details": ...}}`,
//! with the code and status of one entry of the table. Codes are stable;
//! messages are for people. A resource in a workspace the caller does not
//! belong to answers 404, exactly like one that does not exist, so nobody
//! can probe for others' data. A failure of the server (5xx) is logged
//! with its details; the answer carries none of them.

pub mod close;
pub mod code;

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use coform_collab::CollabError;
use coform_storage::StoreError;
use serde::Serialize;

pub use close::close_code;
pub use code::Code;

/// One invalid field of a request body.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The invalid fields of one request, collected while the valid ones are
/// taken, so that one 422 answer lists every invalid field.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// The checked value, or `None` with its error kept.
    pub fn check<T>(&mut self, checked: Result<T, FieldError>) -> Option<T> {
        checked.map_err(|e| self.0.push(e)).ok()
    }

    /// An optional field: `check`ed if given; `None` if absent or invalid.
    pub fn given<V, T>(
        &mut self,
        value: Option<V>,
        check: impl FnOnce(V) -> Result<T, FieldError>,
    ) -> Option<T> {
        self.check(check(value?))
    }

    /// Keeps an error found another way.
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    /// `Ok` if every field was valid; otherwise 422 with each invalid one.
    pub fn finish(self) -> Result<(), ApiError> {
        self.require(Some(()))
    }

    /// `value` (the checked value of required fields) if every field was
    /// valid; otherwise 422 with each invalid one.
    pub fn require<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ => Err(ApiError::Validation(self.0)),
        }
    }
}

/// What a handler answers: its response, or an error in the API's shape.
pub type ApiResult<T> = Result<T, ApiError>;

/// Why a request failed. Each variant answers with one entry of the
/// table ([`ApiError::code`]); [`ApiError::Coded`] names its entry itself.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Any entry of the table with a message for people — the form for
    /// entries without a shorthand below:
    /// `ApiError::new(Code::EmailTaken, "an account with this e-mail already exists")`.
    #[error("{1}")]
    Coded(Code, Cow<'static, str>),
    /// [`Code::InvalidJson`]: the body is not JSON, or not the expected shape.
    #[error("{0}")]
    InvalidJson(String),
    /// [`Code::BadRequest`]: a malformed request that is not about a body field.
    #[error("{0}")]
    BadRequest(String),
    /// [`Code::ValidationFailed`]: well-formed, but some fields are invalid
    /// (listed in `details`).
    #[error("some fields are invalid")]
    Validation(Vec<FieldError>),
    /// [`Code::InvalidMailedToken`]: a mailed single-use token is unknown,
    /// used, expired, or was mailed to another address.
    #[error("the token is invalid or has expired")]
    InvalidMailedToken,
    /// [`Code::InvalidCredentials`]: wrong e-mail or password (never says which).
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    /// [`Code::Forbidden`]: a member whose role does not allow the action.
    #[error("{0}")]
    Forbidden(String),
    /// [`Code::NotFound`]: missing, or in a workspace the caller does not
    /// belong to.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// [`Code::MethodNotAllowed`].
    #[error("method not allowed")]
    MethodNotAllowed,
    /// [`Code::PayloadTooLarge`]: the body exceeds the size limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// [`Code::RateLimited`]: retry after the given seconds. Also the
    /// answer to a login that must wait after failures, the same whether
    /// or not the address has an account.
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    /// [`Code::TooManyConnections`]: the connection limit is reached.
    #[error("too many connections; retry later")]
    TooManyConnections,
    /// [`Code::Unavailable`]: starting, shutting down, or the store is
    /// unreachable. The message must not carry the failure's details.
    #[error("{0}")]
    Unavailable(String),
    /// [`Code::SecretsRequired`]: these secret fields of a data source
    /// must be sent again (`details.fields`).
    #[error("the source's origin or authentication type changes: send its secrets again ({})", .0.join(", "))]
    SecretsRequired(Vec<String>),
    /// [`Code::Internal`]: a failure of ours; details go to the log, never
    /// to the client.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// An answer of `code` with `message`.
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::Coded(code, message.into())
    }

    /// The entry of the error table this error answers with.
    pub fn code(&self) -> Code {
        match self {
            ApiError::Coded(code, _) => *code,
            ApiError::InvalidJson(_) => Code::InvalidJson,
            ApiError::BadRequest(_) => Code::BadRequest,
            ApiError::Validation(_) => Code::ValidationFailed,
            ApiError::InvalidMailedToken => Code::InvalidMailedToken,
            ApiError::InvalidCredentials => Code::InvalidCredentials,
            ApiError::Forbidden(_) => Code::Forbidden,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::MethodNotAllowed => Code::MethodNotAllowed,
            ApiError::PayloadTooLarge => Code::PayloadTooLarge,
            ApiError::RateLimited(_) => Code::RateLimited,
            ApiError::TooManyConnections => Code::TooManyConnections,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::SecretsRequired(_) => Code::SecretsRequired,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    /// The HTTP status, from the error table.
    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    /// Shorthand for a one-field validation error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    /// 503 for a store that cannot answer now; the cause is logged, not
    /// returned.
    pub fn store_unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "store unavailable");
        ApiError::Unavailable("storage is unavailable; retry later".into())
    }
}

/// A single invalid field.
impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Validation(vec![e])
    }
}

/// A store failure: unreachable or closed is 503, damaged data 500; a
/// missing record, a duplicate and a broken invariant keep their meaning.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => {
                ApiError::new(Code::Conflict, format!("already exists: {what}"))
            }
            StoreError::NotFound(_) => ApiError::NotFound("resource"),
            StoreError::Deleted(_) => ApiError::NotFound("template"),
            StoreError::Constraint("last_owner") => {
                ApiError::new(Code::LastOwner, "a workspace must keep at least one owner")
            }
            StoreError::Constraint("out_of_range") => {
                ApiError::new(Code::OutOfRange, "constraint violated: out_of_range")
            }
            StoreError::Constraint(other) => {
                tracing::warn!(
                    constraint = other,
                    "a store constraint without an error code"
                );
                ApiError::new(Code::Conflict, format!("constraint violated: {other}"))
            }
            StoreError::Unavailable(_) | StoreError::Closed => ApiError::store_unavailable(&e),
            StoreError::Corrupt(_) => ApiError::Internal(e.into()),
        }
    }
}

/// A data source call that was refused or failed: each error of the
/// outbound guard and of the call has its entry. Messages name hosts and
/// limits, never URLs or secrets.
impl From<coform_sources::SourceError> for ApiError {
    fn from(e: coform_sources::SourceError) -> Self {
        use coform_sources::SourceError as S;
        if let S::InvalidConfig { field, message } = e {
            return ApiError::field(&format!("config.{field}"), message);
        }
        let code = match &e {
            S::Refused(_) => Code::BlockedAddress,
            S::InvalidHost { .. } => Code::InvalidHost,
            S::UnsupportedScheme { .. } => Code::UnsupportedScheme,
            S::Unresolvable { .. } | S::NoAddress { .. } => Code::UnresolvableHost,
            S::Unreachable { .. } | S::Connection { .. } => Code::UpstreamUnreachable,
            S::TooManyRedirects { .. } => Code::TooManyRedirects,
            S::InsecureRedirect { .. } => Code::InsecureRedirect,
            S::InvalidRedirect { .. } => Code::InvalidRedirect,
            S::ParameterRefused { .. } => Code::ParameterRefused,
            S::UpstreamTimeout { .. } => Code::UpstreamTimeout,
            S::ResponseTooLarge { .. } => Code::ResponseTooLarge,
            S::RowLimit { .. } => Code::RowLimit,
            S::Upstream { .. } => Code::UpstreamError,
            S::UnsafeRole { .. } => Code::UnsafeRole,
            S::InvalidQuery { .. } => Code::InvalidQuery,
            S::Busy { .. } => Code::SourceBusy,
            S::InvalidResponse { .. } => Code::InvalidResponse,
            S::InvalidConfig { .. } => Code::ValidationFailed,
        };
        ApiError::new(code, e.to_string())
    }
}

/// A room failure: a refused edit is the client's (400); a room that is
/// closing is 503; the store's failures map as above; the rest are ours.
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
            ApiError::SecretsRequired(fields) => serde_json::json!({ "fields": fields }),
            _ => serde_json::Value::Null,
        };
        let code = self.code();
        let body = serde_json::json!({
            "error": { "code": code.as_str(), "message": self.to_string(), "details": details }
        });
        let mut response = (code.status(), Json(body)).into_response();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Status, code and message of the answer `e` gives.
    async fn answer(e: ApiError) -> (u16, String, String) {
        let response = e.into_response();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let text = |k: &str| json["error"][k].as_str().unwrap_or_default().to_owned();
        (status, text("code"), text("message"))
    }

    #[tokio::test]
    async fn store_failures_are_the_servers_and_keep_their_details_in_the_log() {
        let secret = "mongodb://admin:hunter2@db:27017";
        for (e, status, code) in [
            (StoreError::Unavailable(secret.into()), 503, "unavailable"),
            (StoreError::Closed, 503, "unavailable"),
            (StoreError::Corrupt(secret.into()), 500, "internal"),
        ] {
            let (s, c, message) = answer(e.into()).await;
            assert_eq!((s, c.as_str()), (status, code));
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[tokio::test]
    async fn store_refusals_keep_their_meaning() {
        for (e, status, code) in [
            (StoreError::NotFound("user".into()), 404, "not_found"),
            (StoreError::Conflict("email".into()), 409, "conflict"),
            (StoreError::Constraint("last_owner"), 409, "last_owner"),
            (StoreError::Constraint("out_of_range"), 409, "out_of_range"),
            (StoreError::Constraint("something_new"), 409, "conflict"),
        ] {
            let (s, c, _) = answer(e.into()).await;
            assert_eq!((s, c.as_str()), (status, code));
        }
    }

    #[tokio::test]
    async fn room_failures_are_4xx_only_for_a_refused_edit() {
        let corrupt = CollabError::CorruptDocument {
            doc: "d".into(),
            detail: "bad bytes".into(),
        };
        for (e, status, code) in [
            (
                CollabError::BadUpdate("not a form".into()),
                400,
                "bad_request",
            ),
            (CollabError::RoomClosing, 503, "unavailable"),
            (CollabError::ShuttingDown, 503, "unavailable"),
            (
                CollabError::Store(StoreError::Unavailable("down".into())),
                503,
                "unavailable",
            ),
            (
                CollabError::Store(StoreError::Corrupt("x".into())),
                500,
                "internal",
            ),
            (corrupt, 500, "internal"),
            (CollabError::Panicked("edit".into()), 500, "internal"),
            (CollabError::Bus("bad url".into()), 500, "internal"),
        ] {
            let (s, c, message) = answer(e.into()).await;
            assert_eq!((s, c.as_str()), (status, code));
            if s >= 500 {
                assert!(!message.contains("bad"), "{message}");
            }
        }
    }

    #[test]
    fn every_shorthand_answers_with_its_own_entry() {
        let cases = [
            (ApiError::InvalidJson(String::new()), Code::InvalidJson),
            (ApiError::BadRequest(String::new()), Code::BadRequest),
            (ApiError::Validation(Vec::new()), Code::ValidationFailed),
            (ApiError::InvalidMailedToken, Code::InvalidMailedToken),
            (ApiError::InvalidCredentials, Code::InvalidCredentials),
            (ApiError::Forbidden(String::new()), Code::Forbidden),
            (ApiError::NotFound("x"), Code::NotFound),
            (ApiError::MethodNotAllowed, Code::MethodNotAllowed),
            (ApiError::PayloadTooLarge, Code::PayloadTooLarge),
            (ApiError::RateLimited(1), Code::RateLimited),
            (ApiError::TooManyConnections, Code::TooManyConnections),
            (ApiError::Unavailable(String::new()), Code::Unavailable),
            (ApiError::internal(anyhow::anyhow!("x")), Code::Internal),
            (ApiError::new(Code::EmailTaken, "taken"), Code::EmailTaken),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code);
            assert_eq!(e.status(), code.status());
        }
    }
}
