//! Users, sessions and one-time tokens of the embedded store (half of
//! its [`crate::AccountStore`]; `workspaces` is the other).
//!
//! Every check-then-write runs inside one [`EmbeddedStore::write`]
//! closure: the writer thread runs it alone, in a savepoint, so no other
//! write can slip between the check and the change, and an error it
//! returns rolls back only its own changes. Reads use the read
//! connections. Referential integrity is kept by these closures, not by
//! SQLite foreign keys: a record that points at a user can only be
//! created while that user exists, and deletes cascade explicitly.

use rusqlite::{params, Connection};

use super::sql::*;
use super::EmbeddedStore;
use crate::accounts::{Millis, RefreshOutcome, Session, TokenKind, UsedToken, User, UserToken};
use crate::error::Result;
use crate::rules::{self, Departure, RefreshStep};

macro_rules! user_cols {
    () => {
        "id, email, password_hash, name, color, email_verified, failed_login_attempts, \
         locked_until, last_login, password_changed_at, profile, created_at, updated_at, \
         pending_email"
    };
}

macro_rules! session_cols {
    () => {
        "id, user_id, created_at, last_used_at, expires_at, revoked, user_agent, ip"
    };
}

const USER_BY_ID: &str = select!(user_cols!(), "FROM users WHERE id = ?1");
const USER_BY_EMAIL: &str = select!(user_cols!(), "FROM users WHERE lower(email) = lower(?1)");

impl EmbeddedStore {
    // ---- users

