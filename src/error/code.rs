//! The error table: every `code` an error answer can carry, with its HTTP
//! status and what it means. Nothing else in the server chooses a status
//! or spells a code; handlers name an entry ([`Code`]) and give a message.
//!
//! `docs/ERRORS.md` shows the same table to client authors; a test below
//! keeps the two identical.

use axum::http::StatusCode;

/// Declares [`Code`] from one row per entry: variant, code string, HTTP
/// status, meaning. The rows below are the whole table.
macro_rules! error_table {
    ($($variant:ident => ($code:literal, $status:ident, $meaning:literal),)*) => {
        /// An entry of the error table: what a client sees of an error.
        /// Codes are stable; clients and tests match on them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Code {
            $(
                #[doc = $meaning]
                $variant,
            )*
        }

        impl Code {
            /// Every entry, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The `code` string of the JSON answer.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }

            /// The HTTP status of the answer.
            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::$status,)*
                }
            }

            /// What the code means, for client authors.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => $meaning,)*
                }
            }
        }
    };
}

error_table! {
    InvalidJson => ("invalid_json", BAD_REQUEST,
        "The body is not JSON, or not the shape the route expects (unknown or missing fields, wrong types)."),
    BadRequest => ("bad_request", BAD_REQUEST,
        "A malformed request that is not about a body field: query parameters, a document name, a diff side."),
    InvalidMailedToken => ("invalid_token", BAD_REQUEST,
        "A token mailed to an address (verification, address change, password reset) is unknown, used, expired, or was mailed to an address the account no longer has."),
    Unauthorized => ("unauthorized", UNAUTHORIZED,
        "No credentials: the bearer token, `?token=` or metrics token is missing (or, for metrics, wrong)."),
    InvalidToken => ("invalid_token", UNAUTHORIZED,
        "An access, document or refresh token is not valid: malformed, badly signed, for another document, unknown, or its account is gone."),
    TokenExpired => ("token_expired", UNAUTHORIZED,
        "The access or document token has expired: refresh it, or ask for a new document token."),
    TokenReused => ("token_reused", UNAUTHORIZED,
        "A refresh token was presented a second time: its session has been ended."),
    SessionRevoked => ("session_revoked", UNAUTHORIZED,
        "The token's session has ended (logout, password change or reset, revoked), or its account no longer exists: sign in again."),
    InvalidCredentials => ("invalid_credentials", UNAUTHORIZED,
        "Wrong e-mail or password (never says which), or a wrong current password."),
    Forbidden => ("forbidden", FORBIDDEN,
        "The caller is a member, but their role does not allow the action."),
    NotFound => ("not_found", NOT_FOUND,
        "No such resource or route, or a resource in a workspace the caller does not belong to (never told apart)."),
    MethodNotAllowed => ("method_not_allowed", METHOD_NOT_ALLOWED,
        "The route exists, but not with this method."),
    Conflict => ("conflict", CONFLICT,
        "The request conflicts with something that already exists."),
    EmailTaken => ("email_taken", CONFLICT,
        "Another account has this e-mail address."),
    AlreadyMember => ("already_member", CONFLICT,
        "The account is already a member of the workspace."),
    AlreadyVerified => ("already_verified", CONFLICT,
        "The account's e-mail address is verified already."),
    LastOwner => ("last_owner", CONFLICT,
        "The change would leave a workspace without an owner."),
    OutOfRange => ("out_of_range", CONFLICT,
        "A number is larger than the store can hold."),
    PayloadTooLarge => ("payload_too_large", PAYLOAD_TOO_LARGE,
        "The body exceeds the route's size limit; the connection is closed."),
    ValidationFailed => ("validation_failed", UNPROCESSABLE_ENTITY,
        "Well-formed, but some fields are invalid: `details` lists each field and why."),
    BlockedAddress => ("blocked_address", UNPROCESSABLE_ENTITY,
        "A data source's host is, or resolves to, an address the outbound guard refuses (loopback, private, link-local, metadata, Coform's own port...): nothing was dialled."),
    SecretsRequired => ("secrets_required", UNPROCESSABLE_ENTITY,
        "A data source's origin or authentication type changes: its stored secrets are not carried over; `details.fields` lists the ones to send again."),
    ParameterRefused => ("parameter_refused", UNPROCESSABLE_ENTITY,
        "A data source parameter cannot stand where its placeholder is (missing, an absolute URL or `..` in a path, a control character in a header, a value the query cannot bind)."),
    InvalidQuery => ("invalid_query", UNPROCESSABLE_ENTITY,
        "A database source's SQL cannot run as a source: several statements, a hand-written `$1`, an unclosed quote, COPY, or a column type without a JSON form (cast it)."),
    UnsafeRole => ("unsafe_role", UNPROCESSABLE_ENTITY,
        "A database source's role is a superuser or may write: sources only read."),
    InvalidHost => ("invalid_host", UNPROCESSABLE_ENTITY,
        "A data source's host is neither an address nor a well-formed name."),
    UnsupportedScheme => ("unsupported_scheme", UNPROCESSABLE_ENTITY,
        "A data source's URL, or a redirect it follows, has a scheme other than http or https."),
    UnresolvableHost => ("unresolvable_host", FAILED_DEPENDENCY,
        "A data source's host name did not resolve, or resolved to no address."),
    UpstreamError => ("upstream_error", FAILED_DEPENDENCY,
        "A data source's upstream answered with an error (an HTTP 4xx/5xx, GraphQL errors, a database error); counted in its errorCount."),
    UpstreamTimeout => ("upstream_timeout", FAILED_DEPENDENCY,
        "A data source's upstream did not answer within the source's time limit."),
    UpstreamUnreachable => ("upstream_unreachable", FAILED_DEPENDENCY,
        "A data source's host could not be connected to, or the connection failed (TLS, reset)."),
    TooManyRedirects => ("too_many_redirects", FAILED_DEPENDENCY,
        "A data source's upstream redirected more than five times."),
    InsecureRedirect => ("insecure_redirect", FAILED_DEPENDENCY,
        "A data source's upstream redirected from HTTPS to plain HTTP, which is never followed."),
    InvalidRedirect => ("invalid_redirect", FAILED_DEPENDENCY,
        "A data source's upstream redirected to a location that is not a URL."),
    ResponseTooLarge => ("response_too_large", FAILED_DEPENDENCY,
        "A data source's answer exceeds the size limit (measured after decompression)."),
    RowLimit => ("row_limit", FAILED_DEPENDENCY,
        "A database source's query returned more rows than the limit."),
    InvalidResponse => ("invalid_response", FAILED_DEPENDENCY,
        "A data source's answer could not be read (not JSON, or a broken encoding)."),
    SourceBusy => ("source_busy", TOO_MANY_REQUESTS,
        "A data source already runs as many calls as it may at once: retry shortly."),
    RateLimited => ("rate_limited", TOO_MANY_REQUESTS,
        "Too many attempts: `details.retryAfter` and the `Retry-After` header give the seconds to wait."),
    Internal => ("internal", INTERNAL_SERVER_ERROR,
        "A failure of the server (such as damaged stored data); the details are in its log, never in the answer."),
    TooManyConnections => ("too_many_connections", SERVICE_UNAVAILABLE,
        "The server's WebSocket connection limit is reached: retry later."),
    Unavailable => ("unavailable", SERVICE_UNAVAILABLE,
        "The server is starting or shutting down, its store is unreachable, or the document is being unloaded: retry later."),
}

