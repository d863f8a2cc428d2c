//! `floor`: what this machine's kernel charges for moving small messages
//! over loopback TCP, with no server, no WebSocket and no runtime in the way.
//!
//! One sender thread writes `--bytes`-byte messages, `--batch` per `send`,
//! round-robin over `--pairs` connections at `--rate` messages per second; one
//! receiver thread reads them with epoll. Both threads' CPU time is measured
//! with `CLOCK_THREAD_CPUTIME_ID`. The result is a floor under any server's
//! cost per delivered event on this machine: a server that writes each event
//! with its own `send` cannot spend less than the sender's figure per event,
//! and its clients not less than the receiver's.
//!
//! `--hiccups` measures something else: the time the machine takes away
//! from threads that never sleep (see `hiccups.rs`). `--rtt` measures the
//! lowest request→reply latency the machine allows for loadgen's `rtt`
//! shape, against one or more echo threads (see `rtt.rs`).
//!
//! `--cross-host` measures the lowest latency the machine allows for the
//! cross-host path of loadgen's `cluster` scenario: the same threads and
//! wake-ups as two bridged hosts and a real `redis-server`, and nothing else
//! (see `cross_host.rs`).
//!
//! `--chat-relay` is a server, not a measurement: the cheapest one
//! `loadgen chat` can run against, one `send` per delivery and nothing
//! else (see `relay.rs`); the suite climbs chat's ladder against it.
//!
//! Loopback only; bounded by `--seconds` (the relay by `--serve-seconds`);
//! stops by itself.

mod cores;
mod cross_host;
mod crossing;
mod glommio_echo;
mod hiccups;
mod net;
mod relay;
mod rtt;

