//! The `AccountStore` contract, run against every backend.
//!
//! Each test is a generic async fn over `Arc<dyn AccountStore>`; the
//! `suite!` macro instantiates it once per backend (`embedded::*` on a
//! fresh SQLite data dir, `memory::*` on a `MemoryStore`, `mongo::*` on a
//! fresh database of a SecantusDB server shared by the test process).

use std::collections::HashSet;
use std::sync::Arc;

use coform_storage::embedded::EmbeddedStore;
use coform_storage::memory::MemoryStore;
use coform_storage::mongo::MongoStore;
use coform_storage::testing::MongoServer;
use coform_storage::{
    AccountStore, DocStore, Durability, Invitation, Member, RefreshOutcome, Role, Session,
    StoreError, Template, TemplateQuery, TokenKind, UsedToken, User, Workspace,
};
use serde_json::json;

type Store = Arc<dyn AccountStore>;

const NOW: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::EmbeddedStore::open(dir.path(), super::Durability::Normal)
                        .unwrap();
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(std::sync::Arc::new(super::MemoryStore::new())).await;
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let url = super::MongoServer::shared().fresh_database_url();
                    let store = super::MongoStore::connect(&url).await.unwrap();
                    super::$name(std::sync::Arc::new(store)).await;
                    coform_storage::testing::drop_database(&url).await.unwrap();
                }
            )*
        }
    };
}

suite!(
    unique_email_on_create_ignores_case,
    unique_email_on_update_ignores_case,
    user_round_trip_keeps_every_field,
    update_user_keeps_created_at_and_needs_the_user,
    concurrent_creates_with_duplicate_emails,
    refresh_rotation_then_reuse_revokes_the_session,
    concurrent_rotations_of_one_token_rotate_once,
    expired_session_is_inactive,
    unknown_refresh_token,
    revoke_session_and_not_found,
    revoke_user_sessions_keeps_one,
    sessions_for_user_excludes_revoked_and_expired,
    one_time_tokens_are_single_use,
    one_time_token_wrong_kind_and_expired,
    one_time_tokens_carry_the_address_they_were_mailed_to,
    revoke_user_tokens_spends_every_unused_token_of_one_kind,
    a_pending_address_is_neither_looked_up_nor_reserved,
    records_need_their_user_or_workspace,
    duplicate_ids_conflict,
    create_workspace_makes_owner,
    update_workspace_replaces_listing_fields,
    workspaces_for_user_with_roles_oldest_first,
    add_member_conflict,
    set_member_role_and_remove_member_rules,
    concurrent_demotions_keep_one_owner,
    delete_workspace_cascades,
    delete_user_refuses_last_owner_of_shared_workspace,
    delete_user_cascades,
    invitations_are_one_per_workspace_and_address,
    invitations_expire_and_go_with_their_workspace,
    accepting_invitations_grants_each_role_once,
    concurrent_acceptances_grant_once,
    template_round_trip_update_delete,
    list_templates_filters_by_workspace_and_tag,
    list_templates_search_is_literal_and_case_insensitive,
    list_templates_pages_newest_first,
);

// ---------------------------------------------------------------- fixtures

fn user(id: &str, email: &str) -> User {
    User {
        id: id.into(),
        email: email.into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${id}"),
        name: format!("User {id}"),
        color: "#336699".into(),
        email_verified: false,
        failed_login_attempts: 0,
        locked_until: None,
        last_login: None,
        password_changed_at: NOW,
        profile: json!({}),
        created_at: NOW,
        updated_at: NOW,
        pending_email: None,
    }
}

fn session(id: &str, user_id: &str, created_at: i64, expires_at: i64) -> Session {
    Session {
        id: id.into(),
        user_id: user_id.into(),
        created_at,
        last_used_at: created_at,
        expires_at,
        revoked: false,
        user_agent: "test-agent/1.0".into(),
        ip: "192.0.2.1".into(),
    }
}

fn workspace(id: &str, created_by: &str, created_at: i64) -> Workspace {
    Workspace {
        id: id.into(),
        name: format!("Workspace {id}"),
        description: String::new(),
        created_by: created_by.into(),
        settings: json!({ "visibility": "private" }),
        created_at,
        updated_at: created_at,
    }
}

fn member(workspace_id: &str, user_id: &str, role: Role) -> Member {
    Member {
        workspace_id: workspace_id.into(),
        user_id: user_id.into(),
        role,
        joined_at: NOW + 1,
    }
}

fn template(id: &str, workspace_id: &str, updated_at: i64) -> Template {
    Template {
        id: id.into(),
        workspace_id: workspace_id.into(),
        name: format!("Template {id}"),
        description: String::new(),
        tags: Vec::new(),
        is_public: false,
        created_by: "u1".into(),
        created_at: NOW,
        updated_at,
        version: 1,
    }
}

fn query(workspaces: &[&str]) -> TemplateQuery {
    TemplateQuery {
        workspace_ids: workspaces.iter().map(|w| w.to_string()).collect(),
        tag: None,
        search: None,
        offset: 0,
        limit: 100,
    }
}

fn ids(templates: &[Template]) -> Vec<&str> {
    templates.iter().map(|t| t.id.as_str()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// What consuming a token of `user` (mailed to `<user>@example.com`) gives.
fn used(user: &str) -> Option<UsedToken> {
    Some(UsedToken {
        user_id: user.into(),
        email: format!("{user}@example.com"),
    })
}

fn is_conflict<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

fn is_not_found<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound(_)))
}

fn is_last_owner<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Constraint("last_owner")))
}

/// Users with these ids and addresses.
async fn users_named(s: &Store, list: &[(&str, &str)]) {
    for (id, email) in list {
        s.create_user(&user(id, email)).await.unwrap();
    }
}

/// Users u1..=un.
async fn users(s: &Store, n: usize) {
    for i in 1..=n {
        s.create_user(&user(&format!("u{i}"), &format!("u{i}@example.com")))
            .await
            .unwrap();
    }
}

// ---------------------------------------------------------------- users

