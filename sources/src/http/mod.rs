//! Calling REST and GraphQL sources: an HTTP/1.1 client that dials only
//! through the [`Guard`].
//!
//! Every connection goes to addresses the guard vetted, the first hop
//! and each redirect alike; no proxy is read from the environment, no
//! pool keeps connections to hosts the guard has not just judged. A call
//! is bounded as a whole — every hop, retry, token request and byte of
//! the answer — by the source's timeout, and its answer by
//! [`HttpLimits::max_response_bytes`] after decompression.
//!
//! Parameters are bound into the request by [`template`] rules: values,
//! never code. The request is built completely before anything is
//! dialled, so a refused parameter costs no connection, and the same
//! built request is what [`request_key`] hashes for the cache.
//!
//! # Layout
//!
//! - `template`: placeholders and how a parameter is written in text and
//!   in JSON.
//! - `request`: the request a configuration and parameters make (URL,
//!   headers with credentials marked, body) and its cache key.
//! - `transport`: one exchange over a connection, TLS, and reading the
//!   answer within the size limit.
//! - `schema`: [`infer_schema`].

mod request;
mod schema;
mod template;
mod transport;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::{self, ClientConfig};
use url::Url;

use crate::config::{AuthType, Config, Kind};
use crate::dial::{Connector, TcpConnector};
use crate::error::SourceError;
use crate::guard::Guard;
use request::{hex, Header, Prepared};
use transport::{Exchange, Outgoing};

pub use schema::infer_schema;
/// The roots [`HttpClient::with_root_certificates`] takes.
pub use tokio_rustls::rustls::RootCertStore;

/// The longest upstream error text kept in an error message.
const MESSAGE_CHARS: usize = 200;

/// An OAuth 2 token is used until this long before it expires, so that
/// it does not expire on its way.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);

/// Limits every call keeps, whatever its source says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// The largest answer read, counted after decompression (default
    /// 5 MiB). Answers are held in memory whole to be parsed as JSON.
    pub max_response_bytes: u64,
    /// How long one address may take to accept a connection before the
    /// next one of the host is tried (default 5 s).
    pub connect_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_response_bytes: 5 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A token from an OAuth 2 token endpoint, and when to stop using it.
struct CachedToken {
    token: String,
    until: Instant,
}

/// The HTTP client of REST and GraphQL sources. Holds no connections
/// between calls; holds OAuth 2 tokens until shortly before they expire.
/// Share it behind an `Arc`.
pub struct HttpClient<C: Connector = TcpConnector> {
    guard: Guard,
    connector: C,
    limits: HttpLimits,
    tls: Arc<ClientConfig>,
    /// OAuth 2 tokens by token endpoint, client id, scope and a hash of
    /// the client secret (so that a changed secret fetches a new token).
    /// A std mutex: held for one lookup or insert, never across an await.
    tokens: Mutex<HashMap<String, CachedToken>>,
}

impl<C: Connector> std::fmt::Debug for HttpClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("guard", &self.guard)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// TLS checked against the web's roots, HTTP/1.1 only.
fn tls_config(roots: RootCertStore) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        // ring supports every default protocol version.
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// TLS for HTTP/1.1 clients, checked against the web's root authorities
/// (the data-source client's default; the span exporter uses it too).
pub fn web_tls_config() -> Arc<ClientConfig> {
    tls_config(web_roots())
}

fn web_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

