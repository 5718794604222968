//! `/api/templates/*`: form templates.
//!
//! A template is a listing record (name, tags, ...) plus a Yjs document of
//! the same id. Reads come from the live document when it is open, else
//! from the store; content updates are applied as a minimal CRDT edit of
//! what differs, so people editing at that moment keep their own work and
//! see the change at once.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use coform_storage::{Role, Template, TemplateQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{self, require, template_role, workspace_role};
use super::auth::{check_description, check_name, update_listing};
use super::extract::{ApiJson, ApiQuery, Authed};
use crate::auth::{now_ms, secret};
use crate::error::{ApiError, ApiResult, FieldError, FieldErrors};
use crate::server::AppState;

const MAX_TAGS: usize = 20;

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
pub struct TemplateView {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    /// Anyone with the id may read the preview page, without an account,
    /// at `/api/public/templates/{id}/preview`; nothing else is opened.
    pub is_public: bool,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
    #[serde(default)]
    pub version: u64,
    /// The document: `{"meta": {...}, "components": {...}}` (single reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub content: Option<serde_json::Value>,
}

impl TemplateView {
    pub fn listing(t: &Template) -> Self {
        TemplateView {
            id: t.id.clone(),
            workspace_id: t.workspace_id.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            tags: t.tags.clone(),
            is_public: t.is_public,
            created_by: t.created_by.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            version: t.version,
            content: None,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Only this workspace (default: all of the caller's).
    pub workspace_id: Option<String>,
    /// Only templates with this tag.
    pub tag: Option<String>,
    /// Text to find in name or description.
    pub q: Option<String>,
    /// 1-based page number.
    #[param(minimum = 1, maximum = 1_000_000, nullable = false)]
    pub page: Option<u64>,
    /// Items per page (1–100, default 20).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub page_size: Option<u64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplatePage {
    pub items: Vec<TemplateView>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTemplate {
    pub workspace_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    /// Anyone with the id may read the preview page, without an account,
    /// at `/api/public/templates/{id}/preview`; nothing else is opened.
    pub is_public: bool,
    #[schema(value_type = Option<Object>)]
    pub content: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTemplate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    /// Anyone with the id may read the preview page, without an account,
    /// at `/api/public/templates/{id}/preview`; nothing else is opened.
    pub is_public: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub content: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionToken {
    /// Pass as `?token=` to `/collab/{id}`.
    pub token: String,
    pub expires_in: u64,
    #[schema(value_type = String, example = "editor")]
    pub role: Role,
    pub url: String,
}

pub(crate) fn check_tags(tags: &[String]) -> Result<Vec<String>, FieldError> {
    let bad = |m: &str| FieldError {
        field: "tags".into(),
        message: m.into(),
    };
    if tags.len() > MAX_TAGS {
        return Err(bad("at most 20 tags"));
    }
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let n = t.chars().count();
        let t = t.trim();
        if t.is_empty() || n > 50 || t.chars().any(char::is_control) {
            return Err(bad(
                "each tag must be 1 to 50 characters without control characters",
            ));
        }
        if !out.iter().any(|x| x == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

/// Every problem of a content a request wants stored: its size and roots,
/// then everything the form model says of it, each with its path
/// (`content.components.name.label`). Content is stored only without any:
/// invalid content is refused whole, never mended.
fn content_errors(content: &serde_json::Value) -> Vec<FieldError> {
    if content.to_string().len() > super::MAX_BODY {
        return vec![FieldError {
            field: "content".into(),
            message: "is too large".into(),
        }];
    }
    if let Err(e) = coform_collab::content::validate_target(content) {
        return vec![FieldError {
            field: "content".into(),
            message: e.to_string(),
        }];
    }
    match coform_model::validate(content) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .map(|e| FieldError {
                field: if e.path.is_empty() {
                    "content".into()
                } else {
                    format!("content.{}", e.path)
                },
                message: e.message,
            })
            .collect(),
    }
}

/// Makes the template's document equal to `content` by a minimal edit.
pub async fn set_content(
    state: &AppState,
    template_id: &str,
    content: serde_json::Value,
) -> Result<(), ApiError> {
    let edit: coform_collab::DocEdit = Box::new(move |doc| {
        coform_collab::content::apply_json(doc, &content).map_err(|e| e.to_string())
    });
    state.registry.edit(template_id, edit).await?;
    Ok(())
}

/// A template's content as it is now, live edits included.
pub(crate) async fn read_content(
    state: &AppState,
    template_id: &str,
) -> Result<serde_json::Value, ApiError> {
    Ok(state
        .registry
        .read(template_id, coform_collab::content::to_json)
        .await?)
}

/// Templates of the caller's workspaces, filtered and paged.
#[utoipa::path(get, path = "/api/templates", tag = "templates", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = TemplatePage), (status = 401), (status = 404, description = "Unknown workspace"),
              (status = 422)))]
pub async fn list(
    Authed(state, me): Authed,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<TemplatePage>> {
    let (page, page_size) = super::paging(q.page, q.page_size)?;
    for (field, value) in [("q", &q.q), ("tag", &q.tag)] {
        if value
            .as_deref()
            .is_some_and(|v| v.chars().any(char::is_control))
        {
            return Err(ApiError::field(
                field,
                "must not contain control characters",
            ));
        }
    }
    let workspace_ids = match &q.workspace_id {
        Some(ws) => {
            workspace_role(&state, ws, &me.user.id).await?;
            vec![ws.clone()]
        }
        None => state
            .accounts
            .workspaces_for_user(&me.user.id)
            .await?
            .into_iter()
            .map(|(w, _)| w.id)
            .collect(),
    };
    let search =
        q.q.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(200).collect());
    let query = TemplateQuery {
        workspace_ids,
        tag: q.tag.clone().filter(|t| !t.is_empty()),
        search,
        offset: (page - 1) * page_size,
        limit: page_size,
    };
    let (items, total) = if query.workspace_ids.is_empty() {
        (Vec::new(), 0)
    } else {
        state.accounts.list_templates(&query).await?
    };
    Ok(Json(TemplatePage {
        items: items.iter().map(TemplateView::listing).collect(),
        total,
        page,
        page_size,
    }))
}

/// Create a template in a workspace (editor), optionally with content,
/// which must be valid in the form model (invalid content is refused, not
/// mended).
#[utoipa::path(post, path = "/api/templates", tag = "templates", security(("bearer" = [])), request_body = CreateTemplate,
    responses((status = 201, body = TemplateView), (status = 401), (status = 403), (status = 404),
        (status = 422, description = "Every problem of the request; the content's with their path in the form model")))]
pub async fn create(
    Authed(state, me): Authed,
    ApiJson(req): ApiJson<CreateTemplate>,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    let (_, role) = workspace_role(&state, &req.workspace_id, &me.user.id).await?;
    require(role, Role::Editor, "creating templates")?;
    let mut errors = Vec::new();
    let name = check_name("name", &req.name, 200)
        .map_err(|e| errors.push(e))
        .ok();
    let tags = check_tags(&req.tags).map_err(|e| errors.push(e)).ok();
    if let Err(e) = check_description("description", &req.description) {
        errors.push(e);
    }
    if let Some(c) = &req.content {
        errors.extend(content_errors(c));
    }
    let (Some(name), Some(tags), true) = (name, tags, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let now = now_ms();
    let template = Template {
        id: secret::new_id(),
        workspace_id: req.workspace_id.clone(),
        name,
        description: req.description.trim().to_owned(),
        tags,
        is_public: req.is_public,
        created_by: me.user.id.clone(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    state.accounts.create_template(&template).await?;
    if let Some(content) = req.content {
        set_content(&state, &template.id, content).await?;
    }
    let mut view = TemplateView::listing(&template);
    view.content = Some(read_content(&state, &template.id).await?);
    Ok((StatusCode::CREATED, Json(view)))
}

/// A template with its content, read from the live document.
#[utoipa::path(get, path = "/api/templates/{id}", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = TemplateView), (status = 401), (status = 404)))]
pub async fn get(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<TemplateView>> {
    let (template, _) = template_role(&state, &id, &me.user.id).await?;
    let mut view = TemplateView::listing(&template);
    view.content = Some(read_content(&state, &id).await?);
    super::stats::record_view(&state, &id).await;
    Ok(Json(view))
}

/// Change the listing and/or the content (editor). Content is applied as
/// a minimal CRDT edit; live editors keep their own changes.
#[utoipa::path(put, path = "/api/templates/{id}", tag = "templates", security(("bearer" = [])), request_body = UpdateTemplate,
    params(("id" = String, Path)),
    responses((status = 200, body = TemplateView), (status = 401), (status = 403), (status = 404),
        (status = 422, description = "Every problem of the request; the content's with their path in the form model")))]
pub async fn update(
    Authed(state, me): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateTemplate>,
) -> ApiResult<Json<TemplateView>> {
    let (mut template, role) = template_role(&state, &id, &me.user.id).await?;
    require(role, Role::Editor, "editing templates")?;
    let mut fields = FieldErrors::default();
    let given = (req.name.as_deref(), req.description.as_deref());
    update_listing(
        &mut fields,
        given,
        (&mut template.name, &mut template.description),
    );
    if let Some(tags) = fields.given(req.tags.as_deref(), check_tags) {
        template.tags = tags;
    }
    if let Some(p) = req.is_public {
        template.is_public = p;
    }
    for e in req.content.as_ref().map(content_errors).unwrap_or_default() {
        fields.push(e);
    }
    fields.finish()?;
    Ok(Json(
        save_edit(&state, template, req.content, &me.user.id).await?,
    ))
}

/// Stores an edit of a template: its content (if given) as a minimal CRDT
/// edit, then its listing with a new version; counts the edit. Answers
/// the template as it now is, content included.
pub(crate) async fn save_edit(
    state: &AppState,
    mut template: Template,
    content: Option<serde_json::Value>,
    editor: &str,
) -> Result<TemplateView, ApiError> {
    if let Some(content) = content {
        set_content(state, &template.id, content).await?;
    }
    template.updated_at = now_ms();
    template.version += 1;
    state.accounts.update_template(&template).await?;
    super::stats::record_edit(state, &template.id, editor).await;
    let mut view = TemplateView::listing(&template);
    view.content = Some(read_content(state, &template.id).await?);
    Ok(view)
}

/// Delete a template, its document and history (admin, or the editor who
/// created it). Open editors are disconnected with 4403.
#[utoipa::path(delete, path = "/api/templates/{id}", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(Authed(state, me): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let (template, role) = template_role(&state, &id, &me.user.id).await?;
    let own = template.created_by == me.user.id && role.can_edit();
    if !own {
        require(role, Role::Admin, "deleting others' templates")?;
    }
    state.accounts.delete_template(&id).await?;
    access::drop_documents(&state, &[id]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A short-lived token to open the template over WebSocket.
#[utoipa::path(post, path = "/api/templates/{id}/session", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = SessionToken), (status = 401), (status = 404)))]
pub async fn session(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionToken>> {
    let (_, role) = template_role(&state, &id, &me.user.id).await?;
    let token = state
        .auth
        .keys
        .issue_doc(
            &me.user.id,
            &me.session_id,
            &id,
            role.as_str(),
            state.auth.doc_ttl,
        )
        .map_err(ApiError::internal)?;
    Ok(Json(SessionToken {
        token,
        expires_in: state.auth.doc_ttl.as_secs(),
        role,
        url: format!("/collab/{id}"),
    }))
}
