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
//!
//! [`EmbeddedStore::open_in_memory`] runs the same code on a database in
//! memory (the accounts, versions and data sources of the memory
//! backend).
//!
//! # Files
//!
//! - this file: opening, the writer thread and the reads;
//! - `schema`: the tables and the upgrades of older databases;
//! - `docs`: the [`DocStore`] (snapshot + update log);
//! - `sql`: query helpers and row decoders shared by the stores below;
//! - `users`: users, sessions and one-time tokens;
//! - `workspaces`: workspaces, members, invitations and template listings
//!   (with `users`, the [`crate::AccountStore`]);
//! - `versions`: the [`crate::VersionStore`];
//! - `datasources`: the [`crate::DataSourceStore`];
//! - [`backup`]: consistent copies of the database taken beside a running
//!   server, and the checks a copy passes before a restore uses it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use crate::error::{Result, StoreError};
use crate::lease::LocalLeases;
use crate::Durability;
use schema::raise_high_water;

pub mod backup;
mod datasources;
mod docs;
mod schema;
#[macro_use]
mod sql;
mod users;
mod versions;
mod workspaces;

forward_account_store!(EmbeddedStore => EmbeddedStore, |s| s);
forward_version_store!(EmbeddedStore => EmbeddedStore, |s| s);
forward_data_source_store!(EmbeddedStore => EmbeddedStore, |s| s);

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "coform.db";
const LOCK_FILE: &str = "coform.lock";
/// Most requests folded into one commit; bounds a transaction's size.
const MAX_BATCH: usize = 2048;
const READ_POOL: usize = 4;

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
    /// Sender side of the writer thread's queue. `None` once closed.
    writer: Mutex<Option<std_mpsc::Sender<Box<dyn WriteJob>>>>,
    /// The writer thread, joined on close so the last commit is finished.
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The checkpoint thread and the sender that stops it (on close).
    checkpointer: Mutex<Option<(std_mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    /// Where reads get their connection.
    readers: Readers,
    /// Compaction leases. One process owns the data dir (see the lock
    /// file), so leases only need to exclude tasks of this process.
    leases: LocalLeases,
    /// Log entry ids.
    ids: Arc<IdCounter>,
    /// Batches the writer thread failed to write (disk full, I/O error).
    /// Reads alone would say "ready" on a full disk, so after a failure
    /// `ping` checks that the store can write again (see
    /// [`EmbeddedStore::write_health`]).
    write_failures: Arc<AtomicU64>,
    /// `write_failures` as it was when `ping` last found the store
    /// healthy: the store is failing while the two differ. Only `ping`
    /// moves it, so a small write that slips into the space a failed one
    /// left does not make a full disk look healthy.
    failures_cleared: AtomicU64,
    /// Held for the life of the store: the `flock` on `coform.lock`
    /// (none for a database in memory).
    _lock: Option<File>,
}

/// Connections of the reads.
enum Readers {
    /// A database file: idle connections to it; a reader takes one or
    /// opens a new one, and WAL lets it read beside the writer.
    Pool {
        path: PathBuf,
        idle: Mutex<Vec<Connection>>,
    },
    /// A database in memory lives in one connection: reads share the
    /// writer's, between its commits (the writer holds it from the start
    /// of a transaction to its commit, so a read never sees a write that
    /// is not committed).
    Shared(Arc<Mutex<Connection>>),
}

/// Hands out log entry ids: strictly increasing for the life of the data
/// directory, across deletions and restarts (a snapshot's covered list
/// names ids, so an id must never come back). Only the writer thread takes
/// ids, in commit order. Whenever entries are deleted the highest id handed
/// out so far is stored with the deletion, and at open the counter starts
/// above both that and every stored entry.
struct IdCounter(AtomicU64);

