//! Implementing a store trait by forwarding each call to inherent methods.
//!
//! A backend writes its account, version and data-source operations as
//! inherent methods (so they can live in several files), and one of the
//! macros below implements [`crate::AccountStore`],
//! [`crate::VersionStore`] or [`crate::DataSourceStore`] with them. A
//! store that keeps these records in another store (the memory backend)
//! forwards to that one the same way.

/// Implements trait `$tr` for `$store`: every listed method calls the
/// inherent method of the same name of `$target` on `$via`, an expression
/// of `$s` (the `&self` of the call).
macro_rules! forward_store {
    ($tr:path, $store:ty => $target:ty, |$s:ident| $via:expr;
     $(fn $name:ident($($arg:ident: $argty:ty),*) -> $ret:ty;)*) => {
        #[async_trait::async_trait]
        impl $tr for $store {
            $(async fn $name(&self, $($arg: $argty),*) -> $crate::error::Result<$ret> {
                let $s = self;
                <$target>::$name($via, $($arg),*).await
            })*
        }
    };
}

/// [`forward_store`] with every method of [`crate::AccountStore`].
macro_rules! forward_account_store {
    ($store:ty => $target:ty, |$s:ident| $via:expr) => {
        forward_store! { $crate::accounts::AccountStore, $store => $target, |$s| $via;
            fn create_user(user: &$crate::accounts::User) -> ();
            fn user(id: &str) -> Option<$crate::accounts::User>;
            fn user_by_email(email: &str) -> Option<$crate::accounts::User>;
            fn update_user(user: &$crate::accounts::User) -> ();
            fn delete_user(id: &str) -> Vec<String>;
            fn create_session(session: &$crate::accounts::Session, refresh_hash: &str) -> ();
            fn session(id: &str) -> Option<$crate::accounts::Session>;
            fn sessions_for_user(user_id: &str, now: $crate::accounts::Millis)
                -> Vec<$crate::accounts::Session>;
            fn rotate_refresh(old_hash: &str, new_hash: &str, now: $crate::accounts::Millis)
                -> $crate::accounts::RefreshOutcome;
            fn revoke_session(id: &str) -> ();
            fn revoke_user_sessions(user_id: &str, keep: Option<&str>) -> u64;
            fn create_user_token(token: &$crate::accounts::UserToken) -> ();
            fn consume_user_token(
                hash: &str,
                kind: $crate::accounts::TokenKind,
                now: $crate::accounts::Millis
            ) -> Option<$crate::accounts::UsedToken>;
            fn revoke_user_tokens(user_id: &str, kind: $crate::accounts::TokenKind) -> u64;
            fn create_workspace(workspace: &$crate::accounts::Workspace, owner: &str) -> ();
            fn workspace(id: &str) -> Option<$crate::accounts::Workspace>;
            fn workspaces_for_user(user_id: &str)
                -> Vec<($crate::accounts::Workspace, $crate::accounts::Role)>;
            fn update_workspace(workspace: &$crate::accounts::Workspace) -> ();
            fn delete_workspace(id: &str) -> Vec<String>;
            fn members(workspace_id: &str) -> Vec<$crate::accounts::Member>;
            fn member_role(workspace_id: &str, user_id: &str)
                -> Option<$crate::accounts::Role>;
            fn add_member(member: &$crate::accounts::Member) -> ();
            fn set_member_role(workspace_id: &str, user_id: &str, role: $crate::accounts::Role)
                -> ();
            fn remove_member(workspace_id: &str, user_id: &str) -> ();
            fn put_invitation(invitation: &$crate::accounts::Invitation) -> ();
            fn invitations(workspace_id: &str, now: $crate::accounts::Millis)
                -> Vec<$crate::accounts::Invitation>;
            fn delete_invitation(workspace_id: &str, email: &str) -> ();
            fn accept_invitations(user_id: &str, email: &str, now: $crate::accounts::Millis)
                -> Vec<$crate::accounts::Member>;
            fn create_template(template: &$crate::accounts::Template) -> ();
            fn template(id: &str) -> Option<$crate::accounts::Template>;
            fn list_templates(query: &$crate::accounts::TemplateQuery)
                -> (Vec<$crate::accounts::Template>, u64);
            fn update_template(template: &$crate::accounts::Template) -> ();
            fn delete_template(id: &str) -> ();
        }
    };
}

/// [`forward_store`] with every method of [`crate::VersionStore`].
macro_rules! forward_version_store {
    ($store:ty => $target:ty, |$s:ident| $via:expr) => {
        forward_store! { $crate::versions::VersionStore, $store => $target, |$s| $via;
            fn create_version(version: $crate::versions::NewVersion)
                -> $crate::versions::VersionInfo;
            fn list_versions(template_id: &str) -> Vec<$crate::versions::VersionInfo>;
            fn version(template_id: &str, number: u64) -> Option<$crate::versions::Version>;
            fn record_views(template_id: &str, count: u64) -> ();
            fn record_edits(
                template_id: &str,
                edits: u64,
                editors: &[String],
                at: $crate::accounts::Millis
            ) -> ();
            fn template_stats(template_id: &str) -> $crate::versions::TemplateStats;
            fn delete_template_history(template_id: &str) -> ();
        }
    };
}

/// [`forward_store`] with every method of [`crate::DataSourceStore`].
macro_rules! forward_data_source_store {
    ($store:ty => $target:ty, |$s:ident| $via:expr) => {
        forward_store! { $crate::datasources::DataSourceStore, $store => $target, |$s| $via;
            fn create_data_source(source: &$crate::datasources::DataSource) -> ();
            fn data_source(id: &str) -> Option<$crate::datasources::DataSource>;
            fn list_data_sources(query: &$crate::datasources::DataSourceQuery)
                -> (Vec<$crate::datasources::DataSource>, u64);
            fn update_data_source(
                source: &$crate::datasources::DataSource,
                expected_version: u64
            ) -> bool;
            fn delete_data_source(id: &str) -> bool;
            fn record_call(
                id: &str,
                ok: bool,
                duration_ms: u64,
                error: Option<&str>,
                at: $crate::accounts::Millis
            ) -> ();
            fn record_health(
                id: &str,
                health: &str,
                alerts: &[String],
                at: $crate::accounts::Millis
            ) -> ();
            fn data_sources_after(after: Option<&str>, limit: u64)
                -> Vec<$crate::datasources::DataSource>;
            fn reseal_data_source(id: &str, config: &str, expected_version: u64) -> bool;
        }
    };
}