async fn unique_email_on_create_ignores_case(s: Store) {
    s.create_user(&user("u1", "alice@example.com"))
        .await
        .unwrap();
    let r = s.create_user(&user("u2", "Alice@Example.COM")).await;
    assert!(is_conflict(&r), "{r:?}");
    assert!(s.user("u2").await.unwrap().is_none());
    // Lookups ignore case as well.
    let found = s.user_by_email("alice@example.com").await.unwrap().unwrap();
    assert_eq!(found.id, "u1");
    assert_eq!(
        s.user_by_email("ALICE@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        "u1"
    );
    assert!(s.user_by_email("bob@example.com").await.unwrap().is_none());
    // A different address is fine.
    s.create_user(&user("u2", "bob@example.com")).await.unwrap();
}

async fn unique_email_on_update_ignores_case(s: Store) {
    users(&s, 2).await;
    let mut u2 = s.user("u2").await.unwrap().unwrap();
    u2.email = "U1@EXAMPLE.com".into();
    let r = s.update_user(&u2).await;
    assert!(is_conflict(&r), "{r:?}");
    assert_eq!(s.user("u2").await.unwrap().unwrap().email, "u2@example.com");
    // Changing the case of one's own address is not a conflict.
    u2.email = "U2@example.com".into();
    s.update_user(&u2).await.unwrap();
    // The old address is free again once changed.
    u2.email = "new@example.com".into();
    s.update_user(&u2).await.unwrap();
    assert_eq!(
        s.user_by_email("new@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        "u2"
    );
    assert!(s.user_by_email("u2@example.com").await.unwrap().is_none());
    s.create_user(&user("u3", "u2@example.com")).await.unwrap();
}

async fn user_round_trip_keeps_every_field(s: Store) {
    let u = User {
        id: "u-ünïcode".into(),
        email: "Zoë@example.com".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        name: "Zoë O'Brien \"ZB\"".into(),
        color: "#ff00aa".into(),
        email_verified: true,
        failed_login_attempts: 3,
        locked_until: Some(NOW + 15 * 60_000),
        last_login: Some(NOW - HOUR),
        password_changed_at: NOW - 2 * HOUR,
        profile: json!({
            "organization": "Coform",
            "language": "de",
            "notifications": { "email": true, "digest": ["daily", "weekly"] },
            "age": 42,
            "ratio": 0.5,
            "nothing": null
        }),
        created_at: NOW - 3 * HOUR,
        updated_at: NOW,
        pending_email: Some("Zoë.Neu@example.org".into()),
    };
    s.create_user(&u).await.unwrap();
    assert_eq!(s.user(&u.id).await.unwrap().unwrap(), u);
    assert_eq!(
        s.user_by_email("zoë@example.com").await.unwrap().unwrap(),
        u
    );
    assert!(s.user("nobody").await.unwrap().is_none());

    // And the same after clearing the optional fields.
    let mut cleared = u.clone();
    cleared.locked_until = None;
    cleared.pending_email = None;
    cleared.last_login = None;
    cleared.profile = json!({});
    cleared.email_verified = false;
    cleared.failed_login_attempts = u32::MAX;
    s.update_user(&cleared).await.unwrap();
    assert_eq!(s.user(&u.id).await.unwrap().unwrap(), cleared);
}

async fn update_user_keeps_created_at_and_needs_the_user(s: Store) {
    users(&s, 1).await;
    let mut u = s.user("u1").await.unwrap().unwrap();
    u.name = "Renamed".into();
    u.created_at = 1;
    u.updated_at = NOW + 5;
    s.update_user(&u).await.unwrap();
    let back = s.user("u1").await.unwrap().unwrap();
    assert_eq!(back.name, "Renamed");
    assert_eq!(back.updated_at, NOW + 5);
    assert_eq!(back.created_at, NOW);

    let r = s.update_user(&user("ghost", "ghost@example.com")).await;
    assert!(is_not_found(&r), "{r:?}");
    assert!(s
        .user_by_email("ghost@example.com")
        .await
        .unwrap()
        .is_none());
    let r = s.delete_user("ghost").await;
    assert!(is_not_found(&r), "{r:?}");
}

/// Many creates at once, some with the same e-mail (in different case):
/// exactly one per address succeeds, and a failing one never takes a
/// succeeding one down with it (in the embedded store they share group
/// commits).
async fn concurrent_creates_with_duplicate_emails(s: Store) {
    const ADDRESSES: usize = 40;
    const COPIES: usize = 4;
    let mut tasks = Vec::new();
    for copy in 0..COPIES {
        for a in 0..ADDRESSES {
            let s = s.clone();
            let email = if copy % 2 == 0 {
                format!("user{a}@example.com")
            } else {
                format!("USER{a}@Example.com")
            };
            let id = format!("u{a}-{copy}");
            tasks.push(tokio::spawn(async move {
                let r = s.create_user(&user(&id, &email)).await;
                (a, id, r)
            }));
        }
    }
    let mut winners = vec![Vec::new(); ADDRESSES];
    for t in tasks {
        let (a, id, r) = t.await.unwrap();
        match r {
            Ok(()) => winners[a].push(id),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    for (a, won) in winners.iter().enumerate() {
        assert_eq!(won.len(), 1, "address {a}: {won:?}");
        let stored = s
            .user_by_email(&format!("user{a}@example.com"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.id, won[0]);
    }
    // The losers left nothing behind.
    for (a, won) in winners.iter().enumerate() {
        for copy in 0..COPIES {
            let id = format!("u{a}-{copy}");
            assert_eq!(s.user(&id).await.unwrap().is_some(), won[0] == id);
        }
    }
}

// ---------------------------------------------------------------- sessions

async fn refresh_rotation_then_reuse_revokes_the_session(s: Store) {
    users(&s, 1).await;
    s.create_session(&session("s1", "u1", NOW, NOW + 24 * HOUR), "r0")
        .await
        .unwrap();

    let RefreshOutcome::Rotated(rotated) = s.rotate_refresh("r0", "r1", NOW + 10).await.unwrap()
    else {
        panic!("expected Rotated");
    };
    assert_eq!(rotated.id, "s1");
    assert_eq!(rotated.last_used_at, NOW + 10);
    assert!(!rotated.revoked);
    assert_eq!(s.session("s1").await.unwrap().unwrap(), rotated);

    // The current token rotates again.
    assert!(matches!(
        s.rotate_refresh("r1", "r2", NOW + 20).await.unwrap(),
        RefreshOutcome::Rotated(_)
    ));

    // Presenting a used token: reuse, the whole session is revoked.
    let RefreshOutcome::Reused(reused) = s.rotate_refresh("r0", "x1", NOW + 30).await.unwrap()
    else {
        panic!("expected Reused");
    };
    assert_eq!(reused.id, "s1");
    assert!(reused.revoked);
    assert!(s.session("s1").await.unwrap().unwrap().revoked);

    // So the newest token no longer works either, nor does the old one.
    assert_eq!(
        s.rotate_refresh("r2", "r3", NOW + 40).await.unwrap(),
        RefreshOutcome::Inactive
    );
    assert_eq!(
        s.rotate_refresh("r0", "x2", NOW + 50).await.unwrap(),
        RefreshOutcome::Inactive
    );
    // The hash offered during reuse was never stored.
    assert_eq!(
        s.rotate_refresh("x1", "x3", NOW + 60).await.unwrap(),
        RefreshOutcome::Unknown
    );
    assert!(s.sessions_for_user("u1", NOW).await.unwrap().is_empty());
}

async fn concurrent_rotations_of_one_token_rotate_once(s: Store) {
    users(&s, 1).await;
    s.create_session(&session("s1", "u1", NOW, NOW + HOUR), "r0")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.rotate_refresh("r0", &format!("new{i}"), NOW + 1).await
        }));
    }
    let mut rotated = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            RefreshOutcome::Rotated(_) => rotated += 1,
            RefreshOutcome::Reused(_) | RefreshOutcome::Inactive => {}
            RefreshOutcome::Unknown => panic!("token vanished"),
        }
    }
    assert_eq!(rotated, 1);
    // Every later presentation saw a used token: the session is revoked.
    assert!(s.session("s1").await.unwrap().unwrap().revoked);
}

async fn expired_session_is_inactive(s: Store) {
    users(&s, 1).await;
    s.create_session(&session("s1", "u1", NOW, NOW + HOUR), "r0")
        .await
        .unwrap();
    assert_eq!(
        s.rotate_refresh("r0", "r1", NOW + HOUR).await.unwrap(),
        RefreshOutcome::Inactive
    );
    // Nothing changed: the token is still unused, the session not revoked.
    let stored = s.session("s1").await.unwrap().unwrap();
    assert!(!stored.revoked);
    assert_eq!(stored.last_used_at, NOW);
    assert!(matches!(
        s.rotate_refresh("r0", "r1", NOW + HOUR - 1).await.unwrap(),
        RefreshOutcome::Rotated(_)
    ));
    // Revoked is inactive too.
    s.revoke_session("s1").await.unwrap();
    assert_eq!(
        s.rotate_refresh("r1", "r2", NOW + 2).await.unwrap(),
        RefreshOutcome::Inactive
    );
}

async fn unknown_refresh_token(s: Store) {
    assert_eq!(
        s.rotate_refresh("nope", "r1", NOW).await.unwrap(),
        RefreshOutcome::Unknown
    );
    users(&s, 1).await;
    s.create_session(&session("s1", "u1", NOW, NOW + HOUR), "r0")
        .await
        .unwrap();
    assert_eq!(
        s.rotate_refresh("R0", "r1", NOW).await.unwrap(),
        RefreshOutcome::Unknown
    );
    // A rotation whose new hash is taken fails and changes nothing.
    s.create_session(&session("s2", "u1", NOW, NOW + HOUR), "taken")
        .await
        .unwrap();
    let r = s.rotate_refresh("r0", "taken", NOW + 1).await;
    assert!(is_conflict(&r), "{r:?}");
    assert!(matches!(
        s.rotate_refresh("r0", "r1", NOW + 2).await.unwrap(),
        RefreshOutcome::Rotated(_)
    ));
}

