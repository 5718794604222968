//! [`AccountStore`] for the volatile [`MemoryStore`].
//!
//! All account records live under one mutex, taken once per call, so every
//! check-then-write is atomic. The semantics match the embedded backend
//! exactly (the shared suite in `tests/account_store.rs` runs on both):
//! e-mails compare ASCII-case-insensitively (like SQLite's `lower()`),
//! template search folds full Unicode case (like the embedded store's
//! folded columns).

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;

use crate::accounts::{
    AccountStore, Invitation, Member, Millis, RefreshOutcome, Role, Session, Template,
    TemplateQuery, TokenKind, UsedToken, User, Workspace,
};
use crate::embedded_accounts::fold;
use crate::error::{Result, StoreError};
use crate::memory::MemoryStore;

struct RefreshToken {
    session_id: String,
    used: bool,
}

struct UserToken {
    user_id: String,
    kind: TokenKind,
    /// The address the token was mailed to.
    email: String,
    expires_at: Millis,
    used: bool,
}

/// Every account record of a [`MemoryStore`].
#[derive(Default)]
pub(crate) struct Accounts {
    users: HashMap<String, User>,
    /// E-mail key (see [`email_key`]) -> user id.
    emails: HashMap<String, String>,
    sessions: HashMap<String, Session>,
    /// Refresh token hash -> token.
    refresh: HashMap<String, RefreshToken>,
    /// One-time token hash -> token.
    user_tokens: HashMap<String, UserToken>,
    workspaces: HashMap<String, Workspace>,
    /// (workspace id, user id) -> membership.
    members: BTreeMap<(String, String), Member>,
    /// (workspace id, e-mail key) -> invitation.
    invitations: BTreeMap<(String, String), Invitation>,
    templates: HashMap<String, Template>,
}

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

/// SQLite integers are signed; refuse what the embedded store refuses.
fn check_version(v: u64) -> Result<()> {
    if i64::try_from(v).is_err() {
        return Err(StoreError::Constraint("out_of_range"));
    }
    Ok(())
}

impl Accounts {
    /// Whether a template listing has this id.
    pub(crate) fn has_template(&self, id: &str) -> bool {
        self.templates.contains_key(id)
    }

