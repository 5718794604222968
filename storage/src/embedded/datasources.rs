//! [`DataSourceStore`] for the embedded SQLite backend.
//!
//! Writes run in [`EmbeddedStore::write`] closures on the writer thread,
//! so a compare-and-set reads and writes in one step, and checking the
//! workspace cannot interleave with its deletion. Counters are still
//! added in SQL (`x = x + ?`), never computed from a value read earlier.
//!
//! [`DataSourceStore`]: crate::DataSourceStore

use rusqlite::{params, Row};

use super::sql::{
    exec, is_unique_violation, json_col, like_pattern, query_all, require_workspace, u64_col,
};
use super::EmbeddedStore;
use crate::accounts::Millis;
use crate::datasources::{call_status, DataSource, DataSourceQuery};
use crate::error::{Result, StoreError};
use crate::rules::{self, to_i64};

macro_rules! source_cols {
    () => {
        "id, workspace_id, name, kind, config, config_version, created_by, created_at, \
         updated_at, last_used, call_count, error_count, total_duration_ms, last_error, \
         status, last_check, health, alerts"
    };
}

/// The `WHERE` clause shared by the count and the page of
/// `list_data_sources`. ?1 = workspace, ?2 = kind or NULL, ?3 = escaped
/// LIKE pattern or NULL.
macro_rules! source_filter {
    () => {
        r"FROM data_sources
          WHERE workspace_id = ?1
            AND (?2 IS NULL OR kind = ?2)
            AND (?3 IS NULL OR name_folded LIKE ?3 ESCAPE '\')"
    };
}

const SOURCE_BY_ID: &str = concat!(
    "SELECT ",
    source_cols!(),
    " FROM data_sources WHERE id = ?1"
);

fn source_row(r: &Row<'_>) -> rusqlite::Result<DataSource> {
    Ok(DataSource {
        id: r.get(0)?,
        workspace_id: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        config: r.get(4)?,
        config_version: u64_col(r, 5)?,
        created_by: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        last_used: r.get(9)?,
        call_count: u64_col(r, 10)?,
        error_count: u64_col(r, 11)?,
        total_duration_ms: u64_col(r, 12)?,
        last_error: r.get(13)?,
        status: r.get(14)?,
        last_check: r.get(15)?,
        health: r.get(16)?,
        alerts: json_col(r, 17)?,
    })
}

/// Maps a failed insert or update of a source: a duplicate folded name in
/// the workspace, or a duplicate id.
fn source_unique_err(e: rusqlite::Error) -> StoreError {
    if !is_unique_violation(&e) {
        return e.into();
    }
    let on_name = matches!(&e, rusqlite::Error::SqliteFailure(_, Some(msg))
        if msg.contains("name_folded"));
    rules::conflict(if on_name {
        "data_source_name"
    } else {
        "data_source"
    })
}

fn alerts_json(alerts: &[String]) -> Result<String> {
    serde_json::to_string(alerts)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode: {e}")))
}

impl EmbeddedStore {
    pub(crate) async fn create_data_source(&self, source: &DataSource) -> Result<()> {
        let s = source.clone();
        let numbers = [
            to_i64(s.config_version)?,
            to_i64(s.call_count)?,
            to_i64(s.error_count)?,
            to_i64(s.total_duration_ms)?,
        ];
        let alerts = alerts_json(&s.alerts)?;
        self.write(move |conn| {
            require_workspace(conn, &s.workspace_id)?;
            conn.prepare_cached(concat!(
                "INSERT INTO data_sources (",
                source_cols!(),
                ", name_folded) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                                       ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
            ))?
            .execute(params![
                s.id,
                s.workspace_id,
                s.name,
                s.kind,
                s.config,
                numbers[0],
                s.created_by,
                s.created_at,
                s.updated_at,
                s.last_used,
                numbers[1],
                numbers[2],
                numbers[3],
                s.last_error,
                s.status,
                s.last_check,
                s.health,
                alerts,
                rules::fold(&s.name),
            ])
            .map_err(source_unique_err)?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn data_source(&self, id: &str) -> Result<Option<DataSource>> {
        self.one(SOURCE_BY_ID, id, source_row).await
    }

    pub(crate) async fn list_data_sources(
        &self,
        query: &DataSourceQuery,
    ) -> Result<(Vec<DataSource>, u64)> {
        let workspace = query.workspace_id.clone();
        let kind = query.kind.clone();
        let pattern = query.search.as_deref().map(like_pattern);
        let limit = i64::try_from(query.page_size).unwrap_or(i64::MAX);
        let offset = i64::try_from(query.offset()).unwrap_or(i64::MAX);
        self.read(move |conn| {
            // One read transaction, so the count and the page agree.
            let tx = conn.unchecked_transaction()?;
            let total: i64 = tx
                .prepare_cached(concat!("SELECT COUNT(*) ", source_filter!()))?
                .query_row(params![workspace, kind, pattern], |r| r.get(0))?;
            let page = query_all(
                &tx,
                concat!(
                    "SELECT ",
                    source_cols!(),
                    " ",
                    source_filter!(),
                    " ORDER BY name_folded, id LIMIT ?4 OFFSET ?5"
                ),
                params![workspace, kind, pattern, limit, offset],
                source_row,
            )?;
            tx.commit()?;
            Ok((page, total as u64))
        })
        .await
    }

    pub(crate) async fn update_data_source(
        &self,
        source: &DataSource,
        expected_version: u64,
    ) -> Result<bool> {
        let s = source.clone();
        // A version that cannot be stored cannot be the stored one.
        let (Ok(expected), Ok(next)) = (
            to_i64(expected_version),
            to_i64(expected_version.saturating_add(1)),
        ) else {
            return Ok(false);
        };
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE data_sources
                        SET name = ?2, name_folded = ?3, config = ?4, updated_at = ?5,
                            config_version = ?6
                      WHERE id = ?1 AND config_version = ?7",
                )?
                .execute(params![
                    s.id,
                    s.name,
                    rules::fold(&s.name),
                    s.config,
                    s.updated_at,
                    next,
                    expected,
                ])
                .map_err(source_unique_err)?;
            Ok(changed == 1)
        })
        .await
    }

    pub(crate) async fn delete_data_source(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            Ok(exec(conn, "DELETE FROM data_sources WHERE id = ?1", params![id])? == 1)
        })
        .await
    }

    pub(crate) async fn record_call(
        &self,
        id: &str,
        ok: bool,
        duration_ms: u64,
        error: Option<&str>,
        at: Millis,
    ) -> Result<()> {
        let id = id.to_owned();
        let duration = to_i64(duration_ms)?;
        let error = error.map(str::to_owned);
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE data_sources
                    SET call_count = call_count + 1,
                        error_count = error_count + ?2,
                        total_duration_ms = total_duration_ms + ?3,
                        last_used = MAX(COALESCE(last_used, ?4), ?4),
                        status = ?5,
                        last_error = CASE WHEN ?2 = 1 THEN ?6 ELSE last_error END
                  WHERE id = ?1",
            )?
            .execute(params![
                id,
                i64::from(!ok),
                duration,
                at,
                call_status(ok),
                error
            ])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn record_health(
        &self,
        id: &str,
        health: &str,
        alerts: &[String],
        at: Millis,
    ) -> Result<()> {
        let (id, health) = (id.to_owned(), health.to_owned());
        let alerts = alerts_json(alerts)?;
        self.write(move |conn| {
            exec(
                conn,
                "UPDATE data_sources SET health = ?2, alerts = ?3, last_check = ?4 WHERE id = ?1",
                params![id, health, alerts, at],
            )?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn data_sources_after(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<DataSource>> {
        let after = after.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            query_all(
                conn,
                concat!(
                    "SELECT ",
                    source_cols!(),
                    " FROM data_sources WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2"
                ),
                params![after, limit],
                source_row,
            )
        })
        .await
    }

    pub(crate) async fn reseal_data_source(
        &self,
        id: &str,
        config: &str,
        expected_version: u64,
    ) -> Result<bool> {
        let (id, config) = (id.to_owned(), config.to_owned());
        let Ok(expected) = to_i64(expected_version) else {
            return Ok(false);
        };
        self.write(move |conn| {
            let changed = exec(
                conn,
                "UPDATE data_sources SET config = ?2 WHERE id = ?1 AND config_version = ?3",
                params![id, config, expected],
            )?;
            Ok(changed == 1)
        })
        .await
    }
}

/// Every data source of the database on `conn`, by id (for checking a
/// restored database before it is put in place).
pub(super) fn all_data_sources(conn: &rusqlite::Connection) -> Result<Vec<DataSource>> {
    query_all(
        conn,
        concat!("SELECT ", source_cols!(), " FROM data_sources ORDER BY id"),
        [],
        source_row,
    )
}
