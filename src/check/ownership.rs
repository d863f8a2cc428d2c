//! Every zone of the world is owned exactly once: a zone owned twice would
//! have two hosts (or two entries of one host) claiming its rooms, and a zone
//! owned by none has rooms nobody serves, which exits lead into.
//!
//! An owner is one entry of a zone list: each host's `zones` in `[cluster]`
//! when the map lists hosts; a host running alone owns its `world.zones`.

use super::Context;
use crate::config::{Problem, WorldSource};
use crate::world::ZoneFiles;

/// One claim of a zone: which host, and the shard map key that makes it
/// (`world.zones.2`), for the line.
pub struct Owner {
    pub host: String,
    pub zone: String,
    pub key: String,
}

/// The owners a configuration names: each host's zones of `[cluster]`
/// when it lists hosts, otherwise this host's `world.zones`.
fn owners(context: &Context) -> Vec<Owner> {
    let hosts = &context.config.cluster.hosts;
    if !hosts.is_empty() {
        return hosts
            .iter()
            .enumerate()
            .flat_map(|(h, host)| {
                host.zones.iter().enumerate().map(move |(z, zone)| Owner {
                    host: host.id.clone(),
                    zone: zone.clone(),
                    key: format!("cluster.hosts.{h}.zones.{z}"),
                })
            })
            .collect();
    }
    let zones = match &context.config.world {
        WorldSource::Zones { zones, .. } | WorldSource::Embedded { zones, .. } => zones,
        WorldSource::Grid { .. } => return Vec::new(),
    };
    zones
        .iter()
        .enumerate()
        .map(|(i, zone)| Owner {
            host: context.config.host_id.clone(),
            zone: zone.clone(),
            key: format!("world.zones.{i}"),
        })
        .collect()
}

/// Each problem as `FILE:LINE: message`.
pub fn problems(context: &Context) -> Vec<String> {
    let files = match &context.config.world {
        WorldSource::Zones { dir, .. } => ZoneFiles::Dir(dir),
        WorldSource::Embedded { .. } => ZoneFiles::Embedded,
        WorldSource::Grid { .. } => return Vec::new(),
    };
    let owners = owners(context);
    let mut found = Vec::new();
    for (i, owner) in owners.iter().enumerate() {
        if let Some(first) = owners[..i].iter().find(|o| o.zone == owner.zone) {
            let first_line = context
                .map
                .line_of(&first.key)
                .map_or(String::new(), |l| format!(" (line {l})"));
            found.push(Problem::new(
                owner.key.clone(),
                format!(
                    "zone \"{}\" is owned twice: by host {}{first_line} and again by host {}",
                    owner.zone, first.host, owner.host
                ),
            ));
        }
    }
    match files.names() {
        Ok(present) => {
            for owner in &owners {
                if !present.contains(&owner.zone) {
                    found.push(Problem::new(
                        owner.key.clone(),
                        format!(
                            "zone \"{}\" is owned by host {} but {} does not exist",
                            owner.zone,
                            owner.host,
                            files.file(&owner.zone).display()
                        ),
                    ));
                }
            }
            for zone in present {
                if !owners.iter().any(|o| o.zone == zone) {
                    found.push(Problem::new(
                        "world.zones",
                        format!(
                            "zone \"{zone}\" ({}) is owned by no host: add it to world.zones",
                            files.file(&zone).display()
                        ),
                    ));
                }
            }
        }
        Err(e) => return vec![e.to_string()],
    }
    found
        .iter()
        .map(|p| context.map.locate_problem(p))
        .collect()
}
