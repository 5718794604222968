//! Copies of the database for backups, and the checks a copy passes
//! before a restore puts it in place.
//!
//! A copy is made with `VACUUM INTO` on a connection of its own. It reads
//! the database in one read transaction, so it holds exactly the commits
//! made before it began, whatever the server commits meanwhile: WAL lets
//! the writer go on beside it. (While the copy reads, the WAL cannot
//! restart from its beginning, so it grows for as long as the copy takes
//! and shrinks again after.) The data dir's lock is not taken: a running
//! server holds it, and a reader needs none.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::datasources::all_data_sources;
use super::DB_FILE;
use crate::datasources::DataSource;
use crate::error::{Result, StoreError};

/// Tables every database of this store has; a file without them is not
/// one (whatever SQLite thinks of it).
const REQUIRED_TABLES: [&str; 7] = [
    "doc_log",
    "doc_snapshot",
    "store_meta",
    "users",
    "workspaces",
    "templates",
    "data_sources",
];

/// Writes a consistent copy of the database in `data_dir` to `dest`, a
/// path that must not exist yet. Works while a server uses the data dir;
/// never writes to it.
pub fn copy_database(data_dir: &Path, dest: &Path) -> Result<()> {
    let path = data_dir.join(DB_FILE);
    if !path.is_file() {
        return Err(StoreError::NotFound(format!(
            "no database at {}: is this the data directory of a server with the embedded store?",
            path.display()
        )));
    }
    let dest_text = dest.to_str().ok_or_else(|| {
        StoreError::Unavailable(format!("{} is not a UTF-8 path", dest.display()))
    })?;
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The writer holds its lock only while it commits; wait for that.
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.execute("VACUUM INTO ?1", [dest_text])
        .map_err(|e| StoreError::Unavailable(format!("copying {}: {e}", path.display())))?;
    Ok(())
}

/// What a database holds, as a restore reports it.
#[derive(Debug)]
pub struct DatabaseSummary {
    pub users: u64,
    pub workspaces: u64,
    pub templates: u64,
    /// Documents with a snapshot or log entries.
    pub documents: u64,
    /// Every data source, with its sealed configuration: a restore checks
    /// that its keys open them.
    pub data_sources: Vec<DataSource>,
}

/// Checks that the file at `path` is a whole database of this store
/// (SQLite's integrity check passes, every table is there) and says what
/// it holds. Reads only; answers [`StoreError::Corrupt`] for a file that
/// is damaged or is not such a database.
pub fn check_database(path: &Path) -> Result<DatabaseSummary> {
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt(format!("{}: {e}", path.display()));
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(corrupt)?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))
        .map_err(corrupt)?;
    if verdict != "ok" {
        return Err(StoreError::Corrupt(format!(
            "{}: integrity check failed: {verdict}",
            path.display()
        )));
    }
    for table in REQUIRED_TABLES {
        let present: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [table],
                |r| r.get(0),
            )
            .map_err(corrupt)?;
        if !present {
            return Err(StoreError::Corrupt(format!(
                "{} is not a coform database (it has no `{table}` table)",
                path.display()
            )));
        }
    }
    let count = |sql: &str| -> Result<u64> {
        let n: i64 = conn.query_row(sql, [], |r| r.get(0)).map_err(corrupt)?;
        Ok(n.max(0) as u64)
    };
    Ok(DatabaseSummary {
        users: count("SELECT COUNT(*) FROM users")?,
        workspaces: count("SELECT COUNT(*) FROM workspaces")?,
        templates: count("SELECT COUNT(*) FROM templates")?,
        documents: count(
            "SELECT COUNT(*) FROM (SELECT doc FROM doc_snapshot UNION SELECT doc FROM doc_log)",
        )?,
        data_sources: all_data_sources(&conn)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::EmbeddedStore;
    use crate::{DocStore, Durability};

    #[tokio::test]
    async fn a_copy_holds_what_was_committed_and_passes_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Normal).unwrap();
        store
            .append("doc-a", vec![bytes::Bytes::from_static(b"one")])
            .await
            .unwrap();
        // The server keeps the store open (and the lock held) meanwhile.
        let out = tempfile::tempdir().unwrap();
        let copy = out.path().join("copy.db");
        let (d, c) = (dir.path().to_owned(), copy.clone());
        tokio::task::spawn_blocking(move || copy_database(&d, &c))
            .await
            .unwrap()
            .unwrap();
        store
            .append("doc-b", vec![bytes::Bytes::from_static(b"two")])
            .await
            .unwrap();
        let summary = check_database(&copy).unwrap();
        assert_eq!(summary.documents, 1, "the copy holds doc-a only");
        assert!(summary.data_sources.is_empty());
        store.close().await;
    }

    #[test]
    fn a_file_that_is_not_a_coform_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![7u8; 8192]).unwrap();
        assert!(matches!(check_database(&junk), Err(StoreError::Corrupt(_))));
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .unwrap();
        let err = check_database(&other).unwrap_err().to_string();
        assert!(err.contains("not a coform database"), "{err}");
        let missing = tempfile::tempdir().unwrap();
        let err = copy_database(missing.path(), &dir.path().join("x.db")).unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    }
}
