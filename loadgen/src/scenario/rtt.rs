//! `rtt`: every player takes turns to send `--command` (default `look`) at
//! the aggregate `--rate`; the figure is the reply latency from each
//! command's intended send time.

use super::{await_start, finish, open_population, send_loop};
use crate::plan::ThreadPlan;
use crate::worker::Worker;
use std::rc::Rc;

pub async fn run(worker: &Rc<Worker>, plan: &ThreadPlan) {
    open_population(worker, plan).await;
    let phases = await_start(worker).await;
    let command = worker.control.config.command.clone();
    send_loop(
        worker,
        &phases,
        plan.rate_per_s,
        |_, _, line| line.push_str(&command),
        |_, _, _| {},
    )
    .await;
    finish(worker, &phases).await;
}
