//! `churn`: sessions that come and go. Each iteration connects, logs in as
//! a guest, sends `look`, sends `quit` and waits for the server to close.
//! With `--rate R` iterations start on an open-loop schedule (at most
//! `--concurrency` in flight per thread; setup latency is from the intended
//! start, so a backlog shows); with `--rate 0` each of `--concurrency` loops
//! per thread starts the next iteration as soon as the last one ends.
//! Figures: sessions completed per second, setup latency (TCP connect →
//! `welcome`), `look` reply latency.

use super::{await_start, sleep_until};
use crate::clock::now_ns;
use crate::control::Phases;
use crate::plan::{PlayerSpec, ThreadPlan};
use crate::schedule::Schedule;
use crate::worker::Worker;
use glommio::sync::Semaphore;
use std::cell::Cell;
use std::rc::Rc;

pub async fn run(worker: &Rc<Worker>, plan: &ThreadPlan) {
    let phases = await_start(worker).await;
    iterate(
        worker,
        plan,
        plan.rate_per_s,
        worker.control.config.concurrency,
        phases,
    )
    .await;
    sleep_until(phases.stop_ns).await;
    worker.stopping.set(true);
    worker
        .control
        .publish(worker.id, &worker.stats.borrow().counters);
}

/// Starts this thread's iterations from the start line to the window's end
/// (at `rate_per_s`, or back to back with a rate of 0), at most
/// `concurrency` at a time; returns when the last one has been started.
pub async fn iterate(
    worker: &Rc<Worker>,
    plan: &ThreadPlan,
    rate_per_s: f64,
    concurrency: usize,
    phases: Phases,
) {
    let counter = Rc::new(Cell::new(0u64));
    if rate_per_s > 0.0 {
        let permits = Rc::new(Semaphore::new(concurrency as u64));
        let mut schedule = Schedule::new(rate_per_s, phases.start_ns, phases.window.end_ns);
        while let Some(next_ns) = schedule.next_due_ns() {
            sleep_until(next_ns).await;
            let Some(intended_ns) = schedule.pop_due(now_ns()) else {
                continue;
            };
            let Ok(permit) = permits.acquire_static_permit(1).await else {
                break;
            };
            let spec = next_spec(worker, plan, &counter);
            let worker = Rc::clone(worker);
            glommio::spawn_local(async move {
                once(&worker, &spec, intended_ns, &phases).await;
                drop(permit);
            })
            .detach();
        }
    } else {
        for _ in 0..concurrency {
            let worker = Rc::clone(worker);
            let plan = plan.clone();
            let counter = Rc::clone(&counter);
            glommio::spawn_local(async move {
                while now_ns() < phases.window.end_ns {
                    let spec = next_spec(&worker, &plan, &counter);
                    once(&worker, &spec, now_ns(), &phases).await;
                }
            })
            .detach();
        }
    }
}

/// The next guest of this thread: a fresh name, targets and sources in turn.
fn next_spec(worker: &Worker, plan: &ThreadPlan, counter: &Cell<u64>) -> PlayerSpec {
    let k = counter.get();
    counter.set(k + 1);
    let endpoints = &plan.endpoints;
    let target_index = (k % endpoints.targets.len() as u64) as usize;
    let (target, host) = endpoints.targets[target_index].clone();
    let source = (!endpoints.sources.is_empty())
        .then(|| endpoints.sources[(k % endpoints.sources.len() as u64) as usize]);
    let (w, _) = worker.control.config.worker_split().unwrap_or((0, 1));
    PlayerSpec {
        index: k,
        name: format!(
            "{}{}{w}c{}x{k}",
            worker.control.config.name_prefix, plan.tag, worker.id
        ),
        place: None,
        room_size: 1,
        target,
        target_index,
        talks: true,
        walk: None,
        host,
        source,
    }
}

/// One iteration; counted when its intended start is in the window.
async fn once(worker: &Worker, spec: &PlayerSpec, intended_ns: u64, phases: &Phases) {
    let measured = phases.window.contains(intended_ns);
    let outcome = async {
        let session = worker.open_session(spec).await?;
        if measured {
            worker
                .stats
                .borrow_mut()
                .setup
                .record_span(intended_ns, now_ns());
        }
        let look_ns = now_ns();
        session.expect_reply(look_ns);
        let look = format!(r#"{{"type":"cmd","id":{look_ns},"line":"look"}}"#);
        worker.write_text(&session, look.as_bytes()).await?;
        worker
            .read_until(&session, |s| s.outstanding.borrow().is_empty())
            .await?;
        worker
            .write_text(&session, br#"{"type":"cmd","id":"quit","line":"quit"}"#)
            .await?;
        worker
            .read_until(&session, |s| s.setup_replies.get() >= 1)
            .await?;
        // The server closes after the quit reply; a close or end of stream
        // is the expected end, and the timeout bounds a server that doesn't.
        let deadline = crate::clock::secs_to_ns(worker.control.config.timeout) + now_ns();
        let closed = async { while worker.read_once(&session).await.is_ok() {} };
        futures_lite::future::or(closed, sleep_until(deadline)).await;
        Ok::<(), String>(())
    }
    .await;
    if !measured {
        return;
    }
    let mut stats = worker.stats.borrow_mut();
    match outcome {
        Ok(()) => stats.counters.churn_completed += 1,
        Err(why) => {
            stats.counters.churn_failed += 1;
            drop(stats);
            worker.note_error(why);
        }
    }
}