impl<C> HttpClient<C>
where
    C: Connector,
    C::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// A client dialling through `guard` with `connector`. HTTPS
    /// certificates are checked against the web's root authorities.
    pub fn new(guard: Guard, connector: C, limits: HttpLimits) -> Self {
        HttpClient {
            guard,
            connector,
            limits,
            tls: web_tls_config(),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Checks HTTPS certificates against `roots` instead of the web's
    /// authorities: for sources behind a private certificate authority,
    /// and for tests.
    pub fn with_root_certificates(mut self, roots: RootCertStore) -> Self {
        self.tls = tls_config(roots);
        self
    }

    /// The limits this client keeps.
    pub fn limits(&self) -> HttpLimits {
        self.limits
    }

    /// Runs a REST or GraphQL source with bound params; returns the JSON
    /// answer (`data` of GraphQL). An empty answer is `null`.
    pub async fn execute(
        &self,
        kind: Kind,
        config: &Config,
        params: &Map<String, Value>,
    ) -> Result<Value, SourceError> {
        let prepared = request::prepare(kind, config, params)?;
        self.call(kind, config, prepared).await
    }

    /// REST: a JSON-schema-like description ([`infer_schema`]) of the
    /// answer to a call with `params`. GraphQL: the endpoint's types and
    /// their fields, from an introspection query sent to the source's
    /// URL with its headers and credentials (the source's own query is
    /// not run).
    pub async fn schema(
        &self,
        kind: Kind,
        config: &Config,
        params: &Map<String, Value>,
    ) -> Result<Value, SourceError> {
        match kind {
            Kind::Graphql => {
                let introspect = Config {
                    query: Some(INTROSPECTION.to_owned()),
                    variables: None,
                    ..config.clone()
                };
                let prepared = request::prepare(kind, &introspect, params)?;
                let data = self.call(kind, config, prepared).await?;
                Ok(describe_schema(&data))
            }
            _ => Ok(infer_schema(&self.execute(kind, config, params).await?)),
        }
    }

    /// Sends `prepared` within the source's timeout: the token request
    /// when the source uses OAuth 2, then the request with its redirects
    /// and retries, then the answer read and parsed as JSON (and for
    /// GraphQL, its `data` taken or its first error returned).
    async fn call(
        &self,
        kind: Kind,
        config: &Config,
        mut prepared: Prepared,
    ) -> Result<Value, SourceError> {
        let limit = config.timeout();
        let run = async {
            let token_key = if config.auth_type() == AuthType::Oauth2 {
                let (key, token) = self.oauth_token(config).await?;
                let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    SourceError::InvalidResponse {
                        message: "the token endpoint gave a token that cannot be sent".to_owned(),
                    }
                })?;
                prepared.secrets.push(token);
                prepared.set_header(hyper::header::AUTHORIZATION, value, true);
                Some(key)
            } else {
                None
            };
            let retries = config.retries.unwrap_or(0);
            let (status, body) = self.send(&prepared, retries).await?;
            if status == StatusCode::UNAUTHORIZED {
                // The token may have been revoked: the next call asks anew.
                if let Some(key) = token_key {
                    self.lock_tokens().remove(&key);
                }
            }
            if !status.is_success() {
                return Err(upstream_error(status, &body, &prepared.redactions()));
            }
            let answer = parse_json(&body)?;
            match kind {
                Kind::Graphql => graphql_data(answer, &prepared.redactions()),
                _ => Ok(answer),
            }
        };
        tokio::time::timeout(limit, run)
            .await
            .map_err(|_| SourceError::UpstreamTimeout {
                limit_ms: limit.as_millis() as u64,
            })?
    }

    /// Sends `prepared`, following redirects, and reads the answer.
    /// An idempotent request is sent up to `retries` more times after a
    /// connection failure or a 502, 503 or 504.
    async fn send(
        &self,
        prepared: &Prepared,
        retries: u8,
    ) -> Result<(StatusCode, Vec<u8>), SourceError> {
        let attempts = if prepared.idempotent {
            1 + u32::from(retries)
        } else {
            1
        };
        let mut attempt = 1;
        loop {
            let last = attempt >= attempts;
            match self.follow(prepared).await {
                Ok(exchange) if !last && is_retried_status(exchange.status) => {}
                Ok(exchange) => {
                    let status = exchange.status;
                    let body =
                        transport::read_body(exchange, self.limits.max_response_bytes).await?;
                    return Ok((status, body));
                }
                Err(e) if !last && is_connection_failure(&e) => {}
                Err(e) => return Err(e),
            }
            // A short pause, growing, so that a briefly overloaded
            // upstream is not hammered; the call's timeout bounds it.
            tokio::time::sleep(Duration::from_millis(100) * attempt).await;
            attempt += 1;
        }
    }

    /// One attempt: the request, then each redirect through
    /// [`Guard::follow`]. Credentials are dropped for good at the first
    /// hop to another origin; a 303, and a 301 or 302 answering a POST,
    /// turn the request into a GET without a body.
    async fn follow(&self, prepared: &Prepared) -> Result<Exchange, SourceError> {
        let mut url = prepared.url.clone();
        let mut method = prepared.method.clone();
        let mut headers: Vec<Header> = prepared.headers.clone();
        let mut body = prepared.body.clone();
        let mut addrs = self.guard.vet_url(&url).await?;
        let mut followed = 0;
        loop {
            let exchange = self
                .send_once(&url, &addrs, &method, &headers, body.clone())
                .await?;
            let status = exchange.status.as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok(exchange);
            }
            let location = exchange
                .headers
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| SourceError::InvalidRedirect {
                    reason: "a redirect without a readable Location".to_owned(),
                })?;
            drop(exchange);
            let (hop, next) = self.guard.follow(&url, &location, followed).await?;
            followed += 1;
            if !hop.same_origin {
                headers.retain(|h| !h.secret && hop.keeps_header(h.name.as_str()));
            }
            if status == 303 || (matches!(status, 301 | 302) && method == hyper::Method::POST) {
                if method != hyper::Method::HEAD {
                    method = hyper::Method::GET;
                }
                body = None;
                headers.retain(|h| h.name != hyper::header::CONTENT_TYPE);
            }
            url = hop.url;
            addrs = next;
        }
    }

    async fn send_once(
        &self,
        url: &Url,
        addrs: &[std::net::SocketAddr],
        method: &hyper::Method,
        headers: &[Header],
        body: Option<Bytes>,
    ) -> Result<Exchange, SourceError> {
        let host = transport::host_of(url);
        let stream =
            transport::dial(&self.connector, self.limits.connect_timeout, &host, addrs).await?;
        let out = Outgoing {
            method,
            url,
            headers,
            body,
        };
        transport::exchange(stream, &self.tls, out).await
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedToken>> {
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The OAuth 2 client-credentials token of `config`, from the cache
    /// or from its token endpoint (dialled through the guard like any
    /// source). Returns the cache key with it.
    async fn oauth_token(&self, config: &Config) -> Result<(String, String), SourceError> {
        let creds = config
            .authentication
            .as_ref()
            .map(|auth| auth.credentials.clone())
            .unwrap_or_default();
        let token_url = creds.token_url.as_deref().unwrap_or_default();
        let client_id = creds.client_id.as_deref().unwrap_or_default();
        let secret = creds.client_secret.as_deref().unwrap_or_default();
        let scope = creds.scope.as_deref().unwrap_or_default();
        let key = {
            let mut hasher = Sha256::new();
            for part in [token_url, client_id, scope] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part);
            }
            hasher.update(Sha256::digest(secret));
            hex(&hasher.finalize())
        };
        {
            let mut tokens = self.lock_tokens();
            let now = Instant::now();
            tokens.retain(|_, cached| cached.until > now);
            if let Some(cached) = tokens.get(&key) {
                return Ok((key, cached.token.clone()));
            }
        }

        let url = Url::parse(token_url).map_err(|_| SourceError::InvalidConfig {
            field: "authentication.credentials.tokenUrl".to_owned(),
            message: "is not a valid URL".to_owned(),
        })?;
        // RFC 6749 §2.3.1: the client id and secret, form-encoded, as
        // Basic credentials; the grant in the body.
        let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let mut body = "grant_type=client_credentials".to_owned();
        if !scope.is_empty() {
            body.push_str("&scope=");
            body.push_str(&form(scope));
        }
        let mut prepared = Prepared {
            method: hyper::Method::POST,
            url,
            headers: Vec::new(),
            body: Some(Bytes::from(body)),
            idempotent: false,
            secrets: vec![secret.to_owned()],
        };
        prepared.set_header(
            hyper::header::AUTHORIZATION,
            request::basic(&form(client_id), &form(secret)),
            true,
        );
        prepared.set_header(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
            false,
        );
        prepared.set_header(
            hyper::header::ACCEPT,
            HeaderValue::from_static("application/json"),
            false,
        );
        let (status, body) = self.send(&prepared, 0).await?;
        if !status.is_success() {
            return Err(
                match upstream_error(status, &body, &prepared.redactions()) {
                    SourceError::Upstream { status, message } => SourceError::Upstream {
                        status,
                        message: format!("the token endpoint refused: {message}"),
                    },
                    other => other,
                },
            );
        }
        let answer = parse_json(&body)?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SourceError::InvalidResponse {
                message: "the token endpoint's answer has no access_token".to_owned(),
            })?
            .to_owned();
        let lifetime = answer
            .get("expires_in")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .map(Duration::from_secs);
        if let Some(lifetime) = lifetime.filter(|l| *l > TOKEN_MARGIN) {
            self.lock_tokens().insert(
                key.clone(),
                CachedToken {
                    token: token.clone(),
                    until: Instant::now() + (lifetime - TOKEN_MARGIN),
                },
            );
        }
        Ok((key, token))
    }
}

