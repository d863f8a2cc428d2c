//! `cluster`: players on two (or more) hosts talking across them.
//!
//! * Players connect to the `--target`s by their place in their room (the
//!   k-th member to target `k % targets`, see `plan.rs`), and are placed in
//!   the room with `goto`: every room has members on every host, so every
//!   say is heard on the sender's host and across the bridge.
//! * The members on the first target talk; the others listen. Sending is
//!   `chat`'s open loop at `--rate` (from talkers only), lines
//!   `say t=<intended ns>@<sender's target>`; a share `--tell-share` of the
//!   sends are `tell <listener> t=…@…` to a member of the room on another
//!   host instead.
//! * A listener times each delivery from the stamp (coordinated-omission
//!   corrected, like `chat`) and, knowing its own target, counts it as a
//!   same-host or a cross-host delivery. Each say is expected at the room's
//!   other members: `members on the sender's target − 1` same-host and the
//!   rest cross-host; each tell once, cross-host.
//! * `--walkers` players more walk instead, spread over the targets, on a
//!   send loop of their own at `--walk-rate` moves/s: half shuttle between
//!   the two rows either side of `--walk-border` (every move crosses from
//!   one host's land into the other's), half between two rows inside the
//!   land of the host they are connected to (see `plan::WalkKind`). Each
//!   steps from where its last move reply left it. A move is timed from its
//!   intended send time to its reply, and counted by kind (`move_across`,
//!   `move_within`), apart from the talkers' commands.
//!
//! Only the public protocol is used (guest login, `goto`, `say`, `tell`,
//! `n`/`s`), so any server that bridges hosts can be measured: mudshard, or
//! the baseline with `--redis`.

use super::{await_start, finish, open_population, send_loop_over};
use crate::plan::{ThreadPlan, WalkKind};
use crate::scan::{SAY_STAMP_PREFIX, STAMP_TARGET_SEPARATOR};
use crate::session::Session;
use crate::worker::Worker;
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::rc::Rc;

pub async fn run(worker: &Rc<Worker>, plan: &ThreadPlan) {
    open_population(worker, plan).await;
    // Talkers and walkers send on schedules of their own.
    let (walkers, talkers): (Vec<Rc<Session>>, Vec<Rc<Session>>) = worker
        .sessions
        .borrow()
        .iter()
        .cloned()
        .partition(|s| s.walk.is_some());
    let (talkers, walkers) = (RefCell::new(talkers), RefCell::new(walkers));
    let phases = await_start(worker).await;
    let window = phases.window;
    let config = &worker.control.config;
    let targets = config.targets.len().max(1) as u64;
    let rooms = config.rooms.max(1);
    let players = config.players;
    let tell_share = if targets > 1 { config.tell_share } else { 0.0 };
    let name = |index: u64| format!("{}{}_{index}", config.name_prefix, plan.tag);
    // Set by the line writer, read by the accounting of the same send.
    let telling = Cell::new(false);
    let mut tell_credit = 0.0;
    let talk = send_loop_over(
        worker,
        &talkers,
        &phases,
        plan.rate_per_s,
        |session, intended_ns, line| {
            tell_credit += tell_share;
            let tell = tell_credit >= 1.0;
            telling.set(tell);
            if tell {
                tell_credit -= 1.0;
                let to = listener_of(session.index, rooms, players);
                let _ = write!(line, "tell {} ", name(to));
            } else {
                line.push_str("say ");
            }
            let _ = write!(
                line,
                "{SAY_STAMP_PREFIX}{intended_ns}{STAMP_TARGET_SEPARATOR}{}",
                session.target
            );
        },
        |worker, session, intended_ns| {
            if !window.contains(intended_ns) {
                return;
            }
            let mut stats = worker.stats.borrow_mut();
            let c = &mut stats.counters;
            if telling.get() {
                c.tells_expected += 1;
                return;
            }
            let (same, cross) = listeners(session.room_size, session.target as u64, targets);
            c.deliveries_expected += same + cross;
            c.deliveries_expected_same_host += same;
            c.deliveries_expected_cross_host += cross;
        },
    );
    let border = config.walk_border_row();
    let walk = send_loop_over(
        worker,
        &walkers,
        &phases,
        plan.walk_rate_per_s,
        |session, _, line| {
            // Every session of `walkers` has a kind.
            if let Some(kind) = session.walk {
                line.push_str(step(kind, session.target, session.pos.get().1, border));
            }
        },
        // The worker counts moves by kind as they go out.
        |_, _, _| {},
    );
    futures_lite::future::zip(talk, walk).await;
    finish(worker, &phases).await;
}

