//! [`AccountStore`] for the embedded SQLite backend.
//!
//! Every check-then-write runs inside one [`EmbeddedStore::write`] closure:
//! the writer thread runs it alone, in a savepoint, so no other write can
//! slip between the check and the change, and an error it returns rolls
//! back only its own changes. Reads use the pooled read connections.
//!
//! Referential integrity is kept by these closures, not by SQLite foreign
//! keys: a record that points at a user or workspace can only be created
//! while that user or workspace exists, and deletes cascade explicitly.
//!
//! All SQL is constant text; every value is bound as a parameter.

use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Params, Row};

use crate::accounts::{
    AccountStore, Invitation, Member, Millis, RefreshOutcome, Role, Session, Template,
    TemplateQuery, TokenKind, UsedToken, User, Workspace,
};
use crate::embedded::EmbeddedStore;
use crate::error::{Result, StoreError};

/// Tables of the account records (see [`create_schema`]).
///
/// `templates.name_folded` / `description_folded` hold the lower-cased
/// (full Unicode) name and description, which searches match against.
/// `user_tokens.email` is the address a token was mailed to (empty for
/// tokens stored before tokens carried one: they prove no address).
/// `invitations.email_key` is `lower(email)`, like the users' e-mail index.
const ACCOUNTS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id                    TEXT PRIMARY KEY,
    email                 TEXT NOT NULL,
    password_hash         TEXT NOT NULL,
    name                  TEXT NOT NULL,
    color                 TEXT NOT NULL,
    email_verified        INTEGER NOT NULL,
    failed_login_attempts INTEGER NOT NULL,
    locked_until          INTEGER,
    last_login            INTEGER,
    password_changed_at   INTEGER NOT NULL,
    profile               TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    pending_email         TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS users_by_email ON users(lower(email));
CREATE TABLE IF NOT EXISTS sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked      INTEGER NOT NULL,
    user_agent   TEXT NOT NULL,
    ip           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(user_id);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash       TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_session ON refresh_tokens(session_id);
CREATE TABLE IF NOT EXISTS user_tokens (
    hash       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    email      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS user_tokens_by_user ON user_tokens(user_id);
CREATE TABLE IF NOT EXISTS invitations (
    workspace_id TEXT NOT NULL,
    email_key    TEXT NOT NULL,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL,
    invited_by   TEXT NOT NULL,
    invited_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, email_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS invitations_by_email ON invitations(email_key);
CREATE TABLE IF NOT EXISTS workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    settings    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    workspace_id TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    role         TEXT NOT NULL,
    joined_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members(user_id);
CREATE TABLE IF NOT EXISTS templates (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL,
    tags               TEXT NOT NULL,
    is_public          INTEGER NOT NULL,
    created_by         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    version            INTEGER NOT NULL,
    name_folded        TEXT NOT NULL,
    description_folded TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS templates_by_workspace ON templates(workspace_id, updated_at);
";

/// Columns added to tables of older databases: (table, column, definition).
/// `ALTER TABLE ... ADD COLUMN` keeps every row; the default is what an
/// old row means (no pending address; a token that proves no address).
const ADDED_COLUMNS: [(&str, &str, &str); 2] = [
    ("users", "pending_email", "TEXT"),
    ("user_tokens", "email", "TEXT NOT NULL DEFAULT ''"),
];

/// Creates the account tables, and brings those of an older database up
/// to date. Run by [`EmbeddedStore::open`] before any other use.
pub(crate) fn create_schema(conn: &Connection) -> Result<()> {
    conn.execute_batch(ACCOUNTS_SCHEMA)?;
    for (table, column, definition) in ADDED_COLUMNS {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        if !names.iter().any(|n| n == column) {
            // Names and definitions are the constants above, never input.
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
            tracing::info!(table, column, "store: column added to an older database");
        }
    }
    Ok(())
}

macro_rules! user_cols {
    () => {
        "id, email, password_hash, name, color, email_verified, failed_login_attempts, \
         locked_until, last_login, password_changed_at, profile, created_at, updated_at, \
         pending_email"
    };
}

macro_rules! invitation_cols {
    () => {
        "workspace_id, email, role, invited_by, invited_at, expires_at"
    };
}

macro_rules! session_cols {
    () => {
        "id, user_id, created_at, last_used_at, expires_at, revoked, user_agent, ip"
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

// ---------------------------------------------------------------- helpers

/// Maps a failed read: a value that does not decode is corruption, the
/// rest means the database could not answer.
pub(crate) fn decode_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
        e => e.into(),
    }
}

/// True for a UNIQUE or PRIMARY KEY violation.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation
                && (f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}

/// Maps a failed insert or update: a uniqueness violation becomes
/// `Conflict(what)`.
fn unique_err(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(what.into())
        } else {
            e.into()
        }
    }
}

/// A user insert/update conflict: on the e-mail index or on the id.
fn user_unique_err(e: rusqlite::Error) -> StoreError {
    if is_unique_violation(&e) {
        let on_email = matches!(&e, rusqlite::Error::SqliteFailure(_, Some(msg))
            if msg.contains("users_by_email"));
        StoreError::Conflict(if on_email { "email" } else { "user" }.into())
    } else {
        e.into()
    }
}

pub(crate) fn query_opt<T, P: Params>(
    conn: &Connection,
    sql: &str,
    p: P,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    conn.prepare_cached(sql)?
        .query_row(p, f)
        .optional()
        .map_err(decode_err)
}

pub(crate) fn query_all<T, P: Params>(
    conn: &Connection,
    sql: &str,
    p: P,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, f).map_err(decode_err)?;
    rows.collect::<rusqlite::Result<Vec<T>>>()
        .map_err(decode_err)
}

