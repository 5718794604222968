//! [`AccountStore`] for the MongoDB backend.
//!
//! No multi-document transactions: each rule is kept by single-document
//! operations.
//!
//! - **Unique e-mail**: a unique index on `emailKey` (the ASCII-lower-cased
//!   address, like the embedded store's `lower()`).
//! - **Last owner**: a workspace's members live *inside* its document
//!   (`members: [{userId, role, joinedAt}]`, with a multikey index on
//!   `members.userId` for "workspaces of a user"), next to a revision
//!   `rev`. A member change reads the document, checks the rule on that
//!   state and writes the new member list with a filter on the `rev` it
//!   read (`$inc` on success). Two owners demoting each other can't both
//!   pass: the second write finds `rev` changed, re-reads, and fails.
//! - **Single-use refresh tokens**: one `find_one_and_update` on the token
//!   document flips `used: false` to `true`; only one caller can.
//! - **One-time tokens**: the same, filtered on kind and expiry; spending
//!   all of a user's tokens of a kind is one `update_many`.
//! - **Invitations**: one document per (workspace, address), unique on
//!   both. Accepting one claims it with `find_one_and_delete` before the
//!   membership is added, so an invitation cancelled meanwhile grants
//!   nothing and one invitation grants at most once.
//! - **References** (a session needs its user, a template its workspace):
//!   the child is inserted first and the parent checked afterwards (the
//!   child is removed again if the parent is gone); deletes remove the
//!   parent first and the children after. Whatever the interleaving, no
//!   child outlives its parent.
//!
//! `delete_user` touches several documents: it checks every membership
//! first and changes nothing if one would break the last-owner rule; only
//! a concurrent change between that check and its guarded writes can make
//! it stop partway (still with `last_owner`, and never breaking the rule).
//!
//! Free-form JSON (`profile`, `settings`) is kept as JSON text, so any key
//! (`$`-prefixed, dotted) and number round-trips exactly.

use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::IndexModel;

use crate::accounts::{
    AccountStore, Invitation, Member, Millis, RefreshOutcome, Role, Session, Template,
    TemplateQuery, TokenKind, UsedToken, User, Workspace,
};
use crate::embedded_accounts::fold;
use crate::error::{Result, StoreError};
use crate::mongo::{collect, corrupt, db_err, get_i64, is_duplicate, MongoStore, CAS_ATTEMPTS};

const USERS: &str = "users";
const SESSIONS: &str = "sessions";
const REFRESH_TOKENS: &str = "refresh_tokens";
const USER_TOKENS: &str = "user_tokens";
const WORKSPACES: &str = "workspaces";
const INVITATIONS: &str = "invitations";
pub(crate) const TEMPLATES: &str = "templates";
const USERS_BY_EMAIL: &str = "users_by_email";

/// Creates the account collections' indexes (run by `connect`).
pub(crate) async fn create_indexes(store: &MongoStore) -> Result<()> {
    let index = |keys: Document, name: &str, unique: bool| {
        IndexModel::builder()
            .keys(keys)
            .options(
                IndexOptions::builder()
                    .name(name.to_owned())
                    .unique(unique)
                    .build(),
            )
            .build()
    };
    let wanted = [
        (USERS, index(doc! { "emailKey": 1 }, USERS_BY_EMAIL, true)),
        (
            SESSIONS,
            index(
                doc! { "userId": 1, "createdAt": 1 },
                "sessions_by_user",
                false,
            ),
        ),
        (
            REFRESH_TOKENS,
            index(doc! { "sessionId": 1 }, "refresh_by_session", false),
        ),
        (
            REFRESH_TOKENS,
            index(doc! { "userId": 1 }, "refresh_by_user", false),
        ),
        (
            USER_TOKENS,
            index(doc! { "userId": 1 }, "user_tokens_by_user", false),
        ),
        (
            WORKSPACES,
            index(doc! { "members.userId": 1 }, "workspaces_by_member", false),
        ),
        (
            INVITATIONS,
            index(
                doc! { "workspaceId": 1, "emailKey": 1 },
                "invitations_by_workspace",
                true,
            ),
        ),
        (
            INVITATIONS,
            index(doc! { "emailKey": 1 }, "invitations_by_email", false),
        ),
        (
            TEMPLATES,
            index(
                doc! { "workspaceId": 1, "updatedAt": -1 },
                "templates_by_workspace",
                false,
            ),
        ),
    ];
    for (coll, model) in wanted {
        store.coll(coll).create_index(model).await.map_err(db_err)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- helpers

/// What makes two e-mails equal: ASCII lower-casing, like SQLite `lower()`.
fn email_key(email: &str) -> String {
    email.to_ascii_lowercase()
}

fn not_found(what: &str) -> StoreError {
    StoreError::NotFound(what.into())
}

fn conflict(what: &str) -> StoreError {
    StoreError::Conflict(what.into())
}

/// Like the embedded store, refuse integers SQLite could not hold.
pub(crate) fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Constraint("out_of_range"))
}

