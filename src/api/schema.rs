//! `/api/schema/*`: the form model every client builds on, served from the
//! one schema in `coform-model` — the JSON Schema of a template's content
//! and the component catalog that a designer's palette and property
//! panels are drawn from. Public: they describe the product, not data.

use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

/// The schema changes only with the server: caches may keep it a while.
const CACHE: &str = "public, max-age=300";

/// The JSON Schema (draft 2020-12) of a template's content: what
/// `content` of templates, imports and exports must be.
#[utoipa::path(get, path = "/api/schema/template", tag = "schema",
    responses((status = 200, description = "A JSON Schema, draft 2020-12", body = Object,
        content_type = "application/schema+json")))]
pub async fn template() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/schema+json"),
            (header::CACHE_CONTROL, CACHE),
        ],
        Json(coform_model::template_schema()),
    )
}

/// The component catalog: every component type with its label, group and
/// its properties and validation rules — each with kind, default, limits,
/// whether required, a label and a group.
#[utoipa::path(get, path = "/api/schema/components", tag = "schema",
    responses((status = 200, description = "The component catalog", body = Object)))]
pub async fn components() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, CACHE)],
        Json(coform_model::catalog()),
    )
}
