//! The messages a [`StoreHandle`](super::StoreHandle) sends to the store thread.

use super::error::{RegisterError, StoreError};

/// How an answer gets back to a shard: a closure the shard supplies, run on the
/// store (or hasher) thread. It should only post the value to the shard's inbox
/// and ring its doorbell: it runs on a thread that other shards wait for.
pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// A registered player as the file (plus any pending write) knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Stable account id (SQLite rowid).
    pub id: i64,
    /// The name as it was typed at registration (display form).
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// The room the player was last in.
    pub room: String,
    /// What the player carries, in order.
    pub inventory: Vec<String>,
}

/// A player's latest location and inventory, waiting for the next flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlayerState {
    pub room: String,
    pub inventory: Vec<String>,
    /// When the owner saved it (CLOCK_MONOTONIC, ns). A body handed to
    /// another shard is saved there later on this system-wide clock, so the
    /// store can tell a stale save that arrived late from the newest one.
    pub at_ns: u64,
}

pub(crate) enum Request {
    Register {
        name: String,
        password_hash: String,
        start_room: String,
        reply: Reply<Result<AccountRecord, RegisterError>>,
    },
    LoadAccount {
        name: String,
        reply: Reply<Result<Option<AccountRecord>, StoreError>>,
    },
    SavePlayer {
        name_key: String,
        state: PlayerState,
    },
    SaveRoomItems {
        room: String,
        items: Vec<String>,
    },
    Flush {
        reply: Reply<Result<(), StoreError>>,
    },
    Shutdown,
}

impl Request {
    /// The key under which a write-behind request coalesces with a later one.
    pub(crate) fn coalesce_key(&self) -> Option<(u8, &str)> {
        match self {
            Request::SavePlayer { name_key, .. } => Some((0, name_key)),
            Request::SaveRoomItems { room, .. } => Some((1, room)),
            _ => None,
        }
    }

    /// Answers a request that will never be carried out (the thread is gone).
    pub(crate) fn fail_closed(self) {
        match self {
            Request::Register { reply, .. } => reply(Err(RegisterError::Store(StoreError::Closed))),
            Request::LoadAccount { reply, .. } => reply(Err(StoreError::Closed)),
            Request::Flush { reply } => reply(Err(StoreError::Closed)),
            Request::SavePlayer { .. } | Request::SaveRoomItems { .. } | Request::Shutdown => {}
        }
    }
}
