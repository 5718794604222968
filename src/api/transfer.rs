//! Export and import of templates as one JSON file (see
//! `docs/TEMPLATE_FORMAT.md`):
//!
//! ```json
//! {"format": "coform-template", "version": 1,
//!  "template": {"name": "...", "description": "...", "tags": ["..."]},
//!  "content": {"meta": {...}, "components": {...}}}
//! ```
//!
//! An import is checked completely before anything changes: the envelope,
//! the listing fields, and the content against the form model
//! ([`coform_model::file::check_file`]); any problem answers 422 with the
//! list of every error and its path (`content.components.c1.validation.min`).
//! Duplicate keys anywhere in the file are refused too (a plain JSON
//! reader would silently keep the last of two components with one id).
//! Importing into an existing template replaces its content in one
//! minimal CRDT edit, which people editing at that moment see at once.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Path, Query, Request};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use bytes::Bytes;
use coform_model as model;
use coform_storage::{Role, Template};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::access::{require, template_role, workspace_role};
use super::extract::Authed;
use super::templates::read_content;
use super::templates::{set_content, TemplateView};
use crate::auth::{now_ms, secret};
use crate::error::{ApiError, ApiResult, FieldError};

pub use model::file::{FORMAT, FORMAT_VERSION};

/// A template file (the export format, version 1).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TemplateFile {
    /// Always `coform-template`.
    pub format: String,
    /// Format version: 1.
    pub version: u64,
    pub template: FileListing,
    /// `{"meta": {...}, "components": {...}}`.
    #[schema(value_type = Object)]
    pub content: Value,
}

/// The listing fields carried by a template file.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct FileListing {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ImportQuery {
    /// The workspace to create the template in.
    pub workspace_id: String,
}

/// A JSON body read strictly: duplicate keys are refused (422 with the
/// key's path), malformed JSON answers 400 `invalid_json`.
pub struct StrictJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for StrictJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json")
                    || mime.to_ascii_lowercase().ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::InvalidJson(
                "expected a JSON body (Content-Type: application/json)".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::InvalidJson("the body is not UTF-8".into()))?;
        match model::parse_strict(text) {
            Ok(v) => Ok(StrictJson(v)),
            Err(e) if e.path.is_empty() => Err(ApiError::InvalidJson(e.message)),
            Err(e) => Err(ApiError::Validation(vec![FieldError {
                field: e.path,
                message: e.message,
            }])),
        }
    }
}

/// Checks a whole file ([`model::file::check_file`]); returns its listing
/// and its content with both roots present, or every error found (422).
fn check_file(file: &Value) -> Result<(model::file::Listing, Value), ApiError> {
    model::file::check_file(file).map_err(|errors| {
        ApiError::Validation(
            errors
                .into_iter()
                .map(|e| FieldError {
                    field: e.path,
                    message: e.message,
                })
                .collect(),
        )
    })
}

/// The template as a file (any member). See `docs/TEMPLATE_FORMAT.md`.
#[utoipa::path(post, path = "/api/templates/{id}/export", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = TemplateFile), (status = 401), (status = 404)))]
pub async fn export(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let (template, _) = template_role(&state, &id, &me.user.id).await?;
    let file = TemplateFile {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        template: FileListing {
            name: template.name.clone(),
            description: template.description.clone(),
            tags: template.tags.clone(),
        },
        content: read_content(&state, &id).await?,
    };
    let disposition = format!("attachment; filename=\"template-{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(file)))
}

/// Replace a template's content with a file's (editor), as one edit that
/// live editors see at once. The listing (name, description, tags) is
/// kept; the file's listing fields are checked but not applied.
#[utoipa::path(post, path = "/api/templates/{id}/import", tag = "templates", security(("bearer" = [])),
    request_body = TemplateFile, params(("id" = String, Path)),
    responses((status = 200, body = TemplateView), (status = 400), (status = 401), (status = 403), (status = 404),
              (status = 413), (status = 422, description = "Every problem of the file, with its path")))]
pub async fn import_into(
    Authed(state, me): Authed,
    Path(id): Path<String>,
    StrictJson(file): StrictJson,
) -> ApiResult<Json<TemplateView>> {
    let (template, role) = template_role(&state, &id, &me.user.id).await?;
    require(role, Role::Editor, "importing into templates")?;
    let (_, content) = check_file(&file)?;
    let view = super::templates::save_edit(&state, template, Some(content), &me.user.id).await?;
    Ok(Json(view))
}

/// Create a template from a file in a workspace (editor there).
#[utoipa::path(post, path = "/api/templates/import", tag = "templates", security(("bearer" = [])),
    request_body = TemplateFile, params(ImportQuery),
    responses((status = 201, body = TemplateView), (status = 400), (status = 401), (status = 403), (status = 404),
              (status = 413), (status = 422, description = "Every problem of the file, with its path")))]
pub async fn import_new(
    Authed(state, me): Authed,
    query: Result<Query<ImportQuery>, QueryRejection>,
    StrictJson(file): StrictJson,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (_, role) = workspace_role(&state, &q.workspace_id, &me.user.id).await?;
    require(role, Role::Editor, "creating templates")?;
    let (listing, content) = check_file(&file)?;
    let now = now_ms();
    let template = Template {
        id: secret::new_id(),
        workspace_id: q.workspace_id.clone(),
        name: listing.name,
        description: listing.description,
        tags: listing.tags,
        is_public: false,
        created_by: me.user.id.clone(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    state.accounts.create_template(&template).await?;
    set_content(&state, &template.id, content).await?;
    let mut view = TemplateView::listing(&template);
    view.content = Some(read_content(&state, &template.id).await?);
    Ok((StatusCode::CREATED, Json(view)))
}
