//! Records for tests: one user, workspace, template or data source with
//! every field filled in, and the setup most version tests start from.

use bytes::Bytes;
use serde_json::json;

use crate::accounts::{AccountStore, Millis, Template, User, Workspace};
use crate::datasources::{DataSource, HEALTH_UNKNOWN, STATUS_UNTESTED};
use crate::doc::{EntryId, Snapshot};

/// The time the fixtures are created at.
pub const NOW: Millis = 1_700_000_000_000;
/// An hour, in milliseconds.
pub const HOUR: Millis = 3_600_000;

/// User `id` with address `email`, created at [`NOW`].
pub fn user(id: &str, email: &str) -> User {
    User {
        id: id.into(),
        email: email.into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${id}"),
        name: format!("User {id}"),
        color: "#336699".into(),
        email_verified: false,
        failed_login_attempts: 0,
        locked_until: None,
        last_login: None,
        password_changed_at: NOW,
        profile: json!({}),
        created_at: NOW,
        updated_at: NOW,
        pending_email: None,
    }
}

/// Workspace `id` created by `created_by` at `created_at`.
pub fn workspace(id: &str, created_by: &str, created_at: Millis) -> Workspace {
    Workspace {
        id: id.into(),
        name: format!("Workspace {id}"),
        description: String::new(),
        created_by: created_by.into(),
        settings: json!({ "visibility": "private" }),
        created_at,
        updated_at: created_at,
    }
}

/// Template `id` of `workspace_id` (by `u1`), last updated at `updated_at`.
pub fn template(id: &str, workspace_id: &str, updated_at: Millis) -> Template {
    Template {
        id: id.into(),
        workspace_id: workspace_id.into(),
        name: format!("Template {id}"),
        description: String::new(),
        tags: Vec::new(),
        is_public: false,
        created_by: "u1".into(),
        created_at: NOW,
        updated_at,
        version: 1,
    }
}

/// A new REST data source `id` named `name` in `workspace_id` (by `u1`,
/// at [`NOW`]): configuration version 1, no usage, never checked.
pub fn data_source(id: &str, workspace_id: &str, name: &str) -> DataSource {
    DataSource {
        id: id.into(),
        workspace_id: workspace_id.into(),
        name: name.into(),
        kind: "rest".into(),
        config: format!(r#"{{"baseUrl":"http://127.0.0.1:9/{id}"}}"#),
        config_version: 1,
        created_by: "u1".into(),
        created_at: NOW,
        updated_at: NOW,
        last_used: None,
        call_count: 0,
        error_count: 0,
        total_duration_ms: 0,
        last_error: None,
        status: STATUS_UNTESTED.into(),
        last_check: None,
        health: HEALTH_UNKNOWN.into(),
        alerts: Vec::new(),
    }
}

/// User `u1`, their workspace `w1`, and these templates in it.
pub async fn templates_of_u1(store: &dyn AccountStore, templates: &[&str]) {
    store
        .create_user(&user("u1", "u1@example.com"))
        .await
        .unwrap();
    store
        .create_workspace(&workspace("w1", "u1", NOW), "u1")
        .await
        .unwrap();
    for id in templates {
        store
            .create_template(&template(id, "w1", NOW))
            .await
            .unwrap();
    }
}

/// `len` bytes of deterministic noise (incompressible, unlike zeros).
pub fn noise(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// The bytes of `s`.
pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Snapshot `seq` of state `data`, merging the log entries `covered`.
pub fn snapshot(data: impl Into<Bytes>, covered: Vec<EntryId>, seq: u64) -> Snapshot {
    Snapshot {
        data: data.into(),
        covered,
        seq,
    }
}

/// Runs `n` tasks at once on the runtime, task `i` being `task(i)`, and
/// returns their results in order of `i`. A task that panics fails the
/// test.
pub async fn at_once<T, F, Fut>(n: usize, task: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(task(i))).collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
