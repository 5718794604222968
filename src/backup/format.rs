//! The backup file: one file, trusted only as a whole.
//!
//! ```text
//! magic     8 bytes   "COFORMBK"
//! version   u32 BE    FORMAT_VERSION
//! parts     repeated: name length u8 (1..=255), name (UTF-8),
//!                     length u64 BE, that many bytes
//! end       one 0 byte (a name length of 0)
//! checksum  32 bytes  SHA-256 of every byte before it
//! ```
//!
//! Nothing follows the checksum. Version 1 has these parts, in this order:
//! `manifest` (JSON, [`Manifest`]), `coform.db` (the SQLite database),
//! and, only when asked for, `secrets-key` (the data directory's
//! `secrets-key` file). A reader checks the checksum before anyone acts on
//! what it read: [`read`] hands the database to its caller as it goes,
//! and the caller may keep what it wrote only if [`read`] returns `Ok`.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// First bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"COFORMBK";
/// The version this build writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

const MANIFEST: &str = "manifest";
const DATABASE: &str = "coform.db";
const SECRETS_KEY: &str = "secrets-key";
/// Largest manifest or key part read (both are a few hundred bytes).
const SMALL_PART_MAX: u64 = 64 * 1024;
const CHECKSUM_LEN: u64 = 32;

/// What a backup says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Version of the coform that wrote it.
    pub coform_version: String,
    /// When the copy of the database was taken (Unix milliseconds).
    pub created_at_ms: i64,
    /// Size of the `coform.db` part.
    pub database_bytes: u64,
    /// Whether a `secrets-key` part follows.
    pub secrets_key_included: bool,
}

/// Why a backup file was refused. Nothing has been changed when one of
/// these is returned.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot read {path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error("{0} is not a coform backup file (it does not start with the backup marker)")]
    NotABackup(PathBuf),
    #[error(
        "{path} is a backup in format version {found}; this coform reads version \
         {FORMAT_VERSION} only (use the coform version that wrote it, or a newer one)"
    )]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error("{0} is truncated: it ends before the backup does (an interrupted copy?)")]
    Truncated(PathBuf),
    #[error("{0} is corrupt: its checksum does not match its content")]
    ChecksumMismatch(PathBuf),
    #[error("{path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// Writes a backup file part by part; [`Writer::finish`] adds the end
/// marker and the checksum.
pub struct Writer<W: Write> {
    out: W,
    hash: Sha256,
}

impl<W: Write> Writer<W> {
    /// Starts a file: magic, version, and the manifest.
    pub fn new(out: W, manifest: &Manifest) -> io::Result<Self> {
        let mut writer = Writer {
            out,
            hash: Sha256::new(),
        };
        writer.put(MAGIC)?;
        writer.put(&FORMAT_VERSION.to_be_bytes())?;
        let json = serde_json::to_vec(manifest).map_err(io::Error::other)?;
        writer.part(MANIFEST, json.len() as u64, &mut json.as_slice())?;
        Ok(writer)
    }

    /// The database: exactly `len` bytes of `from`.
    pub fn database(&mut self, len: u64, from: &mut impl Read) -> io::Result<()> {
        self.part(DATABASE, len, from)
    }

    /// The secrets key file's content.
    pub fn secrets_key(&mut self, spec: &str) -> io::Result<()> {
        self.part(SECRETS_KEY, spec.len() as u64, &mut spec.as_bytes())
    }

    /// Ends the file and hands back the writer (to be flushed and synced).
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&[0])?;
        let sum = self.hash.finalize();
        self.out.write_all(&sum)?;
        Ok(self.out)
    }

    fn part(&mut self, name: &str, len: u64, from: &mut impl Read) -> io::Result<()> {
        self.put(&[name.len() as u8])?;
        self.put(name.as_bytes())?;
        self.put(&len.to_be_bytes())?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = from.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the {name} part ended {left} bytes early"),
                ));
            }
            self.put(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.out.write_all(bytes)
    }
}

