//! [`DataSourceStore`] for the MongoDB backend.
//!
//! # Documents
//!
//! `data_sources` `{_id, workspaceId, name, nameFolded, kind, config,
//! configVersion, createdBy, createdAt, updatedAt, lastUsed, callCount,
//! errorCount, totalDurationMs, lastError, status, lastCheck, health,
//! alerts: [string]}`, with a unique index on `(workspaceId, nameFolded)`
//! (names unique per workspace, case-insensitively; lists sorted by it).
//!
//! # Rules, with single-document operations only
//!
//! - **Workspace**: like a template, a source is inserted first and its
//!   workspace checked afterwards (the source is removed again if the
//!   workspace is gone); deleting a workspace removes the workspace first
//!   and its sources after ([`MongoStore::purge_data_sources`]). Whatever
//!   the interleaving, no source outlives its workspace.
//! - **Compare-and-set**: an update or reseal is one `update_one` filtered
//!   on `configVersion`; it matches nothing when the version moved on.
//! - **Counters**: one `update_one` with `$inc` (counts, total duration)
//!   and `$max` (last use): replicas recording calls at once never lose
//!   one, and a call recorded late never moves the last use back.
//!
//! [`DataSourceStore`]: crate::DataSourceStore

use mongodb::bson::{doc, Bson, Document};

use super::accounts::opt;
use super::{collect, corrupt, db_err, get_i64, get_opt_i64, get_opt_str, get_str, is_duplicate};
use super::{MongoStore, DATA_SOURCES, DATA_SOURCES_BY_NAME, WORKSPACES};
use crate::accounts::Millis;
use crate::datasources::{call_status, DataSource, DataSourceQuery};
use crate::error::{Result, StoreError};
use crate::rules::{conflict, fold, not_found, to_i64};

fn get_u64(d: &Document, key: &str, what: &str) -> Result<u64> {
    u64::try_from(get_i64(d, key, what)?).map_err(|_| corrupt(what, key))
}

fn decode_source(d: &Document) -> Result<DataSource> {
    const W: &str = "data source";
    let alerts = d
        .get_array("alerts")
        .map_err(|_| corrupt(W, "alerts"))?
        .iter()
        .map(|a| {
            a.as_str()
                .map(str::to_owned)
                .ok_or_else(|| corrupt(W, "alerts"))
        })
        .collect::<Result<Vec<String>>>()?;
    Ok(DataSource {
        id: get_str(d, "_id", W)?,
        workspace_id: get_str(d, "workspaceId", W)?,
        name: get_str(d, "name", W)?,
        kind: get_str(d, "kind", W)?,
        config: get_str(d, "config", W)?,
        config_version: get_u64(d, "configVersion", W)?,
        created_by: get_str(d, "createdBy", W)?,
        created_at: get_i64(d, "createdAt", W)?,
        updated_at: get_i64(d, "updatedAt", W)?,
        last_used: get_opt_i64(d, "lastUsed", W)?,
        call_count: get_u64(d, "callCount", W)?,
        error_count: get_u64(d, "errorCount", W)?,
        total_duration_ms: get_u64(d, "totalDurationMs", W)?,
        last_error: get_opt_str(d, "lastError", W)?,
        status: get_str(d, "status", W)?,
        last_check: get_opt_i64(d, "lastCheck", W)?,
        health: get_str(d, "health", W)?,
        alerts,
    })
}

fn source_doc(s: &DataSource) -> Result<Document> {
    Ok(doc! {
        "_id": &s.id,
        "workspaceId": &s.workspace_id,
        "name": &s.name,
        "nameFolded": fold(&s.name),
        "kind": &s.kind,
        "config": &s.config,
        "configVersion": to_i64(s.config_version)?,
        "createdBy": &s.created_by,
        "createdAt": s.created_at,
        "updatedAt": s.updated_at,
        "lastUsed": opt(s.last_used),
        "callCount": to_i64(s.call_count)?,
        "errorCount": to_i64(s.error_count)?,
        "totalDurationMs": to_i64(s.total_duration_ms)?,
        "lastError": s.last_error.as_ref().map_or(Bson::Null, |e| Bson::String(e.clone())),
        "status": &s.status,
        "lastCheck": opt(s.last_check),
        "health": &s.health,
        "alerts": &s.alerts,
    })
}

/// Maps a failed insert or update of a source: a duplicate folded name in
/// the workspace, or a duplicate id.
fn source_write_err(e: mongodb::error::Error) -> StoreError {
    if !is_duplicate(&e) {
        return db_err(e);
    }
    conflict(if e.to_string().contains(DATA_SOURCES_BY_NAME) {
        "data_source_name"
    } else {
        "data_source"
    })
}

impl MongoStore {
    pub(crate) async fn create_data_source(&self, source: &DataSource) -> Result<()> {
        self.check_open()?;
        let d = source_doc(source)?;
        if !self.exists(WORKSPACES, &source.workspace_id).await? {
            return Err(not_found("workspace"));
        }
        self.coll(DATA_SOURCES)
            .insert_one(d)
            .await
            .map_err(source_write_err)?;
        self.verify_parent(
            WORKSPACES,
            &source.workspace_id,
            "workspace",
            &[(DATA_SOURCES, &source.id)],
        )
        .await
    }

