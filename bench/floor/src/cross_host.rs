//! `floor --cross-host`: the lowest latency this machine allows for the
//! path of loadgen's `cluster` scenario, with no game, no WebSocket and no
//! runtime in the way, but every thread and every wake-up of the real path.
//!
//! The path of one `say`, as mudshard runs it across two hosts, and here:
//!
//! ```text
//! client ──TCP──▶ host a's shard ──channel──▶ a's publisher ──PUBLISH──▶ redis-server
//!   ▲                │ (same-host copies)                                    │
//!   └──────TCP───────┘                                                       ▼
//! client ◀──TCP── host b's shard ◀──channel + eventfd── b's subscriber ◀─────┘
//! ```
//!
//! * A client thread sends `--bytes`-byte says, open loop at `--rate` per
//!   second, round-robin over the rooms and each room's talkers, each
//!   stamped with the time it was due.
//! * "Host a's shard", an epoll thread, reads each say, writes it to the
//!   room's other talkers (the same-host deliveries) and hands it to the
//!   publisher over a crossbeam channel.
//! * The publisher thread takes everything waiting, as mudshard's does, and
//!   sends it as one `PUBLISH` (one round trip) to host b's inbox channel on
//!   a real `redis-server` (`--redis`).
//! * The subscriber thread reads its subscription (the `redis` crate's
//!   synchronous pub/sub, as mudshard's), and hands each envelope to "host
//!   b's shard" over a channel, ringing its eventfd.
//! * Host b's shard, an epoll thread, writes each say to the room's
//!   listeners: the cross-host deliveries.
//! * A client receiver thread reads every delivery and times it from the
//!   say's due time (coordinated omission corrected, as loadgen does).
//!
//! Each stage does the least it can: one `recv` per ready socket, one `send`
//! per delivery, no framing beyond fixed-size messages, nothing to decide.
//! Its percentiles are therefore a floor under what any bridged server and
//! its load generator can show together on this machine in this layout.

use crate::net::{loopback_pairs, recv, send_all, Epoll};
use crate::thread_cpu_s;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use hdrhistogram::Histogram;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The channel host b subscribes to (its inbox, as in mudshard).
const INBOX_CHANNEL: &str = "floor:inbox:b";
/// How long a thread waits before it looks at the stop flag again.
const TICK: Duration = Duration::from_millis(100);
/// Deliveries still missing this long after the last say count as lost.
const DRAIN: Duration = Duration::from_secs(2);
const READ_BUF_BYTES: usize = 256 * 1024;
/// Latencies are recorded in µs up to this bound (longer ones are clamped).
const LATENCY_MAX_US: u64 = 60_000_000;
/// A say carries its due time (8 bytes) and its room (4 bytes).
pub const SAY_BYTES_MIN: usize = 12;
/// Most says taken from the publisher's queue into one `PUBLISH`: mudshard's
/// envelopes stop at 64 KiB.
const ENVELOPE_BYTES_MAX: usize = 64 * 1024;

/// What `--cross-host` is asked to do.
#[derive(Debug, Clone)]
pub struct CrossHostConfig {
    pub redis_url: String,
    pub rooms: usize,
    /// Talkers per room, on host a: each say is heard by the other ones.
    pub talkers: usize,
    /// Listeners per room, on host b: each say crosses to every one.
    pub listeners: usize,
    /// Says per second, from all talkers together.
    pub rate: u64,
    pub say_bytes: usize,
    pub warmup_s: f64,
    pub seconds: f64,
}

impl CrossHostConfig {
    pub fn cross_host_per_s(&self) -> u64 {
        self.rate * self.listeners as u64
    }
}

/// Deliveries of one kind: how many arrived and how long they took.
pub struct Deliveries {
    pub expected: u64,
    pub received: u64,
    pub latency_us: Histogram<u64>,
}

