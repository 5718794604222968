//! What the client sends: parameters arrive as values only (the echo
//! route shows exactly what was received), refused parameters cost no
//! connection, and credentials go where the source says.

mod support;

use coform_sources::{HttpLimits, Kind};
use serde_json::{json, Value};
use support::*;

async fn echo(cfg: Value, p: Value) -> Value {
    let (client, _) = client(HttpLimits::default());
    client
        .execute(Kind::Rest, &config(cfg), &params(p))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_get_sends_the_bound_url_and_the_configured_headers() {
    let server = TestServer::start().await;
    let got = echo(
        json!({"url": server.url("/echo/users/{{id}}?q={{q}}"),
               "queryParams": {"page": "{{page}}"},
               "headers": {"X-Trace": "t-{{id}}"}}),
        json!({"id": 42, "q": "a b", "page": 3}),
    )
    .await;
    assert_eq!(got["method"], "GET");
    assert_eq!(got["path"], "/echo/users/42");
    assert_eq!(got["query"], "q=a%20b&page=3");
    assert_eq!(got["headers"]["x-trace"], "t-42");
    assert_eq!(got["headers"]["accept"], "application/json");
    assert_eq!(got["headers"]["accept-encoding"], "gzip, deflate");
    assert_eq!(got["headers"]["host"], server.addr.to_string());
    assert_eq!(got["body"], "");
}

#[tokio::test]
async fn injection_attempts_arrive_as_values_only() {
    let server = TestServer::start().await;
    let got = echo(
        json!({"url": server.url("/echo/items/{{id}}?q={{q}}&next={{next}}")}),
        json!({"id": "a/b?admin", "q": "' OR 1=1 --", "next": "http://evil/"}),
    )
    .await;
    assert_eq!(got["path"], "/echo/items/a%2Fb%3Fadmin");
    assert_eq!(
        got["query"],
        "q=%27%20OR%201%3D1%20--&next=http%3A%2F%2Fevil%2F"
    );
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(got["query"].as_str().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        pairs,
        vec![
            ("q".to_owned(), "' OR 1=1 --".to_owned()),
            ("next".to_owned(), "http://evil/".to_owned()),
        ]
    );

    let breaking = "\"},\"admin\":true,\"x\":\"";
    let got = echo(
        json!({"url": server.url("/echo"), "method": "POST",
               "body": {"name": "{{name}}", "note": "by {{name}}", "n": "{{n}}"}}),
        json!({"name": breaking, "n": 5}),
    )
    .await;
    assert_eq!(got["method"], "POST");
    assert_eq!(got["headers"]["content-type"], "application/json");
    let body: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"name": breaking, "note": format!("by {breaking}"), "n": 5})
    );
    assert!(body.get("admin").is_none());
}

#[tokio::test]
async fn refused_parameters_are_never_dialled() {
    let server = TestServer::start().await;
    let cases = [
        (
            json!({"url": server.url("/echo/{{id}}")}),
            json!({"id": ".."}),
        ),
        (
            json!({"url": server.url("/echo/{{id}}")}),
            json!({"id": "http://evil/"}),
        ),
        (json!({"url": server.url("/echo/{{id}}")}), json!({})),
        (
            json!({"url": server.url("/echo"), "headers": {"X-Name": "{{name}}"}}),
            json!({"name": "a\r\nX-Injected: 1"}),
        ),
        (
            json!({"url": format!("http://{{{{host}}}}:{}/echo", server.addr.port())}),
            json!({"host": "127.0.0.1"}),
        ),
        (
            json!({"url": server.url("/echo?q={{q}}")}),
            json!({"q": [1, 2]}),
        ),
    ];
    for (cfg, p) in cases {
        let (client, recording) = client(HttpLimits::default());
        let result = client
            .execute(Kind::Rest, &config(cfg.clone()), &params(p))
            .await;
        assert_eq!(code(result), "parameter_refused", "{cfg}");
        assert!(
            recording.dialled().is_empty(),
            "{cfg}: {:?}",
            recording.dialled()
        );
    }
}

