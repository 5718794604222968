//! Sessions: login, token refresh, logout, and the account's session list.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use coform_collab::SessionSet;
use coform_storage::{RefreshOutcome, Session, User};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::account::UserView;
use super::retry_after;
use crate::api::access::end_sessions;
use crate::api::extract::{token_account, ApiJson, ApiQuery, AuthUser, Authed, ClientInfo};
use crate::auth::{now_ms, password, secret};
use crate::error::{ApiError, ApiResult, Code};
use crate::server::AppState;

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
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
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
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct RevokeAllQuery {
    /// Also end the session making the request.
    #[serde(default)]
    pub include_current: bool,
}

/// Starts a session and issues its first tokens.
pub(super) async fn start_session(
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
        .await
        .map_err(retry_after)?;
    let found = state.accounts.user_by_email(&email).await?;
    let Some(mut user) = found else {
        // Same work as for a real account: timing does not reveal it.
        password::verify(req.password, password::dummy_hash().await.to_owned()).await;
        limiter.login_failed(limits, &email, &client.ip).await;
        return Err(ApiError::InvalidCredentials);
    };
    if !password::verify(req.password, user.password_hash.clone()).await {
        limiter.login_failed(limits, &email, &client.ip).await;
        return Err(ApiError::InvalidCredentials);
    }
    limiter.login_succeeded(&email, &client.ip).await;
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
            let user = token_account(&state, &session.user_id, Code::InvalidToken).await?;
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

/// Active sessions of the account.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionView>), (status = 401)))]
pub async fn list_sessions(Authed(state, me): Authed) -> ApiResult<Json<Vec<SessionView>>> {
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
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
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
    Authed(state, me): Authed,
    ApiQuery(q): ApiQuery<RevokeAllQuery>,
) -> ApiResult<Json<serde_json::Value>> {
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
