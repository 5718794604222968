//! `/api/templates/{id}/analytics`: how much a template is read and edited.
//!
//! # What is counted, and where
//!
//! - **views**: every `GET /api/templates/{id}` and every
//!   `GET /api/templates/{id}/preview` (recorded as it is answered).
//! - **edits**: every document update an editor's connection sent that
//!   the store committed, plus every REST change of a template (`PUT`,
//!   version restore, import). Connection updates are counted by the
//!   rooms in memory ([`coform_collab::Registry::take_edits`]) and written
//!   to the store by a background task every few seconds and at
//!   shutdown, so typing never costs an extra write per keystroke; the
//!   analytics endpoint writes the template's pending count first, so it
//!   is always up to date. A crash loses at most those few seconds of
//!   counts (never any document data). An "edit" is one stored update:
//!   a burst of typing is many edits.
//! - **editors**: distinct users with at least one counted edit.
//! - **last edit**: time and user of the latest counted edit.
//!
//! Figures live in the [`coform_storage::VersionStore`] and go away with
//! the template. Counting never fails a request: a store error while
//! counting is logged and the request answers normally.

use std::time::Duration;

use axum::extract::Path;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::access::template_role;
use super::extract::Authed;
use crate::auth::now_ms;
use crate::error::ApiResult;
use crate::server::AppState;

/// How often counted connection edits are written to the store.
pub const EDIT_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateAnalytics {
    pub template_id: String,
    /// Reads of the template and of its preview.
    pub views: u64,
    /// Stored edits: connection updates and REST changes.
    pub edits: u64,
    /// Distinct users who edited.
    pub editors: u64,
    /// Time of the latest edit (ms since the epoch).
    pub last_edit_at: Option<i64>,
    /// Who made the latest edit.
    pub last_editor_id: Option<String>,
    /// Saved versions.
    pub versions: u64,
    /// Users connected to the document right now (on this server).
    pub active_editors: u64,
}

/// Counts a view of a template (logged, never fails the request).
pub async fn record_view(state: &AppState, template_id: &str) {
    if let Err(e) = state.versions.record_views(template_id, 1).await {
        tracing::warn!(template = template_id, error = %e, "could not count a view");
    }
}

/// Counts one REST edit of a template by `user_id`.
pub async fn record_edit(state: &AppState, template_id: &str, user_id: &str) {
    let editors = [user_id.to_owned()];
    if let Err(e) = state
        .versions
        .record_edits(template_id, 1, &editors, now_ms())
        .await
    {
        tracing::warn!(template = template_id, error = %e, "could not count an edit");
    }
}

async fn store_edits(state: &AppState, doc: &str, count: coform_collab::EditCount) {
    let editors: Vec<String> = count.editors.iter().map(|u| u.to_string()).collect();
    if let Err(e) = state
        .versions
        .record_edits(doc, count.updates, &editors, count.last_ms)
        .await
    {
        tracing::warn!(doc, error = %e, updates = count.updates, "could not store edit counts");
    }
}

/// Writes every pending connection edit count to the store.
pub async fn flush_edits(state: &AppState) {
    for (doc, count) in state.registry.take_edits() {
        store_edits(state, &doc, count).await;
    }
}

/// Starts the task that writes connection edit counts every
/// [`EDIT_FLUSH_INTERVAL`], and once more when shutdown has flushed the
/// rooms. Shutdown waits for it (it runs on the state's task tracker)
/// before closing the store.
pub fn spawn_edit_flusher(state: &AppState) {
    let state = state.clone();
    let tracker = state.tracker.clone();
    tracker.spawn(async move {
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => break,
                _ = tokio::time::sleep(EDIT_FLUSH_INTERVAL) => flush_edits(&state).await,
            }
        }
        // Rooms store their last updates while they unload.
        let deadline = tokio::time::Instant::now() + state.config.shutdown_grace;
        while state.registry.rooms() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        flush_edits(&state).await;
    });
}

/// Usage figures of a template (any member). See the module docs for
/// what is counted.
#[utoipa::path(get, path = "/api/templates/{id}/analytics", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = TemplateAnalytics), (status = 401), (status = 404)))]
pub async fn analytics(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<TemplateAnalytics>> {
    template_role(&state, &id, &me.user.id).await?;
    if let Some(count) = state.registry.take_edits_of(&id) {
        store_edits(&state, &id, count).await;
    }
    let stats = state.versions.template_stats(&id).await?;
    let versions = state.versions.list_versions(&id).await?.len() as u64;
    Ok(Json(TemplateAnalytics {
        template_id: id.clone(),
        views: stats.views,
        edits: stats.edits,
        editors: stats.editors,
        last_edit_at: stats.last_edit_at,
        last_editor_id: stats.last_editor,
        versions,
        active_editors: state.registry.connected_users(&id).len() as u64,
    }))
}
