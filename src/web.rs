//! The browser designer, served from the binary itself.
//!
//! `web/dist` (built from `web/` and committed) is embedded at compile
//! time, so `coform serve` needs no other files. Content-hashed files
//! under `/assets/` are cached for a year; `index.html` answers every
//! other page path (the app routes on the client) and is never cached,
//! so a new build reaches browsers at their next load. `/sw.js`, the
//! service worker that keeps the app shell for offline use (from
//! `web/public/`), is checked again on every load too, under the page's
//! policy. `/api/*` and `/collab/*` never fall back to the page: an
//! unknown API route keeps its JSON 404.

use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir};

use crate::error::ApiError;

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web/dist");

/// The page's policy: its own scripts, styles and connections only (the
/// API and `/collab` are on this origin), no inline code, no framing.
pub const DESIGNER_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Hashed assets never change under their name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page and unhashed files are checked again on every load.
const REVALIDATE: &str = "no-cache";
/// The service worker; a browser refuses to run a page in its place.
const SERVICE_WORKER: &str = "sw.js";

/// What a request no route took gets: a designer file or page for `GET`
/// and `HEAD` outside the API, the API's JSON 404 otherwise.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let api = ["/api", "/collab"].iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    if api || !(method == Method::GET || method == Method::HEAD) {
        return ApiError::NotFound("route").into_response();
    }
    let rel = path.strip_prefix('/').unwrap_or(path);
    let asset = rel.starts_with("assets/");
    match DIST.get_file(rel) {
        Some(f) if asset => file(rel, f.contents(), IMMUTABLE),
        None if asset || rel == SERVICE_WORKER => ApiError::NotFound("asset").into_response(),
        Some(f) if rel == SERVICE_WORKER => with_policy(file(rel, f.contents(), REVALIDATE)),
        Some(f) if rel != "index.html" && !rel.contains('/') => file(rel, f.contents(), REVALIDATE),
        _ => index(),
    }
}

/// `index.html`, which starts the app on any of its routes.
fn index() -> Response {
    let Some(page) = DIST.get_file("index.html") else {
        return ApiError::NotFound("route").into_response();
    };
    with_policy(file("index.html", page.contents(), REVALIDATE))
}

/// A response under the designer's policy (a service worker's own fetches
/// follow the policy its script was served with).
fn with_policy(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DESIGNER_CSP),
    );
    r
}

fn file(name: &str, body: &'static [u8], cache: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type(name)),
        (header::CACHE_CONTROL, cache),
    ];
    (StatusCode::OK, headers, body).into_response()
}

/// The media type of a built file, by its extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_files_get_their_media_type() {
        assert_eq!(
            content_type("assets/index-abc.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("sw.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("assets/a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    #[test]
    fn the_bundle_has_a_page_that_loads_only_its_own_files() {
        let page = DIST
            .get_file("index.html")
            .expect("web/dist/index.html is built");
        let html = std::str::from_utf8(page.contents()).unwrap();
        for tag in html.split("<script").skip(1) {
            let open = &tag[..tag.find('>').expect("a closed script tag")];
            assert!(
                open.contains("src=\"/assets/"),
                "a script without its own file: <script{open}>"
            );
            assert!(
                tag[open.len() + 1..].trim_start().starts_with("</script>"),
                "inline script in index.html"
            );
        }
        assert!(!html.contains("<style"), "inline style in index.html");
    }
}
