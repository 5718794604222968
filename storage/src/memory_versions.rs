//! [`VersionStore`] for the volatile [`MemoryStore`].
//!
//! Calls that must see the template listing take the accounts lock first
//! and hold it while they change versions, so a version can't be added
//! between a template's deletion and the removal of its history. Same
//! semantics as the embedded backend (the suite in
//! `tests/version_store.rs` runs on both).

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;

use crate::accounts::Millis;
use crate::error::{Result, StoreError};
use crate::memory::MemoryStore;
use crate::versions::{NewVersion, TemplateStats, Version, VersionInfo, VersionStore};

#[derive(Default)]
struct Figures {
    views: u64,
    edits: u64,
    editors: HashSet<String>,
    last_edit_at: Option<Millis>,
    last_editor: Option<String>,
}

/// Every version and figure of a [`MemoryStore`].
#[derive(Default)]
pub(crate) struct Versions {
    /// Template id -> number -> version.
    versions: HashMap<String, BTreeMap<u64, Version>>,
    figures: HashMap<String, Figures>,
}

/// SQLite integers are signed; refuse what the embedded store refuses.
fn check_count(v: u64) -> Result<()> {
    if i64::try_from(v).is_err() {
        return Err(StoreError::Constraint("out_of_range"));
    }
    Ok(())
}

#[async_trait]
impl VersionStore for MemoryStore {
    async fn create_version(&self, version: NewVersion) -> Result<VersionInfo> {
        let accounts = self.accounts.lock();
        if !accounts.has_template(&version.template_id) {
            return Err(StoreError::NotFound("template".into()));
        }
        let mut all = self.versions.lock();
        let of_template = all.versions.entry(version.template_id.clone()).or_default();
        let number = of_template.keys().next_back().map_or(1, |n| n + 1);
        let info = VersionInfo {
            template_id: version.template_id,
            number,
            name: version.name,
            note: version.note,
            author_id: version.author_id,
            created_at: version.created_at,
            size: version.state.len() as u64,
        };
        of_template.insert(
            number,
            Version {
                info: info.clone(),
                state: version.state,
            },
        );
        drop(accounts);
        Ok(info)
    }

    async fn list_versions(&self, template_id: &str) -> Result<Vec<VersionInfo>> {
        let all = self.versions.lock();
        Ok(all.versions.get(template_id).map_or_else(Vec::new, |v| {
            v.values().rev().map(|v| v.info.clone()).collect()
        }))
    }

    async fn version(&self, template_id: &str, number: u64) -> Result<Option<Version>> {
        let all = self.versions.lock();
        Ok(all
            .versions
            .get(template_id)
            .and_then(|v| v.get(&number))
            .cloned())
    }

    async fn record_views(&self, template_id: &str, count: u64) -> Result<()> {
        check_count(count)?;
        let accounts = self.accounts.lock();
        if !accounts.has_template(template_id) {
            return Ok(());
        }
        let mut all = self.versions.lock();
        let f = all.figures.entry(template_id.to_owned()).or_default();
        f.views += count;
        Ok(())
    }

    async fn record_edits(
        &self,
        template_id: &str,
        edits: u64,
        editors: &[String],
        at: Millis,
    ) -> Result<()> {
        check_count(edits)?;
        let accounts = self.accounts.lock();
        if !accounts.has_template(template_id) {
            return Ok(());
        }
        let mut all = self.versions.lock();
        let f = all.figures.entry(template_id.to_owned()).or_default();
        f.edits += edits;
        let latest = f.last_edit_at.is_none_or(|t| at >= t);
        if latest {
            f.last_edit_at = Some(at);
            if let Some(last) = editors.last() {
                f.last_editor = Some(last.clone());
            }
        }
        f.editors.extend(editors.iter().cloned());
        Ok(())
    }

    async fn template_stats(&self, template_id: &str) -> Result<TemplateStats> {
        let all = self.versions.lock();
        Ok(all
            .figures
            .get(template_id)
            .map_or_else(TemplateStats::default, |f| TemplateStats {
                views: f.views,
                edits: f.edits,
                editors: f.editors.len() as u64,
                last_edit_at: f.last_edit_at,
                last_editor: f.last_editor.clone(),
            }))
    }

    async fn delete_template_history(&self, template_id: &str) -> Result<()> {
        let mut all = self.versions.lock();
        all.versions.remove(template_id);
        all.figures.remove(template_id);
        Ok(())
    }
}
