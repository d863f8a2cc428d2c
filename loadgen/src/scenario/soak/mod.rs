//! `soak`: everything at once against one server, for a bounded time —
//! churn (`churn.rs`'s iterations), chatters (`chat`'s says, every delivery
//! checked), walkers (`walk`'s moves, in a band of the grid of their own),
//! droppers (cut without a close frame, then `resume`), slow readers (cut
//! off with 1013 by the server, then `resume`) and abusers (floods,
//! garbage, oversized frames, slow handshakes). Every part has a named
//! bound (`config.rs`) and stops at the window's end.
//!
//! Beside the usual figures the run reports the server's RSS sampled over
//! time with its least-squares slope over the measured window
//! (`memory.rs`), and ends with a leak check: once every session is closed
//! the server's gauges must return to zero (`leak.rs`).

pub mod abuse;
pub mod config;
pub mod counters;
pub mod dropper;
pub mod leak;
pub mod memory;
pub mod observer;
pub mod plan;
pub mod report;
pub mod slow;
pub mod tracked;

use super::{await_start, finish, open_population, send_loop_over, sleep_until};
use crate::config::Config;
use crate::control::Phases;
use crate::plan::{PlayerSpec, ThreadPlan};
use crate::scan::SAY_STAMP_PREFIX;
use crate::session::Session;
use crate::worker::Worker;
use counters::SoakCounters;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;

/// The wait before a dropper or slow reader whose login failed tries again.
pub const RETRY_PAUSE_NS: u64 = 1_000_000_000;

/// The read buffer the thread's droppers, slow readers and abusers share,
/// bytes (they are few; the hot path's buffer is the worker's own).
const SCRATCH_BYTES: usize = 64 * 1024;

/// What a soak part needs of its thread.
pub struct Ctx {
    pub worker: Rc<Worker>,
    pub phases: Phases,
    pub scratch: RefCell<Vec<u8>>,
    plan: ThreadPlan,
}

impl Ctx {
    pub fn cfg(&self) -> &Config {
        &self.worker.control.config
    }

    /// Counts something in this thread's soak counters.
    pub fn count(&self, f: impl FnOnce(&mut SoakCounters)) {
        f(&mut self.worker.stats.borrow_mut().soak);
    }

    pub fn connect_timeout_ns(&self) -> u64 {
        crate::clock::secs_to_ns(self.cfg().connect_timeout)
    }

    /// The server the soak watches (`/metrics`): the first target.
    pub fn target(&self) -> SocketAddr {
        self.plan.endpoints.targets[0].0
    }

    /// Player `role`·`i` in its `generation` (a fresh login takes a fresh
    /// name: the old one may still be held by a detached session), standing
    /// in chat room `i % rooms`.
    pub fn role_spec(&self, role: char, i: u64, generation: u64) -> PlayerSpec {
        let cfg = self.cfg();
        let endpoints = &self.plan.endpoints;
        let target_index = (i % endpoints.targets.len() as u64) as usize;
        let (target, host) = endpoints.targets[target_index].clone();
        let source = (!endpoints.sources.is_empty())
            .then(|| endpoints.sources[(i % endpoints.sources.len() as u64) as usize]);
        let rooms = cfg.soak.soak_rooms.max(1);
        PlayerSpec {
            // Only seeds the frame masks; apart from the players' indices.
            index: u64::MAX / 2 + i,
            name: format!("{}{}{role}{i}g{generation}", cfg.name_prefix, self.plan.tag),
            place: Some(plan::chat_room_cell(i % rooms, cfg.grid_width)),
            room_size: 1,
            target,
            target_index,
            talks: true,
            walk: None,
            host,
            source,
        }
    }
}