use clap::Parser;
use cores::{pin, CoreList};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "floor",
    about = "Measures the kernel's cost of one small loopback TCP send and its receipt on this machine"
)]
struct Args {
    /// Connection pairs the messages are spread over (round-robin)
    #[arg(long, default_value_t = 1000)]
    pairs: usize,
    /// Bytes per message (a mudshard `say` event frame is about 90)
    #[arg(long, default_value_t = 90)]
    bytes: usize,
    /// Messages written by one `send`
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Messages per second, paced in 1 ms steps; 0 = as fast as the sender can.
    /// With --rtt: requests per second, each due at its own time
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// Measured seconds
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// With --rtt: seconds run before the measured ones
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Pin the sender thread (with --rtt: the client) to this CPU
    #[arg(long)]
    sender_core: Option<usize>,
    /// Pin the receiver thread to this CPU. With --rtt: the echo threads, to
    /// a comma-separated list of CPUs (thread i to the i-th, round the list)
    #[arg(long, value_name = "CPU[,CPU…]", value_parser = CoreList::parse)]
    receiver_core: Option<CoreList>,
    /// With --rtt: echo threads, each with its own epoll set; the pairs are
    /// dealt to them round-robin, as SO_REUSEPORT shards share connections
    #[arg(long, default_value_t = 1, requires = "rtt")]
    echo_threads: usize,
    /// With --rtt: what runs the echo threads: `epoll` loops, or `glommio`
    /// executors set up as mudshard's shards are, a task per connection
    #[arg(long, value_enum, default_value_t = EchoRuntime::Epoll, requires = "rtt")]
    echo_runtime: EchoRuntime,
    /// With --rtt and several echo threads: a request read on a pair another
    /// thread owns (pair k is read by thread k % N and owned by (k / N) % N)
    /// crosses to its owner and back before it is answered, waking the other
    /// thread if it sleeps, as a command crosses between mudshard's shards
    #[arg(long, requires = "rtt", conflicts_with = "spin")]
    cross: bool,
    /// With --rtt: the CPU each request costs the echo thread that owns it,
    /// µs, spent in a busy loop: a server's own work per command, so that
    /// the echo weighs what a server does and sleeps as often
    #[arg(long, default_value_t = 0.0, value_name = "US", requires = "rtt")]
    work_us: f64,
    /// One-way: the CPU each message received costs the receiver, µs, spent
    /// in a busy loop: a client's own work per message (loadgen parses a
    /// frame, its JSON and records a latency), so that the sender shares
    /// its cores with receivers as busy as a server's clients
    #[arg(long, default_value_t = 0.0, value_name = "US", conflicts_with_all = ["rtt", "hiccups", "cross_host"])]
    receiver_work_us: f64,
    /// Instead of one-way messages: paced requests answered by an echo
    /// thread with one `--bytes`-byte reply each, and their latency
    #[arg(long, conflicts_with = "hiccups")]
    rtt: bool,
    /// With --rtt: both threads poll without sleeping (give each its own
    /// CPU): the latency left is what the machine itself adds
    #[arg(long, requires = "rtt")]
    spin: bool,
    /// With --rtt: one client wake-up also sends the requests due in the
    /// next N µs, as `loadgen --send-ahead-us` does; an early request is
    /// timed from when it went
    #[arg(long, default_value_t = 0, value_name = "US", requires = "rtt", value_parser = clap::value_parser!(u64).range(0..=10_000))]
    send_ahead_us: u64,
    /// Instead of one-way messages: the cross-host path of loadgen's
    /// `cluster` scenario, through a real `redis-server` at `--redis`, with
    /// nothing else in the way. `--rate` is says per second from host a's
    /// talkers (the cluster ladder's 10,000 cross-host deliveries/s is
    /// `--rate 2000` with 5 listeners), `--bytes` a say's size
    #[arg(long, conflicts_with_all = ["rtt", "hiccups"], requires = "redis")]
    cross_host: bool,
    /// With --cross-host: the Redis both hosts use
    #[arg(long, value_name = "URL", requires = "cross_host")]
    redis: Option<String>,
    /// With --cross-host: rooms, each with talkers on host a and listeners on
    /// host b
    #[arg(long, default_value_t = 100, requires = "cross_host")]
    rooms: usize,
    /// With --cross-host: talkers per room (host a); each say is also
    /// delivered to the room's other talkers
    #[arg(long, default_value_t = 5, requires = "cross_host")]
    talkers: usize,
    /// With --cross-host: listeners per room (host b); each say crosses to
    /// every one
    #[arg(long, default_value_t = 5, requires = "cross_host")]
    listeners: usize,
    /// Instead of moving messages: spin one pinned thread per CPU for
    /// `--seconds` and report the time the machine took away from them
    #[arg(long)]
    hiccups: bool,
    /// Instead of measuring: serve `loadgen chat` as the cheapest server
    /// can (guest login, `goto grid:X_Y`, `say`; one `send` per delivery,
    /// no world), on `--listen`, until SIGTERM or `--serve-seconds`
    #[arg(long, conflicts_with_all = ["rtt", "hiccups", "cross_host"])]
    chat_relay: bool,
    /// With --chat-relay: the address to listen on
    #[arg(long, default_value = "127.0.0.1:4000", requires = "chat_relay")]
    listen: std::net::SocketAddr,
    /// With --chat-relay: threads, each reading its connections with epoll
    /// and writing to any connection's socket
    #[arg(long, default_value_t = 2, requires = "chat_relay")]
    relay_threads: usize,
    /// With --chat-relay: stop after this many seconds
    #[arg(long, default_value_t = 3600.0, requires = "chat_relay")]
    serve_seconds: f64,
    /// Write the result as JSON to this file as well
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EchoRuntime {
    Epoll,
    Glommio,
}

/// Connection pairs above this would come near the 20,000 open files a
/// process may hold here.
const PAIRS_MAX: usize = 8_000;
/// A request's work is a server's command, not a batch job.
const WORK_US_MAX: f64 = 10_000.0;
/// More echo threads than this would measure the scheduler, not the kernel's
/// cost per request.
const ECHO_THREADS_MAX: usize = 256;
const MESSAGE_BYTES_MAX: usize = 64 * 1024;
/// `--cross-host` says per second above this would measure Redis's limit,
/// not a floor.
const CROSS_HOST_SAYS_MAX: u64 = 100_000;
const SECONDS_MAX: f64 = 600.0;
/// The relay serves a whole ladder step at most; a day is far past any.
const SERVE_SECONDS_MAX: f64 = 86_400.0;
const RELAY_THREADS_MAX: usize = 256;
const READ_BUF_BYTES: usize = 256 * 1024;
const PACE_STEP: Duration = Duration::from_millis(1);

fn main() {
    let args = Args::parse();
    if let Err(e) = check(&args) {
        eprintln!("floor: {e}");
        std::process::exit(2);
    }
    if args.chat_relay {
        let config = relay::RelayConfig {
            listen: args.listen,
            threads: args.relay_threads,
            serve_seconds: args.serve_seconds,
        };
        if let Err(e) = relay::run(&config) {
            fail(e);
        }
        return;
    }
    if args.hiccups {
        let all = hiccups::spin_all(args.seconds);
        report(
            &args,
            all,
            |all| hiccups::print(all),
            |all| hiccups::to_json(all),
        );
        return;
    }
    if args.cross_host {
        let config = cross_host::CrossHostConfig {
            redis_url: args.redis.clone().unwrap_or_default(),
            rooms: args.rooms,
            talkers: args.talkers,
            listeners: args.listeners,
            rate: args.rate,
            say_bytes: args.bytes,
            warmup_s: args.warmup,
            seconds: args.seconds,
        };
        report(
            &args,
            cross_host::run(&config),
            |o| cross_host::print(&config, o),
            |o| cross_host::to_json(&config, o),
        );
        return;
    }
    if args.rtt {
        let config = rtt::RttConfig {
            pairs: args.pairs,
            reply_bytes: args.bytes,
            rate: args.rate,
            warmup_s: args.warmup,
            seconds: args.seconds,
            client_core: args.sender_core,
            echo_threads: args.echo_threads,
            echo_cores: args.receiver_core.clone(),
            spin: args.spin,
            send_ahead_us: args.send_ahead_us,
            glommio: args.echo_runtime == EchoRuntime::Glommio,
            cross: args.cross,
            work_us: args.work_us,
        };
        report(
            &args,
            rtt::run(&config),
            |o| rtt::print(&config, o),
            |o| rtt::to_json(&config, o),
        );
        return;
    }
    report(
        &args,
        run(&args),
        |o| print_result(&args, o),
        |o| to_json(&args, o),
    );
}

/// Prints a mode's outcome and writes its `--json`, or exits 1 saying why
/// the mode failed.
fn report<O, E: std::fmt::Display>(
    args: &Args,
    outcome: Result<O, E>,
    print: impl FnOnce(&O),
    json: impl FnOnce(&O) -> serde_json::Value,
) {
    match outcome {
        Ok(o) => {
            print(&o);
            write_json(args, || json(&o));
        }
        Err(e) => fail(e),
    }
}

/// Writes `--json`, when asked for, or exits 1 saying why it could not.
fn write_json(args: &Args, json: impl FnOnce() -> serde_json::Value) {
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, format!("{:#}\n", json())) {
            fail(format!("cannot write {}: {e}", path.display()));
        }
    }
}

