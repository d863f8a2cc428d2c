//! Cross-shard hop: a message from one shard's thread to another's through
//! `shard::mailbox` (a crossbeam channel plus a socket-pair doorbell), the
//! way a room's owner sends a `RoomEvent` to a shard with viewers, or a
//! connection's shard sends a `Cmd` to the owner of the player's room.
//!
//! * `cross_shard/stream` — a sender thread (this one) sends `RoomEvent`s
//!   continuously to a receiver thread that sleeps on its doorbell, wakes,
//!   re-arms and drains its inbox, as a shard's inbox task does. At most
//!   `IN_FLIGHT_MAX` messages are outstanding. The time is **per message**:
//!   the cost of the hop when traffic is steady and wake-ups are amortized.
//! * `cross_shard/round_trip` — one message to the other thread and one
//!   back, each waking a sleeping receiver through its doorbell. The time is
//!   per round trip (two hops): the latency a single cross-shard command pays
//!   on an otherwise idle server.
//!
//! Why it matters: with N shards, about (N−1)/N of commands and room events
//! cross shards (rooms are placed by hash), so this cost is paid on most
//! operations of `chat`, `rtt` and every shard-crossing move of `walk`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::io::Read;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mudshard::config::Limits;
use mudshard::protocol::encode;
use mudshard::shard::mailbox::{self, Inbox, Mailbox};
use mudshard::shard::msg::Msg;
use mudshard::shard::{SessionId, ShardAddr};

/// Messages the sender lets be outstanding in the stream case: enough to
/// amortize wake-ups, few enough that the channel's memory stays bounded.
const IN_FLIGHT_MAX: u64 = 4_096;
/// Doorbell bytes read per wake-up (as in the shard's inbox loop).
const RINGS_PER_READ_MAX: usize = 256;

/// A shard's end of its doorbell, read with blocking reads on a plain thread.
fn doorbell(inbox: &mut Inbox) -> UnixStream {
    let fd = inbox
        .take_wake_fd()
        .expect("a fresh inbox has its doorbell");
    // SAFETY: the fd is the inbox's own end of its socket pair, handed over once.
    let bell = unsafe { UnixStream::from_raw_fd(fd) };
    bell.set_nonblocking(false).expect("doorbell socket");
    bell
}

/// Sleeps until the doorbell rings; false when every mailbox is gone.
fn wait_ring(bell: &mut UnixStream, rings: &mut [u8]) -> bool {
    matches!(bell.read(rings), Ok(n) if n > 0)
}

/// The receiving shard: drains its inbox on each ring, counting messages,
/// and answers each `Frame` with one back to `reply_to`. Stops at `Shutdown`.
fn spawn_receiver(mut inbox: Inbox, reply_to: Mailbox, received: Arc<AtomicU64>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut bell = doorbell(&mut inbox);
        let mut rings = [0u8; RINGS_PER_READ_MAX];
        let mut count = 0u64;
        while wait_ring(&mut bell, &mut rings) {
            inbox.rearm();
            while let Some(msg) = inbox.try_recv() {
                match msg {
                    Msg::Shutdown => return,
                    Msg::Frame { sid, frame, done } => {
                        reply_to.send(Msg::Frame { sid, frame, done });
                    }
                    other => drop(other),
                }
                count += 1;
            }
            received.store(count, Ordering::Release);
        }
    })
}

fn say_body() -> Bytes {
    encode::event(
        "say",
        "grid:42_17",
        "lg0_12345",
        "hello from the other shard",
    )
}

fn bench_stream(c: &mut Criterion) {
    let (mut mailboxes, mut inboxes) =
        mailbox::create(2, Limits::default().inbox_msgs_max).expect("socket pairs");
    let to_receiver = mailboxes.swap_remove(1);
    let receiver_inbox = inboxes.swap_remove(1);
    let received = Arc::new(AtomicU64::new(0));
    let receiver = spawn_receiver(receiver_inbox, mailboxes[0].clone(), received.clone());
    let body = say_body();
    let mut sent = 0u64;

    let mut group = c.benchmark_group("cross_shard");
    group.throughput(Throughput::Elements(1));
    group.bench_function("stream", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                while sent - received.load(Ordering::Acquire) >= IN_FLIGHT_MAX {
                    thread::yield_now();
                }
                to_receiver.send(Msg::RoomEvent {
                    room: 7,
                    frame: body.clone(),
                    except: None,
                });
                sent += 1;
            }
            while received.load(Ordering::Acquire) < sent {
                thread::yield_now();
            }
            start.elapsed()
        })
    });
    group.finish();
    to_receiver.send(Msg::Shutdown);
    let _ = receiver.join();
}

fn bench_round_trip(c: &mut Criterion) {
    let (mut mailboxes, mut inboxes) =
        mailbox::create(2, Limits::default().inbox_msgs_max).expect("socket pairs");
    let to_receiver = mailboxes.swap_remove(1);
    let receiver_inbox = inboxes.swap_remove(1);
    let mut my_inbox = inboxes.swap_remove(0);
    let mut my_bell = doorbell(&mut my_inbox);
    let received = Arc::new(AtomicU64::new(0));
    let receiver = spawn_receiver(receiver_inbox, mailboxes[0].clone(), received);
    let body = say_body();
    let sid = SessionId::new(ShardAddr::new(0, 0), 1, 1);
    let mut rings = [0u8; RINGS_PER_READ_MAX];

    let mut group = c.benchmark_group("cross_shard");
    group.throughput(Throughput::Elements(1));
    group.bench_function("round_trip", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                to_receiver.send(Msg::Frame {
                    sid,
                    frame: body.clone(),
                    done: true,
                });
                let answer = loop {
                    if !wait_ring(&mut my_bell, &mut rings) {
                        panic!("the receiver thread is gone");
                    }
                    my_inbox.rearm();
                    if let Some(msg) = my_inbox.try_recv() {
                        break msg;
                    }
                };
                total += start.elapsed();
                drop(answer);
            }
            total
        })
    });
    group.finish();
    to_receiver.send(Msg::Shutdown);
    let _ = receiver.join();
}

criterion_group!(benches, bench_stream, bench_round_trip);
criterion_main!(benches);
