//! Shared harness of the REST API and access-control tests: an in-process
//! server with authentication on, a small JSON client for `/api`, the
//! outbox mails, forged tokens, and a y-websocket client that connects with
//! a token.
//!
//! Nothing here sleeps to wait for something to happen: every wait is for a
//! concrete event (a message, a closed socket, a status code) and is bounded
//! by a deadline that fails the test with a description of what was awaited.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::encoding::read::Cursor;
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::types::ToJson;
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{Doc, Map, ReadTxn, Transact, TransactionMut, Update, WriteTxn};

/// Bound of any single wait.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// A password every policy rule accepts.
pub const PASSWORD: &str = "correct horse 9";
/// The token-signing secret of every test server, so tests can forge tokens.
pub const JWT_SECRET: &str = "coform-api-tests-secret-0123456789abcdef";

/// Awaits `fut` for at most `timeout`, panicking with `what` if it takes
/// longer.
pub async fn within<T>(timeout: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(timeout, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The `id` string of a JSON object.
#[track_caller]
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// One HTTP answer: status, headers, raw text and the body as JSON (`Null`
/// when it is not JSON).
#[derive(Clone, Debug)]
pub struct Resp {
    pub what: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {}: {}",
            self.what, self.status, self.text
        );
        &self.json
    }

    /// Asserts a failure with our error shape
    /// `{"error": {"code", "message", "details"}}` and returns `error`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            self.status, status,
            "{}: expected {status} {code}, got {}: {}",
            self.what, self.status, self.text
        );
        let err = &self.json["error"];
        assert!(
            err.is_object(),
            "{}: {status} without the JSON error shape: {:?}",
            self.what,
            self.text
        );
        assert_eq!(
            err["code"], code,
            "{}: wrong error code: {}",
            self.what, self.text
        );
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: error without a message: {}",
            self.what,
            self.text
        );
        assert!(
            err.get("details").is_some(),
            "{}: error without `details`: {}",
            self.what,
            self.text
        );
        err
    }

    /// The `(field, message)` pairs of a 422 validation error.
    #[track_caller]
    pub fn field_errors(&self) -> Vec<(String, String)> {
        let err = self.expect_error(422, "validation_failed");
        let details = err["details"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: details is not a list: {}", self.what, self.text));
        details
            .iter()
            .map(|d| {
                (
                    d["field"].as_str().unwrap_or_default().to_owned(),
                    d["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The message of the 422 validation error on `field`.
    #[track_caller]
    pub fn field_error(&self, field: &str) -> String {
        let errors = self.field_errors();
        errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| {
                panic!(
                    "{}: no validation error on `{field}`: {errors:?}",
                    self.what
                )
            })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// A request body.
pub enum Body {
    None,
    Json(Value),
    /// Raw bytes with an optional Content-Type.
    Raw(Option<&'static str>, Vec<u8>),
}

// ---------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------

/// A registered account and the tokens of one of its sessions.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub name: String,
    pub color: String,
    pub password: String,
    pub access: String,
    pub refresh: String,
}

impl Account {
    fn from_tokens(body: &Value, password: &str) -> Account {
        let user = &body["user"];
        Account {
            id: user["id"].as_str().expect("user.id").to_owned(),
            email: user["email"].as_str().expect("user.email").to_owned(),
            name: user["name"].as_str().expect("user.name").to_owned(),
            color: user["color"].as_str().expect("user.color").to_owned(),
            password: password.to_owned(),
            access: body["accessToken"]
                .as_str()
                .expect("accessToken")
                .to_owned(),
            refresh: body["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_owned(),
        }
    }
}

/// One mail of the outbox folder.
#[derive(Clone, Debug)]
pub struct Mail {
    pub file: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Mail {
    /// The single-use token the mail carries (every 43-character base64url
    /// word in it must be that same token).
    #[track_caller]
    pub fn token(&self) -> String {
        let words: Vec<&str> = self
            .body
            .split(|c: char| c.is_whitespace() || c == '=' || c == '?' || c == '/')
            .filter(|w| {
                w.len() == 43
                    && w.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
            .collect();
        assert!(
            !words.is_empty(),
            "no token in mail {}:\n{}",
            self.file,
            self.body
        );
        assert!(
            words.iter().all(|w| *w == words[0]),
            "different tokens in one mail: {words:?}"
        );
        words[0].to_owned()
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// An in-process server with authentication on, on a temporary data dir.
pub struct Server {
    pub addr: SocketAddr,
    http: reqwest::Client,
    server: Option<coform::server::RunningServer>,
    // Declared last: dropped after the server.
    dir: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    /// Starts with `Config::for_tests_with_auth` and [`JWT_SECRET`],
    /// adjusted by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut coform::config::Config)) -> Server {
        let dir = tempfile::tempdir().expect("create temp data dir");
        let mut config = coform::config::Config::for_tests_with_auth(dir.path().to_path_buf());
        config.jwt_secret = Some(JWT_SECRET.into());
        tweak(&mut config);
        let server = within(TIMEOUT, "server start", coform::server::start(config))
            .await
            .expect("start in-process server");
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        Server {
            addr: server.addr,
            http,
            server: Some(server),
            dir,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The application state (for checks of what is stored).
    pub fn state(&self) -> &coform::server::AppState {
        self.server.as_ref().expect("server running").state()
    }

    /// Orderly shutdown.
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            within(TIMEOUT, "server shutdown", s.shutdown()).await;
        }
    }

    /// Sends one request. `headers` are added as given.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Resp {
        let url = format!("http://{}{path}", self.addr);
        let what = format!("{method} {path}");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, &url);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&v).expect("encode JSON")),
            Body::Raw(ct, bytes) => {
                let req = match ct {
                    Some(ct) => req.header("content-type", ct),
                    None => req,
                };
                req.body(bytes)
            }
        };
        let resp = within(TIMEOUT, &what, req.send())
            .await
            .unwrap_or_else(|e| panic!("{what} failed: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = within(TIMEOUT, &what, resp.text())
            .await
            .unwrap_or_else(|e| panic!("reading the body of {what}: {e}"));
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            what,
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("GET", path, token, &[], Body::None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request("POST", path, token, &[], Body::Json(body))
            .await
    }

    pub async fn post_empty(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("POST", path, token, &[], Body::None).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request("PUT", path, token, &[], Body::Json(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("DELETE", path, token, &[], Body::None).await
    }

    pub async fn delete_json(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request("DELETE", path, token, &[], Body::Json(body))
            .await
    }

    // ---- accounts

    /// Registers `email` with [`PASSWORD`]; panics unless 201.
    pub async fn register(&self, name: &str, email: &str) -> Account {
        self.register_with(name, email, PASSWORD).await
    }

    pub async fn register_with(&self, name: &str, email: &str, password: &str) -> Account {
        let r = self
            .post(
                "/api/auth/register",
                None,
                json!({"email": email, "password": password, "name": name}),
            )
            .await;
        Account::from_tokens(r.expect(201), password)
    }

    /// Logs in; the raw answer.
    pub async fn login_resp(&self, email: &str, password: &str) -> Resp {
        self.post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in (a new session); panics unless 200.
    pub async fn login(&self, email: &str, password: &str) -> Account {
        let r = self.login_resp(email, password).await;
        Account::from_tokens(r.expect(200), password)
    }

    /// Verifies the address of the account registered as `email` with the
    /// newest verification mail to it, unless it is verified already.
    pub async fn ensure_verified(&self, email: &str) {
        let user = self
            .state()
            .accounts
            .user_by_email(&email.trim().to_lowercase())
            .await
            .expect("look the account up")
            .unwrap_or_else(|| panic!("no account with the address {email}"));
        if user.email_verified {
            return;
        }
        let token = self
            .last_mail(&user.email, "Verify your Coform e-mail address")
            .token();
        self.get(
            &format!("/api/auth/verify-email?token={}", url_encode(&token)),
            None,
        )
        .await
        .expect(200);
    }

    /// `GET /api/auth/me` status with this access token.
    pub async fn me_status(&self, access: &str) -> u16 {
        self.get("/api/auth/me", Some(access)).await.status
    }

    // ---- workspaces and templates

    pub async fn create_workspace(&self, token: &str, name: &str) -> String {
        let r = self
            .post("/api/workspaces", Some(token), json!({"name": name}))
            .await;
        r.expect(201)["id"]
            .as_str()
            .expect("workspace id")
            .to_owned()
    }

    /// Adds the account of `email` as a member (201). Only a verified
    /// address is added at once, so an unverified one is first verified
    /// with the newest verification mail to it, as its owner would.
    pub async fn add_member(&self, token: &str, ws: &str, email: &str, role: &str) {
        self.ensure_verified(email).await;
        self.post(
            &format!("/api/workspaces/{ws}/members"),
            Some(token),
            json!({"email": email, "role": role}),
        )
        .await
        .expect(201);
    }

    pub async fn set_role(&self, token: &str, ws: &str, user: &str, role: &str) {
        self.put(
            &format!("/api/workspaces/{ws}/members/{user}"),
            Some(token),
            json!({"role": role}),
        )
        .await
        .expect(204);
    }

    /// Creates a template; returns its view (with content).
    pub async fn create_template(
        &self,
        token: &str,
        ws: &str,
        name: &str,
        content: Option<Value>,
    ) -> Value {
        let mut body = json!({"workspaceId": ws, "name": name});
        if let Some(c) = content {
            body["content"] = c;
        }
        self.post("/api/templates", Some(token), body)
            .await
            .expect(201)
            .clone()
    }

    /// The content of a template as `GET` shows it.
    pub async fn content(&self, token: &str, template: &str) -> Value {
        self.get(&format!("/api/templates/{template}"), Some(token))
            .await
            .expect(200)["content"]
            .clone()
    }

    /// A document token for the WebSocket.
    pub async fn doc_token(&self, token: &str, template: &str) -> String {
        self.post_empty(&format!("/api/templates/{template}/session"), Some(token))
            .await
            .expect(200)["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    // ---- metrics

    /// One unlabelled sample from `/metrics`; panics if absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let r = self.get("/metrics", None).await;
        assert_eq!(r.status, 200, "/metrics: {}", r.text);
        r.text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (n, v) = l.split_once(' ')?;
                (n == name).then(|| v.trim().parse::<f64>().ok()).flatten()
            })
            .unwrap_or_else(|| panic!("metric {name} missing from /metrics:\n{}", r.text))
    }

    // ---- mail

    /// Every mail in the outbox, oldest first.
    pub fn outbox(&self) -> Vec<Mail> {
        let dir: PathBuf = self.data_dir().join("outbox");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        // `<ms>-<random>.eml`: sort by the time, then the name.
        files.sort_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let ms: u64 = name
                .split('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (ms, name)
        });
        files
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p).expect("read mail");
                let (head, body) = text.split_once("\n\n").expect("mail has a blank line");
                let field = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                };
                Mail {
                    file: p.file_name().unwrap().to_string_lossy().to_string(),
                    to: field("To:"),
                    subject: field("Subject:"),
                    body: body.to_owned(),
                }
            })
            .collect()
    }

    /// Mails to `to` whose subject contains `subject`, oldest first.
    pub fn mails(&self, to: &str, subject: &str) -> Vec<Mail> {
        self.outbox()
            .into_iter()
            .filter(|m| m.to == to && m.subject.contains(subject))
            .collect()
    }

    /// The newest mail to `to` whose subject contains `subject`.
    #[track_caller]
    pub fn last_mail(&self, to: &str, subject: &str) -> Mail {
        self.mails(to, subject)
            .pop()
            .unwrap_or_else(|| panic!("no mail to {to} about {subject:?}: {:#?}", self.outbox()))
    }

    // ---- websockets

    pub async fn ws(&self, template: &str, token: &str, name: &str) -> WsClient {
        WsClient::connect(self.addr, template, Some(token), name).await
    }

    /// The HTTP refusal of an upgrade that must fail.
    pub async fn ws_refused(&self, template: &str, token: Option<&str>) -> Refusal {
        match WsClient::try_connect(self.addr, template, token, "refused").await {
            Ok(_) => panic!("the upgrade to {template} with {token:?} was accepted"),
            Err(r) => r,
        }
    }
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

/// The claims of a JWT, decoded without checking anything.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// `claims` signed with HS256 and `secret`.
pub fn sign_jwt(claims: &Value, secret: &[u8]) -> String {
    sign_jwt_alg(claims, secret, jsonwebtoken::Algorithm::HS256)
}

pub fn sign_jwt_alg(claims: &Value, secret: &[u8], alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("sign JWT")
}

/// `claims` as an unsigned token (`alg: none`).
pub fn unsigned_jwt(claims: &Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{payload}.")
}

/// Percent-encodes everything but unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Polls `probe` until it returns `Some`, at most `timeout`; the poll
/// interval is short and the deadline fails the test with `what`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------

/// A template document as `{"meta": {...}, "components": {...}}`.
pub fn doc_json(doc: &Doc) -> Value {
    let roots: Vec<(&str, yrs::MapRef)> = ["meta", "components"]
        .into_iter()
        .map(|r| (r, doc.get_or_insert_map(r)))
        .collect();
    let txn = doc.transact();
    let mut out = serde_json::Map::new();
    for (name, map) in roots {
        let any = map.to_json(&txn);
        out.insert(
            name.to_owned(),
            serde_json::to_value(&any).expect("Any to JSON"),
        );
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type WsSink = SplitSink<Ws, WsMessage>;

/// An upgrade the server refused with a plain HTTP answer.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub json: Value,
}

impl Refusal {
    #[track_caller]
    pub fn expect(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "upgrade refusal: {:?}", self.json);
        assert_eq!(
            self.json["error"]["code"], code,
            "upgrade refusal: {:?}",
            self.json
        );
    }
}

/// How a connection ended, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    Closed { code: u16, reason: String },
    Dropped(String),
}

/// What the client has seen.
#[derive(Clone, Debug, Default)]
pub struct ConnState {
    pub step2_received: u64,
    pub updates_received: u64,
    /// Latest awareness entry per awareness client id: (clock, JSON).
    pub awareness: HashMap<u64, (u32, String)>,
    pub apply_errors: Vec<String>,
    pub ended: Option<Ended>,
}

struct Shared {
    state: Mutex<ConnState>,
    events: watch::Sender<u64>,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut ConnState)) {
        f(&mut self.state.lock().unwrap());
        self.events.send_modify(|n| *n += 1);
    }
}

/// A y-websocket client holding a yrs document in sync with one template.
pub struct WsClient {
    pub name: String,
    pub doc: Doc,
    shared: Arc<Shared>,
    sink: Arc<tokio::sync::Mutex<WsSink>>,
    reader: JoinHandle<()>,
}

impl Drop for WsClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

pub fn ws_url(addr: SocketAddr, template: &str, token: Option<&str>) -> String {
    match token {
        Some(t) => format!("ws://{addr}/collab/{template}?token={}", url_encode(t)),
        None => format!("ws://{addr}/collab/{template}"),
    }
}

impl WsClient {
    /// Connects and waits for the first SyncStep2; panics on refusal.
    pub async fn connect(
        addr: SocketAddr,
        template: &str,
        token: Option<&str>,
        name: &str,
    ) -> WsClient {
        let c = Self::try_connect(addr, template, token, name)
            .await
            .unwrap_or_else(|r| panic!("{name}: upgrade to {template} refused: {r:?}"));
        c.wait_synced().await;
        c
    }

    /// Connects (sending SyncStep1) or returns the HTTP refusal.
    pub async fn try_connect(
        addr: SocketAddr,
        template: &str,
        token: Option<&str>,
        name: &str,
    ) -> Result<WsClient, Refusal> {
        Self::try_connect_with_doc(addr, template, token, name, Doc::new()).await
    }

    pub async fn try_connect_with_doc(
        addr: SocketAddr,
        template: &str,
        token: Option<&str>,
        name: &str,
        doc: Doc,
    ) -> Result<WsClient, Refusal> {
        use tokio_tungstenite::tungstenite::Error;
        let url = ws_url(addr, template, token);
        let ws = match within(
            TIMEOUT,
            "websocket handshake",
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        {
            Ok((ws, _)) => ws,
            Err(Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let json = resp
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                return Err(Refusal { status, json });
            }
            Err(e) => panic!("{name}: websocket handshake failed: {e}"),
        };
        let (sink, stream) = ws.split();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let (events, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            state: Mutex::new(ConnState::default()),
            events,
        });
        let reader = tokio::spawn(read_loop(stream, doc.clone(), shared.clone(), sink.clone()));
        let client = WsClient {
            name: name.to_owned(),
            doc,
            shared,
            sink,
            reader,
        };
        let sv = client.doc.transact().state_vector();
        client
            .send_msg(&Message::Sync(SyncMessage::SyncStep1(sv)))
            .await
            .expect("send SyncStep1");
        Ok(client)
    }

    pub fn client_id(&self) -> u64 {
        self.doc.client_id().get()
    }

    pub fn state(&self) -> ConnState {
        self.shared.state.lock().unwrap().clone()
    }

    pub async fn send_raw(&self, msg: WsMessage) -> Result<(), String> {
        self.sink
            .lock()
            .await
            .send(msg)
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn send_msg(&self, msg: &Message) -> Result<(), String> {
        self.send_raw(WsMessage::binary(msg.encode_v1())).await
    }

    pub async fn send_update(&self, update: Vec<u8>) {
        self.send_msg(&Message::Sync(SyncMessage::Update(update)))
            .await
            .unwrap_or_else(|e| panic!("{}: send update: {e}", self.name));
    }

    /// Runs `f` in a local transaction without sending anything; returns
    /// the update it made.
    pub fn edit_local(&self, f: impl FnOnce(&mut TransactionMut)) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        f(&mut txn);
        txn.encode_update_v1()
    }

    /// Sets `map.key = value` (a string) and sends the update.
    pub async fn set_key(&self, map: &str, key: &str, value: &str) {
        let update = self.edit_local(|txn| {
            txn.get_or_insert_map(map).insert(txn, key, value);
        });
        self.send_update(update).await;
    }

    /// The string under `map.key` in this client's document.
    pub fn get_string(&self, map: &str, key: &str) -> Option<String> {
        let m = self.doc.get_or_insert_map(map);
        let txn = self.doc.transact();
        match m.get(&txn, key)? {
            yrs::Out::Any(yrs::Any::String(s)) => Some(s.to_string()),
            _ => None,
        }
    }

    pub fn json(&self) -> Value {
        doc_json(&self.doc)
    }

    /// Announces this client's awareness state.
    pub async fn set_awareness(&self, clock: u32, json: &str) {
        let mut clients = HashMap::new();
        clients.insert(
            self.doc.client_id(),
            yrs::sync::awareness::AwarenessUpdateEntry {
                clock,
                json: json.into(),
            },
        );
        let update = yrs::sync::awareness::AwarenessUpdate { clients };
        self.send_msg(&Message::Awareness(update))
            .await
            .unwrap_or_else(|e| panic!("{}: send awareness: {e}", self.name));
    }

    /// The awareness state this client was told for `client`, as JSON.
    pub fn awareness_of(&self, client: u64) -> Option<Value> {
        let s = self.shared.state.lock().unwrap();
        let (_, json) = s.awareness.get(&client)?;
        serde_json::from_str(json).ok()
    }

    pub async fn wait_state(&self, what: &str, pred: impl Fn(&ConnState) -> bool) {
        let mut rx = self.shared.events.subscribe();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            if pred(&self.shared.state.lock().unwrap()) {
                return;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => unreachable!("the sender lives in Shared"),
                Err(_) => panic!(
                    "{}: timed out waiting for {what}; state: {:?}",
                    self.name,
                    self.state()
                ),
            }
        }
    }

    /// Waits until `pred` holds for the document; fails early if the
    /// connection ends.
    pub async fn wait_doc(&self, what: &str, pred: impl Fn(&Doc) -> bool) {
        let mut rx = self.shared.events.subscribe();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            if pred(&self.doc) {
                return;
            }
            if let Some(ended) = self.state().ended {
                if pred(&self.doc) {
                    return;
                }
                panic!(
                    "{}: connection ended ({ended:?}) waiting for {what}",
                    self.name
                );
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => unreachable!("the sender lives in Shared"),
                Err(_) => panic!(
                    "{}: timed out waiting for {what}; doc: {}; state: {:?}",
                    self.name,
                    self.json(),
                    self.state()
                ),
            }
        }
    }

    /// Waits until `map.key` is the string `value`.
    pub async fn wait_key(&self, map: &str, key: &str, value: &str) {
        self.wait_doc(&format!("{map}.{key} = {value:?}"), |_| {
            self.get_string(map, key).as_deref() == Some(value)
        })
        .await;
    }

    pub async fn wait_synced(&self) {
        self.wait_state("the first SyncStep2", |s| {
            s.step2_received > 0 || s.ended.is_some()
        })
        .await;
        let st = self.state();
        assert!(
            st.step2_received > 0,
            "{}: connection ended before sync: {:?}",
            self.name,
            st.ended
        );
    }

    /// Sends SyncStep1 and waits for its SyncStep2: everything the server
    /// queued to this client before reading it has then arrived, and every
    /// frame this client sent before has been handled by the room.
    pub async fn round_trip(&self) {
        let before = self.state().step2_received;
        let sv = self.doc.transact().state_vector();
        self.send_msg(&Message::Sync(SyncMessage::SyncStep1(sv)))
            .await
            .unwrap_or_else(|e| panic!("{}: send SyncStep1: {e}", self.name));
        self.wait_state("the SyncStep2 answering our SyncStep1", |s| {
            s.step2_received > before || s.ended.is_some()
        })
        .await;
        let st = self.state();
        assert!(
            st.step2_received > before,
            "{}: connection ended during a round trip: {:?}",
            self.name,
            st.ended
        );
    }

    /// Like [`WsClient::round_trip`], but returns `false` instead of
    /// failing when the connection ends first.
    pub async fn try_round_trip(&self) -> bool {
        let before = self.state().step2_received;
        let sv = self.doc.transact().state_vector();
        if self
            .send_msg(&Message::Sync(SyncMessage::SyncStep1(sv)))
            .await
            .is_err()
        {
            return false;
        }
        self.wait_state("a SyncStep2 or the end of the connection", |s| {
            s.step2_received > before || s.ended.is_some()
        })
        .await;
        self.state().step2_received > before
    }

    /// Like [`WsClient::set_key`], ignoring a failed send.
    pub async fn try_set_key(&self, map: &str, key: &str, value: &str) {
        let update = self.edit_local(|txn| {
            txn.get_or_insert_map(map).insert(txn, key, value);
        });
        let _ = self
            .send_msg(&Message::Sync(SyncMessage::Update(update)))
            .await;
    }

    /// Waits until the connection ends and returns how.
    pub async fn wait_ended(&self) -> Ended {
        self.wait_state("the connection to end", |s| s.ended.is_some())
            .await;
        self.state().ended.unwrap()
    }

    /// Waits for a close frame and returns its code.
    pub async fn wait_close_code(&self) -> u16 {
        match self.wait_ended().await {
            Ended::Closed { code, .. } => code,
            other => panic!("{}: expected a close frame, got {other:?}", self.name),
        }
    }

    pub async fn close(&self) {
        let _ = self.send_raw(WsMessage::Close(None)).await;
    }
}

async fn read_loop(
    mut stream: SplitStream<Ws>,
    doc: Doc,
    shared: Arc<Shared>,
    sink: Arc<tokio::sync::Mutex<WsSink>>,
) {
    loop {
        let frame = match stream.next().await {
            None => {
                shared.update(|s| {
                    s.ended.get_or_insert(Ended::Dropped("stream ended".into()));
                });
                return;
            }
            Some(Err(e)) => {
                shared.update(|s| {
                    s.ended.get_or_insert(Ended::Dropped(e.to_string()));
                });
                return;
            }
            Some(Ok(frame)) => frame,
        };
        match frame {
            WsMessage::Binary(data) => {
                let mut msgs = Vec::new();
                {
                    let mut decoder = DecoderV1::new(Cursor::new(&data));
                    for msg in MessageReader::new(&mut decoder) {
                        match msg {
                            Ok(m) => msgs.push(m),
                            Err(_) => break,
                        }
                    }
                }
                for msg in msgs {
                    handle_message(msg, &doc, &shared, &sink).await;
                }
            }
            WsMessage::Close(frame) => {
                let ended = match frame {
                    Some(f) => Ended::Closed {
                        code: u16::from(f.code),
                        reason: f.reason.to_string(),
                    },
                    None => Ended::Closed {
                        code: 1005,
                        reason: String::new(),
                    },
                };
                shared.update(|s| {
                    s.ended.get_or_insert(ended);
                });
                while let Some(Ok(_)) = stream.next().await {}
                return;
            }
            _ => {}
        }
    }
}

async fn handle_message(
    msg: Message,
    doc: &Doc,
    shared: &Shared,
    sink: &tokio::sync::Mutex<WsSink>,
) {
    match msg {
        Message::Sync(SyncMessage::SyncStep1(sv)) => {
            let diff = doc.transact().encode_state_as_update_v1(&sv);
            let reply = Message::Sync(SyncMessage::SyncStep2(diff)).encode_v1();
            let _ = sink.lock().await.send(WsMessage::binary(reply)).await;
        }
        Message::Sync(SyncMessage::SyncStep2(update)) => {
            let res = apply_remote(doc, &update);
            shared.update(|s| {
                s.step2_received += 1;
                if let Err(e) = res {
                    s.apply_errors.push(e);
                }
            });
        }
        Message::Sync(SyncMessage::Update(update)) => {
            let res = apply_remote(doc, &update);
            shared.update(|s| {
                s.updates_received += 1;
                if let Err(e) = res {
                    s.apply_errors.push(e);
                }
            });
        }
        Message::Awareness(update) => shared.update(|s| {
            for (client, entry) in update.clients {
                let e = s
                    .awareness
                    .entry(client.get())
                    .or_insert((0, String::new()));
                if entry.clock >= e.0 {
                    *e = (entry.clock, entry.json.to_string());
                }
            }
        }),
        _ => {}
    }
}

fn apply_remote(doc: &Doc, update: &[u8]) -> Result<(), String> {
    let update = Update::decode_v1(update).map_err(|e| format!("decode: {e}"))?;
    let mut txn = doc.transact_mut_with("remote");
    txn.apply_update(update).map_err(|e| format!("apply: {e}"))
}
