//! The account: sign-up, the signed-in account (`/api/auth/me`) and
//! password changes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use coform_collab::SessionSet;
use coform_storage::{StoreError, TokenKind, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::checks::{check_color, check_name, check_object, check_password, normalize_email};
use super::limited;
use super::links::{send_link, send_mail};
use super::session::{start_session, TokenResponse};
use crate::api::access::{self, end_sessions};
use crate::api::extract::{ApiJson, AuthUser, Authed, ClientInfo};
use crate::auth::ratelimit::Limit;
use crate::auth::{now_ms, password, secret};
use crate::error::{ApiError, ApiResult, Code, FieldError, FieldErrors};
use crate::server::AppState;

const REGISTER_PER_IP: Limit = Limit::per_hour(10);

/// Requests that confirm the current password while signed in (e-mail
/// change, password change, account deletion), per account: a stolen
/// access token must not become a way to guess the password.
const PASSWORD_CHECKS_PER_ACCOUNT: Limit = Limit::per_hour(10);

/// Presence colours given to new accounts.
const COLORS: [&str; 8] = [
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d",
];

/// An account as the API shows it (never the password hash).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub color: String,
    /// Whether `email` was proved by the token mailed to it.
    pub email_verified: bool,
    /// A new address the account asked to change to: `email` stays the
    /// account's address until the link mailed to this one is opened.
    pub pending_email: Option<String>,
    pub last_login: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    #[schema(value_type = Object)]
    pub profile: serde_json::Value,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            color: u.color.clone(),
            email_verified: u.email_verified,
            pending_email: u.pending_email.clone(),
            last_login: u.last_login,
            created_at: u.created_at,
            updated_at: u.updated_at,
            profile: u.profile.clone(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateMeRequest {
    pub name: Option<String>,
    /// A new address: it becomes `pendingEmail` and replaces `email` only
    /// once the link mailed to it is opened. Needs `currentPassword`. The
    /// current address cancels a pending change.
    pub email: Option<String>,
    pub color: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub profile: Option<serde_json::Value>,
    /// The account's password; required with a new `email`.
    pub current_password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteMeRequest {
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// Create an account; signs in at once and e-mails a verification link.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = TokenResponse), (status = 400, description = "Not JSON"),
              (status = 409, description = "E-mail taken"), (status = 422, description = "Invalid fields"),
              (status = 429, description = "Too many sign-ups from this address")))]
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    let mut fields = FieldErrors::default();
    let email = fields.check(normalize_email(&req.email));
    let name = fields.check(check_name("name", &req.name, 100));
    fields.check(check_password(
        "password",
        &req.password,
        email.as_deref().unwrap_or(""),
    ));
    let (email, name) = fields.require(email.zip(name))?;
    limited(
        &state,
        format!("register:ip:{}", client.ip),
        REGISTER_PER_IP,
    )
    .await?;
    let now = now_ms();
    let id = secret::new_id();
    let color = COLORS[usize::from(id.as_bytes()[0]) % COLORS.len()].to_owned();
    let user = User {
        id,
        email,
        password_hash: password::hash(req.password)
            .await
            .map_err(ApiError::internal)?,
        name,
        color,
        email_verified: false,
        failed_login_attempts: 0,
        locked_until: None,
        last_login: Some(now),
        password_changed_at: now,
        profile: serde_json::json!({}),
        created_at: now,
        updated_at: now,
        pending_email: None,
    };
    state
        .accounts
        .create_user(&user)
        .await
        .map_err(conflict_is_email_taken)?;
    send_link(&state, &user, TokenKind::VerifyEmail, &user.email).await?;
    Ok((
        StatusCode::CREATED,
        Json(start_session(&state, &user, &client).await?),
    ))
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401)))]
pub async fn me(me: AuthUser) -> Json<UserView> {
    Json(UserView::from(&me.user))
}

/// Change name, colour, profile or e-mail address.
///
/// A new address needs the current password (`currentPassword`; missing:
/// 422 on that field, wrong: 401 `invalid_credentials`) and does not apply
/// at once: it is shown as `pendingEmail`, a confirmation link is mailed to
/// it and a notice to the current address. The account keeps its current
/// (verified) address until the link is opened; asking again replaces the
/// pending address and spends the earlier link, and sending the current
/// address cancels the change. 409 `email_taken` if another account has
/// the address.
#[utoipa::path(put, path = "/api/auth/me", tag = "auth", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses((status = 200, body = UserView),
              (status = 401, description = "Not signed in, or wrong `currentPassword` (`invalid_credentials`)"),
              (status = 409, description = "The new address belongs to another account (`email_taken`)"),
              (status = 422, description = "Invalid fields, or a new `email` without `currentPassword`"),
              (status = 429, description = "Too many address changes")))]