    pub(crate) async fn create_user(&self, user: &User) -> Result<()> {
        let u = user.clone();
        let profile = to_json(&u.profile)?;
        self.write(move |conn| {
            write_user(
                conn,
                concat!(
                    "INSERT INTO users (",
                    user_cols!(),
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                ),
                &u,
                &profile,
            )?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn user(&self, id: &str) -> Result<Option<User>> {
        self.one(USER_BY_ID, id, user_row).await
    }

    pub(crate) async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.one(USER_BY_EMAIL, email, user_row).await
    }

    pub(crate) async fn update_user(&self, user: &User) -> Result<()> {
        let u = user.clone();
        let profile = to_json(&u.profile)?;
        self.write(move |conn| {
            // ?12 (created_at) is bound but never changes.
            let changed = write_user(
                conn,
                "UPDATE users SET email = ?2, password_hash = ?3, name = ?4, color = ?5,
                   email_verified = ?6, failed_login_attempts = ?7, locked_until = ?8,
                   last_login = ?9, password_changed_at = ?10, profile = ?11,
                   updated_at = ?13, pending_email = ?14
                 WHERE id = ?1",
                &u,
                &profile,
            )?;
            found(changed, "user")
        })
        .await
    }

    pub(crate) async fn delete_user(&self, id: &str) -> Result<Vec<String>> {
        let id = id.to_owned();
        self.write(move |conn| {
            require_user(conn, &id)?;
            // (workspace, role, owners, members) for each membership.
            let memberships = query_all(
                conn,
                "SELECT m.workspace_id, m.role,
                   (SELECT COUNT(*) FROM members o
                     WHERE o.workspace_id = m.workspace_id AND o.role = 'owner'),
                   (SELECT COUNT(*) FROM members a WHERE a.workspace_id = m.workspace_id)
                 FROM members m WHERE m.user_id = ?1 ORDER BY m.workspace_id",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        role_col(r, 1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )?;
            let mut sole = Vec::new();
            for (workspace, role, owners, members) in memberships {
                if rules::departure(role, owners as usize, members as usize)?
                    == Departure::DeleteWorkspace
                {
                    sole.push(workspace);
                }
            }
            let mut templates = Vec::new();
            for workspace in &sole {
                templates.extend(purge_workspace(conn, workspace)?);
            }
            for sql in [
                "DELETE FROM members WHERE user_id = ?1",
                "DELETE FROM refresh_tokens
                  WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ?1)",
                "DELETE FROM sessions WHERE user_id = ?1",
                "DELETE FROM user_tokens WHERE user_id = ?1",
                "DELETE FROM users WHERE id = ?1",
            ] {
                exec(conn, sql, params![id])?;
            }
            Ok(templates)
        })
        .await
    }

    // ---- sessions and refresh tokens

    pub(crate) async fn create_session(&self, session: &Session, refresh_hash: &str) -> Result<()> {
        let s = session.clone();
        let hash = refresh_hash.to_owned();
        self.write(move |conn| {
            require_user(conn, &s.user_id)?;
            conn.prepare_cached(concat!(
                "INSERT INTO sessions (",
                session_cols!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))?
            .execute(params![
                s.id,
                s.user_id,
                s.created_at,
                s.last_used_at,
                s.expires_at,
                s.revoked,
                s.user_agent,
                s.ip,
            ])
            .map_err(unique_err("session"))?;
            insert_refresh_token(conn, &hash, &s.id)
        })
        .await
    }

    pub(crate) async fn session(&self, id: &str) -> Result<Option<Session>> {
        let id = id.to_owned();
        self.read(move |conn| load_session(conn, &id)).await
    }

    pub(crate) async fn sessions_for_user(
        &self,
        user_id: &str,
        now: Millis,
    ) -> Result<Vec<Session>> {
        self.read_all(
            select!(
                session_cols!(),
                "FROM sessions WHERE user_id = ?1 AND revoked = 0 AND expires_at > ?2
                      ORDER BY created_at, id"
            ),
            (user_id.to_owned(), now),
            session_row,
        )
        .await
    }

    pub(crate) async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: Millis,
    ) -> Result<RefreshOutcome> {
        let old_hash = old_hash.to_owned();
        let new_hash = new_hash.to_owned();
        self.write(move |conn| {
            let token = query_opt(
                conn,
                "SELECT session_id, used FROM refresh_tokens WHERE hash = ?1",
                params![old_hash],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)),
            )?;
            let session = match &token {
                Some((session_id, _)) => load_session(conn, session_id)?,
                None => None,
            };
            let step = rules::refresh_step(token.as_ref().map(|t| t.1), session.as_ref(), now);
            let (Some((session_id, _)), Some(mut session)) = (token, session) else {
                return Ok(RefreshOutcome::Unknown);
            };
            match step {
                RefreshStep::Unknown => return Ok(RefreshOutcome::Unknown),
                RefreshStep::Inactive => return Ok(RefreshOutcome::Inactive),
                RefreshStep::RevokeSession => {
                    exec(
                        conn,
                        "UPDATE sessions SET revoked = 1 WHERE id = ?1",
                        params![session_id],
                    )?;
                    session.revoked = true;
                    return Ok(RefreshOutcome::Reused(session));
                }
                RefreshStep::Rotate => {}
            }
            exec(
                conn,
                "UPDATE refresh_tokens SET used = 1 WHERE hash = ?1",
                params![old_hash],
            )?;
            insert_refresh_token(conn, &new_hash, &session_id)?;
            exec(
                conn,
                "UPDATE sessions SET last_used_at = ?2 WHERE id = ?1",
                params![session_id, now],
            )?;
            session.last_used_at = now;
            Ok(RefreshOutcome::Rotated(session))
        })
        .await
    }

    pub(crate) async fn revoke_session(&self, id: &str) -> Result<()> {
        self.write_found(
            "UPDATE sessions SET revoked = 1 WHERE id = ?1",
            (id.to_owned(),),
            "session",
        )
        .await
    }

    pub(crate) async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<u64> {
        let user_id = user_id.to_owned();
        let keep = keep.map(str::to_owned);
        self.write(move |conn| {
            let changed = exec(
                conn,
                "UPDATE sessions SET revoked = 1
                  WHERE user_id = ?1 AND revoked = 0 AND (?2 IS NULL OR id <> ?2)",
                params![user_id, keep],
            )?;
            Ok(changed as u64)
        })
        .await
    }

    // ---- one-time tokens

    pub(crate) async fn create_user_token(&self, token: &UserToken) -> Result<()> {
        let t = token.clone();
        self.write(move |conn| {
            require_user(conn, &t.user_id)?;
            conn.prepare_cached(
                "INSERT INTO user_tokens (hash, user_id, kind, expires_at, used, email)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            )?
            .execute(params![
                t.hash,
                t.user_id,
                t.kind.as_str(),
                t.expires_at,
                t.email
            ])
            .map_err(unique_err("token"))?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn consume_user_token(
        &self,
        hash: &str,
        kind: TokenKind,
        now: Millis,
    ) -> Result<Option<UsedToken>> {
        let hash = hash.to_owned();
        self.write(move |conn| {
            query_opt(
                conn,
                "UPDATE user_tokens SET used = 1
                  WHERE hash = ?1 AND kind = ?2 AND used = 0 AND expires_at > ?3
                  RETURNING user_id, email",
                params![hash, kind.as_str(), now],
                |r| {
                    Ok(UsedToken {
                        user_id: r.get(0)?,
                        email: r.get(1)?,
                    })
                },
            )
        })
        .await
    }

    pub(crate) async fn revoke_user_tokens(&self, user_id: &str, kind: TokenKind) -> Result<u64> {
        let user_id = user_id.to_owned();
        self.write(move |conn| {
            let changed = exec(
                conn,
                "UPDATE user_tokens SET used = 1 WHERE user_id = ?1 AND kind = ?2 AND used = 0",
                params![user_id, kind.as_str()],
            )?;
            Ok(changed as u64)
        })
        .await
    }
}

/// Runs `sql` with every field of `u` bound in the order of `user_cols!`
/// (`profile` is `u.profile` encoded); returns the rows changed.
fn write_user(conn: &Connection, sql: &str, u: &User, profile: &str) -> Result<usize> {
    conn.prepare_cached(sql)?
        .execute(params![
            u.id,
            u.email,
            u.password_hash,
            u.name,
            u.color,
            u.email_verified,
            u.failed_login_attempts,
            u.locked_until,
            u.last_login,
            u.password_changed_at,
            profile,
            u.created_at,
            u.updated_at,
            u.pending_email,
        ])
        .map_err(user_unique_err)
}

fn load_session(conn: &Connection, id: &str) -> Result<Option<Session>> {
    query_opt(
        conn,
        select!(session_cols!(), "FROM sessions WHERE id = ?1"),
        params![id],
        session_row,
    )
}

fn insert_refresh_token(conn: &Connection, hash: &str, session_id: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO refresh_tokens (hash, session_id, used) VALUES (?1, ?2, 0)")?
        .execute(params![hash, session_id])
        .map_err(unique_err("refresh token"))?;
    Ok(())
}