/// What [`read`] found besides the database.
#[derive(Debug)]
pub struct Contents {
    pub manifest: Manifest,
    /// The `secrets-key` part, when the backup has one.
    pub secrets_key: Option<String>,
}

/// Reads and checks the whole backup at `path`. The database part is
/// passed to `database` (a reader of exactly its bytes); what that does
/// with them may be kept only if this returns `Ok`, since the checksum
/// is checked at the end.
pub fn read(
    path: &Path,
    database: &mut dyn FnMut(&mut dyn Read) -> io::Result<()>,
) -> Result<Contents, FormatError> {
    let io_err = |cause: io::Error| FormatError::Io {
        path: path.to_owned(),
        cause,
    };
    let file = File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    let mut r = Hashing {
        inner: BufReader::with_capacity(256 * 1024, file),
        hash: Sha256::new(),
        done: 0,
    };
    let truncated = || FormatError::Truncated(path.to_owned());
    let malformed = |reason: String| FormatError::Malformed {
        path: path.to_owned(),
        reason,
    };
    // Reads that run into the end of the file mean a truncated file.
    let eof = |e: io::Error| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            truncated()
        } else {
            io_err(e)
        }
    };

    let mut magic = [0u8; 8];
    let got = read_up_to(&mut r, &mut magic).map_err(io_err)?;
    if got < magic.len() || &magic != MAGIC {
        if got < magic.len() && MAGIC.starts_with(&magic[..got]) && got > 0 {
            return Err(truncated());
        }
        return Err(FormatError::NotABackup(path.to_owned()));
    }
    let found = u32::from_be_bytes(read_array(&mut r).map_err(eof)?);
    if found != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion {
            path: path.to_owned(),
            found,
        });
    }

    let mut manifest: Option<Manifest> = None;
    let mut seen_database = false;
    let mut secrets_key = None;
    loop {
        let [name_len] = read_array(&mut r).map_err(eof)?;
        if name_len == 0 {
            break;
        }
        let mut name = vec![0u8; name_len as usize];
        r.read_exact(&mut name).map_err(eof)?;
        let name = String::from_utf8_lossy(&name).into_owned();
        let len = u64::from_be_bytes(read_array(&mut r).map_err(eof)?);
        // The end marker and the checksum must still fit after it.
        if len > size.saturating_sub(r.done + 1 + CHECKSUM_LEN) {
            return Err(truncated());
        }
        match (name.as_str(), manifest.is_some()) {
            (MANIFEST, false) => {
                let bytes = read_small(&mut r, len, &name).map_err(|e| part_err(e, &malformed))?;
                let parsed = serde_json::from_slice(&bytes)
                    .map_err(|e| malformed(format!("its manifest is not readable: {e}")))?;
                manifest = Some(parsed);
            }
            (_, false) => return Err(malformed("it does not begin with a manifest".into())),
            (DATABASE, true) if !seen_database => {
                let mut part = (&mut r).take(len);
                database(&mut part).map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        truncated()
                    } else {
                        io_err(e)
                    }
                })?;
                // Whatever the caller left unread still counts.
                io::copy(&mut part, &mut io::sink()).map_err(io_err)?;
                if part.limit() > 0 {
                    return Err(truncated());
                }
                seen_database = true;
            }
            (SECRETS_KEY, true) if seen_database && secrets_key.is_none() => {
                let bytes = read_small(&mut r, len, &name).map_err(|e| part_err(e, &malformed))?;
                let spec = String::from_utf8(bytes)
                    .map_err(|_| malformed("its secrets key is not text".into()))?;
                secrets_key = Some(spec);
            }
            (other, true) => {
                return Err(malformed(format!(
                    "unexpected part `{other}` (repeated, out of order or unknown)"
                )))
            }
        }
    }
    let expected = r.hash.clone().finalize();
    let mut stored = [0u8; CHECKSUM_LEN as usize];
    r.inner.read_exact(&mut stored).map_err(eof)?;
    if expected.as_slice() != stored {
        return Err(FormatError::ChecksumMismatch(path.to_owned()));
    }
    let mut rest = [0u8; 1];
    if read_up_to(&mut r.inner, &mut rest).map_err(io_err)? > 0 {
        return Err(malformed("bytes follow its checksum".into()));
    }
    let manifest = manifest.ok_or_else(|| malformed("it has no manifest".into()))?;
    if !seen_database {
        return Err(malformed("it has no database".into()));
    }
    if manifest.secrets_key_included != secrets_key.is_some() {
        return Err(malformed(
            "its manifest and its parts disagree about the secrets key".into(),
        ));
    }
    Ok(Contents {
        manifest,
        secrets_key,
    })
}

