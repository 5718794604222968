//! Request extractors that answer in the API's error shape.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::AsHeaderName;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use coform_storage::User;
use serde::de::DeserializeOwned;

use crate::auth::jwt::TokenError;
use crate::auth::now_ms;
use crate::error::{ApiError, Code};
use crate::server::AppState;

/// A JSON body, which must be an object; a malformed one answers 400
/// `invalid_json` (or 413). Every body of the API is an object: an array
/// is refused here, where serde would read it as the struct's fields in
/// order (`[]` as all defaults).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let value = match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(v)) => v,
            Err(rejection) => return Err(json_error(rejection)),
        };
        if !value.is_object() {
            return Err(ApiError::InvalidJson(
                "the body must be a JSON object".into(),
            ));
        }
        // Read again from bytes, for axum's messages (with the field's path).
        let bytes = serde_json::to_vec(&value).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        Json::<T>::from_bytes(&bytes)
            .map(|Json(v)| ApiJson(v))
            .map_err(json_error)
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::InvalidJson("expected a JSON body (Content-Type: application/json)".into())
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge
        }
        other => ApiError::InvalidJson(other.body_text()),
    }
}

/// Query parameters; malformed ones answer 400 `bad_request` in the
/// API's error shape.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// The signed-in user of a request (`Authorization: Bearer <access token>`).
/// The token's session must still be active: logout and password changes
/// take effect on the next request, not at token expiry.
pub struct AuthUser {
    pub user: User,
    pub session_id: String,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = header_text(&parts.headers, header::AUTHORIZATION)
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or(ApiError::new(
                Code::Unauthorized,
                "sign in first: missing bearer token",
            ))?;
        authenticate(state, token.trim()).await
    }
}

/// The server's state and the signed-in user, the pair nearly every
/// handler starts from, taken in one extractor.
pub struct Authed(pub AppState, pub AuthUser);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let me = AuthUser::from_request_parts(parts, state).await?;
        Ok(Authed(state.clone(), me))
    }
}

/// 401 `session_revoked` unless session `sid` of `user_id` is active (not
/// revoked, not expired). Access and document tokens both name their
/// session: ending it stops them at once, not when they expire.
pub async fn require_session(state: &AppState, sid: &str, user_id: &str) -> Result<(), ApiError> {
    let session = state.accounts.session(sid).await?;
    let active = session
        .as_ref()
        .is_some_and(|s| !s.revoked && s.expires_at > now_ms() && s.user_id == user_id);
    if active {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::SessionRevoked,
            "this session has ended; sign in again",
        ))
    }
}

/// The account a token names; 401 with `gone` if it was deleted since
/// the token was issued.
pub async fn token_account(state: &AppState, user_id: &str, gone: Code) -> Result<User, ApiError> {
    state
        .accounts
        .user(user_id)
        .await?
        .ok_or(ApiError::new(gone, "the account no longer exists"))
}

/// Checks an access token and its session; returns the user.
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let claims = state.auth.keys.verify_access(token).map_err(|e| match e {
        TokenError::Expired => ApiError::new(
            Code::TokenExpired,
            "the access token has expired; refresh it",
        ),
        TokenError::Invalid => ApiError::new(Code::InvalidToken, "the access token is not valid"),
    })?;
    require_session(state, &claims.sid, &claims.sub).await?;
    let user = token_account(state, &claims.sub, Code::SessionRevoked).await?;
    Ok(AuthUser {
        user,
        session_id: claims.sid,
    })
}

/// Where a request came from, for rate limits and the session list.
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Behind a trusted proxy the nearest hop it recorded is the client.
        let forwarded = state
            .config
            .trust_proxy
            .then(|| header_text(&parts.headers, "x-forwarded-for"))
            .flatten()
            .and_then(|v| v.rsplit(',').next())
            .map(|ip| ip.trim().to_owned())
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
        let ip = forwarded.unwrap_or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "unknown".into())
        });
        let user_agent = header_text(&parts.headers, header::USER_AGENT)
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        Ok(ClientInfo { ip, user_agent })
    }
}

/// A request header's value as text (`None` if absent or not visible ASCII).
pub fn header_text(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A whole number in a JSON body, written either way JSON allows (`300`
/// or `300.0`): JSON Schema's `integer`, which the OpenAPI document
/// promises, counts both. Anything else (a fraction, a negative, too
/// large) is refused as the plain integer type would be.
pub fn whole_u32<'de, D>(d: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let Some(n) = <Option<serde_json::Number> as serde::Deserialize>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u64)
    });
    whole
        .and_then(|v| u32::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "expected a whole number from 0 to {}, not {n}",
                u32::MAX
            ))
        })
}

/// Reads `T` from a JSON body taken as a [`serde_json::Value`], first
/// writing every whole number given as a float (`233.0`) as the integer it
/// is, as JSON Schema's `integer` counts it; a body `T` does not fit
/// answers 400 `invalid_json` naming the field.
pub fn from_json_value<T: DeserializeOwned>(mut body: serde_json::Value) -> Result<T, ApiError> {
    fn whole_numbers(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n) if !n.is_i64() && !n.is_u64() => {
                if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0) {
                    if f >= i64::MIN as f64 && f < i64::MAX as f64 {
                        *v = serde_json::Value::from(f as i64);
                    } else if f >= 0.0 && f < u64::MAX as f64 {
                        *v = serde_json::Value::from(f as u64);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers),
            serde_json::Value::Object(fields) => fields.values_mut().for_each(whole_numbers),
            _ => {}
        }
    }
    whole_numbers(&mut body);
    serde_path_to_error::deserialize(body).map_err(|e| {
        ApiError::InvalidJson(format!(
            "Failed to deserialize the JSON body into the target type: {}: {}",
            e.path(),
            e.inner()
        ))
    })
}
