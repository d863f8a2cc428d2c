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
//!   command pays. Time per round trip, from A's send to A holding the
//!   answer. Between round trips A waits `PAUSE` on a timer, so that both
//!   shards are surely asleep when the next one starts. The executors are
//!   set up as the server's shards are, without preemption timers: with
//!   them, glommio (before a fix of mudshard's patch 6) never slept, and
//!   this benchmark measured two spinning threads.
//! * `cross_shard/<wake>/round_trip_cpu` — the same exchange, but the time
//!   reported is the CPU both shards' threads used (their
//!   `CLOCK_THREAD_CPUTIME_ID`) from A's send to A holding the answer, on
//!   A's side, and all of B's: what two wake-up hops cost the server, the
//!   figure the README's scaling model uses. A's timer, outside that window,
//!   is not counted.
//! * `cross_shard/<wake>/back_to_back_cpu` — round trips without the pause:
//!   a shard may catch the answer before it falls asleep (the stderr line
//!   below says how often it did not).
//! * `cross_shard/<wake>/stream_cpu` — A sends without waiting (at most
//!   `IN_FLIGHT_MAX` outstanding) and B answers every message; CPU of both
//!   threads per message. A crossing under steady load, where the receiver is
//!   mostly awake and wake-ups are rare.
//!
//! Each round-trip group ends with a line on stderr saying how often each
//! thread really slept in it (voluntary context switches per round trip,
//! `getrusage(RUSAGE_THREAD)`), so that a reader can see which of these the
//! figures are on their machine.
//!
//! Why it matters: with N shards, about (N−1)/N of commands and room events
//! cross shards (connections are dealt to shards by the kernel), so this
//! cost is paid on most commands of `chat` and on every shard-crossing move
//! of `walk`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use std::cell::RefCell;
use std::os::fd::FromRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_lite::AsyncReadExt;
use mudshard::config::Limits;
use mudshard::shard::mailbox::{self, Inbox, Mailbox, Wake};
use mudshard::shard::msg::Msg;

/// Messages A lets be outstanding in the stream case.
const IN_FLIGHT_MAX: u64 = 1_024;

/// How long A waits between round trips that must wake a sleeping shard:
/// long enough for both executors to be asleep (they sleep within a few
/// microseconds of running out of work), short enough for many samples.
const PAUSE: Duration = Duration::from_micros(100);

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

/// The calling thread's voluntary context switches so far: how often it
/// slept.
fn thread_sleeps() -> u64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage to write; the selector is a constant.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    usage.ru_nvcsw as u64
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
    /// `n` round trips, with `pause` on a timer before each (zero: back to back).
    RoundTrips {
        n: u64,
        pause: Duration,
    },
    Stream(u64),
    Stop,
}

struct Done {
    /// Wall time of the batch; for round trips, only from each send to its answer.
    wall: Duration,
    /// CPU of A's thread over the same time.
    cpu_a: Duration,
    /// A's sleeps over the same time.
    sleeps_a: u64,
}

