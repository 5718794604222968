//! Authentication: passwords, tokens, rate limits and e-mail.
//!
//! # Layout
//!
//! - [`password`]: argon2id hashing (off the async workers) and the
//!   password policy.
//! - [`jwt`]: short-lived access tokens and document tokens (HS256; the
//!   algorithm, issuer, audience and expiry are all checked).
//! - [`secret`]: random opaque tokens (refresh, e-mail links) and their
//!   stored hashes.
//! - [`ratelimit`]: fixed-window counters, and the login backoff per
//!   client address and e-mail address.
//! - [`mailer`]: the [`mailer::Mailer`] trait; an outbox folder by default,
//!   SMTP when configured.

pub mod jwt;
pub mod mailer;
pub mod password;
pub mod ratelimit;
pub mod secret;

use std::sync::Arc;
use std::time::Duration;

/// Everything the auth endpoints and the WebSocket upgrade share.
pub struct AuthService {
    pub keys: jwt::Keys,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub doc_ttl: Duration,
    pub limiter: ratelimit::RateLimiter,
    /// How logins are throttled (from `--login-*`).
    pub login_limits: ratelimit::LoginLimits,
    pub mailer: Arc<dyn mailer::Mailer>,
    /// Base URL put in e-mailed links.
    pub public_url: String,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
