//! Regression tests of the security review, one or more per finding,
//! against the real server (in process, authentication on) and real
//! y-websocket clients (yrs). Each test fails on the code before its fix:
//! the nesting tests by aborting the whole test process (a stack overflow
//! is not a panic), the others by their assertions.

mod support;

use base64::Engine;
use serde_json::{json, Value};
use support::*;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::Message;
use yrs::updates::decoder::Decode;
use yrs::{Any, Doc, Map, MapPrelim, MapRef, Out, ReadTxn, Transact, Update, WriteTxn};

/// What the server accepts below a root map (the form model's depth + 1).
const MAX_NESTING: usize = 17;
/// The WebSocket close code of a policy violation.
const POLICY: u16 = 1008;
/// The close code of an ended session.
const SESSION_ENDED: u16 = 4401;

/// An owner with a workspace and an empty template.
async fn owner_with_template(s: &Server, who: &str) -> (Account, String, String) {
    let a = s.register(who, &format!("{who}@example.com")).await;
    let ws = s.create_workspace(&a.access, "Team").await;
    let t = s.create_template(&a.access, &ws, "Form", None).await;
    (a, ws, id_of(&t))
}

/// An update that nests `levels` maps under `components.x`, built by a
/// separate client (levels 2.. each one map deeper than the last).
fn nested_maps(levels: usize) -> Vec<u8> {
    let doc = Doc::new();
    let root = doc.get_or_insert_map("components");
    let mut txn = doc.transact_mut();
    let mut map = root.insert(&mut txn, "x", MapPrelim::default());
    for _ in 1..levels {
        map = map.insert(&mut txn, "x", MapPrelim::default());
    }
    txn.encode_update_v1()
}

/// How deep maps nest under `components.x` in `doc` (bounded walk).
fn chain_depth(doc: &Doc) -> usize {
    chain_depth_in(doc, "components")
}

/// How deep maps nest under `<root>.x` in `doc` (bounded walk).
fn chain_depth_in(doc: &Doc, root: &str) -> usize {
    let root = doc.get_or_insert_map(root);
    let txn = doc.transact();
    let mut depth = 0;
    let mut cur: MapRef = root;
    while let Some(Out::YMap(next)) = cur.get(&txn, "x") {
        depth += 1;
        cur = next;
        if depth > 100 {
            break;
        }
    }
    depth
}

/// How deep JSON nests under `content.components.x` (0: absent).
fn json_chain_depth(content: &Value) -> usize {
    let mut depth = 0;
    let mut cur = &content["components"];
    while let Some(next) = cur.get("x").filter(|v| v.is_object()) {
        depth += 1;
        cur = next;
    }
    depth
}

/// Every way the REST API reads a template's content, each of which must
/// answer (not crash the process).
async fn read_everything(s: &Server, token: &str, ws: &str, tpl: &str) {
    s.expect_all(&[
        Call::get(format!("/api/templates/{tpl}"), token).ok(200),
        Call::get(format!("/api/templates/{tpl}/preview"), token).ok(200),
    ])
    .await;
    s.post_empty(&format!("/api/templates/{tpl}/export"), Some(token))
        .await
        .expect(200);
    let v = s
        .post(
            &format!("/api/templates/{tpl}/versions"),
            Some(token),
            json!({"name": "checkpoint"}),
        )
        .await;
    let number = v.expect(201)["number"].as_u64().expect("version number");
    s.expect_all(&[
        Call::get(format!("/api/templates/{tpl}/versions/{number}"), token).ok(200),
        Call::get(
            format!("/api/templates/{tpl}/versions/{number}/diff/current"),
            token,
        )
        .ok(200),
    ])
    .await;
    s.backup(token, ws).await.expect(200);
}