async fn revoke_session_and_not_found(s: Store) {
    users(&s, 1).await;
    s.create_session(&session("s1", "u1", NOW, NOW + HOUR), "r0")
        .await
        .unwrap();
    s.revoke_session("s1").await.unwrap();
    assert!(s.session("s1").await.unwrap().unwrap().revoked);
    // Revoking twice is fine.
    s.revoke_session("s1").await.unwrap();
    let r = s.revoke_session("nope").await;
    assert!(is_not_found(&r), "{r:?}");
    assert!(s.session("nope").await.unwrap().is_none());
}

async fn revoke_user_sessions_keeps_one(s: Store) {
    users(&s, 2).await;
    for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
        s.create_session(
            &session(id, "u1", NOW + i as i64, NOW + HOUR),
            &format!("r-{id}"),
        )
        .await
        .unwrap();
    }
    s.create_session(&session("other", "u2", NOW, NOW + HOUR), "r-other")
        .await
        .unwrap();
    s.revoke_session("d").await.unwrap();

    assert_eq!(s.revoke_user_sessions("u1", Some("b")).await.unwrap(), 2);
    let active: Vec<String> = s
        .sessions_for_user("u1", NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(active, ["b"]);
    assert_eq!(s.sessions_for_user("u2", NOW).await.unwrap().len(), 1);
    assert_eq!(
        s.rotate_refresh("r-a", "n", NOW).await.unwrap(),
        RefreshOutcome::Inactive
    );

    // Without `keep`, everything goes; already revoked ones don't count.
    assert_eq!(s.revoke_user_sessions("u1", None).await.unwrap(), 1);
    assert!(s.sessions_for_user("u1", NOW).await.unwrap().is_empty());
    assert_eq!(s.revoke_user_sessions("u1", None).await.unwrap(), 0);
    assert_eq!(s.revoke_user_sessions("nobody", None).await.unwrap(), 0);
}

async fn sessions_for_user_excludes_revoked_and_expired(s: Store) {
    users(&s, 2).await;
    s.create_session(&session("new", "u1", NOW + 2, NOW + HOUR), "r1")
        .await
        .unwrap();
    s.create_session(&session("old", "u1", NOW, NOW + HOUR), "r2")
        .await
        .unwrap();
    s.create_session(&session("expired", "u1", NOW - HOUR, NOW), "r3")
        .await
        .unwrap();
    s.create_session(&session("revoked", "u1", NOW, NOW + HOUR), "r4")
        .await
        .unwrap();
    s.revoke_session("revoked").await.unwrap();
    let mut created_revoked = session("born-revoked", "u1", NOW, NOW + HOUR);
    created_revoked.revoked = true;
    s.create_session(&created_revoked, "r5").await.unwrap();
    s.create_session(&session("theirs", "u2", NOW, NOW + HOUR), "r6")
        .await
        .unwrap();

    let active = s.sessions_for_user("u1", NOW).await.unwrap();
    assert_eq!(active.len(), 2);
    // Oldest first.
    assert_eq!(active[0], session("old", "u1", NOW, NOW + HOUR));
    assert_eq!(active[1].id, "new");
    // At an earlier time the expired one was still active.
    assert_eq!(s.sessions_for_user("u1", NOW - 1).await.unwrap().len(), 3);
    assert_eq!(
        s.session("born-revoked").await.unwrap().unwrap(),
        created_revoked
    );
}

// ---------------------------------------------------------------- tokens

async fn one_time_tokens_are_single_use(s: Store) {
    users(&s, 2).await;
    s.create_user_token(
        "t1",
        "u1",
        TokenKind::VerifyEmail,
        "u1@example.com",
        NOW + HOUR,
    )
    .await
    .unwrap();
    s.create_user_token(
        "t2",
        "u2",
        TokenKind::ResetPassword,
        "u2@example.com",
        NOW + HOUR,
    )
    .await
    .unwrap();
    assert_eq!(
        s.consume_user_token("t1", TokenKind::VerifyEmail, NOW)
            .await
            .unwrap(),
        used("u1")
    );
    assert_eq!(
        s.consume_user_token("t1", TokenKind::VerifyEmail, NOW)
            .await
            .unwrap(),
        None
    );
    // Concurrent consumers: exactly one gets the user.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.consume_user_token("t2", TokenKind::ResetPassword, NOW)
                .await
                .unwrap()
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.extend(t.await.unwrap());
    }
    assert_eq!(got, [used("u2").unwrap()]);
    assert_eq!(
        s.consume_user_token("missing", TokenKind::VerifyEmail, NOW)
            .await
            .unwrap(),
        None
    );
    let r = s
        .create_user_token(
            "t1",
            "u1",
            TokenKind::VerifyEmail,
            "u1@example.com",
            NOW + HOUR,
        )
        .await;
    assert!(is_conflict(&r), "{r:?}");
}

async fn one_time_token_wrong_kind_and_expired(s: Store) {
    users(&s, 1).await;
    s.create_user_token(
        "t1",
        "u1",
        TokenKind::VerifyEmail,
        "u1@example.com",
        NOW + HOUR,
    )
    .await
    .unwrap();
    // The wrong kind neither works nor uses the token up.
    assert_eq!(
        s.consume_user_token("t1", TokenKind::ResetPassword, NOW)
            .await
            .unwrap(),
        None
    );
    // Expired at its expiry time.
    assert_eq!(
        s.consume_user_token("t1", TokenKind::VerifyEmail, NOW + HOUR)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.consume_user_token("t1", TokenKind::VerifyEmail, NOW + HOUR - 1)
            .await
            .unwrap(),
        used("u1")
    );
}

async fn one_time_tokens_carry_the_address_they_were_mailed_to(s: Store) {
    users(&s, 1).await;
    // A token for another address than the account's (a pending change).
    s.create_user_token(
        "c1",
        "u1",
        TokenKind::ChangeEmail,
        "New.Address@example.org",
        NOW + HOUR,
    )
    .await
    .unwrap();
    assert_eq!(
        s.consume_user_token("c1", TokenKind::ChangeEmail, NOW)
            .await
            .unwrap(),
        Some(UsedToken {
            user_id: "u1".into(),
            email: "New.Address@example.org".into(),
        })
    );
    // Kinds stay apart: a change token is not a verification token.
    s.create_user_token(
        "c2",
        "u1",
        TokenKind::ChangeEmail,
        "x@example.org",
        NOW + HOUR,
    )
    .await
    .unwrap();
    assert_eq!(
        s.consume_user_token("c2", TokenKind::VerifyEmail, NOW)
            .await
            .unwrap(),
        None
    );
}

async fn revoke_user_tokens_spends_every_unused_token_of_one_kind(s: Store) {
    users(&s, 2).await;
    for (hash, user, kind) in [
        ("r1", "u1", TokenKind::ResetPassword),
        ("r2", "u1", TokenKind::ResetPassword),
        ("r-used", "u1", TokenKind::ResetPassword),
        ("v1", "u1", TokenKind::VerifyEmail),
        ("r3", "u2", TokenKind::ResetPassword),
    ] {
        s.create_user_token(hash, user, kind, &format!("{user}@example.com"), NOW + HOUR)
            .await
            .unwrap();
    }
    assert_eq!(
        s.consume_user_token("r-used", TokenKind::ResetPassword, NOW)
            .await
            .unwrap(),
        used("u1")
    );
    // Counts only the tokens it spent (not the used one, not other kinds
    // or users).
    assert_eq!(
        s.revoke_user_tokens("u1", TokenKind::ResetPassword)
            .await
            .unwrap(),
        2
    );
    for hash in ["r1", "r2"] {
        assert_eq!(
            s.consume_user_token(hash, TokenKind::ResetPassword, NOW)
                .await
                .unwrap(),
            None,
            "{hash} still works"
        );
    }
    assert_eq!(
        s.revoke_user_tokens("u1", TokenKind::ResetPassword)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.revoke_user_tokens("ghost", TokenKind::ResetPassword)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.consume_user_token("v1", TokenKind::VerifyEmail, NOW)
            .await
            .unwrap(),
        used("u1")
    );
    assert_eq!(
        s.consume_user_token("r3", TokenKind::ResetPassword, NOW)
            .await
            .unwrap(),
        used("u2")
    );
    // Tokens made afterwards work.
    s.create_user_token(
        "r4",
        "u1",
        TokenKind::ResetPassword,
        "u1@example.com",
        NOW + HOUR,
    )
    .await
    .unwrap();
    assert_eq!(
        s.consume_user_token("r4", TokenKind::ResetPassword, NOW)
            .await
            .unwrap(),
        used("u1")
    );
}

