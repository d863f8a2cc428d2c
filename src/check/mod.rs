//! `mudshard check`: validates a shard map and its world without serving
//! them, and names the file and line of everything wrong, so an operator
//! finds a mistake before a restart does.
//!
//! The checks run one after another over a [`Context`] (the map's text and
//! the configuration read from it), each adding what it finds:
//! - the map itself: TOML syntax, unknown keys, every value in range, the
//!   cores online and each listed once (`Config::resolve`, the same rules
//!   the server starts under);
//! - zone ownership: every zone of the world owned exactly once
//!   ([`ownership`]);
//! - the world: its zone files, every exit leading to a room that exists,
//!   the start room (the loader's checks; its first problem is reported).
//!
//! - the cluster: this host among the hosts listed, and hosts that can talk
//!   (`Config::check_cluster`, the rules the server starts under).

mod ownership;

use std::path::Path;

use crate::config::{Config, ShardMapText, WorldSource};
use crate::world::{World, ZoneFiles};

/// What `mudshard check` found: every problem as `FILE:LINE: message` (or
/// `FILE: message` where no line applies), and on success a summary.
pub struct Report {
    pub problems: Vec<String>,
    pub summary: String,
}

/// What every check reads: the shard map's text and its configuration.
pub struct Context {
    pub map: ShardMapText,
    pub config: Config,
}

/// Checks the shard map `explicit` names, or the one `mudshard` would serve
/// without `--config` (see [`ShardMapText::locate`]).
pub fn run(explicit: Option<&Path>) -> Report {
    let failed = |problem: String| Report {
        problems: vec![problem],
        summary: String::new(),
    };
    let map = match ShardMapText::locate(explicit) {
        Ok(map) => map,
        Err(e) => return failed(e),
    };
    let (config, config_problems) = match map.parse() {
        Ok(parsed) => parsed,
        Err(e) => return failed(e),
    };
    let mut problems: Vec<String> = config_problems
        .iter()
        .map(|p| map.locate_problem(p))
        .collect();
    let context = Context { map, config };
    problems.extend(ownership::problems(&context));
    if let Err(e) = context.config.check_cluster() {
        // Zones owned twice or by nobody are reported above, with lines.
        if !e.contains("claimed by two hosts") && !e.contains("owned by no host") {
            problems.push(
                context
                    .map
                    .locate_problem(&crate::config::Problem::new("cluster", e)),
            );
        }
    }
    let world = load_world(&context);
    let rooms = match world {
        Ok(rooms) => rooms,
        Err(e) => {
            problems.push(e);
            0
        }
    };
    let summary = if problems.is_empty() {
        summary(&context, rooms)
    } else {
        String::new()
    };
    Report { problems, summary }
}

/// Loads the world as the server would (each zone once, as ownership has
/// already reported a zone listed twice); its room count.
fn load_world(context: &Context) -> Result<usize, String> {
    let (files, zones, start) = match &context.config.world {
        WorldSource::Grid { width, height, .. } => {
            return Ok((u64::from(*width) * u64::from(*height)) as usize)
        }
        WorldSource::Zones { dir, zones, start } => (ZoneFiles::Dir(dir), zones, start),
        WorldSource::Embedded { zones, start } => (ZoneFiles::Embedded, zones, start),
    };
    let mut once: Vec<String> = Vec::with_capacity(zones.len());
    for zone in zones {
        if !once.contains(zone) {
            once.push(zone.clone());
        }
    }
    World::load_from(files, &once, start)
        .map(|world| world.rooms.len())
        .map_err(|e| e.to_string())
}

fn summary(context: &Context, rooms: usize) -> String {
    let config = &context.config;
    let pinning = if config.cores.is_empty() {
        "unpinned".to_string()
    } else {
        let cores: Vec<String> = config.cores.iter().map(|c| c.to_string()).collect();
        format!("pinned to cores {}", cores.join(","))
    };
    format!(
        "ok: {}: host {}, listen {}, {} shards ({pinning}), world: {} ({rooms} rooms, start {}), data in {}",
        config.origin,
        config.host_id,
        config.listen,
        config.shards,
        config.world,
        start_room(&config.world),
        config.data_dir.display(),
    )
}

fn start_room(world: &WorldSource) -> &str {
    match world {
        WorldSource::Zones { start, .. } | WorldSource::Embedded { start, .. } => start,
        WorldSource::Grid { .. } => "grid:0_0",
    }
}
