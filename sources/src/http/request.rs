//! The request a source's configuration and parameters make, built
//! before anything is dialled: the URL with its placeholders bound, the
//! headers (credentials marked), the body. The same value is hashed for
//! the cache key, so what is cached is exactly what would be sent.

use base64::Engine as _;
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use url::Url;

use super::template::{bind_json, has_placeholder, pieces, render, Piece};
use crate::config::{value_has_control, AuthType, Config, KeyPlacement, Kind, Method};
use crate::error::SourceError;

/// What a parameter may contain unencoded in a path segment or a query
/// component: the unreserved characters. Everything else, `/ ? # & = %`
/// included, is percent-encoded, so a value stays inside its segment or
/// its query value.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Headers the client writes itself; a source may not set them, since
/// they decide how the request and its answer are framed.
const MANAGED_HEADERS: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "accept-encoding",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
];

/// One request header; `secret` marks credentials, which are dropped on
/// a cross-origin redirect and never shown.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    pub name: HeaderName,
    pub value: HeaderValue,
    pub secret: bool,
}

/// A request ready to send.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub method: hyper::Method,
    pub url: Url,
    pub headers: Vec<Header>,
    pub body: Option<Bytes>,
    /// Whether the request may be sent again after a failure: GET, PUT
    /// and DELETE. GraphQL always POSTs and is never retried.
    pub idempotent: bool,
    /// Secret strings of the configuration, to be cut out of whatever an
    /// upstream says back in an error.
    pub secrets: Vec<String>,
}

impl Prepared {
    /// Adds a header, replacing one of the same name.
    pub fn set_header(&mut self, name: HeaderName, value: HeaderValue, secret: bool) {
        self.headers.retain(|h| h.name != name);
        self.headers.push(Header {
            name,
            value,
            secret,
        });
    }

    /// Every text an upstream's error must not repeat: the secrets of
    /// the configuration, and the values of the secret headers as sent
    /// (`Basic <base64>` hides its password from a plain search).
    pub fn redactions(&self) -> Vec<String> {
        let mut out = self.secrets.clone();
        for header in self.headers.iter().filter(|h| h.secret) {
            if let Ok(value) = header.value.to_str() {
                out.push(value.to_owned());
                if let Some((_, credential)) = value.split_once(' ') {
                    out.push(credential.trim().to_owned());
                }
            }
        }
        out.retain(|s| s.len() >= 4);
        // Longest first, so that a secret inside another is not cut
        // out of it before the longer one is found.
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out.dedup();
        out
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.name.as_str() == name)
    }
}

