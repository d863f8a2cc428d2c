//! `walk`: players wander the generated grid (`n`/`s`/`e`/`w`) at the
//! aggregate `--rate`. Rooms are spread over shards, so most moves hand the
//! player over to another shard. Figures: move reply latency, and the
//! `enter`/`leave` events the walkers see of each other.

use super::{await_start, finish, open_population, send_loop};
use crate::plan::ThreadPlan;
use crate::session::Session;
use crate::worker::Worker;
use std::rc::Rc;

pub async fn run(worker: &Rc<Worker>, plan: &ThreadPlan) {
    open_population(worker, plan).await;
    let phases = await_start(worker).await;
    let (width, height) = (
        worker.control.config.grid_width,
        worker.control.config.grid_height,
    );
    let mut rng = 0x2545_F491_4F6C_DD1D_u64 ^ worker.id as u64;
    send_loop(
        worker,
        &phases,
        plan.rate_per_s,
        |session, _, line| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            line.push_str(step(session, width, height, rng));
        },
        |_, _, _| {},
    )
    .await;
    finish(worker, &phases).await;
}

/// A random direction that stays inside the grid, from where the last move
/// reply left the player (a move still in flight can make it a `no_exit`,
/// which is counted apart from failures).
fn step(session: &Session, width: u32, height: u32, random: u64) -> &'static str {
    let (x, y) = session.pos.get();
    let mut choices = [""; 4];
    let mut n = 0;
    for (ok, dir) in [
        (y > 0, "n"),
        (y + 1 < height, "s"),
        (x + 1 < width, "e"),
        (x > 0, "w"),
    ] {
        if ok {
            choices[n] = dir;
            n += 1;
        }
    }
    if n == 0 {
        // A 1×1 grid: nowhere to go; the reply will say `no_exit`.
        return "n";
    }
    choices[(random % n as u64) as usize]
}
