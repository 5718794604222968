//! # coform-storage
//!
//! Where Coform keeps its documents. This crate knows nothing of HTTP or
//! WebSockets; the relay (`coform-collab`) talks to it only through the
//! [`DocStore`] trait.
//!
//! # Layout
//!
//! - [`error`]: [`StoreError`], the one error type of this crate.
//! - [`doc`]: the [`DocStore`] trait and its data types. A document is a
//!   snapshot (a full Yjs state plus the log entries it covers) and an
//!   append-only update log. Loading = snapshot + every entry not covered.
//! - [`accounts`]: users, sessions, one-time tokens, workspaces, members,
//!   invitations and template listings, and the [`AccountStore`] trait.
//! - [`versions`]: saved versions of templates and their usage figures,
//!   and the [`VersionStore`] trait.
//! - [`datasources`]: a workspace's data sources (opaque, already sealed
//!   configurations) and their usage figures, and the [`DataSourceStore`]
//!   trait.
//! - [`rules`]: the account rules every backend applies, written once as
//!   pure functions (last owner, leaving a workspace, refresh-token
//!   rotation and reuse, e-mail keys, search folding, integer range).
//! - `forward`: macros that implement [`AccountStore`], [`VersionStore`]
//!   and [`DataSourceStore`] by calling a backend's inherent methods.
//! - One folder per backend:
//!   - [`embedded`] (`embedded/`): the default backend, SQLite in WAL mode
//!     under the data directory with one writer thread that
//!     group-commits appends. `mod.rs` opens it and runs the threads;
//!     `schema`, `docs`, `sql`, `users`, `workspaces`, `versions`,
//!     `datasources` hold the tables, the document store, query helpers
//!     and the account, version and data-source operations; `backup`
//!     takes consistent copies beside a running server and checks a copy
//!     before a restore uses it.
//!   - [`mongo`] (`mongo/`): MongoDB, for several replicas sharing one
//!     store (single-document atomic operations only: no transactions, no
//!     change streams). `mod.rs` connects and holds document and chunk
//!     helpers; `docs`, `accounts` (collections, codecs, guarded
//!     updates), `users`, `workspaces`, `versions`, `datasources`.
//!   - [`memory`] (`memory/`): a volatile backend that keeps nothing
//!     across restarts; it exists to measure what durability costs, never
//!     for real data. Its accounts, versions and data sources are the
//!     embedded store's code on a SQLite database in memory.
//! - `testing` (feature `testing`): a throwaway SecantusDB server for
//!   tests of the MongoDB backend, and `testing::fixtures`, records the
//!   tests of every crate can build on.
//!
//! # Data-safety rules every backend keeps
//!
//! 1. `append` returns only after the entries are committed: the caller may
//!    broadcast them the moment it returns.
//! 2. `replace_snapshot` deletes exactly the log entries it is given, by id,
//!    never a range; entries appended meanwhile survive.
//! 3. A crash at any point loses nothing that was committed: a snapshot and
//!    the entries it merged may both survive a crash, which is harmless
//!    because Yjs updates are idempotent.

#[macro_use]
mod forward;

pub mod accounts;
pub mod datasources;
pub mod doc;
pub mod embedded;
pub mod error;
mod lease;
pub mod memory;
pub mod mongo;
pub mod rules;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod versions;

pub use accounts::{
    AccountStore, Invitation, Member, Millis, RefreshOutcome, Role, Session, Template,
    TemplateQuery, TokenKind, UsedToken, User, UserToken, Workspace,
};
pub use datasources::{DataSource, DataSourceQuery, DataSourceStore};
pub use doc::{DocStats, DocStore, EntryId, LogEntry, Snapshot, StoredDoc};
pub use error::StoreError;
pub use versions::{NewVersion, TemplateStats, Version, VersionInfo, VersionStore};

/// How hard the embedded store works to make a commit survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every group commit is fsynced: survives power loss and `kill -9`.
    Full,
    /// Commits reach the OS but are fsynced only at WAL checkpoints:
    /// survives `kill -9` of the process, not a power cut.
    Normal,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            other => Err(format!(
                "unknown durability `{other}`: expected `full` or `normal`"
            )),
        }
    }
}
