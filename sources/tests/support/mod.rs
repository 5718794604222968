//! A local HTTP server written for the client's tests, a connector that
//! records every address dialled, and a client wired to both.
//!
//! Everything listens on 127.0.0.1. The guard's policy opens
//! 127.0.0.1/32 only; the names the tests use are answered by a
//! `StaticResolver` (`other.test` is the same server under another
//! origin, `inward.test` is a private address that must never be
//! dialled).

#![allow(dead_code)]

/// A PostgreSQL server of the test's own (initdb + pg_ctl).
pub mod postgres;

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use coform_sources::{
    Config, Connector, Guard, HttpClient, HttpLimits, Policy, SourceError, StaticResolver,
    TcpConnector,
};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The client id and secret the token endpoint accepts.
pub const CLIENT_ID: &str = "form-client";
pub const CLIENT_SECRET: &str = "s3cret:value";

/// What the server counts, for tests to read.
#[derive(Default)]
pub struct Counters {
    /// Calls per `/flaky/{key}` key.
    pub flaky: Mutex<HashMap<String, usize>>,
    /// Tokens issued by `/oauth/token`.
    pub tokens: Mutex<usize>,
}

/// A task aborted when its owner is dropped, so no server outlives its
/// test.
pub struct Task(pub tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    _task: Task,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let counters = Arc::new(Counters::default());
        let app = Router::new()
            .route("/json", get(|| async { Json(sample()) }))
            .route("/echo", any(echo))
            .route("/echo/{*rest}", any(echo))
            .route("/gzip", get(gzip))
            .route("/bomb", get(bomb))
            .route("/big", get(|| async { "x".repeat(2 << 20) }))
            .route("/slow", get(std::future::pending::<&'static str>))
            .route("/redirect/{n}", get(redirect_chain))
            .route("/to", any(redirect_to))
            .route("/status/{code}", any(status))
            .route("/notjson", get(|| async { "hello" }))
            .route("/empty", get(|| async { "" }))
            .route("/flaky/{key}/{fails}", any(flaky))
            .route("/oauth/token", post(token))
            .route("/graphql", post(graphql))
            .with_state(counters.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TestServer {
            addr,
            counters,
            _task: Task(task),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The same server under the name `other.test`: another origin.
    pub fn other_origin(&self, path: &str) -> String {
        format!("http://other.test:{}{path}", self.addr.port())
    }

    pub fn flaky_calls(&self, key: &str) -> usize {
        self.counters
            .flaky
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    pub fn tokens_issued(&self) -> usize {
        *self.counters.tokens.lock().unwrap()
    }
}

pub fn sample() -> Value {
    json!({"total": 2, "items": [{"id": 1, "name": "a"}, {"id": 2, "name": "b", "extra": true}]})
}

/// Everything the request carried, as received.
async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let headers: Map<String, Value> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            )
        })
        .collect();
    Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}

fn gzipped(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn gzip() -> Response {
    let body = gzipped(sample().to_string().as_bytes());
    ([(header::CONTENT_ENCODING, "gzip")], body).into_response()
}

/// 16 MiB of spaces (valid JSON whitespace) in about 16 KiB.
pub fn bomb_bytes() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..16 {
            encoder.write_all(&chunk).unwrap();
        }
        encoder.finish().unwrap()
    })
}

async fn bomb() -> Response {
    ([(header::CONTENT_ENCODING, "gzip")], bomb_bytes()).into_response()
}

async fn redirect_chain(Path(n): Path<u32>) -> Response {
    if n == 0 {
        Json(json!({"arrived": true})).into_response()
    } else {
        (
            StatusCode::FOUND,
            [(header::LOCATION, format!("/redirect/{}", n - 1))],
        )
            .into_response()
    }
}

/// Redirects to `?location=` with `?status=` (302 by default).
async fn redirect_to(Query(q): Query<HashMap<String, String>>) -> Response {
    let status = q
        .get("status")
        .and_then(|s| s.parse().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::FOUND);
    let location = q.get("location").cloned().unwrap_or_default();
    (status, [(header::LOCATION, location)]).into_response()
}

/// Answers with `code`, and a body that echoes the credentials it was
/// sent and holds a control character.
async fn status(Path(code): Path<u16>, headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    (
        StatusCode::from_u16(code).unwrap(),
        format!("failure\u{7} for {auth}\r\n{}", "detail ".repeat(100)),
    )
        .into_response()
}