fn get_str(d: &Document, key: &str, what: &str) -> Result<String> {
    d.get_str(key)
        .map(str::to_owned)
        .map_err(|_| corrupt(what, key))
}

fn get_bool(d: &Document, key: &str, what: &str) -> Result<bool> {
    d.get_bool(key).map_err(|_| corrupt(what, key))
}

fn get_opt_str(d: &Document, key: &str, what: &str) -> Result<Option<String>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(_) => get_str(d, key, what).map(Some),
    }
}

fn get_opt_i64(d: &Document, key: &str, what: &str) -> Result<Option<i64>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(_) => get_i64(d, key, what).map(Some),
    }
}

fn get_json(d: &Document, key: &str, what: &str) -> Result<serde_json::Value> {
    let text = get_str(d, key, what)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{what}.{key}: {e}")))
}

fn to_json(v: &serde_json::Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Unavailable(format!("cannot encode: {e}")))
}

fn opt(v: Option<i64>) -> Bson {
    v.map_or(Bson::Null, Bson::Int64)
}

// ---- users

fn user_fields(u: &User) -> Result<Document> {
    Ok(doc! {
        "email": &u.email,
        "emailKey": email_key(&u.email),
        "passwordHash": &u.password_hash,
        "name": &u.name,
        "color": &u.color,
        "emailVerified": u.email_verified,
        "failedLoginAttempts": i64::from(u.failed_login_attempts),
        "lockedUntil": opt(u.locked_until),
        "lastLogin": opt(u.last_login),
        "passwordChangedAt": u.password_changed_at,
        "profile": to_json(&u.profile)?,
        "updatedAt": u.updated_at,
        "pendingEmail": u.pending_email.as_ref().map_or(Bson::Null, |e| Bson::String(e.clone())),
    })
}

fn decode_user(d: &Document) -> Result<User> {
    const W: &str = "user";
    Ok(User {
        id: get_str(d, "_id", W)?,
        email: get_str(d, "email", W)?,
        password_hash: get_str(d, "passwordHash", W)?,
        name: get_str(d, "name", W)?,
        color: get_str(d, "color", W)?,
        email_verified: get_bool(d, "emailVerified", W)?,
        failed_login_attempts: u32::try_from(get_i64(d, "failedLoginAttempts", W)?)
            .map_err(|_| corrupt(W, "failedLoginAttempts"))?,
        locked_until: get_opt_i64(d, "lockedUntil", W)?,
        last_login: get_opt_i64(d, "lastLogin", W)?,
        password_changed_at: get_i64(d, "passwordChangedAt", W)?,
        profile: get_json(d, "profile", W)?,
        created_at: get_i64(d, "createdAt", W)?,
        updated_at: get_i64(d, "updatedAt", W)?,
        // Absent in users stored before e-mail changes were confirmed.
        pending_email: get_opt_str(d, "pendingEmail", W)?,
    })
}

/// A duplicate on a user write: the e-mail index or the id.
fn user_duplicate(e: &mongodb::error::Error) -> StoreError {
    if e.to_string().contains(USERS_BY_EMAIL) {
        conflict("email")
    } else {
        conflict("user")
    }
}

