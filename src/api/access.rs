//! Who may do what.
//!
//! Every lookup of a workspace or template goes through here. A caller who
//! is not a member gets 404 for a resource that exists, exactly as for one
//! that does not; a member whose role is too low gets 403.

use coform_collab::SessionSet;
use coform_storage::{Role, Template, Workspace};

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
/// every template of the workspace, at once.
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
    for t in templates {
        state.registry.set_access(&t.id, user_id, readonly).await;
    }
    Ok(())
}

/// Closes, at once, the open connections of `user_id` opened with one of
/// `sessions` (close code 4401): ending a session ends its sockets, not
/// only its tokens.
pub async fn end_sessions(state: &AppState, user_id: &str, sessions: SessionSet) {
    state.registry.end_sessions(user_id, sessions).await;
}

/// Removes templates' documents: closes their sockets with 4403 and
/// deletes their stored state, versions and usage figures.
pub async fn drop_documents(state: &AppState, template_ids: &[String]) -> Result<(), ApiError> {
    for id in template_ids {
        state
            .registry
            .evict(id, coform_collab::CloseReason::Forbidden)
            .await;
        state.registry.store().delete(id).await?;
        state.versions.delete_template_history(id).await?;
    }
    Ok(())
}
