//! The account rules every backend keeps, written once.
//!
//! Each rule is a pure function of the records a backend has just read:
//! the backend reads (in its transaction, or in the single-document step
//! its database makes atomic), asks the rule what to do, and writes. So
//! the decisions (who may leave a workspace, what presenting a refresh
//! token does, which integers fit) are the same on every backend, and a
//! backend's own code is only how it reads and writes.
//!
//! Conditions a database checks inside one conditional write (a one-time
//! token is spent only when unused, of its kind and unexpired; an
//! invitation grants only before it expires) stay in that write, where
//! they are atomic. Permission levels are methods of [`Role`]
//! ([`Role::can_edit`], [`Role::can_admin`]).

use crate::accounts::{Member, Millis, Role, Session};
use crate::error::{Result, StoreError};

/// What makes two e-mail addresses equal: ASCII lower-casing (SQLite's
/// `lower()`), so every backend finds the same accounts.
pub fn email_key(email: &str) -> String {
    email.to_ascii_lowercase()
}

/// Case folding of template search (full Unicode lower-casing): a search
/// matches when the folded needle is a substring of the folded name or
/// description.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Counts and versions are stored as signed 64-bit integers (SQLite's
/// only integer type): larger values are refused as `out_of_range`, by
/// every backend alike.
pub fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Constraint("out_of_range"))
}

/// `StoreError::NotFound(what)`.
pub fn not_found(what: &str) -> StoreError {
    StoreError::NotFound(what.into())
}

/// `StoreError::Conflict(what)`.
pub fn conflict(what: &str) -> StoreError {
    StoreError::Conflict(what.into())
}

/// The last-owner rule for changing a member's role to `new_role`
/// (`None` = removing the member): `current` is the member's role (`None`
/// = not a member: `NotFound("member")`), `owners` the workspace's owner
/// count. A workspace never loses its last owner
/// (`Constraint("last_owner")`).
pub fn check_owner_change(
    current: Option<Role>,
    new_role: Option<Role>,
    owners: usize,
) -> Result<()> {
    let current = current.ok_or_else(|| not_found("member"))?;
    if current == Role::Owner && new_role != Some(Role::Owner) && owners <= 1 {
        return Err(StoreError::Constraint("last_owner"));
    }
    Ok(())
}

/// [`check_owner_change`] on a workspace's member list.
pub fn check_member_change(
    members: &[Member],
    user_id: &str,
    new_role: Option<Role>,
) -> Result<()> {
    let current = members
        .iter()
        .find(|m| m.user_id == user_id)
        .map(|m| m.role);
    check_owner_change(current, new_role, owner_count(members))
}

/// Owners among `members`.
pub fn owner_count(members: &[Member]) -> usize {
    members.iter().filter(|m| m.role == Role::Owner).count()
}

/// What deleting a user does to one workspace they belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    /// They are its only member: the workspace goes, with its templates.
    DeleteWorkspace,
    /// Others stay: only the membership goes.
    Leave,
}

/// The rule of [`crate::AccountStore::delete_user`] for one membership:
/// a sole member takes the workspace along; otherwise the user may leave
/// unless they are its last owner (`Constraint("last_owner")`).
pub fn departure(role: Role, owners: usize, members: usize) -> Result<Departure> {
    if members <= 1 {
        return Ok(Departure::DeleteWorkspace);
    }
    check_owner_change(Some(role), None, owners)?;
    Ok(Departure::Leave)
}

/// [`departure`] of `user_id` from a workspace with these members;
/// `None` when they are not one of them.
pub fn departure_from(members: &[Member], user_id: &str) -> Result<Option<Departure>> {
    let Some(me) = members.iter().find(|m| m.user_id == user_id) else {
        return Ok(None);
    };
    departure(me.role, owner_count(members), members.len()).map(Some)
}

/// Whether a session still accepts its refresh tokens at `now`.
pub fn session_active(session: &Session, now: Millis) -> bool {
    !session.revoked && session.expires_at > now
}

