//! A workspace's data sources (connections to REST APIs, GraphQL endpoints
//! and databases that forms bind to) and their usage figures, and the
//! [`DataSourceStore`] trait every backend implements.
//!
//! To the store a source's `kind` and `config` are opaque text: the server
//! checks the configuration and seals its secrets before it gets here, so
//! nothing in this crate ever sees a secret in the clear.
//!
//! Rules a backend enforces atomically:
//! - a source belongs to a workspace that exists (`NotFound("workspace")`
//!   otherwise), and goes away with it (`delete_workspace`, and
//!   `delete_user` when it deletes a sole member's workspace);
//! - names are unique per workspace, compared case-insensitively (folded
//!   with [`crate::rules::fold`]): `Conflict("data_source_name")`;
//! - a configuration changes only from the version its writer read
//!   (compare-and-set on `config_version`), so two editors cannot silently
//!   overwrite each other, and a key rotation never reseals a configuration
//!   someone replaced meanwhile;
//! - usage counters are added to in the database (never read, changed and
//!   written back), so calls recorded at once by several server replicas
//!   are all counted.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::accounts::Millis;
use crate::error::Result;

/// One data source with its usage figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSource {
    pub id: String,
    pub workspace_id: String,
    /// Unique in its workspace, case-insensitively.
    pub name: String,
    /// `rest`, `graphql` or `database`; opaque to the store.
    pub kind: String,
    /// The configuration as JSON text, secrets already sealed by the
    /// server; opaque to the store.
    pub config: String,
    /// 1 when created, +1 on every [`DataSourceStore::update_data_source`]
    /// (a reseal keeps it: the configuration means the same).
    pub config_version: u64,
    pub created_by: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Time of the latest recorded call.
    pub last_used: Option<Millis>,
    /// Recorded calls, failed ones included.
    pub call_count: u64,
    /// Recorded calls that failed.
    pub error_count: u64,
    /// Sum of the durations of every recorded call; the mean response
    /// time is `total_duration_ms / call_count`.
    pub total_duration_ms: u64,
    /// Error code of the latest failed call (e.g. `upstream_timeout`). A
    /// successful call keeps it: `status` says whether it still fails.
    pub last_error: Option<String>,
    /// `untested` until a call is recorded, then `active` or `failing`
    /// after the latest one.
    pub status: String,
    /// Time of the latest recorded health check.
    pub last_check: Option<Millis>,
    /// `unknown` until a health check is recorded, then what it found
    /// (`healthy`, `unhealthy`).
    pub health: String,
    /// What the latest health check warned about.
    pub alerts: Vec<String>,
}

/// A page of one workspace's data sources, for
/// [`DataSourceStore::list_data_sources`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataSourceQuery {
    pub workspace_id: String,
    /// Only sources of this kind.
    pub kind: Option<String>,
    /// Only sources whose folded name contains this folded text (as the
    /// template search folds).
    pub search: Option<String>,
    /// 1 for the first page; 0 is read as 1.
    pub page: u64,
    /// Sources per page; 0 gives an empty page (and the total).
    pub page_size: u64,
}

impl DataSourceQuery {
    /// How many matching sources come before the page.
    pub fn offset(&self) -> u64 {
        self.page
            .max(1)
            .saturating_sub(1)
            .saturating_mul(self.page_size)
    }
}

/// `status` of a source no call was recorded for.
pub const STATUS_UNTESTED: &str = "untested";
/// `status` after a successful call.
pub const STATUS_ACTIVE: &str = "active";
/// `status` after a failed call.
pub const STATUS_FAILING: &str = "failing";
/// `health` of a source no health check was recorded for.
pub const HEALTH_UNKNOWN: &str = "unknown";

/// The `status` a recorded call leaves.
pub fn call_status(ok: bool) -> &'static str {
    if ok {
        STATUS_ACTIVE
    } else {
        STATUS_FAILING
    }
}

/// Persistence of data sources and their usage figures.
#[async_trait]
pub trait DataSourceStore: Send + Sync + 'static {
    /// Stores a new source with every field as given.
    /// `NotFound("workspace")` if its workspace does not exist,
    /// `Conflict("data_source_name")` if the workspace has a source of the
    /// same folded name, `Conflict("data_source")` if the id is taken.
    async fn create_data_source(&self, source: &DataSource) -> Result<()>;

    /// One source; `None` if there is none with that id.
    async fn data_source(&self, id: &str) -> Result<Option<DataSource>>;

    /// One page of a workspace's sources that match the query, ordered by
    /// folded name (then id), and how many match in all.
    async fn list_data_sources(&self, query: &DataSourceQuery) -> Result<(Vec<DataSource>, u64)>;

    /// Replaces the name, configuration and `updated_at` of `source.id`
    /// and sets its `config_version` to `expected_version + 1`, only if
    /// the stored `config_version` is `expected_version`. `Ok(false)` when
    /// it changed meanwhile or the source is gone (nothing is written);
    /// `Conflict("data_source_name")` if the new name is another source's.
    async fn update_data_source(&self, source: &DataSource, expected_version: u64) -> Result<bool>;

    /// Deletes a source; false if there was none.
    async fn delete_data_source(&self, id: &str) -> Result<bool>;

    /// Records one call made through the source at `at`: one more call,
    /// one more error unless `ok`, `duration_ms` more in total, `last_used`
    /// moved to `at` unless a later call is recorded already, `status`
    /// `active` or `failing`, and on failure `last_error` = `error`.
    /// Counters are added in the database, so concurrent recordings (from
    /// several replicas too) are all counted. Does nothing when the source
    /// is gone (the figures of a deleted source are not recreated).
    async fn record_call(
        &self,
        id: &str,
        ok: bool,
        duration_ms: u64,
        error: Option<&str>,
        at: Millis,
    ) -> Result<()>;

    /// Records a health check at `at`: `health`, `alerts` and
    /// `last_check`. Does nothing when the source is gone.
    async fn record_health(
        &self,
        id: &str,
        health: &str,
        alerts: &[String],
        at: Millis,
    ) -> Result<()>;

    /// Up to `limit` sources of every workspace with an id greater than
    /// `after` (from the first when `None`), ordered by id: the pages of a
    /// walk over all sources, to reseal their secrets under a new key.
    async fn data_sources_after(&self, after: Option<&str>, limit: u64) -> Result<Vec<DataSource>>;

    /// Replaces only the configuration of `id` (same `config_version`,
    /// same `updated_at`), only if its `config_version` is
    /// `expected_version`: for a key rotation, which must not undo an
    /// update made since it read the source. `Ok(false)` otherwise.
    async fn reseal_data_source(
        &self,
        id: &str,
        config: &str,
        expected_version: u64,
    ) -> Result<bool>;
}
