//! Who may do what.
//!
//! Every lookup of a workspace or template goes through here. A caller who
//! is not a member gets 404 for a resource that exists, exactly as for one
//! that does not; a member whose role is too low gets 403.

use std::sync::Arc;

use coform_collab::{AccessCheck, Grant, Identity, SessionSet};
use coform_storage::{AccountStore, Role, Template, Workspace};

use crate::error::ApiError;
use crate::server::AppState;

/// The role of `user_id` in a workspace; 404 naming `what` if they are
/// not a member.
pub async fn member_role(
    state: &AppState,
    workspace_id: &str,
    user_id: &str,
    what: &'static str,
) -> Result<Role, ApiError> {
    state
        .accounts
        .member_role(workspace_id, user_id)
        .await?
        .ok_or(ApiError::NotFound(what))
}

/// The workspace and the caller's role in it; 404 if not a member.
pub async fn workspace_role(
    state: &AppState,
    workspace_id: &str,
    user_id: &str,
) -> Result<(Workspace, Role), ApiError> {
    let role = member_role(state, workspace_id, user_id, "workspace").await?;
    let ws = state
        .accounts
        .workspace(workspace_id)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    Ok((ws, role))
}

/// The template and the caller's role in its workspace; 404 if the
/// template does not exist or the caller is not a member.
pub async fn template_role(
    state: &AppState,
    template_id: &str,
    user_id: &str,
) -> Result<(Template, Role), ApiError> {
    let template = state
        .accounts
        .template(template_id)
        .await?
        .ok_or(ApiError::NotFound("template"))?;
    let role = member_role(state, &template.workspace_id, user_id, "template").await?;
    Ok((template, role))
}

/// 403 unless `role` is at least `needed`.
pub fn require(role: Role, needed: Role, action: &str) -> Result<(), ApiError> {
    if role >= needed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{action} needs the {} role or higher",
            needed.as_str()
        )))
    }
}

/// Applies a member's new role (or removal) to their open connections on
/// every template of the workspace, at once, on every replica.
pub async fn apply_live(
    state: &AppState,
    workspace_id: &str,
    user_id: &str,
    role: Option<Role>,
) -> Result<(), ApiError> {
    let query = coform_storage::TemplateQuery {
        workspace_ids: vec![workspace_id.to_owned()],
        limit: i64::MAX as u64,
        ..Default::default()
    };
    let (templates, _) = state.accounts.list_templates(&query).await?;
    let readonly = role.map(|r| !r.can_edit());
    let ids: Vec<&str> = templates.iter().map(|t| t.id.as_str()).collect();
    state.registry.set_access_in(&ids, user_id, readonly).await;
    Ok(())
}

/// Closes, at once and on every replica, the open connections of
/// `user_id` opened with one of `sessions` (close code 4401): ending a
/// session ends its sockets, not only its tokens.
pub async fn end_sessions(state: &AppState, user_id: &str, sessions: SessionSet) {
    state.registry.end_sessions(user_id, sessions).await;
}

/// Removes templates' documents for good: tombstones and deletes their
/// stored state, closes their sockets on every replica with 4403, and
/// deletes their versions and usage figures.
///
/// The tombstone comes first: from then on the store refuses every
/// update of the document, so a replica that has not heard of the
/// deletion yet cannot bring its log back (its room closes with 4403 at
/// its next append), and an eviction message lost on the bus loses
/// nothing but time.
pub async fn drop_documents(state: &AppState, template_ids: &[String]) -> Result<(), ApiError> {
    for id in template_ids {
        state.registry.store().tombstone(id).await?;
        state
            .registry
            .evict(id, coform_collab::CloseReason::Forbidden)
            .await;
        state.versions.delete_template_history(id).await?;
    }
    Ok(())
}

/// The server's [`AccessCheck`]: what an open connection may do now, read
/// from the account records. Asked by a replica that may have missed
/// access changes on the bus (see `coform_collab::bus`).
pub struct LiveAccess {
    pub accounts: Arc<dyn AccountStore>,
}

#[async_trait::async_trait]
impl AccessCheck for LiveAccess {
    async fn check(&self, doc: &str, who: &Identity) -> Result<Grant, String> {
        let failed = |e: coform_storage::StoreError| e.to_string();
        if let Some(sid) = &who.session {
            let session = self.accounts.session(sid).await.map_err(failed)?;
            let live = session.is_some_and(|s| {
                !s.revoked && s.expires_at > crate::auth::now_ms() && *s.user_id == *who.user_id
            });
            if !live {
                return Ok(Grant::SessionEnded);
            }
        }
        let Some(template) = self.accounts.template(doc).await.map_err(failed)? else {
            return Ok(Grant::Revoked);
        };
        let role = self
            .accounts
            .member_role(&template.workspace_id, &who.user_id)
            .await
            .map_err(failed)?;
        Ok(match role {
            None => Grant::Revoked,
            Some(r) if r.can_edit() => Grant::Edit,
            Some(_) => Grant::View,
        })
    }
}
