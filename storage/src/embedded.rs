//! The embedded backend: SQLite (bundled) in WAL mode under the data dir.
//!
//! # Threads
//!
//! All writes go to **one writer thread** through a channel. The thread
//! takes every request that is waiting, runs them in one transaction (each
//! in its own savepoint, so one failing request rolls back alone) and
//! commits once: appends that arrive together share a single commit (and,
//! with [`Durability::Full`], a single `fdatasync`: see
//! `.cargo/config.toml`). Each caller is answered
//! after that commit, so "append returned" means "on disk".
//!
//! Reads run on `spawn_blocking` with connections from a small pool; WAL
//! lets them proceed while the writer commits. No SQLite call ever runs on
//! an async worker thread.
//!
//! A lock file (`coform.lock`, held with `flock`) keeps a second server
//! process from opening the same data directory.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use crate::doc::{DocStats, DocStore, EntryId, LogEntry, Snapshot, StoredDoc};
use crate::error::{Result, StoreError};
use crate::lease::LocalLeases;
use crate::Durability;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "coform.db";
const LOCK_FILE: &str = "coform.lock";
/// Most requests folded into one commit; bounds a transaction's size.
const MAX_BATCH: usize = 2048;
const READ_POOL: usize = 4;

/// The log is clustered by document (`WITHOUT ROWID`): appending an entry
/// writes one B-tree page, where a rowid table with an index by document
/// and `AUTOINCREMENT` wrote three (table, index, `sqlite_sequence`), each
/// a WAL frame of the commit. Entry ids come from the writer's counter
/// (see [`IdCounter`]).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS doc_log (
    doc  TEXT NOT NULL,
    id   INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (doc, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS doc_snapshot (
    doc        TEXT PRIMARY KEY,
    data       BLOB NOT NULL,
    covered    BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
";

/// A write request for the writer thread. It runs inside the shared
/// transaction, in a savepoint of its own: an error rolls back this job
/// only, and the others still commit.
trait WriteJob: Send {
    fn run(&mut self, conn: &Connection) -> Result<()>;
    /// Answers the caller: `Ok` after the commit, or the error.
    fn answer(self: Box<Self>, result: Result<()>);
}

struct Job<T, F> {
    f: F,
    out: Option<T>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T: Send, F: FnMut(&Connection) -> Result<T> + Send> WriteJob for Job<T, F> {
    fn run(&mut self, conn: &Connection) -> Result<()> {
        self.out = Some((self.f)(conn)?);
        Ok(())
    }

    fn answer(self: Box<Self>, result: Result<()>) {
        let Job { out, reply, .. } = *self;
        let answer = result.and_then(|()| {
            out.ok_or_else(|| StoreError::Unavailable("write produced no result".into()))
        });
        let _ = reply.send(answer);
    }
}

/// SQLite-backed [`DocStore`]. Cheap to clone (all state is shared).
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Sender side of the writer thread's queue. `None` once closed.
    writer: Mutex<Option<std_mpsc::Sender<Box<dyn WriteJob>>>>,
    /// The writer thread, joined on close so the last commit is finished.
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The checkpoint thread and the sender that stops it (on close).
    checkpointer: Mutex<Option<(std_mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    /// Idle read connections; a reader takes one or opens a new one.
    readers: Mutex<Vec<Connection>>,
    /// Compaction leases. One process owns the data dir (see the lock
    /// file), so leases only need to exclude tasks of this process.
    leases: LocalLeases,
    /// Log entry ids.
    ids: Arc<IdCounter>,
    /// Held for the life of the store: the `flock` on `coform.lock`.
    _lock: File,
}

/// Hands out log entry ids: strictly increasing for the life of the data
/// directory, across deletions and restarts (a snapshot's covered list
/// names ids, so an id must never come back). Only the writer thread takes
/// ids, in commit order. Whenever entries are deleted the highest id handed
/// out so far is stored with the deletion, and at open the counter starts
/// above both that and every stored entry.
struct IdCounter(AtomicU64);

/// `store_meta` key of the highest entry id handed out before a deletion.
const HIGH_WATER: &str = "log_high_water";

impl IdCounter {
    fn open(conn: &Connection) -> Result<Self> {
        let stored: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM doc_log", [], |r| r.get(0))?;
        let high_water: i64 = conn
            .query_row(
                "SELECT value FROM store_meta WHERE key = ?1",
                params![HIGH_WATER],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        Ok(IdCounter(AtomicU64::new(stored.max(high_water) as u64 + 1)))
    }

    fn take(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    /// Stores the highest id handed out so far; called in the transaction
    /// of every deletion of log entries.
    fn record(&self, conn: &Connection) -> Result<()> {
        raise_high_water(conn, self.0.load(Ordering::Relaxed) as i64 - 1)
    }
}

/// Raises the stored high-water mark to `highest` (never lowers it).
fn raise_high_water(conn: &Connection, highest: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO store_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
    )?
    .execute(params![HIGH_WATER, highest])?;
    Ok(())
}

/// Databases written before the log was clustered by document: the entries
/// move, with their ids, into the new table in one transaction, and the
/// highest id `AUTOINCREMENT` ever handed out becomes the high-water mark.
fn migrate_rowid_log(conn: &mut Connection) -> Result<()> {
    let old: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'doc_log'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if !old.is_some_and(|sql| sql.contains("AUTOINCREMENT")) {
        return Ok(());
    }
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let issued: i64 = txn.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'doc_log'",
        [],
        |r| r.get(0),
    )?;
    txn.execute_batch("ALTER TABLE doc_log RENAME TO doc_log_rowid")?;
    txn.execute_batch(SCHEMA)?;
    txn.execute_batch(
        "INSERT INTO doc_log (doc, id, data) SELECT doc, id, data FROM doc_log_rowid;
         DROP TABLE doc_log_rowid;",
    )?;
    raise_high_water(&txn, issued)?;
    txn.commit()?;
    tracing::info!("store: log table migrated to the clustered layout");
    Ok(())
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        // Only the server's user may enter the data directory or read its
        // files (documents, accounts, e-mailed links), whatever the umask
        // and whatever an older version left behind.
        restrict(dir, 0o700)?;
        let lock = lock_data_dir(dir)?;
        restrict(&dir.join(LOCK_FILE), 0o600)?;
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        // SQLite gives the WAL and shared-memory files the database file's
        // mode when it creates them; existing ones are tightened here.
        for file in [
            path.clone(),
            dir.join(format!("{DB_FILE}-wal")),
            dir.join(format!("{DB_FILE}-shm")),
        ] {
            if file.exists() {
                restrict(&file, 0o600)?;
            }
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        // The checkpointer thread copies WAL frames into the database
        // beside the writer, but only a checkpoint that completes between
        // two commits lets the next commit restart the WAL from its start:
        // under continuous writes the checkpointer is always a little
        // behind, and the WAL grew without bound (227 MB after 8 s at
        // 5,000 updates/s). So once the WAL holds this many frames, the
        // writer checkpoints after its commit too; the checkpointer has
        // already copied nearly all of it, so that costs the writer little.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_RESTART_FRAMES)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        migrate_rowid_log(&mut conn)?;
        conn.execute_batch(SCHEMA)?;
        let ids = Arc::new(IdCounter::open(&conn)?);
        crate::embedded_accounts::create_schema(&conn)?;
        conn.execute_batch(crate::embedded_versions::VERSIONS_SCHEMA)?;

        let (tx, rx) = std_mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("coform-store-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start writer thread: {e}")))?;
        let checkpoint_conn = open_reader(&path)?;
        let (stop_checkpoints, stopped) = std_mpsc::channel::<()>();
        let checkpointer = std::thread::Builder::new()
            .name("coform-store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, stopped))
            .map_err(|e| StoreError::Unavailable(format!("cannot start checkpoint thread: {e}")))?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(Some(tx)),
                writer_thread: Mutex::new(Some(thread)),
                checkpointer: Mutex::new(Some((stop_checkpoints, checkpointer))),
                readers: Mutex::new(Vec::new()),
                leases: LocalLeases::default(),
                ids,
                _lock: lock,
            }),
        })
    }

    /// Stops the writer after it has committed everything queued so far.
    /// Later writes fail with [`StoreError::Closed`].
    async fn shut_writer(&self) {
        let sender = self.inner.writer.lock().take();
        drop(sender);
        let handle = self.inner.writer_thread.lock().take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        let checkpointer = self.inner.checkpointer.lock().take();
        if let Some((stop, handle)) = checkpointer {
            drop(stop);
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// Runs `f` on the writer thread inside the next group commit and
    /// returns its result once that commit is durable. `f` runs once, in a
    /// savepoint: an error it returns rolls back just its own changes.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        {
            let writer = self.inner.writer.lock();
            let Some(writer) = writer.as_ref() else {
                return Err(StoreError::Closed);
            };
            writer
                .send(Box::new(Job {
                    f,
                    out: None,
                    reply,
                }))
                .map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` with a pooled read connection on a blocking thread.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match inner.readers.lock().pop() {
                Some(c) => c,
                None => open_reader(&inner.path)?,
            };
            let out = f(&conn);
            let mut pool = inner.readers.lock();
            if pool.len() < READ_POOL {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("reader task failed: {e}")))?
    }
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Sets `path`'s permission bits to `mode` (owner-only modes).
pub fn restrict(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| StoreError::Unavailable(format!("cannot restrict {}: {e}", path.display())))
}

fn lock_data_dir(dir: &Path) -> Result<File> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    // SAFETY: flock on a file descriptor we own; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(StoreError::Unavailable(format!(
            "data dir {} is in use by another coform process",
            dir.display()
        )));
    }
    Ok(file)
}

/// How often the checkpointer copies committed WAL frames into the
/// database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// WAL frames (pages) after which the writer finishes a checkpoint itself
/// so the WAL restarts (SQLite's default auto-checkpoint size, ~4 MB).
const WAL_RESTART_FRAMES: i64 = 1000;

/// Checkpoints the WAL beside the writer (PASSIVE: it never blocks the
/// writer or readers) every [`CHECKPOINT_EVERY`], and once more when the
/// store closes, so the writer's own checkpoints (see
/// [`WAL_RESTART_FRAMES`]) find little left to copy.
fn checkpoint_loop(conn: Connection, stop: std_mpsc::Receiver<()>) {
    loop {
        let last = !matches!(
            stop.recv_timeout(CHECKPOINT_EVERY),
            Err(std_mpsc::RecvTimeoutError::Timeout)
        );
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
        if let Err(e) = result {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
        if last {
            return;
        }
    }
}

/// The writer thread: take every job waiting, run them in one
/// transaction, commit once, answer each. Ends when every sender is gone
/// and the queue is empty.
fn writer_loop(mut conn: Connection, rx: std_mpsc::Receiver<Box<dyn WriteJob>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch);
    }
}

fn commit_batch(conn: &mut Connection, mut batch: Vec<Box<dyn WriteJob>>) {
    let results = run_batch(conn, &mut batch);
    match results {
        Ok(results) => {
            for (job, result) in batch.into_iter().zip(results) {
                job.answer(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "store commit failed");
            let msg = e.to_string();
            for job in batch {
                job.answer(Err(StoreError::Unavailable(msg.clone())));
            }
        }
    }
}

/// Runs each job in its own savepoint of one IMMEDIATE transaction and
/// commits. The outer error means nothing was committed.
fn run_batch(conn: &mut Connection, batch: &mut [Box<dyn WriteJob>]) -> Result<Vec<Result<()>>> {
    let mut txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // A lone job (the common case when the server is not busy) needs no
    // savepoint: if it fails, the whole transaction rolls back.
    if let [job] = batch {
        let result = job.run(&txn);
        if result.is_ok() {
            txn.commit()?;
        }
        return Ok(vec![result]);
    }
    let mut results = Vec::with_capacity(batch.len());
    for job in batch.iter_mut() {
        let sp = txn.savepoint()?;
        match job.run(&sp) {
            Ok(()) => {
                sp.commit()?;
                results.push(Ok(()));
            }
            Err(e) => {
                drop(sp); // rolls this job back
                results.push(Err(e));
            }
        }
    }
    txn.commit()?;
    Ok(results)
}

/// Writes snapshot `seq` if the current one is `seq - 1`, deleting the
/// entries it covers. Returns whether it was written.
fn write_snapshot(
    conn: &Connection,
    ids: &IdCounter,
    doc: &str,
    snapshot: &Snapshot,
) -> Result<bool> {
    let current: i64 = conn
        .prepare_cached("SELECT seq FROM doc_snapshot WHERE doc = ?1")?
        .query_row(params![doc], |r| r.get(0))
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(0),
            e => Err(e),
        })?;
    if current as u64 + 1 != snapshot.seq {
        return Ok(false);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    conn.prepare_cached(
        "INSERT INTO doc_snapshot (doc, data, covered, seq, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(doc) DO UPDATE SET data = excluded.data,
           covered = excluded.covered, seq = excluded.seq,
           updated_at = excluded.updated_at",
    )?
    .execute(params![
        doc,
        &snapshot.data[..],
        encode_ids(&snapshot.covered),
        snapshot.seq as i64,
        now
    ])?;
    ids.record(conn)?;
    delete_covered(conn, doc, &snapshot.covered)?;
    Ok(true)
}

/// Deletes exactly the log entries `covered`. They are normally every entry
/// of the document up to the newest of them (ids only grow, and the
/// compactor read all of them), so one range delete on the index does it;
/// if the range holds any other entry, that delete is undone and they are
/// deleted one by one.
fn delete_covered(conn: &Connection, doc: &str, covered: &[EntryId]) -> Result<()> {
    let Some(max) = covered.iter().map(|id| id.0).max() else {
        return Ok(());
    };
    conn.execute_batch("SAVEPOINT delete_covered")?;
    let deleted = conn
        .prepare_cached("DELETE FROM doc_log WHERE doc = ?1 AND id <= ?2")?
        .execute(params![doc, max as i64])?;
    if deleted == covered.len() {
        conn.execute_batch("RELEASE delete_covered")?;
        return Ok(());
    }
    conn.execute_batch("ROLLBACK TO delete_covered; RELEASE delete_covered")?;
    let mut del = conn.prepare_cached("DELETE FROM doc_log WHERE id = ?1 AND doc = ?2")?;
    for id in covered {
        del.execute(params![id.0 as i64, doc])?;
    }
    Ok(())
}

fn encode_ids(ids: &[EntryId]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.0.to_le_bytes()).collect()
}

fn decode_ids(raw: &[u8]) -> Result<Vec<EntryId>> {
    if !raw.len().is_multiple_of(8) {
        return Err(StoreError::Corrupt(
            "snapshot covered-id list has a ragged length".into(),
        ));
    }
    Ok(raw
        .chunks_exact(8)
        .map(|c| EntryId(u64::from_le_bytes(c.try_into().expect("8-byte chunk"))))
        .collect())
}

#[async_trait]
impl DocStore for EmbeddedStore {
    async fn load(&self, doc: &str) -> Result<StoredDoc> {
        let doc = doc.to_owned();
        self.read(move |conn| {
            let snapshot = conn
                .prepare_cached("SELECT data, covered, seq FROM doc_snapshot WHERE doc = ?1")?
                .query_row(params![doc], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            let snapshot = match snapshot {
                Some((data, covered, seq)) => Some(Snapshot {
                    data: Bytes::from(data),
                    covered: decode_ids(&covered)?,
                    seq: seq as u64,
                }),
                None => None,
            };
            let covered: HashSet<EntryId> = snapshot
                .as_ref()
                .map(|s| s.covered.iter().copied().collect())
                .unwrap_or_default();
            let mut stmt =
                conn.prepare_cached("SELECT id, data FROM doc_log WHERE doc = ?1 ORDER BY id")?;
            let rows = stmt.query_map(params![doc], |r| {
                Ok(LogEntry {
                    id: EntryId(r.get::<_, i64>(0)? as u64),
                    data: Bytes::from(r.get::<_, Vec<u8>>(1)?),
                })
            })?;
            let mut log = Vec::new();
            for row in rows {
                let entry = row?;
                if !covered.contains(&entry.id) {
                    log.push(entry);
                }
            }
            Ok(StoredDoc { snapshot, log })
        })
        .await
    }

    async fn append(&self, doc: &str, updates: Vec<Bytes>) -> Result<Vec<EntryId>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let doc = doc.to_owned();
        let counter = self.inner.ids.clone();
        self.write(move |conn| {
            let mut stmt =
                conn.prepare_cached("INSERT INTO doc_log (doc, id, data) VALUES (?1, ?2, ?3)")?;
            let mut ids = Vec::with_capacity(updates.len());
            for u in &updates {
                let id = counter.take();
                stmt.execute(params![doc, id as i64, &u[..]])?;
                ids.push(EntryId(id));
            }
            Ok(ids)
        })
        .await
    }

    async fn replace_snapshot(&self, doc: &str, snapshot: Snapshot) -> Result<bool> {
        let doc = doc.to_owned();
        let ids = self.inner.ids.clone();
        self.write(move |conn| write_snapshot(conn, &ids, &doc, &snapshot))
            .await
    }

    async fn delete(&self, doc: &str) -> Result<()> {
        let doc_owned = doc.to_owned();
        let ids = self.inner.ids.clone();
        self.write(move |conn| {
            ids.record(conn)?;
            conn.execute("DELETE FROM doc_log WHERE doc = ?1", params![doc_owned])?;
            conn.execute(
                "DELETE FROM doc_snapshot WHERE doc = ?1",
                params![doc_owned],
            )?;
            Ok(())
        })
        .await?;
        self.inner.leases.forget(doc);
        Ok(())
    }

    async fn try_lease(&self, doc: &str, holder: &str, ttl: Duration) -> Result<bool> {
        Ok(self.inner.leases.try_take(doc, holder, ttl))
    }

    async fn release_lease(&self, doc: &str, holder: &str) -> Result<()> {
        self.inner.leases.release(doc, holder);
        Ok(())
    }

    async fn stats(&self, doc: &str) -> Result<DocStats> {
        let doc = doc.to_owned();
        self.read(move |conn| {
            let (entries, bytes): (i64, i64) = conn
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM doc_log WHERE doc = ?1",
                )?
                .query_row(params![doc], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let snap: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM doc_snapshot WHERE doc = ?1",
                )?
                .query_row(params![doc], |r| r.get(0))?;
            Ok(DocStats {
                log_entries: entries as u64,
                log_bytes: bytes as u64,
                snapshot_bytes: snap as u64,
            })
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        if self.inner.writer.lock().is_none() {
            return Err(StoreError::Closed);
        }
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn close(&self) {
        self.shut_writer().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[tokio::test]
    async fn a_snapshot_deletes_exactly_the_entries_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let ids = store
            .append("d", vec![b("a"), b("b"), b("c")])
            .await
            .unwrap();
        // Not a prefix: the range up to the newest covered entry holds an
        // entry the snapshot does not cover, which must survive.
        let snap = Snapshot {
            data: b("ac"),
            covered: vec![ids[0], ids[2]],
            seq: 1,
        };
        assert!(store.replace_snapshot("d", snap).await.unwrap());
        let loaded = store.load("d").await.unwrap();
        let left: Vec<_> = loaded.log.iter().map(|e| e.id).collect();
        assert_eq!(left, vec![ids[1]]);
        store.close().await;
    }

    #[tokio::test]
    async fn ids_never_come_back_after_the_newest_entries_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let first = store.append("d", vec![b("a"), b("b")]).await.unwrap();
        let snap = Snapshot {
            data: b("ab"),
            covered: first.clone(),
            seq: 1,
        };
        assert!(store.replace_snapshot("d", snap).await.unwrap());
        let gone = store.append("e", vec![b("x")]).await.unwrap();
        store.delete("e").await.unwrap();
        store.close().await;
        drop(store);

        // The log is empty now; a restart must still not reuse an id the
        // snapshot of "d" covers (it would be skipped as covered: lost).
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let next = store.append("d", vec![b("c")]).await.unwrap();
        assert!(next[0] > gone[0] && next[0] > first[1], "{next:?}");
        let loaded = store.load("d").await.unwrap();
        assert_eq!(loaded.log.len(), 1);
        assert_eq!(&loaded.log[0].data[..], b"c");
        store.close().await;
    }

    #[tokio::test]
    async fn a_log_in_the_rowid_layout_is_migrated_with_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        {
            // The layout before the log was clustered by document.
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE doc_log (
                     id   INTEGER PRIMARY KEY AUTOINCREMENT,
                     doc  TEXT NOT NULL,
                     data BLOB NOT NULL);
                 CREATE INDEX doc_log_by_doc ON doc_log(doc, id);
                 INSERT INTO doc_log (doc, data) VALUES ('d', x'01'), ('e', x'02'),
                     ('d', x'03'), ('e', x'04');
                 DELETE FROM doc_log WHERE id = 4;",
            )
            .unwrap();
        }
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let d = store.load("d").await.unwrap();
        let ids: Vec<u64> = d.log.iter().map(|e| e.id.0).collect();
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(&d.log[1].data[..], &[3]);
        assert_eq!(store.load("e").await.unwrap().log.len(), 1);
        // Id 4 was handed out (and deleted) before: never again.
        let next = store.append("e", vec![b("y")]).await.unwrap();
        assert_eq!(next[0].0, 5);
        store.close().await;
        drop(store);
        // Opening again is a no-op for the migrated layout.
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        assert_eq!(store.load("e").await.unwrap().log.len(), 2);
        store.close().await;
    }

    #[tokio::test]
    async fn the_wal_stays_bounded_under_continuous_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Normal).unwrap();
        // 16 documents written without pause: every commit adds frames
        // while the checkpointer runs beside the writer.
        let mut tasks = Vec::new();
        for d in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..1500 {
                    let update = Bytes::from(vec![i as u8; 200]);
                    store
                        .append(&format!("doc-{d}"), vec![update])
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let wal = std::fs::metadata(dir.path().join(format!("{DB_FILE}-wal")))
            .unwrap()
            .len();
        let frames = wal / 4096;
        assert!(
            frames < 4 * WAL_RESTART_FRAMES as u64,
            "the WAL grew to {frames} frames"
        );
        assert_eq!(store.load("doc-3").await.unwrap().log.len(), 1500);
        store.close().await;
    }

    #[tokio::test]
    async fn append_load_compact_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let ids = store.append("d", vec![b("a"), b("b")]).await.unwrap();
        let later = store.append("d", vec![b("c")]).await.unwrap();
        store.append("other", vec![b("x")]).await.unwrap();
        assert!(ids[0] < ids[1] && ids[1] < later[0]);

        // Compact only the first two; the third survives.
        let snap = Snapshot {
            data: b("ab"),
            covered: ids.clone(),
            seq: 1,
        };
        assert!(store.replace_snapshot("d", snap.clone()).await.unwrap());
        // A second compactor that read the same (absent) snapshot loses.
        assert!(!store.replace_snapshot("d", snap).await.unwrap());
        let loaded = store.load("d").await.unwrap();
        assert_eq!(&loaded.snapshot.unwrap().data[..], b"ab");
        assert_eq!(loaded.log.len(), 1);
        assert_eq!(&loaded.log[0].data[..], b"c");
        assert_eq!(store.stats("d").await.unwrap().log_entries, 1);
        assert_eq!(store.load("other").await.unwrap().log.len(), 1);

        store.delete("d").await.unwrap();
        assert!(store.load("d").await.unwrap().is_empty());
        store.close().await;
        assert!(matches!(
            store.append("d", vec![b("z")]).await,
            Err(StoreError::Closed)
        ));
    }

    #[tokio::test]
    async fn second_process_is_refused_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let _first = EmbeddedStore::open(dir.path(), Durability::Normal).unwrap();
        let err = EmbeddedStore::open(dir.path(), Durability::Normal)
            .err()
            .unwrap();
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[tokio::test]
    async fn concurrent_appends_share_commits_and_keep_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Full).unwrap();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut last = EntryId(0);
                for i in 0..50 {
                    let id = store
                        .append("d", vec![b(&format!("{t}-{i}"))])
                        .await
                        .unwrap()[0];
                    assert!(id > last);
                    last = id;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.load("d").await.unwrap().log.len(), 400);
    }

    #[tokio::test]
    async fn lease_excludes_other_holders_until_released_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Durability::Normal).unwrap();
        assert!(store
            .try_lease("d", "a", Duration::from_secs(60))
            .await
            .unwrap());
        assert!(!store
            .try_lease("d", "b", Duration::from_secs(60))
            .await
            .unwrap());
        store.release_lease("d", "a").await.unwrap();
        assert!(store
            .try_lease("d", "b", Duration::from_millis(1))
            .await
            .unwrap());
        std::thread::sleep(Duration::from_millis(5));
        assert!(store
            .try_lease("d", "a", Duration::from_secs(60))
            .await
            .unwrap());
    }
}
