use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::*;

#[test]
fn many_saves_coalesce_into_one_batch_that_lands_within_an_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 200);
    let (store, _) = open(&cfg);
    let handle = store.handle();
    register(&handle, "Walker").expect("registered");
    for step in 0..100 {
        handle.save_player("walker", &format!("road:{step}"), &items(&["stick"]));
        handle.save_room_items("road:0", &items(&["pebble"; 3])[..step % 3]);
    }
    let sent = Instant::now();
    while player_in_file(&cfg.path, "walker").is_some_and(|(room, _)| room != "road:99") {
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "the batch never landed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let landed_ms = sent.elapsed().as_millis();
    assert_eq!(
        player_in_file(&cfg.path, "walker"),
        Some(("road:99".into(), r#"["stick"]"#.into()))
    );
    assert_eq!(
        room_in_file(&cfg.path, "road:0"),
        Some(r#"[]"#.into()),
        "99 % 3 = 0 pebbles"
    );
    let metrics = store.metrics();
    assert!(
        metrics.batches_total.load(Relaxed) <= 2,
        "saves were coalesced"
    );
    assert_eq!(
        metrics.batch_writes_max.load(Relaxed),
        2,
        "one player and one room"
    );
    // One interval plus generous slack for a loaded 2-core machine.
    assert!(landed_ms < 200 + 800, "landed after {landed_ms} ms");
    drop(handle);
    store.shutdown().expect("shutdown");
}

#[test]
fn a_load_sees_a_save_that_is_still_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 60_000);
    let (store, _) = open(&cfg);
    let handle = store.handle();
    register(&handle, "Reader").expect("registered");
    handle.save_player("reader", "town:library", &items(&["book"]));
    let loaded = wait(|r| handle.load_account("reader", r))
        .expect("load")
        .expect("exists");
    assert_eq!(
        (loaded.room.as_str(), loaded.inventory),
        ("town:library", items(&["book"]))
    );
    assert_eq!(
        player_in_file(&cfg.path, "reader"),
        Some(("town:square".into(), "[]".into())),
        "not flushed yet"
    );
    wait(|r| handle.flush(r)).expect("flush");
    assert_eq!(
        player_in_file(&cfg.path, "reader"),
        Some(("town:library".into(), r#"["book"]"#.into()))
    );
    drop(handle);
    store.shutdown().expect("shutdown");
}

#[test]
fn shutdown_writes_everything_pending_and_the_snapshot_brings_rooms_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 60_000);
    let (store, first) = open(&cfg);
    assert!(first.room_items.is_empty());
    let handle = store.handle();
    register(&handle, "Keeper").expect("registered");
    handle.save_player("keeper", "town:vault", &items(&["key", "lamp"]));
    handle.save_room_items("town:vault", &items(&["chest"]));
    handle.save_room_items("town:square", &[]);
    drop(handle);
    store.shutdown().expect("shutdown");

    assert_eq!(
        player_in_file(&cfg.path, "keeper"),
        Some(("town:vault".into(), r#"["key","lamp"]"#.into()))
    );
    let (store, snapshot) = open(&cfg);
    assert_eq!(
        snapshot.room_items.get("town:vault"),
        Some(&items(&["chest"]))
    );
    assert_eq!(
        snapshot.room_items.get("town:square"),
        Some(&Vec::new()),
        "an emptied room stays empty"
    );
    store.shutdown().expect("shutdown");
}

#[test]
fn dropping_the_store_without_shutdown_still_writes_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 60_000);
    let (store, _) = open(&cfg);
    let handle = store.handle();
    register(&handle, "Dropper").expect("registered");
    handle.save_player("dropper", "town:well", &items(&["bucket"]));
    drop(handle);
    drop(store);
    assert_eq!(
        player_in_file(&cfg.path, "dropper"),
        Some(("town:well".into(), r#"["bucket"]"#.into()))
    );
}

#[test]
fn a_save_for_a_guest_is_ignored_without_harm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 60_000);
    let (store, _) = open(&cfg);
    let handle = store.handle();
    handle.save_player("guest_42", "town:square", &items(&["hat"]));
    wait(|r| handle.flush(r)).expect("flush");
    assert_eq!(player_in_file(&cfg.path, "guest_42"), None);
    assert_eq!(store.metrics().errors_total.load(Relaxed), 0);
    drop(handle);
    store.shutdown().expect("shutdown");
}

#[test]
fn metrics_render_as_prometheus_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = open(&config(dir.path(), 60_000));
    let handle = store.handle();
    handle.save_room_items("town:square", &items(&["leaf"]));
    wait(|r| handle.flush(r)).expect("flush");
    let mut out = String::new();
    store.metrics().render_prometheus(&mut out);
    for line in [
        "# TYPE mudshard_store_queue_depth gauge",
        "mudshard_store_batches_total 1",
        "mudshard_store_batch_writes_max 1",
        "mudshard_store_commits_total 1",
        "mudshard_store_errors_total 0",
        "mudshard_store_overflow_total 0",
        "mudshard_store_flush_latency_us_count 1",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    assert!(
        out.contains("mudshard_store_flush_latency_us{quantile=\"0.99\"} "),
        "{out}"
    );
    drop(handle);
    store.shutdown().expect("shutdown");
}

#[test]
fn a_failed_flush_is_counted_and_its_writes_are_retried_next_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 20);
    let (store, _) = open(&cfg);
    let handle = store.handle();
    register(&handle, "Unlucky").expect("registered");
    // Another connection makes every player update fail, as a full disk would.
    let saboteur = Connection::open(&cfg.path).expect("second connection");
    saboteur
        .execute_batch(
            "CREATE TRIGGER sabotage BEFORE UPDATE ON players BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
        )
        .expect("trigger");
    handle.save_player("unlucky", "town:pit", &items(&["rope"]));
    let flushed = wait(|r| handle.flush(r));
    assert!(flushed.is_err(), "the flush failed");
    let metrics = store.metrics();
    let started = Instant::now();
    while metrics.errors_total.load(Relaxed) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "retries every interval"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        player_in_file(&cfg.path, "unlucky"),
        Some(("town:square".into(), "[]".into()))
    );

    saboteur
        .execute_batch("DROP TRIGGER sabotage")
        .expect("repaired");
    while player_in_file(&cfg.path, "unlucky") != Some(("town:pit".into(), r#"["rope"]"#.into())) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the kept write landed after the repair"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(metrics.pending_writes.load(Relaxed), 0);
    drop(handle);
    store.shutdown().expect("shutdown");
}

#[test]
fn a_late_save_from_a_body_s_previous_owner_does_not_overwrite_a_newer_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 60_000);
    let (store, _) = open(&cfg);
    // Two shards: the body left the first (saved at t=100) for the second
    // (saved at t=200), but the first's save reaches the store last.
    let old_owner = store.handle();
    let new_owner = store.handle();
    register(&new_owner, "Mover").expect("registered");
    new_owner.save_player_at("mover", "town:market", &items(&["map"]), 200);
    old_owner.save_player_at("mover", "town:square", &items(&[]), 100);
    wait(|r| new_owner.flush(r)).expect("flush");
    assert_eq!(
        player_in_file(&cfg.path, "mover"),
        Some(("town:market".into(), r#"["map"]"#.into()))
    );
    assert_eq!(store.metrics().stale_saves_total.load(Relaxed), 1);
    // A later save still lands.
    old_owner.save_player_at("mover", "town:inn", &items(&[]), 300);
    wait(|r| old_owner.flush(r)).expect("flush");
    assert_eq!(
        player_in_file(&cfg.path, "mover").map(|p| p.0),
        Some("town:inn".into())
    );
    drop((old_owner, new_owner));
    store.shutdown().expect("shutdown");
}