// ---- sessions

fn session_doc(s: &Session) -> Document {
    doc! {
        "_id": &s.id,
        "userId": &s.user_id,
        "createdAt": s.created_at,
        "lastUsedAt": s.last_used_at,
        "expiresAt": s.expires_at,
        "revoked": s.revoked,
        "userAgent": &s.user_agent,
        "ip": &s.ip,
    }
}

fn decode_session(d: &Document) -> Result<Session> {
    const W: &str = "session";
    Ok(Session {
        id: get_str(d, "_id", W)?,
        user_id: get_str(d, "userId", W)?,
        created_at: get_i64(d, "createdAt", W)?,
        last_used_at: get_i64(d, "lastUsedAt", W)?,
        expires_at: get_i64(d, "expiresAt", W)?,
        revoked: get_bool(d, "revoked", W)?,
        user_agent: get_str(d, "userAgent", W)?,
        ip: get_str(d, "ip", W)?,
    })
}

// ---- workspaces and members

fn decode_workspace(d: &Document) -> Result<Workspace> {
    const W: &str = "workspace";
    Ok(Workspace {
        id: get_str(d, "_id", W)?,
        name: get_str(d, "name", W)?,
        description: get_str(d, "description", W)?,
        created_by: get_str(d, "createdBy", W)?,
        settings: get_json(d, "settings", W)?,
        created_at: get_i64(d, "createdAt", W)?,
        updated_at: get_i64(d, "updatedAt", W)?,
    })
}

fn member_doc(user_id: &str, role: Role, joined_at: Millis) -> Document {
    doc! { "userId": user_id, "role": role.as_str(), "joinedAt": joined_at }
}

/// The members embedded in a workspace document, in stored order.
fn decode_members(d: &Document) -> Result<Vec<Member>> {
    const W: &str = "member";
    let workspace_id = get_str(d, "_id", "workspace")?;
    let list = d
        .get_array("members")
        .map_err(|_| corrupt("workspace", "members"))?;
    list.iter()
        .map(|m| {
            let m = m.as_document().ok_or_else(|| corrupt(W, "members"))?;
            Ok(Member {
                workspace_id: workspace_id.clone(),
                user_id: get_str(m, "userId", W)?,
                role: get_str(m, "role", W)?.parse()?,
                joined_at: get_i64(m, "joinedAt", W)?,
            })
        })
        .collect()
}

fn members_bson(members: &[Member]) -> Vec<Bson> {
    members
        .iter()
        .map(|m| Bson::Document(member_doc(&m.user_id, m.role, m.joined_at)))
        .collect()
}

fn owner_count(members: &[Member]) -> usize {
    members.iter().filter(|m| m.role == Role::Owner).count()
}

/// `NotFound` if `user_id` is not a member; `last_owner` if changing their
/// role to `new_role` (`None` = removing them) would leave no owner.
fn check_owner_change(members: &[Member], user_id: &str, new_role: Option<Role>) -> Result<()> {
    let current = members
        .iter()
        .find(|m| m.user_id == user_id)
        .ok_or_else(|| not_found("member"))?
        .role;
    if current == Role::Owner && new_role != Some(Role::Owner) && owner_count(members) <= 1 {
        return Err(StoreError::Constraint("last_owner"));
    }
    Ok(())
}

// ---- invitations

fn invitation_key(workspace_id: &str, email: &str) -> Document {
    doc! { "workspaceId": workspace_id, "emailKey": email_key(email) }
}

fn decode_invitation(d: &Document) -> Result<Invitation> {
    const W: &str = "invitation";
    Ok(Invitation {
        workspace_id: get_str(d, "workspaceId", W)?,
        email: get_str(d, "email", W)?,
        role: get_str(d, "role", W)?.parse()?,
        invited_by: get_str(d, "invitedBy", W)?,
        invited_at: get_i64(d, "invitedAt", W)?,
        expires_at: get_i64(d, "expiresAt", W)?,
    })
}

// ---- templates

