//! Who does what: the players of this worker process (`--worker i/n`) and of
//! each of its threads, their rooms, targets and source addresses, and each
//! thread's share of the aggregate rate.
//!
//! Chat rooms are never split: room r belongs to worker `r % n`, and within a
//! worker to one thread, so every figure about a room (expected deliveries)
//! is known where its says are sent.
//!
//! `cluster` rooms are laid out as chat's, and the k-th member of a room
//! connects to target `k % targets`: every room spans every host. Members on
//! the first target talk, the others listen.

use crate::config::{Config, ScenarioKind};
use std::net::{IpAddr, SocketAddr};

/// One player to open.
#[derive(Debug, Clone)]
pub struct PlayerSpec {
    /// Index across the whole run (all workers).
    pub index: u64,
    pub name: String,
    /// Grid room to `goto` after login (`None`: stay in the start room).
    pub place: Option<(u32, u32)>,
    /// Players in the player's chat room, this one included.
    pub room_size: u64,
    pub target: SocketAddr,
    /// The target's place in `--target` order.
    pub target_index: usize,
    /// Whether the send schedule uses this player (`cluster`: talkers only).
    pub talks: bool,
    /// `Host` header value for the target.
    pub host: String,
    pub source: Option<IpAddr>,
}

/// One thread's work.
#[derive(Debug, Clone)]
pub struct ThreadPlan {
    pub players: Vec<PlayerSpec>,
    /// This thread's share of `--rate`, per second.
    pub rate_per_s: f64,
    /// This thread's share of `--ramp-rate`, connections per second.
    pub ramp_per_s: f64,
    /// Where `churn` connects to and from.
    pub endpoints: Endpoints,
    /// Keeps this run's guest names apart from earlier runs'.
    pub tag: String,
}

/// Where the run's traffic goes and comes from.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub targets: Vec<(SocketAddr, String)>,
    pub sources: Vec<IpAddr>,
}

/// A short tag that keeps guest names of back-to-back runs apart (a
/// dropped session may linger on the server for resume).
pub fn run_tag() -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = (crate::clock::now_ns() / 1_000_000) % (36 * 36 * 36);
    let mut tag = [0u8; 3];
    for slot in tag.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8_lossy(&tag).into_owned()
}

/// The players and rates of every thread of this worker process.
pub fn plan(
    cfg: &Config,
    threads: usize,
    endpoints: &Endpoints,
    tag: &str,
) -> Result<Vec<ThreadPlan>, String> {
    if cfg.scenario == ScenarioKind::Soak {
        return Ok(crate::scenario::soak::plan::plan(
            cfg, threads, endpoints, tag,
        ));
    }
    let (worker, workers) = cfg.worker_split()?;
    let threads_u64 = threads as u64;
    let mut plans: Vec<ThreadPlan> = (0..threads)
        .map(|_| ThreadPlan {
            players: Vec::new(),
            rate_per_s: 0.0,
            ramp_per_s: cfg.ramp_rate / workers as f64 / threads as f64,
            endpoints: endpoints.clone(),
            tag: tag.to_string(),
        })
        .collect();
    if cfg.scenario == ScenarioKind::Churn {
        for p in &mut plans {
            p.rate_per_s = cfg.rate / workers as f64 / threads as f64;
        }
        return Ok(plans);
    }
    let rooms = cfg.rooms.max(1);
    let cluster = cfg.scenario == ScenarioKind::Cluster;
    let targets = endpoints.targets.len().max(1) as u64;
    for index in 0..cfg.players {
        let (thread, place, room_size) = if cfg.scenario == ScenarioKind::Chat || cluster {
            let room = index % rooms;
            if room % workers != worker {
                continue;
            }
            let size = cfg.players / rooms + u64::from(room < cfg.players % rooms);
            let place = grid_cell(room, cfg);
            (((room / workers) % threads_u64) as usize, Some(place), size)
        } else {
            if index % workers != worker {
                continue;
            }
            let place = grid_cell(index, cfg);
            (((index / workers) % threads_u64) as usize, Some(place), 1)
        };
        let target_index = if cluster {
            ((index / rooms) % targets) as usize
        } else {
            (index % targets) as usize
        };
        let (target, host) = endpoints.targets[target_index].clone();
        let source = (!endpoints.sources.is_empty())
            .then(|| endpoints.sources[(index % endpoints.sources.len() as u64) as usize]);
        plans[thread].players.push(PlayerSpec {
            index,
            name: format!("{}{tag}_{index}", cfg.name_prefix),
            place,
            room_size,
            target,
            target_index,
            talks: !cluster || target_index == 0,
            host,
            source,
        });
    }
    // The rate is shared by the players who send: everyone, or in `cluster`
    // the members on the first target (of all workers).
    let senders = if cluster {
        (0..cfg.players)
            .filter(|i| (i / rooms) % targets == 0)
            .count()
    } else {
        cfg.players as usize
    };
    for p in &mut plans {
        let here = p.players.iter().filter(|player| player.talks).count();
        p.rate_per_s = cfg.rate * here as f64 / senders.max(1) as f64;
    }
    Ok(plans)
}