/// A pending new address is only a wish: nobody finds the account by it,
/// and it keeps nobody from registering or taking that address.
async fn a_pending_address_is_neither_looked_up_nor_reserved(s: Store) {
    users(&s, 2).await;
    let mut u1 = s.user("u1").await.unwrap().unwrap();
    u1.pending_email = Some("wanted@example.com".into());
    s.update_user(&u1).await.unwrap();
    assert!(s
        .user_by_email("wanted@example.com")
        .await
        .unwrap()
        .is_none());
    s.create_user(&user("u3", "Wanted@example.com"))
        .await
        .unwrap();
    // Another account may wish for the same address, or for u2's.
    let mut u2 = s.user("u2").await.unwrap().unwrap();
    u2.pending_email = Some("wanted@example.com".into());
    s.update_user(&u2).await.unwrap();
    u1.pending_email = Some("u2@example.com".into());
    s.update_user(&u1).await.unwrap();
    assert_eq!(
        s.user("u1")
            .await
            .unwrap()
            .unwrap()
            .pending_email
            .as_deref(),
        Some("u2@example.com")
    );
    // Making it the address is still refused while it is taken.
    u1.email = "U2@example.com".into();
    let r = s.update_user(&u1).await;
    assert!(is_conflict(&r), "{r:?}");
    u1.email = "wanted@example.com".into();
    let r = s.update_user(&u1).await;
    assert!(is_conflict(&r), "{r:?}");
}

// ---------------------------------------------------------------- integrity

async fn records_need_their_user_or_workspace(s: Store) {
    let r = s
        .create_session(&session("s1", "ghost", NOW, NOW + HOUR), "r0")
        .await;
    assert!(is_not_found(&r), "{r:?}");
    assert!(s.session("s1").await.unwrap().is_none());
    let r = s
        .create_user_token(
            "t",
            "ghost",
            TokenKind::VerifyEmail,
            "ghost@example.com",
            NOW + HOUR,
        )
        .await;
    assert!(is_not_found(&r), "{r:?}");
    let r = s
        .create_workspace(&workspace("w1", "ghost", NOW), "ghost")
        .await;
    assert!(is_not_found(&r), "{r:?}");
    assert!(s.workspace("w1").await.unwrap().is_none());

    users(&s, 1).await;
    let r = s.add_member(&member("w1", "u1", Role::Editor)).await;
    assert!(is_not_found(&r), "{r:?}");
    let r = s.create_template(&template("t1", "w1", NOW)).await;
    assert!(is_not_found(&r), "{r:?}");
    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    let r = s.add_member(&member("w1", "ghost", Role::Editor)).await;
    assert!(is_not_found(&r), "{r:?}");
    s.create_template(&template("t1", "w1", NOW)).await.unwrap();
}

async fn duplicate_ids_conflict(s: Store) {
    users(&s, 1).await;
    let r = s.create_user(&user("u1", "other@example.com")).await;
    assert!(is_conflict(&r), "{r:?}");
    assert!(s
        .user_by_email("other@example.com")
        .await
        .unwrap()
        .is_none());

    s.create_session(&session("s1", "u1", NOW, NOW + HOUR), "r0")
        .await
        .unwrap();
    let r = s
        .create_session(&session("s1", "u1", NOW, NOW + HOUR), "r1")
        .await;
    assert!(is_conflict(&r), "{r:?}");
    // A taken refresh hash fails the whole create: no session is left.
    let r = s
        .create_session(&session("s2", "u1", NOW, NOW + HOUR), "r0")
        .await;
    assert!(is_conflict(&r), "{r:?}");
    assert!(s.session("s2").await.unwrap().is_none());
    // And r1 was not stored by the failed create of s1.
    assert_eq!(
        s.rotate_refresh("r1", "r2", NOW).await.unwrap(),
        RefreshOutcome::Unknown
    );

    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    let r = s.create_workspace(&workspace("w1", "u1", NOW), "u1").await;
    assert!(is_conflict(&r), "{r:?}");
    s.create_template(&template("t1", "w1", NOW)).await.unwrap();
    let r = s.create_template(&template("t1", "w1", NOW)).await;
    assert!(is_conflict(&r), "{r:?}");
}

// ---------------------------------------------------------------- workspaces

async fn create_workspace_makes_owner(s: Store) {
    users(&s, 1).await;
    let w = workspace("w1", "u1", NOW);
    s.create_workspace(&w, "u1").await.unwrap();
    assert_eq!(s.workspace("w1").await.unwrap().unwrap(), w);
    assert_eq!(s.member_role("w1", "u1").await.unwrap(), Some(Role::Owner));
    assert_eq!(
        s.members("w1").await.unwrap(),
        [Member {
            workspace_id: "w1".into(),
            user_id: "u1".into(),
            role: Role::Owner,
            joined_at: NOW,
        }]
    );
    assert!(s.workspace("nope").await.unwrap().is_none());
    assert!(s.members("nope").await.unwrap().is_empty());
    assert_eq!(s.member_role("w1", "u2").await.unwrap(), None);
}

async fn update_workspace_replaces_listing_fields(s: Store) {
    users(&s, 1).await;
    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    let mut w = workspace("w1", "u1", NOW);
    w.name = "Renamed".into();
    w.description = "Now with a description".into();
    w.settings = json!({ "visibility": "public", "mode": "live" });
    w.updated_at = NOW + 9;
    // Not replaced: created_by, created_at.
    let mut sent = w.clone();
    sent.created_by = "someone-else".into();
    sent.created_at = 7;
    s.update_workspace(&sent).await.unwrap();
    assert_eq!(s.workspace("w1").await.unwrap().unwrap(), w);
    let r = s.update_workspace(&workspace("nope", "u1", NOW)).await;
    assert!(is_not_found(&r), "{r:?}");
}

async fn workspaces_for_user_with_roles_oldest_first(s: Store) {
    users(&s, 3).await;
    s.create_workspace(&workspace("newer", "u1", NOW + 10), "u1")
        .await
        .unwrap();
    s.create_workspace(&workspace("older", "u2", NOW), "u2")
        .await
        .unwrap();
    s.create_workspace(&workspace("unrelated", "u2", NOW + 5), "u2")
        .await
        .unwrap();
    s.add_member(&member("older", "u1", Role::Viewer))
        .await
        .unwrap();
    let got: Vec<(String, Role)> = s
        .workspaces_for_user("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|(w, r)| (w.id, r))
        .collect();
    assert_eq!(
        got,
        [
            ("older".to_string(), Role::Viewer),
            ("newer".to_string(), Role::Owner)
        ]
    );
    let full = s.workspaces_for_user("u1").await.unwrap();
    assert_eq!(full[0].0, workspace("older", "u2", NOW));
    assert!(s.workspaces_for_user("u3").await.unwrap().is_empty());
}

async fn add_member_conflict(s: Store) {
    users(&s, 2).await;
    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    let m = member("w1", "u2", Role::Editor);
    s.add_member(&m).await.unwrap();
    let r = s.add_member(&member("w1", "u2", Role::Admin)).await;
    assert!(is_conflict(&r), "{r:?}");
    let r = s.add_member(&member("w1", "u1", Role::Viewer)).await;
    assert!(is_conflict(&r), "{r:?}");
    assert_eq!(s.member_role("w1", "u2").await.unwrap(), Some(Role::Editor));
    assert_eq!(s.member_role("w1", "u1").await.unwrap(), Some(Role::Owner));
    let members = s.members("w1").await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[1], m);
}

