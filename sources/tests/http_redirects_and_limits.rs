//! Where the client goes and how much it takes: every redirect is
//! vetted again before it is dialled, credentials stay with their
//! origin, and time, size and retries are bounded.

mod support;

use std::time::Duration;

use coform_sources::{HttpLimits, Kind, SourceError};
use serde_json::{json, Value};
use support::*;

async fn get(
    server: &TestServer,
    path: &str,
    extra: Value,
) -> (Result<Value, SourceError>, Recording) {
    let (client, recording) = client(HttpLimits {
        max_response_bytes: 1 << 20,
        connect_timeout: Duration::from_secs(5),
    });
    let mut cfg = json!({"url": server.url(path)});
    if let (Value::Object(cfg), Value::Object(extra)) = (&mut cfg, extra) {
        cfg.extend(extra);
    }
    let result = client
        .execute(Kind::Rest, &config(cfg), &params(json!({})))
        .await;
    (result, recording)
}

/// A GET of `/to?location=...` (the location percent-encoded as a value).
async fn redirected(
    server: &TestServer,
    location: &str,
    extra: Value,
) -> (Result<Value, SourceError>, Recording) {
    let (client, recording) = client(HttpLimits::default());
    let mut cfg = json!({"url": server.url("/to?location={{loc}}")});
    if let (Value::Object(cfg), Value::Object(extra)) = (&mut cfg, extra) {
        cfg.extend(extra);
    }
    let result = client
        .execute(Kind::Rest, &config(cfg), &params(json!({"loc": location})))
        .await;
    (result, recording)
}

#[tokio::test]
async fn five_redirects_are_followed_and_a_sixth_is_refused() {
    let server = TestServer::start().await;
    let (result, recording) = get(&server, "/redirect/5", json!({})).await;
    assert_eq!(result.unwrap(), json!({"arrived": true}));
    assert_eq!(recording.dialled().len(), 6);

    let (result, recording) = get(&server, "/redirect/6", json!({})).await;
    assert_eq!(code(result), "too_many_redirects");
    assert_eq!(recording.dialled().len(), 6);
}

#[tokio::test]
async fn redirects_to_refused_addresses_are_never_dialled() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    for location in [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://10.0.0.1:{port}/echo"),
        format!("http://[::ffff:10.0.0.1]:{port}/echo"),
        "http://[::ffff:169.254.169.254]/".to_owned(),
        format!("http://0x0a000001:{port}/echo"),
        format!("http://inward.test:{port}/echo"),
        format!("http://[::1]:{port}/echo"),
    ] {
        let (result, recording) = redirected(&server, &location, json!({})).await;
        let err = result.unwrap_err();
        assert_eq!(err.code(), "blocked_address", "{location}: {err}");
        // Only the server that redirected was dialled.
        assert_eq!(recording.dialled(), vec![server.addr], "{location}");
        // The error names hosts, never the URL's path.
        assert!(!err.to_string().contains("/echo"), "{err}");
    }
    for (location, expected) in [
        ("file:///etc/passwd", "unsupported_scheme"),
        ("gopher://127.0.0.1/", "unsupported_scheme"),
        ("http://", "invalid_redirect"),
    ] {
        let (result, recording) = redirected(&server, location, json!({})).await;
        assert_eq!(code(result), expected, "{location}");
        assert_eq!(recording.dialled(), vec![server.addr], "{location}");
    }
}

