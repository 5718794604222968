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
//!   its whole session ([`RefreshOutcome::Reused`]).

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
    pub email_verified: bool,
    pub failed_login_attempts: u32,
    /// While in the future, logins are refused.
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
    VerifyEmail,
    ResetPassword,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::VerifyEmail => "verify_email",
            TokenKind::ResetPassword => "reset_password",
        }
    }
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
    /// workspace where they were the only member (with its templates).
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

    // ---- one-time tokens (e-mail verification, password reset)
    async fn create_user_token(
        &self,
        hash: &str,
        user_id: &str,
        kind: TokenKind,
        expires_at: Millis,
    ) -> Result<()>;
    /// Marks the token used and returns its user, if it exists, has this
    /// kind, is unused and unexpired at `now`; otherwise `None`.
    async fn consume_user_token(
        &self,
        hash: &str,
        kind: TokenKind,
        now: Millis,
    ) -> Result<Option<String>>;

    // ---- workspaces and members
    /// Creates the workspace with `owner` as its first member (role owner).
    async fn create_workspace(&self, workspace: &Workspace, owner: &str) -> Result<()>;
    async fn workspace(&self, id: &str) -> Result<Option<Workspace>>;
    /// The workspaces a user belongs to, with their role, oldest first.
    async fn workspaces_for_user(&self, user_id: &str) -> Result<Vec<(Workspace, Role)>>;
    /// Replaces name, description, settings, updated_at. `NotFound` if gone.
    async fn update_workspace(&self, workspace: &Workspace) -> Result<()>;
    /// Deletes the workspace, its members and templates; returns the
    /// template ids. `NotFound` if gone.
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