/// The next move of a walker of `kind` connected to target `target`,
/// standing in row `y`: south while at (or above) its top row, else north,
/// so that it shuttles between its two rows.
fn step(kind: WalkKind, target: usize, y: u32, border: u32) -> &'static str {
    if y <= kind.top_row(target, border) {
        "s"
    } else {
        "n"
    }
}

/// The listeners of a say from a member on `target` of a room of `size`:
/// (on its own target, on the others). The k-th member is on `k % targets`.
fn listeners(size: u64, target: u64, targets: u64) -> (u64, u64) {
    let on_mine = size / targets + u64::from(target < size % targets);
    (on_mine.saturating_sub(1), size - on_mine)
}

/// A member of talker `index`'s room on another target: the next member, or
/// the one before when the talker is the room's last (rooms have at least
/// two members, and neighbours in a room are on different targets).
fn listener_of(index: u64, rooms: u64, players: u64) -> u64 {
    if index + rooms < players {
        index + rooms
    } else {
        index.saturating_sub(rooms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_say_is_expected_at_every_other_member_split_by_host() {
        // Rooms of 10 over 2 hosts: 5 and 5.
        assert_eq!(listeners(10, 0, 2), (4, 5));
        // Rooms of 5: members 0, 2, 4 on target 0; 1, 3 on target 1.
        assert_eq!(listeners(5, 0, 2), (2, 2));
        assert_eq!(listeners(5, 1, 2), (1, 3));
        assert_eq!(listeners(7, 2, 3), (1, 5));
    }

    #[test]
    fn an_across_walker_steps_over_the_border_and_back() {
        // Border 50: rows 0..50 are the first host's, 50.. the second's.
        for target in [0, 1] {
            assert_eq!(step(WalkKind::Across, target, 49, 50), "s");
            assert_eq!(step(WalkKind::Across, target, 50, 50), "n");
            // A walker off its rows (a move was still in flight) heads back.
            assert_eq!(step(WalkKind::Across, target, 40, 50), "s");
            assert_eq!(step(WalkKind::Across, target, 60, 50), "n");
        }
    }

    #[test]
    fn a_within_walker_keeps_to_its_own_hosts_rows() {
        // The first host's walkers shuttle between rows 47 and 48.
        assert_eq!(step(WalkKind::Within, 0, 47, 50), "s");
        assert_eq!(step(WalkKind::Within, 0, 48, 50), "n");
        assert_eq!(step(WalkKind::Within, 0, 10, 50), "s");
        // Any other host's between rows 51 and 52.
        for target in [1, 2] {
            assert_eq!(step(WalkKind::Within, target, 51, 50), "s");
            assert_eq!(step(WalkKind::Within, target, 52, 50), "n");
            assert_eq!(step(WalkKind::Within, target, 50, 50), "s");
        }
    }

    #[test]
    fn a_tell_goes_to_a_neighbour_in_the_room() {
        // 10 rooms, 25 players: room 3 holds 3, 13, 23.
        assert_eq!(listener_of(3, 10, 25), 13);
        assert_eq!(listener_of(23, 10, 25), 13);
        assert_eq!(listener_of(13, 10, 25), 23);
    }
}
