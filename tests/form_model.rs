//! The form model end to end: versions (save, read, restore while two
//! WebSocket clients edit live, diffs), export and import (round trip,
//! validation of hostile files), the HTML preview (escaping, CSP),
//! per-template analytics, and who may do what.

mod support;

use serde_json::{json, Value};
use support::*;
use yrs::{Any, Map, MapPrelim, Out, WriteTxn};

/// Ada owns a workspace, Bob edits in it, Vic views it, Eve is outside.
struct Fixture {
    s: Server,
    ada: Account,
    bob: Account,
    vic: Account,
    eve: Account,
    ws: String,
}

async fn fixture() -> Fixture {
    let Owned { s, ada, ws } = owned().await;
    let bob = s.register("Bob", "bob@example.com").await;
    let vic = s.register("Vic", "vic@example.com").await;
    let eve = s.register("Eve", "eve@example.com").await;
    s.add_member(&ada.access, &ws, &bob.email, "editor").await;
    s.add_member(&ada.access, &ws, &vic.email, "viewer").await;
    Fixture {
        s,
        ada,
        bob,
        vic,
        eve,
        ws,
    }
}

/// A valid form with one component of every type.
fn rich_content() -> Value {
    json!({
        "meta": {"name": "Inscription ✨", "description": "Rejoignez-nous", "tags": ["rh", "été"],
                 "category": "hr"},
        "components": {
            "s1": {"id": "s1", "type": "section", "label": "Vous", "parent": null, "index": "a0",
                   "properties": {"description": "À propos de vous"}},
            "name": {"id": "name", "type": "text", "label": "Nom", "parent": "s1", "index": "a0",
                     "properties": {"placeholder": "Ada", "helpText": "Comme sur le passeport"},
                     "validation": {"required": true, "minLength": 2, "maxLength": 80, "pattern": "^[^0-9]+$"},
                     "position": {"x": 0, "y": 0, "w": 320, "h": 40},
                     "styling": {"theme": "light", "customStyles": {"font-weight": "bold"}}},
            "age": {"id": "age", "type": "number", "label": "Âge", "parent": "s1", "index": "a1",
                    "properties": {"min": 0, "max": 150, "step": 1}, "validation": {"min": 18}},
            "bio": {"id": "bio", "type": "textarea", "label": "Bio", "index": "a1", "properties": {"rows": 4}},
            "mail": {"id": "mail", "type": "email", "label": "E-mail", "index": "a2",
                     "validation": {"required": true}},
            "tel": {"id": "tel", "type": "phone", "label": "Téléphone", "index": "a3"},
            "born": {"id": "born", "type": "date", "label": "Né le", "index": "a4",
                     "properties": {"min": "1900-01-01"}},
            "color": {"id": "color", "type": "select", "label": "Couleur", "index": "a5",
                      "properties": {"options": [{"value": "r", "label": "Rouge"},
                                                 {"value": "v", "label": "Vert"}]}},
            "size": {"id": "size", "type": "radio", "label": "Taille", "index": "a6",
                     "properties": {"options": [{"value": "s", "label": "S"}, {"value": "m", "label": "M"}]},
                     "validation": {"required": true}},
            "tos": {"id": "tos", "type": "checkbox", "label": "J'accepte", "index": "a7",
                    "validation": {"required": true}},
            "cv": {"id": "cv", "type": "file", "label": "CV", "index": "a8",
                   "properties": {"accept": ".pdf,application/msword"}},
            "h": {"id": "h", "type": "heading", "label": "", "index": "a9",
                  "properties": {"text": "Bienvenue", "level": 2}},
            "p": {"id": "p", "type": "paragraph", "label": "", "index": "b0",
                  "properties": {"text": "Merci !"}},
            "go": {"id": "go", "type": "button", "label": "Envoyer", "index": "b1",
                   "properties": {"action": "submit"}}
        }
    })
}

/// Makes `map[key] = value` in the client's document under the nested
/// maps `path`, without sending it; returns the update.
fn local_set(c: &WsClient, path: &[&str], key: &str, value: Any) -> Vec<u8> {
    c.edit_local(|txn| {
        let mut map = txn.get_or_insert_map(path[0]);
        for p in &path[1..] {
            map = match map.get(txn, p) {
                Some(Out::YMap(m)) => m,
                other => panic!("no map at {p}: {other:?}"),
            };
        }
        map.insert(txn, key, value);
    })
}

async fn template_with(s: &Server, token: &str, ws: &str, content: Value) -> String {
    id_of(&s.create_template(token, ws, "Form", Some(content)).await)
}

async fn save_version(s: &Server, token: &str, t: &str, name: &str) -> Value {
    s.post(
        &format!("/api/templates/{t}/versions"),
        Some(token),
        json!({"name": name, "note": format!("note for {name}")}),
    )
    .await
    .expect(201)
    .clone()
}

fn numbers(list: &Value) -> Vec<u64> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|v| v["number"].as_u64().expect("number"))
        .collect()
}

