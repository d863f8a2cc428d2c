//! The cross-shard hop, as the server makes it: two glommio executors (two
//! shards, pinned to cores 0 and 1 when the machine has them), each awaiting
//! its inbox exactly as `shard::run`'s inbox task does, and messages sent
//! through `shard::mailbox`. Both ways of waking a shard are measured
//! (`mailbox::Wake`): `waker` (the default: the inbox task's waker, and the
//! executor's eventfd only when it sleeps) and `socket` (a byte on a socket
//! pair per ring, mudshard's earlier doorbell).
//!
//! * `cross_shard/<wake>/round_trip_wall` — shard A sends one message to B
//!   and sleeps until B's answer wakes it; B sleeps between messages. Two
//!   hops, each waking a sleeping shard: the latency a lone cross-shard
//!   command pays. Time per round trip.
//! * `cross_shard/<wake>/round_trip_cpu` — the same exchange, but the time
//!   reported is the CPU both shards' threads used (their
//!   `CLOCK_THREAD_CPUTIME_ID`), per round trip: what two wake-up hops cost
//!   the server, the figure the README's scaling model uses.
//! * `cross_shard/<wake>/stream_cpu` — A sends without waiting (at most
//!   `IN_FLIGHT_MAX` outstanding) and B answers every message; CPU of both
//!   threads per message. A crossing under steady load, where the receiver is
//!   mostly awake and wake-ups are rare.
//!
//! Why it matters: with N shards, about (N−1)/N of commands and room events
//! cross shards (rooms are placed by hash), so this cost is paid on most
//! operations of `chat`, `rtt` and every shard-crossing move of `walk`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use std::os::fd::FromRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_lite::AsyncReadExt;
use mudshard::config::Limits;
use mudshard::shard::mailbox::{self, Inbox, Mailbox, Wake};
use mudshard::shard::msg::Msg;

/// Messages A lets be outstanding in the stream case.
const IN_FLIGHT_MAX: u64 = 1_024;

/// CPU time used so far by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn numbered(n: u64) -> Msg {
    Msg::WhoAsk { asker: 0, ask: n }
}

/// Waits as a shard's inbox task does: on the doorbell socket, or on the
/// inbox's waker.
struct Waiter {
    socket: Option<glommio::net::UnixStream>,
    rings: [u8; 256],
}

impl Waiter {
    fn new(inbox: &mut Inbox) -> Waiter {
        // SAFETY: the fd is the inbox's own end of its socket pair, handed over once.
        let socket = inbox
            .take_wake_fd()
            .map(|fd| unsafe { glommio::net::UnixStream::from_raw_fd(fd) });
        Waiter {
            socket,
            rings: [0; 256],
        }
    }

    async fn wait(&mut self, inbox: &Inbox) {
        match self.socket.as_mut() {
            Some(socket) => {
                let _ = socket.read(&mut self.rings).await;
                inbox.rearm();
            }
            None => std::future::poll_fn(|cx| inbox.poll_ready(cx)).await,
        }
    }
}

/// What one batch asks of shard A, and what it answers.
enum Job {
    RoundTrips(u64),
    Stream(u64),
    Stop,
}

struct Done {
    wall: Duration,
    /// CPU of A's thread over the batch.
    cpu_a: Duration,
}

/// Shard B: answers every numbered message back to A, and reports its
/// thread's CPU when asked (a message numbered `u64::MAX`).
fn spawn_b(
    mut inbox: Inbox,
    to_a: Mailbox,
    cpu_tx: mpsc::Sender<Duration>,
) -> ExecutorJoinHandle<()> {
    let placement = if num_cores() > 1 {
        Placement::Fixed(1)
    } else {
        Placement::Unbound
    };
    LocalExecutorBuilder::new(placement)
        .name("bench-b")
        .spawn(move || async move {
            let mut waiter = Waiter::new(&mut inbox);
            loop {
                waiter.wait(&inbox).await;
                while let Some(msg) = inbox.try_recv() {
                    match msg {
                        Msg::WhoAsk { ask: u64::MAX, .. } => {
                            let _ = cpu_tx.send(thread_cpu());
                        }
                        Msg::WhoAsk { ask, .. } => {
                            // A's inbox is sized for every message in flight.
                            let _ = to_a.try_send(numbered(ask));
                        }
                        Msg::Shutdown => return,
                        _ => {}
                    }
                }
            }
        })
        .expect("executor B")
}

