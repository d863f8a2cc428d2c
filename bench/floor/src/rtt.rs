//! `floor --rtt`: the lowest request→reply latency this machine allows for
//! the shape of loadgen's `rtt` scenario, with no server in the way.
//!
//! An echo thread answers every `REQUEST_BYTES`-byte request with one
//! `--bytes`-byte reply (one `send` per read), over `--pairs` loopback
//! connections watched with epoll. With `--echo-threads N` the pairs are
//! dealt round-robin to N echo threads, each with its own epoll set, as
//! SO_REUSEPORT shards share a server's connections: what the machine
//! charges for N threads that sleep and wake apart instead of one. With
//! `--cross`, a request read on a pair another thread owns goes to that
//! thread and back before it is answered, as a command crosses between
//! shards (`crossing`); `--work-us` gives each request a server's weight of
//! CPU on its owner, so that the threads are as busy as a server's. A client
//! thread sends requests
//! round-robin at `--rate` per second, open loop: request k is due at
//! `start + k / rate`, and its latency is measured from that intended time,
//! as loadgen measures it (coordinated omission corrected). Between sends the
//! client waits in `epoll_pwait2` for replies until the next send is due.
//!
//! Both threads do the least any server and client must: one `recv` and one
//! `send` per request on each side, no framing, no parsing, no runtime. The
//! latency percentiles are therefore a floor under what a server and a load
//! generator can show together on this machine in the same layout (pinned
//! to separate CPUs, or sharing them).

use crate::cores::{pin, CoreList};
use crate::crossing::{inboxes, owner, Hop, Inboxes};
use crate::net::{loopback_pairs, recv, send_all, Epoll};
use crate::thread_cpu_s;
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A `look` command frame from loadgen is about this long.
pub const REQUEST_BYTES: usize = 40;
/// Replies still missing this long after the last send count as lost.
const DRAIN: Duration = Duration::from_secs(2);
const READ_BUF_BYTES: usize = 256 * 1024;
/// Latencies are recorded in µs up to this bound (longer ones are clamped).
const LATENCY_MAX_US: u64 = 60_000_000;

/// What `--rtt` is asked to do.
#[derive(Debug, Clone)]
pub struct RttConfig {
    pub pairs: usize,
    pub reply_bytes: usize,
    pub rate: u64,
    pub warmup_s: f64,
    pub seconds: f64,
    pub client_core: Option<usize>,
    /// Echo threads; pair k is answered by thread k % echo_threads.
    pub echo_threads: usize,
    /// Echo thread i runs on `echo_cores.for_thread(i)` (`None`: unpinned).
    pub echo_cores: Option<CoreList>,
    /// Both sides poll without ever sleeping (each thread needs a CPU of
    /// its own).
    pub spin: bool,
    /// One client wake-up also sends the requests due in the next this many
    /// µs (loadgen's `--send-ahead-us`); 0: each at its own time.
    pub send_ahead_us: u64,
    /// The echo threads are glommio executors with a task per connection,
    /// set up as mudshard's shards are (`glommio_echo`), not epoll loops.
    pub glommio: bool,
    /// A request read on a pair another echo thread owns crosses to it and
    /// back before it is answered (`crossing`).
    pub cross: bool,
    /// CPU each request costs the thread that owns it, µs: a busy loop on
    /// the thread's CPU clock standing for a server's own work (0: none).
    pub work_us: f64,
}

impl RttConfig {
    fn echo_core(&self, thread: usize) -> Option<usize> {
        self.echo_cores.as_ref().map(|c| c.for_thread(thread))
    }
}

/// What a `--rtt` run measured.
pub struct RttOutcome {
    /// Requests sent in the whole run (warm-up included).
    pub sent: u64,
    /// Requests whose intended time fell in the measured window.
    pub measured: u64,
    /// Replies received to measured requests.
    pub answered: u64,
    /// Latency from intended send time to reply, µs, measured requests only.
    pub latency_us: Histogram<u64>,
    /// The furthest the client fell behind its schedule, µs.
    pub send_lag_max_us: u64,
    pub client_cpu_s: f64,
    /// The echo threads' CPU time, summed.
    pub echo_cpu_s: f64,
    /// Each echo thread's CPU time, s, and the requests it answered.
    pub echo_threads: Vec<Echoed>,
    /// The measured window, s.
    pub window_s: f64,
    /// `--cross`: times a thread rang another that was asleep.
    pub rings: u64,
}

