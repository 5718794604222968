//! `/api/templates/{id}/versions/*`: saved versions, restore and diffs.
//!
//! A version is the document's full Yjs state at the moment it was saved,
//! with a name, a note, its author and time. History only grows:
//!
//! - **Restore** never rewinds the document. It first saves the current
//!   state as a new version ("Before restoring version N"), then makes the
//!   document equal to version N's content by a *forward* minimal CRDT
//!   edit — the same path as a REST content update. People editing at that
//!   moment see the restore at once, and their own concurrent edits to
//!   other fields are merged, not lost.
//! - **Diff** compares two versions, or a version and the live document
//!   (`current`): components added, removed, moved (parent or index
//!   changed), which fields changed per component, and meta fields.
//!
//! Viewers may list, read and compare versions; saving and restoring
//! needs the editor role.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use coform_model::{self as model, Diff};
use coform_storage::{NewVersion, Role, Version, VersionInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use super::access::{require, template_role};
use super::extract::{ApiJson, Authed};
use super::templates::{read_content, save_edit};
use crate::auth::now_ms;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::server::AppState;

const MAX_NAME_CHARS: usize = 200;
const MAX_NOTE_CHARS: usize = 2_000;

/// A saved version (without its content).
#[derive(Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
pub struct VersionView {
    /// 1, 2, 3, ... per template.
    pub number: u64,
    pub name: String,
    pub note: String,
    pub author_id: String,
    /// The author's current display name (`null` if the account is gone).
    pub author_name: Option<String>,
    pub created_at: i64,
    /// Size of the stored state in bytes.
    pub size: u64,
}

/// A version with its content.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionDetail {
    #[serde(flatten)]
    pub version: VersionView,
    /// `{"meta": {...}, "components": {...}}` as saved.
    #[schema(value_type = Object)]
    pub content: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateVersion {
    /// Up to 200 characters (may be empty).
    #[serde(default)]
    pub name: String,
    /// Up to 2000 characters (may be empty).
    #[serde(default)]
    pub note: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreResult {
    /// The version whose content the document now has.
    pub restored: u64,
    /// The version saved from the document just before the restore.
    pub backup: VersionView,
    /// The document after the restore (including edits merged meanwhile).
    #[schema(value_type = Object)]
    pub content: Value,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiffView {
    /// The version compared from (a number, or `current`).
    pub from: String,
    /// The version compared to (a number, or `current`).
    pub to: String,
    /// `{added, removed, moved: [{id, from, to}], changed: [{id, fields}], meta}`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub diff: Diff,
}

// ---------------------------------------------------------------- helpers

/// The document's full state as one Yjs v1 update.
pub async fn current_state(state: &AppState, template_id: &str) -> Result<Vec<u8>, ApiError> {
    Ok(state
        .registry
        .read(template_id, |doc| {
            doc.transact()
                .encode_state_as_update_v1(&StateVector::default())
        })
        .await?)
}

/// The content of a stored state (decoded off the async threads).
pub async fn state_content(bytes: bytes::Bytes) -> Result<Value, ApiError> {
    tokio::task::spawn_blocking(move || {
        let update = Update::decode_v1(&bytes)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("stored version: {e}")))?;
        let doc = Doc::new();
        doc.transact_mut()
            .apply_update(update)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("stored version: {e}")))?;
        Ok(coform_collab::content::to_json(&doc))
    })
    .await
    .map_err(ApiError::internal)?
}

/// Views of versions, with their authors' names.
async fn views(state: &AppState, infos: Vec<VersionInfo>) -> Result<Vec<VersionView>, ApiError> {
    let mut names: std::collections::HashMap<String, Option<String>> = Default::default();
    let mut out = Vec::with_capacity(infos.len());
    for v in infos {
        if !names.contains_key(&v.author_id) {
            let name = state.accounts.user(&v.author_id).await?.map(|u| u.name);
            names.insert(v.author_id.clone(), name);
        }
        out.push(VersionView {
            number: v.number,
            author_name: names[&v.author_id].clone(),
            name: v.name,
            note: v.note,
            author_id: v.author_id,
            created_at: v.created_at,
            size: v.size,
        });
    }
    Ok(out)
}

async fn view(state: &AppState, info: VersionInfo) -> Result<VersionView, ApiError> {
    Ok(views(state, vec![info]).await?.remove(0))
}

/// Saves the template's current state as a new version.
pub async fn save_version(
    state: &AppState,
    template_id: &str,
    author_id: &str,
    name: String,
    note: String,
) -> Result<VersionInfo, ApiError> {
    let bytes = current_state(state, template_id).await?;
    let info = state
        .versions
        .create_version(NewVersion {
            template_id: template_id.to_owned(),
            name,
            note,
            author_id: author_id.to_owned(),
            created_at: now_ms(),
            state: bytes.into(),
        })
        .await
        .map_err(|e| match e {
            coform_storage::StoreError::NotFound(_) => ApiError::NotFound("template"),
            e => e.into(),
        })?;
    Ok(info)
}

/// Which side of a diff: a version number or the live document.
enum Side {
    Version(u64),
    Current,
}

fn side(raw: &str, field: &str) -> Result<Side, ApiError> {
    if raw == "current" {
        return Ok(Side::Current);
    }
    raw.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Side::Version)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`{field}` must be a version number or `current`, not {raw:?}"
            ))
        })
}

