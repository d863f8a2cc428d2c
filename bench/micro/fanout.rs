//! Fan-out: one event body delivered to every viewer of a room on a shard —
//! queued on each viewer's session (`Session::push_seq`, as the shard does for
//! a `RoomEvent`) and then written out as wire bytes by each connection
//! (`net::session_io::encode_out`: WebSocket header + `{"seq":N,` + shared body).
//!
//! Why it matters: in `chat`, every say is delivered to everyone else in the
//! room, so deliveries outnumber commands by the room size (≈ 99× in the
//! standard suite); per-delivery cost is what bounds delivered events/s.
//! The figures are per delivery (throughput in elements = viewers).
//!
//! The sessions live in the shard's slab (`Sessions`) among 10,000 others, and
//! a room's viewers are spread across it (players join rooms round-robin in
//! `chat`), so the walk over viewers touches memory the way the server does.
//! Each session has a no-op waker so that the wake in `push` is paid too;
//! what is not here is the `send` syscall of each connection's flush.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::net::IpAddr;
use std::task::Waker;

use mudshard::net::session_io::encode_out;
use mudshard::protocol::encode;
use mudshard::shard::history::HistoryBounds;
use mudshard::shard::session::{Session, Sessions};

/// Sessions on the shard (the `chat` suite's 10,000 players).
const SESSIONS_ON_SHARD: u32 = 10_000;
/// The server's default bound on one connection's outbound queue (DESIGN §7).
const OUTBOUND_BYTES_MAX: usize = 1024 * 1024;
/// Room sizes measured.
const VIEWERS: [u32; 2] = [100, 1_000];

/// A shard's sessions and the slots of one room's viewers.
struct Room {
    sessions: Sessions,
    viewers: Vec<u32>,
}

fn room_of(viewers: u32) -> Room {
    let ip = IpAddr::from([127, 0, 0, 1]);
    let mut sessions = Sessions::new();
    for _ in 0..SESSIONS_ON_SHARD {
        let (slot, _) = sessions.insert(|gen| Session::new(gen, 0, 40, ip, HistoryBounds::DEFAULT));
        if let Some(session) = sessions.by_slot(slot) {
            session.waker = Some(Waker::noop().clone());
        }
    }
    let stride = SESSIONS_ON_SHARD / viewers;
    Room {
        sessions,
        viewers: (0..viewers).map(|i| i * stride).collect(),
    }
}

fn say_body() -> Bytes {
    encode::event(
        "say",
        "grid:42_17",
        "lg0_12345",
        "has anyone seen the blacksmith? I need my sword mended before nightfall",
    )
}

/// Queues the body on every viewer, as `Shard::on_room_event` does.
fn push_all(room: &mut Room, body: &Bytes) {
    for &slot in &room.viewers {
        if let Some(session) = room.sessions.by_slot(slot) {
            let queued = session.push_seq(body.clone(), OUTBOUND_BYTES_MAX);
            debug_assert!(queued);
        }
    }
}

/// Queue only: what the owner-side shard spends per delivery before any write.
fn bench_push(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout/push");
    let body = say_body();
    for viewers in VIEWERS {
        let mut room = room_of(viewers);
        group.throughput(Throughput::Elements(u64::from(viewers)));
        group.bench_function(BenchmarkId::from_parameter(viewers), |b| {
            b.iter(|| {
                push_all(&mut room, black_box(&body));
                for &slot in &room.viewers {
                    if let Some(session) = room.sessions.by_slot(slot) {
                        session.out.clear();
                        session.out_bytes = 0;
                    }
                }
            })
        });
    }
    group.finish();
}

/// Queue, then each connection encodes its queue to wire bytes (one frame
/// each here) in the shard's write scratch buffer, as a flush does.
fn bench_push_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout/push_encode");
    let body = say_body();
    let mut wbuf: Vec<u8> = Vec::with_capacity(64 * 1024 + 1024);
    for viewers in VIEWERS {
        let mut room = room_of(viewers);
        group.throughput(Throughput::Elements(u64::from(viewers)));
        group.bench_function(BenchmarkId::from_parameter(viewers), |b| {
            b.iter(|| {
                push_all(&mut room, black_box(&body));
                let mut wire_bytes = 0;
                for &slot in &room.viewers {
                    let Some(session) = room.sessions.by_slot(slot) else {
                        continue;
                    };
                    wbuf.clear();
                    while let Some(out) = session.out.pop_front() {
                        encode_out(&mut wbuf, &out);
                    }
                    session.out_bytes = 0;
                    wire_bytes += black_box(&wbuf).len();
                }
                wire_bytes
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_push, bench_push_encode);
criterion_main!(benches);
