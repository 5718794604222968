//! `/api/auth/*`: accounts, tokens and sessions.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use coform_storage::{RefreshOutcome, Session, TokenKind, User};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::end_sessions;
use super::extract::{ApiJson, ApiQuery, AuthUser, ClientInfo};
use crate::auth::mailer::Mail;
use crate::auth::ratelimit::Limit;
use crate::auth::{now_ms, password, secret};
use crate::error::{ApiError, Code, FieldError};
use crate::server::AppState;
use coform_collab::SessionSet;

const REGISTER_PER_IP: Limit = Limit {
    max: 10,
    window: Duration::from_secs(3600),
};
const RESET_PER_IP: Limit = Limit {
    max: 10,
    window: Duration::from_secs(3600),
};
/// Reset mails one client address may ask for to one e-mail address.
const RESET_PER_SOURCE_AND_ADDRESS: Limit = Limit {
    max: 3,
    window: Duration::from_secs(3600),
};
/// Reset mails to one e-mail address from all client addresses: bounds the
/// mail a stranger can send to it, loosely enough that one stranger
/// cannot use up the owner's resets.
const RESET_PER_ADDRESS: Limit = Limit {
    max: 10,
    window: Duration::from_secs(3600),
};
/// New verification links for the account's own address.
const VERIFY_RESEND_PER_ACCOUNT: Limit = Limit {
    max: 3,
    window: Duration::from_secs(3600),
};
/// Requests that confirm the current password while signed in (e-mail
/// change, password change, account deletion), per account: a stolen
/// access token must not become a way to guess the password.
const PASSWORD_CHECKS_PER_ACCOUNT: Limit = Limit {
    max: 10,
    window: Duration::from_secs(3600),
};
const VERIFY_TTL: Duration = Duration::from_secs(24 * 3600);
const RESET_TTL: Duration = Duration::from_secs(3600);

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

/// Tokens handed out at login, registration and refresh.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: UserView,
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
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

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

#[derive(Deserialize, IntoParams)]
pub struct VerifyQuery {
    pub token: String,
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
    #[schema(value_type = Object)]
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

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub user_agent: String,
    pub ip: String,
    /// The session of the request's own token.
    pub current: bool,
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct RevokeAllQuery {
    /// Also end the session making the request.
    #[serde(default)]
    pub include_current: bool,
}

/// Lower-cases and checks an e-mail address.
pub fn normalize_email(email: &str) -> Result<String, FieldError> {
    let e = email.trim().to_lowercase();
    let bad = |m: &str| FieldError {
        field: "email".into(),
        message: m.into(),
    };
    if e.is_empty() || e.len() > 254 {
        return Err(bad("must be an e-mail address of at most 254 characters"));
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err(bad("must be an e-mail address like name@example.com"));
    };
    let ok_chars = |s: &str| {
        !s.is_empty()
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c))
    };
    if !ok_chars(local)
        || !ok_chars(domain)
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(bad("must be an e-mail address like name@example.com"));
    }
    Ok(e)
}

/// Checks a display name.
pub fn check_name(field: &str, name: &str, max: usize) -> Result<String, FieldError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > max || n.chars().any(char::is_control) {
        return Err(FieldError {
            field: field.into(),
            message: format!("must be 1 to {max} characters without control characters"),
        });
    }
    Ok(n.to_owned())
}

/// Checks a free-text description (at most 2000 characters).
pub fn check_description(field: &str, description: &str) -> Result<(), FieldError> {
    if description.chars().count() > 2000 {
        return Err(FieldError {
            field: field.into(),
            message: "must be at most 2000 characters".into(),
        });
    }
    Ok(())
}

fn check_password(field: &str, password: &str, email: &str) -> Result<(), FieldError> {
    let problems = password::policy_violations(password, email);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(FieldError {
            field: field.into(),
            message: format!("password {}", problems.join("; ")),
        })
    }
}

fn limited(state: &AppState, key: String, limit: Limit) -> Result<(), ApiError> {
    state.auth.limiter.hit(&key, limit).map_err(retry_after)
}

