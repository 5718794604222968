//! `/api/workspaces/*` and `/api/templates/*` end to end: every endpoint's
//! happy path and documented errors, content as minimal CRDT edits next to
//! live WebSocket editors, backup and restore, listing filters and paging,
//! body limits, and that a refused request stores nothing.

mod support;

use std::collections::HashSet;

use serde_json::{json, Value};
use support::*;
use yrs::{Any, Map, MapPrelim, WriteTxn};

fn signup_content() -> Value {
    json!({
        "meta": {"title": "Signup", "tags": ["a", "b"]},
        "components": {
            "c1": {"id": "c1", "type": "text", "label": "Name", "index": "a0",
                   "properties": {"placeholder": "Your name"},
                   "validation": {"required": true}}
        }
    })
}

// ---------------------------------------------------------------------------
// Workspaces
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workspaces_are_created_listed_read_updated_and_deleted() {
    let (s, ada) = with_ada().await;
    let bob = s.register("Bob", "bob@example.com").await;

    let r = s
        .post(
            "/api/workspaces",
            Some(&ada.access),
            json!({"name": "  Marketing ", "description": " Forms of the team ",
                   "settings": {"visibility": "private"}}),
        )
        .await;
    let w = r.expect(201).clone();
    let ws = id_of(&w);
    assert_eq!(w["name"], "Marketing");
    assert_eq!(w["description"], "Forms of the team");
    assert_eq!(w["settings"], json!({"visibility": "private"}));
    assert_eq!(w["createdBy"], ada.id.as_str());
    assert_eq!(w["role"], "owner");
    let other = s.create_workspace(&ada.access, "Sales").await;
    let r = s
        .post(
            "/api/workspaces",
            Some(&ada.access),
            json!({"name": "Plain"}),
        )
        .await;
    assert_eq!(r.expect(201)["settings"], json!({}), "default settings");
    assert_eq!(r.json["description"], "");

    // Invalid bodies.
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (
            json!({"name": "ok", "description": "d".repeat(2001)}),
            "description",
        ),
        (json!({"name": "ok", "settings": [1]}), "settings"),
        (
            json!({"name": "ok", "settings": {"big": "x".repeat(17 * 1024)}}),
            "settings",
        ),
    ] {
        s.post("/api/workspaces", Some(&ada.access), body)
            .await
            .field_error(field);
    }
    let all_bad = s
        .post(
            "/api/workspaces",
            Some(&ada.access),
            json!({"name": "", "description": "d".repeat(2001), "settings": 3}),
        )
        .await;
    assert_eq!(all_bad.field_errors().len(), 3, "{}", all_bad.text);
    for body in [
        json!({"name": 5}),
        json!({"name": "ok", "owner": "me"}),
        json!({}),
    ] {
        s.post("/api/workspaces", Some(&ada.access), body)
            .await
            .expect_error(400, "invalid_json");
    }
    s.post("/api/workspaces", None, json!({"name": "x"}))
        .await
        .expect_error(401, "unauthorized");

    // Listing: mine only, with my role.
    let list = s.get("/api/workspaces", Some(&ada.access)).await;
    let list = list.expect(200).as_array().unwrap().clone();
    assert_eq!(list.len(), 3, "refused creations stored nothing: {list:?}");
    assert!(list.iter().all(|x| x["role"] == "owner"));
    let ids: HashSet<String> = list.iter().map(id_of).collect();
    assert!(ids.contains(&ws) && ids.contains(&other));
    let bobs = s.get("/api/workspaces", Some(&bob.access)).await;
    assert_eq!(bobs.expect(200), &json!([]));

    // Detail with members.
    let d = s.workspace(&ada.access, &ws).await;
    let d = d.expect(200);
    assert_eq!(d["name"], "Marketing");
    assert_eq!(d["role"], "owner");
    let members = d["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["userId"], ada.id.as_str());
    assert_eq!(members[0]["email"], "ada@example.com");
    assert_eq!(members[0]["name"], "Ada");
    assert_eq!(members[0]["role"], "owner");
    s.get("/api/workspaces/no-such-workspace", Some(&ada.access))
        .await
        .expect_error(404, "not_found");

    // Update.
    let r = s
        .put(
            &format!("/api/workspaces/{ws}"),
            Some(&ada.access),
            json!({"name": "Growth", "settings": {"visibility": "team"}}),
        )
        .await;
    let u = r.expect(200);
    assert_eq!(u["name"], "Growth");
    assert_eq!(u["description"], "Forms of the team", "untouched");
    assert_eq!(u["settings"], json!({"visibility": "team"}));
    assert!(u["updatedAt"].as_i64() >= w["updatedAt"].as_i64());
    s.put(
        &format!("/api/workspaces/{ws}"),
        Some(&ada.access),
        json!({"name": "Renamed", "settings": "nope"}),
    )
    .await
    .field_error("settings");
    let d = s.workspace(&ada.access, &ws).await;
    assert_eq!(
        d.expect(200)["name"],
        "Growth",
        "a refused update changed the name"
    );
    s.put(
        "/api/workspaces/no-such-workspace",
        Some(&ada.access),
        json!({"name": "x"}),
    )
    .await
    .expect_error(404, "not_found");

    // Delete: the workspace, its templates and its live sockets go.
    let tpl = id_of(
        &s.create_template(&ada.access, &ws, "Doomed", Some(signup_content()))
            .await,
    );
    let client = s.ws(&tpl, &ada.access, "ada").await;
    s.delete(&format!("/api/workspaces/{ws}"), Some(&ada.access))
        .await
        .expect(204);
    assert_eq!(client.wait_close_code().await, 4403);
    s.workspace(&ada.access, &ws)
        .await
        .expect_error(404, "not_found");
    s.get(&format!("/api/templates/{tpl}"), Some(&ada.access))
        .await
        .expect_error(404, "not_found");
    s.ws_refused(&tpl, Some(&ada.access))
        .await
        .expect(404, "not_found");
    s.delete(&format!("/api/workspaces/{ws}"), Some(&ada.access))
        .await
        .expect_error(404, "not_found");
    let list = s.get("/api/workspaces", Some(&ada.access)).await;
    assert_eq!(list.expect(200).as_array().unwrap().len(), 2);
    // Its document is gone from the store too, for good (a tombstone).
    let store = s.state().registry.store();
    assert_eq!(
        store.stats(&tpl).await.unwrap(),
        Default::default(),
        "the deleted template's document is still stored"
    );
    assert!(matches!(
        store.load(&tpl).await,
        Err(coform_storage::StoreError::Deleted(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_are_managed_within_the_role_rules() {
    let Owned { s, ada, ws } = owned().await;
    let carol = s.register("Carol", "carol@example.com").await;
    let dave = s.register("Dave", "dave@example.com").await;
    let erin = s.register("Erin", "erin@example.com").await;
    let frank = s.register("Frank", "frank@example.com").await;
    // Members are added at once by verified addresses only.
    s.ensure_verified(&carol.email).await;
    s.ensure_verified(&frank.email).await;
    let members = format!("/api/workspaces/{ws}/members");
    let member = |id: &str| format!("/api/workspaces/{ws}/members/{id}");

    let r = s
        .post(
            &members,
            Some(&ada.access),
            json!({"email": " CAROL@example.com", "role": "admin"}),
        )
        .await;
    let m = r.expect(201);
    assert_eq!(m["userId"], carol.id.as_str());
    assert_eq!(m["email"], "carol@example.com");
    assert_eq!(m["name"], "Carol");
    assert_eq!(m["role"], "admin");
    assert!(m["joinedAt"].as_i64().is_some());
    s.add_member(&ada.access, &ws, &dave.email, "editor").await;
    s.add_member(&ada.access, &ws, &erin.email, "viewer").await;

    // An address without an account is invited, not refused (a 404 would
    // tell who has an account).
    let r = s
        .post(
            &members,
            Some(&ada.access),
            json!({"email": "nobody@example.com", "role": "editor"}),
        )
        .await;
    assert_eq!(r.expect(202)["status"], "invited");

    // Documented errors of adding.
    s.post(
        &members,
        Some(&ada.access),
        json!({"email": "Dave@Example.com", "role": "viewer"}),
    )
    .await
    .expect_error(409, "already_member");
    s.post(
        &members,
        Some(&ada.access),
        json!({"email": "not an email", "role": "viewer"}),
    )
    .await
    .field_error("email");
    s.post(
        &members,
        Some(&ada.access),
        json!({"email": frank.email, "role": "superuser"}),
    )
    .await
    .expect_error(400, "invalid_json");

    // An admin manages editors and viewers...
    s.expect_all(&[
        Call::post(
            &members,
            &carol.access,
            json!({"email": frank.email, "role": "editor"}),
        )
        .ok(201),
        Call::put(member(&dave.id), &carol.access, json!({"role": "viewer"})).ok(204),
        Call::put(member(&dave.id), &carol.access, json!({"role": "editor"})).ok(204),
        Call::delete(member(&frank.id), &carol.access).ok(204),
        // ...but cannot touch owners or make new ones.
        Call::post(
            &members,
            &carol.access,
            json!({"email": frank.email, "role": "owner"}),
        )
        .is(403, "forbidden"),
        Call::put(member(&dave.id), &carol.access, json!({"role": "owner"})).is(403, "forbidden"),
        Call::put(member(&carol.id), &carol.access, json!({"role": "owner"})).is(403, "forbidden"),
        Call::put(member(&ada.id), &carol.access, json!({"role": "editor"})).is(403, "forbidden"),
        Call::delete(member(&ada.id), &carol.access).is(403, "forbidden"),
        // Editors and viewers manage nobody.
        Call::put(member(&erin.id), &dave.access, json!({"role": "editor"})).is(403, "forbidden"),
        Call::delete(member(&dave.id), &erin.access).is(403, "forbidden"),
        Call::post(
            &members,
            &dave.access,
            json!({"email": frank.email, "role": "viewer"}),
        )
        .is(403, "forbidden"),
    ])
    .await;

    // Unknown members.
    s.expect_all(&[
        Call::put(member(&frank.id), &ada.access, json!({"role": "viewer"})).is(404, "not_found"),
        Call::delete(member(&frank.id), &ada.access).is(404, "not_found"),
    ])
    .await;

    // The last owner can neither leave nor be demoted.
    s.expect_all(&[
        Call::delete(member(&ada.id), &ada.access).is(409, "last_owner"),
        Call::put(member(&ada.id), &ada.access, json!({"role": "admin"})).is(409, "last_owner"),
    ])
    .await;

    // Only an owner grants owner; with two owners, one may leave.
    s.expect_all(&[
        Call::put(member(&carol.id), &ada.access, json!({"role": "owner"})).ok(204),
        Call::delete(member(&ada.id), &ada.access).ok(204),
    ])
    .await;
    s.workspace(&ada.access, &ws)
        .await
        .expect_error(404, "not_found");
    s.put(
        &member(&carol.id),
        Some(&carol.access),
        json!({"role": "editor"}),
    )
    .await
    .expect_error(409, "last_owner");

    // Anyone may leave.
    s.delete(&member(&erin.id), Some(&erin.access))
        .await
        .expect(204);
    s.workspace(&erin.access, &ws)
        .await
        .expect_error(404, "not_found");

    let d = s.workspace(&carol.access, &ws).await;
    let mut roles: Vec<(String, String)> = d.expect(200)["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            ("Carol".to_owned(), "owner".to_owned()),
            ("Dave".to_owned(), "editor".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn analytics_count_templates_members_and_connected_users() {
    let Owned { s, ada, ws } = owned().await;
    let bob = s.register("Bob", "bob@example.com").await;
    s.add_member(&ada.access, &ws, &bob.email, "editor").await;
    let t1 = id_of(&s.create_template(&ada.access, &ws, "One", None).await);
    let t2 = id_of(&s.create_template(&ada.access, &ws, "Two", None).await);
    let path = format!("/api/workspaces/{ws}/analytics");

    let a = s.get(&path, Some(&bob.access)).await;
    let a = a.expect(200).clone();
    assert_eq!(a["templates"], 2);
    assert_eq!(a["members"], 2);
    assert_eq!(a["activeEditors"], 0);
    assert!(a["lastActivity"].as_i64().is_some_and(|t| t > 0));

    // Users connected over WebSocket, each counted once.
    let ada1 = s.ws(&t1, &ada.access, "ada-1").await;
    let a = s.get(&path, Some(&ada.access)).await;
    assert_eq!(a.expect(200)["activeEditors"], 1);
    let _ada2 = s.ws(&t2, &ada.access, "ada-2").await;
    let a = s.get(&path, Some(&ada.access)).await;
    assert_eq!(a.expect(200)["activeEditors"], 1, "the same user twice");
    let bob1 = s.ws(&t2, &bob.access, "bob").await;
    let a = s.get(&path, Some(&ada.access)).await;
    assert_eq!(a.expect(200)["activeEditors"], 2);

    // An edit moves lastActivity.
    let before = now_ms();
    ada1.set_key("meta", "title", "edited").await;
    ada1.round_trip().await;
    let a = s.get(&path, Some(&ada.access)).await;
    assert!(
        a.expect(200)["lastActivity"].as_i64().unwrap() >= before,
        "{}",
        a.text
    );

    // A user who disconnects is no longer counted.
    bob1.close().await;
    bob1.wait_ended().await;
    poll("Bob to leave the analytics", TIMEOUT, || {
        let s = &s;
        let (path, token) = (path.clone(), ada.access.clone());
        async move {
            let a = s.get(&path, Some(&token)).await;
            (a.expect(200)["activeEditors"] == 1).then_some(())
        }
    })
    .await;

    s.get("/api/workspaces/nope/analytics", Some(&ada.access))
        .await
        .expect_error(404, "not_found");
}

// ---------------------------------------------------------------------------
// Backup and restore
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_brings_back_changed_and_deleted_templates() {
    let Owned { s, ada, ws } = owned().await;
    let t1 = id_of(
        &s.create_template(&ada.access, &ws, "Signup", Some(signup_content()))
            .await,
    );
    let second = json!({"meta": {"title": "Feedback"},
                        "components": {"f1": {"id": "f1", "type": "textarea", "index": "a0"}}});
    let t2 = id_of(
        &s.post(
            "/api/templates",
            Some(&ada.access),
            json!({"workspaceId": ws, "name": "Feedback", "tags": ["survey"],
                   "description": "Tell us", "content": second}),
        )
        .await
        .expect(201)
        .clone(),
    );

    let r = s.backup(&ada.access, &ws).await;
    let backup = r.expect(200).clone();
    assert_eq!(
        r.header("content-disposition").as_deref(),
        Some(format!("attachment; filename=\"workspace-{ws}.json\"").as_str())
    );
    assert_eq!(backup["format"], "coform-workspace-backup");
    assert_eq!(backup["version"], 1);
    assert_eq!(backup["workspace"]["id"], ws.as_str());
    assert_eq!(backup["members"][0]["userId"], ada.id.as_str());
    let templates = backup["templates"].as_array().unwrap();
    assert_eq!(templates.len(), 2);
    for t in templates {
        assert!(
            t["state"].as_str().is_some_and(|s| !s.is_empty()),
            "no state: {t}"
        );
    }

    // Change everything after the backup.
    let mut changed = signup_content();
    changed["components"]["c1"]["label"] = json!("Full name");
    changed["components"]["c9"] = json!({"id": "c9", "type": "checkbox", "index": "a1"});
    s.expect_all(&[
        Call::put(
            format!("/api/templates/{t1}"),
            &ada.access,
            json!({"content": changed, "name": "Signup v2"}),
        )
        .ok(200),
        Call::delete(format!("/api/templates/{t2}"), &ada.access).ok(204),
        Call::put(
            format!("/api/workspaces/{ws}"),
            &ada.access,
            json!({"name": "Renamed", "settings": {"x": "y"}}),
        )
        .ok(200),
    ])
    .await;
    assert_eq!(s.content(&ada.access, &t1).await, changed);

    // A live editor sees the restore as an ordinary edit.
    let live = s.ws(&t1, &ada.access, "live").await;
    assert_eq!(live.json(), changed);

    let r = s
        .post(
            &format!("/api/workspaces/{ws}/restore"),
            Some(&ada.access),
            backup.clone(),
        )
        .await;
    assert_eq!(r.expect(200), &json!({"restored": 1, "created": 1}));

    assert_eq!(s.content(&ada.access, &t1).await, signup_content());
    live.wait_doc("the restored content", |d| doc_json(d) == signup_content())
        .await;
    let t1_view = s
        .get(&format!("/api/templates/{t1}"), Some(&ada.access))
        .await;
    assert_eq!(t1_view.expect(200)["name"], "Signup");
    let w = s.workspace(&ada.access, &ws).await;
    assert_eq!(w.expect(200)["name"], "Forms");
    assert_eq!(w.json["settings"], json!({}));

    // The deleted template is back under a new id.
    let list = s
        .get(
            &format!("/api/templates?workspaceId={ws}"),
            Some(&ada.access),
        )
        .await;
    let items = list.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    let recreated = items
        .iter()
        .find(|t| t["name"] == "Feedback")
        .expect("Feedback recreated");
    assert_ne!(id_of(recreated), t2);
    assert_eq!(recreated["tags"], json!(["survey"]));
    assert_eq!(recreated["description"], "Tell us");
    assert_eq!(s.content(&ada.access, &id_of(recreated)).await, second);
    s.get(&format!("/api/templates/{t2}"), Some(&ada.access))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_backup_is_refused_and_changes_nothing() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let Owned { s, ada, ws } = owned().await;
    let t1 = id_of(
        &s.create_template(&ada.access, &ws, "Signup", Some(signup_content()))
            .await,
    );
    let t2 = id_of(&s.create_template(&ada.access, &ws, "Other", None).await);
    let backup = s.backup_json(&ada.access, &ws).await;
    // Current state differs from the backup.
    let current = json!({"meta": {"title": "Current"}, "components": {}});
    s.expect_all(&[
        Call::put(
            format!("/api/templates/{t1}"),
            &ada.access,
            json!({"content": current}),
        )
        .ok(200),
        Call::put(
            format!("/api/workspaces/{ws}"),
            &ada.access,
            json!({"name": "Current name"}),
        )
        .ok(200),
        Call::delete(format!("/api/templates/{t2}"), &ada.access).ok(204),
    ])
    .await;

    // Which template is first in the backup varies; break the second one
    // so the first, valid one proves nothing is applied half-way.
    let mut broken = Vec::new();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = backup.clone();
        f(&mut b);
        b
    };
    broken.push((with(&|b| b["format"] = json!("zip")), "format"));
    broken.push((with(&|b| b["version"] = json!(2)), "format"));
    broken.push((
        with(&|b| b["templates"][1]["state"] = json!("%%% not base64 %%%")),
        "templates[1].state",
    ));
    broken.push((
        with(&|b| b["templates"][1]["state"] = json!(b64.encode([0xff, 0xff, 0xff, 0xff]))),
        "templates[1].state",
    ));
    broken.push((
        with(&|b| b["templates"][1]["name"] = json!("")),
        "templates[1].name",
    ));
    broken.push((
        with(&|b| b["workspace"]["name"] = json!("  ")),
        "workspace.name",
    ));
    broken.push((
        with(&|b| b["workspace"]["settings"] = json!([1])),
        "settings",
    ));
    for (body, field) in broken {
        let r = s.restore(&ada.access, &ws, body).await;
        r.field_error(field);
    }
    for body in [
        json!({}),
        with(&|b| {
            b.as_object_mut().unwrap().remove("templates");
        }),
        with(&|b| b["templates"] = json!("all of them")),
        json!([1, 2, 3]),
    ] {
        s.restore(&ada.access, &ws, body)
            .await
            .expect_error(400, "invalid_json");
    }

    assert_eq!(
        s.content(&ada.access, &t1).await,
        current,
        "content changed"
    );
    let w = s.workspace(&ada.access, &ws).await;
    assert_eq!(w.expect(200)["name"], "Current name");
    assert_eq!(
        s.template_total(&ada.access, &format!("workspaceId={ws}"))
            .await,
        1,
        "a refused restore recreated a template"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restoring_into_another_workspace_never_touches_the_original_templates() {
    let Owned { s, ada, ws } = owned().await;
    let bob = s.register("Bob", "bob@example.com").await;
    let t1 = id_of(
        &s.create_template(&ada.access, &ws, "Signup", Some(signup_content()))
            .await,
    );
    let backup = s.backup_json(&ada.access, &ws).await;
    // Bob restores a backup that names Ada's template into his own
    // workspace, with other content.
    let bobs = s.create_workspace(&bob.access, "Bob's").await;
    let mut forged = backup.clone();
    let other = yrs::Doc::new();
    {
        let meta = other.get_or_insert_map("meta");
        let mut txn = yrs::Transact::transact_mut(&other);
        meta.insert(&mut txn, "title", "hijacked");
    }
    let state = {
        use base64::Engine;
        use yrs::ReadTxn;
        let txn = yrs::Transact::transact(&other);
        base64::engine::general_purpose::STANDARD
            .encode(txn.encode_state_as_update_v1(&yrs::StateVector::default()))
    };
    forged["templates"][0]["state"] = json!(state);
    let r = s.restore(&bob.access, &bobs, forged).await;
    assert_eq!(r.expect(200), &json!({"restored": 0, "created": 1}));
    assert_eq!(
        s.content(&ada.access, &t1).await,
        signup_content(),
        "a restore elsewhere changed Ada's template"
    );
    let w = s.workspace(&ada.access, &ws).await;
    assert_eq!(w.expect(200)["members"].as_array().unwrap().len(), 1);
    s.workspace(&bob.access, &ws)
        .await
        .expect_error(404, "not_found");
    let list = s
        .get(
            &format!("/api/templates?workspaceId={bobs}"),
            Some(&bob.access),
        )
        .await;
    let items = list.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_ne!(id_of(&items[0]), t1);
    assert_eq!(
        s.content(&bob.access, &id_of(&items[0])).await["meta"]["title"],
        "hijacked"
    );
}

// ---------------------------------------------------------------------------
// Template listings
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn templates_are_listed_by_workspace_tag_and_text() {
    let Owned { s, ada, ws } = owned().await;
    let s = &s;
    let bob = s.register("Bob", "bob@example.com").await;
    let ws2 = s.create_workspace(&ada.access, "Second").await;
    let bobs = s.create_workspace(&bob.access, "Bob's").await;
    let create = |token: &str, ws: &str, name: &str, desc: &str, tags: Value| {
        let body = json!({"workspaceId": ws, "name": name, "description": desc, "tags": tags});
        let token = token.to_owned();
        async move {
            id_of(
                s.post("/api/templates", Some(&token), body)
                    .await
                    .expect(201),
            )
        }
    };
    let signup = create(
        &ada.access,
        &ws,
        "Signup form",
        "",
        json!(["signup", "public"]),
    )
    .await;
    let cafe = create(
        &ada.access,
        &ws,
        "Café order",
        "Crème brûlée and more",
        json!(["food"]),
    )
    .await;
    let uni = create(&ada.access, &ws, "Ünïcödé survey 日本語", "", json!([])).await;
    let signup2 = create(&ada.access, &ws2, "SIGNUP two", "", json!(["signup"])).await;
    let secret = create(&bob.access, &bobs, "Signup secret", "", json!(["signup"])).await;

    let ids = |r: &Resp| -> HashSet<String> {
        r.json["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", r.text))
            .iter()
            .map(id_of)
            .collect()
    };
    let set = |xs: &[&String]| -> HashSet<String> { xs.iter().map(|x| (*x).clone()).collect() };
    let list = |q: String| {
        let token = ada.access.clone();
        async move {
            let r = s.get(&format!("/api/templates{q}"), Some(&token)).await;
            assert_eq!(r.status, 200, "{q}: {}", r.text);
            r
        }
    };

    let all = list(String::new()).await;
    assert_eq!(ids(&all), set(&[&signup, &cafe, &uni, &signup2]));
    assert_eq!(all.json["total"], 4);
    assert!(!ids(&all).contains(&secret));
    assert_eq!(all.json["page"], 1);
    assert_eq!(all.json["pageSize"], 20);
    // Listings carry no content.
    assert!(all.json["items"][0].get("content").is_none());
    // Newest first.
    let updated: Vec<i64> = all.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["updatedAt"].as_i64().unwrap())
        .collect();
    assert!(updated.windows(2).all(|w| w[0] >= w[1]), "{updated:?}");

    assert_eq!(
        ids(&list(format!("?workspaceId={ws}")).await),
        set(&[&signup, &cafe, &uni])
    );
    assert_eq!(
        ids(&list(format!("?workspaceId={ws2}")).await),
        set(&[&signup2])
    );
    s.expect_all(&[
        Call::get(format!("/api/templates?workspaceId={bobs}"), &ada.access).is(404, "not_found"),
        Call::get("/api/templates?workspaceId=nope", &ada.access).is(404, "not_found"),
    ])
    .await;

    assert_eq!(
        ids(&list("?tag=signup".into()).await),
        set(&[&signup, &signup2])
    );
    assert_eq!(ids(&list("?tag=food".into()).await), set(&[&cafe]));
    assert!(
        ids(&list("?tag=sign".into()).await).is_empty(),
        "tags match exactly"
    );
    assert!(
        ids(&list("?tag=SIGNUP".into()).await).is_empty(),
        "tags match exactly"
    );
    assert_eq!(
        ids(&list(format!("?tag=signup&workspaceId={ws2}")).await),
        set(&[&signup2])
    );

    for (q, expected) in [
        ("signup", set(&[&signup, &signup2])),
        ("SignUp", set(&[&signup, &signup2])),
        ("CAFÉ", set(&[&cafe])),
        ("café", set(&[&cafe])),
        ("brûlée", set(&[&cafe])),
        ("CRÈME", set(&[&cafe])),
        ("ünïcödé", set(&[&uni])),
        ("ÜNÏCÖDÉ", set(&[&uni])),
        ("日本", set(&[&uni])),
        ("form", set(&[&signup])),
        ("   ", set(&[&signup, &cafe, &uni, &signup2])),
        ("secret", set(&[])),
    ] {
        let r = list(format!("?q={}", url_encode(q))).await;
        assert_eq!(ids(&r), expected, "q={q:?}");
        assert_eq!(r.json["total"], expected.len(), "q={q:?}");
    }
    assert_eq!(
        ids(&list(format!("?q=signup&tag=public&workspaceId={ws}")).await),
        set(&[&signup])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_text_is_matched_as_data_never_as_query_syntax() {
    let Owned { s, ada, ws } = owned().await;
    for name in ["Alpha", "Beta", "Progress 100%", "snake_case form"] {
        s.create_template(&ada.access, &ws, name, None).await;
    }
    let count = |param: &'static str, value: &'static str| {
        let token = ada.access.clone();
        let s = &s;
        async move {
            let r = s
                .get(
                    &format!("/api/templates?{param}={}", url_encode(value)),
                    Some(&token),
                )
                .await;
            assert_eq!(r.status, 200, "{param}={value:?}: {}", r.text);
            let n = r.json["items"].as_array().unwrap().len() as u64;
            assert_eq!(r.json["total"], n, "{param}={value:?}");
            n
        }
    };
    for hostile in [
        "'; DROP TABLE users; --",
        "'; DROP TABLE templates; --",
        "' OR '1'='1",
        "\" OR \"\"=\"",
        "1) OR (1=1",
        r#"{"$gt": ""}"#,
        r#"{"$ne": null}"#,
        "$where",
        "*",
        ".*",
        "\\",
        "%%",
        "' UNION SELECT id, password_hash FROM users --",
    ] {
        assert_eq!(count("q", hostile).await, 0, "q={hostile:?}");
        assert_eq!(count("tag", hostile).await, 0, "tag={hostile:?}");
    }
    // LIKE wildcards are literal characters.
    assert_eq!(count("q", "%").await, 1, "only the name with a %");
    assert_eq!(count("q", "_").await, 1, "only the name with an _");
    assert_eq!(count("q", "e_s").await, 0, "`_` is not a wildcard");
    assert_eq!(count("q", "e_c").await, 1);
    // Nothing broke: every template and account is still there.
    assert_eq!(s.template_total(&ada.access, "").await, 4);
    s.login("ada@example.com", PASSWORD).await;
    s.register("Bob", "bob@example.com").await;
    // Control characters (NUL included) can't be in a name: such a search
    // is refused with a clear 422 instead of being cut short at the NUL.
    for hostile in ["\0", "Alpha\0zzz", "a\u{7}b"] {
        let r = s
            .get(
                &format!("/api/templates?q={}", url_encode(hostile)),
                Some(&ada.access),
            )
            .await;
        assert_eq!(r.status, 422, "q={hostile:?}: {}", r.text);
        assert_eq!(r.json["error"]["code"], "validation_failed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn template_listings_are_paged() {
    let Owned { s, ada, ws } = owned().await;
    let mut created = HashSet::new();
    for i in 0..5 {
        created.insert(id_of(
            &s.create_template(&ada.access, &ws, &format!("Form {i}"), None)
                .await,
        ));
    }
    let mut seen = Vec::new();
    for (page, expected) in [(1, 2), (2, 2), (3, 1), (4, 0)] {
        let r = s
            .get(
                &format!("/api/templates?page={page}&pageSize=2"),
                Some(&ada.access),
            )
            .await;
        let body = r.expect(200);
        assert_eq!(body["total"], 5);
        assert_eq!(body["page"], page);
        assert_eq!(body["pageSize"], 2);
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), expected, "page {page}");
        seen.extend(items.iter().map(id_of));
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a template on two pages: {seen:?}"
    );
    assert_eq!(unique, created);
    let r = s
        .get("/api/templates?pageSize=100", Some(&ada.access))
        .await;
    assert_eq!(r.expect(200)["items"].as_array().unwrap().len(), 5);

    for (query, field) in [
        ("pageSize=0", "pageSize"),
        ("pageSize=101", "pageSize"),
        ("page=0", "page"),
        ("page=1000001", "page"),
    ] {
        s.get(&format!("/api/templates?{query}"), Some(&ada.access))
            .await
            .field_error(field);
    }
}

/// Answers that lack `{"error": {"code", "message"}}` or have another status.
async fn shape_failures(s: &Server, token: &str, cases: &[(&str, &str, u16)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (method, path, status) in cases {
        let r = s.request(method, path, Some(token), &[], Body::None).await;
        let shaped = r.json["error"]["code"].is_string() && r.json["error"]["message"].is_string();
        if r.status != *status || !shaped {
            failures.push(format!(
                "{method} {path}: expected {status} with the JSON error shape, got {}: {:?}",
                r.status, r.text
            ));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_query_strings_answer_400_in_the_error_shape() {
    let Owned { s, ada, .. } = owned().await;
    let failures = shape_failures(
        &s,
        &ada.access,
        &[
            ("GET", "/api/templates?page=abc", 400),
            ("GET", "/api/templates?pageSize=-1", 400),
            ("GET", "/api/auth/verify-email", 400),
            ("DELETE", "/api/auth/sessions?includeCurrent=maybe", 400),
        ],
    )
    .await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(s.me_status(&ada.access).await, 200, "the session survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_api_routes_and_methods_answer_in_the_error_shape() {
    let Owned { s, ada, .. } = owned().await;
    let failures = shape_failures(
        &s,
        &ada.access,
        &[
            ("GET", "/api/no-such-route", 404),
            ("GET", "/api/templates/x/y/z", 404),
            ("PATCH", "/api/workspaces", 405),
        ],
    )
    .await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_template_is_created_with_content_and_read_back() {
    let Owned { s, ada, ws } = owned().await;
    let r = s
        .post(
            "/api/templates",
            Some(&ada.access),
            json!({"workspaceId": ws, "name": "  Signup ", "description": " Sign up here ",
                   "tags": ["a", " a ", "b"], "isPublic": true, "content": signup_content()}),
        )
        .await;
    let t = r.expect(201).clone();
    let id = id_of(&t);
    assert_eq!(t["name"], "Signup");
    assert_eq!(t["description"], "Sign up here");
    assert_eq!(t["tags"], json!(["a", "b"]), "trimmed and de-duplicated");
    assert_eq!(t["isPublic"], true);
    assert_eq!(t["workspaceId"], ws.as_str());
    assert_eq!(t["createdBy"], ada.id.as_str());
    assert_eq!(t["version"], 1);
    assert_eq!(t["content"], signup_content());

    let g = s
        .get(&format!("/api/templates/{id}"), Some(&ada.access))
        .await;
    let g = g.expect(200);
    assert_eq!(g["content"], signup_content());
    assert_eq!(g["name"], "Signup");

    // Without content: an empty document.
    let e = s.create_template(&ada.access, &ws, "Empty", None).await;
    assert_eq!(e["content"], json!({"meta": {}, "components": {}}));
    // Only one root given: the other stays empty.
    let m = s
        .create_template(
            &ada.access,
            &ws,
            "Meta only",
            Some(json!({"meta": {"title": "T"}})),
        )
        .await;
    assert_eq!(
        m["content"],
        json!({"meta": {"title": "T"}, "components": {}})
    );

    // A WebSocket client gets the same document.
    let c = s.ws(&id, &ada.access, "reader").await;
    assert_eq!(c.json(), signup_content());

    s.get("/api/templates/no-such-template", Some(&ada.access))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_template_writes_store_nothing() {
    let Owned { s, ada, ws } = owned().await;
    let id = id_of(
        &s.create_template(&ada.access, &ws, "Signup", Some(signup_content()))
            .await,
    );
    let total = s.template_total(&ada.access, "").await;
    let create = |extra: Value| {
        let mut body = json!({"workspaceId": ws, "name": "New"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        s.post("/api/templates", Some(&ada.access), body)
    };
    for (extra, field, msg) in [
        (json!({"content": {"evil": {}}}), "content", "unknown root"),
        (
            json!({"content": {"meta": 3}}),
            "content",
            "must be a JSON object",
        ),
        (json!({"content": [1]}), "content", "must be a JSON object"),
        (
            json!({"content": "text"}),
            "content",
            "must be a JSON object",
        ),
        // Content the form model refuses is refused whole, with the
        // model's path, never stored and mended.
        (
            json!({"content": {"components": {"a": {"id": "a", "type": "wizard", "label": "A", "parent": null, "index": "a0"}}}}),
            "content.components.a.type",
            "unknown component type",
        ),
        (
            json!({"content": {"components": {"a": {"id": "a", "type": "text", "label": "A", "parent": "ghost", "index": "a0"}}}}),
            "content.components.a.parent",
            "orphan",
        ),
        (
            json!({"content": {"components": {"a": {"id": "a", "type": "text", "label": "A", "parent": null}}}}),
            "content.components.a.index",
            "is required",
        ),
        (json!({"name": ""}), "name", "1 to 200"),
        (json!({"name": "x".repeat(201)}), "name", "1 to 200"),
        (json!({"tags": [""]}), "tags", "1 to 50"),
        (json!({"tags": ["x".repeat(51)]}), "tags", "1 to 50"),
        (
            json!({"tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            "tags",
            "at most 20",
        ),
        (
            json!({"description": "d".repeat(2001)}),
            "description",
            "2000",
        ),
    ] {
        let r = create(extra.clone()).await;
        let m = r.field_error(field);
        assert!(m.contains(msg), "{extra}: {m}");
    }
    // Every problem of the content is listed, each at its path.
    let two_bad = json!({"content": {"components": {
        "a": {"id": "a", "type": "text", "label": "A", "parent": null, "index": "a0", "properties": {"rows": 3}},
        "b": {"id": "b", "type": "number", "label": 7, "parent": null, "index": "a1"},
    }}});
    let fields: Vec<String> = create(two_bad)
        .await
        .field_errors()
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("content.components.a.properties"))
            && fields.iter().any(|f| f == "content.components.b.label"),
        "{fields:?}"
    );
    for extra in [
        json!({"workspaceId": 5}),
        json!({"owner": "me"}),
        json!({"tags": "a"}),
    ] {
        create(extra).await.expect_error(400, "invalid_json");
    }
    create(json!({"workspaceId": "nope"}))
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        s.template_total(&ada.access, "").await,
        total,
        "a refused create stored a template"
    );

    // A refused update changes neither the listing nor the content.
    let before = s
        .get(&format!("/api/templates/{id}"), Some(&ada.access))
        .await;
    let before = before.expect(200).clone();
    for body in [
        json!({"name": "Renamed", "content": {"evil": {}}}),
        json!({"name": "Renamed", "tags": [""]}),
        json!({"content": {"meta": {"title": "changed"}}, "name": ""}),
        json!({"name": "Renamed", "content": {"components": {
            "x": {"id": "x", "type": "wizard", "label": "X", "parent": null, "index": "a0"}
        }}}),
    ] {
        s.put(&format!("/api/templates/{id}"), Some(&ada.access), body)
            .await
            .expect(422);
    }
    s.put(
        &format!("/api/templates/{id}"),
        Some(&ada.access),
        json!({"name": "Renamed", "version": 9}),
    )
    .await
    .expect_error(400, "invalid_json");
    let after = s
        .get(&format!("/api/templates/{id}"), Some(&ada.access))
        .await;
    let after = after.expect(200);
    assert_eq!(after, &before, "a refused update changed the template");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_content_update_is_a_minimal_edit_that_keeps_live_concurrent_edits() {
    let Owned { s, ada, ws } = owned().await;
    let id = id_of(
        &s.create_template(&ada.access, &ws, "Signup", Some(signup_content()))
            .await,
    );
    let [client, watcher] = s.ws_all(&id, &ada.access, ["live", "watcher"]).await;
    assert_eq!(client.json(), signup_content());

    // The live client edits, but its update is still on its way: the
    // server does not know it when the PUT is applied.
    let local = client.edit_local(|txn| {
        let comps = txn.get_or_insert_map("components");
        let Some(yrs::Out::YMap(c1)) = comps.get(txn, "c1") else {
            panic!("no c1")
        };
        let Some(yrs::Out::YMap(props)) = c1.get(txn, "properties") else {
            panic!("no properties")
        };
        props.insert(txn, "helpText", "As on your passport");
        comps.insert(
            txn,
            "c2",
            MapPrelim::from([
                ("id", Any::from("c2")),
                ("type", Any::from("email")),
                ("index", Any::from("a1")),
            ]),
        );
    });

    let mut target = signup_content();
    target["components"]["c1"]["label"] = json!("Full name");
    target["meta"]["title"] = json!("Sign up now");
    let r = s
        .put(
            &format!("/api/templates/{id}"),
            Some(&ada.access),
            json!({"content": target}),
        )
        .await;
    let v = r.expect(200);
    assert_eq!(v["version"], 2);
    assert_eq!(v["content"], target);

    // The PUT reaches the live client as an ordinary update.
    client
        .wait_doc("the PUT's label", |d| {
            doc_json(d)["components"]["c1"]["label"] == "Full name"
        })
        .await;
    client.send_update(local).await;
    client.round_trip().await;

    let mut expected = target.clone();
    expected["components"]["c1"]["properties"]["helpText"] = json!("As on your passport");
    expected["components"]["c2"] = json!({"id": "c2", "type": "email", "index": "a1"});
    assert_eq!(
        s.content(&ada.access, &id).await,
        expected,
        "the PUT lost the live client's edit or vice versa"
    );
    assert_eq!(client.json(), expected);
    watcher
        .wait_doc("both edits", |d| doc_json(d) == expected)
        .await;

    // A PUT that changes nothing makes no edit.
    let updates = watcher.state().updates_received;
    s.put(
        &format!("/api/templates/{id}"),
        Some(&ada.access),
        json!({"content": expected}),
    )
    .await
    .expect(200);
    client
        .set_key_seen_by(&watcher, "meta", "marker", "after")
        .await;
    assert_eq!(
        watcher.state().updates_received,
        updates + 1,
        "an unchanged PUT was broadcast as an update"
    );

    // Keys missing from a root the PUT names are removed; roots it does
    // not name are left alone.
    let r = s
        .put(
            &format!("/api/templates/{id}"),
            Some(&ada.access),
            json!({"content": {"components": {"c2": {"id": "c2", "type": "email", "index": "a0"}}}}),
        )
        .await;
    let c = r.expect(200)["content"].clone();
    assert_eq!(
        c["components"],
        json!({"c2": {"id": "c2", "type": "email", "index": "a0"}})
    );
    assert_eq!(c["meta"]["title"], "Sign up now");
    assert_eq!(c["meta"]["marker"], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_fields_are_updated_and_versioned() {
    let Owned { s, ada, ws } = owned().await;
    let id = id_of(
        &s.create_template(&ada.access, &ws, "Signup", Some(signup_content()))
            .await,
    );
    let r = s
        .put(
            &format!("/api/templates/{id}"),
            Some(&ada.access),
            json!({"name": " Renamed ", "description": "New", "tags": ["x", "x", "y"],
                   "isPublic": true}),
        )
        .await;
    let v = r.expect(200);
    assert_eq!(v["name"], "Renamed");
    assert_eq!(v["description"], "New");
    assert_eq!(v["tags"], json!(["x", "y"]));
    assert_eq!(v["isPublic"], true);
    assert_eq!(v["version"], 2);
    assert_eq!(v["content"], signup_content(), "content untouched");
    let g = s
        .get(&format!("/api/templates/{id}"), Some(&ada.access))
        .await;
    assert_eq!(g.expect(200)["name"], "Renamed");
    assert_eq!(g.json["version"], 2);
    s.put(
        "/api/templates/no-such-template",
        Some(&ada.access),
        json!({"name": "x"}),
    )
    .await
    .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_template_closes_its_sockets_with_4403() {
    let Owned { s, ada, ws } = owned().await;
    let bob = s.register("Bob", "bob@example.com").await;
    s.add_member(&ada.access, &ws, &bob.email, "viewer").await;
    let id = id_of(
        &s.create_template(&ada.access, &ws, "Doomed", Some(signup_content()))
            .await,
    );
    let keep = id_of(&s.create_template(&ada.access, &ws, "Kept", None).await);
    let a = s.ws(&id, &ada.access, "ada").await;
    let b = s.ws(&id, &bob.access, "bob").await;
    let other = s.ws(&keep, &ada.access, "other template").await;

    s.delete(&format!("/api/templates/{id}"), Some(&ada.access))
        .await
        .expect(204);
    assert_eq!(a.wait_close_code().await, 4403);
    assert_eq!(b.wait_close_code().await, 4403);
    s.expect_all(&[
        Call::get(format!("/api/templates/{id}"), &ada.access).is(404, "not_found"),
        Call::delete(format!("/api/templates/{id}"), &ada.access).is(404, "not_found"),
    ])
    .await;
    s.ws_refused(&id, Some(&ada.access))
        .await
        .expect(404, "not_found");
    assert_eq!(s.template_total(&ada.access, "").await, 1);
    // Other templates' sockets are not affected.
    other.set_key("meta", "still", "here").await;
    other.round_trip().await;
    assert!(other.state().ended.is_none());
    // The document is gone from the store, for good (a tombstone).
    let store = s.state().registry.store();
    assert_eq!(store.stats(&id).await.unwrap(), Default::default());
    assert!(matches!(
        store.load(&id).await,
        Err(coform_storage::StoreError::Deleted(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_document_token_opens_the_websocket() {
    let Owned { s, ada, ws } = owned().await;
    let id = id_of(
        &s.create_template(&ada.access, &ws, "Signup", Some(signup_content()))
            .await,
    );
    let r = s.session(&ada.access, &id).await;
    let body = r.expect(200);
    assert_eq!(body["expiresIn"], 300);
    assert_eq!(body["role"], "owner");
    assert_eq!(body["url"], format!("/collab/{id}"));
    let token = body["token"].as_str().unwrap();
    let claims = jwt_claims(token);
    assert_eq!(claims["tpl"], id.as_str());
    assert_eq!(claims["sub"], ada.id.as_str());
    assert_eq!(claims["aud"], "coform-collab");

    let c = s.ws(&id, token, "doc-token").await;
    assert_eq!(c.json(), signup_content());
    c.set_key("meta", "via", "doc token").await;
    c.round_trip().await;
    assert_eq!(
        s.content(&ada.access, &id).await["meta"]["via"],
        "doc token"
    );

    s.post_empty("/api/templates/nope/session", Some(&ada.access))
        .await
        .expect_error(404, "not_found");
    s.post_empty(&format!("/api/templates/{id}/session"), None)
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_over_the_limit_is_refused_with_413() {
    let Owned { s, ada, ws } = owned().await;
    let big = "x".repeat(2 << 20);
    let body = json!({"workspaceId": ws, "name": "Huge",
                      "content": {"meta": {"blob": big}}});
    s.post("/api/templates", Some(&ada.access), body)
        .await
        .expect_error(413, "payload_too_large");
    s.put(
        "/api/auth/me",
        Some(&ada.access),
        json!({"profile": {"blob": "y".repeat(2 << 20)}}),
    )
    .await
    .expect_error(413, "payload_too_large");
    s.register_resp("big@example.com", PASSWORD, &"z".repeat(2 << 20))
        .await
        .expect_error(413, "payload_too_large");
    assert_eq!(s.template_total(&ada.access, "").await, 0);

    // A restore may be larger than other bodies (up to 64 MiB).
    let id = id_of(&s.create_template(&ada.access, &ws, "Big", None).await);
    let mut backup = s.backup_json(&ada.access, &ws).await;
    let blob = "b".repeat(2 << 20);
    backup["templates"][0]["state"] = json!(state_of(&json!({"meta": {"blob": blob}})));
    let r = s.restore(&ada.access, &ws, backup).await;
    assert_eq!(r.expect(200)["restored"], 1);
    let content = s.content(&ada.access, &id).await;
    assert_eq!(
        content["meta"]["blob"].as_str().map(str::len),
        Some(2 << 20)
    );
}

/// The base64 Yjs state of a document holding `content` (string values).
fn state_of(content: &Value) -> String {
    use base64::Engine;
    use yrs::{ReadTxn, Transact};
    let doc = yrs::Doc::new();
    let roots: Vec<(String, yrs::MapRef)> = content
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (k.clone(), doc.get_or_insert_map(k.as_str())))
        .collect();
    {
        let mut txn = doc.transact_mut();
        for (name, map) in &roots {
            for (k, v) in content[name].as_object().unwrap() {
                map.insert(&mut txn, k.as_str(), v.as_str().expect("string values"));
            }
        }
    }
    let txn = doc.transact();
    base64::engine::general_purpose::STANDARD
        .encode(txn.encode_state_as_update_v1(&yrs::StateVector::default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_validates_listing_fields_like_create_and_update() {
    let Owned { s, ada, ws } = owned().await;
    let id = id_of(
        &s.create_template(&ada.access, &ws, "Signup", Some(signup_content()))
            .await,
    );
    let backup = s.backup_json(&ada.access, &ws).await;
    let before = s
        .get(&format!("/api/templates/{id}"), Some(&ada.access))
        .await;
    let before = before.expect(200).clone();
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "workspace description over 2000 characters",
            Box::new(|b| b["workspace"]["description"] = json!("d".repeat(2001))),
        ),
        (
            "template description over 2000 characters",
            Box::new(|b| b["templates"][0]["description"] = json!("d".repeat(2001))),
        ),
        (
            "more than 20 tags",
            Box::new(move |b| b["templates"][0]["tags"] = json!(many)),
        ),
        (
            "an empty tag",
            Box::new(|b| b["templates"][0]["tags"] = json!([""])),
        ),
        (
            "a tag with a control character",
            Box::new(|b| b["templates"][0]["tags"] = json!(["bad\u{7}tag"])),
        ),
    ];
    let mut accepted = Vec::new();
    for (what, change) in cases {
        let mut b = backup.clone();
        change(&mut b);
        let r = s.restore(&ada.access, &ws, b).await;
        if r.status != 422 || r.json["error"]["code"] != "validation_failed" {
            accepted.push(format!("{what}: {} {}", r.status, r.text));
        }
    }
    assert!(
        accepted.is_empty(),
        "restores that create/update would refuse were not refused with 422:\n{}",
        accepted.join("\n")
    );
    let after = s
        .get(&format!("/api/templates/{id}"), Some(&ada.access))
        .await;
    assert_eq!(after.expect(200), &before);
    let w = s.workspace(&ada.access, &ws).await;
    assert_eq!(w.expect(200)["description"], "");
}
