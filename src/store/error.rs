//! What can go wrong in the store, as values a shard can turn into an answer.

use std::fmt;
use std::path::PathBuf;

/// Why the store could not do what was asked. Logged and counted by the store
/// thread; handed to the shard through a reply when a request has one.
#[derive(Debug)]
pub enum StoreError {
    /// SQLite refused (I/O error, disk full, locked past the busy timeout, …).
    Sqlite(rusqlite::Error),
    /// The file was written by a newer mudshard; we will not guess its layout.
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// A value read from the file is not what this version wrote.
    Corrupt(String),
    /// Creating the data folder failed.
    Io(std::io::Error),
    /// The store thread could not be started.
    Thread(std::io::Error),
    /// The store thread panicked (a bug); its pending writes are lost.
    ThreadPanicked,
    /// The store thread has stopped: the request was not carried out.
    Closed,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sqlite(e) => write!(f, "store: sqlite: {e}"),
            StoreError::SchemaTooNew { path, found, known } => write!(
                f,
                "store: data file {} has schema version {found} but this mudshard knows up to {known}; upgrade mudshard",
                path.display()
            ),
            StoreError::Corrupt(what) => write!(f, "store: corrupt data: {what}"),
            StoreError::Io(e) => write!(f, "store: {e}"),
            StoreError::Thread(e) => write!(f, "store: cannot start the store thread: {e}"),
            StoreError::ThreadPanicked => write!(f, "store: the store thread panicked"),
            StoreError::Closed => write!(f, "store: stopped"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Sqlite(e) => Some(e),
            StoreError::Io(e) | StoreError::Thread(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(e)
    }
}

/// Why a registration was refused: the name is taken (answer `name_taken`) or
/// the store failed (answer a server error; nothing was created).
#[derive(Debug)]
pub enum RegisterError {
    /// An account with this name, compared case-insensitively, exists.
    NameTaken,
    /// The store could not commit; the account does not exist.
    Store(StoreError),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::NameTaken => write!(f, "that name is taken"),
            RegisterError::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RegisterError {}

impl From<StoreError> for RegisterError {
    fn from(e: StoreError) -> RegisterError {
        RegisterError::Store(e)
    }
}