/// This thread's share of the soak (see the module doc).
pub async fn run(worker: &Rc<Worker>, thread_plan: &ThreadPlan) {
    open_population(worker, thread_plan).await;
    let cfg = worker.control.config.clone();
    let (chatters, walkers): (Vec<Rc<Session>>, Vec<Rc<Session>>) = worker
        .sessions
        .borrow()
        .iter()
        .cloned()
        .partition(|s| plan::is_chatter(&cfg, s.index));
    let (chatters, walkers) = (RefCell::new(chatters), RefCell::new(walkers));
    let (say_rate, walk_rate) = plan::thread_rates(&cfg, thread_plan);
    let phases = await_start(worker).await;
    let ctx = Rc::new(Ctx {
        worker: Rc::clone(worker),
        phases,
        scratch: RefCell::new(vec![0; SCRATCH_BYTES]),
        plan: thread_plan.clone(),
    });
    let threads = worker.control.threads;
    let soak = &cfg.soak;
    let mut parts = Vec::new();
    for i in plan::roles_of(worker.id, threads, soak.soak_droppers) {
        parts.push(bounded(&phases, dropper::run(Rc::clone(&ctx), i)));
    }
    for i in plan::roles_of(worker.id, threads, soak.soak_slow_readers) {
        parts.push(bounded(&phases, slow::run(Rc::clone(&ctx), i)));
    }
    for i in plan::roles_of(worker.id, threads, soak.soak_abusers) {
        parts.push(bounded(&phases, abuse::run(Rc::clone(&ctx), i)));
    }
    if soak.soak_churn_rate > 0.0 {
        let concurrency = soak.soak_churn_concurrency.div_ceil(threads.max(1) as u64) as usize;
        let rate = soak.soak_churn_rate / threads.max(1) as f64;
        let (worker, thread_plan) = (Rc::clone(worker), thread_plan.clone());
        parts.push(bounded(&phases, async move {
            super::churn::iterate(&worker, &thread_plan, rate, concurrency, phases).await;
        }));
    }
    let window = phases.window;
    let chat = send_loop_over(
        worker,
        &chatters,
        &phases,
        say_rate,
        |_, intended_ns, line| {
            let _ = write!(line, "say {SAY_STAMP_PREFIX}{intended_ns}");
        },
        |worker, session, intended_ns| {
            if window.contains(intended_ns) {
                worker.stats.borrow_mut().counters.deliveries_expected +=
                    session.room_size.saturating_sub(1);
            }
        },
    );
    let (width, rows) = (cfg.grid_width, plan::walker_rows(&cfg));
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ worker.id as u64;
    let walk = send_loop_over(
        worker,
        &walkers,
        &phases,
        walk_rate,
        |session, _, line| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            line.push_str(step(session, width, rows, rng));
        },
        |_, _, _| {},
    );
    futures_lite::future::zip(chat, walk).await;
    for part in parts {
        part.await;
    }
    finish(worker, &phases).await;
}

/// Runs `part` on this thread until it ends or the run's stop time comes.
fn bounded(phases: &Phases, part: impl Future<Output = ()> + 'static) -> glommio::Task<()> {
    let stop_ns = phases.stop_ns;
    glommio::spawn_local(futures_lite::future::or(part, sleep_until(stop_ns)))
}

/// A random direction that keeps a walker inside its band of rows
/// `[rows.0, rows.1)`.
fn step(session: &Session, width: u32, rows: (u32, u32), random: u64) -> &'static str {
    let (x, y) = session.pos.get();
    let mut choices = [""; 4];
    let mut n = 0;
    for (ok, dir) in [
        (y > rows.0, "n"),
        (y + 1 < rows.1, "s"),
        (x + 1 < width, "e"),
        (x > 0, "w"),
    ] {
        if ok {
            choices[n] = dir;
            n += 1;
        }
    }
    if n == 0 {
        // A band one room wide and high: the reply will say `no_exit`.
        return "n";
    }
    choices[(random % n as u64) as usize]
}

/// Open files the soak needs in this process: its players, the droppers,
/// slow readers (each may hold a second connection while it resumes) and
/// abusers, and the churn sessions in flight.
pub fn open_files_needed(cfg: &Config, threads: usize) -> u64 {
    let s = &cfg.soak;
    s.soak_chatters
        + s.soak_walkers
        + 2 * (s.soak_droppers + s.soak_slow_readers)
        + s.soak_abusers
        + s.soak_churn_concurrency
        + threads as u64
}
