//! Loading zone files into a [`World`].
//!
//! # Zone file format
//!
//! One TOML file per zone, `shards/world/<zone>.toml`; the file name is the
//! zone id. Example:
//!
//! ```toml
//! [zone]
//! id = "town"                   # must equal the file name
//! name = "Millbrook"
//!
//! [[room]]
//! id = "square"                 # full id becomes "town:square"
//! name = "Town Square"
//! description = """
//! Cobbles worn smooth by a hundred years of market days.
//! """
//! exits = { north = "library", east = "river:towpath" }
//! items = ["lantern", "bread"]
//!
//! [[room.npc]]                  # belongs to the room above it
//! name = "Old Tom"
//! description = "A retired shepherd with a crook and opinions."
//! ambient = ["Old Tom mutters about the weather."]
//! ```
//!
//! * Ids (zone ids and the local part of room ids) are 1 to
//!   [`ID_CHARS_MAX`] characters of `[a-z0-9_]`.
//! * Exit keys are full direction names (`north`, `south`, `east`, `west`,
//!   `up`, `down`). A bare target (`"library"`) is a room of this zone;
//!   `"zone:room"` is a room of another zone, which must be loaded too.
//!   Exits are one-way by nature; a two-way passage is written in both rooms.
//! * Items are single lowercase words (letters, digits, `-`, `_`).
//! * `exits`, `items`, `npc` and `ambient` may be left out; every other field
//!   is required, and unknown fields are errors (so a typo is not ignored).
//! * Names, descriptions and ambient lines have their whitespace collapsed to
//!   single spaces, so prose in `"""` strings may be wrapped at any width.
//!
//! Every bound is in [`super::limits`]; every error names the file and, where
//! it can, the line (see [`WorldError`]).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::error::line_of_offset;
use super::files::ZoneFiles;
use super::limits::*;
use super::{Dir, Npc, Room, RoomIdx, World, WorldError, Zone};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneDef {
    zone: Spanned<ZoneHeaderDef>,
    #[serde(default)]
    room: Vec<Spanned<RoomDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneHeaderDef {
    id: Spanned<String>,
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomDef {
    id: Spanned<String>,
    name: Spanned<String>,
    description: Spanned<String>,
    #[serde(default)]
    exits: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    items: Vec<Spanned<String>>,
    #[serde(default)]
    npc: Vec<Spanned<NpcDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NpcDef {
    name: Spanned<String>,
    description: Spanned<String>,
    #[serde(default)]
    ambient: Vec<Spanned<String>>,
}

/// A parsed zone file, kept with its text so later passes can report lines.
struct ZoneSource {
    file: PathBuf,
    text: String,
    def: ZoneDef,
}

impl ZoneSource {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> WorldError {
        WorldError::at_offset(&self.file, &self.text, span.start, message)
    }

    fn line(&self, span: Range<usize>) -> usize {
        line_of_offset(&self.text, span.start)
    }
}

/// See [`World::load`].
pub(super) fn load(
    files: ZoneFiles<'_>,
    zone_names: &[String],
    start: &str,
) -> Result<World, WorldError> {
    let dir = &files.dir();
    if zone_names.is_empty() {
        return Err(WorldError::in_file(dir, "no zones to load"));
    }
    if zone_names.len() > ZONES_MAX {
        return Err(WorldError::in_file(
            dir,
            format!(
                "{} zones listed; at most {ZONES_MAX} are allowed",
                zone_names.len()
            ),
        ));
    }
    let mut sources: Vec<ZoneSource> = Vec::with_capacity(zone_names.len());
    for name in zone_names {
        if sources
            .iter()
            .any(|s| s.def.zone.get_ref().id.get_ref() == name)
        {
            return Err(WorldError::in_file(
                dir,
                format!("zone \"{name}\" is listed twice"),
            ));
        }
        sources.push(read_zone(files, name)?);
    }

    let (mut rooms, exits) = build_rooms(&sources)?;
    let index: HashMap<&str, RoomIdx> = rooms
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i as RoomIdx))
        .collect();
    let resolved = resolve_exits(&sources, &rooms, &index, &exits)?;
    let start_idx = resolve_start(dir, &sources, &index, start)?;
    drop(index);
    for (room, room_exits) in rooms.iter_mut().zip(resolved) {
        room.exits = room_exits;
    }
    let zones = sources
        .iter()
        .map(|s| Zone {
            id: s.def.zone.get_ref().id.get_ref().clone(),
            name: prose(s.def.zone.get_ref().name.get_ref()),
        })
        .collect();
    Ok(World::from_parts(rooms, zones, start_idx))
}

/// The zones present in `dir`: the stem of every `*.toml` file, sorted, so a
/// shard map can say "all zones" without listing them.
pub fn zone_names(dir: &Path) -> Result<Vec<String>, WorldError> {
    ZoneFiles::Dir(dir).names()
}

/// Reads and parses `<name>.toml`, checking the zone header.
fn read_zone(files: ZoneFiles<'_>, name: &str) -> Result<ZoneSource, WorldError> {
    // The name comes from a shard map: check it before it becomes a path, so
    // "../secrets" cannot name a file outside the world directory.
    if let Err(why) = check_id(name) {
        return Err(WorldError::in_file(
            &files.dir(),
            format!("bad zone name \"{name}\": {why}"),
        ));
    }
    let file = files.file(name);
    let text = files.read(name)?;
    let def: ZoneDef = toml::from_str(&text).map_err(|e| match e.span() {
        Some(span) => WorldError::at_offset(&file, &text, span.start, e.message().trim_end()),
        None => WorldError::in_file(&file, e.message().trim_end()),
    })?;
    let source = ZoneSource { file, text, def };
    let header = source.def.zone.get_ref();
    if let Err(why) = check_id(header.id.get_ref()) {
        return Err(source.error(header.id.span(), format!("bad zone id: {why}")));
    }
    if header.id.get_ref() != name {
        return Err(source.error(
            header.id.span(),
            format!(
                "zone id \"{}\" does not match its file name \"{name}.toml\"",
                header.id.get_ref()
            ),
        ));
    }
    check_text(&source, &header.name, "zone name", NAME_CHARS_MAX)?;
    if source.def.room.is_empty() {
        return Err(source.error(source.def.zone.span(), "zone has no rooms"));
    }
    if let Some(extra) = source.def.room.get(ZONE_ROOMS_MAX) {
        return Err(source.error(
            extra.span(),
            format!("zone has more than {ZONE_ROOMS_MAX} rooms"),
        ));
    }
    Ok(source)
}

/// Exits as written, per room, with the index of the zone file they are in,
/// before their targets are known to exist.
type RawExits<'a> = Vec<(usize, &'a BTreeMap<String, Spanned<String>>)>;

