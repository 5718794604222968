//! The OpenAPI document is generated from the route declarations: every
//! endpoint of the API must appear in it, with its method.

mod support;

use support::*;

const ENDPOINTS: &[(&str, &str)] = &[
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/forgot-password"),
    ("post", "/api/auth/reset-password"),
    ("get", "/api/auth/verify-email"),
    ("post", "/api/auth/verify-email/resend"),
    ("get", "/api/auth/me"),
    ("put", "/api/auth/me"),
    ("delete", "/api/auth/me"),
    ("put", "/api/auth/password"),
    ("get", "/api/auth/sessions"),
    ("delete", "/api/auth/sessions"),
    ("delete", "/api/auth/sessions/{id}"),
    ("get", "/api/workspaces"),
    ("post", "/api/workspaces"),
    ("get", "/api/workspaces/{id}"),
    ("put", "/api/workspaces/{id}"),
    ("delete", "/api/workspaces/{id}"),
    ("post", "/api/workspaces/{id}/members"),
    ("get", "/api/workspaces/{id}/invitations"),
    ("delete", "/api/workspaces/{id}/invitations/{email}"),
    ("put", "/api/workspaces/{id}/members/{userId}"),
    ("delete", "/api/workspaces/{id}/members/{userId}"),
    ("get", "/api/workspaces/{id}/analytics"),
    ("post", "/api/workspaces/{id}/backup"),
    ("post", "/api/workspaces/{id}/restore"),
    ("get", "/api/templates"),
    ("post", "/api/templates"),
    ("get", "/api/templates/{id}"),
    ("put", "/api/templates/{id}"),
    ("delete", "/api/templates/{id}"),
    ("post", "/api/templates/{id}/session"),
    ("get", "/api/templates/{id}/versions"),
    ("post", "/api/templates/{id}/versions"),
    ("post", "/api/templates/{id}/export"),
    ("post", "/api/templates/{id}/import"),
    ("post", "/api/templates/import"),
    ("get", "/api/templates/{id}/preview"),
    ("get", "/api/public/templates/{id}/preview"),
    ("get", "/api/templates/{id}/analytics"),
    ("get", "/api/data-sources"),
    ("post", "/api/data-sources"),
    ("post", "/api/data-sources/test"),
    ("get", "/api/data-sources/{id}"),
    ("put", "/api/data-sources/{id}"),
    ("delete", "/api/data-sources/{id}"),
    ("post", "/api/data-sources/{id}/execute"),
    ("get", "/api/data-sources/{id}/schema"),
    ("post", "/api/data-sources/{id}/validate"),
    ("get", "/api/data-sources/{id}/health"),
    ("post", "/api/data-sources/{id}/cache"),
    ("get", "/api/schema/template"),
    ("get", "/api/schema/components"),
];

#[tokio::test]
async fn every_endpoint_is_in_the_openapi_document() {
    let s = Server::start().await;
    let r = s.get("/api/openapi.json", None).await;
    let doc = r.expect(200);
    assert!(doc.is_object(), "the document is not JSON: {}", r.text);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "not OpenAPI 3.1: {}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (method, path) in ENDPOINTS {
        if paths.get(*path).and_then(|p| p.get(*method)).is_none() {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "missing from /api/openapi.json: {missing:?}"
    );
    // Versions, diffs and restores are parameterised paths too.
    let versioned = paths
        .keys()
        .filter(|p| p.starts_with("/api/templates/{id}/versions/"))
        .count();
    assert!(
        versioned >= 3,
        "version detail, restore and diff routes: {versioned}"
    );
    // Every documented operation that needs a login says so.
    let me = &paths["/api/auth/me"]["get"];
    assert!(
        me["security"].is_array(),
        "GET /api/auth/me has no security requirement"
    );
    // ...and the public preview of a template needs none.
    let public = &paths["/api/public/templates/{id}/preview"]["get"];
    assert!(
        public["security"].is_null(),
        "the public preview asks for a login: {public}"
    );
    assert!(public["responses"]["404"].is_object(), "{public}");
}