/// The grid room for number `k`: rows of `--grid-width`, wrapping at the
/// bottom of the grid.
fn grid_cell(k: u64, cfg: &Config) -> (u32, u32) {
    let w = u64::from(cfg.grid_width);
    let h = u64::from(cfg.grid_height);
    ((k % w) as u32, ((k / w) % h) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn endpoints() -> Endpoints {
        Endpoints {
            targets: vec![(
                "127.0.0.1:4000".parse().expect("addr"),
                "127.0.0.1:4000".into(),
            )],
            sources: Vec::new(),
        }
    }

    #[test]
    fn workers_split_chat_rooms_whole_and_the_rate_by_players() {
        let mut all = 0;
        let mut rate = 0.0;
        for w in 0..3 {
            let cfg = Config::parse_from([
                "loadgen",
                "chat",
                "--players",
                "100",
                "--rooms",
                "7",
                "--rate",
                "50",
                "--worker",
                &format!("{w}/3"),
            ]);
            let plans = plan(&cfg, 2, &endpoints(), "abc").expect("plan");
            for p in &plans {
                all += p.players.len();
                rate += p.rate_per_s;
                for player in &p.players {
                    assert_eq!((player.index % 7) % 3, w);
                    let room_size = 100 / 7 + u64::from(player.index % 7 < 100 % 7);
                    assert_eq!(player.room_size, room_size);
                }
            }
        }
        assert_eq!(all, 100);
        assert!((rate - 50.0).abs() < 1e-9);
    }

    #[test]
    fn cluster_rooms_span_both_targets_and_only_the_first_target_talks() {
        let mut endpoints = endpoints();
        endpoints.targets.push((
            "127.0.0.1:4001".parse().expect("addr"),
            "127.0.0.1:4001".into(),
        ));
        let cfg = Config::parse_from([
            "loadgen",
            "cluster",
            "--players",
            "50",
            "--rooms",
            "10",
            "--rate",
            "30",
        ]);
        let plans = plan(&cfg, 2, &endpoints, "abc").expect("plan");
        let players: Vec<&PlayerSpec> = plans.iter().flat_map(|p| &p.players).collect();
        assert_eq!(players.len(), 50);
        for room in 0..10 {
            let members: Vec<&&PlayerSpec> =
                players.iter().filter(|p| p.index % 10 == room).collect();
            let on = |t: usize| members.iter().filter(|p| p.target_index == t).count();
            assert_eq!((on(0), on(1)), (3, 2), "room {room}");
            assert!(members.iter().all(|p| p.talks == (p.target_index == 0)));
            assert!(members.iter().all(|p| p.place == members[0].place));
        }
        let rate: f64 = plans.iter().map(|p| p.rate_per_s).sum();
        assert!((rate - 30.0).abs() < 1e-9);
    }

    #[test]
    fn chat_rooms_are_placed_on_grid_rows() {
        let cfg = Config::parse_from([
            "loadgen",
            "chat",
            "--players",
            "10",
            "--rooms",
            "5",
            "--grid-width",
            "2",
        ]);
        let plans = plan(&cfg, 1, &endpoints(), "abc").expect("plan");
        let p = &plans[0].players;
        assert_eq!(p[4].place, Some((0, 2)));
        assert_eq!(p[9].place, Some((0, 2)));
        assert_eq!(p[3].place, Some((1, 1)));
        assert_eq!(p[3].name, "lgabc_3");
    }
}
