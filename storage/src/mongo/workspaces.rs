//! Workspaces, members, invitations and template listings of the MongoDB
//! backend (see `accounts` for how each rule is kept without
//! transactions).

use mongodb::bson::{doc, Bson};

use super::accounts::*;
use super::{collect, corrupt, db_err, is_duplicate, MongoStore, CAS_ATTEMPTS};
use super::{found, INVITATIONS, TEMPLATES, USERS, WORKSPACES};
use crate::accounts::{Invitation, Member, Millis, Role, Template, TemplateQuery, Workspace};
use crate::error::{Result, StoreError};
use crate::rules::{self, conflict, email_key, fold, not_found};

impl MongoStore {
    // ---- workspaces and members

    pub(crate) async fn create_workspace(&self, workspace: &Workspace, owner: &str) -> Result<()> {
        self.check_open()?;
        if !self.exists(USERS, owner).await? {
            return Err(not_found("user"));
        }
        let d = doc! {
            "_id": &workspace.id,
            "name": &workspace.name,
            "description": &workspace.description,
            "createdBy": &workspace.created_by,
            "settings": to_json(&workspace.settings)?,
            "createdAt": workspace.created_at,
            "updatedAt": workspace.updated_at,
            "members": [member_doc(owner, Role::Owner, workspace.created_at)],
            "rev": 0i64,
        };
        self.insert(WORKSPACES, d, "workspace").await?;
        self.verify_parent(USERS, owner, "user", &[(WORKSPACES, &workspace.id)])
            .await
    }

    pub(crate) async fn workspace(&self, id: &str) -> Result<Option<Workspace>> {
        self.find_decoded(WORKSPACES, id, decode_workspace).await
    }

    pub(crate) async fn workspaces_for_user(
        &self,
        user_id: &str,
    ) -> Result<Vec<(Workspace, Role)>> {
        let cursor = self
            .coll(WORKSPACES)
            .find(doc! { "members.userId": user_id })
            .sort(doc! { "createdAt": 1, "_id": 1 })
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        for d in collect(cursor).await? {
            let role = decode_members(&d)?
                .into_iter()
                .find(|m| m.user_id == user_id)
                .map(|m| m.role)
                .ok_or_else(|| corrupt("workspace", "members"))?;
            out.push((decode_workspace(&d)?, role));
        }
        Ok(out)
    }

    pub(crate) async fn update_workspace(&self, workspace: &Workspace) -> Result<()> {
        self.check_open()?;
        let r = self
            .coll(WORKSPACES)
            .update_one(
                doc! { "_id": &workspace.id },
                doc! { "$set": {
                    "name": &workspace.name,
                    "description": &workspace.description,
                    "settings": to_json(&workspace.settings)?,
                    "updatedAt": workspace.updated_at,
                } },
            )
            .await
            .map_err(db_err)?;
        found(r.matched_count, "workspace")
    }

    pub(crate) async fn delete_workspace(&self, id: &str) -> Result<Vec<String>> {
        self.check_open()?;
        // The workspace (and with it every membership) first, then its
        // templates and data sources: one created meanwhile finds no
        // workspace and removes itself.
        if self.delete_by_id(WORKSPACES, id).await? == 0 {
            return Err(not_found("workspace"));
        }
        self.coll(INVITATIONS)
            .delete_many(doc! { "workspaceId": id })
            .await
            .map_err(db_err)?;
        self.purge_data_sources(id).await?;
        self.purge_templates(id).await
    }

    pub(crate) async fn members(&self, workspace_id: &str) -> Result<Vec<Member>> {
        let Some(d) = self.find_by_id(WORKSPACES, workspace_id).await? else {
            return Ok(Vec::new());
        };
        let mut members = decode_members(&d)?;
        members.sort_by(|x, y| (x.joined_at, &x.user_id).cmp(&(y.joined_at, &y.user_id)));
        Ok(members)
    }

