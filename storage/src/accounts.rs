//! Accounts, sessions, workspaces and template listings: the records the
//! REST API manages, and the [`AccountStore`] trait every backend
//! implements.
//!
//! Ids are opaque strings chosen by the caller (the server generates
//! random ones). Times are milliseconds since the Unix epoch. E-mail
//! addresses are stored as given but compared lower-cased: the caller
//! normalises them before calling.
//!
//! Rules a backend enforces atomically (so two concurrent requests can't
//! both slip past a check):
//! - e-mail addresses are unique ([`StoreError::Conflict`]);
//! - a workspace always keeps at least one owner: demoting or removing its
//!   last owner fails with [`StoreError::Constraint`]`("last_owner")`;
//! - a refresh token is used at most once; presenting a used one revokes
//!   its whole session ([`RefreshOutcome::Reused`]);
//! - a one-time e-mailed token is used at most once, and spending a user's
//!   tokens of one kind ([`AccountStore::revoke_user_tokens`]) leaves none
//!   of them usable;
//! - accepting invitations turns each into a membership at most once.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A member's role in a workspace, from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    /// May edit documents.
    pub fn can_edit(self) -> bool {
        self >= Role::Editor
    }

    /// May manage members and workspace settings.
    pub fn can_admin(self) -> bool {
        self >= Role::Admin
    }
}

impl std::str::FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            other => Err(StoreError::Corrupt(format!("unknown role `{other}`"))),
        }
    }
}

/// An account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    /// argon2id PHC string; never leaves the server.
    pub password_hash: String,
    pub name: String,
    /// Presence colour shown to others (`#rrggbb`).
    pub color: String,
    /// Whether the owner of `email` proved it is theirs (by a token mailed
    /// to that address).
    pub email_verified: bool,
    /// A new address the user asked to change to, not yet confirmed by the
    /// token mailed to it. Until then `email` stays the account's address.
    /// Not unique: whoever confirms first gets the address.
    pub pending_email: Option<String>,
    /// Kept for old records; logins no longer count failures here (see the
    /// server's per-source login backoff, which nobody else can trigger).
    pub failed_login_attempts: u32,
    /// Kept for old records; no longer refuses logins.
    pub locked_until: Option<Millis>,
    pub last_login: Option<Millis>,
    pub password_changed_at: Millis,
    /// Free-form profile and preferences (organization, language, ...).
    pub profile: serde_json::Value,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A login session: one family of refresh tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: Millis,
    pub last_used_at: Millis,
    /// The refresh token family expires at this time.
    pub expires_at: Millis,
    pub revoked: bool,
    pub user_agent: String,
    pub ip: String,
}

/// Result of presenting a refresh token.
#[derive(Clone, Debug, PartialEq)]
pub enum RefreshOutcome {
    /// The token was current: it is now used, the new one is current.
    Rotated(Session),
    /// The token had already been used: the session is now revoked.
    Reused(Session),
    /// The session is revoked or expired.
    Inactive,
    /// No such token.
    Unknown,
}

/// Purpose of a one-time e-mailed token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Proves the account's current address.
    VerifyEmail,
    /// Sets a new password.
    ResetPassword,
    /// Proves the account's pending new address and makes it the address.
    ChangeEmail,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::VerifyEmail => "verify_email",
            TokenKind::ResetPassword => "reset_password",
            TokenKind::ChangeEmail => "change_email",
        }
    }
}

/// A one-time token of a user, mailed to `email` (stored by its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserToken {
    /// Hash of the token; the token itself is only in the mail.
    pub hash: String,
    pub user_id: String,
    pub kind: TokenKind,
    /// The address it was mailed to.
    pub email: String,
    pub expires_at: Millis,
}

/// A one-time token that [`AccountStore::consume_user_token`] just used up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsedToken {
    pub user_id: String,
    /// The address the token was mailed to: it proves control of this
    /// address only. Empty for tokens stored before tokens carried their
    /// address (they prove nothing).
    pub email: String,
}

/// An invitation to join a workspace, waiting for the owner of `email` to
/// prove the address is theirs. One per workspace and address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invitation {
    pub workspace_id: String,
    /// As given (lower-cased by the caller); compared ASCII-case-insensitively.
    pub email: String,
    /// The role the membership gets.
    pub role: Role,
    /// The user who sent (or last renewed) the invitation.
    pub invited_by: String,
    pub invited_at: Millis,
    /// From this time on the invitation is ignored.
    pub expires_at: Millis,
}

/// A workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_by: String,
    /// Free-form settings (visibility, collaboration mode, ...).
    pub settings: serde_json::Value,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A user's membership in a workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub workspace_id: String,
    pub user_id: String,
    pub role: Role,
    pub joined_at: Millis,
}

/// A template's listing record. Its content is the Yjs document of the
/// same id (see [`crate::DocStore`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub is_public: bool,
    pub created_by: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Bumped by every listing update and every REST content update.
    pub version: u64,
}

