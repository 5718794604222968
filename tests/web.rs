//! The designer is served by the server itself: its page on `/` and on
//! every client route, its hashed assets cached for good, the page never
//! cached and under a strict policy; API paths keep their JSON errors.

mod support;

use support::*;

/// The `/assets/...` files `index.html` loads.
fn assets_of(page: &str) -> Vec<String> {
    page.split("\"/assets/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|name| format!("/assets/{name}"))
        .collect()
}

#[tokio::test]
async fn the_designer_page_answers_its_routes_and_loads_its_own_assets() {
    let s = Server::start().await;
    let home = s.get("/", None).await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(home.text.contains("<html"), "{}", home.text);
    let csp = home.header("content-security-policy").unwrap_or_default();
    for rule in [
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(rule), "page policy without {rule}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(home.header("cache-control").as_deref(), Some("no-cache"));
    assert!(home
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));

    // Client routes, deep links included, start the same app.
    for path in [
        "/templates/t-123",
        "/signin?next=%2Ftemplates%2Fx",
        "/workspaces/w/members",
    ] {
        let r = s.get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text, home.text, "{path} is not the app's page");
    }

    let assets = assets_of(&home.text);
    assert!(
        !assets.is_empty(),
        "the page loads no script: {}",
        home.text
    );
    for asset in &assets {
        let r = s.get(asset, None).await;
        assert_eq!(r.status, 200, "{asset}");
        assert_eq!(
            r.header("cache-control").as_deref(),
            Some("public, max-age=31536000, immutable"),
            "{asset}"
        );
        assert!(!r.text.is_empty(), "{asset} is empty");
    }
}

#[tokio::test]
async fn api_paths_and_missing_assets_never_fall_back_to_the_page() {
    let s = Server::start().await;
    s.get("/api/no-such-route", None)
        .await
        .expect_error(404, "not_found");
    s.get("/api", None).await.expect_error(404, "not_found");
    s.get("/collab", None).await.expect_error(404, "not_found");
    s.get("/assets/no-such-file.js", None)
        .await
        .expect_error(404, "not_found");
    // Writes to a page path are no page.
    let r = s
        .request("POST", "/templates/x", None, &[], Body::None)
        .await;
    r.expect_error(404, "not_found");
    // API answers keep their own policy and are never cached.
    let r = s.get("/api/schema/components", None).await;
    assert_eq!(r.status, 200);
    assert!(!r
        .header("content-security-policy")
        .unwrap_or_default()
        .contains("script-src"));
}

#[tokio::test]
async fn the_offline_shell_worker_is_a_script_checked_on_every_load() {
    let s = Server::start().await;
    let r = s.get("/sw.js", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A browser registers a service worker only if it is served as a script.
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/javascript")),
        "{:?}",
        r.header("content-type")
    );
    // Its name never changes, so browsers must ask again for a new build's.
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    assert!(!r.text.contains("<html"), "the page instead of the worker");
    assert!(r.text.contains("addEventListener(\"fetch\""), "{}", r.text);
    // Its own requests are under the page's policy.
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
}
