//! Mail to an account: single-use tokens bound to the address they were
//! mailed to (verification, address change, password reset), and notices.

use std::time::Duration;

use coform_storage::{TokenKind, UsedToken, User, UserToken};

use crate::auth::mailer::Mail;
use crate::auth::{now_ms, secret};
use crate::error::ApiError;
use crate::server::AppState;

const VERIFY_TTL: Duration = Duration::from_secs(24 * 3600);

const RESET_TTL: Duration = Duration::from_secs(3600);

/// Mails `to` a new one-time token of `kind` for `user`. The token is
/// bound to `to`: it proves control of that address and of no other.
pub(super) async fn send_link(
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
    let stored = UserToken {
        hash: secret::hash_token(&token),
        user_id: user.id.clone(),
        kind,
        email: to.to_owned(),
        expires_at: now_ms() + ttl.as_millis() as i64,
    };
    state.accounts.create_user_token(&stored).await?;
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
            format!("Open this link to set a new password (valid for one hour):\n{base}/reset-password?token={token}\n\nOr use this token: {token}\n\nIf you did not ask for this, ignore this message."),
        ),
    };
    send_mail(state, to, subject, body).await;
    Ok(())
}

/// Sends one mail; a failure is logged, never shown to the requester.
pub(super) async fn send_mail(state: &AppState, to: &str, subject: &str, body: String) {
    let mail = Mail {
        to: to.to_owned(),
        subject: subject.into(),
        body,
    };
    if let Err(e) = state.auth.mailer.send(mail).await {
        tracing::error!(error = %e, "could not send mail");
    }
}

/// Whether `used` was mailed to `address`: a token proves control of that
/// address and of no other (tokens stored before they carried an address
/// prove none).
pub(super) fn mailed_to(used: &UsedToken, address: &str) -> bool {
    !used.email.is_empty() && used.email.eq_ignore_ascii_case(address)
}

/// Spends the mailed token `hash` of `kind` and returns the account it
/// was mailed to: 400 `invalid_token` if the token is unknown, used or
/// expired, or if the account's address is no longer the one it was
/// mailed to (a link mailed to an address the account no longer has
/// proves nothing).
pub(super) async fn redeem(
    state: &AppState,
    hash: &str,
    kind: TokenKind,
    now: i64,
) -> Result<User, ApiError> {
    let used = state
        .accounts
        .consume_user_token(hash, kind, now)
        .await?
        .ok_or(ApiError::InvalidMailedToken)?;
    state
        .accounts
        .user(&used.user_id)
        .await?
        .filter(|u| mailed_to(&used, &u.email))
        .ok_or(ApiError::InvalidMailedToken)
}