async fn set_member_role_and_remove_member_rules(s: Store) {
    users(&s, 3).await;
    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    s.add_member(&member("w1", "u2", Role::Editor))
        .await
        .unwrap();

    // Not a member / no such workspace.
    let r = s.set_member_role("w1", "u3", Role::Admin).await;
    assert!(is_not_found(&r), "{r:?}");
    let r = s.remove_member("w1", "u3").await;
    assert!(is_not_found(&r), "{r:?}");
    let r = s.set_member_role("nope", "u1", Role::Admin).await;
    assert!(is_not_found(&r), "{r:?}");

    // The only owner can be neither demoted nor removed.
    let r = s.set_member_role("w1", "u1", Role::Admin).await;
    assert!(is_last_owner(&r), "{r:?}");
    let r = s.remove_member("w1", "u1").await;
    assert!(is_last_owner(&r), "{r:?}");
    // Re-affirming owner is fine.
    s.set_member_role("w1", "u1", Role::Owner).await.unwrap();

    // With two owners one may go, but not both.
    s.set_member_role("w1", "u2", Role::Owner).await.unwrap();
    s.set_member_role("w1", "u1", Role::Viewer).await.unwrap();
    let r = s.set_member_role("w1", "u2", Role::Editor).await;
    assert!(is_last_owner(&r), "{r:?}");
    let r = s.remove_member("w1", "u2").await;
    assert!(is_last_owner(&r), "{r:?}");
    assert_eq!(s.member_role("w1", "u2").await.unwrap(), Some(Role::Owner));

    // Non-owners change and leave freely.
    s.set_member_role("w1", "u1", Role::Admin).await.unwrap();
    assert_eq!(s.member_role("w1", "u1").await.unwrap(), Some(Role::Admin));
    s.remove_member("w1", "u1").await.unwrap();
    assert_eq!(s.member_role("w1", "u1").await.unwrap(), None);
    assert!(s.workspaces_for_user("u1").await.unwrap().is_empty());

    // Removal of an owner when another remains.
    s.add_member(&member("w1", "u3", Role::Owner))
        .await
        .unwrap();
    s.remove_member("w1", "u2").await.unwrap();
    let left: Vec<String> = s
        .members("w1")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(left, ["u3"]);
}

/// Two owners demote each other at the same time: one must fail.
async fn concurrent_demotions_keep_one_owner(s: Store) {
    users(&s, 2).await;
    for round in 0..10 {
        let w = format!("w{round}");
        s.create_workspace(&workspace(&w, "u1", NOW), "u1")
            .await
            .unwrap();
        s.add_member(&member(&w, "u2", Role::Owner)).await.unwrap();
        let (a, b) = tokio::join!(
            s.set_member_role(&w, "u1", Role::Editor),
            s.remove_member(&w, "u2")
        );
        assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
        let owners = s
            .members(&w)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.role == Role::Owner)
            .count();
        assert_eq!(owners, 1);
    }
}

async fn delete_workspace_cascades(s: Store) {
    users(&s, 2).await;
    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    s.create_workspace(&workspace("w2", "u1", NOW), "u1")
        .await
        .unwrap();
    s.add_member(&member("w1", "u2", Role::Editor))
        .await
        .unwrap();
    for (t, w) in [("t1", "w1"), ("t2", "w1"), ("t3", "w2")] {
        s.create_template(&template(t, w, NOW)).await.unwrap();
    }
    assert_eq!(
        sorted(s.delete_workspace("w1").await.unwrap()),
        ["t1", "t2"]
    );
    assert!(s.workspace("w1").await.unwrap().is_none());
    assert!(s.members("w1").await.unwrap().is_empty());
    assert_eq!(s.member_role("w1", "u2").await.unwrap(), None);
    assert!(s.workspaces_for_user("u2").await.unwrap().is_empty());
    assert!(s.template("t1").await.unwrap().is_none());
    assert!(s.template("t3").await.unwrap().is_some());
    let (listed, total) = s.list_templates(&query(&["w1", "w2"])).await.unwrap();
    assert_eq!((ids(&listed), total), (vec!["t3"], 1));
    let r = s.delete_workspace("w1").await;
    assert!(is_not_found(&r), "{r:?}");
    // The id can be used again, starting empty.
    s.create_workspace(&workspace("w1", "u2", NOW + 1), "u2")
        .await
        .unwrap();
    assert_eq!(s.members("w1").await.unwrap().len(), 1);
}

async fn delete_user_refuses_last_owner_of_shared_workspace(s: Store) {
    users(&s, 2).await;
    s.create_workspace(&workspace("shared", "u1", NOW), "u1")
        .await
        .unwrap();
    s.create_workspace(&workspace("solo", "u1", NOW), "u1")
        .await
        .unwrap();
    s.add_member(&member("shared", "u2", Role::Editor))
        .await
        .unwrap();
    s.create_template(&template("t-solo", "solo", NOW))
        .await
        .unwrap();
    s.create_session(&session("s1", "u1", NOW, NOW + HOUR), "r0")
        .await
        .unwrap();

    let r = s.delete_user("u1").await;
    assert!(is_last_owner(&r), "{r:?}");
    // Nothing at all was deleted.
    assert!(s.user("u1").await.unwrap().is_some());
    assert!(s.workspace("solo").await.unwrap().is_some());
    assert!(s.template("t-solo").await.unwrap().is_some());
    assert!(s.session("s1").await.unwrap().is_some());
    assert_eq!(s.workspaces_for_user("u1").await.unwrap().len(), 2);

    // Once someone else owns it too, deletion goes through.
    s.set_member_role("shared", "u2", Role::Owner)
        .await
        .unwrap();
    assert_eq!(s.delete_user("u1").await.unwrap(), ["t-solo"]);
    assert!(s.workspace("shared").await.unwrap().is_some());
    assert!(s.workspace("solo").await.unwrap().is_none());
    let left: Vec<String> = s
        .members("shared")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(left, ["u2"]);
}

