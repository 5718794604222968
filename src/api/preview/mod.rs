//! `/api/templates/{id}/preview`: the form as a standalone HTML page, for
//! members; `/api/public/templates/{id}/preview`: the same page for
//! anyone, when the template is public (`isPublic`).
//!
//! The page is accessible (every control has a `<label for>`, required
//! fields carry `required`, `aria-required` and a visible marker, sections
//! and radio groups are `<fieldset>`s with a `<legend>`, headings are
//! headings) and inert: it has no script, and its Content-Security-Policy
//! forbids any script, remote resource, form submission and framing.
//!
//! The HTML is built with `maud` ([`page`]): every piece of text is
//! escaped when it is written, so a document can't inject markup however
//! hostile its content. The live document is read leniently
//! ([`coform_model::Form::read`]): whatever does not fit the model is left
//! out, never an error.
//!
//! # Layout
//!
//! - [`page`]: the page, component by component.

mod page;

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use coform_model::Form;

pub use page::{escape, render};

use super::access::template_role;
use super::extract::{Authed, ClientInfo};
use super::templates::read_content;
use crate::auth::ratelimit::Limit;
use crate::error::{ApiError, ApiResult};
use crate::server::AppState;

/// The preview's Content-Security-Policy.
pub const PREVIEW_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The form as a standalone, script-free HTML page (any member). Counts
/// as a view.
#[utoipa::path(get, path = "/api/templates/{id}/preview", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The HTML page", content_type = "text/html"), (status = 401), (status = 404)))]
pub async fn preview(Authed(state, me): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let (template, _) = template_role(&state, &id, &me.user.id).await?;
    let content = read_content(&state, &id).await?;
    let html = render(&Form::read(&content), &template.name);
    super::stats::record_view(&state, &id).await;
    Ok(page(html))
}

/// Anonymous previews one client address may ask for per minute: enough
/// for any reader, not for scraping every id at the store's expense.
const PUBLIC_PREVIEWS_PER_IP: Limit = Limit {
    max: 120,
    window: Duration::from_secs(60),
};

/// The preview of a public template, for anyone: no account, no token.
///
/// It is the page members see — the template's name and its form, read
/// only, with no script — and nothing else: no workspace, no member, no
/// author, no editor and no way to write. A template that is not public
/// answers 404 exactly like one that does not exist, and turning
/// `isPublic` off closes the page at once (the flag is read on every
/// request; nothing is cached, `Cache-Control: no-store`). Not counted as
/// a view, since anyone could inflate the count.
#[utoipa::path(get, path = "/api/public/templates/{id}/preview", tag = "templates",
    params(("id" = String, Path)),
    responses((status = 200, description = "The HTML page", content_type = "text/html"),
              (status = 404, description = "No such template, or it is not public"),
              (status = 429, description = "Too many previews from this client address; see Retry-After")))]
pub async fn public_preview(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state
        .auth
        .limiter
        .hit(
            &format!("public-preview:ip:{}", client.ip),
            PUBLIC_PREVIEWS_PER_IP,
        )
        .await
        .map_err(super::auth::retry_after)?;
    let template = state
        .accounts
        .template(&id)
        .await?
        .filter(|t| t.is_public)
        .ok_or(ApiError::NotFound("template"))?;
    let content = read_content(&state, &id).await?;
    Ok(page(render(&Form::read(&content), &template.name)))
}

/// The page with the headers that keep it inert.
fn page(html: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PREVIEW_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}
