//! `/api/auth/*` end to end: registration, login and its limits, token
//! refresh and reuse detection, logout, password change and reset by mail,
//! e-mail verification, the profile, account deletion, sessions, and
//! tokens that must be refused (expired, unsigned, foreign key).
//!
//! Every test runs its own in-process server: the per-IP rate limits are
//! per server, and every request comes from 127.0.0.1.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const VERIFY_SUBJECT: &str = "Verify your Coform e-mail address";
const RESET_SUBJECT: &str = "Reset your Coform password";

fn register_body(email: &str, password: &str, name: &str) -> Value {
    json!({"email": email, "password": password, "name": name})
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn register_answers_201_with_tokens_and_a_user_view_without_the_hash() {
    let s = Server::start().await;
    let r = s
        .post(
            "/api/auth/register",
            None,
            register_body("  Ada.Lovelace@Example.COM ", PASSWORD, "  Ada Lovelace "),
        )
        .await;
    let body = r.expect(201);
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 900, "default access token lifetime");
    let access = body["accessToken"].as_str().expect("accessToken");
    let refresh = body["refreshToken"].as_str().expect("refreshToken");
    assert_eq!(access.split('.').count(), 3, "the access token is a JWT");
    assert!(refresh.len() >= 32, "refresh token too short: {refresh}");
    assert_ne!(access, refresh);

    let user = &body["user"];
    assert_eq!(user["email"], "ada.lovelace@example.com", "normalised");
    assert_eq!(user["name"], "Ada Lovelace", "trimmed");
    assert_eq!(user["emailVerified"], false);
    assert_eq!(user["profile"], json!({}));
    let color = user["color"].as_str().unwrap();
    assert!(
        color.len() == 7
            && color.starts_with('#')
            && color[1..].chars().all(|c| c.is_ascii_hexdigit()),
        "colour {color:?}"
    );
    assert!(user["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(user["createdAt"].as_i64().is_some_and(|t| t > 0));
    let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
    for k in &keys {
        assert!(
            !k.to_lowercase().contains("password") && !k.to_lowercase().contains("hash"),
            "user view leaks {k}: {user}"
        );
    }
    assert!(
        !r.text.contains("$argon2"),
        "password hash in the answer: {}",
        r.text
    );

    // The access token works at once; /me shows the same view.
    let me = s.get("/api/auth/me", Some(access)).await;
    assert_eq!(me.expect(200)["id"], user["id"]);
    assert!(!me.text.contains("$argon2"));
    assert!(!me.text.to_lowercase().contains("password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn register_refuses_an_email_taken_in_any_case() {
    let s = Server::start().await;
    s.register("Ada", "ada@example.com").await;
    for taken in ["ada@example.com", "ADA@Example.Com", "  ada@EXAMPLE.com  "] {
        let r = s
            .post(
                "/api/auth/register",
                None,
                register_body(taken, PASSWORD, "Another Ada"),
            )
            .await;
        r.expect_error(409, "email_taken");
    }
    // The first account is intact.
    s.login("ada@example.com", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn register_validation_names_each_invalid_field() {
    let s = Server::start().await;
    let register = |email: &str, password: &str, name: &str| {
        s.post(
            "/api/auth/register",
            None,
            register_body(email, password, name),
        )
    };

    for bad in [
        "",
        "ada",
        "ada@",
        "@example.com",
        "a b@example.com",
        "ada@example",
        "ada@.example.com",
        "ada@example.com.",
        "ada\"@example.com",
        "ada@exa@mple.com",
    ] {
        let r = register(bad, PASSWORD, "Ada").await;
        let msg = r.field_error("email");
        assert!(msg.contains("e-mail address"), "{bad:?}: {msg}");
        assert_eq!(r.field_errors().len(), 1, "{bad:?}: {:?}", r.field_errors());
    }
    let long = format!("{}@example.com", "a".repeat(250));
    register(&long, PASSWORD, "Ada").await.field_error("email");

    // Each rule of the password policy, with its own message.
    let cases: [(&str, &str, &str); 6] = [
        ("ada@example.com", "sh0rt!", "at least 10 characters"),
        (
            "ada@example.com",
            &"ab1!".repeat(33),
            "at most 128 characters",
        ),
        ("ada@example.com", "1234567890!?", "must contain a letter"),
        ("ada@example.com", "abcdefghijkl", "digit or a symbol"),
        (
            "lovelace@example.com",
            "Lovelace-1815",
            "must not contain your e-mail address",
        ),
        (
            "ada@example.com",
            "aaaaaaaaaa11",
            "at least 4 different characters",
        ),
    ];
    for (email, password, expected) in cases {
        let r = register(email, password, "Ada").await;
        let msg = r.field_error("password");
        assert!(
            msg.starts_with("password ") && msg.contains(expected),
            "{password:?}: expected {expected:?} in {msg:?}"
        );
        assert_eq!(r.field_errors().len(), 1, "{:?}", r.field_errors());
    }
    // Several problems at once are all listed.
    let msg = register("ada@example.com", "aaa", "Ada")
        .await
        .field_error("password");
    for part in [
        "at least 10 characters",
        "digit or a symbol",
        "at least 4 different",
    ] {
        assert!(msg.contains(part), "{part:?} missing from {msg:?}");
    }

    // Names: empty, blank, too long, control characters.
    for name in [
        String::new(),
        "   ".into(),
        "x".repeat(101),
        "Ada\u{7}".into(),
    ] {
        let r = register("ada@example.com", PASSWORD, &name).await;
        let msg = r.field_error("name");
        assert!(msg.contains("1 to 100 characters"), "{name:?}: {msg}");
    }
    // 100 characters is fine (proves the limit is not lower).
    let ok = s
        .post(
            "/api/auth/register",
            None,
            register_body("hundred@example.com", PASSWORD, &"é".repeat(100)),
        )
        .await;
    ok.expect(201);

    // Everything wrong at once: three field errors.
    let r = register("nope", "x", "").await;
    let mut fields: Vec<String> = r.field_errors().into_iter().map(|(f, _)| f).collect();
    fields.sort();
    assert_eq!(fields, ["email", "name", "password"]);

    // Nothing was created by the refused requests.
    s.login_resp("ada@example.com", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn register_refuses_malformed_json_with_400() {
    let s = Server::start().await;
    let raw = |ct: Option<&'static str>, body: &str| {
        s.request(
            "POST",
            "/api/auth/register",
            None,
            &[],
            Body::Raw(ct, body.as_bytes().to_vec()),
        )
    };
    let json_ct = Some("application/json");
    let cases = [
        (json_ct, "{not json"),
        (json_ct, ""),
        (json_ct, "[]"),
        (
            json_ct,
            r#"{"email": 5, "password": "correct horse 9", "name": "Ada"}"#,
        ),
        (
            json_ct,
            r#"{"email": "ada@example.com", "password": ["x"], "name": "Ada"}"#,
        ),
        (
            json_ct,
            r#"{"email": "ada@example.com", "password": "correct horse 9", "name": "Ada", "admin": true}"#,
        ),
        (
            json_ct,
            r#"{"email": "ada@example.com", "password": "correct horse 9"}"#,
        ),
        (
            Some("text/plain"),
            r#"{"email": "ada@example.com", "password": "correct horse 9", "name": "Ada"}"#,
        ),
        (
            None,
            r#"{"email": "ada@example.com", "password": "correct horse 9", "name": "Ada"}"#,
        ),
    ];
    for (ct, body) in cases {
        let r = raw(ct, body).await;
        assert_eq!(r.status, 400, "{ct:?} {body:?}: {}", r.text);
        r.expect_error(400, "invalid_json");
    }
    // None of them created the account.
    s.register("Ada", "ada@example.com").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_is_limited_to_ten_accounts_per_ip_per_hour() {
    let s = Server::start().await;
    // Refused bodies do not count.
    for _ in 0..3 {
        s.post(
            "/api/auth/register",
            None,
            register_body("not-an-email", PASSWORD, "X"),
        )
        .await
        .expect_error(422, "validation_failed");
    }
    for i in 0..10 {
        s.register(&format!("User {i}"), &format!("user{i}@example.com"))
            .await;
    }
    let r = s
        .post(
            "/api/auth/register",
            None,
            register_body("user10@example.com", PASSWORD, "User 10"),
        )
        .await;
    let err = r.expect_error(429, "rate_limited");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
    assert_eq!(err["details"]["retryAfter"], retry);
    s.login_resp("user10@example.com", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
}

// ---------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_with_the_right_password_starts_a_new_session() {
    let s = Server::start().await;
    let reg = s.register("Ada", "ada@example.com").await;
    let r = s.login_resp("  ADA@example.com ", PASSWORD).await;
    let body = r.expect(200);
    assert_eq!(body["user"]["id"], reg.id.as_str());
    assert_eq!(body["tokenType"], "Bearer");
    assert!(body["user"]["lastLogin"].as_i64().is_some());
    let access = body["accessToken"].as_str().unwrap();
    assert_ne!(access, reg.access);
    assert_ne!(
        jwt_claims(access)["sid"],
        jwt_claims(&reg.access)["sid"],
        "a login is a new session"
    );
    assert_eq!(s.me_status(access).await, 200);
    assert_eq!(
        s.me_status(&reg.access).await,
        200,
        "the first session still works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_failures_do_not_reveal_whether_the_email_exists() {
    let s = Server::start().await;
    s.register("Ada", "ada@example.com").await;
    let wrong = s.login_resp("ada@example.com", "wrong horse 9").await;
    let unknown = s.login_resp("nobody@example.com", PASSWORD).await;
    let e1 = wrong.expect_error(401, "invalid_credentials").clone();
    let e2 = unknown.expect_error(401, "invalid_credentials").clone();
    assert_eq!(e1, e2, "the two failures must be indistinguishable");
    assert!(wrong.json.get("accessToken").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_failed_logins_make_their_source_wait_even_for_the_right_password() {
    let (s, ada) = with_ada().await;
    for i in 0..5 {
        s.login_resp("ada@example.com", &format!("wrong horse {i}"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    let r = s.login_resp("ada@example.com", PASSWORD).await;
    let err = r.expect_error(429, "rate_limited");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert_eq!(retry, 1, "the first wait is one second");
    assert_eq!(err["details"]["retryAfter"], retry);
    // The wait is of this source at this address: another account logs
    // in from here (another source at this address: tests/account_security.rs).
    s.register("Bob", "bob@example.com").await;
    s.login("bob@example.com", PASSWORD).await;
    // Existing sessions of the account are not affected.
    assert_eq!(s.me_status(&ada.access).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_logins_at_an_address_without_account_back_off_alike() {
    let s = Server::start().await;
    // An address without an account: the same backoff as for an account.
    for _ in 0..5 {
        s.login_resp("ghost@example.com", PASSWORD)
            .await
            .expect_error(401, "invalid_credentials");
    }
    let r = s.login_resp("GHOST@example.com", PASSWORD).await;
    let err = r.expect_error(429, "rate_limited");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert_eq!(retry, 1, "Retry-After {retry}");
    assert_eq!(err["details"]["retryAfter"], retry);
    // Other accounts from the same IP still get through.
    s.register("Ada", "ada@example.com").await;
    s.login("ada@example.com", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_attempts_are_rate_limited_per_ip() {
    let (s, ada) = with_ada().await;
    for i in 0..30 {
        s.login_resp(&format!("ghost{i}@example.com"), PASSWORD)
            .await
            .expect_error(401, "invalid_credentials");
    }
    // Even the right password of a real account is refused now.
    let r = s.login_resp(&ada.email, PASSWORD).await;
    r.expect_error(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
}

// ---------------------------------------------------------------------------
// Refresh and logout
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_rotates_and_a_reused_token_ends_the_whole_session() {
    let (s, ada) = with_ada().await;
    let other = s.login("ada@example.com", PASSWORD).await;

    let r1 = s.refresh(&ada.refresh).await;
    let b1 = r1.expect(200).clone();
    let (access1, refresh1) = (
        b1["accessToken"].as_str().unwrap().to_owned(),
        b1["refreshToken"].as_str().unwrap().to_owned(),
    );
    assert_ne!(refresh1, ada.refresh, "rotated");
    assert_eq!(b1["user"]["id"], ada.id.as_str());
    assert_eq!(
        jwt_claims(&access1)["sid"],
        jwt_claims(&ada.access)["sid"],
        "same session"
    );
    assert_eq!(s.me_status(&access1).await, 200);

    // The next rotation works with the new token...
    let r2 = s.refresh(&refresh1).await;
    let refresh2 = r2.expect(200)["refreshToken"].as_str().unwrap().to_owned();
    let access2 = r2.json["accessToken"].as_str().unwrap().to_owned();

    // ...and presenting an already used one is theft: the session ends.
    s.refresh(&ada.refresh)
        .await
        .expect_error(401, "token_reused");
    s.refresh(&refresh2)
        .await
        .expect_error(401, "session_revoked");
    for access in [&ada.access, &access1, &access2] {
        s.get("/api/auth/me", Some(access))
            .await
            .expect_error(401, "session_revoked");
    }
    // Another session of the same account is not affected.
    assert_eq!(s.me_status(&other.access).await, 200);
    s.refresh(&other.refresh).await.expect(200);

    // Unknown and malformed refresh requests.
    s.refresh("not-a-token")
        .await
        .expect_error(401, "invalid_token");
    s.post("/api/auth/refresh", None, json!({}))
        .await
        .expect_error(400, "invalid_json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_revokes_the_access_and_refresh_tokens_at_once() {
    let (s, ada) = with_ada().await;
    let other = s.login("ada@example.com", PASSWORD).await;
    s.post_empty("/api/auth/logout", None)
        .await
        .expect_error(401, "unauthorized");
    s.post_empty("/api/auth/logout", Some(&ada.access))
        .await
        .expect(204);
    s.get("/api/auth/me", Some(&ada.access))
        .await
        .expect_error(401, "session_revoked");
    s.refresh(&ada.refresh)
        .await
        .expect_error(401, "session_revoked");
    s.post_empty("/api/auth/logout", Some(&ada.access))
        .await
        .expect_error(401, "session_revoked");
    assert_eq!(
        s.me_status(&other.access).await,
        200,
        "only one session ended"
    );
}

// ---------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changing_the_password_ends_other_sessions_and_keeps_this_one() {
    let (s, ada) = with_ada().await;
    let other = s.login("ada@example.com", PASSWORD).await;
    let new = "battery staple 42";

    s.put(
        "/api/auth/password",
        Some(&ada.access),
        json!({"currentPassword": "wrong horse 9", "newPassword": new}),
    )
    .await
    .expect_error(401, "invalid_credentials");
    let weak = s.change_password(&ada.access, "short").await;
    assert!(weak
        .field_error("newPassword")
        .contains("at least 10 characters"));
    s.put(
        "/api/auth/password",
        None,
        json!({"currentPassword": PASSWORD, "newPassword": new}),
    )
    .await
    .expect_error(401, "unauthorized");
    // Refusals changed nothing.
    assert_eq!(s.me_status(&other.access).await, 200);

    s.change_password(&ada.access, new).await.expect(204);
    assert_eq!(s.me_status(&ada.access).await, 200, "current session stays");
    s.refresh(&ada.refresh).await.expect(200);
    s.get("/api/auth/me", Some(&other.access))
        .await
        .expect_error(401, "session_revoked");
    s.refresh(&other.refresh)
        .await
        .expect_error(401, "session_revoked");
    s.login_resp("ada@example.com", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
    s.login("ada@example.com", new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mailed_reset_token_sets_a_new_password_once_and_ends_every_session() {
    let (s, ada) = with_ada().await;
    let other = s.login("ada@example.com", PASSWORD).await;
    assert!(s.mails("ada@example.com", RESET_SUBJECT).is_empty());

    s.forgot_password(" ADA@Example.com").await.expect(202);
    let mail = s.last_mail("ada@example.com", RESET_SUBJECT);
    let token = mail.token();
    // The mail links to the designer's reset page, which takes the token.
    assert!(
        mail.body
            .contains(&format!("/reset-password?token={token}\n")),
        "{}",
        mail.body
    );
    let new = "battery staple 42";

    // A weak password is refused without using the token up.
    let weak = s.reset_password(&token, "weak").await;
    weak.field_error("password");
    // A wrong token does nothing.
    s.reset_password(&"x".repeat(43), new)
        .await
        .expect_error(400, "invalid_token");
    assert_eq!(s.me_status(&ada.access).await, 200);

    s.reset_password(&token, new).await.expect(204);
    s.reset_password(&token, "another one 77")
        .await
        .expect_error(400, "invalid_token");

    for acct in [&ada, &other] {
        s.get("/api/auth/me", Some(&acct.access))
            .await
            .expect_error(401, "session_revoked");
        s.refresh(&acct.refresh)
            .await
            .expect_error(401, "session_revoked");
    }
    s.login_resp("ada@example.com", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
    s.login("ada@example.com", new).await;
    // A reset token is not an e-mail verification token.
    s.get(
        &format!("/api/auth/verify-email?token={}", url_encode(&token)),
        None,
    )
    .await
    .expect_error(400, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forgot_password_for_an_unknown_email_answers_202_and_sends_nothing() {
    let s = Server::start().await;
    s.register("Ada", "ada@example.com").await;
    let before = s.outbox().len();
    assert_eq!(before, 1, "only the verification mail: {:#?}", s.outbox());
    s.forgot_password("nobody@example.com").await.expect(202);
    // The mail of a known address is written before the answer, so the
    // outbox is complete now.
    s.forgot_password("ada@example.com").await.expect(202);
    let outbox = s.outbox();
    assert_eq!(outbox.len(), before + 1, "{outbox:#?}");
    assert!(outbox.iter().all(|m| m.to == "ada@example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forgot_password_is_limited_to_three_mails_per_account_per_hour() {
    let s = Server::start().await;
    s.register("Ada", "ada@example.com").await;
    for _ in 0..3 {
        s.forgot_password("ada@example.com").await.expect(202);
    }
    let r = s.forgot_password("Ada@Example.com").await;
    r.expect_error(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
    assert_eq!(s.mails("ada@example.com", RESET_SUBJECT).len(), 3);
    // Each mail has its own token, and the latest one works.
    let mails = s.mails("ada@example.com", RESET_SUBJECT);
    let tokens: std::collections::HashSet<String> = mails.iter().map(Mail::token).collect();
    assert_eq!(tokens.len(), 3);
    s.reset_password(&mails[2].token(), "battery staple 42")
        .await
        .expect(204);
}

// ---------------------------------------------------------------------------
// E-mail verification
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_registration_mail_verifies_the_address_once() {
    let (s, ada) = with_ada().await;
    let mail = s.last_mail("ada@example.com", VERIFY_SUBJECT);
    let token = mail.token();
    assert!(
        mail.body
            .contains(&format!("/api/auth/verify-email?token={token}")),
        "the mail carries a verification link: {}",
        mail.body
    );

    s.get("/api/auth/verify-email?token=not-a-real-token", None)
        .await
        .expect_error(400, "invalid_token");
    assert_eq!(
        s.get("/api/auth/me", Some(&ada.access)).await.expect(200)["emailVerified"],
        false
    );

    let r = s
        .get(
            &format!("/api/auth/verify-email?token={}", url_encode(&token)),
            None,
        )
        .await;
    let user = r.expect(200);
    assert_eq!(user["emailVerified"], true);
    assert_eq!(user["id"], ada.id.as_str());
    assert_eq!(
        s.get("/api/auth/me", Some(&ada.access)).await.expect(200)["emailVerified"],
        true
    );
    s.get(
        &format!("/api/auth/verify-email?token={}", url_encode(&token)),
        None,
    )
    .await
    .expect_error(400, "invalid_token");
    // A verification token does not reset passwords.
    s.reset_password(&token, "battery staple 42")
        .await
        .expect_error(400, "invalid_token");
}

// ---------------------------------------------------------------------------
// Profile
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_profile_can_be_read_and_updated() {
    let (s, ada) = with_ada().await;
    s.get("/api/auth/me", None)
        .await
        .expect_error(401, "unauthorized");

    let r = s
        .put(
            "/api/auth/me",
            Some(&ada.access),
            json!({
                "name": "  Countess of Lovelace ",
                "color": "#A1B2C3",
                "profile": {"organization": "Analytical Engines", "language": "en"}
            }),
        )
        .await;
    let v = r.expect(200);
    assert_eq!(v["name"], "Countess of Lovelace");
    assert_eq!(v["color"], "#a1b2c3", "colours are stored lower-case");
    assert_eq!(v["profile"]["organization"], "Analytical Engines");
    assert_eq!(v["email"], "ada@example.com", "untouched");
    let me = s.get("/api/auth/me", Some(&ada.access)).await;
    let me = me.expect(200);
    assert_eq!(me["name"], "Countess of Lovelace");
    assert_eq!(me["color"], "#a1b2c3");
    assert_eq!(
        me["profile"],
        json!({"organization": "Analytical Engines", "language": "en"})
    );

    // A partial update leaves other fields alone.
    let v = s
        .put("/api/auth/me", Some(&ada.access), json!({"name": "Ada"}))
        .await;
    assert_eq!(v.expect(200)["color"], "#a1b2c3");

    // Invalid fields: 422, and nothing of the request is applied.
    for (body, field) in [
        (json!({"color": "red"}), "color"),
        (json!({"color": "#12345"}), "color"),
        (json!({"color": "#12345g"}), "color"),
        (json!({"profile": [1, 2]}), "profile"),
        (json!({"profile": "text"}), "profile"),
        (
            json!({"profile": {"bio": "x".repeat(17 * 1024)}}),
            "profile",
        ),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"email": "not-an-email"}), "email"),
        (json!({"name": "Mallory", "color": "blue"}), "color"),
    ] {
        let r = s.put("/api/auth/me", Some(&ada.access), body.clone()).await;
        r.field_error(field);
    }
    let me = s.get("/api/auth/me", Some(&ada.access)).await;
    let me = me.expect(200);
    assert_eq!(me["name"], "Ada", "a refused update changed the name");
    assert_eq!(me["color"], "#a1b2c3");
    s.expect_all(&[
        Call::put(
            "/api/auth/me",
            &ada.access,
            json!({"password": "battery staple 42"}),
        )
        .is(400, "invalid_json"),
        Call::put("/api/auth/me", &ada.access, json!({"name": 7})).is(400, "invalid_json"),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changing_the_email_needs_the_password_and_the_new_address_and_refuses_a_taken_one() {
    let (s, ada) = with_ada().await;
    s.register("Bob", "bob@example.com").await;
    let token = s.last_mail("ada@example.com", VERIFY_SUBJECT).token();
    s.get(
        &format!("/api/auth/verify-email?token={}", url_encode(&token)),
        None,
    )
    .await
    .expect(200);

    // Someone else's address, in any case: 409, nothing changes.
    let r = s
        .put(
            "/api/auth/me",
            Some(&ada.access),
            json!({"email": "BOB@example.com", "currentPassword": PASSWORD}),
        )
        .await;
    r.expect_error(409, "email_taken");
    let me = s.get("/api/auth/me", Some(&ada.access)).await;
    assert_eq!(me.expect(200)["email"], "ada@example.com");
    assert_eq!(me.json["emailVerified"], true);
    assert_eq!(me.json["pendingEmail"], Value::Null);

    // The same address (other case): no change, still verified, and no
    // password needed.
    let r = s
        .put(
            "/api/auth/me",
            Some(&ada.access),
            json!({"email": "ADA@example.com"}),
        )
        .await;
    assert_eq!(r.expect(200)["emailVerified"], true);

    // A new address without the password: 422; with it: pending.
    s.put(
        "/api/auth/me",
        Some(&ada.access),
        json!({"email": "Countess@Example.com"}),
    )
    .await
    .field_error("currentPassword");
    let r = s
        .put(
            "/api/auth/me",
            Some(&ada.access),
            json!({"email": "Countess@Example.com", "currentPassword": PASSWORD}),
        )
        .await;
    let v = r.expect(200);
    assert_eq!(
        v["email"], "ada@example.com",
        "not applied before confirmation"
    );
    assert_eq!(v["emailVerified"], true);
    assert_eq!(v["pendingEmail"], "countess@example.com");
    let token = s
        .last_mail(
            "countess@example.com",
            "Confirm your new Coform e-mail address",
        )
        .token();
    let r = s
        .get(
            &format!("/api/auth/verify-email?token={}", url_encode(&token)),
            None,
        )
        .await;
    let v = r.expect(200);
    assert_eq!(v["email"], "countess@example.com");
    assert_eq!(v["emailVerified"], true);
    assert_eq!(v["pendingEmail"], Value::Null);
    // The account now signs in with the new address only.
    s.assert_address_moved("ada@example.com", "countess@example.com")
        .await;
}

// ---------------------------------------------------------------------------
// Account deletion
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_the_account_needs_the_password_and_keeps_shared_workspaces_owned() {
    let (s, ada) = with_ada().await;
    let bob = s.register("Bob", "bob@example.com").await;
    let solo = s.create_workspace(&ada.access, "Solo").await;
    let solo_tpl = s
        .create_template(
            &ada.access,
            &solo,
            "Solo form",
            Some(json!({"meta": {"title": "solo"}})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shared = s.create_workspace(&ada.access, "Shared").await;
    s.add_member(&ada.access, &shared, &bob.email, "editor")
        .await;

    s.delete_account(&ada.access, "wrong horse 9")
        .await
        .expect_error(401, "invalid_credentials");
    s.delete("/api/auth/me", Some(&ada.access))
        .await
        .expect_error(400, "invalid_json");
    s.delete_json("/api/auth/me", None, json!({"password": PASSWORD}))
        .await
        .expect_error(401, "unauthorized");

    // The last owner of a workspace with other members cannot leave it
    // ownerless.
    s.delete_account(&ada.access, PASSWORD)
        .await
        .expect_error(409, "last_owner");
    assert_eq!(s.me_status(&ada.access).await, 200, "nothing deleted");
    s.get(&format!("/api/templates/{solo_tpl}"), Some(&ada.access))
        .await
        .expect(200);

    s.set_role(&ada.access, &shared, &bob.id, "owner").await;
    s.delete_account(&ada.access, PASSWORD).await.expect(204);

    s.get("/api/auth/me", Some(&ada.access))
        .await
        .expect_error(401, "session_revoked");
    s.refresh(&ada.refresh)
        .await
        .expect_error(401, "invalid_token");
    s.login_resp("ada@example.com", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");

    // The shared workspace lives on with Bob alone.
    let detail = s.workspace(&bob.access, &shared).await;
    let members = detail.expect(200)["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0]["userId"], bob.id.as_str());

    // The sole-member workspace and its template are gone for good.
    let state = s.state();
    assert!(state.accounts.workspace(&solo).await.unwrap().is_none());
    assert!(state.accounts.template(&solo_tpl).await.unwrap().is_none());
    assert!(state.accounts.workspace(&shared).await.unwrap().is_some());

    // The address can be used again; the new account sees nothing old.
    let again = s.register("Ada again", "ada@example.com").await;
    assert_ne!(again.id, ada.id);
    let list = s.get("/api/workspaces", Some(&again.access)).await;
    assert_eq!(list.expect(200), &json!([]));
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_can_be_listed_and_revoked_one_by_one_or_all_at_once() {
    let (s, ada) = with_ada().await;
    let bob = s.register("Bob", "bob@example.com").await;
    let laptop = s
        .request(
            "POST",
            "/api/auth/login",
            None,
            &[("user-agent", "ada-laptop/1.0")],
            Body::Json(json!({"email": "ada@example.com", "password": PASSWORD})),
        )
        .await;
    let laptop_access = laptop.expect(200)["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let phone = s.login("ada@example.com", PASSWORD).await;

    let r = s.get("/api/auth/sessions", Some(&ada.access)).await;
    let list = r.expect(200).as_array().unwrap().clone();
    assert_eq!(list.len(), 3, "{list:?}");
    let current: Vec<&Value> = list.iter().filter(|x| x["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], jwt_claims(&ada.access)["sid"]);
    let laptop_sid = jwt_claims(&laptop_access)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let laptop_view = list
        .iter()
        .find(|x| x["id"] == laptop_sid.as_str())
        .unwrap();
    assert_eq!(laptop_view["userAgent"], "ada-laptop/1.0");
    assert_eq!(laptop_view["ip"], "127.0.0.1");
    assert!(laptop_view["expiresAt"].as_i64() > laptop_view["createdAt"].as_i64());

    // Another user's session, or an unknown one: 404, and nothing ends.
    let bob_sid = jwt_claims(&bob.access)["sid"].as_str().unwrap().to_owned();
    s.delete(&format!("/api/auth/sessions/{bob_sid}"), Some(&ada.access))
        .await
        .expect_error(404, "not_found");
    assert_eq!(s.me_status(&bob.access).await, 200);
    s.delete("/api/auth/sessions/no-such-session", Some(&ada.access))
        .await
        .expect_error(404, "not_found");

    s.expect_all(&[
        Call::delete(format!("/api/auth/sessions/{laptop_sid}"), &ada.access).ok(204),
        Call::get("/api/auth/me", &laptop_access).is(401, "session_revoked"),
    ])
    .await;
    let list = s.get("/api/auth/sessions", Some(&ada.access)).await;
    assert_eq!(list.expect(200).as_array().unwrap().len(), 2);

    // All others at once: the current one stays.
    let r = s.delete("/api/auth/sessions", Some(&ada.access)).await;
    assert_eq!(r.expect(200)["revoked"], 1);
    s.get("/api/auth/me", Some(&phone.access))
        .await
        .expect_error(401, "session_revoked");
    assert_eq!(s.me_status(&ada.access).await, 200);
    let list = s.get("/api/auth/sessions", Some(&ada.access)).await;
    let list = list.expect(200).as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["current"], true);

    // Including the current one.
    let r = s
        .delete("/api/auth/sessions?includeCurrent=true", Some(&ada.access))
        .await;
    assert_eq!(r.expect(200)["revoked"], 1);
    s.get("/api/auth/me", Some(&ada.access))
        .await
        .expect_error(401, "session_revoked");
    assert_eq!(s.me_status(&bob.access).await, 200, "other users untouched");
}

// ---------------------------------------------------------------------------
// Tokens that must be refused
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_access_token_is_refused_and_refresh_still_works() {
    let s = Server::start_with(|c| c.access_token_ttl = Duration::from_secs(1)).await;
    let ada = s.register("Ada", "ada@example.com").await;
    let claims = jwt_claims(&ada.access);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        1
    );
    let r = poll(
        "the access token to expire",
        Duration::from_secs(15),
        || {
            let s = &s;
            let access = ada.access.clone();
            async move {
                let r = s.get("/api/auth/me", Some(&access)).await;
                (r.status != 200).then_some(r)
            }
        },
    )
    .await;
    r.expect_error(401, "token_expired");
    let fresh = s.refresh(&ada.refresh).await;
    assert_eq!(fresh.expect(200)["expiresIn"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_and_malformed_access_tokens_are_refused() {
    let (s, ada) = with_ada().await;
    let claims = jwt_claims(&ada.access);
    let secret = JWT_SECRET.as_bytes();
    // The same claims signed with the server's key are accepted: the
    // refusals below are about the one thing each token changes.
    assert_eq!(s.me_status(&sign_jwt(&claims, secret)).await, 200);

    let mut expired = claims.clone();
    expired["iat"] = json!(now_secs() - 100);
    expired["exp"] = json!(now_secs() - 10);
    let mut other_aud = claims.clone();
    other_aud["aud"] = json!("coform-collab");
    let mut other_iss = claims.clone();
    other_iss["iss"] = json!("someone-else");
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut other_user = claims.clone();
    other_user["sub"] = json!("somebody-else");
    let mut no_session = claims.clone();
    no_session["sid"] = json!("no-such-session");
    let tampered = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = ada.access.split('.').collect();
        let mut c = claims.clone();
        c["sub"] = json!("somebody-else");
        format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(serde_json::to_vec(&c).unwrap()),
            parts[2]
        )
    };

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", unsigned_jwt(&claims), "invalid_token"),
        (
            "another key",
            sign_jwt(&claims, b"another server's secret, 32 bytes+"),
            "invalid_token",
        ),
        (
            "HS512 with the right key",
            sign_jwt_alg(&claims, secret, jsonwebtoken::Algorithm::HS512),
            "invalid_token",
        ),
        ("tampered payload", tampered, "invalid_token"),
        ("expired", sign_jwt(&expired, secret), "token_expired"),
        (
            "document audience",
            sign_jwt(&other_aud, secret),
            "invalid_token",
        ),
        (
            "other issuer",
            sign_jwt(&other_iss, secret),
            "invalid_token",
        ),
        ("no exp", sign_jwt(&no_exp, secret), "invalid_token"),
        (
            "session of another user",
            sign_jwt(&other_user, secret),
            "session_revoked",
        ),
        (
            "unknown session",
            sign_jwt(&no_session, secret),
            "session_revoked",
        ),
        ("garbage", "garbage".into(), "invalid_token"),
    ];
    for (what, token, code) in cases {
        let r = s.get("/api/auth/me", Some(&token)).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        r.expect_error(401, code);
    }
    // A document token is not an access token.
    let ws = s.create_workspace(&ada.access, "W").await;
    let tpl = s.create_template(&ada.access, &ws, "T", None).await;
    let doc = s.doc_token(&ada.access, tpl["id"].as_str().unwrap()).await;
    s.get("/api/auth/me", Some(&doc))
        .await
        .expect_error(401, "invalid_token");
    // Not a bearer token at all.
    let r = s
        .request(
            "GET",
            "/api/auth/me",
            None,
            &[("authorization", &format!("Basic {}", ada.access))],
            Body::None,
        )
        .await;
    r.expect_error(401, "unauthorized");
}