pub async fn update_me(
    Authed(state, me): Authed,
    ApiJson(req): ApiJson<UpdateMeRequest>,
) -> ApiResult<Json<UserView>> {
    let mut user = me.user;
    let mut fields = FieldErrors::default();
    if let Some(name) = fields.given(req.name.as_deref(), |n| check_name("name", n, 100)) {
        user.name = name;
    }
    if let Some(color) = fields.given(req.color.as_deref(), |c| check_color("color", c)) {
        user.color = color;
    }
    let profile = fields.given(req.profile.as_ref(), |p| {
        check_object("profile", p).map(|()| p)
    });
    if let Some(profile) = profile {
        user.profile = profile.clone();
    }
    // The address asked for, if it is not the current one.
    let mut new_email = None;
    let mut cancel_change = false;
    if let Some(email) = fields.given(req.email.as_deref(), normalize_email) {
        if email.eq_ignore_ascii_case(&user.email) {
            cancel_change = user.pending_email.is_some();
        } else {
            if req.current_password.is_none() {
                fields.push(FieldError::new(
                    "currentPassword",
                    "is required to change the e-mail address",
                ));
            }
            new_email = Some(email);
        }
    }
    fields.finish()?;
    if let (Some(email), Some(current)) = (&new_email, req.current_password) {
        confirm_password(&state, &user, current).await?;
        if state
            .accounts
            .user_by_email(email)
            .await?
            .is_some_and(|other| other.id != user.id)
        {
            return Err(email_taken());
        }
        user.pending_email = Some(email.clone());
    }
    if cancel_change {
        user.pending_email = None;
    }
    user.updated_at = now_ms();
    save_user(&state, &user).await?;
    if new_email.is_some() || cancel_change {
        // Only the link of the latest request may confirm a change.
        state
            .accounts
            .revoke_user_tokens(&user.id, TokenKind::ChangeEmail)
            .await?;
    }
    if let Some(email) = &new_email {
        send_link(&state, &user, TokenKind::ChangeEmail, email).await?;
        let notice = format!(
            "Someone signed in to your Coform account asked to change its e-mail address \
             from {old} to {email}.\n\nThe change takes effect only once it is confirmed \
             from {email}; until then your account keeps {old}.\n\nIf this wasn't you, \
             change your password now and end your other sessions.",
            old = user.email
        );
        send_mail(
            &state,
            &user.email,
            "Your Coform e-mail address is being changed",
            notice,
        )
        .await;
    }
    Ok(Json(UserView::from(&user)))
}

fn email_taken() -> ApiError {
    ApiError::new(
        Code::EmailTaken,
        "an account with this e-mail already exists",
    )
}

/// A store conflict on writing a user is its e-mail address being taken.
fn conflict_is_email_taken(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => email_taken(),
        e => e.into(),
    }
}

/// Writes the account; 409 `email_taken` if another account has its
/// address (a change raced with a sign-up or another change).
pub(super) async fn save_user(state: &AppState, user: &User) -> Result<(), ApiError> {
    state
        .accounts
        .update_user(user)
        .await
        .map_err(conflict_is_email_taken)
}

/// Delete the account (confirm with the password). Fails while the account
/// is the last owner of a workspace that has other members.
#[utoipa::path(delete, path = "/api/auth/me", tag = "auth", security(("bearer" = [])), request_body = DeleteMeRequest,
    responses((status = 204), (status = 401), (status = 409, description = "Last owner of a shared workspace"), (status = 429, description = "Too many password checks")))]
pub async fn delete_me(
    Authed(state, me): Authed,
    ApiJson(req): ApiJson<DeleteMeRequest>,
) -> ApiResult<StatusCode> {
    confirm_password(&state, &me.user, req.password).await?;
    let memberships = state.accounts.workspaces_for_user(&me.user.id).await?;
    let removed = state.accounts.delete_user(&me.user.id).await?;
    access::drop_documents(&state, &removed).await?;
    // Open connections of the deleted account close at once (4403).
    for (ws, _) in memberships {
        access::apply_live(&state, &ws.id, &me.user.id, None).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Change the password; every other session ends and every outstanding
/// password-reset token is spent.
#[utoipa::path(put, path = "/api/auth/password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = 401), (status = 422), (status = 429, description = "Too many password checks")))]
pub async fn change_password(
    Authed(state, me): Authed,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let user = me.user;
    confirm_password(&state, &user, req.current_password).await?;
    check_password("newPassword", &req.new_password, &user.email)?;
    set_password(&state, user, req.new_password, Some(&me.session_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks the password of a signed-in account, within its budget of
/// such checks (a stolen access token must not become a way to guess it):
/// 429, or 401 `invalid_credentials` if it is wrong.
async fn confirm_password(state: &AppState, user: &User, given: String) -> Result<(), ApiError> {
    limited(
        state,
        format!("password-check:acct:{}", user.id),
        PASSWORD_CHECKS_PER_ACCOUNT,
    )
    .await?;
    if !password::verify(given, user.password_hash.clone()).await {
        return Err(ApiError::InvalidCredentials);
    }
    Ok(())
}

/// Stores `new` as the account's password, spends every reset link mailed
/// before (none may undo it) and ends every session but `keep`.
pub(super) async fn set_password(
    state: &AppState,
    mut user: User,
    new: String,
    keep: Option<&str>,
) -> Result<(), ApiError> {
    let now = now_ms();
    user.password_hash = password::hash(new).await.map_err(ApiError::internal)?;
    user.password_changed_at = now;
    user.updated_at = now;
    state.accounts.update_user(&user).await?;
    state
        .accounts
        .revoke_user_tokens(&user.id, TokenKind::ResetPassword)
        .await?;
    state.accounts.revoke_user_sessions(&user.id, keep).await?;
    end_sessions(state, &user.id, SessionSet::AllBut(keep.map(Into::into))).await;
    Ok(())
}
