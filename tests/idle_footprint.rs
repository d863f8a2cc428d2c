//! What an idle session costs on the heap, by allocation size: the server
//! runs in this process (one shard, the generated grid, as in the `idle`
//! benchmark), every allocation of its threads is counted, and `SESSIONS`
//! guests are opened and placed with `goto` as `loadgen idle` does (the
//! first 10,000 alone in a room, then two to a room). The clients' own
//! allocations (this test's thread) are not counted.
//!
//! It prints the live heap per session in two states: right after the
//! `goto` replies (the reply and an `enter` event still held for a resume),
//! and after the history check's ping was answered (what an idle session
//! keeps for good). The README's breakdown of idle memory comes from it.
//! Slow (it waits for the 5-second history check), so not part of the
//! default run:
//!
//! ```sh
//! cargo test --release --test idle_footprint -- --ignored --nocapture
//! ```

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::net::TcpStream;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mimalloc::MiMalloc;
use mudshard::config::{Config, WorldSource};
use mudshard::server::Server;
use tungstenite::Message;

/// Requested sizes counted one by one up to here; larger ones share a bucket.
const SIZES_COUNTED: usize = 16 * 1024;

struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);
static BY_SIZE: [AtomicI64; SIZES_COUNTED + 1] = [const { AtomicI64::new(0) }; SIZES_COUNTED + 1];

