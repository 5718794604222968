//! Users, sessions and one-time tokens of the MongoDB backend (see
//! `accounts` for how each rule is kept without transactions).

use mongodb::bson::doc;
use mongodb::options::ReturnDocument;

use super::accounts::*;
use super::{collect, db_err, get_bool, get_opt_str, get_str, is_duplicate, MongoStore};
use super::{found, REFRESH_TOKENS, SESSIONS, USERS, USER_TOKENS, WORKSPACES};
use crate::accounts::{Millis, RefreshOutcome, Session, TokenKind, UsedToken, User, UserToken};
use crate::error::Result;
use crate::rules::{self, conflict, email_key, not_found, Departure, RefreshStep};

impl MongoStore {
    // ---- users

    pub(crate) async fn create_user(&self, user: &User) -> Result<()> {
        self.check_open()?;
        let mut d = doc! { "_id": &user.id, "createdAt": user.created_at };
        d.extend(user_fields(user)?);
        match self.coll(USERS).insert_one(d).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => Err(user_duplicate(&e)),
            Err(e) => Err(db_err(e)),
        }
    }

    pub(crate) async fn user(&self, id: &str) -> Result<Option<User>> {
        self.find_decoded(USERS, id, decode_user).await
    }

    pub(crate) async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.coll(USERS)
            .find_one(doc! { "emailKey": email_key(email) })
            .await
            .map_err(db_err)?
            .as_ref()
            .map(decode_user)
            .transpose()
    }

    pub(crate) async fn update_user(&self, user: &User) -> Result<()> {
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

    pub(crate) async fn delete_user(&self, id: &str) -> Result<Vec<String>> {
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
            rules::departure_from(&decode_members(&w)?, id)?;
            workspaces.push(get_str(&w, "_id", "workspace")?);
        }
        // 2. Leave each (guarded, re-checked on the current state); a
        //    workspace left without members goes, with its templates and
        //    data sources.
        let mut templates = Vec::new();
        for w in &workspaces {
            let deleted = self
                .change_members(w, |members| {
                    Ok(match rules::departure_from(members, id)? {
                        None => MemberChange::Keep,
                        Some(Departure::DeleteWorkspace) => MemberChange::DeleteWorkspace,
                        Some(Departure::Leave) => MemberChange::Write(without(members, id)),
                    })
                })
                .await?;
            if deleted == Some(true) {
                self.purge_data_sources(w).await?;
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

    pub(crate) async fn create_session(&self, session: &Session, refresh_hash: &str) -> Result<()> {
        self.check_open()?;
        if !self.exists(USERS, &session.user_id).await? {
            return Err(not_found("user"));
        }
        self.insert(SESSIONS, session_doc(session), "session")
            .await?;
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

    pub(crate) async fn session(&self, id: &str) -> Result<Option<Session>> {
        self.find_decoded(SESSIONS, id, decode_session).await
    }

    pub(crate) async fn sessions_for_user(
        &self,
        user_id: &str,
        now: Millis,
    ) -> Result<Vec<Session>> {
        let cursor = self
            .coll(SESSIONS)
            .find(doc! { "userId": user_id, "revoked": false, "expiresAt": { "$gt": now } })
            .sort(doc! { "createdAt": 1, "_id": 1 })
            .await
            .map_err(db_err)?;
        collect(cursor).await?.iter().map(decode_session).collect()
    }

    pub(crate) async fn rotate_refresh(
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
        let session = self.session(&session_id).await?;
        let reused = |s: Option<Session>| s.map_or(RefreshOutcome::Unknown, RefreshOutcome::Reused);
        let session = match (
            rules::refresh_step(Some(used), session.as_ref(), now),
            session,
        ) {
            (RefreshStep::Rotate, Some(session)) => session,
            (RefreshStep::RevokeSession, _) => {
                return Ok(reused(self.revoke_and_load(&session_id).await?));
            }
            (RefreshStep::Inactive, _) => return Ok(RefreshOutcome::Inactive),
            _ => return Ok(RefreshOutcome::Unknown),
        };
        // The new token first (a taken hash fails here, changing nothing);
        // then the one atomic step: flip the old token from unused to used.
        let fresh = doc! {
            "_id": new_hash,
            "sessionId": &session_id,
            "userId": &session.user_id,
            "used": false,
        };
        self.insert(REFRESH_TOKENS, fresh, "refresh token").await?;
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

    pub(crate) async fn revoke_session(&self, id: &str) -> Result<()> {
        self.check_open()?;
        let r = self
            .coll(SESSIONS)
            .update_one(doc! { "_id": id }, doc! { "$set": { "revoked": true } })
            .await
            .map_err(db_err)?;
        found(r.matched_count, "session")
    }

    pub(crate) async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<u64> {
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

    pub(crate) async fn create_user_token(&self, t: &UserToken) -> Result<()> {
        self.check_open()?;
        if !self.exists(USERS, &t.user_id).await? {
            return Err(not_found("user"));
        }
        let token = doc! {
            "_id": &t.hash,
            "userId": &t.user_id,
            "kind": t.kind.as_str(),
            "email": &t.email,
            "expiresAt": t.expires_at,
            "used": false,
        };
        self.insert(USER_TOKENS, token, "token").await?;
        self.verify_parent(USERS, &t.user_id, "user", &[(USER_TOKENS, &t.hash)])
            .await
    }

    pub(crate) async fn consume_user_token(
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

    pub(crate) async fn revoke_user_tokens(&self, user_id: &str, kind: TokenKind) -> Result<u64> {
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
}