/// Filter and page of [`AccountStore::list_templates`].
#[derive(Clone, Debug, Default)]
pub struct TemplateQuery {
    /// Only templates of these workspaces (the caller's memberships).
    pub workspace_ids: Vec<String>,
    /// Only templates carrying this tag (exact match).
    pub tag: Option<String>,
    /// Case-insensitive substring of name or description.
    pub search: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// Persistence of accounts, sessions, workspaces and template listings.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    // ---- users
    /// Fails with `Conflict` if the (lower-cased) e-mail is taken.
    async fn create_user(&self, user: &User) -> Result<()>;
    async fn user(&self, id: &str) -> Result<Option<User>>;
    /// `email` must already be lower-cased.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    /// Replaces every field but `id` and `created_at`. `Conflict` if the
    /// new e-mail is taken, `NotFound` if the user is gone.
    async fn update_user(&self, user: &User) -> Result<()>;
    /// Deletes the user, their sessions, tokens and memberships, and every
    /// workspace where they were the only member (with its templates and
    /// data sources).
    /// Fails with `Constraint("last_owner")` if they are the last owner of
    /// a workspace that has other members. Returns the ids of the
    /// templates deleted, so their documents can be removed too.
    async fn delete_user(&self, id: &str) -> Result<Vec<String>>;

    // ---- sessions and refresh tokens
    /// Creates a session whose current refresh token has hash `refresh_hash`.
    async fn create_session(&self, session: &Session, refresh_hash: &str) -> Result<()>;
    async fn session(&self, id: &str) -> Result<Option<Session>>;
    /// Active (not revoked, not expired at `now`) sessions of a user.
    async fn sessions_for_user(&self, user_id: &str, now: Millis) -> Result<Vec<Session>>;
    /// Uses refresh token `old_hash` and makes `new_hash` current, see
    /// [`RefreshOutcome`]. Updates `last_used_at` to `now`.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: Millis,
    ) -> Result<RefreshOutcome>;
    /// Revokes one session. `NotFound` if it does not exist.
    async fn revoke_session(&self, id: &str) -> Result<()>;
    /// Revokes all sessions of a user except `keep`. Returns how many.
    async fn revoke_user_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64>;

    // ---- one-time tokens (e-mail verification, password reset, e-mail change)
    /// Stores a token. `NotFound` if its user is gone, `Conflict` if the
    /// hash exists.
    async fn create_user_token(&self, token: &UserToken) -> Result<()>;
    /// Marks the token used and returns its user and address, if it
    /// exists, has this kind, is unused and unexpired at `now`; otherwise
    /// `None`.
    async fn consume_user_token(
        &self,
        hash: &str,
        kind: TokenKind,
        now: Millis,
    ) -> Result<Option<UsedToken>>;
    /// Marks every unused token of `kind` of the user used (e.g. every
    /// password-reset link once the password changed). Returns how many.
    async fn revoke_user_tokens(&self, user_id: &str, kind: TokenKind) -> Result<u64>;

    // ---- workspaces and members
    /// Creates the workspace with `owner` as its first member (role owner).
    async fn create_workspace(&self, workspace: &Workspace, owner: &str) -> Result<()>;
    async fn workspace(&self, id: &str) -> Result<Option<Workspace>>;
    /// The workspaces a user belongs to, with their role, oldest first.
    async fn workspaces_for_user(&self, user_id: &str) -> Result<Vec<(Workspace, Role)>>;
    /// Replaces name, description, settings, updated_at. `NotFound` if gone.
    async fn update_workspace(&self, workspace: &Workspace) -> Result<()>;
    /// Deletes the workspace, its members, invitations, templates and
    /// data sources; returns the template ids. `NotFound` if gone.
    async fn delete_workspace(&self, id: &str) -> Result<Vec<String>>;
    async fn members(&self, workspace_id: &str) -> Result<Vec<Member>>;
    async fn member_role(&self, workspace_id: &str, user_id: &str) -> Result<Option<Role>>;
    /// `Conflict` if already a member.
    async fn add_member(&self, member: &Member) -> Result<()>;
    /// `NotFound` if not a member; `Constraint("last_owner")` if this would
    /// leave the workspace without an owner.
    async fn set_member_role(&self, workspace_id: &str, user_id: &str, role: Role) -> Result<()>;
    /// Same errors as [`AccountStore::set_member_role`].
    async fn remove_member(&self, workspace_id: &str, user_id: &str) -> Result<()>;

    // ---- invitations (memberships waiting for a verified address)
    /// Creates the invitation of its workspace and address, or replaces
    /// that one (role, inviter, times). `NotFound` if the workspace is gone.
    async fn put_invitation(&self, invitation: &Invitation) -> Result<()>;
    /// The workspace's invitations unexpired at `now`, oldest first.
    async fn invitations(&self, workspace_id: &str, now: Millis) -> Result<Vec<Invitation>>;
    /// Deletes the invitation of this workspace and address (expired or
    /// not). `NotFound` if there is none.
    async fn delete_invitation(&self, workspace_id: &str, email: &str) -> Result<()>;
    /// Makes `user_id` a member of every workspace that invited `email`
    /// (unexpired at `now`, workspace still there, not yet a member) with
    /// the invited role, joined at `now`, and deletes every invitation of
    /// `email`. Call it only once the user proved `email` is theirs.
    /// Returns the memberships created, by workspace id. `NotFound` if the
    /// user is gone.
    async fn accept_invitations(
        &self,
        user_id: &str,
        email: &str,
        now: Millis,
    ) -> Result<Vec<Member>>;

    // ---- template listings
    async fn create_template(&self, template: &Template) -> Result<()>;
    async fn template(&self, id: &str) -> Result<Option<Template>>;
    /// Matching templates, newest `updated_at` first, and the total count
    /// before paging.
    async fn list_templates(&self, query: &TemplateQuery) -> Result<(Vec<Template>, u64)>;
    /// Replaces every field but `id`, `workspace_id`, `created_by` and
    /// `created_at`. `NotFound` if gone.
    async fn update_template(&self, template: &Template) -> Result<()>;
    /// `NotFound` if gone.
    async fn delete_template(&self, id: &str) -> Result<()>;
}