fn template_fields(t: &Template) -> Result<Document> {
    Ok(doc! {
        "name": &t.name,
        "description": &t.description,
        "tags": &t.tags,
        "isPublic": t.is_public,
        "updatedAt": t.updated_at,
        "version": to_i64(t.version)?,
        "nameFolded": fold(&t.name),
        "descriptionFolded": fold(&t.description),
    })
}

fn decode_template(d: &Document) -> Result<Template> {
    const W: &str = "template";
    let tags = d
        .get_array("tags")
        .map_err(|_| corrupt(W, "tags"))?
        .iter()
        .map(|t| {
            t.as_str()
                .map(str::to_owned)
                .ok_or_else(|| corrupt(W, "tags"))
        })
        .collect::<Result<Vec<String>>>()?;
    Ok(Template {
        id: get_str(d, "_id", W)?,
        workspace_id: get_str(d, "workspaceId", W)?,
        name: get_str(d, "name", W)?,
        description: get_str(d, "description", W)?,
        tags,
        is_public: get_bool(d, "isPublic", W)?,
        created_by: get_str(d, "createdBy", W)?,
        created_at: get_i64(d, "createdAt", W)?,
        updated_at: get_i64(d, "updatedAt", W)?,
        version: u64::try_from(get_i64(d, "version", W)?).map_err(|_| corrupt(W, "version"))?,
    })
}

/// Outcome of [`MongoStore::change_members`]'s closure.
enum MemberChange {
    /// Write this member list.
    Write(Vec<Member>),
    /// Delete the whole workspace (its last member leaves).
    DeleteWorkspace,
    /// Nothing to write.
    Keep,
}

impl MongoStore {
    async fn find_by_id(&self, coll: &str, id: &str) -> Result<Option<Document>> {
        self.coll(coll)
            .find_one(doc! { "_id": id })
            .await
            .map_err(db_err)
    }

    pub(crate) async fn exists(&self, coll: &str, id: &str) -> Result<bool> {
        Ok(self
            .coll(coll)
            .find_one(doc! { "_id": id })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(db_err)?
            .is_some())
    }

    async fn delete_by_id(&self, coll: &str, id: &str) -> Result<u64> {
        Ok(self
            .coll(coll)
            .delete_one(doc! { "_id": id })
            .await
            .map_err(db_err)?
            .deleted_count)
    }

    /// Changes the members of workspace `id` as `f` decides on the current
    /// list, guarded by the document's revision: retried from a fresh read
    /// if another change got in between. `Ok(None)` if the workspace does
    /// not exist; `Ok(Some(deleted))` says whether it was deleted.
    async fn change_members(
        &self,
        id: &str,
        mut f: impl FnMut(&[Member]) -> Result<MemberChange>,
    ) -> Result<Option<bool>> {
        let workspaces = self.coll(WORKSPACES);
        for _ in 0..CAS_ATTEMPTS {
            let Some(w) = workspaces
                .find_one(doc! { "_id": id })
                .projection(doc! { "members": 1, "rev": 1 })
                .await
                .map_err(db_err)?
            else {
                return Ok(None);
            };
            let rev = get_i64(&w, "rev", "workspace")?;
            let members = decode_members(&w)?;
            let guard = doc! { "_id": id, "rev": rev };
            match f(&members)? {
                MemberChange::Keep => return Ok(Some(false)),
                MemberChange::Write(new) => {
                    let update = doc! {
                        "$set": { "members": members_bson(&new) },
                        "$inc": { "rev": 1 },
                    };
                    let r = workspaces.update_one(guard, update).await.map_err(db_err)?;
                    if r.matched_count == 1 {
                        return Ok(Some(false));
                    }
                }
                MemberChange::DeleteWorkspace => {
                    let r = workspaces.delete_one(guard).await.map_err(db_err)?;
                    if r.deleted_count == 1 {
                        return Ok(Some(true));
                    }
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "workspace `{id}` is changing too often to update its members"
        )))
    }

