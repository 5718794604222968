//! Account records of the MongoDB backend: collections, indexes,
//! document codecs and the guarded-update helpers that `users` and
//! `workspaces` (the [`crate::AccountStore`] operations) build on.
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

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;

use super::{collect, corrupt, db_err, get_i64, get_str, is_duplicate, MongoStore, CAS_ATTEMPTS};
use super::{get_bool, get_opt_i64, get_opt_str};
use super::{SESSIONS, TEMPLATES, USERS_BY_EMAIL, WORKSPACES};
use crate::accounts::{Invitation, Member, Millis, Role, Session, Template, User, Workspace};
use crate::error::{Result, StoreError};
use crate::rules::{conflict, email_key, fold, not_found, to_i64};

// ---------------------------------------------------------------- helpers

pub(super) fn get_json(d: &Document, key: &str, what: &str) -> Result<serde_json::Value> {
    let text = get_str(d, key, what)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{what}.{key}: {e}")))
}

pub(super) fn to_json(v: &serde_json::Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Unavailable(format!("cannot encode: {e}")))
}

pub(super) fn opt(v: Option<i64>) -> Bson {
    v.map_or(Bson::Null, Bson::Int64)
}

// ---- users

pub(super) fn user_fields(u: &User) -> Result<Document> {
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

pub(super) fn decode_user(d: &Document) -> Result<User> {
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
pub(super) fn user_duplicate(e: &mongodb::error::Error) -> StoreError {
    if e.to_string().contains(USERS_BY_EMAIL) {
        conflict("email")
    } else {
        conflict("user")
    }
}

// ---- sessions

pub(super) fn session_doc(s: &Session) -> Document {
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

pub(super) fn decode_session(d: &Document) -> Result<Session> {
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

pub(super) fn decode_workspace(d: &Document) -> Result<Workspace> {
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

pub(super) fn member_doc(user_id: &str, role: Role, joined_at: Millis) -> Document {
    doc! { "userId": user_id, "role": role.as_str(), "joinedAt": joined_at }
}

/// The members embedded in a workspace document, in stored order.
pub(super) fn decode_members(d: &Document) -> Result<Vec<Member>> {
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

pub(super) fn members_bson(members: &[Member]) -> Vec<Bson> {
    members
        .iter()
        .map(|m| Bson::Document(member_doc(&m.user_id, m.role, m.joined_at)))
        .collect()
}

/// The members but `user_id`.
pub(super) fn without(members: &[Member], user_id: &str) -> Vec<Member> {
    members
        .iter()
        .filter(|m| m.user_id != user_id)
        .cloned()
        .collect()
}

// ---- invitations

pub(super) fn invitation_key(workspace_id: &str, email: &str) -> Document {
    doc! { "workspaceId": workspace_id, "emailKey": email_key(email) }
}

pub(super) fn decode_invitation(d: &Document) -> Result<Invitation> {
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

pub(super) fn template_fields(t: &Template) -> Result<Document> {
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

pub(super) fn decode_template(d: &Document) -> Result<Template> {
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
pub(super) enum MemberChange {
    /// Write this member list.
    Write(Vec<Member>),
    /// Delete the whole workspace (its last member leaves).
    DeleteWorkspace,
    /// Nothing to write.
    Keep,
}

impl MongoStore {
    /// Inserts `d` into `coll`; a duplicate key is `Conflict(what)`.
    pub(super) async fn insert(&self, coll: &str, d: Document, what: &str) -> Result<()> {
        match self.coll(coll).insert_one(d).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => Err(conflict(what)),
            Err(e) => Err(db_err(e)),
        }
    }

    /// The document `id` of `coll`, decoded.
    pub(super) async fn find_decoded<T>(
        &self,
        coll: &str,
        id: &str,
        decode: fn(&Document) -> Result<T>,
    ) -> Result<Option<T>> {
        self.find_by_id(coll, id)
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    pub(super) async fn find_by_id(&self, coll: &str, id: &str) -> Result<Option<Document>> {
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

    pub(super) async fn delete_by_id(&self, coll: &str, id: &str) -> Result<u64> {
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
    pub(super) async fn change_members(
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
    pub(super) async fn purge_templates(&self, workspace_id: &str) -> Result<Vec<String>> {
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
    pub(super) async fn verify_parent(
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

    pub(super) async fn revoke_and_load(&self, session_id: &str) -> Result<Option<Session>> {
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
