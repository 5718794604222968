//! `/api/templates/{id}/preview`: the form as a standalone HTML page.
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

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use coform_model::Form;

pub use page::{escape, render};

use super::access::template_role;
use super::extract::Authed;
use super::templates::read_content;
use crate::error::ApiResult;

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
    Ok((
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
        .into_response())
}
