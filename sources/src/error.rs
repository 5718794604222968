//! [`SourceError`], why an outbound call was not made, and [`Refusal`],
//! the guard's verdict on one address.
//!
//! Operator configuration has errors of its own ([`CidrError`](crate::CidrError),
//! [`PolicyError`](crate::PolicyError)): they stop the server at start,
//! while these answer one user's request.
//!
//! Messages name hosts and addresses, never whole URLs: a source's URL
//! may carry a secret in its path or query.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::address::Reason;

/// An address the guard will not dial: which host led there, the address,
/// and the class that closed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The host as the source named it.
    pub host: String,
    /// The address it resolved to (or spelled), with the port.
    pub addr: SocketAddr,
    /// The address that was judged: `addr`'s IP, or the IPv4 address an
    /// IPv6 address carries (`::ffff:127.0.0.1` is judged as 127.0.0.1).
    pub judged: IpAddr,
    /// The class that closed it.
    pub reason: Reason,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} leads to {}", self.host, self.addr.ip())?;
        if self.judged != self.addr.ip() {
            write!(f, " (carrying {})", self.judged)?;
        }
        write!(f, ", {}, which is not dialled", self.reason)
    }
}

impl std::error::Error for Refusal {}

/// Why an outbound call was not made. [`code`](SourceError::code) gives
/// the stable name an error response carries.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The host spells or resolves to an address the policy refuses.
    /// When a name has several addresses and any one is refused, the
    /// whole call is.
    #[error("blocked address: {0}")]
    Refused(#[from] Refusal),
    /// The host is neither an address literal nor a well-formed name.
    #[error("{host:?} is not a valid host: {reason}")]
    InvalidHost { host: String, reason: &'static str },
    /// The name could not be resolved.
    #[error("{host:?} could not be resolved: {source}")]
    Unresolvable {
        host: String,
        #[source]
        source: io::Error,
    },
    /// The name resolved, to no address at all.
    #[error("{host:?} resolved to no address")]
    NoAddress { host: String },
    /// Every vetted address of the host refused or failed the connection;
    /// `addr` is the last one tried.
    #[error("could not connect to {host:?} at {addr}: {source}")]
    Unreachable {
        host: String,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// A redirect chain went on past the limit.
    #[error("more than {limit} redirects")]
    TooManyRedirects { limit: u32 },
    /// A redirect from HTTPS to plain HTTP, which would send the request
    /// (and whatever it carries) in the clear.
    #[error("a redirect from {from:?} to {to:?} would leave HTTPS")]
    InsecureRedirect { from: String, to: String },
    /// A redirect's `Location` is not a URL with a host.
    #[error("a redirect's location is not a valid URL: {reason}")]
    InvalidRedirect { reason: String },
    /// A URL or redirect names a scheme other than `http` or `https`.
    #[error("the scheme {scheme:?} is not allowed: only http and https are")]
    UnsupportedScheme { scheme: String },
    /// A parameter could not be used where its placeholder stands (an
    /// absolute URL or `..` in a path segment, a control character in a
    /// header, a missing required parameter, a value SQL cannot bind).
    #[error("parameter {name:?} refused: {reason}")]
    ParameterRefused { name: String, reason: String },
    /// The upstream did not answer within the source's time limit.
    #[error("the upstream did not answer within {limit_ms} ms")]
    UpstreamTimeout { limit_ms: u64 },
    /// The answer was larger than allowed (measured after decompression).
    #[error("the answer is larger than {limit} bytes")]
    ResponseTooLarge { limit: u64 },
    /// A query returned more rows than allowed.
    #[error("the query returned more than {limit} rows")]
    RowLimit { limit: u64 },
    /// The upstream answered with an error: an HTTP 4xx/5xx status (and
    /// the start of its body), GraphQL `errors`, or a database error.
    #[error("the upstream answered with an error{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Upstream {
        status: Option<u16>,
        message: String,
    },
    /// A database source's query cannot be run as written: more than one
    /// statement, hand-written `$1` parameters, an unclosed quote, or a
    /// column of a type that has no JSON form. Said before anything runs.
    #[error("the query cannot be run: {reason}")]
    InvalidQuery { reason: String },
    /// The database role may write or is a superuser: a source reads only.
    #[error("unsafe role: {reason}")]
    UnsafeRole { reason: String },
    /// The source already runs as many calls as it may at once.
    #[error("the source already runs {limit} calls at once")]
    Busy { limit: usize },
    /// The connection failed after it was made (TLS, protocol, reset).
    #[error("the connection to the upstream failed: {message}")]
    Connection { message: String },
    /// The answer could not be read (not JSON, broken encoding).
    #[error("the answer could not be read: {message}")]
    InvalidResponse { message: String },
    /// The source's configuration does not suit the call (checked with
    /// [`Config::check`](crate::Config::check) before anything is sent).
    /// `field` is the JSON path; the message never quotes a value.
    #[error("invalid configuration: {field}: {message}")]
    InvalidConfig { field: String, message: String },
}

impl From<crate::config::ConfigError> for SourceError {
    fn from(e: crate::config::ConfigError) -> Self {
        SourceError::InvalidConfig {
            field: e.field,
            message: e.message,
        }
    }
}

impl SourceError {
    /// The stable snake_case code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::Refused(_) => "blocked_address",
            SourceError::InvalidHost { .. } => "invalid_host",
            SourceError::Unresolvable { .. } | SourceError::NoAddress { .. } => "unresolvable_host",
            SourceError::Unreachable { .. } => "upstream_unreachable",
            SourceError::TooManyRedirects { .. } => "too_many_redirects",
            SourceError::InsecureRedirect { .. } => "insecure_redirect",
            SourceError::InvalidRedirect { .. } => "invalid_redirect",
            SourceError::UnsupportedScheme { .. } => "unsupported_scheme",
            SourceError::ParameterRefused { .. } => "parameter_refused",
            SourceError::UpstreamTimeout { .. } => "upstream_timeout",
            SourceError::ResponseTooLarge { .. } => "response_too_large",
            SourceError::RowLimit { .. } => "row_limit",
            SourceError::Upstream { .. } => "upstream_error",
            SourceError::UnsafeRole { .. } => "unsafe_role",
            SourceError::InvalidQuery { .. } => "invalid_query",
            SourceError::Busy { .. } => "source_busy",
            SourceError::Connection { .. } => "upstream_unreachable",
            SourceError::InvalidResponse { .. } => "invalid_response",
            SourceError::InvalidConfig { .. } => "invalid_config",
        }
    }

    /// The refusal, when this error is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            SourceError::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }
}
