//! The store (issue 3): how many registrations a second one SQLite file
//! takes (each acknowledged only after its commit, fsync included), and how
//! long one write-behind flush takes for a batch of player saves. With the
//! default 100 ms interval, a batch of N saves is a write rate of 10·N/s.
//!
//! `cargo bench --bench store`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_channel::bounded;
use mudshard::store::{Store, StoreConfig};
use std::time::{Duration, Instant};

/// A PHC string of the right shape: the store never hashes, it stores.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn open(dir: &tempfile::TempDir) -> Store {
    let mut config = StoreConfig::new(dir.path().join("mudshard.db"));
    // Flushes are driven by the benchmark, not by the timer.
    config.flush_interval_ms = 60_000;
    Store::open(config).expect("open store").0
}

fn registrations(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_register");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for in_flight in [1usize, 64] {
        group.throughput(Throughput::Elements(in_flight as u64));
        group.bench_with_input(
            BenchmarkId::new("in_flight", in_flight),
            &in_flight,
            |b, &in_flight| {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = open(&dir);
                let handle = store.handle();
                let mut next = 0u64;
                b.iter(|| {
                    let (tx, rx) = bounded(in_flight);
                    for _ in 0..in_flight {
                        next += 1;
                        let tx = tx.clone();
                        handle.register(
                            &format!("p{next}"),
                            HASH.to_string(),
                            "town:square",
                            Box::new(move |r| {
                                let _ = tx.send(r.is_ok());
                            }),
                        );
                    }
                    for _ in 0..in_flight {
                        assert!(rx.recv().expect("reply"), "registration committed");
                    }
                });
                drop(handle);
                store.shutdown().expect("shutdown");
            },
        );
    }
    group.finish();
}

fn flush_batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_flush");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for batch in [100usize, 1_000, 5_000] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(
            BenchmarkId::new("player_saves", batch),
            &batch,
            |b, &batch| {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = open(&dir);
                let handle = store.handle();
                let (tx, rx) = bounded(batch);
                for i in 0..batch {
                    let tx = tx.clone();
                    handle.register(
                        &format!("p{i}"),
                        HASH.to_string(),
                        "town:square",
                        Box::new(move |r| {
                            let _ = tx.send(r.is_ok());
                        }),
                    );
                }
                for _ in 0..batch {
                    assert!(rx.recv().expect("reply"));
                }
                let inventory = vec!["lantern".to_string(), "map".to_string()];
                let mut round = 0u64;
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        round += 1;
                        let room = format!("grid:{}_0", round % 100);
                        for i in 0..batch {
                            handle.save_player(&format!("p{i}"), &room, &inventory);
                        }
                        let (done_tx, done_rx) = bounded(1);
                        let started = Instant::now();
                        handle.flush(Box::new(move |r| {
                            let _ = done_tx.send(r.is_ok());
                        }));
                        assert!(done_rx.recv().expect("flush reply"), "flush committed");
                        total += started.elapsed();
                    }
                    total
                });
                let metrics = store.metrics();
                eprintln!(
                "store_flush/{batch}: flush latency p50 {} µs, p99 {} µs (store's own histogram)",
                metrics.flush_latency_us_at(0.5),
                metrics.flush_latency_us_at(0.99)
            );
                drop(handle);
                store.shutdown().expect("shutdown");
            },
        );
    }
    group.finish();
}

criterion_group!(store, registrations, flush_batches);
criterion_main!(store);
