//! What a data source is: its kind and its configuration, as the REST API
//! reads and writes them (camelCase JSON).
//!
//! One flat [`Config`] serves the three kinds; [`Config::check`] says
//! which fields each kind needs. Secrets (passwords, tokens, credential
//! headers) live in the same struct in the clear while a call is made;
//! the server seals them before they are stored and masks them before
//! they are shown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The three kinds of source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An HTTP API answering JSON.
    Rest,
    /// A GraphQL endpoint (POST, JSON).
    Graphql,
    /// A database; `engine` says which (only `postgresql`).
    Database,
}

impl Kind {
    /// The name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rest => "rest",
            Kind::Graphql => "graphql",
            Kind::Database => "database",
        }
    }
}

/// HTTP methods a REST source may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// The method as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// How a source proves who it is to the upstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthType {
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: Basic base64(username:password)`.
    Basic,
    /// A key sent in a header or a query parameter named `credentials.name`.
    ApiKey,
    /// OAuth 2 client credentials: a token fetched from
    /// `credentials.tokenUrl` with `clientId`/`clientSecret`, then sent as
    /// a bearer token.
    Oauth2,
}

impl AuthType {
    /// The name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::None => "none",
            AuthType::Bearer => "bearer",
            AuthType::Basic => "basic",
            AuthType::ApiKey => "apiKey",
            AuthType::Oauth2 => "oauth2",
        }
    }
}

/// Where an API key goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyPlacement {
    #[default]
    Header,
    Query,
}

/// The credentials of an [`Authentication`]; which fields are used
/// depends on its type. `password`, `clientSecret` and `value` are
/// secrets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credentials {
    /// Basic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Basic (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// API key: the header or query parameter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// API key: the key (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// API key: header (default) or query.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "in")]
    pub placement: Option<KeyPlacement>,
    /// OAuth 2: the token endpoint (dialled through the guard too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// OAuth 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// OAuth 2 (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// OAuth 2: space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// How a source authenticates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authentication {
    #[serde(default, rename = "type")]
    pub kind: AuthType,
    #[serde(default)]
    pub credentials: Credentials,
    /// Bearer: the token (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Whether answers are cached, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Caching {
    #[serde(default)]
    pub enabled: bool,
    /// Seconds an answer is served from the cache.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_ttl() -> u32 {
    60
}

impl Default for Caching {
    fn default() -> Self {
        Caching {
            enabled: false,
            ttl: default_ttl(),
        }
    }
}

/// How a PostgreSQL connection uses TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, plain otherwise.
    #[default]
    Prefer,
    /// TLS, without checking the certificate.
    Require,
    /// TLS with the certificate checked against the web's roots and the
    /// host name.
    VerifyFull,
}

/// The configuration of a source. Fields a kind does not use must be
/// absent ([`Config::check`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    // REST and GraphQL.
    /// `http` or `https`; may hold `{{name}}` placeholders in its path and
    /// query values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// REST only (GraphQL always POSTs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// Extra request headers; values may hold placeholders.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Names of headers in `headers` that carry secrets, beyond
    /// `Authorization`, `Cookie` and `Proxy-Authorization` which always do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_headers: Vec<String>,
    /// REST: the JSON body; a string that is exactly `"{{name}}"` becomes
    /// the parameter's typed value, other strings have placeholders
    /// replaced as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Query parameters added to the URL; values may hold placeholders.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,

    // GraphQL and database.
    /// GraphQL: the document; database: one SQL statement with
    /// `{{name}}` placeholders, bound as parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// GraphQL: variables (a JSON object, placeholders as in `body`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Value>,

    // Database.
    /// `postgresql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_mode: Option<SslMode>,

    // Every kind.
    #[serde(default)]
    pub caching: Caching,
    /// The whole call's time limit, in milliseconds (default 10 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Extra attempts after a connection failure or a 502/503/504 on an
    /// idempotent request (default 0, at most 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u8>,
}

/// Upper bounds every configuration keeps.
pub mod bounds {
    /// Longest timeout a source may ask for.
    pub const MAX_TIMEOUT_MS: u64 = 60_000;
    /// Default timeout.
    pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
    /// Most retries.
    pub const MAX_RETRIES: u8 = 3;
    /// Longest cache TTL (one day).
    pub const MAX_TTL: u32 = 86_400;
    /// Longest URL, query or body text.
    pub const MAX_TEXT: usize = 64 * 1024;
    /// Most headers or query parameters.
    pub const MAX_ENTRIES: usize = 50;
}

