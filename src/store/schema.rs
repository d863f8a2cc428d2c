//! The file's schema as a list of versioned migrations.
//!
//! `PRAGMA user_version` records how far a file has been migrated. Opening a
//! file runs every step above its version, in order, each in its own
//! transaction together with the bump of `user_version`, so a crash mid-way
//! leaves the file at a whole version. A file newer than [`VERSION_LATEST`] is
//! refused: an older binary cannot know what a newer one changed.
//!
//! The SQL of a released step is frozen: never edit it, add a step.

use std::path::Path;

use rusqlite::Connection;

use super::error::StoreError;

/// Version 1, as the first mudshard wrote it: accounts, players (room and a
/// JSON array of items), the items on the floor of changed rooms, and a
/// key/value table for host-wide values such as the token secret.
pub const V1_SQL: &str = "
CREATE TABLE accounts (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    name_key       TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,
    created_unix_s INTEGER NOT NULL
);
CREATE UNIQUE INDEX accounts_name_key ON accounts (name_key);
CREATE TABLE players (
    account_id INTEGER PRIMARY KEY REFERENCES accounts (id),
    room       TEXT    NOT NULL,
    inventory  TEXT    NOT NULL DEFAULT '[]'
);
CREATE TABLE room_items (
    room  TEXT PRIMARY KEY,
    items TEXT NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

/// Version 2: when each player and room row was last written, in Unix
/// milliseconds (0 for rows written by version 1). Operators use it to see
/// what a crash lost; the write-behind sets it on every flush.
pub const V2_SQL: &str = "
ALTER TABLE players    ADD COLUMN updated_unix_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE room_items ADD COLUMN updated_unix_ms INTEGER NOT NULL DEFAULT 0;
";

/// Every step, in order: `MIGRATIONS[i]` takes a file from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1_SQL, V2_SQL];

/// The newest schema version this binary knows.
pub const VERSION_LATEST: i64 = MIGRATIONS.len() as i64;

/// The file's schema version (`PRAGMA user_version`; 0 for a new file).
pub fn version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Brings the file up to [`VERSION_LATEST`], one transaction per step, or
/// refuses a file from a newer mudshard. `path` is only for the message.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found = version(conn)?;
    if found > VERSION_LATEST {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            known: VERSION_LATEST,
        });
    }
    if found < 0 {
        return Err(StoreError::Corrupt(format!(
            "schema version {found} is negative"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let to = index as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        // PRAGMA takes no bound parameters; `to` is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {to}"))?;
        tx.commit()?;
        tracing::info!(path = %path.display(), from = to - 1, to, "store: migrated schema");
    }
    Ok(())
}
