//! `coform backup` and `coform restore`: the embedded store's data
//! directory in one file, and back.
//!
//! # What a backup holds
//!
//! - The database, copied while the server runs and writes: one read
//!   transaction, so the copy holds every commit made before it began —
//!   every edit acknowledged by then — and none half-made (see
//!   [`coform_storage::embedded::backup`]).
//! - The secrets key (`<data-dir>/secrets-key`) only with
//!   `--include-secrets-key`. Data-source passwords and tokens are sealed
//!   in the database under that key; a file holding both gives them away
//!   to whoever reads it, so by default the key stays out and the operator
//!   keeps it apart. A restore then takes it with `--secrets-key-file`.
//! - Never the token-signing secret (`jwt-secret`): whoever has it can
//!   sign tokens for any account. A restored server without it generates a
//!   new one; access tokens signed before are refused (clients renew them
//!   with their refresh tokens, which live in the database and survive).
//!
//! # What a restore checks before it changes anything
//!
//! The whole file (format version, every part, the checksum), then the
//! database it holds (SQLite's integrity check, every table present),
//! then that the secrets key it will leave in place opens every data
//! source's secrets. The target must be empty (or `--force`) and no
//! server may hold it (the store's lock). Only then are files renamed
//! into place.
//!
//! # Layout
//!
//! - this file: the two commands and what they report;
//! - [`format`]: the file layout, its writer and its checking reader.

pub mod format;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use coform_sources::secrets::{self, Keyring};
use coform_storage::embedded::backup::{check_database, copy_database, DatabaseSummary};
use coform_storage::embedded::{lock_data_dir, restrict, DB_FILE};

use crate::config::{BackupArgs, RestoreArgs, StoreKind};
use format::{Manifest, Writer};

/// Name of the secrets key file in a data directory.
const SECRETS_KEY_FILE: &str = "secrets-key";
/// The store's lock file: present in every data directory a server used.
const LOCK_FILE: &str = "coform.lock";

/// What `coform backup` did.
#[derive(Debug)]
pub struct BackupReport {
    pub out: PathBuf,
    pub file_bytes: u64,
    pub summary: DatabaseSummary,
    pub secrets_key_included: bool,
    /// The data directory's key file, when it has one and it was left out.
    pub secrets_key_left_out: Option<PathBuf>,
}

impl fmt::Display for BackupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "wrote {} ({} bytes): {} users, {} workspaces, {} templates, {} documents, {} data sources",
            self.out.display(),
            self.file_bytes,
            s.users,
            s.workspaces,
            s.templates,
            s.documents,
            s.data_sources.len()
        )?;
        if self.secrets_key_included {
            write!(
                f,
                "the secrets key is in this backup: keep the file as safe as the key itself"
            )
        } else if let Some(key) = &self.secrets_key_left_out {
            write!(
                f,
                "the secrets key is NOT in this backup: keep a copy of {} apart from it \
                 (restore with --secrets-key-file)",
                key.display()
            )
        } else {
            write!(f, "no secrets key file in the data directory")
        }
    }
}

/// `coform backup`: a consistent copy of `--data-dir`'s database (and,
/// if asked, its secrets key) in one new file at `--out`.
pub fn backup(args: &BackupArgs) -> anyhow::Result<BackupReport> {
    embedded_only(&args.store, "backup", "mongodump")?;
    let out = &args.out;
    if out.exists() && !args.force {
        bail!(
            "{} already exists; choose another --out or pass --force to replace it",
            out.display()
        );
    }
    if out.is_dir() {
        bail!("--out {} is a directory; name a file", out.display());
    }
    let key_path = args.data_dir.join(SECRETS_KEY_FILE);
    let key = if args.include_secrets_key {
        let spec = fs::read_to_string(&key_path).with_context(|| {
            format!(
                "--include-secrets-key: cannot read {} (a server given --secrets-key keeps no \
                 key file; keep those keys in your secret store instead)",
                key_path.display()
            )
        })?;
        Keyring::parse(spec.trim()).map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;
        Some(spec.trim().to_owned())
    } else {
        None
    };

    let dir = parent_dir(out);
    if !dir.is_dir() {
        bail!(
            "--out {}: the directory {} does not exist",
            out.display(),
            dir.display()
        );
    }
    let name = out
        .file_name()
        .with_context(|| format!("--out {} names no file", out.display()))?
        .to_string_lossy()
        .into_owned();
    let pid = std::process::id();
    let temps = Temps(vec![
        dir.join(format!(".{name}.{pid}.db.tmp")),
        dir.join(format!(".{name}.{pid}.tmp")),
    ]);
    let (copy, partial) = (&temps.0[0], &temps.0[1]);
    copy_database(&args.data_dir, copy)
        .with_context(|| format!("copying the database of {}", args.data_dir.display()))?;
    // The copy is checked before it is written out: a backup that would
    // not restore is worse than none.
    let summary = check_database(copy).context("checking the copy of the database")?;
    let database_bytes = fs::metadata(copy)?.len();
    let manifest = Manifest {
        coform_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at_ms: crate::auth::now_ms(),
        database_bytes,
        secrets_key_included: key.is_some(),
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let write = || -> io::Result<File> {
        let mut writer = Writer::new(BufWriter::with_capacity(256 * 1024, file), &manifest)?;
        writer.database(database_bytes, &mut File::open(copy)?)?;
        if let Some(spec) = &key {
            writer.secrets_key(spec)?;
        }
        let file = writer.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file)
    };
    let file = write().with_context(|| format!("writing {}", partial.display()))?;
    let file_bytes = file.metadata()?.len();
    fs::rename(partial, out)
        .with_context(|| format!("moving {} to {}", partial.display(), out.display()))?;
    sync_dir(&dir)?;
    Ok(BackupReport {
        out: out.clone(),
        file_bytes,
        summary,
        secrets_key_included: key.is_some(),
        secrets_key_left_out: (key.is_none() && key_path.is_file()).then_some(key_path),
    })
}

