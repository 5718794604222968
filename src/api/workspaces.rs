//! `/api/workspaces/*`: workspaces, members and roles.
//!
//! Roles: owner > admin > editor > viewer. Admins manage members and
//! settings but cannot touch owners or make new ones; only owners delete a
//! workspace. A workspace always keeps an owner (409 `last_owner`). Role
//! changes apply at once to the member's open connections.
//!
//! Members are added by e-mail address, and an address is trusted only
//! once its owner proved it by a mailed token. An account with a verified
//! address becomes a member at once; for any other address (unverified, or
//! without an account) an invitation is recorded instead, and it becomes a
//! membership only when that address is verified (at e-mail verification,
//! or at a confirmed change to that address). Both kinds of address get the
//! same answer, so adding members does not reveal who has an account.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coform_collab::nesting;
use coform_storage::{Invitation, Member, Role, Template, TemplateQuery, Workspace};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, StateVector, Transact, Update};

use super::access::{self, require, workspace_role};
use super::auth::{check_description, check_name, check_object, normalize_email, update_listing};
use super::extract::{ApiJson, Authed};
use super::templates::TemplateView;
use crate::auth::{now_ms, secret};
use crate::error::{ApiError, ApiResult, Code, FieldErrors};
use crate::server::AppState;

/// How long an invitation waits for its address to be verified.
pub const INVITATION_TTL: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);

/// Version of the backup file format.
pub const BACKUP_FORMAT: &str = "coform-workspace-backup";
pub const BACKUP_VERSION: u32 = 1;

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_by: String,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
    /// The caller's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, example = "editor")]
    pub role: Option<Role>,
}