fn exists<P: Params>(conn: &Connection, sql: &str, p: P) -> Result<bool> {
    Ok(query_opt(conn, sql, p, |_| Ok(()))?.is_some())
}

fn conversion_failure(
    i: usize,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e))
}

fn json_col<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| conversion_failure(i, e))
}

fn role_col(r: &Row<'_>, i: usize) -> rusqlite::Result<Role> {
    let text: String = r.get(i)?;
    text.parse::<Role>().map_err(|e| conversion_failure(i, e))
}

pub(crate) fn u64_col(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(i)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

fn to_json(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Unavailable(format!("cannot encode: {e}")))
}

/// SQLite integers are signed: larger values are refused.
pub(crate) fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Constraint("out_of_range"))
}

/// Case folding used by template search (full Unicode lower-casing).
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// `%needle%` with `\`, `%` and `_` escaped (for `ESCAPE '\'`).
fn like_pattern(needle: &str) -> String {
    let needle = fold(needle);
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        password_hash: r.get(2)?,
        name: r.get(3)?,
        color: r.get(4)?,
        email_verified: r.get(5)?,
        failed_login_attempts: r.get(6)?,
        locked_until: r.get(7)?,
        last_login: r.get(8)?,
        password_changed_at: r.get(9)?,
        profile: json_col(r, 10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        pending_email: r.get(13)?,
    })
}

fn invitation_row(r: &Row<'_>) -> rusqlite::Result<Invitation> {
    Ok(Invitation {
        workspace_id: r.get(0)?,
        email: r.get(1)?,
        role: role_col(r, 2)?,
        invited_by: r.get(3)?,
        invited_at: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

fn session_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        user_id: r.get(1)?,
        created_at: r.get(2)?,
        last_used_at: r.get(3)?,
        expires_at: r.get(4)?,
        revoked: r.get(5)?,
        user_agent: r.get(6)?,
        ip: r.get(7)?,
    })
}