thread_local! {
    /// Set on the clients' thread: its allocations are not the server's.
    static NOT_COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count(size: usize, sign: i64) {
    if NOT_COUNTED.with(|c| c.get()) {
        return;
    }
    LIVE_BYTES.fetch_add(sign * size as i64, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_add(sign, Ordering::Relaxed);
    BY_SIZE[size.min(SIZES_COUNTED)].fetch_add(sign, Ordering::Relaxed);
}

// SAFETY: every call is passed on to mimalloc unchanged; counting touches
// only atomics and a `const` thread-local, and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        MiMalloc.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        MiMalloc.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        MiMalloc.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout.size(), -1);
        count(new_size, 1);
        MiMalloc.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sessions opened; more than the grid's 10,000 rooms, so some share one.
const SESSIONS: usize = 15_000;
const GRID: u32 = 100;

struct Snapshot {
    bytes: i64,
    blocks: i64,
    by_size: Vec<i64>,
}

fn snapshot() -> Snapshot {
    Snapshot {
        bytes: LIVE_BYTES.load(Ordering::Relaxed),
        blocks: LIVE_BLOCKS.load(Ordering::Relaxed),
        by_size: BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
    }
}

/// mimalloc's block size for a request (its size classes: 8-byte steps to
/// 64 bytes, then four steps per power of two).
fn block_size(size: usize) -> usize {
    let wsize = size.div_ceil(8).max(1);
    if wsize <= 8 {
        return wsize * 8;
    }
    // As mimalloc's `_mi_bin`: the top bit of wsize - 1 and the two below it.
    let w = wsize - 1;
    let b = usize::BITS - 1 - w.leading_zeros();
    ((w >> (b - 2)) + 1) << (b - 2) << 3
}

fn report(label: &str, before: &Snapshot, after: &Snapshot, n: usize) {
    let bytes = (after.bytes - before.bytes) as f64 / n as f64;
    let blocks = (after.blocks - before.blocks) as f64 / n as f64;
    let mut rows: Vec<(usize, i64)> = (0..=SIZES_COUNTED)
        .map(|s| (s, after.by_size[s] - before.by_size[s]))
        .filter(|&(_, d)| d.unsigned_abs() as usize >= n / 20)
        .collect();
    rows.sort_by_key(|&(s, d)| std::cmp::Reverse(d * block_size(s.max(1)) as i64));
    let mut in_blocks = 0.0;
    println!("\n{label}: {bytes:.0} B requested per session in {blocks:.2} blocks");
    println!("  size  block  blocks/session  block bytes/session");
    for (size, d) in rows {
        let per = d as f64 / n as f64;
        let b = per * block_size(size.max(1)) as f64;
        in_blocks += b;
        println!(
            "  {size:>5}  {:>5}  {per:>14.3}  {b:>19.0}",
            block_size(size.max(1))
        );
    }
    let listed: i64 = (0..=SIZES_COUNTED)
        .map(|s| after.by_size[s] - before.by_size[s])
        .zip(0..)
        .filter(|&(d, _)| d.unsigned_abs() as usize >= n / 20)
        .map(|(d, s)| d * s as i64)
        .sum();
    println!("  (rows listed: {in_blocks:.0} B per session in mimalloc blocks)");
    println!(
        "  not listed (tables grown once for all sessions: maps, the slab; rare sizes): {:.0} B requested per session",
        bytes - listed as f64 / n as f64
    );
}

fn config() -> Config {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let mut config = Config::from_file(&std::path::Path::new(manifest).join("shards/default.toml"))
        .expect("default shard map");
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.shards = 1;
    config.world = WorldSource::parse_generated(&format!("grid:{GRID}x{GRID}")).expect("grid");
    config.game.ambient_interval_ms = 0;
    config.limits.connections_per_ip_max = 65_536;
    // `MUDSHARD_PARK_READS_AFTER_MS=0`: quiet sessions keep their poll on the
    // ring, as the server's switch of that name does, to count the difference.
    if let Some(ms) = std::env::var("MUDSHARD_PARK_READS_AFTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.runtime.park_reads_after_ms = ms;
    }
    config.normalize().expect("config");
    config
}

type Client = tungstenite::WebSocket<TcpStream>;

fn read_text(ws: &mut Client) -> String {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return t.to_string(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// Opens guest `i` and places it in grid cell `cell`.
fn open(addr: std::net::SocketAddr, i: usize, cell: usize) -> Client {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).expect("handshake");
    let guest = format!(r#"{{"type":"guest","name":"fp_{i}"}}"#);
    ws.send(Message::text(guest)).expect("guest");
    assert!(read_text(&mut ws).contains("\"welcome\""));
    let cell = cell as u32;
    let goto = format!(
        r#"{{"type":"cmd","id":"place","line":"goto grid:{}_{}"}}"#,
        cell % GRID,
        cell / GRID
    );
    ws.send(Message::text(goto)).expect("goto");
    while !read_text(&mut ws).contains("\"place\"") {}
    ws
}

/// The tests of this file count every allocation of the process: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Heap a placed idle guest may hold (requested bytes, before its reply is
/// acknowledged), measured over `PINNED_SESSIONS` sessions: 2,284 in a
/// debug build; 2,133 over 9,900 sessions in a release build (README, "Idle
/// memory"), where b17ff7f, before the connection's future, glommio's
/// sources, the room views and the session slab were made smaller, held
/// 3,536.
const HEAP_PER_SESSION_MAX: i64 = 2_600;
/// Two whole chunks of the session slab (256 slots each), after two others.
const PINNED_SESSIONS: usize = 512;

/// Starts a server with `config`'s runtime switches on a fresh store and
/// places `PINNED_SESSIONS` guests, after as many to warm it up (the first
/// sessions grow the shard's tables and buffers once; rooms of their own,
/// away from the measured ones). Returns the server, every client (to hold
/// until the count is read) and the count from before the measured ones.
fn pinned_sessions(config: Config) -> (Server, Vec<Client>, Snapshot) {
    let server = Server::start(config).expect("server");
    let mut clients: Vec<Client> = (0..PINNED_SESSIONS)
        .map(|i| open(server.addr, i, 5_000 + i))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let start = snapshot();
    let cells = PINNED_SESSIONS * 2 / 3;
    clients.extend((0..PINNED_SESSIONS).map(|i| open(server.addr, PINNED_SESSIONS + i, i % cells)));
    (server, clients, start)
}

#[test]
fn an_idle_session_holds_at_most_its_bound_of_heap() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    NOT_COUNTED.with(|c| c.set(true));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config();
    config.data_dir = dir.path().to_path_buf();
    let (server, clients, start) = pinned_sessions(config);
    std::thread::sleep(Duration::from_millis(100));
    let placed = snapshot();
    report("placed (pinned bound)", &start, &placed, PINNED_SESSIONS);
    let per_session = (placed.bytes - start.bytes) / PINNED_SESSIONS as i64;
    drop(clients);
    assert!(server.shutdown(), "clean shutdown");
    assert!(
        per_session <= HEAP_PER_SESSION_MAX,
        "an idle session holds {per_session} B of heap, over {HEAP_PER_SESSION_MAX}"
    );
}

/// The size glommio requests for a `Source`, the poll request a stream
/// keeps armed for reading (304 bytes since glommio patch 5,
/// `vendor/glommio/MUDSHARD-PATCH.md`; nothing else of an idle session's
/// has that size, as `heap_per_idle_session_by_allocation_size` lists).
const READ_POLL_SOURCE_BYTES: usize = 304;

/// Sources held per session (allocations of `READ_POLL_SOURCE_BYTES`, net)
/// by `PINNED_SESSIONS` placed guests that then say nothing for `quiet`, on
/// a server whose quiet sessions park their reads after `park_ms` (0:
/// never); counted from before they were opened.
fn sources_per_quiet_session(park_ms: u64, quiet: Duration) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config();
    config.data_dir = dir.path().to_path_buf();
    config.runtime.park_reads_after_ms = park_ms;
    let (server, clients, start) = pinned_sessions(config);
    std::thread::sleep(quiet);
    let quiet_now = snapshot();
    report(
        &format!("quiet for {quiet:?}, park_reads_after_ms = {park_ms}"),
        &start,
        &quiet_now,
        PINNED_SESSIONS,
    );
    drop(clients);
    assert!(server.shutdown(), "clean shutdown");
    let sources = quiet_now.by_size[READ_POLL_SOURCE_BYTES] - start.by_size[READ_POLL_SOURCE_BYTES];
    sources as f64 / PINNED_SESSIONS as f64
}

/// A quiet session's reads park (`[runtime] park_reads_after_ms`): it gives
/// back the poll request it held on the ring (README, "Parked reads"). Two
/// servers, the same sessions and the same 2.5 s of quiet (two sweeps, each
/// of which could park them): one that never parks, where each session
/// opened holds one source, and one that parks after 100 ms, where the
/// sessions opened hold none and the warm-up sessions, opened before the
/// count began, have given theirs back too (−1 per session measured).
#[test]
fn a_quiet_session_whose_reads_park_holds_no_read_poll() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    NOT_COUNTED.with(|c| c.set(true));
    let quiet = Duration::from_millis(2_500);
    let not_parked = sources_per_quiet_session(0, quiet);
    assert!(
        not_parked > 0.9,
        "never parked: {not_parked:.3} sources per session (one each expected): \
         has glommio's source size changed from {READ_POLL_SOURCE_BYTES}?"
    );
    let parked = sources_per_quiet_session(100, quiet);
    assert!(
        parked < -0.9,
        "parked after 100 ms: {parked:.3} sources per session, where every quiet session's should be gone"
    );
}

#[test]
#[ignore = "slow (15,000 sessions and the 5 s history check); run with --ignored --nocapture"]
fn heap_per_idle_session_by_allocation_size() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    NOT_COUNTED.with(|c| c.set(true));
    let mut files = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut files);
        files.rlim_cur = files.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &files);
    }
    // Each session is two descriptors in this process: the server's and the client's.
    let n = SESSIONS.min((files.rlim_cur as usize).saturating_sub(200) / 2);
    println!("{n} sessions");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config();
    config.data_dir = dir.path().to_path_buf();
    let server = Server::start(config).expect("server");
    std::thread::sleep(Duration::from_millis(300));
    let start = snapshot();
    // Rooms in the proportion of the benchmark (15,000 players in 10,000
    // rooms) when the file limit allows fewer sessions.
    let cells = (n * (GRID * GRID) as usize / SESSIONS).min((GRID * GRID) as usize);
    // As loadgen places them: guest i in cell i, wrapping.
    let mut clients: Vec<Client> = (0..n).map(|i| open(server.addr, i, i % cells)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let placed = snapshot();
    report("after goto (reply held)", &start, &placed, n);
    // The sweep asks a session holding frames (by a ping) how far it has
    // read; tungstenite answers a ping when it reads it. Every client reads
    // all it has been sent, again and again, for longer than the sweep
    // takes to ask (5 s at the latest).
    for ws in &clients {
        ws.get_ref().set_nonblocking(true).expect("nonblocking");
    }
    let until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < until {
        for ws in &mut clients {
            while ws.read().is_ok() {}
            let _ = ws.flush();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let acked = snapshot();
    report("after the history check (idle for good)", &start, &acked, n);
    drop(clients);
    assert!(server.shutdown(), "clean shutdown");
}