impl WorkspaceView {
    fn new(w: &Workspace, role: Option<Role>) -> Self {
        WorkspaceView {
            id: w.id.clone(),
            name: w.name.clone(),
            description: w.description.clone(),
            created_by: w.created_by.clone(),
            settings: w.settings.clone(),
            created_at: w.created_at,
            updated_at: w.updated_at,
            role,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub name: String,
    #[schema(value_type = String, example = "editor")]
    pub role: Role,
    pub joined_at: i64,
}

/// An invitation waiting for the owner of `email` to verify it: the same
/// answer whether or not the address has an account.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationView {
    /// Always `invited`.
    #[schema(example = "invited")]
    pub status: String,
    pub email: String,
    /// The role the membership will have.
    #[schema(value_type = String, example = "editor")]
    pub role: Role,
    /// The member who sent or last renewed the invitation.
    pub invited_by: String,
    pub invited_at: i64,
    /// After this time the invitation grants nothing.
    pub expires_at: i64,
}

impl From<&Invitation> for InvitationView {
    fn from(i: &Invitation) -> Self {
        InvitationView {
            status: "invited".into(),
            email: i.email.clone(),
            role: i.role,
            invited_by: i.invited_by.clone(),
            invited_at: i.invited_at,
            expires_at: i.expires_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceDetail {
    #[serde(flatten)]
    pub workspace: WorkspaceView,
    pub members: Vec<MemberView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWorkspace {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWorkspace {
    pub name: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMember {
    pub email: String,
    #[schema(value_type = String, example = "editor")]
    pub role: Role,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateMember {
    #[schema(value_type = String, example = "editor")]
    pub role: Role,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Analytics {
    pub templates: u64,
    pub members: u64,
    /// Distinct users connected to any of the workspace's templates now.
    pub active_editors: u64,
    /// Latest change to the workspace or any of its templates (ms).
    pub last_activity: i64,
}

/// A template inside a backup: its listing and its full Yjs state.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupTemplate {
    #[serde(flatten)]
    pub template: TemplateView,
    /// The document's full state: a Yjs v1 update, base64.
    pub state: String,
}

/// A whole workspace in one JSON file.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    pub format: String,
    pub version: u32,
    pub exported_at: i64,
    pub workspace: WorkspaceView,
    pub members: Vec<MemberView>,
    pub templates: Vec<BackupTemplate>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    /// Templates whose content was brought back to the backup's.
    pub restored: u64,
    /// Templates recreated because they no longer existed.
    pub created: u64,
}

async fn member_views(state: &AppState, workspace_id: &str) -> Result<Vec<MemberView>, ApiError> {
    let mut out = Vec::new();
    for m in state.accounts.members(workspace_id).await? {
        if let Some(u) = state.accounts.user(&m.user_id).await? {
            out.push(MemberView {
                user_id: m.user_id,
                email: u.email,
                name: u.name,
                role: m.role,
                joined_at: m.joined_at,
            });
        }
    }
    Ok(out)
}

async fn templates_of(state: &AppState, workspace_id: &str) -> Result<Vec<Template>, ApiError> {
    let query = TemplateQuery {
        workspace_ids: vec![workspace_id.to_owned()],
        limit: i64::MAX as u64,
        ..Default::default()
    };
    Ok(state.accounts.list_templates(&query).await?.0)
}

/// Workspaces the caller belongs to.
#[utoipa::path(get, path = "/api/workspaces", tag = "workspaces", security(("bearer" = [])),
    responses((status = 200, body = Vec<WorkspaceView>), (status = 401)))]
pub async fn list(Authed(state, me): Authed) -> ApiResult<Json<Vec<WorkspaceView>>> {
    let list = state.accounts.workspaces_for_user(&me.user.id).await?;
    Ok(Json(
        list.iter()
            .map(|(w, r)| WorkspaceView::new(w, Some(*r)))
            .collect(),
    ))
}

/// Create a workspace; the caller becomes its owner.
#[utoipa::path(post, path = "/api/workspaces", tag = "workspaces", security(("bearer" = [])), request_body = CreateWorkspace,
    responses((status = 201, body = WorkspaceView), (status = 401), (status = 422)))]
pub async fn create(
    Authed(state, me): Authed,
    ApiJson(req): ApiJson<CreateWorkspace>,
) -> ApiResult<(StatusCode, Json<WorkspaceView>)> {
    let mut fields = FieldErrors::default();
    let name = fields.check(check_name("name", &req.name, 200));
    fields.check(check_description("description", &req.description));
    let settings = req.settings.unwrap_or_else(|| serde_json::json!({}));
    fields.check(check_object("settings", &settings));
    let name = fields.require(name)?;
    let now = now_ms();
    let ws = Workspace {
        id: secret::new_id(),
        name,
        description: req.description.trim().to_owned(),
        created_by: me.user.id.clone(),
        settings,
        created_at: now,
        updated_at: now,
    };
    state.accounts.create_workspace(&ws, &me.user.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(WorkspaceView::new(&ws, Some(Role::Owner))),
    ))
}

/// A workspace with its members.
#[utoipa::path(get, path = "/api/workspaces/{id}", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = WorkspaceDetail), (status = 401), (status = 404)))]
pub async fn get(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<WorkspaceDetail>> {
    let (ws, role) = workspace_role(&state, &id, &me.user.id).await?;
    let members = member_views(&state, &id).await?;
    Ok(Json(WorkspaceDetail {
        workspace: WorkspaceView::new(&ws, Some(role)),
        members,
    }))
}

/// Rename or change settings (admin).
#[utoipa::path(put, path = "/api/workspaces/{id}", tag = "workspaces", security(("bearer" = [])), request_body = UpdateWorkspace,
    params(("id" = String, Path)),
    responses((status = 200, body = WorkspaceView), (status = 401), (status = 403), (status = 404), (status = 422)))]
pub async fn update(
    Authed(state, me): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateWorkspace>,
) -> ApiResult<Json<WorkspaceView>> {
    let (mut ws, role) = workspace_role(&state, &id, &me.user.id).await?;
    require(role, Role::Admin, "changing a workspace")?;
    let mut fields = FieldErrors::default();
    let given = (req.name.as_deref(), req.description.as_deref());
    update_listing(&mut fields, given, (&mut ws.name, &mut ws.description));
    let settings = fields.given(req.settings.as_ref(), |s| {
        check_object("settings", s).map(|()| s)
    });
    if let Some(s) = settings {
        ws.settings = s.clone();
    }
    fields.finish()?;
    ws.updated_at = now_ms();
    state.accounts.update_workspace(&ws).await?;
    Ok(Json(WorkspaceView::new(&ws, Some(role))))
}

/// Delete a workspace with all its templates (owner). Open editors are
/// disconnected with 4403.
#[utoipa::path(delete, path = "/api/workspaces/{id}", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(Authed(state, me): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let (_, role) = workspace_role(&state, &id, &me.user.id).await?;
    require(role, Role::Owner, "deleting a workspace")?;
    let removed = state.accounts.delete_workspace(&id).await?;
    access::drop_documents(&state, &removed).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a member by e-mail address (admin; only owners add owners).
///
/// An account whose address is verified becomes a member at once (201). For
/// any other address — an account that has not verified it, or no account
/// at all — an invitation is recorded and the answer is 202 with the same
/// body either way: the membership starts, with this role, once the owner
/// of the address verifies it. Inviting an address again updates the role
/// and renews the invitation for 14 days.
#[utoipa::path(post, path = "/api/workspaces/{id}/members", tag = "workspaces", security(("bearer" = [])), request_body = AddMember,
    params(("id" = String, Path)),
    responses((status = 201, body = MemberView, description = "An account with this verified address is now a member"),
              (status = 202, body = InvitationView, description = "Invited: the membership starts once the address is verified"),
              (status = 401), (status = 403), (status = 404),
              (status = 409, description = "Already a member (`already_member`)"), (status = 422)))]
