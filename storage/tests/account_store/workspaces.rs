//! Workspaces and members: the last-owner rule and cascading deletes.

use super::*;

pub(crate) async fn create_workspace_makes_owner(s: Store) {
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

pub(crate) async fn update_workspace_replaces_listing_fields(s: Store) {
    users(&s, 1).await;
    owned(&s, "w1", "u1").await;
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

pub(crate) async fn workspaces_for_user_with_roles_oldest_first(s: Store) {
    users(&s, 3).await;
    s.create_workspace(&workspace("newer", "u1", NOW + 10), "u1")
        .await
        .unwrap();
    owned(&s, "older", "u2").await;
    s.create_workspace(&workspace("unrelated", "u2", NOW + 5), "u2")
        .await
        .unwrap();
    join(&s, member("older", "u1", Role::Viewer)).await;
    let got: Vec<(String, Role)> = roles_of(&s, "u1").await;
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

pub(crate) async fn add_member_conflict(s: Store) {
    users(&s, 2).await;
    owned(&s, "w1", "u1").await;
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

pub(crate) async fn set_member_role_and_remove_member_rules(s: Store) {
    users(&s, 3).await;
    owned(&s, "w1", "u1").await;
    join(&s, member("w1", "u2", Role::Editor)).await;

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
    join(&s, member("w1", "u3", Role::Owner)).await;
    s.remove_member("w1", "u2").await.unwrap();
    let left: Vec<String> = member_ids(&s, "w1").await;
    assert_eq!(left, ["u3"]);
}

/// Two owners demote each other at the same time: one must fail.
pub(crate) async fn concurrent_demotions_keep_one_owner(s: Store) {
    users(&s, 2).await;
    for round in 0..10 {
        let w = format!("w{round}");
        s.create_workspace(&workspace(&w, "u1", NOW), "u1")
            .await
            .unwrap();
        join(&s, member(&w, "u2", Role::Owner)).await;
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

pub(crate) async fn delete_workspace_cascades(s: Store) {
    users(&s, 2).await;
    owned(&s, "w1", "u1").await;
    owned(&s, "w2", "u1").await;
    join(&s, member("w1", "u2", Role::Editor)).await;
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

pub(crate) async fn delete_user_refuses_last_owner_of_shared_workspace(s: Store) {
    users(&s, 2).await;
    owned(&s, "shared", "u1").await;
    owned(&s, "solo", "u1").await;
    join(&s, member("shared", "u2", Role::Editor)).await;
    s.create_template(&template("t-solo", "solo", NOW))
        .await
        .unwrap();
    log_in(&s, session("s1", "u1", NOW, NOW + HOUR), "r0").await;

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
    let left: Vec<String> = member_ids(&s, "shared").await;
    assert_eq!(left, ["u2"]);
}

pub(crate) async fn delete_user_cascades(s: Store) {
    users(&s, 2).await;
    // u1 is the sole member of two workspaces, a non-owner member of
    // another and a (non-last) owner of a fourth.
    owned(&s, "solo1", "u1").await;
    owned(&s, "solo2", "u1").await;
    owned(&s, "theirs", "u2").await;
    join(&s, member("theirs", "u1", Role::Editor)).await;
    owned(&s, "both", "u2").await;
    join(&s, member("both", "u1", Role::Owner)).await;
    for (t, w) in [
        ("a", "solo1"),
        ("b", "solo1"),
        ("c", "solo2"),
        ("d", "theirs"),
        ("e", "both"),
    ] {
        s.create_template(&template(t, w, NOW)).await.unwrap();
    }
    log_in(&s, session("s1", "u1", NOW, NOW + HOUR), "r1").await;
    log_in(&s, session("s2", "u2", NOW, NOW + HOUR), "r2").await;
    mint(&s, "tok1", "u1", TokenKind::ResetPassword).await;
    mint(&s, "tok2", "u2", TokenKind::ResetPassword).await;

    assert_eq!(sorted(s.delete_user("u1").await.unwrap()), ["a", "b", "c"]);

    assert!(s.user("u1").await.unwrap().is_none());
    assert!(no_user_at(&s, "u1@example.com").await);
    assert!(s.session("s1").await.unwrap().is_none());
    assert_eq!(
        s.rotate_refresh("r1", "r1b", NOW).await.unwrap(),
        RefreshOutcome::Unknown
    );
    assert_eq!(spend(&s, "tok1", TokenKind::ResetPassword, NOW).await, None);
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
        spend(&s, "tok2", TokenKind::ResetPassword, NOW).await,
        used("u2")
    );
    // The address is free again.
    s.create_user(&user("u1-again", "U1@example.com"))
        .await
        .unwrap();
    assert!(s.workspaces_for_user("u1-again").await.unwrap().is_empty());
}
