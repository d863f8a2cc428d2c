//! `kill -9` for real: a child process (this test binary, re-run on one test)
//! writes through the store and is killed with SIGKILL; the parent reopens
//! the file and checks what survived.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::*;

/// Set in the child: the file to write to.
const CHILD_PATH_ENV: &str = "MUDSHARD_STORE_CRASH_CHILD";
const FLUSH_INTERVAL_MS: u64 = 50;
/// What the child prints once its writes are in the store's hands.
const SAVED_MARK: &str = "CRASH-CHILD-SAVED";

/// The child's body; does nothing in a normal test run.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_PATH_ENV) else {
        return;
    };
    let cfg = StoreConfig {
        path: path.into(),
        flush_interval_ms: FLUSH_INTERVAL_MS,
        queue_max: 1024,
    };
    let (store, _) = open(&cfg);
    let handle = store.handle();
    register(&handle, "Survivor").expect("registered");
    handle.save_player("survivor", "crash:old", &items(&["map"]));
    wait(|r| handle.flush(r)).expect("flush");
    handle.save_player("survivor", "crash:new", &items(&["map", "gem"]));
    handle.save_room_items("crash:floor", &items(&["coin"]));
    // The harness may print "test … " before this on the same line.
    println!("{SAVED_MARK}");
    // Wait to be killed; bounded so a broken parent cannot leave it behind.
    std::thread::sleep(Duration::from_secs(60));
    std::mem::forget(store);
}

/// Starts the child, waits for its `SAVED_MARK`, waits `before_kill_ms`, SIGKILLs it.
fn run_child_and_kill(path: &PathBuf, before_kill_ms: u64) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "store::tests::crash::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_PATH_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("piped");
    let saved = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.ends_with(SAVED_MARK));
    std::thread::sleep(Duration::from_millis(before_kill_ms));
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert!(saved, "the child reached SAVED");
}

#[test]
fn kill_9_loses_nothing_older_than_one_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("host.sqlite3");
    run_child_and_kill(&path, FLUSH_INTERVAL_MS * 10);
    assert_eq!(accounts_in_file(&path), 1);
    assert_eq!(
        player_in_file(&path, "survivor"),
        Some(("crash:new".into(), r#"["map","gem"]"#.into()))
    );
    assert_eq!(
        room_in_file(&path, "crash:floor"),
        Some(r#"["coin"]"#.into())
    );
}

#[test]
fn kill_9_right_after_writes_keeps_the_account_and_the_flushed_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("host.sqlite3");
    run_child_and_kill(&path, 0);
    // The last interval may be gone; the account and what was flushed are not.
    let (room, _) = player_in_file(&path, "survivor").expect("the account survived");
    assert!(room == "crash:old" || room == "crash:new", "{room}");
    let (store, _) = open(&config(dir.path(), 100));
    assert!(wait(|r| store.handle().load_account("survivor", r))
        .expect("load")
        .is_some());
    store.shutdown().expect("shutdown");
}
