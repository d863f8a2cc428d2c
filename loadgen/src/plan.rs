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
//!
//! `cluster --walkers` adds players numbered after those (`players ..
//! players + walkers`); walker k connects to target `k % targets`, is run
//! by worker `k % n`, and walks one of two ways, alternating by
//! `(k / targets) % 2` (see `WalkKind`), between two rows next to
//! `--walk-border`: across it, or within its own host's land. The rows lie
//! below the chat rooms' (`Config::validate`), so walkers never hear a say.

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
    /// Whether the send schedule uses this player (`cluster`: talkers and
    /// walkers, each on their own schedule).
    pub talks: bool,
    /// `cluster`: how this player walks, when it is a walker.
    pub walk: Option<WalkKind>,
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
    /// `cluster`: this thread's share of `--walk-rate`, moves per second.
    pub walk_rate_per_s: f64,
    /// This thread's share of `--ramp-rate`, connections per second.
    pub ramp_per_s: f64,
    /// Where `churn` connects to and from.
    pub endpoints: Endpoints,
    /// Keeps this run's guest names apart from earlier runs'.
    pub tag: String,
}

/// How a `cluster` walker walks: between its top row and the row below,
/// both next to `--walk-border` (the first row of the second target's land).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkKind {
    /// Rows `border - 1` and `border`: every move crosses into the other
    /// host's land (a hand-off between hosts on mudshard).
    Across,
    /// Two rows of the land of the walker's own target, one row clear of
    /// the border: the first target's `border - 3` and `border - 2`, any
    /// other's `border + 1` and `border + 2`. No move crosses.
    Within,
}

impl WalkKind {
    /// The kind of walker `k` (numbered from 0 after the players) of a run
    /// over `targets`: the walkers of each round over the targets walk
    /// across, those of the next round within, and so on.
    pub fn of(k: u64, targets: u64) -> WalkKind {
        if (k / targets.max(1)) % 2 == 0 {
            WalkKind::Across
        } else {
            WalkKind::Within
        }
    }

    /// The upper of the two rows a walker of this kind connected to
    /// `target_index` walks between (it is placed there).
    pub fn top_row(self, target_index: usize, border: u32) -> u32 {
        match self {
            WalkKind::Across => border.saturating_sub(1),
            WalkKind::Within if target_index == 0 => border.saturating_sub(3),
            WalkKind::Within => border + 1,
        }
    }
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
            walk_rate_per_s: 0.0,
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
            walk: None,
            host,
            source,
        });
    }
    if cluster {
        plan_walkers(cfg, &mut plans, endpoints, tag, (worker, workers));
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
        let (walkers, others): (Vec<&PlayerSpec>, Vec<&PlayerSpec>) =
            p.players.iter().partition(|player| player.walk.is_some());
        let talkers = others.iter().filter(|player| player.talks).count();
        p.rate_per_s = cfg.rate * talkers as f64 / senders.max(1) as f64;
        let walkers = walkers.len();
        if walkers > 0 {
            p.walk_rate_per_s = cfg.walk_rate * walkers as f64 / cfg.walkers as f64;
        }
    }
    Ok(plans)
}

