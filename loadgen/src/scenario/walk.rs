//! `walk`: players wander the generated grid (`n`/`s`/`e`/`w`) at the
//! aggregate `--rate`. Rooms are spread over shards, so most moves hand the
//! player over to another shard. Figures: move reply latency, and the
//! `enter`/`leave` events the walkers see of each other. With
//! `--keep-to-shard` each walker keeps to its connection's shard's rooms,
//! so only moves at region borders cross: what walking costs when sessions
//! live on their body's shard.

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
    let keep_to_shard = worker.control.config.keep_to_shard;
    let mut rng = 0x2545_F491_4F6C_DD1D_u64 ^ worker.id as u64;
    send_loop(
        worker,
        &phases,
        plan.rate_per_s,
        |session, _, line| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let dir = if keep_to_shard && session.here_shard.get() != session.home_shard.get() {
                back(session.last_step.get())
            } else {
                step(session, width, height, rng)
            };
            session.last_step.set(dir.as_bytes()[0]);
            line.push_str(dir);
        },
        |_, _, _| {},
    )
    .await;
    finish(worker, &phases).await;
}

/// The step that undoes `last` (`--keep-to-shard`: out of a room of
/// another shard, back the way the walker came).
fn back(last: u8) -> &'static str {
    match last {
        b'n' => "s",
        b's' => "n",
        b'e' => "w",
        _ => "e",
    }
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

#[cfg(test)]
mod tests {
    use super::back;

    #[test]
    fn the_step_back_undoes_the_last_step() {
        for (last, undo) in [(b'n', "s"), (b's', "n"), (b'e', "w"), (b'w', "e")] {
            assert_eq!(back(last), undo);
            assert_eq!(back(undo.as_bytes()[0]).as_bytes()[0], last);
        }
    }
}
