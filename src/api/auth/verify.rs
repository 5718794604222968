//! Proving an address: e-mail verification, confirming a change of
//! address from the new address, and new verification links. A proved
//! address joins the workspaces that invited it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use coform_storage::{TokenKind, UsedToken, User};
use serde::Deserialize;
use utoipa::IntoParams;

use super::account::{save_user, UserView};
use super::limited;
use super::links::{mailed_to, redeem, send_link};
use crate::api::extract::{ApiQuery, Authed};
use crate::auth::ratelimit::Limit;
use crate::auth::{now_ms, secret};
use crate::error::{ApiError, ApiResult, Code};
use crate::server::AppState;

/// New verification links for the account's own address.
const VERIFY_RESEND_PER_ACCOUNT: Limit = Limit::per_hour(3);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    pub token: String,
}

/// Confirm an e-mail address with the token mailed to it: the account's
/// address (registration), or the new address of a requested change, which
/// then becomes the account's (verified) address. Workspaces that invited
/// the address now have the account as a member. A token proves only the
/// address it was mailed to: 400 `invalid_token` if the account's address
/// (or pending address) is another one now. 409 `email_taken` if another
/// account took the new address meanwhile.
#[utoipa::path(get, path = "/api/auth/verify-email", tag = "auth", params(VerifyQuery),
    responses((status = 200, body = UserView), (status = 400, description = "Invalid token"),
              (status = 409, description = "The new address was taken meanwhile (`email_taken`)")))]
pub async fn verify_email(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> Result<Json<UserView>, ApiError> {
    let hash = secret::hash_token(&q.token);
    let now = now_ms();
    if let Some(used) = state
        .accounts
        .consume_user_token(&hash, TokenKind::ChangeEmail, now)
        .await?
    {
        return confirm_email_change(&state, &used).await.map(Json);
    }
    let mut user = redeem(&state, &hash, TokenKind::VerifyEmail, now).await?;
    user.email_verified = true;
    user.updated_at = now_ms();
    state.accounts.update_user(&user).await?;
    join_invited(&state, &user).await?;
    Ok(Json(UserView::from(&user)))
}

/// The owner of `user.email` just proved it: the workspaces that invited
/// that address get the account as a member.
async fn join_invited(state: &AppState, user: &User) -> Result<(), ApiError> {
    let joined = state
        .accounts
        .accept_invitations(&user.id, &user.email, now_ms())
        .await?;
    for m in joined {
        tracing::info!(user = %user.id, workspace = %m.workspace_id, role = m.role.as_str(),
            "invitation accepted");
    }
    Ok(())
}

/// Makes the pending address the account's address, if `used` was mailed
/// to that very address.
async fn confirm_email_change(state: &AppState, used: &UsedToken) -> Result<UserView, ApiError> {
    let mut user = state
        .accounts
        .user(&used.user_id)
        .await?
        .ok_or(ApiError::InvalidMailedToken)?;
    if !user
        .pending_email
        .as_ref()
        .is_some_and(|pending| mailed_to(used, pending))
    {
        return Err(ApiError::InvalidMailedToken);
    }
    user.email = used.email.clone();
    user.email_verified = true;
    user.pending_email = None;
    user.updated_at = now_ms();
    save_user(state, &user).await?;
    state
        .accounts
        .revoke_user_tokens(&user.id, TokenKind::ChangeEmail)
        .await?;
    join_invited(state, &user).await?;
    Ok(UserView::from(&user))
}

/// Mail a new verification link to the account's address (the first one
/// expired or got lost). Earlier links keep working until they expire.
#[utoipa::path(post, path = "/api/auth/verify-email/resend", tag = "auth", security(("bearer" = [])),
    responses((status = 202, description = "A new link was mailed"), (status = 401),
              (status = 409, description = "The address is verified already (`already_verified`)"),
              (status = 429)))]
pub async fn resend_verification(Authed(state, me): Authed) -> ApiResult<StatusCode> {
    if me.user.email_verified {
        return Err(ApiError::new(
            Code::AlreadyVerified,
            "this account's e-mail address is verified already",
        ));
    }
    limited(
        &state,
        format!("verify-resend:acct:{}", me.user.id),
        VERIFY_RESEND_PER_ACCOUNT,
    )
    .await?;
    send_link(&state, &me.user, TokenKind::VerifyEmail, &me.user.email).await?;
    Ok(StatusCode::ACCEPTED)
}
