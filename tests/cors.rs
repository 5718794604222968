//! Browsers on the configured origins may call the REST API; others get no
//! CORS grant.

use coform::config::Config;

async fn preflight(base: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{base}/api/auth/login"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,authorization",
        )
        .send()
        .await
        .expect("preflight request")
}

#[tokio::test]
async fn only_configured_origins_get_a_cors_grant() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests_with_auth(dir.path().to_path_buf());
    config.cors_origins = vec!["https://app.example.com".into()];
    let server = coform::server::start(config).await.expect("start");
    let base = format!("http://{}", server.addr);

    let ok = preflight(&base, "https://app.example.com").await;
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://app.example.com")
    );
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );

    let other = preflight(&base, "https://evil.example.com").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // An actual request from the allowed origin carries the grant too.
    let r = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn no_cors_grant_without_configured_origins() {
    let dir = tempfile::tempdir().unwrap();
    let server = coform::server::start(Config::for_tests_with_auth(dir.path().to_path_buf()))
        .await
        .expect("start");
    let r = preflight(
        &format!("http://{}", server.addr),
        "https://app.example.com",
    )
    .await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    server.shutdown().await;
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