/// Builds the request `config` describes for a source of `kind`, with
/// `params` bound. OAuth 2 is the one credential not added here: its
/// token is fetched when the call is made.
pub(crate) fn prepare(
    kind: Kind,
    config: &Config,
    params: &Map<String, Value>,
) -> Result<Prepared, SourceError> {
    if kind == Kind::Database {
        return Err(SourceError::InvalidConfig {
            field: "kind".to_owned(),
            message: "a database source is not called over HTTP".to_owned(),
        });
    }
    config.check(kind)?;
    let auth = config.authentication.clone().unwrap_or_default();
    let creds = &auth.credentials;
    let mut secrets: Vec<String> = [
        &auth.token,
        &creds.password,
        &creds.value,
        &creds.client_secret,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();

    let key_in_query = match (auth.kind, creds.placement) {
        (AuthType::ApiKey, Some(KeyPlacement::Query)) => Some((
            creds.name.clone().unwrap_or_default(),
            creds.value.clone().unwrap_or_default(),
        )),
        _ => None,
    };
    let template = config.url.as_deref().unwrap_or_default();
    let mut url = bind_url(template, &config.query_params, key_in_query, params)?;

    let (method, idempotent) = match kind {
        Kind::Graphql => (hyper::Method::POST, false),
        _ => {
            let method = config.method.unwrap_or_default();
            let idempotent = matches!(method, Method::Get | Method::Put | Method::Delete);
            (to_hyper(method), idempotent)
        }
    };

    let mut prepared = Prepared {
        method,
        url: url.clone(),
        headers: Vec::new(),
        body: None,
        idempotent,
        secrets: Vec::new(),
    };
    prepared.set_header(
        hyper::header::ACCEPT,
        HeaderValue::from_static("application/json"),
        false,
    );
    for (name, template) in &config.headers {
        let header = header_name(name, "headers")?;
        if MANAGED_HEADERS.contains(&header.as_str()) {
            return Err(SourceError::InvalidConfig {
                field: format!("headers.{name}"),
                message: "is written by the client itself".to_owned(),
            });
        }
        let value = render(template, params, |param, text| {
            if value_has_control(&text) {
                return Err(SourceError::ParameterRefused {
                    name: param.to_owned(),
                    reason: "a header value may not hold control characters (CR, LF, NUL)"
                        .to_owned(),
                });
            }
            Ok(text)
        })?;
        let secret = config.is_secret_header(name);
        if secret {
            secrets.push(value.clone());
        }
        prepared.set_header(header, header_value(&value, name)?, secret);
    }

    match auth.kind {
        AuthType::None | AuthType::Oauth2 => {}
        AuthType::Bearer => {
            let token = auth.token.as_deref().unwrap_or_default();
            prepared.set_header(
                hyper::header::AUTHORIZATION,
                header_value(&format!("Bearer {token}"), "authentication.token")?,
                true,
            );
        }
        AuthType::Basic => {
            let user = creds.username.as_deref().unwrap_or_default();
            let password = creds.password.as_deref().unwrap_or_default();
            prepared.set_header(hyper::header::AUTHORIZATION, basic(user, password), true);
        }
        AuthType::ApiKey => {
            if key_in_query_is_none(creds.placement) {
                let name = creds.name.as_deref().unwrap_or_default();
                let value = creds.value.as_deref().unwrap_or_default();
                prepared.set_header(
                    header_name(name, "authentication.credentials")?,
                    header_value(value, "authentication.credentials.value")?,
                    true,
                );
            }
        }
    }

    // User info written in the URL is a credential too: sent as Basic
    // when nothing else authenticates, never as part of the URL.
    if !url.username().is_empty() || url.password().is_some() {
        let user = decode(url.username());
        let password = decode(url.password().unwrap_or_default());
        secrets.push(password.clone());
        if !prepared.has_header("authorization") {
            prepared.set_header(hyper::header::AUTHORIZATION, basic(&user, &password), true);
        }
        let _ = url.set_username("");
        let _ = url.set_password(None);
        prepared.url = url;
    }

    let body = match kind {
        Kind::Graphql => {
            let variables = match &config.variables {
                Some(variables) => bind_json(variables, params)?,
                None => Value::Object(Map::new()),
            };
            // The document is sent as written: a parameter reaches a
            // GraphQL server only as a variable.
            Some(json!({ "query": config.query, "variables": variables }))
        }
        _ => config
            .body
            .as_ref()
            .map(|body| bind_json(body, params))
            .transpose()?,
    };
    if let Some(body) = body {
        let bytes = serde_json::to_vec(&body).map_err(|e| SourceError::InvalidConfig {
            field: "body".to_owned(),
            message: e.to_string(),
        })?;
        if !prepared.has_header("content-type") {
            prepared.set_header(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
                false,
            );
        }
        prepared.body = Some(Bytes::from(bytes));
    }
    secrets.retain(|s| s.len() >= 4);
    prepared.secrets = secrets;
    Ok(prepared)
}

fn key_in_query_is_none(placement: Option<KeyPlacement>) -> bool {
    placement != Some(KeyPlacement::Query)
}

fn to_hyper(method: Method) -> hyper::Method {
    match method {
        Method::Get => hyper::Method::GET,
        Method::Post => hyper::Method::POST,
        Method::Put => hyper::Method::PUT,
        Method::Patch => hyper::Method::PATCH,
        Method::Delete => hyper::Method::DELETE,
    }
}

fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// `Authorization: Basic base64(user:password)`.
pub(crate) fn basic(user: &str, password: &str) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    // Base64 is always a valid header value.
    HeaderValue::from_str(&format!("Basic {encoded}")).unwrap_or(HeaderValue::from_static(""))
}

fn header_name(name: &str, field: &str) -> Result<HeaderName, SourceError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| SourceError::InvalidConfig {
        field: field.to_owned(),
        message: "is not a valid header name".to_owned(),
    })
}

fn header_value(value: &str, field: &str) -> Result<HeaderValue, SourceError> {
    HeaderValue::from_str(value).map_err(|_| SourceError::InvalidConfig {
        field: field.to_owned(),
        message: "is not a valid header value".to_owned(),
    })
}