// ---------------------------------------------------------------------------
// 1. Nesting
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_update_is_refused_and_every_read_still_works() {
    let s = Server::start().await;
    let (a, ws, tpl) = owner_with_template(&s, "ada").await;
    let [attacker, observer] = s.ws_all(&tpl, &a.access, ["attacker", "observer"]).await;

    attacker.send_update(nested_maps(20_000)).await;
    assert_eq!(attacker.wait_close_code().await, POLICY);
    observer.round_trip().await;
    assert_eq!(
        chain_depth(&observer.doc),
        0,
        "the refused update reached a peer"
    );
    assert!(s.metric("coform_updates_refused_nesting_total").await >= 1.0);

    // Nothing was stored: every read answers, and edits go on.
    read_everything(&s, &a.access, &ws, &tpl).await;
    assert_eq!(json_chain_depth(&s.content(&a.access, &tpl).await), 0);
    observer.set_key("meta", "name", "still fine").await;
    observer.round_trip().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_nested_past_the_limit_is_refused_before_it_is_decoded() {
    let s = Server::start().await;
    let (a, _, tpl) = owner_with_template(&s, "bea").await;
    let client = s.ws(&tpl, &a.access, "client").await;
    // `meta.v = [[[...null...]]]`, 100,000 levels as lib0 `Any` (two bytes
    // a level): yrs decodes such a value recursively.
    let doc = Doc::new();
    let mut update = {
        let meta = doc.get_or_insert_map("meta");
        let mut txn = doc.transact_mut();
        meta.insert(&mut txn, "v", Any::Null);
        txn.encode_update_v1()
    };
    let null_at = update.len() - 2;
    assert_eq!(&update[null_at - 2..], &[b'v', 1, 126, 0][..]);
    let mut nested: Vec<u8> = std::iter::repeat_n([117u8, 1], 100_000).flatten().collect();
    nested.push(126);
    update.splice(null_at..null_at + 1, nested);
    client.send_update(update).await;
    assert_eq!(client.wait_close_code().await, POLICY);
    // The process is alive and the document readable.
    s.content(&a.access, &tpl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_built_up_one_update_at_a_time_stops_at_the_limit() {
    let s = Server::start().await;
    let (a, _, tpl) = owner_with_template(&s, "cy").await;
    let [builder, observer] = s.ws_all(&tpl, &a.access, ["builder", "observer"]).await;

    // A separate client adds one level per update, under a root of its
    // own (under `components`, the schema guard would drop the first
    // level at once: it is no component).
    let doc = Doc::new();
    let root = doc.get_or_insert_map("notes");
    let mut map: Option<MapRef> = None;
    for level in 1..=MAX_NESTING + 1 {
        let before = doc.transact().state_vector();
        {
            let mut txn = doc.transact_mut();
            let next = match &map {
                None => root.insert(&mut txn, "x", MapPrelim::default()),
                Some(m) => m.insert(&mut txn, "x", MapPrelim::default()),
            };
            map = Some(next);
        }
        let update = doc.transact().encode_state_as_update_v1(&before);
        builder.send_update(update).await;
        if level <= MAX_NESTING {
            builder.round_trip().await;
        }
    }
    assert_eq!(builder.wait_close_code().await, POLICY);
    observer.round_trip().await;
    assert_eq!(chain_depth_in(&observer.doc, "notes"), MAX_NESTING);
    // The room dropped what it had applied and reloaded from the store.
    let late = s.ws(&tpl, &a.access, "late").await;
    assert_eq!(chain_depth_in(&late.doc, "notes"), MAX_NESTING);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_stored_before_the_limit_loads_is_served_and_is_cut_back() {
    let s = Server::start().await;
    let (a, ws, tpl) = owner_with_template(&s, "dee").await;
    // As an older server would have stored it: 20,000 nested maps.
    let store = s.state().registry.store().clone();
    store
        .append(&tpl, vec![bytes::Bytes::from(nested_maps(20_000))])
        .await
        .unwrap();
    s.state()
        .registry
        .evict(&tpl, coform_collab::CloseReason::Unavailable)
        .await;

    // A read without a room renders at most 64 levels.
    let content = s.content(&a.access, &tpl).await;
    assert!((1..=64).contains(&json_chain_depth(&content)));

    // Opening it cuts it back to the limit before anyone sees it, and
    // stores the result as its snapshot (no deletion is logged).
    let client = s.ws(&tpl, &a.access, "client").await;
    assert_eq!(chain_depth(&client.doc), MAX_NESTING);
    assert!(s.metric("coform_documents_repaired_total").await >= 1.0);
    let stored = store.load(&tpl).await.unwrap();
    assert!(
        stored.log.is_empty(),
        "the repair is a snapshot, not log entries"
    );
    let check = Doc::new();
    check
        .transact_mut()
        .apply_update(Update::decode_v1(&stored.snapshot.unwrap().data).unwrap())
        .unwrap();
    assert_eq!(chain_depth(&check), MAX_NESTING);

    read_everything(&s, &a.access, &ws, &tpl).await;
    // Deleting what is left, by a client and by a REST write, is fine.
    let update = client.edit_local(|txn| {
        txn.get_or_insert_map("components").remove(txn, "x");
    });
    client.send_update(update).await;
    client.round_trip().await;
    s.put(
        &format!("/api/templates/{tpl}"),
        Some(&a.access),
        json!({"content": {"meta": {"name": "Clean"}, "components": {}}}),
    )
    .await
    .expect(200);
    assert_eq!(json_chain_depth(&s.content(&a.access, &tpl).await), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_restore_that_nests_too_deeply_is_refused_with_its_path() {
    let s = Server::start().await;
    let (a, ws, tpl) = owner_with_template(&s, "eve").await;
    let backup = s.backup_json(&a.access, &ws).await;
    for levels in [8_000, MAX_NESTING + 1] {
        let mut evil = backup.clone();
        evil["templates"][0]["state"] =
            json!(base64::engine::general_purpose::STANDARD.encode(nested_maps(levels)));
        let r = s.restore(&a.access, &ws, evil).await;
        r.expect_error(422, "validation_failed");
        assert!(
            r.field_error("templates[0].state").contains("nest deeper"),
            "{}",
            r.text
        );
    }
    // A restore within the limit works, and nothing was changed before.
    s.restore(&a.access, &ws, backup).await.expect(200);
    s.content(&a.access, &tpl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_bodies_get_a_clear_error_and_change_nothing() {
    let s = Server::start().await;
    let (a, _, tpl) = owner_with_template(&s, "fay").await;
    let before = s.content(&a.access, &tpl).await;
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    for (path, method, body) in [
        (
            format!("/api/templates/{tpl}"),
            "PUT",
            format!(r#"{{"content":{{"meta":{{"x":{}}}}}}}"#, deep(8_000)),
        ),
        (
            format!("/api/templates/{tpl}/import"),
            "POST",
            format!(r#"{{"meta":{{"x":{}}},"components":{{}}}}"#, deep(8_000)),
        ),
    ] {
        let r = s
            .request(
                method,
                &path,
                Some(&a.access),
                &[],
                Body::Raw(Some("application/json"), body.into_bytes()),
            )
            .await;
        assert_eq!(r.status, 400, "{method} {path}: {}", r.text);
        assert_eq!(r.json["error"]["code"], "invalid_json", "{}", r.text);
    }
    // Deeper than the model allows, within what the parser takes: 422.
    let mut meta = json!(1);
    for _ in 0..40 {
        meta = json!({ "x": meta });
    }
    s.put(
        &format!("/api/templates/{tpl}"),
        Some(&a.access),
        json!({"content": {"meta": {"deep": meta}}}),
    )
    .await
    .expect_error(422, "validation_failed");
    assert_eq!(s.content(&a.access, &tpl).await, before);
}

// ---------------------------------------------------------------------------
// 2. Presence
// ---------------------------------------------------------------------------

fn awareness(entries: &[(u64, &str)]) -> Message {
    Message::Awareness(AwarenessUpdate {
        clients: entries
            .iter()
            .map(|(id, json)| {
                (
                    yrs::block::ClientID::new(*id),
                    AwarenessUpdateEntry {
                        clock: 1,
                        json: (*json).into(),
                    },
                )
            })
            .collect(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_over_its_limits_closes_the_sender_and_reaches_nobody() {
    let s = Server::start().await;
    let (a, ws, tpl) = owner_with_template(&s, "gus").await;
    let viewer = s.register("viewer", "viewer@example.com").await;
    s.add_member(&a.access, &ws, "viewer@example.com", "viewer")
        .await;
    let observer = s.ws(&tpl, &a.access, "observer").await;

    let many: Vec<(u64, String)> = (0..100).map(|i| (1_000 + i, "{}".to_string())).collect();
    let many: Vec<(u64, &str)> = many.iter().map(|(i, j)| (*i, j.as_str())).collect();
    let big = format!(r#"{{"cursor":"{}"}}"#, "x".repeat(20 << 10));
    for (what, msg) in [
        ("100 states", awareness(&many)),
        ("a 20 KiB state", awareness(&[(2_000, &big)])),
        ("a state that is not JSON", awareness(&[(3_000, "{\"a\":")])),
    ] {
        let v = s.ws(&tpl, &viewer.access, what).await;
        v.send_msg(&msg).await.unwrap();
        assert_eq!(v.wait_close_code().await, POLICY, "{what}");
    }
    observer.round_trip().await;
    let seen = observer.state().awareness;
    assert!(
        seen.keys().all(|id| *id < 1_000),
        "refused presence was relayed: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_document_relays_no_more_presence() {
    let s = Server::start_with(|c| c.limits.max_awareness_states_per_doc = 2).await;
    let (a, _, tpl) = owner_with_template(&s, "hal").await;
    let clients = [
        s.ws(&tpl, &a.access, "one").await,
        s.ws(&tpl, &a.access, "two").await,
        s.ws(&tpl, &a.access, "three").await,
    ];
    for (i, c) in clients.iter().enumerate() {
        c.set_awareness(1, &format!(r#"{{"n":{i}}}"#)).await;
        c.round_trip().await;
    }
    // The second client moves again after the third was refused: presence
    // is relayed in order, so once the first client has that move, it has
    // had everything relayed before it.
    clients[1].set_awareness(2, r#"{"n":1,"moved":true}"#).await;
    let first = &clients[0];
    let second = clients[1].client_id();
    first
        .wait_state("the second client's move", |s| {
            s.awareness
                .get(&second)
                .is_some_and(|(clock, _)| *clock == 2)
        })
        .await;
    assert!(first.awareness_json(clients[1].client_id()).is_some());
    assert!(
        first.awareness_json(clients[2].client_id()).is_none(),
        "a third state was relayed past the limit of 2"
    );
    assert_eq!(s.metric("coform_awareness_refused_total").await, 1.0);
    // The third client still edits.
    clients[2].set_key("meta", "name", "edited").await;
    first.wait_key("meta", "name", "edited").await;
}

// ---------------------------------------------------------------------------
// 3. Sessions and sockets
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_session_closes_its_sockets_and_voids_its_document_tokens() {
    let s = Server::start().await;
    let (a, _, tpl) = owner_with_template(&s, "ida").await;
    let observer = s.ws(&tpl, &a.access, "observer").await;

    // Logout: the socket opened with a document token of that session
    // closes, and the token opens nothing more.
    let phone = s.login("ida@example.com", PASSWORD).await;
    let doc_token = s.doc_token(&phone.access, &tpl).await;
    let on_phone = s.ws(&tpl, &doc_token, "phone").await;
    s.post_empty("/api/auth/logout", Some(&phone.access))
        .await
        .expect(204);
    assert_eq!(on_phone.wait_close_code().await, SESSION_ENDED);
    s.ws_refused(&tpl, Some(&doc_token))
        .await
        .expect(401, "session_revoked");
    // Its last edit never lands.
    on_phone.try_set_key("meta", "name", "after logout").await;
    observer.round_trip().await;
    assert_eq!(observer.get_string("meta", "name"), None);

    // DELETE of a session, by another session of the account.
    let laptop = s.login("ida@example.com", PASSWORD).await;
    let on_laptop = s.ws(&tpl, &laptop.access, "laptop").await;
    let sessions = s.get("/api/auth/sessions", Some(&a.access)).await;
    let laptop_sid = jwt_claims(&laptop.access)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(sessions.expect(200).as_array().unwrap().len() >= 2);
    s.delete(&format!("/api/auth/sessions/{laptop_sid}"), Some(&a.access))
        .await
        .expect(204);
    assert_eq!(on_laptop.wait_close_code().await, SESSION_ENDED);

    // A password change ends every other session's sockets, not its own.
    let tablet = s.login("ida@example.com", PASSWORD).await;
    let on_tablet = s.ws(&tpl, &tablet.access, "tablet").await;
    s.change_password(&a.access, "battery staple 42")
        .await
        .expect(204);
    assert_eq!(on_tablet.wait_close_code().await, SESSION_ENDED);
    observer.round_trip().await;
    assert!(
        observer.state().ended.is_none(),
        "the changing session's socket closed"
    );

    // A reset ends them all.
    s.forgot_password("ida@example.com").await.expect(202);
    let token = s.last_mail("ida@example.com", "Reset").token();
    s.reset_password(&token, "cobalt lantern 77")
        .await
        .expect(204);
    assert_eq!(observer.wait_close_code().await, SESSION_ENDED);
    assert_eq!(s.metric("coform_peers_closed_session_total").await, 4.0);
}

// ---------------------------------------------------------------------------
// 4 (same class). Guessing the password with a stolen access token
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_access_token_cannot_be_used_to_guess_the_password() {
    let s = Server::start().await;
    let a = s.register("ivy", "ivy@example.com").await;
    for i in 0..10 {
        s.put(
            "/api/auth/password",
            Some(&a.access),
            json!({"currentPassword": format!("guess number {i}"), "newPassword": "battery staple 42"}),
        )
        .await
        .expect_error(401, "invalid_credentials");
    }
    // The budget is shared by every check of the password while signed in.
    for (method, path, body) in [
        (
            "PUT",
            "/api/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": "battery staple 42"}),
        ),
        ("DELETE", "/api/auth/me", json!({"password": PASSWORD})),
        (
            "PUT",
            "/api/auth/me",
            json!({"email": "ivy2@example.com", "currentPassword": PASSWORD}),
        ),
    ] {
        let r = s
            .request(method, path, Some(&a.access), &[], Body::Json(body))
            .await;
        r.expect_error(429, "rate_limited");
        assert!(r.header("retry-after").is_some(), "{}", r.what);
    }
    s.login("ivy@example.com", PASSWORD).await;
}

// ---------------------------------------------------------------------------
// 9, 10. Headers
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers_and_tokens_are_never_cached() {
    let s = Server::start().await;
    let a = s.register("jo", "jo@example.com").await;
    let register = s.register_resp("kim@example.com", PASSWORD, "Kim").await;
    let login = s.login_resp("jo@example.com", PASSWORD).await;
    let refresh = s.refresh(&a.refresh).await;
    let answers = [
        register,
        login,
        refresh,
        s.get("/api/auth/me", Some(&a.access)).await,
        s.get("/api/auth/me", None).await,
        s.get("/api/no-such-route", None).await,
        s.get("/healthz", None).await,
    ];
    for r in &answers {
        for (name, want) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(r.header(name).as_deref(), Some(want), "{}: {name}", r.what);
        }
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{}: {csp}", r.what);
    }
}

// ---------------------------------------------------------------------------
// 11. Password policy
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_passwords_and_obvious_sequences_are_refused() {
    let s = Server::start().await;
    for weak in [
        "password123",
        "qwerty123456",
        "abcdefgh12345",
        "1q2w3e4r5t6y",
    ] {
        let r = s.register_resp("lee@example.com", weak, "Lee").await;
        r.expect_error(422, "validation_failed");
        assert!(
            r.field_error("password").contains("too easy to guess"),
            "{weak}: {}",
            r.text
        );
    }
    let lee = s.register("Lee", "lee@example.com").await;
    s.change_password(&lee.access, "password123")
        .await
        .expect_error(422, "validation_failed");
    s.login("lee@example.com", PASSWORD).await;
}

// ---------------------------------------------------------------------------
// 13. Metrics
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token() {
    let token = "scrape-me-0123456789";
    let s = Server::start_with(|c| c.metrics_token = Some(token.into())).await;
    s.get("/metrics", None)
        .await
        .expect_error(401, "unauthorized");
    s.get("/metrics", Some("wrong-token-0123456789"))
        .await
        .expect_error(401, "unauthorized");
    let r = s.get("/metrics", Some(token)).await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("coform_connections"));
}