#[tokio::test]
async fn credentials_are_sent_as_configured() {
    let server = TestServer::start().await;
    let got = echo(
        json!({"url": server.url("/echo"),
               "authentication": {"type": "bearer", "token": "tok-abc"}}),
        json!({}),
    )
    .await;
    assert_eq!(got["headers"]["authorization"], "Bearer tok-abc");

    let got = echo(
        json!({"url": server.url("/echo"), "authentication": {"type": "basic",
               "credentials": {"username": "ann", "password": "pw"}}}),
        json!({}),
    )
    .await;
    assert_eq!(got["headers"]["authorization"], "Basic YW5uOnB3");

    let got = echo(
        json!({"url": server.url("/echo"), "authentication": {"type": "apiKey",
               "credentials": {"name": "X-Api-Key", "value": "key-1"}}}),
        json!({}),
    )
    .await;
    assert_eq!(got["headers"]["x-api-key"], "key-1");

    let got = echo(
        json!({"url": server.url("/echo?a=1"), "authentication": {"type": "apiKey",
               "credentials": {"name": "api_key", "value": "key 2", "in": "query"}}}),
        json!({}),
    )
    .await;
    assert_eq!(got["query"], "a=1&api_key=key%202");
    assert!(got["headers"].get("api_key").is_none());
}

fn oauth(server: &TestServer, secret: &str) -> Value {
    json!({"url": server.url("/echo"), "authentication": {"type": "oauth2", "credentials": {
        "tokenUrl": server.url("/oauth/token"), "clientId": CLIENT_ID,
        "clientSecret": secret, "scope": "read"}}})
}

#[tokio::test]
async fn an_oauth_token_is_fetched_once_and_reused() {
    let server = TestServer::start().await;
    let (client, recording) = client(HttpLimits::default());
    let cfg = config(oauth(&server, CLIENT_SECRET));
    for _ in 0..3 {
        let got = client
            .execute(Kind::Rest, &cfg, &params(json!({})))
            .await
            .unwrap();
        assert_eq!(got["headers"]["authorization"], "Bearer tok-1");
    }
    assert_eq!(server.tokens_issued(), 1);
    // One dial for the token, one per call; all to the vetted server.
    assert_eq!(recording.dialled(), vec![server.addr; 4]);

    // Another client has its own cache.
    let (other, _) = support::client(HttpLimits::default());
    let got = other
        .execute(Kind::Rest, &cfg, &params(json!({})))
        .await
        .unwrap();
    assert_eq!(got["headers"]["authorization"], "Bearer tok-2");
}

#[tokio::test]
async fn a_refused_client_secret_stays_out_of_the_error() {
    let server = TestServer::start().await;
    let (client, _) = client(HttpLimits::default());
    let err = client
        .execute(
            Kind::Rest,
            &config(oauth(&server, "wrong-secret")),
            &params(json!({})),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_error");
    let text = err.to_string();
    assert!(
        text.contains("401") && text.contains("token endpoint"),
        "{text}"
    );
    // The token endpoint echoed the Basic credentials it was sent.
    use base64::Engine as _;
    let sent =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:wrong-secret"));
    assert!(text.contains("[secret]"), "{text}");
    assert!(
        !text.contains(&sent) && !text.contains("wrong-secret"),
        "{text}"
    );
    assert_eq!(server.tokens_issued(), 0);
}

#[tokio::test]
async fn a_token_endpoint_on_a_refused_address_is_never_dialled() {
    let server = TestServer::start().await;
    let (client, recording) = client(HttpLimits::default());
    let mut cfg = oauth(&server, CLIENT_SECRET);
    cfg["authentication"]["credentials"]["tokenUrl"] = json!("http://inward.test/token");
    let result = client
        .execute(Kind::Rest, &config(cfg), &params(json!({})))
        .await;
    assert_eq!(code(result), "blocked_address");
    assert!(recording.dialled().is_empty());
}

#[tokio::test]
async fn a_name_with_any_refused_address_is_never_dialled() {
    let server = TestServer::start().await;
    let (client, recording) = client(HttpLimits::default());
    let url = format!("http://rebind.test:{}/echo", server.addr.port());
    let result = client
        .execute(Kind::Rest, &config(json!({"url": url})), &params(json!({})))
        .await;
    assert_eq!(code(result), "blocked_address");
    assert!(recording.dialled().is_empty());
}

#[tokio::test]
async fn the_request_key_changes_with_what_is_sent() {
    let server = TestServer::start().await;
    let cfg = config(json!({"url": server.url("/echo/{{id}}"),
        "authentication": {"type": "bearer", "token": "tok-abc"}}));
    let a = coform_sources::http::request_key(Kind::Rest, &cfg, &params(json!({"id": 1}))).unwrap();
    let b = coform_sources::http::request_key(Kind::Rest, &cfg, &params(json!({"id": 2}))).unwrap();
    assert_ne!(a, b);
    assert!(!a.contains("tok-abc"));
    assert_eq!(
        a,
        coform_sources::http::request_key(Kind::Rest, &cfg, &params(json!({"id": 1}))).unwrap()
    );
}
