//! Signed tokens (JWT, HS256).
//!
//! - **Access tokens** (audience `coform-api`, ~15 min) name a user and
//!   their session; every request also checks the session is not revoked,
//!   so logout takes effect at once.
//! - **Document tokens** (audience `coform-collab`, a few minutes) name a
//!   user, their session and one template, for the WebSocket upgrade; the
//!   upgrade checks the session is still active, so ending a session also
//!   stops its document tokens.
//!
//! Verification pins the algorithm (a token signed any other way, or
//! `alg: none`, is refused) and checks `exp`, `iss` and `aud`.

use std::time::Duration;

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "coform";
pub const AUD_API: &str = "coform-api";
pub const AUD_COLLAB: &str = "coform-collab";

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub sub: String,
    /// Session id: revoking the session revokes the token.
    pub sid: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

/// Claims of a document token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocClaims {
    pub sub: String,
    /// The session that asked for it: once that ends, the token opens
    /// nothing, and the sockets it opened close.
    pub sid: String,
    /// The template (document) it opens.
    pub tpl: String,
    /// The role when issued; the upgrade re-checks the current role.
    pub role: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
}

/// Signing and verification keys.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Issue time and expiry (seconds since the epoch) of a token that lives
/// `ttl` (at least one second) from now.
fn lifetime(ttl: Duration) -> (u64, u64) {
    let now = now_secs();
    (now, now + ttl.as_secs().max(1))
}

impl Keys {
    pub fn new(secret: &[u8]) -> Self {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    fn validation(audience: &str) -> Validation {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 0;
        v
    }

    /// Signs `claims` (HS256).
    fn sign(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        Ok(encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    /// A new access token and its lifetime in seconds.
    pub fn issue_access(&self, user: &str, session: &str, ttl: Duration) -> anyhow::Result<String> {
        let (iat, exp) = lifetime(ttl);
        self.sign(&AccessClaims {
            sub: user.into(),
            sid: session.into(),
            iss: ISSUER.into(),
            aud: AUD_API.into(),
            iat,
            exp,
        })
    }

    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        verify(token, &self.decoding, &Self::validation(AUD_API))
    }

    pub fn issue_doc(
        &self,
        user: &str,
        session: &str,
        template: &str,
        role: &str,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let (iat, exp) = lifetime(ttl);
        self.sign(&DocClaims {
            sub: user.into(),
            sid: session.into(),
            tpl: template.into(),
            role: role.into(),
            iss: ISSUER.into(),
            aud: AUD_COLLAB.into(),
            iat,
            exp,
        })
    }

    pub fn verify_doc(&self, token: &str) -> Result<DocClaims, TokenError> {
        verify(token, &self.decoding, &Self::validation(AUD_COLLAB))
    }
}

fn verify<T: for<'de> Deserialize<'de>>(
    token: &str,
    key: &DecodingKey,
    v: &Validation,
) -> Result<T, TokenError> {
    decode::<T>(token, key, v)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    /// Test keys and an access token of user `u1`, session `s1`, for 60 s.
    fn keys_and_access_token() -> (Keys, String) {
        let keys = Keys::new(b"0123456789abcdef0123456789abcdef");
        let t = keys
            .issue_access("u1", "s1", Duration::from_secs(60))
            .unwrap();
        (keys, t)
    }

    #[test]
    fn access_tokens_round_trip_and_are_audience_bound() {
        let (keys, t) = keys_and_access_token();
        let c = keys.verify_access(&t).unwrap();
        assert_eq!((c.sub.as_str(), c.sid.as_str()), ("u1", "s1"));
        assert_eq!(
            keys.verify_doc(&t),
            Err(TokenError::Invalid),
            "wrong audience"
        );
        let d = keys
            .issue_doc("u1", "s1", "t1", "editor", Duration::from_secs(60))
            .unwrap();
        let dc = keys.verify_doc(&d).unwrap();
        assert_eq!((dc.tpl.as_str(), dc.sid.as_str()), ("t1", "s1"));
        assert_eq!(keys.verify_access(&d), Err(TokenError::Invalid));
        let other = Keys::new(b"another secret, another server!!");
        assert_eq!(other.verify_access(&t), Err(TokenError::Invalid));
    }

    #[test]
    fn alg_none_and_expired_tokens_are_refused() {
        let (keys, t) = keys_and_access_token();
        let payload = t.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(
            keys.verify_access(&format!("{header}.{payload}.")),
            Err(TokenError::Invalid)
        );
        let now = now_secs();
        let claims = AccessClaims {
            sub: "u".into(),
            sid: "s".into(),
            iss: ISSUER.into(),
            aud: AUD_API.into(),
            iat: now - 100,
            exp: now - 10,
        };
        let expired = encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert_eq!(keys.verify_access(&expired), Err(TokenError::Expired));
        let hs512 = encode(&Header::new(Algorithm::HS512), &claims, &keys.encoding).unwrap();
        assert_eq!(keys.verify_access(&hs512), Err(TokenError::Invalid));
    }
}