/// Why a configuration was refused; `field` is its JSON path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// The timeout to apply.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.timeout_ms
                .unwrap_or(bounds::DEFAULT_TIMEOUT_MS)
                .min(bounds::MAX_TIMEOUT_MS),
        )
    }

    /// The authentication type (none when absent).
    pub fn auth_type(&self) -> AuthType {
        self.authentication
            .as_ref()
            .map(|auth| auth.kind)
            .unwrap_or_default()
    }

    /// Whether `name` is a header whose value is a secret.
    pub fn is_secret_header(&self, name: &str) -> bool {
        crate::redirect::is_credential_header(name)
            || self
                .secret_headers
                .iter()
                .any(|secret| secret.eq_ignore_ascii_case(name))
    }

    /// Checks that the fields suit `kind` and stay within [`bounds`].
    /// Says nothing about whether the host may be dialled: that is the
    /// guard's part.
    pub fn check(&self, kind: Kind) -> Result<(), ConfigError> {
        let http_only = [
            ("url", self.url.is_some()),
            ("headers", !self.headers.is_empty()),
            ("queryParams", !self.query_params.is_empty()),
            ("authentication", self.authentication.is_some()),
            ("secretHeaders", !self.secret_headers.is_empty()),
        ];
        let database_only = [
            ("engine", self.engine.is_some()),
            ("host", self.host.is_some()),
            ("port", self.port.is_some()),
            ("database", self.database.is_some()),
            ("user", self.user.is_some()),
            ("password", self.password.is_some()),
            ("sslMode", self.ssl_mode.is_some()),
        ];
        let refuse = |fields: &[(&str, bool)], what: &str| -> Result<(), ConfigError> {
            match fields.iter().find(|(_, set)| *set) {
                Some((field, _)) => Err(ConfigError::new(
                    *field,
                    format!("is not used by a {what} source"),
                )),
                None => Ok(()),
            }
        };
        match kind {
            Kind::Rest | Kind::Graphql => {
                refuse(&database_only, kind.as_str())?;
                let url = self
                    .url
                    .as_deref()
                    .ok_or_else(|| ConfigError::new("url", "is required"))?;
                check_text("url", url)?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::new(
                        "url",
                        "must start with http:// or https://",
                    ));
                }
                if kind == Kind::Graphql {
                    if self.method.is_some() {
                        return Err(ConfigError::new("method", "a GraphQL source always POSTs"));
                    }
                    if self.body.is_some() {
                        return Err(ConfigError::new(
                            "body",
                            "a GraphQL source sends its query and variables",
                        ));
                    }
                    let query = self
                        .query
                        .as_deref()
                        .ok_or_else(|| ConfigError::new("query", "is required"))?;
                    check_text("query", query)?;
                    if let Some(variables) = &self.variables {
                        if !variables.is_object() {
                            return Err(ConfigError::new("variables", "must be an object"));
                        }
                    }
                } else if self.query.is_some() || self.variables.is_some() {
                    let field = if self.query.is_some() {
                        "query"
                    } else {
                        "variables"
                    };
                    return Err(ConfigError::new(field, "is not used by a rest source"));
                }
                for (what, map) in [
                    ("headers", &self.headers),
                    ("queryParams", &self.query_params),
                ] {
                    if map.len() > bounds::MAX_ENTRIES {
                        return Err(ConfigError::new(
                            what,
                            format!("at most {} entries", bounds::MAX_ENTRIES),
                        ));
                    }
                    for (name, value) in map {
                        if name.is_empty() || name.len() > 256 {
                            return Err(ConfigError::new(what, "names are 1 to 256 characters"));
                        }
                        check_text(&format!("{what}.{name}"), value)?;
                    }
                }
                for (name, value) in &self.headers {
                    if !name.bytes().all(is_token_byte) {
                        return Err(ConfigError::new(
                            format!("headers.{name}"),
                            "is not a valid header name",
                        ));
                    }
                    if value_has_control(value) {
                        return Err(ConfigError::new(
                            format!("headers.{name}"),
                            "may not hold control characters (CR, LF, NUL)",
                        ));
                    }
                }
                if let Some(auth) = &self.authentication {
                    check_auth(auth)?;
                }
            }
            Kind::Database => {
                refuse(&http_only, "database")?;
                if self.method.is_some() || self.body.is_some() || self.variables.is_some() {
                    return Err(ConfigError::new(
                        "method",
                        "method, body and variables are not used by a database source",
                    ));
                }
                match self.engine.as_deref() {
                    Some("postgresql") => {}
                    Some(_) => {
                        return Err(ConfigError::new("engine", "only postgresql is supported"))
                    }
                    None => return Err(ConfigError::new("engine", "is required")),
                }
                for (field, value) in [
                    ("host", &self.host),
                    ("database", &self.database),
                    ("user", &self.user),
                    ("query", &self.query),
                ] {
                    let value = value
                        .as_deref()
                        .ok_or_else(|| ConfigError::new(field, "is required"))?;
                    check_text(field, value)?;
                    if value.trim().is_empty() {
                        return Err(ConfigError::new(field, "may not be empty"));
                    }
                }
                if self.port == Some(0) {
                    return Err(ConfigError::new("port", "must be 1 to 65535"));
                }
            }
        }
        if self.timeout_ms == Some(0) || self.timeout_ms > Some(bounds::MAX_TIMEOUT_MS) {
            return Err(ConfigError::new(
                "timeoutMs",
                format!("must be 1 to {}", bounds::MAX_TIMEOUT_MS),
            ));
        }
        if self.retries > Some(bounds::MAX_RETRIES) {
            return Err(ConfigError::new(
                "retries",
                format!("at most {}", bounds::MAX_RETRIES),
            ));
        }
        if self.caching.ttl == 0 || self.caching.ttl > bounds::MAX_TTL {
            return Err(ConfigError::new(
                "caching.ttl",
                format!("must be 1 to {} seconds", bounds::MAX_TTL),
            ));
        }
        Ok(())
    }
}