/// Where the restored data directory's secrets key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The backup's `secrets-key` part.
    Backup,
    /// `--secrets-key-file`.
    File(PathBuf),
    /// The key file already in the target data directory (`--force`).
    Kept,
    /// None: no data source has a secret, so none is needed.
    NotNeeded,
}

/// What `coform restore` did.
#[derive(Debug)]
pub struct RestoreReport {
    pub data_dir: PathBuf,
    pub manifest: Manifest,
    pub summary: DatabaseSummary,
    pub key: KeySource,
}

impl fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "restored into {}: {} users, {} workspaces, {} templates, {} documents, {} data sources \
             (backup written by coform {} at {} ms since the epoch)",
            self.data_dir.display(),
            s.users,
            s.workspaces,
            s.templates,
            s.documents,
            s.data_sources.len(),
            self.manifest.coform_version,
            self.manifest.created_at_ms
        )?;
        match &self.key {
            KeySource::Backup => write!(f, "secrets key: from the backup"),
            KeySource::File(p) => write!(f, "secrets key: from {}", p.display()),
            KeySource::Kept => write!(f, "secrets key: the data directory's own, which opens them"),
            KeySource::NotNeeded => {
                write!(f, "secrets key: none needed (no data source has a secret)")
            }
        }
    }
}

/// `coform restore`: checks `--from` whole, then puts its database (and
/// secrets key) into `--data-dir`. On any error the data directory is
/// left as it was.
pub fn restore(args: &RestoreArgs) -> anyhow::Result<RestoreReport> {
    embedded_only(&args.store, "restore", "mongorestore")?;
    let from = &args.from;
    let target = &args.data_dir;
    // 1. The whole file, before anything is touched.
    let contents = format::read(from, &mut |part| {
        io::copy(part, &mut io::sink()).map(|_| ())
    })?;
    let given_key = match &args.secrets_key_file {
        Some(path) => {
            let spec = fs::read_to_string(path)
                .with_context(|| format!("--secrets-key-file: cannot read {}", path.display()))?;
            let keys = Keyring::parse(spec.trim())
                .map_err(|e| anyhow::anyhow!("--secrets-key-file {}: {e}", path.display()))?;
            Some((spec.trim().to_owned(), keys, KeySource::File(path.clone())))
        }
        None => None,
    };

    // 2. The target: empty or --force, and no server on it.
    let existed = target.exists();
    if existed {
        if !target.is_dir() {
            bail!("--data-dir {} is not a directory", target.display());
        }
        let mut names: Vec<String> = fs::read_dir(target)
            .with_context(|| format!("reading {}", target.display()))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()?;
        names.sort();
        if !names.is_empty() && !args.force {
            bail!(
                "{} is not empty (it holds {}); restore into a new or empty directory, or pass \
                 --force to replace its database",
                target.display(),
                names.join(", ")
            );
        }
    }
    let created = Created::new(target, existed)?;
    let lock = lock_data_dir(target).map_err(|e| {
        anyhow::anyhow!(
            "{e}: stop the server that uses {} before restoring",
            target.display()
        )
    })?;
    restrict(&target.join(LOCK_FILE), 0o600)?;

    // 3. The database, unpacked beside its place and checked there.
    let staging = target.join(format!(".restore-{}", std::process::id()));
    let _staging = Temps(vec![staging.clone()]);
    fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
    restrict(&staging, 0o700)?;
    let staged_db = staging.join(DB_FILE);
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staged_db)
        .with_context(|| format!("creating {}", staged_db.display()))?;
    // Read again (the file may have changed since the first reading), and
    // used only if this reading too ends with a matching checksum.
    let again = format::read(from, &mut |part| io::copy(part, &mut out).map(|_| ()))?;
    if again.manifest != contents.manifest || again.secrets_key != contents.secrets_key {
        bail!("{} changed while it was being restored", from.display());
    }
    out.sync_all()?;
    drop(out);
    let summary = check_database(&staged_db)
        .with_context(|| format!("the database in {} does not open", from.display()))?;

    // 4. The secrets key that will be in place must open every secret.
    let target_key = target.join(SECRETS_KEY_FILE);
    let (install, key) = match (given_key, &contents.secrets_key) {
        (Some((spec, keys, source)), _) => (Some(spec), Some((keys, source))),
        (None, Some(spec)) => {
            let keys = Keyring::parse(spec)
                .map_err(|e| anyhow::anyhow!("the secrets key in {}: {e}", from.display()))?;
            (Some(spec.clone()), Some((keys, KeySource::Backup)))
        }
        (None, None) => match fs::read_to_string(&target_key) {
            Ok(spec) => {
                let keys = Keyring::parse(spec.trim())
                    .map_err(|e| anyhow::anyhow!("{}: {e}", target_key.display()))?;
                (None, Some((keys, KeySource::Kept)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, None),
            Err(e) => return Err(e).context(format!("reading {}", target_key.display())),
        },
    };
    let key_source = match key {
        Some((keys, source)) => {
            let closed = unopened(&keys, &summary);
            if !closed.is_empty() {
                bail!(
                    "the secrets key ({}) does not open the secrets of {} data source(s) in the \
                     backup (e.g. {}); give the key they were sealed with in --secrets-key-file",
                    describe(&source),
                    closed.len(),
                    closed[0]
                );
            }
            source
        }
        None => {
            let closed = unopened(&Keyring::generate("none").0, &summary);
            if !closed.is_empty() {
                bail!(
                    "the backup holds {} data source(s) with secrets but no secrets key; pass the \
                     key file of the data directory it was made from with --secrets-key-file",
                    closed.len()
                );
            }
            KeySource::NotNeeded
        }
    };

    // 5. Into place. A stale WAL beside the new database would be read as
    // part of it, so the old database's go first.
    if let Some(spec) = install {
        write_private(&staging.join(SECRETS_KEY_FILE), spec.as_bytes())?;
        fs::rename(staging.join(SECRETS_KEY_FILE), &target_key)?;
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        let stale = target.join(format!("{DB_FILE}{suffix}"));
        match fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context(format!("removing {}", stale.display())),
        }
    }
    fs::rename(&staged_db, target.join(DB_FILE))
        .with_context(|| format!("moving the database into {}", target.display()))?;
    // What the server would do at start anyway: the data is its user's.
    restrict(target, 0o700)?;
    sync_dir(target)?;
    created.keep();
    drop(lock);
    Ok(RestoreReport {
        data_dir: target.clone(),
        manifest: contents.manifest,
        summary,
        key: key_source,
    })
}