fn refused(name: &str, reason: &str) -> SourceError {
    SourceError::ParameterRefused {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The first placeholder's name in `text`, for an error.
fn first_placeholder(text: &str) -> String {
    pieces(text)
        .into_iter()
        .find_map(|piece| match piece {
            Piece::Placeholder(name) => Some(name.to_owned()),
            Piece::Text(_) => None,
        })
        .unwrap_or_default()
}

/// Binds the URL template: placeholders may stand in path segments and
/// query components only, each value percent-encoded as one segment or
/// one component; `query_params` and an API key are appended, encoded.
/// The URL that comes out must have the origin the template names.
fn bind_url(
    template: &str,
    query_params: &std::collections::BTreeMap<String, String>,
    api_key: Option<(String, String)>,
    params: &Map<String, Value>,
) -> Result<Url, SourceError> {
    let invalid = || SourceError::InvalidConfig {
        field: "url".to_owned(),
        message: "is not a valid http or https URL".to_owned(),
    };
    let (scheme, rest) = template.split_once("://").ok_or_else(invalid)?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(authority_end);
    if has_placeholder(scheme) || has_placeholder(authority) {
        return Err(refused(
            &first_placeholder(&template[..scheme.len() + 3 + authority.len()]),
            "a parameter may not stand in the scheme, host, port or user info of the URL",
        ));
    }
    // The fragment is never sent.
    let rest = rest.split('#').next().unwrap_or_default();
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };

    let origin_url = Url::parse(&format!("{scheme}://{authority}/")).map_err(|_| invalid())?;
    if !matches!(origin_url.scheme(), "http" | "https") {
        return Err(SourceError::UnsupportedScheme {
            scheme: origin_url.scheme().to_owned(),
        });
    }

    let mut out = format!("{scheme}://{authority}");
    if path.is_empty() {
        out.push('/');
    }
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(&bind_segment(segment, params)?);
    }

    let mut pairs: Vec<String> = Vec::new();
    if let Some(query) = query {
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let component = |text: &str| {
                render(text, params, |_, value| {
                    Ok(utf8_percent_encode(&value, COMPONENT).to_string())
                })
            };
            pairs.push(match pair.split_once('=') {
                Some((key, value)) => format!("{}={}", component(key)?, component(value)?),
                None => component(pair)?,
            });
        }
    }
    for (key, template) in query_params {
        let value = render(template, params, |_, value| Ok(value))?;
        pairs.push(encode_pair(key, &value));
    }
    if let Some((key, value)) = api_key {
        pairs.push(encode_pair(&key, &value));
    }
    if !pairs.is_empty() {
        out.push('?');
        out.push_str(&pairs.join("&"));
    }

    let url = Url::parse(&out).map_err(|_| invalid())?;
    if url.origin() != origin_url.origin() {
        return Err(refused(
            &first_placeholder(template),
            "the bound URL would leave the host the source names",
        ));
    }
    Ok(url)
}

fn encode_pair(key: &str, value: &str) -> String {
    format!(
        "{}={}",
        utf8_percent_encode(key, COMPONENT),
        utf8_percent_encode(value, COMPONENT)
    )
}

/// One path segment: each value is encoded as part of this one segment
/// (`/` becomes `%2F`), and a value that is or holds a `.` or `..`
/// segment, a bound segment that is one, or an absolute URL is refused, since it could only be meant to
/// move the request elsewhere.
fn bind_segment(segment: &str, params: &Map<String, Value>) -> Result<String, SourceError> {
    let mut last = String::new();
    let bound = render(segment, params, |name, value| {
        last = name.to_owned();
        // `..` anywhere among the value's own `/` or `\` parts too: the
        // slash is encoded, but an upstream or a proxy in front of it may
        // decode `%2F` and walk up the path.
        if value.split(['/', '\\']).any(is_dot_segment) {
            return Err(refused(
                name,
                "a path parameter may not be or contain a . or .. segment",
            ));
        }
        if value.contains("://") || value.starts_with("//") || value.starts_with("\\\\") {
            return Err(refused(
                name,
                "an absolute URL cannot stand in a path segment",
            ));
        }
        Ok(utf8_percent_encode(&value, COMPONENT).to_string())
    })?;
    if !last.is_empty() && is_dot_segment(&bound) {
        return Err(refused(&last, "the bound path segment would be . or .."));
    }
    Ok(bound)
}

/// `.` and `..`, also percent-encoded, as the URL standard reads them.
fn is_dot_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase().replace("%2e", ".");
    lower == "." || lower == ".."
}

/// The canonical text of a request, hashed: method, URL, the headers
/// sorted by name, the body, and for OAuth 2 who asks for the token
/// (the token itself changes; the client it is issued to does not).
pub(crate) fn key_of(prepared: &Prepared, config: &Config) -> String {
    let mut hasher = Sha256::new();
    let mut line = |text: &[u8]| {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text);
    };
    line(prepared.method.as_str().as_bytes());
    line(prepared.url.as_str().as_bytes());
    let mut headers: Vec<(&str, &[u8])> = prepared
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_bytes()))
        .collect();
    headers.sort();
    for (name, value) in headers {
        line(name.as_bytes());
        line(value);
    }
    line(prepared.body.as_deref().unwrap_or_default());
    if config.auth_type() == AuthType::Oauth2 {
        if let Some(auth) = &config.authentication {
            let creds = &auth.credentials;
            line(creds.token_url.as_deref().unwrap_or_default().as_bytes());
            line(creds.client_id.as_deref().unwrap_or_default().as_bytes());
            line(creds.scope.as_deref().unwrap_or_default().as_bytes());
            line(&Sha256::digest(
                creds.client_secret.as_deref().unwrap_or_default(),
            ));
        }
    }
    hex(&hasher.finalize())
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