/// 503 for the first `fails` calls of `key`, then how many calls came.
async fn flaky(
    State(counters): State<Arc<Counters>>,
    Path((key, fails)): Path<(String, usize)>,
) -> Response {
    let calls = {
        let mut flaky = counters.flaky.lock().unwrap();
        let calls = flaky.entry(key).or_default();
        *calls += 1;
        *calls
    };
    if calls <= fails {
        (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response()
    } else {
        Json(json!({"attempts": calls})).into_response()
    }
}

/// OAuth 2 client credentials: Basic client authentication, the grant
/// in a form body.
async fn token(State(counters): State<Arc<Counters>>, headers: HeaderMap, body: Bytes) -> Response {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{CLIENT_ID}:{}",
            url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect::<String>()
        ))
    );
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let authorized =
        headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()) == Some(expected.as_bytes());
    if !authorized || form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        let sent = headers
            .get(header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "sent": sent})),
        )
            .into_response();
    }
    let n = {
        let mut tokens = counters.tokens.lock().unwrap();
        *tokens += 1;
        *tokens
    };
    Json(
        json!({"access_token": format!("tok-{n}"), "token_type": "Bearer",
        "expires_in": 3600, "scope": form.get("scope")}),
    )
    .into_response()
}

/// A GraphQL endpoint: answers an introspection query with a fixed small
/// schema, `errors` when the variables ask for them, and otherwise
/// `data` made of what it was sent.
async fn graphql(headers: HeaderMap, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"errors": [{"message": "not JSON"}]})),
        )
            .into_response();
    };
    let query = request["query"].as_str().unwrap_or_default().to_owned();
    let variables = request["variables"].clone();
    if query.contains("__schema") {
        return Json(json!({"data": {"__schema": {
            "queryType": {"name": "Query"},
            "mutationType": null,
            "types": [
                {"kind": "OBJECT", "name": "Query", "description": null, "fields": [
                    {"name": "user", "description": "One user",
                     "args": [{"name": "id", "type": {"kind": "NON_NULL", "name": null,
                        "ofType": {"kind": "SCALAR", "name": "ID", "ofType": null}}}],
                     "type": {"kind": "OBJECT", "name": "User", "ofType": null}}],
                 "inputFields": null, "enumValues": null},
                {"kind": "OBJECT", "name": "User", "description": null, "fields": [
                    {"name": "id", "description": null, "args": [],
                     "type": {"kind": "NON_NULL", "name": null,
                        "ofType": {"kind": "SCALAR", "name": "ID", "ofType": null}}},
                    {"name": "tags", "description": null, "args": [],
                     "type": {"kind": "LIST", "name": null,
                        "ofType": {"kind": "SCALAR", "name": "String", "ofType": null}}}],
                 "inputFields": null, "enumValues": null},
                {"kind": "SCALAR", "name": "ID", "description": null, "fields": null,
                 "inputFields": null, "enumValues": null},
                {"kind": "OBJECT", "name": "__Schema", "description": null, "fields": [],
                 "inputFields": null, "enumValues": null},
            ],
        }}}))
        .into_response();
    }
    if let Some(message) = variables.get("fail").and_then(Value::as_str) {
        return Json(
            json!({"data": null, "errors": [{"message": message}, {"message": "second"}]}),
        )
        .into_response();
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Json(json!({"data": {"query": query, "variables": variables, "authorization": auth}}))
        .into_response()
}

/// A raw server that declares a body of a gigabyte and then sends
/// nothing: a client that reads it would wait until its timeout.
pub async fn declares_huge_body() -> (SocketAddr, Task) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                      Content-Length: 1000000000\r\n\r\n",
                )
                .await;
            held.push(socket);
        }
    });
    (addr, Task(task))
}

/// A port on 127.0.0.1 where nothing listens (bound by the system, then
/// closed).
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Plain TCP that records every address it is asked to dial.
#[derive(Clone, Default)]
pub struct Recording {
    inner: TcpConnector,
    dialled: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Recording {
    pub fn dialled(&self) -> Vec<SocketAddr> {
        self.dialled.lock().unwrap().clone()
    }
}

#[async_trait]
impl Connector for Recording {
    type Stream = TcpStream;

    async fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        self.dialled.lock().unwrap().push(addr);
        self.inner.connect(addr).await
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A client whose guard opens 127.0.0.1/32 only, and the recorder of
/// what it dials.
pub fn client(limits: HttpLimits) -> (HttpClient<Recording>, Recording) {
    let policy = Policy::new()
        .allow(["127.0.0.1/32".parse().unwrap()])
        .unwrap();
    let resolver = StaticResolver::new()
        .with("other.test", [ip("127.0.0.1")])
        .with("inward.test", [ip("10.0.0.1")])
        .with("rebind.test", [ip("127.0.0.1"), ip("192.168.1.1")]);
    let guard = Guard::new(policy, Arc::new(resolver));
    let recording = Recording::default();
    (HttpClient::new(guard, recording.clone(), limits), recording)
}

pub fn config(value: Value) -> Config {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("config: {e}"))
}

pub fn params(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("params must be an object, not {other}"),
    }
}

/// The code of an error, or a panic naming what came instead.
pub fn code(result: Result<Value, SourceError>) -> &'static str {
    match result {
        Err(e) => e.code(),
        Ok(v) => panic!("expected an error, got {v}"),
    }
}
