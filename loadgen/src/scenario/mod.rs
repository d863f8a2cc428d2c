//! The workloads. Each scenario is what one worker thread does with its
//! share of the run (see `plan.rs`); the pieces they share live here:
//! opening the population at the ramp rate, waiting for the common start
//! line, the open-loop send loop, and the drain at the end.

pub mod chat;
pub mod churn;
pub mod cluster;
pub mod idle;
pub mod rtt;
pub mod soak;
pub mod walk;

use crate::clock::now_ns;
use crate::config::ScenarioKind;
use crate::control::Phases;
use crate::plan::ThreadPlan;
use crate::schedule::Schedule;
use crate::session::Session;
use crate::worker::Worker;
use glommio::sync::Semaphore;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// Sends issued in one executor turn before the send loop yields to the
/// readers: when the sender is behind it catches up in slices, so replies
/// keep being read (and timed) while it does.
const SENDS_PER_TURN_MAX: usize = 256;

/// How often a worker looks for the start line, in ms.
const START_POLL_MS: u64 = 2;

/// Runs this thread's share of the scenario.
pub async fn run_thread(worker: Rc<Worker>, plan: ThreadPlan) {
    worker.spawn_sweeper();
    match worker.control.config.scenario {
        ScenarioKind::Idle => idle::run(&worker, &plan).await,
        ScenarioKind::Chat => chat::run(&worker, &plan).await,
        ScenarioKind::Rtt => rtt::run(&worker, &plan).await,
        ScenarioKind::Walk => walk::run(&worker, &plan).await,
        ScenarioKind::Churn => churn::run(&worker, &plan).await,
        ScenarioKind::Soak => soak::run(&worker, &plan).await,
        ScenarioKind::Cluster => cluster::run(&worker, &plan).await,
    }
}

/// Sleeps until `CLOCK_MONOTONIC` reaches `deadline_ns`.
pub async fn sleep_until(deadline_ns: u64) {
    let now = now_ns();
    if deadline_ns > now {
        glommio::timer::sleep(Duration::from_nanos(deadline_ns - now)).await;
    }
}

/// Opens the thread's players at its share of `--ramp-rate`, at most
/// `--concurrency` handshakes at a time, and waits until each has logged in
/// (and been placed) or failed. Setup latency is from the actual connect.
pub async fn open_population(worker: &Rc<Worker>, plan: &ThreadPlan) {
    let concurrency = worker.control.config.concurrency as u64;
    let permits = Rc::new(Semaphore::new(concurrency));
    let mut ramp = Schedule::new(plan.ramp_per_s, now_ns(), u64::MAX);
    let mut tasks = Vec::with_capacity(plan.players.len());
    for spec in plan.players.clone() {
        while ramp.pop_due(now_ns()).is_none() {
            sleep_until(ramp.next_due_ns().unwrap_or(0)).await;
        }
        let Ok(permit) = permits.acquire_static_permit(1).await else {
            break;
        };
        let worker = Rc::clone(worker);
        tasks.push(glommio::spawn_local(async move {
            let started_ns = now_ns();
            match worker.open_session(&spec).await {
                Ok(session) => {
                    worker.record_setup(started_ns);
                    worker.spawn_reader(session);
                }
                Err(_) => worker.stats.borrow_mut().counters.sessions_failed += 1,
            }
            drop(permit);
        }));
    }
    for task in tasks {
        task.await;
    }
}

/// Tells the main thread this worker is ready and waits for the start line;
/// from then on the worker measures the common window.
pub async fn await_start(worker: &Worker) -> Phases {
    worker.control.mark_ready();
    loop {
        if let Some(phases) = worker.control.phases() {
            worker.window.set(phases.window);
            return phases;
        }
        glommio::timer::sleep(Duration::from_millis(START_POLL_MS)).await;
    }
}

/// The open-loop sender: from the start line to the window's end, sends at
/// `rate_per_s`, visiting the thread's talking sessions round-robin. `line` writes
/// the command for a session and the time it is timed from; `sent` is told
/// of each command that went out.
///
/// A wake-up also carries the sends due in the next `--send-ahead-us`: one
/// timer sleep per few sends instead of one per send (each sleep costs a
/// kernel timer, and on a VM a trap to the hypervisor). Such a send goes a
/// little early and is timed from when it went; a late send is timed from
/// when it should have gone (see `Schedule::pop_due_ahead`).
pub async fn send_loop(
    worker: &Rc<Worker>,
    phases: &Phases,
    rate_per_s: f64,
    line: impl FnMut(&Session, u64, &mut String),
    sent: impl FnMut(&Worker, &Session, u64),
) {
    send_loop_over(worker, &worker.sessions, phases, rate_per_s, line, sent).await;
}

/// `send_loop` over `sessions` instead of all of the worker's (a scenario
/// mixing kinds of players runs one loop per kind).
pub async fn send_loop_over(
    worker: &Rc<Worker>,
    sessions: &RefCell<Vec<Rc<Session>>>,
    phases: &Phases,
    rate_per_s: f64,
    mut line: impl FnMut(&Session, u64, &mut String),
    mut sent: impl FnMut(&Worker, &Session, u64),
) {
    let mut schedule = Schedule::new(rate_per_s, phases.start_ns, phases.window.end_ns);
    let ahead_ns = (worker.control.config.send_ahead_us * 1_000.0) as u64;
    let mut last_ns = 0;
    let mut cursor = 0usize;
    let mut text = String::with_capacity(64);
    while let Some(next_ns) = schedule.next_due_ns() {
        let now = now_ns();
        if next_ns > now {
            sleep_until(next_ns).await;
            continue;
        }
        if phases.window.contains(now) {
            let lag_us = schedule.lag_ns(now) / 1000;
            let mut stats = worker.stats.borrow_mut();
            stats.counters.send_lag_us_max = stats.counters.send_lag_us_max.max(lag_us);
        }
        for _ in 0..SENDS_PER_TURN_MAX {
            let Some(at_ns) = schedule.pop_due_ahead(now, ahead_ns, &mut last_ns) else {
                break;
            };
            let Some(session) = next_open(sessions, &mut cursor) else {
                // Nobody left to send with: the achieved rate will say so.
                continue;
            };
            text.clear();
            line(&session, at_ns, &mut text);
            if worker.send_command(&session, at_ns, &text) {
                sent(worker, &session, at_ns);
            }
        }
        futures_lite::future::yield_now().await;
    }
}

/// The next open session that talks after `cursor`, round-robin.
fn next_open(sessions: &RefCell<Vec<Rc<Session>>>, cursor: &mut usize) -> Option<Rc<Session>> {
    let sessions = sessions.borrow();
    for _ in 0..sessions.len() {
        let session = &sessions[*cursor % sessions.len()];
        *cursor = cursor.wrapping_add(1);
        if session.open.get() && session.talks {
            return Some(Rc::clone(session));
        }
    }
    None
}

/// Keeps reading until the stop time, counts what is still unanswered as
/// timed out, and closes every session.
pub async fn finish(worker: &Worker, phases: &Phases) {
    sleep_until(phases.stop_ns).await;
    worker.expire_outstanding(u64::MAX);
    worker.close_all();
    worker
        .control
        .publish(worker.id, &worker.stats.borrow().counters);
}
