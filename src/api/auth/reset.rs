//! Forgotten passwords: a reset token mailed to the account's address,
//! and setting a new password with it.

use axum::extract::State;
use axum::http::StatusCode;
use coform_storage::TokenKind;
use serde::Deserialize;
use utoipa::ToSchema;

use super::account::set_password;
use super::checks::check_password;
use super::limited;
use super::links::{redeem, send_link};
use crate::api::extract::{ApiJson, ClientInfo};
use crate::auth::ratelimit::Limit;
use crate::auth::{now_ms, secret};
use crate::error::ApiError;
use crate::server::AppState;

const RESET_PER_IP: Limit = Limit::per_hour(10);

/// Reset mails one client address may ask for to one e-mail address.
const RESET_PER_SOURCE_AND_ADDRESS: Limit = Limit::per_hour(3);

/// Reset mails to one e-mail address from all client addresses: bounds the
/// mail a stranger can send to it, loosely enough that one stranger
/// cannot use up the owner's resets.
const RESET_PER_ADDRESS: Limit = Limit::per_hour(10);

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForgotRequest {
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetRequest {
    pub token: String,
    pub password: String,
}

/// E-mail a password-reset token. Always answers 202, whether or not the
/// address has an account. Limits: 10 per hour per client address, 3 per
/// hour per client address and e-mail address, 10 per hour per e-mail
/// address (so one stranger cannot use up the owner's resets).
#[utoipa::path(post, path = "/api/auth/forgot-password", tag = "auth", request_body = ForgotRequest,
    responses((status = 202), (status = 429)))]
pub async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<ForgotRequest>,
) -> Result<StatusCode, ApiError> {
    let email = req.email.trim().to_lowercase();
    // Hashed: keys stay short whatever was typed, and no counter store
    // (Redis with replicas) holds the address.
    let address = state.auth.limiter.email_key(&email);
    limited(&state, format!("reset:ip:{}", client.ip), RESET_PER_IP).await?;
    limited(
        &state,
        format!("reset:src-addr:{}:{address}", client.ip),
        RESET_PER_SOURCE_AND_ADDRESS,
    )
    .await?;
    limited(&state, format!("reset:addr:{address}"), RESET_PER_ADDRESS).await?;
    if let Some(user) = state.accounts.user_by_email(&email).await? {
        send_link(&state, &user, TokenKind::ResetPassword, &user.email).await?;
    }
    Ok(StatusCode::ACCEPTED)
}

/// Set a new password with an e-mailed token; ends every session and
/// spends every other reset token of the account.
#[utoipa::path(post, path = "/api/auth/reset-password", tag = "auth", request_body = ResetRequest,
    responses((status = 204), (status = 400, description = "Invalid token"), (status = 422), (status = 429)))]
pub async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    limited(&state, format!("reset-use:ip:{}", client.ip), RESET_PER_IP).await?;
    // Checked before the token is used up; again below against the e-mail.
    check_password("password", &req.password, "")?;
    let hash = secret::hash_token(&req.token);
    let mut user = redeem(&state, &hash, TokenKind::ResetPassword, now_ms()).await?;
    check_password("password", &req.password, &user.email)?;
    user.failed_login_attempts = 0;
    user.locked_until = None;
    // Every other reset link mailed before is spent too: none may set the
    // password again.
    set_password(&state, user, req.password, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
