//! `chat`: players in rooms, every player taking turns to `say` at the
//! aggregate `--rate`. Each say's text is `t=<intended send ns>`; every other
//! player in the room times its delivery from that stamp. A say is expected
//! to reach `room size − 1` listeners.

use super::{await_start, finish, open_population, send_loop};
use crate::plan::ThreadPlan;
use crate::scan::SAY_STAMP_PREFIX;
use crate::worker::Worker;
use std::fmt::Write as _;
use std::rc::Rc;

pub async fn run(worker: &Rc<Worker>, plan: &ThreadPlan) {
    open_population(worker, plan).await;
    let phases = await_start(worker).await;
    let window = phases.window;
    send_loop(
        worker,
        &phases,
        plan.rate_per_s,
        |_, intended_ns, line| {
            let _ = write!(line, "say {SAY_STAMP_PREFIX}{intended_ns}");
        },
        |worker, session, intended_ns| {
            if window.contains(intended_ns) {
                worker.stats.borrow_mut().counters.deliveries_expected +=
                    session.room_size.saturating_sub(1);
            }
        },
    )
    .await;
    finish(worker, &phases).await;
}