fn fail(why: impl std::fmt::Display) -> ! {
    eprintln!("floor: {why}");
    std::process::exit(1);
}

fn check(args: &Args) -> Result<(), String> {
    if args.pairs == 0 || args.pairs > PAIRS_MAX {
        return Err(format!("--pairs must be 1..={PAIRS_MAX}"));
    }
    if args.bytes == 0 || args.bytes * args.batch.max(1) > MESSAGE_BYTES_MAX {
        return Err(format!("--bytes × --batch must be 1..={MESSAGE_BYTES_MAX}"));
    }
    if args.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    if !(args.seconds > 0.0 && args.seconds <= SECONDS_MAX) {
        return Err(format!("--seconds must be in (0, {SECONDS_MAX}]"));
    }
    if !(args.warmup >= 0.0 && args.warmup <= SECONDS_MAX) {
        return Err(format!("--warmup must be in [0, {SECONDS_MAX}]"));
    }
    if args.relay_threads == 0 || args.relay_threads > RELAY_THREADS_MAX {
        return Err(format!("--relay-threads must be 1..={RELAY_THREADS_MAX}"));
    }
    if !(args.serve_seconds > 0.0 && args.serve_seconds <= SERVE_SECONDS_MAX) {
        return Err(format!(
            "--serve-seconds must be in (0, {SERVE_SECONDS_MAX}]"
        ));
    }
    if args.rtt && args.rate == 0 {
        return Err("--rtt needs a --rate above 0".into());
    }
    if args.cross && args.echo_runtime == EchoRuntime::Glommio {
        return Err("--cross runs the epoll echo threads, not --echo-runtime glommio".into());
    }
    if !(args.work_us >= 0.0 && args.work_us <= WORK_US_MAX) {
        return Err(format!("--work-us must be in [0, {WORK_US_MAX}]"));
    }
    if !(args.receiver_work_us >= 0.0 && args.receiver_work_us <= WORK_US_MAX) {
        return Err(format!("--receiver-work-us must be in [0, {WORK_US_MAX}]"));
    }
    if args.cross_host {
        if args.rate == 0 || args.rate > CROSS_HOST_SAYS_MAX {
            return Err(format!(
                "--cross-host needs a --rate (says/s) in 1..={CROSS_HOST_SAYS_MAX}"
            ));
        }
        if args.rooms == 0 || args.talkers == 0 || args.listeners == 0 {
            return Err("--rooms, --talkers and --listeners must each be at least 1".into());
        }
        let pairs = args
            .rooms
            .saturating_mul(args.talkers.saturating_add(args.listeners));
        if pairs > PAIRS_MAX {
            return Err(format!(
                "--rooms × (--talkers + --listeners) is {pairs} connections; at most {PAIRS_MAX}"
            ));
        }
        if args.bytes < cross_host::SAY_BYTES_MIN {
            return Err(format!(
                "--bytes must be at least {} with --cross-host (a say carries its due time and room)",
                cross_host::SAY_BYTES_MIN
            ));
        }
    }
    if args.echo_threads == 0 || args.echo_threads > ECHO_THREADS_MAX {
        return Err(format!("--echo-threads must be 1..={ECHO_THREADS_MAX}"));
    }
    if args.echo_threads > args.pairs {
        return Err(format!(
            "--echo-threads {} is more than --pairs {}: every echo thread needs a connection",
            args.echo_threads, args.pairs
        ));
    }
    let receiver_cores = args
        .receiver_core
        .as_ref()
        .map_or(0, |c| c.as_slice().len());
    if !args.rtt && receiver_cores > 1 {
        return Err("--receiver-core takes one CPU without --rtt (one receiver thread)".into());
    }
    Ok(())
}