/// Adds the `cluster` walkers of worker `worker` of `workers` to its
/// threads' plans: walker k on target `k % targets`, of kind
/// `WalkKind::of`, placed on its top row in column
/// `(k / (2 × targets)) % --grid-width` (one round over both kinds and
/// every target per column, so that the walkers spread along the border).
fn plan_walkers(
    cfg: &Config,
    plans: &mut [ThreadPlan],
    endpoints: &Endpoints,
    tag: &str,
    (worker, workers): (u64, u64),
) {
    let targets = endpoints.targets.len().max(1) as u64;
    let threads = plans.len().max(1) as u64;
    let border = cfg.walk_border_row();
    for k in (0..cfg.walkers).filter(|k| k % workers == worker) {
        let index = cfg.players + k;
        let target_index = (k % targets) as usize;
        let (target, host) = endpoints.targets[target_index].clone();
        let source = (!endpoints.sources.is_empty())
            .then(|| endpoints.sources[(index % endpoints.sources.len() as u64) as usize]);
        let kind = WalkKind::of(k, targets);
        let column = ((k / (2 * targets)) % u64::from(cfg.grid_width.max(1))) as u32;
        let thread = ((k / workers) % threads) as usize;
        plans[thread].players.push(PlayerSpec {
            index,
            name: format!("{}{tag}_{index}", cfg.name_prefix),
            place: Some((column, kind.top_row(target_index, border))),
            room_size: 1,
            target,
            target_index,
            talks: true,
            walk: Some(kind),
            host,
            source,
        });
    }
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

    fn two_targets() -> Endpoints {
        let mut endpoints = endpoints();
        endpoints.targets.push((
            "127.0.0.1:4001".parse().expect("addr"),
            "127.0.0.1:4001".into(),
        ));
        endpoints
    }

    fn cluster_with_walkers(extra: &[&str]) -> Config {
        let mut args = vec![
            "loadgen",
            "cluster",
            "--players",
            "20",
            "--rooms",
            "10",
            "--rate",
            "30",
            "--walkers",
            "10",
            "--walk-rate",
            "40",
        ];
        args.extend_from_slice(extra);
        Config::parse_from(args)
    }

    #[test]
    fn cluster_walkers_alternate_across_and_within_the_border_on_every_target() {
        use WalkKind::{Across, Within};
        let cfg = cluster_with_walkers(&["--walk-border", "40"]);
        let plans = plan(&cfg, 2, &two_targets(), "abc").expect("plan");
        let mut walkers: Vec<&PlayerSpec> = plans
            .iter()
            .flat_map(|p| &p.players)
            .filter(|p| p.walk.is_some())
            .collect();
        walkers.sort_by_key(|p| p.index);
        // (target, kind, column, row): across walkers stand on the first
        // host's last row (39), within walkers two rows clear of the border
        // on their own host's side (37 or 41).
        let expected = [
            (0, Across, 0, 39),
            (1, Across, 0, 39),
            (0, Within, 0, 37),
            (1, Within, 0, 41),
            (0, Across, 1, 39),
            (1, Across, 1, 39),
            (0, Within, 1, 37),
            (1, Within, 1, 41),
            (0, Across, 2, 39),
            (1, Across, 2, 39),
        ];
        assert_eq!(walkers.len(), expected.len());
        for (k, (p, &(target, kind, x, y))) in walkers.iter().zip(&expected).enumerate() {
            assert_eq!(p.index, 20 + k as u64);
            assert_eq!(p.name, format!("lgabc_{}", 20 + k));
            assert_eq!(
                (p.target_index, p.walk, p.place),
                (target, Some(kind), Some((x, y))),
                "walker {k}"
            );
            assert_eq!(p.target.port(), 4000 + target as u16);
            assert!(p.talks);
        }
        // The talkers keep `--rate`; the walkers share `--walk-rate` by
        // thread (5 walkers each).
        for p in &plans {
            let here = p.players.iter().filter(|p| p.walk.is_some()).count();
            assert_eq!(here, 5);
            assert!((p.walk_rate_per_s - 20.0).abs() < 1e-9);
        }
        let say: f64 = plans.iter().map(|p| p.rate_per_s).sum();
        assert!((say - 30.0).abs() < 1e-9);
    }

    #[test]
    fn cluster_walkers_and_their_rate_are_split_over_workers() {
        let mut seen = Vec::new();
        let mut walk_rate = 0.0;
        for w in 0..2u64 {
            let cfg = cluster_with_walkers(&["--worker", &format!("{w}/2")]);
            for p in plan(&cfg, 3, &two_targets(), "abc").expect("plan") {
                walk_rate += p.walk_rate_per_s;
                for player in p.players.iter().filter(|p| p.walk.is_some()) {
                    assert_eq!((player.index - 20) % 2, w, "{player:?}");
                    // The default border is half the grid's height.
                    let (_, y) = player.place.expect("placed");
                    assert!((47..=51).contains(&y), "{player:?}");
                    seen.push(player.index);
                }
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (20..30).collect::<Vec<u64>>());
        assert!((walk_rate - 40.0).abs() < 1e-9);
    }

    #[test]
    fn a_walker_stands_on_the_upper_of_its_two_rows() {
        assert_eq!(WalkKind::Across.top_row(0, 50), 49);
        assert_eq!(WalkKind::Across.top_row(1, 50), 49);
        assert_eq!(WalkKind::Within.top_row(0, 50), 47);
        assert_eq!(WalkKind::Within.top_row(1, 50), 51);
        assert_eq!(WalkKind::Within.top_row(2, 50), 51);
        let kinds: Vec<WalkKind> = (0..8).map(|k| WalkKind::of(k, 3)).collect();
        use WalkKind::{Across, Within};
        assert_eq!(
            kinds,
            [Across, Across, Across, Within, Within, Within, Across, Across]
        );
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