/// Canonical text of the final request — method, URL after binding,
/// headers, body, and for OAuth 2 the client its token is issued to —
/// hashed with SHA-256 to a hex string: the part of a cache key that
/// says which request an answer belongs to. Secrets influence it only
/// through the hash. Fails as [`HttpClient::execute`] would on a refused
/// parameter or a bad configuration.
pub fn request_key(
    kind: Kind,
    config: &Config,
    params: &Map<String, Value>,
) -> Result<String, SourceError> {
    let prepared = request::prepare(kind, config, params)?;
    Ok(request::key_of(&prepared, config))
}

fn is_retried_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

fn is_connection_failure(e: &SourceError) -> bool {
    matches!(
        e,
        SourceError::Unreachable { .. } | SourceError::Connection { .. }
    )
}

/// An empty answer is `null`; anything else must be JSON.
fn parse_json(body: &[u8]) -> Result<Value, SourceError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| SourceError::InvalidResponse {
        message: format!("the answer is not JSON ({e})"),
    })
}

/// The error for an answer with a 4xx or 5xx status: the first GraphQL
/// error's message when the body has one, the start of the body
/// otherwise, made safe by [`clean`].
fn upstream_error(status: StatusCode, body: &[u8], secrets: &[String]) -> SourceError {
    let graphql = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| first_graphql_error(&v));
    let text = graphql.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    SourceError::Upstream {
        status: Some(status.as_u16()),
        message: clean(&text, secrets),
    }
}