impl RttOutcome {
    pub fn achieved_per_s(&self) -> f64 {
        self.measured as f64 / self.window_s
    }
    pub fn client_us_per_request(&self) -> f64 {
        self.client_cpu_s * 1e6 / self.sent.max(1) as f64
    }
    pub fn echo_us_per_request(&self) -> f64 {
        self.echo_cpu_s * 1e6 / self.sent.max(1) as f64
    }
}

/// What one echo thread did.
#[derive(Debug, Clone, Copy)]
pub struct Echoed {
    pub cpu_s: f64,
    /// Requests it answered (one reply each).
    pub requests: u64,
    /// Of those, requests that crossed to their owner and back (`--cross`).
    pub crossed: u64,
}

/// Opens the pairs, runs the echo threads and the client, and reports.
pub fn run(config: &RttConfig) -> io::Result<RttOutcome> {
    if config.rate == 0 {
        return Err(io::Error::other("--rtt needs a --rate above 0"));
    }
    if config.echo_threads == 0 || config.echo_threads > config.pairs {
        return Err(io::Error::other(
            "every echo thread needs at least one of the pairs",
        ));
    }
    if config.cross && config.glommio {
        return Err(io::Error::other(
            "--cross runs the epoll echo threads (not --echo-runtime glommio)",
        ));
    }
    // The accepted side answers; both sides send small writes at once.
    let (clients, echoes) = loopback_pairs(config.pairs)?;
    for s in echoes.iter() {
        s.set_nodelay(true)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut echo_threads = Vec::with_capacity(config.echo_threads);
    let inboxes = if config.cross {
        Some(inboxes(config.echo_threads)?)
    } else {
        None
    };
    for (i, fds) in dealt(&echoes, config.echo_threads).into_iter().enumerate() {
        let echo_stop = stop.clone();
        let echo_config = config.clone();
        echo_threads.push(if config.glommio {
            // Each executor owns duplicates of its descriptors.
            let dups = fds
                .iter()
                .map(|&fd| dup(fd))
                .collect::<io::Result<Vec<_>>>()?;
            crate::glommio_echo::spawn(dups, i, &echo_config, echo_stop)?
        } else {
            let inboxes = inboxes.clone();
            std::thread::spawn(move || echo(&fds, i, &echo_config, &echo_stop, inboxes))
        });
    }

    let client_fds: Vec<RawFd> = clients.iter().map(|s| s.as_raw_fd()).collect();
    let client = client(config, &client_fds);
    stop.store(true, Ordering::Release);
    let mut echoed = Vec::with_capacity(echo_threads.len());
    for thread in echo_threads {
        let e = thread
            .join()
            .map_err(|_| io::Error::other("an echo thread panicked"))?;
        echoed.push(e);
    }
    let echoed = echoed.into_iter().collect::<io::Result<Vec<Echoed>>>()?;
    let mut outcome = client?;
    outcome.echo_cpu_s = echoed.iter().map(|e| e.cpu_s).sum();
    outcome.rings = inboxes.map_or(0, |ib| {
        ib.iter()
            .map(|i| i.rings.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    });
    outcome.echo_threads = echoed;
    Ok(outcome)
}

fn dup(fd: RawFd) -> io::Result<RawFd> {
    // SAFETY: `fd` is open; the duplicate is closed by its new owner.
    let d = unsafe { libc::dup(fd) };
    if d < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(d)
}

/// The echo ends' descriptors dealt round-robin to `threads` threads: pair
/// k to thread k % threads.
fn dealt(echoes: &[std::net::TcpStream], threads: usize) -> Vec<Vec<RawFd>> {
    let mut fds = vec![Vec::new(); threads];
    for (k, s) in echoes.iter().enumerate() {
        fds[k % threads].push(s.as_raw_fd());
    }
    fds
}

/// Tags the doorbell's event in an echo thread's epoll set.
const BELL: u64 = u64::MAX;

/// Echo thread `thread`: one reply of `reply_bytes` for every whole request
/// read on its `fds`. With `inboxes` (`--cross`), a request on a pair
/// another thread owns crosses to it and back before it is answered.
fn echo(
    fds: &[RawFd],
    thread: usize,
    config: &RttConfig,
    stop: &AtomicBool,
    inboxes: Option<Inboxes>,
) -> io::Result<Echoed> {
    if let Some(core) = config.echo_core(thread) {
        pin(core)?;
    }
    let reply_bytes = config.reply_bytes;
    let timeout = if config.spin {
        Duration::ZERO
    } else {
        Duration::from_millis(100)
    };
    let epoll = Epoll::watching(fds)?;
    if let Some(inboxes) = &inboxes {
        epoll.add(inboxes[thread].bell_fd(), BELL)?;
    }
    let mut events = Epoll::events();
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let mut replies = Vec::new();
    let mut hops = Vec::new();
    // Bytes of a request read so far, per connection.
    let mut partial = vec![0usize; fds.len()];
    let (mut answered, mut crossed) = (0u64, 0u64);
    let mut reply = |fd: RawFd, requests: usize| -> io::Result<()> {
        replies.clear();
        replies.resize(requests * reply_bytes, b'r');
        send_all(fd, &replies)
    };
    let cpu_start = thread_cpu_s();
    while !stop.load(Ordering::Acquire) {
        let mut wait = timeout;
        if let Some(inboxes) = &inboxes {
            let inbox = &inboxes[thread];
            inbox.take(&mut hops)?;
            for hop in &hops {
                if hop.back {
                    reply(fds[hop.pair], hop.requests)?;
                    answered += hop.requests as u64;
                } else {
                    // The owner does the work and hands it back.
                    work(config.work_us * hop.requests as f64);
                    inboxes[hop.reader].send(Hop { back: true, ..*hop })?;
                }
            }
            if !config.spin && !inbox.may_sleep() {
                wait = Duration::ZERO;
            }
        }
        let n = epoll.wait(&mut events, wait)?;
        if let Some(inboxes) = &inboxes {
            inboxes[thread].woke();
        }
        for ev in &events[..n] {
            if ev.u64 == BELL {
                if let Some(inboxes) = &inboxes {
                    inboxes[thread].clear_bell();
                }
                continue;
            }
            let i = ev.u64 as usize;
            let got = recv(fds[i], &mut buf)?;
            let total = partial[i] + got;
            let requests = total / REQUEST_BYTES;
            partial[i] = total % REQUEST_BYTES;
            if requests == 0 {
                continue;
            }
            match &inboxes {
                Some(inboxes) if owner(i, inboxes.len()) != thread => {
                    inboxes[owner(i, inboxes.len())].send(Hop {
                        reader: thread,
                        pair: i,
                        requests,
                        back: false,
                    })?;
                    crossed += requests as u64;
                }
                _ => {
                    work(config.work_us * requests as f64);
                    reply(fds[i], requests)?;
                    answered += requests as u64;
                }
            }
        }
    }
    Ok(Echoed {
        cpu_s: thread_cpu_s() - cpu_start,
        requests: answered,
        crossed,
    })
}

/// Spends `us` µs of this thread's CPU in a busy loop.
pub(crate) fn work(us: f64) {
    if us <= 0.0 {
        return;
    }
    let until = thread_cpu_s() + us / 1e6;
    while thread_cpu_s() < until {
        std::hint::spin_loop();
    }
}

/// The client side: paced open-loop sends, replies matched in order per
/// connection.
fn client(config: &RttConfig, fds: &[RawFd]) -> io::Result<RttOutcome> {
    if let Some(core) = config.client_core {
        pin(core)?;
    }
    let epoll = Epoll::watching(fds)?;
    let mut events = Epoll::events();
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let request = [b'q'; REQUEST_BYTES];
    // The requests each connection awaits replies to: when each was due,
    // and the time its latency is measured from.
    let mut awaited: Vec<VecDeque<(u64, u64)>> = vec![VecDeque::new(); fds.len()];
    let mut partial = vec![0usize; fds.len()];
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, LATENCY_MAX_US, 3)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let interval_ns = 1e9 / config.rate as f64;
    let warmup_ns = (config.warmup_s * 1e9) as u64;
    let end_ns = warmup_ns + (config.seconds * 1e9) as u64;
    let (mut sent, mut measured, mut answered, mut lag_max_ns, mut next) =
        (0u64, 0u64, 0u64, 0u64, 0usize);
    let cpu_start = thread_cpu_s();
    let start = Instant::now();
    let since = |start: Instant| start.elapsed().as_nanos() as u64;
    let mut outstanding = 0u64;
    let mut drain_until: Option<u64> = None;
    loop {
        let now = since(start);
        let mut due = (sent as f64 * interval_ns) as u64;
        if due < end_ns {
            lag_max_ns = lag_max_ns.max(now.saturating_sub(due));
        }
        let ahead = now + config.send_ahead_us * 1000;
        while due <= ahead && due < end_ns {
            let i = next;
            next = (next + 1) % fds.len();
            send_all(fds[i], &request)?;
            // A request sent early is timed from when it went, a late one
            // from when it was due (as loadgen does).
            awaited[i].push_back((due, due.min(since(start))));
            sent += 1;
            outstanding += 1;
            if due >= warmup_ns {
                measured += 1;
            }
            due = (sent as f64 * interval_ns) as u64;
        }
        let wait = if due < end_ns {
            Duration::from_nanos(due - now.min(due))
        } else {
            let until = *drain_until.get_or_insert(now + DRAIN.as_nanos() as u64);
            if outstanding == 0 || now >= until {
                break;
            }
            Duration::from_nanos(until - now)
        };
        let n = epoll.wait(&mut events, if config.spin { Duration::ZERO } else { wait })?;
        if n == 0 {
            continue;
        }
        let now = since(start);
        for ev in &events[..n] {
            let i = ev.u64 as usize;
            let total = partial[i] + recv(fds[i], &mut buf)?;
            partial[i] = total % config.reply_bytes;
            for _ in 0..total / config.reply_bytes {
                let Some((intended, timed_from)) = awaited[i].pop_front() else {
                    return Err(io::Error::other("a reply nobody asked for"));
                };
                outstanding -= 1;
                if intended >= warmup_ns {
                    answered += 1;
                    let us = (now.saturating_sub(timed_from) / 1000).clamp(1, LATENCY_MAX_US);
                    latency_us.saturating_record(us);
                }
            }
        }
    }
    Ok(RttOutcome {
        sent,
        measured,
        answered,
        latency_us,
        send_lag_max_us: lag_max_ns / 1000,
        client_cpu_s: thread_cpu_s() - cpu_start,
        echo_cpu_s: 0.0,
        echo_threads: Vec::new(),
        window_s: config.seconds,
        rings: 0,
    })
}

/// Prints the human summary.
pub fn print(config: &RttConfig, o: &RttOutcome) {
    println!(
        "floor rtt: {} pairs, {REQUEST_BYTES}-byte requests, {}-byte replies, {} requests/s requested, \
         {:.1} s measured after {:.1} s warm-up, {} echo thread(s) ({}){}{}",
        config.pairs,
        config.reply_bytes,
        config.rate,
        config.seconds,
        config.warmup_s,
        config.echo_threads,
        if config.glommio {
            "glommio executors, as mudshard's shards"
        } else {
            "epoll"
        },
        if config.spin { ", polling without sleeping" } else { "" },
        if config.cross {
            ", requests on pairs another thread owns cross to it and back"
        } else {
            ""
        }
    );
    println!(
        "  achieved           {:>12.0} requests/s (max send lag {:.1} ms), {} of {} answered",
        o.achieved_per_s(),
        o.send_lag_max_us as f64 / 1e3,
        o.answered,
        o.measured
    );
    let h = &o.latency_us;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
    println!(
        "  reply latency (ms) p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1e3
    );
    println!(
        "  CPU per request    client {:.2} µs, echo {:.2} µs (summed over {} echo thread(s))",
        o.client_us_per_request(),
        o.echo_us_per_request(),
        o.echo_threads.len()
    );
    if config.cross {
        let crossed: u64 = o.echo_threads.iter().map(|e| e.crossed).sum();
        println!(
            "  crossings          {crossed} requests crossed to their owner and back, {} rings of a sleeping thread",
            o.rings
        );
    }
    if o.answered < o.measured {
        println!("  warning: {} requests unanswered", o.measured - o.answered);
    }
}

pub fn to_json(config: &RttConfig, o: &RttOutcome) -> serde_json::Value {
    let h = &o.latency_us;
    serde_json::json!({
        "config": {
            "mode": "rtt",
            "pairs": config.pairs,
            "request_bytes": REQUEST_BYTES,
            "reply_bytes": config.reply_bytes,
            "rate": config.rate,
            "warmup_s": config.warmup_s,
            "seconds": config.seconds,
            "client_core": config.client_core,
            "echo_core": config.echo_core(0),
            "echo_cores": config.echo_cores.as_ref().map(CoreList::as_slice),
            "echo_threads": config.echo_threads,
            "spin": config.spin,
            "send_ahead_us": config.send_ahead_us,
            "echo_runtime": if config.glommio { "glommio" } else { "epoll" },
            "cross": config.cross,
            "work_us": config.work_us,
        },
        "sent": o.sent,
        "measured": o.measured,
        "answered": o.answered,
        "achieved_per_s": o.achieved_per_s(),
        "send_lag_max_us": o.send_lag_max_us,
        "latency_us": {
            "p50": h.value_at_quantile(0.5),
            "p90": h.value_at_quantile(0.9),
            "p99": h.value_at_quantile(0.99),
            "p999": h.value_at_quantile(0.999),
            "max": h.max(),
        },
        "client_cpu_s": o.client_cpu_s,
        "echo_cpu_s": o.echo_cpu_s,
        "echo_thread_cpu_s": o.echo_threads.iter().map(|e| e.cpu_s).collect::<Vec<f64>>(),
        "echo_thread_requests": o.echo_threads.iter().map(|e| e.requests).collect::<Vec<u64>>(),
        "echo_thread_crossed": o.echo_threads.iter().map(|e| e.crossed).collect::<Vec<u64>>(),
        "rings": o.rings,
        "client_us_per_request": o.client_us_per_request(),
        "echo_us_per_request": o.echo_us_per_request(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate: u64) -> RttConfig {
        RttConfig {
            pairs: 8,
            reply_bytes: 300,
            rate,
            warmup_s: 0.1,
            seconds: 0.3,
            client_core: None,
            echo_threads: 1,
            echo_cores: None,
            spin: false,
            send_ahead_us: 0,
            glommio: false,
            cross: false,
            work_us: 0.0,
        }
    }

    /// `sent` requests went out, and every measured one was answered and
    /// timed exactly once.
    fn assert_every_measured_answered(o: &RttOutcome, sent: u64) {
        assert_eq!(o.sent, sent);
        assert_eq!(o.answered, o.measured);
        assert_eq!(o.latency_us.len(), o.measured);
    }

    #[test]
    fn glommio_executors_answer_every_request_exactly_once() {
        let c = RttConfig {
            echo_threads: 2,
            glommio: true,
            ..config(2_000)
        };
        let o = run(&c).expect("runs on loopback");
        assert_every_measured_answered(&o, 800);
        let requests: Vec<u64> = o.echo_threads.iter().map(|e| e.requests).collect();
        assert_eq!(requests, [400, 400]);
        assert!(o.echo_threads.iter().all(|e| e.cpu_s > 0.0));
        assert_eq!(to_json(&c, &o)["config"]["echo_runtime"], "glommio");
    }

    #[test]
    fn every_measured_request_is_answered_at_the_requested_rate() {
        let c = config(2_000);
        let o = run(&c).expect("runs on loopback");
        // 0.4 s at 2,000/s, of which 0.3 s measured.
        assert_eq!(o.sent, 800);
        assert_eq!(o.measured, 600);
        assert_eq!(o.answered, o.measured);
        assert_eq!(o.latency_us.len(), o.measured);
        assert!(o.latency_us.min() >= 1);
        assert!(o.client_cpu_s > 0.0 && o.echo_cpu_s > 0.0);
    }

    #[test]
    fn two_echo_threads_answer_every_request_exactly_once_and_share_the_pairs() {
        let c = RttConfig {
            echo_threads: 2,
            ..config(2_000)
        };
        let o = run(&c).expect("runs on loopback");
        assert_every_measured_answered(&o, 800);
        // Every request sent got one reply: no more, no fewer.
        let requests: Vec<u64> = o.echo_threads.iter().map(|e| e.requests).collect();
        assert_eq!(requests.iter().sum::<u64>(), o.sent);
        // 8 pairs dealt 4 and 4, each sent 100 requests round-robin.
        assert_eq!(requests, [400, 400]);
        assert!(o.echo_threads.iter().all(|e| e.cpu_s > 0.0));
        let sum: f64 = o.echo_threads.iter().map(|e| e.cpu_s).sum();
        assert!((o.echo_cpu_s - sum).abs() < 1e-12);
        let json = to_json(&c, &o);
        assert_eq!(json["config"]["echo_threads"], 2);
        assert_eq!(json["echo_thread_requests"], serde_json::json!([400, 400]));
    }

    #[test]
    fn crossing_requests_go_over_and_back_and_each_is_answered_exactly_once() {
        let c = RttConfig {
            echo_threads: 2,
            cross: true,
            ..config(2_000)
        };
        let o = run(&c).expect("runs on loopback");
        assert_every_measured_answered(&o, 800);
        // Each thread answers its own pairs' requests, crossing or not.
        let requests: Vec<u64> = o.echo_threads.iter().map(|e| e.requests).collect();
        assert_eq!(requests, [400, 400]);
        // Of thread t's 4 pairs (k = 2i + t), those with i odd (t = 0) or
        // even (t = 1) belong to the other thread: half of each share.
        let crossed: Vec<u64> = o.echo_threads.iter().map(|e| e.crossed).collect();
        assert_eq!(crossed, [200, 200]);
        // At 2,000/s the threads sleep between requests: crossings ring.
        assert!(o.rings > 0 && o.rings <= 800, "{} rings", o.rings);
        let json = to_json(&c, &o);
        assert_eq!(json["config"]["cross"], true);
        assert_eq!(json["echo_thread_crossed"], serde_json::json!([200, 200]));
    }

    #[test]
    fn one_thread_has_nothing_to_cross_to() {
        let c = RttConfig {
            cross: true,
            ..config(2_000)
        };
        let o = run(&c).expect("runs on loopback");
        assert_eq!(o.answered, o.measured);
        assert_eq!((o.echo_threads[0].crossed, o.rings), (0, 0));
    }

    #[test]
    fn each_request_costs_its_owner_the_work_asked_for() {
        let c = RttConfig {
            echo_threads: 2,
            cross: true,
            work_us: 500.0,
            ..config(400)
        };
        let o = run(&c).expect("runs on loopback");
        // 0.4 s at 400/s: 160 requests, each 0.5 ms of an echo thread's CPU.
        assert_eq!(o.sent, 160);
        assert_eq!(o.answered, o.measured);
        assert!(o.echo_cpu_s >= 0.08, "{} s", o.echo_cpu_s);
        assert_eq!(to_json(&c, &o)["config"]["work_us"], 500.0);
    }

    #[test]
    fn requests_sent_ahead_are_all_answered_and_timed_from_when_they_went() {
        let c = RttConfig {
            send_ahead_us: 5_000,
            ..config(2_000)
        };
        let o = run(&c).expect("runs on loopback");
        // Sending ahead changes when requests go, not how many.
        assert_eq!(o.sent, 800);
        assert_eq!(o.measured, 600);
        assert_eq!(o.answered, o.measured);
        assert_eq!(o.latency_us.len(), o.measured);
        // Up to ten requests go in one wake-up, 5 ms before some are due:
        // timed from their due time, most would read as negative (clamped
        // to 1 µs); timed from when they went, none is below the loopback's.
        assert!(
            o.latency_us.value_at_quantile(0.5) > 1,
            "{}",
            o.latency_us.value_at_quantile(0.5)
        );
        assert_eq!(to_json(&c, &o)["config"]["send_ahead_us"], 5_000);
    }

    #[test]
    fn echo_threads_are_pinned_round_the_list() {
        let c = RttConfig {
            echo_threads: 3,
            echo_cores: Some(CoreList::parse("0,1").expect("list")),
            ..config(2_000)
        };
        assert_eq!(
            (c.echo_core(0), c.echo_core(1), c.echo_core(2)),
            (Some(0), Some(1), Some(0))
        );
        assert_eq!(config(1).echo_core(0), None);
    }

    #[test]
    fn a_zero_rate_and_idle_echo_threads_are_refused() {
        assert!(run(&config(0)).is_err());
        for threads in [0, 9] {
            let c = RttConfig {
                echo_threads: threads,
                ..config(2_000)
            };
            assert!(run(&c).is_err(), "{threads} echo threads over 8 pairs");
        }
    }
}
