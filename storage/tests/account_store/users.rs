//! Users: unique addresses, round trips, and records that need their user or workspace.

use super::*;

pub(crate) async fn unique_email_on_create_ignores_case(s: Store) {
    s.create_user(&user("u1", "alice@example.com"))
        .await
        .unwrap();
    let r = s.create_user(&user("u2", "Alice@Example.COM")).await;
    assert!(is_conflict(&r), "{r:?}");
    assert!(s.user("u2").await.unwrap().is_none());
    // Lookups ignore case as well.
    let found = s.user_by_email("alice@example.com").await.unwrap().unwrap();
    assert_eq!(found.id, "u1");
    assert_eq!(id_by_email(&s, "ALICE@example.com").await, "u1");
    assert!(no_user_at(&s, "bob@example.com").await);
    // A different address is fine.
    s.create_user(&user("u2", "bob@example.com")).await.unwrap();
}

pub(crate) async fn unique_email_on_update_ignores_case(s: Store) {
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
    assert_eq!(id_by_email(&s, "new@example.com").await, "u2");
    assert!(no_user_at(&s, "u2@example.com").await);
    s.create_user(&user("u3", "u2@example.com")).await.unwrap();
}

pub(crate) async fn user_round_trip_keeps_every_field(s: Store) {
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

pub(crate) async fn update_user_keeps_created_at_and_needs_the_user(s: Store) {
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
    assert!(no_user_at(&s, "ghost@example.com").await);
    let r = s.delete_user("ghost").await;
    assert!(is_not_found(&r), "{r:?}");
}

/// Many creates at once, some with the same e-mail (in different case):
/// exactly one per address succeeds, and a failing one never takes a
/// succeeding one down with it (in the embedded store they share group
/// commits).
pub(crate) async fn concurrent_creates_with_duplicate_emails(s: Store) {
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

pub(crate) async fn records_need_their_user_or_workspace(s: Store) {
    let r = s
        .create_session(&session("s1", "ghost", NOW, NOW + HOUR), "r0")
        .await;
    assert!(is_not_found(&r), "{r:?}");
    assert!(s.session("s1").await.unwrap().is_none());
    let r = s
        .create_user_token(&token(
            "t",
            "ghost",
            TokenKind::VerifyEmail,
            "ghost@example.com",
            NOW + HOUR,
        ))
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
    owned(&s, "w1", "u1").await;
    let r = s.add_member(&member("w1", "ghost", Role::Editor)).await;
    assert!(is_not_found(&r), "{r:?}");
    s.create_template(&template("t1", "w1", NOW)).await.unwrap();
}

pub(crate) async fn duplicate_ids_conflict(s: Store) {
    users(&s, 1).await;
    let r = s.create_user(&user("u1", "other@example.com")).await;
    assert!(is_conflict(&r), "{r:?}");
    assert!(no_user_at(&s, "other@example.com").await);

    log_in(&s, session("s1", "u1", NOW, NOW + HOUR), "r0").await;
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

    owned(&s, "w1", "u1").await;
    let r = s.create_workspace(&workspace("w1", "u1", NOW), "u1").await;
    assert!(is_conflict(&r), "{r:?}");
    s.create_template(&template("t1", "w1", NOW)).await.unwrap();
    let r = s.create_template(&template("t1", "w1", NOW)).await;
    assert!(is_conflict(&r), "{r:?}");
}
