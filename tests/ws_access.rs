//! Access control of the WebSocket (`/collab/{templateId}?token=...`):
//! which upgrades are refused and how, what a viewer can and cannot do on
//! an open connection, and role changes and removals applied to live
//! connections at once.
//!
//! Ordering arguments: a room handles one connection's frames in order, so
//! after [`WsClient::round_trip`] every frame the client sent before has
//! been handled (applied, dropped or relayed). And the room relays updates
//! in the order it handles them, so once a later edit has arrived at an
//! observer, an earlier one that was relayed would have arrived too.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use yrs::{Map, WriteTxn};

const DROPPED: &str = "coform_readonly_updates_dropped_total";

/// Alice owns a workspace with one template; Carol and Dave are members in
/// the given roles; Bob is not a member.
struct Team {
    s: Server,
    alice: Account,
    bob: Account,
    carol: Account,
    dave: Account,
    ws: String,
    tpl: String,
}

impl Team {
    /// Alice gives Carol `role`.
    async fn carol_becomes(&self, role: &str) {
        let (alice, carol) = (&self.alice.access, &self.carol.id);
        self.s.set_role(alice, &self.ws, carol, role).await;
    }
}

async fn team(carol_role: &str, dave_role: &str) -> Team {
    team_with(carol_role, dave_role, |_| {}).await
}

async fn team_with(
    carol_role: &str,
    dave_role: &str,
    tweak: impl Fn(&mut coform::config::Config) + Send + Sync + 'static,
) -> Team {
    let s = Server::start_with(tweak).await;
    let alice = s.register("Alice", "alice@example.com").await;
    let bob = s.register("Bob", "bob@example.com").await;
    let carol = s.register("Carol", "carol@example.com").await;
    let dave = s.register("Dave", "dave@example.com").await;
    let ws = s.create_workspace(&alice.access, "Team").await;
    s.add_member(&alice.access, &ws, &carol.email, carol_role)
        .await;
    s.add_member(&alice.access, &ws, &dave.email, dave_role)
        .await;
    let tpl = id_of(
        &s.create_template(
            &alice.access,
            &ws,
            "Form",
            Some(json!({"meta": {"title": "original"}, "components": {}})),
        )
        .await,
    );
    Team {
        s,
        alice,
        bob,
        carol,
        dave,
        ws,
        tpl,
    }
}