/// First pass: every room with its id, text, items and NPCs, but no exits yet,
/// because an exit may lead to a room defined later or in another zone.
fn build_rooms(sources: &[ZoneSource]) -> Result<(Vec<Room>, RawExits<'_>), WorldError> {
    let total: usize = sources.iter().map(|s| s.def.room.len()).sum();
    let mut rooms = Vec::with_capacity(total);
    let mut exits = Vec::with_capacity(total);
    for (source_i, source) in sources.iter().enumerate() {
        let zone = source.def.zone.get_ref().id.get_ref();
        // Local id to the span of its first definition, to point at both.
        let mut seen: HashMap<&str, Range<usize>> = HashMap::new();
        for room in &source.def.room {
            let def = room.get_ref();
            let local = def.id.get_ref();
            if let Err(why) = check_id(local) {
                return Err(source.error(def.id.span(), format!("bad room id: {why}")));
            }
            if let Some(first) = seen.insert(local, def.id.span()) {
                let first_line = source.line(first);
                return Err(source.error(
                    def.id.span(),
                    format!(
                        "duplicate room id \"{zone}:{local}\" (first defined on line {first_line})"
                    ),
                ));
            }
            rooms.push(build_room(source, zone, def)?);
            exits.push((source_i, &def.exits));
        }
    }
    Ok((rooms, exits))
}

fn build_room(source: &ZoneSource, zone: &str, def: &RoomDef) -> Result<Room, WorldError> {
    let id = format!("{zone}:{}", def.id.get_ref());
    let name = check_text(source, &def.name, "room name", NAME_CHARS_MAX)?;
    let description = check_text(
        source,
        &def.description,
        "room description",
        DESCRIPTION_CHARS_MAX,
    )?;
    if let Some(extra) = def.items.get(ROOM_ITEMS_MAX) {
        return Err(source.error(
            extra.span(),
            format!("room {id} has more than {ROOM_ITEMS_MAX} items"),
        ));
    }
    let mut items = Vec::with_capacity(def.items.len());
    for item in &def.items {
        if let Err(why) = check_item(item.get_ref()) {
            return Err(source.error(
                item.span(),
                format!("bad item \"{}\" in {id}: {why}", item.get_ref()),
            ));
        }
        items.push(item.get_ref().clone());
    }
    if let Some(extra) = def.npc.get(ROOM_NPCS_MAX) {
        return Err(source.error(
            extra.span(),
            format!("room {id} has more than {ROOM_NPCS_MAX} NPCs"),
        ));
    }
    let mut npcs = Vec::with_capacity(def.npc.len());
    for npc in &def.npc {
        npcs.push(build_npc(source, npc.get_ref())?);
    }
    Ok(Room {
        id,
        zone: zone.to_string(),
        name,
        description,
        exits: Vec::new(),
        items,
        npcs,
    })
}