async fn delete_user_cascades(s: Store) {
    users(&s, 2).await;
    // u1 is the sole member of two workspaces, a non-owner member of
    // another and a (non-last) owner of a fourth.
    s.create_workspace(&workspace("solo1", "u1", NOW), "u1")
        .await
        .unwrap();
    s.create_workspace(&workspace("solo2", "u1", NOW), "u1")
        .await
        .unwrap();
    s.create_workspace(&workspace("theirs", "u2", NOW), "u2")
        .await
        .unwrap();
    s.add_member(&member("theirs", "u1", Role::Editor))
        .await
        .unwrap();
    s.create_workspace(&workspace("both", "u2", NOW), "u2")
        .await
        .unwrap();
    s.add_member(&member("both", "u1", Role::Owner))
        .await
        .unwrap();
    for (t, w) in [
        ("a", "solo1"),
        ("b", "solo1"),
        ("c", "solo2"),
        ("d", "theirs"),
        ("e", "both"),
    ] {
        s.create_template(&template(t, w, NOW)).await.unwrap();
    }
    s.create_session(&session("s1", "u1", NOW, NOW + HOUR), "r1")
        .await
        .unwrap();
    s.create_session(&session("s2", "u2", NOW, NOW + HOUR), "r2")
        .await
        .unwrap();
    s.create_user_token(
        "tok1",
        "u1",
        TokenKind::ResetPassword,
        "u1@example.com",
        NOW + HOUR,
    )
    .await
    .unwrap();
    s.create_user_token(
        "tok2",
        "u2",
        TokenKind::ResetPassword,
        "u2@example.com",
        NOW + HOUR,
    )
    .await
    .unwrap();

    assert_eq!(sorted(s.delete_user("u1").await.unwrap()), ["a", "b", "c"]);

    assert!(s.user("u1").await.unwrap().is_none());
    assert!(s.user_by_email("u1@example.com").await.unwrap().is_none());
    assert!(s.session("s1").await.unwrap().is_none());
    assert_eq!(
        s.rotate_refresh("r1", "r1b", NOW).await.unwrap(),
        RefreshOutcome::Unknown
    );
    assert_eq!(
        s.consume_user_token("tok1", TokenKind::ResetPassword, NOW)
            .await
            .unwrap(),
        None
    );
    for w in ["solo1", "solo2"] {
        assert!(s.workspace(w).await.unwrap().is_none());
        assert!(s.members(w).await.unwrap().is_empty());
    }
    for t in ["a", "b", "c"] {
        assert!(s.template(t).await.unwrap().is_none());
    }
    // Shared workspaces, their templates and the other user are intact.
    for w in ["theirs", "both"] {
        assert!(s.workspace(w).await.unwrap().is_some());
        assert_eq!(s.member_role(w, "u1").await.unwrap(), None);
        assert_eq!(s.member_role(w, "u2").await.unwrap(), Some(Role::Owner));
    }
    assert!(s.template("d").await.unwrap().is_some());
    assert!(s.template("e").await.unwrap().is_some());
    assert!(s.session("s2").await.unwrap().is_some());
    assert_eq!(
        s.consume_user_token("tok2", TokenKind::ResetPassword, NOW)
            .await
            .unwrap(),
        used("u2")
    );
    // The address is free again.
    s.create_user(&user("u1-again", "U1@example.com"))
        .await
        .unwrap();
    assert!(s.workspaces_for_user("u1-again").await.unwrap().is_empty());
}

// ---------------------------------------------------------------- invitations

fn invitation(workspace: &str, email: &str, role: Role, invited_at: i64) -> Invitation {
    Invitation {
        workspace_id: workspace.into(),
        email: email.into(),
        role,
        invited_by: "u1".into(),
        invited_at,
        expires_at: invited_at + 14 * 24 * HOUR,
    }
}

async fn invitations_are_one_per_workspace_and_address(s: Store) {
    users(&s, 1).await;
    for w in ["w1", "w2"] {
        s.create_workspace(&workspace(w, "u1", NOW), "u1")
            .await
            .unwrap();
    }
    let r = s
        .put_invitation(&invitation("ghost", "a@example.com", Role::Editor, NOW))
        .await;
    assert!(is_not_found(&r), "{r:?}");
    assert!(s.invitations("ghost", NOW).await.unwrap().is_empty());

    s.put_invitation(&invitation("w1", "carol@example.com", Role::Editor, NOW))
        .await
        .unwrap();
    s.put_invitation(&invitation("w1", "bob@example.com", Role::Admin, NOW + 1))
        .await
        .unwrap();
    s.put_invitation(&invitation("w2", "carol@example.com", Role::Viewer, NOW))
        .await
        .unwrap();
    // The same address again, in another case: replaces the first.
    let mut again = invitation("w1", "Carol@Example.com", Role::Viewer, NOW + 2);
    again.invited_by = "u9".into();
    s.put_invitation(&again).await.unwrap();
    let list = s.invitations("w1", NOW).await.unwrap();
    assert_eq!(
        list,
        [
            invitation("w1", "bob@example.com", Role::Admin, NOW + 1),
            again.clone()
        ]
    );
    assert_eq!(
        s.invitations("w2", NOW).await.unwrap(),
        [invitation("w2", "carol@example.com", Role::Viewer, NOW)]
    );

    // Deleting ignores case and touches one workspace only.
    s.delete_invitation("w1", "CAROL@example.com")
        .await
        .unwrap();
    let r = s.delete_invitation("w1", "carol@example.com").await;
    assert!(is_not_found(&r), "{r:?}");
    let r = s.delete_invitation("ghost", "carol@example.com").await;
    assert!(is_not_found(&r), "{r:?}");
    assert_eq!(s.invitations("w1", NOW).await.unwrap().len(), 1);
    assert_eq!(s.invitations("w2", NOW).await.unwrap().len(), 1);
    // An invitation is not a membership.
    assert!(s
        .members("w1")
        .await
        .unwrap()
        .iter()
        .all(|m| m.user_id == "u1"));
}

async fn invitations_expire_and_go_with_their_workspace(s: Store) {
    users(&s, 1).await;
    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    let mut old = invitation("w1", "old@example.com", Role::Editor, NOW);
    old.expires_at = NOW + HOUR;
    s.put_invitation(&old).await.unwrap();
    assert_eq!(s.invitations("w1", NOW + HOUR - 1).await.unwrap(), [old]);
    assert!(s.invitations("w1", NOW + HOUR).await.unwrap().is_empty());
    // An expired one can still be deleted (or renewed).
    s.delete_invitation("w1", "old@example.com").await.unwrap();

    s.put_invitation(&invitation("w1", "new@example.com", Role::Editor, NOW))
        .await
        .unwrap();
    s.delete_workspace("w1").await.unwrap();
    assert!(s.invitations("w1", NOW).await.unwrap().is_empty());
    // A workspace made later with the same id inherits nothing.
    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    assert!(s.invitations("w1", NOW).await.unwrap().is_empty());
    users_named(&s, &[("u2", "new@example.com")]).await;
    assert!(s
        .accept_invitations("u2", "new@example.com", NOW)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.member_role("w1", "u2").await.unwrap(), None);
}

async fn accepting_invitations_grants_each_role_once(s: Store) {
    users(&s, 2).await;
    for w in ["w1", "w2", "w3", "w4", "w5"] {
        s.create_workspace(&workspace(w, "u1", NOW), "u1")
            .await
            .unwrap();
    }
    s.add_member(&member("w4", "u2", Role::Editor))
        .await
        .unwrap();
    s.put_invitation(&invitation("w1", "U2@example.com", Role::Editor, NOW))
        .await
        .unwrap();
    s.put_invitation(&invitation("w2", "u2@example.com", Role::Owner, NOW))
        .await
        .unwrap();
    let mut expired = invitation("w3", "u2@example.com", Role::Viewer, NOW);
    expired.expires_at = NOW + 5;
    s.put_invitation(&expired).await.unwrap();
    // Already a member: the membership is not changed.
    s.put_invitation(&invitation("w4", "u2@example.com", Role::Viewer, NOW))
        .await
        .unwrap();
    // Someone else's invitation stays.
    s.put_invitation(&invitation("w5", "carol@example.com", Role::Viewer, NOW))
        .await
        .unwrap();

    let r = s.accept_invitations("ghost", "u2@example.com", NOW).await;
    assert!(is_not_found(&r), "{r:?}");
    assert_eq!(s.member_role("w1", "ghost").await.unwrap(), None);
    assert_eq!(s.invitations("w1", NOW).await.unwrap().len(), 1);

    let joined = s
        .accept_invitations("u2", "u2@example.com", NOW + 10)
        .await
        .unwrap();
    let at = |w: &str, role| Member {
        workspace_id: w.into(),
        user_id: "u2".into(),
        role,
        joined_at: NOW + 10,
    };
    assert_eq!(joined, [at("w1", Role::Editor), at("w2", Role::Owner)]);
    assert_eq!(s.member_role("w1", "u2").await.unwrap(), Some(Role::Editor));
    assert_eq!(s.member_role("w2", "u2").await.unwrap(), Some(Role::Owner));
    assert_eq!(s.member_role("w3", "u2").await.unwrap(), None);
    assert_eq!(s.member_role("w4", "u2").await.unwrap(), Some(Role::Editor));
    for w in ["w1", "w2", "w3", "w4"] {
        assert!(s.invitations(w, 0).await.unwrap().is_empty(), "{w}");
    }
    assert_eq!(s.invitations("w5", NOW).await.unwrap().len(), 1);
    // Nothing is left to grant.
    assert!(s
        .accept_invitations("u2", "u2@example.com", NOW + 10)
        .await
        .unwrap()
        .is_empty());
    let mut roles: Vec<(String, Role)> = s
        .workspaces_for_user("u2")
        .await
        .unwrap()
        .into_iter()
        .map(|(w, r)| (w.id, r))
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            ("w1".to_string(), Role::Editor),
            ("w2".to_string(), Role::Owner),
            ("w4".to_string(), Role::Editor)
        ]
    );
}

