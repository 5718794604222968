//! Password hashing (argon2id) and the password policy.
//!
//! The policy refuses, besides short passwords, any password an attacker
//! would try early: those in the bundled list of the 30,000 most common
//! passwords, English words and names, keyboard rows, sequences, repeats
//! and dates, and the account's own e-mail — scored by `zxcvbn`, which
//! ships those lists. Anything estimated to fall within 10^10 guesses
//! (score below 3) is refused, with the reason.
//!
//! Hashing costs tens of milliseconds of CPU on purpose, so it runs on the
//! blocking pool, never on an async worker.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest and longest password accepted.
pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 128;

/// What is wrong with a proposed password, as messages a person can act
/// on. Empty = acceptable.
pub fn policy_violations(password: &str, email: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let chars = password.chars().count();
    if chars < MIN_LEN {
        problems.push(format!("must be at least {MIN_LEN} characters long"));
    }
    if chars > MAX_LEN {
        problems.push(format!("must be at most {MAX_LEN} characters long"));
    }
    if !password.chars().any(char::is_alphabetic) {
        problems.push("must contain a letter".into());
    }
    if !password
        .chars()
        .any(|c| c.is_ascii_digit() || !c.is_alphanumeric())
    {
        problems.push("must contain a digit or a symbol".into());
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if !email.is_empty()
        && (lower == email.to_lowercase() || (local.len() >= 4 && lower.contains(&local)))
    {
        problems.push("must not contain your e-mail address".into());
    }
    if password
        .chars()
        .collect::<std::collections::HashSet<_>>()
        .len()
        < 4
    {
        problems.push("must use at least 4 different characters".into());
    }
    if problems.is_empty() {
        let strength = zxcvbn::zxcvbn(password, &[email, &local]);
        if u8::from(strength.score()) < MIN_SCORE {
            let why = strength
                .feedback()
                .and_then(|f| f.warning())
                .map(|w| format!(" ({})", w.to_string().trim_end_matches('.').to_lowercase()))
                .unwrap_or_default();
            problems.push(format!(
                "is too easy to guess{why}: use a few unrelated words, or more characters"
            ));
        }
    }
    problems
}

/// Lowest `zxcvbn` score accepted: 3 means an estimated 10^10 guesses or
/// more (0–2: within reach of an online or a fast offline attack).
const MIN_SCORE: u8 = 3;

/// Hashes a password with argon2id and a random salt (PHC string).
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// Checks a password against a stored hash. A malformed hash counts as a
/// mismatch.
pub async fn verify(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A valid hash of a random password, verified against when an account
/// does not exist, so response time does not reveal which e-mails exist.
pub async fn dummy_hash() -> &'static str {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| async {
            hash(crate::auth::secret::new_token())
                .await
                .unwrap_or_default()
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_explains_what_is_wrong() {
        assert!(policy_violations("correct horse 9", "a@b.co").is_empty());
        let short = policy_violations("abc1", "a@b.co");
        assert!(short.iter().any(|m| m.contains("at least 10")));
        assert!(
            !policy_violations("aaaaaaaaaaaa1", "x@y.z").is_empty(),
            "too few distinct"
        );
        assert!(
            !policy_violations("abcdefghijkl", "x@y.z").is_empty(),
            "no digit or symbol"
        );
        assert!(!policy_violations("ada.lovelace99", "ada.lovelace@x.io").is_empty());
        assert!(!policy_violations(&"a1".repeat(70), "x@y.z").is_empty());
    }

    #[test]
    fn common_passwords_and_obvious_patterns_are_refused() {
        for weak in [
            "password123",
            "qwerty123456",
            "1q2w3e4r5t6y",
            "iloveyou2024",
            "abcdefgh12345",
            "zxcvbnm,./123",
            "Password1234",
        ] {
            let problems = policy_violations(weak, "ada@example.com");
            assert!(
                problems.iter().any(|p| p.contains("too easy to guess")),
                "{weak}: {problems:?}"
            );
        }
        let common = policy_violations("password123", "ada@example.com");
        assert!(common[0].contains("common password"), "{common:?}");
        for strong in ["correct horse 9", "battery staple 42", "Tr0ub4dor&3 kiwi"] {
            assert_eq!(
                policy_violations(strong, "ada@example.com"),
                Vec::<String>::new()
            );
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let h1 = hash("correct horse 9".into()).await.unwrap();
        let h2 = hash("correct horse 9".into()).await.unwrap();
        assert_ne!(h1, h2, "random salt");
        assert!(h1.starts_with("$argon2id$"));
        assert!(verify("correct horse 9".into(), h1.clone()).await);
        assert!(!verify("wrong horse 9".into(), h1).await);
        assert!(!verify("x".into(), "not a hash".into()).await);
    }
}