fn workspace_row(r: &Row<'_>) -> rusqlite::Result<Workspace> {
    Ok(Workspace {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        created_by: r.get(3)?,
        settings: json_col(r, 4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

fn member_row(r: &Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        workspace_id: r.get(0)?,
        user_id: r.get(1)?,
        role: role_col(r, 2)?,
        joined_at: r.get(3)?,
    })
}

fn template_row(r: &Row<'_>) -> rusqlite::Result<Template> {
    Ok(Template {
        id: r.get(0)?,
        workspace_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        tags: json_col(r, 4)?,
        is_public: r.get(5)?,
        created_by: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        version: u64_col(r, 9)?,
    })
}

fn user_exists(conn: &Connection, id: &str) -> Result<bool> {
    exists(conn, "SELECT 1 FROM users WHERE id = ?1", params![id])
}

fn workspace_exists(conn: &Connection, id: &str) -> Result<bool> {
    exists(conn, "SELECT 1 FROM workspaces WHERE id = ?1", params![id])
}

fn load_session(conn: &Connection, id: &str) -> Result<Option<Session>> {
    query_opt(
        conn,
        concat!("SELECT ", session_cols!(), " FROM sessions WHERE id = ?1"),
        params![id],
        session_row,
    )
}

fn owner_count(conn: &Connection, workspace_id: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM members WHERE workspace_id = ?1 AND role = 'owner'")?
        .query_row(params![workspace_id], |r| r.get(0))?)
}

/// The role of a member, `NotFound` if not a member, and whether changing
/// it away from owner would leave the workspace without one.
fn check_owner_change(
    conn: &Connection,
    workspace_id: &str,
    user_id: &str,
    new_role: Option<Role>,
) -> Result<()> {
    let current = query_opt(
        conn,
        "SELECT role FROM members WHERE workspace_id = ?1 AND user_id = ?2",
        params![workspace_id, user_id],
        |r| role_col(r, 0),
    )?
    .ok_or_else(|| StoreError::NotFound("member".into()))?;
    if current == Role::Owner
        && new_role != Some(Role::Owner)
        && owner_count(conn, workspace_id)? <= 1
    {
        return Err(StoreError::Constraint("last_owner"));
    }
    Ok(())
}

/// Deletes a workspace's templates, members and row; returns the template
/// ids.
fn purge_workspace(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let templates = query_all(
        conn,
        "SELECT id FROM templates WHERE workspace_id = ?1 ORDER BY id",
        params![id],
        |r| r.get::<_, String>(0),
    )?;
    conn.prepare_cached("DELETE FROM templates WHERE workspace_id = ?1")?
        .execute(params![id])?;
    conn.prepare_cached("DELETE FROM members WHERE workspace_id = ?1")?
        .execute(params![id])?;
    conn.prepare_cached("DELETE FROM invitations WHERE workspace_id = ?1")?
        .execute(params![id])?;
    conn.prepare_cached("DELETE FROM workspaces WHERE id = ?1")?
        .execute(params![id])?;
    Ok(templates)
}

// ---------------------------------------------------------------- the store

#[async_trait]
impl AccountStore for EmbeddedStore {
    // ---- users

    async fn create_user(&self, user: &User) -> Result<()> {
        let u = user.clone();
        let profile = to_json(&u.profile)?;
        self.write(move |conn| {
            conn.prepare_cached(concat!(
                "INSERT INTO users (",
                user_cols!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            ))?
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
            .map_err(user_unique_err)?;
            Ok(())
        })
        .await
    }

    async fn user(&self, id: &str) -> Result<Option<User>> {
        let id = id.to_owned();
        self.read(move |conn| {
            query_opt(
                conn,
                concat!("SELECT ", user_cols!(), " FROM users WHERE id = ?1"),
                params![id],
                user_row,
            )
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let email = email.to_owned();
        self.read(move |conn| {
            query_opt(
                conn,
                concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users WHERE lower(email) = lower(?1)"
                ),
                params![email],
                user_row,
            )
        })
        .await
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        let u = user.clone();
        let profile = to_json(&u.profile)?;
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE users SET email = ?2, password_hash = ?3, name = ?4, color = ?5,
                       email_verified = ?6, failed_login_attempts = ?7, locked_until = ?8,
                       last_login = ?9, password_changed_at = ?10, profile = ?11,
                       updated_at = ?12, pending_email = ?13
                     WHERE id = ?1",
                )?
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
                    u.updated_at,
                    u.pending_email,
                ])
                .map_err(user_unique_err)?;
            if changed == 0 {
                return Err(StoreError::NotFound("user".into()));
            }
            Ok(())
        })
        .await
    }

    async fn delete_user(&self, id: &str) -> Result<Vec<String>> {
        let id = id.to_owned();
        self.write(move |conn| {
            if !user_exists(conn, &id)? {
                return Err(StoreError::NotFound("user".into()));
            }
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
                if members <= 1 {
                    sole.push(workspace);
                } else if role == Role::Owner && owners <= 1 {
                    return Err(StoreError::Constraint("last_owner"));
                }
            }
            let mut templates = Vec::new();
            for workspace in &sole {
                templates.extend(purge_workspace(conn, workspace)?);
            }
            conn.prepare_cached("DELETE FROM members WHERE user_id = ?1")?
                .execute(params![id])?;
            conn.prepare_cached(
                "DELETE FROM refresh_tokens
                  WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ?1)",
            )?
            .execute(params![id])?;
            conn.prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
                .execute(params![id])?;
            conn.prepare_cached("DELETE FROM user_tokens WHERE user_id = ?1")?
                .execute(params![id])?;
            conn.prepare_cached("DELETE FROM users WHERE id = ?1")?
                .execute(params![id])?;
            Ok(templates)
        })
        .await
    }

    // ---- sessions and refresh tokens

    async fn create_session(&self, session: &Session, refresh_hash: &str) -> Result<()> {
        let s = session.clone();
        let hash = refresh_hash.to_owned();
        self.write(move |conn| {
            if !user_exists(conn, &s.user_id)? {
                return Err(StoreError::NotFound("user".into()));
            }
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
            conn.prepare_cached(
                "INSERT INTO refresh_tokens (hash, session_id, used) VALUES (?1, ?2, 0)",
            )?
            .execute(params![hash, s.id])
            .map_err(unique_err("refresh token"))?;
            Ok(())
        })
        .await
    }

    async fn session(&self, id: &str) -> Result<Option<Session>> {
        let id = id.to_owned();
        self.read(move |conn| load_session(conn, &id)).await
    }

    async fn sessions_for_user(&self, user_id: &str, now: Millis) -> Result<Vec<Session>> {
        let user_id = user_id.to_owned();
        self.read(move |conn| {
            query_all(
                conn,
                concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM sessions WHERE user_id = ?1 AND revoked = 0 AND expires_at > ?2
                      ORDER BY created_at, id"
                ),
                params![user_id, now],
                session_row,
            )
        })
        .await
    }

    async fn rotate_refresh(
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
            let Some((session_id, used)) = token else {
                return Ok(RefreshOutcome::Unknown);
            };
            let Some(mut session) = load_session(conn, &session_id)? else {
                return Ok(RefreshOutcome::Unknown);
            };
            if session.revoked || session.expires_at <= now {
                return Ok(RefreshOutcome::Inactive);
            }
            if used {
                conn.prepare_cached("UPDATE sessions SET revoked = 1 WHERE id = ?1")?
                    .execute(params![session_id])?;
                session.revoked = true;
                return Ok(RefreshOutcome::Reused(session));
            }
            conn.prepare_cached("UPDATE refresh_tokens SET used = 1 WHERE hash = ?1")?
                .execute(params![old_hash])?;
            conn.prepare_cached(
                "INSERT INTO refresh_tokens (hash, session_id, used) VALUES (?1, ?2, 0)",
            )?
            .execute(params![new_hash, session_id])
            .map_err(unique_err("refresh token"))?;
            conn.prepare_cached("UPDATE sessions SET last_used_at = ?2 WHERE id = ?1")?
                .execute(params![session_id, now])?;
            session.last_used_at = now;
            Ok(RefreshOutcome::Rotated(session))
        })
        .await
    }

    async fn revoke_session(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            let changed = conn
                .prepare_cached("UPDATE sessions SET revoked = 1 WHERE id = ?1")?
                .execute(params![id])?;
            if changed == 0 {
                return Err(StoreError::NotFound("session".into()));
            }
            Ok(())
        })
        .await
    }

    async fn revoke_user_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
        let user_id = user_id.to_owned();
        let keep = keep.map(str::to_owned);
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE sessions SET revoked = 1
                      WHERE user_id = ?1 AND revoked = 0 AND (?2 IS NULL OR id <> ?2)",
                )?
                .execute(params![user_id, keep])?;
            Ok(changed as u64)
        })
        .await
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
        let hash = hash.to_owned();
        let user_id = user_id.to_owned();
        let email = email.to_owned();
        self.write(move |conn| {
            if !user_exists(conn, &user_id)? {
                return Err(StoreError::NotFound("user".into()));
            }
            conn.prepare_cached(
                "INSERT INTO user_tokens (hash, user_id, kind, expires_at, used, email)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            )?
            .execute(params![hash, user_id, kind.as_str(), expires_at, email])
            .map_err(unique_err("token"))?;
            Ok(())
        })
        .await
    }

    async fn consume_user_token(
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

    async fn revoke_user_tokens(&self, user_id: &str, kind: TokenKind) -> Result<u64> {
        let user_id = user_id.to_owned();
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE user_tokens SET used = 1
                      WHERE user_id = ?1 AND kind = ?2 AND used = 0",
                )?
                .execute(params![user_id, kind.as_str()])?;
            Ok(changed as u64)
        })
        .await
    }

    // ---- workspaces and members

    async fn create_workspace(&self, workspace: &Workspace, owner: &str) -> Result<()> {
        let w = workspace.clone();
        let owner = owner.to_owned();
        let settings = to_json(&w.settings)?;
        self.write(move |conn| {
            if !user_exists(conn, &owner)? {
                return Err(StoreError::NotFound("user".into()));
            }
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
            conn.prepare_cached(
                "INSERT INTO members (workspace_id, user_id, role, joined_at)
                 VALUES (?1, ?2, 'owner', ?3)",
            )?
            .execute(params![w.id, owner, w.created_at])
            .map_err(unique_err("member"))?;
            Ok(())
        })
        .await
    }

    async fn workspace(&self, id: &str) -> Result<Option<Workspace>> {
        let id = id.to_owned();
        self.read(move |conn| {
            query_opt(
                conn,
                concat!(
                    "SELECT ",
                    workspace_cols!(),
                    " FROM workspaces WHERE id = ?1"
                ),
                params![id],
                workspace_row,
            )
        })
        .await
    }

    async fn workspaces_for_user(&self, user_id: &str) -> Result<Vec<(Workspace, Role)>> {
        let user_id = user_id.to_owned();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT w.id, w.name, w.description, w.created_by, w.settings, w.created_at,
                        w.updated_at, m.role
                   FROM members m JOIN workspaces w ON w.id = m.workspace_id
                  WHERE m.user_id = ?1
                  ORDER BY w.created_at, w.id",
                params![user_id],
                |r| Ok((workspace_row(r)?, role_col(r, 7)?)),
            )
        })
        .await
    }

    async fn update_workspace(&self, workspace: &Workspace) -> Result<()> {
        let w = workspace.clone();
        let settings = to_json(&w.settings)?;
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE workspaces SET name = ?2, description = ?3, settings = ?4,
                       updated_at = ?5
                     WHERE id = ?1",
                )?
                .execute(params![w.id, w.name, w.description, settings, w.updated_at])?;
            if changed == 0 {
                return Err(StoreError::NotFound("workspace".into()));
            }
            Ok(())
        })
        .await
    }

    async fn delete_workspace(&self, id: &str) -> Result<Vec<String>> {
        let id = id.to_owned();
        self.write(move |conn| {
            if !workspace_exists(conn, &id)? {
                return Err(StoreError::NotFound("workspace".into()));
            }
            purge_workspace(conn, &id)
        })
        .await
    }

    async fn members(&self, workspace_id: &str) -> Result<Vec<Member>> {
        let workspace_id = workspace_id.to_owned();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT workspace_id, user_id, role, joined_at FROM members
                  WHERE workspace_id = ?1 ORDER BY joined_at, user_id",
                params![workspace_id],
                member_row,
            )
        })
        .await
    }

    async fn member_role(&self, workspace_id: &str, user_id: &str) -> Result<Option<Role>> {
        let workspace_id = workspace_id.to_owned();
        let user_id = user_id.to_owned();
        self.read(move |conn| {
            query_opt(
                conn,
                "SELECT role FROM members WHERE workspace_id = ?1 AND user_id = ?2",
                params![workspace_id, user_id],
                |r| role_col(r, 0),
            )
        })
        .await
    }

    async fn add_member(&self, member: &Member) -> Result<()> {
        let m = member.clone();
        self.write(move |conn| {
            if !workspace_exists(conn, &m.workspace_id)? {
                return Err(StoreError::NotFound("workspace".into()));
            }
            if !user_exists(conn, &m.user_id)? {
                return Err(StoreError::NotFound("user".into()));
            }
            conn.prepare_cached(
                "INSERT INTO members (workspace_id, user_id, role, joined_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                m.workspace_id,
                m.user_id,
                m.role.as_str(),
                m.joined_at
            ])
            .map_err(unique_err("member"))?;
            Ok(())
        })
        .await
    }

    async fn set_member_role(&self, workspace_id: &str, user_id: &str, role: Role) -> Result<()> {
        let workspace_id = workspace_id.to_owned();
        let user_id = user_id.to_owned();
        self.write(move |conn| {
            check_owner_change(conn, &workspace_id, &user_id, Some(role))?;
            conn.prepare_cached(
                "UPDATE members SET role = ?3 WHERE workspace_id = ?1 AND user_id = ?2",
            )?
            .execute(params![workspace_id, user_id, role.as_str()])?;
            Ok(())
        })
        .await
    }

    async fn remove_member(&self, workspace_id: &str, user_id: &str) -> Result<()> {
        let workspace_id = workspace_id.to_owned();
        let user_id = user_id.to_owned();
        self.write(move |conn| {
            check_owner_change(conn, &workspace_id, &user_id, None)?;
            conn.prepare_cached("DELETE FROM members WHERE workspace_id = ?1 AND user_id = ?2")?
                .execute(params![workspace_id, user_id])?;
            Ok(())
        })
        .await
    }

    // ---- invitations

    async fn put_invitation(&self, invitation: &Invitation) -> Result<()> {
        let i = invitation.clone();
        self.write(move |conn| {
            if !workspace_exists(conn, &i.workspace_id)? {
                return Err(StoreError::NotFound("workspace".into()));
            }
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

    async fn invitations(&self, workspace_id: &str, now: Millis) -> Result<Vec<Invitation>> {
        let workspace_id = workspace_id.to_owned();
        self.read(move |conn| {
            query_all(
                conn,
                concat!(
                    "SELECT ",
                    invitation_cols!(),
                    " FROM invitations WHERE workspace_id = ?1 AND expires_at > ?2
                      ORDER BY invited_at, email_key"
                ),
                params![workspace_id, now],
                invitation_row,
            )
        })
        .await
    }

    async fn delete_invitation(&self, workspace_id: &str, email: &str) -> Result<()> {
        let workspace_id = workspace_id.to_owned();
        let email = email.to_owned();
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "DELETE FROM invitations WHERE workspace_id = ?1 AND email_key = lower(?2)",
                )?
                .execute(params![workspace_id, email])?;
            if changed == 0 {
                return Err(StoreError::NotFound("invitation".into()));
            }
            Ok(())
        })
        .await
    }

    async fn accept_invitations(
        &self,
        user_id: &str,
        email: &str,
        now: Millis,
    ) -> Result<Vec<Member>> {
        let user_id = user_id.to_owned();
        let email = email.to_owned();
        self.write(move |conn| {
            if !user_exists(conn, &user_id)? {
                return Err(StoreError::NotFound("user".into()));
            }
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
                conn.prepare_cached(
                    "INSERT INTO members (workspace_id, user_id, role, joined_at)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    m.workspace_id,
                    m.user_id,
                    m.role.as_str(),
                    m.joined_at
                ])?;
            }
            conn.prepare_cached("DELETE FROM invitations WHERE email_key = lower(?1)")?
                .execute(params![email])?;
            Ok(joined)
        })
        .await
    }

    // ---- template listings

    async fn create_template(&self, template: &Template) -> Result<()> {
        let t = template.clone();
        let tags = to_json(&t.tags)?;
        let version = to_i64(t.version)?;
        self.write(move |conn| {
            if !workspace_exists(conn, &t.workspace_id)? {
                return Err(StoreError::NotFound("workspace".into()));
            }
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
                fold(&t.name),
                fold(&t.description),
            ])
            .map_err(unique_err("template"))?;
            Ok(())
        })
        .await
    }

    async fn template(&self, id: &str) -> Result<Option<Template>> {
        let id = id.to_owned();
        self.read(move |conn| {
            query_opt(
                conn,
                concat!("SELECT ", template_cols!(), " FROM templates WHERE id = ?1"),
                params![id],
                template_row,
            )
        })
        .await
    }

    async fn list_templates(&self, query: &TemplateQuery) -> Result<(Vec<Template>, u64)> {
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

    async fn update_template(&self, template: &Template) -> Result<()> {
        let t = template.clone();
        let tags = to_json(&t.tags)?;
        let version = to_i64(t.version)?;
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE templates SET name = ?2, description = ?3, tags = ?4,
                       is_public = ?5, updated_at = ?6, version = ?7,
                       name_folded = ?8, description_folded = ?9
                     WHERE id = ?1",
                )?
                .execute(params![
                    t.id,
                    t.name,
                    t.description,
                    tags,
                    t.is_public,
                    t.updated_at,
                    version,
                    fold(&t.name),
                    fold(&t.description),
                ])?;
            if changed == 0 {
                return Err(StoreError::NotFound("template".into()));
            }
            Ok(())
        })
        .await
    }

    async fn delete_template(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            let changed = conn
                .prepare_cached("DELETE FROM templates WHERE id = ?1")?
                .execute(params![id])?;
            if changed == 0 {
                return Err(StoreError::NotFound("template".into()));
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards_and_folds_case() {
        assert_eq!(like_pattern("A%b_C\\"), r"%a\%b\_c\\%");
        assert_eq!(like_pattern("ÉTÉ"), "%été%");
    }
}
