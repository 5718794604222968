//! Account flows that an attacker could turn against their owner, end to
//! end through the real HTTP server: password-reset links that outlive a
//! reset, e-mail verification and e-mail changes, invitations to addresses
//! nobody has proved, and login throttling that must neither reveal which
//! addresses have accounts nor let a stranger lock the owner out.
//!
//! Every test runs its own in-process server (the rate limits are per
//! server).

mod support;

use serde_json::{json, Value};
use support::*;

const VERIFY_SUBJECT: &str = "Verify your Coform e-mail address";
const RESET_SUBJECT: &str = "Reset your Coform password";

/// Asks for a password-reset mail for `email` and returns its token.
async fn reset_token(s: &Server, email: &str) -> String {
    let before = s.mails(email, RESET_SUBJECT).len();
    s.forgot_password(email).await.expect(202);
    let mails = s.mails(email, RESET_SUBJECT);
    assert_eq!(mails.len(), before + 1, "one more reset mail to {email}");
    mails[before].token()
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

    s.reset_password(&second, "battery staple 42")
        .await
        .expect(204);
    // The older link was never used, but the password it would replace is
    // gone: it must not set another one.
    s.reset_password(&first, "attacker chose 77")
        .await
        .expect_error(400, "invalid_token");
    s.reset_password(&second, "attacker chose 77")
        .await
        .expect_error(400, "invalid_token");
    s.login_resp("ada@example.com", "attacker chose 77")
        .await
        .expect_error(401, "invalid_credentials");
    s.login("ada@example.com", "battery staple 42").await;
    // A link asked for afterwards works.
    let third = reset_token(&s, "ada@example.com").await;
    s.reset_password(&third, "third time lucky 3")
        .await
        .expect(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changing_the_password_spends_the_reset_tokens_mailed_before() {
    let (s, ada) = with_ada().await;
    let stale = reset_token(&s, "ada@example.com").await;
    s.change_password(&ada.access, "battery staple 42")
        .await
        .expect(204);
    s.reset_password(&stale, "attacker chose 77")
        .await
        .expect_error(400, "invalid_token");
    s.login("ada@example.com", "battery staple 42").await;
    assert_eq!(s.me_status(&ada.access).await, 200, "nothing else ended");
}

// ---------------------------------------------------------------------------
// Changing the e-mail address
// ---------------------------------------------------------------------------

const CHANGE_SUBJECT: &str = "Confirm your new Coform e-mail address";
const NOTICE_SUBJECT: &str = "Your Coform e-mail address is being changed";

/// Registers `email` and verifies it with the registration mail.
async fn verified(s: &Server, name: &str, email: &str) -> Account {
    let account = s.register(name, email).await;
    let token = s.last_mail(email, VERIFY_SUBJECT).token();
    verify(s, &token).await.expect(200);
    account
}

async fn verify(s: &Server, token: &str) -> Resp {
    s.get(
        &format!("/api/auth/verify-email?token={}", url_encode(token)),
        None,
    )
    .await
}

async fn me(s: &Server, account: &Account) -> Value {
    s.get("/api/auth/me", Some(&account.access))
        .await
        .expect(200)
        .clone()
}

async fn change_email(s: &Server, account: &Account, body: Value) -> Resp {
    s.put("/api/auth/me", Some(&account.access), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_access_token_alone_cannot_change_the_email_address() {
    let s = Server::start().await;
    let ada = verified(&s, "Ada", "ada@example.com").await;

    let r = change_email(&s, &ada, json!({ "email": "mallory@example.com" })).await;
    assert!(r
        .field_error("currentPassword")
        .contains("required to change the e-mail address"));
    let r = change_email(
        &s,
        &ada,
        json!({ "email": "mallory@example.com", "currentPassword": "wrong horse 9", "name": "M" }),
    )
    .await;
    r.expect_error(401, "invalid_credentials");

    // Nothing changed, nothing was mailed to the new address.
    let v = me(&s, &ada).await;
    assert_eq!(v["email"], "ada@example.com");
    assert_eq!(v["emailVerified"], true);
    assert_eq!(v["pendingEmail"], Value::Null);
    assert_eq!(v["name"], "Ada", "a refused request applied nothing");
    assert!(s.mails("mallory@example.com", "").is_empty());
    assert!(s.mails("ada@example.com", NOTICE_SUBJECT).is_empty());
    s.login("ada@example.com", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_address_applies_only_once_the_link_mailed_to_it_is_opened() {
    let s = Server::start().await;
    let ada = verified(&s, "Ada", "ada@example.com").await;

    let r = change_email(
        &s,
        &ada,
        json!({ "email": " Countess@Example.com ", "currentPassword": PASSWORD }),
    )
    .await;
    let v = r.expect(200);
    assert_eq!(v["email"], "ada@example.com", "the old address stays");
    assert_eq!(v["emailVerified"], true, "and stays verified");
    assert_eq!(v["pendingEmail"], "countess@example.com");
    assert_eq!(me(&s, &ada).await["pendingEmail"], "countess@example.com");

    // The old address is told, without any token in the notice.
    let notice = s.last_mail("ada@example.com", NOTICE_SUBJECT);
    assert!(
        notice.body.contains("countess@example.com"),
        "{}",
        notice.body
    );
    assert!(
        notice.body.contains("change your password"),
        "{}",
        notice.body
    );
    assert!(!notice.body.contains("token"), "{}", notice.body);
    let link = s.last_mail("countess@example.com", CHANGE_SUBJECT);
    assert!(link
        .body
        .contains(&format!("/api/auth/verify-email?token={}", link.token())));

    // Until it is confirmed, the account signs in with the old address only.
    s.login("ada@example.com", PASSWORD).await;
    s.login_resp("countess@example.com", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");

    let r = verify(&s, &link.token()).await;
    let v = r.expect(200);
    assert_eq!(v["id"], ada.id.as_str());
    assert_eq!(v["email"], "countess@example.com");
    assert_eq!(v["emailVerified"], true);
    assert_eq!(v["pendingEmail"], Value::Null);
    verify(&s, &link.token())
        .await
        .expect_error(400, "invalid_token");

    s.assert_address_moved("ada@example.com", "countess@example.com")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn asking_again_replaces_the_pending_address_and_spends_the_earlier_link() {
    let s = Server::start().await;
    let ada = verified(&s, "Ada", "ada@example.com").await;
    let ask = |email: &'static str| {
        change_email(
            &s,
            &ada,
            json!({ "email": email, "currentPassword": PASSWORD }),
        )
    };

    ask("first@example.com").await.expect(200);
    let first = s.last_mail("first@example.com", CHANGE_SUBJECT).token();
    ask("first@example.com").await.expect(200);
    let first_again = s.last_mail("first@example.com", CHANGE_SUBJECT).token();
    ask("second@example.com").await.expect(200);
    let second = s.last_mail("second@example.com", CHANGE_SUBJECT).token();
    assert_eq!(me(&s, &ada).await["pendingEmail"], "second@example.com");

    for stale in [&first, &first_again] {
        verify(&s, stale).await.expect_error(400, "invalid_token");
    }
    let v = me(&s, &ada).await;
    assert_eq!(v["email"], "ada@example.com");
    assert_eq!(v["pendingEmail"], "second@example.com");

    // The current address cancels the change (no password needed to keep
    // one's own address); the link dies with it.
    let v = change_email(&s, &ada, json!({ "email": "ADA@example.com" })).await;
    assert_eq!(v.expect(200)["pendingEmail"], Value::Null);
    verify(&s, &second).await.expect_error(400, "invalid_token");
    assert_eq!(me(&s, &ada).await["email"], "ada@example.com");

    ask("third@example.com").await.expect(200);
    let third = s.last_mail("third@example.com", CHANGE_SUBJECT).token();
    assert_eq!(
        verify(&s, &third).await.expect(200)["email"],
        "third@example.com"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_address_taken_before_it_is_confirmed_is_refused_at_confirmation() {
    let s = Server::start().await;
    let ada = verified(&s, "Ada", "ada@example.com").await;
    s.register("Bob", "bob@example.com").await;
    // Taken now: refused at once, whatever the case.
    change_email(
        &s,
        &ada,
        json!({ "email": "BOB@example.com", "currentPassword": PASSWORD }),
    )
    .await
    .expect_error(409, "email_taken");
    assert!(s.mails("bob@example.com", CHANGE_SUBJECT).is_empty());

    change_email(
        &s,
        &ada,
        json!({ "email": "carol@example.com", "currentPassword": PASSWORD }),
    )
    .await
    .expect(200);
    let link = s.last_mail("carol@example.com", CHANGE_SUBJECT).token();
    let carol = s.register("Carol", "carol@example.com").await;
    verify(&s, &link).await.expect_error(409, "email_taken");
    let v = me(&s, &ada).await;
    assert_eq!(v["email"], "ada@example.com");
    assert_eq!(v["emailVerified"], true);
    s.login("carol@example.com", PASSWORD).await;
    assert_eq!(me(&s, &carol).await["email"], "carol@example.com");
}

// ---------------------------------------------------------------------------
// E-mailed tokens prove the address they were mailed to, and no other
// ---------------------------------------------------------------------------

/// Changes the account's address to `email` through the confirmation flow.
async fn move_to(s: &Server, account: &Account, email: &str) {
    change_email(
        s,
        account,
        json!({ "email": email, "currentPassword": account.password }),
    )
    .await
    .expect(200);
    let link = s.last_mail(email, CHANGE_SUBJECT).token();
    assert_eq!(verify(s, &link).await.expect(200)["email"], email);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verification_token_for_a_former_address_verifies_nothing() {
    let (s, ada) = with_ada().await;
    let for_ada = s.last_mail("ada@example.com", VERIFY_SUBJECT).token();
    move_to(&s, &ada, "countess@example.com").await;

    // Minted for ada@, the account is countess@ now: refused.
    verify(&s, &for_ada)
        .await
        .expect_error(400, "invalid_token");
    let v = me(&s, &ada).await;
    assert_eq!(v["email"], "countess@example.com");
    assert_eq!(v["pendingEmail"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verification_token_verifies_its_address_while_another_is_pending() {
    let (s, ada) = with_ada().await;
    let for_ada = s.last_mail("ada@example.com", VERIFY_SUBJECT).token();
    change_email(
        &s,
        &ada,
        json!({ "email": "countess@example.com", "currentPassword": PASSWORD }),
    )
    .await
    .expect(200);
    // The registration link proves ada@, still the account's address; it
    // neither proves nor applies the pending one.
    let v = verify(&s, &for_ada).await;
    let v = v.expect(200);
    assert_eq!(v["email"], "ada@example.com");
    assert_eq!(v["emailVerified"], true);
    assert_eq!(v["pendingEmail"], "countess@example.com");
    // And a verification token never confirms a change, nor a change token
    // a password reset.
    let change = s.last_mail("countess@example.com", CHANGE_SUBJECT).token();
    s.reset_password(&change, "battery staple 42")
        .await
        .expect_error(400, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reset_link_mailed_to_a_former_address_sets_no_password() {
    let s = Server::start().await;
    let ada = verified(&s, "Ada", "ada@example.com").await;
    let for_ada = reset_token(&s, "ada@example.com").await;
    move_to(&s, &ada, "countess@example.com").await;

    s.reset_password(&for_ada, "attacker chose 77")
        .await
        .expect_error(400, "invalid_token");
    s.login("countess@example.com", PASSWORD).await;
    assert_eq!(s.me_status(&ada.access).await, 200, "no session ended");
    // A link mailed to the current address works.
    let fresh = reset_token(&s, "countess@example.com").await;
    s.reset_password(&fresh, "battery staple 42")
        .await
        .expect(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_verification_link_can_be_asked_for_until_the_address_is_verified() {
    let (s, ada) = with_ada().await;
    s.post_empty("/api/auth/verify-email/resend", None)
        .await
        .expect_error(401, "unauthorized");
    s.post_empty("/api/auth/verify-email/resend", Some(&ada.access))
        .await
        .expect(202);
    let mails = s.mails("ada@example.com", VERIFY_SUBJECT);
    assert_eq!(mails.len(), 2);
    assert_ne!(mails[0].token(), mails[1].token());
    let v = verify(&s, &mails[1].token()).await;
    assert_eq!(v.expect(200)["emailVerified"], true);
    s.post_empty("/api/auth/verify-email/resend", Some(&ada.access))
        .await
        .expect_error(409, "already_verified");
    assert_eq!(s.mails("ada@example.com", VERIFY_SUBJECT).len(), 2);
}

// ---------------------------------------------------------------------------
// Members are added by verified addresses; the rest are invited
// ---------------------------------------------------------------------------

async fn invitations(s: &Server, token: &str, ws: &str) -> Vec<Value> {
    s.get(&format!("/api/workspaces/{ws}/invitations"), Some(token))
        .await
        .expect(200)
        .as_array()
        .expect("a list")
        .clone()
}

/// The caller's role in `ws`, or `None` if the workspace is hidden (404).
async fn role_in(s: &Server, account: &Account, ws: &str) -> Option<String> {
    let r = s.workspace(&account.access, ws).await;
    if r.status == 404 {
        return None;
    }
    Some(r.expect(200)["role"].as_str().expect("role").to_owned())
}

/// `view` without the fields that differ from one invitation to the next.
fn shape(view: &Value) -> Value {
    let mut v = view.clone();
    for key in ["email", "invitedAt", "expiresAt"] {
        assert!(v.get(key).is_some(), "{key} missing in {view}");
        v[key] = Value::Null;
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_squatted_address_gets_an_invitation_that_grants_nothing_until_verified() {
    let s = Server::start().await;
    let ada = verified(&s, "Ada", "ada@example.com").await;
    let ws = s.create_workspace(&ada.access, "Payroll").await;
    // Someone registers Victor's address before he does.
    let squatter = s.register("Victor?", "victor@example.com").await;

    let r = s
        .invite(&ada.access, &ws, "Victor@Example.com", "editor")
        .await;
    let v = r.expect(202).clone();
    assert_eq!(v["status"], "invited");
    assert_eq!(v["email"], "victor@example.com");
    assert_eq!(v["role"], "editor");
    assert_eq!(v["invitedBy"], ada.id.as_str());
    let day = 24 * 3600 * 1000;
    let ttl = v["expiresAt"].as_i64().unwrap() - v["invitedAt"].as_i64().unwrap();
    assert_eq!(ttl, 14 * day, "invitations last 14 days");
    assert!(
        v.get("userId").is_none(),
        "the answer names no account: {v}"
    );

    // Nothing is granted: the workspace stays hidden, the account is no
    // member, and it cannot open the workspace's templates.
    assert_eq!(role_in(&s, &squatter, &ws).await, None);
    let tpl = id_of(&s.create_template(&ada.access, &ws, "Salaries", None).await);
    s.get(&format!("/api/templates/{tpl}"), Some(&squatter.access))
        .await
        .expect_error(404, "not_found");
    let detail = s.workspace(&ada.access, &ws).await;
    assert_eq!(detail.expect(200)["members"].as_array().unwrap().len(), 1);
    let list = invitations(&s, &ada.access, &ws).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["email"], "victor@example.com");

    // Only the one who reads Victor's mail can verify the address; then
    // the invitation becomes a membership with the invited role.
    let token = s.last_mail("victor@example.com", VERIFY_SUBJECT).token();
    verify(&s, &token).await.expect(200);
    assert_eq!(role_in(&s, &squatter, &ws).await.as_deref(), Some("editor"));
    assert!(invitations(&s, &ada.access, &ws).await.is_empty());
    s.get(&format!("/api/templates/{tpl}"), Some(&squatter.access))
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_and_unverified_addresses_get_the_same_answer() {
    let s = Server::start().await;
    let ada = verified(&s, "Ada", "ada@example.com").await;
    let ws = s.create_workspace(&ada.access, "Team").await;
    s.register("Una", "unverified@example.com").await;

    let unknown = s
        .invite(&ada.access, &ws, "nobody@example.com", "viewer")
        .await;
    let unverified = s
        .invite(&ada.access, &ws, "unverified@example.com", "viewer")
        .await;
    assert_eq!(unknown.status, 202, "{}", unknown.text);
    assert_eq!(unverified.status, 202, "{}", unverified.text);
    assert_eq!(shape(&unknown.json), shape(&unverified.json));
    assert_eq!(unknown.header("location"), unverified.header("location"));

    // A verified address is added at once, as before.
    let bob = verified(&s, "Bob", "bob@example.com").await;
    let r = s
        .invite(&ada.access, &ws, "bob@example.com", "viewer")
        .await;
    assert_eq!(r.expect(201)["userId"], bob.id.as_str());
    assert_eq!(role_in(&s, &bob, &ws).await.as_deref(), Some("viewer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invited_address_joins_when_it_registers_and_verifies() {
    let s = Server::start().await;
    let ada = verified(&s, "Ada", "ada@example.com").await;
    let ws = s.create_workspace(&ada.access, "Team").await;
    s.invite(&ada.access, &ws, "carol@example.com", "admin")
        .await
        .expect(202);

    let carol = s.register("Carol", "carol@example.com").await;
    assert_eq!(
        role_in(&s, &carol, &ws).await,
        None,
        "registering is not proof"
    );
    let token = s.last_mail("carol@example.com", VERIFY_SUBJECT).token();
    verify(&s, &token).await.expect(200);
    assert_eq!(role_in(&s, &carol, &ws).await.as_deref(), Some("admin"));
    // Adding her again is a conflict, not a second invitation.
    s.invite(&ada.access, &ws, "carol@example.com", "viewer")
        .await
        .expect_error(409, "already_member");
    assert!(invitations(&s, &ada.access, &ws).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invited_address_joins_at_a_confirmed_change_to_it() {
    let s = Server::start().await;
    let ada = verified(&s, "Ada", "ada@example.com").await;
    let ws = s.create_workspace(&ada.access, "Team").await;
    s.invite(&ada.access, &ws, "work@example.com", "editor")
        .await
        .expect(202);
    let bob = verified(&s, "Bob", "bob@example.com").await;

    change_email(
        &s,
        &bob,
        json!({ "email": "work@example.com", "currentPassword": PASSWORD }),
    )
    .await
    .expect(200);
    assert_eq!(
        role_in(&s, &bob, &ws).await,
        None,
        "a pending address proves nothing"
    );
    let link = s.last_mail("work@example.com", CHANGE_SUBJECT).token();
    verify(&s, &link).await.expect(200);
    assert_eq!(role_in(&s, &bob, &ws).await.as_deref(), Some("editor"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admins_list_renew_and_cancel_invitations_within_the_role_rules() {
    let s = Server::start().await;
    let ada = verified(&s, "Ada", "ada@example.com").await;
    let ws = s.create_workspace(&ada.access, "Team").await;
    let carol = verified(&s, "Carol", "carol@example.com").await;
    let dave = verified(&s, "Dave", "dave@example.com").await;
    s.add_member(&ada.access, &ws, &carol.email, "admin").await;
    s.add_member(&ada.access, &ws, &dave.email, "editor").await;
    let outsider = verified(&s, "Olga", "olga@example.com").await;
    let cancel = |email: &str| format!("/api/workspaces/{ws}/invitations/{}", url_encode(email));

    s.invite(&carol.access, &ws, "x@example.com", "editor")
        .await
        .expect(202);
    // Again: one invitation, with the new role.
    s.invite(&carol.access, &ws, "X@example.com", "viewer")
        .await
        .expect(202);
    let list = invitations(&s, &carol.access, &ws).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["role"], "viewer");
    assert_eq!(list[0]["email"], "x@example.com");

    // Only admins see and cancel them; outsiders see no workspace.
    let list = format!("/api/workspaces/{ws}/invitations");
    let (x, y) = (
        cancel("x@example.com"),
        json!({"email": "y@example.com", "role": "viewer"}),
    );
    s.expect_all(&[
        Call::get(&list, &dave.access).is(403, "forbidden"),
        Call::delete(&x, &dave.access).is(403, "forbidden"),
        Call::get(&list, &outsider.access).is(404, "not_found"),
        Call::delete(&x, &outsider.access).is(404, "not_found"),
        Call::post(format!("/api/workspaces/{ws}/members"), &dave.access, y).is(403, "forbidden"),
    ])
    .await;

    // Only owners invite owners, and renew or cancel an owner's invitation.
    s.invite(&carol.access, &ws, "boss@example.com", "owner")
        .await
        .expect_error(403, "forbidden");
    s.invite(&ada.access, &ws, "boss@example.com", "owner")
        .await
        .expect(202);
    s.invite(&carol.access, &ws, "boss@example.com", "viewer")
        .await
        .expect_error(403, "forbidden");
    s.delete(&cancel("boss@example.com"), Some(&carol.access))
        .await
        .expect_error(403, "forbidden");
    assert_eq!(invitations(&s, &ada.access, &ws).await.len(), 2);

    // Cancelled: gone, and it grants nothing later.
    s.expect_all(&[
        Call::delete(cancel("X@Example.com"), &carol.access).ok(204),
        Call::delete(cancel("x@example.com"), &carol.access).is(404, "not_found"),
    ])
    .await;
    s.delete(&cancel("not an address"), Some(&carol.access))
        .await
        .field_error("email");
    let x = verified(&s, "Xena", "x@example.com").await;
    assert_eq!(role_in(&s, &x, &ws).await, None);
    let left = invitations(&s, &ada.access, &ws).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["role"], "owner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_invitation_grants_nothing() {
    let s = Server::start().await;
    let ada = verified(&s, "Ada", "ada@example.com").await;
    let ws = s.create_workspace(&ada.access, "Team").await;
    s.invite(&ada.access, &ws, "late@example.com", "editor")
        .await
        .expect(202);
    // Fifteen days pass for this invitation.
    let state = s.state();
    let mut stale = state.accounts.invitations(&ws, 0).await.unwrap().remove(0);
    stale.invited_at -= 15 * 24 * 3600 * 1000;
    stale.expires_at = stale.invited_at + 14 * 24 * 3600 * 1000;
    state.accounts.put_invitation(&stale).await.unwrap();
    assert!(invitations(&s, &ada.access, &ws).await.is_empty());

    let late = verified(&s, "Late", "late@example.com").await;
    assert_eq!(role_in(&s, &late, &ws).await, None);
}

// ---------------------------------------------------------------------------
// Login throttling: the same answer for every address, and no lockout a
// stranger can trigger
// ---------------------------------------------------------------------------

/// A login from client address `ip` (the server trusts X-Forwarded-For).
async fn login_from(s: &Server, ip: &str, email: &str, password: &str) -> Resp {
    s.request(
        "POST",
        "/api/auth/login",
        None,
        &[("x-forwarded-for", ip)],
        Body::Json(json!({ "email": email, "password": password })),
    )
    .await
}

/// Status, body and Retry-After of an answer: what must not differ between
/// an address with an account and one without.
fn answer(r: &Resp) -> (u16, String, Option<String>) {
    (r.status, r.text.clone(), r.header("retry-after"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backed_off_account_answers_exactly_like_an_unknown_address() {
    // A long first wait, so both Retry-After values are the same second.
    let s = Server::start_with(|c| c.login.backoff_base = std::time::Duration::from_secs(60)).await;
    s.register("Ada", "ada@example.com").await;
    for i in 0..5 {
        let wrong = s
            .login_resp("ada@example.com", &format!("wrong horse {i}"))
            .await;
        let unknown = s
            .login_resp("ghost@example.com", &format!("wrong horse {i}"))
            .await;
        wrong.expect_error(401, "invalid_credentials");
        assert_eq!(answer(&wrong), answer(&unknown), "failure {i}");
    }
    // Ada, even with her right password, and the unknown address: the
    // same 429, byte for byte.
    let ada = s.login_resp("ada@example.com", PASSWORD).await;
    let ghost = s.login_resp("ghost@example.com", PASSWORD).await;
    ada.expect_error(429, "rate_limited");
    // Each wait started at its own fifth failure: on a slow machine those
    // are seconds apart (an argon2 check each), so the two waits (the
    // Retry-After header, and `retryAfter` in the body) may differ by
    // those seconds, and the answers by nothing else.
    let wait = |r: &Resp| -> u64 {
        let header: u64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{}: no Retry-After", r.what));
        assert_eq!(
            r.json["error"]["details"]["retryAfter"], header,
            "{}",
            r.text
        );
        header
    };
    let (a, g) = (wait(&ada), wait(&ghost));
    // The message names the wait too ("retry in N s").
    let without_wait = |r: &Resp| {
        let mut body = r.json.clone();
        body["error"]["details"]["retryAfter"] = Value::Null;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        let message = message.replace(&format!(" {} s", wait(r)), " N s");
        body["error"]["message"] = Value::from(message);
        (r.status, body)
    };
    assert_eq!(without_wait(&ada), without_wait(&ghost));
    assert!((50..=60).contains(&a) && (50..=60).contains(&g), "{a} {g}");
    assert!(a.abs_diff(g) <= 5, "{a} {g}");
    assert!(!ada.text.contains("lock"), "{}", ada.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_from_one_source_do_not_lock_the_owner_out_from_another() {
    let s = Server::start_with(|c| {
        c.trust_proxy = true;
        c.login.backoff_base = std::time::Duration::from_secs(60);
    })
    .await;
    let ada = s.register("Ada", "ada@example.com").await;
    const ATTACKER: &str = "203.0.113.7";
    const OWNER: &str = "198.51.100.20";
    for i in 0..8 {
        let r = login_from(&s, ATTACKER, "ada@example.com", &format!("guess {i}")).await;
        assert!(
            r.status == 401 || r.status == 429,
            "guess {i}: {} {}",
            r.status,
            r.text
        );
    }
    login_from(&s, ATTACKER, "ada@example.com", PASSWORD)
        .await
        .expect_error(429, "rate_limited");
    // The owner, elsewhere, signs in at once, and her sessions live on.
    login_from(&s, OWNER, "ada@example.com", PASSWORD)
        .await
        .expect(200);
    assert_eq!(s.me_status(&ada.access).await, 200);
    // The attacker still waits: the owner's success is not theirs.
    login_from(&s, ATTACKER, "ada@example.com", PASSWORD)
        .await
        .expect_error(429, "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wait_ends_and_a_success_starts_the_count_over() {
    let s = Server::start_with(|c| {
        c.login.backoff_base = std::time::Duration::from_millis(200);
    })
    .await;
    s.register("Ada", "ada@example.com").await;
    for i in 0..5 {
        s.login_resp("ada@example.com", &format!("wrong horse {i}"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    s.login_resp("ada@example.com", PASSWORD)
        .await
        .expect_error(429, "rate_limited");
    // The first wait is short here; once it is over, the right password
    // works.
    poll("the first wait to end", TIMEOUT, || async {
        let r = s.login_resp("ada@example.com", PASSWORD).await;
        match r.status {
            429 => None,
            _ => Some(r.expect(200).clone()),
        }
    })
    .await;
    // The success forgot the failures: five more before the next wait.
    for i in 0..5 {
        s.login_resp("ada@example.com", &format!("again wrong {i}"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    s.login_resp("ada@example.com", PASSWORD)
        .await
        .expect_error(429, "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_spread_over_many_sources_meet_the_address_budget() {
    let s = Server::start_with(|c| {
        c.trust_proxy = true;
        c.login.address_failures = 8;
    })
    .await;
    s.register("Ada", "ada@example.com").await;
    for i in 0..8 {
        let ip = format!("192.0.2.{i}");
        let a = login_from(&s, &ip, "ada@example.com", "guess 1").await;
        let g = login_from(&s, &ip, "ghost@example.com", "guess 1").await;
        a.expect_error(401, "invalid_credentials");
        assert_eq!(answer(&a), answer(&g));
    }
    // Now every source waits for the window, for both addresses alike.
    let a = login_from(&s, "192.0.2.200", "ada@example.com", PASSWORD).await;
    let g = login_from(&s, "192.0.2.200", "ghost@example.com", PASSWORD).await;
    a.expect_error(429, "rate_limited");
    let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        (a.status, a.header("retry-after").is_some()),
        (g.status, true)
    );
    assert_eq!(a.json["error"]["code"], g.json["error"]["code"]);
    // Other addresses are not affected.
    s.register("Bob", "bob@example.com").await;
    login_from(&s, "192.0.2.200", "bob@example.com", PASSWORD)
        .await
        .expect(200);
}

// ---------------------------------------------------------------------------
// Password-reset mails: a stranger cannot use up the owner's
// ---------------------------------------------------------------------------

async fn forgot_from(s: &Server, ip: &str, email: &str) -> Resp {
    s.request(
        "POST",
        "/api/auth/forgot-password",
        None,
        &[("x-forwarded-for", ip)],
        Body::Json(json!({ "email": email })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stranger_asking_for_resets_does_not_use_up_the_owners() {
    let s = Server::start_with(|c| c.trust_proxy = true).await;
    s.register("Ada", "ada@example.com").await;
    for _ in 0..3 {
        forgot_from(&s, "203.0.113.7", "ada@example.com")
            .await
            .expect(202);
    }
    let r = forgot_from(&s, "203.0.113.7", "ada@example.com").await;
    r.expect_error(429, "rate_limited");
    // The owner, elsewhere, still gets her mail.
    forgot_from(&s, "198.51.100.20", "ada@example.com")
        .await
        .expect(202);
    assert_eq!(s.mails("ada@example.com", RESET_SUBJECT).len(), 4);

    // All sources together stay bounded, alike for an unknown address.
    for i in 0..6 {
        let ip = format!("192.0.2.{i}");
        forgot_from(&s, &ip, "ada@example.com").await.expect(202);
    }
    for i in 0..10 {
        let ip = format!("192.0.2.{i}");
        forgot_from(&s, &ip, "ghost@example.com").await.expect(202);
    }
    let a = forgot_from(&s, "192.0.2.99", "ada@example.com").await;
    let g = forgot_from(&s, "192.0.2.99", "ghost@example.com").await;
    a.expect_error(429, "rate_limited");
    g.expect_error(429, "rate_limited");
    assert_eq!(s.mails("ada@example.com", RESET_SUBJECT).len(), 10);
}