// ---------------------------------------------------------------------------
// Versions and restore
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_store_name_note_author_time_and_content() {
    let f = fixture().await;
    let t = template_with(&f.s, &f.ada.access, &f.ws, rich_content()).await;
    let before = now_ms();
    let v1 = save_version(&f.s, &f.bob.access, &t, "Première").await;
    assert_eq!(v1["number"], 1);
    assert_eq!(v1["name"], "Première");
    assert_eq!(v1["note"], "note for Première");
    assert_eq!(v1["authorId"], f.bob.id.as_str());
    assert_eq!(v1["authorName"], "Bob");
    assert!(v1["createdAt"].as_i64().unwrap() >= before);
    assert!(v1["size"].as_u64().unwrap() > 100);

    f.s.put(
        &format!("/api/templates/{t}"),
        Some(&f.ada.access),
        json!({"content": {"meta": {"name": "Changed"}}}),
    )
    .await
    .expect(200);
    save_version(&f.s, &f.ada.access, &t, "").await;
    let list =
        f.s.get(&format!("/api/templates/{t}/versions"), Some(&f.vic.access))
            .await;
    assert_eq!(numbers(list.expect(200)), [2, 1]);

    let got =
        f.s.get(
            &format!("/api/templates/{t}/versions/1"),
            Some(&f.vic.access),
        )
        .await;
    let got = got.expect(200);
    assert_eq!(got["name"], "Première");
    assert_eq!(got["content"], rich_content());
    let v2 =
        f.s.get(
            &format!("/api/templates/{t}/versions/2"),
            Some(&f.vic.access),
        )
        .await;
    assert_eq!(v2.expect(200)["content"]["meta"]["name"], "Changed");

    // Unknown and malformed numbers.
    f.s.expect_all(&[
        Call::get(format!("/api/templates/{t}/versions/3"), &f.ada.access).is(404, "not_found"),
        Call::get(format!("/api/templates/{t}/versions/abc"), &f.ada.access).is(400, "bad_request"),
    ])
    .await;
    // Name and note are checked.
    let r =
        f.s.post(
            &format!("/api/templates/{t}/versions"),
            Some(&f.ada.access),
            json!({"name": "x".repeat(201), "note": "a\u{0}b"}),
        )
        .await;
    assert_eq!(r.field_errors().len(), 2);
    r.field_error("name");
    r.field_error("note");
    // A body that is not an object is refused, not read as the fields in
    // order (serde would take `[]` for all defaults), and saves nothing.
    f.s.expect_all(&[
        Call::post(
            format!("/api/templates/{t}/versions"),
            &f.ada.access,
            json!([]),
        )
        .is(400, "invalid_json"),
        Call::post(
            format!("/api/templates/{t}/versions"),
            &f.ada.access,
            json!(["n", "x"]),
        )
        .is(400, "invalid_json"),
        Call::post(
            format!("/api/templates/{t}/versions"),
            &f.ada.access,
            json!("name"),
        )
        .is(400, "invalid_json"),
    ])
    .await;
    let list =
        f.s.get(&format!("/api/templates/{t}/versions"), Some(&f.ada.access))
            .await;
    assert_eq!(numbers(list.expect(200)), [2, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_while_two_clients_edit_live() {
    let f = fixture().await;
    let t = template_with(&f.s, &f.ada.access, &f.ws, rich_content()).await;
    save_version(&f.s, &f.ada.access, &t, "v1").await;

    let a_token = f.s.doc_token(&f.ada.access, &t).await;
    let b_token = f.s.doc_token(&f.bob.access, &t).await;
    let a = f.s.ws(&t, &a_token, "ada").await;
    let b = f.s.ws(&t, &b_token, "bob").await;

    // Live edits after v1: a label changes, a component is added.
    let u = local_set(
        &a,
        &["components", "name"],
        "label",
        Any::from("Nom complet"),
    );
    a.send_update(u).await;
    let u = a.edit_local(|txn| {
        txn.get_or_insert_map("components").insert(
            txn,
            "extra",
            MapPrelim::from([
                ("id", Any::from("extra")),
                ("type", Any::from("text")),
                ("label", Any::from("Extra")),
                ("index", Any::from("c0")),
            ]),
        );
    });
    a.send_update(u).await;
    b.wait_doc("bob sees the added component", |d| {
        doc_json(d)["components"]["extra"]["label"] == "Extra"
    })
    .await;
    save_version(&f.s, &f.bob.access, &t, "v2").await;

    // Concurrent edits, made before either client sees the restore and
    // sent after it: they touch fields the restore does not.
    let from_a = local_set(
        &a,
        &["meta"],
        "description",
        Any::from("écrit pendant la restauration"),
    );
    let from_b = local_set(
        &b,
        &["components", "mail", "validation"],
        "message",
        Any::from("Une adresse valide"),
    );

    let r =
        f.s.post_empty(
            &format!("/api/templates/{t}/versions/1/restore"),
            Some(&f.bob.access),
        )
        .await;
    let body = r.expect(200).clone();
    assert_eq!(body["restored"], 1);
    assert_eq!(body["backup"]["number"], 3);
    assert_eq!(body["backup"]["name"], "Before restoring version 1");
    assert_eq!(body["backup"]["authorId"], f.bob.id.as_str());

    // Both see the restore at once.
    for c in [&a, &b] {
        c.wait_doc("the restore", |d| {
            let j = doc_json(d);
            j["components"]["name"]["label"] == "Nom" && j["components"].get("extra").is_none()
        })
        .await;
    }
    a.send_update(from_a).await;
    b.send_update(from_b).await;
    a.round_trip().await;
    b.round_trip().await;
    let expected = {
        let mut e = rich_content();
        e["meta"]["description"] = json!("écrit pendant la restauration");
        e["components"]["mail"]["validation"]["message"] = json!("Une adresse valide");
        e
    };
    for c in [&a, &b] {
        c.wait_doc("both concurrent edits", |d| doc_json(d) == expected)
            .await;
    }
    assert_eq!(f.s.content(&f.ada.access, &t).await, expected);

    // History grew and kept everything: v2 still has the live edits, the
    // backup holds the state just before the restore.
    let list =
        f.s.get(&format!("/api/templates/{t}/versions"), Some(&f.ada.access))
            .await;
    assert_eq!(numbers(list.expect(200)), [3, 2, 1]);
    for n in [2, 3] {
        let v =
            f.s.get(
                &format!("/api/templates/{t}/versions/{n}"),
                Some(&f.ada.access),
            )
            .await;
        let content = &v.expect(200)["content"];
        assert_eq!(content["components"]["name"]["label"], "Nom complet");
        assert_eq!(content["components"]["extra"]["label"], "Extra");
    }
    // The restore is itself a forward change: diff 3 -> current shows it.
    let d =
        f.s.get(
            &format!("/api/templates/{t}/versions/3/diff/current"),
            Some(&f.ada.access),
        )
        .await;
    let d = d.expect(200);
    assert_eq!(d["removed"], json!(["extra"]));
    assert_eq!(d["meta"], json!(["description"]));
    // Neither client was disconnected or saw a bad update.
    for c in [&a, &b] {
        let st = c.state();
        assert!(st.ended.is_none(), "{:?}", st.ended);
        c.check();
    }
}

// ---------------------------------------------------------------------------
// Diff
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_reports_added_removed_moved_and_changed() {
    let f = fixture().await;
    let t = template_with(&f.s, &f.ada.access, &f.ws, rich_content()).await;
    save_version(&f.s, &f.ada.access, &t, "before").await;
    let mut next = rich_content();
    let c = next["components"].as_object_mut().unwrap();
    c.remove("tel");
    c.insert(
        "zip".into(),
        json!({"id": "zip", "type": "text", "label": "Code postal", "index": "a3"}),
    );
    c.get_mut("age").unwrap()["parent"] = json!(null); // moved out of s1
    c.get_mut("bio").unwrap()["index"] = json!("Zz"); // moved up
    c.get_mut("name").unwrap()["label"] = json!("Nom complet");
    c.get_mut("name").unwrap()["validation"]["required"] = json!(false);
    c.get_mut("color").unwrap()["properties"]["options"][1]["label"] = json!("Verte");
    c.get_mut("h").unwrap()["properties"]["level"] = json!(3);
    next["meta"]["name"] = json!("Inscription 2");
    f.s.put(
        &format!("/api/templates/{t}"),
        Some(&f.ada.access),
        json!({ "content": next }),
    )
    .await
    .expect(200);
    save_version(&f.s, &f.ada.access, &t, "after").await;

    let r =
        f.s.get(
            &format!("/api/templates/{t}/versions/1/diff/2"),
            Some(&f.vic.access),
        )
        .await;
    let d = r.expect(200);
    assert_eq!(d["from"], "1");
    assert_eq!(d["to"], "2");
    assert_eq!(d["added"], json!(["zip"]));
    assert_eq!(d["removed"], json!(["tel"]));
    assert_eq!(
        d["moved"],
        json!([
            {"id": "age", "from": {"parent": "s1", "index": "a1"}, "to": {"parent": null, "index": "a1"}},
            {"id": "bio", "from": {"parent": null, "index": "a1"}, "to": {"parent": null, "index": "Zz"}}
        ])
    );
    assert_eq!(
        d["changed"],
        json!([
            {"id": "color", "fields": ["properties.options"]},
            {"id": "h", "fields": ["properties.level"]},
            {"id": "name", "fields": ["label", "validation.required"]}
        ])
    );
    assert_eq!(d["meta"], json!(["name"]));

    // The other way round, and against the live document.
    let back =
        f.s.get(
            &format!("/api/templates/{t}/versions/2/diff/1"),
            Some(&f.vic.access),
        )
        .await;
    let back = back.expect(200);
    assert_eq!(back["added"], json!(["tel"]));
    assert_eq!(back["removed"], json!(["zip"]));
    let live =
        f.s.get(
            &format!("/api/templates/{t}/versions/1/diff/current"),
            Some(&f.vic.access),
        )
        .await;
    let live = live.expect(200);
    for k in ["added", "removed", "moved", "changed", "meta"] {
        assert_eq!(live[k], d[k], "{k}");
    }
    let same =
        f.s.get(
            &format!("/api/templates/{t}/versions/2/diff/current"),
            Some(&f.vic.access),
        )
        .await;
    let same = same.expect(200);
    for k in ["added", "removed", "moved", "changed", "meta"] {
        assert_eq!(same[k], json!([]), "{k}");
    }
    f.s.expect_all(&[
        Call::get(
            format!("/api/templates/{t}/versions/1/diff/9"),
            &f.vic.access,
        )
        .is(404, "not_found"),
        Call::get(
            format!("/api/templates/{t}/versions/1/diff/x"),
            &f.vic.access,
        )
        .is(400, "bad_request"),
    ])
    .await;
}

// ---------------------------------------------------------------------------
// Export and import
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_round_trip_equals_the_original() {
    let f = fixture().await;
    let created =
        f.s.post(
            "/api/templates",
            Some(&f.ada.access),
            json!({"workspaceId": f.ws, "name": "Inscription", "description": "Pour l'été",
                   "tags": ["rh"], "content": rich_content()}),
        )
        .await;
    let t = id_of(created.expect(201));
    // Some of the content comes from a live client.
    let token = f.s.doc_token(&f.ada.access, &t).await;
    let a = f.s.ws(&t, &token, "ada").await;
    a.send_update(local_set(
        &a,
        &["components", "bio"],
        "label",
        Any::from("Biographie"),
    ))
    .await;
    a.round_trip().await;
    let original = f.s.content(&f.ada.access, &t).await;
    assert_eq!(original["components"]["bio"]["label"], "Biographie");

    let r =
        f.s.post_empty(&format!("/api/templates/{t}/export"), Some(&f.vic.access))
            .await;
    let file = r.expect(200).clone();
    assert!(r
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment;")));
    assert_eq!(file["format"], "coform-template");
    assert_eq!(file["version"], 1);
    assert_eq!(
        file["template"],
        json!({"name": "Inscription", "description": "Pour l'été", "tags": ["rh"]})
    );
    assert_eq!(file["content"], original);
    assert_eq!(file.as_object().unwrap().len(), 4);

    // As a new template.
    let r =
        f.s.post(
            &format!("/api/templates/import?workspaceId={}", f.ws),
            Some(&f.bob.access),
            file.clone(),
        )
        .await;
    let imported = r.expect(201);
    let copy = id_of(imported);
    assert_ne!(copy, t);
    assert_eq!(imported["name"], "Inscription");
    assert_eq!(imported["description"], "Pour l'été");
    assert_eq!(imported["tags"], json!(["rh"]));
    assert_eq!(imported["createdBy"], f.bob.id.as_str());
    assert_eq!(imported["content"], original);
    assert_eq!(f.s.content(&f.bob.access, &copy).await, original);

    // Into an existing template, as one edit a live client sees.
    let other = template_with(
        &f.s,
        &f.ada.access,
        &f.ws,
        json!({"meta": {"name": "Old", "stale": true},
               "components": {"old": {"id": "old", "type": "text", "index": "a0"}}}),
    )
    .await;
    let token = f.s.doc_token(&f.bob.access, &other).await;
    let watcher = f.s.ws(&other, &token, "watcher").await;
    let before_updates = watcher.state().updates_received;
    let r =
        f.s.post(
            &format!("/api/templates/{other}/import"),
            Some(&f.bob.access),
            file.clone(),
        )
        .await;
    let view = r.expect(200);
    assert_eq!(view["name"], "Form", "the listing is kept");
    assert_eq!(view["content"], original);
    watcher
        .wait_doc("the import", |d| doc_json(d) == original)
        .await;
    assert_eq!(
        watcher.state().updates_received,
        before_updates + 1,
        "one edit"
    );
    // Exporting the copy gives the same content again.
    let again =
        f.s.post_empty(
            &format!("/api/templates/{copy}/export"),
            Some(&f.ada.access),
        )
        .await;
    assert_eq!(again.expect(200)["content"], original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_are_refused_with_every_error_and_change_nothing() {
    let f = fixture().await;
    let t = template_with(&f.s, &f.ada.access, &f.ws, rich_content()).await;
    let before = f.s.content(&f.ada.access, &t).await;
    let mut content = rich_content();
    let c = &mut content["components"];
    c["age"]["validation"]["min"] = json!("dix-huit");
    c["name"]["type"] = json!("marquee");
    c["mail"]["parent"] = json!("nowhere");
    c["tel"]["id"] = json!("mail");
    c["go"]["properties"]["action"] = json!("javascript:alert(1)");
    c["color"]["properties"]["options"][0]["label"] = json!(7);
    let file = json!({
        "format": "coform-template", "version": 1,
        "template": {"name": "", "tags": ["ok", ""]},
        "content": content,
        "extra": 1
    });
    let r =
        f.s.post(
            &format!("/api/templates/{t}/import"),
            Some(&f.ada.access),
            file.clone(),
        )
        .await;
    let errors: Vec<String> = r.field_errors().into_iter().map(|(p, _)| p).collect();
    let wanted = [
        "content.components.age.validation.min",
        "content.components.name.type",
        "content.components.mail.parent",
        "content.components.tel.id",
        "content.components.go.properties.action",
        "content.components.color.properties.options[0].label",
        "template.name",
        "template.tags[1]",
        "extra",
    ];
    let missing: Vec<_> = wanted
        .iter()
        .filter(|w| !errors.contains(&w.to_string()))
        .collect();
    assert!(missing.is_empty(), "no error at {missing:?}: {errors:#?}");
    assert!(r
        .field_error("content.components.mail.parent")
        .contains("orphan"));
    assert!(r
        .field_error("content.components.tel.id")
        .contains("duplicate id"));
    let r =
        f.s.post(
            &format!("/api/templates/import?workspaceId={}", f.ws),
            Some(&f.ada.access),
            file,
        )
        .await;
    r.field_error("content.components.name.type");

    // Duplicate keys in the raw text: a plain parser would keep one.
    let raw = r#"{"format": "coform-template", "version": 1, "template": {"name": "Dup"},
        "content": {"components": {
            "c1": {"id": "c1", "type": "text", "index": "a0"},
            "c1": {"id": "c1", "type": "email", "index": "a1"}}}}"#;
    let r =
        f.s.request(
            "POST",
            &format!("/api/templates/{t}/import"),
            Some(&f.ada.access),
            &[],
            Body::Raw(Some("application/json"), raw.as_bytes().to_vec()),
        )
        .await;
    assert!(r.field_error("content.components.c1").contains("duplicate"));
    // Wrong format and version, malformed JSON, no JSON at all.
    let r =
        f.s.post(
            &format!("/api/templates/{t}/import"),
            Some(&f.ada.access),
            json!({"format": "other", "version": 2, "template": {"name": "x"}, "content": {}}),
        )
        .await;
    r.field_error("format");
    assert!(r.field_error("version").contains("unsupported"));
    f.s.request(
        "POST",
        &format!("/api/templates/{t}/import"),
        Some(&f.ada.access),
        &[],
        Body::Raw(Some("application/json"), b"{\"format\": ".to_vec()),
    )
    .await
    .expect_error(400, "invalid_json");
    f.s.request(
        "POST",
        &format!("/api/templates/{t}/import"),
        Some(&f.ada.access),
        &[],
        Body::Raw(Some("text/plain"), b"{}".to_vec()),
    )
    .await
    .expect_error(400, "invalid_json");
    // Too large.
    let big = json!({"format": "coform-template", "version": 1, "template": {"name": "Big"},
                     "content": {"meta": {"blob": "x".repeat(2 << 20)}}});
    f.s.post(
        &format!("/api/templates/{t}/import"),
        Some(&f.ada.access),
        big,
    )
    .await
    .expect_error(413, "payload_too_large");

    // Nothing changed, nothing was created.
    assert_eq!(f.s.content(&f.ada.access, &t).await, before);
    let query = format!("workspaceId={}", f.ws);
    assert_eq!(f.s.template_total(&f.ada.access, &query).await, 1);
}

// ---------------------------------------------------------------------------
// Preview
// ---------------------------------------------------------------------------

const EVIL: &str = "<script>alert(1)</script>\"'&é🎉";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_escapes_every_field_and_sends_a_strict_csp() {
    let f = fixture().await;
    // Hostile text in every field the form model lets hold text (values
    // the model refuses cannot be stored: REST refuses them, the server
    // repairs them in live edits).
    let id = format!("c\"><script>x</script>{EVIL}");
    let sec = format!("s<script>{EVIL}");
    let mut components = serde_json::Map::new();
    components.insert(
        sec.clone(),
        json!({"id": sec, "type": "section", "label": EVIL, "index": "a0",
               "properties": {"description": EVIL}}),
    );
    components.insert(
        id.clone(),
        json!({"id": id, "type": "text", "label": EVIL, "parent": sec, "index": "a0",
               "properties": {"placeholder": EVIL, "helpText": EVIL, "name": EVIL,
                              "defaultValue": EVIL, "autocomplete": EVIL},
               "validation": {"required": true, "pattern": EVIL}}),
    );
    for (i, kind) in ["select", "radio", "checkbox"].into_iter().enumerate() {
        let key = format!("{kind}{EVIL}");
        let mut props = json!({"options": [{"value": EVIL, "label": EVIL}]});
        match kind {
            "select" => {
                props["placeholder"] = json!(EVIL);
                props["defaultValue"] = json!(EVIL);
            }
            "radio" => props["defaultValue"] = json!(EVIL),
            _ => props["defaultValue"] = json!([EVIL]),
        }
        components.insert(
            key.clone(),
            json!({"id": key, "type": kind, "label": EVIL, "index": format!("b{i}"),
                   "properties": props,
                   "validation": {"required": true}}),
        );
    }
    for (i, (kind, props)) in [
        (
            "textarea",
            json!({"placeholder": EVIL, "defaultValue": EVIL}),
        ),
        ("file", json!({"accept": ".pdf", "helpText": EVIL})),
        ("heading", json!({"text": EVIL, "level": 2})),
        ("paragraph", json!({"text": EVIL})),
        ("button", json!({"text": EVIL, "action": "submit"})),
        ("number", json!({"min": 1, "step": 2, "placeholder": EVIL})),
        ("date", json!({"min": "2026-01-01", "helpText": EVIL})),
        ("email", json!({"placeholder": EVIL})),
        ("phone", json!({"placeholder": EVIL})),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("{kind}-{EVIL}");
        components.insert(
            key.clone(),
            json!({"id": key, "type": kind, "label": EVIL, "index": format!("c{i}"),
                   "properties": props}),
        );
    }
    let content = json!({
        "meta": {"name": EVIL, "description": EVIL, "tags": [EVIL], "category": EVIL},
        "components": components
    });
    let t = template_with(&f.s, &f.ada.access, &f.ws, content).await;

    let r =
        f.s.get(&format!("/api/templates/{t}/preview"), Some(&f.vic.access))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("content-security-policy").as_deref(),
        Some(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; \
             frame-ancestors 'none'; base-uri 'none'"
        )
    );
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let html = &r.text;
    assert!(html.starts_with("<!DOCTYPE html>"));
    let lower = html.to_lowercase();
    assert!(!lower.contains("<script"), "unescaped script tag:\n{html}");
    assert!(
        !html.contains("'&"),
        "a quote or ampersand went through raw"
    );
    // Every EVIL string became the same escaped text, in every field.
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;é🎉";
    let count = html.matches(escaped).count();
    assert!(count >= 40, "only {count} escaped copies:\n{html}");
    // Every attribute value is double-quoted and holds no raw quote: the
    // text between tags never contains a '<' that starts a foreign tag.
    let allowed = [
        "html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "h3", "h4", "h5",
        "h6", "p", "form", "div", "label", "span", "input", "textarea", "select", "option",
        "fieldset", "legend", "button", "br",
    ];
    for tag in html.split('<').skip(1) {
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(
            tag.starts_with("!DOCTYPE") || allowed.contains(&name.as_str()),
            "unexpected tag <{name}: {tag:.80}"
        );
    }
    // Accessible structure survives the hostile text.
    assert!(html.contains("<label for=\"f-c&quot;&gt;&lt;script&gt;x&lt;/script&gt;"));
    assert!(html.contains("required aria-required=\"true\""));
    assert!(html.contains("<fieldset class=\"section\""));
    assert!(html.contains("role=\"radiogroup\" aria-required=\"true\""));
    assert!(html.contains("<span class=\"req\" aria-hidden=\"true\">*</span>"));

    // With no meta name, the listing name is the title, escaped too.
    let r =
        f.s.post(
            "/api/templates",
            Some(&f.ada.access),
            json!({"workspaceId": f.ws, "name": "<script>t</script>"}),
        )
        .await;
    let t2 = id_of(r.expect(201));
    let r =
        f.s.get(&format!("/api/templates/{t2}/preview"), Some(&f.ada.access))
            .await;
    assert_eq!(r.status, 200);
    assert!(r
        .text
        .contains("<title>&lt;script&gt;t&lt;/script&gt;</title>"));
    assert!(!r.text.to_lowercase().contains("<script"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_of_a_valid_form_is_accessible() {
    let f = fixture().await;
    let t = template_with(&f.s, &f.ada.access, &f.ws, rich_content()).await;
    let r =
        f.s.get(&format!("/api/templates/{t}/preview"), Some(&f.ada.access))
            .await;
    assert_eq!(r.status, 200);
    let html = &r.text;
    // Every control has a label tied to it.
    for id in [
        "name", "age", "bio", "mail", "tel", "born", "color", "tos", "cv",
    ] {
        assert!(
            html.contains(&format!("<label for=\"f-{id}\"")),
            "label of {id}"
        );
        assert!(html.contains(&format!("id=\"f-{id}\"")), "control {id}");
    }
    assert!(html.contains("<label for=\"f-size-0\">S</label>"));
    assert!(html.contains(
        "<fieldset class=\"section\" id=\"f-s1\"><legend>Vous</legend><p class=\"description\">À propos de vous</p>"
    ));
    assert!(
        html.contains("<legend>Taille<span class=\"req\" aria-hidden=\"true\">*</span></legend>")
    );
    assert!(html.contains("<h2 id=\"f-h\">Bienvenue</h2>"));
    assert!(html.contains("<button type=\"submit\" id=\"f-go\">Envoyer</button>"));
    assert!(html.contains("minlength=\"2\" maxlength=\"80\" pattern=\"^[^0-9]+$\""));
    assert!(html.contains("aria-describedby=\"f-name-help\""));
    assert!(html.contains(
        "<input type=\"number\" id=\"f-age\" name=\"age\" min=\"18\" max=\"150\" step=\"1\""
    ));
    // Display order: the section's children inside it, then the rest by index.
    let pos = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(pos("id=\"f-s1\"") < pos("id=\"f-name\""));
    assert!(pos("id=\"f-name\"") < pos("id=\"f-age\""));
    assert!(pos("id=\"f-age\"") < pos("id=\"f-bio\""));
    assert!(pos("id=\"f-p\"") < pos("id=\"f-go\""));
}

// ---------------------------------------------------------------------------
// Analytics
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_counts_views_edits_and_editors() {
    let mut f = fixture().await;
    let t = template_with(&f.s, &f.ada.access, &f.ws, rich_content()).await;
    let a0 = analytics(&f.s, &t, &f.vic.access).await;
    assert_eq!(a0["templateId"], t.as_str());
    for k in ["views", "edits", "editors", "versions", "activeEditors"] {
        assert_eq!(a0[k], 0, "{k}");
    }
    assert_eq!(a0["lastEditAt"], Value::Null);

    // Views: two reads and a preview (analytics itself is not a view).
    f.s.expect_all(&[
        Call::get(format!("/api/templates/{t}"), &f.vic.access).ok(200),
        Call::get(format!("/api/templates/{t}"), &f.ada.access).ok(200),
    ])
    .await;
    f.s.get(&format!("/api/templates/{t}/preview"), Some(&f.vic.access))
        .await;
    // Edits: one REST update by Ada, three updates from Bob's connection.
    f.s.put(
        &format!("/api/templates/{t}"),
        Some(&f.ada.access),
        json!({"content": {"meta": {"name": "Renamed"}}}),
    )
    .await
    .expect(200);
    let token = f.s.doc_token(&f.bob.access, &t).await;
    let b = f.s.ws(&t, &token, "bob").await;
    for i in 0..3 {
        b.send_update(local_set(
            &b,
            &["meta"],
            "description",
            Any::from(format!("d{i}")),
        ))
        .await;
    }
    b.round_trip().await;
    save_version(&f.s, &f.ada.access, &t, "v1").await;
    let a1 = analytics(&f.s, &t, &f.vic.access).await;
    assert_eq!(a1["views"], 3);
    assert_eq!(a1["edits"], 4);
    assert_eq!(a1["editors"], 2);
    assert_eq!(a1["lastEditorId"], f.bob.id.as_str());
    assert!(a1["lastEditAt"].as_i64().unwrap() > 0);
    assert_eq!(a1["versions"], 1);
    assert_eq!(a1["activeEditors"], 1);

    // A restore and an import are edits too; viewers' sockets never are.
    f.s.post_empty(
        &format!("/api/templates/{t}/versions/1/restore"),
        Some(&f.ada.access),
    )
    .await
    .expect(200);
    let file =
        f.s.post_empty(&format!("/api/templates/{t}/export"), Some(&f.ada.access))
            .await
            .expect(200)
            .clone();
    f.s.post(
        &format!("/api/templates/{t}/import"),
        Some(&f.ada.access),
        file,
    )
    .await
    .expect(200);
    let token = f.s.doc_token(&f.vic.access, &t).await;
    let v = f.s.ws(&t, &token, "vic").await;
    v.send_update(local_set(&v, &["meta"], "description", Any::from("nope")))
        .await;
    v.round_trip().await;
    let a2 = analytics(&f.s, &t, &f.ada.access).await;
    assert_eq!(a2["edits"], 6);
    assert_eq!(a2["editors"], 2);
    assert_eq!(a2["lastEditorId"], f.ada.id.as_str());

    // Connection edits reach the store without anyone asking for
    // analytics: counted in memory, written at shutdown at the latest.
    let store = f.s.state().versions.clone();
    for i in 0..2 {
        b.send_update(local_set(
            &b,
            &["meta"],
            "category",
            Any::from(format!("k{i}")),
        ))
        .await;
    }
    b.round_trip().await;
    drop(b);
    drop(v);
    f.s.stop().await;
    // The writer is closed; the figures are read back from the database.
    let st = store.template_stats(&t).await.unwrap();
    assert_eq!((st.views, st.edits, st.editors), (3, 8, 2), "{st:?}");
    assert_eq!(st.last_editor.as_deref(), Some(f.bob.id.as_str()));
    assert_eq!(store.list_versions(&t).await.unwrap().len(), 2);
}

async fn analytics(s: &Server, t: &str, token: &str) -> Value {
    s.get(&format!("/api/templates/{t}/analytics"), Some(token))
        .await
        .expect(200)
        .clone()
}

// ---------------------------------------------------------------------------
// Roles and deletion
// ---------------------------------------------------------------------------

/// A live edit the model refuses (any Yjs client can write one) is
/// repaired by the server at once: every client, the sender included,
/// converges on the valid form, those that take Coform's extensions are
/// told what was repaired and why, and `/problems` never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_edit_that_breaks_the_form_is_repaired_for_everyone() {
    let f = fixture().await;
    let t = template_with(&f.s, &f.ada.access, &f.ws, rich_content()).await;
    let problems = |token: String| {
        let s = &f.s;
        let t = t.clone();
        async move {
            s.get(&format!("/api/templates/{t}/problems"), Some(&token))
                .await
                .expect(200)["problems"]
                .clone()
        }
    };
    assert_eq!(problems(f.bob.access.clone()).await, json!([]));
    let before = f.s.metric("coform_schema_repaired_updates_total").await;

    let token = f.s.doc_token(&f.bob.access, &t).await;
    let opts = ConnectOpts {
        acks: true,
        ..ConnectOpts::token(&token)
    };
    let bob = WsClient::connect_with_doc(f.s.addr, &t, "bob", yrs::Doc::new(), opts)
        .await
        .synced()
        .await;
    let token = f.s.doc_token(&f.ada.access, &t).await;
    let ada = f.s.ws(&t, &token, "ada").await;
    let rows_before = ada.json()["components"]["bio"]["properties"]["rows"].clone();
    let label_before = ada.json()["components"]["tel"]["label"].clone();
    let u = local_set(
        &bob,
        &["components", "bio", "properties"],
        "rows",
        Any::from(-3),
    );
    bob.send_update(u).await;
    let u = local_set(
        &bob,
        &["components", "tel"],
        "label",
        Any::from("x".repeat(5000)),
    );
    bob.send_update(u).await;
    // Bob is told of both repairs after their updates reach him; the
    // marker he sends then travels behind both repairs to Ada, so once
    // she has it she has had both edits and their repairs.
    bob.wait_state("both repair notices", |s| s.repairs.len() >= 2)
        .await;
    let u = local_set(&bob, &["meta"], "marker", Any::from("after"));
    bob.send_update(u).await;
    for client in [&ada, &bob] {
        client
            .wait_doc("the marker", |d| doc_json(d)["meta"]["marker"] == "after")
            .await;
        let doc = client.json();
        assert_eq!(doc["components"]["bio"]["properties"]["rows"], rows_before);
        assert_eq!(doc["components"]["tel"]["label"], label_before);
        assert!(coform_model::validate(&doc).is_ok(), "{doc}");
    }
    assert_eq!(problems(f.vic.access.clone()).await, json!([]));
    assert_eq!(
        f.s.metric("coform_schema_repaired_updates_total").await - before,
        2.0
    );
    // The sender is told which repairs were of its own updates.
    let notices = bob.state().repairs.clone();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(notices.iter().all(|n| n["yours"] == true), "{notices:?}");
    assert_eq!(notices[0]["repairs"][0]["component"], "bio");
    assert_eq!(notices[0]["repairs"][0]["field"], "properties.rows");
    assert_eq!(notices[0]["repairs"][0]["action"], "restored");
    assert!(notices[1]["repairs"][0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("components.tel.label")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_read_editors_change_outsiders_see_nothing() {
    let f = fixture().await;
    let t = template_with(&f.s, &f.ada.access, &f.ws, rich_content()).await;
    save_version(&f.s, &f.ada.access, &t, "v1").await;
    let file =
        f.s.post_empty(&format!("/api/templates/{t}/export"), Some(&f.ada.access))
            .await
            .expect(200)
            .clone();
    let vic = Some(f.vic.access.as_str());
    let eve = Some(f.eve.access.as_str());

    // Viewer: every read works.
    for path in [
        format!("/api/templates/{t}/versions"),
        format!("/api/templates/{t}/versions/1"),
        format!("/api/templates/{t}/versions/1/diff/current"),
        format!("/api/templates/{t}/preview"),
        format!("/api/templates/{t}/analytics"),
        format!("/api/templates/{t}/problems"),
    ] {
        assert_eq!(f.s.get(&path, vic).await.status, 200, "viewer GET {path}");
    }
    f.s.post_empty(&format!("/api/templates/{t}/export"), vic)
        .await
        .expect(200);
    // ...and every change is 403.
    f.s.post(
        &format!("/api/templates/{t}/versions"),
        vic,
        json!({"name": "x"}),
    )
    .await
    .expect_error(403, "forbidden");
    f.s.post_empty(&format!("/api/templates/{t}/versions/1/restore"), vic)
        .await
        .expect_error(403, "forbidden");
    f.s.post(&format!("/api/templates/{t}/import"), vic, file.clone())
        .await
        .expect_error(403, "forbidden");
    f.s.post(
        &format!("/api/templates/import?workspaceId={}", f.ws),
        vic,
        file.clone(),
    )
    .await
    .expect_error(403, "forbidden");

    // Outsider: 404 for everything, exactly like a missing template.
    for path in [
        format!("/api/templates/{t}/versions"),
        format!("/api/templates/{t}/versions/1"),
        format!("/api/templates/{t}/versions/1/diff/current"),
        format!("/api/templates/{t}/preview"),
        format!("/api/templates/{t}/analytics"),
        format!("/api/templates/{t}/problems"),
    ] {
        f.s.get(&path, eve).await.expect_error(404, "not_found");
    }
    for (path, body) in [
        (format!("/api/templates/{t}/export"), Value::Null),
        (format!("/api/templates/{t}/versions"), json!({"name": "x"})),
        (
            format!("/api/templates/{t}/versions/1/restore"),
            Value::Null,
        ),
        (format!("/api/templates/{t}/import"), file.clone()),
        (
            format!("/api/templates/import?workspaceId={}", f.ws),
            file.clone(),
        ),
    ] {
        let r = if body.is_null() {
            f.s.post_empty(&path, eve).await
        } else {
            f.s.post(&path, eve, body).await
        };
        r.expect_error(404, "not_found");
    }
    // Nobody signed in: 401.
    f.s.get(&format!("/api/templates/{t}/preview"), None)
        .await
        .expect_error(401, "unauthorized");
    // The outsider's attempts left no trace.
    let list =
        f.s.get(&format!("/api/templates/{t}/versions"), Some(&f.ada.access))
            .await;
    assert_eq!(numbers(list.expect(200)), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_template_or_workspace_deletes_versions_and_figures() {
    let f = fixture().await;
    let t = template_with(&f.s, &f.ada.access, &f.ws, rich_content()).await;
    save_version(&f.s, &f.ada.access, &t, "v1").await;
    f.s.get(&format!("/api/templates/{t}"), Some(&f.ada.access))
        .await
        .expect(200);
    let store = f.s.state().versions.clone();
    assert_eq!(store.list_versions(&t).await.unwrap().len(), 1);
    assert_eq!(store.template_stats(&t).await.unwrap().views, 1);
    f.s.delete(&format!("/api/templates/{t}"), Some(&f.ada.access))
        .await
        .expect(204);
    assert!(store.list_versions(&t).await.unwrap().is_empty());
    assert_eq!(
        store.template_stats(&t).await.unwrap(),
        coform_storage::TemplateStats::default()
    );
    f.s.get(&format!("/api/templates/{t}/versions"), Some(&f.ada.access))
        .await
        .expect_error(404, "not_found");

    let t2 = template_with(&f.s, &f.ada.access, &f.ws, rich_content()).await;
    save_version(&f.s, &f.ada.access, &t2, "v1").await;
    f.s.delete(&format!("/api/workspaces/{}", f.ws), Some(&f.ada.access))
        .await
        .expect(204);
    assert!(store.list_versions(&t2).await.unwrap().is_empty());
}