/// 429 with the wait in whole seconds, rounded up (at least 1).
fn retry_after(wait: Duration) -> ApiError {
    ApiError::RateLimited(wait.as_millis().div_ceil(1000).max(1) as u64)
}

/// Starts a session and issues its first tokens.
async fn start_session(
    state: &AppState,
    user: &User,
    client: &ClientInfo,
) -> Result<TokenResponse, ApiError> {
    let now = now_ms();
    let session = Session {
        id: secret::new_id(),
        user_id: user.id.clone(),
        created_at: now,
        last_used_at: now,
        expires_at: now + state.auth.refresh_ttl.as_millis() as i64,
        revoked: false,
        user_agent: client.user_agent.clone(),
        ip: client.ip.clone(),
    };
    let refresh = secret::new_token();
    state
        .accounts
        .create_session(&session, &secret::hash_token(&refresh))
        .await?;
    tokens(state, user, &session.id, refresh)
}

fn tokens(
    state: &AppState,
    user: &User,
    session: &str,
    refresh: String,
) -> Result<TokenResponse, ApiError> {
    let access = state
        .auth
        .keys
        .issue_access(&user.id, session, state.auth.access_ttl)
        .map_err(ApiError::internal)?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: state.auth.access_ttl.as_secs(),
        user: UserView::from(user),
    })
}

/// Mails `to` a new one-time token of `kind` for `user`. The token is
/// bound to `to`: it proves control of that address and of no other.
async fn send_link(
    state: &AppState,
    user: &User,
    kind: TokenKind,
    to: &str,
) -> Result<(), ApiError> {
    let token = secret::new_token();
    let ttl = if kind == TokenKind::ResetPassword {
        RESET_TTL
    } else {
        VERIFY_TTL
    };
    state
        .accounts
        .create_user_token(
            &secret::hash_token(&token),
            &user.id,
            kind,
            to,
            now_ms() + ttl.as_millis() as i64,
        )
        .await?;
    let base = state.auth.public_url.trim_end_matches('/');
    let link = format!("{base}/api/auth/verify-email?token={token}");
    let (subject, body) = match kind {
        TokenKind::VerifyEmail => (
            "Verify your Coform e-mail address",
            format!("Open this link to verify your address:\n{link}\n\nOr use this token: {token}"),
        ),
        TokenKind::ChangeEmail => (
            "Confirm your new Coform e-mail address",
            format!("Open this link to make this the address of your Coform account:\n{link}\n\nOr use this token: {token}\n\nUntil then your account keeps its current address. If you did not ask for this, ignore this message."),
        ),
        TokenKind::ResetPassword => (
            "Reset your Coform password",
            format!("Use this token to set a new password (valid for one hour):\n{token}\n\nIf you did not ask for this, ignore this message."),
        ),
    };
    send_mail(state, to, subject, body).await;
    Ok(())
}

/// Sends one mail; a failure is logged, never shown to the requester.
async fn send_mail(state: &AppState, to: &str, subject: &str, body: String) {
    let mail = Mail {
        to: to.to_owned(),
        subject: subject.into(),
        body,
    };
    if let Err(e) = state.auth.mailer.send(mail).await {
        tracing::error!(error = %e, "could not send mail");
    }
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
    let mut errors = Vec::new();
    let email = normalize_email(&req.email).map_err(|e| errors.push(e)).ok();
    let name = check_name("name", &req.name, 100)
        .map_err(|e| errors.push(e))
        .ok();
    if let Err(e) = check_password("password", &req.password, email.as_deref().unwrap_or("")) {
        errors.push(e);
    }
    let (Some(email), Some(name), true) = (email, name, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    limited(
        &state,
        format!("register:ip:{}", client.ip),
        REGISTER_PER_IP,
    )?;
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

/// Sign in with e-mail and password.
///
/// Failed logins slow down their source, not the account: after 5 failures
/// from one client address at one e-mail address, that client address must
/// wait 1 s, then 2 s, 4 s, ... up to 15 min (429 `rate_limited` with
/// Retry-After); other client addresses, and the owner's existing
/// sessions, are not affected, and a successful login starts over. Every
/// answer is the same for an address without an account as for one with
/// an account, locked or not.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "Wrong e-mail or password"),
              (status = 429, description = "Too many attempts from this client address, or failed attempts at this e-mail address; see Retry-After")))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let email = req.email.trim().to_lowercase();
    let limiter = &state.auth.limiter;
    let limits = &state.auth.login_limits;
    limiter
        .login_check(limits, &email, &client.ip)
        .map_err(retry_after)?;
    let found = state.accounts.user_by_email(&email).await?;
    let Some(mut user) = found else {
        // Same work as for a real account: timing does not reveal it.
        password::verify(req.password, password::dummy_hash().await.to_owned()).await;
        limiter.login_failed(limits, &email, &client.ip);
        return Err(ApiError::InvalidCredentials);
    };
    if !password::verify(req.password, user.password_hash.clone()).await {
        limiter.login_failed(limits, &email, &client.ip);
        return Err(ApiError::InvalidCredentials);
    }
    limiter.login_succeeded(&email, &client.ip);
    user.last_login = Some(now_ms());
    state.accounts.update_user(&user).await?;
    Ok(Json(start_session(&state, &user, &client).await?))
}

