//! An online copy of the store's file, taken while the server runs: SQLite's
//! backup API reads one consistent snapshot (WAL lets the server go on
//! committing meanwhile), so the copy is a whole database as of one moment,
//! never a torn file as `cp` of a live WAL database can be.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::db::BUSY_TIMEOUT_MS;

/// Times a busy or locked step is retried before the copy is given up.
const BACKUP_RETRIES_MAX: u32 = 50;
/// Pause between those retries.
const BACKUP_RETRY_MS: u64 = 100;

/// Copies the database `db` to the new file `out` (which must not exist);
/// returns the pages copied, or why it could not.
pub fn backup(db: &Path, out: &Path) -> Result<u64, String> {
    if out.exists() {
        return Err(format!(
            "{} exists already; name a new file for the copy",
            out.display()
        ));
    }
    let sqlite = |e: rusqlite::Error| format!("sqlite: {e}");
    // No CREATE: a wrong path must not leave an empty database behind.
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    src.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(sqlite)?;
    let mut dst =
        Connection::open(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let copy = Backup::new(&src, &mut dst).map_err(sqlite)?;
    let mut retries = 0;
    loop {
        // -1: every page in one step, so the copy is one read snapshot and
        // is not restarted by the server's commits between steps.
        match copy.step(-1).map_err(sqlite)? {
            StepResult::Done => break,
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                retries += 1;
                if retries > BACKUP_RETRIES_MAX {
                    return Err("the database stayed locked; try again".into());
                }
                std::thread::sleep(Duration::from_millis(BACKUP_RETRY_MS));
            }
            _ => {}
        }
    }
    let pages = u64::try_from(copy.progress().pagecount).unwrap_or(0);
    Ok(pages)
}