impl IdCounter {
    fn open(conn: &Connection) -> Result<Self> {
        let stored: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM doc_log", [], |r| r.get(0))?;
        let high_water: i64 = conn
            .query_row(
                "SELECT value FROM store_meta WHERE key = ?1",
                params![schema::HIGH_WATER],
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
        let conn = Connection::open(&path)?;
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
        let checkpoint_conn = open_reader(&path)?;
        let (stop_checkpoints, stopped) = std_mpsc::channel::<()>();
        let checkpointer = std::thread::Builder::new()
            .name("coform-store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, stopped))
            .map_err(|e| StoreError::Unavailable(format!("cannot start checkpoint thread: {e}")))?;
        let readers = Readers::Pool {
            path,
            idle: Mutex::new(Vec::new()),
        };
        let store = Self::start(Arc::new(Mutex::new(conn)), readers, Some(lock))?;
        *store.inner.checkpointer.lock() = Some((stop_checkpoints, checkpointer));
        Ok(store)
    }

    /// Opens a store on a fresh database that lives in this process's
    /// memory, gone when the store is dropped. Same tables, same rules,
    /// same writer thread as a store on disk; reads share the writer's
    /// connection.
    pub fn open_in_memory() -> Result<Self> {
        let conn = Arc::new(Mutex::new(Connection::open_in_memory()?));
        Self::start(conn.clone(), Readers::Shared(conn), None)
    }

    /// Creates the schema on the writer's connection `conn` and starts the
    /// writer thread on it.
    fn start(conn: Arc<Mutex<Connection>>, readers: Readers, lock: Option<File>) -> Result<Self> {
        let ids = {
            let mut c = conn.lock();
            schema::create(&mut c)?;
            Arc::new(IdCounter::open(&c)?)
        };
        let (tx, rx) = std_mpsc::channel();
        let write_failures = Arc::new(AtomicU64::new(0));
        let failing = write_failures.clone();
        let thread = std::thread::Builder::new()
            .name("coform-store-writer".into())
            .spawn(move || writer_loop(&conn, rx, &failing))
            .map_err(|e| StoreError::Unavailable(format!("cannot start writer thread: {e}")))?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(Some(tx)),
                writer_thread: Mutex::new(Some(thread)),
                checkpointer: Mutex::new(None),
                readers,
                leases: LocalLeases::default(),
                ids,
                write_failures,
                failures_cleared: AtomicU64::new(0),
                _lock: lock,
            }),
        })
    }

    /// After a failed write: fails unless the data dir's filesystem has
    /// [`MIN_FREE_AFTER_FAILURE`] bytes free and a probe row can be
    /// written; then the store counts as healthy again. Without a failure
    /// since the last healthy check it does nothing.
    pub(crate) async fn write_health(&self) -> Result<()> {
        let failures = self.inner.write_failures.load(Ordering::Acquire);
        if failures == self.inner.failures_cleared.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Readers::Pool { path, .. } = &self.inner.readers {
            let dir = path.parent().unwrap_or(Path::new("."));
            if let Some(free) = free_bytes(dir) {
                if free < MIN_FREE_AFTER_FAILURE {
                    return Err(StoreError::Unavailable(format!(
                        "a write failed and the data dir has only {free} bytes free"
                    )));
                }
            }
        }
        self.write(|conn| {
            conn.prepare_cached(
                "INSERT INTO store_meta (key, value) VALUES (?1, 1)
                 ON CONFLICT(key) DO UPDATE SET value = value + 1",
            )?
            .execute(params![WRITE_PROBE])?;
            Ok(())
        })
        .await?;
        self.inner
            .failures_cleared
            .fetch_max(failures, Ordering::AcqRel);
        Ok(())
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

    /// Runs `f` with a read connection on a blocking thread.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || match &inner.readers {
            Readers::Shared(conn) => f(&conn.lock()),
            Readers::Pool { path, idle } => {
                let conn = match idle.lock().pop() {
                    Some(c) => c,
                    None => open_reader(path)?,
                };
                let out = f(&conn);
                let mut pool = idle.lock();
                if pool.len() < READ_POOL {
                    pool.push(conn);
                }
                out
            }
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("reader task failed: {e}")))?
    }
}

/// `store_meta` key of the row [`EmbeddedStore::write_health`] writes.
const WRITE_PROBE: &str = "write_probe";

/// Free space a store whose write failed needs before it counts as
/// healthy again: room for the WAL to grow to [`WAL_RESTART_FRAMES`]
/// pages (4 KiB each) before it restarts.
const MIN_FREE_AFTER_FAILURE: u64 = 4 * 1024 * 1024;

/// Bytes available to this process on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct we own from a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
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

/// Takes the data dir's lock (`coform.lock`, `flock`, not waiting): the
/// one a server holds while it runs. Held until the file is dropped.
/// Fails with [`StoreError::Unavailable`] while another process holds it.
pub fn lock_data_dir(dir: &Path) -> Result<File> {
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
    // A full disk fails every checkpoint until space is freed: say so once
    // (and when it works again), not four times a second.
    let mut failing = false;
    loop {
        let last = !matches!(
            stop.recv_timeout(CHECKPOINT_EVERY),
            Err(std_mpsc::RecvTimeoutError::Timeout)
        );
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
        match result {
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying quietly");
            }
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed again"),
            Ok(_) if failing => {
                failing = false;
                tracing::info!("WAL checkpoints work again");
            }
            Ok(_) => {}
        }
        if last {
            return;
        }
    }
}

/// The writer thread: take every job waiting, run them in one
/// transaction, commit once, answer each. Ends when every sender is gone
/// and the queue is empty.
fn writer_loop(
    conn: &Mutex<Connection>,
    rx: std_mpsc::Receiver<Box<dyn WriteJob>>,
    failures: &AtomicU64,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn.lock(), batch, failures);
    }
}

/// Commits one batch and answers its jobs; counts in `failures` a batch
/// that could not be written (a job or the commit failed with an
/// I/O-level error such as a full disk).
fn commit_batch(conn: &mut Connection, mut batch: Vec<Box<dyn WriteJob>>, failures: &AtomicU64) {
    let results = run_batch(conn, &mut batch);
    let failed = match &results {
        Ok(results) => results
            .iter()
            .any(|r| matches!(r, Err(StoreError::Unavailable(_)))),
        Err(_) => true,
    };
    if failed {
        failures.fetch_add(1, Ordering::AcqRel);
    }
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
