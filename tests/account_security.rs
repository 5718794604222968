//! Account flows that an attacker could turn against their owner, end to
//! end through the real HTTP server: password-reset links that outlive a
//! reset, e-mail verification and e-mail changes, invitations to addresses
//! nobody has proved, and login throttling that must neither reveal which
//! addresses have accounts nor let a stranger lock the owner out.
//!
//! Every test runs its own in-process server (the rate limits are per
//! server).

mod support_api;

use serde_json::json;
use support_api::*;

const VERIFY_SUBJECT: &str = "Verify your Coform e-mail address";
const RESET_SUBJECT: &str = "Reset your Coform password";

/// Asks for a password-reset mail for `email` and returns its token.
async fn reset_token(s: &Server, email: &str) -> String {
    let before = s.mails(email, RESET_SUBJECT).len();
    s.post("/api/auth/forgot-password", None, json!({ "email": email }))
        .await
        .expect(202);
    let mails = s.mails(email, RESET_SUBJECT);
    assert_eq!(mails.len(), before + 1, "one more reset mail to {email}");
    mails[before].token()
}

async fn reset(s: &Server, token: &str, password: &str) -> Resp {
    s.post(
        "/api/auth/reset-password",
        None,
        json!({ "token": token, "password": password }),
    )
    .await
}

// ---------------------------------------------------------------------------
// Password-reset tokens die with the password they were meant to replace
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reset_spends_every_reset_token_of_the_account_not_only_the_one_used() {
    let s = Server::start().await;
    s.register("Ada", "ada@example.com").await;
    let first = reset_token(&s, "ada@example.com").await;
    let second = reset_token(&s, "ada@example.com").await;
    assert_ne!(first, second);

    reset(&s, &second, "battery staple 42").await.expect(204);
    // The older link was never used, but the password it would replace is
    // gone: it must not set another one.
    reset(&s, &first, "attacker chose 77")
        .await
        .expect_error(400, "invalid_token");
    reset(&s, &second, "attacker chose 77")
        .await
        .expect_error(400, "invalid_token");
    s.login_resp("ada@example.com", "attacker chose 77")
        .await
        .expect_error(401, "invalid_credentials");
    s.login("ada@example.com", "battery staple 42").await;
    // A link asked for afterwards works.
    let third = reset_token(&s, "ada@example.com").await;
    reset(&s, &third, "third time lucky 3").await.expect(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changing_the_password_spends_the_reset_tokens_mailed_before() {
    let s = Server::start().await;
    let ada = s.register("Ada", "ada@example.com").await;
    let stale = reset_token(&s, "ada@example.com").await;
    s.put(
        "/api/auth/password",
        Some(&ada.access),
        json!({ "currentPassword": PASSWORD, "newPassword": "battery staple 42" }),
    )
    .await
    .expect(204);
    reset(&s, &stale, "attacker chose 77")
        .await
        .expect_error(400, "invalid_token");
    s.login("ada@example.com", "battery staple 42").await;
    assert_eq!(s.me_status(&ada.access).await, 200, "nothing else ended");
}