/// Trade a refresh token for new tokens. Each refresh token works once;
/// presenting a used one ends its whole session (it was stolen or leaked).
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "Unknown, used or expired token")))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let new = secret::new_token();
    let outcome = state
        .accounts
        .rotate_refresh(
            &secret::hash_token(&req.refresh_token),
            &secret::hash_token(&new),
            now_ms(),
        )
        .await?;
    match outcome {
        RefreshOutcome::Rotated(session) => {
            let user = state
                .accounts
                .user(&session.user_id)
                .await?
                .ok_or(ApiError::new(
                    Code::InvalidToken,
                    "the account no longer exists",
                ))?;
            Ok(Json(tokens(&state, &user, &session.id, new)?))
        }
        RefreshOutcome::Reused(session) => {
            tracing::warn!(session = %session.id, "refresh token reused; session revoked");
            end_sessions(
                &state,
                &session.user_id,
                SessionSet::One(session.id.as_str().into()),
            )
            .await;
            Err(ApiError::new(
                Code::TokenReused,
                "this refresh token was already used; the session has been ended",
            ))
        }
        RefreshOutcome::Inactive => Err(ApiError::new(
            Code::SessionRevoked,
            "this session has ended; sign in again",
        )),
        RefreshOutcome::Unknown => Err(ApiError::new(Code::InvalidToken, "unknown refresh token")),
    }
}