struct Outcome {
    elapsed_s: f64,
    sends: u64,
    would_block: u64,
    sender_cpu_s: f64,
    received_bytes: u64,
    reads: u64,
    receiver_cpu_s: f64,
}

impl Outcome {
    fn messages_sent(&self, args: &Args) -> u64 {
        self.sends * args.batch as u64
    }
    fn messages_received(&self, args: &Args) -> u64 {
        self.received_bytes / args.bytes as u64
    }
}

fn run(args: &Args) -> io::Result<Outcome> {
    // The accepted side sends, each message at once.
    let (receivers, senders) = net::loopback_pairs(args.pairs)?;
    for s in senders.iter() {
        s.set_nodelay(true)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sent_bytes = Arc::new(AtomicU64::new(0));

    let receiver_fds: Vec<RawFd> = receivers.iter().map(|s| s.as_raw_fd()).collect();
    let rx_stop = stop.clone();
    let rx_sent = sent_bytes.clone();
    let rx_core = args.receiver_core.as_ref().map(|c| c.for_thread(0));
    let rx_work = Work {
        us_per_message: args.receiver_work_us,
        message_bytes: args.bytes as u64,
    };
    let receiver =
        std::thread::spawn(move || receive(&receiver_fds, rx_core, rx_work, &rx_stop, &rx_sent));

    let sender_fds: Vec<RawFd> = senders.iter().map(|s| s.as_raw_fd()).collect();
    let sent = send(args, &sender_fds)?;
    sent_bytes.store(sent.bytes, Ordering::Release);
    stop.store(true, Ordering::Release);
    let received = receiver
        .join()
        .map_err(|_| io::Error::other("the receiver thread panicked"))??;
    drop(senders);
    drop(receivers);
    Ok(Outcome {
        elapsed_s: sent.elapsed_s,
        sends: sent.sends,
        would_block: sent.would_block,
        sender_cpu_s: sent.cpu_s,
        received_bytes: received.bytes,
        reads: received.reads,
        receiver_cpu_s: received.cpu_s,
    })
}

struct Sent {
    elapsed_s: f64,
    sends: u64,
    would_block: u64,
    bytes: u64,
    cpu_s: f64,
}

fn send(args: &Args, fds: &[RawFd]) -> io::Result<Sent> {
    if let Some(core) = args.sender_core {
        pin(core)?;
    }
    let message = vec![b'x'; args.bytes * args.batch];
    let window = Duration::from_secs_f64(args.seconds);
    let cpu_start = thread_cpu_s();
    let start = Instant::now();
    let (mut sends, mut would_block, mut bytes, mut next) = (0u64, 0u64, 0u64, 0usize);
    // Partly written batches are finished before the connection is used
    // again, so the receiver sees whole messages.
    let mut partial: Vec<usize> = vec![0; fds.len()];
    loop {
        let elapsed = start.elapsed();
        if elapsed >= window {
            break;
        }
        let due = if args.rate == 0 {
            u64::MAX
        } else {
            (elapsed.as_secs_f64() * args.rate as f64) as u64 / args.batch as u64
        };
        let mut attempts = 0;
        while sends < due && attempts < fds.len() {
            let i = next;
            next = (next + 1) % fds.len();
            let from = partial[i];
            let buf = &message[from..];
            let n = net::sys_send(fds[i], buf);
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::WouldBlock {
                    would_block += 1;
                    attempts += 1;
                    continue;
                }
                return Err(err);
            }
            bytes += n as u64;
            let written = from + n as usize;
            if written == message.len() {
                partial[i] = 0;
                sends += 1;
                attempts = 0;
            } else {
                partial[i] = written;
            }
            if args.rate == 0 && start.elapsed() >= window {
                break;
            }
        }
        if args.rate != 0 {
            std::thread::sleep(PACE_STEP);
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    let cpu_s = thread_cpu_s() - cpu_start;
    Ok(Sent {
        elapsed_s,
        sends,
        would_block,
        bytes,
        cpu_s,
    })
}

struct Received {
    bytes: u64,
    reads: u64,
    cpu_s: f64,
}

/// The receiver's own work per message (`--receiver-work-us`).
#[derive(Clone, Copy)]
struct Work {
    us_per_message: f64,
    message_bytes: u64,
}

impl Work {
    /// Spends the work of the messages that end in this read: a message
    /// split over two reads costs once, in the read that completes it.
    /// Returns how many messages it worked on.
    fn after_read(&self, bytes_before: u64, bytes_after: u64) -> u64 {
        let done = bytes_after / self.message_bytes - bytes_before / self.message_bytes;
        rtt::work(self.us_per_message * done as f64);
        done
    }
}

fn receive(
    fds: &[RawFd],
    core: Option<usize>,
    work: Work,
    stop: &AtomicBool,
    sent_bytes: &AtomicU64,
) -> io::Result<Received> {
    if let Some(core) = core {
        pin(core)?;
    }
    let epoll = net::Epoll::watching(fds)?;
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let mut events = net::Epoll::events();
    let (mut bytes, mut reads) = (0u64, 0u64);
    let cpu_start = thread_cpu_s();
    loop {
        if stop.load(Ordering::Acquire) && bytes >= sent_bytes.load(Ordering::Acquire) {
            break;
        }
        let n = epoll.wait(&mut events, Duration::from_millis(100))?;
        for ev in &events[..n] {
            let fd = fds[ev.u64 as usize];
            let r = net::sys_recv(fd, &mut buf);
            if r > 0 {
                if work.us_per_message > 0.0 {
                    work.after_read(bytes, bytes + r as u64);
                }
                bytes += r as u64;
                reads += 1;
            } else if r < 0 {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::WouldBlock {
                    return Err(err);
                }
            }
        }
    }
    let cpu_s = thread_cpu_s() - cpu_start;
    Ok(Received {
        bytes,
        reads,
        cpu_s,
    })
}

pub(crate) fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// The chat target of DESIGN.md §9: 5,000 says/s to rooms of 100.
const CHAT_TARGET_DELIVERIES_PER_S: f64 = 495_000.0;

struct Figures {
    messages_per_s: f64,
    sender_us_per_send: f64,
    sender_us_per_message: f64,
    receiver_us_per_message: f64,
    messages_per_read: f64,
    cores_for_chat_target: f64,
}

fn figures(args: &Args, o: &Outcome) -> Figures {
    let sent = o.messages_sent(args).max(1) as f64;
    let received = o.messages_received(args).max(1) as f64;
    let sender_us_per_message = o.sender_cpu_s * 1e6 / sent;
    let receiver_us_per_message = o.receiver_cpu_s * 1e6 / received;
    Figures {
        messages_per_s: o.messages_received(args) as f64 / o.elapsed_s,
        sender_us_per_send: o.sender_cpu_s * 1e6 / o.sends.max(1) as f64,
        sender_us_per_message,
        receiver_us_per_message,
        messages_per_read: received / o.reads.max(1) as f64,
        cores_for_chat_target: CHAT_TARGET_DELIVERIES_PER_S
            * (sender_us_per_message + receiver_us_per_message)
            / 1e6,
    }
}

fn print_result(args: &Args, o: &Outcome) {
    let f = figures(args, o);
    let rate = if args.rate == 0 {
        "as fast as possible".to_string()
    } else {
        format!("{} messages/s requested", args.rate)
    };
    println!(
        "floor: {} pairs, {}-byte messages, {} per send, {rate}, {:.1} s",
        args.pairs, args.bytes, args.batch, o.elapsed_s
    );
    println!("  moved              {:>12.0} messages/s", f.messages_per_s);
    println!(
        "  sender             {:>12.2} µs CPU per send ({:.2} per message; {} would-block)",
        f.sender_us_per_send, f.sender_us_per_message, o.would_block
    );
    println!(
        "  receiver           {:>12.2} µs CPU per message ({:.1} messages per read)",
        f.receiver_us_per_message, f.messages_per_read
    );
    println!(
        "  495,000 messages/s at these costs needs {:.2} cores (sender + receiver)",
        f.cores_for_chat_target
    );
    if o.messages_received(args) < o.messages_sent(args) {
        println!(
            "  warning: {} messages sent, {} received",
            o.messages_sent(args),
            o.messages_received(args)
        );
    }
}

fn to_json(args: &Args, o: &Outcome) -> serde_json::Value {
    let f = figures(args, o);
    serde_json::json!({
        "config": {
            "pairs": args.pairs,
            "bytes": args.bytes,
            "batch": args.batch,
            "rate": args.rate,
            "seconds": args.seconds,
            "sender_core": args.sender_core,
            "receiver_core": args.receiver_core.as_ref().map(|c| c.for_thread(0)),
            "receiver_work_us": args.receiver_work_us,
        },
        "elapsed_s": o.elapsed_s,
        "sends": o.sends,
        "would_block": o.would_block,
        "messages_sent": o.messages_sent(args),
        "messages_received": o.messages_received(args),
        "reads": o.reads,
        "sender_cpu_s": o.sender_cpu_s,
        "receiver_cpu_s": o.receiver_cpu_s,
        "messages_per_s": f.messages_per_s,
        "sender_us_per_send": f.sender_us_per_send,
        "sender_us_per_message": f.sender_us_per_message,
        "receiver_us_per_message": f.receiver_us_per_message,
        "messages_per_read": f.messages_per_read,
        "cores_for_chat_target": f.cores_for_chat_target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(batch: usize, rate: u64) -> Args {
        Args::parse_from([
            "floor",
            "--pairs",
            "4",
            "--bytes",
            "90",
            "--batch",
            &batch.to_string(),
            "--rate",
            &rate.to_string(),
            "--seconds",
            "0.2",
        ])
    }

    #[test]
    fn a_receivers_work_is_spent_once_per_message_and_loses_none() {
        let mut a = args(1, 2_000);
        a.receiver_work_us = 200.0;
        check(&a).expect("valid arguments");
        let o = run(&a).expect("runs on loopback");
        assert_eq!(o.messages_received(&a), o.messages_sent(&a));
        let f = figures(&a, &o);
        // Each message costs the receiver at least its 200 µs.
        assert!(
            f.receiver_us_per_message >= 200.0,
            "{} µs per message",
            f.receiver_us_per_message
        );
        assert!(
            o.receiver_cpu_s >= 200e-6 * o.messages_sent(&a) as f64,
            "the work is spent for every message"
        );
        assert_eq!(to_json(&a, &o)["config"]["receiver_work_us"], 200.0);
        // A message split over two reads is worked on once, when it ends.
        let spent = |before, after| {
            Work {
                us_per_message: 0.0,
                message_bytes: 90,
            }
            .after_read(before, after)
        };
        assert_eq!(spent(0, 45), 0);
        assert_eq!(spent(45, 90), 1);
        assert_eq!(spent(45, 300), 3);
    }

    #[test]
    fn a_receivers_work_is_bounded_and_only_one_way() {
        let mut a = args(1, 2_000);
        a.receiver_work_us = -1.0;
        assert!(check(&a).unwrap_err().contains("--receiver-work-us"));
        a.receiver_work_us = WORK_US_MAX + 1.0;
        assert!(check(&a).unwrap_err().contains("--receiver-work-us"));
        assert!(Args::try_parse_from([
            "floor",
            "--rtt",
            "--rate",
            "100",
            "--receiver-work-us",
            "5"
        ])
        .is_err());
    }

    #[test]
    fn every_message_sent_is_received_whole() {
        for (batch, rate) in [(1, 2_000), (10, 0)] {
            let a = args(batch, rate);
            check(&a).expect("valid arguments");
            let o = run(&a).expect("runs on loopback");
            assert!(o.sends > 0);
            assert_eq!(o.messages_received(&a), o.messages_sent(&a));
            assert_eq!(o.received_bytes % a.bytes as u64, 0);
            let f = figures(&a, &o);
            assert!(f.sender_us_per_send > 0.0 && f.receiver_us_per_message > 0.0);
            if rate > 0 {
                // Paced: about rate × seconds messages, never more than due.
                assert!(
                    o.messages_sent(&a) <= 400 + batch as u64,
                    "{}",
                    o.messages_sent(&a)
                );
            }
        }
    }

    #[test]
    fn bad_arguments_are_refused() {
        for bad in [
            vec!["floor", "--pairs", "0"],
            vec!["floor", "--batch", "0"],
            vec!["floor", "--bytes", "70000"],
            vec!["floor", "--seconds", "0"],
            vec!["floor", "--warmup=-1"],
            vec!["floor", "--rtt", "--rate", "0"],
        ] {
            assert!(check(&Args::parse_from(bad.clone())).is_err(), "{bad:?}");
        }
    }

    fn refusal(argv: &[&str]) -> String {
        match Args::try_parse_from(argv) {
            Err(e) => e.to_string(),
            Ok(a) => check(&a).expect_err("refused"),
        }
    }

    #[test]
    fn crossings_and_work_are_refused_where_they_mean_nothing() {
        let rtt = ["floor", "--rtt", "--pairs", "4", "--echo-threads", "2"];
        let with = |more: &[&'static str]| [&rtt[..], more].concat();
        assert!(refusal(&with(&["--cross", "--echo-runtime", "glommio"]))
            .contains("--cross runs the epoll echo threads"));
        assert!(refusal(&with(&["--work-us=-1"])).contains("--work-us must be in"));
        assert!(refusal(&with(&["--work-us", "20000"])).contains("--work-us must be in"));
        assert!(refusal(&with(&["--cross", "--spin"])).contains("cannot be used with"));
        assert!(refusal(&["floor", "--cross"]).contains("--rtt"));
        let ok = Args::parse_from(with(&["--cross", "--work-us", "35"]));
        check(&ok).expect("two echo threads crossing, with work");
    }

    #[test]
    fn bad_echo_threads_and_core_lists_are_refused_with_a_clear_message() {
        let rtt = ["floor", "--rtt", "--pairs", "4"];
        let with = |more: &[&'static str]| [&rtt[..], more].concat();
        assert!(refusal(&with(&["--echo-threads", "0"])).contains("--echo-threads must be 1..="));
        assert!(refusal(&with(&["--echo-threads", "5"]))
            .contains("--echo-threads 5 is more than --pairs 4"));
        for bad in ["0,", "a", "0;1"] {
            let e = refusal(&with(&["--receiver-core", bad]));
            assert!(e.contains("comma-separated list"), "{bad}: {e}");
        }
        assert!(refusal(&["floor", "--echo-threads", "2"]).contains("--rtt"));
        assert!(refusal(&["floor", "--receiver-core", "0,1"]).contains("one CPU without --rtt"));
        let two = Args::parse_from(with(&["--echo-threads", "2", "--receiver-core", "0,1"]));
        check(&two).expect("two echo threads on two CPUs");
        let one = Args::parse_from(["floor", "--receiver-core", "1"]);
        check(&one).expect("a single CPU still works");
        assert_eq!(one.receiver_core.map(|c| c.for_thread(0)), Some(1));
    }

    /// A loopback port nothing listens on (bound, then let go).
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    /// A `redis-server` of the test's own on a free port, killed on drop.
    struct Redis {
        child: std::process::Child,
        url: String,
    }

    impl Redis {
        fn start() -> Redis {
            let port = free_port();
            let child = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start redis-server ({e}): install it with `apt-get install -y redis-server`"
                    )
                });
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            Redis {
                child,
                url: format!("redis://127.0.0.1:{port}"),
            }
        }
    }

    impl Drop for Redis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn cross_host_delivers_every_say_to_the_other_talkers_and_every_listener_through_redis() {
        let redis = Redis::start();
        let config = cross_host::CrossHostConfig {
            redis_url: redis.url.clone(),
            rooms: 4,
            talkers: 3,
            listeners: 2,
            rate: 400,
            say_bytes: 90,
            warmup_s: 0.2,
            seconds: 1.0,
        };
        let o = cross_host::run(&config).expect("runs through redis");
        assert!(
            o.measured_says >= 350 && o.measured_says <= 410,
            "{}",
            o.measured_says
        );
        assert_eq!(o.cross_host.expected, o.measured_says * 2);
        assert_eq!(o.same_host.expected, o.measured_says * 2);
        assert_eq!(
            o.cross_host.received, o.cross_host.expected,
            "nothing lost across"
        );
        assert_eq!(
            o.same_host.received, o.same_host.expected,
            "nothing lost on host a"
        );
        assert_eq!(o.published_says, o.says, "every say went through redis");
        assert!(o.publishes > 0 && o.publishes <= o.says);
        assert_eq!(o.cross_host.latency_us.len(), o.cross_host.received);
        let json = cross_host::to_json(&config, &o);
        assert_eq!(json["cross_host_deliveries_per_s"], 800);
        assert_eq!(json["cross_host"]["received"], o.cross_host.received);
    }

    #[test]
    fn cross_host_without_redis_fails_with_a_message_naming_it() {
        let port = free_port();
        let config = cross_host::CrossHostConfig {
            redis_url: format!("redis://127.0.0.1:{port}"),
            rooms: 1,
            talkers: 1,
            listeners: 1,
            rate: 10,
            say_bytes: 90,
            warmup_s: 0.0,
            seconds: 0.1,
        };
        let e = cross_host::run(&config).err().expect("no redis there");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }

    #[test]
    fn bad_cross_host_arguments_are_refused_with_a_clear_message() {
        let base = ["floor", "--cross-host", "--redis", "redis://127.0.0.1:1"];
        let with = |more: &[&'static str]| [&base[..], more].concat();
        assert!(refusal(&["floor", "--cross-host"]).contains("--redis"));
        assert!(refusal(&with(&["--rate", "0"])).contains("--rate (says/s)"));
        assert!(refusal(&with(&["--talkers", "0"])).contains("at least 1"));
        assert!(refusal(&with(&["--rooms", "1000"])).contains("connections; at most"));
        assert!(refusal(&with(&["--bytes", "8"])).contains("--bytes must be at least 12"));
        assert!(refusal(&["floor", "--rooms", "3"]).contains("--cross-host"));
        assert!(refusal(&with(&["--rtt"])).contains("cannot be used with"));
        check(&Args::parse_from(with(&["--rate", "2000"]))).expect("the cluster ladder's step");
    }
}
