//! Sessions, refresh-token rotation and reuse, and one-time e-mailed tokens.

use super::*;

pub(crate) async fn refresh_rotation_then_reuse_revokes_the_session(s: Store) {
    users(&s, 1).await;
    log_in(&s, session("s1", "u1", NOW, NOW + 24 * HOUR), "r0").await;

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

pub(crate) async fn concurrent_rotations_of_one_token_rotate_once(s: Store) {
    users(&s, 1).await;
    log_in(&s, session("s1", "u1", NOW, NOW + HOUR), "r0").await;
    let outcomes = at_once(16, |i| {
        let s = s.clone();
        async move { s.rotate_refresh("r0", &format!("new{i}"), NOW + 1).await }
    })
    .await;
    let mut rotated = 0;
    for outcome in outcomes {
        match outcome.unwrap() {
            RefreshOutcome::Rotated(_) => rotated += 1,
            RefreshOutcome::Reused(_) | RefreshOutcome::Inactive => {}
            RefreshOutcome::Unknown => panic!("token vanished"),
        }
    }
    assert_eq!(rotated, 1);
    // Every later presentation saw a used token: the session is revoked.
    assert!(s.session("s1").await.unwrap().unwrap().revoked);
}

pub(crate) async fn expired_session_is_inactive(s: Store) {
    users(&s, 1).await;
    log_in(&s, session("s1", "u1", NOW, NOW + HOUR), "r0").await;
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

pub(crate) async fn unknown_refresh_token(s: Store) {
    assert_eq!(
        s.rotate_refresh("nope", "r1", NOW).await.unwrap(),
        RefreshOutcome::Unknown
    );
    users(&s, 1).await;
    log_in(&s, session("s1", "u1", NOW, NOW + HOUR), "r0").await;
    assert_eq!(
        s.rotate_refresh("R0", "r1", NOW).await.unwrap(),
        RefreshOutcome::Unknown
    );
    // A rotation whose new hash is taken fails and changes nothing.
    log_in(&s, session("s2", "u1", NOW, NOW + HOUR), "taken").await;
    let r = s.rotate_refresh("r0", "taken", NOW + 1).await;
    assert!(is_conflict(&r), "{r:?}");
    assert!(matches!(
        s.rotate_refresh("r0", "r1", NOW + 2).await.unwrap(),
        RefreshOutcome::Rotated(_)
    ));
}

pub(crate) async fn revoke_session_and_not_found(s: Store) {
    users(&s, 1).await;
    log_in(&s, session("s1", "u1", NOW, NOW + HOUR), "r0").await;
    s.revoke_session("s1").await.unwrap();
    assert!(s.session("s1").await.unwrap().unwrap().revoked);
    // Revoking twice is fine.
    s.revoke_session("s1").await.unwrap();
    let r = s.revoke_session("nope").await;
    assert!(is_not_found(&r), "{r:?}");
    assert!(s.session("nope").await.unwrap().is_none());
}

pub(crate) async fn revoke_user_sessions_keeps_one(s: Store) {
    users(&s, 2).await;
    for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
        s.create_session(
            &session(id, "u1", NOW + i as i64, NOW + HOUR),
            &format!("r-{id}"),
        )
        .await
        .unwrap();
    }
    log_in(&s, session("other", "u2", NOW, NOW + HOUR), "r-other").await;
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

pub(crate) async fn sessions_for_user_excludes_revoked_and_expired(s: Store) {
    users(&s, 2).await;
    log_in(&s, session("new", "u1", NOW + 2, NOW + HOUR), "r1").await;
    log_in(&s, session("old", "u1", NOW, NOW + HOUR), "r2").await;
    log_in(&s, session("expired", "u1", NOW - HOUR, NOW), "r3").await;
    log_in(&s, session("revoked", "u1", NOW, NOW + HOUR), "r4").await;
    s.revoke_session("revoked").await.unwrap();
    let mut created_revoked = session("born-revoked", "u1", NOW, NOW + HOUR);
    created_revoked.revoked = true;
    s.create_session(&created_revoked, "r5").await.unwrap();
    log_in(&s, session("theirs", "u2", NOW, NOW + HOUR), "r6").await;

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

// ---------------------------------------------------------------- one-time tokens

pub(crate) async fn one_time_tokens_are_single_use(s: Store) {
    users(&s, 2).await;
    mint(&s, "t1", "u1", TokenKind::VerifyEmail).await;
    mint(&s, "t2", "u2", TokenKind::ResetPassword).await;
    assert_eq!(
        spend(&s, "t1", TokenKind::VerifyEmail, NOW).await,
        used("u1")
    );
    assert_eq!(spend(&s, "t1", TokenKind::VerifyEmail, NOW).await, None);
    // Concurrent consumers: exactly one gets the user.
    let got: Vec<UsedToken> = at_once(8, |_| {
        let s = s.clone();
        async move { spend(&s, "t2", TokenKind::ResetPassword, NOW).await }
    })
    .await
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(got, [used("u2").unwrap()]);
    assert_eq!(
        spend(&s, "missing", TokenKind::VerifyEmail, NOW).await,
        None
    );
    let r = s
        .create_user_token(&token(
            "t1",
            "u1",
            TokenKind::VerifyEmail,
            "u1@example.com",
            NOW + HOUR,
        ))
        .await;
    assert!(is_conflict(&r), "{r:?}");
}

pub(crate) async fn one_time_token_wrong_kind_and_expired(s: Store) {
    users(&s, 1).await;
    mint(&s, "t1", "u1", TokenKind::VerifyEmail).await;
    // The wrong kind neither works nor uses the token up.
    assert_eq!(spend(&s, "t1", TokenKind::ResetPassword, NOW).await, None);
    // Expired at its expiry time.
    assert_eq!(
        spend(&s, "t1", TokenKind::VerifyEmail, NOW + HOUR).await,
        None
    );
    assert_eq!(
        spend(&s, "t1", TokenKind::VerifyEmail, NOW + HOUR - 1).await,
        used("u1")
    );
}

pub(crate) async fn one_time_tokens_carry_the_address_they_were_mailed_to(s: Store) {
    users(&s, 1).await;
    // A token for another address than the account's (a pending change).
    mint_to(
        &s,
        "c1",
        "u1",
        TokenKind::ChangeEmail,
        "New.Address@example.org",
        NOW + HOUR,
    )
    .await;
    assert_eq!(
        spend(&s, "c1", TokenKind::ChangeEmail, NOW).await,
        Some(UsedToken {
            user_id: "u1".into(),
            email: "New.Address@example.org".into(),
        })
    );
    // Kinds stay apart: a change token is not a verification token.
    mint_to(
        &s,
        "c2",
        "u1",
        TokenKind::ChangeEmail,
        "x@example.org",
        NOW + HOUR,
    )
    .await;
    assert_eq!(spend(&s, "c2", TokenKind::VerifyEmail, NOW).await, None);
}

pub(crate) async fn revoke_user_tokens_spends_every_unused_token_of_one_kind(s: Store) {
    users(&s, 2).await;
    for (hash, user, kind) in [
        ("r1", "u1", TokenKind::ResetPassword),
        ("r2", "u1", TokenKind::ResetPassword),
        ("r-used", "u1", TokenKind::ResetPassword),
        ("v1", "u1", TokenKind::VerifyEmail),
        ("r3", "u2", TokenKind::ResetPassword),
    ] {
        mint(&s, hash, user, kind).await;
    }
    assert_eq!(
        spend(&s, "r-used", TokenKind::ResetPassword, NOW).await,
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
            spend(&s, hash, TokenKind::ResetPassword, NOW).await,
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
        spend(&s, "v1", TokenKind::VerifyEmail, NOW).await,
        used("u1")
    );
    assert_eq!(
        spend(&s, "r3", TokenKind::ResetPassword, NOW).await,
        used("u2")
    );
    // Tokens made afterwards work.
    mint(&s, "r4", "u1", TokenKind::ResetPassword).await;
    assert_eq!(
        spend(&s, "r4", TokenKind::ResetPassword, NOW).await,
        used("u1")
    );
}

/// A pending new address is only a wish: nobody finds the account by it,
/// and it keeps nobody from registering or taking that address.
pub(crate) async fn a_pending_address_is_neither_looked_up_nor_reserved(s: Store) {
    users(&s, 2).await;
    let mut u1 = s.user("u1").await.unwrap().unwrap();
    u1.pending_email = Some("wanted@example.com".into());
    s.update_user(&u1).await.unwrap();
    assert!(no_user_at(&s, "wanted@example.com").await);
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
