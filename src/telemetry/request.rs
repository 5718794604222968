//! Request ids and the span of each request.
//!
//! Every request gets an id: the caller's `X-Request-Id` when it is a short
//! plain token (so a proxy's id follows the request through), a fresh
//! random one otherwise. The id is in the response's `X-Request-Id` and in
//! the request's span, so every log line written while answering it — and
//! every line of a WebSocket connection it upgrades to — carries it.
//! Spans name the route template, never the raw path or query string: a
//! WebSocket's `?token=` must not reach the logs.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnFailure, DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;

/// The header that carries the request id both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being answered (a request extension).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// An id taken from the caller: at most 64 characters of letters, digits
/// and `-_.:`, so it can't forge log structure or grow without bound.
fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn fresh() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Middleware (outermost): settles the request's id and echoes it.
pub async fn assign_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(fresh, str::to_owned);
    let value = HeaderValue::from_str(&id).expect("ids are visible ASCII");
    req.headers_mut().insert(REQUEST_ID, value.clone());
    req.extensions_mut().insert(RequestId(id));
    let mut response = next.run(req).await;
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

/// The span of one request: its id, method and route template.
fn request_span(req: &Request) -> tracing::Span {
    let id = req
        .extensions()
        .get::<RequestId>()
        .map_or("", |id| id.0.as_str());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", MatchedPath::as_str);
    tracing::info_span!("request", request_id = id, method = %req.method(), route)
}

/// `tower-http`'s trace layer with Coform's span: start and end of each
/// request at debug level, server errors (5xx) at error level.
pub fn trace_layer(
) -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, fn(&Request) -> tracing::Span> {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request) -> tracing::Span)
        .on_request(DefaultOnRequest::new().level(Level::DEBUG))
        .on_response(DefaultOnResponse::new().level(Level::DEBUG))
        .on_failure(DefaultOnFailure::new().level(Level::ERROR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_taken_from_the_caller() {
        assert!(acceptable("3f2a-88.b:c_d"));
        assert!(acceptable(&"a".repeat(64)));
        assert!(!acceptable(&"a".repeat(65)));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable("x\"}{"));
        assert!(!acceptable("é"));
        let id = fresh();
        assert_eq!(id.len(), 32);
        assert!(acceptable(&id));
        assert_ne!(fresh(), id);
    }
}