/// Shard B: answers every numbered message back to A, and reports its
/// thread's CPU and sleeps when asked (a message numbered `u64::MAX`).
fn spawn_b(
    mut inbox: Inbox,
    to_a: Mailbox,
    cpu_tx: mpsc::Sender<(Duration, u64)>,
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
                            let _ = cpu_tx.send((thread_cpu(), thread_sleeps()));
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
    done_tx: mpsc::Sender<Done>,
) -> ExecutorJoinHandle<()> {
    LocalExecutorBuilder::new(Placement::Fixed(0))
        .name("bench-a")
        .spawn(move || async move {
            let mut waiter = Waiter::new(&mut inbox);
            // The jobs arrive on a std channel: the bench thread blocks A
            // only between batches, outside any measured time.
            while let Ok(job) = jobs.recv() {
                let (start, cpu, sleeps) = (Instant::now(), thread_cpu(), thread_sleeps());
                let mut done = None;
                match job {
                    Job::RoundTrips { n, pause } => {
                        let mut measured = Done {
                            wall: Duration::ZERO,
                            cpu_a: Duration::ZERO,
                            sleeps_a: 0,
                        };
                        for i in 0..n {
                            if !pause.is_zero() {
                                glommio::timer::sleep(pause).await;
                            }
                            let (sleeps, cpu, start) =
                                (thread_sleeps(), thread_cpu(), Instant::now());
                            let _ = to_b.try_send(numbered(i));
                            loop {
                                waiter.wait(&inbox).await;
                                if inbox.try_recv().is_some() {
                                    break;
                                }
                            }
                            measured.wall += start.elapsed();
                            measured.cpu_a += thread_cpu() - cpu;
                            measured.sleeps_a += thread_sleeps() - sleeps;
                        }
                        done = Some(measured);
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
                let _ = done_tx.send(done.unwrap_or(Done {
                    wall: start.elapsed(),
                    cpu_a: thread_cpu() - cpu,
                    sleeps_a: thread_sleeps() - sleeps,
                }));
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
    b_cpu: mpsc::Receiver<(Duration, u64)>,
    threads: Vec<ExecutorJoinHandle<()>>,
}

/// One batch, measured.
struct Measured {
    wall: Duration,
    /// CPU of both threads.
    cpu: Duration,
    /// Voluntary context switches of A and of B.
    sleeps: (u64, u64),
}

/// Round trips run in one benchmark group and how often each thread slept in them.
#[derive(Default)]
struct Sleeps {
    round_trips: u64,
    a: u64,
    b: u64,
}

impl Sleeps {
    fn add(&mut self, n: u64, m: &Measured) {
        self.round_trips += n;
        self.a += m.sleeps.0;
        self.b += m.sleeps.1;
    }

    fn report(&self, what: &str) {
        if self.round_trips == 0 {
            return;
        }
        let per = |x: u64| x as f64 / self.round_trips as f64;
        eprintln!(
            "{what}: {} round trips; sleeps per round trip: A {:.2}, B {:.2}",
            self.round_trips,
            per(self.a),
            per(self.b)
        );
    }
}

impl Pair {
    fn new(wake: Wake) -> Pair {
        // As the server sets its shards up by default (`[runtime]
        // preempt_timers = false`): no preemption timers on an executor with
        // one task queue.
        glommio::skip_preempt_timers_with_one_queue(true);
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

    /// B's CPU and sleeps so far.
    fn b_used(&self) -> (Duration, u64) {
        self.to_b.send(numbered(u64::MAX));
        self.b_cpu.recv().expect("B answers")
    }

    fn run(&self, job: Job) -> Measured {
        let (b_cpu, b_sleeps) = self.b_used();
        self.jobs.send(job).expect("A runs");
        let done = self.done.recv().expect("A finishes");
        let (b_cpu_after, b_sleeps_after) = self.b_used();
        Measured {
            wall: done.wall,
            cpu: done.cpu_a + (b_cpu_after - b_cpu),
            sleeps: (done.sleeps_a, b_sleeps_after - b_sleeps),
        }
    }

    /// `n` round trips, each starting with both shards asleep (`pause`) or
    /// back to back (zero), counted into `sleeps`.
    fn round_trips(&self, n: u64, pause: Duration, sleeps: &RefCell<Sleeps>) -> Measured {
        let m = self.run(Job::RoundTrips { n, pause });
        sleeps.borrow_mut().add(n, &m);
        m
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
        let (asleep, awake) = (
            RefCell::new(Sleeps::default()),
            RefCell::new(Sleeps::default()),
        );
        group.bench_function("round_trip_wall", |b| {
            b.iter_custom(|iters| pair.round_trips(iters, PAUSE, &asleep).wall)
        });
        group.bench_function("round_trip_cpu", |b| {
            b.iter_custom(|iters| pair.round_trips(iters, PAUSE, &asleep).cpu)
        });
        group.bench_function("back_to_back_cpu", |b| {
            b.iter_custom(|iters| pair.round_trips(iters, Duration::ZERO, &awake).cpu)
        });
        group.bench_function("stream_cpu", |b| {
            b.iter_custom(|iters| pair.run(Job::Stream(iters)).cpu)
        });
        group.finish();
        asleep
            .borrow()
            .report(&format!("cross_shard/{name}/round_trip_*"));
        awake
            .borrow()
            .report(&format!("cross_shard/{name}/back_to_back_cpu"));
        pair.stop();
    }
}

criterion_group!(benches, bench_hops);
criterion_main!(benches);