/// The table as `docs/ERRORS.md` shows it: one markdown row per entry.
pub fn markdown_rows() -> Vec<String> {
    Code::ALL
        .iter()
        .map(|c| {
            format!(
                "| `{}` | {} | {} |",
                c.as_str(),
                c.status().as_u16(),
                c.meaning()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!("../../docs/ERRORS.md");

    #[test]
    fn the_docs_list_exactly_the_table() {
        let documented: Vec<&str> = DOC.lines().filter(|l| l.starts_with("| `")).collect();
        let expected = markdown_rows();
        assert_eq!(
            documented,
            expected,
            "docs/ERRORS.md differs from src/error/code.rs; its rows should be:\n{}",
            expected.join("\n")
        );
    }

    #[test]
    fn codes_are_snake_case_and_a_code_keeps_one_status_class() {
        for c in Code::ALL {
            let s = c.as_str();
            assert!(
                !s.is_empty() && s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{s:?}"
            );
            assert!(c.status().is_client_error() || c.status().is_server_error());
        }
        // A code string used by two entries (`invalid_token`: a mailed
        // token, 400; a bearer token, 401) never spans 4xx and 5xx.
        for a in Code::ALL {
            for b in Code::ALL.iter().filter(|b| b.as_str() == a.as_str()) {
                assert_eq!(
                    a.status().is_server_error(),
                    b.status().is_server_error(),
                    "{a:?} and {b:?}"
                );
            }
        }
    }
}