pub async fn add_member(
    Authed(state, me): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AddMember>,
) -> ApiResult<Response> {
    let (_, role) = workspace_role(&state, &id, &me.user.id).await?;
    require(role, Role::Admin, "adding members")?;
    if req.role == Role::Owner {
        require(role, Role::Owner, "adding an owner")?;
    }
    let email = normalize_email(&req.email)?;
    let now = now_ms();
    let account = state.accounts.user_by_email(&email).await?;
    if let Some(user) = &account {
        if state.accounts.member_role(&id, &user.id).await?.is_some() {
            return Err(already_member());
        }
    }
    let Some(user) = account.filter(|u| u.email_verified) else {
        let pending = state
            .accounts
            .invitations(&id, now)
            .await?
            .into_iter()
            .find(|i| i.email.eq_ignore_ascii_case(&email));
        if pending.is_some_and(|i| i.role == Role::Owner) {
            require(role, Role::Owner, "changing an owner's invitation")?;
        }
        let invitation = Invitation {
            workspace_id: id.clone(),
            email,
            role: req.role,
            invited_by: me.user.id.clone(),
            invited_at: now,
            expires_at: now + INVITATION_TTL.as_millis() as i64,
        };
        state.accounts.put_invitation(&invitation).await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(InvitationView::from(&invitation)),
        )
            .into_response());
    };
    let member = Member {
        workspace_id: id.clone(),
        user_id: user.id.clone(),
        role: req.role,
        joined_at: now,
    };
    state
        .accounts
        .add_member(&member)
        .await
        .map_err(|e| match e {
            coform_storage::StoreError::Conflict(_) => already_member(),
            e => e.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(MemberView {
            user_id: user.id,
            email: user.email,
            name: user.name,
            role: req.role,
            joined_at: member.joined_at,
        }),
    )
        .into_response())
}

fn already_member() -> ApiError {
    ApiError::new(Code::AlreadyMember, "this user is already a member")
}

/// Invitations of the workspace still waiting for their address to be
/// verified, oldest first (admin).
#[utoipa::path(get, path = "/api/workspaces/{id}/invitations", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<InvitationView>), (status = 401), (status = 403), (status = 404)))]
pub async fn list_invitations(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<InvitationView>>> {
    let (_, role) = workspace_role(&state, &id, &me.user.id).await?;
    require(role, Role::Admin, "listing invitations")?;
    let list = state.accounts.invitations(&id, now_ms()).await?;
    Ok(Json(list.iter().map(InvitationView::from).collect()))
}

/// Cancel the invitation of an address (admin; only owners cancel an
/// invitation as owner). It then grants nothing, even if the address is
/// verified later.
#[utoipa::path(delete, path = "/api/workspaces/{id}/invitations/{email}", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path), ("email" = String, Path, description = "The invited address (percent-encoded)")),
    responses((status = 204), (status = 401), (status = 403),
              (status = 404, description = "No such workspace, or no invitation of this address"),
              (status = 422, description = "Not an e-mail address")))]