    pub(crate) async fn data_source(&self, id: &str) -> Result<Option<DataSource>> {
        self.find_decoded(DATA_SOURCES, id, decode_source).await
    }

    pub(crate) async fn list_data_sources(
        &self,
        query: &DataSourceQuery,
    ) -> Result<(Vec<DataSource>, u64)> {
        let mut filter = doc! { "workspaceId": &query.workspace_id };
        if let Some(kind) = &query.kind {
            filter.insert("kind", kind);
        }
        if let Some(needle) = query.search.as_deref().map(fold) {
            // A literal substring, as in `list_templates`.
            filter.insert(
                "$expr",
                doc! { "$gte": [
                    { "$indexOfCP": ["$nameFolded", { "$literal": &needle }] },
                    0,
                ] },
            );
        }
        let sources = self.coll(DATA_SOURCES);
        let total = sources
            .count_documents(filter.clone())
            .await
            .map_err(db_err)?;
        if query.page_size == 0 {
            return Ok((Vec::new(), total));
        }
        let cursor = sources
            .find(filter)
            .sort(doc! { "nameFolded": 1, "_id": 1 })
            .skip(query.offset().min(i64::MAX as u64))
            .limit(i64::try_from(query.page_size).unwrap_or(i64::MAX))
            .await
            .map_err(db_err)?;
        let page = collect(cursor)
            .await?
            .iter()
            .map(decode_source)
            .collect::<Result<Vec<_>>>()?;
        Ok((page, total))
    }

    pub(crate) async fn update_data_source(
        &self,
        source: &DataSource,
        expected_version: u64,
    ) -> Result<bool> {
        self.check_open()?;
        // A version that cannot be stored cannot be the stored one.
        let (Ok(expected), Ok(next)) = (
            to_i64(expected_version),
            to_i64(expected_version.saturating_add(1)),
        ) else {
            return Ok(false);
        };
        let r = self
            .coll(DATA_SOURCES)
            .update_one(
                doc! { "_id": &source.id, "configVersion": expected },
                doc! { "$set": {
                    "name": &source.name,
                    "nameFolded": fold(&source.name),
                    "config": &source.config,
                    "updatedAt": source.updated_at,
                    "configVersion": next,
                } },
            )
            .await
            .map_err(source_write_err)?;
        Ok(r.matched_count == 1)
    }

    pub(crate) async fn delete_data_source(&self, id: &str) -> Result<bool> {
        self.check_open()?;
        Ok(self.delete_by_id(DATA_SOURCES, id).await? == 1)
    }

    pub(crate) async fn record_call(
        &self,
        id: &str,
        ok: bool,
        duration_ms: u64,
        error: Option<&str>,
        at: Millis,
    ) -> Result<()> {
        self.check_open()?;
        let mut set = doc! { "status": call_status(ok) };
        if !ok {
            set.insert("lastError", error.map_or(Bson::Null, Bson::from));
        }
        self.coll(DATA_SOURCES)
            .update_one(
                doc! { "_id": id },
                doc! {
                    "$inc": {
                        "callCount": 1i64,
                        "errorCount": i64::from(!ok),
                        "totalDurationMs": to_i64(duration_ms)?,
                    },
                    "$max": { "lastUsed": at },
                    "$set": set,
                },
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn record_health(
        &self,
        id: &str,
        health: &str,
        alerts: &[String],
        at: Millis,
    ) -> Result<()> {
        self.check_open()?;
        self.coll(DATA_SOURCES)
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "health": health, "alerts": alerts, "lastCheck": at } },
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn data_sources_after(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<DataSource>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = after.map_or_else(Document::new, |a| doc! { "_id": { "$gt": a } });
        let cursor = self
            .coll(DATA_SOURCES)
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(db_err)?;
        collect(cursor).await?.iter().map(decode_source).collect()
    }

    pub(crate) async fn reseal_data_source(
        &self,
        id: &str,
        config: &str,
        expected_version: u64,
    ) -> Result<bool> {
        self.check_open()?;
        let Ok(expected) = to_i64(expected_version) else {
            return Ok(false);
        };
        let r = self
            .coll(DATA_SOURCES)
            .update_one(
                doc! { "_id": id, "configVersion": expected },
                doc! { "$set": { "config": config } },
            )
            .await
            .map_err(db_err)?;
        Ok(r.matched_count == 1)
    }

    /// Deletes the data sources of a workspace that is already gone. A
    /// source created concurrently is either deleted here or removed by
    /// its creator (who finds the workspace gone).
    pub(super) async fn purge_data_sources(&self, workspace_id: &str) -> Result<()> {
        self.coll(DATA_SOURCES)
            .delete_many(doc! { "workspaceId": workspace_id })
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
