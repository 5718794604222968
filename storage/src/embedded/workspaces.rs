//! Workspaces, members, invitations and template listings of the
//! embedded store (the other half of its [`crate::AccountStore`], with
//! `users`; the same rules about writes hold).

use rusqlite::{params, Connection};

use super::sql::*;
use super::EmbeddedStore;
use crate::accounts::{Invitation, Member, Millis, Role, Template, TemplateQuery, Workspace};
use crate::error::Result;
use crate::rules;

macro_rules! invitation_cols {
    () => {
        "workspace_id, email, role, invited_by, invited_at, expires_at"
    };
}

macro_rules! workspace_cols {
    () => {
        "id, name, description, created_by, settings, created_at, updated_at"
    };
}

macro_rules! template_cols {
    () => {
        "id, workspace_id, name, description, tags, is_public, created_by, created_at, \
         updated_at, version"
    };
}

/// The `WHERE` clause shared by the count and the page of
/// `list_templates`. ?1 = JSON array of workspace ids, ?2 = tag or NULL,
/// ?3 = escaped LIKE pattern or NULL.
macro_rules! template_filter {
    () => {
        r"FROM templates
          WHERE workspace_id IN (SELECT value FROM json_each(?1))
            AND (?2 IS NULL OR EXISTS (
                  SELECT 1 FROM json_each(templates.tags) AS tag WHERE tag.value = ?2))
            AND (?3 IS NULL
                 OR name_folded LIKE ?3 ESCAPE '\'
                 OR description_folded LIKE ?3 ESCAPE '\')"
    };
}

const WORKSPACE_BY_ID: &str = select!(workspace_cols!(), "FROM workspaces WHERE id = ?1");
const TEMPLATE_BY_ID: &str = select!(template_cols!(), "FROM templates WHERE id = ?1");

impl EmbeddedStore {
    // ---- workspaces and members

    pub(crate) async fn create_workspace(&self, workspace: &Workspace, owner: &str) -> Result<()> {
        let w = workspace.clone();
        let owner = owner.to_owned();
        let settings = to_json(&w.settings)?;
        self.write(move |conn| {
            require_user(conn, &owner)?;
            conn.prepare_cached(concat!(
                "INSERT INTO workspaces (",
                workspace_cols!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))?
            .execute(params![
                w.id,
                w.name,
                w.description,
                w.created_by,
                settings,
                w.created_at,
                w.updated_at,
            ])
            .map_err(unique_err("workspace"))?;
            insert_member(
                conn,
                &Member {
                    workspace_id: w.id.clone(),
                    user_id: owner.clone(),
                    role: Role::Owner,
                    joined_at: w.created_at,
                },
            )
        })
        .await
    }

    pub(crate) async fn workspace(&self, id: &str) -> Result<Option<Workspace>> {
        self.one(WORKSPACE_BY_ID, id, workspace_row).await
    }

    pub(crate) async fn workspaces_for_user(
        &self,
        user_id: &str,
    ) -> Result<Vec<(Workspace, Role)>> {
        self.read_all(
            "SELECT w.id, w.name, w.description, w.created_by, w.settings, w.created_at,
                        w.updated_at, m.role
                   FROM members m JOIN workspaces w ON w.id = m.workspace_id
                  WHERE m.user_id = ?1
                  ORDER BY w.created_at, w.id",
            (user_id.to_owned(),),
            |r| Ok((workspace_row(r)?, role_col(r, 7)?)),
        )
        .await
    }

    pub(crate) async fn update_workspace(&self, workspace: &Workspace) -> Result<()> {
        let w = workspace.clone();
        let settings = to_json(&w.settings)?;
        self.write_found(
            "UPDATE workspaces SET name = ?2, description = ?3, settings = ?4,
                       updated_at = ?5
                     WHERE id = ?1",
            (w.id, w.name, w.description, settings, w.updated_at),
            "workspace",
        )
        .await
    }

    pub(crate) async fn delete_workspace(&self, id: &str) -> Result<Vec<String>> {
        let id = id.to_owned();
        self.write(move |conn| {
            require_workspace(conn, &id)?;
            purge_workspace(conn, &id)
        })
        .await
    }

    pub(crate) async fn members(&self, workspace_id: &str) -> Result<Vec<Member>> {
        self.read_all(
            "SELECT workspace_id, user_id, role, joined_at FROM members
                  WHERE workspace_id = ?1 ORDER BY joined_at, user_id",
            (workspace_id.to_owned(),),
            member_row,
        )
        .await
    }

    pub(crate) async fn member_role(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Option<Role>> {
        self.read_opt(
            "SELECT role FROM members WHERE workspace_id = ?1 AND user_id = ?2",
            (workspace_id.to_owned(), user_id.to_owned()),
            |r| role_col(r, 0),
        )
        .await
    }

    pub(crate) async fn add_member(&self, member: &Member) -> Result<()> {
        let m = member.clone();
        self.write(move |conn| {
            require_workspace(conn, &m.workspace_id)?;
            require_user(conn, &m.user_id)?;
            insert_member(conn, &m)
        })
        .await
    }

    pub(crate) async fn set_member_role(&self, ws: &str, user: &str, role: Role) -> Result<()> {
        self.change_member(ws, user, Some(role)).await
    }

    pub(crate) async fn remove_member(&self, ws: &str, user: &str) -> Result<()> {
        self.change_member(ws, user, None).await
    }

    /// Gives the member `role`, or removes them (`None`), under the
    /// last-owner rule.
    async fn change_member(&self, ws: &str, user: &str, role: Option<Role>) -> Result<()> {
        let (ws, user) = (ws.to_owned(), user.to_owned());
        self.write(move |conn| {
            check_owner_change(conn, &ws, &user, role)?;
            match role {
                Some(role) => exec(
                    conn,
                    "UPDATE members SET role = ?3 WHERE workspace_id = ?1 AND user_id = ?2",
                    params![ws, user, role.as_str()],
                ),
                None => exec(
                    conn,
                    "DELETE FROM members WHERE workspace_id = ?1 AND user_id = ?2",
                    params![ws, user],
                ),
            }?;
            Ok(())
        })
        .await
    }

    // ---- invitations

    pub(crate) async fn put_invitation(&self, invitation: &Invitation) -> Result<()> {
        let i = invitation.clone();
        self.write(move |conn| {
            require_workspace(conn, &i.workspace_id)?;
            conn.prepare_cached(
                "INSERT INTO invitations (workspace_id, email_key, email, role, invited_by,
                                          invited_at, expires_at)
                 VALUES (?1, lower(?2), ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (workspace_id, email_key) DO UPDATE SET
                   email = excluded.email, role = excluded.role,
                   invited_by = excluded.invited_by, invited_at = excluded.invited_at,
                   expires_at = excluded.expires_at",
            )?
            .execute(params![
                i.workspace_id,
                i.email,
                i.role.as_str(),
                i.invited_by,
                i.invited_at,
                i.expires_at,
            ])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn invitations(
        &self,
        workspace_id: &str,
        now: Millis,
    ) -> Result<Vec<Invitation>> {
        self.read_all(
            select!(
                invitation_cols!(),
                "FROM invitations WHERE workspace_id = ?1 AND expires_at > ?2
                      ORDER BY invited_at, email_key"
            ),
            (workspace_id.to_owned(), now),
            invitation_row,
        )
        .await
    }

    pub(crate) async fn delete_invitation(&self, workspace_id: &str, email: &str) -> Result<()> {
        self.write_found(
            "DELETE FROM invitations WHERE workspace_id = ?1 AND email_key = lower(?2)",
            (workspace_id.to_owned(), email.to_owned()),
            "invitation",
        )
        .await
    }

    pub(crate) async fn accept_invitations(
        &self,
        user_id: &str,
        email: &str,
        now: Millis,
    ) -> Result<Vec<Member>> {
        let user_id = user_id.to_owned();
        let email = email.to_owned();
        self.write(move |conn| {
            require_user(conn, &user_id)?;
            // Unexpired invitations of workspaces that still exist and do
            // not have this user yet.
            let joined = query_all(
                conn,
                "SELECT i.workspace_id, ?2, i.role, ?3 FROM invitations i
                  WHERE i.email_key = lower(?1) AND i.expires_at > ?3
                    AND EXISTS (SELECT 1 FROM workspaces w WHERE w.id = i.workspace_id)
                    AND NOT EXISTS (SELECT 1 FROM members m
                                     WHERE m.workspace_id = i.workspace_id
                                       AND m.user_id = ?2)
                  ORDER BY i.workspace_id",
                params![email, user_id, now],
                member_row,
            )?;
            for m in &joined {
                insert_member(conn, m)?;
            }
            exec(
                conn,
                "DELETE FROM invitations WHERE email_key = lower(?1)",
                params![email],
            )?;
            Ok(joined)
        })
        .await
    }

    // ---- template listings

    pub(crate) async fn create_template(&self, template: &Template) -> Result<()> {
        let t = template.clone();
        let tags = to_json(&t.tags)?;
        let version = rules::to_i64(t.version)?;
        self.write(move |conn| {
            require_workspace(conn, &t.workspace_id)?;
            conn.prepare_cached(concat!(
                "INSERT INTO templates (",
                template_cols!(),
                ", name_folded, description_folded)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ))?
            .execute(params![
                t.id,
                t.workspace_id,
                t.name,
                t.description,
                tags,
                t.is_public,
                t.created_by,
                t.created_at,
                t.updated_at,
                version,
                rules::fold(&t.name),
                rules::fold(&t.description),
            ])
            .map_err(unique_err("template"))?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn template(&self, id: &str) -> Result<Option<Template>> {
        self.one(TEMPLATE_BY_ID, id, template_row).await
    }

    pub(crate) async fn list_templates(
        &self,
        query: &TemplateQuery,
    ) -> Result<(Vec<Template>, u64)> {
        let workspaces = to_json(&query.workspace_ids)?;
        let tag = query.tag.clone();
        let pattern = query.search.as_deref().map(like_pattern);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        self.read(move |conn| {
            // One read transaction, so the count and the page agree.
            let tx = conn.unchecked_transaction()?;
            let total: i64 = tx
                .prepare_cached(concat!("SELECT COUNT(*) ", template_filter!()))?
                .query_row(params![workspaces, tag, pattern], |r| r.get(0))?;
            let page = query_all(
                &tx,
                concat!(
                    "SELECT ",
                    template_cols!(),
                    " ",
                    template_filter!(),
                    " ORDER BY updated_at DESC, id LIMIT ?4 OFFSET ?5"
                ),
                params![workspaces, tag, pattern, limit, offset],
                template_row,
            )?;
            tx.commit()?;
            Ok((page, total as u64))
        })
        .await
    }

    pub(crate) async fn update_template(&self, template: &Template) -> Result<()> {
        let t = template.clone();
        let tags = to_json(&t.tags)?;
        let version = rules::to_i64(t.version)?;
        let folded = (rules::fold(&t.name), rules::fold(&t.description));
        self.write_found(
            "UPDATE templates SET name = ?2, description = ?3, tags = ?4,
                       is_public = ?5, updated_at = ?6, version = ?7,
                       name_folded = ?8, description_folded = ?9
                     WHERE id = ?1",
            (
                t.id,
                t.name,
                t.description,
                tags,
                t.is_public,
                t.updated_at,
                version,
                folded.0,
                folded.1,
            ),
            "template",
        )
        .await
    }

    pub(crate) async fn delete_template(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write_found("DELETE FROM templates WHERE id = ?1", (id,), "template")
            .await
    }
}

fn insert_member(conn: &Connection, m: &Member) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO members (workspace_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        m.workspace_id,
        m.user_id,
        m.role.as_str(),
        m.joined_at
    ])
    .map_err(unique_err("member"))?;
    Ok(())
}