/// End the current session (its access and refresh tokens stop working).
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401)))]
pub async fn logout(State(state): State<AppState>, me: AuthUser) -> Result<StatusCode, ApiError> {
    state.accounts.revoke_session(&me.session_id).await?;
    end_sessions(
        &state,
        &me.user.id,
        SessionSet::One(me.session_id.as_str().into()),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
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
    // Hashed: keys stay short whatever was typed.
    let address = secret::hash_token(&email);
    limited(&state, format!("reset:ip:{}", client.ip), RESET_PER_IP)?;
    limited(
        &state,
        format!("reset:src-addr:{}:{address}", client.ip),
        RESET_PER_SOURCE_AND_ADDRESS,
    )?;
    limited(&state, format!("reset:addr:{address}"), RESET_PER_ADDRESS)?;
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
    limited(&state, format!("reset-use:ip:{}", client.ip), RESET_PER_IP)?;
    // Checked before the token is used up; again below against the e-mail.
    check_password("password", &req.password, "").map_err(|e| ApiError::Validation(vec![e]))?;
    let hash = secret::hash_token(&req.token);
    let used = state
        .accounts
        .consume_user_token(&hash, TokenKind::ResetPassword, now_ms())
        .await?
        .ok_or(ApiError::InvalidMailedToken)?;
    // A link mailed to an address the account no longer has proves nothing.
    let mut user = state
        .accounts
        .user(&used.user_id)
        .await?
        .filter(|u| mailed_to(&used, &u.email))
        .ok_or(ApiError::InvalidMailedToken)?;
    check_password("password", &req.password, &user.email)
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let now = now_ms();
    user.password_hash = password::hash(req.password)
        .await
        .map_err(ApiError::internal)?;
    user.password_changed_at = now;
    user.failed_login_attempts = 0;
    user.locked_until = None;
    user.updated_at = now;
    state.accounts.update_user(&user).await?;
    // Every other reset link mailed before is spent too: none may set the
    // password again.
    state
        .accounts
        .revoke_user_tokens(&user.id, TokenKind::ResetPassword)
        .await?;
    state.accounts.revoke_user_sessions(&user.id, None).await?;
    end_sessions(&state, &user.id, SessionSet::AllBut(None)).await;
    Ok(StatusCode::NO_CONTENT)
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
    let used = state
        .accounts
        .consume_user_token(&hash, TokenKind::VerifyEmail, now)
        .await?
        .ok_or(ApiError::InvalidMailedToken)?;
    let mut user = state
        .accounts
        .user(&used.user_id)
        .await?
        .filter(|u| mailed_to(&used, &u.email))
        .ok_or(ApiError::InvalidMailedToken)?;
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

/// Whether `used` was mailed to `address`: a token proves control of that
/// address and of no other (tokens stored before they carried an address
/// prove none).
fn mailed_to(used: &coform_storage::UsedToken, address: &str) -> bool {
    !used.email.is_empty() && used.email.eq_ignore_ascii_case(address)
}

/// Makes the pending address the account's address, if `used` was mailed
/// to that very address.
async fn confirm_email_change(
    state: &AppState,
    used: &coform_storage::UsedToken,
) -> Result<UserView, ApiError> {
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
    state
        .accounts
        .update_user(&user)
        .await
        .map_err(conflict_is_email_taken)?;
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
pub async fn resend_verification(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<StatusCode, ApiError> {
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
    )?;
    send_link(&state, &me.user, TokenKind::VerifyEmail, &me.user.email).await?;
    Ok(StatusCode::ACCEPTED)
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
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<UpdateMeRequest>,
) -> Result<Json<UserView>, ApiError> {
    let mut user = me.user;
    let mut errors = Vec::new();
    if let Some(name) = &req.name {
        match check_name("name", name, 100) {
            Ok(n) => user.name = n,
            Err(e) => errors.push(e),
        }
    }
    if let Some(color) = &req.color {
        let ok = color.len() == 7
            && color.starts_with('#')
            && color[1..].chars().all(|c| c.is_ascii_hexdigit());
        if ok {
            user.color = color.to_lowercase();
        } else {
            errors.push(FieldError {
                field: "color".into(),
                message: "must be a colour like #1a2b3c".into(),
            });
        }
    }
    if let Some(profile) = &req.profile {
        if !profile.is_object() || profile.to_string().len() > 16 * 1024 {
            errors.push(FieldError {
                field: "profile".into(),
                message: "must be a JSON object of at most 16 KiB".into(),
            });
        } else {
            user.profile = profile.clone();
        }
    }
    // The address asked for, if it is not the current one.
    let mut new_email = None;
    let mut cancel_change = false;
    if let Some(email) = &req.email {
        match normalize_email(email) {
            Ok(e) if e.eq_ignore_ascii_case(&user.email) => {
                cancel_change = user.pending_email.is_some();
            }
            Ok(e) => {
                if req.current_password.is_none() {
                    errors.push(FieldError {
                        field: "currentPassword".into(),
                        message: "is required to change the e-mail address".into(),
                    });
                }
                new_email = Some(e);
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if let (Some(email), Some(current)) = (&new_email, req.current_password) {
        limited(
            &state,
            format!("password-check:acct:{}", user.id),
            PASSWORD_CHECKS_PER_ACCOUNT,
        )?;
        if !password::verify(current, user.password_hash.clone()).await {
            return Err(ApiError::InvalidCredentials);
        }
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
    state
        .accounts
        .update_user(&user)
        .await
        .map_err(conflict_is_email_taken)?;
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
fn conflict_is_email_taken(e: coform_storage::StoreError) -> ApiError {
    match e {
        coform_storage::StoreError::Conflict(_) => email_taken(),
        e => e.into(),
    }
}

/// Delete the account (confirm with the password). Fails while the account
/// is the last owner of a workspace that has other members.
#[utoipa::path(delete, path = "/api/auth/me", tag = "auth", security(("bearer" = [])), request_body = DeleteMeRequest,
    responses((status = 204), (status = 401), (status = 409, description = "Last owner of a shared workspace"), (status = 429, description = "Too many password checks")))]
pub async fn delete_me(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<DeleteMeRequest>,
) -> Result<StatusCode, ApiError> {
    limited(
        &state,
        format!("password-check:acct:{}", me.user.id),
        PASSWORD_CHECKS_PER_ACCOUNT,
    )?;
    if !password::verify(req.password, me.user.password_hash.clone()).await {
        return Err(ApiError::InvalidCredentials);
    }
    let memberships = state.accounts.workspaces_for_user(&me.user.id).await?;
    let removed = state.accounts.delete_user(&me.user.id).await?;
    super::access::drop_documents(&state, &removed).await?;
    // Open connections of the deleted account close at once (4403).
    for (ws, _) in memberships {
        super::access::apply_live(&state, &ws.id, &me.user.id, None).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Change the password; every other session ends and every outstanding
/// password-reset token is spent.
#[utoipa::path(put, path = "/api/auth/password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = 401), (status = 422), (status = 429, description = "Too many password checks")))]
pub async fn change_password(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let mut user = me.user;
    limited(
        &state,
        format!("password-check:acct:{}", user.id),
        PASSWORD_CHECKS_PER_ACCOUNT,
    )?;
    if !password::verify(req.current_password, user.password_hash.clone()).await {
        return Err(ApiError::InvalidCredentials);
    }
    check_password("newPassword", &req.new_password, &user.email)
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let now = now_ms();
    user.password_hash = password::hash(req.new_password)
        .await
        .map_err(ApiError::internal)?;
    user.password_changed_at = now;
    user.updated_at = now;
    state.accounts.update_user(&user).await?;
    // A reset link mailed before the change must not undo it.
    state
        .accounts
        .revoke_user_tokens(&user.id, TokenKind::ResetPassword)
        .await?;
    state
        .accounts
        .revoke_user_sessions(&user.id, Some(&me.session_id))
        .await?;
    end_sessions(
        &state,
        &user.id,
        SessionSet::AllBut(Some(me.session_id.as_str().into())),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Active sessions of the account.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionView>), (status = 401)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let sessions = state
        .accounts
        .sessions_for_user(&me.user.id, now_ms())
        .await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| SessionView {
                current: s.id == me.session_id,
                id: s.id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
                user_agent: s.user_agent,
                ip: s.ip,
            })
            .collect(),
    ))
}

/// End one of the account's sessions.
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state.accounts.session(&id).await? {
        Some(s) if s.user_id == me.user.id => {
            state.accounts.revoke_session(&id).await?;
            end_sessions(&state, &me.user.id, SessionSet::One(id.as_str().into())).await;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::NotFound("session")),
    }
}

/// End every other session of the account (`?includeCurrent=true`: all).
#[utoipa::path(delete, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])), params(RevokeAllQuery),
    responses((status = 200, description = "How many sessions ended"), (status = 401)))]
pub async fn revoke_all_sessions(
    State(state): State<AppState>,
    me: AuthUser,
    ApiQuery(q): ApiQuery<RevokeAllQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let keep = (!q.include_current).then_some(me.session_id.as_str());
    let revoked = state
        .accounts
        .revoke_user_sessions(&me.user.id, keep)
        .await?;
    end_sessions(
        &state,
        &me.user.id,
        SessionSet::AllBut(keep.map(Into::into)),
    )
    .await;
    Ok(Json(serde_json::json!({ "revoked": revoked })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "", "ada", "ada@", "@x.io", "a b@x.io", "ada@x", "a@.io", "a@x.io.", "a\"@x.io",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_email(&format!("{}@x.io", "a".repeat(260))).is_err());
    }
}
