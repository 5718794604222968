//! Browsers on the configured origins may call the REST API; others get no
//! CORS grant.

mod support;

use coform::config::Config;
use support::*;

const APP: &str = "https://app.example.com";

async fn preflight(s: &Server, origin: &str) -> Resp {
    let headers = [
        ("Origin", origin),
        ("Access-Control-Request-Method", "POST"),
        (
            "Access-Control-Request-Headers",
            "content-type,authorization",
        ),
    ];
    s.request("OPTIONS", "/api/auth/login", None, &headers, Body::None)
        .await
}

#[tokio::test]
async fn only_configured_origins_get_a_cors_grant() {
    let s = Server::start_with(|c| c.cors_origins = vec![APP.into()]).await;

    let ok = preflight(&s, APP).await;
    assert_eq!(
        ok.header("access-control-allow-origin").as_deref(),
        Some(APP)
    );
    let allowed = ok
        .header("access-control-allow-headers")
        .unwrap_or_default();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );

    let other = preflight(&s, "https://evil.example.com").await;
    assert_eq!(other.header("access-control-allow-origin"), None);

    // An actual request from the allowed origin carries the grant too.
    let r = s
        .request("GET", "/healthz", None, &[("Origin", APP)], Body::None)
        .await;
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(APP)
    );
}

#[tokio::test]
async fn no_cors_grant_without_configured_origins() {
    let s = Server::start().await;
    let r = preflight(&s, APP).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[test]
fn wildcards_and_paths_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "*",
        "https://app.example.com/",
        "app.example.com",
        "https://*.example.com",
    ] {
        let mut config = Config::for_tests_with_auth(dir.path().to_path_buf());
        config.cors_origins = vec![bad.into()];
        assert!(config.validate().is_err(), "{bad} accepted");
    }
}
