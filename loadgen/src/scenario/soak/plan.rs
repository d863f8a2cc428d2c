//! Where the soak's players stand on the generated grid, and which thread
//! runs whom. The parts are kept apart so that each one's figures stay
//! exact: row 0 holds the start room (churn sessions and flooding abusers
//! land there) and, east of it, one quiet room per slow reader; the chat
//! rooms fill the rows below it (chatters, and the droppers, who listen
//! there), and the walkers wander the rows below those, never entering a
//! chat room, whose says they would otherwise count as deliveries.

use crate::config::Config;
use crate::plan::{Endpoints, PlayerSpec, ThreadPlan};

/// Grid rows the chat rooms take (`rooms` rooms, `width` per row).
pub fn chat_rows(rooms: u64, width: u32) -> u64 {
    rooms.div_ceil(u64::from(width.max(1)))
}

/// The grid cell of chat room `room`.
pub fn chat_room_cell(room: u64, width: u32) -> (u32, u32) {
    let w = u64::from(width.max(1));
    ((room % w) as u32, (1 + room / w) as u32)
}

/// The quiet room of slow reader `i`: row 0, east of the start room.
pub fn slow_reader_cell(i: u64, width: u32) -> (u32, u32) {
    ((1 + i % u64::from(width.max(2) - 1)) as u32, 0)
}

/// The rows walkers may stand in: `[first, height)`.
pub fn walker_rows(cfg: &Config) -> (u32, u32) {
    let first = 1 + chat_rows(cfg.soak.soak_rooms, cfg.grid_width);
    (
        first.min(u64::from(cfg.grid_height)) as u32,
        cfg.grid_height,
    )
}

/// Whether player `index` of the soak plan is a chatter (else a walker).
pub fn is_chatter(cfg: &Config, index: u64) -> bool {
    index < cfg.soak.soak_chatters
}

/// Chatters and walkers of each thread, placed; each thread's rate is its
/// share of the say and walk rates (see `thread_rates`).
pub fn plan(cfg: &Config, threads: usize, endpoints: &Endpoints, tag: &str) -> Vec<ThreadPlan> {
    let soak = &cfg.soak;
    let threads_u64 = threads.max(1) as u64;
    let mut plans: Vec<ThreadPlan> = (0..threads.max(1))
        .map(|_| ThreadPlan {
            players: Vec::new(),
            rate_per_s: 0.0,
            walk_rate_per_s: 0.0,
            ramp_per_s: cfg.ramp_rate / threads_u64 as f64,
            endpoints: endpoints.clone(),
            tag: tag.to_string(),
        })
        .collect();
    let (band_first, band_end) = walker_rows(cfg);
    let band_height = u64::from(band_end.saturating_sub(band_first).max(1));
    let width = u64::from(cfg.grid_width.max(1));
    for index in 0..soak.soak_chatters + soak.soak_walkers {
        let (thread, place, room_size) = if is_chatter(cfg, index) {
            let room = index % soak.soak_rooms;
            let size = soak.soak_chatters / soak.soak_rooms
                + u64::from(room < soak.soak_chatters % soak.soak_rooms);
            let place = chat_room_cell(room, cfg.grid_width);
            ((room % threads_u64) as usize, place, size)
        } else {
            let k = index - soak.soak_chatters;
            let place = (
                (k % width) as u32,
                band_first + ((k / width) % band_height) as u32,
            );
            ((k % threads_u64) as usize, place, 1)
        };
        let target_index = (index % endpoints.targets.len() as u64) as usize;
        let (target, host) = endpoints.targets[target_index].clone();
        let source = (!endpoints.sources.is_empty())
            .then(|| endpoints.sources[(index % endpoints.sources.len() as u64) as usize]);
        plans[thread].players.push(PlayerSpec {
            index,
            name: format!("{}{tag}_{index}", cfg.name_prefix),
            place: Some(place),
            room_size,
            target,
            target_index,
            talks: true,
            walk: None,
            host,
            source,
        });
    }
    for p in &mut plans {
        let (say, walk) = thread_rates(cfg, p);
        p.rate_per_s = say + walk;
    }
    plans
}

/// A thread's say and walk rates: the aggregate rates shared by players.
pub fn thread_rates(cfg: &Config, plan: &ThreadPlan) -> (f64, f64) {
    let soak = &cfg.soak;
    let chatters = plan
        .players
        .iter()
        .filter(|p| is_chatter(cfg, p.index))
        .count() as f64;
    let walkers = plan.players.len() as f64 - chatters;
    let share = |rate: f64, mine: f64, all: u64| {
        if all == 0 {
            0.0
        } else {
            rate * mine / all as f64
        }
    };
    (
        share(soak.soak_say_rate, chatters, soak.soak_chatters),
        share(soak.soak_walk_rate, walkers, soak.soak_walkers),
    )
}

/// Role numbers `0..count` that thread `thread` of `threads` runs.
pub fn roles_of(thread: usize, threads: usize, count: u64) -> impl Iterator<Item = u64> {
    let threads = threads.max(1) as u64;
    (0..count).filter(move |i| i % threads == thread as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn chat_rooms_walkers_and_the_start_room_never_share_a_row() {
        let cfg = Config::parse_from([
            "loadgen",
            "soak",
            "--grid-width",
            "3",
            "--grid-height",
            "5",
            "--soak-chatters",
            "10",
            "--soak-rooms",
            "4",
            "--soak-walkers",
            "7",
            "--soak-say-rate",
            "10",
            "--soak-walk-rate",
            "7",
        ]);
        let endpoints = Endpoints {
            targets: vec![("127.0.0.1:4000".parse().expect("addr"), "x".into())],
            sources: Vec::new(),
        };
        let plans = plan(&cfg, 2, &endpoints, "abc");
        let all: Vec<&PlayerSpec> = plans.iter().flat_map(|p| &p.players).collect();
        assert_eq!(all.len(), 17);
        for p in &all {
            let (_, y) = p.place.expect("placed");
            if is_chatter(&cfg, p.index) {
                assert!((1..=2).contains(&y), "{p:?}");
            } else {
                assert!((3..5).contains(&y), "{p:?}");
            }
        }
        let rate: f64 = plans.iter().map(|p| p.rate_per_s).sum();
        assert!((rate - 17.0).abs() < 1e-9);
        assert_eq!(walker_rows(&cfg), (3, 5));
        assert!(cfg.soak.validate(3, 3).is_err(), "no row left for walkers");
    }
}
