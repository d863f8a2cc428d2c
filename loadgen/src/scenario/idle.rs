//! `idle`: open N guest sessions and hold them, silent, for `--duration`.
//! The figure is the server's memory per held session, taken by the main
//! thread (RSS before the first connect and at the end of the window).

use super::{await_start, finish, open_population};
use crate::plan::ThreadPlan;
use crate::worker::Worker;
use std::rc::Rc;

pub async fn run(worker: &Rc<Worker>, plan: &ThreadPlan) {
    open_population(worker, plan).await;
    let phases = await_start(worker).await;
    finish(worker, &phases).await;
}
