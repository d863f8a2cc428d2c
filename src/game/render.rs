//! How rooms and inventories look to players: the room object of DESIGN §4
//! and the human text beside it.

use bytes::Bytes;

use crate::protocol::encode::{put_str, put_str_array};
use crate::world::{Room, World};

/// The room object (JSON) and the `look` text (as a JSON string literal), for
/// a room with these items and players (`names` may be capped; `total` is
/// not). Players in `link_dead` (among `names`) have lost their connection
/// and may come back: listed under `linkdead` and marked in the text.
pub fn room_view(
    room: &Room,
    world: &World,
    items: &[String],
    names: &[&str],
    link_dead: &[&str],
    total: usize,
    shard: u16,
) -> (Bytes, Bytes) {
    let mut json = Vec::with_capacity(256 + room.description.len() + 16 * names.len());
    json.extend_from_slice(b"{\"id\":");
    put_str(&mut json, &room.id);
    json.extend_from_slice(b",\"name\":");
    put_str(&mut json, &room.name);
    json.extend_from_slice(b",\"description\":");
    put_str(&mut json, &room.description);
    json.extend_from_slice(b",\"exits\":{");
    for (i, (dir, dest)) in room.exits.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        put_str(&mut json, dir.name());
        json.push(b':');
        put_str(&mut json, &world.room(*dest).id);
    }
    json.extend_from_slice(b"},\"items\":");
    put_str_array(&mut json, items.iter().map(String::as_str));
    json.extend_from_slice(b",\"players\":");
    put_str_array(&mut json, names.iter().copied());
    json.extend_from_slice(b",\"players_total\":");
    json.extend_from_slice(itoa::Buffer::new().format(total).as_bytes());
    json.extend_from_slice(b",\"shard\":");
    json.extend_from_slice(itoa::Buffer::new().format(shard).as_bytes());
    if !link_dead.is_empty() {
        json.extend_from_slice(b",\"linkdead\":");
        put_str_array(&mut json, link_dead.iter().copied());
    }
    json.push(b'}');

    let mut text = String::with_capacity(128 + room.description.len());
    text.push_str(&room.name);
    text.push('\n');
    text.push_str(&room.description);
    text.push_str("\nExits: ");
    if room.exits.is_empty() {
        text.push_str("none");
    }
    for (i, (dir, _)) in room.exits.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(dir.name());
    }
    text.push('.');
    if !items.is_empty() {
        text.push_str("\nYou see: ");
        text.push_str(&items.join(", "));
        text.push('.');
    }
    for npc in &room.npcs {
        text.push('\n');
        text.push_str(&npc.name);
        text.push_str(" is here.");
    }
    if total > 0 {
        text.push_str("\nPlayers here: ");
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            text.push_str(name);
            if link_dead.contains(name) {
                text.push_str(" (link-dead)");
            }
        }
        if total > names.len() {
            text.push_str(&format!(" and {} more", total - names.len()));
        }
        text.push('.');
    }
    let mut quoted = Vec::with_capacity(text.len() + 16);
    put_str(&mut quoted, &text);
    (Bytes::from(json), Bytes::from(quoted))
}

/// The reply text of `inventory`.
pub fn inventory_text(items: &[String]) -> String {
    if items.is_empty() {
        "You carry nothing.".into()
    } else {
        format!("You carry: {}.", items.join(", "))
    }
}