/// What presenting a refresh token does, decided on the token and its
/// session as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshStep {
    /// No such token, or its session is gone: `RefreshOutcome::Unknown`.
    Unknown,
    /// The session is revoked or expired: `RefreshOutcome::Inactive`,
    /// nothing changes.
    Inactive,
    /// The token was used before: someone replays it, so the whole session
    /// is revoked (`RefreshOutcome::Reused`).
    RevokeSession,
    /// The token is current: mark it used, make the new one current and
    /// touch the session (`RefreshOutcome::Rotated`).
    Rotate,
}

/// The refresh-token rule: rotation on first use, reuse detection after.
/// `token_used` is `None` when no token has that hash.
pub fn refresh_step(
    token_used: Option<bool>,
    session: Option<&Session>,
    now: Millis,
) -> RefreshStep {
    let (Some(used), Some(session)) = (token_used, session) else {
        return RefreshStep::Unknown;
    };
    if !session_active(session, now) {
        RefreshStep::Inactive
    } else if used {
        RefreshStep::RevokeSession
    } else {
        RefreshStep::Rotate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(user: &str, role: Role) -> Member {
        Member {
            workspace_id: "w".into(),
            user_id: user.into(),
            role,
            joined_at: 0,
        }
    }

    fn session(revoked: bool, expires_at: Millis) -> Session {
        Session {
            id: "s".into(),
            user_id: "u".into(),
            created_at: 0,
            last_used_at: 0,
            expires_at,
            revoked,
            user_agent: String::new(),
            ip: String::new(),
        }
    }

    #[test]
    fn the_last_owner_can_neither_leave_nor_be_demoted() {
        let one = [member("a", Role::Owner), member("b", Role::Editor)];
        for new_role in [None, Some(Role::Admin)] {
            assert!(matches!(
                check_member_change(&one, "a", new_role),
                Err(StoreError::Constraint("last_owner"))
            ));
        }
        assert!(check_member_change(&one, "a", Some(Role::Owner)).is_ok());
        assert!(check_member_change(&one, "b", None).is_ok());
        assert!(matches!(
            check_member_change(&one, "c", None),
            Err(StoreError::NotFound(_))
        ));
        let two = [member("a", Role::Owner), member("b", Role::Owner)];
        assert!(check_member_change(&two, "a", None).is_ok());
    }

    #[test]
    fn a_departing_user_takes_only_workspaces_they_alone_belong_to() {
        assert_eq!(
            departure(Role::Owner, 1, 1).unwrap(),
            Departure::DeleteWorkspace
        );
        assert_eq!(departure(Role::Viewer, 1, 2).unwrap(), Departure::Leave);
        assert_eq!(departure(Role::Owner, 2, 3).unwrap(), Departure::Leave);
        assert!(departure(Role::Owner, 1, 2).is_err());
    }

    #[test]
    fn refresh_tokens_rotate_once_and_a_replay_revokes() {
        let live = session(false, 100);
        assert_eq!(
            refresh_step(Some(false), Some(&live), 50),
            RefreshStep::Rotate
        );
        assert_eq!(
            refresh_step(Some(true), Some(&live), 50),
            RefreshStep::RevokeSession
        );
        assert_eq!(
            refresh_step(Some(false), Some(&live), 100),
            RefreshStep::Inactive
        );
        let revoked = session(true, 100);
        assert_eq!(
            refresh_step(Some(true), Some(&revoked), 50),
            RefreshStep::Inactive
        );
        assert_eq!(refresh_step(None, Some(&live), 50), RefreshStep::Unknown);
        assert_eq!(refresh_step(Some(false), None, 50), RefreshStep::Unknown);
    }

    #[test]
    fn integers_beyond_i64_are_refused_and_keys_fold() {
        assert_eq!(to_i64(7).unwrap(), 7);
        assert!(matches!(
            to_i64(u64::MAX),
            Err(StoreError::Constraint("out_of_range"))
        ));
        assert_eq!(email_key("Ann@EXAMPLE.org"), "ann@example.org");
        assert_eq!(fold("ÉTÉ"), "été");
    }
}
