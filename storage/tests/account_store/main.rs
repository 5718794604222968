//! The `AccountStore` contract, run against every backend.
//!
//! Each test is an async fn over `Arc<dyn AccountStore>`; `suite!` (see
//! `support`) instantiates it once per backend. The modules follow the
//! records: users, sessions and tokens, workspaces and members,
//! invitations, templates; `embedded` holds tests of that backend alone.

use std::collections::HashSet;
use std::sync::Arc;

use coform_storage::embedded::EmbeddedStore;
use coform_storage::{
    AccountStore, DocStore, Durability, Invitation, Member, RefreshOutcome, Role, Session,
    StoreError, Template, TemplateQuery, TokenKind, UsedToken, User,
};
use serde_json::json;

#[macro_use]
#[path = "../support/mod.rs"]
mod support;
use support::*;

mod embedded;
mod invitations;
mod sessions;
mod templates;
mod users;
mod workspaces;

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