pub async fn cancel_invitation(
    Authed(state, me): Authed,
    Path((id, email)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (_, role) = workspace_role(&state, &id, &me.user.id).await?;
    require(role, Role::Admin, "cancelling invitations")?;
    let email = normalize_email(&email)?;
    let invitation = state
        .accounts
        .invitations(&id, now_ms())
        .await?
        .into_iter()
        .find(|i| i.email.eq_ignore_ascii_case(&email))
        .ok_or(ApiError::NotFound("invitation"))?;
    if invitation.role == Role::Owner {
        require(role, Role::Owner, "cancelling an owner's invitation")?;
    }
    state
        .accounts
        .delete_invitation(&id, &email)
        .await
        .map_err(|e| match e {
            coform_storage::StoreError::NotFound(_) => ApiError::NotFound("invitation"),
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change a member's role (admin; only owners change or grant owner).
/// Open connections of that member switch to read-only or back at once.
#[utoipa::path(put, path = "/api/workspaces/{id}/members/{userId}", tag = "workspaces", security(("bearer" = [])),
    request_body = UpdateMember, params(("id" = String, Path), ("userId" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404), (status = 409, description = "Last owner")))]
pub async fn update_member(
    Authed(state, me): Authed,
    Path((id, user_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<UpdateMember>,
) -> ApiResult<StatusCode> {
    let (_, role) = workspace_role(&state, &id, &me.user.id).await?;
    require(role, Role::Admin, "changing roles")?;
    let current = access::member_role(&state, &id, &user_id, "member").await?;
    if current == Role::Owner || req.role == Role::Owner {
        require(
            role,
            Role::Owner,
            "changing an owner's role or granting owner",
        )?;
    }
    state
        .accounts
        .set_member_role(&id, &user_id, req.role)
        .await?;
    access::apply_live(&state, &id, &user_id, Some(req.role)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (admin), or leave (anyone, for themselves). Their open
/// connections to the workspace's templates close with 4403.
#[utoipa::path(delete, path = "/api/workspaces/{id}/members/{userId}", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path), ("userId" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404), (status = 409, description = "Last owner")))]
pub async fn remove_member(
    Authed(state, me): Authed,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (_, role) = workspace_role(&state, &id, &me.user.id).await?;
    if user_id != me.user.id {
        require(role, Role::Admin, "removing members")?;
        let current = access::member_role(&state, &id, &user_id, "member").await?;
        if current == Role::Owner {
            require(role, Role::Owner, "removing an owner")?;
        }
    }
    state.accounts.remove_member(&id, &user_id).await?;
    access::apply_live(&state, &id, &user_id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Counts and activity of a workspace.
#[utoipa::path(get, path = "/api/workspaces/{id}/analytics", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Analytics), (status = 401), (status = 404)))]
pub async fn analytics(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Analytics>> {
    let (ws, _) = workspace_role(&state, &id, &me.user.id).await?;
    let templates = templates_of(&state, &id).await?;
    let members = state.accounts.members(&id).await?.len() as u64;
    let mut editors = std::collections::HashSet::new();
    let mut last = ws.updated_at;
    for t in &templates {
        editors.extend(state.registry.connected_users(&t.id));
        last = last
            .max(t.updated_at)
            .max(state.registry.last_update_ms(&t.id).unwrap_or(0));
    }
    Ok(Json(Analytics {
        templates: templates.len() as u64,
        members,
        active_editors: editors.len() as u64,
        last_activity: last,
    }))
}

/// One JSON file with the workspace, its members and every template's
/// full state (admin).
#[utoipa::path(post, path = "/api/workspaces/{id}/backup", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Backup), (status = 401), (status = 403), (status = 404)))]
pub async fn backup(
    Authed(state, me): Authed,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let (ws, role) = workspace_role(&state, &id, &me.user.id).await?;
    require(role, Role::Admin, "backing up a workspace")?;
    let mut templates = Vec::new();
    for t in templates_of(&state, &id).await? {
        let update = state
            .registry
            .read(&t.id, |doc| {
                doc.transact()
                    .encode_state_as_update_v1(&StateVector::default())
            })
            .await?;
        templates.push(BackupTemplate {
            template: TemplateView::listing(&t),
            state: STANDARD.encode(update),
        });
    }
    let backup = Backup {
        format: BACKUP_FORMAT.into(),
        version: BACKUP_VERSION,
        exported_at: now_ms(),
        workspace: WorkspaceView::new(&ws, None),
        members: member_views(&state, &id).await?,
        templates,
    };
    let disposition = format!("attachment; filename=\"workspace-{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(backup)))
}

/// Bring a workspace back to a backup (admin): its name, description and
/// settings, and every template's content — as a forward edit, so live
/// editors see it at once and history is kept. Templates that no longer
/// exist are recreated. Memberships are not changed (a backup must not be
/// able to grant access).
#[utoipa::path(post, path = "/api/workspaces/{id}/restore", tag = "workspaces", security(("bearer" = [])),
    request_body = Backup, params(("id" = String, Path)),
    responses((status = 200, body = RestoreReport), (status = 401), (status = 403), (status = 404), (status = 413), (status = 422)))]
pub async fn restore(
    Authed(state, me): Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<RestoreReport>> {
    let backup: Backup = super::extract::from_json_value(body)?;
    let (mut ws, role) = workspace_role(&state, &id, &me.user.id).await?;
    require(role, Role::Admin, "restoring a workspace")?;
    if backup.format != BACKUP_FORMAT || backup.version != BACKUP_VERSION {
        return Err(ApiError::field(
            "format",
            format!("expected format {BACKUP_FORMAT} version {BACKUP_VERSION}"),
        ));
    }
    // Decode and check everything before changing anything.
    let mut contents = Vec::new();
    for (i, t) in backup.templates.iter().enumerate() {
        let bad = |m: &str| ApiError::field(&format!("templates[{i}].state"), m);
        let bytes = STANDARD
            .decode(&t.state)
            .map_err(|_| bad("must be base64"))?;
        // Checked before yrs decodes it (its decoder recurses per level).
        let shape = nesting::scan_update_v1(&bytes).map_err(|e| match e {
            nesting::NestingError::Malformed(_) => bad("must be a Yjs v1 update"),
            too_deep => bad(&too_deep.to_string()),
        })?;
        let update = Update::decode_v1(&bytes).map_err(|_| bad("must be a Yjs v1 update"))?;
        let doc = yrs::Doc::new();
        {
            let mut txn = doc.transact_mut();
            txn.apply_update(update)
                .map_err(|_| bad("does not apply"))?;
            nesting::check_anchors(&txn, &shape.anchors).map_err(|e| bad(&e.to_string()))?;
        }
        let content = coform_collab::content::to_json(&doc);
        check_name(&format!("templates[{i}].name"), &t.template.name, 200)?;
        check_description(
            &format!("templates[{i}].description"),
            &t.template.description,
        )?;
        super::templates::check_tags(&t.template.tags)
            .map_err(|e| ApiError::field(&format!("templates[{i}].tags"), e.message))?;
        contents.push(content);
    }
    check_name("workspace.name", &backup.workspace.name, 200)?;
    check_object("settings", &backup.workspace.settings)?;
    check_description("workspace.description", &backup.workspace.description)?;
    ws.name = backup.workspace.name.trim().to_owned();
    ws.description = backup.workspace.description.clone();
    ws.settings = backup.workspace.settings.clone();
    ws.updated_at = now_ms();
    state.accounts.update_workspace(&ws).await?;
    let (mut restored, mut created) = (0, 0);
    for (t, content) in backup.templates.iter().zip(contents) {
        let existing = state
            .accounts
            .template(&t.template.id)
            .await?
            .filter(|x| x.workspace_id == id);
        let now = now_ms();
        let target = match existing {
            Some(mut listing) => {
                listing.name = t.template.name.trim().to_owned();
                listing.description = t.template.description.clone();
                listing.tags = t.template.tags.clone();
                listing.is_public = t.template.is_public;
                listing.updated_at = now;
                listing.version += 1;
                state.accounts.update_template(&listing).await?;
                restored += 1;
                listing.id
            }
            None => {
                let listing = Template {
                    id: secret::new_id(),
                    workspace_id: id.clone(),
                    name: t.template.name.trim().to_owned(),
                    description: t.template.description.clone(),
                    tags: t.template.tags.clone(),
                    is_public: t.template.is_public,
                    created_by: me.user.id.clone(),
                    created_at: now,
                    updated_at: now,
                    version: 1,
                };
                state.accounts.create_template(&listing).await?;
                created += 1;
                listing.id
            }
        };
        super::templates::set_content(&state, &target, content).await?;
    }
    Ok(Json(RestoreReport { restored, created }))
}
