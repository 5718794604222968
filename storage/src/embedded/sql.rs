//! SQL helpers of the embedded store: queries that map their errors,
//! statements that must change a row, the decoders of every account row,
//! and the checks that run inside a write.
//!
//! All SQL is constant text; every value is bound as a parameter.

/// `SELECT <columns> <rest>` as one constant string.
macro_rules! select {
    ($cols:expr, $rest:expr) => {
        concat!("SELECT ", $cols, " ", $rest)
    };
}

use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Params, Row};

use super::EmbeddedStore;
use crate::accounts::{Invitation, Member, Role, Session, Template, User, Workspace};
use crate::error::{Result, StoreError};
use crate::rules;

/// Maps a failed read: a value that does not decode is corruption, the
/// rest means the database could not answer.
pub(super) fn decode_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
        e => e.into(),
    }
}

/// True for a UNIQUE or PRIMARY KEY violation.
pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
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
pub(super) fn unique_err(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(what.into())
        } else {
            e.into()
        }
    }
}

/// A user insert/update conflict: on the e-mail index or on the id.
pub(super) fn user_unique_err(e: rusqlite::Error) -> StoreError {
    if is_unique_violation(&e) {
        let on_email = matches!(&e, rusqlite::Error::SqliteFailure(_, Some(msg))
            if msg.contains("users_by_email"));
        StoreError::Conflict(if on_email { "email" } else { "user" }.into())
    } else {
        e.into()
    }
}

pub(super) fn query_opt<T, P: Params>(
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

pub(super) fn query_all<T, P: Params>(
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

/// Decodes one row of a query result.
pub(super) type Decode<T> = fn(&Row<'_>) -> rusqlite::Result<T>;

impl EmbeddedStore {
    /// The first row of `sql` (bound to `args`) on a read connection.
    pub(super) async fn read_opt<T, P>(
        &self,
        sql: &'static str,
        args: P,
        decode: Decode<T>,
    ) -> Result<Option<T>>
    where
        T: Send + 'static,
        P: Params + Send + 'static,
    {
        self.read(move |conn| query_opt(conn, sql, args, decode))
            .await
    }

    /// Every row of `sql` (bound to `args`) on a read connection.
    pub(super) async fn read_all<T, P>(
        &self,
        sql: &'static str,
        args: P,
        decode: Decode<T>,
    ) -> Result<Vec<T>>
    where
        T: Send + 'static,
        P: Params + Send + 'static,
    {
        self.read(move |conn| query_all(conn, sql, args, decode))
            .await
    }

    /// [`Self::read_opt`] with one text parameter.
    pub(super) async fn one<T: Send + 'static>(
        &self,
        sql: &'static str,
        key: &str,
        decode: Decode<T>,
    ) -> Result<Option<T>> {
        self.read_opt(sql, (key.to_owned(),), decode).await
    }

    /// Runs one statement that must change a row (`NotFound(what)`
    /// otherwise) on the writer.
    pub(super) async fn write_found<P>(
        &self,
        sql: &'static str,
        args: P,
        what: &'static str,
    ) -> Result<()>
    where
        P: Params + Clone + Send + 'static,
    {
        self.write(move |conn| exec_found(conn, sql, args.clone(), what))
            .await
    }
}

/// Runs one statement; returns how many rows it changed.
pub(super) fn exec<P: Params>(conn: &Connection, sql: &str, p: P) -> Result<usize> {
    Ok(conn.prepare_cached(sql)?.execute(p)?)
}

/// Runs one statement that must change a row: `NotFound(what)` if none.
pub(super) fn exec_found<P: Params>(conn: &Connection, sql: &str, p: P, what: &str) -> Result<()> {
    found(exec(conn, sql, p)?, what)
}

/// `NotFound(what)` when a statement changed no row.
pub(super) fn found(changed: usize, what: &str) -> Result<()> {
    match changed {
        0 => Err(rules::not_found(what)),
        _ => Ok(()),
    }
}

pub(super) fn exists<P: Params>(conn: &Connection, sql: &str, p: P) -> Result<bool> {
    Ok(query_opt(conn, sql, p, |_| Ok(()))?.is_some())
}

pub(super) fn conversion_failure(
    i: usize,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e))
}

