//! Invitations: one per workspace and address, expiry, acceptance.

use super::*;

pub(crate) async fn invitations_are_one_per_workspace_and_address(s: Store) {
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

    invite(&s, invitation("w1", "carol@example.com", Role::Editor, NOW)).await;
    invite(
        &s,
        invitation("w1", "bob@example.com", Role::Admin, NOW + 1),
    )
    .await;
    invite(&s, invitation("w2", "carol@example.com", Role::Viewer, NOW)).await;
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

pub(crate) async fn invitations_expire_and_go_with_their_workspace(s: Store) {
    users(&s, 1).await;
    owned(&s, "w1", "u1").await;
    let mut old = invitation("w1", "old@example.com", Role::Editor, NOW);
    old.expires_at = NOW + HOUR;
    s.put_invitation(&old).await.unwrap();
    assert_eq!(s.invitations("w1", NOW + HOUR - 1).await.unwrap(), [old]);
    assert!(s.invitations("w1", NOW + HOUR).await.unwrap().is_empty());
    // An expired one can still be deleted (or renewed).
    s.delete_invitation("w1", "old@example.com").await.unwrap();

    invite(&s, invitation("w1", "new@example.com", Role::Editor, NOW)).await;
    s.delete_workspace("w1").await.unwrap();
    assert!(s.invitations("w1", NOW).await.unwrap().is_empty());
    // A workspace made later with the same id inherits nothing.
    owned(&s, "w1", "u1").await;
    assert!(s.invitations("w1", NOW).await.unwrap().is_empty());
    users_named(&s, &[("u2", "new@example.com")]).await;
    assert!(s
        .accept_invitations("u2", "new@example.com", NOW)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.member_role("w1", "u2").await.unwrap(), None);
}

pub(crate) async fn accepting_invitations_grants_each_role_once(s: Store) {
    users(&s, 2).await;
    for w in ["w1", "w2", "w3", "w4", "w5"] {
        s.create_workspace(&workspace(w, "u1", NOW), "u1")
            .await
            .unwrap();
    }
    join(&s, member("w4", "u2", Role::Editor)).await;
    invite(&s, invitation("w1", "U2@example.com", Role::Editor, NOW)).await;
    invite(&s, invitation("w2", "u2@example.com", Role::Owner, NOW)).await;
    let mut expired = invitation("w3", "u2@example.com", Role::Viewer, NOW);
    expired.expires_at = NOW + 5;
    s.put_invitation(&expired).await.unwrap();
    // Already a member: the membership is not changed.
    invite(&s, invitation("w4", "u2@example.com", Role::Viewer, NOW)).await;
    // Someone else's invitation stays.
    invite(&s, invitation("w5", "carol@example.com", Role::Viewer, NOW)).await;

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
    let mut roles: Vec<(String, Role)> = roles_of(&s, "u2").await;
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

pub(crate) async fn concurrent_acceptances_grant_once(s: Store) {
    users(&s, 2).await;
    owned(&s, "w1", "u1").await;
    invite(&s, invitation("w1", "u2@example.com", Role::Editor, NOW)).await;
    let granted: usize = at_once(8, |_| {
        let s = s.clone();
        async move { s.accept_invitations("u2", "u2@example.com", NOW).await }
    })
    .await
    .into_iter()
    .map(|joined| joined.unwrap().len())
    .sum();
    assert_eq!(granted, 1);
    assert_eq!(s.members("w1").await.unwrap().len(), 2);
}
