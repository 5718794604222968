//! [`VersionStore`] for the embedded SQLite backend.
//!
//! Writes run in [`EmbeddedStore::write`] closures (one savepoint each, on
//! the writer thread), so numbering a new version and checking that its
//! template exists cannot interleave with another write.

use bytes::Bytes;
use rusqlite::{params, Connection, Row};

use super::sql::{exec, exists, query_opt, require_template, u64_col};
use super::EmbeddedStore;
use crate::accounts::Millis;
use crate::error::Result;
use crate::rules::to_i64;
use crate::versions::{NewVersion, TemplateStats, Version, VersionInfo};

macro_rules! info_cols {
    () => {
        "template_id, number, name, note, author_id, created_at, length(state)"
    };
}

fn info_row(r: &Row<'_>) -> rusqlite::Result<VersionInfo> {
    Ok(VersionInfo {
        template_id: r.get(0)?,
        number: u64_col(r, 1)?,
        name: r.get(2)?,
        note: r.get(3)?,
        author_id: r.get(4)?,
        created_at: r.get(5)?,
        size: u64_col(r, 6)?,
    })
}

/// Makes sure the template has a figures row; false if it has no listing.
fn ensure_stats(conn: &Connection, id: &str) -> Result<bool> {
    if !exists(conn, "SELECT 1 FROM templates WHERE id = ?1", params![id])? {
        return Ok(false);
    }
    exec(
        conn,
        "INSERT OR IGNORE INTO template_stats (template_id) VALUES (?1)",
        params![id],
    )?;
    Ok(true)
}

impl EmbeddedStore {
    pub(crate) async fn create_version(&self, version: NewVersion) -> Result<VersionInfo> {
        let v = version;
        self.write(move |conn| {
            require_template(conn, &v.template_id)?;
            let number: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM template_versions
                      WHERE template_id = ?1",
                )?
                .query_row(params![v.template_id], |r| r.get(0))?;
            conn.prepare_cached(
                "INSERT INTO template_versions
                   (template_id, number, name, note, author_id, created_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                v.template_id,
                number,
                v.name,
                v.note,
                v.author_id,
                v.created_at,
                v.state.as_ref(),
            ])?;
            Ok(VersionInfo {
                template_id: v.template_id.clone(),
                number: number as u64,
                name: v.name.clone(),
                note: v.note.clone(),
                author_id: v.author_id.clone(),
                created_at: v.created_at,
                size: v.state.len() as u64,
            })
        })
        .await
    }

    pub(crate) async fn list_versions(&self, template_id: &str) -> Result<Vec<VersionInfo>> {
        let id = template_id.to_owned();
        self.read_all(
            select!(
                info_cols!(),
                "FROM template_versions WHERE template_id = ?1 ORDER BY number DESC"
            ),
            (id,),
            info_row,
        )
        .await
    }

    pub(crate) async fn version(&self, template_id: &str, number: u64) -> Result<Option<Version>> {
        let id = template_id.to_owned();
        let Ok(number) = to_i64(number) else {
            return Ok(None);
        };
        self.read(move |conn| {
            query_opt(
                conn,
                concat!(
                    "SELECT ",
                    info_cols!(),
                    ", state FROM template_versions WHERE template_id = ?1 AND number = ?2"
                ),
                params![id, number],
                |r| {
                    Ok(Version {
                        info: info_row(r)?,
                        state: Bytes::from(r.get::<_, Vec<u8>>(7)?),
                    })
                },
            )
        })
        .await
    }

    pub(crate) async fn record_views(&self, template_id: &str, count: u64) -> Result<()> {
        let id = template_id.to_owned();
        let count = to_i64(count)?;
        self.write(move |conn| {
            if ensure_stats(conn, &id)? {
                conn.prepare_cached(
                    "UPDATE template_stats SET views = views + ?2 WHERE template_id = ?1",
                )?
                .execute(params![id, count])?;
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn record_edits(
        &self,
        template_id: &str,
        edits: u64,
        editors: &[String],
        at: Millis,
    ) -> Result<()> {
        let id = template_id.to_owned();
        let edits = to_i64(edits)?;
        let editors = editors.to_vec();
        self.write(move |conn| {
            if !ensure_stats(conn, &id)? {
                return Ok(());
            }
            conn.prepare_cached(
                "UPDATE template_stats SET edits = edits + ?2,
                   last_edit_at = MAX(COALESCE(last_edit_at, ?3), ?3)
                 WHERE template_id = ?1",
            )?
            .execute(params![id, edits, at])?;
            if let Some(last) = editors.last() {
                conn.prepare_cached(
                    "UPDATE template_stats SET last_editor = ?2
                      WHERE template_id = ?1 AND last_edit_at <= ?3",
                )?
                .execute(params![id, last, at])?;
            }
            for user in &editors {
                conn.prepare_cached(
                    "INSERT OR IGNORE INTO template_editors (template_id, user_id) VALUES (?1, ?2)",
                )?
                .execute(params![id, user])?;
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn template_stats(&self, template_id: &str) -> Result<TemplateStats> {
        let id = template_id.to_owned();
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let stats = query_opt(
                &tx,
                "SELECT views, edits, last_edit_at, last_editor,
                   (SELECT COUNT(*) FROM template_editors WHERE template_id = ?1)
                 FROM template_stats WHERE template_id = ?1",
                params![id],
                |r| {
                    Ok(TemplateStats {
                        views: u64_col(r, 0)?,
                        edits: u64_col(r, 1)?,
                        last_edit_at: r.get(2)?,
                        last_editor: r.get(3)?,
                        editors: u64_col(r, 4)?,
                    })
                },
            )?;
            tx.commit()?;
            Ok(stats.unwrap_or_default())
        })
        .await
    }

    pub(crate) async fn delete_template_history(&self, template_id: &str) -> Result<()> {
        let id = template_id.to_owned();
        self.write(move |conn| {
            for sql in [
                "DELETE FROM template_versions WHERE template_id = ?1",
                "DELETE FROM template_stats WHERE template_id = ?1",
                "DELETE FROM template_editors WHERE template_id = ?1",
            ] {
                conn.prepare_cached(sql)?.execute(params![id])?;
            }
            Ok(())
        })
        .await
    }
}