pub(super) fn json_col<T: serde::de::DeserializeOwned>(
    r: &Row<'_>,
    i: usize,
) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| conversion_failure(i, e))
}

pub(super) fn role_col(r: &Row<'_>, i: usize) -> rusqlite::Result<Role> {
    let text: String = r.get(i)?;
    text.parse::<Role>().map_err(|e| conversion_failure(i, e))
}

pub(super) fn u64_col(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(i)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

pub(super) fn to_json(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Unavailable(format!("cannot encode: {e}")))
}

/// `%needle%` with `\`, `%` and `_` escaped (for `ESCAPE '\'`).
pub(super) fn like_pattern(needle: &str) -> String {
    let needle = rules::fold(needle);
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

pub(super) fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
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

pub(super) fn invitation_row(r: &Row<'_>) -> rusqlite::Result<Invitation> {
    Ok(Invitation {
        workspace_id: r.get(0)?,
        email: r.get(1)?,
        role: role_col(r, 2)?,
        invited_by: r.get(3)?,
        invited_at: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

pub(super) fn session_row(r: &Row<'_>) -> rusqlite::Result<Session> {
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

pub(super) fn workspace_row(r: &Row<'_>) -> rusqlite::Result<Workspace> {
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

pub(super) fn member_row(r: &Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        workspace_id: r.get(0)?,
        user_id: r.get(1)?,
        role: role_col(r, 2)?,
        joined_at: r.get(3)?,
    })
}

pub(super) fn template_row(r: &Row<'_>) -> rusqlite::Result<Template> {
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

/// `NotFound("user")` unless the user exists.
pub(super) fn require_user(conn: &Connection, id: &str) -> Result<()> {
    require(conn, "SELECT 1 FROM users WHERE id = ?1", id, "user")
}

/// `NotFound("workspace")` unless the workspace exists.
pub(super) fn require_workspace(conn: &Connection, id: &str) -> Result<()> {
    require(
        conn,
        "SELECT 1 FROM workspaces WHERE id = ?1",
        id,
        "workspace",
    )
}

/// `NotFound("template")` unless a template listing has this id.
pub(super) fn require_template(conn: &Connection, id: &str) -> Result<()> {
    require(
        conn,
        "SELECT 1 FROM templates WHERE id = ?1",
        id,
        "template",
    )
}

fn require(conn: &Connection, sql: &str, id: &str, what: &str) -> Result<()> {
    if exists(conn, sql, params![id])? {
        Ok(())
    } else {
        Err(rules::not_found(what))
    }
}

/// The last-owner rule ([`rules::check_owner_change`]) on the stored
/// members of a workspace.
pub(super) fn check_owner_change(
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
    )?;
    let owners: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM members WHERE workspace_id = ?1 AND role = 'owner'")?
        .query_row(params![workspace_id], |r| r.get(0))?;
    rules::check_owner_change(current, new_role, owners as usize)
}

/// Deletes a workspace's templates, members, invitations, data sources
/// and row; returns the template ids.
pub(super) fn purge_workspace(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let templates = query_all(
        conn,
        "SELECT id FROM templates WHERE workspace_id = ?1 ORDER BY id",
        params![id],
        |r| r.get::<_, String>(0),
    )?;
    for sql in [
        "DELETE FROM templates WHERE workspace_id = ?1",
        "DELETE FROM members WHERE workspace_id = ?1",
        "DELETE FROM invitations WHERE workspace_id = ?1",
        "DELETE FROM data_sources WHERE workspace_id = ?1",
        "DELETE FROM workspaces WHERE id = ?1",
    ] {
        exec(conn, sql, params![id])?;
    }
    Ok(templates)
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