/// Shard A: runs the jobs it is given, sleeping on its inbox for answers.
fn spawn_a(
    mut inbox: Inbox,
    to_b: Mailbox,
    jobs: mpsc::Receiver<Job>,
    done: mpsc::Sender<Done>,
) -> ExecutorJoinHandle<()> {
    LocalExecutorBuilder::new(Placement::Fixed(0))
        .name("bench-a")
        .spawn(move || async move {
            let mut waiter = Waiter::new(&mut inbox);
            // The jobs arrive on a std channel: the bench thread blocks A
            // only between batches, outside any measured time.
            while let Ok(job) = jobs.recv() {
                let (start, cpu) = (Instant::now(), thread_cpu());
                match job {
                    Job::RoundTrips(n) => {
                        for i in 0..n {
                            let _ = to_b.try_send(numbered(i));
                            loop {
                                waiter.wait(&inbox).await;
                                if inbox.try_recv().is_some() {
                                    break;
                                }
                            }
                        }
                    }
                    Job::Stream(n) => {
                        let (mut sent, mut back) = (0u64, 0u64);
                        while back < n {
                            while sent < n && sent - back < IN_FLIGHT_MAX {
                                let _ = to_b.try_send(numbered(sent));
                                sent += 1;
                            }
                            waiter.wait(&inbox).await;
                            while inbox.try_recv().is_some() {
                                back += 1;
                            }
                        }
                    }
                    Job::Stop => {
                        to_b.send(Msg::Shutdown);
                        return;
                    }
                }
                let _ = done.send(Done {
                    wall: start.elapsed(),
                    cpu_a: thread_cpu() - cpu,
                });
            }
        })
        .expect("executor A")
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

struct Pair {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Done>,
    to_b: Mailbox,
    b_cpu: mpsc::Receiver<Duration>,
    threads: Vec<ExecutorJoinHandle<()>>,
}

impl Pair {
    fn new(wake: Wake) -> Pair {
        // A's inbox holds everything in flight, so B never has to park.
        let bound = Limits::default()
            .inbox_msgs_max
            .max(2 * IN_FLIGHT_MAX as usize);
        let (mailboxes, mut inboxes) = mailbox::create(2, bound, wake).expect("inboxes");
        let inbox_b = inboxes.pop().expect("two inboxes");
        let inbox_a = inboxes.pop().expect("two inboxes");
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let (cpu_tx, cpu_rx) = mpsc::channel();
        let b = spawn_b(inbox_b, mailboxes[0].clone(), cpu_tx);
        let a = spawn_a(inbox_a, mailboxes[1].clone(), jobs_rx, done_tx);
        Pair {
            jobs: jobs_tx,
            done: done_rx,
            to_b: mailboxes[1].clone(),
            b_cpu: cpu_rx,
            threads: vec![a, b],
        }
    }

    fn b_cpu(&self) -> Duration {
        self.to_b.send(numbered(u64::MAX));
        self.b_cpu.recv().expect("B answers")
    }

    /// Runs `job`; returns (wall, CPU of both threads).
    fn run(&self, job: Job) -> (Duration, Duration) {
        let b_before = self.b_cpu();
        self.jobs.send(job).expect("A runs");
        let done = self.done.recv().expect("A finishes");
        let b_used = self.b_cpu() - b_before;
        (done.wall, done.cpu_a + b_used)
    }

    fn stop(self) {
        let _ = self.jobs.send(Job::Stop);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn bench_hops(c: &mut Criterion) {
    for (name, wake) in [("waker", Wake::Waker), ("socket", Wake::Socket)] {
        let pair = Pair::new(wake);
        let mut group = c.benchmark_group(format!("cross_shard/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("round_trip_wall", |b| {
            b.iter_custom(|iters| pair.run(Job::RoundTrips(iters)).0)
        });
        group.bench_function("round_trip_cpu", |b| {
            b.iter_custom(|iters| pair.run(Job::RoundTrips(iters)).1)
        });
        group.bench_function("stream_cpu", |b| {
            b.iter_custom(|iters| pair.run(Job::Stream(iters)).1)
        });
        group.finish();
        pair.stop();
    }
}

criterion_group!(benches, bench_hops);
criterion_main!(benches);