fn build_npc(source: &ZoneSource, def: &NpcDef) -> Result<Npc, WorldError> {
    let name = check_text(source, &def.name, "NPC name", NAME_CHARS_MAX)?;
    let description = check_text(
        source,
        &def.description,
        "NPC description",
        DESCRIPTION_CHARS_MAX,
    )?;
    if let Some(extra) = def.ambient.get(NPC_AMBIENT_MAX) {
        return Err(source.error(
            extra.span(),
            format!("{name} has more than {NPC_AMBIENT_MAX} ambient lines"),
        ));
    }
    let ambient = def
        .ambient
        .iter()
        .map(|line| check_text(source, line, "ambient line", AMBIENT_CHARS_MAX))
        .collect::<Result<_, _>>()?;
    Ok(Npc {
        name,
        description,
        ambient,
    })
}

/// Second pass: every exit's direction and target, in [`Dir::ALL`] order.
fn resolve_exits(
    sources: &[ZoneSource],
    rooms: &[Room],
    index: &HashMap<&str, RoomIdx>,
    exits: &RawExits<'_>,
) -> Result<Vec<Vec<(Dir, RoomIdx)>>, WorldError> {
    let mut resolved = Vec::with_capacity(rooms.len());
    for (room, &(source_i, raw)) in rooms.iter().zip(exits) {
        let source = &sources[source_i];
        let mut room_exits = Vec::with_capacity(raw.len());
        for (key, target) in raw.iter() {
            let Some(dir) = Dir::from_name(key) else {
                return Err(source.error(
                    target.span(),
                    format!(
                        "bad direction \"{key}\" in exits of {}; expected one of {}",
                        room.id, DIRECTION_NAMES
                    ),
                ));
            };
            let full = full_room_id(&room.zone, target.get_ref());
            let Some(&to) = index.get(full.as_str()) else {
                return Err(source.error(
                    target.span(),
                    unknown_exit_message(sources, room, dir, &full),
                ));
            };
            room_exits.push((dir, to));
        }
        room_exits.sort_by_key(|&(dir, _)| dir);
        resolved.push(room_exits);
    }
    Ok(resolved)
}

const DIRECTION_NAMES: &str = "north, south, east, west, up, down";

fn full_room_id(zone: &str, target: &str) -> String {
    if target.contains(':') {
        target.to_string()
    } else {
        format!("{zone}:{target}")
    }
}

fn unknown_exit_message(sources: &[ZoneSource], room: &Room, dir: Dir, target: &str) -> String {
    let mut message = format!(
        "exit \"{}\" of {} leads to unknown room \"{target}\"",
        dir.name(),
        room.id
    );
    let zone = target.split_once(':').map_or("", |(zone, _)| zone);
    if !sources
        .iter()
        .any(|s| s.def.zone.get_ref().id.get_ref() == zone)
    {
        message.push_str(&format!(" (zone \"{zone}\" is not loaded)"));
    }
    message
}

fn resolve_start(
    dir: &Path,
    sources: &[ZoneSource],
    index: &HashMap<&str, RoomIdx>,
    start: &str,
) -> Result<RoomIdx, WorldError> {
    if let Some(&idx) = index.get(start) {
        return Ok(idx);
    }
    let zone = start.split_once(':').map_or("", |(zone, _)| zone);
    // Point at the zone the start room claims to be in, if it is loaded.
    let file = sources
        .iter()
        .find(|s| s.def.zone.get_ref().id.get_ref() == zone)
        .map_or(dir, |s| s.file.as_path());
    Err(WorldError::in_file(
        file,
        format!("start room \"{start}\" does not exist"),
    ))
}