fn describe(source: &KeySource) -> String {
    match source {
        KeySource::Backup => "from the backup".into(),
        KeySource::File(p) => format!("from {}", p.display()),
        KeySource::Kept => "the data directory's own".into(),
        KeySource::NotNeeded => "none".into(),
    }
}

/// Ids of the data sources whose stored configuration `keys` does not
/// open.
fn unopened(keys: &Keyring, summary: &DatabaseSummary) -> Vec<String> {
    summary
        .data_sources
        .iter()
        .filter(|s| {
            let opens = serde_json::from_str(&s.config).ok().is_some_and(|stored| {
                secrets::open_config(keys, &stored, &s.workspace_id, &s.id).is_ok()
            });
            !opens
        })
        .map(|s| s.id.clone())
        .collect()
}

fn embedded_only(store: &StoreKind, command: &str, tool: &str) -> anyhow::Result<()> {
    match store {
        StoreKind::Embedded => Ok(()),
        StoreKind::MongoDb(_) => bail!(
            "coform {command} works on the embedded store only; with a MongoDB store, use \
             {tool} against the replica set (see docs/OPERATIONS.md)"
        ),
        StoreKind::Memory => bail!("the memory store keeps nothing: there is nothing to {command}"),
    }
}

/// The directory a file path is in (`.` for a bare name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// Temporary files and directories, removed when dropped (on success they
/// have been renamed away already).
struct Temps(Vec<PathBuf>);

impl Drop for Temps {
    fn drop(&mut self) {
        for path in &self.0 {
            if path.is_dir() {
                let _ = fs::remove_dir_all(path);
            } else {
                let _ = fs::remove_file(path);
            }
        }
    }
}

/// What a restore created in the target (the directory itself, or the
/// lock file in an empty one): removed again if the restore fails, so a
/// refused restore leaves no trace.
struct Created {
    dir: Option<PathBuf>,
    lock: Option<PathBuf>,
}

impl Created {
    fn new(target: &Path, existed: bool) -> anyhow::Result<Created> {
        if existed {
            let lock = target.join(LOCK_FILE);
            return Ok(Created {
                dir: None,
                lock: (!lock.exists()).then_some(lock),
            });
        }
        fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
        restrict(target, 0o700)?;
        Ok(Created {
            dir: Some(target.to_owned()),
            lock: None,
        })
    }

    fn keep(mut self) {
        self.dir = None;
        self.lock = None;
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if let Some(lock) = &self.lock {
            let _ = fs::remove_file(lock);
        }
        if let Some(dir) = &self.dir {
            let _ = fs::remove_dir_all(dir);
        }
    }
}