fn first_graphql_error(answer: &Value) -> Option<String> {
    let first = answer.get("errors")?.as_array()?.first()?;
    Some(match first.get("message").and_then(Value::as_str) {
        Some(message) => message.to_owned(),
        None => first.to_string(),
    })
}

/// What an upstream said, fit for an error message: the source's
/// secrets cut out (an upstream may echo the credentials it was sent),
/// control characters removed, at most [`MESSAGE_CHARS`] characters.
fn clean(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret.as_str(), "[secret]");
    }
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    text.trim().chars().take(MESSAGE_CHARS).collect()
}

/// The `data` of a GraphQL answer, or its first error.
fn graphql_data(answer: Value, secrets: &[String]) -> Result<Value, SourceError> {
    if let Some(errors) = answer.get("errors").and_then(Value::as_array) {
        if !errors.is_empty() {
            let message = first_graphql_error(&answer).unwrap_or_default();
            return Err(SourceError::Upstream {
                status: None,
                message: clean(&message, secrets),
            });
        }
    }
    match answer {
        Value::Object(mut fields) => Ok(fields.remove("data").unwrap_or(Value::Null)),
        Value::Null => Ok(Value::Null),
        _ => Err(SourceError::InvalidResponse {
            message: "a GraphQL answer must be an object".to_owned(),
        }),
    }
}

