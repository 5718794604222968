//! The embedded store's tables, and how an older database is brought up
//! to date when it is opened.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::Result;

/// `store_meta` key of the highest entry id handed out before a deletion.
pub(super) const HIGH_WATER: &str = "log_high_water";

/// Creates every table, and brings those of an older database up to date.
/// Run once when a store opens, before any other use.
pub(super) fn create(conn: &mut Connection) -> Result<()> {
    migrate_rowid_log(conn)?;
    conn.execute_batch(DOC_SCHEMA)?;
    create_account_tables(conn)?;
    conn.execute_batch(VERSIONS_SCHEMA)?;
    conn.execute_batch(DATA_SOURCES_SCHEMA)?;
    Ok(())
}

/// The log is clustered by document (`WITHOUT ROWID`): appending an entry
/// writes one B-tree page, where a rowid table with an index by document
/// and `AUTOINCREMENT` wrote three (table, index, `sqlite_sequence`), each
/// a WAL frame of the commit. Entry ids come from the writer's counter
/// (see `IdCounter`).
const DOC_SCHEMA: &str = "
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
CREATE TABLE IF NOT EXISTS doc_tombstone (
    doc        TEXT PRIMARY KEY,
    deleted_at INTEGER NOT NULL
);
";

/// Tables of the account records .
///
/// `templates.name_folded` / `description_folded` hold the lower-cased
/// (full Unicode) name and description, which searches match against.
/// `user_tokens.email` is the address a token was mailed to (empty for
/// tokens stored before tokens carried one: they prove no address).
/// `invitations.email_key` is `lower(email)`, like the users' e-mail index.
const ACCOUNTS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id                    TEXT PRIMARY KEY,
    email                 TEXT NOT NULL,
    password_hash         TEXT NOT NULL,
    name                  TEXT NOT NULL,
    color                 TEXT NOT NULL,
    email_verified        INTEGER NOT NULL,
    failed_login_attempts INTEGER NOT NULL,
    locked_until          INTEGER,
    last_login            INTEGER,
    password_changed_at   INTEGER NOT NULL,
    profile               TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    pending_email         TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS users_by_email ON users(lower(email));
CREATE TABLE IF NOT EXISTS sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked      INTEGER NOT NULL,
    user_agent   TEXT NOT NULL,
    ip           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(user_id);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash       TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_session ON refresh_tokens(session_id);
CREATE TABLE IF NOT EXISTS user_tokens (
    hash       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    email      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS user_tokens_by_user ON user_tokens(user_id);
CREATE TABLE IF NOT EXISTS invitations (
    workspace_id TEXT NOT NULL,
    email_key    TEXT NOT NULL,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL,
    invited_by   TEXT NOT NULL,
    invited_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, email_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS invitations_by_email ON invitations(email_key);
CREATE TABLE IF NOT EXISTS workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    settings    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    workspace_id TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    role         TEXT NOT NULL,
    joined_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members(user_id);
CREATE TABLE IF NOT EXISTS templates (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL,
    tags               TEXT NOT NULL,
    is_public          INTEGER NOT NULL,
    created_by         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    version            INTEGER NOT NULL,
    name_folded        TEXT NOT NULL,
    description_folded TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS templates_by_workspace ON templates(workspace_id, updated_at);
";

/// Columns added to tables of older databases: (table, column, definition).
/// `ALTER TABLE ... ADD COLUMN` keeps every row; the default is what an
/// old row means (no pending address; a token that proves no address).
const ADDED_COLUMNS: [(&str, &str, &str); 2] = [
    ("users", "pending_email", "TEXT"),
    ("user_tokens", "email", "TEXT NOT NULL DEFAULT ''"),
];

/// Creates the account tables, and brings those of an older database up
/// to date.
fn create_account_tables(conn: &Connection) -> Result<()> {
    conn.execute_batch(ACCOUNTS_SCHEMA)?;
    for (table, column, definition) in ADDED_COLUMNS {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        if !names.iter().any(|n| n == column) {
            // Names and definitions are the constants above, never input.
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
            tracing::info!(table, column, "store: column added to an older database");
        }
    }
    Ok(())
}

/// Tables of versions and usage figures.
const VERSIONS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS template_versions (
    template_id TEXT NOT NULL,
    number      INTEGER NOT NULL,
    name        TEXT NOT NULL,
    note        TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    state       BLOB NOT NULL,
    UNIQUE (template_id, number)
);
CREATE TABLE IF NOT EXISTS template_stats (
    template_id  TEXT PRIMARY KEY,
    views        INTEGER NOT NULL DEFAULT 0,
    edits        INTEGER NOT NULL DEFAULT 0,
    last_edit_at INTEGER,
    last_editor  TEXT
);
CREATE TABLE IF NOT EXISTS template_editors (
    template_id TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    PRIMARY KEY (template_id, user_id)
) WITHOUT ROWID;
";

/// The table of data sources. A database from before data sources gains
/// it (empty) when it is opened: every table is created only if missing.
///
/// `name_folded` is the name folded like template searches
/// ([`crate::rules::fold`]); unique per workspace, it makes names unique
/// case-insensitively, and lists are ordered by it. `alerts` is a JSON
/// array of strings. There is no foreign key to `workspaces` (no table
/// here has one): deleting a workspace deletes its sources in the same
/// transaction (`sql::purge_workspace`).
const DATA_SOURCES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS data_sources (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL,
    name              TEXT NOT NULL,
    name_folded       TEXT NOT NULL,
    kind              TEXT NOT NULL,
    config            TEXT NOT NULL,
    config_version    INTEGER NOT NULL,
    created_by        TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    last_used         INTEGER,
    call_count        INTEGER NOT NULL,
    error_count       INTEGER NOT NULL,
    total_duration_ms INTEGER NOT NULL,
    last_error        TEXT,
    status            TEXT NOT NULL,
    last_check        INTEGER,
    health            TEXT NOT NULL,
    alerts            TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS data_sources_by_name
    ON data_sources(workspace_id, name_folded);
";

/// Raises the stored high-water mark to `highest` (never lowers it).
pub(super) fn raise_high_water(conn: &Connection, highest: i64) -> Result<()> {
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
    txn.execute_batch(DOC_SCHEMA)?;
    txn.execute_batch(
        "INSERT INTO doc_log (doc, id, data) SELECT doc, id, data FROM doc_log_rowid;
         DROP TABLE doc_log_rowid;",
    )?;
    raise_high_water(&txn, issued)?;
    txn.commit()?;
    tracing::info!("store: log table migrated to the clustered layout");
    Ok(())
}