    pub(crate) async fn member_role(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Option<Role>> {
        let Some(d) = self
            .coll(WORKSPACES)
            .find_one(doc! { "_id": workspace_id })
            .projection(doc! { "members": 1 })
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        Ok(decode_members(&d)?
            .into_iter()
            .find(|m| m.user_id == user_id)
            .map(|m| m.role))
    }

    pub(crate) async fn add_member(&self, member: &Member) -> Result<()> {
        self.check_open()?;
        let (w, u) = (&member.workspace_id, &member.user_id);
        if !self.exists(WORKSPACES, w).await? {
            return Err(not_found("workspace"));
        }
        if !self.exists(USERS, u).await? {
            return Err(not_found("user"));
        }
        let r = self
            .coll(WORKSPACES)
            .update_one(
                doc! { "_id": w, "members.userId": { "$ne": u } },
                doc! {
                    "$push": { "members": member_doc(u, member.role, member.joined_at) },
                    "$inc": { "rev": 1 },
                },
            )
            .await
            .map_err(db_err)?;
        if r.matched_count == 0 {
            return Err(if self.exists(WORKSPACES, w).await? {
                conflict("member")
            } else {
                not_found("workspace")
            });
        }
        if !self.exists(USERS, u).await? {
            // The user was deleted meanwhile: take the membership back.
            self.coll(WORKSPACES)
                .update_one(
                    doc! { "_id": w },
                    doc! { "$pull": { "members": { "userId": u } }, "$inc": { "rev": 1 } },
                )
                .await
                .map_err(db_err)?;
            return Err(not_found("user"));
        }
        Ok(())
    }

    pub(crate) async fn set_member_role(&self, ws: &str, user: &str, role: Role) -> Result<()> {
        self.change_member(ws, user, Some(role)).await
    }

    pub(crate) async fn remove_member(&self, ws: &str, user: &str) -> Result<()> {
        self.change_member(ws, user, None).await
    }

    /// Gives the member `role`, or removes them (`None`), under the
    /// last-owner rule, guarded by the workspace's revision.
    async fn change_member(&self, ws: &str, user: &str, role: Option<Role>) -> Result<()> {
        self.check_open()?;
        let changed = self
            .change_members(ws, |members| {
                rules::check_member_change(members, user, role)?;
                let Some(role) = role else {
                    return Ok(MemberChange::Write(without(members, user)));
                };
                let mut new = members.to_vec();
                for m in new.iter_mut().filter(|m| m.user_id == user) {
                    m.role = role;
                }
                Ok(MemberChange::Write(new))
            })
            .await?;
        changed.map(|_| ()).ok_or_else(|| not_found("member"))
    }

    // ---- invitations

    pub(crate) async fn put_invitation(&self, invitation: &Invitation) -> Result<()> {
        self.check_open()?;
        let w = &invitation.workspace_id;
        if !self.exists(WORKSPACES, w).await? {
            return Err(not_found("workspace"));
        }
        let key = invitation_key(w, &invitation.email);
        let update = doc! { "$set": {
            "email": &invitation.email,
            "role": invitation.role.as_str(),
            "invitedBy": &invitation.invited_by,
            "invitedAt": invitation.invited_at,
            "expiresAt": invitation.expires_at,
        } };
        // Two first invitations of one address at once: both upserts may
        // try to insert, and the unique index refuses one; retried, it
        // finds the other's document and updates it.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self
                .coll(INVITATIONS)
                .update_one(key.clone(), update.clone())
                .upsert(true)
                .await
            {
                Ok(_) => break,
                Err(e) if is_duplicate(&e) && attempts < CAS_ATTEMPTS => continue,
                Err(e) => return Err(db_err(e)),
            }
        }
        if !self.exists(WORKSPACES, w).await? {
            // The workspace was deleted meanwhile: take the invitation back.
            self.coll(INVITATIONS)
                .delete_one(key)
                .await
                .map_err(db_err)?;
            return Err(not_found("workspace"));
        }
        Ok(())
    }

    pub(crate) async fn invitations(
        &self,
        workspace_id: &str,
        now: Millis,
    ) -> Result<Vec<Invitation>> {
        let cursor = self
            .coll(INVITATIONS)
            .find(doc! { "workspaceId": workspace_id, "expiresAt": { "$gt": now } })
            .sort(doc! { "invitedAt": 1, "emailKey": 1 })
            .await
            .map_err(db_err)?;
        collect(cursor)
            .await?
            .iter()
            .map(decode_invitation)
            .collect()
    }

    pub(crate) async fn delete_invitation(&self, workspace_id: &str, email: &str) -> Result<()> {
        self.check_open()?;
        let r = self
            .coll(INVITATIONS)
            .delete_one(invitation_key(workspace_id, email))
            .await
            .map_err(db_err)?;
        found(r.deleted_count, "invitation")
    }