/// The introspection query `schema` sends: every type with its fields,
/// their arguments and types, input fields and enum values.
const INTROSPECTION: &str = "query CoformIntrospection { __schema { \
queryType { name } mutationType { name } \
types { kind name description \
fields(includeDeprecated: false) { name description args { name type { ...TypeRef } } type { ...TypeRef } } \
inputFields { name type { ...TypeRef } } \
enumValues(includeDeprecated: false) { name } } } } \
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }";

/// The types of an introspection answer, without GraphQL's own `__`
/// types, each field's type written as in the schema language
/// (`[User!]!`).
fn describe_schema(data: &Value) -> Value {
    let schema = data.get("__schema").cloned().unwrap_or(Value::Null);
    let name_of = |v: Option<&Value>| {
        v.and_then(|t| t.get("name"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let fields_of = |list: Option<&Value>| -> Value {
        let Some(list) = list.and_then(Value::as_array) else {
            return Value::Null;
        };
        list.iter()
            .map(|field| {
                let mut out = json!({
                    "name": field.get("name").cloned().unwrap_or(Value::Null),
                    "type": type_ref(field.get("type")),
                });
                if let Some(args) = field.get("args").and_then(Value::as_array) {
                    if !args.is_empty() {
                        out["args"] = args
                            .iter()
                            .map(|arg| {
                                json!({
                                    "name": arg.get("name").cloned().unwrap_or(Value::Null),
                                    "type": type_ref(arg.get("type")),
                                })
                            })
                            .collect();
                    }
                }
                if let Some(description) = field.get("description").filter(|d| d.is_string()) {
                    out["description"] = description.clone();
                }
                out
            })
            .collect()
    };
    let types: Vec<Value> = schema
        .get("types")
        .and_then(Value::as_array)
        .map(|types| {
            types
                .iter()
                .filter(|t| {
                    !t.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("__")
                        .starts_with("__")
                })
                .map(|t| {
                    let mut out = json!({
                        "name": t.get("name").cloned().unwrap_or(Value::Null),
                        "kind": t.get("kind").cloned().unwrap_or(Value::Null),
                    });
                    if let Some(description) = t.get("description").filter(|d| d.is_string()) {
                        out["description"] = description.clone();
                    }
                    let fields = fields_of(t.get("fields"));
                    if !fields.is_null() {
                        out["fields"] = fields;
                    }
                    let inputs = fields_of(t.get("inputFields"));
                    if !inputs.is_null() {
                        out["inputFields"] = inputs;
                    }
                    if let Some(values) = t.get("enumValues").and_then(Value::as_array) {
                        out["enumValues"] = values
                            .iter()
                            .filter_map(|v| v.get("name").cloned())
                            .collect();
                    }
                    out
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "queryType": name_of(schema.get("queryType")),
        "mutationType": name_of(schema.get("mutationType")),
        "types": types,
    })
}

/// A type reference written as in the schema language: `String`,
/// `[User!]!`.
fn type_ref(t: Option<&Value>) -> Value {
    fn write(t: &Value, depth: usize) -> String {
        let inner = || {
            t.get("ofType")
                .filter(|_| depth < 16)
                .map(|inner| write(inner, depth + 1))
                .unwrap_or_else(|| "?".to_owned())
        };
        match t.get("kind").and_then(Value::as_str) {
            Some("NON_NULL") => format!("{}!", inner()),
            Some("LIST") => format!("[{}]", inner()),
            _ => t
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned(),
        }
    }
    match t {
        Some(t) if !t.is_null() => Value::String(write(t, 0)),
        _ => Value::Null,
    }
}