/// Checks a human-readable field and returns it with whitespace collapsed.
fn check_text(
    source: &ZoneSource,
    field: &Spanned<String>,
    what: &str,
    chars_max: usize,
) -> Result<String, WorldError> {
    let text = prose(field.get_ref());
    if text.is_empty() {
        return Err(source.error(field.span(), format!("{what} is empty")));
    }
    let chars = text.chars().count();
    if chars > chars_max {
        return Err(source.error(
            field.span(),
            format!("{what} is {chars} characters; at most {chars_max} are allowed"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(source.error(field.span(), format!("{what} contains a control character")));
    }
    Ok(text)
}

/// Collapses runs of whitespace (line breaks included) to single spaces.
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Checks a zone id or the local part of a room id.
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("it is empty".into());
    }
    if id.chars().count() > ID_CHARS_MAX {
        return Err(format!("longer than {ID_CHARS_MAX} characters"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err("use only a-z, 0-9 and _".into());
    }
    Ok(())
}

fn check_item(item: &str) -> Result<(), String> {
    if item.is_empty() {
        return Err("it is empty".into());
    }
    if item.chars().count() > ITEM_CHARS_MAX {
        return Err(format!("longer than {ITEM_CHARS_MAX} characters"));
    }
    if !item
        .chars()
        .all(|c| (c.is_alphanumeric() && !c.is_uppercase()) || c == '-' || c == '_')
    {
        return Err("items are single lowercase words".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const TOWN: &str = r#"[zone]
id = "town"
name = "Millbrook"

[[room]]
id = "square"
name = "Town Square"
description = "Cobbles."
exits = { north = "library", east = "river:bank" }
items = ["lantern"]

[[room.npc]]
name = "Old Tom"
description = "A shepherd."
ambient = ["Old Tom coughs."]

[[room]]
id = "library"
name = "Library"
description = """
Dusty   shelves,
wrapped prose."""
exits = { south = "square" }
"#;

    const RIVER: &str = r#"[zone]
id = "river"
name = "River"

[[room]]
id = "bank"
name = "Bank"
description = "Reeds."
exits = { west = "town:square" }
"#;

    /// Writes zone files into a fresh directory and loads them.
    fn load_files(files: &[(&str, &str)], start: &str) -> Result<World, WorldError> {
        let dir = tempfile::tempdir().expect("temp dir");
        for (zone, text) in files {
            fs::write(dir.path().join(format!("{zone}.toml")), text).expect("write zone");
        }
        let zones: Vec<String> = files.iter().map(|(z, _)| z.to_string()).collect();
        World::load(dir.path(), &zones, start)
    }

    /// Loads the town (with `town_text` in place of the good one) and the
    /// river, expecting an error in town.toml at `line` containing `needle`.
    fn expect_town_error(town_text: &str, line: usize, needle: &str) {
        let err = load_files(&[("town", town_text), ("river", RIVER)], "town:square")
            .expect_err("the zone is broken");
        assert!(err.file().ends_with("town.toml"), "{err}");
        assert_eq!(err.line(), Some(line), "{err}");
        assert!(err.message().contains(needle), "{err}");
        let shown = err.to_string();
        assert!(shown.contains(&format!("town.toml:{line}: ")), "{shown}");
    }

    #[test]
    fn good_zones_load_and_link_across_zones() {
        let world = load_files(&[("town", TOWN), ("river", RIVER)], "town:square")
            .expect("good zones load");
        assert_eq!(world.rooms.len(), 3);
        let square = world.room(world.start);
        assert_eq!(square.id, "town:square");
        assert_eq!(square.zone, "town");
        assert_eq!(square.items, ["lantern"]);
        assert_eq!(square.npcs[0].ambient, ["Old Tom coughs."]);
        let bank = square.exit(Dir::East).expect("east exit");
        assert_eq!(world.room(bank).id, "river:bank");
        assert_eq!(world.room(bank).exit(Dir::West), Some(world.start));
        assert_eq!(
            square.exits.iter().map(|e| e.0).collect::<Vec<_>>(),
            [Dir::North, Dir::East]
        );
        let library = world.room_index("town:library").expect("library");
        assert_eq!(
            world.room(library).description,
            "Dusty shelves, wrapped prose."
        );
        assert_eq!(world.zones[0].name, "Millbrook");
    }

    #[test]
    fn toml_syntax_error_names_its_line() {
        let broken = TOWN.replace("name = \"Library\"", "name = \"Library");
        expect_town_error(&broken, 19, "");
    }

    #[test]
    fn unknown_exit_target_names_the_exit_line() {
        let broken = TOWN.replace("south = \"square\"", "south = \"nowhere\"");
        expect_town_error(
            &broken,
            23,
            "exit \"south\" of town:library leads to unknown room \"town:nowhere\"",
        );
    }

    #[test]
    fn exit_into_an_unloaded_zone_says_so() {
        let err = load_files(&[("town", TOWN)], "town:square").expect_err("river missing");
        assert_eq!(err.line(), Some(9), "{err}");
        assert!(
            err.message().contains("zone \"river\" is not loaded"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_room_id_names_the_second_definition() {
        let broken = TOWN.replace("id = \"library\"", "id = \"square\"");
        expect_town_error(
            &broken,
            18,
            "duplicate room id \"town:square\" (first defined on line 6)",
        );
    }

    #[test]
    fn bad_direction_names_the_exit_line() {
        let broken = TOWN.replace("{ south = \"square\" }", "{ sideways = \"square\" }");
        expect_town_error(&broken, 23, "bad direction \"sideways\"");
        let abbreviated = TOWN.replace("{ south = \"square\" }", "{ s = \"square\" }");
        expect_town_error(&abbreviated, 23, "bad direction \"s\"");
    }

    #[test]
    fn missing_field_is_reported_in_its_room() {
        let broken = TOWN.replace("description = \"Cobbles.\"\n", "");
        let err = load_files(&[("town", &broken), ("river", RIVER)], "town:square")
            .expect_err("description missing");
        assert!(err.message().contains("description"), "{err}");
        let line = err.line().expect("a line");
        assert!((5..=9).contains(&line), "{err}");
    }

    #[test]
    fn unknown_field_is_an_error() {
        let broken = TOWN.replace("items = [\"lantern\"]", "itmes = [\"lantern\"]");
        expect_town_error(&broken, 10, "itmes");
    }

    #[test]
    fn empty_name_is_an_error() {
        let broken = TOWN.replace("name = \"Old Tom\"", "name = \"  \"");
        expect_town_error(&broken, 13, "NPC name is empty");
    }

    #[test]
    fn bad_item_is_an_error() {
        let broken = TOWN.replace("[\"lantern\"]", "[\"brass lantern\"]");
        expect_town_error(&broken, 10, "single lowercase words");
    }

    #[test]
    fn overlong_description_is_an_error() {
        let long = "x".repeat(DESCRIPTION_CHARS_MAX + 1);
        let broken = TOWN.replace("\"Cobbles.\"", &format!("\"{long}\""));
        expect_town_error(&broken, 8, "at most 1000");
    }

    #[test]
    fn zone_id_must_match_the_file_name() {
        let broken = TOWN.replace("id = \"town\"", "id = \"towne\"");
        expect_town_error(&broken, 2, "does not match its file name");
    }

    #[test]
    fn missing_zone_file_names_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = World::load(dir.path(), &["nowhere".to_string()], "nowhere:x")
            .expect_err("no such file");
        assert_eq!(err.file(), dir.path().join("nowhere.toml"));
        assert_eq!(err.line(), None);
        assert!(
            err.to_string()
                .ends_with("nowhere.toml: zone file not found"),
            "{err}"
        );
    }

    #[test]
    fn unknown_start_room_names_its_zone_file() {
        let err = load_files(&[("town", TOWN), ("river", RIVER)], "town:attic")
            .expect_err("no such start");
        assert!(err.file().ends_with("town.toml"), "{err}");
        assert_eq!(err.message(), "start room \"town:attic\" does not exist");
        let err =
            load_files(&[("town", TOWN), ("river", RIVER)], "moon:base").expect_err("no such zone");
        assert!(err.message().contains("moon:base"), "{err}");
    }

    #[test]
    fn zone_names_cannot_escape_the_directory() {
        let err = load_files(&[("town", TOWN)], "town:square");
        assert!(err.is_err());
        let dir = tempfile::tempdir().expect("temp dir");
        let err = World::load(dir.path(), &["../etc".to_string()], "x:y").expect_err("bad name");
        assert!(err.message().contains("bad zone name"), "{err}");
    }

    #[test]
    fn zone_listed_twice_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(
            dir.path().join("river.toml"),
            RIVER.replace("town:square", "bank"),
        )
        .expect("write zone");
        let zones = ["river".to_string(), "river".to_string()];
        let err = World::load(dir.path(), &zones, "river:bank").expect_err("twice");
        assert!(err.message().contains("listed twice"), "{err}");
    }
}