impl Deliveries {
    fn new(expected: u64) -> io::Result<Deliveries> {
        Ok(Deliveries {
            expected,
            received: 0,
            latency_us: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
                .map_err(|e| io::Error::other(e.to_string()))?,
        })
    }
}

/// What a run measured.
pub struct CrossHostOutcome {
    pub says: u64,
    pub measured_says: u64,
    pub send_lag_max_us: u64,
    pub cross_host: Deliveries,
    pub same_host: Deliveries,
    pub publishes: u64,
    pub published_says: u64,
    /// CPU seconds of each thread, by name.
    pub cpu_s: Vec<(&'static str, f64)>,
}

impl CrossHostOutcome {
    pub fn says_per_publish(&self) -> f64 {
        self.published_says as f64 / self.publishes.max(1) as f64
    }
}

/// Runs the path for `config.warmup_s + config.seconds`, then drains.
pub fn run(config: &CrossHostConfig) -> io::Result<CrossHostOutcome> {
    // Each pair's connecting end is the client's, its accepted end the
    // server's, which sends with Nagle off as servers do.
    let (talker_client, talker_server) = loopback_pairs(config.rooms * config.talkers)?;
    let (listener_client, listener_server) = loopback_pairs(config.rooms * config.listeners)?;
    for s in talker_server.iter().chain(&listener_server) {
        s.set_nodelay(true)?;
    }
    let fds = |v: &[std::net::TcpStream]| v.iter().map(|s| s.as_raw_fd()).collect::<Vec<_>>();
    let talker_server = fds(&talker_server);
    let listener_server = fds(&listener_server);
    // The client reads talkers (same-host deliveries) first, then listeners.
    let client_ends: Vec<RawFd> = fds(&talker_client)
        .into_iter()
        .chain(fds(&listener_client))
        .collect();
    let talker_client = fds(&talker_client);

    let publisher_con = connect(&config.redis_url)?;
    let bell = EventFd::new()?;
    let stop = AtomicBool::new(false);
    let expected_total = AtomicU64::new(u64::MAX);
    let start = Instant::now();
    let (to_publisher, publisher_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
    let (to_b, b_rx) = crossbeam_channel::unbounded::<Vec<u8>>();

    std::thread::scope(|scope| {
        // However this closure ends, every thread it started ends too.
        let _guard = StopOnDrop {
            stop: &stop,
            expected_total: &expected_total,
        };
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let subscriber = std::thread::Builder::new()
            .name("floor-sub-b".into())
            .spawn_scoped(scope, || subscriber(config, &to_b, &bell, &stop, ready_tx))?;
        // Nothing is sent before host b listens.
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("the subscriber never subscribed")),
        }
        let shard_b = std::thread::Builder::new()
            .name("floor-shard-b".into())
            .spawn_scoped(scope, || {
                shard_b(config, &listener_server, &b_rx, &bell, &stop)
            })?;
        let publisher = std::thread::Builder::new()
            .name("floor-pub-a".into())
            .spawn_scoped(scope, move || publisher(publisher_con, publisher_rx))?;
        let shard_a = std::thread::Builder::new()
            .name("floor-shard-a".into())
            .spawn_scoped(scope, || {
                shard_a(config, &talker_server, to_publisher, &stop)
            })?;
        let receiver = std::thread::Builder::new()
            .name("floor-client-rx".into())
            .spawn_scoped(scope, || {
                client_receive(config, &client_ends, start, &expected_total)
            })?;
        let sent = client_send(config, &talker_client, start);
        if let Ok(sent) = &sent {
            let per_say = (config.talkers - 1 + config.listeners) as u64;
            expected_total.store(sent.says * per_say, Ordering::Release);
        } else {
            // Nothing more is coming: the receiver stops at once.
            expected_total.store(0, Ordering::Release);
        }
        let received = join(receiver);
        stop.store(true, Ordering::Release);
        let shard_a_cpu = join(shard_a);
        let published = join(publisher);
        let subscriber_cpu = join(subscriber);
        let shard_b_cpu = join(shard_b);
        let sent = sent?;
        let (mut same_host, mut cross_host, receiver_cpu) = received?;
        same_host.expected = sent.measured * (config.talkers as u64 - 1);
        cross_host.expected = sent.measured * config.listeners as u64;
        let (publishes, published_says, publisher_cpu) = published?;
        Ok(CrossHostOutcome {
            says: sent.says,
            measured_says: sent.measured,
            send_lag_max_us: sent.lag_max_ns / 1000,
            cross_host,
            same_host,
            publishes,
            published_says,
            cpu_s: vec![
                ("client sender", sent.cpu_s),
                ("host a's shard", shard_a_cpu?),
                ("host a's publisher", publisher_cpu),
                ("host b's subscriber", subscriber_cpu?),
                ("host b's shard", shard_b_cpu?),
                ("client receiver", receiver_cpu),
            ],
        })
    })
}