#[tokio::test]
async fn credentials_are_dropped_on_a_cross_origin_hop() {
    let server = TestServer::start().await;
    let secret = json!({
        "headers": {"X-Api-Token": "t-1", "X-Trace": "trace-1", "Cookie": "c=1"},
        "secretHeaders": ["X-Api-Token"],
        "authentication": {"type": "bearer", "token": "tok-abc"},
    });
    let (result, recording) = redirected(&server, "/echo/same", secret.clone()).await;
    let got = result.unwrap();
    assert_eq!(got["path"], "/echo/same");
    assert_eq!(got["headers"]["authorization"], "Bearer tok-abc");
    assert_eq!(got["headers"]["x-api-token"], "t-1");
    assert_eq!(recording.dialled(), vec![server.addr; 2]);

    let (result, recording) =
        redirected(&server, &server.other_origin("/echo/other"), secret.clone()).await;
    let got = result.unwrap();
    assert_eq!(got["path"], "/echo/other");
    assert_eq!(
        got["headers"]["host"],
        format!("other.test:{}", server.addr.port())
    );
    assert_eq!(got["headers"]["x-trace"], "trace-1");
    for dropped in ["authorization", "x-api-token", "cookie"] {
        assert!(got["headers"].get(dropped).is_none(), "{dropped}: {got}");
    }
    assert_eq!(recording.dialled(), vec![server.addr; 2]);

    // Once dropped, they stay dropped even when the chain comes back.
    let back = format!("/to?location={}", urlencode(&server.url("/echo/back")));
    let (result, _) = redirected(&server, &server.other_origin(&back), secret).await;
    let got = result.unwrap();
    assert_eq!(got["path"], "/echo/back");
    assert!(got["headers"].get("authorization").is_none(), "{got}");
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn see_other_and_found_after_a_post_become_a_get_without_body() {
    let server = TestServer::start().await;
    for (status, method, body) in [
        (303, "GET", ""),
        (302, "GET", ""),
        (301, "GET", ""),
        (307, "POST", "{\"a\":1}"),
        (308, "POST", "{\"a\":1}"),
    ] {
        let (client, _) = client(HttpLimits::default());
        let cfg = config(json!({
            "url": server.url(&format!("/to?status={status}&location=/echo/next")),
            "method": "POST", "body": {"a": 1},
        }));
        let got = client
            .execute(Kind::Rest, &cfg, &params(json!({})))
            .await
            .unwrap();
        assert_eq!(got["method"], method, "{status}");
        assert_eq!(got["body"], body, "{status}");
        assert_eq!(
            got["headers"].get("content-type").is_some(),
            !body.is_empty(),
            "{status}"
        );
    }
}

#[tokio::test]
async fn https_to_a_plain_http_server_fails_instead_of_downgrading() {
    let server = TestServer::start().await;
    let (client, recording) = client(HttpLimits::default());
    let cfg = config(json!({"url": format!("https://{}/json", server.addr)}));
    let err = client
        .execute(Kind::Rest, &cfg, &params(json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_unreachable", "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
    assert_eq!(recording.dialled(), vec![server.addr]);
}

#[tokio::test]
async fn a_slow_upstream_times_out_at_the_source_limit() {
    let server = TestServer::start().await;
    let (result, _) = get(&server, "/slow", json!({"timeoutMs": 300})).await;
    match result {
        Err(SourceError::UpstreamTimeout { limit_ms }) => assert_eq!(limit_ms, 300),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn answers_are_limited_after_decompression() {
    let server = TestServer::start().await;
    assert!(bomb_bytes().len() < 64 * 1024);
    let (result, _) = get(&server, "/bomb", json!({})).await;
    assert_eq!(code(result), "response_too_large");
    let (result, _) = get(&server, "/big", json!({})).await;
    assert_eq!(code(result), "response_too_large");
    let (result, _) = get(&server, "/gzip", json!({})).await;
    assert_eq!(result.unwrap(), sample());
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let (addr, _task) = declares_huge_body().await;
    let (client, _) = client(HttpLimits::default());
    // Were the body read, the call would wait for the timeout.
    let cfg = config(json!({"url": format!("http://{addr}/"), "timeoutMs": 60_000}));
    let result = client.execute(Kind::Rest, &cfg, &params(json!({}))).await;
    assert_eq!(code(result), "response_too_large");
}

#[tokio::test]
async fn upstream_errors_carry_the_status_and_a_clean_start_of_the_body() {
    let server = TestServer::start().await;
    let (result, _) = get(
        &server,
        "/status/500",
        json!({"authentication": {"type": "bearer", "token": "tok-very-secret"}}),
    )
    .await;
    match result {
        Err(SourceError::Upstream { status, message }) => {
            assert_eq!(status, Some(500));
            assert!(message.starts_with("failure for [secret]"), "{message}");
            assert!(!message.contains("tok-very-secret"));
            assert!(!message.chars().any(char::is_control), "{message:?}");
            assert!(message.chars().count() <= 200);
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
    let (result, _) = get(&server, "/status/404", json!({})).await;
    assert!(matches!(
        result,
        Err(SourceError::Upstream {
            status: Some(404),
            ..
        })
    ));
    let (result, _) = get(&server, "/notjson", json!({})).await;
    assert_eq!(code(result), "invalid_response");
    let (result, _) = get(&server, "/empty", json!({})).await;
    assert_eq!(result.unwrap(), Value::Null);
}

#[tokio::test]
async fn idempotent_requests_are_retried_on_503_and_others_are_not() {
    let server = TestServer::start().await;
    let (result, recording) = get(&server, "/flaky/a/2", json!({"retries": 2})).await;
    assert_eq!(result.unwrap(), json!({"attempts": 3}));
    assert_eq!(recording.dialled().len(), 3);

    let (result, _) = get(&server, "/flaky/b/2", json!({"retries": 1})).await;
    assert!(matches!(
        result,
        Err(SourceError::Upstream {
            status: Some(503),
            ..
        })
    ));
    assert_eq!(server.flaky_calls("b"), 2);

    let (result, _) = get(
        &server,
        "/flaky/c/1",
        json!({"retries": 3, "method": "POST"}),
    )
    .await;
    assert!(matches!(
        result,
        Err(SourceError::Upstream {
            status: Some(503),
            ..
        })
    ));
    assert_eq!(server.flaky_calls("c"), 1);

    let (result, _) = get(
        &server,
        "/flaky/d/1",
        json!({"retries": 1, "method": "PUT"}),
    )
    .await;
    assert_eq!(result.unwrap(), json!({"attempts": 2}));
}

#[tokio::test]
async fn connection_failures_are_retried_for_idempotent_requests_only() {
    let port = closed_port().await;
    for (method, dials) in [("GET", 3), ("POST", 1)] {
        let (client, recording) = client(HttpLimits::default());
        let cfg = config(json!({"url": format!("http://127.0.0.1:{port}/"),
            "method": method, "retries": 2}));
        let result = client.execute(Kind::Rest, &cfg, &params(json!({}))).await;
        assert_eq!(code(result), "upstream_unreachable", "{method}");
        assert_eq!(recording.dialled().len(), dials, "{method}");
    }
}

#[tokio::test]
async fn a_rest_schema_is_inferred_from_an_answer() {
    let server = TestServer::start().await;
    let (client, _) = client(HttpLimits::default());
    let schema = client
        .schema(
            Kind::Rest,
            &config(json!({"url": server.url("/json")})),
            &params(json!({})),
        )
        .await
        .unwrap();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["properties"]["total"], json!({"type": "integer"}));
    let item = &schema["properties"]["items"]["items"];
    assert_eq!(item["properties"]["extra"], json!({"type": "boolean"}));
    assert_eq!(item["required"], json!(["id", "name"]));
}