    /// Deletes the templates of a workspace that is already gone; returns
    /// their ids, sorted. A template created concurrently is either listed
    /// here or removed by its creator (who finds the workspace gone).
    async fn purge_templates(&self, workspace_id: &str) -> Result<Vec<String>> {
        let templates = self.coll(TEMPLATES);
        let cursor = templates
            .find(doc! { "workspaceId": workspace_id })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(db_err)?;
        let mut ids = collect(cursor)
            .await?
            .iter()
            .map(|d| get_str(d, "_id", "template"))
            .collect::<Result<Vec<String>>>()?;
        ids.sort();
        templates
            .delete_many(doc! { "workspaceId": workspace_id })
            .await
            .map_err(db_err)?;
        Ok(ids)
    }

    /// After inserting records that refer to `parent_id` in `parent`: if
    /// the parent is gone (deleted concurrently), deletes those records
    /// (`undo`: collection and `_id` of each) and fails with
    /// `NotFound(what)`.
    async fn verify_parent(
        &self,
        parent: &str,
        parent_id: &str,
        what: &str,
        undo: &[(&str, &str)],
    ) -> Result<()> {
        if self.exists(parent, parent_id).await? {
            return Ok(());
        }
        for (coll, id) in undo {
            self.delete_by_id(coll, id).await?;
        }
        Err(not_found(what))
    }

    async fn revoke_and_load(&self, session_id: &str) -> Result<Option<Session>> {
        self.coll(SESSIONS)
            .find_one_and_update(
                doc! { "_id": session_id },
                doc! { "$set": { "revoked": true } },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(decode_session)
            .transpose()
    }
}

// ---------------------------------------------------------------- the store

#[async_trait]
impl AccountStore for MongoStore {
    // ---- users