fn number(raw: &str) -> Result<u64, ApiError> {
    match side(raw, "number")? {
        Side::Version(n) => Ok(n),
        Side::Current => Err(ApiError::BadRequest(
            "`number` must be a version number".into(),
        )),
    }
}

/// Version `n` of a template; 404 if it has none of that number.
async fn stored_version(state: &AppState, template_id: &str, n: u64) -> ApiResult<Version> {
    let found = state.versions.version(template_id, n).await?;
    found.ok_or(ApiError::NotFound("version"))
}

async fn content_of(state: &AppState, template_id: &str, side: &Side) -> Result<Value, ApiError> {
    match side {
        Side::Current => read_content(state, template_id).await,
        Side::Version(n) => {
            state_content(stored_version(state, template_id, *n).await?.state).await
        }
    }
}

fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize, multiline: bool) {
    let bad_char = |c: char| c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r'));
    let message = if value.chars().count() > max {
        format!("must be at most {max} characters")
    } else if value.chars().any(bad_char) {
        "must not contain control characters".into()
    } else {
        return;
    };
    errors.push(FieldError {
        field: field.into(),
        message,
    });
}

// ---------------------------------------------------------------- handlers

/// Versions of a template, newest first (any member).
#[utoipa::path(get, path = "/api/templates/{id}/versions", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = [VersionView]), (status = 401), (status = 404)))]
pub async fn list(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<VersionView>>> {
    template_role(&state, &id, &me.user.id).await?;
    let infos = state.versions.list_versions(&id).await?;
    Ok(Json(views(&state, infos).await?))
}

/// Save the template's current state as a new version (editor).
#[utoipa::path(post, path = "/api/templates/{id}/versions", tag = "templates", security(("bearer" = [])),
    request_body = CreateVersion, params(("id" = String, Path)),
    responses((status = 201, body = VersionView), (status = 401), (status = 403), (status = 404), (status = 422)))]
pub async fn create(
    Authed(state, me): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateVersion>,
) -> ApiResult<(StatusCode, Json<VersionView>)> {
    let (_, role) = template_role(&state, &id, &me.user.id).await?;
    require(role, Role::Editor, "saving versions")?;
    let mut errors = Vec::new();
    let name = req.name.trim().to_owned();
    check_text(&mut errors, "name", &name, MAX_NAME_CHARS, false);
    check_text(&mut errors, "note", &req.note, MAX_NOTE_CHARS, true);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let info = save_version(&state, &id, &me.user.id, name, req.note).await?;
    Ok((StatusCode::CREATED, Json(view(&state, info).await?)))
}

/// One version with its content (any member).
#[utoipa::path(get, path = "/api/templates/{id}/versions/{number}", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path), ("number" = u64, Path)),
    responses((status = 200, body = VersionDetail), (status = 400), (status = 401), (status = 404)))]
pub async fn get(
    Authed(state, me): Authed,
    Path((id, raw)): Path<(String, String)>,
) -> ApiResult<Json<VersionDetail>> {
    template_role(&state, &id, &me.user.id).await?;
    let n = number(&raw)?;
    let v = stored_version(&state, &id, n).await?;
    let content = state_content(v.state).await?;
    Ok(Json(VersionDetail {
        version: view(&state, v.info).await?,
        content,
    }))
}

/// Bring the document back to a version's content (editor): the current
/// state is saved as a new version first, then the content is applied as
/// a forward minimal edit that live editors see at once. History is never
/// truncated.
#[utoipa::path(post, path = "/api/templates/{id}/versions/{number}/restore", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path), ("number" = u64, Path)),
    responses((status = 200, body = RestoreResult), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn restore(
    Authed(state, me): Authed,
    Path((id, raw)): Path<(String, String)>,
) -> ApiResult<Json<RestoreResult>> {
    let (template, role) = template_role(&state, &id, &me.user.id).await?;
    require(role, Role::Editor, "restoring versions")?;
    let n = number(&raw)?;
    let v = stored_version(&state, &id, n).await?;
    let target = state_content(v.state).await?;
    let backup = save_version(
        &state,
        &id,
        &me.user.id,
        format!("Before restoring version {n}"),
        String::new(),
    )
    .await?;
    let restored = save_edit(&state, template, Some(target), &me.user.id).await?;
    Ok(Json(RestoreResult {
        restored: n,
        backup: view(&state, backup).await?,
        content: restored.content.unwrap_or_default(),
    }))
}

/// What changed from version `from` to version `to` (any member). Either
/// may be `current`, the live document.
#[utoipa::path(get, path = "/api/templates/{id}/versions/{from}/diff/{to}", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path), ("from" = String, Path, description = "A version number or `current`"),
           ("to" = String, Path, description = "A version number or `current`")),
    responses((status = 200, body = DiffView), (status = 400), (status = 401), (status = 404)))]
pub async fn diff(
    Authed(state, me): Authed,
    Path((id, from, to)): Path<(String, String, String)>,
) -> ApiResult<Json<DiffView>> {
    template_role(&state, &id, &me.user.id).await?;
    let (a, b) = (side(&from, "from")?, side(&to, "to")?);
    let before = content_of(&state, &id, &a).await?;
    let after = content_of(&state, &id, &b).await?;
    Ok(Json(DiffView {
        from,
        to,
        diff: model::diff(&before, &after),
    }))
}
