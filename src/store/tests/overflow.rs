//! The store thread is slowed down for real: another connection holds the
//! file's write lock, so the thread sits in SQLite's busy handler while the
//! shard keeps writing into a channel of two slots.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::*;

const ROOMS: usize = 200;

/// Fills the handle's overflow list while the writer is locked out, then
/// releases the lock. Returns the store and its handle.
fn overflow_while_locked(cfg: &StoreConfig) -> (Store, StoreHandle) {
    let (store, _) = open(cfg);
    let handle = store.handle();
    register(&handle, "Hoarder").expect("registered");

    let blocker = Connection::open(&cfg.path).expect("second connection");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("write lock");
    // The store thread takes this and then waits for the lock.
    handle.register("Latecomer", "phc".into(), "town:square", Box::new(|_| {}));
    std::thread::sleep(Duration::from_millis(50));
    for step in 0..ROOMS {
        handle.save_room_items(&format!("vault:{step}"), &[format!("coin{step}")]);
        handle.save_player(
            "hoarder",
            &format!("vault:{step}"),
            &[format!("coin{step}")],
        );
    }
    assert!(handle.overflow_len() > 0, "the channel of two filled up");
    let metrics = store.metrics();
    assert!(metrics.overflow_total.load(Relaxed) > 0);
    assert_eq!(
        metrics.overflow_depth.load(Relaxed),
        handle.overflow_len() as u64
    );
    std::thread::sleep(Duration::from_millis(100));
    blocker.execute_batch("COMMIT").expect("release");
    (store, handle)
}

fn assert_nothing_lost(path: &PathBuf) {
    for step in 0..ROOMS {
        let room = format!("vault:{step}");
        assert_eq!(
            room_in_file(path, &room),
            Some(format!(r#"["coin{step}"]"#)),
            "{room}"
        );
    }
    let last = ROOMS - 1;
    assert_eq!(
        player_in_file(path, "hoarder"),
        Some((format!("vault:{last}"), format!(r#"["coin{last}"]"#)))
    );
    assert_eq!(
        accounts_in_file(path),
        2,
        "the registration behind the lock went through"
    );
}

#[test]
fn a_full_queue_parks_writes_in_the_handle_and_pump_delivers_them_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = StoreConfig {
        queue_max: 2,
        ..config(dir.path(), 20)
    };
    let (store, handle) = overflow_while_locked(&cfg);
    let started = Instant::now();
    while handle.pump() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "overflow never drained"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(store.metrics().overflow_depth.load(Relaxed), 0);
    // The channel may be full again: the flush itself can be parked.
    wait_pumping(&handle, |r| handle.flush(r)).expect("flush");
    assert_nothing_lost(&cfg.path);
    drop(handle);
    store.shutdown().expect("shutdown");
}

#[test]
fn a_dropped_handle_hands_its_overflow_to_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = StoreConfig {
        queue_max: 2,
        ..config(dir.path(), 20)
    };
    let (store, handle) = overflow_while_locked(&cfg);
    drop(handle);
    store.shutdown().expect("shutdown");
    assert_nothing_lost(&cfg.path);
}