    fn members_of<'a>(&'a self, workspace_id: &'a str) -> impl Iterator<Item = &'a Member> + 'a {
        self.members
            .range((workspace_id.to_owned(), String::new())..)
            .take_while(move |((w, _), _)| w == workspace_id)
            .map(|(_, m)| m)
    }

    fn owner_count(&self, workspace_id: &str) -> usize {
        self.members_of(workspace_id)
            .filter(|m| m.role == Role::Owner)
            .count()
    }

    /// `NotFound` if not a member; `last_owner` if changing the member's
    /// role to `new_role` (`None` = removing them) leaves no owner.
    fn check_owner_change(
        &self,
        workspace_id: &str,
        user_id: &str,
        new_role: Option<Role>,
    ) -> Result<()> {
        let current = self
            .members
            .get(&(workspace_id.to_owned(), user_id.to_owned()))
            .ok_or_else(|| not_found("member"))?
            .role;
        if current == Role::Owner
            && new_role != Some(Role::Owner)
            && self.owner_count(workspace_id) <= 1
        {
            return Err(StoreError::Constraint("last_owner"));
        }
        Ok(())
    }

    /// Deletes a workspace, its members and templates; returns the
    /// template ids, sorted.
    fn purge_workspace(&mut self, id: &str) -> Vec<String> {
        let mut templates: Vec<String> = self
            .templates
            .values()
            .filter(|t| t.workspace_id == id)
            .map(|t| t.id.clone())
            .collect();
        templates.sort();
        for t in &templates {
            self.templates.remove(t);
        }
        self.members.retain(|(w, _), _| w != id);
        self.invitations.retain(|(w, _), _| w != id);
        self.workspaces.remove(id);
        templates
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    // ---- users

    async fn create_user(&self, user: &User) -> Result<()> {
        let mut a = self.accounts.lock();
        let key = email_key(&user.email);
        if a.emails.contains_key(&key) {
            return Err(conflict("email"));
        }
        if a.users.contains_key(&user.id) {
            return Err(conflict("user"));
        }
        a.emails.insert(key, user.id.clone());
        a.users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn user(&self, id: &str) -> Result<Option<User>> {
        Ok(self.accounts.lock().users.get(id).cloned())
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let a = self.accounts.lock();
        Ok(a.emails
            .get(&email_key(email))
            .and_then(|id| a.users.get(id))
            .cloned())
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        let mut a = self.accounts.lock();
        let Some(old) = a.users.get(&user.id) else {
            return Err(not_found("user"));
        };
        let old_key = email_key(&old.email);
        let created_at = old.created_at;
        let new_key = email_key(&user.email);
        if a.emails.get(&new_key).is_some_and(|id| *id != user.id) {
            return Err(conflict("email"));
        }
        a.emails.remove(&old_key);
        a.emails.insert(new_key, user.id.clone());
        let mut updated = user.clone();
        updated.created_at = created_at;
        a.users.insert(user.id.clone(), updated);
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> Result<Vec<String>> {
        let mut a = self.accounts.lock();
        let Some(user) = a.users.get(id) else {
            return Err(not_found("user"));
        };
        let email = email_key(&user.email);
        let mut memberships: Vec<(String, Role)> = a
            .members
            .values()
            .filter(|m| m.user_id == id)
            .map(|m| (m.workspace_id.clone(), m.role))
            .collect();
        memberships.sort();
        let mut sole = Vec::new();
        for (workspace, role) in memberships {
            if a.members_of(&workspace).count() <= 1 {
                sole.push(workspace);
            } else if role == Role::Owner && a.owner_count(&workspace) <= 1 {
                return Err(StoreError::Constraint("last_owner"));
            }
        }
        let mut templates = Vec::new();
        for workspace in &sole {
            templates.extend(a.purge_workspace(workspace));
        }
        a.members.retain(|(_, u), _| u != id);
        let sessions: HashSet<String> = a
            .sessions
            .values()
            .filter(|s| s.user_id == id)
            .map(|s| s.id.clone())
            .collect();
        a.refresh.retain(|_, t| !sessions.contains(&t.session_id));
        a.sessions.retain(|_, s| s.user_id != id);
        a.user_tokens.retain(|_, t| t.user_id != id);
        a.emails.remove(&email);
        a.users.remove(id);
        Ok(templates)
    }

    // ---- sessions and refresh tokens

    async fn create_session(&self, session: &Session, refresh_hash: &str) -> Result<()> {
        let mut a = self.accounts.lock();
        if !a.users.contains_key(&session.user_id) {
            return Err(not_found("user"));
        }
        if a.sessions.contains_key(&session.id) {
            return Err(conflict("session"));
        }
        if a.refresh.contains_key(refresh_hash) {
            return Err(conflict("refresh token"));
        }
        a.sessions.insert(session.id.clone(), session.clone());
        a.refresh.insert(
            refresh_hash.to_owned(),
            RefreshToken {
                session_id: session.id.clone(),
                used: false,
            },
        );
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<Session>> {
        Ok(self.accounts.lock().sessions.get(id).cloned())
    }

    async fn sessions_for_user(&self, user_id: &str, now: Millis) -> Result<Vec<Session>> {
        let a = self.accounts.lock();
        let mut out: Vec<Session> = a
            .sessions
            .values()
            .filter(|s| s.user_id == user_id && !s.revoked && s.expires_at > now)
            .cloned()
            .collect();
        out.sort_by(|x, y| (x.created_at, &x.id).cmp(&(y.created_at, &y.id)));
        Ok(out)
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: Millis,
    ) -> Result<RefreshOutcome> {
        let mut guard = self.accounts.lock();
        let a = &mut *guard;
        let Some(token) = a.refresh.get(old_hash) else {
            return Ok(RefreshOutcome::Unknown);
        };
        let (session_id, used) = (token.session_id.clone(), token.used);
        let Some(session) = a.sessions.get_mut(&session_id) else {
            return Ok(RefreshOutcome::Unknown);
        };
        if session.revoked || session.expires_at <= now {
            return Ok(RefreshOutcome::Inactive);
        }
        if used {
            session.revoked = true;
            return Ok(RefreshOutcome::Reused(session.clone()));
        }
        if a.refresh.contains_key(new_hash) {
            return Err(conflict("refresh token"));
        }
        session.last_used_at = now;
        let session = session.clone();
        if let Some(token) = a.refresh.get_mut(old_hash) {
            token.used = true;
        }
        a.refresh.insert(
            new_hash.to_owned(),
            RefreshToken {
                session_id,
                used: false,
            },
        );
        Ok(RefreshOutcome::Rotated(session))
    }

    async fn revoke_session(&self, id: &str) -> Result<()> {
        let mut a = self.accounts.lock();
        let session = a.sessions.get_mut(id).ok_or_else(|| not_found("session"))?;
        session.revoked = true;
        Ok(())
    }

    async fn revoke_user_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
        let mut a = self.accounts.lock();
        let mut n = 0;
        for s in a.sessions.values_mut() {
            if s.user_id == user_id && !s.revoked && Some(s.id.as_str()) != keep {
                s.revoked = true;
                n += 1;
            }
        }
        Ok(n)
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
        let mut a = self.accounts.lock();
        if !a.users.contains_key(user_id) {
            return Err(not_found("user"));
        }
        if a.user_tokens.contains_key(hash) {
            return Err(conflict("token"));
        }
        a.user_tokens.insert(
            hash.to_owned(),
            UserToken {
                user_id: user_id.to_owned(),
                kind,
                email: email.to_owned(),
                expires_at,
                used: false,
            },
        );
        Ok(())
    }

    async fn consume_user_token(
        &self,
        hash: &str,
        kind: TokenKind,
        now: Millis,
    ) -> Result<Option<UsedToken>> {
        let mut a = self.accounts.lock();
        match a.user_tokens.get_mut(hash) {
            Some(t) if t.kind == kind && !t.used && t.expires_at > now => {
                t.used = true;
                Ok(Some(UsedToken {
                    user_id: t.user_id.clone(),
                    email: t.email.clone(),
                }))
            }
            _ => Ok(None),
        }
    }

    async fn revoke_user_tokens(&self, user_id: &str, kind: TokenKind) -> Result<u64> {
        let mut a = self.accounts.lock();
        let mut n = 0;
        for t in a.user_tokens.values_mut() {
            if t.user_id == user_id && t.kind == kind && !t.used {
                t.used = true;
                n += 1;
            }
        }
        Ok(n)
    }

    // ---- workspaces and members

    async fn create_workspace(&self, workspace: &Workspace, owner: &str) -> Result<()> {
        let mut a = self.accounts.lock();
        if !a.users.contains_key(owner) {
            return Err(not_found("user"));
        }
        if a.workspaces.contains_key(&workspace.id) {
            return Err(conflict("workspace"));
        }
        a.workspaces.insert(workspace.id.clone(), workspace.clone());
        a.members.insert(
            (workspace.id.clone(), owner.to_owned()),
            Member {
                workspace_id: workspace.id.clone(),
                user_id: owner.to_owned(),
                role: Role::Owner,
                joined_at: workspace.created_at,
            },
        );
        Ok(())
    }

    async fn workspace(&self, id: &str) -> Result<Option<Workspace>> {
        Ok(self.accounts.lock().workspaces.get(id).cloned())
    }

    async fn workspaces_for_user(&self, user_id: &str) -> Result<Vec<(Workspace, Role)>> {
        let a = self.accounts.lock();
        let mut out: Vec<(Workspace, Role)> = a
            .members
            .values()
            .filter(|m| m.user_id == user_id)
            .filter_map(|m| {
                a.workspaces
                    .get(&m.workspace_id)
                    .map(|w| (w.clone(), m.role))
            })
            .collect();
        out.sort_by(|(x, _), (y, _)| (x.created_at, &x.id).cmp(&(y.created_at, &y.id)));
        Ok(out)
    }

    async fn update_workspace(&self, workspace: &Workspace) -> Result<()> {
        let mut a = self.accounts.lock();
        let w = a
            .workspaces
            .get_mut(&workspace.id)
            .ok_or_else(|| not_found("workspace"))?;
        w.name = workspace.name.clone();
        w.description = workspace.description.clone();
        w.settings = workspace.settings.clone();
        w.updated_at = workspace.updated_at;
        Ok(())
    }

    async fn delete_workspace(&self, id: &str) -> Result<Vec<String>> {
        let mut a = self.accounts.lock();
        if !a.workspaces.contains_key(id) {
            return Err(not_found("workspace"));
        }
        Ok(a.purge_workspace(id))
    }

    async fn members(&self, workspace_id: &str) -> Result<Vec<Member>> {
        let a = self.accounts.lock();
        let mut out: Vec<Member> = a.members_of(workspace_id).cloned().collect();
        out.sort_by(|x, y| (x.joined_at, &x.user_id).cmp(&(y.joined_at, &y.user_id)));
        Ok(out)
    }

    async fn member_role(&self, workspace_id: &str, user_id: &str) -> Result<Option<Role>> {
        Ok(self
            .accounts
            .lock()
            .members
            .get(&(workspace_id.to_owned(), user_id.to_owned()))
            .map(|m| m.role))
    }

    async fn add_member(&self, member: &Member) -> Result<()> {
        let mut a = self.accounts.lock();
        if !a.workspaces.contains_key(&member.workspace_id) {
            return Err(not_found("workspace"));
        }
        if !a.users.contains_key(&member.user_id) {
            return Err(not_found("user"));
        }
        let key = (member.workspace_id.clone(), member.user_id.clone());
        if a.members.contains_key(&key) {
            return Err(conflict("member"));
        }
        a.members.insert(key, member.clone());
        Ok(())
    }

    async fn set_member_role(&self, workspace_id: &str, user_id: &str, role: Role) -> Result<()> {
        let mut a = self.accounts.lock();
        a.check_owner_change(workspace_id, user_id, Some(role))?;
        if let Some(m) = a
            .members
            .get_mut(&(workspace_id.to_owned(), user_id.to_owned()))
        {
            m.role = role;
        }
        Ok(())
    }

    async fn remove_member(&self, workspace_id: &str, user_id: &str) -> Result<()> {
        let mut a = self.accounts.lock();
        a.check_owner_change(workspace_id, user_id, None)?;
        a.members
            .remove(&(workspace_id.to_owned(), user_id.to_owned()));
        Ok(())
    }

    // ---- invitations

    async fn put_invitation(&self, invitation: &Invitation) -> Result<()> {
        let mut a = self.accounts.lock();
        if !a.workspaces.contains_key(&invitation.workspace_id) {
            return Err(not_found("workspace"));
        }
        a.invitations.insert(
            (
                invitation.workspace_id.clone(),
                email_key(&invitation.email),
            ),
            invitation.clone(),
        );
        Ok(())
    }

    async fn invitations(&self, workspace_id: &str, now: Millis) -> Result<Vec<Invitation>> {
        let a = self.accounts.lock();
        let mut out: Vec<Invitation> = a
            .invitations
            .range((workspace_id.to_owned(), String::new())..)
            .take_while(|((w, _), _)| w == workspace_id)
            .map(|(_, i)| i)
            .filter(|i| i.expires_at > now)
            .cloned()
            .collect();
        out.sort_by(|x, y| {
            (x.invited_at, email_key(&x.email)).cmp(&(y.invited_at, email_key(&y.email)))
        });
        Ok(out)
    }

    async fn delete_invitation(&self, workspace_id: &str, email: &str) -> Result<()> {
        let mut a = self.accounts.lock();
        a.invitations
            .remove(&(workspace_id.to_owned(), email_key(email)))
            .map(|_| ())
            .ok_or_else(|| not_found("invitation"))
    }

    async fn accept_invitations(
        &self,
        user_id: &str,
        email: &str,
        now: Millis,
    ) -> Result<Vec<Member>> {
        let mut a = self.accounts.lock();
        if !a.users.contains_key(user_id) {
            return Err(not_found("user"));
        }
        let key = email_key(email);
        let mine: Vec<(String, String)> = a
            .invitations
            .keys()
            .filter(|(_, e)| *e == key)
            .cloned()
            .collect();
        let mut joined = Vec::new();
        for k in mine {
            let Some(invitation) = a.invitations.remove(&k) else {
                continue;
            };
            let member_key = (invitation.workspace_id.clone(), user_id.to_owned());
            if invitation.expires_at <= now
                || !a.workspaces.contains_key(&invitation.workspace_id)
                || a.members.contains_key(&member_key)
            {
                continue;
            }
            let member = Member {
                workspace_id: invitation.workspace_id,
                user_id: user_id.to_owned(),
                role: invitation.role,
                joined_at: now,
            };
            a.members.insert(member_key, member.clone());
            joined.push(member);
        }
        joined.sort_by(|x, y| x.workspace_id.cmp(&y.workspace_id));
        Ok(joined)
    }

    // ---- template listings

    async fn create_template(&self, template: &Template) -> Result<()> {
        check_version(template.version)?;
        let mut a = self.accounts.lock();
        if !a.workspaces.contains_key(&template.workspace_id) {
            return Err(not_found("workspace"));
        }
        if a.templates.contains_key(&template.id) {
            return Err(conflict("template"));
        }
        a.templates.insert(template.id.clone(), template.clone());
        Ok(())
    }

    async fn template(&self, id: &str) -> Result<Option<Template>> {
        Ok(self.accounts.lock().templates.get(id).cloned())
    }

    async fn list_templates(&self, query: &TemplateQuery) -> Result<(Vec<Template>, u64)> {
        let workspaces: HashSet<&str> = query.workspace_ids.iter().map(String::as_str).collect();
        let needle = query.search.as_deref().map(fold);
        let a = self.accounts.lock();
        let mut matching: Vec<&Template> = a
            .templates
            .values()
            .filter(|t| workspaces.contains(t.workspace_id.as_str()))
            .filter(|t| query.tag.as_ref().is_none_or(|tag| t.tags.contains(tag)))
            .filter(|t| {
                needle.as_ref().is_none_or(|n| {
                    fold(&t.name).contains(n.as_str()) || fold(&t.description).contains(n.as_str())
                })
            })
            .collect();
        matching.sort_by(|x, y| {
            y.updated_at
                .cmp(&x.updated_at)
                .then_with(|| x.id.cmp(&y.id))
        });
        let total = matching.len() as u64;
        let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let page = matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        Ok((page, total))
    }

    async fn update_template(&self, template: &Template) -> Result<()> {
        check_version(template.version)?;
        let mut a = self.accounts.lock();
        let t = a
            .templates
            .get_mut(&template.id)
            .ok_or_else(|| not_found("template"))?;
        t.name = template.name.clone();
        t.description = template.description.clone();
        t.tags = template.tags.clone();
        t.is_public = template.is_public;
        t.updated_at = template.updated_at;
        t.version = template.version;
        Ok(())
    }

    async fn delete_template(&self, id: &str) -> Result<()> {
        let mut a = self.accounts.lock();
        a.templates
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| not_found("template"))
    }
}
