//! The embedded store only: group commits, reopening, older databases.

use super::*;

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