    pub(crate) async fn accept_invitations(
        &self,
        user_id: &str,
        email: &str,
        now: Millis,
    ) -> Result<Vec<Member>> {
        self.check_open()?;
        if !self.exists(USERS, user_id).await? {
            return Err(not_found("user"));
        }
        let cursor = self
            .coll(INVITATIONS)
            .find(doc! { "emailKey": email_key(email) })
            .sort(doc! { "workspaceId": 1 })
            .await
            .map_err(db_err)?;
        let mut joined = Vec::new();
        for found in collect(cursor).await? {
            // Claim it: whoever deletes it (a cancel, another acceptance)
            // first decides; an invitation grants at most once.
            let Some(claimed) = self
                .coll(INVITATIONS)
                .find_one_and_delete(
                    doc! { "_id": found.get("_id").cloned().unwrap_or(Bson::Null) },
                )
                .await
                .map_err(db_err)?
            else {
                continue;
            };
            let invitation = decode_invitation(&claimed)?;
            if invitation.expires_at <= now {
                continue;
            }
            let member = Member {
                workspace_id: invitation.workspace_id,
                user_id: user_id.to_owned(),
                role: invitation.role,
                joined_at: now,
            };
            match self.add_member(&member).await {
                Ok(()) => joined.push(member),
                // Already a member, or the workspace is gone: nothing to grant.
                Err(StoreError::Conflict(_)) => {}
                Err(StoreError::NotFound(what)) if what == "workspace" => {}
                Err(e) => {
                    // Not granted: put the invitation back for a later try.
                    let _ = self.coll(INVITATIONS).insert_one(claimed).await;
                    return Err(e);
                }
            }
        }
        Ok(joined)
    }

    // ---- template listings

    pub(crate) async fn create_template(&self, template: &Template) -> Result<()> {
        self.check_open()?;
        let mut d = doc! {
            "_id": &template.id,
            "workspaceId": &template.workspace_id,
            "createdBy": &template.created_by,
            "createdAt": template.created_at,
        };
        d.extend(template_fields(template)?);
        if !self.exists(WORKSPACES, &template.workspace_id).await? {
            return Err(not_found("workspace"));
        }
        self.insert(TEMPLATES, d, "template").await?;
        self.verify_parent(
            WORKSPACES,
            &template.workspace_id,
            "workspace",
            &[(TEMPLATES, &template.id)],
        )
        .await
    }

    pub(crate) async fn template(&self, id: &str) -> Result<Option<Template>> {
        self.find_decoded(TEMPLATES, id, decode_template).await
    }

    pub(crate) async fn list_templates(
        &self,
        query: &TemplateQuery,
    ) -> Result<(Vec<Template>, u64)> {
        if query.workspace_ids.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let mut filter = doc! { "workspaceId": { "$in": &query.workspace_ids } };
        if let Some(tag) = &query.tag {
            // An array field equals a value when it holds it (exact match).
            filter.insert("tags", tag);
        }
        if let Some(needle) = query.search.as_deref().map(fold) {
            // A literal substring: `$indexOfCP` (no pattern syntax), the
            // needle wrapped in `$literal` so a leading `$` is not a path.
            let found = |field: &str| {
                doc! { "$gte": [
                    { "$indexOfCP": [field, { "$literal": &needle }] },
                    0,
                ] }
            };
            filter.insert(
                "$expr",
                doc! { "$or": [found("$nameFolded"), found("$descriptionFolded")] },
            );
        }
        let templates = self.coll(TEMPLATES);
        let total = templates
            .count_documents(filter.clone())
            .await
            .map_err(db_err)?;
        if query.limit == 0 {
            return Ok((Vec::new(), total));
        }
        let cursor = templates
            .find(filter)
            .sort(doc! { "updatedAt": -1, "_id": 1 })
            .skip(query.offset.min(i64::MAX as u64))
            .limit(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .await
            .map_err(db_err)?;
        let page = collect(cursor)
            .await?
            .iter()
            .map(decode_template)
            .collect::<Result<Vec<_>>>()?;
        Ok((page, total))
    }

    pub(crate) async fn update_template(&self, template: &Template) -> Result<()> {
        self.check_open()?;
        let r = self
            .coll(TEMPLATES)
            .update_one(
                doc! { "_id": &template.id },
                doc! { "$set": template_fields(template)? },
            )
            .await
            .map_err(db_err)?;
        found(r.matched_count, "template")
    }

    pub(crate) async fn delete_template(&self, id: &str) -> Result<()> {
        self.check_open()?;
        if self.delete_by_id(TEMPLATES, id).await? == 0 {
            return Err(not_found("template"));
        }
        Ok(())
    }
}
