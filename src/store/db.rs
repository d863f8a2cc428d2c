//! Every SQL statement of the store, all with bound parameters. Only the store
//! thread (and `Store::open` before it starts) calls these.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::error::StoreError;
use super::filter::AccountFilter;
use super::request::{AccountRecord, PlayerState};
use super::{Snapshot, TOKEN_SECRET_BYTES};

/// How long a statement waits for another connection's lock (an operator's
/// `sqlite3` shell, a backup) before it fails and is retried next interval.
pub(crate) const BUSY_TIMEOUT_MS: u64 = 5_000;

const META_TOKEN_SECRET: &str = "token_secret";

/// Opens the file with the store's pragmas.
///
/// Durability: WAL with `synchronous = FULL`, so every commit fsyncs the WAL
/// before it returns. That is what a registration needs (acknowledged only
/// once it survives power loss, not just `kill -9`), and for the write-behind
/// it costs one fsync per `flush_interval_ms` at most — ten a second by
/// default, on a thread no shard waits for. With `NORMAL` a power cut could
/// roll back everything since the last checkpoint, registrations included.
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(StoreError::Io)?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "store: WAL unavailable; commits stay durable but slower");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

/// The filter of names that may have an account, holding every account of
/// the file, with room for as many again (`filter.rs`).
pub(crate) fn account_filter(conn: &Connection) -> Result<AccountFilter, StoreError> {
    let accounts: i64 = conn.query_row("SELECT COUNT(*) FROM accounts", [], |row| row.get(0))?;
    let filter =
        AccountFilter::with_capacity(AccountFilter::capacity_for(accounts.max(0) as usize));
    let mut stmt = conn.prepare("SELECT name_key FROM accounts")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        filter.insert(&row.get::<_, String>(0)?);
    }
    Ok(filter)
}

/// Reads what start-up needs: the changed rooms and the token secret
/// (generated and stored on the first open of a file).
pub(crate) fn read_snapshot(conn: &mut Connection) -> Result<Snapshot, StoreError> {
    let mut room_items = HashMap::new();
    {
        let mut stmt = conn.prepare("SELECT room, items FROM room_items")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let room: String = row.get(0)?;
            let items = decode_items(&row.get::<_, String>(1)?, &room)?;
            room_items.insert(room, items);
        }
    }
    let token_secret = token_secret(conn)?;
    Ok(Snapshot {
        room_items,
        token_secret,
    })
}

fn token_secret(conn: &mut Connection) -> Result<[u8; TOKEN_SECRET_BYTES], StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: Option<Vec<u8>> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_TOKEN_SECRET],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(bytes) = stored {
        return <[u8; TOKEN_SECRET_BYTES]>::try_from(bytes.as_slice())
            .map_err(|_| StoreError::Corrupt(format!("token secret has {} bytes", bytes.len())));
    }
    let mut secret = [0u8; TOKEN_SECRET_BYTES];
    getrandom::getrandom(&mut secret)
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
        params![META_TOKEN_SECRET, secret.as_slice()],
    )?;
    tx.commit()?;
    Ok(secret)
}

/// One registration waiting for the next group commit.
pub(crate) struct NewAccount<'a> {
    pub name: &'a str,
    pub name_key: &'a str,
    pub password_hash: &'a str,
    pub start_room: &'a str,
}

/// Inserts accounts in one transaction (one fsync for all of them). A name
/// already taken fails only its own entry; any other error fails the group.
pub(crate) fn register_all(
    conn: &mut Connection,
    accounts: &[NewAccount<'_>],
) -> Result<Vec<Option<AccountRecord>>, StoreError> {
    let now = unix_now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut created = Vec::with_capacity(accounts.len());
    for account in accounts {
        created.push(insert_account(&tx, account, now)?);
    }
    tx.commit()?;
    Ok(created)
}

/// `None` when the name is taken. A failed INSERT rolls back only itself, so
/// the rest of the transaction stands.
fn insert_account(
    conn: &Connection,
    account: &NewAccount<'_>,
    now: Duration,
) -> Result<Option<AccountRecord>, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO accounts (name, name_key, password_hash, created_unix_s) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![account.name, account.name_key, account.password_hash, now.as_secs() as i64]);
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let id = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO players (account_id, room, inventory, updated_unix_ms) VALUES (?1, ?2, '[]', ?3)",
    )?
    .execute(params![id, account.start_room, now.as_millis() as i64])?;
    Ok(Some(AccountRecord {
        id,
        name: account.name.to_owned(),
        password_hash: account.password_hash.to_owned(),
        room: account.start_room.to_owned(),
        inventory: Vec::new(),
    }))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(err, _)
        if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// The account and its player row, as committed.
pub(crate) fn load_account(
    conn: &Connection,
    name_key: &str,
) -> Result<Option<AccountRecord>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT a.id, a.name, a.password_hash, p.room, p.inventory
             FROM accounts a LEFT JOIN players p ON p.account_id = a.id
             WHERE a.name_key = ?1",
        )?
        .query_row([name_key], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?;
    let Some((id, name, password_hash, room, inventory)) = row else {
        return Ok(None);
    };
    let (Some(room), Some(inventory)) = (room, inventory) else {
        return Err(StoreError::Corrupt(format!(
            "account {name_key} has no player row"
        )));
    };
    let inventory = decode_items(&inventory, name_key)?;
    Ok(Some(AccountRecord {
        id,
        name,
        password_hash,
        room,
        inventory,
    }))
}

/// Writes one batch of coalesced changes in one transaction. Returns how many
/// player writes matched no account (a caller bug: guests are never stored).
pub(crate) fn write_batch(
    conn: &mut Connection,
    players: &HashMap<String, PlayerState>,
    rooms: &HashMap<String, Vec<String>>,
) -> Result<usize, StoreError> {
    let now_ms = unix_now().as_millis() as i64;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut unknown_players = 0;
    {
        let mut update_player = tx.prepare_cached(
            "UPDATE players SET room = ?1, inventory = ?2, updated_unix_ms = ?3
             WHERE account_id = (SELECT id FROM accounts WHERE name_key = ?4)",
        )?;
        for (name_key, state) in players {
            let inventory = encode_items(&state.inventory)?;
            if update_player.execute(params![state.room, inventory, now_ms, name_key])? == 0 {
                unknown_players += 1;
            }
        }
        let mut upsert_room = tx.prepare_cached(
            "INSERT INTO room_items (room, items, updated_unix_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (room) DO UPDATE SET items = excluded.items, updated_unix_ms = excluded.updated_unix_ms",
        )?;
        for (room, items) in rooms {
            upsert_room.execute(params![room, encode_items(items)?, now_ms])?;
        }
    }
    tx.commit()?;
    Ok(unknown_players)
}

fn encode_items(items: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(items)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode items: {e}")))
}

fn decode_items(text: &str, owner: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("items of {owner}: {e}")))
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