fn check_auth(auth: &Authentication) -> Result<(), ConfigError> {
    let creds = &auth.credentials;
    let need = |field: &str, value: &Option<String>| -> Result<(), ConfigError> {
        match value.as_deref() {
            Some(v) if !v.is_empty() => {
                if value_has_control(v) {
                    Err(ConfigError::new(
                        format!("authentication.{field}"),
                        "may not hold control characters",
                    ))
                } else {
                    Ok(())
                }
            }
            _ => Err(ConfigError::new(
                format!("authentication.{field}"),
                format!("is required for {} authentication", auth.kind.as_str()),
            )),
        }
    };
    match auth.kind {
        AuthType::None => Ok(()),
        AuthType::Bearer => need("token", &auth.token),
        AuthType::Basic => {
            need("credentials.username", &creds.username)?;
            need("credentials.password", &creds.password)
        }
        AuthType::ApiKey => {
            need("credentials.name", &creds.name)?;
            need("credentials.value", &creds.value)?;
            if creds.placement != Some(KeyPlacement::Query)
                && !creds
                    .name
                    .as_deref()
                    .unwrap_or("")
                    .bytes()
                    .all(is_token_byte)
            {
                return Err(ConfigError::new(
                    "authentication.credentials.name",
                    "is not a valid header name",
                ));
            }
            Ok(())
        }
        AuthType::Oauth2 => {
            need("credentials.tokenUrl", &creds.token_url)?;
            need("credentials.clientId", &creds.client_id)?;
            need("credentials.clientSecret", &creds.client_secret)?;
            let url = creds.token_url.as_deref().unwrap_or("");
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::new(
                    "authentication.credentials.tokenUrl",
                    "must start with http:// or https://",
                ));
            }
            Ok(())
        }
    }
}

fn check_text(field: &str, value: &str) -> Result<(), ConfigError> {
    if value.len() > bounds::MAX_TEXT {
        return Err(ConfigError::new(
            field,
            format!("at most {} bytes", bounds::MAX_TEXT),
        ));
    }
    Ok(())
}

/// A byte of an HTTP token (RFC 9110 `tchar`).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// CR, LF, NUL or another control character: never allowed in a header.
pub(crate) fn value_has_control(value: &str) -> bool {
    value.chars().any(|c| c.is_control() && c != '\t')
}

/// The names of the `{{name}}` placeholders in `text`, in order (a name
/// is letters, digits, `_`, `-` and `.`; whitespace inside the braces is
/// allowed).
pub fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            names.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rest(value: Value) -> Config {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_rest_source_needs_an_http_url() {
        assert!(rest(json!({"url": "https://api.example.com/x"}))
            .check(Kind::Rest)
            .is_ok());
        let err = rest(json!({})).check(Kind::Rest).unwrap_err();
        assert_eq!(err.field, "url");
        let err = rest(json!({"url": "file:///etc/passwd"}))
            .check(Kind::Rest)
            .unwrap_err();
        assert_eq!(err.field, "url");
    }

    #[test]
    fn fields_of_another_kind_are_refused() {
        let err = rest(json!({"url": "https://a.example", "password": "x"}))
            .check(Kind::Rest)
            .unwrap_err();
        assert_eq!(err.field, "password");
        let err = rest(json!({"engine": "postgresql", "host": "h", "database": "d",
            "user": "u", "query": "select 1", "url": "https://a.example"}))
        .check(Kind::Database)
        .unwrap_err();
        assert_eq!(err.field, "url");
    }

    #[test]
    fn unknown_fields_do_not_parse() {
        assert!(serde_json::from_value::<Config>(json!({"proxy": "http://x"})).is_err());
    }

    #[test]
    fn header_values_with_crlf_are_refused() {
        let err = rest(json!({"url": "https://a.example",
            "headers": {"X-A": "1\r\nX-Injected: yes"}}))
        .check(Kind::Rest)
        .unwrap_err();
        assert_eq!(err.field, "headers.X-A");
    }

    #[test]
    fn placeholders_are_found_in_order() {
        assert_eq!(
            placeholders("/users/{{ id }}/posts?q={{q}}&x={{bad name}}"),
            vec!["id".to_owned(), "q".to_owned()]
        );
    }

    #[test]
    fn auth_needs_its_credentials() {
        let err = rest(json!({"url": "https://a.example",
            "authentication": {"type": "basic", "credentials": {"username": "u"}}}))
        .check(Kind::Rest)
        .unwrap_err();
        assert_eq!(err.field, "authentication.credentials.password");
    }
}
