//! `isPublic` grants what it says: anyone may read the preview page of a
//! public template without an account — and nothing more. A template that
//! is not public is indistinguishable from one that does not exist, and
//! turning the flag off closes the page at once.

mod support;

use serde_json::{json, Value};
use support::*;

const PUBLIC: &str = "/api/public/templates";

fn public_path(t: &str) -> String {
    format!("{PUBLIC}/{t}/preview")
}

/// A form whose texts are easy to find in the page.
fn content() -> Value {
    json!({
        "meta": {"name": "Sign-up sheet"},
        "components": {
            "name": {"id": "name", "type": "text", "label": "Your name", "index": "a0",
                     "validation": {"required": true}},
            "go": {"id": "go", "type": "button", "label": "Send", "index": "a1",
                   "properties": {"action": "submit"}}
        }
    })
}

async fn set_public(s: &Server, token: &str, t: &str, public: bool) {
    let r = s
        .put(
            &format!("/api/templates/{t}"),
            Some(token),
            json!({ "isPublic": public }),
        )
        .await;
    assert_eq!(r.expect(200)["isPublic"], public, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_public_template_is_readable_without_an_account_and_nothing_else_is() {
    let Owned { s, ada, ws } = owned().await;
    let bob = s.register("Bob", "bob@example.com").await;
    s.add_member(&ada.access, &ws, &bob.email, "editor").await;
    let t = id_of(
        &s.create_template(&ada.access, &ws, "Internal name", Some(content()))
            .await,
    );
    let private = id_of(
        &s.create_template(&ada.access, &ws, "Private", Some(content()))
            .await,
    );

    // Not public yet: the same 404 as an id that does not exist.
    let closed = s.get(&public_path(&t), None).await;
    closed.expect_error(404, "not_found");
    let unknown = s.get(&public_path("no-such-template"), None).await;
    unknown.expect_error(404, "not_found");
    assert_eq!(closed.text, unknown.text);

    set_public(&s, &ada.access, &t, true).await;
    let r = s.get(&public_path(&t), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    for text in ["Sign-up sheet", "Your name", "Send"] {
        assert!(r.text.contains(text), "{text} missing from the page");
    }
    // Nothing but the form: no workspace, no member, no author, no script.
    for leak in [
        "Forms",
        "Ada",
        "ada@example.com",
        "Bob",
        "bob@example.com",
        ada.id.as_str(),
        ws.as_str(),
        "<script",
    ] {
        assert!(!r.text.contains(leak), "the page shows {leak:?}");
    }
    // The same page members get.
    let member = s
        .get(&format!("/api/templates/{t}/preview"), Some(&bob.access))
        .await;
    member.expect(200);
    assert_eq!(member.text, r.text);

    // The other template of the workspace stays closed.
    s.get(&public_path(&private), None)
        .await
        .expect_error(404, "not_found");
    // Public means readable, not writable or openable: the template, its
    // editor socket and document tokens still need a member's token.
    s.get(&format!("/api/templates/{t}"), None)
        .await
        .expect_error(401, "unauthorized");
    s.put(
        &format!("/api/templates/{t}"),
        None,
        json!({"name": "Mine"}),
    )
    .await
    .expect_error(401, "unauthorized");
    s.post_empty(&format!("/api/templates/{t}/session"), None)
        .await
        .expect_error(401, "unauthorized");
    s.ws_refused(&t, None).await.expect(401, "unauthorized");
    // A stranger's token opens nothing more either.
    let eve = s.register("Eve", "eve@example.com").await;
    s.get(&format!("/api/templates/{t}"), Some(&eve.access))
        .await
        .expect_error(404, "not_found");
    s.get(&public_path(&t), Some(&eve.access)).await.expect(200);

    // Turning it off closes the page at once.
    set_public(&s, &ada.access, &t, false).await;
    let r = s.get(&public_path(&t), None).await;
    r.expect_error(404, "not_found");
    assert_eq!(r.text, unknown.text);

    // A deleted public template is gone too.
    set_public(&s, &ada.access, &t, true).await;
    s.get(&public_path(&t), None).await.expect(200);
    s.delete(&format!("/api/templates/{t}"), Some(&ada.access))
        .await
        .expect(204);
    s.get(&public_path(&t), None)
        .await
        .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_public_page_shows_live_edits_and_is_not_a_view() {
    let Owned { s, ada, ws } = owned().await;
    let t = id_of(
        &s.create_template(&ada.access, &ws, "Form", Some(content()))
            .await,
    );
    set_public(&s, &ada.access, &t, true).await;
    let mut c = content();
    c["components"]["name"]["label"] = json!("Full name");
    s.put(
        &format!("/api/templates/{t}"),
        Some(&ada.access),
        json!({ "content": c }),
    )
    .await
    .expect(200);
    let r = s.get(&public_path(&t), None).await;
    assert!(r.expect(200).is_null() && r.text.contains("Full name"));
    // Anyone could inflate a count of anonymous reads: only the member's
    // preview is a view.
    s.get(&format!("/api/templates/{t}/preview"), Some(&ada.access))
        .await
        .expect(200);
    let figures = s
        .get(&format!("/api/templates/{t}/analytics"), Some(&ada.access))
        .await;
    assert_eq!(figures.expect(200)["views"], 1, "{}", figures.text);
}
