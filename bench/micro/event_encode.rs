//! Event encode: building the shared body of an `event` frame
//! (`protocol::encode::event`) — the frame a `say` fans out to everyone in
//! the room — and the JSON string escaping under it (`encode::put_str`).
//!
//! Why it matters: an event is serialized once per room event (DESIGN §1,
//! fan-out), on the shard that owns the room, and that shard serializes every
//! event of every room it owns. It is cheap per delivery only because it is
//! done once; this pins what "once" costs. `event` also reads the wall clock
//! for `ts`, which is part of the figure.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

use mudshard::protocol::encode;

/// Texts of `say` events: typical, long (a paragraph at the 512-character
/// limit's scale) and one that needs escaping.
fn texts() -> Vec<(&'static str, String)> {
    vec![
        ("short", "hello everyone".to_string()),
        (
            "typical",
            "has anyone seen the blacksmith? I need my sword mended before nightfall".to_string(),
        ),
        (
            "long_480",
            "the quick brown fox jumps over the lazy dog ".repeat(11),
        ),
        (
            "escaped",
            "she said \"run!\"\nand then\tthe \\ door slammed — café 🦀".to_string(),
        ),
    ]
}

fn bench_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_encode/event");
    for (name, text) in texts() {
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                encode::event(
                    black_box("say"),
                    black_box("grid:42_17"),
                    black_box("lg0_12345"),
                    black_box(&text),
                )
            })
        });
    }
    group.finish();
}

fn bench_put_str(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_encode/put_str");
    let mut out = Vec::with_capacity(2048);
    for (name, text) in texts() {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                out.clear();
                encode::put_str(&mut out, black_box(&text));
                out.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_event, bench_put_str);
criterion_main!(benches);