// ---------------------------------------------------------------------------
// Refused upgrades
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrades_without_a_valid_token_are_refused_with_401() {
    let t = team("editor", "editor").await;
    let s = &t.s;
    let secret = JWT_SECRET.as_bytes();
    let doc = s.doc_token(&t.carol.access, &t.tpl).await;
    let doc_claims = jwt_claims(&doc);
    // Sanity: the forging below is faithful, a correctly signed copy works.
    let c = s
        .ws(&t.tpl, &sign_jwt(&doc_claims, secret), "resigned")
        .await;
    drop(c);

    s.ws_refused(&t.tpl, None).await.expect(401, "unauthorized");
    s.ws_refused(&t.tpl, Some(""))
        .await
        .expect(401, "unauthorized");
    s.ws_refused(&t.tpl, Some("garbage"))
        .await
        .expect(401, "invalid_token");
    s.ws_refused(&t.tpl, Some(&unsigned_jwt(&doc_claims)))
        .await
        .expect(401, "invalid_token");
    s.ws_refused(
        &t.tpl,
        Some(&sign_jwt(
            &doc_claims,
            b"another server's secret, 32 bytes+",
        )),
    )
    .await
    .expect(401, "invalid_token");
    s.ws_refused(&t.tpl, Some(&unsigned_jwt(&jwt_claims(&t.carol.access))))
        .await
        .expect(401, "invalid_token");

    let mut expired = doc_claims.clone();
    expired["iat"] = json!(now_secs() - 600);
    expired["exp"] = json!(now_secs() - 300);
    s.ws_refused(&t.tpl, Some(&sign_jwt(&expired, secret)))
        .await
        .expect(401, "token_expired");
    let mut expired_access = jwt_claims(&t.carol.access);
    expired_access["exp"] = json!(now_secs() - 300);
    s.ws_refused(&t.tpl, Some(&sign_jwt(&expired_access, secret)))
        .await
        .expect(401, "token_expired");

    // A document token opens only its own template.
    let other = id_of(
        &s.create_template(&t.alice.access, &t.ws, "Other", None)
            .await,
    );
    s.ws_refused(&other, Some(&doc))
        .await
        .expect(401, "invalid_token");
    s.ws(&other, &t.carol.access, "access token").await;

    // An access token of an ended session.
    let session = s.login(&t.carol.email, PASSWORD).await;
    s.post_empty("/api/auth/logout", Some(&session.access))
        .await
        .expect(204);
    s.ws_refused(&t.tpl, Some(&session.access))
        .await
        .expect(401, "session_revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_document_token_stops_opening_the_socket_when_it_expires() {
    let t = team_with("editor", "editor", |c| {
        c.doc_token_ttl = Duration::from_secs(1)
    })
    .await;
    let r = t.s.session(&t.carol.access, &t.tpl).await;
    assert_eq!(r.expect(200)["expiresIn"], 1);
    let token = r.json["token"].as_str().unwrap().to_owned();
    let addr = t.s.addr;
    let refusal = poll(
        "the document token to expire",
        Duration::from_secs(15),
        || {
            let (tpl, token) = (t.tpl.clone(), token.clone());
            async move {
                WsClient::try_connect_token(addr, &tpl, &token, "expiring")
                    .await
                    .err()
            }
        },
    )
    .await;
    refusal.expect(401, "token_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outsiders_get_404_and_a_removed_member_cannot_come_back_with_an_old_token() {
    let t = team("editor", "editor").await;
    let s = &t.s;
    s.ws_refused(&t.tpl, Some(&t.bob.access))
        .await
        .expect(404, "not_found");
    s.ws_refused("no-such-template", Some(&t.carol.access))
        .await
        .expect(404, "not_found");

    let doc = s.doc_token(&t.carol.access, &t.tpl).await;
    s.remove_member(&t.alice.access, &t.ws, &t.carol.id)
        .await
        .expect(204);
    s.ws_refused(&t.tpl, Some(&doc))
        .await
        .expect(404, "not_found");
    s.ws_refused(&t.tpl, Some(&t.carol.access))
        .await
        .expect(404, "not_found");

    // A deleted account's document token opens nothing (its session went
    // with it).
    let dave_doc = s.doc_token(&t.dave.access, &t.tpl).await;
    s.delete_account(&t.dave.access, PASSWORD).await.expect(204);
    s.ws_refused(&t.tpl, Some(&dave_doc))
        .await
        .expect(401, "session_revoked");
}

// ---------------------------------------------------------------------------
// Viewers
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_reads_and_shows_presence_but_its_updates_never_land() {
    let t = team("viewer", "editor").await;
    let s = &t.s;
    let alice = s.ws(&t.tpl, &t.alice.access, "alice").await;
    let dave = s.ws(&t.tpl, &t.dave.access, "dave (observer)").await;
    let dropped0 = s.metric(DROPPED).await;

    // Carol's document already holds a local edit when she connects: her
    // answer to the server's sync step 1 carries it, and it is dropped.
    let local = yrs::Doc::new();
    {
        let components = local.get_or_insert_map("components");
        let mut txn = yrs::Transact::transact_mut(&local);
        components.insert(&mut txn, "offline", "viewer's offline edit");
    }
    let carol = WsClient::try_connect(
        s.addr,
        &t.tpl,
        "carol (viewer)",
        local,
        ConnectOpts::token(&t.carol.access),
    )
    .await
    .expect("a viewer may connect");
    carol.wait_synced().await;
    carol.round_trip().await;
    let dropped1 = s.metric(DROPPED).await;
    assert!(
        dropped1 > dropped0,
        "the viewer's initial state was not counted as dropped ({dropped0} -> {dropped1})"
    );

    // She receives what editors write.
    alice
        .set_key_seen_by(&carol, "meta", "title", "by alice")
        .await;

    // Her presence shows with her account's name and colour, whatever
    // she claims.
    let claimed = json!({"user": {"id": t.alice.id, "name": "The CEO", "color": "#ff0000"},
                         "cursor": {"anchor": 3}});
    carol.set_awareness(1, &claimed.to_string()).await;
    let me = carol.client_id();
    dave.wait_state("Carol's presence", |st| st.awareness.contains_key(&me))
        .await;
    let seen = dave.awareness_json(me).unwrap();
    assert_eq!(seen["user"]["name"], "Carol", "{seen}");
    assert_eq!(seen["user"]["color"], t.carol.color.as_str(), "{seen}");
    assert_eq!(seen["user"]["id"], t.carol.id.as_str(), "{seen}");
    assert_eq!(seen["cursor"], json!({"anchor": 3}));

    // Her document updates are dropped: counted, never relayed or stored.
    let update = carol.edit_local(|txn| {
        txn.get_or_insert_map("components")
            .insert(txn, "hack", "viewer's edit");
        txn.get_or_insert_map("meta")
            .insert(txn, "title", "defaced by viewer");
    });
    carol.send_update(update).await;
    carol.round_trip().await;
    assert_eq!(s.metric(DROPPED).await, dropped1 + 1.0);

    alice
        .set_key_seen_by(&dave, "meta", "after", "editor's later edit")
        .await;
    let seen = dave.json();
    assert_eq!(seen["meta"]["title"], "by alice", "{seen}");
    assert!(seen["components"].get("hack").is_none(), "{seen}");
    assert!(seen["components"].get("offline").is_none(), "{seen}");
    let content = s.content(&t.alice.access, &t.tpl).await;
    assert_eq!(
        content,
        json!({"meta": {"title": "by alice", "after": "editor's later edit"},
               "components": {}}),
        "the server stored a viewer's edit"
    );
    // A newcomer syncing from the server does not get them either.
    let late = s.ws(&t.tpl, &t.dave.access, "late").await;
    assert_eq!(late.json(), content);
    // The viewer's connection stays open and keeps receiving.
    assert!(carol.state().ended.is_none());
    alice.set_key_seen_by(&carol, "meta", "again", "yes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_document_token_from_when_one_was_editor_does_not_grant_writes() {
    let t = team("editor", "editor").await;
    let s = &t.s;
    let doc = s.doc_token(&t.carol.access, &t.tpl).await;
    assert_eq!(jwt_claims(&doc)["role"], "editor");
    t.carol_becomes("viewer").await;
    let carol = s.ws(&t.tpl, &doc, "carol with an old token").await;
    let dave = s.ws(&t.tpl, &t.dave.access, "dave").await;
    let dropped = s.metric(DROPPED).await;
    carol
        .set_key("meta", "title", "written with an old token")
        .await;
    carol.round_trip().await;
    assert_eq!(s.metric(DROPPED).await, dropped + 1.0);
    dave.set_key("meta", "marker", "later").await;
    let alice = s.ws(&t.tpl, &t.alice.access, "alice").await;
    alice.wait_key("meta", "marker", "later").await;
    assert_eq!(
        alice.get_string("meta", "title").as_deref(),
        Some("original")
    );
}

// ---------------------------------------------------------------------------
// Live changes
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demoting_an_editor_mid_session_stops_their_edits_at_once() {
    let t = team("editor", "editor").await;
    let s = &t.s;
    let carol = s.ws(&t.tpl, &t.carol.access, "carol").await;
    let alice = s.ws(&t.tpl, &t.alice.access, "alice").await;
    let dave = s.ws(&t.tpl, &t.dave.access, "dave (observer)").await;

    carol
        .set_key_seen_by(&dave, "meta", "k1", "while editor")
        .await;

    t.carol_becomes("viewer").await;
    let dropped = s.metric(DROPPED).await;
    carol.set_key("meta", "k2", "after demotion").await;
    carol.round_trip().await;
    alice
        .set_key_seen_by(&dave, "meta", "k3", "editor after that")
        .await;
    assert_eq!(
        dave.get_string("meta", "k2"),
        None,
        "a demoted editor's edit reached another client"
    );
    assert_eq!(s.metric(DROPPED).await, dropped + 1.0);
    let content = s.content(&t.alice.access, &t.tpl).await;
    assert!(content["meta"].get("k2").is_none(), "stored: {content}");
    assert_eq!(content["meta"]["k1"], "while editor", "earlier edits stay");
    // Still connected, still reading.
    carol.wait_key("meta", "k3", "editor after that").await;
    assert!(carol.state().ended.is_none());

    // Promoted again, a fresh connection writes again.
    t.carol_becomes("editor").await;
    let again = s.ws(&t.tpl, &t.carol.access, "carol again").await;
    again
        .set_key_seen_by(&dave, "meta", "k4", "editor again")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promoting_a_viewer_mid_session_lets_their_new_edits_through() {
    let t = team("viewer", "editor").await;
    let s = &t.s;
    let carol = s.ws(&t.tpl, &t.carol.access, "carol").await;
    let dave = s.ws(&t.tpl, &t.dave.access, "dave (observer)").await;
    t.carol_becomes("editor").await;
    carol
        .set_key_seen_by(&dave, "meta", "promoted", "now an editor")
        .await;
    let content = s.content(&t.alice.access, &t.tpl).await;
    assert_eq!(content["meta"]["promoted"], "now an editor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_a_member_closes_their_sockets_with_4403() {
    let t = team("editor", "editor").await;
    let s = &t.s;
    let second = id_of(
        &s.create_template(&t.alice.access, &t.ws, "Second", None)
            .await,
    );
    let own_ws = s.create_workspace(&t.carol.access, "Carol's").await;
    let own = id_of(
        &s.create_template(&t.carol.access, &own_ws, "Own", None)
            .await,
    );

    let c1 = s.ws(&t.tpl, &t.carol.access, "carol-1").await;
    let c2 = s.ws(&second, &t.carol.access, "carol-2").await;
    let c3 = s.ws(&own, &t.carol.access, "carol-own").await;
    let dave = s.ws(&t.tpl, &t.dave.access, "dave").await;

    s.remove_member(&t.alice.access, &t.ws, &t.carol.id)
        .await
        .expect(204);
    assert_eq!(c1.wait_close_code().await, 4403);
    assert_eq!(c2.wait_close_code().await, 4403);
    s.ws_refused(&t.tpl, Some(&t.carol.access))
        .await
        .expect(404, "not_found");
    // Her connection to her own workspace, and other members', stay.
    c3.set_key("meta", "still", "open").await;
    c3.round_trip().await;
    assert!(c3.state().ended.is_none());
    dave.set_key("meta", "still", "open").await;
    dave.round_trip().await;
    assert!(dave.state().ended.is_none());

    // Leaving closes one's own sockets the same way.
    let d2 = s.ws(&second, &t.dave.access, "dave-2").await;
    s.remove_member(&t.dave.access, &t.ws, &t.dave.id)
        .await
        .expect(204);
    assert_eq!(dave.wait_close_code().await, 4403);
    assert_eq!(d2.wait_close_code().await, 4403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_an_account_closes_its_sockets_with_4403() {
    let t = team("editor", "editor").await;
    let s = &t.s;
    let carol = s.ws(&t.tpl, &t.carol.access, "carol").await;
    let dave = s.ws(&t.tpl, &t.dave.access, "dave (observer)").await;
    s.delete_account(&t.carol.access, PASSWORD)
        .await
        .expect(204);

    // Whatever the deleted account's open socket still sends must not land.
    carol
        .try_set_key("meta", "ghost", "edit by a deleted account")
        .await;
    // Either the socket is closed, or the room has handled the edit.
    carol.try_round_trip().await;
    let alice = s.ws(&t.tpl, &t.alice.access, "alice").await;
    alice
        .set_key_seen_by(&dave, "meta", "marker", "later")
        .await;
    let content = s.content(&t.alice.access, &t.tpl).await;
    let ghost: Option<&Value> = content["meta"].get("ghost");
    assert!(
        ghost.is_none() && dave.get_string("meta", "ghost").is_none(),
        "a deleted account's open socket still writes: {content}"
    );
    assert_eq!(
        carol.wait_close_code().await,
        4403,
        "a deleted account's socket stays open"
    );
}
