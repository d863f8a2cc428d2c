//! Store tests: real SQLite files in temp dirs, the real store thread.

mod accounts;
mod crash;
mod migration;
mod overflow;
mod write_behind;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use super::{AccountRecord, RegisterError, Reply, Snapshot, Store, StoreConfig, StoreHandle};

/// Longest any test waits for a reply before failing.
const REPLY_TIMEOUT_MS: u64 = 10_000;

fn config(dir: &Path, flush_interval_ms: u64) -> StoreConfig {
    StoreConfig {
        path: dir.join("host.sqlite3"),
        flush_interval_ms,
        queue_max: 1024,
    }
}

fn open(cfg: &StoreConfig) -> (Store, Snapshot) {
    Store::open(cfg.clone()).expect("store opens")
}

/// Runs a request and waits for its reply, as a shard's inbox would.
fn wait<T: Send + 'static>(submit: impl FnOnce(Reply<T>)) -> T {
    let (tx, rx) = crossbeam_channel::bounded(1);
    submit(Box::new(move |value| {
        let _ = tx.send(value);
    }));
    rx.recv_timeout(Duration::from_millis(REPLY_TIMEOUT_MS))
        .expect("store replied")
}

/// `wait` for a handle that may have parked the request: pumps its overflow
/// list while waiting, as a shard does on its tick.
fn wait_pumping<T: Send + 'static>(handle: &StoreHandle, submit: impl FnOnce(Reply<T>)) -> T {
    let (tx, rx) = crossbeam_channel::bounded(1);
    submit(Box::new(move |value| {
        let _ = tx.send(value);
    }));
    let started = std::time::Instant::now();
    loop {
        if let Ok(value) = rx.recv_timeout(Duration::from_millis(1)) {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_millis(REPLY_TIMEOUT_MS),
            "store replied"
        );
        handle.pump();
    }
}

fn register(handle: &StoreHandle, name: &str) -> Result<AccountRecord, RegisterError> {
    wait(|reply| handle.register(name, format!("phc-of-{name}"), "town:square", reply))
}

/// A player's row as another process would see it in the file.
fn player_in_file(path: &PathBuf, name_key: &str) -> Option<(String, String)> {
    let conn = Connection::open(path).expect("file opens");
    conn.query_row(
        "SELECT p.room, p.inventory FROM players p JOIN accounts a ON a.id = p.account_id WHERE a.name_key = ?1",
        [name_key],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .optional()
    .expect("query")
}

/// A room's stored items as another process would see them in the file.
fn room_in_file(path: &PathBuf, room: &str) -> Option<String> {
    let conn = Connection::open(path).expect("file opens");
    conn.query_row(
        "SELECT items FROM room_items WHERE room = ?1",
        [room],
        |row| row.get(0),
    )
    .optional()
    .expect("query")
}

fn accounts_in_file(path: &PathBuf) -> i64 {
    let conn = Connection::open(path).expect("file opens");
    conn.query_row("SELECT count(*) FROM accounts", [], |row| row.get(0))
        .expect("count")
}

fn items(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}
