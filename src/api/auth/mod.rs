//! `/api/auth/*`: accounts, tokens and sessions.
//!
//! # Layout
//!
//! - [`account`]: sign-up, the signed-in account (`/api/auth/me`:
//!   read, change, delete) and password changes.
//! - [`session`]: login, token refresh and logout; the session list and
//!   ending sessions.
//! - [`verify`]: e-mail verification, and confirming a change of address
//!   from the new address; joining the workspaces that invited it.
//! - [`reset`]: forgotten passwords: the mailed reset token and its use.
//! - [`links`]: mailing single-use tokens (bound to the address they were
//!   sent to) and other account mail.
//! - [`checks`]: field checks shared with the other routes (e-mail
//!   addresses, names, descriptions) and the password policy.
//!
//! Rate limits are declared beside the routes they guard; [`limited`]
//! and [`retry_after`] turn them into 429 answers.

pub mod account;
pub mod checks;
pub mod links;
pub mod reset;
pub mod session;
pub mod verify;

use std::time::Duration;

use crate::auth::ratelimit::Limit;
use crate::error::ApiError;
use crate::server::AppState;

pub use checks::{check_description, check_name, check_object, normalize_email, update_listing};

/// Counts one request against `limit` under `key`, on every replica
/// together when they share Redis; 429 when over it.
async fn limited(state: &AppState, key: String, limit: Limit) -> Result<(), ApiError> {
    state
        .auth
        .limiter
        .hit(&key, limit)
        .await
        .map_err(retry_after)
}

/// 429 with the wait in whole seconds, rounded up (at least 1).
pub(crate) fn retry_after(wait: Duration) -> ApiError {
    ApiError::RateLimited(wait.as_millis().div_ceil(1000).max(1) as u64)
}
