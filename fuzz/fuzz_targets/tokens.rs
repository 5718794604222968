//! Token parsing and verification: the server's own token modules
//! (`src/auth/jwt.rs`, `src/auth/secret.rs`), compiled in as they are so
//! that this target does not build the whole server. Both are
//! self-contained; if one ever reaches into the rest of the server, this
//! build fails rather than fuzzing something else.
//!
//! Three kinds of input (the first byte chooses):
//! - any text as a token: nothing verifies (no forgery), and a refresh or
//!   e-mail token's stored hash is well-formed and stable;
//! - claims the server issues (any user, session, template, role): the
//!   token verifies to exactly those claims, only for its own audience,
//!   and a token changed anywhere never verifies to other claims;
//! - any header and payload, correctly signed with the server's key: what
//!   verifies is HS256, issued by the server for the right audience, not
//!   expired, and its claims are the payload's.

#![no_main]

#[allow(dead_code)]
#[path = "../../src/auth/jwt.rs"]
mod jwt;
#[allow(dead_code)]
#[path = "../../src/auth/secret.rs"]
mod secret;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use jwt::{Keys, TokenError, AUD_API, AUD_COLLAB};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const SECRET: &[u8] = b"fuzzing secret, 32 bytes long..!";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Any text: nothing verifies; hashing is total and stable.
fn any_text(keys: &Keys, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    assert!(keys.verify_access(&text).is_err(), "forged: {text:?}");
    assert!(keys.verify_doc(&text).is_err(), "forged: {text:?}");
    let hash = secret::hash_token(&text);
    assert_eq!(hash.len(), 64);
    assert!(hash
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(hash, secret::hash_token(&text));
    assert!(secret::same(data, data));
}

/// Claims the server issues: they come back exactly, for one audience.
fn issued(keys: &Keys, data: &[u8]) {
    let [at, flip, rest @ ..] = data else { return };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.split('\u{1}');
    let mut next = || parts.next().unwrap_or_default().to_owned();
    let (user, session, template, role) = (next(), next(), next(), next());
    let ttl = Duration::from_secs(60);

    let before = now_secs();
    let access = keys.issue_access(&user, &session, ttl).unwrap();
    let claims = keys
        .verify_access(&access)
        .expect("an issued access token verifies");
    assert_eq!(
        (claims.sub.as_str(), claims.sid.as_str()),
        (&*user, &*session)
    );
    assert_eq!(
        (claims.iss.as_str(), claims.aud.as_str()),
        ("coform", AUD_API)
    );
    assert!(claims.iat >= before && claims.exp == claims.iat + 60);
    assert_eq!(keys.verify_doc(&access), Err(TokenError::Invalid));

    let doc = keys
        .issue_doc(&user, &session, &template, &role, ttl)
        .unwrap();
    let d = keys
        .verify_doc(&doc)
        .expect("an issued document token verifies");
    assert_eq!(
        (&*d.sub, &*d.sid, &*d.tpl, &*d.role),
        (&*user, &*session, &*template, &*role)
    );
    assert_eq!(d.aud, AUD_COLLAB);
    assert_eq!(keys.verify_access(&doc), Err(TokenError::Invalid));

    // Changed anywhere, it verifies to the same claims or not at all.
    let mut changed = doc.into_bytes();
    let i = usize::from(*at) * changed.len() / 256;
    changed[i] ^= flip | 1;
    if let Ok(changed) = String::from_utf8(changed) {
        if let Ok(c) = keys.verify_doc(&changed) {
            assert_eq!(c, d, "{changed}");
        }
    }
}

/// Any header and payload, signed with the server's key.
fn signed(keys: &Keys, data: &[u8]) {
    let [alg, rest @ ..] = data else { return };
    let text = String::from_utf8_lossy(rest);
    let (header, payload) = text.split_once('\u{1}').unwrap_or(("", &text));
    let algorithm = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512][usize::from(alg % 3)];
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = EncodingKey::from_secret(SECRET);
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, algorithm).unwrap();
    let token = format!("{message}.{signature}");

    let before = now_secs();
    let header: Option<Value> = serde_json::from_str(header).ok();
    let payload: Option<Value> = serde_json::from_str(payload).ok();
    let verified = |aud: &str, claims: Value| {
        let header = header.as_ref().expect("the header is JSON");
        assert_eq!(header["alg"], "HS256", "{header}");
        assert_eq!(algorithm, Algorithm::HS256);
        let payload = payload.as_ref().expect("the payload is JSON");
        assert_eq!(payload["iss"], "coform", "{payload}");
        assert_eq!(payload["aud"], aud, "{payload}");
        assert!(payload["exp"].as_u64().is_some_and(|exp| exp >= before));
        for (k, v) in claims.as_object().unwrap() {
            assert_eq!(&payload[k], v, "{k} in {payload}");
        }
    };
    if let Ok(c) = keys.verify_access(&token) {
        verified(AUD_API, serde_json::to_value(c).unwrap());
    }
    if let Ok(c) = keys.verify_doc(&token) {
        verified(AUD_COLLAB, serde_json::to_value(c).unwrap());
    }
}

fuzz_target!(|data: &[u8]| {
    let keys = Keys::new(SECRET);
    let Some((kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => any_text(&keys, rest),
        1 => issued(&keys, rest),
        _ => signed(&keys, rest),
    }
});
