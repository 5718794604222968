//! An upstream for data-source tests: a small HTTP and GraphQL server
//! written for them, on 127.0.0.1 and a free port, which records every
//! request it receives.
//!
//! - `GET /countries`: a JSON list of `{code, name}`;
//! - `GET /count`: `{"n": k}`, k counting the calls (caching tests);
//! - `ANY /echo/...`: the request as it arrived (method, path, query,
//!   headers, body), so tests see exactly what was sent;
//! - `GET /status/{code}`: that status with a short body;
//! - `GET /redirect?to=URL`: a 302 to `URL`;
//! - `POST /graphql`: `{"data": {"echo": variables}}`, an introspection
//!   answer for a query naming `__schema`, `errors` when a variable
//!   `fail` is true.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// One request the upstream received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    count: AtomicU64,
}

/// The running upstream; stops when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/countries", get(countries))
            .route("/count", get(count))
            .route("/echo", any(echo))
            .route("/echo/{*rest}", any(echo))
            .route("/status/{code}", get(status))
            .route("/redirect", get(redirect))
            .route("/graphql", post(graphql))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the upstream");
        let addr = listener.local_addr().expect("upstream address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream { addr, shared, task }
    }

    /// `http://127.0.0.1:port` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.received().iter().filter(|r| r.path == path).count()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    shared.received.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    next.run(request).await
}

async fn countries() -> Json<Value> {
    Json(json!([
        {"code": "fr", "name": "France"},
        {"code": "de", "name": "Germany"},
        {"code": "jp", "name": "Japan"},
    ]))
}

async fn count(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let n = shared.count.fetch_add(1, Ordering::SeqCst) + 1;
    Json(json!({ "n": n }))
}

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
        .collect();
    let text = String::from_utf8_lossy(&body).into_owned();
    Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": headers,
        "body": serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
    }))
}

async fn status(Path(code): Path<u16>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, format!("upstream says {code}")).into_response()
}

async fn redirect(Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
    let to = q.get("to").cloned().unwrap_or_default();
    (StatusCode::FOUND, [(axum::http::header::LOCATION, to)], "").into_response()
}

async fn graphql(Json(request): Json<Value>) -> Json<Value> {
    let query = request["query"].as_str().unwrap_or_default();
    let variables = request.get("variables").cloned().unwrap_or(json!({}));
    if query.contains("__schema") {
        return Json(json!({"data": {"__schema": {
            "queryType": {"name": "Query"},
            "types": [
                {"kind": "OBJECT", "name": "Query", "fields": [
                    {"name": "countries", "type": {"kind": "LIST", "name": null,
                        "ofType": {"kind": "OBJECT", "name": "Country"}}}
                ]},
                {"kind": "OBJECT", "name": "Country", "fields": [
                    {"name": "code", "type": {"kind": "SCALAR", "name": "String"}},
                    {"name": "name", "type": {"kind": "SCALAR", "name": "String"}}
                ]}
            ]
        }}}));
    }
    if variables["fail"] == json!(true) {
        return Json(json!({"errors": [{"message": "the upstream refused the query"}]}));
    }
    Json(json!({"data": {"echo": variables, "query": query}}))
}