    async fn create_user(&self, user: &User) -> Result<()> {
        self.check_open()?;
        let mut d = doc! { "_id": &user.id, "createdAt": user.created_at };
        d.extend(user_fields(user)?);
        match self.coll(USERS).insert_one(d).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => Err(user_duplicate(&e)),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn user(&self, id: &str) -> Result<Option<User>> {
        self.find_by_id(USERS, id)
            .await?
            .as_ref()
            .map(decode_user)
            .transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.coll(USERS)
            .find_one(doc! { "emailKey": email_key(email) })
            .await
            .map_err(db_err)?
            .as_ref()
            .map(decode_user)
            .transpose()
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        self.check_open()?;
        let r = self
            .coll(USERS)
            .update_one(
                doc! { "_id": &user.id },
                doc! { "$set": user_fields(user)? },
            )
            .await;
        match r {
            Ok(r) if r.matched_count == 0 => Err(not_found("user")),
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => Err(conflict("email")),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn delete_user(&self, id: &str) -> Result<Vec<String>> {
        self.check_open()?;
        if !self.exists(USERS, id).await? {
            return Err(not_found("user"));
        }
        // 1. Check every membership before changing anything.
        let cursor = self
            .coll(WORKSPACES)
            .find(doc! { "members.userId": id })
            .projection(doc! { "members": 1 })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(db_err)?;
        let mut workspaces = Vec::new();
        for w in collect(cursor).await? {
            let members = decode_members(&w)?;
            if members.len() > 1 {
                check_owner_change(&members, id, None)?;
            }
            workspaces.push(get_str(&w, "_id", "workspace")?);
        }
        // 2. Leave each (guarded, re-checked on the current state); a
        //    workspace left without members goes, with its templates.
        let mut templates = Vec::new();
        for w in &workspaces {
            let deleted = self
                .change_members(w, |members| {
                    if !members.iter().any(|m| m.user_id == id) {
                        return Ok(MemberChange::Keep);
                    }
                    if members.len() <= 1 {
                        return Ok(MemberChange::DeleteWorkspace);
                    }
                    check_owner_change(members, id, None)?;
                    Ok(MemberChange::Write(
                        members
                            .iter()
                            .filter(|m| m.user_id != id)
                            .cloned()
                            .collect(),
                    ))
                })
                .await?;
            if deleted == Some(true) {
                templates.extend(self.purge_templates(w).await?);
            }
        }
        // 3. The user (frees the e-mail), then what refers to them.
        self.delete_by_id(USERS, id).await?;
        for coll in [SESSIONS, REFRESH_TOKENS, USER_TOKENS] {
            self.coll(coll)
                .delete_many(doc! { "userId": id })
                .await
                .map_err(db_err)?;
        }
        // A membership added while this ran (its adder saw the user).
        self.coll(WORKSPACES)
            .update_many(
                doc! { "members.userId": id },
                doc! { "$pull": { "members": { "userId": id } }, "$inc": { "rev": 1 } },
            )
            .await
            .map_err(db_err)?;
        Ok(templates)
    }

    // ---- sessions and refresh tokens

    async fn create_session(&self, session: &Session, refresh_hash: &str) -> Result<()> {
        self.check_open()?;
        if !self.exists(USERS, &session.user_id).await? {
            return Err(not_found("user"));
        }
        match self.coll(SESSIONS).insert_one(session_doc(session)).await {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => return Err(conflict("session")),
            Err(e) => return Err(db_err(e)),
        }
        let token = doc! {
            "_id": refresh_hash,
            "sessionId": &session.id,
            "userId": &session.user_id,
            "used": false,
        };
        if let Err(e) = self.coll(REFRESH_TOKENS).insert_one(token).await {
            self.delete_by_id(SESSIONS, &session.id).await?;
            return Err(if is_duplicate(&e) {
                conflict("refresh token")
            } else {
                db_err(e)
            });
        }
        self.verify_parent(
            USERS,
            &session.user_id,
            "user",
            &[(REFRESH_TOKENS, refresh_hash), (SESSIONS, &session.id)],
        )
        .await
    }

    async fn session(&self, id: &str) -> Result<Option<Session>> {
        self.find_by_id(SESSIONS, id)
            .await?
            .as_ref()
            .map(decode_session)
            .transpose()
    }

    async fn sessions_for_user(&self, user_id: &str, now: Millis) -> Result<Vec<Session>> {
        let cursor = self
            .coll(SESSIONS)
            .find(doc! { "userId": user_id, "revoked": false, "expiresAt": { "$gt": now } })
            .sort(doc! { "createdAt": 1, "_id": 1 })
            .await
            .map_err(db_err)?;
        collect(cursor).await?.iter().map(decode_session).collect()
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: Millis,
    ) -> Result<RefreshOutcome> {
        self.check_open()?;
        let Some(token) = self.find_by_id(REFRESH_TOKENS, old_hash).await? else {
            return Ok(RefreshOutcome::Unknown);
        };
        let session_id = get_str(&token, "sessionId", "refresh token")?;
        let used = get_bool(&token, "used", "refresh token")?;
        let Some(session) = self.session(&session_id).await? else {
            return Ok(RefreshOutcome::Unknown);
        };
        if session.revoked || session.expires_at <= now {
            return Ok(RefreshOutcome::Inactive);
        }
        let reused = |s: Option<Session>| s.map_or(RefreshOutcome::Unknown, RefreshOutcome::Reused);
        if used {
            return Ok(reused(self.revoke_and_load(&session_id).await?));
        }
        // The new token first (a taken hash fails here, changing nothing);
        // then the one atomic step: flip the old token from unused to used.
        let fresh = doc! {
            "_id": new_hash,
            "sessionId": &session_id,
            "userId": &session.user_id,
            "used": false,
        };
        match self.coll(REFRESH_TOKENS).insert_one(fresh).await {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => return Err(conflict("refresh token")),
            Err(e) => return Err(db_err(e)),
        }
        let claimed = self
            .coll(REFRESH_TOKENS)
            .find_one_and_update(
                doc! { "_id": old_hash, "used": false },
                doc! { "$set": { "used": true } },
            )
            .await
            .map_err(db_err)?;
        if claimed.is_none() {
            // Someone used it first: this is a reuse.
            self.delete_by_id(REFRESH_TOKENS, new_hash).await?;
            return Ok(reused(self.revoke_and_load(&session_id).await?));
        }
        let session = self
            .coll(SESSIONS)
            .find_one_and_update(
                doc! { "_id": &session_id },
                doc! { "$set": { "lastUsedAt": now } },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(db_err)?;
        Ok(match session {
            Some(s) => RefreshOutcome::Rotated(decode_session(&s)?),
            None => RefreshOutcome::Unknown,
        })
    }

    async fn revoke_session(&self, id: &str) -> Result<()> {
        self.check_open()?;
        let r = self
            .coll(SESSIONS)
            .update_one(doc! { "_id": id }, doc! { "$set": { "revoked": true } })
            .await
            .map_err(db_err)?;
        if r.matched_count == 0 {
            return Err(not_found("session"));
        }
        Ok(())
    }

    async fn revoke_user_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
        self.check_open()?;
        let mut filter = doc! { "userId": user_id, "revoked": false };
        if let Some(keep) = keep {
            filter.insert("_id", doc! { "$ne": keep });
        }
        let r = self
            .coll(SESSIONS)
            .update_many(filter, doc! { "$set": { "revoked": true } })
            .await
            .map_err(db_err)?;
        Ok(r.modified_count)
    }

    // ---- one-time tokens

    async fn create_user_token(
        &self,
        hash: &str,
        user_id: &str,
        kind: TokenKind,
        email: &str,
        expires_at: Millis,
    ) -> Result<()> {
        self.check_open()?;
        if !self.exists(USERS, user_id).await? {
            return Err(not_found("user"));
        }
        let token = doc! {
            "_id": hash,
            "userId": user_id,
            "kind": kind.as_str(),
            "email": email,
            "expiresAt": expires_at,
            "used": false,
        };
        match self.coll(USER_TOKENS).insert_one(token).await {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => return Err(conflict("token")),
            Err(e) => return Err(db_err(e)),
        }
        self.verify_parent(USERS, user_id, "user", &[(USER_TOKENS, hash)])
            .await
    }

    async fn consume_user_token(
        &self,
        hash: &str,
        kind: TokenKind,
        now: Millis,
    ) -> Result<Option<UsedToken>> {
        self.check_open()?;
        let Some(t) = self
            .coll(USER_TOKENS)
            .find_one_and_update(
                doc! {
                    "_id": hash,
                    "kind": kind.as_str(),
                    "used": false,
                    "expiresAt": { "$gt": now },
                },
                doc! { "$set": { "used": true } },
            )
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        Ok(Some(UsedToken {
            user_id: get_str(&t, "userId", "user token")?,
            // Absent in tokens stored before tokens carried their address.
            email: get_opt_str(&t, "email", "user token")?.unwrap_or_default(),
        }))
    }

    async fn revoke_user_tokens(&self, user_id: &str, kind: TokenKind) -> Result<u64> {
        self.check_open()?;
        let r = self
            .coll(USER_TOKENS)
            .update_many(
                doc! { "userId": user_id, "kind": kind.as_str(), "used": false },
                doc! { "$set": { "used": true } },
            )
            .await
            .map_err(db_err)?;
        Ok(r.modified_count)
    }

    // ---- workspaces and members

    async fn create_workspace(&self, workspace: &Workspace, owner: &str) -> Result<()> {
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
        match self.coll(WORKSPACES).insert_one(d).await {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => return Err(conflict("workspace")),
            Err(e) => return Err(db_err(e)),
        }
        self.verify_parent(USERS, owner, "user", &[(WORKSPACES, &workspace.id)])
            .await
    }

    async fn workspace(&self, id: &str) -> Result<Option<Workspace>> {
        self.find_by_id(WORKSPACES, id)
            .await?
            .as_ref()
            .map(decode_workspace)
            .transpose()
    }

    async fn workspaces_for_user(&self, user_id: &str) -> Result<Vec<(Workspace, Role)>> {
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

    async fn update_workspace(&self, workspace: &Workspace) -> Result<()> {
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
        if r.matched_count == 0 {
            return Err(not_found("workspace"));
        }
        Ok(())
    }

    async fn delete_workspace(&self, id: &str) -> Result<Vec<String>> {
        self.check_open()?;
        // The workspace (and with it every membership) first, then its
        // templates: a template created meanwhile finds no workspace and
        // removes itself.
        if self.delete_by_id(WORKSPACES, id).await? == 0 {
            return Err(not_found("workspace"));
        }
        self.coll(INVITATIONS)
            .delete_many(doc! { "workspaceId": id })
            .await
            .map_err(db_err)?;
        self.purge_templates(id).await
    }

    async fn members(&self, workspace_id: &str) -> Result<Vec<Member>> {
        let Some(d) = self.find_by_id(WORKSPACES, workspace_id).await? else {
            return Ok(Vec::new());
        };
        let mut members = decode_members(&d)?;
        members.sort_by(|x, y| (x.joined_at, &x.user_id).cmp(&(y.joined_at, &y.user_id)));
        Ok(members)
    }

    async fn member_role(&self, workspace_id: &str, user_id: &str) -> Result<Option<Role>> {
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

    async fn add_member(&self, member: &Member) -> Result<()> {
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

    async fn set_member_role(&self, workspace_id: &str, user_id: &str, role: Role) -> Result<()> {
        self.check_open()?;
        let changed = self
            .change_members(workspace_id, |members| {
                check_owner_change(members, user_id, Some(role))?;
                let mut new = members.to_vec();
                for m in new.iter_mut().filter(|m| m.user_id == user_id) {
                    m.role = role;
                }
                Ok(MemberChange::Write(new))
            })
            .await?;
        changed.map(|_| ()).ok_or_else(|| not_found("member"))
    }

    async fn remove_member(&self, workspace_id: &str, user_id: &str) -> Result<()> {
        self.check_open()?;
        let changed = self
            .change_members(workspace_id, |members| {
                check_owner_change(members, user_id, None)?;
                Ok(MemberChange::Write(
                    members
                        .iter()
                        .filter(|m| m.user_id != user_id)
                        .cloned()
                        .collect(),
                ))
            })
            .await?;
        changed.map(|_| ()).ok_or_else(|| not_found("member"))
    }

    // ---- invitations

    async fn put_invitation(&self, invitation: &Invitation) -> Result<()> {
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

    async fn invitations(&self, workspace_id: &str, now: Millis) -> Result<Vec<Invitation>> {
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

    async fn delete_invitation(&self, workspace_id: &str, email: &str) -> Result<()> {
        self.check_open()?;
        let r = self
            .coll(INVITATIONS)
            .delete_one(invitation_key(workspace_id, email))
            .await
            .map_err(db_err)?;
        if r.deleted_count == 0 {
            return Err(not_found("invitation"));
        }
        Ok(())
    }

    async fn accept_invitations(
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

    async fn create_template(&self, template: &Template) -> Result<()> {
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
        match self.coll(TEMPLATES).insert_one(d).await {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => return Err(conflict("template")),
            Err(e) => return Err(db_err(e)),
        }
        self.verify_parent(
            WORKSPACES,
            &template.workspace_id,
            "workspace",
            &[(TEMPLATES, &template.id)],
        )
        .await
    }

    async fn template(&self, id: &str) -> Result<Option<Template>> {
        self.find_by_id(TEMPLATES, id)
            .await?
            .as_ref()
            .map(decode_template)
            .transpose()
    }

    async fn list_templates(&self, query: &TemplateQuery) -> Result<(Vec<Template>, u64)> {
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

    async fn update_template(&self, template: &Template) -> Result<()> {
        self.check_open()?;
        let r = self
            .coll(TEMPLATES)
            .update_one(
                doc! { "_id": &template.id },
                doc! { "$set": template_fields(template)? },
            )
            .await
            .map_err(db_err)?;
        if r.matched_count == 0 {
            return Err(not_found("template"));
        }
        Ok(())
    }

    async fn delete_template(&self, id: &str) -> Result<()> {
        self.check_open()?;
        if self.delete_by_id(TEMPLATES, id).await? == 0 {
            return Err(not_found("template"));
        }
        Ok(())
    }
}