/// Stops the threads of a run that ends early (an error), so that the
/// scope's implicit joins return.
struct StopOnDrop<'a> {
    stop: &'a AtomicBool,
    expected_total: &'a AtomicU64,
}

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // A receiver still waiting for a count gives up after its drain.
        let _ =
            self.expected_total
                .compare_exchange(u64::MAX, 0, Ordering::AcqRel, Ordering::Acquire);
    }
}

fn join<T>(handle: std::thread::ScopedJoinHandle<'_, io::Result<T>>) -> io::Result<T> {
    handle
        .join()
        .map_err(|_| io::Error::other("a floor thread panicked"))?
}

fn connect(url: &str) -> io::Result<redis::Connection> {
    let refused = |e: redis::RedisError| io::Error::other(format!("redis at {url}: {e}"));
    let client = redis::Client::open(url).map_err(refused)?;
    let con = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .map_err(refused)?;
    con.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(refused)?;
    Ok(con)
}

/// A nonblocking eventfd: host b's doorbell.
struct EventFd(RawFd);

impl EventFd {
    fn new() -> io::Result<EventFd> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(EventFd(fd))
    }

    fn ring(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: the fd is ours; the buffer is 8 valid bytes. A full counter
        // (EAGAIN) means rings are already waiting.
        unsafe { libc::write(self.0, one.as_ptr().cast(), one.len()) };
    }

    fn clear(&self) {
        let mut count = [0u8; 8];
        // SAFETY: the fd is ours; the buffer is 8 writable bytes.
        unsafe { libc::read(self.0, count.as_mut_ptr().cast(), count.len()) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}

/// Whole `size`-byte messages read from a connection, keeping the tail of a
/// message split across reads for the next read.
struct Framer {
    size: usize,
    tails: Vec<Vec<u8>>,
}

impl Framer {
    fn new(size: usize, connections: usize) -> Framer {
        Framer {
            size,
            tails: vec![Vec::new(); connections],
        }
    }

    /// Calls `each` with every whole message `got` completes on `conn`.
    fn feed(&mut self, conn: usize, got: &[u8], mut each: impl FnMut(&[u8])) {
        let tail = &mut self.tails[conn];
        let mut got = got;
        if !tail.is_empty() {
            let need = self.size - tail.len();
            let take = need.min(got.len());
            tail.extend_from_slice(&got[..take]);
            got = &got[take..];
            if tail.len() < self.size {
                return;
            }
            each(tail);
            tail.clear();
        }
        let mut chunks = got.chunks_exact(self.size);
        for message in &mut chunks {
            each(message);
        }
        tail.extend_from_slice(chunks.remainder());
    }
}

fn room_of(say: &[u8]) -> usize {
    u32::from_le_bytes([say[8], say[9], say[10], say[11]]) as usize
}

fn due_of(say: &[u8]) -> u64 {
    let mut due = [0u8; 8];
    due.copy_from_slice(&say[..8]);
    u64::from_le_bytes(due)
}

/// Host a's shard: each say to the room's other talkers, and to the
/// publisher. Ends at `stop`, which drops the publisher's channel.
fn shard_a(
    config: &CrossHostConfig,
    talkers: &[RawFd],
    to_publisher: Sender<Vec<u8>>,
    stop: &AtomicBool,
) -> io::Result<f64> {
    let cpu_start = thread_cpu_s();
    let epoll = Epoll::watching(talkers)?;
    let mut events = Epoll::events();
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let mut framer = Framer::new(config.say_bytes, talkers.len());
    let mut failed: io::Result<()> = Ok(());
    while !stop.load(Ordering::Acquire) {
        let n = epoll.wait(&mut events, TICK)?;
        for ev in &events[..n] {
            let conn = ev.u64 as usize;
            let got = recv(talkers[conn], &mut buf)?;
            let room = conn / config.talkers;
            framer.feed(conn, &buf[..got], |say| {
                let members = room * config.talkers..(room + 1) * config.talkers;
                for (other, &fd) in talkers[members.clone()].iter().enumerate() {
                    if members.start + other != conn && failed.is_ok() {
                        failed = send_all(fd, say);
                    }
                }
                let _ = to_publisher.send(say.to_vec());
            });
            std::mem::replace(&mut failed, Ok(()))?;
        }
    }
    Ok(thread_cpu_s() - cpu_start)
}

/// Host a's publisher: everything waiting, one `PUBLISH`, one round trip.
/// Returns (publishes, says published, CPU seconds).
fn publisher(mut con: redis::Connection, rx: Receiver<Vec<u8>>) -> io::Result<(u64, u64, f64)> {
    let cpu_start = thread_cpu_s();
    let (mut publishes, mut says) = (0u64, 0u64);
    let mut envelope = Vec::with_capacity(ENVELOPE_BYTES_MAX);
    loop {
        match rx.recv_timeout(TICK) {
            Ok(say) => envelope.extend_from_slice(&say),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        }
        says += 1;
        while envelope.len() < ENVELOPE_BYTES_MAX {
            let Ok(say) = rx.try_recv() else { break };
            envelope.extend_from_slice(&say);
            says += 1;
        }
        redis::cmd("PUBLISH")
            .arg(INBOX_CHANNEL)
            .arg(&envelope)
            .query::<i64>(&mut con)
            .map_err(|e| io::Error::other(format!("PUBLISH: {e}")))?;
        publishes += 1;
        envelope.clear();
    }
    Ok((publishes, says, thread_cpu_s() - cpu_start))
}

/// Host b's subscriber: each envelope to host b's shard, and a ring.
fn subscriber(
    config: &CrossHostConfig,
    to_b: &Sender<Vec<u8>>,
    bell: &EventFd,
    stop: &AtomicBool,
    ready: Sender<io::Result<()>>,
) -> io::Result<f64> {
    let cpu_start = thread_cpu_s();
    let mut con = match connect(&config.redis_url) {
        Ok(con) => con,
        Err(e) => {
            let why = e.to_string();
            let _ = ready.send(Err(e));
            return Err(io::Error::other(why));
        }
    };
    let mut pubsub = con.as_pubsub();
    let subscribed = pubsub
        .subscribe(INBOX_CHANNEL)
        .and_then(|()| pubsub.set_read_timeout(Some(TICK)))
        .map_err(|e| io::Error::other(format!("SUBSCRIBE: {e}")));
    if let Err(e) = subscribed {
        let why = e.to_string();
        let _ = ready.send(Err(e));
        return Err(io::Error::other(why));
    }
    let _ = ready.send(Ok(()));
    while !stop.load(Ordering::Acquire) {
        match pubsub.get_message() {
            Ok(msg) => {
                let _ = to_b.send(msg.get_payload_bytes().to_vec());
                bell.ring();
            }
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(io::Error::other(format!("subscription: {e}"))),
        }
    }
    Ok(thread_cpu_s() - cpu_start)
}

/// Host b's shard: each say of each envelope to the room's listeners.
fn shard_b(
    config: &CrossHostConfig,
    listeners: &[RawFd],
    rx: &Receiver<Vec<u8>>,
    bell: &EventFd,
    stop: &AtomicBool,
) -> io::Result<f64> {
    let cpu_start = thread_cpu_s();
    let epoll = Epoll::watching(&[bell.0])?;
    let mut events = Epoll::events();
    loop {
        let done = stop.load(Ordering::Acquire);
        if epoll.wait(&mut events, TICK)? > 0 {
            bell.clear();
        }
        while let Ok(envelope) = rx.try_recv() {
            for say in envelope.chunks_exact(config.say_bytes) {
                let room = room_of(say);
                for &fd in &listeners[room * config.listeners..(room + 1) * config.listeners] {
                    send_all(fd, say)?;
                }
            }
        }
        if done {
            break;
        }
    }
    Ok(thread_cpu_s() - cpu_start)
}

struct Sent {
    says: u64,
    measured: u64,
    lag_max_ns: u64,
    cpu_s: f64,
}

/// The talkers' client: say k is due at `start + k / rate`, to room
/// `k % rooms`, from that room's talkers in turn.
fn client_send(config: &CrossHostConfig, talkers: &[RawFd], start: Instant) -> io::Result<Sent> {
    let cpu_start = thread_cpu_s();
    let interval_ns = 1e9 / config.rate as f64;
    let warmup_ns = (config.warmup_s * 1e9) as u64;
    let end_ns = warmup_ns + (config.seconds * 1e9) as u64;
    let rooms = config.rooms as u64;
    let mut say = vec![b'x'; config.say_bytes];
    let (mut says, mut measured, mut lag_max_ns) = (0u64, 0u64, 0u64);
    loop {
        let due = (says as f64 * interval_ns) as u64;
        if due >= end_ns {
            break;
        }
        let now = start.elapsed().as_nanos() as u64;
        if now < due {
            std::thread::sleep(Duration::from_nanos(due - now));
            continue;
        }
        if due >= warmup_ns {
            lag_max_ns = lag_max_ns.max(now - due);
            measured += 1;
        }
        let room = says % rooms;
        let talker = (says / rooms) as usize % config.talkers;
        say[..8].copy_from_slice(&due.to_le_bytes());
        say[8..12].copy_from_slice(&(room as u32).to_le_bytes());
        send_all(talkers[room as usize * config.talkers + talker], &say)?;
        says += 1;
    }
    Ok(Sent {
        says,
        measured,
        lag_max_ns,
        cpu_s: thread_cpu_s() - cpu_start,
    })
}

/// Every delivery, timed from its say's due time; the first
/// `rooms × talkers` connections are the talkers' (same-host deliveries).
/// Ends when `expected_total` deliveries came, or [`DRAIN`] after the
/// sender set it. Returns (same-host, cross-host, CPU seconds).
fn client_receive(
    config: &CrossHostConfig,
    fds: &[RawFd],
    start: Instant,
    expected_total: &AtomicU64,
) -> io::Result<(Deliveries, Deliveries, f64)> {
    let cpu_start = thread_cpu_s();
    let warmup_ns = (config.warmup_s * 1e9) as u64;
    let end_ns = warmup_ns + (config.seconds * 1e9) as u64;
    let talker_conns = config.rooms * config.talkers;
    let epoll = Epoll::watching(fds)?;
    let mut events = Epoll::events();
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let mut framer = Framer::new(config.say_bytes, fds.len());
    let mut same = Deliveries::new(0)?;
    let mut cross = Deliveries::new(0)?;
    let mut total = 0u64;
    let mut drain_until: Option<Instant> = None;
    loop {
        let expected = expected_total.load(Ordering::Acquire);
        if expected != u64::MAX {
            let until = *drain_until.get_or_insert_with(|| Instant::now() + DRAIN);
            if total >= expected || Instant::now() >= until {
                break;
            }
        }
        let n = epoll.wait(&mut events, Duration::from_millis(10))?;
        let now = start.elapsed().as_nanos() as u64;
        for ev in &events[..n] {
            let conn = ev.u64 as usize;
            let got = recv(fds[conn], &mut buf)?;
            let kind = if conn < talker_conns {
                &mut same
            } else {
                &mut cross
            };
            framer.feed(conn, &buf[..got], |say| {
                total += 1;
                let due = due_of(say);
                if (warmup_ns..end_ns).contains(&due) {
                    kind.received += 1;
                    let us = (now.saturating_sub(due) / 1000).clamp(1, LATENCY_MAX_US);
                    kind.latency_us.saturating_record(us);
                }
            });
        }
    }
    Ok((same, cross, thread_cpu_s() - cpu_start))
}

/// Prints the human summary.
pub fn print(config: &CrossHostConfig, o: &CrossHostOutcome) {
    println!(
        "floor cross-host: {} rooms, {} talkers each on host a and {} listeners on host b; \
         {} says/s = {} cross-host deliveries/s requested; {}-byte says; redis {}",
        config.rooms,
        config.talkers,
        config.listeners,
        config.rate,
        config.cross_host_per_s(),
        config.say_bytes,
        config.redis_url
    );
    println!(
        "  measured {:.1} s after {:.1} s of warm-up: {} says, send lag at most {} µs; \
         {:.2} says per PUBLISH",
        config.seconds,
        config.warmup_s,
        o.measured_says,
        o.send_lag_max_us,
        o.says_per_publish()
    );
    for (name, d) in [("cross-host", &o.cross_host), ("same-host", &o.same_host)] {
        let h = &d.latency_us;
        println!(
            "  {name:<10} deliveries {:>9} of {:>9}   p50 {:>7.3} ms   p99 {:>7.3} ms   p99.9 {:>7.3} ms   max {:>8.3} ms",
            d.received,
            d.expected,
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.value_at_quantile(0.999) as f64 / 1000.0,
            h.max() as f64 / 1000.0,
        );
    }
    let says = o.says.max(1) as f64;
    let cpu: Vec<String> = o
        .cpu_s
        .iter()
        .map(|(name, s)| format!("{name} {:.2}", s * 1e6 / says))
        .collect();
    println!("  CPU per say (µs, warm-up included): {}", cpu.join(", "));
}

pub fn to_json(config: &CrossHostConfig, o: &CrossHostOutcome) -> serde_json::Value {
    let kind = |d: &Deliveries| {
        let h = &d.latency_us;
        serde_json::json!({
            "expected": d.expected,
            "received": d.received,
            "p50_us": h.value_at_quantile(0.5),
            "p99_us": h.value_at_quantile(0.99),
            "p999_us": h.value_at_quantile(0.999),
            "max_us": h.max(),
        })
    };
    let says = o.says.max(1) as f64;
    let cpu: serde_json::Map<String, serde_json::Value> = o
        .cpu_s
        .iter()
        .map(|(name, s)| ((*name).to_string(), serde_json::json!(s * 1e6 / says)))
        .collect();
    serde_json::json!({
        "mode": "cross-host",
        "rooms": config.rooms,
        "talkers": config.talkers,
        "listeners": config.listeners,
        "says_per_s": config.rate,
        "cross_host_deliveries_per_s": config.cross_host_per_s(),
        "say_bytes": config.say_bytes,
        "warmup_s": config.warmup_s,
        "seconds": config.seconds,
        "says": o.says,
        "measured_says": o.measured_says,
        "send_lag_max_us": o.send_lag_max_us,
        "says_per_publish": o.says_per_publish(),
        "cross_host": kind(&o.cross_host),
        "same_host": kind(&o.same_host),
        "cpu_us_per_say": cpu,
    })
}