async fn concurrent_acceptances_grant_once(s: Store) {
    users(&s, 2).await;
    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    s.put_invitation(&invitation("w1", "u2@example.com", Role::Editor, NOW))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.accept_invitations("u2", "u2@example.com", NOW)
                .await
                .unwrap()
                .len()
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += t.await.unwrap();
    }
    assert_eq!(granted, 1);
    assert_eq!(s.members("w1").await.unwrap().len(), 2);
}

// ---------------------------------------------------------------- templates

async fn template_round_trip_update_delete(s: Store) {
    users(&s, 1).await;
    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    let t = Template {
        id: "t1".into(),
        workspace_id: "w1".into(),
        name: "Sprint retro 🚀".into(),
        description: "What went \"well\", what didn't".into(),
        tags: vec!["retro".into(), "agile".into(), "quote\"d".into()],
        is_public: true,
        created_by: "u1".into(),
        created_at: NOW,
        updated_at: NOW,
        version: 1,
    };
    s.create_template(&t).await.unwrap();
    assert_eq!(s.template("t1").await.unwrap().unwrap(), t);

    let mut changed = t.clone();
    changed.name = "Retro".into();
    changed.description = String::new();
    changed.tags = Vec::new();
    changed.is_public = false;
    changed.updated_at = NOW + 100;
    changed.version = 2;
    // Not replaced: workspace_id, created_by, created_at.
    let mut sent = changed.clone();
    sent.workspace_id = "elsewhere".into();
    sent.created_by = "someone".into();
    sent.created_at = 0;
    s.update_template(&sent).await.unwrap();
    assert_eq!(s.template("t1").await.unwrap().unwrap(), changed);

    let r = s.update_template(&template("nope", "w1", NOW)).await;
    assert!(is_not_found(&r), "{r:?}");
    s.delete_template("t1").await.unwrap();
    assert!(s.template("t1").await.unwrap().is_none());
    let r = s.delete_template("t1").await;
    assert!(is_not_found(&r), "{r:?}");
}

async fn list_templates_filters_by_workspace_and_tag(s: Store) {
    users(&s, 1).await;
    for w in ["w1", "w2", "w3"] {
        s.create_workspace(&workspace(w, "u1", NOW), "u1")
            .await
            .unwrap();
    }
    let tagged = |id: &str, w: &str, at: i64, tags: &[&str]| {
        let mut t = template(id, w, at);
        t.tags = tags.iter().map(|t| t.to_string()).collect();
        t
    };
    for t in [
        tagged("a", "w1", NOW + 1, &["design", "ux"]),
        tagged("b", "w1", NOW + 2, &["Design"]),
        tagged("c", "w2", NOW + 3, &["design"]),
        tagged("d", "w3", NOW + 4, &["designer"]),
        tagged("e", "w3", NOW + 5, &[]),
        tagged("f", "w3", NOW + 6, &["say \"hi\"", "%"]),
    ] {
        s.create_template(&t).await.unwrap();
    }

    let (page, total) = s.list_templates(&query(&["w1", "w3"])).await.unwrap();
    assert_eq!((ids(&page), total), (vec!["f", "e", "d", "b", "a"], 5));
    let (page, total) = s.list_templates(&query(&["w2"])).await.unwrap();
    assert_eq!((ids(&page), total), (vec!["c"], 1));
    // No workspaces: nothing (not everything).
    let (page, total) = s.list_templates(&query(&[])).await.unwrap();
    assert_eq!((page.len(), total), (0, 0));
    let (page, _) = s.list_templates(&query(&["nope"])).await.unwrap();
    assert!(page.is_empty());

    let with_tag = |ws: &[&str], tag: &str| {
        let mut q = query(ws);
        q.tag = Some(tag.into());
        q
    };
    // Exact, case-sensitive tag match: no substrings, no case folding.
    let (page, total) = s
        .list_templates(&with_tag(&["w1", "w2", "w3"], "design"))
        .await
        .unwrap();
    assert_eq!((ids(&page), total), (vec!["c", "a"], 2));
    let (page, _) = s
        .list_templates(&with_tag(&["w1", "w3"], "design"))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["a"]);
    let (page, _) = s
        .list_templates(&with_tag(&["w1", "w2", "w3"], "Design"))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["b"]);
    for tag in ["desig", "esign", "", "ux\"", "%"] {
        let (page, _) = s
            .list_templates(&with_tag(&["w1", "w2"], tag))
            .await
            .unwrap();
        assert!(page.is_empty(), "tag {tag:?}: {:?}", ids(&page));
    }
    let (page, _) = s
        .list_templates(&with_tag(&["w3"], "say \"hi\""))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["f"]);
    let (page, _) = s.list_templates(&with_tag(&["w3"], "%")).await.unwrap();
    assert_eq!(ids(&page), ["f"]);

    // Tag and search combine.
    let mut q = with_tag(&["w1", "w2", "w3"], "design");
    q.search = Some("template C".into());
    let (page, total) = s.list_templates(&q).await.unwrap();
    assert_eq!((ids(&page), total), (vec!["c"], 1));
}

