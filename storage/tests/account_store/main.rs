//! The `AccountStore` contract, run against every backend.
//!
//! Each test is an async fn over `Arc<dyn AccountStore>`; `suite!` (see
//! `support`) instantiates it once per backend. The modules follow the
//! records: users, sessions and tokens, workspaces and members,
//! invitations, templates; `embedded_only` holds tests of that backend
//! alone.

use std::collections::HashSet;
use std::sync::Arc;

use coform_storage::embedded::EmbeddedStore;
use coform_storage::{
    AccountStore, DocStore, Durability, Invitation, Member, RefreshOutcome, Role, Session,
    StoreError, Template, TemplateQuery, TokenKind, UsedToken, User, UserToken,
};
use serde_json::json;

#[macro_use]
#[path = "../support/mod.rs"]
mod support;
use support::*;

mod embedded_only;
mod invitations;
mod sessions;
mod templates;
mod users;
mod workspaces;

use invitations::*;
use sessions::*;
use templates::*;
use users::*;
use workspaces::*;

suite!(
    unique_email_on_create_ignores_case,
    unique_email_on_update_ignores_case,
    user_round_trip_keeps_every_field,
    update_user_keeps_created_at_and_needs_the_user,
    concurrent_creates_with_duplicate_emails,
    records_need_their_user_or_workspace,
    duplicate_ids_conflict,
    refresh_rotation_then_reuse_revokes_the_session,
    concurrent_rotations_of_one_token_rotate_once,
    expired_session_is_inactive,
    unknown_refresh_token,
    revoke_session_and_not_found,
    revoke_user_sessions_keeps_one,
    sessions_for_user_excludes_revoked_and_expired,
    one_time_tokens_are_single_use,
    one_time_token_wrong_kind_and_expired,
    one_time_tokens_carry_the_address_they_were_mailed_to,
    revoke_user_tokens_spends_every_unused_token_of_one_kind,
    a_pending_address_is_neither_looked_up_nor_reserved,
    create_workspace_makes_owner,
    update_workspace_replaces_listing_fields,
    workspaces_for_user_with_roles_oldest_first,
    add_member_conflict,
    set_member_role_and_remove_member_rules,
    concurrent_demotions_keep_one_owner,
    delete_workspace_cascades,
    delete_user_refuses_last_owner_of_shared_workspace,
    delete_user_cascades,
    invitations_are_one_per_workspace_and_address,
    invitations_expire_and_go_with_their_workspace,
    accepting_invitations_grants_each_role_once,
    concurrent_acceptances_grant_once,
    template_round_trip_update_delete,
    list_templates_filters_by_workspace_and_tag,
    list_templates_search_is_literal_and_case_insensitive,
    list_templates_pages_newest_first,
);

type Store = Arc<dyn AccountStore>;

pub fn session(id: &str, user_id: &str, created_at: i64, expires_at: i64) -> Session {
    Session {
        id: id.into(),
        user_id: user_id.into(),
        created_at,
        last_used_at: created_at,
        expires_at,
        revoked: false,
        user_agent: "test-agent/1.0".into(),
        ip: "192.0.2.1".into(),
    }
}

pub fn member(workspace_id: &str, user_id: &str, role: Role) -> Member {
    Member {
        workspace_id: workspace_id.into(),
        user_id: user_id.into(),
        role,
        joined_at: NOW + 1,
    }
}

pub fn query(workspaces: &[&str]) -> TemplateQuery {
    TemplateQuery {
        workspace_ids: workspaces.iter().map(|w| w.to_string()).collect(),
        tag: None,
        search: None,
        offset: 0,
        limit: 100,
    }
}

pub fn ids(templates: &[Template]) -> Vec<&str> {
    templates.iter().map(|t| t.id.as_str()).collect()
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// What consuming a token of `user` (mailed to `<user>@example.com`) gives.
pub fn used(user: &str) -> Option<UsedToken> {
    Some(UsedToken {
        user_id: user.into(),
        email: format!("{user}@example.com"),
    })
}

/// Users with these ids and addresses.
pub async fn users_named(s: &Store, list: &[(&str, &str)]) {
    for (id, email) in list {
        s.create_user(&user(id, email)).await.unwrap();
    }
}

/// Users u1..=un.
pub async fn users(s: &Store, n: usize) {
    for i in 1..=n {
        s.create_user(&user(&format!("u{i}"), &format!("u{i}@example.com")))
            .await
            .unwrap();
    }
}

pub fn invitation(workspace: &str, email: &str, role: Role, invited_at: i64) -> Invitation {
    Invitation {
        workspace_id: workspace.into(),
        email: email.into(),
        role,
        invited_by: "u1".into(),
        invited_at,
        expires_at: invited_at + 14 * 24 * HOUR,
    }
}

/// Stores a one-time token of `user` mailed to `<user>@example.com`,
/// valid for an hour from [`NOW`]; it must be accepted.
pub async fn mint(s: &Store, hash: &str, user: &str, kind: TokenKind) {
    let email = format!("{user}@example.com");
    mint_to(s, hash, user, kind, &email, NOW + HOUR).await;
}

/// Stores a one-time token; it must be accepted.
pub async fn mint_to(s: &Store, hash: &str, user: &str, kind: TokenKind, email: &str, until: i64) {
    s.create_user_token(&token(hash, user, kind, email, until))
        .await
        .unwrap();
}

/// A one-time token record.
pub fn token(hash: &str, user: &str, kind: TokenKind, email: &str, until: i64) -> UserToken {
    UserToken {
        hash: hash.into(),
        user_id: user.into(),
        kind,
        email: email.into(),
        expires_at: until,
    }
}

/// Presents a one-time token; the store must answer.
pub async fn spend(s: &Store, hash: &str, kind: TokenKind, now: i64) -> Option<UsedToken> {
    s.consume_user_token(hash, kind, now).await.unwrap()
}

/// Workspace `id` of `owner`, created at [`NOW`]; it must be accepted.
pub async fn owned(s: &Store, id: &str, owner: &str) {
    s.create_workspace(&workspace(id, owner, NOW), owner)
        .await
        .unwrap();
}

/// Stores an invitation; it must be accepted.
pub async fn invite(s: &Store, invitation: Invitation) {
    s.put_invitation(&invitation).await.unwrap();
}

/// Creates a session whose current refresh token is `refresh`; it must be
/// accepted.
pub async fn log_in(s: &Store, session: Session, refresh: &str) {
    s.create_session(&session, refresh).await.unwrap();
}

/// The user's workspaces (by id) and roles, in the store's order.
pub async fn roles_of(s: &Store, user: &str) -> Vec<(String, Role)> {
    s.workspaces_for_user(user)
        .await
        .unwrap()
        .into_iter()
        .map(|(w, r)| (w.id, r))
        .collect()
}

/// The ids of a workspace's members, in the store's order.
pub async fn member_ids(s: &Store, workspace: &str) -> Vec<String> {
    let members = s.members(workspace).await.unwrap();
    members.into_iter().map(|m| m.user_id).collect()
}

/// The id of the user with this address; there must be one.
pub async fn id_by_email(s: &Store, email: &str) -> String {
    s.user_by_email(email).await.unwrap().unwrap().id
}

/// Whether no user has this address.
pub async fn no_user_at(s: &Store, email: &str) -> bool {
    s.user_by_email(email).await.unwrap().is_none()
}

/// Adds a membership; it must be accepted.
pub async fn join(s: &Store, member: Member) {
    s.add_member(&member).await.unwrap();
}
