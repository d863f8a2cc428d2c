use std::sync::{Arc, Barrier};

use super::*;

#[test]
fn a_registered_account_is_in_the_file_after_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 100);
    let (store, _) = open(&cfg);
    let handle = store.handle();
    let created = register(&handle, "Alice").expect("registered");
    assert_eq!(created.name, "Alice");
    assert_eq!(created.room, "town:square");
    // Acknowledged means committed: another connection sees it right away.
    assert_eq!(accounts_in_file(&cfg.path), 1);
    drop(handle);
    store.shutdown().expect("shutdown");

    let (store, _) = open(&cfg);
    let loaded = wait(|r| store.handle().load_account("ALICE", r))
        .expect("load")
        .expect("exists");
    assert_eq!(loaded, created);
    store.shutdown().expect("shutdown");
}

#[test]
fn a_name_taken_in_any_letter_case_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = open(&config(dir.path(), 100));
    let handle = store.handle();
    register(&handle, "Bob").expect("first");
    for again in ["Bob", "bob", "BOB", "bOb"] {
        assert!(
            matches!(register(&handle, again), Err(RegisterError::NameTaken)),
            "{again}"
        );
    }
    assert!(wait(|r| handle.load_account("nobody", r))
        .expect("load")
        .is_none());
    drop(handle);
    store.shutdown().expect("shutdown");
}

#[test]
fn two_threads_registering_one_name_at_once_create_exactly_one_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 100);
    let (store, _) = open(&cfg);
    let rounds = 20;
    for round in 0..rounds {
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [format!("Racer{round}"), format!("racer{round}")]
            .into_iter()
            .map(|name| {
                let (handle, barrier) = (store.handle(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    register(&handle, &name).is_ok()
                })
            })
            .collect();
        let won: usize = racers
            .into_iter()
            .map(|t| usize::from(t.join().expect("racer")))
            .sum();
        assert_eq!(won, 1, "round {round}");
    }
    assert_eq!(accounts_in_file(&cfg.path), rounds);
    store.shutdown().expect("shutdown");
}

#[test]
fn registrations_queued_together_share_one_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = open(&config(dir.path(), 100));
    let handle = store.handle();
    let (tx, rx) = crossbeam_channel::unbounded();
    let names: Vec<String> = (0..50)
        .map(|i| format!("user{i}"))
        .chain(["USER7".to_owned()])
        .collect();
    for name in &names {
        let tx = tx.clone();
        handle.register(
            name,
            "phc".into(),
            "town:square",
            Box::new(move |r| {
                let _ = tx.send(r.is_ok());
            }),
        );
    }
    let oks = (0..names.len())
        .filter(|_| rx.recv().expect("reply"))
        .count();
    assert_eq!(oks, 50, "all but the duplicate of user7");
    let metrics = store.metrics();
    let commits = metrics
        .commits_total
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        commits < 50,
        "group commit: {commits} commits for 51 registrations"
    );
    drop(handle);
    store.shutdown().expect("shutdown");
}

#[test]
fn the_token_secret_is_random_per_file_and_kept_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 100);
    let (store, first) = open(&cfg);
    store.shutdown().expect("shutdown");
    let (store, again) = open(&cfg);
    store.shutdown().expect("shutdown");
    assert_eq!(first.token_secret, again.token_secret);
    assert_ne!(first.token_secret, [0u8; 32]);

    let other = tempfile::tempdir().expect("tempdir");
    let (store, stranger) = open(&config(other.path(), 100));
    store.shutdown().expect("shutdown");
    assert_ne!(first.token_secret, stranger.token_secret);
}

/// The store's count of lookups the account filter answered by itself.
fn ruled_out(store: &Store) -> u64 {
    store
        .metrics()
        .lookups_ruled_out_total
        .load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn a_name_with_no_account_is_answered_without_the_store_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = open(&config(dir.path(), 100));
    let handle = store.handle();
    register(&handle, "Dana").expect("registered");
    assert!(wait(|r| handle.load_account("nobody", r))
        .expect("load")
        .is_none());
    assert_eq!(ruled_out(&store), 1, "the filter answered for a stranger");
    assert!(!handle.may_have_account("Stranger"));
    assert_eq!(ruled_out(&store), 2);
    // Dana's account, in any letter case, is read from the file.
    for name in ["Dana", "dana", "DANA"] {
        assert!(handle.may_have_account(name), "{name}");
        let loaded = wait(|r| handle.load_account(name, r)).expect("load");
        assert_eq!(loaded.expect("exists").name, "Dana");
    }
    assert_eq!(ruled_out(&store), 2, "an account's name is never ruled out");
    drop(handle);
    store.shutdown().expect("shutdown");
}

#[test]
fn every_account_of_the_file_is_in_the_filter_after_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 100);
    let names: Vec<String> = (0..300).map(|i| format!("Settler{i}")).collect();
    let (store, _) = open(&cfg);
    let handle = store.handle();
    for name in &names {
        register(&handle, name).expect("registered");
    }
    drop(handle);
    store.shutdown().expect("shutdown");

    let (store, _) = open(&cfg);
    let handle = store.handle();
    for name in &names {
        let loaded = wait(|r| handle.load_account(&name.to_lowercase(), r)).expect("load");
        assert_eq!(loaded.expect("exists").name, *name);
    }
    assert_eq!(ruled_out(&store), 0);
    drop(handle);
    store.shutdown().expect("shutdown");
}

#[test]
fn a_registration_not_yet_answered_is_never_ruled_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = open(&config(dir.path(), 100));
    let registrar = store.handle();
    let reader = store.handle();
    // Asked, not waited for: another shard's lookup right after must find it
    // (the filter learns the name when it is asked, the store thread commits
    // queued registrations before it answers a lookup).
    let (tx, rx) = crossbeam_channel::bounded(1);
    registrar.register(
        "Eve",
        "$argon2id$v=19$test".into(),
        "town:square",
        Box::new(move |created| {
            let _ = tx.send(created);
        }),
    );
    assert!(reader.may_have_account("eve"));
    let loaded = wait(|r| reader.load_account("EVE", r)).expect("load");
    assert_eq!(loaded.expect("exists").name, "Eve");
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("answered")
        .expect("created");
    assert_eq!(ruled_out(&store), 0);
    drop((registrar, reader));
    store.shutdown().expect("shutdown");
}