async fn list_templates_search_is_literal_and_case_insensitive(s: Store) {
    users(&s, 1).await;
    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    s.create_workspace(&workspace("w2", "u1", NOW), "u1")
        .await
        .unwrap();
    let listing = |id: &str, at: i64, name: &str, description: &str| {
        let mut t = template(id, "w1", at);
        t.name = name.into();
        t.description = description.into();
        t
    };
    for t in [
        listing("pct", 1, "100% Cotton", "plain"),
        listing("cotton", 2, "100 Cotton", "a_b"),
        listing("snake", 3, "snake_case names", r"C:\path\to"),
        listing("german", 4, "Größe Übersicht", "Deutsch"),
        listing("french", 5, "Café menu", "ÉTÉ spécial"),
        listing("emoji", 6, "Launch 🚀 plan", "ok"),
        listing("quote", 7, "O'Brien's notes", "it's \"quoted\""),
    ] {
        s.create_template(&t).await.unwrap();
    }
    // Same name in a workspace outside the query.
    let mut hidden = template("hidden", "w2", 8);
    hidden.name = "100% Cotton".into();
    s.create_template(&hidden).await.unwrap();

    let search = |needle: &str| {
        let mut q = query(&["w1"]);
        q.search = Some(needle.into());
        q
    };
    let cases: &[(&str, &[&str])] = &[
        ("cotton", &["cotton", "pct"]),
        ("COTTON", &["cotton", "pct"]),
        ("100%", &["pct"]),
        ("%", &["pct"]),
        ("%%", &[]),
        ("_", &["snake", "cotton"]),
        ("a_b", &["cotton"]),
        ("e_c", &["snake"]),
        ("s_c", &[]),
        (r"\", &["snake"]),
        (r"c:\PATH", &["snake"]),
        ("größe", &["german"]),
        ("GRÖSSE", &[]),
        ("GRÖ", &["german"]),
        ("übersicht", &["german"]),
        ("café", &["french"]),
        ("CAFÉ", &["french"]),
        ("été", &["french"]),
        ("🚀", &["emoji"]),
        ("o'brien", &["quote"]),
        ("\"quoted\"", &["quote"]),
        ("'; DROP TABLE users; --", &[]),
        ("' OR '1'='1", &[]),
        ("\") OR 1=1 --", &[]),
        ("plain", &["pct"]),
        ("nothing like this", &[]),
        (
            "",
            &[
                "quote", "emoji", "french", "german", "snake", "cotton", "pct",
            ],
        ),
    ];
    for (needle, want) in cases {
        let (page, total) = s.list_templates(&search(needle)).await.unwrap();
        assert_eq!(ids(&page), *want, "search {needle:?}");
        assert_eq!(total, want.len() as u64, "search {needle:?}");
    }
    // The injection attempt changed nothing.
    assert!(s.user("u1").await.unwrap().is_some());
    assert_eq!(s.list_templates(&query(&["w1"])).await.unwrap().1, 7);
}

async fn list_templates_pages_newest_first(s: Store) {
    users(&s, 1).await;
    s.create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    // t00..t24, updated in a shuffled order; t24b ties with t24.
    for i in 0..25i64 {
        let at = NOW + (i * 7) % 25;
        s.create_template(&template(&format!("t{i:02}"), "w1", at))
            .await
            .unwrap();
    }
    let expected: Vec<String> = {
        let mut all: Vec<(i64, String)> = (0..25i64)
            .map(|i| (NOW + (i * 7) % 25, format!("t{i:02}")))
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        all.into_iter().map(|(_, id)| id).collect()
    };
    let mut seen = Vec::new();
    for (offset, len) in [(0, 10), (10, 10), (20, 5), (30, 0)] {
        let mut q = query(&["w1"]);
        q.offset = offset;
        q.limit = 10;
        let (page, total) = s.list_templates(&q).await.unwrap();
        assert_eq!(total, 25);
        assert_eq!(page.len(), len, "offset {offset}");
        seen.extend(page.into_iter().map(|t| t.id));
    }
    assert_eq!(seen, expected);

    // Equal updated_at: ties break by id.
    let newest = NOW + 1000;
    for id in ["tie-b", "tie-a"] {
        s.create_template(&template(id, "w1", newest))
            .await
            .unwrap();
    }
    let mut q = query(&["w1"]);
    q.limit = 3;
    let (page, total) = s.list_templates(&q).await.unwrap();
    assert_eq!(total, 27);
    assert_eq!(ids(&page), ["tie-a", "tie-b", expected[0].as_str()]);

    // An update moves a template to the front.
    let mut last = s.template(expected.last().unwrap()).await.unwrap().unwrap();
    last.updated_at = newest + 1;
    last.version += 1;
    s.update_template(&last).await.unwrap();
    let (page, _) = s.list_templates(&q).await.unwrap();
    assert_eq!(page[0], last);

    // limit 0: no rows, but the count.
    q.limit = 0;
    let (page, total) = s.list_templates(&q).await.unwrap();
    assert_eq!((page.len(), total), (0, 27));
    // Huge values don't overflow.
    q.limit = u64::MAX;
    q.offset = 25;
    let (page, _) = s.list_templates(&q).await.unwrap();
    assert_eq!(page.len(), 2);
    q.offset = u64::MAX;
    let (page, total) = s.list_templates(&q).await.unwrap();
    assert_eq!((page.len(), total), (0, 27));
}

// ---------------------------------------------------------------- embedded only

/// A write that fails (duplicate e-mail) and writes that succeed, queued
/// together so they share group commits: each fails or commits alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_failing_write_does_not_spoil_its_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path(), Durability::Full).unwrap());
    store
        .create_user(&user("seed", "dup@example.com"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every third one collides with the seed user.
            let email = if i % 3 == 0 {
                "DUP@example.com".to_string()
            } else {
                format!("fresh{i}@example.com")
            };
            (i, s.create_user(&user(&format!("c{i}"), &email)).await)
        }));
    }
    let mut ok = HashSet::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        if i % 3 == 0 {
            assert!(is_conflict(&r), "{i}: expected a conflict");
        } else {
            r.unwrap();
            ok.insert(i);
        }
    }
    assert_eq!(ok.len(), 133);
    // Reopen: exactly the successful ones were committed.
    store.close().await;
    drop(store);
    let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
    for i in 0..200 {
        let stored = store.user(&format!("c{i}")).await.unwrap();
        assert_eq!(stored.is_some(), ok.contains(&i), "user c{i}");
    }
    assert_eq!(
        store
            .user_by_email("dup@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        "seed"
    );
}

#[tokio::test]
async fn embedded_accounts_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut u = user("u1", "u1@example.com");
    u.profile = json!({ "language": "fr" });
    {
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        store.create_user(&u).await.unwrap();
        store
            .create_workspace(&workspace("w1", "u1", NOW), "u1")
            .await
            .unwrap();
        let mut t = template("t1", "w1", NOW);
        t.tags = vec!["kept".into()];
        t.name = "Persistent Plan".into();
        store.create_template(&t).await.unwrap();
        store
            .create_session(&session("s1", "u1", NOW, NOW + HOUR), "r0")
            .await
            .unwrap();
        store.close().await;
    }
    let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
    assert_eq!(store.user("u1").await.unwrap().unwrap(), u);
    assert_eq!(
        store.member_role("w1", "u1").await.unwrap(),
        Some(Role::Owner)
    );
    let mut q = query(&["w1"]);
    q.tag = Some("kept".into());
    q.search = Some("persistent".into());
    assert_eq!(store.list_templates(&q).await.unwrap().1, 1);
    assert!(matches!(
        store.rotate_refresh("r0", "r1", NOW).await.unwrap(),
        RefreshOutcome::Rotated(_)
    ));
}

/// A database written before accounts had pending addresses, tokens their
/// address, and workspaces invitations: it opens with every record, an old
/// token proves no address, and the new records work.
#[tokio::test]
async fn embedded_accounts_of_an_older_database_are_migrated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn =
            rusqlite::Connection::open(dir.path().join(coform_storage::embedded::DB_FILE)).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (
                 id TEXT PRIMARY KEY, email TEXT NOT NULL, password_hash TEXT NOT NULL,
                 name TEXT NOT NULL, color TEXT NOT NULL, email_verified INTEGER NOT NULL,
                 failed_login_attempts INTEGER NOT NULL, locked_until INTEGER,
                 last_login INTEGER, password_changed_at INTEGER NOT NULL,
                 profile TEXT NOT NULL, created_at INTEGER NOT NULL,
                 updated_at INTEGER NOT NULL);
             CREATE UNIQUE INDEX users_by_email ON users(lower(email));
             CREATE TABLE user_tokens (
                 hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, kind TEXT NOT NULL,
                 expires_at INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
             INSERT INTO users VALUES ('u1', 'u1@example.com', 'h', 'Old', '#336699', 1, 0,
                 NULL, NULL, 1700000000000, '{}', 1700000000000, 1700000000000);
             INSERT INTO user_tokens VALUES ('old', 'u1', 'verify_email', 1700003600000, 0);",
        )
        .unwrap();
    }
    for _ in 0..2 {
        // Twice: migrating a migrated database changes nothing.
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let u1 = store.user("u1").await.unwrap().unwrap();
        assert_eq!((u1.name.as_str(), u1.pending_email), ("Old", None));
        assert!(u1.email_verified);
        store.close().await;
    }
    let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
    assert_eq!(
        store
            .consume_user_token("old", TokenKind::VerifyEmail, NOW)
            .await
            .unwrap(),
        Some(UsedToken {
            user_id: "u1".into(),
            email: String::new(),
        })
    );
    let mut u1 = store.user("u1").await.unwrap().unwrap();
    u1.pending_email = Some("next@example.com".into());
    store.update_user(&u1).await.unwrap();
    assert_eq!(store.user("u1").await.unwrap().unwrap(), u1);
    store
        .create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    store
        .put_invitation(&invitation("w1", "x@example.com", Role::Viewer, NOW))
        .await
        .unwrap();
    assert_eq!(store.invitations("w1", NOW).await.unwrap().len(), 1);
}
