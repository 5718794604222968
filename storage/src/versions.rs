//! Saved versions of templates and per-template usage figures, and the
//! [`VersionStore`] trait every backend implements.
//!
//! A version is a named copy of a template document's full state (a Yjs
//! v1 update), numbered 1, 2, 3, ... per template in the order they were
//! saved. Versions are never changed or removed one by one: history only
//! grows, and goes away only with its template
//! ([`VersionStore::delete_template_history`]).
//!
//! Usage figures count views and edits of a template and the distinct
//! users who edited it. They are statistics, not records: a backend keeps
//! them with the same durability as everything else, but the server
//! batches edit counts for a few seconds before recording them.
//!
//! Rules a backend enforces atomically:
//! - version numbers of one template are distinct and consecutive, also
//!   when several versions are created at once;
//! - a version is only created while its template's listing exists
//!   ([`StoreError::NotFound`]`("template")` otherwise), so a deleted
//!   template never gains versions after its history was removed.
//!
//! [`StoreError::NotFound`]: crate::StoreError::NotFound

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::accounts::Millis;
use crate::error::Result;

/// A saved version, without its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub template_id: String,
    /// 1 for a template's first version, then +1 for each.
    pub number: u64,
    pub name: String,
    pub note: String,
    /// The user who saved it.
    pub author_id: String,
    pub created_at: Millis,
    /// Length of the state in bytes.
    pub size: u64,
}

/// A saved version and the document state it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub info: VersionInfo,
    /// The document's full state as a Yjs v1 update.
    pub state: Bytes,
}

/// What [`VersionStore::create_version`] saves; the store picks the number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVersion {
    pub template_id: String,
    pub name: String,
    pub note: String,
    pub author_id: String,
    pub created_at: Millis,
    /// The document's full state as a Yjs v1 update. It can be as large as
    /// a document (64 MiB by default): a backend with smaller records must
    /// split it.
    pub state: Bytes,
}

/// Usage figures of one template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateStats {
    /// Reads of the template and of its preview.
    pub views: u64,
    /// Stored edits: document updates from editors' connections and edits
    /// through the REST API.
    pub edits: u64,
    /// Distinct users who made at least one edit.
    pub editors: u64,
    /// Time of the latest recorded edit.
    pub last_edit_at: Option<Millis>,
    /// The user of the latest recorded edit that named one.
    pub last_editor: Option<String>,
}

/// Persistence of template versions and usage figures.
#[async_trait]
pub trait VersionStore: Send + Sync + 'static {
    /// Saves a version under the template's next number (1 + the highest
    /// so far, 1 for the first) and returns it without its state.
    /// `NotFound("template")` if no template listing has that id.
    async fn create_version(&self, version: NewVersion) -> Result<VersionInfo>;

    /// Every version of the template, newest (highest number) first.
    /// Empty for an unknown template.
    async fn list_versions(&self, template_id: &str) -> Result<Vec<VersionInfo>>;

    /// One version with its state.
    async fn version(&self, template_id: &str, number: u64) -> Result<Option<Version>>;

    /// Adds `count` views. Does nothing when no template listing has that
    /// id (the figures of a deleted template are not recreated).
    async fn record_views(&self, template_id: &str, count: u64) -> Result<()>;

    /// Adds `edits` edits, marks `editors` (user ids, any order, possibly
    /// repeated) as having edited, and moves the last edit to `at` unless
    /// a later one is recorded already; the last editor becomes the last
    /// of `editors` when it is not empty. Does nothing when no template
    /// listing has that id.
    async fn record_edits(
        &self,
        template_id: &str,
        edits: u64,
        editors: &[String],
        at: Millis,
    ) -> Result<()>;

    /// The template's figures; all zero for one with none recorded.
    async fn template_stats(&self, template_id: &str) -> Result<TemplateStats>;

    /// Removes every version and all figures of the template (called when
    /// the template is deleted). Succeeds when there is nothing to remove.
    async fn delete_template_history(&self, template_id: &str) -> Result<()>;
}