/// A read of a small part: too big is malformed, too short is truncated.
enum SmallPartError {
    TooBig(String),
    Io(io::Error),
}

fn part_err(e: SmallPartError, malformed: &dyn Fn(String) -> FormatError) -> FormatError {
    match e {
        SmallPartError::TooBig(name) => malformed(format!("its `{name}` part is too large")),
        SmallPartError::Io(e) => malformed(format!("reading a part: {e}")),
    }
}

fn read_small(r: &mut impl Read, len: u64, name: &str) -> Result<Vec<u8>, SmallPartError> {
    if len > SMALL_PART_MAX {
        return Err(SmallPartError::TooBig(name.to_owned()));
    }
    let mut bytes = vec![0u8; len as usize];
    r.read_exact(&mut bytes).map_err(SmallPartError::Io)?;
    Ok(bytes)
}

fn read_array<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
    let mut a = [0u8; N];
    r.read_exact(&mut a)?;
    Ok(a)
}

/// Fills `buf` as far as the input goes; answers how much was read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    done: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.done += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(db: u64, key: bool) -> Manifest {
        Manifest {
            coform_version: "0.0.0-test".into(),
            created_at_ms: 1,
            database_bytes: db,
            secrets_key_included: key,
        }
    }

    fn write(db: &[u8], key: Option<&str>) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), &manifest(db.len() as u64, key.is_some())).unwrap();
        w.database(db.len() as u64, &mut &db[..]).unwrap();
        if let Some(k) = key {
            w.secrets_key(k).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_bytes(bytes: &[u8]) -> Result<(Contents, Vec<u8>), FormatError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b");
        std::fs::write(&path, bytes).unwrap();
        let mut db = Vec::new();
        let contents = read(&path, &mut |r| r.read_to_end(&mut db).map(|_| ()))?;
        Ok((contents, db))
    }

    #[test]
    fn what_is_written_reads_back() {
        let bytes = write(b"database bytes", Some("k1:key"));
        let (contents, db) = read_bytes(&bytes).unwrap();
        assert_eq!(db, b"database bytes");
        assert_eq!(contents.secrets_key.as_deref(), Some("k1:key"));
        assert_eq!(contents.manifest, manifest(14, true));
        let (contents, _) = read_bytes(&write(b"x", None)).unwrap();
        assert_eq!(contents.secrets_key, None);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let bytes = write(&[5u8; 300], Some("k1:key"));
        for cut in 0..bytes.len() {
            let err = read_bytes(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    FormatError::Truncated(_)
                        | FormatError::NotABackup(_)
                        | FormatError::Malformed { .. }
                ),
                "cut at {cut}: {err}"
            );
            if cut >= MAGIC.len() {
                assert!(
                    matches!(err, FormatError::Truncated(_)),
                    "cut at {cut}: {err}"
                );
            }
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(read_bytes(&bad).is_err(), "a flipped byte at {at} passed");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            read_bytes(&longer).unwrap_err(),
            FormatError::Malformed { .. }
        ));
    }

    #[test]
    fn another_version_is_named() {
        let mut bytes = write(b"db", None);
        bytes[8..12].copy_from_slice(&2u32.to_be_bytes());
        let err = read_bytes(&bytes).unwrap_err();
        assert!(
            matches!(err, FormatError::UnsupportedVersion { found: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("version 2"), "{err}");
    }
}
